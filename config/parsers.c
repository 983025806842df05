/*
 * parsers.c - the parsers of the key table's rows (see config_internal.h): each turns the value of
 * one kind of key into the field of sx_config that its row names (item->offset), with the bounds,
 * choices and flags the row gives. The value syntax itself (numbers, sizes, addresses, paths) is
 * values.c's; what is here is where it goes and the rules a kind of key adds (a path that may be
 * empty, a list that has a most, a dsn that must not hold a password).
 *
 * A string field already holds its default when a parser runs (sx_config_load() applies the
 * table's defaults first, through these same parsers), so a new value replaces and frees it.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *field(const sx_config_item *item, sx_config *cfg)
{
    return (char *)cfg + item->offset;
}

/* A number into a field of item->size bytes; the row's bounds make it fit. */
static void store_number(const sx_config_item *item, sx_config *cfg, unsigned long long n)
{
    if (item->size == sizeof(uint32_t)) {
        uint32_t v = (uint32_t)n;
        memcpy(field(item, cfg), &v, sizeof v);
    } else {
        uint64_t v = n;
        memcpy(field(item, cfg), &v, sizeof v);
    }
}

static void replace(char **slot, char *v)
{
    free(*slot);
    *slot = v;
}

/* A string field gets a copy of v, and lets go of what it held. */
static int set_copy(const sx_config_item *item, sx_config *cfg, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return -ENOMEM;
    replace(field(item, cfg), s);
    return 0;
}

/* A whole number within the row's bounds, with K, M or G suffixes when it counts bytes. */
static int parse_number(const sx_config_item *item, const char *v, unsigned long long *ret, char *why)
{
    if (item->flags & SX_CONFIG_BYTES)
        return sx_config_parse_size(v, item->min, item->max, ret, why);
    if (item->flags & SX_CONFIG_DURATION)
        return sx_config_parse_duration(v, item->min, item->max, ret, why);
    return sx_config_parse_uint(v, item->min, item->max, ret, why);
}

int sx_config_set_number(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    unsigned long long n;
    int r = parse_number(item, v, &n, why);
    if (r == 0)
        store_number(item, cfg, n);
    return r;
}

/* Argon2id below libsodium's INTERACTIVE preset makes an offline guess of the passphrase too cheap
 * for a key that guards every secret. The memory limit (SX_CONFIG_BYTES) is named in MiB. */
int sx_config_set_pwhash(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    unsigned long long n;
    int r = parse_number(item, v, &n, why);
    if (r < 0)
        return r;
    bool memory = item->flags & SX_CONFIG_BYTES;
    if (memory && n < crypto_pwhash_MEMLIMIT_INTERACTIVE) {
        snprintf(why, SX_CONFIG_WHY_LEN,
                 "must be at least %zuM (libsodium's INTERACTIVE; the default is %zuM), got '%.100s'",
                 (size_t)crypto_pwhash_MEMLIMIT_INTERACTIVE >> 20, (size_t)crypto_pwhash_MEMLIMIT_MODERATE >> 20, v);
        return -EINVAL;
    }
    if (!memory && n < crypto_pwhash_OPSLIMIT_INTERACTIVE) {
        snprintf(why, SX_CONFIG_WHY_LEN,
                 "must be at least %llu (libsodium's INTERACTIVE; the default is %llu), got '%.100s'",
                 (unsigned long long)crypto_pwhash_OPSLIMIT_INTERACTIVE,
                 (unsigned long long)crypto_pwhash_OPSLIMIT_MODERATE, v);
        return -EINVAL;
    }
    store_number(item, cfg, n);
    return 0;
}

int sx_config_set_bool(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    bool b;
    int r = sx_config_parse_bool(v, &b, why);
    if (r == 0)
        *(bool *)field(item, cfg) = b;
    return r;
}

int sx_config_set_enum(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    int e;
    int r = sx_config_parse_enum(v, item->choices, item->what, &e, why);
    if (r == 0)
        store_number(item, cfg, (unsigned long long)e);
    return r;
}

int sx_config_set_path(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    char *s = NULL;
    int r;
    if (!*v && !(item->flags & SX_CONFIG_EMPTY_OFF)) {
        snprintf(why, SX_CONFIG_WHY_LEN, "must not be empty");
        return -EINVAL;
    }
    if (strcmp(v, "-") == 0 && !(item->flags & SX_CONFIG_DASH_STDERR)) {
        snprintf(why, SX_CONFIG_WHY_LEN, "'-' (stderr) is only allowed for [log] access_log");
        return -EINVAL;
    }
    if (!*v || strcmp(v, "-") == 0)
        s = strdup(v); /* "" = off / unset, "-" = stderr */
    else if ((r = sx_config_resolve_path(cfg->dir, v, &s, why)) < 0)
        return r;
    if (!s)
        return -ENOMEM;
    replace(field(item, cfg), s);
    return 0;
}

int sx_config_set_string(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    if (!*v && !(item->flags & SX_CONFIG_EMPTY_OFF)) {
        snprintf(why, SX_CONFIG_WHY_LEN, "must not be empty (e.g. %s)", item->key.dflt ? item->key.dflt : "");
        return -EINVAL;
    }
    return set_copy(item, cfg, v);
}

int sx_config_set_env_name(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    if (!*v || strlen(v) > 128 || (v[0] >= '0' && v[0] <= '9') ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(v)) {
        snprintf(why, SX_CONFIG_WHY_LEN, "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got '%.100s'",
                 v);
        return -EINVAL;
    }
    return set_copy(item, cfg, v);
}

int sx_config_set_env_name_opt(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    if (!*v)
        return set_copy(item, cfg, v);
    return sx_config_set_env_name(item, v, cfg, line, why);
}

int sx_config_set_node_id(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    size_t len = strlen(v);
    if (len > 64 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len) {
        snprintf(why, SX_CONFIG_WHY_LEN, "expected a node id (1..64 characters of [A-Za-z0-9._-]), got '%.100s'", v);
        return -EINVAL;
    }
    return set_copy(item, cfg, v);
}

int sx_config_set_credential(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    size_t len = strlen(v);
    bool ok = len <= SX_CONFIG_CREDENTIAL_MAX && strcmp(v, ".") != 0 && strcmp(v, "..") != 0;
    for (size_t i = 0; ok && i < len; i++)
        ok = v[i] > ' ' && v[i] < 0x7f && v[i] != '/';
    if (!ok) {
        snprintf(why, SX_CONFIG_WHY_LEN,
                 "expected a credential name (1..%d printable characters, no '/' or blank, not . or ..), got '%.100s'",
                 SX_CONFIG_CREDENTIAL_MAX, v);
        return -EINVAL;
    }
    return set_copy(item, cfg, v);
}

/* True when a libpq connection string or URI carries a password, which must come from
 * [storage] password_env or password_file instead. */
static bool dsn_has_password(const char *v)
{
    for (const char *p = v; (p = strstr(p, "password")) != NULL; p += 8) {
        const char *q = p + 8;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '=' && (p == v || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '?' || p[-1] == '&'))
            return true;
    }
    const char *a = strstr(v, "://");
    if (a && (strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0)) {
        a += 3;
        size_t alen = strcspn(a, "/?");
        const char *at = memrchr(a, '@', alen);
        if (at && memchr(a, ':', (size_t)(at - a)))
            return true; /* user:password@host */
    }
    return false;
}

int sx_config_set_dsn(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    /* Never quoted back: a mistaken value may hold a password. */
    if (dsn_has_password(v)) {
        snprintf(why, SX_CONFIG_WHY_LEN,
                 "must not contain a password; give it through [storage] password_env or password_file");
        return -EINVAL;
    }
    return set_copy(item, cfg, v);
}

int sx_config_set_pcrs(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    uint32_t mask;
    if (sx_config_parse_pcrs(v, &mask) < 0) {
        snprintf(why, SX_CONFIG_WHY_LEN, "expected none or sha256:N[,N...] with PCR numbers 0..23, got '%.100s'", v);
        return -EINVAL;
    }
    store_number(item, cfg, mask);
    return 0;
}

int sx_config_set_listen(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    sx_config_listen **list = field(item, cfg);
    size_t *n = (size_t *)((char *)cfg + item->count_offset);
    if (!*v && (item->flags & SX_CONFIG_EMPTY_OFF))
        return 0;
    if (*n >= item->max) {
        snprintf(why, SX_CONFIG_WHY_LEN, "at most %llu listeners", item->max);
        return -EINVAL;
    }
    char *host;
    uint16_t port;
    int r = sx_config_parse_listen(v, &host, &port, why);
    if (r < 0)
        return r;
    sx_config_listen *nl = realloc(*list, (*n + 1) * sizeof **list);
    if (!nl) {
        free(host);
        return -ENOMEM;
    }
    nl[*n] = (sx_config_listen){.host = host, .port = port, .line = line};
    *list = nl;
    (*n)++;
    return 0;
}

/* Call one() for each entry of a list separated by commas or blanks (n bytes at s); a list without
 * an entry is refused: "expected a list of <example>". */
static int list_each(const char *v, const char *example, char *why,
                     int (*one)(const sx_config_item *item, sx_config *cfg, const char *s, size_t n, char *why),
                     const sx_config_item *item, sx_config *cfg)
{
    bool any = false;
    for (const char *p = v;;) {
        p += strspn(p, ", \t");
        if (!*p)
            break;
        size_t n = strcspn(p, ", \t");
        int r = one(item, cfg, p, n, why);
        if (r < 0)
            return r;
        any = true;
        p += n;
    }
    if (!any) {
        snprintf(why, SX_CONFIG_WHY_LEN, "expected a list of %s", example);
        return -EINVAL;
    }
    return 0;
}

/* The list field of item, grown by one zeroed entry of size bytes within item->max ("at most N
 * <what>"); *ret_entry points at it. */
static int list_add(const sx_config_item *item, sx_config *cfg, size_t size, const char *what, char *why,
                    void **ret_entry)
{
    void **list = field(item, cfg);
    size_t *count = (size_t *)((char *)cfg + item->count_offset);
    if (*count >= item->max) {
        snprintf(why, SX_CONFIG_WHY_LEN, "at most %llu %s", item->max, what);
        return -EINVAL;
    }
    char *nl = realloc(*list, (*count + 1) * size);
    if (!nl)
        return -ENOMEM;
    *list = nl;
    *ret_entry = nl + (*count)++ * size;
    memset(*ret_entry, 0, size);
    return 0;
}

static int add_network(const sx_config_item *item, sx_config *cfg, const char *p, size_t n, char *why)
{
    char one[64];
    sx_config_cidr net;
    if (n >= sizeof one) {
        snprintf(why, SX_CONFIG_WHY_LEN, "'%.40s...' is not an IPv4 or IPv6 network", p);
        return -EINVAL;
    }
    memcpy(one, p, n);
    one[n] = '\0';
    if (sx_config_parse_cidr(one, &net) < 0) {
        snprintf(why, SX_CONFIG_WHY_LEN,
                 "'%s' is not an IPv4 or IPv6 network (ADDRESS or ADDRESS/PREFIX with no bits set past the "
                 "prefix, e.g. 10.0.0.0/8 or fd00::/8)",
                 one);
        return -EINVAL;
    }
    void *slot;
    int r = list_add(item, cfg, sizeof net, "networks", why, &slot);
    if (r == 0)
        memcpy(slot, &net, sizeof net);
    return r;
}

int sx_config_set_networks(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    (void)line;
    return list_each(v, "networks, e.g. 10.0.0.0/8, ::1", why, add_network, item, cfg);
}

/* A scope name as the API's paths take it: 1-64 characters of [A-Za-z0-9._-], the first a letter
 * or digit. */
static bool mount_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > SX_CONFIG_MOUNT_MAX ||
        !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static int add_mount(const sx_config_item *item, sx_config *cfg, const char *p, size_t n, char *why)
{
    const char *colon = memchr(p, ':', n);
    size_t ml = colon ? (size_t)(colon - p) : n;
    const char *org = colon ? colon + 1 : p;
    size_t ol = colon ? n - ml - 1 : n;
    if (!mount_name_ok(p, ml) || !mount_name_ok(org, ol)) {
        snprintf(why, SX_CONFIG_WHY_LEN,
                 "'%.*s' is not MOUNT:ORG or MOUNT (each 1-64 characters of [A-Za-z0-9._-] starting with a "
                 "letter or digit)",
                 (int)(n > 80 ? 80 : n), p);
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->n_vault_mounts; i++) {
        if (strlen(cfg->vault_mounts[i].mount) == ml && memcmp(cfg->vault_mounts[i].mount, p, ml) == 0) {
            snprintf(why, SX_CONFIG_WHY_LEN, "mount '%.*s' is listed twice", (int)ml, p);
            return -EINVAL;
        }
    }
    sx_config_mount *m;
    int r = list_add(item, cfg, sizeof *m, "mounts", why, (void **)&m);
    if (r == 0) {
        memcpy(m->mount, p, ml);
        memcpy(m->org, org, ol);
    }
    return r;
}

int sx_config_set_mounts(const sx_config_item *item, const char *v, sx_config *cfg, int line, char *why)
{
    (void)line;
    return list_each(v, "mounts, e.g. secret:acme, kv:acme", why, add_mount, item, cfg);
}
