/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-reclaim's policy -> settings: the shipped defaults (sources in order,
 * all auto), operator sources (approve unless they say so), tiers raised to
 * the class's, the checks beyond the schema, and request files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "journal-vacuum.h"
#include "requests.h"
#include "sources.h"
#include "test-util.h"

static heal_policy *load(const char *text) {
        heal_policy_buffer b = {.name = "t.json", .data = text, .size = strlen(text)};
        _cleanup_free_ char *err = NULL;
        heal_policy *p = NULL;
        int r = heal_policy_load_buffers(&b, 1, &p, &err);

        if (r < 0)
                fprintf(stderr, "policy: %s\n", err ?: "?");
        ASSERT_OK(r);
        return p;
}

static void test_shipped_defaults(void) {
        static const char *const names[] = {"apt-cache", "coredumps", "rotated-logs", "tmp", "journal"};
        const char *root = getenv("SOURCE_ROOT");
        _cleanup_free_ char *dir = NULL;
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_(disk_settings_done) disk_settings s = {};
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ reclaim_source *rules = NULL;
        _cleanup_free_ size_t *idx = NULL;

        ASSERT_TRUE(root && *root);
        ASSERT_TRUE(asprintf(&dir, "%s/policy", root) >= 0);
        const char *dirs[] = {dir, NULL};
        ASSERT_OK(heal_policy_load(dirs, &p, &err));
        ASSERT_OK(disk_settings_from_policy(heal_policy_class(p, DISK_PRESSURE_CLASS),
                                            heal_policy_class(p, DISK_LEAKED_CLASS), &s, &err));

        ASSERT_EQ(s.thresholds.min_free_percent, 10);
        ASSERT_EQ(s.thresholds.target_free_percent, 15);
        ASSERT_EQ(s.thresholds.min_free_inodes_percent, 5);
        ASSERT_TRUE(s.mounts && !s.mounts[0]);
        ASSERT_TRUE(!s.include_loop && !s.include_removable);
        ASSERT_EQ(s.leak_threshold_bytes, UINT64_C(1) << 30);
        ASSERT_EQ(s.n_sources, ELEMENTSOF(names));
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ASSERT_STREQ(s.sources[i].name, names[i]);
                ASSERT_EQ(s.sources[i].tier, HEAL_TIER_AUTO);
        }
        ASSERT_STREQ(s.sources[0].root, "/var/cache/apt/archives");
        ASSERT_STREQ(s.sources[0].patterns[0], "*.deb");
        ASSERT_TRUE(s.sources[0].patterns[1] == NULL);
        ASSERT_EQ(s.sources[0].rule.min_age_s, 86400);
        ASSERT_STREQ(s.sources[2].rule.patterns[1], "*.[0-9]");
        ASSERT_TRUE(s.sources[3].patterns == NULL); /* /var/tmp: every regular file old enough */
        ASSERT_EQ(s.sources[3].rule.times, RECLAIM_TIME_ATIME | RECLAIM_TIME_MTIME | RECLAIM_TIME_CTIME);
        ASSERT_TRUE(s.sources[4].journal);
        ASSERT_TRUE(s.sources[4].root == NULL);

        /* The four file sources form the auto plan, in policy order. */
        ASSERT_EQ(disk_sources_for_tier(&s, HEAL_TIER_AUTO, HEAL_TIER_AUTO, &rules, &idx), 4);
        ASSERT_STREQ(rules[0].name, "apt-cache");
        ASSERT_STREQ(rules[3].name, "tmp");
        ASSERT_EQ(idx[3], 3);
        ASSERT_TRUE(disk_journal_for_tier(&s, HEAL_TIER_AUTO, HEAL_TIER_AUTO) == &s.sources[4]);
}

static void test_operator_sources(void) {
        _cleanup_(heal_policy_freep) heal_policy *p = load(
                "{\"version\": 1, \"classes\": {\"disk-pressure\": {\"tier\": \"auto\", "
                "\"min_free_percent\": 20,"
                " \"target_free_percent\": 30, \"mounts\": [\"/srv/*\"], \"include_loop\": true,"
                " \"max_bytes_per_run\": 1000, \"sources\": ["
                " {\"name\": \"cache\", \"root\": \"/srv/cache\", \"min_age_s\": 60, \"tier\": \"auto\", "
                "\"times\": [\"mtime\"], \"max_depth\": 2},"
                " {\"name\": \"exports\", \"root\": \"/srv/exports\", \"patterns\": [\"*.csv\"], "
                "\"min_age_s\": 3600},"
                " {\"name\": \"j\", \"journal_vacuum\": true, \"keep_bytes\": 5, \"vacuum_time_s\": 7}]},"
                " \"disk-leaked\": {\"leak_threshold_bytes\": 4096}}}");
        _cleanup_(disk_settings_done) disk_settings s = {};
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ reclaim_source *rules = NULL, *rules2 = NULL, *rules3 = NULL;
        _cleanup_free_ size_t *idx = NULL, *idx2 = NULL, *idx3 = NULL;

        ASSERT_OK(disk_settings_from_policy(heal_policy_class(p, DISK_PRESSURE_CLASS),
                                            heal_policy_class(p, DISK_LEAKED_CLASS), &s, &err));
        ASSERT_EQ(s.thresholds.min_free_percent, 20);
        ASSERT_EQ(s.thresholds.target_free_percent, 30);
        ASSERT_STREQ(s.mounts[0], "/srv/*");
        ASSERT_TRUE(s.include_loop);
        ASSERT_EQ(s.max_bytes, 1000);
        ASSERT_EQ(s.leak_threshold_bytes, 4096);
        ASSERT_EQ(s.n_sources, 3);
        ASSERT_EQ(s.sources[0].tier, HEAL_TIER_AUTO);
        ASSERT_EQ(s.sources[0].rule.times, RECLAIM_TIME_MTIME);
        ASSERT_EQ(s.sources[0].rule.max_depth, 2);
        /* An operator's source without a tier waits for approval. */
        ASSERT_EQ(s.sources[1].tier, HEAL_TIER_APPROVE);
        ASSERT_EQ(s.sources[1].rule.min_age_s, 3600);
        ASSERT_EQ(s.sources[2].keep_bytes, 5);
        ASSERT_EQ(s.sources[2].vacuum_time_s, 7);
        ASSERT_EQ(s.sources[2].tier, HEAL_TIER_APPROVE);

        ASSERT_EQ(disk_sources_for_tier(&s, HEAL_TIER_AUTO, HEAL_TIER_AUTO, &rules, &idx), 1);
        ASSERT_STREQ(rules[0].root, "/srv/cache");
        ASSERT_EQ(disk_sources_for_tier(&s, HEAL_TIER_AUTO, HEAL_TIER_APPROVE, &rules2, &idx2), 1);
        ASSERT_STREQ(rules2[0].name, "exports");
        ASSERT_EQ(idx2[0], 1);
        ASSERT_TRUE(disk_journal_for_tier(&s, HEAL_TIER_AUTO, HEAL_TIER_AUTO) == NULL);
        ASSERT_TRUE(disk_journal_for_tier(&s, HEAL_TIER_AUTO, HEAL_TIER_APPROVE) == &s.sources[2]);
        /* A class tier of approve raises every source to it: one plan. */
        ASSERT_EQ(disk_sources_for_tier(&s, HEAL_TIER_APPROVE, HEAL_TIER_APPROVE, &rules3, &idx3), 2);
}

static void expect_refused(const char *class_json, const char *want) {
        _cleanup_free_ char *text = NULL, *err = NULL;
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        disk_settings s = {};

        ASSERT_TRUE(asprintf(&text, "{\"version\": 1, \"classes\": {\"disk-pressure\": %s}}", class_json) >=
                    0);
        p = load(text);
        ASSERT_EQ(disk_settings_from_policy(heal_policy_class(p, DISK_PRESSURE_CLASS), NULL, &s, &err),
                  -EINVAL);
        if (!err || !strstr(err, want))
                fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err ?: "(null)", want);
        ASSERT_TRUE(err && strstr(err, want));
}

static void test_refused(void) {
        expect_refused("{\"min_free_percent\": 20, \"target_free_percent\": 20}",
                       "target_free_percent (20) must be above min_free_percent (20)");
        expect_refused("{\"min_free_inodes_percent\": 30}",
                       "target_free_inodes_percent (10) must be above min_free_inodes_percent (30)");
        expect_refused("{\"sources\": [{\"name\": \"x\", \"min_age_s\": 5}]}",
                       "sources[0] (x): root is required");
        expect_refused("{\"sources\": [{\"name\": \"a\", \"root\": \"/a\", \"min_age_s\": 5}, {\"name\": "
                       "\"y\", \"root\": \"/y\"}]}",
                       "sources[1] (y): min_age_s is required with a root");
        expect_refused("{\"sources\": [{\"name\": \"j\", \"root\": \"/var/log/journal\", "
                       "\"journal_vacuum\": true}]}",
                       "sources[0] (j): the journal source takes no root");
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ASSERT_TRUE(f);
        ASSERT_TRUE(fputs(text, f) >= 0);
        ASSERT_EQ(fclose(f), 0);
}

static void test_requests(void) {
        _cleanup_free_ char *dir = test_tmpdir(), *a = NULL, *b = NULL, *c = NULL, *d = NULL,
                            *missing = NULL;
        _cleanup_(disk_requests_done) disk_requests r = {}, none = {}, again = {};

        ASSERT_TRUE(asprintf(&missing, "%s/absent", dir) >= 0);
        ASSERT_EQ(disk_requests_read(missing, &none), 0);
        ASSERT_EQ(none.n_files, 0);

        ASSERT_TRUE(asprintf(&a, "%s/one", dir) >= 0);
        ASSERT_TRUE(asprintf(&b, "%s/two", dir) >= 0);
        ASSERT_TRUE(asprintf(&c, "%s/bad", dir) >= 0);
        ASSERT_TRUE(asprintf(&d, "%s/.#tmp", dir) >= 0);
        write_text(a, "{\"mount\": \"/srv\", \"requested_by\": \"root\"}");
        write_text(b, "{\"mount\": \"relative\"}");
        write_text(c, "not json");
        write_text(d, "{\"mount\": null}");

        /* One valid request; the malformed ones are read (to be removed) but ask nothing;
         * the writer's temp file is not a request yet. */
        ASSERT_EQ(disk_requests_read(dir, &r), 1);
        ASSERT_EQ(r.n_files, 3);
        ASSERT_TRUE(!r.all);
        ASSERT_TRUE(disk_requests_cover(&r, "/srv"));
        ASSERT_TRUE(!disk_requests_cover(&r, "/var"));
        ASSERT_OK(disk_requests_consume(&r));
        ASSERT_TRUE(access(a, F_OK) < 0 && access(b, F_OK) < 0 && access(c, F_OK) < 0);
        ASSERT_TRUE(access(d, F_OK) == 0);

        write_text(a, "{\"mount\": null}");
        ASSERT_EQ(disk_requests_read(dir, &again), 1);
        ASSERT_TRUE(again.all);
        ASSERT_TRUE(disk_requests_cover(&again, "/anything"));
        test_rm_rf(dir);
}

/* The journal gives what is still needed, never below what it must keep. */
static void test_journal_vacuum_size(void) {
        ASSERT_EQ(disk_journal_vacuum_size(1000, 300, 100), 700);
        ASSERT_EQ(disk_journal_vacuum_size(1000, 950, 100), 100);
        ASSERT_EQ(disk_journal_vacuum_size(1000, 5000, 0), 1); /* everything archived, still "something" */
        ASSERT_EQ(disk_journal_vacuum_size(100, 50, 100), 0); /* nothing above the floor */
        ASSERT_EQ(disk_journal_vacuum_size(1000, 0, 100), 0);  /* nothing needed */
}

int main(void) {
        test_shipped_defaults();
        test_operator_sources();
        test_refused();
        test_requests();
        test_journal_vacuum_size();
        return 0;
}
