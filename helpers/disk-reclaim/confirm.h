/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Confirm: pressure must still hold after the dwell time, on the same mount
 * (same device, same mount id). The first sample is kept between runs. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "detect.h"
#include "heal/state.h"

/* State namespace of the first samples (one record per mount point). */
#define DISK_SAMPLES_NS "samples"

typedef enum disk_verdict {
        DISK_VERDICT_NONE,      /* no pressure and no earlier sample: nothing to say */
        DISK_VERDICT_FIRST,     /* pressure seen for the first time: sample kept, wait for the dwell */
        DISK_VERDICT_WAITING,   /* pressure still there, but the dwell is not over yet */
        DISK_VERDICT_CONFIRMED, /* pressure held through the dwell on the same mount (or a request confirms
                                   it) */
        DISK_VERDICT_DISMISSED, /* an earlier sample saw pressure, this one does not */
} disk_verdict;

const char *disk_verdict_to_string(disk_verdict v);

/**
 * disk_confirm() - judge this sample of @m against the kept first sample.
 * @samples: where first samples live (a state dir on tmpfs: heal_path_run_dir()/disk-reclaim).
 * @pressure: this sample is below a threshold (disk_mount_pressure()).
 * @dwell_usec: how long pressure must hold; 0 confirms at once.
 * @requested: a request (healctl run, an alert) is the independent second
 *   signal: pressure now is confirmed without waiting for the dwell.
 * @facts: when not NULL, gets "first_sample_usec", "dwell_s", "confirmed_by"
 *   and, when a kept sample was of another mount, "replaced_sample".
 *
 * The first sample of an episode is always kept (its time names the
 * incident), also when the dwell is 0 or a request confirms at once.
 * A sample of another mount at the same point (other mount id or device:
 * remounted, another disk) does not count: it is replaced and the dwell
 * starts again. Pressure gone removes the sample.
 * Returns 0 with *ret set, or -errno when the sample could not be read or
 * written (a corrupt sample is replaced, not an error).
 */
int disk_confirm(heal_state *samples, const disk_mount *m, bool pressure, uint64_t dwell_usec,
                 bool requested, uint64_t now_usec, json_t *facts, disk_verdict *ret);

/* Forget the sample of @mount (after a heal relieved it). Returns 0 or -errno. */
int disk_confirm_forget(heal_state *samples, const char *mount);
