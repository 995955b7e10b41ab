/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reading fields of stored JSON records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heal/cleanup.h"
#include "heal/json-util.h"

int heal_json_get_u64(const json_t *obj, const char *field, uint64_t *ret) {
        json_t *v = json_object_get(obj, field);

        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

int heal_json_get_u64_or_zero(const json_t *obj, const char *field, uint64_t *ret) {
        if (!json_object_get(obj, field)) {
                *ret = 0;
                return 0;
        }
        return heal_json_get_u64(obj, field, ret);
}

int heal_json_to_strv(const json_t *a, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(json_array_size(a) + 1, sizeof(char *));
        size_t i;
        json_t *e;

        if (!l)
                return -ENOMEM;
        json_array_foreach(a, i, e) {
                l[i] = strdup(json_string_value(e) ?: "");
                if (!l[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
