/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The stuck detector's reads against this machine's real /proc and cgroup tree: our own process's
 * CPU time grows when we burn CPU, our unreaped children show up as zombies, and our own cgroup's
 * counters are found in whatever layout the host has (pure v2 or hybrid). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "scan.h"
#include "test-util.h"

static void burn_cpu_ms(long ms) {
        struct timespec a, b;
        volatile unsigned long x = 0;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        do {
                for (int i = 0; i < 100000; i++)
                        x += (unsigned long) i;
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

static void test_own_cpu(void) {
        stuck_proc_sample a, b;

        ASSERT_OK(stuck_proc_read(getpid(), STUCK_SCAN_PROC_IO, &a));
        burn_cpu_ms(300);
        ASSERT_OK(stuck_proc_read(getpid(), STUCK_SCAN_PROC_IO, &b));

        ASSERT_EQ(a.pid, getpid());
        ASSERT_EQ(b.ppid, getppid());
        ASSERT_EQ(b.state, 'R'); /* reading our own stat: we are running */
        ASSERT_EQ(a.start_ticks, b.start_ticks);
        ASSERT_TRUE(!b.kernel_thread);
        ASSERT_TRUE(b.comm && strlen(b.comm) > 0);
        /* 300 ms of CPU, ticks of 10 ms: at least 200 ms must show. */
        ASSERT_TRUE(b.cpu_usec >= a.cpu_usec + 200000);
        /* Our own io is readable, and reading stat twice counts as reads. */
        ASSERT_TRUE(a.io_known && b.io_known);
        ASSERT_TRUE(b.io_bytes > a.io_bytes);
        stuck_proc_sample_done(&a);
        stuck_proc_sample_done(&b);
}

static void test_own_zombies(void) {
        pid_t kids[3];
        stuck_proc_sample p;

        for (size_t i = 0; i < ELEMENTSOF(kids); i++) {
                kids[i] = fork();
                ASSERT_TRUE(kids[i] >= 0);
                if (kids[i] == 0)
                        _exit(0);
        }
        /* Wait until all three have exited (WNOWAIT: leave them zombies). */
        for (size_t i = 0; i < ELEMENTSOF(kids); i++) {
                siginfo_t si;
                ASSERT_OK(waitid(P_PID, (id_t) kids[i], &si, WEXITED | WNOWAIT));
        }
        ASSERT_OK(stuck_proc_read(getpid(), STUCK_SCAN_ZOMBIES, &p));
        ASSERT_TRUE(p.children_known);
        ASSERT_EQ(p.n_zombie_children, 3);
        stuck_proc_sample_done(&p);

        for (size_t i = 0; i < ELEMENTSOF(kids); i++)
                ASSERT_EQ(waitpid(kids[i], NULL, 0), kids[i]);
        ASSERT_OK(stuck_proc_read(getpid(), STUCK_SCAN_ZOMBIES, &p));
        ASSERT_EQ(p.n_zombie_children, 0);
        stuck_proc_sample_done(&p);
}

/* Our v2 cgroup path from /proc/self/cgroup's "0::" line. */
static char *own_cgroup(void) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;

        ASSERT_TRUE(f);
        while (getline(&line, &cap, f) > 0)
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = 0;
                        return strdup(line + 3);
                }
        return NULL;
}

static int test_own_cgroup(void) {
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path p = {};
        _cleanup_free_ char *cg = own_cgroup();
        stuck_cgroup_sample a, b;
        int r;

        if (!cg) {
                printf("no cgroup v2 membership in /proc/self/cgroup: cgroup part skipped\n");
                return 0;
        }
        r = stuck_cgroup_locate(cg, &p);
        if (r == -EOPNOTSUPP || r == -ENOENT) {
                printf("cgroup %s not reachable under %s (%s): cgroup part skipped\n", cg, "/sys/fs/cgroup",
                       strerror(-r));
                return 0;
        }
        ASSERT_OK(r);
        ASSERT_OK(stuck_cgroup_read(&p, &a));
        if (!a.cpu_known) {
                printf("no cpu usage for %s on this kernel: cgroup cpu part skipped\n", p.dir);
                return 0;
        }
        burn_cpu_ms(100);
        ASSERT_OK(stuck_cgroup_read(&p, &b));
        ASSERT_EQ(stuck_progress_cpu(&a, &b), STUCK_PROGRESS_YES);
        ASSERT_TRUE(b.cpu_usage_usec >= a.cpu_usage_usec + 50000);
        printf("own cgroup %s (%s): cpu %llu -> %llu usec\n", p.dir,
               p.layout == STUCK_LAYOUT_V2 ? "v2" : "hybrid", (unsigned long long) a.cpu_usage_usec,
               (unsigned long long) b.cpu_usage_usec);
        return 1;
}

int main(void) {
        unsetenv("HEAL_PROC_DIR");
        unsetenv("HEAL_CGROUP_DIR");
        test_own_cpu();
        test_own_zombies();
        test_own_cgroup();
        printf("ok\n");
        return 0;
}
