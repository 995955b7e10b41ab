/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Leaked space: files deleted but still held open, per process (/proc/PID/fd)
 * and per systemd unit (sd_pid_get_unit). */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One deleted file one process holds. */
typedef struct leak_file {
        char *path; /* as /proc shows it, without the " (deleted)" suffix */
        ino_t ino;
        uint64_t bytes; /* st_blocks * 512: what closing it frees */
} leak_file;

typedef struct leak_holder {
        pid_t pid;
        char *comm;       /* NULL when unreadable */
        char *unit;       /* NULL when the process belongs to no unit */
        leak_file *files; /* each inode once */
        size_t n_files;
        uint64_t bytes;
} leak_holder;

/* A unit and everything its processes hold (each inode counted once). */
typedef struct leak_unit {
        char *unit;
        uint64_t bytes;
        size_t n_files;
        size_t *holders; /* indexes into the holders array */
        size_t n_holders;
} leak_unit;

typedef struct leak_report {
        leak_holder *holders;
        size_t n_holders;
        leak_unit *units;
        size_t n_units; /* sorted by bytes, largest first */
        uint64_t bytes; /* every holder, each inode once */
} leak_report;

void leak_report_done(leak_report *r);

/**
 * leak_scan() - deleted files on the filesystem @dev held open by any process.
 * @proc: the proc dir; NULL means heal_path_proc().
 * @dev: st_dev of the filesystem (files of other filesystems are ignored).
 * @ping: called about every 1000 descriptors looked at (watchdog); may be NULL.
 * @ret: the holders and their units (leak_report_done()).
 *
 * Processes that vanish or deny access while looked at are skipped. Units come
 * from sd_pid_get_unit(), which reads the real /proc (so with a fixture @proc
 * there are none).
 * Returns the number of holders, or -errno.
 */
int leak_scan(const char *proc, dev_t dev, void (*ping)(void *ud), void *ud, leak_report *ret);

/* {"unit", "bytes", "files", "holders": [{"pid", "comm", "bytes", "files": [{"path", "bytes"}]}]},
 * a new object or NULL on OOM. */
json_t *leak_unit_facts(const leak_report *r, const leak_unit *u);

/* Every holder (with or without a unit) as an array of the holder objects above. */
json_t *leak_holders_facts(const leak_report *r);
