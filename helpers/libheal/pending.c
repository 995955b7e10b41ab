/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pending actions of the delayed and approve tiers, kept as state records
 * (namespace "pending", key = short id) so short-lived helpers and healctl share them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/json-util.h"
#include "heal/hash.h"
#include "heal/pending.h"

#define PENDING_NS "pending"

static const char *const status_names[] = {
        [HEAL_PENDING_WAITING] = "waiting",
        [HEAL_PENDING_APPROVED] = "approved",
        [HEAL_PENDING_CANCELLED] = "cancelled",
};

const char *heal_pending_status_to_string(heal_pending_status s) {
        if ((unsigned) s >= ELEMENTSOF(status_names))
                return NULL;
        return status_names[s];
}

static int pending_status_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(status_names); i++)
                if (s && strcmp(s, status_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

void heal_pending_done(heal_pending *p) {
        if (!p)
                return;
        free(p->idem_key);
        free(p->healer);
        free(p->class);
        free(p->target);
        free(p->incident);
        free(p->intent);
        free(p->tier);
        free(p->rerun_unit);
        free(p->decided_by);
        free(p->incident_id);
        json_decref(p->facts);
        *p = (heal_pending){};
}

void heal_pending_id(const char *idem_key, char id[static 13]) {
        char hex[17];

        heal_fnv1a64_hex(idem_key, strlen(idem_key), hex);
        memcpy(id, hex, 12);
        id[12] = '\0';
}

bool heal_pending_id_valid(const char *id) {
        if (!id || strlen(id) != 12)
                return false;
        return strspn(id, "0123456789abcdef") == 12;
}

/* ---- record <-> JSON ------------------------------------------------------ */

static int set_str(json_t *o, const char *name, const char *v) {
        return json_object_set_new(o, name, v ? json_string(v) : json_null()) < 0 ? -ENOMEM : 0;
}

static int set_usec(json_t *o, const char *name, uint64_t v) {
        /* Times are well below 2^63 µs; anything larger is refused rather than wrapped. */
        if (v > (uint64_t) INT64_MAX)
                return -ERANGE;
        return json_object_set_new(o, name, json_integer((json_int_t) v)) < 0 ? -ENOMEM : 0;
}

static int pending_to_json(const heal_pending *p, json_t **ret) {
        _cleanup_json_ json_t *o = json_object();
        int r;

        if (!o)
                return -ENOMEM;
        if ((r = set_str(o, "id", p->id)) < 0 || (r = set_str(o, "idem_key", p->idem_key)) < 0 ||
            (r = set_str(o, "healer", p->healer)) < 0 || (r = set_str(o, "class", p->class)) < 0 ||
            (r = set_str(o, "target", p->target)) < 0 || (r = set_str(o, "incident", p->incident)) < 0 ||
            (r = set_str(o, "intent", p->intent)) < 0 || (r = set_str(o, "tier", p->tier)) < 0 ||
            (r = set_str(o, "rerun_unit", p->rerun_unit)) < 0 ||
            (r = set_str(o, "status", heal_pending_status_to_string(p->status))) < 0 ||
            (r = set_str(o, "decided_by", p->decided_by)) < 0 ||
            (r = set_str(o, "incident_id", p->incident_id)) < 0 ||
            (r = set_usec(o, "decided_usec", p->decided_usec)) < 0 ||
            (r = set_usec(o, "created_usec", p->created_usec)) < 0 ||
            (r = set_usec(o, "not_before_usec", p->not_before_usec)) < 0 ||
            (r = set_usec(o, "expires_usec", p->expires_usec)) < 0)
                return r;
        if (json_object_set(o, "facts", p->facts ? p->facts : json_null()) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(o);
        return 0;
}

/* A string field; absent or null gives NULL, any other type is corruption. */
static int get_str(json_t *o, const char *name, bool required, char **ret) {
        json_t *v = json_object_get(o, name);

        if (!v || json_is_null(v)) {
                if (required)
                        return -EBADMSG;
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int pending_from_json(json_t *o, const char *id, heal_pending *ret) {
        _cleanup_(heal_pending_done) heal_pending p = {};
        _cleanup_free_ char *stored_id = NULL, *status = NULL;
        json_t *facts;
        int r;

        if (!json_is_object(o))
                return -EBADMSG;

        /* The record must be the one its key names, and its key the one its idempotency key derives. */
        if ((r = get_str(o, "id", true, &stored_id)) < 0 ||
            (r = get_str(o, "idem_key", true, &p.idem_key)) < 0)
                return r;
        if (strcmp(stored_id, id) != 0 || !heal_pending_id_valid(stored_id))
                return -EBADMSG;
        heal_pending_id(p.idem_key, p.id);
        if (strcmp(p.id, stored_id) != 0)
                return -EBADMSG;

        if ((r = get_str(o, "healer", false, &p.healer)) < 0 ||
            (r = get_str(o, "class", true, &p.class)) < 0 ||
            (r = get_str(o, "target", true, &p.target)) < 0 ||
            (r = get_str(o, "incident", false, &p.incident)) < 0 ||
            (r = get_str(o, "intent", false, &p.intent)) < 0 ||
            (r = get_str(o, "tier", true, &p.tier)) < 0 ||
            (r = get_str(o, "rerun_unit", false, &p.rerun_unit)) < 0 ||
            (r = get_str(o, "decided_by", false, &p.decided_by)) < 0 ||
            (r = get_str(o, "incident_id", false, &p.incident_id)) < 0 ||
            (r = heal_json_get_u64_or_zero(o, "decided_usec", &p.decided_usec)) < 0 ||
            (r = get_str(o, "status", true, &status)) < 0 ||
            (r = heal_json_get_u64(o, "created_usec", &p.created_usec)) < 0 ||
            (r = heal_json_get_u64(o, "not_before_usec", &p.not_before_usec)) < 0 ||
            (r = heal_json_get_u64(o, "expires_usec", &p.expires_usec)) < 0)
                return r;

        r = pending_status_from_string(status);
        if (r < 0)
                return -EBADMSG;
        p.status = (heal_pending_status) r;

        facts = json_object_get(o, "facts");
        if (facts && !json_is_null(facts))
                p.facts = json_incref(facts);

        *ret = p;
        p = (heal_pending){};
        return 0;
}

/* ---- store ---------------------------------------------------------------- */

int heal_pending_save(heal_state *s, const heal_pending *p) {
        _cleanup_json_ json_t *o = NULL;
        heal_pending copy;
        int r;

        if (!s || !p || !p->idem_key || !p->class || !p->target || !p->tier ||
            !heal_pending_status_to_string(p->status))
                return -EINVAL;

        /* The id is always derived; a caller-set id that disagrees is a bug, not a new key. */
        copy = *p;
        heal_pending_id(p->idem_key, copy.id);
        if (p->id[0] && strcmp(p->id, copy.id) != 0)
                return -EINVAL;

        r = pending_to_json(&copy, &o);
        if (r < 0)
                return r;
        return heal_state_write(s, PENDING_NS, copy.id, o);
}

int heal_pending_load(heal_state *s, const char *id, heal_pending *ret) {
        _cleanup_json_ json_t *o = NULL;
        int r;

        if (!s || !ret)
                return -EINVAL;
        if (!heal_pending_id_valid(id))
                return -ENOENT;

        r = heal_state_read(s, PENDING_NS, id, &o);
        if (r < 0)
                return r;
        return pending_from_json(o, id, ret);
}

int heal_pending_remove(heal_state *s, const char *id) {
        if (!s || !heal_pending_id_valid(id))
                return -EINVAL;
        return heal_state_remove(s, PENDING_NS, id);
}

bool heal_pending_stale(const heal_pending *p, uint64_t now_usec) {
        if (!p || p->status != HEAL_PENDING_WAITING || !p->tier)
                return false;
        if (strcmp(p->tier, "approve") == 0)
                return p->expires_usec > 0 && now_usec >= p->expires_usec;
        if (strcmp(p->tier, "delayed") == 0)
                return p->not_before_usec > 0 && now_usec >= p->not_before_usec;
        return false;
}

static bool tier_is(const heal_pending *p, const char *tier) {
        return p->tier && strcmp(p->tier, tier) == 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The record's own window, at least the minimum: how long it stays usable
 * after its deadline (delayed) or its decision. */
static uint64_t pending_span(const heal_pending *p) {
        uint64_t end = tier_is(p, "delayed") ? p->not_before_usec : p->expires_usec;
        uint64_t span = end > p->created_usec ? end - p->created_usec : 0;

        return span > HEAL_PENDING_MIN_SPAN_USEC ? span : HEAL_PENDING_MIN_SPAN_USEC;
}

bool heal_pending_over(const heal_pending *p, uint64_t now_usec) {
        uint64_t base;

        if (!p)
                return false;
        switch (p->status) {
        case HEAL_PENDING_WAITING:
                if (tier_is(p, "approve"))
                        return heal_pending_stale(p, now_usec);
                if (!tier_is(p, "delayed"))
                        return true; /* no tier that waits: nobody acts on it */
                base = p->not_before_usec ?: p->created_usec;
                break;
        case HEAL_PENDING_APPROVED:
        case HEAL_PENDING_CANCELLED:
                /* Older records lack the decision time; the decision came
                 * before the deadline at the latest. */
                base = p->decided_usec ?: p->expires_usec ?: p->not_before_usec ?: p->created_usec;
                break;
        default:
                return true;
        }
        return now_usec >= add_sat(base, pending_span(p));
}

int heal_pending_decide(heal_state *s, const char *id, heal_pending_status status, const char *who,
                        uint64_t now_usec, heal_pending *ret) {
        _cleanup_(heal_pending_done) heal_pending p = {};
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_free_ char *owner = NULL;
        int r;

        if (!s || (status != HEAL_PENDING_APPROVED && status != HEAL_PENDING_CANCELLED))
                return -EINVAL;
        if (!heal_pending_id_valid(id))
                return -ENOENT;
        if (who) {
                owner = strdup(who);
                if (!owner)
                        return -ENOMEM;
        }

        r = heal_state_lock(s, PENDING_NS, id, &lock_fd);
        if (r < 0)
                return r;

        r = heal_pending_load(s, id, &p);
        if (r < 0)
                return r;
        if (p.status != HEAL_PENDING_WAITING)
                return -EALREADY;
        /* An approve plan past its expiry is stale; a delayed action past its
         * window is already running (or ran) by itself, too late to cancel. */
        if (heal_pending_stale(&p, now_usec))
                return -ESTALE;

        p.status = status;
        free(p.decided_by);
        p.decided_by = TAKE_PTR(owner);
        p.decided_usec = now_usec;

        r = heal_pending_save(s, &p);
        if (r < 0)
                return r;

        if (ret) {
                *ret = p;
                p = (heal_pending){};
        }
        return 0;
}

/* ---- consuming and ageing out --------------------------------------------- */

/* What a decision on a record was based on. */
static bool pending_same(const heal_pending *a, const heal_pending *b) {
        return a->status == b->status && a->created_usec == b->created_usec &&
               a->not_before_usec == b->not_before_usec && a->expires_usec == b->expires_usec &&
               a->decided_usec == b->decided_usec && a->tier && b->tier && strcmp(a->tier, b->tier) == 0 &&
               (a->decided_by && b->decided_by ? strcmp(a->decided_by, b->decided_by) == 0
                                               : a->decided_by == b->decided_by);
}

/* Removes the record and, the key being gone, its lock file. */
static int remove_locked(heal_state *s, const char *id, int *lock_fd) {
        int r = heal_pending_remove(s, id);
        if (r < 0)
                return r;
        (void) heal_state_unlock_remove(s, PENDING_NS, id, lock_fd);
        return 0;
}

int heal_pending_take(heal_state *s, const heal_pending *expected, heal_pending *ret_current) {
        _cleanup_(heal_pending_done) heal_pending cur = {};
        _cleanup_close_ int lock_fd = -EBADF;
        int r;

        if (!s || !expected || !heal_pending_id_valid(expected->id))
                return -EINVAL;
        r = heal_state_lock(s, PENDING_NS, expected->id, &lock_fd);
        if (r < 0)
                return r;
        r = heal_pending_load(s, expected->id, &cur);
        if (r < 0)
                return r;
        if (!pending_same(&cur, expected)) {
                if (ret_current) {
                        *ret_current = cur;
                        cur = (heal_pending){};
                }
                return 0;
        }
        r = remove_locked(s, expected->id, &lock_fd);
        return r < 0 ? r : 1;
}

/* One record: removed when it is still over under its lock. 1 removed, 0 kept. */
static int gc_one(heal_state *s, const char *id, uint64_t now_usec, heal_pending_gc_fn fn, void *userdata) {
        _cleanup_(heal_pending_done) heal_pending p = {};
        _cleanup_close_ int lock_fd = -EBADF;
        int r;

        r = heal_state_lock_timeout(s, PENDING_NS, id, 0, &lock_fd);
        if (r == -ETIMEDOUT)
                return 0;
        if (r < 0)
                return r;
        r = heal_pending_load(s, id, &p);
        if (r == -ENOENT || r == -EBADMSG)
                return 0;
        if (r < 0)
                return r;
        if (!heal_pending_over(&p, now_usec))
                return 0;
        r = remove_locked(s, id, &lock_fd);
        if (r < 0)
                return r;
        if (fn)
                fn(&p, userdata);
        return 1;
}

int heal_pending_gc(heal_state *s, uint64_t now_usec, heal_pending_gc_fn fn, void *userdata) {
        _cleanup_strv_free_ char **keys = NULL;
        int r, n = 0;

        if (!s)
                return -EINVAL;
        r = heal_state_list(s, PENDING_NS, &keys);
        if (r < 0)
                return r;
        for (char **k = keys; *k; k++) {
                r = gc_one(s, *k, now_usec, fn, userdata);
                if (r < 0)
                        return r;
                n += r;
        }
        return n;
}

/* ---- listing -------------------------------------------------------------- */

static int pending_cmp(const void *a, const void *b) {
        const heal_pending *x = a, *y = b;

        if (x->created_usec != y->created_usec)
                return x->created_usec < y->created_usec ? -1 : 1;
        return strcmp(x->id, y->id);
}

static void pending_array_free(heal_pending *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                heal_pending_done(&a[i]);
        free(a);
}

int heal_pending_list(heal_state *s, heal_pending **ret, size_t *ret_n) {
        _cleanup_strv_free_ char **keys = NULL;
        heal_pending *a = NULL;
        size_t n = 0;
        int r;

        if (!s || !ret || !ret_n)
                return -EINVAL;

        r = heal_state_list(s, PENDING_NS, &keys);
        if (r < 0)
                return r;

        a = calloc((size_t) r + 1, sizeof(heal_pending));
        if (!a)
                return -ENOMEM;

        for (char **k = keys; *k; k++) {
                r = heal_pending_load(s, *k, &a[n]);
                /* Gone meanwhile (decided and removed) or corrupt: listed by
                 * neither; healctl reports corrupt records from the keys itself. */
                if (r == -ENOENT || r == -EBADMSG)
                        continue;
                if (r < 0) {
                        pending_array_free(a, n);
                        return r;
                }
                n++;
        }

        qsort(a, n, sizeof(heal_pending), pending_cmp);
        *ret = a;
        *ret_n = n;
        return (int) n;
}
