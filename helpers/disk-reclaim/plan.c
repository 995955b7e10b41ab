/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Choosing what to remove: each source walked once, its oldest eligible files
 * kept in a bounded max-heap that just covers what is still needed. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "heal/cleanup.h"
#include "parallel-sort.h"
#include "parallel.h"
#include "plan.h"
#include "walk.h"

_printf_(3, 4) static int fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                char *m = NULL;
                va_start(ap, fmt);
                if (vasprintf(&m, fmt, ap) < 0)
                        m = NULL;
                va_end(ap);
                free(*ret_error);
                *ret_error = m;
        }
        return r;
}

/* Validate @s and open its root (pinned in @ret). */
static int source_open(const reclaim_source *s, walk_root *ret, char **ret_error) {
        const char *name = s->name && *s->name ? s->name : "(unnamed)";
        const char *root = s->root;
        int r;

        if (!root || root[0] != '/')
                return fail(ret_error, -EINVAL, "source '%s': root '%s' is not an absolute path", name,
                            root ? root : "(none)");
        if (strspn(root, "/") == strlen(root))
                return fail(ret_error, -EINVAL,
                            "source '%s': refusing root '%s', the whole filesystem", name, root);
        if (s->times == 0 || (s->times & ~(unsigned) RECLAIM_TIME_ALL))
                return fail(ret_error, -EINVAL, "source '%s': invalid set of timestamps (0x%x)", name,
                            s->times);
        if (s->max_depth > RECLAIM_DEPTH_MAX)
                return fail(ret_error, -EINVAL, "source '%s': max_depth %u exceeds %u", name,
                            s->max_depth, RECLAIM_DEPTH_MAX);
        for (char **p = s->patterns; p && *p; p++)
                if (!**p || strchr(*p, '/'))
                        return fail(ret_error, -EINVAL,
                                    "source '%s': pattern '%s' must match a file name, without '/'",
                                    name, *p);

        r = walk_root_open(root, ret);
        switch (r) {
        case 0:
                return 0;
        case -EINVAL:
                return fail(ret_error, r,
                            "source '%s': root '%s' is not canonical (no '.', '..', '//' or trailing '/')",
                            name, root);
        case -ENOENT:
                return fail(ret_error, r, "source '%s': root '%s' does not exist", name, root);
        case -ENOTDIR:
                return fail(ret_error, r, "source '%s': root '%s' is not a directory", name, root);
        case -ELOOP:
                return fail(ret_error, r, "source '%s': root '%s' goes through a symlink", name, root);
        default:
                return fail(ret_error, r, "source '%s': cannot open root '%s': %s", name, root,
                            strerror(-r));
        }
}

int reclaim_source_check(const reclaim_source *s, char **ret_error) {
        walk_root root = { .fd = -EBADF };
        int r = source_open(s, &root, ret_error);
        walk_root_done(&root);
        return r;
}

/* ---- the selector: a max-heap, youngest on top ------------------------------ */

typedef struct selector {
        reclaim_file *heap;
        size_t n, cap;
        uint64_t sum;
        uint64_t target;        /* bytes still needed from this source */
        uint64_t max_files;     /* files still allowed */
        uint32_t source;
        unsigned times;
        int64_t cutoff_usec;
        char **patterns;
        reclaim_plan_source *ps;        /* read only while the walk runs */
        uint64_t peak_kept;
        bool heaped;                    /* heap[] is a max-heap (youngest on top), not just an array */

        /* The walk's workers share one selector, so together they hold no
         * more than the target needs. They hand it candidates in batches
         * under the lock; what is younger than the youngest kept, once the
         * target is covered, they drop without taking it (covered_stamp is
         * that youngest stamp, or INT64_MAX while not covered; it only
         * decreases, so a stale read just lets a candidate through to the
         * exact check). */
        pthread_mutex_t lock;
        _Atomic int64_t covered_stamp;
} selector;

/* What one walking worker gathers before it takes the selector's lock. */
#define BATCH_MAX 256

typedef struct gatherer {
        selector *s;
        reclaim_file batch[BATCH_MAX];
        size_t n;
        uint64_t eligible_files, eligible_bytes;
} gatherer;

/* Oldest first; ties by path, so a shadow run and a live run choose alike. */
static bool file_older(const reclaim_file *a, const reclaim_file *b) {
        if (a->stamp_usec != b->stamp_usec)
                return a->stamp_usec < b->stamp_usec;
        int c = strcmp(a->relpath, b->relpath);
        if (c != 0)
                return c < 0;
        /* One path seen twice (its directory renamed during the walk): the
         * order must still not depend on which thread saw which first. */
        if (a->ino != b->ino)
                return a->ino < b->ino;
        return a->dev < b->dev;
}

static void swap_files(reclaim_file *a, reclaim_file *b) {
        reclaim_file t = *a;
        *a = *b;
        *b = t;
}

static void sift_up(reclaim_file *h, size_t i) {
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (!file_older(&h[parent], &h[i]))
                        break;
                swap_files(&h[parent], &h[i]);
                i = parent;
        }
}

static void sift_down(reclaim_file *h, size_t n, size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, youngest = i;
                if (l < n && file_older(&h[youngest], &h[l]))
                        youngest = l;
                if (r < n && file_older(&h[youngest], &h[r]))
                        youngest = r;
                if (youngest == i)
                        return;
                swap_files(&h[i], &h[youngest]);
                i = youngest;
        }
}

/* Until the target is covered nothing is dropped, so the order of what is
 * kept does not matter: the array becomes a heap only then (when everything
 * eligible is wanted, never; plan_take() sorts it once). */
static void selector_heapify(selector *s) {
        if (s->heaped)
                return;
        for (size_t i = s->n / 2; i-- > 0;)
                sift_down(s->heap, s->n, i);
        s->heaped = true;
}

static void selector_pop(selector *s) {
        s->sum -= s->heap[0].size;
        free(s->heap[0].relpath);
        s->heap[0] = s->heap[--s->n];
        sift_down(s->heap, s->n, 0);
}

/* Drop the youngest while the rest still covers the target. */
static void selector_trim(selector *s) {
        if (s->n <= s->max_files && s->sum < s->target)
                return;
        selector_heapify(s);
        while (s->n > 0 && (s->n > s->max_files || s->sum - s->heap[0].size >= s->target))
                selector_pop(s);
}

static bool matches(char **patterns, const char *name) {
        if (!patterns)
                return true;
        for (char **p = patterns; *p; p++)
                if (fnmatch(*p, name, 0) == 0)
                        return true;
        return false;
}

static bool selector_full(const selector *s) {
        return s->n > 0 && (s->sum >= s->target || s->n >= s->max_files);
}

/* Keep @f (its relpath is handed over) if it is among the oldest that cover
 * the target; with the lock held. */
static int selector_add(selector *s, reclaim_file *f) {
        /* Already covered: only an older file can displace the youngest kept. */
        if (selector_full(s)) {
                selector_heapify(s);
                if (!file_older(f, &s->heap[0])) {
                        free(f->relpath);
                        return 0;
                }
        }

        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                reclaim_file *h = reallocarray(s->heap, cap, sizeof(reclaim_file));
                if (!h) {
                        free(f->relpath);
                        return -ENOMEM;
                }
                s->heap = h;
                s->cap = cap;
        }
        s->heap[s->n] = *f;
        s->sum += f->size;
        if (s->heaped)
                sift_up(s->heap, s->n);
        s->n++;
        if (s->n > s->peak_kept)
                s->peak_kept = s->n;

        selector_trim(s);
        return 0;
}

/* Hand the batch to the selector. */
static int gatherer_flush(gatherer *g) {
        selector *s = g->s;
        int r = 0;

        if (g->n == 0)
                return 0;
        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < g->n; i++) {
                if (r < 0) {
                        free(g->batch[i].relpath);
                        continue;
                }
                r = selector_add(s, &g->batch[i]);
        }
        if (selector_full(s) && s->heaped)
                atomic_store_explicit(&s->covered_stamp, s->heap[0].stamp_usec, memory_order_relaxed);
        pthread_mutex_unlock(&s->lock);
        g->n = 0;
        return r;
}

static int on_file(const walk_entry *e, void *userdata) {
        gatherer *g = userdata;
        selector *s = g->s;
        int64_t stamp;

        if (!matches(s->patterns, e->name) || !walk_age_ok(e->stx, s->times, s->cutoff_usec, &stamp))
                return 0;

        uint64_t size = (uint64_t) e->stx->stx_blocks * 512;
        g->eligible_files++;
        g->eligible_bytes += size;

        /* Younger than the youngest of a selection that covers the target: never needed. */
        if (stamp > atomic_load_explicit(&s->covered_stamp, memory_order_relaxed))
                return 0;

        char *relpath = strdup(e->relpath);
        if (!relpath)
                return -ENOMEM;
        g->batch[g->n++] = (reclaim_file) {
                .source = s->source,
                .relpath = relpath,
                .dir_len = (uint32_t) e->dir_len,
                .dev = makedev(e->stx->stx_dev_major, e->stx->stx_dev_minor),
                .ino = e->stx->stx_ino,
                .dir_ino = e->dir_ino,
                .size = size,
                .stamp_usec = stamp,
        };
        return g->n == BATCH_MAX ? gatherer_flush(g) : 0;
}

static int cmp_files(const void *a, const void *b) {
        const reclaim_file *x = a, *y = b;
        return file_older(x, y) ? -1 : file_older(y, x) ? 1 : 0;
}

static void selector_done(selector *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->heap[i].relpath);
        free(s->heap);
}

/* ---- the plan ----------------------------------------------------------------- */

void reclaim_plan_free(reclaim_plan *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_sources; i++) {
                free(p->sources[i].name);
                free(p->sources[i].root);
        }
        free(p->sources);
        for (size_t i = 0; i < p->n_files; i++)
                free(p->files[i].relpath);
        free(p->files);
        free(p);
}

static int64_t cutoff_for(uint64_t now_usec, uint64_t min_age_s) {
        uint64_t age_usec;

        if (__builtin_mul_overflow(min_age_s, (uint64_t) 1000000, &age_usec) || age_usec > INT64_MAX ||
            now_usec > INT64_MAX)
                return INT64_MIN; /* nothing is that old */
        return (int64_t) now_usec - (int64_t) age_usec;
}

static bool plan_done(const reclaim_plan *p) {
        return p->need_bytes != UINT64_MAX && p->planned_bytes >= p->need_bytes;
}

/* Move the selected files, oldest first, into the plan until the target or a
 * cap. The first source hands its heap array over, so the plan never holds
 * two copies of a large selection. */
static int plan_take(reclaim_plan *p, selector *s, unsigned workers) {
        bool in_place = p->n_files == 0;
        reclaim_file *src;
        size_t taken = 0;

        if (s->n > 1 && par_sort((void **) &s->heap, s->n, sizeof(reclaim_file), cmp_files, workers) == 0)
                s->cap = s->n;

        if (in_place) {
                free(p->files);
                p->files = src = TAKE_PTR(s->heap);
                s->cap = 0;
        } else {
                reclaim_file *files = reallocarray(p->files, p->n_files + s->n + 1, sizeof(reclaim_file));
                if (!files)
                        return -ENOMEM;
                p->files = files;
                src = s->heap;
        }

        for (; taken < s->n; taken++) {
                reclaim_file *f = &src[taken];
                if (plan_done(p))
                        break;
                if (p->n_files >= p->max_files || f->size > p->max_bytes - p->planned_bytes)
                        break;
                if (!in_place) {
                        p->files[p->n_files] = *f;
                        f->relpath = NULL;
                }
                p->n_files++;
                p->planned_bytes += f->size;
                s->ps->planned_files++;
                s->ps->planned_bytes += f->size;
        }
        for (size_t i = taken; i < s->n; i++) {
                free(src[i].relpath);
                src[i].relpath = NULL;
        }
        s->n = 0;

        /* An eligible file left out while the target is still open: a cap did it. */
        if (!plan_done(p) && s->ps->eligible_files > taken)
                p->capped = true;
        return 0;
}

static int plan_source(reclaim_plan *p, const reclaim_source *src, uint32_t index, const walk_root *root,
                       const reclaim_run_opts *opts) {
        reclaim_plan_source *ps = &p->sources[index];
        uint64_t need_left = p->need_bytes == UINT64_MAX ? UINT64_MAX : p->need_bytes - p->planned_bytes;
        uint64_t bytes_left = p->max_bytes - p->planned_bytes;
        unsigned workers = reclaim_workers(opts);
        _cleanup_(selector_done) selector s = {
                .source = index,
                .times = src->times,
                .cutoff_usec = ps->cutoff_usec,
                .patterns = src->patterns,
                .ps = ps,
                .target = need_left < bytes_left ? need_left : bytes_left,
                .max_files = p->max_files - p->n_files,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .covered_stamp = INT64_MAX,
        };
        _cleanup_free_ gatherer *g = NULL;
        _cleanup_free_ void **userdata = NULL;
        int r;

        g = calloc(workers, sizeof(gatherer));
        userdata = calloc(workers, sizeof(void *));
        if (!g || !userdata)
                return -ENOMEM;
        for (unsigned i = 0; i < workers; i++) {
                g[i].s = &s;
                userdata[i] = &g[i];
        }

        walk_params wp = {
                .max_depth = src->max_depth ? src->max_depth : RECLAIM_DEPTH_DEFAULT,
                .workers = workers,
                .fn = on_file,
                .userdata = userdata,
                .ping = opts ? &opts->ping : NULL,
        };
        walk_stats ws = {};
        r = walk_tree(root, &wp, &ws);
        ps->scanned = ws.scanned;
        ps->unreadable_dirs = ws.unreadable;
        /* The last batches, or, after a failure, their names freed. */
        for (unsigned i = 0; i < workers; i++) {
                int k = r >= 0 ? gatherer_flush(&g[i]) : 0;
                if (r < 0)
                        for (size_t j = 0; j < g[i].n; j++)
                                free(g[i].batch[j].relpath);
                if (k < 0 && r >= 0)
                        r = k;
                ps->eligible_files += g[i].eligible_files;
                ps->eligible_bytes += g[i].eligible_bytes;
        }
        ps->peak_kept = s.peak_kept;
        if (r < 0)
                return r;
        ps->walked = true;
        return plan_take(p, &s, workers);
}

unsigned reclaim_workers(const reclaim_run_opts *opts) {
        unsigned n = opts && opts->workers ? opts->workers : par_default_workers();
        return n > PAR_WORKERS_MAX ? PAR_WORKERS_MAX : n;
}

int reclaim_plan_build_with(const reclaim_source *sources, size_t n, uint64_t need_bytes,
                            uint64_t max_bytes, uint64_t max_files, uint64_t now_usec,
                            const reclaim_run_opts *opts, reclaim_plan **ret, char **ret_error) {
        _cleanup_reclaim_plan_ reclaim_plan *p = NULL;
        walk_root *roots = NULL;
        int r = 0;

        if (n > UINT32_MAX)
                return fail(ret_error, -EINVAL, "too many sources");

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (reclaim_plan) {
                .need_bytes = need_bytes,
                .max_bytes = max_bytes,
                .max_files = max_files,
                .now_usec = now_usec,
        };
        p->sources = calloc(n ? n : 1, sizeof(reclaim_plan_source));
        roots = calloc(n ? n : 1, sizeof(walk_root));
        if (!p->sources || !roots) {
                free(roots);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                roots[i].fd = -EBADF;

        /* One bad source refuses everything, before anything is walked. */
        for (size_t i = 0; i < n; i++) {
                reclaim_plan_source *ps = &p->sources[i];
                r = source_open(&sources[i], &roots[i], ret_error);
                if (r < 0)
                        goto finish;
                p->n_sources++;
                ps->name = strdup(sources[i].name && *sources[i].name ? sources[i].name : "(unnamed)");
                ps->root = strdup(sources[i].root);
                if (!ps->name || !ps->root) {
                        r = -ENOMEM;
                        goto finish;
                }
                ps->times = sources[i].times;
                ps->cutoff_usec = cutoff_for(now_usec, sources[i].min_age_s);
                ps->dev = roots[i].dev;
                ps->ino = roots[i].ino;
                ps->mnt_id = roots[i].mnt_id;
        }

        for (size_t i = 0; i < n && !plan_done(p) && !p->capped; i++) {
                if (p->n_files >= max_files || p->planned_bytes >= max_bytes) {
                        p->capped = true;
                        break;
                }
                r = plan_source(p, &sources[i], (uint32_t) i, &roots[i], opts);
                if (r < 0) {
                        fail(ret_error, r, "source '%s': walking '%s' failed: %s", p->sources[i].name,
                             p->sources[i].root, strerror(-r));
                        goto finish;
                }
        }
        p->reached = p->need_bytes == UINT64_MAX ? !p->capped : plan_done(p);
        r = p->reached ? 0 : 1;
        *ret = TAKE_PTR(p);

finish:
        for (size_t i = 0; i < n; i++)
                walk_root_done(&roots[i]);
        free(roots);
        return r;
}

int reclaim_plan_build(const reclaim_source *sources, size_t n, uint64_t need_bytes,
                       uint64_t max_bytes, uint64_t max_files, uint64_t now_usec,
                       reclaim_plan **ret, char **ret_error) {
        return reclaim_plan_build_with(sources, n, need_bytes, max_bytes, max_files, now_usec, NULL, ret,
                                       ret_error);
}

/* ---- the shadow plan file --------------------------------------------------------- */

const char *reclaim_outcome_to_string(reclaim_outcome o) {
        static const char *const names[_RECLAIM_OUTCOME_MAX] = {
                [RECLAIM_PLANNED] = "planned",       [RECLAIM_DELETED] = "deleted",
                [RECLAIM_SKIP_GONE] = "gone",        [RECLAIM_SKIP_CHANGED] = "changed",
                [RECLAIM_SKIP_YOUNGER] = "younger",  [RECLAIM_SKIP_LOCKED] = "locked",
                [RECLAIM_SKIP_PATH] = "path-changed", [RECLAIM_SKIP_ERROR] = "error",
        };
        return (unsigned) o < _RECLAIM_OUTCOME_MAX ? names[o] : NULL;
}

static json_t *json_u64_or_null(uint64_t v) {
        return v == UINT64_MAX ? json_null() : json_integer((json_int_t) v);
}

static json_t *source_to_json(const reclaim_plan_source *s) {
        return json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", s->name, "root", s->root,
                         "walked", s->walked, "scanned", (json_int_t) s->scanned, "unreadable_dirs",
                         (json_int_t) s->unreadable_dirs, "eligible_files",
                         (json_int_t) s->eligible_files, "eligible_bytes",
                         (json_int_t) s->eligible_bytes, "planned_files",
                         (json_int_t) s->planned_files, "planned_bytes",
                         (json_int_t) s->planned_bytes, "peak_kept", (json_int_t) s->peak_kept);
}

static json_t *file_to_json(const reclaim_plan *p, const reclaim_file *f) {
        const reclaim_plan_source *s = &p->sources[f->source];
        _cleanup_free_ char *path = NULL;
        int64_t age_usec = (int64_t) p->now_usec - f->stamp_usec;

        if (asprintf(&path, "%s/%s", s->root, f->relpath) < 0)
                return NULL;
        return json_pack("{s:s, s:s, s:I, s:I, s:s}", "source", s->name, "path", path, "size",
                         (json_int_t) f->size, "age_s", (json_int_t) (age_usec / 1000000), "outcome",
                         reclaim_outcome_to_string(f->outcome));
}

int reclaim_plan_to_json(const reclaim_plan *p, json_t **ret) {
        _cleanup_json_ json_t *o = NULL;
        json_t *sources, *files;

        o = json_pack("{s:o, s:o, s:o, s:I, s:b, s:b, s:[], s:[]}", "need_bytes",
                      json_u64_or_null(p->need_bytes), "max_bytes", json_u64_or_null(p->max_bytes),
                      "max_files", json_u64_or_null(p->max_files), "planned_bytes",
                      (json_int_t) p->planned_bytes, "reached", p->reached, "capped", p->capped,
                      "sources", "files");
        if (!o)
                return -ENOMEM;
        sources = json_object_get(o, "sources");
        files = json_object_get(o, "files");

        for (size_t i = 0; i < p->n_sources; i++)
                if (json_array_append_new(sources, source_to_json(&p->sources[i])) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < p->n_files; i++)
                if (json_array_append_new(files, file_to_json(p, &p->files[i])) < 0)
                        return -ENOMEM;

        *ret = TAKE_PTR(o);
        return 0;
}
