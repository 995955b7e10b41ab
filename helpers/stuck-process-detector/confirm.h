/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Confirm: a condition counts only when two independent signals both persisted for the dwell time across
 * samples. The per-unit memory of what was seen since when (persisted between runs), and the verdicts. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "scan.h"

/* One episode of one class on one unit: from its first sample until it clears. */
typedef struct stuck_episode {
        char incident[33];   /* "" when nothing is tracked; else the id every audit record of it carries */
        uint64_t since_usec; /* CLOCK_MONOTONIC of the first sample that saw it */
        unsigned n_samples;  /* samples that saw it, the first included */
        bool confirmed;      /* "confirmed" was audited; it now goes to the guard on every sample */
} stuck_episode;

/* A task seen in D, by identity (pid + start time), from its first sample. */
typedef struct stuck_d_task {
        pid_t pid;
        uint64_t start_ticks;
        uint64_t since_usec;
        unsigned n_samples;
} stuck_d_task;

/* Everything the detector remembers about one unit between runs (besides its last sample). */
typedef struct stuck_track {
        /* process-stuck's signals, each from the first sample that saw it; 0: not seen now */
        uint64_t flat_since;  /* start of the first interval with no cpu/io progress */
        uint64_t stale_since; /* the heartbeat was stale */
        uint64_t stall_since; /* PSI some avg60 at or above the threshold */
        stuck_episode stuck;

        stuck_d_task *d_tasks; /* the tasks in D in the last descended sample */
        size_t n_d_tasks;
        stuck_episode d_state;

        stuck_episode zombies;
} stuck_track;

void stuck_track_done(stuck_track *t);

/* The persisted form; unknown keys are ignored, a wrong shape is -EBADMSG. Return: 0, -ENOMEM, -EBADMSG. */
int stuck_track_to_json(const stuck_track *t, json_t **ret);
int stuck_track_from_json(const json_t *j, stuck_track *ret);

/* True when the track remembers nothing (no signal seen, no episode, no task in D): what a unit that
 * makes progress has, and what the store leaves out. */
bool stuck_track_is_empty(const stuck_track *t);

/* True when a class needs the unit's processes read at its next sample (its evidence lives there). */
bool stuck_track_wants_procs(const stuck_track *t);

/* What one sample says, next to the previous one (see stuck_observe()). */
typedef struct stuck_observation {
        uint64_t now_usec;       /* CLOCK_MONOTONIC of this sample */
        uint64_t prev_usec;      /* of the previous sample; 0 when there was none */
        stuck_progress progress; /* cpu or io progress between the two */
        int heartbeat_stale;     /* 1 stale, 0 fresh, -1 unknown or not configured */
        int psi_stall;           /* 1 stalled, 0 not, -1 unavailable */
        bool psi_skipped;        /* PSI was not read (the unit progressed, see pressure_skipped): whether
                                  * a stall seen before lasted through it is unknown, so it is forgotten */
        bool prev_partial;       /* the previous sample read cpu only (the unit progressed then): flat
                                  * by cpu alone since then says nothing of io, so flat dates from now */
} stuck_observation;

typedef enum stuck_verdict {
        STUCK_VERDICT_NONE,      /* nothing to track */
        STUCK_VERDICT_DETECTED,  /* a new episode (audit "detected") */
        STUCK_VERDICT_DWELLING,  /* tracked, not confirmed yet */
        STUCK_VERDICT_CONFIRMED, /* confirmed by this sample (audit "confirmed", then the guard); with
                                  * n_samples == 1 the episode also began here */
        STUCK_VERDICT_ONGOING,   /* confirmed earlier and still true (the guard again: idempotency decides) */
        STUCK_VERDICT_DISMISSED, /* cleared before it was confirmed (audit "dismissed") */
        STUCK_VERDICT_RESOLVED,  /* cleared after it was confirmed */
} stuck_verdict;

const char *stuck_verdict_to_string(stuck_verdict v);

/**
 * stuck_progress_between() - did the unit make progress between two samples?
 * @prev: the previous sample, or NULL.
 * @now: this sample.
 *
 * The cgroup's cpu or io counter grew: yes. Cpu known and flat (io flat or unknown): none. Cpu unknown:
 * the processes decide when both samples descended (a process that used cpu or did io, or a new process,
 * is progress; every process matched and flat is none). Anything else is unknown.
 */
stuck_progress stuck_progress_between(const stuck_unit_sample *prev, const stuck_unit_sample *now);

/**
 * stuck_confirm_stuck() - process-stuck: no progress AND (stale heartbeat OR PSI stall).
 * @t: the unit's track, updated.
 * @o: this sample.
 * @dwell_usec: how long both signals must have persisted.
 * @ret_reason: for DISMISSED and DWELLING, why (static string); may be NULL.
 *
 * Flat cpu alone is an idle worker, a stale heartbeat alone may be a slow disk: neither is tracked as an
 * episode. The flat signal dates from the start of its first flat interval (the previous sample), the
 * others from the first sample that saw them. Confirmed when flatness and one of the others have both
 * lasted @dwell_usec since an earlier sample (one sample never confirms); that may be the sample that
 * begins the episode (CONFIRMED with stuck.n_samples == 1: audit "detected" first).
 */
stuck_verdict stuck_confirm_stuck(stuck_track *t, const stuck_observation *o, uint64_t dwell_usec,
                                  const char **ret_reason);

/**
 * stuck_confirm_d_state() - process-d-state: a task in D longer than the dwell.
 * @s: this sample; when it did not descend nothing is known and the track is left alone (DWELLING or NONE).
 * @now_usec: CLOCK_MONOTONIC of the sample.
 *
 * A task is followed by identity from its first sample in D. The episode starts when one task was seen
 * in D by two samples in a row (a single sample catches tasks waiting for a disk every time), and is
 * confirmed when one such task has been in D for @dwell_usec: the longer of its time since the first
 * sample and the kernel's own block time (schedstats) when known.
 */
stuck_verdict stuck_confirm_d_state(stuck_track *t, const stuck_unit_sample *s, uint64_t now_usec,
                                    uint64_t dwell_usec);

/* The longest-blocked task of the sample that the track follows, or NULL. */
const stuck_proc_sample *stuck_d_worst(const stuck_track *t, const stuck_unit_sample *s, uint64_t now_usec,
                                       uint64_t *ret_d_usec);

/**
 * stuck_confirm_zombies() - process-zombies: more than @max zombies in the unit.
 * @s: this sample; unknown zombie counts leave the track alone.
 *
 * Detected at the first sample over @max, confirmed when a later sample, @dwell_usec on, is still over.
 */
stuck_verdict stuck_confirm_zombies(stuck_track *t, const stuck_unit_sample *s, uint64_t now_usec, unsigned max,
                                    uint64_t dwell_usec);

/* Zombies in the sample (sum over their parents); -1 when unknown. */
long stuck_zombie_count(const stuck_unit_sample *s);

/* Forget an episode (after acting: the process it was about is gone). */
void stuck_episode_reset(stuck_episode *e);
