/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-reclaim [--mount M]: free space on filesystems under pressure and find
 * space leaked by deleted-but-open files, within heal's guardrails. Run by
 * heal-disk-reclaim.service from its timer and its path unit. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "disk-reclaim.h"

static void help(void) {
        printf("Usage: disk-reclaim [OPTIONS]\n"
               "\n"
               "Check the filesystems the policy names; where free space or inodes stay\n"
               "below the threshold, remove disposable files (oldest first, up to the\n"
               "target, never more) and propose restarting units that hold deleted files.\n"
               "Normally started by heal-disk-reclaim.timer and heal-disk-reclaim.path.\n"
               "\n"
               "  -m --mount=PATH  only this mount point (a request confirms it at once)\n"
               "  -h --help        show this help\n"
               "     --version     show the version\n"
               "\n"
               "See heal-disk-reclaim(8).\n");
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"mount", required_argument, NULL, 'm'},
                {},
        };
        disk_options o = {};
        int c, r;

        while ((c = getopt_long(argc, argv, "hm:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("disk-reclaim %s\n", HEAL_VERSION);
                        return 0;
                case 'm':
                        if (optarg[0] != '/') {
                                fprintf(stderr, "disk-reclaim: --mount wants an absolute path, got \"%s\"\n",
                                        optarg);
                                return 2;
                        }
                        o.mount = optarg;
                        break;
                default:
                        return 2;
                }
        if (optind != argc) {
                fprintf(stderr, "disk-reclaim: unexpected argument \"%s\" (see --help)\n", argv[optind]);
                return 2;
        }

        /* Before anything else reads the system: a bug later has no more power than this. */
        r = disk_caps_drop();
        if (r < 0) {
                fprintf(stderr, "disk-reclaim: cannot drop capabilities: %s\n", strerror(-r));
                return 1;
        }
        r = run(&o);
        if (r < 0) {
                /* A non-zero exit starts heal-escalate@ (the unit's OnFailure=). */
                fprintf(stderr, "disk-reclaim: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
