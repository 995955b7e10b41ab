/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Facts for the audit and escalations of each class. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "confirm.h"
#include "scan.h"

/* What every class reports about the unit: its cgroup counters ("unavailable" where unknown).
 * New reference, NULL on OOM. */
json_t *stuck_facts_base(const char *unit, const char *control_group, const stuck_unit_sample *s);

/* Add each class's own facts to @f. Return: 0, -ENOMEM. */
int stuck_facts_stuck(json_t *f, const stuck_track *t, const stuck_observation *o, json_t *heartbeat,
                      uint32_t stale_s, uint32_t psi_percent, uint32_t dwell_s);
int stuck_facts_d_state(json_t *f, const stuck_track *t, const stuck_unit_sample *s, uint64_t now_usec,
                        uint32_t dwell_s);
int stuck_facts_zombies(json_t *f, const stuck_unit_sample *s, uint32_t max, uint32_t dwell_s);
