/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run a command with bounded time: escalation commands, verify commands. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/**
 * heal_spawn() - run `/bin/sh -c @command`, feeding @input on stdin.
 * @input: may be NULL (stdin is /dev/null then). Input the command does not
 *   read is dropped; the SIGPIPE this causes is swallowed, the caller's signal
 *   mask and dispositions are as before on return.
 * @timeout_usec: after this the process group is killed (SIGKILL) and reaped;
 *   UINT64_MAX waits for ever.
 * @ret_output: when non-NULL, stdout+stderr (at most 64 KiB kept, the rest read
 *   and dropped; NUL-terminated; caller frees).
 * @ret_status: the exit status (0..255; 127 when sh cannot run the command),
 *   or 128+signal when killed.
 *
 * The command runs in a process group of its own, with default signal
 * dispositions, an empty signal mask and no fds beyond 0-2. When the shell
 * exits, whatever is left of its group is killed: nothing outlives it.
 * Blocking; the caller's SIGCHLD handling must leave this child to waitpid().
 *
 * Returns 0 when the command ran (whatever its status), -ETIMEDOUT when it
 * was killed for running too long, -errno when it could not be run.
 * Out-parameters are written only on 0.
 */
int heal_spawn(const char *command, const char *input, uint64_t timeout_usec, char **ret_output,
               int *ret_status);
