/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Escalate the failure of one heal unit, with whatever context can be had. */
#pragma once

#include <jansson.h>

/* Facts about @unit from systemd over D-Bus; a failure to get them becomes a fact too. */
json_t *escalate_unit_facts(const char *unit);

/**
 * run() - escalate "heal unit @unit failed" (class heal-self).
 * Never gives up early: without a policy or D-Bus it escalates with what it has.
 * Returns 0, or the escalation's -errno.
 */
int run(const char *unit);
