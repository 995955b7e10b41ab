/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A heal unit failed: gather its state, its last journal lines and the policy
 * load result, and hand all of it to heal_escalate(). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "escalate-unit.h"
#include "heal/bus.h"
#include "heal/escalate.h"
#include "heal/journal-tail.h"
#include "heal/metrics.h"
#include "heal/policy.h"
#include "heal/time-util.h"

#define JOURNAL_LINES 20

static int set_str(json_t *o, const char *key, const char *value) {
        json_t *v = value ? heal_json_string_lossy(value, strlen(value)) : json_null();

        if (!v || json_object_set_new(o, key, v) < 0)
                return -ENOMEM;
        return 0;
}

static int set_int(json_t *o, const char *key, json_int_t value) {
        return json_object_set_new(o, key, json_integer(value)) < 0 ? -ENOMEM : 0;
}

static int info_to_facts(json_t *facts, const heal_unit_info *i) {
        if (set_str(facts, "active_state", i->active_state) < 0 || set_str(facts, "sub_state", i->sub_state) < 0 ||
            set_str(facts, "result", i->result) < 0 || set_str(facts, "unit_file_state", i->unit_file_state) < 0 ||
            set_str(facts, "invocation_id", i->invocation_id[0] ? i->invocation_id : NULL) < 0 ||
            set_int(facts, "n_restarts", i->n_restarts) < 0 ||
            set_int(facts, "exec_main_code", i->exec_main_code) < 0 ||
            set_int(facts, "exec_main_status", i->exec_main_status) < 0)
                return -ENOMEM;
        return 0;
}

json_t *escalate_unit_facts(const char *unit) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_json_ json_t *facts = json_object();
        heal_unit_info info = {};
        int r;

        if (!facts || set_str(facts, "unit", unit) < 0)
                return NULL;

        r = heal_bus_open(&bus);
        if (r >= 0)
                r = heal_unit_get_info(bus, unit, &info);
        if (r < 0) {
                /* Without D-Bus the escalation still goes out; the gap is itself a fact. */
                _cleanup_free_ char *error = NULL;
                if (asprintf(&error, "could not ask systemd over D-Bus: %s", strerror(-r)) < 0 ||
                    set_str(facts, "unit_info_error", error) < 0)
                        return NULL;
                return TAKE_PTR(facts);
        }

        r = info_to_facts(facts, &info);
        heal_unit_info_done(&info);
        return r < 0 ? NULL : TAKE_PTR(facts);
}

static json_t *escalate_context(const char *unit, const char *policy_error) {
        _cleanup_json_ json_t *context = json_object();
        json_t *lines = NULL;
        int r;

        if (!context)
                return NULL;

        r = heal_journal_tail(unit, JOURNAL_LINES, &lines);
        if (r >= 0) {
                if (json_object_set_new(context, "journal", lines) < 0)
                        return NULL;
        } else if (set_str(context, "journal_error", strerror(-r)) < 0)
                return NULL;

        if (policy_error && set_str(context, "policy_error", policy_error) < 0)
                return NULL;
        return TAKE_PTR(context);
}

/* Best effort: metrics must never keep the escalation from going out, and
 * the state dir may well be what broke the heal unit. */
static void count_metrics(void) {
        _cleanup_(heal_state_freep) heal_state *state = NULL;

        if (heal_state_open(NULL, &state) < 0)
                return;
        (void) heal_metrics_count(state, "heal-self", HEAL_EVENT_ESCALATED);
        (void) heal_metrics_heartbeat(state, "escalate", heal_now_usec(CLOCK_REALTIME));
        (void) heal_metrics_write(state, NULL);
}

int run(const char *unit) {
        _cleanup_(heal_policy_freep) heal_policy *policy = NULL;
        _cleanup_free_ char *policy_error = NULL, *why = NULL;
        _cleanup_json_ json_t *facts = NULL, *context = NULL;
        char incident[33];
        int r;

        r = heal_policy_load(NULL, &policy, &policy_error);
        if (r < 0 && !policy_error && asprintf(&policy_error, "policy could not be loaded: %s", strerror(-r)) < 0)
                return -ENOMEM;

        facts = escalate_unit_facts(unit);
        context = escalate_context(unit, policy_error);
        if (!facts || !context)
                return -ENOMEM;

        r = heal_incident_id_new(incident);
        if (r < 0)
                return r;
        if (asprintf(&why, "heal unit %s failed", unit) < 0)
                return -ENOMEM;

        heal_incident inc = {
                .healer = "escalate",
                .class = "heal-self",
                .target = unit,
                .incident = incident,
                .owner = "human",
                .facts = facts,
        };
        r = heal_escalate(policy, &inc, why, context);
        count_metrics();
        return r;
}
