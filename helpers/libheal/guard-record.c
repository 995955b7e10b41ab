/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How the guard records its steps: one audit record each, counted in the
 * metrics, with escalations for what a human must see. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "guard-internal.h"
#include "heal/escalate.h"
#include "heal/hash.h"
#include "heal/metrics.h"
#include "heal/state.h"

uint64_t guard_now(const guard_run *run) {
        if (run->g->now_usec > 0)
                return run->g->now_usec;
        return heal_now_usec(CLOCK_REALTIME);
}

const char *heal_guard_shadow_key_base(const char *key) {
        size_t n = strlen(HEAL_GUARD_SHADOW_PREFIX);

        return key && strncmp(key, HEAL_GUARD_SHADOW_PREFIX, n) == 0 ? key + n : NULL;
}

uint64_t guard_ttl_usec(const guard_run *run) {
        /* Before the policy is known, the documented default; a policy's 0
         * ("no window") still needs a non-empty bucket and claim lifetime. */
        if (!run->cls)
                return 300 * USEC_PER_SEC;
        return run->cls->idempotency_s > 0 ? (uint64_t) run->cls->idempotency_s * USEC_PER_SEC : USEC_PER_SEC;
}

static void count(guard_run *run, heal_event ev) {
        /* Metrics are best effort: a failed count never changes a decision. */
        (void) heal_metrics_count(run->g->state, run->a->class, ev);
}

/* The action's facts, plus "state_reserve": "used" once a state write of
 * this handle had to release the reserve: the audit says that state ran on
 * its last space. NULL when there is nothing to add (or no memory). */
static json_t *facts_with_reserve(const guard_run *run) {
        if (!heal_state_reserve_used(run->g->state))
                return NULL;
        json_t *facts = run->inc.facts ? json_copy(run->inc.facts) : json_object();
        if (facts && json_object_set_new(facts, "state_reserve", json_string("used")) < 0) {
                json_decref(facts);
                return NULL;
        }
        return facts;
}

static void emit_va(guard_run *run, heal_event ev, const heal_audit_step *step, const char *fmt, va_list ap) {
        _cleanup_free_ char *msg = NULL;
        _cleanup_json_ json_t *facts = facts_with_reserve(run);
        heal_incident inc = run->inc;

        if (facts)
                inc.facts = facts;
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        (void) heal_audit(&inc, ev, step, "%s", msg ?: "heal guard (message lost: out of memory)");
        count(run, ev);
}

void guard_emit(guard_run *run, heal_event ev, const char *reason, const char *before, const char *after,
                const char *fmt, ...) {
        heal_audit_step step = { .reason = reason, .before = before, .after = after };
        va_list ap;

        va_start(ap, fmt);
        emit_va(run, ev, &step, fmt, ap);
        va_end(ap);
}

static void skip_va(guard_run *run, const char *reason, json_t *context, const char *fmt, va_list ap) {
        heal_audit_step step = { .reason = reason, .context = context };

        emit_va(run, HEAL_EVENT_SKIPPED, &step, fmt, ap);
        run->outcome = HEAL_OUTCOME_SKIPPED;
}

int guard_skip(guard_run *run, const char *reason, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        skip_va(run, reason, NULL, fmt, ap);
        va_end(ap);
        return 0;
}

static void skip_ctx(guard_run *run, const char *reason, json_t *context, const char *fmt, ...) _printf_(4, 5);
static void skip_ctx(guard_run *run, const char *reason, json_t *context, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        skip_va(run, reason, context, fmt, ap);
        va_end(ap);
}

void guard_escalate(guard_run *run, json_t *context, const char *fmt, ...) {
        _cleanup_free_ char *why = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&why, fmt, ap) < 0)
                why = NULL;
        va_end(ap);
        /* heal_escalate() writes the "escalated" record whatever its other
         * channels do; their failure is audited there. */
        (void) heal_escalate(run->g->policy, &run->inc, why ?: "heal guard escalation", context);
        count(run, HEAL_EVENT_ESCALATED);
}

int guard_state_error(guard_run *run, const char *step, int error) {
        _cleanup_json_ json_t *ctx = NULL;

        ctx = json_pack("{s:s, s:s, s:i}", "guard_step", step, "error", strerror(-error), "errno", -error);
        /* HEAL_REASON stays the guard's word, so journalctl can filter on
         * it; which step and which error are in the message and context. */
        skip_ctx(run, "state-error", ctx, "%s on %s: not acting, the state under %s failed at the %s step: %s.",
                   run->a->class, run->a->target, heal_state_path(run->g->state), step, strerror(-error));
        guard_escalate(run, ctx,
                       "heal cannot trust its state (%s step: %s), so it stopped healing %s: check %s", step,
                       strerror(-error), run->a->target, heal_state_path(run->g->state));
        return 0;
}

int guard_set_key(guard_run *run, const char *claim_key) {
        _cleanup_free_ char *claim = NULL, *key = NULL, *salted = NULL;
        const char *base = heal_guard_shadow_key_base(claim_key) ?: claim_key;
        char first[17], second[17];

        claim = strdup(claim_key);
        key = strdup(base);
        if (!claim || !key)
                return -ENOMEM;

        if (run->a->incident && run->a->incident[0]) {
                run->inc.incident = run->a->incident;
        } else {
                /* Stable across the passes of one incident (and across
                 * modes), 32 hex like an InvocationID. */
                heal_fnv1a64_hex(key, strlen(key), first);
                if (asprintf(&salted, "incident|%s|%s", first, key) < 0)
                        return -ENOMEM;
                heal_fnv1a64_hex(salted, strlen(salted), second);
                snprintf(run->incident_id, sizeof(run->incident_id), "%s%s", first, second);
                run->inc.incident = run->incident_id;
        }

        free(run->claim_key);
        free(run->key);
        run->claim_key = TAKE_PTR(claim);
        run->key = TAKE_PTR(key);
        return 0;
}
