/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Action budgets: token buckets persisted on disk, per target, class and host. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heal/state.h"

/* At most @actions tokens, refilled at @actions per @per_s seconds.
 * The policy loader keeps 1 <= actions <= 100000 and 1 <= per_s <= 31536000,
 * so all arithmetic fits in uint64_t. */
typedef struct heal_budget_spec {
        uint32_t actions;
        uint32_t per_s;
} heal_budget_spec;

/* One bucket, in micro-tokens (1 token == 1000000) so refill is integer math.
 * @rem carries the fraction of a micro-token earned but not yet credited
 * (in units of 1/per_s micro-token), so frequent refills lose nothing and a
 * token comes back at exactly per_s/actions seconds. */
typedef struct heal_bucket {
        uint64_t level;      /* micro-tokens, 0 ..= actions * 1000000 */
        uint64_t stamp_usec; /* wall clock of the last refill */
        uint64_t rem;        /* 0 ..< per_s; 0 for a fresh bucket */
} heal_bucket;

#define HEAL_TOKEN UINT64_C(1000000)

/* Default state namespace of the budgets. */
#define HEAL_BUDGET_NS "budget"

/* 1 <= actions <= 100000 and 1 <= per_s <= 31536000 (what the math is sized for). */
bool heal_budget_spec_valid(const heal_budget_spec *spec);

/**
 * heal_bucket_refill() - pure refill math.
 * A fresh bucket (stamp 0) is full. Time moving forward adds tokens, capped
 * at the burst; time moving backward adds nothing and moves the stamp back
 * to @now so the bucket is never negative and never stuck waiting for the
 * old time to come round again.
 */
void heal_bucket_refill(heal_bucket *b, const heal_budget_spec *spec, uint64_t now_usec);

/* Whole tokens left after refill at @now (does not change @b). */
uint32_t heal_bucket_tokens(const heal_bucket *b, const heal_budget_spec *spec, uint64_t now_usec);

/* One bucket of a take: which state key and which spec. */
typedef struct heal_budget_req {
        const char *key;  /* e.g. "global", "class/worker-dead", "target/worker-dead/foo.service" */
        heal_budget_spec spec;
} heal_budget_req;

/**
 * heal_budget_take() - take one token from every bucket in @reqs, or none.
 * @ns: state namespace ("budget"; shadow mode uses "shadow-budget").
 * @ret_exhausted: on 0, the index in @reqs of the first empty bucket.
 *
 * All buckets are locked (in @reqs order — callers always pass global,
 * class, target), refilled, checked, and only when all have a token are all
 * written, as one group (heal_state_write_many(): each bucket's data synced,
 * then the renames, then one sync of the namespace dir; n + 1 syncs).
 * Consumption is durable before this returns >0: a token that could not be
 * persisted is never handed out.
 * An absent bucket is full. A write that fails before any bucket was
 * replaced (a full filesystem) spends nothing; when it fails after earlier
 * buckets were replaced, those tokens stay spent (fail closed). Either way
 * the error is returned: the caller must not act.
 * Returns >0 taken, 0 exhausted, -errno on error (-EBADMSG corrupt bucket,
 * -EINVAL bad spec, empty @reqs or the same key twice).
 */
int heal_budget_take(heal_state *s, const char *ns, const heal_budget_req *reqs, size_t n,
                     uint64_t now_usec, size_t *ret_exhausted);

/**
 * heal_budget_peek() - whole tokens left in one bucket, without taking any.
 * Reads without the lock (records are replaced atomically) and writes nothing.
 * Returns 0 and *ret_tokens, or -errno (-EBADMSG corrupt bucket).
 */
int heal_budget_peek(heal_state *s, const char *ns, const heal_budget_req *req, uint64_t now_usec,
                     uint32_t *ret_tokens);
