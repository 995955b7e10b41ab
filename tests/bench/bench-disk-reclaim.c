/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Driver for tests/bench/bench-disk.sh: builds fixture trees, runs heal's
 * plan + execute on one, or the bare unlinkat floor; prints time and peak RSS.
 * Without arguments it runs a small self-contained comparison in $TMPDIR. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "plan.h"

#define DAY_S (24 * 3600)

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint64_t wall_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static long peak_rss_kib(void) {
        struct rusage ru;
        return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-')
                return -EINVAL;
        *ret = v;
        return 0;
}

/* ROOT/dNNNNN/fNNNNNNN, @size bytes each, mtime = atime = 10 days ago minus a
 * scrambled number of seconds, so "oldest first" has real work to do. */
static int mktree(const char *root, uint64_t n, uint64_t per_dir, uint64_t size) {
        _cleanup_close_ int rfd = -EBADF, dfd = -EBADF;
        char name[32], buf[4096];
        struct timespec base;

        if (per_dir == 0 || size > sizeof(buf))
                return -EINVAL;
        memset(buf, 'x', sizeof(buf));
        clock_gettime(CLOCK_REALTIME, &base);
        base.tv_sec -= 10 * DAY_S;

        if (mkdir(root, 0755) < 0 && errno != EEXIST)
                return -errno;
        rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return -errno;
        for (uint64_t i = 0; i < n; i++) {
                if (i % per_dir == 0) {
                        closep(&dfd);
                        snprintf(name, sizeof(name), "d%05" PRIu64, i / per_dir);
                        if (mkdirat(rfd, name, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        dfd = openat(rfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (dfd < 0)
                                return -errno;
                }
                snprintf(name, sizeof(name), "f%07" PRIu64, i);
                _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0)
                        return -errno;
                if (size > 0 && write(fd, buf, size) != (ssize_t) size)
                        return -EIO;
                struct timespec ts[2] = { base, base };
                ts[0].tv_sec -= (time_t) ((i * 7919) % n);
                ts[1] = ts[0];
                if (futimens(fd, ts) < 0)
                        return -errno;
        }
        return 0;
}

/* The floor: readdir + unlinkat of every regular file, no checks at all. */
static int floor_dir(int dfd, uint64_t *count) {
        DIR *d = fdopendir(dfd);
        struct dirent *de;

        if (!d) {
                close(dfd);
                return -errno;
        }
        while ((de = readdir(d))) {
                if (de->d_type == DT_DIR && strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (sub >= 0)
                                floor_dir(sub, count);
                } else if (de->d_type == DT_REG && unlinkat(dirfd(d), de->d_name, 0) == 0)
                        (*count)++;
        }
        closedir(d);
        return 0;
}

static int run_floor(const char *root) {
        uint64_t count = 0;
        double t0 = now_s();
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = floor_dir(fd, &count);
        if (r < 0)
                return r;
        printf("floor files=%" PRIu64 " total_s=%.3f peak_rss_kib=%ld\n", count, now_s() - t0, peak_rss_kib());
        return 0;
}

/* What the safety rules alone cost, with none of heal's planning or
 * accounting but with its two economies (removal in inode order within a
 * directory, and removed files' fds closed by close_range() over runs of
 * consecutive numbers): per regular file one statx() by name (type and age),
 * open(O_NOFOLLOW), flock(LOCK_EX|LOCK_NB), a statx() of the fd under the
 * lock, unlinkat() while the lock is held.
 * "rulesmin": the same without the statx() by name, readdir's file type the
 * only check before open() (the age and identity checks then on the fd).
 * "statwalk": only the statx() of every file, what an oldest-first plan must
 * do at least (it cannot know the oldest without looking at every file). */
typedef enum bound_kind { BOUND_RULES, BOUND_RULES_MIN, BOUND_STATWALK } bound_kind;

static const char *const bound_names[] = {
        [BOUND_RULES] = "rules",
        [BOUND_RULES_MIN] = "rulesmin",
        [BOUND_STATWALK] = "statwalk",
};

#define BOUND_STATX_MASK (STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_INO | STATX_MTIME | STATX_BLOCKS)

/* A directory's regular files, by inode (as heal removes them: on ext4 that
 * order touches inode tables and bitmaps in sequence). */
typedef struct bound_entry {
        ino_t ino;
        char name[256];
} bound_entry;

static int cmp_bound_entry(const void *a, const void *b) {
        const bound_entry *x = a, *y = b;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Closes the removed files' fds as heal does: one close_range() per run of
 * consecutive fd numbers. */
static void bound_close(int *fds, size_t n) {
        for (size_t i = 0; i < n;) {
                size_t j = i + 1;
                while (j < n && fds[j] == fds[j - 1] + 1)
                        j++;
                if (close_range((unsigned) fds[i], (unsigned) fds[j - 1], 0) < 0)
                        for (size_t k = i; k < j; k++)
                                close(fds[k]);
                i = j;
        }
}

static void bound_remove(int dfd, bound_entry *e, size_t n, bound_kind kind, uint64_t *count) {
        int held[128];
        size_t n_held = 0;
        struct statx stx;

        qsort(e, n, sizeof(*e), cmp_bound_entry);
        for (size_t i = 0; i < n; i++) {
                if (kind == BOUND_RULES &&
                    (statx(dfd, e[i].name, AT_SYMLINK_NOFOLLOW, BOUND_STATX_MASK, &stx) < 0 || !S_ISREG(stx.stx_mode)))
                        continue;
                int fd = openat(dfd, e[i].name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (flock(fd, LOCK_EX | LOCK_NB) < 0 || statx(fd, "", AT_EMPTY_PATH, BOUND_STATX_MASK, &stx) < 0 ||
                    unlinkat(dfd, e[i].name, 0) < 0) {
                        close(fd);
                        continue;
                }
                (*count)++;
                if (n_held == ELEMENTSOF(held)) {
                        bound_close(held, n_held);
                        n_held = 0;
                }
                held[n_held++] = fd;
        }
        bound_close(held, n_held);
}

/* @worker of @workers: at the top, only every @workers-th subdirectory (and,
 * for worker 0, the root's own files); below it, everything. */
static int bound_dir(int dfd, bound_kind kind, unsigned worker, unsigned workers, uint64_t *count) {
        _cleanup_free_ bound_entry *files = NULL;
        size_t n = 0, cap = 0;
        DIR *d = fdopendir(dfd);
        struct dirent *de;
        struct statx stx;
        unsigned nth = 0;

        if (!d) {
                close(dfd);
                return -errno;
        }
        while ((de = readdir(d))) {
                if (de->d_type == DT_DIR && strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                        if (nth++ % workers != worker)
                                continue;
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                bound_dir(sub, kind, 0, 1, count);
                        continue;
                }
                if (de->d_type != DT_REG || worker != 0)
                        continue;
                if (kind == BOUND_STATWALK) {
                        if (statx(dirfd(d), de->d_name, AT_SYMLINK_NOFOLLOW, BOUND_STATX_MASK, &stx) == 0 &&
                            S_ISREG(stx.stx_mode))
                                (*count)++;
                        continue;
                }
                if (n == cap) {
                        size_t c = cap ? cap * 2 : 1024;
                        bound_entry *f = reallocarray(files, c, sizeof(*f));
                        if (!f) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        files = f;
                        cap = c;
                }
                files[n].ino = de->d_ino;
                snprintf(files[n].name, sizeof(files[n].name), "%s", de->d_name);
                n++;
        }
        bound_remove(dirfd(d), files, n, kind, count);
        closedir(d);
        return 0;
}

/* The bound with @workers processes splitting the root's subdirectories, as a
 * deleter using every core could at best; the time is until the last ends. */
static int run_bound(const char *root, bound_kind kind, unsigned workers) {
        uint64_t count = 0, part;
        int pipes[2];
        double t0 = now_s();

        if (workers == 0 || pipe(pipes) < 0)
                return -EINVAL;
        for (unsigned w = 1; w < workers; w++) {
                pid_t pid = fork();
                if (pid < 0)
                        return -errno;
                if (pid == 0) {
                        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        part = 0;
                        if (fd < 0 || bound_dir(fd, kind, w, workers, &part) < 0 ||
                            write(pipes[1], &part, sizeof(part)) != (ssize_t) sizeof(part))
                                _exit(1);
                        _exit(0);
                }
        }
        close(pipes[1]);
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = bound_dir(fd, kind, 0, workers, &count);
        if (r < 0)
                return r;
        for (unsigned w = 1; w < workers; w++) {
                int status;
                if (read(pipes[0], &part, sizeof(part)) != (ssize_t) sizeof(part))
                        return -EIO;
                count += part;
                if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        return -EIO;
        }
        close(pipes[0]);
        printf("%s workers=%u files=%" PRIu64 " total_s=%.3f peak_rss_kib=%ld\n", bound_names[kind], workers,
               count, now_s() - t0, peak_rss_kib());
        return 0;
}

static int run_heal(const char *root, uint64_t min_age_s, uint64_t need, unsigned workers) {
        _cleanup_reclaim_plan_ reclaim_plan *p = NULL;
        _cleanup_free_ char *error = NULL;
        reclaim_source s = { .name = "bench", .root = root, .min_age_s = min_age_s, .times = RECLAIM_TIME_MTIME };
        reclaim_result res = {};

        double t0 = now_s();
        reclaim_run_opts opts = { .workers = workers };
        int r = reclaim_plan_build_with(&s, 1, need, UINT64_MAX, UINT64_MAX, wall_usec(), &opts, &p, &error);
        if (r < 0) {
                fprintf(stderr, "plan: %s\n", error ? error : strerror(-r));
                return r;
        }
        double t1 = now_s();
        r = reclaim_plan_execute(p, &opts, &res);
        double t2 = now_s();
        if (r < 0) {
                fprintf(stderr, "execute: %s\n", strerror(-r));
                reclaim_result_done(&res);
                return r;
        }
        printf("heal workers=%u files=%" PRIu64 " bytes=%" PRIu64 " skipped=%" PRIu64 " scanned=%" PRIu64
               " peak_kept=%" PRIu64 " plan_s=%.3f exec_s=%.3f total_s=%.3f peak_rss_kib=%ld\n",
               reclaim_workers(&opts), res.freed_files, res.freed_bytes, res.skipped_files, p->sources[0].scanned,
               p->sources[0].peak_kept, t1 - t0, t2 - t1, t2 - t0, peak_rss_kib());
        reclaim_result_done(&res);
        return 0;
}

/* No arguments (./dev bench): a small comparison on a fresh tree each time. */
static int self_run(void) {
        const char *tmp = getenv("TMPDIR");
        const char *env_n = getenv("BENCH_DISK_FILES");
        _cleanup_free_ char *base = NULL, *tree = NULL;
        uint64_t n = 20000;
        int r;

        if (env_n && parse_u64(env_n, &n) < 0)
                return -EINVAL;
        if (asprintf(&base, "%s/bench-disk-XXXXXX", tmp && *tmp ? tmp : "/var/tmp") < 0 || !mkdtemp(base))
                return -errno;
        if (asprintf(&tree, "%s/tree", base) < 0)
                return -ENOMEM;
        printf("bench-disk-reclaim: %" PRIu64 " files of 1 byte, 1000 per dir, in %s "
               "(tests/bench/bench-disk.sh runs the full comparison)\n", n, base);

        const char *modes[] = { "floor", "heal-all", "heal-10%" };
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                r = mktree(tree, n, 1000, 1);
                if (r < 0)
                        break;
                struct stat st;
                if (stat(tree, &st) < 0) {
                        r = -errno;
                        break;
                }
                printf("%-9s ", modes[i]);
                fflush(stdout);
                r = i == 0 ? run_floor(tree)
                    : i == 1 ? run_heal(tree, DAY_S, UINT64_MAX, 0)
                             : run_heal(tree, DAY_S, n / 10 * 4096, 0);
                if (r < 0)
                        break;
                char *cmd = NULL;
                if (asprintf(&cmd, "rm -rf -- '%s'", tree) < 0)
                        return -ENOMEM;
                if (system(cmd) != 0)
                        r = -EIO;
                free(cmd);
                if (r < 0)
                        break;
        }
        if (rmdir(base) < 0 && r >= 0)
                r = -errno;
        return r;
}

static void usage(void) {
        fprintf(stderr, "usage: bench-disk-reclaim                        small self-contained run\n"
                        "       bench-disk-reclaim mktree ROOT N PER_DIR SIZE\n"
                        "       bench-disk-reclaim heal ROOT MIN_AGE_S NEED_BYTES|all [WORKERS]  (0: the default)\n"
                        "       bench-disk-reclaim floor ROOT\n"
                        "       bench-disk-reclaim rules ROOT [WORKERS]     the safety rules' per-file syscalls, nothing else\n"
                        "       bench-disk-reclaim rulesmin ROOT [WORKERS]  the same without the statx() before open()\n"
                        "       bench-disk-reclaim statwalk ROOT [WORKERS]  one statx() of every file, nothing else\n");
}

int main(int argc, char **argv) {
        uint64_t a, b, c;
        int r;

        if (argc == 1)
                r = self_run();
        else if (argc == 6 && strcmp(argv[1], "mktree") == 0 && parse_u64(argv[3], &a) == 0 &&
                 parse_u64(argv[4], &b) == 0 && parse_u64(argv[5], &c) == 0)
                r = mktree(argv[2], a, b, c);
        else if ((argc == 5 || (argc == 6 && parse_u64(argv[5], &c) == 0 && c <= PAR_WORKERS_MAX)) &&
                 strcmp(argv[1], "heal") == 0 && parse_u64(argv[3], &a) == 0 &&
                 (strcmp(argv[4], "all") == 0 ? (b = UINT64_MAX, 1) : parse_u64(argv[4], &b) == 0))
                r = run_heal(argv[2], a, b, argc == 6 ? (unsigned) c : 0);
        else if (argc == 3 && strcmp(argv[1], "floor") == 0)
                r = run_floor(argv[2]);
        else if ((argc == 3 || (argc == 4 && parse_u64(argv[3], &a) == 0 && a >= 1 && a <= 64)) &&
                 (strcmp(argv[1], "rules") == 0 || strcmp(argv[1], "rulesmin") == 0 ||
                  strcmp(argv[1], "statwalk") == 0))
                r = run_bound(argv[2],
                              strcmp(argv[1], "rules") == 0      ? BOUND_RULES
                              : strcmp(argv[1], "rulesmin") == 0 ? BOUND_RULES_MIN
                                                                 : BOUND_STATWALK,
                              argc == 4 ? (unsigned) a : 1);
        else {
                usage();
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "bench-disk-reclaim: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
