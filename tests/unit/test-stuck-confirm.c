/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The detector's confirmation rules on hand-built samples: two signals over the dwell time across samples,
 * idle and slow-disk workers never confirmed, dismissals, D-state and zombie episodes, and the persisted
 * track surviving a JSON round trip. No /proc, no D-Bus. */
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "confirm.h"
#include "test-util.h"

#define S 1000000ULL

static stuck_unit_sample cg(uint64_t mono_s, uint64_t cpu, uint64_t io) {
        return (stuck_unit_sample) {
                .monotonic_usec = mono_s * S,
                .cgroup = { .cpu_known = true, .cpu_usage_usec = cpu, .io_known = true, .io_bytes = io },
        };
}

static stuck_observation obs(const stuck_unit_sample *prev, const stuck_unit_sample *now, int stale, int stall) {
        return (stuck_observation) {
                .now_usec = now->monotonic_usec,
                .prev_usec = prev ? prev->monotonic_usec : 0,
                .progress = stuck_progress_between(prev, now),
                .heartbeat_stale = stale,
                .psi_stall = stall,
        };
}

static void test_progress(void) {
        stuck_unit_sample a = cg(10, 500, 100), b = cg(20, 500, 100), c = cg(30, 900, 100), d = cg(40, 900, 4096);
        stuck_unit_sample unknown = cg(50, 0, 0);
        stuck_proc_sample p1 = { .pid = 7, .start_ticks = 70, .cpu_usec = 10 }, p2 = p1, p3 = { .pid = 8, .start_ticks = 80 };

        ASSERT_EQ(stuck_progress_between(NULL, &a), STUCK_PROGRESS_UNKNOWN);
        ASSERT_EQ(stuck_progress_between(&a, &b), STUCK_PROGRESS_NONE);
        ASSERT_EQ(stuck_progress_between(&b, &c), STUCK_PROGRESS_YES);
        ASSERT_EQ(stuck_progress_between(&c, &d), STUCK_PROGRESS_YES); /* io alone is progress */
        /* A counter that went back (the unit restarted) is no comparison. */
        ASSERT_EQ(stuck_progress_between(&d, &a), STUCK_PROGRESS_UNKNOWN);

        /* Cpu unknown in the cgroup: the processes decide. */
        unknown.cgroup.cpu_known = false;
        unknown.cgroup.io_known = false;
        stuck_unit_sample u1 = unknown, u2 = unknown;
        ASSERT_EQ(stuck_progress_between(&u1, &u2), STUCK_PROGRESS_UNKNOWN); /* neither descended */
        u1.descended = u2.descended = STUCK_DESCEND_UNKNOWN;
        u1.procs = &p1;
        u1.n_procs = 1;
        u2.procs = &p2;
        u2.n_procs = 1;
        ASSERT_EQ(stuck_progress_between(&u1, &u2), STUCK_PROGRESS_NONE);
        p2.cpu_usec = 11;
        ASSERT_EQ(stuck_progress_between(&u1, &u2), STUCK_PROGRESS_YES);
        p2.cpu_usec = 10;
        u2.procs = &p3; /* a process that was not there before: something forked */
        ASSERT_EQ(stuck_progress_between(&u1, &u2), STUCK_PROGRESS_YES);
}

/* No progress + stale heartbeat across samples for the dwell: detected, then confirmed, then ongoing. */
static void test_stuck_confirmed(void) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        stuck_unit_sample s1 = cg(100, 500, 0), s2 = cg(101, 500, 0), s3 = cg(103, 500, 0), s4 = cg(104, 500, 0);
        stuck_observation o;
        char id[33];
        const char *why = NULL;

        /* First run: no previous sample, so no progress can be measured; the stale heartbeat is noted. */
        o = obs(NULL, &s1, 1, 0);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 2 * S, &why), STUCK_VERDICT_NONE);
        ASSERT_EQ(t.stale_since, 100 * S);
        ASSERT_TRUE(!t.stuck.incident[0]);

        /* One second on: flat since s1 and stale since s1, but the dwell (2 s) is not over: detected. */
        o = obs(&s1, &s2, 1, 0);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 2 * S, &why), STUCK_VERDICT_DETECTED);
        ASSERT_EQ(t.flat_since, 100 * S);
        ASSERT_EQ(strlen(t.stuck.incident), 32);
        memcpy(id, t.stuck.incident, sizeof(id));

        /* Both signals have now lasted 3 s >= 2 s: confirmed, same incident. */
        o = obs(&s2, &s3, 1, 0);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 2 * S, &why), STUCK_VERDICT_CONFIRMED);
        ASSERT_STREQ(t.stuck.incident, id);
        ASSERT_TRUE(t.stuck.confirmed);

        /* Still stuck on the next run: ongoing (the guard's idempotency decides), still the same incident. */
        o = obs(&s3, &s4, 1, 0);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 2 * S, &why), STUCK_VERDICT_ONGOING);
        ASSERT_STREQ(t.stuck.incident, id);
}

/* When both signals already lasted the dwell across earlier samples, the episode is confirmed as it begins. */
static void test_stuck_confirmed_at_once(void) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        stuck_unit_sample s1 = cg(100, 500, 0), s2 = cg(103, 500, 0);
        stuck_observation o;

        o = obs(NULL, &s1, 1, -1);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 2 * S, NULL), STUCK_VERDICT_NONE);
        o = obs(&s1, &s2, 1, -1);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 2 * S, NULL), STUCK_VERDICT_CONFIRMED);
        ASSERT_EQ(t.stuck.n_samples, 1);

        /* But never on a single sample, even with no dwell at all: the stale signal must predate it. */
        _cleanup_(stuck_track_done) stuck_track t2 = {};
        stuck_unit_sample r1 = cg(100, 500, 0), r2 = cg(101, 500, 0);
        o = obs(&r1, &r2, 1, -1);
        ASSERT_EQ(stuck_confirm_stuck(&t2, &o, 0, NULL), STUCK_VERDICT_DETECTED);
}

/* Flat cpu alone is an idle worker; a stale heartbeat with progress is a slow disk: neither is tracked. */
static void test_stuck_single_signals(void) {
        _cleanup_(stuck_track_done) stuck_track idle = {}, slow = {}, unknown_hb = {};
        stuck_unit_sample a = cg(100, 500, 0), b = cg(200, 500, 0), c = cg(300, 500, 0);
        stuck_unit_sample busy1 = cg(100, 500, 0), busy2 = cg(200, 90000, 0), busy3 = cg(300, 190000, 0);
        stuck_observation o;

        for (int i = 0; i < 2; i++) {
                o = i == 0 ? obs(&a, &b, 0, 0) : obs(&b, &c, 0, 0);
                ASSERT_EQ(stuck_confirm_stuck(&idle, &o, 0, NULL), STUCK_VERDICT_NONE);
                o = i == 0 ? obs(&a, &b, -1, -1) : obs(&b, &c, -1, -1); /* no heartbeat configured, no PSI */
                ASSERT_EQ(stuck_confirm_stuck(&unknown_hb, &o, 0, NULL), STUCK_VERDICT_NONE);
                o = i == 0 ? obs(&busy1, &busy2, 1, 0) : obs(&busy2, &busy3, 1, 0);
                ASSERT_EQ(stuck_confirm_stuck(&slow, &o, 0, NULL), STUCK_VERDICT_NONE);
        }
        ASSERT_TRUE(idle.flat_since > 0); /* flatness is followed... */
        ASSERT_TRUE(!idle.stuck.incident[0]); /* ...but is no episode by itself */
        ASSERT_TRUE(slow.stale_since > 0 && !slow.stuck.incident[0] && slow.flat_since == 0);
}

/* PSI stall stands in for the heartbeat. */
static void test_stuck_psi(void) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        stuck_unit_sample s1 = cg(100, 5, 0), s2 = cg(110, 5, 0), s3 = cg(130, 5, 0);
        stuck_observation o;

        o = obs(&s1, &s2, -1, 1);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 15 * S, NULL), STUCK_VERDICT_DETECTED);
        o = obs(&s2, &s3, -1, 1);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 15 * S, NULL), STUCK_VERDICT_CONFIRMED);
}

/* A sample that skipped PSI (the unit progressed) ends a stall: that it lasted through the sample is not
 * known, and a stall must be seen to last. */
static void test_stuck_psi_skipped(void) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        stuck_unit_sample s1 = cg(100, 5, 0), s2 = cg(110, 9, 0), s3 = cg(120, 9, 0), s4 = cg(130, 9, 0);
        stuck_observation o;

        o = obs(&s1, &s2, -1, 1); /* progressing, yet PSI read and stalled */
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 15 * S, NULL), STUCK_VERDICT_NONE);
        ASSERT_EQ(t.stall_since, 110 * S);
        o = obs(&s2, &s3, -1, -1);
        o.progress = STUCK_PROGRESS_YES;
        o.psi_skipped = true;
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 15 * S, NULL), STUCK_VERDICT_NONE);
        ASSERT_EQ(t.stall_since, 0);
        o = obs(&s3, &s4, -1, 1); /* read again and stalled: the stall dates from here */
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 15 * S, NULL), STUCK_VERDICT_DETECTED);
        ASSERT_EQ(t.stall_since, 130 * S);
}

/* After a sample that read cpu only (the unit progressed), flat cpu cannot say the io was flat too over
 * that interval: flat dates from the sample that read everything, so even a dwell shorter than the
 * interval needs one more sample to confirm. */
static void test_stuck_after_partial_sample(void) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        stuck_unit_sample s1 = cg(100, 5, 0), s2 = cg(130, 9, 0), s3 = cg(160, 9, 7), s4 = cg(190, 9, 7);
        stuck_observation o;

        s2.cgroup.pressure_skipped = true; /* cpu grew: io and PSI not read */
        s2.cgroup.io_known = false;
        o = obs(&s1, &s2, 1, -1);
        o.psi_skipped = true;
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 10 * S, NULL), STUCK_VERDICT_NONE);
        o = obs(&s2, &s3, 1, -1); /* cpu flat, io unknown before: flat from now, not from s2 */
        o.prev_partial = true;
        ASSERT_EQ(o.progress, STUCK_PROGRESS_NONE);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 10 * S, NULL), STUCK_VERDICT_DETECTED);
        ASSERT_EQ(t.flat_since, 160 * S);
        o = obs(&s3, &s4, 1, -1); /* flat by cpu and io over a whole interval: now it may confirm */
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 10 * S, NULL), STUCK_VERDICT_CONFIRMED);
}

/* A stale sample that recovers before the dwell ends: dismissed, with the reason. */
static void test_stuck_dismissed(void) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        stuck_unit_sample s1 = cg(100, 500, 0), s2 = cg(101, 500, 0), s3 = cg(102, 800, 0);
        stuck_observation o;
        const char *why = NULL;

        o = obs(&s1, &s2, 1, 0);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 30 * S, &why), STUCK_VERDICT_DETECTED);
        o = obs(&s2, &s3, 0, 0);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 30 * S, &why), STUCK_VERDICT_DISMISSED);
        ASSERT_TRUE(why && strstr(why, "progress"));
        ASSERT_TRUE(!t.stuck.incident[0]);
        ASSERT_EQ(t.stale_since, 0);

        /* Fresh heartbeat while still flat: dismissed for that reason. */
        stuck_unit_sample s4 = cg(103, 800, 0), s5 = cg(104, 800, 0);
        o = obs(&s3, &s4, 1, 0);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 30 * S, &why), STUCK_VERDICT_DETECTED);
        o = obs(&s4, &s5, 0, 0);
        ASSERT_EQ(stuck_confirm_stuck(&t, &o, 30 * S, &why), STUCK_VERDICT_DISMISSED);
        ASSERT_TRUE(strstr(why, "fresh"));

        /* After confirmation, clearing is "resolved", not a dismissal. */
        _cleanup_(stuck_track_done) stuck_track c = {};
        stuck_unit_sample r1 = cg(100, 1, 0), r2 = cg(110, 1, 0), r3 = cg(120, 1, 0), r4 = cg(130, 2, 0);
        o = obs(&r1, &r2, 1, 0);
        stuck_confirm_stuck(&c, &o, 5 * S, NULL);
        o = obs(&r2, &r3, 1, 0);
        ASSERT_EQ(stuck_confirm_stuck(&c, &o, 5 * S, NULL), STUCK_VERDICT_CONFIRMED);
        o = obs(&r3, &r4, 0, 0);
        ASSERT_EQ(stuck_confirm_stuck(&c, &o, 5 * S, NULL), STUCK_VERDICT_RESOLVED);
}

static stuck_unit_sample with_procs(uint64_t mono_s, stuck_proc_sample *procs, size_t n) {
        stuck_unit_sample s = cg(mono_s, 1, 0);

        s.descended = STUCK_DESCEND_FLAT;
        s.procs = procs;
        s.n_procs = n;
        return s;
}

static void test_d_state(void) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        stuck_proc_sample d = { .pid = 42, .start_ticks = 4200, .state = 'D', .n_d_threads = 1, .comm = (char *) "cat" };
        stuck_proc_sample other = { .pid = 43, .start_ticks = 4300, .state = 'S' };
        stuck_proc_sample procs[] = { other, d };
        stuck_unit_sample s1 = with_procs(100, procs, 2), s2 = with_procs(101, procs, 2), s3 = with_procs(110, procs, 2);
        stuck_unit_sample flat = cg(105, 1, 0); /* did not descend: nothing known */
        uint64_t d_usec = 0;

        /* One sample catches a task in D: not yet an episode (disk waits look the same). */
        ASSERT_EQ(stuck_confirm_d_state(&t, &s1, s1.monotonic_usec, 5 * S), STUCK_VERDICT_NONE);
        ASSERT_EQ(t.n_d_tasks, 1);
        ASSERT_TRUE(stuck_track_wants_procs(&t)); /* the next sample must read processes */
        /* The same task again: detected. */
        ASSERT_EQ(stuck_confirm_d_state(&t, &s2, s2.monotonic_usec, 5 * S), STUCK_VERDICT_DETECTED);
        /* A sample that did not read processes changes nothing. */
        ASSERT_EQ(stuck_confirm_d_state(&t, &flat, flat.monotonic_usec, 5 * S), STUCK_VERDICT_DWELLING);
        /* 10 s in D >= 5 s: confirmed, and the worst task is the one in D. */
        ASSERT_EQ(stuck_confirm_d_state(&t, &s3, s3.monotonic_usec, 5 * S), STUCK_VERDICT_CONFIRMED);
        ASSERT_EQ(stuck_d_worst(&t, &s3, s3.monotonic_usec, &d_usec)->pid, 42);
        ASSERT_EQ(d_usec, 10 * S);

        /* A new process with the same pid (another start time) is another task. */
        _cleanup_(stuck_track_done) stuck_track t2 = {};
        stuck_proc_sample d2 = d;
        d2.start_ticks = 9999;
        stuck_unit_sample a = with_procs(100, &d, 1), b = with_procs(101, &d2, 1);
        ASSERT_EQ(stuck_confirm_d_state(&t2, &a, a.monotonic_usec, 0), STUCK_VERDICT_NONE);
        ASSERT_EQ(stuck_confirm_d_state(&t2, &b, b.monotonic_usec, 0), STUCK_VERDICT_NONE);

        /* The kernel's own block time (schedstats) counts when longer than what we saw. */
        _cleanup_(stuck_track_done) stuck_track t3 = {};
        stuck_proc_sample k = d;
        k.d_usec_known = true;
        k.d_usec = 600 * S;
        stuck_unit_sample k1 = with_procs(100, &k, 1), k2 = with_procs(101, &k, 1);
        ASSERT_EQ(stuck_confirm_d_state(&t3, &k1, k1.monotonic_usec, 300 * S), STUCK_VERDICT_NONE);
        ASSERT_EQ(stuck_confirm_d_state(&t3, &k2, k2.monotonic_usec, 300 * S), STUCK_VERDICT_CONFIRMED);

        /* The task left D before the dwell: dismissed. */
        _cleanup_(stuck_track_done) stuck_track t4 = {};
        stuck_proc_sample woke = d;
        woke.n_d_threads = 0;
        woke.state = 'S';
        stuck_unit_sample w1 = with_procs(100, &d, 1), w2 = with_procs(101, &d, 1), w3 = with_procs(102, &woke, 1);
        stuck_confirm_d_state(&t4, &w1, w1.monotonic_usec, 60 * S);
        ASSERT_EQ(stuck_confirm_d_state(&t4, &w2, w2.monotonic_usec, 60 * S), STUCK_VERDICT_DETECTED);
        ASSERT_EQ(stuck_confirm_d_state(&t4, &w3, w3.monotonic_usec, 60 * S), STUCK_VERDICT_DISMISSED);
        ASSERT_EQ(t4.n_d_tasks, 0);
}

static void test_zombies(void) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        stuck_zombie_parent parent = { .pid = 10, .comm = (char *) "forker", .n_zombies = 60 };
        stuck_unit_sample s1 = with_procs(100, NULL, 0), s2, s3, unknown = with_procs(104, NULL, 0), few;

        s1.zombies_known = true;
        s1.zombie_parents = &parent;
        s1.n_zombie_parents = 1;
        s2 = s1;
        s2.monotonic_usec = 102 * S;
        s3 = s1;
        s3.monotonic_usec = 106 * S;
        few = s1;
        few.monotonic_usec = 107 * S;
        few.n_zombie_parents = 0;

        ASSERT_EQ(stuck_zombie_count(&s1), 60);
        ASSERT_EQ(stuck_zombie_count(&unknown), -1);
        ASSERT_EQ(stuck_confirm_zombies(&t, &s1, s1.monotonic_usec, 50, 5 * S), STUCK_VERDICT_DETECTED);
        ASSERT_EQ(stuck_confirm_zombies(&t, &s2, s2.monotonic_usec, 50, 5 * S), STUCK_VERDICT_DWELLING);
        ASSERT_EQ(stuck_confirm_zombies(&t, &unknown, unknown.monotonic_usec, 50, 5 * S), STUCK_VERDICT_DWELLING);
        ASSERT_EQ(stuck_confirm_zombies(&t, &s3, s3.monotonic_usec, 50, 5 * S), STUCK_VERDICT_CONFIRMED);
        ASSERT_EQ(stuck_confirm_zombies(&t, &few, few.monotonic_usec, 50, 5 * S), STUCK_VERDICT_RESOLVED);
        /* At the threshold is not past it. */
        parent.n_zombies = 50;
        ASSERT_EQ(stuck_confirm_zombies(&t, &s1, s1.monotonic_usec, 50, 0), STUCK_VERDICT_NONE);
}

static void test_track_json(void) {
        _cleanup_(stuck_track_done) stuck_track t = {}, back = {}, bad = {};
        _cleanup_json_ json_t *j = NULL, *j2 = NULL, *garbage = NULL;
        stuck_d_task tasks[] = { { .pid = 5, .start_ticks = 50, .since_usec = 7, .n_samples = 2 } };

        t.flat_since = 11;
        t.stale_since = 12;
        t.stall_since = 0;
        t.stuck = (stuck_episode) { .incident = "0123456789abcdef0123456789abcdef", .since_usec = 13, .n_samples = 3,
                                    .confirmed = true };
        t.d_tasks = malloc(sizeof(tasks));
        ASSERT_TRUE(t.d_tasks);
        memcpy(t.d_tasks, tasks, sizeof(tasks));
        t.n_d_tasks = 1;

        ASSERT_OK(stuck_track_to_json(&t, &j));
        ASSERT_OK(stuck_track_from_json(j, &back));
        ASSERT_EQ(back.flat_since, 11);
        ASSERT_EQ(back.stale_since, 12);
        ASSERT_STREQ(back.stuck.incident, t.stuck.incident);
        ASSERT_EQ(back.stuck.n_samples, 3);
        ASSERT_TRUE(back.stuck.confirmed);
        ASSERT_TRUE(!back.d_state.incident[0]);
        ASSERT_EQ(back.n_d_tasks, 1);
        ASSERT_EQ(back.d_tasks[0].pid, 5);
        ASSERT_EQ(back.d_tasks[0].start_ticks, 50);
        ASSERT_OK(stuck_track_to_json(&back, &j2));
        ASSERT_TRUE(json_equal(j, j2));

        /* Wrong shapes are refused, not half-read. */
        garbage = json_pack("{s:s}", "flat_since", "yesterday");
        ASSERT_EQ(stuck_track_from_json(garbage, &bad), -EBADMSG);
        json_decref(garbage);
        garbage = json_pack("{s:{s:s}}", "stuck", "incident", "../../etc");
        ASSERT_EQ(stuck_track_from_json(garbage, &bad), -EBADMSG);
        json_decref(garbage);
        garbage = json_pack("{s:[{s:i}]}", "d_tasks", "pid", -1);
        ASSERT_EQ(stuck_track_from_json(garbage, &bad), -EBADMSG);
        json_decref(garbage);
        garbage = json_array();
        ASSERT_EQ(stuck_track_from_json(garbage, &bad), -EBADMSG);
}

int main(void) {
        test_progress();
        test_stuck_confirmed();
        test_stuck_confirmed_at_once();
        test_stuck_single_signals();
        test_stuck_psi();
        test_stuck_psi_skipped();
        test_stuck_after_partial_sample();
        test_stuck_dismissed();
        test_d_state();
        test_zombies();
        test_track_json();
        return 0;
}
