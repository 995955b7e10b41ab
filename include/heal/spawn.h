/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run a command with bounded time: escalation commands, verify commands. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/**
 * heal_spawn() - run `/bin/sh -c @command`, feeding @input on stdin.
 * @input: may be NULL (stdin is /dev/null then).
 * @timeout_usec: after this the process group is killed (SIGKILL).
 * @ret_output: when non-NULL, stdout+stderr (at most 64 KiB kept; caller frees).
 * @ret_status: the exit status (0..255), or 128+signal when killed.
 *
 * Returns 0 when the command ran (whatever its status), -ETIMEDOUT when it
 * was killed for running too long, -errno when it could not be run.
 */
int heal_spawn(const char *command, const char *input, uint64_t timeout_usec, char **ret_output,
               int *ret_status);
