/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The journal as a source: journald's own files, shrunk with journalctl
 * --vacuum-size (journald removes archived files only, oldest first). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Where the persistent journal lives; $HEAL_JOURNAL_DIR is used by tests. */
const char *disk_journal_dir(void);

/* Does the persistent journal live on the filesystem @dev? >0 yes, 0 no
 * (absent, or elsewhere), -errno when it cannot be told. */
int disk_journal_on(dev_t dev);

/* Bytes the journal files take (sd_journal_get_usage()). Returns 0 or -errno. */
int disk_journal_usage(uint64_t *ret);

/**
 * disk_journal_vacuum_size() - the --vacuum-size that frees @need bytes of
 * @usage: usage - need, never below @keep_bytes. Returns 0 when nothing can
 * be freed (usage already at or below keep), else the size.
 */
uint64_t disk_journal_vacuum_size(uint64_t usage, uint64_t need, uint64_t keep_bytes);

/**
 * disk_journal_vacuum() - run journalctl --vacuum-size=@size_bytes
 * (and --vacuum-time=@max_age_s when not 0).
 * @ret_freed: usage before minus usage after.
 * Returns 0 or -errno (-EIO when journalctl failed).
 */
int disk_journal_vacuum(uint64_t size_bytes, uint64_t max_age_s, uint64_t *ret_freed);
