/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The detector's policy side: its keys through the real loader (defaults, validation), which units each
 * class looks at, where a unit's heartbeat is (most specific match, %-expansion), the PSI threshold, and
 * the intents handed to the guard. Also the persisted samples store on a temp run dir. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/paths.h"
#include "heal/policy.h"
#include "decide.h"
#include "detector.h"
#include "samples-store.h"
#include "test-util.h"

static heal_policy *load(const char *text, char **ret_error) {
        heal_policy_buffer b = { .name = "test.json", .data = text, .size = strlen(text) };
        heal_policy *p = NULL;

        if (heal_policy_load_buffers(&b, 1, &p, ret_error) < 0)
                return NULL;
        return p;
}

static void test_config_defaults(void) {
        _cleanup_(heal_policy_freep) heal_policy *p =
                load("{\"version\": 1, \"classes\": {\"process-stuck\": {}, \"process-zombies\": {}}}", NULL);
        stuck_config c;
        stuck_heartbeat_spec h;

        ASSERT_TRUE(p);
        stuck_config_from_policy(p, &c);
        ASSERT_TRUE(c.stuck && c.zombies && !c.d_state);
        ASSERT_EQ(c.heartbeat_stale_s, 60);
        ASSERT_EQ(c.psi_stall_percent, 50);
        ASSERT_EQ(c.zombies_max, 50);
        /* No heartbeat map entry: no heartbeat (never "fresh", never "stale"). */
        ASSERT_OK(stuck_heartbeat_for(&c, "foo.service", &h));
        ASSERT_EQ(h.source, STUCK_HEARTBEAT_NONE);

        /* No policy at all: nothing is targeted. */
        stuck_config_from_policy(NULL, &c);
        ASSERT_TRUE(!c.stuck && !stuck_unit_targeted(&c, "foo.service", false));
}

static void test_config_keys(void) {
        _cleanup_(heal_policy_freep) heal_policy *p = load(
                "{\"version\": 1, \"classes\": {\"process-stuck\": {"
                " \"heartbeat_stale_s\": 7, \"psi_stall_percent\": 20,"
                " \"heartbeat\": {\"*.service\": {\"file\": \"/run/hb/%n\"},"
                "                 \"worker@*.service\": {\"file\": \"/run/worker/%i.hb\"},"
                "                 \"worker@special.service\": {\"source\": \"watchdog\"},"
                "                 \"bad.service\": {\"file\": \"relative/path\"}}},"
                " \"process-zombies\": {\"zombies_max\": 3}}}",
                NULL);
        stuck_config c;

        ASSERT_TRUE(p);
        stuck_config_from_policy(p, &c);
        ASSERT_EQ(c.heartbeat_stale_s, 7);
        ASSERT_EQ(c.psi_stall_percent, 20);
        ASSERT_EQ(c.zombies_max, 3);

        /* The longest glob wins over the shorter one, whatever order the map has. */
        {
                _cleanup_(stuck_heartbeat_spec_done) stuck_heartbeat_spec h = {};
                ASSERT_OK(stuck_heartbeat_for(&c, "worker@eu-1.service", &h));
                ASSERT_EQ(h.source, STUCK_HEARTBEAT_FILE);
                ASSERT_STREQ(h.file, "/run/worker/eu-1.hb");
                ASSERT_STREQ(h.pattern, "worker@*.service");
        }
        /* An exact name beats every glob. */
        {
                _cleanup_(stuck_heartbeat_spec_done) stuck_heartbeat_spec h = {};
                ASSERT_OK(stuck_heartbeat_for(&c, "worker@special.service", &h));
                ASSERT_EQ(h.source, STUCK_HEARTBEAT_WATCHDOG);
                ASSERT_TRUE(!h.file);
        }
        {
                _cleanup_(stuck_heartbeat_spec_done) stuck_heartbeat_spec h = {};
                ASSERT_OK(stuck_heartbeat_for(&c, "api.service", &h));
                ASSERT_STREQ(h.file, "/run/hb/api.service");
        }
        /* An unusable entry is an error (the heartbeat is then unavailable), not a silent "none". */
        {
                stuck_heartbeat_spec h = {};
                ASSERT_EQ(stuck_heartbeat_for(&c, "bad.service", &h), -EINVAL);
                ASSERT_TRUE(!h.file);
        }
}

static void test_policy_validation(void) {
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL;

        /* The loader, not the detector, rejects these: they name the key. */
        ASSERT_TRUE(!load("{\"version\": 1, \"classes\": {\"process-stuck\": {\"heartbeat\": {\"a b\": {}}}}}", &e1));
        ASSERT_TRUE(e1 && strstr(e1, "classes.process-stuck.heartbeat.a b"));
        ASSERT_TRUE(!load("{\"version\": 1, \"classes\": {\"process-stuck\": {\"heartbeat\": {\"x.service\": "
                          "{\"source\": \"pidfile\"}}}}}",
                          &e2));
        ASSERT_TRUE(e2 && strstr(e2, "source"));
        ASSERT_TRUE(!load("{\"version\": 1, \"classes\": {\"process-stuck\": {\"psi_stall_percent\": 0}}}", &e3));
        ASSERT_TRUE(e3 && strstr(e3, "psi_stall_percent"));
        ASSERT_TRUE(strstr(heal_policy_schema_keys(), "\nclasses.*.heartbeat.*.file\n"));
        ASSERT_TRUE(strstr(heal_policy_schema_keys(), "\nclasses.*.heartbeat_stale_s\n"));
}

static void test_expand(void) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        ASSERT_OK(stuck_expand_path("/run/%p/%i/%n/100%%", "worker@x-1.service", &a));
        ASSERT_STREQ(a, "/run/worker/x-1/worker@x-1.service/100%");
        ASSERT_OK(stuck_expand_path("/run/%p-%i.hb", "plain.service", &b));
        ASSERT_STREQ(b, "/run/plain-.hb");
        ASSERT_EQ(stuck_expand_path("/run/%u", "plain.service", &c), -EINVAL);
        ASSERT_EQ(stuck_expand_path("/run/%", "plain.service", &d), -EINVAL);
        ASSERT_TRUE(!c && !d);
}

static void test_targets(void) {
        _cleanup_(heal_policy_freep) heal_policy *p = load(
                "{\"version\": 1, \"classes\": {"
                " \"process-stuck\": {\"targets\": [\"w-*.service\"]},"
                " \"process-d-state\": {\"targets\": [\"*\"], \"exclude\": [\"heal-*\", \"db.service\"]}}}",
                NULL);
        _cleanup_strv_free_ char **pat = NULL;
        char *enrolled[] = { (char *) "api.service", NULL };
        stuck_config c;

        ASSERT_TRUE(p);
        stuck_config_from_policy(p, &c);
        ASSERT_TRUE(stuck_class_targets(c.stuck, "w-1.service", false));
        ASSERT_TRUE(!stuck_class_targets(c.stuck, "api.service", false));
        /* Enrolled units are looked at unless excluded; the default exclude keeps heal's own out. */
        ASSERT_TRUE(stuck_class_targets(c.stuck, "api.service", true));
        ASSERT_TRUE(!stuck_class_targets(c.stuck, "heal-stuck-process-detector.service", true));
        ASSERT_TRUE(!stuck_class_targets(c.d_state, "db.service", false));
        ASSERT_TRUE(stuck_class_targets(c.d_state, "db2.service", false));
        /* Only services carry workers. */
        ASSERT_TRUE(!stuck_class_targets(c.d_state, "foo.timer", false));
        ASSERT_TRUE(!stuck_unit_targeted(&c, "heal-x.service", false));

        ASSERT_EQ(stuck_target_patterns(&c, enrolled, &pat), 3);
        ASSERT_STREQ(pat[0], "w-*.service");
        ASSERT_STREQ(pat[1], "*");
        ASSERT_STREQ(pat[2], "api.service");
        ASSERT_TRUE(!pat[3]);
}

static void test_psi(void) {
        stuck_cgroup_sample s = {};
        uint32_t worst = 0;

        ASSERT_EQ(stuck_psi_stalled(&s, 50, &worst), -1); /* unavailable, not "no stall" */
        s.psi[STUCK_PSI_CPU] = (stuck_psi) { .known = true, .some_avg60 = 1000 };
        ASSERT_EQ(stuck_psi_stalled(&s, 50, &worst), 0);
        ASSERT_EQ(worst, 1000);
        s.psi[STUCK_PSI_IO] = (stuck_psi) { .known = true, .some_avg60 = 5000 };
        ASSERT_EQ(stuck_psi_stalled(&s, 50, &worst), 1);
        ASSERT_EQ(stuck_psi_stalled(&s, 51, NULL), 0);
}

static void test_decide(void) {
        _cleanup_(stuck_intent_done) stuck_intent a = {}, b = {}, c = {};
        stuck_intent x = {};

        ASSERT_OK(stuck_decide(STUCK_CLASS, "w.service", NULL, &a));
        ASSERT_TRUE(a.kill && a.tier_override == -1 && strstr(a.intent, "SIGABRT") && strstr(a.intent, "w.service"));
        ASSERT_OK(stuck_decide(STUCK_CLASS_D_STATE, "w.service", NULL, &b));
        ASSERT_TRUE(!b.kill && b.tier_override == HEAL_TIER_HUMAN && strstr(b.intent, "uninterruptible"));
        /* The evidence reaches the intent, so the escalation names the parent. */
        ASSERT_OK(stuck_decide(STUCK_CLASS_ZOMBIES, "w.service", "60 zombies under PID 7 (forker)", &c));
        ASSERT_TRUE(!c.kill && c.tier_override == HEAL_TIER_HUMAN && strstr(c.intent, "PID 7 (forker)"));
        ASSERT_EQ(stuck_decide("worker-dead", "w.service", NULL, &x), -EINVAL);
}

/* The shipped policy defines the three classes in shadow mode with the detector's keys. */
static void test_shipped_policy(void) {
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *file = NULL, *error = NULL;
        const char *files[2] = {};
        stuck_config c;

        ASSERT_TRUE(asprintf(&file, "%s/policy/00-heal.json", getenv("SOURCE_ROOT")) > 0);
        files[0] = file;
        if (heal_policy_load_files(files, &p, &error) < 0) {
                fprintf(stderr, "default policy: %s\n", error ?: "(no message)");
                ASSERT_TRUE(false);
        }
        stuck_config_from_policy(p, &c);
        ASSERT_TRUE(c.stuck && c.d_state && c.zombies);
        ASSERT_EQ(c.stuck->mode, HEAL_MODE_SHADOW);
        ASSERT_EQ(c.d_state->mode, HEAL_MODE_SHADOW);
        ASSERT_EQ(c.zombies->mode, HEAL_MODE_SHADOW);
        ASSERT_EQ(c.d_state->tier, HEAL_TIER_HUMAN);
        ASSERT_TRUE(!stuck_unit_targeted(&c, "systemd-journald.service", false));
        ASSERT_TRUE(!stuck_unit_targeted(&c, "heal-stuck-process-detector.service", false));
        ASSERT_TRUE(stuck_unit_targeted(&c, "nginx.service", false));
}

static void test_store(void) {
        _cleanup_free_ char *dir = test_tmpdir(), *own = NULL;
        _cleanup_(stuck_store_freep) stuck_store *s = NULL, *s2 = NULL;
        _cleanup_(stuck_record_done) stuck_record rec = {}, rec2 = {}, rec3 = {};
        _cleanup_strv_free_ char **keys = NULL;
        stuck_proc_sample proc = { .pid = 9, .start_ticks = 90, .comm = (char *) "w", .state = 'S', .cpu_usec = 5,
                                   .n_threads = 1 };
        stuck_unit_sample sample = {
                .monotonic_usec = 123,
                .cgroup = { .cpu_known = true, .cpu_usage_usec = 77 },
                .descended = STUCK_DESCEND_FLAT,
                .procs = &proc,
                .n_procs = 1,
        };
        stuck_unit_sample counters = { .monotonic_usec = 124, .cgroup = { .cpu_known = true, .cpu_usage_usec = 80 } };
        stuck_track t = { .stale_since = 5, .stuck = { .incident = "00000000000000000000000000000001",
                                                       .since_usec = 6, .n_samples = 1 } };
        char *keep[] = { (char *) "a.service", (char *) "d.service", NULL };
        struct stat st;

        ASSERT_OK(setenv("HEAL_RUN_DIR", dir, 1));
        /* A record per unit from the version before goes on the first open. */
        {
                _cleanup_(heal_state_freep) heal_state *old = NULL;
                _cleanup_json_ json_t *o = json_object();
                _cleanup_free_ char *odir = NULL;
                ASSERT_TRUE(asprintf(&odir, "%s/stuck", dir) > 0);
                ASSERT_OK(heal_state_open(odir, &old));
                ASSERT_OK(heal_state_write(old, STUCK_STORE_LEGACY_NS, "x.service", o));
        }
        ASSERT_OK(stuck_store_open(&s));
        ASSERT_TRUE(strstr(heal_state_path(stuck_store_state(s)), "/stuck"));
        ASSERT_EQ(heal_state_list(stuck_store_state(s), STUCK_STORE_LEGACY_NS, &keys), 0);
        strv_free(keys);
        keys = NULL;
        ASSERT_EQ(stuck_store_get(s, "a.service", &rec), -ENOENT);

        /* A descended sample goes to its own record at once; the rest waits for the commit. */
        ASSERT_OK(stuck_store_put(s, "a.service", &sample, &t, "/system.slice/a.service",
                                  "0123456789abcdef0123456789abcdef"));
        ASSERT_TRUE(asprintf(&own, "%s/stuck/" STUCK_STORE_SAMPLES_NS "/a.service", dir) > 0);
        ASSERT_OK(stat(own, &st));
        ASSERT_OK(stuck_store_put(s, "b.service", NULL, &t, NULL, NULL)); /* after acting: no baseline */
        ASSERT_OK(stuck_store_put(s, "d.service", &counters, &t, "/d.slice/d.service", NULL));
        ASSERT_OK(stuck_store_get(s, "a.service", &rec));
        ASSERT_TRUE(rec.have_sample);
        ASSERT_EQ(rec.sample.n_procs, 1);
        rec = (stuck_record_done(&rec), (stuck_record) {});
        ASSERT_EQ(stuck_store_commit(s, keep), 1); /* b does not run any more */
        s = stuck_store_free(s);

        ASSERT_OK(stuck_store_open(&s2));
        ASSERT_OK(stuck_store_get(s2, "a.service", &rec));
        ASSERT_TRUE(rec.have_sample);
        ASSERT_EQ(rec.sample.monotonic_usec, 123);
        ASSERT_TRUE(rec.sample.cgroup.cpu_known && rec.sample.cgroup.cpu_usage_usec == 77);
        ASSERT_TRUE(!rec.sample.cgroup.io_known); /* unknown stays unknown through the file */
        ASSERT_EQ(rec.sample.n_procs, 1);
        ASSERT_EQ(rec.sample.procs[0].pid, 9);
        ASSERT_EQ(rec.track.stale_since, 5);
        ASSERT_STREQ(rec.track.stuck.incident, t.stuck.incident);
        ASSERT_STREQ(rec.control_group, "/system.slice/a.service");
        ASSERT_STREQ(rec.invocation_id, "0123456789abcdef0123456789abcdef");
        ASSERT_EQ(stuck_store_get(s2, "b.service", &rec2), -ENOENT);
        ASSERT_OK(stuck_store_get(s2, "d.service", &rec2));
        ASSERT_TRUE(rec2.have_sample && rec2.sample.descended == 0 && rec2.sample.cgroup.cpu_usage_usec == 80);
        ASSERT_STREQ(rec2.control_group, "/d.slice/d.service");
        ASSERT_TRUE(!rec2.invocation_id);

        /* Stops descending: its own record goes with the next put. */
        ASSERT_OK(stuck_store_put(s2, "a.service", &counters, &t, "/system.slice/a.service", NULL));
        ASSERT_EQ(stat(own, &st), -1);
        ASSERT_EQ(errno, ENOENT);

        /* An own record that is not the one the entry names (a run died before its commit) is no baseline. */
        ASSERT_OK(stuck_store_put(s2, "d.service", &sample, &t, NULL, NULL));
        ASSERT_OK(stuck_store_commit(s2, keep));
        sample.monotonic_usec = 999;
        ASSERT_OK(stuck_store_put(s2, "d.service", &sample, &t, NULL, NULL));
        s2 = stuck_store_free(s2);
        ASSERT_OK(stuck_store_open(&s));
        ASSERT_EQ(stuck_store_get(s, "d.service", &rec3), -EBADMSG);

        /* A store record that is not ours is an empty store, never half-read. */
        s = stuck_store_free(s);
        _cleanup_free_ char *corrupt = NULL;
        ASSERT_TRUE(asprintf(&corrupt, "%s/stuck/" STUCK_STORE_NS "/" STUCK_STORE_KEY, dir) > 0);
        FILE *f = fopen(corrupt, "we");
        ASSERT_TRUE(f);
        fputs("{\"heal_state\": 1, \"key\": \"units\", \"sum\": \"0\", \"data\": {}}", f);
        fclose(f);
        ASSERT_OK(stuck_store_open(&s));
        ASSERT_EQ(stuck_store_get(s, "a.service", &rec3), -ENOENT);
        /* ...and its commit removes the samples nothing names any more. */
        ASSERT_EQ(stuck_store_commit(s, keep), 0);
        ASSERT_EQ(heal_state_list(stuck_store_state(s), STUCK_STORE_SAMPLES_NS, &keys), 0);

        unsetenv("HEAL_RUN_DIR");
        test_rm_rf(dir);
}

/* The forms of an entry: a progressing unit's is a few numbers (compact sample, no track), a sample with
 * PSI keeps its full form, and an entry of the version before (an object) is still read. */
static void test_store_forms(void) {
        _cleanup_free_ char *dir = test_tmpdir(), *path = NULL, *text = NULL;
        _cleanup_(stuck_store_freep) stuck_store *s = NULL;
        _cleanup_(stuck_record_done) stuck_record a = {}, p = {}, old = {};
        _cleanup_json_ json_t *data = NULL, *legacy = NULL, *units = NULL;
        stuck_unit_sample progressing = {
                .monotonic_usec = 1000,
                .cgroup = { .cpu_known = true, .cpu_usage_usec = 42, .pressure_skipped = true },
        };
        stuck_unit_sample with_psi = {
                .monotonic_usec = 2000,
                .cgroup = { .cpu_known = true, .cpu_usage_usec = 43, .io_known = true, .io_bytes = 7,
                            .psi[STUCK_PSI_IO] = { .known = true, .some_avg60 = 1234, .some_total_usec = 5 } },
        };
        stuck_track empty = {}, tracked = { .flat_since = 9 };
        char *keep[] = { (char *) "a.service", (char *) "p.service", (char *) "old.service", NULL };
        const json_t *e;

        ASSERT_OK(setenv("HEAL_RUN_DIR", dir, 1));
        ASSERT_TRUE(stuck_track_is_empty(&empty) && !stuck_track_is_empty(&tracked));
        ASSERT_TRUE(stuck_unit_sample_is_compact(&progressing) && !stuck_unit_sample_is_compact(&with_psi));
        ASSERT_OK(stuck_store_open(&s));
        ASSERT_OK(stuck_store_put(s, "a.service", &progressing, &empty, "/system.slice/a.service",
                                  "0123456789abcdef0123456789abcdef"));
        ASSERT_OK(stuck_store_put(s, "p.service", &with_psi, &tracked, "/system.slice/p.service", NULL));
        ASSERT_OK(stuck_store_commit(s, keep));

        /* On disk: the entries as the format says. */
        ASSERT_OK(heal_state_read(stuck_store_state(s), STUCK_STORE_NS, STUCK_STORE_KEY, &data));
        units = json_incref(json_object_get(data, "units"));
        e = json_object_get(units, "a.service");
        ASSERT_TRUE(json_is_array(e) && json_array_size(e) == 3);
        ASSERT_STREQ(json_string_value(json_array_get(e, 0)), "/system.slice/a.service");
        ASSERT_TRUE(json_is_array(json_array_get(e, 2)) && json_array_size(json_array_get(e, 2)) == 5);
        ASSERT_EQ(json_integer_value(json_array_get(json_array_get(e, 2), 1)), 42);
        ASSERT_TRUE(json_is_null(json_array_get(json_array_get(e, 2), 3))); /* io unknown: null, not 0 */
        e = json_object_get(units, "p.service");
        ASSERT_TRUE(json_is_array(e) && json_array_size(e) == 4 && json_is_object(json_array_get(e, 2)));

        /* An entry of the version before, written into the record as it was. */
        legacy = json_pack("{s:{s:I,s:I,s:I,s:n,s:[],s:n,s:n},s:n,s:s,s:n}", "track", "flat_since", (json_int_t) 3,
                           "stale_since", (json_int_t) 0, "stall_since", (json_int_t) 0, "stuck", "d_tasks", "d_state",
                           "zombies", "sample", "control_group", "/old.slice/old.service", "invocation_id");
        ASSERT_TRUE(legacy);
        ASSERT_OK(json_object_set(units, "old.service", legacy));
        ASSERT_OK(json_object_set(data, "units", units));
        ASSERT_OK(heal_state_write(stuck_store_state(s), STUCK_STORE_NS, STUCK_STORE_KEY, data));
        s = stuck_store_free(s);

        ASSERT_OK(stuck_store_open(&s));
        ASSERT_OK(stuck_store_get(s, "a.service", &a));
        ASSERT_TRUE(a.have_sample && a.sample.monotonic_usec == 1000 && a.sample.cgroup.cpu_usage_usec == 42);
        ASSERT_TRUE(a.sample.cgroup.cpu_known && !a.sample.cgroup.io_known && !a.sample.cgroup.tasks_known);
        ASSERT_TRUE(stuck_track_is_empty(&a.track));
        ASSERT_STREQ(a.invocation_id, "0123456789abcdef0123456789abcdef");
        ASSERT_OK(stuck_store_get(s, "p.service", &p));
        ASSERT_TRUE(p.sample.cgroup.psi[STUCK_PSI_IO].known && p.sample.cgroup.psi[STUCK_PSI_IO].some_avg60 == 1234);
        ASSERT_TRUE(p.sample.cgroup.io_known && p.sample.cgroup.io_bytes == 7 && p.track.flat_since == 9);
        ASSERT_TRUE(!p.invocation_id);
        ASSERT_OK(stuck_store_get(s, "old.service", &old));
        ASSERT_TRUE(!old.have_sample && old.track.flat_since == 3);
        ASSERT_STREQ(old.control_group, "/old.slice/old.service");

        /* Wrong shapes are refused, never half-read. */
        static const char *const bad[] = {
                "[]", "[null,null]", "[null,null,null,{},1]", "[1,null,null]", "[null,null,\"x\"]",
                "[null,null,[1,2,false,null]]", "[null,null,[-1,2,false,null,null]]", "[null,null,[1,2,0,null,null]]",
                "[null,null,[null,2,false,null,null]]", "[null,null,null,[]]", "\"x\"",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(stuck_record_done) stuck_record r = {};
                _cleanup_json_ json_t *d = NULL, *b = json_loads(bad[i], JSON_DECODE_ANY, NULL);
                _cleanup_(stuck_store_freep) stuck_store *t = NULL;

                ASSERT_TRUE(b);
                ASSERT_OK(heal_state_read(stuck_store_state(s), STUCK_STORE_NS, STUCK_STORE_KEY, &d));
                ASSERT_OK(json_object_set(json_object_get(d, "units"), "a.service", b));
                ASSERT_OK(heal_state_write(stuck_store_state(s), STUCK_STORE_NS, STUCK_STORE_KEY, d));
                ASSERT_OK(stuck_store_open(&t));
                ASSERT_EQ(stuck_store_get(t, "a.service", &r), -EBADMSG);
        }

        unsetenv("HEAL_RUN_DIR");
        test_rm_rf(dir);
}

/* The invocation id that tells the run whether a remembered control group still holds. */
static void test_invocation_id(void) {
        _cleanup_free_ char *dir = test_tmpdir(), *a = NULL, *bad = NULL, *id = NULL;
        _cleanup_close_ int fd = -EBADF;

        ASSERT_TRUE(asprintf(&a, "%s/invocation:a.service", dir) > 0);
        ASSERT_TRUE(asprintf(&bad, "%s/invocation:bad.service", dir) > 0);
        ASSERT_OK(symlink("0123456789abcdef0123456789abcdef", a));
        ASSERT_OK(symlink("0123456789abcdef0123456789abcdef0", bad));
        ASSERT_EQ(stuck_unit_invocation_id_at(-EBADF, "a.service", &id), -EBADF);
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(stuck_unit_invocation_id_at(fd, "a.service", &id));
        ASSERT_STREQ(id, "0123456789abcdef0123456789abcdef");
        ASSERT_EQ(stuck_unit_invocation_id_at(fd, "none.service", &id), -ENOENT);
        ASSERT_EQ(stuck_unit_invocation_id_at(fd, "bad.service", &id), -EBADMSG);
        ASSERT_OK(unlink(bad));
        ASSERT_OK(symlink("0123456789ABCDEF0123456789abcdef", bad));
        ASSERT_EQ(stuck_unit_invocation_id_at(fd, "bad.service", &id), -EBADMSG);
        ASSERT_EQ(stuck_unit_invocation_id_at(fd, "../a.service", &id), -EINVAL);
        ASSERT_STREQ(id, "0123456789abcdef0123456789abcdef"); /* untouched by the failures */
        test_rm_rf(dir);
}

int main(void) {
        test_config_defaults();
        test_config_keys();
        test_policy_validation();
        test_expand();
        test_targets();
        test_psi();
        test_decide();
        test_shipped_policy();
        test_store();
        test_store_forms();
        test_invocation_id();
        return 0;
}
