/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The unit properties the detector reads per unit, by the object path ListUnitsByPatterns gave: one
 * property per call, no LoadUnit, so a scan of many units stays cheap on the bus. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "detector.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_UNIT "org.freedesktop.systemd1.Unit"
#define SD_SERVICE "org.freedesktop.systemd1.Service"

static inline void bus_error_freep(sd_bus_error *e) {
        sd_bus_error_free(e);
}
static inline void bus_message_unrefp(sd_bus_message **m) {
        sd_bus_message_unref(*m);
}

static int error_to_errno(const sd_bus_error *e, int r) {
        int k = sd_bus_error_get_errno(e);

        return k > 0 ? -k : (r < 0 ? r : -EIO);
}

static int get_string(sd_bus *bus, const char *path, const char *iface, const char *prop, char **ret) {
        _cleanup_(bus_error_freep) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (!bus || !path)
                return -EINVAL;
        r = sd_bus_get_property_string(bus, SD_DEST, path, iface, prop, &e, ret);
        return r < 0 ? error_to_errno(&e, r) : 0;
}

static int get_trivial(sd_bus *bus, const char *path, const char *iface, const char *prop, char type, void *ret) {
        _cleanup_(bus_error_freep) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (!bus || !path)
                return -EINVAL;
        r = sd_bus_get_property_trivial(bus, SD_DEST, path, iface, prop, &e, type, ret);
        return r < 0 ? error_to_errno(&e, r) : 0;
}

int stuck_unit_invocation_id_at(int dir_fd, const char *unit, char **ret) {
        _cleanup_free_ char *name = NULL;
        char id[SD_ID128_STRING_MAX + 1]; /* one byte more than an id: a longer target shows */
        ssize_t n;

        if (dir_fd < 0)
                return -EBADF;
        if (!unit || !unit[0] || strchr(unit, '/'))
                return -EINVAL;
        if (asprintf(&name, "invocation:%s", unit) < 0)
                return -ENOMEM;
        n = readlinkat(dir_fd, name, id, sizeof(id));
        if (n < 0)
                return -errno;
        if (n != SD_ID128_STRING_MAX - 1)
                return -EBADMSG;
        id[n] = 0;
        if (strspn(id, "0123456789abcdef") != (size_t) n)
                return -EBADMSG;
        *ret = strdup(id);
        return *ret ? 0 : -ENOMEM;
}

int stuck_unit_control_group(sd_bus *bus, const char *path, char **ret) {
        return get_string(bus, path, SD_SERVICE, "ControlGroup", ret);
}

int stuck_unit_main_pid(sd_bus *bus, const char *path, uint32_t *ret) {
        return get_trivial(bus, path, SD_SERVICE, "MainPID", 'u', ret);
}

int stuck_unit_active_state(sd_bus *bus, const char *path, char **ret) {
        return get_string(bus, path, SD_UNIT, "ActiveState", ret);
}

int stuck_unit_job_queued(sd_bus *bus, const char *path, bool *ret) {
        _cleanup_(bus_error_freep) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *job;
        uint32_t id;
        int r;

        if (!bus || !path)
                return -EINVAL;
        r = sd_bus_get_property(bus, SD_DEST, path, SD_UNIT, "Job", &e, &reply, "(uo)");
        if (r < 0)
                return error_to_errno(&e, r);
        r = sd_bus_message_read(reply, "(uo)", &id, &job);
        if (r < 0)
                return r;
        *ret = id != 0;
        return 0;
}

int stuck_unit_watchdog(sd_bus *bus, const char *path, uint64_t *ret_last_mono_usec, uint64_t *ret_watchdog_usec) {
        uint64_t last, wd;
        int r;

        r = get_trivial(bus, path, SD_SERVICE, "WatchdogTimestampMonotonic", 't', &last);
        if (r < 0)
                return r;
        r = get_trivial(bus, path, SD_SERVICE, "WatchdogUSec", 't', &wd);
        if (r < 0)
                return r;
        *ret_last_mono_usec = last;
        *ret_watchdog_usec = wd;
        return 0;
}
