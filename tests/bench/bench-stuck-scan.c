/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The stuck detector's scan cost, timed (CPU user+sys, wall, peak RSS), and the workers it is measured on.
 * tests/bench/bench-stuck.sh runs every mode inside a sandboxed systemd; see there for the setup.
 *
 *   bench-stuck-scan MODE REPEAT CGROUP...   one warm-up, then REPEAT timed runs over the units' control
 *                                            groups ("/system.slice/bench-000.service" ...):
 *     healthy       the core's counters-only scan: each unit compared with a previous sample it progressed
 *                   from (its own counters, 1 usec of cpu less)
 *     full          STUCK_SCAN_FULL: every process of every unit read
 *     full-zombies  full, plus every process's children list (STUCK_SCAN_ZOMBIES)
 *     floor         a bare loop reading /proc/PID/stat once per process (pids listed beforehand)
 *     ps            ps -eo pid,stat,wchan:32,time > /dev/null, as a child
 *   bench-stuck-scan exec REPEAT GAP_MS CMD [ARG...]
 *                   CMD once unmeasured (it seeds what the next run compares with), then REPEAT times,
 *                   GAP_MS apart, each timed by wait4(); CMD's output goes where ours goes. Also times
 *                   what PID 1 and the bus daemon spend meanwhile (BENCH_BUS_PID names the latter).
 *   bench-stuck-scan worker N BURN_MS
 *                   a unit's payload: N processes in all (itself and N-1 children that sleep for good);
 *                   it burns BURN_MS of CPU every second so its cgroup shows progress, until SIGUSR1 makes
 *                   it sleep for good too (flat) and SIGUSR2 wakes it again.
 *
 * A timed mode prints one line: "MODE cpu_ms=… wall_ms=… rss_kib=… [sys_cpu_ms=…] [procs=… descended=…]",
 * medians over the REPEAT runs; rss_kib is the peak over all of them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "scan.h"

#define REPEAT_MAX 1000

typedef struct run {
        double cpu_ms, wall_ms, sys_cpu_ms;
        long rss_kib;
        size_t procs, descended;
} run;

static double now_ms(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double rusage_cpu_ms(const struct rusage *ru) {
        return (ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1e3 +
               (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e3;
}

static double self_cpu_ms(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return rusage_cpu_ms(&ru);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static double median(double *v, int n) {
        qsort(v, (size_t)n, sizeof(double), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_int(const char *s, long min, long max, long *ret) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* ---- the core's scan, the floor and ps over prepared units -------------------------------------- */

static stuck_cgroup_path *units;
static stuck_unit_sample *previous;
static pid_t *floor_pids;
static size_t n_units, n_floor_pids;

static int setup_units(char **cgroups, size_t n) {
        units = calloc(n, sizeof(*units));
        previous = calloc(n, sizeof(*previous));
        if (!units || !previous)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = stuck_cgroup_locate(cgroups[i], &units[i]);
                if (r < 0) {
                        fprintf(stderr, "bench-stuck-scan: locate %s: %s\n", cgroups[i], strerror(-r));
                        return r;
                }
                n_units++;
        }
        return 0;
}

static int setup_previous(void) {
        for (size_t i = 0; i < n_units; i++) {
                int r = stuck_scan_unit(&units[i], NULL, 0, &previous[i]);
                if (r < 0)
                        return r;
                if (!previous[i].cgroup.cpu_known || previous[i].cgroup.cpu_usage_usec == 0) {
                        fprintf(stderr, "bench-stuck-scan: %s: no cgroup cpu usage to compare\n",
                                units[i].dir);
                        return -ENODATA;
                }
                previous[i].cgroup.cpu_usage_usec--;
        }
        return 0;
}

static int add_floor_pid(pid_t pid, size_t *cap) {
        if (n_floor_pids == *cap) {
                size_t c = *cap ? *cap * 2 : 1024;
                pid_t *n = reallocarray(floor_pids, c, sizeof(pid_t));
                if (!n)
                        return -ENOMEM;
                floor_pids = n;
                *cap = c;
        }
        floor_pids[n_floor_pids++] = pid;
        return 0;
}

static int setup_floor(void) {
        size_t cap = 0;
        for (size_t i = 0; i < n_units; i++) {
                _cleanup_free_ char *path = NULL, *line = NULL;
                size_t lcap = 0;
                long pid;
                if (asprintf(&path, "%s/cgroup.procs", units[i].dir) < 0)
                        return -ENOMEM;
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (!f)
                        return -errno;
                while (getline(&line, &lcap, f) > 0) {
                        line[strcspn(line, "\n")] = 0;
                        if (parse_int(line, 1, INT32_MAX, &pid) < 0)
                                return -EBADMSG;
                        int r = add_floor_pid((pid_t)pid, &cap);
                        if (r < 0)
                                return r;
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

/* The floor: open, read, close of each stat, nothing parsed. A stat line is well under a page. */
static void run_floor(run *r) {
        char path[64], buf[4096];
        for (size_t i = 0; i < n_floor_pids; i++) {
                snprintf(path, sizeof path, "/proc/%d/stat", (int)floor_pids[i]);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (read(fd, buf, sizeof buf) > 0)
                        r->procs++;
                close(fd);
        }
}

/* Fork and exec @argv with stdout to /dev/null (when @quiet), wait4() it into @r. */
static int run_child(char **argv, bool quiet, run *r) {
        struct rusage ru;
        int status;
        double w0 = now_ms(CLOCK_MONOTONIC);
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = quiet ? open("/dev/null", O_WRONLY) : -1;
                if (fd >= 0)
                        dup2(fd, STDOUT_FILENO);
                execvp(argv[0], argv);
                _exit(127);
        }
        if (wait4(pid, &status, 0, &ru) < 0)
                return -errno;
        r->wall_ms = now_ms(CLOCK_MONOTONIC) - w0;
        r->cpu_ms = rusage_cpu_ms(&ru);
        r->rss_kib = ru.ru_maxrss;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-stuck-scan: %s exited with status %d\n", argv[0], status);
                return -EIO;
        }
        return 0;
}

static int one(const char *mode, run *r) {
        static char *ps_argv[] = {(char *)"ps", (char *)"-eo", (char *)"pid,stat,wchan:32,time", NULL};

        *r = (run){};
        if (strcmp(mode, "ps") == 0)
                return run_child(ps_argv, true, r);

        double c0 = self_cpu_ms(), w0 = now_ms(CLOCK_MONOTONIC);
        if (strcmp(mode, "healthy") == 0)
                run_scan(0, true, r);
        else if (strcmp(mode, "full") == 0)
                run_scan(STUCK_SCAN_FULL, false, r);
        else if (strcmp(mode, "full-zombies") == 0)
                run_scan(STUCK_SCAN_FULL | STUCK_SCAN_ZOMBIES, false, r);
        else
                run_floor(r);
        r->wall_ms = now_ms(CLOCK_MONOTONIC) - w0;
        r->cpu_ms = self_cpu_ms() - c0;

        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r->rss_kib = ru.ru_maxrss;
        return 0;
}

static void print_result(const char *mode, run *runs, int n, bool with_sys, bool with_procs) {
        double cpu[REPEAT_MAX], wall[REPEAT_MAX], sys[REPEAT_MAX];
        long rss = 0;

        for (int i = 0; i < n; i++) {
                cpu[i] = runs[i].cpu_ms;
                wall[i] = runs[i].wall_ms;
                sys[i] = runs[i].sys_cpu_ms;
                if (runs[i].rss_kib > rss)
                        rss = runs[i].rss_kib;
        }
        printf("%s cpu_ms=%.2f wall_ms=%.2f rss_kib=%ld", mode, median(cpu, n), median(wall, n), rss);
        if (with_sys)
                printf(" sys_cpu_ms=%.2f", median(sys, n));
        if (with_procs)
                printf(" procs=%zu descended=%zu", runs[n - 1].procs, runs[n - 1].descended);
        printf("\n");
}

static int main_scan(const char *mode, int repeat, char **cgroups, size_t n) {
        static run runs[REPEAT_MAX];
        run warm;
        int r;

        if (strcmp(mode, "healthy") && strcmp(mode, "full") && strcmp(mode, "full-zombies") &&
            strcmp(mode, "floor") && strcmp(mode, "ps")) {
                fprintf(stderr, "bench-stuck-scan: unknown mode %s\n", mode);
                return 2;
        }
        r = setup_units(cgroups, n);
        if (r >= 0 && strcmp(mode, "healthy") == 0)
                r = setup_previous();
        if (r >= 0 && strcmp(mode, "floor") == 0)
                r = setup_floor();
        /* The warm-up builds the dentries and inodes of the /proc entries, which every later run finds. */
        if (r >= 0)
                r = one(mode, &warm);
        for (int i = 0; r >= 0 && i < repeat; i++)
                r = one(mode, &runs[i]);
        if (r >= 0)
                print_result(mode, runs, repeat, false, strcmp(mode, "ps") != 0);
        else
                fprintf(stderr, "bench-stuck-scan: %s: %s\n", mode, strerror(-r));

        for (size_t i = 0; i < n_units; i++) {
                stuck_cgroup_path_done(&units[i]);
                stuck_unit_sample_done(&previous[i]);
        }
        free(units);
        free(previous);
        free(floor_pids);
        return r < 0 ? 1 : 0;
}

/* ---- a command, timed by wait4(), and what the system spends serving it ------------------------ */

/* Time on the CPU of @pid so far, from schedstat (ns, unlike stat's clock ticks); -1 when unreadable. */
static double pid_cpu_ms(pid_t pid) {
        char path[64];
        unsigned long long ns;
        int ok;

        if (pid <= 0)
                return -1;
        snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        ok = fscanf(f, "%llu", &ns) == 1;
        return ok ? ns / 1e6 : -1;
}

static double sys_cpu_ms(pid_t bus) {
        double a = pid_cpu_ms(1), b = pid_cpu_ms(bus);
        return (a < 0 ? 0 : a) + (b < 0 ? 0 : b);
}

static int main_exec(int repeat, long gap_ms, char **argv) {
        static run runs[REPEAT_MAX];
        const char *bus_env = getenv("BENCH_BUS_PID");
        long bus = 0;
        run seed;
        int r;

        if (bus_env && parse_int(bus_env, 0, INT32_MAX, &bus) < 0) {
                fprintf(stderr, "bench-stuck-scan: bad BENCH_BUS_PID\n");
                return 2;
        }
        r = run_child(argv, false, &seed);
        for (int i = 0; r >= 0 && i < repeat; i++) {
                struct timespec gap = {.tv_sec = gap_ms / 1000, .tv_nsec = (gap_ms % 1000) * 1000000L};
                nanosleep(&gap, NULL);
                double s0 = sys_cpu_ms((pid_t)bus);
                r = run_child(argv, false, &runs[i]);
                runs[i].sys_cpu_ms = sys_cpu_ms((pid_t)bus) - s0;
        }
        if (r < 0)
                return 1;
        print_result("exec", runs, repeat, true, false);
        return 0;
}

/* ---- a unit's payload ---------------------------------------------------------------------------- */

static volatile sig_atomic_t flat;

static void on_signal(int sig) {
        flat = sig == SIGUSR1;
}

static void burn(long ms) {
        double end = now_ms(CLOCK_THREAD_CPUTIME_ID) + (double)ms;
        while (now_ms(CLOCK_THREAD_CPUTIME_ID) < end)
                ;
}

static int main_worker(long n, long burn_ms) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigset_t block, none;

        for (long i = 1; i < n; i++) {
                pid_t pid = fork();
                if (pid < 0) {
                        fprintf(stderr, "bench-stuck-scan: fork: %m\n");
                        return 1;
                }
                if (pid == 0) {
                        /* Only the main process is told to go flat; a stray signal must not end a child. */
                        signal(SIGUSR1, SIG_IGN);
                        signal(SIGUSR2, SIG_IGN);
                        for (;;)
                                pause();
                }
        }

        sigemptyset(&none);
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigaddset(&block, SIGUSR2);
        sigaction(SIGUSR1, &sa, NULL);
        sigaction(SIGUSR2, &sa, NULL);
        sigprocmask(SIG_BLOCK, &block, NULL);
        for (;;) {
                if (flat) {
                        /* Not even a timer wakeup: the cgroup's cpu usage must stay flat. */
                        sigsuspend(&none);
                        continue;
                }
                burn(burn_ms);
                struct timespec second = {.tv_sec = 1};
                sigprocmask(SIG_UNBLOCK, &block, NULL);
                nanosleep(&second, NULL);
                sigprocmask(SIG_BLOCK, &block, NULL);
        }
}

int main(int argc, char **argv) {
        long a, b;

        if (argc < 2) {
                printf("bench-stuck-scan: run by tests/bench/bench-stuck.sh inside a sandboxed systemd "
                       "(see the top of tests/bench/bench-stuck-scan.c for its modes)\n");
                return 0;
        }
        if (strcmp(argv[1], "worker") == 0) {
                if (argc != 4 || parse_int(argv[2], 1, 100000, &a) < 0 ||
                    parse_int(argv[3], 0, 1000, &b) < 0) {
                        fprintf(stderr, "usage: bench-stuck-scan worker N BURN_MS\n");
                        return 2;
                }
                return main_worker(a, b);
        }
        if (strcmp(argv[1], "exec") == 0) {
                if (argc < 5 || parse_int(argv[2], 1, REPEAT_MAX, &a) < 0 ||
                    parse_int(argv[3], 0, 600000, &b) < 0) {
                        fprintf(stderr, "usage: bench-stuck-scan exec REPEAT GAP_MS CMD [ARG...]\n");
                        return 2;
                }
                return main_exec((int)a, b, argv + 4);
        }
        if (argc < 4 || parse_int(argv[2], 1, REPEAT_MAX, &a) < 0) {
                fprintf(stderr, "usage: bench-stuck-scan MODE REPEAT CGROUP...\n");
                return 2;
        }
        return main_scan(argv[1], (int)a, argv + 3, (size_t)(argc - 3));
}
