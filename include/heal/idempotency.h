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
        HEAL_IDEM_IN_FLIGHT, /* another run, still alive, is handling it right now */
        HEAL_IDEM_DONE,      /* acted and verified */
} heal_idem_status;

/*
 * In flight lives as long as its owner. heal_idem_begin() hands its caller
 * the claim's lock (a flock on <state>/idem-claim/.lock/<key>, never taken by
 * anything else), held for the whole pass and released by
 * heal_idem_finish() or by the owner's death. While it is held the incident
 * is in flight, whatever the clock says: a pass may verify for longer than
 * any ttl (settle_s up to an hour, idempotency_s as low as 0). Once it is
 * free, an in-flight record left behind is a dead owner's and is taken over
 * at once. The ttl only bounds "done".
 *
 * Storage and durability. Records are {"state": "in-flight"|"done", "since":
 * µs, "until": µs}, all under the lock (namespace "idem", the key):
 *   "idem"        done records, written durably (data synced before the
 *                 rename, then the dir: 2 syncs), only after verification;
 *   "idem-claim"  in-flight claims, never synced (HEAL_STATE_WRITE_NOSYNC),
 *                 removed without a sync.
 * Why a claim needs no sync: it only keeps concurrent runs apart, and the
 * runs that can race are alive at the same time, so they see each other's
 * claim in the page cache (the rename is visible at once; a process killed
 * mid-action leaves it there, with its lock free: abandoned). What a
 * sync would add is survival across a power loss or kernel crash, and after
 * one no run of the old boot is acting any more: a claim lost then lets the
 * next trigger try again, which is the right thing after a crash mid-action
 * (whether the action happened is unknown; its budget token was synced
 * before it started, so retries stay bounded by the budgets).
 * The price: a rename that was never synced can leave, after a power loss,
 * an empty or partly written file (ext4 delayed allocation, XFS). So a
 * record of "idem-claim" that does not load (-EBADMSG) is read as no claim,
 * in that namespace only: nothing but claims is written there. Every done
 * record is synced before it is renamed into place, so one that does not
 * load is real damage and still fails closed (-EBADMSG), as does a claim
 * that loads but is malformed (that is no torn write either).
 * Done is looked up before the claim, so a claim left behind by a run that
 * died between recording done and removing its claim never hides "done".
 * Cost of an acting pass: begin 0 syncs, finish 2.
 */

/**
 * heal_idem_begin() - claim an incident before acting on it.
 * @ttl_usec: recorded as the claim's "until" (informational: a claim's life
 *   is its lock's, above).
 * @ret_status: what was found (valid on both 0 and >0 returns).
 * @ret_claim_fd: on >0, the claim's lock; the caller holds it (keeps the fd
 *   open, never shares it with a child that outlives the pass) until it
 *   hands it to heal_idem_finish(). Closing it without a finish releases
 *   the claim as a dead owner's would.
 *
 * Atomic under the record's lock: of N racing callers exactly one gets >0.
 * A done record lasts until its "until". The claim is not synced (above).
 * Returns >0 when the caller now owns the incident (recorded in flight),
 * 0 when it is done or in flight elsewhere (a live owner holds the claim),
 * -errno (-EBADMSG corrupt) on error.
 */
int heal_idem_begin(heal_state *s, const char *key, uint64_t now_usec, uint64_t ttl_usec,
                    heal_idem_status *ret_status, int *ret_claim_fd);

/**
 * heal_idem_finish() - settle a claim taken by heal_idem_begin().
 * @claim_fd: the claim's lock from heal_idem_begin(); closed (set to -EBADF)
 *   in every case, errors included, so the claim never outlives the pass.
 * @verified: true records "done" (until now + ttl), durably, before the claim
 *   is removed; false releases the claim so a later trigger may try again
 *   (the breaker counts the failure), and removes the key's lock file when
 *   no done record is left either.
 * Call it only after a >0 heal_idem_begin().
 * Returns 0 or -errno.
 */
int heal_idem_finish(heal_state *s, const char *key, int *claim_fd, bool verified, uint64_t now_usec,
                     uint64_t ttl_usec);

/* Look-up without claiming, for healctl and shadow mode; an in-flight claim
 * is in flight while its lock is held (probed under the record's lock), new
 * otherwise. Returns 0 or -errno (-EBADMSG corrupt). */
int heal_idem_peek(heal_state *s, const char *key, uint64_t now_usec, heal_idem_status *ret_status);

/* heal_idem_gc_maybe() runs heal_idem_gc() at most this often, removing at most this many. */
#define HEAL_IDEM_GC_INTERVAL_USEC (UINT64_C(60) * 1000000)
#define HEAL_IDEM_GC_MAX 4096U

/**
 * heal_idem_gc() - remove the records whose time is over.
 * @max_remove: stop after this many removals (0: no limit).
 *
 * Removes done records past their "until", in-flight claims whose lock is
 * free (their owner died: what heal_idem_peek() calls new; a held one stays
 * however old), and claims that do not load (above), each under its key's
 * lock, taken without
 * waiting (a key in use is skipped); a key left with no record loses its lock
 * file too. A done record that does not load stays (fail closed, for a
 * human). Removals are not synced: an expired record a crash brings back is
 * still expired. A torn claim whose file name is hashed (keys over 200 bytes)
 * cannot be named and stays until the key is claimed again.
 * Cost: reads every record of both namespaces; see heal_idem_gc_maybe().
 * Returns the number of records removed, or -errno.
 */
int heal_idem_gc(heal_state *s, uint64_t now_usec, unsigned max_remove);

/**
 * heal_idem_gc_due() - is an occasional gc due? When the last one is
 * HEAL_IDEM_GC_INTERVAL_USEC old (or never ran, or is stamped in the
 * future), stamps @now_usec (not synced) and returns >0: the caller runs its
 * gc now (heal_idem_gc(), and the guard also ages out pending records).
 * Returns >0 due, 0 not, or -errno.
 */
int heal_idem_gc_due(heal_state *s, uint64_t now_usec);

/**
 * heal_idem_gc_maybe() - heal_idem_gc() when the last one is
 * HEAL_IDEM_GC_INTERVAL_USEC old (or never ran, or is stamped in the future).
 * For the guard, once per pass: when not due it costs one small read. The
 * time of the last gc is a record in namespace "idem-gc", written (not
 * synced) before the gc starts, so racing passes do not all gc.
 * Returns heal_idem_gc()'s result, 0 when not due, or -errno.
 */
int heal_idem_gc_maybe(heal_state *s, uint64_t now_usec);
