/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-unit samples and tracks as heal_state records: {"sample": <stuck sample JSON> | null, "track": {...}}. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/paths.h"
#include "samples-store.h"

int stuck_store_open(heal_state **ret) {
        _cleanup_free_ char *dir = NULL;

        if (asprintf(&dir, "%s/stuck", heal_path_run_dir()) < 0)
                return -ENOMEM;
        return heal_state_open(dir, ret);
}

void stuck_record_done(stuck_record *r) {
        if (!r)
                return;
        stuck_unit_sample_done(&r->sample);
        stuck_track_done(&r->track);
        *r = (stuck_record) {};
}

int stuck_store_load(heal_state *s, const char *unit, stuck_record *ret) {
        _cleanup_(stuck_record_done) stuck_record rec = {};
        _cleanup_json_ json_t *data = NULL;
        json_t *sample, *track;
        int r;

        r = heal_state_read(s, STUCK_STORE_NS, unit, &data);
        if (r < 0)
                return r;
        sample = json_object_get(data, "sample");
        track = json_object_get(data, "track");
        if (!track)
                return -EBADMSG;
        if (sample && !json_is_null(sample)) {
                r = stuck_unit_sample_from_json(sample, &rec.sample);
                if (r < 0)
                        return r;
                rec.have_sample = true;
        }
        r = stuck_track_from_json(track, &rec.track);
        if (r < 0)
                return r;
        *ret = rec;
        rec = (stuck_record) {};
        return 0;
}

int stuck_store_save(heal_state *s, const char *unit, const stuck_unit_sample *sample, const stuck_track *track) {
        _cleanup_json_ json_t *data = NULL, *js = NULL, *jt = NULL;
        int r;

        if (sample) {
                r = stuck_unit_sample_to_json(sample, &js);
                if (r < 0)
                        return r;
        }
        r = stuck_track_to_json(track, &jt);
        if (r < 0)
                return r;
        data = json_pack("{s:O,s:O}", "sample", js ?: json_null(), "track", jt);
        if (!data)
                return -ENOMEM;
        return heal_state_write(s, STUCK_STORE_NS, unit, data);
}

static bool in(char *const *l, const char *s) {
        for (char *const *i = l; i && *i; i++)
                if (strcmp(*i, s) == 0)
                        return true;
        return false;
}

int stuck_store_prune(heal_state *s, char *const *keep) {
        _cleanup_strv_free_ char **keys = NULL;
        int r, n = 0;

        r = heal_state_list(s, STUCK_STORE_NS, &keys);
        if (r < 0)
                return r;
        for (char **k = keys; k && *k; k++) {
                if (in(keep, *k))
                        continue;
                r = heal_state_remove(s, STUCK_STORE_NS, *k);
                if (r < 0)
                        return r;
                n++;
        }
        return n;
}
