/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shared small helpers of libheal: atomic file replacement (content, exact
 * mode, no temp file left, the old file intact on failure), string lists,
 * JSON u64 fields, the usec clock and shadow idempotency keys. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/fileio.h"
#include "heal/guard.h"
#include "heal/json-util.h"
#include "heal/strv.h"
#include "heal/time-util.h"
#include "test-util.h"

static char *read_text(int dirfd, const char *name) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        char buf[256];
        ssize_t n;

        ASSERT_TRUE(fd >= 0);
        n = read(fd, buf, sizeof(buf) - 1);
        ASSERT_TRUE(n >= 0);
        buf[n] = '\0';
        return strdup(buf);
}

static int count_entries(const char *dir) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        int n = 0;

        ASSERT_TRUE(d);
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        return n;
}

static mode_t mode_of(int dirfd, const char *name) {
        struct stat st;

        ASSERT_OK(fstatat(dirfd, name, &st, 0));
        return st.st_mode & 07777;
}

static void test_write_atomic(const char *dir) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *path = NULL;
        struct stat before, after;

        ASSERT_TRUE(dfd >= 0);
        /* The mode is exact whatever the umask. */
        mode_t old_mask = umask(077);
        ASSERT_OK(heal_write_file_atomic(dfd, "f.prom", "one\n", 4, 0644, 0));
        umask(old_mask);
        a = read_text(dfd, "f.prom");
        ASSERT_STREQ(a, "one\n");
        ASSERT_EQ(mode_of(dfd, "f.prom"), 0644);
        ASSERT_EQ(count_entries(dir), 1);

        /* Replaced by rename: a new inode, never the old one rewritten. */
        ASSERT_OK(fstatat(dfd, "f.prom", &before, 0));
        ASSERT_OK(heal_write_file_atomic(dfd, "f.prom", "two", 3, 0600, HEAL_WRITE_NOSYNC));
        ASSERT_OK(fstatat(dfd, "f.prom", &after, 0));
        ASSERT_TRUE(before.st_ino != after.st_ino);
        b = read_text(dfd, "f.prom");
        ASSERT_STREQ(b, "two");
        ASSERT_EQ(mode_of(dfd, "f.prom"), 0600);
        ASSERT_EQ(count_entries(dir), 1);

        /* A write that fails (over RLIMIT_FSIZE: EFBIG) leaves the old file and no temp. */
        struct rlimit old_lim, lim;
        static char big[8192];
        ASSERT_OK(getrlimit(RLIMIT_FSIZE, &old_lim));
        /* Only the soft limit: raising it back needs no privilege. */
        lim = (struct rlimit){4096, old_lim.rlim_max};
        ASSERT_TRUE(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &lim));
        ASSERT_EQ(heal_write_file_atomic(dfd, "f.prom", big, sizeof(big), 0644, 0), -EFBIG);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &old_lim));
        c = read_text(dfd, "f.prom");
        ASSERT_STREQ(c, "two");
        ASSERT_EQ(count_entries(dir), 1);

        /* Not a plain name, unknown flags, no dir: refused. */
        ASSERT_EQ(heal_write_file_atomic(dfd, "a/b", "x", 1, 0600, 0), -EINVAL);
        ASSERT_EQ(heal_write_file_atomic(dfd, "g", "x", 1, 0600, 1u << 5), -EINVAL);
        ASSERT_EQ(heal_write_file_atomic(-1, "g", "x", 1, 0600, 0), -EINVAL);

        /* By path; the directory must exist. */
        ASSERT_TRUE(asprintf(&path, "%s/by-path", dir) > 0);
        ASSERT_OK(heal_write_file_atomic_path(path, "", 0, 0640, 0));
        ASSERT_EQ(mode_of(dfd, "by-path"), 0640);
        free(path);
        ASSERT_TRUE(asprintf(&path, "%s/missing/x", dir) > 0);
        ASSERT_EQ(heal_write_file_atomic_path(path, "x", 1, 0600, 0), -ENOENT);
}

static void test_temp_open(const char *dir) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char name[HEAL_TEMP_NAME_MAX];
        _cleanup_close_ int fd = heal_temp_open(dfd, name);
        _cleanup_close_ int other = -EBADF;

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(strncmp(name, HEAL_TEMP_PREFIX, strlen(HEAL_TEMP_PREFIX)), 0);
        ASSERT_EQ(strlen(name), HEAL_TEMP_NAME_MAX - 1);
        ASSERT_EQ(mode_of(dfd, name), 0600);
        /* Locked while its writer lives: a sweep's try-lock fails. */
        other = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(other >= 0);
        ASSERT_TRUE(flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK);
        ASSERT_OK(unlinkat(dfd, name, 0));
}

static void test_strv(void) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        ASSERT_OK(heal_strv_consume(&l, &n, strdup("a")));
        ASSERT_OK(heal_strv_consume(&l, &n, strdup("b")));
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(l[0], "a");
        ASSERT_STREQ(l[1], "b");
        ASSERT_TRUE(l[2] == NULL);
        /* A failed strdup() of the caller: -ENOMEM, the list as it was. */
        ASSERT_EQ(heal_strv_consume(&l, &n, NULL), -ENOMEM);
        ASSERT_EQ(n, 2);
        ASSERT_TRUE(l[2] == NULL);

        /* A set: a name already there, or NULL, adds nothing. */
        ASSERT_EQ(heal_strv_add_unique(&l, &n, "b"), 0);
        ASSERT_EQ(heal_strv_add_unique(&l, &n, NULL), 0);
        ASSERT_EQ(heal_strv_add_unique(&l, &n, "c"), 1);
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(l[2], "c");
        ASSERT_TRUE(l[3] == NULL);
}

static void test_json_u64(void) {
        _cleanup_json_ json_t *o = json_pack("{s:I, s:I, s:s, s:I}", "a", (json_int_t)42, "neg",
                                             (json_int_t)-1, "str", "7", "zero", (json_int_t)0);
        uint64_t v = 99;

        ASSERT_TRUE(o);
        ASSERT_OK(heal_json_get_u64(o, "a", &v));
        ASSERT_EQ(v, 42);
        ASSERT_OK(heal_json_get_u64(o, "zero", &v));
        ASSERT_EQ(v, 0);
        v = 99;
        ASSERT_EQ(heal_json_get_u64(o, "neg", &v), -EBADMSG);
        ASSERT_EQ(heal_json_get_u64(o, "str", &v), -EBADMSG);
        ASSERT_EQ(heal_json_get_u64(o, "absent", &v), -EBADMSG);
        ASSERT_EQ(v, 99);
        ASSERT_OK(heal_json_get_u64_or_zero(o, "absent", &v));
        ASSERT_EQ(v, 0);
        ASSERT_OK(heal_json_get_u64_or_zero(o, "a", &v));
        ASSERT_EQ(v, 42);
        ASSERT_EQ(heal_json_get_u64_or_zero(o, "neg", &v), -EBADMSG);

        _cleanup_json_ json_t *a = json_pack("[s, i, s]", "x", 1, "y");
        _cleanup_strv_free_ char **l = NULL, **none = NULL;
        ASSERT_OK(heal_json_to_strv(a, &l));
        ASSERT_STREQ(l[0], "x");
        ASSERT_STREQ(l[1], "");
        ASSERT_STREQ(l[2], "y");
        ASSERT_TRUE(l[3] == NULL);
        ASSERT_OK(heal_json_to_strv(o, &none));
        ASSERT_TRUE(none && none[0] == NULL);
}

static void test_clock_and_shadow(void) {
        struct timespec ts;
        uint64_t a, b;

        ASSERT_OK(clock_gettime(CLOCK_REALTIME, &ts));
        a = heal_now_usec(CLOCK_REALTIME);
        ASSERT_TRUE(a / USEC_PER_SEC >= (uint64_t)ts.tv_sec && a / USEC_PER_SEC <= (uint64_t)ts.tv_sec + 1);
        a = heal_now_usec(CLOCK_MONOTONIC);
        b = heal_now_usec(CLOCK_MONOTONIC);
        ASSERT_TRUE(a > 0 && b >= a);

        ASSERT_STREQ(heal_guard_shadow_key_base(HEAL_GUARD_SHADOW_PREFIX "c|t|i"), "c|t|i");
        ASSERT_TRUE(heal_guard_shadow_key_base("c|t|i") == NULL);
        ASSERT_TRUE(heal_guard_shadow_key_base("shadow") == NULL);
        ASSERT_TRUE(heal_guard_shadow_key_base(NULL) == NULL);
}

int main(void) {
        _cleanup_free_ char *dir = test_tmpdir();
        _cleanup_free_ char *dir2 = test_tmpdir();

        test_write_atomic(dir);
        test_temp_open(dir2);
        test_strv();
        test_json_u64();
        test_clock_and_shadow();
        test_rm_rf(dir);
        test_rm_rf(dir2);
        return 0;
}
