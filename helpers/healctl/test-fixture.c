/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test helper for test-healctl-cli.sh: fills a state dir with pending actions
 * in every state, an open breaker and a heartbeat, through libheal itself,
 * and prints the ids as shell assignments (NAME=ID). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "heal/breaker.h"
#include "heal/cleanup.h"
#include "heal/guard.h"
#include "heal/metrics.h"
#include "heal/pending.h"
#include "heal/state.h"
#include "heal/time-util.h"

static int add(heal_state *s, const char *var, const char *target, const char *tier, uint64_t not_before,
               uint64_t expires, uint64_t now) {
        _cleanup_free_ char *key = NULL;
        int r;

        if (asprintf(&key, "worker-dead|%s|%s", target, var) < 0)
                return -ENOMEM;
        heal_pending p = {
                .idem_key = key,
                .healer = (char *) "worker-reviver",
                .class = (char *) "worker-dead",
                .target = (char *) target,
                .incident = (char *) "0123456789abcdef0123456789abcdef",
                .intent = (char *) "restart",
                .tier = (char *) tier,
                .rerun_unit = (char *) "heal-worker-reviver@fixture.service",
                .status = HEAL_PENDING_WAITING,
                .created_usec = now,
                .not_before_usec = not_before,
                .expires_usec = expires,
        };
        heal_pending_id(key, p.id);
        r = heal_pending_save(s, &p);
        if (r < 0) {
                fprintf(stderr, "heal_pending_save: %s\n", strerror(-r));
                return r;
        }
        printf("%s=%s\n", var, p.id);
        return 0;
}

int main(int argc, char *argv[]) {
        heal_breaker_spec spec = { .failures = 3, .cooldown_s = 600 };
        heal_state *s = NULL;
        heal_breaker_state st;
        char *bkey;
        uint64_t now = heal_now_usec(CLOCK_REALTIME);
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: %s STATE_DIR\n", argv[0]);
                return 2;
        }
        r = heal_state_open(argv[1], &s);
        if (r < 0) {
                fprintf(stderr, "heal_state_open: %s\n", strerror(-r));
                return 1;
        }

        r = add(s, "APPROVE", "a.service", "approve", 0, now + 3600 * USEC_PER_SEC, now);
        if (r >= 0)
                r = add(s, "APPROVE2", "a2.service", "approve", 0, now + 3600 * USEC_PER_SEC, now);
        if (r >= 0)
                r = add(s, "EXPIRED", "b.service", "approve", 0, now - 60 * USEC_PER_SEC,
                        now - 7200 * USEC_PER_SEC);
        if (r >= 0)
                r = add(s, "DELAYED", "c.service", "delayed", now + 300 * USEC_PER_SEC, 0, now);
        if (r >= 0)
                r = add(s, "DUE", "d.service", "delayed", now - 60 * USEC_PER_SEC, 0,
                        now - 400 * USEC_PER_SEC);

        bkey = heal_guard_breaker_key("worker-dead", "bar.service");
        for (int i = 0; r >= 0 && i < 3; i++)
                r = heal_breaker_record(s, bkey, &spec, false, now, &st);
        free(bkey);
        if (r >= 0)
                r = heal_metrics_heartbeat(s, "worker-reviver", now);

        heal_state_free(s);
        if (r < 0) {
                fprintf(stderr, "fixture: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
