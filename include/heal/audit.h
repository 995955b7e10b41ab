/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The audit record: one journal entry per step of every incident. */
#pragma once

#include <jansson.h>
#include "heal/cleanup.h"

typedef enum heal_event {
        HEAL_EVENT_DETECTED,
        HEAL_EVENT_CONFIRMED,
        HEAL_EVENT_DISMISSED,
        HEAL_EVENT_SKIPPED,
        HEAL_EVENT_WOULD_ACT,
        HEAL_EVENT_ACTING,
        HEAL_EVENT_VERIFIED,
        HEAL_EVENT_VERIFY_FAILED,
        HEAL_EVENT_ACTION_FAILED,
        HEAL_EVENT_ESCALATED,
        HEAL_EVENT_BREAKER_OPENED,
        HEAL_EVENT_BREAKER_CLOSED,
        HEAL_EVENT_BUDGET_EXHAUSTED,
        HEAL_EVENT_APPROVED,
        HEAL_EVENT_CANCELLED,
        HEAL_EVENT_PENDING,     /* a delayed/approve action was recorded and waits */
        HEAL_EVENT_EXPIRED,     /* an approve action expired unapproved */
        _HEAL_EVENT_MAX,
} heal_event;

/* "would-act", "budget-exhausted", ...; NULL when out of range. */
const char *heal_event_to_string(heal_event e);
int heal_event_from_string(const char *s); /* -EINVAL when unknown */
/* The fixed MESSAGE_ID of an event (32 hex chars, see heal/message-ids.h). */
const char *heal_event_message_id(heal_event e);
/* syslog priority of an event (crit for escalated, warning for failures, ...). */
int heal_event_priority(heal_event e);

/* What every event of one incident shares; all strings borrowed, any may be NULL. */
typedef struct heal_incident {
        const char *healer;   /* "worker-reviver" */
        const char *class;    /* "worker-dead" */
        const char *target;   /* "foo.service", "/var" */
        const char *incident; /* one id for every event of the incident */
        const char *intent;   /* "restart foo.service" */
        const char *tier;     /* "auto", ... */
        const char *mode;     /* "shadow" | "live" */
        const char *rollback; /* how to undo, or "irreversible" */
        const char *owner;    /* who owns the decision: "heal", "human", an approver */
        const char *policy_digest;
        json_t *facts;        /* borrowed, may be NULL */
} heal_incident;

/* One step's own fields. */
typedef struct heal_audit_step {
        const char *reason; /* HEAL_REASON, for skipped: which guard */
        const char *before; /* HEAL_BEFORE */
        const char *after;  /* HEAL_AFTER */
        json_t *context;    /* HEAL_CONTEXT (JSON: journal lines, actions tried); borrowed, may be NULL */
} heal_audit_step;

/**
 * heal_audit() - write one audit record.
 * @step: may be NULL.
 * @fmt: MESSAGE, one sentence for a person.
 *
 * Sends to the journal with sd_journal_send(); if that fails, the record is
 * written to stderr as one line so it is never lost silently. Also passes the
 * record to the observer, if one is set. Returns 0, or the journal's -errno
 * (the record went to stderr then).
 */
int heal_audit(const heal_incident *inc, heal_event ev, const heal_audit_step *step,
               const char *fmt, ...) _printf_(4, 5);

/* The record as a JSON object (fields as in the journal), for observers. */
typedef void (*heal_audit_observer)(const json_t *record, void *userdata);

/* In-process observer of every record (healctl --json echo, unit tests). NULL clears. */
void heal_audit_set_observer(heal_audit_observer fn, void *userdata);

/**
 * heal_json_string_lossy() - a JSON string of @n arbitrary bytes.
 * Invalid UTF-8 (file names, journal lines) becomes U+FFFD instead of making
 * jansson refuse the whole string. Returns a new reference, NULL on OOM.
 */
json_t *heal_json_string_lossy(const char *s, size_t n);

/* A new random incident id (32 hex chars + NUL) in @buf. Returns 0 or -errno. */
int heal_incident_id_new(char buf[static 33]);
