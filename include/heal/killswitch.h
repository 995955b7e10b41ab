/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kill switch: a masked heal unit means "do not act". */
#pragma once

#include <stdbool.h>
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

/**
 * heal_killswitch_set() - `healctl kill-switch on|off`.
 * @on: mask (true) or unmask (false) heal.target and every unit file
 *   matching "heal-*" (ListUnitFilesByPatterns), then reload the manager.
 * @runtime: with @on, mask under /run only (gone at reboot). Off unmasks both.
 * @ret_units: the units touched (caller frees); may be NULL.
 * Returns the number of units touched, or -errno.
 */
int heal_killswitch_set(sd_bus *bus, bool on, bool runtime, char ***ret_units);

/**
 * heal_killswitch_status() - which heal units are masked now.
 * @ret_masked: "unit (masked|masked-runtime)" per masked unit, caller frees; may be NULL.
 * Returns the number masked (>0: the switch is on), or -errno.
 */
int heal_killswitch_status(sd_bus *bus, char ***ret_masked);
