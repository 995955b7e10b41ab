/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Idempotency: a claim per incident, taken and settled under the record's
 * lock so racing triggers of one incident act once; "done" records are
 * durable, in-flight claims only visible and alive exactly as long as their
 * owner holds the claim's lock (see idempotency.h for why). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/json-util.h"
#include "heal/idempotency.h"

#define IDEM_NS "idem"
#define CLAIM_NS "idem-claim"
#define GC_NS "idem-gc"
#define GC_KEY "last-run"
#define STATE_IN_FLIGHT "in-flight"
#define STATE_DONE "done"

static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

int heal_idem_key(const char *class, const char *target, const char *incident, uint64_t now_usec,
                  uint64_t bucket_usec, char **ret) {
        char *key;

        /* '|' separates the fields; in class or target it would make keys ambiguous. */
        if (!class || !*class || !target || !*target || !ret || strchr(class, '|') ||
            strchr(target, '|'))
                return -EINVAL;

        if (incident && *incident) {
                if (asprintf(&key, "%s|%s|%s", class, target, incident) < 0)
                        return -ENOMEM;
        } else {
                if (bucket_usec == 0)
                        return -EINVAL;
                if (asprintf(&key, "%s|%s|t%" PRIu64, class, target,
                             now_usec - now_usec % bucket_usec) < 0)
                        return -ENOMEM;
        }
        *ret = key;
        return 0;
}

/* What a stored record means at @now_usec; a malformed one is -EBADMSG (fail
 * closed). An in-flight claim is reported as such: whether its owner still
 * lives is for its lock to say (claim_lock()), not for the clock. */
static int classify(json_t *data, uint64_t now_usec, heal_idem_status *ret) {
        const char *state = json_string_value(json_object_get(data, "state"));
        uint64_t since, until;
        int r;

        if (!state)
                return -EBADMSG;
        r = heal_json_get_u64(data, "since", &since);
        if (r < 0)
                return r;
        r = heal_json_get_u64(data, "until", &until);
        if (r < 0)
                return r;

        if (strcmp(state, STATE_DONE) == 0)
                *ret = now_usec < until ? HEAL_IDEM_DONE : HEAL_IDEM_NEW;
        else if (strcmp(state, STATE_IN_FLIGHT) == 0)
                *ret = HEAL_IDEM_IN_FLIGHT;
        else
                return -EBADMSG;
        return 0;
}

/* One namespace's word on @key. In CLAIM_NS a record that does not load is
 * a claim cut short by a power loss: no claim. */
static int lookup_ns(heal_state *s, const char *ns, const char *key, uint64_t now_usec,
                     heal_idem_status *ret) {
        _cleanup_json_ json_t *data = NULL;
        int r = heal_state_read(s, ns, key, &data);
        if (r == -ENOENT || (r == -EBADMSG && strcmp(ns, CLAIM_NS) == 0)) {
                *ret = HEAL_IDEM_NEW;
                return 0;
        }
        if (r < 0)
                return r;
        return classify(data, now_usec, ret);
}

/* Done (durable) first: a claim left behind by a run that died after
 * recording done must not hide it. */
static int lookup(heal_state *s, const char *key, uint64_t now_usec, heal_idem_status *ret) {
        heal_idem_status st;
        int r = lookup_ns(s, IDEM_NS, key, now_usec, &st);
        if (r < 0)
                return r;
        if (st != HEAL_IDEM_NEW) {
                *ret = st;
                return 0;
        }
        return lookup_ns(s, CLAIM_NS, key, now_usec, ret);
}

/* The claim's own lock: the lock of its record in CLAIM_NS, which nothing
 * else takes (records are locked in IDEM_NS), so it cannot deadlock with the
 * record lock. Its owner holds it for the whole pass. Taken without waiting,
 * always under the record lock. Returns the fd (we hold it now: the claim has
 * no live owner), -EBUSY (a live owner holds it), or -errno. */
static int claim_lock(heal_state *s, const char *key) {
        int fd = -EBADF;
        int r = heal_state_lock_timeout(s, CLAIM_NS, key, 0, &fd);
        if (r == -ETIMEDOUT)
                return -EBUSY;
        return r < 0 ? r : fd;
}

/* Releases the claim lock and removes its file (under the record lock). */
static void claim_unlock(heal_state *s, const char *key, int *fd) {
        if (*fd >= 0)
                (void) heal_state_unlock_remove(s, CLAIM_NS, key, fd);
        *fd = -EBADF;
}

static int store(heal_state *s, const char *ns, const char *key, const char *state, uint64_t now_usec,
                 uint64_t ttl_usec, unsigned flags) {
        uint64_t until = add_sat(now_usec, ttl_usec);
        if (until > (uint64_t) LLONG_MAX)
                return -ERANGE;
        _cleanup_json_ json_t *data = json_pack("{s:s, s:I, s:I}", "state", state, "since",
                                                (json_int_t) now_usec, "until", (json_int_t) until);
        if (!data)
                return -ENOMEM;
        return heal_state_write_flags(s, ns, key, data, flags);
}

int heal_idem_begin(heal_state *s, const char *key, uint64_t now_usec, uint64_t ttl_usec,
                    heal_idem_status *ret_status, int *ret_claim_fd) {
        _cleanup_close_ int lock_fd = -EBADF, claim_fd = -EBADF;
        heal_idem_status status;
        int r;

        if (!s || !key || !ret_claim_fd)
                return -EINVAL;
        r = heal_state_lock(s, IDEM_NS, key, &lock_fd);
        if (r < 0)
                return r;

        r = lookup_ns(s, IDEM_NS, key, now_usec, &status);
        if (r < 0)
                return r;
        if (status == HEAL_IDEM_NEW) {
                /* Whatever the clock says: held is in flight; free means any
                 * in-flight record left is a dead owner's (reclaimed below). */
                claim_fd = claim_lock(s, key);
                if (claim_fd == -EBUSY)
                        status = HEAL_IDEM_IN_FLIGHT;
                else if (claim_fd < 0)
                        return claim_fd;
        }
        if (claim_fd >= 0) {
                /* A malformed claim still fails closed. */
                r = lookup_ns(s, CLAIM_NS, key, now_usec, &status);
                if (r >= 0) {
                        status = HEAL_IDEM_NEW;
                        /* Visible to every other run at once (the page cache);
                         * not worth a sync, see idempotency.h. */
                        r = store(s, CLAIM_NS, key, STATE_IN_FLIGHT, now_usec, ttl_usec,
                                  HEAL_STATE_WRITE_NOSYNC);
                }
                if (r < 0) {
                        claim_unlock(s, key, &claim_fd);
                        return r;
                }
        }
        if (ret_status)
                *ret_status = status;
        if (status != HEAL_IDEM_NEW)
                return 0;
        *ret_claim_fd = TAKE_FD(claim_fd);
        return 1;
}

int heal_idem_finish(heal_state *s, const char *key, int *claim_fd, bool verified, uint64_t now_usec,
                     uint64_t ttl_usec) {
        _cleanup_close_ int lock_fd = -EBADF;
        int r;

        if (!s || !key || !claim_fd) {
                if (claim_fd)
                        closep(claim_fd);
                return -EINVAL;
        }
        r = heal_state_lock(s, IDEM_NS, key, &lock_fd);
        if (r < 0) {
                /* The pass ends anyway: a claim without a live owner is free. */
                closep(claim_fd);
                return r;
        }

        if (verified) {
                /* Durable before the claim goes, so a crash in between
                 * still finds done (lookup() reads it first). */
                r = store(s, IDEM_NS, key, STATE_DONE, now_usec, ttl_usec, 0);
                if (r >= 0)
                        r = heal_state_remove_flags(s, CLAIM_NS, key, HEAL_STATE_WRITE_NOSYNC);
                claim_unlock(s, key, claim_fd);
                return r < 0 ? r : 0;
        }

        r = heal_state_remove_flags(s, CLAIM_NS, key, HEAL_STATE_WRITE_NOSYNC);
        claim_unlock(s, key, claim_fd);
        if (r < 0)
                return r;
        /* Nothing left of this key: its lock file goes too (no pile-up). */
        r = heal_state_read(s, IDEM_NS, key, NULL);
        if (r == -ENOENT)
                return heal_state_unlock_remove(s, IDEM_NS, key, &lock_fd);
        return 0;
}

/* Is the in-flight claim of @key owned by a live process? Under the record
 * lock, so the probe never makes a racing heal_idem_begin() see a claim that
 * is not there. Returns >0 held, 0 free, -errno. */
static int claim_held(heal_state *s, const char *key) {
        _cleanup_close_ int lock_fd = -EBADF, fd = -EBADF;
        int r;

        r = heal_state_lock(s, IDEM_NS, key, &lock_fd);
        if (r < 0)
                return r;
        fd = claim_lock(s, key);
        if (fd == -EBUSY)
                return 1;
        if (fd < 0)
                return fd;
        claim_unlock(s, key, &fd);
        return 0;
}

int heal_idem_peek(heal_state *s, const char *key, uint64_t now_usec, heal_idem_status *ret_status) {
        heal_idem_status status;
        int r;

        if (!s || !key || !ret_status)
                return -EINVAL;
        /* Records are replaced atomically, so a read needs no lock. */
        r = lookup(s, key, now_usec, &status);
        if (r < 0)
                return r;
        if (status == HEAL_IDEM_IN_FLIGHT) {
                r = claim_held(s, key);
                if (r < 0)
                        return r;
                if (r == 0)
                        status = HEAL_IDEM_NEW;
        }
        *ret_status = status;
        return 0;
}

/* ---- garbage collection --------------------------------------------------- */

/* Removes @key's record in @ns when it is over at @now (or, in CLAIM_NS, does
 * not load). @claim_fd: NULL for IDEM_NS; for CLAIM_NS, where the claim's
 * lock is taken when there is a claim, so that one whose owner still runs
 * stays, however old. Returns 1 removed, 0 kept (still live, or corrupt: a
 * corrupt done record stays for a human), -errno. *ret_gone: no record left. */
static int gc_record(heal_state *s, const char *ns, const char *key, uint64_t now_usec, int *claim_fd,
                     bool *ret_gone) {
        _cleanup_json_ json_t *data = NULL;
        heal_idem_status st;
        int r;

        *ret_gone = false;
        r = heal_state_read(s, ns, key, &data);
        if (r == -ENOENT) {
                *ret_gone = true;
                return 0;
        }
        if (r == -EBADMSG && !claim_fd)
                return 0;
        if (r < 0 && r != -EBADMSG)
                return r;
        if (claim_fd) {
                *claim_fd = claim_lock(s, key);
                if (*claim_fd == -EBUSY)
                        return 0;
                if (*claim_fd < 0)
                        return *claim_fd;
        }
        if (r >= 0) {
                r = classify(data, now_usec, &st);
                if (r == -EBADMSG)
                        return 0;
                if (r < 0)
                        return r;
                /* An in-flight claim got this far only with its owner dead. */
                if (st == HEAL_IDEM_DONE)
                        return 0;
        }
        /* Not synced: an expired record that a crash brings back is still
         * expired, and goes on the next run. */
        r = heal_state_remove_flags(s, ns, key, HEAL_STATE_WRITE_NOSYNC);
        if (r < 0)
                return r;
        *ret_gone = true;
        return 1;
}

/* Under the key's lock, never waiting for it: a key someone holds is busy,
 * not garbage. Returns how many records went, or -errno. */
static int gc_key(heal_state *s, const char *key, uint64_t now_usec) {
        _cleanup_close_ int lock_fd = -EBADF, claim_fd = -EBADF;
        bool done_gone, claim_gone;
        int r, removed;

        r = heal_state_lock_timeout(s, IDEM_NS, key, 0, &lock_fd);
        if (r == -ETIMEDOUT)
                return 0;
        if (r < 0)
                return r;
        r = gc_record(s, IDEM_NS, key, now_usec, NULL, &done_gone);
        if (r < 0)
                return r;
        removed = r;
        r = gc_record(s, CLAIM_NS, key, now_usec, &claim_fd, &claim_gone);
        if (r < 0)
                return r;
        removed += r;
        if (claim_gone)
                claim_unlock(s, key, &claim_fd);
        if (done_gone && claim_gone)
                (void) heal_state_unlock_remove(s, IDEM_NS, key, &lock_fd);
        return removed;
}

/* The union of two sorted key lists, each key once, handed to gc_key(). */
static int gc_keys(heal_state *s, char **a, char **b, uint64_t now_usec, unsigned max_remove) {
        unsigned removed = 0;

        while ((*a || *b) && (max_remove == 0 || removed < max_remove)) {
                int c = !*a ? 1 : !*b ? -1 : strcmp(*a, *b);
                const char *key = c <= 0 ? *a : *b;
                int r = gc_key(s, key, now_usec);
                if (r < 0)
                        return r;
                removed += (unsigned) r;
                if (c <= 0)
                        a++;
                if (c >= 0)
                        b++;
        }
        return (int) (removed > INT_MAX ? INT_MAX : removed);
}

int heal_idem_gc(heal_state *s, uint64_t now_usec, unsigned max_remove) {
        _cleanup_strv_free_ char **done = NULL, **claims = NULL;
        int r;

        if (!s)
                return -EINVAL;
        r = heal_state_list(s, IDEM_NS, &done);
        if (r < 0)
                return r;
        r = heal_state_list(s, CLAIM_NS, &claims);
        if (r < 0)
                return r;
        return gc_keys(s, done, claims, now_usec, max_remove);
}

/* When the last gc ran; 0 (long ago) when never or unreadable. */
static uint64_t gc_last_run(heal_state *s) {
        _cleanup_json_ json_t *data = NULL;
        uint64_t at;

        if (heal_state_read(s, GC_NS, GC_KEY, &data) < 0 || heal_json_get_u64(data, "at", &at) < 0)
                return 0;
        return at;
}

int heal_idem_gc_due(heal_state *s, uint64_t now_usec) {
        _cleanup_json_ json_t *stamp = NULL;
        uint64_t last;
        int r;

        if (!s || now_usec > (uint64_t) LLONG_MAX)
                return -EINVAL;
        last = gc_last_run(s);
        /* A stamp in the future (the clock went back) does not postpone gc. */
        if (last <= now_usec && now_usec - last < HEAL_IDEM_GC_INTERVAL_USEC)
                return 0;

        /* Stamped first, so runs racing in after us skip; not synced, a lost
         * stamp only means one more gc. */
        stamp = json_pack("{s:I}", "at", (json_int_t) now_usec);
        if (!stamp)
                return -ENOMEM;
        r = heal_state_write_flags(s, GC_NS, GC_KEY, stamp, HEAL_STATE_WRITE_NOSYNC);
        return r < 0 ? r : 1;
}

int heal_idem_gc_maybe(heal_state *s, uint64_t now_usec) {
        int r = heal_idem_gc_due(s, now_usec);
        if (r <= 0)
                return r;
        return heal_idem_gc(s, now_usec, HEAL_IDEM_GC_MAX);
}
