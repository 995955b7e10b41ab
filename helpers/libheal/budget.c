/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Token buckets in integer micro-tokens, persisted as state records; a take
 * locks every bucket it touches and consumes from all of them or from none. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heal/budget.h"
#include "heal/cleanup.h"
#include "heal/json-util.h"
#include "heal/time-util.h"

bool heal_budget_spec_valid(const heal_budget_spec *spec) {
        return spec && spec->actions >= 1 && spec->actions <= 100000 && spec->per_s >= 1 &&
               spec->per_s <= 31536000;
}

static uint64_t bucket_burst(const heal_budget_spec *spec) {
        return (uint64_t) spec->actions * HEAL_TOKEN;
}

static void bucket_fill(heal_bucket *b, const heal_budget_spec *spec, uint64_t now_usec) {
        b->level = bucket_burst(spec);
        b->stamp_usec = now_usec;
        b->rem = 0;
}

void heal_bucket_refill(heal_bucket *b, const heal_budget_spec *spec, uint64_t now_usec) {
        uint64_t burst = bucket_burst(spec), elapsed, total, add;

        if (b->stamp_usec == 0)
                goto full;

        /* A smaller burst in a new policy applies at once. */
        if (b->level > burst)
                b->level = burst;

        if (now_usec <= b->stamp_usec) {
                /* Clock went back: credit nothing, but restart the clock here so
                 * refill resumes from now instead of waiting for the old time. */
                if (now_usec < b->stamp_usec) {
                        b->stamp_usec = now_usec;
                        b->rem = 0;
                }
                return;
        }

        elapsed = now_usec - b->stamp_usec;
        /* A whole period refills any bucket; checking first also keeps the
         * multiplication below within 31536000e6 * 100000 < 2^64. */
        if (b->level >= burst || elapsed >= (uint64_t) spec->per_s * USEC_PER_SEC)
                goto full;

        /* micro-tokens per usec == actions / per_s; rem keeps the fraction. */
        total = elapsed * spec->actions + (b->rem < spec->per_s ? b->rem : 0);
        add = total / spec->per_s;
        if (add >= burst - b->level)
                goto full;

        b->level += add;
        b->rem = total % spec->per_s;
        b->stamp_usec = now_usec;
        return;

full:
        bucket_fill(b, spec, now_usec);
}

uint32_t heal_bucket_tokens(const heal_bucket *b, const heal_budget_spec *spec, uint64_t now_usec) {
        heal_bucket copy = *b;

        heal_bucket_refill(&copy, spec, now_usec);
        return (uint32_t) (copy.level / HEAL_TOKEN);
}

/* Absent -> full at @now; anything not a well-formed bucket -> -EBADMSG. */
static int bucket_load(heal_state *s, const char *ns, const heal_budget_req *req, uint64_t now_usec,
                       heal_bucket *ret) {
        _cleanup_json_ json_t *data = NULL;
        heal_bucket b = {};
        int r;

        r = heal_state_read(s, ns, req->key, &data);
        if (r == -ENOENT) {
                bucket_fill(ret, &req->spec, now_usec);
                return 0;
        }
        if (r < 0)
                return r;
        if (!json_is_object(data))
                return -EBADMSG;

        r = heal_json_get_u64(data, "level", &b.level);
        if (r < 0)
                return r;
        r = heal_json_get_u64(data, "stamp_usec", &b.stamp_usec);
        if (r < 0)
                return r;
        r = heal_json_get_u64_or_zero(data, "rem", &b.rem);
        if (r < 0)
                return r;

        *ret = b;
        return 0;
}

/* actions/per_s are informational (healctl status, metrics). */
static json_t *bucket_json(const heal_budget_req *req, const heal_bucket *b) {
        return json_pack("{s:I, s:I, s:I, s:I, s:I}", "level", (json_int_t) b->level, "stamp_usec",
                         (json_int_t) b->stamp_usec, "rem", (json_int_t) b->rem, "actions",
                         (json_int_t) req->spec.actions, "per_s", (json_int_t) req->spec.per_s);
}

static int bucket_store(heal_state *s, const char *ns, const heal_budget_req *req, const heal_bucket *b) {
        _cleanup_json_ json_t *data = bucket_json(req, b);

        if (!data)
                return -ENOMEM;
        return heal_state_write(s, ns, req->key, data);
}

static int reqs_validate(const char *ns, const heal_budget_req *reqs, size_t n, uint64_t now_usec) {
        if (!ns || !reqs || n == 0 || now_usec > INT64_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!reqs[i].key || !heal_budget_spec_valid(&reqs[i].spec))
                        return -EINVAL;
                /* A second flock on the same lock file would wait on ourselves. */
                for (size_t j = 0; j < i; j++)
                        if (strcmp(reqs[i].key, reqs[j].key) == 0)
                                return -EINVAL;
        }
        return 0;
}

typedef struct lockset {
        int *fds;
        size_t n;
} lockset;

static void lockset_release(lockset *l) {
        for (size_t i = 0; i < l->n; i++)
                closep(&l->fds[i]);
        free(l->fds);
        l->fds = NULL;
        l->n = 0;
}

/* One bucket of a take: the refilled state and whether the refill moved its
 * stamp back (the clock went back). */
typedef struct take_slot {
        heal_bucket bucket;
        bool moved_back;
} take_slot;

/* An exhausted take writes nothing, except buckets whose stamp moved back:
 * without that, refusal after refusal would compare with the old, future
 * stamp and the bucket would not refill until the clock caught up. Best
 * effort: the take is refused either way. */
static void slots_store_moved_back(heal_state *s, const char *ns, const heal_budget_req *reqs,
                                   const take_slot *slots, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (slots[i].moved_back)
                        (void) bucket_store(s, ns, &reqs[i], &slots[i].bucket);
}

int heal_budget_take(heal_state *s, const char *ns, const heal_budget_req *reqs, size_t n,
                     uint64_t now_usec, size_t *ret_exhausted) {
        _cleanup_(lockset_release) lockset locks = {};
        _cleanup_free_ take_slot *slots = NULL;
        _cleanup_free_ heal_state_entry *entries = NULL;
        int r;

        r = reqs_validate(ns, reqs, n, now_usec);
        if (r < 0)
                return r;

        locks.fds = malloc(n * sizeof(int));
        slots = calloc(n, sizeof(take_slot));
        if (!locks.fds || !slots)
                return -ENOMEM;

        /* Every caller locks in the same order (global, class, target), so
         * holding all of them at once cannot deadlock. */
        for (; locks.n < n; locks.n++) {
                r = heal_state_lock(s, ns, reqs[locks.n].key, &locks.fds[locks.n]);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < n; i++) {
                uint64_t stamp;

                r = bucket_load(s, ns, &reqs[i], now_usec, &slots[i].bucket);
                if (r < 0)
                        return r;
                stamp = slots[i].bucket.stamp_usec;
                heal_bucket_refill(&slots[i].bucket, &reqs[i].spec, now_usec);
                slots[i].moved_back = slots[i].bucket.stamp_usec < stamp;
        }

        for (size_t i = 0; i < n; i++)
                if (slots[i].bucket.level < HEAL_TOKEN) {
                        slots_store_moved_back(s, ns, reqs, slots, n);
                        if (ret_exhausted)
                                *ret_exhausted = i;
                        return 0;
                }

        /* One group write: every bucket's data is synced, then the renames,
         * then the dir once, so once we return >0 every token is on disk.
         * A failure part-way leaves earlier buckets spent, which errs on
         * the side of acting less. */
        entries = calloc(n, sizeof(heal_state_entry));
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                slots[i].bucket.level -= HEAL_TOKEN;
                entries[i] = (heal_state_entry) { .key = reqs[i].key,
                                                  .data = bucket_json(&reqs[i], &slots[i].bucket) };
                if (!entries[i].data) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r >= 0)
                r = heal_state_write_many(s, ns, entries, n);
        for (size_t i = 0; i < n; i++)
                json_decref(entries[i].data);
        return r < 0 ? r : 1;
}

int heal_budget_peek(heal_state *s, const char *ns, const heal_budget_req *req, uint64_t now_usec,
                     uint32_t *ret_tokens) {
        heal_bucket b;
        int r;

        if (!ns || !req || !req->key || !heal_budget_spec_valid(&req->spec) || !ret_tokens)
                return -EINVAL;

        r = bucket_load(s, ns, req, now_usec, &b);
        if (r < 0)
                return r;

        *ret_tokens = heal_bucket_tokens(&b, &req->spec, now_usec);
        return 0;
}
