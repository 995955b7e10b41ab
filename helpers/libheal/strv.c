/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Growing NULL-terminated string lists. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heal/strv.h"

int heal_strv_consume(char ***l, size_t *n, char *s) {
        char **m;

        if (!s)
                return -ENOMEM;
        m = realloc(*l, (*n + 2) * sizeof(char *));
        if (!m) {
                free(s);
                return -ENOMEM;
        }
        m[(*n)++] = s;
        m[*n] = NULL;
        *l = m;
        return 0;
}

int heal_strv_add_unique(char ***l, size_t *n, const char *s) {
        int r;

        if (!s)
                return 0;
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*l)[i], s) == 0)
                        return 0;
        r = heal_strv_consume(l, n, strdup(s));
        return r < 0 ? r : 1;
}
