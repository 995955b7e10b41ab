/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Act on a stuck unit: SIGABRT its main process through systemd (a core dump for the post-mortem), make
 * sure the unit comes back, and verify that the new process makes progress. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heal/bus.h"
#include "heal/cleanup.h"
#include "detector.h"
#include "util.h"

#define POLL_USEC (100ULL * 1000ULL)

_printf_(2, 3) static void detail(char **ret, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(ret, fmt, ap) < 0)
                *ret = NULL;
        va_end(ap);
}

/* Sleep a short while, keeping our own watchdog fed: act and verify may outlast WatchdogSec=/4. */
static void nap(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000ULL), .tv_nsec = (long) (usec % 1000000ULL) * 1000L };

        stuck_watchdog_ping();
        nanosleep(&ts, NULL);
}

/* What the unit looks like now: its main pid, whether it is active, whether a job is queued. */
typedef struct unit_now {
        uint32_t main_pid;
        bool active;
        bool down;    /* failed or inactive: nobody is running it */
        bool stopped; /* inactive, not failed: it ended cleanly, e.g. an operator stopped it */
        bool job;
} unit_now;

static int look(stuck_act_ctx *c, unit_now *ret) {
        _cleanup_free_ char *state = NULL;
        unit_now u = {};
        int r;

        r = stuck_unit_main_pid(c->bus, c->path, &u.main_pid);
        if (r < 0)
                return r;
        r = stuck_unit_active_state(c->bus, c->path, &state);
        if (r < 0)
                return r;
        r = stuck_unit_job_queued(c->bus, c->path, &u.job);
        if (r < 0)
                return r;
        u.active = strcmp(state, "active") == 0 || strcmp(state, "reloading") == 0;
        u.down = strcmp(state, "failed") == 0 || strcmp(state, "inactive") == 0;
        u.stopped = strcmp(state, "inactive") == 0;
        *ret = u;
        return 0;
}

/* Until the old main process is gone. Return: >0 gone, 0 still there at the deadline, <0 error. */
static int wait_gone(stuck_act_ctx *c) {
        uint64_t deadline = stuck_now_usec() + STUCK_EXIT_TIMEOUT_USEC;
        unit_now u;
        int r;

        for (;;) {
                r = look(c, &u);
                if (r < 0)
                        return r;
                if (u.main_pid != c->old_main_pid)
                        return 1;
                if (stuck_now_usec() >= deadline)
                        return 0;
                nap(POLL_USEC);
        }
}

/* Until the unit runs a new main process; when systemd does not bring it back by itself in time (no
 * Restart=, or a long RestartSec=), heal starts it. Return: >0 back (by us: 2), <0 error. */
static int wait_back(stuck_act_ctx *c, char **ret_how) {
        uint64_t deadline = stuck_now_usec() + STUCK_RESTART_TIMEOUT_USEC;
        _cleanup_free_ char *result = NULL;
        unit_now u;
        int r;

        for (;;) {
                r = look(c, &u);
                if (r < 0)
                        return r;
                if (u.active && u.main_pid != 0 && u.main_pid != c->old_main_pid) {
                        c->new_main_pid = u.main_pid;
                        return 1;
                }
                if ((u.down && !u.job) || stuck_now_usec() >= deadline)
                        break;
                nap(POLL_USEC);
        }
        /* SIGABRT leaves a unit failed (core-dump); inactive means it was stopped on purpose
         * meanwhile, and heal never starts what someone else just stopped. */
        if (u.stopped && !u.job) {
                detail(ret_how, "the unit was stopped (inactive, not failed) while heal waited: not starting it");
                return -ECANCELED;
        }

        /* Clears a failed state (and the start rate limit's count of this run) so the start is judged alone. */
        (void) heal_unit_reset_failed(c->bus, c->unit);
        r = heal_unit_job(c->bus, "StartUnit", c->unit, STUCK_JOB_TIMEOUT_USEC, &result);
        if (r < 0)
                return r;
        if (r == 0) {
                detail(ret_how, "start job %s", result);
                return -EIO;
        }
        r = look(c, &u);
        if (r < 0)
                return r;
        if (!u.active || u.main_pid == 0 || u.main_pid == c->old_main_pid) {
                detail(ret_how, "started, but it runs no new main process");
                return -EIO;
        }
        c->new_main_pid = u.main_pid;
        return 2;
}

int stuck_act_abort(void *userdata, char **ret_detail) {
        stuck_act_ctx *c = userdata;
        _cleanup_free_ char *how = NULL, *result = NULL;
        bool restarted_by_us = false;
        int r;

        r = stuck_unit_main_pid(c->bus, c->path, &c->old_main_pid);
        if (r < 0) {
                detail(ret_detail, "reading MainPID of %s: %s", c->unit, strerror(-r));
                return r;
        }
        if (c->old_main_pid == 0) {
                detail(ret_detail, "%s has no main process to signal", c->unit);
                return -ESRCH;
        }
        c->acted_mono_usec = stuck_now_usec();
        c->acted_real_usec = stuck_realtime_usec();
        r = heal_unit_kill(c->bus, c->unit, "main", SIGABRT);
        if (r < 0) {
                detail(ret_detail, "KillUnit(%s, main, SIGABRT): %s", c->unit, strerror(-r));
                return r;
        }

        r = wait_gone(c);
        if (r < 0) {
                detail(ret_detail, "watching PID %" PRIu32 " of %s go: %s", c->old_main_pid, c->unit, strerror(-r));
                return r;
        }
        if (r == 0) {
                /* It caught or blocked SIGABRT: the unit's own stop (SIGTERM, then SIGKILL) ends it. */
                r = heal_unit_job(c->bus, "RestartUnit", c->unit, STUCK_JOB_TIMEOUT_USEC, &result);
                if (r <= 0) {
                        detail(ret_detail, "PID %" PRIu32 " survived SIGABRT and the restart job of %s %s",
                               c->old_main_pid, c->unit, r < 0 ? strerror(-r) : result);
                        return r < 0 ? r : -EIO;
                }
                restarted_by_us = true;
        }

        r = wait_back(c, &how);
        if (r < 0) {
                detail(ret_detail, "SIGABRT sent to PID %" PRIu32 ", but %s did not come back: %s", c->old_main_pid,
                       c->unit, how ?: strerror(-r));
                return r;
        }
        detail(ret_detail, "SIGABRT sent to PID %" PRIu32 " of %s%s; back as PID %" PRIu32 " (%s)", c->old_main_pid,
               c->unit, restarted_by_us ? " (it survived it: restart job)" : "", c->new_main_pid,
               r == 2 ? "started by heal" : "brought back by systemd");
        return 0;
}

static int cgroup_now(stuck_act_ctx *c, stuck_cgroup_sample *ret) {
        _cleanup_(stuck_cgroup_path_done) stuck_cgroup_path cg = {};
        _cleanup_free_ char *group = NULL;
        int r;

        r = stuck_unit_control_group(c->bus, c->path, &group);
        if (r < 0)
                return r;
        r = stuck_cgroup_locate(group, &cg);
        if (r < 0)
                return r;
        return stuck_cgroup_read(&cg, ret);
}

static const char *progress_word(stuck_progress p) {
        return p == STUCK_PROGRESS_YES ? "made" : p == STUCK_PROGRESS_NONE ? "made no" : "cannot tell its";
}

int stuck_verify_progress(void *userdata, char **ret_detail) {
        stuck_act_ctx *c = userdata;
        stuck_cgroup_sample before = {}, after = {};
        uint64_t deadline = stuck_now_usec() + c->settle_usec;
        bool have_before;
        stuck_progress progress = STUCK_PROGRESS_UNKNOWN;
        stuck_heartbeat hb;
        unit_now u;
        int r;

        have_before = cgroup_now(c, &before) >= 0;
        while (stuck_now_usec() < deadline) {
                uint64_t left = deadline - stuck_now_usec();
                nap(left < 1000000ULL ? left : 1000000ULL);
        }

        r = look(c, &u);
        if (r < 0) {
                detail(ret_detail, "reading %s: %s", c->unit, strerror(-r));
                return r;
        }
        if (!u.active || u.main_pid != c->new_main_pid) {
                detail(ret_detail, "%s did not stay up: main PID %" PRIu32 " is now %" PRIu32 "%s", c->unit,
                       c->new_main_pid, u.main_pid, u.active ? "" : " (not active)");
                return 0;
        }
        if (have_before && cgroup_now(c, &after) >= 0) {
                progress = stuck_progress_cpu(&before, &after);
                if (progress != STUCK_PROGRESS_YES && stuck_progress_io(&before, &after) == STUCK_PROGRESS_YES)
                        progress = STUCK_PROGRESS_YES;
        }

        if (c->heartbeat && c->heartbeat->source != STUCK_HEARTBEAT_NONE) {
                /* The worker's own word that it works: touched by the new process and fresh. */
                uint64_t since = c->heartbeat->source == STUCK_HEARTBEAT_FILE ? c->acted_real_usec : c->acted_mono_usec;
                bool fresh;

                stuck_heartbeat_read(c->bus, c->path, c->heartbeat, &hb);
                if (!hb.known) {
                        detail(ret_detail, "PID %" PRIu32 " of %s: heartbeat unavailable (%s)", c->new_main_pid,
                               c->unit, strerror(-hb.error));
                        return 0;
                }
                fresh = hb.last_usec >= since && stuck_heartbeat_stale(&hb, c->heartbeat_stale_s) == 0;
                detail(ret_detail, "PID %" PRIu32 " of %s %s progress in %" PRIu64 " s; heartbeat %s (%.1f s old)",
                       c->new_main_pid, c->unit, progress_word(progress), (uint64_t) (c->settle_usec / 1000000ULL),
                       fresh ? "fresh again" : "not touched since the restart", (double) hb.age_usec / 1e6);
                return fresh;
        }

        detail(ret_detail, "PID %" PRIu32 " of %s %s progress (cpu/io) in %" PRIu64 " s", c->new_main_pid, c->unit,
               progress_word(progress), (uint64_t) (c->settle_usec / 1000000ULL));
        if (progress == STUCK_PROGRESS_UNKNOWN)
                return -ENODATA;
        return progress == STUCK_PROGRESS_YES;
}

int stuck_act_none(void *userdata, char **ret_detail) {
        detail(ret_detail, "heal takes no action on this class");
        return -EPERM;
}
