/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Idempotency: a claim per incident, taken and settled under the record's
 * lock so racing triggers of one incident act once; "done" records are
 * durable, in-flight claims only visible (see idempotency.h for why). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "heal/cleanup.h"
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

static int field_u64(json_t *data, const char *name, uint64_t *ret) {
        json_t *v = json_object_get(data, name);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

/* What a stored record means at @now_usec; a malformed one is -EBADMSG (fail
 * closed). @ttl_usec NULL: judge an in-flight claim by the ttl it was taken with. */
static int classify(json_t *data, uint64_t now_usec, const uint64_t *ttl_usec, heal_idem_status *ret) {
        const char *state = json_string_value(json_object_get(data, "state"));
        uint64_t since, until;
        int r;

        if (!state)
                return -EBADMSG;
        r = field_u64(data, "since", &since);
        if (r < 0)
                return r;
        r = field_u64(data, "until", &until);
        if (r < 0)
                return r;

        if (strcmp(state, STATE_DONE) == 0)
                *ret = now_usec < until ? HEAL_IDEM_DONE : HEAL_IDEM_NEW;
        else if (strcmp(state, STATE_IN_FLIGHT) == 0)
                /* The current ttl decides when a claim is abandoned, so a
                 * shortened policy frees stuck claims without editing state. */
                *ret = now_usec < (ttl_usec ? add_sat(since, *ttl_usec) : until) ? HEAL_IDEM_IN_FLIGHT
                                                                                 : HEAL_IDEM_NEW;
        else
                return -EBADMSG;
        return 0;
}

/* One namespace's word on @key. In CLAIM_NS a record that does not load is
 * a claim cut short by a power loss: no claim. */
static int lookup_ns(heal_state *s, const char *ns, const char *key, uint64_t now_usec, const uint64_t *ttl_usec,
                     heal_idem_status *ret) {
        _cleanup_json_ json_t *data = NULL;
        int r = heal_state_read(s, ns, key, &data);
        if (r == -ENOENT || (r == -EBADMSG && strcmp(ns, CLAIM_NS) == 0)) {
                *ret = HEAL_IDEM_NEW;
                return 0;
        }
        if (r < 0)
                return r;
        return classify(data, now_usec, ttl_usec, ret);
}

/* Done (durable) first: a claim left behind by a run that died after
 * recording done must not hide it. */
static int lookup(heal_state *s, const char *key, uint64_t now_usec, const uint64_t *ttl_usec,
                  heal_idem_status *ret) {
        heal_idem_status st;
        int r = lookup_ns(s, IDEM_NS, key, now_usec, ttl_usec, &st);
        if (r < 0)
                return r;
        if (st != HEAL_IDEM_NEW) {
                *ret = st;
                return 0;
        }
        return lookup_ns(s, CLAIM_NS, key, now_usec, ttl_usec, ret);
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
                    heal_idem_status *ret_status) {
        _cleanup_close_ int lock_fd = -EBADF;
        heal_idem_status status;
        int r;

        if (!s || !key)
                return -EINVAL;
        r = heal_state_lock(s, IDEM_NS, key, &lock_fd);
        if (r < 0)
                return r;

        r = lookup(s, key, now_usec, &ttl_usec, &status);
        if (r < 0)
                return r;
        if (status == HEAL_IDEM_NEW) {
                /* Visible to every other run at once (the page cache); not
                 * worth a sync, see idempotency.h. */
                r = store(s, CLAIM_NS, key, STATE_IN_FLIGHT, now_usec, ttl_usec, HEAL_STATE_WRITE_NOSYNC);
                if (r < 0)
                        return r;
        }
        if (ret_status)
                *ret_status = status;
        return status == HEAL_IDEM_NEW;
}

int heal_idem_finish(heal_state *s, const char *key, bool verified, uint64_t now_usec,
                     uint64_t ttl_usec) {
        _cleanup_close_ int lock_fd = -EBADF;
        int r;

        if (!s || !key)
                return -EINVAL;
        r = heal_state_lock(s, IDEM_NS, key, &lock_fd);
        if (r < 0)
                return r;

        if (verified) {
                /* Durable before the claim goes, so a crash in between
                 * still finds done (lookup() reads it first). */
                r = store(s, IDEM_NS, key, STATE_DONE, now_usec, ttl_usec, 0);
                if (r < 0)
                        return r;
                return heal_state_remove_flags(s, CLAIM_NS, key, HEAL_STATE_WRITE_NOSYNC);
        }

        r = heal_state_remove_flags(s, CLAIM_NS, key, HEAL_STATE_WRITE_NOSYNC);
        if (r < 0)
                return r;
        /* Nothing left of this key: its lock file goes too (no pile-up). */
        r = heal_state_read(s, IDEM_NS, key, NULL);
        if (r == -ENOENT)
                return heal_state_unlock_remove(s, IDEM_NS, key, &lock_fd);
        return 0;
}

int heal_idem_peek(heal_state *s, const char *key, uint64_t now_usec, heal_idem_status *ret_status) {
        heal_idem_status status;
        int r;

        if (!s || !key || !ret_status)
                return -EINVAL;
        /* Records are replaced atomically, so a read needs no lock. */
        r = lookup(s, key, now_usec, NULL, &status);
        if (r < 0)
                return r;
        *ret_status = status;
        return 0;
}

/* ---- garbage collection --------------------------------------------------- */

/* Removes @key's record in @ns when it is over at @now (or, in CLAIM_NS, does
 * not load). Returns 1 removed, 0 kept (still live, or corrupt: a corrupt
 * done record stays for a human), -errno. *ret_gone: no record left. */
static int gc_record(heal_state *s, const char *ns, const char *key, uint64_t now_usec, bool *ret_gone) {
        _cleanup_json_ json_t *data = NULL;
        heal_idem_status st;
        int r;

        *ret_gone = false;
        r = heal_state_read(s, ns, key, &data);
        if (r == -ENOENT) {
                *ret_gone = true;
                return 0;
        }
        if (r == -EBADMSG && strcmp(ns, CLAIM_NS) != 0)
                return 0;
        if (r < 0 && r != -EBADMSG)
                return r;
        if (r >= 0) {
                r = classify(data, now_usec, NULL, &st);
                if (r == -EBADMSG)
                        return 0;
                if (r < 0)
                        return r;
                if (st != HEAL_IDEM_NEW)
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
        _cleanup_close_ int lock_fd = -EBADF;
        bool done_gone, claim_gone;
        int r, removed;

        r = heal_state_lock_timeout(s, IDEM_NS, key, 0, &lock_fd);
        if (r == -ETIMEDOUT)
                return 0;
        if (r < 0)
                return r;
        r = gc_record(s, IDEM_NS, key, now_usec, &done_gone);
        if (r < 0)
                return r;
        removed = r;
        r = gc_record(s, CLAIM_NS, key, now_usec, &claim_gone);
        if (r < 0)
                return r;
        removed += r;
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

        if (heal_state_read(s, GC_NS, GC_KEY, &data) < 0 || field_u64(data, "at", &at) < 0)
                return 0;
        return at;
}

int heal_idem_gc_maybe(heal_state *s, uint64_t now_usec) {
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
        if (r < 0)
                return r;
        return heal_idem_gc(s, now_usec, HEAL_IDEM_GC_MAX);
}
