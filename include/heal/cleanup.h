/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Ownership helpers in the style of systemd: _cleanup_ attributes and TAKE_PTR(). */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>
#include <jansson.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand over ownership: returns the pointer and clears the variable, so the
 * cleanup attribute of the old owner does nothing. */
#define TAKE_PTR(p)                                  \
        ({                                           \
                __typeof__(p) _p_ = (p);             \
                (p) = NULL;                          \
                _p_;                                 \
        })
#define TAKE_FD(fd)                                  \
        ({                                           \
                int _fd_ = (fd);                     \
                (fd) = -EBADF;                       \
                _fd_;                                \
        })

static inline void freep(void *p) { free(*(void **) p); }
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
        *fd = -EBADF;
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d) { if (*d) closedir(*d); }
#define _cleanup_closedir_ _cleanup_(closedirp)

/* json_decrefp() comes with jansson. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* A NULL-terminated array of strings, freed as a whole. */
static inline void strv_free(char **l) {
        if (!l) return;
        for (char **i = l; *i; i++) free(*i);
        free(l);
}
static inline void strv_freep(char ***l) { strv_free(*l); }
#define _cleanup_strv_free_ _cleanup_(strv_freep)
