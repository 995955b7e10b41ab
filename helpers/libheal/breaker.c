/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Circuit breaker per class+target, one state record each: closed -> open after
 * N consecutive failures -> one half-open trial after the cooldown -> closed or open.
 * The trial belongs to a live owner: it holds the trial's lock for its pass. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "heal/breaker.h"
#include "heal/cleanup.h"
#include "heal/json-util.h"
#include "heal/time-util.h"

/* The record as stored. "half-open" on disk means a trial has been claimed
 * at trial_usec, by whoever holds the trial's lock (trial_lock()); an open
 * breaker whose cooldown is over is only reported as half-open until someone
 * claims the trial. */
typedef struct breaker {
        heal_breaker_state state;
        uint32_t failures;
        uint64_t opened_usec;
        uint64_t trial_usec;
} breaker;

static const char *const state_table[] = {
        [HEAL_BREAKER_CLOSED] = "closed",
        [HEAL_BREAKER_OPEN] = "open",
        [HEAL_BREAKER_HALF_OPEN] = "half-open",
};

const char *heal_breaker_state_to_string(heal_breaker_state s) {
        if ((unsigned) s >= ELEMENTSOF(state_table))
                return NULL;
        return state_table[s];
}

int heal_breaker_state_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(state_table); i++)
                if (strcmp(s, state_table[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

static uint64_t cooldown_usec(const heal_breaker_spec *spec) {
        return (uint64_t) spec->cooldown_s * USEC_PER_SEC;
}

/* Absent -> closed with no failures; anything malformed -> -EBADMSG. */
static int breaker_load(heal_state *s, const char *ns, const char *key, breaker *ret) {
        _cleanup_json_ json_t *data = NULL;
        breaker b = {};
        uint64_t failures;
        int r, st;

        r = heal_state_read(s, ns, key, &data);
        if (r == -ENOENT) {
                *ret = (breaker) { .state = HEAL_BREAKER_CLOSED };
                return 0;
        }
        if (r < 0)
                return r;
        if (!json_is_object(data))
                return -EBADMSG;

        st = heal_breaker_state_from_string(json_string_value(json_object_get(data, "state")));
        if (st < 0)
                return -EBADMSG;
        b.state = (heal_breaker_state) st;

        r = heal_json_get_u64(data, "failures", &failures);
        if (r < 0)
                return r;
        if (failures > UINT32_MAX)
                return -EBADMSG;
        b.failures = (uint32_t) failures;

        r = heal_json_get_u64(data, "opened_usec", &b.opened_usec);
        if (r < 0)
                return r;
        r = heal_json_get_u64(data, "trial_usec", &b.trial_usec);
        if (r < 0)
                return r;

        *ret = b;
        return 0;
}

static int breaker_store(heal_state *s, const char *ns, const char *key, const breaker *b) {
        _cleanup_json_ json_t *data = NULL;

        data = json_pack("{s:s, s:I, s:I, s:I}", "state", heal_breaker_state_to_string(b->state),
                         "failures", (json_int_t) b->failures, "opened_usec", (json_int_t) b->opened_usec,
                         "trial_usec", (json_int_t) b->trial_usec);
        if (!data)
                return -ENOMEM;
        return heal_state_write(s, ns, key, data);
}

static int args_validate(const char *ns, const char *key, const heal_breaker_spec *spec, uint64_t now_usec) {
        if (!ns || !key || !spec || spec->failures < 1 || now_usec > INT64_MAX)
                return -EINVAL;
        return 0;
}

/* The trial's own lock, "trial|<key>" in the breaker's namespace: never a
 * record's, so it cannot deadlock with the record lock. Taken without
 * waiting, under the record lock. Returns the fd (the trial has no live
 * owner), -EBUSY (a live owner holds it), or -errno. */
static int trial_lock(heal_state *s, const char *ns, const char *key) {
        _cleanup_free_ char *name = NULL;
        int fd = -EBADF, r;

        if (asprintf(&name, "trial|%s", key) < 0)
                return -ENOMEM;
        r = heal_state_lock_timeout(s, ns, name, 0, &fd);
        if (r == -ETIMEDOUT)
                return -EBUSY;
        return r < 0 ? r : fd;
}

/* Decides under the lock; returns >0 admitted, 0 refused, and whether @b must
 * be written. A trial handed out comes with its lock in *ret_trial_fd. */
static int breaker_decide(heal_state *s, const char *ns, const char *key, breaker *b,
                          const heal_breaker_spec *spec, uint64_t now_usec, bool *ret_dirty,
                          int *ret_trial_fd) {
        int fd;

        *ret_dirty = false;
        if (b->state == HEAL_BREAKER_CLOSED)
                return 1;

        if (b->state == HEAL_BREAKER_OPEN) {
                if (now_usec < b->opened_usec) {
                        /* The clock went back: wait a full cooldown from now,
                         * not until the old time comes round again. */
                        b->opened_usec = now_usec;
                        *ret_dirty = true;
                        return 0;
                }
                if (now_usec - b->opened_usec < cooldown_usec(spec))
                        return 0;
        }

        /* Cooldown over, or a trial claimed: the trial is its lock holder's
         * for as long as it runs, however long that is; a trial whose lock is
         * free lost its owner (crashed, killed) and goes to this caller. */
        fd = trial_lock(s, ns, key);
        if (fd == -EBUSY)
                return 0;
        if (fd < 0)
                return fd;
        b->state = HEAL_BREAKER_HALF_OPEN;
        b->trial_usec = now_usec;
        *ret_dirty = true;
        *ret_trial_fd = fd;
        return 1;
}

int heal_breaker_admit_ns(heal_state *s, const char *ns, const char *key, const heal_breaker_spec *spec,
                          uint64_t now_usec, heal_breaker_state *ret_state, int *ret_trial_fd) {
        _cleanup_close_ int lock_fd = -EBADF, trial_fd = -EBADF;
        breaker b;
        bool dirty;
        int r, admitted;

        r = args_validate(ns, key, spec, now_usec);
        if (r < 0)
                return r;
        if (!ret_trial_fd)
                return -EINVAL;

        r = heal_state_lock(s, ns, key, &lock_fd);
        if (r < 0)
                return r;
        r = breaker_load(s, ns, key, &b);
        if (r < 0)
                return r;

        /* A closed breaker admits without writing: only a trial claim or a
         * restarted cooldown changes the record. */
        admitted = breaker_decide(s, ns, key, &b, spec, now_usec, &dirty, &trial_fd);
        if (admitted < 0)
                return admitted;
        if (dirty) {
                /* The trial claim must be on disk before we hand it out. */
                r = breaker_store(s, ns, key, &b);
                if (r < 0)
                        return r;
        }

        if (ret_state)
                *ret_state = b.state;
        *ret_trial_fd = TAKE_FD(trial_fd);
        return admitted;
}

int heal_breaker_release_ns(heal_state *s, const char *ns, const char *key, int *trial_fd) {
        _cleanup_close_ int lock_fd = -EBADF;
        breaker b;
        int r;

        if (!ns || !key || !trial_fd)
                return -EINVAL;
        if (*trial_fd < 0)
                return 0;

        r = heal_state_lock(s, ns, key, &lock_fd);
        if (r >= 0)
                r = breaker_load(s, ns, key, &b);
        if (r >= 0 && b.state == HEAL_BREAKER_HALF_OPEN) {
                /* Back to open with the cooldown it had (over): the next
                 * caller may take the trial at once. */
                b.state = HEAL_BREAKER_OPEN;
                b.trial_usec = 0;
                r = breaker_store(s, ns, key, &b);
                if (r >= 0)
                        r = 1;
        } else if (r >= 0)
                r = 0;
        /* Let go in every case: a trial without a live owner is free anyway. */
        closep(trial_fd);
        return r;
}

int heal_breaker_release(heal_state *s, const char *key, int *trial_fd) {
        return heal_breaker_release_ns(s, HEAL_BREAKER_NS, key, trial_fd);
}

int heal_breaker_admit(heal_state *s, const char *key, const heal_breaker_spec *spec, uint64_t now_usec,
                       heal_breaker_state *ret_state, int *ret_trial_fd) {
        return heal_breaker_admit_ns(s, HEAL_BREAKER_NS, key, spec, now_usec, ret_state, ret_trial_fd);
}

static bool breaker_equal(const breaker *a, const breaker *b) {
        return a->state == b->state && a->failures == b->failures && a->opened_usec == b->opened_usec &&
               a->trial_usec == b->trial_usec;
}

static void breaker_open(breaker *b, uint64_t now_usec) {
        b->state = HEAL_BREAKER_OPEN;
        b->opened_usec = now_usec;
        b->trial_usec = 0;
}

int heal_breaker_record_ns(heal_state *s, const char *ns, const char *key, const heal_breaker_spec *spec,
                           bool success, uint64_t now_usec, heal_breaker_state *ret_state) {
        _cleanup_close_ int lock_fd = -EBADF;
        breaker b, old;
        int r, changed = 0;

        r = args_validate(ns, key, spec, now_usec);
        if (r < 0)
                return r;

        r = heal_state_lock(s, ns, key, &lock_fd);
        if (r < 0)
                return r;
        r = breaker_load(s, ns, key, &b);
        if (r < 0)
                return r;

        old = b;
        if (success) {
                changed = b.state != HEAL_BREAKER_CLOSED;
                b = (breaker) { .state = HEAL_BREAKER_CLOSED };
        } else {
                if (b.failures < UINT32_MAX)
                        b.failures++;
                if (b.state == HEAL_BREAKER_HALF_OPEN ||
                    (b.state == HEAL_BREAKER_CLOSED && b.failures >= spec->failures)) {
                        breaker_open(&b, now_usec);
                        changed = 1;
                }
        }

        /* Nothing to remember (a success on a closed breaker without
         * failures, a failure count already at its cap): no write, no sync. */
        if (!breaker_equal(&old, &b)) {
                r = breaker_store(s, ns, key, &b);
                if (r < 0)
                        return r;
        }

        if (ret_state)
                *ret_state = b.state;
        return changed;
}

int heal_breaker_record(heal_state *s, const char *key, const heal_breaker_spec *spec, bool success,
                        uint64_t now_usec, heal_breaker_state *ret_state) {
        return heal_breaker_record_ns(s, HEAL_BREAKER_NS, key, spec, success, now_usec, ret_state);
}

int heal_breaker_get_ns(heal_state *s, const char *ns, const char *key, const heal_breaker_spec *spec,
                        uint64_t now_usec, heal_breaker_state *ret_state, uint32_t *ret_failures) {
        breaker b;
        int r;

        r = args_validate(ns, key, spec, now_usec);
        if (r < 0)
                return r;

        /* Records are replaced atomically, so a read needs no lock. */
        r = breaker_load(s, ns, key, &b);
        if (r < 0)
                return r;

        if (b.state == HEAL_BREAKER_OPEN && now_usec >= b.opened_usec &&
            now_usec - b.opened_usec >= cooldown_usec(spec))
                b.state = HEAL_BREAKER_HALF_OPEN;

        if (ret_state)
                *ret_state = b.state;
        if (ret_failures)
                *ret_failures = b.failures;
        return 0;
}

int heal_breaker_get(heal_state *s, const char *key, const heal_breaker_spec *spec, uint64_t now_usec,
                     heal_breaker_state *ret_state, uint32_t *ret_failures) {
        return heal_breaker_get_ns(s, HEAL_BREAKER_NS, key, spec, now_usec, ret_state, ret_failures);
}

int heal_breaker_reset_ns(heal_state *s, const char *ns, const char *key) {
        _cleanup_close_ int lock_fd = -EBADF;
        const breaker closed = { .state = HEAL_BREAKER_CLOSED };
        int r;

        if (!ns || !key)
                return -EINVAL;

        r = heal_state_lock(s, ns, key, &lock_fd);
        if (r < 0)
                return r;
        /* Written without reading: reset is the way out of a corrupt record. */
        return breaker_store(s, ns, key, &closed);
}

int heal_breaker_reset(heal_state *s, const char *key) {
        return heal_breaker_reset_ns(s, HEAL_BREAKER_NS, key);
}
