/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Idempotency: a claim per incident in state namespace "idem", taken and settled
 * under the record's lock, so racing triggers of one incident act once. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/idempotency.h"

#define IDEM_NS "idem"
#define STATE_IN_FLIGHT "in-flight"
#define STATE_DONE "done"

static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

int heal_idem_key(const char *class, const char *target, const char *incident, uint64_t now_usec,
                  uint64_t bucket_usec, char **ret) {
        char *key;

        /* '|' separates the fields; in class or target it would make keys ambiguous. */
        if (!class || !*class || !target || !*target || !ret || strchr(class, '|') ||
            strchr(target, '|'))
                return -EINVAL;

        if (incident && *incident) {
                if (asprintf(&key, "%s|%s|%s", class, target, incident) < 0)
                        return -ENOMEM;
        } else {
                if (bucket_usec == 0)
                        return -EINVAL;
                if (asprintf(&key, "%s|%s|t%" PRIu64, class, target,
                             now_usec - now_usec % bucket_usec) < 0)
                        return -ENOMEM;
        }
        *ret = key;
        return 0;
}

static int field_u64(json_t *data, const char *name, uint64_t *ret) {
        json_t *v = json_object_get(data, name);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

/* What a stored claim means at @now_usec; a malformed one is -EBADMSG (fail
 * closed). @ttl_usec NULL: judge an in-flight claim by the ttl it was taken with. */
static int classify(json_t *data, uint64_t now_usec, const uint64_t *ttl_usec, heal_idem_status *ret) {
        const char *state = json_string_value(json_object_get(data, "state"));
        uint64_t since, until;
        int r;

        if (!state)
                return -EBADMSG;
        r = field_u64(data, "since", &since);
        if (r < 0)
                return r;
        r = field_u64(data, "until", &until);
        if (r < 0)
                return r;

        if (strcmp(state, STATE_DONE) == 0)
                *ret = now_usec < until ? HEAL_IDEM_DONE : HEAL_IDEM_NEW;
        else if (strcmp(state, STATE_IN_FLIGHT) == 0)
                /* The current ttl decides when a claim is abandoned, so a
                 * shortened policy frees stuck claims without editing state. */
                *ret = now_usec < (ttl_usec ? add_sat(since, *ttl_usec) : until) ? HEAL_IDEM_IN_FLIGHT
                                                                                 : HEAL_IDEM_NEW;
        else
                return -EBADMSG;
        return 0;
}

static int lookup(heal_state *s, const char *key, uint64_t now_usec, const uint64_t *ttl_usec,
                  heal_idem_status *ret) {
        _cleanup_json_ json_t *data = NULL;
        int r = heal_state_read(s, IDEM_NS, key, &data);
        if (r == -ENOENT) {
                *ret = HEAL_IDEM_NEW;
                return 0;
        }
        if (r < 0)
                return r;
        return classify(data, now_usec, ttl_usec, ret);
}

static int store(heal_state *s, const char *key, const char *state, uint64_t now_usec,
                 uint64_t ttl_usec) {
        uint64_t until = add_sat(now_usec, ttl_usec);
        if (until > (uint64_t) LLONG_MAX)
                return -ERANGE;
        _cleanup_json_ json_t *data = json_pack("{s:s, s:I, s:I}", "state", state, "since",
                                                (json_int_t) now_usec, "until", (json_int_t) until);
        if (!data)
                return -ENOMEM;
        return heal_state_write(s, IDEM_NS, key, data);
}

int heal_idem_begin(heal_state *s, const char *key, uint64_t now_usec, uint64_t ttl_usec,
                    heal_idem_status *ret_status) {
        _cleanup_close_ int lock_fd = -EBADF;
        heal_idem_status status;
        int r;

        if (!s || !key)
                return -EINVAL;
        r = heal_state_lock(s, IDEM_NS, key, &lock_fd);
        if (r < 0)
                return r;

        r = lookup(s, key, now_usec, &ttl_usec, &status);
        if (r < 0)
                return r;
        if (status == HEAL_IDEM_NEW) {
                r = store(s, key, STATE_IN_FLIGHT, now_usec, ttl_usec);
                if (r < 0)
                        return r;
        }
        if (ret_status)
                *ret_status = status;
        return status == HEAL_IDEM_NEW;
}

int heal_idem_finish(heal_state *s, const char *key, bool verified, uint64_t now_usec,
                     uint64_t ttl_usec) {
        _cleanup_close_ int lock_fd = -EBADF;
        int r;

        if (!s || !key)
                return -EINVAL;
        r = heal_state_lock(s, IDEM_NS, key, &lock_fd);
        if (r < 0)
                return r;

        if (verified)
                return store(s, key, STATE_DONE, now_usec, ttl_usec);
        return heal_state_remove(s, IDEM_NS, key);
}

int heal_idem_peek(heal_state *s, const char *key, uint64_t now_usec, heal_idem_status *ret_status) {
        heal_idem_status status;
        int r;

        if (!s || !key || !ret_status)
                return -EINVAL;
        /* Records are replaced atomically, so a read needs no lock. */
        r = lookup(s, key, now_usec, NULL, &status);
        if (r < 0)
                return r;
        *ret_status = status;
        return 0;
}
