/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drop every capability but the four disk-reclaim needs, at start, so a bug
 * later on has no more power than the unit's CapabilityBoundingSet= grants. */
#include <cap-ng.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>

#include "disk-reclaim.h"

/* Keep in step with CapabilityBoundingSet= in heal-disk-reclaim.service:
 *   CAP_DAC_OVERRIDE     unlink in directories owned by others (0755 root-owned caches are fine
 *                        as root, but /var/log/<app>/ may belong to the app)
 *   CAP_FOWNER           unlink other users' files in sticky directories (/var/tmp)
 *   CAP_DAC_READ_SEARCH  walk directories that are not world-searchable
 *   CAP_SYS_PTRACE       read /proc/PID/fd of processes of other users (leak scan) */
static const int kept[] = {CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE};

int disk_caps_drop(void) {
        capng_select_t what = CAPNG_SELECT_CAPS;
        bool had[sizeof(kept) / sizeof(kept[0])];
        unsigned type = CAPNG_EFFECTIVE | CAPNG_PERMITTED;

        if (capng_get_caps_process() < 0)
                return -EIO;
        if (capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE)
                return 0;
        /* The bounding set can only shrink while CAP_SETPCAP is ours; under the
         * unit it is not (the unit's bounding set already matches kept[]). */
        if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP)) {
                what = CAPNG_SELECT_BOTH;
                type |= CAPNG_BOUNDING_SET;
        }
        /* Never add: a capability we did not have stays absent. */
        for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
                had[i] = capng_have_capability(CAPNG_PERMITTED, (unsigned)kept[i]);
        capng_clear(what);
        for (unsigned i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
                if (had[i] && capng_update(CAPNG_ADD, (capng_type_t)type, (unsigned)kept[i]) < 0)
                        return -EINVAL;
        if (capng_apply(what) < 0)
                return -EPERM;
        return 0;
}
