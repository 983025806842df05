/*
 * test_api_input.c - test_api: the order of authentication checks, wrong methods and routes,
 * the longest names, rule errors and the table of bad inputs (see test_api.c).
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

#include "api_suite.h"

/* ---- authentication order (the role/scope matrix is test_authz.c's) ------------------------------- */

void no_token_is_401_with_www_authenticate_even_for_unknown_names(void)
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

void wrong_methods_are_405_with_allow_and_unknown_routes_404(void)
{
    static const struct {
        const char *method;
        const char *path;
        const char *allow;
    } cases[] = {
        {"PATCH", ENVS "m/secrets/x", "GET, HEAD, PUT, DELETE"},
        {"POST", ENVS "m/secrets/x", "GET, HEAD, PUT, DELETE"},
        {"DELETE", ENVS "m/secrets", "GET, HEAD, POST"},
        {"PUT", ENVS "m/secrets", "GET, HEAD, POST"},
        {"POST", ENVS "m/secrets/x/value", "GET, HEAD, PUT"},
        {"DELETE", ENVS "m/secrets/x/value", "GET, HEAD, PUT"},
        {"POST", ENVS "m/values", "GET, HEAD"},
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

void longest_names_at_every_level_work_end_to_end(void)
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

void rule_errors_name_the_field_or_parameter(void)
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
    gen("POST", strdup(B), repeat("", "[", 100000, ""), IJ);
    gen("POST", strdup(B), repeat("{" KS ",\"name\":\"x\",\"description\":", "[", 10000, "}"), IJ);
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

void bad_input_table_gets_4xx_json_errors_and_changes_nothing(void)
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
