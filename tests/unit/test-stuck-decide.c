/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The detector's policy side: its keys through the real loader (defaults, validation), which units each
 * class looks at, where a unit's heartbeat is (most specific match, %-expansion), the PSI threshold, and
 * the intents handed to the guard. Also the persisted samples store on a temp run dir. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/paths.h"
#include "heal/policy.h"
#include "decide.h"
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
        _cleanup_free_ char *dir = test_tmpdir(), *corrupt = NULL;
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_(stuck_record_done) stuck_record rec = {}, rec2 = {};
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
        stuck_track t = { .stale_since = 5, .stuck = { .incident = "00000000000000000000000000000001",
                                                       .since_usec = 6, .n_samples = 1 } };
        char *keep[] = { (char *) "a.service", NULL };

        ASSERT_OK(setenv("HEAL_RUN_DIR", dir, 1));
        ASSERT_OK(stuck_store_open(&s));
        ASSERT_TRUE(strstr(heal_state_path(s), "/stuck"));
        ASSERT_EQ(stuck_store_load(s, "a.service", &rec), -ENOENT);

        ASSERT_OK(stuck_store_save(s, "a.service", &sample, &t));
        ASSERT_OK(stuck_store_load(s, "a.service", &rec));
        ASSERT_TRUE(rec.have_sample);
        ASSERT_EQ(rec.sample.monotonic_usec, 123);
        ASSERT_TRUE(rec.sample.cgroup.cpu_known && rec.sample.cgroup.cpu_usage_usec == 77);
        ASSERT_TRUE(!rec.sample.cgroup.io_known); /* unknown stays unknown through the file */
        ASSERT_EQ(rec.sample.n_procs, 1);
        ASSERT_EQ(rec.sample.procs[0].pid, 9);
        ASSERT_EQ(rec.track.stale_since, 5);
        ASSERT_STREQ(rec.track.stuck.incident, t.stuck.incident);

        /* After acting there is no baseline: saved without a sample. */
        ASSERT_OK(stuck_store_save(s, "b.service", NULL, &t));
        ASSERT_OK(stuck_store_load(s, "b.service", &rec2));
        ASSERT_TRUE(!rec2.have_sample);

        /* A record that is not ours is refused, never half-read. */
        ASSERT_TRUE(asprintf(&corrupt, "%s/stuck/units/c.service", dir) > 0);
        FILE *f = fopen(corrupt, "we");
        ASSERT_TRUE(f);
        fputs("{\"heal_state\": 1, \"key\": \"c.service\", \"sum\": \"0\", \"data\": {}}", f);
        fclose(f);
        stuck_record junk = {};
        ASSERT_EQ(stuck_store_load(s, "c.service", &junk), -EBADMSG);

        /* Units no longer running lose their records (b, and c with its unusable one). */
        ASSERT_EQ(stuck_store_prune(s, keep), 2);
        ASSERT_EQ(heal_state_list(s, STUCK_STORE_NS, &keys), 1);
        ASSERT_STREQ(keys[0], "a.service");

        unsetenv("HEAL_RUN_DIR");
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
        return 0;
}
