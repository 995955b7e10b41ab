/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guard's tier step: auto goes on, human escalates, delayed and approve
 * record a pending action and wait for the window, the approval or the cancel. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "guard-internal.h"
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

static bool adoptable(const guard_run *run, const heal_pending *p) {
        bool p_shadow = p->idem_key && strncmp(p->idem_key, HEAL_GUARD_SHADOW_PREFIX,
                                               strlen(HEAL_GUARD_SHADOW_PREFIX)) == 0;

        return p->idem_key && p->class && p->target && streq_ptr(p->class, run->a->class) &&
               streq_ptr(p->target, run->a->target) && (!p->incident || !p->incident[0]) &&
               p_shadow == run->shadow;
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
                if (adoptable(run, &list[i]) && (!best || list[i].created_usec < best->created_usec))
                        best = &list[i];
        r = best ? guard_set_key(run, best->idem_key) : 0;
        for (size_t i = 0; i < n; i++)
                heal_pending_done(&list[i]);
        free(list);
        return r < 0 ? r : 1;
}

int guard_tier_plan(guard_run *run) {
        uint64_t now = guard_now(run);
        int r;

        if (run->tier == HEAL_TIER_AUTO) {
                run->plan = GUARD_PLAN_ACT;
                return 1;
        }
        if (run->tier == HEAL_TIER_HUMAN) {
                run->plan = GUARD_PLAN_HUMAN;
                return 1;
        }

        r = load_pending(run);
        if (r < 0)
                return guard_state_error(run, "pending", r);
        if (!run->have_pending) {
                if (!run->a->rerun_unit)
                        run->plan = GUARD_PLAN_NO_RERUN;
                else
                        run->plan = run->tier == HEAL_TIER_DELAYED ? GUARD_PLAN_NEW_DELAYED
                                                                   : GUARD_PLAN_NEW_APPROVE;
                return 1;
        }

        switch (run->pending.status) {
        case HEAL_PENDING_CANCELLED:
                run->plan = GUARD_PLAN_CANCELLED;
                break;
        case HEAL_PENDING_APPROVED:
                run->plan = GUARD_PLAN_ACT;
                break;
        case HEAL_PENDING_WAITING:
        default:
                if (run->tier == HEAL_TIER_DELAYED)
                        run->plan =
                                now >= run->pending.not_before_usec ? GUARD_PLAN_ACT : GUARD_PLAN_IN_WINDOW;
                else
                        run->plan =
                                now >= run->pending.expires_usec ? GUARD_PLAN_EXPIRED : GUARD_PLAN_AWAITING;
                break;
        }
        return 1;
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

static int drop_pending(guard_run *run) {
        int r = heal_pending_remove(run->g->state, run->pending.id);
        return r < 0 ? guard_state_error(run, "pending", r) : 1;
}

int guard_tier_step(guard_run *run) {
        heal_pending *p = &run->pending;
        uint64_t now = guard_now(run);

        switch (run->plan) {
        case GUARD_PLAN_ACT:
                if (run->have_pending && p->status == HEAL_PENDING_APPROVED) {
                        run->inc.owner = p->decided_by ?: "human";
                        guard_emit(run, HEAL_EVENT_APPROVED, NULL, NULL, NULL,
                                   "%s on %s: %s approved by %s (pending %s)", run->a->class, run->a->target,
                                   intent_of(run), run->inc.owner, p->id);
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
                guard_emit(run, HEAL_EVENT_EXPIRED, "expired", NULL, NULL,
                           "%s on %s: plan to %s expired unapproved (pending %s)", run->a->class,
                           run->a->target, intent_of(run), p->id);
                if (drop_pending(run) == 0)
                        return 0;
                return guard_skip(run, "expired", "%s on %s: not acting, the plan expired unapproved.",
                                  run->a->class, run->a->target);
        case GUARD_PLAN_CANCELLED:
                run->inc.owner = p->decided_by ?: "human";
                guard_emit(run, HEAL_EVENT_CANCELLED, "cancelled", NULL, NULL,
                           "%s on %s: %s cancelled by %s (pending %s)", run->a->class, run->a->target,
                           intent_of(run), run->inc.owner, p->id);
                if (drop_pending(run) == 0)
                        return 0;
                /* A human said no to this incident: later triggers of it stay quiet. */
                run->settle_done = true;
                return guard_skip(run, "cancelled", "%s on %s: not acting, cancelled by %s.", run->a->class,
                                  run->a->target, run->inc.owner);
        }
        return -EINVAL;
}

int guard_tier_consume(guard_run *run) {
        return run->have_pending ? drop_pending(run) : 1;
}
