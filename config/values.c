/*
 * values.c - parsers for the kinds of value a secretsd config file holds (see config_internal.h),
 * and sx_config_parse_pcrs() from config.h.
 *
 * They are strict on purpose: a typo in a limit or an address should stop start-up with a clear
 * message rather than be read as something else. Numbers are plain decimal (no sign, no 0x, no
 * blanks inside), sizes count in KiB multiples, and a host is either a numeric address or a name
 * made of letters, digits, '-' and '.'.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Decimal digits only (no sign, no spaces), at most max. */
int sx_config_parse_uint(const char *v, unsigned long long min, unsigned long long max, unsigned long long *ret,
                         char *why)
{
    unsigned long long n = 0;
    const char *p = v;
    if (*p == '-') {
        snprintf(why, SX_CONFIG_WHY_LEN, "must not be negative, got '%.100s'", v);
        return -EINVAL;
    }
    if (*p < '0' || *p > '9') {
        snprintf(why, SX_CONFIG_WHY_LEN, "expected a whole number, got '%.100s'", v);
        return -EINVAL;
    }
    bool overflow = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (ULLONG_MAX - d) / 10)
            overflow = true;
        else
            n = n * 10 + d;
    }
    if (*p) {
        snprintf(why, SX_CONFIG_WHY_LEN, "expected a whole number, got '%.100s'", v);
        return -EINVAL;
    }
    if (overflow || n < min || n > max) {
        snprintf(why, SX_CONFIG_WHY_LEN, "must be %llu..%llu, got '%.100s'", min, max, v);
        return -EINVAL;
    }
    *ret = n;
    return 0;
}

/* A unit suffix and what it multiplies by. */
typedef struct suffix {
    char c;
    unsigned long long mult;
} suffix;

/* A whole number with an optional suffix from sfx (n of them), scaled, between min and max; what
 * names the expected form and unit the unit of min and max, for the message. A leading '-' gets a
 * message of its own when negative is set. */
static int parse_scaled(const char *v, const suffix *sfx, size_t n, const char *what, const char *unit, bool negative,
                        unsigned long long min, unsigned long long max, unsigned long long *ret, char *why)
{
    size_t len = strlen(v);
    unsigned long long mult = 1;
    char digits[32];
    for (size_t i = 0; len > 0 && i < n; i++) {
        if (v[len - 1] == sfx[i].c) {
            mult = sfx[i].mult;
            len--;
            break;
        }
    }
    if (negative && v[0] == '-') {
        snprintf(why, SX_CONFIG_WHY_LEN, "must not be negative, got '%.100s'", v);
        return -EINVAL;
    }
    if (len == 0 || len >= sizeof digits || strspn(v, "0123456789") != len) {
        snprintf(why, SX_CONFIG_WHY_LEN, "expected %s, got '%.100s'", what, v);
        return -EINVAL;
    }
    memcpy(digits, v, len);
    digits[len] = '\0';
    unsigned long long num;
    if (sx_config_parse_uint(digits, 0, ULLONG_MAX, &num, why) < 0 || num > ULLONG_MAX / mult || num * mult < min ||
        num * mult > max) {
        snprintf(why, SX_CONFIG_WHY_LEN, "must be %llu..%llu %s, got '%.100s'", min, max, unit, v);
        return -EINVAL;
    }
    *ret = num * mult;
    return 0;
}

/* A size: digits with an optional K, M or G suffix (KiB, MiB, GiB), between min and max. */
int sx_config_parse_size(const char *v, unsigned long long min, unsigned long long max, unsigned long long *ret,
                         char *why)
{
    static const suffix sizes[] = {{'K', 1ULL << 10}, {'k', 1ULL << 10}, {'M', 1ULL << 20},
                                   {'m', 1ULL << 20}, {'G', 1ULL << 30}, {'g', 1ULL << 30}};
    return parse_scaled(v, sizes, sizeof(sizes) / sizeof(sizes[0]),
                        "a size (a whole number, optionally followed by K, M or G)", "bytes", true, min, max, ret, why);
}

int sx_config_parse_duration(const char *v, unsigned long long min, unsigned long long max, unsigned long long *ret,
                             char *why)
{
    static const suffix units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    return parse_scaled(v, units, sizeof(units) / sizeof(units[0]),
                        "a duration (a whole number of seconds, or followed by s, m, h or d)", "seconds", false, min,
                        max, ret, why);
}

int sx_config_parse_bool(const char *v, bool *ret, char *why)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *ret = strcasecmp(v, yes[i]) == 0;
            return 0;
        }
    }
    snprintf(why, SX_CONFIG_WHY_LEN, "expected true/false, yes/no, on/off or 1/0, got '%.100s'", v);
    return -EINVAL;
}

/* One of the n NUL-separated names in choices ("a\0b\0"); *ret is its index. */
int sx_config_parse_enum(const char *v, const char *choices, const char *what, int *ret, char *why)
{
    int i = 0;
    for (const char *p = choices; *p; p += strlen(p) + 1, i++) {
        if (strcasecmp(v, p) == 0) {
            *ret = i;
            return 0;
        }
    }
    snprintf(why, SX_CONFIG_WHY_LEN, "expected %s, got '%.100s'", what, v);
    return -EINVAL;
}

/* A host name: letters, digits, '-' and '.', 1..253 bytes, and not an all-numeric dotted quad that
 * inet_pton rejected (999.1.1.1 is a typo, not a name). */
static bool valid_host_name(const char *h)
{
    size_t len = strlen(h);
    if (len == 0 || len > 253 || h[0] == '-' || h[0] == '.')
        return false;
    if (strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != len)
        return false;
    return strspn(h, "0123456789.") != len;
}

/* "host:port" or "[ipv6]:port" into a malloc'd host (without brackets) and a port. */
int sx_config_parse_listen(const char *v, char **ret_host, uint16_t *ret_port, char *why)
{
    const char *colon, *host = v;
    size_t hlen;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':') {
            snprintf(why, SX_CONFIG_WHY_LEN, "expected [IPV6]:PORT, e.g. [::1]:8080, got '%.100s'", v);
            return -EINVAL;
        }
        host = v + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon) {
            snprintf(why, SX_CONFIG_WHY_LEN, "expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080, got '%.100s'", v);
            return -EINVAL;
        }
        if (memchr(v, ':', (size_t)(colon - v))) {
            snprintf(why, SX_CONFIG_WHY_LEN, "an IPv6 address must be in brackets, e.g. [::1]:8080, got '%.100s'", v);
            return -EINVAL;
        }
        hlen = (size_t)(colon - v);
    }
    if (hlen == 0) {
        snprintf(why, SX_CONFIG_WHY_LEN, "missing host in '%.100s' (0.0.0.0 or [::] listens on every address)", v);
        return -EINVAL;
    }
    unsigned long long port;
    if (sx_config_parse_uint(colon + 1, 0, 65535, &port, why) < 0) {
        snprintf(why, SX_CONFIG_WHY_LEN, "bad port in '%.100s' (expected 0..65535)", v);
        return -EINVAL;
    }
    char *h = strndup(host, hlen);
    if (!h)
        return -ENOMEM;
    unsigned char addr[16];
    bool ok = v[0] == '[' ? inet_pton(AF_INET6, h, addr) == 1 : inet_pton(AF_INET, h, addr) == 1 || valid_host_name(h);
    if (!ok) {
        snprintf(why, SX_CONFIG_WHY_LEN, "bad %s in '%.100s'", v[0] == '[' ? "IPv6 address" : "host", v);
        free(h);
        return -EINVAL;
    }
    *ret_host = h;
    *ret_port = (uint16_t)port;
    return 0;
}

int sx_config_parse_pcrs(const char *s, uint32_t *ret_mask)
{
    if (!s || !ret_mask)
        return -EINVAL;
    if (*s == '\0' || strcasecmp(s, "none") == 0) {
        *ret_mask = 0;
        return 0;
    }
    if (strncasecmp(s, "sha256:", 7) != 0)
        return -EINVAL;
    uint32_t mask = 0;
    const char *p = s + 7;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned n = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (unsigned)(*p++ - '0');
            if (n > 23)
                return -EINVAL;
        }
        if (mask & (1u << n))
            return -EINVAL; /* listed twice: surely a typo */
        mask |= 1u << n;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (*p++ != ',')
            return -EINVAL;
    }
    *ret_mask = mask;
    return 0;
}

/* Resolve a path against the config file's folder into a new malloc'd absolute path. */
int sx_config_resolve_path(const char *dir, const char *v, char **ret, char *why)
{
    if (v[0] == '~') {
        snprintf(why, SX_CONFIG_WHY_LEN,
                 "'~' is not expanded; use an absolute path or one relative to the config file, got '%.100s'", v);
        return -EINVAL;
    }
    char *p;
    if (v[0] == '/') {
        p = strdup(v);
    } else {
        while (v[0] == '.' && v[1] == '/') /* "./x" and ".//x" are "x" */
            for (v += 2; *v == '/'; v++)
                ;
        if (*v == '\0' || strcmp(v, ".") == 0) {
            p = strdup(dir);
        } else {
            size_t n = strlen(dir) + strlen(v) + 2;
            if ((p = malloc(n)))
                snprintf(p, n, "%s/%s", dir, v);
        }
    }
    if (!p)
        return -ENOMEM;
    *ret = p;
    return 0;
}

/* ---- networks ([server] trusted_proxies) ---- */

int sx_config_parse_cidr(const char *s, sx_config_cidr *ret)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (!s || !ret || strlen(s) >= sizeof buf)
        return -EINVAL;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    sx_config_cidr n = {0};
    if (inet_pton(AF_INET, buf, n.addr) == 1)
        n.family = 4;
    else if (inet_pton(AF_INET6, buf, n.addr) == 1)
        n.family = 6;
    else
        return -EINVAL;
    unsigned max = n.family == 4 ? 32 : 128;
    unsigned long long prefix = max;
    if (slash) {
        char why[SX_CONFIG_WHY_LEN];
        if (!slash[1] || (slash[1] == '0' && slash[2]) || sx_config_parse_uint(slash + 1, 0, max, &prefix, why) < 0)
            return -EINVAL;
    }
    n.prefix = (uint8_t)prefix;
    /* No host bits: "10.0.0.1/8" is more likely a typo than a wish to trust 16 M addresses. */
    for (unsigned bit = n.prefix; bit < max; bit++)
        if (n.addr[bit / 8] & (0x80u >> (bit % 8)))
            return -EINVAL;
    *ret = n;
    return 0;
}

bool sx_config_cidr_match(const sx_config_cidr *net, int family, const uint8_t *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!net || !addr)
        return false;
    if (family == 6 && net->family == 4 && memcmp(addr, mapped, 12) == 0) {
        family = 4;
        addr += 12;
    }
    if (family != net->family)
        return false;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(addr, net->addr, full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rest));
        if ((addr[full] & mask) != net->addr[full])
            return false;
    }
    return true;
}
