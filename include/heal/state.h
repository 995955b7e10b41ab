/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small versioned JSON records under the state dir, written atomically and
 * read back verified; the memory of every guard between short-lived runs. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

/* Record layout on disk: {"heal_state": 1, "sum": "<hex fnv1a64 of data>", "data": {...}}.
 * A record is addressed by (namespace, key): namespace is a fixed word
 * ("budget", "breaker", "idem", "pending", "metrics", ...), key any string
 * (unit names included); keys are escaped into safe file names. */

typedef struct heal_state heal_state;

/**
 * heal_state_open() - open (creating 0700 when absent) a state dir.
 * @dir: the directory; NULL means heal_path_state_dir().
 * @ret: the new handle, owned by the caller (heal_state_free()).
 *
 * Removes temp files left by writers that died mid-write.
 * Returns 0, or -errno (-ENOTDIR, -EACCES, ...).
 */
int heal_state_open(const char *dir, heal_state **ret);

/* Closes the handle; accepts NULL; returns NULL. */
heal_state *heal_state_free(heal_state *s);
static inline void heal_state_freep(heal_state **s) { heal_state_free(*s); }

/* The directory fd of the state dir (owned by @s) and its path. */
int heal_state_dirfd(const heal_state *s);
const char *heal_state_path(const heal_state *s);

/**
 * heal_state_read() - load one record.
 * @ret_data: on success, a new reference to the "data" object (caller decrefs).
 *
 * Returns 0; -ENOENT when there is no record; -EBADMSG when the record is
 * corrupt (does not parse, wrong version, checksum mismatch) — never reset
 * silently; other -errno on I/O errors.
 */
int heal_state_read(heal_state *s, const char *ns, const char *key, json_t **ret_data);

/**
 * heal_state_write() - replace one record atomically and durably.
 * @data: a JSON object; borrowed.
 *
 * temp file in the same dir, write, fsync, rename, fsync dir. On any failure
 * (-ENOSPC on a full filesystem included) the old record is intact and the
 * temp file removed. Returns 0 or -errno.
 */
int heal_state_write(heal_state *s, const char *ns, const char *key, json_t *data);

/* Remove a record. Returns 0, also when there was none; -errno otherwise. */
int heal_state_remove(heal_state *s, const char *ns, const char *key);

/**
 * heal_state_list() - the keys of every record in a namespace (unescaped).
 * @ret_keys: a NULL-terminated strv the caller frees (strv_free()).
 * Returns the number of keys, or -errno.
 */
int heal_state_list(heal_state *s, const char *ns, char ***ret_keys);

/**
 * heal_state_lock() - take the lock of one record (or of any name).
 * @ns, @key: which lock; the lock file is separate from the record (0600).
 * @ret_fd: the lock fd; the lock is held until it is closed.
 *
 * Blocks up to 5 s (flock(LOCK_EX) polled), then gives up.
 * Returns 0, -ETIMEDOUT, or -errno.
 */
int heal_state_lock(heal_state *s, const char *ns, const char *key, int *ret_fd);

/**
 * heal_state_escape() - a file-name safe, reversible form of @key.
 * Returns a new string (caller frees) or NULL on OOM.
 */
char *heal_state_escape(const char *key);
char *heal_state_unescape(const char *name);
