/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libheal spawn: exit status, output capture and its bound, stdin delivery,
 * timeouts that kill the whole group, and commands that refuse their stdin. */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/spawn.h"
#include "test-util.h"

#define MSEC UINT64_C(1000)
#define SEC UINT64_C(1000000)

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void expect_run(const char *cmd, const char *input, int want_status, const char *want_output) {
        _cleanup_free_ char *out = NULL;
        int status = -1;

        ASSERT_OK(heal_spawn(cmd, input, 10 * SEC, &out, &status));
        ASSERT_EQ(status, want_status);
        if (want_output)
                ASSERT_STREQ(out, want_output);
}

static void test_status_and_output(void) {
        expect_run("true", NULL, 0, "");
        expect_run("exit 3", NULL, 3, "");
        expect_run("kill -TERM $$", NULL, 128 + SIGTERM, "");
        expect_run("/nonexistent/heal-test-command", NULL, 127, NULL);
        expect_run("echo out; echo err >&2", NULL, 0, "out\nerr\n");
        expect_run("printf 'no newline'", NULL, 0, "no newline");
        /* No input: stdin is /dev/null, so a reader sees EOF at once. */
        expect_run("wc -c", NULL, 0, "0\n");

        /* Output and status are optional. */
        ASSERT_OK(heal_spawn("echo ignored", NULL, 10 * SEC, NULL, NULL));
        ASSERT_EQ(heal_spawn(NULL, NULL, 10 * SEC, NULL, NULL), -EINVAL);
}

static void test_stdin(void) {
        expect_run("cat", "hello\nworld\n", 0, "hello\nworld\n");
        expect_run("wc -c", "hello\nworld\n", 0, "12\n");
        expect_run("cat", "", 0, "");

        /* Larger than a pipe buffer both ways: no deadlock between feeding and draining. */
        size_t n = 1 << 20;
        _cleanup_free_ char *big = malloc(n + 1);
        ASSERT_TRUE(big);
        memset(big, 'i', n);
        big[n] = '\0';
        expect_run("wc -c", big, 0, "1048576\n");
        _cleanup_free_ char *out = NULL;
        int status;
        ASSERT_OK(heal_spawn("cat", big, 10 * SEC, &out, &status));
        ASSERT_EQ(status, 0);
        ASSERT_EQ(strlen(out), 64 * 1024);
}

static void test_output_bound(void) {
        _cleanup_free_ char *out = NULL;
        int status = -1;
        uint64_t start = mono_usec();

        /* 1 MiB written, the first 64 KiB kept; the command is not blocked by a full pipe. */
        ASSERT_OK(heal_spawn("head -c 1048576 /dev/zero | tr '\\0' a; echo done >&2", NULL,
                             10 * SEC, &out, &status));
        ASSERT_EQ(status, 0);
        ASSERT_EQ(strlen(out), 64 * 1024);
        for (size_t i = 0; i < 64 * 1024; i++)
                ASSERT_TRUE(out[i] == 'a');
        ASSERT_TRUE(mono_usec() - start < 5 * SEC);
}

static void sigpipe_state(sigset_t *mask, bool *pending, struct sigaction *sa) {
        sigset_t p;
        ASSERT_OK(sigprocmask(SIG_SETMASK, NULL, mask));
        ASSERT_OK(sigpending(&p));
        *pending = sigismember(&p, SIGPIPE);
        ASSERT_OK(sigaction(SIGPIPE, NULL, sa));
}

static void test_unread_stdin(void) {
        size_t n = 4 << 20;
        _cleanup_free_ char *big = malloc(n + 1);
        sigset_t mask_before, mask_after;
        bool pending_before, pending_after;
        struct sigaction sa_before, sa_after;
        int status = -1;

        ASSERT_TRUE(big);
        memset(big, 'x', n);
        big[10] = '\n'; /* sh's read goes byte by byte: give it a short line */
        big[n] = '\0';

        /* SIGPIPE keeps its default disposition (fatal) in this test process:
         * if heal_spawn let one through we would die here. */
        sigpipe_state(&mask_before, &pending_before, &sa_before);
        ASSERT_TRUE(sa_before.sa_handler == SIG_DFL);

        ASSERT_OK(heal_spawn("exit 0", big, 10 * SEC, NULL, &status));
        ASSERT_EQ(status, 0);
        expect_run("head -c 10", big, 0, "xxxxxxxxxx");
        expect_run("read line; echo got", big, 0, "got\n");

        /* ... and the caller's signal state is as it was. */
        sigpipe_state(&mask_after, &pending_after, &sa_after);
        ASSERT_EQ(sigismember(&mask_after, SIGPIPE), sigismember(&mask_before, SIGPIPE));
        ASSERT_EQ(pending_after, pending_before);
        ASSERT_TRUE(sa_after.sa_handler == SIG_DFL);

        /* A command that neither reads nor exits is still bounded by the timeout. */
        uint64_t start = mono_usec();
        ASSERT_EQ(heal_spawn("sleep 30", big, 300 * MSEC, NULL, &status), -ETIMEDOUT);
        ASSERT_TRUE(mono_usec() - start < 3 * SEC);
}

/* How an orphan of a command died; it was reparented to us (subreaper). */
static int waited_signal(pid_t pid) {
        int st;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        return WIFSIGNALED(st) ? WTERMSIG(st) : -1;
}

static void test_timeout(const char *tmp) {
        _cleanup_free_ char *pidfile = NULL, *cmd = NULL, *out = NULL, *text = NULL;
        int status = -1;
        uint64_t start;

        /* Orphans of the commands become our children, so we can see how they died. */
        ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));

        start = mono_usec();
        status = 12345;
        ASSERT_EQ(heal_spawn("sleep 30", NULL, 300 * MSEC, &out, &status), -ETIMEDOUT);
        ASSERT_TRUE(mono_usec() - start < 3 * SEC);
        ASSERT_TRUE(mono_usec() - start >= 290 * MSEC);
        ASSERT_TRUE(!out);          /* out-parameters untouched on error */
        ASSERT_EQ(status, 12345);

        /* The whole group dies, not only the shell: a background child too. */
        ASSERT_TRUE(asprintf(&pidfile, "%s/bg.pid", tmp) > 0);
        ASSERT_TRUE(asprintf(&cmd, "sleep 30 & echo $! > %s; wait", pidfile) > 0);
        start = mono_usec();
        ASSERT_EQ(heal_spawn(cmd, NULL, 500 * MSEC, NULL, NULL), -ETIMEDOUT);
        ASSERT_TRUE(mono_usec() - start < 3 * SEC);
        _cleanup_fclose_ FILE *f = fopen(pidfile, "re");
        ASSERT_TRUE(f);
        long bg = 0;
        ASSERT_EQ(fscanf(f, "%ld", &bg), 1);
        ASSERT_TRUE(bg > 1);
        ASSERT_EQ(waited_signal((pid_t) bg), SIGKILL);

        /* A shell that exits leaves nothing behind holding the output open:
         * no waiting for the background sleep, which is killed. */
        start = mono_usec();
        ASSERT_OK(heal_spawn("sleep 30 & echo $!", NULL, 10 * SEC, &text, &status));
        ASSERT_TRUE(mono_usec() - start < 3 * SEC);
        ASSERT_EQ(status, 0);
        char *end = NULL;
        long bg2 = strtol(text, &end, 10);
        ASSERT_TRUE(end != text && bg2 > 1);
        ASSERT_EQ(waited_signal((pid_t) bg2), SIGKILL);
}

static void test_no_fd_leak(void) {
        /* Deliberately without O_CLOEXEC: heal_spawn must not pass it on. */
        int fd = open("/dev/null", O_RDONLY);
        _cleanup_free_ char *cmd = NULL;

        ASSERT_TRUE(fd > 2);
        ASSERT_TRUE(asprintf(&cmd, "if [ -e /proc/$$/fd/%d ]; then echo leaked; else echo clean; fi",
                             fd) > 0);
        expect_run(cmd, NULL, 0, "clean\n");
        /* The probe itself works: fd 1 is there. */
        expect_run("[ -e /proc/$$/fd/1 ] && echo present", NULL, 0, "present\n");
        close(fd);
}

static void test_own_group(void) {
        _cleanup_free_ char *out = NULL;
        char *end = NULL;
        int status;

        /* The command leads its own process group (so a kill reaches all of it, not us). */
        ASSERT_OK(heal_spawn("cut -d' ' -f5 /proc/$$/stat", NULL,
                             10 * SEC, &out, &status));
        ASSERT_EQ(status, 0);
        long pgid = strtol(out, &end, 10);
        ASSERT_TRUE(end != out);
        ASSERT_TRUE(pgid != (long) getpgrp());
}

int main(void) {
        _cleanup_free_ char *tmp = test_tmpdir();

        test_status_and_output();
        test_stdin();
        test_output_bound();
        test_unread_stdin();
        test_no_fd_leak();
        test_own_group();
        test_timeout(tmp);

        test_rm_rf(tmp);
        return 0;
}
