/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl shadow-report: how often shadow mode would have acted, per class,
 * target and day, flagging rates that look like a bug rather than a fix. */
#include <string.h>

#include "healctl.h"
#include "journal.h"
#include "heal/time-util.h"

static void shadow_help(void) {
        printf("Usage: healctl shadow-report [--since S] [--directory DIR] [--json]\n\n"
               "Per class and target, how often heal would have acted in shadow mode\n"
               "(HEAL_EVENT=would-act), per day. A target with more than %d in one day is\n"
               "flagged SUSPICIOUS: going live would likely make heal the incident.\n\n"
               "  --since S        as for healctl audit (default: everything in the journal)\n"
               "  --directory DIR  read this journal dir or file\n"
               "  --json           print JSON\n\n"
               "Exit status 3 when shadow mode would not have acted at all.\n",
               SHADOW_SUSPICIOUS_PER_DAY);
}

static int print_json(const shadow_row *rows, size_t n) {
        _cleanup_json_ json_t *arr = json_array(), *o = NULL;

        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *days = json_array(), *row;
                if (!days)
                        return -ENOMEM;
                for (size_t d = 0; d < rows[i].n_days; d++)
                        if (json_array_append_new(days, json_pack("{s:s, s:I}", "day", rows[i].days[d].day,
                                                                  "count",
                                                                  (json_int_t) rows[i].days[d].count)) < 0) {
                                json_decref(days);
                                return -ENOMEM;
                        }
                row = json_pack("{s:s, s:s, s:I, s:I, s:b, s:o}", "class", rows[i].class, "target",
                                rows[i].target, "total", (json_int_t) rows[i].total, "max_per_day",
                                (json_int_t) rows[i].max_per_day, "suspicious", rows[i].suspicious, "days",
                                days);
                if (json_array_append_new(arr, row) < 0)
                        return -ENOMEM;
        }
        o = json_pack("{s:i, s:O}", "threshold_per_day", SHADOW_SUSPICIOUS_PER_DAY, "targets", arr);
        return o ? json_print(o, stdout) : -ENOMEM;
}

static int print_text(const shadow_row *rows, size_t n) {
        _cleanup_(table_freep) table *t = table_new((const char *const[]){
                "CLASS", "TARGET", "TOTAL", "DAYS", "MAX/DAY", "FLAG", "PER DAY", NULL });
        size_t suspicious = 0;

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *total = NULL, *days = NULL, *max = NULL, *per_day = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&per_day, &len);

                if (!f)
                        return -ENOMEM;
                for (size_t d = 0; d < rows[i].n_days; d++)
                        fprintf(f, "%s%s:%zu", d ? " " : "", rows[i].days[d].day, rows[i].days[d].count);
                if (fclose(f) != 0)
                        return -ENOMEM;
                if (asprintf(&total, "%zu", rows[i].total) < 0 ||
                    asprintf(&days, "%zu", rows[i].n_days) < 0 ||
                    asprintf(&max, "%zu", rows[i].max_per_day) < 0)
                        return -ENOMEM;
                if (table_add_rowv(t, rows[i].class, rows[i].target, total, days, max,
                                   rows[i].suspicious ? "SUSPICIOUS" : "ok", per_day) < 0)
                        return -ENOMEM;
                suspicious += rows[i].suspicious;
        }
        table_print(t, stdout);
        if (suspicious > 0)
                printf("\n%zu target%s would have been acted on more than %d times in a day: look for a "
                       "bug\n"
                       "(a flapping check, a too-tight threshold) before going live.\n",
                       suspicious, suspicious == 1 ? "" : "s", SHADOW_SUSPICIOUS_PER_DAY);
        return 0;
}

int verb_shadow_report(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "since", required_argument, NULL, 'S' },
                { "directory", required_argument, NULL, 'D' },
                {},
        };
        static const char *const would_act[] = { "would-act", NULL };
        journal_query q = { .events = would_act };
        audit_entry *e = NULL;
        shadow_row *rows = NULL;
        size_t n = 0, nr = 0;
        bool json = false;
        int c, r, ret;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hS:D:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        shadow_help();
                        return CTL_EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case 'S':
                        if (parse_since(optarg, heal_now_usec(CLOCK_REALTIME), &q.since_usec) < 0)
                                return usage_error("shadow-report", "cannot parse --since '%s'", optarg);
                        break;
                case 'D':
                        q.directory = optarg;
                        break;
                default:
                        return usage_error("shadow-report", "bad option");
                }
        if (optind < argc)
                return usage_error("shadow-report", "unexpected argument '%s'", argv[optind]);

        r = journal_read(&q, &e, &n);
        if (r < 0)
                return log_error_errno(r, "cannot read the journal"), CTL_EXIT_FAILURE;
        r = shadow_aggregate(e, n, SHADOW_SUSPICIOUS_PER_DAY, &rows, &nr);
        if (r < 0) {
                audit_entries_free(e, n);
                return log_error_errno(r, "out of memory"), CTL_EXIT_FAILURE;
        }

        if (json)
                r = print_json(rows, nr);
        else if (nr == 0) {
                printf("Shadow mode would not have acted (no would-act record).\n");
                r = 0;
        } else
                r = print_text(rows, nr);
        ret = r < 0 ? CTL_EXIT_FAILURE : nr == 0 ? CTL_EXIT_NOT_FOUND : CTL_EXIT_OK;

        shadow_rows_free(rows, nr);
        audit_entries_free(e, n);
        return ret;
}
