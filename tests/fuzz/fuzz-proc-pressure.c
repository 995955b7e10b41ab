/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the cgroup *.pressure parser: refused, or averages within 0..100.00 %. */
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        stuck_psi psi;

        if (stuck_parse_pressure((const char *) data, size, &psi) < 0)
                return 0;
        if (!psi.known || psi.some_avg10 > 10000 || psi.some_avg60 > 10000 || psi.some_avg300 > 10000)
                __builtin_trap();
        return 0;
}
