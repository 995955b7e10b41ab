/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* FNV-1a 64: cheap checksum for state records and the policy digest. */
#include <stdio.h>

#include "heal/hash.h"

uint64_t heal_fnv1a64(const void *data, size_t len) {
        const unsigned char *p = data;
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

void heal_fnv1a64_hex(const void *data, size_t len, char out[static 17]) {
        snprintf(out, 17, "%016llx", (unsigned long long) heal_fnv1a64(data, len));
}
