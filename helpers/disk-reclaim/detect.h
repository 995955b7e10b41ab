/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Detect: which filesystems are mounted (libmount), how full they are
 * (statvfs) and what backs them (libudev). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One mounted filesystem as the mount table and the kernel report it. */
typedef struct disk_mount {
        char *target; /* mount point */
        char *source; /* mount source as in the table ("/dev/vda1", "tmpfs") */
        char *fstype;
        char *fsroot;    /* the root of the mount inside its filesystem ("/" unless a bind mount) */
        uint64_t mnt_id; /* the kernel's mount id */
        dev_t dev;       /* major:minor from the mount table */
        bool pseudo, netfs, readonly; /* readonly: mounted "ro" in the table read */

        /* libudev; device is NULL when no block device backs it (tmpfs, btrfs subvolumes, ...) */
        char *device;
        bool removable, loop;

        /* statvfs; statvfs_error is a positive errno when the call failed (the numbers are then 0) */
        int statvfs_error;
        uint64_t size_bytes;  /* f_blocks * f_frsize */
        uint64_t free_bytes;  /* f_bfree * f_frsize: what deletion changes */
        uint64_t avail_bytes; /* f_bavail * f_frsize: what unprivileged writers get */
        uint64_t files, free_files;
} disk_mount;

typedef struct disk_mounts {
        disk_mount *items;
        size_t n;
} disk_mounts;

void disk_mounts_done(disk_mounts *l);

/**
 * disk_mounts_read() - every mount of @mountinfo, deduplicated.
 * @mountinfo: a mountinfo(5) file; NULL means heal_path_proc()/1/mountinfo
 *   (the system's view, stable between runs of a sandboxed service) when
 *   readable, else heal_path_proc()/self/mountinfo.
 * @ret: filled on success (disk_mounts_done()).
 *
 * A mount point mounted over keeps only its top mount; a filesystem reached
 * through several mounts keeps one, preferring the mount of its own root
 * ("/") and then the shortest mount point. statvfs and libudev are not
 * consulted here (disk_mount_measure()).
 * Returns the number of mounts, or -errno.
 */
int disk_mounts_read(const char *mountinfo, disk_mounts *ret);

/* statvfs() on the mount point and libudev on its device. Returns 0; a
 * failed statvfs is recorded in m->statvfs_error (a failed read is a fact,
 * never "0 bytes free"), and returns -errno. */
int disk_mount_measure(disk_mount *m);

/* What the policy says to look at (borrowed). */
typedef struct disk_filter {
        char **mounts; /* globs on the mount point; NULL or empty = every eligible mount */
        bool include_removable;
        bool include_loop;
        const char *only; /* a request's --mount: only this mount point (still filtered), or NULL */
} disk_filter;

/**
 * disk_mount_selected() - does @f cover @m?
 * @ret_why: when not, why (static string); may be NULL.
 *
 * Pseudo, network and read-only filesystems are never selected; removable
 * media and loop devices only when the filter includes them (needs the
 * libudev part of disk_mount_measure()). Without globs every other mount is.
 */
bool disk_mount_selected(const disk_mount *m, const disk_filter *f, const char **ret_why);

/* Percent of @part in @whole, rounded down; 100 when @whole is 0. */
unsigned disk_percent(uint64_t part, uint64_t whole);

/* The thresholds a mount is judged by, in percent. */
typedef struct disk_thresholds {
        unsigned min_free_percent, target_free_percent;
        unsigned min_free_inodes_percent, target_free_inodes_percent;
} disk_thresholds;

/* Below a threshold (bytes available, or inodes free; a filesystem without
 * inode counts is judged by bytes only)? */
bool disk_mount_pressure(const disk_mount *m, const disk_thresholds *t, bool *ret_bytes, bool *ret_inodes);

/* Bytes and inodes to free to reach the targets (0 when already there). */
uint64_t disk_need_bytes(const disk_mount *m, const disk_thresholds *t);
uint64_t disk_need_inodes(const disk_mount *m, const disk_thresholds *t);

/* "major:minor" of @dev into @buf. */
const char *disk_dev_string(dev_t dev, char buf[static 32]);

/* The detect facts of @m (mount, device, fstype, free bytes/inodes, and the
 * thresholds), a new object or NULL on OOM. */
json_t *disk_mount_facts(const disk_mount *m, const disk_thresholds *t);
