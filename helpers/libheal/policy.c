/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The policy loader: finds the drop-ins, validates each file on its own (so a
 * message names the file), merges them and fills heal_policy with defaults. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "heal/cleanup.h"
#include "heal/hash.h"
#include "heal/json-util.h"
#include "heal/paths.h"
#include "heal/policy.h"
#include "policy-schema.h"

/* A policy file is a few KiB; anything this big is a mistake, not a policy. */
#define POLICY_FILE_MAX (1024 * 1024)

/* ---- enums ------------------------------------------------------------- */

static const char *const mode_names[] = {
        [HEAL_MODE_SHADOW] = "shadow",
        [HEAL_MODE_LIVE] = "live",
};

static const char *const tier_names[] = {
        [HEAL_TIER_AUTO] = "auto",
        [HEAL_TIER_DELAYED] = "delayed",
        [HEAL_TIER_APPROVE] = "approve",
        [HEAL_TIER_HUMAN] = "human",
};

static int lookup(const char *const *names, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *heal_mode_to_string(heal_mode m) {
        return (size_t) m < ELEMENTSOF(mode_names) ? mode_names[m] : NULL;
}

int heal_mode_from_string(const char *s) { return lookup(mode_names, ELEMENTSOF(mode_names), s); }

const char *heal_tier_to_string(heal_tier t) {
        return (size_t) t < ELEMENTSOF(tier_names) ? tier_names[t] : NULL;
}

int heal_tier_from_string(const char *s) { return lookup(tier_names, ELEMENTSOF(tier_names), s); }

/* ---- one document ------------------------------------------------------ */

static int errorf(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int errorf(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0) {
                *ret_error = NULL;
                r = -ENOMEM;
        }
        va_end(ap);
        return r;
}

/* Parse and validate one document, then merge it over @merged. */
static int merge_document(json_t *merged, const char *source, const void *data, size_t size,
                          char **ret_error) {
        _cleanup_json_ json_t *root = NULL;
        json_error_t e;
        int r;

        root = json_loadb(data ?: "", size, JSON_REJECT_DUPLICATES, &e);
        if (!root) {
                if (e.line > 0)
                        return errorf(ret_error, -EINVAL, "%s:%d:%d: %s", source, e.line, e.column, e.text);
                return errorf(ret_error, -EINVAL, "%s: %s", source, e.text);
        }
        r = heal_schema_validate(root, source, ret_error);
        if (r < 0)
                return r;
        /* Objects merge key by key, recursively; arrays and scalars replace. */
        if (json_object_update_recursive(merged, root) < 0)
                return -ENOMEM;
        return 0;
}

static int read_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, cap = 0;

        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n;

                if (size == cap) {
                        char *nb;
                        if (cap > POLICY_FILE_MAX)
                                return -EFBIG;
                        cap = cap ? cap * 2 : 8192;
                        nb = realloc(buf, cap);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                n = read(fd, buf + size, cap - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        if (size > POLICY_FILE_MAX)
                return -EFBIG;
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

static int merge_file(json_t *merged, const char *path, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        int r;

        r = read_file(path, &data, &size);
        if (r == -EFBIG)
                return errorf(ret_error, r, "%s: larger than %d bytes", path, POLICY_FILE_MAX);
        if (r < 0)
                return errorf(ret_error, r, "%s: %s", path, strerror(-r));
        return merge_document(merged, path, data, size, ret_error);
}

/* ---- the result -------------------------------------------------------- */

static uint32_t get_u32(json_t *obj, const char *key) {
        json_int_t v = json_integer_value(json_object_get(obj, key));

        /* The schema keeps every value in range; this only guards the cast. */
        return v < 0 || v > UINT32_MAX ? 0 : (uint32_t) v;
}

static heal_budget_spec get_budget(json_t *obj) {
        return (heal_budget_spec){ .actions = get_u32(obj, "actions"), .per_s = get_u32(obj, "per_s") };
}

static int get_strv(json_t *obj, const char *key, char ***ret) {
        return heal_json_to_strv(json_object_get(obj, key), ret);
}

static int fill_class(heal_class_policy *c, const char *name, json_t *obj) {
        int mode = heal_mode_from_string(json_string_value(json_object_get(obj, "mode")));
        int tier = heal_tier_from_string(json_string_value(json_object_get(obj, "tier")));
        int r;

        if (mode < 0 || tier < 0)
                return -EINVAL;
        c->name = strdup(name);
        if (!c->name)
                return -ENOMEM;
        c->json = json_incref(obj);
        c->mode = (heal_mode) mode;
        c->tier = (heal_tier) tier;
        c->target_budget = get_budget(json_object_get(obj, "target_budget"));
        c->budget = get_budget(json_object_get(obj, "budget"));
        c->breaker = (heal_breaker_spec){
                .failures = get_u32(json_object_get(obj, "breaker"), "failures"),
                .cooldown_s = get_u32(json_object_get(obj, "breaker"), "cooldown_s"),
        };
        c->idempotency_s = get_u32(obj, "idempotency_s");
        c->dwell_s = get_u32(obj, "dwell_s");
        c->settle_s = get_u32(obj, "settle_s");
        c->delay_s = get_u32(obj, "delay_s");
        c->approve_expiry_s = get_u32(obj, "approve_expiry_s");
        r = get_strv(obj, "targets", &c->targets);
        if (r < 0)
                return r;
        return get_strv(obj, "exclude", &c->exclude);
}

static int class_cmp(const void *a, const void *b) {
        return strcmp(((const heal_class_policy *) a)->name, ((const heal_class_policy *) b)->name);
}

static int fill_policy(heal_policy *p) {
        json_t *global = json_object_get(p->merged, "global");
        json_t *escalate = json_object_get(global, "escalate");
        json_t *classes = json_object_get(p->merged, "classes");
        const char *command = json_string_value(json_object_get(escalate, "command"));
        const char *name;
        json_t *c;
        int r;

        p->global_budget = get_budget(json_object_get(global, "budget"));
        p->escalate_timeout_s = get_u32(escalate, "timeout_s");
        if (command) {
                p->escalate_command = strdup(command);
                if (!p->escalate_command)
                        return -ENOMEM;
        }
        p->classes = calloc(json_object_size(classes) ?: 1, sizeof(heal_class_policy));
        if (!p->classes)
                return -ENOMEM;
        json_object_foreach(classes, name, c) {
                r = fill_class(&p->classes[p->n_classes++], name, c);
                if (r < 0)
                        return r;
        }
        if (p->n_classes > 0)
                qsort(p->classes, p->n_classes, sizeof(heal_class_policy), class_cmp);
        return 0;
}

/* Takes @merged; defaults, digest and the C view. */
static int policy_build(json_t *merged, heal_policy **ret, char **ret_error) {
        _cleanup_(heal_policy_freep) heal_policy *p = calloc(1, sizeof(heal_policy));
        _cleanup_free_ char *canonical = NULL;
        int r;

        if (!p) {
                json_decref(merged);
                return -ENOMEM;
        }
        p->merged = merged;
        r = heal_schema_apply_defaults(p->merged, ret_error);
        if (r < 0)
                return r;
        canonical = json_dumps(p->merged, JSON_COMPACT | JSON_SORT_KEYS);
        if (!canonical)
                return -ENOMEM;
        heal_fnv1a64_hex(canonical, strlen(canonical), p->digest);
        r = fill_policy(p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- drop-in dirs ------------------------------------------------------ */

typedef struct dropin {
        char *name;
        char *path;   /* NULL: masked (a symlink to /dev/null, as with systemd drop-ins) */
} dropin;

typedef struct dropins {
        dropin *v;
        size_t n, cap;
} dropins;

static void dropins_done(dropins *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].name);
                free(l->v[i].path);
        }
        free(l->v);
}

/* A later dir replaces the entry of the same name. Takes @path. */
static int dropins_put(dropins *l, const char *name, char *path) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->v[i].name, name) == 0) {
                        free(l->v[i].path);
                        l->v[i].path = path;
                        return 0;
                }
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                dropin *nv = reallocarray(l->v, cap, sizeof(dropin));
                if (!nv)
                        goto oom;
                l->v = nv;
                l->cap = cap;
        }
        l->v[l->n].name = strdup(name);
        if (!l->v[l->n].name)
                goto oom;
        l->v[l->n++].path = path;
        return 0;
oom:
        free(path);
        return -ENOMEM;
}

static bool is_policy_name(const char *name) {
        size_t n = strlen(name);

        return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0;
}

static int collect_dir(dropins *l, const char *dir, char **ret_error) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;

        if (!d && errno == ENOENT)
                return 0;
        if (!d)
                return errorf(ret_error, -errno, "%s: %s", dir, strerror(errno));
        for (errno = 0; (de = readdir(d)); errno = 0) {
                struct stat st;
                char *path = NULL;
                int r;

                if (!is_policy_name(de->d_name))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
                        if (errno == ENOENT) /* dangling symlink */
                                continue;
                        return errorf(ret_error, -errno, "%s/%s: %s", dir, de->d_name, strerror(errno));
                }
                if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
                        path = NULL;
                else if (!S_ISREG(st.st_mode))
                        continue;
                else if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        return -ENOMEM;
                r = dropins_put(l, de->d_name, path);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return errorf(ret_error, -errno, "%s: %s", dir, strerror(errno));
        return 0;
}

static int dropin_cmp(const void *a, const void *b) {
        return strcmp(((const dropin *) a)->name, ((const dropin *) b)->name);
}

static int no_files_error(const char *const *dirs, char **ret_error) {
        _cleanup_free_ char *list = NULL;
        size_t len = 1;

        for (const char *const *d = dirs; *d; d++)
                len += strlen(*d) + 2;
        list = calloc(len, 1);
        if (!list)
                return -ENOMEM;
        for (const char *const *d = dirs; *d; d++) {
                if (d != dirs)
                        strcat(list, ", ");
                strcat(list, *d);
        }
        return errorf(ret_error, -ENOENT, "no policy files (*.json) in %s", *list ? list : "(no dirs)");
}

int heal_policy_load(const char *const *dirs, heal_policy **ret, char **ret_error) {
        _cleanup_(dropins_done) dropins l = {};
        _cleanup_json_ json_t *merged = NULL;
        size_t used = 0;
        int r;

        if (!dirs)
                dirs = heal_path_policy_dirs();
        for (const char *const *d = dirs; *d; d++) {
                r = collect_dir(&l, *d, ret_error);
                if (r < 0)
                        return r;
        }
        if (l.n > 0)
                qsort(l.v, l.n, sizeof(dropin), dropin_cmp);

        merged = json_object();
        if (!merged)
                return -ENOMEM;
        for (size_t i = 0; i < l.n; i++) {
                if (!l.v[i].path)
                        continue;
                r = merge_file(merged, l.v[i].path, ret_error);
                if (r < 0)
                        return r;
                used++;
        }
        if (used == 0)
                return no_files_error(dirs, ret_error);
        return policy_build(TAKE_PTR(merged), ret, ret_error);
}

int heal_policy_load_files(const char *const *files, heal_policy **ret, char **ret_error) {
        _cleanup_json_ json_t *merged = json_object();
        int r;

        if (!merged)
                return -ENOMEM;
        if (!files || !*files)
                return errorf(ret_error, -ENOENT, "no policy files given");
        for (const char *const *f = files; *f; f++) {
                r = merge_file(merged, *f, ret_error);
                if (r < 0)
                        return r;
        }
        return policy_build(TAKE_PTR(merged), ret, ret_error);
}

int heal_policy_load_buffers(const heal_policy_buffer *bufs, size_t n, heal_policy **ret, char **ret_error) {
        _cleanup_json_ json_t *merged = json_object();
        int r;

        if (!merged)
                return -ENOMEM;
        if (n == 0)
                return errorf(ret_error, -ENOENT, "no policy documents given");
        for (size_t i = 0; i < n; i++) {
                r = merge_document(merged, bufs[i].name ?: "(buffer)", bufs[i].data, bufs[i].size, ret_error);
                if (r < 0)
                        return r;
        }
        return policy_build(TAKE_PTR(merged), ret, ret_error);
}

heal_policy *heal_policy_free(heal_policy *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_classes; i++) {
                heal_class_policy *c = &p->classes[i];
                free(c->name);
                strv_free(c->targets);
                strv_free(c->exclude);
                json_decref(c->json);
        }
        free(p->classes);
        free(p->escalate_command);
        json_decref(p->merged);
        free(p);
        return NULL;
}

/* ---- queries ----------------------------------------------------------- */

const heal_class_policy *heal_policy_class(const heal_policy *p, const char *name) {
        if (!p || !name)
                return NULL;
        for (size_t i = 0; i < p->n_classes; i++)
                if (strcmp(p->classes[i].name, name) == 0)
                        return &p->classes[i];
        return NULL;
}

static bool matches_any(char *const *globs, const char *s) {
        for (char *const *g = globs; g && *g; g++)
                if (fnmatch(*g, s, 0) == 0)
                        return true;
        return false;
}

bool heal_class_targets(const heal_class_policy *c, const char *target) {
        if (!c || !target)
                return false;
        return matches_any(c->targets, target) && !matches_any(c->exclude, target);
}
