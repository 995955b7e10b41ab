/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Leaked space: walk /proc/PID/fd for regular files with no link left on the
 * filesystem in question, and add them up per process and per unit. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-login.h>
#include <unistd.h>

#include "heal/audit.h"
#include "heal/cleanup.h"
#include "heal/paths.h"
#include "leaked.h"

#define DELETED_SUFFIX " (deleted)"
#define PING_EVERY 1000U

static void leak_holder_done(leak_holder *h) {
        for (size_t i = 0; i < h->n_files; i++)
                free(h->files[i].path);
        free(h->files);
        free(h->comm);
        free(h->unit);
        *h = (leak_holder){};
}

void leak_report_done(leak_report *r) {
        for (size_t i = 0; i < r->n_holders; i++)
                leak_holder_done(&r->holders[i]);
        free(r->holders);
        for (size_t i = 0; i < r->n_units; i++) {
                free(r->units[i].unit);
                free(r->units[i].holders);
        }
        free(r->units);
        *r = (leak_report){};
}

/* readlinkat() into a buffer as large as the link (the caller frees). */
static int readlinkat_malloc(int dirfd, const char *name, char **ret) {
        for (size_t size = 256;; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                ssize_t n;

                if (!buf)
                        return -ENOMEM;
                n = readlinkat(dirfd, name, buf, size);
                if (n < 0)
                        return -errno;
                if ((size_t)n < size) {
                        buf[n] = '\0';
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
                if (size > 1024 * 1024)
                        return -ENAMETOOLONG;
        }
}

static char *read_comm(int procfd, const char *pid) {
        _cleanup_free_ char *path = NULL, *line = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0;
        ssize_t len;
        int fd;

        if (asprintf(&path, "%s/comm", pid) < 0)
                return NULL;
        fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        f = fdopen(fd, "re");
        if (!f) {
                close(fd);
                return NULL;
        }
        len = getline(&line, &n, f);
        if (len <= 0)
                return NULL;
        line[strcspn(line, "\n")] = '\0';
        return TAKE_PTR(line);
}

static bool all_digits(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char)*s))
                        return false;
        return true;
}

static int holder_add(leak_holder *h, char *path, const struct stat *st) {
        leak_file *n;

        for (size_t i = 0; i < h->n_files; i++)
                if (h->files[i].ino == st->st_ino) {
                        free(path);
                        return 0;
                }
        n = reallocarray(h->files, h->n_files + 1, sizeof(*n));
        if (!n) {
                free(path);
                return -ENOMEM;
        }
        h->files = n;
        h->files[h->n_files++] = (leak_file){
                .path = path,
                .ino = st->st_ino,
                .bytes = (uint64_t)st->st_blocks * 512,
        };
        h->bytes += (uint64_t)st->st_blocks * 512;
        return 1;
}

/* The deleted files on @dev that process @pid holds; 0 when none (or gone). */
static int scan_pid(int procfd, const char *pid, dev_t dev, unsigned *seen, void (*ping)(void *), void *ud,
                    leak_holder *ret) {
        _cleanup_(leak_holder_done) leak_holder h = {};
        _cleanup_free_ char *fdpath = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        if (asprintf(&fdpath, "%s/fd", pid) < 0)
                return -ENOMEM;
        fd = openat(procfd, fdpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return 0; /* gone, a kernel thread, or not ours to look at */
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return 0;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *target = NULL;
                struct stat st;
                size_t len;

                if (de->d_name[0] == '.')
                        continue;
                if (ping && ++*seen % PING_EVERY == 0)
                        ping(ud);
                if (readlinkat_malloc(dirfd(d), de->d_name, &target) < 0)
                        continue;
                len = strlen(target);
                if (len <= strlen(DELETED_SUFFIX) || target[0] != '/' ||
                    strcmp(target + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX) != 0)
                        continue;
                /* Follows the magic link to the open file itself. */
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                        continue;
                if (!S_ISREG(st.st_mode) || st.st_nlink != 0 || st.st_dev != dev)
                        continue;
                target[len - strlen(DELETED_SUFFIX)] = '\0';
                r = holder_add(&h, TAKE_PTR(target), &st);
                if (r < 0)
                        return r;
        }
        if (h.n_files == 0)
                return 0;
        h.pid = (pid_t)strtol(pid, NULL, 10);
        h.comm = read_comm(procfd, pid);
        *ret = h;
        h = (leak_holder){};
        return 1;
}

/* ---- per unit ----------------------------------------------------------- */

static leak_unit *unit_find(leak_report *r, const char *unit) {
        for (size_t i = 0; i < r->n_units; i++)
                if (strcmp(r->units[i].unit, unit) == 0)
                        return &r->units[i];
        return NULL;
}

/* Was inode @ino already counted for unit @u (held by an earlier holder of it)? */
static bool unit_has_ino(const leak_report *r, const leak_unit *u, size_t before, ino_t ino) {
        for (size_t k = 0; k < u->n_holders; k++) {
                const leak_holder *h = &r->holders[u->holders[k]];
                if (u->holders[k] >= before)
                        continue;
                for (size_t i = 0; i < h->n_files; i++)
                        if (h->files[i].ino == ino)
                                return true;
        }
        return false;
}

static int unit_add(leak_report *r, size_t hi) {
        const leak_holder *h = &r->holders[hi];
        leak_unit *u = unit_find(r, h->unit);
        size_t *nh;

        if (!u) {
                leak_unit *n = reallocarray(r->units, r->n_units + 1, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                r->units = n;
                u = &r->units[r->n_units];
                *u = (leak_unit){.unit = strdup(h->unit)};
                if (!u->unit)
                        return -ENOMEM;
                r->n_units++;
        }
        for (size_t i = 0; i < h->n_files; i++)
                if (!unit_has_ino(r, u, hi, h->files[i].ino)) {
                        u->bytes += h->files[i].bytes;
                        u->n_files++;
                }
        nh = reallocarray(u->holders, u->n_holders + 1, sizeof(*nh));
        if (!nh)
                return -ENOMEM;
        u->holders = nh;
        u->holders[u->n_holders++] = hi;
        return 0;
}

static int cmp_units(const void *a, const void *b) {
        const leak_unit *x = a, *y = b;

        if (x->bytes != y->bytes)
                return x->bytes > y->bytes ? -1 : 1;
        return strcmp(x->unit, y->unit);
}

/* Inodes across every holder, each once. */
static uint64_t total_bytes(const leak_report *r) {
        uint64_t sum = 0;

        for (size_t a = 0; a < r->n_holders; a++)
                for (size_t i = 0; i < r->holders[a].n_files; i++) {
                        bool dup = false;
                        for (size_t b = 0; b < a && !dup; b++)
                                for (size_t j = 0; j < r->holders[b].n_files && !dup; j++)
                                        dup = r->holders[b].files[j].ino == r->holders[a].files[i].ino;
                        if (!dup)
                                sum += r->holders[a].files[i].bytes;
                }
        return sum;
}

int leak_scan(const char *proc, dev_t dev, void (*ping)(void *ud), void *ud, leak_report *ret) {
        _cleanup_(leak_report_done) leak_report rep = {};
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        unsigned seen = 0;
        bool real_proc;
        int r;

        if (!proc)
                proc = heal_path_proc();
        real_proc = strcmp(proc, "/proc") == 0;
        d = opendir(proc);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                leak_holder h = {};
                leak_holder *n;

                if (!all_digits(de->d_name))
                        continue;
                r = scan_pid(dirfd(d), de->d_name, dev, &seen, ping, ud, &h);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                if (real_proc && sd_pid_get_unit(h.pid, &h.unit) < 0)
                        h.unit = NULL;
                n = reallocarray(rep.holders, rep.n_holders + 1, sizeof(*n));
                if (!n) {
                        leak_holder_done(&h);
                        return -ENOMEM;
                }
                rep.holders = n;
                rep.holders[rep.n_holders++] = h;
        }
        for (size_t i = 0; i < rep.n_holders; i++)
                if (rep.holders[i].unit) {
                        r = unit_add(&rep, i);
                        if (r < 0)
                                return r;
                }
        if (rep.n_units > 1)
                qsort(rep.units, rep.n_units, sizeof(*rep.units), cmp_units);
        rep.bytes = total_bytes(&rep);
        *ret = rep;
        rep = (leak_report){};
        return (int)ret->n_holders;
}

/* ---- facts -------------------------------------------------------------- */

static json_t *holder_facts(const leak_holder *h) {
        _cleanup_json_ json_t *files = json_array(), *o = NULL;

        if (!files)
                return NULL;
        for (size_t i = 0; i < h->n_files; i++) {
                json_t *path = heal_json_string_lossy(h->files[i].path, strlen(h->files[i].path));
                if (!path || json_array_append_new(files, json_pack("{s:o, s:I}", "path", path, "bytes",
                                                                    (json_int_t)h->files[i].bytes)) < 0)
                        return NULL;
        }
        o = json_pack("{s:i, s:s?, s:s?, s:I, s:O}", "pid", (int)h->pid, "comm", h->comm, "unit", h->unit,
                      "bytes", (json_int_t)h->bytes, "files", files);
        return TAKE_PTR(o);
}

json_t *leak_unit_facts(const leak_report *r, const leak_unit *u) {
        _cleanup_json_ json_t *holders = json_array(), *o = NULL;

        if (!holders)
                return NULL;
        for (size_t k = 0; k < u->n_holders; k++)
                if (json_array_append_new(holders, holder_facts(&r->holders[u->holders[k]])) < 0)
                        return NULL;
        o = json_pack("{s:s, s:I, s:I, s:O}", "unit", u->unit, "bytes", (json_int_t)u->bytes, "files",
                      (json_int_t)u->n_files, "holders", holders);
        return TAKE_PTR(o);
}

json_t *leak_holders_facts(const leak_report *r) {
        _cleanup_json_ json_t *a = json_array();

        if (!a)
                return NULL;
        for (size_t i = 0; i < r->n_holders; i++)
                if (json_array_append_new(a, holder_facts(&r->holders[i])) < 0)
                        return NULL;
        return TAKE_PTR(a);
}
