/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A unit sample as JSON, persisted between runs: unknown is null, and a parser that refuses anything
 * of the wrong shape (the file sits in /run and may be truncated or stale from another version). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "sample.h"
#include "scan.h"

#define SAMPLE_VERSION 1
/* A persisted sample of more processes than a pid_max of 2^22 allows is garbage. */
#define SAMPLE_MAX_PROCS (1u << 22)

static const char *const psi_names[_STUCK_PSI_MAX] = {
        [STUCK_PSI_CPU] = "cpu",
        [STUCK_PSI_MEMORY] = "memory",
        [STUCK_PSI_IO] = "io",
};

/* ---- writing ---- */

static json_t *u64_or_null(bool known, uint64_t v) {
        /* json_int_t is signed: values past INT64_MAX cannot come from the kernel's counters. */
        return known && v <= INT64_MAX ? json_integer((json_int_t) v) : json_null();
}

static json_t *str_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

/* json_object_set_new() that remembers a failure, so a whole object is built before one check. */
static void set(json_t *o, const char *key, json_t *v, bool *ok) {
        if (!v || json_object_set_new(o, key, v) < 0)
                *ok = false;
}

static json_t *psi_to_json(const stuck_psi *p) {
        if (!p->known)
                return json_null();
        return json_pack("{s:I,s:I,s:I,s:I}", "avg10", (json_int_t) p->some_avg10, "avg60",
                         (json_int_t) p->some_avg60, "avg300", (json_int_t) p->some_avg300, "total_usec",
                         (json_int_t) (p->some_total_usec <= INT64_MAX ? p->some_total_usec : INT64_MAX));
}

static json_t *cgroup_to_json(const stuck_cgroup_sample *c) {
        _cleanup_json_ json_t *o = json_object(), *psi = json_object();
        bool ok = o && psi;

        if (!ok)
                return NULL;
        set(o, "cpu_usage_usec", u64_or_null(c->cpu_known, c->cpu_usage_usec), &ok);
        set(o, "cpu_from_v1", json_boolean(c->cpu_from_v1), &ok);
        set(o, "io_bytes", u64_or_null(c->io_known, c->io_bytes), &ok);
        set(o, "tasks", u64_or_null(c->tasks_known, c->n_tasks), &ok);
        for (size_t i = 0; i < _STUCK_PSI_MAX; i++)
                set(psi, psi_names[i], psi_to_json(&c->psi[i]), &ok);
        set(o, "psi", json_incref(psi), &ok);
        return ok ? json_incref(o) : NULL;
}

static json_t *proc_to_json(const stuck_proc_sample *p) {
        _cleanup_json_ json_t *o = json_object();
        char state[2] = { p->state, 0 };
        bool ok = o;

        if (!ok)
                return NULL;
        set(o, "pid", json_integer(p->pid), &ok);
        set(o, "ppid", json_integer(p->ppid), &ok);
        set(o, "comm", str_or_null(p->comm), &ok);
        set(o, "state", json_string(state), &ok);
        set(o, "kernel_thread", json_boolean(p->kernel_thread), &ok);
        set(o, "threads", json_integer(p->n_threads), &ok);
        set(o, "start_ticks", u64_or_null(true, p->start_ticks), &ok);
        set(o, "cpu_usec", u64_or_null(true, p->cpu_usec), &ok);
        set(o, "io_bytes", u64_or_null(p->io_known, p->io_bytes), &ok);
        set(o, "d_threads", json_integer(p->n_d_threads), &ok);
        set(o, "wchan", str_or_null(p->wchan), &ok);
        set(o, "stack", str_or_null(p->stack), &ok);
        set(o, "d_usec", u64_or_null(p->d_usec_known, p->d_usec), &ok);
        set(o, "zombies", u64_or_null(p->children_known, p->n_zombie_children), &ok);
        return ok ? json_incref(o) : NULL;
}

int stuck_unit_sample_to_json(const stuck_unit_sample *s, json_t **ret) {
        _cleanup_json_ json_t *o = json_object(), *procs = json_array();
        bool ok = o && procs;

        if (!ok)
                return -ENOMEM;
        set(o, "version", json_integer(SAMPLE_VERSION), &ok);
        set(o, "monotonic_usec", u64_or_null(true, s->monotonic_usec), &ok);
        set(o, "cgroup", cgroup_to_json(&s->cgroup), &ok);
        set(o, "descended", json_integer(s->descended), &ok);
        if (s->descended) {
                for (size_t i = 0; i < s->n_procs; i++)
                        if (json_array_append_new(procs, proc_to_json(&s->procs[i])) < 0)
                                ok = false;
                set(o, "procs", json_incref(procs), &ok);
                set(o, "vanished", u64_or_null(true, s->n_vanished), &ok);
                set(o, "unreadable", u64_or_null(true, s->n_unreadable), &ok);
                set(o, "zombies_known", json_boolean(s->zombies_known), &ok);
        }
        if (!ok)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

/* The compact form: [monotonic_usec, cpu_usage_usec, cpu_from_v1, io_bytes, tasks]. */
#define COMPACT_FIELDS 5

bool stuck_unit_sample_is_compact(const stuck_unit_sample *s) {
        if (s->descended)
                return false;
        for (size_t i = 0; i < _STUCK_PSI_MAX; i++)
                if (s->cgroup.psi[i].known)
                        return false;
        return true;
}

int stuck_unit_sample_to_compact(const stuck_unit_sample *s, json_t **ret) {
        const stuck_cgroup_sample *c = &s->cgroup;
        json_t *a;

        if (!stuck_unit_sample_is_compact(s))
                return -EINVAL;
        a = json_pack("[o,o,b,o,o]", u64_or_null(true, s->monotonic_usec), u64_or_null(c->cpu_known, c->cpu_usage_usec),
                      c->cpu_from_v1, u64_or_null(c->io_known, c->io_bytes), u64_or_null(c->tasks_known, c->n_tasks));
        if (!a)
                return -ENOMEM;
        *ret = a;
        return 0;
}

/* ---- reading ---- */

/* A non-negative integer no larger than @max, or null (then *known is false). */
static int get_u64(const json_t *o, const char *key, bool nullable, uint64_t max, bool *known, uint64_t *ret) {
        const json_t *v = json_object_get(o, key);

        if (!v)
                return -EBADMSG;
        if (json_is_null(v)) {
                if (!nullable)
                        return -EBADMSG;
                *known = false;
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) > max)
                return -EBADMSG;
        if (known)
                *known = true;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int get_bool(const json_t *o, const char *key, bool *ret) {
        const json_t *v = json_object_get(o, key);
        if (!json_is_boolean(v))
                return -EBADMSG;
        *ret = json_is_true(v);
        return 0;
}

int stuck_json_string_dup(const json_t *v, char **ret) {
        if (json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                return -EBADMSG;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_str(const json_t *o, const char *key, char **ret) {
        return stuck_json_string_dup(json_object_get(o, key), ret);
}

static int psi_from_json(const json_t *v, stuck_psi *ret) {
        uint64_t a10, a60, a300, total;

        if (json_is_null(v)) {
                *ret = (stuck_psi) {};
                return 0;
        }
        if (!json_is_object(v) || get_u64(v, "avg10", false, 10000, NULL, &a10) < 0 ||
            get_u64(v, "avg60", false, 10000, NULL, &a60) < 0 || get_u64(v, "avg300", false, 10000, NULL, &a300) < 0 ||
            get_u64(v, "total_usec", false, INT64_MAX, NULL, &total) < 0)
                return -EBADMSG;
        *ret = (stuck_psi) { .known = true, .some_avg10 = (uint32_t) a10, .some_avg60 = (uint32_t) a60,
                             .some_avg300 = (uint32_t) a300, .some_total_usec = total };
        return 0;
}

static int cgroup_from_json(const json_t *o, stuck_cgroup_sample *ret) {
        stuck_cgroup_sample c = {};
        const json_t *psi = json_object_get(o, "psi");

        if (!json_is_object(o) || !json_is_object(psi) ||
            get_u64(o, "cpu_usage_usec", true, INT64_MAX, &c.cpu_known, &c.cpu_usage_usec) < 0 ||
            get_bool(o, "cpu_from_v1", &c.cpu_from_v1) < 0 ||
            get_u64(o, "io_bytes", true, INT64_MAX, &c.io_known, &c.io_bytes) < 0 ||
            get_u64(o, "tasks", true, INT64_MAX, &c.tasks_known, &c.n_tasks) < 0)
                return -EBADMSG;
        for (size_t i = 0; i < _STUCK_PSI_MAX; i++) {
                const json_t *v = json_object_get(psi, psi_names[i]);
                if (!v || psi_from_json(v, &c.psi[i]) < 0)
                        return -EBADMSG;
        }
        *ret = c;
        return 0;
}

static int proc_from_json(const json_t *o, stuck_proc_sample *ret) {
        _cleanup_(stuck_proc_sample_done) stuck_proc_sample p = {};
        uint64_t pid, ppid, threads, d_threads, zombies;
        const json_t *state = json_object_get(o, "state");
        bool always;
        int r;

        if (!json_is_object(o) || !json_is_string(state) || json_string_length(state) != 1)
                return -EBADMSG;
        p.state = json_string_value(state)[0];
        if (p.state < 'A' || p.state > 'z')
                return -EBADMSG;
        if (get_u64(o, "pid", false, INT32_MAX, NULL, &pid) < 0 || pid == 0 ||
            get_u64(o, "ppid", false, INT32_MAX, NULL, &ppid) < 0 ||
            get_bool(o, "kernel_thread", &p.kernel_thread) < 0 ||
            get_u64(o, "threads", false, INT32_MAX, NULL, &threads) < 0 ||
            get_u64(o, "start_ticks", false, INT64_MAX, &always, &p.start_ticks) < 0 ||
            get_u64(o, "cpu_usec", false, INT64_MAX, &always, &p.cpu_usec) < 0 ||
            get_u64(o, "io_bytes", true, INT64_MAX, &p.io_known, &p.io_bytes) < 0 ||
            get_u64(o, "d_threads", false, INT32_MAX, NULL, &d_threads) < 0 || d_threads > threads ||
            get_u64(o, "d_usec", true, INT64_MAX, &p.d_usec_known, &p.d_usec) < 0 ||
            get_u64(o, "zombies", true, INT32_MAX, &p.children_known, &zombies) < 0)
                return -EBADMSG;
        r = get_str(o, "comm", &p.comm);
        if (r >= 0)
                r = get_str(o, "wchan", &p.wchan);
        if (r >= 0)
                r = get_str(o, "stack", &p.stack);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        p.pid = (pid_t) pid;
        p.ppid = (pid_t) ppid;
        p.n_threads = (unsigned) threads;
        p.n_d_threads = (unsigned) d_threads;
        p.n_zombie_children = (unsigned) zombies;

        *ret = p;
        p = (stuck_proc_sample) {};
        return 0;
}

static int procs_from_json(const json_t *o, stuck_unit_sample *s) {
        const json_t *procs = json_object_get(o, "procs");
        uint64_t v;
        int r;

        if (!json_is_array(procs) || json_array_size(procs) > SAMPLE_MAX_PROCS ||
            get_bool(o, "zombies_known", &s->zombies_known) < 0)
                return -EBADMSG;
        if (get_u64(o, "vanished", false, SAMPLE_MAX_PROCS, NULL, &v) < 0)
                return -EBADMSG;
        s->n_vanished = v;
        if (get_u64(o, "unreadable", false, SAMPLE_MAX_PROCS, NULL, &v) < 0)
                return -EBADMSG;
        s->n_unreadable = v;

        size_t n = json_array_size(procs);
        s->procs = calloc(n ? n : 1, sizeof(stuck_proc_sample));
        if (!s->procs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = proc_from_json(json_array_get(procs, i), &s->procs[i]);
                if (r < 0)
                        return r;
                s->n_procs++;
        }
        return stuck_unit_sample_summarise(s);
}

/* Item @i of a compact array: a non-negative integer, or null when @known may be false. */
static int compact_u64(const json_t *a, size_t i, bool *known, uint64_t *ret) {
        const json_t *v = json_array_get(a, i);

        if (known && json_is_null(v)) {
                *known = false;
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        if (known)
                *known = true;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

int stuck_unit_sample_from_compact(const json_t *j, stuck_unit_sample *ret) {
        stuck_unit_sample s = {};
        stuck_cgroup_sample *c = &s.cgroup;
        const json_t *v1 = json_array_get(j, 2);

        if (!json_is_array(j) || json_array_size(j) != COMPACT_FIELDS || !json_is_boolean(v1) ||
            compact_u64(j, 0, NULL, &s.monotonic_usec) < 0 || compact_u64(j, 1, &c->cpu_known, &c->cpu_usage_usec) < 0 ||
            compact_u64(j, 3, &c->io_known, &c->io_bytes) < 0 || compact_u64(j, 4, &c->tasks_known, &c->n_tasks) < 0)
                return -EBADMSG;
        c->cpu_from_v1 = json_is_true(v1);
        *ret = s;
        return 0;
}

int stuck_unit_sample_from_json(const json_t *j, stuck_unit_sample *ret) {
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample s = {};
        uint64_t version, descended;
        int r;

        if (!json_is_object(j) || get_u64(j, "version", false, INT32_MAX, NULL, &version) < 0 ||
            version != SAMPLE_VERSION || get_u64(j, "monotonic_usec", false, INT64_MAX, NULL, &s.monotonic_usec) < 0 ||
            get_u64(j, "descended", false, UINT32_MAX, NULL, &descended) < 0)
                return -EBADMSG;
        r = cgroup_from_json(json_object_get(j, "cgroup"), &s.cgroup);
        if (r < 0)
                return r;
        s.descended = (unsigned) descended;
        if (s.descended) {
                r = procs_from_json(j, &s);
                if (r < 0)
                        return r;
        }

        *ret = s;
        s = (stuck_unit_sample) {};
        return 0;
}
