/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl: the verbs, their exit codes, and the helpers they share. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <getopt.h>
#include <stdio.h>

#include "heal/cleanup.h"
#include "heal/policy.h"

/* Exit codes, documented in `healctl --help`; scripts rely on them. */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILURE = 1,
        CTL_EXIT_USAGE = 2,
        CTL_EXIT_NOT_FOUND = 3, /* no such id/record, or nothing to do */
        CTL_EXIT_POLICY = 4,    /* the policy is invalid */
        CTL_EXIT_ENGAGED = 10,  /* kill-switch status --quiet: the switch is on */
};

/* A verb gets its own argv (argv[0] is the verb's name) and returns an exit code. */
int verb_status(int argc, char *argv[]);
int verb_audit(int argc, char *argv[]);
int verb_enroll(int argc, char *argv[]);
int verb_unenroll(int argc, char *argv[]);
int verb_pending(int argc, char *argv[]);
int verb_approve(int argc, char *argv[]);
int verb_cancel(int argc, char *argv[]);
int verb_breaker(int argc, char *argv[]);
int verb_kill_switch(int argc, char *argv[]);
int verb_policy(int argc, char *argv[]);
int verb_shadow_report(int argc, char *argv[]);

/* ---- output.c: logging, tables, JSON, times ------------------------------ */

/* Print "healctl: <message>: <strerror(-r)>" to stderr; returns @r. */
int log_error_errno(int r, const char *fmt, ...) _printf_(2, 3);
/* Print "healctl: <message>" to stderr. */
void log_error(const char *fmt, ...) _printf_(1, 2);
void log_warning(const char *fmt, ...) _printf_(1, 2);

/* A usage error: message, hint to --help, returns CTL_EXIT_USAGE. */
int usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);

typedef struct table table;
table *table_new(const char *const *headers); /* NULL-terminated */
table *table_free(table *t);
static inline void table_freep(table **t) {
        table_free(*t);
}
/* Append one row of exactly as many cells as headers; NULL cells print "-". Returns 0 or -ENOMEM. */
int table_add_row(table *t, const char *const *cells);
int table_add_rowv(table *t, ...); /* cells as varargs, as many as headers */
size_t table_rows(const table *t);
void table_print(const table *t, FILE *f);

/* json_dumpf with indentation and a trailing newline. Returns 0 or -EIO. */
int json_print(const json_t *j, FILE *f);

/* Local time "YYYY-MM-DD HH:MM:SS" of @usec (caller frees), NULL on OOM. "-" for 0. */
char *format_timestamp(uint64_t usec);
/* "3d 4h", "12m 5s", "40s" (caller frees), NULL on OOM. */
char *format_timespan(uint64_t usec);

/* Wall clock now, in µs. */

/* The person deciding: $SUDO_USER, else the name of our uid, else "uid N". Caller frees. */
char *ctl_operator_name(void);

/* The policy from heal_path_policy_dirs(), with the error message on failure.
 * Returns 0 or -errno (-EINVAL: invalid). */
int ctl_policy_load(heal_policy **ret, char **ret_error);
