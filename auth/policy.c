/*
 * policy.c - roles, permissions, scopes, input validators and error strings.
 *
 * Authorization is a pure function of the principal and the target: the role gives a fixed set of
 * permissions (README, "Tokens") and the scope must cover the target. A scope narrows from the org down:
 * org only covers every project and env of the org; org + project covers every env of that project;
 * org + project + env covers that env only. Nothing here touches storage or allocates, so the
 * server can call sx_auth_check() on every request from any thread.
 */
#include "auth/auth_internal.h"

#include <errno.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned perms;
} roles[] = {
    [SX_AUTH_ROLE_VIEWER] = {"viewer", SX_AUTH_PERM_READ},
    [SX_AUTH_ROLE_EDITOR] = {"editor", SX_AUTH_PERM_READ | SX_AUTH_PERM_WRITE},
    [SX_AUTH_ROLE_OWNER] = {"owner",
                            SX_AUTH_PERM_READ | SX_AUTH_PERM_WRITE | SX_AUTH_PERM_SET_VALUE | SX_AUTH_PERM_REVEAL},
    [SX_AUTH_ROLE_SERVICE] = {"service", SX_AUTH_PERM_READ | SX_AUTH_PERM_REVEAL},
};

static bool role_known(sx_auth_role role)
{
    return role >= SX_AUTH_ROLE_VIEWER && role <= SX_AUTH_ROLE_SERVICE;
}

unsigned sx_auth_role_perms(sx_auth_role role)
{
    return role_known(role) ? roles[role].perms : 0;
}

const char *sx_auth_role_name(sx_auth_role role)
{
    return role_known(role) ? roles[role].name : NULL;
}

int sx_auth_role_parse(const char *s, sx_auth_role *ret_role)
{
    if (!s || !ret_role)
        return -EINVAL;
    for (int r = SX_AUTH_ROLE_VIEWER; r <= SX_AUTH_ROLE_SERVICE; r++) {
        if (strcmp(s, roles[r].name) == 0) {
            *ret_role = (sx_auth_role)r;
            return 0;
        }
    }
    return -EINVAL;
}

const char *sx_auth_perm_name(unsigned perm)
{
    switch (perm) {
    case SX_AUTH_PERM_READ:
        return "secrets:read";
    case SX_AUTH_PERM_WRITE:
        return "secrets:write";
    case SX_AUTH_PERM_SET_VALUE:
        return "secrets:set-value";
    case SX_AUTH_PERM_REVEAL:
        return "secrets:reveal";
    default:
        return NULL;
    }
}

int sx_auth_check(const sx_auth_token *principal, unsigned perm, const char *org, const char *project, const char *env)
{
    if (!principal || !org)
        return -EINVAL;
    unsigned have = sx_auth_role_perms(principal->role);
    /* An empty mask or an unknown bit is never granted: fail closed. */
    if (perm == 0 || (perm & ~have) != 0)
        return SX_AUTH_EFORBIDDEN;
    if (principal->revoked)
        return SX_AUTH_EFORBIDDEN;
    if (strcmp(principal->org, org) != 0)
        return SX_AUTH_EFORBIDDEN;
    if (principal->project[0] && (!project || strcmp(principal->project, project) != 0))
        return SX_AUTH_EFORBIDDEN;
    if (principal->env[0] && (!env || strcmp(principal->env, env) != 0))
        return SX_AUTH_EFORBIDDEN;
    return 0;
}

/* --- validators ------------------------------------------------------------------------------------- */

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool sx_auth_name_valid_n(const char *s, size_t len)
{
    if (!s || len == 0 || len > SX_AUTH_NAME_MAX || !is_alnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

bool sx_auth_name_valid(const char *s)
{
    return s && sx_auth_name_valid_n(s, strnlen(s, SX_AUTH_NAME_MAX + 1));
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF) without C0, DEL or C1 controls. */
bool sx_auth_label_valid_n(const char *s, size_t len)
{
    if (!s || len > SX_AUTH_LABEL_MAX)
        return false;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            p++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) < n)
            return false;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        p += n;
    }
    return true;
}

bool sx_auth_label_valid(const char *s)
{
    return s && sx_auth_label_valid_n(s, strnlen(s, SX_AUTH_LABEL_MAX + 1));
}

int sx_auth_ttl_parse(const char *s, int64_t *ret_ms)
{
    if (!s || !ret_ms)
        return -EINVAL;
    int64_t n = 0;
    size_t i = 0;
    /* At most 10 digits: 3650 days is 315360000 s, so anything longer is out of range anyway and
     * the product below cannot overflow. A leading zero is allowed ("07d") but not required. */
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (i >= 10)
            return -EINVAL;
        n = n * 10 + (s[i] - '0');
    }
    if (i == 0 || s[i] == '\0' || s[i + 1] != '\0')
        return -EINVAL;
    int64_t unit;
    switch (s[i]) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 24 * 3600 * 1000;
        break;
    default:
        return -EINVAL;
    }
    int64_t ms = n * unit;
    if (n == 0 || ms > SX_AUTH_TTL_MAX_MS)
        return -EINVAL;
    *ret_ms = ms;
    return 0;
}

/* --- errors ----------------------------------------------------------------------------------------- */

const char *sx_auth_strerror(int code)
{
    switch (code) {
    case -EINVAL:
        return "invalid argument";
    case -ENOENT:
        return "no such token";
    case -EEXIST:
        return "token id already exists";
    case -ENOMEM:
        return "out of memory";
    case -EBADMSG:
        return "stored token record is corrupt";
    case -EBUSY:
        return "token record changed concurrently too often";
    default:
        if (code <= -1000 && code > -1100)
            return sx_storage_strerror(code);
        return sx_strerror(code);
    }
}
