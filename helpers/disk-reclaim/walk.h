/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Walking a source root safely: directory fds only, no symlink followed, never
 * leaving the root's filesystem or mount, iterative with a depth cap. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "parallel.h"

/* What the walk and the deletion ask statx() for. */
#define WALK_STATX_MASK                                                                            \
        (STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_INO | STATX_ATIME | STATX_MTIME |           \
         STATX_CTIME | STATX_BTIME | STATX_BLOCKS | STATX_MNT_ID)

/* The identity a root was pinned to when it was first opened. */
typedef struct walk_root {
        int fd;           /* O_RDONLY|O_DIRECTORY, owned */
        dev_t dev;
        ino_t ino;
        uint64_t mnt_id;
} walk_root;

/* One regular file found by walk_tree(); valid only during the callback. */
typedef struct walk_entry {
        const char *relpath;    /* "dir/sub/name" relative to the root */
        size_t dir_len;         /* relpath[0..dir_len) is the parent ("" for the root) */
        const char *name;       /* the last component, inside relpath */
        ino_t dir_ino;
        const struct statx *stx;
        unsigned depth;         /* the root's entries are depth 1 */
} walk_entry;

typedef int (*walk_fn)(const walk_entry *e, void *userdata);

/**
 * walk_root_open() - open @path component by component from "/", never
 * following a symlink, and pin its identity.
 *
 * Return: 0, -EINVAL (not absolute or not canonical), -ENOENT, -ENOTDIR,
 * -ELOOP (a component is a symlink) or another -errno. @ret is written only
 * on success; its fd is closed with walk_root_done().
 */
int walk_root_open(const char *path, walk_root *ret);
void walk_root_done(walk_root *r);

/**
 * walk_open_dir() - open the directory @reldir (@len bytes, "" = the root
 * itself) under @root as an O_PATH fd, one component at a time with O_NOFOLLOW,
 * each on @root's dev and mount id.
 *
 * Return: the fd (>= 0, owned by the caller) with *@ret_ino, or -ENOENT,
 * -ENOTDIR (a component is not a directory: a symlink, say), -EXDEV (another
 * filesystem or mount), or the -errno of the open that failed (-EACCES,
 * -EMFILE, ...).
 */
int walk_open_dir(const walk_root *root, const char *reldir, size_t len, ino_t *ret_ino);

/* How walk_tree() goes about it. */
typedef struct walk_params {
        unsigned max_depth;     /* the root's entries are depth 1; 0 = walk nothing */
        unsigned workers;       /* threads reading directories (0 = 1, at most PAR_WORKERS_MAX) */
        walk_fn fn;
        /* fn's userdata for worker i is userdata[i] (NULL: NULL for all): one
         * worker's calls never overlap, different workers' do. */
        void *const *userdata;
        const par_ping *ping;   /* from the calling thread while the walk progresses; may be NULL */
} walk_params;

/**
 * walk_tree() - call @p->fn for every regular file under @root down to
 * @p->max_depth that is on the root's filesystem and mount, has one link and
 * no sticky bit. Symlinks, sockets, FIFOs and devices are never opened, nor
 * stat()ed where readdir() gives the type (a filesystem that says DT_UNKNOWN
 * gets a statx() of every entry); "lost+found" and directories on another dev or mount id are not
 * entered. A directory that vanishes, cannot be read, or is no longer the
 * inode seen from its parent when its turn comes is skipped.
 *
 * Directories are read by @p->workers threads, each taking whole directories,
 * so the order of the calls is not the order of the tree. @p->ping is called
 * from the calling thread about every ping period in which the walk moved, never
 * while it is stuck (a hung mount under a source stays visible to systemd's
 * watchdog); a negative return stops the walk.
 *
 * Return: 0, the first negative return of @p->fn or @p->ping (stops the
 * walk), or -errno (-ENOMEM, -EMFILE, -ESTALE when the root is no longer the
 * pinned inode). @ret_stats (may be NULL) gets the entries looked at and the
 * directories skipped as unreadable (permission or I/O errors; not those that
 * vanished or changed under the walk).
 */
typedef struct walk_stats {
        uint64_t scanned;
        uint64_t unreadable;
} walk_stats;

int walk_tree(const walk_root *root, const walk_params *p, walk_stats *ret_stats);

/* Mount id of an open fd: statx(STATX_MNT_ID), else name_to_handle_at(). */
int walk_fd_mount_id(int fd, uint64_t *ret);

/* statx stamp in µs since the epoch. */
int64_t walk_stamp_usec(const struct statx_timestamp *t);

/**
 * walk_age_ok() - are all the stamps selected by @times older than @cutoff_usec?
 * A btime that statx() did not report is ignored; if no selected stamp is
 * known at all the answer is no. *@ret_stamp gets the newest selected stamp.
 */
bool walk_age_ok(const struct statx *stx, unsigned times, int64_t cutoff_usec, int64_t *ret_stamp);

/* Is @stx a file the rules may ever remove (regular, one link, no sticky bit,
 * on @dev and, when known, on @mnt_id)? */
bool walk_file_removable(const struct statx *stx, dev_t dev, uint64_t mnt_id);
