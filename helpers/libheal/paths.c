/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every system path heal reads, redirectable by environment for fixture tests. */
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/paths.h"

static const char *env_or(const char *name, const char *fallback) {
        const char *v = secure_getenv(name);
        return v && *v ? v : fallback;
}

const char *heal_path_state_dir(void) { return env_or("HEAL_STATE_DIR", "/var/lib/heal"); }
const char *heal_path_run_dir(void) { return env_or("HEAL_RUN_DIR", "/run/heal"); }
const char *heal_path_metrics_dir(void) {
        return env_or("HEAL_METRICS_DIR", "/var/lib/prometheus/node-exporter");
}
const char *heal_path_proc(void) { return env_or("HEAL_PROC_DIR", "/proc"); }
const char *heal_path_cgroup(void) { return env_or("HEAL_CGROUP_DIR", "/sys/fs/cgroup"); }

#define MAX_POLICY_DIRS 16

const char *const *heal_path_policy_dirs(void) {
        static const char *const defaults[] = {
                "/usr/share/heal/policy.d",
                "/etc/heal/policy.d",
                "/run/heal/policy.d",
                NULL,
        };
        /* Parsed once per process; the strings live as long as the process. */
        static const char *parsed[MAX_POLICY_DIRS + 1];
        static char *copy;

        const char *v = secure_getenv("HEAL_POLICY_DIRS");
        if (!v || !*v)
                return defaults;
        if (!copy) {
                copy = strdup(v);
                if (!copy)
                        return defaults;
                size_t n = 0;
                char *save = NULL;
                for (char *tok = strtok_r(copy, ":", &save); tok && n < MAX_POLICY_DIRS;
                     tok = strtok_r(NULL, ":", &save))
                        parsed[n++] = tok;
                parsed[n] = NULL;
        }
        return parsed;
}
