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
 * stuck_cgroup_read_counters() - stuck_cgroup_read_buf(), or less when cpu usage alone clears the unit.
 * @before: the counters of the unit's previous sample, or NULL (then everything is read).
 *
 * cpu.stat comes first, opened by its path under the root's v2 fd when @cg has one (no stat, no open of
 * the unit's directory). When its usage_usec grew since @before (both from v2), the unit made progress:
 * io.stat and the *.pressure files are not read (io_known and every psi[].known stay false, and
 * pressure_skipped says why), only pids.current is, whose growth is a reason to look closer. Otherwise
 * the directory is opened and everything read, as stuck_cgroup_read() does.
 *
 * Return: as stuck_cgroup_read().
 */
int stuck_cgroup_read_counters(const stuck_cgroup_path *cg, const stuck_cgroup_sample *before, stuck_buf *b,
                               stuck_cgroup_sample *ret);

/**
 * stuck_cgroup_list_pids() - every pid in cgroup.procs of @dir and its sub-cgroups.
 * @dir: a v2 cgroup directory.
 * @b: scratch buffer.
 * @ret_pids, @ret_n: a new array (caller frees), in file order; written on success.
 *
 * Return: 0; -ENOENT when @dir is gone; -EBADMSG for a garbled cgroup.procs; -errno.
 */
int stuck_cgroup_list_pids(const char *dir, stuck_buf *b, pid_t **ret_pids, size_t *ret_n);
