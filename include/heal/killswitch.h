/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kill switch: a masked heal unit means "do not act". */
#pragma once

#include <systemd/sd-bus.h>

/* The unit whose mask stops every heal helper at once (healctl kill-switch on masks it too). */
#define HEAL_KILLSWITCH_UNIT "heal.target"

/**
 * heal_killswitch_engaged() - is healing switched off for @helper_unit?
 * @bus: the system bus; NULL means "cannot tell".
 * @helper_unit: the calling helper's unit (e.g. "heal-worker-reviver@foo.service";
 *   a template instance is also checked as its template "heal-worker-reviver@.service").
 * @ret_reason: which unit is masked, or why it could not be told (caller frees).
 *
 * Returns >0 engaged (a unit is masked), 0 off, -errno when it cannot be
 * told — the guard then fails closed.
 */
int heal_killswitch_engaged(sd_bus *bus, const char *helper_unit, char **ret_reason);
