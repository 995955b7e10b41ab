/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Between runs, each unit's last sample and its confirmation track live under heal_path_run_dir()/stuck
 * (a heal_state dir: atomic, verified records), so dwell times span runs and vanish at reboot. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "heal/state.h"
#include "confirm.h"
#include "scan.h"

#define STUCK_STORE_NS "units"

/* Opens (creating) heal_path_run_dir()/stuck. Return: 0, -errno. */
int stuck_store_open(heal_state **ret);

/* One unit's record. */
typedef struct stuck_record {
        bool have_sample;
        stuck_unit_sample sample;
        stuck_track track;
} stuck_record;

void stuck_record_done(stuck_record *r);

/**
 * stuck_store_load() - the unit's record.
 * @ret: written on success.
 *
 * Return: 0; -ENOENT when there is none; -EBADMSG when it is corrupt or of the wrong shape (the caller
 * starts over: a sample is only a baseline); other -errno.
 */
int stuck_store_load(heal_state *s, const char *unit, stuck_record *ret);

/* Replace the unit's record. @sample may be NULL (no baseline: the next run starts over).
 * Return: 0, -errno. */
int stuck_store_save(heal_state *s, const char *unit, const stuck_unit_sample *sample, const stuck_track *track);

/* Remove the records of every unit not in @keep (NULL-terminated). Return: how many, or -errno. */
int stuck_store_prune(heal_state *s, char *const *keep);
