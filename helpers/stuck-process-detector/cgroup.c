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
        free(p->v1_cpuacct);
        free(p->v1_pids);
        *p = (stuck_cgroup_path) {};
}

int stuck_cgroup_locate(const char *control_group, stuck_cgroup_path *ret) {
        const char *cg = heal_path_cgroup();
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path p = {};
        struct stat st;
        int r;

        if (!control_group_valid(control_group))
                return -EINVAL;
        /* "/" is the root cgroup: join without a double slash. */
        const char *rel = strcmp(control_group, "/") == 0 ? "" : control_group;

        r = stuck_cgroup_layout(&p.layout);
        if (r < 0)
                return r;
        if (p.layout == STUCK_LAYOUT_V2) {
                if (asprintf(&p.dir, "%s%s", cg, rel) < 0)
                        return -ENOMEM;
        } else {
                const char *h = v1_cpuacct_hierarchy(cg);
                if (asprintf(&p.dir, "%s/unified%s", cg, rel) < 0 ||
                    asprintf(&p.v1_pids, "%s/pids%s", cg, rel) < 0)
                        return -ENOMEM;
                if (h && asprintf(&p.v1_cpuacct, "%s/%s%s", cg, h, rel) < 0)
                        return -ENOMEM;
        }
        if (stat(p.dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;

        *ret = p;
        p = (stuck_cgroup_path) {};
        return 0;
}

/* One counter file as a single number ("12345\n"); "max" and garbage are -EBADMSG. */
static int read_single_u64(int dirfd, const char *path, stuck_buf *b, uint64_t *ret) {
        int r = stuck_read_at(dirfd, path, STUCK_READ_ONE_LINE, b);
        if (r < 0)
                return r;
        const char *p = b->data, *end = b->data + b->len;
        uint64_t v;
        if (stuck_parse_u64(&p, end, &v) < 0 || (p < end && !(*p == '\n' && p + 1 == end)))
                return -EBADMSG;
        *ret = v;
        return 0;
}

static void read_cpu(int dfd, const stuck_cgroup_path *cg, stuck_buf *b, stuck_cgroup_sample *s) {
        uint64_t v;

        if (stuck_read_at(dfd, "cpu.stat", 0, b) >= 0 && stuck_parse_cpu_stat(b->data, b->len, &v) >= 0) {
                s->cpu_usage_usec = v;
                s->cpu_known = true;
                return;
        }
        /* Hybrid, and the v2 cpu.stat lacks usage_usec (kernels before 5.x): v1 cpuacct, in ns. */
        if (!cg->v1_cpuacct)
                return;
        _cleanup_close_ int v1 = open(cg->v1_cpuacct, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (v1 < 0 || read_single_u64(v1, "cpuacct.usage", b, &v) < 0)
                return;
        s->cpu_usage_usec = v / 1000;
        s->cpu_known = s->cpu_from_v1 = true;
}

static void read_tasks(int dfd, const stuck_cgroup_path *cg, stuck_buf *b, stuck_cgroup_sample *s) {
        uint64_t v;
        int r = read_single_u64(dfd, "pids.current", b, &v);
        if (r < 0 && cg->v1_pids) {
                _cleanup_close_ int v1 = open(cg->v1_pids, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = v1 < 0 ? -errno : read_single_u64(v1, "pids.current", b, &v);
        }
        if (r < 0)
                return;
        s->n_tasks = v;
        s->tasks_known = true;
}

int stuck_cgroup_read_buf(const stuck_cgroup_path *cg, stuck_buf *b, stuck_cgroup_sample *ret) {
        static const char *const pressure[_STUCK_PSI_MAX] = {
                [STUCK_PSI_CPU] = "cpu.pressure",
                [STUCK_PSI_MEMORY] = "memory.pressure",
                [STUCK_PSI_IO] = "io.pressure",
        };
        stuck_cgroup_sample s = {};
        uint64_t v;

        _cleanup_close_ int dfd = open(cg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        read_cpu(dfd, cg, b, &s);
        if (stuck_read_at(dfd, "io.stat", 0, b) >= 0 && stuck_parse_io_stat(b->data, b->len, &v) >= 0) {
                s.io_bytes = v;
                s.io_known = true;
        }
        for (size_t i = 0; i < _STUCK_PSI_MAX; i++) {
                stuck_psi psi;
                if (stuck_read_at(dfd, pressure[i], 0, b) >= 0 &&
                    stuck_parse_pressure(b->data, b->len, &psi) >= 0)
                        s.psi[i] = psi;
        }
        read_tasks(dfd, cg, b, &s);

        *ret = s;
        return 0;
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
