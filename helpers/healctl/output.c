/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every verb prints with: error messages, aligned tables, JSON, times. */
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "healctl.h"
#include "heal/policy.h"

/* ---- messages ------------------------------------------------------------- */

static void vlog(const char *prefix, int r, const char *fmt, va_list ap) _printf_(3, 0);
static void vlog(const char *prefix, int r, const char *fmt, va_list ap) {
        fputs("healctl: ", stderr);
        if (prefix)
                fputs(prefix, stderr);
        vfprintf(stderr, fmt, ap);
        if (r < 0)
                fprintf(stderr, ": %s", strerror(-r));
        fputc('\n', stderr);
}

int log_error_errno(int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vlog(NULL, r, fmt, ap);
        va_end(ap);
        return r;
}

void log_error(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vlog(NULL, 0, fmt, ap);
        va_end(ap);
}

void log_warning(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vlog("warning: ", 0, fmt, ap);
        va_end(ap);
}

int usage_error(const char *verb, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vlog(NULL, 0, fmt, ap);
        va_end(ap);
        fprintf(stderr, "Try 'healctl %s%s--help'.\n", verb ? verb : "", verb ? " " : "");
        return CTL_EXIT_USAGE;
}

/* ---- tables --------------------------------------------------------------- */

struct table {
        size_t n_cols;
        char **cells;  /* row-major, headers first */
        size_t n_rows; /* headers included */
};

table *table_new(const char *const *headers) {
        _cleanup_free_ table *t = calloc(1, sizeof(table));

        if (!t)
                return NULL;
        while (headers[t->n_cols])
                t->n_cols++;
        if (table_add_row(t, headers) < 0)
                return NULL;
        return TAKE_PTR(t);
}

table *table_free(table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add_row(table *t, const char *const *cells) {
        char **c = reallocarray(t->cells, (t->n_rows + 1) * t->n_cols, sizeof(char *));

        if (!c)
                return -ENOMEM;
        t->cells = c;
        c += t->n_rows * t->n_cols;
        for (size_t i = 0; i < t->n_cols; i++) {
                c[i] = strdup(cells[i] ? cells[i] : "-");
                if (!c[i]) {
                        while (i > 0)
                                free(c[--i]);
                        return -ENOMEM;
                }
        }
        t->n_rows++;
        return 0;
}

int table_add_rowv(table *t, ...) {
        _cleanup_free_ const char **cells = calloc(t->n_cols, sizeof(char *));
        va_list ap;

        if (!cells)
                return -ENOMEM;
        va_start(ap, t);
        for (size_t i = 0; i < t->n_cols; i++)
                cells[i] = va_arg(ap, const char *);
        va_end(ap);
        return table_add_row(t, cells);
}

size_t table_rows(const table *t) {
        return t->n_rows - 1;
}

void table_print(const table *t, FILE *f) {
        _cleanup_free_ size_t *width = calloc(t->n_cols, sizeof(size_t));

        if (!width)
                return;
        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_cols; c++) {
                        size_t w = strlen(t->cells[r * t->n_cols + c]);
                        if (w > width[c])
                                width[c] = w;
                }

        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_cols; c++) {
                        const char *cell = t->cells[r * t->n_cols + c];
                        if (c + 1 == t->n_cols)
                                fprintf(f, "%s\n", cell); /* no trailing blanks */
                        else
                                fprintf(f, "%-*s  ", (int) width[c], cell);
                }
        }
}

/* ---- JSON and times ------------------------------------------------------- */

int json_print(const json_t *j, FILE *f) {
        if (json_dumpf(j, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                return -EIO;
        fputc('\n', f);
        return 0;
}

char *format_timestamp(uint64_t usec) {
        struct tm tm;
        time_t t;
        char buf[64]; /* a formatted date is bounded */
        char *s = NULL;

        if (usec == 0)
                return strdup("-");
        t = (time_t) (usec / 1000000);
        if (!localtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm) == 0)
                return asprintf(&s, "@%llu", (unsigned long long) (usec / 1000000)) < 0 ? NULL : s;
        return strdup(buf);
}

char *format_timespan(uint64_t usec) {
        uint64_t s = usec / 1000000;
        char *out = NULL;
        int r;

        if (s >= 86400)
                r = asprintf(&out, "%llud %lluh", (unsigned long long) (s / 86400),
                             (unsigned long long) (s % 86400 / 3600));
        else if (s >= 3600)
                r = asprintf(&out, "%lluh %llum", (unsigned long long) (s / 3600),
                             (unsigned long long) (s % 3600 / 60));
        else if (s >= 60)
                r = asprintf(&out, "%llum %llus", (unsigned long long) (s / 60),
                             (unsigned long long) (s % 60));
        else
                r = asprintf(&out, "%llus", (unsigned long long) s);
        return r < 0 ? NULL : out;
}

char *ctl_operator_name(void) {
        const char *sudo = getenv("SUDO_USER");
        struct passwd pw, *res = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 1024;
        char *s = NULL;

        if (sudo && *sudo)
                return strdup(sudo);

        for (;;) {
                free(buf);
                buf = malloc(len);
                if (!buf)
                        return NULL;
                int r = getpwuid_r(getuid(), &pw, buf, len, &res);
                if (r != ERANGE)
                        break;
                len *= 2;
        }
        if (res && res->pw_name)
                return strdup(res->pw_name);
        return asprintf(&s, "uid %u", (unsigned) getuid()) < 0 ? NULL : s;
}

int ctl_policy_load(heal_policy **ret, char **ret_error) {
        return heal_policy_load(NULL, ret, ret_error);
}
