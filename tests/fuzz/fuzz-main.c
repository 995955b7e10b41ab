/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replays fuzzer corpora without libFuzzer: every file under the given
 * paths (files or dirs) is fed once to LLVMFuzzerTestOneInput. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        if (!f) {
                perror(path);
                return -1;
        }
        size_t cap = 4096, len = 0;
        uint8_t *buf = malloc(cap);
        size_t n;
        while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
                len += n;
                if (len == cap) {
                        uint8_t *nb = realloc(buf, cap *= 2);
                        if (!nb) {
                                free(buf);
                                buf = NULL;
                        } else
                                buf = nb;
                }
        }
        fclose(f);
        if (!buf)
                return -1;
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        return 0;
}

static int run_path(const char *path, unsigned *count) {
        struct stat st;
        if (stat(path, &st) < 0) {
                perror(path);
                return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
                (*count)++;
                return run_file(path);
        }
        DIR *d = opendir(path);
        if (!d)
                return -1;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char *p = NULL;
                if (asprintf(&p, "%s/%s", path, de->d_name) < 0) {
                        r = -1;
                        break;
                }
                if (run_path(p, count) < 0)
                        r = -1;
                free(p);
        }
        closedir(d);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i], &count) < 0)
                        return EXIT_FAILURE;
        if (count == 0) {
                fprintf(stderr, "no corpus files given\n");
                return EXIT_FAILURE;
        }
        printf("%u inputs replayed\n", count);
        return EXIT_SUCCESS;
}
