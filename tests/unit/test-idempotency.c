/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libheal idempotency: key format and time buckets, claim/settle semantics,
 * expiry, corrupt claims, and 16 processes racing for one incident. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/idempotency.h"
#include "heal/state.h"
#include "test-util.h"

#define SEC UINT64_C(1000000)

static void test_key(void) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL, *f = NULL;
        char *x = NULL;
        uint64_t bucket = 300 * SEC;
        uint64_t t0 = UINT64_C(1699999800) * SEC; /* a multiple of 300 s */

        ASSERT_OK(heal_idem_key("worker-dead", "foo@1.service", "3f2a9c", t0 + 17, bucket, &a));
        ASSERT_STREQ(a, "worker-dead|foo@1.service|3f2a9c");

        /* No incident: bucketed by time, the bucket's start in µs. */
        ASSERT_OK(heal_idem_key("disk-pressure", "/var", NULL, t0 + 1, bucket, &b));
        ASSERT_STREQ(b, "disk-pressure|/var|t1699999800000000");
        ASSERT_OK(heal_idem_key("disk-pressure", "/var", "", t0 + bucket - 1, bucket, &c));
        ASSERT_STREQ(b, c); /* same bucket, and "" means no incident */
        ASSERT_OK(heal_idem_key("disk-pressure", "/var", NULL, t0 + bucket, bucket, &d));
        ASSERT_STREQ(d, "disk-pressure|/var|t1700000100000000");
        ASSERT_OK(heal_idem_key("disk-pressure", "/var", NULL, t0 - 1, bucket, &e));
        ASSERT_STREQ(e, "disk-pressure|/var|t1699999500000000");
        /* With an incident the bucket width does not matter. */
        ASSERT_OK(heal_idem_key("c", "t", "i", 5, 0, &f));
        ASSERT_STREQ(f, "c|t|i");

        ASSERT_EQ(heal_idem_key(NULL, "t", "i", 0, 1, &x), -EINVAL);
        ASSERT_EQ(heal_idem_key("", "t", "i", 0, 1, &x), -EINVAL);
        ASSERT_EQ(heal_idem_key("c", NULL, "i", 0, 1, &x), -EINVAL);
        ASSERT_EQ(heal_idem_key("c", "", "i", 0, 1, &x), -EINVAL);
        ASSERT_EQ(heal_idem_key("c|d", "t", "i", 0, 1, &x), -EINVAL);
        ASSERT_EQ(heal_idem_key("c", "t|u", "i", 0, 1, &x), -EINVAL);
        ASSERT_EQ(heal_idem_key("c", "t", NULL, 0, 0, &x), -EINVAL);
        ASSERT_TRUE(!x);
}

static void expect_begin(heal_state *s, const char *key, uint64_t now, uint64_t ttl, int want,
                         heal_idem_status want_status) {
        heal_idem_status st = (heal_idem_status) -1;
        int r = heal_idem_begin(s, key, now, ttl, &st);
        if (r != want || st != want_status) {
                fprintf(stderr, "begin(%s, %llu): got %d/%d, want %d/%d\n", key,
                        (unsigned long long) now, r, (int) st, want, (int) want_status);
                abort();
        }
}

static void expect_peek(heal_state *s, const char *key, uint64_t now, heal_idem_status want) {
        heal_idem_status st = (heal_idem_status) -1;
        ASSERT_OK(heal_idem_peek(s, key, now, &st));
        ASSERT_EQ(st, want);
}

static void test_semantics(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        const uint64_t ttl = 300 * SEC, t = 1000 * SEC;

        ASSERT_OK(heal_state_open(dir, &s));

        /* Unknown: new, and peeking does not claim it. */
        expect_peek(s, "k1", t, HEAL_IDEM_NEW);
        expect_peek(s, "k1", t, HEAL_IDEM_NEW);

        /* The first begin owns it; while in flight nobody else does. */
        expect_begin(s, "k1", t, ttl, 1, HEAL_IDEM_NEW);
        expect_peek(s, "k1", t + 1, HEAL_IDEM_IN_FLIGHT);
        expect_begin(s, "k1", t + 1, ttl, 0, HEAL_IDEM_IN_FLIGHT);
        expect_begin(s, "k1", t + ttl - 1, ttl, 0, HEAL_IDEM_IN_FLIGHT);
        /* Other incidents are independent. */
        expect_begin(s, "k2", t, ttl, 1, HEAL_IDEM_NEW);

        /* Verified: done blocks every later trigger until it expires. */
        ASSERT_OK(heal_idem_finish(s, "k1", true, t + 10 * SEC, ttl));
        expect_peek(s, "k1", t + 11 * SEC, HEAL_IDEM_DONE);
        expect_begin(s, "k1", t + 11 * SEC, ttl, 0, HEAL_IDEM_DONE);
        expect_begin(s, "k1", t + 10 * SEC + ttl - 1, ttl, 0, HEAL_IDEM_DONE);
        expect_peek(s, "k1", t + 10 * SEC + ttl, HEAL_IDEM_NEW);
        /* Expired done counts as new: the next trigger owns it again. */
        expect_begin(s, "k1", t + 10 * SEC + ttl, ttl, 1, HEAL_IDEM_NEW);

        /* Not verified: released, so a later trigger may try again. */
        ASSERT_OK(heal_idem_finish(s, "k2", false, t + 5 * SEC, ttl));
        expect_peek(s, "k2", t + 6 * SEC, HEAL_IDEM_NEW);
        expect_begin(s, "k2", t + 6 * SEC, ttl, 1, HEAL_IDEM_NEW);

        /* An in-flight claim older than ttl was abandoned (the owner died): reclaimable. */
        expect_begin(s, "k3", t, ttl, 1, HEAL_IDEM_NEW);
        expect_peek(s, "k3", t + ttl - 1, HEAL_IDEM_IN_FLIGHT);
        expect_peek(s, "k3", t + ttl, HEAL_IDEM_NEW);
        expect_begin(s, "k3", t + ttl, ttl, 1, HEAL_IDEM_NEW);
        expect_begin(s, "k3", t + ttl + 1, ttl, 0, HEAL_IDEM_IN_FLIGHT);
        /* A shorter ttl (policy changed) frees it sooner. */
        expect_begin(s, "k3", t + ttl + 2 * SEC, SEC, 1, HEAL_IDEM_NEW);

        /* The claim lives in the state dir, so a new handle (a new run) sees it. */
        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        expect_begin(s, "k2", t + 7 * SEC, ttl, 0, HEAL_IDEM_IN_FLIGHT);

        /* A claim that is not one fails closed instead of acting. */
        _cleanup_json_ json_t *bogus = json_pack("{s:s, s:i, s:i}", "state", "maybe", "since", 1,
                                                 "until", 2);
        _cleanup_json_ json_t *partial = json_pack("{s:s}", "state", "done");
        heal_idem_status st;
        ASSERT_OK(heal_state_write(s, "idem", "k4", bogus));
        ASSERT_EQ(heal_idem_begin(s, "k4", t, ttl, &st), -EBADMSG);
        ASSERT_EQ(heal_idem_peek(s, "k4", t, &st), -EBADMSG);
        ASSERT_OK(heal_state_write(s, "idem", "k5", partial));
        ASSERT_EQ(heal_idem_begin(s, "k5", t, ttl, &st), -EBADMSG);
        /* ... and was not overwritten. */
        _cleanup_json_ json_t *still = NULL;
        ASSERT_OK(heal_state_read(s, "idem", "k4", &still));
        ASSERT_TRUE(json_equal(still, bogus));
}

/* Each child opens its own handle, as separate helper runs would. */
static _Noreturn void racer(const char *dir, const char *key, int start_fd) {
        heal_state *s = NULL;
        heal_idem_status st;
        char c;

        if (heal_state_open(dir, &s) < 0)
                _exit(10);
        /* Everyone starts together, when the parent closes the pipe. */
        (void) !read(start_fd, &c, 1);
        int r = heal_idem_begin(s, key, 1000 * SEC, 60 * SEC, &st);
        heal_state_free(s);
        if (r < 0)
                _exit(11);
        if (r > 0)
                _exit(st == HEAL_IDEM_NEW ? 1 : 12);
        _exit(st == HEAL_IDEM_IN_FLIGHT ? 0 : 13);
}

static void test_race(const char *dir) {
        enum { RACERS = 16, ROUNDS = 10 };

        for (int round = 0; round < ROUNDS; round++) {
                char key[64];
                pid_t pids[RACERS];
                int go[2], winners = 0;

                snprintf(key, sizeof(key), "worker-dead|race@%d.service|inc", round);
                ASSERT_OK(pipe2(go, O_CLOEXEC));
                for (int i = 0; i < RACERS; i++) {
                        pids[i] = fork();
                        ASSERT_TRUE(pids[i] >= 0);
                        if (pids[i] == 0) {
                                close(go[1]);
                                racer(dir, key, go[0]);
                        }
                }
                close(go[0]);
                close(go[1]);
                for (int i = 0; i < RACERS; i++) {
                        int st;
                        ASSERT_EQ(waitpid(pids[i], &st, 0), pids[i]);
                        ASSERT_TRUE(WIFEXITED(st));
                        int code = WEXITSTATUS(st);
                        if (code > 1)
                                fprintf(stderr, "racer %d: exit %d\n", i, code);
                        ASSERT_TRUE(code <= 1);
                        winners += code;
                }
                ASSERT_EQ(winners, 1);
        }
}

int main(void) {
        _cleanup_free_ char *tmp = test_tmpdir();
        _cleanup_free_ char *d1 = NULL, *d2 = NULL;

        ASSERT_TRUE(asprintf(&d1, "%s/semantics", tmp) > 0);
        ASSERT_TRUE(asprintf(&d2, "%s/race", tmp) > 0);

        test_key();
        test_semantics(d1);
        test_race(d2);

        test_rm_rf(tmp);
        return 0;
}
