/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reviver's pure parts (confirm, incident, decide, facts) and libheal's
 * unit-name and enrollment drop-in helpers, on a fixture root. No D-Bus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/bus.h"
#include "heal/cleanup.h"
#include "heal/killswitch.h"
#include "heal/policy.h"
#include "reviver.h"
#include "tests/unit/test-util.h"

static char *slurp(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&buf, &n, '\0', f) < 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static void test_unit_names(void) {
        _cleanup_free_ char *inst = NULL;

        ASSERT_TRUE(heal_unit_name_is_valid("foo.service"));
        ASSERT_TRUE(heal_unit_name_is_valid("foo@bar-baz.service"));
        ASSERT_TRUE(heal_unit_name_is_valid("dev-sda1.swap"));
        ASSERT_TRUE(!heal_unit_name_is_valid(NULL));
        ASSERT_TRUE(!heal_unit_name_is_valid(""));
        ASSERT_TRUE(!heal_unit_name_is_valid("foo"));
        ASSERT_TRUE(!heal_unit_name_is_valid(".service"));
        ASSERT_TRUE(!heal_unit_name_is_valid("../../etc/foo.service"));
        ASSERT_TRUE(!heal_unit_name_is_valid("foo bar.service"));
        ASSERT_TRUE(!heal_unit_name_is_valid("foo.conf"));

        ASSERT_OK(heal_reviver_instance("foo.service", &inst));
        ASSERT_STREQ(inst, "heal-worker-reviver@foo.service.service");
        ASSERT_EQ(heal_reviver_instance("a/b.service", &inst), -EINVAL);
}

static void test_dropin_text(void) {
        _cleanup_free_ char *src = NULL, *file = NULL, *text = NULL, *dir = test_tmpdir(), *custom = NULL;
        const char *root = getenv("SOURCE_ROOT");
        FILE *f;

        /* The built-in copy and the installed template never drift apart. */
        ASSERT_TRUE(root);
        ASSERT_TRUE(asprintf(&src, "%s/units/reviver-dropin.conf", root) > 0);
        file = slurp(src);
        ASSERT_TRUE(file);
        ASSERT_STREQ(heal_enroll_dropin_builtin(), file);
        ASSERT_TRUE(strstr(file, "OnFailure=heal-worker-reviver@%n.service\n"));

        /* Missing template: the built-in copy. */
        ASSERT_TRUE(asprintf(&custom, "%s/template.conf", dir) > 0);
        setenv("HEAL_REVIVER_DROPIN", custom, 1);
        ASSERT_OK(heal_enroll_dropin_text(&text));
        ASSERT_STREQ(text, heal_enroll_dropin_builtin());
        free(text);

        /* An installed (admin-edited) template wins. */
        f = fopen(custom, "we");
        ASSERT_TRUE(f);
        fputs("[Unit]\nOnFailure=heal-worker-reviver@%n.service\nOnFailureJobMode=fail\n", f);
        fclose(f);
        ASSERT_OK(heal_enroll_dropin_text(&text));
        ASSERT_TRUE(strstr(text, "OnFailureJobMode=fail"));
        unsetenv("HEAL_REVIVER_DROPIN");
        test_rm_rf(dir);
}

static void test_enroll(void) {
        _cleanup_free_ char *root = test_tmpdir(), *p = NULL, *rp = NULL, *text = NULL, *dir = NULL;
        _cleanup_strv_free_ char **l = NULL;
        struct stat st;

        setenv("HEAL_SYSTEMD_ROOT", root, 1);
        setenv("HEAL_REVIVER_DROPIN", "/nonexistent/reviver-dropin.conf", 1);

        ASSERT_OK(heal_enroll_dropin_path("foo.service", false, &p));
        ASSERT_TRUE(strncmp(p, root, strlen(root)) == 0);
        ASSERT_STREQ(p + strlen(root), "/etc/systemd/system/foo.service.d/50-heal-reviver.conf");
        ASSERT_OK(heal_enroll_dropin_path("bar.service", true, &rp));
        ASSERT_STREQ(rp + strlen(root), "/run/systemd/system/bar.service.d/50-heal-reviver.conf");
        ASSERT_EQ(heal_enroll_dropin_path("../x.service", false, &text), -EINVAL);
        ASSERT_TRUE(!text);

        ASSERT_EQ(heal_unit_enroll(NULL, "foo.service", false), 1);
        text = slurp(p);
        ASSERT_STREQ(text, heal_enroll_dropin_builtin());
        ASSERT_OK(stat(p, &st));
        ASSERT_EQ(st.st_mode & 07777, 0644);
        /* Same text again: nothing to do (no reload needed). */
        ASSERT_EQ(heal_unit_enroll(NULL, "foo.service", false), 0);
        ASSERT_EQ(heal_unit_enroll(NULL, "bar.service", true), 1);
        ASSERT_EQ(heal_unit_enroll(NULL, "bar.service", false), 1);

        /* Listed once each, sorted, from /etc and /run together. */
        ASSERT_EQ(heal_enrolled_list(&l), 2);
        ASSERT_STREQ(l[0], "bar.service");
        ASSERT_STREQ(l[1], "foo.service");
        ASSERT_TRUE(!l[2]);
        strv_free(TAKE_PTR(l));

        /* Unenroll removes the drop-in and its then empty dir, and is idempotent. */
        ASSERT_EQ(heal_unit_unenroll(NULL, "foo.service", false), 1);
        ASSERT_TRUE(access(p, F_OK) < 0 && errno == ENOENT);
        ASSERT_TRUE(asprintf(&dir, "%s/etc/systemd/system/foo.service.d", root) > 0);
        ASSERT_TRUE(access(dir, F_OK) < 0 && errno == ENOENT);
        ASSERT_EQ(heal_unit_unenroll(NULL, "foo.service", false), 0);
        ASSERT_EQ(heal_enrolled_list(&l), 1);
        ASSERT_STREQ(l[0], "bar.service");

        unsetenv("HEAL_SYSTEMD_ROOT");
        unsetenv("HEAL_REVIVER_DROPIN");
        test_rm_rf(root);
}

static void test_confirm(void) {
        heal_unit_info failed = { .active_state = (char *) "failed", .invocation_id = "0123456789abcdef0123456789abcdef" };
        heal_unit_info active = { .active_state = (char *) "active" };
        heal_unit_info queued = { .active_state = (char *) "failed", .job_queued = true };
        reviver_monitor none = {}, other = { .unit = "other.service" }, same = { .unit = "foo.service" };
        const char *reason = NULL;

        ASSERT_EQ(reviver_confirm("foo.service", &failed, &none, &reason), 1);
        ASSERT_EQ(reviver_confirm("foo.service", &failed, &same, &reason), 1);
        ASSERT_EQ(reviver_confirm("foo.service", &active, &none, &reason), 0);
        ASSERT_TRUE(strstr(reason, "not failed"));
        ASSERT_EQ(reviver_confirm("foo.service", &queued, &none, &reason), 0);
        ASSERT_TRUE(strstr(reason, "job"));
        ASSERT_EQ(reviver_confirm("foo.service", &failed, &other, &reason), 0);
        ASSERT_TRUE(strstr(reason, "MONITOR_UNIT"));
}

static void test_incident(void) {
        heal_unit_info with = { .invocation_id = "0123456789abcdef0123456789abcdef" }, without = {};
        reviver_monitor m = { .invocation_id = "ffffffffffffffffffffffffffffffff" }, none = {};

        /* D-Bus names the failure we look at, even when the trigger is older. */
        ASSERT_STREQ(reviver_incident(&with, &m), "0123456789abcdef0123456789abcdef");
        ASSERT_STREQ(reviver_incident(&without, &m), "ffffffffffffffffffffffffffffffff");
        ASSERT_TRUE(reviver_incident(&without, &none) == NULL);
}

static void test_monitor_env(void) {
        reviver_monitor m;

        setenv("MONITOR_UNIT", "foo.service", 1);
        setenv("MONITOR_SERVICE_RESULT", "exit-code", 1);
        setenv("MONITOR_EXIT_CODE", "exited", 1);
        setenv("MONITOR_EXIT_STATUS", "3", 1);
        setenv("MONITOR_INVOCATION_ID", "", 1);
        reviver_monitor_from_env(&m);
        ASSERT_STREQ(m.unit, "foo.service");
        ASSERT_STREQ(m.service_result, "exit-code");
        ASSERT_STREQ(m.exit_code, "exited");
        ASSERT_STREQ(m.exit_status, "3");
        ASSERT_TRUE(m.invocation_id == NULL); /* empty is absent */
        unsetenv("MONITOR_UNIT");
        unsetenv("MONITOR_SERVICE_RESULT");
        unsetenv("MONITOR_EXIT_CODE");
        unsetenv("MONITOR_EXIT_STATUS");
        unsetenv("MONITOR_INVOCATION_ID");
}

static void test_facts(void) {
        heal_unit_info i = { .active_state = (char *) "failed", .result = (char *) "signal", .n_restarts = 4,
                             .exec_main_code = 2, .exec_main_status = 9, .invocation_id = "" };
        reviver_monitor m = { .service_result = "signal", .exit_status = "KILL" };
        _cleanup_json_ json_t *f = reviver_facts("foo.service", &i, &m);

        ASSERT_TRUE(f);
        ASSERT_STREQ(json_string_value(json_object_get(f, "unit")), "foo.service");
        ASSERT_STREQ(json_string_value(json_object_get(f, "result")), "signal");
        ASSERT_EQ(json_integer_value(json_object_get(f, "n_restarts")), 4);
        ASSERT_EQ(json_integer_value(json_object_get(f, "exec_main_status")), 9);
        ASSERT_TRUE(!json_object_get(f, "invocation_id"));
        ASSERT_STREQ(json_string_value(json_object_get(json_object_get(f, "monitor"), "exit_status")), "KILL");
}

static void test_decide_defaults(void) {
        reviver_reaction r;

        ASSERT_OK(reviver_decide(NULL, "exit-code", &r));
        ASSERT_EQ(r, REVIVER_RESTART);
        ASSERT_OK(reviver_decide(NULL, "start-limit-hit", &r));
        ASSERT_EQ(r, REVIVER_HUMAN);
        ASSERT_OK(reviver_decide(NULL, "resources", &r));
        ASSERT_EQ(r, REVIVER_HUMAN);
        ASSERT_OK(reviver_decide(NULL, NULL, &r));
        ASSERT_EQ(r, REVIVER_RESTART);
        ASSERT_TRUE(reviver_verify_command(NULL) == NULL);
}

static void test_decide_policy(void) {
        _cleanup_json_ json_t *j = json_pack("{s:{s:s,s:s,s:s},s:s}", "on_result", "exit-code", "human", "signal",
                                             "restart", "watchdog", "reboot", "verify_command", "true");
        heal_class_policy c = { .json = j };
        reviver_reaction r;

        ASSERT_TRUE(j);
        ASSERT_OK(reviver_decide(&c, "exit-code", &r));
        ASSERT_EQ(r, REVIVER_HUMAN);
        ASSERT_OK(reviver_decide(&c, "signal", &r));
        ASSERT_EQ(r, REVIVER_RESTART);
        /* Not in the map: the default. */
        ASSERT_OK(reviver_decide(&c, "start-limit-hit", &r));
        ASSERT_EQ(r, REVIVER_HUMAN);
        ASSERT_EQ(reviver_decide(&c, "watchdog", &r), -EINVAL);
        ASSERT_STREQ(reviver_verify_command(&c), "true");
}

/* The shipped default policy gives the reactions the man page promises. */
static void test_decide_default_policy(void) {
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *file = NULL, *error = NULL;
        const char *files[2] = {};
        const heal_class_policy *c;
        reviver_reaction r;

        ASSERT_TRUE(asprintf(&file, "%s/policy/00-heal.json", getenv("SOURCE_ROOT")) > 0);
        files[0] = file;
        if (heal_policy_load_files(files, &p, &error) < 0) {
                fprintf(stderr, "default policy: %s\n", error ? error : "(no message)");
                ASSERT_TRUE(false);
        }
        c = heal_policy_class(p, REVIVER_CLASS);
        ASSERT_TRUE(c);
        ASSERT_OK(reviver_decide(c, "core-dump", &r));
        ASSERT_EQ(r, REVIVER_RESTART);
        ASSERT_OK(reviver_decide(c, "start-limit-hit", &r));
        ASSERT_EQ(r, REVIVER_HUMAN);
        ASSERT_OK(reviver_decide(c, "resources", &r));
        ASSERT_EQ(r, REVIVER_HUMAN);
        ASSERT_TRUE(reviver_verify_command(c) == NULL);
}

/* Without a bus the kill switch cannot be told off: the guard must fail closed. */
static void test_killswitch_no_bus(void) {
        _cleanup_free_ char *reason = NULL;

        ASSERT_EQ(heal_killswitch_engaged(NULL, "heal-worker-reviver@foo.service.service", &reason), -ENOTCONN);
        ASSERT_TRUE(reason && strstr(reason, "systemd"));
        ASSERT_EQ(heal_killswitch_set(NULL, true, true, NULL), -EINVAL);
        ASSERT_EQ(heal_killswitch_status(NULL, NULL), -EINVAL);
}

int main(void) {
        test_unit_names();
        test_dropin_text();
        test_enroll();
        test_confirm();
        test_incident();
        test_monitor_env();
        test_facts();
        test_decide_defaults();
        test_decide_policy();
        test_decide_default_policy();
        test_killswitch_no_bus();
        return 0;
}
