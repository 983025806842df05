/*
 * http_client.c - secretsctl's client of the HTTP API (see http_client.h): the settings from the
 * environment, one connection (http_wire.h) kept between requests (run --watch polls on it),
 * answers collected into buffers that are wiped when freed, and the mapping of answers to exit
 * statuses and messages.
 *
 * http:// speaks HTTP/2 with prior knowledge (h2c) unless --http1.1; https:// offers h2 and
 * http/1.1 over ALPN and verifies the server's certificate and name, against SECRETSD_CACERT when
 * it is set. SECRETSD_ADDR may carry a path (a gateway's prefix), put before every request's.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "ctl/http_client.h"

const char ctl_api_usage[] =
    "client options: --token-file PATH (else $SECRETSD_TOKEN), --http1.1 (no h2c on http://), --json\n"
    "environment:    SECRETSD_ADDR (http://HOST:PORT or https://HOST:PORT), SECRETSD_TOKEN,\n"
    "                SECRETSD_CACERT (a PEM file of the CA to trust for https://)\n"
    "exit status:    0 done, 1 server or network error, 2 usage, 3 not found, 4 unauthorized or forbidden\n";

bool ctl_api_option(ctl_api_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case CTL_OPT_TOKEN_FILE:
        o->token_file = arg;
        return true;
    case CTL_OPT_HTTP11:
        o->http11 = true;
        return true;
    case CTL_OPT_JSON:
        o->json = true;
        return true;
    default:
        return false;
    }
}

/* Read the token file into out (at most CTL_TOKEN_MAX bytes, one trailing newline dropped). */
static int read_token_file(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "secretsctl: cannot open the token file \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, out + n, cap - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            fprintf(stderr, "secretsctl: cannot read the token file \"%s\": %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n == cap - 1) {
            char extra;
            if (read(fd, &extra, 1) > 0) {
                fprintf(stderr, "secretsctl: the token file \"%s\" is too long for a token\n", path);
                close(fd);
                sodium_memzero(out, cap);
                return -1;
            }
            break;
        }
    }
    close(fd);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
    return 0;
}

/* A token is sent in a header: only printable ASCII without blanks gets there. */
static bool token_ok(const char *t)
{
    if (!*t)
        return false;
    for (const char *p = t; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return true;
}

/* Split SECRETSD_ADDR (scheme://host[:port][/path]) into where to connect. false after printing
 * why. The strings go into t (host, port, authority) as copies into buf. */
static bool parse_addr(const char *addr, bool https, char *buf, size_t cap, ctl_wire_target *t, const char **ret_path)
{
    const char *auth = addr + (https ? 8 : 7);
    size_t alen = strcspn(auth, "/");
    const char *path = auth + alen;
    if (alen == 0 || alen >= cap / 3 || memchr(auth, '@', alen) || strpbrk(path, "?#") || memchr(auth, '?', alen) ||
        memchr(auth, '#', alen)) {
        fprintf(stderr, "secretsctl: SECRETSD_ADDR \"%s\" is not http(s)://HOST[:PORT][/PATH]\n", addr);
        return false;
    }
    char *host = buf, *port = buf + cap / 3, *authority = buf + 2 * (cap / 3);
    memcpy(authority, auth, alen);
    authority[alen] = '\0';
    const char *hs = auth, *he, *rest;
    if (*auth == '[') {
        const char *rb = memchr(auth, ']', alen);
        if (!rb) {
            fprintf(stderr, "secretsctl: SECRETSD_ADDR \"%s\": an IPv6 address needs a closing ]\n", addr);
            return false;
        }
        hs = auth + 1;
        he = rb;
        rest = rb + 1;
    } else {
        he = memchr(auth, ':', alen);
        if (!he)
            he = auth + alen;
        rest = he;
    }
    bool port_ok = rest == auth + alen || (*rest == ':' && rest + 1 < auth + alen);
    for (const char *c = rest + 1; port_ok && rest != auth + alen && c < auth + alen; c++)
        port_ok = *c >= '0' && *c <= '9' && c - rest <= 5;
    if (he == hs || !port_ok) {
        fprintf(stderr, "secretsctl: SECRETSD_ADDR \"%s\" is not http(s)://HOST[:PORT][/PATH]\n", addr);
        return false;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (rest == auth + alen)
        strcpy(port, https ? "443" : "80");
    else
        snprintf(port, cap / 3, "%.*s", (int)(auth + alen - rest - 1), rest + 1);
    t->host = host;
    t->port = port;
    t->authority = authority;
    *ret_path = path;
    return true;
}

int ctl_api_open(ctl_api *a, const ctl_api_opts *o)
{
    memset(a, 0, sizeof(*a));
    const char *addr = getenv("SECRETSD_ADDR");
    if (!addr || !*addr) {
        fprintf(stderr,
                "secretsctl: set SECRETSD_ADDR to the server's address (http://HOST:PORT or https://HOST:PORT)\n");
        return CTL_EXIT_USAGE;
    }
    if (strncmp(addr, "http://", 7) != 0 && strncmp(addr, "https://", 8) != 0) {
        fprintf(stderr, "secretsctl: SECRETSD_ADDR must start with http:// or https://\n");
        return CTL_EXIT_USAGE;
    }
    a->https = strncmp(addr, "https://", 8) == 0;
    size_t alen = strlen(addr);
    while (alen > 0 && addr[alen - 1] == '/')
        alen--;
    a->base = strndup(addr, alen);
    /* "Bearer " + token: the token is read straight into its slot, never copied. */
    static const char prefix[] = "Bearer ";
    a->auth = sodium_malloc(sizeof(prefix) + CTL_TOKEN_MAX);
    if (!a->base || !a->auth) {
        fprintf(stderr, "secretsctl: out of memory\n");
        ctl_api_close(a);
        return CTL_EXIT_FAIL;
    }
    memcpy(a->auth, prefix, sizeof(prefix));
    a->token = a->auth + sizeof(prefix) - 1;
    ctl_wire_target t = {.tls = a->https,
                         .http11 = o->http11,
                         .connect_timeout_ms = CTL_API_CONNECT_TIMEOUT_MS,
                         .request_timeout_ms = CTL_API_REQUEST_TIMEOUT_MS};
    char where[3 * 512];
    const char *path = NULL;
    if (!parse_addr(a->base, a->https, where, sizeof(where), &t, &path)) {
        ctl_api_close(a);
        return CTL_EXIT_USAGE;
    }
    a->prefix = strdup(path);
    if (!a->prefix) {
        fprintf(stderr, "secretsctl: out of memory\n");
        ctl_api_close(a);
        return CTL_EXIT_FAIL;
    }
    if (o->token_file) {
        if (read_token_file(o->token_file, a->token, CTL_TOKEN_MAX) != 0) {
            ctl_api_close(a);
            return CTL_EXIT_USAGE;
        }
    } else {
        const char *tok = getenv("SECRETSD_TOKEN");
        if (!tok || !*tok) {
            fprintf(stderr, "secretsctl: no token: set SECRETSD_TOKEN or give --token-file PATH\n");
            ctl_api_close(a);
            return CTL_EXIT_USAGE;
        }
        if (strlen(tok) >= CTL_TOKEN_MAX) {
            fprintf(stderr, "secretsctl: SECRETSD_TOKEN is too long for a token\n");
            ctl_api_close(a);
            return CTL_EXIT_USAGE;
        }
        strcpy(a->token, tok);
    }
    if (!token_ok(a->token)) {
        fprintf(stderr, "secretsctl: the token is empty or holds blanks or control characters\n");
        ctl_api_close(a);
        return CTL_EXIT_USAGE;
    }
    if (a->https) {
        const char *ca = getenv("SECRETSD_CACERT");
        if (ca && *ca) {
            if (access(ca, R_OK) != 0) {
                fprintf(stderr, "secretsctl: SECRETSD_CACERT \"%s\": %s\n", ca, strerror(errno));
                ctl_api_close(a);
                return CTL_EXIT_USAGE;
            }
            t.cacert = ca;
        }
    }
    a->w = ctl_wire_new(&t);
    if (!a->w) {
        fprintf(stderr, "secretsctl: out of memory\n");
        ctl_api_close(a);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

void ctl_api_close(ctl_api *a)
{
    ctl_wire_free(a->w);
    sodium_free(a->auth); /* wipes the token */
    free(a->base);
    free(a->prefix);
    memset(a, 0, sizeof(*a));
}

const char *ctl_api_token_secret(const ctl_api *a, size_t *ret_len)
{
    const char *t = a->token;
    /* sxt_<32 hex id>_<secret> */
    if (strncmp(t, "sxt_", 4) == 0 && strlen(t) > 4 + 32 + 1 && t[4 + 32] == '_')
        t += 4 + 32 + 1;
    *ret_len = strlen(t);
    return t;
}

int ctl_api_call(ctl_api *a, const char *method, const char *path, const char *body, const char *if_none_match,
                 ctl_api_resp *ret)
{
    memset(ret, 0, sizeof(*ret));
    size_t plen = strlen(a->prefix) + strlen(path) + 1;
    char *full = malloc(plen);
    if (!full) {
        ret->err = CTL_WIRE_NOMEM;
        snprintf(ret->error, sizeof(ret->error), "out of memory");
        ret->body = calloc(1, 1);
        return -ENOMEM;
    }
    snprintf(full, plen, "%s%s", a->prefix, path);
    ctl_wire_header hdrs[3] = {{"authorization", a->auth, true}};
    size_t n = 1;
    if (if_none_match && *if_none_match)
        hdrs[n++] = (ctl_wire_header){"if-none-match", if_none_match, false};
    if (body)
        hdrs[n++] = (ctl_wire_header){"content-type", "application/json", false};
    ctl_wire_resp wr;
    int rc = ctl_wire_request(a->w, method, full, hdrs, n, body, body ? strlen(body) : 0, CTL_RESPONSE_MAX, &wr);
    free(full);
    ret->status = wr.status;
    ret->body = wr.body.data; /* the answer changes hands: wiped by ctl_api_resp_free */
    ret->len = wr.body.len;
    snprintf(ret->etag, sizeof(ret->etag), "%s", wr.etag);
    ret->err = wr.err;
    snprintf(ret->error, sizeof(ret->error), "%s", wr.error);
    if (!ret->body)
        ret->body = calloc(1, 1);
    return rc == 0 ? 0 : -EIO;
}

void ctl_api_resp_free(ctl_api_resp *r)
{
    if (r->body) {
        sodium_memzero(r->body, r->len);
        free(r->body);
    }
    r->body = NULL;
    r->len = 0;
}

bool ctl_api_unreachable(const ctl_api_resp *r)
{
    switch (r->err) {
    case CTL_WIRE_OK:
        return r->status == 502 || r->status == 503 || r->status == 504;
    case CTL_WIRE_RESOLVE:
    case CTL_WIRE_CONNECT:
    case CTL_WIRE_TIMEOUT:
    case CTL_WIRE_DROPPED:
        return true;
    default:
        return false; /* TLS verification failures among them: never papered over */
    }
}

int ctl_exit_for_status(long status)
{
    if (status >= 200 && status < 300)
        return CTL_EXIT_OK;
    if (status == 404)
        return CTL_EXIT_NOTFOUND;
    if (status == 401 || status == 403)
        return CTL_EXIT_FORBIDDEN;
    return CTL_EXIT_FAIL;
}

int ctl_api_report(const ctl_api *a, const ctl_api_resp *r, const char *what)
{
    if (r->err != CTL_WIRE_OK) {
        if (ctl_api_unreachable(r))
            fprintf(stderr, "secretsctl: cannot reach the server at %s: %s\n", a->base, r->error);
        else
            fprintf(stderr, "secretsctl: no usable answer from the server at %s: %s\n", a->base, r->error);
        return CTL_EXIT_FAIL;
    }
    int code = ctl_exit_for_status(r->status);
    if (code == CTL_EXIT_OK)
        return code;
    /* Only the server's own message: an error answer never holds a value or a token. */
    char ebuf[128];
    yajl_val v = yajl_tree_parse(r->body, ebuf, sizeof(ebuf));
    const char *epath[] = {"error", NULL};
    yajl_val e = v ? yajl_tree_get(v, epath, yajl_t_string) : NULL;
    if (e)
        fprintf(stderr, "secretsctl: %s%s%d: %s\n", what ? what : "", what ? ": " : "", (int)r->status,
                YAJL_GET_STRING(e));
    else
        fprintf(stderr, "secretsctl: %s%sthe server answered %d\n", what ? what : "", what ? ": " : "", (int)r->status);
    yajl_tree_free(v);
    return code;
}

/* One path segment by the server's rules: scope segments 1-64 of [A-Za-z0-9._-] starting with a
 * letter or digit; names 1-256 of [A-Za-z0-9._-], not "." or "..". */
static bool segment_ok(const char *s, size_t n, bool is_name)
{
    if (n == 0 || n > (is_name ? 256u : 64u))
        return false;
    if (!is_name && !isalnum((unsigned char)s[0]))
        return false;
    if (is_name && ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

int ctl_parse_target(const char *arg, bool with_name, char ret_prefix[CTL_SCOPE_MAX], char ret_name[CTL_NAME_MAX])
{
    const char *seg[4];
    size_t len[4];
    size_t want = with_name ? 4 : 3, n = 0;
    const char *p = arg;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t l = slash ? (size_t)(slash - p) : strlen(p);
        if (n == want) {
            n++;
            break;
        }
        seg[n] = p;
        len[n] = l;
        n++;
        if (!slash)
            break;
        p = slash + 1;
    }
    if (n != want) {
        fprintf(stderr, "secretsctl: \"%s\" is not %s\n", arg, with_name ? "ORG/PROJECT/ENV/NAME" : "ORG/PROJECT/ENV");
        return CTL_EXIT_USAGE;
    }
    for (size_t i = 0; i < want; i++) {
        if (!segment_ok(seg[i], len[i], i == 3)) {
            fprintf(stderr, "secretsctl: \"%s\": %s must be %s\n", arg,
                    i == 3 ? "the name" : "each of ORG, PROJECT and ENV",
                    i == 3 ? "1-256 characters of A-Z a-z 0-9 . _ -, not . or .."
                           : "1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
            return CTL_EXIT_USAGE;
        }
    }
    snprintf(ret_prefix, CTL_SCOPE_MAX, "/%.*s/%.*s/envs/%.*s", (int)len[0], seg[0], (int)len[1], seg[1], (int)len[2],
             seg[2]);
    if (with_name)
        snprintf(ret_name, CTL_NAME_MAX, "%.*s", (int)len[3], seg[3]);
    return 0;
}

int ctl_api_start(ctl_api *a, const ctl_api_opts *o, const char *arg, bool with_name, char ret_prefix[CTL_SCOPE_MAX],
                  char ret_name[CTL_NAME_MAX])
{
    int code = ctl_parse_target(arg, with_name, ret_prefix, ret_name);
    return code != 0 ? code : ctl_api_open(a, o);
}
