/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Between runs, each unit's last sample, its confirmation track and where its cgroup lives, under
 * heal_path_run_dir()/stuck (a heal_state dir: atomic, verified records), so dwell times span runs and
 * vanish at reboot. One record holds every unit, read once and written once a run; a sample that read
 * processes gets a record of its own, so a run never holds every unit's processes in memory at once. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "heal/state.h"
#include "confirm.h"
#include "scan.h"

#define STUCK_STORE_NS "scan"            /* the record of every unit... */
#define STUCK_STORE_KEY "units"          /* ...under this key */
#define STUCK_STORE_SAMPLES_NS "samples" /* descended samples, one record per unit */
#define STUCK_STORE_LEGACY_NS "units"    /* one record per unit, from before; removed on first use */

typedef struct stuck_store stuck_store;

/**
 * stuck_store_open() - open (creating) heal_path_run_dir()/stuck and read its record of every unit.
 *
 * A missing record is an empty store; so is a corrupt one (a sample is only a baseline): the next
 * stuck_store_commit() replaces it.
 * Return: 0, -errno.
 */
int stuck_store_open(stuck_store **ret);

stuck_store *stuck_store_free(stuck_store *s);
static inline void stuck_store_freep(stuck_store **s) {
        stuck_store_free(*s);
}

/* The heal_state dir the store lives in (owned by the store). */
heal_state *stuck_store_state(stuck_store *s);

/* One unit's record. */
typedef struct stuck_record {
        bool have_sample;
        stuck_unit_sample sample;
        stuck_track track;
        char *control_group; /* Service.ControlGroup when it was last asked, NULL unknown */
        char *invocation_id; /* the unit's invocation then: the path holds while it is the same */
} stuck_record;

void stuck_record_done(stuck_record *r);

/**
 * stuck_store_get() - the unit's record.
 * @ret: written on success.
 *
 * Return: 0; -ENOENT when there is none; -EBADMSG when it is corrupt or of the wrong shape (the caller
 * starts over: a sample is only a baseline); other -errno.
 */
int stuck_store_get(stuck_store *s, const char *unit, stuck_record *ret);

/**
 * stuck_store_put() - replace the unit's record (in memory; its descended sample on disk now).
 * @sample: may be NULL (no baseline: the next run starts over).
 * @control_group, @invocation_id: may be NULL (unknown).
 *
 * Return: 0, -errno.
 */
int stuck_store_put(stuck_store *s, const char *unit, const stuck_unit_sample *sample, const stuck_track *track,
                    const char *control_group, const char *invocation_id);

/* Forget the unit. Return: 0, -errno. */
int stuck_store_drop(stuck_store *s, const char *unit);

/**
 * stuck_store_commit() - write the record of every unit, once.
 * @keep: NULL-terminated; the units not in it are dropped first (they do not run any more).
 *
 * Not synced: /run is tmpfs, and a lost or torn record only costs a baseline. Samples of units the
 * record no longer names (a run that died before its commit) are removed.
 * Return: how many units were dropped, or -errno.
 */
int stuck_store_commit(stuck_store *s, char *const *keep);
