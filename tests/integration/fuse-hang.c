/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A FUSE filesystem whose daemon never answers: it mounts /dev/fuse at DIR and
 * then never reads a request, so anything that looks at DIR (a stat, a
 * readdir) waits in the kernel, uninterruptibly but killably, until this
 * process dies and the connection is aborted. Used by the integration tests
 * for a hung walk under a disk-reclaim source and a task in D state.
 * Usage: fuse-hang DIR (prints "mounted" once the mount is there). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

int main(int argc, char **argv) {
        char opts[128];
        int fd;

        if (argc != 2) {
                fprintf(stderr, "usage: fuse-hang DIR\n");
                return 2;
        }
        fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "fuse-hang: /dev/fuse: %s\n", strerror(errno));
                return 1;
        }
        snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
        if (mount("heal-fuse-hang", argv[1], "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
                fprintf(stderr, "fuse-hang: mount %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        printf("mounted\n");
        fflush(stdout);
        for (;;)
                pause();
}
