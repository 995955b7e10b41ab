/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The policy: JSON drop-ins merged like systemd drop-ins, strictly validated. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heal/breaker.h"
#include "heal/budget.h"

typedef enum heal_mode { HEAL_MODE_SHADOW, HEAL_MODE_LIVE } heal_mode;
typedef enum heal_tier { HEAL_TIER_AUTO, HEAL_TIER_DELAYED, HEAL_TIER_APPROVE, HEAL_TIER_HUMAN } heal_tier;

const char *heal_mode_to_string(heal_mode m);
int heal_mode_from_string(const char *s); /* -EINVAL when unknown */
const char *heal_tier_to_string(heal_tier t);
int heal_tier_from_string(const char *s);

/* One failure class, every key filled in (defaults applied). */
typedef struct heal_class_policy {
        char *name;                     /* "worker-dead", "alert:DiskFull", ... */
        heal_mode mode;                 /* default shadow */
        heal_tier tier;                 /* default auto */
        heal_budget_spec target_budget; /* default 3 per 600 s */
        heal_budget_spec budget;        /* default 6 per 600 s */
        heal_breaker_spec breaker;      /* default 3 failures, 600 s */
        uint32_t idempotency_s;         /* default 300 */
        uint32_t dwell_s;               /* default 0 */
        uint32_t settle_s;              /* default 10 */
        uint32_t delay_s;               /* tier delayed: the cancel window, default 300 */
        uint32_t approve_expiry_s;      /* tier approve: unapproved plans expire, default 86400 */
        char **targets;                 /* globs (fnmatch), NULL-terminated; default {"*"} */
        char **exclude;                 /* globs, NULL-terminated; default {"heal-*", "dbus.service", "systemd-*"} */
        json_t *json;                   /* the whole merged class object, for helper-specific keys */
} heal_class_policy;

typedef struct heal_policy {
        heal_budget_spec global_budget; /* default 10 per 600 s */
        char *escalate_command;         /* NULL: journal only */
        uint32_t escalate_timeout_s;    /* default 10 */
        heal_class_policy *classes;
        size_t n_classes;
        char digest[17];                /* hex FNV-1a 64 of the canonical merged JSON */
        json_t *merged;                 /* the effective policy (owned) */
} heal_policy;

/**
 * heal_policy_load() - read, validate and merge the drop-ins.
 * @dirs: NULL-terminated, lowest precedence first; NULL means heal_path_policy_dirs().
 *   Missing dirs are skipped; no file at all is an error (-ENOENT).
 * @ret: the policy, owned by the caller (heal_policy_free()).
 * @ret_error: on failure, a message for a person naming the file, the
 *   line:column where jansson gives one, and the key path (caller frees).
 *
 * A file in a later dir replaces the file of the same name in an earlier one
 * (a symlink to /dev/null masks it, as with systemd drop-ins); the remaining
 * files merge in lexical order of their names, objects key by key
 * (recursively), anything else replaced. Dotfiles and names not ending in
 * ".json" are ignored. Each file is validated on its own before merging, so
 * the message names it: unknown keys, wrong types and out-of-range values are
 * errors. "version" must be 1 and set by at least one file.
 * Returns 0, -EINVAL (invalid), -ENOENT (no file at all), or -errno.
 */
int heal_policy_load(const char *const *dirs, heal_policy **ret, char **ret_error);

/* Same, from explicit files in the given order (healctl policy check FILE…). */
int heal_policy_load_files(const char *const *files, heal_policy **ret, char **ret_error);

/* One in-memory policy document; @name stands for the file in messages. */
typedef struct heal_policy_buffer {
        const char *name;
        const void *data;
        size_t size;
} heal_policy_buffer;

/* Same, from @n documents in memory, merged in the given order (fuzzers, tests). */
int heal_policy_load_buffers(const heal_policy_buffer *bufs, size_t n, heal_policy **ret, char **ret_error);

heal_policy *heal_policy_free(heal_policy *p);
static inline void heal_policy_freep(heal_policy **p) { heal_policy_free(*p); }

/* The class, or NULL when the policy does not define it. */
const heal_class_policy *heal_policy_class(const heal_policy *p, const char *name);

/* True when @target matches one of targets and none of exclude. */
bool heal_class_targets(const heal_class_policy *c, const char *target);

/**
 * heal_policy_schema_keys() - every leaf key path the loader accepts, one per
 * line, in schema order ("version", "global.budget.actions", "classes.*.mode",
 * ...), for the man page test and `healctl policy keys`. Returns a static string.
 */
const char *heal_policy_schema_keys(void);

/* Same keys with what they take, one per line: "PATH<TAB>TYPE[ RANGE|VALUES]<TAB>DEFAULT<TAB>DOC",
 * DEFAULT as JSON or "(required)". Returns a static string. */
const char *heal_policy_schema_describe(void);
