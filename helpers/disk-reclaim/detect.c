/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Detect: the mount table through libmount, fullness through statvfs, the
 * backing device through libudev. Reads only; judges nothing but thresholds. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libmount/libmount.h>
#include <libudev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "detect.h"
#include "heal/cleanup.h"
#include "heal/paths.h"

/* Loop block devices (Documentation/admin-guide/devices.txt). */
#define LOOP_MAJOR 7U

static void disk_mount_done(disk_mount *m) {
        free(m->target);
        free(m->source);
        free(m->fstype);
        free(m->fsroot);
        free(m->device);
        *m = (disk_mount){};
}

void disk_mounts_done(disk_mounts *l) {
        for (size_t i = 0; i < l->n; i++)
                disk_mount_done(&l->items[i]);
        free(l->items);
        *l = (disk_mounts){};
}

static void mnt_tablep(struct libmnt_table **t) {
        mnt_unref_table(*t);
}
static void mnt_iterp(struct libmnt_iter **i) {
        mnt_free_iter(*i);
}

static char *strdup_or_empty(const char *s) {
        return strdup(s ?: "");
}

static int mount_from_fs(struct libmnt_fs *fs, disk_mount *ret) {
        const char *opts = mnt_fs_get_vfs_options(fs);
        disk_mount m = {
                .target = strdup_or_empty(mnt_fs_get_target(fs)),
                .source = strdup_or_empty(mnt_fs_get_source(fs)),
                .fstype = strdup_or_empty(mnt_fs_get_fstype(fs)),
                .fsroot = strdup(mnt_fs_get_root(fs) ?: "/"),
                .mnt_id = (uint64_t)(mnt_fs_get_id(fs) < 0 ? 0 : mnt_fs_get_id(fs)),
                .dev = mnt_fs_get_devno(fs),
                .pseudo = mnt_fs_is_pseudofs(fs),
                .netfs = mnt_fs_is_netfs(fs),
                .readonly = opts && mnt_optstr_get_option(opts, "ro", NULL, NULL) == 0,
        };

        if (!m.target || !m.source || !m.fstype || !m.fsroot) {
                disk_mount_done(&m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

/* Is @a a better representative of its filesystem than @b? */
static bool preferred(const disk_mount *a, const disk_mount *b) {
        bool a_root = strcmp(a->fsroot, "/") == 0, b_root = strcmp(b->fsroot, "/") == 0;

        if (a_root != b_root)
                return a_root;
        return strlen(a->target) < strlen(b->target);
}

/* Drop mounts hidden under a later mount on the same point, then keep one
 * mount per filesystem (same device and same source). */
static void dedup(disk_mounts *l) {
        size_t out = 0;

        for (size_t i = 0; i < l->n; i++) {
                disk_mount *m = &l->items[i];
                bool drop = false;

                for (size_t j = i + 1; j < l->n && !drop; j++)
                        drop = strcmp(l->items[j].target, m->target) == 0;
                for (size_t j = 0; j < out && !drop; j++) {
                        disk_mount *k = &l->items[j];

                        if (k->dev != m->dev || strcmp(k->source, m->source) != 0)
                                continue;
                        if (preferred(m, k)) {
                                disk_mount tmp = *k;
                                *k = *m;
                                *m = tmp;
                        }
                        drop = true;
                }
                if (drop) {
                        disk_mount_done(m);
                        continue;
                }
                if (out != i) {
                        l->items[out] = *m;
                        *m = (disk_mount){};
                }
                out++;
        }
        l->n = out;
}

/* PID 1's mount table when we may read it, our own otherwise. A service's
 * namespace (ProtectSystem=, ReadWritePaths=) re-mounts what it shows on every
 * start: new mount ids, "/" read-only. PID 1's view is the system's, stable
 * between runs, which is what confirming "the same mount" needs. */
static int default_mountinfo(char **ret) {
        _cleanup_free_ char *pid1 = NULL;
        int fd;

        if (asprintf(&pid1, "%s/1/mountinfo", heal_path_proc()) < 0)
                return -ENOMEM;
        fd = open(pid1, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                close(fd);
                *ret = TAKE_PTR(pid1);
                return 0;
        }
        return asprintf(ret, "%s/self/mountinfo", heal_path_proc()) < 0 ? -ENOMEM : 0;
}

int disk_mounts_read(const char *mountinfo, disk_mounts *ret) {
        _cleanup_(mnt_tablep) struct libmnt_table *tb = NULL;
        _cleanup_(mnt_iterp) struct libmnt_iter *itr = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_(disk_mounts_done) disk_mounts l = {};
        struct libmnt_fs *fs;
        size_t cap = 0;
        int r;

        if (!mountinfo) {
                r = default_mountinfo(&path);
                if (r < 0)
                        return r;
                mountinfo = path;
        }
        tb = mnt_new_table();
        itr = mnt_new_iter(MNT_ITER_FORWARD);
        if (!tb || !itr)
                return -ENOMEM;
        r = mnt_table_parse_file(tb, mountinfo);
        if (r < 0)
                return r == -1 ? -EINVAL : r;

        while ((r = mnt_table_next_fs(tb, itr, &fs)) == 0) {
                if (l.n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        disk_mount *n = reallocarray(l.items, ncap, sizeof(*n));
                        if (!n)
                                return -ENOMEM;
                        l.items = n;
                        cap = ncap;
                }
                r = mount_from_fs(fs, &l.items[l.n]);
                if (r < 0)
                        return r;
                l.n++;
        }
        if (r < 0)
                return r;
        dedup(&l);
        *ret = l;
        l = (disk_mounts){};
        return (int)ret->n;
}

/* ---- statvfs and libudev ------------------------------------------------ */

static bool sysattr_is_one(struct udev_device *d, const char *attr) {
        const char *v = d ? udev_device_get_sysattr_value(d, attr) : NULL;
        return v && strncmp(v, "1", 1) == 0;
}

static void measure_udev(disk_mount *m) {
        struct udev *u;
        struct udev_device *d, *disk;
        const char *node, *sysname;

        m->loop = major(m->dev) == LOOP_MAJOR;
        if (major(m->dev) == 0)
                return; /* no block device: tmpfs, btrfs subvolumes, overlay */
        u = udev_new();
        if (!u)
                return;
        d = udev_device_new_from_devnum(u, 'b', m->dev);
        if (d) {
                node = udev_device_get_devnode(d);
                sysname = udev_device_get_sysname(d);
                free(m->device);
                m->device = node ? strdup(node) : NULL;
                if (sysname && strncmp(sysname, "loop", 4) == 0)
                        m->loop = true;
                /* A partition's "removable" lives on its disk. */
                disk = udev_device_get_parent_with_subsystem_devtype(d, "block", "disk");
                m->removable = sysattr_is_one(d, "removable") || sysattr_is_one(disk, "removable");
                udev_device_unref(d);
        }
        udev_unref(u);
}

int disk_mount_measure(disk_mount *m) {
        struct statvfs sv;

        measure_udev(m);
        if (statvfs(m->target, &sv) < 0) {
                m->statvfs_error = errno;
                m->size_bytes = m->free_bytes = m->avail_bytes = m->files = m->free_files = 0;
                return -m->statvfs_error;
        }
        m->statvfs_error = 0;
        m->size_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
        m->free_bytes = (uint64_t)sv.f_bfree * sv.f_frsize;
        m->avail_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
        m->files = sv.f_files;
        m->free_files = sv.f_ffree;
        /* ST_RDONLY is not taken from here: under ProtectSystem= every mount looks
         * read-only to us, while the sources below it are ReadWritePaths=. */
        return 0;
}

/* ---- selection and thresholds ------------------------------------------- */

bool disk_mount_selected(const disk_mount *m, const disk_filter *f, const char **ret_why) {
        const char *why = NULL;
        bool globbed = f->mounts && f->mounts[0];

        if (f->only && strcmp(f->only, m->target) != 0)
                why = "not the requested mount";
        else if (m->pseudo)
                why = "pseudo filesystem";
        else if (m->netfs)
                why = "network filesystem";
        else if (m->readonly)
                why = "read-only";
        else if (m->removable && !f->include_removable)
                why = "removable media (include_removable is off)";
        else if (m->loop && !f->include_loop)
                why = "loop device (include_loop is off)";
        else if (globbed) {
                why = "not named by the policy's mounts";
                for (char **g = f->mounts; *g; g++)
                        if (fnmatch(*g, m->target, 0) == 0) {
                                why = NULL;
                                break;
                        }
        }
        if (ret_why)
                *ret_why = why;
        return !why;
}

unsigned disk_percent(uint64_t part, uint64_t whole) {
        if (whole == 0 || part >= whole)
                return 100;
        /* 128 bits: part * 100 must not overflow on exabyte filesystems. */
        return (unsigned)((unsigned __int128)part * 100 / whole);
}

static bool has_inodes(const disk_mount *m) {
        return m->files > 0;
}

bool disk_mount_pressure(const disk_mount *m, const disk_thresholds *t, bool *ret_bytes, bool *ret_inodes) {
        bool bytes = false, inodes = false;

        if (m->statvfs_error == 0 && m->size_bytes > 0) {
                bytes = disk_percent(m->avail_bytes, m->size_bytes) < t->min_free_percent;
                inodes = has_inodes(m) && disk_percent(m->free_files, m->files) < t->min_free_inodes_percent;
        }
        if (ret_bytes)
                *ret_bytes = bytes;
        if (ret_inodes)
                *ret_inodes = inodes;
        return bytes || inodes;
}

/* @percent of @whole, rounded up, without overflow. */
static uint64_t share(uint64_t whole, unsigned percent) {
        return (uint64_t)(((unsigned __int128)whole * percent + 99) / 100);
}

uint64_t disk_need_bytes(const disk_mount *m, const disk_thresholds *t) {
        uint64_t want = share(m->size_bytes, t->target_free_percent);
        return want > m->avail_bytes ? want - m->avail_bytes : 0;
}

uint64_t disk_need_inodes(const disk_mount *m, const disk_thresholds *t) {
        uint64_t want;

        if (!has_inodes(m))
                return 0;
        want = share(m->files, t->target_free_inodes_percent);
        return want > m->free_files ? want - m->free_files : 0;
}

const char *disk_dev_string(dev_t dev, char buf[static 32]) {
        snprintf(buf, 32, "%u:%u", major(dev), minor(dev));
        return buf;
}

json_t *disk_mount_facts(const disk_mount *m, const disk_thresholds *t) {
        char dev[32];

        return json_pack(
                "{s:s, s:s, s:s, s:s?, s:s, s:I, s:b, s:b, s:s?, s:I, s:I, s:I, s:I, s:I, s:i, s:i,"
                " s:i, s:i, s:i, s:i}",
                "mount", m->target, "source", m->source, "fstype", m->fstype, "device", m->device, "devno",
                disk_dev_string(m->dev, dev), "mount_id", (json_int_t)m->mnt_id, "removable", m->removable,
                "loop", m->loop, "statvfs_error", m->statvfs_error ? strerror(m->statvfs_error) : NULL,
                "size_bytes", (json_int_t)m->size_bytes, "free_bytes", (json_int_t)m->free_bytes,
                "avail_bytes", (json_int_t)m->avail_bytes, "inodes", (json_int_t)m->files, "free_inodes",
                (json_int_t)m->free_files, "free_percent", (int)disk_percent(m->avail_bytes, m->size_bytes),
                "free_inodes_percent", (int)(m->files ? disk_percent(m->free_files, m->files) : 100),
                "min_free_percent", (int)t->min_free_percent, "target_free_percent",
                (int)t->target_free_percent, "min_free_inodes_percent", (int)t->min_free_inodes_percent,
                "target_free_inodes_percent", (int)t->target_free_inodes_percent);
}
