/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running one job on several threads while the calling thread keeps the
 * watchdog fed, but only while the job makes progress: a worker hung in an
 * uninterruptible wait (a dead NFS or FUSE mount) must still be caught by
 * systemd's watchdog, never masked by a thread that pings regardless. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* More threads than this never pay for themselves on removal-bound work. */
#define PAR_WORKERS_MAX 16U

typedef struct par_worker {
        /* Bumped by the worker as it goes (relaxed); read by the pinging
         * thread. One cache line per worker, so counting costs no sharing. */
        _Alignas(64) _Atomic uint64_t progress;
        unsigned index;                 /* 0 .. workers - 1 */
        unsigned workers;               /* threads asked for (some may not have started) */
        bool private_fds;               /* it has an fd table of its own (unshare(CLONE_FILES)) */
        const _Atomic bool *stop;       /* set when another worker or the ping failed */
        void *userdata;
} par_worker;

typedef int (*par_fn)(par_worker *w);

/* The watchdog keep-alive: fn(userdata) from the calling thread about every
 * period_ms (0: 200) in which some worker made progress; never when none did. */
typedef struct par_ping {
        int (*fn)(void *userdata);
        void *userdata;
        unsigned period_ms;
} par_ping;

/**
 * par_run() - run @fn(w) on @workers threads (each with its own par_worker,
 * w->userdata = @userdata) and wait for all of them.
 * @ping: may be NULL, or have a NULL fn. A negative return of ping->fn stops
 *   the workers (they see *w->stop) and is returned.
 *
 * The first negative return of a worker sets *w->stop for the others.
 *
 * Return: 0, the first negative return of @fn or @ping, or -errno when not
 * even one thread could be started.
 */
int par_run(unsigned workers, par_fn fn, void *userdata, const par_ping *ping);

/* Default worker count: the CPUs this process may run on, capped at 4. */
unsigned par_default_workers(void);
