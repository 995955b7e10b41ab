/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl enroll|unenroll: add or remove the OnFailure= drop-in that hands a
 * failed unit to heal-worker-reviver, refusing what heal must never revive. */
#include <fnmatch.h>
#include <stdarg.h>
#include <string.h>

#include "healctl.h"
#include "enroll-check.h"
#include "heal/bus.h"
#include "heal/policy.h"

#define ENROLL_CLASS "worker-dead"

/* ---- which units may be enrolled (pure, unit-tested) ---------------------- */

/* heal's own units, the bus and systemd itself: reviving them from heal is a
 * loop or a fight with PID 1, whatever the policy says. */
static const char *const never_enroll[] = { "heal-*",       "heal.target",
                                            "dbus.service", "dbus-broker.service",
                                            "systemd-*",    NULL };

static const char *matching_glob(char *const *globs, const char *unit) {
        for (char *const *g = globs; g && *g; g++)
                if (fnmatch(*g, unit, 0) == 0)
                        return *g;
        return NULL;
}

char *enroll_unit_name(const char *arg) {
        char *s = NULL;

        /* Like systemctl: a bare name means a service. */
        if (!strchr(arg, '.'))
                return asprintf(&s, "%s.service", arg) < 0 ? NULL : s;
        return strdup(arg);
}

/* Returns 0 with the reason in *ret_why (refused), or -ENOMEM. */
static int refuse(char **ret_why, const char *fmt, ...) _printf_(2, 3);
static int refuse(char **ret_why, const char *fmt, ...) {
        va_list ap;
        char *why = NULL;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&why, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        *ret_why = why;
        return 0;
}

int enroll_check(const heal_class_policy *cls, const char *unit, char **ret_why) {
        const char *g;

        if (!heal_unit_name_is_valid(unit))
                return refuse(ret_why, "'%s' is not a valid unit name", unit);
        g = matching_glob((char *const *) never_enroll, unit);
        if (g)
                return refuse(ret_why,
                              "%s is never enrolled (matches %s: heal does not revive its own units, D-Bus "
                              "or systemd's)",
                              unit, g);
        if (!cls)
                return 1;
        g = matching_glob(cls->exclude, unit);
        if (g)
                return refuse(ret_why, "the policy excludes %s from %s (exclude: \"%s\")", unit, cls->name,
                              g);
        if (!heal_class_targets(cls, unit))
                return refuse(ret_why, "the policy does not target %s in %s (no glob of targets matches)",
                              unit, cls->name);
        return 1;
}

/* ---- the verbs ------------------------------------------------------------- */

static void enroll_help(bool enroll) {
        if (enroll)
                printf("Usage: healctl enroll [--runtime] [--no-reload] UNIT...\n"
                       "       healctl enroll --list\n\n"
                       "Add the drop-in " HEAL_REVIVER_DROPIN_NAME " to each UNIT, so that when it fails\n"
                       "OnFailure= starts heal-worker-reviver@UNIT.service; then reload systemd.\n"
                       "Units the policy's " ENROLL_CLASS " class excludes, and heal-*, dbus.service and\n"
                       "systemd-* always, are refused (exit 1; exit 4 when the policy is invalid).\n\n"
                       "  --runtime    under /run/systemd/system (gone at reboot), not /etc\n"
                       "  --no-reload  write the drop-in only; do not talk to systemd\n"
                       "  --list       print the enrolled units\n");
        else
                printf("Usage: healctl unenroll [--runtime] [--no-reload] UNIT...\n\n"
                       "Remove the drop-in " HEAL_REVIVER_DROPIN_NAME " from each UNIT and reload systemd.\n"
                       "Exit status 3 when none of them was enrolled.\n\n"
                       "  --runtime    the drop-in under /run/systemd/system, not /etc\n"
                       "  --no-reload  do not talk to systemd\n");
}

static int list_enrolled(void) {
        _cleanup_strv_free_ char **units = NULL;
        int r;

        r = heal_enrolled_list(&units);
        if (r < 0)
                return log_error_errno(r, "cannot list enrolled units"), CTL_EXIT_FAILURE;
        for (char **u = units; *u; u++)
                printf("%s\n", *u);
        return CTL_EXIT_OK;
}

static int enroll_one(sd_bus *bus, const heal_class_policy *cls, const char *arg, bool runtime, bool enroll,
                      bool *changed) {
        _cleanup_free_ char *unit = enroll_unit_name(arg), *why = NULL, *path = NULL;
        int r;

        if (!unit)
                return log_error_errno(-ENOMEM, "out of memory");
        if (enroll) {
                r = enroll_check(cls, unit, &why);
                if (r < 0)
                        return log_error_errno(r, "cannot check %s", unit);
                if (r == 0) {
                        log_error("refusing to enroll %s: %s", unit, why);
                        return -EPERM;
                }
                if (bus) {
                        _cleanup_free_ char *state = NULL;
                        if (heal_unit_file_state(bus, unit, &state) == -ENOENT)
                                log_warning("%s has no unit file (yet); enrolling anyway", unit);
                }
        } else if (!heal_unit_name_is_valid(unit)) {
                log_error("'%s' is not a valid unit name", unit);
                return -EINVAL;
        }

        (void) heal_enroll_dropin_path(unit, runtime, &path);
        r = enroll ? heal_unit_enroll(NULL, unit, runtime) : heal_unit_unenroll(NULL, unit, runtime);
        if (r < 0)
                return log_error_errno(r, "cannot %s %s (%s)", enroll ? "enroll" : "unenroll", unit,
                                       path ? path : "?");
        if (r > 0)
                *changed = true;
        if (enroll)
                printf("%s %s (%s)\n", r > 0 ? "enrolled" : "already enrolled", unit, path ? path : "?");
        else
                printf("%s %s\n", r > 0 ? "unenrolled" : "was not enrolled:", unit);
        return r;
}

static int verb_enroll_common(int argc, char *argv[], bool enroll) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "runtime", no_argument, NULL, 'r' },
                { "no-reload", no_argument, NULL, 'n' },
                { "list", no_argument, NULL, 'l' },
                {},
        };
        const char *verb = argv[0];
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(heal_policy_freep) heal_policy *policy = NULL;
        _cleanup_free_ char *perr = NULL;
        const heal_class_policy *cls = NULL;
        bool runtime = false, no_reload = false, list = false, changed = false, failed = false;
        size_t n_done = 0;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        enroll_help(enroll);
                        return CTL_EXIT_OK;
                case 'r':
                        runtime = true;
                        break;
                case 'n':
                        no_reload = true;
                        break;
                case 'l':
                        if (!enroll)
                                return usage_error(verb, "--list goes with enroll");
                        list = true;
                        break;
                default:
                        return usage_error(verb, "bad option");
                }
        if (list)
                return optind < argc ? usage_error(verb, "--list takes no units") : list_enrolled();
        if (optind >= argc)
                return usage_error(verb, "missing UNIT");

        if (enroll) {
                /* Fail closed: without a valid policy nobody can say what may be enrolled. */
                r = ctl_policy_load(&policy, &perr);
                if (r < 0) {
                        log_error("policy invalid, not enrolling: %s", perr ? perr : strerror(-r));
                        return CTL_EXIT_POLICY;
                }
                cls = heal_policy_class(policy, ENROLL_CLASS);
                if (!cls)
                        log_warning("the policy has no class %s: the reviver will not act on enrolled units",
                                    ENROLL_CLASS);
        }

        if (!no_reload) {
                r = heal_bus_open(&bus);
                if (r < 0)
                        return log_error_errno(
                                       r,
                                       "cannot connect to systemd (--no-reload writes the drop-ins only)"),
                               CTL_EXIT_FAILURE;
        }

        for (int i = optind; i < argc; i++) {
                r = enroll_one(bus, cls, argv[i], runtime, enroll, &changed);
                if (r < 0)
                        failed = true;
                else if (r > 0 || enroll)
                        n_done++;
        }

        /* One reload for all of them. */
        if (changed && bus) {
                r = heal_manager_reload(bus);
                if (r < 0) {
                        log_error_errno(r, "drop-ins written, but reloading systemd failed (run: systemctl "
                                           "daemon-reload)");
                        failed = true;
                }
        }
        if (failed)
                return CTL_EXIT_FAILURE;
        return n_done > 0 ? CTL_EXIT_OK : CTL_EXIT_NOT_FOUND;
}

int verb_enroll(int argc, char *argv[]) {
        return verb_enroll_common(argc, argv, true);
}

int verb_unenroll(int argc, char *argv[]) {
        return verb_enroll_common(argc, argv, false);
}
