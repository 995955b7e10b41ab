/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The last journal lines of one unit, read with sd-journal, for the context a
 * human gets with an escalation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "heal/audit.h"
#include "heal/journal-tail.h"

static int add_unit_match(sd_journal *j, const char *field, const char *unit) {
        _cleanup_free_ char *match = NULL;

        if (asprintf(&match, "%s=%s", field, unit) < 0)
                return -ENOMEM;
        return sd_journal_add_match(j, match, 0);
}

/* "2024-05-01T12:00:00.123456Z message" of the current entry. */
static json_t *entry_line(sd_journal *j) {
        _cleanup_free_ char *head = NULL, *line = NULL;
        const void *data = NULL;
        const char *msg = "";
        size_t len = 0, msg_len = 0, head_len;
        uint64_t usec = 0;
        struct tm tm = {};
        time_t sec;
        int k;

        if (sd_journal_get_realtime_usec(j, &usec) >= 0) {
                sec = (time_t) (usec / 1000000);
                (void) gmtime_r(&sec, &tm);
        }
        if (sd_journal_get_data(j, "MESSAGE", &data, &len) >= 0 && len >= strlen("MESSAGE=")) {
                msg = (const char *) data + strlen("MESSAGE=");
                msg_len = len - strlen("MESSAGE=");
        }

        k = asprintf(&head, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned) (usec % 1000000));
        if (k < 0)
                return NULL;
        head_len = (size_t) k;

        /* The message may hold any bytes (NULs included): append it by length. */
        line = malloc(head_len + msg_len + 1);
        if (!line)
                return NULL;
        memcpy(line, head, head_len);
        memcpy(line + head_len, msg, msg_len);
        return heal_json_string_lossy(line, head_len + msg_len);
}

int heal_journal_tail(const char *unit, unsigned n, json_t **ret_lines) {
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        _cleanup_json_ json_t *lines = NULL;
        int r;

        if (!unit || !*unit || !ret_lines)
                return -EINVAL;

        lines = json_array();
        if (!lines)
                return -ENOMEM;

        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return r;
        r = add_unit_match(j, "_SYSTEMD_UNIT", unit);
        if (r >= 0)
                r = sd_journal_add_disjunction(j);
        if (r >= 0)
                r = add_unit_match(j, "UNIT", unit);
        if (r >= 0)
                r = sd_journal_seek_tail(j);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < n; i++) {
                json_t *line;

                r = sd_journal_previous(j);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                line = entry_line(j);
                /* Walking backwards: prepend, so the array reads oldest first. */
                if (!line || json_array_insert_new(lines, 0, line) < 0)
                        return -ENOMEM;
        }

        r = (int) json_array_size(lines);
        *ret_lines = TAKE_PTR(lines);
        return r;
}
