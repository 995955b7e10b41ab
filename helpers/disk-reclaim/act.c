/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Act and verify for one reclaim pass: remove exactly the planned files (the
 * core re-checks each one), vacuum the journal if the plan says so, then check
 * with statvfs that the free space rose by about what was removed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "heal/fileio.h"
#include "journal-vacuum.h"
#include "run.h"

/* Free space may rise by less than was removed: metadata, rounding, another
 * writer. Less than this short of it is still "about what was removed". */
#define VERIFY_SLACK_MIN_BYTES (UINT64_C(1) << 20)
#define VERIFY_SLACK_DIVISOR 10U

void disk_act_ctx_done(disk_act_ctx *c) {
        reclaim_result_done(&c->result);
}

static int free_bytes_now(const char *path, uint64_t *ret) {
        struct statvfs sv;

        if (statvfs(path, &sv) < 0)
                return -errno;
        *ret = (uint64_t)sv.f_bfree * sv.f_frsize;
        return 0;
}

static json_t *result_facts(const disk_act_ctx *c) {
        _cleanup_json_ json_t *srcs = json_array(), *o = NULL;

        if (!srcs)
                return NULL;
        for (size_t i = 0; i < c->result.n_sources && i < c->plan->n_sources; i++) {
                const reclaim_source_result *sr = &c->result.sources[i];
                _cleanup_json_ json_t *skipped = json_object();

                if (!skipped)
                        return NULL;
                for (int k = RECLAIM_SKIP_GONE; k < _RECLAIM_OUTCOME_MAX; k++)
                        if (sr->skipped[k] > 0 &&
                            json_object_set_new(skipped, reclaim_outcome_to_string((reclaim_outcome)k),
                                                json_integer((json_int_t)sr->skipped[k])) < 0)
                                return NULL;
                if (json_array_append_new(
                            srcs, json_pack("{s:s, s:I, s:I, s:O}", "name", c->plan->sources[i].name,
                                            "freed_bytes", (json_int_t)sr->freed_bytes, "freed_files",
                                            (json_int_t)sr->freed_files, "skipped", skipped)) < 0)
                        return NULL;
        }
        o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:s?, s:O}", "freed_bytes",
                      (json_int_t)c->result.freed_bytes, "freed_files", (json_int_t)c->result.freed_files,
                      "skipped_files", (json_int_t)c->result.skipped_files, "dirs_removed",
                      (json_int_t)c->result.dirs_removed, "journal_freed_bytes",
                      (json_int_t)c->journal_freed, "journal_error",
                      c->journal_error ? strerror(c->journal_error) : NULL, "sources", srcs);
        return TAKE_PTR(o);
}

int disk_act(void *userdata, char **ret_detail) {
        disk_act_ctx *c = userdata;
        _cleanup_free_ char *freed = NULL;
        int r, n;

        r = free_bytes_now(c->m->target, &c->free_before);
        if (r < 0) {
                if (asprintf(ret_detail, "statvfs %s: %s", c->m->target, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        n = reclaim_plan_execute(c->plan, &(reclaim_run_opts){.workers = c->dr->settings.workers, .ping = {.fn = disk_ping}},
                                 &c->result);
        c->executed = true;
        if (n >= 0 && c->journal) {
                r = disk_journal_vacuum(c->journal_size, c->journal->vacuum_time_s, &c->journal_freed);
                c->journal_error = r < 0 ? -r : 0;
        }
        /* The audit records after this one carry what was done, per source. */
        (void)json_object_set_new(c->facts, "result", result_facts(c));

        freed = disk_format_bytes(c->result.freed_bytes + c->journal_freed);
        if (asprintf(ret_detail, "removed %" PRIu64 " of %zu planned files and freed %s%s%s%s%s",
                     c->result.freed_files, c->plan->n_files, freed ?: "?",
                     c->result.skipped_files > 0 ? " (the rest changed since planning and were kept)" : "",
                     c->journal ? "; journal vacuum " : "",
                     c->journal ? (c->journal_error ? "failed: " : "done") : "",
                     c->journal_error ? strerror(c->journal_error) : "") < 0)
                *ret_detail = NULL;
        return n < 0 ? n : 0;
}

/* Sleeps @usec, pinging the watchdog every second. */
static void settle(uint64_t usec) {
        while (usec > 0) {
                uint64_t step = usec > USEC_PER_SEC ? USEC_PER_SEC : usec;
                struct timespec ts = {.tv_sec = (time_t)(step / USEC_PER_SEC),
                                      .tv_nsec = (long)(step % USEC_PER_SEC) * 1000};

                nanosleep(&ts, NULL);
                disk_ping(NULL);
                usec -= step;
        }
}

int disk_verify(void *userdata, char **ret_detail) {
        disk_act_ctx *c = userdata;
        _cleanup_free_ char *rose_s = NULL, *removed_s = NULL, *summary = NULL;
        uint64_t after = 0, rose, removed = c->result.freed_bytes + c->journal_freed, slack;
        int r;

        settle(c->settle_usec);
        r = free_bytes_now(c->m->target, &after);
        if (r < 0) {
                if (asprintf(ret_detail, "statvfs %s: %s", c->m->target, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        (void)disk_mount_measure(c->m);
        rose = after > c->free_before ? after - c->free_before : 0;
        slack = removed / VERIFY_SLACK_DIVISOR;
        if (slack < VERIFY_SLACK_MIN_BYTES)
                slack = VERIFY_SLACK_MIN_BYTES;
        rose_s = disk_format_bytes(rose);
        removed_s = disk_format_bytes(removed);
        summary = disk_mount_summary(c->m);
        if (!rose_s || !removed_s || !summary)
                return -ENOMEM;

        if (removed == 0)
                r = asprintf(ret_detail, "nothing was removed: all %zu planned files changed since planning",
                             c->plan->n_files);
        else if (rose + slack < removed)
                r = asprintf(
                        ret_detail,
                        "free space rose by %s but %s were removed: a removed file is probably still held "
                        "open (see disk-leaked), or another writer took the space; now %s",
                        rose_s, removed_s, summary);
        else
                r = asprintf(ret_detail, "removed %s, free space rose by %s; now %s", removed_s, rose_s,
                             summary);
        if (r < 0)
                *ret_detail = NULL;
        (void)json_object_set_new(c->facts, "after", json_string(summary));
        return removed > 0 && rose + slack >= removed;
}

/* ---- the plan file ------------------------------------------------------ */

/* Indented and newline-ended for people reading it; unsynced: it lives on /run. */
static int plan_write(const char *dir, const char *path, json_t *j) {
        _cleanup_free_ char *text = NULL, *line = NULL;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
        if (!text || asprintf(&line, "%s\n", text) < 0)
                return -ENOMEM;
        return heal_write_file_atomic_path(path, line, strlen(line), 0600, HEAL_WRITE_NOSYNC);
}

int disk_plan_file_write(const disk_act_ctx *c, const char *mode, const char *tier, const char *incident) {
        _cleanup_json_ json_t *plan = NULL, *doc = NULL, *journal = NULL;
        int r;

        r = reclaim_plan_to_json(c->plan, &plan);
        if (r < 0)
                return r;
        if (c->journal)
                journal = json_pack("{s:I, s:I, s:I}", "vacuum_size", (json_int_t)c->journal_size,
                                    "vacuum_time_s", (json_int_t)c->journal->vacuum_time_s, "freed_bytes",
                                    (json_int_t)c->journal_freed);
        doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:O, s:O?, s:o?}", "healer", DISK_HEALER,
                        "mount", c->m->target, "mode", mode, "tier", tier, "incident", incident,
                        "written_usec", (json_int_t)c->dr->now_usec, "executed", c->executed, "plan", plan,
                        "journal", journal, "result", c->executed ? result_facts(c) : NULL);
        if (!doc)
                return -ENOMEM;
        return plan_write(c->dr->plans_dir, c->plan_path, doc);
}
