/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pending actions of the delayed and approve tiers: recorded, then approved,
 * cancelled, run when the window ends, or expired. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "heal/state.h"

typedef enum heal_pending_status {
        HEAL_PENDING_WAITING,   /* delayed: window open; approve: awaiting approval */
        HEAL_PENDING_APPROVED,  /* approve tier, approved by a human */
        HEAL_PENDING_CANCELLED, /* cancelled by a human */
} heal_pending_status;

const char *heal_pending_status_to_string(heal_pending_status s);

typedef struct heal_pending {
        char id[13];    /* short id for humans: 12 hex chars derived from idem_key */
        char *idem_key; /* the incident's idempotency key */
        char *healer, *class, *target, *incident, *intent, *tier;
        char *rerun_unit; /* the unit that re-runs the helper through the guard */
        json_t *facts;
        heal_pending_status status;
        char *decided_by; /* who approved/cancelled, NULL while waiting */
        /* The HEAL_INCIDENT of the incident's audit records: the trigger's id,
         * or the one the guard derived when it had none. NULL in records
         * written before it was kept. */
        char *incident_id;
        uint64_t decided_usec; /* when approved/cancelled; 0 while waiting and in older records */
        uint64_t created_usec;
        uint64_t not_before_usec; /* delayed: end of the cancel window */
        uint64_t expires_usec;    /* approve: unapproved after this is expired */
} heal_pending;

void heal_pending_done(heal_pending *p); /* frees the strings, accepts zeroed */

/* Derive the short id of an idempotency key into @id. */
void heal_pending_id(const char *idem_key, char id[static 13]);

/* True when @id has the form of a short id (12 lower-case hex chars). */
bool heal_pending_id_valid(const char *id);

/**
 * heal_pending_stale() - is a waiting action past the point where a human can decide it?
 * True for an approve-tier plan at or past expires_usec (expired), and for a
 * delayed action at or past not_before_usec (due: it runs by itself now).
 * False for decided records and for a 0 deadline (none).
 */
bool heal_pending_stale(const heal_pending *p, uint64_t now_usec);

/* The least time a record stays usable past its deadline or decision (below). */
#define HEAL_PENDING_MIN_SPAN_USEC (UINT64_C(300) * 1000000)

/**
 * heal_pending_over() - is @p past the point where anyone may act on it?
 * A record's span is its own window (delayed: not_before - created; approve:
 * expires - created), at least HEAL_PENDING_MIN_SPAN_USEC.
 * Over: a waiting approve plan once stale (expired unapproved); a waiting
 * delayed action one span after it fell due (the re-run that should have
 * run it never came); an approved or cancelled record one span after the
 * decision (nobody consumed it). What is over never acts; the guard's gc
 * removes it (heal_pending_gc()).
 */
bool heal_pending_over(const heal_pending *p, uint64_t now_usec);

/* Create or replace (namespace "pending", key = id derived from idem_key;
 * p->id may be "" and must otherwise match). idem_key, class, target and tier
 * are required (-EINVAL). Does not lock: a read-modify-write holds
 * heal_state_lock(s, "pending", id) around it, as heal_pending_decide() does.
 * Returns 0 or -errno. */
int heal_pending_save(heal_state *s, const heal_pending *p);

/* Load by short id. Returns 0, -ENOENT (also for a malformed id), -EBADMSG
 * (unparsable, a field of the wrong type, or an id that does not match its
 * key or idem_key), or -errno. */
int heal_pending_load(heal_state *s, const char *id, heal_pending *ret);

/* Remove by short id. Returns 0 or -errno. */
int heal_pending_remove(heal_state *s, const char *id);

/**
 * heal_pending_decide() - approve or cancel a waiting action.
 * @status: HEAL_PENDING_APPROVED or HEAL_PENDING_CANCELLED.
 * @ret: when non-NULL, the record as decided (caller heal_pending_done()s).
 * Returns 0; -ENOENT (no such id), -EALREADY (already decided), -ESTALE
 * (heal_pending_stale(): expired, or a delayed action already due), or -errno.
 * Under the record's lock. Records who decided (decided_by) and when (decided_usec = @now_usec).
 */
int heal_pending_decide(heal_state *s, const char *id, heal_pending_status status, const char *who,
                        uint64_t now_usec, heal_pending *ret);

/**
 * heal_pending_take() - consume a record only if it is still the one a decision was based on.
 * @expected: the record as loaded earlier (its id, status, tier, decider and deadlines).
 * @ret_current: when non-NULL and the record changed, the record as it is now
 *   (caller heal_pending_done()s).
 *
 * Compare-and-remove under heal_state_lock(s, "pending", id): a cancel or
 * approval that raced the caller is never overridden.
 * Returns 1 removed, 0 changed (kept), -ENOENT gone, or -errno.
 */
int heal_pending_take(heal_state *s, const heal_pending *expected, heal_pending *ret_current);

/* Called by heal_pending_gc() with each record it removed (borrowed). */
typedef void (*heal_pending_gc_fn)(const heal_pending *p, void *userdata);

/**
 * heal_pending_gc() - remove the records that are over (heal_pending_over()).
 * @fn: told about each removed record (the guard audits them); may be NULL.
 *
 * Each record is re-read and removed under its lock, taken without waiting
 * (a record in use is left for the next gc). Corrupt records stay, for a
 * human (healctl pending lists them).
 * Returns the number removed, or -errno.
 */
int heal_pending_gc(heal_state *s, uint64_t now_usec, heal_pending_gc_fn fn, void *userdata);

/* Every pending action, oldest first. Returns the count and a caller-owned
 * array (free each with heal_pending_done, then the array). Corrupt records
 * are left out (heal_state_list() + heal_pending_load() report them). */
int heal_pending_list(heal_state *s, heal_pending **ret, size_t *ret_n);
