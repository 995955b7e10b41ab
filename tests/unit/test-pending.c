/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pending actions: round trip, listing, the decide paths, short ids, corrupt records. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/pending.h"
#include "heal/state.h"
#include "test-util.h"

#define T0 UINT64_C(1700000000000000)
#define SEC UINT64_C(1000000)

/* A waiting action of @tier; strings are copies the caller frees with heal_pending_done(). */
static void make_pending(heal_pending *p, const char *idem_key, const char *tier, uint64_t created) {
        *p = (heal_pending){
                .idem_key = strdup(idem_key),
                .healer = strdup("worker-reviver"),
                .class = strdup("worker-dead"),
                .target = strdup("foo.service"),
                .incident = strdup("0123456789abcdef0123456789abcdef"),
                .intent = strdup("restart foo.service"),
                .tier = strdup(tier),
                .rerun_unit = strdup("heal-worker-reviver@foo.service"),
                .facts = json_pack("{s:s, s:i}", "result", "exit-code", "n_restarts", 2),
                .status = HEAL_PENDING_WAITING,
                .created_usec = created,
                .not_before_usec = strcmp(tier, "delayed") == 0 ? created + 300 * SEC : 0,
                .expires_usec = strcmp(tier, "approve") == 0 ? created + 3600 * SEC : 0,
        };
        ASSERT_TRUE(p->idem_key && p->healer && p->class && p->target && p->incident && p->intent &&
                    p->tier && p->rerun_unit && p->facts);
}

static void test_short_id(void) {
        char a[13], b[13], c[13];

        heal_pending_id("worker-dead|foo.service|abc", a);
        heal_pending_id("worker-dead|foo.service|abc", b);
        heal_pending_id("worker-dead|foo.service|abd", c);
        ASSERT_EQ(strlen(a), 12);
        ASSERT_TRUE(heal_pending_id_valid(a));
        ASSERT_STREQ(a, b);
        ASSERT_TRUE(strcmp(a, c) != 0);

        ASSERT_TRUE(!heal_pending_id_valid("abc"));
        ASSERT_TRUE(!heal_pending_id_valid("ABCDEF012345"));
        ASSERT_TRUE(!heal_pending_id_valid("../../etc/pa"));
        ASSERT_TRUE(!heal_pending_id_valid(NULL));
}

static void test_round_trip(heal_state *s) {
        _cleanup_(heal_pending_done) heal_pending p = {}, q = {};

        make_pending(&p, "worker-dead|foo.service|rt", "approve", T0);
        p.decided_by = strdup("alice");
        p.incident_id = strdup("fedcba9876543210fedcba9876543210");
        p.decided_usec = T0 + 7;
        ASSERT_TRUE(p.decided_by && p.incident_id);
        ASSERT_OK(heal_pending_save(s, &p));
        /* save derives the id; the caller's struct is not changed */
        ASSERT_STREQ(p.id, "");
        heal_pending_id(p.idem_key, p.id);

        ASSERT_OK(heal_pending_load(s, p.id, &q));
        ASSERT_STREQ(q.id, p.id);
        ASSERT_STREQ(q.idem_key, p.idem_key);
        ASSERT_STREQ(q.healer, p.healer);
        ASSERT_STREQ(q.class, p.class);
        ASSERT_STREQ(q.target, p.target);
        ASSERT_STREQ(q.incident, p.incident);
        ASSERT_STREQ(q.intent, p.intent);
        ASSERT_STREQ(q.tier, p.tier);
        ASSERT_STREQ(q.rerun_unit, p.rerun_unit);
        ASSERT_STREQ(q.decided_by, "alice");
        ASSERT_STREQ(q.incident_id, "fedcba9876543210fedcba9876543210");
        ASSERT_EQ(q.decided_usec, T0 + 7);
        ASSERT_EQ(q.status, HEAL_PENDING_WAITING);
        ASSERT_EQ(q.created_usec, p.created_usec);
        ASSERT_EQ(q.not_before_usec, p.not_before_usec);
        ASSERT_EQ(q.expires_usec, p.expires_usec);
        ASSERT_TRUE(json_equal(q.facts, p.facts));

        /* a mismatching caller id is refused instead of filed under another key */
        strcpy(p.id, "000000000000");
        ASSERT_EQ(heal_pending_save(s, &p), -EINVAL);

        ASSERT_OK(heal_pending_remove(s, q.id));
        heal_pending_done(&p);
        ASSERT_EQ(heal_pending_load(s, q.id, &p), -ENOENT);
}

static void test_optional_null(heal_state *s) {
        _cleanup_(heal_pending_done) heal_pending p = {}, q = {};

        make_pending(&p, "worker-dead|foo.service|nulls", "delayed", T0);
        free(p.incident);
        p.incident = NULL;
        json_decref(p.facts);
        p.facts = NULL;
        ASSERT_OK(heal_pending_save(s, &p));
        heal_pending_id(p.idem_key, p.id);
        ASSERT_OK(heal_pending_load(s, p.id, &q));
        ASSERT_TRUE(q.incident == NULL);
        ASSERT_TRUE(q.facts == NULL);
        ASSERT_TRUE(q.decided_by == NULL);
        ASSERT_TRUE(q.incident_id == NULL);
        ASSERT_OK(heal_pending_remove(s, p.id));
}

/* A record written before incident_id and decided_usec were kept still loads. */
static void test_old_record(heal_state *s) {
        _cleanup_(heal_pending_done) heal_pending p = {}, q = {};
        _cleanup_json_ json_t *old = NULL;

        make_pending(&p, "worker-dead|foo.service|old", "approve", T0);
        heal_pending_id(p.idem_key, p.id);
        old = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:i, s:I}", "id", p.id, "idem_key",
                        p.idem_key, "class", p.class, "target", p.target, "tier", p.tier, "status",
                        "approved", "decided_by", "carol", "incident", p.incident, "created_usec",
                        (json_int_t) T0, "not_before_usec", 0, "expires_usec", (json_int_t) p.expires_usec);
        ASSERT_TRUE(old);
        ASSERT_OK(heal_state_write(s, "pending", p.id, old));
        ASSERT_OK(heal_pending_load(s, p.id, &q));
        ASSERT_EQ(q.status, HEAL_PENDING_APPROVED);
        ASSERT_STREQ(q.decided_by, "carol");
        ASSERT_TRUE(q.incident_id == NULL);
        ASSERT_EQ(q.decided_usec, 0);
        /* With no decision time, an old approval counts from the plan's expiry. */
        ASSERT_TRUE(!heal_pending_over(&q, q.expires_usec + 3600 * SEC - 1));
        ASSERT_TRUE(heal_pending_over(&q, q.expires_usec + 3600 * SEC));
}

static void test_list(heal_state *s) {
        const char *keys[] = { "c|t|3", "c|t|1", "c|t|2" };
        const uint64_t created[] = { T0 + 3, T0 + 1, T0 + 2 };
        heal_pending *a = NULL;
        size_t n = 99;

        ASSERT_EQ(heal_pending_list(s, &a, &n), 0);
        ASSERT_EQ(n, 0);
        free(a);

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_(heal_pending_done) heal_pending p = {};
                make_pending(&p, keys[i], "approve", created[i]);
                ASSERT_OK(heal_pending_save(s, &p));
        }

        ASSERT_EQ(heal_pending_list(s, &a, &n), 3);
        ASSERT_EQ(n, 3);
        /* oldest first */
        ASSERT_STREQ(a[0].idem_key, "c|t|1");
        ASSERT_STREQ(a[1].idem_key, "c|t|2");
        ASSERT_STREQ(a[2].idem_key, "c|t|3");
        for (size_t i = 0; i < n; i++) {
                ASSERT_OK(heal_pending_remove(s, a[i].id));
                heal_pending_done(&a[i]);
        }
        free(a);
}

static void test_decide(heal_state *s) {
        _cleanup_(heal_pending_done) heal_pending ap = {}, dl = {}, got = {}, again = {};

        make_pending(&ap, "worker-dead|foo.service|approve", "approve", T0);
        make_pending(&dl, "worker-dead|foo.service|delayed", "delayed", T0);
        ASSERT_OK(heal_pending_save(s, &ap));
        ASSERT_OK(heal_pending_save(s, &dl));
        heal_pending_id(ap.idem_key, ap.id);
        heal_pending_id(dl.idem_key, dl.id);

        /* approve within the expiry: recorded, with who decided */
        ASSERT_EQ(heal_pending_decide(s, ap.id, HEAL_PENDING_APPROVED, "alice", T0 + 60 * SEC, &got), 0);
        ASSERT_EQ(got.status, HEAL_PENDING_APPROVED);
        ASSERT_EQ(got.decided_usec, T0 + 60 * SEC);
        ASSERT_STREQ(got.decided_by, "alice");
        ASSERT_STREQ(got.rerun_unit, "heal-worker-reviver@foo.service");
        heal_pending_done(&got);
        ASSERT_OK(heal_pending_load(s, ap.id, &got));
        ASSERT_EQ(got.status, HEAL_PENDING_APPROVED);
        ASSERT_STREQ(got.decided_by, "alice");
        ASSERT_EQ(got.decided_usec, T0 + 60 * SEC);
        heal_pending_done(&got);

        /* twice: the first decision stands */
        ASSERT_EQ(heal_pending_decide(s, ap.id, HEAL_PENDING_CANCELLED, "bob", T0 + 61 * SEC, &got),
                  -EALREADY);
        ASSERT_OK(heal_pending_load(s, ap.id, &got));
        ASSERT_EQ(got.status, HEAL_PENDING_APPROVED);
        ASSERT_STREQ(got.decided_by, "alice");
        heal_pending_done(&got);

        /* cancel a delayed action inside its window; a second cancel is -EALREADY */
        ASSERT_EQ(heal_pending_decide(s, dl.id, HEAL_PENDING_CANCELLED, "bob", T0 + 10 * SEC, NULL), 0);
        ASSERT_OK(heal_pending_load(s, dl.id, &got));
        ASSERT_EQ(got.status, HEAL_PENDING_CANCELLED);
        ASSERT_STREQ(got.decided_by, "bob");
        heal_pending_done(&got);
        ASSERT_EQ(heal_pending_decide(s, dl.id, HEAL_PENDING_CANCELLED, "bob", T0 + 11 * SEC, NULL),
                  -EALREADY);

        /* expired approve plan: -ESTALE and the record is unchanged */
        heal_pending_done(&ap);
        make_pending(&ap, "worker-dead|foo.service|approve-late", "approve", T0);
        ASSERT_OK(heal_pending_save(s, &ap));
        heal_pending_id(ap.idem_key, ap.id);
        ASSERT_TRUE(!heal_pending_stale(&ap, ap.expires_usec - 1));
        ASSERT_TRUE(heal_pending_stale(&ap, ap.expires_usec));
        ASSERT_EQ(heal_pending_decide(s, ap.id, HEAL_PENDING_APPROVED, "alice", ap.expires_usec, NULL),
                  -ESTALE);
        ASSERT_OK(heal_pending_load(s, ap.id, &again));
        ASSERT_EQ(again.status, HEAL_PENDING_WAITING);
        ASSERT_TRUE(again.decided_by == NULL);
        heal_pending_done(&again);
        /* one microsecond before expiry still decides */
        ASSERT_EQ(heal_pending_decide(s, ap.id, HEAL_PENDING_CANCELLED, "alice", ap.expires_usec - 1, NULL),
                  0);

        /* delayed action past its window runs by itself: too late to cancel */
        heal_pending_done(&dl);
        make_pending(&dl, "worker-dead|foo.service|delayed-late", "delayed", T0);
        ASSERT_OK(heal_pending_save(s, &dl));
        heal_pending_id(dl.idem_key, dl.id);
        ASSERT_EQ(heal_pending_decide(s, dl.id, HEAL_PENDING_CANCELLED, "bob", dl.not_before_usec + 1, NULL),
                  -ESTALE);
        ASSERT_OK(heal_pending_load(s, dl.id, &again));
        ASSERT_EQ(again.status, HEAL_PENDING_WAITING);

        /* unknown and malformed ids */
        ASSERT_EQ(heal_pending_decide(s, "0123456789ab", HEAL_PENDING_APPROVED, "x", T0, NULL), -ENOENT);
        ASSERT_EQ(heal_pending_decide(s, "../escape", HEAL_PENDING_APPROVED, "x", T0, NULL), -ENOENT);
        /* waiting is not a decision */
        ASSERT_EQ(heal_pending_decide(s, dl.id, HEAL_PENDING_WAITING, "x", T0, NULL), -EINVAL);
}

/* When nobody may act on a record any more: the deadline logic, once. */
static void test_over(heal_state *s) {
        _cleanup_(heal_pending_done) heal_pending ap = {}, dl = {}, quick = {};
        const uint64_t min = HEAL_PENDING_MIN_SPAN_USEC;

        /* approve (span 3600 s): over exactly when it expires unapproved */
        make_pending(&ap, "c|t|ap", "approve", T0);
        ASSERT_TRUE(!heal_pending_over(&ap, ap.expires_usec - 1));
        ASSERT_TRUE(heal_pending_over(&ap, ap.expires_usec));
        /* approved: usable for one span after the decision, however late that was */
        ap.status = HEAL_PENDING_APPROVED;
        ap.decided_usec = ap.expires_usec - 1;
        ASSERT_TRUE(!heal_pending_over(&ap, ap.expires_usec + 3000 * SEC));
        ASSERT_TRUE(!heal_pending_over(&ap, ap.decided_usec + 3600 * SEC - 1));
        ASSERT_TRUE(heal_pending_over(&ap, ap.decided_usec + 3600 * SEC));
        ap.status = HEAL_PENDING_CANCELLED;
        ASSERT_TRUE(!heal_pending_over(&ap, ap.decided_usec + 3600 * SEC - 1));
        ASSERT_TRUE(heal_pending_over(&ap, ap.decided_usec + 3600 * SEC));

        /* delayed (window 300 s): due at not_before, runnable one more window */
        make_pending(&dl, "c|t|dl", "delayed", T0);
        ASSERT_TRUE(!heal_pending_over(&dl, dl.not_before_usec - 1));
        ASSERT_TRUE(heal_pending_stale(&dl, dl.not_before_usec));
        ASSERT_TRUE(!heal_pending_over(&dl, dl.not_before_usec + 300 * SEC - 1));
        ASSERT_TRUE(heal_pending_over(&dl, dl.not_before_usec + 300 * SEC));

        /* a window shorter than the minimum span gets the minimum */
        make_pending(&quick, "c|t|quick", "delayed", T0);
        quick.not_before_usec = T0 + SEC;
        ASSERT_TRUE(!heal_pending_over(&quick, quick.not_before_usec + min - 1));
        ASSERT_TRUE(heal_pending_over(&quick, quick.not_before_usec + min));
        quick.status = HEAL_PENDING_APPROVED;
        quick.decided_usec = T0;
        ASSERT_TRUE(!heal_pending_over(&quick, T0 + min - 1));
        ASSERT_TRUE(heal_pending_over(&quick, T0 + min));
        (void) s;
}

/* Compare-and-remove: only the record a decision was based on is consumed. */
static void test_take(heal_state *s) {
        _cleanup_(heal_pending_done) heal_pending dl = {}, cur = {};

        make_pending(&dl, "c|t|take", "delayed", T0);
        ASSERT_OK(heal_pending_save(s, &dl));
        heal_pending_id(dl.idem_key, dl.id);

        /* cancelled since it was loaded: kept, and the caller sees the cancel */
        ASSERT_OK(heal_pending_decide(s, dl.id, HEAL_PENDING_CANCELLED, "alice", T0 + SEC, NULL));
        ASSERT_EQ(heal_pending_take(s, &dl, &cur), 0);
        ASSERT_EQ(cur.status, HEAL_PENDING_CANCELLED);
        ASSERT_STREQ(cur.decided_by, "alice");
        heal_pending_done(&cur);
        ASSERT_OK(heal_pending_load(s, dl.id, &cur));
        ASSERT_EQ(cur.status, HEAL_PENDING_CANCELLED);
        heal_pending_done(&cur);

        /* replaced by a new plan (another window): kept too */
        ASSERT_OK(heal_pending_save(s, &dl));
        dl.not_before_usec += SEC;
        ASSERT_EQ(heal_pending_take(s, &dl, NULL), 0);
        dl.not_before_usec -= SEC;

        /* unchanged: removed, and then gone */
        ASSERT_EQ(heal_pending_take(s, &dl, &cur), 1);
        ASSERT_EQ(heal_pending_load(s, dl.id, &cur), -ENOENT);
        ASSERT_EQ(heal_pending_take(s, &dl, &cur), -ENOENT);
}

typedef struct gc_seen {
        unsigned n;
        char ids[8][13];
} gc_seen;

static void gc_observe(const heal_pending *p, void *userdata) {
        gc_seen *seen = userdata;

        ASSERT_TRUE(seen->n < ELEMENTSOF(seen->ids));
        memcpy(seen->ids[seen->n++], p->id, 13);
}

static bool seen_id(const gc_seen *seen, const char *id) {
        for (unsigned i = 0; i < seen->n; i++)
                if (strcmp(seen->ids[i], id) == 0)
                        return true;
        return false;
}

static void test_gc(heal_state *s) {
        const uint64_t now = T0 + 7200 * SEC;
        _cleanup_(heal_pending_done) heal_pending live_ap = {}, old_ap = {}, live_dl = {}, old_dl = {},
                                                  old_ok = {}, old_no = {}, busy = {}, q = {};
        _cleanup_close_ int lock_fd = -EBADF;
        gc_seen seen = {};

        make_pending(&live_ap, "c|t|live-ap", "approve", now - 10 * SEC);      /* expires in 3590 s */
        make_pending(&old_ap, "c|t|old-ap", "approve", now - 3600 * SEC);      /* expired just now */
        make_pending(&live_dl, "c|t|live-dl", "delayed", now - 400 * SEC);     /* due 100 s ago */
        make_pending(&old_dl, "c|t|old-dl", "delayed", now - 600 * SEC);       /* due one window ago */
        make_pending(&old_ok, "c|t|old-ok", "approve", T0);                    /* approved, never run */
        old_ok.status = HEAL_PENDING_APPROVED;
        old_ok.decided_usec = now - 3600 * SEC;
        make_pending(&old_no, "c|t|old-no", "delayed", T0);                    /* cancelled long ago */
        old_no.status = HEAL_PENDING_CANCELLED;
        old_no.decided_usec = T0 + SEC;
        make_pending(&busy, "c|t|busy", "approve", T0);                        /* expired, but in use */
        heal_pending *all[] = { &live_ap, &old_ap, &live_dl, &old_dl, &old_ok, &old_no, &busy };
        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                ASSERT_OK(heal_pending_save(s, all[i]));
                heal_pending_id(all[i]->idem_key, all[i]->id);
        }
        ASSERT_OK(heal_state_lock(s, "pending", busy.id, &lock_fd));

        ASSERT_EQ(heal_pending_gc(s, now, gc_observe, &seen), 4);
        ASSERT_EQ(seen.n, 4);
        ASSERT_TRUE(seen_id(&seen, old_ap.id) && seen_id(&seen, old_dl.id) && seen_id(&seen, old_ok.id) &&
                    seen_id(&seen, old_no.id));
        ASSERT_EQ(heal_pending_load(s, old_ap.id, &q), -ENOENT);
        ASSERT_EQ(heal_pending_load(s, old_no.id, &q), -ENOENT);
        ASSERT_OK(heal_pending_load(s, live_ap.id, &q));
        heal_pending_done(&q);
        ASSERT_OK(heal_pending_load(s, live_dl.id, &q));
        heal_pending_done(&q);
        ASSERT_OK(heal_pending_load(s, busy.id, &q));
        heal_pending_done(&q);

        /* once free, the busy one goes too; nothing else is over yet */
        closep(&lock_fd);
        ASSERT_EQ(heal_pending_gc(s, now, NULL, NULL), 1);
        ASSERT_EQ(heal_pending_load(s, busy.id, &q), -ENOENT);
        ASSERT_EQ(heal_pending_gc(s, now, NULL, NULL), 0);
}

static void test_corrupt(heal_state *s) {
        _cleanup_(heal_pending_done) heal_pending p = {}, q = {};
        _cleanup_json_ json_t *bad = NULL;
        heal_pending *a = NULL;
        size_t n = 0;

        make_pending(&p, "worker-dead|foo.service|corrupt", "approve", T0);
        heal_pending_id(p.idem_key, p.id);

        /* a record with a field of the wrong type */
        bad = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "id", p.id, "idem_key",
                        p.idem_key, "class", p.class, "target", p.target, "tier", p.tier, "status",
                        "waiting", "created_usec", "yesterday", "healer", "x", "not_before_usec", 0,
                        "expires_usec", 0);
        ASSERT_TRUE(bad);
        ASSERT_OK(heal_state_write(s, "pending", p.id, bad));
        ASSERT_EQ(heal_pending_load(s, p.id, &q), -EBADMSG);
        ASSERT_EQ(heal_pending_decide(s, p.id, HEAL_PENDING_APPROVED, "x", T0, NULL), -EBADMSG);

        /* an unknown status */
        ASSERT_OK(json_object_set_new(bad, "created_usec", json_integer((json_int_t) T0)));
        ASSERT_OK(json_object_set_new(bad, "status", json_string("maybe")));
        ASSERT_OK(heal_state_write(s, "pending", p.id, bad));
        ASSERT_EQ(heal_pending_load(s, p.id, &q), -EBADMSG);

        /* a valid record filed under a key its idem_key does not derive */
        ASSERT_OK(json_object_set_new(bad, "status", json_string("waiting")));
        ASSERT_OK(heal_state_write(s, "pending", p.id, bad));
        ASSERT_OK(heal_pending_load(s, p.id, &q)); /* the fixed record itself loads */
        heal_pending_done(&q);
        ASSERT_OK(json_object_set_new(bad, "idem_key", json_string("worker-dead|other|x")));
        ASSERT_OK(heal_state_write(s, "pending", p.id, bad));
        ASSERT_EQ(heal_pending_load(s, p.id, &q), -EBADMSG);

        /* a record file that is not a state record at all (torn, overwritten):
         * first a good record, so the file surely is the one that is loaded */
        _cleanup_free_ char *name = heal_state_escape(p.id), *path = NULL;
        ASSERT_OK(json_object_set_new(bad, "idem_key", json_string(p.idem_key)));
        ASSERT_OK(heal_state_write(s, "pending", p.id, bad));
        ASSERT_OK(heal_pending_load(s, p.id, &q));
        heal_pending_done(&q);
        ASSERT_TRUE(name);
        ASSERT_TRUE(asprintf(&path, "%s/pending/%s", heal_state_path(s), name) > 0);
        ASSERT_EQ(access(path, F_OK), 0);
        FILE *f = fopen(path, "we");
        ASSERT_TRUE(f);
        fputs("{\"heal_state\": 1, \"sum\": \"0\", \"da", f);
        ASSERT_EQ(fclose(f), 0);
        ASSERT_EQ(heal_pending_load(s, p.id, &q), -EBADMSG);

        /* list leaves the corrupt one out, keeps the good ones */
        heal_pending_done(&p);
        make_pending(&p, "worker-dead|foo.service|good", "approve", T0);
        ASSERT_OK(heal_pending_save(s, &p));
        ASSERT_EQ(heal_pending_list(s, &a, &n), 1);
        ASSERT_STREQ(a[0].idem_key, "worker-dead|foo.service|good");
        heal_pending_done(&a[0]);
        free(a);
}

/* Each test on its own fresh state dir, so listings see only their own records. */
static void run(void (*fn)(heal_state *s)) {
        _cleanup_free_ char *dir = test_tmpdir();
        heal_state *s = NULL;

        ASSERT_OK(heal_state_open(dir, &s));
        fn(s);
        heal_state_free(s);
        test_rm_rf(dir);
}

int main(void) {
        test_short_id();
        run(test_round_trip);
        run(test_optional_null);
        run(test_old_record);
        run(test_over);
        run(test_take);
        run(test_gc);
        run(test_list);
        run(test_decide);
        run(test_corrupt);
        return 0;
}
