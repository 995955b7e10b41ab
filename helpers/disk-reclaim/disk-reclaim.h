/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-reclaim as a whole: run() ties detect, confirm, decide (plan), the
 * guard, act and verify together for each filesystem, then looks for leaks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define DISK_HEALER "disk-reclaim"
#define DISK_UNIT "heal-disk-reclaim.service"
/* Under heal_path_run_dir(): request files, first samples, plans, the state fallback. */
#define DISK_REQUESTS_SUBDIR "requests/disk-reclaim"
#define DISK_SCRATCH_SUBDIR "disk-reclaim"
#define DISK_PLANS_SUBDIR "plans"
#define DISK_STATE_FALLBACK_SUBDIR "state-fallback"

typedef struct disk_options {
        const char *mount; /* --mount: only this mount point */
} disk_options;

/* Returns 0 when the run went through (whatever it found or did), -errno when
 * it could not run at all (the unit's OnFailure= escalates then). */
int run(const disk_options *o);

/* caps.c: keep only the capabilities deletion and /proc/PID/fd need.
 * Returns 0 (also when there was nothing to drop: not root), or -errno. */
int disk_caps_drop(void);
