/*
 * router.c - maps a method and a path to a route of the table (routes.c).
 *
 * The path rules (README, "Errors and input rules") are enforced here, before any handler or authorization runs: every
 * segment is 1+ bytes of [A-Za-z0-9._-], so "%2e%2e", "%2F", "//", NUL bytes and any other trick
 * are rejected with 400 instead of being decoded or normalised into another scope. A path made of
 * valid segments that matches no route is 404; one that matches a route with other methods is 405
 * with the allowed methods. Route parameters are then checked against their own rule (scope names
 * or secret names) so that a bad one is a 400 that names it. A last parameter written "{name*}"
 * takes the rest of the path (none or more segments, each still held to the byte rules), which its
 * handler checks itself (the Vault routes' KV paths). Methods are GET, HEAD, POST, PUT, DELETE,
 * PATCH and Vault's LIST.
 */
#include "server/server_internal.h"

#include <pthread.h>
#include <string.h>

#define MAX_SEGMENTS 16

/* Each pattern split into its segments once, so matching a request compares lengths and bytes
 * instead of re-scanning every pattern (this runs on every request). */
typedef struct route_shape {
    int nsegs;
    bool rest; /* the last segment is "{name*}": it takes the rest of the path, none or more segments */
    struct {
        const char *text; /* into the pattern; for a parameter, its name without the braces */
        size_t len;
        bool param;
    } segs[MAX_SEGMENTS];
} route_shape;

static route_shape shapes[SX_ROUTES_MAX];
static pthread_once_t shapes_once = PTHREAD_ONCE_INIT;

static void shapes_init(void)
{
    for (size_t r = 0; r < sx_route_table_len; r++) {
        route_shape *sh = &shapes[r];
        const char *p = sx_route_table[r].pattern + 1;
        for (;;) {
            const char *end = strchr(p, '/');
            size_t plen = end ? (size_t)(end - p) : strlen(p);
            bool param = plen >= 2 && p[0] == '{';
            bool rest = param && !end && plen >= 3 && p[plen - 2] == '*';
            sh->rest = rest;
            sh->segs[sh->nsegs].text = param ? p + 1 : p;
            sh->segs[sh->nsegs].len = param ? plen - 2 - (rest ? 1 : 0) : plen;
            sh->segs[sh->nsegs].param = param;
            sh->nsegs++;
            if (!end)
                break;
            p = end + 1;
        }
    }
}

size_t sx_router_count(void)
{
    return sx_route_table_len;
}

const sx_route *sx_router_at(size_t i)
{
    return i < sx_route_table_len ? &sx_route_table[i] : NULL;
}

/* The methods the router knows, in the order an Allow header lists them. */
static const struct {
    const char *name;
    unsigned bit;
} method_names[] = {{"GET", SX_GET},       {"HEAD", SX_HEAD},   {"POST", SX_POST}, {"PUT", SX_PUT},
                    {"DELETE", SX_DELETE}, {"PATCH", SX_PATCH}, {"LIST", SX_LIST}};

unsigned sx_method_parse(const char *m, size_t len)
{
    for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
        if (strlen(method_names[i].name) == len && memcmp(method_names[i].name, m, len) == 0)
            return method_names[i].bit;
    return 0;
}

size_t sx_method_list(unsigned mask, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
        if (!(mask & method_names[i].bit))
            continue;
        int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", method_names[i].name);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    return n;
}

static bool seg_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Split path into segments. Returns the count, or -1 when a segment breaks the byte rules. */
static int split(const char *path, size_t len, h2o_iovec_t *segs, const char **ret_bad)
{
    if (len == 0 || path[0] != '/') {
        *ret_bad = "the path must start with '/'";
        return -1;
    }
    int n = 0;
    size_t i = 1;
    while (i <= len) {
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start) {
            *ret_bad = "the path has an empty segment";
            return -1;
        }
        if (n == MAX_SEGMENTS) {
            *ret_bad = "the path has too many segments";
            return -1;
        }
        for (size_t j = start; j < i; j++) {
            if (!seg_char_ok((unsigned char)path[j])) {
                *ret_bad = "a path segment contains a character outside [A-Za-z0-9._-]";
                return -1;
            }
        }
        segs[n++] = h2o_iovec_init(path + start, i - start);
        i++; /* skip '/' */
    }
    return n;
}

/* Check one parameter against its rule; returns NULL or the message naming it. */
static const char *check_param(const char *pname, size_t plen, h2o_iovec_t v)
{
    if (plen == 2 && memcmp(pname, "id", 2) == 0) {
        bool ok = v.len == 32;
        for (size_t i = 0; ok && i < v.len; i++)
            ok = (v.base[i] >= '0' && v.base[i] <= '9') || (v.base[i] >= 'a' && v.base[i] <= 'f');
        return ok ? NULL : "path parameter \"id\" must be a token id (32 lowercase hex digits)";
    }
    if (plen == 4 && memcmp(pname, "slot", 4) == 0) {
        bool ok = v.len >= 1 && v.len <= 10;
        for (size_t i = 0; ok && i < v.len; i++)
            ok = v.base[i] >= '0' && v.base[i] <= '9';
        return ok ? NULL : "path parameter \"slot\" must be a slot id (1-10 decimal digits; see GET /v1/seal/slots)";
    }
    if (plen == 7 && memcmp(pname, "version", 7) == 0) {
        bool ok = v.len >= 1 && v.len <= 10;
        for (size_t i = 0; ok && i < v.len; i++)
            ok = v.base[i] >= '0' && v.base[i] <= '9';
        return ok ? NULL : "path parameter \"version\" must be a version number (1-10 decimal digits)";
    }
    if (plen == 4 && memcmp(pname, "name", 4) == 0) {
        if (v.len > 256)
            return "path parameter \"name\" must be 1-256 characters of [A-Za-z0-9._-]";
        if ((v.len == 1 && v.base[0] == '.') || (v.len == 2 && v.base[0] == '.' && v.base[1] == '.'))
            return "path parameter \"name\" must not be \".\" or \"..\"";
        return NULL;
    }
    /* o, p, env, a Vault mount: scope names */
    if (v.len > 64 || !is_alnum((unsigned char)v.base[0])) {
        if (plen == 5 && memcmp(pname, "mount", 5) == 0)
            return "the mount must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit";
        if (plen == 1 && pname[0] == 'o')
            return "path parameter \"o\" must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit";
        if (plen == 1 && pname[0] == 'p')
            return "path parameter \"p\" must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit";
        return "path parameter \"env\" must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit";
    }
    return NULL;
}

sx_route_result sx_router_match(unsigned scope, unsigned method, const char *path, size_t len,
                                const sx_route **ret_route, h2o_iovec_t *params, size_t *ret_nparams,
                                unsigned *ret_allow, const char **ret_bad)
{
    /* "/" and the asterisk form ("OPTIONS *") name no resource here: 404 like any unknown path. */
    if (len == 1 && (path[0] == '/' || path[0] == '*'))
        return SX_ROUTE_NOT_FOUND;
    h2o_iovec_t segs[MAX_SEGMENTS];
    int nsegs = split(path, len, segs, ret_bad);
    if (nsegs < 0)
        return SX_ROUTE_BAD_PATH;
    /* HEAD is served wherever GET is (RFC 9110 section 9.3.2): same handler, no body. */
    if (method == SX_HEAD)
        method = SX_GET;

    pthread_once(&shapes_once, shapes_init);
    unsigned allow = 0;
    const sx_route *found = NULL;
    const route_shape *found_shape = NULL;
    for (size_t r = 0; r < sx_route_table_len; r++) {
        const sx_route *route = &sx_route_table[r];
        const route_shape *sh = &shapes[r];
        if (!(route->scope & scope) || (sh->rest ? nsegs < sh->nsegs - 1 : sh->nsegs != nsegs))
            continue;
        int fixed = sh->rest ? sh->nsegs - 1 : nsegs;
        bool match = true;
        for (int i = 0; match && i < fixed; i++)
            if (!sh->segs[i].param &&
                (segs[i].len != sh->segs[i].len || memcmp(segs[i].base, sh->segs[i].text, segs[i].len) != 0))
                match = false;
        if (!match)
            continue;
        allow |= route->methods | (route->methods & SX_GET ? SX_HEAD : 0);
        if ((route->methods & method) && !found) {
            found = route;
            found_shape = sh;
        }
    }
    if (!found) {
        if (allow) {
            *ret_allow = allow;
            return SX_ROUTE_BAD_METHOD;
        }
        return SX_ROUTE_NOT_FOUND;
    }

    /* Collect and check the parameters; the rest of a "{name*}" is the handler's to check. */
    size_t np = 0;
    int fixed = found_shape->rest ? found_shape->nsegs - 1 : nsegs;
    for (int i = 0; i < fixed; i++) {
        if (!found_shape->segs[i].param)
            continue;
        const char *bad = check_param(found_shape->segs[i].text, found_shape->segs[i].len, segs[i]);
        if (bad) {
            *ret_bad = bad;
            return SX_ROUTE_BAD_PATH;
        }
        if (np < SX_MAX_PARAMS)
            params[np++] = segs[i];
    }
    if (found_shape->rest && np < SX_MAX_PARAMS)
        params[np++] = fixed < nsegs ? h2o_iovec_init(segs[fixed].base, (size_t)(path + len - segs[fixed].base))
                                     : h2o_iovec_init(path + len, 0);
    *ret_nparams = np;
    *ret_route = found;
    return SX_ROUTE_FOUND;
}
