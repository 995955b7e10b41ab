/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Metrics: counters that survive between short-lived helpers (unsynced, and
 * a damaged counter record starts again), and a heal.prom that node-exporter
 * can read at any moment, from every readable breaker and budget record. */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/metrics.h"
#include "heal/state.h"
#include "test-util.h"

static char *read_all(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        ASSERT_TRUE(f);
        ASSERT_TRUE(getdelim(&buf, &size, '\0', f) >= 0);
        return buf;
}

/* The file holds @line as one whole line. */
static int has_line(const char *text, const char *line) {
        size_t n = strlen(line);

        for (const char *p = text; (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return 1;
        return 0;
}

static char *write_prom(heal_state *s, const char *dir) {
        _cleanup_free_ char *path = NULL;

        ASSERT_OK(heal_metrics_write(s, dir));
        ASSERT_TRUE(asprintf(&path, "%s/heal.prom", dir) > 0);
        return read_all(path);
}

static void test_counters_accumulate(const char *state_dir, const char *prom_dir) {
        _cleanup_(heal_state_freep) heal_state *a = NULL, *b = NULL;
        _cleanup_free_ char *text = NULL;

        ASSERT_OK(heal_state_open(state_dir, &a));
        ASSERT_OK(heal_state_open(state_dir, &b));

        /* Two handles stand for two helper runs: counts add up on disk. */
        ASSERT_OK(heal_metrics_count(a, "worker-dead", HEAL_EVENT_ACTING));
        ASSERT_OK(heal_metrics_count(b, "worker-dead", HEAL_EVENT_ACTING));
        ASSERT_OK(heal_metrics_count(a, "worker-dead", HEAL_EVENT_ACTING));
        ASSERT_OK(heal_metrics_count(b, "worker-dead", HEAL_EVENT_SKIPPED));
        ASSERT_OK(heal_metrics_count(a, "disk-pressure", HEAL_EVENT_WOULD_ACT));
        ASSERT_EQ(heal_metrics_count(a, "x", _HEAL_EVENT_MAX), -EINVAL);
        ASSERT_EQ(heal_metrics_count(a, NULL, HEAL_EVENT_ACTING), -EINVAL);
        ASSERT_OK(heal_metrics_heartbeat(a, "worker-reviver", UINT64_C(1700000000123456)));
        ASSERT_OK(heal_metrics_heartbeat(b, "disk-reclaim", UINT64_C(1700000001000000)));

        text = write_prom(b, prom_dir);
        ASSERT_TRUE(has_line(text, "# HELP heal_events_total Audit events written, by failure class and event."));
        ASSERT_TRUE(has_line(text, "# TYPE heal_events_total counter"));
        ASSERT_TRUE(has_line(text, "heal_events_total{class=\"worker-dead\",event=\"acting\"} 3"));
        ASSERT_TRUE(has_line(text, "heal_events_total{class=\"worker-dead\",event=\"skipped\"} 1"));
        ASSERT_TRUE(has_line(text, "heal_events_total{class=\"disk-pressure\",event=\"would-act\"} 1"));
        ASSERT_TRUE(has_line(text, "# TYPE heal_helper_heartbeat_timestamp_seconds gauge"));
        ASSERT_TRUE(has_line(text, "heal_helper_heartbeat_timestamp_seconds{healer=\"worker-reviver\"} 1700000000.123456"));
        ASSERT_TRUE(has_line(text, "heal_helper_heartbeat_timestamp_seconds{healer=\"disk-reclaim\"} 1700000001.000000"));
        ASSERT_TRUE(has_line(text, "# TYPE heal_breaker_open gauge"));
        ASSERT_TRUE(has_line(text, "# TYPE heal_budget_tokens gauge"));
        ASSERT_TRUE(strstr(text, "# HELP heal_breaker_open "));
        ASSERT_TRUE(strstr(text, "# HELP heal_budget_tokens "));
        ASSERT_TRUE(strstr(text, "# HELP heal_helper_heartbeat_timestamp_seconds "));
        /* TYPE follows HELP of the same family, before its samples. */
        ASSERT_TRUE(strstr(text, "# HELP heal_events_total") < strstr(text, "# TYPE heal_events_total"));
        ASSERT_TRUE(strstr(text, "# TYPE heal_events_total") < strstr(text, "heal_events_total{"));
}

static void test_escaping(const char *state_dir, const char *prom_dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_free_ char *text = NULL;

        ASSERT_OK(heal_state_open(state_dir, &s));
        ASSERT_OK(heal_metrics_count(s, "alert:Disk\"Full\"\\x\ny", HEAL_EVENT_DETECTED));
        text = write_prom(s, prom_dir);
        ASSERT_TRUE(has_line(text, "heal_events_total{class=\"alert:Disk\\\"Full\\\"\\\\x\\ny\",event=\"detected\"} 1"));
}

static void test_breakers_and_budgets(const char *state_dir, const char *prom_dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_t *open = json_pack("{s:s, s:i}", "state", "open", "failures", 3);
        _cleanup_json_ json_t *closed = json_pack("{s:s, s:i}", "state", "closed", "failures", 0);
        _cleanup_json_ json_t *half = json_pack("{s:s}", "state", "half-open");
        _cleanup_json_ json_t *bucket = json_pack("{s:I, s:I}", "level", (json_int_t) 2500000, "stamp_usec", (json_int_t) 1);

        ASSERT_OK(heal_state_open(state_dir, &s));
        ASSERT_OK(heal_state_write(s, "breaker", "worker-dead/foo.service", open));
        ASSERT_OK(heal_state_write(s, "breaker", "disk-pressure//var/log", closed));
        ASSERT_OK(heal_state_write(s, "breaker", "process-stuck/bar.service", half));
        ASSERT_OK(heal_state_write(s, "budget", "class/worker-dead", bucket));

        text = write_prom(s, prom_dir);
        ASSERT_TRUE(has_line(text, "heal_breaker_open{class=\"worker-dead\",target=\"foo.service\"} 1"));
        ASSERT_TRUE(has_line(text, "heal_breaker_open{class=\"disk-pressure\",target=\"/var/log\"} 0"));
        ASSERT_TRUE(has_line(text, "heal_breaker_open{class=\"process-stuck\",target=\"bar.service\"} 0"));
        ASSERT_TRUE(has_line(text, "heal_budget_tokens{bucket=\"class/worker-dead\"} 2.500000"));
}

static void put_file(const char *path, const char *content) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, content, strlen(content)), (ssize_t) strlen(content));
}

/* Every record is read once, hashed (long) names included; what does not
 * load is left out instead of failing the file. */
static void test_every_record(const char *state_dir, const char *prom_dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_free_ char *text = NULL, *longkey = NULL, *line = NULL, *bad = NULL, *name = NULL;
        _cleanup_json_ json_t *bucket = json_pack("{s:I, s:I}", "level", (json_int_t) 7000000, "stamp_usec", (json_int_t) 1);

        ASSERT_OK(heal_state_open(state_dir, &s));
        longkey = malloc(301);
        ASSERT_TRUE(longkey);
        memcpy(longkey, "target/worker-dead/", 19);
        memset(longkey + 19, 'q', 281);
        longkey[300] = '\0';
        for (int i = 0; i < 50; i++) {
                _cleanup_free_ char *k = NULL;
                ASSERT_TRUE(asprintf(&k, "target/worker-dead/w%d.service", i) > 0);
                ASSERT_OK(heal_state_write(s, "budget", k, bucket));
        }
        ASSERT_OK(heal_state_write(s, "budget", longkey, bucket));
        ASSERT_OK(heal_state_write(s, "budget", "corrupt", bucket));
        name = heal_state_escape("corrupt");
        ASSERT_TRUE(asprintf(&bad, "%s/budget/%s", state_dir, name) > 0);
        put_file(bad, "{\"heal_state\": 1, \"da");

        text = write_prom(s, prom_dir);
        for (int i = 0; i < 50; i++) {
                _cleanup_free_ char *want = NULL;
                ASSERT_TRUE(asprintf(&want, "heal_budget_tokens{bucket=\"target/worker-dead/w%d.service\"} 7.000000", i) > 0);
                ASSERT_TRUE(has_line(text, want));
        }
        ASSERT_TRUE(asprintf(&line, "heal_budget_tokens{bucket=\"%s\"} 7.000000", longkey) > 0);
        ASSERT_TRUE(has_line(text, line));
        ASSERT_TRUE(!strstr(text, "bucket=\"corrupt\""));

        /* A counter record that does not load (a power loss hit it) starts again. */
        _cleanup_free_ char *counters = NULL, *text2 = NULL;
        ASSERT_TRUE(asprintf(&counters, "%s/metrics/counters", state_dir) > 0);
        put_file(counters, "");
        ASSERT_OK(heal_metrics_count(s, "worker-dead", HEAL_EVENT_ACTING));
        text2 = write_prom(s, prom_dir);
        ASSERT_TRUE(has_line(text2, "heal_events_total{class=\"worker-dead\",event=\"acting\"} 1"));
}

static void test_atomic_and_missing_dir(const char *state_dir, const char *prom_dir) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_free_ char *missing = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        unsigned n = 0;

        ASSERT_OK(heal_state_open(state_dir, &s));
        ASSERT_OK(heal_metrics_write(s, prom_dir));
        ASSERT_OK(heal_metrics_write(s, prom_dir));

        /* Only heal.prom: no temp file left behind by either write. */
        d = opendir(prom_dir);
        ASSERT_TRUE(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                ASSERT_STREQ(de->d_name, "heal.prom");
                n++;
        }
        ASSERT_EQ(n, 1);

        ASSERT_TRUE(asprintf(&missing, "%s/no-such-dir", prom_dir) > 0);
        ASSERT_EQ(heal_metrics_write(s, missing), -ENOENT);
}

int main(void) {
        _cleanup_free_ char *top = test_tmpdir(), *state_dir = NULL, *prom_dir = NULL;

        ASSERT_TRUE(asprintf(&state_dir, "%s/state", top) > 0);
        ASSERT_TRUE(asprintf(&prom_dir, "%s/prom", top) > 0);
        ASSERT_EQ(mkdir(prom_dir, 0755), 0);

        test_counters_accumulate(state_dir, prom_dir);
        test_escaping(state_dir, prom_dir);
        test_breakers_and_budgets(state_dir, prom_dir);
        test_every_record(state_dir, prom_dir);
        test_atomic_and_missing_dir(state_dir, prom_dir);

        test_rm_rf(top);
        return 0;
}
