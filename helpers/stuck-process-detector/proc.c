/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One process from /proc: its stat always, and only the files that add a fact: threads' stat when it
 * has several, wchan/stack/sched of a thread in D, io and children when asked. Each read at most once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/paths.h"
#include "proc.h"

#define PF_KTHREAD 0x00200000u

int stuck_proc_ctx_init(stuck_proc_ctx *c) {
        *c = (stuck_proc_ctx) { .proc_fd = -EBADF };
        c->proc_fd = open(heal_path_proc(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->proc_fd < 0)
                return -errno;
        c->clk_tck = sysconf(_SC_CLK_TCK);
        if (c->clk_tck <= 0)
                c->clk_tck = 100;
        return 0;
}

void stuck_proc_ctx_done(stuck_proc_ctx *c) {
        if (!c)
                return;
        closep(&c->proc_fd);
        stuck_buf_done(&c->buf);
}

void stuck_proc_sample_done(stuck_proc_sample *p) {
        if (!p)
                return;
        free(p->comm);
        free(p->wchan);
        free(p->stack);
        *p = (stuck_proc_sample) {};
}

/* Split so that ticks * 10^6 cannot overflow for any real tick count. */
static uint64_t ticks_to_usec(uint64_t ticks, uint64_t hz) {
        return ticks / hz * 1000000u + ticks % hz * 1000000u / hz;
}

static void stat_done(stuck_stat *s) {
        free(s->comm);
        s->comm = NULL;
}

/* A read that failed because the process is gone: ESRCH comes from files of a dying task. */
static int gone(int r) {
        return r == -ESRCH ? -ENOENT : r;
}

static int read_stat(stuck_proc_ctx *c, const char *path, stuck_stat *ret) {
        int r = stuck_read_at(c->proc_fd, path, STUCK_READ_ONE_LINE, &c->buf);
        if (r < 0)
                return gone(r);
        return stuck_parse_stat(c->buf.data, c->buf.len, ret);
}

int stuck_proc_state(stuck_proc_ctx *c, pid_t pid, char *ret_state) {
        char path[32];
        stuck_stat st;

        snprintf(path, sizeof path, "%d/stat", (int) pid);
        int r = read_stat(c, path, &st);
        if (r < 0)
                return r;
        *ret_state = st.state;
        stat_done(&st);
        return 0;
}

/* A small text file as a string with its trailing newline dropped; NULL when unreadable. */
static char *read_string(stuck_proc_ctx *c, const char *path) {
        if (stuck_read_at(c->proc_fd, path, 0, &c->buf) < 0)
                return NULL;
        while (c->buf.len > 0 && c->buf.data[c->buf.len - 1] == '\n')
                c->buf.data[--c->buf.len] = 0;
        return strndup(c->buf.data, c->buf.len);
}

/* Our own se.exec_start: "now" on the scheduler clock that block_start is stamped with. */
static bool sched_now(stuck_proc_ctx *c, uint64_t *ret) {
        if (!c->now_tried) {
                c->now_tried = true;
                c->now_known = stuck_read_at(c->proc_fd, "self/sched", 0, &c->buf) >= 0 &&
                               stuck_parse_sched_ns(c->buf.data, c->buf.len, "exec_start", &c->now_nsec) >= 0;
        }
        *ret = c->now_nsec;
        return c->now_known;
}

/* wchan, stack and D duration of thread @tid of @pid (the leader's own files when tid == pid). */
static void read_d_facts(stuck_proc_ctx *c, pid_t pid, pid_t tid, unsigned flags, stuck_proc_sample *p) {
        char dir[48], path[64];
        uint64_t block, now;

        if (tid == pid)
                snprintf(dir, sizeof dir, "%d", (int) pid);
        else
                snprintf(dir, sizeof dir, "%d/task/%d", (int) pid, (int) tid);

        snprintf(path, sizeof path, "%s/wchan", dir);
        p->wchan = read_string(c, path);
        /* "0": no symbol, or no ptrace access to the task. */
        if (p->wchan && (p->wchan[0] == 0 || strcmp(p->wchan, "0") == 0))
                p->wchan = (free(p->wchan), NULL);

        if (!(flags & STUCK_SCAN_NO_STACK)) {
                snprintf(path, sizeof path, "%s/stack", dir);
                p->stack = read_string(c, path);
        }

        snprintf(path, sizeof path, "%s/sched", dir);
        if (stuck_read_at(c->proc_fd, path, 0, &c->buf) < 0 ||
            stuck_parse_sched_ns(c->buf.data, c->buf.len, "block_start", &block) < 0 || block == 0)
                return;
        if (!sched_now(c, &now) || now < block)
                return;
        p->d_usec = (now - block) / 1000;
        p->d_usec_known = true;
}

typedef struct tid_list {
        pid_t *tids;
        size_t n, cap;
} tid_list;

static int tid_list_add(tid_list *l, pid_t t) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 8;
                pid_t *n = reallocarray(l->tids, cap, sizeof(pid_t));
                if (!n)
                        return -ENOMEM;
                l->tids = n;
                l->cap = cap;
        }
        l->tids[l->n++] = t;
        return 0;
}

/* Tids of a process, from its task dir. */
static int list_tids(stuck_proc_ctx *c, pid_t pid, tid_list *tids) {
        char path[32];

        snprintf(path, sizeof path, "%d/task", (int) pid);
        int fd = openat(c->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return gone(-errno);
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                char *e;
                errno = 0;
                long t = strtol(de->d_name, &e, 10);
                if (de->d_name[0] < '1' || de->d_name[0] > '9' || *e || errno || t > INT32_MAX)
                        continue;
                int r = tid_list_add(tids, (pid_t) t);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The other threads' states: a thread in D leaves the leader's stat untouched. Records every tid
 * (for the children lists) and the first thread found in D. */
static int read_threads(stuck_proc_ctx *c, pid_t pid, tid_list *tids, pid_t *first_d, unsigned *n_d) {
        char path[64];

        int r = list_tids(c, pid, tids);
        if (r < 0)
                return r;
        for (size_t i = 0; i < tids->n; i++) {
                pid_t t = tids->tids[i];
                stuck_stat st;
                if (t == pid)
                        continue;
                snprintf(path, sizeof path, "%d/task/%d/stat", (int) pid, (int) t);
                if (read_stat(c, path, &st) < 0)
                        continue; /* the thread exited meanwhile */
                if (st.state == 'D') {
                        if (*first_d == 0)
                                *first_d = t;
                        (*n_d)++;
                }
                stat_done(&st);
        }
        return 0;
}

/* Children of every thread, zombies included (they are in no cgroup.procs). */
static int read_children(stuck_proc_ctx *c, pid_t pid, const tid_list *tids, pid_t **ret, size_t *ret_n) {
        tid_list out = {};
        char path[64];
        int r;

        for (size_t i = 0; i < (tids->n ? tids->n : 1); i++) {
                pid_t tid = tids->n ? tids->tids[i] : pid;
                snprintf(path, sizeof path, "%d/task/%d/children", (int) pid, (int) tid);
                r = stuck_read_at(c->proc_fd, path, 0, &c->buf);
                if (r == -ENOENT && tid != pid)
                        continue; /* that thread exited */
                if (r < 0) {
                        free(out.tids);
                        return gone(r);
                }
                const char *p = c->buf.data, *end = c->buf.data + c->buf.len;
                while (p < end) {
                        uint64_t child;
                        if (stuck_parse_u64(&p, end, &child) < 0 || child == 0 || child > INT32_MAX ||
                            (p < end && *p != ' ' && *p != '\n')) {
                                free(out.tids);
                                return -EBADMSG;
                        }
                        while (p < end && (*p == ' ' || *p == '\n'))
                                p++;
                        r = tid_list_add(&out, (pid_t) child);
                        if (r < 0) {
                                free(out.tids);
                                return r;
                        }
                }
        }
        *ret = out.tids;
        *ret_n = out.n;
        return 0;
}

int stuck_proc_children(stuck_proc_ctx *c, pid_t pid, unsigned n_threads, pid_t **ret, size_t *ret_n) {
        tid_list tids = {};
        int r = 0;

        if (n_threads > 1)
                r = list_tids(c, pid, &tids);
        if (r >= 0)
                r = read_children(c, pid, &tids, ret, ret_n);
        free(tids.tids);
        return r;
}

int stuck_proc_read_ctx(stuck_proc_ctx *c, pid_t pid, unsigned flags, stuck_proc_sample *ret,
                        pid_t **ret_children, size_t *ret_n_children) {
        _cleanup_(stuck_proc_sample_done) stuck_proc_sample p = { .pid = pid };
        _cleanup_free_ pid_t *tids_mem = NULL;
        tid_list tids = {};
        char path[64];
        stuck_stat st;
        pid_t first_d = 0;
        int r;

        if (pid <= 0)
                return -EINVAL;
        snprintf(path, sizeof path, "%d/stat", (int) pid);
        r = read_stat(c, path, &st);
        if (r < 0)
                return r;
        p.comm = st.comm;
        p.ppid = st.ppid;
        p.state = st.state;
        p.kernel_thread = st.flags & PF_KTHREAD;
        p.n_threads = st.n_threads > 0 ? (unsigned) st.n_threads : 0;
        p.start_ticks = st.start_ticks;
        p.cpu_usec = ticks_to_usec(st.utime_ticks + st.stime_ticks, (uint64_t) c->clk_tck);
        if (p.state == 'D') {
                first_d = pid;
                p.n_d_threads = 1;
        }

        if (p.n_threads > 1 && p.state != 'Z') {
                r = read_threads(c, pid, &tids, &first_d, &p.n_d_threads);
                tids_mem = tids.tids;
                if (r == -ENOENT)
                        return r;
                /* Any other failure leaves the leader's state as the answer. */
        }
        if (first_d > 0) {
                p.state = 'D';
                read_d_facts(c, pid, first_d, flags, &p);
        }

        if (flags & STUCK_SCAN_PROC_IO) {
                uint64_t io;
                snprintf(path, sizeof path, "%d/io", (int) pid);
                if (stuck_read_at(c->proc_fd, path, 0, &c->buf) >= 0 &&
                    stuck_parse_proc_io(c->buf.data, c->buf.len, &io) >= 0) {
                        p.io_bytes = io;
                        p.io_known = true;
                }
        }

        if ((flags & STUCK_SCAN_ZOMBIES) && ret_children) {
                pid_t *children = NULL;
                size_t n = 0;
                r = read_children(c, pid, &tids, &children, &n);
                if (r == -ENOENT)
                        return r;
                if (r < 0) {
                        *ret_children = NULL;
                        *ret_n_children = 0;
                } else {
                        p.children_known = true;
                        *ret_children = children;
                        *ret_n_children = n;
                }
        } else if (ret_children) {
                *ret_children = NULL;
                *ret_n_children = 0;
        }

        *ret = p;
        p = (stuck_proc_sample) {};
        return 0;
}

int stuck_proc_read(pid_t pid, unsigned flags, stuck_proc_sample *ret) {
        _cleanup_(stuck_proc_ctx_done) stuck_proc_ctx c = {};
        _cleanup_free_ pid_t *children = NULL;
        size_t n = 0;
        stuck_proc_sample p;
        int r;

        r = stuck_proc_ctx_init(&c);
        if (r < 0)
                return r;
        r = stuck_proc_read_ctx(&c, pid, flags, &p, &children, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char state;
                if (stuck_proc_state(&c, children[i], &state) >= 0 && state == 'Z')
                        p.n_zombie_children++;
        }
        *ret = p;
        return 0;
}
