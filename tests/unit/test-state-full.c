/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libheal state on a full filesystem: a write (durable, unsynced, or a group)
 * fails with -ENOSPC, the old records stay intact, no temp file is left, and a
 * budget take spends nothing; with a reserve made while there was room, the
 * first writes still go through on it and say so. Needs a private tmpfs (root or a user
 * namespace); skipped, saying why, when neither is available. */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "heal/budget.h"
#include "heal/cleanup.h"
#include "heal/state.h"
#include "test-util.h"

static char *path_join(const char *a, const char *b) {
        char *p;
        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

static int write_text(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = (ssize_t) strlen(text);
        return write(fd, text, (size_t) n) == n ? 0 : -errno;
}

/* A mount namespace of our own, so the tmpfs is private and goes away with us.
 * Returns 0, or -errno when the kernel or our privileges do not allow it. */
static int private_mount_ns(void) {
        if (geteuid() == 0) {
                if (unshare(CLONE_NEWNS) < 0)
                        return -errno;
        } else {
                uid_t uid = geteuid();
                gid_t gid = getegid();
                char map[64];

                if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                        return -errno;
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) uid);
                if (write_text("/proc/self/uid_map", map) < 0)
                        return -EPERM;
                (void) write_text("/proc/self/setgroups", "deny");
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) gid);
                if (write_text("/proc/self/gid_map", map) < 0)
                        return -EPERM;
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        return 0;
}

static int count_temps(const char *dir) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        int n = 0;

        ASSERT_TRUE(d);
        for (struct dirent *de; (de = readdir(d));)
                if (strncmp(de->d_name, ".#", 2) == 0)
                        n++;
        return n;
}

static json_t *padded(int version, size_t len) {
        _cleanup_free_ char *pad = malloc(len + 1);
        ASSERT_TRUE(pad);
        memset(pad, 'f', len);
        pad[len] = '\0';
        return json_pack("{s:i, s:s}", "version", version, "pad", pad);
}

/* Writes @path until the filesystem has no block left. */
static void fill(const char *path) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        char chunk[4096];

        ASSERT_TRUE(fd >= 0);
        memset(chunk, 'z', sizeof(chunk));
        /* A short write is the last bytes that fit; the next one fails. */
        while (write(fd, chunk, sizeof(chunk)) >= 0)
                ;
        ASSERT_EQ(errno, ENOSPC);
        struct statvfs sv;
        ASSERT_OK(statvfs(path, &sv));
        ASSERT_EQ(sv.f_bavail, 0);
}

static void test_full(const char *mnt) {
        _cleanup_free_ char *dir = path_join(mnt, "state");
        _cleanup_free_ char *nsdir = path_join(dir, "budget");
        _cleanup_free_ char *filler = path_join(mnt, "filler");
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_json_ json_t *old = padded(1, 200), *big = padded(2, 8192), *same = padded(3, 200);
        _cleanup_json_ json_t *got = NULL, *got2 = NULL, *got3 = NULL;
        int lock_fd = -EBADF;

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_OK(heal_state_write(s, "budget", "global", old));
        /* Lock files are made while there is room, as a running host would have them. */
        ASSERT_OK(heal_state_lock(s, "budget", "global", &lock_fd));
        closep(&lock_fd);

        fill(filler);

        ASSERT_EQ(heal_state_write(s, "budget", "global", big), -ENOSPC);
        ASSERT_EQ(count_temps(nsdir), 0);
        ASSERT_EQ(heal_state_write(s, "budget", "global", same), -ENOSPC);
        ASSERT_EQ(count_temps(nsdir), 0);
        ASSERT_EQ(heal_state_write_flags(s, "budget", "global", big, HEAL_STATE_WRITE_NOSYNC), -ENOSPC);
        ASSERT_EQ(count_temps(nsdir), 0);
        /* A group fails before any rename: none of it lands. */
        const heal_state_entry group[] = { { "global", same }, { "global-2", big } };
        ASSERT_EQ(heal_state_write_many(s, "budget", group, ELEMENTSOF(group)), -ENOSPC);
        ASSERT_EQ(count_temps(nsdir), 0);
        ASSERT_EQ(heal_state_read(s, "budget", "global-2", NULL), -ENOENT);

        /* The old record is intact and the guards can still lock and read. */
        ASSERT_OK(heal_state_read(s, "budget", "global", &got));
        ASSERT_TRUE(json_equal(got, old));
        ASSERT_OK(heal_state_lock(s, "budget", "global", &lock_fd));
        closep(&lock_fd);

        /* Reopening on a full fs works too (the sweep must not need space). */
        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_OK(heal_state_read(s, "budget", "global", &got2));
        ASSERT_TRUE(json_equal(got2, old));

        /* Once space is back, writes work again. */
        ASSERT_OK(unlink(filler));
        ASSERT_OK(heal_state_write(s, "budget", "global", big));
        ASSERT_OK(heal_state_read(s, "budget", "global", &got3));
        ASSERT_TRUE(json_equal(got3, big));
        ASSERT_EQ(count_temps(nsdir), 0);
}

/* A take on a full filesystem is refused and spends no token of any bucket. */
static void test_take_full(const char *mnt) {
        _cleanup_free_ char *dir = path_join(mnt, "take");
        _cleanup_free_ char *nsdir = path_join(dir, "budget");
        _cleanup_free_ char *filler = path_join(mnt, "filler2");
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        const uint64_t now = UINT64_C(1700000000) * 1000000;
        const heal_budget_req reqs[] = {
                { "global", { 5, 600 } },
                { "class/c", { 4, 600 } },
                { "target/c/t", { 3, 600 } },
        };
        size_t exhausted;

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(heal_budget_take(s, "budget", reqs, ELEMENTSOF(reqs), now, &exhausted), 1);
        fill(filler);

        ASSERT_EQ(heal_budget_take(s, "budget", reqs, ELEMENTSOF(reqs), now, &exhausted), -ENOSPC);
        ASSERT_EQ(count_temps(nsdir), 0);
        for (size_t i = 0; i < ELEMENTSOF(reqs); i++) {
                uint32_t left = 0;
                ASSERT_OK(heal_budget_peek(s, "budget", &reqs[i], now, &left));
                ASSERT_EQ(left, reqs[i].spec.actions - 1);
        }
        ASSERT_OK(unlink(filler));
        ASSERT_EQ(heal_budget_take(s, "budget", reqs, ELEMENTSOF(reqs), now, &exhausted), 1);
}

static bool reserve_present(const char *dir) {
        _cleanup_free_ char *path = path_join(dir, ".reserve");
        struct stat st;

        if (stat(path, &st) < 0) {
                ASSERT_EQ(errno, ENOENT);
                return false;
        }
        ASSERT_EQ(st.st_mode & 07777, 0600);
        ASSERT_EQ(st.st_size, 1 << 20);
        /* Allocated, not sparse: unlinking it really frees space. */
        ASSERT_TRUE((uint64_t) st.st_blocks * 512 >= (1 << 20));
        return true;
}

/* On a 4 MiB tmpfs the open makes the reserve; once the rest is full, a write
 * releases it and lands, the handle says so; the next write that does not fit
 * fails with the last record intact; a reopen makes the reserve again only
 * when there is room. The 64 KiB tests above never get one (too small). */
static void test_reserve(const char *mnt) {
        _cleanup_free_ char *dir = path_join(mnt, "state");
        _cleanup_free_ char *nsdir = path_join(dir, "budget");
        _cleanup_free_ char *filler = path_join(mnt, "filler");
        _cleanup_free_ char *filler2 = path_join(mnt, "filler2");
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_json_ json_t *old = padded(1, 200), *next = padded(2, 8192), *last = padded(3, 8192);
        _cleanup_json_ json_t *got = NULL, *got2 = NULL, *got3 = NULL;

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_TRUE(reserve_present(dir));
        ASSERT_OK(heal_state_write(s, "budget", "global", old));
        ASSERT_TRUE(!heal_state_reserve_used(s));

        fill(filler);
        ASSERT_OK(heal_state_write(s, "budget", "global", next));
        ASSERT_TRUE(heal_state_reserve_used(s));
        ASSERT_TRUE(!reserve_present(dir));
        ASSERT_OK(heal_state_read(s, "budget", "global", &got));
        ASSERT_TRUE(json_equal(got, next));

        /* Beyond the reserve: full again, nothing left to release. */
        fill(filler2);
        ASSERT_EQ(heal_state_write(s, "budget", "global", last), -ENOSPC);
        ASSERT_EQ(count_temps(nsdir), 0);
        ASSERT_OK(heal_state_read(s, "budget", "global", &got2));
        ASSERT_TRUE(json_equal(got2, next));
        ASSERT_TRUE(heal_state_reserve_used(s));

        /* A reopen without room makes none (and has used none). */
        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_TRUE(!reserve_present(dir));
        ASSERT_TRUE(!heal_state_reserve_used(s));

        /* With room again it is back, and a group write can use it too. */
        ASSERT_OK(unlink(filler));
        ASSERT_OK(unlink(filler2));
        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_TRUE(reserve_present(dir));
        fill(filler);
        const heal_state_entry group[] = { { "global", last }, { "global-2", old } };
        ASSERT_OK(heal_state_write_many(s, "budget", group, ELEMENTSOF(group)));
        ASSERT_TRUE(heal_state_reserve_used(s));
        ASSERT_OK(heal_state_read(s, "budget", "global", &got3));
        ASSERT_TRUE(json_equal(got3, last));
        ASSERT_OK(unlink(filler));
}

int main(void) {
        _cleanup_free_ char *tmp = test_tmpdir();
        _cleanup_free_ char *mnt = path_join(tmp, "mnt");
        int r;

        ASSERT_OK(mkdir(mnt, 0700));
        r = private_mount_ns();
        if (r >= 0 && mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") < 0)
                r = -errno;
        if (r < 0) {
                fprintf(stderr,
                        "skipping the full-filesystem test: cannot mount a private tmpfs "
                        "(%s; needs root or unprivileged user namespaces)\n",
                        strerror(-r));
                test_rm_rf(tmp);
                return TEST_SKIP;
        }

        fprintf(stderr, "full filesystem: private 64 KiB tmpfs at %s (%s)\n", mnt,
                geteuid() == 0 ? "root" : "user namespace");
        test_full(mnt);
        test_take_full(mnt);
        ASSERT_OK(umount2(mnt, MNT_DETACH));

        ASSERT_OK(mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700"));
        test_reserve(mnt);
        ASSERT_OK(umount2(mnt, MNT_DETACH));
        test_rm_rf(tmp);
        return 0;
}
