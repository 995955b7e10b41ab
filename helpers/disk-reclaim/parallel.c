/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Worker threads with a progress-gated watchdog ping. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parallel.h"

#define PING_PERIOD_MS_DEFAULT 200U

typedef struct par_shared {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned running;
        int error;
        _Atomic bool stop;
        par_fn fn;
} par_shared;

typedef struct par_thread {
        par_worker w;
        par_shared *shared;
        pthread_t thread;
} par_thread;

static void *worker_main(void *arg) {
        par_thread *t = arg;
        par_shared *s = t->shared;
        int r;

        /* A table of fds of its own (a copy: every fd open now stays usable).
         * The fds a worker opens then come in runs of consecutive numbers,
         * which disk-reclaim closes a run at a time, and lookups of them take
         * no lock and no reference shared with the other workers. Where
         * unshare() is refused the shared table only costs speed. */
        t->w.private_fds = unshare(CLONE_FILES) == 0;
        r = s->fn(&t->w);

        pthread_mutex_lock(&s->lock);
        if (r < 0 && s->error == 0) {
                s->error = r;
                atomic_store(&s->stop, true);
        }
        s->running--;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

static uint64_t progress_sum(const par_thread *t, unsigned n) {
        uint64_t sum = 0;
        for (unsigned i = 0; i < n; i++)
                sum += atomic_load_explicit(&t[i].w.progress, memory_order_relaxed);
        return sum;
}

static struct timespec deadline_in(long nsec) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += nsec / 1000000000L;
        ts.tv_nsec += nsec % 1000000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return ts;
}

/* Wait for the workers, pinging whenever they moved since the last look. */
static void supervise(par_shared *s, par_thread *t, unsigned started, const par_ping *ping) {
        long period_ns = (long) (ping && ping->period_ms ? ping->period_ms : PING_PERIOD_MS_DEFAULT) * 1000000L;
        uint64_t seen = 0;

        pthread_mutex_lock(&s->lock);
        while (s->running > 0) {
                struct timespec until = deadline_in(period_ns);
                int w = pthread_cond_timedwait(&s->cond, &s->lock, &until);
                if (w != ETIMEDOUT || !ping || !ping->fn || s->error < 0)
                        continue;
                uint64_t now = progress_sum(t, started);
                if (now == seen)
                        continue; /* nobody moved: let the watchdog see it */
                seen = now;
                pthread_mutex_unlock(&s->lock);
                int r = ping->fn(ping->userdata);
                pthread_mutex_lock(&s->lock);
                if (r < 0 && s->error == 0) {
                        s->error = r;
                        atomic_store(&s->stop, true);
                }
        }
        pthread_mutex_unlock(&s->lock);
}

int par_run(unsigned workers, par_fn fn, void *userdata, const par_ping *ping) {
        par_shared s = { .fn = fn };
        pthread_condattr_t ca;
        par_thread *t;
        unsigned started = 0;
        int r;

        if (workers == 0)
                workers = 1;
        if (workers > PAR_WORKERS_MAX)
                workers = PAR_WORKERS_MAX;
        /* par_worker's counter wants its own cache line: malloc() does not align to one. */
        t = aligned_alloc(_Alignof(par_thread), workers * sizeof(par_thread));
        if (!t)
                return -ENOMEM;
        memset(t, 0, workers * sizeof(par_thread));

        pthread_mutex_init(&s.lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s.cond, &ca);
        pthread_condattr_destroy(&ca);

        pthread_mutex_lock(&s.lock);
        for (unsigned i = 0; i < workers; i++) {
                t[i].w = (par_worker) { .index = i, .workers = workers, .stop = &s.stop, .userdata = userdata };
                t[i].shared = &s;
                r = pthread_create(&t[i].thread, NULL, worker_main, &t[i]);
                if (r != 0)
                        break; /* fewer threads do the same job, only slower */
                started++;
                s.running++;
        }
        pthread_mutex_unlock(&s.lock);

        if (started == 0) {
                free(t);
                pthread_cond_destroy(&s.cond);
                pthread_mutex_destroy(&s.lock);
                return -r;
        }

        supervise(&s, t, started, ping);
        for (unsigned i = 0; i < started; i++)
                pthread_join(t[i].thread, NULL);

        r = s.error;
        free(t);
        pthread_cond_destroy(&s.cond);
        pthread_mutex_destroy(&s.lock);
        return r;
}

unsigned par_default_workers(void) {
        cpu_set_t set;
        int n = 0;

        if (sched_getaffinity(0, sizeof(set), &set) == 0)
                n = CPU_COUNT(&set);
        if (n < 1)
                n = 1;
        return n > 4 ? 4U : (unsigned) n;
}
