/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-reclaim's detect: the real mount table (/ is found, with sane numbers),
 * a fixture mountinfo (overmounts, bind mounts, pseudo/network/read-only
 * flags), the policy's filter, and the pressure and need arithmetic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "detect.h"
#include "heal/cleanup.h"
#include "test-util.h"

#define MIB (UINT64_C(1) << 20)

static disk_mount *find(disk_mounts *l, const char *target) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->items[i].target, target) == 0)
                        return &l->items[i];
        return NULL;
}

static void test_real_root(void) {
        _cleanup_(disk_mounts_done) disk_mounts l = {};
        struct stat st;
        disk_mount *root;
        int n;

        n = disk_mounts_read(NULL, &l);
        ASSERT_OK(n);
        ASSERT_TRUE(n > 0);
        ASSERT_EQ(n, l.n);
        root = find(&l, "/");
        ASSERT_TRUE(root);
        ASSERT_OK(disk_mount_measure(root));
        ASSERT_EQ(root->statvfs_error, 0);
        ASSERT_TRUE(root->mnt_id > 0);
        ASSERT_TRUE(root->fstype[0] != '\0');
        /* The mount table's device is the one stat() reports for / (except on
         * filesystems with anonymous devices per subvolume, like btrfs). */
        ASSERT_OK(stat("/", &st));
        if (major(root->dev) != 0)
                ASSERT_EQ(root->dev, st.st_dev);
        ASSERT_TRUE(root->size_bytes > 0);
        ASSERT_TRUE(root->free_bytes <= root->size_bytes);
        ASSERT_TRUE(root->avail_bytes <= root->free_bytes);
        ASSERT_TRUE(root->free_files <= root->files);
        ASSERT_TRUE(disk_percent(root->avail_bytes, root->size_bytes) <= 100);
        /* Mount points are unique after deduplication. */
        for (size_t i = 0; i < l.n; i++)
                for (size_t j = i + 1; j < l.n; j++)
                        ASSERT_TRUE(strcmp(l.items[i].target, l.items[j].target) != 0);
}

static const char mountinfo[] = "21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                                "22 21 0:20 / /proc rw,nosuid - proc proc rw\n"
                                "23 21 8:2 / /var rw,relatime shared:2 - ext4 /dev/sda2 rw\n"
                                /* /srv mounted twice: only the top one counts. */
                                "24 21 8:3 / /srv rw - xfs /dev/sda3 rw\n"
                                "25 21 8:4 / /srv rw - xfs /dev/sda4 rw\n"
                                /* A bind mount of part of /var: the same filesystem, kept once (as /var). */
                                "26 21 8:2 /lib/docker /docker rw - ext4 /dev/sda2 rw\n"
                                "27 21 0:40 / /mnt/nfs rw - nfs4 server:/export rw\n"
                                "28 21 8:5 / /ro ro,relatime - ext4 /dev/sda5 ro\n"
                                "29 21 7:0 / /mnt/img rw - ext4 /dev/loop0 rw\n"
                                "30 21 0:41 / /tmp rw - tmpfs tmpfs rw\n";

static void test_fixture_table(void) {
        _cleanup_free_ char *dir = test_tmpdir(), *path = NULL;
        _cleanup_(disk_mounts_done) disk_mounts l = {};
        disk_mount *m;
        FILE *f;

        ASSERT_TRUE(asprintf(&path, "%s/mountinfo", dir) >= 0);
        f = fopen(path, "we");
        ASSERT_TRUE(f);
        ASSERT_TRUE(fputs(mountinfo, f) >= 0);
        ASSERT_EQ(fclose(f), 0);

        ASSERT_EQ(disk_mounts_read(path, &l), 8);
        m = find(&l, "/srv");
        ASSERT_TRUE(m);
        ASSERT_EQ(m->mnt_id, 25);
        ASSERT_STREQ(m->source, "/dev/sda4");
        ASSERT_TRUE(!find(&l, "/docker"));
        m = find(&l, "/var");
        ASSERT_TRUE(m);
        ASSERT_EQ(m->dev, makedev(8, 2));
        ASSERT_STREQ(m->fsroot, "/");
        ASSERT_TRUE(!m->pseudo && !m->netfs && !m->readonly);
        ASSERT_TRUE(find(&l, "/proc")->pseudo);
        ASSERT_TRUE(find(&l, "/tmp")->pseudo);
        ASSERT_TRUE(find(&l, "/mnt/nfs")->netfs);
        ASSERT_TRUE(find(&l, "/ro")->readonly);
        ASSERT_STREQ(find(&l, "/mnt/img")->fstype, "ext4");
        test_rm_rf(dir);
}

static void test_filter(void) {
        char *globs[] = {"/var*", "/srv", NULL};
        disk_mount m = {.target = "/var"};
        disk_filter all = {}, some = {.mounts = globs},
                    loops = {.include_loop = true, .include_removable = true};
        disk_filter only = {.only = "/srv"};
        const char *why = NULL;

        ASSERT_TRUE(disk_mount_selected(&m, &all, &why));
        ASSERT_TRUE(why == NULL);
        ASSERT_TRUE(disk_mount_selected(&m, &some, NULL));
        m.target = "/home";
        ASSERT_TRUE(!disk_mount_selected(&m, &some, &why));
        ASSERT_STREQ(why, "not named by the policy's mounts");
        ASSERT_TRUE(!disk_mount_selected(&m, &only, &why));
        ASSERT_STREQ(why, "not the requested mount");
        m.target = "/srv";
        ASSERT_TRUE(disk_mount_selected(&m, &only, NULL));

        m.loop = true;
        ASSERT_TRUE(!disk_mount_selected(&m, &all, &why));
        ASSERT_STREQ(why, "loop device (include_loop is off)");
        ASSERT_TRUE(disk_mount_selected(&m, &loops, NULL));
        m.loop = false;
        m.removable = true;
        ASSERT_TRUE(!disk_mount_selected(&m, &all, &why));
        ASSERT_STREQ(why, "removable media (include_removable is off)");
        ASSERT_TRUE(disk_mount_selected(&m, &loops, NULL));
        m.removable = false;
        /* Never, whatever the policy says. */
        m.pseudo = true;
        ASSERT_TRUE(!disk_mount_selected(&m, &loops, NULL));
        m.pseudo = false;
        m.netfs = true;
        ASSERT_TRUE(!disk_mount_selected(&m, &loops, NULL));
        m.netfs = false;
        m.readonly = true;
        ASSERT_TRUE(!disk_mount_selected(&m, &loops, &why));
        ASSERT_STREQ(why, "read-only");
}

static void test_pressure_and_need(void) {
        disk_thresholds t = {.min_free_percent = 10,
                             .target_free_percent = 15,
                             .min_free_inodes_percent = 5,
                             .target_free_inodes_percent = 10};
        disk_mount m = {.size_bytes = 1000 * MIB,
                        .free_bytes = 60 * MIB,
                        .avail_bytes = 50 * MIB,
                        .files = 1000,
                        .free_files = 500};
        bool b, i;

        ASSERT_EQ(disk_percent(50, 1000), 5);
        ASSERT_EQ(disk_percent(0, 0), 100);
        ASSERT_EQ(disk_percent(2000, 1000), 100);
        ASSERT_EQ(disk_percent(UINT64_MAX / 2, UINT64_MAX), 49);

        /* 5% available < 10%: space pressure; inodes fine. The need is measured
         * against what writers get (available), up to 15%: 150 MiB - 50 MiB. */
        ASSERT_TRUE(disk_mount_pressure(&m, &t, &b, &i));
        ASSERT_TRUE(b && !i);
        ASSERT_EQ(disk_need_bytes(&m, &t), 100 * MIB);
        ASSERT_EQ(disk_need_inodes(&m, &t), 0);

        /* At exactly the threshold there is no pressure (below means below). */
        m.avail_bytes = 100 * MIB;
        ASSERT_TRUE(!disk_mount_pressure(&m, &t, &b, &i));
        ASSERT_EQ(disk_need_bytes(&m, &t), 50 * MIB);

        m.free_files = 10; /* 1% of inodes */
        ASSERT_TRUE(disk_mount_pressure(&m, &t, &b, &i));
        ASSERT_TRUE(!b && i);
        ASSERT_EQ(disk_need_inodes(&m, &t), 90);

        /* No inode counts (btrfs reports 0): judged by bytes only. */
        m.files = m.free_files = 0;
        ASSERT_TRUE(!disk_mount_pressure(&m, &t, NULL, NULL));
        ASSERT_EQ(disk_need_inodes(&m, &t), 0);

        /* A failed statvfs is never "0 bytes free, pressure". */
        m.statvfs_error = 5;
        m.avail_bytes = 0;
        ASSERT_TRUE(!disk_mount_pressure(&m, &t, NULL, NULL));
}

static void test_facts(void) {
        disk_thresholds t = {10, 15, 5, 10};
        disk_mount m = {.target = "/var",
                        .source = "/dev/sda2",
                        .fstype = "ext4",
                        .device = "/dev/sda2",
                        .dev = makedev(8, 2),
                        .mnt_id = 23,
                        .size_bytes = 100,
                        .avail_bytes = 3,
                        .free_bytes = 4,
                        .files = 10,
                        .free_files = 9};
        _cleanup_json_ json_t *f = disk_mount_facts(&m, &t);

        ASSERT_TRUE(f);
        ASSERT_STREQ(json_string_value(json_object_get(f, "mount")), "/var");
        ASSERT_STREQ(json_string_value(json_object_get(f, "devno")), "8:2");
        ASSERT_STREQ(json_string_value(json_object_get(f, "fstype")), "ext4");
        ASSERT_EQ(json_integer_value(json_object_get(f, "avail_bytes")), 3);
        ASSERT_EQ(json_integer_value(json_object_get(f, "free_percent")), 3);
        ASSERT_EQ(json_integer_value(json_object_get(f, "free_inodes")), 9);
        ASSERT_EQ(json_integer_value(json_object_get(f, "min_free_percent")), 10);
        ASSERT_TRUE(json_is_null(json_object_get(f, "statvfs_error")) ||
                    !json_object_get(f, "statvfs_error"));
}

int main(void) {
        test_real_root();
        test_fixture_table();
        test_filter();
        test_pressure_and_need();
        test_facts();
        return 0;
}
