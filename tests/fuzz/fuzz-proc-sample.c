/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the persisted-sample parsers (the full form and the compact one): JSON read back from
 * /run/heal is refused when bad, and what they accept writes back to the same JSON and parses again. */
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *j = json_loadb((const char *) data, size, JSON_DECODE_ANY, NULL);
        json_t *out = NULL;
        stuck_unit_sample s = {}, again = {};

        if (!j)
                return 0;
        if (stuck_unit_sample_from_json(j, &s) >= 0) {
                if (stuck_unit_sample_to_json(&s, &out) < 0 || stuck_unit_sample_from_json(out, &again) < 0)
                        __builtin_trap();
                if (again.n_procs != s.n_procs || again.n_zombie_parents != s.n_zombie_parents ||
                    again.procs_cpu_usec != s.procs_cpu_usec)
                        __builtin_trap();
        }
        stuck_unit_sample_done(&s);
        stuck_unit_sample_done(&again);
        json_decref(out);
        out = NULL;

        if (stuck_unit_sample_from_compact(j, &s) >= 0) {
                if (stuck_unit_sample_to_compact(&s, &out) < 0 || !json_equal(out, j) ||
                    stuck_unit_sample_from_compact(out, &again) < 0 ||
                    again.monotonic_usec != s.monotonic_usec || again.cgroup.cpu_known != s.cgroup.cpu_known ||
                    again.cgroup.cpu_usage_usec != s.cgroup.cpu_usage_usec || again.cgroup.io_known != s.cgroup.io_known ||
                    again.cgroup.tasks_known != s.cgroup.tasks_known || again.cgroup.n_tasks != s.cgroup.n_tasks)
                        __builtin_trap();
        }
        json_decref(out);
        json_decref(j);
        return 0;
}
