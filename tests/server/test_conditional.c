/*
 * test_conditional.c - conditional reads of values against the real secretsd: the ETag of a value
 * (current and ?version=N) and of an env's values map, If-None-Match (one tag, a list, "*", weak
 * tags) answered 304 with the ETag and no body, over HTTP/1.1 and h2c and for HEAD; every write
 * that changes the map (set-value, delete, rollback, a new secret's value) gives a 200 with a new
 * ETag, while writes that leave it as it was (a description, a secret without a value, another
 * env) keep it; the permission checks run before any 304; and GET /openapi.yaml serves the
 * repository's document without a token, with its own ETag.
 *
 * `test_conditional --backend memory|rocksdb|postgres [test names...]` starts one server for the
 * run (api_suite.c's helpers and owner token); each test works in its own environment.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_suite.h"

static const sx_proto protos[] = {SX_H1, SX_H2C};

/* A conditional GET (or HEAD) with the owner token: If-None-Match inm (NULL = none). The status,
 * and the ETag into etag (empty when absent). A 304 must have no body, no Content-Length that
 * announces one, and no Content-Type; a 200 a JSON body (none for HEAD). */
static long cond_get(sx_proto proto, const char *method, const char *path, const char *inm, char *etag, size_t cap)
{
    char hdr[512];
    if (inm)
        snprintf(hdr, sizeof(hdr), "If-None-Match: %s", inm);
    sx_resp r;
    api(&r, proto, method, path, NULL, inm ? hdr : NULL);
    if (!sx_resp_header(&r, "etag", etag, cap))
        etag[0] = '\0';
    char v[64];
    if (r.status == 304) {
        CHECK_INT(r.body_len, 0);
        CHECK(!sx_resp_header(&r, "content-type", v, sizeof(v)));
        CHECK(!sx_resp_header(&r, "content-length", v, sizeof(v)) || strcmp(v, "0") == 0);
        CHECK(header_is(&r, "cache-control", "no-store"));
    } else if (r.status == 200) {
        CHECK(header_is(&r, "content-type", "application/json"));
        CHECK(strcmp(method, "HEAD") == 0 ? r.body_len == 0 : r.body_len > 0);
    }
    long st = r.status;
    sx_resp_free(&r);
    return st;
}

static const char *values_path(char *buf, size_t cap, const char *env)
{
    snprintf(buf, cap, ENVS "%s/values", env);
    return buf;
}

/* The values map of env: 200 with an ETag that is a strong quoted tag; the ETag into etag. */
static void map_etag(sx_proto proto, const char *env, char *etag, size_t cap)
{
    char path[256];
    CHECK_INT(cond_get(proto, "GET", values_path(path, sizeof(path), env), NULL, etag, cap), 200);
    CHECK(etag[0] == '"' && etag[strlen(etag) - 1] == '"');
}

/* After a write: the old ETag no longer matches (200 with a new one, returned in fresh). */
static void map_changed(sx_proto proto, const char *env, const char *old, char *fresh, size_t cap)
{
    char path[256];
    CHECK_INT(cond_get(proto, "GET", values_path(path, sizeof(path), env), old, fresh, cap), 200);
    CHECK(fresh[0] && strcmp(fresh, old) != 0);
}

/* Nothing the map shows changed: the ETag still matches. */
static void map_unchanged(sx_proto proto, const char *env, const char *etag)
{
    char path[256], got[128];
    CHECK_INT(cond_get(proto, "GET", values_path(path, sizeof(path), env), etag, got, sizeof(got)), 304);
    CHECK_STR(got, etag);
}

static void a_value_read_answers_304_while_its_etag_matches(void)
{
    for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++) {
        sx_proto p = protos[pi];
        char env[32], path[512], vpath[512], e1[128], e2[128], got[128], list[512];
        snprintf(env, sizeof(env), "one-%zu", pi);
        REQUIRE(create(env, "k", NULL) == 201);
        CHECK_INT(set_value(env, "k", "\"first\""), 200);
        spath(path, sizeof(path), env, "k", "/value");
        CHECK_INT(cond_get(p, "GET", path, NULL, e1, sizeof(e1)), 200);
        REQUIRE(etag_ok(e1));
        /* the same tag, weak or strong, in a list, or "*": 304 with the ETag */
        CHECK_INT(cond_get(p, "GET", path, e1, got, sizeof(got)), 304);
        CHECK_STR(got, e1);
        snprintf(list, sizeof(list), "W/%s", e1);
        CHECK_INT(cond_get(p, "GET", path, list, got, sizeof(got)), 304);
        snprintf(list, sizeof(list), "\"0000000000000001\", W/\"x,y\" ,%s", e1);
        CHECK_INT(cond_get(p, "GET", path, list, got, sizeof(got)), 304);
        CHECK_INT(cond_get(p, "GET", path, "*", got, sizeof(got)), 304);
        CHECK_INT(cond_get(p, "HEAD", path, e1, got, sizeof(got)), 304);
        CHECK_STR(got, e1);
        /* another tag, or a malformed field: the value */
        CHECK_INT(cond_get(p, "GET", path, "\"0000000000000001\"", got, sizeof(got)), 200);
        CHECK_STR(got, e1);
        CHECK_INT(cond_get(p, "GET", path, "0000000000000001", got, sizeof(got)), 200);
        CHECK_INT(cond_get(p, "HEAD", path, NULL, got, sizeof(got)), 200);
        CHECK_STR(got, e1);

        /* a new value: 200 with the ETag set-value answered */
        sx_resp r;
        api(&r, p, "PUT", path, "{\"value\":\"second\"}", NULL);
        CHECK_INT(r.status, 200);
        char put_etag[128] = "";
        sx_resp_header(&r, "etag", put_etag, sizeof(put_etag));
        sx_resp_free(&r);
        CHECK_INT(cond_get(p, "GET", path, e1, e2, sizeof(e2)), 200);
        CHECK_STR(e2, put_etag);
        CHECK(strcmp(e1, e2) != 0);
        CHECK_INT(cond_get(p, "GET", path, e2, got, sizeof(got)), 304);

        /* ?version=N: its own ETag, for as long as the version is kept; never another version's */
        char v1[128], v2[128];
        spath(vpath, sizeof(vpath), env, "k", "/value?version=1");
        CHECK_INT(cond_get(p, "GET", vpath, NULL, v1, sizeof(v1)), 200);
        REQUIRE(v1[0] == '"');
        CHECK_INT(cond_get(p, "GET", vpath, v1, got, sizeof(got)), 304);
        CHECK_STR(got, v1);
        spath(vpath, sizeof(vpath), env, "k", "/value?version=2");
        CHECK_INT(cond_get(p, "GET", vpath, v1, v2, sizeof(v2)), 200);
        CHECK(v2[0] && strcmp(v1, v2) != 0);
        CHECK(strcmp(v1, e1) != 0 && strcmp(v2, e2) != 0);
        CHECK_INT(set_value(env, "k", "\"third\""), 200); /* version 2 becomes a previous one: same tag */
        CHECK_INT(cond_get(p, "GET", vpath, v2, got, sizeof(got)), 304);
        api(&r, p, "DELETE", spath(path, sizeof(path), env, "k", "/versions/1"), NULL, NULL);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
        spath(vpath, sizeof(vpath), env, "k", "/value?version=1");
        CHECK_INT(cond_get(p, "GET", vpath, v1, got, sizeof(got)), 404); /* destroyed: never 304 */

        /* version 1 of another secret is another tag */
        char o1[128];
        REQUIRE(create(env, "other", NULL) == 201);
        CHECK_INT(set_value(env, "other", "\"first\""), 200);
        spath(vpath, sizeof(vpath), env, "other", "/value?version=1");
        CHECK_INT(cond_get(p, "GET", vpath, NULL, o1, sizeof(o1)), 200);
        CHECK(o1[0] && strcmp(o1, v1) != 0);
        CHECK_INT(cond_get(p, "GET", vpath, v1, got, sizeof(got)), 200);
    }
}

static void the_values_map_etag_changes_with_every_write_that_changes_the_map(void)
{
    for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++) {
        sx_proto p = protos[pi];
        char env[32], other[32], path[512], e[128], f[128], got[128];
        snprintf(env, sizeof(env), "map-%zu", pi);
        snprintf(other, sizeof(other), "map-other-%zu", pi);

        /* an empty env has a map too, whose ETag is its own */
        map_etag(p, env, e, sizeof(e));
        map_etag(p, other, f, sizeof(f));
        CHECK(strcmp(e, f) != 0);
        map_unchanged(p, env, e);

        REQUIRE(create(env, "a", NULL) == 201);
        map_unchanged(p, env, e); /* a secret without a value is not in the map */
        CHECK_INT(set_value(env, "a", "\"1\""), 200);
        map_changed(p, env, e, f, sizeof(f));
        map_unchanged(p, env, f);
        CHECK_INT(cond_get(p, "HEAD", values_path(path, sizeof(path), env), f, got, sizeof(got)), 304);
        CHECK_STR(got, f);

        CHECK_INT(set_value(env, "a", "\"1\""), 200); /* the same text again is a new version */
        map_changed(p, env, f, e, sizeof(e));

        REQUIRE(create(env, "b", NULL) == 201);
        CHECK_INT(set_value(env, "b", "\"2\""), 200);
        map_changed(p, env, e, f, sizeof(f));

        sx_resp r;
        api(&r, p, "PUT", spath(path, sizeof(path), env, "b", NULL),
            "{\"kind\":\"secret\",\"name\":\"b\",\"description\":\"d\"}", NULL);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
        map_unchanged(p, env, f); /* a description is not in the map */
        REQUIRE(create(other, "a", NULL) == 201);
        CHECK_INT(set_value(other, "a", "\"x\""), 200);
        map_unchanged(p, env, f); /* nor is another env */

        api(&r, p, "POST", spath(path, sizeof(path), env, "a", "/rollback"), "{\"version\":1}", NULL);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
        map_changed(p, env, f, e, sizeof(e));

        api(&r, p, "DELETE", spath(path, sizeof(path), env, "b", NULL), NULL, NULL);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
        map_changed(p, env, e, f, sizeof(f));

        /* a name deleted and created again with the same text is still a change (a new version) */
        REQUIRE(create(env, "b", NULL) == 201);
        CHECK_INT(set_value(env, "b", "\"2\""), 200);
        map_changed(p, env, f, e, sizeof(e));
        map_unchanged(p, env, e);

        /* lists, weak tags and "*" as for a single value */
        char list[512];
        snprintf(list, sizeof(list), "\"nope\", W/%s", e);
        CHECK_INT(cond_get(p, "GET", values_path(path, sizeof(path), env), list, got, sizeof(got)), 304);
        CHECK_STR(got, e);
        CHECK_INT(cond_get(p, "GET", values_path(path, sizeof(path), env), "*", got, sizeof(got)), 304);
    }
}

/* GET as auth with If-None-Match; the status. */
static long cond_as(const char *auth, sx_proto proto, const char *path, const char *etag)
{
    char inm[256];
    snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
    const char *h[] = {auth, inm, NULL};
    sx_resp r;
    long st = sx_srv_request(&g_srv, proto, "GET", path, h, NULL, 0, &r) == 0 ? r.status : 0;
    if (st != 304 && st != 200)
        CHECK(sx_resp_is_error(&r, st == 401 ? "unauthorized" : "forbidden"));
    sx_resp_free(&r);
    return st;
}

static void permissions_are_checked_before_a_304(void)
{
    const char *env = "perm";
    REQUIRE(create(env, "k", NULL) == 201);
    CHECK_INT(set_value(env, "k", "\"v\""), 200);
    char vpath[512], mpath[256], hpath[512], ve[128], me[128], he[128];
    spath(vpath, sizeof(vpath), env, "k", "/value");
    spath(hpath, sizeof(hpath), env, "k", "/value?version=1");
    values_path(mpath, sizeof(mpath), env);
    CHECK_INT(cond_get(SX_H1, "GET", vpath, NULL, ve, sizeof(ve)), 200);
    CHECK_INT(cond_get(SX_H1, "GET", mpath, NULL, me, sizeof(me)), 200);
    CHECK_INT(cond_get(SX_H1, "GET", hpath, NULL, he, sizeof(he)), 200);
    static const struct {
        const char *role, *env;
        long want;
    } rows[] = {
        {"viewer", NULL, 403},   /* read without reveal */
        {"editor", NULL, 403},   /* read and write, without reveal */
        {"service", "dev", 403}, /* reveal, on another env */
        {"service", "perm", 304}, {"owner", NULL, 304},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *token = sx_srv_mint_token(&g_srv, "acme", rows[i].env ? "web" : NULL, rows[i].env, rows[i].role, NULL);
        REQUIRE(token);
        char *auth = sx_auth_header(token);
        free(token);
        for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++) {
            CHECK_INT(cond_as(auth, protos[pi], vpath, ve), rows[i].want);
            CHECK_INT(cond_as(auth, protos[pi], mpath, me), rows[i].want);
            CHECK_INT(cond_as(auth, protos[pi], hpath, he), rows[i].want);
        }
        free(auth);
    }
    for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++) {
        CHECK_INT(cond_as("X-None: 1", protos[pi], vpath, ve), 401);
        CHECK_INT(cond_as("Authorization: Bearer sxt_00000000000000000000000000000000_x", protos[pi], mpath, me), 401);
    }
}

/* GET /openapi.yaml: no token, the repository's openapi.yaml byte for byte, as application/yaml,
 * with an ETag that If-None-Match turns into a 304; HEAD too. */
static void the_openapi_document_is_served_without_a_token_with_an_etag(void)
{
    size_t flen = 0;
    char *file = sx_test_read_file(SX_OPENAPI_DOC, &flen);
    REQUIRE(file && flen > 1000);
    for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++) {
        sx_resp r;
        REQUIRE(sx_srv_request(&g_srv, protos[pi], "GET", "/openapi.yaml", NULL, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 200);
        CHECK(header_is(&r, "content-type", "application/yaml"));
        CHECK(r.body_len == flen && memcmp(r.body, file, flen) == 0);
        char etag[128] = "", inm[160];
        CHECK(sx_resp_header(&r, "etag", etag, sizeof(etag)) && etag[0] == '"');
        sx_resp_free(&r);
        snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
        const char *h[] = {inm, NULL};
        REQUIRE(sx_srv_request(&g_srv, protos[pi], "GET", "/openapi.yaml", h, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 304);
        CHECK_INT(r.body_len, 0);
        sx_resp_free(&r);
        REQUIRE(sx_srv_request(&g_srv, protos[pi], "HEAD", "/openapi.yaml", NULL, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 200);
        CHECK_INT(r.body_len, 0);
        char cl[32] = "";
        CHECK(sx_resp_header(&r, "content-length", cl, sizeof(cl)) && (size_t)atol(cl) == flen);
        sx_resp_free(&r);
        REQUIRE(sx_srv_request(&g_srv, protos[pi], "PUT", "/openapi.yaml", NULL, "{}", 2, &r) == 0);
        CHECK_INT(r.status, 405);
        sx_resp_free(&r);
    }
    /* not on the admin socket: it serves secretsctl's routes */
    sx_resp r;
    REQUIRE(sx_srv_request(&g_srv, SX_ADMIN, "GET", "/openapi.yaml", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 404);
    sx_resp_free(&r);
    free(file);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"a_value_read_answers_304_while_its_etag_matches", a_value_read_answers_304_while_its_etag_matches},
        {"the_values_map_etag_changes_with_every_write_that_changes_the_map",
         the_values_map_etag_changes_with_every_write_that_changes_the_map},
        {"permissions_are_checked_before_a_304", permissions_are_checked_before_a_304},
        {"the_openapi_document_is_served_without_a_token_with_an_etag",
         the_openapi_document_is_served_without_a_token_with_an_etag},
        {"server_exits_0_at_sigterm", server_exits_0_at_sigterm},
    };
    return sx_api_suite_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv, (sx_srv_opts){0});
}
