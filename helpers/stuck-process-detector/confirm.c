/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Confirm: per unit, which signal has been seen since when, and whether a condition has now persisted
 * long enough (and over enough samples) to act on, or cleared before that. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heal/audit.h"
#include "heal/cleanup.h"
#include "confirm.h"

static const char *const verdicts[] = {
        [STUCK_VERDICT_NONE] = "none",           [STUCK_VERDICT_DETECTED] = "detected",
        [STUCK_VERDICT_DWELLING] = "dwelling",   [STUCK_VERDICT_CONFIRMED] = "confirmed",
        [STUCK_VERDICT_ONGOING] = "ongoing",     [STUCK_VERDICT_DISMISSED] = "dismissed",
        [STUCK_VERDICT_RESOLVED] = "resolved",
};

const char *stuck_verdict_to_string(stuck_verdict v) {
        return (unsigned) v < ELEMENTSOF(verdicts) ? verdicts[v] : NULL;
}

void stuck_track_done(stuck_track *t) {
        if (!t)
                return;
        free(t->d_tasks);
        *t = (stuck_track) {};
}

void stuck_episode_reset(stuck_episode *e) {
        *e = (stuck_episode) {};
}

bool stuck_track_is_empty(const stuck_track *t) {
        return t->flat_since == 0 && t->stale_since == 0 && t->stall_since == 0 && !t->stuck.incident[0] &&
               t->n_d_tasks == 0 && !t->d_state.incident[0] && !t->zombies.incident[0];
}

bool stuck_track_wants_procs(const stuck_track *t) {
        return t->n_d_tasks > 0 || t->d_state.incident[0] || t->zombies.incident[0];
}

/* ---- JSON ---------------------------------------------------------------------------------------- */

static json_t *episode_to_json(const stuck_episode *e) {
        if (!e->incident[0])
                return json_null();
        return json_pack("{s:s,s:I,s:I,s:b}", "incident", e->incident, "since", (json_int_t) e->since_usec,
                         "samples", (json_int_t) e->n_samples, "confirmed", e->confirmed);
}

static int get_u64(const json_t *o, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int episode_from_json(const json_t *j, stuck_episode *ret) {
        const char *id;
        uint64_t since, n;
        json_t *c;

        *ret = (stuck_episode) {};
        if (!j || json_is_null(j))
                return 0;
        if (!json_is_object(j))
                return -EBADMSG;
        id = json_string_value(json_object_get(j, "incident"));
        c = json_object_get(j, "confirmed");
        if (!id || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32 || (c && !json_is_boolean(c)))
                return -EBADMSG;
        if (get_u64(j, "since", &since) < 0 || get_u64(j, "samples", &n) < 0 || n > UINT32_MAX)
                return -EBADMSG;
        memcpy(ret->incident, id, 33);
        ret->since_usec = since;
        ret->n_samples = (unsigned) n;
        ret->confirmed = c && json_is_true(c);
        return 0;
}

int stuck_track_to_json(const stuck_track *t, json_t **ret) {
        _cleanup_json_ json_t *o = NULL, *d = json_array();

        if (!d)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_d_tasks; i++)
                if (json_array_append_new(d, json_pack("{s:i,s:I,s:I,s:I}", "pid", (int) t->d_tasks[i].pid, "start",
                                                       (json_int_t) t->d_tasks[i].start_ticks, "since",
                                                       (json_int_t) t->d_tasks[i].since_usec, "samples",
                                                       (json_int_t) t->d_tasks[i].n_samples)) < 0)
                        return -ENOMEM;
        o = json_pack("{s:I,s:I,s:I,s:o,s:O,s:o,s:o}", "flat_since", (json_int_t) t->flat_since, "stale_since",
                      (json_int_t) t->stale_since, "stall_since", (json_int_t) t->stall_since, "stuck",
                      episode_to_json(&t->stuck), "d_tasks", d, "d_state", episode_to_json(&t->d_state),
                      "zombies", episode_to_json(&t->zombies));
        if (!o)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static int d_tasks_from_json(const json_t *a, stuck_track *t) {
        size_t i;
        json_t *e;

        if (!a || json_is_null(a))
                return 0;
        if (!json_is_array(a))
                return -EBADMSG;
        t->d_tasks = calloc(json_array_size(a) ?: 1, sizeof(stuck_d_task));
        if (!t->d_tasks)
                return -ENOMEM;
        json_array_foreach(a, i, e) {
                stuck_d_task *d = &t->d_tasks[t->n_d_tasks];
                uint64_t pid, n;
                if (!json_is_object(e) || get_u64(e, "pid", &pid) < 0 || pid == 0 || pid > INT32_MAX ||
                    get_u64(e, "start", &d->start_ticks) < 0 || get_u64(e, "since", &d->since_usec) < 0 ||
                    get_u64(e, "samples", &n) < 0 || n > UINT32_MAX)
                        return -EBADMSG;
                d->pid = (pid_t) pid;
                d->n_samples = (unsigned) n;
                t->n_d_tasks++;
        }
        return 0;
}

int stuck_track_from_json(const json_t *j, stuck_track *ret) {
        _cleanup_(stuck_track_done) stuck_track t = {};
        int r;

        if (!json_is_object(j))
                return -EBADMSG;
        if (get_u64(j, "flat_since", &t.flat_since) < 0 || get_u64(j, "stale_since", &t.stale_since) < 0 ||
            get_u64(j, "stall_since", &t.stall_since) < 0)
                return -EBADMSG;
        r = episode_from_json(json_object_get(j, "stuck"), &t.stuck);
        if (r < 0)
                return r;
        r = episode_from_json(json_object_get(j, "d_state"), &t.d_state);
        if (r < 0)
                return r;
        r = episode_from_json(json_object_get(j, "zombies"), &t.zombies);
        if (r < 0)
                return r;
        r = d_tasks_from_json(json_object_get(j, "d_tasks"), &t);
        if (r < 0)
                return r;
        *ret = t;
        t = (stuck_track) {};
        return 0;
}

/* ---- progress ------------------------------------------------------------------------------------ */

/* Cpu unknown in the cgroup: compare the processes, when both samples read them. */
static stuck_progress progress_by_procs(const stuck_unit_sample *prev, const stuck_unit_sample *now) {
        size_t matched = 0;

        if (!prev->descended || !now->descended || now->n_procs == 0)
                return STUCK_PROGRESS_UNKNOWN;
        for (size_t i = 0; i < now->n_procs; i++) {
                const stuck_proc_sample *p = &now->procs[i];
                const stuck_proc_sample *q = stuck_proc_find(prev, p->pid, p->start_ticks);

                if (!q)
                        return STUCK_PROGRESS_YES; /* forked since: something ran */
                if (p->cpu_usec > q->cpu_usec)
                        return STUCK_PROGRESS_YES;
                if (p->io_known && q->io_known && p->io_bytes > q->io_bytes)
                        return STUCK_PROGRESS_YES;
                matched++;
        }
        return matched > 0 ? STUCK_PROGRESS_NONE : STUCK_PROGRESS_UNKNOWN;
}

stuck_progress stuck_progress_between(const stuck_unit_sample *prev, const stuck_unit_sample *now) {
        stuck_progress cpu, io;

        if (!prev || !now)
                return STUCK_PROGRESS_UNKNOWN;
        cpu = stuck_progress_cpu(&prev->cgroup, &now->cgroup);
        io = stuck_progress_io(&prev->cgroup, &now->cgroup);
        if (cpu == STUCK_PROGRESS_YES || io == STUCK_PROGRESS_YES)
                return STUCK_PROGRESS_YES;
        if (cpu == STUCK_PROGRESS_NONE)
                return STUCK_PROGRESS_NONE;
        return progress_by_procs(prev, now);
}

/* ---- episodes ------------------------------------------------------------------------------------ */

/* A new episode with a fresh incident id; the id is what ties detected..verified together. */
static int episode_begin(stuck_episode *e, uint64_t since_usec) {
        char id[33];
        int r;

        r = heal_incident_id_new(id);
        if (r < 0)
                return r;
        *e = (stuck_episode) { .since_usec = since_usec, .n_samples = 1 };
        memcpy(e->incident, id, sizeof(id));
        return 0;
}

/* The episode's condition holds in this sample: begin, dwell, or confirm it. A new episode may be
 * confirmed at once when its signals already lasted across earlier samples (see the callers). */
static stuck_verdict episode_holds(stuck_episode *e, uint64_t now_usec, bool long_enough) {
        if (!e->incident[0]) {
                if (episode_begin(e, now_usec) < 0)
                        return STUCK_VERDICT_NONE; /* no id, no episode: the next sample tries again */
        } else
                e->n_samples++;
        if (e->confirmed)
                return STUCK_VERDICT_ONGOING;
        if (!long_enough)
                return e->n_samples == 1 ? STUCK_VERDICT_DETECTED : STUCK_VERDICT_DWELLING;
        e->confirmed = true;
        return STUCK_VERDICT_CONFIRMED;
}

static stuck_verdict episode_clears(stuck_episode *e) {
        bool was_confirmed = e->confirmed, tracked = e->incident[0] != 0;

        stuck_episode_reset(e);
        if (!tracked)
                return STUCK_VERDICT_NONE;
        return was_confirmed ? STUCK_VERDICT_RESOLVED : STUCK_VERDICT_DISMISSED;
}

/* Seen by an earlier sample than this one, and for at least @dwell: one sample never confirms. */
static bool lasted(uint64_t since, uint64_t now, uint64_t dwell) {
        return since > 0 && since < now && now - since >= dwell;
}

/* One signal: keep its first sighting while it holds, forget it when it does not (or is unknown). */
static void follow(uint64_t *since, bool holds, uint64_t first) {
        if (!holds)
                *since = 0;
        else if (*since == 0)
                *since = first ?: 1;
}

stuck_verdict stuck_confirm_stuck(stuck_track *t, const stuck_observation *o, uint64_t dwell_usec,
                                  const char **ret_reason) {
        bool flat = o->progress == STUCK_PROGRESS_NONE, stale = o->heartbeat_stale > 0, stall = o->psi_stall > 0;
        const char *reason = NULL;
        stuck_verdict v;

        /* Unknown progress neither confirms nor clears flatness: keep what we had. Flat since the previous
         * sample, unless that sample did not read io: then only this one vouches for it. */
        if (o->progress != STUCK_PROGRESS_UNKNOWN)
                follow(&t->flat_since, flat, o->prev_partial ? o->now_usec : (o->prev_usec ?: o->now_usec));
        follow(&t->stale_since, stale, o->now_usec);
        /* A stall must be seen to last: a sample that did not read PSI breaks it. */
        if (o->psi_skipped)
                t->stall_since = 0;
        else
                follow(&t->stall_since, stall, o->now_usec);

        if (o->progress == STUCK_PROGRESS_UNKNOWN && t->stuck.incident[0] && (stale || stall)) {
                reason = "progress cannot be measured in this sample";
                v = t->stuck.confirmed ? STUCK_VERDICT_ONGOING : STUCK_VERDICT_DWELLING;
        } else if (flat && (stale || stall)) {
                bool ok = lasted(t->flat_since, o->now_usec, dwell_usec) &&
                          ((stale && lasted(t->stale_since, o->now_usec, dwell_usec)) ||
                           (stall && lasted(t->stall_since, o->now_usec, dwell_usec)));
                v = episode_holds(&t->stuck, o->now_usec, ok);
                if (v == STUCK_VERDICT_DWELLING)
                        reason = "the signals have not lasted the dwell time yet";
        } else {
                if (o->progress == STUCK_PROGRESS_YES)
                        reason = "the unit makes progress again";
                else if (!stale && !stall)
                        reason = o->heartbeat_stale == 0 ? "the heartbeat is fresh again"
                                                          : "neither a stale heartbeat nor a PSI stall any more";
                else
                        reason = "progress cannot be measured";
                v = episode_clears(&t->stuck);
        }
        if (ret_reason)
                *ret_reason = reason;
        return v;
}

/* ---- D state ------------------------------------------------------------------------------------- */

static const stuck_d_task *d_task_find(const stuck_track *t, pid_t pid, uint64_t start) {
        for (size_t i = 0; i < t->n_d_tasks; i++)
                if (t->d_tasks[i].pid == pid && t->d_tasks[i].start_ticks == start)
                        return &t->d_tasks[i];
        return NULL;
}

static uint64_t d_duration(const stuck_d_task *d, const stuck_proc_sample *p, uint64_t now_usec) {
        uint64_t seen = now_usec >= d->since_usec ? now_usec - d->since_usec : 0;

        return p->d_usec_known && p->d_usec > seen ? p->d_usec : seen;
}

const stuck_proc_sample *stuck_d_worst(const stuck_track *t, const stuck_unit_sample *s, uint64_t now_usec,
                                       uint64_t *ret_d_usec) {
        const stuck_proc_sample *worst = NULL;
        uint64_t best = 0;

        for (size_t i = 0; s && i < s->n_procs; i++) {
                const stuck_proc_sample *p = &s->procs[i];
                const stuck_d_task *d = p->n_d_threads > 0 ? d_task_find(t, p->pid, p->start_ticks) : NULL;
                uint64_t u;

                if (!d)
                        continue;
                u = d_duration(d, p, now_usec);
                if (!worst || u > best) {
                        worst = p;
                        best = u;
                }
        }
        if (worst && ret_d_usec)
                *ret_d_usec = best;
        return worst;
}

stuck_verdict stuck_confirm_d_state(stuck_track *t, const stuck_unit_sample *s, uint64_t now_usec,
                                    uint64_t dwell_usec) {
        _cleanup_free_ stuck_d_task *next = NULL;
        size_t n = 0;
        bool repeated = false, long_enough = false;

        if (!s->descended)
                return t->d_state.incident[0] ? (t->d_state.confirmed ? STUCK_VERDICT_ONGOING : STUCK_VERDICT_DWELLING)
                                              : STUCK_VERDICT_NONE;

        next = calloc(s->n_procs ?: 1, sizeof(stuck_d_task));
        if (!next)
                return STUCK_VERDICT_NONE;
        for (size_t i = 0; i < s->n_procs; i++) {
                const stuck_proc_sample *p = &s->procs[i];
                const stuck_d_task *old;

                if (p->n_d_threads == 0)
                        continue;
                old = d_task_find(t, p->pid, p->start_ticks);
                next[n] = old ? *old : (stuck_d_task) { .pid = p->pid, .start_ticks = p->start_ticks,
                                                         .since_usec = now_usec };
                next[n].n_samples++;
                if (next[n].n_samples >= 2) {
                        repeated = true;
                        if (d_duration(&next[n], p, now_usec) >= dwell_usec)
                                long_enough = true;
                }
                n++;
        }
        free(t->d_tasks);
        t->d_tasks = n > 0 ? TAKE_PTR(next) : NULL;
        t->n_d_tasks = n;

        if (!repeated)
                return episode_clears(&t->d_state);
        return episode_holds(&t->d_state, now_usec, long_enough);
}

/* ---- zombies ------------------------------------------------------------------------------------- */

long stuck_zombie_count(const stuck_unit_sample *s) {
        long n = 0;

        if (!s->descended || !s->zombies_known)
                return -1;
        for (size_t i = 0; i < s->n_zombie_parents; i++)
                n += s->zombie_parents[i].n_zombies;
        return n;
}

stuck_verdict stuck_confirm_zombies(stuck_track *t, const stuck_unit_sample *s, uint64_t now_usec, unsigned max,
                                    uint64_t dwell_usec) {
        long n = stuck_zombie_count(s);

        if (n < 0)
                return t->zombies.incident[0] ? (t->zombies.confirmed ? STUCK_VERDICT_ONGOING : STUCK_VERDICT_DWELLING)
                                              : STUCK_VERDICT_NONE;
        if ((unsigned long) n <= max)
                return episode_clears(&t->zombies);
        return episode_holds(&t->zombies, now_usec, lasted(t->zombies.since_usec, now_usec, dwell_usec));
}
