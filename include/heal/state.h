/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small versioned JSON records under the state dir, written atomically and
 * read back verified; the memory of every guard between short-lived runs. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Record layout on disk: {"heal_state": 1, "key": "<key>", "sum": "<hex fnv1a64 of data>",
 * "data": {...}}, where the sum is taken over the compact, sorted-keys dump of data.
 * Records are written as the compact, sorted-keys dump of that whole object, so the data's own text
 * in the file is the dump its sum is over: a read verifies the sum over those bytes (no second dump)
 * and dumps the parsed data again only for a record laid out otherwise.
 * A record is addressed by (namespace, key): namespace is a fixed word
 * ("budget", "breaker", "idem", "pending", "metrics", ...; [A-Za-z0-9._-], not
 * starting with '.', -EINVAL otherwise), key any string (unit names included);
 * keys are escaped into safe file names. Layout of the state dir:
 *   <dir>/<ns>/<escaped key>        a record (0600; dirs 0700)
 *   <dir>/<ns>/.lock/<escaped key>  its lock file (removed only by heal_state_unlock_remove())
 *   <dir>/<ns>/.#<random>           a temp file while a write is in progress
 *
 * Cost: a durable write is two syncs (fdatasync of the file, then fsync of
 * the namespace dir), plus one on the state dir the first time a namespace
 * is created; heal_state_write_many() is n + 1 syncs for n records; a
 * HEAL_STATE_WRITE_NOSYNC write is none. Reads never sync. */

typedef struct heal_state heal_state;

/**
 * heal_state_open() - open (creating 0700 when absent) a state dir.
 * @dir: the directory; NULL means heal_path_state_dir().
 * @ret: the new handle, owned by the caller (heal_state_free()).
 *
 * Removes temp files left by writers that died mid-write, and keeps a
 * reserve: "<dir>/.reserve", 1 MiB of allocated blocks (0600), made when
 * absent and the filesystem has at least twice that free. A write that
 * fails for want of space (-ENOSPC, -EDQUOT) releases the reserve and is
 * retried once, so state keeps working when its filesystem fills up
 * (heal_state_reserve_used() says when that happened); a later open makes
 * the reserve again once there is room.
 * Only the last path component is created. Temp files still locked by a live
 * writer are left alone; sweep failures do not fail the open (a read-only
 * state dir still opens for reading).
 * Returns 0, or -errno (-ENOTDIR, -EACCES, ...).
 */
int heal_state_open(const char *dir, heal_state **ret);

/* Closes the handle; accepts NULL; returns NULL. */
heal_state *heal_state_free(heal_state *s);
static inline void heal_state_freep(heal_state **s) { heal_state_free(*s); }

/* The directory fd of the state dir (owned by @s) and its path. */
int heal_state_dirfd(const heal_state *s);
const char *heal_state_path(const heal_state *s);

/* Whether a write through @s found the filesystem full and released the
 * reserve to go through (false for NULL). Stays true for the handle's life:
 * the state dir has no reserve left until the next open with room. */
bool heal_state_reserve_used(const heal_state *s);

/**
 * heal_state_read() - load one record.
 * @ret_data: on success, a new reference to the "data" object (caller decrefs).
 *
 * Returns 0; -ENOENT when there is no record; -EBADMSG when the record is
 * corrupt (does not parse, wrong version, checksum mismatch, filed under
 * another key) — never reset silently, the file is left in place; other
 * -errno on I/O errors.
 */
int heal_state_read(heal_state *s, const char *ns, const char *key, json_t **ret_data);

/**
 * heal_state_write() - replace one record atomically and durably.
 * @data: a JSON object (-EINVAL otherwise); borrowed.
 *
 * temp file in the same dir, write, fdatasync, rename, fsync dir. On any failure
 * (-ENOSPC on a full filesystem included, after the reserve, see
 * heal_state_open()) the old record is intact and the temp file removed. Returns 0 or -errno.
 */
int heal_state_write(heal_state *s, const char *ns, const char *key, json_t *data);

/* Flags of heal_state_write_flags() and heal_state_remove_flags(). */
enum {
        /* Skip every sync. Still temp file + rename: readers, and a writer
         * killed at any point, never see a torn record, and a full
         * filesystem still leaves the old record intact. But after a power
         * loss or kernel crash the record may be the old one, the new one,
         * or an empty or partly written file (read: -EBADMSG); a remove may
         * be undone. Only for records whose loss is harmless and whose
         * readers accept a damaged one: metrics counters and heartbeats,
         * idempotency claims (see idempotency.h). */
        HEAL_STATE_WRITE_NOSYNC = 1 << 0,
};

/* heal_state_write() with @flags (0 or HEAL_STATE_WRITE_NOSYNC; -EINVAL otherwise). */
int heal_state_write_flags(heal_state *s, const char *ns, const char *key, json_t *data, unsigned flags);

/* One record of heal_state_write_many(); both fields borrowed. */
typedef struct heal_state_entry {
        const char *key;
        json_t *data; /* a JSON object */
} heal_state_entry;

/**
 * heal_state_write_many() - replace several records of one namespace, durable as a group.
 * @entries, @n: the records, n >= 1, keys all different (-EINVAL otherwise).
 *
 * Every record is written to its own temp file and its data synced
 * (fdatasync) before the first rename; then the renames in @entries order;
 * then one fsync of the namespace dir: n + 1 syncs instead of 2n. Each
 * record on its own is replaced atomically, as by heal_state_write().
 * Returns 0 only when all of them are durable. A failure before the first
 * rename (-ENOSPC on a full filesystem included) leaves every old record
 * intact and no temp file; a rename or dir sync failing part-way leaves the
 * records before it replaced (perhaps not durably) and the others intact.
 * Returns 0 or -errno.
 */
int heal_state_write_many(heal_state *s, const char *ns, const heal_state_entry *entries, size_t n);

/* Remove a record. Returns 0, also when there was none; -errno otherwise. */
int heal_state_remove(heal_state *s, const char *ns, const char *key);

/* The same; HEAL_STATE_WRITE_NOSYNC skips the dir sync, so a crash may bring
 * the record back. */
int heal_state_remove_flags(heal_state *s, const char *ns, const char *key, unsigned flags);

/**
 * heal_state_list() - the keys of every record in a namespace (unescaped).
 * @ret_keys: a NULL-terminated strv the caller frees (strv_free()), sorted.
 *
 * Keys too long for a file name come from the records themselves; such a
 * record that does not verify is left out (heal_state_read() reports it for
 * the key). Files that are not records of ours are ignored.
 * Returns the number of keys (0 also when the namespace does not exist), or -errno.
 */
int heal_state_list(heal_state *s, const char *ns, char ***ret_keys);

/* Called by heal_state_foreach() with a record's key and data (both
 * borrowed for the call); a negative return stops the walk and is returned. */
typedef int (*heal_state_foreach_fn)(const char *key, json_t *data, void *userdata);

/**
 * heal_state_foreach() - every record of a namespace, each read once.
 *
 * In directory order (not sorted), without locks (records are replaced
 * atomically). Records that vanish meanwhile, do not verify, or sit under a
 * name that is not their key's are left out, as heal_state_list() does.
 * One open of the namespace and one read per record: the cheap way to look
 * at all of them (heal_state_list() + heal_state_read() reads hashed names twice
 * and opens the namespace per record).
 * Returns the number of records passed to @fn (0 also when the namespace
 * does not exist), or -errno, or what @fn returned when negative.
 */
int heal_state_foreach(heal_state *s, const char *ns, heal_state_foreach_fn fn, void *userdata);

/**
 * heal_state_lock() - take the lock of one record (or of any name).
 * @ns, @key: which lock; the lock file is separate from the record (0600).
 * @ret_fd: the lock fd; the lock is held until it is closed.
 *
 * Blocks up to 5 s (flock(LOCK_EX) polled), then gives up. A lock file
 * removed by heal_state_unlock_remove() while we waited for it is not a
 * lock any more: we take the lock on the new file at the name instead.
 * Returns 0, -ETIMEDOUT, or -errno.
 */
int heal_state_lock(heal_state *s, const char *ns, const char *key, int *ret_fd);

#define HEAL_STATE_LOCK_TIMEOUT_USEC (UINT64_C(5) * 1000000)

/* heal_state_lock() with another wait than 5 s (0: try once). */
int heal_state_lock_timeout(heal_state *s, const char *ns, const char *key, uint64_t timeout_usec,
                            int *ret_fd);

/**
 * heal_state_unlock_remove() - release a lock and remove its lock file.
 * @lock_fd: the fd from heal_state_lock() of the same @ns and @key; closed
 *   (set to -EBADF) in every case, so the lock is released even on error.
 *
 * For keys gone for good (their record removed), so lock files do not pile
 * up. Safe against racing lockers: the file is unlinked while still held,
 * and a locker that was waiting on it sees it gone and locks a new one.
 * Returns 0 (also when the lock file was already gone) or -errno.
 */
int heal_state_unlock_remove(heal_state *s, const char *ns, const char *key, int *lock_fd);

/**
 * heal_state_escape() - a file-name safe, reversible form of @key.
 *
 * [A-Za-z0-9-_@:+,=] and '.' (except first) are kept, every other byte
 * becomes %XX; "" becomes "%". The result never contains '/', never starts
 * with '.', and is at most 200 bytes: a longer one is cut and ends in
 * '~' + 16 hex digits of the key's FNV-1a (not reversible by itself; the
 * record keeps the key).
 * Returns a new string (caller frees) or NULL (errno ENOMEM, or EINVAL for NULL).
 */
char *heal_state_escape(const char *key);

/* The inverse: a new string, or NULL with errno EINVAL when @name is not the
 * canonical escape of a key (hashed long names included), ENOMEM on OOM. */
char *heal_state_unescape(const char *name);
