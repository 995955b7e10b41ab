/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal to the scan: counters with a shared buffer, and a unit's processes from its cgroup subtree. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "scan.h"
#include "util.h"

/* stuck_cgroup_read() with a caller's scratch buffer (one buffer serves a whole scan). */
int stuck_cgroup_read_buf(const stuck_cgroup_path *cg, stuck_buf *b, stuck_cgroup_sample *ret);

/**
 * stuck_cgroup_list_pids() - every pid in cgroup.procs of @dir and its sub-cgroups.
 * @dir: a v2 cgroup directory.
 * @b: scratch buffer.
 * @ret_pids, @ret_n: a new array (caller frees), in file order; written on success.
 *
 * Return: 0; -ENOENT when @dir is gone; -EBADMSG for a garbled cgroup.procs; -errno.
 */
int stuck_cgroup_list_pids(const char *dir, stuck_buf *b, pid_t **ret_pids, size_t *ret_n);
