/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsers of the kernel's text files: /proc/PID/stat, io and sched, and the cgroup's cpu.stat, io.stat
 * and *.pressure. Pure functions on bytes, so the fuzzers reach them directly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"
#include "util.h"

/* Skip one space-separated token (a field we do not need: it may be signed). */
static int skip_field(const char **p, const char *end) {
        const char *s = *p;
        if (s >= end || *s == ' ' || *s == '\n')
                return -EBADMSG;
        while (s < end && *s != ' ' && *s != '\n')
                s++;
        *p = s;
        return 0;
}

static int expect_char(const char **p, const char *end, char c) {
        if (*p >= end || **p != c)
                return -EBADMSG;
        (*p)++;
        return 0;
}

int stuck_parse_stat(const char *text, size_t len, stuck_stat *ret) {
        const char *end = text + len, *p = text, *open, *close;
        uint64_t pid, state_ppid, flags, utime, stime, threads, start;

        /* "PID (COMM) S ...": comm is whatever lies between the first '(' and the LAST ')', since
         * the process chooses its own comm and may put spaces and parentheses in it. */
        if (stuck_parse_u64(&p, end, &pid) < 0 || expect_char(&p, end, ' ') < 0 || p >= end || *p != '(')
                return -EBADMSG;
        open = p;
        close = memrchr(open, ')', (size_t) (end - open));
        if (!close)
                return -EBADMSG;
        p = close + 1;

        if (expect_char(&p, end, ' ') < 0 || p >= end)
                return -EBADMSG;
        char state = *p++;
        if (state < 'A' || state > 'z')
                return -EBADMSG;
        if (expect_char(&p, end, ' ') < 0 || stuck_parse_u64(&p, end, &state_ppid) < 0)
                return -EBADMSG;
        /* fields 5..8: pgrp session tty_nr tpgid (tpgid may be -1) */
        for (int i = 0; i < 4; i++)
                if (expect_char(&p, end, ' ') < 0 || skip_field(&p, end) < 0)
                        return -EBADMSG;
        if (expect_char(&p, end, ' ') < 0 || stuck_parse_u64(&p, end, &flags) < 0)
                return -EBADMSG;
        /* fields 10..13: minflt cminflt majflt cmajflt */
        for (int i = 0; i < 4; i++)
                if (expect_char(&p, end, ' ') < 0 || skip_field(&p, end) < 0)
                        return -EBADMSG;
        if (expect_char(&p, end, ' ') < 0 || stuck_parse_u64(&p, end, &utime) < 0 ||
            expect_char(&p, end, ' ') < 0 || stuck_parse_u64(&p, end, &stime) < 0)
                return -EBADMSG;
        /* fields 16..19: cutime cstime priority nice */
        for (int i = 0; i < 4; i++)
                if (expect_char(&p, end, ' ') < 0 || skip_field(&p, end) < 0)
                        return -EBADMSG;
        if (expect_char(&p, end, ' ') < 0 || stuck_parse_u64(&p, end, &threads) < 0)
                return -EBADMSG;
        /* field 21: itrealvalue */
        if (expect_char(&p, end, ' ') < 0 || skip_field(&p, end) < 0)
                return -EBADMSG;
        if (expect_char(&p, end, ' ') < 0 || stuck_parse_u64(&p, end, &start) < 0)
                return -EBADMSG;
        if (pid > INT32_MAX || state_ppid > INT32_MAX || flags > UINT32_MAX || threads > INT32_MAX)
                return -EBADMSG;

        char *comm = strndup(open + 1, (size_t) (close - open - 1));
        if (!comm)
                return -ENOMEM;
        *ret = (stuck_stat) {
                .comm = comm,
                .state = state,
                .ppid = (pid_t) state_ppid,
                .flags = (unsigned) flags,
                .utime_ticks = utime,
                .stime_ticks = stime,
                .n_threads = (long) threads,
                .start_ticks = start,
        };
        return 0;
}

/* "0.00".."100.00" into hundredths; the kernel prints exactly two decimals. */
static int parse_centi(const char **p, const char *end, uint32_t *ret) {
        uint64_t whole, frac = 0;
        const char *s;

        if (stuck_parse_u64(p, end, &whole) < 0 || whole > 100)
                return -EBADMSG;
        if (*p < end && **p == '.') {
                (*p)++;
                s = *p;
                if (stuck_parse_u64(p, end, &frac) < 0 || *p - s != 2)
                        return -EBADMSG;
        }
        *ret = (uint32_t) (whole * 100 + frac);
        return 0;
}

static int expect_word(const char **p, const char *end, const char *w) {
        size_t n = strlen(w);
        if ((size_t) (end - *p) < n || memcmp(*p, w, n) != 0)
                return -EBADMSG;
        *p += n;
        return 0;
}

int stuck_parse_pressure(const char *text, size_t len, stuck_psi *ret) {
        const char *end = text + len, *p = text;
        stuck_psi psi = { .known = true };

        /* "some" always comes first; the "full" line after it (absent for cpu on old kernels) is not needed. */
        if (expect_word(&p, end, "some avg10=") < 0 || parse_centi(&p, end, &psi.some_avg10) < 0 ||
            expect_word(&p, end, " avg60=") < 0 || parse_centi(&p, end, &psi.some_avg60) < 0 ||
            expect_word(&p, end, " avg300=") < 0 || parse_centi(&p, end, &psi.some_avg300) < 0 ||
            expect_word(&p, end, " total=") < 0 || stuck_parse_u64(&p, end, &psi.some_total_usec) < 0)
                return -EBADMSG;
        if (p < end && *p != '\n')
                return -EBADMSG;
        *ret = psi;
        return 0;
}

/* Next line [*p, eol) of a text; false at the end. */
static bool next_line(const char **p, const char *end, const char **ret_start, const char **ret_eol) {
        if (*p >= end)
                return false;
        const char *nl = memchr(*p, '\n', (size_t) (end - *p));
        *ret_start = *p;
        *ret_eol = nl ? nl : end;
        *p = nl ? nl + 1 : end;
        return true;
}

int stuck_parse_io_stat(const char *text, size_t len, uint64_t *ret) {
        const char *end = text + len, *p = text, *line, *eol;
        uint64_t sum = 0;

        /* "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device; keys we do not sum are skipped. */
        while (next_line(&p, end, &line, &eol)) {
                if (line == eol)
                        continue;
                const char *s = memchr(line, ' ', (size_t) (eol - line));
                if (!s)
                        return -EBADMSG;
                while (s < eol) {
                        s++;
                        const char *eq = memchr(s, '=', (size_t) (eol - s));
                        if (!eq)
                                return -EBADMSG;
                        size_t klen = (size_t) (eq - s);
                        bool want = (klen == 6 && memcmp(s, "rbytes", 6) == 0) ||
                                    (klen == 6 && memcmp(s, "wbytes", 6) == 0);
                        const char *v = eq + 1;
                        uint64_t n;
                        if (stuck_parse_u64(&v, eol, &n) < 0 || (v < eol && *v != ' '))
                                return -EBADMSG;
                        if (want && __builtin_add_overflow(sum, n, &sum))
                                return -EBADMSG;
                        s = v;
                }
        }
        *ret = sum;
        return 0;
}

/* "key value" lines (cpu.stat) or "key: value" lines (/proc/PID/io). */
static int find_keyed_u64(const char *text, size_t len, const char *key, const char *sep, uint64_t *ret) {
        const char *end = text + len, *p = text, *line, *eol;
        size_t klen = strlen(key), slen = strlen(sep);

        while (next_line(&p, end, &line, &eol)) {
                if ((size_t) (eol - line) < klen + slen || memcmp(line, key, klen) != 0 ||
                    memcmp(line + klen, sep, slen) != 0)
                        continue;
                const char *v = line + klen + slen;
                uint64_t n;
                if (stuck_parse_u64(&v, eol, &n) < 0 || v != eol)
                        return -EBADMSG;
                *ret = n;
                return 0;
        }
        return -ENODATA;
}

int stuck_parse_cpu_stat(const char *text, size_t len, uint64_t *ret) {
        return find_keyed_u64(text, len, "usage_usec", " ", ret);
}

int stuck_parse_proc_io(const char *text, size_t len, uint64_t *ret) {
        uint64_t rchar, wchar, sum;

        if (find_keyed_u64(text, len, "rchar", ": ", &rchar) < 0 ||
            find_keyed_u64(text, len, "wchar", ": ", &wchar) < 0 || __builtin_add_overflow(rchar, wchar, &sum))
                return -EBADMSG;
        *ret = sum;
        return 0;
}

int stuck_parse_sched_ns(const char *text, size_t len, const char *name, uint64_t *ret_nsec) {
        const char *end = text + len, *p = text, *line, *eol;
        size_t nlen = strlen(name);

        /* "se.statistics.block_start                    :     12345.678901" (ms, 6 decimals). */
        while (next_line(&p, end, &line, &eol)) {
                const char *colon = memchr(line, ':', (size_t) (eol - line));
                if (!colon)
                        continue;
                const char *kend = colon;
                while (kend > line && kend[-1] == ' ')
                        kend--;
                size_t klen = (size_t) (kend - line);
                if (klen < nlen || memcmp(kend - nlen, name, nlen) != 0 ||
                    (klen > nlen && kend[-(ptrdiff_t) nlen - 1] != '.'))
                        continue;

                const char *v = colon + 1, *f;
                uint64_t ms, frac = 0, ns;
                while (v < eol && *v == ' ')
                        v++;
                if (stuck_parse_u64(&v, eol, &ms) < 0)
                        return -EBADMSG;
                if (v < eol && *v == '.') {
                        f = ++v;
                        if (stuck_parse_u64(&v, eol, &frac) < 0 || v - f != 6)
                                return -EBADMSG;
                }
                if (v != eol || __builtin_mul_overflow(ms, 1000000u, &ns) || __builtin_add_overflow(ns, frac, &ns))
                        return -EBADMSG;
                *ret_nsec = ns;
                return 0;
        }
        return -ENODATA;
}
