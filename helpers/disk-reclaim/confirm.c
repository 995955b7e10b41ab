/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Confirm: the first sample of a pressured mount is kept in a state record;
 * a later run confirms once the dwell is over and the mount is the same. */
#include <errno.h>
#include <string.h>

#include "confirm.h"
#include "heal/cleanup.h"
#include "heal/time-util.h"

const char *disk_verdict_to_string(disk_verdict v) {
        static const char *const table[] = {
                [DISK_VERDICT_NONE] = "none",           [DISK_VERDICT_FIRST] = "first-sample",
                [DISK_VERDICT_WAITING] = "waiting",     [DISK_VERDICT_CONFIRMED] = "confirmed",
                [DISK_VERDICT_DISMISSED] = "dismissed",
        };

        return (unsigned)v < ELEMENTSOF(table) ? table[v] : NULL;
}

static json_t *sample_new(const disk_mount *m, uint64_t now_usec) {
        char dev[32];

        return json_pack("{s:s, s:I, s:s, s:I, s:I, s:I}", "mount", m->target, "mount_id",
                         (json_int_t)m->mnt_id, "devno", disk_dev_string(m->dev, dev), "time_usec",
                         (json_int_t)now_usec, "avail_bytes", (json_int_t)m->avail_bytes, "free_inodes",
                         (json_int_t)m->free_files);
}

/* The kept sample is of this very mount: same mount id and device. */
static bool same_mount(json_t *sample, const disk_mount *m) {
        char dev[32];
        json_t *id = json_object_get(sample, "mount_id");
        const char *devno = json_string_value(json_object_get(sample, "devno"));

        return json_is_integer(id) && (uint64_t)json_integer_value(id) == m->mnt_id && devno &&
               strcmp(devno, disk_dev_string(m->dev, dev)) == 0;
}

static int set_fact(json_t *facts, const char *key, json_t *v) {
        if (!v)
                return -ENOMEM;
        if (!facts) {
                json_decref(v);
                return 0;
        }
        return json_object_set_new(facts, key, v) < 0 ? -ENOMEM : 0;
}

/* Looks up the kept sample: >0 with *ret when there is one of this mount,
 * 0 when there is none usable (absent, corrupt, or of another mount: noted). */
static int load_sample(heal_state *samples, const disk_mount *m, json_t *facts, json_t **ret) {
        _cleanup_json_ json_t *s = NULL;
        int r;

        r = heal_state_read(samples, DISK_SAMPLES_NS, m->target, &s);
        if (r == -ENOENT)
                return 0;
        if (r == -EBADMSG)
                return set_fact(facts, "replaced_sample", json_string("the kept sample was corrupt"));
        if (r < 0)
                return r;
        if (!same_mount(s, m)) {
                r = set_fact(facts, "replaced_sample", json_deep_copy(s));
                return r < 0 ? r : 0;
        }
        *ret = TAKE_PTR(s);
        return 1;
}

int disk_confirm(heal_state *samples, const disk_mount *m, bool pressure, uint64_t dwell_usec,
                 bool requested, uint64_t now_usec, json_t *facts, disk_verdict *ret) {
        _cleanup_json_ json_t *kept = NULL, *fresh = NULL;
        uint64_t first = now_usec;
        int r;

        r = load_sample(samples, m, facts, &kept);
        if (r < 0)
                return r;
        if (!pressure) {
                if (r == 0) {
                        *ret = DISK_VERDICT_NONE;
                        return 0;
                }
                r = heal_state_remove(samples, DISK_SAMPLES_NS, m->target);
                if (r < 0)
                        return r;
                *ret = DISK_VERDICT_DISMISSED;
                return 0;
        }

        if (kept)
                first = (uint64_t)json_integer_value(json_object_get(kept, "time_usec"));
        else {
                fresh = sample_new(m, now_usec);
                if (!fresh)
                        return -ENOMEM;
                r = heal_state_write(samples, DISK_SAMPLES_NS, m->target, fresh);
                if (r < 0)
                        return r;
        }
        r = set_fact(facts, "first_sample_usec", json_integer((json_int_t)first));
        if (r >= 0)
                r = set_fact(facts, "dwell_s", json_integer((json_int_t)(dwell_usec / USEC_PER_SEC)));
        if (r < 0)
                return r;

        if (dwell_usec == 0 || requested || (kept && now_usec >= first && now_usec - first >= dwell_usec)) {
                r = set_fact(facts, "confirmed_by",
                             json_string(requested         ? "request"
                                         : dwell_usec == 0 ? "no dwell"
                                                           : "dwell"));
                if (r < 0)
                        return r;
                *ret = DISK_VERDICT_CONFIRMED;
                return 0;
        }
        *ret = kept ? DISK_VERDICT_WAITING : DISK_VERDICT_FIRST;
        return 0;
}

int disk_confirm_forget(heal_state *samples, const char *mount) {
        return heal_state_remove(samples, DISK_SAMPLES_NS, mount);
}
