/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decide: the policy's reaction to the way the unit failed. */
#include <errno.h>
#include <string.h>

#include "reviver.h"

static reviver_reaction default_reaction(const char *result) {
        if (result && (strcmp(result, "start-limit-hit") == 0 || strcmp(result, "resources") == 0))
                return REVIVER_HUMAN;
        return REVIVER_RESTART;
}

int reviver_decide(const heal_class_policy *c, const char *result, reviver_reaction *ret) {
        json_t *map, *v;
        const char *s;

        map = c && c->json ? json_object_get(c->json, "on_result") : NULL;
        v = map && result ? json_object_get(map, result) : NULL;
        if (!v || json_is_null(v)) {
                *ret = default_reaction(result);
                return 0;
        }
        s = json_string_value(v);
        if (!s)
                return -EINVAL;
        if (strcmp(s, "restart") == 0)
                *ret = REVIVER_RESTART;
        else if (strcmp(s, "human") == 0)
                *ret = REVIVER_HUMAN;
        else
                return -EINVAL;
        return 0;
}

const char *reviver_verify_command(const heal_class_policy *c) {
        json_t *v = c && c->json ? json_object_get(c->json, "verify_command") : NULL;
        const char *s = json_string_value(v);

        return s && *s ? s : NULL;
}
