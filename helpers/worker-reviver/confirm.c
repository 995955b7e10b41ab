/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Confirm: the unit really is failed over D-Bus, not already coming back,
 * and the facts a human needs later. */
#include <stdlib.h>
#include <string.h>

#include "reviver.h"

static const char *env(const char *name) {
        const char *v = getenv(name);

        return v && *v ? v : NULL;
}

void reviver_monitor_from_env(reviver_monitor *ret) {
        *ret = (reviver_monitor) {
                .unit = env("MONITOR_UNIT"),
                .service_result = env("MONITOR_SERVICE_RESULT"),
                .exit_code = env("MONITOR_EXIT_CODE"),
                .exit_status = env("MONITOR_EXIT_STATUS"),
                .invocation_id = env("MONITOR_INVOCATION_ID"),
        };
}

int reviver_confirm(const char *unit, const heal_unit_info *info, const reviver_monitor *m,
                    const char **ret_reason) {
        /* The trigger and the instance disagree: someone started us by hand for
         * another unit's failure, or the instance name was mangled. */
        if (m->unit && strcmp(m->unit, unit) != 0) {
                *ret_reason = "the trigger (MONITOR_UNIT) names another unit";
                return 0;
        }
        if (!info->active_state || strcmp(info->active_state, "failed") != 0) {
                *ret_reason = "the unit is not failed any more";
                return 0;
        }
        /* A queued job means systemd or an operator is already bringing it back. */
        if (info->job_queued) {
                *ret_reason = "a job is already queued for the unit";
                return 0;
        }
        return 1;
}

const char *reviver_incident(const heal_unit_info *info, const reviver_monitor *m) {
        /* A failed unit keeps the InvocationID of the run that failed until it
         * is started again, so D-Bus names the failure we are looking at, even
         * when it failed again after the trigger was sent. */
        if (info->invocation_id[0])
                return info->invocation_id;
        return m->invocation_id;
}

static int set_str(json_t *o, const char *key, const char *v) {
        return v ? json_object_set_new(o, key, json_string(v)) : 0;
}

json_t *reviver_facts(const char *unit, const heal_unit_info *info, const reviver_monitor *m) {
        _cleanup_json_ json_t *f = json_object(), *mon = json_object();

        if (!f || !mon)
                return NULL;
        if (set_str(f, "unit", unit) < 0 || set_str(f, "active_state", info->active_state) < 0 ||
            set_str(f, "sub_state", info->sub_state) < 0 || set_str(f, "result", info->result) < 0 ||
            set_str(f, "unit_file_state", info->unit_file_state) < 0 ||
            set_str(f, "invocation_id", info->invocation_id[0] ? info->invocation_id : NULL) < 0 ||
            json_object_set_new(f, "n_restarts", json_integer(info->n_restarts)) < 0 ||
            json_object_set_new(f, "exec_main_code", json_integer(info->exec_main_code)) < 0 ||
            json_object_set_new(f, "exec_main_status", json_integer(info->exec_main_status)) < 0 ||
            json_object_set_new(f, "job_queued", json_boolean(info->job_queued)) < 0)
                return NULL;
        if (set_str(mon, "unit", m->unit) < 0 || set_str(mon, "service_result", m->service_result) < 0 ||
            set_str(mon, "exit_code", m->exit_code) < 0 || set_str(mon, "exit_status", m->exit_status) < 0 ||
            set_str(mon, "invocation_id", m->invocation_id) < 0)
                return NULL;
        if (json_object_size(mon) > 0 && json_object_set(f, "monitor", mon) < 0)
                return NULL;
        return TAKE_PTR(f);
}
