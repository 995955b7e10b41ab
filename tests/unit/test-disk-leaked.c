/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-reclaim's leak scan on the real /proc: a forked child holding an
 * unlinked temp file (twice) is found once, with its size; an open file that
 * still has its name is not a leak; a closed one is gone from the report. */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "leaked.h"
#include "test-util.h"

#define FILE_BYTES (UINT64_C(1) << 20)

static void write_file(const char *path, uint64_t bytes) {
        _cleanup_free_ char *buf = malloc(64 * 1024);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        ASSERT_TRUE(fd >= 0 && buf);
        memset(buf, 'x', 64 * 1024);
        for (uint64_t done = 0; done < bytes; done += 64 * 1024)
                ASSERT_EQ(write(fd, buf, 64 * 1024), 64 * 1024);
        ASSERT_OK(fsync(fd));
        close(fd);
}

/* The child opens @gone twice and @kept once, says so, and waits to be killed. */
static pid_t spawn_holder(const char *gone, const char *kept) {
        int p[2];
        pid_t pid;
        char c;

        ASSERT_OK(pipe(p));
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                int a = open(gone, O_RDONLY), b = open(gone, O_RDONLY), k = open(kept, O_RDONLY);
                if (a < 0 || b < 0 || k < 0)
                        _exit(1);
                if (write(p[1], "r", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(p[1]);
        ASSERT_EQ(read(p[0], &c, 1), 1);
        close(p[0]);
        return pid;
}

static const leak_holder *find_holder(const leak_report *r, pid_t pid) {
        for (size_t i = 0; i < r->n_holders; i++)
                if (r->holders[i].pid == pid)
                        return &r->holders[i];
        return NULL;
}

static void test_child_holds_deleted_file(void) {
        _cleanup_free_ char *dir = test_tmpdir(), *gone = NULL, *kept = NULL;
        _cleanup_(leak_report_done) leak_report rep = {}, after = {};
        const leak_holder *h;
        struct stat st;
        pid_t pid;
        int status;

        ASSERT_TRUE(asprintf(&gone, "%s/leaky.log", dir) >= 0);
        ASSERT_TRUE(asprintf(&kept, "%s/kept.log", dir) >= 0);
        write_file(gone, FILE_BYTES);
        write_file(kept, FILE_BYTES);
        ASSERT_OK(stat(dir, &st));

        pid = spawn_holder(gone, kept);
        ASSERT_OK(unlink(gone));

        ASSERT_OK(leak_scan(NULL, st.st_dev, NULL, NULL, &rep));
        h = find_holder(&rep, pid);
        ASSERT_TRUE(h);
        /* Opened twice, one inode: counted once; the file with a name is not a leak. */
        ASSERT_EQ(h->n_files, 1);
        ASSERT_STREQ(h->files[0].path, gone);
        ASSERT_TRUE(h->files[0].bytes >= FILE_BYTES);
        ASSERT_TRUE(h->files[0].bytes < 2 * FILE_BYTES);
        ASSERT_EQ(h->bytes, h->files[0].bytes);
        ASSERT_TRUE(h->comm != NULL);
        ASSERT_TRUE(rep.bytes >= h->bytes);

        /* Another filesystem's deleted files are not this one's leak. */
        {
                _cleanup_(leak_report_done) leak_report elsewhere = {};
                ASSERT_OK(leak_scan(NULL, st.st_dev + 1, NULL, NULL, &elsewhere));
                ASSERT_TRUE(!find_holder(&elsewhere, pid));
        }

        {
                _cleanup_json_ json_t *facts = leak_holders_facts(&rep);
                json_t *e;
                size_t i;
                bool seen = false;

                ASSERT_TRUE(json_is_array(facts));
                json_array_foreach(facts, i, e) if (json_integer_value(json_object_get(e, "pid")) == pid) {
                        json_t *f0 = json_array_get(json_object_get(e, "files"), 0);
                        ASSERT_STREQ(json_string_value(json_object_get(f0, "path")), gone);
                        ASSERT_EQ(json_integer_value(json_object_get(e, "bytes")), (long long)h->bytes);
                        seen = true;
                }
                ASSERT_TRUE(seen);
        }

        ASSERT_OK(kill(pid, SIGKILL));
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_OK(leak_scan(NULL, st.st_dev, NULL, NULL, &after));
        ASSERT_TRUE(!find_holder(&after, pid));
        test_rm_rf(dir);
}

static void test_missing_proc(void) {
        leak_report rep = {};

        ASSERT_EQ(leak_scan("/nonexistent-proc-dir", 0, NULL, NULL, &rep), -ENOENT);
}

int main(void) {
        test_child_holds_deleted_file();
        test_missing_proc();
        return 0;
}
