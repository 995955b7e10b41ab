/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How a pending action reads to a person, apart from the store (unit-tested). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "heal/pending.h"

/* "waiting", "approved", "cancelled", "due" (a delayed action past its
 * window: it runs by itself) or "expired" (an approve plan past its expiry). */
const char *pending_view_status(const heal_pending *p, uint64_t now);

/* "runs in 4m 10s", "expires in 23h 59m", "expired 2h 3m ago", "-" when
 * decided or without a deadline. Caller frees; NULL on OOM. */
char *pending_view_deadline(const heal_pending *p, uint64_t now);

/* The record belongs to shadow mode (its key carries the shadow prefix). */
bool pending_view_is_shadow(const heal_pending *p);

/* The record for --json (new reference), NULL on OOM. */
json_t *pending_view_json(const heal_pending *p, uint64_t now);
