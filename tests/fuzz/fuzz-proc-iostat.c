/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the keyed counter parsers on the same bytes: io.stat, cpu.stat, /proc/PID/io and
 * /proc/PID/sched. Each parses or refuses; none reads past the input. */
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *t = (const char *) data;
        uint64_t v;

        (void) stuck_parse_io_stat(t, size, &v);
        (void) stuck_parse_cpu_stat(t, size, &v);
        (void) stuck_parse_proc_io(t, size, &v);
        (void) stuck_parse_sched_ns(t, size, "block_start", &v);
        (void) stuck_parse_sched_ns(t, size, "exec_start", &v);
        return 0;
}
