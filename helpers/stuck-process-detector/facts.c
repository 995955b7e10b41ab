/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The facts of each class as a human reads them in the audit and the escalation: measurements, and
 * "unavailable" (never 0) where a signal could not be read. */
#include <errno.h>
#include <string.h>

#include "heal/cleanup.h"
#include "facts.h"

#define FACTS_MAX_TASKS 16U

static json_t *u64_or_unavailable(bool known, uint64_t v) {
        return known && v <= INT64_MAX ? json_integer((json_int_t) v) : json_string("unavailable");
}

static json_t *seconds_since(uint64_t since, uint64_t now) {
        if (since == 0 || now < since)
                return json_null();
        return json_real((double) (now - since) / 1e6);
}

static const char *progress_name(stuck_progress p) {
        return p == STUCK_PROGRESS_YES ? "yes" : p == STUCK_PROGRESS_NONE ? "none" : "unknown";
}

/* json_object_set_new() remembering a failure, so an object is checked once. */
static void set(json_t *o, const char *key, json_t *v, bool *ok) {
        if (!v || json_object_set_new(o, key, v) < 0)
                *ok = false;
}

static json_t *psi_facts(const stuck_cgroup_sample *c) {
        static const char *const names[_STUCK_PSI_MAX] = { "cpu", "memory", "io" };
        _cleanup_json_ json_t *o = json_object();
        bool ok = o != NULL;

        for (int i = 0; ok && i < _STUCK_PSI_MAX; i++)
                set(o, names[i],
                    c->psi[i].known ? json_real((double) c->psi[i].some_avg60 / 100.0) : json_string("unavailable"),
                    &ok);
        return ok ? TAKE_PTR(o) : NULL;
}

json_t *stuck_facts_base(const char *unit, const char *control_group, const stuck_unit_sample *s) {
        _cleanup_json_ json_t *o = json_object();
        bool ok = o != NULL;

        if (!ok)
                return NULL;
        set(o, "unit", json_string(unit), &ok);
        set(o, "control_group", json_string(control_group), &ok);
        set(o, "cpu_usage_usec", u64_or_unavailable(s->cgroup.cpu_known, s->cgroup.cpu_usage_usec), &ok);
        set(o, "io_bytes", u64_or_unavailable(s->cgroup.io_known, s->cgroup.io_bytes), &ok);
        set(o, "tasks", u64_or_unavailable(s->cgroup.tasks_known, s->cgroup.n_tasks), &ok);
        set(o, "psi_some_avg60_percent", psi_facts(&s->cgroup), &ok);
        set(o, "processes_read", json_boolean(s->descended != 0), &ok);
        return ok ? TAKE_PTR(o) : NULL;
}

int stuck_facts_stuck(json_t *f, const stuck_track *t, const stuck_observation *o, json_t *heartbeat,
                      uint32_t stale_s, uint32_t psi_percent, uint32_t dwell_s) {
        bool ok = true;

        set(f, "progress", json_string(progress_name(o->progress)), &ok);
        set(f, "heartbeat", json_incref(heartbeat), &ok);
        set(f, "heartbeat_stale_s", json_integer(stale_s), &ok);
        set(f, "psi_stall_percent", json_integer(psi_percent), &ok);
        set(f, "psi_stall", o->psi_stall < 0 ? json_string("unavailable") : json_boolean(o->psi_stall > 0), &ok);
        set(f, "no_progress_for_s", seconds_since(t->flat_since, o->now_usec), &ok);
        set(f, "stale_for_s", seconds_since(t->stale_since, o->now_usec), &ok);
        set(f, "stalled_for_s", seconds_since(t->stall_since, o->now_usec), &ok);
        set(f, "dwell_s", json_integer(dwell_s), &ok);
        return ok ? 0 : -ENOMEM;
}

static json_t *d_task_facts(const stuck_proc_sample *p, uint64_t d_usec) {
        _cleanup_json_ json_t *o = json_object();
        bool ok = o != NULL;

        if (!ok)
                return NULL;
        set(o, "pid", json_integer(p->pid), &ok);
        set(o, "comm", json_string(p->comm ?: ""), &ok);
        set(o, "threads_in_d", json_integer(p->n_d_threads), &ok);
        set(o, "wchan", p->wchan ? json_string(p->wchan) : json_string("unavailable"), &ok);
        set(o, "stack", p->stack ? json_string(p->stack) : json_string("unavailable"), &ok);
        set(o, "in_d_s", json_real((double) d_usec / 1e6), &ok);
        set(o, "blocked_since_known", json_boolean(p->d_usec_known), &ok);
        return ok ? TAKE_PTR(o) : NULL;
}

int stuck_facts_d_state(json_t *f, const stuck_track *t, const stuck_unit_sample *s, uint64_t now_usec,
                        uint32_t dwell_s) {
        _cleanup_json_ json_t *tasks = json_array();
        unsigned n = 0;
        bool ok = tasks != NULL;

        for (size_t i = 0; ok && i < s->n_procs && n < FACTS_MAX_TASKS; i++) {
                const stuck_proc_sample *p = &s->procs[i];
                uint64_t d = 0;

                if (p->n_d_threads == 0)
                        continue;
                for (size_t k = 0; k < t->n_d_tasks; k++)
                        if (t->d_tasks[k].pid == p->pid && t->d_tasks[k].start_ticks == p->start_ticks)
                                d = now_usec > t->d_tasks[k].since_usec ? now_usec - t->d_tasks[k].since_usec : 0;
                if (p->d_usec_known && p->d_usec > d)
                        d = p->d_usec;
                if (json_array_append_new(tasks, d_task_facts(p, d)) < 0)
                        ok = false;
                n++;
        }
        set(f, "d_tasks", json_incref(tasks), &ok);
        set(f, "n_d_tasks", json_integer(s->n_d_tasks), &ok);
        set(f, "dwell_s", json_integer(dwell_s), &ok);
        return ok ? 0 : -ENOMEM;
}

int stuck_facts_zombies(json_t *f, const stuck_unit_sample *s, uint32_t max, uint32_t dwell_s) {
        _cleanup_json_ json_t *parents = json_array();
        bool ok = parents != NULL;

        for (size_t i = 0; ok && i < s->n_zombie_parents && i < FACTS_MAX_TASKS; i++)
                if (json_array_append_new(parents, json_pack("{s:i,s:s,s:i}", "pid", (int) s->zombie_parents[i].pid,
                                                             "comm", s->zombie_parents[i].comm ?: "", "zombies",
                                                             (int) s->zombie_parents[i].n_zombies)) < 0)
                        ok = false;
        set(f, "zombies", json_integer(stuck_zombie_count(s)), &ok);
        set(f, "zombies_max", json_integer(max), &ok);
        set(f, "parents", json_incref(parents), &ok);
        set(f, "dwell_s", json_integer(dwell_s), &ok);
        return ok ? 0 : -ENOMEM;
}
