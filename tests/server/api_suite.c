/*
 * api_suite.c - the shared state and helpers of test_api (see api_suite.h).
 */
#include <ctype.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "api_suite.h"

sx_srv g_srv;
bool g_running;
const char *g_backend = "memory";
char *g_auth; /* "Authorization: Bearer <owner token>" */

const sx_proto k_protos[] = {SX_H1, SX_H2C, SX_H2TLS};

const char *proto_name(sx_proto p)
{
    static const char *const names[] = {"HTTP/1.1", "h2c", "TLS h2", "TLS HTTP/1.1", "admin"};
    return names[p];
}

/* ---- checks on response text ------------------------------------------------------------------ */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
bool utf8_ok(const unsigned char *s, size_t len)
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
bool is_timestamp(const char *s)
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
bool etag_ok(const char *s)
{
    if (strlen(s) != 18 || s[0] != '"' || s[17] != '"')
        return false;
    for (int i = 1; i < 17; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool header_is(const sx_resp *r, const char *name, const char *want)
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

unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(isdigit((unsigned char)c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10));
    }
    return v;
}

size_t utf8_put(char *out, unsigned cp)
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
char *json_string_of(const char *text, const char *key, size_t *ret_len)
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

yajl_val jparse(const sx_resp *r)
{
    char err[128];
    yajl_val v = yajl_tree_parse(r->body, err, sizeof(err));
    if (!v)
        fprintf(stderr, "not JSON (%s): %.300s\n", err, r->body);
    return v;
}

yajl_val jget(yajl_val obj, const char *key)
{
    if (!YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

const char *jstr(yajl_val obj, const char *key)
{
    yajl_val v = jget(obj, key);
    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* obj is an object with exactly these keys, each once. */
bool exact_keys(yajl_val obj, const char *const *keys)
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
bool secret_val_ok(yajl_val v, const char *name, const char *desc, bool has_value)
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
bool secret_resp_ok(const sx_resp *r, long status, const char *name, const char *desc, bool has_value)
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
char *repeat(const char *pre, const char *unit, size_t times, const char *post)
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
void api_len(sx_resp *r, sx_proto proto, const char *method, const char *path, const char *body, size_t len,
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

void api(sx_resp *r, sx_proto proto, const char *method, const char *path, const char *body, const char *extra)
{
    api_len(r, proto, method, path, body, body ? strlen(body) : 0, extra);
}

/* /acme/web/envs/{env}/secrets[/{name}][tail] into buf. */
const char *spath(char *buf, size_t cap, const char *env, const char *name, const char *tail)
{
    snprintf(buf, cap, ENVS "%s/secrets%s%s%s", env, name ? "/" : "", name ? name : "", tail ? tail : "");
    return buf;
}

char *secret_body(const char *name, const char *desc_json)
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
long create(const char *env, const char *name, const char *desc_json)
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
long set_value(const char *env, const char *name, const char *value_json)
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
void etag_of(const char *env, const char *name, char *buf, size_t cap)
{
    char path[512];
    sx_resp r;
    api(&r, SX_H1, "GET", spath(path, sizeof(path), env, name, NULL), NULL, NULL);
    if (r.status != 200 || !sx_resp_header(&r, "etag", buf, cap))
        buf[0] = '\0';
    sx_resp_free(&r);
}

/* The list and the values map of env, as one malloc'd text, to compare states of the store. */
char *snapshot(const char *env)
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

/* Run the n requests at once. Spread: each on a fresh connection (so they land on different event
 * loops), alternating HTTP/1.1 and h2c. Multiplexed: all as streams of one TLS h2 connection, so
 * they arrive in one burst and reach the worker pool together. (Not h2c: libcurl 7.88 fails streams
 * that reuse a prior-knowledge connection, curl/curl#10634, fixed in 8.0.) */
void run_parallel(par_req *q, size_t n, bool multiplexed)
{
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    CURL **hs = calloc(n, sizeof(*hs));
    struct curl_slist **hl = calloc(n, sizeof(*hl));
    sx_test_buf *heads = calloc(n, sizeof(*heads));
    for (size_t i = 0; i < n; i++) {
        char url[700];
        if (multiplexed)
            snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", g_srv.tls_port, q[i].path);
        else
            snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", g_srv.port, q[i].path);
        q[i].status = 0;
        q[i].resp = (sx_test_buf){0};
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
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sx_test_buf_append);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &q[i].resp);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, sx_test_buf_append);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &heads[i]);
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
        if (!q[i].resp.data)
            q[i].resp.data = calloc(1, 1);
        if (q[i].status && heads[i].data) /* checked against openapi.yaml as every answer is */
            sx_resp_record(hs[i], &(sx_resp){.status = q[i].status,
                                             .body = q[i].resp.data,
                                             .body_len = q[i].resp.len,
                                             .headers = heads[i].data});
        free(heads[i].data);
        curl_multi_remove_handle(m, hs[i]);
        curl_easy_cleanup(hs[i]);
        curl_slist_free_all(hl[i]);
    }
    curl_multi_cleanup(m);
    CHECK_INT(connects, multiplexed ? 1 : (long)n);
    free(hs);
    free(hl);
    free(heads);
}

void par_free(par_req *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(q[i].resp.data);
        q[i].resp = (sx_test_buf){0};
    }
}

int sx_api_suite_start(const sx_srv_opts *opts)
{
    int started = sx_srv_start(&g_srv, opts);
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
    return 0;
}

int sx_api_suite_main(const sx_test *tests, size_t n, int argc, char **argv, sx_srv_opts opts)
{
    /* --backend NAME (or SX_TEST_BACKEND) is ours; the other arguments name tests to run. */
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
    opts.backend = g_backend;
    int rc = sx_api_suite_start(&opts);
    if (rc == 0) {
        rc = sx_test_main(tests, n, nargs, args);
        if (g_running) {
            /* A run of selected tests still owes the clean stop. */
            int st = sx_srv_stop(&g_srv, SIGTERM, 60);
            if (st != 0) {
                fprintf(stderr, "secretsd exited with %d at SIGTERM\n", st);
                rc = 1;
            }
        }
    }
    free(g_auth);
    free(args);
    curl_global_cleanup();
    return rc;
}

void server_exits_0_at_sigterm(void)
{
    REQUIRE(g_running);
    g_running = false;
    CHECK_INT(sx_srv_stop(&g_srv, SIGTERM, 60), 0);
}

void reveal_of(sx_proto proto, const char *env, const char *name, unsigned version, char *out, size_t cap)
{
    char path[512], tail[64];
    snprintf(tail, sizeof(tail), version ? "/value?version=%u" : "/value", version);
    sx_resp r;
    api(&r, proto, "GET", spath(path, sizeof(path), env, name, tail), NULL, NULL);
    if (r.status == 200) {
        yajl_val v = jparse(&r);
        snprintf(out, cap, "%s", jstr(v, "value") ? jstr(v, "value") : "?");
        if (version) {
            yajl_val ver = jget(v, "version");
            CHECK(ver && YAJL_IS_INTEGER(ver) && YAJL_GET_INTEGER(ver) == version);
        }
        yajl_tree_free(v);
    } else {
        snprintf(out, cap, "#%ld", r.status);
    }
    sx_resp_free(&r);
}
