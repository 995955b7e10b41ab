/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The last lines the journal holds about one unit, for escalations. */
#pragma once

#include <jansson.h>

/**
 * heal_journal_tail() - the last @n journal entries of @unit, oldest first.
 * @unit: entries logged by the unit (_SYSTEMD_UNIT=) and by systemd about it (UNIT=).
 * @ret_lines: on success, a new JSON array of strings
 *   "YYYY-MM-DDTHH:MM:SS.uuuuuuZ message" (invalid UTF-8 replaced).
 *
 * Reads the local journal files; an empty journal (or one this user may not
 * read) gives an empty array. Returns the number of lines, or -errno.
 */
int heal_journal_tail(const char *unit, unsigned n, json_t **ret_lines);
