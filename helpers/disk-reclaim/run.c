/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* run(): set up (state with its full-disk fallback, policy, requests), then
 * for each watched filesystem detect and confirm pressure, and hand a
 * confirmed one to decide (reclaim) and to the leak scan. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "confirm.h"
#include "heal/audit.h"
#include "heal/bus.h"
#include "heal/cleanup.h"
#include "heal/escalate.h"
#include "heal/hash.h"
#include "heal/paths.h"
#include "run.h"

/* ---- small shared helpers ----------------------------------------------- */

int disk_ping(void *ud) {
        (void)sd_notify(0, "WATCHDOG=1");
        return 0;
}

void disk_ping_void(void *ud) {
        (void)disk_ping(ud);
}

char *disk_format_bytes(uint64_t bytes) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = (double)bytes;
        size_t u = 0;
        char *s = NULL;

        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        if ((u == 0 ? asprintf(&s, "%" PRIu64 " B", bytes) : asprintf(&s, "%.1f %s", v, units[u])) < 0)
                return NULL;
        return s;
}

char *disk_mount_summary(const disk_mount *m) {
        _cleanup_free_ char *avail = disk_format_bytes(m->avail_bytes),
                            *size = disk_format_bytes(m->size_bytes);
        char *s = NULL;

        if (!avail || !size)
                return NULL;
        if (m->statvfs_error) {
                if (asprintf(&s, "%s: statvfs failed: %s", m->target, strerror(m->statvfs_error)) < 0)
                        return NULL;
                return s;
        }
        if (asprintf(&s, "available %s of %s (%u%%), %" PRIu64 " of %" PRIu64 " inodes free (%u%%)", avail,
                     size, disk_percent(m->avail_bytes, m->size_bytes), m->free_files, m->files,
                     m->files ? disk_percent(m->free_files, m->files) : 100) < 0)
                return NULL;
        return s;
}

int disk_run_facts(const disk_run *dr, json_t *facts) {
        if (dr->state_fallback &&
            json_object_set_new(facts, "state_fallback", json_string(dr->state_fallback)) < 0)
                return -ENOMEM;
        return 0;
}

heal_guard disk_run_guard(const disk_run *dr) {
        return (heal_guard){
                .state = dr->state,
                .policy = dr->policy,
                .policy_error = dr->policy_error,
                .bus = dr->bus,
                .helper_unit = DISK_UNIT,
        };
}

void disk_incident_id(const disk_mount *m, uint64_t first_usec, const char *salt, char ret[static 33]) {
        _cleanup_free_ char *key = NULL;
        char dev[32];

        /* Two hashes of the same key, one with a leading '#': 32 hex chars like the guard's ids. */
        if (asprintf(&key, "#%s|%" PRIu64 "|%s|%" PRIu64 "|%s", m->target, m->mnt_id,
                     disk_dev_string(m->dev, dev), first_usec, salt ?: "") < 0) {
                snprintf(ret, 33, "%032" PRIx64, first_usec);
                return;
        }
        heal_fnv1a64_hex(key + 1, strlen(key + 1), ret);
        heal_fnv1a64_hex(key, strlen(key), ret + 16);
}

static char *path_join(const char *a, const char *b) {
        char *p = NULL;

        return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

/* ---- setup -------------------------------------------------------------- */

static void disk_run_done(disk_run *dr) {
        heal_state_free(dr->state);
        heal_state_free(dr->scratch);
        free(dr->state_fallback);
        sd_bus_unref(dr->bus);
        heal_policy_free(dr->policy);
        free(dr->policy_error);
        disk_settings_done(&dr->settings);
        disk_requests_done(&dr->requests);
        free(dr->plans_dir);
        if (dr->lock_fd >= 0)
                close(dr->lock_fd);
}

static int open_subdir_state(const char *sub, heal_state **ret, char **ret_path) {
        _cleanup_free_ char *path = path_join(heal_path_run_dir(), sub);
        int r;

        if (!path)
                return -ENOMEM;
        if (mkdir(heal_path_run_dir(), 0755) < 0 && errno != EEXIST)
                return -errno;
        r = heal_state_open(path, ret);
        if (r < 0)
                return r;
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

/* A full disk is disk-reclaim's normal working condition: libheal's state
 * keeps a reserve for it (heal_state_open()), and the guard's audit says when
 * a run lived on it, so budgets, breakers and claims stay the real ones. Only
 * a state dir that cannot be opened at all moves state to tmpfs for this run
 * (budgets and breakers start over there, which the audit says). */
static int open_state(disk_run *dr) {
        if (heal_state_open(NULL, &dr->state) >= 0)
                return 0;
        return open_subdir_state(DISK_STATE_FALLBACK_SUBDIR, &dr->state, &dr->state_fallback);
}

static int load_policy(disk_run *dr) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = heal_policy_load(NULL, &dr->policy, &dr->policy_error);
        if (r < 0) {
                dr->policy = NULL;
                if (!dr->policy_error &&
                    asprintf(&dr->policy_error, "cannot load the policy: %s", strerror(-r)) < 0) {
                        dr->policy_error = NULL;
                        return -ENOMEM;
                }
                return 0;
        }
        dr->pressure = heal_policy_class(dr->policy, DISK_PRESSURE_CLASS);
        dr->leaked = heal_policy_class(dr->policy, DISK_LEAKED_CLASS);
        r = disk_settings_from_policy(dr->pressure, dr->leaked, &dr->settings, &err);
        if (r == -EINVAL) {
                /* Not usable for disk-reclaim: treated like an invalid policy, fail closed. */
                if (asprintf(&dr->policy_error, "class %s: %s", DISK_PRESSURE_CLASS, err) < 0)
                        dr->policy_error = NULL;
                dr->policy = heal_policy_free(dr->policy);
                dr->pressure = dr->leaked = NULL;
                return dr->policy_error ? 0 : -ENOMEM;
        }
        return r;
}

static int setup(disk_run *dr) {
        _cleanup_free_ char *req = NULL;
        int r;

        dr->lock_fd = -EBADF;
        dr->now_usec = heal_now_usec(CLOCK_REALTIME);
        r = open_subdir_state(DISK_SCRATCH_SUBDIR, &dr->scratch, NULL);
        if (r < 0)
                return r;
        /* One run at a time (timer, path unit and a manual run may meet). */
        r = heal_state_lock_timeout(dr->scratch, "run", DISK_HEALER, 0, &dr->lock_fd);
        if (r < 0)
                return r == -ETIMEDOUT || r == -EWOULDBLOCK ? -EBUSY : r;
        r = open_state(dr);
        if (r < 0)
                return r;
        /* Without the bus the guard cannot read the kill switch and fails closed: audited there. */
        if (heal_bus_open(&dr->bus) < 0)
                dr->bus = NULL;
        r = load_policy(dr);
        if (r < 0)
                return r;
        dr->plans_dir = path_join(heal_path_run_dir(), DISK_PLANS_SUBDIR);
        req = path_join(heal_path_run_dir(), DISK_REQUESTS_SUBDIR);
        if (!dr->plans_dir || !req)
                return -ENOMEM;
        r = disk_requests_read(req, &dr->requests);
        return r < 0 ? r : 0;
}

/* ---- one mount: detect, confirm ----------------------------------------- */

static void incident_of(const disk_run *dr, const disk_mount *m, json_t *facts, heal_incident *ret) {
        *ret = (heal_incident){
                .healer = DISK_HEALER,
                .class = DISK_PRESSURE_CLASS,
                .target = m->target,
                .tier = dr->pressure ? heal_tier_to_string(dr->pressure->tier) : NULL,
                .mode = dr->pressure ? heal_mode_to_string(dr->pressure->mode) : NULL,
                .rollback = "irreversible: deleted files cannot be restored",
                .owner = "heal",
                .policy_digest = dr->policy ? dr->policy->digest : NULL,
                .facts = facts,
        };
}

static int handle_mount(disk_run *dr, disk_mount *m, bool requested) {
        const disk_thresholds *t = &dr->settings.thresholds;
        _cleanup_json_ json_t *facts = NULL;
        _cleanup_free_ char *summary = NULL;
        bool pressure, p_bytes = false, p_inodes = false;
        uint64_t dwell = (uint64_t)(dr->pressure ? dr->pressure->dwell_s : 0) * USEC_PER_SEC;
        disk_verdict verdict;
        heal_incident inc;
        char id[33];
        uint64_t first;
        int r;

        pressure = disk_mount_pressure(m, t, &p_bytes, &p_inodes);
        facts = disk_mount_facts(m, t);
        summary = disk_mount_summary(m);
        if (!facts || !summary || disk_run_facts(dr, facts) < 0 ||
            json_object_set_new(facts, "before", json_string(summary)) < 0 ||
            json_object_set_new(facts, "requested", json_boolean(requested)) < 0)
                return -ENOMEM;

        r = disk_confirm(dr->scratch, m, pressure, dwell, requested, dr->now_usec, facts, &verdict);
        if (r < 0)
                return r;
        if (verdict == DISK_VERDICT_NONE)
                return 0;
        first = (uint64_t)json_integer_value(json_object_get(facts, "first_sample_usec"));
        disk_incident_id(m, first ?: dr->now_usec, NULL, id);
        incident_of(dr, m, facts, &inc);
        inc.incident = id;

        if (verdict == DISK_VERDICT_DISMISSED) {
                (void)heal_audit(&inc, HEAL_EVENT_DISMISSED,
                                 &(heal_audit_step){.reason = "pressure-gone", .after = summary},
                                 "%s is no longer under pressure (%s).", m->target, summary);
                return 0;
        }
        if (json_object_set_new(facts, "pressure",
                                json_pack("{s:b, s:b}", "bytes", p_bytes, "inodes", p_inodes)) < 0)
                return -ENOMEM;
        (void)heal_audit(&inc, HEAL_EVENT_DETECTED, &(heal_audit_step){.before = summary},
                         "%s is under %s pressure: %s (threshold %u%% space, %u%% inodes)%s.", m->target,
                         p_bytes && p_inodes ? "space and inode"
                         : p_bytes           ? "space"
                                             : "inode",
                         summary, t->min_free_percent, t->min_free_inodes_percent,
                         verdict == DISK_VERDICT_CONFIRMED ? "" : "; confirming after the dwell time");
        if (verdict != DISK_VERDICT_CONFIRMED)
                return 0;
        (void)heal_audit(&inc, HEAL_EVENT_CONFIRMED, &(heal_audit_step){.before = summary},
                         "%s is still under pressure (confirmed by %s): %s.", m->target,
                         json_string_value(json_object_get(facts, "confirmed_by")) ?: "dwell", summary);

        r = disk_reclaim_mount(dr, m, facts, first);
        if (r < 0)
                return r;
        return disk_leaks_mount(dr, m, first);
}

/* ---- the run ------------------------------------------------------------ */

/* An unusable policy is not a crash: audit it, page a human, touch nothing. */
static int policy_refused(disk_run *dr) {
        _cleanup_json_ json_t *facts = json_pack("{s:s}", "error", dr->policy_error);
        heal_incident inc = {
                .healer = DISK_HEALER,
                .class = DISK_PRESSURE_CLASS,
                .target = "policy",
                .owner = "human",
                .facts = facts,
        };

        if (!facts || disk_run_facts(dr, facts) < 0)
                return -ENOMEM;
        (void)heal_audit(&inc, HEAL_EVENT_SKIPPED, &(heal_audit_step){.reason = "policy-invalid"},
                         "disk-reclaim does nothing: the policy is invalid: %s", dr->policy_error);
        (void)heal_escalate(NULL, &inc, dr->policy_error, NULL);
        return 0;
}

static int watch_mounts(disk_run *dr, const disk_options *o) {
        _cleanup_(disk_mounts_done) disk_mounts l = {};
        disk_filter f = {
                .mounts = dr->settings.mounts,
                .include_removable = dr->settings.include_removable,
                .include_loop = dr->settings.include_loop,
                .only = o->mount,
        };
        int r, ret = 0;

        r = disk_mounts_read(NULL, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                disk_mount *m = &l.items[i];
                bool requested = dr->requests.n_files > 0 && disk_requests_cover(&dr->requests, m->target);

                /* A request for some mounts narrows this run to them. */
                if (dr->requests.n_mounts > 0 && !dr->requests.all && !requested && !o->mount)
                        continue;
                if (!disk_mount_selected(m, &f, NULL))
                        continue;
                (void)disk_mount_measure(m);
                /* The device facts come with measuring: judge removable and loop again. */
                if (!disk_mount_selected(m, &f, NULL))
                        continue;
                if (m->statvfs_error) {
                        fprintf(stderr, "disk-reclaim: %s: statvfs: %s\n", m->target,
                                strerror(m->statvfs_error));
                        continue;
                }
                disk_ping(NULL);
                r = handle_mount(dr, m, requested || o->mount);
                if (r < 0 && ret == 0)
                        ret = r; /* the other mounts still get their turn */
        }
        return ret;
}

int run(const disk_options *o) {
        _cleanup_(disk_run_done) disk_run dr = {.lock_fd = -EBADF};
        int r;

        r = setup(&dr);
        if (r == -EBUSY) {
                fprintf(stderr, "disk-reclaim: another run is in progress; leaving it to that one\n");
                return 0;
        }
        if (r < 0)
                return r;
        (void)sd_notifyf(0, "READY=1\nSTATUS=checking filesystems%s",
                         dr.state_fallback ? " (state on tmpfs)" : "");
        if (dr.state_fallback)
                fprintf(stderr,
                        "disk-reclaim: cannot open the state dir %s; state in %s for this run\n",
                        heal_path_state_dir(),
                        dr.state_fallback);

        if (!dr.policy)
                r = policy_refused(&dr);
        else if (!dr.pressure) {
                fprintf(stderr, "disk-reclaim: the policy defines no class %s; nothing to do\n",
                        DISK_PRESSURE_CLASS);
                r = 0;
        } else
                r = watch_mounts(&dr, o);

        /* Every request read was handled by this run (even a failed one: the
         * .path unit would otherwise start us again at once). */
        (void)disk_requests_consume(&dr.requests);
        (void)sd_notify(0, "STOPPING=1");
        return r;
}
