/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Durable state: checksummed JSON records, one file per (namespace, key), replaced
 * atomically (temp + fsync + rename + fsync dir) and locked through separate files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/fileio.h"
#include "heal/hash.h"
#include "heal/paths.h"
#include "heal/state.h"
#include "heal/strv.h"
#include "heal/time-util.h"

#define STATE_VERSION 1
#define LOCK_DIR ".lock"
/* An escaped name longer than this is cut and ends in '~' + 16 hex digits of
 * the key's hash; well under NAME_MAX so every derived name fits too. */
#define NAME_LIMIT 200
#define HASH_MARK '~'
/* Records are small; anything this big is not one of ours. */
#define RECORD_MAX (16 * 1024 * 1024)
#define LOCK_POLL_NSEC (10 * 1000 * 1000)

/* Kept in the state dir so a full filesystem still takes the records of
 * one run: released (unlinked) by the first write that finds no room. */
#define RESERVE_NAME ".reserve"
#define RESERVE_BYTES (UINT64_C(1) << 20)

struct heal_state {
        int dir_fd;
        char *path;
        bool reserve_used;
};

/* ---- names ---------------------------------------------------------------- */

static bool key_char_is_safe(unsigned char c, size_t pos) {
        if (c == '.')
                return pos > 0; /* never a hidden file, never "." or ".." */
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '@' || c == ':' || c == '+' || c == ',' || c == '=';
}

static char *escape_full(const char *key) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(key);

        /* The empty key needs a name too; a lone '%' is never produced otherwise. */
        if (n == 0)
                return strdup("%");

        char *out = malloc(n * 3 + 1), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) key[i];
                if (key_char_is_safe(c, i))
                        *p++ = (char) c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        *p = '\0';
        return out;
}

char *heal_state_escape(const char *key) {
        if (!key) {
                errno = EINVAL;
                return NULL;
        }

        char *full = escape_full(key);
        if (!full || strlen(full) <= NAME_LIMIT)
                return full;

        /* Too long for a file name: keep a readable prefix (not splitting a
         * %XX), then the hash of the whole key; the record stores the key. */
        size_t cut = NAME_LIMIT - 17;
        if (full[cut - 1] == '%')
                cut -= 1;
        else if (full[cut - 2] == '%')
                cut -= 2;
        char sum[17];
        heal_fnv1a64_hex(key, strlen(key), sum);
        full[cut] = HASH_MARK;
        memcpy(full + cut + 1, sum, sizeof(sum));
        return full;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

char *heal_state_unescape(const char *name) {
        if (!name || !*name || strchr(name, HASH_MARK)) {
                errno = EINVAL;
                return NULL;
        }
        if (strcmp(name, "%") == 0)
                return strdup("");

        size_t n = strlen(name);
        _cleanup_free_ char *out = malloc(n + 1);
        if (!out)
                return NULL;
        char *p = out;
        for (size_t i = 0; i < n; i++) {
                if (name[i] != '%') {
                        *p++ = name[i];
                        continue;
                }
                int hi = i + 1 < n ? hexval(name[i + 1]) : -1;
                int lo = i + 2 < n ? hexval(name[i + 2]) : -1;
                if (hi < 0 || lo < 0 || (hi | lo) == 0) {
                        errno = EINVAL;
                        return NULL;
                }
                *p++ = (char) (hi << 4 | lo);
                i += 2;
        }
        *p = '\0';

        /* Only the canonical form is a name of ours: "a%2Eb", "%41" or a
         * stray "/" would otherwise alias or escape the namespace. */
        _cleanup_free_ char *again = escape_full(out);
        if (!again)
                return NULL;
        if (strcmp(again, name) != 0) {
                errno = EINVAL;
                return NULL;
        }
        return TAKE_PTR(out);
}

static int record_name(const char *key, char **ret) {
        if (!key)
                return -EINVAL;
        char *name = heal_state_escape(key);
        if (!name)
                return -ENOMEM;
        *ret = name;
        return 0;
}

static bool ns_is_valid(const char *ns) {
        if (!ns || !*ns || ns[0] == '.' || strlen(ns) > 64)
                return false;
        for (const char *p = ns; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                        return false;
        return true;
}

/* A fresh fd of the namespace dir; with @create it is made (0700) first. */
static int ns_open(heal_state *s, const char *ns, bool create) {
        if (!s || !ns_is_valid(ns))
                return -EINVAL;
        if (create) {
                if (mkdirat(s->dir_fd, ns, 0700) >= 0) {
                        /* Once per namespace: make the new entry itself durable. */
                        if (fsync(s->dir_fd) < 0)
                                return -errno;
                } else if (errno != EEXIST)
                        return -errno;
        }
        int fd = openat(s->dir_fd, ns, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? -errno : fd;
}

/* A DIR of @path under @dir_fd; NULL with errno set on failure. */
static DIR *dir_open_at(int dir_fd, const char *path) {
        int fd = openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return NULL;
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                close(fd);
                errno = e;
        }
        return d;
}

/* The next entry of @d: 1 and *@ret, 0 at the end, or -errno. */
static int dir_next(DIR *d, struct dirent **ret) {
        errno = 0;
        *ret = readdir(d);
        if (*ret)
                return 1;
        return errno != 0 ? -errno : 0;
}

/* ---- I/O helpers ---------------------------------------------------------- */

static int read_all(int fd, char **ret, size_t *ret_len) {
        size_t len = 0, cap = 4096;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                if (len == cap) {
                        if (cap >= RECORD_MAX)
                                return -EFBIG;
                        char *n = realloc(buf, cap * 2);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        cap *= 2;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                /* A regular file reads short only at its end, and a record
                 * never grows (it is replaced by rename): this saves the
                 * read that would return 0, a quarter of the syscalls of a
                 * read of every record (heal_state_foreach()). */
                if (len < cap)
                        break;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* ---- records -------------------------------------------------------------- */

static int data_sum(const json_t *data, char out[static 17]) {
        _cleanup_free_ char *dump = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
        if (!dump)
                return -ENOMEM;
        heal_fnv1a64_hex(dump, strlen(dump), out);
        return 0;
}

/* A record's text is json_dumps() of {"heal_state", "key", "sum", "data"} with JSON_COMPACT |
 * JSON_SORT_KEYS, so "data" comes first and, nested or not, dumps the same: the text is put together
 * around the one dump of the data the sum is taken over. RECORD_HEAD, the data, then record_tail(). */
#define RECORD_HEAD "{\"data\":"

/* What follows the data in a record of @key (a JSON string) with @sum: the same bytes json_dumps()
 * would produce for the rest of the record. */
static char *record_tail(const json_t *key, const char *sum) {
        _cleanup_free_ char *k = json_dumps(key, JSON_ENCODE_ANY | JSON_COMPACT);
        char *tail;

        if (!k || asprintf(&tail, ",\"heal_state\":%d,\"key\":%s,\"sum\":\"%s\"}", STATE_VERSION, k, sum) < 0)
                return NULL;
        return tail;
}

static int record_format(const char *key, json_t *data, char **ret, size_t *ret_len) {
        _cleanup_json_ json_t *k = json_string(key);
        _cleanup_free_ char *dump = NULL, *tail = NULL;
        char sum[17];

        /* The key rides along so list() can name records whose file name is
         * hashed, and read() can tell a record from one filed under the wrong name. */
        dump = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
        if (!k || !dump)
                return -ENOMEM;
        size_t n = strlen(dump);
        heal_fnv1a64_hex(dump, n, sum);
        tail = record_tail(k, sum);
        if (!tail)
                return -ENOMEM;

        size_t head = strlen(RECORD_HEAD), t = strlen(tail);
        char *text = malloc(head + n + t + 1);
        if (!text)
                return -ENOMEM;
        memcpy(text, RECORD_HEAD, head);
        memcpy(text + head, dump, n);
        memcpy(text + head + n, tail, t + 1);
        *ret_len = head + n + t;
        *ret = text;
        return 0;
}

/* The sum over the data's own text in @buf, when the record is laid out as record_format() writes it:
 * then that text is the dump the sum was taken over, and nothing needs dumping again. 1 verified, 0
 * not that layout (the caller dumps the parsed data instead), -ENOMEM. */
static int record_sum_raw(const char *buf, size_t len, const json_t *key, const char *sum) {
        size_t head = strlen(RECORD_HEAD);
        char got[17];

        if (strlen(sum) != 16 || len < head || memcmp(buf, RECORD_HEAD, head) != 0)
                return 0;
        _cleanup_free_ char *tail = record_tail(key, sum);
        if (!tail)
                return -ENOMEM;
        size_t t = strlen(tail);
        if (len < head + t || memcmp(buf + len - t, tail, t) != 0)
                return 0;
        heal_fnv1a64_hex(buf + head, len - head - t, got);
        return strcmp(got, sum) == 0;
}

/* Verifies one record; @key NULL accepts any key. Returns the record's data
 * and key (borrowed from *ret_rec, which the caller decrefs). */
static int record_parse(const char *buf, size_t len, const char *key, json_t **ret_rec,
                        json_t **ret_data, const char **ret_key) {
        _cleanup_json_ json_t *rec = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(rec))
                return -EBADMSG;

        json_t *version = json_object_get(rec, "heal_state");
        json_t *sum = json_object_get(rec, "sum");
        json_t *k = json_object_get(rec, "key");
        json_t *data = json_object_get(rec, "data");
        if (!json_is_integer(version) || json_integer_value(version) != STATE_VERSION ||
            !json_is_string(sum) || !json_is_string(k) || !json_is_object(data))
                return -EBADMSG;
        if (key && strcmp(json_string_value(k), key) != 0)
                return -EBADMSG;

        /* Written by record_format(): the data's text is the dump its sum is over (with nothing but
         * these four members, what lies between the head and the tail is the data alone). Anything
         * else (another writer's spacing or key order) is dumped again to check. */
        int r = json_object_size(rec) == 4 ? record_sum_raw(buf, len, k, json_string_value(sum)) : 0;
        if (r < 0)
                return r;
        if (r == 0) {
                char want[17];
                r = data_sum(data, want);
                if (r < 0)
                        return r;
                if (strcmp(want, json_string_value(sum)) != 0)
                        return -EBADMSG;
        }

        *ret_data = data;
        *ret_key = json_string_value(k);
        *ret_rec = TAKE_PTR(rec);
        return 0;
}

static int record_load(int ns_fd, const char *name, const char *key, json_t **ret_rec,
                       json_t **ret_data, const char **ret_key) {
        _cleanup_close_ int fd = openat(ns_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;

        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = read_all(fd, &buf, &len);
        if (r < 0)
                return r;
        return record_parse(buf, len, key, ret_rec, ret_data, ret_key);
}

/* One record of a group write, between its temp file and its rename. */
typedef struct pending_file {
        char *name;
        int fd;
        char tmp[HEAL_TEMP_NAME_MAX];
} pending_file;

static void pending_files_free(pending_file *p, size_t n, int dir_fd) {
        if (!p)
                return;
        for (size_t i = 0; i < n; i++) {
                /* Still open means not renamed: the temp file goes. */
                if (p[i].fd >= 0) {
                        (void) unlinkat(dir_fd, p[i].tmp, 0);
                        closep(&p[i].fd);
                }
                free(p[i].name);
        }
        free(p);
}

static int pending_file_prepare(int dir_fd, const heal_state_entry *e, pending_file *p) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        if (!json_is_object(e->data))
                return -EINVAL;
        r = record_name(e->key, &p->name);
        if (r < 0)
                return r;
        r = record_format(e->key, e->data, &text, &len);
        if (r < 0)
                return r;
        r = heal_temp_open(dir_fd, p->tmp);
        if (r < 0)
                return r;
        p->fd = r;
        return heal_write_all(p->fd, text, len);
}

static bool names_unique(const pending_file *p, size_t n) {
        for (size_t i = 1; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        if (strcmp(p[i].name, p[j].name) == 0)
                                return false;
        return true;
}

/* Every temp file is written and synced before the first rename, and the
 * dir is synced once after the last: 1 + n syncs instead of 2n. */
static int group_replace(int dir_fd, const heal_state_entry *entries, size_t n) {
        pending_file *p = calloc(n, sizeof(*p));
        size_t made = 0;
        int r = 0;

        if (!p)
                return -ENOMEM;
        for (; r >= 0 && made < n; made++) {
                p[made].fd = -EBADF;
                r = pending_file_prepare(dir_fd, &entries[made], &p[made]);
        }
        if (r >= 0 && !names_unique(p, n))
                r = -EINVAL;
        /* Start writeback of all before waiting on any, so one journal
         * commit can carry them together. */
        for (size_t i = 0; r >= 0 && i < n; i++)
                (void) sync_file_range(p[i].fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (fdatasync(p[i].fd) < 0)
                        r = -errno;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (renameat(dir_fd, p[i].tmp, dir_fd, p[i].name) < 0)
                        r = -errno;
                else
                        closep(&p[i].fd);
        }
        pending_files_free(p, made, dir_fd);
        if (r < 0)
                return r;
        return fsync(dir_fd) < 0 ? -errno : 0;
}

/* ---- stale temp files ----------------------------------------------------- */

static void temp_reap(int ns_fd, const char *name) {
        _cleanup_close_ int fd = openat(ns_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
                                                             O_NOCTTY);
        if (fd < 0)
                return;
        /* A live writer holds its temp file locked; only orphans are removed. */
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return;
        struct stat a, b;
        if (fstat(fd, &a) < 0 || fstatat(ns_fd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
                return;
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino || !S_ISREG(a.st_mode))
                return;
        (void) unlinkat(ns_fd, name, 0);
}

/* Temp files (HEAL_TEMP_PREFIX) start with '.', which no escaped key does:
 * they never show up as records, and the sweep can tell them apart. */
static void ns_sweep_dir(DIR *d) {
        for (struct dirent *de; (de = readdir(d));)
                if (strncmp(de->d_name, HEAL_TEMP_PREFIX, strlen(HEAL_TEMP_PREFIX)) == 0)
                        temp_reap(dirfd(d), de->d_name);
}

/* Best effort: a read-only or damaged state dir must still open for reading. */
static void state_sweep(int dir_fd) {
        _cleanup_closedir_ DIR *d = dir_open_at(dir_fd, ".");
        if (!d)
                return;
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
                        continue;
                _cleanup_closedir_ DIR *ns_d = dir_open_at(dirfd(d), de->d_name);
                if (ns_d)
                        ns_sweep_dir(ns_d);
        }
}

/* ---- the reserve ---------------------------------------------------------- */

/* Best effort, at open: only while the filesystem has room for the reserve
 * twice over, so making it never is what fills the disk. */
static void reserve_make(int dir_fd) {
        struct statvfs sv;
        struct stat st;

        if (fstatat(dir_fd, RESERVE_NAME, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return;
        if (fstatvfs(dir_fd, &sv) < 0 || (uint64_t) sv.f_bavail * sv.f_frsize < 2 * RESERVE_BYTES)
                return;
        _cleanup_close_ int fd = openat(dir_fd, RESERVE_NAME,
                                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return;
        /* Blocks really allocated: a sparse file would free nothing. */
        if (fallocate(fd, 0, 0, (off_t) RESERVE_BYTES) < 0)
                (void) unlinkat(dir_fd, RESERVE_NAME, 0);
}

/* Frees the reserve for a write that found no room. Returns 1 when this
 * handle released it (worth a retry), 0 when there was none. */
static int reserve_release(heal_state *s) {
        if (unlinkat(s->dir_fd, RESERVE_NAME, 0) < 0)
                return 0;
        s->reserve_used = true;
        return 1;
}

static bool is_no_space(int r) { return r == -ENOSPC || r == -EDQUOT; }

/* ---- public API ----------------------------------------------------------- */

int heal_state_open(const char *dir, heal_state **ret) {
        if (!ret)
                return -EINVAL;
        if (!dir)
                dir = heal_path_state_dir();

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;

        heal_state *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->path = strdup(dir);
        if (!s->path) {
                free(s);
                return -ENOMEM;
        }
        s->dir_fd = TAKE_FD(fd);
        state_sweep(s->dir_fd);
        reserve_make(s->dir_fd);
        *ret = s;
        return 0;
}

heal_state *heal_state_free(heal_state *s) {
        if (!s)
                return NULL;
        closep(&s->dir_fd);
        free(s->path);
        free(s);
        return NULL;
}

int heal_state_dirfd(const heal_state *s) { return s ? s->dir_fd : -EBADF; }

const char *heal_state_path(const heal_state *s) { return s ? s->path : NULL; }

bool heal_state_reserve_used(const heal_state *s) { return s && s->reserve_used; }

/* The namespace fd of a record (made first with @create) and its file name. */
static int record_locate(heal_state *s, const char *ns, const char *key, bool create, char **ret_name) {
        _cleanup_free_ char *name = NULL;
        int r = record_name(key, &name);
        if (r < 0)
                return r;
        int ns_fd = ns_open(s, ns, create);
        if (ns_fd < 0)
                return ns_fd;
        *ret_name = TAKE_PTR(name);
        return ns_fd;
}

int heal_state_read(heal_state *s, const char *ns, const char *key, json_t **ret_data) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int ns_fd = record_locate(s, ns, key, false, &name);
        if (ns_fd < 0)
                return ns_fd;

        _cleanup_json_ json_t *rec = NULL;
        json_t *data;
        const char *k;
        int r = record_load(ns_fd, name, key, &rec, &data, &k);
        if (r < 0)
                return r;
        if (ret_data)
                *ret_data = json_incref(data);
        return 0;
}

static int write_one(heal_state *s, const char *ns, const char *key, json_t *data, unsigned flags) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int ns_fd = record_locate(s, ns, key, true, &name);
        if (ns_fd < 0)
                return ns_fd;

        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = record_format(key, data, &text, &len);
        if (r < 0)
                return r;
        return heal_write_file_atomic(ns_fd, name, text, len, 0600,
                                      flags & HEAL_STATE_WRITE_NOSYNC ? HEAL_WRITE_NOSYNC : 0);
}

int heal_state_write_flags(heal_state *s, const char *ns, const char *key, json_t *data, unsigned flags) {
        if (!json_is_object(data) || (flags & ~(unsigned) HEAL_STATE_WRITE_NOSYNC))
                return -EINVAL;
        int r = write_one(s, ns, key, data, flags);
        if (is_no_space(r) && reserve_release(s) > 0)
                r = write_one(s, ns, key, data, flags);
        return r;
}

int heal_state_write(heal_state *s, const char *ns, const char *key, json_t *data) {
        return heal_state_write_flags(s, ns, key, data, 0);
}

int heal_state_write_many(heal_state *s, const char *ns, const heal_state_entry *entries, size_t n) {
        if (!entries || n == 0)
                return -EINVAL;
        _cleanup_close_ int ns_fd = ns_open(s, ns, true);
        if (is_no_space(ns_fd) && reserve_release(s) > 0)
                ns_fd = ns_open(s, ns, true);
        if (ns_fd < 0)
                return ns_fd;
        int r = group_replace(ns_fd, entries, n);
        if (is_no_space(r) && reserve_release(s) > 0)
                r = group_replace(ns_fd, entries, n);
        return r;
}

int heal_state_remove_flags(heal_state *s, const char *ns, const char *key, unsigned flags) {
        if (flags & ~(unsigned) HEAL_STATE_WRITE_NOSYNC)
                return -EINVAL;
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int ns_fd = record_locate(s, ns, key, false, &name);
        if (ns_fd == -ENOENT)
                return 0;
        if (ns_fd < 0)
                return ns_fd;

        if (unlinkat(ns_fd, name, 0) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!(flags & HEAL_STATE_WRITE_NOSYNC) && fsync(ns_fd) < 0)
                return -errno;
        return 0;
}

int heal_state_remove(heal_state *s, const char *ns, const char *key) {
        return heal_state_remove_flags(s, ns, key, 0);
}

/* The namespace as a DIR: 1 and *@ret, 0 and NULL when it does not exist, or -errno. */
static int ns_opendir(heal_state *s, const char *ns, DIR **ret) {
        int fd = ns_open(s, ns, false);
        if (fd == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (fd < 0)
                return fd;
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret = d;
        return 1;
}

static int str_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* A record read by its file name alone (no key to check it against): 1 and
 * the record when it verifies and @name is the canonical name of the key it
 * holds; 0 when it is not (vanished, corrupt, not a regular file, filed under
 * another name); -ENOMEM. */
static int record_load_canonical(int ns_fd, const char *name, json_t **ret_rec, json_t **ret_data,
                                 const char **ret_key) {
        _cleanup_json_ json_t *rec = NULL;
        json_t *data;
        const char *key;
        int r = record_load(ns_fd, name, NULL, &rec, &data, &key);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;
        _cleanup_free_ char *expect = heal_state_escape(key);
        if (!expect)
                return -ENOMEM;
        if (strcmp(expect, name) != 0)
                return 0;
        *ret_data = data;
        *ret_key = key;
        *ret_rec = TAKE_PTR(rec);
        return 1;
}

/* The key of one directory entry; 0 (and no key) for entries that are not
 * records of ours, e.g. a hashed name whose record does not verify. */
static int entry_key(int ns_fd, const char *name, char **ret) {
        if (!strchr(name, HASH_MARK)) {
                char *key = heal_state_unescape(name);
                if (!key)
                        return errno == ENOMEM ? -ENOMEM : 0;
                *ret = key;
                return 1;
        }

        _cleanup_json_ json_t *rec = NULL;
        json_t *data;
        const char *key;
        int r = record_load_canonical(ns_fd, name, &rec, &data, &key);
        if (r <= 0)
                return r;
        *ret = strdup(key);
        return *ret ? 1 : -ENOMEM;
}

int heal_state_list(heal_state *s, const char *ns, char ***ret_keys) {
        if (!ret_keys)
                return -EINVAL;
        _cleanup_strv_free_ char **keys = calloc(1, sizeof(char *));
        if (!keys)
                return -ENOMEM;
        size_t n = 0;

        _cleanup_closedir_ DIR *d = NULL;
        int r = ns_opendir(s, ns, &d);
        if (r < 0)
                return r;

        for (struct dirent *de; d && (r = dir_next(d, &de)) > 0;) {
                if (de->d_name[0] == '.')
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;

                char *key = NULL;
                r = entry_key(dirfd(d), de->d_name, &key);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                r = heal_strv_consume(&keys, &n, key);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        qsort(keys, n, sizeof(char *), str_cmp);
        *ret_keys = TAKE_PTR(keys);
        return (int) n;
}

/* Hands one directory entry to @fn when it is a record of ours filed under
 * its own name; returns 1 then, 0 when skipped (vanished, corrupt, not a
 * regular file, or not the canonical name of the key it holds). */
static int record_visit(int ns_fd, const char *name, heal_state_foreach_fn fn, void *userdata) {
        _cleanup_json_ json_t *rec = NULL;
        json_t *data;
        const char *key;
        int r = record_load_canonical(ns_fd, name, &rec, &data, &key);
        if (r <= 0)
                return r;
        r = fn(key, data, userdata);
        return r < 0 ? r : 1;
}

int heal_state_foreach(heal_state *s, const char *ns, heal_state_foreach_fn fn, void *userdata) {
        int n = 0;

        if (!fn)
                return -EINVAL;
        _cleanup_closedir_ DIR *d = NULL;
        int r = ns_opendir(s, ns, &d);
        if (r < 0)
                return r;

        for (struct dirent *de; d && (r = dir_next(d, &de)) > 0;) {
                /* O_NOFOLLOW in record_load() refuses symlinks; other
                 * non-files fail to read or to verify. */
                if (de->d_name[0] == '.' || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
                        continue;
                int k = record_visit(dirfd(d), de->d_name, fn, userdata);
                if (k < 0)
                        return k;
                if (n < INT_MAX)
                        n += k;
        }
        return r < 0 ? r : n;
}

/* Opens the lock file of @name and waits for it until @deadline_usec.
 * Returns the fd, -EAGAIN when the file was removed while we waited (try
 * again), -ETIMEDOUT, or -errno. */
static int lock_file_once(int lock_dir, const char *name, uint64_t start, uint64_t timeout_usec) {
        _cleanup_close_ int fd = openat(lock_dir, name,
                                        O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;

        for (;;) {
                if (flock(fd, LOCK_EX | LOCK_NB) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno != EWOULDBLOCK)
                        return -errno;
                uint64_t waited = heal_now_usec(CLOCK_MONOTONIC) - start;
                if (waited >= timeout_usec)
                        return -ETIMEDOUT;
                uint64_t left_usec = timeout_usec - waited;
                struct timespec ts = { 0, left_usec < LOCK_POLL_NSEC / 1000 ? (long) left_usec * 1000
                                                                            : LOCK_POLL_NSEC };
                (void) nanosleep(&ts, NULL);
        }

        /* heal_state_unlock_remove() unlinks a lock file while holding it: a
         * lock on a file no longer at its name excludes nobody. */
        struct stat a, b;
        if (fstat(fd, &a) < 0)
                return -errno;
        if (fstatat(lock_dir, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? -EAGAIN : -errno;
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                return -EAGAIN;
        return TAKE_FD(fd);
}

/* The fd of @ns's lock dir; with @create, the namespace and the dir are made first. */
static int lock_dir_open(heal_state *s, const char *ns, bool create) {
        _cleanup_close_ int ns_fd = ns_open(s, ns, create);
        if (ns_fd < 0)
                return ns_fd;
        if (create && mkdirat(ns_fd, LOCK_DIR, 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(ns_fd, LOCK_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? -errno : fd;
}

int heal_state_lock_timeout(heal_state *s, const char *ns, const char *key, uint64_t timeout_usec,
                            int *ret_fd) {
        if (!ret_fd)
                return -EINVAL;
        _cleanup_free_ char *name = NULL;
        int r = record_name(key, &name);
        if (r < 0)
                return r;
        _cleanup_close_ int lock_dir = lock_dir_open(s, ns, true);
        if (lock_dir < 0)
                return lock_dir;

        uint64_t start = heal_now_usec(CLOCK_MONOTONIC);
        do
                r = lock_file_once(lock_dir, name, start, timeout_usec);
        while (r == -EAGAIN);
        if (r < 0)
                return r;
        *ret_fd = r;
        return 0;
}

int heal_state_lock(heal_state *s, const char *ns, const char *key, int *ret_fd) {
        return heal_state_lock_timeout(s, ns, key, HEAL_STATE_LOCK_TIMEOUT_USEC, ret_fd);
}

int heal_state_unlock_remove(heal_state *s, const char *ns, const char *key, int *lock_fd) {
        _cleanup_close_ int fd = lock_fd ? TAKE_FD(*lock_fd) : -EBADF;
        _cleanup_free_ char *name = NULL;
        struct stat a, b;
        int r;

        if (fd < 0)
                return -EBADF;
        r = record_name(key, &name);
        if (r < 0)
                return r;
        _cleanup_close_ int lock_dir = lock_dir_open(s, ns, false);
        if (lock_dir < 0)
                return lock_dir;
        /* Only the file we hold: anything else at the name is someone else's lock. */
        if (fstat(fd, &a) < 0)
                return -errno;
        if (fstatat(lock_dir, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                return 0;
        if (unlinkat(lock_dir, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
