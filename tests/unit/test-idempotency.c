/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libheal idempotency: key format and time buckets, claim/settle semantics,
 * expiry, corrupt claims, unsynced claims that a power loss tore, 16
 * processes racing for one incident, a claim that lives exactly as long as
 * its owner (across any ttl, and not after a SIGKILL), and garbage
 * collection (also from the guard). */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/guard.h"
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

/* Returns the claim's fd when it claimed (the caller owns it), else -EBADF. */
static int expect_begin(heal_state *s, const char *key, uint64_t now, uint64_t ttl, int want,
                        heal_idem_status want_status) {
        heal_idem_status st = (heal_idem_status) -1;
        int fd = -EBADF;
        int r = heal_idem_begin(s, key, now, ttl, &st, &fd);
        if (r != want || st != want_status) {
                fprintf(stderr, "begin(%s, %llu): got %d/%d, want %d/%d\n", key,
                        (unsigned long long) now, r, (int) st, want, (int) want_status);
                abort();
        }
        ASSERT_TRUE(r > 0 ? fd >= 0 : fd == -EBADF);
        return fd;
}

static void finish(heal_state *s, const char *key, int *claim_fd, bool verified, uint64_t now,
                   uint64_t ttl) {
        ASSERT_OK(heal_idem_finish(s, key, claim_fd, verified, now, ttl));
        ASSERT_EQ(*claim_fd, -EBADF);
}

static void expect_peek(heal_state *s, const char *key, uint64_t now, heal_idem_status want) {
        heal_idem_status st = (heal_idem_status) -1;
        ASSERT_OK(heal_idem_peek(s, key, now, &st));
        ASSERT_EQ(st, want);
}

static void test_semantics(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        const uint64_t ttl = 300 * SEC, t = 1000 * SEC;
        _cleanup_close_ int k1 = -EBADF, k2 = -EBADF, k3 = -EBADF;
        int fd;

        ASSERT_OK(heal_state_open(dir, &s));

        /* Unknown: new, and peeking does not claim it. */
        expect_peek(s, "k1", t, HEAL_IDEM_NEW);
        expect_peek(s, "k1", t, HEAL_IDEM_NEW);

        /* The first begin owns it; while in flight nobody else does. */
        k1 = expect_begin(s, "k1", t, ttl, 1, HEAL_IDEM_NEW);
        expect_peek(s, "k1", t + 1, HEAL_IDEM_IN_FLIGHT);
        expect_begin(s, "k1", t + 1, ttl, 0, HEAL_IDEM_IN_FLIGHT);
        expect_begin(s, "k1", t + ttl - 1, ttl, 0, HEAL_IDEM_IN_FLIGHT);
        /* In flight as long as its owner lives, however long past the ttl
         * (a pass may verify for longer than idempotency_s). */
        expect_begin(s, "k1", t + 100 * ttl, ttl, 0, HEAL_IDEM_IN_FLIGHT);
        expect_begin(s, "k1", t + 100 * ttl, SEC, 0, HEAL_IDEM_IN_FLIGHT);
        expect_peek(s, "k1", t + 100 * ttl, HEAL_IDEM_IN_FLIGHT);
        /* Other incidents are independent. */
        k2 = expect_begin(s, "k2", t, ttl, 1, HEAL_IDEM_NEW);

        /* Verified: done blocks every later trigger until it expires. */
        finish(s, "k1", &k1, true, t + 10 * SEC, ttl);
        expect_peek(s, "k1", t + 11 * SEC, HEAL_IDEM_DONE);
        expect_begin(s, "k1", t + 11 * SEC, ttl, 0, HEAL_IDEM_DONE);
        expect_begin(s, "k1", t + 10 * SEC + ttl - 1, ttl, 0, HEAL_IDEM_DONE);
        expect_peek(s, "k1", t + 10 * SEC + ttl, HEAL_IDEM_NEW);
        /* Expired done counts as new: the next trigger owns it again. */
        k1 = expect_begin(s, "k1", t + 10 * SEC + ttl, ttl, 1, HEAL_IDEM_NEW);

        /* Not verified: released, so a later trigger may try again. */
        finish(s, "k2", &k2, false, t + 5 * SEC, ttl);
        expect_peek(s, "k2", t + 6 * SEC, HEAL_IDEM_NEW);
        k2 = expect_begin(s, "k2", t + 6 * SEC, ttl, 1, HEAL_IDEM_NEW);

        /* The owner died (its fd closed without a finish): the record still
         * says in flight, but nobody holds it, so it is free at once. */
        k3 = expect_begin(s, "k3", t, ttl, 1, HEAL_IDEM_NEW);
        closep(&k3);
        ASSERT_OK(heal_state_read(s, "idem-claim", "k3", NULL));
        expect_peek(s, "k3", t + 1, HEAL_IDEM_NEW);
        k3 = expect_begin(s, "k3", t + 1, ttl, 1, HEAL_IDEM_NEW);
        expect_begin(s, "k3", t + 2, ttl, 0, HEAL_IDEM_IN_FLIGHT);

        /* The claim lives in the state dir, so a new handle (a new run) sees it. */
        heal_state_free(TAKE_PTR(s));
        ASSERT_OK(heal_state_open(dir, &s));
        expect_begin(s, "k2", t + 7 * SEC, ttl, 0, HEAL_IDEM_IN_FLIGHT);

        /* A claim that is not one fails closed instead of acting. */
        _cleanup_json_ json_t *bogus = json_pack("{s:s, s:i, s:i}", "state", "maybe", "since", 1,
                                                 "until", 2);
        _cleanup_json_ json_t *partial = json_pack("{s:s}", "state", "done");
        heal_idem_status st;
        fd = -EBADF;
        ASSERT_OK(heal_state_write(s, "idem", "k4", bogus));
        ASSERT_EQ(heal_idem_begin(s, "k4", t, ttl, &st, &fd), -EBADMSG);
        ASSERT_EQ(heal_idem_peek(s, "k4", t, &st), -EBADMSG);
        ASSERT_OK(heal_state_write(s, "idem", "k5", partial));
        ASSERT_EQ(heal_idem_begin(s, "k5", t, ttl, &st, &fd), -EBADMSG);
        ASSERT_EQ(fd, -EBADF);
        /* ... and was not overwritten. */
        _cleanup_json_ json_t *still = NULL;
        ASSERT_OK(heal_state_read(s, "idem", "k4", &still));
        ASSERT_TRUE(json_equal(still, bogus));
}

static char *ns_path(heal_state *s, const char *ns, const char *key) {
        _cleanup_free_ char *name = heal_state_escape(key);
        char *p = NULL;

        ASSERT_TRUE(name);
        ASSERT_TRUE(asprintf(&p, "%s/%s/%s", heal_state_path(s), ns, name) > 0);
        return p;
}

static void put_file(const char *path, const char *content) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, content, strlen(content)), (ssize_t) strlen(content));
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static bool lock_file_exists(heal_state *s, const char *key) {
        _cleanup_free_ char *p = ns_path(s, "idem/.lock", key);
        return exists(p);
}

static bool claim_lock_exists(heal_state *s, const char *key) {
        _cleanup_free_ char *p = ns_path(s, "idem-claim/.lock", key);
        return exists(p);
}

static void test_claims(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        const uint64_t ttl = 300 * SEC, t = 1000 * SEC;
        _cleanup_close_ int c1 = -EBADF, c3 = -EBADF, c4 = -EBADF, c5 = -EBADF;
        heal_idem_status st;
        int fd = -EBADF;

        ASSERT_OK(heal_state_open(dir, &s));

        /* The claim is a record of "idem-claim"; "idem" holds only done. */
        c1 = expect_begin(s, "c1", t, ttl, 1, HEAL_IDEM_NEW);
        _cleanup_json_ json_t *claim = NULL;
        ASSERT_OK(heal_state_read(s, "idem-claim", "c1", &claim));
        ASSERT_STREQ(json_string_value(json_object_get(claim, "state")), "in-flight");
        ASSERT_EQ(heal_state_read(s, "idem", "c1", NULL), -ENOENT);
        ASSERT_TRUE(claim_lock_exists(s, "c1"));

        /* A claim that a power loss left empty or cut short is no claim
         * (after a power loss its owner is gone too). */
        _cleanup_free_ char *c1_path = ns_path(s, "idem-claim", "c1");
        closep(&c1);
        put_file(c1_path, "");
        expect_peek(s, "c1", t + 1, HEAL_IDEM_NEW);
        c1 = expect_begin(s, "c1", t + 1, ttl, 1, HEAL_IDEM_NEW);
        ASSERT_OK(heal_state_read(s, "idem-claim", "c1", NULL)); /* claimed afresh */
        expect_begin(s, "c1", t + 2, ttl, 0, HEAL_IDEM_IN_FLIGHT);
        closep(&c1);
        put_file(c1_path, "{\"heal_state\":1,\"key\":\"c1\",\"su");
        c1 = expect_begin(s, "c1", t + 3, ttl, 1, HEAL_IDEM_NEW);

        /* ... but one that loads and is malformed is no torn write: fail closed. */
        _cleanup_json_ json_t *bogus = json_pack("{s:s, s:i, s:i}", "state", "maybe", "since", 1, "until",
                                                 2);
        ASSERT_OK(heal_state_write(s, "idem-claim", "c2", bogus));
        ASSERT_EQ(heal_idem_begin(s, "c2", t, ttl, &st, &fd), -EBADMSG);
        ASSERT_EQ(fd, -EBADF);
        /* And a done record that does not load fails closed too (done is synced, never torn). */
        _cleanup_free_ char *d3 = ns_path(s, "idem", "c3");
        c3 = expect_begin(s, "c3", t, ttl, 1, HEAL_IDEM_NEW);
        finish(s, "c3", &c3, true, t, ttl);
        put_file(d3, "");
        ASSERT_EQ(heal_idem_begin(s, "c3", t + 1, ttl, &st, &fd), -EBADMSG);
        ASSERT_EQ(heal_idem_peek(s, "c3", t + 1, &st), -EBADMSG);

        /* Finished: done in "idem", the claim and its lock file gone. */
        c4 = expect_begin(s, "c4", t, ttl, 1, HEAL_IDEM_NEW);
        finish(s, "c4", &c4, true, t + SEC, ttl);
        ASSERT_EQ(heal_state_read(s, "idem-claim", "c4", NULL), -ENOENT);
        ASSERT_TRUE(!claim_lock_exists(s, "c4"));
        _cleanup_json_ json_t *done = NULL;
        ASSERT_OK(heal_state_read(s, "idem", "c4", &done));
        ASSERT_STREQ(json_string_value(json_object_get(done, "state")), "done");
        /* A claim left behind (died between done and its removal) does not hide done. */
        _cleanup_json_ json_t *left = json_pack("{s:s, s:I, s:I}", "state", "in-flight", "since",
                                                (json_int_t) t, "until", (json_int_t) (t + ttl));
        ASSERT_OK(heal_state_write(s, "idem-claim", "c4", left));
        expect_begin(s, "c4", t + 2 * SEC, ttl, 0, HEAL_IDEM_DONE);
        expect_peek(s, "c4", t + 2 * SEC, HEAL_IDEM_DONE);

        /* Released: the claim and, with no done record, both lock files go. */
        c5 = expect_begin(s, "c5", t, ttl, 1, HEAL_IDEM_NEW);
        ASSERT_TRUE(lock_file_exists(s, "c5"));
        finish(s, "c5", &c5, false, t + SEC, ttl);
        ASSERT_EQ(heal_state_read(s, "idem-claim", "c5", NULL), -ENOENT);
        ASSERT_TRUE(!lock_file_exists(s, "c5"));
        ASSERT_TRUE(!claim_lock_exists(s, "c5"));
        c5 = expect_begin(s, "c5", t + 2 * SEC, ttl, 1, HEAL_IDEM_NEW);
        /* ... but a key that still has a done record keeps its lock file. */
        finish(s, "c5", &c5, true, t + 3 * SEC, ttl);
        c5 = expect_begin(s, "c5", t + 3 * SEC + ttl, ttl, 1, HEAL_IDEM_NEW);
        finish(s, "c5", &c5, false, t + 4 * SEC + ttl, ttl);
        ASSERT_TRUE(lock_file_exists(s, "c5"));
        /* A key found done does not leave a claim lock file behind. */
        ASSERT_TRUE(!claim_lock_exists(s, "c4"));
}

/* A done record of @key that lasts until @until (in the past or future of "now"). */
static void make_done(heal_state *s, const char *key, uint64_t until) {
        int fd;

        ASSERT_TRUE(until > 10 * SEC);
        fd = expect_begin(s, key, until - 10 * SEC, 10 * SEC, 1, HEAL_IDEM_NEW);
        finish(s, key, &fd, true, until - 10 * SEC, 10 * SEC);
}

/* A claim taken at @since; returns its owner's fd. */
static int make_claim(heal_state *s, const char *key, uint64_t since) {
        return expect_begin(s, key, since, 10 * SEC, 1, HEAL_IDEM_NEW);
}

static void test_gc(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_close_ int held = -EBADF, live = -EBADF, dead = -EBADF, torn_fd = -EBADF;
        const uint64_t now = 100000 * SEC;

        ASSERT_OK(heal_state_open(dir, &s));
        ASSERT_EQ(heal_idem_gc(s, now, 0), 0); /* nothing there yet */

        make_done(s, "d-old", now - SEC);
        make_done(s, "d-now", now); /* "until" is exclusive: over at now */
        make_done(s, "d-live", now + SEC);
        /* Claims: one whose owner died, one whose owner still works on it
         * (taken long ago: no ttl makes it garbage), one torn by a power loss. */
        dead = make_claim(s, "c-dead", now - SEC);
        closep(&dead);
        live = make_claim(s, "c-live", now - 1000 * SEC);
        torn_fd = make_claim(s, "c-torn", now);
        closep(&torn_fd);
        _cleanup_free_ char *torn = ns_path(s, "idem-claim", "c-torn");
        put_file(torn, "");
        make_done(s, "d-bad", now - SEC);
        _cleanup_free_ char *bad = ns_path(s, "idem", "d-bad");
        put_file(bad, "{\"garbage");
        make_done(s, "d-held", now - SEC);
        ASSERT_OK(heal_state_lock(s, "idem", "d-held", &held));

        ASSERT_EQ(heal_idem_gc(s, now, 0), 4);
        ASSERT_EQ(heal_state_read(s, "idem", "d-old", NULL), -ENOENT);
        ASSERT_EQ(heal_state_read(s, "idem", "d-now", NULL), -ENOENT);
        ASSERT_EQ(heal_state_read(s, "idem-claim", "c-dead", NULL), -ENOENT);
        ASSERT_TRUE(!exists(torn));
        ASSERT_TRUE(!lock_file_exists(s, "d-old") && !lock_file_exists(s, "c-dead") &&
                    !lock_file_exists(s, "c-torn"));
        ASSERT_TRUE(!claim_lock_exists(s, "c-dead") && !claim_lock_exists(s, "c-torn"));
        /* Kept: the live ones, the corrupt done record (for a human), the busy key. */
        ASSERT_OK(heal_state_read(s, "idem", "d-live", NULL));
        ASSERT_OK(heal_state_read(s, "idem-claim", "c-live", NULL));
        ASSERT_TRUE(lock_file_exists(s, "d-live") && lock_file_exists(s, "c-live"));
        ASSERT_TRUE(claim_lock_exists(s, "c-live"));
        ASSERT_EQ(heal_state_read(s, "idem", "d-bad", NULL), -EBADMSG);
        ASSERT_OK(heal_state_read(s, "idem", "d-held", NULL));
        /* The live ones still mean what they meant. */
        expect_peek(s, "d-live", now, HEAL_IDEM_DONE);
        expect_peek(s, "c-live", now, HEAL_IDEM_IN_FLIGHT);

        /* Once free, the busy key goes; @max_remove bounds one call. */
        closep(&held);
        make_done(s, "d-more1", now - SEC);
        make_done(s, "d-more2", now - SEC);
        ASSERT_EQ(heal_idem_gc(s, now, 1), 1);
        ASSERT_EQ(heal_idem_gc(s, now, 0), 2);
        ASSERT_EQ(heal_state_read(s, "idem", "d-held", NULL), -ENOENT);
        ASSERT_EQ(heal_idem_gc(s, now, 0), 0);
        /* Later, the live done record expires; the claim stays while its owner holds it. */
        ASSERT_EQ(heal_idem_gc(s, now + 1000 * SEC, 0), 1);
        ASSERT_OK(heal_state_read(s, "idem-claim", "c-live", NULL));
        expect_begin(s, "c-live", now + 1000 * SEC, 10 * SEC, 0, HEAL_IDEM_IN_FLIGHT);
        /* Its owner ends without settling it (killed): now it is garbage. */
        closep(&live);
        ASSERT_EQ(heal_idem_gc(s, now + 1000 * SEC, 0), 1);
        ASSERT_TRUE(!claim_lock_exists(s, "c-live") && !lock_file_exists(s, "c-live"));
        ASSERT_EQ(heal_idem_gc(s, now + 1000 * SEC, 0), 0);
}

static void test_gc_maybe(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        const uint64_t now = 100000 * SEC;

        ASSERT_OK(heal_state_open(dir, &s));
        make_done(s, "a", now - SEC);
        ASSERT_EQ(heal_idem_gc_maybe(s, now), 1); /* never ran: due */

        /* Within the interval: not due, the expired record stays. */
        make_done(s, "b", now - SEC);
        ASSERT_EQ(heal_idem_gc_maybe(s, now + SEC), 0);
        ASSERT_EQ(heal_idem_gc_maybe(s, now + HEAL_IDEM_GC_INTERVAL_USEC - 1), 0);
        ASSERT_OK(heal_state_read(s, "idem", "b", NULL));
        ASSERT_EQ(heal_idem_gc_maybe(s, now + HEAL_IDEM_GC_INTERVAL_USEC), 1);
        ASSERT_EQ(heal_state_read(s, "idem", "b", NULL), -ENOENT);

        /* A stamp in the future (the clock went back) does not hold gc off. */
        make_done(s, "c", now - 100 * SEC);
        ASSERT_EQ(heal_idem_gc_maybe(s, now - 50 * SEC), 1);
        ASSERT_EQ(heal_idem_gc_maybe(s, now - 49 * SEC), 0);
        ASSERT_EQ(heal_idem_gc_maybe(s, UINT64_MAX), -EINVAL);
}

static int switch_off(void *userdata, char **ret_reason) { return 0; }
static int never_called(void *userdata, char **ret_detail) { return -EPERM; }

/* The guard runs the gc once per pass (throttled), whatever the pass decides. */
static void test_guard_gc(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        const uint64_t now = 100000 * SEC;
        heal_outcome o;

        ASSERT_OK(heal_state_open(dir, &s));
        make_done(s, "old|x.service|i", now - SEC);
        make_done(s, "live|x.service|i", now + SEC);
        heal_guard g = { .state = s, .policy = NULL, .policy_error = "test", .now_usec = now,
                         .defer_metrics_write = true, .kill_switch = switch_off };
        const heal_action a = { .healer = "test", .class = "c", .target = "x.service", .incident = "i",
                                .tier_override = -1, .act = never_called };
        ASSERT_OK(heal_guard_run(&g, &a, &o));
        ASSERT_EQ(o, HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(heal_state_read(s, "idem", "old|x.service|i", NULL), -ENOENT);
        ASSERT_OK(heal_state_read(s, "idem", "live|x.service|i", NULL));
}

/* Each child opens its own handle, as separate helper runs would, and holds
 * what it won until every racer has tried (as a pass holds its claim). */
static _Noreturn void racer(const char *dir, const char *key, int start_fd, int result_fd, int release_fd) {
        heal_state *s = NULL;
        heal_idem_status st;
        int fd = -EBADF;
        char c, code;

        if (heal_state_open(dir, &s) < 0)
                _exit(10);
        /* Everyone starts together, when the parent closes the pipe. */
        (void) !read(start_fd, &c, 1);
        int r = heal_idem_begin(s, key, 1000 * SEC, 60 * SEC, &st, &fd);
        if (r < 0)
                code = 11;
        else if (r > 0)
                code = st == HEAL_IDEM_NEW && fd >= 0 ? 1 : 12;
        else
                code = st == HEAL_IDEM_IN_FLIGHT ? 0 : 13;
        (void) !write(result_fd, &code, 1);
        (void) !read(release_fd, &c, 1);
        closep(&fd);
        heal_state_free(s);
        _exit(code);
}

static void test_race(const char *dir) {
        enum { RACERS = 16, ROUNDS = 10 };

        for (int round = 0; round < ROUNDS; round++) {
                char key[64];
                pid_t pids[RACERS];
                int go[2], results[2], release[2], winners = 0;

                snprintf(key, sizeof(key), "worker-dead|race@%d.service|inc", round);
                ASSERT_OK(pipe2(go, O_CLOEXEC));
                ASSERT_OK(pipe2(results, O_CLOEXEC));
                ASSERT_OK(pipe2(release, O_CLOEXEC));
                for (int i = 0; i < RACERS; i++) {
                        pids[i] = fork();
                        ASSERT_TRUE(pids[i] >= 0);
                        if (pids[i] == 0) {
                                close(go[1]);
                                close(results[0]);
                                close(release[1]);
                                racer(dir, key, go[0], results[1], release[0]);
                        }
                }
                close(go[0]);
                close(go[1]);
                close(results[1]);
                close(release[0]);
                for (int i = 0; i < RACERS; i++) {
                        char c;
                        ASSERT_EQ(read(results[0], &c, 1), 1);
                }
                close(results[0]);
                close(release[1]);
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

/* A claim held by a live process is in flight whatever the clock says; once
 * that process is SIGKILLed (no finish ran), the claim is free at once. */
static void test_owner_process(const char *dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        const uint64_t t = 1000 * SEC, ttl = SEC;
        int ready[2], st, fd;
        pid_t pid;
        char c;

        ASSERT_OK(pipe2(ready, O_CLOEXEC));
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                heal_state *cs = NULL;
                heal_idem_status cst;
                int cfd = -EBADF;

                close(ready[0]);
                if (heal_state_open(dir, &cs) < 0 ||
                    heal_idem_begin(cs, "owner|x.service|i", t, ttl, &cst, &cfd) <= 0)
                        _exit(1);
                c = 'y';
                (void) !write(ready[1], &c, 1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        ASSERT_EQ(read(ready[0], &c, 1), 1);
        close(ready[0]);

        ASSERT_OK(heal_state_open(dir, &s));
        /* Hours past the claim's ttl: still in flight, and gc leaves it. */
        expect_begin(s, "owner|x.service|i", t + 3600 * SEC, ttl, 0, HEAL_IDEM_IN_FLIGHT);
        expect_peek(s, "owner|x.service|i", t + 3600 * SEC, HEAL_IDEM_IN_FLIGHT);
        ASSERT_EQ(heal_idem_gc(s, t + 3600 * SEC, 0), 0);
        ASSERT_OK(heal_state_read(s, "idem-claim", "owner|x.service|i", NULL));

        ASSERT_EQ(kill(pid, SIGKILL), 0);
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

        /* Its owner is dead: the claim is free, even well within the ttl. */
        expect_peek(s, "owner|x.service|i", t, HEAL_IDEM_NEW);
        fd = expect_begin(s, "owner|x.service|i", t, 3600 * SEC, 1, HEAL_IDEM_NEW);
        finish(s, "owner|x.service|i", &fd, false, t, 3600 * SEC);
}

int main(void) {
        _cleanup_free_ char *tmp = test_tmpdir();
        _cleanup_free_ char *d1 = NULL, *d2 = NULL, *d3 = NULL, *d4 = NULL, *d5 = NULL, *d6 = NULL,
                            *d7 = NULL;

        ASSERT_TRUE(asprintf(&d1, "%s/semantics", tmp) > 0);
        ASSERT_TRUE(asprintf(&d2, "%s/race", tmp) > 0);
        ASSERT_TRUE(asprintf(&d3, "%s/claims", tmp) > 0);
        ASSERT_TRUE(asprintf(&d4, "%s/gc", tmp) > 0);
        ASSERT_TRUE(asprintf(&d5, "%s/gc-maybe", tmp) > 0);
        ASSERT_TRUE(asprintf(&d6, "%s/guard-gc", tmp) > 0);
        ASSERT_TRUE(asprintf(&d7, "%s/owner", tmp) > 0);

        test_key();
        test_semantics(d1);
        test_race(d2);
        test_claims(d3);
        test_gc(d4);
        test_gc_maybe(d5);
        test_guard_gc(d6);
        test_owner_process(d7);

        test_rm_rf(tmp);
        return 0;
}
