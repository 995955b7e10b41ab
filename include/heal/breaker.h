/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Circuit breaker per class+target: stop healing what healing does not fix. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include "heal/state.h"

typedef enum heal_breaker_state {
        HEAL_BREAKER_CLOSED,
        HEAL_BREAKER_OPEN,
        HEAL_BREAKER_HALF_OPEN, /* cooldown over; one trial allowed */
} heal_breaker_state;

typedef struct heal_breaker_spec {
        uint32_t failures;   /* consecutive failed heals that open it, >= 1 */
        uint32_t cooldown_s; /* open -> half-open after this */
} heal_breaker_spec;

/* Default state namespace of the breakers (shadow mode uses "shadow-breaker"). */
#define HEAL_BREAKER_NS "breaker"

/* "closed", "open", "half-open"; NULL when out of range. */
const char *heal_breaker_state_to_string(heal_breaker_state s);
/* The inverse; returns the state or -EINVAL. */
int heal_breaker_state_from_string(const char *s);

/**
 * heal_breaker_admit() - may one heal of @key run now?
 * @ret_state: the state seen (after any open -> half-open move).
 * @ret_trial_fd: required; set to the trial's lock when this call hands out
 *   the half-open trial, else to -EBADF. The caller owns it: it keeps it open
 *   for its whole pass (after heal_breaker_record()), or gives the trial back
 *   with heal_breaker_release() when it stops before acting.
 *
 * Closed admits. Open refuses until the cooldown is over; then exactly one
 * caller, across racing processes, gets the half-open trial (recorded under
 * the lock) with its lock (a flock on <ns>/.lock/"trial|<key>"). No other
 * trial is handed out while that lock is held, however long its owner takes
 * (settle times may be longer than the cooldown); when it is free but the
 * record still says half-open, the owner died without reporting, and the
 * trial goes to this caller at once. A cooldown stamped in the future (the
 * clock went back) restarts from @now_usec, so it is never stuck waiting for
 * the old time.
 * Writes (durably) only when the record changes: a closed breaker, or an
 * open one still cooling down, admits or refuses without any write.
 * Returns >0 admitted, 0 refused, -errno (-EBADMSG corrupt record, -EINVAL
 * spec->failures == 0).
 */
int heal_breaker_admit(heal_state *s, const char *key, const heal_breaker_spec *spec,
                       uint64_t now_usec, heal_breaker_state *ret_state, int *ret_trial_fd);

/**
 * heal_breaker_release() - give back a trial that was never tried.
 * @trial_fd: from heal_breaker_admit(); closed (set to -EBADF) in every case.
 *
 * For a pass that took the trial and then stopped before acting (budget
 * exhausted, kill switch engaged, its pending action cancelled): the
 * breaker goes back to open with its cooldown as it was (over), so the next
 * pass may take the trial at once rather than a cooldown later.
 * Returns 1 put back, 0 nothing to give back (no trial held, or the record
 * moved on), -errno.
 */
int heal_breaker_release(heal_state *s, const char *key, int *trial_fd);

/**
 * heal_breaker_record() - the outcome of an admitted heal.
 * @success: verified (true) or failed action / failed verify (false).
 * @ret_state: the state after.
 *
 * Success closes (and resets the count); failure counts, opening at
 * spec->failures; a failed half-open trial opens again for a full cooldown
 * from @now_usec (that re-opening counts as opening: returns 1). A failure
 * reported while already open only counts. Nothing is written when nothing
 * changes (a success on a closed breaker without failures, the common case;
 * a count already at UINT32_MAX), so the record's file is left untouched.
 * Returns 1 when this call changed open/closed (opened or closed the breaker),
 * 0 when not, -errno on error.
 */
int heal_breaker_record(heal_state *s, const char *key, const heal_breaker_spec *spec,
                        bool success, uint64_t now_usec, heal_breaker_state *ret_state);

/* Current state and consecutive failure count, read-only. Returns 0 or -errno. */
int heal_breaker_get(heal_state *s, const char *key, const heal_breaker_spec *spec,
                     uint64_t now_usec, heal_breaker_state *ret_state, uint32_t *ret_failures);

/* Force closed (healctl breaker reset), also over a corrupt record. Returns 0 or -errno. */
int heal_breaker_reset(heal_state *s, const char *key);

/* The same, in state namespace @ns instead of HEAL_BREAKER_NS (shadow mode). */
int heal_breaker_admit_ns(heal_state *s, const char *ns, const char *key, const heal_breaker_spec *spec,
                          uint64_t now_usec, heal_breaker_state *ret_state, int *ret_trial_fd);
int heal_breaker_release_ns(heal_state *s, const char *ns, const char *key, int *trial_fd);
int heal_breaker_record_ns(heal_state *s, const char *ns, const char *key, const heal_breaker_spec *spec,
                           bool success, uint64_t now_usec, heal_breaker_state *ret_state);
int heal_breaker_get_ns(heal_state *s, const char *ns, const char *key, const heal_breaker_spec *spec,
                        uint64_t now_usec, heal_breaker_state *ret_state, uint32_t *ret_failures);
int heal_breaker_reset_ns(heal_state *s, const char *ns, const char *key);
