/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The safe walk: every lookup is relative to a directory fd we opened with
 * O_NOFOLLOW, and every directory is checked to be on the root's dev and mount. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "heal/cleanup.h"
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
                        return errno == ENOENT ? -ENOENT : -ENOTDIR;
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

/* ---- the iterative walk ----------------------------------------------------- */

typedef struct frame {
        DIR *dir;
        size_t len;     /* of the directory's relpath in the path buffer */
        ino_t ino;
} frame;

typedef struct walker {
        const walk_root *root;
        frame *stack;
        unsigned n;
        char *path;
        size_t cap;
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

/* Write "<dir>/<name>" into the path buffer after the top frame's directory. */
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

static int push_dir(walker *w, int fd, size_t len, ino_t ino) {
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        w->stack[w->n++] = (frame) { .dir = d, .len = len, .ino = ino };
        return 0;
}

/* A subdirectory seen by statx: enter it if it stays on our dev and mount and
 * the inode we open is the one we looked at (no swap in between). */
static int enter_dir(walker *w, const frame *f, const char *name, const struct statx *stx,
                     size_t len) {
        const walk_root *root = w->root;
        ino_t ino;

        if (stx_dev(stx) != root->dev)
                return 0;
        if ((stx->stx_mask & STATX_MNT_ID) && stx->stx_mnt_id != root->mnt_id)
                return 0;

        int fd = openat(dirfd(f->dir), name, OPEN_READ_FLAGS);
        if (fd < 0)
                return errno == ENOMEM || errno == EMFILE || errno == ENFILE ? -errno : 0;
        int r = check_dir_fd(root, fd, &ino);
        if (r < 0 || ino != stx->stx_ino) {
                close(fd);
                return r == -ENOMEM ? r : 0;
        }
        return push_dir(w, fd, len, ino);
}

static void walker_done(walker *w) {
        while (w->n > 0)
                closedir(w->stack[--w->n].dir);
        free(w->stack);
        free(w->path);
}

static bool is_dot(const char *n) {
        return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

int walk_tree(const walk_root *root, unsigned max_depth, walk_fn fn, void *userdata,
              walk_ping_fn ping, void *ping_userdata, uint64_t *ret_scanned) {
        _cleanup_(walker_done) walker w = { .root = root };
        uint64_t scanned = 0;
        ino_t ino;
        int r;

        if (max_depth == 0)
                return 0;
        w.stack = calloc(max_depth, sizeof(frame));
        if (!w.stack)
                return -ENOMEM;
        r = path_reserve(&w, 256);
        if (r < 0)
                return r;
        w.path[0] = '\0';

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
        r = push_dir(&w, fd, 0, ino);
        if (r < 0)
                return r;

        while (w.n > 0) {
                frame *f = &w.stack[w.n - 1];
                unsigned depth = w.n; /* of the entries of f */
                struct dirent *de;
                struct statx stx;
                size_t len;

                errno = 0;
                de = readdir(f->dir);
                if (!de) {
                        /* End of directory, or it vanished under us: either way, done with it. */
                        closedir(f->dir);
                        w.n--;
                        continue;
                }
                if (is_dot(de->d_name))
                        continue;
                if (++scanned % 1000 == 0 && ping) {
                        r = ping(ping_userdata);
                        if (r < 0)
                                return r;
                }

                /* The file type from readdir spares a statx for what we never touch. */
                if (de->d_type != DT_REG && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;
                if (de->d_type == DT_DIR &&
                    (depth >= max_depth || strcmp(de->d_name, "lost+found") == 0))
                        continue;

                if (statx(dirfd(f->dir), de->d_name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
                          WALK_STATX_MASK, &stx) < 0) {
                        if (errno == ENOMEM)
                                return -ENOMEM;
                        continue; /* gone meanwhile, or not ours to look at */
                }

                r = path_put(&w, f->len, de->d_name, &len);
                if (r < 0)
                        return r;

                if (S_ISDIR(stx.stx_mode)) {
                        if (depth >= max_depth || strcmp(de->d_name, "lost+found") == 0)
                                continue;
                        r = enter_dir(&w, f, de->d_name, &stx, len);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!walk_file_removable(&stx, root->dev, root->mnt_id))
                        continue;

                walk_entry e = {
                        .relpath = w.path,
                        .dir_len = f->len,
                        .name = w.path + (f->len ? f->len + 1 : 0),
                        .dir_ino = f->ino,
                        .stx = &stx,
                        .depth = depth,
                };
                r = fn(&e, userdata);
                if (r < 0)
                        return r;
        }

        if (ret_scanned)
                *ret_scanned = scanned;
        return 0;
}
