/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Escalation: a crit journal record a human can start from, and the policy's
 * escalation command fed the same context as JSON. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "heal/escalate.h"
#include "heal/spawn.h"
#include "heal/time-util.h"

/* How much of a failed command's output goes into its audit record. */
#define OUTPUT_EXCERPT_MAX 2048
#define ESCALATE_TIMEOUT_DEFAULT_S 10

static char *journalctl_command(const heal_incident *inc) {
        char *cmd = NULL;

        if (!inc || !inc->incident)
                return NULL;
        if (asprintf(&cmd, "journalctl HEAL_INCIDENT=%s", inc->incident) < 0)
                return NULL;
        return cmd;
}

static int set_string(json_t *o, const char *key, const char *value) {
        json_t *v = value ? heal_json_string_lossy(value, strlen(value)) : json_null();

        if (!v)
                return -ENOMEM;
        return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

static int set_json(json_t *o, const char *key, json_t *value) {
        return json_object_set(o, key, value ? value : json_null()) < 0 ? -ENOMEM : 0;
}

json_t *heal_escalation_json(const heal_incident *inc, const char *why, json_t *context) {
        static const heal_incident no_incident = {};
        _cleanup_json_ json_t *o = NULL;
        _cleanup_free_ char *journalctl = NULL;
        struct utsname u;
        uint64_t now;

        if (!inc)
                inc = &no_incident;

        journalctl = journalctl_command(inc);
        if (inc->incident && !journalctl)
                return NULL;
        if (uname(&u) < 0)
                u.nodename[0] = '\0';
        now = heal_now_usec(CLOCK_REALTIME);

        o = json_object();
        if (!o)
                return NULL;
        if (set_string(o, "healer", inc->healer) < 0 || set_string(o, "class", inc->class) < 0 ||
            set_string(o, "target", inc->target) < 0 || set_string(o, "incident", inc->incident) < 0 ||
            set_string(o, "why", why) < 0 || set_json(o, "facts", inc->facts) < 0 ||
            set_json(o, "context", context) < 0 || set_string(o, "intent", inc->intent) < 0 ||
            set_string(o, "journalctl", journalctl) < 0 ||
            set_string(o, "policy_digest", inc->policy_digest) < 0 ||
            set_string(o, "hostname", u.nodename[0] ? u.nodename : NULL) < 0)
                return NULL;
        if (json_object_set_new(o, "time_usec", json_integer((json_int_t) now)) < 0)
                return NULL;

        return TAKE_PTR(o);
}

/* Facts of a failed escalation command: what ran, how it ended, the tail of its output. */
static json_t *command_facts(const char *command, int r, int status, const char *output) {
        _cleanup_json_ json_t *o = json_object();
        size_t len = output ? strlen(output) : 0;
        const char *excerpt = output ? output + (len > OUTPUT_EXCERPT_MAX ? len - OUTPUT_EXCERPT_MAX : 0) : NULL;

        if (!o)
                return NULL;
        if (set_string(o, "command", command) < 0 || set_string(o, "output", excerpt) < 0)
                return NULL;
        if (r == 0 && json_object_set_new(o, "status", json_integer(status)) < 0)
                return NULL;
        if (r < 0 && (set_string(o, "error", strerror(-r)) < 0 ||
                      json_object_set_new(o, "timed_out", json_boolean(r == -ETIMEDOUT)) < 0))
                return NULL;
        return TAKE_PTR(o);
}

static int run_command(const heal_policy *policy, const heal_incident *inc, json_t *escalation) {
        _cleanup_free_ char *input = NULL, *output = NULL;
        _cleanup_json_ json_t *facts = NULL;
        uint32_t timeout_s = policy->escalate_timeout_s ?: ESCALATE_TIMEOUT_DEFAULT_S;
        heal_incident failed = *inc;
        int r, status = 0;

        input = json_dumps(escalation, JSON_COMPACT);
        if (!input)
                return -ENOMEM;

        r = heal_spawn(policy->escalate_command, input, (uint64_t) timeout_s * USEC_PER_SEC, &output,
                       &status);
        if (r == 0 && status == 0)
                return 0;

        facts = command_facts(policy->escalate_command, r, status, output);
        failed.intent = "run the escalation command";
        failed.facts = facts;
        if (r == -ETIMEDOUT)
                heal_audit(&failed, HEAL_EVENT_ACTION_FAILED, &(heal_audit_step) { .reason = "escalate-command" },
                           "Escalation command was killed after %" PRIu32 " s; the escalation reached the journal only.",
                           timeout_s);
        else if (r < 0)
                heal_audit(&failed, HEAL_EVENT_ACTION_FAILED, &(heal_audit_step) { .reason = "escalate-command" },
                           "Escalation command could not be run: %s; the escalation reached the journal only.",
                           strerror(-r));
        else
                heal_audit(&failed, HEAL_EVENT_ACTION_FAILED, &(heal_audit_step) { .reason = "escalate-command" },
                           "Escalation command exited with status %d; the escalation may reach the journal only.",
                           status);

        return r < 0 ? r : -EIO;
}

int heal_escalate(const heal_policy *policy, const heal_incident *inc, const char *why,
                  json_t *context) {
        static const heal_incident no_incident = {};
        _cleanup_json_ json_t *escalation = NULL;
        _cleanup_free_ char *journalctl = NULL;
        heal_incident rec;
        int r_journal, r_command = 0;

        rec = inc ? *inc : no_incident;
        if (!rec.policy_digest && policy)
                rec.policy_digest = policy->digest;
        if (!why)
                why = "no reason given";

        journalctl = journalctl_command(&rec);
        escalation = heal_escalation_json(&rec, why, context);

        /* The journal record goes first and regardless: it is the channel that
         * needs nothing but this host. */
        r_journal = heal_audit(&rec, HEAL_EVENT_ESCALATED,
                               &(heal_audit_step) { .reason = why, .context = context },
                               "Escalated %s%s%s to a human: %s. See: %s", rec.class ?: "an incident",
                               rec.target ? " on " : "", rec.target ?: "", why,
                               journalctl ?: "journalctl HEAL_EVENT=escalated");

        if (policy && policy->escalate_command)
                r_command = escalation ? run_command(policy, &rec, escalation) : -ENOMEM;

        return r_command < 0 ? r_command : r_journal;
}
