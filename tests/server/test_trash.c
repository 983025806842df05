/*
 * test_trash.c - deleted secrets end to end, against the real secretsd: a DELETE hides the secret
 * from get, list, reveal and the values map but keeps it for [secrets] recovery_window; the list
 * of deleted secrets, a restore that brings back every version, 409 when the name lives again, a
 * second delete that replaces (and destroys) the older deleted copy, purge, the permissions of each
 * endpoint per role, an env rotation over history and deleted secrets, and the sweeper: expiry,
 * a SIGKILL between two purges, and "destroyed means gone" in the raw RocksDB files.
 *
 * `test_trash --backend memory|rocksdb|postgres [test names...]`: the suite's server (api_suite.c)
 * keeps deleted secrets for an hour; the sweeper tests start servers of their own.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "api_suite.h"
#include "rocksdump.h"

static const sx_proto protos[] = {SX_H1, SX_H2C};

static const char *dpath(char *buf, size_t cap, const char *env, const char *name, const char *tail)
{
    if (name)
        snprintf(buf, cap, ENVS "%s/deleted-secrets/%s%s", env, name, tail ? tail : "");
    else
        snprintf(buf, cap, ENVS "%s/deleted-secrets", env);
    return buf;
}

static long call(sx_proto proto, const char *method, const char *path, sx_resp *keep)
{
    sx_resp r;
    api(&r, proto, method, path, NULL, NULL);
    long st = r.status;
    if (keep)
        *keep = r;
    else
        sx_resp_free(&r);
    return st;
}

/* The deleted secrets of env as "name:versions,..." (or the status when it is not 200); each entry
 * is checked for its exact keys and timestamps, purgeAt an hour after deletedAt. */
static void deleted_of(sx_proto proto, const char *env, char *out, size_t cap)
{
    char path[512];
    sx_resp r;
    call(proto, "GET", dpath(path, sizeof(path), env, NULL, NULL), &r);
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
        static const char *const keys[] = {"name", "deletedAt", "purgeAt", "versions", NULL};
        CHECK(exact_keys(e, keys));
        const char *d = jstr(e, "deletedAt"), *pa = jstr(e, "purgeAt");
        CHECK(is_timestamp(d)); /* now, give or take */
        CHECK(d && pa && strlen(pa) == strlen(d) && pa[strlen(pa) - 1] == 'Z' && strcmp(pa, d) > 0);
        yajl_val ver = jget(e, "versions");
        n += (size_t)snprintf(out + n, cap - n, "%s%s:%lld", i ? "," : "", jstr(e, "name") ? jstr(e, "name") : "?",
                              ver && YAJL_IS_INTEGER(ver) ? YAJL_GET_INTEGER(ver) : -1LL);
    }
    yajl_tree_free(v);
    sx_resp_free(&r);
}

#define EXPECT_DELETED(proto, env, want)                                                                               \
    do {                                                                                                               \
        char got_[512];                                                                                                \
        deleted_of(proto, env, got_, sizeof(got_));                                                                    \
        CHECK_STR(got_, want);                                                                                         \
    } while (0)

static long del(sx_proto proto, const char *env, const char *name)
{
    char path[512];
    sx_resp r;
    long st = call(proto, "DELETE", spath(path, sizeof(path), env, name, NULL), &r);
    if (st == 200) {
        char want[128];
        snprintf(want, sizeof(want), "{\"deleted\":true,\"name\":\"%s\"}", name);
        CHECK_STR(r.body, want); /* the seed's answer, unchanged */
    }
    sx_resp_free(&r);
    return st;
}

static long restore(sx_proto proto, const char *env, const char *name, bool has_value)
{
    char path[512];
    sx_resp r;
    long st = call(proto, "POST", dpath(path, sizeof(path), env, name, "/restore"), &r);
    if (st == 200) {
        CHECK(secret_resp_ok(&r, 200, name, NULL, has_value));
        char etag[64];
        CHECK(sx_resp_header(&r, "etag", etag, sizeof(etag)) && etag_ok(etag));
    } else {
        CHECK(strstr(r.body, "\"code\":\"") != NULL);
    }
    sx_resp_free(&r);
    return st;
}

/* Create name in env with the values given in order. */
static void make(const char *env, const char *name, const char *const *values)
{
    REQUIRE(create(env, name, NULL) == 201);
    for (size_t i = 0; values[i]; i++) {
        char body[256];
        snprintf(body, sizeof(body), "\"%s\"", values[i]);
        CHECK_INT(set_value(env, name, body), 200);
    }
}

/* ---- the suite's tests --------------------------------------------------------------------------- */

static void deleted_secret_is_hidden_listed_and_restored_with_every_version(void)
{
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        sx_proto p = protos[i];
        const char *env = p == SX_H1 ? "soft-h1" : "soft-h2";
        char path[512];
        make(env, "db", (const char *const[]){"a", "b", "c", NULL});
        make(env, "keep", (const char *const[]){"k", NULL});
        EXPECT_DELETED(p, env, "");
        CHECK_INT(del(p, env, "db"), 200);
        /* gone from get, list, reveal, versions and the values map at once */
        CHECK_INT(call(p, "GET", spath(path, sizeof(path), env, "db", NULL), NULL), 404);
        EXPECT_REVEAL(p, env, "db", 0, "#404");
        EXPECT_REVEAL(p, env, "db", 1, "#404");
        CHECK_INT(call(p, "GET", spath(path, sizeof(path), env, "db", "/versions"), NULL), 404);
        sx_resp r;
        call(p, "GET", spath(path, sizeof(path), env, NULL, NULL), &r);
        CHECK(strstr(r.body, "\"db\"") == NULL && strstr(r.body, "\"keep\"") != NULL);
        sx_resp_free(&r);
        snprintf(path, sizeof(path), ENVS "%s/values", env);
        call(p, "GET", path, &r);
        CHECK_STR(r.body, "{\"keep\":\"k\"}");
        sx_resp_free(&r);
        EXPECT_DELETED(p, env, "db:3");
        /* a second delete of the gone name is a 404, and nothing changes */
        CHECK_INT(del(p, env, "db"), 404);
        EXPECT_DELETED(p, env, "db:3");
        /* restore: every version back, the numbers unchanged, the list empty again */
        CHECK_INT(restore(p, env, "db", true), 200);
        EXPECT_DELETED(p, env, "");
        EXPECT_REVEAL(p, env, "db", 0, "c");
        EXPECT_REVEAL(p, env, "db", 1, "a");
        EXPECT_REVEAL(p, env, "db", 2, "b");
        EXPECT_REVEAL(p, env, "db", 3, "c");
        CHECK_INT(restore(p, env, "db", true), 409); /* it lives */
        /* the next set-value goes on from the restored numbers */
        CHECK_INT(set_value(env, "db", "\"d\""), 200);
        EXPECT_REVEAL(p, env, "db", 4, "d");
        /* a secret without a value is restored without one */
        REQUIRE(create(env, "empty", NULL) == 201);
        CHECK_INT(del(p, env, "empty"), 200);
        EXPECT_DELETED(p, env, "empty:0");
        CHECK_INT(restore(p, env, "empty", false), 200);
    }
}

static void restore_onto_a_recreated_name_is_409_and_a_second_delete_replaces_the_older_copy(void)
{
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        sx_proto p = protos[i];
        const char *env = p == SX_H1 ? "again-h1" : "again-h2";
        make(env, "b", (const char *const[]){"old-1", "old-2", NULL});
        CHECK_INT(del(p, env, "b"), 200);
        /* the seed: a deleted name can be created again at once, and starts fresh */
        make(env, "b", (const char *const[]){"new", NULL});
        EXPECT_REVEAL(p, env, "b", 0, "new");
        EXPECT_REVEAL(p, env, "b", 1, "#404");
        CHECK_INT(restore(p, env, "b", true), 409);
        EXPECT_DELETED(p, env, "b:2");
        EXPECT_REVEAL(p, env, "b", 0, "new"); /* the refused restore changed nothing */
        /* deleting it again replaces the older deleted copy, which is destroyed */
        CHECK_INT(del(p, env, "b"), 200);
        EXPECT_DELETED(p, env, "b:1");
        CHECK_INT(restore(p, env, "b", true), 200);
        EXPECT_REVEAL(p, env, "b", 0, "new");
        EXPECT_REVEAL(p, env, "b", 3, "new");
        EXPECT_REVEAL(p, env, "b", 1, "#404");
        EXPECT_REVEAL(p, env, "b", 2, "#404");
    }
}

static void purge_destroys_a_deleted_secret_now(void)
{
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        sx_proto p = protos[i];
        const char *env = p == SX_H1 ? "purge-h1" : "purge-h2";
        char path[512];
        make(env, "c", (const char *const[]){"x", "y", NULL});
        CHECK_INT(call(p, "DELETE", dpath(path, sizeof(path), env, "c", NULL), NULL), 404); /* not deleted yet */
        CHECK_INT(del(p, env, "c"), 200);
        sx_resp r;
        CHECK_INT(call(p, "DELETE", dpath(path, sizeof(path), env, "c", NULL), &r), 200);
        CHECK_STR(r.body, "{\"purged\":true,\"name\":\"c\"}");
        sx_resp_free(&r);
        EXPECT_DELETED(p, env, "");
        CHECK_INT(restore(p, env, "c", true), 404);
        CHECK_INT(call(p, "DELETE", dpath(path, sizeof(path), env, "c", NULL), NULL), 404);
        /* the name's numbers still go on: purging never gives a version number out again */
        make(env, "c", (const char *const[]){"z", NULL});
        EXPECT_REVEAL(p, env, "c", 3, "z");
        /* bad names are refused before anything is read */
        CHECK_INT(call(p, "DELETE", dpath(path, sizeof(path), env, "..", NULL), NULL), 400);
        CHECK_INT(call(p, "POST", dpath(path, sizeof(path), env, "a%2Fb", "/restore"), NULL) / 100, 4);
    }
}

static long as_role(const char *auth, sx_proto proto, const char *method, const char *path)
{
    const char *h[] = {auth, NULL};
    sx_resp r;
    long st = sx_srv_request(&g_srv, proto, method, path, h, NULL, 0, &r) == 0 ? r.status : 0;
    sx_resp_free(&r);
    return st;
}

static void each_role_gets_the_expected_status_on_the_deleted_secret_endpoints(void)
{
    const char *env = "trash-roles";
    static const struct {
        const char *role;
        long del, list, restore, purge;
    } rows[] = {
        {"viewer", 403, 200, 403, 403},
        {"editor", 200, 200, 403, 403}, /* deletes, but restoring and purging need secrets:set-value */
        {"service", 403, 200, 403, 403},
        {"owner", 200, 200, 200, 200},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char name[32], path[512];
        snprintf(name, sizeof(name), "r%zu", i);
        make(env, name, (const char *const[]){"v", NULL});
        char *token = sx_srv_mint_token(&g_srv, "acme", NULL, NULL, rows[i].role, NULL);
        REQUIRE(token);
        char *auth = sx_auth_header(token);
        free(token);
        CHECK_INT(as_role(auth, SX_H1, "DELETE", spath(path, sizeof(path), env, name, NULL)), rows[i].del);
        if (rows[i].del != 200)
            CHECK_INT(del(SX_H1, env, name), 200);
        for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++)
            CHECK_INT(as_role(auth, protos[pi], "GET", dpath(path, sizeof(path), env, NULL, NULL)), rows[i].list);
        CHECK_INT(as_role(auth, SX_H2C, "POST", dpath(path, sizeof(path), env, name, "/restore")), rows[i].restore);
        if (rows[i].restore == 200)
            CHECK_INT(del(SX_H1, env, name), 200);
        CHECK_INT(as_role(auth, SX_H1, "DELETE", dpath(path, sizeof(path), env, name, NULL)), rows[i].purge);
        free(auth);
    }
    /* a token for another project sees nothing of this one */
    char *token = sx_srv_mint_token(&g_srv, "acme", "other", NULL, "owner", NULL);
    REQUIRE(token);
    char *auth = sx_auth_header(token);
    free(token);
    char path[512];
    CHECK_INT(as_role(auth, SX_H1, "GET", dpath(path, sizeof(path), env, NULL, NULL)), 403);
    CHECK_INT(as_role(auth, SX_H1, "POST", dpath(path, sizeof(path), env, "r0", "/restore")), 403);
    free(auth);
    CHECK_INT(as_role("X-None: 1", SX_H1, "GET", dpath(path, sizeof(path), env, NULL, NULL)), 401);
}

/* GET /v1/envs/{o}/{p}/{env}: integer field of the admin API's env view (-1 when absent). */
static long long env_view_int(const char *env, const char *field)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/envs/acme/web/%s", env);
    sx_resp r;
    const char *h[] = {NULL};
    long long n = -1;
    if (sx_srv_request(&g_srv, SX_ADMIN, "GET", path, h, NULL, 0, &r) == 0 && r.status == 200) {
        yajl_val v = jparse(&r);
        yajl_val f = jget(v, field);
        if (f && YAJL_IS_INTEGER(f))
            n = YAJL_GET_INTEGER(f);
        if (strcmp(field, "dataKeys") == 0)
            n = f && YAJL_IS_ARRAY(f) ? (long long)f->u.array.len : -1;
        yajl_tree_free(v);
    }
    sx_resp_free(&r);
    return n;
}

static void env_rotation_re_encrypts_deleted_secrets_and_destroys_the_old_key(void)
{
    const char *env = "trash-rotate";
    make(env, "gone", (const char *const[]){"g1", "g2", "g3", NULL});
    make(env, "live", (const char *const[]){"l1", "l2", NULL});
    CHECK_INT(del(SX_H1, env, "gone"), 200);
    CHECK_INT(env_view_int(env, "deletedSecrets"), 1);
    CHECK_INT(env_view_int(env, "deletedSecretVersions"), 3);
    char *out = NULL;
    int rc = sx_test_sh(&out, "'%s' --config '%s' env rotate acme/web/%s --wait 2>&1", SX_SECRETSCTL_PATH,
                        g_srv.config_path, env);
    if (rc != 0)
        fprintf(stderr, "secretsctl: %s\n", out ? out : "");
    CHECK_INT(rc, 0);
    free(out);
    /* the old data key is destroyed: nothing, deleted secrets included, needed it any more */
    CHECK_INT(env_view_int(env, "dataKeys"), 1);
    CHECK_INT(env_view_int(env, "activeVersion"), 2);
    CHECK_INT(restore(SX_H1, env, "gone", true), 200);
    for (size_t pi = 0; pi < sizeof(protos) / sizeof(protos[0]); pi++) {
        EXPECT_REVEAL(protos[pi], env, "gone", 1, "g1");
        EXPECT_REVEAL(protos[pi], env, "gone", 2, "g2");
        EXPECT_REVEAL(protos[pi], env, "gone", 3, "g3");
        EXPECT_REVEAL(protos[pi], env, "live", 1, "l1");
        EXPECT_REVEAL(protos[pi], env, "live", 2, "l2");
    }
}

/* ---- the sweeper, on servers of their own -------------------------------------------------------- */

/* A server of its own, with the owner token in g_srv/g_auth's place for the helpers; restores them
 * at the end. */
typedef struct own {
    sx_srv saved;
    char *saved_auth;
} own;

static int own_start(own *o, sx_srv *srv, const char *backend, const char *secrets, const char *const *env, bool keep,
                     const char *dir)
{
    sx_srv_opts opts = {.backend = backend,
                        .extra_secrets = secrets,
                        .extra_env = env,
                        .keep_dir = keep,
                        .dir = dir,
                        .extra_log = "audit_log = audit.log\n"};
    if (sx_srv_start(srv, &opts) != 0)
        return -1;
    o->saved = g_srv;
    o->saved_auth = g_auth;
    g_srv = *srv;
    char *token = sx_srv_mint_token(srv, "acme", NULL, NULL, "owner", NULL);
    g_auth = token ? sx_auth_header(token) : NULL;
    free(token);
    return g_auth ? 0 : -1;
}

static void own_end(own *o)
{
    free(g_auth);
    g_srv = o->saved;
    g_auth = o->saved_auth;
}

/* Poll the deleted secrets of env until they read want (up to 30 s). */
static bool deleted_becomes(const char *env, const char *want)
{
    char got[512] = "";
    for (int i = 0; i < 300; i++) {
        deleted_of(SX_H1, env, got, sizeof(got));
        if (strcmp(got, want) == 0)
            return true;
        sx_test_sleep_ms(100);
    }
    fprintf(stderr, "deleted secrets of %s: \"%s\", not \"%s\"\n", env, got, want);
    return false;
}

static long long status_sweeper_int(const sx_srv *srv, const char *field)
{
    sx_resp r;
    const char *h[] = {NULL};
    long long n = -1;
    if (sx_srv_request(srv, SX_ADMIN, "GET", "/v1/status", h, NULL, 0, &r) == 0 && r.status == 200) {
        yajl_val v = jparse(&r);
        yajl_val f = jget(jget(v, "sweeper"), field);
        if (f && YAJL_IS_INTEGER(f))
            n = YAJL_GET_INTEGER(f);
        else if (f && YAJL_IS_TRUE(f))
            n = 1;
        else if (f && YAJL_IS_FALSE(f))
            n = 0;
        yajl_tree_free(v);
    }
    sx_resp_free(&r);
    return n;
}

static bool metrics_have(const sx_srv *srv, const char *line)
{
    sx_resp r;
    const char *h[] = {NULL};
    bool has = sx_srv_request(srv, SX_ADMIN, "GET", "/metrics", h, NULL, 0, &r) == 0 && strstr(r.body, line);
    sx_resp_free(&r);
    return has;
}

static void sweeper_purges_what_is_past_the_recovery_window(void)
{
    sx_srv srv;
    own o;
    REQUIRE(own_start(&o, &srv, g_backend, "recovery_window = 2s\nsweep_interval = 1s\n", NULL, false, NULL) == 0);
    const char *env = "expiry";
    make(env, "short", (const char *const[]){"s1", "s2", NULL});
    CHECK_INT(del(SX_H1, env, "short"), 200);
    EXPECT_DELETED(SX_H1, env, "short:2");
    CHECK(deleted_becomes(env, ""));
    CHECK_INT(restore(SX_H1, env, "short", true), 404);
    CHECK(status_sweeper_int(&srv, "purged") >= 1);
    CHECK(metrics_have(&srv, "secretsd_deleted_secrets_purged_total 1\n"));
    CHECK(metrics_have(&srv, "secretsd_deleted_secrets 0\n"));
    /* the purge is in the audit log, done by the sweeper */
    char *audit = sx_test_path(srv.dir, "audit.log");
    CHECK(sx_test_file_wait(audit, "\"client\":\"sweeper\"", 5000));
    char *text = sx_test_read_file(audit, NULL);
    CHECK(text && strstr(text, "\"action\":\"secret.purge\"") && strstr(text, "\"name\":\"short\""));
    free(text);
    free(audit);
    own_end(&o);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 60), 0);

    /* recovery_window = 0: a delete destroys at once, as before deleted secrets were kept */
    REQUIRE(own_start(&o, &srv, g_backend, "recovery_window = 0\n", NULL, false, NULL) == 0);
    make(env, "now", (const char *const[]){"n1", NULL});
    CHECK_INT(del(SX_H1, env, "now"), 200);
    EXPECT_DELETED(SX_H1, env, "");
    CHECK_INT(restore(SX_H1, env, "now", true), 404);
    own_end(&o);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 60), 0);
}

static void a_sweep_killed_between_two_purges_resumes_after_a_restart(void)
{
    char *pause = sx_test_tmpdir("trash-pause");
    char hold[600], envv[700];
    snprintf(hold, sizeof(hold), "%s/sweep.purged.hold", pause);
    snprintf(envv, sizeof(envv), "SECRETSD_TEST_PAUSE_DIR=%s", pause);
    const char *env_list[] = {envv, NULL};
    const char *backend = strcmp(g_backend, "memory") == 0 ? "rocksdb" : g_backend; /* it must outlive a kill */
    sx_srv srv;
    own o;
    REQUIRE(own_start(&o, &srv, backend, "recovery_window = 1s\nsweep_interval = 1s\n", env_list, true, NULL) == 0);
    const char *env = "killed";
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        make(env, name, (const char *const[]){"v", NULL});
    }
    CHECK(sx_test_write_file(hold, "", 0) == 0); /* the sweeper stops after its first purge */
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        CHECK_INT(del(SX_H1, env, name), 200);
    }
    char paused[600];
    snprintf(paused, sizeof(paused), "%s/sweep.purged.paused", pause);
    CHECK(sx_test_wait_for_file(paused, 30000));
    char got[512];
    deleted_of(SX_H1, env, got, sizeof(got));
    CHECK_STR(got, "k1:1,k2:1,k3:1,k4:1"); /* one purged (in name order), four left */
    own_end(&o);
    char *dir = strdup(srv.dir);
    sx_srv_stop(&srv, SIGKILL, 10);
    unlink(hold);
    /* the same store again: the sweep at start-up purges the rest */
    REQUIRE(own_start(&o, &srv, backend, "recovery_window = 1s\nsweep_interval = 1s\n", NULL, false, dir) == 0);
    CHECK(deleted_becomes(env, ""));
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        CHECK_INT(restore(SX_H1, env, name, true), 404);
    }
    own_end(&o);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 60), 0);
    free(dir);
    sx_test_rmtree(pause);
    free(pause);
}

/* ---- destroyed means gone ------------------------------------------------------------------------ */

/* 32 random bytes of a record's ciphertext: its nonce and what follows. As the store holds them, a
 * value record has 18 bytes before the nonce (the backend's 9-byte revision header, the blob's 9),
 * a history record 10 more (its own header). Random bytes stay as they are in a table file,
 * compressed block or not, where headers may not. */
#define NEEDLE 32

typedef struct needle {
    const char *key;
    uint8_t bytes[NEEDLE];
    bool found;
} needle;

/* Find each needle's key in a dump of the store and take NEEDLE bytes of its ciphertext (the dump
 * writes a key, a newline, its value and a newline). */
static bool needles_from_dump(const char *db, needle *n, size_t count)
{
    sx_test_buf dump = {0};
    if (sx_test_rocksdb_dump(db, &dump) != 0)
        return false;
    bool all = true;
    for (size_t i = 0; i < count; i++) {
        const char *at = NULL;
        size_t kl = strlen(n[i].key);
        size_t skip = n[i].key[0] == 'h' ? 28 : 18;
        for (size_t off = 0; dump.data && off + kl + 1 + skip + NEEDLE <= dump.len; off++)
            if (memcmp(dump.data + off, n[i].key, kl) == 0 && dump.data[off + kl] == '\n' &&
                (off == 0 || dump.data[off - 1] == '\n')) {
                at = dump.data + off + kl + 1 + skip;
                break;
            }
        n[i].found = at != NULL;
        all = all && at;
        if (!at)
            fprintf(stderr, "no record %s in the store\n", n[i].key);
        if (at)
            memcpy(n[i].bytes, at, NEEDLE);
    }
    free(dump.data);
    return all;
}

/* How many needles the raw files under dir hold. */
static size_t needles_in_files(const char *dir, const needle *n, size_t count)
{
    char *out = NULL;
    if (sx_test_sh(&out, "find '%s' -type f", dir) != 0 || !out) {
        free(out);
        return (size_t)-1;
    }
    bool *seen = calloc(count, sizeof(*seen));
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        size_t len = 0;
        char *data = sx_test_read_file(line, &len);
        for (size_t i = 0; data && i < count; i++)
            if (!seen[i] && sx_test_memmem(data, len, n[i].bytes, NEEDLE))
                seen[i] = true;
        free(data);
    }
    size_t hits = 0;
    for (size_t i = 0; i < count; i++)
        hits += seen[i];
    free(seen);
    free(out);
    return hits;
}

static void destroyed_and_purged_ciphertext_leaves_the_rocksdb_files(void)
{
    if (strcmp(g_backend, "rocksdb") != 0) {
        fprintf(stderr, "a RocksDB test: skipped for %s\n", g_backend);
        return;
    }
    sx_srv srv;
    own o;
    const char *cfg = "max_versions = 3\nrecovery_window = 1h\n";
    REQUIRE(own_start(&o, &srv, "rocksdb", cfg, NULL, true, NULL) == 0);
    const char *env = "canary";
    make(env, "pruned", (const char *const[]){"p1", "p2", "p3", NULL});
    make(env, "destroyed", (const char *const[]){"d1", "d2", NULL});
    make(env, "purged", (const char *const[]){"x1", "x2", NULL});
    make(env, "kept", (const char *const[]){"k1", NULL});
    own_end(&o);
    char *dir = strdup(srv.dir);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 60), 0);
    char db[600];
    snprintf(db, sizeof(db), "%s/data", dir);
    needle gone[] = {
        {.key = "h/acme/web/canary/pruned/00000001"},    /* leaves the window with the next write */
        {.key = "h/acme/web/canary/destroyed/00000001"}, /* destroyed by number */
        {.key = "h/acme/web/canary/purged/00000001"},    /* deleted, then purged */
        {.key = "v/acme/web/canary/purged"},
    };
    needle kept[] = {{.key = "v/acme/web/canary/kept"}, {.key = "v/acme/web/canary/destroyed"}};
    size_t ngone = sizeof(gone) / sizeof(gone[0]), nkept = sizeof(kept) / sizeof(kept[0]);
    REQUIRE(needles_from_dump(db, gone, ngone) && needles_from_dump(db, kept, nkept));
    /* the control: before anything is destroyed, the files hold every one */
    CHECK_INT(needles_in_files(db, gone, ngone), ngone);
    CHECK_INT(needles_in_files(db, kept, nkept), nkept);

    REQUIRE(own_start(&o, &srv, "rocksdb", cfg, NULL, true, dir) == 0);
    CHECK_INT(set_value(env, "pruned", "\"p4\""), 200); /* version 1 leaves the window of 3 */
    char path[512];
    CHECK_INT(call(SX_H1, "DELETE", spath(path, sizeof(path), env, "destroyed", "/versions/1"), NULL), 200);
    CHECK_INT(del(SX_H1, env, "purged"), 200);
    CHECK_INT(call(SX_H1, "DELETE", dpath(path, sizeof(path), env, "purged", NULL), NULL), 200);
    long long before = status_sweeper_int(&srv, "compactions");
    CHECK(status_sweeper_int(&srv, "compaction") == 1);
    bool done = false;
    for (int i = 0; i < 300 && !done; i++) {
        done = status_sweeper_int(&srv, "compactionPending") == 0 && status_sweeper_int(&srv, "compactions") > before;
        if (!done)
            sx_test_sleep_ms(100);
    }
    CHECK(done);
    /* while the server still runs, and after it stopped: none of the destroyed ciphertext is left */
    CHECK_INT(needles_in_files(db, gone, ngone), 0);
    EXPECT_REVEAL(SX_H1, env, "kept", 0, "k1");
    EXPECT_REVEAL(SX_H1, env, "destroyed", 2, "d2");
    own_end(&o);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 60), 0);
    CHECK_INT(needles_in_files(db, gone, ngone), 0);
    CHECK_INT(needles_in_files(db, kept, nkept), nkept);
    sx_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"deleted_secret_is_hidden_listed_and_restored_with_every_version",
         deleted_secret_is_hidden_listed_and_restored_with_every_version},
        {"restore_onto_a_recreated_name_is_409_and_a_second_delete_replaces_the_older_copy",
         restore_onto_a_recreated_name_is_409_and_a_second_delete_replaces_the_older_copy},
        {"purge_destroys_a_deleted_secret_now", purge_destroys_a_deleted_secret_now},
        {"each_role_gets_the_expected_status_on_the_deleted_secret_endpoints",
         each_role_gets_the_expected_status_on_the_deleted_secret_endpoints},
        {"env_rotation_re_encrypts_deleted_secrets_and_destroys_the_old_key",
         env_rotation_re_encrypts_deleted_secrets_and_destroys_the_old_key},
        {"sweeper_purges_what_is_past_the_recovery_window", sweeper_purges_what_is_past_the_recovery_window},
        {"a_sweep_killed_between_two_purges_resumes_after_a_restart",
         a_sweep_killed_between_two_purges_resumes_after_a_restart},
        {"destroyed_and_purged_ciphertext_leaves_the_rocksdb_files",
         destroyed_and_purged_ciphertext_leaves_the_rocksdb_files},
        {"server_exits_0_at_sigterm", server_exits_0_at_sigterm},
    };
    return sx_api_suite_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv,
                             (sx_srv_opts){.extra_secrets = "max_versions = 3\nrecovery_window = 1h\n"});
}
