/*
 * test_api.c - the secrets API end to end: the real secretsd binary, driven by libcurl over
 * HTTP/1.1, h2c (prior knowledge) and TLS h2, once per storage backend.
 *
 * `test_api --backend memory|rocksdb [test names...]` starts one server for the whole run and mints
 * one owner token (org "acme") over the admin socket; every test works in its own environment
 * (/acme/web/envs/<test>/...), so the tests share the server without seeing each other. The last
 * test stops the server and requires exit status 0 (under the sanitizer build that is also the
 * leak check).
 *
 * What is pinned: every endpoint's success and error answers with the schema checked key by key;
 * value round trips up to max_value_bytes; the concurrency promises (one winner among concurrent
 * creates, no value left behind a deleted name, If-Match against lost updates); pagination; and a
 * table of bad inputs that each get the right 4xx JSON error and leave the store unchanged.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "harness.h"
#include "testutil.h"

#define MAX_VALUE 65536             /* the server's default max_value_bytes */
#define MAX_BODY  1048576           /* the server's default max_body_bytes */
#define ENVS      "/acme/web/envs/" /* every test path starts here */

static sx_srv g_srv;
static bool g_running;
static const char *g_backend = "memory";
static char *g_auth; /* "Authorization: Bearer <owner token>" */

static const sx_proto k_protos[] = {SX_H1, SX_H2C, SX_H2TLS};
#define NPROTOS (sizeof(k_protos) / sizeof(k_protos[0]))

static const char *proto_name(sx_proto p)
{
    static const char *const names[] = {"HTTP/1.1", "h2c", "TLS h2", "TLS HTTP/1.1", "admin"};
    return names[p];
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- checks on response text ------------------------------------------------------------------ */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* 2026-11-26T15:46:21.123Z, and within ten minutes of the test's clock. */
static bool is_timestamp(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (!s || strlen(s) != sizeof(pat) - 1)
        return false;
    for (size_t i = 0; i < sizeof(pat) - 1; i++) {
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
            return false;
    }
    struct tm tm = {0};
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec) != 6)
        return false;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    time_t now = time(NULL);
    return t > now - 600 && t < now + 600;
}

/* "0123456789abcdef" in double quotes: a strong ETag. */
static bool etag_ok(const char *s)
{
    if (strlen(s) != 18 || s[0] != '"' || s[17] != '"')
        return false;
    for (int i = 1; i < 17; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool header_is(const sx_resp *r, const char *name, const char *want)
{
    char buf[1024];
    if (!sx_resp_header(r, name, buf, sizeof(buf))) {
        fprintf(stderr, "header %s missing\n", name);
        return false;
    }
    if (strcmp(buf, want) != 0) {
        fprintf(stderr, "header %s: \"%s\", want \"%s\"\n", name, buf, want);
        return false;
    }
    return true;
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(isdigit((unsigned char)c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10));
    }
    return v;
}

static size_t utf8_put(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decode the JSON string that follows the first "key": in text, byte-exact (embedded NULs kept,
 * which yajl_tree cannot give back). Returns a malloc'd buffer and its length, or NULL. */
static char *json_string_of(const char *text, const char *key, size_t *ret_len)
{
    char pat[320];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(text, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    char *out = malloc(strlen(p) + 1);
    size_t n = 0;
    while (*p && *p != '"') {
        if (*p != '\\') {
            out[n++] = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
            out[n++] = *p;
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u': {
            unsigned cp = hex4(p + 1);
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo = hex4(p + 3);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            n += utf8_put(out + n, cp);
            break;
        }
        default:
            free(out);
            return NULL;
        }
        p++;
    }
    if (*p != '"') {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *ret_len = n;
    return out;
}

/* ---- JSON trees --------------------------------------------------------------------------------- */

static yajl_val jparse(const sx_resp *r)
{
    char err[128];
    yajl_val v = yajl_tree_parse(r->body, err, sizeof(err));
    if (!v)
        fprintf(stderr, "not JSON (%s): %.300s\n", err, r->body);
    return v;
}

static yajl_val jget(yajl_val obj, const char *key)
{
    if (!YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

static const char *jstr(yajl_val obj, const char *key)
{
    yajl_val v = jget(obj, key);
    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* obj is an object with exactly these keys, each once. */
static bool exact_keys(yajl_val obj, const char *const *keys)
{
    size_t n = 0;
    while (keys[n])
        n++;
    if (!YAJL_IS_OBJECT(obj) || obj->u.object.len != n)
        return false;
    for (size_t k = 0; k < n; k++) {
        size_t seen = 0;
        for (size_t i = 0; i < obj->u.object.len; i++)
            seen += strcmp(obj->u.object.keys[i], keys[k]) == 0;
        if (seen != 1)
            return false;
    }
    return true;
}

/* A Secret: exactly name, description, hasValue, createdAt, updatedAt with these values; desc NULL
 * means JSON null. Never a value or ciphertext. */
static bool secret_val_ok(yajl_val v, const char *name, const char *desc, bool has_value)
{
    static const char *const keys[] = {"name", "description", "hasValue", "createdAt", "updatedAt", NULL};
    if (!exact_keys(v, keys)) {
        fprintf(stderr, "Secret \"%s\": not exactly the five keys\n", name);
        return false;
    }
    yajl_val d = jget(v, "description"), h = jget(v, "hasValue");
    const char *n = jstr(v, "name"), *c = jstr(v, "createdAt"), *u = jstr(v, "updatedAt");
    bool ok = n && strcmp(n, name) == 0;
    ok = ok && (desc ? YAJL_IS_STRING(d) && strcmp(d->u.string, desc) == 0 : YAJL_IS_NULL(d));
    ok = ok && (has_value ? YAJL_IS_TRUE(h) : YAJL_IS_FALSE(h));
    ok = ok && is_timestamp(c) && is_timestamp(u) && strcmp(c, u) <= 0;
    if (!ok)
        fprintf(stderr, "Secret \"%s\" (want description %s%s%s, hasValue %d): name=%s createdAt=%s updatedAt=%s\n",
                name, desc ? "\"" : "", desc ? desc : "null", desc ? "\"" : "", has_value, n ? n : "-", c ? c : "-",
                u ? u : "-");
    return ok;
}

/* The response is 200/201 with a Secret body, a strong ETag and the JSON headers. */
static bool secret_resp_ok(const sx_resp *r, long status, const char *name, const char *desc, bool has_value)
{
    if (r->status != status) {
        fprintf(stderr, "status %ld, want %ld: %.300s\n", r->status, status, r->body);
        return false;
    }
    yajl_val v = jparse(r);
    bool ok = v && secret_val_ok(v, name, desc, has_value);
    yajl_tree_free(v);
    char etag[64];
    if (!sx_resp_header(r, "etag", etag, sizeof(etag)) || !etag_ok(etag)) {
        fprintf(stderr, "no strong ETag on a Secret response\n");
        ok = false;
    }
    return ok && header_is(r, "content-type", "application/json");
}

/* pre + times x unit + post, malloc'd. */
static char *repeat(const char *pre, const char *unit, size_t times, const char *post)
{
    size_t ul = strlen(unit), pl = strlen(pre), ql = strlen(post);
    char *s = malloc(pl + ul * times + ql + 1);
    memcpy(s, pre, pl);
    for (size_t i = 0; i < times; i++)
        memcpy(s + pl + i * ul, unit, ul);
    memcpy(s + pl + ul * times, post, ql + 1);
    return s;
}

/* ---- requests ----------------------------------------------------------------------------------- */

/* One request with the owner token; a body goes as application/json. extra: one more header line
 * or NULL. Every answer must be valid UTF-8. */
static void api_len(sx_resp *r, sx_proto proto, const char *method, const char *path, const char *body, size_t len,
                    const char *extra)
{
    const char *h[4];
    size_t n = 0;
    h[n++] = g_auth;
    if (body)
        h[n++] = "Content-Type: application/json";
    if (extra)
        h[n++] = extra;
    h[n] = NULL;
    if (sx_srv_request(&g_srv, proto, method, path, h, body, len, r) != 0)
        r->status = 0;
    CHECK(utf8_ok((const unsigned char *)r->body, r->body_len));
}

static void api(sx_resp *r, sx_proto proto, const char *method, const char *path, const char *body, const char *extra)
{
    api_len(r, proto, method, path, body, body ? strlen(body) : 0, extra);
}

/* /acme/web/envs/{env}/secrets[/{name}][tail] into buf. */
static const char *spath(char *buf, size_t cap, const char *env, const char *name, const char *tail)
{
    snprintf(buf, cap, ENVS "%s/secrets%s%s%s", env, name ? "/" : "", name ? name : "", tail ? tail : "");
    return buf;
}

static char *secret_body(const char *name, const char *desc_json)
{
    size_t cap = strlen(name) + (desc_json ? strlen(desc_json) : 0) + 64;
    char *b = malloc(cap);
    if (desc_json)
        snprintf(b, cap, "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":%s}", name, desc_json);
    else
        snprintf(b, cap, "{\"kind\":\"secret\",\"name\":\"%s\"}", name);
    return b;
}

/* Create env/name (desc_json is the JSON text of the description or NULL); returns the status. */
static long create(const char *env, const char *name, const char *desc_json)
{
    char path[512];
    char *body = secret_body(name, desc_json);
    sx_resp r;
    api(&r, SX_H2C, "POST", spath(path, sizeof(path), env, NULL, NULL), body, NULL);
    long st = r.status;
    sx_resp_free(&r);
    free(body);
    return st;
}

/* Set env/name's value from the JSON text of a string; returns the status. */
static long set_value(const char *env, const char *name, const char *value_json)
{
    char path[512];
    size_t cap = strlen(value_json) + 16;
    char *body = malloc(cap);
    snprintf(body, cap, "{\"value\":%s}", value_json);
    sx_resp r;
    api(&r, SX_H2C, "PUT", spath(path, sizeof(path), env, name, "/value"), body, NULL);
    long st = r.status;
    sx_resp_free(&r);
    free(body);
    return st;
}

/* The ETag of a GET of env/name into buf (empty when the GET failed). */
static void etag_of(const char *env, const char *name, char *buf, size_t cap)
{
    char path[512];
    sx_resp r;
    api(&r, SX_H1, "GET", spath(path, sizeof(path), env, name, NULL), NULL, NULL);
    if (r.status != 200 || !sx_resp_header(&r, "etag", buf, cap))
        buf[0] = '\0';
    sx_resp_free(&r);
}

/* The list and the values map of env, as one malloc'd text, to compare states of the store. */
static char *snapshot(const char *env)
{
    char path[512];
    sx_resp l, v;
    api(&l, SX_H1, "GET", spath(path, sizeof(path), env, NULL, NULL), NULL, NULL);
    snprintf(path, sizeof(path), ENVS "%s/values", env);
    api(&v, SX_H1, "GET", path, NULL, NULL);
    size_t cap = l.body_len + v.body_len + 64;
    char *s = malloc(cap);
    snprintf(s, cap, "%ld %s\n%ld %s\n", l.status, l.body, v.status, v.body);
    sx_resp_free(&l);
    sx_resp_free(&v);
    return s;
}

/* ---- concurrent requests (curl multi) ------------------------------------------------------------ */

typedef struct par_req {
    const char *method;
    char path[512];
    const char *body;  /* sent as application/json; NULL = none */
    const char *extra; /* one more header line or NULL */
    long status;       /* out */
    char *resp;        /* out, malloc'd */
    size_t resp_len;
} par_req;

static size_t par_write(char *p, size_t size, size_t n, void *ud)
{
    par_req *q = ud;
    size_t add = size * n;
    char *nd = realloc(q->resp, q->resp_len + add + 1);
    if (!nd)
        return 0;
    memcpy(nd + q->resp_len, p, add);
    q->resp = nd;
    q->resp_len += add;
    nd[q->resp_len] = '\0';
    return add;
}

/* Run the n requests at once. Spread: each on a fresh connection (so they land on different event
 * loops), alternating HTTP/1.1 and h2c. Multiplexed: all as streams of one TLS h2 connection, so
 * they arrive in one burst and reach the worker pool together. (Not h2c: libcurl 7.88 fails streams
 * that reuse a prior-knowledge connection, curl/curl#10634, fixed in 8.0.) */
static void run_parallel(par_req *q, size_t n, bool multiplexed)
{
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    CURL **hs = calloc(n, sizeof(*hs));
    struct curl_slist **hl = calloc(n, sizeof(*hl));
    for (size_t i = 0; i < n; i++) {
        char url[700];
        if (multiplexed)
            snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", g_srv.tls_port, q[i].path);
        else
            snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", g_srv.port, q[i].path);
        q[i].status = 0;
        q[i].resp = NULL;
        q[i].resp_len = 0;
        CURL *h = hs[i] = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
        if (multiplexed) {
            curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
            curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
            curl_easy_setopt(h, CURLOPT_CAINFO, g_srv.cert_path);
        } else {
            curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
            curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                             (long)(i % 2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1));
        }
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q[i].method);
        hl[i] = curl_slist_append(hl[i], g_auth);
        if (q[i].body)
            hl[i] = curl_slist_append(hl[i], "Content-Type: application/json");
        if (q[i].extra)
            hl[i] = curl_slist_append(hl[i], q[i].extra);
        hl[i] = curl_slist_append(hl[i], "Expect:");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl[i]);
        if (q[i].body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, q[i].body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(q[i].body));
        }
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, par_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &q[i]);
        curl_multi_add_handle(m, h);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_wait(m, NULL, 0, 100, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK)
            fprintf(stderr, "parallel request failed: %s\n", curl_easy_strerror(msg->data.result));
    }
    long connects = 0;
    for (size_t i = 0; i < n; i++) {
        long c = 0;
        curl_easy_getinfo(hs[i], CURLINFO_NUM_CONNECTS, &c);
        connects += c;
        curl_easy_getinfo(hs[i], CURLINFO_RESPONSE_CODE, &q[i].status);
        if (!q[i].resp)
            q[i].resp = calloc(1, 1);
        curl_multi_remove_handle(m, hs[i]);
        curl_easy_cleanup(hs[i]);
        curl_slist_free_all(hl[i]);
    }
    curl_multi_cleanup(m);
    CHECK_INT(connects, multiplexed ? 1 : (long)n);
    free(hs);
    free(hl);
}

static void par_free(par_req *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(q[i].resp);
        q[i].resp = NULL;
    }
}

/* ---- the endpoints, one by one ------------------------------------------------------------------ */

static void create_answers_201_with_location_etag_and_a_fresh_secret(void)
{
    for (size_t i = 0; i < NPROTOS + 1; i++) {
        sx_proto proto = i < NPROTOS ? k_protos[i] : SX_H1TLS;
        char name[32], path[512], loc[512];
        snprintf(name, sizeof(name), "c-%zu", i);
        char *body = secret_body(name, "\"the database password\"");
        sx_resp r;
        api(&r, proto, "POST", spath(path, sizeof(path), "create", NULL, NULL), body, NULL);
        free(body);
        CHECK(r.http_version == (proto == SX_H2C || proto == SX_H2TLS ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_1_1));
        bool ok = secret_resp_ok(&r, 201, name, "the database password", false);
        if (!ok)
            fprintf(stderr, "  over %s\n", proto_name(proto));
        CHECK(ok);
        yajl_val v = jparse(&r);
        CHECK_STR(jstr(v, "createdAt"), jstr(v, "updatedAt"));
        yajl_tree_free(v);
        CHECK(header_is(&r, "location", spath(loc, sizeof(loc), "create", name, NULL)));
        char etag[64] = "", etag2[64] = "";
        sx_resp_header(&r, "etag", etag, sizeof(etag));
        /* The Location answers with the same secret and the same ETag. */
        sx_resp g;
        api(&g, proto, "GET", loc, NULL, NULL);
        CHECK(secret_resp_ok(&g, 200, name, "the database password", false));
        CHECK_STR(g.body, r.body);
        sx_resp_header(&g, "etag", etag2, sizeof(etag2));
        CHECK_STR(etag2, etag);
        sx_resp_free(&g);
        sx_resp_free(&r);
    }
    /* description omitted or null is null; "" stays "". */
    char path[512];
    sx_resp r;
    api(&r, SX_H2C, "POST", spath(path, sizeof(path), "create", NULL, NULL),
        "{\"kind\":\"secret\",\"name\":\"no-desc\"}", NULL);
    CHECK(secret_resp_ok(&r, 201, "no-desc", NULL, false));
    sx_resp_free(&r);
    api(&r, SX_H2TLS, "POST", path, "{\"description\":null,\"name\":\"null-desc\",\"kind\":\"secret\"}", NULL);
    CHECK(secret_resp_ok(&r, 201, "null-desc", NULL, false));
    sx_resp_free(&r);
    api(&r, SX_H1, "POST", path, "{\"kind\":\"secret\",\"name\":\"empty-desc\",\"description\":\"\"}", NULL);
    CHECK(secret_resp_ok(&r, 201, "empty-desc", "", false));
    sx_resp_free(&r);
    /* A body sent chunked (HTTP/1.1, no Content-Length) is the same body. */
    const char *chunked[] = {g_auth, "Content-Type: application/json", "Transfer-Encoding: chunked", NULL};
    static const char cbody[] = "{\"kind\":\"secret\",\"name\":\"chunked\",\"description\":\"in pieces\"}";
    CHECK(sx_srv_request(&g_srv, SX_H1, "POST", path, chunked, cbody, sizeof(cbody) - 1, &r) == 0);
    CHECK(secret_resp_ok(&r, 201, "chunked", "in pieces", false));
    sx_resp_free(&r);
    /* The longest name and description allowed; a Content-Type with parameters. */
    char longname[257];
    memset(longname, 'N', 256);
    longname[256] = '\0';
    char desc[1024 + 3];
    desc[0] = '"';
    for (int i = 0; i < 512; i++)
        memcpy(desc + 1 + 2 * i, "\xc3\xa9", 2); /* 512 x é = 1024 bytes */
    desc[1025] = '"';
    desc[1026] = '\0';
    char *body = secret_body(longname, desc);
    api(&r, SX_H2C, "POST", path, body, "Content-Type: application/json; charset=utf-8");
    desc[1025] = '\0';
    CHECK(secret_resp_ok(&r, 201, longname, desc + 1, false));
    sx_resp_free(&r);
    free(body);
}

static void create_of_an_existing_name_is_409_already_exists(void)
{
    CHECK_INT(create("dup", "taken", "\"first\""), 201);
    char path[512];
    for (size_t i = 0; i < NPROTOS; i++) {
        sx_resp r;
        api(&r, k_protos[i], "POST", spath(path, sizeof(path), "dup", NULL, NULL),
            "{\"kind\":\"secret\",\"name\":\"taken\",\"description\":\"second\"}", NULL);
        CHECK_INT(r.status, 409);
        CHECK(sx_resp_is_error(&r, "already_exists"));
        sx_resp_free(&r);
    }
    /* The first one is untouched. */
    sx_resp r;
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "dup", "taken", NULL), NULL, NULL);
    CHECK(secret_resp_ok(&r, 200, "taken", "first", false));
    sx_resp_free(&r);
}

static void get_answers_the_secret_and_404_not_found_for_unknown_names(void)
{
    CHECK_INT(create("get", "present", "\"here\""), 201);
    char path[512];
    for (size_t i = 0; i < NPROTOS; i++) {
        sx_resp r;
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "get", "present", NULL), NULL, NULL);
        CHECK(secret_resp_ok(&r, 200, "present", "here", false));
        CHECK(header_is(&r, "cache-control", "no-store"));
        sx_resp_free(&r);
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "get", "absent", NULL), NULL, NULL);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
        /* Same name in another environment of the same project is another secret. */
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "get2", "present", NULL), NULL, NULL);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
    }
}

static void list_is_sorted_metadata_and_an_empty_env_is_an_empty_array(void)
{
    /* Bytewise order: '-' < '.' < digits < upper case < '_' < lower case. */
    static const char *const created[] = {"alpha", "Beta", "_under", "0zero", "a.b", "a-b", "alpha2"};
    static const char *const sorted[] = {"0zero", "Beta", "_under", "a-b", "a.b", "alpha", "alpha2"};
    for (size_t i = 0; i < 7; i++)
        CHECK_INT(create("list", created[i], i % 2 ? "\"odd\"" : NULL), 201);
    CHECK_INT(set_value("list", "a.b", "\"list-canary-value\""), 200);
    char path[512];
    for (size_t p = 0; p < NPROTOS; p++) {
        sx_resp r;
        api(&r, k_protos[p], "GET", spath(path, sizeof(path), "list", NULL, NULL), NULL, NULL);
        CHECK_INT(r.status, 200);
        CHECK(header_is(&r, "content-type", "application/json"));
        CHECK(!strstr(r.body, "list-canary-value"));
        CHECK(!sx_resp_header(&r, "link", path, sizeof(path)));
        yajl_val v = jparse(&r);
        REQUIRE(YAJL_IS_ARRAY(v));
        CHECK_INT(v->u.array.len, 7);
        for (size_t i = 0; i < v->u.array.len && i < 7; i++) {
            size_t c = 0;
            while (strcmp(created[c], sorted[i]) != 0)
                c++;
            CHECK(secret_val_ok(v->u.array.values[i], sorted[i], c % 2 ? "odd" : NULL, strcmp(sorted[i], "a.b") == 0));
        }
        yajl_tree_free(v);
        sx_resp_free(&r);
        /* Environments come into being with their first secret: before that the list is []. */
        api(&r, k_protos[p], "GET", spath(path, sizeof(path), "list-never-used", NULL, NULL), NULL, NULL);
        CHECK_INT(r.status, 200);
        CHECK_STR(r.body, "[]");
        sx_resp_free(&r);
    }
}

static void update_replaces_the_description_and_bumps_updated_at(void)
{
    CHECK_INT(create("update", "u", "\"v1\""), 201);
    CHECK_INT(set_value("update", "u", "\"kept\""), 200);
    char path[512];
    spath(path, sizeof(path), "update", "u", NULL);
    sx_resp r;
    api(&r, SX_H1, "GET", path, NULL, NULL);
    yajl_val before = jparse(&r);
    char etag0[64] = "";
    sx_resp_header(&r, "etag", etag0, sizeof(etag0));
    sx_resp_free(&r);

    struct {
        sx_proto proto;
        const char *body;
        const char *want; /* NULL = null */
    } steps[] = {
        {SX_H1, "{\"kind\":\"secret\",\"name\":\"u\",\"description\":\"v2\"}", "v2"},
        {SX_H2C, "{\"name\":\"u\",\"kind\":\"secret\",\"description\":null}", NULL},
        {SX_H2TLS, "{\"kind\":\"secret\",\"name\":\"u\",\"description\":\"caf\\u00e9 \\\"q\\\"\"}",
         "caf\xc3\xa9 \"q\""},
        {SX_H1TLS, "{\"kind\":\"secret\",\"name\":\"u\"}", NULL}, /* omitted = null: PUT replaces */
    };
    char prev_updated[32];
    snprintf(prev_updated, sizeof(prev_updated), "%s", jstr(before, "updatedAt") ? jstr(before, "updatedAt") : "");
    char prev_etag[64];
    snprintf(prev_etag, sizeof(prev_etag), "%s", etag0);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        sleep_ms(3); /* so updatedAt can move */
        api(&r, steps[i].proto, "PUT", path, steps[i].body, NULL);
        CHECK(secret_resp_ok(&r, 200, "u", steps[i].want, true));
        yajl_val v = jparse(&r);
        CHECK_STR(jstr(v, "createdAt"), jstr(before, "createdAt"));
        CHECK(jstr(v, "updatedAt") && strcmp(jstr(v, "updatedAt"), prev_updated) > 0);
        snprintf(prev_updated, sizeof(prev_updated), "%s", jstr(v, "updatedAt") ? jstr(v, "updatedAt") : "");
        yajl_tree_free(v);
        char etag[64] = "";
        sx_resp_header(&r, "etag", etag, sizeof(etag));
        CHECK(strcmp(etag, prev_etag) != 0);
        snprintf(prev_etag, sizeof(prev_etag), "%s", etag);
        sx_resp_free(&r);
        /* A GET shows what the PUT answered. */
        api(&r, SX_H2C, "GET", path, NULL, NULL);
        CHECK(secret_resp_ok(&r, 200, "u", steps[i].want, true));
        char getag[64] = "";
        sx_resp_header(&r, "etag", getag, sizeof(getag));
        CHECK_STR(getag, prev_etag);
        sx_resp_free(&r);
    }
    yajl_tree_free(before);
    /* The value survived the description updates. */
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "update", "u", "/value"), NULL, NULL);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"value\":\"kept\"") != NULL);
    sx_resp_free(&r);
    /* Unknown name: 404 not_found (after the body was found valid). */
    api(&r, SX_H2C, "PUT", spath(path, sizeof(path), "update", "nobody", NULL),
        "{\"kind\":\"secret\",\"name\":\"nobody\",\"description\":\"x\"}", NULL);
    CHECK_INT(r.status, 404);
    CHECK(sx_resp_is_error(&r, "not_found"));
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "update", "nobody", NULL), NULL, NULL);
    CHECK_INT(r.status, 404);
    sx_resp_free(&r);
}

static void delete_answers_deleted_body_and_then_404(void)
{
    char path[512];
    for (size_t i = 0; i < NPROTOS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "d%zu", i);
        CHECK_INT(create("delete", name, "\"doomed\""), 201);
        CHECK_INT(set_value("delete", name, "\"delete-canary\""), 200);
        sx_resp r;
        api(&r, k_protos[i], "DELETE", spath(path, sizeof(path), "delete", name, NULL), NULL, NULL);
        CHECK_INT(r.status, 200);
        CHECK(header_is(&r, "content-type", "application/json"));
        yajl_val v = jparse(&r);
        static const char *const keys[] = {"deleted", "name", NULL};
        CHECK(exact_keys(v, keys));
        CHECK(YAJL_IS_TRUE(jget(v, "deleted")));
        CHECK_STR(jstr(v, "name"), name);
        yajl_tree_free(v);
        CHECK(!strstr(r.body, "delete-canary"));
        sx_resp_free(&r);
        /* Gone: the metadata, the value, and a second delete. */
        api(&r, k_protos[i], "GET", path, NULL, NULL);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "delete", name, "/value"), NULL, NULL);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
        api(&r, k_protos[i], "DELETE", spath(path, sizeof(path), "delete", name, NULL), NULL, NULL);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
    }
    sx_resp r;
    api(&r, SX_H1, "GET", ENVS "delete/values", NULL, NULL);
    CHECK_STR(r.body, "{}");
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "delete", NULL, NULL), NULL, NULL);
    CHECK_STR(r.body, "[]");
    sx_resp_free(&r);
}

static void set_value_answers_name_has_value_updated_at_and_404_for_unknown(void)
{
    CHECK_INT(create("setv", "s", NULL), 201);
    char path[512], gpath[512];
    spath(gpath, sizeof(gpath), "setv", "s", NULL);
    spath(path, sizeof(path), "setv", "s", "/value");
    char prev[32] = "";
    for (size_t i = 0; i < NPROTOS; i++) {
        sleep_ms(3);
        char body[64];
        snprintf(body, sizeof(body), "{\"value\":\"setv-canary-%zu\"}", i);
        sx_resp r;
        api(&r, k_protos[i], "PUT", path, body, NULL);
        CHECK_INT(r.status, 200);
        CHECK(header_is(&r, "content-type", "application/json"));
        CHECK(header_is(&r, "cache-control", "no-store"));
        char etag[64] = "";
        CHECK(sx_resp_header(&r, "etag", etag, sizeof(etag)) && etag_ok(etag));
        CHECK(!strstr(r.body, "setv-canary"));
        yajl_val v = jparse(&r);
        static const char *const keys[] = {"name", "hasValue", "updatedAt", NULL};
        CHECK(exact_keys(v, keys));
        CHECK_STR(jstr(v, "name"), "s");
        CHECK(YAJL_IS_TRUE(jget(v, "hasValue")));
        const char *upd = jstr(v, "updatedAt");
        CHECK(is_timestamp(upd));
        CHECK(upd && strcmp(upd, prev) > 0);
        snprintf(prev, sizeof(prev), "%s", upd ? upd : "");
        yajl_tree_free(v);
        sx_resp_free(&r);
        /* The metadata now says hasValue, with the same updatedAt and ETag, and no value. */
        api(&r, k_protos[i], "GET", gpath, NULL, NULL);
        CHECK(secret_resp_ok(&r, 200, "s", NULL, true));
        CHECK(!strstr(r.body, "setv-canary"));
        v = jparse(&r);
        CHECK_STR(jstr(v, "updatedAt"), prev);
        yajl_tree_free(v);
        char getag[64] = "";
        sx_resp_header(&r, "etag", getag, sizeof(getag));
        CHECK_STR(getag, etag);
        sx_resp_free(&r);
    }
    sx_resp r;
    api(&r, SX_H2C, "PUT", spath(path, sizeof(path), "setv", "nobody", "/value"), "{\"value\":\"x\"}", NULL);
    CHECK_INT(r.status, 404);
    CHECK(sx_resp_is_error(&r, "not_found"));
    sx_resp_free(&r);
    /* ...and did not bring "nobody" into being. */
    api(&r, SX_H1, "GET", ENVS "setv/values", NULL, NULL);
    CHECK_STR(r.body, "{\"s\":\"setv-canary-2\"}");
    sx_resp_free(&r);
}

static void reveal_answers_the_value_with_no_store_and_404_without_one(void)
{
    CHECK_INT(create("reveal", "with", NULL), 201);
    CHECK_INT(create("reveal", "without", "\"declared only\""), 201);
    CHECK_INT(set_value("reveal", "with", "\"s3cr3t\""), 200);
    char path[512];
    for (size_t i = 0; i < NPROTOS; i++) {
        sx_resp r;
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "reveal", "with", "/value"), NULL, NULL);
        CHECK_INT(r.status, 200);
        CHECK(header_is(&r, "cache-control", "no-store"));
        CHECK(header_is(&r, "content-type", "application/json"));
        yajl_val v = jparse(&r);
        static const char *const keys[] = {"name", "value", "updatedAt", NULL};
        CHECK(exact_keys(v, keys));
        CHECK_STR(jstr(v, "name"), "with");
        CHECK_STR(jstr(v, "value"), "s3cr3t");
        CHECK(is_timestamp(jstr(v, "updatedAt")));
        yajl_tree_free(v);
        sx_resp_free(&r);
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "reveal", "without", "/value"), NULL, NULL);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "reveal", "undeclared", "/value"), NULL, NULL);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
    }
}

static void values_map_holds_exactly_the_secrets_that_have_a_value(void)
{
    CHECK_INT(create("values", "B", NULL), 201);
    CHECK_INT(create("values", "a", NULL), 201);
    CHECK_INT(create("values", "c-none", NULL), 201);
    CHECK_INT(set_value("values", "B", "\"bee\""), 200);
    CHECK_INT(set_value("values", "a", "\"\""), 200);
    for (size_t i = 0; i < NPROTOS; i++) {
        sx_resp r;
        api(&r, k_protos[i], "GET", ENVS "values/values", NULL, NULL);
        CHECK_INT(r.status, 200);
        CHECK(header_is(&r, "cache-control", "no-store"));
        CHECK(header_is(&r, "content-type", "application/json"));
        yajl_val v = jparse(&r);
        static const char *const keys[] = {"B", "a", NULL};
        CHECK(exact_keys(v, keys));
        CHECK_STR(jstr(v, "B"), "bee");
        CHECK_STR(jstr(v, "a"), "");
        yajl_tree_free(v);
        sx_resp_free(&r);
        api(&r, k_protos[i], "GET", ENVS "values-never-used/values", NULL, NULL);
        CHECK_INT(r.status, 200);
        CHECK_STR(r.body, "{}");
        sx_resp_free(&r);
    }
}

/* ---- values -------------------------------------------------------------------------------------- */

/* Set the value from its JSON text and check that reveal and the values map give back exactly want. */
static void round_trip(sx_proto proto, const char *name, const char *value_json, const char *want, size_t want_len)
{
    char path[512];
    size_t cap = strlen(value_json) + 16;
    char *body = malloc(cap);
    snprintf(body, cap, "{\"value\":%s}", value_json);
    sx_resp r;
    api(&r, proto, "PUT", spath(path, sizeof(path), "values-rt", name, "/value"), body, NULL);
    free(body);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);

    api(&r, proto, "GET", spath(path, sizeof(path), "values-rt", name, "/value"), NULL, NULL);
    CHECK_INT(r.status, 200);
    size_t len = 0;
    char *got = json_string_of(r.body, "value", &len);
    CHECK(got && len == want_len && memcmp(got, want, want_len) == 0);
    if (!got || len != want_len || memcmp(got, want, want_len) != 0)
        fprintf(stderr, "round trip of \"%s\" over %s: got %zu bytes, want %zu\n", name, proto_name(proto),
                got ? len : 0, want_len);
    free(got);
    sx_resp_free(&r);

    api(&r, proto, "GET", ENVS "values-rt/values", NULL, NULL);
    CHECK_INT(r.status, 200);
    got = json_string_of(r.body, name, &len);
    CHECK(got && len == want_len && memcmp(got, want, want_len) == 0);
    free(got);
    sx_resp_free(&r);
}

static void values_round_trip_byte_exact_up_to_max_value_bytes(void)
{
    static const char unicode[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                                  "\xf0\x9f\x98\x80";
    static const char escaped[] = "q\"b\\s/f\b\f\n\r\tz\0\x1f\x7f";
    char *max_ascii = malloc(MAX_VALUE + 3), *max_json = malloc(MAX_VALUE * 3 + 3);
    char *max_want = malloc(MAX_VALUE);
    for (size_t i = 0; i < NPROTOS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "rt%zu", i);
        CHECK_INT(create("values-rt", name, NULL), 201);
        sx_proto p = k_protos[i];
        round_trip(p, name, "\"\"", "", 0);
        round_trip(p, name,
                   "\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                   "\xf0\x9f\x98\x80\"",
                   unicode, sizeof(unicode) - 1);
        /* The same text through \u escapes, a surrogate pair included. */
        round_trip(p, name, "\"h\\u00e9llo w\\u00F6rld \\u2713 \\u65e5\\u672c\\u8a9e \\ud83d\\ude00\"", unicode,
                   sizeof(unicode) - 1);
        round_trip(p, name, "\"q\\\"b\\\\s\\/f\\b\\f\\n\\r\\tz\\u0000\\u001f\x7f\"", escaped, sizeof(escaped) - 1);
        /* Exactly max_value_bytes: ASCII, two-byte characters, and two-byte characters written as
         * six-byte escapes (the limit counts the value's bytes, not the JSON text). */
        max_ascii[0] = '"';
        memset(max_ascii + 1, 'a' + (int)i, MAX_VALUE);
        max_ascii[MAX_VALUE + 1] = '"';
        max_ascii[MAX_VALUE + 2] = '\0';
        round_trip(p, name, max_ascii, max_ascii + 1, MAX_VALUE);
        max_json[0] = '"';
        for (size_t k = 0; k < MAX_VALUE / 2; k++) {
            memcpy(max_json + 1 + 2 * k, "\xc3\xa9", 2);
            memcpy(max_want + 2 * k, "\xc3\xa9", 2);
        }
        max_json[MAX_VALUE + 1] = '"';
        max_json[MAX_VALUE + 2] = '\0';
        round_trip(p, name, max_json, max_want, MAX_VALUE);
        max_json[0] = '"';
        for (size_t k = 0; k < MAX_VALUE / 2; k++)
            memcpy(max_json + 1 + 6 * k, "\\u00e9", 6);
        max_json[3 * MAX_VALUE + 1] = '"';
        max_json[3 * MAX_VALUE + 2] = '\0';
        round_trip(p, name, max_json, max_want, MAX_VALUE);

        /* One byte over: 413, and the value before it is still there. */
        char path[512];
        char *body = malloc(MAX_VALUE + 32);
        int n = snprintf(body, MAX_VALUE + 32, "{\"value\":\"");
        memset(body + n, 'z', MAX_VALUE + 1);
        memcpy(body + n + MAX_VALUE + 1, "\"}", 3);
        sx_resp r;
        api(&r, p, "PUT", spath(path, sizeof(path), "values-rt", name, "/value"), body, NULL);
        free(body);
        CHECK_INT(r.status, 413);
        CHECK(sx_resp_is_error(&r, "payload_too_large"));
        sx_resp_free(&r);
        api(&r, p, "GET", spath(path, sizeof(path), "values-rt", name, "/value"), NULL, NULL);
        size_t len = 0;
        char *got = json_string_of(r.body, "value", &len);
        CHECK(got && len == MAX_VALUE && memcmp(got, max_want, MAX_VALUE) == 0);
        free(got);
        sx_resp_free(&r);
    }
    free(max_ascii);
    free(max_json);
    free(max_want);
}

static void values_never_appear_in_list_get_or_write_answers(void)
{
    static const char canary[] = "CANARY-9f8e7d6c";
    CHECK_INT(create("hidden", "h", "\"described\""), 201);
    char path[512];
    sx_resp r;
    api(&r, SX_H1, "PUT", spath(path, sizeof(path), "hidden", "h", "/value"), "{\"value\":\"CANARY-9f8e7d6c\"}", NULL);
    CHECK_INT(r.status, 200);
    CHECK(!strstr(r.body, canary) && !strstr(r.headers, canary));
    sx_resp_free(&r);
    for (size_t i = 0; i < NPROTOS; i++) {
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "hidden", NULL, NULL), NULL, NULL);
        CHECK_INT(r.status, 200);
        CHECK(!strstr(r.body, canary) && !strstr(r.headers, canary));
        sx_resp_free(&r);
        api(&r, k_protos[i], "GET", spath(path, sizeof(path), "hidden", "h", NULL), NULL, NULL);
        CHECK_INT(r.status, 200);
        CHECK(!strstr(r.body, canary) && !strstr(r.headers, canary));
        sx_resp_free(&r);
        api(&r, k_protos[i], "PUT", path, "{\"kind\":\"secret\",\"name\":\"h\",\"description\":\"again\"}", NULL);
        CHECK_INT(r.status, 200);
        CHECK(!strstr(r.body, canary) && !strstr(r.headers, canary));
        sx_resp_free(&r);
    }
    /* Only reveal gives it. */
    api(&r, SX_H2C, "GET", spath(path, sizeof(path), "hidden", "h", "/value"), NULL, NULL);
    CHECK(strstr(r.body, canary) != NULL);
    sx_resp_free(&r);
}

static void recreated_name_starts_fresh_without_value_and_with_new_created_at(void)
{
    char path[512];
    CHECK_INT(create("fresh", "phoenix", "\"old life\""), 201);
    CHECK_INT(set_value("fresh", "phoenix", "\"old-value\""), 200);
    sx_resp r;
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "fresh", "phoenix", NULL), NULL, NULL);
    yajl_val old = jparse(&r);
    char old_etag[64] = "";
    sx_resp_header(&r, "etag", old_etag, sizeof(old_etag));
    sx_resp_free(&r);
    sleep_ms(5);
    api(&r, SX_H2C, "DELETE", path, NULL, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    sleep_ms(5);
    api(&r, SX_H2TLS, "POST", spath(path, sizeof(path), "fresh", NULL, NULL),
        "{\"kind\":\"secret\",\"name\":\"phoenix\"}", NULL);
    CHECK(secret_resp_ok(&r, 201, "phoenix", NULL, false));
    yajl_val now = jparse(&r);
    const char *oc = jstr(old, "createdAt"), *nc = jstr(now, "createdAt");
    CHECK(oc && nc && strcmp(nc, oc) > 0);
    char etag[64] = "";
    sx_resp_header(&r, "etag", etag, sizeof(etag));
    CHECK(strcmp(etag, old_etag) != 0);
    yajl_tree_free(old);
    yajl_tree_free(now);
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "fresh", "phoenix", "/value"), NULL, NULL);
    CHECK_INT(r.status, 404);
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", ENVS "fresh/values", NULL, NULL);
    CHECK_STR(r.body, "{}");
    sx_resp_free(&r);
    /* The old ETag does not match the new secret. */
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "If-Match: %s", old_etag);
    api(&r, SX_H1, "PUT", spath(path, sizeof(path), "fresh", "phoenix", NULL),
        "{\"kind\":\"secret\",\"name\":\"phoenix\"}", hdr);
    CHECK_INT(r.status, 412);
    CHECK(sx_resp_is_error(&r, "precondition_failed"));
    sx_resp_free(&r);
}

/* ---- races and conditional requests ------------------------------------------------------------ */

static void concurrent_creates_of_one_name_give_one_201_and_31_409(void)
{
    enum { N = 32 };
    static par_req q[N];
    for (int round = 0; round < 3; round++) {
        char name[32], body[128];
        snprintf(name, sizeof(name), "race-%d", round);
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"round %d\"}", name, round);
        for (int i = 0; i < N; i++) {
            q[i] = (par_req){.method = "POST", .body = body};
            spath(q[i].path, sizeof(q[i].path), "race", NULL, NULL);
        }
        run_parallel(q, N, round % 2 == 1);
        int created = 0, conflict = 0;
        for (int i = 0; i < N; i++) {
            if (q[i].status == 201)
                created++;
            else if (q[i].status == 409 && strstr(q[i].resp, "\"code\":\"already_exists\""))
                conflict++;
            else
                fprintf(stderr, "create %d: %ld %s\n", i, q[i].status, q[i].resp);
        }
        CHECK_INT(created, 1);
        CHECK_INT(conflict, N - 1);
        par_free(q, N);
    }
    sx_resp r;
    char path[512];
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "race", NULL, NULL), NULL, NULL);
    yajl_val v = jparse(&r);
    CHECK(YAJL_IS_ARRAY(v) && v->u.array.len == 3);
    yajl_tree_free(v);
    sx_resp_free(&r);
}

static void concurrent_set_value_and_delete_never_leave_a_value_behind(void)
{
    enum { SETTERS = 15, ROUNDS = 16, VLEN = 32768 };
    static par_req q[SETTERS + 1];
    /* Large values: encrypting them widens the window between a writer's read and its batch. */
    static char bodies[SETTERS][VLEN + 64];
    for (int round = 0; round < ROUNDS; round++) {
        char name[32];
        snprintf(name, sizeof(name), "sd-%d", round);
        REQUIRE(create("setdel", name, NULL) == 201);
        int del = round % (SETTERS + 1); /* the delete moves through the batch */
        for (int i = 0, s = 0; i < SETTERS + 1; i++) {
            if (i == del) {
                q[i] = (par_req){.method = "DELETE"};
                spath(q[i].path, sizeof(q[i].path), "setdel", name, NULL);
                continue;
            }
            int n = snprintf(bodies[s], sizeof(bodies[s]), "{\"value\":\"v-%d-%d-", round, s);
            memset(bodies[s] + n, 'v', VLEN);
            memcpy(bodies[s] + n + VLEN, "\"}", 3);
            q[i] = (par_req){.method = "PUT", .body = bodies[s]};
            spath(q[i].path, sizeof(q[i].path), "setdel", name, "/value");
            s++;
        }
        run_parallel(q, SETTERS + 1, round % 2 == 1);
        for (int i = 0; i < SETTERS + 1; i++) {
            if (i == del)
                CHECK_INT(q[i].status, 200);
            else
                CHECK(q[i].status == 200 || (q[i].status == 404 && strstr(q[i].resp, "\"code\":\"not_found\"")));
        }
        par_free(q, SETTERS + 1);
        char path[512];
        sx_resp r;
        api(&r, SX_H1, "GET", spath(path, sizeof(path), "setdel", name, NULL), NULL, NULL);
        CHECK_INT(r.status, 404);
        sx_resp_free(&r);
        api(&r, SX_H1, "GET", spath(path, sizeof(path), "setdel", name, "/value"), NULL, NULL);
        CHECK_INT(r.status, 404);
        sx_resp_free(&r);
    }
    /* Nothing left anywhere in the environment: no value record outlived its name. */
    sx_resp r;
    char path[512];
    api(&r, SX_H1, "GET", ENVS "setdel/values", NULL, NULL);
    CHECK_STR(r.body, "{}");
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "setdel", NULL, NULL), NULL, NULL);
    CHECK_STR(r.body, "[]");
    sx_resp_free(&r);
    /* A re-created name has no value. */
    CHECK_INT(create("setdel", "sd-0", NULL), 201);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "setdel", "sd-0", NULL), NULL, NULL);
    CHECK(secret_resp_ok(&r, 200, "sd-0", NULL, false));
    sx_resp_free(&r);
}

static void concurrent_set_values_leave_one_of_the_values(void)
{
    enum { N = 16 };
    static par_req q[N];
    char bodies[N][64];
    CHECK_INT(create("setset", "s", NULL), 201);
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "{\"value\":\"value-%02d\"}", i);
        q[i] = (par_req){.method = "PUT", .body = bodies[i]};
        spath(q[i].path, sizeof(q[i].path), "setset", "s", "/value");
    }
    run_parallel(q, N, true);
    for (int i = 0; i < N; i++)
        CHECK_INT(q[i].status, 200);
    par_free(q, N);
    sx_resp r;
    char path[512];
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "setset", "s", "/value"), NULL, NULL);
    CHECK_INT(r.status, 200);
    size_t len = 0;
    char *got = json_string_of(r.body, "value", &len);
    CHECK(got && len == 8 && strncmp(got, "value-", 6) == 0);
    free(got);
    sx_resp_free(&r);
}

static void if_match_prevents_lost_updates(void)
{
    char path[512], etag[64], hdr[128];
    CHECK_INT(create("ifmatch", "lu", "\"v0\""), 201);
    spath(path, sizeof(path), "ifmatch", "lu", NULL);

    /* Sequential: two writers read the same ETag; the second one's PUT is refused. */
    etag_of("ifmatch", "lu", etag, sizeof(etag));
    REQUIRE(etag_ok(etag));
    snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
    sx_resp r;
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"alice\"}", hdr);
    CHECK(secret_resp_ok(&r, 200, "lu", "alice", false));
    char etag_alice[64] = "";
    sx_resp_header(&r, "etag", etag_alice, sizeof(etag_alice));
    CHECK(strcmp(etag_alice, etag) != 0);
    sx_resp_free(&r);
    api(&r, SX_H2C, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"bob\"}", hdr);
    CHECK_INT(r.status, 412);
    CHECK(sx_resp_is_error(&r, "precondition_failed"));
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", path, NULL, NULL);
    CHECK(secret_resp_ok(&r, 200, "lu", "alice", false));
    sx_resp_free(&r);

    /* Concurrent: writers that all read the same ETag PUT at once: exactly one wins, the others get
     * 412 and the winner's description stays. Two writers, then sixteen (more jobs in flight
     * together widen the race on the fast memory backend). */
    static const char *const who[] = {"w00", "w01", "w02", "w03", "w04", "w05", "w06", "w07",
                                      "w08", "w09", "w10", "w11", "w12", "w13", "w14", "w15"};
    static char bodies[16][80];
    static par_req q[16];
    for (int round = 0; round < 8; round++) {
        size_t n = round < 4 ? 2 : 16;
        etag_of("ifmatch", "lu", etag, sizeof(etag));
        snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
        for (size_t i = 0; i < n; i++) {
            snprintf(bodies[i], sizeof(bodies[i]), "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"%s\"}",
                     who[i]);
            q[i] = (par_req){.method = "PUT", .body = bodies[i], .extra = hdr};
            snprintf(q[i].path, sizeof(q[i].path), "%s", path);
        }
        run_parallel(q, n, round % 2 == 1);
        size_t won = 0, lost = 0, winner = 0;
        for (size_t i = 0; i < n; i++) {
            if (q[i].status == 200) {
                won++;
                winner = i;
            } else if (q[i].status == 412 && strstr(q[i].resp, "\"code\":\"precondition_failed\"")) {
                lost++;
            }
        }
        if (won != 1 || lost != n - 1)
            fprintf(stderr, "round %d: %zu writers, %zu got 200, %zu got 412\n", round, n, won, lost);
        CHECK_INT(won, 1);
        CHECK_INT(lost, n - 1);
        par_free(q, n);
        api(&r, SX_H1, "GET", path, NULL, NULL);
        CHECK(secret_resp_ok(&r, 200, "lu", who[winner], false));
        sx_resp_free(&r);
    }

    /* "*" and a list containing the current ETag match; anything else is 412. */
    etag_of("ifmatch", "lu", etag, sizeof(etag));
    api(&r, SX_H2TLS, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"star\"}", "If-Match: *");
    CHECK(secret_resp_ok(&r, 200, "lu", "star", false));
    sx_resp_free(&r);
    etag_of("ifmatch", "lu", etag, sizeof(etag));
    snprintf(hdr, sizeof(hdr), "If-Match: \"0000000000000000\", %s", etag);
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"listed\"}", hdr);
    CHECK(secret_resp_ok(&r, 200, "lu", "listed", false));
    sx_resp_free(&r);
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"x\"}", "If-Match: \"bogus\"");
    CHECK_INT(r.status, 412);
    CHECK(sx_resp_is_error(&r, "precondition_failed"));
    sx_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "If-Match: W/%s", etag); /* If-Match compares strongly */
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"x\"}", hdr);
    CHECK_INT(r.status, 412);
    sx_resp_free(&r);

    /* set-value and delete honour If-Match too; a stale one changes nothing. */
    char stale[64];
    snprintf(stale, sizeof(stale), "%s", etag);
    etag_of("ifmatch", "lu", etag, sizeof(etag));
    snprintf(hdr, sizeof(hdr), "If-Match: %s", stale);
    char vpath[512];
    spath(vpath, sizeof(vpath), "ifmatch", "lu", "/value");
    api(&r, SX_H2C, "PUT", vpath, "{\"value\":\"stale\"}", hdr);
    CHECK_INT(r.status, 412);
    sx_resp_free(&r);
    api(&r, SX_H2C, "DELETE", path, NULL, hdr);
    CHECK_INT(r.status, 412);
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", path, NULL, NULL);
    CHECK(secret_resp_ok(&r, 200, "lu", "listed", false));
    sx_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
    api(&r, SX_H2C, "PUT", vpath, "{\"value\":\"fresh\"}", hdr);
    CHECK_INT(r.status, 200);
    char etag_v[64] = "";
    sx_resp_header(&r, "etag", etag_v, sizeof(etag_v));
    sx_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "If-Match: %s", etag_v);
    api(&r, SX_H2C, "DELETE", path, NULL, hdr);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    /* With If-Match on a name that does not exist the answer is still 404. */
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\"}", "If-Match: *");
    CHECK_INT(r.status, 404);
    CHECK(sx_resp_is_error(&r, "not_found"));
    sx_resp_free(&r);
}

static void if_none_match_star_on_create_fails_when_the_name_exists(void)
{
    char path[512];
    spath(path, sizeof(path), "ifnone", NULL, NULL);
    sx_resp r;
    api(&r, SX_H1, "POST", path, "{\"kind\":\"secret\",\"name\":\"once\"}", "If-None-Match: *");
    CHECK(secret_resp_ok(&r, 201, "once", NULL, false));
    sx_resp_free(&r);
    api(&r, SX_H2C, "POST", path, "{\"kind\":\"secret\",\"name\":\"once\"}", "If-None-Match: *");
    CHECK_INT(r.status, 409);
    CHECK(sx_resp_is_error(&r, "already_exists"));
    sx_resp_free(&r);
    /* Any other If-None-Match cannot be meant for a create: 400, nothing created. */
    api(&r, SX_H2TLS, "POST", path, "{\"kind\":\"secret\",\"name\":\"twice\"}", "If-None-Match: \"abc\"");
    CHECK_INT(r.status, 400);
    CHECK(sx_resp_is_error(&r, "invalid_request"));
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "ifnone", "twice", NULL), NULL, NULL);
    CHECK_INT(r.status, 404);
    sx_resp_free(&r);
}

/* ---- pagination ------------------------------------------------------------------------------------ */

/* Next-page path from a Link header `</path?query>; rel="next"`, into buf; false when none. */
static bool next_link(const sx_resp *r, char *buf, size_t cap)
{
    char link[1024];
    if (!sx_resp_header(r, "link", link, sizeof(link)))
        return false;
    const char *lt = strchr(link, '<'), *gt = strchr(link, '>');
    if (!lt || !gt || gt < lt || !strstr(gt, "rel=\"next\"")) {
        fprintf(stderr, "malformed Link: %s\n", link);
        return false;
    }
    snprintf(buf, cap, "%.*s", (int)(gt - lt - 1), lt + 1);
    return true;
}

/* The body of GET path over proto (malloc'd), with its status and Link header ("" when none). */
static char *list_text(sx_proto proto, const char *path, long *ret_status, char *link, size_t linkcap)
{
    sx_resp r;
    api(&r, proto, "GET", path, NULL, NULL);
    *ret_status = r.status;
    if (!sx_resp_header(&r, "link", link, linkcap))
        link[0] = '\0';
    char *body = strdup(r.body ? r.body : "");
    sx_resp_free(&r);
    return body;
}

/* Every protocol (each connection may be served by another loop thread) lists what the store holds
 * now, twice in a row, byte for byte the same: a list page sent again while nothing changed
 * (cached pages) never outlives a write - create, update, set-value, delete, pagination. */
static bool lists_agree(const char *path, const char *must, const char *must_not, const char *want_link)
{
    bool ok = true;
    char *first = NULL;
    for (size_t round = 0; round < 2; round++) {
        for (size_t p = 0; p < NPROTOS; p++) {
            long st = 0;
            char link[512];
            char *body = list_text(k_protos[p], path, &st, link, sizeof(link));
            bool good = st == 200 && (!must || strstr(body, must)) && (!must_not || !strstr(body, must_not)) &&
                        (first == NULL || strcmp(first, body) == 0) && strstr(link, want_link) != NULL;
            if (!good)
                fprintf(stderr, "list %s over %s (round %zu): %ld %s [link %s]; want \"%s\", not \"%s\"\n", path,
                        proto_name(k_protos[p]), round, st, body, link, must ? must : "", must_not ? must_not : "");
            ok = ok && good;
            if (!first)
                first = body;
            else
                free(body);
        }
    }
    free(first);
    return ok;
}

static void lists_show_every_write_at_once(void)
{
    char path[512], page[600], item[512];
    spath(path, sizeof(path), "relist", NULL, NULL);
    snprintf(page, sizeof(page), "%s?limit=1", path);
    CHECK(lists_agree(path, "[]", NULL, ""));
    CHECK_INT(create("relist", "m", "\"one\""), 201);
    CHECK(lists_agree(path, "\"name\":\"m\",\"description\":\"one\",\"hasValue\":false", NULL, ""));
    CHECK(lists_agree(page, "\"name\":\"m\"", NULL, ""));
    CHECK_INT(create("relist", "z", NULL), 201);
    CHECK(lists_agree(path, "\"name\":\"z\",\"description\":null", NULL, ""));
    CHECK(lists_agree(page, "\"name\":\"m\"", "\"z\"", "after=m>"));
    /* A name that sorts first changes the first page. */
    CHECK_INT(create("relist", "a", NULL), 201);
    CHECK(lists_agree(page, "\"name\":\"a\"", "\"m\"", "after=a>"));
    /* Update the description. */
    char *body = secret_body("m", "\"two\"");
    sx_resp r;
    api(&r, SX_H1, "PUT", spath(item, sizeof(item), "relist", "m", NULL), body, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    free(body);
    CHECK(lists_agree(path, "\"description\":\"two\"", "\"one\"", ""));
    /* Set a value. */
    CHECK_INT(set_value("relist", "m", "\"v\""), 200);
    CHECK(lists_agree(path, "\"name\":\"m\",\"description\":\"two\",\"hasValue\":true", NULL, ""));
    /* Delete. */
    api(&r, SX_H2TLS, "DELETE", spath(item, sizeof(item), "relist", "z", NULL), NULL, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    CHECK(lists_agree(path, "\"name\":\"m\"", "\"z\"", ""));
    api(&r, SX_H2C, "DELETE", spath(item, sizeof(item), "relist", "a", NULL), NULL, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    CHECK(lists_agree(page, "\"name\":\"m\"", "\"a\"", ""));
    /* A write elsewhere leaves the answer as it was. */
    CHECK_INT(create("relist-other", "x", NULL), 201);
    CHECK(lists_agree(path, "\"name\":\"m\"", "\"x\"", ""));
}

static void pagination_follows_link_next_until_the_end(void)
{
    static const char *const created[] = {"alpha", "Beta", "_under", "0zero", "a.b", "a-b", "alpha2"};
    static const char *const sorted[] = {"0zero", "Beta", "_under", "a-b", "a.b", "alpha", "alpha2"};
    for (size_t i = 0; i < 7; i++)
        CHECK_INT(create("page", created[i], NULL), 201);

    for (unsigned limit = 1; limit <= 8; limit++) {
        char path[1024];
        snprintf(path, sizeof(path), ENVS "page/secrets?limit=%u", limit);
        size_t seen = 0, pages = 0;
        bool more = true;
        while (more && pages < 20) {
            sx_resp r;
            api(&r, k_protos[pages % NPROTOS], "GET", path, NULL, NULL);
            CHECK_INT(r.status, 200);
            yajl_val v = jparse(&r);
            REQUIRE(YAJL_IS_ARRAY(v));
            size_t want = 7 - seen < limit ? 7 - seen : limit;
            CHECK_INT(v->u.array.len, want);
            for (size_t i = 0; i < v->u.array.len && seen + i < 7; i++)
                CHECK(secret_val_ok(v->u.array.values[i], sorted[seen + i], NULL, false));
            seen += v->u.array.len;
            yajl_tree_free(v);
            more = next_link(&r, path, sizeof(path));
            if (more) {
                /* The link says where it continues: after the last name of this page. */
                char want_link[256];
                snprintf(want_link, sizeof(want_link), ENVS "page/secrets?limit=%u&after=%s", limit, sorted[seen - 1]);
                CHECK_STR(path, want_link);
                CHECK(seen < 7);
            }
            sx_resp_free(&r);
            pages++;
        }
        CHECK_INT(seen, 7);
        CHECK_INT(pages, (7 + limit - 1) / limit);
    }
    /* after= a name that does not exist starts at the next one; after the last name is []. */
    sx_resp r;
    api(&r, SX_H1, "GET", ENVS "page/secrets?after=a", NULL, NULL);
    yajl_val v = jparse(&r);
    CHECK(YAJL_IS_ARRAY(v) && v->u.array.len == 4 && secret_val_ok(v->u.array.values[0], "a-b", NULL, false));
    yajl_tree_free(v);
    sx_resp_free(&r);
    api(&r, SX_H2C, "GET", ENVS "page/secrets?after=alpha2&limit=2", NULL, NULL);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "[]");
    CHECK(!sx_resp_header(&r, "link", (char[8]){0}, 8));
    sx_resp_free(&r);
    api(&r, SX_H2TLS, "GET", ENVS "page/secrets?limit=1000", NULL, NULL);
    v = jparse(&r);
    CHECK(YAJL_IS_ARRAY(v) && v->u.array.len == 7);
    yajl_tree_free(v);
    sx_resp_free(&r);
    /* Bad limit / after: 400 invalid_request (the bad-input table has more). */
    static const char *const bad[] = {"limit=0", "limit=1001", "limit=x", "after=..", "after=a%2Fb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), ENVS "page/secrets?%s", bad[i]);
        api(&r, k_protos[i % NPROTOS], "GET", path, NULL, NULL);
        CHECK_INT(r.status, 400);
        CHECK(sx_resp_is_error(&r, "invalid_request"));
        sx_resp_free(&r);
    }
}

/* ---- authentication order (the role/scope matrix is test_authz.c's) ------------------------------- */

static void no_token_is_401_with_www_authenticate_even_for_unknown_names(void)
{
    CHECK_INT(create("auth", "known", NULL), 201);
    char path[512];
    struct {
        const char *method;
        const char *name;
        const char *tail;
        const char *body;
        const char *auth;
    } cases[] = {
        {"GET", "does-not-exist", NULL, NULL, NULL},
        {"GET", "known", NULL, NULL, NULL},
        {"DELETE", "does-not-exist", NULL, NULL, NULL},
        {"PUT", "does-not-exist", "/value", "{\"value\":\"x\"}", NULL},
        {"POST", NULL, NULL, "{not json", NULL}, /* auth before body checks */
        {"GET", "does-not-exist", NULL, NULL, "Authorization: Bearer not-a-token"},
        {"GET", "known", NULL, NULL, "Authorization: Basic dXNlcjpwYXNz"},
    };
    char *first_body = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *h[3] = {cases[i].body ? "Content-Type: application/json" : NULL, NULL, NULL};
        if (cases[i].auth) {
            h[h[0] ? 1 : 0] = cases[i].auth;
        }
        sx_resp r;
        CHECK(sx_srv_request(&g_srv, k_protos[i % NPROTOS], cases[i].method,
                             spath(path, sizeof(path), "auth", cases[i].name, cases[i].tail), h, cases[i].body,
                             cases[i].body ? strlen(cases[i].body) : 0, &r) == 0);
        CHECK_INT(r.status, 401);
        CHECK(sx_resp_is_error(&r, "unauthorized"));
        CHECK(header_is(&r, "www-authenticate", "Bearer"));
        /* The answer is the same whether the name exists or not. */
        if (!first_body)
            first_body = strdup(r.body);
        else
            CHECK_STR(r.body, first_body);
        sx_resp_free(&r);
    }
    free(first_body);
    /* A valid token without the permission or the scope: 403, also before existence. */
    char *viewer = sx_srv_mint_token(&g_srv, "acme", NULL, NULL, "viewer", NULL);
    char *other = sx_srv_mint_token(&g_srv, "globex", NULL, NULL, "owner", NULL);
    REQUIRE(viewer && other);
    char *hv = sx_auth_header(viewer), *ho = sx_auth_header(other);
    const char *h1[] = {hv, "Content-Type: application/json", NULL};
    const char *h2[] = {ho, NULL};
    sx_resp r;
    CHECK(sx_srv_request(&g_srv, SX_H2C, "POST", spath(path, sizeof(path), "auth", NULL, NULL), h1, "{}", 2, &r) == 0);
    CHECK_INT(r.status, 403);
    CHECK(sx_resp_is_error(&r, "forbidden"));
    sx_resp_free(&r);
    CHECK(sx_srv_request(&g_srv, SX_H1, "GET", spath(path, sizeof(path), "auth", "does-not-exist", NULL), h2, NULL, 0,
                         &r) == 0);
    CHECK_INT(r.status, 403);
    CHECK(sx_resp_is_error(&r, "forbidden"));
    sx_resp_free(&r);
    free(hv);
    free(ho);
    free(viewer);
    free(other);
}

static void wrong_methods_are_405_with_allow_and_unknown_routes_404(void)
{
    static const struct {
        const char *method;
        const char *path;
        const char *allow;
    } cases[] = {
        {"PATCH", ENVS "m/secrets/x", "GET, PUT, DELETE"},
        {"POST", ENVS "m/secrets/x", "GET, PUT, DELETE"},
        {"DELETE", ENVS "m/secrets", "GET, POST"},
        {"PUT", ENVS "m/secrets", "GET, POST"},
        {"POST", ENVS "m/secrets/x/value", "GET, PUT"},
        {"DELETE", ENVS "m/secrets/x/value", "GET, PUT"},
        {"POST", ENVS "m/values", "GET"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sx_resp r;
        api(&r, k_protos[i % NPROTOS], cases[i].method, cases[i].path, NULL, NULL);
        CHECK_INT(r.status, 405);
        CHECK(sx_resp_is_error(&r, "method_not_allowed"));
        CHECK(header_is(&r, "allow", cases[i].allow));
        sx_resp_free(&r);
    }
    /* Valid segments that match no route: 404 not_found, as JSON. */
    static const char *const unknown[] = {ENVS "m", ENVS "m/secretz", ENVS "m/secrets/x/value/y",
                                          "/acme/web/env/m/secrets"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        sx_resp r;
        api(&r, k_protos[i % NPROTOS], "GET", unknown[i], NULL, NULL);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
    }
}

static void longest_names_at_every_level_work_end_to_end(void)
{
    char project[65], env[65], name[257], base[512], path[1024], body[512];
    memset(project, 'p', 64);
    project[64] = '\0';
    memset(env, 'E', 64);
    env[0] = '9'; /* scopes start with a letter or digit; '.', '_' and '-' may follow */
    env[1] = '.';
    env[2] = '_';
    env[3] = '-';
    env[64] = '\0';
    memset(name, '-', 256);
    name[256] = '\0';
    snprintf(base, sizeof(base), "/acme/%s/envs/%s", project, env);
    snprintf(path, sizeof(path), "%s/secrets", base);
    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\"}", name);
    sx_resp r;
    api(&r, SX_H2TLS, "POST", path, body, "Content-Type: Application/JSON;charset=UTF-8");
    CHECK(secret_resp_ok(&r, 201, name, NULL, false));
    char loc[1024];
    snprintf(loc, sizeof(loc), "%s/secrets/%s", base, name);
    CHECK(header_is(&r, "location", loc));
    sx_resp_free(&r);
    snprintf(path, sizeof(path), "%s/secrets/%s/value", base, name);
    api(&r, SX_H2C, "PUT", path, "{\"value\":\"deep\"}", NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", path, NULL, NULL);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"value\":\"deep\"") != NULL);
    sx_resp_free(&r);
    snprintf(path, sizeof(path), "%s/secrets?limit=1", base);
    api(&r, SX_H1, "GET", path, NULL, NULL);
    yajl_val v = jparse(&r);
    CHECK(YAJL_IS_ARRAY(v) && v->u.array.len == 1 && secret_val_ok(v->u.array.values[0], name, NULL, true));
    CHECK(!sx_resp_header(&r, "link", (char[8]){0}, 8));
    yajl_tree_free(v);
    sx_resp_free(&r);
    snprintf(path, sizeof(path), "%s/values", base);
    api(&r, SX_H2TLS, "GET", path, NULL, NULL);
    size_t len = 0;
    char *got = json_string_of(r.body, name, &len);
    CHECK(got && len == 4 && memcmp(got, "deep", 4) == 0);
    free(got);
    sx_resp_free(&r);
    api(&r, SX_H2C, "DELETE", loc, NULL, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
}

static void rule_errors_name_the_field_or_parameter(void)
{
    CHECK_INT(create("named", "n", NULL), 201);
    char seg65[66], path65[256];
    memset(seg65, 'e', 65);
    seg65[65] = '\0';
    static const struct {
        const char *method;
        const char *path;
        const char *body;
        const char *names;
    } cases[] = {
        {"POST", ENVS "named/secrets", "{\"kind\":\"secret\",\"name\":\"x\",\"colour\":1}", "\"colour\""},
        {"POST", ENVS "named/secrets", "{\"kind\":\"secret\",\"name\":\"x\",\"description\":5}", "\"description\""},
        {"POST", ENVS "named/secrets", "{\"kind\":\"secret\",\"name\":\"x\",\"name\":\"x\"}", "\"name\""},
        {"POST", ENVS "named/secrets", "{\"kind\":\"secrets\",\"name\":\"x\"}", "\"kind\""},
        {"POST", ENVS "named/secrets", "{\"name\":\"x\"}", "\"kind\""},
        {"POST", ENVS "named/secrets", "{\"kind\":\"secret\"}", "\"name\""},
        {"POST", ENVS "named/secrets", "{\"kind\":\"secret\",\"name\":\"..\"}", "\"name\""},
        {"PUT", ENVS "named/secrets/n", "{\"kind\":\"secret\",\"name\":\"m\"}", "\"name\""},
        {"PUT", ENVS "named/secrets/n/value", "{\"value\":1}", "\"value\""},
        {"PUT", ENVS "named/secrets/n/value", "{}", "\"value\""},
        {"GET", ENVS "named/secrets?limit=0", NULL, "\"limit\""},
        {"GET", ENVS "named/secrets?after=..", NULL, "\"after\""},
        {"GET", ENVS "named/secrets/..", NULL, "\"name\""},
        {"GET", NULL, NULL, "\"env\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = cases[i].path;
        if (!path) {
            snprintf(path65, sizeof(path65), ENVS "%s/secrets", seg65);
            path = path65;
        }
        sx_resp r;
        api(&r, k_protos[i % NPROTOS], cases[i].method, path, cases[i].body, NULL);
        CHECK_INT(r.status, 400);
        CHECK(sx_resp_is_error(&r, "invalid_request"));
        yajl_val v = jparse(&r);
        const char *msg = jstr(v, "error");
        if (!msg || !strstr(msg, cases[i].names))
            fprintf(stderr, "%s %s: message \"%s\" does not name %s\n", cases[i].method, path, msg ? msg : "",
                    cases[i].names);
        CHECK(msg && strstr(msg, cases[i].names));
        yajl_tree_free(v);
        sx_resp_free(&r);
    }
    /* A description over 1024 bytes. */
    char *body = repeat("{\"kind\":\"secret\",\"name\":\"x\",\"description\":\"", "d", 1025, "\"}");
    sx_resp r;
    api(&r, SX_H1, "POST", ENVS "named/secrets", body, NULL);
    free(body);
    CHECK_INT(r.status, 400);
    CHECK(strstr(r.body, "\\\"description\\\"") != NULL);
    sx_resp_free(&r);
}

/* ---- the bad-input table ---------------------------------------------------------------------------- */

typedef struct bad_case {
    const char *method;
    const char *path;
    const char *ctype; /* Content-Type line; NULL = application/json, NO_CT = none (curl drops its own) */
    const char *body;  /* NULL = no body */
    size_t len;        /* 0 = strlen(body) */
    int status;
    const char *code;
    const char *extra; /* one more header line or NULL */
} bad_case;

#define B     ENVS "bad/secrets"
#define KS    "\"kind\":\"secret\""
#define NO_CT "Content-Type:"
#define IJ    400, "invalid_json"
#define IR    400, "invalid_request"
#define UM    415, "unsupported_media_type"
#define TL    413, "payload_too_large"

static const bad_case k_bad[] = {
    /* Create: not JSON at all. */
    {"POST", B, NULL, "{", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\"", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\"}}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\"}{" KS ",\"name\":\"y\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",}", 0, IJ},
    {"POST", B, NULL, "{" KS " \"name\":\"x\"}", 0, IJ},
    {"POST", B, NULL, "{'kind':'secret','name':'x'}", 0, IJ},
    {"POST", B, NULL, "{kind:\"secret\",name:\"x\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\"/* c */}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":NaN}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":tru}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\\q\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\\u12\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"tab\there\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"a\0b\"}", sizeof("{" KS ",\"name\":\"a\0b\"}") - 1, IJ},
    {"POST", B, NULL, "", 0, IJ},
    {"POST", B, NULL, " \r\n\t ", 0, IJ},
    {"POST", B, NULL, "\xef\xbb\xbf{" KS ",\"name\":\"x\"}", 0, IJ},
    /* Create: invalid UTF-8, raw or through escapes that name no character. */
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\xff\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"ab\xc3\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\xc0\xaf\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\xe0\x80\xaf\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\xed\xa0\x80\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\xf4\x90\x80\x80\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\xf8\x88\x80\x80\x80\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"caf\xe9\"}", 0, IJ},
    {"POST", B, NULL, "{\"\xff\":1}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\xff\"name\":\"x\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\\udc00\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\\ud800\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\\ud800\\u0041\"}", 0, IJ},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":\"\\ud800\\ud800\"}", 0, IJ},
    /* Create: JSON, but not the body the endpoint takes. */
    {"POST", B, NULL, "[]", 0, IR},
    {"POST", B, NULL, "\"secret\"", 0, IR},
    {"POST", B, NULL, "null", 0, IR},
    {"POST", B, NULL, "true", 0, IR},
    {"POST", B, NULL, "123456789012345678901234567890123456789012345678901234567890", 0, IR},
    {"POST", B, NULL, "{}", 0, IR},
    {"POST", B, NULL, "{\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{" KS "}", 0, IR},
    {"POST", B, NULL, "{\"kind\":\"Secret\",\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{\"kind\":\"\",\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{\"kind\":\"secrets\",\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{\"kind\":\"secret\\u0000\",\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{\"kind\":1,\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{\"kind\":null,\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{\"kind\":[\"secret\"],\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":null}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":42}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":true}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":{\"v\":\"x\"}}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":5}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":false}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":[\"d\"]}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":{}}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":1e999999999}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":-123456789012345678901234567890.5e-99999}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"value\":\"v\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"Name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"hasValue\":true}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"name\":\"y\"}", 0, IR},
    {"POST", B, NULL, "{" KS "," KS ",\"name\":\"x\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"x\",\"description\":null,\"description\":\"d\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\".\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"..\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"a/b\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"../x\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"a b\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"a%2Fb\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"caf\\u00e9\"}", 0, IR},
    {"POST", B, NULL, "{" KS ",\"name\":\"a\\u0000b\"}", 0, IR},
    {"POST", B, NULL, "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}", 0, IR},
    /* Create: media type. */
    {"POST", B, "Content-Type: text/plain", "{" KS ",\"name\":\"x\"}", 0, UM},
    {"POST", B, NO_CT, "{" KS ",\"name\":\"x\"}", 0, UM},
    {"POST", B, "Content-Type: application/x-www-form-urlencoded", "{" KS ",\"name\":\"x\"}", 0, UM},
    {"POST", B, "Content-Type: application/json5", "{" KS ",\"name\":\"x\"}", 0, UM},
    {"POST", B, "Content-Type: multipart/form-data; boundary=x", "{" KS ",\"name\":\"x\"}", 0, UM},
    {"POST", B, "Content-Type: text/plain", "{", 0, UM},
    /* Create: a conditional header that cannot apply. */
    {"POST", B, NULL, "{" KS ",\"name\":\"x\"}", 0, IR, "If-None-Match: \"abc\""},
    /* Update the description. */
    {"PUT", B "/existing", NULL, "{" KS ",\"name\":\"other\"}", 0, IR},
    {"PUT", B "/existing", NULL, "{" KS ",\"name\":\"Existing\"}", 0, IR},
    {"PUT", B "/existing", NULL, "{" KS ",\"name\":\"existing \"}", 0, IR},
    {"PUT", B "/existing", NULL, "{" KS ",\"description\":\"d\"}", 0, IR},
    {"PUT", B "/existing", NULL, "{\"name\":\"existing\",\"description\":\"d\"}", 0, IR},
    {"PUT", B "/existing", NULL, "{" KS ",\"name\":\"existing\",\"hasValue\":false}", 0, IR},
    {"PUT", B "/existing", NULL, "{" KS ",\"name\":\"existing\",\"description\":7}", 0, IR},
    {"PUT", B "/existing", NULL, "{" KS ",\"name\":\"existing\",\"description\":\"\xfe\"}", 0, IJ},
    {"PUT", B "/existing", NULL, "", 0, IJ},
    {"PUT", B "/existing", NULL, "{" KS ",\"name\":\"existing\"", 0, IJ},
    {"PUT", B "/existing", "Content-Type: text/plain", "{" KS ",\"name\":\"existing\"}", 0, UM},
    {"PUT", B "/existing", NO_CT, "{" KS ",\"name\":\"existing\"}", 0, UM},
    /* Set the value. */
    {"PUT", B "/existing/value", NULL, "{}", 0, IR},
    {"PUT", B "/existing/value", NULL, "{\"value\":1}", 0, IR},
    {"PUT", B "/existing/value", NULL, "{\"value\":null}", 0, IR},
    {"PUT", B "/existing/value", NULL, "{\"value\":true}", 0, IR},
    {"PUT", B "/existing/value", NULL, "{\"value\":[\"v\"]}", 0, IR},
    {"PUT", B "/existing/value", NULL, "{\"value\":{\"v\":1}}", 0, IR},
    {"PUT", B "/existing/value", NULL, "{\"value\":\"a\",\"value\":\"b\"}", 0, IR},
    {"PUT", B "/existing/value", NULL, "{\"value\":\"v\",\"name\":\"existing\"}", 0, IR},
    {"PUT", B "/existing/value", NULL, "\"v\"", 0, IR},
    {"PUT", B "/existing/value", NULL, "{\"value\":\"v\"", 0, IJ},
    {"PUT", B "/existing/value", NULL, "{\"value\":\"v\xff\"}", 0, IJ},
    {"PUT", B "/existing/value", NULL, "{\"value\":\"\xed\xbf\xbf\"}", 0, IJ},
    {"PUT", B "/existing/value", NULL, "{\"value\":\"\\udfff\"}", 0, IJ},
    {"PUT", B "/existing/value", NULL, "", 0, IJ},
    {"PUT", B "/existing/value", "Content-Type: text/plain", "{\"value\":\"v\"}", 0, UM},
    {"PUT", B "/existing/value", NO_CT, "{\"value\":\"v\"}", 0, UM},
    /* Paths: every segment 1+ bytes of [A-Za-z0-9._-], scopes start alphanumeric, names not . or .. */
    {"GET", B "/%2e%2e", NULL, NULL, 0, IR},
    {"GET", B "/..", NULL, NULL, 0, IR},
    {"GET", B "/.", NULL, NULL, 0, IR},
    {"DELETE", B "/..", NULL, NULL, 0, IR},
    {"DELETE", B "/..%2F..%2Fother", NULL, NULL, 0, IR},
    {"GET", B "/a%2Fb", NULL, NULL, 0, IR},
    {"GET", B "/a%2fb", NULL, NULL, 0, IR},
    {"GET", ENVS "bad//secrets", NULL, NULL, 0, IR},
    {"GET", B "//existing", NULL, NULL, 0, IR},
    {"GET", B "/existing/", NULL, NULL, 0, IR},
    {"GET", B "/existing%00", NULL, NULL, 0, IR},
    {"GET", B "/%00", NULL, NULL, 0, IR},
    {"PUT", B "/existing%00/value", NULL, "{\"value\":\"v\"}", 0, IR},
    {"GET", ENVS "%2e%2e/secrets", NULL, NULL, 0, IR},
    {"GET", ENVS "../secrets", NULL, NULL, 0, IR},
    {"GET", ENVS "./secrets", NULL, NULL, 0, IR},
    {"POST", ENVS "bad%2Fother/secrets", NULL, "{" KS ",\"name\":\"x\"}", 0, IR},
    {"GET", "/%2e%2e/web/envs/bad/secrets", NULL, NULL, 0, IR},
    {"GET", "/acme/%2e%2e/envs/bad/secrets", NULL, NULL, 0, IR},
    {"GET", ENVS "-bad/secrets", NULL, NULL, 0, IR},
    {"GET", ENVS ".bad/secrets", NULL, NULL, 0, IR},
    {"GET", "/_acme/web/envs/bad/secrets", NULL, NULL, 0, IR},
    {"GET", B "/caf%C3%A9", NULL, NULL, 0, IR},
    {"GET", B "/a%20b", NULL, NULL, 0, IR},
    {"GET", B "/a;b", NULL, NULL, 0, IR},
    {"GET", B "/a%5Cb", NULL, NULL, 0, IR},
    {"GET", B "/~x", NULL, NULL, 0, IR},
    {"GET", B "/existing/value/", NULL, NULL, 0, IR},
    /* List queries. */
    {"GET", B "?limit=0", NULL, NULL, 0, IR},
    {"GET", B "?limit=1001", NULL, NULL, 0, IR},
    {"GET", B "?limit=-1", NULL, NULL, 0, IR},
    {"GET", B "?limit=+5", NULL, NULL, 0, IR},
    {"GET", B "?limit=abc", NULL, NULL, 0, IR},
    {"GET", B "?limit=", NULL, NULL, 0, IR},
    {"GET", B "?limit=1e3", NULL, NULL, 0, IR},
    {"GET", B "?limit=99999999999999999999", NULL, NULL, 0, IR},
    {"GET", B "?after=", NULL, NULL, 0, IR},
    {"GET", B "?after=..", NULL, NULL, 0, IR},
    {"GET", B "?after=%2e%2e", NULL, NULL, 0, IR},
    {"GET", B "?after=a%2Fb", NULL, NULL, 0, IR},
    {"GET", B "?sort=name", NULL, NULL, 0, IR},
    {"GET", B "?limit=5&after=a&x=1", NULL, NULL, 0, IR},
};

/* Bodies and paths too long to write out. Filled in by make_generated(). */
enum { NGEN = 17 };
static bad_case g_gen[NGEN];

static size_t g_ngen;

/* Append a generated case; path and body are malloc'd and freed by free_generated(). */
static void gen(const char *method, char *path, char *body, int status, const char *code)
{
    if (g_ngen < NGEN)
        g_gen[g_ngen++] = (bad_case){method, path, NULL, body, 0, status, code, NULL};
}

static void make_generated(void)
{
    g_ngen = 0;
    char *name257 = repeat("", "n", 257, "");
    char *seg65 = repeat("", "o", 65, "");
    char path[1024];
    /* name 257 bytes in the body, and in the path of every method */
    gen("POST", strdup(B), repeat("{" KS ",\"name\":\"", "n", 257, "\"}"), IR);
    snprintf(path, sizeof(path), B "/%s", name257);
    gen("GET", strdup(path), NULL, IR);
    gen("DELETE", strdup(path), NULL, IR);
    snprintf(path, sizeof(path), B "/%s/value", name257);
    gen("GET", strdup(path), NULL, IR);
    /* 65-byte org, project, env */
    snprintf(path, sizeof(path), "/%s/web/envs/bad/secrets", seg65);
    gen("GET", strdup(path), NULL, IR);
    snprintf(path, sizeof(path), "/acme/%s/envs/bad/secrets", seg65);
    gen("GET", strdup(path), NULL, IR);
    snprintf(path, sizeof(path), ENVS "%s/secrets", seg65);
    gen("GET", strdup(path), NULL, IR);
    snprintf(path, sizeof(path), B "?after=%s", name257);
    gen("GET", strdup(path), NULL, IR);
    /* description over 1024 bytes: ASCII, and 513 two-byte characters */
    gen("POST", strdup(B), repeat("{" KS ",\"name\":\"x\",\"description\":\"", "d", 1025, "\"}"), IR);
    gen("POST", strdup(B), repeat("{" KS ",\"name\":\"x\",\"description\":\"", "\xc3\xa9", 513, "\"}"), IR);
    gen("PUT", strdup(B "/existing"), repeat("{" KS ",\"name\":\"existing\",\"description\":\"", "\\u00e9", 513, "\"}"),
        IR);
    /* deep nesting, at the top and inside a field */
    gen("POST", strdup(B), repeat("", "[", 100000, ""), IR);
    gen("POST", strdup(B), repeat("{" KS ",\"name\":\"x\",\"description\":", "[", 10000, "}"), IR);
    /* a value of max_value_bytes + 1: ASCII, and 32769 two-byte characters */
    gen("PUT", strdup(B "/existing/value"), repeat("{\"value\":\"", "v", MAX_VALUE + 1, "\"}"), TL);
    gen("PUT", strdup(B "/existing/value"), repeat("{\"value\":\"", "\xc3\xa9", MAX_VALUE / 2 + 1, "\"}"), TL);
    /* a body over max_body_bytes */
    gen("POST", strdup(B), repeat("{" KS ",\"name\":\"x\",\"description\":\"", "d", MAX_BODY, "\"}"), TL);
    gen("PUT", strdup(B "/existing/value"), repeat("{\"value\":\"", "v", MAX_BODY, "\"}"), TL);
    free(name257);
    free(seg65);
    if (g_ngen != NGEN)
        fprintf(stderr, "make_generated: %zu cases, NGEN is %d\n", g_ngen, NGEN);
}

static void free_generated(void)
{
    for (size_t i = 0; i < NGEN; i++) {
        free((char *)g_gen[i].path);
        free((char *)g_gen[i].body);
        g_gen[i] = (bad_case){0};
    }
}

/* Send one case over proto; true when it got the expected JSON error. */
static bool run_bad_case(const bad_case *c, sx_proto proto)
{
    const char *h[4];
    size_t n = 0;
    h[n++] = g_auth;
    if (c->body || c->ctype)
        h[n++] = c->ctype ? c->ctype : "Content-Type: application/json";
    if (c->extra)
        h[n++] = c->extra;
    h[n] = NULL;
    size_t len = c->body ? (c->len ? c->len : strlen(c->body)) : 0;
    sx_resp r;
    int rc = sx_srv_request(&g_srv, proto, c->method, c->path, h, c->body, len, &r);
    bool ok = rc == 0 && r.status == c->status && sx_resp_is_error(&r, c->code) &&
              utf8_ok((const unsigned char *)r.body, r.body_len);
    if (!ok) {
        char shown[96];
        snprintf(shown, sizeof(shown), "%.80s", c->body ? c->body : "");
        fprintf(stderr, "bad input over %s: %s %.120s [%s] body %s...: got %ld %.200s, want %d %s\n", proto_name(proto),
                c->method, c->path, c->ctype ? c->ctype : "json", shown, r.status, r.body, c->status, c->code);
    }
    sx_resp_free(&r);
    return ok;
}

static void bad_input_table_gets_4xx_json_errors_and_changes_nothing(void)
{
    /* What the table might disturb if a case got through. */
    CHECK_INT(create("bad", "existing", "\"seeded\""), 201);
    CHECK_INT(set_value("bad", "existing", "\"seed-value\""), 200);
    CHECK_INT(create("bad", "zz-no-value", NULL), 201);
    static const char *const envs[] = {"bad", "bad2", "other"};
    CHECK_INT(create("bad2", "x", NULL), 201);
    char *before[3];
    for (size_t e = 0; e < 3; e++)
        before[e] = snapshot(envs[e]);

    make_generated();
    size_t nstatic = sizeof(k_bad) / sizeof(k_bad[0]);
    size_t total = nstatic + NGEN, failed = 0;
    fprintf(stderr, "%zu bad-input cases x %zu protocols\n", total, NPROTOS);
    CHECK(total >= 60);
    for (size_t i = 0; i < total; i++) {
        const bad_case *c = i < nstatic ? &k_bad[i] : &g_gen[i - nstatic];
        for (size_t p = 0; p < NPROTOS; p++)
            if (!run_bad_case(c, k_protos[p]))
                failed++;
    }
    CHECK_INT(failed, 0);
    free_generated();

    for (size_t e = 0; e < 3; e++) {
        char *after = snapshot(envs[e]);
        CHECK_STR(after, before[e]);
        free(after);
        free(before[e]);
    }
    /* The server is still serving. */
    sx_resp r;
    api(&r, SX_H2C, "GET", "/healthz", NULL, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
}

/* ---- the end ------------------------------------------------------------------------------------ */

static void server_exits_0_at_sigterm_after_the_suite(void)
{
    REQUIRE(g_running);
    g_running = false;
    CHECK_INT(sx_srv_stop(&g_srv, SIGTERM, 60), 0);
}

int main(int argc, char **argv)
{
    /* --backend NAME is ours; the other arguments name tests to run. */
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    int nargs = 0;
    const char *env = getenv("SX_TEST_BACKEND");
    if (env && *env)
        g_backend = env;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            g_backend = argv[++i];
        else
            args[nargs++] = argv[i];
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fprintf(stderr, "backend: %s\n", g_backend);
    int started = sx_srv_start(&g_srv, &(sx_srv_opts){.backend = g_backend});
    if (started == 77)
        return 77; /* no PostgreSQL server installed: skipped */
    if (started != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    g_running = true;
    char *token = sx_srv_mint_token(&g_srv, "acme", NULL, NULL, "owner", NULL);
    if (!token) {
        sx_srv_stop(&g_srv, SIGTERM, 60);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    g_auth = sx_auth_header(token);
    free(token);

    static const sx_test tests[] = {
        {"create_answers_201_with_location_etag_and_a_fresh_secret",
         create_answers_201_with_location_etag_and_a_fresh_secret},
        {"create_of_an_existing_name_is_409_already_exists", create_of_an_existing_name_is_409_already_exists},
        {"get_answers_the_secret_and_404_not_found_for_unknown_names",
         get_answers_the_secret_and_404_not_found_for_unknown_names},
        {"list_is_sorted_metadata_and_an_empty_env_is_an_empty_array",
         list_is_sorted_metadata_and_an_empty_env_is_an_empty_array},
        {"lists_show_every_write_at_once", lists_show_every_write_at_once},
        {"update_replaces_the_description_and_bumps_updated_at", update_replaces_the_description_and_bumps_updated_at},
        {"delete_answers_deleted_body_and_then_404", delete_answers_deleted_body_and_then_404},
        {"set_value_answers_name_has_value_updated_at_and_404_for_unknown",
         set_value_answers_name_has_value_updated_at_and_404_for_unknown},
        {"reveal_answers_the_value_with_no_store_and_404_without_one",
         reveal_answers_the_value_with_no_store_and_404_without_one},
        {"values_map_holds_exactly_the_secrets_that_have_a_value",
         values_map_holds_exactly_the_secrets_that_have_a_value},
        {"values_round_trip_byte_exact_up_to_max_value_bytes", values_round_trip_byte_exact_up_to_max_value_bytes},
        {"values_never_appear_in_list_get_or_write_answers", values_never_appear_in_list_get_or_write_answers},
        {"recreated_name_starts_fresh_without_value_and_with_new_created_at",
         recreated_name_starts_fresh_without_value_and_with_new_created_at},
        {"concurrent_creates_of_one_name_give_one_201_and_31_409",
         concurrent_creates_of_one_name_give_one_201_and_31_409},
        {"concurrent_set_value_and_delete_never_leave_a_value_behind",
         concurrent_set_value_and_delete_never_leave_a_value_behind},
        {"concurrent_set_values_leave_one_of_the_values", concurrent_set_values_leave_one_of_the_values},
        {"if_match_prevents_lost_updates", if_match_prevents_lost_updates},
        {"if_none_match_star_on_create_fails_when_the_name_exists",
         if_none_match_star_on_create_fails_when_the_name_exists},
        {"pagination_follows_link_next_until_the_end", pagination_follows_link_next_until_the_end},
        {"no_token_is_401_with_www_authenticate_even_for_unknown_names",
         no_token_is_401_with_www_authenticate_even_for_unknown_names},
        {"wrong_methods_are_405_with_allow_and_unknown_routes_404",
         wrong_methods_are_405_with_allow_and_unknown_routes_404},
        {"longest_names_at_every_level_work_end_to_end", longest_names_at_every_level_work_end_to_end},
        {"rule_errors_name_the_field_or_parameter", rule_errors_name_the_field_or_parameter},
        {"bad_input_table_gets_4xx_json_errors_and_changes_nothing",
         bad_input_table_gets_4xx_json_errors_and_changes_nothing},
        {"server_exits_0_at_sigterm_after_the_suite", server_exits_0_at_sigterm_after_the_suite},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), nargs, args);
    if (g_running) {
        /* A run of selected tests still owes the clean stop. */
        int st = sx_srv_stop(&g_srv, SIGTERM, 60);
        if (st != 0) {
            fprintf(stderr, "secretsd exited with %d at SIGTERM\n", st);
            rc = 1;
        }
    }
    free(g_auth);
    free(args);
    curl_global_cleanup();
    return rc;
}
