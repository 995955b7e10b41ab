/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Metrics for Prometheus: a node-exporter textfile, rewritten atomically. */
#pragma once

#include <stdint.h>
#include "heal/audit.h"
#include "heal/state.h"

/**
 * heal_metrics_count() - add one to the counter of (class, event).
 * Counters live in the state dir (short-lived helpers keep no memory), under
 * a lock, written without a sync (HEAL_STATE_WRITE_NOSYNC): a power loss may
 * lose recent counts or reset them (a damaged record restarts from empty),
 * which Prometheus' rate() takes as a counter reset. Returns 0 or -errno.
 */
int heal_metrics_count(heal_state *s, const char *class, heal_event ev);

/* Record that @healer ran now (heal_helper_heartbeat_timestamp_seconds);
 * not synced either, like the counters. */
int heal_metrics_heartbeat(heal_state *s, const char *healer, uint64_t now_usec);

/**
 * heal_metrics_write() - write heal.prom into @dir (NULL: heal_path_metrics_dir())
 * from the counters, heartbeats, and the breakers and budgets in @s:
 *   heal_events_total{class,event}, heal_breaker_open{class,target},
 *   heal_budget_tokens{bucket}, heal_helper_heartbeat_timestamp_seconds{healer}.
 * Atomic (temp + rename) so node-exporter never reads half a file; not synced
 * (the next run rewrites it from the state dir). Each breaker and budget
 * record is read once (heal_state_foreach()).
 * Returns 0 or -errno (a missing @dir is -ENOENT; callers treat metrics as best effort).
 */
int heal_metrics_write(heal_state *s, const char *dir);
