/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fixture helpers for the unit tests. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test-util.h"

char *test_tmpdir(void) {
        const char *base = getenv("TMPDIR");
        char *path = NULL;

        if (asprintf(&path, "%s/heal-test-XXXXXX", base && *base ? base : "/tmp") < 0)
                abort();
        if (!mkdtemp(path)) {
                perror("mkdtemp");
                abort();
        }
        return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        remove(path); /* best effort: a test dir left behind is harmless */
        return 0;
}

void test_rm_rf(const char *path) {
        if (path)
                nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}
