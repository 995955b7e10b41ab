/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Assertions and fixtures shared by the unit tests. A failed assertion
 * prints where and why, and aborts (so ASan/UBSan and meson see it). */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_TRUE(expr)                                                                    \
        do {                                                                                 \
                if (!(expr)) {                                                               \
                        fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, \
                                #expr);                                                      \
                        abort();                                                             \
                }                                                                            \
        } while (0)

#define ASSERT_EQ(a, b)                                                                          \
        do {                                                                                     \
                long long _a = (long long) (a), _b = (long long) (b);                            \
                if (_a != _b) {                                                                  \
                        fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
                                __LINE__, #a, #b, _a, _b);                                       \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

#define ASSERT_STREQ(a, b)                                                                     \
        do {                                                                                   \
                const char *_a = (a), *_b = (b);                                               \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                       \
                        fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, \
                                __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");     \
                        abort();                                                               \
                }                                                                              \
        } while (0)

/* r must be >= 0 (an -errno return is printed with its meaning). */
#define ASSERT_OK(expr)                                                                        \
        do {                                                                                   \
                long long _r = (long long) (expr);                                             \
                if (_r < 0) {                                                                  \
                        fprintf(stderr, "%s:%d: %s failed: %lld (%s)\n", __FILE__, __LINE__,    \
                                #expr, _r, strerror((int) -_r));                               \
                        abort();                                                               \
                }                                                                              \
        } while (0)

/* Exit code that meson counts as "skipped"; say why first. */
#define TEST_SKIP 77

/* A fresh private temp dir (mkdtemp under $TMPDIR or /tmp); caller frees the
 * string and may remove the tree with test_rm_rf(). */
char *test_tmpdir(void);
/* rm -rf @path (used on test dirs only). */
void test_rm_rf(const char *path);
