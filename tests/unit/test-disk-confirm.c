/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-reclaim's confirm: the dwell with explicit times on a fixture run dir,
 * the same-mount rule (mount id and device), requests, and forgetting. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "confirm.h"
#include "heal/cleanup.h"
#include "test-util.h"

#define SEC UINT64_C(1000000)
#define T0 (UINT64_C(1700000000) * SEC)

typedef struct fixture {
        char *dir;
        heal_state *s;
} fixture;

static void fixture_up(fixture *f) {
        f->dir = test_tmpdir();
        ASSERT_OK(heal_state_open(f->dir, &f->s));
}

static void fixture_down(fixture *f) {
        heal_state_free(f->s);
        test_rm_rf(f->dir);
        free(f->dir);
}

static disk_verdict judge(fixture *f, const disk_mount *m, bool pressure, uint64_t dwell, bool requested,
                          uint64_t now, json_t **ret_facts) {
        json_t *facts = json_object();
        disk_verdict v = -1;

        ASSERT_TRUE(facts);
        ASSERT_OK(disk_confirm(f->s, m, pressure, dwell, requested, now, facts, &v));
        if (ret_facts)
                *ret_facts = facts;
        else
                json_decref(facts);
        return v;
}

static bool has_sample(fixture *f, const char *mount) {
        _cleanup_json_ json_t *d = NULL;
        return heal_state_read(f->s, DISK_SAMPLES_NS, mount, &d) == 0;
}

static int64_t fact_int(json_t *facts, const char *key) {
        return json_integer_value(json_object_get(facts, key));
}

static void test_dwell(void) {
        _cleanup_(fixture_down) fixture f = {};
        disk_mount m = {.target = "/var", .mnt_id = 42, .dev = makedev(8, 1)};
        json_t *facts = NULL;

        fixture_up(&f);
        ASSERT_EQ(judge(&f, &m, false, 60 * SEC, false, T0, NULL), DISK_VERDICT_NONE);
        ASSERT_TRUE(!has_sample(&f, "/var"));

        /* First sample: kept, not acted on. */
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0, &facts), DISK_VERDICT_FIRST);
        ASSERT_EQ(fact_int(facts, "first_sample_usec"), (int64_t)T0);
        ASSERT_TRUE(!json_object_get(facts, "confirmed_by"));
        json_decref(facts);
        ASSERT_TRUE(has_sample(&f, "/var"));

        /* Still under pressure but the dwell is not over; the first sample stays the first. */
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 59 * SEC, &facts), DISK_VERDICT_WAITING);
        ASSERT_EQ(fact_int(facts, "first_sample_usec"), (int64_t)T0);
        json_decref(facts);

        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 60 * SEC, &facts), DISK_VERDICT_CONFIRMED);
        ASSERT_STREQ(json_string_value(json_object_get(facts, "confirmed_by")), "dwell");
        ASSERT_EQ(fact_int(facts, "dwell_s"), 60);
        json_decref(facts);
        /* A confirmed episode keeps its sample (its time names the incident). */
        ASSERT_TRUE(has_sample(&f, "/var"));
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 400 * SEC, NULL), DISK_VERDICT_CONFIRMED);

        /* Pressure gone: dismissed, and the next pressure starts over. */
        ASSERT_EQ(judge(&f, &m, false, 60 * SEC, false, T0 + 500 * SEC, NULL), DISK_VERDICT_DISMISSED);
        ASSERT_TRUE(!has_sample(&f, "/var"));
        ASSERT_EQ(judge(&f, &m, false, 60 * SEC, false, T0 + 510 * SEC, NULL), DISK_VERDICT_NONE);
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 600 * SEC, NULL), DISK_VERDICT_FIRST);
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 630 * SEC, NULL), DISK_VERDICT_WAITING);

        /* Mounts are independent. */
        disk_mount other = {.target = "/srv", .mnt_id = 50, .dev = makedev(8, 3)};
        ASSERT_EQ(judge(&f, &other, true, 60 * SEC, false, T0 + 660 * SEC, NULL), DISK_VERDICT_FIRST);
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 660 * SEC, NULL), DISK_VERDICT_CONFIRMED);
}

static void test_same_mount(void) {
        _cleanup_(fixture_down) fixture f = {};
        disk_mount m = {.target = "/data", .mnt_id = 42, .dev = makedev(8, 1)};
        json_t *facts = NULL;

        fixture_up(&f);
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0, NULL), DISK_VERDICT_FIRST);

        /* Remounted (new mount id) during the dwell: its pressure is a new first sample. */
        m.mnt_id = 43;
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 120 * SEC, &facts), DISK_VERDICT_FIRST);
        ASSERT_EQ(json_integer_value(json_object_get(json_object_get(facts, "replaced_sample"), "mount_id")),
                  42);
        ASSERT_EQ(fact_int(facts, "first_sample_usec"), (int64_t)(T0 + 120 * SEC));
        json_decref(facts);

        /* Another disk at the same point, same mount id by chance: also new. */
        m.dev = makedev(8, 17);
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 240 * SEC, NULL), DISK_VERDICT_FIRST);
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 300 * SEC, NULL), DISK_VERDICT_CONFIRMED);
}

static void test_request_and_no_dwell(void) {
        _cleanup_(fixture_down) fixture f = {};
        disk_mount m = {.target = "/var", .mnt_id = 42, .dev = makedev(8, 1)};
        json_t *facts = NULL;

        fixture_up(&f);
        /* A request is the independent second signal: no waiting, but the sample is kept. */
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, true, T0, &facts), DISK_VERDICT_CONFIRMED);
        ASSERT_STREQ(json_string_value(json_object_get(facts, "confirmed_by")), "request");
        json_decref(facts);
        ASSERT_TRUE(has_sample(&f, "/var"));
        /* A request without pressure confirms nothing. */
        ASSERT_EQ(judge(&f, &m, false, 60 * SEC, true, T0 + SEC, NULL), DISK_VERDICT_DISMISSED);

        ASSERT_EQ(judge(&f, &m, true, 0, false, T0 + 2 * SEC, &facts), DISK_VERDICT_CONFIRMED);
        ASSERT_STREQ(json_string_value(json_object_get(facts, "confirmed_by")), "no dwell");
        json_decref(facts);

        ASSERT_OK(disk_confirm_forget(f.s, "/var"));
        ASSERT_TRUE(!has_sample(&f, "/var"));
        ASSERT_OK(disk_confirm_forget(f.s, "/var"));
}

static void test_corrupt_sample(void) {
        _cleanup_(fixture_down) fixture f = {};
        _cleanup_free_ char *path = NULL;
        disk_mount m = {.target = "/var", .mnt_id = 42, .dev = makedev(8, 1)};
        json_t *facts = NULL;
        int fd;

        fixture_up(&f);
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0, NULL), DISK_VERDICT_FIRST);
        ASSERT_TRUE(asprintf(&path, "%s/%s/%%2Fvar", f.dir, DISK_SAMPLES_NS) >= 0);
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, "{garbage", 8), 8);
        close(fd);
        /* A corrupt sample cannot vouch for a dwell: start over. */
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 120 * SEC, &facts), DISK_VERDICT_FIRST);
        ASSERT_TRUE(json_is_string(json_object_get(facts, "replaced_sample")));
        json_decref(facts);
        ASSERT_EQ(judge(&f, &m, true, 60 * SEC, false, T0 + 180 * SEC, NULL), DISK_VERDICT_CONFIRMED);
}

int main(void) {
        test_dwell();
        test_same_mount();
        test_request_and_no_dwell();
        test_corrupt_sample();
        return 0;
}
