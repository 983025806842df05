/*
 * test_authz.c - authentication and authorization of the secrets API, against the real secretsd.
 *
 * - the matrix: every endpoint of SPEC §2 x every role x tokens scoped at org, org/project and
 *   org/project/env level x target environments in and out of scope, each cell on an existing
 *   and on a nonexistent secret, with the effect of every write checked (forbidden ones change
 *   nothing);
 * - no, malformed, unknown and wrong tokens: 401 with `WWW-Authenticate: Bearer`, whether or not
 *   the name exists;
 * - expired tokens and tokens revoked with `secretsctl token revoke` on the running server;
 * - throttling of failed authentications per client address (429 + Retry-After) while valid
 *   clients keep working;
 * - token material never in logs, error bodies, `token list` output or the storage files, and
 *   `secretsctl token create` printing the token alone on stdout.
 *
 * All test traffic comes from loopback. Linux routes all of 127/8 to lo, so a client socket bound
 * to 127.0.0.N reaches the server's 127.0.0.1 listener and the server sees 127.0.0.N as the peer:
 * that is how these tests act as distinct client addresses. The throttle allows 20 failures per
 * address back to back, so tests that fail authentication on purpose spread their requests over
 * addresses unless throttling is what they test.
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

#include "harness.h"
#include "testutil.h"

#define TOKEN_LEN 80 /* "sxt_" + 32 hex + "_" + 43 base64url */

/* ---- small utilities ----------------------------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run a shell command and collect its stdout (malloc'd, NUL-terminated). Returns the exit status,
 * or -1 when it did not exit normally. */
static int run_capture(const char *cmd, char **ret_out)
{
    sx_test_buf b = {0};
    FILE *p = popen(cmd, "r");
    int st = -1;
    if (p) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
            sx_test_buf_append(buf, 1, n, &b);
        st = pclose(p);
    }
    *ret_out = b.data ? b.data : calloc(1, 1);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int b64url_index(char c)
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
static bool token_well_formed(const char *t)
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

/* The token's parts: id (32 hex), secret (43 chars) and the secret's 32 raw bytes. */
typedef struct token_parts {
    char id[33];
    char secret[44];
    unsigned char raw[32];
} token_parts;

static void token_split(const char *t, token_parts *p)
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
static void random_token(char out[TOKEN_LEN + 1])
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
static void wrong_secret_of(const char *token, char out[TOKEN_LEN + 1])
{
    random_token(out);
    memcpy(out, token, 37);
}

/* A string member of a JSON object body, malloc'd; NULL when absent or not a string. */
static char *json_str(const char *body, const char *key)
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

static bool json_is(const char *body, yajl_type type)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(body, ebuf, sizeof(ebuf));
    bool ok = v && ((type == yajl_t_array && YAJL_IS_ARRAY(v)) || (type == yajl_t_object && YAJL_IS_OBJECT(v)));
    yajl_tree_free(v);
    return ok;
}

/* ---- an HTTP client bound to a chosen source address ----------------------------------------------- */

/*
 * Like the harness's sx_srv_request(), but the curl handle lives across requests so that its
 * connection is reused (a reused connection stays on the same server thread, whose auth cache then
 * knows the token), and the socket can be bound to another loopback address.
 */
typedef struct client {
    const sx_srv *srv;
    sx_proto proto; /* SX_H1, SX_H2C, SX_H2TLS or SX_H1TLS */
    char iface[64]; /* "host!127.0.0.N", or "" for the default source address 127.0.0.1 */
    bool fresh;     /* a new connection for every request */
    CURL *h;
    long connects; /* connections the last request opened (0: it reused one) */
} client;

static void client_init(client *c, const sx_srv *srv, sx_proto proto, const char *src, bool fresh)
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

static void client_clear(client *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    c->h = NULL;
}

/* authz: the Authorization value or NULL; ctype: the Content-Type or NULL. Returns 0 when an HTTP
 * answer came back. */
static int client_send(client *c, const char *method, const char *path, const char *authz, const char *ctype,
                       const char *body, sx_resp *ret)
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
    sx_test_buf b = {0}, hb = {0};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sx_test_buf_append);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, sx_test_buf_append);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
    CURLcode rc = curl_easy_perform(h);
    c->connects = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
        curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &ret->http_version);
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &c->connects);
    } else {
        fprintf(stderr, "client: %s %s: %s\n", method, path, curl_easy_strerror(rc));
    }
    curl_slist_free_all(hl);
    ret->body = b.data ? b.data : calloc(1, 1);
    ret->body_len = b.len;
    ret->headers = hb.data ? hb.data : calloc(1, 1);
    return rc == CURLE_OK ? 0 : -1;
}

/* A request with "Authorization: Bearer token" (none when token is NULL) and a JSON body. */
static int client_req(client *c, const char *method, const char *path, const char *token, const char *body,
                      sx_resp *ret)
{
    char authz[160];
    if (token)
        snprintf(authz, sizeof(authz), "Bearer %s", token);
    return client_send(c, method, path, token ? authz : NULL, body ? "application/json" : NULL, body, ret);
}

/* 401, `WWW-Authenticate: Bearer`, the JSON error form with code "unauthorized". */
static bool is_unauthorized(const sx_resp *r)
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
static int expect_status(const sx_resp *r, long want, const char *what)
{
    if (r->status == want)
        return 0;
    fprintf(stderr, "%s: got %ld, want %ld: %s\n", what, r->status, want, r->body);
    return 1;
}

static char *ctl_cmd(char *buf, size_t cap, const sx_srv *srv, const char *args)
{
    snprintf(buf, cap, "'%s' --socket '%s' %s", SX_SECRETSCTL_PATH, srv->admin_socket, args);
    return buf;
}

/* Neither the server's log nor its access log holds anything token-like ("sxt_" never; the logs
 * name tokens by their bare id) or any of the given strings. */
static bool logs_clean(const sx_srv *srv, const char *const *never, size_t n)
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
static void with_server(const sx_srv_opts *opts, void (*body)(sx_srv *srv))
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

/* ---- the matrix ---------------------------------------------------------------------------------- */

enum { P_READ = 1, P_WRITE = 2, P_SET_VALUE = 4, P_REVEAL = 8 };

enum { EP_LIST, EP_CREATE, EP_GET, EP_UPDATE, EP_DELETE, EP_SET_VALUE, EP_REVEAL, EP_VALUES, EP_COUNT };

static const struct endpoint {
    const char *label;
    const char *method;
    unsigned perm;
    bool named; /* addresses one secret */
    bool write;
} endpoints[EP_COUNT] = {
    [EP_LIST] = {"list", "GET", P_READ, false, false},
    [EP_CREATE] = {"create", "POST", P_WRITE, false, true},
    [EP_GET] = {"get", "GET", P_READ, true, false},
    [EP_UPDATE] = {"update", "PUT", P_WRITE, true, true},
    [EP_DELETE] = {"delete", "DELETE", P_WRITE, true, true},
    [EP_SET_VALUE] = {"set-value", "PUT", P_SET_VALUE, true, true},
    [EP_REVEAL] = {"reveal", "GET", P_REVEAL, true, false},
    [EP_VALUES] = {"values", "GET", P_REVEAL, false, false},
};

#define NROLES 4
static const struct role {
    const char *name;
    unsigned perms;
} roles[NROLES] = {
    {"viewer", P_READ},
    {"editor", P_READ | P_WRITE},
    {"owner", P_READ | P_WRITE | P_SET_VALUE | P_REVEAL},
    {"service", P_READ | P_REVEAL},
};

/* Every token of the matrix is scoped inside acme/web/prod, at one of three levels. */
#define NLEVELS 3
static const struct level {
    const char *label;
    const char *org, *project, *env;
} levels[NLEVELS] = {
    {"acme", "acme", NULL, NULL},
    {"acme/web", "acme", "web", NULL},
    {"acme/web/prod", "acme", "web", "prod"},
};

#define NTARGETS 7
static const struct target {
    const char *label;
    const char *org, *project, *env;
} targets[NTARGETS] = {
    {"in scope", "acme", "web", "prod"},
    {"other project", "acme", "api", "prod"},
    {"other env", "acme", "web", "dev"},
    {"other org", "globex", "web", "prod"},
    {"org differing in case", "Acme", "web", "prod"},
    {"project with the scope's project as prefix", "acme", "webx", "prod"},
    {"env with the scope's env as prefix", "acme", "web", "prodx"},
};

/* Orgs of the targets, each with an org-wide owner token for setting up and checking. */
#define NORGS 3
static const char *const orgs[NORGS] = {"acme", "globex", "Acme"};

static bool level_covers(const struct level *l, const struct target *t)
{
    return strcmp(l->org, t->org) == 0 && (!l->project || strcmp(l->project, t->project) == 0) &&
           (!l->env || strcmp(l->env, t->env) == 0);
}

typedef struct matrix {
    sx_srv srv;
    client admin;  /* set-up and checks (HTTP/1.1) */
    client cli[3]; /* the cells rotate over HTTP/1.1, h2c and TLS h2 */
    char *tok[NROLES][NLEVELS];
    char *org_owner[NORGS];
    int cells;      /* status checks of the matrix proper */
    int mismatches; /* cells whose status or effect was wrong */
} matrix;

static const char *owner_of(const matrix *m, const char *org)
{
    for (int i = 0; i < NORGS; i++)
        if (strcmp(orgs[i], org) == 0)
            return m->org_owner[i];
    return NULL;
}

static void env_path(char *buf, size_t cap, const struct target *t, const char *rest)
{
    snprintf(buf, cap, "/%s/%s/envs/%s%s", t->org, t->project, t->env, rest);
}

static void ep_path(char *buf, size_t cap, const struct target *t, int ep, const char *name)
{
    char rest[320];
    switch (ep) {
    case EP_LIST:
    case EP_CREATE:
        snprintf(rest, sizeof(rest), "/secrets");
        break;
    case EP_VALUES:
        snprintf(rest, sizeof(rest), "/values");
        break;
    case EP_SET_VALUE:
    case EP_REVEAL:
        snprintf(rest, sizeof(rest), "/secrets/%s/value", name);
        break;
    default:
        snprintf(rest, sizeof(rest), "/secrets/%s", name);
        break;
    }
    env_path(buf, cap, t, rest);
}

/* Create name (description "orig") with value in t, as the org's owner. */
static bool admin_create(matrix *m, const struct target *t, const char *name, const char *value)
{
    const char *tok = owner_of(m, t->org);
    char path[512], body[512];
    sx_resp r;
    env_path(path, sizeof(path), t, "/secrets");
    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"orig\"}", name);
    client_req(&m->admin, "POST", path, tok, body, &r);
    bool ok = expect_status(&r, 201, "set-up create") == 0;
    sx_resp_free(&r);
    if (ok && value) {
        ep_path(path, sizeof(path), t, EP_SET_VALUE, name);
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", value);
        client_req(&m->admin, "PUT", path, tok, body, &r);
        ok = expect_status(&r, 200, "set-up set-value") == 0;
        sx_resp_free(&r);
    }
    return ok;
}

/* The secret's metadata and reveal answers as the org's owner (NULL for a 404); false when the
 * server answered anything else. */
static bool admin_snapshot(matrix *m, const struct target *t, const char *name, char **ret_meta, char **ret_value)
{
    const char *tok = owner_of(m, t->org);
    char path[512];
    sx_resp r;
    bool ok = true;
    ep_path(path, sizeof(path), t, EP_GET, name);
    client_req(&m->admin, "GET", path, tok, NULL, &r);
    *ret_meta = r.status == 200 ? strdup(r.body) : NULL;
    ok = ok && (r.status == 200 || r.status == 404);
    sx_resp_free(&r);
    ep_path(path, sizeof(path), t, EP_REVEAL, name);
    client_req(&m->admin, "GET", path, tok, NULL, &r);
    *ret_value = r.status == 200 ? strdup(r.body) : NULL;
    ok = ok && (r.status == 200 || r.status == 404);
    sx_resp_free(&r);
    return ok;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Exists (200) or not (404) as the org's owner. */
static long admin_get_status(matrix *m, const struct target *t, const char *name)
{
    char path[512];
    sx_resp r;
    ep_path(path, sizeof(path), t, EP_GET, name);
    client_req(&m->admin, "GET", path, owner_of(m, t->org), NULL, &r);
    long st = r.status;
    sx_resp_free(&r);
    return st;
}

/* A 403 that is the JSON error form and leaks neither token material nor the value. */
static bool forbidden_ok(const sx_resp *r, const char *value)
{
    bool ok = sx_resp_is_error(r, "forbidden");
    ok = ok && !strstr(r->body, "sxt_") && !(value && strstr(r->body, value));
    return ok;
}

static void run_cell(matrix *m, int ep, int role, int level, int ti, int idx)
{
    const struct endpoint *e = &endpoints[ep];
    const struct target *t = &targets[ti];
    bool allowed = (roles[role].perms & e->perm) == e->perm && level_covers(&levels[level], t);
    client *c = &m->cli[idx % 3];
    const char *tok = m->tok[role][level];
    char what[512];
    snprintf(what, sizeof(what), "matrix: %s as %s scoped at %s on %s (%s/%s/%s)", e->label, roles[role].name,
             levels[level].label, t->label, t->org, t->project, t->env);
    int bad = 0;

    char name[32], ghost[32], value[32], newvalue[32], created[32];
    snprintf(name, sizeof(name), "s%d", idx);
    snprintf(ghost, sizeof(ghost), "g%d", idx);
    snprintf(value, sizeof(value), "v%d", idx);
    snprintf(newvalue, sizeof(newvalue), "new%d", idx);
    snprintf(created, sizeof(created), "c%d", idx);
    if (e->named && !admin_create(m, t, name, value)) {
        m->mismatches++;
        CHECK(!"matrix set-up failed");
        return;
    }
    char *meta0 = NULL, *value0 = NULL;
    if (e->named && e->write)
        bad += !admin_snapshot(m, t, name, &meta0, &value0);

    /* The cell's request, on an existing secret. */
    char path[512], body[512];
    const char *b = NULL;
    if (ep == EP_CREATE) {
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"made\"}", created);
        b = body;
    } else if (ep == EP_UPDATE) {
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"changed\"}", name);
        b = body;
    } else if (ep == EP_SET_VALUE) {
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", newvalue);
        b = body;
    }
    ep_path(path, sizeof(path), t, ep, name);
    sx_resp r;
    client_req(c, e->method, path, tok, b, &r);
    m->cells++;
    bad += expect_status(&r, allowed ? (ep == EP_CREATE ? 201 : 200) : 403, what);
    if (!allowed) {
        bad += !forbidden_ok(&r, value);
    } else if (r.status < 300) {
        char expect[128];
        switch (ep) {
        case EP_LIST:
            bad += !json_is(r.body, yajl_t_array);
            break;
        case EP_VALUES:
            bad += !json_is(r.body, yajl_t_object);
            break;
        case EP_CREATE:
            snprintf(expect, sizeof(expect), "\"name\":\"%s\"", created);
            bad += !strstr(r.body, expect);
            break;
        case EP_GET:
        case EP_UPDATE:
        case EP_SET_VALUE:
            snprintf(expect, sizeof(expect), "\"name\":\"%s\"", name);
            bad += !strstr(r.body, expect) || strstr(r.body, value) || strstr(r.body, newvalue);
            break;
        case EP_DELETE:
            snprintf(expect, sizeof(expect), "{\"deleted\":true,\"name\":\"%s\"}", name);
            bad += strcmp(r.body, expect) != 0;
            break;
        case EP_REVEAL:
            snprintf(expect, sizeof(expect), "\"value\":\"%s\"", value);
            bad += !strstr(r.body, expect);
            break;
        }
    }
    sx_resp_free(&r);

    /* The effect of a write: allowed ones did what they said, forbidden ones changed nothing. */
    if (ep == EP_CREATE) {
        bad += admin_get_status(m, t, created) != (allowed ? 200 : 404);
    } else if (e->named && e->write) {
        char *meta1 = NULL, *value1 = NULL;
        bad += !admin_snapshot(m, t, name, &meta1, &value1);
        if (!allowed) {
            bad += !meta1 || !same_str(meta0, meta1) || !same_str(value0, value1);
        } else if (ep == EP_UPDATE) {
            /* The value stays (the reveal answer's updatedAt moves with the description). */
            char *v0 = value0 ? json_str(value0, "value") : NULL, *v1 = value1 ? json_str(value1, "value") : NULL;
            bad += !meta1 || !strstr(meta1, "\"description\":\"changed\"") || !v0 || !same_str(v0, v1);
            free(v0);
            free(v1);
        } else if (ep == EP_DELETE) {
            bad += meta1 != NULL || value1 != NULL;
        } else if (ep == EP_SET_VALUE) {
            char expect[64];
            snprintf(expect, sizeof(expect), "\"value\":\"%s\"", newvalue);
            bad += !value1 || !strstr(value1, expect);
        }
        free(meta1);
        free(value1);
    }
    free(meta0);
    free(value0);

    /* The same request on a secret that does not exist: 403 before 404, and nothing created. */
    if (e->named) {
        if (ep == EP_UPDATE) {
            snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"changed\"}", ghost);
            b = body;
        }
        ep_path(path, sizeof(path), t, ep, ghost);
        client_req(c, e->method, path, tok, b, &r);
        m->cells++;
        char gwhat[600];
        snprintf(gwhat, sizeof(gwhat), "%s, nonexistent name", what);
        bad += expect_status(&r, allowed ? 404 : 403, gwhat);
        bad += !(allowed ? sx_resp_is_error(&r, "not_found") : forbidden_ok(&r, NULL));
        sx_resp_free(&r);
        if (e->write)
            bad += admin_get_status(m, t, ghost) != 404;
    }
    if (bad) {
        fprintf(stderr, "%s: %d problem(s)\n", what, bad);
        m->mismatches++;
        sx_test_failures++;
    }
}

static bool matrix_setup(matrix *m)
{
    memset(m, 0, sizeof(*m));
    if (sx_srv_start(&m->srv, NULL) != 0)
        return false;
    client_init(&m->admin, &m->srv, SX_H1, NULL, false);
    static const sx_proto protos[3] = {SX_H1, SX_H2C, SX_H2TLS};
    for (int i = 0; i < 3; i++)
        client_init(&m->cli[i], &m->srv, protos[i], NULL, false);
    bool ok = true;
    for (int o = 0; o < NORGS; o++)
        ok = ok && (m->org_owner[o] = sx_srv_mint_token(&m->srv, orgs[o], NULL, NULL, "owner", NULL)) != NULL;
    for (int r = 0; r < NROLES; r++)
        for (int l = 0; l < NLEVELS; l++)
            ok = ok && (m->tok[r][l] = sx_srv_mint_token(&m->srv, levels[l].org, levels[l].project, levels[l].env,
                                                         roles[r].name, NULL)) != NULL;
    return ok;
}

static void matrix_teardown(matrix *m)
{
    if (m->srv.pid > 0) {
        const char *never[NORGS + NROLES * NLEVELS];
        size_t n = 0;
        for (int o = 0; o < NORGS; o++)
            never[n++] = m->org_owner[o] ? m->org_owner[o] + 37 : NULL;
        for (int r = 0; r < NROLES; r++)
            for (int l = 0; l < NLEVELS; l++)
                never[n++] = m->tok[r][l] ? m->tok[r][l] + 37 : NULL;
        CHECK(logs_clean(&m->srv, never, n));
    }
    for (int o = 0; o < NORGS; o++)
        free(m->org_owner[o]);
    for (int r = 0; r < NROLES; r++)
        for (int l = 0; l < NLEVELS; l++)
            free(m->tok[r][l]);
    client_clear(&m->admin);
    for (int i = 0; i < 3; i++)
        client_clear(&m->cli[i]);
    CHECK_INT(sx_srv_stop(&m->srv, SIGTERM, 30), 0);
}

static void every_endpoint_role_and_scope_gets_the_expected_status(void)
{
    matrix m;
    bool ok = matrix_setup(&m);
    CHECK(ok);
    int idx = 0;
    for (int ep = 0; ok && ep < EP_COUNT; ep++)
        for (int role = 0; role < NROLES; role++)
            for (int level = 0; level < NLEVELS; level++)
                for (int ti = 0; ti < NTARGETS; ti++)
                    run_cell(&m, ep, role, level, ti, idx++);
    fprintf(stderr,
            "matrix: %d endpoints x %d roles x %d token scopes x %d targets = %d cells, %d status checks "
            "(with the nonexistent-name variants), %d wrong\n",
            EP_COUNT, NROLES, NLEVELS, NTARGETS, idx, m.cells, m.mismatches);
    CHECK_INT(m.mismatches, 0);

    /* Authorization comes before validation too: a forbidden request with a bad body is 403. */
    if (ok) {
        const struct target *in = &targets[0], *other = &targets[3];
        char path[512];
        sx_resp r;
        env_path(path, sizeof(path), in, "/secrets");
        client_send(&m.cli[0], "POST", path, NULL, NULL, NULL, &r); /* no token at all */
        CHECK(is_unauthorized(&r));
        sx_resp_free(&r);
        char authz[160];
        snprintf(authz, sizeof(authz), "Bearer %s", m.tok[0][2]); /* viewer: no write */
        client_send(&m.cli[1], "POST", path, authz, "text/plain", "{not json", &r);
        CHECK_INT(r.status, 403);
        CHECK(forbidden_ok(&r, NULL));
        sx_resp_free(&r);
        ep_path(path, sizeof(path), in, EP_SET_VALUE, "s0");
        snprintf(authz, sizeof(authz), "Bearer %s", m.tok[1][0]); /* editor: no set-value */
        client_send(&m.cli[2], "PUT", path, authz, "application/json", "[1,2", &r);
        CHECK_INT(r.status, 403);
        CHECK(forbidden_ok(&r, NULL));
        sx_resp_free(&r);
        env_path(path, sizeof(path), other, "/secrets");
        snprintf(authz, sizeof(authz), "Bearer %s", m.tok[2][0]); /* owner of acme, in globex */
        client_send(&m.cli[0], "POST", path, authz, "application/json", "{\"kind\":\"nope\"}", &r);
        CHECK_INT(r.status, 403);
        CHECK(forbidden_ok(&r, NULL));
        sx_resp_free(&r);
    }
    matrix_teardown(&m);
}

/* ---- unauthenticated requests ---------------------------------------------------------------------- */

static void unauthenticated_body(matrix *m)
{
    const struct target *in = &targets[0];
    const char *owner = m->tok[2][2];
    REQUIRE(admin_create(m, in, "exists", "hush-value"));
    char *meta0 = NULL, *value0 = NULL;
    CHECK(admin_snapshot(m, in, "exists", &meta0, &value0));

    char unknown[TOKEN_LEN + 1], wrong[TOKEN_LEN + 1], trailing[TOKEN_LEN + 8];
    random_token(unknown);
    wrong_secret_of(owner, wrong);
    snprintf(trailing, sizeof(trailing), "%sA", owner);
    char h_unknown[128], h_wrong[128], h_trailing[128], h_twospaces[128], h_token_only[128];
    snprintf(h_unknown, sizeof(h_unknown), "Bearer %s", unknown);
    snprintf(h_wrong, sizeof(h_wrong), "Bearer %s", wrong);
    snprintf(h_trailing, sizeof(h_trailing), "Bearer %s", trailing);
    snprintf(h_twospaces, sizeof(h_twospaces), "Bearer  %s", owner);
    snprintf(h_token_only, sizeof(h_token_only), "%s", owner);
    /* The valid token with its last character one step up: the same 32 bytes when decoded
     * leniently, but not the canonical encoding. And with its id in uppercase hex. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char h_noncanonical[128], h_upper[128];
    snprintf(h_noncanonical, sizeof(h_noncanonical), "Bearer %s", owner);
    char *last = h_noncanonical + strlen(h_noncanonical) - 1;
    *last = b64[(b64url_index(*last) + 1) % 64];
    snprintf(h_upper, sizeof(h_upper), "Bearer %s", owner);
    for (char *q = h_upper + 11; q < h_upper + 43; q++)
        if (*q >= 'a' && *q <= 'f')
            *q = (char)(*q - 'a' + 'A');
    const char *const kinds[] = {
        NULL,                         /* no Authorization header */
        "Bearer",                     /* no token */
        "Bearer ",                    /* empty token */
        "Basic dXNlcjpwYXNzd29yZA==", /* another scheme */
        h_token_only,                 /* a valid token without the scheme */
        h_twospaces,                  /* a valid token after two spaces */
        h_trailing,                   /* a valid token with a byte appended */
        h_unknown,                    /* well-formed, never issued */
        h_wrong,                      /* a real id with a wrong secret */
        h_noncanonical,               /* a valid token, non-canonical base64url */
        h_upper,                      /* a valid token, id in uppercase */
    };
    const size_t nkinds = sizeof(kinds) / sizeof(kinds[0]);
    const struct target nowhere = {"an env that does not exist", "nosuch", "proj", "env"};
    int sent = 0, src = 1;
    client c;
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.1.%d", src);
    client_init(&c, &m->srv, SX_H1, addr, false);
    for (int ep = 0; ep < EP_COUNT; ep++) {
        for (size_t k = 0; k < nkinds; k++) {
            for (int exists = 0; exists < 2; exists++) {
                /* At most 15 failures per client address: these must not be throttled. */
                if (sent > 0 && sent % 15 == 0) {
                    client_clear(&c);
                    snprintf(addr, sizeof(addr), "127.0.1.%d", ++src);
                    client_init(&c, &m->srv,
                                (sx_proto)(src % 3 == 0   ? SX_H2TLS
                                           : src % 3 == 1 ? SX_H1
                                                          : SX_H2C),
                                addr, false);
                }
                const struct target *t = exists ? in : &nowhere;
                char path[512], body[256];
                const char *b = NULL;
                ep_path(path, sizeof(path), t, ep, exists ? "exists" : "ghost");
                if (ep == EP_CREATE) {
                    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"new%d%zu\"}", exists, k);
                    b = body;
                } else if (ep == EP_UPDATE) {
                    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"x\"}",
                             exists ? "exists" : "ghost");
                    b = body;
                } else if (ep == EP_SET_VALUE) {
                    b = "{\"value\":\"overwritten\"}";
                }
                sx_resp r;
                client_send(&c, endpoints[ep].method, path, kinds[k], b ? "application/json" : NULL, b, &r);
                sent++;
                if (!is_unauthorized(&r)) {
                    fprintf(stderr, "  (%s, authorization %s, %s)\n", endpoints[ep].label,
                            kinds[k] ? kinds[k] : "absent", t->label);
                    sx_test_failures++;
                }
                CHECK(!strstr(r.body, "sxt_") && !strstr(r.body, owner + 37) && !strstr(r.body, "hush-value"));
                sx_resp_free(&r);
            }
        }
    }
    client_clear(&c);
    fprintf(stderr, "unauthenticated: %d requests from %d addresses\n", sent, src);

    /* Nothing changed, nothing was created. */
    char *meta1 = NULL, *value1 = NULL;
    CHECK(admin_snapshot(m, in, "exists", &meta1, &value1));
    CHECK(meta1 && same_str(meta0, meta1) && value1 && same_str(value0, value1));
    free(meta0);
    free(value0);
    free(meta1);
    free(value1);
    sx_resp r;
    char path[512];
    env_path(path, sizeof(path), in, "/secrets");
    client_req(&m->admin, "GET", path, owner, NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"name\":\"exists\"") && !strstr(r.body, "\"name\":\"new"));
    sx_resp_free(&r);

    /* The scheme name is case-insensitive: the same valid token with "bearer" works. */
    char authz[160];
    snprintf(authz, sizeof(authz), "bearer %s", owner);
    client_send(&m->cli[1], "GET", path, authz, NULL, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
}

static void missing_or_bad_tokens_get_401_even_for_nonexistent_names(void)
{
    matrix m;
    if (matrix_setup(&m))
        unauthenticated_body(&m);
    else
        CHECK(!"matrix set-up failed");
    matrix_teardown(&m);
}

/* ---- expiry and revocation ----------------------------------------------------------------------- */

/* `secretsctl token create ARGS`: the token (the last and only line of stdout), or NULL. */
static char *ctl_token_create(const sx_srv *srv, const char *args, const char *stderr_path)
{
    char cmd[8192], full[2048];
    snprintf(full, sizeof(full), "token create %s 2>'%s'", args, stderr_path);
    char *out = NULL;
    int st = run_capture(ctl_cmd(cmd, sizeof(cmd), srv, full), &out);
    size_t n = strlen(out);
    char *tok = NULL;
    if (st == 0 && n == TOKEN_LEN + 1 && out[TOKEN_LEN] == '\n') {
        out[TOKEN_LEN] = '\0';
        if (token_well_formed(out))
            tok = strdup(out);
    }
    if (!tok)
        fprintf(stderr, "secretsctl token create %s: exit %d, stdout \"%s\"\n", args, st, out);
    free(out);
    return tok;
}

static void expired_and_revoked_tokens_get_401_body(sx_srv *srv)
{
    char errpath[4096];
    snprintf(errpath, sizeof(errpath), "%s/ctl.err", srv->dir);
    const char *list = "/acme/web/envs/prod/secrets";

    /* Expiry: one token from secretsctl --ttl 1s, one from the admin API with "ttl":"1s". */
    int64_t t0 = mono_ms();
    char *cli_tok = ctl_token_create(srv, "--org acme --role viewer --ttl 1s", errpath);
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    const char *body = "{\"org\":\"acme\",\"project\":\"web\",\"role\":\"service\",\"ttl\":\"1s\"}";
    sx_resp r;
    CHECK(sx_srv_request(srv, SX_ADMIN, "POST", "/v1/tokens", hdrs, body, strlen(body), &r) == 0);
    CHECK_INT(r.status, 201);
    char *api_tok = json_str(r.body, "token");
    char *expires = json_str(r.body, "expiresAt");
    CHECK(expires != NULL);
    free(expires);
    sx_resp_free(&r);
    REQUIRE(cli_tok && api_tok);
    client kept[2];
    client_init(&kept[0], srv, SX_H2TLS, "127.0.2.1", false);
    client_init(&kept[1], srv, SX_H1, "127.0.2.1", false);
    const char *expiring[2] = {cli_tok, api_tok};
    for (int i = 0; i < 2; i++) {
        client_req(&kept[i], "GET", list, expiring[i], NULL, &r);
        /* Before the expiry (checked only when this ran quickly enough to be before it). */
        if (mono_ms() - t0 < 800)
            CHECK_INT(r.status, 200);
        else
            fprintf(stderr, "note: too slow to see the 1 s token before its expiry\n");
        sx_resp_free(&r);
    }
    int64_t wait = t0 + 1500 - mono_ms();
    if (wait > 0)
        sleep_ms((long)wait);
    for (int i = 0; i < 2; i++) {
        /* On the same connection, so the thread that cached the token answers: the cache does not
         * outlive the expiry. Then on a new connection. */
        client_req(&kept[i], "GET", list, expiring[i], NULL, &r);
        CHECK(is_unauthorized(&r));
        sx_resp_free(&r);
        client fresh;
        client_init(&fresh, srv, SX_H2TLS, "127.0.2.1", true);
        client_req(&fresh, "GET", list, expiring[i], NULL, &r);
        CHECK(is_unauthorized(&r));
        sx_resp_free(&r);
        client_clear(&fresh);
    }
    client_clear(&kept[0]);
    client_clear(&kept[1]);
    free(cli_tok);
    free(api_tok);

    /* Bad lifetimes are refused by the admin API and by secretsctl. */
    body = "{\"org\":\"acme\",\"role\":\"viewer\",\"ttl\":\"0s\"}";
    CHECK(sx_srv_request(srv, SX_ADMIN, "POST", "/v1/tokens", hdrs, body, strlen(body), &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK(sx_resp_is_error(&r, "invalid_request"));
    sx_resp_free(&r);
    char cmd[4096];
    char *out = NULL;
    CHECK_INT(run_capture(
                  ctl_cmd(cmd, sizeof(cmd), srv, "token create --org acme --role viewer --ttl soon 2>/dev/null"), &out),
              1);
    CHECK_STR(out, "");
    free(out);

    /* Revocation: a token in use on several connections (both threads' caches) and on one kept
     * connection stops working as soon as `secretsctl token revoke` returns. */
    char *rev_tok = ctl_token_create(srv, "--org acme --project web --role owner --label doomed", errpath);
    char *other_tok = sx_srv_mint_token(srv, "acme", "web", NULL, "viewer", NULL);
    REQUIRE(rev_tok && other_tok);
    token_parts rp;
    token_split(rev_tok, &rp);
    client keep, fresh;
    client_init(&keep, srv, SX_H2TLS, "127.0.2.2", false);
    client_init(&fresh, srv, SX_H1, "127.0.2.2", true);
    client_req(&keep, "POST", list, rev_tok, "{\"kind\":\"secret\",\"name\":\"before\"}", &r);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);
    for (int i = 0; i < 8; i++) {
        client_req(&fresh, "GET", list, rev_tok, NULL, &r);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
        client_req(&fresh, "GET", list, other_tok, NULL, &r);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
    }
    char args[128];
    snprintf(args, sizeof(args), "token revoke %s", rp.id);
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, args), &out), 0);
    char expect[128];
    snprintf(expect, sizeof(expect), "token %s revoked\n", rp.id);
    CHECK_STR(out, expect);
    free(out);
    /* No wait: revocation on this node is immediate. */
    client_req(&keep, "POST", list, rev_tok, "{\"kind\":\"secret\",\"name\":\"after\"}", &r);
    CHECK(is_unauthorized(&r));
    sx_resp_free(&r);
    CHECK_INT(keep.connects, 0); /* it was the cached connection */
    for (int i = 0; i < 8; i++) {
        client_req(&fresh, "GET", list, rev_tok, NULL, &r);
        CHECK(is_unauthorized(&r));
        sx_resp_free(&r);
    }
    /* Other tokens are not affected. */
    client_req(&keep, "GET", list, other_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"before\"") && !strstr(r.body, "\"after\""));
    sx_resp_free(&r);
    client_clear(&keep);
    client_clear(&fresh);

    /* The list shows it revoked; revoking again is a no-op; unknown and malformed ids fail. */
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "--json token list"), &out), 0);
    {
        char ebuf[128];
        yajl_val v = yajl_tree_parse(out, ebuf, sizeof(ebuf));
        bool found = false;
        for (size_t i = 0; v && YAJL_IS_ARRAY(v) && i < v->u.array.len; i++) {
            yajl_val t = v->u.array.values[i];
            const char *ip[] = {"id", NULL}, *rvp[] = {"revoked", NULL};
            yajl_val id = yajl_tree_get(t, ip, yajl_t_string), rv = yajl_tree_get(t, rvp, yajl_t_any);
            const char *ids = id ? YAJL_GET_STRING(id) : NULL;
            if (ids && strcmp(ids, rp.id) == 0)
                found = rv && YAJL_IS_TRUE(rv);
        }
        CHECK(found);
        yajl_tree_free(v);
    }
    free(out);
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "token list"), &out), 0);
    {
        const char *row = strstr(out, rp.id);
        const char *eol = row ? strchr(row, '\n') : NULL;
        const char *state = row ? strstr(row, "revoked") : NULL;
        CHECK(row && eol && state && state < eol);
    }
    free(out);
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, args), &out), 0);
    free(out);
    CHECK_INT(
        run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "token revoke 0123456789abcdef0123456789abcdef 2>/dev/null"), &out),
        1);
    free(out);
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "token revoke not-an-id 2>/dev/null"), &out), 2);
    free(out);
    free(rev_tok);
    free(other_tok);
}

static void expired_and_revoked_tokens_get_401(void)
{
    with_server(NULL, expired_and_revoked_tokens_get_401_body);
}

/* ---- throttling ------------------------------------------------------------------------------------ */

static void failed_auth_flood_is_throttled_per_address_and_spares_valid_clients_body(sx_srv *srv)
{
    const char *attacked = "127.0.0.2", *elsewhere = "127.0.0.3";
    const char *list = "/acme/web/envs/prod/secrets";
    char *cached_tok = sx_srv_mint_token(srv, "acme", NULL, NULL, "viewer", NULL);
    char *other_tok = sx_srv_mint_token(srv, "acme", NULL, NULL, "service", NULL);
    char *unused_tok = sx_srv_mint_token(srv, "acme", NULL, NULL, "viewer", NULL);
    REQUIRE(cached_tok && other_tok && unused_tok);

    /* A valid client on the attacked address that verified before the flood, on a kept TLS h2
     * connection (so its requests reach the thread whose cache holds its token). */
    client cached, other, attacker;
    client_init(&cached, srv, SX_H2TLS, attacked, false);
    client_init(&other, srv, SX_H1, elsewhere, true);
    client_init(&attacker, srv, SX_H1, attacked, false);
    sx_resp r;
    client_req(&cached, "GET", list, cached_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);

    int n401 = 0, n429 = 0, nother = 0, cached_ok = 0, other_ok = 0, checks = 0;
    long last_status = 0;
    char retry_after[32] = "";
    char *last_body = NULL;
    int64_t t0 = mono_ms();
    for (int i = 0; i < 1000; i++) {
        char tok[TOKEN_LEN + 8];
        if (i % 10 == 9)
            snprintf(tok, sizeof(tok), "garbage-%d", i); /* malformed */
        else if (i % 10 == 4)
            wrong_secret_of(cached_tok, tok); /* the cached client's id with a wrong secret */
        else
            random_token(tok); /* well-formed, unknown */
        if (i == 0)
            CHECK(client_req(&attacker, "GET", list, tok, NULL, &r) == 0);
        else
            client_req(&attacker, "GET", list, tok, NULL, &r);
        if (r.status == 401)
            n401++;
        else if (r.status == 429)
            n429++;
        else
            nother++;
        if (i == 0)
            CHECK(is_unauthorized(&r));
        last_status = r.status;
        if (r.status == 429) {
            if (!sx_resp_header(&r, "retry-after", retry_after, sizeof(retry_after)))
                retry_after[0] = '\0';
            free(last_body);
            last_body = strdup(r.body);
            if (!sx_resp_is_error(&r, "rate_limited"))
                nother++;
        }
        CHECK(!strstr(r.body, tok));
        sx_resp_free(&r);
        if (i % 100 == 99) {
            checks++;
            client_req(&cached, "GET", list, cached_tok, NULL, &r);
            cached_ok += r.status == 200 && cached.connects == 0;
            if (r.status != 200 || cached.connects != 0)
                fprintf(stderr, "cached client after %d bad tokens: %ld (new connections %ld)\n", i + 1, r.status,
                        cached.connects);
            sx_resp_free(&r);
            client_req(&other, "GET", list, other_tok, NULL, &r);
            other_ok += r.status == 200;
            sx_resp_free(&r);
        }
    }
    int64_t secs = (mono_ms() - t0) / 1000 + 1;
    fprintf(stderr, "flood: 1000 bad tokens in ~%lld s: %d x 401, %d x 429, %d other\n", (long long)secs, n401, n429,
            nother);
    CHECK_INT(nother, 0);
    CHECK(n401 >= 1 && n401 <= 20 + 2 * secs); /* the burst of 20, plus what refilled meanwhile */
    CHECK(n429 >= 1000 - 20 - 2 * secs);
    CHECK_INT(last_status, 429);
    CHECK(atoi(retry_after) >= 1);
    CHECK(last_body && !strstr(last_body, "sxt_"));
    free(last_body);
    CHECK_INT(cached_ok, checks);
    CHECK_INT(other_ok, checks);

    /* Still blocked: a valid token that this address has not used before is refused, without the
     * server telling it apart from a bad one... */
    client fresh;
    client_init(&fresh, srv, SX_H1, attacked, true);
    client_req(&fresh, "GET", list, unused_tok, NULL, &r);
    CHECK_INT(r.status, 429);
    CHECK(sx_resp_is_error(&r, "rate_limited"));
    sx_resp_free(&r);
    client_clear(&fresh);
    /* ...while the cached client goes on, and other addresses fail or succeed normally. */
    client_req(&cached, "GET", list, cached_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    char bad[TOKEN_LEN + 1];
    random_token(bad);
    client_req(&other, "GET", list, bad, NULL, &r);
    CHECK(is_unauthorized(&r));
    sx_resp_free(&r);
    client_req(&other, "GET", list, unused_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);

    const char *never[] = {"garbage-", cached_tok + 37, other_tok + 37, unused_tok + 37};
    CHECK(logs_clean(srv, never, sizeof(never) / sizeof(never[0])));
    client_clear(&cached);
    client_clear(&other);
    client_clear(&attacker);
    free(cached_tok);
    free(other_tok);
    free(unused_tok);
}

static void failed_auth_flood_is_throttled_per_address_and_spares_valid_clients(void)
{
    with_server(NULL, failed_auth_flood_is_throttled_per_address_and_spares_valid_clients_body);
}

/* ---- secretsctl token create / list ----------------------------------------------------------------- */

static const char *const token_keys[] = {"id",  "label",     "role",      "org",     "project",
                                         "env", "createdAt", "expiresAt", "revoked", NULL};

/* Every element of a token list is an object with exactly the public keys (no hash, no secret). */
static bool token_list_json_ok(const char *json, const char *const *forbidden)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(json, ebuf, sizeof(ebuf));
    bool ok = v && YAJL_IS_ARRAY(v) && v->u.array.len > 0;
    for (size_t i = 0; ok && i < v->u.array.len; i++) {
        yajl_val t = v->u.array.values[i];
        ok = YAJL_IS_OBJECT(t) && t->u.object.len == 9;
        for (size_t k = 0; ok && k < t->u.object.len; k++) {
            bool known = false;
            for (size_t j = 0; token_keys[j]; j++)
                known = known || strcmp(t->u.object.keys[k], token_keys[j]) == 0;
            ok = known;
        }
    }
    yajl_tree_free(v);
    for (size_t i = 0; ok && forbidden[i]; i++)
        ok = !strstr(json, forbidden[i]);
    if (!ok)
        fprintf(stderr, "token list JSON is not as expected: %s\n", json);
    return ok;
}

static void secretsctl_token_create_prints_only_the_token_on_stdout_body(sx_srv *srv)
{
    char errpath[4096];
    snprintf(errpath, sizeof(errpath), "%s/ctl.err", srv->dir);
    char *tok = ctl_token_create(srv, "--org acme --project web --env prod --role owner --label 'ci deploy'", errpath);
    REQUIRE(tok != NULL);
    token_parts p;
    token_split(tok, &p);
    char *err = sx_test_read_file(errpath, NULL);
    CHECK(err && strstr(err, p.id) && !strstr(err, tok) && !strstr(err, p.secret));
    free(err);

    /* The printed token works, with exactly its role and scope. */
    client c;
    client_init(&c, srv, SX_H2TLS, NULL, false);
    sx_resp r;
    client_req(&c, "POST", "/acme/web/envs/prod/secrets", tok, "{\"kind\":\"secret\",\"name\":\"db\"}", &r);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);
    client_req(&c, "PUT", "/acme/web/envs/prod/secrets/db/value", tok, "{\"value\":\"pw\"}", &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/dev/secrets", tok, NULL, &r);
    CHECK_INT(r.status, 403);
    sx_resp_free(&r);

    /* Errors print nothing on stdout. */
    char cmd[4096];
    char *out = NULL;
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "token create --org acme 2>/dev/null"), &out), 2);
    CHECK_STR(out, "");
    free(out);
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "token create --org acme --role king 2>/dev/null"), &out), 1);
    CHECK_STR(out, "");
    free(out);
    CHECK_INT(run_capture(
                  ctl_cmd(cmd, sizeof(cmd), srv, "token create --org acme --env prod --role viewer 2>/dev/null"), &out),
              1);
    CHECK_STR(out, "");
    free(out);

    /* `token list` shows the token's public description and nothing secret. */
    char *api_tok = sx_srv_mint_token(srv, "acme", NULL, NULL, "service", NULL);
    REQUIRE(api_tok != NULL);
    token_parts ap;
    token_split(api_tok, &ap);
    const char *const never[] = {tok, p.secret, api_tok, ap.secret, "sxt_", "hash", NULL};
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "token list 2>/dev/null"), &out), 0);
    CHECK(strstr(out, p.id) && strstr(out, ap.id) && strstr(out, "acme/web/prod") && strstr(out, "ci deploy"));
    for (size_t i = 0; never[i]; i++)
        CHECK(!strstr(out, never[i]));
    free(out);
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "--json token list 2>/dev/null"), &out), 0);
    CHECK(token_list_json_ok(out, never));
    free(out);
    CHECK(sx_srv_request(srv, SX_ADMIN, "GET", "/v1/tokens", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK(token_list_json_ok(r.body, never));
    sx_resp_free(&r);

    client_clear(&c);
    free(api_tok);
    free(tok);
}

static void secretsctl_token_create_prints_only_the_token_on_stdout(void)
{
    with_server(NULL, secretsctl_token_create_prints_only_the_token_on_stdout_body);
}

/* ---- token material in logs and storage ------------------------------------------------------------- */

typedef struct needle {
    const void *p;
    size_t len;
    const char *what;
} needle;

static const needle *scan_needles;
static size_t scan_nneedles;
static int scan_hits, scan_files;
static const char *scan_id; /* a token id that must be found in the data files (sanity of the scan) */
static bool scan_id_seen;
static const char *scan_data_dir;

static int scan_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    size_t len = 0;
    char *data = sx_test_read_file(path, &len);
    if (!data)
        return 0;
    scan_files++;
    for (size_t i = 0; i < scan_nneedles; i++) {
        if (sx_test_memmem(data, len, scan_needles[i].p, scan_needles[i].len)) {
            fprintf(stderr, "%s holds %s\n", path, scan_needles[i].what);
            scan_hits++;
        }
    }
    if (strncmp(path, scan_data_dir, strlen(scan_data_dir)) == 0 && sx_test_memmem(data, len, scan_id, 32))
        scan_id_seen = true;
    free(data);
    return 0;
}

static void tokens_never_reach_storage_logs_or_error_bodies_body(sx_srv *srv)
{
    char *dir = strdup(srv->dir);
    char errpath[4096];
    snprintf(errpath, sizeof(errpath), "%s/ctl.err", srv->dir);

    enum { NT = 5 };
    char *toks[NT] = {0};
    toks[0] = sx_srv_mint_token(srv, "acme", "web", NULL, "owner", NULL);
    toks[1] = ctl_token_create(srv, "--org acme --role editor --label from-cli", errpath);
    toks[2] = ctl_token_create(srv, "--org acme --project web --env prod --role service --ttl 30d", errpath);
    toks[3] = sx_srv_mint_token(srv, "acme", NULL, NULL, "viewer", NULL); /* revoked below */
    char wrong[TOKEN_LEN + 1];
    toks[4] = malloc(TOKEN_LEN + 1);
    REQUIRE(toks[0] && toks[1] && toks[2] && toks[3] && toks[4]);
    wrong_secret_of(toks[0], wrong); /* presented, never valid */
    memcpy(toks[4], wrong, sizeof(wrong));

    /* Use them: successful, failed, forbidden and revoked requests. */
    client c;
    client_init(&c, srv, SX_H2C, NULL, true);
    sx_resp r;
    client_req(&c, "POST", "/acme/web/envs/prod/secrets", toks[0], "{\"kind\":\"secret\",\"name\":\"api-key\"}", &r);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);
    client_req(&c, "PUT", "/acme/web/envs/prod/secrets/api-key/value", toks[0], "{\"value\":\"v1\"}", &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/prod/values", toks[2], NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    client_req(&c, "PUT", "/acme/web/envs/prod/secrets/api-key", toks[1],
               "{\"kind\":\"secret\",\"name\":\"api-key\",\"description\":\"d\"}", &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/prod/values", toks[1], NULL, &r); /* editor: no reveal */
    CHECK_INT(r.status, 403);
    CHECK(!strstr(r.body, toks[1]) && !strstr(r.body, toks[1] + 37) && !strstr(r.body, toks[1] + 4));
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/prod/secrets", wrong, NULL, &r);
    CHECK(is_unauthorized(&r));
    CHECK(!strstr(r.body, wrong + 4) && !strstr(r.body, wrong + 37));
    sx_resp_free(&r);
    char qpath[256];
    snprintf(qpath, sizeof(qpath), "/acme/web/envs/prod/secrets?access_token=%s", toks[0]);
    client_req(&c, "GET", qpath, toks[0], NULL, &r); /* a token in the query must not be logged either */
    CHECK_INT(r.status, 400);
    CHECK(!strstr(r.body, toks[0] + 37));
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/prod/secrets", toks[3], NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    char cmd[4096], args[128];
    char *out = NULL;
    snprintf(args, sizeof(args), "token revoke %.32s", toks[3] + 4);
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, args), &out), 0);
    free(out);
    client_req(&c, "GET", "/acme/web/envs/prod/secrets", toks[3], NULL, &r);
    CHECK(is_unauthorized(&r));
    CHECK(!strstr(r.body, toks[3] + 37));
    sx_resp_free(&r);
    CHECK_INT(run_capture(ctl_cmd(cmd, sizeof(cmd), srv, "token list"), &out), 0);
    for (int i = 0; i < NT; i++)
        CHECK(!strstr(out, toks[i] + 37));
    free(out);
    client_clear(&c);
    unlink(errpath); /* holds the ids only, but it is ours, not the server's */
    CHECK_INT(sx_srv_stop(srv, SIGTERM, 30), 0);

    /* Every file the server wrote: the RocksDB data dir (WAL, SST, MANIFEST, LOG...), its stderr
     * log and its access log. No token, no secret part as text, no secret as raw bytes. */
    needle needles[NT * 3];
    token_parts parts[NT];
    char what[NT * 3][64];
    for (int i = 0; i < NT; i++) {
        token_split(toks[i], &parts[i]);
        snprintf(what[i * 3], sizeof(what[0]), "token %d", i);
        snprintf(what[i * 3 + 1], sizeof(what[0]), "the secret part of token %d", i);
        snprintf(what[i * 3 + 2], sizeof(what[0]), "the raw secret of token %d", i);
        needles[i * 3] = (needle){toks[i], TOKEN_LEN, what[i * 3]};
        needles[i * 3 + 1] = (needle){parts[i].secret, 43, what[i * 3 + 1]};
        needles[i * 3 + 2] = (needle){parts[i].raw, 32, what[i * 3 + 2]};
    }
    char data_dir[4096];
    snprintf(data_dir, sizeof(data_dir), "%s/data/", dir);
    scan_needles = needles;
    scan_nneedles = NT * 3;
    scan_hits = scan_files = 0;
    scan_id = parts[0].id;
    scan_id_seen = false;
    scan_data_dir = data_dir;
    CHECK_INT(nftw(dir, scan_one, 16, FTW_PHYS), 0);
    fprintf(stderr, "scanned %d files under %s\n", scan_files, dir);
    CHECK(scan_files >= 5);
    CHECK(scan_id_seen); /* the token's record is there (its id is public), so the scan reads the data */
    CHECK_INT(scan_hits, 0);

    for (int i = 0; i < NT; i++)
        free(toks[i]);
    sx_test_rmtree(dir);
    free(dir);
}

static void tokens_never_reach_storage_logs_or_error_bodies(void)
{
    with_server(&(sx_srv_opts){.backend = "rocksdb", .keep_dir = true},
                tokens_never_reach_storage_logs_or_error_bodies_body);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    static const sx_test tests[] = {
        {"every_endpoint_role_and_scope_gets_the_expected_status",
         every_endpoint_role_and_scope_gets_the_expected_status},
        {"missing_or_bad_tokens_get_401_even_for_nonexistent_names",
         missing_or_bad_tokens_get_401_even_for_nonexistent_names},
        {"expired_and_revoked_tokens_get_401", expired_and_revoked_tokens_get_401},
        {"failed_auth_flood_is_throttled_per_address_and_spares_valid_clients",
         failed_auth_flood_is_throttled_per_address_and_spares_valid_clients},
        {"secretsctl_token_create_prints_only_the_token_on_stdout",
         secretsctl_token_create_prints_only_the_token_on_stdout},
        {"tokens_never_reach_storage_logs_or_error_bodies", tokens_never_reach_storage_logs_or_error_bodies},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
