/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* run(): one scan of every targeted unit — sample it against its last sample, confirm each class over
 * the dwell time, and hand what is confirmed to the guard, which owns every guardrail and the record. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "heal/audit.h"
#include "heal/bus.h"
#include "heal/cleanup.h"
#include "heal/escalate.h"
#include "heal/guard.h"
#include "heal/metrics.h"
#include "heal/paths.h"
#include "heal/state.h"
#include "confirm.h"
#include "decide.h"
#include "detector.h"
#include "facts.h"
#include "samples-store.h"
#include "util.h"

void stuck_watchdog_ping(void) {
        static bool init;
        static uint64_t interval, last;
        uint64_t now, wd;

        if (!init) {
                init = true;
                if (sd_watchdog_enabled(false, &wd) > 0)
                        interval = wd / 4;
        }
        if (interval == 0)
                return;
        now = stuck_now_usec();
        if (last != 0 && now - last < interval)
                return;
        (void) sd_notify(false, "WATCHDOG=1");
        last = now;
}

/* What one run shares. */
typedef struct detector {
        sd_bus *bus;
        heal_state *state; /* the guard's (budgets, breakers, idempotency), opened when first needed */
        int state_error;   /* why it could not be: fails the run that needed it (a condition confirmed, or
                            * metrics to write); a run needing neither does not look, so a broken state
                            * dir shows only then (budgets and breakers are not read without it either) */
        stuck_store *store; /* samples, tracks and cgroup paths, under /run */
        stuck_cgroup_root *root; /* the cgroup layout, detected once */
        int root_error;          /* why there is no root */
        int units_run_fd;        /* STUCK_UNITS_RUN_DIR, <0 when unreadable */
        heal_policy *policy;
        char *policy_error;
        stuck_config cfg;
        stuck_run_stats stats;
} detector;

static void detector_done(detector *d) {
        sd_bus_unref(d->bus);
        heal_state_free(d->state);
        stuck_store_free(d->store);
        stuck_cgroup_root_free(d->root);
        if (d->units_run_fd >= 0)
                close(d->units_run_fd);
        heal_policy_free(d->policy);
        free(d->policy_error);
}

/* One unit in one run. */
typedef struct unit_scan {
        const char *unit;
        const char *path;
        char *control_group;
        char *invocation_id;   /* the unit's, read before its control group; NULL unknown */
        stuck_record rec;      /* what the last run left */
        stuck_unit_sample now; /* this run's sample */
        stuck_heartbeat_spec hb_spec;
        int hb_spec_error;
        stuck_heartbeat hb;
        stuck_observation obs;
        bool acted;            /* the guard acted: the next run starts from a fresh baseline */
} unit_scan;

static void unit_scan_done(unit_scan *u) {
        free(u->control_group);
        free(u->invocation_id);
        stuck_record_done(&u->rec);
        stuck_unit_sample_done(&u->now);
        stuck_heartbeat_spec_done(&u->hb_spec);
}

static heal_incident incident_of(detector *d, const heal_class_policy *c, const stuck_intent *in, const char *unit,
                                 const char *id, json_t *facts) {
        heal_tier tier = c ? c->tier : HEAL_TIER_AUTO;

        if (in->tier_override >= 0)
                tier = (heal_tier) in->tier_override;
        return (heal_incident) {
                .healer = STUCK_HEALER,
                .class = in->class,
                .target = unit,
                .incident = id,
                .intent = in->intent,
                .tier = c || in->tier_override >= 0 ? heal_tier_to_string(tier) : NULL,
                .mode = c ? heal_mode_to_string(c->mode) : NULL,
                .rollback = in->rollback,
                .owner = tier == HEAL_TIER_HUMAN ? "human" : "heal",
                .policy_digest = d->policy ? d->policy->digest : NULL,
                .facts = facts,
        };
}

/* The guard's state dir, opened on first use: a run in which nothing is confirmed never needs it (the
 * metrics aside, see run()). */
static int guard_state(detector *d) {
        if (d->state)
                return 0;
        if (d->state_error == 0)
                d->state_error = heal_state_open(NULL, &d->state);
        return d->state_error;
}

static bool outcome_acted(heal_outcome o) {
        return o == HEAL_OUTCOME_VERIFIED || o == HEAL_OUTCOME_VERIFY_FAILED;
}

/* The guard's pass over one confirmed condition. */
static int guard(detector *d, unit_scan *u, const heal_class_policy *c, const stuck_intent *in, const char *id,
                 json_t *facts) {
        heal_outcome outcome;
        int r;

        stuck_act_ctx actx = {
                .bus = d->bus,
                .unit = u->unit,
                .path = u->path,
                .heartbeat = &u->hb_spec,
                .heartbeat_stale_s = d->cfg.heartbeat_stale_s,
                .settle_usec = (uint64_t) (c ? c->settle_s : 10) * 1000000ULL,
        };
        heal_action a = {
                .healer = STUCK_HEALER,
                .class = in->class,
                .target = u->unit,
                .incident = id,
                .intent = in->intent,
                .rollback = in->rollback,
                .facts = facts,
                .tier_override = in->tier_override,
                .rerun_unit = STUCK_HELPER_UNIT,
                .act = in->kill ? stuck_act_abort : stuck_act_none,
                .verify = in->kill ? stuck_verify_progress : NULL,
                .userdata = &actx,
        };
        heal_guard g = {
                .state = d->state,
                .policy = d->policy,
                .policy_error = d->policy_error,
                .bus = d->bus,
                .helper_unit = STUCK_HELPER_UNIT,
                .defer_metrics_write = true,
        };

        d->stats.n_confirmed++;
        r = heal_guard_run(&g, &a, &outcome);
        stuck_watchdog_ping();
        if (r < 0)
                return r;
        if (outcome_acted(outcome)) {
                d->stats.n_acted++;
                u->acted = true;
        }
        return 0;
}

/* Audit and guard one class's verdict. @before: the episode as it was before this sample (its incident
 * id is the one a dismissal belongs to). */
static int report(detector *d, unit_scan *u, const heal_class_policy *c, const stuck_episode *before,
                  const stuck_episode *now, stuck_verdict v, const char *reason, json_t *facts, const char *what) {
        _cleanup_(stuck_intent_done) stuck_intent in = {};
        const char *id = now->incident[0] ? now->incident : before->incident;
        const char *class = c->name;
        heal_incident inc;
        int r;

        if (v == STUCK_VERDICT_NONE || v == STUCK_VERDICT_DWELLING || v == STUCK_VERDICT_RESOLVED)
                return 0;
        r = stuck_decide(class, u->unit, what, &in);
        if (r < 0)
                return r;
        inc = incident_of(d, c, &in, u->unit, id, facts);

        if (v == STUCK_VERDICT_DISMISSED) {
                (void) heal_audit(&inc, HEAL_EVENT_DISMISSED, &(heal_audit_step) { .reason = reason },
                                  "%s is not %s any more: %s.", u->unit, what, reason);
                return 0;
        }
        if (v == STUCK_VERDICT_DETECTED || (v == STUCK_VERDICT_CONFIRMED && now->n_samples == 1))
                (void) heal_audit(&inc, HEAL_EVENT_DETECTED, NULL, "%s may be %s; watching it for %u s.", u->unit,
                                  what, c->dwell_s);
        if (v == STUCK_VERDICT_DETECTED)
                return 0;
        if (v == STUCK_VERDICT_CONFIRMED)
                (void) heal_audit(&inc, HEAL_EVENT_CONFIRMED, NULL, "%s is %s, confirmed over %u s.", u->unit, what,
                                  c->dwell_s);
        r = guard_state(d);
        if (r < 0)
                return r;
        return guard(d, u, c, &in, id, facts);
}

static json_t *base_facts(unit_scan *u) {
        return stuck_facts_base(u->unit, u->control_group, &u->now);
}

static int class_stuck(detector *d, unit_scan *u) {
        const heal_class_policy *c = d->cfg.stuck;
        _cleanup_json_ json_t *facts = NULL, *hb = NULL;
        stuck_episode before = u->rec.track.stuck;
        const char *reason = NULL;
        stuck_verdict v;
        int r;

        v = stuck_confirm_stuck(&u->rec.track, &u->obs, (uint64_t) c->dwell_s * 1000000ULL, &reason);
        if (v == STUCK_VERDICT_NONE || v == STUCK_VERDICT_DWELLING || v == STUCK_VERDICT_RESOLVED)
                return 0;
        facts = base_facts(u);
        hb = stuck_heartbeat_to_json(&u->hb_spec, &u->hb);
        if (!facts || !hb)
                return -ENOMEM;
        if (u->hb_spec_error < 0 && json_object_set_new(hb, "policy_error", json_string("the policy's heartbeat "
                                                                                        "entry is unusable")) < 0)
                return -ENOMEM;
        r = stuck_facts_stuck(facts, &u->rec.track, &u->obs, hb, d->cfg.heartbeat_stale_s, d->cfg.psi_stall_percent,
                              c->dwell_s);
        if (r < 0)
                return r;
        r = report(d, u, c, &before, &u->rec.track.stuck, v, reason, facts,
                   "stuck (no progress, and a stale heartbeat or a PSI stall)");
        if (r < 0)
                return r;
        if (u->acted) {
                /* The process all this was about is gone; the new one is judged from scratch. */
                stuck_episode_reset(&u->rec.track.stuck);
                u->rec.track.flat_since = u->rec.track.stale_since = u->rec.track.stall_since = 0;
        }
        return 0;
}

static int class_d_state(detector *d, unit_scan *u) {
        const heal_class_policy *c = d->cfg.d_state;
        uint64_t dwell = (uint64_t) c->dwell_s * 1000000ULL, d_usec = 0;
        _cleanup_json_ json_t *facts = NULL;
        _cleanup_free_ char *what = NULL;
        stuck_episode before = u->rec.track.d_state;
        const stuck_proc_sample *worst;
        stuck_verdict v;
        int r;

        v = stuck_confirm_d_state(&u->rec.track, &u->now, u->obs.now_usec, dwell);
        if (v == STUCK_VERDICT_NONE || v == STUCK_VERDICT_DWELLING || v == STUCK_VERDICT_RESOLVED)
                return 0;
        facts = base_facts(u);
        if (!facts)
                return -ENOMEM;
        r = stuck_facts_d_state(facts, &u->rec.track, &u->now, u->obs.now_usec, c->dwell_s);
        if (r < 0)
                return r;
        worst = stuck_d_worst(&u->rec.track, &u->now, u->obs.now_usec, &d_usec);
        if (worst)
                r = asprintf(&what, "blocked: PID %d (%s) in uninterruptible sleep for %.0f s, wchan %s", worst->pid,
                             worst->comm ?: "?", (double) d_usec / 1e6, worst->wchan ?: "unavailable");
        else
                r = asprintf(&what, "blocked in uninterruptible sleep");
        if (r < 0)
                return -ENOMEM;
        return report(d, u, c, &before, &u->rec.track.d_state, v, "no task of it is in D state any more", facts,
                      what);
}

static int class_zombies(detector *d, unit_scan *u) {
        const heal_class_policy *c = d->cfg.zombies;
        _cleanup_json_ json_t *facts = NULL;
        _cleanup_free_ char *what = NULL;
        stuck_episode before = u->rec.track.zombies;
        stuck_verdict v;
        int r;

        v = stuck_confirm_zombies(&u->rec.track, &u->now, u->obs.now_usec, d->cfg.zombies_max,
                                  (uint64_t) c->dwell_s * 1000000ULL);
        if (v == STUCK_VERDICT_NONE || v == STUCK_VERDICT_DWELLING || v == STUCK_VERDICT_RESOLVED)
                return 0;
        facts = base_facts(u);
        if (!facts)
                return -ENOMEM;
        r = stuck_facts_zombies(facts, &u->now, d->cfg.zombies_max, c->dwell_s);
        if (r < 0)
                return r;
        if (u->now.n_zombie_parents > 0)
                r = asprintf(&what, "piling up zombies: %ld, %u of them children of PID %d (%s) that does not reap them",
                             stuck_zombie_count(&u->now), u->now.zombie_parents[0].n_zombies,
                             u->now.zombie_parents[0].pid, u->now.zombie_parents[0].comm ?: "?");
        else
                r = asprintf(&what, "piling up zombies");
        if (r < 0)
                return -ENOMEM;
        return report(d, u, c, &before, &u->rec.track.zombies, v, "its zombies were reaped", facts, what);
}

/* The control group the last run had from systemd, while the unit still runs the same invocation: a
 * unit's slice cannot change while it runs, and a restart is a new invocation. The directory is not
 * checked here: the read that follows finds it gone (sample() then asks systemd).
 * Return: >0 located, 0 ask systemd, <0 error. */
static int locate_remembered(detector *d, unit_scan *u, stuck_cgroup_path *ret) {
        int r;

        if (!u->invocation_id || !u->rec.invocation_id || !u->rec.control_group ||
            strcmp(u->invocation_id, u->rec.invocation_id) != 0)
                return 0;
        r = stuck_cgroup_name_in(d->root, u->rec.control_group, ret);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;
        u->control_group = strdup(u->rec.control_group);
        return u->control_group ? 1 : -ENOMEM;
}

/* Where systemd says @u's cgroup lives. Return: >0 located, 0 the unit runs nothing, <0 error. */
static int locate_by_bus(detector *d, unit_scan *u, stuck_cgroup_path *ret) {
        int r;

        free(u->control_group);
        u->control_group = NULL;
        r = stuck_unit_control_group(d->bus, u->path, &u->control_group);
        if (r < 0)
                return r;
        if (!u->control_group[0])
                return 0;
        r = stuck_cgroup_name_in(d->root, u->control_group, ret);
        return r < 0 ? r : 1;
}

/* Where @u's cgroup lives. Return: >0 located (*ret_remembered: from the last run), 0 the unit runs
 * nothing, <0 error. */
static int locate(detector *d, unit_scan *u, stuck_cgroup_path *ret, bool *ret_remembered) {
        int r;

        if (!d->root)
                return d->root_error;
        /* First the invocation, then the path: a restart in between pairs the old path with the old
         * invocation, which the next run does not trust. */
        if (stuck_unit_invocation_id_at(d->units_run_fd, u->unit, &u->invocation_id) < 0)
                u->invocation_id = NULL;
        r = locate_remembered(d, u, ret);
        *ret_remembered = r > 0;
        if (r != 0)
                return r;
        return locate_by_bus(d, u, ret);
}

/* This run's sample of @u, against the last one. Return: >0 sampled, 0 the unit runs nothing (its record
 * is dropped), <0 error. */
static int sample(detector *d, unit_scan *u) {
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path cg = {};
        const stuck_unit_sample *prev;
        unsigned flags = 0;
        bool remembered;
        int r;

        r = stuck_store_get(d->store, u->unit, &u->rec);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                u->rec = (stuck_record) {}; /* none, or unusable: this sample is the new baseline */
        prev = u->rec.have_sample ? &u->rec.sample : NULL;

        r = locate(d, u, &cg, &remembered);
        if (r <= 0)
                return r;

        /* Evidence a class is waiting for lives in the processes: read them whatever the counters say. */
        if (stuck_track_wants_procs(&u->rec.track))
                flags |= STUCK_SCAN_FULL;
        /* Without pids.current the core cannot tell that zombies exist: count them where it reads processes. */
        if (u->rec.track.zombies.incident[0] || (prev && !prev->cgroup.tasks_known))
                flags |= STUCK_SCAN_ZOMBIES;
        r = stuck_scan_unit(&cg, prev, flags, &u->now);
        if (r == -ENOENT && remembered) {
                /* The remembered directory is gone although the invocation is the same: systemd knows. */
                stuck_cgroup_path_done(&cg);
                r = locate_by_bus(d, u, &cg);
                if (r <= 0)
                        return r;
                r = stuck_scan_unit(&cg, prev, flags, &u->now);
        }
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (u->now.descended)
                d->stats.n_descended++;
        return 1;
}

static void observe(detector *d, unit_scan *u) {
        const stuck_unit_sample *prev = u->rec.have_sample ? &u->rec.sample : NULL;

        if (d->cfg.stuck) {
                u->hb_spec_error = stuck_heartbeat_for(&d->cfg, u->unit, &u->hb_spec);
                if (u->hb_spec_error < 0)
                        u->hb_spec = (stuck_heartbeat_spec) {};
        }
        stuck_heartbeat_read(d->bus, u->path, &u->hb_spec, &u->hb);
        u->obs = (stuck_observation) {
                .now_usec = u->now.monotonic_usec,
                .prev_usec = prev ? prev->monotonic_usec : 0,
                .progress = stuck_progress_between(prev, &u->now),
                .heartbeat_stale = stuck_heartbeat_stale(&u->hb, d->cfg.heartbeat_stale_s),
                .psi_stall = stuck_psi_stalled(&u->now.cgroup, d->cfg.psi_stall_percent, NULL),
                .psi_skipped = u->now.cgroup.pressure_skipped,
                .prev_partial = prev && prev->cgroup.pressure_skipped,
        };
}

static int scan_unit(detector *d, const char *unit, const char *path, bool enrolled) {
        _cleanup_(unit_scan_done) unit_scan u = { .unit = unit, .path = path };
        int r;

        r = sample(d, &u);
        if (r <= 0) {
                if (r == 0)
                        return stuck_store_drop(d->store, unit);
                return r;
        }
        d->stats.n_units++;
        observe(d, &u);

        if (stuck_class_targets(d->cfg.stuck, unit, enrolled)) {
                r = class_stuck(d, &u);
                if (r < 0)
                        return r;
        }
        if (stuck_class_targets(d->cfg.d_state, unit, enrolled)) {
                r = class_d_state(d, &u);
                if (r < 0)
                        return r;
        }
        if (stuck_class_targets(d->cfg.zombies, unit, enrolled)) {
                r = class_zombies(d, &u);
                if (r < 0)
                        return r;
        }
        return stuck_store_put(d->store, unit, u.acted ? NULL : &u.now, &u.rec.track, u.control_group,
                               u.invocation_id);
}

static int setup(detector *d) {
        int r;

        r = heal_bus_open(&d->bus);
        if (r < 0)
                return r;
        r = stuck_store_open(&d->store);
        if (r < 0)
                return r;
        /* A layout heal cannot read fails the units that need it, as each comes up. */
        d->root_error = stuck_cgroup_root_new(&d->root);
        if (d->root_error == -ENOMEM)
                return d->root_error;
        /* Without it every unit's control group comes from the bus. */
        d->units_run_fd = open(STUCK_UNITS_RUN_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = heal_policy_load(NULL, &d->policy, &d->policy_error);
        if (r < 0) {
                d->policy = NULL;
                if (!d->policy_error && asprintf(&d->policy_error, "cannot load the policy: %s", strerror(-r)) < 0) {
                        d->policy_error = NULL;
                        return -ENOMEM;
                }
        }
        stuck_config_from_policy(d->policy, &d->cfg);
        return 0;
}

/* Fail closed: without a policy nothing is scanned, and a human hears of it. */
static void escalate_policy(detector *d) {
        heal_incident inc = {
                .healer = STUCK_HEALER,
                .class = STUCK_CLASS,
                .target = STUCK_HELPER_UNIT,
                .owner = "human",
        };

        (void) heal_escalate(NULL, &inc, d->policy_error ?: "the policy could not be loaded", NULL);
}

static bool in(char *const *l, const char *s) {
        for (char *const *i = l; i && *i; i++)
                if (strcmp(*i, s) == 0)
                        return true;
        return false;
}

int run(stuck_run_stats *ret_stats) {
        static char *const states[] = { (char *) "active", (char *) "reloading", NULL };
        _cleanup_(detector_done) detector d = { .units_run_fd = -EBADF };
        _cleanup_strv_free_ char **enrolled = NULL, **patterns = NULL, **names = NULL, **paths = NULL;
        int r;

        r = setup(&d);
        if (r < 0)
                return r;
        (void) sd_notify(false, "READY=1\nSTATUS=scanning");
        if (!d.policy) {
                escalate_policy(&d);
                *ret_stats = d.stats;
                return 0;
        }

        if (heal_enrolled_list(&enrolled) < 0)
                enrolled = NULL; /* unreadable drop-in dirs: the globs still apply */
        r = stuck_target_patterns(&d.cfg, enrolled, &patterns);
        if (r < 0)
                return r;
        if (r == 0)
                names = calloc(1, sizeof(char *)); /* no class targets anything: prune everything below */
        else {
                r = heal_units_list(d.bus, states, patterns, &names, &paths);
                if (r < 0)
                        return r;
        }
        if (!names)
                return -ENOMEM;

        for (size_t i = 0; names[i]; i++) {
                bool e = in(enrolled, names[i]);

                stuck_watchdog_ping();
                if (!stuck_unit_targeted(&d.cfg, names[i], e))
                        continue;
                r = scan_unit(&d, names[i], paths[i], e);
                if (r == -ENOMEM || r == -EOPNOTSUPP)
                        return r;
                if (r < 0) {
                        /* One unit's trouble (it stopped between the listing and the read, ...) does not
                         * stop the scan of the others; main reports it. */
                        d.stats.n_errors++;
                        if (d.stats.first_error == 0)
                                d.stats.first_error = r;
                }
        }
        r = stuck_store_commit(d.store, names);
        if (r < 0)
                return r;
        /* The textfile is rendered from the state dir every run (so it follows changes made without
         * a guard, like healctl's), wherever node-exporter has its dir. */
        if ((d.state || access(heal_path_metrics_dir(), F_OK) >= 0) && guard_state(&d) >= 0)
                (void) heal_metrics_write(d.state, NULL);
        if (d.state_error < 0)
                return d.state_error;
        (void) sd_notify(false, "STATUS=idle");
        *ret_stats = d.stats;
        return 0;
}
