/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kill switch: a masked heal.target, helper unit or helper template means
 * "do not act". Masking is systemd's own off switch, visible to every tool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/bus.h"
#include "heal/cleanup.h"
#include "heal/killswitch.h"
#include "heal/strv.h"

/* "heal-worker-reviver@foo.service" -> "heal-worker-reviver@.service"; NULL when not an instance. */
static char *template_of(const char *unit) {
        const char *at = strchr(unit, '@'), *dot = strrchr(unit, '.');
        char *t;

        if (!at || !dot || dot < at || at[1] == '.')
                return NULL;
        if (asprintf(&t, "%.*s%s", (int) (at - unit + 1), unit, dot) < 0)
                return NULL;
        return t;
}

static int check_one(sd_bus *bus, const char *unit, char **ret_reason) {
        int r = heal_unit_is_masked(bus, unit);

        if (r < 0) {
                if (ret_reason && asprintf(ret_reason, "cannot read the unit file state of %s: %s", unit,
                                           strerror(-r)) < 0)
                        *ret_reason = NULL;
                return r;
        }
        if (r > 0 && ret_reason && asprintf(ret_reason, "%s is masked", unit) < 0)
                *ret_reason = NULL;
        return r;
}

int heal_killswitch_engaged(sd_bus *bus, const char *helper_unit, char **ret_reason) {
        _cleanup_free_ char *template = NULL;
        const char *units[3] = { HEAL_KILLSWITCH_UNIT };
        size_t n = 1;

        if (!bus) {
                if (ret_reason)
                        *ret_reason = strdup("no connection to systemd");
                return -ENOTCONN;
        }
        if (helper_unit) {
                units[n++] = helper_unit;
                template = template_of(helper_unit);
                if (template)
                        units[n++] = template;
        }
        for (size_t i = 0; i < n; i++) {
                int r = check_one(bus, units[i], ret_reason);

                if (r != 0)
                        return r;
        }
        return 0;
}

/* heal.target and every installed heal-* unit file. */
static int heal_units(sd_bus *bus, char ***ret_names, char ***ret_states) {
        static char *const patterns[] = { "heal-*", (char *) HEAL_KILLSWITCH_UNIT, NULL };

        return heal_unit_files_list(bus, patterns, ret_names, ret_states);
}

int heal_killswitch_set(sd_bus *bus, bool on, bool runtime, char ***ret_units) {
        _cleanup_strv_free_ char **names = NULL, **units = NULL;
        bool have_target = false;
        size_t n = 0;
        int r;

        if (!bus)
                return -EINVAL;
        r = heal_units(bus, &names, NULL);
        if (r < 0)
                return r;
        for (char **u = names; *u; u++) {
                /* Instances are covered by their template's mask. */
                if (strchr(*u, '@') && !strstr(*u, "@."))
                        continue;
                if (strcmp(*u, HEAL_KILLSWITCH_UNIT) == 0)
                        have_target = true;
                r = heal_strv_consume(&units, &n, strdup(*u));
                if (r < 0)
                        return r;
        }
        /* heal.target is the switch even when it is not installed. */
        if (!have_target) {
                r = heal_strv_consume(&units, &n, strdup(HEAL_KILLSWITCH_UNIT));
                if (r < 0)
                        return r;
        }

        if (on)
                r = heal_unit_files_mask(bus, units, runtime);
        else {
                /* Off means off: a mask in either place would keep it on. */
                r = heal_unit_files_unmask(bus, units, false);
                if (r >= 0)
                        r = heal_unit_files_unmask(bus, units, true);
        }
        if (r < 0)
                return r;
        /* Masked units must also refuse to start, which needs the manager to re-read them. */
        r = heal_manager_reload(bus);
        if (r < 0)
                return r;
        if (ret_units)
                *ret_units = TAKE_PTR(units);
        return (int) n;
}

int heal_killswitch_status(sd_bus *bus, char ***ret_masked) {
        _cleanup_strv_free_ char **names = NULL, **states = NULL, **masked = NULL;
        _cleanup_free_ char *target_state = NULL;
        bool seen_target = false;
        size_t n = 0;
        int r;

        if (!bus)
                return -EINVAL;
        r = heal_units(bus, &names, &states);
        if (r < 0)
                return r;
        for (size_t i = 0; names[i]; i++) {
                _cleanup_free_ char *line = NULL;

                if (strcmp(names[i], HEAL_KILLSWITCH_UNIT) == 0)
                        seen_target = true;
                if (strcmp(states[i], "masked") != 0 && strcmp(states[i], "masked-runtime") != 0)
                        continue;
                if (asprintf(&line, "%s (%s)", names[i], states[i]) < 0)
                        return -ENOMEM;
                r = heal_strv_consume(&masked, &n, TAKE_PTR(line));
                if (r < 0)
                        return r;
        }
        /* Not listed when it has no file at all: ask for it by name. */
        if (!seen_target) {
                r = heal_unit_file_state(bus, HEAL_KILLSWITCH_UNIT, &target_state);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r >= 0 && (strcmp(target_state, "masked") == 0 || strcmp(target_state, "masked-runtime") == 0)) {
                        _cleanup_free_ char *line = NULL;

                        if (asprintf(&line, "%s (%s)", HEAL_KILLSWITCH_UNIT, target_state) < 0)
                                return -ENOMEM;
                        r = heal_strv_consume(&masked, &n, TAKE_PTR(line));
                        if (r < 0)
                                return r;
                }
        }
        if (!masked) {
                masked = calloc(1, sizeof(char *));
                if (!masked)
                        return -ENOMEM;
        }
        if (ret_masked)
                *ret_masked = TAKE_PTR(masked);
        return (int) n;
}
