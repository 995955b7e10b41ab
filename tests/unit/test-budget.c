/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Token buckets: exact refill math, clock jumps, persistence, all-or-nothing
 * takes, fail-closed on corrupt records, and racing processes. */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heal/budget.h"
#include "heal/cleanup.h"
#include "test-util.h"

#define SEC UINT64_C(1000000)
#define HOUR (3600 * SEC)
#define YEAR (31536000 * SEC)
/* 2024-01-01, a realistic wall clock. */
#define T0 (UINT64_C(1704067200) * SEC)

static heal_bucket empty_at(uint64_t now) {
        return (heal_bucket) { .level = 0, .stamp_usec = now };
}

static void test_refill_exact(void) {
        const heal_budget_spec s3 = { .actions = 3, .per_s = 600 };
        heal_bucket b = {};

        /* A fresh bucket is full. */
        heal_bucket_refill(&b, &s3, T0);
        ASSERT_EQ(b.level, 3 * HEAL_TOKEN);
        ASSERT_EQ(b.stamp_usec, T0);

        /* 3 per 600 s: one token every 200 s, to the microsecond. */
        b = empty_at(T0);
        ASSERT_EQ(heal_bucket_tokens(&b, &s3, T0 + 200 * SEC - 1), 0);
        ASSERT_EQ(heal_bucket_tokens(&b, &s3, T0 + 200 * SEC), 1);
        ASSERT_EQ(heal_bucket_tokens(&b, &s3, T0 + 400 * SEC - 1), 1);
        ASSERT_EQ(heal_bucket_tokens(&b, &s3, T0 + 400 * SEC), 2);
        ASSERT_EQ(heal_bucket_tokens(&b, &s3, T0 + 600 * SEC), 3);
        ASSERT_EQ(heal_bucket_tokens(&b, &s3, T0 + 10 * HOUR), 3);
        /* tokens() does not touch the bucket. */
        ASSERT_EQ(b.level, 0);
        ASSERT_EQ(b.stamp_usec, T0);

        heal_bucket_refill(&b, &s3, T0 + 200 * SEC);
        ASSERT_EQ(b.level, HEAL_TOKEN);
        heal_bucket_refill(&b, &s3, T0 + 10 * HOUR);
        ASSERT_EQ(b.level, 3 * HEAL_TOKEN);

        /* Many small refills lose nothing: refilling at +1 usec and then at
         * +200 s gives exactly one token, as a single refill would. */
        b = empty_at(T0);
        heal_bucket_refill(&b, &s3, T0 + 1);
        ASSERT_EQ(b.level, 0);
        heal_bucket_refill(&b, &s3, T0 + 200 * SEC);
        ASSERT_EQ(b.level, HEAL_TOKEN);

        /* ... and 600 refills one second apart give exactly 3 tokens. */
        b = empty_at(T0);
        for (uint64_t t = 1; t <= 600; t++)
                heal_bucket_refill(&b, &s3, T0 + t * SEC);
        ASSERT_EQ(b.level, 3 * HEAL_TOKEN);

        /* 7 per 3 s: fractions are floored, in micro-tokens. */
        const heal_budget_spec s7 = { .actions = 7, .per_s = 3 };
        b = empty_at(T0);
        heal_bucket_refill(&b, &s7, T0 + SEC);
        ASSERT_EQ(b.level, 2333333);
        ASSERT_EQ(heal_bucket_tokens(&b, &s7, T0 + SEC), 2);
        heal_bucket_refill(&b, &s7, T0 + 3 * SEC);
        ASSERT_EQ(b.level, 7 * HEAL_TOKEN);

        /* 1 per second: half a second is half a token. */
        const heal_budget_spec s1 = { .actions = 1, .per_s = 1 };
        b = empty_at(T0);
        heal_bucket_refill(&b, &s1, T0 + SEC / 2);
        ASSERT_EQ(b.level, HEAL_TOKEN / 2);
        ASSERT_EQ(heal_bucket_tokens(&b, &s1, T0 + SEC / 2), 0);
        ASSERT_EQ(heal_bucket_tokens(&b, &s1, T0 + SEC), 1);

        /* The fastest allowed rate: 100000 per second is a token per 10 usec. */
        const heal_budget_spec fast = { .actions = 100000, .per_s = 1 };
        b = empty_at(T0);
        ASSERT_EQ(heal_bucket_tokens(&b, &fast, T0 + 9), 0);
        ASSERT_EQ(heal_bucket_tokens(&b, &fast, T0 + 10), 1);
        ASSERT_EQ(heal_bucket_tokens(&b, &fast, T0 + 12345), 1234);

        /* The slowest: 10 per year is one per 36.5 days. */
        const heal_budget_spec slow = { .actions = 10, .per_s = 31536000 };
        b = empty_at(T0);
        ASSERT_EQ(heal_bucket_tokens(&b, &slow, T0 + 3153600 * SEC - 1), 0);
        ASSERT_EQ(heal_bucket_tokens(&b, &slow, T0 + 3153600 * SEC), 1);

        /* Less than a period, but more than the room left: capped at the burst. */
        b = (heal_bucket) { .level = 2500000, .stamp_usec = T0 };
        heal_bucket_refill(&b, &s3, T0 + 300 * SEC);
        ASSERT_EQ(b.level, 3 * HEAL_TOKEN);
        ASSERT_EQ(b.stamp_usec, T0 + 300 * SEC);
        ASSERT_EQ(heal_bucket_tokens(&(heal_bucket) { .level = 2500000, .stamp_usec = T0 }, &s3,
                                     T0 + 599 * SEC),
                  3);

        /* A policy that shrinks the burst caps a fuller bucket at once. */
        b = (heal_bucket) { .level = 6 * HEAL_TOKEN, .stamp_usec = T0 };
        heal_bucket_refill(&b, &s3, T0);
        ASSERT_EQ(b.level, 3 * HEAL_TOKEN);
}

static void test_clock_forward(void) {
        const heal_budget_spec s3 = { .actions = 3, .per_s = 600 };
        const heal_budget_spec max = { .actions = 100000, .per_s = 31536000 };
        heal_bucket b;

        /* Years ahead: exactly the burst, never more. */
        b = empty_at(T0);
        heal_bucket_refill(&b, &s3, T0 + 50 * YEAR);
        ASSERT_EQ(b.level, 3 * HEAL_TOKEN);
        ASSERT_EQ(b.stamp_usec, T0 + 50 * YEAR);

        /* The largest spec, from a bucket stamped at the epoch's first usec to
         * the far future: no overflow, exactly the burst. */
        b = (heal_bucket) { .level = 0, .stamp_usec = 1 };
        heal_bucket_refill(&b, &max, UINT64_C(1) << 62);
        ASSERT_EQ(b.level, 100000 * HEAL_TOKEN);

        /* The largest product the math forms (one usec short of a full
         * period at the largest spec) is exact: burst less one micro-token. */
        b = empty_at(T0);
        heal_bucket_refill(&b, &max, T0 + YEAR - 1);
        ASSERT_EQ(b.level, 100000 * HEAL_TOKEN - 1);
}

static void test_clock_backward(void) {
        const heal_budget_spec s3 = { .actions = 3, .per_s = 600 };
        heal_bucket b;

        /* Empty, then an hour back: still 0 (not wrapped to a huge level). */
        b = empty_at(T0);
        heal_bucket_refill(&b, &s3, T0 - HOUR);
        ASSERT_EQ(b.level, 0);
        ASSERT_EQ(b.stamp_usec, T0 - HOUR);
        /* Refill resumes from the new time, not from T0. */
        heal_bucket_refill(&b, &s3, T0 - HOUR + 200 * SEC);
        ASSERT_EQ(b.level, HEAL_TOKEN);

        /* Partly full, then back: nothing added, nothing taken. */
        b = (heal_bucket) { .level = 1500000, .stamp_usec = T0 };
        heal_bucket_refill(&b, &s3, T0 - 5 * SEC);
        ASSERT_EQ(b.level, 1500000);
        ASSERT_EQ(b.stamp_usec, T0 - 5 * SEC);
}

static heal_state *state_new(char **ret_dir) {
        heal_state *s = NULL;
        char *dir = test_tmpdir();

        ASSERT_OK(heal_state_open(dir, &s));
        *ret_dir = dir;
        return s;
}

static void state_done(heal_state *s, char *dir) {
        heal_state_free(s);
        test_rm_rf(dir);
        free(dir);
}

static uint32_t peek(heal_state *s, const heal_budget_req *req, uint64_t now) {
        uint32_t tokens = UINT32_MAX;

        ASSERT_OK(heal_budget_peek(s, "budget", req, now, &tokens));
        return tokens;
}

static void test_take_persists(void) {
        _cleanup_free_ char *dir = NULL;
        const heal_budget_req req = { "target/worker-dead/foo.service", { 3, 600 } };
        heal_state *s = state_new(&dir);
        json_t *data = NULL;
        size_t exhausted = 42;

        ASSERT_EQ(peek(s, &req, T0), 3);
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0, &exhausted), 1);
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0, &exhausted), 1);
        ASSERT_EQ(exhausted, 42); /* only written when exhausted */
        heal_state_free(s);

        /* A new handle (a later run of a helper) sees the consumption. */
        s = NULL;
        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(peek(s, &req, T0), 1);
        ASSERT_OK(heal_state_read(s, "budget", req.key, &data));
        ASSERT_EQ(json_integer_value(json_object_get(data, "level")), HEAL_TOKEN);
        ASSERT_EQ(json_integer_value(json_object_get(data, "stamp_usec")), T0);
        json_decref(data);

        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0 + SEC, &exhausted), 1);
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0 + 2 * SEC, &exhausted), 0);
        ASSERT_EQ(exhausted, 0);
        ASSERT_EQ(peek(s, &req, T0 + 2 * SEC), 0);
        /* One token was left at T0 and the take at T0 + 1 s spent it and the
         * refill since T0, so the level is back to one token at T0 + 200 s:
         * the fraction carried between takes is not lost. */
        ASSERT_EQ(peek(s, &req, T0 + 200 * SEC - 1), 0);
        ASSERT_EQ(peek(s, &req, T0 + 200 * SEC), 1);
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0 + 200 * SEC, &exhausted), 1);
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0 + 200 * SEC, &exhausted), 0);

        /* Namespaces are separate: shadow mode does not spend live tokens. */
        ASSERT_EQ(heal_budget_take(s, "shadow-budget", &req, 1, T0 + 200 * SEC, &exhausted), 1);
        ASSERT_EQ(peek(s, &req, T0 + 200 * SEC), 0);

        state_done(s, TAKE_PTR(dir));
}

static void test_take_clock_backward(void) {
        _cleanup_free_ char *dir = NULL;
        const heal_budget_req req = { "global", { 3, 600 } };
        heal_state *s = state_new(&dir);
        size_t exhausted;

        for (int i = 0; i < 3; i++)
                ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0, &exhausted), 1);
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0, &exhausted), 0);

        /* An hour back: refused (no tokens appear from nowhere)... */
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0 - HOUR, &exhausted), 0);
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0 - HOUR + 199 * SEC, &exhausted), 0);
        /* ... and not stuck until the clock reaches T0 again: one token is
         * back 200 s after the jump was first seen. */
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0 - HOUR + 200 * SEC, &exhausted), 1);
        ASSERT_EQ(heal_budget_take(s, "budget", &req, 1, T0 - HOUR + 200 * SEC, &exhausted), 0);

        state_done(s, TAKE_PTR(dir));
}

static void test_take_all_or_nothing(void) {
        _cleanup_free_ char *dir = NULL;
        heal_budget_req reqs[] = {
                { "global", { 10, 600 } },
                { "class/worker-dead", { 6, 600 } },
                { "target/worker-dead/foo.service", { 1, 600 } },
        };
        heal_state *s = state_new(&dir);
        size_t exhausted = 42;

        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 3, T0, &exhausted), 1);
        ASSERT_EQ(peek(s, &reqs[0], T0), 9);
        ASSERT_EQ(peek(s, &reqs[1], T0), 5);
        ASSERT_EQ(peek(s, &reqs[2], T0), 0);

        /* Target empty: class and global are not consumed. */
        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 3, T0, &exhausted), 0);
        ASSERT_EQ(exhausted, 2);
        ASSERT_EQ(peek(s, &reqs[0], T0), 9);
        ASSERT_EQ(peek(s, &reqs[1], T0), 5);

        /* Other targets draw down class and global until the class is empty. */
        for (int i = 0; i < 5; i++) {
                _cleanup_free_ char *key = NULL;

                ASSERT_TRUE(asprintf(&key, "target/worker-dead/bar%d.service", i) > 0);
                reqs[2].key = key;
                ASSERT_EQ(heal_budget_take(s, "budget", reqs, 3, T0, &exhausted), 1);
        }
        reqs[2].key = "target/worker-dead/baz.service";
        exhausted = 42;
        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 3, T0, &exhausted), 0);
        ASSERT_EQ(exhausted, 1);
        ASSERT_EQ(peek(s, &reqs[0], T0), 4);
        ASSERT_EQ(peek(s, &reqs[2], T0), 1);

        /* When two are empty, the first in the given order is named. */
        reqs[0].spec.actions = 4;
        for (int i = 0; i < 4; i++)
                ASSERT_EQ(heal_budget_take(s, "budget", &reqs[0], 1, T0, &exhausted), 1);
        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 3, T0, &exhausted), 0);
        ASSERT_EQ(exhausted, 0);
        ASSERT_EQ(peek(s, &reqs[2], T0), 1);

        state_done(s, TAKE_PTR(dir));
}

static void test_invalid(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_budget_req reqs[] = {
                { "global", { 10, 600 } },
                { "global", { 10, 600 } },
        };
        size_t exhausted;
        uint32_t tokens;

        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 0, T0, &exhausted), -EINVAL);
        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 2, T0, &exhausted), -EINVAL);
        reqs[0].spec.actions = 0;
        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 1, T0, &exhausted), -EINVAL);
        ASSERT_EQ(heal_budget_peek(s, "budget", &reqs[0], T0, &tokens), -EINVAL);
        reqs[0].spec = (heal_budget_spec) { 10, 0 };
        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 1, T0, &exhausted), -EINVAL);
        ASSERT_EQ(heal_budget_peek(s, "budget", &reqs[0], T0, &tokens), -EINVAL);
        ASSERT_TRUE(!heal_budget_spec_valid(&(heal_budget_spec) { 100001, 1 }));
        ASSERT_TRUE(!heal_budget_spec_valid(&(heal_budget_spec) { 1, 31536001 }));
        ASSERT_TRUE(heal_budget_spec_valid(&(heal_budget_spec) { 100000, 31536000 }));
        ASSERT_TRUE(heal_budget_spec_valid(&(heal_budget_spec) { 1, 1 }));

        state_done(s, TAKE_PTR(dir));
}

static int garble_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        FILE *f;

        if (flag != FTW_F)
                return 0;
        f = fopen(path, "we");
        ASSERT_TRUE(f);
        fputs("{\"heal_state\": 1, \"sum\": \"00\", \"da", f);
        fclose(f);
        return 0;
}

/* Overwrites every file under @dir with a truncated record; a state dir
 * holding a single record makes that record unreadable whatever the layout. */
static void garble_tree(const char *dir) {
        ASSERT_EQ(nftw(dir, garble_one, 16, FTW_PHYS), 0);
}

static void check_corrupt_refused(heal_state *s, heal_budget_req *reqs, size_t bad) {
        size_t exhausted = 42;
        uint32_t tokens = 42;

        ASSERT_EQ(heal_budget_take(s, "budget", reqs, 3, T0, &exhausted), -EBADMSG);
        ASSERT_EQ(exhausted, 42);
        ASSERT_EQ(heal_budget_peek(s, "budget", &reqs[bad], T0, &tokens), -EBADMSG);
        ASSERT_EQ(tokens, 42);
        /* Nothing was consumed from the healthy buckets either. */
        for (size_t i = 0; i < 3; i++)
                if (i != bad)
                        ASSERT_EQ(peek(s, &reqs[i], T0), reqs[i].spec.actions);
}

static void test_corrupt(void) {
        static const char *const bad_data[] = {
                "{\"level\": -1, \"stamp_usec\": 1704067200000000}",
                "{\"level\": \"lots\", \"stamp_usec\": 1704067200000000}",
                "{\"level\": 1.5, \"stamp_usec\": 1704067200000000}",
                "{\"stamp_usec\": 1704067200000000}",
                "{\"level\": 3000000}",
                "{\"level\": 3000000, \"stamp_usec\": 1704067200000000, \"rem\": -3}",
        };
        heal_budget_req reqs[] = {
                { "global", { 10, 600 } },
                { "class/worker-dead", { 6, 600 } },
                { "target/worker-dead/foo.service", { 3, 600 } },
        };

        /* Well-formed records whose bucket fields are not. */
        for (size_t i = 0; i < ELEMENTSOF(bad_data); i++) {
                _cleanup_free_ char *dir = NULL;
                heal_state *s = state_new(&dir);
                json_t *data = json_loads(bad_data[i], 0, NULL);

                ASSERT_TRUE(data);
                ASSERT_OK(heal_state_write(s, "budget", reqs[1].key, data));
                json_decref(data);
                check_corrupt_refused(s, reqs, 1);
                state_done(s, TAKE_PTR(dir));
        }

        /* A record the state layer itself cannot read. */
        {
                _cleanup_free_ char *dir = NULL;
                heal_state *s = state_new(&dir);
                size_t exhausted;

                ASSERT_EQ(heal_budget_take(s, "budget", &reqs[2], 1, T0, &exhausted), 1);
                heal_state_free(s);
                garble_tree(dir);
                s = NULL;
                ASSERT_OK(heal_state_open(dir, &s));
                check_corrupt_refused(s, reqs, 2);
                state_done(s, TAKE_PTR(dir));
        }
}

/* Each of N processes takes from one K-token budget until refused; between
 * them they must act exactly K times. */
#define RACERS 8
#define RACE_TOKENS 5

static uint64_t now_realtime(void) {
        struct timespec ts;

        ASSERT_EQ(clock_gettime(CLOCK_REALTIME, &ts), 0);
        return (uint64_t) ts.tv_sec * SEC + (uint64_t) ts.tv_nsec / 1000;
}

static _Noreturn void racer(const char *dir, int barrier) {
        const heal_budget_req req = { "global", { RACE_TOKENS, 31536000 } };
        heal_state *s = NULL;
        int taken = 0, r;
        char c;

        if (heal_state_open(dir, &s) < 0)
                _exit(100);
        /* Block until the parent closes the write end: all start together. */
        if (read(barrier, &c, 1) != 0)
                _exit(101);
        for (;;) {
                size_t exhausted;

                r = heal_budget_take(s, "budget", &req, 1, now_realtime(), &exhausted);
                if (r < 0)
                        _exit(102);
                if (r == 0)
                        break;
                taken++;
        }
        heal_state_free(s);
        _exit(taken);
}

static void test_race(void) {
        _cleanup_free_ char *dir = test_tmpdir();
        const heal_budget_req req = { "global", { RACE_TOKENS, 31536000 } };
        heal_state *s = NULL;
        pid_t pids[RACERS];
        int barrier[2], total = 0;

        ASSERT_EQ(pipe2(barrier, O_CLOEXEC), 0);
        for (int i = 0; i < RACERS; i++) {
                pids[i] = fork();
                ASSERT_TRUE(pids[i] >= 0);
                if (pids[i] == 0) {
                        close(barrier[1]);
                        racer(dir, barrier[0]);
                }
        }
        close(barrier[0]);
        close(barrier[1]);

        for (int i = 0; i < RACERS; i++) {
                int status;

                ASSERT_EQ(waitpid(pids[i], &status, 0), pids[i]);
                ASSERT_TRUE(WIFEXITED(status));
                ASSERT_TRUE(WEXITSTATUS(status) <= RACE_TOKENS);
                total += WEXITSTATUS(status);
        }
        ASSERT_EQ(total, RACE_TOKENS);

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(peek(s, &req, now_realtime()), 0);
        state_done(s, TAKE_PTR(dir));
}

int main(void) {
        test_refill_exact();
        test_clock_forward();
        test_clock_backward();
        test_take_persists();
        test_take_clock_backward();
        test_take_all_or_nothing();
        test_invalid();
        test_corrupt();
        test_race();
        return 0;
}
