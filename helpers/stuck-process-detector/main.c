/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stuck-process-detector: find workers that are alive but make no progress, within heal's guardrails.
 * Run by heal-stuck-process-detector.service from its timer. */
#include <getopt.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "detector.h"

static void help(void) {
        printf("Usage: stuck-process-detector [OPTIONS]\n"
               "\n"
               "Sample every service the policy targets (cgroup counters first, processes only\n"
               "where they look flat), confirm over the dwell time that a worker is stuck (no\n"
               "progress, and a stale heartbeat or a PSI stall), blocked in D state, or piling\n"
               "up zombies, and hand it to heal's guard: SIGABRT and revive a stuck worker,\n"
               "escalate the rest to a human.\n"
               "Normally run by heal-stuck-process-detector.timer.\n"
               "\n"
               "  -h --help     show this help\n"
               "     --version  show the version\n"
               "\n"
               "See heal-stuck-process-detector(8).\n");
}

/* CPU this process has used so far (exact: the scheduler's runtime, not ticks). */
static double cpu_ms(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
                return 0;
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        stuck_run_stats stats = {};
        /* What the scan costs, without the exec and dynamic linking before main(): the figure that grows
         * with the units and processes scanned, reported with each run. */
        double cpu_start = cpu_ms();
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("stuck-process-detector %s\n", HEAL_VERSION);
                        return 0;
                default:
                        return 2;
                }
        if (optind != argc) {
                fprintf(stderr, "stuck-process-detector: takes no arguments (see --help)\n");
                return 2;
        }

        r = stuck_caps_restrict();
        if (r < 0) {
                fprintf(stderr, "stuck-process-detector: failed to drop capabilities: %s\n", strerror(-r));
                return 1;
        }
        r = run(&stats);
        if (r < 0) {
                /* A non-zero exit starts heal-escalate@ (the unit's OnFailure=). */
                fprintf(stderr, "stuck-process-detector: scan failed: %s\n", strerror(-r));
                return 1;
        }
        fprintf(stderr, "stuck-process-detector: %u units scanned, %u read down to their processes, %u conditions "
                        "confirmed, %u acted on, in %.2f ms of CPU\n",
                stats.n_units, stats.n_descended, stats.n_confirmed, stats.n_acted, cpu_ms() - cpu_start);
        if (stats.n_errors > 0)
                fprintf(stderr, "stuck-process-detector: %u units could not be scanned (first: %s)\n", stats.n_errors,
                        strerror(-stats.first_error));
        return 0;
}
