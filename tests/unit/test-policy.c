/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The policy loader: defaults, drop-in replacement and merge order, every
 * class of error with its message, the digest, targeting and the schema list. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/policy.h"
#include "test-util.h"

static char *fixture(const char *rel) {
        const char *root = getenv("SOURCE_ROOT");
        char *p = NULL;

        ASSERT_TRUE(root && *root);
        ASSERT_TRUE(asprintf(&p, "%s/%s", root, rel) >= 0);
        return p;
}

static char *path_join(const char *a, const char *b) {
        char *p = NULL;

        ASSERT_TRUE(asprintf(&p, "%s/%s", a, b) >= 0);
        return p;
}

static void write_file(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *p = path_join(dir, name);
        FILE *f;

        mkdir(dir, 0755);
        f = fopen(p, "we");
        ASSERT_TRUE(f);
        ASSERT_TRUE(fputs(text, f) >= 0);
        ASSERT_EQ(fclose(f), 0);
}

static heal_policy *load_text(const char *text) {
        heal_policy_buffer b = { .name = "test.json", .data = text, .size = strlen(text) };
        _cleanup_free_ char *err = NULL;
        heal_policy *p = NULL;
        int r = heal_policy_load_buffers(&b, 1, &p, &err);

        if (r < 0)
                fprintf(stderr, "load failed: %s\n", err ?: "(no message)");
        ASSERT_OK(r);
        ASSERT_TRUE(p);
        return p;
}

static void test_mode_tier_strings(void) {
        ASSERT_STREQ(heal_mode_to_string(HEAL_MODE_SHADOW), "shadow");
        ASSERT_STREQ(heal_mode_to_string(HEAL_MODE_LIVE), "live");
        ASSERT_EQ(heal_mode_from_string("live"), HEAL_MODE_LIVE);
        ASSERT_EQ(heal_mode_from_string("shadow"), HEAL_MODE_SHADOW);
        ASSERT_EQ(heal_mode_from_string("on"), -EINVAL);
        ASSERT_EQ(heal_mode_from_string(NULL), -EINVAL);
        ASSERT_TRUE(heal_mode_to_string((heal_mode) 7) == NULL);

        for (heal_tier t = HEAL_TIER_AUTO; t <= HEAL_TIER_HUMAN; t++)
                ASSERT_EQ(heal_tier_from_string(heal_tier_to_string(t)), t);
        ASSERT_STREQ(heal_tier_to_string(HEAL_TIER_APPROVE), "approve");
        ASSERT_EQ(heal_tier_from_string("Auto"), -EINVAL);
}

static void test_defaults(void) {
        _cleanup_(heal_policy_freep) heal_policy *p =
                load_text("{\"version\": 1, \"classes\": {\"x\": {}}}");
        const heal_class_policy *c = heal_policy_class(p, "x");
        json_t *on_result;

        ASSERT_EQ(p->global_budget.actions, 10);
        ASSERT_EQ(p->global_budget.per_s, 600);
        ASSERT_TRUE(p->escalate_command == NULL);
        ASSERT_EQ(p->escalate_timeout_s, 10);
        ASSERT_EQ(p->n_classes, 1);
        ASSERT_TRUE(c);
        ASSERT_STREQ(c->name, "x");
        ASSERT_EQ(c->mode, HEAL_MODE_SHADOW);
        ASSERT_EQ(c->tier, HEAL_TIER_AUTO);
        ASSERT_EQ(c->target_budget.actions, 3);
        ASSERT_EQ(c->target_budget.per_s, 600);
        ASSERT_EQ(c->budget.actions, 6);
        ASSERT_EQ(c->budget.per_s, 600);
        ASSERT_EQ(c->breaker.failures, 3);
        ASSERT_EQ(c->breaker.cooldown_s, 600);
        ASSERT_EQ(c->idempotency_s, 300);
        ASSERT_EQ(c->dwell_s, 0);
        ASSERT_EQ(c->settle_s, 10);
        ASSERT_EQ(c->delay_s, 300);
        ASSERT_EQ(c->approve_expiry_s, 86400);
        ASSERT_STREQ(c->targets[0], "*");
        ASSERT_TRUE(c->targets[1] == NULL);
        ASSERT_STREQ(c->exclude[0], "heal-*");
        ASSERT_STREQ(c->exclude[1], "dbus.service");
        ASSERT_STREQ(c->exclude[2], "systemd-*");
        ASSERT_TRUE(c->exclude[3] == NULL);

        /* Helper-specific keys come with their defaults in the class JSON... */
        on_result = json_object_get(c->json, "on_result");
        ASSERT_EQ(json_object_size(on_result), 12);
        ASSERT_STREQ(json_string_value(json_object_get(on_result, "start-limit-hit")), "human");
        ASSERT_STREQ(json_string_value(json_object_get(on_result, "resources")), "human");
        ASSERT_STREQ(json_string_value(json_object_get(on_result, "exit-code")), "restart");
        ASSERT_STREQ(json_string_value(json_object_get(on_result, "oom-kill")), "restart");
        ASSERT_TRUE(json_is_null(json_object_get(c->json, "verify_command")));
        /* ... and the effective policy holds them too. */
        ASSERT_EQ(json_integer_value(json_object_get(
                          json_object_get(json_object_get(p->merged, "global"), "escalate"), "timeout_s")),
                  10);
        ASSERT_TRUE(heal_policy_class(p, "y") == NULL);
        ASSERT_TRUE(heal_policy_class(NULL, "x") == NULL);
        ASSERT_EQ(strlen(p->digest), 16);
}

static void test_values_read(void) {
        _cleanup_(heal_policy_freep) heal_policy *p = load_text(
                "{\"version\": 1, \"global\": {\"escalate\": {\"command\": \"/bin/page-me\", \"timeout_s\": 3}},"
                " \"classes\": {\"b\": {\"mode\": \"live\", \"tier\": \"delayed\", \"delay_s\": 30,"
                " \"approve_expiry_s\": 60, \"idempotency_s\": 0, \"target_budget\": {\"actions\": 100000,"
                " \"per_s\": 31536000}}, \"alert:DiskFull\": {\"tier\": \"approve\"}, \"a\": {}}}");

        ASSERT_STREQ(p->escalate_command, "/bin/page-me");
        ASSERT_EQ(p->escalate_timeout_s, 3);
        ASSERT_EQ(p->n_classes, 3);
        /* Classes come sorted by name. */
        ASSERT_STREQ(p->classes[0].name, "a");
        ASSERT_STREQ(p->classes[1].name, "alert:DiskFull");
        ASSERT_STREQ(p->classes[2].name, "b");
        ASSERT_EQ(p->classes[1].tier, HEAL_TIER_APPROVE);
        ASSERT_EQ(p->classes[2].mode, HEAL_MODE_LIVE);
        ASSERT_EQ(p->classes[2].tier, HEAL_TIER_DELAYED);
        ASSERT_EQ(p->classes[2].delay_s, 30);
        ASSERT_EQ(p->classes[2].approve_expiry_s, 60);
        ASSERT_EQ(p->classes[2].idempotency_s, 0);
        ASSERT_EQ(p->classes[2].target_budget.actions, 100000);
        ASSERT_EQ(p->classes[2].target_budget.per_s, 31536000);
}

/* usr < etc < run; see tests/unit/fixtures/policy/layered for what each file sets. */
static void test_layered(void) {
        _cleanup_free_ char *usr = fixture("tests/unit/fixtures/policy/layered/usr");
        _cleanup_free_ char *etc = fixture("tests/unit/fixtures/policy/layered/etc");
        _cleanup_free_ char *run = fixture("tests/unit/fixtures/policy/layered/run");
        _cleanup_free_ char *missing = fixture("tests/unit/fixtures/policy/layered/does-not-exist");
        const char *dirs[] = { usr, missing, etc, run, NULL };
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *err = NULL;
        const heal_class_policy *wd, *cl;
        json_t *on_result;

        /* The dotfile, README and .bak in etc/ would each fail to load: they must be ignored. */
        ASSERT_OK(heal_policy_load(dirs, &p, &err));
        ASSERT_TRUE(err == NULL);
        ASSERT_EQ(p->global_budget.actions, 20);
        ASSERT_EQ(p->global_budget.per_s, 60);
        ASSERT_EQ(p->n_classes, 2);

        wd = heal_policy_class(p, "worker-dead");
        ASSERT_TRUE(wd);
        /* etc/50-live.json flips the mode. */
        ASSERT_EQ(wd->mode, HEAL_MODE_LIVE);
        ASSERT_EQ(wd->tier, HEAL_TIER_AUTO);
        /* Lexical order of names, not of dirs: usr/40-order.json beats run/30-order.json. */
        ASSERT_EQ(wd->dwell_s, 9);
        ASSERT_EQ(wd->settle_s, 4);
        /* Deep merge: 70-deep.json sets only cooldown_s; failures stays from 00-base.json. */
        ASSERT_EQ(wd->breaker.failures, 5);
        ASSERT_EQ(wd->breaker.cooldown_s, 200);
        on_result = json_object_get(wd->json, "on_result");
        ASSERT_STREQ(json_string_value(json_object_get(on_result, "timeout")), "human");
        ASSERT_STREQ(json_string_value(json_object_get(on_result, "signal")), "restart");
        /* Arrays are replaced, not appended. */
        ASSERT_STREQ(wd->targets[0], "app-*.service");
        ASSERT_TRUE(wd->targets[1] == NULL);

        /* etc/60-replaced.json replaces usr/60-replaced.json: its dwell_s 77 is gone. */
        cl = heal_policy_class(p, "crash-loop");
        ASSERT_TRUE(cl);
        ASSERT_EQ(cl->tier, HEAL_TIER_HUMAN);
        ASSERT_EQ(cl->dwell_s, 0);
        ASSERT_EQ(cl->settle_s, 6);
}

/* DESIGN.md's example: 50-live.json over the shipped policy changes exactly one value. */
static void test_live_override_flips_only_mode(void) {
        _cleanup_free_ char *usr = fixture("policy");
        _cleanup_free_ char *tmp = test_tmpdir();
        _cleanup_free_ char *tmp_etc = path_join(tmp, "etc");
        const char *base_dirs[] = { usr, NULL };
        const char *live_dirs[] = { usr, tmp_etc, NULL };
        _cleanup_(heal_policy_freep) heal_policy *base = NULL, *live = NULL;
        _cleanup_json_ json_t *copy = NULL;
        _cleanup_free_ char *err = NULL;

        write_file(tmp_etc, "50-live.json", "{\"classes\": {\"worker-dead\": {\"mode\": \"live\"}}}\n");
        ASSERT_OK(heal_policy_load(base_dirs, &base, &err));
        ASSERT_OK(heal_policy_load(live_dirs, &live, &err));

        ASSERT_EQ(heal_policy_class(base, "worker-dead")->mode, HEAL_MODE_SHADOW);
        ASSERT_EQ(heal_policy_class(live, "worker-dead")->mode, HEAL_MODE_LIVE);
        ASSERT_TRUE(strcmp(base->digest, live->digest) != 0);

        copy = json_deep_copy(live->merged);
        ASSERT_TRUE(copy);
        ASSERT_TRUE(!json_equal(copy, base->merged));
        ASSERT_OK(json_object_set_new(json_object_get(json_object_get(copy, "classes"), "worker-dead"),
                                      "mode", json_string("shadow")));
        ASSERT_TRUE(json_equal(copy, base->merged));
        test_rm_rf(tmp);
}

/* A symlink to /dev/null masks the file of the same name, as with systemd drop-ins. */
static void test_mask(void) {
        _cleanup_free_ char *tmp = test_tmpdir();
        _cleanup_free_ char *usr = path_join(tmp, "usr"), *etc = path_join(tmp, "etc");
        _cleanup_free_ char *link = NULL;
        const char *dirs[] = { usr, etc, NULL };
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *err = NULL;

        write_file(usr, "00-version.json", "{\"version\": 1}");
        write_file(usr, "10-foo.json", "{\"classes\": {\"foo\": {}}}");
        mkdir(etc, 0755);
        link = path_join(etc, "10-foo.json");
        ASSERT_EQ(symlink("/dev/null", link), 0);
        /* A dangling symlink is skipped too. */
        free(link);
        link = path_join(etc, "20-gone.json");
        ASSERT_EQ(symlink("/nonexistent/x.json", link), 0);

        ASSERT_OK(heal_policy_load(dirs, &p, &err));
        ASSERT_EQ(p->n_classes, 0);
        ASSERT_TRUE(heal_policy_class(p, "foo") == NULL);
        test_rm_rf(tmp);
}

static void test_load_files_order(void) {
        _cleanup_free_ char *tmp = test_tmpdir();
        _cleanup_free_ char *a = path_join(tmp, "a.json"), *b = path_join(tmp, "b.json");
        const char *ba[] = { b, a, NULL }, *ab[] = { a, b, NULL }, *none[] = { NULL };
        _cleanup_(heal_policy_freep) heal_policy *p1 = NULL, *p2 = NULL, *p3 = NULL;
        _cleanup_free_ char *err = NULL;

        write_file(tmp, "a.json", "{\"version\": 1, \"classes\": {\"c\": {\"dwell_s\": 1}}}");
        write_file(tmp, "b.json", "{\"classes\": {\"c\": {\"dwell_s\": 2}}}");
        ASSERT_OK(heal_policy_load_files(ab, &p1, &err));
        ASSERT_EQ(heal_policy_class(p1, "c")->dwell_s, 2);
        /* Given order, not name order: the last file wins. */
        ASSERT_OK(heal_policy_load_files(ba, &p2, &err));
        ASSERT_EQ(heal_policy_class(p2, "c")->dwell_s, 1);

        ASSERT_EQ(heal_policy_load_files(none, &p3, &err), -ENOENT);
        ASSERT_TRUE(p3 == NULL);
        ASSERT_TRUE(err && strstr(err, "no policy files"));
        test_rm_rf(tmp);
}

static void test_no_files(void) {
        _cleanup_free_ char *tmp = test_tmpdir();
        _cleanup_free_ char *missing = path_join(tmp, "missing");
        const char *dirs[] = { missing, tmp, NULL };
        const char *no_dirs[] = { NULL };
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *err = NULL, *err2 = NULL;

        write_file(tmp, "README", "{}");
        ASSERT_EQ(heal_policy_load(dirs, &p, &err), -ENOENT);
        ASSERT_TRUE(p == NULL);
        ASSERT_TRUE(err);
        fprintf(stderr, "expected error: %s\n", err);
        ASSERT_TRUE(strstr(err, "no policy files"));
        ASSERT_TRUE(strstr(err, missing));

        ASSERT_EQ(heal_policy_load(no_dirs, &p, &err2), -ENOENT);
        ASSERT_TRUE(p == NULL);
        ASSERT_TRUE(err2 && strstr(err2, "no policy files"));
        test_rm_rf(tmp);
}

/* @want is the message after "PATH: " (or the whole tail after the path for syntax errors). */
static void expect_invalid(const char *name, const char *want) {
        _cleanup_free_ char *rel = NULL, *path = NULL, *err = NULL, *full = NULL;
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        const char *files[2];

        ASSERT_TRUE(asprintf(&rel, "tests/unit/fixtures/policy/invalid/%s", name) >= 0);
        path = fixture(rel);
        files[0] = path;
        files[1] = NULL;
        ASSERT_EQ(heal_policy_load_files(files, &p, &err), -EINVAL);
        ASSERT_TRUE(p == NULL);
        ASSERT_TRUE(err);
        fprintf(stderr, "expected error: %s\n", err);
        ASSERT_TRUE(asprintf(&full, "%s%s", path, want) >= 0);
        ASSERT_STREQ(err, full);
}

static void test_errors(void) {
        expect_invalid("syntax.json", ":3:42: string or '}' expected near '}'");
        expect_invalid("unknown-top.json", ": globals: unknown key");
        expect_invalid("unknown-class-key.json", ": classes.worker-dead.mdoe: unknown key");
        expect_invalid("wrong-type.json",
                       ": global.budget.actions: expected an integer in 1..100000, got \"10\"");
        expect_invalid("float.json", ": classes.worker-dead.dwell_s: expected an integer in 0..86400, got 1.5");
        expect_invalid("range-low.json", ": global.budget.actions: expected an integer in 1..100000, got 0");
        expect_invalid("range-high.json",
                       ": classes.worker-dead.breaker.failures: expected an integer in 1..1000, got 1001");
        expect_invalid("negative.json",
                       ": classes.worker-dead.idempotency_s: expected an integer in 0..31536000, got -1");
        expect_invalid("bad-enum.json", ": classes.worker-dead.mode: expected one of shadow|live, got \"on\"");
        expect_invalid("bad-class-name.json",
                       ": classes.Worker Dead: invalid name, expected a class name: [a-z0-9][a-z0-9:_.-]*, "
                       "at most 64 characters, A-Z allowed after \"alert:\"");
        expect_invalid("version-2.json", ": version: expected 1, got 2");
        expect_invalid("empty-glob.json",
                       ": classes.worker-dead.targets[1]: expected a non-empty glob string, got \"\"");
        expect_invalid("bad-on-result.json",
                       ": classes.worker-dead.on_result.timeout: expected one of restart|human, got \"retry\"");
        expect_invalid("unknown-result.json", ": classes.worker-dead.on_result.crashed: unknown key");
        expect_invalid("empty-command.json",
                       ": global.escalate.command: expected a non-empty string or null, got \"\"");
        expect_invalid("duplicate-key.json", ":1:25: duplicate object key near '\"version\"'");
        expect_invalid("top-array.json", ": expected an object at the top level, got an array");
}

/* Every file is checked on its own, so the message names the bad one among many. */
static void test_error_names_file_in_dir(void) {
        _cleanup_free_ char *usr = fixture("tests/unit/fixtures/policy/layered/usr");
        _cleanup_free_ char *tmp = test_tmpdir();
        const char *dirs[] = { usr, tmp, NULL };
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *err = NULL, *want = NULL;

        write_file(tmp, "50-live.json", "{\"classes\": {\"worker-dead\": {\"mode\": \"on\"}}}\n");
        ASSERT_EQ(heal_policy_load(dirs, &p, &err), -EINVAL);
        ASSERT_TRUE(p == NULL);
        ASSERT_TRUE(asprintf(&want, "%s/50-live.json: classes.worker-dead.mode: expected one of shadow|live, "
                                    "got \"on\"", tmp) >= 0);
        ASSERT_STREQ(err, want);
        test_rm_rf(tmp);
}

static void test_version_required(void) {
        _cleanup_free_ char *path = fixture("tests/unit/fixtures/policy/invalid/no-version.json");
        _cleanup_free_ char *ok = fixture("tests/unit/fixtures/policy/layered/usr/00-base.json");
        const char *alone[] = { path, NULL }, *with_base[] = { ok, path, NULL };
        _cleanup_(heal_policy_freep) heal_policy *p = NULL, *p2 = NULL;
        _cleanup_free_ char *err = NULL, *err2 = NULL;

        ASSERT_EQ(heal_policy_load_files(alone, &p, &err), -EINVAL);
        ASSERT_TRUE(p == NULL);
        ASSERT_TRUE(err && strstr(err, "version: missing"));
        /* One file setting it is enough. */
        ASSERT_OK(heal_policy_load_files(with_base, &p2, &err2));
        ASSERT_TRUE(err2 == NULL);
}

static void test_class_names(void) {
        static const char *const good[] = { "worker-dead", "a", "0x", "alert:DiskFull", "alert:a_b.c-d:E",
                                            "x:y", "alert:", NULL };
        static const char *const bad[] = { "Worker", "-x", "_x", "x y", "x/y", "disk:Full", "Alert:X",
                                           "", NULL };

        for (const char *const *n = good; *n; n++) {
                _cleanup_free_ char *text = NULL;
                ASSERT_TRUE(asprintf(&text, "{\"version\":1,\"classes\":{\"%s\":{}}}", *n) >= 0);
                _cleanup_(heal_policy_freep) heal_policy *p = load_text(text);
                ASSERT_TRUE(heal_policy_class(p, *n));
        }
        for (const char *const *n = bad; *n; n++) {
                _cleanup_free_ char *text = NULL, *err = NULL;
                heal_policy *p = NULL;
                heal_policy_buffer b = { .name = "t.json" };
                ASSERT_TRUE(asprintf(&text, "{\"version\":1,\"classes\":{\"%s\":{}}}", *n) >= 0);
                b.data = text;
                b.size = strlen(text);
                ASSERT_EQ(heal_policy_load_buffers(&b, 1, &p, &err), -EINVAL);
                ASSERT_TRUE(p == NULL);
                ASSERT_TRUE(err && strstr(err, "invalid name"));
        }

        /* 64 characters pass, 65 do not. */
        char name[66];
        memset(name, 'a', 65);
        name[64] = 0;
        _cleanup_free_ char *t64 = NULL, *t65 = NULL, *err = NULL;
        ASSERT_TRUE(asprintf(&t64, "{\"version\":1,\"classes\":{\"%s\":{}}}", name) >= 0);
        heal_policy_free(load_text(t64));
        name[64] = 'a';
        name[65] = 0;
        ASSERT_TRUE(asprintf(&t65, "{\"version\":1,\"classes\":{\"%s\":{}}}", name) >= 0);
        heal_policy_buffer b = { .name = "t.json", .data = t65, .size = strlen(t65) };
        heal_policy *p = NULL;
        ASSERT_EQ(heal_policy_load_buffers(&b, 1, &p, &err), -EINVAL);
}

static void test_digest(void) {
        _cleanup_(heal_policy_freep) heal_policy *a = load_text(
                "{\"version\":1,\"classes\":{\"x\":{\"dwell_s\":5,\"mode\":\"live\"}}}");
        _cleanup_(heal_policy_freep) heal_policy *b = load_text(
                "{\n  \"classes\": { \"x\": { \"mode\": \"live\",\n \"dwell_s\": 5 } },\n  \"version\": 1\n}\n");
        _cleanup_(heal_policy_freep) heal_policy *c = load_text(
                "{\"version\":1,\"classes\":{\"x\":{\"dwell_s\":6,\"mode\":\"live\"}}}");
        /* Spelling a default out changes nothing: the digest is of the effective policy. */
        _cleanup_(heal_policy_freep) heal_policy *d = load_text(
                "{\"version\":1,\"classes\":{\"x\":{\"dwell_s\":5,\"mode\":\"live\",\"settle_s\":10}}}");

        ASSERT_STREQ(a->digest, b->digest);
        ASSERT_TRUE(strcmp(a->digest, c->digest) != 0);
        ASSERT_STREQ(a->digest, d->digest);
        for (size_t i = 0; i < 16; i++)
                ASSERT_TRUE(strchr("0123456789abcdef", a->digest[i]));
}

static void test_targets(void) {
        _cleanup_(heal_policy_freep) heal_policy *p = load_text(
                "{\"version\":1,\"classes\":{"
                "\"svc\":{\"targets\":[\"*.service\",\"foo@*\"],\"exclude\":[\"bad-*\"]},"
                "\"dflt\":{},"
                "\"none\":{\"targets\":[]}}}");
        const heal_class_policy *svc = heal_policy_class(p, "svc");
        const heal_class_policy *dflt = heal_policy_class(p, "dflt");
        const heal_class_policy *none = heal_policy_class(p, "none");

        ASSERT_TRUE(heal_class_targets(svc, "app.service"));
        ASSERT_TRUE(heal_class_targets(svc, "foo@1.socket"));
        ASSERT_TRUE(!heal_class_targets(svc, "app.socket"));
        ASSERT_TRUE(!heal_class_targets(svc, "bad-app.service"));
        /* An explicit exclude replaces the default one. */
        ASSERT_TRUE(heal_class_targets(svc, "heal-x.service"));

        ASSERT_TRUE(heal_class_targets(dflt, "anything"));
        ASSERT_TRUE(!heal_class_targets(dflt, "heal-worker-reviver@x.service"));
        ASSERT_TRUE(!heal_class_targets(dflt, "dbus.service"));
        ASSERT_TRUE(!heal_class_targets(dflt, "systemd-journald.service"));
        ASSERT_TRUE(heal_class_targets(dflt, "dbus-broker.service"));

        ASSERT_TRUE(!heal_class_targets(none, "anything"));
        ASSERT_TRUE(!heal_class_targets(NULL, "x"));
        ASSERT_TRUE(!heal_class_targets(dflt, NULL));
}

static void test_schema_keys(void) {
        static const char *const want[] = {
                "version",
                "global.budget.actions",
                "global.budget.per_s",
                "global.escalate.command",
                "global.escalate.timeout_s",
                "classes.*.mode",
                "classes.*.tier",
                "classes.*.target_budget.actions",
                "classes.*.target_budget.per_s",
                "classes.*.budget.actions",
                "classes.*.budget.per_s",
                "classes.*.breaker.failures",
                "classes.*.breaker.cooldown_s",
                "classes.*.idempotency_s",
                "classes.*.dwell_s",
                "classes.*.settle_s",
                "classes.*.delay_s",
                "classes.*.approve_expiry_s",
                "classes.*.targets",
                "classes.*.exclude",
                "classes.*.on_result.success",
                "classes.*.on_result.protocol",
                "classes.*.on_result.timeout",
                "classes.*.on_result.exit-code",
                "classes.*.on_result.signal",
                "classes.*.on_result.core-dump",
                "classes.*.on_result.watchdog",
                "classes.*.on_result.start-limit-hit",
                "classes.*.on_result.resources",
                "classes.*.on_result.oom-kill",
                "classes.*.on_result.exec-condition",
                "classes.*.on_result.cleaning-failed",
                "classes.*.verify_command",
                NULL,
        };
        const char *keys = heal_policy_schema_keys();
        const char *desc = heal_policy_schema_describe();
        _cleanup_free_ char *all = NULL;
        size_t lines = 0, desc_lines = 0;

        /* Whole lines only: "mode" must not pass by matching inside another key. */
        ASSERT_TRUE(asprintf(&all, "\n%s", keys) >= 0);
        for (const char *const *k = want; *k; k++) {
                _cleanup_free_ char *line = NULL;
                ASSERT_TRUE(asprintf(&line, "\n%s\n", *k) >= 0);
                if (!strstr(all, line))
                        fprintf(stderr, "missing key: %s\n", *k);
                ASSERT_TRUE(strstr(all, line));
        }
        ASSERT_TRUE(strncmp(keys, "version\n", 8) == 0);
        for (const char *c = keys; *c; c++)
                lines += *c == '\n';
        for (const char *c = desc; *c; c++)
                desc_lines += *c == '\n';
        ASSERT_TRUE(lines >= 33);
        ASSERT_EQ(lines, desc_lines);
        ASSERT_TRUE(strstr(desc, "classes.*.mode\tenum shadow|live\t\"shadow\"\t"));
        ASSERT_TRUE(strstr(desc, "global.budget.actions\tinteger 1..100000\t10\t"));
        ASSERT_TRUE(strstr(desc, "version\tinteger 1..1\t(required)\t"));
        /* The same static string every time. */
        ASSERT_TRUE(keys == heal_policy_schema_keys());
}

static void test_shipped_policy(void) {
        static const struct {
                const char *name;
                heal_tier tier;
        } want[] = {
                { "worker-dead", HEAL_TIER_AUTO },       { "crash-loop", HEAL_TIER_HUMAN },
                { "disk-pressure", HEAL_TIER_AUTO },     { "disk-leaked", HEAL_TIER_APPROVE },
                { "process-stuck", HEAL_TIER_AUTO },     { "process-d-state", HEAL_TIER_HUMAN },
                { "process-zombies", HEAL_TIER_HUMAN },
        };
        _cleanup_free_ char *dir = fixture("policy");
        const char *dirs[] = { dir, NULL };
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *err = NULL;
        int r = heal_policy_load(dirs, &p, &err);

        if (r < 0)
                fprintf(stderr, "shipped policy: %s\n", err ?: "(no message)");
        ASSERT_OK(r);
        ASSERT_TRUE(p->n_classes >= ELEMENTSOF(want));
        for (size_t i = 0; i < p->n_classes; i++)
                ASSERT_EQ(p->classes[i].mode, HEAL_MODE_SHADOW);
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                const heal_class_policy *c = heal_policy_class(p, want[i].name);
                ASSERT_TRUE(c);
                ASSERT_EQ(c->tier, want[i].tier);
        }
        ASSERT_TRUE(heal_class_targets(heal_policy_class(p, "worker-dead"), "app.service"));
        ASSERT_TRUE(!heal_class_targets(heal_policy_class(p, "worker-dead"), "heal-audit.service"));
}

/* Buffer @text must be refused with a message containing @want. */
static void expect_invalid_text(const char *text, const char *want) {
        heal_policy_buffer b = { .name = "t.json", .data = text, .size = strlen(text) };
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *err = NULL;

        ASSERT_EQ(heal_policy_load_buffers(&b, 1, &p, &err), -EINVAL);
        if (!err || !strstr(err, want))
                fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err ?: "(null)", want);
        ASSERT_TRUE(err && strstr(err, want));
}

/* Arrays of objects (disk-reclaim's sources), booleans, strings and enum lists. */
static void test_schema_array(void) {
        _cleanup_(heal_policy_freep) heal_policy *p = load_text(
                "{\"version\": 1, \"classes\": {\"d\": {\"include_loop\": true, \"sources\": ["
                "{\"name\": \"a\", \"root\": \"/srv/a\", \"min_age_s\": 60, \"times\": [\"mtime\"]},"
                "{\"name\": \"j\", \"journal_vacuum\": true, \"tier\": \"auto\"}]}, \"e\": {}}}");
        const heal_class_policy *d = heal_policy_class(p, "d"), *e = heal_policy_class(p, "e");
        json_t *src, *a, *j, *dflt;

        ASSERT_TRUE(d && e);
        ASSERT_TRUE(json_is_true(json_object_get(d->json, "include_loop")));
        ASSERT_TRUE(json_is_false(json_object_get(e->json, "include_loop")));
        src = json_object_get(d->json, "sources");
        ASSERT_EQ(json_array_size(src), 2);
        a = json_array_get(src, 0);
        j = json_array_get(src, 1);
        /* Given values stay, missing ones get the element defaults. */
        ASSERT_STREQ(json_string_value(json_object_get(a, "root")), "/srv/a");
        ASSERT_EQ(json_integer_value(json_object_get(a, "min_age_s")), 60);
        ASSERT_EQ(json_array_size(json_object_get(a, "times")), 1);
        ASSERT_STREQ(json_string_value(json_object_get(a, "tier")), "approve");
        ASSERT_EQ(json_integer_value(json_object_get(a, "max_depth")), 0);
        ASSERT_TRUE(json_is_false(json_object_get(a, "journal_vacuum")));
        ASSERT_TRUE(json_is_true(json_object_get(j, "journal_vacuum")));
        ASSERT_STREQ(json_string_value(json_object_get(j, "tier")), "auto");
        ASSERT_TRUE(json_is_null(json_object_get(j, "root")));
        ASSERT_EQ(json_array_size(json_object_get(j, "times")), 3);
        /* A class that says nothing gets the default array, its elements filled in too. */
        dflt = json_object_get(e->json, "sources");
        ASSERT_TRUE(json_array_size(dflt) >= 5);
        ASSERT_STREQ(json_string_value(json_object_get(json_array_get(dflt, 0), "root")), "/var/cache/apt/archives");
        ASSERT_EQ(json_integer_value(json_object_get(json_array_get(dflt, 0), "max_depth")), 0);

        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"sources\": [{\"root\": \"/x\"}]}}}",
                            "t.json: classes.d.sources[0].name: missing");
        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"sources\": [{\"name\": \"a\"}, 3]}}}",
                            "t.json: classes.d.sources[1]: expected an object, got 3");
        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"sources\": {\"name\": \"a\"}}}}",
                            "t.json: classes.d.sources: expected an array of objects, got an object");
        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"sources\": [{\"name\": \"a\", \"rot\": 1}]}}}",
                            "t.json: classes.d.sources[0].rot: unknown key");
        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"sources\": [{\"name\": \"a\", \"min_age_s\": -1}]}}}",
                            "t.json: classes.d.sources[0].min_age_s: expected an integer in 0..315360000, got -1");
        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"sources\": [{\"name\": \"\"}]}}}",
                            "t.json: classes.d.sources[0].name: expected a non-empty string, got \"\"");
        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"sources\": [{\"name\": \"a\", \"times\": [\"mtime\", \"mtime\"]}]}}}",
                            "t.json: classes.d.sources[0].times[1]: repeated, got \"mtime\"");
        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"sources\": [{\"name\": \"a\", \"times\": [\"mtim\"]}]}}}",
                            "t.json: classes.d.sources[0].times[0]: expected one of atime|mtime|ctime|btime, got \"mtim\"");
        expect_invalid_text("{\"version\": 1, \"classes\": {\"d\": {\"include_loop\": 1}}}",
                            "t.json: classes.d.include_loop: expected true or false, got 1");

        /* The listing names the array and each element key. */
        ASSERT_TRUE(strstr(heal_policy_schema_keys(), "\nclasses.*.sources\n"));
        ASSERT_TRUE(strstr(heal_policy_schema_keys(), "\nclasses.*.sources[].name\n"));
        ASSERT_TRUE(strstr(heal_policy_schema_describe(), "\nclasses.*.sources[].name\tstring\t(required)\t"));
        ASSERT_TRUE(strstr(heal_policy_schema_describe(), "\nclasses.*.include_loop\tboolean\tfalse\t"));
}

int main(void) {
        test_mode_tier_strings();
        test_defaults();
        test_values_read();
        test_layered();
        test_live_override_flips_only_mode();
        test_mask();
        test_load_files_order();
        test_no_files();
        test_errors();
        test_error_names_file_in_dir();
        test_version_required();
        test_class_names();
        test_digest();
        test_targets();
        test_schema_keys();
        test_shipped_policy();
        test_schema_array();
        return 0;
}
