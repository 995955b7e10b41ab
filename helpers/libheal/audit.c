/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The audit record: one structured journal entry per step, mirrored to an
 * in-process observer and, when the journal is unreachable, to stderr. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-journal.h>

#include "heal/audit.h"
#include "heal/message-ids.h"

/* Where libsystemd sends journal records (fixed in sd-journal). */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static const struct {
        const char *name;
        const char *message_id;
        int priority;
} event_table[_HEAL_EVENT_MAX] = {
        [HEAL_EVENT_DETECTED] = { "detected", HEAL_MESSAGE_DETECTED, LOG_INFO },
        [HEAL_EVENT_CONFIRMED] = { "confirmed", HEAL_MESSAGE_CONFIRMED, LOG_INFO },
        [HEAL_EVENT_DISMISSED] = { "dismissed", HEAL_MESSAGE_DISMISSED, LOG_INFO },
        [HEAL_EVENT_SKIPPED] = { "skipped", HEAL_MESSAGE_SKIPPED, LOG_INFO },
        [HEAL_EVENT_WOULD_ACT] = { "would-act", HEAL_MESSAGE_WOULD_ACT, LOG_NOTICE },
        [HEAL_EVENT_ACTING] = { "acting", HEAL_MESSAGE_ACTING, LOG_NOTICE },
        [HEAL_EVENT_VERIFIED] = { "verified", HEAL_MESSAGE_VERIFIED, LOG_NOTICE },
        [HEAL_EVENT_VERIFY_FAILED] = { "verify-failed", HEAL_MESSAGE_VERIFY_FAILED, LOG_WARNING },
        [HEAL_EVENT_ACTION_FAILED] = { "action-failed", HEAL_MESSAGE_ACTION_FAILED, LOG_WARNING },
        [HEAL_EVENT_ESCALATED] = { "escalated", HEAL_MESSAGE_ESCALATED, LOG_CRIT },
        [HEAL_EVENT_BREAKER_OPENED] = { "breaker-opened", HEAL_MESSAGE_BREAKER_OPENED, LOG_WARNING },
        /* A breaker closing is good news, but an operator watching one wants to see it. */
        [HEAL_EVENT_BREAKER_CLOSED] = { "breaker-closed", HEAL_MESSAGE_BREAKER_CLOSED, LOG_NOTICE },
        [HEAL_EVENT_BUDGET_EXHAUSTED] = { "budget-exhausted", HEAL_MESSAGE_BUDGET_EXHAUSTED, LOG_WARNING },
        [HEAL_EVENT_APPROVED] = { "approved", HEAL_MESSAGE_APPROVED, LOG_NOTICE },
        [HEAL_EVENT_CANCELLED] = { "cancelled", HEAL_MESSAGE_CANCELLED, LOG_NOTICE },
        [HEAL_EVENT_PENDING] = { "pending", HEAL_MESSAGE_PENDING, LOG_NOTICE },
        [HEAL_EVENT_EXPIRED] = { "expired", HEAL_MESSAGE_EXPIRED, LOG_NOTICE },
};

static heal_audit_observer observer_fn;
static void *observer_userdata;

const char *heal_event_to_string(heal_event e) {
        if ((unsigned) e >= _HEAL_EVENT_MAX)
                return NULL;
        return event_table[e].name;
}

int heal_event_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (int e = 0; e < _HEAL_EVENT_MAX; e++)
                if (strcmp(event_table[e].name, s) == 0)
                        return e;
        return -EINVAL;
}

const char *heal_event_message_id(heal_event e) {
        if ((unsigned) e >= _HEAL_EVENT_MAX)
                return NULL;
        return event_table[e].message_id;
}

int heal_event_priority(heal_event e) {
        if ((unsigned) e >= _HEAL_EVENT_MAX)
                return -EINVAL;
        return event_table[e].priority;
}

void heal_audit_set_observer(heal_audit_observer fn, void *userdata) {
        observer_fn = fn;
        observer_userdata = fn ? userdata : NULL;
}

int heal_incident_id_new(char buf[static 33]) {
        sd_id128_t id;
        int r;

        r = sd_id128_randomize(&id);
        if (r < 0)
                return r;
        sd_id128_to_string(id, buf);
        return 0;
}

/* Length of the valid UTF-8 sequence at @p (at most @n bytes), 0 when invalid. */
static size_t utf8_valid_len(const unsigned char *p, size_t n) {
        uint32_t cp;
        size_t len;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                len = 2;
                cp = p[0] & 0x1f;
        } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                len = 3;
                cp = p[0] & 0x0f;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                len = 4;
                cp = p[0] & 0x07;
        } else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* overlong forms, UTF-16 surrogates, beyond Unicode */
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

json_t *heal_json_string_lossy(const char *s, size_t n) {
        static const char replacement[] = "\xef\xbf\xbd";
        const unsigned char *p = (const unsigned char *) s;
        _cleanup_free_ char *buf = NULL;
        size_t i = 0, k = 0, len;

        if (!s)
                return NULL;

        /* Fast path: most strings are valid as they are. */
        while (i < n && (len = utf8_valid_len(p + i, n - i)) > 0)
                i += len;
        if (i == n)
                return json_stringn(s, n);

        /* Each invalid byte grows to at most 3 bytes. */
        if (n > (SIZE_MAX - 1) / 3)
                return NULL;
        buf = malloc(n * 3 + 1);
        if (!buf)
                return NULL;
        memcpy(buf, s, i);
        k = i;
        while (i < n) {
                len = utf8_valid_len(p + i, n - i);
                if (len == 0) {
                        memcpy(buf + k, replacement, 3);
                        k += 3;
                        i++;
                } else {
                        memcpy(buf + k, s + i, len);
                        k += len;
                        i += len;
                }
        }
        return json_stringn(buf, k);
}

/* The record being built: the journal's iovecs (each "FIELD=value", owned)
 * and the same fields as a JSON object for the observer and stderr. */
typedef struct audit_record {
        struct iovec *iov;
        size_t n_iov;
        size_t n_alloc;
        json_t *json;
} audit_record;

static void audit_record_done(audit_record *rec) {
        for (size_t i = 0; i < rec->n_iov; i++)
                free(rec->iov[i].iov_base);
        free(rec->iov);
        json_decref(rec->json);
}

/* Adds FIELD=value; a NULL value is left out of the record entirely. */
static int record_add(audit_record *rec, const char *field, const char *value) {
        size_t fl, vl;
        char *line;
        json_t *v;

        if (!value)
                return 0;

        if (rec->n_iov == rec->n_alloc) {
                size_t m = rec->n_alloc ? rec->n_alloc * 2 : 16;
                struct iovec *n = reallocarray(rec->iov, m, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                rec->iov = n;
                rec->n_alloc = m;
        }

        fl = strlen(field);
        vl = strlen(value);
        line = malloc(fl + 1 + vl);
        if (!line)
                return -ENOMEM;
        memcpy(line, field, fl);
        line[fl] = '=';
        memcpy(line + fl + 1, value, vl);

        v = heal_json_string_lossy(value, vl);
        if (!v || json_object_set_new(rec->json, field, v) < 0) {
                free(line);
                return -ENOMEM;
        }

        rec->iov[rec->n_iov++] = (struct iovec) { .iov_base = line, .iov_len = fl + 1 + vl };
        return 0;
}

static int record_add_json(audit_record *rec, const char *field, const json_t *value) {
        _cleanup_free_ char *s = NULL;

        if (!value)
                return 0;
        /* Sorted keys: the same facts always read the same in the journal. */
        s = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!s)
                return -ENOMEM;
        return record_add(rec, field, s);
}

static int record_build(audit_record *rec, const heal_incident *inc, heal_event ev,
                        const heal_audit_step *step, const char *message) {
        static const heal_incident no_incident = {};
        static const heal_audit_step no_step = {};
        _cleanup_free_ char *ident = NULL;
        char priority[4];
        int r;

        if (!inc)
                inc = &no_incident;
        if (!step)
                step = &no_step;

        rec->json = json_object();
        if (!rec->json)
                return -ENOMEM;

        snprintf(priority, sizeof(priority), "%d", heal_event_priority(ev));
        if (asprintf(&ident, "heal%s%s", inc->healer ? "-" : "", inc->healer ? inc->healer : "") < 0)
                return -ENOMEM;

        const struct {
                const char *field;
                const char *value;
        } fields[] = {
                { "MESSAGE_ID", heal_event_message_id(ev) },
                { "PRIORITY", priority },
                { "MESSAGE", message },
                { "SYSLOG_IDENTIFIER", ident },
                { "HEAL_EVENT", heal_event_to_string(ev) },
                { "HEAL_HEALER", inc->healer },
                { "HEAL_CLASS", inc->class },
                { "HEAL_TARGET", inc->target },
                { "HEAL_INCIDENT", inc->incident },
                { "HEAL_INTENT", inc->intent },
                { "HEAL_REASON", step->reason },
                { "HEAL_BEFORE", step->before },
                { "HEAL_AFTER", step->after },
                { "HEAL_TIER", inc->tier },
                { "HEAL_MODE", inc->mode },
                { "HEAL_ROLLBACK", inc->rollback },
                { "HEAL_OWNER", inc->owner },
                { "HEAL_POLICY_DIGEST", inc->policy_digest },
        };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                r = record_add(rec, fields[i].field, fields[i].value);
                if (r < 0)
                        return r;
        }

        r = record_add_json(rec, "HEAL_FACTS", inc->facts);
        if (r < 0)
                return r;
        return record_add_json(rec, "HEAL_CONTEXT", step->context);
}

/* The journal is gone (early boot, tests, a broken socket): one JSON line on
 * stderr keeps the record, and systemd usually captures stderr anyway. */
static void record_to_stderr(const audit_record *rec) {
        _cleanup_free_ char *line = json_dumps(rec->json, JSON_COMPACT);

        if (line)
                fprintf(stderr, "%s\n", line);
}

int heal_audit(const heal_incident *inc, heal_event ev, const heal_audit_step *step, const char *fmt,
               ...) {
        _cleanup_(audit_record_done) audit_record rec = {};
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        if ((unsigned) ev >= _HEAL_EVENT_MAX || !fmt)
                return -EINVAL;

        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        r = record_build(&rec, inc, ev, step, message);
        if (r < 0)
                return r;

        if (observer_fn)
                observer_fn(rec.json, observer_userdata);

        /* sd_journal_sendv() reports success when journald is not there at
         * all (no socket); that would lose the record silently. */
        if (access(JOURNAL_SOCKET, F_OK) < 0)
                r = -errno;
        else
                r = sd_journal_sendv(rec.iov, (int) rec.n_iov);
        if (r < 0) {
                record_to_stderr(&rec);
                return r;
        }
        return 0;
}
