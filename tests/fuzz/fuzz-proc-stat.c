/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the /proc/PID/stat parser: any bytes, parsed or refused, never read past the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        stuck_stat st;

        if (stuck_parse_stat((const char *) data, size, &st) < 0)
                return 0;
        /* A parsed comm sits inside the input, between '(' and the last ')'. */
        if (!st.comm || strlen(st.comm) + 2 > size || st.ppid < 0 || st.n_threads < 0)
                __builtin_trap();
        free(st.comm);
        return 0;
}
