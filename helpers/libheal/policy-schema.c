/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The policy schema as one table: key, type, range or values, default and doc.
 * Validation, defaults and `healctl policy keys` all walk the same table. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/policy.h"
#include "policy-schema.h"

#define YEAR_S 31536000

/* ---- value sets -------------------------------------------------------- */

static const char *const modes[] = { "shadow", "live", NULL };
static const char *const tiers[] = { "auto", "delayed", "approve", "human", NULL };
static const char *const reactions[] = { "restart", "human", NULL };
static const char *const heartbeat_sources[] = { "file", "watchdog", NULL };
static const char *const reclaim_times[] = { "atime", "mtime", "ctime", "btime", NULL };

/* ---- the tables -------------------------------------------------------- */

#define INT(n, lo, hi, d, text) \
        { .name = (n), .type = HEAL_SCHEMA_INT, .min = (lo), .max = (hi), .def = (d), .doc = (text) }
#define ENUM(n, v, d, text) { .name = (n), .type = HEAL_SCHEMA_ENUM, .values = (v), .def = (d), .doc = (text) }
#define OBJECT(n, c, text) { .name = (n), .type = HEAL_SCHEMA_OBJECT, .children = (c), .doc = (text) }
#define REACTION(n, d) ENUM(n, reactions, d, "worker-reviver: on Result=" n ", restart or hand to a human")
#define BOOL(n, d, text) { .name = (n), .type = HEAL_SCHEMA_BOOL, .def = (d), .doc = (text) }

static const heal_schema_key global_budget[] = {
        INT("actions", 1, 100000, "10", "host-wide heals allowed per window (token bucket size)"),
        INT("per_s", 1, YEAR_S, "600", "seconds in which the host-wide tokens refill"),
        {},
};

static const heal_schema_key global_escalate[] = {
        { .name = "command", .type = HEAL_SCHEMA_COMMAND, .def = "null",
          .doc = "command run on escalation, with the incident as JSON on stdin; null: journal only" },
        INT("timeout_s", 1, 3600, "10", "the escalation command is killed after this many seconds"),
        {},
};

static const heal_schema_key global_keys[] = {
        OBJECT("budget", global_budget, "token budget for the whole host"),
        OBJECT("escalate", global_escalate, "how escalations leave the host"),
        {},
};

static const heal_schema_key target_budget_keys[] = {
        INT("actions", 1, 100000, "3", "heals of one target allowed per window"),
        INT("per_s", 1, YEAR_S, "600", "seconds in which the per-target tokens refill"),
        {},
};

static const heal_schema_key class_budget_keys[] = {
        INT("actions", 1, 100000, "6", "heals of this class allowed per window"),
        INT("per_s", 1, YEAR_S, "600", "seconds in which the class tokens refill"),
        {},
};

static const heal_schema_key breaker_keys[] = {
        INT("failures", 1, 1000, "3", "consecutive failed heals that open the breaker"),
        INT("cooldown_s", 1, YEAR_S, "600", "seconds the breaker stays open before one trial"),
        {},
};

/* systemd's Service Result= values (systemd.exec(5)). */
static const heal_schema_key on_result_keys[] = {
        REACTION("success", "\"restart\""),
        REACTION("protocol", "\"restart\""),
        REACTION("timeout", "\"restart\""),
        REACTION("exit-code", "\"restart\""),
        REACTION("signal", "\"restart\""),
        REACTION("core-dump", "\"restart\""),
        REACTION("watchdog", "\"restart\""),
        REACTION("start-limit-hit", "\"human\""),
        REACTION("resources", "\"human\""),
        REACTION("oom-kill", "\"restart\""),
        REACTION("exec-condition", "\"restart\""),
        REACTION("cleaning-failed", "\"restart\""),
        {},
};

/* disk-reclaim: one rule of "sources", in policy order (most disposable first). */
static const heal_schema_key disk_source_keys[] = {
        { .name = "name", .type = HEAL_SCHEMA_STRING, .required = true,
          .doc = "disk-reclaim: the source's name in plans and the audit" },
        { .name = "root", .type = HEAL_SCHEMA_STRING, .def = "null",
          .doc = "disk-reclaim: absolute directory to clean; at run time it must exist, be canonical, hold no "
                 "symlink and not be /, else the whole plan is refused" },
        { .name = "patterns", .type = HEAL_SCHEMA_GLOBS, .def = "null",
          .doc = "disk-reclaim: globs on file names; absent: every regular file" },
        INT("min_age_s", 0, 10LL * YEAR_S, "null", "disk-reclaim: only files older than this (required with a root)"),
        { .name = "times", .type = HEAL_SCHEMA_ENUMS, .values = reclaim_times,
          .def = "[\"atime\", \"mtime\", \"ctime\"]",
          .doc = "disk-reclaim: the timestamps that must all be older than min_age_s" },
        INT("max_depth", 0, 256, "0", "disk-reclaim: levels below root to walk; 0: 32"),
        ENUM("tier", tiers, "\"approve\"",
             "disk-reclaim: tier of this source's deletions (at least the class's); operator sources wait for "
             "approval unless they say otherwise"),
        BOOL("journal_vacuum", "false", "disk-reclaim: this source is the journal (journalctl --vacuum-size), no root"),
        INT("keep_bytes", 0, INT64_MAX, "67108864", "disk-reclaim: journal: never vacuum below this size"),
        INT("vacuum_time_s", 0, 10LL * YEAR_S, "0",
            "disk-reclaim: journal: also --vacuum-time (removes every older archived file); 0: size only"),
        {},
};

#define DISK_DEFAULT_SOURCES                                                                                  \
        "[{\"name\": \"apt-cache\", \"root\": \"/var/cache/apt/archives\", \"patterns\": [\"*.deb\"],"        \
        " \"min_age_s\": 86400, \"tier\": \"auto\"},"                                                           \
        " {\"name\": \"coredumps\", \"root\": \"/var/lib/systemd/coredump\", \"patterns\": [\"core.*\"],"     \
        " \"min_age_s\": 259200, \"tier\": \"auto\"},"                                                          \
        " {\"name\": \"rotated-logs\", \"root\": \"/var/log\", \"patterns\": [\"*.gz\", \"*.[0-9]\"],"        \
        " \"min_age_s\": 604800, \"tier\": \"auto\"},"                                                          \
        " {\"name\": \"tmp\", \"root\": \"/var/tmp\", \"min_age_s\": 864000, \"tier\": \"auto\"},"                \
        " {\"name\": \"journal\", \"journal_vacuum\": true, \"tier\": \"auto\"}]"

/* stuck-process-detector: where one unit's heartbeat is (entry of the "heartbeat" map). */
static const heal_schema_key heartbeat_keys[] = {
        ENUM("source", heartbeat_sources, "\"file\"",
             "stuck-process-detector: file: the mtime of \"file\"; watchdog: the unit's last WATCHDOG=1 ping "
             "(systemd's WatchdogTimestamp)"),
        { .name = "file", .type = HEAL_SCHEMA_COMMAND, .def = "null",
          .doc = "stuck-process-detector: absolute path of the heartbeat file; %n is the unit, %i its instance" },
        {},
};

/* A unit name or a glob of them: what the "heartbeat" map is keyed by. */
static bool unit_glob_valid(const char *key) {
        size_t n = strlen(key);

        if (n == 0 || n > 255)
                return false;
        for (const char *c = key; *c; c++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.@\\*?[]!", *c))
                        return false;
        return true;
}

/* Keys of every class. Helpers append their own keys here. */
static const heal_schema_key class_keys[] = {
        ENUM("mode", modes, "\"shadow\"", "shadow records what it would do; live acts"),
        ENUM("tier", tiers, "\"auto\"", "auto acts, delayed waits a cancel window, approve waits for "
                                        "healctl approve, human only escalates"),
        OBJECT("target_budget", target_budget_keys, "token budget per target of this class"),
        OBJECT("budget", class_budget_keys, "token budget for the whole class"),
        OBJECT("breaker", breaker_keys, "circuit breaker per class and target"),
        INT("idempotency_s", 0, YEAR_S, "300", "one heal per class, target and incident in this window"),
        INT("dwell_s", 0, 86400, "0", "the condition must still hold after this many seconds"),
        INT("settle_s", 0, 3600, "10", "seconds to wait after acting before verifying"),
        INT("delay_s", 1, 86400, "300", "tier delayed: seconds to allow healctl cancel"),
        INT("approve_expiry_s", 60, 2592000, "86400", "tier approve: seconds before an unapproved plan expires"),
        { .name = "targets", .type = HEAL_SCHEMA_GLOBS, .def = "[\"*\"]",
          .doc = "globs (fnmatch) of the targets this class may act on" },
        { .name = "exclude", .type = HEAL_SCHEMA_GLOBS, .def = "[\"heal-*\", \"dbus.service\", \"systemd-*\"]",
          .doc = "globs of targets never acted on, even when targets matches" },
        OBJECT("on_result", on_result_keys, "worker-reviver: reaction per systemd service Result="),
        { .name = "verify_command", .type = HEAL_SCHEMA_COMMAND, .def = "null",
          .doc = "worker-reviver: command that must succeed after the settle time; null: unit active suffices" },
        { .name = "mounts", .type = HEAL_SCHEMA_GLOBS, .def = "[]",
          .doc = "disk-reclaim: globs of mount points to watch; []: every local, writable, non-pseudo filesystem" },
        INT("min_free_percent", 0, 99, "10", "disk-reclaim: pressure when less space than this is available"),
        INT("target_free_percent", 1, 100, "15", "disk-reclaim: free up to this much available space, no more "
                                                 "(above min_free_percent)"),
        INT("min_free_inodes_percent", 0, 99, "5", "disk-reclaim: pressure when fewer inodes than this are free"),
        INT("target_free_inodes_percent", 1, 100, "10", "disk-reclaim: free up to this many inodes (above "
                                                        "min_free_inodes_percent)"),
        INT("max_bytes_per_run", 1, INT64_MAX, "17179869184",
            "disk-reclaim: a plan needing more bytes than this is refused and escalated"),
        INT("max_files_per_run", 1, 1000000000, "100000",
            "disk-reclaim: a plan needing more files than this is refused and escalated"),
        INT("workers", 0, 16, "0",
            "disk-reclaim: threads that walk the sources and remove files; 0: one per CPU it may run on, at most 4"),
        BOOL("include_removable", "false", "disk-reclaim: also watch removable media"),
        BOOL("include_loop", "false", "disk-reclaim: also watch loop devices"),
        { .name = "sources", .type = HEAL_SCHEMA_ARRAY, .children = disk_source_keys, .def = DISK_DEFAULT_SOURCES,
          .doc = "disk-reclaim: what may be removed, in order, most disposable first (replaced as a whole)" },
        INT("leak_threshold_bytes", 0, INT64_MAX, "1073741824",
            "disk-leaked: propose restarting a unit holding more deleted bytes than this"),
        { .name = "heartbeat", .type = HEAL_SCHEMA_MAP, .children = heartbeat_keys, .key_valid = unit_glob_valid,
          .key_rule = "a unit name or glob: [A-Za-z0-9:_.@\\-] and *?[]!",
          .doc = "stuck-process-detector: per unit (glob), its heartbeat; the most specific match wins; none: "
                 "no heartbeat" },
        INT("heartbeat_stale_s", 1, 86400, "60", "stuck-process-detector: a heartbeat older than this is stale"),
        INT("psi_stall_percent", 1, 100, "50",
            "stuck-process-detector: the cgroup stalls when PSI some avg60 of cpu, memory or io reaches this"),
        INT("zombies_max", 1, 1000000, "50", "stuck-process-detector: more zombies than this in one unit escalate"),
        {},
};

const heal_schema_key heal_schema_root[] = {
        { .name = "version", .type = HEAL_SCHEMA_INT, .min = 1, .max = 1, .required = true,
          .doc = "policy format version, must be 1" },
        OBJECT("global", global_keys, "settings for the whole host"),
        { .name = "classes", .type = HEAL_SCHEMA_MAP, .children = class_keys,
          .key_valid = heal_schema_class_name_valid,
          .key_rule = "a class name: [a-z0-9][a-z0-9:_.-]*, at most 64 characters, A-Z allowed after "
                      "\"alert:\"",
          .doc = "one object per failure class" },
        {},
};

/* ---- names ------------------------------------------------------------- */

bool heal_schema_class_name_valid(const char *name) {
        size_t n = strlen(name);
        size_t upper_from = strncmp(name, "alert:", 6) == 0 ? 6 : SIZE_MAX;

        if (n == 0 || n > 64)
                return false;
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789", name[0]))
                return false;
        for (size_t i = 1; i < n; i++) {
                char c = name[i];
                if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(":_.-", c))
                        continue;
                if (c >= 'A' && c <= 'Z' && i >= upper_from)
                        continue;
                return false;
        }
        return true;
}

/* ---- validation -------------------------------------------------------- */

/* The offending value, short enough for a message (caller frees). */
static char *describe(const json_t *v) {
        char *s;

        if (json_is_object(v))
                return strdup("an object");
        if (json_is_array(v))
                return strdup("an array");
        s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s && strlen(s) > 64)
                strcpy(s + 60, "...");
        return s;
}

static char *join_path(const char *path, const char *key) {
        char *p = NULL;

        if (asprintf(&p, "%s%s%s", path, *path ? "." : "", key) < 0)
                return NULL;
        return p;
}

/* Sets *ret_msg to "PATH: WHAT, got VALUE"; returns -EINVAL (or -ENOMEM). */
static int fail(char **ret_msg, const char *path, const json_t *v, const char *what) {
        _cleanup_free_ char *got = v ? describe(v) : NULL;

        if (v && !got)
                return -ENOMEM;
        if (asprintf(ret_msg, "%s: %s%s%s", path, what, got ? ", got " : "", got ?: "") < 0) {
                *ret_msg = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static int validate_object(const heal_schema_key *keys, json_t *obj, const char *path, char **ret_msg);

static int validate_int(const heal_schema_key *k, json_t *v, const char *path, char **ret_msg) {
        _cleanup_free_ char *what = NULL;
        int r;

        if (json_is_integer(v) && json_integer_value(v) >= k->min && json_integer_value(v) <= k->max)
                return 0;
        if (k->min == k->max)
                r = asprintf(&what, "expected %" PRId64, k->min);
        else
                r = asprintf(&what, "expected an integer in %" PRId64 "..%" PRId64, k->min, k->max);
        if (r < 0)
                return -ENOMEM;
        return fail(ret_msg, path, v, what);
}

static int validate_enum(const heal_schema_key *k, json_t *v, const char *path, char **ret_msg) {
        _cleanup_free_ char *what = NULL;
        size_t len = strlen("expected one of ") + 1;

        if (json_is_string(v))
                for (const char *const *i = k->values; *i; i++)
                        if (strcmp(*i, json_string_value(v)) == 0)
                                return 0;

        for (const char *const *i = k->values; *i; i++)
                len += strlen(*i) + 1;
        what = malloc(len);
        if (!what)
                return -ENOMEM;
        strcpy(what, "expected one of ");
        for (const char *const *i = k->values; *i; i++) {
                if (i != k->values)
                        strcat(what, "|");
                strcat(what, *i);
        }
        return fail(ret_msg, path, v, what);
}

static int validate_globs(json_t *v, const char *path, char **ret_msg) {
        size_t i;
        json_t *e;

        if (!json_is_array(v))
                return fail(ret_msg, path, v, "expected an array of glob strings");
        json_array_foreach(v, i, e) {
                _cleanup_free_ char *p = NULL;

                if (json_is_string(e) && json_string_length(e) > 0)
                        continue;
                if (asprintf(&p, "%s[%zu]", path, i) < 0)
                        return -ENOMEM;
                return fail(ret_msg, p, e, "expected a non-empty glob string");
        }
        return 0;
}

static int validate_enums(const heal_schema_key *k, json_t *v, const char *path, char **ret_msg) {
        size_t i, j;
        json_t *e, *f;

        if (!json_is_array(v))
                return fail(ret_msg, path, v, "expected an array of strings");
        json_array_foreach(v, i, e) {
                _cleanup_free_ char *p = NULL;
                int r;

                if (asprintf(&p, "%s[%zu]", path, i) < 0)
                        return -ENOMEM;
                r = validate_enum(k, e, p, ret_msg);
                if (r < 0)
                        return r;
                json_array_foreach(v, j, f) {
                        if (j >= i)
                                break;
                        if (json_equal(e, f))
                                return fail(ret_msg, p, e, "repeated");
                }
        }
        return 0;
}

static int validate_array(const heal_schema_key *k, json_t *v, const char *path, char **ret_msg) {
        size_t i;
        json_t *e;

        if (!json_is_array(v))
                return fail(ret_msg, path, v, "expected an array of objects");
        json_array_foreach(v, i, e) {
                _cleanup_free_ char *p = NULL;
                int r;

                if (asprintf(&p, "%s[%zu]", path, i) < 0)
                        return -ENOMEM;
                if (!json_is_object(e))
                        return fail(ret_msg, p, e, "expected an object");
                r = validate_object(k->children, e, p, ret_msg);
                if (r < 0)
                        return r;
                /* Arrays are replaced whole when merging: each element is complete in its file. */
                for (const heal_schema_key *c = k->children; c->name; c++)
                        if (c->required && !json_object_get(e, c->name)) {
                                _cleanup_free_ char *pc = join_path(p, c->name);
                                return pc ? fail(ret_msg, pc, NULL, "missing") : -ENOMEM;
                        }
        }
        return 0;
}

static int validate_map(const heal_schema_key *k, json_t *v, const char *path, char **ret_msg) {
        const char *key;
        json_t *e;

        if (!json_is_object(v))
                return fail(ret_msg, path, v, "expected an object");
        json_object_foreach(v, key, e) {
                _cleanup_free_ char *p = join_path(path, key);
                int r;

                if (!p)
                        return -ENOMEM;
                if (!k->key_valid(key)) {
                        _cleanup_free_ char *what = NULL;
                        if (asprintf(&what, "invalid name, expected %s", k->key_rule) < 0)
                                return -ENOMEM;
                        return fail(ret_msg, p, NULL, what);
                }
                if (!json_is_object(e))
                        return fail(ret_msg, p, e, "expected an object");
                r = validate_object(k->children, e, p, ret_msg);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int validate_value(const heal_schema_key *k, json_t *v, const char *path, char **ret_msg) {
        switch (k->type) {
        case HEAL_SCHEMA_INT:
                return validate_int(k, v, path, ret_msg);
        case HEAL_SCHEMA_ENUM:
                return validate_enum(k, v, path, ret_msg);
        case HEAL_SCHEMA_COMMAND:
                if (json_is_null(v) || (json_is_string(v) && json_string_length(v) > 0))
                        return 0;
                return fail(ret_msg, path, v, "expected a non-empty string or null");
        case HEAL_SCHEMA_GLOBS:
                return validate_globs(v, path, ret_msg);
        case HEAL_SCHEMA_OBJECT:
                if (!json_is_object(v))
                        return fail(ret_msg, path, v, "expected an object");
                return validate_object(k->children, v, path, ret_msg);
        case HEAL_SCHEMA_MAP:
                return validate_map(k, v, path, ret_msg);
        case HEAL_SCHEMA_BOOL:
                return json_is_boolean(v) ? 0 : fail(ret_msg, path, v, "expected true or false");
        case HEAL_SCHEMA_STRING:
                if (json_is_string(v) && json_string_length(v) > 0)
                        return 0;
                return fail(ret_msg, path, v, "expected a non-empty string");
        case HEAL_SCHEMA_ENUMS:
                return validate_enums(k, v, path, ret_msg);
        case HEAL_SCHEMA_ARRAY:
                return validate_array(k, v, path, ret_msg);
        }
        return -EINVAL;
}

static const heal_schema_key *find_key(const heal_schema_key *keys, const char *name) {
        for (const heal_schema_key *k = keys; k->name; k++)
                if (strcmp(k->name, name) == 0)
                        return k;
        return NULL;
}

static int validate_object(const heal_schema_key *keys, json_t *obj, const char *path, char **ret_msg) {
        const char *key;
        json_t *v;

        json_object_foreach(obj, key, v) {
                const heal_schema_key *k = find_key(keys, key);
                _cleanup_free_ char *p = join_path(path, key);
                int r;

                if (!p)
                        return -ENOMEM;
                if (!k)
                        return fail(ret_msg, p, NULL, "unknown key");
                r = validate_value(k, v, p, ret_msg);
                if (r < 0)
                        return r;
        }
        return 0;
}

int heal_schema_validate(const json_t *root, const char *source, char **ret_error) {
        _cleanup_free_ char *msg = NULL;
        json_t *obj = (json_t *) root; /* jansson's iterators take no const */
        int r;

        if (!json_is_object(obj)) {
                _cleanup_free_ char *got = describe(obj);
                if (!got || asprintf(ret_error, "%s: expected an object at the top level, got %s", source,
                                     got) < 0)
                        return -ENOMEM;
                return -EINVAL;
        }
        r = validate_object(heal_schema_root, obj, "", &msg);
        if (r == -EINVAL && msg) {
                if (asprintf(ret_error, "%s: %s", source, msg) < 0)
                        return -ENOMEM;
                return -EINVAL;
        }
        return r == -EINVAL ? -ENOMEM : r;
}

/* ---- defaults ---------------------------------------------------------- */

static int set_default(json_t *obj, const heal_schema_key *k) {
        json_t *d = json_loads(k->def, JSON_DECODE_ANY, NULL);

        if (!d)
                return -ENOMEM;
        return json_object_set_new(obj, k->name, d) < 0 ? -ENOMEM : 0;
}

static int apply_defaults(const heal_schema_key *keys, json_t *obj, const char *path, char **ret_error);

/* Each element of an array of objects gets its children's defaults. */
static int apply_array_defaults(const heal_schema_key *k, json_t *v, const char *path, char **ret_error) {
        size_t i;
        json_t *e;

        json_array_foreach(v, i, e) {
                _cleanup_free_ char *p = NULL;
                int r;

                if (asprintf(&p, "%s%s%s[%zu]", path, *path ? "." : "", k->name, i) < 0)
                        return -ENOMEM;
                r = apply_defaults(k->children, e, p, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int apply_defaults(const heal_schema_key *keys, json_t *obj, const char *path, char **ret_error) {
        for (const heal_schema_key *k = keys; k->name; k++) {
                json_t *v = json_object_get(obj, k->name);
                int r = 0;

                if (!v && k->required) {
                        _cleanup_free_ char *p = join_path(path, k->name);
                        if (!p || asprintf(ret_error, "%s: missing; at least one policy file must set it",
                                           p) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }
                if (!v && (k->type == HEAL_SCHEMA_OBJECT || k->type == HEAL_SCHEMA_MAP)) {
                        v = json_object();
                        if (!v || json_object_set_new(obj, k->name, v) < 0)
                                return -ENOMEM;
                }
                if (!v && k->def) {
                        r = set_default(obj, k);
                        if (r < 0)
                                return r;
                        v = json_object_get(obj, k->name);
                        if (k->type != HEAL_SCHEMA_ARRAY)
                                continue;
                }
                if (!v)
                        continue;
                if (k->type == HEAL_SCHEMA_ARRAY)
                        r = apply_array_defaults(k, v, path, ret_error);
                else if (k->type == HEAL_SCHEMA_OBJECT) {
                        _cleanup_free_ char *p = join_path(path, k->name);
                        r = p ? apply_defaults(k->children, v, p, ret_error) : -ENOMEM;
                } else if (k->type == HEAL_SCHEMA_MAP) {
                        const char *key;
                        json_t *e;
                        json_object_foreach(v, key, e) {
                                _cleanup_free_ char *p = join_path(path, k->name);
                                _cleanup_free_ char *pk = p ? join_path(p, key) : NULL;
                                r = pk ? apply_defaults(k->children, e, pk, ret_error) : -ENOMEM;
                                if (r < 0)
                                        break;
                        }
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int heal_schema_apply_defaults(json_t *root, char **ret_error) {
        if (!json_is_object(root))
                return -EINVAL;
        return apply_defaults(heal_schema_root, root, "", ret_error);
}

/* ---- listings ---------------------------------------------------------- */

static const char *type_name(const heal_schema_key *k) {
        switch (k->type) {
        case HEAL_SCHEMA_INT:
                return "integer";
        case HEAL_SCHEMA_ENUM:
                return "enum";
        case HEAL_SCHEMA_COMMAND:
                return "string|null";
        case HEAL_SCHEMA_GLOBS:
                return "globs";
        case HEAL_SCHEMA_OBJECT:
        case HEAL_SCHEMA_MAP:
                return "object";
        case HEAL_SCHEMA_BOOL:
                return "boolean";
        case HEAL_SCHEMA_STRING:
                return "string";
        case HEAL_SCHEMA_ENUMS:
                return "enums";
        case HEAL_SCHEMA_ARRAY:
                return "array";
        }
        return "?";
}

/* One line per leaf key: the path alone, or (@describe) path, type, range, default, doc. */
static void list_keys(FILE *f, const heal_schema_key *keys, const char *path, bool verbose) {
        for (const heal_schema_key *k = keys; k->name; k++) {
                _cleanup_free_ char *p = join_path(path, k->name);
                _cleanup_free_ char *star = NULL;

                if (!p)
                        return;
                if (k->type == HEAL_SCHEMA_OBJECT) {
                        list_keys(f, k->children, p, verbose);
                        continue;
                }
                if (k->type == HEAL_SCHEMA_MAP) {
                        star = join_path(p, "*");
                        if (star)
                                list_keys(f, k->children, star, verbose);
                        continue;
                }
                if (!verbose)
                        fprintf(f, "%s\n", p);
                else {
                        fprintf(f, "%s\t%s", p, type_name(k));
                        if (k->type == HEAL_SCHEMA_INT)
                                fprintf(f, " %" PRId64 "..%" PRId64, k->min, k->max);
                        for (const char *const *i = k->values; i && *i; i++)
                                fprintf(f, "%s%s", i == k->values ? " " : "|", *i);
                        fprintf(f, "\t%s\t%s\n", k->def ?: "(required)", k->doc);
                }
                /* An array of objects: the key itself, then its elements' keys as "KEY[].CHILD". */
                if (k->type == HEAL_SCHEMA_ARRAY) {
                        if (asprintf(&star, "%s[]", p) < 0)
                                star = NULL;
                        else
                                list_keys(f, k->children, star, verbose);
                }
        }
}

static char *keys_text, *describe_text;

static char *build_listing(bool verbose) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        list_keys(f, heal_schema_root, "", verbose);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static void build_listings(void) {
        keys_text = build_listing(false);
        describe_text = build_listing(true);
}

static pthread_once_t listings_once = PTHREAD_ONCE_INIT;

const char *heal_policy_schema_keys(void) {
        pthread_once(&listings_once, build_listings);
        return keys_text ?: "";
}

const char *heal_policy_schema_describe(void) {
        pthread_once(&listings_once, build_listings);
        return describe_text ?: "";
}
