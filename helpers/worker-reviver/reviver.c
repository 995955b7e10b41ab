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
#include "reviver.h"

static inline void bus_unrefp(sd_bus **b) { sd_bus_unref(*b); }

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
        struct timespec ts;

        if (!c)
                return 0;
        key = heal_guard_breaker_key(REVIVER_CLASS, unit);
        if (!key)
                return -ENOMEM;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (heal_breaker_get(state, key, &c->breaker, (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000,
                             &bs, &failures) < 0)
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
                     (unsigned long long) (ctx->settle_usec / 1000000ULL),
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

int run(const char *unit, heal_outcome *ret_outcome) {
        _cleanup_(heal_state_freep) heal_state *state = NULL;
        _cleanup_(heal_policy_freep) heal_policy *policy = NULL;
        _cleanup_(heal_unit_info_done) heal_unit_info info = {};
        _cleanup_(bus_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *policy_error = NULL, *helper_unit = NULL, *intent = NULL;
        _cleanup_json_ json_t *facts = NULL;
        const heal_class_policy *c = NULL;
        reviver_reaction reaction = REVIVER_RESTART;
        reviver_monitor mon;
        heal_incident inc;
        heal_outcome outcome;
        const char *reason, *result;
        int r;

        r = heal_reviver_instance(unit, &helper_unit);
        if (r < 0)
                return r;
        if (asprintf(&intent, "restart %s", unit) < 0)
                return -ENOMEM;
        reviver_monitor_from_env(&mon);

        r = heal_bus_open(&bus);
        if (r < 0)
                return r;
        r = heal_state_open(NULL, &state);
        if (r < 0)
                return r;
        /* An invalid policy is not our error to return: the guard fails closed and escalates it. */
        r = heal_policy_load(NULL, &policy, &policy_error);
        if (r < 0) {
                policy = NULL;
                if (!policy_error && asprintf(&policy_error, "cannot load the policy: %s", strerror(-r)) < 0)
                        return -ENOMEM;
        } else
                c = heal_policy_class(policy, REVIVER_CLASS);

        reviver_ctx ctx = {
                .bus = bus,
                .unit = unit,
                .job_timeout_usec = REVIVER_JOB_TIMEOUT_USEC,
                .settle_usec = (uint64_t) (c ? c->settle_s : 10) * 1000000ULL,
                .verify_command = reviver_verify_command(c),
                .verify_timeout_usec = REVIVER_VERIFY_TIMEOUT_USEC,
        };

        /* detect */
        r = heal_unit_get_info(bus, unit, &info);
        if (r < 0)
                return r;
        result = result_of(&info, &mon);
        facts = reviver_facts(unit, &info, &mon);
        if (!facts)
                return -ENOMEM;
        r = add_journal(facts, unit);
        if (r < 0)
                return -ENOMEM;
        r = add_breaker(facts, state, c, unit);
        if (r < 0)
                return r;

        inc = (heal_incident) {
                .healer = REVIVER_HEALER,
                .class = REVIVER_CLASS,
                .target = unit,
                .incident = reviver_incident(&info, &mon),
                .intent = intent,
                .tier = c ? heal_tier_to_string(c->tier) : NULL,
                .mode = c ? heal_mode_to_string(c->mode) : NULL,
                .rollback = "none needed: a started unit can be stopped with systemctl stop",
                .owner = "heal",
                .policy_digest = policy ? policy->digest : NULL,
                .facts = facts,
        };
        (void) heal_audit(&inc, HEAL_EVENT_DETECTED, NULL, "%s failed (result %s).", unit, result ?: "unknown");

        /* Only units that asked for it, by their own OnFailure=. */
        r = heal_unit_is_enrolled(bus, unit);
        if (r < 0)
                return r;
        if (r == 0) {
                (void) heal_audit(&inc, HEAL_EVENT_SKIPPED, &(heal_audit_step) { .reason = "not-enrolled" },
                                  "%s is not enrolled (its OnFailure= does not name %s); heal leaves it alone.",
                                  unit, helper_unit);
                *ret_outcome = HEAL_OUTCOME_SKIPPED;
                return 0;
        }

        /* confirm */
        if (!reviver_confirm(unit, &info, &mon, &reason)) {
                (void) heal_audit(&inc, HEAL_EVENT_DISMISSED,
                                  &(heal_audit_step) { .reason = reason, .after = info.active_state },
                                  "%s needs no revival: %s.", unit, reason);
                *ret_outcome = HEAL_OUTCOME_SKIPPED;
                return 0;
        }
        (void) heal_audit(&inc, HEAL_EVENT_CONFIRMED, &(heal_audit_step) { .before = info.active_state },
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
                .intent = intent,
                .rollback = inc.rollback,
                .facts = facts,
                .tier_override = reaction == REVIVER_HUMAN ? (int) HEAL_TIER_HUMAN : -1,
                .rerun_unit = helper_unit,
                .act = reviver_act,
                .verify = reviver_verify,
                .userdata = &ctx,
        };
        heal_guard g = {
                .state = state,
                .policy = policy,
                .policy_error = policy_error,
                .bus = bus,
                .helper_unit = helper_unit,
        };
        r = heal_guard_run(&g, &a, &outcome);
        if (r < 0)
                return r;
        *ret_outcome = outcome;
        return 0;
}
