/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The journal source: measure with sd-journal, shrink with journalctl, whose
 * vacuum knows which files are archived and safe to remove. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "heal/cleanup.h"
#include "heal/spawn.h"
#include "journal-vacuum.h"

#define VACUUM_TIMEOUT_USEC (UINT64_C(120) * 1000000)

const char *disk_journal_dir(void) {
        const char *v = secure_getenv("HEAL_JOURNAL_DIR");
        return v && *v ? v : "/var/log/journal";
}

int disk_journal_on(dev_t dev) {
        struct stat st;

        if (stat(disk_journal_dir(), &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        return S_ISDIR(st.st_mode) && st.st_dev == dev;
}

static void journal_closep(sd_journal **j) {
        sd_journal_close(*j);
}

int disk_journal_usage(uint64_t *ret) {
        _cleanup_(journal_closep) sd_journal *j = NULL;
        const char *dirs[] = {disk_journal_dir(), NULL};
        uint64_t bytes = 0;
        int r;

        r = sd_journal_open_directory(&j, dirs[0], 0);
        if (r < 0)
                return r;
        r = sd_journal_get_usage(j, &bytes);
        if (r < 0)
                return r;
        *ret = bytes;
        return 0;
}

uint64_t disk_journal_vacuum_size(uint64_t usage, uint64_t need, uint64_t keep_bytes) {
        uint64_t size = need < usage ? usage - need : 0;

        if (size < keep_bytes)
                size = keep_bytes;
        /* 0 means "nothing" to the caller; 1 byte removes every archived file just the same. */
        if (size == 0)
                size = 1;
        return size < usage ? size : 0;
}

int disk_journal_vacuum(uint64_t size_bytes, uint64_t max_age_s, uint64_t *ret_freed) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        uint64_t before = 0, after = 0;
        int status = 0, r;

        r = disk_journal_usage(&before);
        if (r < 0)
                return r;
        /* Plain numbers are bytes to journalctl. --vacuum-time removes every
         * archived file older, needed or not: only when the policy asks. */
        if (max_age_s > 0)
                r = asprintf(&cmd,
                             "journalctl --directory=%s --vacuum-size=%" PRIu64 " --vacuum-time=%" PRIu64
                             "s",
                             disk_journal_dir(), size_bytes, max_age_s);
        else
                r = asprintf(&cmd, "journalctl --directory=%s --vacuum-size=%" PRIu64, disk_journal_dir(),
                             size_bytes);
        if (r < 0)
                return -ENOMEM;
        r = heal_spawn(cmd, NULL, VACUUM_TIMEOUT_USEC, &out, &status);
        if (r < 0)
                return r;
        if (status != 0)
                return -EIO;
        r = disk_journal_usage(&after);
        if (r < 0)
                return r;
        *ret_freed = before > after ? before - after : 0;
        return 0;
}
