/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl status: one look at heal on this host. Everything is gathered into
 * one JSON document first (--json prints it), then rendered for people. */
#include <string.h>

#include "healctl.h"
#include "heal/breaker.h"
#include "heal/budget.h"
#include "heal/bus.h"
#include "heal/guard.h"
#include "heal/killswitch.h"
#include "heal/paths.h"
#include "heal/pending.h"
#include "heal/state.h"
#include "heal/strv.h"
#include "heal/time-util.h"
#include "journal.h"
#include "pending-view.h"

/* How far back the journal is searched for each target's last action. */
#define STATUS_JOURNAL_DAYS 30

static const char *const action_events[] = { "acting", "would-act", NULL };
static const char *const outcome_events[] = {
        "verified", "verify-failed", "action-failed", "would-act", "skipped", "escalated",
        "pending",  "approved",      "cancelled",     "expired",   NULL
};
/* What is read from the journal: both lists above. */
static const char *const journal_events[] = { "acting",        "would-act", "verified",  "verify-failed",
                                              "action-failed", "skipped",   "escalated", "pending",
                                              "approved",      "cancelled", "expired",   NULL };

typedef struct status_ctx {
        uint64_t now;
        heal_policy *policy;
        char *policy_error;
        int policy_r;
        heal_state *state;
        int state_r;
        audit_entry *entries;
        size_t n_entries;
        int journal_r;
        heal_pending *pending;
        size_t n_pending;
} status_ctx;

static void status_ctx_done(status_ctx *c) {
        heal_policy_free(c->policy);
        free(c->policy_error);
        heal_state_free(c->state);
        audit_entries_free(c->entries, c->n_entries);
        for (size_t i = 0; i < c->n_pending; i++)
                heal_pending_done(&c->pending[i]);
        free(c->pending);
}

/* ---- small sets of names --------------------------------------------------- */

/* Keys of @ns that start with @prefix, prefix removed, added to the set. */
static int add_keys_with_prefix(heal_state *s, const char *ns, const char *prefix, char ***l, size_t *n) {
        _cleanup_strv_free_ char **keys = NULL;
        size_t pl = strlen(prefix);
        int r;

        r = heal_state_list(s, ns, &keys);
        if (r < 0)
                return r;
        for (char **k = keys; *k; k++)
                if (strncmp(*k, prefix, pl) == 0 && (*k)[pl] && (r = heal_strv_add_unique(l, n, *k + pl)) < 0)
                        return r;
        return 0;
}

/* ---- gathering ------------------------------------------------------------- */

static json_t *tokens_json(heal_state *s, const char *ns, const char *key, const heal_budget_spec *spec,
                           uint64_t now) {
        heal_budget_req req = { .key = key, .spec = *spec };
        uint32_t left = 0;
        int r = heal_budget_peek(s, ns, &req, now, &left);

        if (r < 0)
                return json_pack("{s:n, s:i, s:s}", "left", "of", (int) spec->actions, "error",
                                 r == -EBADMSG ? "corrupt" : strerror(-r));
        return json_pack("{s:i, s:i}", "left", (int) left, "of", (int) spec->actions);
}

static json_t *breaker_json(heal_state *s, const char *key, const heal_class_policy *cls, uint64_t now) {
        heal_breaker_spec spec =
                cls ? cls->breaker : (heal_breaker_spec){ .failures = 3, .cooldown_s = 600 };
        heal_breaker_state st;
        uint32_t failures = 0;
        int r = heal_breaker_get(s, key, &spec, now, &st, &failures);

        if (r == -ENOENT)
                return json_pack("{s:s, s:i}", "state", "closed", "failures", 0);
        if (r < 0)
                return json_pack("{s:s, s:s}", "state", "unknown", "error",
                                 r == -EBADMSG ? "corrupt" : strerror(-r));
        return json_pack("{s:s, s:i}", "state", heal_breaker_state_to_string(st), "failures",
                         (int) failures);
}

static json_t *entry_brief(const status_ctx *c, long i) {
        const audit_entry *e;
        _cleanup_free_ char *time = NULL;

        if (i < 0)
                return json_null();
        e = &c->entries[i];
        time = format_timestamp(e->usec);
        if (!time)
                return NULL;
        return json_pack("{s:I, s:s, s:s?, s:s?, s:s?, s:s?}", "time_usec", (json_int_t) e->usec, "time",
                         time, "event", e->event, "intent", e->intent, "reason", e->reason, "message",
                         e->message);
}

static json_t *target_json(const status_ctx *c, const char *class, const heal_class_policy *cls,
                           const char *target, bool shadow) {
        _cleanup_free_ char *bkey = heal_guard_breaker_key(class, target),
                            *tkey = heal_guard_budget_key_target(class, target);
        _cleanup_free_ char *skey = NULL;
        _cleanup_json_ json_t *o = NULL, *pend = json_array();
        const char *budget_ns = shadow ? HEAL_GUARD_NS_SHADOW_BUDGET : HEAL_GUARD_NS_BUDGET;

        if (!bkey || !tkey || !pend || asprintf(&skey, "%s%s", HEAL_GUARD_SHADOW_PREFIX, bkey) < 0)
                return NULL;
        for (size_t i = 0; i < c->n_pending; i++) {
                const heal_pending *p = &c->pending[i];
                if (strcmp(p->class, class) == 0 && strcmp(p->target, target) == 0 &&
                    json_array_append_new(pend, json_string(p->id)) < 0)
                        return NULL;
        }

        o = json_pack("{s:s, s:o?, s:o?, s:o?, s:o?, s:O}", "target", target, "breaker",
                      c->state ? breaker_json(c->state, shadow ? skey : bkey, cls, c->now) : json_null(),
                      "tokens",
                      c->state && cls ? tokens_json(c->state, budget_ns, tkey, &cls->target_budget, c->now)
                                      : json_null(),
                      "last_action",
                      entry_brief(c, audit_last(c->entries, c->n_entries, class, target, action_events)),
                      "last_outcome",
                      entry_brief(c, audit_last(c->entries, c->n_entries, class, target, outcome_events)),
                      "pending", pend);
        return TAKE_PTR(o);
}

static int class_targets(const status_ctx *c, const char *class, bool shadow, char ***ret, size_t *ret_n) {
        _cleanup_free_ char *bprefix = NULL, *tprefix = NULL;
        char **l = NULL;
        size_t n = 0;
        int r = 0;

        if (asprintf(&bprefix, "%s%s/", shadow ? HEAL_GUARD_SHADOW_PREFIX : "", class) < 0 ||
            asprintf(&tprefix, "target/%s/", class) < 0)
                return -ENOMEM;
        if (c->state) {
                const char *budget_ns = shadow ? HEAL_GUARD_NS_SHADOW_BUDGET : HEAL_GUARD_NS_BUDGET;
                if ((r = add_keys_with_prefix(c->state, HEAL_BREAKER_NS, bprefix, &l, &n)) < 0 ||
                    (r = add_keys_with_prefix(c->state, budget_ns, tprefix, &l, &n)) < 0)
                        goto fail;
        }
        for (size_t i = 0; i < c->n_pending; i++)
                if (strcmp(c->pending[i].class, class) == 0 &&
                    (r = heal_strv_add_unique(&l, &n, c->pending[i].target)) < 0)
                        goto fail;
        for (size_t i = 0; i < c->n_entries; i++)
                if (c->entries[i].class && strcmp(c->entries[i].class, class) == 0 &&
                    (r = heal_strv_add_unique(&l, &n, c->entries[i].target)) < 0)
                        goto fail;
        *ret = l;
        *ret_n = n;
        return 0;
fail:
        strv_free(l);
        return r;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static json_t *class_json(const status_ctx *c, const char *class) {
        const heal_class_policy *cls = c->policy ? heal_policy_class(c->policy, class) : NULL;
        bool shadow = !cls || cls->mode == HEAL_MODE_SHADOW;
        _cleanup_strv_free_ char **targets = NULL;
        _cleanup_free_ char *ckey = heal_guard_budget_key_class(class);
        _cleanup_json_ json_t *arr = json_array(), *o = NULL;
        size_t n = 0;

        if (!ckey || !arr || class_targets(c, class, shadow, &targets, &n) < 0)
                return NULL;
        if (targets)
                qsort(targets, n, sizeof(char *), cmp_str);
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(arr, target_json(c, class, cls, targets[i], shadow)) < 0)
                        return NULL;

        o = json_pack("{s:s, s:b, s:s?, s:s?, s:o?, s:O}", "class", class, "in_policy", cls != NULL, "mode",
                      cls ? heal_mode_to_string(cls->mode) : NULL, "tier",
                      cls ? heal_tier_to_string(cls->tier) : NULL, "budget",
                      c->state && cls
                              ? tokens_json(c->state,
                                            shadow ? HEAL_GUARD_NS_SHADOW_BUDGET : HEAL_GUARD_NS_BUDGET,
                                            ckey, &cls->budget, c->now)
                              : json_null(),
                      "targets", arr);
        return TAKE_PTR(o);
}

static json_t *classes_json(const status_ctx *c) {
        _cleanup_json_ json_t *arr = json_array();
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0;

        if (!arr)
                return NULL;
        for (size_t i = 0; c->policy && i < c->policy->n_classes; i++)
                if (heal_strv_add_unique(&names, &n, c->policy->classes[i].name) < 0)
                        return NULL;
        /* Classes the policy no longer names may still have pending actions or history. */
        for (size_t i = 0; i < c->n_pending; i++)
                if (heal_strv_add_unique(&names, &n, c->pending[i].class) < 0)
                        return NULL;
        for (size_t i = 0; i < c->n_entries; i++)
                if (heal_strv_add_unique(&names, &n, c->entries[i].class) < 0)
                        return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(arr, class_json(c, names[i])) < 0)
                        return NULL;
        return TAKE_PTR(arr);
}

static json_t *heartbeats_json(const status_ctx *c) {
        _cleanup_json_ json_t *data = NULL, *arr = json_array();
        const char *healer;
        json_t *v;
        int r;

        if (!arr)
                return NULL;
        if (!c->state)
                return TAKE_PTR(arr);
        /* Kept by heal_metrics_heartbeat(): {"<healer>": <µs>, ...}. */
        r = heal_state_read(c->state, "metrics", "heartbeats", &data);
        if (r < 0)
                return TAKE_PTR(arr);
        json_object_foreach(data, healer, v) {
                _cleanup_free_ char *time = NULL, *age = NULL;
                json_int_t usec = json_integer_value(v);

                if (!json_is_integer(v) || usec <= 0)
                        continue;
                time = format_timestamp((uint64_t) usec);
                age = format_timespan(c->now > (uint64_t) usec ? c->now - (uint64_t) usec : 0);
                if (!time || !age ||
                    json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:s}", "healer", healer,
                                                         "time_usec", usec, "time", time, "age", age)) < 0)
                        return NULL;
        }
        return TAKE_PTR(arr);
}

static json_t *killswitch_json(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_strv_free_ char **masked = NULL;
        _cleanup_json_ json_t *arr = json_array();
        int r;

        if (!arr)
                return NULL;
        r = heal_bus_open(&bus);
        if (r >= 0)
                r = heal_killswitch_status(bus, &masked);
        if (r < 0)
                return json_pack("{s:s, s:s}", "state", "unavailable", "error", strerror(-r));
        for (char **m = masked; m && *m; m++)
                if (json_array_append_new(arr, json_string(*m)) < 0)
                        return NULL;
        return json_pack("{s:s, s:O}", "state", r > 0 ? "on" : "off", "masked", arr);
}

static json_t *status_json(const status_ctx *c, bool bus) {
        _cleanup_json_ json_t *pend = json_array(), *o = NULL;
        json_t *policy, *global;

        if (!pend)
                return NULL;
        for (size_t i = 0; i < c->n_pending; i++)
                if (json_array_append_new(pend, pending_view_json(&c->pending[i], c->now)) < 0)
                        return NULL;

        if (c->policy)
                policy = json_pack("{s:b, s:s, s:i}", "valid", 1, "digest", c->policy->digest, "classes",
                                   (int) c->policy->n_classes);
        else
                policy = json_pack("{s:b, s:s}", "valid", 0, "error",
                                   c->policy_error ? c->policy_error : strerror(-c->policy_r));
        global = c->state && c->policy ? tokens_json(c->state, HEAL_GUARD_NS_BUDGET, HEAL_BUDGET_KEY_GLOBAL,
                                                     &c->policy->global_budget, c->now)
                                       : json_null();

        o = json_pack("{s:o?, s:{s:s, s:s?}, s:{s:s, s:s?}, s:o?, s:o?, s:o?, s:O, s:o?}", "policy", policy,
                      "state", "dir", heal_path_state_dir(), "error",
                      c->state ? NULL : strerror(-c->state_r), "journal", "state",
                      c->journal_r < 0 ? "unavailable" : "ok", "error",
                      c->journal_r < 0 ? strerror(-c->journal_r) : NULL, "kill_switch",
                      bus ? killswitch_json() : json_null(), "global_budget", global, "classes",
                      classes_json(c), "pending", pend, "heartbeats", heartbeats_json(c));
        return TAKE_PTR(o);
}

/* ---- rendering for people ------------------------------------------------- */

static const char *js(const json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static char *tokens_text(const json_t *t) {
        char *s = NULL;

        if (!json_is_object(t))
                return strdup("-");
        if (js(t, "error"))
                return asprintf(&s, "? (%s)", js(t, "error")) < 0 ? NULL : s;
        return asprintf(&s, "%d/%d", (int) json_integer_value(json_object_get(t, "left")),
                        (int) json_integer_value(json_object_get(t, "of"))) < 0
                       ? NULL
                       : s;
}

static char *breaker_text(const json_t *b) {
        char *s = NULL;

        if (!json_is_object(b))
                return strdup("-");
        if (js(b, "error"))
                return asprintf(&s, "? (%s)", js(b, "error")) < 0 ? NULL : s;
        return asprintf(&s, "%s (%d failed)", js(b, "state"),
                        (int) json_integer_value(json_object_get(b, "failures"))) < 0
                       ? NULL
                       : s;
}

static char *entry_text(const json_t *e, bool with_time) {
        char *s = NULL;

        if (!json_is_object(e))
                return strdup("-");
        if (asprintf(&s, "%s%s%s%s%s%s", with_time ? js(e, "time") : "", with_time ? " " : "",
                     js(e, "event"), js(e, "reason") ? " (" : "", js(e, "reason") ? js(e, "reason") : "",
                     js(e, "reason") ? ")" : "") < 0)
                return NULL;
        return s;
}

static char *ids_text(const json_t *arr) {
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        FILE *f;
        size_t i;
        json_t *v;

        if (json_array_size(arr) == 0)
                return strdup("-");
        f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        json_array_foreach(arr, i, v) fprintf(f, "%s%s", i ? "," : "", json_string_value(v));
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(out);
}

static int render_class(const json_t *cl) {
        _cleanup_(table_freep) table *t = NULL;
        _cleanup_free_ char *budget = tokens_text(json_object_get(cl, "budget"));
        const json_t *targets = json_object_get(cl, "targets");
        size_t i;
        json_t *tg;

        if (!budget)
                return -ENOMEM;
        if (json_is_true(json_object_get(cl, "in_policy")))
                printf("\n%s: mode %s, tier %s, class budget %s\n", js(cl, "class"), js(cl, "mode"),
                       js(cl, "tier"), budget);
        else
                printf("\n%s: (not in the policy)\n", js(cl, "class"));
        if (json_array_size(targets) == 0) {
                printf("  no target seen yet\n");
                return 0;
        }

        t = table_new((const char *const[]){ "  TARGET", "BREAKER", "TOKENS", "LAST ACTION", "OUTCOME",
                                             "PENDING", NULL });
        if (!t)
                return -ENOMEM;
        json_array_foreach(targets, i, tg) {
                _cleanup_free_ char *name = NULL, *br = breaker_text(json_object_get(tg, "breaker"));
                _cleanup_free_ char *tok = tokens_text(json_object_get(tg, "tokens"));
                _cleanup_free_ char *act = entry_text(json_object_get(tg, "last_action"), true);
                _cleanup_free_ char *out = entry_text(json_object_get(tg, "last_outcome"), false);
                _cleanup_free_ char *ids = ids_text(json_object_get(tg, "pending"));

                if (asprintf(&name, "  %s", js(tg, "target")) < 0 || !br || !tok || !act || !out || !ids)
                        return -ENOMEM;
                if (table_add_rowv(t, name, br, tok, act, out, ids) < 0)
                        return -ENOMEM;
        }
        table_print(t, stdout);
        return 0;
}

static int render(const json_t *st) {
        const json_t *policy = json_object_get(st, "policy"), *ks = json_object_get(st, "kill_switch");
        const json_t *state = json_object_get(st, "state"), *journal = json_object_get(st, "journal");
        const json_t *hb = json_object_get(st, "heartbeats"), *classes = json_object_get(st, "classes");
        _cleanup_free_ char *global = tokens_text(json_object_get(st, "global_budget"));
        size_t i;
        json_t *v;
        int r;

        if (!global)
                return -ENOMEM;
        if (json_is_true(json_object_get(policy, "valid")))
                printf("policy:      valid, digest %s, %d classes\n", js(policy, "digest"),
                       (int) json_integer_value(json_object_get(policy, "classes")));
        else
                printf("policy:      INVALID: %s (helpers skip and escalate)\n", js(policy, "error"));
        if (json_is_object(ks))
                printf("kill switch: %s%s%s\n", js(ks, "state"), js(ks, "error") ? ": " : "",
                       js(ks, "error") ? js(ks, "error") : "");
        printf("state:       %s%s%s\n", js(state, "dir"), js(state, "error") ? ": unavailable: " : "",
               js(state, "error") ? js(state, "error") : "");
        if (js(journal, "error"))
                printf("journal:     unavailable: %s\n", js(journal, "error"));
        else
                printf("journal:     ok (last actions from the past %d days)\n", STATUS_JOURNAL_DAYS);
        printf("budget:      global %s tokens\n", global);

        json_array_foreach(classes, i, v) if ((r = render_class(v)) < 0) return r;

        printf("\npending:     %zu (healctl pending)\n", json_array_size(json_object_get(st, "pending")));
        if (json_array_size(hb) == 0)
                printf("heartbeats:  none recorded\n");
        else {
                printf("heartbeats:\n");
                json_array_foreach(hb, i, v)
                        printf("  %-24s %s (%s ago)\n", js(v, "healer"), js(v, "time"), js(v, "age"));
        }
        return 0;
}

/* ---- the verb -------------------------------------------------------------- */

static void status_help(void) {
        printf("Usage: healctl status [--json] [--directory DIR] [--no-bus]\n\n"
               "Per class and target: mode, tier, breaker, tokens left, last action and its\n"
               "outcome (from the journal, past %d days), pending approvals; the kill switch\n"
               "and the helpers' heartbeats.\n\n"
               "  --directory DIR  read the journal from this dir or file\n"
               "  --no-bus         do not ask systemd about the kill switch\n"
               "  --json           print JSON\n\n"
               "Exit status 4 when the policy is invalid, 1 when the state dir is unreadable\n"
               "(what can be shown is shown either way).\n",
               STATUS_JOURNAL_DAYS);
}

int verb_status(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "directory", required_argument, NULL, 'D' },
                { "no-bus", no_argument, NULL, 'n' },
                {},
        };
        _cleanup_(status_ctx_done) status_ctx c = {};
        _cleanup_json_ json_t *st = NULL;
        journal_query q = {};
        bool json = false, bus = true;
        int ch, r;

        optind = 0;
        while ((ch = getopt_long(argc, argv, "hD:", options, NULL)) >= 0)
                switch (ch) {
                case 'h':
                        status_help();
                        return CTL_EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case 'D':
                        q.directory = optarg;
                        break;
                case 'n':
                        bus = false;
                        break;
                default:
                        return usage_error("status", "bad option");
                }
        if (optind < argc)
                return usage_error("status", "unexpected argument '%s'", argv[optind]);

        c.now = heal_now_usec(CLOCK_REALTIME);
        c.policy_r = ctl_policy_load(&c.policy, &c.policy_error);
        c.state_r = heal_state_open(NULL, &c.state);
        if (c.state && (r = heal_pending_list(c.state, &c.pending, &c.n_pending)) < 0)
                log_error_errno(r, "cannot list pending actions");

        q.events = journal_events;
        q.since_usec = c.now - (uint64_t) STATUS_JOURNAL_DAYS * 86400 * USEC_PER_SEC;
        c.journal_r = journal_read(&q, &c.entries, &c.n_entries);

        st = status_json(&c, bus);
        if (!st)
                return log_error_errno(-ENOMEM, "out of memory"), CTL_EXIT_FAILURE;
        r = json ? json_print(st, stdout) : render(st);
        if (r < 0)
                return log_error_errno(r, "cannot print the status"), CTL_EXIT_FAILURE;

        if (c.policy_r < 0)
                return CTL_EXIT_POLICY;
        if (c.state_r < 0)
                return CTL_EXIT_FAILURE;
        return CTL_EXIT_OK;
}
