/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A unit's cgroup: where it lives (pure v2 or hybrid), its counters, and the pids it holds. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/paths.h"
#include "cgroup.h"
#include "scan.h"

static bool exists_at(const char *dir, const char *file) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, file) < 0)
                return false;
        return access(p, F_OK) == 0;
}

int stuck_cgroup_layout(stuck_layout *ret) {
        const char *cg = heal_path_cgroup();
        _cleanup_free_ char *unified = NULL;

        if (exists_at(cg, "cgroup.controllers")) {
                *ret = STUCK_LAYOUT_V2;
                return 0;
        }
        if (asprintf(&unified, "%s/unified", cg) < 0)
                return -ENOMEM;
        if (exists_at(unified, "cgroup.controllers")) {
                *ret = STUCK_LAYOUT_HYBRID;
                return 0;
        }
        return -EOPNOTSUPP;
}

/* Absolute, and no "." or ".." component: the path is joined under the cgroup root. */
static bool control_group_valid(const char *p) {
        if (!p || p[0] != '/')
                return false;
        for (const char *s = p; *s;) {
                while (*s == '/')
                        s++;
                size_t n = strcspn(s, "/");
                if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                        return false;
                s += n;
        }
        return true;
}

/* The v1 hierarchy holding cpuacct: "cpu,cpuacct" (the usual co-mount), its reverse, or alone. */
static const char *v1_cpuacct_hierarchy(const char *cg) {
        static const char *const names[] = { "cpu,cpuacct", "cpuacct,cpu", "cpuacct" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", cg, names[i]) < 0)
                        return NULL;
                struct stat st;
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        return names[i];
        }
        return NULL;
}

void stuck_cgroup_path_done(stuck_cgroup_path *p) {
        if (!p)
                return;
        free(p->dir);
        free(p->rel);
        free(p->v1_cpuacct);
        free(p->v1_pids);
        *p = (stuck_cgroup_path) {};
}

/* Optional files, by what a parent enables for its children (see stuck_cgroup_root_new()). */
enum {
        ABSENT_IO_STAT = 1u << 0,
        ABSENT_PSI_FIRST = 1u << 1, /* one bit per stuck_psi_resource from here */
        ABSENT_PIDS = 1u << (1 + _STUCK_PSI_MAX),
        ABSENT_V1_PIDS = 1u << (2 + _STUCK_PSI_MAX),
        ABSENT_V1_CPUACCT = 1u << (3 + _STUCK_PSI_MAX),
};

struct stuck_cgroup_absent {
        stuck_cgroup_absent *next;
        char *parent; /* the parent control group; "" for the root cgroup itself */
        unsigned files; /* ABSENT_* */
};

struct stuck_cgroup_root {
        stuck_layout layout;
        const char *v1_cpuacct; /* hybrid: the v1 hierarchy holding cpuacct, NULL when none */
        int v2_fd;              /* the v2 hierarchy's root dir: a unit's files are opened by their path
                                 * under it, without opening the unit's dir; <0 when it cannot be opened */
        stuck_cgroup_absent *absent;
};

/* The fd of the v2 hierarchy's root; -errno when it cannot be opened (paths then go through each
 * unit's directory, as without a root). */
static int open_v2_root(stuck_layout layout) {
        _cleanup_free_ char *p = NULL;
        int fd;

        if (asprintf(&p, "%s%s", heal_path_cgroup(), layout == STUCK_LAYOUT_HYBRID ? "/unified" : "") < 0)
                return -ENOMEM;
        fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int stuck_cgroup_root_new(stuck_cgroup_root **ret) {
        stuck_cgroup_root *root;
        stuck_layout layout;
        int r;

        r = stuck_cgroup_layout(&layout);
        if (r < 0)
                return r;
        root = calloc(1, sizeof(*root));
        if (!root)
                return -ENOMEM;
        root->layout = layout;
        if (layout == STUCK_LAYOUT_HYBRID)
                root->v1_cpuacct = v1_cpuacct_hierarchy(heal_path_cgroup());
        root->v2_fd = open_v2_root(layout);
        if (root->v2_fd == -ENOMEM) {
                free(root);
                return -ENOMEM;
        }
        *ret = root;
        return 0;
}

stuck_cgroup_root *stuck_cgroup_root_free(stuck_cgroup_root *root) {
        if (!root)
                return NULL;
        while (root->absent) {
                stuck_cgroup_absent *a = root->absent;
                root->absent = a->next;
                free(a->parent);
                free(a);
        }
        if (root->v2_fd >= 0)
                close(root->v2_fd);
        free(root);
        return NULL;
}

/* The entry of @control_group's parent, made on first use. NULL on OOM. */
static stuck_cgroup_absent *absent_of(stuck_cgroup_root *root, const char *control_group) {
        const char *slash = strrchr(control_group, '/');
        size_t n = strcmp(control_group, "/") == 0 ? 0 : slash == control_group ? 1 : (size_t) (slash - control_group);

        for (stuck_cgroup_absent *a = root->absent; a; a = a->next)
                if (strlen(a->parent) == n && strncmp(a->parent, control_group, n) == 0)
                        return a;
        stuck_cgroup_absent *a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->parent = strndup(control_group, n);
        if (!a->parent) {
                free(a);
                return NULL;
        }
        a->next = root->absent;
        root->absent = a;
        return a;
}

static int locate(stuck_cgroup_root *root, const char *control_group, bool check, stuck_cgroup_path *ret) {
        const char *cg = heal_path_cgroup();
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path p = {};
        struct stat st;
        int r;

        if (!control_group_valid(control_group))
                return -EINVAL;
        /* "/" is the root cgroup: join without a double slash. */
        const char *rel = strcmp(control_group, "/") == 0 ? "" : control_group;

        if (root) {
                p.layout = root->layout;
                p.absent = absent_of(root, control_group);
                if (!p.absent)
                        return -ENOMEM;
                if (root->v2_fd >= 0) {
                        /* "system.slice/x.service/" ("" for the root cgroup): a file's name is
                         * appended to it. */
                        const char *under = rel + strspn(rel, "/");
                        if (asprintf(&p.rel, "%s%s", under, *under ? "/" : "") < 0)
                                return -ENOMEM;
                        p.root_fd = root->v2_fd;
                }
        } else {
                r = stuck_cgroup_layout(&p.layout);
                if (r < 0)
                        return r;
        }
        if (p.layout == STUCK_LAYOUT_V2) {
                if (asprintf(&p.dir, "%s%s", cg, rel) < 0)
                        return -ENOMEM;
        } else {
                const char *h = root ? root->v1_cpuacct : v1_cpuacct_hierarchy(cg);
                if (asprintf(&p.dir, "%s/unified%s", cg, rel) < 0 ||
                    asprintf(&p.v1_pids, "%s/pids%s", cg, rel) < 0)
                        return -ENOMEM;
                if (h && asprintf(&p.v1_cpuacct, "%s/%s%s", cg, h, rel) < 0)
                        return -ENOMEM;
        }
        if (check) {
                if (stat(p.dir, &st) < 0)
                        return -errno;
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
        }

        *ret = p;
        p = (stuck_cgroup_path) {};
        return 0;
}

int stuck_cgroup_locate(const char *control_group, stuck_cgroup_path *ret) {
        return locate(NULL, control_group, true, ret);
}

int stuck_cgroup_locate_in(stuck_cgroup_root *root, const char *control_group, stuck_cgroup_path *ret) {
        if (!root)
                return -EINVAL;
        return locate(root, control_group, true, ret);
}

int stuck_cgroup_name_in(stuck_cgroup_root *root, const char *control_group, stuck_cgroup_path *ret) {
        if (!root)
                return -EINVAL;
        return locate(root, control_group, false, ret);
}

/* Where one read opens the cgroup's files: through its directory once that is open (@dfd), else by
 * their path under the root's fd (@cg->rel), which spares opening the directory at all. */
typedef struct cg_files {
        const stuck_cgroup_path *cg;
        int dfd;
} cg_files;

static int files_read(const cg_files *f, const char *file, unsigned flags, stuck_buf *b) {
        _cleanup_free_ char *p = NULL;

        if (f->dfd >= 0 || !f->cg->rel)
                return stuck_read_at(f->dfd, file, flags, b);
        if (asprintf(&p, "%s%s", f->cg->rel, file) < 0)
                return -ENOMEM;
        return stuck_read_at(f->cg->root_fd, p, flags, b);
}

/* Whether the cgroup is (still) there: its cgroup.procs exists. */
static bool files_alive(const cg_files *f) {
        _cleanup_free_ char *p = NULL;

        if (f->dfd >= 0 || !f->cg->rel)
                return faccessat(f->dfd, "cgroup.procs", F_OK, 0) >= 0;
        if (asprintf(&p, "%scgroup.procs", f->cg->rel) < 0)
                return false;
        return faccessat(f->cg->root_fd, p, F_OK, 0) >= 0;
}

/* What one read learns about optional files: the ones known absent are skipped, the ones found absent
 * are remembered once the cgroup proves to have been there all along (absent_commit()). */
typedef struct absent_ctx {
        const stuck_cgroup_absent *known;
        unsigned found;
} absent_ctx;

static bool absent_skip(const absent_ctx *a, unsigned bit) {
        return a->known && (a->known->files & bit);
}

/* @r: the read's result; -ENOENT of a file in a live cgroup means the file does not exist there. */
static void absent_note(absent_ctx *a, unsigned bit, int r) {
        if (r == -ENOENT)
                a->found |= bit;
}

static void absent_commit(const stuck_cgroup_path *cg, const absent_ctx *a, const cg_files *f) {
        /* The cgroup itself may have gone mid-read (then every file is "missing"): only a cgroup still
         * there speaks for its siblings. */
        if (!cg->absent || a->found == 0 || !files_alive(f))
                return;
        cg->absent->files |= a->found;
}

/* One counter file as a single number ("12345\n"); "max" and garbage are -EBADMSG. */
static int read_single_u64(const cg_files *f, const char *path, stuck_buf *b, uint64_t *ret) {
        int r = f ? files_read(f, path, STUCK_READ_ONE_RECORD, b) : stuck_read_at(AT_FDCWD, path, STUCK_READ_ONE_RECORD, b);
        if (r < 0)
                return r;
        const char *p = b->data, *end = b->data + b->len;
        uint64_t v;
        if (stuck_parse_u64(&p, end, &v) < 0 || (p < end && !(*p == '\n' && p + 1 == end)))
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* A v1 directory's one counter file; a missing directory is noted for its siblings. */
static int read_v1_u64(const char *dir, const char *file, unsigned bit, absent_ctx *a, stuck_buf *b, uint64_t *ret) {
        _cleanup_free_ char *p = NULL;

        if (!dir || absent_skip(a, bit))
                return -ENOENT;
        if (asprintf(&p, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        int r = read_single_u64(NULL, p, b, ret);
        /* A missing file in a v1 hierarchy means a missing directory: the hierarchy does not hold
         * this parent's children. */
        absent_note(a, bit, r);
        return r;
}

static void read_tasks(const cg_files *f, absent_ctx *a, stuck_buf *b, stuck_cgroup_sample *s) {
        uint64_t v;
        int r = -ENOENT;

        if (!absent_skip(a, ABSENT_PIDS)) {
                r = read_single_u64(f, "pids.current", b, &v);
                absent_note(a, ABSENT_PIDS, r);
        }
        if (r < 0)
                r = read_v1_u64(f->cg->v1_pids, "pids.current", ABSENT_V1_PIDS, a, b, &v);
        if (r < 0)
                return;
        s->n_tasks = v;
        s->tasks_known = true;
}

/* usage_usec of the v2 cpu.stat. Return: 0 (read or unknown), -ENOENT when the file is missing. */
static int read_cpu_v2(const cg_files *f, stuck_buf *b, stuck_cgroup_sample *s) {
        uint64_t v;
        int r = files_read(f, "cpu.stat", STUCK_READ_ONE_RECORD, b);

        if (r == -ENOENT || r == -ENOMEM)
                return r;
        if (r >= 0 && stuck_parse_cpu_stat(b->data, b->len, &v) >= 0) {
                s->cpu_usage_usec = v;
                s->cpu_known = true;
        }
        return 0;
}

/* The v2 cpu.stat lacks usage_usec (hybrid, kernels before 5.x): v1 cpuacct, in ns. */
static void read_cpu_v1(const stuck_cgroup_path *cg, absent_ctx *a, stuck_buf *b, stuck_cgroup_sample *s) {
        uint64_t v;

        if (s->cpu_known || read_v1_u64(cg->v1_cpuacct, "cpuacct.usage", ABSENT_V1_CPUACCT, a, b, &v) < 0)
                return;
        s->cpu_usage_usec = v / 1000;
        s->cpu_known = s->cpu_from_v1 = true;
}

static void read_pressure(const cg_files *f, absent_ctx *a, stuck_buf *b, stuck_cgroup_sample *s) {
        static const char *const pressure[_STUCK_PSI_MAX] = {
                [STUCK_PSI_CPU] = "cpu.pressure",
                [STUCK_PSI_MEMORY] = "memory.pressure",
                [STUCK_PSI_IO] = "io.pressure",
        };
        uint64_t v;
        int r;

        if (!absent_skip(a, ABSENT_IO_STAT)) {
                r = files_read(f, "io.stat", STUCK_READ_ONE_RECORD, b);
                absent_note(a, ABSENT_IO_STAT, r);
                if (r >= 0 && stuck_parse_io_stat(b->data, b->len, &v) >= 0) {
                        s->io_bytes = v;
                        s->io_known = true;
                }
        }
        for (size_t i = 0; i < _STUCK_PSI_MAX; i++) {
                unsigned bit = ABSENT_PSI_FIRST << i;
                stuck_psi psi;

                if (absent_skip(a, bit))
                        continue;
                r = files_read(f, pressure[i], STUCK_READ_ONE_RECORD, b);
                absent_note(a, bit, r);
                if (r >= 0 && stuck_parse_pressure(b->data, b->len, &psi) >= 0)
                        s->psi[i] = psi;
        }
}

int stuck_cgroup_read_counters(const stuck_cgroup_path *cg, const stuck_cgroup_sample *before, stuck_buf *b,
                               stuck_cgroup_sample *ret) {
        absent_ctx a = { .known = cg->absent };
        cg_files f = { .cg = cg, .dfd = -EBADF };
        stuck_cgroup_sample s = {};
        bool progressed;
        int r;

        /* cpu.stat by its path first: a cgroup v2 directory always holds it, so it being missing
         * means the cgroup is gone or this is no cgroup v2 tree; the directory, opened then, tells. */
        if (cg->rel) {
                r = read_cpu_v2(&f, b, &s);
                if (r == -ENOMEM)
                        return r;
        } else
                r = -ENOENT;
        progressed = r >= 0 && s.cpu_known && before && !before->cpu_from_v1 && before->cpu_known &&
                     s.cpu_usage_usec > before->cpu_usage_usec;

        if (!progressed) {
                /* The directory from here on: a read of many files, and the -ENOENT of a unit that stopped. */
                f.dfd = open(cg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (f.dfd < 0)
                        return -errno;
                if (r < 0) {
                        r = read_cpu_v2(&f, b, &s);
                        if (r == -ENOMEM) {
                                close(f.dfd);
                                return r;
                        }
                }
                read_cpu_v1(cg, &a, b, &s);
                read_pressure(&f, &a, b, &s);
        } else
                s.pressure_skipped = true;
        read_tasks(&f, &a, b, &s);
        absent_commit(cg, &a, &f);
        if (f.dfd >= 0)
                close(f.dfd);

        *ret = s;
        return 0;
}

int stuck_cgroup_read_buf(const stuck_cgroup_path *cg, stuck_buf *b, stuck_cgroup_sample *ret) {
        return stuck_cgroup_read_counters(cg, NULL, b, ret);
}

int stuck_cgroup_read(const stuck_cgroup_path *cg, stuck_cgroup_sample *ret) {
        _cleanup_(stuck_buf_done) stuck_buf b = {};
        return stuck_cgroup_read_buf(cg, &b, ret);
}

typedef struct pid_list {
        pid_t *pids;
        size_t n, cap;
} pid_list;

static int pid_list_add(pid_list *l, pid_t pid) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                pid_t *n = reallocarray(l->pids, cap, sizeof(pid_t));
                if (!n)
                        return -ENOMEM;
                l->pids = n;
                l->cap = cap;
        }
        l->pids[l->n++] = pid;
        return 0;
}

static int list_dir(int dfd, stuck_buf *b, unsigned depth, pid_list *l) {
        const char *p, *end;
        int r;

        /* cgroup.procs names the processes of this cgroup only; sub-cgroups are walked below. */
        r = stuck_read_at(dfd, "cgroup.procs", 0, b);
        if (r < 0)
                return r;
        p = b->data;
        end = b->data + b->len;
        while (p < end) {
                uint64_t pid;
                if (stuck_parse_u64(&p, end, &pid) < 0 || pid == 0 || pid > INT32_MAX || p >= end || *p != '\n')
                        return -EBADMSG;
                p++;
                r = pid_list_add(l, (pid_t) pid);
                if (r < 0)
                        return r;
        }

        /* Unit cgroups are shallow; the bound only stops a hostile tree from recursing forever. */
        if (depth >= 32)
                return 0;
        int dup_fd = dup(dfd);
        if (dup_fd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return -errno;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if ((de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) || de->d_name[0] == '.')
                        continue;
                _cleanup_close_ int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sub < 0)
                        continue; /* removed since readdir */
                r = list_dir(sub, b, depth + 1, l);
                if (r < 0 && r != -ENOENT && r != -ENODEV)
                        return r;
        }
        return 0;
}

int stuck_cgroup_list_pids(const char *dir, stuck_buf *b, pid_t **ret_pids, size_t *ret_n) {
        _cleanup_free_ pid_t *pids = NULL;
        pid_list l = {};

        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        int r = list_dir(dfd, b, 0, &l);
        pids = l.pids;
        if (r < 0)
                return r;
        *ret_pids = TAKE_PTR(pids);
        *ret_n = l.n;
        return 0;
}
