/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The guard pipeline end to end on a fixture state dir and policy: the order
 * of the guards, shadow mode, idempotency, breaker, budgets, every tier, and
 * failing closed on corrupt or full state. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/audit.h"
#include "heal/budget.h"
#include "heal/cleanup.h"
#include "heal/guard.h"
#include "heal/idempotency.h"
#include "heal/pending.h"
#include "heal/policy.h"
#include "heal/state.h"
#include "test-util.h"

#define USEC UINT64_C(1000000)
#define T0 (UINT64_C(1700000000) * USEC)
#define RERUN_UNIT "heal-test-rerun@x.service"

typedef struct fixture {
        char *dir;
        heal_state *state;
        heal_policy *policy;
        unsigned n_policies;
        heal_guard g;

        int kill;           /* the kill switch hook's answer */
        unsigned kill_from; /* >0: engaged from this call on (1-based) */
        unsigned n_kill;

        unsigned n_sched;
        char *sched_unit;
        uint64_t sched_delay;

        unsigned n_act;
        int act_ret;
        int verify_ret;
        const char *intent; /* what the helper says it would do; NULL: "restart it" */

        json_t *events; /* every audit record, in order */
        size_t last;    /* index of the first record of the last pass */

        /* A human cancels pending cancel_id at the kill switch's check number
         * cancel_at_check (the second is right before the consume). */
        char cancel_id[13];
        unsigned cancel_at_check;
        uint64_t cancel_now;
        unsigned n_cancelled;

        /* verify_nested(): the pass it runs meanwhile, and what it must say. */
        const char *nested_incident;
        const char *nested_reason;
        unsigned n_nested;
} fixture;

static void observe(const json_t *rec, void *userdata) {
        fixture *f = userdata;
        ASSERT_OK(json_array_append_new(f->events, json_deep_copy(rec)));
}

static int hook_kill(void *userdata, char **ret_reason) {
        fixture *f = userdata;
        int r = f->kill;

        f->n_kill++;
        if (f->cancel_at_check > 0 && f->n_kill == f->cancel_at_check) {
                ASSERT_OK(heal_pending_decide(f->state, f->cancel_id, HEAL_PENDING_CANCELLED, "carol",
                                              f->cancel_now, NULL));
                f->n_cancelled++;
        }
        if (f->kill_from > 0 && f->n_kill >= f->kill_from)
                r = 1;
        if (r != 0) {
                *ret_reason = strdup(r > 0 ? "heal.target is masked (test)" : "bus unreachable (test)");
                ASSERT_TRUE(*ret_reason);
        }
        return r;
}

static int hook_sched(void *userdata, const char *unit, uint64_t delay_usec) {
        fixture *f = userdata;

        f->n_sched++;
        free(f->sched_unit);
        f->sched_unit = strdup(unit);
        f->sched_delay = delay_usec;
        return 0;
}

static int act_cb(void *userdata, char **ret_detail) {
        fixture *f = userdata;

        f->n_act++;
        if (f->act_ret < 0)
                *ret_detail = strdup("boom");
        return f->act_ret;
}

static int verify_cb(void *userdata, char **ret_detail) {
        fixture *f = userdata;
        return f->verify_ret;
}

static void write_text(const char *path, const char *text) {
        FILE *fp = fopen(path, "we");
        ASSERT_TRUE(fp);
        ASSERT_TRUE(fputs(text, fp) >= 0);
        ASSERT_EQ(fclose(fp), 0);
}

/* Load @json as the only policy drop-in (a fresh dir each time). */
static void fixture_policy(fixture *f, const char *json) {
        _cleanup_free_ char *pdir = NULL, *file = NULL, *err = NULL;
        heal_policy *p = NULL;

        ASSERT_TRUE(asprintf(&pdir, "%s/policy-%u", f->dir, f->n_policies++) > 0);
        ASSERT_EQ(mkdir(pdir, 0700), 0);
        ASSERT_TRUE(asprintf(&file, "%s/10-test.json", pdir) > 0);
        write_text(file, json);
        const char *dirs[] = {pdir, NULL};
        if (heal_policy_load(dirs, &p, &err) < 0) {
                fprintf(stderr, "policy: %s\n", err ?: "?");
                abort();
        }
        heal_policy_free(f->policy);
        f->policy = p;
        f->g.policy = p;
}

/* @state_dir: NULL for <tmp>/state. */
static fixture *fixture_new_at(const char *policy_json, const char *state_dir) {
        _cleanup_free_ char *sdir = NULL;
        fixture *f = calloc(1, sizeof(*f));

        ASSERT_TRUE(f);
        f->dir = test_tmpdir();
        if (!state_dir) {
                ASSERT_TRUE(asprintf(&sdir, "%s/state", f->dir) > 0);
                state_dir = sdir;
        }
        ASSERT_OK(heal_state_open(state_dir, &f->state));
        f->events = json_array();
        ASSERT_TRUE(f->events);
        heal_audit_set_observer(observe, f);
        f->g = (heal_guard) {
                .state = f->state,
                .now_usec = T0,
                .kill_switch = hook_kill,
                .schedule_rerun = hook_sched,
                .hook_userdata = f,
        };
        f->verify_ret = 1;
        if (policy_json)
                fixture_policy(f, policy_json);
        return f;
}

static fixture *fixture_new(const char *policy_json) {
        return fixture_new_at(policy_json, NULL);
}

static void fixture_free(fixture *f) {
        heal_audit_set_observer(NULL, NULL);
        heal_state_free(f->state);
        heal_policy_free(f->policy);
        json_decref(f->events);
        free(f->sched_unit);
        test_rm_rf(f->dir);
        free(f->dir);
        free(f);
}

static const char *field(const json_t *rec, const char *name) {
        return json_string_value(json_object_get(rec, name));
}

static unsigned count_from(const fixture *f, size_t from, const char *event, const char *reason) {
        unsigned n = 0;

        for (size_t i = from; i < json_array_size(f->events); i++) {
                const json_t *e = json_array_get(f->events, i);
                if (strcmp(field(e, "HEAL_EVENT") ?: "", event) != 0)
                        continue;
                if (reason && strcmp(field(e, "HEAL_REASON") ?: "", reason) != 0)
                        continue;
                n++;
        }
        return n;
}

/* Events of the last pass / of the whole fixture. */
static unsigned count_last(const fixture *f, const char *event, const char *reason) {
        return count_from(f, f->last, event, reason);
}
static unsigned count_all(const fixture *f, const char *event, const char *reason) {
        return count_from(f, 0, event, reason);
}

/* The last record of @event in the last pass, or abort. */
static const json_t *last_event(const fixture *f, const char *event) {
        for (size_t i = json_array_size(f->events); i > f->last; i--) {
                const json_t *e = json_array_get(f->events, i - 1);
                if (strcmp(field(e, "HEAL_EVENT") ?: "", event) == 0)
                        return e;
        }
        fprintf(stderr, "no %s event in the last pass\n", event);
        abort();
}

/* Every record of one pass shares one incident id and the incident's fields. */
static void check_pass_records(const fixture *f, const char *class, const char *target,
                               const char *incident) {
        const char *first = NULL;

        ASSERT_TRUE(json_array_size(f->events) > f->last);
        for (size_t i = f->last; i < json_array_size(f->events); i++) {
                const json_t *e = json_array_get(f->events, i);
                const char *id = field(e, "HEAL_INCIDENT");

                /* The guard's gc audits other incidents' records it aged out. */
                if (strcmp(field(e, "HEAL_REASON") ?: "", "aged-out") == 0)
                        continue;

                ASSERT_TRUE(id && *id);
                if (!first)
                        first = id;
                ASSERT_STREQ(id, first);
                if (incident && *incident)
                        ASSERT_STREQ(id, incident);
                ASSERT_STREQ(field(e, "HEAL_CLASS"), class);
                ASSERT_STREQ(field(e, "HEAL_TARGET"), target);
                ASSERT_STREQ(field(e, "HEAL_HEALER"), "test-healer");
                ASSERT_STREQ(field(e, "HEAL_INTENT"), f->intent ?: "restart it");
                if (f->g.policy)
                        ASSERT_STREQ(field(e, "HEAL_POLICY_DIGEST"), f->g.policy->digest);
        }
}

static heal_outcome run_full(fixture *f, const char *class, const char *target, const char *incident,
                             int tier_override, const char *rerun_unit) {
        _cleanup_json_ json_t *facts = json_pack("{s:s, s:i}", "before", "failed", "n_restarts", 4);
        heal_outcome o = (heal_outcome) -1;

        ASSERT_TRUE(facts);
        const heal_action a = {
                .healer = "test-healer",
                .class = class,
                .target = target,
                .incident = incident,
                .intent = f->intent ?: "restart it",
                .rollback = "nothing to undo",
                .facts = facts,
                .tier_override = tier_override,
                .rerun_unit = rerun_unit,
                .act = act_cb,
                .verify = verify_cb,
                .userdata = f,
        };
        f->last = json_array_size(f->events);
        ASSERT_OK(heal_guard_run(&f->g, &a, &o));
        check_pass_records(f, class, target, incident);
        return o;
}

static heal_outcome run(fixture *f, const char *class, const char *target, const char *incident) {
        return run_full(f, class, target, incident, -1, RERUN_UNIT);
}

#define CLASS(name, mode, tier, extra)                                                                      \
        "\"" name "\": {\"mode\": \"" mode "\", \"tier\": \"" tier "\", \"targets\": [\"*.service\"],"      \
        " \"budget\": {\"actions\": 1000, \"per_s\": 3600}," extra                                          \
        " \"target_budget\": {\"actions\": 100, \"per_s\": 3600}}"

#define POLICY(global_actions, classes)                                                                     \
        "{\"version\": 1, \"global\": {\"budget\": {\"actions\": " #global_actions ", \"per_s\": 3600}},"   \
        " \"classes\": {" classes "}}"

static const char *const policy_basic = POLICY(
        1000,
        CLASS("live-auto", "live", "auto", "") "," CLASS("shadow-auto", "shadow", "auto", "") "," CLASS(
                "live-human", "live",
                "human", "") "," CLASS("live-delayed", "live", "delayed",
                                       "\"delay_s\": 60,") "," CLASS("live-delayed-long", "live", "delayed",
                                                                     "\"delay_s\": 600, \"idempotency_s\": "
                                                                     "300,") "," CLASS("live-approve",
                                                                                       "live", "approve",
                                                                                       "\"approve_expiry_"
                                                                                       "s\": 120,"));

static void idem_key_id(const char *class, const char *target, const char *incident, char id[static 13]) {
        _cleanup_free_ char *key = NULL;

        ASSERT_OK(heal_idem_key(class, target, incident, T0, 300 * USEC, &key));
        heal_pending_id(key, id);
}

static uint32_t tokens(fixture *f, const char *ns, const char *key, uint32_t actions) {
        heal_budget_req req = {.key = key, .spec = {.actions = actions, .per_s = 3600}};
        uint32_t n = 0;

        ASSERT_OK(heal_budget_peek(f->state, ns, &req, f->g.now_usec, &n));
        return n;
}

/* ---- 1, 2: kill switch and policy, and their order ------------------------ */

static void test_kill_switch_first(void) {
        fixture *f = fixture_new(policy_basic);

        /* Engaged wins over an invalid policy: no escalation, no act. */
        f->kill = 1;
        f->g.policy = NULL;
        f->g.policy_error = "10-test.json:1:2: broken";
        ASSERT_EQ(run(f, "live-auto", "a.service", "k1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "kill-switch"), 1);
        ASSERT_EQ(count_last(f, "escalated", NULL), 0);
        ASSERT_EQ(f->n_act, 0);

        /* Cannot tell: fail closed and page. */
        f->kill = -EHOSTUNREACH;
        f->g.policy = f->policy;
        ASSERT_EQ(run(f, "live-auto", "a.service", "k1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "kill-switch-unknown"), 1);
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        ASSERT_EQ(f->n_act, 0);

        /* No hook and no bus: cannot tell either. */
        f->g.kill_switch = NULL;
        ASSERT_EQ(run(f, "live-auto", "a.service", "k1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "kill-switch-unknown"), 1);
        ASSERT_EQ(f->n_act, 0);
        f->g.kill_switch = hook_kill;

        /* Off: the same incident acts (the skips above did not claim it), and the
         * switch was asked twice: at step 1 and right before act. */
        f->kill = 0;
        f->n_kill = 0;
        ASSERT_EQ(run(f, "live-auto", "a.service", "k1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_act, 1);
        ASSERT_EQ(f->n_kill, 2);

        /* Engaged between step 1 and act: the second check stops it, and the
         * incident is released for a later try. */
        f->n_kill = 0;
        f->kill_from = 2;
        ASSERT_EQ(run(f, "live-auto", "b.service", "k2"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "kill-switch"), 1);
        ASSERT_EQ(count_last(f, "acting", NULL), 0);
        ASSERT_EQ(f->n_act, 1);
        f->kill_from = 0;
        ASSERT_EQ(run(f, "live-auto", "b.service", "k2"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_act, 2);

        fixture_free(f);
}

static void test_policy_guards(void) {
        fixture *f = fixture_new(policy_basic);

        f->g.policy = NULL;
        f->g.policy_error = "10-test.json:3:7: classes.x.mode: not one of shadow, live";
        ASSERT_EQ(run(f, "live-auto", "a.service", "p1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "policy-invalid"), 1);
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        ASSERT_TRUE(strstr(field(last_event(f, "skipped"), "MESSAGE"), "classes.x.mode"));
        ASSERT_EQ(f->n_act, 0);
        f->g.policy = f->policy;

        ASSERT_EQ(run(f, "no-such-class", "a.service", "p1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "class-not-configured"), 1);
        ASSERT_EQ(count_last(f, "escalated", NULL), 0);

        /* Excluded by default ("heal-*"), and not matching "*.service". */
        ASSERT_EQ(run(f, "live-auto", "heal-worker-reviver@a.service", "p1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "not-targeted"), 1);
        ASSERT_EQ(run(f, "live-auto", "/var", "p1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "not-targeted"), 1);
        ASSERT_EQ(count_all(f, "escalated", NULL), 1);
        ASSERT_EQ(f->n_act, 0);

        fixture_free(f);
}

/* ---- 3: idempotency, and the records and metrics of an acting pass -------- */

static void test_auto_idempotent(void) {
        _cleanup_free_ char *prom_path = NULL, *prom = NULL;
        fixture *f = fixture_new(policy_basic);
        const json_t *e;
        FILE *fp;

        ASSERT_EQ(run(f, "live-auto", "a.service", "inv-1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_act, 1);
        ASSERT_EQ(count_last(f, "acting", NULL), 1);
        ASSERT_EQ(count_last(f, "verified", NULL), 1);
        e = last_event(f, "acting");
        ASSERT_STREQ(field(e, "HEAL_BEFORE"), "failed");
        ASSERT_STREQ(field(e, "HEAL_MODE"), "live");
        ASSERT_STREQ(field(e, "HEAL_TIER"), "auto");
        ASSERT_STREQ(field(e, "HEAL_OWNER"), "heal");
        ASSERT_STREQ(field(e, "HEAL_ROLLBACK"), "nothing to undo");
        ASSERT_TRUE(strstr(field(e, "HEAL_FACTS"), "n_restarts"));

        /* The same incident again, however often: acted once. */
        ASSERT_EQ(run(f, "live-auto", "a.service", "inv-1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "idempotent"), 1);
        ASSERT_EQ(run(f, "live-auto", "a.service", "inv-1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(f->n_act, 1);

        /* Without an incident id, passes in one time bucket are one incident
         * and share a derived id. */
        ASSERT_EQ(run(f, "live-auto", "b.service", NULL), HEAL_OUTCOME_VERIFIED);
        _cleanup_free_ char *derived = strdup(field(last_event(f, "verified"), "HEAL_INCIDENT"));
        ASSERT_TRUE(derived && strlen(derived) == 32);
        f->g.now_usec = T0 + 10 * USEC;
        ASSERT_EQ(run(f, "live-auto", "b.service", NULL), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "idempotent"), 1);
        ASSERT_STREQ(field(last_event(f, "skipped"), "HEAL_INCIDENT"), derived);
        ASSERT_EQ(f->n_act, 2);

        /* A new incident of the same target acts. */
        ASSERT_EQ(run(f, "live-auto", "a.service", "inv-2"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_act, 3);

        /* Every event was counted for Prometheus. */
        ASSERT_TRUE(asprintf(&prom_path, "%s/heal.prom", getenv("HEAL_METRICS_DIR")) > 0);
        fp = fopen(prom_path, "re");
        ASSERT_TRUE(fp);
        size_t n = 0;
        ASSERT_TRUE(getdelim(&prom, &n, '\0', fp) > 0);
        fclose(fp);
        ASSERT_TRUE(strstr(prom, "heal_events_total{class=\"live-auto\",event=\"verified\"} 3"));
        ASSERT_TRUE(strstr(prom, "heal_events_total{class=\"live-auto\",event=\"skipped\"} 3"));
        ASSERT_TRUE(strstr(prom, "heal_helper_heartbeat_timestamp_seconds{healer=\"test-healer\"}"));

        fixture_free(f);
}

/* ---- 7: shadow ------------------------------------------------------------ */

static void test_shadow(void) {
        fixture *f = fixture_new(POLICY(2, CLASS("c", "shadow", "auto", "")));

        ASSERT_EQ(run(f, "c", "a.service", "s1"), HEAL_OUTCOME_WOULD_ACT);
        ASSERT_EQ(count_last(f, "would-act", NULL), 1);
        ASSERT_EQ(count_last(f, "acting", NULL), 0);
        ASSERT_STREQ(field(last_event(f, "would-act"), "HEAL_MODE"), "shadow");
        /* One incident, one would-act. */
        ASSERT_EQ(run(f, "c", "a.service", "s1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "idempotent"), 1);
        ASSERT_EQ(run(f, "c", "b.service", "s2"), HEAL_OUTCOME_WOULD_ACT);
        /* Shadow's own budget runs out, as live's would. */
        ASSERT_EQ(run(f, "c", "c.service", "s3"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "budget-exhausted", "budget-global"), 1);
        ASSERT_EQ(count_all(f, "would-act", NULL), 2);
        ASSERT_EQ(f->n_act, 0);

        /* Live's buckets were not touched. */
        ASSERT_EQ(tokens(f, HEAL_GUARD_NS_BUDGET, HEAL_BUDGET_KEY_GLOBAL, 2), 2);
        ASSERT_EQ(tokens(f, HEAL_GUARD_NS_SHADOW_BUDGET, HEAL_BUDGET_KEY_GLOBAL, 2), 0);

        /* Flip the class live: live has its whole budget, and shadow's claim on
         * incident s1 does not hide it from live. */
        fixture_policy(f, POLICY(2, CLASS("c", "live", "auto", "")));
        ASSERT_EQ(run(f, "c", "a.service", "s1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(run(f, "c", "d.service", "s4"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(run(f, "c", "e.service", "s5"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "budget-global"), 1);
        ASSERT_EQ(f->n_act, 2);

        fixture_free(f);
}

/* ---- 4: breaker ----------------------------------------------------------- */

static void test_breaker(void) {
        fixture *f = fixture_new(POLICY(
                1000, CLASS("c", "live", "auto", "\"breaker\": {\"failures\": 3, \"cooldown_s\": 600},")));
        const char *ids[] = {"b1", "b2", "b3"};

        f->verify_ret = 0;
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                ASSERT_EQ(run(f, "c", "x.service", ids[i]), HEAL_OUTCOME_VERIFY_FAILED);
                ASSERT_EQ(count_last(f, "breaker-opened", NULL), i == 2 ? 1 : 0);
        }
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        ASSERT_TRUE(strstr(field(last_event(f, "escalated"), "MESSAGE"), "crash loop"));
        ASSERT_EQ(f->n_act, 3);

        ASSERT_EQ(run(f, "c", "x.service", "b4"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "breaker-open"), 1);
        ASSERT_EQ(count_last(f, "escalated", NULL), 0);
        ASSERT_EQ(f->n_act, 3);
        /* Only this target: another one still heals. */
        f->verify_ret = 1;
        ASSERT_EQ(run(f, "c", "y.service", "b5"), HEAL_OUTCOME_VERIFIED);

        /* After the cooldown one trial runs; it works and closes the breaker. */
        f->g.now_usec = T0 + 601 * USEC;
        ASSERT_EQ(run(f, "c", "x.service", "b6"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(count_last(f, "breaker-closed", NULL), 1);
        ASSERT_EQ(f->n_act, 5);

        fixture_free(f);
}

static void test_action_failed(void) {
        fixture *f = fixture_new(POLICY(1000, CLASS("c", "live", "auto", "")));

        f->act_ret = -EIO;
        ASSERT_EQ(run(f, "c", "x.service", "f1"), HEAL_OUTCOME_ACTION_FAILED);
        ASSERT_EQ(count_last(f, "action-failed", "boom"), 1);
        ASSERT_EQ(count_last(f, "verified", NULL), 0);
        /* The claim was released: a later trigger of the incident may try again. */
        f->act_ret = 0;
        ASSERT_EQ(run(f, "c", "x.service", "f1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_act, 2);

        fixture_free(f);
}

/* ---- 5: budgets ----------------------------------------------------------- */

static void test_budget_exhaustion(void) {
        fixture *f = fixture_new(POLICY(5, CLASS("c", "live", "auto", "")));
        unsigned verified = 0, skipped = 0;

        for (unsigned i = 0; i < 20; i++) {
                char target[32], incident[32];

                snprintf(target, sizeof(target), "t%02u.service", i);
                snprintf(incident, sizeof(incident), "inc-%u", i);
                heal_outcome o = run(f, "c", target, incident);
                verified += o == HEAL_OUTCOME_VERIFIED;
                skipped += o == HEAL_OUTCOME_SKIPPED;
        }
        ASSERT_EQ(verified, 5);
        ASSERT_EQ(skipped, 15);
        ASSERT_EQ(f->n_act, 5);
        ASSERT_EQ(count_all(f, "budget-exhausted", "budget-global"), 15);
        ASSERT_EQ(count_all(f, "skipped", "budget-global"), 15);
        ASSERT_EQ(count_all(f, "escalated", NULL), 15);
        ASSERT_TRUE(strstr(field(last_event(f, "escalated"), "MESSAGE"), "has become the incident"));

        fixture_free(f);
}

static void test_budget_scopes(void) {
        fixture *f = fixture_new(POLICY(1000, "\"c\": {\"mode\": \"live\", \"targets\": [\"*\"], "
                                              "\"budget\": {\"actions\": 3, \"per_s\": 3600},"
                                              " \"target_budget\": {\"actions\": 2, \"per_s\": 3600}}"));

        ASSERT_EQ(run(f, "c", "a.service", "1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(run(f, "c", "a.service", "2"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(run(f, "c", "a.service", "3"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "budget-target"), 1);
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        ASSERT_EQ(run(f, "c", "b.service", "4"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(run(f, "c", "c.service", "5"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "budget-class"), 1);
        ASSERT_EQ(f->n_act, 3);
        /* A refused take took nothing: the global bucket lost only 3. */
        ASSERT_EQ(tokens(f, HEAL_GUARD_NS_BUDGET, HEAL_BUDGET_KEY_GLOBAL, 1000), 997);

        fixture_free(f);
}

/* ---- 6: tiers ------------------------------------------------------------- */

static void test_tier_human(void) {
        fixture *f = fixture_new(policy_basic);
        const json_t *e;

        ASSERT_EQ(run(f, "live-human", "a.service", "h1"), HEAL_OUTCOME_ESCALATED);
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        e = last_event(f, "escalated");
        ASSERT_STREQ(field(e, "HEAL_OWNER"), "human");
        ASSERT_STREQ(field(e, "HEAL_TIER"), "human");
        ASSERT_TRUE(strstr(field(e, "HEAL_FACTS"), "n_restarts"));
        ASSERT_EQ(f->n_act, 0);
        /* Handed over once: the same incident does not page again. */
        ASSERT_EQ(run(f, "live-human", "a.service", "h1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "escalated", NULL), 0);

        /* The helper may decide human for an auto class (start-limit-hit). */
        ASSERT_EQ(run_full(f, "live-auto", "a.service", "h2", HEAL_TIER_HUMAN, NULL),
                  HEAL_OUTCOME_ESCALATED);
        ASSERT_EQ(f->n_act, 0);

        fixture_free(f);
}

static void test_tier_delayed(void) {
        fixture *f = fixture_new(POLICY(2, CLASS("live-delayed", "live", "delayed", "\"delay_s\": 60,")));
        _cleanup_free_ char *needle = NULL;
        heal_pending p = {};
        char id[13];

        idem_key_id("live-delayed", "a.service", "d1", id);
        ASSERT_EQ(run(f, "live-delayed", "a.service", "d1"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(count_last(f, "pending", "in-cancel-window"), 1);
        ASSERT_TRUE(asprintf(&needle, "healctl cancel %s", id) > 0);
        ASSERT_TRUE(strstr(field(last_event(f, "pending"), "MESSAGE"), needle));
        ASSERT_EQ(f->n_sched, 1);
        ASSERT_STREQ(f->sched_unit, RERUN_UNIT);
        ASSERT_EQ(f->sched_delay, 60 * USEC);
        ASSERT_OK(heal_pending_load(f->state, id, &p));
        ASSERT_EQ(p.status, HEAL_PENDING_WAITING);
        ASSERT_EQ(p.not_before_usec, T0 + 60 * USEC);
        heal_pending_done(&p);
        /* Waiting took no token. */
        ASSERT_EQ(tokens(f, HEAL_GUARD_NS_BUDGET, HEAL_BUDGET_KEY_GLOBAL, 2), 2);

        f->g.now_usec = T0 + 30 * USEC;
        ASSERT_EQ(run(f, "live-delayed", "a.service", "d1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "in-cancel-window"), 1);
        ASSERT_EQ(f->n_sched, 1);
        ASSERT_EQ(f->n_act, 0);

        f->g.now_usec = T0 + 61 * USEC;
        ASSERT_EQ(run(f, "live-delayed", "a.service", "d1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_act, 1);
        ASSERT_EQ(heal_pending_load(f->state, id, &p), -ENOENT);
        ASSERT_EQ(run(f, "live-delayed", "a.service", "d1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "idempotent"), 1);
        ASSERT_EQ(f->n_act, 1);

        /* Cancelled: never acts, not even after the window. */
        f->g.now_usec = T0;
        idem_key_id("live-delayed", "b.service", "d2", id);
        ASSERT_EQ(run(f, "live-delayed", "b.service", "d2"), HEAL_OUTCOME_PENDING);
        ASSERT_OK(heal_pending_decide(f->state, id, HEAL_PENDING_CANCELLED, "alice", T0 + 5 * USEC, NULL));
        f->g.now_usec = T0 + 10 * USEC;
        ASSERT_EQ(run(f, "live-delayed", "b.service", "d2"), HEAL_OUTCOME_SKIPPED);
        /* healctl audited the cancel when alice made it: the guard only skips. */
        ASSERT_EQ(count_last(f, "cancelled", NULL), 0);
        ASSERT_EQ(count_last(f, "skipped", "cancelled"), 1);
        ASSERT_STREQ(field(last_event(f, "skipped"), "HEAL_OWNER"), "alice");
        ASSERT_EQ(heal_pending_load(f->state, id, &p), -ENOENT);
        f->g.now_usec = T0 + 61 * USEC;
        ASSERT_EQ(run(f, "live-delayed", "b.service", "d2"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(f->n_act, 1);

        /* Nothing to re-run the helper: a human instead. */
        ASSERT_EQ(run_full(f, "live-delayed", "c.service", "d3", -1, NULL), HEAL_OUTCOME_ESCALATED);
        ASSERT_EQ(f->n_sched, 2);
        ASSERT_EQ(f->n_act, 1);

        fixture_free(f);
}

/* Without the hook, the re-run is a transient systemd timer: a fake
 * systemd-run on $PATH records the command line it was given. */
static void test_default_scheduler(void) {
        fixture *f = fixture_new(policy_basic);
        _cleanup_free_ char *bin = NULL, *fake = NULL, *argsfile = NULL, *script = NULL, *path = NULL,
                            *args = NULL, *expect = NULL;
        const char *old_path = getenv("PATH");
        char id[13];
        size_t n = 0;
        FILE *fp;

        ASSERT_TRUE(asprintf(&bin, "%s/bin", f->dir) > 0);
        ASSERT_EQ(mkdir(bin, 0700), 0);
        ASSERT_TRUE(asprintf(&fake, "%s/systemd-run", bin) > 0);
        ASSERT_TRUE(asprintf(&argsfile, "%s/args", f->dir) > 0);
        ASSERT_TRUE(asprintf(&script, "#!/bin/sh\necho \"$*\" > '%s'\n", argsfile) > 0);
        write_text(fake, script);
        ASSERT_EQ(chmod(fake, 0700), 0);
        ASSERT_TRUE(asprintf(&path, "%s:%s", bin, old_path ?: "/usr/bin:/bin") > 0);
        _cleanup_free_ char *saved_path = old_path ? strdup(old_path) : NULL;
        ASSERT_EQ(setenv("PATH", path, 1), 0);

        f->g.schedule_rerun = NULL;
        idem_key_id("live-delayed", "a.service", "ds1", id);
        ASSERT_EQ(run(f, "live-delayed", "a.service", "ds1"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(count_last(f, "escalated", NULL), 0);
        fp = fopen(argsfile, "re");
        ASSERT_TRUE(fp);
        ASSERT_TRUE(getline(&args, &n, fp) > 0);
        fclose(fp);
        /* One second late on purpose (monotonic timer, wall-clock window). */
        ASSERT_TRUE(asprintf(&expect,
                             "--quiet --on-active=61s --timer-property=AccuracySec=1s "
                             "--timer-property=RemainAfterElapse=no --unit=heal-pending-%s "
                             "systemctl start --no-block " RERUN_UNIT "\n",
                             id) > 0);
        ASSERT_STREQ(args, expect);

        /* A scheduler that fails: the pending stays, a human is told. */
        ASSERT_EQ(chmod(fake, 0600), 0);
        ASSERT_EQ(run(f, "live-delayed", "b.service", "ds2"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        ASSERT_EQ(f->n_act, 0);

        if (saved_path)
                ASSERT_EQ(setenv("PATH", saved_path, 1), 0);
        fixture_free(f);
}

/* A time-bucketed incident keeps its pending record across buckets. */
static void test_tier_delayed_bucketed(void) {
        fixture *f = fixture_new(policy_basic);
        _cleanup_free_ char *first = NULL;

        ASSERT_EQ(run(f, "live-delayed-long", "a.service", NULL), HEAL_OUTCOME_PENDING);
        first = strdup(field(last_event(f, "pending"), "HEAL_INCIDENT"));
        ASSERT_TRUE(first);
        ASSERT_EQ(f->sched_delay, 600 * USEC);
        f->g.now_usec = T0 + 601 * USEC;
        ASSERT_EQ(run(f, "live-delayed-long", "a.service", NULL), HEAL_OUTCOME_VERIFIED);
        ASSERT_STREQ(field(last_event(f, "verified"), "HEAL_INCIDENT"), first);
        ASSERT_EQ(f->n_act, 1);
        ASSERT_EQ(f->n_sched, 1);

        fixture_free(f);
}

static void test_tier_approve(void) {
        fixture *f = fixture_new(policy_basic);
        _cleanup_free_ char *needle = NULL;
        heal_pending p = {};
        char id[13];

        idem_key_id("live-approve", "a.service", "p1", id);
        ASSERT_EQ(run(f, "live-approve", "a.service", "p1"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(count_last(f, "pending", "awaiting-approval"), 1);
        ASSERT_TRUE(asprintf(&needle, "healctl approve %s", id) > 0);
        ASSERT_TRUE(strstr(field(last_event(f, "pending"), "MESSAGE"), needle));
        ASSERT_OK(heal_pending_load(f->state, id, &p));
        ASSERT_EQ(p.expires_usec, T0 + 120 * USEC);
        heal_pending_done(&p);

        f->g.now_usec = T0 + 5 * USEC;
        ASSERT_EQ(run(f, "live-approve", "a.service", "p1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "awaiting-approval"), 1);
        ASSERT_EQ(f->n_act, 0);

        ASSERT_OK(heal_pending_decide(f->state, id, HEAL_PENDING_APPROVED, "bob", T0 + 10 * USEC, NULL));
        f->g.now_usec = T0 + 20 * USEC;
        ASSERT_EQ(run(f, "live-approve", "a.service", "p1"), HEAL_OUTCOME_VERIFIED);
        /* healctl audited the approval; the guard's acting record names bob. */
        ASSERT_EQ(count_last(f, "approved", NULL), 0);
        ASSERT_STREQ(field(last_event(f, "acting"), "HEAL_OWNER"), "bob");
        ASSERT_EQ(f->n_act, 1);
        ASSERT_EQ(heal_pending_load(f->state, id, &p), -ENOENT);

        /* Unapproved past the expiry: expired, never acts. */
        f->g.now_usec = T0;
        idem_key_id("live-approve", "b.service", "p2", id);
        ASSERT_EQ(run(f, "live-approve", "b.service", "p2"), HEAL_OUTCOME_PENDING);
        f->g.now_usec = T0 + 121 * USEC;
        ASSERT_EQ(run(f, "live-approve", "b.service", "p2"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "expired", NULL), 1);
        ASSERT_EQ(count_last(f, "skipped", "expired"), 1);
        ASSERT_EQ(heal_pending_load(f->state, id, &p), -ENOENT);
        ASSERT_EQ(f->n_act, 1);

        fixture_free(f);
}

/* What a human approved is what runs: when the helper's plan changed since
 * (a disk plan rebuilt with other files), the approved record is dropped
 * unrun and the next pass asks for approval of the new plan. */
static void test_approved_plan_changed(void) {
        fixture *f = fixture_new(policy_basic);
        heal_pending p = {};
        char id[13];

        idem_key_id("live-approve", "a.service", "p1", id);
        f->intent = "remove 3 files (plan 1111)";
        ASSERT_EQ(run(f, "live-approve", "a.service", "p1"), HEAL_OUTCOME_PENDING);
        ASSERT_OK(heal_pending_decide(f->state, id, HEAL_PENDING_APPROVED, "bob", T0 + 10 * USEC, NULL));

        f->intent = "remove 3 files (plan 2222)";
        f->g.now_usec = T0 + 20 * USEC;
        ASSERT_EQ(run(f, "live-approve", "a.service", "p1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(f->n_act, 0);
        ASSERT_EQ(count_last(f, "cancelled", "plan-changed"), 1);
        ASSERT_EQ(count_last(f, "skipped", "plan-changed"), 1);
        ASSERT_EQ(heal_pending_load(f->state, id, &p), -ENOENT);

        /* The new plan waits for its own approval, then runs as approved. */
        f->g.now_usec = T0 + 30 * USEC;
        ASSERT_EQ(run(f, "live-approve", "a.service", "p1"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(f->n_act, 0);
        ASSERT_OK(heal_pending_decide(f->state, id, HEAL_PENDING_APPROVED, "bob", T0 + 40 * USEC, NULL));
        f->g.now_usec = T0 + 50 * USEC;
        ASSERT_EQ(run(f, "live-approve", "a.service", "p1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_act, 1);

        fixture_free(f);
}

/* ---- the tier decides from the record, and what may consume it ----------- */

static const char *record_field(fixture *f, const char *ns, const char *key, const char *name, char **ret) {
        _cleanup_json_ json_t *data = NULL;

        ASSERT_OK(heal_state_read(f->state, ns, key, &data));
        *ret = strdup(json_string_value(json_object_get(data, name)) ?: "");
        ASSERT_TRUE(*ret);
        return *ret;
}

/* An operator switches the class's tier while a plan waits: the plan of the
 * old tier never acts under the new one; it is dropped (audited) and a plan
 * of the new tier starts. */
static void test_tier_changed(void) {
        fixture *f = fixture_new(POLICY(1000, CLASS("c", "live", "approve", "\"approve_expiry_s\": 120,")));
        heal_pending p = {};
        char id[13];

        idem_key_id("c", "a.service", "tc1", id);
        ASSERT_EQ(run(f, "c", "a.service", "tc1"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(count_last(f, "pending", "awaiting-approval"), 1);

        /* approve -> delayed: the approve plan has no window (not_before 0);
         * judged by the new tier it would act at once, with nobody asked. */
        fixture_policy(f, POLICY(1000, CLASS("c", "live", "delayed", "\"delay_s\": 60,")));
        f->g.now_usec = T0 + 5 * USEC;
        ASSERT_EQ(run(f, "c", "a.service", "tc1"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(f->n_act, 0);
        ASSERT_EQ(count_last(f, "acting", NULL), 0);
        ASSERT_EQ(count_last(f, "cancelled", "tier-changed"), 1);
        ASSERT_STREQ(field(last_event(f, "cancelled"), "HEAL_TIER"), "approve");
        ASSERT_EQ(count_last(f, "pending", "in-cancel-window"), 1);
        ASSERT_OK(heal_pending_load(f->state, id, &p));
        ASSERT_STREQ(p.tier, "delayed");
        ASSERT_EQ(p.status, HEAL_PENDING_WAITING);
        ASSERT_EQ(p.not_before_usec, T0 + 65 * USEC);
        heal_pending_done(&p);
        /* The new window runs its course: a cancel chance, then the act. */
        f->g.now_usec = T0 + 30 * USEC;
        ASSERT_EQ(run(f, "c", "a.service", "tc1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "in-cancel-window"), 1);
        f->g.now_usec = T0 + 66 * USEC;
        ASSERT_EQ(run(f, "c", "a.service", "tc1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_act, 1);

        /* delayed -> approve: a delayed plan past its window does not run
         * once the class wants an approval; a plan awaiting it starts. */
        f->g.now_usec = T0;
        ASSERT_EQ(run(f, "c", "b.service", "tc2"), HEAL_OUTCOME_PENDING);
        fixture_policy(f, POLICY(1000, CLASS("c", "live", "approve", "\"approve_expiry_s\": 120,")));
        f->g.now_usec = T0 + 61 * USEC;
        ASSERT_EQ(run(f, "c", "b.service", "tc2"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(count_last(f, "cancelled", "tier-changed"), 1);
        ASSERT_EQ(count_last(f, "pending", "awaiting-approval"), 1);
        ASSERT_EQ(f->n_act, 1);

        /* approve -> auto: the operator wants it done; the old plan goes. */
        idem_key_id("c", "b.service", "tc2", id);
        fixture_policy(f, POLICY(1000, CLASS("c", "live", "auto", "")));
        ASSERT_EQ(run(f, "c", "b.service", "tc2"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(count_last(f, "cancelled", "tier-changed"), 1);
        ASSERT_EQ(heal_pending_load(f->state, id, &p), -ENOENT);
        ASSERT_EQ(f->n_act, 2);

        fixture_free(f);
}

/* A cancel that lands between the plan (window over: act) and the consume
 * is never overridden: the record is taken only as it was planned on. */
static void test_cancel_races_consume(void) {
        fixture *f = fixture_new(POLICY(1000, CLASS("c", "live", "delayed", "\"delay_s\": 60,")));
        heal_pending p = {};
        char id[13];

        idem_key_id("c", "a.service", "r1", id);
        ASSERT_EQ(run(f, "c", "a.service", "r1"), HEAL_OUTCOME_PENDING);

        /* The kill switch's second check runs right before the consume: the
         * human's cancel arrives there (healctl's clock still in the window). */
        memcpy(f->cancel_id, id, sizeof(id));
        f->cancel_at_check = 2;
        f->cancel_now = T0 + 59 * USEC;
        f->g.now_usec = T0 + 61 * USEC;
        f->n_kill = 0;
        ASSERT_EQ(run(f, "c", "a.service", "r1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(f->n_cancelled, 1);
        ASSERT_EQ(f->n_act, 0);
        ASSERT_EQ(count_last(f, "acting", NULL), 0);
        ASSERT_EQ(count_last(f, "skipped", "cancelled"), 1);
        ASSERT_STREQ(field(last_event(f, "skipped"), "HEAL_OWNER"), "carol");
        ASSERT_EQ(heal_pending_load(f->state, id, &p), -ENOENT);
        /* A human said no: later triggers of the incident stay quiet. */
        f->cancel_at_check = 0;
        ASSERT_EQ(run(f, "c", "a.service", "r1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "idempotent"), 1);
        ASSERT_EQ(f->n_act, 0);

        fixture_free(f);
}

/* Without an incident id, a pass adopts only a plan that may still act (or a
 * cancel that keeps it quiet), never a stale approval; records nobody
 * consumed age out, audited. */
static void test_adopt_only_live(void) {
        fixture *f = fixture_new(policy_basic);
        _cleanup_free_ char *first_inc = NULL, *second_inc = NULL;
        heal_pending *list = NULL;
        size_t n = 0;
        heal_pending p = {};
        char first[13];

        ASSERT_EQ(run(f, "live-approve", "a.service", NULL), HEAL_OUTCOME_PENDING);
        first_inc = strdup(field(last_event(f, "pending"), "HEAL_INCIDENT"));
        ASSERT_TRUE(first_inc);
        ASSERT_EQ(heal_pending_list(f->state, &list, &n), 1);
        memcpy(first, list[0].id, sizeof(first));
        heal_pending_done(&list[0]);
        free(list);

        /* Approved at once, then nobody ran it for longer than its span
         * (max(approve_expiry_s, 5 min) after the decision). */
        ASSERT_OK(heal_pending_decide(f->state, first, HEAL_PENDING_APPROVED, "bob", T0 + 10 * USEC, NULL));
        f->g.now_usec = T0 + 10 * USEC + HEAL_PENDING_MIN_SPAN_USEC;
        ASSERT_EQ(run(f, "live-approve", "a.service", NULL), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(f->n_act, 0);
        ASSERT_EQ(count_last(f, "acting", NULL), 0);
        ASSERT_EQ(count_last(f, "pending", "awaiting-approval"), 1);
        second_inc = strdup(field(last_event(f, "pending"), "HEAL_INCIDENT"));
        ASSERT_TRUE(second_inc && strcmp(second_inc, first_inc) != 0);

        /* The same for an approve plan that expired unapproved. */
        f->g.now_usec = T0 + 10 * USEC + HEAL_PENDING_MIN_SPAN_USEC + 121 * USEC;
        ASSERT_EQ(run(f, "live-approve", "a.service", NULL), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(count_last(f, "skipped", "expired"), 0);
        ASSERT_EQ(count_last(f, "pending", "awaiting-approval"), 1);
        ASSERT_EQ(f->n_act, 0);

        /* The guard's occasional gc (at the end of a pass, at most once a
         * minute) ages out what nobody consumed: each of the three plans
         * audited once, under its own incident. */
        f->g.now_usec = T0 + 3600 * USEC;
        ASSERT_EQ(run(f, "live-auto", "z.service", "gc"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(heal_pending_load(f->state, first, &p), -ENOENT);
        ASSERT_EQ(heal_pending_list(f->state, &list, &n), 0);
        free(list);
        unsigned expired_first = 0;
        for (size_t i = 0; i < json_array_size(f->events); i++) {
                const json_t *e = json_array_get(f->events, i);
                if (strcmp(field(e, "HEAL_EVENT") ?: "", "expired") != 0)
                        continue;
                ASSERT_STREQ(field(e, "HEAL_CLASS"), "live-approve");
                ASSERT_STREQ(field(e, "HEAL_REASON"), "aged-out");
                expired_first += strcmp(field(e, "HEAL_INCIDENT") ?: "", first_inc) == 0;
        }
        ASSERT_EQ(count_all(f, "expired", NULL), 3);
        ASSERT_EQ(expired_first, 1);

        fixture_free(f);
}

/* Plans that only wait (or were cancelled or expired) never act: they are
 * resolved before the breaker and the budgets, so an empty budget does not
 * page on every tick, and a cancel is still honoured. */
static void test_waiting_skips_budget(void) {
        fixture *f = fixture_new(POLICY(2, CLASS("ap", "live", "approve", "\"approve_expiry_s\": 120,") ","
                                               CLASS("au", "live", "auto", "")));
        heal_pending p = {};
        char w1[13], w2[13];

        idem_key_id("ap", "a.service", "w1", w1);
        idem_key_id("ap", "b.service", "w2", w2);
        ASSERT_EQ(run(f, "ap", "a.service", "w1"), HEAL_OUTCOME_PENDING);
        ASSERT_EQ(run(f, "ap", "b.service", "w2"), HEAL_OUTCOME_PENDING);
        /* Two auto heals take the host's whole budget. */
        ASSERT_EQ(run(f, "au", "x.service", "x1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(run(f, "au", "y.service", "y1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(tokens(f, HEAL_GUARD_NS_BUDGET, HEAL_BUDGET_KEY_GLOBAL, 2), 0);

        f->g.now_usec = T0 + 5 * USEC;
        ASSERT_EQ(run(f, "ap", "a.service", "w1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "awaiting-approval"), 1);
        ASSERT_EQ(count_last(f, "budget-exhausted", NULL), 0);
        ASSERT_EQ(count_last(f, "escalated", NULL), 0);

        ASSERT_OK(heal_pending_decide(f->state, w1, HEAL_PENDING_CANCELLED, "alice", T0 + 6 * USEC, NULL));
        ASSERT_EQ(run(f, "ap", "a.service", "w1"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "cancelled"), 1);
        ASSERT_EQ(count_last(f, "budget-exhausted", NULL), 0);
        ASSERT_EQ(heal_pending_load(f->state, w1, &p), -ENOENT);

        f->g.now_usec = T0 + 121 * USEC;
        ASSERT_EQ(run(f, "ap", "b.service", "w2"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "expired", NULL), 1);
        ASSERT_EQ(count_last(f, "skipped", "expired"), 1);
        ASSERT_EQ(count_last(f, "budget-exhausted", NULL), 0);
        ASSERT_EQ(heal_pending_load(f->state, w2, &p), -ENOENT);
        ASSERT_EQ(f->n_act, 2);

        fixture_free(f);
}

/* A pass that took the half-open trial and then stopped before acting gives
 * it back: the breaker is as it was (open, cooldown over). */
static void test_trial_given_back(void) {
        fixture *f = fixture_new(POLICY(1000, "\"c\": {\"mode\": \"live\", \"targets\": [\"*\"],"
                                              " \"breaker\": {\"failures\": 1, \"cooldown_s\": 600},"
                                              " \"target_budget\": {\"actions\": 1, \"per_s\": 700}}"));
        _cleanup_free_ char *bkey = heal_guard_breaker_key("c", "a.service"), *st = NULL;

        f->verify_ret = 0;
        ASSERT_EQ(run(f, "c", "a.service", "t1"), HEAL_OUTCOME_VERIFY_FAILED);
        ASSERT_EQ(count_last(f, "breaker-opened", NULL), 1);
        f->verify_ret = 1;

        /* Cooldown over, but the target's budget has not refilled yet. */
        f->g.now_usec = T0 + 601 * USEC;
        ASSERT_EQ(run(f, "c", "a.service", "t2"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "budget-target"), 1);
        ASSERT_STREQ(record_field(f, HEAL_BREAKER_NS, bkey, "state", &st), "open");
        free(TAKE_PTR(st));

        /* The kill switch engaged between the first check and act: the same. */
        f->g.now_usec = T0 + 701 * USEC;
        f->n_kill = 0;
        f->kill_from = 2;
        ASSERT_EQ(run(f, "c", "a.service", "t3"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "kill-switch"), 1);
        ASSERT_STREQ(record_field(f, HEAL_BREAKER_NS, bkey, "state", &st), "open");
        free(TAKE_PTR(st));
        f->kill_from = 0;

        /* That pass took the target's token (taken before the last check);
         * once it refilled, the next pass gets the trial, acts, and closes
         * the breaker. */
        f->g.now_usec = T0 + 1402 * USEC;
        ASSERT_EQ(run(f, "c", "a.service", "t4"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(count_last(f, "breaker-closed", NULL), 1);
        ASSERT_EQ(f->n_act, 2);

        fixture_free(f);
}

/* While a pass verifies (settle_s may exceed idempotency_s and the
 * cooldown), its claim and its breaker trial stay its own. */
static int verify_nested(void *userdata, char **ret_detail) {
        fixture *f = userdata;
        heal_guard g = f->g;
        heal_outcome o = (heal_outcome) -1;
        size_t before = json_array_size(f->events);

        g.now_usec += 3600 * USEC;
        const heal_action same = {.healer = "test-healer", .class = "c", .target = "a.service",
                                  .incident = f->nested_incident, .intent = "restart it",
                                  .tier_override = -1, .act = act_cb, .userdata = f};
        ASSERT_OK(heal_guard_run(&g, &same, &o));
        ASSERT_EQ(o, HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_from(f, before, "skipped", f->nested_reason), 1);
        f->n_nested++;
        return f->verify_ret;
}

static void test_held_while_verifying(void) {
        fixture *f = fixture_new(POLICY(1000, CLASS("c", "live", "auto",
                                                    "\"idempotency_s\": 0, \"settle_s\": 3600, \"breaker\":"
                                                    " {\"failures\": 1, \"cooldown_s\": 60},")));
        heal_action a = {.healer = "test-healer", .class = "c", .target = "a.service", .incident = "v1",
                         .intent = "restart it", .tier_override = -1, .act = act_cb, .verify = verify_nested,
                         .userdata = f};
        heal_outcome o;

        /* The same incident again, an hour on: in flight, not a second act. */
        f->nested_incident = "v1";
        f->nested_reason = "in-flight";
        f->verify_ret = 0;
        ASSERT_OK(heal_guard_run(&f->g, &a, &o));
        ASSERT_EQ(o, HEAL_OUTCOME_VERIFY_FAILED);
        ASSERT_EQ(f->n_nested, 1);
        ASSERT_EQ(f->n_act, 1);

        /* The breaker is open; the half-open trial's pass verifies for an
         * hour: another incident then is refused, not a second trial. */
        f->g.now_usec = T0 + 61 * USEC;
        f->nested_incident = "v3";
        f->nested_reason = "breaker-open";
        a.incident = "v2";
        f->verify_ret = 1;
        ASSERT_OK(heal_guard_run(&f->g, &a, &o));
        ASSERT_EQ(o, HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(f->n_nested, 2);
        ASSERT_EQ(f->n_act, 2);

        fixture_free(f);
}

/* The pending record keeps the incident id the guard derived, for healctl's
 * records; the human's approval is audited once (by healctl), the guard's
 * acting record names the approver. */
static void test_pending_incident_and_audit(void) {
        fixture *f = fixture_new(policy_basic);
        _cleanup_free_ char *inc = NULL;
        heal_pending *list = NULL, p = {};
        size_t n = 0;
        char id[13];
        const json_t *e;

        ASSERT_EQ(run(f, "live-approve", "a.service", NULL), HEAL_OUTCOME_PENDING);
        inc = strdup(field(last_event(f, "pending"), "HEAL_INCIDENT"));
        ASSERT_TRUE(inc && strlen(inc) == 32);
        ASSERT_EQ(heal_pending_list(f->state, &list, &n), 1);
        ASSERT_TRUE(list[0].incident == NULL);
        ASSERT_STREQ(list[0].incident_id, inc);
        memcpy(id, list[0].id, sizeof(id));
        heal_pending_done(&list[0]);
        free(list);

        ASSERT_OK(heal_pending_decide(f->state, id, HEAL_PENDING_APPROVED, "bob", T0 + 10 * USEC, NULL));
        f->g.now_usec = T0 + 20 * USEC;
        ASSERT_EQ(run(f, "live-approve", "a.service", NULL), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(count_last(f, "approved", NULL), 0);
        e = last_event(f, "acting");
        ASSERT_STREQ(field(e, "HEAL_OWNER"), "bob");
        ASSERT_STREQ(field(e, "HEAL_INCIDENT"), inc);
        ASSERT_TRUE(strstr(field(e, "MESSAGE"), "approved by bob"));
        ASSERT_EQ(heal_pending_load(f->state, id, &p), -ENOENT);

        fixture_free(f);
}

/* ---- state errors: fail closed -------------------------------------------- */

static void corrupt(fixture *f, const char *ns, const char *key) {
        _cleanup_free_ char *name = heal_state_escape(key), *path = NULL;
        struct stat st;

        ASSERT_TRUE(name);
        ASSERT_TRUE(asprintf(&path, "%s/%s/%s", heal_state_path(f->state), ns, name) > 0);
        ASSERT_EQ(stat(path, &st), 0); /* the record the guard wrote */
        write_text(path, "{\"heal_state\": 1, \"data\": garbage");
}

static void test_corrupt_state(void) {
        fixture *f = fixture_new(POLICY(1000, CLASS("c", "live", "auto", "")));
        _cleanup_free_ char *bkey = heal_guard_breaker_key("c", "a.service");

        /* A failed heal, so a breaker record exists (a closed breaker needs none). */
        f->verify_ret = 0;
        ASSERT_EQ(run(f, "c", "a.service", "c1"), HEAL_OUTCOME_VERIFY_FAILED);
        f->verify_ret = 1;
        corrupt(f, HEAL_BREAKER_NS, bkey);
        ASSERT_EQ(run(f, "c", "a.service", "c2"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "state-error"), 1);
        ASSERT_TRUE(strstr(field(last_event(f, "skipped"), "HEAL_CONTEXT"), "\"breaker\""));
        ASSERT_TRUE(strstr(field(last_event(f, "skipped"), "HEAL_CONTEXT"), strerror(EBADMSG)));
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        ASSERT_EQ(f->n_act, 1);

        corrupt(f, HEAL_GUARD_NS_BUDGET, HEAL_BUDGET_KEY_GLOBAL);
        ASSERT_EQ(run(f, "c", "b.service", "c3"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "state-error"), 1);
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        ASSERT_EQ(f->n_act, 1);

        fixture_free(f);
}

static void fill_blocks(const char *dir) {
        _cleanup_free_ char *path = NULL;
        static char block[4096];
        int fd;

        ASSERT_TRUE(asprintf(&path, "%s/fill", dir) > 0);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        while (write(fd, block, sizeof(block)) > 0)
                ;
        ASSERT_EQ(errno, ENOSPC);
        close(fd);
}

static int fill(const char *dir) {
        fill_blocks(dir);
        /* The inodes too, so no new temp file fits either. */
        for (unsigned i = 0; i < 100000; i++) {
                _cleanup_free_ char *p = NULL;
                ASSERT_TRUE(asprintf(&p, "%s/f%u", dir, i) > 0);
                int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                close(fd);
        }
        return 0;
}

static void test_full_filesystem(void) {
        _cleanup_free_ char *base = NULL, *mnt = NULL, *sdir = NULL;
        fixture *f;

        if (geteuid() != 0) {
                fprintf(stderr, "test_full_filesystem: skipped, mounting a tmpfs needs root\n");
                return;
        }
        base = test_tmpdir();
        ASSERT_TRUE(asprintf(&mnt, "%s/fs", base) > 0);
        ASSERT_EQ(mkdir(mnt, 0700), 0);
        if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,nr_inodes=200,mode=0700") < 0) {
                fprintf(stderr, "test_full_filesystem: skipped, cannot mount a tmpfs: %m\n");
                test_rm_rf(base);
                return;
        }
        ASSERT_TRUE(asprintf(&sdir, "%s/state", mnt) > 0);
        f = fixture_new_at(POLICY(1000, CLASS("c", "live", "auto", "")), sdir);

        ASSERT_EQ(run(f, "c", "a.service", "full-1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_EQ(fill(mnt), -ENOSPC);
        ASSERT_EQ(run(f, "c", "a.service", "full-2"), HEAL_OUTCOME_SKIPPED);
        ASSERT_EQ(count_last(f, "skipped", "state-error"), 1);
        ASSERT_TRUE(strstr(field(last_event(f, "skipped"), "MESSAGE"), strerror(ENOSPC)));
        ASSERT_EQ(count_last(f, "escalated", NULL), 1);
        ASSERT_EQ(count_last(f, "acting", NULL), 0);
        ASSERT_EQ(f->n_act, 1);

        fixture_free(f);
        ASSERT_EQ(umount2(mnt, MNT_DETACH), 0);
        test_rm_rf(base);
}

/* The same with a reserve (made by the open on a 4 MiB tmpfs, the 256 KiB one
 * above is too small for it): the run still acts and its audit says that state
 * used its reserve. */
static void test_full_filesystem_reserve(void) {
        _cleanup_free_ char *base = NULL, *mnt = NULL, *sdir = NULL;
        const json_t *e;
        fixture *f;

        if (geteuid() != 0) {
                fprintf(stderr, "test_full_filesystem_reserve: skipped, mounting a tmpfs needs root\n");
                return;
        }
        base = test_tmpdir();
        ASSERT_TRUE(asprintf(&mnt, "%s/fs", base) > 0);
        ASSERT_EQ(mkdir(mnt, 0700), 0);
        if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700") < 0) {
                fprintf(stderr, "test_full_filesystem_reserve: skipped, cannot mount a tmpfs: %m\n");
                test_rm_rf(base);
                return;
        }
        ASSERT_TRUE(asprintf(&sdir, "%s/state", mnt) > 0);
        f = fixture_new_at(POLICY(1000, CLASS("c", "live", "auto", "")), sdir);

        ASSERT_EQ(run(f, "c", "a.service", "res-1"), HEAL_OUTCOME_VERIFIED);
        ASSERT_TRUE(!strstr(field(last_event(f, "verified"), "HEAL_FACTS") ?: "", "state_reserve"));
        fill_blocks(mnt);
        ASSERT_EQ(run(f, "c", "b.service", "res-2"), HEAL_OUTCOME_VERIFIED);
        e = last_event(f, "verified");
        ASSERT_TRUE(strstr(field(e, "HEAL_FACTS"), "\"state_reserve\":\"used\""));
        ASSERT_EQ(f->n_act, 2);

        fixture_free(f);
        ASSERT_EQ(umount2(mnt, MNT_DETACH), 0);
        test_rm_rf(base);
}

int main(void) {
        _cleanup_free_ char *metrics = test_tmpdir();

        /* The guard writes heal.prom after every pass: keep it in the fixture. */
        ASSERT_EQ(setenv("HEAL_METRICS_DIR", metrics, 1), 0);

        test_kill_switch_first();
        test_policy_guards();
        test_auto_idempotent();
        test_shadow();
        test_breaker();
        test_action_failed();
        test_budget_exhaustion();
        test_budget_scopes();
        test_tier_human();
        test_tier_delayed();
        test_tier_delayed_bucketed();
        test_default_scheduler();
        test_tier_approve();
        test_approved_plan_changed();
        test_tier_changed();
        test_cancel_races_consume();
        test_adopt_only_live();
        test_waiting_skips_budget();
        test_trial_given_back();
        test_held_while_verifying();
        test_pending_incident_and_audit();
        test_corrupt_state();
        test_full_filesystem();
        test_full_filesystem_reserve();

        test_rm_rf(metrics);
        return 0;
}
