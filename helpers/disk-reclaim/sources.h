/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The policy as disk-reclaim reads it: which mounts, which thresholds, and
 * the ordered list of sources (reclaim_source for the core, plus the journal). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "heal/policy.h"
#include "plan.h"

#define DISK_PRESSURE_CLASS "disk-pressure"
#define DISK_LEAKED_CLASS "disk-leaked"

/* One source of the policy. */
typedef struct disk_source {
        reclaim_source rule; /* name/root/patterns point into the strings below */
        char *name, *root;
        char **patterns;        /* NULL: every regular file */
        heal_tier tier;         /* the source's own tier (the plan's is at least the class's) */
        bool journal;           /* the journal vacuum, no root */
        uint64_t keep_bytes;    /* journal: never below */
        uint64_t vacuum_time_s; /* journal: also --vacuum-time, 0: not */
} disk_source;

typedef struct disk_settings {
        char **mounts; /* globs, may be empty */
        disk_thresholds thresholds;
        uint64_t max_bytes, max_files;
        unsigned workers; /* 0: par_default_workers() */
        bool include_removable, include_loop;
        disk_source *sources;
        size_t n_sources;
        uint64_t leak_threshold_bytes;
} disk_settings;

void disk_settings_done(disk_settings *s);

/**
 * disk_settings_from_policy() - read the disk classes' keys.
 * @pressure: the disk-pressure class (its keys are filled by the schema's defaults).
 * @leaked: the disk-leaked class, or NULL (leak_threshold_bytes keeps its default).
 * @ret_error: on -EINVAL, what is wrong, naming the key (caller frees).
 *
 * Checks what the schema cannot: target above threshold, a root and an age
 * for every file source, no root for the journal. Whether a root is safe to
 * walk is the core's reclaim_source_check() at run time.
 * Returns 0, -EINVAL, or -ENOMEM.
 */
int disk_settings_from_policy(const heal_class_policy *pressure, const heal_class_policy *leaked,
                              disk_settings *ret, char **ret_error);

/* The file sources whose tier, raised to at least @class_tier, is @tier, in
 * policy order, as an array of borrowed reclaim_source (caller frees the
 * array only); *ret_idx maps each back to settings->sources. Returns the count
 * or -ENOMEM. */
int disk_sources_for_tier(const disk_settings *s, heal_tier class_tier, heal_tier tier, reclaim_source **ret,
                          size_t **ret_idx);

/* The journal source of that tier, or NULL. */
const disk_source *disk_journal_for_tier(const disk_settings *s, heal_tier class_tier, heal_tier tier);

/* max(a, b) in the order auto < delayed < approve < human. */
static inline heal_tier disk_tier_max(heal_tier a, heal_tier b) {
        return a > b ? a : b;
}
