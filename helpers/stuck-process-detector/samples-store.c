/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store as heal_state records: "scan"/"units" = {"units": {<unit>: <entry>}}, where an entry is
 * [control_group, invocation_id, sample, track] (the track left out when empty) and the sample is null
 * (none), the compact form of a counters-only sample, a full sample object, or the monotonic_usec of the
 * sample kept in its own record "samples"/<unit> = {"sample": <stuck sample JSON>} (the samples that hold
 * processes). Entries of the version before, {"track", "sample", "sample_record", "control_group",
 * "invocation_id"} objects, are still read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/paths.h"
#include "samples-store.h"

struct stuck_store {
        heal_state *state;
        json_t *units; /* unit name -> its entry */
};

heal_state *stuck_store_state(stuck_store *s) {
        return s ? s->state : NULL;
}

stuck_store *stuck_store_free(stuck_store *s) {
        if (!s)
                return NULL;
        heal_state_free(s->state);
        json_decref(s->units);
        free(s);
        return NULL;
}

/* The per-unit records of the version before: gone once the store is in its new form. */
static void remove_legacy(heal_state *st) {
        _cleanup_strv_free_ char **keys = NULL;

        if (heal_state_list(st, STUCK_STORE_LEGACY_NS, &keys) <= 0)
                return;
        for (char **k = keys; *k; k++)
                (void) heal_state_remove_flags(st, STUCK_STORE_LEGACY_NS, *k, HEAL_STATE_WRITE_NOSYNC);
}

int stuck_store_open(stuck_store **ret) {
        _cleanup_(stuck_store_freep) stuck_store *s = NULL;
        _cleanup_json_ json_t *data = NULL;
        _cleanup_free_ char *dir = NULL;
        json_t *units;
        int r;

        if (asprintf(&dir, "%s/stuck", heal_path_run_dir()) < 0)
                return -ENOMEM;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = heal_state_open(dir, &s->state);
        if (r < 0)
                return r;

        r = heal_state_read(s->state, STUCK_STORE_NS, STUCK_STORE_KEY, &data);
        if (r == -ENOENT)
                remove_legacy(s->state);
        else if (r < 0 && r != -EBADMSG)
                return r;
        units = json_object_get(data, "units");
        /* Missing or corrupt: every unit starts from a fresh baseline. */
        s->units = json_is_object(units) ? json_incref(units) : json_object();
        if (!s->units)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

void stuck_record_done(stuck_record *r) {
        if (!r)
                return;
        stuck_unit_sample_done(&r->sample);
        stuck_track_done(&r->track);
        free(r->control_group);
        free(r->invocation_id);
        *r = (stuck_record) {};
}

/* An optional string member: absent or null is NULL. */
static int get_str(const json_t *o, const char *key, char **ret) {
        const json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                return -EBADMSG;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

/* The sample kept in its own record; it must be the one the entry names (a run that died between
 * writing it and its commit leaves a newer one). */
static int load_own_sample(stuck_store *s, const char *unit, const json_t *at, stuck_unit_sample *ret) {
        _cleanup_(stuck_unit_sample_done) stuck_unit_sample sample = {};
        _cleanup_json_ json_t *data = NULL;
        int r;

        if (!json_is_integer(at))
                return -EBADMSG;
        r = heal_state_read(s->state, STUCK_STORE_SAMPLES_NS, unit, &data);
        if (r == -ENOENT)
                return -EBADMSG;
        if (r < 0)
                return r;
        r = stuck_unit_sample_from_json(json_object_get(data, "sample"), &sample);
        if (r < 0)
                return r;
        if ((json_int_t) sample.monotonic_usec != json_integer_value(at))
                return -EBADMSG;
        *ret = sample;
        sample = (stuck_unit_sample) {};
        return 0;
}

/* The entry form of the version before: an object. */
static int get_object(stuck_store *s, const char *unit, const json_t *e, stuck_record *rec) {
        const json_t *sample = json_object_get(e, "sample"), *track = json_object_get(e, "track"),
                     *at = json_object_get(e, "sample_record");
        int r;

        if (!track)
                return -EBADMSG;
        if (at) {
                r = load_own_sample(s, unit, at, &rec->sample);
                if (r < 0)
                        return r;
                rec->have_sample = true;
        } else if (sample && !json_is_null(sample)) {
                r = stuck_unit_sample_from_json(sample, &rec->sample);
                if (r < 0)
                        return r;
                rec->have_sample = true;
        }
        r = stuck_track_from_json(track, &rec->track);
        if (r < 0)
                return r;
        r = get_str(e, "control_group", &rec->control_group);
        if (r >= 0)
                r = get_str(e, "invocation_id", &rec->invocation_id);
        return r;
}

/* An optional string item: null is NULL. */
static int get_item_str(const json_t *a, size_t i, char **ret) {
        return stuck_json_string_dup(json_array_get(a, i), ret);
}

/* [control_group, invocation_id, sample, track?] */
static int get_array(stuck_store *s, const char *unit, const json_t *e, stuck_record *rec) {
        size_t n = json_array_size(e);
        const json_t *sample = json_array_get(e, 2);
        int r;

        if (n != 3 && n != 4)
                return -EBADMSG;
        if (json_is_integer(sample))
                r = load_own_sample(s, unit, sample, &rec->sample);
        else if (json_is_array(sample))
                r = stuck_unit_sample_from_compact(sample, &rec->sample);
        else if (json_is_object(sample))
                r = stuck_unit_sample_from_json(sample, &rec->sample);
        else
                r = json_is_null(sample) ? 0 : -EBADMSG;
        if (r < 0)
                return r;
        rec->have_sample = !json_is_null(sample);
        if (n == 4) {
                r = stuck_track_from_json(json_array_get(e, 3), &rec->track);
                if (r < 0)
                        return r;
        }
        r = get_item_str(e, 0, &rec->control_group);
        if (r >= 0)
                r = get_item_str(e, 1, &rec->invocation_id);
        return r;
}

int stuck_store_get(stuck_store *s, const char *unit, stuck_record *ret) {
        _cleanup_(stuck_record_done) stuck_record rec = {};
        const json_t *e = json_object_get(s->units, unit);
        int r;

        if (!e)
                return -ENOENT;
        if (json_is_array(e))
                r = get_array(s, unit, e, &rec);
        else if (json_is_object(e))
                r = get_object(s, unit, e, &rec);
        else
                r = -EBADMSG;
        if (r < 0)
                return r;
        *ret = rec;
        rec = (stuck_record) {};
        return 0;
}

static bool has_own_sample(stuck_store *s, const char *unit) {
        const json_t *e = json_object_get(s->units, unit);

        if (json_is_array(e))
                return json_is_integer(json_array_get(e, 2));
        return json_object_get(e, "sample_record") != NULL;
}

static json_t *str_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

/* The entry's sample item (see the top of this file); a descended one is written to its own record. */
static int put_sample(stuck_store *s, const char *unit, const stuck_unit_sample *sample, json_t **ret) {
        _cleanup_json_ json_t *js = NULL, *data = NULL;
        int r;

        if (!sample) {
                *ret = json_null();
                return 0;
        }
        if (stuck_unit_sample_is_compact(sample))
                return stuck_unit_sample_to_compact(sample, ret);
        r = stuck_unit_sample_to_json(sample, &js);
        if (r < 0)
                return r;
        if (!sample->descended) {
                *ret = TAKE_PTR(js);
                return 0;
        }
        data = json_pack("{s:O}", "sample", js);
        if (!data)
                return -ENOMEM;
        r = heal_state_write_flags(s->state, STUCK_STORE_SAMPLES_NS, unit, data, HEAL_STATE_WRITE_NOSYNC);
        if (r < 0)
                return r;
        *ret = json_integer((json_int_t) sample->monotonic_usec);
        return *ret ? 0 : -ENOMEM;
}

int stuck_store_put(stuck_store *s, const char *unit, const stuck_unit_sample *sample, const stuck_track *track,
                    const char *control_group, const char *invocation_id) {
        _cleanup_json_ json_t *e = NULL, *js = NULL, *jt = NULL;
        bool own = sample && sample->descended;
        int r;

        r = put_sample(s, unit, sample, &js);
        if (r < 0)
                return r;
        if (!own && has_own_sample(s, unit)) {
                r = heal_state_remove_flags(s->state, STUCK_STORE_SAMPLES_NS, unit, HEAL_STATE_WRITE_NOSYNC);
                if (r < 0)
                        return r;
        }
        e = json_pack("[o,o,O]", str_or_null(control_group), str_or_null(invocation_id), js);
        if (!e)
                return -ENOMEM;
        if (!stuck_track_is_empty(track)) {
                r = stuck_track_to_json(track, &jt);
                if (r < 0)
                        return r;
                if (json_array_append(e, jt) < 0)
                        return -ENOMEM;
        }
        return json_object_set(s->units, unit, e) < 0 ? -ENOMEM : 0;
}

int stuck_store_drop(stuck_store *s, const char *unit) {
        int r;

        if (has_own_sample(s, unit)) {
                r = heal_state_remove_flags(s->state, STUCK_STORE_SAMPLES_NS, unit, HEAL_STATE_WRITE_NOSYNC);
                if (r < 0)
                        return r;
        }
        (void) json_object_del(s->units, unit);
        return 0;
}

static bool in(char *const *l, const char *s) {
        for (char *const *i = l; i && *i; i++)
                if (strcmp(*i, s) == 0)
                        return true;
        return false;
}

/* Samples in their own records that no entry names. */
static int remove_orphans(stuck_store *s) {
        _cleanup_strv_free_ char **keys = NULL;
        int r;

        r = heal_state_list(s->state, STUCK_STORE_SAMPLES_NS, &keys);
        if (r <= 0)
                return r;
        for (char **k = keys; *k; k++) {
                if (has_own_sample(s, *k))
                        continue;
                r = heal_state_remove_flags(s->state, STUCK_STORE_SAMPLES_NS, *k, HEAL_STATE_WRITE_NOSYNC);
                if (r < 0)
                        return r;
        }
        return 0;
}

int stuck_store_commit(stuck_store *s, char *const *keep) {
        _cleanup_strv_free_ char **gone = NULL;
        _cleanup_json_ json_t *data = NULL;
        size_t n = 0, i = 0;
        const char *unit;
        json_t *e;
        int r;

        gone = calloc(json_object_size(s->units) + 1, sizeof(char *));
        if (!gone)
                return -ENOMEM;
        json_object_foreach (s->units, unit, e) {
                if (in(keep, unit))
                        continue;
                gone[n] = strdup(unit);
                if (!gone[n])
                        return -ENOMEM;
                n++;
        }
        for (i = 0; i < n; i++) {
                r = stuck_store_drop(s, gone[i]);
                if (r < 0)
                        return r;
        }
        r = remove_orphans(s);
        if (r < 0)
                return r;

        data = json_pack("{s:O}", "units", s->units);
        if (!data)
                return -ENOMEM;
        r = heal_state_write_flags(s->state, STUCK_STORE_NS, STUCK_STORE_KEY, data, HEAL_STATE_WRITE_NOSYNC);
        if (r < 0)
                return r;
        return (int) n;
}
