/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading fields of stored JSON records: malformed is -EBADMSG (fail closed). */
#pragma once

#include <jansson.h>
#include <stdint.h>

/* The non-negative integer @field of @obj into *@ret. Returns 0, or -EBADMSG
 * when it is absent, not an integer, or negative (*@ret untouched then). */
int heal_json_get_u64(const json_t *obj, const char *field, uint64_t *ret);

/* The same for a field older records lack: absent reads as 0. */
int heal_json_get_u64_or_zero(const json_t *obj, const char *field, uint64_t *ret);

/* A JSON array as a new NULL-terminated strv (caller frees, strv_free());
 * an element that is not a string becomes "", anything but an array an
 * empty list. Returns 0 or -ENOMEM. */
int heal_json_to_strv(const json_t *a, char ***ret);
