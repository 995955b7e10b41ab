/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Policy -> settings: the disk classes' keys, and the sources in policy order
 * with the checks the schema cannot make. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/json-util.h"
#include "sources.h"

static void disk_source_done(disk_source *s) {
        free(s->name);
        free(s->root);
        strv_free(s->patterns);
        *s = (disk_source){};
}

void disk_settings_done(disk_settings *s) {
        strv_free(s->mounts);
        for (size_t i = 0; i < s->n_sources; i++)
                disk_source_done(&s->sources[i]);
        free(s->sources);
        *s = (disk_settings){};
}

static int invalid(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int invalid(char **ret_error, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(ret_error, fmt, ap);
        va_end(ap);
        if (r < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

/* A JSON array of strings as a NULL-terminated strv; NULL for null/absent. */
static int strv_from_json(json_t *a, char ***ret) {
        if (!json_is_array(a)) {
                *ret = NULL;
                return 0;
        }
        return heal_json_to_strv(a, ret);
}

static uint64_t get_u64(json_t *o, const char *key, uint64_t dflt) {
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : dflt;
}

static bool get_bool(json_t *o, const char *key) {
        return json_is_true(json_object_get(o, key));
}

static unsigned times_mask(json_t *a) {
        static const struct {
                const char *name;
                unsigned bit;
        } table[] = {
                {"atime", RECLAIM_TIME_ATIME},
                {"mtime", RECLAIM_TIME_MTIME},
                {"ctime", RECLAIM_TIME_CTIME},
                {"btime", RECLAIM_TIME_BTIME},
        };
        unsigned mask = 0;
        size_t i;
        json_t *e;

        json_array_foreach(a, i, e) for (size_t k = 0; k < ELEMENTSOF(table);
                                         k++) if (json_is_string(e) &&
                                                  strcmp(json_string_value(e), table[k].name) == 0) mask |=
                table[k].bit;
        return mask;
}

static int source_from_json(json_t *o, size_t idx, disk_source *ret, char **ret_error) {
        _cleanup_(disk_source_done) disk_source s = {};
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *root = json_string_value(json_object_get(o, "root"));
        json_t *age = json_object_get(o, "min_age_s");
        int r;

        if (!name)
                return invalid(ret_error, "sources[%zu]: no name", idx);
        s.journal = get_bool(o, "journal_vacuum");
        if (s.journal && root)
                return invalid(ret_error, "sources[%zu] (%s): the journal source takes no root", idx, name);
        if (!s.journal && !root)
                return invalid(ret_error, "sources[%zu] (%s): root is required (or journal_vacuum)", idx,
                               name);
        if (!s.journal && !json_is_integer(age))
                return invalid(ret_error, "sources[%zu] (%s): min_age_s is required with a root", idx, name);
        r = heal_tier_from_string(json_string_value(json_object_get(o, "tier")) ?: "approve");
        if (r < 0)
                return invalid(ret_error, "sources[%zu] (%s): unknown tier", idx, name);
        s.tier = (heal_tier)r;
        s.name = strdup(name);
        s.root = root ? strdup(root) : NULL;
        if (!s.name || (root && !s.root))
                return -ENOMEM;
        r = strv_from_json(json_object_get(o, "patterns"), &s.patterns);
        if (r < 0)
                return r;
        s.keep_bytes = get_u64(o, "keep_bytes", 64ULL << 20);
        s.vacuum_time_s = get_u64(o, "vacuum_time_s", 0);
        s.rule = (reclaim_source){
                .name = s.name,
                .root = s.root,
                .patterns = s.patterns,
                .min_age_s = get_u64(o, "min_age_s", 0),
                .times = json_is_array(json_object_get(o, "times")) ? times_mask(json_object_get(o, "times"))
                                                                    : RECLAIM_TIME_MTIME,
                .max_depth = (unsigned)get_u64(o, "max_depth", 0),
        };
        *ret = s;
        s = (disk_source){};
        return 0;
}

static int read_thresholds(json_t *c, disk_thresholds *t, char **ret_error) {
        *t = (disk_thresholds){
                .min_free_percent = (unsigned)get_u64(c, "min_free_percent", 10),
                .target_free_percent = (unsigned)get_u64(c, "target_free_percent", 15),
                .min_free_inodes_percent = (unsigned)get_u64(c, "min_free_inodes_percent", 5),
                .target_free_inodes_percent = (unsigned)get_u64(c, "target_free_inodes_percent", 10),
        };
        /* A target at or below the threshold would act and still be under pressure. */
        if (t->target_free_percent <= t->min_free_percent)
                return invalid(ret_error, "target_free_percent (%u) must be above min_free_percent (%u)",
                               t->target_free_percent, t->min_free_percent);
        if (t->target_free_inodes_percent <= t->min_free_inodes_percent)
                return invalid(ret_error,
                               "target_free_inodes_percent (%u) must be above min_free_inodes_percent (%u)",
                               t->target_free_inodes_percent, t->min_free_inodes_percent);
        return 0;
}

int disk_settings_from_policy(const heal_class_policy *pressure, const heal_class_policy *leaked,
                              disk_settings *ret, char **ret_error) {
        _cleanup_(disk_settings_done) disk_settings s = {};
        json_t *c = pressure ? pressure->json : NULL, *srcs, *e;
        size_t i;
        int r;

        s.leak_threshold_bytes =
                leaked ? get_u64(leaked->json, "leak_threshold_bytes", 1ULL << 30) : 1ULL << 30;
        r = read_thresholds(c, &s.thresholds, ret_error);
        if (r < 0)
                return r;
        r = strv_from_json(json_object_get(c, "mounts"), &s.mounts);
        if (r < 0)
                return r;
        s.max_bytes = get_u64(c, "max_bytes_per_run", 16ULL << 30);
        s.max_files = get_u64(c, "max_files_per_run", 100000);
        s.workers = (unsigned) get_u64(c, "workers", 0); /* the schema bounds it */
        s.include_removable = get_bool(c, "include_removable");
        s.include_loop = get_bool(c, "include_loop");

        srcs = json_object_get(c, "sources");
        s.sources = calloc(json_array_size(srcs) ?: 1, sizeof(*s.sources));
        if (!s.sources)
                return -ENOMEM;
        json_array_foreach(srcs, i, e) {
                r = source_from_json(e, i, &s.sources[i], ret_error);
                if (r < 0)
                        return r;
                s.n_sources++;
        }
        *ret = s;
        s = (disk_settings){};
        return 0;
}

int disk_sources_for_tier(const disk_settings *s, heal_tier class_tier, heal_tier tier, reclaim_source **ret,
                          size_t **ret_idx) {
        _cleanup_free_ reclaim_source *l = calloc(s->n_sources ?: 1, sizeof(*l));
        _cleanup_free_ size_t *idx = calloc(s->n_sources ?: 1, sizeof(*idx));
        size_t n = 0;

        if (!l || !idx)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_sources; i++) {
                if (s->sources[i].journal || disk_tier_max(s->sources[i].tier, class_tier) != tier)
                        continue;
                idx[n] = i;
                l[n++] = s->sources[i].rule;
        }
        *ret = TAKE_PTR(l);
        *ret_idx = TAKE_PTR(idx);
        return (int)n;
}

const disk_source *disk_journal_for_tier(const disk_settings *s, heal_tier class_tier, heal_tier tier) {
        for (size_t i = 0; i < s->n_sources; i++)
                if (s->sources[i].journal && disk_tier_max(s->sources[i].tier, class_tier) == tier)
                        return &s->sources[i];
        return NULL;
}
