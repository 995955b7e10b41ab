/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libheal state: record format and round trip, key escaping, listing, corrupt
 * records, stale temp files, locking across processes, writers killed
 * mid-write (durable, unsynced and group writes), group writes, foreach, and
 * lock files removed under racing lockers. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/hash.h"
#include "heal/state.h"
#include "test-util.h"

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static char *path_join(const char *a, const char *b) {
        char *p;
        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

static char *record_path(heal_state *s, const char *ns, const char *key) {
        _cleanup_free_ char *name = heal_state_escape(key);
        _cleanup_free_ char *dir = path_join(heal_state_path(s), ns);
        ASSERT_TRUE(name);
        return path_join(dir, name);
}

static void write_file(const char *path, const char *content, size_t len) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, content, len), (ssize_t) len);
}

static char *read_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        ASSERT_TRUE(f);
        char *buf = NULL;
        size_t n = 0;
        if (getdelim(&buf, &n, '\0', f) < 0) {
                free(buf);
                buf = strdup(""); /* empty file */
                ASSERT_TRUE(buf);
        }
        return buf;
}

/* Files in @ns whose name starts with the temp prefix ".#". */
static int count_temps(heal_state *s, const char *ns) {
        _cleanup_free_ char *dir = path_join(heal_state_path(s), ns);
        _cleanup_closedir_ DIR *d = opendir(dir);
        int n = 0;

        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));)
                if (strncmp(de->d_name, ".#", 2) == 0)
                        n++;
        return n;
}

/* The checksum as the format defines it, computed here independently. */
static void expected_sum(json_t *data, char out[static 17]) {
        _cleanup_free_ char *dump = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
        ASSERT_TRUE(dump);
        heal_fnv1a64_hex(dump, strlen(dump), out);
}

static void test_round_trip(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_json_ json_t *a = json_pack("{s:i, s:s, s:{s:[i, f, s]}, s:b}", "n", 42, "s",
                                             "x y", "nested", "b", 1, 2.5, "z", "ok", 1);
        _cleanup_json_ json_t *b = json_pack("{s:s}", "other", "value");
        _cleanup_json_ json_t *got = NULL, *got2 = NULL, *array = json_array();
        struct stat st;
        mode_t old_umask = umask(022);

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_STREQ(heal_state_path(s), dir);
        ASSERT_TRUE(heal_state_dirfd(s) >= 0);

        ASSERT_EQ(heal_state_read(s, "test", "k", &got), -ENOENT); /* no namespace yet */
        ASSERT_OK(heal_state_write(s, "test", "k", a));
        ASSERT_OK(heal_state_read(s, "test", "k", &got));
        ASSERT_TRUE(json_equal(a, got));
        ASSERT_EQ(count_temps(s, "test"), 0);

        /* On-disk format: version, key, sum of the compact sorted dump, data. */
        _cleanup_free_ char *path = record_path(s, "test", "k");
        _cleanup_free_ char *text = read_file(path);
        _cleanup_json_ json_t *rec = json_loads(text, 0, NULL);
        char sum[17];
        ASSERT_TRUE(json_is_object(rec));
        ASSERT_EQ(json_integer_value(json_object_get(rec, "heal_state")), 1);
        ASSERT_STREQ(json_string_value(json_object_get(rec, "key")), "k");
        expected_sum(a, sum);
        ASSERT_STREQ(json_string_value(json_object_get(rec, "sum")), sum);
        ASSERT_TRUE(json_equal(json_object_get(rec, "data"), a));

        /* Modes: records 0600, namespace dir 0700. */
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0600);
        _cleanup_free_ char *nsdir = path_join(dir, "test");
        ASSERT_OK(stat(nsdir, &st));
        ASSERT_EQ(st.st_mode & 07777, 0700);

        /* Replace. */
        ASSERT_OK(heal_state_write(s, "test", "k", b));
        ASSERT_OK(heal_state_read(s, "test", "k", &got2));
        ASSERT_TRUE(json_equal(b, got2));
        ASSERT_EQ(count_temps(s, "test"), 0);

        /* Bad arguments. */
        ASSERT_EQ(heal_state_write(s, "test", "k", array), -EINVAL);
        ASSERT_EQ(heal_state_write(s, "../evil", "k", b), -EINVAL);
        ASSERT_EQ(heal_state_write(s, ".lock", "k", b), -EINVAL);
        ASSERT_EQ(heal_state_write(s, "a/b", "k", b), -EINVAL);
        ASSERT_EQ(heal_state_write(s, "", "k", b), -EINVAL);
        ASSERT_EQ(heal_state_write(s, "test", NULL, b), -EINVAL);

        /* Remove, twice. */
        ASSERT_OK(heal_state_remove(s, "test", "k"));
        ASSERT_EQ(heal_state_read(s, "test", "k", NULL), -ENOENT);
        ASSERT_EQ(heal_state_remove(s, "test", "k"), 0);
        ASSERT_EQ(heal_state_remove(s, "never-made", "k"), 0);

        /* A plain file where the state dir should be. */
        _cleanup_free_ char *file = path_join(dir, "not-a-dir");
        heal_state *bad = NULL;
        write_file(file, "x", 1);
        ASSERT_EQ(heal_state_open(file, &bad), -ENOTDIR);
        ASSERT_TRUE(!bad);
        umask(old_umask);
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        ASSERT_TRUE(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static void assert_safe_name(const char *name) {
        ASSERT_TRUE(name);
        ASSERT_TRUE(*name);
        ASSERT_TRUE(!strchr(name, '/'));
        ASSERT_TRUE(name[0] != '.');
        ASSERT_TRUE(strlen(name) <= 200);
}

static void test_escape(void) {
        static const char *const keys[] = {
                "a", "foo@bar.service", "/", ".", "..", "...", ".hidden", "a/b/../c",
                "sys-devices-x\\x2d1.device", "\\x2d", "getty@tty1.service", "a:b", "x|y|z",
                "caf\xc3\xa9 \xe2\x9c\x93", "\xff\x01\x7f", "%", "%41", "~", "a~b", "with space",
                "tab\tnew\nline", "",
        };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *e = heal_state_escape(keys[i]);
                assert_safe_name(e);
                _cleanup_free_ char *u = heal_state_unescape(e);
                ASSERT_STREQ(u, keys[i]);
                /* Distinct keys, distinct names. */
                for (size_t j = 0; j < i; j++) {
                        _cleanup_free_ char *other = heal_state_escape(keys[j]);
                        ASSERT_TRUE(strcmp(e, other) != 0);
                }
        }

        /* Names that are not canonical escapes are refused, not aliased. */
        static const char *const bad[] = { "", ".", "..", ".x", "a/b", "%2e", "%41", "%4",
                                           "%zz", "%00", "a%2", "x~0123456789abcdef" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                errno = 0;
                ASSERT_TRUE(!heal_state_unescape(bad[i]));
                ASSERT_EQ(errno, EINVAL);
        }

        /* Long keys: cut, hashed, still distinct, still safe; a '%XX' is never split. */
        _cleanup_free_ char *x300 = repeat('x', 300);
        _cleanup_free_ char *y300 = repeat('x', 300);
        _cleanup_free_ char *slash300 = repeat('/', 300);
        y300[299] = 'y';
        _cleanup_free_ char *ex = heal_state_escape(x300);
        _cleanup_free_ char *ey = heal_state_escape(y300);
        _cleanup_free_ char *es = heal_state_escape(slash300);
        assert_safe_name(ex);
        assert_safe_name(ey);
        assert_safe_name(es);
        ASSERT_TRUE(strchr(ex, '~'));
        ASSERT_TRUE(strcmp(ex, ey) != 0);
        errno = 0;
        ASSERT_TRUE(!heal_state_unescape(ex));
        ASSERT_EQ(errno, EINVAL);

        for (size_t pad = 170; pad < 200; pad++) {
                _cleanup_free_ char *k = repeat('/', 300);
                memset(k, 'a', pad);
                _cleanup_free_ char *e = heal_state_escape(k);
                assert_safe_name(e);
                char *mark = strchr(e, '~');
                ASSERT_TRUE(mark);
                ASSERT_EQ(strlen(mark), 17);
                for (char *p = e; p < mark; p++)
                        if (*p == '%')
                                ASSERT_TRUE(p + 2 < mark);
        }
}

static int strv_length(char **l) {
        int n = 0;
        while (l && l[n])
                n++;
        return n;
}

static void test_list(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_free_ char *long1 = repeat('q', 300);
        _cleanup_free_ char *long2 = repeat('/', 300);
        const char *keys[] = { "b@x.service", "a/b", ".dot", "..", "", "unit\\x2dname", long1, long2 };
        _cleanup_json_ json_t *data = json_pack("{s:i}", "v", 1);
        _cleanup_strv_free_ char **got = NULL, **empty = NULL;

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(heal_state_list(s, "list", &empty), 0);
        ASSERT_TRUE(empty && !empty[0]);

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_json_ json_t *back = NULL;
                _cleanup_json_ json_t *d = json_pack("{s:i}", "i", (int) i);
                ASSERT_OK(heal_state_write(s, "list", keys[i], d));
                ASSERT_OK(heal_state_read(s, "list", keys[i], &back));
                ASSERT_TRUE(json_equal(back, d));
        }
        /* Foreign files are not records; lock files are not either. */
        _cleanup_free_ char *foreign = path_join(dir, "list/bad%zz");
        write_file(foreign, "{}", 2);
        int lock_fd = -EBADF;
        ASSERT_OK(heal_state_lock(s, "list", "only-a-lock", &lock_fd));
        close(lock_fd);

        int n = heal_state_list(s, "list", &got);
        ASSERT_EQ(n, (int) ELEMENTSOF(keys));
        ASSERT_EQ(strv_length(got), n);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                bool found = false;
                for (int j = 0; j < n; j++)
                        found = found || strcmp(got[j], keys[i]) == 0;
                ASSERT_TRUE(found);
        }
        for (int j = 1; j < n; j++)
                ASSERT_TRUE(strcmp(got[j - 1], got[j]) < 0);

        /* The two long keys are still told apart on read. */
        ASSERT_OK(heal_state_write(s, "list", long1, data));
        _cleanup_json_ json_t *l1 = NULL, *l2 = NULL;
        _cleanup_json_ json_t *want2 = json_pack("{s:i}", "i", 7);
        ASSERT_OK(heal_state_read(s, "list", long1, &l1));
        ASSERT_TRUE(json_equal(l1, data));
        ASSERT_OK(heal_state_read(s, "list", long2, &l2));
        ASSERT_TRUE(json_equal(l2, want2));
}

static void expect_corrupt(heal_state *s, const char *key, const char *content, size_t len) {
        _cleanup_free_ char *path = record_path(s, "bad", key);
        _cleanup_json_ json_t *data = NULL;
        struct stat st;

        write_file(path, content, len);
        ASSERT_EQ(heal_state_read(s, "bad", key, &data), -EBADMSG);
        ASSERT_TRUE(!data);
        /* Left in place, untouched, for a human to look at. */
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_size, (long long) len);
        _cleanup_free_ char *again = read_file(path);
        ASSERT_TRUE(memcmp(again, content, len) == 0);
}

static void test_corrupt(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_json_ json_t *data = json_pack("{s:i, s:s}", "tokens", 3, "pad", "abcdefgh");
        char sum[17];

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_OK(heal_state_write(s, "bad", "valid", data));
        _cleanup_free_ char *valid_path = record_path(s, "bad", "valid");
        _cleanup_free_ char *valid = read_file(valid_path);
        expected_sum(data, sum);

        expect_corrupt(s, "garbage", "not json{", 9);
        expect_corrupt(s, "empty", "", 0);
        /* A record of its own key, cut mid-way, as a torn write would leave it. */
        ASSERT_OK(heal_state_write(s, "bad", "truncated", data));
        _cleanup_free_ char *trunc_path = record_path(s, "bad", "truncated");
        _cleanup_free_ char *whole = read_file(trunc_path);
        ASSERT_OK(heal_state_read(s, "bad", "truncated", NULL));
        expect_corrupt(s, "truncated", whole, strlen(whole) / 2);
        expect_corrupt(s, "truncated", whole, strlen(whole) - 1);

        _cleanup_free_ char *bad_sum = NULL, *wrong_version = NULL, *no_key = NULL,
                            *not_object = NULL;
        ASSERT_TRUE(asprintf(&bad_sum,
                             "{\"heal_state\":1,\"key\":\"bad-sum\",\"sum\":\"%s\","
                             "\"data\":{\"pad\":\"abcdefgh\",\"tokens\":4}}",
                             sum) > 0);
        expect_corrupt(s, "bad-sum", bad_sum, strlen(bad_sum));
        ASSERT_TRUE(asprintf(&wrong_version,
                             "{\"heal_state\":2,\"key\":\"wrong-version\",\"sum\":\"%s\","
                             "\"data\":{\"pad\":\"abcdefgh\",\"tokens\":3}}",
                             sum) > 0);
        expect_corrupt(s, "wrong-version", wrong_version, strlen(wrong_version));
        ASSERT_TRUE(asprintf(&no_key,
                             "{\"heal_state\":1,\"sum\":\"%s\","
                             "\"data\":{\"pad\":\"abcdefgh\",\"tokens\":3}}",
                             sum) > 0);
        expect_corrupt(s, "no-key", no_key, strlen(no_key));
        ASSERT_TRUE(asprintf(&not_object,
                             "{\"heal_state\":1,\"key\":\"not-object\",\"sum\":\"%s\",\"data\":[]}",
                             sum) > 0);
        expect_corrupt(s, "not-object", not_object, strlen(not_object));
        /* A valid record of another key, filed under this one. */
        expect_corrupt(s, "wrong-key", valid, strlen(valid));

        /* The checked-good record still reads: the checks are not just "fail". */
        _cleanup_json_ json_t *back = NULL;
        ASSERT_OK(heal_state_read(s, "bad", "valid", &back));
        ASSERT_TRUE(json_equal(back, data));

        /* Reopening does not "repair" anything either. */
        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(heal_state_read(s, "bad", "bad-sum", NULL), -EBADMSG);
}

/* The text a record had when it was json_dumps() of the whole record: what every version wrote. */
static char *dumped_record(const char *key, json_t *data) {
        _cleanup_json_ json_t *rec = NULL;
        char sum[17];

        expected_sum(data, sum);
        rec = json_pack("{s:i, s:s, s:s, s:O}", "heal_state", 1, "key", key, "sum", sum, "data", data);
        ASSERT_TRUE(rec);
        char *text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
        ASSERT_TRUE(text);
        return text;
}

/* A record is written without dumping its data twice and read without dumping it again, yet the bytes
 * are those of the format as it always was; records laid out otherwise still verify the slow way, and a
 * damaged one fails either way. */
static void test_layout(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_json_ json_t *data = json_pack("{s:i, s:s, s:{s:[i, f, s, n]}, s:s}", "z", 1, "a", "quote\" and \\",
                                                "m", "k", 7, 0.25, "\u00e9t\u00e9", "u", "x");
        _cleanup_json_ json_t *got = NULL;
        const char *keys[] = { "plain", "with space/and\"quote", "\u00fcnicode", "" };
        char sum[17];

        ASSERT_TRUE(data);
        ASSERT_OK(heal_state_open(dir, &s));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *path = record_path(s, "layout", keys[i]);
                _cleanup_free_ char *want = dumped_record(keys[i], data), *text = NULL;
                _cleanup_json_ json_t *back = NULL;

                ASSERT_OK(heal_state_write(s, "layout", keys[i], data));
                text = read_file(path);
                ASSERT_STREQ(text, want);
                ASSERT_OK(heal_state_read(s, "layout", keys[i], &back));
                ASSERT_TRUE(json_equal(back, data));
        }

        /* Another writer's layout (spaces, other order): the sum is over the canonical dump. */
        expected_sum(data, sum);
        _cleanup_free_ char *dump = json_dumps(data, JSON_INDENT(2));
        _cleanup_free_ char *spaced = NULL, *path = record_path(s, "layout", "spaced");
        ASSERT_TRUE(dump);
        ASSERT_TRUE(asprintf(&spaced, "{ \"sum\": \"%s\", \"key\": \"spaced\", \"heal_state\": 1,\n  \"data\": %s }\n",
                             sum, dump) > 0);
        write_file(path, spaced, strlen(spaced));
        ASSERT_OK(heal_state_read(s, "layout", "spaced", &got));
        ASSERT_TRUE(json_equal(got, data));

        /* One byte of the data changed, in the layout the fast check reads: caught. */
        _cleanup_free_ char *text = dumped_record("flipped", data);
        char *at = strstr(text, "\"z\":1");
        ASSERT_TRUE(at);
        at[4] = '2';
        expect_corrupt(s, "flipped", text, strlen(text));

        /* Only the four members make the text between head and tail the data alone: a record with one
         * more, whose sum is over that text (data and the extra member), is not taken for valid. */
        _cleanup_free_ char *inner = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS), *extra = NULL, *hashed = NULL;
        ASSERT_TRUE(inner);
        ASSERT_TRUE(asprintf(&hashed, "%s,\"extra\":1", inner) > 0);
        heal_fnv1a64_hex(hashed, strlen(hashed), sum);
        ASSERT_TRUE(asprintf(&extra, "{\"data\":%s,\"heal_state\":1,\"key\":\"extra\",\"sum\":\"%s\"}", hashed, sum) > 0);
        expect_corrupt(s, "extra", extra, strlen(extra));
}

static void test_stale_temp(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_json_ json_t *data = json_pack("{s:i}", "v", 7);

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_OK(heal_state_write(s, "tmp", "rec", data));

        _cleanup_free_ char *dead = path_join(dir, "tmp/.#00000000deadbeef");
        _cleanup_free_ char *live = path_join(dir, "tmp/.#00000000a11ce000");
        write_file(dead, "{\"heal_sta", 10);
        write_file(live, "{\"heal", 6);
        /* A writer still alive holds its temp file locked. */
        _cleanup_close_ int live_fd = open(live, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(live_fd >= 0);
        ASSERT_OK(flock(live_fd, LOCK_EX));
        ASSERT_EQ(count_temps(s, "tmp"), 2);

        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(access(dead, F_OK), -1);
        ASSERT_OK(access(live, F_OK));
        ASSERT_EQ(count_temps(s, "tmp"), 1);

        closep(&live_fd);
        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(count_temps(s, "tmp"), 0);

        /* Records and lock files are not swept. */
        _cleanup_json_ json_t *back = NULL;
        ASSERT_OK(heal_state_read(s, "tmp", "rec", &back));
        ASSERT_TRUE(json_equal(back, data));
}

/* Runs @fn in a child; returns its exit code (abort shows as failure). */
static int in_child(int (*fn)(heal_state *s, const void *arg), heal_state *s, const void *arg) {
        pid_t pid = fork();
        int st;

        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
                _exit(fn(s, arg));
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFEXITED(st));
        return WEXITSTATUS(st);
}

typedef struct lock_try {
        const char *key;
        uint64_t timeout_usec; /* UINT64_MAX: the default 5 s */
        int expect;
        uint64_t min_usec, max_usec;
} lock_try;

static int child_lock(heal_state *s, const void *arg) {
        const lock_try *t = arg;
        int fd = -EBADF;
        uint64_t start = mono_usec();
        int r = t->timeout_usec == UINT64_MAX ? heal_state_lock(s, "lk", t->key, &fd)
                                              : heal_state_lock_timeout(s, "lk", t->key,
                                                                        t->timeout_usec, &fd);
        uint64_t took = mono_usec() - start;

        if (r != t->expect) {
                fprintf(stderr, "lock %s: got %d, want %d\n", t->key, r, t->expect);
                return 1;
        }
        if (took < t->min_usec || took > t->max_usec) {
                fprintf(stderr, "lock %s: took %llu us\n", t->key, (unsigned long long) took);
                return 2;
        }
        if (fd >= 0)
                close(fd);
        return 0;
}

static int child_hold_and_die(heal_state *s, const void *arg) {
        int fd = -EBADF;
        return heal_state_lock(s, "lk", arg, &fd) < 0 ? 1 : 0; /* exits holding it */
}

static void test_lock(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_OK(heal_state_lock(s, "lk", "unit@a.service", &fd));

        /* Lock file: separate from the record, 0600, in a 0700 dir. */
        _cleanup_free_ char *lockdir = path_join(dir, "lk/.lock");
        _cleanup_free_ char *lockfile = path_join(lockdir, "unit@a.service");
        ASSERT_OK(stat(lockfile, &st));
        ASSERT_EQ(st.st_mode & 07777, 0600);
        ASSERT_OK(stat(lockdir, &st));
        ASSERT_EQ(st.st_mode & 07777, 0700);
        ASSERT_EQ(heal_state_read(s, "lk", "unit@a.service", NULL), -ENOENT);

        /* Another process is kept out and times out... */
        lock_try busy = { "unit@a.service", 200000, -ETIMEDOUT, 190000, 2000000 };
        ASSERT_EQ(in_child(child_lock, s, &busy), 0);
        lock_try once = { "unit@a.service", 0, -ETIMEDOUT, 0, 500000 };
        ASSERT_EQ(in_child(child_lock, s, &once), 0);
        /* ... after the documented 5 s by default ... */
        lock_try dflt = { "unit@a.service", UINT64_MAX, -ETIMEDOUT, 4900000, 8000000 };
        ASSERT_EQ(in_child(child_lock, s, &dflt), 0);
        /* ... while other keys are free. */
        lock_try other = { "unit@b.service", 0, 0, 0, 500000 };
        ASSERT_EQ(in_child(child_lock, s, &other), 0);

        /* Released on close: a waiter gets it once we let go. */
        closep(&fd);
        lock_try free_now = { "unit@a.service", 0, 0, 0, 500000 };
        ASSERT_EQ(in_child(child_lock, s, &free_now), 0);

        /* A holder that dies releases it too. */
        ASSERT_EQ(in_child(child_hold_and_die, s, "dies"), 0);
        ASSERT_OK(heal_state_lock_timeout(s, "lk", "dies", 0, &fd));
}

static void test_write_flags(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_json_ json_t *a = json_pack("{s:i}", "v", 1), *b = json_pack("{s:i}", "v", 2);
        _cleanup_json_ json_t *back = NULL, *back2 = NULL;

        ASSERT_OK(heal_state_open(dir, &s));
        /* Unsynced: the same record format, replaced by rename, no temp left. */
        ASSERT_OK(heal_state_write_flags(s, "ns", "k", a, HEAL_STATE_WRITE_NOSYNC));
        ASSERT_OK(heal_state_read(s, "ns", "k", &back));
        ASSERT_TRUE(json_equal(back, a));
        _cleanup_free_ char *path = record_path(s, "ns", "k");
        struct stat before, after;
        ASSERT_OK(stat(path, &before));
        ASSERT_OK(heal_state_write_flags(s, "ns", "k", b, HEAL_STATE_WRITE_NOSYNC));
        ASSERT_OK(stat(path, &after));
        ASSERT_TRUE(before.st_ino != after.st_ino); /* a new file, renamed over the old one */
        ASSERT_OK(heal_state_read(s, "ns", "k", &back2));
        ASSERT_TRUE(json_equal(back2, b));
        ASSERT_EQ(count_temps(s, "ns"), 0);

        /* Unknown flags and non-objects are refused without touching the record. */
        ASSERT_EQ(heal_state_write_flags(s, "ns", "k", a, 1u << 7), -EINVAL);
        ASSERT_EQ(heal_state_remove_flags(s, "ns", "k", 1u << 7), -EINVAL);
        _cleanup_json_ json_t *arr = json_array();
        ASSERT_EQ(heal_state_write_flags(s, "ns", "k", arr, HEAL_STATE_WRITE_NOSYNC), -EINVAL);
        ASSERT_OK(heal_state_read(s, "ns", "k", NULL));

        ASSERT_OK(heal_state_remove_flags(s, "ns", "k", HEAL_STATE_WRITE_NOSYNC));
        ASSERT_EQ(heal_state_read(s, "ns", "k", NULL), -ENOENT);
        ASSERT_OK(heal_state_remove_flags(s, "ns", "k", HEAL_STATE_WRITE_NOSYNC));
}

static void expect_record(heal_state *s, const char *ns, const char *key, json_t *want) {
        _cleanup_json_ json_t *got = NULL;
        ASSERT_OK(heal_state_read(s, ns, key, &got));
        ASSERT_TRUE(json_equal(got, want));
}

static void test_write_many(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_json_ json_t *v1 = json_pack("{s:i}", "v", 1), *v2 = json_pack("{s:i}", "v", 2);
        _cleanup_json_ json_t *v3 = json_pack("{s:i}", "v", 3), *arr = json_array();
        _cleanup_free_ char *longkey = repeat('L', 300);

        ASSERT_OK(heal_state_open(dir, &s));
        const heal_state_entry first[] = { { "global", v1 }, { "class/x", v2 }, { longkey, v3 } };
        ASSERT_OK(heal_state_write_many(s, "grp", first, ELEMENTSOF(first)));
        expect_record(s, "grp", "global", v1);
        expect_record(s, "grp", "class/x", v2);
        expect_record(s, "grp", longkey, v3);
        ASSERT_EQ(count_temps(s, "grp"), 0);

        /* Refused before any rename: every old record stays, no temp file left. */
        const heal_state_entry dup[] = { { "global", v3 }, { "class/x", v3 }, { "global", v2 } };
        ASSERT_EQ(heal_state_write_many(s, "grp", dup, ELEMENTSOF(dup)), -EINVAL);
        const heal_state_entry bad[] = { { "global", v3 }, { "class/x", arr } };
        ASSERT_EQ(heal_state_write_many(s, "grp", bad, ELEMENTSOF(bad)), -EINVAL);
        const heal_state_entry badkey[] = { { "global", v3 }, { NULL, v3 } };
        ASSERT_EQ(heal_state_write_many(s, "grp", badkey, ELEMENTSOF(badkey)), -EINVAL);
        ASSERT_EQ(heal_state_write_many(s, "grp", first, 0), -EINVAL);
        ASSERT_EQ(heal_state_write_many(s, "bad/ns", first, 1), -EINVAL);
        expect_record(s, "grp", "global", v1);
        expect_record(s, "grp", "class/x", v2);
        ASSERT_EQ(count_temps(s, "grp"), 0);

        /* A group of one is a plain write; a new namespace is created. */
        const heal_state_entry one[] = { { "global", v3 } };
        ASSERT_OK(heal_state_write_many(s, "grp", one, 1));
        expect_record(s, "grp", "global", v3);
        ASSERT_OK(heal_state_write_many(s, "grp2", one, 1));
        expect_record(s, "grp2", "global", v3);
}

typedef struct seen {
        char **keys;
        int n, stop_after;
} seen;

static int collect(const char *key, json_t *data, void *userdata) {
        seen *w = userdata;

        ASSERT_TRUE(json_is_object(data));
        if (w->stop_after >= 0 && w->n >= w->stop_after)
                return -ECANCELED;
        w->keys = realloc(w->keys, sizeof(char *) * (size_t) (w->n + 1));
        ASSERT_TRUE(w->keys);
        w->keys[w->n] = strdup(key);
        ASSERT_TRUE(w->keys[w->n]);
        /* The data is the record's own: its "k" says which key it was written under. */
        ASSERT_STREQ(json_string_value(json_object_get(data, "k")), key);
        w->n++;
        return 0;
}

static void seen_done(seen *w) {
        for (int i = 0; i < w->n; i++)
                free(w->keys[i]);
        free(w->keys);
}

static bool seen_has(const seen *w, const char *key) {
        for (int i = 0; i < w->n; i++)
                if (strcmp(w->keys[i], key) == 0)
                        return true;
        return false;
}

static void test_foreach(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_free_ char *long1 = repeat('a', 250), *long2 = repeat('b', 250);
        const char *keys[] = { "plain", "with/slash", "sp ace", "", long1, long2 };
        _cleanup_(seen_done) seen w = { .stop_after = -1 };

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(heal_state_foreach(s, "none", collect, &w), 0);
        ASSERT_EQ(heal_state_foreach(s, "no/ns", collect, &w), -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_json_ json_t *d = json_pack("{s:s}", "k", keys[i]);
                ASSERT_OK(heal_state_write(s, "fe", keys[i], d));
        }
        /* Not records, or not ours: skipped. A corrupt record, a foreign
         * file, a lock file, a record filed under another key's name. */
        _cleanup_free_ char *corrupt = record_path(s, "fe", "corrupt");
        write_file(corrupt, "{\"heal_state\":1", 15);
        _cleanup_free_ char *foreign = path_join(dir, "fe/bad%zz");
        write_file(foreign, "{}", 2);
        _cleanup_free_ char *plain = record_path(s, "fe", "plain");
        _cleanup_free_ char *alias = record_path(s, "fe", "alias");
        _cleanup_free_ char *text = read_file(plain);
        write_file(alias, text, strlen(text));
        int lock_fd = -EBADF;
        ASSERT_OK(heal_state_lock(s, "fe", "only-a-lock", &lock_fd));
        closep(&lock_fd);

        ASSERT_EQ(heal_state_foreach(s, "fe", collect, &w), (int) ELEMENTSOF(keys));
        ASSERT_EQ(w.n, (int) ELEMENTSOF(keys));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                ASSERT_TRUE(seen_has(&w, keys[i]));

        /* A callback's error stops the walk and comes back. */
        _cleanup_(seen_done) seen w2 = { .stop_after = 2 };
        ASSERT_EQ(heal_state_foreach(s, "fe", collect, &w2), -ECANCELED);
        ASSERT_EQ(w2.n, 2);
        ASSERT_EQ(heal_state_foreach(s, "fe", NULL, NULL), -EINVAL);
}

typedef struct waiter_arg {
        int go_fd;     /* read end: the parent says when it let go */
        int report_fd; /* write end: "L" once we hold the lock */
} waiter_arg;

/* Waits for "k" (held by the parent, whose file goes away meanwhile), says
 * when it has it, then holds it for a while. */
static int child_wait_lock(heal_state *s, const void *arg) {
        const waiter_arg *w = arg;
        int fd = -EBADF;

        int r = heal_state_lock(s, "rm", "k", &fd);
        if (r < 0) {
                fprintf(stderr, "waiting locker: %s\n", strerror(-r));
                return 1;
        }
        (void) !write(w->report_fd, "L", 1);
        char c;
        (void) !read(w->go_fd, &c, 1);
        close(fd);
        return 0;
}

static void test_unlock_remove(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_free_ char *lockfile = path_join(dir, "rm/.lock/k");
        int fd = -EBADF, other = -EBADF;

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_OK(heal_state_lock(s, "rm", "k", &fd));
        ASSERT_OK(access(lockfile, F_OK));
        ASSERT_OK(heal_state_unlock_remove(s, "rm", "k", &fd));
        ASSERT_EQ(fd, -EBADF);
        ASSERT_EQ(access(lockfile, F_OK), -1);
        /* Released: taken again at once, on a new file. */
        ASSERT_OK(heal_state_lock_timeout(s, "rm", "k", 0, &fd));
        ASSERT_OK(access(lockfile, F_OK));

        /* A locker waiting on the file we remove must not end up holding a
         * lock on the unlinked file (which would exclude nobody): it takes
         * the new one, and we are kept out while it holds it. */
        int go[2], report[2];
        ASSERT_OK(pipe2(go, O_CLOEXEC));
        ASSERT_OK(pipe2(report, O_CLOEXEC));
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                /* Our copy of the parent's lock fd would hold its lock for us. */
                closep(&fd);
                close(go[1]);
                close(report[0]);
                waiter_arg w = { go[0], report[1] };
                _exit(child_wait_lock(s, &w));
        }
        close(go[0]);
        close(report[1]);
        struct timespec pause = { 0, 100 * 1000 * 1000 };
        nanosleep(&pause, NULL); /* the child is waiting on our file by now */
        ASSERT_OK(heal_state_unlock_remove(s, "rm", "k", &fd));
        char c;
        ASSERT_EQ(read(report[0], &c, 1), 1);
        ASSERT_EQ(heal_state_lock_timeout(s, "rm", "k", 0, &other), -ETIMEDOUT);
        ASSERT_OK(access(lockfile, F_OK));
        ASSERT_EQ(write(go[1], "g", 1), 1);
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ASSERT_OK(heal_state_lock_timeout(s, "rm", "k", 0, &other));
        closep(&other);
        close(go[1]);
        close(report[0]);

        /* Not holding anything is an error; an already-gone file is not. */
        int none = -EBADF;
        ASSERT_EQ(heal_state_unlock_remove(s, "rm", "k", &none), -EBADF);
        ASSERT_OK(heal_state_lock(s, "rm", "k", &fd));
        ASSERT_OK(unlink(lockfile));
        ASSERT_OK(heal_state_unlock_remove(s, "rm", "k", &fd));
        ASSERT_EQ(fd, -EBADF);
}

/* Record i of a round: its size grows with i, so torn writes would show. */
static size_t pad_len(int64_t i) { return (size_t) (i % 64) * 700; }

static json_t *round_data(int round, int64_t i) {
        _cleanup_free_ char *pad = repeat('p', pad_len(i));
        return json_pack("{s:i, s:I, s:s}", "round", round, "i", (json_int_t) i, "pad", pad);
}

/* One write of round @round: the three ways of writing take turns (durable,
 * unsynced, and a group of two records). */
static int round_write(heal_state *s, int round, json_t *d) {
        switch (round % 3) {
        case 0:
                return heal_state_write(s, "kill", "victim", d);
        case 1:
                return heal_state_write_flags(s, "kill", "victim", d, HEAL_STATE_WRITE_NOSYNC);
        default: {
                const heal_state_entry e[] = { { "victim", d }, { "twin", d } };
                return heal_state_write_many(s, "kill", e, ELEMENTSOF(e));
        }
        }
}

/* Says "s" once running, "x" once its first write is complete, then rewrites forever. */
static _Noreturn void writer_loop(heal_state *s, int round, int notify_fd) {
        (void) !write(notify_fd, "s", 1);
        for (int64_t i = 0;; i++) {
                json_t *d = round_data(round, i);
                if (!d || round_write(s, round, d) < 0)
                        _exit(3);
                json_decref(d);
                if (i == 0)
                        (void) !write(notify_fd, "x", 1);
        }
}

/* The twin of the group writes: absent until a group write completed, whole after. */
static void check_twin(heal_state *s, bool group_complete) {
        _cleanup_json_ json_t *got = NULL;
        int r = heal_state_read(s, "kill", "twin", &got);

        if (r == -ENOENT) {
                ASSERT_TRUE(!group_complete);
                return;
        }
        ASSERT_OK(r);
        json_int_t i = json_integer_value(json_object_get(got, "i"));
        const char *pad = json_string_value(json_object_get(got, "pad"));
        ASSERT_TRUE(i >= 0 && pad);
        ASSERT_EQ(strlen(pad), pad_len(i));
}

static void check_victim(heal_state *s, int round, bool ever_complete, int *from_this_round) {
        _cleanup_json_ json_t *got = NULL;
        int r = heal_state_read(s, "kill", "victim", &got);

        if (r == -ENOENT) {
                /* Only before the first write that completed. */
                ASSERT_TRUE(!ever_complete);
                return;
        }
        ASSERT_OK(r);
        json_int_t rd = json_integer_value(json_object_get(got, "round"));
        json_int_t i = json_integer_value(json_object_get(got, "i"));
        const char *pad = json_string_value(json_object_get(got, "pad"));
        ASSERT_TRUE(rd >= 0 && rd <= round && i >= 0 && pad);
        ASSERT_EQ(strlen(pad), pad_len(i));
        if (rd == round)
                (*from_this_round)++;
}

/* Microseconds one write of the growing records takes here. */
static uint64_t write_usec(heal_state *s) {
        uint64_t start = mono_usec();

        for (int i = 0; i < 16; i++) {
                _cleanup_json_ json_t *d = round_data(-1, i);
                ASSERT_OK(heal_state_write(s, "kill", "calibrate", d));
        }
        return (mono_usec() - start) / 16 + 1;
}

static void test_killed_writer(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        bool ever_complete = false, group_complete = false;
        int from_this_round = 0;
        unsigned seed = (unsigned) (time(NULL) ^ getpid());
        uint64_t start;

        ASSERT_OK(heal_state_open(dir, &s));

        /* Kill between the child's start and its third write or so, so the
         * kills land on every step of a write (and some before the first). */
        uint64_t span = 3 * write_usec(s) + 100;
        fprintf(stderr, "killed writer: in %s, seed %u, kill within %llu us of start\n", dir, seed,
                (unsigned long long) span);
        srand(seed);

        start = mono_usec();
        for (int round = 0; round < 1000; round++) {
                int p[2];
                char c;
                ASSERT_OK(pipe2(p, O_CLOEXEC));
                pid_t pid = fork();
                ASSERT_TRUE(pid >= 0);
                if (pid == 0) {
                        close(p[0]);
                        writer_loop(s, round, p[1]);
                }
                close(p[1]);

                ASSERT_EQ(read(p[0], &c, 1), 1); /* running */
                uint64_t delay_usec = (uint64_t) rand() % span;
                struct timespec delay = { (time_t) (delay_usec / 1000000),
                                          (long) (delay_usec % 1000000) * 1000 };
                nanosleep(&delay, NULL);
                ASSERT_OK(kill(pid, SIGKILL));
                int st;
                ASSERT_EQ(waitpid(pid, &st, 0), pid);
                /* Killed, not failed on its own. */
                ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

                if (read(p[0], &c, 1) == 1) {
                        ever_complete = true;
                        group_complete = group_complete || round % 3 == 2;
                }
                close(p[0]);
                check_victim(s, round, ever_complete, &from_this_round);
                check_twin(s, group_complete);
        }
        fprintf(stderr, "killed writer: 1000 rounds in %llu ms, %d left this round's record, "
                        "%d stale temp files\n",
                (unsigned long long) (mono_usec() - start) / 1000, from_this_round,
                count_temps(s, "kill"));
        /* Otherwise the rounds proved nothing. */
        ASSERT_TRUE(ever_complete && group_complete);
        ASSERT_TRUE(from_this_round > 0);

        /* The next open sweeps whatever temp files the dead writers left. */
        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(count_temps(s, "kill"), 0);
        ASSERT_OK(heal_state_read(s, "kill", "victim", NULL));
}

/* SIGKILL tests what a write leaves in the page cache, which is the same on
 * every filesystem: use tmpfs when there is one, where fsync costs nothing
 * and 1000 rounds take seconds instead of a minute. */
static char *fast_tmpdir(void) {
        char *p = strdup("/dev/shm/heal-test-XXXXXX");
        ASSERT_TRUE(p);
        if (mkdtemp(p))
                return p;
        free(p);
        return test_tmpdir();
}

int main(void) {
        _cleanup_free_ char *tmp = test_tmpdir();
        _cleanup_free_ char *d1 = path_join(tmp, "round-trip");
        _cleanup_free_ char *d2 = path_join(tmp, "list");
        _cleanup_free_ char *d3 = path_join(tmp, "corrupt");
        _cleanup_free_ char *d4 = path_join(tmp, "temp");
        _cleanup_free_ char *d5 = path_join(tmp, "lock");
        _cleanup_free_ char *d7 = path_join(tmp, "flags");
        _cleanup_free_ char *d8 = path_join(tmp, "many");
        _cleanup_free_ char *d9 = path_join(tmp, "foreach");
        _cleanup_free_ char *d10 = path_join(tmp, "unlock-remove");
        _cleanup_free_ char *fast = fast_tmpdir();
        _cleanup_free_ char *d6 = path_join(fast, "kill");

        /* First, while this process is small: it forks 1000 times. */
        test_killed_writer(d6);
        test_escape();
        test_round_trip(d1);
        test_list(d2);
        test_corrupt(d3);
        test_layout(d3);
        test_stale_temp(d4);
        test_lock(d5);
        test_write_flags(d7);
        test_write_many(d8);
        test_foreach(d9);
        test_unlock_remove(d10);

        test_rm_rf(tmp);
        test_rm_rf(fast);
        return 0;
}
