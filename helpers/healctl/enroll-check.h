/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which units healctl enroll accepts (pure, unit-tested). */
#pragma once

#include "heal/policy.h"

/* The unit name for an argument: a bare "foo" is "foo.service". Caller frees; NULL on OOM. */
char *enroll_unit_name(const char *arg);

/**
 * enroll_check() - may @unit be enrolled for revival?
 * @cls: the policy's worker-dead class; NULL when the policy has none
 *   (only the built-in refusals apply then).
 * @ret_why: on 0, why not, for a person (caller frees).
 * Refuses invalid names, heal's own units, dbus and systemd-* always, and
 * what the class excludes or does not target.
 * Returns >0 allowed, 0 refused, -ENOMEM.
 */
int enroll_check(const heal_class_policy *cls, const char *unit, char **ret_why);
