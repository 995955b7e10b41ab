/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The few systemd D-Bus calls heal makes, written once. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* What heal needs to know about one unit (strings owned, see heal_unit_info_done()). */
typedef struct heal_unit_info {
        char *id;             /* "foo.service" */
        char *active_state;   /* "failed", "active", "activating", ... */
        char *sub_state;
        char *result;         /* Service.Result: "exit-code", "signal", "core-dump", ... */
        char *unit_file_state;/* "enabled", "masked", "masked-runtime", ... */
        char invocation_id[33]; /* hex, "" when none */
        uint32_t n_restarts;
        int32_t exec_main_code;   /* CLD_EXITED, CLD_KILLED, CLD_DUMPED */
        int32_t exec_main_status; /* exit status or signal */
        uint32_t main_pid;
        bool job_queued;      /* a start/stop/restart job is pending */
        char *control_group;
} heal_unit_info;

void heal_unit_info_done(heal_unit_info *i);

/* Connect to the system bus (or $HEAL_BUS_ADDRESS). Returns 0 or -errno. */
int heal_bus_open(sd_bus **ret);

/* Interfaces for the property readers below. */
#define HEAL_BUS_UNIT_IFACE "org.freedesktop.systemd1.Unit"
#define HEAL_BUS_SERVICE_IFACE "org.freedesktop.systemd1.Service"

/* One property of the unit at object @path (no LoadUnit: for callers that
 * already hold the path, e.g. from heal_units_list()). @ret of get_string is
 * the caller's to free; get_trivial writes the basic @type ('u', 't', 'b', ...)
 * into @ret. Return 0 or -errno. */
int heal_bus_get_string(sd_bus *bus, const char *path, const char *iface, const char *prop, char **ret);
int heal_bus_get_trivial(sd_bus *bus, const char *path, const char *iface, const char *prop, char type,
                         void *ret);
/* Whether a job is queued for the unit at @path. Returns 0 or -errno. */
int heal_unit_job_queued_at(sd_bus *bus, const char *path, bool *ret);

/* Load the unit's properties (loads the unit if needed). Returns 0 or -errno. */
int heal_unit_get_info(sd_bus *bus, const char *unit, heal_unit_info *ret);

/* UnitFileState is masked or masked-runtime. Returns >0 masked, 0 not, -errno. */
int heal_unit_is_masked(sd_bus *bus, const char *unit);

/* ResetFailed on the unit. Returns 0 or -errno. */
int heal_unit_reset_failed(sd_bus *bus, const char *unit);

/**
 * heal_unit_start() - queue a job ("StartUnit", "RestartUnit", "StopUnit")
 * with mode "replace" and wait for its JobRemoved signal.
 * @timeout_usec: how long to wait for the job.
 * @ret_result: the job result ("done", "failed", "timeout", ...), caller frees; may be NULL.
 * Returns >0 when the job's result is "done", 0 when it ended otherwise,
 * -ETIMEDOUT, or -errno.
 */
int heal_unit_job(sd_bus *bus, const char *method, const char *unit, uint64_t timeout_usec,
                  char **ret_result);

/* KillUnit(unit, whom "main"|"all", signal). Returns 0 or -errno. */
int heal_unit_kill(sd_bus *bus, const char *unit, const char *whom, int sig);

/**
 * heal_unit_watch_active() - watch (PropertiesChanged, not polling blindly)
 * that @unit stays active for @settle_usec.
 * Returns >0 when it stayed active the whole time, 0 when it left the
 * active state (ret_state tells which, caller frees; may be NULL), -errno.
 */
int heal_unit_watch_active(sd_bus *bus, const char *unit, uint64_t settle_usec, char **ret_state);

/* Reload the manager (after drop-in changes). Returns 0 or -errno. */
int heal_manager_reload(sd_bus *bus);

/* ---- additions for the reviver and healctl ------------------------------ */

/* The reviver helper's template and the drop-in that enrolls a unit. */
#define HEAL_REVIVER_TEMPLATE "heal-worker-reviver@.service"
#define HEAL_REVIVER_DROPIN_NAME "50-heal-reviver.conf"

/* A plausible unit name ("foo.service", "foo@bar.service"): no '/', known
 * characters, a type suffix. Used before a name becomes part of a path. */
bool heal_unit_name_is_valid(const char *unit);

/* "heal-worker-reviver@<unit>.service" (caller frees). Returns 0, -EINVAL, -ENOMEM. */
int heal_reviver_instance(const char *unit, char **ret);

/* The unit's OnFailure= dependencies (loads the unit if needed); a
 * NULL-terminated strv the caller frees. Returns 0 or -errno. */
int heal_unit_get_on_failure(sd_bus *bus, const char *unit, char ***ret);

/* OnFailure= of @unit names heal-worker-reviver@<unit>.service.
 * Returns >0 enrolled, 0 not, -errno. */
int heal_unit_is_enrolled(sd_bus *bus, const char *unit);

/**
 * heal_enroll_dropin_path() - where the enrolling drop-in of @unit lives:
 * <root>/etc/systemd/system/<unit>.d/50-heal-reviver.conf, or under
 * <root>/run/systemd/system with @runtime. <root> is $HEAL_SYSTEMD_ROOT
 * (tests), else "". Caller frees. Returns 0, -EINVAL, -ENOMEM.
 */
int heal_enroll_dropin_path(const char *unit, bool runtime, char **ret);

/* The drop-in's text: the installed template (HEAL_DATADIR/reviver-dropin.conf,
 * or $HEAL_REVIVER_DROPIN) when readable, else the built-in copy of it.
 * Caller frees. Returns 0 or -errno. */
int heal_enroll_dropin_text(char **ret);
/* The built-in copy (static string). */
const char *heal_enroll_dropin_builtin(void);

/**
 * heal_unit_enroll() - write the drop-in (atomically, 0644) and, when @bus
 * is not NULL, reload the manager so OnFailure= takes effect.
 * Returns >0 written, 0 when it was already there with the same text, -errno.
 */
int heal_unit_enroll(sd_bus *bus, const char *unit, bool runtime);

/* Remove the drop-in (and its then empty .d dir), reload when @bus is not NULL.
 * Returns >0 removed, 0 when there was none, -errno. */
int heal_unit_unenroll(sd_bus *bus, const char *unit, bool runtime);

/* Units with a drop-in under the persistent and the runtime dir (sorted,
 * duplicates once). Returns the count with a strv the caller frees, or -errno. */
int heal_enrolled_list(char ***ret);

/* Unit files whose names match @patterns (shell globs, NULL-terminated) per
 * ListUnitFilesByPatterns; @ret_names (basenames) and @ret_states (may be NULL)
 * are parallel strvs the caller frees. Returns the count or -errno. */
int heal_unit_files_list(sd_bus *bus, char *const *patterns, char ***ret_names,
                         char ***ret_states);

/* Manager.GetUnitFileState: "enabled", "static", "masked", ...; a unit with no
 * file gives -ENOENT. Caller frees. Returns 0 or -errno. */
int heal_unit_file_state(sd_bus *bus, const char *unit, char **ret);

/* MaskUnitFiles (force) / UnmaskUnitFiles for @units. No reload.
 * Returns the number of changes systemd reported, or -errno. */
int heal_unit_files_mask(sd_bus *bus, char *const *units, bool runtime);
int heal_unit_files_unmask(sd_bus *bus, char *const *units, bool runtime);

/* ---- addition for the stuck-process-detector ---------------------------- */

/* Loaded units in one of @states (e.g. "active"; NULL: any) whose names match
 * @patterns (shell globs, NULL-terminated; NULL: every unit), per
 * ListUnitsByPatterns; @ret_names and @ret_paths (their D-Bus object paths, may
 * be NULL) are parallel strvs the caller frees, in systemd's order.
 * Returns the count or -errno. */
int heal_units_list(sd_bus *bus, char *const *states, char *const *patterns, char ***ret_names,
                    char ***ret_paths);
