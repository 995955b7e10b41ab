/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The stuck detector's scan on fixture cgroup and /proc trees built in a temp dir: layout detection,
 * counters with unknowns kept unknown, processes that vanish or hide, D state, zombies, and the rule
 * that a unit whose counters progress costs no /proc read at all. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "scan.h"
#include "test-util.h"

static char *root;

/* Write @fmt under root/@path, creating parent dirs. */
_printf_(2, 3) static void put(const char *path, const char *fmt, ...) {
        _cleanup_free_ char *full = NULL, *text = NULL;
        va_list ap;

        ASSERT_TRUE(asprintf(&full, "%s/%s", root, path) > 0);
        for (char *s = full + strlen(root) + 1; (s = strchr(s, '/')); s++) {
                *s = 0;
                ASSERT_TRUE(mkdir(full, 0755) == 0 || errno == EEXIST);
                *s = '/';
        }
        va_start(ap, fmt);
        ASSERT_TRUE(vasprintf(&text, fmt, ap) >= 0);
        va_end(ap);
        FILE *f = fopen(full, "we");
        ASSERT_TRUE(f);
        fputs(text, f);
        ASSERT_EQ(fclose(f), 0);
}

static void mkdirs(const char *path) {
        put(path, "%s", ""); /* creates the parents; the placeholder file makes way for the dir */
        _cleanup_free_ char *full = NULL;
        ASSERT_TRUE(asprintf(&full, "%s/%s", root, path) > 0);
        ASSERT_OK(unlink(full));
        ASSERT_OK(mkdir(full, 0755));
}

/* A /proc/PID/stat line (comm as given, CLK_TCK units for utime/stime). */
static void put_stat(const char *dir, int pid, const char *comm, char state, int ppid, unsigned long utime,
                     long threads) {
        char path[128];
        snprintf(path, sizeof path, "proc/%s/stat", dir);
        put(path, "%d (%s) %c %d %d %d 0 -1 4194560 10 0 0 0 %lu 0 0 0 20 0 %ld 0 %d 1000 10 18446744073709551615 0 0 0\n",
            pid, comm, state, ppid, pid, pid, utime, threads, 1000 + pid);
}

static void set_env(void) {
        _cleanup_free_ char *proc = NULL, *cg = NULL;
        ASSERT_TRUE(asprintf(&proc, "%s/proc", root) > 0);
        ASSERT_TRUE(asprintf(&cg, "%s/cg", root) > 0);
        ASSERT_OK(setenv("HEAL_PROC_DIR", proc, 1));
        ASSERT_OK(setenv("HEAL_CGROUP_DIR", cg, 1));
}

static void fresh_root(void) {
        if (root) {
                test_rm_rf(root);
                free(root);
        }
        root = test_tmpdir();
        set_env();
        mkdirs("proc");
        put("proc/self/sched", "se.exec_start : 5000.000000\n");
}

static void test_layout(void) {
        stuck_layout l;
        stuck_cgroup_path p = {};

        fresh_root();
        mkdirs("cg");
        ASSERT_EQ(stuck_cgroup_layout(&l), -EOPNOTSUPP);

        /* Hybrid: v2 under unified/, cpuacct co-mounted with cpu. */
        put("cg/unified/cgroup.controllers", "\n");
        mkdirs("cg/unified/system.slice/foo.service");
        mkdirs("cg/cpu,cpuacct");
        ASSERT_OK(stuck_cgroup_layout(&l));
        ASSERT_EQ(l, STUCK_LAYOUT_HYBRID);
        ASSERT_OK(stuck_cgroup_locate("/system.slice/foo.service", &p));
        ASSERT_EQ(p.layout, STUCK_LAYOUT_HYBRID);
        ASSERT_TRUE(strstr(p.dir, "/cg/unified/system.slice/foo.service"));
        ASSERT_TRUE(strstr(p.v1_cpuacct, "/cg/cpu,cpuacct/system.slice/foo.service"));
        ASSERT_TRUE(strstr(p.v1_pids, "/cg/pids/system.slice/foo.service"));
        stuck_cgroup_path_done(&p);
        ASSERT_EQ(stuck_cgroup_locate("/system.slice/gone.service", &p), -ENOENT);

        /* Pure v2 wins when the root itself is v2. */
        put("cg/cgroup.controllers", "cpu io memory pids\n");
        mkdirs("cg/system.slice/foo.service");
        ASSERT_OK(stuck_cgroup_layout(&l));
        ASSERT_EQ(l, STUCK_LAYOUT_V2);
        ASSERT_OK(stuck_cgroup_locate("/system.slice/foo.service", &p));
        ASSERT_TRUE(strstr(p.dir, "/cg/system.slice/foo.service") && !strstr(p.dir, "unified"));
        ASSERT_TRUE(p.v1_cpuacct == NULL && p.v1_pids == NULL);
        stuck_cgroup_path_done(&p);
        ASSERT_OK(stuck_cgroup_locate("/", &p));
        stuck_cgroup_path_done(&p);

        ASSERT_EQ(stuck_cgroup_locate("system.slice/foo.service", &p), -EINVAL);
        ASSERT_EQ(stuck_cgroup_locate("/system.slice/../../etc", &p), -EINVAL);
        ASSERT_EQ(stuck_cgroup_locate("/./x", &p), -EINVAL);
        ASSERT_EQ(stuck_cgroup_locate(NULL, &p), -EINVAL);
}

static void test_counters_v2(void) {
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path p = {};
        stuck_cgroup_sample s;

        fresh_root();
        put("cg/cgroup.controllers", "cpu io memory pids\n");
        put("cg/a.service/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
        put("cg/a.service/io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=1\n8:16 rbytes=100 wbytes=0 rios=1 wios=0\n");
        put("cg/a.service/cpu.pressure", "some avg10=0.00 avg60=12.50 avg300=1.00 total=777\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        put("cg/a.service/io.pressure", "garbage\n");
        put("cg/a.service/pids.current", "3\n");
        ASSERT_OK(stuck_cgroup_locate("/a.service", &p));
        ASSERT_OK(stuck_cgroup_read(&p, &s));
        ASSERT_TRUE(s.cpu_known && !s.cpu_from_v1);
        ASSERT_EQ(s.cpu_usage_usec, 1500);
        ASSERT_TRUE(s.io_known);
        ASSERT_EQ(s.io_bytes, 130);
        ASSERT_TRUE(s.psi[STUCK_PSI_CPU].known);
        ASSERT_EQ(s.psi[STUCK_PSI_CPU].some_avg60, 1250);
        ASSERT_EQ(s.psi[STUCK_PSI_CPU].some_total_usec, 777);
        /* Absent memory.pressure and garbled io.pressure: unknown, not zero. */
        ASSERT_TRUE(!s.psi[STUCK_PSI_MEMORY].known);
        ASSERT_TRUE(!s.psi[STUCK_PSI_IO].known);
        ASSERT_TRUE(s.tasks_known);
        ASSERT_EQ(s.n_tasks, 3);

        /* No io.stat (the io controller is not enabled) and "max"-style garbage in pids.current. */
        put("cg/a.service/pids.current", "max\n");
        char path[512];
        snprintf(path, sizeof path, "%s/cg/a.service/io.stat", root);
        ASSERT_OK(unlink(path));
        ASSERT_OK(stuck_cgroup_read(&p, &s));
        ASSERT_TRUE(!s.io_known && s.io_bytes == 0);
        ASSERT_TRUE(!s.tasks_known);

        /* cpu.stat without usage_usec on pure v2 has no fallback: unknown. */
        put("cg/a.service/cpu.stat", "nr_periods 0\n");
        ASSERT_OK(stuck_cgroup_read(&p, &s));
        ASSERT_TRUE(!s.cpu_known);

        /* The unit stopped: its directory is gone. */
        snprintf(path, sizeof path, "%s/cg/a.service", root);
        test_rm_rf(path);
        ASSERT_EQ(stuck_cgroup_read(&p, &s), -ENOENT);
}

static void test_counters_hybrid(void) {
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path p = {};
        stuck_cgroup_sample s;

        fresh_root();
        put("cg/unified/cgroup.controllers", "\n");
        put("cg/unified/system.slice/b.service/cpu.stat", "nr_periods 0\n");
        put("cg/cpuacct/system.slice/b.service/cpuacct.usage", "2500000\n");
        put("cg/pids/system.slice/b.service/pids.current", "9\n");
        ASSERT_OK(stuck_cgroup_locate("/system.slice/b.service", &p));
        ASSERT_OK(stuck_cgroup_read(&p, &s));
        ASSERT_TRUE(s.cpu_known && s.cpu_from_v1);
        ASSERT_EQ(s.cpu_usage_usec, 2500); /* ns -> usec */
        ASSERT_TRUE(s.tasks_known);
        ASSERT_EQ(s.n_tasks, 9);
        for (size_t i = 0; i < _STUCK_PSI_MAX; i++)
                ASSERT_TRUE(!s.psi[i].known);

        /* With usage_usec in v2 cpu.stat, v2 wins. */
        put("cg/unified/system.slice/b.service/cpu.stat", "usage_usec 7\n");
        ASSERT_OK(stuck_cgroup_read(&p, &s));
        ASSERT_TRUE(s.cpu_known && !s.cpu_from_v1);
        ASSERT_EQ(s.cpu_usage_usec, 7);
}

/* One root per run: a file missing where the parent does not enable its controller is not tried again
 * for the siblings, but is for cgroups under another parent, and again by the next run's root. */
static void test_cgroup_root(void) {
        _cleanup_(stuck_cgroup_root_freep) stuck_cgroup_root *r = NULL, *next = NULL;
        stuck_cgroup_path a = {}, b = {}, c = {}, gone = {}, late = {};
        stuck_cgroup_sample s;

        fresh_root();
        mkdirs("cg");
        ASSERT_EQ(stuck_cgroup_root_new(&r), -EOPNOTSUPP);
        put("cg/unified/cgroup.controllers", "\n");
        ASSERT_OK(stuck_cgroup_root_new(&r));
        ASSERT_EQ(stuck_cgroup_locate_in(r, "/system.slice/none.service", &a), -ENOENT);
        ASSERT_EQ(stuck_cgroup_locate_in(r, "system.slice", &a), -EINVAL);
        for (const char *u = "a"; u; u = u[0] == 'a' ? "b" : NULL) {
                char path[128];
                snprintf(path, sizeof path, "cg/unified/system.slice/%s.service/cpu.stat", u);
                put(path, "usage_usec 5\n");
                snprintf(path, sizeof path, "cg/unified/system.slice/%s.service/cgroup.procs", u);
                put(path, "%s", "");
        }
        put("cg/unified/other.slice/c.service/cpu.stat", "usage_usec 6\n");
        put("cg/unified/other.slice/c.service/cgroup.procs", "%s", "");
        put("cg/unified/other.slice/c.service/io.stat", "8:0 rbytes=1 wbytes=2 rios=1 wios=1\n");
        put("cg/unified/other.slice/c.service/memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n");
        ASSERT_OK(stuck_cgroup_locate_in(r, "/system.slice/a.service", &a));
        ASSERT_EQ(a.layout, STUCK_LAYOUT_HYBRID);
        ASSERT_TRUE(a.v1_pids && strstr(a.dir, "/cg/unified/system.slice/a.service"));
        ASSERT_OK(stuck_cgroup_read(&a, &s));
        ASSERT_TRUE(s.cpu_known && !s.io_known && !s.tasks_known && !s.psi[STUCK_PSI_MEMORY].known);

        /* b would have them now, but its parent was found not to give them: not tried. */
        put("cg/unified/system.slice/b.service/io.stat", "8:0 rbytes=1 wbytes=2 rios=1 wios=1\n");
        put("cg/unified/system.slice/b.service/pids.current", "4\n");
        put("cg/unified/system.slice/b.service/memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n");
        ASSERT_OK(stuck_cgroup_locate_in(r, "/system.slice/b.service", &b));
        ASSERT_OK(stuck_cgroup_read(&b, &s));
        ASSERT_TRUE(s.cpu_known && s.cpu_usage_usec == 5);
        ASSERT_TRUE(!s.io_known && !s.tasks_known && !s.psi[STUCK_PSI_MEMORY].known);

        /* Another parent is asked for itself. */
        ASSERT_OK(stuck_cgroup_locate_in(r, "/other.slice/c.service", &c));
        ASSERT_OK(stuck_cgroup_read(&c, &s));
        ASSERT_TRUE(s.io_known && s.io_bytes == 3 && s.psi[STUCK_PSI_MEMORY].known);
        ASSERT_TRUE(!s.tasks_known && !s.psi[STUCK_PSI_CPU].known);

        /* A cgroup gone mid-read (it no longer shows its cgroup.procs) speaks for no sibling. */
        put("cg/unified/third.slice/gone.service/cpu.stat", "usage_usec 1\n");
        put("cg/unified/third.slice/late.service/cpu.stat", "usage_usec 1\n");
        put("cg/unified/third.slice/late.service/cgroup.procs", "%s", "");
        put("cg/unified/third.slice/late.service/cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=2\n");
        ASSERT_OK(stuck_cgroup_locate_in(r, "/third.slice/gone.service", &gone));
        ASSERT_OK(stuck_cgroup_locate_in(r, "/third.slice/late.service", &late));
        ASSERT_OK(stuck_cgroup_read(&gone, &s));
        ASSERT_TRUE(!s.psi[STUCK_PSI_CPU].known);
        ASSERT_OK(stuck_cgroup_read(&late, &s));
        ASSERT_TRUE(s.psi[STUCK_PSI_CPU].known && s.psi[STUCK_PSI_CPU].some_total_usec == 2);

        /* The next run starts over. */
        stuck_cgroup_path_done(&b);
        ASSERT_OK(stuck_cgroup_root_new(&next));
        ASSERT_OK(stuck_cgroup_locate_in(next, "/system.slice/b.service", &b));
        ASSERT_OK(stuck_cgroup_read(&b, &s));
        ASSERT_TRUE(s.io_known && s.tasks_known && s.n_tasks == 4 && s.psi[STUCK_PSI_MEMORY].known);

        stuck_cgroup_path_done(&a);
        stuck_cgroup_path_done(&b);
        stuck_cgroup_path_done(&c);
        stuck_cgroup_path_done(&gone);
        stuck_cgroup_path_done(&late);
}

/* A unit whose cpu usage grew since its last sample is progressing: its scan reads cpu.stat by its path
 * under the root (its directory never opened) and pids.current, and leaves io and PSI unknown, with the
 * reason. Flat, forced, or with no sample before: everything, as stuck_cgroup_read() does. */
static void test_progress_reads_less(void) {
        _cleanup_(stuck_cgroup_root_freep) stuck_cgroup_root *r = NULL;
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample first = {}, moved = {}, flat = {}, forced = {};
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path p = {}, gone = {};
        stuck_unit_sample ignored = {};

        fresh_root();
        put("cg/unified/cgroup.controllers", "\n");
        put("cg/unified/system.slice/q.service/cpu.stat", "usage_usec 100\n");
        put("cg/unified/system.slice/q.service/cgroup.procs", "%s", "");
        put("cg/unified/system.slice/q.service/io.stat", "8:0 rbytes=1 wbytes=2 rios=1 wios=1\n");
        put("cg/unified/system.slice/q.service/cpu.pressure", "some avg10=0.00 avg60=50.00 avg300=0.00 total=9\n");
        put("cg/unified/system.slice/q.service/pids.current", "3\n");
        ASSERT_OK(stuck_cgroup_root_new(&r));
        ASSERT_OK(stuck_cgroup_name_in(r, "/system.slice/q.service", &p));
        ASSERT_STREQ(p.rel, "system.slice/q.service/");
        ASSERT_TRUE(p.root_fd >= 0);

        ASSERT_OK(stuck_scan_unit(&p, NULL, 0, &first));
        ASSERT_TRUE(first.cgroup.io_known && first.cgroup.psi[STUCK_PSI_CPU].known && first.cgroup.tasks_known);
        ASSERT_TRUE(!first.cgroup.pressure_skipped);

        put("cg/unified/system.slice/q.service/cpu.stat", "usage_usec 150\n");
        put("cg/unified/system.slice/q.service/pids.current", "4\n");
        ASSERT_OK(stuck_scan_unit(&p, &first, 0, &moved));
        ASSERT_TRUE(moved.cgroup.cpu_known && moved.cgroup.cpu_usage_usec == 150);
        ASSERT_TRUE(moved.cgroup.pressure_skipped);
        ASSERT_TRUE(!moved.cgroup.io_known && moved.cgroup.io_bytes == 0);
        for (size_t i = 0; i < _STUCK_PSI_MAX; i++)
                ASSERT_TRUE(!moved.cgroup.psi[i].known);
        /* pids.current is still read: more tasks is a reason to descend, progress or not. */
        ASSERT_TRUE(moved.cgroup.tasks_known && moved.cgroup.n_tasks == 4);
        ASSERT_TRUE(moved.descended & STUCK_DESCEND_TASKS);

        /* No progress since: the whole read. */
        ASSERT_OK(stuck_scan_unit(&p, &moved, 0, &flat));
        ASSERT_TRUE(!flat.cgroup.pressure_skipped && flat.cgroup.io_known && flat.cgroup.io_bytes == 3);
        ASSERT_TRUE(flat.cgroup.psi[STUCK_PSI_CPU].known && flat.cgroup.psi[STUCK_PSI_CPU].some_avg60 == 5000);

        /* Forced: the whole read too, though cpu moved. */
        put("cg/unified/system.slice/q.service/cpu.stat", "usage_usec 900\n");
        ASSERT_OK(stuck_scan_unit(&p, &flat, STUCK_SCAN_FULL | STUCK_SCAN_NO_STACK, &forced));
        ASSERT_TRUE(!forced.cgroup.pressure_skipped && forced.cgroup.io_known && forced.descended);

        /* A name whose directory is not there: the scan says the cgroup is gone. */
        ASSERT_OK(stuck_cgroup_name_in(r, "/system.slice/gone.service", &gone));
        ASSERT_EQ(stuck_scan_unit(&gone, &first, 0, &ignored), -ENOENT);
        ASSERT_EQ(stuck_scan_unit(&gone, NULL, 0, &ignored), -ENOENT);
}

/* A v2 unit "w.service" whose cgroup.procs lists @procs. */
static void unit_v2(const char *procs, uint64_t usage, const char *pids_current) {
        put("cg/cgroup.controllers", "cpu io memory pids\n");
        put("cg/w.service/cpu.stat", "usage_usec %llu\n", (unsigned long long) usage);
        put("cg/w.service/cgroup.procs", "%s", procs);
        if (pids_current)
                put("cg/w.service/pids.current", "%s\n", pids_current);
}

static void scan(const stuck_unit_sample *prev, unsigned flags, stuck_unit_sample *ret) {
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path p = {};
        ASSERT_OK(stuck_cgroup_locate("/w.service", &p));
        ASSERT_OK(stuck_scan_unit(&p, prev, flags, ret));
}

static const stuck_proc_sample *find_pid(const stuck_unit_sample *s, pid_t pid) {
        for (size_t i = 0; i < s->n_procs; i++)
                if (s->procs[i].pid == pid)
                        return &s->procs[i];
        return NULL;
}

static void test_descent_rule(void) {
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample first = {}, healthy = {}, flat = {}, forced = {};

        fresh_root();
        /* Garbage everywhere a descent would read: cgroup.procs and the process's stat. */
        unit_v2("not a pid list\n", 1000, NULL);
        put("proc/100/stat", "garbage");

        /* First sample: nothing to compare with, counters only. */
        scan(NULL, 0, &first);
        ASSERT_EQ(first.descended, 0);
        ASSERT_EQ(first.n_procs, 0);

        /* The cgroup made cpu progress since @first: counters clear it, /proc untouched (else the
         * garbled cgroup.procs would have failed the scan). */
        put("cg/w.service/cpu.stat", "usage_usec 2000\n");
        scan(&first, 0, &healthy);
        ASSERT_EQ(healthy.descended, 0);
        ASSERT_EQ(healthy.cgroup.cpu_usage_usec, 2000);

        /* Flat: now the scan descends, and proves it by reading (and counting) the garbage stat. */
        put("cg/w.service/cgroup.procs", "100\n");
        scan(&healthy, 0, &flat);
        ASSERT_EQ(flat.descended, STUCK_DESCEND_FLAT);
        ASSERT_EQ(flat.n_procs, 0);
        ASSERT_EQ(flat.n_unreadable, 1);

        /* Forced, even with no previous sample. */
        put_stat("100", 100, "w", 'S', 1, 5, 1);
        scan(NULL, STUCK_SCAN_FULL, &forced);
        ASSERT_EQ(forced.descended, STUCK_DESCEND_FORCED);
        ASSERT_EQ(forced.n_procs, 1);
        ASSERT_STREQ(forced.procs[0].comm, "w");

        /* io progress alone clears a unit with flat cpu. */
        {
                _cleanup_(stuck_unit_sample_done) stuck_unit_sample a = {}, b = {};
                put("cg/w.service/io.stat", "8:0 rbytes=1 wbytes=0\n");
                scan(NULL, 0, &a);
                put("cg/w.service/io.stat", "8:0 rbytes=1 wbytes=4096\n");
                scan(&a, 0, &b);
                ASSERT_EQ(b.descended, 0);
        }
        /* cpu usage unknown: the counters cannot clear the unit; per-process io is read then. */
        {
                _cleanup_(stuck_unit_sample_done) stuck_unit_sample a = {}, b = {};
                put("cg/w.service/io.stat", "8:0 rbytes=1 wbytes=4096\n");
                put("cg/w.service/cpu.stat", "nr_periods 1\n");
                put("proc/100/io", "rchar: 5\nwchar: 6\n");
                scan(NULL, 0, &a);
                scan(&a, 0, &b);
                ASSERT_EQ(b.descended, STUCK_DESCEND_UNKNOWN);
                ASSERT_EQ(b.n_procs, 1);
                ASSERT_TRUE(b.procs[0].io_known);
                ASSERT_EQ(b.procs[0].io_bytes, 11);
        }
        /* The task count grew while cpu progressed: descend anyway (zombies pile up silently). */
        {
                _cleanup_(stuck_unit_sample_done) stuck_unit_sample a = {}, b = {};
                put("cg/w.service/cpu.stat", "usage_usec 10\n");
                put("cg/w.service/pids.current", "1\n");
                scan(NULL, 0, &a);
                put("cg/w.service/cpu.stat", "usage_usec 20\n");
                put("cg/w.service/pids.current", "2\n");
                scan(&a, 0, &b);
                ASSERT_EQ(b.descended, STUCK_DESCEND_TASKS);
        }
}

static void test_procs(void) {
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};
        char path[512];

        fresh_root();
        /* 200 vanished (listed, no /proc entry); 300 in a sub-cgroup; 400 has an unreadable io. */
        unit_v2("100\n200\n400\n", 1000, NULL);
        put("cg/w.service/sub/cgroup.procs", "300\n");
        put_stat("100", 100, "my worker (v2)", 'S', 1, 250, 1);
        put_stat("300", 300, "helper", 'R', 100, 1, 1);
        put_stat("400", 400, "io-hidden", 'S', 1, 0, 1);
        put("proc/100/io", "rchar: 100\nwchar: 1\n");
        put("proc/300/io", "rchar: 0\nwchar: 0\n");
        mkdirs("proc/400/io"); /* EISDIR stands in for EACCES, which root would not get */
        snprintf(path, sizeof path, "%s/proc/300/io", root);
        if (geteuid() != 0) {
                ASSERT_OK(chmod(path, 0));
        }

        scan(NULL, STUCK_SCAN_FULL | STUCK_SCAN_PROC_IO, &s);
        ASSERT_EQ(s.n_procs, 3);
        ASSERT_EQ(s.n_vanished, 1);
        ASSERT_EQ(s.n_unreadable, 0);

        const stuck_proc_sample *w = find_pid(&s, 100);
        ASSERT_TRUE(w);
        ASSERT_STREQ(w->comm, "my worker (v2)");
        long tck = sysconf(_SC_CLK_TCK);
        ASSERT_EQ(w->cpu_usec, 250 * 1000000ull / (unsigned long long) tck);
        ASSERT_EQ(w->start_ticks, 1100);
        ASSERT_TRUE(w->io_known);
        ASSERT_EQ(w->io_bytes, 101);
        ASSERT_TRUE(w->wchan == NULL && w->stack == NULL); /* not in D: not read */

        const stuck_proc_sample *h = find_pid(&s, 300);
        ASSERT_TRUE(h); /* found through the sub-cgroup */
        ASSERT_EQ(h->ppid, 100);
        ASSERT_EQ(h->io_known, geteuid() == 0);

        const stuck_proc_sample *x = find_pid(&s, 400);
        ASSERT_TRUE(x);
        ASSERT_TRUE(!x->io_known && x->io_bytes == 0);

        ASSERT_EQ(s.procs_cpu_usec, w->cpu_usec + h->cpu_usec + x->cpu_usec);
        ASSERT_EQ(s.n_d_tasks, 0);
        ASSERT_TRUE(!s.zombies_known); /* no pids.current, no STUCK_SCAN_ZOMBIES */

        /* A kernel thread (PF_KTHREAD). */
        stuck_proc_sample k;
        put("proc/2/stat", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 1 0 0\n");
        ASSERT_OK(stuck_proc_read(2, 0, &k));
        ASSERT_TRUE(k.kernel_thread);
        stuck_proc_sample_done(&k);
        ASSERT_TRUE(!w->kernel_thread);
        ASSERT_EQ(stuck_proc_read(999, 0, &k), -ENOENT);
}

static void test_d_state(void) {
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};

        fresh_root();
        unit_v2("100\n200\n", 1000, NULL);
        /* 100: the leader itself in D, with wchan, stack and schedstats (blocked at 2000 ms; our
         * self/sched says "now" is 5000 ms: 3 s in D). */
        put_stat("100", 100, "fuse reader", 'D', 1, 0, 1);
        put("proc/100/wchan", "request_wait_answer");
        put("proc/100/stack", "[<0>] request_wait_answer+0x1/0x2\n[<0>] fuse_simple_request+0x3/0x4\n");
        put("proc/100/sched", "fuse reader (100, #threads: 1)\n----\nse.exec_start : 1999.000000\n"
                              "stats.block_start : 2000.000000\n");
        /* 200: leader sleeping, thread 201 in D (no schedstats: duration unknown; wchan "0": unknown). */
        put_stat("200", 200, "pool", 'S', 1, 0, 2);
        put_stat("200/task/200", 200, "pool", 'S', 1, 0, 2);
        put_stat("200/task/201", 201, "pool-io", 'D', 1, 0, 2);
        put("proc/200/task/201/wchan", "0");
        put("proc/200/task/201/sched", "se.exec_start : 1.000000\n");

        scan(NULL, STUCK_SCAN_FULL, &s);
        ASSERT_EQ(s.n_procs, 2);
        ASSERT_EQ(s.n_d_tasks, 2);

        const stuck_proc_sample *a = find_pid(&s, 100);
        ASSERT_EQ(a->state, 'D');
        ASSERT_EQ(a->n_d_threads, 1);
        ASSERT_STREQ(a->wchan, "request_wait_answer");
        ASSERT_TRUE(a->stack && strstr(a->stack, "fuse_simple_request"));
        ASSERT_TRUE(a->d_usec_known);
        ASSERT_EQ(a->d_usec, 3000000);

        const stuck_proc_sample *b = find_pid(&s, 200);
        ASSERT_EQ(b->state, 'D'); /* the leader's 'S' would have hidden it */
        ASSERT_EQ(b->n_d_threads, 1);
        ASSERT_TRUE(b->wchan == NULL);
        ASSERT_TRUE(b->stack == NULL); /* unreadable: absent */
        ASSERT_TRUE(!b->d_usec_known);

        /* STUCK_SCAN_NO_STACK skips the stack. */
        stuck_proc_sample p;
        ASSERT_OK(stuck_proc_read(100, STUCK_SCAN_NO_STACK, &p));
        ASSERT_TRUE(p.stack == NULL && p.wchan != NULL);
        stuck_proc_sample_done(&p);
}

static void test_zombies(void) {
        fresh_root();
        /* Parent 100 has children 101..103 (zombies, in no cgroup.procs) and 104 (live, in the unit);
         * 105 is a live child elsewhere. Its other thread 110 forked zombie 111. */
        unit_v2("100\n104\n", 1000, NULL);
        put_stat("100", 100, "sloppy parent", 'S', 1, 0, 2);
        put_stat("100/task/100", 100, "sloppy parent", 'S', 1, 0, 2);
        put_stat("100/task/110", 110, "sloppy thread", 'S', 1, 0, 2);
        put("proc/100/task/100/children", "101 102 103 104 105 ");
        put("proc/100/task/110/children", "111 ");
        put_stat("104", 104, "kid", 'S', 100, 0, 1);
        put("proc/104/task/104/children", "%s", "");
        for (int z = 101; z <= 103; z++) {
                char d[16];
                snprintf(d, sizeof d, "%d", z);
                put_stat(d, z, "kid", 'Z', 100, 0, 1);
        }
        put_stat("105", 105, "kid", 'S', 100, 0, 1);
        put_stat("111", 111, "kid", 'Z', 110, 0, 1);

        {
                _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};
                scan(NULL, STUCK_SCAN_FULL | STUCK_SCAN_ZOMBIES, &s);
                ASSERT_TRUE(s.zombies_known);
                ASSERT_EQ(s.n_zombie_parents, 1);
                ASSERT_EQ(s.zombie_parents[0].pid, 100);
                ASSERT_STREQ(s.zombie_parents[0].comm, "sloppy parent");
                ASSERT_EQ(s.zombie_parents[0].n_zombies, 4);
        }
        /* Without the flag, pids.current (2 + 1 threads live, 4 zombies) gives the hint. */
        {
                _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};
                put("cg/w.service/pids.current", "7\n");
                scan(NULL, STUCK_SCAN_FULL, &s);
                ASSERT_TRUE(s.zombies_known);
                ASSERT_EQ(s.n_zombie_parents, 1);
                ASSERT_EQ(s.zombie_parents[0].n_zombies, 4);
        }
        /* pids.current equal to the live threads: provably no zombies, and no children read (the
         * garbled children file would have made them unknown). */
        {
                _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};
                put("cg/w.service/pids.current", "3\n");
                put("proc/100/task/100/children", "x y z");
                scan(NULL, STUCK_SCAN_FULL, &s);
                ASSERT_TRUE(s.zombies_known);
                ASSERT_EQ(s.n_zombie_parents, 0);
                ASSERT_TRUE(!find_pid(&s, 100)->children_known);
        }
        /* Hint present but a children list unreadable: zombies not known. */
        {
                _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};
                put("cg/w.service/pids.current", "7\n");
                scan(NULL, STUCK_SCAN_FULL, &s);
                ASSERT_TRUE(!s.zombies_known);
        }
}

int main(void) {
        test_layout();
        test_counters_v2();
        test_counters_hybrid();
        test_cgroup_root();
        test_progress_reads_less();
        test_descent_rule();
        test_procs();
        test_d_state();
        test_zombies();
        test_rm_rf(root);
        free(root);
        printf("ok\n");
        return 0;
}
