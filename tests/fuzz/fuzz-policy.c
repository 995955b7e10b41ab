/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzzes the policy loader: the input, split at NUL bytes into up to four
 * documents, is validated and merged as drop-ins in that order. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "heal/policy.h"

#define MAX_DOCS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const names[MAX_DOCS] = { "00-a.json", "10-b.json", "20-c.json", "30-d.json" };
        static const char *const probes[] = { "app.service", "heal-x.service", "dbus.service", "/var", "", NULL };
        heal_policy_buffer bufs[MAX_DOCS];
        heal_policy *p = NULL;
        char *err = NULL;
        size_t n = 0;
        int r;

        /* Keep every byte: the last document takes the rest, NULs included. */
        while (n < MAX_DOCS) {
                const uint8_t *nul = n + 1 < MAX_DOCS ? memchr(data, 0, size) : NULL;
                size_t len = nul ? (size_t) (nul - data) : size;

                bufs[n] = (heal_policy_buffer){ .name = names[n], .data = data, .size = len };
                n++;
                if (!nul)
                        break;
                data += len + 1;
                size -= len + 1;
        }

        r = heal_policy_load_buffers(bufs, n, &p, &err);
        if (r >= 0) {
                /* A loaded policy must be complete and self-consistent. */
                if (!p || err || strlen(p->digest) != 16)
                        __builtin_trap();
                for (size_t i = 0; i < p->n_classes; i++) {
                        const heal_class_policy *c = &p->classes[i];
                        if (heal_policy_class(p, c->name) != c || !c->targets || !c->exclude || !c->json ||
                            !heal_mode_to_string(c->mode) || !heal_tier_to_string(c->tier) ||
                            c->budget.actions == 0 || c->breaker.failures == 0)
                                __builtin_trap();
                        for (const char *const *t = probes; *t; t++)
                                (void) heal_class_targets(c, *t);
                }
        } else if (p || !err)
                __builtin_trap();
        heal_policy_free(p);
        free(err);
        return 0;
}
