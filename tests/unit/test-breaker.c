/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Circuit breaker: every transition at its exact time, return values,
 * one trial among racing processes, a trial that lives exactly as long as
 * its owner (and not after a SIGKILL), a trial put back, reset, fail-closed
 * on corruption, and no write at all for what changes nothing. */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heal/breaker.h"
#include "heal/cleanup.h"
#include "test-util.h"

#define SEC UINT64_C(1000000)
#define HOUR (3600 * SEC)
#define T0 (UINT64_C(1704067200) * SEC)
#define COOLDOWN (600 * SEC)

static const heal_breaker_spec spec = { .failures = 3, .cooldown_s = 600 };
static const char *const key = "worker-dead/foo.service";

/* The trials this process owns, as a pass holds its trial until it ends. */
static int trials[16];
static size_t n_trials;

/* Every trial owner ends (its pass is over, or it died). */
static void drop_trials(void) {
        for (size_t i = 0; i < n_trials; i++)
                closep(&trials[i]);
        n_trials = 0;
}

static heal_state *state_new(char **ret_dir) {
        heal_state *s = NULL;
        char *dir = test_tmpdir();

        ASSERT_OK(heal_state_open(dir, &s));
        *ret_dir = dir;
        return s;
}

static void state_done(heal_state *s, char *dir) {
        drop_trials();
        heal_state_free(s);
        test_rm_rf(dir);
        free(dir);
}

static int admit(heal_state *s, uint64_t now, heal_breaker_state *ret) {
        heal_breaker_state st = (heal_breaker_state) -1;
        int fd = -EBADF;
        int r = heal_breaker_admit(s, key, &spec, now, &st, &fd);

        ASSERT_OK(r);
        /* A trial comes with its lock; any other admission without one. */
        ASSERT_TRUE(r > 0 && st == HEAL_BREAKER_HALF_OPEN ? fd >= 0 : fd == -EBADF);
        if (fd >= 0) {
                ASSERT_TRUE(n_trials < ELEMENTSOF(trials));
                trials[n_trials++] = fd;
        }
        *ret = st;
        return r;
}

/* The outcome of a pass; the pass ends with it, so its trial is let go. */
static int record(heal_state *s, bool success, uint64_t now, heal_breaker_state *ret) {
        heal_breaker_state st = (heal_breaker_state) -1;
        int r = heal_breaker_record(s, key, &spec, success, now, &st);

        ASSERT_OK(r);
        drop_trials();
        *ret = st;
        return r;
}

static void check_get(heal_state *s, uint64_t now, heal_breaker_state want, uint32_t want_failures) {
        heal_breaker_state st = (heal_breaker_state) -1;
        uint32_t failures = UINT32_MAX;

        ASSERT_OK(heal_breaker_get(s, key, &spec, now, &st, &failures));
        ASSERT_STREQ(heal_breaker_state_to_string(st), heal_breaker_state_to_string(want));
        ASSERT_EQ(failures, want_failures);
}

/* Drives a fresh breaker to open at @now; returns with it open. */
static void open_it(heal_state *s, uint64_t now) {
        heal_breaker_state st;

        for (uint32_t i = 1; i < spec.failures; i++)
                ASSERT_EQ(record(s, false, now, &st), 0);
        ASSERT_EQ(record(s, false, now, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
}

static void test_strings(void) {
        ASSERT_STREQ(heal_breaker_state_to_string(HEAL_BREAKER_CLOSED), "closed");
        ASSERT_STREQ(heal_breaker_state_to_string(HEAL_BREAKER_OPEN), "open");
        ASSERT_STREQ(heal_breaker_state_to_string(HEAL_BREAKER_HALF_OPEN), "half-open");
        ASSERT_TRUE(!heal_breaker_state_to_string((heal_breaker_state) 3));
        ASSERT_EQ(heal_breaker_state_from_string("half-open"), HEAL_BREAKER_HALF_OPEN);
        ASSERT_EQ(heal_breaker_state_from_string("closed"), HEAL_BREAKER_CLOSED);
        ASSERT_EQ(heal_breaker_state_from_string("ajar"), -EINVAL);
        ASSERT_EQ(heal_breaker_state_from_string(NULL), -EINVAL);
}

static void test_open_at_n(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;

        /* Fresh: closed, admits, no record needed. */
        check_get(s, T0, HEAL_BREAKER_CLOSED, 0);
        ASSERT_EQ(admit(s, T0, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);

        /* Failures below N count but keep it closed (record returns 0). */
        ASSERT_EQ(record(s, false, T0, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);
        ASSERT_EQ(record(s, false, T0 + SEC, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);
        check_get(s, T0 + SEC, HEAL_BREAKER_CLOSED, 2);
        ASSERT_EQ(admit(s, T0 + SEC, &st), 1);

        /* The Nth consecutive failure opens it, and says so. */
        ASSERT_EQ(record(s, false, T0 + 2 * SEC, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
        check_get(s, T0 + 2 * SEC, HEAL_BREAKER_OPEN, 3);
        ASSERT_EQ(admit(s, T0 + 2 * SEC, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);

        /* A late failure while open counts but does not re-open (returns 0)
         * nor move the cooldown. */
        ASSERT_EQ(record(s, false, T0 + 100 * SEC, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
        check_get(s, T0 + 100 * SEC, HEAL_BREAKER_OPEN, 4);
        check_get(s, T0 + 2 * SEC + COOLDOWN, HEAL_BREAKER_HALF_OPEN, 4);

        state_done(s, TAKE_PTR(dir));
}

static void test_success_resets_count(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;

        ASSERT_EQ(record(s, false, T0, &st), 0);
        ASSERT_EQ(record(s, false, T0, &st), 0);
        /* Success while closed resets the count; it changed nothing open/closed. */
        ASSERT_EQ(record(s, true, T0, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);
        check_get(s, T0, HEAL_BREAKER_CLOSED, 0);

        /* So it takes N more consecutive failures to open. */
        ASSERT_EQ(record(s, false, T0, &st), 0);
        ASSERT_EQ(record(s, false, T0, &st), 0);
        check_get(s, T0, HEAL_BREAKER_CLOSED, 2);
        ASSERT_EQ(record(s, false, T0, &st), 1);
        check_get(s, T0, HEAL_BREAKER_OPEN, 3);

        /* Success with nothing recorded: nothing to do. */
        ASSERT_EQ(heal_breaker_record(s, "other", &spec, true, T0, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);

        state_done(s, TAKE_PTR(dir));
}

static void test_cooldown_and_trial(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;
        uint64_t t1, t2;

        open_it(s, T0);

        /* Open refuses until the cooldown is over, to the microsecond. */
        ASSERT_EQ(admit(s, T0 + COOLDOWN - 1, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
        check_get(s, T0 + COOLDOWN - 1, HEAL_BREAKER_OPEN, 3);

        /* Then half-open: one trial, and only one. */
        check_get(s, T0 + COOLDOWN, HEAL_BREAKER_HALF_OPEN, 3);
        ASSERT_EQ(admit(s, T0 + COOLDOWN, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);
        ASSERT_EQ(admit(s, T0 + COOLDOWN, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);
        ASSERT_EQ(admit(s, T0 + COOLDOWN + 10 * SEC, &st), 0);

        /* The trial succeeds: closed (record returns 1), count reset, admits. */
        ASSERT_EQ(record(s, true, T0 + COOLDOWN + 20 * SEC, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);
        check_get(s, T0 + COOLDOWN + 20 * SEC, HEAL_BREAKER_CLOSED, 0);
        ASSERT_EQ(admit(s, T0 + COOLDOWN + 20 * SEC, &st), 1);
        ASSERT_EQ(admit(s, T0 + COOLDOWN + 20 * SEC, &st), 1);

        /* Again open, trial at t1, failing at t2: open with a full cooldown from t2. */
        open_it(s, T0 + HOUR);
        t1 = T0 + HOUR + COOLDOWN + 5 * SEC;
        ASSERT_EQ(admit(s, t1, &st), 1);
        t2 = t1 + 30 * SEC;
        ASSERT_EQ(record(s, false, t2, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
        check_get(s, t2, HEAL_BREAKER_OPEN, 4);
        ASSERT_EQ(admit(s, t1 + COOLDOWN, &st), 0);
        ASSERT_EQ(admit(s, t2 + COOLDOWN - 1, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
        ASSERT_EQ(admit(s, t2 + COOLDOWN, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);

        state_done(s, TAKE_PTR(dir));
}

static void test_abandoned_trial(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;
        uint64_t trial = T0 + COOLDOWN;

        open_it(s, T0);
        ASSERT_EQ(admit(s, trial, &st), 1);
        /* While its owner runs (verifying for longer than any cooldown), no
         * second trial, whatever the clock says. */
        ASSERT_EQ(admit(s, trial + COOLDOWN, &st), 0);
        ASSERT_EQ(admit(s, trial + 10 * COOLDOWN, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);
        check_get(s, trial + 10 * COOLDOWN, HEAL_BREAKER_HALF_OPEN, 3);
        /* Its owner dies without reporting: the trial is free at once, and
         * handed to the next caller, alone. */
        drop_trials();
        ASSERT_EQ(admit(s, trial + SEC, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);
        ASSERT_EQ(admit(s, trial + SEC, &st), 0);
        ASSERT_EQ(admit(s, trial + 2 * COOLDOWN, &st), 0);
        /* The new trial's outcome closes it as usual. */
        ASSERT_EQ(record(s, true, trial + COOLDOWN + SEC, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);

        state_done(s, TAKE_PTR(dir));
}

/* A pass that took the trial and then stopped before acting (budget
 * exhausted, kill switch) puts it back: the next pass may try at once
 * instead of waiting out another cooldown. */
static void test_release(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;
        int fd = -EBADF;

        open_it(s, T0);
        ASSERT_EQ(heal_breaker_admit(s, key, &spec, T0 + COOLDOWN, &st, &fd), 1);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(heal_breaker_release(s, key, &fd), 1);
        ASSERT_EQ(fd, -EBADF);
        /* As it was: open, its cooldown over, its failures kept. */
        check_get(s, T0 + COOLDOWN, HEAL_BREAKER_HALF_OPEN, 3);
        ASSERT_EQ(admit(s, T0 + COOLDOWN + SEC, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);
        ASSERT_EQ(admit(s, T0 + COOLDOWN + SEC, &st), 0);
        drop_trials();

        /* Nothing held, or a closed breaker: nothing to put back. */
        fd = -EBADF;
        ASSERT_EQ(heal_breaker_release(s, key, &fd), 0);
        ASSERT_OK(heal_breaker_reset(s, key));
        ASSERT_EQ(heal_breaker_admit(s, key, &spec, T0, &st, &fd), 1);
        ASSERT_EQ(fd, -EBADF);
        ASSERT_EQ(heal_breaker_release(s, key, &fd), 0);
        check_get(s, T0, HEAL_BREAKER_CLOSED, 0);

        state_done(s, TAKE_PTR(dir));
}

/* A trial held by a live process keeps everyone else out however long it
 * takes; once that process is SIGKILLed, the next caller gets the trial. */
static void test_trial_owner_process(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;
        int ready[2], status;
        pid_t pid;
        char c;

        open_it(s, T0);
        ASSERT_OK(pipe2(ready, O_CLOEXEC));
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                heal_state *cs = NULL;
                int fd = -EBADF;

                close(ready[0]);
                if (heal_state_open(dir, &cs) < 0 ||
                    heal_breaker_admit(cs, key, &spec, T0 + COOLDOWN, &st, &fd) <= 0)
                        _exit(1);
                c = 'y';
                (void) !write(ready[1], &c, 1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        ASSERT_EQ(read(ready[0], &c, 1), 1);
        close(ready[0]);

        ASSERT_EQ(admit(s, T0 + 10 * COOLDOWN, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);

        ASSERT_EQ(kill(pid, SIGKILL), 0);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        ASSERT_EQ(admit(s, T0 + COOLDOWN + SEC, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);
        drop_trials();

        state_done(s, TAKE_PTR(dir));
}

static void test_clock_backward(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;

        open_it(s, T0);
        /* An hour back: still open, and a full cooldown from the new time
         * is enough (not an hour more). */
        ASSERT_EQ(admit(s, T0 - HOUR, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
        ASSERT_EQ(admit(s, T0 - HOUR + COOLDOWN - 1, &st), 0);
        ASSERT_EQ(admit(s, T0 - HOUR + COOLDOWN, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);

        /* A claimed trial is judged by its owner, not by its stamp: held,
         * no other; its owner gone, the next caller gets it, even with
         * the clock further back. */
        ASSERT_EQ(admit(s, T0 - 2 * HOUR, &st), 0);
        ASSERT_EQ(admit(s, T0 - 2 * HOUR + COOLDOWN, &st), 0);
        drop_trials();
        ASSERT_EQ(admit(s, T0 - 2 * HOUR, &st), 1);
        drop_trials();

        state_done(s, TAKE_PTR(dir));
}

static void test_reset_and_ns(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;

        open_it(s, T0);
        ASSERT_OK(heal_breaker_reset(s, key));
        check_get(s, T0, HEAL_BREAKER_CLOSED, 0);
        ASSERT_EQ(admit(s, T0, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);
        /* Counting starts from zero again. */
        ASSERT_EQ(record(s, false, T0, &st), 0);
        ASSERT_EQ(record(s, false, T0, &st), 0);
        check_get(s, T0, HEAL_BREAKER_CLOSED, 2);

        /* Shadow's namespace is separate from live's. */
        for (uint32_t i = 0; i < spec.failures; i++)
                ASSERT_OK(heal_breaker_record_ns(s, "shadow-breaker", key, &spec, false, T0, &st));
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
        int fd = -EBADF;
        ASSERT_EQ(heal_breaker_admit_ns(s, "shadow-breaker", key, &spec, T0, &st, &fd), 0);
        check_get(s, T0, HEAL_BREAKER_CLOSED, 2);
        ASSERT_OK(heal_breaker_reset_ns(s, "shadow-breaker", key));
        ASSERT_EQ(heal_breaker_admit_ns(s, "shadow-breaker", key, &spec, T0, &st, &fd), 1);
        ASSERT_EQ(fd, -EBADF);

        /* A zero failure threshold is not a breaker. */
        ASSERT_EQ(heal_breaker_admit(s, key, &(heal_breaker_spec) { 0, 600 }, T0, &st, &fd), -EINVAL);
        ASSERT_EQ(heal_breaker_record(s, key, &(heal_breaker_spec) { 0, 600 }, false, T0, &st), -EINVAL);

        state_done(s, TAKE_PTR(dir));
}

/* The breaker record's file as it is now: its inode and mtime change with
 * every write (a write is a new file renamed over the old one). */
static int record_stat(heal_state *s, const char *ns, struct stat *ret) {
        _cleanup_free_ char *name = heal_state_escape(key), *path = NULL;

        ASSERT_TRUE(name);
        ASSERT_TRUE(asprintf(&path, "%s/%s/%s", heal_state_path(s), ns, name) > 0);
        return stat(path, ret) < 0 ? -errno : 0;
}

static void assert_same_file(const struct stat *a, const struct stat *b) {
        ASSERT_EQ(a->st_ino, b->st_ino);
        ASSERT_EQ(a->st_mtim.tv_sec, b->st_mtim.tv_sec);
        ASSERT_EQ(a->st_mtim.tv_nsec, b->st_mtim.tv_nsec);
}

static void test_noop_writes_nothing(void) {
        _cleanup_free_ char *dir = NULL;
        heal_state *s = state_new(&dir);
        heal_breaker_state st;
        struct stat a, b;

        /* No record yet: admitting and recording a success create none. */
        ASSERT_EQ(admit(s, T0, &st), 1);
        ASSERT_EQ(record(s, true, T0, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_CLOSED);
        ASSERT_EQ(record_stat(s, "breaker", &a), -ENOENT);

        /* A failure is written; the success after it (count back to 0) too. */
        ASSERT_EQ(record(s, false, T0, &st), 0);
        ASSERT_OK(record_stat(s, "breaker", &a));
        ASSERT_EQ(record(s, true, T0 + SEC, &st), 0);
        ASSERT_OK(record_stat(s, "breaker", &b));
        ASSERT_TRUE(a.st_ino != b.st_ino);
        check_get(s, T0, HEAL_BREAKER_CLOSED, 0);

        /* Now closed with no failures: neither admit nor success touch the file. */
        for (int i = 0; i < 3; i++) {
                ASSERT_EQ(admit(s, T0 + 2 * SEC, &st), 1);
                ASSERT_EQ(record(s, true, T0 + 2 * SEC, &st), 0);
        }
        ASSERT_OK(record_stat(s, "breaker", &a));
        assert_same_file(&a, &b);

        /* Open and cooling down: refusals write nothing either. */
        open_it(s, T0 + 3 * SEC);
        ASSERT_OK(record_stat(s, "breaker", &a));
        ASSERT_EQ(admit(s, T0 + 4 * SEC, &st), 0);
        ASSERT_EQ(admit(s, T0 + 3 * SEC + COOLDOWN - 1, &st), 0);
        ASSERT_OK(record_stat(s, "breaker", &b));
        assert_same_file(&a, &b);

        /* A failure count at its cap: another failure changes nothing. */
        _cleanup_json_ json_t *capped = json_pack("{s:s, s:I, s:I, s:I}", "state", "open", "failures",
                                                  (json_int_t) UINT32_MAX, "opened_usec", (json_int_t) T0,
                                                  "trial_usec", (json_int_t) 0);
        ASSERT_OK(heal_state_write(s, "breaker", key, capped));
        ASSERT_OK(record_stat(s, "breaker", &a));
        ASSERT_EQ(record(s, false, T0 + SEC, &st), 0);
        ASSERT_EQ(st, HEAL_BREAKER_OPEN);
        ASSERT_OK(record_stat(s, "breaker", &b));
        assert_same_file(&a, &b);
        check_get(s, T0 + SEC, HEAL_BREAKER_OPEN, UINT32_MAX);

        /* ... while a change is written: the half-open trial claim. */
        ASSERT_EQ(admit(s, T0 + COOLDOWN, &st), 1);
        ASSERT_EQ(st, HEAL_BREAKER_HALF_OPEN);
        ASSERT_OK(record_stat(s, "breaker", &b));
        ASSERT_TRUE(a.st_ino != b.st_ino);

        state_done(s, TAKE_PTR(dir));
}

static int garble_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
        FILE *f;

        if (flag != FTW_F)
                return 0;
        f = fopen(path, "we");
        ASSERT_TRUE(f);
        fputs("{\"heal_state\": 1, \"sum\": \"00\", \"da", f);
        fclose(f);
        return 0;
}

static void check_corrupt_refused(heal_state *s) {
        heal_breaker_state st = (heal_breaker_state) 42;
        uint32_t failures = 42;

        int fd = -EBADF;
        ASSERT_EQ(heal_breaker_admit(s, key, &spec, T0, &st, &fd), -EBADMSG);
        ASSERT_EQ(fd, -EBADF);
        ASSERT_EQ(heal_breaker_record(s, key, &spec, true, T0, &st), -EBADMSG);
        ASSERT_EQ(heal_breaker_record(s, key, &spec, false, T0, &st), -EBADMSG);
        ASSERT_EQ(heal_breaker_get(s, key, &spec, T0, &st, &failures), -EBADMSG);
        ASSERT_EQ(st, 42);
        ASSERT_EQ(failures, 42);
        /* Still refused: nothing above replaced the record. */
        ASSERT_EQ(heal_breaker_admit(s, key, &spec, T0, &st, &fd), -EBADMSG);

        /* The operator's reset is the way out. */
        ASSERT_OK(heal_breaker_reset(s, key));
        check_get(s, T0, HEAL_BREAKER_CLOSED, 0);
}

static void test_corrupt(void) {
        static const char *const bad_data[] = {
                "{\"state\": \"ajar\", \"failures\": 0, \"opened_usec\": 0, \"trial_usec\": 0}",
                "{\"state\": 1, \"failures\": 0, \"opened_usec\": 0, \"trial_usec\": 0}",
                "{\"state\": \"open\", \"failures\": -1, \"opened_usec\": 0, \"trial_usec\": 0}",
                "{\"state\": \"open\", \"failures\": 4294967296, \"opened_usec\": 0, \"trial_usec\": 0}",
                "{\"state\": \"open\", \"failures\": 3, \"trial_usec\": 0}",
                "{\"state\": \"half-open\", \"failures\": 3, \"opened_usec\": 0}",
                "{\"state\": \"open\", \"failures\": 3, \"opened_usec\": \"soon\", \"trial_usec\": 0}",
                "{\"failures\": 3, \"opened_usec\": 0, \"trial_usec\": 0}",
                "{\"state\": \"open\", \"failures\": 3, \"opened_usec\": -5, \"trial_usec\": 0}",
                "{\"state\": \"half-open\", \"failures\": 3, \"opened_usec\": 0, \"trial_usec\": -5}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad_data); i++) {
                _cleanup_free_ char *dir = NULL;
                heal_state *s = state_new(&dir);
                json_t *data = json_loads(bad_data[i], 0, NULL);

                ASSERT_TRUE(data);
                ASSERT_OK(heal_state_write(s, "breaker", key, data));
                json_decref(data);
                check_corrupt_refused(s);
                state_done(s, TAKE_PTR(dir));
        }

        /* A record the state layer itself cannot read. */
        {
                _cleanup_free_ char *dir = NULL;
                heal_state *s = state_new(&dir);
                heal_breaker_state st;

                ASSERT_EQ(record(s, false, T0, &st), 0);
                heal_state_free(s);
                ASSERT_EQ(nftw(dir, garble_one, 16, FTW_PHYS), 0);
                s = NULL;
                ASSERT_OK(heal_state_open(dir, &s));
                check_corrupt_refused(s);
                state_done(s, TAKE_PTR(dir));
        }
}

/* N processes call admit on a half-open breaker at the same moment;
 * exactly one may get the trial. */
#define RACERS 8

static _Noreturn void racer(const char *dir, int barrier, int result_fd, int release_fd, uint64_t now) {
        heal_breaker_state st;
        heal_state *s = NULL;
        int fd = -EBADF;
        char c, code;
        int r;

        if (heal_state_open(dir, &s) < 0)
                _exit(100);
        if (read(barrier, &c, 1) != 0)
                _exit(101);
        r = heal_breaker_admit(s, key, &spec, now, &st, &fd);
        code = r < 0 ? 102 : st != HEAL_BREAKER_HALF_OPEN ? 103 : r > 0 ? 1 : 0;
        /* The winner holds its trial until every racer has tried. */
        (void) !write(result_fd, &code, 1);
        (void) !read(release_fd, &c, 1);
        closep(&fd);
        heal_state_free(s);
        _exit(code);
}

static void race_once(uint64_t now, uint64_t opened) {
        _cleanup_free_ char *dir = test_tmpdir();
        heal_state *s = NULL;
        pid_t pids[RACERS];
        int barrier[2], results[2], release[2], admitted = 0;

        ASSERT_OK(heal_state_open(dir, &s));
        open_it(s, opened);

        ASSERT_EQ(pipe2(barrier, O_CLOEXEC), 0);
        ASSERT_EQ(pipe2(results, O_CLOEXEC), 0);
        ASSERT_EQ(pipe2(release, O_CLOEXEC), 0);
        for (int i = 0; i < RACERS; i++) {
                pids[i] = fork();
                ASSERT_TRUE(pids[i] >= 0);
                if (pids[i] == 0) {
                        close(barrier[1]);
                        close(results[0]);
                        close(release[1]);
                        racer(dir, barrier[0], results[1], release[0], now);
                }
        }
        close(barrier[0]);
        close(results[1]);
        close(release[0]);
        /* Give every child time to block on the barrier, then release all. */
        usleep(100 * 1000);
        close(barrier[1]);
        for (int i = 0; i < RACERS; i++) {
                char c;
                ASSERT_EQ(read(results[0], &c, 1), 1);
        }
        close(results[0]);
        close(release[1]);

        for (int i = 0; i < RACERS; i++) {
                int status;

                ASSERT_EQ(waitpid(pids[i], &status, 0), pids[i]);
                ASSERT_TRUE(WIFEXITED(status));
                ASSERT_TRUE(WEXITSTATUS(status) <= 1);
                admitted += WEXITSTATUS(status);
        }
        ASSERT_EQ(admitted, 1);

        state_done(s, TAKE_PTR(dir));
}

static void test_race(void) {
        for (int round = 0; round < 5; round++)
                race_once(T0 + COOLDOWN, T0);
}

int main(void) {
        test_strings();
        test_open_at_n();
        test_success_resets_count();
        test_cooldown_and_trial();
        test_abandoned_trial();
        test_release();
        test_trial_owner_process();
        test_clock_backward();
        test_reset_and_ns();
        test_noop_writes_nothing();
        test_corrupt();
        test_race();
        return 0;
}
