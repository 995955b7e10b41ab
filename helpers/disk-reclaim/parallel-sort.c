/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* qsort() spread over worker threads: chunks sorted side by side, then merged
 * pairwise, each merge cut into parts (merge path). */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parallel-sort.h"
#include "parallel.h"

/* Below this, one qsort() is quicker than starting threads. */
#define PAR_SORT_MIN 8192

typedef struct sort_job {
        char *base;
        size_t size, n_chunks;
        size_t *bounds;         /* chunk i is [bounds[i], bounds[i + 1]) */
        int (*cmp)(const void *, const void *);
        _Atomic size_t next;
} sort_job;

static int sort_worker(par_worker *w) {
        sort_job *j = w->userdata;
        for (size_t c; (c = atomic_fetch_add(&j->next, 1)) < j->n_chunks;)
                qsort(j->base + j->bounds[c] * j->size, j->bounds[c + 1] - j->bounds[c], j->size, j->cmp);
        return 0;
}

/* Sorted runs are merged pairwise, round after round, the output of each pair
 * cut into parts that threads merge side by side: the merge is spread over
 * the threads like the sort, not left to one. */
typedef struct merge_job {
        const char *src;
        char *dst;
        size_t size;
        int (*cmp)(const void *, const void *);
        const size_t *bounds;   /* runs of this round: run r is [bounds[r], bounds[r + 1]) */
        size_t n_runs;
        size_t parts;           /* parts per pair */
        _Atomic size_t next;    /* next (pair, part) to merge */
} merge_job;

/* How many of @a's elements are among the first @d of the merge of @a and
 * @b, where @a's go first on ties (the lower run wins, as in one stable pass). */
static size_t split_at(const merge_job *m, const char *a, size_t na, const char *b, size_t nb, size_t d) {
        size_t lo = d > nb ? d - nb : 0, hi = d < na ? d : na;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (m->cmp(a + mid * m->size, b + (d - mid - 1) * m->size) <= 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static void merge_part(const merge_job *m, size_t pair, size_t part) {
        size_t first = m->bounds[2 * pair];
        size_t mid = 2 * pair + 1 < m->n_runs ? m->bounds[2 * pair + 1] : m->bounds[m->n_runs];
        size_t end = 2 * pair + 1 < m->n_runs ? m->bounds[2 * pair + 2] : mid;
        const char *a = m->src + first * m->size, *b = m->src + mid * m->size;
        size_t na = mid - first, nb = end - mid, n = na + nb;
        size_t d0 = n / m->parts * part, d1 = part + 1 == m->parts ? n : n / m->parts * (part + 1);
        size_t i = split_at(m, a, na, b, nb, d0), i_end = split_at(m, a, na, b, nb, d1);
        size_t j = d0 - i, j_end = d1 - i_end;
        char *out = m->dst + (first + d0) * m->size;

        while (i < i_end && j < j_end) {
                const char *x = a + i * m->size, *y = b + j * m->size;
                bool take_a = m->cmp(x, y) <= 0;
                memcpy(out, take_a ? x : y, m->size);
                out += m->size;
                i += take_a;
                j += !take_a;
        }
        memcpy(out, a + i * m->size, (i_end - i) * m->size);
        out += (i_end - i) * m->size;
        memcpy(out, b + j * m->size, (j_end - j) * m->size);
}

static int merge_worker(par_worker *w) {
        merge_job *m = w->userdata;
        size_t pairs = (m->n_runs + 1) / 2;
        for (size_t t; (t = atomic_fetch_add(&m->next, 1)) < pairs * m->parts;)
                merge_part(m, t / m->parts, t % m->parts);
        return 0;
}

/* Merge the @n_runs sorted runs of @buf (bounds[], n_runs + 1 entries, rewritten)
 * using @tmp; the sorted result ends up in one of the two, which is returned. */
static char *merge_runs(char *buf, char *tmp, size_t size, int (*cmp)(const void *, const void *), size_t *bounds,
                        size_t n_runs, unsigned workers) {
        char *src = buf, *dst = tmp;

        while (n_runs > 1) {
                size_t pairs = (n_runs + 1) / 2;
                merge_job m = {
                        .src = src,
                        .dst = dst,
                        .size = size,
                        .cmp = cmp,
                        .bounds = bounds,
                        .n_runs = n_runs,
                        .parts = workers > pairs ? workers / pairs : 1,
                };
                if (par_run(workers, merge_worker, &m, NULL) < 0)
                        (void) merge_worker(&(par_worker) { .userdata = &m }); /* no thread: here */
                for (size_t r = 0; r < pairs; r++)
                        bounds[r] = bounds[2 * r];
                bounds[pairs] = bounds[n_runs];
                n_runs = pairs;
                char *t = src;
                src = dst;
                dst = t;
        }
        return src;
}

int par_sort(void **base, size_t n, size_t size, int (*cmp)(const void *, const void *), unsigned workers) {
        size_t bounds[PAR_WORKERS_MAX + 1];
        size_t bytes;

        if (workers > PAR_WORKERS_MAX)
                workers = PAR_WORKERS_MAX;
        if (workers <= 1 || n < PAR_SORT_MIN || __builtin_mul_overflow(n, size, &bytes)) {
                qsort(*base, n, size, cmp);
                return 0;
        }

        sort_job j = { .base = *base, .size = size, .n_chunks = workers, .bounds = bounds, .cmp = cmp };
        for (size_t c = 0; c <= workers; c++)
                bounds[c] = n / workers * c + (c == workers ? n % workers : 0);
        /* Fewer threads than asked sort all the chunks all the same; none at all, qsort() here. */
        if (par_run(workers, sort_worker, &j, NULL) < 0) {
                qsort(*base, n, size, cmp);
                return 0;
        }
        /* Taken only now: qsort()'s own buffers are gone, so the peak is no higher than one qsort()'s. */
        char *tmp = malloc(bytes);
        if (!tmp) {
                qsort(*base, n, size, cmp); /* merges the sorted chunks in place, if slowly */
                return -ENOMEM;
        }
        char *sorted = merge_runs(*base, tmp, size, cmp, bounds, workers, workers);
        free(sorted == tmp ? *base : tmp);
        *base = sorted;
        return 0;
}
