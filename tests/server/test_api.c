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
 *
 * This file has the endpoints one by one and the values; test_api_races.c and test_api_input.c
 * the rest, api_suite.c the shared helpers; main() below runs them all.
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

/* ---- the endpoints, one by one ------------------------------------------------------------------ */

void create_answers_201_with_location_etag_and_a_fresh_secret(void)
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

void create_of_an_existing_name_is_409_already_exists(void)
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

void get_answers_the_secret_and_404_not_found_for_unknown_names(void)
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

void list_is_sorted_metadata_and_an_empty_env_is_an_empty_array(void)
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

void update_replaces_the_description_and_bumps_updated_at(void)
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
        sx_test_sleep_ms(3); /* so updatedAt can move */
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

void delete_answers_deleted_body_and_then_404(void)
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

void set_value_answers_name_has_value_updated_at_and_404_for_unknown(void)
{
    CHECK_INT(create("setv", "s", NULL), 201);
    char path[512], gpath[512];
    spath(gpath, sizeof(gpath), "setv", "s", NULL);
    spath(path, sizeof(path), "setv", "s", "/value");
    char prev[32] = "";
    for (size_t i = 0; i < NPROTOS; i++) {
        sx_test_sleep_ms(3);
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

void reveal_answers_the_value_with_no_store_and_404_without_one(void)
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

void values_map_holds_exactly_the_secrets_that_have_a_value(void)
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

void values_round_trip_byte_exact_up_to_max_value_bytes(void)
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

void values_never_appear_in_list_get_or_write_answers(void)
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

void recreated_name_starts_fresh_without_value_and_with_new_created_at(void)
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
    sx_test_sleep_ms(5);
    api(&r, SX_H2C, "DELETE", path, NULL, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    sx_test_sleep_ms(5);
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

/* ---- the end ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
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
        {"server_exits_0_at_sigterm_after_the_suite", server_exits_0_at_sigterm},
    };
    return sx_api_suite_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv, (sx_srv_opts){0});
}
