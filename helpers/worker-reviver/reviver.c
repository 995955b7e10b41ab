/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* run(): detect and confirm the failure, decide by policy, and hand the
 * revival to the guard, which owns every guardrail and the record. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heal/audit.h"
#include "heal/breaker.h"
#include "heal/journal-tail.h"
#include "heal/state.h"
#include "heal/time-util.h"
#include "reviver.h"

/* The last lines of the unit's journal ride along in the facts, so every
 * escalation the guard makes carries them. */
static int add_journal(json_t *facts, const char *unit) {
        _cleanup_json_ json_t *lines = NULL;
        int r;

        r = heal_journal_tail(unit, REVIVER_JOURNAL_LINES, &lines);
        if (r < 0)
                return json_object_set_new(facts, "journal_error", json_string(strerror(-r)));
        return json_object_set(facts, "journal", lines);
}

/* Consecutive failed revivals the breaker holds: >0 means the unit failed
 * again after heal revived it, i.e. a crash loop in the making. */
static int add_breaker(json_t *facts, heal_state *state, const heal_class_policy *c, const char *unit) {
        _cleanup_free_ char *key = NULL;
        heal_breaker_state bs;
        uint32_t failures;

        if (!c)
                return 0;
        key = heal_guard_breaker_key(REVIVER_CLASS, unit);
        if (!key)
                return -ENOMEM;
        if (heal_breaker_get(state, key, &c->breaker, heal_now_usec(CLOCK_REALTIME), &bs, &failures) < 0)
                return 0; /* the guard reads it again and fails closed on its own */
        if (json_object_set_new(facts, "failed_revivals", json_integer(failures)) < 0 ||
            json_object_set_new(facts, "breaker", json_string(heal_breaker_state_to_string(bs))) < 0 ||
            json_object_set_new(facts, "crash_loop", json_boolean(failures > 0 || bs != HEAL_BREAKER_CLOSED)) < 0)
                return -ENOMEM;
        return 0;
}

static int add_plan(json_t *facts, const reviver_ctx *ctx, reviver_reaction reaction) {
        _cleanup_free_ char *tried = NULL;

        if (asprintf(&tried, "reset-failed + start %s, then watch it stay active for %llu s%s", ctx->unit,
                     (unsigned long long) (ctx->settle_usec / USEC_PER_SEC),
                     ctx->verify_command ? " and run the verify command" : "") < 0)
                return -ENOMEM;
        if (json_object_set_new(facts, "reaction", json_string(reaction == REVIVER_HUMAN ? "human" : "restart")) < 0 ||
            json_object_set_new(facts, "plan", json_string(tried)) < 0)
                return -ENOMEM;
        return 0;
}

static const char *result_of(const heal_unit_info *info, const reviver_monitor *m) {
        if (info->result && *info->result)
                return info->result;
        return m->service_result;
}

/* What one run shares across its rounds. */
typedef struct reviver {
        const char *unit;
        char *helper_unit;
        char *intent;
        sd_bus *bus;
        heal_state *state;
        heal_policy *policy;
        char *policy_error;
        const heal_class_policy *class;
        reviver_monitor monitor;
} reviver;

static void reviver_done(reviver *rv) {
        free(rv->helper_unit);
        free(rv->intent);
        sd_bus_unref(rv->bus);
        heal_state_free(rv->state);
        heal_policy_free(rv->policy);
        free(rv->policy_error);
}

static int reviver_setup(reviver *rv, const char *unit) {
        int r;

        rv->unit = unit;
        r = heal_reviver_instance(unit, &rv->helper_unit);
        if (r < 0)
                return r;
        if (asprintf(&rv->intent, "restart %s", unit) < 0) {
                rv->intent = NULL;
                return -ENOMEM;
        }
        reviver_monitor_from_env(&rv->monitor);
        r = heal_bus_open(&rv->bus);
        if (r < 0)
                return r;
        r = heal_state_open(NULL, &rv->state);
        if (r < 0)
                return r;
        /* An invalid policy is not our error to return: the guard fails closed and escalates it. */
        r = heal_policy_load(NULL, &rv->policy, &rv->policy_error);
        if (r < 0) {
                rv->policy = NULL;
                if (!rv->policy_error && asprintf(&rv->policy_error, "cannot load the policy: %s", strerror(-r)) < 0) {
                        rv->policy_error = NULL;
                        return -ENOMEM;
                }
        } else
                rv->class = heal_policy_class(rv->policy, REVIVER_CLASS);
        return 0;
}

/* One incident: detect, confirm, decide, guard. @info is the unit as just read. */
static int reviver_round(reviver *rv, const heal_unit_info *info, const reviver_monitor *mon,
                         heal_outcome *ret_outcome) {
        const heal_class_policy *c = rv->class;
        const char *unit = rv->unit, *reason, *result = result_of(info, mon);
        _cleanup_json_ json_t *facts = NULL;
        reviver_reaction reaction = REVIVER_RESTART;
        heal_outcome outcome;
        heal_incident inc;
        int r;

        reviver_ctx ctx = {
                .bus = rv->bus,
                .unit = unit,
                .job_timeout_usec = REVIVER_JOB_TIMEOUT_USEC,
                .settle_usec = (uint64_t) (c ? c->settle_s : 10) * USEC_PER_SEC,
                .verify_command = reviver_verify_command(c),
                .verify_timeout_usec = REVIVER_VERIFY_TIMEOUT_USEC,
        };

        /* detect */
        facts = reviver_facts(unit, info, mon);
        if (!facts)
                return -ENOMEM;
        if (add_journal(facts, unit) < 0)
                return -ENOMEM;
        r = add_breaker(facts, rv->state, c, unit);
        if (r < 0)
                return r;

        inc = (heal_incident) {
                .healer = REVIVER_HEALER,
                .class = REVIVER_CLASS,
                .target = unit,
                .incident = reviver_incident(info, mon),
                .intent = rv->intent,
                .tier = c ? heal_tier_to_string(c->tier) : NULL,
                .mode = c ? heal_mode_to_string(c->mode) : NULL,
                .rollback = "none needed: a started unit can be stopped with systemctl stop",
                .owner = "heal",
                .policy_digest = rv->policy ? rv->policy->digest : NULL,
                .facts = facts,
        };
        (void) heal_audit(&inc, HEAL_EVENT_DETECTED, NULL, "%s failed (result %s).", unit, result ?: "unknown");

        /* Only units that asked for it, by their own OnFailure=. */
        r = heal_unit_is_enrolled(rv->bus, unit);
        if (r < 0)
                return r;
        if (r == 0) {
                (void) heal_audit(&inc, HEAL_EVENT_SKIPPED, &(heal_audit_step) { .reason = "not-enrolled" },
                                  "%s is not enrolled (its OnFailure= does not name %s); heal leaves it alone.",
                                  unit, rv->helper_unit);
                *ret_outcome = HEAL_OUTCOME_SKIPPED;
                return 0;
        }

        /* confirm */
        if (!reviver_confirm(unit, info, mon, &reason)) {
                (void) heal_audit(&inc, HEAL_EVENT_DISMISSED,
                                  &(heal_audit_step) { .reason = reason, .after = info->active_state },
                                  "%s needs no revival: %s.", unit, reason);
                *ret_outcome = HEAL_OUTCOME_SKIPPED;
                return 0;
        }
        (void) heal_audit(&inc, HEAL_EVENT_CONFIRMED, &(heal_audit_step) { .before = info->active_state },
                          "%s is failed (result %s) with no job queued.", unit, result ?: "unknown");

        /* decide: a reaction the policy names but we do not know is left to a human */
        if (reviver_decide(c, result, &reaction) < 0)
                reaction = REVIVER_HUMAN;
        r = add_plan(facts, &ctx, reaction);
        if (r < 0)
                return r;

        heal_action a = {
                .healer = REVIVER_HEALER,
                .class = REVIVER_CLASS,
                .target = unit,
                .incident = inc.incident,
                .intent = rv->intent,
                .rollback = inc.rollback,
                .facts = facts,
                .tier_override = reaction == REVIVER_HUMAN ? (int) HEAL_TIER_HUMAN : -1,
                .rerun_unit = rv->helper_unit,
                .act = reviver_act,
                .verify = reviver_verify,
                .userdata = &ctx,
        };
        heal_guard g = {
                .state = rv->state,
                .policy = rv->policy,
                .policy_error = rv->policy_error,
                .bus = rv->bus,
                .helper_unit = rv->helper_unit,
        };
        r = heal_guard_run(&g, &a, &outcome);
        if (r < 0)
                return r;
        *ret_outcome = outcome;
        return 0;
}

static bool outcome_acted(heal_outcome o) {
        return o == HEAL_OUTCOME_VERIFIED || o == HEAL_OUTCOME_VERIFY_FAILED || o == HEAL_OUTCOME_ACTION_FAILED;
}

int run(const char *unit, heal_outcome *ret_outcome) {
        _cleanup_(reviver_done) reviver rv = {};
        _cleanup_free_ char *handled = NULL;
        heal_outcome outcome = HEAL_OUTCOME_SKIPPED;
        int r;

        r = reviver_setup(&rv, unit);
        if (r < 0)
                return r;

        /* A unit that fails again while we still run (during the settle time,
         * say) starts its OnFailure= job, but systemd merges that into our own
         * running start job: the new failure would be lost. So after acting we
         * look again and treat a new failed invocation as a new incident. The
         * guard ends this (breaker, budgets); the cap only bounds a policy
         * that allows more. */
        for (unsigned round = 0; round < REVIVER_MAX_ROUNDS; round++) {
                _cleanup_(heal_unit_info_done) heal_unit_info info = {};
                reviver_monitor none = {};
                const char *incident;

                r = heal_unit_get_info(rv.bus, unit, &info);
                if (r < 0)
                        return r;
                if (round > 0) {
                        incident = reviver_incident(&info, &none);
                        if (!incident || (handled && strcmp(incident, handled) == 0) ||
                            !reviver_confirm(unit, &info, &none, &(const char *) { NULL }))
                                break;
                }
                /* The trigger's MONITOR_* describe the first failure only. */
                r = reviver_round(&rv, &info, round == 0 ? &rv.monitor : &none, &outcome);
                if (r < 0)
                        return r;
                if (!outcome_acted(outcome))
                        break;
                free(handled);
                handled = strdup(reviver_incident(&info, round == 0 ? &rv.monitor : &none) ?: "");
                if (!handled)
                        return -ENOMEM;
        }
        *ret_outcome = outcome;
        return 0;
}
