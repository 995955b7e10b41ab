/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl audit: the audit trail from the journal, one line per event,
 * grouped by incident. */
#include <stddef.h>
#include <string.h>

#include "healctl.h"
#include "heal/audit.h"
#include "heal/time-util.h"
#include "journal.h"

static void audit_help(void) {
        printf("Usage: healctl audit [--class C] [--target T] [--event E[,E...]] [--since S]\n"
               "                     [--directory DIR] [--json]\n\n"
               "The audit trail of heal from the journal, one line per event, grouped by\n"
               "incident (HEAL_INCIDENT), oldest first.\n\n"
               "  --class C        only class C (HEAL_CLASS)\n"
               "  --target T       only target T (HEAL_TARGET)\n"
               "  --event E        only these events (repeatable or comma-separated):\n"
               "                   detected, skipped, would-act, acting, verified, ...\n"
               "  --since S        \"-1h\", \"-2d\", \"today\", \"yesterday\", \"2024-05-01 12:00\",\n"
               "                   \"2024-05-01T12:00:00Z\", \"@SECONDS\" or µs since the epoch\n"
               "  --directory DIR  read this journal dir or file (default $HEAL_JOURNAL_DIR,\n"
               "                   else the system journal)\n"
               "  --json           print JSON\n\n"
               "Exit status 3 when no record matches.\n");
}

static json_t *audit_entry_json(const audit_entry *e) {
        _cleanup_free_ char *time = format_timestamp(e->usec);

        if (!time)
                return NULL;
        return json_pack("{s:I, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}",
                         "time_usec", (json_int_t) e->usec, "time", time, "event", e->event, "healer",
                         e->healer, "class", e->class, "target", e->target, "intent", e->intent, "reason",
                         e->reason, "owner", e->owner, "tier", e->tier, "mode", e->mode, "message",
                         e->message);
}

static int print_json(const audit_entry *e, const audit_group *g, size_t ng) {
        _cleanup_json_ json_t *arr = json_array(), *o = NULL;

        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < ng; i++) {
                const audit_entry *first = &e[g[i].idx[0]];
                json_t *events = json_array(), *inc;

                if (!events)
                        return -ENOMEM;
                for (size_t k = 0; k < g[i].n; k++)
                        if (json_array_append_new(events, audit_entry_json(&e[g[i].idx[k]])) < 0) {
                                json_decref(events);
                                return -ENOMEM;
                        }
                inc = json_pack("{s:s?, s:s?, s:s?, s:o}", "incident", g[i].incident, "class", first->class,
                                "target", first->target, "events", events);
                if (json_array_append_new(arr, inc) < 0)
                        return -ENOMEM;
        }
        o = json_pack("{s:O}", "incidents", arr);
        if (!o)
                return -ENOMEM;
        return json_print(o, stdout);
}

static size_t width_of(const audit_entry *e, size_t n, size_t offset) {
        size_t w = 1;

        for (size_t i = 0; i < n; i++) {
                const char *s = *(char *const *) ((const char *) &e[i] + offset);
                if (s && strlen(s) > w)
                        w = strlen(s);
        }
        return w;
}

static int print_text(const audit_entry *e, size_t n, const audit_group *g, size_t ng) {
        int we = (int) width_of(e, n, offsetof(audit_entry, event));
        int wt = (int) width_of(e, n, offsetof(audit_entry, target));

        for (size_t i = 0; i < ng; i++) {
                const audit_entry *first = &e[g[i].idx[0]];

                if (i > 0)
                        putchar('\n');
                printf("incident %s  %s  %s  (%zu event%s)\n", g[i].incident ? g[i].incident : "(none)",
                       first->class ? first->class : "-", first->target ? first->target : "-", g[i].n,
                       g[i].n == 1 ? "" : "s");
                for (size_t k = 0; k < g[i].n; k++) {
                        const audit_entry *x = &e[g[i].idx[k]];
                        _cleanup_free_ char *time = format_timestamp(x->usec);

                        if (!time)
                                return -ENOMEM;
                        printf("  %s  %-*s  %-*s  ", time, we, x->event ? x->event : "-", wt,
                               x->target ? x->target : "-");
                        if (x->reason)
                                printf("[%s] ", x->reason);
                        printf("%s\n", x->message ? x->message : "");
                }
        }
        return 0;
}

/* --event a,b --event c: one NULL-terminated list, each name checked. */
static int add_events(char ***events, size_t *n, const char *arg) {
        _cleanup_free_ char *copy = strdup(arg);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char **l;
                if (heal_event_from_string(tok) < 0)
                        return -EINVAL;
                l = reallocarray(*events, *n + 2, sizeof(char *));
                if (!l)
                        return -ENOMEM;
                *events = l;
                l[*n] = strdup(tok);
                if (!l[*n])
                        return -ENOMEM;
                l[++*n] = NULL;
        }
        return 0;
}

int verb_audit(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "class", required_argument, NULL, 'c' },
                { "target", required_argument, NULL, 't' },
                { "event", required_argument, NULL, 'e' },
                { "since", required_argument, NULL, 'S' },
                { "directory", required_argument, NULL, 'D' },
                {},
        };
        _cleanup_strv_free_ char **events = NULL;
        journal_query q = {};
        audit_entry *e = NULL;
        audit_group *g = NULL;
        size_t n_events = 0, n = 0, ng = 0;
        bool json = false;
        int c, r, ret;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hc:t:e:S:D:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        audit_help();
                        return CTL_EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case 'c':
                        q.class = optarg;
                        break;
                case 't':
                        q.target = optarg;
                        break;
                case 'e':
                        r = add_events(&events, &n_events, optarg);
                        if (r == -EINVAL)
                                return usage_error("audit", "unknown event in '%s'", optarg);
                        if (r < 0)
                                return log_error_errno(r, "out of memory"), CTL_EXIT_FAILURE;
                        break;
                case 'S':
                        if (parse_since(optarg, heal_now_usec(CLOCK_REALTIME), &q.since_usec) < 0)
                                return usage_error("audit", "cannot parse --since '%s'", optarg);
                        break;
                case 'D':
                        q.directory = optarg;
                        break;
                default:
                        return usage_error("audit", "bad option");
                }
        if (optind < argc)
                return usage_error("audit", "unexpected argument '%s'", argv[optind]);
        q.events = (const char *const *) events;

        r = journal_read(&q, &e, &n);
        if (r < 0)
                return log_error_errno(r, "cannot read the journal%s%s", q.directory ? " " : "",
                                       q.directory ? q.directory : ""),
                       CTL_EXIT_FAILURE;
        r = audit_group_by_incident(e, n, &g, &ng);
        if (r < 0) {
                audit_entries_free(e, n);
                return log_error_errno(r, "out of memory"), CTL_EXIT_FAILURE;
        }

        if (json)
                r = print_json(e, g, ng);
        else if (n == 0) {
                printf("No audit records match.\n");
                r = 0;
        } else
                r = print_text(e, n, g, ng);
        ret = r < 0 ? CTL_EXIT_FAILURE : n == 0 ? CTL_EXIT_NOT_FOUND : CTL_EXIT_OK;

        audit_groups_free(g, ng);
        audit_entries_free(e, n);
        return ret;
}
