/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Growing NULL-terminated string lists. */
#include <errno.h>
#include <stdlib.h>

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
