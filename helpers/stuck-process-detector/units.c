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

#include "heal/bus.h"
#include "heal/cleanup.h"
#include "detector.h"

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
        return heal_bus_get_string(bus, path, HEAL_BUS_SERVICE_IFACE, "ControlGroup", ret);
}

int stuck_unit_main_pid(sd_bus *bus, const char *path, uint32_t *ret) {
        return heal_bus_get_trivial(bus, path, HEAL_BUS_SERVICE_IFACE, "MainPID", 'u', ret);
}

int stuck_unit_active_state(sd_bus *bus, const char *path, char **ret) {
        return heal_bus_get_string(bus, path, HEAL_BUS_UNIT_IFACE, "ActiveState", ret);
}

int stuck_unit_job_queued(sd_bus *bus, const char *path, bool *ret) {
        return heal_unit_job_queued_at(bus, path, ret);
}

int stuck_unit_watchdog(sd_bus *bus, const char *path, uint64_t *ret_last_mono_usec, uint64_t *ret_watchdog_usec) {
        uint64_t last, wd;
        int r;

        r = heal_bus_get_trivial(bus, path, HEAL_BUS_SERVICE_IFACE, "WatchdogTimestampMonotonic", 't', &last);
        if (r < 0)
                return r;
        r = heal_bus_get_trivial(bus, path, HEAL_BUS_SERVICE_IFACE, "WatchdogUSec", 't', &wd);
        if (r < 0)
                return r;
        *ret_last_mono_usec = last;
        *ret_watchdog_usec = wd;
        return 0;
}
