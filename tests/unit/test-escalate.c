/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Escalation: the JSON a human (or a pager command) gets, the crit journal
 * record, and what happens when the command fails or hangs. */
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "heal/escalate.h"
#include "heal/journal-tail.h"
#include "heal/message-ids.h"
#include "test-util.h"

#define INCIDENT "00112233445566778899aabbccddeeff"

/* Every audit record seen, in order (deep copies). */
static json_t *records;

static void observe(const json_t *record, void *userdata) {
        (void) userdata;
        ASSERT_EQ(json_array_append_new(records, json_deep_copy(record)), 0);
}

static const char *rec_field(size_t i, const char *key) {
        return json_string_value(json_object_get(json_array_get(records, i), key));
}

static void records_reset(void) {
        ASSERT_EQ(json_array_clear(records), 0);
}

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        ASSERT_EQ(clock_gettime(clock, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* What heal_audit() returns here: the journal's error when there is no journald. */
static int journal_result(void) {
        int r = heal_audit(NULL, HEAL_EVENT_DETECTED, NULL, "probe: is there a journal?");
        records_reset();
        return r;
}

static void test_json(void) {
        _cleanup_json_ json_t *facts = json_pack("{s:s}", "result", "exit-code");
        _cleanup_json_ json_t *context = json_pack("{s:[s,s]}", "journal", "a", "b");
        _cleanup_json_ json_t *j = NULL;
        heal_incident inc = {
                .healer = "worker-reviver",
                .class = "crash-loop",
                .target = "foo.service",
                .incident = INCIDENT,
                .intent = "restart foo.service",
                .policy_digest = "0123456789abcdef",
                .facts = facts,
        };
        struct utsname u;
        uint64_t before = now_usec(CLOCK_REALTIME), after;

        j = heal_escalation_json(&inc, "breaker opened after 3 failed revivals", context);
        after = now_usec(CLOCK_REALTIME);
        ASSERT_TRUE(j);
        ASSERT_STREQ(json_string_value(json_object_get(j, "healer")), "worker-reviver");
        ASSERT_STREQ(json_string_value(json_object_get(j, "class")), "crash-loop");
        ASSERT_STREQ(json_string_value(json_object_get(j, "target")), "foo.service");
        ASSERT_STREQ(json_string_value(json_object_get(j, "incident")), INCIDENT);
        ASSERT_STREQ(json_string_value(json_object_get(j, "intent")), "restart foo.service");
        ASSERT_STREQ(json_string_value(json_object_get(j, "why")), "breaker opened after 3 failed revivals");
        ASSERT_STREQ(json_string_value(json_object_get(j, "journalctl")), "journalctl HEAL_INCIDENT=" INCIDENT);
        ASSERT_STREQ(json_string_value(json_object_get(j, "policy_digest")), "0123456789abcdef");
        ASSERT_TRUE(json_equal(json_object_get(j, "facts"), facts));
        ASSERT_TRUE(json_equal(json_object_get(j, "context"), context));
        ASSERT_EQ(uname(&u), 0);
        ASSERT_STREQ(json_string_value(json_object_get(j, "hostname")), u.nodename);
        ASSERT_TRUE(json_is_integer(json_object_get(j, "time_usec")));
        ASSERT_TRUE((uint64_t) json_integer_value(json_object_get(j, "time_usec")) >= before);
        ASSERT_TRUE((uint64_t) json_integer_value(json_object_get(j, "time_usec")) <= after);
        ASSERT_EQ(json_object_size(j), 12);

        /* Absent values are null, not missing: a command can rely on the keys. */
        json_decref(j);
        j = heal_escalation_json(&(heal_incident) { .class = "heal-self" }, "why", NULL);
        ASSERT_TRUE(j);
        ASSERT_EQ(json_object_size(j), 12);
        ASSERT_TRUE(json_is_null(json_object_get(j, "journalctl")));
        ASSERT_TRUE(json_is_null(json_object_get(j, "facts")));
        ASSERT_TRUE(json_is_null(json_object_get(j, "context")));
}

static char *read_all(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        ASSERT_TRUE(f);
        ASSERT_TRUE(getdelim(&buf, &size, '\0', f) >= 0);
        return buf;
}

static void check_escalated_record(size_t i, const char *why) {
        _cleanup_json_ json_t *facts = NULL;

        ASSERT_STREQ(rec_field(i, "HEAL_EVENT"), "escalated");
        ASSERT_STREQ(rec_field(i, "MESSAGE_ID"), HEAL_MESSAGE_ESCALATED);
        ASSERT_STREQ(rec_field(i, "PRIORITY"), "2");
        ASSERT_STREQ(rec_field(i, "HEAL_REASON"), why);
        ASSERT_STREQ(rec_field(i, "HEAL_INCIDENT"), INCIDENT);
        ASSERT_TRUE(strstr(rec_field(i, "MESSAGE"), "journalctl HEAL_INCIDENT=" INCIDENT));
        ASSERT_TRUE(strstr(rec_field(i, "MESSAGE"), why));
        facts = json_loads(rec_field(i, "HEAL_FACTS"), 0, NULL);
        ASSERT_TRUE(facts);
        ASSERT_STREQ(json_string_value(json_object_get(facts, "result")), "exit-code");
}

static void test_command_gets_json(const char *dir, int journal_r) {
        _cleanup_json_ json_t *facts = json_pack("{s:s}", "result", "exit-code");
        _cleanup_json_ json_t *context = json_pack("{s:[s]}", "journal", "last line");
        _cleanup_json_ json_t *got = NULL, *context_rec = NULL;
        _cleanup_free_ char *cmd = NULL, *out = NULL, *text = NULL;
        heal_incident inc = { .healer = "worker-reviver", .class = "crash-loop", .target = "foo.service",
                              .incident = INCIDENT, .facts = facts };
        heal_policy policy = { .escalate_timeout_s = 5, .digest = "feedfacefeedface" };

        ASSERT_TRUE(asprintf(&out, "%s/out", dir) > 0);
        ASSERT_TRUE(asprintf(&cmd, "cat > '%s'", out) > 0);
        policy.escalate_command = cmd;

        ASSERT_EQ(heal_escalate(&policy, &inc, "crash loop", context), journal_r);

        text = read_all(out);
        got = json_loads(text, 0, NULL);
        ASSERT_TRUE(got);
        ASSERT_STREQ(json_string_value(json_object_get(got, "why")), "crash loop");
        ASSERT_STREQ(json_string_value(json_object_get(got, "class")), "crash-loop");
        ASSERT_STREQ(json_string_value(json_object_get(got, "target")), "foo.service");
        ASSERT_STREQ(json_string_value(json_object_get(got, "incident")), INCIDENT);
        ASSERT_STREQ(json_string_value(json_object_get(got, "journalctl")), "journalctl HEAL_INCIDENT=" INCIDENT);
        /* The incident named no digest: the policy's own is used. */
        ASSERT_STREQ(json_string_value(json_object_get(got, "policy_digest")), "feedfacefeedface");
        ASSERT_TRUE(json_equal(json_object_get(got, "facts"), facts));
        ASSERT_TRUE(json_equal(json_object_get(got, "context"), context));

        /* One record: escalated, carrying the context too; no action-failed. */
        ASSERT_EQ(json_array_size(records), 1);
        check_escalated_record(0, "crash loop");
        ASSERT_STREQ(rec_field(0, "HEAL_POLICY_DIGEST"), "feedfacefeedface");
        context_rec = json_loads(rec_field(0, "HEAL_CONTEXT"), 0, NULL);
        ASSERT_TRUE(json_equal(context_rec, context));
        records_reset();
}

static void test_command_fails(void) {
        _cleanup_json_ json_t *facts = json_pack("{s:s}", "result", "exit-code");
        _cleanup_json_ json_t *cmd_facts = NULL;
        heal_incident inc = { .healer = "worker-reviver", .class = "crash-loop", .target = "foo.service",
                              .incident = INCIDENT, .facts = facts };
        heal_policy policy = { .escalate_command = (char *) "echo pager down >&2; exit 3",
                               .escalate_timeout_s = 5 };

        ASSERT_EQ(heal_escalate(&policy, &inc, "crash loop", NULL), -EIO);
        ASSERT_EQ(json_array_size(records), 2);
        check_escalated_record(0, "crash loop");
        ASSERT_STREQ(rec_field(1, "HEAL_EVENT"), "action-failed");
        ASSERT_STREQ(rec_field(1, "HEAL_REASON"), "escalate-command");
        ASSERT_STREQ(rec_field(1, "HEAL_INCIDENT"), INCIDENT);
        ASSERT_STREQ(rec_field(1, "PRIORITY"), "4");
        ASSERT_TRUE(strstr(rec_field(1, "MESSAGE"), "status 3"));
        cmd_facts = json_loads(rec_field(1, "HEAL_FACTS"), 0, NULL);
        ASSERT_TRUE(cmd_facts);
        ASSERT_EQ(json_integer_value(json_object_get(cmd_facts, "status")), 3);
        ASSERT_STREQ(json_string_value(json_object_get(cmd_facts, "output")), "pager down\n");
        ASSERT_STREQ(json_string_value(json_object_get(cmd_facts, "command")), policy.escalate_command);
        records_reset();
}

static void test_command_timeout(void) {
        _cleanup_json_ json_t *cmd_facts = NULL;
        heal_incident inc = { .healer = "h", .class = "c", .target = "t", .incident = INCIDENT };
        heal_policy policy = { .escalate_command = (char *) "sleep 30", .escalate_timeout_s = 1 };
        uint64_t start = now_usec(CLOCK_MONOTONIC), took;

        ASSERT_EQ(heal_escalate(&policy, &inc, "hung pager", NULL), -ETIMEDOUT);
        took = now_usec(CLOCK_MONOTONIC) - start;
        ASSERT_TRUE(took >= 900000);
        ASSERT_TRUE(took < 2500000);

        ASSERT_EQ(json_array_size(records), 2);
        ASSERT_STREQ(rec_field(0, "HEAL_EVENT"), "escalated");
        ASSERT_STREQ(rec_field(1, "HEAL_EVENT"), "action-failed");
        ASSERT_STREQ(rec_field(1, "HEAL_REASON"), "escalate-command");
        cmd_facts = json_loads(rec_field(1, "HEAL_FACTS"), 0, NULL);
        ASSERT_TRUE(cmd_facts);
        ASSERT_TRUE(json_is_true(json_object_get(cmd_facts, "timed_out")));
        records_reset();
}

static void test_no_policy(int journal_r) {
        _cleanup_json_ json_t *facts = json_pack("{s:s}", "result", "exit-code");
        heal_incident inc = { .healer = "escalate", .class = "heal-self", .target = "heal-x.service",
                              .incident = INCIDENT, .facts = facts };

        ASSERT_EQ(heal_escalate(NULL, &inc, "policy invalid", NULL), journal_r);
        ASSERT_EQ(json_array_size(records), 1);
        check_escalated_record(0, "policy invalid");
        ASSERT_TRUE(rec_field(0, "HEAL_CONTEXT") == NULL);
        ASSERT_TRUE(rec_field(0, "HEAL_POLICY_DIGEST") == NULL);

        /* A policy without a command is the same: journal only. */
        records_reset();
        heal_policy policy = { .escalate_timeout_s = 5 };
        ASSERT_EQ(heal_escalate(&policy, &inc, "policy invalid", NULL), journal_r);
        ASSERT_EQ(json_array_size(records), 1);
        records_reset();
}

static void test_journal_tail(void) {
        _cleanup_json_ json_t *lines = NULL;
        int r;

        ASSERT_EQ(heal_journal_tail("", 20, &lines), -EINVAL);
        ASSERT_TRUE(lines == NULL);

        /* Whatever journal this machine has, a unit that never existed has no lines. */
        r = heal_journal_tail("heal-test-no-such-unit-4f1c.service", 20, &lines);
        if (r < 0) {
                fprintf(stderr, "journal not readable here (%s), skipping the tail check\n", strerror(-r));
                return;
        }
        ASSERT_EQ(r, 0);
        ASSERT_TRUE(json_is_array(lines));
        ASSERT_EQ(json_array_size(lines), 0);
}

int main(void) {
        _cleanup_free_ char *dir = test_tmpdir();
        int journal_r;

        records = json_array();
        ASSERT_TRUE(records);
        heal_audit_set_observer(observe, NULL);
        journal_r = journal_result();

        test_json();
        test_command_gets_json(dir, journal_r);
        test_command_fails();
        test_command_timeout();
        test_no_policy(journal_r);
        test_journal_tail();

        heal_audit_set_observer(NULL, NULL);
        json_decref(records);
        test_rm_rf(dir);
        return 0;
}
