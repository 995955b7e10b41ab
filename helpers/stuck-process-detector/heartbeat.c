/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Heartbeats: a file's mtime, or the unit's last WATCHDOG=1 as systemd recorded it. Unreadable is
 * "unknown" with its reason, never fresh and never stale. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "heal/cleanup.h"
#include "detector.h"
#include "util.h"

uint64_t stuck_realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static void read_file(const stuck_heartbeat_spec *spec, stuck_heartbeat *h) {
        uint64_t now = stuck_realtime_usec(), mtime;
        struct stat st;

        if (stat(spec->file, &st) < 0) {
                h->error = -errno;
                return;
        }
        mtime = (uint64_t) st.st_mtim.tv_sec * 1000000ULL + (uint64_t) st.st_mtim.tv_nsec / 1000ULL;
        h->known = true;
        h->last_usec = mtime;
        /* A heartbeat from the future (clock stepped back) is as fresh as it gets. */
        h->age_usec = now > mtime ? now - mtime : 0;
}

static void read_watchdog(sd_bus *bus, const char *path, stuck_heartbeat *h) {
        uint64_t last = 0, wd = 0, now;
        int r;

        r = stuck_unit_watchdog(bus, path, &last, &wd);
        if (r < 0) {
                h->error = r;
                return;
        }
        if (wd == 0 || last == 0) {
                h->error = wd == 0 ? -EOPNOTSUPP : -ENODATA; /* no WatchdogSec=, or never pinged */
                return;
        }
        now = stuck_now_usec();
        h->known = true;
        h->last_usec = last;
        h->age_usec = now > last ? now - last : 0;
}

void stuck_heartbeat_read(sd_bus *bus, const char *path, const stuck_heartbeat_spec *spec, stuck_heartbeat *ret) {
        stuck_heartbeat h = { .source = spec ? spec->source : STUCK_HEARTBEAT_NONE };

        if (h.source == STUCK_HEARTBEAT_FILE)
                read_file(spec, &h);
        else if (h.source == STUCK_HEARTBEAT_WATCHDOG)
                read_watchdog(bus, path, &h);
        *ret = h;
}

int stuck_heartbeat_stale(const stuck_heartbeat *h, uint32_t stale_s) {
        if (h->source == STUCK_HEARTBEAT_NONE || !h->known)
                return -1;
        return h->age_usec > (uint64_t) stale_s * 1000000ULL;
}

json_t *stuck_heartbeat_to_json(const stuck_heartbeat_spec *spec, const stuck_heartbeat *h) {
        static const char *const sources[] = { "none", "file", "watchdog" };
        _cleanup_json_ json_t *o = json_pack("{s:s}", "source", sources[h->source]);

        if (!o)
                return NULL;
        if (spec && spec->file && json_object_set_new(o, "file", json_string(spec->file)) < 0)
                return NULL;
        if (spec && spec->pattern && json_object_set_new(o, "policy_key", json_string(spec->pattern)) < 0)
                return NULL;
        if (h->known) {
                if (json_object_set_new(o, "age_s", json_real((double) h->age_usec / 1e6)) < 0)
                        return NULL;
        } else if (h->source != STUCK_HEARTBEAT_NONE) {
                if (json_object_set_new(o, "age_s", json_string("unavailable")) < 0 ||
                    json_object_set_new(o, "error", json_string(strerror(-h->error))) < 0)
                        return NULL;
        }
        return TAKE_PTR(o);
}
