/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One unit's sample: its cgroup counters, and its processes only where the counters cannot clear it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "cgroup.h"
#include "proc.h"
#include "sample.h"
#include "scan.h"

void stuck_unit_sample_done(stuck_unit_sample *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_procs; i++)
                stuck_proc_sample_done(&s->procs[i]);
        free(s->procs);
        for (size_t i = 0; i < s->n_zombie_parents; i++)
                free(s->zombie_parents[i].comm);
        free(s->zombie_parents);
        *s = (stuck_unit_sample) {};
}

stuck_progress stuck_progress_cpu(const stuck_cgroup_sample *before, const stuck_cgroup_sample *after) {
        /* A counter from another source (v1 cpuacct vs v2) or one that went back is no comparison. */
        if (!before || !after || !before->cpu_known || !after->cpu_known || before->cpu_from_v1 != after->cpu_from_v1 ||
            after->cpu_usage_usec < before->cpu_usage_usec)
                return STUCK_PROGRESS_UNKNOWN;
        return after->cpu_usage_usec > before->cpu_usage_usec ? STUCK_PROGRESS_YES : STUCK_PROGRESS_NONE;
}

stuck_progress stuck_progress_io(const stuck_cgroup_sample *before, const stuck_cgroup_sample *after) {
        if (!before || !after || !before->io_known || !after->io_known || after->io_bytes < before->io_bytes)
                return STUCK_PROGRESS_UNKNOWN;
        return after->io_bytes > before->io_bytes ? STUCK_PROGRESS_YES : STUCK_PROGRESS_NONE;
}

const stuck_proc_sample *stuck_proc_find(const stuck_unit_sample *s, pid_t pid, uint64_t start_ticks) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_procs; i++)
                if (s->procs[i].pid == pid && s->procs[i].start_ticks == start_ticks)
                        return &s->procs[i];
        return NULL;
}

static int cmp_zombie_parent(const void *a, const void *b) {
        const stuck_zombie_parent *x = a, *y = b;
        if (x->n_zombies != y->n_zombies)
                return x->n_zombies > y->n_zombies ? -1 : 1;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

int stuck_unit_sample_summarise(stuck_unit_sample *s) {
        size_t n_parents = 0;

        for (size_t i = 0; i < s->n_zombie_parents; i++)
                free(s->zombie_parents[i].comm);
        s->zombie_parents = (free(s->zombie_parents), NULL);
        s->n_zombie_parents = 0;
        s->procs_cpu_usec = 0;
        s->n_d_tasks = 0;

        for (size_t i = 0; i < s->n_procs; i++) {
                s->procs_cpu_usec += s->procs[i].cpu_usec;
                s->n_d_tasks += s->procs[i].n_d_threads;
                n_parents += s->procs[i].n_zombie_children > 0;
        }
        if (n_parents == 0)
                return 0;

        s->zombie_parents = calloc(n_parents, sizeof(stuck_zombie_parent));
        if (!s->zombie_parents)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_procs; i++) {
                const stuck_proc_sample *p = &s->procs[i];
                if (p->n_zombie_children == 0)
                        continue;
                stuck_zombie_parent *z = &s->zombie_parents[s->n_zombie_parents];
                z->comm = strdup(p->comm ? p->comm : "");
                if (!z->comm)
                        return -ENOMEM;
                z->pid = p->pid;
                z->n_zombies = p->n_zombie_children;
                s->n_zombie_parents++;
        }
        qsort(s->zombie_parents, s->n_zombie_parents, sizeof(stuck_zombie_parent), cmp_zombie_parent);
        return 0;
}

static int cmp_pid(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
        return (x > y) - (x < y);
}

/* Why this unit needs its processes read (STUCK_DESCEND_*), 0 when its counters clear it. */
static unsigned descend_reason(const stuck_cgroup_sample *now, const stuck_unit_sample *previous, unsigned flags) {
        unsigned why = 0;

        if (flags & STUCK_SCAN_FULL)
                why |= STUCK_DESCEND_FORCED;
        if (!previous)
                return why;

        stuck_progress cpu = stuck_progress_cpu(&previous->cgroup, now);
        stuck_progress io = stuck_progress_io(&previous->cgroup, now);
        if (cpu == STUCK_PROGRESS_UNKNOWN && io != STUCK_PROGRESS_YES)
                why |= STUCK_DESCEND_UNKNOWN;
        else if (cpu == STUCK_PROGRESS_NONE && io != STUCK_PROGRESS_YES)
                why |= STUCK_DESCEND_FLAT;
        if (previous->cgroup.tasks_known && now->tasks_known && now->n_tasks > previous->cgroup.n_tasks)
                why |= STUCK_DESCEND_TASKS;
        return why;
}

/* Zombies are in no cgroup.procs: a child of ours that is not in the unit's (sorted) pid list is
 * looked at; those in Z are counted for their parent. */
static void count_zombies(stuck_proc_ctx *c, stuck_proc_sample *p, const pid_t *children, size_t n_children,
                          const pid_t *unit_pids, size_t n_unit_pids) {
        for (size_t k = 0; k < n_children; k++) {
                char state;
                if (bsearch(&children[k], unit_pids, n_unit_pids, sizeof(pid_t), cmp_pid))
                        continue;
                if (stuck_proc_state(c, children[k], &state) >= 0 && state == 'Z')
                        p->n_zombie_children++;
        }
}

/* pids.current counts zombies, the procs' thread counts do not: more tasks than live threads is the
 * hint that zombies (or a fork race) exist. Reads the children of every process then. */
static void zombies_from_hint(stuck_proc_ctx *c, stuck_unit_sample *s, const pid_t *pids, size_t n_pids) {
        uint64_t threads = 0;

        for (size_t i = 0; i < s->n_procs; i++)
                threads += s->procs[i].n_threads;
        if (threads >= s->cgroup.n_tasks) {
                s->zombies_known = true;
                return;
        }
        bool all = true;
        for (size_t i = 0; i < s->n_procs; i++) {
                _cleanup_free_ pid_t *children = NULL;
                size_t n = 0;
                if (stuck_proc_children(c, s->procs[i].pid, s->procs[i].n_threads, &children, &n) < 0) {
                        all = false;
                        continue;
                }
                s->procs[i].children_known = true;
                count_zombies(c, &s->procs[i], children, n, pids, n_pids);
        }
        s->zombies_known = all;
}

static int descend(const stuck_cgroup_path *cg, unsigned flags, stuck_buf *b, stuck_unit_sample *s) {
        _cleanup_(stuck_proc_ctx_done) stuck_proc_ctx c = {};
        _cleanup_free_ pid_t *pids = NULL;
        size_t n_pids = 0;
        bool all_children = true;
        int r;

        r = stuck_cgroup_list_pids(cg->dir, b, &pids, &n_pids);
        if (r < 0)
                return r;
        r = stuck_proc_ctx_init(&c);
        if (r < 0)
                return r;
        s->procs = calloc(n_pids ? n_pids : 1, sizeof(stuck_proc_sample));
        if (!s->procs)
                return -ENOMEM;

        unsigned pflags = flags & (STUCK_SCAN_ZOMBIES | STUCK_SCAN_NO_STACK | STUCK_SCAN_PROC_IO);
        if (!s->cgroup.cpu_known)
                pflags |= STUCK_SCAN_PROC_IO;

        /* Sorted for the zombie look-ups; cgroup.procs order carries no meaning. */
        if (n_pids > 1)
                qsort(pids, n_pids, sizeof(pid_t), cmp_pid);
        for (size_t i = 0; i < n_pids; i++) {
                _cleanup_free_ pid_t *children = NULL;
                size_t n_children = 0;
                stuck_proc_sample *p = &s->procs[s->n_procs];

                r = stuck_proc_read_ctx(&c, pids[i], pflags, p, &children, &n_children);
                if (r == -ENOENT) {
                        s->n_vanished++;
                        continue;
                }
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        s->n_unreadable++;
                        continue;
                }
                s->n_procs++;
                if (pflags & STUCK_SCAN_ZOMBIES) {
                        if (p->children_known)
                                count_zombies(&c, p, children, n_children, pids, n_pids);
                        else
                                all_children = false;
                }
        }

        if (pflags & STUCK_SCAN_ZOMBIES)
                s->zombies_known = all_children && s->n_unreadable == 0;
        else if (s->cgroup.tasks_known)
                zombies_from_hint(&c, s, pids, n_pids);
        return 0;
}

int stuck_scan_unit(const stuck_cgroup_path *cg, const stuck_unit_sample *previous, unsigned flags,
                    stuck_unit_sample *ret) {
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};
        _cleanup_(stuck_buf_done) stuck_buf b = {};
        int r;

        if (!cg || !cg->dir || (cg->rel && cg->root_fd < 0))
                return -EINVAL;
        s.monotonic_usec = stuck_now_usec();
        r = stuck_cgroup_read_counters(cg, previous && !(flags & STUCK_SCAN_FULL) ? &previous->cgroup : NULL, &b,
                                       &s.cgroup);
        if (r < 0)
                return r;

        s.descended = descend_reason(&s.cgroup, previous, flags);
        if (s.descended) {
                r = descend(cg, flags, &b, &s);
                if (r < 0)
                        return r;
                r = stuck_unit_sample_summarise(&s);
                if (r < 0)
                        return r;
        }

        *ret = s;
        s = (stuck_unit_sample) {};
        return 0;
}
