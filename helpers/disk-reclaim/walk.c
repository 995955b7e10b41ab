/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The safe walk: every lookup is relative to a directory fd we opened with
 * O_NOFOLLOW, and every directory is checked to be on the root's dev and mount. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "parallel.h"
#include "walk.h"

#define OPEN_PATH_FLAGS (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define OPEN_READ_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)

static dev_t stx_dev(const struct statx *stx) {
        return makedev(stx->stx_dev_major, stx->stx_dev_minor);
}

int64_t walk_stamp_usec(const struct statx_timestamp *t) {
        return (int64_t) t->tv_sec * 1000000 + t->tv_nsec / 1000;
}

int walk_fd_mount_id(int fd, uint64_t *ret) {
        struct statx stx;

        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0)
                return -errno;
        if (stx.stx_mask & STATX_MNT_ID) {
                *ret = stx.stx_mnt_id;
                return 0;
        }

        /* Kernels before 5.8: the handle call reports the mount id too. */
        _cleanup_free_ struct file_handle *h = malloc(sizeof(struct file_handle) + MAX_HANDLE_SZ);
        int mnt_id;
        if (!h)
                return -ENOMEM;
        h->handle_bytes = MAX_HANDLE_SZ;
        if (name_to_handle_at(fd, "", h, &mnt_id, AT_EMPTY_PATH) < 0)
                return -errno;
        *ret = (uint64_t) mnt_id;
        return 0;
}

/* Absolute, not "/", and already canonical: no empty, "." or ".." component
 * and no trailing slash, so the path we were given is the path we open. */
static bool root_path_canonical(const char *path) {
        if (!path || path[0] != '/' || path[1] == '\0')
                return false;
        for (const char *p = path + 1;;) {
                size_t n = strcspn(p, "/");
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (p[n] == '\0')
                        return true;
                p += n + 1;
        }
}

/* openat() failed on @name with ENOTDIR or ELOOP: say -ELOOP when it is a symlink. */
static int classify_open_error(int dirfd, const char *name, int err) {
        struct stat st;

        if ((err == ENOTDIR || err == ELOOP) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
        return -err;
}

int walk_root_open(const char *path, walk_root *ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *copy = NULL;
        struct statx stx;
        uint64_t mnt_id;
        char *save = NULL;
        int r;

        if (!root_path_canonical(path))
                return -EINVAL;
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;

        fd = open("/", OPEN_PATH_FLAGS);
        if (fd < 0)
                return -errno;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                int nfd = openat(fd, c, OPEN_PATH_FLAGS);
                if (nfd < 0)
                        return classify_open_error(fd, c, errno);
                closep(&fd);
                fd = nfd;
        }

        /* The walk needs a readable fd; reopen the pinned O_PATH one. */
        int rfd = openat(fd, ".", OPEN_READ_FLAGS);
        if (rfd < 0)
                return -errno;
        closep(&fd);
        fd = rfd;

        if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO, &stx) < 0)
                return -errno;
        if (!S_ISDIR(stx.stx_mode))
                return -ENOTDIR;
        r = walk_fd_mount_id(fd, &mnt_id);
        if (r < 0)
                return r;

        *ret = (walk_root) {
                .fd = TAKE_FD(fd),
                .dev = stx_dev(&stx),
                .ino = stx.stx_ino,
                .mnt_id = mnt_id,
        };
        return 0;
}

void walk_root_done(walk_root *r) {
        if (!r)
                return;
        closep(&r->fd);
}

/* @fd (just opened) is a directory on the root's dev and mount; its inode in *@ret_ino. */
static int check_dir_fd(const walk_root *root, int fd, ino_t *ret_ino) {
        struct statx stx;
        uint64_t mnt_id;
        int r;

        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO | STATX_MNT_ID,
                  &stx) < 0)
                return -errno;
        if (!S_ISDIR(stx.stx_mode))
                return -ENOTDIR;
        if (stx_dev(&stx) != root->dev)
                return -EXDEV;
        if (stx.stx_mask & STATX_MNT_ID)
                mnt_id = stx.stx_mnt_id;
        else {
                r = walk_fd_mount_id(fd, &mnt_id);
                if (r < 0)
                        return r;
        }
        if (mnt_id != root->mnt_id)
                return -EXDEV;
        *ret_ino = stx.stx_ino;
        return 0;
}

int walk_open_dir(const walk_root *root, const char *reldir, size_t len, ino_t *ret_ino) {
        _cleanup_close_ int fd = -EBADF;
        ino_t ino = root->ino;
        int r;

        fd = openat(root->fd, ".", OPEN_PATH_FLAGS);
        if (fd < 0)
                return -errno;

        for (size_t i = 0; i < len;) {
                size_t n = 0;
                while (i + n < len && reldir[i + n] != '/')
                        n++;
                if (n == 0 || n > NAME_MAX || (n == 1 && reldir[i] == '.') ||
                    (n == 2 && reldir[i] == '.' && reldir[i + 1] == '.'))
                        return -EINVAL;

                char name[NAME_MAX + 1];
                memcpy(name, reldir + i, n);
                name[n] = '\0';

                int nfd = openat(fd, name, OPEN_PATH_FLAGS);
                if (nfd < 0)
                        return errno == ENOENT ? -ENOENT : errno == ENOTDIR || errno == ELOOP ? -ENOTDIR : -errno;
                closep(&fd);
                fd = nfd;
                r = check_dir_fd(root, fd, &ino);
                if (r < 0)
                        return r;
                i += n + 1;
        }

        if (ret_ino)
                *ret_ino = ino;
        return TAKE_FD(fd);
}

bool walk_age_ok(const struct statx *stx, unsigned times, int64_t cutoff_usec, int64_t *ret_stamp) {
        static const struct {
                unsigned time, mask;
                size_t offset;
        } stamps[] = {
                { 1U << 0, STATX_ATIME, offsetof(struct statx, stx_atime) },
                { 1U << 1, STATX_MTIME, offsetof(struct statx, stx_mtime) },
                { 1U << 2, STATX_CTIME, offsetof(struct statx, stx_ctime) },
                { 1U << 3, STATX_BTIME, offsetof(struct statx, stx_btime) },
        };
        int64_t newest = INT64_MIN;
        bool known = false;

        for (size_t i = 0; i < ELEMENTSOF(stamps); i++) {
                if (!(times & stamps[i].time) || !(stx->stx_mask & stamps[i].mask))
                        continue;
                const struct statx_timestamp *t =
                        (const struct statx_timestamp *) ((const char *) stx + stamps[i].offset);
                int64_t u = walk_stamp_usec(t);
                if (u > newest)
                        newest = u;
                known = true;
        }
        if (ret_stamp)
                *ret_stamp = newest;
        return known && newest < cutoff_usec;
}

bool walk_file_removable(const struct statx *stx, dev_t dev, uint64_t mnt_id) {
        if (!S_ISREG(stx->stx_mode) || stx->stx_nlink != 1 || (stx->stx_mode & S_ISVTX))
                return false;
        if (stx_dev(stx) != dev)
                return false;
        /* A file can be a bind-mount target too. */
        if ((stx->stx_mask & STATX_MNT_ID) && stx->stx_mnt_id != mnt_id)
                return false;
        return true;
}

/* ---- the walk: directories as tasks shared by worker threads ----------------- */

/* A directory still to read. It holds no fd: a worker re-opens it from the
 * root, component by component (walk_open_dir()), so a tree with many
 * directories cannot run the process out of fds, and a directory swapped for
 * a symlink or a mount after it was seen is never entered. */
typedef struct dir_task {
        char *relpath;          /* owned; "" for the root */
        size_t len;
        ino_t ino;              /* as statx() saw it from the parent */
        unsigned depth;         /* of its entries: the root's entries are 1 */
} dir_task;

typedef struct walk_job {
        const walk_root *root;
        const walk_params *params;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        dir_task *tasks;        /* a stack: depth first keeps it short */
        size_t n, cap;
        unsigned busy;          /* workers reading a directory, which may add tasks */
        _Atomic bool failed;
        _Atomic uint64_t scanned;
        _Atomic uint64_t unreadable;
} walk_job;

/* Per worker: the path buffer and the directories found in the current one. */
typedef struct walker {
        char *path;
        size_t cap;
        dir_task *found;
        size_t n_found, cap_found;
        uint64_t scanned;
        uint64_t unreadable;    /* directories that could not be opened or read (not races) */
} walker;

/* Make room for @need bytes (NUL included) in the path buffer. */
static int path_reserve(walker *w, size_t need) {
        if (need <= w->cap)
                return 0;
        size_t cap = w->cap ? w->cap : 256;
        while (cap < need)
                cap *= 2;
        char *p = realloc(w->path, cap);
        if (!p)
                return -ENOMEM;
        w->path = p;
        w->cap = cap;
        return 0;
}

/* Write "<dir>/<name>" into the path buffer after the directory's @dir_len bytes. */
static int path_put(walker *w, size_t dir_len, const char *name, size_t *ret_len) {
        size_t n = strlen(name);
        size_t len = dir_len ? dir_len + 1 + n : n;
        int r = path_reserve(w, len + 1);
        if (r < 0)
                return r;
        if (dir_len)
                w->path[dir_len] = '/';
        memcpy(w->path + (dir_len ? dir_len + 1 : 0), name, n + 1);
        *ret_len = len;
        return 0;
}

static void tasks_free(dir_task *t, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(t[i].relpath);
}

static int tasks_push(dir_task **t, size_t *n, size_t *cap, dir_task task) {
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 16;
                dir_task *nt = reallocarray(*t, c, sizeof(dir_task));
                if (!nt)
                        return -ENOMEM;
                *t = nt;
                *cap = c;
        }
        (*t)[(*n)++] = task;
        return 0;
}

/* Remember subdirectory @len bytes of the path buffer for later, if it stays
 * on the root's dev and mount. */
static int found_dir(const walk_root *root, walker *w, const struct statx *stx, size_t len,
                     unsigned depth) {
        if (stx_dev(stx) != root->dev)
                return 0;
        if ((stx->stx_mask & STATX_MNT_ID) && stx->stx_mnt_id != root->mnt_id)
                return 0;
        char *relpath = strndup(w->path, len);
        if (!relpath)
                return -ENOMEM;
        int r = tasks_push(&w->found, &w->n_found, &w->cap_found,
                           (dir_task) { .relpath = relpath, .len = len, .ino = stx->stx_ino, .depth = depth });
        if (r < 0)
                free(relpath);
        return r;
}

/* A directory that could not be opened for a reason other than a race with
 * its removal or replacement: permissions, I/O errors. */
static bool unreadable_errno(int err) {
        return err != ENOENT && err != ENOTDIR && err != ELOOP && err != EXDEV;
}

/* Open @t for reading; 0 (and *@ret_fd < 0) when it is to be skipped: gone,
 * no longer the directory that was seen, or unreadable (w->unreadable counts
 * those). */
static int open_task(const walk_root *root, const dir_task *t, walker *w, int *ret_fd) {
        _cleanup_close_ int pfd = -EBADF;
        ino_t ino;
        int r;

        *ret_fd = -EBADF;
        if (t->len == 0) {
                int fd = openat(root->fd, ".", OPEN_READ_FLAGS);
                if (fd < 0)
                        return -errno;
                r = check_dir_fd(root, fd, &ino);
                if (r >= 0 && ino != root->ino)
                        r = -ESTALE;
                if (r < 0) {
                        close(fd);
                        return r;
                }
                *ret_fd = fd;
                return 0;
        }

        pfd = walk_open_dir(root, t->relpath, t->len, &ino);
        if (pfd == -ENOMEM || pfd == -EMFILE || pfd == -ENFILE)
                return pfd;
        if (pfd < 0) {
                w->unreadable += unreadable_errno(-pfd);
                return 0;
        }
        if (ino != t->ino)
                return 0;
        int fd = openat(pfd, ".", OPEN_READ_FLAGS);
        if (fd < 0) {
                if (errno == ENOMEM || errno == EMFILE || errno == ENFILE)
                        return -errno;
                w->unreadable += unreadable_errno(errno);
                return 0;
        }
        *ret_fd = fd;
        return 0;
}

static bool is_dot(const char *n) {
        return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static bool job_stopping(walk_job *j, const par_worker *pw) {
        return atomic_load_explicit(pw->stop, memory_order_relaxed) ||
               atomic_load_explicit(&j->failed, memory_order_relaxed);
}

/* Read one directory: files go to the callback, subdirectories to w->found. */
static int walk_dir(walk_job *j, par_worker *pw, walker *w, const dir_task *t) {
        const walk_root *root = j->root;
        const walk_params *p = j->params;
        void *userdata = p->userdata ? p->userdata[pw->index] : NULL;
        struct dirent *de;
        int fd, r;

        r = open_task(root, t, w, &fd);
        if (r < 0 || fd < 0)
                return r;
        DIR *d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }

        r = path_reserve(w, t->len + 1);
        if (r >= 0) {
                memcpy(w->path, t->relpath, t->len);
                w->path[t->len] = '\0';
        }
        /* readdir() returning NULL is the end, the directory vanished under us
         * (ENOENT: done either way), or it could not be read to the end. */
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                struct statx stx;
                size_t len;

                if (is_dot(de->d_name))
                        continue;
                if (++w->scanned % 256 == 0) {
                        atomic_store_explicit(&pw->progress, w->scanned, memory_order_relaxed);
                        if (job_stopping(j, pw)) {
                                r = -ECANCELED;
                                break;
                        }
                }

                /* The file type from readdir spares a statx for what we never touch. */
                if (de->d_type != DT_REG && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;
                if (de->d_type == DT_DIR &&
                    (t->depth >= p->max_depth || strcmp(de->d_name, "lost+found") == 0))
                        continue;

                if (statx(dirfd(d), de->d_name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, WALK_STATX_MASK,
                          &stx) < 0) {
                        if (errno == ENOMEM)
                                r = -ENOMEM;
                        continue; /* gone meanwhile, or not ours to look at */
                }

                r = path_put(w, t->len, de->d_name, &len);
                if (r < 0)
                        break;

                if (S_ISDIR(stx.stx_mode)) {
                        if (t->depth < p->max_depth && strcmp(de->d_name, "lost+found") != 0)
                                r = found_dir(root, w, &stx, len, t->depth + 1);
                        continue;
                }
                if (!walk_file_removable(&stx, root->dev, root->mnt_id))
                        continue;

                walk_entry e = {
                        .relpath = w->path,
                        .dir_len = t->len,
                        .name = w->path + (t->len ? t->len + 1 : 0),
                        .dir_ino = t->ino,
                        .stx = &stx,
                        .depth = t->depth,
                };
                r = p->fn(&e, userdata);
        }
        if (r >= 0 && !de && errno != 0) {
                if (errno == ENOMEM)
                        r = -ENOMEM;
                else
                        w->unreadable += errno != ENOENT;
        }
        closedir(d);
        atomic_store_explicit(&pw->progress, w->scanned, memory_order_relaxed);
        return r;
}

/* Take a task, waiting while others may still add some. False: all done. */
static bool job_take(walk_job *j, const par_worker *pw, dir_task *ret) {
        bool ok = false;

        pthread_mutex_lock(&j->lock);
        for (;;) {
                if (atomic_load(&j->failed) || atomic_load(pw->stop))
                        break;
                if (j->n > 0) {
                        *ret = j->tasks[--j->n];
                        j->busy++;
                        ok = true;
                        break;
                }
                if (j->busy == 0)
                        break;
                pthread_cond_wait(&j->cond, &j->lock);
        }
        pthread_mutex_unlock(&j->lock);
        return ok;
}

/* Hand over what the last directory held, and say whether it failed. */
static int job_release(walk_job *j, walker *w, int r) {
        pthread_mutex_lock(&j->lock);
        for (size_t i = 0; r >= 0 && i < w->n_found; i++) {
                r = tasks_push(&j->tasks, &j->n, &j->cap, w->found[i]);
                if (r >= 0)
                        w->found[i].relpath = NULL;
        }
        if (r < 0)
                atomic_store(&j->failed, true);
        j->busy--;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);

        tasks_free(w->found, w->n_found);
        w->n_found = 0;
        return r;
}

static int walk_worker(par_worker *pw) {
        walk_job *j = pw->userdata;
        walker w = {};
        dir_task t;
        int r = 0;

        while (r >= 0 && job_take(j, pw, &t)) {
                r = walk_dir(j, pw, &w, &t);
                free(t.relpath);
                r = job_release(j, &w, r);
        }
        /* Stopped for another worker's failure or the ping's: that one is what is reported. */
        if (r == -ECANCELED && job_stopping(j, pw))
                r = 0;
        atomic_fetch_add(&j->scanned, w.scanned);
        atomic_fetch_add(&j->unreadable, w.unreadable);
        free(w.found);
        free(w.path);
        return r;
}

int walk_tree(const walk_root *root, const walk_params *params, walk_stats *ret_stats) {
        walk_job j = { .root = root, .params = params };
        int r;

        if (params->max_depth == 0)
                return 0;
        j.tasks = calloc(1, sizeof(dir_task));
        if (!j.tasks)
                return -ENOMEM;
        j.tasks[0] = (dir_task) { .relpath = strdup(""), .ino = root->ino, .depth = 1 };
        if (!j.tasks[0].relpath) {
                free(j.tasks);
                return -ENOMEM;
        }
        j.n = j.cap = 1;
        pthread_mutex_init(&j.lock, NULL);
        pthread_cond_init(&j.cond, NULL);

        r = par_run(params->workers, walk_worker, &j, params->ping);

        tasks_free(j.tasks, j.n);
        free(j.tasks);
        pthread_cond_destroy(&j.cond);
        pthread_mutex_destroy(&j.lock);
        if (r < 0)
                return r;
        if (ret_stats)
                *ret_stats = (walk_stats) { .scanned = atomic_load(&j.scanned), .unreadable = atomic_load(&j.unreadable) };
        return 0;
}
