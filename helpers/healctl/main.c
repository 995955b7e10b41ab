/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl: the operator's CLI. Parses the verb and hands over to it. */
#include <string.h>

#include "config.h"
#include "healctl.h"
#include "run.h"

typedef struct verb {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *synopsis;
} verb;

static const verb verbs[] = {
        { "status", verb_status,
          "status [--json]                      classes, targets, breakers, budgets, pending, heartbeats" },
        { "audit", verb_audit,
          "audit [--class C] [--target T] [--event E] [--since S] [--json]\n"
          "                                            the audit trail, grouped by incident" },
        { "enroll", verb_enroll,
          "enroll [--runtime] UNIT...           revive UNIT when it fails (OnFailure= drop-in)" },
        { "unenroll", verb_unenroll, "unenroll [--runtime] UNIT...         remove the drop-in again" },
        { "pending", verb_pending,
          "pending [--expire] [--json]          actions waiting for a cancel window or an approval" },
        { "approve", verb_approve,
          "approve ID                           approve a pending action and re-run its helper" },
        { "cancel", verb_cancel, "cancel ID                            cancel a pending action" },
        { "breaker", verb_breaker, "breaker reset CLASS TARGET           close a circuit breaker" },
        { "kill-switch", verb_kill_switch,
          "kill-switch on|off|status            stop (mask) or resume every heal unit" },
        { "policy", verb_policy,
          "policy check [FILE...] | policy keys validate and print the effective policy" },
        { "shadow-report", verb_shadow_report,
          "shadow-report [--since S] [--json]   what shadow mode would have done, per day" },
        { "run", verb_run, "run disk-reclaim [--mount M]         ask a helper to run now (request file)" },
};

static void help(void) {
        printf("Usage: healctl [--help] [--version] COMMAND [ARGS...]\n\n"
               "Operate heal, the host's self-healing toolkit.\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %s\n", verbs[i].synopsis);
        printf("\nEvery command takes --help.\n\n"
               "Exit status:\n"
               "  0   success\n"
               "  1   failure\n"
               "  2   usage error\n"
               "  3   not found, or nothing to do (unknown id, already decided, expired,\n"
               "      no such breaker, nothing enrolled)\n"
               "  4   the policy is invalid\n"
               "  10  kill-switch status --quiet: the kill switch is on\n\n"
               "Environment:\n"
               "  HEAL_STATE_DIR     state dir (default /var/lib/heal)\n"
               "  HEAL_POLICY_DIRS   colon-separated policy drop-in dirs\n"
               "  HEAL_JOURNAL_DIR   read the audit trail from this journal dir or file\n"
               "  HEAL_BUS_ADDRESS   talk to this systemd bus instead of the system bus\n\n"
               "See healctl(8) and heal(7).\n");
}

int main(int argc, char *argv[]) {
        const char *name;

        if (argc < 2)
                return usage_error(NULL, "missing command");
        name = argv[1];
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
                help();
                return CTL_EXIT_OK;
        }
        if (strcmp(name, "--version") == 0) {
                printf("healctl %s\n", HEAL_VERSION);
                return CTL_EXIT_OK;
        }
        if (name[0] == '-')
                return usage_error(NULL, "unknown option '%s'", name);

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return verbs[i].run(argc - 1, argv + 1);

        return usage_error(NULL, "unknown command '%s'", name);
}
