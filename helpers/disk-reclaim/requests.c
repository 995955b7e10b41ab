/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Requests: read the request files a run was started for, and remove them. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heal/cleanup.h"
#include "requests.h"

void disk_requests_done(disk_requests *r) {
        for (size_t i = 0; i < r->n_files; i++)
                free(r->files[i]);
        free(r->files);
        for (size_t i = 0; i < r->n_mounts; i++)
                free(r->mounts[i]);
        free(r->mounts);
        *r = (disk_requests){};
}

static int push(char ***l, size_t *n, char *s) {
        char **nl;

        if (!s)
                return -ENOMEM;
        nl = reallocarray(*l, *n + 1, sizeof(char *));
        if (!nl) {
                free(s);
                return -ENOMEM;
        }
        nl[(*n)++] = s;
        *l = nl;
        return 0;
}

/* >0 valid (mount in *ret_mount, NULL for all), 0 malformed. */
static int parse(const char *path, char **ret_mount) {
        _cleanup_json_ json_t *j = NULL;
        json_t *m;

        j = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j))
                return 0;
        m = json_object_get(j, "mount");
        if (m && !json_is_null(m) && !(json_is_string(m) && json_string_value(m)[0] == '/'))
                return 0;
        *ret_mount = json_is_string(m) ? strdup(json_string_value(m)) : NULL;
        if (json_is_string(m) && !*ret_mount)
                return -ENOMEM;
        return 1;
}

int disk_requests_read(const char *dir, disk_requests *ret) {
        _cleanup_(disk_requests_done) disk_requests r = {};
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;
        int valid = 0, k;

        if (!d) {
                if (errno != ENOENT)
                        return -errno;
                *ret = r;
                return 0;
        }
        while ((de = readdir(d))) {
                char *path = NULL, *mount = NULL;

                /* Dotfiles are writers' temp files, not requests yet. */
                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        return -ENOMEM;
                k = push(&r.files, &r.n_files, path);
                if (k < 0)
                        return k;
                k = parse(path, &mount);
                if (k < 0)
                        return k;
                if (k == 0)
                        continue;
                valid++;
                if (!mount)
                        r.all = true;
                else if ((k = push(&r.mounts, &r.n_mounts, mount)) < 0)
                        return k;
        }
        *ret = r;
        r = (disk_requests){};
        return valid;
}

bool disk_requests_cover(const disk_requests *r, const char *mount) {
        if (r->all)
                return true;
        for (size_t i = 0; i < r->n_mounts; i++)
                if (strcmp(r->mounts[i], mount) == 0)
                        return true;
        return false;
}

int disk_requests_consume(const disk_requests *r) {
        int ret = 0;

        for (size_t i = 0; i < r->n_files; i++)
                if (unlink(r->files[i]) < 0 && errno != ENOENT && ret == 0)
                        ret = -errno;
        return ret;
}
