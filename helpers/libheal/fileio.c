/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole files replaced atomically: a locked temp file in the same directory,
 * written, synced, renamed over the old one, and the directory synced. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/fileio.h"
#include "heal/hash.h"

int heal_write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;

        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                len -= (size_t)k;
        }
        return 0;
}

static uint64_t random_u64(void) {
        static uint64_t counter;
        uint64_t v;

        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
                return v;
        /* No entropy yet (early boot): unique enough with O_EXCL retries. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t seed[4] = {(uint64_t)getpid(), (uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, ++counter};
        return heal_fnv1a64(seed, sizeof(seed));
}

int heal_temp_open(int dirfd, char ret_name[static HEAL_TEMP_NAME_MAX]) {
        char name[HEAL_TEMP_NAME_MAX];

        for (int attempt = 0; attempt < 64; attempt++) {
                snprintf(name, sizeof(name), HEAL_TEMP_PREFIX "%016" PRIx64, random_u64());
                _cleanup_close_ int fd = openat(
                        dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd < 0) {
                        if (errno == EEXIST)
                                continue;
                        return -errno;
                }
                while (flock(fd, LOCK_EX) < 0)
                        if (errno != EINTR)
                                return -errno;
                /* A sweep may have taken it between create and lock: start over. */
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (st.st_nlink == 0)
                        continue;
                memcpy(ret_name, name, sizeof(name));
                return TAKE_FD(fd);
        }
        return -EEXIST;
}

/* Durable unless NOSYNC: the data is on disk (fdatasync) before the rename,
 * so a rename that survives a crash never points at a torn file; then the
 * dir, so the rename itself survives. Two syncs; that is the whole cost. */
int heal_write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                           unsigned flags) {
        char tmp[HEAL_TEMP_NAME_MAX];
        bool sync = !(flags & HEAL_WRITE_NOSYNC);
        int r;

        if (dirfd < 0 || !name || !*name || strchr(name, '/') || (!data && len > 0) ||
            (flags & ~(unsigned)HEAL_WRITE_NOSYNC))
                return -EINVAL;
        _cleanup_close_ int fd = heal_temp_open(dirfd, tmp);
        if (fd < 0)
                return fd;

        r = heal_write_all(fd, data, len);
        if (r >= 0 && (mode & 07777) != 0600 && fchmod(fd, mode & 07777) < 0)
                r = -errno;
        if (r >= 0 && sync && fdatasync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dirfd, tmp, 0);
                return r;
        }
        if (sync && fsync(dirfd) < 0)
                return -errno;
        return 0;
}

int heal_write_file_atomic_path(const char *path, const void *data, size_t len, mode_t mode,
                                unsigned flags) {
        _cleanup_free_ char *dir = NULL;
        const char *slash, *name;

        if (!path)
                return -EINVAL;
        slash = strrchr(path, '/');
        if (slash) {
                dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
                name = slash + 1;
        } else {
                dir = strdup(".");
                name = path;
        }
        if (!dir)
                return -ENOMEM;
        _cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;
        return heal_write_file_atomic(dirfd, name, data, len, mode, flags);
}
