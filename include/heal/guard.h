/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guard pipeline of DESIGN.md, written once: kill switch, policy,
 * idempotency, breaker, budgets, tier, mode — then act, verify, record. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include "heal/policy.h"
#include "heal/state.h"

/* What a helper hands the guard. Strings and facts are borrowed. */
typedef struct heal_action {
        const char *healer;   /* "worker-reviver" */
        const char *class;    /* "worker-dead" */
        const char *target;   /* "foo.service" */
        const char *incident; /* trigger's id (InvocationID, fingerprint); NULL: time-bucketed */
        const char *intent;   /* "restart foo.service" */
        const char *rollback; /* how to undo, or "irreversible" */
        json_t *facts;        /* detect + confirm facts */
        int tier_override;    /* -1: the class's tier; else a heal_tier the helper decided (e.g. human for start-limit-hit) */
        const char *rerun_unit; /* the unit that re-runs this helper (delayed / approve tiers); NULL: those tiers escalate instead */

        /* Do it. >=0 done (a detail string may be returned, caller of act frees), <0 failed. */
        int (*act)(void *userdata, char **ret_detail);
        /* Did it work? It waits the settle time itself (policy settle_s).
         * >0 verified, 0 not, <0 could not tell (counted as not).
         * NULL: act's own success is the verification. */
        int (*verify)(void *userdata, char **ret_detail);
        void *userdata;
} heal_action;

typedef enum heal_outcome {
        HEAL_OUTCOME_VERIFIED,      /* acted, verified */
        HEAL_OUTCOME_VERIFY_FAILED, /* acted, verify failed (counted by the breaker) */
        HEAL_OUTCOME_ACTION_FAILED, /* act returned an error (counted by the breaker) */
        HEAL_OUTCOME_WOULD_ACT,     /* shadow mode */
        HEAL_OUTCOME_PENDING,       /* delayed/approve: recorded, waiting */
        HEAL_OUTCOME_SKIPPED,       /* a guard said no (reason in the audit) */
        HEAL_OUTCOME_ESCALATED,     /* human tier: diagnosis handed to a human */
} heal_outcome;

const char *heal_outcome_to_string(heal_outcome o);

/* The guard's environment. Zero-initialise, then fill. */
typedef struct heal_guard {
        heal_state *state;          /* required */
        const heal_policy *policy;  /* NULL: the policy failed to load -> skip, escalate */
        const char *policy_error;   /* why it failed, for the escalation */
        sd_bus *bus;                /* for the kill switch; may be NULL (then kill_switch must be set) */
        const char *helper_unit;    /* the calling helper's unit, for the kill switch */
        uint64_t now_usec;          /* 0: read CLOCK_REALTIME at each step */
        /* true: the pass does not rewrite heal.prom; a caller that runs many
         * passes calls heal_metrics_write() once after the last (it rereads
         * every breaker and budget record: the largest CPU cost of a pass). */
        bool defer_metrics_write;

        /* Overrides for tests and special callers; NULL: the real thing. */
        int (*kill_switch)(void *userdata, char **ret_reason); /* >0 engaged, 0 off, <0 cannot tell */
        int (*schedule_rerun)(void *userdata, const char *unit, uint64_t delay_usec); /* delayed tier */
        void *hook_userdata;
} heal_guard;

/**
 * heal_guard_run() - run @a through the guard and, when every guard allows,
 * act, verify and record.
 * @ret_outcome: what happened.
 *
 * Emits an audit record at every step (skipped with HEAL_REASON = the guard:
 * "kill-switch", "kill-switch-unknown", "policy-invalid", "class-not-configured",
 * "not-targeted", "idempotent", "in-flight",
 * "breaker-open", "budget-target", "budget-class", "budget-global",
 * "state-error", "awaiting-approval", "in-cancel-window", "cancelled",
 * "expired", "pending-changed"), counts metrics, escalates when a budget is exhausted, the
 * breaker opens, the policy is invalid, state cannot be read or written, or
 * the tier is human.
 *
 * Shadow mode runs the same guards against separate state (its own
 * idempotency claims, budgets and breakers), so shadow reports what live
 * would do without touching live's buckets; it never calls act.
 * Budgets and breakers live in the namespaces HEAL_GUARD_NS_BUDGET /
 * HEAL_GUARD_NS_SHADOW_BUDGET and HEAL_BREAKER_NS / HEAL_GUARD_NS_SHADOW_BREAKER;
 * idempotency has one set of namespaces for both modes ("idem" for done
 * records, "idem-claim" for in-flight claims), so shadow's keys there carry
 * HEAL_GUARD_SHADOW_PREFIX ("shadow|worker-dead|foo.service|<incident>").
 * Shadow admits its breaker but never records into it (nothing was done).
 * Budgets are taken only on the pass that is going to act (or would, in
 * shadow); a pass that stops at the tier only checks them. A pass whose
 * pending record only waits (in its cancel window, awaiting approval) or
 * was cancelled or expired never acts: it ends right after the tier's plan,
 * before the breaker and the budgets (an empty budget does not page for it).
 * A pass that took the breaker's half-open trial and then stopped before act
 * gives it back (heal_breaker_release()).
 *
 * The idempotency claim is held from step 3 to the end of the pass, with its
 * lock (and the breaker trial's, when this pass took it): "in flight" lasts
 * exactly as long as the pass, however long verify takes. It is settled
 * "done" when the incident is dealt with (verified, would-act in shadow,
 * handed to a human, cancelled), released otherwise so a later trigger may
 * try again.
 *
 * A pending record is judged by the tier it was made under. One of another
 * tier than the class's now (the operator switched it) is dropped, audited
 * "cancelled" with HEAL_REASON "tier-changed", and a plan of the current tier
 * starts. Acting on a record removes it only as it was judged
 * (heal_pending_take()): a cancel that raced the pass wins. The human's
 * approval and cancel are audited by healctl; the guard's acting record
 * names the approver (HEAL_OWNER, MESSAGE). Without an incident id, a pass of
 * the delayed/approve tiers adopts the pending record of the same class and
 * target that is not over (heal_pending_over()), so the re-run after the
 * window finds the incident even though its time bucket moved on. Records
 * nobody consumed age out in the guard's occasional gc (heal_idem_gc_due()),
 * audited "expired" with HEAL_REASON "aged-out" (cancelled ones silently).
 *
 * Every record of one pass carries the same HEAL_INCIDENT: @a->incident, or
 * 32 hex chars derived from the idempotency key. The kill switch is checked
 * again right before act.
 *
 * Returns 0 with *ret_outcome set (a skip is not an error), or -errno when
 * the pipeline itself broke (then an escalation was attempted).
 */
int heal_guard_run(heal_guard *g, const heal_action *a, heal_outcome *ret_outcome);

/* Keys the guard uses, for healctl: "class/target" style. Caller frees. */
char *heal_guard_breaker_key(const char *class, const char *target);
char *heal_guard_budget_key_target(const char *class, const char *target);
char *heal_guard_budget_key_class(const char *class);
#define HEAL_BUDGET_KEY_GLOBAL "global"

/* State namespaces and key prefix of the two modes (see heal_guard_run()). */
#define HEAL_GUARD_NS_BUDGET "budget"
#define HEAL_GUARD_NS_SHADOW_BUDGET "shadow-budget"
#define HEAL_GUARD_NS_SHADOW_BREAKER "shadow-breaker"
#define HEAL_GUARD_SHADOW_PREFIX "shadow|" /* idempotency keys of shadow mode */

/* The key under HEAL_GUARD_SHADOW_PREFIX (a pointer into @key), or NULL when
 * @key (NULL included) is not one of shadow mode's idempotency keys. */
const char *heal_guard_shadow_key_base(const char *key);
