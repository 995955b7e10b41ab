/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Capabilities: the scan keeps what reading other users' /proc files and heartbeats needs, nothing else. */
#include <errno.h>
#include <cap-ng.h>
#include <linux/capability.h>

#include "detector.h"

int stuck_caps_restrict(void) {
        bool stacks, setpcap;

        if (capng_get_caps_process() < 0)
                return -EIO;
        /* Not root and nothing to keep: the scan reads what its uid may, which is all it can do anyway. */
        if (!capng_have_capability(CAPNG_PERMITTED, CAP_SYS_PTRACE) &&
            !capng_have_capability(CAPNG_PERMITTED, CAP_DAC_READ_SEARCH))
                return capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE ? 0 : -EPERM;

        /* /proc/PID/stack needs CAP_SYS_ADMIN; kept only when the unit's bounding set let us have it. */
        stacks = capng_have_capability(CAPNG_PERMITTED, CAP_SYS_ADMIN);
        setpcap = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
        capng_clear(CAPNG_SELECT_BOTH);
        if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, CAP_SYS_PTRACE,
                          CAP_DAC_READ_SEARCH, -1) < 0)
                return -EINVAL;
        if (stacks && capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, CAP_SYS_ADMIN) < 0)
                return -EINVAL;
        /* Narrowing the bounding set needs CAP_SETPCAP (libcap-ng applies it before dropping that one); the
         * service has none and its bounding set is already this narrow, so then only the sets change. */
        if (capng_apply(setpcap ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS) < 0)
                return -EPERM;
        return 0;
}
