/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guard pipeline of DESIGN.md, in its order: kill switch, policy,
 * idempotency, breaker, budgets, tier, mode; then act, verify and record. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "guard-internal.h"
#include "heal/breaker.h"
#include "heal/budget.h"
#include "heal/idempotency.h"
#include "heal/killswitch.h"
#include "heal/metrics.h"

const char *heal_outcome_to_string(heal_outcome o) {
        static const char *const table[] = {
                [HEAL_OUTCOME_VERIFIED] = "verified",
                [HEAL_OUTCOME_VERIFY_FAILED] = "verify-failed",
                [HEAL_OUTCOME_ACTION_FAILED] = "action-failed",
                [HEAL_OUTCOME_WOULD_ACT] = "would-act",
                [HEAL_OUTCOME_PENDING] = "pending",
                [HEAL_OUTCOME_SKIPPED] = "skipped",
                [HEAL_OUTCOME_ESCALATED] = "escalated",
        };

        return (unsigned) o < ELEMENTSOF(table) ? table[o] : NULL;
}

char *heal_guard_breaker_key(const char *class, const char *target) {
        char *k = NULL;

        if (!class || !target || asprintf(&k, "%s/%s", class, target) < 0)
                return NULL;
        return k;
}

char *heal_guard_budget_key_target(const char *class, const char *target) {
        char *k = NULL;

        if (!class || !target || asprintf(&k, "target/%s/%s", class, target) < 0)
                return NULL;
        return k;
}

char *heal_guard_budget_key_class(const char *class) {
        char *k = NULL;

        if (!class || asprintf(&k, "class/%s", class) < 0)
                return NULL;
        return k;
}

static const char *facts_string(const heal_action *a, const char *name) {
        return a->facts ? json_string_value(json_object_get(a->facts, name)) : NULL;
}

/* ---- 1. kill switch ------------------------------------------------------ */

static int kill_switch_step(guard_run *run) {
        _cleanup_free_ char *why = NULL;
        _cleanup_json_ json_t *ctx = NULL;
        heal_guard *g = run->g;
        int r;

        r = g->kill_switch ? g->kill_switch(g->hook_userdata, &why)
                           : heal_killswitch_engaged(g->bus, g->helper_unit, &why);
        if (r > 0)
                return guard_skip(run, "kill-switch",
                                  "%s on %s: not healing, the kill switch is engaged (%s).", run->a->class,
                                  run->a->target, why ?: HEAL_KILLSWITCH_UNIT " is masked");
        if (r == 0)
                return 1;

        /* Cannot tell is not "off": fail closed. */
        ctx = json_pack("{s:s}", "error", why ?: strerror(-r));
        guard_skip(run, "kill-switch-unknown", "%s on %s: not healing, the kill switch cannot be read (%s).",
                   run->a->class, run->a->target, why ?: strerror(-r));
        guard_escalate(run, ctx,
                       "heal cannot tell whether its kill switch is engaged (%s), so it does not heal %s",
                       why ?: strerror(-r), run->a->target);
        return 0;
}

/* ---- 2. policy ----------------------------------------------------------- */

static int policy_step(guard_run *run) {
        const char *class = run->a->class, *target = run->a->target;

        if (!run->g->policy) {
                const char *err = run->g->policy_error ?: "it could not be loaded";
                guard_skip(run, "policy-invalid", "%s on %s: not healing, the policy is invalid: %s", class,
                           target, err);
                guard_escalate(run, NULL,
                               "the heal policy is invalid or unreadable, so heal does not act on %s: %s",
                               target, err);
                return 0;
        }
        if (!run->cls)
                return guard_skip(run, "class-not-configured",
                                  "%s on %s: not healing, the policy defines no class %s.", class, target,
                                  class);
        if (!heal_class_targets(run->cls, target))
                return guard_skip(run, "not-targeted",
                                  "%s on %s: not healing, the class does not target it (targets/exclude).",
                                  class, target);
        return 1;
}

/* ---- 3. idempotency ------------------------------------------------------ */

static int idempotency_step(guard_run *run) {
        heal_idem_status st = HEAL_IDEM_NEW;
        int r;

        r = heal_idem_begin(run->g->state, run->claim_key, guard_now(run), guard_ttl_usec(run), &st,
                            &run->claim_fd);
        if (r < 0)
                return guard_state_error(run, "idempotency", r);
        if (r == 0 && st == HEAL_IDEM_DONE)
                return guard_skip(run, "idempotent", "%s on %s: this incident was already dealt with.",
                                  run->a->class, run->a->target);
        if (r == 0)
                return guard_skip(run, "in-flight",
                                  "%s on %s: another run is handling this incident right now.",
                                  run->a->class, run->a->target);
        run->claimed = true;
        return 1;
}

/* ---- 4. circuit breaker -------------------------------------------------- */

static int breaker_step(guard_run *run) {
        heal_breaker_state st = HEAL_BREAKER_CLOSED;
        uint32_t failures = 0;
        int r;

        /* Only a pass that will act may take the half-open trial. */
        if (run->plan == GUARD_PLAN_ACT) {
                r = heal_breaker_admit_ns(run->g->state, run->breaker_ns, run->breaker_key,
                                          &run->cls->breaker, guard_now(run), &st, &run->trial_fd);
                if (r < 0)
                        return guard_state_error(run, "breaker", r);
                if (r > 0)
                        return 1;
        } else {
                r = heal_breaker_get_ns(run->g->state, run->breaker_ns, run->breaker_key, &run->cls->breaker,
                                        guard_now(run), &st, &failures);
                if (r < 0)
                        return guard_state_error(run, "breaker", r);
                if (st != HEAL_BREAKER_OPEN)
                        return 1;
        }
        return guard_skip(run, "breaker-open",
                          "%s on %s: not healing, the circuit breaker is %s after repeated failed heals "
                          "(healctl breaker reset %s %s).",
                          run->a->class, run->a->target, heal_breaker_state_to_string(st), run->a->class,
                          run->a->target);
}

/* ---- 5. budgets ---------------------------------------------------------- */

static int budget_exhausted(guard_run *run, const heal_budget_req *req, size_t which) {
        static const char *const reasons[] = {"budget-global", "budget-class", "budget-target"};
        _cleanup_json_ json_t *ctx = NULL;
        const char *reason = reasons[which < ELEMENTSOF(reasons) ? which : 0];

        ctx = json_pack("{s:s, s:i, s:i}", "bucket", req->key, "actions", (int) req->spec.actions, "per_s",
                        (int) req->spec.per_s);
        guard_emit(run, HEAL_EVENT_BUDGET_EXHAUSTED, reason, NULL, NULL,
                   "%s on %s: budget %s exhausted (%" PRIu32 " actions per %" PRIu32 " s).", run->a->class,
                   run->a->target, req->key, req->spec.actions, req->spec.per_s);
        guard_skip(run, reason, "%s on %s: not healing, budget %s is exhausted.", run->a->class,
                   run->a->target, req->key);
        guard_escalate(run, ctx,
                       "heal's budget %s is exhausted (%" PRIu32 " actions per %" PRIu32
                       " s) while healing %s: a healer running that hot has become the incident",
                       req->key, req->spec.actions, req->spec.per_s, run->a->target);
        return 0;
}

static int budgets_step(guard_run *run) {
        _cleanup_free_ char *kclass = NULL, *ktarget = NULL;
        size_t exhausted = 0;
        int r;

        kclass = heal_guard_budget_key_class(run->a->class);
        ktarget = heal_guard_budget_key_target(run->a->class, run->a->target);
        if (!kclass || !ktarget)
                return -ENOMEM;
        const heal_budget_req reqs[] = {
                {.key = HEAL_BUDGET_KEY_GLOBAL, .spec = run->g->policy->global_budget},
                {.key = kclass, .spec = run->cls->budget},
                {.key = ktarget, .spec = run->cls->target_budget},
        };

        if (run->plan == GUARD_PLAN_ACT) {
                r = heal_budget_take(run->g->state, run->budget_ns, reqs, ELEMENTSOF(reqs), guard_now(run),
                                     &exhausted);
                if (r < 0)
                        return guard_state_error(run, "budget", r);
                if (r > 0)
                        return 1;
                return budget_exhausted(run, &reqs[exhausted < ELEMENTSOF(reqs) ? exhausted : 0], exhausted);
        }

        /* A pass that stops at the tier only looks: the token is for the pass that acts. */
        for (size_t i = 0; i < ELEMENTSOF(reqs); i++) {
                uint32_t tokens = 0;

                r = heal_budget_peek(run->g->state, run->budget_ns, &reqs[i], guard_now(run), &tokens);
                if (r < 0)
                        return guard_state_error(run, "budget", r);
                if (tokens == 0)
                        return budget_exhausted(run, &reqs[i], i);
        }
        return 1;
}

/* ---- 7. mode ------------------------------------------------------------- */

static int mode_step(guard_run *run) {
        int r;

        if (!run->shadow)
                return 1;
        r = guard_tier_consume(run);
        if (r <= 0)
                return r;
        guard_emit(run, HEAL_EVENT_WOULD_ACT, NULL, facts_string(run->a, "before"), NULL,
                   "%s on %s: would %s (shadow mode; undo: %s).", run->a->class, run->a->target,
                   run->a->intent ?: "act", run->a->rollback ?: "not stated");
        run->outcome = HEAL_OUTCOME_WOULD_ACT;
        run->settle_done = true;
        return 0;
}

/* ---- act, verify, record ------------------------------------------------- */

static void breaker_record(guard_run *run, bool success) {
        heal_breaker_state st = HEAL_BREAKER_CLOSED;
        uint32_t failures = run->cls->breaker.failures;
        int r;

        r = heal_breaker_record_ns(run->g->state, run->breaker_ns, run->breaker_key, &run->cls->breaker,
                                   success, guard_now(run), &st);
        if (r < 0) {
                guard_escalate(run, NULL,
                               "heal acted on %s but could not record the outcome in its circuit breaker "
                               "(%s): check %s",
                               run->a->target, strerror(-r), heal_state_path(run->g->state));
                return;
        }
        if (r == 0)
                return;
        if (success) {
                guard_emit(run, HEAL_EVENT_BREAKER_CLOSED, NULL, NULL, NULL,
                           "%s on %s: circuit breaker closed, the heal worked.", run->a->class,
                           run->a->target);
                return;
        }
        if (st != HEAL_BREAKER_OPEN)
                return;
        (void) heal_breaker_get_ns(run->g->state, run->breaker_ns, run->breaker_key, &run->cls->breaker,
                                  guard_now(run), &st, &failures);
        guard_emit(run, HEAL_EVENT_BREAKER_OPENED, NULL, NULL, NULL,
                   "%s on %s: circuit breaker opened after %" PRIu32
                   " failed heals; no more heals for %" PRIu32 " s.",
                   run->a->class, run->a->target, failures, run->cls->breaker.cooldown_s);
        guard_escalate(run, NULL, "breaker opened after %" PRIu32 " failed heals of %s: crash loop?",
                       failures, run->a->target);
}

static int verify(guard_run *run, const char *act_detail) {
        _cleanup_free_ char *detail = NULL;
        const heal_action *a = run->a;
        int r;

        r = a->verify ? a->verify(a->userdata, &detail) : 1;
        if (r > 0) {
                guard_emit(run, HEAL_EVENT_VERIFIED, NULL, facts_string(a, "before"), detail ?: act_detail,
                           "%s on %s: %s worked.", a->class, a->target, a->intent ?: "the heal");
                run->outcome = HEAL_OUTCOME_VERIFIED;
                run->settle_done = true;
                breaker_record(run, true);
                return 0;
        }

        const char *why = detail ?: (r < 0 ? strerror(-r) : "not verified");
        guard_emit(run, HEAL_EVENT_VERIFY_FAILED, why, facts_string(a, "before"), act_detail,
                   "%s on %s: %s did not work: %s.", a->class, a->target, a->intent ?: "the heal", why);
        run->outcome = HEAL_OUTCOME_VERIFY_FAILED;
        breaker_record(run, false);
        return 0;
}

static int act_step(guard_run *run) {
        _cleanup_free_ char *detail = NULL;
        const heal_action *a = run->a;
        int r;

        /* The pending tiers may run long after the first check. */
        r = kill_switch_step(run);
        if (r <= 0)
                return r;
        r = guard_tier_consume(run);
        if (r <= 0)
                return r;

        guard_emit(run, HEAL_EVENT_ACTING, NULL, facts_string(a, "before"), NULL,
                   "%s on %s: %s%s%s (undo: %s).", a->class, a->target, a->intent ?: "acting",
                   run->approved_by ? ", approved by " : "", run->approved_by ?: "",
                   a->rollback ?: "not stated");
        run->acted = true;
        r = a->act(a->userdata, &detail);
        if (r < 0) {
                const char *why = detail ?: strerror(-r);
                guard_emit(run, HEAL_EVENT_ACTION_FAILED, why, facts_string(a, "before"), NULL,
                           "%s on %s: %s failed: %s.", a->class, a->target, a->intent ?: "the heal", why);
                run->outcome = HEAL_OUTCOME_ACTION_FAILED;
                breaker_record(run, false);
                return 0;
        }
        return verify(run, detail);
}

/* ---- the pass ------------------------------------------------------------ */

static void run_done(guard_run *run) {
        closep(&run->claim_fd);
        closep(&run->trial_fd);
        free(run->key);
        free(run->claim_key);
        free(run->breaker_key);
        if (run->have_pending)
                heal_pending_done(&run->pending);
}

static int run_init(guard_run *run, heal_guard *g, const heal_action *a) {
        _cleanup_free_ char *key = NULL, *claim = NULL;
        heal_mode mode = HEAL_MODE_SHADOW;
        int r;

        *run = (guard_run) {
                .g = g,
                .a = a,
                .claim_fd = -EBADF,
                .trial_fd = -EBADF,
                .outcome = HEAL_OUTCOME_SKIPPED,
                .inc =
                        {
                                .healer = a->healer,
                                .class = a->class,
                                .target = a->target,
                                .intent = a->intent,
                                .rollback = a->rollback,
                                .owner = "heal",
                                .facts = a->facts,
                        },
        };
        if (g->policy) {
                run->inc.policy_digest = g->policy->digest;
                run->cls = heal_policy_class(g->policy, a->class);
        }
        if (run->cls) {
                mode = run->cls->mode;
                run->tier = run->cls->tier;
                run->inc.mode = heal_mode_to_string(mode);
        }
        if (a->tier_override >= HEAL_TIER_AUTO && a->tier_override <= HEAL_TIER_HUMAN)
                run->tier = (heal_tier) a->tier_override;
        if (run->cls || a->tier_override >= 0)
                run->inc.tier = heal_tier_to_string(run->tier);
        if (run->tier == HEAL_TIER_HUMAN)
                run->inc.owner = "human";
        run->shadow = run->cls && mode == HEAL_MODE_SHADOW;
        run->budget_ns = run->shadow ? HEAL_GUARD_NS_SHADOW_BUDGET : HEAL_GUARD_NS_BUDGET;
        run->breaker_ns = run->shadow ? HEAL_GUARD_NS_SHADOW_BREAKER : HEAL_BREAKER_NS;

        r = heal_idem_key(a->class, a->target, a->incident, guard_now(run), guard_ttl_usec(run), &key);
        if (r < 0)
                return r;
        run->breaker_key = heal_guard_breaker_key(a->class, a->target);
        if (!run->breaker_key)
                return -ENOMEM;
        if (run->shadow && asprintf(&claim, HEAL_GUARD_SHADOW_PREFIX "%s", key) < 0)
                return -ENOMEM;
        return guard_set_key(run, claim ?: key);
}

static void settle_claim(guard_run *run) {
        int r;

        if (!run->claimed)
                return;
        r = heal_idem_finish(run->g->state, run->claim_key, &run->claim_fd, run->settle_done,
                             guard_now(run), guard_ttl_usec(run));
        if (r < 0)
                guard_escalate(run, NULL,
                               "heal could not record the end of its work on %s (%s): a later trigger may "
                               "%s; check %s",
                               run->a->target, strerror(-r),
                               run->settle_done ? "handle the same incident again"
                                                : "find it still in flight",
                               heal_state_path(run->g->state));
        run->claimed = false;
}

/* A pass that took the half-open trial and stopped before act (budget,
 * kill switch, its pending record changed, a state error) gives it back, so
 * the next pass may try at once instead of a cooldown later. */
static void release_trial(guard_run *run) {
        if (run->trial_fd < 0 || run->acted)
                return;
        /* On failure the trial is let go all the same (no live owner: free). */
        (void) heal_breaker_release_ns(run->g->state, run->breaker_ns, run->breaker_key, &run->trial_fd);
}

static void record_run(guard_run *run) {
        /* Best effort: metrics never change a decision. */
        if (run->a->healer)
                (void) heal_metrics_heartbeat(run->g->state, run->a->healer, guard_now(run));
        if (!run->g->defer_metrics_write)
                (void) heal_metrics_write(run->g->state, NULL);
        /* At most once a minute (a small read otherwise): expired idempotency
         * records go, and pending records nobody consumed age out. */
        if (heal_idem_gc_due(run->g->state, guard_now(run)) > 0) {
                (void) heal_idem_gc(run->g->state, guard_now(run), HEAL_IDEM_GC_MAX);
                guard_pending_gc(run);
        }
}

int heal_guard_run(heal_guard *g, const heal_action *a, heal_outcome *ret_outcome) {
        static int (*const steps[])(guard_run *run) = {
                kill_switch_step, /* 1 */
                policy_step,      /* 2 */
                guard_tier_adopt, /*   the incident's key, before it is claimed */
                idempotency_step, /* 3 */
                guard_tier_plan,  /*   what step 6 will do: decides take or peek below */
                guard_tier_resolve, /* plans that never act end here, before 4 and 5 */
                breaker_step,     /* 4 */
                budgets_step,     /* 5 */
                guard_tier_step,  /* 6 */
                mode_step,        /* 7 */
                act_step,
        };
        _cleanup_(run_done) guard_run run = {};
        int r;

        if (!g || !g->state || !a || !a->class || !a->target || !a->act || !ret_outcome)
                return -EINVAL;

        r = run_init(&run, g, a);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(steps); i++) {
                r = steps[i](&run);
                if (r <= 0)
                        break;
        }
        release_trial(&run);
        settle_claim(&run);
        if (r < 0)
                guard_escalate(&run, NULL,
                               "the heal guard broke while handling %s on %s (%s); nothing was done",
                               a->class, a->target, strerror(-r));
        record_run(&run);
        if (r < 0)
                return r;
        *ret_outcome = run.outcome;
        return 0;
}
