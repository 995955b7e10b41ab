/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole files replaced atomically (temp file + rename): the one writer behind
 * state records, heal.prom, enroll drop-ins, plan and request files. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Temp files are "<dir>/.#<16 hex>": hidden, never a record name of the state
 * dir nor a *.conf or *.prom, and locked (flock) while their writer lives, so
 * a sweep can tell orphans apart. */
#define HEAL_TEMP_PREFIX ".#"
#define HEAL_TEMP_NAME_MAX (sizeof(HEAL_TEMP_PREFIX) + 16)

/* Flags of heal_write_file_atomic(). */
enum {
        /* No fdatasync of the file, no fsync of the dir: readers and a writer
         * killed at any point still never see a torn file, but after a power
         * loss the file may be the old one, the new one, or empty or cut. */
        HEAL_WRITE_NOSYNC = 1 << 0,
};

/* write() until all of @len is written (EINTR retried). Returns 0 or -errno
 * (-EIO for a write that wrote nothing). */
int heal_write_all(int fd, const void *buf, size_t len);

/**
 * heal_temp_open() - create a new temp file (0600, O_EXCL) in @dirfd, locked.
 * @ret_name: its name, filled on success.
 * Returns the fd (O_WRONLY | O_CLOEXEC) or -errno.
 */
int heal_temp_open(int dirfd, char ret_name[static HEAL_TEMP_NAME_MAX]);

/**
 * heal_write_file_atomic() - replace @name in the directory @dirfd with @data.
 * @dirfd: a directory fd (not AT_FDCWD); @name: a plain name in it.
 * @mode: the permissions of the new file, exactly (umask does not apply).
 * @flags: 0 or HEAL_WRITE_NOSYNC (-EINVAL otherwise).
 *
 * Temp file, write, fdatasync, rename, fsync of the dir (without the two
 * syncs under HEAL_WRITE_NOSYNC). On any failure (-ENOSPC included) the old
 * file is intact and the temp file removed. Returns 0 or -errno.
 */
int heal_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                           unsigned flags);

/* The same for an absolute or relative @path; its directory must exist. */
int heal_write_file_atomic_path(const char *path, const void *data, size_t len, mode_t mode, unsigned flags);
