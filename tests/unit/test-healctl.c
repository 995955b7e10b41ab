/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl's pure parts: --since parsing, grouping by incident, the shadow
 * report, the newest record of a target, enroll refusals, pending views, tables. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enroll-check.h"
#include "healctl.h"
#include "heal/cleanup.h"
#include "heal/pending.h"
#include "heal/policy.h"
#include "journal.h"
#include "pending-view.h"
#include "test-util.h"

#define SEC UINT64_C(1000000)
/* 2023-11-14 22:13:20 UTC */
#define NOW (UINT64_C(1700000000) * SEC)
/* 2023-11-14 00:00:00 UTC */
#define MIDNIGHT (UINT64_C(1699920000) * SEC)

static void test_parse_since(void) {
        uint64_t v = 0;

        ASSERT_EQ(parse_since("-1h", NOW, &v), 0);
        ASSERT_EQ(v, NOW - 3600 * SEC);
        ASSERT_EQ(parse_since("-30m", NOW, &v), 0);
        ASSERT_EQ(v, NOW - 1800 * SEC);
        ASSERT_EQ(parse_since("-45s", NOW, &v), 0);
        ASSERT_EQ(v, NOW - 45 * SEC);
        ASSERT_EQ(parse_since("-2days", NOW, &v), 0);
        ASSERT_EQ(v, NOW - 2 * 86400 * SEC);
        ASSERT_EQ(parse_since("-1w", NOW, &v), 0);
        ASSERT_EQ(v, NOW - 7 * 86400 * SEC);
        ASSERT_EQ(parse_since("-3hours", NOW, &v), 0);
        ASSERT_EQ(v, NOW - 3 * 3600 * SEC);
        ASSERT_EQ(parse_since("now", NOW, &v), 0);
        ASSERT_EQ(v, NOW);

        /* the process runs with TZ=UTC (main), so local midnight is UTC midnight */
        ASSERT_EQ(parse_since("today", NOW, &v), 0);
        ASSERT_EQ(v, MIDNIGHT);
        ASSERT_EQ(parse_since("yesterday", NOW, &v), 0);
        ASSERT_EQ(v, MIDNIGHT - 86400 * SEC);

        ASSERT_EQ(parse_since("2024-05-01", NOW, &v), 0);
        ASSERT_EQ(v, UINT64_C(1714521600) * SEC);
        ASSERT_EQ(parse_since("2024-05-01 12:00", NOW, &v), 0);
        ASSERT_EQ(v, UINT64_C(1714564800) * SEC);
        ASSERT_EQ(parse_since("2024-05-01T12:00:30", NOW, &v), 0);
        ASSERT_EQ(v, UINT64_C(1714564830) * SEC);
        ASSERT_EQ(parse_since("2024-05-01T12:00:30Z", NOW, &v), 0);
        ASSERT_EQ(v, UINT64_C(1714564830) * SEC);

        ASSERT_EQ(parse_since("@1700000000", NOW, &v), 0);
        ASSERT_EQ(v, NOW);
        ASSERT_EQ(parse_since("1700000000123456", NOW, &v), 0);
        ASSERT_EQ(v, UINT64_C(1700000000123456));

        /* a relative time before the epoch clamps to 0 rather than wrapping */
        ASSERT_EQ(parse_since("-100000w", 5 * SEC, &v), 0);
        ASSERT_EQ(v, 0);

        /* nothing is half-parsed: the value stays put on error */
        v = 42;
        ASSERT_EQ(parse_since("", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since(NULL, NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("-1x", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("-h", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("-1h5", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("-1hh", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("garbage", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("2024-05-01 junk", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("2024-13-01", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("@12x", NOW, &v), -EINVAL);
        ASSERT_EQ(parse_since("99999999999999999999999", NOW, &v), -EINVAL);
        ASSERT_EQ(v, 42);
}

/* An entry with borrowed-looking strings that are really copies (freed by audit_entries_free). */
static audit_entry entry(uint64_t usec, const char *event, const char *class, const char *target,
                         const char *incident) {
        audit_entry e = {
                .usec = usec,
                .event = event ? strdup(event) : NULL,
                .class = class ? strdup(class) : NULL,
                .target = target ? strdup(target) : NULL,
                .incident = incident ? strdup(incident) : NULL,
        };
        ASSERT_TRUE((!event || e.event) && (!class || e.class) && (!target || e.target) &&
                    (!incident || e.incident));
        return e;
}

static void test_group_by_incident(void) {
        audit_entry *e = calloc(7, sizeof(audit_entry));
        audit_group *g = NULL;
        size_t ng = 0;

        ASSERT_TRUE(e);
        e[0] = entry(NOW + 0, "detected", "worker-dead", "b.service", "BBBB");
        e[1] = entry(NOW + 1, "detected", "worker-dead", "a.service", "AAAA");
        e[2] = entry(NOW + 2, "acting", "worker-dead", "b.service", "BBBB");
        e[3] = entry(NOW + 3, "breaker-closed", "worker-dead", "a.service", NULL);
        e[4] = entry(NOW + 4, "verified", "worker-dead", "a.service", "AAAA");
        e[5] = entry(NOW + 5, "verified", "worker-dead", "b.service", "BBBB");
        e[6] = entry(NOW + 6, "approved", "worker-dead", "c.service", NULL);

        ASSERT_EQ(audit_group_by_incident(e, 7, &g, &ng), 4);
        ASSERT_EQ(ng, 4);
        /* in order of each group's first record, records in time order */
        ASSERT_STREQ(g[0].incident, "BBBB");
        ASSERT_EQ(g[0].n, 3);
        ASSERT_EQ(g[0].idx[0], 0);
        ASSERT_EQ(g[0].idx[1], 2);
        ASSERT_EQ(g[0].idx[2], 5);
        ASSERT_STREQ(g[1].incident, "AAAA");
        ASSERT_EQ(g[1].n, 2);
        ASSERT_EQ(g[1].idx[0], 1);
        ASSERT_EQ(g[1].idx[1], 4);
        /* records without an incident stand alone */
        ASSERT_TRUE(g[2].incident == NULL);
        ASSERT_EQ(g[2].n, 1);
        ASSERT_EQ(g[2].idx[0], 3);
        ASSERT_TRUE(g[3].incident == NULL);
        ASSERT_EQ(g[3].n, 1);
        ASSERT_EQ(g[3].idx[0], 6);
        audit_groups_free(g, ng);

        /* nothing in, nothing out */
        ASSERT_EQ(audit_group_by_incident(e, 0, &g, &ng), 0);
        ASSERT_EQ(ng, 0);
        audit_groups_free(g, ng);

        audit_entries_free(e, 7);
}

static void test_shadow_aggregate(void) {
        const size_t n = 16;
        audit_entry *e = calloc(n, sizeof(audit_entry));
        shadow_row *rows = NULL;
        size_t i = 0, nr = 0;

        ASSERT_TRUE(e);
        /* t1: 6 on day one (over the threshold of 5), 2 the next day */
        for (int k = 0; k < 6; k++)
                e[i++] = entry(MIDNIGHT + (uint64_t) k * 3600 * SEC, "would-act", "worker-dead",
                               "t1.service", NULL);
        for (int k = 0; k < 2; k++)
                e[i++] = entry(MIDNIGHT + 86400 * SEC + (uint64_t) k * SEC, "would-act", "worker-dead",
                               "t1.service", NULL);
        /* t2: exactly 5 in a day is not suspicious */
        for (int k = 0; k < 5; k++)
                e[i++] =
                        entry(MIDNIGHT + (uint64_t) k * SEC, "would-act", "worker-dead", "t2.service", NULL);
        /* other events and classes: an acting record is not counted */
        e[i++] = entry(MIDNIGHT, "acting", "worker-dead", "t2.service", NULL);
        e[i++] = entry(MIDNIGHT, "would-act", "disk-pressure", "/var", NULL);
        e[i++] = entry(MIDNIGHT, "skipped", "disk-pressure", "/var", NULL);
        ASSERT_EQ(i, n);

        ASSERT_EQ(shadow_aggregate(e, n, SHADOW_SUSPICIOUS_PER_DAY, &rows, &nr), 3);
        /* sorted by class, then target */
        ASSERT_STREQ(rows[0].class, "disk-pressure");
        ASSERT_STREQ(rows[0].target, "/var");
        ASSERT_EQ(rows[0].total, 1);
        ASSERT_TRUE(!rows[0].suspicious);

        ASSERT_STREQ(rows[1].target, "t1.service");
        ASSERT_EQ(rows[1].total, 8);
        ASSERT_EQ(rows[1].n_days, 2);
        ASSERT_STREQ(rows[1].days[0].day, "2023-11-14");
        ASSERT_EQ(rows[1].days[0].count, 6);
        ASSERT_STREQ(rows[1].days[1].day, "2023-11-15");
        ASSERT_EQ(rows[1].days[1].count, 2);
        ASSERT_EQ(rows[1].max_per_day, 6);
        ASSERT_TRUE(rows[1].suspicious);

        ASSERT_STREQ(rows[2].target, "t2.service");
        ASSERT_EQ(rows[2].total, 5);
        ASSERT_EQ(rows[2].n_days, 1);
        ASSERT_EQ(rows[2].max_per_day, 5);
        ASSERT_TRUE(!rows[2].suspicious);
        shadow_rows_free(rows, nr);

        audit_entries_free(e, n);
}

static void test_audit_last(void) {
        static const char *const actions[] = { "acting", "would-act", NULL };
        static const char *const outcomes[] = { "verified", "verify-failed", NULL };
        audit_entry *e = calloc(5, sizeof(audit_entry));

        ASSERT_TRUE(e);
        e[0] = entry(NOW + 0, "acting", "worker-dead", "a.service", "X");
        e[1] = entry(NOW + 1, "verify-failed", "worker-dead", "a.service", "X");
        e[2] = entry(NOW + 2, "acting", "worker-dead", "a.service", "Y");
        e[3] = entry(NOW + 3, "verified", "worker-dead", "b.service", "Z");
        e[4] = entry(NOW + 4, "acting", "other", "a.service", "W");

        ASSERT_EQ(audit_last(e, 5, "worker-dead", "a.service", actions), 2);
        ASSERT_EQ(audit_last(e, 5, "worker-dead", "a.service", outcomes), 1);
        ASSERT_EQ(audit_last(e, 5, "worker-dead", "b.service", outcomes), 3);
        ASSERT_EQ(audit_last(e, 5, "worker-dead", "b.service", actions), -1);
        ASSERT_EQ(audit_last(e, 5, "worker-dead", "c.service", actions), -1);
        audit_entries_free(e, 5);
}

static void test_enroll_check(void) {
        char *targets[] = { (char *) "*.service", NULL };
        char *exclude[] = { (char *) "heal-*", (char *) "secret-*", NULL };
        heal_class_policy cls = {
                .name = (char *) "worker-dead",
                .targets = targets,
                .exclude = exclude,
        };
        char *why = NULL, *name;

        ASSERT_EQ(enroll_check(&cls, "foo.service", &why), 1);
        ASSERT_TRUE(why == NULL);

        /* the policy's own exclusion, named in the message */
        ASSERT_EQ(enroll_check(&cls, "secret-db.service", &why), 0);
        ASSERT_TRUE(strstr(why, "excludes") && strstr(why, "secret-*"));
        free(why);
        why = NULL;
        /* not in targets */
        ASSERT_EQ(enroll_check(&cls, "foo.socket", &why), 0);
        ASSERT_TRUE(strstr(why, "does not target"));
        free(why);
        why = NULL;

        /* built-in refusals hold even when the policy would allow them, or has no class */
        ASSERT_EQ(enroll_check(&cls, "dbus.service", &why), 0);
        ASSERT_TRUE(strstr(why, "dbus.service"));
        free(why);
        why = NULL;
        ASSERT_EQ(enroll_check(NULL, "systemd-journald.service", &why), 0);
        ASSERT_TRUE(strstr(why, "systemd-*"));
        free(why);
        why = NULL;
        ASSERT_EQ(enroll_check(NULL, "heal-worker-reviver@foo.service", &why), 0);
        free(why);
        why = NULL;
        ASSERT_EQ(enroll_check(NULL, "foo.service", &why), 1);

        /* names that would escape a path */
        ASSERT_EQ(enroll_check(NULL, "../etc/x.service", &why), 0);
        free(why);
        why = NULL;

        name = enroll_unit_name("foo");
        ASSERT_STREQ(name, "foo.service");
        free(name);
        name = enroll_unit_name("foo.socket");
        ASSERT_STREQ(name, "foo.socket");
        free(name);
}

static void test_pending_view(void) {
        heal_pending p = {
                .tier = (char *) "approve",
                .status = HEAL_PENDING_WAITING,
                .idem_key = (char *) "worker-dead|foo.service|x",
                .created_usec = NOW,
                .expires_usec = NOW + 3600 * SEC,
        };
        char *s;

        ASSERT_STREQ(pending_view_status(&p, NOW), "waiting");
        s = pending_view_deadline(&p, NOW + 60 * SEC);
        ASSERT_STREQ(s, "expires in 59m 0s");
        free(s);
        ASSERT_STREQ(pending_view_status(&p, NOW + 3600 * SEC), "expired");
        s = pending_view_deadline(&p, NOW + 7200 * SEC);
        ASSERT_STREQ(s, "expired 1h 0m ago");
        free(s);
        ASSERT_TRUE(!pending_view_is_shadow(&p));

        p.status = HEAL_PENDING_APPROVED;
        ASSERT_STREQ(pending_view_status(&p, NOW + 7200 * SEC), "approved");
        s = pending_view_deadline(&p, NOW);
        ASSERT_STREQ(s, "-");
        free(s);

        p = (heal_pending){
                .tier = (char *) "delayed",
                .status = HEAL_PENDING_WAITING,
                .idem_key = (char *) "shadow|worker-dead|foo.service|x",
                .not_before_usec = NOW + 300 * SEC,
        };
        ASSERT_STREQ(pending_view_status(&p, NOW), "waiting");
        s = pending_view_deadline(&p, NOW);
        ASSERT_STREQ(s, "runs in 5m 0s");
        free(s);
        ASSERT_STREQ(pending_view_status(&p, NOW + 300 * SEC), "due");
        ASSERT_TRUE(pending_view_is_shadow(&p));
}

static void test_table(void) {
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        table *t = table_new((const char *const[]){ "A", "LONGER", "C", NULL });

        ASSERT_TRUE(f && t);
        ASSERT_OK(table_add_rowv(t, "xyz", NULL, "last"));
        ASSERT_OK(table_add_rowv(t, "1", "2", "3"));
        ASSERT_EQ(table_rows(t), 2);
        table_print(t, f);
        fclose(f);
        table_free(t);
        /* columns padded to the widest cell, NULL printed as "-", no trailing blanks */
        ASSERT_STREQ(out, "A    LONGER  C\n"
                          "xyz  -       last\n"
                          "1    2       3\n");
}

int main(void) {
        /* Day boundaries and ISO times are local: pin the zone. */
        setenv("TZ", "UTC", 1);
        tzset();

        test_parse_since();
        test_group_by_incident();
        test_shadow_aggregate();
        test_audit_last();
        test_enroll_check();
        test_pending_view();
        test_table();
        return 0;
}
