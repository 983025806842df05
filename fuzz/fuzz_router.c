/*
 * fuzz_router.c - libFuzzer target for the path router and its segment validation,
 * sx_router_match(), plus sx_method_parse() and sx_method_list().
 *
 * Input: one selector byte (bits 0-2: the method among GET POST PUT DELETE HEAD PATCH LIST and
 * "unknown"; bit 3: admin scope instead of public), then the raw request path. The checks are an independent
 * statement of the path rules (README, "Errors and input rules"), so a router change that lets a
 * trick through fails here:
 *   - any result other than BAD_PATH means the path is '/' followed by non-empty segments of
 *     [A-Za-z0-9._-] only (no '%', '\', NUL, ';', empty segment, ...);
 *   - BAD_PATH always names a reason;
 *   - FOUND returns parameters that are slices of the path, as many as the pattern has, each
 *     obeying its own rule (o, p, env: 1-64 chars, first alphanumeric, and accepted by the auth
 *     module's own name check; name: 1-256 chars, not "." or ".."; id: 32 lowercase hex digits),
 *     and a route that serves the method in the scope asked for;
 *   - BAD_METHOD comes with a non-empty Allow set that excludes the method.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_common.h"
#include "server/server_internal.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_router: check failed: %s (line %d)\n", #cond, __LINE__);                             \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static bool seg_byte(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

static bool alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* '/' then one or more non-empty segments of seg_byte characters. */
static bool path_well_formed(const char *p, size_t len)
{
    if (len < 2 || p[0] != '/')
        return false;
    size_t seglen = 0;
    for (size_t i = 1; i < len; i++) {
        if (p[i] == '/') {
            if (seglen == 0)
                return false;
            seglen = 0;
        } else if (!seg_byte((unsigned char)p[i])) {
            return false;
        } else {
            seglen++;
        }
    }
    return seglen > 0;
}

/* Check a parameter against the rule of its pattern name. */
static void check_param(const char *pname, size_t plen, h2o_iovec_t v)
{
    CHECK(v.len > 0);
    for (size_t i = 0; i < v.len; i++)
        CHECK(seg_byte((unsigned char)v.base[i]));
    if (plen == 2 && memcmp(pname, "id", 2) == 0) {
        CHECK(v.len == 32);
        for (size_t i = 0; i < v.len; i++)
            CHECK((v.base[i] >= '0' && v.base[i] <= '9') || (v.base[i] >= 'a' && v.base[i] <= 'f'));
        return;
    }
    if (plen == 4 && memcmp(pname, "name", 4) == 0) {
        CHECK(v.len <= 256);
        CHECK(!(v.len == 1 && v.base[0] == '.'));
        CHECK(!(v.len == 2 && v.base[0] == '.' && v.base[1] == '.'));
        return;
    }
    CHECK((plen == 1 && (pname[0] == 'o' || pname[0] == 'p')) || (plen == 3 && memcmp(pname, "env", 3) == 0));
    CHECK(v.len <= 64 && alnum((unsigned char)v.base[0]));
    char copy[65];
    memcpy(copy, v.base, v.len);
    copy[v.len] = '\0';
    CHECK(sx_auth_name_valid(copy));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "LIST", "get"};
    const char *mname = names[data[0] & 7];
    unsigned method = sx_method_parse(mname, strlen(mname));
    CHECK((data[0] & 7) < 7 ? method == (1u << (data[0] & 7)) : method == 0);
    unsigned scope = (data[0] & 8) ? SX_ROUTE_ADMIN : SX_ROUTE_PUBLIC;

    size_t len = size - 1;
    char *path = malloc(len ? len : 1);
    CHECK(path);
    memcpy(path, data + 1, len);

    const sx_route *route = NULL;
    h2o_iovec_t params[SX_MAX_PARAMS];
    size_t nparams = 0;
    unsigned allow = 0;
    const char *bad = NULL;
    sx_route_result res = sx_router_match(scope, method, path, len, &route, params, &nparams, &allow, &bad);
    switch (res) {
    case SX_ROUTE_BAD_PATH:
        CHECK(bad && *bad);
        break;
    case SX_ROUTE_NOT_FOUND:
        /* "/" and "*" name no resource: 404 without segments to check. */
        CHECK(path_well_formed(path, len) || (len == 1 && (path[0] == '/' || path[0] == '*')));
        break;
    case SX_ROUTE_BAD_METHOD: {
        CHECK(path_well_formed(path, len));
        CHECK(allow != 0 && !(allow & method));
        char list[64];
        size_t n = sx_method_list(allow, list, sizeof(list));
        CHECK(n > 0 && n < sizeof(list) && strlen(list) == n);
        break;
    }
    case SX_ROUTE_FOUND: {
        CHECK(path_well_formed(path, len));
        /* HEAD is served by the GET route. */
        CHECK(route && (route->methods & (method == SX_HEAD ? SX_GET : method)) && (route->scope & scope) &&
              route->handler);
        /* Walk the pattern: literal segments equal the path's, parameters obey their rules. */
        const char *p = route->pattern + 1;
        const char *s = path + 1, *end = path + len;
        size_t np = 0;
        for (;;) {
            const char *pe = strchr(p, '/');
            size_t plen = pe ? (size_t)(pe - p) : strlen(p);
            CHECK(s < end);
            const char *se = memchr(s, '/', (size_t)(end - s));
            size_t slen = se ? (size_t)(se - s) : (size_t)(end - s);
            if (plen >= 2 && p[0] == '{') {
                CHECK(np < nparams);
                CHECK(params[np].base == s && params[np].len == slen);
                check_param(p + 1, plen - 2, params[np]);
                np++;
            } else {
                CHECK(slen == plen && memcmp(s, p, plen) == 0);
            }
            if (!pe) {
                CHECK(!se);
                break;
            }
            CHECK(se);
            p = pe + 1;
            s = se + 1;
        }
        CHECK(np == nparams);
        break;
    }
    default:
        CHECK(!"unknown router result");
    }
    free(path);
    return 0;
}
