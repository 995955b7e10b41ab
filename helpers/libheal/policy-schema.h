/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The policy schema (internal to libheal): one declarative table that validates
 * each file, fills in defaults and lists the accepted keys. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum heal_schema_type {
        HEAL_SCHEMA_INT,     /* integer in min..max (no reals, no booleans) */
        HEAL_SCHEMA_ENUM,    /* one of values[] */
        HEAL_SCHEMA_COMMAND, /* non-empty string, or null */
        HEAL_SCHEMA_GLOBS,   /* array of non-empty strings (fnmatch patterns) */
        HEAL_SCHEMA_OBJECT,  /* fixed keys: children[] */
        HEAL_SCHEMA_MAP,     /* free keys checked by key_valid(), each an object of children[] */
        HEAL_SCHEMA_BOOL,    /* true or false */
        HEAL_SCHEMA_STRING,  /* non-empty string */
        HEAL_SCHEMA_ENUMS,   /* array of values[], each at most once */
        HEAL_SCHEMA_ARRAY,   /* array of objects, each validated by children[] (required ones per element);
                              * listed as "KEY" and "KEY[].CHILD"; element defaults are filled in */
} heal_schema_type;

typedef struct heal_schema_key {
        const char *name;
        heal_schema_type type;
        int64_t min, max;                        /* HEAL_SCHEMA_INT */
        const char *const *values;               /* HEAL_SCHEMA_ENUM and ENUMS, NULL-terminated */
        const struct heal_schema_key *children;  /* OBJECT, MAP and ARRAY, ended by a NULL name */
        bool (*key_valid)(const char *key);      /* MAP */
        const char *key_rule;                    /* MAP: what key_valid() wants, for messages */
        bool required;                           /* must be set by at least one file */
        const char *def;                         /* JSON text of the default; NULL: none */
        const char *doc;                         /* one line for a person */
} heal_schema_key;

/* The top level of a policy file, ended by a NULL name. */
extern const heal_schema_key heal_schema_root[];

/* [a-z0-9][a-z0-9:_.-]*, at most 64 characters; A-Z also allowed after "alert:". */
bool heal_schema_class_name_valid(const char *name);

/**
 * heal_schema_validate() - check one parsed file against the schema.
 * @source: the file name, first word of the message.
 * @ret_error: on -EINVAL, "SOURCE: KEY.PATH: what is wrong" (caller frees).
 * Returns 0, -EINVAL, or -ENOMEM.
 */
int heal_schema_validate(const json_t *root, const char *source, char **ret_error);

/**
 * heal_schema_apply_defaults() - fill every missing key of the merged policy
 * with its default, in place. A missing required key is -EINVAL with
 * @ret_error "KEY.PATH: ..." (caller frees). Returns 0, -EINVAL, -ENOMEM.
 */
int heal_schema_apply_defaults(json_t *root, char **ret_error);
