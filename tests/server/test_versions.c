/*
 * test_versions.c - the versions of a secret's value end to end, against the real secretsd (and
 * secretsctl for a rotation): numbering across set-value, rollback and a delete and re-create,
 * pruning past [secrets] max_versions (3 here), the reveal of every retained version, destroyed
 * and unknown versions, If-Match on rollback, the permissions of each new endpoint per role, and an
 * env rotation that re-encrypts the history and destroys the old data key.
 *
 * `test_versions --backend memory|rocksdb|postgres [test names...]` starts one server for the run
 * (api_suite.c's helpers and owner token); each test works in its own environment and over
 * HTTP/1.1 and h2c.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "api_suite.h"

#define MAX_VERSIONS 3

static const sx_proto protos[] = {SX_H1, SX_H2C};

/* GET .../versions as "3:current,2:previous,1:destroyed" (or the status when it is not 200). */
static void versions_of(sx_proto proto, const char *env, const char *name, char *out, size_t cap)
{
    char path[512];
    sx_resp r;
    api(&r, proto, "GET", spath(path, sizeof(path), env, name, "/versions"), NULL, NULL);
    out[0] = '\0';
    if (r.status != 200) {
        snprintf(out, cap, "%ld", r.status);
        sx_resp_free(&r);
        return;
    }
    yajl_val v = jparse(&r);
    CHECK(v && YAJL_IS_ARRAY(v));
    size_t n = 0;
    for (size_t i = 0; v && YAJL_IS_ARRAY(v) && i < v->u.array.len; i++) {
        yajl_val e = v->u.array.values[i];
        static const char *const keys[] = {"version", "createdAt", "state", NULL};
        CHECK(exact_keys(e, keys));
        yajl_val ver = jget(e, "version");
        CHECK(is_timestamp(jstr(e, "createdAt")));
        n += (size_t)snprintf(out + n, cap - n, "%s%lld:%s", i ? "," : "", ver ? YAJL_GET_INTEGER(ver) : -1LL,
                              jstr(e, "state") ? jstr(e, "state") : "?");
    }
    yajl_tree_free(v);
    sx_resp_free(&r);
}

static long rollback(sx_proto proto, const char *env, const char *name, const char *body, const char *extra)
{
    char path[512];
    sx_resp r;
    api(&r, proto, "POST", spath(path, sizeof(path), env, name, "/rollback"), body, extra);
    long st = r.status;
    if (st == 200) {
        yajl_val v = jparse(&r);
        static const char *const keys[] = {"name", "hasValue", "updatedAt", NULL};
        CHECK(exact_keys(v, keys)); /* answered like a set-value */
        CHECK(YAJL_IS_TRUE(jget(v, "hasValue")));
        yajl_tree_free(v);
        char etag[64];
        CHECK(sx_resp_header(&r, "etag", etag, sizeof(etag)) && etag_ok(etag));
    }
    sx_resp_free(&r);
    return st;
}

static long destroy(sx_proto proto, const char *env, const char *name, const char *version, sx_resp *keep)
{
    char path[512], tail[64];
    snprintf(tail, sizeof(tail), "/versions/%s", version);
    sx_resp r;
    api(&r, proto, "DELETE", spath(path, sizeof(path), env, name, tail), NULL, NULL);
    long st = r.status;
    if (keep)
        *keep = r;
    else
        sx_resp_free(&r);
    return st;
}

#define EXPECT_VERSIONS(proto, env, name, want)                                                                        \
    do {                                                                                                               \
        char got_[512];                                                                                                \
        versions_of(proto, env, name, got_, sizeof(got_));                                                             \
        CHECK_STR(got_, want);                                                                                         \
    } while (0)

/* ---- the tests ----------------------------------------------------------------------------------- */

static void versions_are_numbered_across_set_value_rollback_and_recreate(void)
{
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        sx_proto p = protos[i];
        const char *env = p == SX_H1 ? "num-h1" : "num-h2";
        char path[512];
        REQUIRE(create(env, "db", NULL) == 201);
        EXPECT_VERSIONS(p, env, "db", "");
        CHECK_INT(set_value(env, "db", "\"a\""), 200);
        CHECK_INT(set_value(env, "db", "\"b\""), 200);
        EXPECT_VERSIONS(p, env, "db", "2:current,1:previous");
        EXPECT_REVEAL(p, env, "db", 1, "a");
        EXPECT_REVEAL(p, env, "db", 2, "b");
        EXPECT_REVEAL(p, env, "db", 0, "b");
        /* A rollback is a new version holding the old value. */
        CHECK_INT(rollback(p, env, "db", "{\"version\":1}", NULL), 200);
        EXPECT_VERSIONS(p, env, "db", "3:current,2:previous,1:previous");
        EXPECT_REVEAL(p, env, "db", 0, "a");
        EXPECT_REVEAL(p, env, "db", 3, "a");
        EXPECT_REVEAL(p, env, "db", 1, "a");
        /* Delete and re-create: the numbers go on where they were. */
        sx_resp r;
        api(&r, p, "DELETE", spath(path, sizeof(path), env, "db", NULL), NULL, NULL);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
        EXPECT_VERSIONS(p, env, "db", "404");
        REQUIRE(create(env, "db", NULL) == 201);
        EXPECT_VERSIONS(p, env, "db", "");
        EXPECT_REVEAL(p, env, "db", 1, "#404");
        CHECK_INT(set_value(env, "db", "\"d\""), 200);
        EXPECT_VERSIONS(p, env, "db", "4:current");
        EXPECT_REVEAL(p, env, "db", 4, "d");
        EXPECT_REVEAL(p, env, "db", 3, "#404");
        /* Unknown secrets and versions, malformed numbers. */
        EXPECT_VERSIONS(p, env, "nope", "404");
        EXPECT_REVEAL(p, env, "nope", 1, "#404");
        EXPECT_REVEAL(p, env, "db", 5, "#404");
        api(&r, p, "GET", spath(path, sizeof(path), env, "db", "/value?version=x1"), NULL, NULL);
        CHECK_INT(r.status, 400);
        CHECK(sx_resp_is_error(&r, "invalid_request"));
        sx_resp_free(&r);
        api(&r, p, "GET", spath(path, sizeof(path), env, "db", "/value?version=0"), NULL, NULL);
        CHECK_INT(r.status, 400);
        sx_resp_free(&r);
        CHECK_INT(rollback(p, env, "db", "{\"version\":\"1\"}", NULL), 400);
        CHECK_INT(rollback(p, env, "db", "{\"version\":1.5}", NULL), 400);
        CHECK_INT(rollback(p, env, "db", "{\"version\":4,\"x\":1}", NULL), 400);
        CHECK_INT(rollback(p, env, "db", "{\"version\":2}", NULL), 404);
        CHECK_INT(rollback(p, env, "nope", "{\"version\":1}", NULL), 404);
    }
}

static void max_versions_prunes_the_oldest_and_each_retained_version_reveals(void)
{
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        sx_proto p = protos[i];
        const char *env = p == SX_H1 ? "prune-h1" : "prune-h2";
        REQUIRE(create(env, "k", NULL) == 201);
        for (int v = 1; v <= 6; v++) {
            char val[32];
            snprintf(val, sizeof(val), "\"value-%d\"", v);
            CHECK_INT(set_value(env, "k", val), 200);
        }
        EXPECT_VERSIONS(p, env, "k", "6:current,5:previous,4:previous");
        EXPECT_REVEAL(p, env, "k", 6, "value-6");
        EXPECT_REVEAL(p, env, "k", 5, "value-5");
        EXPECT_REVEAL(p, env, "k", 4, "value-4");
        for (unsigned v = 1; v <= 3; v++)
            EXPECT_REVEAL(p, env, "k", v, "#404");
        CHECK_INT(rollback(p, env, "k", "{\"version\":3}", NULL), 404);
    }
}

static void destroyed_versions_are_listed_and_404_and_the_current_one_is_409(void)
{
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        sx_proto p = protos[i];
        const char *env = p == SX_H1 ? "destroy-h1" : "destroy-h2";
        REQUIRE(create(env, "k", NULL) == 201);
        CHECK_INT(set_value(env, "k", "\"one\""), 200);
        CHECK_INT(set_value(env, "k", "\"two\""), 200);
        CHECK_INT(set_value(env, "k", "\"three\""), 200);
        sx_resp r;
        CHECK_INT(destroy(p, env, "k", "2", &r), 200);
        yajl_val v = jparse(&r);
        static const char *const keys[] = {"destroyed", "name", "version", NULL};
        CHECK(exact_keys(v, keys));
        CHECK(YAJL_IS_TRUE(jget(v, "destroyed")));
        CHECK_STR(jstr(v, "name"), "k");
        CHECK(jget(v, "version") && YAJL_GET_INTEGER(jget(v, "version")) == 2);
        yajl_tree_free(v);
        sx_resp_free(&r);
        EXPECT_VERSIONS(p, env, "k", "3:current,2:destroyed,1:previous");
        EXPECT_REVEAL(p, env, "k", 2, "#404");
        EXPECT_REVEAL(p, env, "k", 1, "one");
        CHECK_INT(rollback(p, env, "k", "{\"version\":2}", NULL), 404);
        CHECK_INT(destroy(p, env, "k", "2", NULL), 404);
        CHECK_INT(destroy(p, env, "k", "9", NULL), 404);
        CHECK_INT(destroy(p, env, "nope", "1", NULL), 404);
        CHECK_INT(destroy(p, env, "k", "3", &r), 409);
        CHECK(sx_resp_is_error(&r, "conflict"));
        sx_resp_free(&r);
        CHECK_INT(destroy(p, env, "k", "x", NULL), 400);
        EXPECT_REVEAL(p, env, "k", 0, "three");
        /* The tombstone leaves the window like any version. */
        CHECK_INT(set_value(env, "k", "\"four\""), 200);
        CHECK_INT(set_value(env, "k", "\"five\""), 200);
        EXPECT_VERSIONS(p, env, "k", "5:current,4:previous,3:previous");
    }
}

static void rollback_honours_if_match(void)
{
    const char *env = "ifmatch";
    REQUIRE(create(env, "k", NULL) == 201);
    CHECK_INT(set_value(env, "k", "\"a\""), 200);
    char etag[64], hdr[128];
    etag_of(env, "k", etag, sizeof(etag));
    CHECK_INT(set_value(env, "k", "\"b\""), 200);
    snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
        CHECK_INT(rollback(protos[i], env, "k", "{\"version\":1}", hdr), 412);
    EXPECT_VERSIONS(SX_H1, env, "k", "2:current,1:previous");
    etag_of(env, "k", etag, sizeof(etag));
    snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
    CHECK_INT(rollback(SX_H2C, env, "k", "{\"version\":1}", hdr), 200);
    EXPECT_REVEAL(SX_H1, env, "k", 0, "a");
}

/* One request with another role's token. */
static long as_role(const char *auth, sx_proto proto, const char *method, const char *path, const char *body)
{
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    long st = sx_srv_request(&g_srv, proto, method, path, h, body, body ? strlen(body) : 0, &r) == 0 ? r.status : 0;
    sx_resp_free(&r);
    return st;
}

static void each_role_gets_the_expected_status_on_the_version_endpoints(void)
{
    const char *env = "roles";
    REQUIRE(create(env, "k", NULL) == 201);
    CHECK_INT(set_value(env, "k", "\"a\""), 200);
    CHECK_INT(set_value(env, "k", "\"b\""), 200);
    CHECK_INT(set_value(env, "k", "\"c\""), 200);
    static const struct {
        const char *role;
        long list, reveal, rollback, destroy;
    } rows[] = {
        {"viewer", 200, 403, 403, 403},
        {"editor", 200, 403, 403, 403}, /* destroying a version needs secrets:set-value */
        {"service", 200, 200, 403, 403},
        {"owner", 200, 200, 200, 200},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *token = sx_srv_mint_token(&g_srv, "acme", NULL, NULL, rows[i].role, NULL);
        REQUIRE(token);
        char *auth = sx_auth_header(token);
        free(token);
        char path[512];
        for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++) {
            sx_proto p = protos[pi];
            CHECK_INT(as_role(auth, p, "GET", spath(path, sizeof(path), env, "k", "/versions"), NULL), rows[i].list);
            CHECK_INT(as_role(auth, p, "GET", spath(path, sizeof(path), env, "k", "/value?version=1"), NULL),
                      rows[i].reveal);
        }
        long rb = as_role(auth, SX_H1, "POST", spath(path, sizeof(path), env, "k", "/rollback"), "{\"version\":1}");
        CHECK_INT(rb, rows[i].rollback);
        /* Version 2 stays a previous one (the owner's rollback makes version 4, pruning 1). */
        long ds = as_role(auth, SX_H2C, "DELETE", spath(path, sizeof(path), env, "k", "/versions/2"), NULL);
        CHECK_INT(ds, rows[i].destroy);
        free(auth);
    }
    long none = as_role("X-None: 1", SX_H1, "GET", ENVS "roles/secrets/k/versions", NULL);
    CHECK_INT(none, 401);
}

static void env_rotation_re_encrypts_every_retained_version_and_destroys_the_old_key(void)
{
    const char *env = "rotate";
    const char *names[] = {"a", "b"};
    for (size_t n = 0; n < 2; n++) {
        REQUIRE(create(env, names[n], NULL) == 201);
        for (int v = 1; v <= 3; v++) {
            char val[64];
            snprintf(val, sizeof(val), "\"%s-%d\"", names[n], v);
            CHECK_INT(set_value(env, names[n], val), 200);
        }
    }
    CHECK_INT(destroy(SX_H1, env, "b", "1", NULL), 200); /* a tombstone in the history too */
    char *out = NULL;
    int rc = sx_test_sh(&out, "'%s' --config '%s' env rotate acme/web/%s --wait 2>&1", SX_SECRETSCTL_PATH,
                        g_srv.config_path, env);
    if (rc != 0)
        fprintf(stderr, "secretsctl: %s\n", out ? out : "");
    CHECK_INT(rc, 0);
    free(out);
    for (size_t n = 0; n < 2; n++) {
        for (unsigned v = 1; v <= 3; v++) {
            char want[64];
            snprintf(want, sizeof(want), "%s-%u", names[n], v);
            if (n == 1 && v == 1)
                snprintf(want, sizeof(want), "#404");
            for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++)
                EXPECT_REVEAL(protos[pi], env, names[n], v, want);
        }
    }
    /* Only the new data key is left: the old one was destroyed, no retained version needed it. */
    sx_resp r;
    const char *h[] = {NULL};
    REQUIRE(sx_srv_request(&g_srv, SX_ADMIN, "GET", "/v1/envs/acme/web/rotate", h, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    yajl_val v = jparse(&r);
    yajl_val keys = jget(v, "dataKeys");
    CHECK(keys && YAJL_IS_ARRAY(keys) && keys->u.array.len == 1);
    CHECK(jget(v, "activeVersion") && YAJL_GET_INTEGER(jget(v, "activeVersion")) == 2);
    yajl_tree_free(v);
    sx_resp_free(&r);
}

/* GET /v1/envs/{o}/{p}/{env} counts the retained previous versions beside the current values,
 * in all and per data key; a destroyed version is not retained. */
static void env_view_counts_retained_versions(void)
{
    const char *env = "counts";
    REQUIRE(create(env, "c", NULL) == 201);
    for (int v = 1; v <= 3; v++) {
        char val[32];
        snprintf(val, sizeof(val), "\"c-%d\"", v);
        CHECK_INT(set_value(env, "c", val), 200);
    }
    CHECK_INT(destroy(SX_H1, env, "c", "1", NULL), 200);
    sx_resp r;
    const char *h[] = {NULL};
    REQUIRE(sx_srv_request(&g_srv, SX_ADMIN, "GET", "/v1/envs/acme/web/counts", h, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    yajl_val v = jparse(&r);
    CHECK(jget(v, "values") && YAJL_GET_INTEGER(jget(v, "values")) == 1);
    CHECK(jget(v, "retainedVersions") && YAJL_GET_INTEGER(jget(v, "retainedVersions")) == 1);
    yajl_val keys = jget(v, "dataKeys");
    REQUIRE(keys && YAJL_IS_ARRAY(keys) && keys->u.array.len == 1);
    yajl_val k0 = keys->u.array.values[0];
    CHECK(jget(k0, "retainedVersions") && YAJL_GET_INTEGER(jget(k0, "retainedVersions")) == 1);
    CHECK(jget(k0, "values") && YAJL_GET_INTEGER(jget(k0, "values")) == 1);
    yajl_tree_free(v);
    sx_resp_free(&r);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"versions_are_numbered_across_set_value_rollback_and_recreate",
         versions_are_numbered_across_set_value_rollback_and_recreate},
        {"max_versions_prunes_the_oldest_and_each_retained_version_reveals",
         max_versions_prunes_the_oldest_and_each_retained_version_reveals},
        {"destroyed_versions_are_listed_and_404_and_the_current_one_is_409",
         destroyed_versions_are_listed_and_404_and_the_current_one_is_409},
        {"rollback_honours_if_match", rollback_honours_if_match},
        {"each_role_gets_the_expected_status_on_the_version_endpoints",
         each_role_gets_the_expected_status_on_the_version_endpoints},
        {"env_rotation_re_encrypts_every_retained_version_and_destroys_the_old_key",
         env_rotation_re_encrypts_every_retained_version_and_destroys_the_old_key},
        {"env_view_counts_retained_versions", env_view_counts_retained_versions},
        {"server_exits_0_at_sigterm", server_exits_0_at_sigterm},
    };
    return sx_api_suite_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv,
                             (sx_srv_opts){.extra_secrets = "max_versions = 3\n"});
}
