/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How long one guarded decision takes with real state on disk: live mode,
 * auto tier, an instant act and verify, budgets too large to run out.
 * Usage: bench-guard [DECISIONS [TARGETS]] (default 2000 over 200).
 * Runs twice on fresh state: as a one-shot helper does (heal.prom rewritten
 * by every pass), then with heal.prom deferred to the end of the batch
 * (heal_guard.defer_metrics_write), on a quarter of the decisions.
 * $HEAL_BENCH_DIR: where the temp state dir goes (default /var/tmp; the
 * result says when it is a tmpfs, which hides the cost of fsync). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/guard.h"
#include "heal/metrics.h"
#include "heal/policy.h"
#include "heal/state.h"

#define TARGET_P99_MS 5.0

static const char policy_json[] = "{\"version\": 1,\n"
                                  " \"global\": {\"budget\": {\"actions\": 100000, \"per_s\": 1}},\n"
                                  " \"classes\": {\"bench\": {\"mode\": \"live\", \"tier\": \"auto\",\n"
                                  "   \"budget\": {\"actions\": 100000, \"per_s\": 1},\n"
                                  "   \"target_budget\": {\"actions\": 100000, \"per_s\": 1},\n"
                                  "   \"breaker\": {\"failures\": 1000, \"cooldown_s\": 1},\n"
                                  "   \"targets\": [\"*\"]}}}\n";

static int kill_switch_off(void *userdata, char **ret_reason) {
        return 0;
}

static int instant_ok(void *userdata, char **ret_detail) {
        return 1;
}

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        remove(path);
        return 0;
}

static int parse_count(const char *s, unsigned *ret) {
        char *end = NULL;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || !end || *end != '\0' || v == 0 || v > 10000000)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int write_policy(const char *dir) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;

        if (asprintf(&path, "%s/10-bench.json", dir) < 0)
                return -ENOMEM;
        f = fopen(path, "we");
        if (!f || fputs(policy_json, f) < 0)
                return -errno;
        return fflush(f) == 0 ? 0 : -errno;
}

/* One run of the benchmark on its own fresh state dir. */
typedef struct phase {
        const char *label;
        bool defer_metrics_write;
        unsigned n;
        double per_s, p50, p99, max;
} phase;

/* Runs @n decisions; their latencies (ms) into @lat. Returns decisions that
 * did not verify, or -errno. */
static int decide(heal_guard *g, unsigned n, unsigned n_targets, double *lat) {
        int failed = 0;

        for (unsigned i = 0; i < n; i++) {
                char target[64], incident[64];
                heal_outcome o;
                double t;
                int r;

                snprintf(target, sizeof(target), "bench-%u.service", i % n_targets);
                snprintf(incident, sizeof(incident), "incident-%u", i);
                const heal_action a = {
                        .healer = "bench",
                        .class = "bench",
                        .target = target,
                        .incident = incident,
                        .intent = "nothing (benchmark)",
                        .rollback = "nothing to undo",
                        .tier_override = -1,
                        .act = instant_ok,
                        .verify = instant_ok,
                };
                t = now_ms();
                r = heal_guard_run(g, &a, &o);
                lat[i] = now_ms() - t;
                if (r < 0)
                        return r;
                failed += o != HEAL_OUTCOME_VERIFIED;
        }
        return failed;
}

/* Audit records go to stderr when there is no journal: not what is measured. */
static int stderr_mute(void) {
        int saved, devnull;

        fflush(stderr);
        saved = dup(STDERR_FILENO);
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (saved >= 0 && devnull >= 0)
                dup2(devnull, STDERR_FILENO);
        if (devnull >= 0)
                close(devnull);
        return saved;
}

static void stderr_restore(int saved) {
        fflush(stderr);
        if (saved >= 0) {
                dup2(saved, STDERR_FILENO);
                close(saved);
        }
}

static int run_phase(const char *sdir, const heal_policy *policy, unsigned n_targets, phase *ph) {
        _cleanup_(heal_state_freep) heal_state *state = NULL;
        _cleanup_free_ double *lat = NULL;
        double total;
        int failed, saved, r;

        lat = calloc(ph->n, sizeof(*lat));
        if (!lat)
                return -ENOMEM;
        r = heal_state_open(sdir, &state);
        if (r < 0)
                return r;
        heal_guard g = {
                .state = state,
                .policy = policy,
                .kill_switch = kill_switch_off,
                .defer_metrics_write = ph->defer_metrics_write,
        };

        saved = stderr_mute();
        total = now_ms();
        failed = decide(&g, ph->n, n_targets, lat);
        if (failed >= 0 && ph->defer_metrics_write)
                (void) heal_metrics_write(state, NULL);
        total = now_ms() - total;
        stderr_restore(saved);
        if (failed < 0)
                return failed;
        if (failed > 0) {
                fprintf(stderr, "bench-guard: %d of %u decisions did not verify\n", failed, ph->n);
                return -EPROTO;
        }

        qsort(lat, ph->n, sizeof(*lat), cmp_double);
        ph->per_s = (double) ph->n / (total / 1e3);
        ph->p50 = lat[ph->n / 2];
        ph->p99 = lat[(size_t) ((double) (ph->n - 1) * 0.99)];
        ph->max = lat[ph->n - 1];
        return 0;
}

static void print_table(const phase *ph, size_t n) {
        printf("%-16s", "");
        for (size_t i = 0; i < n; i++)
                printf(" %22s", ph[i].label);
        printf("\n%-16s", "decisions");
        for (size_t i = 0; i < n; i++)
                printf(" %22u", ph[i].n);
        printf("\n%-16s", "decisions/s");
        for (size_t i = 0; i < n; i++)
                printf(" %22.0f", ph[i].per_s);
        printf("\n%-16s", "median ms");
        for (size_t i = 0; i < n; i++)
                printf(" %22.3f", ph[i].p50);
        printf("\n%-16s", "p99 ms");
        for (size_t i = 0; i < n; i++)
                printf(" %22.3f", ph[i].p99);
        printf("\n%-16s", "max ms");
        for (size_t i = 0; i < n; i++)
                printf(" %22.3f", ph[i].max);
        printf("\n%-16s", "p99 <= 5 ms");
        for (size_t i = 0; i < n; i++)
                printf(" %22s", ph[i].p99 <= TARGET_P99_MS ? "yes" : "NO");
        printf("\n");
}

int main(int argc, char **argv) {
        _cleanup_free_ char *base = NULL, *pdir = NULL, *mdir = NULL, *err = NULL;
        _cleanup_(heal_policy_freep) heal_policy *policy = NULL;
        const char *where = getenv("HEAL_BENCH_DIR");
        unsigned n = 2000, n_targets = 200;
        struct statfs sfs;
        int r = 0;

        if ((argc > 1 && parse_count(argv[1], &n) < 0) ||
            (argc > 2 && parse_count(argv[2], &n_targets) < 0)) {
                fprintf(stderr, "usage: %s [DECISIONS [TARGETS]]\n", argv[0]);
                return 2;
        }
        phase phases[] = {
                { .label = "heal.prom every pass", .n = n },
                { .label = "heal.prom deferred", .defer_metrics_write = true, .n = n / 4 ?: 1 },
        };

        /* On disk, not tmpfs: the fsyncs are part of the cost being measured. */
        if (asprintf(&base, "%s/heal-bench-XXXXXX", where && *where ? where : "/var/tmp") < 0)
                return 1;
        if (!mkdtemp(base)) {
                fprintf(stderr, "bench-guard: mkdtemp %s: %m\n", base);
                return 1;
        }
        if (asprintf(&pdir, "%s/policy", base) < 0 || asprintf(&mdir, "%s/metrics", base) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        if (mkdir(pdir, 0700) < 0 || mkdir(mdir, 0700) < 0 || write_policy(pdir) < 0) {
                fprintf(stderr, "bench-guard: cannot set up %s: %m\n", base);
                r = -EIO;
                goto finish;
        }
        setenv("HEAL_METRICS_DIR", mdir, 1);
        const char *dirs[] = { pdir, NULL };
        r = heal_policy_load(dirs, &policy, &err);
        if (r < 0) {
                fprintf(stderr, "bench-guard: policy: %s\n", err ?: strerror(-r));
                goto finish;
        }
        if (statfs(base, &sfs) < 0)
                sfs.f_type = 0;
        printf("guard: live auto decisions over %u targets, state under %s (%s)\n", n_targets, base,
               sfs.f_type == TMPFS_MAGIC ? "tmpfs: fsync costs nothing here" : "on disk");

        for (size_t i = 0; i < ELEMENTSOF(phases); i++) {
                _cleanup_free_ char *sdir = NULL;

                if (asprintf(&sdir, "%s/state-%zu", base, i) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = run_phase(sdir, policy, n_targets, &phases[i]);
                if (r < 0) {
                        fprintf(stderr, "bench-guard: %s: %s\n", phases[i].label, strerror(-r));
                        goto finish;
                }
        }
        print_table(phases, ELEMENTSOF(phases));
finish:
        nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        return r < 0 ? 1 : 0;
}
