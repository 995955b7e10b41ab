/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decide: for a confirmed mount, one plan per tier of sources (auto first,
 * then the ones that wait for a window or an approval), each handed to the
 * guard as its own intent. A bad source or a plan over the cap refuses
 * everything and pages a human: an empty or "everything" match is an error. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "confirm.h"
#include "heal/audit.h"
#include "heal/cleanup.h"
#include "heal/escalate.h"
#include "heal/guard.h"
#include "heal/hash.h"
#include "journal-vacuum.h"
#include "run.h"

static void reclaim_planp(reclaim_plan **p) {
        reclaim_plan_free(*p);
}

/* What one run learns across the tier passes of a mount. */
typedef struct reclaim_walk {
        uint64_t promised; /* bytes earlier passes would free but did not (shadow, pending) */
        bool acted;        /* a pass removed something */
        bool stop;         /* refused: no later pass */
} reclaim_walk;

static int refuse(disk_run *dr, const disk_mount *m, json_t *facts, const char *id, const char *reason,
                  const char *why) {
        heal_incident inc = {
                .healer = DISK_HEALER,
                .class = DISK_PRESSURE_CLASS,
                .target = m->target,
                .incident = id,
                .mode = heal_mode_to_string(dr->pressure->mode),
                .rollback = "irreversible: deleted files cannot be restored",
                .owner = "human",
                .policy_digest = dr->policy->digest,
                .facts = facts,
        };

        if (json_object_set_new(facts, "refused", json_string(why)) < 0)
                return -ENOMEM;
        (void)heal_audit(&inc, HEAL_EVENT_SKIPPED, &(heal_audit_step){.reason = reason},
                         "%s: nothing removed, the plan is refused: %s", m->target, why);
        (void)heal_escalate(dr->policy, &inc, why, NULL);
        return 0;
}

/* Every file source must be sound before anything is planned: one bad rule
 * refuses the whole plan. Returns >0 all sound, 0 refused, -errno. */
static int check_sources(disk_run *dr, const disk_mount *m, json_t *facts, uint64_t first_usec) {
        const disk_settings *s = &dr->settings;
        char id[33];

        for (size_t i = 0; i < s->n_sources; i++) {
                _cleanup_free_ char *err = NULL, *why = NULL;
                int r;

                if (s->sources[i].journal)
                        continue;
                r = reclaim_source_check(&s->sources[i].rule, &err);
                if (r >= 0)
                        continue;
                if (asprintf(&why, "source %s of class %s is unusable: %s", s->sources[i].name,
                             DISK_PRESSURE_CLASS, err ?: strerror(-r)) < 0)
                        return -ENOMEM;
                disk_incident_id(m, first_usec, "refused", id);
                r = refuse(dr, m, facts, id, "bad-source", why);
                return r < 0 ? r : 0;
        }
        return 1;
}

/* The rules of tier @t whose root is on @m's filesystem (the walk never
 * leaves a root's filesystem, so other roots cannot help this one). */
static int rules_for(const disk_run *dr, const disk_mount *m, heal_tier t, reclaim_source **ret,
                     const disk_source ***ret_src) {
        _cleanup_free_ reclaim_source *rules = NULL;
        _cleanup_free_ size_t *idx = NULL;
        _cleanup_free_ const disk_source **src = NULL;
        size_t n = 0;
        int k;

        k = disk_sources_for_tier(&dr->settings, dr->pressure->tier, t, &rules, &idx);
        if (k < 0)
                return k;
        src = calloc((size_t)k + 1, sizeof(*src));
        if (!src)
                return -ENOMEM;
        for (int i = 0; i < k; i++) {
                struct stat st;

                if (stat(rules[i].root, &st) < 0 || st.st_dev != m->dev)
                        continue;
                rules[n] = rules[i];
                src[n++] = &dr->settings.sources[idx[i]];
        }
        *ret = TAKE_PTR(rules);
        *ret_src = TAKE_PTR(src);
        return (int)n;
}

static char *plan_path(const disk_run *dr, const disk_mount *m, heal_tier t) {
        _cleanup_free_ char *esc = heal_state_escape(m->target);
        char *p = NULL;

        if (!esc ||
            asprintf(&p, "%s/disk-reclaim-%s-%s.json", dr->plans_dir, esc, heal_tier_to_string(t)) < 0)
                return NULL;
        return p;
}

static char *sources_list(const reclaim_plan *p, bool journal) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        bool any = false;

        if (!f)
                return NULL;
        for (size_t i = 0; i < p->n_sources; i++)
                if (p->sources[i].planned_files > 0) {
                        fprintf(f, "%s%s", any ? ", " : "", p->sources[i].name);
                        any = true;
                }
        if (journal)
                fprintf(f, "%sjournal", any ? ", " : "");
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static json_t *plan_summary(const reclaim_plan *p, const char *path, uint64_t journal_bytes) {
        _cleanup_json_ json_t *o = NULL, *srcs = json_array();

        if (!srcs)
                return NULL;
        for (size_t i = 0; i < p->n_sources; i++)
                if (json_array_append_new(
                            srcs,
                            json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I}", "name", p->sources[i].name,
                                      "root", p->sources[i].root, "walked", p->sources[i].walked,
                                      "unreadable_dirs", (json_int_t)p->sources[i].unreadable_dirs,
                                      "eligible_files", (json_int_t)p->sources[i].eligible_files,
                                      "eligible_bytes", (json_int_t)p->sources[i].eligible_bytes,
                                      "planned_files", (json_int_t)p->sources[i].planned_files,
                                      "planned_bytes", (json_int_t)p->sources[i].planned_bytes)) < 0)
                        return NULL;
        o = json_pack("{s:o?, s:I, s:I, s:b, s:I, s:O, s:s?}", "need_bytes",
                      p->need_bytes == UINT64_MAX ? NULL : json_integer((json_int_t)p->need_bytes),
                      "planned_bytes", (json_int_t)p->planned_bytes, "planned_files", (json_int_t)p->n_files,
                      "reached", p->reached, "journal_bytes", (json_int_t)journal_bytes, "sources", srcs,
                      "plan_file", path);
        return TAKE_PTR(o);
}

/* How much of the remaining need the journal would give, and with which --vacuum-size. */
static uint64_t journal_share(const disk_mount *m, const disk_source *j, uint64_t remaining,
                              uint64_t *ret_size) {
        uint64_t usage = 0, size;

        *ret_size = 0;
        if (!j || remaining == 0 || disk_journal_on(m->dev) <= 0 || disk_journal_usage(&usage) < 0)
                return 0;
        size = disk_journal_vacuum_size(usage, remaining, j->keep_bytes);
        if (size == 0)
                return 0;
        *ret_size = size;
        return usage - size;
}

typedef struct pass_need {
        uint64_t bytes, inodes, build_bytes, max_files;
        bool inode_mode;
} pass_need;

static bool need_of(const disk_run *dr, const disk_mount *m, const reclaim_walk *w, pass_need *n) {
        const disk_thresholds *t = &dr->settings.thresholds;

        *n = (pass_need){.bytes = disk_need_bytes(m, t), .inodes = disk_need_inodes(m, t)};
        n->bytes = n->bytes > w->promised ? n->bytes - w->promised : 0;
        if (w->promised > 0)
                n->inodes = 0; /* a promise in bytes covers the inodes it frees as well, near enough */
        n->inode_mode = n->bytes == 0 && n->inodes > 0;
        n->build_bytes = n->inode_mode ? UINT64_MAX : n->bytes;
        n->max_files = dr->settings.max_files;
        /* Inodes: every eligible file oldest first, stopped at as many as needed. */
        if (n->inode_mode && n->inodes < n->max_files)
                n->max_files = n->inodes;
        return n->bytes > 0 || n->inodes > 0;
}

static bool outcome_acted(heal_outcome o) {
        return o == HEAL_OUTCOME_VERIFIED || o == HEAL_OUTCOME_VERIFY_FAILED ||
               o == HEAL_OUTCOME_ACTION_FAILED;
}

/* The identity of the files a plan removes (source, device, inode, size, path), in plan order. */
static uint64_t plan_digest(const reclaim_plan *plan) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < plan->n_files; i++) {
                const reclaim_file *f = &plan->files[i];
                uint64_t parts[] = { f->source, (uint64_t) f->dev, (uint64_t) f->ino, f->size,
                                     heal_fnv1a64(f->relpath, strlen(f->relpath)) };

                h = (h ^ heal_fnv1a64(parts, sizeof(parts))) * UINT64_C(0x100000001b3);
        }
        return h;
}

static int guard_pass(disk_run *dr, disk_act_ctx *ctx, heal_tier t, const char *id, const char *intent,
                      heal_outcome *ret) {
        heal_action a = {
                .healer = DISK_HEALER,
                .class = DISK_PRESSURE_CLASS,
                .target = ctx->m->target,
                .incident = id,
                .intent = intent,
                .rollback = "irreversible: deleted files cannot be restored",
                .facts = ctx->facts,
                .tier_override = (int)t,
                .rerun_unit = DISK_UNIT,
                .act = disk_act,
                .verify = disk_verify,
                .userdata = ctx,
        };
        heal_guard g = disk_run_guard(dr);

        return heal_guard_run(&g, &a, ret);
}

/* One tier's plan through the guard. */
static int reclaim_pass(disk_run *dr, disk_mount *m, json_t *mount_facts, uint64_t first_usec, heal_tier t,
                        reclaim_walk *w) {
        _cleanup_(reclaim_planp) reclaim_plan *plan = NULL;
        _cleanup_free_ reclaim_source *rules = NULL;
        _cleanup_free_ const disk_source **src = NULL;
        _cleanup_free_ char *err = NULL, *path = NULL, *names = NULL, *bytes = NULL, *intent = NULL;
        _cleanup_json_ json_t *facts = NULL;
        _cleanup_(disk_act_ctx_done) disk_act_ctx ctx = {};
        const disk_source *journal = disk_journal_for_tier(&dr->settings, dr->pressure->tier, t);
        uint64_t journal_bytes, journal_size = 0;
        heal_outcome outcome = HEAL_OUTCOME_SKIPPED;
        pass_need need;
        char id[33];
        int n, r;

        n = rules_for(dr, m, t, &rules, &src);
        if (n < 0)
                return n;
        if (n == 0 && !journal)
                return 0;
        if (!need_of(dr, m, w, &need))
                return 0;
        disk_incident_id(m, first_usec, heal_tier_to_string(t), id);
        facts = json_deep_copy(mount_facts);
        if (!facts)
                return -ENOMEM;

        r = reclaim_plan_build_with(rules, (size_t)n, need.build_bytes, dr->settings.max_bytes,
                                    need.max_files, dr->now_usec, &(reclaim_run_opts){.workers = dr->settings.workers, .ping = {.fn = disk_ping}},
                                    &plan, &err);
        if (r < 0) {
                _cleanup_free_ char *why = NULL;
                w->stop = true;
                if (asprintf(&why, "cannot plan on %s: %s", m->target, err ?: strerror(-r)) < 0)
                        return -ENOMEM;
                return refuse(dr, m, facts, id, "bad-source", why);
        }
        if (plan->capped && !(need.inode_mode && plan->n_files >= need.inodes)) {
                _cleanup_free_ char *why = NULL;
                w->stop = true;
                if (asprintf(&why,
                             "freeing %" PRIu64 " bytes on %s needs more than the policy's cap per run "
                             "(max_bytes_per_run %" PRIu64 ", max_files_per_run %" PRIu64 ")",
                             need.bytes, m->target, dr->settings.max_bytes, dr->settings.max_files) < 0)
                        return -ENOMEM;
                return refuse(dr, m, facts, id, "over-cap", why);
        }
        journal_bytes = need.inode_mode ? 0
                                        : journal_share(m, journal,
                                                        plan->planned_bytes < need.bytes
                                                                ? need.bytes - plan->planned_bytes
                                                                : 0,
                                                        &journal_size);
        if (plan->n_files == 0 && journal_bytes == 0)
                return 0; /* nothing eligible in this tier */

        path = plan_path(dr, m, t);
        names = sources_list(plan, journal_bytes > 0);
        bytes = disk_format_bytes(plan->planned_bytes + journal_bytes);
        if (!path || !names || !bytes)
                return -ENOMEM;
        /* The digest names the exact files: an approved plan runs only as approved (the guard
         * compares intents), a plan rebuilt with other files asks again. */
        if (asprintf(&intent, "remove %zu files (%s, plan %016" PRIx64 ") from %s on %s", plan->n_files, bytes,
                     plan_digest(plan), names, m->target) < 0)
                return -ENOMEM;
        if (json_object_set_new(facts, "plan", plan_summary(plan, path, journal_bytes)) < 0)
                return -ENOMEM;

        ctx = (disk_act_ctx){
                .dr = dr,
                .m = m,
                .plan = plan,
                .plan_sources = src,
                .facts = facts,
                .journal = journal_bytes > 0 ? journal : NULL,
                .journal_size = journal_size,
                .plan_path = path,
                .settle_usec = (uint64_t)dr->pressure->settle_s * USEC_PER_SEC,
        };
        /* The guard never calls act in shadow mode: the plan is on disk before it runs. */
        r = disk_plan_file_write(&ctx, heal_mode_to_string(dr->pressure->mode), heal_tier_to_string(t), id);
        if (r < 0)
                fprintf(stderr, "disk-reclaim: cannot write the plan %s: %s\n", path, strerror(-r));

        r = guard_pass(dr, &ctx, t, id, intent, &outcome);
        if (r < 0)
                return r;
        if (ctx.executed) {
                (void)disk_plan_file_write(&ctx, heal_mode_to_string(dr->pressure->mode),
                                           heal_tier_to_string(t), id);
                (void)disk_mount_measure(m);
        }
        if (outcome_acted(outcome))
                w->acted = true;
        else if (outcome == HEAL_OUTCOME_WOULD_ACT || outcome == HEAL_OUTCOME_PENDING)
                w->promised += plan->planned_bytes + journal_bytes;
        return 0;
}

/* Acted on everything the policy allows and still under pressure: a human's turn. */
static int still_short(disk_run *dr, const disk_mount *m, json_t *facts, uint64_t first_usec) {
        _cleanup_free_ char *summary = disk_mount_summary(m), *why = NULL;
        char id[33];
        heal_incident inc = {
                .healer = DISK_HEALER,
                .class = DISK_PRESSURE_CLASS,
                .target = m->target,
                .mode = heal_mode_to_string(dr->pressure->mode),
                .owner = "human",
                .policy_digest = dr->policy->digest,
                .facts = facts,
        };

        if (!summary ||
            asprintf(&why, "%s is still under pressure after removing what the policy allows (%s)",
                     m->target, summary) < 0)
                return -ENOMEM;
        disk_incident_id(m, first_usec, "short", id);
        inc.incident = id;
        (void)heal_escalate(dr->policy, &inc, why, NULL);
        return 0;
}

int disk_reclaim_mount(disk_run *dr, disk_mount *m, json_t *facts, uint64_t first_usec) {
        static const heal_tier order[] = {HEAL_TIER_AUTO, HEAL_TIER_DELAYED, HEAL_TIER_APPROVE,
                                          HEAL_TIER_HUMAN};
        reclaim_walk w = {};
        int r;

        r = check_sources(dr, m, facts, first_usec);
        if (r <= 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(order) && !w.stop; i++) {
                r = reclaim_pass(dr, m, facts, first_usec, order[i], &w);
                if (r < 0)
                        return r;
        }
        if (!w.acted)
                return 0;
        if (!disk_mount_pressure(m, &dr->settings.thresholds, NULL, NULL))
                /* Relieved: the next pressure on this mount is a new episode. */
                return disk_confirm_forget(dr->scratch, m->target);
        if (w.promised == 0 && !w.stop)
                return still_short(dr, m, facts, first_usec);
        return 0;
}
