/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole-file reads into one growing buffer, reused across a scan so a file costs no allocation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stuck_buf {
        char *data; /* NUL-terminated after a successful read */
        size_t len;
        size_t cap;
} stuck_buf;

void stuck_buf_done(stuck_buf *b);

enum {
        /* The file is one record the kernel formats whole and hands out from that (a /proc/PID/stat
         * line, a cgroup counter file: seq_file fills a read as far as the data goes): a short read
         * ending in '\n' holds all of it, so skip the read that would only return EOF. */
        STUCK_READ_ONE_RECORD = 1u << 0,
        STUCK_READ_ONE_LINE = STUCK_READ_ONE_RECORD,
};

/**
 * stuck_read_at() - read a whole file into @b (replacing its contents).
 * @dirfd: directory the path is relative to (or AT_FDCWD).
 * @path: the file.
 * @flags: STUCK_READ_*.
 * @b: the buffer; grows as needed, keeps its capacity for the next read.
 *
 * Return: 0; -errno of open/read (-ENOENT, -ESRCH, -EACCES, ...); -ENOMEM; -EFBIG past 64 MiB.
 */
int stuck_read_at(int dirfd, const char *path, unsigned flags, stuck_buf *b);

/* Parse a decimal uint64 at *p, advancing it; no sign, no leading space. Return: 0, -EBADMSG. */
int stuck_parse_u64(const char **p, const char *end, uint64_t *ret);

/* Monotonic clock in usec. */
uint64_t stuck_now_usec(void);
