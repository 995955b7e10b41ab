/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading kernel files whole, with no fixed-size limit, and the number parsing every parser shares. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "util.h"

#define STUCK_READ_MAX (64u * 1024 * 1024)

void stuck_buf_done(stuck_buf *b) {
        if (!b)
                return;
        free(b->data);
        *b = (stuck_buf) {};
}

static int buf_reserve(stuck_buf *b, size_t want) {
        if (b->cap >= want)
                return 0;
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < want)
                cap *= 2;
        char *n = realloc(b->data, cap);
        if (!n)
                return -ENOMEM;
        b->data = n;
        b->cap = cap;
        return 0;
}

int stuck_read_at(int dirfd, const char *path, unsigned flags, stuck_buf *b) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        b->len = 0;
        for (;;) {
                /* Always room for the terminating NUL and a read of at least half a page. */
                int r = buf_reserve(b, b->len + 2048 + 1);
                if (r < 0)
                        return r;
                size_t room = b->cap - b->len - 1;
                ssize_t n = read(fd, b->data + b->len, room);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                b->len += (size_t) n;
                if (b->len > STUCK_READ_MAX)
                        return -EFBIG;
                if ((flags & STUCK_READ_ONE_LINE) && (size_t) n < room && b->data[b->len - 1] == '\n')
                        break;
        }
        b->data[b->len] = 0;
        return 0;
}

int stuck_parse_u64(const char **p, const char *end, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;

        if (s >= end || *s < '0' || *s > '9')
                return -EBADMSG;
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
                if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t) (*s - '0'), &v))
                        return -EBADMSG;
        }
        *p = s;
        *ret = v;
        return 0;
}

uint64_t stuck_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}
