/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Removing exactly the planned files: every lookup re-done from the root fd,
 * every file re-checked and flock()ed before unlinkat(); deletion is final. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "plan.h"
#include "parallel-sort.h"
#include "parallel.h"
#include "walk.h"

/* Re-open a source root and insist it is the directory the plan walked. */
static int root_reopen(const reclaim_plan_source *ps, walk_root *ret) {
        walk_root root;
        int r = walk_root_open(ps->root, &root);
        if (r < 0)
                return r;
        if (root.dev != ps->dev || root.ino != ps->ino || root.mnt_id != ps->mnt_id) {
                walk_root_done(&root);
                return -ESTALE;
        }
        *ret = root;
        return 0;
}

/* Still the very file the plan chose, and still one the rules may remove? */
static reclaim_outcome recheck(const reclaim_plan_source *ps, const reclaim_file *f,
                               const struct statx *stx) {
        int64_t stamp;

        if (!walk_file_removable(stx, ps->dev, ps->mnt_id) || stx->stx_ino != f->ino ||
            makedev(stx->stx_dev_major, stx->stx_dev_minor) != f->dev)
                return RECLAIM_SKIP_CHANGED;
        if (!walk_age_ok(stx, ps->times, ps->cutoff_usec, &stamp))
                return RECLAIM_SKIP_YOUNGER;
        if (stamp != f->stamp_usec)
                return RECLAIM_SKIP_CHANGED; /* touched since the walk, even if still old */
        return RECLAIM_DELETED;
}

static reclaim_outcome fail_errno(reclaim_file *f, int err) {
        f->error = err;
        return RECLAIM_SKIP_ERROR;
}

/* openat2() is there (Linux 5.6) and not filtered out. */
static bool openat2_usable(void) {
        static _Atomic int usable = -1;
        int u = atomic_load(&usable);

        if (u < 0) {
                struct open_how how = { .flags = O_PATH | O_CLOEXEC };
                int fd = (int) syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
                u = fd >= 0;
                if (fd >= 0)
                        close(fd);
                atomic_store(&usable, u);
        }
        return u > 0;
}

static int open_how_flags(int dfd, const char *name, int flags) {
        if (!openat2_usable())
                return openat(dfd, name, flags);
        /* Beyond O_NOFOLLOW: the open may not step onto a mount (a file
         * bind-mounted over the name) or trigger an automount either
         * (RESOLVE_NO_XDEV: EXDEV). */
        struct open_how how = {
                .flags = (uint64_t) flags,
                .resolve = RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        return (int) syscall(SYS_openat2, dfd, name, &how, sizeof(how));
}

static int open_file(int dfd, const char *name) {
        int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
        /* O_NOATIME is refused (EPERM) for files we do not own without CAP_FOWNER. */
        int fd = open_how_flags(dfd, name, flags | O_NOATIME);
        if (fd < 0 && errno == EPERM)
                fd = open_how_flags(dfd, name, flags);
        return fd;
}

/* The parent directory of the files being removed, opened once per directory
 * from the root, component by component (walk_open_dir()). Holding its fd
 * for the files that follow is as safe as re-opening it: an fd names the
 * directory inode, so a later swap of a path component for a symlink cannot
 * redirect it, and each file is still matched by dev and inode. */
typedef struct parent {
        const char *dir;        /* points into the relpath of the file that opened it */
        size_t len;
        int fd;                 /* >= 0, or the -errno walk_open_dir() returned */
        ino_t ino;
        bool valid;
} parent;

static void parent_done(parent *d) {
        if (d->fd >= 0)
                closep(&d->fd);
        d->valid = false;
}

static bool parent_is(const parent *d, const char *relpath, size_t len) {
        return d->valid && d->len == len && memcmp(d->dir, relpath, len) == 0;
}

static void parent_get(parent *d, const walk_root *root, const char *relpath, size_t len) {
        if (parent_is(d, relpath, len))
                return;
        parent_done(d);
        *d = (parent) { .dir = relpath, .len = len, .valid = true };
        d->fd = walk_open_dir(root, relpath, len, &d->ino);
}

/* The fds of files this run removed, each still holding its flock. They are
 * closed together, by one close_range() when their numbers are contiguous:
 * a lock held a few files longer on a file that has no name any more changes
 * nothing for anyone, and it spares one syscall per file, which is a good
 * share of the cost of a removal. */
#define HELD_MAX 128

typedef struct held {
        int fds[HELD_MAX];
        size_t n;
        size_t max;     /* HELD_MAX, or its share when the workers' fd table is shared */
} held;

/* Each stretch of consecutive numbers (fds[i] == fds[i - 1] + 1) is a range
 * that holds our fds only, closed by one close_range(). New fds take the
 * lowest free numbers, so a batch is one or two such stretches. */
static void held_flush(held *h) {
        for (size_t i = 0; i < h->n;) {
                size_t j = i + 1;
                while (j < h->n && h->fds[j] == h->fds[j - 1] + 1)
                        j++;
                if (close_range((unsigned) h->fds[i], (unsigned) h->fds[j - 1], 0) < 0)
                        for (size_t k = i; k < j; k++)
                                close(h->fds[k]);
                i = j;
        }
        h->n = 0;
}

static void held_add(held *h, int fd) {
        if (h->n >= h->max)
                held_flush(h);
        h->fds[h->n++] = fd;
}

static reclaim_outcome delete_one(const reclaim_plan_source *ps, const parent *d, reclaim_file *f,
                                  const char *name, held *h) {
        _cleanup_close_ int fd = -EBADF;
        struct statx stx;
        reclaim_outcome o;

        if (d->fd == -ENOENT)
                return RECLAIM_SKIP_GONE;
        if (d->fd == -ENOTDIR || d->fd == -EXDEV || d->fd == -EINVAL)
                return RECLAIM_SKIP_PATH;
        if (d->fd < 0)
                return fail_errno(f, -d->fd);
        if (d->ino != f->dir_ino)
                return RECLAIM_SKIP_PATH;

        /* No statx() of the name before this open. The walk saw a regular file
         * here; what can take the name since then is opened as no more than
         * this: no symlink is followed, no mount entered or automount
         * triggered (RESOLVE_NO_XDEV), a socket does not open, a directory
         * opens read-only, a FIFO opens at once without blocking (a writer
         * waiting for a reader then meets one that closes without reading:
         * EPIPE, for a FIFO that someone put in the place of an old file), and
         * a device node takes CAP_MKNOD to plant while the unit's
         * PrivateDevices= device policy refuses to open one. A statx() before
         * open() would only narrow that window, not close it, at a sixth of
         * the cost of a removal; whether anything is removed is decided on
         * the fd we hold, below. */
        fd = open_file(d->fd, name);
        if (fd < 0)
                return errno == ENOENT ? RECLAIM_SKIP_GONE
                       /* a symlink (ELOOP), a socket (ENXIO) or a mount (EXDEV) took the name */
                       : errno == ELOOP || errno == ENXIO || errno == EXDEV ? RECLAIM_SKIP_CHANGED
                       /* a lease holder is being asked to let go (O_NONBLOCK) */
                       : errno == EWOULDBLOCK ? RECLAIM_SKIP_LOCKED
                                              : fail_errno(f, errno);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? RECLAIM_SKIP_LOCKED : fail_errno(f, errno);

        /* With the lock held: the fd we hold is still the planned file. */
        if (statx(fd, "", AT_EMPTY_PATH, WALK_STATX_MASK, &stx) < 0)
                return fail_errno(f, errno);
        o = recheck(ps, f, &stx);
        if (o != RECLAIM_DELETED)
                return o;

        /* The name could still be renamed over between the check and here; that
         * takes write access to this directory, which could unlink it anyway. */
        if (unlinkat(d->fd, name, 0) < 0)
                return errno == ENOENT ? RECLAIM_SKIP_GONE : fail_errno(f, errno);
        /* The lock is let go with the fd, after the name is gone. */
        held_add(h, TAKE_FD(fd));
        return RECLAIM_DELETED;
}

/* One file in execution order, with the keys of that order copied out of the
 * plan so that sorting compares integers in one small array. */
typedef struct order_entry {
        uint32_t source;
        ino_t dir_ino;
        ino_t ino;
        size_t index;
        size_t dir_len;
} order_entry;

/* ---- directories emptied by the run ------------------------------------------ */

typedef struct dirref {
        const char *path;
        size_t len;
        ino_t ino;      /* the directory walked, when known (a removed file's parent); 0: an ancestor */
} dirref;

/* Longest first (a child before its parent), then by content for uniq. */
static int cmp_dirref(const void *a, const void *b) {
        const dirref *x = a, *y = b;
        if (x->len != y->len)
                return x->len > y->len ? -1 : 1;
        return memcmp(x->path, y->path, x->len);
}

static size_t dirrefs_uniq(dirref *d, size_t n) {
        size_t m = 0;

        if (n == 0)
                return 0;
        qsort(d, n, sizeof(dirref), cmp_dirref);
        for (size_t i = 0; i < n; i++) {
                if (m == 0 || cmp_dirref(&d[m - 1], &d[i]) != 0)
                        d[m++] = d[i];
                else if (d[m - 1].ino == 0)
                        d[m - 1].ino = d[i].ino;
        }
        return m;
}

/* Remove @d if it is (now) empty; it must be a directory on the root's mount
 * and, where known, the one walked (not an empty one made since at its path). */
static bool rmdir_one(const walk_root *root, const dirref *d) {
        _cleanup_close_ int pfd = -EBADF;
        size_t parent_len = d->len;
        struct statx stx;
        char name[NAME_MAX + 1];

        while (parent_len > 0 && d->path[parent_len - 1] != '/')
                parent_len--;
        size_t name_len = d->len - parent_len;
        if (name_len == 0 || name_len > NAME_MAX)
                return false;
        memcpy(name, d->path + parent_len, name_len);
        name[name_len] = '\0';

        pfd = walk_open_dir(root, d->path, parent_len ? parent_len - 1 : 0, NULL);
        if (pfd < 0)
                return false;
        if (statx(pfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE | STATX_INO | STATX_MNT_ID,
                  &stx) < 0 ||
            !S_ISDIR(stx.stx_mode) || makedev(stx.stx_dev_major, stx.stx_dev_minor) != root->dev ||
            ((stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id != root->mnt_id) || (d->ino && stx.stx_ino != d->ino))
                return false;
        /* Fails with ENOTEMPTY unless the run left it empty. */
        return unlinkat(pfd, name, AT_REMOVEDIR) == 0;
}

static int dirrefs_push(dirref **d, size_t *n, size_t *cap, dirref ref) {
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 64;
                dirref *nd = reallocarray(*d, c, sizeof(dirref));
                if (!nd)
                        return -ENOMEM;
                *d = nd;
                *cap = c;
        }
        (*d)[(*n)++] = ref;
        return 0;
}

/* The parents of the files of order[start, end) (one source) that were
 * removed, and their parents up to (not including) the root, deepest first;
 * a directory empty before the run is never among them. Files come grouped by
 * directory, so the list starts with one entry per directory, not per file
 * (a directory seen under two names during the walk may keep one of them). */
static int remove_emptied_dirs(const reclaim_plan *p, const order_entry *order, size_t start, size_t end,
                               const walk_root *root, uint64_t *ret_removed) {
        _cleanup_free_ dirref *d = NULL;
        size_t n = 0, cap = 0;
        const order_entry *last = NULL;

        for (size_t k = start; k < end; k++) {
                const order_entry *o = &order[k];
                if (o->dir_len == 0 || p->files[o->index].outcome != RECLAIM_DELETED)
                        continue;
                if (last && last->dir_ino == o->dir_ino && last->dir_len == o->dir_len)
                        continue;
                last = o;
                if (dirrefs_push(&d, &n, &cap, (dirref) { p->files[o->index].relpath, o->dir_len, o->dir_ino }) < 0)
                        return -ENOMEM;
        }
        n = dirrefs_uniq(d, n);

        size_t direct = n;
        for (size_t i = 0; i < direct; i++)
                for (size_t k = 0; k < d[i].len; k++) {
                        if (d[i].path[k] != '/')
                                continue;
                        if (dirrefs_push(&d, &n, &cap, (dirref) { d[i].path, k }) < 0)
                                return -ENOMEM;
                }
        n = dirrefs_uniq(d, n);

        for (size_t i = 0; i < n; i++)
                if (rmdir_one(root, &d[i]))
                        (*ret_removed)++;
        return 0;
}

/* ---- the run -------------------------------------------------------------------- */

void reclaim_result_done(reclaim_result *r) {
        if (!r)
                return;
        free(r->sources);
        *r = (reclaim_result) {};
}

static void account(reclaim_result *res, const reclaim_file *f) {
        reclaim_source_result *sr = &res->sources[f->source];

        if (f->outcome == RECLAIM_DELETED) {
                sr->freed_files++;
                sr->freed_bytes += f->size;
                res->freed_files++;
                res->freed_bytes += f->size;
        } else {
                sr->skipped[f->outcome]++;
                res->skipped_files++;
        }
}

/* Execution order: by source, then by directory (one parent open per run of
 * a directory's files), then by inode. The directory is known by the inode
 * it had when walked: equal for all files read from it; a directory renamed
 * during the walk and seen under two names only costs more parent opens (a
 * worker opens each file's parent by that file's own path). The set is the
 * plan's; only the order differs. */
static int cmp_order(const void *a, const void *b) {
        const order_entry *x = a, *y = b;

        if (x->source != y->source)
                return x->source < y->source ? -1 : 1;
        if (x->dir_ino != y->dir_ino)
                return x->dir_ino < y->dir_ino ? -1 : 1;
        /* Inode order within a directory: inode tables and bitmaps are then
         * touched in sequence, which on ext4 roughly halves the unlink cost. */
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index ? 1 : 0;
}

/* The removal of one source's files, shared by its workers: the files in
 * execution order, cut into runs of one directory each (at most RUN_MAX
 * files, so one large directory is shared too), taken one run at a time. */
#define RUN_MAX 1024

typedef struct exec_job {
        reclaim_plan *p;
        const order_entry *order;
        const walk_root *root;
        size_t *runs;           /* start of each run in order[]; runs[n_runs] is the end */
        size_t n_runs;
        _Atomic size_t next;
} exec_job;

static int exec_worker(par_worker *w) {
        exec_job *j = w->userdata;
        parent dir = { .fd = -EBADF };
        /* Workers that share one fd table (unshare() refused) share the process's fd limit too. */
        held h = { .max = w->private_fds ? HELD_MAX : HELD_MAX / w->workers + 1 };
        uint64_t done = 0;

        for (;;) {
                size_t run = atomic_fetch_add(&j->next, 1);
                if (run >= j->n_runs || atomic_load_explicit(w->stop, memory_order_relaxed))
                        break;
                for (size_t k = j->runs[run]; k < j->runs[run + 1]; k++) {
                        reclaim_file *f = &j->p->files[j->order[k].index];
                        if (atomic_load_explicit(w->stop, memory_order_relaxed))
                                break;
                        size_t len = j->order[k].dir_len;
                        if (!parent_is(&dir, f->relpath, len)) {
                                held_flush(&h);
                                parent_get(&dir, j->root, f->relpath, len);
                        }
                        f->error = 0;
                        f->outcome = delete_one(&j->p->sources[f->source], &dir, f,
                                                f->relpath + (len ? len + 1 : 0), &h);
                        atomic_store_explicit(&w->progress, ++done, memory_order_relaxed);
                }
                held_flush(&h);
        }
        held_flush(&h);
        parent_done(&dir);
        return 0;
}

/* Cut order[start, end) (one source) into runs of one directory, RUN_MAX at
 * most. A directory is known here by its inode when walked; should one inode
 * have been seen under two names, the worker still opens each file's own
 * parent by its path (parent_is()), so a run is only a unit of work. */
static size_t cut_runs(const order_entry *order, size_t start, size_t end, size_t *runs) {
        size_t n = 0;

        for (size_t k = start; k < end; k++) {
                const order_entry *o = &order[k];
                bool same = k > start && k - runs[n - 1] < RUN_MAX && o->dir_ino == order[k - 1].dir_ino &&
                            o->dir_len == order[k - 1].dir_len;
                if (!same)
                        runs[n++] = k;
        }
        runs[n] = end;
        return n;
}

/* Remove source @s's files, order[start, end), on @workers threads; then the
 * directories they leave empty. */
static int execute_source(reclaim_plan *p, const order_entry *order, size_t start, size_t end,
                          size_t *runs, const reclaim_run_opts *opts, reclaim_result *res) {
        uint32_t s = order[start].source;
        walk_root root = { .fd = -EBADF };
        int r;

        /* A root that moved or changed stops everything: fail closed. */
        r = root_reopen(&p->sources[s], &root);
        if (r < 0)
                return r;

        exec_job j = { .p = p, .order = order, .root = &root, .runs = runs };
        j.n_runs = cut_runs(order, start, end, runs);
        r = par_run(reclaim_workers(opts), exec_worker, &j, opts ? &opts->ping : NULL);

        /* Files a stopped run never reached are still "planned": not counted. */
        for (size_t k = start; k < end; k++) {
                const reclaim_file *f = &p->files[order[k].index];
                if (f->outcome != RECLAIM_PLANNED)
                        account(res, f);
        }
        if (r >= 0)
                r = remove_emptied_dirs(p, order, start, end, &root, &res->dirs_removed);
        walk_root_done(&root);
        return r;
}

int reclaim_plan_execute(reclaim_plan *p, const reclaim_run_opts *opts, reclaim_result *ret) {
        _cleanup_free_ order_entry *order = NULL;
        _cleanup_free_ size_t *runs = NULL;
        reclaim_result res = {};
        int r = 0;

        order = calloc(p->n_files ? p->n_files : 1, sizeof(order_entry));
        runs = calloc(p->n_files + 1, sizeof(size_t));
        res.sources = calloc(p->n_sources ? p->n_sources : 1, sizeof(reclaim_source_result));
        if (!order || !runs || !res.sources) {
                free(res.sources);
                return -ENOMEM;
        }
        res.n_sources = p->n_sources;
        for (size_t i = 0; i < p->n_files; i++) {
                const reclaim_file *f = &p->files[i];
                order[i] = (order_entry) {
                        .source = f->source,
                        .dir_ino = f->dir_ino,
                        .ino = f->ino,
                        .index = i,
                        .dir_len = f->dir_len,
                };
                p->files[i].outcome = RECLAIM_PLANNED;
        }
        if (p->n_files > 1)
                (void) par_sort((void **) &order, p->n_files, sizeof(order_entry), cmp_order,
                                reclaim_workers(opts));

        for (size_t start = 0, end; r >= 0 && start < p->n_files; start = end) {
                uint32_t s = order[start].source;
                for (end = start + 1; end < p->n_files && order[end].source == s; end++)
                        ;
                r = execute_source(p, order, start, end, runs, opts, &res);
        }

        *ret = res;
        if (r < 0)
                return r;
        return res.freed_files > INT_MAX ? INT_MAX : (int) res.freed_files;
}
