/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Metrics for Prometheus: a node-exporter textfile, rewritten atomically. */
#pragma once

#include <stdint.h>
#include "heal/audit.h"
#include "heal/state.h"

/**
 * heal_metrics_count() - add one to the counter of (class, event).
 * Counters live in the state dir (short-lived helpers keep no memory), under
 * a lock. Returns 0 or -errno.
 */
int heal_metrics_count(heal_state *s, const char *class, heal_event ev);

/* Record that @healer ran now (heal_helper_heartbeat_timestamp_seconds). */
int heal_metrics_heartbeat(heal_state *s, const char *healer, uint64_t now_usec);

/**
 * heal_metrics_write() - write heal.prom into @dir (NULL: heal_path_metrics_dir())
 * from the counters, heartbeats, and the breakers and budgets in @s:
 *   heal_events_total{class,event}, heal_breaker_open{class,target},
 *   heal_budget_tokens{bucket}, heal_helper_heartbeat_timestamp_seconds{healer}.
 * Atomic (temp + rename) so node-exporter never reads half a file.
 * Returns 0 or -errno (a missing @dir is -ENOENT; callers treat metrics as best effort).
 */
int heal_metrics_write(heal_state *s, const char *dir);
