/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl run disk-reclaim [--mount M]: drop a request file where the helper's
 * .path unit watches (heal_path_run_dir()/requests/disk-reclaim/); the helper
 * treats the request as the confirming signal and removes it after its run. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/fileio.h"
#include "heal/paths.h"
#include "heal/time-util.h"
#include "healctl.h"
#include "run.h"

static void run_help(void) {
        printf("Usage: healctl run disk-reclaim [--mount PATH]\n\n"
               "Ask disk-reclaim to check now (all watched filesystems, or only PATH).\n"
               "Writes a request under %s/requests/disk-reclaim/; heal-disk-reclaim.path\n"
               "starts the service, which acts only where the pressure is real and every\n"
               "guard allows it, and removes the request when done.\n",
               heal_path_run_dir());
}

static int mkdir_p2(const char *a, const char *b) {
        if (mkdir(a, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (mkdir(b, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Written under a dot name, then renamed: the .path unit and the helper never see half a request. */
static int write_request(const char *dir, json_t *req, char **ret_path) {
        _cleanup_free_ char *text = NULL, *path = NULL;
        int r;

        text = json_dumps(req, JSON_COMPACT);
        if (!text || asprintf(&path, "%s/healctl-%" PRIu64 "-%d", dir, heal_now_usec(CLOCK_REALTIME),
                              (int)getpid()) < 0)
                return -ENOMEM;
        r = heal_write_file_atomic_path(path, text, strlen(text), 0600, 0);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int run_disk_reclaim(const char *mount) {
        _cleanup_free_ char *requests = NULL, *dir = NULL, *who = ctl_operator_name(), *path = NULL;
        _cleanup_json_ json_t *req = NULL;
        int r;

        if (asprintf(&requests, "%s/requests", heal_path_run_dir()) < 0 ||
            asprintf(&dir, "%s/disk-reclaim", requests) < 0 || !who)
                return log_error_errno(-ENOMEM, "out of memory"), CTL_EXIT_FAILURE;
        req = json_pack("{s:s?, s:s, s:I}", "mount", mount, "requested_by", who, "time_usec",
                        (json_int_t)heal_now_usec(CLOCK_REALTIME));
        if (!req)
                return log_error_errno(-ENOMEM, "out of memory"), CTL_EXIT_FAILURE;
        r = mkdir_p2(requests, dir);
        if (r < 0)
                return log_error_errno(r, "cannot create %s", dir), CTL_EXIT_FAILURE;
        errno = 0;
        r = write_request(dir, req, &path);
        if (r < 0)
                return log_error_errno(r, "cannot write a request in %s", dir), CTL_EXIT_FAILURE;
        printf("Requested a disk-reclaim run%s%s: %s\n", mount ? " for " : "", mount ?: "", path);
        return CTL_EXIT_OK;
}

int verb_run(int argc, char *argv[]) {
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"mount", required_argument, NULL, 'm'},
                {},
        };
        const char *mount = NULL;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hm:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        run_help();
                        return CTL_EXIT_OK;
                case 'm':
                        mount = optarg;
                        break;
                default:
                        return usage_error("run", "unknown option");
                }
        if (optind + 1 != argc)
                return usage_error("run", "expected one helper name (disk-reclaim)");
        if (strcmp(argv[optind], "disk-reclaim") != 0)
                return usage_error("run", "unknown helper '%s' (known: disk-reclaim)", argv[optind]);
        if (mount && mount[0] != '/')
                return usage_error("run", "--mount wants an absolute path, got '%s'", mount);
        return run_disk_reclaim(mount);
}
