/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-reclaim safety: bad roots refused, symlinks never followed, only
 * single-link regular files without sticky bit removed, locks respected,
 * depth capped, mounts never crossed, races with a symlink swap lost by the
 * attacker, emptied directories (never the root) removed. */
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "disk-fixture.h"
#include "heal/cleanup.h"
#include "plan.h"

#define MA (RECLAIM_TIME_MTIME | RECLAIM_TIME_ATIME)

/* A socket file at @path, nobody listening. */
static void make_socket(const char *path) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(s >= 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        ASSERT_TRUE(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        ASSERT_OK(bind(s, (struct sockaddr *) &sa, sizeof(sa)));
        close(s);
}

static reclaim_source src_all(const char *root) {
        return (reclaim_source) { .name = "t", .root = root, .min_age_s = DAY_S, .times = MA };
}

static reclaim_plan *plan_all(const char *root, unsigned max_depth) {
        reclaim_source s = src_all(root);
        reclaim_plan *p = NULL;
        char *error = NULL;

        s.max_depth = max_depth;
        int r = reclaim_plan_build(&s, 1, UINT64_MAX, UINT64_MAX, UINT64_MAX, fx_now_usec(), &p, &error);
        if (r < 0)
                fprintf(stderr, "plan of %s failed: %s\n", root, error);
        ASSERT_EQ(r, 0);
        free(error);
        return p;
}

static bool plan_has(const reclaim_plan *p, const char *relpath) {
        for (size_t i = 0; i < p->n_files; i++)
                if (strcmp(p->files[i].relpath, relpath) == 0)
                        return true;
        return false;
}

static int execute(reclaim_plan *p, reclaim_result *res) {
        *res = (reclaim_result) {};
        return reclaim_plan_execute(p, NULL, res);
}

static void expect_refused(const char *root, int err, unsigned times, unsigned depth) {
        reclaim_source s = { .name = "bad", .root = root, .min_age_s = DAY_S, .times = times, .max_depth = depth };
        reclaim_plan *p = (reclaim_plan *) 0x1; /* must stay untouched */
        char *error = NULL;

        ASSERT_EQ(reclaim_source_check(&s, &error), -err);
        ASSERT_TRUE(error && strstr(error, "bad"));
        printf("refused %s: %s\n", root ? root : "(null)", error);
        free(error);
        error = NULL;
        ASSERT_EQ(reclaim_plan_build(&s, 1, UINT64_MAX, UINT64_MAX, UINT64_MAX, fx_now_usec(), &p, &error), -err);
        ASSERT_TRUE(p == (reclaim_plan *) 0x1);
        ASSERT_TRUE(error);
        free(error);
}

/* "Everything" must never come from a bad root: each is refused with a
 * reason, and the files behind it survive. */
static void test_bad_sources(void) {
        _cleanup_free_ char *base = test_tmpdir();
        _cleanup_free_ char *real = fx_path(base, "real");
        _cleanup_free_ char *link = fx_path(base, "link");
        _cleanup_free_ char *via = fx_path(base, "link/sub");
        _cleanup_free_ char *dot = fx_path(base, "real/./sub");
        _cleanup_free_ char *dotdot = fx_path(base, "real/../real");
        _cleanup_free_ char *slash = fx_path(base, "real/");
        _cleanup_free_ char *missing = fx_path(base, "missing");
        _cleanup_free_ char *file = fx_path(base, "real/sub/old");

        fx_file(base, "real/sub/old", 10, 9 * DAY_S);
        ASSERT_OK(symlink(real, link));

        expect_refused(NULL, EINVAL, MA, 0);
        expect_refused("relative/dir", EINVAL, MA, 0);
        expect_refused("/", EINVAL, MA, 0);
        expect_refused("//", EINVAL, MA, 0);
        expect_refused(missing, ENOENT, MA, 0);
        expect_refused(link, ELOOP, MA, 0);
        expect_refused(via, ELOOP, MA, 0);
        expect_refused(dot, EINVAL, MA, 0);
        expect_refused(dotdot, EINVAL, MA, 0);
        expect_refused(slash, EINVAL, MA, 0);
        expect_refused(file, ENOTDIR, MA, 0);
        expect_refused(real, EINVAL, 0, 0);
        expect_refused(real, EINVAL, 1U << 7, 0);
        expect_refused(real, EINVAL, MA, RECLAIM_DEPTH_MAX + 1);

        /* One bad source refuses the good ones with it. */
        reclaim_source two[2] = { src_all(real), src_all(missing) };
        reclaim_plan *p = NULL;
        ASSERT_EQ(reclaim_plan_build(two, 2, UINT64_MAX, UINT64_MAX, UINT64_MAX, fx_now_usec(), &p, NULL), -ENOENT);
        ASSERT_TRUE(!p);

        char *bad_pat[] = { (char *) "sub/*", NULL };
        reclaim_source pat = src_all(real);
        pat.patterns = bad_pat;
        ASSERT_EQ(reclaim_source_check(&pat, NULL), -EINVAL);

        /* The root swapped for a symlink after planning: execution stops, nothing removed. */
        _cleanup_reclaim_plan_ reclaim_plan *q = plan_all(real, 0);
        ASSERT_EQ(q->n_files, 1);
        _cleanup_free_ char *moved = fx_path(base, "moved");
        ASSERT_OK(rename(real, moved));
        ASSERT_OK(symlink(moved, real));
        reclaim_result res;
        int r = execute(q, &res);
        ASSERT_TRUE(r == -ELOOP);
        ASSERT_EQ(res.freed_files, 0);
        ASSERT_TRUE(fx_exists(base, "moved/sub/old"));
        reclaim_result_done(&res);

        /* ... or for another directory of the same name. */
        ASSERT_OK(unlink(real));
        fx_file(base, "real/sub/old", 10, 9 * DAY_S);
        ASSERT_EQ(execute(q, &res), -ESTALE);
        ASSERT_TRUE(fx_exists(base, "real/sub/old"));
        reclaim_result_done(&res);
        test_rm_rf(base);
}

/* Symlinks to a file and to a directory outside the root: neither they nor
 * their targets are touched. */
static void test_symlinks_not_followed(void) {
        _cleanup_free_ char *base = test_tmpdir();
        _cleanup_free_ char *root = fx_path(base, "root");
        _cleanup_free_ char *cfile = fx_path(base, "canary-file");
        _cleanup_free_ char *cdir = fx_path(base, "canary-dir");
        _cleanup_free_ char *l1 = fx_path(root, "link-file");
        _cleanup_free_ char *l2 = fx_path(root, "link-dir");
        _cleanup_free_ char *l3 = fx_path(root, "sub/up");

        fx_file(base, "canary-file", 10, 9 * DAY_S);
        fx_file(base, "canary-dir/old", 10, 9 * DAY_S);
        fx_file(base, "root/sub/plain", 10, 9 * DAY_S);
        ASSERT_OK(symlink(cfile, l1));
        ASSERT_OK(symlink(cdir, l2));
        ASSERT_OK(symlink("../..", l3));
        fx_age(l1, 9 * DAY_S);

        _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
        ASSERT_EQ(p->n_files, 1);
        ASSERT_STREQ(p->files[0].relpath, "sub/plain");

        reclaim_result res;
        ASSERT_EQ(execute(p, &res), 1);
        ASSERT_TRUE(fx_exists(base, "canary-file"));
        ASSERT_TRUE(fx_exists(base, "canary-dir/old"));
        ASSERT_TRUE(fx_exists(root, "link-file"));
        ASSERT_TRUE(fx_exists(root, "link-dir"));
        ASSERT_TRUE(fx_exists(root, "sub/up"));
        ASSERT_TRUE(!fx_exists(root, "sub/plain"));
        reclaim_result_done(&res);
        test_rm_rf(base);
}

/* Hard links, sockets, FIFOs, devices, sticky files and lost+found are never
 * planned, so never removed. */
static void test_special_files(void) {
        _cleanup_free_ char *root = test_tmpdir();
        _cleanup_free_ char *h1 = fx_path(root, "h1"), *h2 = fx_path(root, "h2");
        _cleanup_free_ char *sock = fx_path(root, "sock"), *fifo = fx_path(root, "fifo");
        _cleanup_free_ char *sticky = fx_path(root, "sticky"), *dev = fx_path(root, "dev");
        bool have_dev = false;

        fx_file(root, "plain", 10, 9 * DAY_S);
        fx_file(root, "h1", 10, 9 * DAY_S);
        ASSERT_OK(link(h1, h2));
        fx_file(root, "sticky", 10, 9 * DAY_S);
        ASSERT_OK(chmod(sticky, 01644));
        fx_age(sticky, 9 * DAY_S);
        fx_file(root, "lost+found/old", 10, 9 * DAY_S);
        fx_file(root, "deep/lost+found/old", 10, 9 * DAY_S);

        make_socket(sock);
        fx_age(sock, 9 * DAY_S);
        ASSERT_OK(mkfifo(fifo, 0644));
        fx_age(fifo, 9 * DAY_S);
        if (mknod(dev, S_IFCHR | 0600, makedev(1, 3)) == 0) {
                have_dev = true;
                fx_age(dev, 9 * DAY_S);
        } else
                printf("no device node test (mknod: %s)\n", strerror(errno));

        _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
        ASSERT_EQ(p->n_files, 1);
        ASSERT_STREQ(p->files[0].relpath, "plain");

        reclaim_result res;
        ASSERT_EQ(execute(p, &res), 1);
        const char *survivors[] = { "h1", "h2", "sticky", "lost+found/old", "deep/lost+found/old", "sock", "fifo" };
        for (size_t i = 0; i < ELEMENTSOF(survivors); i++)
                ASSERT_TRUE(fx_exists(root, survivors[i]));
        ASSERT_TRUE(!have_dev || fx_exists(root, "dev"));
        ASSERT_TRUE(!fx_exists(root, "plain"));
        reclaim_result_done(&res);
        test_rm_rf(root);
}

/* A file another process holds a flock on is skipped as locked. */
static void test_locked_file(void) {
        _cleanup_free_ char *root = test_tmpdir();
        _cleanup_free_ char *locked = fx_path(root, "locked");
        int ready[2], release[2];
        char c;

        fx_file(root, "locked", 10, 9 * DAY_S);
        fx_file(root, "free", 10, 8 * DAY_S);
        _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
        ASSERT_EQ(p->n_files, 2);

        ASSERT_OK(pipe(ready));
        ASSERT_OK(pipe(release));
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                close(release[1]); /* so the read below sees the parent close its end */
                int fd = open(locked, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || flock(fd, LOCK_EX) < 0)
                        _exit(1);
                if (write(ready[1], "x", 1) != 1)
                        _exit(1);
                (void) !read(release[0], &c, 1); /* until the parent is done */
                _exit(0);
        }
        close(ready[1]);
        close(release[0]);
        ASSERT_EQ(read(ready[0], &c, 1), 1);

        reclaim_result res;
        ASSERT_EQ(execute(p, &res), 1);
        ASSERT_EQ(p->files[0].outcome, RECLAIM_SKIP_LOCKED);
        ASSERT_EQ(p->files[1].outcome, RECLAIM_DELETED);
        ASSERT_EQ(res.sources[0].skipped[RECLAIM_SKIP_LOCKED], 1);
        ASSERT_TRUE(fx_exists(root, "locked"));
        ASSERT_TRUE(!fx_exists(root, "free"));

        close(release[1]);
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(ready[0]);
        reclaim_result_done(&res);
        test_rm_rf(root);
}

static void test_depth_cap(void) {
        _cleanup_free_ char *root = test_tmpdir();

        fx_file(root, "l1", 10, 9 * DAY_S);
        fx_file(root, "a/l2", 10, 9 * DAY_S);
        fx_file(root, "a/b/l3", 10, 9 * DAY_S);
        fx_file(root, "a/b/c/l4", 10, 9 * DAY_S);

        unsigned depth[] = { 1, 2, 3, 0 };
        size_t expect[] = { 1, 2, 3, 4 };
        for (size_t i = 0; i < ELEMENTSOF(depth); i++) {
                _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, depth[i]);
                ASSERT_EQ(p->n_files, expect[i]);
                ASSERT_TRUE(plan_has(p, "l1"));
                ASSERT_EQ(plan_has(p, "a/b/l3"), expect[i] >= 3);
        }
        test_rm_rf(root);
}

/* Directories the run emptied go, others stay, and never the root. */
static void test_empty_dirs(void) {
        _cleanup_free_ char *root = test_tmpdir();
        _cleanup_free_ char *c = fx_path(root, "c"), *ef = fx_path(root, "e/f");

        fx_file(root, "a/b/old", 10, 9 * DAY_S);
        ASSERT_OK(mkdir(c, 0755));
        fx_file(root, "d/old", 10, 9 * DAY_S);
        fx_file(root, "d/young", 10, 0);
        fx_file(root, "e/old", 10, 9 * DAY_S);
        ASSERT_OK(mkdir(ef, 0755));
        fx_file(root, "top", 10, 9 * DAY_S);

        _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
        ASSERT_EQ(p->n_files, 4);
        reclaim_result res;
        ASSERT_EQ(execute(p, &res), 4);
        ASSERT_TRUE(!fx_exists(root, "a/b"));
        ASSERT_TRUE(!fx_exists(root, "a"));
        ASSERT_TRUE(fx_exists(root, "c"));
        ASSERT_TRUE(fx_exists(root, "d/young"));
        ASSERT_TRUE(fx_exists(root, "e/f"));
        ASSERT_EQ(res.dirs_removed, 2);
        reclaim_result_done(&res);

        test_rm_rf(root);

        /* Everything removed: the directories go, the root stays. */
        _cleanup_free_ char *root2 = test_tmpdir();
        fx_file(root2, "x/y/old", 10, 9 * DAY_S);
        fx_file(root2, "top", 10, 9 * DAY_S);
        _cleanup_reclaim_plan_ reclaim_plan *q = plan_all(root2, 0);
        ASSERT_EQ(execute(q, &res), 2);
        ASSERT_EQ(res.dirs_removed, 2);
        ASSERT_TRUE(!fx_exists(root2, "x"));
        struct stat st;
        ASSERT_OK(stat(root2, &st));
        ASSERT_TRUE(S_ISDIR(st.st_mode));
        reclaim_result_done(&res);
        test_rm_rf(root2);
}

/* Between plan and execution: touched, replaced, gone, hard-linked, or its
 * directory swapped for another: each skipped with its reason. */
static void test_changed_since_plan(void) {
        _cleanup_free_ char *base = test_tmpdir();
        _cleanup_free_ char *root = fx_path(base, "root");
        _cleanup_free_ char *touched = fx_path(root, "touched"), *replaced = fx_path(root, "replaced");
        _cleanup_free_ char *gone = fx_path(root, "gone"), *linked = fx_path(root, "linked");
        _cleanup_free_ char *link2 = fx_path(base, "link2");
        _cleanup_free_ char *dir = fx_path(root, "dir"), *dir2 = fx_path(root, "dir2");

        const char *names[] = { "touched", "replaced", "gone", "linked", "dir/f", "ok" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                fx_file(root, names[i], 10, (long) (20 - i) * DAY_S);
        _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
        ASSERT_EQ(p->n_files, ELEMENTSOF(names));

        fx_age(touched, 0);
        ASSERT_OK(unlink(replaced));
        fx_file(root, "replaced", 10, 19 * DAY_S);
        ASSERT_OK(unlink(gone));
        ASSERT_OK(link(linked, link2));
        ASSERT_OK(rename(dir, dir2));
        fx_file(root, "dir/f", 10, 16 * DAY_S);

        reclaim_result res;
        ASSERT_EQ(execute(p, &res), 1);
        reclaim_outcome want[] = { RECLAIM_SKIP_YOUNGER, RECLAIM_SKIP_CHANGED, RECLAIM_SKIP_GONE,
                                   RECLAIM_SKIP_CHANGED, RECLAIM_SKIP_PATH, RECLAIM_DELETED };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ASSERT_STREQ(p->files[i].relpath, names[i]);
                ASSERT_STREQ(reclaim_outcome_to_string(p->files[i].outcome), reclaim_outcome_to_string(want[i]));
        }
        ASSERT_EQ(res.skipped_files, 5);
        ASSERT_TRUE(fx_exists(root, "touched") && fx_exists(root, "replaced") && fx_exists(root, "dir/f"));
        ASSERT_TRUE(fx_exists(root, "dir2/f") && fx_exists(base, "link2"));
        reclaim_result_done(&res);
        test_rm_rf(base);
}

/* Between plan and execution each planned name is swapped for what the walk
 * would never have planned: a FIFO (opening it must not block), a socket, a
 * device node, a symlink to a canary. There is no statx() of the name before
 * open(): each is opened (or refused by open()) and then skipped on what the
 * fd says, and survives; the canary too. */
static void test_swapped_for_special(void) {
        _cleanup_free_ char *base = test_tmpdir();
        _cleanup_free_ char *root = fx_path(base, "root"), *canary = fx_path(base, "canary");
        _cleanup_free_ char *fifo = fx_path(root, "fifo"), *sock = fx_path(root, "sock");
        _cleanup_free_ char *dev = fx_path(root, "dev"), *link_ = fx_path(root, "link");
        const char *names[] = { "dev", "fifo", "link", "ok", "sock" };

        fx_file(base, "canary", 10, 30 * DAY_S);
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                fx_file(root, names[i], 10, (long) (20 - i) * DAY_S);
        _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
        ASSERT_EQ(p->n_files, ELEMENTSOF(names));

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(names[i], "ok") != 0) {
                        _cleanup_free_ char *path = fx_path(root, names[i]);
                        ASSERT_OK(unlink(path));
                }
        ASSERT_OK(mkfifo(fifo, 0644));
        make_socket(sock);
        bool have_dev = mknod(dev, S_IFCHR | 0600, makedev(1, 3)) == 0;
        if (!have_dev)
                printf("no device node swap (mknod: %s)\n", strerror(errno));
        ASSERT_OK(symlink(canary, link_));
        /* Not even opened through the symlink (the inode check alone would spare it). */
        int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        ASSERT_TRUE(in >= 0);
        ASSERT_TRUE(inotify_add_watch(in, canary, IN_OPEN | IN_ACCESS) >= 0);

        reclaim_result res;
        ASSERT_EQ(execute(p, &res), 1);
        char ev[4096];
        ASSERT_TRUE(read(in, ev, sizeof(ev)) < 0 && errno == EAGAIN);
        close(in);
        for (size_t i = 0; i < p->n_files; i++) {
                const reclaim_file *f = &p->files[i];
                if (strcmp(f->relpath, "ok") == 0)
                        ASSERT_EQ(f->outcome, RECLAIM_DELETED);
                else if (strcmp(f->relpath, "dev") == 0 && !have_dev)
                        ASSERT_EQ(f->outcome, RECLAIM_SKIP_GONE);
                else {
                        if (f->outcome != RECLAIM_SKIP_CHANGED)
                                fprintf(stderr, "%s: %s\n", f->relpath, reclaim_outcome_to_string(f->outcome));
                        ASSERT_EQ(f->outcome, RECLAIM_SKIP_CHANGED);
                }
        }
        struct stat st;
        ASSERT_OK(lstat(fifo, &st));
        ASSERT_TRUE(S_ISFIFO(st.st_mode));
        ASSERT_OK(lstat(sock, &st));
        ASSERT_TRUE(S_ISSOCK(st.st_mode));
        ASSERT_OK(lstat(link_, &st));
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        ASSERT_TRUE(!have_dev || (lstat(dev, &st) == 0 && S_ISCHR(st.st_mode)));
        ASSERT_OK(stat(canary, &st));
        ASSERT_EQ(st.st_size, 10);
        ASSERT_TRUE(!fx_exists(root, "ok"));
        reclaim_result_done(&res);
        test_rm_rf(base);
}

/* Without any capability (a root test would read through mode 000 otherwise). */
static void drop_all_caps(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};
        ASSERT_OK((int) syscall(SYS_capset, &h, d));
}

/* A directory the walk cannot open (permissions here, an I/O error alike) is
 * skipped and counted in the plan and its audit summary, not passed over in
 * silence; the rest of the source is planned. */
static void test_unreadable_dir(void) {
        _cleanup_free_ char *root = test_tmpdir();
        _cleanup_free_ char *locked = fx_path(root, "locked");
        int status;

        fx_file(root, "ok/f", 10, 9 * DAY_S);
        fx_file(root, "locked/g", 10, 9 * DAY_S);
        ASSERT_OK(chmod(locked, 0));

        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                reclaim_source s = src_all(root);
                reclaim_plan *p = NULL;
                drop_all_caps();
                int r = reclaim_plan_build(&s, 1, UINT64_MAX, UINT64_MAX, UINT64_MAX, fx_now_usec(), &p, NULL);
                bool ok = r == 0 && p->n_files == 1 && strcmp(p->files[0].relpath, "ok/f") == 0 &&
                          p->sources[0].unreadable_dirs == 1;
                if (!ok)
                        fprintf(stderr, "unreadable: r=%d files=%zu unreadable=%llu\n", r, p ? p->n_files : 0,
                                p ? (unsigned long long) p->sources[0].unreadable_dirs : 0ULL);
                _exit(ok ? 0 : 1);
        }
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* Readable again: nothing is counted. */
        ASSERT_OK(chmod(locked, 0755));
        _cleanup_reclaim_plan_ reclaim_plan *q = plan_all(root, 0);
        ASSERT_EQ(q->n_files, 2);
        ASSERT_EQ(q->sources[0].unreadable_dirs, 0);
        test_rm_rf(root);
}

static int stop_ping(void *ud) {
        int *n = ud;
        ++*n;
        return -ECANCELED;
}

static void make_files(const char *root, int n) {
        char rel[32];
        for (int i = 0; i < n; i++) {
                snprintf(rel, sizeof(rel), "d%d/f%04d", i % 10, i);
                fx_file(root, rel, 0, 9 * DAY_S);
        }
}

/* The ping comes while the walk or the removals progress, from the calling
 * thread; its error stops every worker where it is. A walk so stopped refuses
 * the plan; a removal so stopped has counted what it removed, and what it did
 * not reach stays "planned" and on disk. The ping comes after 1 ms of progress:
 * a run that ends before the calling thread first looks (a loaded machine) is
 * tried again, and three such runs in a row fail the test. */
static void test_ping(void) {
        _cleanup_free_ char *root = test_tmpdir();
        enum { N = 10000, TRIES = 3 };
        int pings = 0, tries;
        reclaim_run_opts o = { .workers = 2, .ping = { .fn = stop_ping, .userdata = &pings, .period_ms = 1 } };
        reclaim_source s = src_all(root);

        make_files(root, N);
        for (tries = 0; tries < TRIES; tries++) {
                reclaim_plan *q = (reclaim_plan *) 0x1;
                pings = 0;
                int r = reclaim_plan_build_with(&s, 1, UINT64_MAX, UINT64_MAX, UINT64_MAX, fx_now_usec(), &o, &q,
                                                NULL);
                if (r == 0 && pings == 0) {
                        reclaim_plan_free(q);
                        continue;
                }
                ASSERT_EQ(r, -ECANCELED);
                ASSERT_TRUE(q == (reclaim_plan *) 0x1);
                ASSERT_EQ(pings, 1);
                break;
        }
        ASSERT_TRUE(tries < TRIES);

        for (tries = 0; tries < TRIES; tries++) {
                _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
                ASSERT_EQ(p->n_files, N);
                reclaim_result res = {};
                pings = 0;
                int r = reclaim_plan_execute(p, &o, &res);
                if (r == N && pings == 0) {
                        reclaim_result_done(&res);
                        make_files(root, N);
                        continue;
                }
                ASSERT_EQ(r, -ECANCELED);
                ASSERT_EQ(pings, 1);
                size_t untouched = 0, deleted = 0;
                for (size_t i = 0; i < p->n_files; i++) {
                        const reclaim_file *f = &p->files[i];
                        ASSERT_TRUE(f->outcome == RECLAIM_PLANNED || f->outcome == RECLAIM_DELETED);
                        untouched += f->outcome == RECLAIM_PLANNED;
                        deleted += f->outcome == RECLAIM_DELETED;
                        ASSERT_EQ(fx_exists(root, f->relpath), f->outcome == RECLAIM_PLANNED);
                }
                ASSERT_TRUE(untouched > 0);
                ASSERT_EQ(res.freed_files, deleted);
                ASSERT_EQ(res.skipped_files, 0);
                reclaim_result_done(&res);
                break;
        }
        ASSERT_TRUE(tries < TRIES);
        test_rm_rf(root);
}

/* A racer swaps the directory being emptied for a symlink to a canary
 * directory holding files of the same names, over and over while execute
 * runs. The canary must survive every round. */
static void test_symlink_swap_race(void) {
        _cleanup_free_ char *base = test_tmpdir();
        _cleanup_free_ char *root = fx_path(base, "root");
        _cleanup_free_ char *d = fx_path(root, "a/d"), *real = fx_path(root, "a/d.real");
        _cleanup_free_ char *a = fx_path(root, "a"), *areal = fx_path(root, "a.real");
        _cleanup_free_ char *canary = fx_path(base, "canary");
        _cleanup_free_ char *canary_a = fx_path(base, "canary-a");
        char rel[64];
        uint64_t deleted = 0, skipped = 0;
        enum { FILES = 30, ROUNDS = 200 };

        for (int i = 0; i < FILES; i++) {
                snprintf(rel, sizeof(rel), "canary/f%d", i);
                fx_file(base, rel, 10, 30 * DAY_S);
                snprintf(rel, sizeof(rel), "canary-a/d/f%d", i);
                fx_file(base, rel, 10, 30 * DAY_S);
        }

        for (int round = 0; round < ROUNDS; round++) {
                for (int i = 0; i < FILES; i++) {
                        snprintf(rel, sizeof(rel), "a/d/f%d", i);
                        fx_file(root, rel, 10, 9 * DAY_S);
                }
                fx_file(root, "a/d/young", 10, 0); /* keeps a/d from being emptied and removed */
                _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
                ASSERT_EQ(p->n_files, FILES);

                /* Odd rounds swap the leaf directory, even ones its parent. */
                const char *from = round % 2 ? d : a, *to = round % 2 ? real : areal;
                const char *target = round % 2 ? canary : canary_a;
                pid_t pid = fork();
                ASSERT_TRUE(pid >= 0);
                if (pid == 0) {
                        /* Errors ignored: the racer must keep going whatever state it finds. */
                        for (;;) {
                                (void) !rename(from, to);
                                (void) !symlink(target, from);
                                (void) !unlink(from);
                                (void) !rename(to, from);
                        }
                }

                reclaim_result res;
                int r = execute(p, &res);
                ASSERT_OK(kill(pid, SIGKILL));
                int status;
                ASSERT_EQ(waitpid(pid, &status, 0), pid);
                ASSERT_TRUE(WIFSIGNALED(status)); /* the racer never failed on its own */
                ASSERT_OK(r);
                deleted += res.freed_files;
                skipped += res.skipped_files;
                reclaim_result_done(&res);

                /* Put the tree back the right way round. */
                struct stat st;
                if (lstat(from, &st) == 0 && S_ISLNK(st.st_mode))
                        ASSERT_OK(unlink(from));
                if (lstat(to, &st) == 0)
                        ASSERT_OK(rename(to, from));

                for (int i = 0; i < FILES; i++) {
                        snprintf(rel, sizeof(rel), "canary/f%d", i);
                        ASSERT_TRUE(fx_exists(base, rel));
                        snprintf(rel, sizeof(rel), "canary-a/d/f%d", i);
                        ASSERT_TRUE(fx_exists(base, rel));
                }
        }
        printf("symlink race: %d rounds, %llu deleted, %llu skipped, canary intact\n", ROUNDS,
               (unsigned long long) deleted, (unsigned long long) skipped);
        test_rm_rf(base);
}

/* In a private mount namespace: a bind mount of the same filesystem, a tmpfs
 * and a file bind mount under the root are not entered or removed, and a
 * directory that gets a mount on it after planning is skipped. */
static int bind_mount_child(const char *base) {
        _cleanup_free_ char *root = fx_path(base, "root"), *other = fx_path(base, "other");
        _cleanup_free_ char *mnt = fx_path(root, "bind"), *tmp = fx_path(root, "tmpfs");
        _cleanup_free_ char *fmnt = fx_path(root, "filemnt"), *ffile = fx_path(other, "o3");
        _cleanup_free_ char *later = fx_path(root, "later");

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                printf("bind mount test skipped: %s\n", strerror(errno));
                return TEST_SKIP;
        }
        fx_file(base, "other/o1", 10, 9 * DAY_S);
        fx_file(base, "other/sub/o2", 10, 9 * DAY_S);
        fx_file(base, "other/o3", 10, 9 * DAY_S);
        fx_file(base, "root/plain", 10, 9 * DAY_S);
        fx_file(base, "root/filemnt", 10, 9 * DAY_S);
        fx_file(base, "root/later/f", 10, 9 * DAY_S);
        ASSERT_OK(mkdir(mnt, 0755));
        ASSERT_OK(mkdir(tmp, 0755));
        ASSERT_OK(mount(other, mnt, NULL, MS_BIND, NULL));
        ASSERT_OK(mount("tmpfs", tmp, "tmpfs", 0, "size=1m"));
        fx_file(base, "root/tmpfs/t", 10, 9 * DAY_S);
        ASSERT_OK(mount(ffile, fmnt, NULL, MS_BIND, NULL));

        struct stat a, b;
        ASSERT_OK(stat(root, &a));
        ASSERT_OK(stat(mnt, &b));
        ASSERT_EQ(a.st_dev, b.st_dev); /* same filesystem: only the mount id tells */

        _cleanup_reclaim_plan_ reclaim_plan *p = plan_all(root, 0);
        ASSERT_EQ(p->n_files, 2);
        ASSERT_TRUE(plan_has(p, "plain") && plan_has(p, "later/f"));

        ASSERT_OK(mount(other, later, NULL, MS_BIND, NULL));
        reclaim_result res;
        ASSERT_EQ(execute(p, &res), 1);
        ASSERT_EQ(res.sources[0].skipped[RECLAIM_SKIP_PATH], 1);
        ASSERT_TRUE(!fx_exists(root, "plain"));
        ASSERT_TRUE(fx_exists(base, "other/o1") && fx_exists(base, "other/sub/o2") && fx_exists(base, "other/o3"));
        ASSERT_TRUE(fx_exists(root, "tmpfs/t"));
        reclaim_result_done(&res);

        ASSERT_OK(umount(later));
        ASSERT_OK(umount(fmnt));
        ASSERT_OK(umount(tmp));
        ASSERT_OK(umount(mnt));
        ASSERT_TRUE(fx_exists(root, "later/f"));
        return 0;
}

static void test_bind_mount(void) {
        if (geteuid() != 0) {
                printf("bind mount test skipped: needs root\n");
                return;
        }
        _cleanup_free_ char *base = test_tmpdir();
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
                _exit(bind_mount_child(base));
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_TRUE(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == TEST_SKIP);
        test_rm_rf(base);
}

int main(void) {
        test_bad_sources();
        test_symlinks_not_followed();
        test_special_files();
        test_locked_file();
        test_depth_cap();
        test_empty_dirs();
        test_changed_since_plan();
        test_swapped_for_special();
        test_unreadable_dir();
        test_ping();
        test_symlink_swap_race();
        test_bind_mount();
        return 0;
}
