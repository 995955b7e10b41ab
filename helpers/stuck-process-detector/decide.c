/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decide: targets, heartbeat locations and thresholds from the policy; the intent of each confirmed class. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/strv.h"
#include "decide.h"

/* Defaults when a class object lacks a key (the loader fills them in; hand-built policies may not). */
#define DEFAULT_HEARTBEAT_STALE_S 60U
#define DEFAULT_PSI_STALL_PERCENT 50U
#define DEFAULT_ZOMBIES_MAX 50U

static uint32_t get_u32(const heal_class_policy *c, const char *key, uint32_t def) {
        json_t *v = c && c->json ? json_object_get(c->json, key) : NULL;

        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
                return def;
        return (uint32_t) json_integer_value(v);
}

void stuck_config_from_policy(const heal_policy *p, stuck_config *ret) {
        stuck_config c = {};

        if (p) {
                c.stuck = heal_policy_class(p, STUCK_CLASS);
                c.d_state = heal_policy_class(p, STUCK_CLASS_D_STATE);
                c.zombies = heal_policy_class(p, STUCK_CLASS_ZOMBIES);
        }
        c.heartbeats = c.stuck && c.stuck->json ? json_object_get(c.stuck->json, "heartbeat") : NULL;
        if (!json_is_object(c.heartbeats))
                c.heartbeats = NULL;
        c.heartbeat_stale_s = get_u32(c.stuck, "heartbeat_stale_s", DEFAULT_HEARTBEAT_STALE_S);
        c.psi_stall_percent = get_u32(c.stuck, "psi_stall_percent", DEFAULT_PSI_STALL_PERCENT);
        c.zombies_max = get_u32(c.zombies, "zombies_max", DEFAULT_ZOMBIES_MAX);
        *ret = c;
}

/* ---- targets ------------------------------------------------------------------------------------- */

static bool is_service(const char *unit) {
        size_t n = strlen(unit);

        return n > 8 && strcmp(unit + n - 8, ".service") == 0;
}

static bool matches_any(char *const *globs, const char *s) {
        for (char *const *g = globs; g && *g; g++)
                if (fnmatch(*g, s, 0) == 0)
                        return true;
        return false;
}

bool stuck_class_targets(const heal_class_policy *class, const char *unit, bool enrolled) {
        if (!class || !unit || !is_service(unit))
                return false;
        if (enrolled)
                return !matches_any(class->exclude, unit);
        return heal_class_targets(class, unit);
}

bool stuck_unit_targeted(const stuck_config *c, const char *unit, bool enrolled) {
        return stuck_class_targets(c->stuck, unit, enrolled) || stuck_class_targets(c->d_state, unit, enrolled) ||
               stuck_class_targets(c->zombies, unit, enrolled);
}

int stuck_target_patterns(const stuck_config *c, char *const *enrolled, char ***ret) {
        const heal_class_policy *classes[] = { c->stuck, c->d_state, c->zombies };
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(classes); i++)
                for (char **g = classes[i] ? classes[i]->targets : NULL; g && *g; g++)
                        if (heal_strv_add_unique(&l, &n, *g) < 0)
                                return -ENOMEM;
        for (char *const *e = enrolled; e && *e; e++)
                if (heal_strv_add_unique(&l, &n, *e) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(l);
        return (int) n;
}

/* ---- heartbeats ---------------------------------------------------------------------------------- */

void stuck_heartbeat_spec_done(stuck_heartbeat_spec *h) {
        if (!h)
                return;
        free(h->file);
        *h = (stuck_heartbeat_spec) {};
}

static bool is_glob(const char *s) {
        return strpbrk(s, "*?[") != NULL;
}

/* Is @a a better match than @b? Exact beats glob, then longer, then lexically first. */
static bool more_specific(const char *a, const char *b) {
        if (!b)
                return true;
        if (is_glob(a) != is_glob(b))
                return !is_glob(a);
        if (strlen(a) != strlen(b))
                return strlen(a) > strlen(b);
        return strcmp(a, b) < 0;
}

int stuck_expand_path(const char *tmpl, const char *unit, char **ret) {
        const char *at = strchr(unit, '@'), *dot = strrchr(unit, '.');
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        FILE *f;

        if (!dot)
                dot = unit + strlen(unit);
        f = open_memstream(&out, &len);
        if (!f)
                return -ENOMEM;
        for (const char *p = tmpl; *p; p++) {
                if (*p != '%') {
                        fputc(*p, f);
                        continue;
                }
                switch (*++p) {
                case 'n':
                        fputs(unit, f);
                        break;
                case 'i':
                        if (at && at < dot)
                                fwrite(at + 1, 1, (size_t) (dot - at - 1), f);
                        break;
                case 'p':
                        fwrite(unit, 1, (size_t) ((at && at < dot ? at : dot) - unit), f);
                        break;
                case '%':
                        fputc('%', f);
                        break;
                default:
                        fclose(f);
                        return -EINVAL;
                }
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

static int spec_from_entry(json_t *e, const char *unit, stuck_heartbeat_spec *h) {
        const char *source = json_string_value(json_object_get(e, "source"));
        const char *file = json_string_value(json_object_get(e, "file"));

        if (!json_is_object(e))
                return -EINVAL;
        if (!source || strcmp(source, "file") == 0) {
                if (!file || file[0] != '/')
                        return -EINVAL;
                h->source = STUCK_HEARTBEAT_FILE;
                return stuck_expand_path(file, unit, &h->file);
        }
        if (strcmp(source, "watchdog") == 0 && !file) {
                h->source = STUCK_HEARTBEAT_WATCHDOG;
                return 0;
        }
        return -EINVAL;
}

int stuck_heartbeat_for(const stuck_config *c, const char *unit, stuck_heartbeat_spec *ret) {
        _cleanup_(stuck_heartbeat_spec_done) stuck_heartbeat_spec h = {};
        const char *key, *best = NULL;
        json_t *e, *best_e = NULL;
        int r;

        json_object_foreach(c->heartbeats, key, e)
                if (fnmatch(key, unit, 0) == 0 && more_specific(key, best)) {
                        best = key;
                        best_e = e;
                }
        if (best_e) {
                r = spec_from_entry(best_e, unit, &h);
                if (r < 0)
                        return r;
                h.pattern = best;
        }
        *ret = h;
        h = (stuck_heartbeat_spec) {};
        return 0;
}

/* ---- PSI ----------------------------------------------------------------------------------------- */

int stuck_psi_stalled(const stuck_cgroup_sample *s, uint32_t percent, uint32_t *ret_worst) {
        uint32_t worst = 0;
        bool known = false;

        for (int i = 0; i < _STUCK_PSI_MAX; i++) {
                if (!s->psi[i].known)
                        continue;
                known = true;
                if (s->psi[i].some_avg60 > worst)
                        worst = s->psi[i].some_avg60;
        }
        if (!known)
                return -1;
        if (ret_worst)
                *ret_worst = worst;
        return worst >= percent * 100U;
}

/* ---- intents ------------------------------------------------------------------------------------- */

void stuck_intent_done(stuck_intent *i) {
        if (!i)
                return;
        free(i->intent);
        *i = (stuck_intent) {};
}

int stuck_decide(const char *class, const char *unit, const char *evidence, stuck_intent *ret) {
        stuck_intent i = { .class = class, .tier_override = -1 };
        int r;

        if (strcmp(class, STUCK_CLASS) == 0) {
                r = asprintf(&i.intent, "SIGABRT the main process of %s (a core dump for the post-mortem), then "
                                        "see the unit come back and make progress", unit);
                i.rollback = "irreversible: the stuck process is gone (its core dump stays for the post-mortem); "
                             "the unit runs again";
                i.kill = true;
        } else if (strcmp(class, STUCK_CLASS_D_STATE) == 0) {
                /* A task in D cannot be killed: only a human (or a reboot) can clear it. */
                r = asprintf(&i.intent, "hand %s to a human: %s", unit,
                             evidence ?: "a task sits in uninterruptible sleep");
                i.rollback = "none needed: nothing is done";
                i.tier_override = HEAL_TIER_HUMAN;
        } else if (strcmp(class, STUCK_CLASS_ZOMBIES) == 0) {
                /* Reaping is the parent's job; killing it is a human's call. */
                r = asprintf(&i.intent, "hand %s to a human: %s", unit, evidence ?: "zombies pile up under one parent");
                i.rollback = "none needed: nothing is done";
                i.tier_override = HEAL_TIER_HUMAN;
        } else
                return -EINVAL;
        if (r < 0)
                return -ENOMEM;
        *ret = i;
        return 0;
}
