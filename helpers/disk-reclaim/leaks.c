/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* disk-leaked: space held by deleted files that a process keeps open. The
 * holders are named in the audit; a unit holding more than the threshold is
 * proposed for a restart through the guard (default tier: approve). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heal/audit.h"
#include "heal/bus.h"
#include "heal/cleanup.h"
#include "heal/guard.h"
#include "leaked.h"
#include "run.h"

typedef struct leak_ctx {
        disk_run *dr;
        const disk_mount *m;
        const char *unit;
        uint64_t threshold;
        uint64_t settle_usec;
} leak_ctx;

static int leak_act(void *userdata, char **ret_detail) {
        leak_ctx *c = userdata;
        _cleanup_free_ char *result = NULL;
        int r;

        if (!c->dr->bus) {
                if (asprintf(ret_detail, "no connection to the system bus") < 0)
                        *ret_detail = NULL;
                return -ENOTCONN;
        }
        r = heal_unit_job(c->dr->bus, "RestartUnit", c->unit, DISK_RESTART_TIMEOUT_USEC, &result);
        if (r < 0) {
                if (asprintf(ret_detail, "restart %s: %s", c->unit, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (asprintf(ret_detail, "restart %s: job %s", c->unit, result ?: "?") < 0)
                *ret_detail = NULL;
        return r > 0 ? 0 : -EIO;
}

/* Bytes the unit still holds after the restart. */
static int unit_bytes(const disk_mount *m, const char *unit, uint64_t *ret) {
        _cleanup_(leak_report_done) leak_report rep = {};
        int r;

        r = leak_scan(NULL, m->dev, disk_ping_void, NULL, &rep);
        if (r < 0)
                return r;
        *ret = 0;
        for (size_t i = 0; i < rep.n_units; i++)
                if (strcmp(rep.units[i].unit, unit) == 0)
                        *ret = rep.units[i].bytes;
        return 0;
}

static int leak_verify(void *userdata, char **ret_detail) {
        leak_ctx *c = userdata;
        _cleanup_free_ char *held = NULL;
        struct timespec ts = {.tv_sec = (time_t)(c->settle_usec / USEC_PER_SEC)};
        uint64_t bytes = 0;
        int r;

        nanosleep(&ts, NULL);
        disk_ping(NULL);
        r = unit_bytes(c->m, c->unit, &bytes);
        if (r < 0) {
                if (asprintf(ret_detail, "cannot scan /proc: %s", strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        held = disk_format_bytes(bytes);
        if (asprintf(ret_detail, "%s now holds %s of deleted files on %s", c->unit, held ?: "?",
                     c->m->target) < 0)
                *ret_detail = NULL;
        return bytes < c->threshold;
}

static int propose_restart(disk_run *dr, const disk_mount *m, const leak_report *rep, const leak_unit *u,
                           uint64_t first_usec) {
        _cleanup_json_ json_t *facts = leak_unit_facts(rep, u);
        _cleanup_free_ char *held = disk_format_bytes(u->bytes), *intent = NULL, *before = NULL;
        char id[33];
        heal_outcome outcome;
        leak_ctx ctx = {
                .dr = dr,
                .m = m,
                .unit = u->unit,
                .threshold = dr->settings.leak_threshold_bytes,
                .settle_usec = (uint64_t)(dr->leaked ? dr->leaked->settle_s : 10) * USEC_PER_SEC,
        };

        if (!facts || !held || disk_run_facts(dr, facts) < 0)
                return -ENOMEM;
        if (asprintf(&intent, "restart %s to release %s of deleted files on %s", u->unit, held, m->target) <
                    0 ||
            asprintf(&before, "%s holds %s in %zu deleted files on %s", u->unit, held, u->n_files,
                     m->target) < 0)
                return -ENOMEM;
        if (json_object_set_new(facts, "mount", json_string(m->target)) < 0 ||
            json_object_set_new(facts, "threshold_bytes", json_integer((json_int_t)ctx.threshold)) < 0 ||
            json_object_set_new(facts, "before", json_string(before)) < 0)
                return -ENOMEM;
        disk_incident_id(m, first_usec, u->unit, id);

        heal_action a = {
                .healer = DISK_HEALER,
                .class = DISK_LEAKED_CLASS,
                .target = u->unit,
                .incident = id,
                .intent = intent,
                .rollback =
                        "none needed: the unit runs again after the restart; only the deleted files it held "
                        "are released",
                .facts = facts,
                .tier_override = -1,
                .rerun_unit = DISK_UNIT,
                .act = leak_act,
                .verify = leak_verify,
                .userdata = &ctx,
        };
        heal_guard g = disk_run_guard(dr);
        return heal_guard_run(&g, &a, &outcome);
}

int disk_leaks_mount(disk_run *dr, const disk_mount *m, uint64_t first_usec) {
        _cleanup_(leak_report_done) leak_report rep = {};
        _cleanup_json_ json_t *facts = NULL;
        _cleanup_free_ char *held = NULL;
        char id[33];
        int r;

        r = leak_scan(NULL, m->dev, disk_ping_void, NULL, &rep);
        if (r < 0) {
                fprintf(stderr, "disk-reclaim: cannot scan for deleted open files on %s: %s\n", m->target,
                        strerror(-r));
                return 0;
        }
        if (rep.n_holders == 0)
                return 0;

        held = disk_format_bytes(rep.bytes);
        facts = json_pack("{s:s, s:I, s:I, s:o}", "mount", m->target, "leaked_bytes", (json_int_t)rep.bytes,
                          "threshold_bytes", (json_int_t)dr->settings.leak_threshold_bytes, "holders",
                          leak_holders_facts(&rep));
        if (!facts || !held || disk_run_facts(dr, facts) < 0)
                return -ENOMEM;
        disk_incident_id(m, first_usec, "leaked", id);
        heal_incident inc = {
                .healer = DISK_HEALER,
                .class = DISK_LEAKED_CLASS,
                .target = m->target,
                .incident = id,
                .tier = dr->leaked ? heal_tier_to_string(dr->leaked->tier) : NULL,
                .mode = dr->leaked ? heal_mode_to_string(dr->leaked->mode) : NULL,
                .owner = "heal",
                .policy_digest = dr->policy->digest,
                .facts = facts,
        };
        (void)heal_audit(&inc, HEAL_EVENT_DETECTED, NULL,
                         "%zu processes hold %s of deleted files open on %s.", rep.n_holders, held,
                         m->target);

        for (size_t i = 0; i < rep.n_units; i++) {
                if (rep.units[i].bytes < dr->settings.leak_threshold_bytes)
                        continue;
                r = propose_restart(dr, m, &rep, &rep.units[i], first_usec);
                if (r < 0)
                        return r;
        }
        return 0;
}
