/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decide: the policy's side of the detector — which units, whose heartbeat where, the thresholds, and what
 * each confirmed class means (an intent and a tier for the guard). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "heal/policy.h"
#include "scan.h"

#define STUCK_HEALER "stuck-process-detector"
#define STUCK_CLASS "process-stuck"
#define STUCK_CLASS_D_STATE "process-d-state"
#define STUCK_CLASS_ZOMBIES "process-zombies"

/* The classes and their detector keys, resolved once per run (pointers borrowed from the policy). */
typedef struct stuck_config {
        const heal_class_policy *stuck;   /* NULL when the policy does not define the class */
        const heal_class_policy *d_state;
        const heal_class_policy *zombies;
        json_t *heartbeats;               /* process-stuck's "heartbeat" map, may be NULL */
        uint32_t heartbeat_stale_s;
        uint32_t psi_stall_percent;
        uint32_t zombies_max;
} stuck_config;

/* Reads the three classes (absent ones stay NULL) and their keys, defaults where absent. */
void stuck_config_from_policy(const heal_policy *p, stuck_config *ret);

/* Does @class look at @unit? Only services carry workers. A unit enrolled with heal (healctl enroll) is
 * looked at unless the class excludes it; any other must match the class's targets and not its exclude
 * globs (by default heal-*, systemd-*, dbus.service). */
bool stuck_class_targets(const heal_class_policy *class, const char *unit, bool enrolled);
bool stuck_unit_targeted(const stuck_config *c, const char *unit, bool enrolled);

/* The union of the classes' targets globs and @enrolled (NULL-terminated strvs; the result is one the
 * caller frees), for ListUnitsByPatterns. Return: the count, or -ENOMEM. */
int stuck_target_patterns(const stuck_config *c, char *const *enrolled, char ***ret);

typedef enum stuck_heartbeat_source {
        STUCK_HEARTBEAT_NONE,
        STUCK_HEARTBEAT_FILE,
        STUCK_HEARTBEAT_WATCHDOG,
} stuck_heartbeat_source;

typedef struct stuck_heartbeat_spec {
        stuck_heartbeat_source source;
        char *file;          /* FILE: the path with %n/%i/%% expanded */
        const char *pattern; /* the map key that matched (borrowed) */
} stuck_heartbeat_spec;

void stuck_heartbeat_spec_done(stuck_heartbeat_spec *h);

/**
 * stuck_heartbeat_for() - where @unit's heartbeat is.
 * @ret: written on success; source NONE when the map has no entry for the unit.
 *
 * An exact key beats a glob; among globs the longest pattern wins (then the lexically first), so the
 * answer never depends on the order of the merged policy.
 *
 * Return: 0; -EINVAL when the matching entry is unusable (source "file" without an absolute "file", a
 * file for source "watchdog", a bad % escape): the heartbeat is then unavailable, never "fresh"; -ENOMEM.
 */
int stuck_heartbeat_for(const stuck_config *c, const char *unit, stuck_heartbeat_spec *ret);

/* Expand %n (the unit), %i (its instance, "" for none), %p (prefix before '@' or the suffix), %% in
 * @tmpl. Return: 0, -EINVAL for an unknown or trailing %, -ENOMEM. */
int stuck_expand_path(const char *tmpl, const char *unit, char **ret);

/* PSI some avg60 of cpu, memory or io at or above @percent: 1; all known below: 0; none known: -1.
 * @ret_worst (may be NULL): the highest avg60 seen, in hundredths of a percent. */
int stuck_psi_stalled(const stuck_cgroup_sample *s, uint32_t percent, uint32_t *ret_worst);

/* What the guard is handed for a confirmed class. */
typedef struct stuck_intent {
        const char *class;
        char *intent;         /* "SIGABRT the main process of foo.service, then see it come back" */
        const char *rollback;
        int tier_override;    /* -1: the class's tier; HEAL_TIER_HUMAN for the classes heal cannot act on */
        bool kill;            /* act by SIGABRT + revive (process-stuck); else nothing to do but escalate */
} stuck_intent;

void stuck_intent_done(stuck_intent *i);

/* The intent for @class on @unit; @evidence (may be NULL) names what a human is handed ("blocked: PID 7
 * (cat) in uninterruptible sleep ..."), so the escalation names the task or parent.
 * Return: 0, -EINVAL for a class the detector does not know, -ENOMEM. */
int stuck_decide(const char *class, const char *unit, const char *evidence, stuck_intent *ret);
