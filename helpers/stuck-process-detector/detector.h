/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The helper around the core: unit properties over D-Bus, heartbeats, the act and verify callbacks,
 * capabilities, the watchdog ping, and run(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "decide.h"
#include "scan.h"

#define STUCK_HELPER_UNIT "heal-stuck-process-detector.service"
/* How long the SIGABRTed process may take to go (its core dump included) before a restart job replaces it. */
#define STUCK_EXIT_TIMEOUT_USEC (30ULL * 1000000ULL)
/* How long systemd's Restart= may take to bring the unit back before heal starts it itself. */
#define STUCK_RESTART_TIMEOUT_USEC (30ULL * 1000000ULL)
/* Start/restart jobs heal queues itself. */
#define STUCK_JOB_TIMEOUT_USEC (90ULL * 1000000ULL)

/* ---- units.c: the few properties the detector reads by object path (one call each) ---------------- */

/* Service.ControlGroup ("" when the unit runs nothing). Caller frees. Return: 0, -errno. */
int stuck_unit_control_group(sd_bus *bus, const char *path, char **ret);
/* Where systemd names each running unit's invocation: a symlink invocation:<unit> -> its id. */
#define STUCK_UNITS_RUN_DIR "/run/systemd/units"

/**
 * stuck_unit_invocation_id_at() - the unit's current invocation id, no bus call.
 * @dir_fd: STUCK_UNITS_RUN_DIR opened once for the run (a look-up per unit walks one name, not the path).
 * @ret: 32 lowercase hex digits (caller frees), written on success.
 *
 * Return: 0; -ENOENT when systemd exported none (not the system manager, not started); -EINVAL for a
 * unit name that cannot be a file name; -EBADMSG when the link does not hold an id; -errno.
 */
int stuck_unit_invocation_id_at(int dir_fd, const char *unit, char **ret);
/* Service.MainPID, Unit.ActiveState (caller frees), Unit.Job queued. Return: 0, -errno. */
int stuck_unit_main_pid(sd_bus *bus, const char *path, uint32_t *ret);
int stuck_unit_active_state(sd_bus *bus, const char *path, char **ret);
int stuck_unit_job_queued(sd_bus *bus, const char *path, bool *ret);
/* Service.WatchdogTimestampMonotonic (0: never pinged) and WatchdogUSec (0: no watchdog). Return: 0, -errno. */
int stuck_unit_watchdog(sd_bus *bus, const char *path, uint64_t *ret_last_mono_usec, uint64_t *ret_watchdog_usec);

/* ---- heartbeat.c --------------------------------------------------------------------------------- */

typedef struct stuck_heartbeat {
        stuck_heartbeat_source source;
        bool known;
        uint64_t last_usec; /* FILE: its mtime (CLOCK_REALTIME); WATCHDOG: the last ping (CLOCK_MONOTONIC) */
        uint64_t age_usec;
        int error;          /* when !known: why (-ENOENT no file yet, -ENODATA never pinged, ...) */
} stuck_heartbeat;

/**
 * stuck_heartbeat_read() - read @spec's heartbeat now.
 * @path: the unit's object path (WATCHDOG).
 * Never fails: an unreadable heartbeat is returned as unknown with its error, never as fresh or stale.
 */
void stuck_heartbeat_read(sd_bus *bus, const char *path, const stuck_heartbeat_spec *spec, stuck_heartbeat *ret);

/* 1 stale (older than @stale_s), 0 fresh, -1 unknown or none. */
int stuck_heartbeat_stale(const stuck_heartbeat *h, uint32_t stale_s);

/* The heartbeat as facts: {"source", "file", "age_s", "error"}. New reference, NULL on OOM. */
json_t *stuck_heartbeat_to_json(const stuck_heartbeat_spec *spec, const stuck_heartbeat *h);

uint64_t stuck_realtime_usec(void);

/* ---- act.c: the guard's callbacks for process-stuck ---------------------------------------------- */

typedef struct stuck_act_ctx {
        sd_bus *bus;
        const char *unit;
        const char *path;                      /* the unit's object path */
        const stuck_heartbeat_spec *heartbeat; /* source NONE: verify by cpu/io progress */
        uint32_t heartbeat_stale_s;
        uint64_t settle_usec;

        /* filled in by act, read by verify */
        uint32_t old_main_pid;
        uint32_t new_main_pid;
        uint64_t acted_mono_usec;
        uint64_t acted_real_usec;
} stuck_act_ctx;

/* SIGABRT the main process (KillUnit), then see the unit back with a new main process: systemd's Restart=,
 * else a start job. Return: 0 (detail says how it came back), <0 failed. */
int stuck_act_abort(void *userdata, char **ret_detail);

/* After the settle time: still active with the same new main process, and its heartbeat touched since the
 * restart and fresh (or, without a heartbeat, cpu/io progress over the settle time).
 * Return: >0 verified, 0 not, <0 could not tell. */
int stuck_verify_progress(void *userdata, char **ret_detail);

/* The act of the classes heal never acts on (their tier is human): refuses. */
int stuck_act_none(void *userdata, char **ret_detail);

/* ---- caps.c -------------------------------------------------------------------------------------- */

/**
 * stuck_caps_restrict() - keep only the capabilities the scan needs, in every set.
 *
 * CAP_SYS_PTRACE (ptrace access for /proc/PID/{io,wchan,sched} of other users' processes) and
 * CAP_DAC_READ_SEARCH (0400 /proc files and heartbeat files in other users' 0700 dirs); CAP_SYS_ADMIN
 * (/proc/PID/stack) only when the process already holds it, i.e. the unit's bounding set grants it.
 * Nothing else: the signal goes through systemd (KillUnit over D-Bus), so no CAP_KILL.
 * Return: 0; -EPERM when not even these could be kept (not root: the scan runs with what it has, returns
 * 0 then); -errno.
 */
int stuck_caps_restrict(void);

/* ---- run.c --------------------------------------------------------------------------------------- */

/* Ping systemd's watchdog when a quarter of WatchdogSec= has passed since the last ping (cheap: call it
 * often). Without a watchdog it does nothing. */
void stuck_watchdog_ping(void);

typedef struct stuck_run_stats {
        unsigned n_units;      /* scanned */
        unsigned n_descended;  /* whose processes were read */
        unsigned n_confirmed;  /* conditions handed to the guard */
        unsigned n_acted;      /* guard passes that acted (verified or not) */
        unsigned n_errors;     /* units that could not be scanned */
        int first_error;       /* the first of those errors */
} stuck_run_stats;

/* One scan of every targeted unit: detect, confirm, decide, guard. Return: 0, -errno (the run broke). */
int run(stuck_run_stats *ret_stats);
