/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The stuck detector's parsers on real-format kernel files (fixtures/stuck/) and their broken
 * variants, and the persisted sample's JSON: round trip, and bad input refused. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "scan.h"
#include "test-util.h"

static char *fixture(const char *name, size_t *ret_len) {
        const char *root = getenv("SOURCE_ROOT");
        _cleanup_free_ char *path = NULL;
        char *text = NULL;
        size_t cap = 0;

        ASSERT_TRUE(asprintf(&path, "%s/tests/unit/fixtures/stuck/%s", root ? root : ".", name) > 0);
        FILE *f = fopen(path, "re");
        ASSERT_TRUE(f);
        ssize_t n = getdelim(&text, &cap, 0, f);
        fclose(f);
        ASSERT_TRUE(n > 0);
        *ret_len = (size_t) n;
        return text;
}

static int parse_stat_str(const char *s, stuck_stat *ret) {
        return stuck_parse_stat(s, strlen(s), ret);
}

static void test_stat(void) {
        _cleanup_free_ char *t = NULL;
        size_t len;
        stuck_stat st;

        /* comm "a b) (c)": spaces and parentheses, the stat parsed from the last ')'. */
        t = fixture("stat-comm-parens", &len);
        ASSERT_OK(stuck_parse_stat(t, len, &st));
        ASSERT_STREQ(st.comm, "a b) (c)");
        ASSERT_EQ(st.state, 'S');
        ASSERT_EQ(st.ppid, 1);
        ASSERT_EQ(st.utime_ticks, 250);
        ASSERT_EQ(st.stime_ticks, 50);
        ASSERT_EQ(st.n_threads, 1);
        ASSERT_EQ(st.start_ticks, 98765);
        ASSERT_TRUE(!(st.flags & 0x00200000u));
        free(st.comm);

        free(t);
        t = fixture("stat-kthread", &len);
        ASSERT_OK(stuck_parse_stat(t, len, &st));
        ASSERT_STREQ(st.comm, "kthreadd");
        ASSERT_EQ(st.ppid, 0);
        ASSERT_TRUE(st.flags & 0x00200000u); /* PF_KTHREAD */
        free(st.comm);

        /* Empty comm, and a comm that is only ')' characters. */
        ASSERT_OK(parse_stat_str("7 () R 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 3 0 5\n", &st));
        ASSERT_STREQ(st.comm, "");
        ASSERT_EQ(st.n_threads, 3);
        free(st.comm);
        ASSERT_OK(parse_stat_str("7 ())) D 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5", &st));
        ASSERT_STREQ(st.comm, "))");
        ASSERT_EQ(st.state, 'D');
        free(st.comm);

        /* Broken: truncated, no ')', negative utime, no pid, trailing field cut mid-way, overflow. */
        ASSERT_EQ(parse_stat_str("7 (x) R 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20", &st), -EBADMSG);
        ASSERT_EQ(parse_stat_str("7 (x R 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5", &st), -EBADMSG);
        ASSERT_EQ(parse_stat_str("7 (x) R 1 1 1 0 -1 0 0 0 0 0 -1 2 0 0 20 0 1 0 5", &st), -EBADMSG);
        ASSERT_EQ(parse_stat_str("(x) R 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5", &st), -EBADMSG);
        ASSERT_EQ(parse_stat_str("7 (x) R 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 ", &st), -EBADMSG);
        ASSERT_EQ(parse_stat_str("7 (x) R 1 1 1 0 -1 0 0 0 0 0 99999999999999999999 2 0 0 20 0 1 0 5", &st),
                  -EBADMSG);
        ASSERT_EQ(parse_stat_str("", &st), -EBADMSG);
}

static void test_pressure(void) {
        _cleanup_free_ char *t = NULL;
        size_t len;
        stuck_psi psi;

        t = fixture("pressure-cpu", &len);
        ASSERT_OK(stuck_parse_pressure(t, len, &psi));
        ASSERT_TRUE(psi.known);
        ASSERT_EQ(psi.some_avg10, 5624);
        ASSERT_EQ(psi.some_avg60, 6666);
        ASSERT_EQ(psi.some_avg300, 4996);
        ASSERT_EQ(psi.some_total_usec, 288209571);

        const char *full_only = "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        ASSERT_EQ(stuck_parse_pressure(full_only, strlen(full_only), &psi), -EBADMSG);
        const char *cut = "some avg10=1.00 avg60=";
        ASSERT_EQ(stuck_parse_pressure(cut, strlen(cut), &psi), -EBADMSG);
        const char *over = "some avg10=101.00 avg60=0.00 avg300=0.00 total=0\n";
        ASSERT_EQ(stuck_parse_pressure(over, strlen(over), &psi), -EBADMSG);
        ASSERT_EQ(stuck_parse_pressure("", 0, &psi), -EBADMSG);
}

static void test_io_cpu_sched(void) {
        _cleanup_free_ char *io = NULL, *cpu = NULL, *nousage = NULL, *sched = NULL, *pio = NULL;
        size_t len;
        uint64_t v;

        io = fixture("io.stat", &len);
        ASSERT_OK(stuck_parse_io_stat(io, len, &v));
        ASSERT_EQ(v, 1459200ull + 314773504ull + 1000 + 24);
        ASSERT_OK(stuck_parse_io_stat("", 0, &v));
        ASSERT_EQ(v, 0);
        const char *bad = "8:0 rbytes=12x wbytes=1\n";
        ASSERT_EQ(stuck_parse_io_stat(bad, strlen(bad), &v), -EBADMSG);
        const char *wrap = "8:0 rbytes=18446744073709551615 wbytes=1\n";
        ASSERT_EQ(stuck_parse_io_stat(wrap, strlen(wrap), &v), -EBADMSG);

        cpu = fixture("cpu.stat-v2", &len);
        ASSERT_OK(stuck_parse_cpu_stat(cpu, len, &v));
        ASSERT_EQ(v, 943800000);
        nousage = fixture("cpu.stat-no-usage", &len);
        ASSERT_EQ(stuck_parse_cpu_stat(nousage, len, &v), -ENODATA);

        pio = fixture("proc-io", &len);
        ASSERT_OK(stuck_parse_proc_io(pio, len, &v));
        ASSERT_EQ(v, 7076);
        ASSERT_EQ(stuck_parse_proc_io("rchar: 1\n", 9, &v), -EBADMSG);

        /* Schedstats: block_start found under any prefix; the summary's "sum_block_runtime" is not it. */
        sched = fixture("sched-schedstats", &len);
        ASSERT_OK(stuck_parse_sched_ns(sched, len, "block_start", &v));
        ASSERT_EQ(v, 1200000ull * 1000000ull);
        ASSERT_OK(stuck_parse_sched_ns(sched, len, "exec_start", &v));
        ASSERT_EQ(v, 1218573656978ull);
        const char *old = "se.statistics.block_start   :   12.000001\n";
        ASSERT_OK(stuck_parse_sched_ns(old, strlen(old), "block_start", &v));
        ASSERT_EQ(v, 12000001);
        const char *none = "se.exec_start   :   12.000001\nse.vruntime : 1.000000\n";
        ASSERT_EQ(stuck_parse_sched_ns(none, strlen(none), "block_start", &v), -ENODATA);
}

/* A descended sample with every kind of fact: a D process, a zombie parent, unknowns. */
static void make_sample(stuck_unit_sample *s) {
        *s = (stuck_unit_sample) {
                .monotonic_usec = 123456789,
                .cgroup = {
                        .cpu_known = true, .cpu_usage_usec = 5000,
                        .io_known = false,
                        .psi = { [STUCK_PSI_CPU] = { .known = true, .some_avg60 = 1234, .some_total_usec = 99 } },
                        .tasks_known = true, .n_tasks = 7,
                },
                .descended = STUCK_DESCEND_FLAT,
                .n_vanished = 1,
                .zombies_known = true,
        };
        s->procs = calloc(2, sizeof(stuck_proc_sample));
        ASSERT_TRUE(s->procs);
        s->procs[0] = (stuck_proc_sample) {
                .pid = 10, .ppid = 1, .comm = strdup("a b) (c"), .state = 'D', .n_threads = 2,
                .start_ticks = 500, .cpu_usec = 1000, .io_known = true, .io_bytes = 42, .n_d_threads = 1,
                .wchan = strdup("fuse_wait_answer"), .stack = strdup("[<0>] fuse_wait_answer+0x1\n"),
                .d_usec_known = true, .d_usec = 77, .children_known = true,
        };
        s->procs[1] = (stuck_proc_sample) {
                .pid = 11, .ppid = 10, .comm = strdup("reaper"), .state = 'S', .n_threads = 1,
                .start_ticks = 501, .cpu_usec = 3, .children_known = true, .n_zombie_children = 4,
        };
        s->n_procs = 2;
}

static void test_json_round_trip(void) {
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {}, back = {};
        _cleanup_json_ json_t *j = NULL, *j2 = NULL;

        make_sample(&s);
        ASSERT_OK(stuck_unit_sample_to_json(&s, &j));
        ASSERT_TRUE(json_is_null(json_object_get(json_object_get(j, "cgroup"), "io_bytes")));
        ASSERT_OK(stuck_unit_sample_from_json(j, &back));

        ASSERT_EQ(back.monotonic_usec, 123456789);
        ASSERT_TRUE(back.cgroup.cpu_known);
        ASSERT_EQ(back.cgroup.cpu_usage_usec, 5000);
        ASSERT_TRUE(!back.cgroup.io_known);
        ASSERT_TRUE(back.cgroup.psi[STUCK_PSI_CPU].known);
        ASSERT_EQ(back.cgroup.psi[STUCK_PSI_CPU].some_avg60, 1234);
        ASSERT_TRUE(!back.cgroup.psi[STUCK_PSI_IO].known);
        ASSERT_EQ(back.cgroup.n_tasks, 7);
        ASSERT_EQ(back.descended, STUCK_DESCEND_FLAT);
        ASSERT_EQ(back.n_vanished, 1);
        ASSERT_EQ(back.n_procs, 2);
        ASSERT_STREQ(back.procs[0].comm, "a b) (c");
        ASSERT_EQ(back.procs[0].state, 'D');
        ASSERT_STREQ(back.procs[0].wchan, "fuse_wait_answer");
        ASSERT_STREQ(back.procs[0].stack, "[<0>] fuse_wait_answer+0x1\n");
        ASSERT_TRUE(back.procs[0].d_usec_known);
        ASSERT_EQ(back.procs[0].d_usec, 77);
        ASSERT_TRUE(back.procs[0].io_known);
        ASSERT_TRUE(!back.procs[1].io_known);
        ASSERT_TRUE(!back.procs[1].d_usec_known);
        ASSERT_TRUE(back.procs[1].wchan == NULL);
        /* Totals are derived from the processes on load. */
        ASSERT_EQ(back.procs_cpu_usec, 1003);
        ASSERT_EQ(back.n_d_tasks, 1);
        ASSERT_EQ(back.n_zombie_parents, 1);
        ASSERT_EQ(back.zombie_parents[0].pid, 11);
        ASSERT_STREQ(back.zombie_parents[0].comm, "reaper");
        ASSERT_EQ(back.zombie_parents[0].n_zombies, 4);
        ASSERT_TRUE(stuck_proc_find(&back, 11, 501) == &back.procs[1]);
        ASSERT_TRUE(stuck_proc_find(&back, 11, 999) == NULL);

        /* And the second trip gives the same JSON. */
        ASSERT_OK(stuck_unit_sample_to_json(&back, &j2));
        ASSERT_TRUE(json_equal(j, j2));
}

/* Each mutation of a good sample must be refused, not crash, not be half-accepted. */
static void test_json_bad(void) {
        static const char *const bad[] = {
                "null", "[]", "{}", "{\"version\": 2}",
                "{\"version\":1,\"monotonic_usec\":-1,\"descended\":0,\"cgroup\":{}}",
        };
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};
        _cleanup_json_ json_t *good = NULL;
        stuck_unit_sample out;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_json_ json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
                ASSERT_TRUE(j);
                ASSERT_EQ(stuck_unit_sample_from_json(j, &out), -EBADMSG);
        }

        make_sample(&s);
        ASSERT_OK(stuck_unit_sample_to_json(&s, &good));
        struct {
                const char *path[3];
                json_t *value;
        } muts[] = {
                { { "cgroup", "cpu_usage_usec" }, json_string("5") },
                { { "cgroup", "tasks" }, json_integer(-3) },
                { { "cgroup", "psi" }, json_null() },
                { { "descended" }, json_true() },
                { { "procs" }, json_object() },
                { { "vanished" }, json_null() },
                { { "procs", "0", "state" }, json_string("DD") },
                { { "procs", "0", "pid" }, json_integer(0) },
                { { "procs", "0", "pid" }, json_integer(1ll << 40) },
                { { "procs", "0", "comm" }, json_integer(1) },
                { { "procs", "0", "d_threads" }, json_integer(5) }, /* more than its threads */
                { { "procs", "1", "zombies" }, json_real(1.5) },
        };
        for (size_t i = 0; i < ELEMENTSOF(muts); i++) {
                _cleanup_json_ json_t *j = json_deep_copy(good);
                json_t *parent = j;
                size_t depth = 0;
                while (depth + 1 < 3 && muts[i].path[depth + 1]) {
                        const char *k = muts[i].path[depth];
                        parent = json_is_array(parent) ? json_array_get(parent, strtoul(k, NULL, 10))
                                                       : json_object_get(parent, k);
                        ASSERT_TRUE(parent);
                        depth++;
                }
                const char *k = muts[i].path[depth];
                if (json_is_array(parent))
                        ASSERT_OK(json_array_set_new(parent, strtoul(k, NULL, 10), muts[i].value));
                else
                        ASSERT_OK(json_object_set_new(parent, k, muts[i].value));
                if (stuck_unit_sample_from_json(j, &out) != -EBADMSG) {
                        fprintf(stderr, "mutation %zu accepted\n", i);
                        abort();
                }
        }
        /* A missing key is as bad as a wrong one. */
        _cleanup_json_ json_t *j = json_deep_copy(good);
        json_object_del(json_object_get(j, "cgroup"), "io_bytes");
        ASSERT_EQ(stuck_unit_sample_from_json(j, &out), -EBADMSG);
}

int main(void) {
        test_stat();
        test_pressure();
        test_io_cpu_sched();
        test_json_round_trip();
        test_json_bad();
        printf("ok\n");
        return 0;
}
