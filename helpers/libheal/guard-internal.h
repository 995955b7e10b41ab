/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the guard's files share: the context of one pass through the guard
 * and the helpers that record its steps. Private to libheal. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "heal/audit.h"
#include "heal/cleanup.h"
#include "heal/guard.h"
#include "heal/pending.h"
#include "heal/time-util.h"

static inline bool streq_ptr(const char *a, const char *b) {
        return a && b ? strcmp(a, b) == 0 : a == b;
}

/* What the tier (step 6) will do, decided from the pending record before the
 * breaker and budgets are touched: only a pass that acts takes from them. */
typedef enum guard_plan {
        GUARD_PLAN_ACT,         /* auto tier, delayed window over, approved */
        GUARD_PLAN_HUMAN,       /* human tier: escalate with the diagnosis */
        GUARD_PLAN_NO_RERUN,    /* delayed/approve, but nothing could re-run the helper: escalate */
        GUARD_PLAN_NEW_DELAYED, /* record a pending action, schedule the re-run */
        GUARD_PLAN_NEW_APPROVE, /* record a plan awaiting approval */
        GUARD_PLAN_IN_WINDOW,
        GUARD_PLAN_AWAITING,
        GUARD_PLAN_EXPIRED,
        GUARD_PLAN_CANCELLED,
} guard_plan;

typedef struct guard_run {
        heal_guard *g;
        const heal_action *a;
        const heal_class_policy
                *cls; /* set once the policy step passed (or looked up early for the bucket) */
        heal_tier tier;
        bool shadow;

        char *key;         /* the incident's idempotency key, "class|target|incident" */
        char *claim_key;   /* the same in this mode's namespace: idempotency claim, pending id */
        char *breaker_key; /* "class/target" */
        const char *breaker_ns;
        const char *budget_ns;
        char incident_id[33];
        heal_incident inc; /* what every record of this pass carries */

        bool claimed;     /* this pass holds the idempotency claim */
        int claim_fd;     /* the claim's lock, held for the whole pass: "in flight" lives as long as we do */
        bool settle_done; /* at the end, settle the claim as done (else release it) */
        int trial_fd;     /* the breaker's half-open trial, held for the pass when this pass took it:
                           * given back (heal_breaker_release()) when the pass stops before act */

        guard_plan plan;
        heal_pending pending; /* valid when have_pending */
        bool have_pending;
        const char *approved_by; /* the approver of the record this pass acts on (in pending) */
        bool acted;              /* act was called: the breaker trial, if any, was tried */

        heal_outcome outcome;
} guard_run;

/* g->now_usec, or the wall clock now. */
uint64_t guard_now(const guard_run *run);
uint64_t guard_ttl_usec(const guard_run *run);

/* One audit record of this pass, counted in the metrics. Best effort: the
 * audit itself falls back to stderr, so nothing here can fail the pass. */
void guard_emit(guard_run *run, heal_event ev, const char *reason, const char *before, const char *after,
                const char *fmt, ...) _printf_(6, 7);

/* A guard said no: "skipped" with @reason, outcome SKIPPED. Returns 0 (stop). */
int guard_skip(guard_run *run, const char *reason, const char *fmt, ...) _printf_(3, 4);

/* Page a human about this incident; @context borrowed, may be NULL. */
void guard_escalate(guard_run *run, json_t *context, const char *fmt, ...) _printf_(3, 4);

/* State could not be read or written at @step: skip "state-error", escalate,
 * never act. Returns 0 (stop). */
int guard_state_error(guard_run *run, const char *step, int error);

/* Point the pass at @claim_key (shadow-prefixed or not): key, incident id. */
int guard_set_key(guard_run *run, const char *claim_key);

/* Tier, before the idempotency claim: a pass without an incident id adopts
 * the pending record of its class and target. Returns >0 go on, 0 stopped, -ENOMEM. */
int guard_tier_adopt(guard_run *run);

/* Tier: load the pending record of this incident and decide run->plan from
 * it, by the tier it was made under (one of another tier than the class's
 * now is dropped, audited "cancelled"/"tier-changed", and a plan of the
 * current tier starts). Returns >0 go on, 0 stopped. */
int guard_tier_plan(guard_run *run);
/* Plans that never act (in window, awaiting, expired, cancelled) are carried
 * out here, before the breaker and the budgets. Returns >0 go on, 0 stopped. */
int guard_tier_resolve(guard_run *run);
/* Step 6: carry out run->plan. Returns >0 go on to the mode, 0 stopped. */
int guard_tier_step(guard_run *run);
/* Remove the pending record this pass is about to act on, only if it is still
 * as planned on (a raced cancel wins: skipped "cancelled"; anything else that
 * changed: "pending-changed"). Returns >0, or 0 stopped. */
int guard_tier_consume(guard_run *run);
/* Age out pending records nobody consumed (heal_pending_gc()), auditing
 * "expired" (HEAL_REASON "aged-out") for all but the cancelled ones. */
void guard_pending_gc(guard_run *run);
