/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The audit trail read back from the journal (sd-journal), grouped by
 * incident or counted per day; --since parsing. */
#include <ctype.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <systemd/sd-journal.h>

#include "heal/audit.h"
#include "heal/cleanup.h"
#include "heal/time-util.h"
#include "journal.h"

void audit_entry_done(audit_entry *e) {
        if (!e)
                return;
        free(e->event);
        free(e->healer);
        free(e->class);
        free(e->target);
        free(e->incident);
        free(e->intent);
        free(e->reason);
        free(e->owner);
        free(e->tier);
        free(e->mode);
        free(e->message);
        *e = (audit_entry){};
}

void audit_entries_free(audit_entry *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                audit_entry_done(&e[i]);
        free(e);
}

/* ---- --since -------------------------------------------------------------- */

/* The decimal digits @s starts with (no sign, no space), and where they end. */
static int parse_leading_number(const char *s, uint64_t *ret, const char **ret_end) {
        unsigned long long v;
        char *end = NULL;

        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s)
                return -EINVAL;
        *ret = v;
        *ret_end = end;
        return 0;
}

static int parse_relative(const char *s, uint64_t now, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "s", USEC_PER_SEC },          { "sec", USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },     { "min", 60 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC },   { "hour", 3600 * USEC_PER_SEC },
                { "d", 86400 * USEC_PER_SEC },  { "day", 86400 * USEC_PER_SEC },
                { "w", 604800 * USEC_PER_SEC }, { "week", 604800 * USEC_PER_SEC },
        };
        uint64_t v;
        const char *end;

        if (parse_leading_number(s, &v, &end) < 0)
                return -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                size_t l = strlen(units[i].suffix);
                const char *rest = end;
                /* "2h", "2hour", "2hours" */
                if (strncmp(rest, units[i].suffix, l) != 0)
                        continue;
                rest += l;
                if (*rest == 's' && l > 1)
                        rest++;
                if (*rest != '\0')
                        continue;
                if (v > UINT64_MAX / units[i].usec)
                        return -EINVAL;
                uint64_t delta = v * units[i].usec;
                *ret = delta >= now ? 0 : now - delta;
                return 0;
        }
        return -EINVAL;
}

static int local_midnight(uint64_t now, int days_back, uint64_t *ret) {
        time_t t = (time_t) (now / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&t, &tm))
                return -EINVAL;
        tm.tm_mday -= days_back;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
        if (t < 0)
                return -EINVAL;
        *ret = (uint64_t) t * USEC_PER_SEC;
        return 0;
}

static int parse_iso(const char *s, uint64_t *ret) {
        static const char *const formats[] = {
                "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d",
        };

        for (size_t i = 0; i < ELEMENTSOF(formats); i++) {
                struct tm tm = {};
                const char *end = strptime(s, formats[i], &tm);
                bool utc = false;
                time_t t;

                if (!end)
                        continue;
                if (*end == 'Z') {
                        utc = true;
                        end++;
                }
                if (*end != '\0')
                        continue;
                tm.tm_isdst = -1;
                t = utc ? timegm(&tm) : mktime(&tm);
                if (t < 0)
                        return -EINVAL;
                *ret = (uint64_t) t * USEC_PER_SEC;
                return 0;
        }
        return -EINVAL;
}

static int parse_number(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v;

        if (parse_leading_number(s, &v, &end) < 0 || *end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_since(const char *s, uint64_t now_usec, uint64_t *ret) {
        uint64_t v = 0;
        int r = 0;

        if (!s || !*s)
                return -EINVAL;
        if (strcmp(s, "now") == 0)
                v = now_usec;
        else if (strcmp(s, "today") == 0)
                r = local_midnight(now_usec, 0, &v);
        else if (strcmp(s, "yesterday") == 0)
                r = local_midnight(now_usec, 1, &v);
        else if (s[0] == '-')
                r = parse_relative(s + 1, now_usec, &v);
        else if (s[0] == '@') {
                r = parse_number(s + 1, &v);
                if (r >= 0 && v > UINT64_MAX / USEC_PER_SEC)
                        r = -EINVAL;
                v *= USEC_PER_SEC;
        } else if (strspn(s, "0123456789") == strlen(s))
                r = parse_number(s, &v);
        else
                r = parse_iso(s, &v);
        if (r < 0)
                return r;

        *ret = v;
        return 0;
}

/* ---- reading the journal -------------------------------------------------- */

static int journal_open(const char *path, sd_journal **ret) {
        struct stat st;

        if (!path || !*path)
                path = getenv("HEAL_JOURNAL_DIR");
        if (!path || !*path)
                return sd_journal_open(ret, SD_JOURNAL_LOCAL_ONLY);

        if (stat(path, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return sd_journal_open_directory(ret, path, 0);
        const char *files[] = { path, NULL };
        return sd_journal_open_files(ret, files, 0);
}

/* The value of @field in the current entry, NULL when absent. */
static int journal_field(sd_journal *j, const char *field, char **ret) {
        size_t fl = strlen(field), len;
        const void *data;
        int r;

        r = sd_journal_get_data(j, field, &data, &len);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        if (len <= fl || ((const char *) data)[fl] != '=')
                return -EBADMSG;
        *ret = strndup((const char *) data + fl + 1, len - fl - 1);
        return *ret ? 0 : -ENOMEM;
}

static int journal_entry(sd_journal *j, audit_entry *ret) {
        audit_entry e = {};
        struct {
                const char *field;
                char **dst;
        } fields[] = {
                { "HEAL_EVENT", &e.event },   { "HEAL_HEALER", &e.healer },     { "HEAL_CLASS", &e.class },
                { "HEAL_TARGET", &e.target }, { "HEAL_INCIDENT", &e.incident }, { "HEAL_INTENT", &e.intent },
                { "HEAL_REASON", &e.reason }, { "HEAL_OWNER", &e.owner },       { "HEAL_TIER", &e.tier },
                { "HEAL_MODE", &e.mode },     { "MESSAGE", &e.message },
        };
        int r;

        r = sd_journal_get_realtime_usec(j, &e.usec);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                r = journal_field(j, fields[i].field, fields[i].dst);
                if (r < 0) {
                        audit_entry_done(&e);
                        return r;
                }
        }
        *ret = e;
        return 0;
}

static int add_match(sd_journal *j, const char *field, const char *value) {
        _cleanup_free_ char *m = NULL;

        if (asprintf(&m, "%s=%s", field, value) < 0)
                return -ENOMEM;
        return sd_journal_add_match(j, m, 0);
}

static int journal_add_matches(sd_journal *j, const journal_query *q) {
        int r;

        /* Values of one field OR together, fields AND: (event a|b|...) && class && target. */
        if (q->events) {
                for (const char *const *e = q->events; *e; e++)
                        if ((r = add_match(j, "HEAL_EVENT", *e)) < 0)
                                return r;
        } else {
                for (int e = 0; e < _HEAL_EVENT_MAX; e++) {
                        const char *name = heal_event_to_string((heal_event) e);
                        if (name && (r = add_match(j, "HEAL_EVENT", name)) < 0)
                                return r;
                }
        }
        if (q->class && (r = add_match(j, "HEAL_CLASS", q->class)) < 0)
                return r;
        if (q->target && (r = add_match(j, "HEAL_TARGET", q->target)) < 0)
                return r;
        return 0;
}

int journal_read(const journal_query *q, audit_entry **ret, size_t *ret_n) {
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        audit_entry *a = NULL;
        size_t n = 0, cap = 0;
        int r;

        r = journal_open(q->directory, &j);
        if (r < 0)
                return r;
        r = journal_add_matches(j, q);
        if (r < 0)
                return r;
        r = q->since_usec > 0 ? sd_journal_seek_realtime_usec(j, q->since_usec) : sd_journal_seek_head(j);
        if (r < 0)
                return r;

        for (;;) {
                audit_entry e;

                r = sd_journal_next(j);
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                r = journal_entry(j, &e);
                if (r == -EBADMSG || r == -EADDRNOTAVAIL)
                        continue; /* a torn entry of a journal being written: skip it */
                if (r < 0)
                        goto fail;
                if (e.usec < q->since_usec) {
                        audit_entry_done(&e);
                        continue;
                }
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        audit_entry *na = reallocarray(a, ncap, sizeof(audit_entry));
                        if (!na) {
                                audit_entry_done(&e);
                                r = -ENOMEM;
                                goto fail;
                        }
                        a = na;
                        cap = ncap;
                }
                a[n++] = e;
        }

        *ret = a;
        *ret_n = n;
        return (int) (n > INT32_MAX ? INT32_MAX : n);
fail:
        audit_entries_free(a, n);
        return r;
}

/* ---- grouping by incident ------------------------------------------------- */

void audit_groups_free(audit_group *g, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(g[i].idx);
        free(g);
}

typedef struct sort_ctx_item {
        const audit_entry *e;
        size_t i;
} sort_ctx_item;

/* Incident (records without one last), then position: the entries are in
 * time order already, so each incident's records stay in time order. */
static int by_incident(const void *a, const void *b) {
        const sort_ctx_item *x = a, *y = b;
        const char *ix = x->e->incident, *iy = y->e->incident;

        if (ix && iy) {
                int c = strcmp(ix, iy);
                if (c != 0)
                        return c;
        } else if (ix || iy)
                return ix ? -1 : 1;
        return x->i < y->i ? -1 : x->i > y->i;
}

static int by_first_record(const void *a, const void *b) {
        const audit_group *x = a, *y = b;
        return x->idx[0] < y->idx[0] ? -1 : x->idx[0] > y->idx[0];
}

int audit_group_by_incident(const audit_entry *e, size_t n, audit_group **ret, size_t *ret_n) {
        _cleanup_free_ sort_ctx_item *items = NULL;
        audit_group *g = NULL;
        size_t ng = 0;

        items = calloc(n ? n : 1, sizeof(sort_ctx_item));
        g = calloc(n ? n : 1, sizeof(audit_group));
        if (!items || !g) {
                free(g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                items[i] = (sort_ctx_item){ &e[i], i };
        qsort(items, n, sizeof(sort_ctx_item), by_incident);

        for (size_t i = 0; i < n;) {
                const char *inc = items[i].e->incident;
                size_t k = i + 1;

                /* A record without an incident stands alone. */
                while (inc && k < n && items[k].e->incident && strcmp(items[k].e->incident, inc) == 0)
                        k++;
                g[ng].incident = inc;
                g[ng].idx = calloc(k - i, sizeof(size_t));
                if (!g[ng].idx) {
                        audit_groups_free(g, ng);
                        return -ENOMEM;
                }
                for (size_t m = i; m < k; m++)
                        g[ng].idx[g[ng].n++] = items[m].i;
                ng++;
                i = k;
        }

        qsort(g, ng, sizeof(audit_group), by_first_record);
        *ret = g;
        *ret_n = ng;
        return (int) (ng > INT32_MAX ? INT32_MAX : ng);
}

/* ---- the shadow report ---------------------------------------------------- */

void shadow_rows_free(shadow_row *r, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(r[i].days);
        free(r);
}

static const char *or_dash(const char *s) {
        return s ? s : "-";
}

static int by_class_target_time(const void *a, const void *b) {
        const audit_entry *x = *(const audit_entry *const *) a, *y = *(const audit_entry *const *) b;
        int c;

        if ((c = strcmp(or_dash(x->class), or_dash(y->class))) != 0)
                return c;
        if ((c = strcmp(or_dash(x->target), or_dash(y->target))) != 0)
                return c;
        return x->usec < y->usec ? -1 : x->usec > y->usec;
}

static void local_day(uint64_t usec, char day[static 11]) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(day, 11, "%Y-%m-%d", &tm) == 0)
                strcpy(day, "unknown");
}

static int shadow_row_add(shadow_row *row, const audit_entry *e, size_t threshold) {
        char day[11];

        local_day(e->usec, day);
        if (row->n_days == 0 || strcmp(row->days[row->n_days - 1].day, day) != 0) {
                shadow_day *d = reallocarray(row->days, row->n_days + 1, sizeof(shadow_day));
                if (!d)
                        return -ENOMEM;
                row->days = d;
                d[row->n_days] = (shadow_day){};
                memcpy(d[row->n_days].day, day, sizeof(day));
                row->n_days++;
        }
        shadow_day *cur = &row->days[row->n_days - 1];
        cur->count++;
        row->total++;
        if (cur->count > row->max_per_day)
                row->max_per_day = cur->count;
        if (cur->count > threshold)
                row->suspicious = true;
        return 0;
}

int shadow_aggregate(const audit_entry *e, size_t n, size_t threshold, shadow_row **ret, size_t *ret_n) {
        _cleanup_free_ const audit_entry **sel = calloc(n ? n : 1, sizeof(audit_entry *));
        shadow_row *rows = NULL;
        size_t ns = 0, nr = 0;

        if (!sel)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (e[i].event && strcmp(e[i].event, "would-act") == 0)
                        sel[ns++] = &e[i];
        qsort(sel, ns, sizeof(audit_entry *), by_class_target_time);

        rows = calloc(ns ? ns : 1, sizeof(shadow_row));
        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; i < ns; i++) {
                const char *class = or_dash(sel[i]->class), *target = or_dash(sel[i]->target);

                if (nr == 0 || strcmp(rows[nr - 1].class, class) != 0 ||
                    strcmp(rows[nr - 1].target, target) != 0)
                        rows[nr++] = (shadow_row){ .class = class, .target = target };
                if (shadow_row_add(&rows[nr - 1], sel[i], threshold) < 0) {
                        shadow_rows_free(rows, nr);
                        return -ENOMEM;
                }
        }

        *ret = rows;
        *ret_n = nr;
        return (int) (nr > INT32_MAX ? INT32_MAX : nr);
}

/* ---- the newest record of a target ---------------------------------------- */

static bool str_eq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

long audit_last(const audit_entry *e, size_t n, const char *class, const char *target,
                const char *const *events) {
        for (size_t i = n; i > 0; i--) {
                const audit_entry *x = &e[i - 1];

                if (!str_eq(x->class, class) || !str_eq(x->target, target))
                        continue;
                for (const char *const *ev = events; *ev; ev++)
                        if (str_eq(x->event, *ev))
                                return (long) (i - 1);
        }
        return -1;
}
