/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Act: reset-failed, then start, waiting for the start job's own result. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reviver.h"

int reviver_act(void *userdata, char **ret_detail) {
        reviver_ctx *ctx = userdata;
        _cleanup_free_ char *result = NULL;
        int r;

        /* Clears the failed state and the start rate limit's counter of this run,
         * so the start below is judged on its own. */
        r = heal_unit_reset_failed(ctx->bus, ctx->unit);
        if (r < 0) {
                if (asprintf(ret_detail, "reset-failed %s: %s", ctx->unit, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        r = heal_unit_job(ctx->bus, "StartUnit", ctx->unit, ctx->job_timeout_usec, &result);
        if (r < 0) {
                if (asprintf(ret_detail, "start %s: %s", ctx->unit, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (asprintf(ret_detail, "reset-failed + start %s: job %s", ctx->unit, result) < 0)
                *ret_detail = NULL;
        return r > 0 ? 0 : -EIO;
}
