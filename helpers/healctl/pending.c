/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl pending|approve|cancel: the actions of the delayed and approve
 * tiers, and the human decision on them. */
#include <string.h>

#include "healctl.h"
#include "heal/audit.h"
#include "heal/bus.h"
#include "heal/guard.h"
#include "heal/paths.h"
#include "heal/pending.h"
#include "heal/state.h"
#include "heal/time-util.h"
#include "pending-view.h"

/* How long approve waits for the helper's start job before leaving it queued. */
#define START_WAIT_USEC (5 * USEC_PER_SEC)

/* ---- what a record looks like to a person (pure, unit-tested) ------------- */

const char *pending_view_status(const heal_pending *p, uint64_t now) {
        if (p->status != HEAL_PENDING_WAITING)
                return heal_pending_status_to_string(p->status);
        if (!heal_pending_stale(p, now))
                return "waiting";
        return p->tier && strcmp(p->tier, "delayed") == 0 ? "due" : "expired";
}

char *pending_view_deadline(const heal_pending *p, uint64_t now) {
        _cleanup_free_ char *span = NULL;
        bool delayed = p->tier && strcmp(p->tier, "delayed") == 0;
        uint64_t when = delayed ? p->not_before_usec : p->expires_usec;
        char *s = NULL;

        if (p->status != HEAL_PENDING_WAITING || when == 0)
                return strdup("-");
        span = format_timespan(when > now ? when - now : now - when);
        if (!span)
                return NULL;
        if (when > now)
                return asprintf(&s, delayed ? "runs in %s" : "expires in %s", span) < 0 ? NULL : s;
        return asprintf(&s, delayed ? "due %s ago" : "expired %s ago", span) < 0 ? NULL : s;
}

bool pending_view_is_shadow(const heal_pending *p) {
        return heal_guard_shadow_key_base(p->idem_key) != NULL;
}

json_t *pending_view_json(const heal_pending *p, uint64_t now) {
        _cleanup_free_ char *deadline = pending_view_deadline(p, now);

        if (!deadline)
                return NULL;
        return json_pack(
                "{s:s, s:s, s:s?, s:b, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:O?, s:I, s:I, s:I, s:s}",
                "id", p->id, "status", pending_view_status(p, now), "tier", p->tier, "shadow",
                pending_view_is_shadow(p), "healer", p->healer, "class", p->class, "target", p->target,
                "incident", p->incident, "intent", p->intent, "rerun_unit", p->rerun_unit, "decided_by",
                p->decided_by, "facts", p->facts, "created_usec", (json_int_t) p->created_usec,
                "not_before_usec", (json_int_t) p->not_before_usec, "expires_usec",
                (json_int_t) p->expires_usec, "deadline", deadline);
}

/* ---- shared ---------------------------------------------------------------- */

static int open_state(heal_state **ret) {
        int r = heal_state_open(NULL, ret);
        if (r < 0)
                log_error_errno(r, "cannot open the state dir %s", heal_path_state_dir());
        return r;
}

/* The ids of records that exist but do not load (listed apart, never hidden). */
static int corrupt_ids(heal_state *s, char ***ret) {
        _cleanup_strv_free_ char **keys = NULL;
        char **out;
        size_t n = 0;
        int r;

        r = heal_state_list(s, "pending", &keys);
        if (r < 0)
                return r;
        out = calloc((size_t) r + 1, sizeof(char *));
        if (!out)
                return -ENOMEM;
        for (char **k = keys; *k; k++) {
                heal_pending p = {};
                r = heal_pending_load(s, *k, &p);
                heal_pending_done(&p);
                if (r != -EBADMSG)
                        continue;
                out[n] = strdup(*k);
                if (!out[n]) {
                        strv_free(out);
                        return -ENOMEM;
                }
                n++;
        }
        *ret = out;
        return (int) n;
}

static void audit_decision(const heal_pending *p, heal_event ev, const char *who, const char *fmt_what) {
        heal_incident inc = {
                .healer = p->healer,
                .class = p->class,
                .target = p->target,
                /* The guard's derived id when the trigger had none, so every
                 * record of the incident shares one HEAL_INCIDENT. */
                .incident = p->incident_id ? p->incident_id : p->incident,
                .intent = p->intent,
                .tier = p->tier,
                .owner = who,
                .facts = p->facts,
        };
        heal_audit_step step = { .reason = "healctl" };

        /* The audit falls back to stderr on its own; nothing more to do on failure. */
        (void) heal_audit(&inc, ev, &step, "%s on %s: %s %s by %s (pending %s)", p->class, p->target,
                          p->intent ? p->intent : "action", fmt_what, who, p->id);
}

/* ---- healctl pending -------------------------------------------------------- */

static int expire_one(heal_state *s, const char *id, const char *who, uint64_t now) {
        _cleanup_(heal_pending_done) heal_pending p = {};
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = heal_state_lock(s, "pending", id, &fd);
        if (r < 0)
                return r;
        r = heal_pending_load(s, id, &p);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        /* Only approve plans expire; a due delayed action is the guard's to run. */
        if (strcmp(pending_view_status(&p, now), "expired") != 0)
                return 0;

        audit_decision(&p, HEAL_EVENT_EXPIRED, who, "expired unapproved, removed");
        r = heal_pending_remove(s, id);
        return r < 0 ? r : 1;
}

static int pending_expire(heal_state *s, const heal_pending *list, size_t n, bool json) {
        _cleanup_free_ char *who = ctl_operator_name();
        _cleanup_json_ json_t *removed = json_array();
        uint64_t now = heal_now_usec(CLOCK_REALTIME);
        int r, ret = CTL_EXIT_OK;

        if (!who || !removed)
                return log_error_errno(-ENOMEM, "out of memory"), CTL_EXIT_FAILURE;
        for (size_t i = 0; i < n; i++) {
                r = expire_one(s, list[i].id, who, now);
                if (r < 0) {
                        log_error_errno(r, "could not expire pending %s", list[i].id);
                        ret = CTL_EXIT_FAILURE;
                        continue;
                }
                if (r == 0)
                        continue;
                if (json_array_append_new(removed, json_string(list[i].id)) < 0)
                        return CTL_EXIT_FAILURE;
                if (!json)
                        printf("expired %s (%s on %s: %s)\n", list[i].id, list[i].class, list[i].target,
                               list[i].intent ? list[i].intent : "-");
        }
        if (json) {
                _cleanup_json_ json_t *o = json_pack("{s:O}", "expired", removed);
                if (!o || json_print(o, stdout) < 0)
                        return CTL_EXIT_FAILURE;
        } else if (json_array_size(removed) == 0)
                printf("No expired approvals.\n");
        if (ret != CTL_EXIT_OK)
                return ret;
        return json_array_size(removed) > 0 ? CTL_EXIT_OK : CTL_EXIT_NOT_FOUND;
}

static int pending_print(const heal_pending *list, size_t n, char **corrupt, bool json) {
        uint64_t now = heal_now_usec(CLOCK_REALTIME);

        if (json) {
                _cleanup_json_ json_t *arr = json_array(), *bad = json_array(), *o = NULL;
                if (!arr || !bad)
                        return CTL_EXIT_FAILURE;
                for (size_t i = 0; i < n; i++)
                        if (json_array_append_new(arr, pending_view_json(&list[i], now)) < 0)
                                return CTL_EXIT_FAILURE;
                for (char **c = corrupt; c && *c; c++)
                        if (json_array_append_new(bad, json_string(*c)) < 0)
                                return CTL_EXIT_FAILURE;
                o = json_pack("{s:O, s:O}", "pending", arr, "corrupt", bad);
                return o && json_print(o, stdout) >= 0 ? CTL_EXIT_OK : CTL_EXIT_FAILURE;
        }

        if (n == 0)
                printf("No pending actions.\n");
        else {
                _cleanup_(table_freep) table *t =
                        table_new((const char *const[]){ "ID", "STATUS", "TIER", "CLASS", "TARGET", "INTENT",
                                                         "CREATED", "DEADLINE", "DECIDED BY", NULL });
                if (!t)
                        return CTL_EXIT_FAILURE;
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *created = format_timestamp(list[i].created_usec);
                        _cleanup_free_ char *deadline = pending_view_deadline(&list[i], now);
                        _cleanup_free_ char *tier = NULL;
                        if (!created || !deadline)
                                return CTL_EXIT_FAILURE;
                        if (pending_view_is_shadow(&list[i]) &&
                            asprintf(&tier, "%s (shadow)", list[i].tier) < 0)
                                return CTL_EXIT_FAILURE;
                        if (table_add_rowv(t, list[i].id, pending_view_status(&list[i], now),
                                           tier ? tier : list[i].tier, list[i].class, list[i].target,
                                           list[i].intent, created, deadline, list[i].decided_by) < 0)
                                return CTL_EXIT_FAILURE;
                }
                table_print(t, stdout);
        }
        for (char **c = corrupt; c && *c; c++)
                log_warning("pending record %s is corrupt (not shown; inspect it under %s)", *c,
                            heal_path_state_dir());
        return CTL_EXIT_OK;
}

static void pending_help(void) {
        printf("Usage: healctl pending [--expire] [--json]\n\n"
               "Actions of the delayed tier (waiting for their cancel window to end) and of\n"
               "the approve tier (waiting for `healctl approve ID`). STATUS is waiting,\n"
               "approved, cancelled, due (the window is over: it runs by itself) or expired\n"
               "(an approve plan nobody approved in time).\n\n"
               "  --expire  remove expired approve plans, auditing each (exit 3 when none)\n"
               "  --json    print JSON\n");
}

int verb_pending(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "expire", no_argument, NULL, 'e' },
                {},
        };
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_strv_free_ char **corrupt = NULL;
        heal_pending *list = NULL;
        bool json = false, expire = false;
        size_t n = 0;
        int c, r, ret;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        pending_help();
                        return CTL_EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case 'e':
                        expire = true;
                        break;
                default:
                        return usage_error("pending", "bad option");
                }
        if (optind < argc)
                return usage_error("pending", "unexpected argument '%s'", argv[optind]);

        if (open_state(&s) < 0)
                return CTL_EXIT_FAILURE;
        r = heal_pending_list(s, &list, &n);
        if (r < 0)
                return log_error_errno(r, "cannot list pending actions"), CTL_EXIT_FAILURE;
        r = corrupt_ids(s, &corrupt);
        if (r < 0)
                log_error_errno(r, "cannot check pending records");

        ret = expire ? pending_expire(s, list, n, json) : pending_print(list, n, corrupt, json);

        for (size_t i = 0; i < n; i++)
                heal_pending_done(&list[i]);
        free(list);
        return ret;
}

/* ---- healctl approve / cancel --------------------------------------------- */

static int explain_refusal(heal_state *s, const char *id, int r, uint64_t now) {
        _cleanup_(heal_pending_done) heal_pending p = {};

        switch (r) {
        case -ENOENT:
                log_error("no pending action %s (see healctl pending)", id);
                return CTL_EXIT_NOT_FOUND;
        case -EALREADY:
                if (heal_pending_load(s, id, &p) >= 0)
                        log_error("pending %s was already %s by %s", id,
                                  heal_pending_status_to_string(p.status),
                                  p.decided_by ? p.decided_by : "someone");
                else
                        log_error("pending %s was already decided", id);
                return CTL_EXIT_NOT_FOUND;
        case -ESTALE:
                if (heal_pending_load(s, id, &p) >= 0 && strcmp(pending_view_status(&p, now), "due") == 0)
                        log_error("pending %s: the cancel window is over, the action runs by itself", id);
                else
                        log_error("pending %s expired unapproved (healctl pending --expire removes it)", id);
                return CTL_EXIT_NOT_FOUND;
        case -EBADMSG:
                log_error("pending record %s is corrupt; not deciding on it", id);
                return CTL_EXIT_FAILURE;
        default:
                log_error_errno(r, "cannot decide pending %s", id);
                return CTL_EXIT_FAILURE;
        }
}

/* Start the helper again so it runs through the guard, which now finds the
 * approval; its verify is the helper's business, not ours. */
static int start_rerun(const heal_pending *p) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *result = NULL;
        int r;

        r = heal_bus_open(&bus);
        if (r < 0)
                return log_error_errno(
                        r, "approved, but cannot connect to systemd to start %s (run: systemctl start %s)",
                        p->rerun_unit, p->rerun_unit);
        r = heal_unit_job(bus, "StartUnit", p->rerun_unit, START_WAIT_USEC, &result);
        if (r == -ETIMEDOUT) {
                printf("started %s (still running)\n", p->rerun_unit);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "approved, but starting %s failed (run: systemctl start %s)",
                                       p->rerun_unit, p->rerun_unit);
        if (r == 0) {
                log_error("approved, but the start job of %s ended '%s' (see journalctl -u %s)",
                          p->rerun_unit, result ? result : "?", p->rerun_unit);
                return -EIO;
        }
        printf("started %s\n", p->rerun_unit);
        return 0;
}

static void decide_help(const char *verb) {
        if (strcmp(verb, "approve") == 0)
                printf("Usage: healctl approve [--no-start] [--json] ID\n\n"
                       "Approve the pending action ID (see healctl pending), audit it, and start\n"
                       "its helper unit so it runs through the guard again and acts.\n\n"
                       "  --no-start  only record the approval; the helper acts on its next run\n"
                       "  --json      print the decided record as JSON\n\n"
                       "Exit status 3 when ID is unknown, already decided or expired.\n");
        else
                printf("Usage: healctl cancel [--json] ID\n\n"
                       "Cancel the pending action ID (see healctl pending) and audit it. A delayed\n"
                       "action can be cancelled until its window ends.\n\n"
                       "  --json  print the decided record as JSON\n\n"
                       "Exit status 3 when ID is unknown, already decided or past its window.\n");
}

static int verb_decide(int argc, char *argv[], heal_pending_status status) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "no-start", no_argument, NULL, 'n' },
                {},
        };
        const char *verb = argv[0];
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_(heal_pending_done) heal_pending p = {};
        _cleanup_free_ char *who = NULL;
        bool json = false, no_start = false;
        uint64_t now;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        decide_help(verb);
                        return CTL_EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case 'n':
                        if (status != HEAL_PENDING_APPROVED)
                                return usage_error(verb, "--no-start goes with approve");
                        no_start = true;
                        break;
                default:
                        return usage_error(verb, "bad option");
                }
        if (optind + 1 != argc)
                return usage_error(verb, "expected exactly one ID");

        who = ctl_operator_name();
        if (!who)
                return log_error_errno(-ENOMEM, "out of memory"), CTL_EXIT_FAILURE;
        if (open_state(&s) < 0)
                return CTL_EXIT_FAILURE;

        now = heal_now_usec(CLOCK_REALTIME);
        r = heal_pending_decide(s, argv[optind], status, who, now, &p);
        if (r < 0)
                return explain_refusal(s, argv[optind], r, now);

        audit_decision(&p, status == HEAL_PENDING_APPROVED ? HEAL_EVENT_APPROVED : HEAL_EVENT_CANCELLED, who,
                       status == HEAL_PENDING_APPROVED ? "approved" : "cancelled");
        if (json) {
                _cleanup_json_ json_t *o = pending_view_json(&p, now);
                if (!o || json_print(o, stdout) < 0)
                        return CTL_EXIT_FAILURE;
        } else
                printf("%s %s: %s on %s: %s\n", status == HEAL_PENDING_APPROVED ? "approved" : "cancelled",
                       p.id, p.class, p.target, p.intent ? p.intent : "-");

        if (status != HEAL_PENDING_APPROVED || no_start)
                return CTL_EXIT_OK;
        if (!p.rerun_unit) {
                log_error(
                        "approved, but the record names no unit to re-run; the helper acts on its next run");
                return CTL_EXIT_FAILURE;
        }
        return start_rerun(&p) < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

int verb_approve(int argc, char *argv[]) {
        return verb_decide(argc, argv, HEAL_PENDING_APPROVED);
}

int verb_cancel(int argc, char *argv[]) {
        return verb_decide(argc, argv, HEAL_PENDING_CANCELLED);
}
