/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Verify: the unit stays active through the settle time (watched, not
 * sampled), then the policy's verify command, when it names one, succeeds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heal/spawn.h"
#include "reviver.h"

static int run_verify_command(reviver_ctx *ctx, char **ret_detail) {
        _cleanup_free_ char *out = NULL;
        int status = -1, r;

        /* The command learns which unit it checks without string splicing. */
        if (setenv("HEAL_TARGET", ctx->unit, 1) < 0)
                return -errno;
        r = heal_spawn(ctx->verify_command, NULL, ctx->verify_timeout_usec, &out, &status);
        if (r < 0) {
                if (asprintf(ret_detail, "verify command: %s", strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r == -ETIMEDOUT ? 0 : r;
        }
        if (status != 0) {
                size_t n = out ? strcspn(out, "\n") : 0;

                if (asprintf(ret_detail, "verify command exited with status %d%s%.*s", status,
                             n > 0 ? ": " : "", (int) (n > 200 ? 200 : n), out ? out : "") < 0)
                        *ret_detail = NULL;
                return 0;
        }
        return 1;
}

int reviver_verify(void *userdata, char **ret_detail) {
        reviver_ctx *ctx = userdata;
        _cleanup_free_ char *state = NULL;
        unsigned settle_s = (unsigned) (ctx->settle_usec / 1000000ULL);
        int r;

        r = heal_unit_watch_active(ctx->bus, ctx->unit, ctx->settle_usec, &state);
        if (r < 0) {
                if (asprintf(ret_detail, "watching %s: %s", ctx->unit, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (r == 0) {
                if (asprintf(ret_detail, "%s left the active state within %u s: now %s", ctx->unit, settle_s,
                             state) < 0)
                        *ret_detail = NULL;
                return 0;
        }
        if (ctx->verify_command) {
                r = run_verify_command(ctx, ret_detail);
                if (r <= 0)
                        return r;
        }
        if (asprintf(ret_detail, "%s stayed active for %u s%s", ctx->unit, settle_s,
                     ctx->verify_command ? " and the verify command succeeded" : "") < 0)
                *ret_detail = NULL;
        return 1;
}
