/*
 * config_internal.h - the value parsers that config.c uses, shared with values.c only.
 *
 * Not part of the module's contract: nothing outside config/ includes this. Each parser takes the
 * value exactly as written in the file (inih already stripped the surrounding blanks), returns 0
 * and writes *ret only on success, and otherwise returns -EINVAL (or -ENOMEM) and writes one
 * sentence about the problem into why (SX_CONFIG_WHY_LEN bytes), which the loader prefixes with
 * "FILE:LINE: [section] key: ". The sentence quotes the value: config files hold no secrets.
 */
#ifndef SX_CONFIG_INTERNAL_H
#define SX_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#define SX_CONFIG_WHY_LEN 256

/* Decimal digits only (no sign, blanks or base prefix), between min and max. */
int sx_config_parse_uint(const char *v, unsigned long long min, unsigned long long max, unsigned long long *ret,
                         char *why);

/* A byte count: digits with an optional K, M or G suffix (KiB, MiB, GiB), between min and max. */
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
