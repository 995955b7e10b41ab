/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The core of disk-reclaim: which files to remove (a plan, oldest first, just
 * enough to reach a target) and removing exactly those, safely. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "parallel.h"

/* Which timestamps the age rule looks at (a mask). Every selected stamp must be
 * older than the cutoff; btime counts only where statx() reports it. */
typedef enum reclaim_time {
        RECLAIM_TIME_ATIME = 1 << 0,
        RECLAIM_TIME_MTIME = 1 << 1,
        RECLAIM_TIME_CTIME = 1 << 2,
        RECLAIM_TIME_BTIME = 1 << 3,
        RECLAIM_TIME_ALL = (1 << 4) - 1,
} reclaim_time;

/* max_depth == 0 means this; deeper than RECLAIM_DEPTH_MAX is refused. */
#define RECLAIM_DEPTH_DEFAULT 32U
#define RECLAIM_DEPTH_MAX 256U

/* One rule of the policy: "files under @root matching @patterns, older than
 * @min_age_s, are disposable". Borrowed strings: the caller owns them and
 * keeps them alive while reclaim_plan_build() runs (the plan copies what it
 * needs). */
typedef struct reclaim_source {
        const char *name;       /* for reports, e.g. "tmp" */
        const char *root;       /* absolute, canonical, not "/", no symlink anywhere */
        char **patterns;        /* fnmatch(3) on the file name; NULL = every regular file */
        uint64_t min_age_s;
        unsigned times;         /* reclaim_time mask, not 0 */
        unsigned max_depth;     /* root's entries are depth 1; 0 = RECLAIM_DEPTH_DEFAULT */
} reclaim_source;

/* Why a planned file was not removed (reclaim_file.outcome). */
typedef enum reclaim_outcome {
        RECLAIM_PLANNED = 0,    /* not executed (yet) */
        RECLAIM_DELETED,
        RECLAIM_SKIP_GONE,      /* no longer there */
        RECLAIM_SKIP_CHANGED,   /* other inode, type, link count or device */
        RECLAIM_SKIP_YOUNGER,   /* a selected stamp moved past the cutoff */
        RECLAIM_SKIP_LOCKED,    /* someone holds a flock on it */
        RECLAIM_SKIP_PATH,      /* a parent is no longer the directory walked (symlink, mount, other inode) */
        RECLAIM_SKIP_ERROR,     /* any other failure (errno in reclaim_file.error) */
        _RECLAIM_OUTCOME_MAX,
} reclaim_outcome;

/* One file of the plan. */
typedef struct reclaim_file {
        uint32_t source;        /* index into the sources given to reclaim_plan_build() */
        uint8_t outcome;        /* reclaim_outcome, set by reclaim_plan_execute() */
        int error;              /* positive errno for RECLAIM_SKIP_ERROR */
        uint32_t dir_len;       /* relpath[0..dir_len) is the parent directory ("" at the root) */
        char *relpath;          /* relative to the source's root, owned */
        dev_t dev;
        ino_t ino;
        ino_t dir_ino;          /* inode of the parent directory when walked */
        uint64_t size;          /* st_blocks * 512: what removing it frees */
        int64_t stamp_usec;     /* sort key: the newest of the selected stamps */
} reclaim_file;

/* What the plan keeps of each source: a copy of the rule and the identity of
 * its root, checked again before anything is removed. */
typedef struct reclaim_plan_source {
        char *name;
        char *root;
        unsigned times;
        int64_t cutoff_usec;    /* now - min_age: selected stamps must be older */
        dev_t dev;              /* of the root, pinned: the walk never leaves it */
        ino_t ino;
        uint64_t mnt_id;
        bool walked;            /* false when earlier sources already covered the target */
        uint64_t scanned;       /* entries looked at */
        uint64_t unreadable_dirs; /* directories that could not be opened or read (EACCES, EIO...) */
        uint64_t eligible_files, eligible_bytes; /* everything the rule allows */
        uint64_t planned_files, planned_bytes;   /* what the plan takes */
        uint64_t peak_kept;     /* most candidates held at once while walking (memory bound) */
} reclaim_plan_source;

typedef struct reclaim_plan {
        reclaim_plan_source *sources;
        size_t n_sources;
        reclaim_file *files;    /* sources in policy order, each oldest first */
        size_t n_files;
        uint64_t need_bytes;    /* UINT64_MAX: everything eligible */
        uint64_t max_bytes, max_files;
        uint64_t now_usec;
        uint64_t planned_bytes;
        bool reached;           /* the plan frees need_bytes (or, for UINT64_MAX, takes all eligible) */
        bool capped;            /* max_bytes or max_files stopped it */
} reclaim_plan;

typedef struct reclaim_source_result {
        uint64_t freed_bytes, freed_files;
        uint64_t skipped[_RECLAIM_OUTCOME_MAX]; /* count per skip outcome */
} reclaim_source_result;

typedef struct reclaim_result {
        reclaim_source_result *sources; /* n_sources entries, owned */
        size_t n_sources;
        uint64_t freed_bytes, freed_files, skipped_files;
        uint64_t dirs_removed;
} reclaim_result;

/**
 * reclaim_source_check() - is @s a rule that can be walked safely?
 * @s: the rule.
 * @ret_error: on failure, a malloc'd sentence naming the source and the
 *   problem (may be NULL).
 *
 * The root must be absolute, canonical (no "." / ".." / empty components,
 * no trailing slash), not "/", exist, be a directory, and contain no symlink
 * in any component (it is opened component by component with O_NOFOLLOW).
 * The time mask must not be empty and max_depth must not exceed
 * RECLAIM_DEPTH_MAX.
 *
 * Return: 0 when usable; -EINVAL (bad rule), -ENOENT (root missing),
 * -ENOTDIR, -ELOOP (symlink in the root) or another -errno.
 */
int reclaim_source_check(const reclaim_source *s, char **ret_error);

/**
 * reclaim_plan_build() - walk the sources and choose what to remove.
 * @sources: the rules in policy order, most disposable first.
 * @n: number of rules.
 * @need_bytes: bytes to free; UINT64_MAX = every eligible file.
 * @max_bytes: cap on the whole plan (UINT64_MAX = none).
 * @max_files: cap on the whole plan (UINT64_MAX = none).
 * @now_usec: wall clock (CLOCK_REALTIME) the age cutoffs are computed from.
 * @ret: the plan, owned by the caller (reclaim_plan_free()).
 * @ret_error: on failure, a malloc'd sentence (may be NULL).
 *
 * Every source is checked first (reclaim_source_check()); one bad source
 * refuses the whole plan. Then each source is walked once, in order, until
 * the target is covered; within a source the oldest eligible files are taken,
 * and no more than needed (dropping the youngest selected file would miss the
 * target). Memory grows with the files selected, not with the files scanned.
 * Caps are applied oldest first: the plan stops at the first file that would
 * exceed them.
 *
 * Return: 0 when the plan reaches the target (including an empty plan when
 * need_bytes is 0 or nothing is eligible under UINT64_MAX), 1 when it does not
 * (not enough eligible files, or capped: see plan->capped; the plan is still
 * returned and the caller decides to refuse or escalate), -errno on failure.
 */
int reclaim_plan_build(const reclaim_source *sources, size_t n, uint64_t need_bytes,
                       uint64_t max_bytes, uint64_t max_files, uint64_t now_usec,
                       reclaim_plan **ret, char **ret_error);

/* How a plan is walked and executed. NULL everywhere means the defaults. */
typedef struct reclaim_run_opts {
        unsigned workers;               /* threads; 0 = par_default_workers() */
        par_ping ping;                  /* watchdog keep-alive while work progresses */
} reclaim_run_opts;

/* The worker count @opts asks for (0 = the default), capped at PAR_WORKERS_MAX. */
unsigned reclaim_workers(const reclaim_run_opts *opts);

/**
 * reclaim_plan_build_with() - reclaim_plan_build() with @opts (may be NULL):
 * each source's directories are read by opts->workers threads, and
 * opts->ping is called while the walk progresses, never while it is stuck; a
 * negative return from it stops the walk and is returned.
 */
int reclaim_plan_build_with(const reclaim_source *sources, size_t n, uint64_t need_bytes,
                            uint64_t max_bytes, uint64_t max_files, uint64_t now_usec,
                            const reclaim_run_opts *opts, reclaim_plan **ret, char **ret_error);

/**
 * reclaim_plan_execute() - remove exactly the planned files.
 * @p: the plan; each file's outcome and error are filled in.
 * @opts: workers and watchdog ping (may be NULL: defaults, no ping). The
 *   ping is called while removals progress, never while they are stuck; a
 *   negative return stops the run and is returned.
 * @ret: per-source freed bytes/files and skip counts (reclaim_result_done()).
 *
 * The set removed is the plan's; the order is by source, then by directory,
 * then by inode (fewer opens, better locality), each source's directories
 * shared out among opts->workers threads. Each source root is re-opened
 * and checked (same dev, inode, mount id); each parent directory is re-opened
 * once per run of its files, component by component from the root fd with
 * O_NOFOLLOW (same dev and mount id, parent inode as walked) and held for
 * those files; each file is opened O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY
 * (|O_NOATIME), flock(LOCK_EX|LOCK_NB)ed, re-checked on that fd (regular,
 * same dev/inode, one link, no sticky bit, still old enough and its newest
 * selected stamp unchanged since the walk), and unlinked while the lock is
 * held. Anything that changed is skipped with a reason. Directories emptied
 * by this run are removed afterwards (never a root, never a directory that
 * was empty before).
 *
 * Return: number of files removed (>= 0), or -errno when a source root can
 * no longer be trusted or the ping failed (files removed so far stay removed
 * and are counted in @ret, which is written in every case except -ENOMEM;
 * files never reached keep the outcome RECLAIM_PLANNED). A run stopped part
 * way has removed some of the plan's files, not its oldest: execution order
 * is by directory, shared among threads.
 */
int reclaim_plan_execute(reclaim_plan *p, const reclaim_run_opts *opts, reclaim_result *ret);

/**
 * reclaim_plan_to_json() - the plan as JSON (the shadow plan file).
 * @p: the plan.
 * @ret: new reference, owned by the caller.
 *
 * {"need_bytes", "max_bytes", "max_files", "planned_bytes", "reached",
 *  "capped", "sources": [{"name", "root", "walked", "scanned", "unreadable_dirs",
 *  "eligible_files", "eligible_bytes", "planned_files", "planned_bytes"}],
 *  "files": [{"source", "path" (absolute), "size", "age_s", "outcome"}]}.
 * UINT64_MAX values are written as null.
 *
 * Return: 0, or -ENOMEM.
 */
int reclaim_plan_to_json(const reclaim_plan *p, json_t **ret);

/* Frees the plan and everything in it; NULL is fine. */
void reclaim_plan_free(reclaim_plan *p);
static inline void reclaim_plan_freep(reclaim_plan **p) { reclaim_plan_free(*p); }
#define _cleanup_reclaim_plan_ __attribute__((cleanup(reclaim_plan_freep)))

/* Frees what @r holds and zeroes it; safe on a zeroed result. */
void reclaim_result_done(reclaim_result *r);

/* "deleted", "gone", "changed", "younger", "locked", "path-changed", "error", "planned". */
const char *reclaim_outcome_to_string(reclaim_outcome o);
