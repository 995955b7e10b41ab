/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* FNV-1a 64: a checksum for state records and the policy digest (not for security). */
#pragma once

#include <stddef.h>
#include <stdint.h>

uint64_t heal_fnv1a64(const void *data, size_t len);
/* Lower-case hex of heal_fnv1a64() into @out (16 chars + NUL). */
void heal_fnv1a64_hex(const void *data, size_t len, char out[static 17]);
