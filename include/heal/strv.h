/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Growing NULL-terminated string lists (strv), freed with strv_free() (heal/cleanup.h). */
#pragma once

#include <stddef.h>

/**
 * heal_strv_consume() - append @s to the strv *@l of *@n entries.
 * @s: taken over in every case: in the list on success, freed on failure;
 *   NULL (a failed strdup() of the caller) is -ENOMEM.
 * *@l may be NULL (a new list). Returns 0 or -ENOMEM (*@l unchanged then).
 */
int heal_strv_consume(char ***l, size_t *n, char *s);

/**
 * heal_strv_add_unique() - append a copy of @s to the strv *@l of *@n entries
 * unless it is there already (a small set kept in insertion order).
 * @s: NULL adds nothing.
 * Returns 1 added, 0 already there (or NULL), -ENOMEM (*@l unchanged then).
 */
int heal_strv_add_unique(char ***l, size_t *n, const char *s);
