/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* worker-reviver's parts: confirm a unit really failed, decide by policy,
 * revive it (act) and check it stays up (verify). run() ties them to the guard. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "heal/bus.h"
#include "heal/cleanup.h"
#include "heal/guard.h"
#include "heal/policy.h"

#define REVIVER_HEALER "worker-reviver"
#define REVIVER_CLASS "worker-dead"
#define REVIVER_JOURNAL_LINES 20U
#define REVIVER_JOB_TIMEOUT_USEC (90ULL * 1000000ULL)
#define REVIVER_VERIFY_TIMEOUT_USEC (30ULL * 1000000ULL)
/* Incidents one run handles at most (see run()). */
#define REVIVER_MAX_ROUNDS 16U

/* What systemd hands an OnFailure= unit about the unit that failed (borrowed
 * from the environment; any may be NULL when run by hand). */
typedef struct reviver_monitor {
        const char *unit;           /* MONITOR_UNIT */
        const char *service_result; /* MONITOR_SERVICE_RESULT */
        const char *exit_code;      /* MONITOR_EXIT_CODE: "exited", "killed", "dumped" */
        const char *exit_status;    /* MONITOR_EXIT_STATUS */
        const char *invocation_id;  /* MONITOR_INVOCATION_ID */
} reviver_monitor;

void reviver_monitor_from_env(reviver_monitor *ret);

/* confirm.c */

/**
 * reviver_confirm() - is @info the picture of a unit that needs reviving?
 * @ret_reason: when not, why (a static string).
 * Failed, no job queued, and the trigger (when there is one) names this unit.
 * Returns >0 confirmed, 0 dismissed.
 */
int reviver_confirm(const char *unit, const heal_unit_info *info, const reviver_monitor *m,
                    const char **ret_reason);

/* The incident id: the failed invocation (D-Bus first, then MONITOR_INVOCATION_ID); NULL when neither. */
const char *reviver_incident(const heal_unit_info *info, const reviver_monitor *m);

/* The facts of detect + confirm as JSON (new reference), NULL on OOM. */
json_t *reviver_facts(const char *unit, const heal_unit_info *info, const reviver_monitor *m);

/* decide.c */

typedef enum reviver_reaction {
        REVIVER_RESTART,
        REVIVER_HUMAN,
} reviver_reaction;

/**
 * reviver_decide() - the class's "on_result" reaction to @result.
 * @c: the worker-dead class; NULL gives the defaults.
 * @result: Service Result= ("exit-code", ...); NULL or unknown: the default.
 * Defaults: start-limit-hit and resources need a human (restarting cannot
 * help, systemd already gave up or the host lacks resources); the rest restart.
 * Returns 0 with *ret set, -EINVAL when the policy names an unknown reaction.
 */
int reviver_decide(const heal_class_policy *c, const char *result, reviver_reaction *ret);

/* The class's verify_command, or NULL. */
const char *reviver_verify_command(const heal_class_policy *c);

/* act.c / verify.c: the guard's callbacks; userdata is a reviver_ctx. */
typedef struct reviver_ctx {
        sd_bus *bus;
        const char *unit;
        uint64_t job_timeout_usec;
        uint64_t settle_usec;
        const char *verify_command;
        uint64_t verify_timeout_usec;
} reviver_ctx;

int reviver_act(void *userdata, char **ret_detail);
int reviver_verify(void *userdata, char **ret_detail);

/* reviver.c: detect, confirm, decide, hand to the guard.
 * @ret_outcome: what the guard did; HEAL_OUTCOME_SKIPPED when it was not
 * called (dismissed, not enrolled: audited here). Returns 0 or -errno. */
int run(const char *unit, heal_outcome *ret_outcome);
