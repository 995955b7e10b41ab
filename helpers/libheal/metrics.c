/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Metrics: event counters and heartbeats kept in the state dir, exported as a
 * node-exporter textfile (heal.prom) that is replaced atomically. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heal/budget.h"
#include "heal/fileio.h"
#include "heal/metrics.h"
#include "heal/paths.h"

#define METRICS_NS "metrics"
#define COUNTERS_KEY "counters"
#define HEARTBEATS_KEY "heartbeats"
#define PROM_FILE "heal.prom"

/* Loads one metrics record. A corrupt one starts again from empty: counters
 * may reset (Prometheus' rate() expects that) and no guard ever reads them,
 * so this is the one place where losing state is the right answer. */
static int metrics_read(heal_state *s, const char *key, json_t **ret) {
        json_t *data = NULL;
        int r;

        r = heal_state_read(s, METRICS_NS, key, &data);
        if (r < 0 && r != -ENOENT && r != -EBADMSG)
                return r;
        if (r < 0 || !json_is_object(data)) {
                json_decref(data);
                data = json_object();
                if (!data)
                        return -ENOMEM;
        }
        *ret = data;
        return 0;
}

int heal_metrics_count(heal_state *s, const char *class, heal_event ev) {
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_json_ json_t *data = NULL;
        const char *event = heal_event_to_string(ev);
        json_t *per_class;
        json_int_t n;
        int r;

        if (!s || !class || !event)
                return -EINVAL;

        r = heal_state_lock(s, METRICS_NS, COUNTERS_KEY, &lock_fd);
        if (r < 0)
                return r;
        r = metrics_read(s, COUNTERS_KEY, &data);
        if (r < 0)
                return r;

        per_class = json_object_get(data, class);
        if (!json_is_object(per_class)) {
                per_class = json_object();
                if (!per_class || json_object_set_new(data, class, per_class) < 0)
                        return -ENOMEM;
        }
        n = json_integer_value(json_object_get(per_class, event));
        if (n < 0 || n == LLONG_MAX)
                n = 0;
        if (json_object_set_new(per_class, event, json_integer(n + 1)) < 0)
                return -ENOMEM;

        /* A count lost in a crash is harmless (and a damaged record reads as
         * empty, see metrics_read()): not worth a sync on every event. */
        return heal_state_write_flags(s, METRICS_NS, COUNTERS_KEY, data, HEAL_STATE_WRITE_NOSYNC);
}

int heal_metrics_heartbeat(heal_state *s, const char *healer, uint64_t now_usec) {
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_json_ json_t *data = NULL;
        int r;

        if (!s || !healer || now_usec > (uint64_t) LLONG_MAX)
                return -EINVAL;

        r = heal_state_lock(s, METRICS_NS, HEARTBEATS_KEY, &lock_fd);
        if (r < 0)
                return r;
        r = metrics_read(s, HEARTBEATS_KEY, &data);
        if (r < 0)
                return r;
        if (json_object_set_new(data, healer, json_integer((json_int_t) now_usec)) < 0)
                return -ENOMEM;

        return heal_state_write_flags(s, METRICS_NS, HEARTBEATS_KEY, data, HEAL_STATE_WRITE_NOSYNC);
}

/* The sample lines of one metric family, sorted before output so the file is
 * stable from one run to the next. */
typedef struct samples {
        char **v;
        size_t n;
        size_t alloc;
} samples;

static void samples_done(samples *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        *l = (samples) {};
}

static int samples_addf(samples *l, const char *fmt, ...) _printf_(2, 3);
static int samples_addf(samples *l, const char *fmt, ...) {
        va_list ap;
        char *line;
        int r;

        if (l->n == l->alloc) {
                size_t m = l->alloc ? l->alloc * 2 : 16;
                char **v = reallocarray(l->v, m, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->alloc = m;
        }
        va_start(ap, fmt);
        r = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        l->v[l->n++] = line;
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void family_print(FILE *f, const char *name, const char *type, const char *help, samples *l) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
        if (l->n > 0)
                qsort(l->v, l->n, sizeof(*l->v), cmp_str);
        for (size_t i = 0; i < l->n; i++)
                fprintf(f, "%s\n", l->v[i]);
}

/* A label value in the text format: valid UTF-8, with \, " and newline escaped. */
static char *label_escape(const char *value) {
        _cleanup_json_ json_t *utf8 = heal_json_string_lossy(value, strlen(value));
        const char *p;
        char *out, *q;
        size_t len;

        if (!utf8)
                return NULL;
        p = json_string_value(utf8);
        len = json_string_length(utf8);
        out = malloc(len * 2 + 1);
        if (!out)
                return NULL;
        q = out;
        for (size_t i = 0; i < len; i++) {
                switch (p[i]) {
                case '\\':
                        *q++ = '\\';
                        *q++ = '\\';
                        break;
                case '"':
                        *q++ = '\\';
                        *q++ = '"';
                        break;
                case '\n':
                        *q++ = '\\';
                        *q++ = 'n';
                        break;
                case '\0':
                        /* A NUL cannot be a label byte; it only ends up here from binary input. */
                        break;
                default:
                        *q++ = p[i];
                }
        }
        *q = '\0';
        return out;
}

static int events_samples(heal_state *s, samples *l) {
        _cleanup_json_ json_t *data = NULL;
        const char *class, *event;
        json_t *per_class, *n;
        int r;

        r = metrics_read(s, COUNTERS_KEY, &data);
        if (r < 0)
                return r;
        json_object_foreach(data, class, per_class) {
                _cleanup_free_ char *c = label_escape(class);
                if (!c)
                        return -ENOMEM;
                json_object_foreach(per_class, event, n) {
                        _cleanup_free_ char *e = label_escape(event);
                        if (!e)
                                return -ENOMEM;
                        if (!json_is_integer(n))
                                continue;
                        r = samples_addf(l, "heal_events_total{class=\"%s\",event=\"%s\"} %" JSON_INTEGER_FORMAT,
                                         c, e, json_integer_value(n));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int heartbeat_samples(heal_state *s, samples *l) {
        _cleanup_json_ json_t *data = NULL;
        const char *healer;
        json_t *v;
        int r;

        r = metrics_read(s, HEARTBEATS_KEY, &data);
        if (r < 0)
                return r;
        json_object_foreach(data, healer, v) {
                _cleanup_free_ char *h = label_escape(healer);
                json_int_t usec = json_integer_value(v);
                if (!h)
                        return -ENOMEM;
                if (!json_is_integer(v) || usec < 0)
                        continue;
                r = samples_addf(l, "heal_helper_heartbeat_timestamp_seconds{healer=\"%s\"} %" JSON_INTEGER_FORMAT ".%06" JSON_INTEGER_FORMAT,
                                 h, usec / 1000000, usec % 1000000);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Calls @fn for every readable record of @ns, each read once; records that
 * vanished or are corrupt are left out (the guards report those, metrics
 * are best effort). */
static int foreach_record(heal_state *s, const char *ns, heal_state_foreach_fn fn, samples *l) {
        int r = heal_state_foreach(s, ns, fn, l);
        return r == -ENOENT ? 0 : r;
}

/* Only the record's "state" string is read, so metrics do not depend on the
 * breaker's code; a half-open breaker counts as not open (it admits a trial). */
static bool breaker_is_open(const json_t *state) {
        return json_is_string(state) && strcmp(json_string_value(state), "open") == 0;
}

/* Breaker keys are "class/target"; the target may itself hold slashes (/var). */
static int breaker_sample(const char *key, json_t *data, void *userdata) {
        _cleanup_free_ char *class = NULL, *c = NULL, *t = NULL;
        samples *l = userdata;
        const char *slash = strchr(key, '/');
        const char *target = slash ? slash + 1 : "";

        class = slash ? strndup(key, (size_t) (slash - key)) : strdup(key);
        if (!class)
                return -ENOMEM;
        c = label_escape(class);
        t = label_escape(target);
        if (!c || !t)
                return -ENOMEM;
        return samples_addf(l, "heal_breaker_open{class=\"%s\",target=\"%s\"} %d", c, t,
                            breaker_is_open(json_object_get(data, "state")) ? 1 : 0);
}

static int budget_sample(const char *key, json_t *data, void *userdata) {
        _cleanup_free_ char *b = NULL;
        samples *l = userdata;
        json_t *level = json_object_get(data, "level");
        json_int_t v = json_integer_value(level);

        if (!json_is_integer(level) || v < 0)
                return 0;
        b = label_escape(key);
        if (!b)
                return -ENOMEM;
        return samples_addf(l, "heal_budget_tokens{bucket=\"%s\"} %" JSON_INTEGER_FORMAT ".%06" JSON_INTEGER_FORMAT,
                            b, v / (json_int_t) HEAL_TOKEN, v % (json_int_t) HEAL_TOKEN);
}

static int metrics_render(heal_state *s, char **ret, size_t *ret_size) {
        _cleanup_(samples_done) samples events = {}, breakers = {}, budgets = {}, heartbeats = {};
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        r = events_samples(s, &events);
        if (r >= 0)
                r = foreach_record(s, "breaker", breaker_sample, &breakers);
        if (r >= 0)
                r = foreach_record(s, "budget", budget_sample, &budgets);
        if (r >= 0)
                r = heartbeat_samples(s, &heartbeats);
        if (r < 0)
                return r;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        family_print(f, "heal_events_total", "counter",
                     "Audit events written, by failure class and event.", &events);
        family_print(f, "heal_breaker_open", "gauge",
                     "1 when the circuit breaker of a class and target is open, else 0.", &breakers);
        family_print(f, "heal_budget_tokens", "gauge",
                     "Tokens left in a budget bucket at its last use.", &budgets);
        family_print(f, "heal_helper_heartbeat_timestamp_seconds", "gauge",
                     "When a heal helper last ran, in seconds since the epoch.", &heartbeats);
        if (fclose(f) != 0)
                return -ENOMEM;

        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int heal_metrics_write(heal_state *s, const char *dir) {
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r;

        if (!s)
                return -EINVAL;
        if (!dir)
                dir = heal_path_metrics_dir();

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;

        r = metrics_render(s, &text, &size);
        if (r < 0)
                return r;

        /* The temp name does not end in .prom, so node-exporter never reads it.
         * No sync: node-exporter reads it from the page cache, and after a
         * crash the next run rewrites it from the state dir (a file lost or
         * cut short by a power loss only hides the metrics until then). */
        return heal_write_file_atomic(dir_fd, PROM_FILE, text, size, 0644, HEAL_WRITE_NOSYNC);
}
