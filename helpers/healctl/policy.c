/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* healctl policy check|keys: validate the drop-ins and show what is in effect. */
#include <string.h>

#include "healctl.h"
#include "heal/paths.h"
#include "heal/policy.h"

static void policy_help(void) {
        printf("Usage: healctl policy check [--json] [FILE...]\n"
               "       healctl policy keys [--describe]\n\n"
               "check   load, validate and merge the policy drop-ins (or FILEs, merged in the\n"
               "        order given) and print the effective policy with its digest.\n"
               "        Errors name the file and key; exit status 4 when invalid.\n"
               "keys    every key the policy accepts (--describe: with type, default, meaning).\n");
}

static int policy_check(char *const *files, bool json) {
        _cleanup_(heal_policy_freep) heal_policy *p = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        if (files && files[0])
                r = heal_policy_load_files((const char *const *) files, &p, &error);
        else
                r = heal_policy_load(NULL, &p, &error);
        if (r < 0) {
                if (error)
                        log_error("policy invalid: %s", error);
                else if (r == -ENOENT && !(files && files[0])) {
                        const char *const *dirs = heal_path_policy_dirs();
                        log_error("no policy file (*.json) in any of the policy dirs:");
                        for (const char *const *d = dirs; *d; d++)
                                fprintf(stderr, "  %s\n", *d);
                } else
                        log_error_errno(r, "policy could not be loaded");
                return CTL_EXIT_POLICY;
        }

        if (json) {
                _cleanup_json_ json_t *o = json_pack("{s:s, s:O}", "digest", p->digest, "policy", p->merged);
                if (!o)
                        return log_error_errno(-ENOMEM, "out of memory"), CTL_EXIT_FAILURE;
                return json_print(o, stdout) < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
        }

        printf("# heal policy, digest %s, %zu class%s\n", p->digest, p->n_classes,
               p->n_classes == 1 ? "" : "es");
        if (json_dumpf(p->merged, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
                return CTL_EXIT_FAILURE;
        putchar('\n');
        return CTL_EXIT_OK;
}

/* One getopt pass over @argv: -1 to go on, or the exit code (--help, a bad option). */
static int parse_options(int argc, char *argv[], const char *optstring, bool *json, bool *describe) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "describe", no_argument, NULL, 'd' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, optstring, options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        policy_help();
                        return CTL_EXIT_OK;
                case 'j':
                        *json = true;
                        break;
                case 'd':
                        *describe = true;
                        break;
                default:
                        return usage_error("policy", "bad option");
                }
        return -1;
}

int verb_policy(int argc, char *argv[]) {
        bool json = false, describe = false;
        int r;

        r = parse_options(argc, argv, "+h", &json, &describe);
        if (r >= 0)
                return r;

        /* Options may also follow the sub-verb. */
        if (optind >= argc)
                return usage_error("policy", "missing 'check' or 'keys'");
        const char *sub = argv[optind];
        int sub_argc = argc - optind;
        char **sub_argv = argv + optind;

        r = parse_options(sub_argc, sub_argv, "h", &json, &describe);
        if (r >= 0)
                return r;

        if (strcmp(sub, "check") == 0) {
                if (describe)
                        return usage_error("policy", "--describe goes with 'keys'");
                return policy_check(sub_argv + optind, json);
        }
        if (strcmp(sub, "keys") == 0) {
                if (optind < sub_argc)
                        return usage_error("policy", "'keys' takes no arguments");
                const char *keys = describe ? heal_policy_schema_describe() : heal_policy_schema_keys();
                size_t l = strlen(keys);
                fputs(keys, stdout);
                if (l > 0 && keys[l - 1] != '\n')
                        putchar('\n');
                return CTL_EXIT_OK;
        }
        return usage_error("policy", "unknown sub-command '%s'", sub);
}
