/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-reclaim's worker threads: the watchdog is pinged while they progress
 * and never while they are stuck; one failure stops all of them. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heal/cleanup.h"
#include "parallel-sort.h"
#include "parallel.h"
#include "test-util.h"

static uint64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

typedef struct pings {
        unsigned n;
        uint64_t last_ms;
} pings;

static int record_ping(void *ud) {
        pings *p = ud;
        p->n++;
        p->last_ms = mono_ms();
        return 0;
}

/* Worker 0 makes progress for 200 ms, then hangs without progress for 1 s
 * (as in a read from a dead mount); the others finish at once. */
typedef struct hang_job {
        uint64_t hang_from_ms;
} hang_job;

static int progress_then_hang(par_worker *w) {
        hang_job *j = w->userdata;
        if (w->index != 0)
                return 0;
        for (int i = 1; i <= 20; i++) {
                sleep_ms(10);
                atomic_store(&w->progress, (uint64_t) i);
        }
        j->hang_from_ms = mono_ms();
        sleep_ms(1000);
        return 0;
}

static void test_no_ping_while_stuck(void) {
        pings p = {};
        hang_job j = {};
        par_ping ping = { .fn = record_ping, .userdata = &p, .period_ms = 20 };

        uint64_t t0 = mono_ms();
        ASSERT_EQ(par_run(3, progress_then_hang, &j, &ping), 0);
        /* Pinged while it moved... */
        ASSERT_TRUE(p.n >= 3);
        /* ...and not after the first look that found the hang (a ping per
         * period regardless of progress would go on to hang_from + 1000). */
        ASSERT_TRUE(p.last_ms <= j.hang_from_ms + 400);
        ASSERT_TRUE(mono_ms() - t0 >= 1200);
}

/* One worker fails: the others see stop and end; its error is returned. */
static int fail_or_wait(par_worker *w) {
        _Atomic unsigned *done = w->userdata;
        if (w->index == 1) {
                sleep_ms(20);
                return -EIO;
        }
        while (!atomic_load(w->stop))
                sleep_ms(1);
        atomic_fetch_add(done, 1);
        return -ECANCELED; /* a later error does not replace the first */
}

static void test_failure_stops_all(void) {
        _Atomic unsigned done = 0;
        ASSERT_EQ(par_run(4, fail_or_wait, &done, NULL), -EIO);
        ASSERT_EQ(atomic_load(&done), 3);
}

/* A failing ping stops the workers and is what par_run() returns. */
static int stop_ping(void *ud) {
        (void) ud;
        return -ECANCELED;
}

static int progress_until_stop(par_worker *w) {
        for (uint64_t i = 1; !atomic_load(w->stop); i++) {
                atomic_store(&w->progress, i);
                sleep_ms(1);
        }
        return 0;
}

static void test_ping_failure_stops_all(void) {
        par_ping ping = { .fn = stop_ping, .period_ms = 5 };
        ASSERT_EQ(par_run(2, progress_until_stop, NULL, &ping), -ECANCELED);
}

/* Every worker gets its own index, and more than PAR_WORKERS_MAX are not started. */
static int mark(par_worker *w) {
        _Atomic unsigned *seen = w->userdata;
        atomic_fetch_add(&seen[w->index], 1);
        return 0;
}

static void test_indexes(void) {
        _Atomic unsigned seen[PAR_WORKERS_MAX + 4] = {};
        ASSERT_EQ(par_run(PAR_WORKERS_MAX + 4, mark, seen, NULL), 0);
        for (unsigned i = 0; i < PAR_WORKERS_MAX + 4; i++)
                ASSERT_EQ(atomic_load(&seen[i]), i < PAR_WORKERS_MAX ? 1U : 0U);
        ASSERT_TRUE(par_default_workers() >= 1 && par_default_workers() <= 4);
}

/* par_sort() gives qsort()'s order, whatever the count, the chunking and the
 * workers: sizes around the threshold and uneven splits, duplicates included. */
typedef struct item {
        uint64_t key;
        uint32_t tie;
        char pad[20];
} item;

static int cmp_item(const void *a, const void *b) {
        const item *x = a, *y = b;
        if (x->key != y->key)
                return x->key < y->key ? -1 : 1;
        return x->tie < y->tie ? -1 : x->tie > y->tie ? 1 : 0;
}

static void test_sort(void) {
        static const size_t sizes[] = { 0, 1, 8191, 8192, 8193, 100003 };
        uint64_t seed = 42;

        for (size_t s = 0; s < ELEMENTSOF(sizes); s++)
                for (unsigned workers = 1; workers <= 5; workers++) {
                        size_t n = sizes[s];
                        item *a = calloc(n ? n : 1, sizeof(item)), *b = calloc(n ? n : 1, sizeof(item));
                        ASSERT_TRUE(a && b);
                        for (size_t i = 0; i < n; i++) {
                                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                                a[i] = (item) { .key = (seed >> 33) % (n / 3 + 1), .tie = (uint32_t) i };
                        }
                        memcpy(b, a, n * sizeof(item));
                        ASSERT_EQ(par_sort((void **) &a, n, sizeof(item), cmp_item, workers), 0);
                        qsort(b, n, sizeof(item), cmp_item);
                        ASSERT_TRUE(n == 0 || memcmp(a, b, n * sizeof(item)) == 0);
                        free(a);
                        free(b);
                }
}

int main(void) {
        test_sort();
        test_no_ping_while_stuck();
        test_failure_stops_all();
        test_ping_failure_stops_all();
        test_indexes();
        return 0;
}
