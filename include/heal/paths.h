/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every path heal reads from the system, redirectable by environment so tests
 * run on fixture trees without root (see heal(7), ENVIRONMENT). */
#pragma once

/* Each returns a static string (never NULL, never to be freed):
 * the environment variable when set and non-empty, else the default. */
const char *heal_path_state_dir(void);   /* HEAL_STATE_DIR, /var/lib/heal */
const char *heal_path_run_dir(void);     /* HEAL_RUN_DIR, /run/heal */
const char *heal_path_metrics_dir(void); /* HEAL_METRICS_DIR, /var/lib/prometheus/node-exporter */
const char *heal_path_proc(void);        /* HEAL_PROC_DIR, /proc */
const char *heal_path_cgroup(void);      /* HEAL_CGROUP_DIR, /sys/fs/cgroup */

/**
 * heal_path_policy_dirs() - the policy drop-in dirs, lowest precedence first.
 *
 * HEAL_POLICY_DIRS (colon separated) when set, else
 * /usr/share/heal/policy.d, /etc/heal/policy.d, /run/heal/policy.d.
 * Returns a static NULL-terminated array; never NULL.
 */
const char *const *heal_path_policy_dirs(void);
