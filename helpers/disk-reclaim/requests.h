/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Requests: files under heal_path_run_dir()/requests/disk-reclaim/ that ask
 * for a run now (healctl run disk-reclaim, the alert receiver). Each is one
 * JSON object {"mount": "/var" | null, "requested_by": "...", "time_usec": N};
 * the .path unit starts the service while any exists, so each run removes
 * the ones it read. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct disk_requests {
        char **files;  /* full paths of the requests read (removed by disk_requests_consume()) */
        char **mounts; /* mount points asked for */
        bool all;      /* a request without a mount: every mount */
        size_t n_files, n_mounts;
} disk_requests;

void disk_requests_done(disk_requests *r);

/* Read every request in @dir (a missing dir is no request). Unreadable or
 * malformed files are still listed in files (so they are removed) but ask for
 * nothing. Returns the number of valid requests, or -errno. */
int disk_requests_read(const char *dir, disk_requests *ret);

/* Does any request ask about @mount? */
bool disk_requests_cover(const disk_requests *r, const char *mount);

/* Remove the files read. Returns 0 or the first -errno (the others are still tried). */
int disk_requests_consume(const disk_requests *r);
