/*
 * config_internal.h - what the files of config/ share: the key table (keys.c), the parsers that
 * store one key's value into sx_config (parsers.c) and the value syntax they are built on
 * (values.c). config.c reads the file and, for each `key = value`, looks the key up in the table
 * and calls the row's parser.
 *
 * Not part of the module's contract: nothing outside config/ includes this. Every parser takes the
 * value exactly as written in the file (inih already stripped the surrounding blanks), returns 0
 * and writes its result only on success, and otherwise returns -EINVAL (or -ENOMEM) and writes one
 * sentence about the problem into why (SX_CONFIG_WHY_LEN bytes), which the loader prefixes with
 * "FILE:LINE: [section] key: ". The sentence quotes the value: config files hold no secrets (a
 * [storage] dsn, which could, is never quoted back).
 */
#ifndef SX_CONFIG_INTERNAL_H
#define SX_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define SX_CONFIG_WHY_LEN     256
#define SX_CONFIG_MAX_KEYS    64  /* rows the table may have (the loader's per-key state) */
#define SX_CONFIG_THREADS_MAX 256 /* [server] threads, and what 0 (the online CPUs) resolves to at most */

/* ---- the key table (keys.c) ---- */

typedef struct sx_config_item sx_config_item;

/* Store value into the field of cfg that item names. line is the key's line in the file (0 for a
 * built-in default), kept by the listeners for later messages. */
typedef int (*sx_config_parser)(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);

enum {
    SX_CONFIG_EMPTY_OFF = 1u << 0,   /* "" is accepted and means off / none / unset */
    SX_CONFIG_DASH_STDERR = 1u << 1, /* a path may be "-", stderr */
    SX_CONFIG_BYTES = 1u << 2,       /* a number counts bytes: K, M and G suffixes are accepted */
    SX_CONFIG_DURATION = 1u << 3,    /* a number counts seconds: s, m, h and d suffixes are accepted */
};

/* One row: a key, how its value is parsed, and where it goes. */
struct sx_config_item {
    sx_config_key key;           /* section, name, repeatable, default (config.h) */
    sx_config_parser parse;      /* one of the sx_config_set_* below */
    size_t offset;               /* of the field in sx_config */
    size_t size;                 /* of that field: numbers are stored in as many bytes (1, 4 or 8) */
    size_t count_offset;         /* lists: of the size_t that counts the entries */
    unsigned flags;              /* SX_CONFIG_EMPTY_OFF, SX_CONFIG_DASH_STDERR, SX_CONFIG_BYTES */
    unsigned long long min, max; /* numbers: the bounds; lists: max = most entries */
    const char *choices;         /* enums: the names, "a\0b\0"; the stored value is the index */
    const char *what;            /* enums: the names for the message, "a or b" */
};

/* The table: sx_config_n_items rows, in the order of secrets.conf.example. */
extern const sx_config_item sx_config_items[];
extern const size_t sx_config_n_items;

/* The row of [section] name, or NULL. */
const sx_config_item *sx_config_item_find(const char *section, const char *name);

/* Is there a key in [section] (name not NUL-terminated, len bytes)? */
bool sx_config_section_known(const char *section, size_t len);

/* ---- the parsers of the table's rows (parsers.c) ---- */

/* A whole number between item->min and item->max (with SX_CONFIG_BYTES: a size, K/M/G allowed). */
int sx_config_set_number(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* [seal] pwhash_opslimit, and pwhash_memlimit (SX_CONFIG_BYTES): a number, and not below libsodium's
 * INTERACTIVE preset. */
int sx_config_set_pwhash(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
int sx_config_set_bool(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* One of item->choices, stored as its index into the enum field. */
int sx_config_set_enum(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* A path made absolute against the config file's folder (flags: "" and "-" allowed or not). */
int sx_config_set_path(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* A string kept as written; "" only with SX_CONFIG_EMPTY_OFF (the message shows the default). */
int sx_config_set_string(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* The name of an environment variable, [A-Za-z_][A-Za-z0-9_]*. */
int sx_config_set_env_name(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* The same, or empty (the feature is off). */
int sx_config_set_env_name_opt(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* [server] node_id: 1..64 characters of [A-Za-z0-9._-], or "" (generated). */
int sx_config_set_node_id(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* [seal] credential: the name of a systemd credential (a file name in $CREDENTIALS_DIRECTORY: no '/',
 * not "." or "..", printable ASCII, at most SX_CONFIG_CREDENTIAL_MAX bytes), or "" for none. */
int sx_config_set_credential(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* [vault] mounts: "MOUNT:ORG" or "MOUNT" (= its own org), comma/blank separated; a mount once. */
int sx_config_set_mounts(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* [storage] dsn: a libpq connection string without a password. */
int sx_config_set_dsn(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* [seal] pcrs: "sha256:7,14" or none. */
int sx_config_set_pcrs(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* A HOST:PORT appended to a list of sx_config_listen (at most item->max; "" adds none with
 * SX_CONFIG_EMPTY_OFF). */
int sx_config_set_listen(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);
/* Networks (sx_config_cidr) separated by commas or blanks, appended to a list (at most item->max). */
int sx_config_set_networks(const sx_config_item *item, const char *value, sx_config *cfg, int line, char *why);

/* ---- the value syntax (values.c) ---- */

/* Decimal digits only (no sign, blanks or base prefix), between min and max. */
int sx_config_parse_uint(const char *v, unsigned long long min, unsigned long long max, unsigned long long *ret,
                         char *why);

/* A byte count: digits with an optional K, M or G suffix (KiB, MiB, GiB), between min and max. */
/* A duration in seconds, "90", "90s", "15m", "12h" or "7d", within min..max seconds. */
int sx_config_parse_duration(const char *v, unsigned long long min, unsigned long long max, unsigned long long *ret,
                             char *why);
int sx_config_parse_size(const char *v, unsigned long long min, unsigned long long max, unsigned long long *ret,
                         char *why);

/* true/false, yes/no, on/off, 1/0 (any case). */
int sx_config_parse_bool(const char *v, bool *ret, char *why);

/* One of the names in choices, written "a\0b\0" (any case); *ret is its index. what lists them for
 * the message. */
int sx_config_parse_enum(const char *v, const char *choices, const char *what, int *ret, char *why);

/* "host:port" or "[ipv6]:port". *ret_host is a new malloc'd string without brackets (the caller
 * frees it). */
int sx_config_parse_listen(const char *v, char **ret_host, uint16_t *ret_port, char *why);

/* v made absolute against dir (the config file's folder): a new malloc'd string. "~" is refused. */
int sx_config_resolve_path(const char *dir, const char *v, char **ret, char *why);

#endif /* SX_CONFIG_INTERNAL_H */
