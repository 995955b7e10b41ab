/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* heal-worker-reviver UNIT: revive a failed, enrolled unit within heal's
 * guardrails. Run by heal-worker-reviver@UNIT.service from the unit's OnFailure=. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "reviver.h"

static void help(void) {
        printf("Usage: worker-reviver [OPTIONS] UNIT\n"
               "\n"
               "Confirm that UNIT failed, and revive it (reset-failed + start, then verify\n"
               "it stays active) when the policy and every heal guard allow it.\n"
               "Normally started as heal-worker-reviver@UNIT.service by UNIT's OnFailure=.\n"
               "\n"
               "  -h --help     show this help\n"
               "     --version  show the version\n"
               "\n"
               "See heal-worker-reviver(8).\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        heal_outcome outcome = HEAL_OUTCOME_SKIPPED;
        const char *unit;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("worker-reviver %s\n", HEAL_VERSION);
                        return 0;
                default:
                        return 2;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "worker-reviver: expected exactly one UNIT (see --help)\n");
                return 2;
        }
        unit = argv[optind];
        if (!heal_unit_name_is_valid(unit)) {
                fprintf(stderr, "worker-reviver: \"%s\" is not a unit name\n", unit);
                return 2;
        }

        r = run(unit, &outcome);
        if (r < 0) {
                /* A non-zero exit starts heal-escalate@ (this unit's OnFailure=). */
                fprintf(stderr, "worker-reviver: failed to handle %s: %s\n", unit, strerror(-r));
                return 1;
        }
        fprintf(stderr, "worker-reviver: %s: %s\n", unit, heal_outcome_to_string(outcome));
        return 0;
}
