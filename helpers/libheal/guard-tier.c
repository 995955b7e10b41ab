/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guard's tier step: auto goes on, human escalates, delayed and approve
 * record a pending action and wait for the window, the approval or the cancel.
 * A pending record is judged by the tier it was made under, and consumed only
 * as it was judged (compare-and-remove). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "guard-internal.h"
#include "heal/metrics.h"
#include "heal/spawn.h"

static const char *intent_of(const guard_run *run) {
        return run->a->intent ?: "act";
}

static int load_pending(guard_run *run) {
        char id[13];
        int r;

        heal_pending_id(run->claim_key, id);
        r = heal_pending_load(run->g->state, id, &run->pending);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        run->have_pending = true;
        return 1;
}

/* Only a record someone may still act on (or a cancel that keeps the
 * incident quiet): never a stale approval or an expired plan. */
static bool adoptable(const guard_run *run, const heal_pending *p, uint64_t now) {
        return p->idem_key && p->class && p->target && streq_ptr(p->class, run->a->class) &&
               streq_ptr(p->target, run->a->target) && (!p->incident || !p->incident[0]) &&
               (heal_guard_shadow_key_base(p->idem_key) != NULL) == run->shadow &&
               !heal_pending_over(p, now);
}

int guard_tier_adopt(guard_run *run) {
        heal_pending *list = NULL;
        size_t n = 0;
        const heal_pending *best = NULL;
        char id[13];
        heal_pending probe = {};
        int r;

        /* Only a time-bucketed incident can lose its pending record to the
         * clock: its key names the bucket, and the window spans buckets. */
        if ((run->tier != HEAL_TIER_DELAYED && run->tier != HEAL_TIER_APPROVE) ||
            (run->a->incident && run->a->incident[0]))
                return 1;

        heal_pending_id(run->claim_key, id);
        r = heal_pending_load(run->g->state, id, &probe);
        if (r >= 0) {
                heal_pending_done(&probe);
                return 1;
        }
        if (r != -ENOENT)
                return guard_state_error(run, "pending", r);

        r = heal_pending_list(run->g->state, &list, &n);
        if (r < 0)
                return guard_state_error(run, "pending", r);
        for (size_t i = 0; i < n; i++)
                if (adoptable(run, &list[i], guard_now(run)) &&
                    (!best || list[i].created_usec < best->created_usec))
                        best = &list[i];
        r = best ? guard_set_key(run, best->idem_key) : 0;
        for (size_t i = 0; i < n; i++)
                heal_pending_done(&list[i]);
        free(list);
        return r < 0 ? r : 1;
}

/* The plan of a pass that finds no record (of its tier). */
static void plan_new(guard_run *run) {
        switch (run->tier) {
        case HEAL_TIER_AUTO:
                run->plan = GUARD_PLAN_ACT;
                break;
        case HEAL_TIER_HUMAN:
                run->plan = GUARD_PLAN_HUMAN;
                break;
        default:
                if (!run->a->rerun_unit)
                        run->plan = GUARD_PLAN_NO_RERUN;
                else
                        run->plan = run->tier == HEAL_TIER_DELAYED ? GUARD_PLAN_NEW_DELAYED
                                                                   : GUARD_PLAN_NEW_APPROVE;
        }
}

/* The record changed under us (a human decided, another pass consumed it):
 * this pass does nothing; the next trigger decides afresh. */
static int pending_changed(guard_run *run, const heal_pending *cur) {
        return guard_skip(run, "pending-changed",
                          "%s on %s: not acting, pending %s changed while this pass decided on it (%s).",
                          run->a->class, run->a->target, run->pending.id,
                          cur ? heal_pending_status_to_string(cur->status) : "gone");
}

/* Compare-and-remove of the record this pass judged. Returns 1 removed, or 0:
 * changed (*ret_cur: the record now), gone, or a state error (reported,
 * *ret_error set). */
static int take_pending(guard_run *run, heal_pending *ret_cur, bool *ret_error) {
        int r = heal_pending_take(run->g->state, &run->pending, ret_cur);

        *ret_error = false;
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                *ret_error = true;
                return guard_state_error(run, "pending", r);
        }
        return r;
}

/* A record of another tier than the class has now (the operator switched it):
 * judged by the new tier it might act with nobody asked (an approve plan has
 * no window), or wait for nothing. Dropped, audited, and the pass starts a
 * plan of the current tier. Returns >0 go on, 0 stopped. */
static int drop_tier_changed(guard_run *run) {
        _cleanup_(heal_pending_done) heal_pending cur = {};
        const char *tier = run->inc.tier;
        bool error;

        if (take_pending(run, &cur, &error) == 0)
                return error ? 0 : pending_changed(run, cur.tier ? &cur : NULL);
        run->inc.tier = run->pending.tier;
        guard_emit(run, HEAL_EVENT_CANCELLED, "tier-changed", NULL, NULL,
                   "%s on %s: pending %s (tier %s) dropped unrun: the class's tier is now %s.",
                   run->a->class, run->a->target, run->pending.id, run->pending.tier, tier ?: "?");
        run->inc.tier = tier;
        heal_pending_done(&run->pending);
        run->have_pending = false;
        return 1;
}

/* Decided from the record, by the tier it was made under. */
static int plan_from_record(guard_run *run) {
        const heal_pending *p = &run->pending;
        uint64_t now = guard_now(run);

        if (p->status == HEAL_PENDING_CANCELLED) {
                /* A human's no outlives a tier change. */
                run->plan = GUARD_PLAN_CANCELLED;
                return 1;
        }
        if (!streq_ptr(p->tier, heal_tier_to_string(run->tier)))
                return drop_tier_changed(run);
        if (heal_pending_over(p, now))
                run->plan = GUARD_PLAN_EXPIRED;
        else if (p->status == HEAL_PENDING_APPROVED)
                run->plan = GUARD_PLAN_ACT;
        else if (heal_pending_stale(p, now))
                /* Due (a delayed action: an approve plan past its expiry is over). */
                run->plan = GUARD_PLAN_ACT;
        else
                run->plan = streq_ptr(p->tier, "delayed") ? GUARD_PLAN_IN_WINDOW : GUARD_PLAN_AWAITING;
        return 1;
}

int guard_tier_plan(guard_run *run) {
        int r;

        /* Every tier looks: a record left by the tier the class had before
         * is dropped, not acted on under the new one. */
        r = load_pending(run);
        if (r < 0)
                return guard_state_error(run, "pending", r);
        if (run->have_pending) {
                r = plan_from_record(run);
                if (r <= 0 || run->have_pending)
                        return r;
        }
        plan_new(run);
        return 1;
}

int guard_tier_resolve(guard_run *run) {
        switch (run->plan) {
        case GUARD_PLAN_IN_WINDOW:
        case GUARD_PLAN_AWAITING:
        case GUARD_PLAN_EXPIRED:
        case GUARD_PLAN_CANCELLED:
                return guard_tier_step(run);
        default:
                return 1;
        }
}

static char *shell_quote(const char *s) {
        size_t n = 3;
        char *out, *o;

        for (const char *p = s; *p; p++)
                n += *p == '\'' ? 4 : 1;
        out = malloc(n);
        if (!out)
                return NULL;
        o = out;
        *o++ = '\'';
        for (const char *p = s; *p; p++) {
                if (*p == '\'') {
                        memcpy(o, "'\\''", 4);
                        o += 4;
                } else
                        *o++ = *p;
        }
        *o++ = '\'';
        *o = '\0';
        return out;
}

/* A transient timer that starts the helper again when the window ends. It
 * fires one second late on purpose: the timer runs on the monotonic clock,
 * the window is checked against the wall clock. */
static int schedule_rerun_systemd(const char *unit, const char *id, uint64_t delay_usec) {
        _cleanup_free_ char *quoted = NULL, *cmd = NULL, *out = NULL;
        uint64_t secs = (delay_usec + USEC_PER_SEC - 1) / USEC_PER_SEC + 1;
        int status = 0, r;

        quoted = shell_quote(unit);
        if (!quoted)
                return -ENOMEM;
        if (asprintf(&cmd,
                     "systemd-run --quiet --on-active=%" PRIu64 "s"
                     " --timer-property=AccuracySec=1s --timer-property=RemainAfterElapse=no"
                     " --unit=heal-pending-%s systemctl start --no-block %s",
                     secs, id, quoted) < 0)
                return -ENOMEM;
        r = heal_spawn(cmd, NULL, 30 * USEC_PER_SEC, &out, &status);
        if (r < 0)
                return r;
        return status == 0 ? 0 : -EIO;
}

static int schedule_rerun(guard_run *run, const char *id, uint64_t delay_usec) {
        if (run->g->schedule_rerun)
                return run->g->schedule_rerun(run->g->hook_userdata, run->a->rerun_unit, delay_usec);
        return schedule_rerun_systemd(run->a->rerun_unit, id, delay_usec);
}

static int save_pending(guard_run *run, uint64_t not_before, uint64_t expires, char id[static 13]) {
        const heal_action *a = run->a;
        /* heal_pending_save() only reads the record; the strings stay ours. */
        heal_pending p = {
                .idem_key = run->claim_key,
                .healer = (char *) a->healer,
                .class = (char *) a->class,
                .target = (char *) a->target,
                .incident = (char *) a->incident,
                .incident_id = (char *) run->inc.incident,
                .intent = (char *) a->intent,
                .tier = (char *) heal_tier_to_string(run->tier),
                .rerun_unit = (char *) a->rerun_unit,
                .facts = a->facts,
                .status = HEAL_PENDING_WAITING,
                .created_usec = guard_now(run),
                .not_before_usec = not_before,
                .expires_usec = expires,
        };

        heal_pending_id(run->claim_key, p.id);
        memcpy(id, p.id, 13);
        return heal_pending_save(run->g->state, &p);
}

static int new_delayed(guard_run *run) {
        uint64_t delay = (uint64_t) run->cls->delay_s * USEC_PER_SEC;
        char id[13];
        int r, s;

        r = save_pending(run, guard_now(run) + delay, 0, id);
        if (r < 0)
                return guard_state_error(run, "pending", r);
        s = schedule_rerun(run, id, delay);
        guard_emit(run, HEAL_EVENT_PENDING, "in-cancel-window", NULL, NULL,
                   "%s on %s: will %s in %" PRIu32 " s unless cancelled: healctl cancel %s", run->a->class,
                   run->a->target, intent_of(run), run->cls->delay_s, id);
        run->outcome = HEAL_OUTCOME_PENDING;
        if (s < 0)
                guard_escalate(run, NULL,
                               "could not schedule the re-run of %s after the cancel window (%s): %s on %s "
                               "waits as pending %s until the next trigger",
                               run->a->rerun_unit, strerror(-s), intent_of(run), run->a->target, id);
        return 0;
}

static int new_approve(guard_run *run) {
        char id[13];
        int r;

        r = save_pending(run, 0, guard_now(run) + (uint64_t) run->cls->approve_expiry_s * USEC_PER_SEC, id);
        if (r < 0)
                return guard_state_error(run, "pending", r);
        guard_emit(run, HEAL_EVENT_PENDING, "awaiting-approval", NULL, NULL,
                   "%s on %s: plan to %s awaits approval (expires in %" PRIu32 " s): healctl approve %s",
                   run->a->class, run->a->target, intent_of(run), run->cls->approve_expiry_s, id);
        run->outcome = HEAL_OUTCOME_PENDING;
        return 0;
}

static int to_human(guard_run *run, const char *why) {
        run->inc.owner = "human";
        guard_escalate(run, NULL, "%s on %s needs a human: %s (%s)", run->a->class, run->a->target,
                       intent_of(run), why);
        run->outcome = HEAL_OUTCOME_ESCALATED;
        /* Handed over: the same incident does not page twice. */
        run->settle_done = true;
        return 0;
}

static uint64_t secs_left(uint64_t now, uint64_t until) {
        return until > now ? (until - now + USEC_PER_SEC - 1) / USEC_PER_SEC : 0;
}

static const char *expired_why(const heal_pending *p) {
        if (p->status == HEAL_PENDING_APPROVED)
                return "was approved, but no run carried it out in time";
        if (streq_ptr(p->tier, "delayed"))
                return "fell due, but no run carried it out in time";
        return "expired unapproved";
}

static int resolve_expired(guard_run *run) {
        _cleanup_(heal_pending_done) heal_pending cur = {};
        heal_pending *p = &run->pending;
        bool error;

        if (take_pending(run, &cur, &error) == 0)
                return error ? 0 : pending_changed(run, cur.tier ? &cur : NULL);
        guard_emit(run, HEAL_EVENT_EXPIRED, "expired", NULL, NULL, "%s on %s: plan to %s %s (pending %s).",
                   run->a->class, run->a->target, intent_of(run), expired_why(p), p->id);
        return guard_skip(run, "expired", "%s on %s: not acting, the plan %s.", run->a->class,
                          run->a->target, expired_why(p));
}

/* healctl audited the cancel when the human made it: the guard only skips. */
static int resolve_cancelled(guard_run *run) {
        _cleanup_(heal_pending_done) heal_pending cur = {};
        bool error;

        run->inc.owner = run->pending.decided_by ?: "human";
        if (take_pending(run, &cur, &error) == 0)
                return error ? 0 : pending_changed(run, cur.tier ? &cur : NULL);
        /* A human said no to this incident: later triggers of it stay quiet. */
        run->settle_done = true;
        return guard_skip(run, "cancelled", "%s on %s: not acting, %s cancelled by %s (pending %s).",
                          run->a->class, run->a->target, intent_of(run), run->inc.owner, run->pending.id);
}

int guard_tier_step(guard_run *run) {
        heal_pending *p = &run->pending;
        uint64_t now = guard_now(run);

        switch (run->plan) {
        case GUARD_PLAN_ACT:
                /* healctl audited the approval; the acting record names the approver. */
                if (run->have_pending && p->status == HEAL_PENDING_APPROVED) {
                        run->approved_by = p->decided_by ?: "human";
                        run->inc.owner = run->approved_by;
                }
                return 1;
        case GUARD_PLAN_HUMAN:
                return to_human(run, "tier human: heal never acts on this class");
        case GUARD_PLAN_NO_RERUN:
                return to_human(run, "the tier waits, but nothing was given to re-run the helper");
        case GUARD_PLAN_NEW_DELAYED:
                return new_delayed(run);
        case GUARD_PLAN_NEW_APPROVE:
                return new_approve(run);
        case GUARD_PLAN_IN_WINDOW:
                return guard_skip(run, "in-cancel-window",
                                  "%s on %s: will %s in %" PRIu64 " s unless cancelled: healctl cancel %s",
                                  run->a->class, run->a->target, intent_of(run),
                                  secs_left(now, p->not_before_usec), p->id);
        case GUARD_PLAN_AWAITING:
                return guard_skip(run, "awaiting-approval",
                                  "%s on %s: plan to %s still awaits approval: healctl approve %s",
                                  run->a->class, run->a->target, intent_of(run), p->id);
        case GUARD_PLAN_EXPIRED:
                return resolve_expired(run);
        case GUARD_PLAN_CANCELLED:
                return resolve_cancelled(run);
        }
        return -EINVAL;
}

/* A human approved one intent; the helper now brings another (a plan rebuilt
 * with other files, say). What was approved is what runs, or nothing: the
 * record goes, and the next pass asks for approval of what it would do then. */
static int drop_plan_changed(guard_run *run) {
        _cleanup_(heal_pending_done) heal_pending cur = {};
        bool error;

        if (take_pending(run, &cur, &error) == 0)
                return error ? 0 : pending_changed(run, cur.tier ? &cur : NULL);
        guard_emit(run, HEAL_EVENT_CANCELLED, "plan-changed", NULL, NULL,
                   "%s on %s: approved pending %s (\"%s\") dropped unrun: the plan is now \"%s\".",
                   run->a->class, run->a->target, run->pending.id, run->pending.intent ?: "?",
                   run->a->intent ?: "?");
        return guard_skip(run, "plan-changed",
                          "%s on %s: not acting, what was approved is not what would run now.", run->a->class,
                          run->a->target);
}

int guard_tier_consume(guard_run *run) {
        _cleanup_(heal_pending_done) heal_pending cur = {};
        bool error;

        if (!run->have_pending)
                return 1;
        if (run->pending.status == HEAL_PENDING_APPROVED &&
            strcmp(run->pending.intent ?: "", run->a->intent ?: "") != 0)
                return drop_plan_changed(run);
        /* Only the record the plan was based on: a cancel that raced this
         * pass is honoured, never overridden. */
        if (take_pending(run, &cur, &error) > 0)
                return 1;
        if (error)
                return 0;
        if (cur.tier && cur.status == HEAL_PENDING_CANCELLED) {
                heal_pending_done(&run->pending);
                run->pending = cur;
                cur = (heal_pending){};
                run->plan = GUARD_PLAN_CANCELLED;
                return resolve_cancelled(run);
        }
        return pending_changed(run, cur.tier ? &cur : NULL);
}

/* ---- ageing out ------------------------------------------------------------ */

static void audit_aged_out(const heal_pending *p, void *userdata) {
        guard_run *run = userdata;
        heal_incident inc = {
                .healer = p->healer,
                .class = p->class,
                .target = p->target,
                .incident = p->incident_id ?: p->incident,
                .intent = p->intent,
                .tier = p->tier,
                .mode = heal_guard_shadow_key_base(p->idem_key) ? "shadow" : "live",
                .owner = p->decided_by ?: "heal",
                .policy_digest = run->inc.policy_digest,
                .facts = p->facts,
        };
        heal_audit_step step = {.reason = "aged-out"};

        /* healctl audited the cancel; its record only goes. */
        if (p->status == HEAL_PENDING_CANCELLED)
                return;
        (void) heal_audit(&inc, HEAL_EVENT_EXPIRED, &step, "%s on %s: plan to %s %s (pending %s), removed.",
                          p->class, p->target, p->intent ?: "act", expired_why(p), p->id);
        (void) heal_metrics_count(run->g->state, p->class, HEAL_EVENT_EXPIRED);
}

void guard_pending_gc(guard_run *run) {
        (void) heal_pending_gc(run->g->state, guard_now(run), audit_aged_out, run);
}
