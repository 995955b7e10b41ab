/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal to the scan: reading processes with one /proc dir fd and one buffer for a whole scan. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "scan.h"
#include "util.h"

typedef struct stuck_proc_ctx {
        int proc_fd;       /* heal_path_proc(), opened once */
        stuck_buf buf;
        bool now_tried;    /* the scheduler-clock reference for D durations, read at most once */
        bool now_known;
        uint64_t now_nsec;
        long clk_tck;
} stuck_proc_ctx;

/* Opens heal_path_proc(). Return: 0, -errno. */
int stuck_proc_ctx_init(stuck_proc_ctx *c);
void stuck_proc_ctx_done(stuck_proc_ctx *c);

/**
 * stuck_proc_read_ctx() - stuck_proc_read() within a scan.
 * @c: the scan's context.
 * @pid, @flags, @ret: as for stuck_proc_read(), except that zombies are not counted here.
 * @ret_children, @ret_n_children: with STUCK_SCAN_ZOMBIES, the children of every thread (a new
 *      array, caller frees; NULL/0 when it could not be read, and ret->children_known stays false);
 *      may be NULL otherwise.
 *
 * Return: as stuck_proc_read().
 */
int stuck_proc_read_ctx(stuck_proc_ctx *c, pid_t pid, unsigned flags, stuck_proc_sample *ret,
                        pid_t **ret_children, size_t *ret_n_children);

/* Children of every thread of @pid (zombies included): a new array, caller frees.
 * Return: 0, -ENOENT when gone, -EBADMSG, -errno. */
int stuck_proc_children(stuck_proc_ctx *c, pid_t pid, unsigned n_threads, pid_t **ret, size_t *ret_n);

/* State of any pid from its stat (one read). Return: 0, -ENOENT when gone, -errno. */
int stuck_proc_state(stuck_proc_ctx *c, pid_t pid, char *ret_state);
