/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Escalation: tell a human, with the context they need to take over. */
#pragma once

#include <jansson.h>
#include "heal/audit.h"
#include "heal/policy.h"

/**
 * heal_escalate() - page a human about @inc.
 * @policy: for the escalation command and its timeout; may be NULL (an
 *   invalid policy is itself a reason to escalate): journal only then.
 * @why: one sentence ("breaker opened after 3 failed revivals").
 * @context: extra JSON (journal lines, actions tried); borrowed, may be NULL.
 *
 * Always writes an "escalated" audit record at priority crit carrying the
 * facts, @context and the journalctl command that shows the incident
 * (`journalctl HEAL_INCIDENT=<id>`). When the policy names a command, runs
 * it (/bin/sh -c) with the escalation as one JSON object on stdin, killed
 * after the policy's timeout; its failure is audited (action-failed, reason
 * "escalate-command"). Returns 0 when every configured channel succeeded;
 * else the command's error (-EIO for a non-zero exit, -ETIMEDOUT when it
 * was killed, -errno when it could not run), else the journal's -errno (the
 * record went to stderr then). The journal record is written regardless.
 */
int heal_escalate(const heal_policy *policy, const heal_incident *inc, const char *why,
                  json_t *context);

/* The escalation as it is handed to the command (new reference, NULL on OOM):
 * {"healer","class","target","incident","why","facts","context","intent",
 *  "journalctl","policy_digest","hostname","time_usec"}; absent values are null. */
json_t *heal_escalation_json(const heal_incident *inc, const char *why, json_t *context);
