/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The detector's facts: one unit's cgroup counters, and, where the cgroup looks flat, its processes
 * read from /proc. Every signal carries a "known" flag: a failed or impossible read is never 0. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- where a unit's cgroup lives ----------------------------------------------------------------- */

typedef enum stuck_layout {
        STUCK_LAYOUT_V2,     /* <cg>/cgroup.controllers: pure cgroup v2 */
        STUCK_LAYOUT_HYBRID, /* v2 at <cg>/unified, controllers (cpuacct, pids) in v1 hierarchies */
} stuck_layout;

/**
 * stuck_cgroup_layout() - which cgroup layout heal_path_cgroup() holds.
 * @ret: the layout, written on success.
 *
 * Return: 0, -EOPNOTSUPP for a legacy v1-only layout (no v2 hierarchy to read), other -errno.
 */
int stuck_cgroup_layout(stuck_layout *ret);

/* What one run learns once about the cgroup tree (see stuck_cgroup_root_new()). */
typedef struct stuck_cgroup_root stuck_cgroup_root;
typedef struct stuck_cgroup_absent stuck_cgroup_absent;

typedef struct stuck_cgroup_path {
        char *dir;           /* the unit's v2 directory: cpu.stat, io.stat, *.pressure, cgroup.procs */
        char *rel;           /* located in a root: @dir under @root_fd, "" or ending in '/', so that a file
                              * opens by one openat() of rel + name; NULL otherwise (then @dir is opened) */
        int root_fd;         /* the root's v2 directory (owned by the root), valid when @rel is set */
        char *v1_cpuacct;    /* hybrid only: <cg>/cpu,cpuacct/<path> (or cpuacct/), else NULL */
        char *v1_pids;       /* hybrid only: <cg>/pids/<path>, else NULL */
        stuck_layout layout;
        stuck_cgroup_absent *absent; /* owned by the root it was located in; NULL: nothing remembered */
} stuck_cgroup_path;

/**
 * stuck_cgroup_locate() - find a unit's cgroup directories.
 * @control_group: the unit's ControlGroup property (from D-Bus), e.g. "/system.slice/foo.service";
 *      absolute, no "." or ".." components.
 * @ret: filled on success; release with stuck_cgroup_path_done().
 *
 * The v1 directories are only named (hybrid layout), not checked: reading from them later fails
 * gracefully into "unknown".
 *
 * Return: 0; -EINVAL for a malformed path; -ENOENT when the unit has no v2 cgroup directory (not
 * running); -EOPNOTSUPP on a v1-only host; -ENOMEM.
 */
int stuck_cgroup_locate(const char *control_group, stuck_cgroup_path *ret);

/* Frees the strings; safe on a zeroed or already released struct. */
void stuck_cgroup_path_done(stuck_cgroup_path *p);

/**
 * stuck_cgroup_root_new() - the layout of heal_path_cgroup(), detected once for a run of many units.
 * @ret: the new root (stuck_cgroup_root_free()).
 *
 * Paths located in it (stuck_cgroup_locate_in()) share what their reads learn: an optional counter
 * file (io.stat, a *.pressure file, pids.current, a v1 hierarchy) found missing in one cgroup, whose
 * directory was there all along, is missing in every cgroup under the same parent (a controller's files
 * exist where the parent enables it), and is not tried again there while the root lives. Keep a root
 * for one run: controllers may be enabled between runs.
 *
 * Return: 0; -EOPNOTSUPP for a legacy v1-only layout; -ENOMEM; other -errno.
 */
int stuck_cgroup_root_new(stuck_cgroup_root **ret);
stuck_cgroup_root *stuck_cgroup_root_free(stuck_cgroup_root *r);
static inline void stuck_cgroup_root_freep(stuck_cgroup_root **r) {
        stuck_cgroup_root_free(*r);
}

/* stuck_cgroup_locate() with the layout of @root (not detected again) and its memory of missing files;
 * the path must not outlive @root. Return: as stuck_cgroup_locate(). */
int stuck_cgroup_locate_in(stuck_cgroup_root *root, const char *control_group, stuck_cgroup_path *ret);

/* stuck_cgroup_locate_in() without checking that the directory exists (one stat less per unit): a read
 * of a cgroup that is not there returns -ENOENT instead. Return: 0, -EINVAL, -ENOMEM. */
int stuck_cgroup_name_in(stuck_cgroup_root *root, const char *control_group, stuck_cgroup_path *ret);

/* ---- cgroup counters ---------------------------------------------------------------------------- */

typedef enum stuck_psi_resource {
        STUCK_PSI_CPU,
        STUCK_PSI_MEMORY,
        STUCK_PSI_IO,
        _STUCK_PSI_MAX,
} stuck_psi_resource;

/* One "some" line of a *.pressure file. Averages in hundredths of a percent (6666 = 66.66 %). */
typedef struct stuck_psi {
        bool known;
        uint32_t some_avg10;
        uint32_t some_avg60;
        uint32_t some_avg300;
        uint64_t some_total_usec; /* cumulative stall time: compare across samples for a stall */
} stuck_psi;

typedef struct stuck_cgroup_sample {
        bool cpu_known;
        bool cpu_from_v1;        /* usage came from v1 cpuacct.usage (hybrid, v2 lacks usage_usec) */
        uint64_t cpu_usage_usec; /* cumulative, whole subtree */

        bool io_known;
        uint64_t io_bytes; /* io.stat rbytes + wbytes over every device, whole subtree */

        stuck_psi psi[_STUCK_PSI_MAX];

        bool tasks_known;
        uint64_t n_tasks; /* pids.current: every task, threads and zombies included, whole subtree */

        /* io.stat and the *.pressure files were not read because cpu usage grew since the previous
         * sample (see stuck_scan_unit()): io and PSI unknown for that reason, not for want of a file.
         * Not persisted. */
        bool pressure_skipped;
} stuck_cgroup_sample;

/**
 * stuck_cgroup_read() - one read of a unit's cgroup counters.
 * @cg: the unit's location, from stuck_cgroup_locate().
 * @ret: written on success; each counter that could not be read is left "unknown".
 *
 * Reads cpu.stat (usage_usec; on hybrid falling back to v1 cpuacct.usage), io.stat, cpu/memory/io
 * .pressure and pids.current (v2, then v1 on hybrid). A missing or garbled file makes that one
 * counter unknown; it is not an error.
 *
 * Return: 0; -ENOENT when @cg->dir itself is gone (the unit stopped); other -errno.
 */
int stuck_cgroup_read(const stuck_cgroup_path *cg, stuck_cgroup_sample *ret);

/* ---- one process -------------------------------------------------------------------------------- */

typedef struct stuck_proc_sample {
        pid_t pid;
        pid_t ppid;
        char *comm;             /* from /proc/PID/stat, may hold spaces and ')' */
        char state;             /* 'D' when any of its threads is in D, else the leader's state */
        bool kernel_thread;     /* PF_KTHREAD */
        unsigned n_threads;
        uint64_t start_ticks;   /* starttime: (pid, start_ticks) names one process across samples */
        uint64_t cpu_usec;      /* utime + stime of all its threads */

        bool io_known;          /* /proc/PID/io read (STUCK_SCAN_PROC_IO) and readable (EACCES without
                                 * ptrace access) */
        uint64_t io_bytes;      /* rchar + wchar: every read/write, pipes and sockets included */

        unsigned n_d_threads;   /* threads in D state (the process itself counts as one) */
        char *wchan;            /* of the (first) D thread; NULL when none is in D or it is unreadable */
        char *stack;            /* of the (first) D thread, where readable; else NULL */
        bool d_usec_known;      /* schedstats present (CONFIG_SCHEDSTATS + kernel.sched_schedstats) */
        uint64_t d_usec;        /* how long the D thread has been blocked: its block_start against
                                 * our own se.exec_start (same scheduler clock); without schedstats
                                 * the caller tracks "first seen in D" across samples instead */

        bool children_known;    /* the children list was read (see STUCK_SCAN_ZOMBIES) */
        unsigned n_zombie_children;
} stuck_proc_sample;

/* Read flags for stuck_proc_read() and stuck_scan_unit(). */
enum {
        STUCK_SCAN_FULL = 1u << 0,    /* descend into /proc whatever the counters say */
        STUCK_SCAN_ZOMBIES = 1u << 1, /* read every process's children list to count zombies */
        STUCK_SCAN_NO_STACK = 1u << 2, /* skip /proc/PID/stack for D tasks */
        STUCK_SCAN_PROC_IO = 1u << 3, /* read /proc/PID/io (stuck_scan_unit() adds it when the cgroup's
                                       * cpu usage is unknown; when it is known and flat no task made a
                                       * syscall, so per-process io cannot have moved either) */
};

/**
 * stuck_proc_read() - read one process from heal_path_proc().
 * @pid: the process (a thread group leader).
 * @flags: STUCK_SCAN_ZOMBIES (read its children, count those in Z), STUCK_SCAN_PROC_IO,
 *      STUCK_SCAN_NO_STACK.
 * @ret: written on success; release with stuck_proc_sample_done().
 *
 * /proc/PID/stat is parsed from its last ')' so a comm holding spaces or parentheses is fine.
 * /proc/PID/io, wchan, stack and sched are each read at most once, only where they add a fact:
 * wchan/stack/sched for D tasks only. A process with several threads has each thread's stat
 * read, because a thread in D leaves the leader's state untouched. Unreadable extras stay unknown.
 *
 * Return: 0; -ENOENT when the process vanished (skip it); -EBADMSG for an unparsable stat; -errno.
 */
int stuck_proc_read(pid_t pid, unsigned flags, stuck_proc_sample *ret);

/* Frees the strings; safe on a zeroed or already released struct. */
void stuck_proc_sample_done(stuck_proc_sample *p);

/* ---- one unit ----------------------------------------------------------------------------------- */

typedef struct stuck_zombie_parent {
        pid_t pid;
        char *comm;
        unsigned n_zombies;
} stuck_zombie_parent;

typedef struct stuck_unit_sample {
        uint64_t monotonic_usec; /* CLOCK_MONOTONIC when taken: suspend does not count as no progress */
        stuck_cgroup_sample cgroup;

        /* Why the scan descended into /proc, STUCK_DESCEND_* bits; 0 when it did not, and then
         * everything below is empty and means "not looked at", not "none". */
        unsigned descended;
        stuck_proc_sample *procs;
        size_t n_procs;
        size_t n_vanished;      /* listed in cgroup.procs, gone before they could be read */
        size_t n_unreadable;    /* listed, but their stat was unreadable or garbled (not in procs) */
        uint64_t procs_cpu_usec; /* sum of procs[].cpu_usec */
        unsigned n_d_tasks;      /* sum of procs[].n_d_threads */

        bool zombies_known;     /* every process's zombies were counted (or provably none) */
        stuck_zombie_parent *zombie_parents; /* procs with zombie children, most zombies first */
        size_t n_zombie_parents;
} stuck_unit_sample;

enum {
        STUCK_DESCEND_FORCED = 1u << 0,   /* STUCK_SCAN_FULL */
        STUCK_DESCEND_FLAT = 1u << 1,     /* no cpu progress and no io progress since @previous */
        STUCK_DESCEND_UNKNOWN = 1u << 2,  /* cpu usage unknown: counters cannot clear the unit */
        STUCK_DESCEND_TASKS = 1u << 3,    /* the task count grew (zombies pile up, forks leak) */
};

/**
 * stuck_scan_unit() - one sample of a unit: counters first, /proc only where they look flat.
 * @cg: the unit's location.
 * @previous: the unit's previous sample (from an earlier run), or NULL.
 * @flags: STUCK_SCAN_*.
 * @ret: written on success; release with stuck_unit_sample_done().
 *
 * The rule, so that a healthy unit costs its cgroup counters only: with no @previous, counters only
 * (nothing to compare, and no decision rests on one sample). When cpu usage grew since @previous (and
 * the scan is not forced), the unit is progressing and only cpu.stat and pids.current are read: io and
 * PSI matter only for a unit without progress (see stuck_cgroup_read_counters()). Otherwise descend when cpu usage did not
 * grow and io bytes did not grow (unknown io counts as no growth), when cpu usage is unknown, when
 * pids.current grew, or when forced. A D-state task or zombies in a unit whose other tasks make
 * progress are therefore only seen by a forced scan, or once the task count grows.
 *
 * Zombies are not in cgroup.procs; they are found as children of the unit's processes: read for
 * every process with STUCK_SCAN_ZOMBIES, else only when pids.current exceeds the live threads
 * counted (then zombies_known is true either way). Without pids.current and without the flag,
 * zombies_known stays false: on hybrid hosts (this one, and the nspawn sandbox on it) pids is a v1
 * controller that systemd inside a container does not get, so pass STUCK_SCAN_ZOMBIES there when
 * zombies matter (it roughly doubles the cost of a descent, not of a counters-only scan).
 *
 * A process that exits between the listing and the read is counted in n_vanished, not an error; a
 * pid reused by a process of another cgroup in that window is not detected.
 *
 * Return: 0; -ENOENT when the cgroup vanished; other -errno.
 */
int stuck_scan_unit(const stuck_cgroup_path *cg, const stuck_unit_sample *previous, unsigned flags,
                    stuck_unit_sample *ret);

/* Frees everything; safe on a zeroed or already released struct. */
void stuck_unit_sample_done(stuck_unit_sample *s);

/**
 * stuck_unit_sample_to_json() - the persisted form of a sample (stored under heal_path_run_dir()).
 * @s: the sample.
 * @ret: a new JSON object, owned by the caller.
 *
 * Unknown counters are written as null, so "unavailable" survives the round trip.
 *
 * Return: 0, -ENOMEM.
 */
int stuck_unit_sample_to_json(const stuck_unit_sample *s, json_t **ret);

/**
 * stuck_unit_sample_from_json() - parse a persisted sample.
 * @j: the JSON value (any; bad input is an error, never a crash).
 * @ret: written on success; release with stuck_unit_sample_done().
 *
 * Return: 0; -EBADMSG for a value of the wrong shape or out of range; -ENOMEM.
 */
int stuck_unit_sample_from_json(const json_t *j, stuck_unit_sample *ret);

/* A persisted string, copied to *@ret, or NULL for null; anything else (and embedded NULs) is refused.
 * Return: 0, -EBADMSG, -ENOMEM. */
int stuck_json_string_dup(const json_t *v, char **ret);

/* Whether @s is only cgroup counters (it did not descend, and no PSI is known): what
 * stuck_unit_sample_to_compact() can write without losing anything. */
bool stuck_unit_sample_is_compact(const stuck_unit_sample *s);

/**
 * stuck_unit_sample_to_compact() - the persisted form of a counters-only sample, for the common case of a
 * progressing unit: [monotonic_usec, cpu_usage_usec, cpu_from_v1, io_bytes, tasks], unknown as null.
 * @ret: a new JSON array, owned by the caller.
 *
 * A tenth of the size of stuck_unit_sample_to_json() (no keys, no PSI objects), so a store of many
 * healthy units stays cheap to read and write.
 * Return: 0; -EINVAL when @s is not stuck_unit_sample_is_compact(); -ENOMEM.
 */
int stuck_unit_sample_to_compact(const stuck_unit_sample *s, json_t **ret);

/* Parse the compact form (any JSON value: bad input is -EBADMSG, never a crash). The sample holds no
 * processes, so it needs no stuck_unit_sample_done(), though that is safe. Return: 0, -EBADMSG. */
int stuck_unit_sample_from_compact(const json_t *j, stuck_unit_sample *ret);

/* ---- comparing two samples ---------------------------------------------------------------------- */

typedef enum stuck_progress {
        STUCK_PROGRESS_UNKNOWN = -1, /* a side is unknown, or the counter went backwards (reset) */
        STUCK_PROGRESS_NONE = 0,
        STUCK_PROGRESS_YES = 1,
} stuck_progress;

/* CPU progress of the cgroup between two samples. */
stuck_progress stuck_progress_cpu(const stuck_cgroup_sample *before, const stuck_cgroup_sample *after);
/* IO progress of the cgroup between two samples. */
stuck_progress stuck_progress_io(const stuck_cgroup_sample *before, const stuck_cgroup_sample *after);

/**
 * stuck_proc_find() - the same process in another sample.
 * @s: a descended sample.
 * @pid, @start_ticks: the process (start_ticks tells a reused pid apart).
 *
 * Return: the process, or NULL when @s does not hold it.
 */
const stuck_proc_sample *stuck_proc_find(const stuck_unit_sample *s, pid_t pid, uint64_t start_ticks);

/* ---- parsers (exposed for the fuzzers and tests) ------------------------------------------------ */

typedef struct stuck_stat {
        char *comm;
        char state;
        pid_t ppid;
        unsigned flags;
        uint64_t utime_ticks, stime_ticks;
        long n_threads;
        uint64_t start_ticks;
} stuck_stat;

/**
 * stuck_parse_stat() - parse the text of /proc/PID/stat.
 * @text, @len: the file's bytes (not NUL-terminated necessarily).
 * @ret: written on success; ret->comm is owned by the caller.
 *
 * Return: 0, -EBADMSG, -ENOMEM.
 */
int stuck_parse_stat(const char *text, size_t len, stuck_stat *ret);

/* The "some" line of a *.pressure file. Return: 0, -EBADMSG. */
int stuck_parse_pressure(const char *text, size_t len, stuck_psi *ret);
/* Sum of rbytes + wbytes over every line of io.stat (empty: 0 bytes). Return: 0, -EBADMSG. */
int stuck_parse_io_stat(const char *text, size_t len, uint64_t *ret);
/* usage_usec of cpu.stat. Return: 0, -ENODATA when absent, -EBADMSG. */
int stuck_parse_cpu_stat(const char *text, size_t len, uint64_t *ret);
/* rchar + wchar of /proc/PID/io. Return: 0, -EBADMSG. */
int stuck_parse_proc_io(const char *text, size_t len, uint64_t *ret);
/* A "name : ms.frac" field of /proc/PID/sched in ns; @name matches the whole key or its last
 * dotted part ("block_start" finds "se.statistics.block_start" and "stats.block_start").
 * Return: 0, -ENODATA when absent (no schedstats), -EBADMSG. */
int stuck_parse_sched_ns(const char *text, size_t len, const char *name, uint64_t *ret_nsec);
