/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Internal: the totals of a unit sample, derived from its processes (by the scan and by the JSON parser
 * alike, so a persisted sample never carries totals that disagree with its processes). */
#pragma once

#include "scan.h"

/* Fills procs_cpu_usec, n_d_tasks and zombie_parents from procs[]. Return: 0, -ENOMEM. */
int stuck_unit_sample_summarise(stuck_unit_sample *s);
