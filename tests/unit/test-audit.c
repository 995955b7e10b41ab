/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The audit record: event names, message ids, priorities, the fields an
 * observer sees, the stderr fallback, and the catalog covering every id. */
#include <ctype.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "heal/audit.h"
#include "heal/message-ids.h"
#include "test-util.h"

/* The names of DESIGN.md, in the enum's order, plus pending and expired. */
static const char *const expected_names[_HEAL_EVENT_MAX] = {
        "detected",      "confirmed",     "dismissed", "skipped",        "would-act",
        "acting",        "verified",      "verify-failed", "action-failed", "escalated",
        "breaker-opened", "breaker-closed", "budget-exhausted", "approved", "cancelled",
        "pending",       "expired",
};

static void test_event_names(void) {
        for (int e = 0; e < _HEAL_EVENT_MAX; e++) {
                ASSERT_STREQ(heal_event_to_string(e), expected_names[e]);
                ASSERT_EQ(heal_event_from_string(expected_names[e]), e);
        }
        ASSERT_TRUE(heal_event_to_string(_HEAL_EVENT_MAX) == NULL);
        ASSERT_TRUE(heal_event_to_string((heal_event) -1) == NULL);
        ASSERT_EQ(heal_event_from_string("would_act"), -EINVAL);
        ASSERT_EQ(heal_event_from_string(""), -EINVAL);
        ASSERT_EQ(heal_event_from_string(NULL), -EINVAL);
}

static bool is_hex32(const char *s) {
        if (!s || strlen(s) != 32)
                return false;
        for (size_t i = 0; i < 32; i++)
                if (!isxdigit((unsigned char) s[i]) || isupper((unsigned char) s[i]))
                        return false;
        return true;
}

static void test_message_ids(void) {
        for (int e = 0; e < _HEAL_EVENT_MAX; e++) {
                const char *id = heal_event_message_id(e);
                ASSERT_TRUE(is_hex32(id));
                for (int f = 0; f < e; f++)
                        ASSERT_TRUE(strcmp(id, heal_event_message_id(f)) != 0);
        }
        ASSERT_STREQ(heal_event_message_id(HEAL_EVENT_ESCALATED), HEAL_MESSAGE_ESCALATED);
        ASSERT_STREQ(heal_event_message_id(HEAL_EVENT_EXPIRED), HEAL_MESSAGE_EXPIRED);
        ASSERT_TRUE(heal_event_message_id(_HEAL_EVENT_MAX) == NULL);
}

static void test_priorities(void) {
        static const struct {
                heal_event ev;
                int prio;
        } table[] = {
                { HEAL_EVENT_ESCALATED, LOG_CRIT },        { HEAL_EVENT_BREAKER_OPENED, LOG_WARNING },
                { HEAL_EVENT_BUDGET_EXHAUSTED, LOG_WARNING }, { HEAL_EVENT_VERIFY_FAILED, LOG_WARNING },
                { HEAL_EVENT_ACTION_FAILED, LOG_WARNING }, { HEAL_EVENT_ACTING, LOG_NOTICE },
                { HEAL_EVENT_VERIFIED, LOG_NOTICE },       { HEAL_EVENT_APPROVED, LOG_NOTICE },
                { HEAL_EVENT_CANCELLED, LOG_NOTICE },      { HEAL_EVENT_EXPIRED, LOG_NOTICE },
                { HEAL_EVENT_PENDING, LOG_NOTICE },        { HEAL_EVENT_WOULD_ACT, LOG_NOTICE },
                { HEAL_EVENT_BREAKER_CLOSED, LOG_NOTICE }, { HEAL_EVENT_DETECTED, LOG_INFO },
                { HEAL_EVENT_CONFIRMED, LOG_INFO },        { HEAL_EVENT_DISMISSED, LOG_INFO },
                { HEAL_EVENT_SKIPPED, LOG_INFO },
        };
        ASSERT_EQ(ELEMENTSOF(table), _HEAL_EVENT_MAX);
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                ASSERT_EQ(heal_event_priority(table[i].ev), table[i].prio);
        ASSERT_EQ(heal_event_priority(_HEAL_EVENT_MAX), -EINVAL);
}

/* Keeps a copy of the last record and counts calls. */
typedef struct seen {
        json_t *record;
        unsigned calls;
} seen;

static void observe(const json_t *record, void *userdata) {
        seen *s = userdata;

        json_decref(s->record);
        s->record = json_deep_copy(record);
        ASSERT_TRUE(s->record);
        s->calls++;
}

static const char *field(const seen *s, const char *key) {
        return json_string_value(json_object_get(s->record, key));
}

static void test_observer_all_fields(void) {
        _cleanup_json_ json_t *facts = json_pack("{s:s, s:i}", "unit", "foo.service", "restarts", 3);
        _cleanup_json_ json_t *context = json_pack("[s]", "line one");
        seen s = {};
        heal_incident inc = {
                .healer = "worker-reviver",
                .class = "worker-dead",
                .target = "foo.service",
                .incident = "0123456789abcdef0123456789abcdef",
                .intent = "restart foo.service",
                .tier = "auto",
                .mode = "live",
                .rollback = "systemctl stop foo.service",
                .owner = "heal",
                .policy_digest = "00112233aabbccdd",
                .facts = facts,
        };
        heal_audit_step step = { .reason = "breaker-open", .before = "failed", .after = "active", .context = context };

        heal_audit_set_observer(observe, &s);
        (void) heal_audit(&inc, HEAL_EVENT_SKIPPED, &step, "Skipped %s: %d", "foo.service", 42);
        ASSERT_EQ(s.calls, 1);

        ASSERT_STREQ(field(&s, "MESSAGE_ID"), HEAL_MESSAGE_SKIPPED);
        ASSERT_STREQ(field(&s, "PRIORITY"), "6");
        ASSERT_STREQ(field(&s, "MESSAGE"), "Skipped foo.service: 42");
        ASSERT_STREQ(field(&s, "SYSLOG_IDENTIFIER"), "heal-worker-reviver");
        ASSERT_STREQ(field(&s, "HEAL_EVENT"), "skipped");
        ASSERT_STREQ(field(&s, "HEAL_HEALER"), "worker-reviver");
        ASSERT_STREQ(field(&s, "HEAL_CLASS"), "worker-dead");
        ASSERT_STREQ(field(&s, "HEAL_TARGET"), "foo.service");
        ASSERT_STREQ(field(&s, "HEAL_INCIDENT"), "0123456789abcdef0123456789abcdef");
        ASSERT_STREQ(field(&s, "HEAL_INTENT"), "restart foo.service");
        ASSERT_STREQ(field(&s, "HEAL_REASON"), "breaker-open");
        ASSERT_STREQ(field(&s, "HEAL_BEFORE"), "failed");
        ASSERT_STREQ(field(&s, "HEAL_AFTER"), "active");
        ASSERT_STREQ(field(&s, "HEAL_TIER"), "auto");
        ASSERT_STREQ(field(&s, "HEAL_MODE"), "live");
        ASSERT_STREQ(field(&s, "HEAL_ROLLBACK"), "systemctl stop foo.service");
        ASSERT_STREQ(field(&s, "HEAL_OWNER"), "heal");
        ASSERT_STREQ(field(&s, "HEAL_POLICY_DIGEST"), "00112233aabbccdd");
        /* Compact JSON, parsing back to the same facts. */
        ASSERT_STREQ(field(&s, "HEAL_FACTS"), "{\"restarts\":3,\"unit\":\"foo.service\"}");
        ASSERT_STREQ(field(&s, "HEAL_CONTEXT"), "[\"line one\"]");
        ASSERT_EQ(json_object_size(s.record), 20);

        heal_audit_set_observer(NULL, NULL);
        (void) heal_audit(&inc, HEAL_EVENT_SKIPPED, &step, "not observed");
        ASSERT_EQ(s.calls, 1);
        json_decref(s.record);
}

static void test_observer_omits_null(void) {
        seen s = {};
        heal_incident inc = { .healer = "disk-reclaim", .class = "disk-pressure", .target = "/var" };

        heal_audit_set_observer(observe, &s);
        (void) heal_audit(&inc, HEAL_EVENT_ESCALATED, NULL, "Escalated.");
        ASSERT_EQ(s.calls, 1);
        ASSERT_STREQ(field(&s, "PRIORITY"), "2");
        ASSERT_STREQ(field(&s, "HEAL_TARGET"), "/var");
        static const char *const absent[] = {
                "HEAL_INCIDENT", "HEAL_INTENT", "HEAL_REASON", "HEAL_FACTS", "HEAL_BEFORE", "HEAL_AFTER",
                "HEAL_TIER", "HEAL_MODE", "HEAL_ROLLBACK", "HEAL_OWNER", "HEAL_POLICY_DIGEST", "HEAL_CONTEXT",
        };
        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                ASSERT_TRUE(json_object_get(s.record, absent[i]) == NULL);
        /* MESSAGE_ID PRIORITY MESSAGE SYSLOG_IDENTIFIER HEAL_EVENT HEALER CLASS TARGET */
        ASSERT_EQ(json_object_size(s.record), 8);

        /* No incident at all still gives a valid record. */
        (void) heal_audit(NULL, HEAL_EVENT_DETECTED, NULL, "bare");
        ASSERT_EQ(s.calls, 2);
        ASSERT_STREQ(field(&s, "SYSLOG_IDENTIFIER"), "heal");
        ASSERT_EQ(json_object_size(s.record), 5);

        ASSERT_EQ(heal_audit(&inc, _HEAL_EVENT_MAX, NULL, "bad"), -EINVAL);
        ASSERT_EQ(s.calls, 2);

        heal_audit_set_observer(NULL, NULL);
        json_decref(s.record);
}

/* Runs heal_audit() with stderr sent to a file; returns the call's result and the file's content. */
static int audit_capturing_stderr(const heal_incident *inc, const char *dir, char **ret_err) {
        _cleanup_free_ char *path = NULL;
        int saved, fd, r;
        FILE *f;
        long size;

        ASSERT_TRUE(asprintf(&path, "%s/stderr", dir) > 0);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        ASSERT_TRUE(saved >= 0);
        ASSERT_TRUE(dup2(fd, STDERR_FILENO) >= 0);
        r = heal_audit(inc, HEAL_EVENT_ACTING, NULL, "Acting on %s.", inc->target);
        fflush(stderr);
        ASSERT_TRUE(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        close(fd);

        f = fopen(path, "re");
        ASSERT_TRUE(f);
        ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
        size = ftell(f);
        rewind(f);
        *ret_err = calloc(1, (size_t) size + 1);
        ASSERT_TRUE(*ret_err);
        ASSERT_EQ(fread(*ret_err, 1, (size_t) size, f), (size_t) size);
        fclose(f);
        return r;
}

static void test_huge_facts_and_stderr(void) {
        _cleanup_free_ char *big = malloc(1024 * 1024 + 1), *expected = NULL, *err = NULL, *dir = test_tmpdir();
        _cleanup_json_ json_t *facts = NULL, *line = NULL;
        json_error_t jerr;
        seen s = {};
        int r;

        ASSERT_TRUE(big);
        for (size_t i = 0; i < 1024 * 1024; i++)
                big[i] = (char) ('a' + i % 26);
        big[1024 * 1024] = '\0';
        big[1000] = '"'; /* escaping must not cut the string either */
        facts = json_pack("{s:s}", "blob", big);
        ASSERT_TRUE(facts);
        expected = json_dumps(facts, JSON_COMPACT | JSON_SORT_KEYS);
        ASSERT_TRUE(expected && strlen(expected) > 1024 * 1024);

        heal_incident inc = { .healer = "test", .target = "huge", .facts = facts };
        heal_audit_set_observer(observe, &s);
        r = audit_capturing_stderr(&inc, dir, &err);
        heal_audit_set_observer(NULL, NULL);

        ASSERT_EQ(s.calls, 1);
        ASSERT_EQ(strlen(field(&s, "HEAL_FACTS")), strlen(expected));
        ASSERT_STREQ(field(&s, "HEAL_FACTS"), expected);

        if (r < 0) {
                /* No journal here: the whole record must be on stderr, as exactly one JSON line. */
                size_t len = strlen(err);
                ASSERT_TRUE(len > 1024 * 1024);
                ASSERT_TRUE(err[len - 1] == '\n');
                ASSERT_TRUE(memchr(err, '\n', len - 1) == NULL);
                line = json_loads(err, 0, &jerr);
                ASSERT_TRUE(line);
                ASSERT_TRUE(json_equal(line, s.record));
        } else
                ASSERT_STREQ(err, ""); /* the journal took it: nothing on stderr */

        json_decref(s.record);
        test_rm_rf(dir);
}

static void test_incident_id(void) {
        char a[33], b[33];

        ASSERT_OK(heal_incident_id_new(a));
        ASSERT_OK(heal_incident_id_new(b));
        ASSERT_TRUE(is_hex32(a));
        ASSERT_TRUE(is_hex32(b));
        ASSERT_TRUE(strcmp(a, b) != 0);
}

static void test_lossy(void) {
        _cleanup_json_ json_t *ok = heal_json_string_lossy("caf\xc3\xa9", 5);
        _cleanup_json_ json_t *bad = heal_json_string_lossy("a\xff" "b\xc3", 4);
        _cleanup_json_ json_t *overlong = heal_json_string_lossy("\xc0\xaf", 2);

        ASSERT_STREQ(json_string_value(ok), "caf\xc3\xa9");
        ASSERT_STREQ(json_string_value(bad), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
        ASSERT_STREQ(json_string_value(overlong), "\xef\xbf\xbd\xef\xbf\xbd");
}

static char *read_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        if (!f) {
                fprintf(stderr, "cannot open %s: %m\n", path);
                abort();
        }
        ASSERT_TRUE(getdelim(&buf, &size, '\0', f) >= 0);
        return buf;
}

/* How often "-- <id>" opens an entry of @catalog, and that each such entry
 * has a Subject, Defined-By and Documentation header and a body. */
static unsigned catalog_count(const char *catalog, const char *id) {
        unsigned n = 0;

        for (const char *p = catalog; (p = strstr(p, "-- ")); p += 3) {
                if ((p != catalog && p[-1] != '\n') || strncmp(p + 3, id, 32) != 0 || p[35] != '\n')
                        continue;
                const char *entry = p + 36;
                const char *next = strstr(entry, "\n-- ");
                size_t len = next ? (size_t) (next - entry) : strlen(entry);
                _cleanup_free_ char *e = strndup(entry, len);
                ASSERT_TRUE(e);
                ASSERT_TRUE(strncmp(e, "Subject: ", 9) == 0 && e[9] != '\n');
                ASSERT_TRUE(strstr(e, "\nDefined-By: heal\n"));
                ASSERT_TRUE(strstr(e, "\nDocumentation: man:heal(7)\n"));
                const char *body = strstr(e, "\n\n");
                ASSERT_TRUE(body && strlen(body) > 40);
                n++;
        }
        return n;
}

static void test_catalog(void) {
        const char *root = getenv("SOURCE_ROOT");
        _cleanup_free_ char *catalog_path = NULL, *header_path = NULL, *catalog = NULL, *header = NULL;
        unsigned ids_in_header = 0, entries = 0;

        if (!root) {
                fprintf(stderr, "SOURCE_ROOT not set, skipping the catalog check\n");
                return;
        }
        ASSERT_TRUE(asprintf(&catalog_path, "%s/catalog/heal.catalog", root) > 0);
        ASSERT_TRUE(asprintf(&header_path, "%s/include/heal/message-ids.h", root) > 0);
        catalog = read_file(catalog_path);
        header = read_file(header_path);

        /* Every id the header defines has exactly one entry. */
        for (const char *p = header; (p = strstr(p, "#define HEAL_MESSAGE_")); p++) {
                const char *q = strchr(p, '"');
                _cleanup_free_ char *id = NULL;
                ASSERT_TRUE(q);
                id = strndup(q + 1, 32);
                ASSERT_TRUE(id && is_hex32(id) && q[33] == '"');
                ASSERT_EQ(catalog_count(catalog, id), 1);
                ids_in_header++;
        }
        ASSERT_EQ(ids_in_header, _HEAL_EVENT_MAX);

        /* ... and the catalog has no entry for an id the code does not send. */
        for (const char *p = catalog; (p = strstr(p, "\n-- ")); p++)
                entries++;
        ASSERT_EQ(entries, ids_in_header);
        for (int e = 0; e < _HEAL_EVENT_MAX; e++)
                ASSERT_EQ(catalog_count(catalog, heal_event_message_id(e)), 1);
}

int main(void) {
        test_event_names();
        test_message_ids();
        test_priorities();
        test_observer_all_fields();
        test_observer_omits_null();
        test_huge_facts_and_stderr();
        test_incident_id();
        test_lossy();
        test_catalog();
        return 0;
}
