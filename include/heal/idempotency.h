/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Idempotency: one incident is healed once, even when its triggers race. */
#pragma once

#include <stdint.h>
#include "heal/state.h"

/**
 * heal_idem_key() - the key of one incident.
 * @incident: the incident id when the trigger has one (a failed unit's
 *   InvocationID, an alert fingerprint); NULL or "" to bucket by time.
 * @bucket_usec: the bucket width used when @incident is empty.
 * @ret: a new string "class|target|incident" or "class|target|t<bucket>",
 *   where <bucket> is the start of @now_usec's bucket in decimal µs
 *   (now_usec - now_usec % bucket_usec).
 * Returns 0 or -ENOMEM / -EINVAL (empty class or target, '|' in either,
 * no incident and bucket_usec 0).
 */
int heal_idem_key(const char *class, const char *target, const char *incident,
                  uint64_t now_usec, uint64_t bucket_usec, char **ret);

typedef enum heal_idem_status {
        HEAL_IDEM_NEW,       /* never seen, or seen and released */
        HEAL_IDEM_IN_FLIGHT, /* another run is acting on it right now */
        HEAL_IDEM_DONE,      /* acted and verified */
} heal_idem_status;

/**
 * heal_idem_begin() - claim an incident before acting on it.
 * @ttl_usec: how long "done" and "in flight" last (policy idempotency_s);
 *   an in-flight claim older than this is considered abandoned.
 * @ret_status: what was found (valid on both 0 and >0 returns).
 *
 * Atomic under the record's lock: of N racing callers exactly one gets >0.
 * Stored in state namespace "idem" as {"state": "in-flight"|"done",
 * "since": µs, "until": µs}; a done claim lasts until its "until".
 * Returns >0 when the caller now owns the incident (recorded in flight),
 * 0 when it is done or in flight elsewhere, -errno (-EBADMSG corrupt) on error.
 */
int heal_idem_begin(heal_state *s, const char *key, uint64_t now_usec, uint64_t ttl_usec,
                    heal_idem_status *ret_status);

/**
 * heal_idem_finish() - settle a claim taken by heal_idem_begin().
 * @verified: true records "done" (until now + ttl); false releases the claim
 *   so a later trigger may try again (the breaker counts the failure).
 * Claims carry no owner: call it only after a >0 heal_idem_begin().
 * Returns 0 or -errno.
 */
int heal_idem_finish(heal_state *s, const char *key, bool verified, uint64_t now_usec,
                     uint64_t ttl_usec);

/* Read-only look-up, for healctl and shadow mode; an in-flight claim is judged
 * by the ttl it was taken with. Returns 0 or -errno (-EBADMSG corrupt). */
int heal_idem_peek(heal_state *s, const char *key, uint64_t now_usec, heal_idem_status *ret_status);
