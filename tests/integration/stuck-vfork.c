/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A real task in D state for the stuck-process-detector's integration test: the parent of vfork() waits
 * killably (shown as D) until its child execs or exits, and this child never does. */
#include <unistd.h>

int main(void) {
        if (vfork() == 0)
                for (;;)
                        pause();
        return 0;
}
