/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run a shell command with a deadline: its own process group, stdin fed from
 * memory, stdout+stderr captured (bounded), the whole group killed on timeout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/spawn.h"
#include "heal/time-util.h"

#define OUTPUT_MAX (64 * 1024)
/* Without pidfds the child's exit is noticed by polling this often. */
#define EXIT_POLL_MSEC 20

typedef struct spawn_io {
        pid_t pid;
        int in_fd;  /* our end of the child's stdin, -EBADF once closed */
        int out_fd; /* our end of its stdout+stderr, -EBADF at EOF */
        int pid_fd; /* readable when the child exits; -EBADF without pidfd support */
        const char *input;
        size_t input_left;
        char *output;
        size_t output_len;
        bool exited;
        bool got_epipe;
} spawn_io;

/* In the child, between fork and exec: only async-signal-safe calls. */
static _Noreturn void child_exec(const char *command, int in_fd, int out_fd) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t none;

        /* Ignored signals and the mask survive exec; the command gets neither. */
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        (void) setpgid(0, 0);

        /* Above 2 first, so dup2 cannot clobber one with the other. */
        in_fd = fcntl(in_fd, F_DUPFD, 3);
        out_fd = fcntl(out_fd, F_DUPFD, 3);
        if (in_fd < 0 || out_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 ||
            dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
                _exit(127);
        (void) close_range(3, ~0U, 0);

        execl("/bin/sh", "sh", "-c", command, (char *) NULL);
        _exit(127);
}

static int set_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

static void feed_input(spawn_io *io) {
        while (io->input_left > 0) {
                ssize_t k = write(io->in_fd, io->input, io->input_left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return;
                        /* EPIPE: the command does not want the rest; not an error. */
                        if (errno == EPIPE)
                                io->got_epipe = true;
                        break;
                }
                io->input += k;
                io->input_left -= (size_t) k;
        }
        closep(&io->in_fd); /* all sent (or refused): EOF for the command */
}

static void drain_output(spawn_io *io) {
        char scratch[4096];

        for (;;) {
                /* Keep the first OUTPUT_MAX bytes, read and drop the rest so
                 * the command never blocks on a full pipe. */
                bool keep = io->output_len < OUTPUT_MAX;
                char *dst = keep ? io->output + io->output_len : scratch;
                size_t room = keep ? OUTPUT_MAX - io->output_len : sizeof(scratch);
                ssize_t k = read(io->out_fd, dst, room);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return;
                        break;
                }
                if (k == 0)
                        break;
                if (keep)
                        io->output_len += (size_t) k;
        }
        closep(&io->out_fd);
}

/* Notes the shell's exit without reaping it: while the zombie holds its pid,
 * the process group id cannot be reused, so killing the group stays safe. */
static void check_exit(spawn_io *io) {
        siginfo_t si = {};

        if (io->exited)
                return;
        if (waitid(P_PID, (id_t) io->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
                if (errno != EINTR)
                        io->exited = true; /* ECHILD: reaped elsewhere; nothing left to wait for */
                return;
        }
        if (si.si_pid != io->pid)
                return;
        io->exited = true;
        /* Nothing the command started outlives it (and holds the output open). */
        (void) kill(-io->pid, SIGKILL);
        closep(&io->in_fd);
        closep(&io->pid_fd);
}

/* Returns 0 when the shell exited and its output is drained, -ETIMEDOUT when
 * the deadline passed first, -errno on poll failure. */
static int pump(spawn_io *io, uint64_t deadline) {
        while (!io->exited || io->out_fd >= 0) {
                struct pollfd p[3];
                nfds_t n = 0;
                int in_i = -1, out_i = -1;

                if (io->in_fd >= 0) {
                        in_i = (int) n;
                        p[n++] = (struct pollfd){ .fd = io->in_fd, .events = POLLOUT };
                }
                if (io->out_fd >= 0) {
                        out_i = (int) n;
                        p[n++] = (struct pollfd){ .fd = io->out_fd, .events = POLLIN };
                }
                if (!io->exited && io->pid_fd >= 0)
                        p[n++] = (struct pollfd){ .fd = io->pid_fd, .events = POLLIN };

                uint64_t now = heal_now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                uint64_t wait_ms = (deadline - now + 999) / 1000;
                if (!io->exited && io->pid_fd < 0 && wait_ms > EXIT_POLL_MSEC)
                        wait_ms = EXIT_POLL_MSEC;
                if (wait_ms > INT32_MAX)
                        wait_ms = INT32_MAX;

                if (poll(p, n, (int) wait_ms) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (in_i >= 0 && p[in_i].revents)
                        feed_input(io);
                if (out_i >= 0 && p[out_i].revents)
                        drain_output(io);
                check_exit(io);
        }
        return 0;
}

static int reap(pid_t pid, int *ret_wstatus) {
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (ret_wstatus)
                *ret_wstatus = st;
        return 0;
}

static int run(const char *command, const char *input, uint64_t timeout_usec, spawn_io *io,
               int *ret_wstatus) {
        _cleanup_close_ int child_in = -EBADF, child_out = -EBADF;
        int fds[2];
        int r;

        if (input) {
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                child_in = fds[0];
                io->in_fd = fds[1];
                io->input = input;
                io->input_left = strlen(input);
        } else {
                child_in = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (child_in < 0)
                        return -errno;
        }
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        io->out_fd = fds[0];
        child_out = fds[1];
        if (io->in_fd >= 0 && (r = set_nonblock(io->in_fd)) < 0)
                return r;
        if ((r = set_nonblock(io->out_fd)) < 0)
                return r;

        uint64_t start = heal_now_usec(CLOCK_MONOTONIC);
        io->pid = fork();
        if (io->pid < 0)
                return -errno;
        if (io->pid == 0)
                child_exec(command, child_in, child_out);

        /* Also here, so the group exists before we might have to kill it. */
        (void) setpgid(io->pid, io->pid);
        closep(&child_in);
        closep(&child_out);
#ifdef SYS_pidfd_open
        io->pid_fd = (int) syscall(SYS_pidfd_open, io->pid, 0);
        if (io->pid_fd < 0)
                io->pid_fd = -EBADF;
#endif

        uint64_t deadline = timeout_usec > UINT64_MAX - start ? UINT64_MAX : start + timeout_usec;
        r = pump(io, deadline);
        if (r < 0 && !io->exited) {
                (void) kill(-io->pid, SIGKILL);
                (void) kill(io->pid, SIGKILL); /* in case setpgid lost the race to exec */
                (void) reap(io->pid, NULL);
                return r;
        }
        /* The shell exited; a deadline passed while draining what it left
         * behind only cuts the output short. */
        return reap(io->pid, ret_wstatus);
}

int heal_spawn(const char *command, const char *input, uint64_t timeout_usec, char **ret_output,
               int *ret_status) {
        spawn_io io = { .in_fd = -EBADF, .out_fd = -EBADF, .pid_fd = -EBADF };
        sigset_t pipe_set, old_mask, pending;
        bool was_pending;
        int wstatus = 0, r;

        if (!command)
                return -EINVAL;
        io.output = malloc(OUTPUT_MAX + 1);
        if (!io.output)
                return -ENOMEM;

        /* Writing to a command that exited raises SIGPIPE in this thread: keep
         * it blocked while we run, and swallow the one we caused. */
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        was_pending = sigpending(&pending) >= 0 && sigismember(&pending, SIGPIPE) == 1;
        (void) pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);

        r = run(command, input, timeout_usec, &io, &wstatus);

        if (io.got_epipe && !was_pending) {
                const struct timespec zero = {};
                while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                        ;
        }
        (void) pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        closep(&io.in_fd);
        closep(&io.out_fd);
        closep(&io.pid_fd);

        if (r < 0) {
                free(io.output);
                return r;
        }
        if (ret_status)
                *ret_status = WIFEXITED(wstatus)   ? WEXITSTATUS(wstatus)
                              : WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus)
                                                     : 255;
        if (ret_output) {
                io.output[io.output_len] = '\0';
                *ret_output = io.output;
        } else
                free(io.output);
        return 0;
}
