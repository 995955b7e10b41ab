/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading the audit trail back from the journal, and the pure parts that
 * shape it (time parsing, grouping by incident, the shadow report) so they
 * can be unit-tested without a journal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One audit record as read from the journal; strings owned, any may be NULL. */
typedef struct audit_entry {
        uint64_t usec;
        char *event, *healer, *class, *target, *incident, *intent, *reason, *owner, *tier, *mode;
        char *message;
} audit_entry;

void audit_entry_done(audit_entry *e);
void audit_entries_free(audit_entry *e, size_t n);

/**
 * parse_since() - a point in time for --since.
 * Accepts "-1h"/"-30m"/"-2d"/"-1w"/"-45s" (before @now_usec), "now", "today"
 * and "yesterday" (local midnight), an ISO date/time "2024-05-01",
 * "2024-05-01 12:00[:00]" or "2024-05-01T12:00[:00]" (local time, or UTC with a
 * trailing "Z"), and a bare number of µs since the epoch (or "@SECONDS").
 * Returns 0 with *ret, or -EINVAL.
 */
int parse_since(const char *s, uint64_t now_usec, uint64_t *ret);

typedef struct journal_query {
        const char *directory; /* a journal dir or file; NULL: $HEAL_JOURNAL_DIR, else the system's */
        const char *class, *target;
        const char *const *events; /* NULL-terminated, NULL: every heal event */
        uint64_t since_usec;       /* 0: from the start */
} journal_query;

/**
 * journal_read() - every heal audit record matching @q, oldest first.
 * Returns the count with a caller-owned array (audit_entries_free()), or -errno.
 */
int journal_read(const journal_query *q, audit_entry **ret, size_t *ret_n);

/* The records of one incident: indexes into the entries, in time order. */
typedef struct audit_group {
        const char *incident; /* borrowed from the entries; NULL for records without one */
        size_t *idx;
        size_t n;
} audit_group;

void audit_groups_free(audit_group *g, size_t n);

/**
 * audit_group_by_incident() - group @e (oldest first) by HEAL_INCIDENT.
 * Groups come in the order of their first record; a record without an
 * incident is a group of its own. Returns the number of groups, or -ENOMEM.
 */
int audit_group_by_incident(const audit_entry *e, size_t n, audit_group **ret, size_t *ret_n);

/* How often one class+target would have acted on one (local) day. */
typedef struct shadow_day {
        char day[11]; /* YYYY-MM-DD */
        size_t count;
} shadow_day;

typedef struct shadow_row {
        const char *class, *target; /* borrowed from the entries */
        size_t total;
        size_t max_per_day;
        bool suspicious;  /* some day had more than the threshold */
        shadow_day *days; /* oldest first */
        size_t n_days;
} shadow_row;

void shadow_rows_free(shadow_row *r, size_t n);

/**
 * shadow_aggregate() - count the would-act records of @e per class, target
 * and local day; flag a row when one day has more than @threshold.
 * Records of other events are ignored. Rows are sorted by class, then target.
 * Returns the number of rows, or -ENOMEM.
 */
int shadow_aggregate(const audit_entry *e, size_t n, size_t threshold, shadow_row **ret, size_t *ret_n);

/* The threshold of `healctl shadow-report`: more than this many a day looks like a bug. */
#define SHADOW_SUSPICIOUS_PER_DAY 5

/* The newest record of @class and @target whose event is one of @events
 * (NULL-terminated): its index into @e (oldest first), or -1 when none. */
long audit_last(const audit_entry *e, size_t n, const char *class, const char *target,
                const char *const *events);
