/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One stuck-detector scan over prepared unit cgroups, timed: CPU (user+sys), wall, peak RSS.
 * Usage: bench-stuck-scan MODE PARENT UNITS [REPEAT]
 *   PARENT: a control group path under the v2 root ("/heal-bench-stuck.123"); units are PARENT/uNNN.
 *   MODE: healthy     counters only: every unit compared with a previous sample it progressed from
 *         full        STUCK_SCAN_FULL: every unit's processes read
 *         full-zombies  full, plus every process's children list (STUCK_SCAN_ZOMBIES)
 *         floor       a bare loop reading /proc/PID/stat once per process (pids listed beforehand)
 *         ps          ps -eo pid,stat,wchan:32,time > /dev/null, as a child
 * Prints one line: "MODE cpu_ms=… wall_ms=… rss_kib=… procs=… descended=…" (medians over REPEAT runs,
 * after one warm-up run). tests/bench/bench-stuck.sh sets up the cgroups and compares the modes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "scan.h"

typedef struct run {
        double cpu_ms, wall_ms;
        size_t procs, descended;
} run;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(int who) {
        struct rusage ru;
        getrusage(who, &ru);
        return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

static stuck_cgroup_path *units;
static stuck_unit_sample *previous;
static pid_t *floor_pids;
static size_t n_units, n_floor_pids;

static int setup_units(const char *parent, size_t n) {
        units = calloc(n, sizeof(*units));
        previous = calloc(n, sizeof(*previous));
        if (!units || !previous)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char cg[512];
                snprintf(cg, sizeof cg, "%s/u%03zu", parent, i);
                int r = stuck_cgroup_locate(cg, &units[i]);
                if (r < 0) {
                        fprintf(stderr, "locate %s: %s\n", cg, strerror(-r));
                        return r;
                }
                n_units++;
        }
        return 0;
}

/* "Healthy": the previous sample is the current one with 1 usec less cpu, so every unit made
 * progress since. */
static int setup_previous(void) {
        for (size_t i = 0; i < n_units; i++) {
                int r = stuck_scan_unit(&units[i], NULL, 0, &previous[i]);
                if (r < 0)
                        return r;
                if (!previous[i].cgroup.cpu_known || previous[i].cgroup.cpu_usage_usec == 0) {
                        fprintf(stderr, "unit %zu: no cgroup cpu usage to compare\n", i);
                        return -ENODATA;
                }
                previous[i].cgroup.cpu_usage_usec--;
        }
        return 0;
}

static int setup_floor(void) {
        size_t cap = 0;
        for (size_t i = 0; i < n_units; i++) {
                _cleanup_free_ char *path = NULL, *line = NULL;
                size_t lcap = 0;
                if (asprintf(&path, "%s/cgroup.procs", units[i].dir) < 0)
                        return -ENOMEM;
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (!f)
                        return -errno;
                while (getline(&line, &lcap, f) > 0) {
                        if (n_floor_pids == cap) {
                                cap = cap ? cap * 2 : 1024;
                                pid_t *n = reallocarray(floor_pids, cap, sizeof(pid_t));
                                if (!n)
                                        return -ENOMEM;
                                floor_pids = n;
                        }
                        floor_pids[n_floor_pids++] = (pid_t) strtol(line, NULL, 10);
                }
        }
        return 0;
}

static void run_scan(unsigned flags, bool with_previous, run *r) {
        for (size_t i = 0; i < n_units; i++) {
                stuck_unit_sample s;
                if (stuck_scan_unit(&units[i], with_previous ? &previous[i] : NULL, flags, &s) < 0)
                        continue;
                r->procs += s.n_procs;
                r->descended += s.descended != 0;
                stuck_unit_sample_done(&s);
        }
}

/* The floor: open, read, close of each stat, nothing parsed. */
static void run_floor(run *r) {
        char path[64], buf[4096];
        for (size_t i = 0; i < n_floor_pids; i++) {
                snprintf(path, sizeof path, "/proc/%d/stat", (int) floor_pids[i]);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (read(fd, buf, sizeof buf) > 0)
                        r->procs++;
                close(fd);
        }
}

static int run_ps(run *r) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = open("/dev/null", O_WRONLY);
                if (fd >= 0)
                        dup2(fd, STDOUT_FILENO);
                execlp("ps", "ps", "-eo", "pid,stat,wchan:32,time", (char *) NULL);
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void one(const char *mode, run *r) {
        *r = (run) {};
        bool ps = strcmp(mode, "ps") == 0;
        double c0 = cpu_ms(ps ? RUSAGE_CHILDREN : RUSAGE_SELF), w0 = now_ms();

        if (strcmp(mode, "healthy") == 0)
                run_scan(0, true, r);
        else if (strcmp(mode, "full") == 0)
                run_scan(STUCK_SCAN_FULL, false, r);
        else if (strcmp(mode, "full-zombies") == 0)
                run_scan(STUCK_SCAN_FULL | STUCK_SCAN_ZOMBIES, false, r);
        else if (strcmp(mode, "floor") == 0)
                run_floor(r);
        else if (ps && run_ps(r) < 0)
                fprintf(stderr, "ps failed\n");

        r->wall_ms = now_ms() - w0;
        r->cpu_ms = cpu_ms(ps ? RUSAGE_CHILDREN : RUSAGE_SELF) - c0;
}

int main(int argc, char **argv) {
        if (argc < 4) {
                printf("bench-stuck-scan: run by tests/bench/bench-stuck.sh, which prepares the cgroups "
                       "(usage: bench-stuck-scan MODE PARENT UNITS [REPEAT])\n");
                return 0;
        }
        const char *mode = argv[1];
        int repeat = argc > 4 ? atoi(argv[4]) : 5;
        size_t n = strtoul(argv[3], NULL, 10);
        if (repeat < 1 || repeat > 1000 || n == 0 || n > 100000) {
                fprintf(stderr, "bad REPEAT or UNITS\n");
                return 2;
        }

        if (setup_units(argv[2], n) < 0 || (strcmp(mode, "healthy") == 0 && setup_previous() < 0) ||
            (strcmp(mode, "floor") == 0 && setup_floor() < 0))
                return 1;

        double cpu[1000], wall[1000];
        run r;
        one(mode, &r); /* warm-up: dentries and inodes of /proc entries are built on first access */
        for (int i = 0; i < repeat; i++) {
                one(mode, &r);
                cpu[i] = r.cpu_ms;
                wall[i] = r.wall_ms;
        }
        qsort(cpu, (size_t) repeat, sizeof(double), cmp_double);
        qsort(wall, (size_t) repeat, sizeof(double), cmp_double);

        struct rusage ru;
        getrusage(strcmp(mode, "ps") == 0 ? RUSAGE_CHILDREN : RUSAGE_SELF, &ru);
        printf("%s cpu_ms=%.2f wall_ms=%.2f rss_kib=%ld procs=%zu descended=%zu\n", mode, cpu[repeat / 2],
               wall[repeat / 2], ru.ru_maxrss, r.procs, r.descended);

        for (size_t i = 0; i < n_units; i++) {
                stuck_cgroup_path_done(&units[i]);
                stuck_unit_sample_done(&previous[i]);
        }
        free(units);
        free(previous);
        free(floor_pids);
        return 0;
}
