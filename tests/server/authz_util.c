/*
 * authz_util.c - the shared helpers of test_authz (see authz_util.h).
 */
#include <curl/curl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "authz_util.h"

/* ---- tokens and JSON ----------------------------------------------------------------------------- */

bool is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int b64url_index(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* sxt_<32 lowercase hex>_<43 base64url> */
bool token_well_formed(const char *t)
{
    if (strlen(t) != TOKEN_LEN || strncmp(t, "sxt_", 4) != 0 || t[36] != '_')
        return false;
    for (int i = 4; i < 36; i++)
        if (!is_hex_lower(t[i]))
            return false;
    for (int i = 37; i < TOKEN_LEN; i++)
        if (b64url_index(t[i]) < 0)
            return false;
    return true;
}

void token_split(const char *t, token_parts *p)
{
    memset(p, 0, sizeof(*p));
    memcpy(p->id, t + 4, 32);
    memcpy(p->secret, t + 37, 43);
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (int i = 0; i < 43; i++) {
        acc = (acc << 6) | (uint32_t)b64url_index(p->secret[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n < sizeof(p->raw))
                p->raw[n++] = (unsigned char)(acc >> bits);
        }
    }
}

/* A random, well-formed token that the server never issued (the last secret character is one of
 * those whose unused low bits are zero, as the canonical encoding requires). */
void random_token(char out[TOKEN_LEN + 1])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    memcpy(out, "sxt_", 4);
    for (int i = 4; i < 36; i++)
        out[i] = "0123456789abcdef"[rand() % 16];
    out[36] = '_';
    for (int i = 37; i < TOKEN_LEN - 1; i++)
        out[i] = b64[rand() % 64];
    out[TOKEN_LEN - 1] = "AEIMQUYcgkosw048"[rand() % 16];
    out[TOKEN_LEN] = '\0';
}

/* The same token id with another (well-formed) secret. */
void wrong_secret_of(const char *token, char out[TOKEN_LEN + 1])
{
    random_token(out);
    memcpy(out, token, 37);
}

/* A string member of a JSON object body, malloc'd; NULL when absent or not a string. */
char *json_str(const char *body, const char *key)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(body, ebuf, sizeof(ebuf));
    const char *path[] = {key, NULL};
    yajl_val s = v ? yajl_tree_get(v, path, yajl_t_string) : NULL;
    const char *str = s ? YAJL_GET_STRING(s) : NULL;
    char *out = str ? strdup(str) : NULL;
    yajl_tree_free(v);
    return out;
}

bool json_is(const char *body, yajl_type type)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(body, ebuf, sizeof(ebuf));
    bool ok = v && ((type == yajl_t_array && YAJL_IS_ARRAY(v)) || (type == yajl_t_object && YAJL_IS_OBJECT(v)));
    yajl_tree_free(v);
    return ok;
}

/* ---- an HTTP client bound to a chosen source address ----------------------------------------------- */

void client_init(client *c, const sx_srv *srv, sx_proto proto, const char *src, bool fresh)
{
    memset(c, 0, sizeof(*c));
    c->srv = srv;
    c->proto = proto;
    /* libcurl 7.88.1 (Debian 12) cannot reuse an h2c prior-knowledge connection: the second request
     * fails with "Error in the HTTP2 framing layer" (curl/curl#10634, fixed in 8.0.0). So h2c
     * clients open a connection per request; kept connections are HTTP/1.1 or TLS h2. */
    c->fresh = fresh || proto == SX_H2C;
    if (src)
        snprintf(c->iface, sizeof(c->iface), "host!%s", src);
    c->h = curl_easy_init();
}

void client_clear(client *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    c->h = NULL;
}

/* authz: the Authorization value or NULL; ctype: the Content-Type or NULL. Returns 0 when an HTTP
 * answer came back. */
int client_send(client *c, const char *method, const char *path, const char *authz, const char *ctype, const char *body,
                sx_resp *ret)
{
    memset(ret, 0, sizeof(*ret));
    CURL *h = c->h;
    curl_easy_reset(h); /* keeps the connection cache */
    bool tls = c->proto == SX_H2TLS || c->proto == SX_H1TLS;
    char url[1024];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", tls ? "https" : "http", tls ? c->srv->tls_port : c->srv->port,
             path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (c->iface[0])
        curl_easy_setopt(h, CURLOPT_INTERFACE, c->iface);
    if (c->fresh) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
    if (c->proto == SX_H2C)
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    else if (c->proto == SX_H2TLS)
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    else
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (tls) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->srv->cert_path);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hl = NULL;
    char line[512];
    if (authz) {
        snprintf(line, sizeof(line), "Authorization: %s", authz);
        hl = curl_slist_append(hl, line);
    }
    if (ctype) {
        snprintf(line, sizeof(line), "Content-Type: %s", ctype);
        hl = curl_slist_append(hl, line);
    }
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode rc = sx_resp_perform(h, ret);
    c->connects = -1;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &c->connects);
    else
        fprintf(stderr, "client: %s %s: %s\n", method, path, curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    return rc == CURLE_OK ? 0 : -1;
}

/* A request with "Authorization: Bearer token" (none when token is NULL) and a JSON body. */
int client_req(client *c, const char *method, const char *path, const char *token, const char *body, sx_resp *ret)
{
    char authz[160];
    if (token)
        snprintf(authz, sizeof(authz), "Bearer %s", token);
    return client_send(c, method, path, token ? authz : NULL, body ? "application/json" : NULL, body, ret);
}

/* 401, `WWW-Authenticate: Bearer`, the JSON error form with code "unauthorized". */
bool is_unauthorized(const sx_resp *r)
{
    char wa[64];
    if (r->status != 401) {
        fprintf(stderr, "expected 401, got %ld: %s\n", r->status, r->body);
        return false;
    }
    if (!sx_resp_header(r, "www-authenticate", wa, sizeof(wa)) || strcmp(wa, "Bearer") != 0) {
        fprintf(stderr, "401 without WWW-Authenticate: Bearer\n");
        return false;
    }
    return sx_resp_is_error(r, "unauthorized");
}

/* One status check with a short description of the request when it fails. */
int expect_status(const sx_resp *r, long want, const char *what)
{
    if (r->status == want)
        return 0;
    fprintf(stderr, "%s: got %ld, want %ld: %s\n", what, r->status, want, r->body);
    return 1;
}

char *ctl_cmd(char *buf, size_t cap, const sx_srv *srv, const char *args)
{
    snprintf(buf, cap, "'%s' --socket '%s' %s", SX_SECRETSCTL_PATH, srv->admin_socket, args);
    return buf;
}

/* Neither the server's log nor its access log holds anything token-like ("sxt_" never; the logs
 * name tokens by their bare id) or any of the given strings. */
bool logs_clean(const sx_srv *srv, const char *const *never, size_t n)
{
    const char *files[2] = {srv->stderr_path, srv->access_log};
    bool ok = true;
    for (int f = 0; f < 2; f++) {
        size_t len = 0;
        char *log = sx_test_read_file(files[f], &len);
        if (!log) {
            fprintf(stderr, "cannot read %s\n", files[f]);
            ok = false;
            continue;
        }
        if (sx_test_memmem(log, len, "sxt_", 4)) {
            fprintf(stderr, "%s holds a token\n", files[f]);
            ok = false;
        }
        for (size_t i = 0; i < n; i++) {
            if (never[i] && sx_test_memmem(log, len, never[i], strlen(never[i]))) {
                fprintf(stderr, "%s holds \"%s\"\n", files[f], never[i]);
                ok = false;
            }
        }
        free(log);
    }
    return ok;
}

/* Start a server, run body on it, stop it (unless body did) and expect exit status 0, also when
 * body returned early on a failed REQUIRE. With keep_dir, the directory is removed afterwards. */
void with_server(const sx_srv_opts *opts, void (*body)(sx_srv *srv))
{
    sx_srv srv;
    if (sx_srv_start(&srv, opts) != 0) {
        CHECK(!"the server did not start");
        return;
    }
    char *dir = opts && opts->keep_dir ? strdup(srv.dir) : NULL;
    body(&srv);
    if (srv.pid > 0)
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    if (dir)
        sx_test_rmtree(dir);
    free(dir);
}
