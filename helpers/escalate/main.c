/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* escalate UNIT: page a human because the heal unit UNIT itself failed
 * (run by heal-escalate@UNIT.service, the OnFailure= of every heal unit). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "escalate-unit.h"

static void help(void) {
        printf("Usage: escalate [OPTIONS] UNIT\n\n"
               "Escalate the failure of the heal unit UNIT to a human: a crit journal\n"
               "record with the unit's state and last journal lines, and the policy's\n"
               "escalation command, if any.\n\n"
               "  -h --help     Show this help\n"
               "     --version  Show the version\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("escalate (heal) %s\n", HEAL_VERSION);
                        return 0;
                default:
                        return 1;
                }

        if (optind != argc - 1) {
                fprintf(stderr, "escalate: expected exactly one argument, the failed unit (see --help)\n");
                return 1;
        }

        r = run(argv[optind]);
        if (r < 0) {
                fprintf(stderr, "escalate: Failed to escalate the failure of %s: %s\n", argv[optind], strerror(-r));
                return 1;
        }
        return 0;
}
