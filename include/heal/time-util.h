/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Microsecond clocks: every timestamp and interval of heal is a uint64_t of usec. */
#pragma once

#include <stdint.h>
#include <time.h>

#define USEC_PER_SEC UINT64_C(1000000)
#define NSEC_PER_USEC UINT64_C(1000)

/* @clock (CLOCK_REALTIME, CLOCK_MONOTONIC, ...) now, in microseconds; 0 if
 * the clock cannot be read (an invalid id: never for those two). */
static inline uint64_t heal_now_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0;
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / NSEC_PER_USEC;
}
