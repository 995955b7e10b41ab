/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fixture trees for the disk-reclaim tests: files with chosen sizes and ages. */
#pragma once

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test-util.h"

#define DAY_S (24 * 3600)

static inline uint64_t fx_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static inline char *fx_path(const char *root, const char *rel) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", root, rel) < 0)
                abort();
        return p;
}

/* mkdir -p for the parents of @path. */
static inline void fx_mkparents(const char *path) {
        char *copy = strdup(path);
        ASSERT_TRUE(copy);
        for (char *s = strchr(copy + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(copy, 0755) < 0)
                        ASSERT_TRUE(errno == EEXIST);
                *s = '/';
        }
        free(copy);
}

/* Set atime and mtime of @path to now - @age_s (no symlink followed). */
static inline void fx_age(const char *path, long age_s) {
        struct timespec ts[2];
        clock_gettime(CLOCK_REALTIME, &ts[0]);
        ts[0].tv_sec -= age_s;
        ts[1] = ts[0];
        ASSERT_OK(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW));
}

/* Create root/@rel with @size bytes and atime = mtime = now - @age_s. */
static inline void fx_file(const char *root, const char *rel, size_t size, long age_s) {
        char *p = fx_path(root, rel);
        fx_mkparents(p);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        char buf[4096];
        memset(buf, 'x', sizeof(buf));
        for (size_t left = size; left > 0;) {
                size_t n = left < sizeof(buf) ? left : sizeof(buf);
                ASSERT_EQ(write(fd, buf, n), (ssize_t) n);
                left -= n;
        }
        ASSERT_OK(close(fd));
        fx_age(p, age_s);
        free(p);
}

static inline bool fx_exists(const char *root, const char *rel) {
        char *p = fx_path(root, rel);
        struct stat st;
        bool r = fstatat(AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
        free(p);
        return r;
}

/* What removing root/@rel frees (st_blocks * 512). */
static inline uint64_t fx_size(const char *root, const char *rel) {
        char *p = fx_path(root, rel);
        struct stat st;
        ASSERT_OK(lstat(p, &st));
        free(p);
        return (uint64_t) st.st_blocks * 512;
}
