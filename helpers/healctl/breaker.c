/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl breaker reset: a human closes a circuit breaker after fixing the cause. */
#include <inttypes.h>
#include <string.h>

#include "healctl.h"
#include "heal/audit.h"
#include "heal/breaker.h"
#include "heal/guard.h"
#include "heal/paths.h"
#include "heal/state.h"
#include "heal/time-util.h"

static void breaker_help(void) {
        printf("Usage: healctl breaker reset CLASS TARGET\n\n"
               "Close the circuit breaker of CLASS on TARGET (live and shadow records), so\n"
               "heal tries again; audited as breaker-closed with you as the owner.\n"
               "Exit status 3 when no breaker was ever recorded for them.\n");
}

/* "open, 3 failures" of one record, for the message; NULL when it cannot tell. */
static char *describe(heal_state *s, const char *key, const heal_class_policy *cls) {
        heal_breaker_spec spec =
                cls ? cls->breaker : (heal_breaker_spec){ .failures = 3, .cooldown_s = 600 };
        heal_breaker_state st;
        uint32_t failures = 0;
        char *out = NULL;

        if (heal_breaker_get(s, key, &spec, heal_now_usec(CLOCK_REALTIME), &st, &failures) < 0)
                return NULL;
        if (asprintf(&out, "%s, %" PRIu32 " failure%s", heal_breaker_state_to_string(st), failures,
                     failures == 1 ? "" : "s") < 0)
                return NULL;
        return out;
}

static int record_exists(heal_state *s, const char *key) {
        _cleanup_json_ json_t *data = NULL;
        int r = heal_state_read(s, HEAL_BREAKER_NS, key, &data);

        if (r == -ENOENT)
                return 0;
        /* A corrupt record exists too, and is exactly what a reset is for. */
        return r == -EBADMSG || r >= 0 ? 1 : r;
}

static int breaker_reset(const char *class, const char *target) {
        _cleanup_(heal_state_freep) heal_state *s = NULL;
        _cleanup_(heal_policy_freep) heal_policy *policy = NULL;
        _cleanup_free_ char *key = NULL, *shadow_key = NULL, *was = NULL, *who = NULL, *perr = NULL;
        const heal_class_policy *cls = NULL;
        int live, shadow, r;

        key = heal_guard_breaker_key(class, target);
        who = ctl_operator_name();
        if (!key || !who || asprintf(&shadow_key, "%s%s", HEAL_GUARD_SHADOW_PREFIX, key) < 0)
                return log_error_errno(-ENOMEM, "out of memory"), CTL_EXIT_FAILURE;

        r = heal_state_open(NULL, &s);
        if (r < 0)
                return log_error_errno(r, "cannot open the state dir %s", heal_path_state_dir()),
                       CTL_EXIT_FAILURE;

        /* The policy only sharpens the message; a reset must work when it is broken too. */
        if (ctl_policy_load(&policy, &perr) >= 0) {
                cls = heal_policy_class(policy, class);
                if (!cls)
                        log_warning("the policy has no class '%s'", class);
        }

        live = record_exists(s, key);
        shadow = record_exists(s, shadow_key);
        if (live < 0 || shadow < 0)
                return log_error_errno(live < 0 ? live : shadow, "cannot read the breaker of %s on %s",
                                       class, target),
                       CTL_EXIT_FAILURE;
        if (!live && !shadow) {
                log_error("no breaker recorded for %s on %s", class, target);
                return CTL_EXIT_NOT_FOUND;
        }

        if (live) {
                was = describe(s, key, cls);
                r = heal_breaker_reset(s, key);
                if (r < 0)
                        return log_error_errno(r, "cannot reset the breaker of %s on %s", class, target),
                               CTL_EXIT_FAILURE;
        }
        if (shadow) {
                r = heal_breaker_reset(s, shadow_key);
                if (r < 0)
                        return log_error_errno(r, "cannot reset the shadow breaker of %s on %s", class,
                                               target),
                               CTL_EXIT_FAILURE;
        }

        heal_incident inc = { .healer = "healctl",
                              .class = class,
                              .target = target,
                              .owner = who,
                              .mode = live ? "live" : "shadow" };
        heal_audit_step step = { .reason = "healctl", .before = was, .after = "closed" };
        (void) heal_audit(&inc, HEAL_EVENT_BREAKER_CLOSED, &step, "Breaker of %s on %s reset by %s%s%s%s.",
                          class, target, who, was ? " (was " : "", was ? was : "", was ? ")" : "");

        printf("breaker of %s on %s closed%s%s%s\n", class, target, was ? " (was " : "", was ? was : "",
               was ? ")" : "");
        return CTL_EXIT_OK;
}

int verb_breaker(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        breaker_help();
                        return CTL_EXIT_OK;
                default:
                        return usage_error("breaker", "bad option");
                }

        if (optind >= argc)
                return usage_error("breaker", "missing 'reset'");
        if (strcmp(argv[optind], "reset") != 0)
                return usage_error("breaker", "unknown sub-command '%s'", argv[optind]);
        if (argc - optind != 3)
                return usage_error("breaker", "expected: breaker reset CLASS TARGET");
        return breaker_reset(argv[optind + 1], argv[optind + 2]);
}
