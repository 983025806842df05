/*
 * envmap.h - an environment's values as secretsctl's `export` and `run` handle them: the server's
 * `GET .../values` map parsed into name/value pairs, narrowed by --only and renamed by --prefix,
 * checked against the rules of environment variable names, and written as dotenv, shell or JSON.
 * Part of secretsctl only.
 *
 * Values are plaintext here. They live in malloc'd buffers that ctl_envmap_free() and
 * ctl_text_free() wipe before freeing; nothing in this file logs or prints a value except the
 * formatters, to the output the user asked for.
 */
#ifndef SX_CTL_ENVMAP_H
#define SX_CTL_ENVMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/text.h"

typedef struct ctl_var {
    char *name;  /* malloc'd, NUL-terminated; the prefix included after ctl_envmap_select() */
    char *value; /* malloc'd, NUL-terminated (a value may also hold NUL bytes: value_len counts them) */
    size_t value_len;
} ctl_var;

/* The pairs in the server's order (sorted by name). */
typedef struct ctl_envmap {
    ctl_var *vars;
    size_t n, cap;
} ctl_envmap;

/* Append n bytes of v as a JSON string: quotes, backslashes and control characters escaped,
 * other bytes (UTF-8) as they are. */
void ctl_text_add_json_string(ctl_text *t, const char *v, size_t n);

/* Parse the JSON object of strings of `GET .../values` into *ret (which the caller frees with
 * ctl_envmap_free, also on failure). lenient: members whose value is a number, a boolean or null
 * are left out instead of failing (a reveal's answer has "version"). Returns 0, or -EINVAL when
 * the text is not such an object. */
int ctl_envmap_parse(const char *json, size_t len, bool lenient, ctl_envmap *ret);
void ctl_envmap_free(ctl_envmap *m);

/* Keep only the names of the comma-separated list only (NULL: all), then put prefix (NULL: none)
 * before each name. Returns 0, or -ENOENT after printing which listed names have no value. */
int ctl_envmap_select(ctl_envmap *m, const char *only, const char *prefix);

/* True for a valid environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
bool ctl_env_name_ok(const char *name);

/* The pairs an environment cannot hold: names that are not environment identifiers, values with
 * a NUL byte. skip: drop them with a warning on stderr and return 0; else print the list and
 * return -EINVAL. what names the use ("run", "the dotenv format") in messages. */
int ctl_envmap_check_env(ctl_envmap *m, bool skip, const char *what);

typedef enum ctl_format { CTL_FORMAT_DOTENV, CTL_FORMAT_SHELL, CTL_FORMAT_JSON } ctl_format;

/* Parse "dotenv", "shell" or "json"; -EINVAL otherwise. */
int ctl_format_parse(const char *s, ctl_format *ret);

/* Append the pairs in format f to out:
 *  dotenv: NAME='value' lines (POSIX single quotes; a ' is written '\''), so `set -a; . FILE` in
 *          sh or bash gives back every value byte for byte, newlines included;
 *  shell:  the same lines with "export " before them;
 *  json:   one object {"NAME":"value",...} (control characters escaped, UTF-8 kept as it is). */
void ctl_envmap_format(const ctl_envmap *m, ctl_format f, ctl_text *out);

/* Write len bytes to path with mode 0600: into a new temporary file in the same folder, fsync'd,
 * then renamed over path (so a reader sees the old file or the new one, never a part). Returns 0
 * or a negative errno. */
int ctl_write_private_file(const char *path, const void *data, size_t len);

#endif /* SX_CTL_ENVMAP_H */
