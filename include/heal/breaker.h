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

const char *heal_breaker_state_to_string(heal_breaker_state s);

/**
 * heal_breaker_admit() - may one heal of @key run now?
 * @ret_state: the state seen (after any open -> half-open move).
 *
 * Closed admits. Open refuses until the cooldown is over; then exactly one
 * caller, across racing processes, gets the half-open trial (recorded under
 * the lock); a trial whose owner never reported (crashed) is given up after
 * another cooldown and a new trial allowed.
 * Returns >0 admitted, 0 refused, -errno (-EBADMSG corrupt record).
 */
int heal_breaker_admit(heal_state *s, const char *key, const heal_breaker_spec *spec,
                       uint64_t now_usec, heal_breaker_state *ret_state);

/**
 * heal_breaker_record() - the outcome of an admitted heal.
 * @success: verified (true) or failed action / failed verify (false).
 * @ret_state: the state after.
 *
 * Success closes (and resets the count); failure counts, opening at
 * spec->failures; a failed half-open trial opens again for a full cooldown.
 * Returns 1 when this call changed open/closed (opened or closed the breaker),
 * 0 when not, -errno on error.
 */
int heal_breaker_record(heal_state *s, const char *key, const heal_breaker_spec *spec,
                        bool success, uint64_t now_usec, heal_breaker_state *ret_state);

/* Current state and consecutive failure count, read-only. Returns 0 or -errno. */
int heal_breaker_get(heal_state *s, const char *key, const heal_breaker_spec *spec,
                     uint64_t now_usec, heal_breaker_state *ret_state, uint32_t *ret_failures);

/* Force closed (healctl breaker reset). Returns 0 or -errno. */
int heal_breaker_reset(heal_state *s, const char *key);
