/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the parts of one disk-reclaim run share (internal to the helper). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "detect.h"
#include "disk-reclaim.h"
#include "heal/guard.h"
#include "heal/policy.h"
#include "heal/state.h"
#include "heal/time-util.h"
#include "plan.h"
#include "requests.h"
#include "sources.h"

#define DISK_RESTART_TIMEOUT_USEC (UINT64_C(90) * USEC_PER_SEC)

typedef struct disk_run {
        uint64_t now_usec;
        heal_state *state;    /* the guard's state: the state dir, or the fallback */
        heal_state *scratch;  /* heal_path_run_dir()/disk-reclaim: samples and the run lock */
        char *state_fallback; /* the fallback dir when the state dir cannot be opened, else NULL */
        sd_bus *bus;          /* NULL when the bus is unreachable: the guard then fails closed */
        heal_policy *policy;  /* NULL when invalid (policy_error says why) */
        char *policy_error;
        const heal_class_policy *pressure, *leaked;
        disk_settings settings;
        disk_requests requests;
        char *plans_dir;
        int lock_fd;
} disk_run;

/* Watchdog keep-alive (sd_notify WATCHDOG=1), in both callback shapes. */
int disk_ping(void *ud);
void disk_ping_void(void *ud);

/* "12.3 MiB" (caller frees), NULL on OOM. */
char *disk_format_bytes(uint64_t bytes);

/* "available 3.1 MiB of 60.0 MiB (5%), 120 of 16384 inodes free (0%)" (caller frees). */
char *disk_mount_summary(const disk_mount *m);

/* Fields every record of this run carries (state_fallback when used). */
int disk_run_facts(const disk_run *dr, json_t *facts);

/* The guard of this run (state, policy, bus), for heal_guard_run(). */
heal_guard disk_run_guard(const disk_run *dr);

/* The incident id of a pressure episode of @m that began at @first_usec, with
 * @salt telling apart the intents of one episode: 32 hex chars + NUL. */
void disk_incident_id(const disk_mount *m, uint64_t first_usec, const char *salt, char ret[static 33]);

/* decide.c: plan, guard, act and verify for a confirmed mount; the facts
 * (borrowed) are the detect + confirm facts. Returns 0 or -errno. */
int disk_reclaim_mount(disk_run *dr, disk_mount *m, json_t *facts, uint64_t first_usec);

/* leaks.c: deleted-but-open files on @m; units over the threshold go to the
 * guard as "restart UNIT" (class disk-leaked). Returns 0 or -errno. */
int disk_leaks_mount(disk_run *dr, const disk_mount *m, uint64_t first_usec);

/* act.c: the guard's callbacks for one reclaim pass. */
typedef struct disk_act_ctx {
        disk_run *dr;
        disk_mount *m;
        reclaim_plan *plan;
        const disk_source *const *plan_sources; /* the policy source of each plan source */
        json_t *facts;                          /* the action's facts: the outcome is added to them */
        const disk_source *journal;             /* the journal vacuum of this pass, or NULL */
        uint64_t journal_size;                  /* --vacuum-size */
        const char *plan_path;                  /* rewritten with each file's outcome */
        uint64_t settle_usec;

        /* filled by act */
        bool executed;
        reclaim_result result;
        uint64_t journal_freed;
        int journal_error;
        uint64_t free_before; /* f_bfree bytes right before act */
} disk_act_ctx;

int disk_act(void *userdata, char **ret_detail);
int disk_verify(void *userdata, char **ret_detail);
void disk_act_ctx_done(disk_act_ctx *c);

/* The plan (and, after act, its outcomes) as the plan file's JSON. */
int disk_plan_file_write(const disk_act_ctx *c, const char *mode, const char *tier, const char *incident);
