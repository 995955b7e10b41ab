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
