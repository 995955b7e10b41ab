/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl kill-switch: mask every heal unit (stop healing now), unmask, or tell. */
#include <string.h>

#include "healctl.h"
#include "heal/bus.h"
#include "heal/killswitch.h"

static void killswitch_help(void) {
        printf("Usage: healctl kill-switch on [--persistent]\n"
               "       healctl kill-switch off\n"
               "       healctl kill-switch status [--quiet] [--json]\n\n"
               "on      mask " HEAL_KILLSWITCH_UNIT " and every heal-* unit: no helper acts any more.\n"
               "        Runtime mask (gone at reboot) unless --persistent.\n"
               "off     unmask them all (runtime and persistent masks).\n"
               "status  list the masked heal units; exit status 0.\n"
               "        With --quiet: print nothing, exit 10 when the switch is on, 0 when off.\n"
               "Exit status 1 when systemd cannot be asked.\n");
}

static int print_units(const char *what, char **units) {
        for (char **u = units; u && *u; u++)
                printf("%s %s\n", what, *u);
        return 0;
}

static int killswitch_status(sd_bus *bus, bool quiet, bool json) {
        _cleanup_strv_free_ char **masked = NULL;
        int r;

        r = heal_killswitch_status(bus, &masked);
        if (r < 0)
                return log_error_errno(r, "cannot tell whether the kill switch is on"), CTL_EXIT_FAILURE;
        if (quiet)
                return r > 0 ? CTL_EXIT_ENGAGED : CTL_EXIT_OK;

        if (json) {
                _cleanup_json_ json_t *arr = json_array(), *o = NULL;
                if (!arr)
                        return CTL_EXIT_FAILURE;
                for (char **m = masked; m && *m; m++)
                        if (json_array_append_new(arr, json_string(*m)) < 0)
                                return CTL_EXIT_FAILURE;
                o = json_pack("{s:b, s:O}", "engaged", r > 0, "masked", arr);
                return o && json_print(o, stdout) >= 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
        }
        if (r == 0) {
                printf("kill switch: off (no heal unit is masked)\n");
                return CTL_EXIT_OK;
        }
        printf("kill switch: ON (%d heal unit%s masked; healctl kill-switch off resumes)\n", r,
               r == 1 ? "" : "s");
        print_units("  masked", masked);
        return CTL_EXIT_OK;
}

static int killswitch_set(sd_bus *bus, bool on, bool persistent) {
        _cleanup_strv_free_ char **units = NULL;
        int r;

        r = heal_killswitch_set(bus, on, !persistent, &units);
        if (r < 0)
                return log_error_errno(r, "cannot turn the kill switch %s", on ? "on" : "off"),
                       CTL_EXIT_FAILURE;
        print_units(on ? "masked" : "unmasked", units);
        if (on)
                printf("kill switch: ON (%s; healctl kill-switch off resumes)\n",
                       persistent ? "persistent" : "until reboot");
        else
                printf("kill switch: off\n");
        return CTL_EXIT_OK;
}

int verb_kill_switch(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "quiet", no_argument, NULL, 'q' },
                { "persistent", no_argument, NULL, 'p' },
                { "runtime", no_argument, NULL, 'r' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        bool json = false, quiet = false, persistent = false;
        const char *sub;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        killswitch_help();
                        return CTL_EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'p':
                        persistent = true;
                        break;
                case 'r':
                        persistent = false;
                        break;
                default:
                        return usage_error("kill-switch", "bad option");
                }
        if (optind + 1 != argc)
                return usage_error("kill-switch", "expected one of on, off, status");
        sub = argv[optind];
        if (strcmp(sub, "on") != 0 && strcmp(sub, "off") != 0 && strcmp(sub, "status") != 0)
                return usage_error("kill-switch", "unknown sub-command '%s'", sub);
        if ((quiet || json) && strcmp(sub, "status") != 0)
                return usage_error("kill-switch", "--quiet and --json go with status");
        if (persistent && strcmp(sub, "on") != 0)
                return usage_error("kill-switch", "--persistent goes with on");

        r = heal_bus_open(&bus);
        if (r < 0)
                return log_error_errno(r, "cannot connect to systemd"), CTL_EXIT_FAILURE;

        if (strcmp(sub, "status") == 0)
                return killswitch_status(bus, quiet, json);
        return killswitch_set(bus, strcmp(sub, "on") == 0, persistent);
}
