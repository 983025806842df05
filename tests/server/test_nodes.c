/*
 * test_nodes.c - several secretsd nodes on one PostgreSQL database, and that database going away.
 *
 * Every test starts its own PostgreSQL server (tests/lib/pgtest.h) and two real secretsd binaries, A
 * and B, on one database with one seal key file - what an operator runs behind a load balancer.
 * A reads the database password from a file, B from the environment. What they pin:
 *
 *  - whatever a client does on one node is what the other serves (create, list, set, reveal,
 *    update, delete), and a token minted on one authenticates on the other;
 *  - a token revoked on A is refused by B within 2 s (tokens live in storage; the nodes'
 *    verification caches trust an entry for SX_AUTH_CACHE_TRUST_MS);
 *  - `master rotate` on A while clients hammer both nodes: no request fails, exactly one node runs
 *    the rotation, every data key ends up under the new master version and B serves values
 *    wrapped under it (also from a cold start);
 *  - a rotation left behind by a node that was SIGKILLed is finished by the other;
 *  - the database restarting (crash-like) under writes on both nodes: 503s while it is down, never
 *    a crash or another error, recovery on their own, and no acknowledged write lost;
 *  - both nodes auditing under load: each keeps its own chain (A under its configured node_id, B
 *    under one generated and kept next to its audit log, the same after a restart), each file
 *    verifies against its own node's head and names it, and a cut tail on B's file is caught while
 *    A's still verifies.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "ops_util.h"
#include "pgtest.h"
#include "storage/storage.h"
#include "testutil.h"

typedef struct cluster {
    sx_pgtest pg;
    char *shared; /* seal key and password file, used by both nodes */
    char dsn[256];
    char seal_key[512];
    char storage_a[1024], storage_b[1024];
    char env_b[128];
    sx_srv a, b;
    char *token; /* owner of org "acme", minted on A */
    char *dir_b; /* g_audit: B's folder, for a restart on it */
    char auth[512];
    bool up;
} cluster;

static int g_skip;
static bool g_audit; /* the nodes keep audit logs: A as node AUDIT_NODE_A, B with a generated id */
#define AUDIT_NODE_A "node-a.1"

static int start_node(cluster *c, sx_srv *srv, bool is_a)
{
    const char *env_b[] = {c->env_b, NULL};
    sx_srv_opts o = {.backend = "postgres",
                     .threads = 2,
                     .extra_storage = is_a ? c->storage_a : c->storage_b,
                     .seal_key = c->seal_key,
                     .extra_env = is_a ? NULL : env_b};
    if (g_audit) {
        o.extra_log = "audit_log = audit.log\n";
        o.extra_server = is_a ? "node_id = " AUDIT_NODE_A "\n" : NULL;
        o.keep_dir = true; /* restarted on its own folder; removed by cluster_down */
        o.dir = is_a ? NULL : c->dir_b;
    }
    return sx_srv_start(srv, &o);
}

static bool cluster_up(cluster *c)
{
    memset(c, 0, sizeof(*c));
    int r = sx_pgtest_start(&c->pg);
    if (r == SX_PGTEST_SKIP)
        g_skip = 1;
    if (r != 0)
        return false;
    if (sx_pgtest_createdb(&c->pg, "secretsd") != 0)
        return false;
    c->shared = sx_test_tmpdir("nodes");
    char pwfile[600];
    snprintf(pwfile, sizeof(pwfile), "%s/dbpassword", c->shared);
    if (sx_test_write_file(pwfile, c->pg.password, strlen(c->pg.password)) != 0)
        return false;
    sx_pgtest_dsn(&c->pg, "secretsd", c->dsn, sizeof(c->dsn));
    snprintf(c->seal_key, sizeof(c->seal_key), "%s/seal.key", c->shared);
    snprintf(c->storage_a, sizeof(c->storage_a), "dsn = \"%s\"\npassword_file = %s\n", c->dsn, pwfile);
    snprintf(c->storage_b, sizeof(c->storage_b), "dsn = \"%s\"\n", c->dsn);
    snprintf(c->env_b, sizeof(c->env_b), "SECRETSD_DB_PASSWORD=%s", c->pg.password);
    /* A first: it initialises the keyring and writes the seal key file that B then opens. */
    if (start_node(c, &c->a, true) != 0 || start_node(c, &c->b, false) != 0)
        return false;
    c->token = sx_srv_mint_token(&c->a, "acme", NULL, NULL, "owner", NULL);
    if (!c->token)
        return false;
    snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", c->token);
    c->up = true;
    return true;
}

static void cluster_down(cluster *c)
{
    c->a.own_dir = c->b.own_dir = true;
    if (c->a.pid)
        CHECK_INT(sx_srv_stop(&c->a, SIGTERM, 60), 0);
    else if (c->a.dir)
        sx_srv_stop(&c->a, SIGTERM, 60);
    if (c->b.pid)
        CHECK_INT(sx_srv_stop(&c->b, SIGTERM, 60), 0);
    else if (c->b.dir)
        sx_srv_stop(&c->b, SIGTERM, 60);
    sx_pgtest_stop(&c->pg);
    if (c->dir_b && !c->b.dir) /* B stopped by its test: its folder was kept */
        sx_test_rmtree(c->dir_b);
    free(c->dir_b);
    if (c->shared)
        sx_test_rmtree(c->shared);
    free(c->shared);
    free(c->token);
    /* Nothing of the database password in either node's log (nor anything else they wrote). */
}

/* cluster_up, or (skipped, or a failure counted) everything torn down again and false. */
static bool cluster_ready(cluster *c)
{
    if (cluster_up(c))
        return true;
    if (!g_skip)
        CHECK(!"cluster up");
    cluster_down(c);
    return false;
}

/* One request as the owner; returns the status, the body into *body (may be NULL). */
static long call(cluster *c, sx_srv *srv, const char *method, const char *path, const char *json, char **body)
{
    return sx_srv_call(srv, c->auth, method, path, json, body);
}

static bool log_has(const sx_srv *srv, const char *needle, int *ret_count)
{
    char *log = sx_test_read_file(srv->stderr_path, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(log);
    if (ret_count)
        *ret_count = n;
    return n > 0;
}

/* The password appears in neither node's stderr or access log. */
static void check_password_hygiene(cluster *c)
{
    const sx_srv *nodes[2] = {&c->a, &c->b};
    for (int i = 0; i < 2; i++) {
        const char *files[2] = {nodes[i]->stderr_path, nodes[i]->access_log};
        for (int f = 0; f < 2; f++) {
            size_t len = 0;
            char *text = sx_test_read_file(files[f], &len);
            if (text)
                CHECK(!sx_test_memmem(text, len, c->pg.password, strlen(c->pg.password)));
            free(text);
        }
    }
}

/* ---- one store, two doors ------------------------------------------------------------------------ */

static void what_one_node_writes_the_other_serves(void)
{
    cluster c;
    if (!cluster_ready(&c))
        return;
    char *body = NULL;
    CHECK_INT(call(&c, &c.a, "POST", "/acme/web/envs/prod/secrets",
                   "{\"kind\":\"secret\",\"name\":\"DB_URL\",\"description\":\"primary\"}", NULL),
              201);
    CHECK_INT(call(&c, &c.b, "GET", "/acme/web/envs/prod/secrets", NULL, &body), 200);
    CHECK(body && strstr(body, "\"name\":\"DB_URL\"") && strstr(body, "\"description\":\"primary\""));
    free(body);
    /* Creating it again on B: the name is taken, whichever node is asked. */
    CHECK_INT(call(&c, &c.b, "POST", "/acme/web/envs/prod/secrets", "{\"kind\":\"secret\",\"name\":\"DB_URL\"}", NULL),
              409);
    CHECK_INT(
        call(&c, &c.a, "PUT", "/acme/web/envs/prod/secrets/DB_URL/value", "{\"value\":\"postgres://db/1\"}", NULL),
        200);
    CHECK_INT(call(&c, &c.b, "GET", "/acme/web/envs/prod/secrets/DB_URL/value", NULL, &body), 200);
    CHECK(body && strstr(body, "\"value\":\"postgres://db/1\""));
    free(body);
    CHECK_INT(call(&c, &c.b, "PUT", "/acme/web/envs/prod/secrets/DB_URL",
                   "{\"kind\":\"secret\",\"name\":\"DB_URL\",\"description\":\"moved\"}", NULL),
              200);
    CHECK_INT(
        call(&c, &c.b, "PUT", "/acme/web/envs/prod/secrets/DB_URL/value", "{\"value\":\"postgres://db/2\"}", NULL),
        200);
    CHECK_INT(call(&c, &c.a, "GET", "/acme/web/envs/prod/values", NULL, &body), 200);
    CHECK(body && strstr(body, "\"DB_URL\":\"postgres://db/2\""));
    free(body);
    CHECK_INT(call(&c, &c.a, "GET", "/acme/web/envs/prod/secrets/DB_URL", NULL, &body), 200);
    CHECK(body && strstr(body, "\"description\":\"moved\""));
    free(body);
    CHECK_INT(call(&c, &c.b, "DELETE", "/acme/web/envs/prod/secrets/DB_URL", NULL, NULL), 200);
    CHECK_INT(call(&c, &c.a, "GET", "/acme/web/envs/prod/secrets/DB_URL", NULL, NULL), 404);
    CHECK_INT(call(&c, &c.a, "GET", "/acme/web/envs/prod/secrets/DB_URL/value", NULL, NULL), 404);
    /* A token minted on B works on A at once. */
    char *t = sx_srv_mint_token(&c.b, "acme", "web", "prod", "viewer", NULL);
    REQUIRE(t);
    char auth[512];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t);
    const char *h[] = {auth, NULL};
    sx_resp r;
    CHECK(sx_srv_request(&c.a, SX_H2C, "GET", "/acme/web/envs/prod/secrets", h, NULL, 0, &r) == 0 && r.status == 200);
    sx_resp_free(&r);
    free(t);
    /* Both nodes say they run on the shared store. */
    yajl_val v = ops_admin_json(&c.b, "GET", "/v1/status", NULL, 200);
    const char *sp[] = {"storage", NULL};
    yajl_val st = v ? yajl_tree_get(v, sp, yajl_t_string) : NULL;
    const char *name = st ? YAJL_GET_STRING(st) : NULL;
    CHECK(name && strcmp(name, "postgres") == 0);
    yajl_tree_free(v);
    check_password_hygiene(&c);
    /* B read its password from the environment, then wiped it there (what /proc/PID/environ shows). */
    char envpath[64];
    snprintf(envpath, sizeof(envpath), "/proc/%d/environ", (int)c.b.pid);
    size_t elen = 0;
    char *environ_b = sx_test_read_file(envpath, &elen);
    if (environ_b) /* unreadable when we are not root: the process is not dumpable */
        CHECK(!sx_test_memmem(environ_b, elen, c.pg.password, strlen(c.pg.password)));
    free(environ_b);
    cluster_down(&c);
}

/* A password file that others may read stops start-up with a clear message, before any connection. */
static void a_password_file_readable_by_others_stops_start_up(void)
{
    char *dir = sx_test_tmpdir("nodes-pw");
    char pw[600], storage[1024];
    snprintf(pw, sizeof(pw), "%s/dbpassword", dir);
    REQUIRE(sx_test_write_file(pw, "not-the-real-one-4711\n", 22) == 0);
    REQUIRE(chmod(pw, 0644) == 0);
    snprintf(storage, sizeof(storage), "dsn = \"host=127.0.0.1 port=9 dbname=x user=x\"\npassword_file = %s\n", pw);
    sx_srv srv;
    CHECK(sx_srv_start(&srv, &(sx_srv_opts){.backend = "postgres", .extra_storage = storage, .keep_dir = true}) != 0);
    char *log = sx_test_read_file(srv.stderr_path, NULL);
    CHECK(log && strstr(log, "chmod 600") && strstr(log, "cannot open storage"));
    CHECK(log && !strstr(log, "not-the-real-one-4711"));
    free(log);
    sx_test_rmtree(srv.dir);
    sx_srv_stop(&srv, SIGTERM, 10);
    sx_test_rmtree(dir);
    free(dir);
}

static void a_token_revoked_on_one_node_fails_on_the_other_within_2s(void)
{
    cluster c;
    if (!cluster_ready(&c))
        return;
    char id[40];
    char *t = sx_srv_mint_token(&c.a, "acme", NULL, NULL, "service", id);
    REQUIRE(t);
    char auth[512];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t);
    const char *h[] = {auth, NULL};
    /* B verifies it (from storage) and caches it on its loop threads. */
    for (int i = 0; i < 20; i++) {
        sx_resp r;
        CHECK(sx_srv_request(&c.b, i % 2 ? SX_H2C : SX_H1, "GET", "/acme/web/envs/prod/secrets", h, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1/tokens/%s", id);
    yajl_val v = ops_admin_json(&c.a, "DELETE", path, NULL, 200);
    CHECK(v != NULL);
    yajl_tree_free(v);
    double t0 = ((double)sx_clock_mono_ns() / 1e9), refused_after = -1;
    /* Poll B until it refuses the token: the deadline is generous, the promise is 2 s. */
    while (((double)sx_clock_mono_ns() / 1e9) - t0 < 15) {
        sx_resp r;
        int rc = sx_srv_request(&c.b, SX_H1, "GET", "/acme/web/envs/prod/secrets", h, NULL, 0, &r);
        long st = rc == 0 ? r.status : 0;
        sx_resp_free(&r);
        if (st == 401) {
            refused_after = ((double)sx_clock_mono_ns() / 1e9) - t0;
            break;
        }
        CHECK_INT(st, 200);
        sx_test_sleep_ms(20);
    }
    fprintf(stderr, "revoked on A, refused by B after %.3f s\n", refused_after);
    CHECK(refused_after >= 0 && refused_after < 2.0);
    /* The first refusal comes from whichever loop thread's cache entry aged out first; another
     * thread may trust its own entry for up to SX_AUTH_CACHE_TRUST_MS longer. The promise is 2 s
     * for every thread: from then on it stays refused, on every connection and thread of both
     * nodes. */
    double left = 2.0 - (((double)sx_clock_mono_ns() / 1e9) - t0);
    if (left > 0)
        sx_test_sleep_ms((int)(left * 1000) + 1);
    for (int i = 0; i < 10; i++) {
        sx_resp r;
        sx_srv *n = i % 2 ? &c.a : &c.b;
        CHECK(sx_srv_request(n, i % 4 < 2 ? SX_H2C : SX_H1, "GET", "/acme/web/envs/prod/secrets", h, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 401);
        sx_resp_free(&r);
    }
    free(t);
    cluster_down(&c);
}

/* ---- master rotation across nodes ---------------------------------------------------------------- */

#define ROT_ENVS 60

typedef struct hammer {
    cluster *c;
    sx_srv *srv;
    int id;
    atomic_bool *stop;
    long requests, failures;
} hammer;

static void hammer_fail(hammer *w, const char *what, long st, const char *body)
{
    if (w->failures++ < 10)
        fprintf(stderr, "client %d on %s: %s -> %ld %.200s\n", w->id, w->srv == &w->c->a ? "A" : "B", what, st,
                body ? body : "");
}

/* Reveal seeded values, set and reveal this client's own values, list: on one node. */
static void *hammer_main(void *arg)
{
    hammer *w = arg;
    ops_client cl;
    ops_client_init(&cl, w->srv, w->id % 2 == 1, w->c->token);
    for (int i = 0; !atomic_load(w->stop); i++) {
        char env[32], path[256], want[160], body[160], name[32];
        long st = 0;
        char *resp = NULL;
        int e = (i * 7 + w->id) % ROT_ENVS;
        snprintf(env, sizeof(env), "e%03d", e);
        snprintf(path, sizeof(path), "/acme/rot/envs/%s/secrets/S%d/value", env, e);
        char val[128];
        ops_value_of(val, sizeof(val), env, e);
        snprintf(want, sizeof(want), "\"value\":\"%s\"", val);
        ops_call(&cl, "GET", path, NULL, &st, &resp);
        w->requests++;
        if (st != 200 || !strstr(resp, want))
            hammer_fail(w, path, st, resp);
        free(resp);
        snprintf(name, sizeof(name), "C%d", w->id);
        snprintf(path, sizeof(path), "/acme/rot/envs/load/secrets/%s/value", name);
        snprintf(body, sizeof(body), "{\"value\":\"v%d-%d\"}", w->id, i);
        ops_call(&cl, "PUT", path, body, &st, &resp);
        w->requests++;
        if (st != 200)
            hammer_fail(w, path, st, resp);
        free(resp);
        ops_call(&cl, "GET", path, NULL, &st, &resp);
        w->requests++;
        snprintf(want, sizeof(want), "\"value\":\"v%d-%d\"", w->id, i);
        if (st != 200 || !strstr(resp, want))
            hammer_fail(w, path, st, resp);
        free(resp);
        ops_call(&cl, "GET", "/acme/rot/envs/load/secrets", NULL, &st, &resp);
        w->requests++;
        if (st != 200)
            hammer_fail(w, "list", st, resp);
        free(resp);
    }
    ops_client_clear(&cl);
    return NULL;
}

/* Every d/ record of the database wraps under master version want. */
static long data_keys_not_under(cluster *c, uint32_t want, long *ret_total)
{
    sx_storage_options so = {.backend = "postgres", .dsn = c->dsn, .password = c->pg.password, .sync = true};
    sx_storage *st = NULL;
    char err[256];
    if (sx_storage_open(&so, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    sx_storage_iter *it = NULL;
    long wrong = 0, total = 0;
    if (sx_storage_iter_new(st, "d/", 2, NULL, 0, 0, &it) == 0) {
        const void *v;
        size_t vl;
        while (sx_storage_iter_next(it, NULL, NULL, &v, &vl, NULL) == 0) {
            const uint8_t *b = v;
            uint32_t m = vl == 77 ? (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4] : 0;
            total++;
            wrong += m != want;
        }
        sx_storage_iter_free(it);
    }
    sx_storage_close(st);
    *ret_total = total;
    return wrong;
}

static int active_master(const sx_srv *srv)
{
    yajl_val v = ops_admin_json(srv, "GET", "/v1/status", NULL, 200);
    long long a = v ? ops_jint(v, "masterKey", "active", NULL) : -1;
    yajl_tree_free(v);
    return (int)a;
}

static void master_rotate_on_one_node_fails_no_request_on_either(void)
{
    cluster c;
    if (!cluster_ready(&c))
        return;
    /* Seeded through A, checked through B. */
    CHECK_INT(ops_seed(&c.a, c.token, "acme", "rot", "e%03d", NULL, ROT_ENVS, 4, false), 0);
    CHECK_INT(ops_seed(&c.b, c.token, "acme", "rot", "e%03d", NULL, ROT_ENVS, 4, true), 0);
    for (int i = 0; i < 4; i++) {
        char body[96];
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"C%d\"}", i);
        CHECK_INT(call(&c, i % 2 ? &c.b : &c.a, "POST", "/acme/rot/envs/load/secrets", body, NULL), 201);
    }
    atomic_bool stop;
    atomic_init(&stop, false);
    hammer w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (hammer){.c = &c, .srv = i % 2 ? &c.b : &c.a, .id = i, .stop = &stop};
        REQUIRE(pthread_create(&th[i], NULL, hammer_main, &w[i]) == 0);
    }
    sx_test_sleep_ms(300);
    yajl_val v = ops_admin_json(&c.a, "POST", "/v1/master/rotate", "{\"rate\":40}", 202);
    CHECK(v != NULL);
    yajl_tree_free(v);
    /* B sees the rotation in progress; a second one is refused on either node. */
    v = ops_admin_json(&c.b, "POST", "/v1/master/rotate", "{\"rate\":40}", 409);
    yajl_tree_free(v);
    CHECK(ops_wait_rotations_done(&c.b, 120));
    sx_test_sleep_ms(500); /* clients keep going a moment after the old version is gone */
    atomic_store(&stop, true);
    long requests = 0, failures = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        requests += w[i].requests;
        failures += w[i].failures;
    }
    fprintf(stderr, "load on both nodes during the rotation: %ld requests, %ld failed\n", requests, failures);
    CHECK(requests > 0);
    CHECK_INT(failures, 0);
    CHECK_INT(active_master(&c.a), 2);
    CHECK_INT(active_master(&c.b), 2);
    /* Exactly one node ran it, without conflicts. */
    int fa = 0, fb = 0, xa = 0, xb = 0;
    log_has(&c.a, "master-key rotation (version 1 -> 2) finished", &fa);
    log_has(&c.b, "master-key rotation (version 1 -> 2) finished", &fb);
    log_has(&c.a, "master-key rotation (version 1 -> 2) failed", &xa);
    log_has(&c.b, "master-key rotation (version 1 -> 2) failed", &xb);
    CHECK_INT(fa + fb, 1);
    CHECK_INT(xa + xb, 0);
    long total = 0;
    CHECK_INT(data_keys_not_under(&c, 2, &total), 0);
    CHECK(total >= ROT_ENVS);
    /* B, which loaded the keyring before the rotation, meets data keys under version 2 that it has
     * never unwrapped: a new env created through A. */
    CHECK_INT(call(&c, &c.a, "POST", "/acme/rot/envs/fresh/secrets", "{\"kind\":\"secret\",\"name\":\"N\"}", NULL),
              201);
    CHECK_INT(call(&c, &c.a, "PUT", "/acme/rot/envs/fresh/secrets/N/value", "{\"value\":\"new\"}", NULL), 200);
    char *body = NULL;
    CHECK_INT(call(&c, &c.b, "GET", "/acme/rot/envs/fresh/secrets/N/value", NULL, &body), 200);
    CHECK(body && strstr(body, "\"value\":\"new\""));
    free(body);
    /* A cold B (restarted: only version 2 in its keyring) serves every value. */
    CHECK_INT(sx_srv_stop(&c.b, SIGTERM, 60), 0);
    REQUIRE(start_node(&c, &c.b, false) == 0);
    CHECK_INT(ops_seed(&c.b, c.token, "acme", "rot", "e%03d", NULL, ROT_ENVS, 4, true), 0);
    check_password_hygiene(&c);
    cluster_down(&c);
}

/* Poll a node's master rotation until its sweep has handled at least min items. */
static bool rotation_progress(const sx_srv *srv, long long min, int timeout_s)
{
    double end = ((double)sx_clock_mono_ns() / 1e9) + timeout_s;
    while (((double)sx_clock_mono_ns() / 1e9) < end) {
        yajl_val v = ops_admin_json(srv, "GET", "/v1/rotations", NULL, 200);
        bool ok = false;
        if (v && YAJL_IS_ARRAY(v) && v->u.array.len > 0)
            ok = ops_jint(v->u.array.values[0], "done", NULL) >= min;
        yajl_tree_free(v);
        if (ok)
            return true;
        sx_test_sleep_ms(100);
    }
    return false;
}

static void a_rotation_left_by_a_killed_node_is_finished_by_the_other(void)
{
    cluster c;
    if (!cluster_ready(&c))
        return;
    CHECK_INT(ops_seed(&c.a, c.token, "acme", "rot", "e%03d", NULL, ROT_ENVS, 4, false), 0);
    yajl_val v = ops_admin_json(&c.a, "POST", "/v1/master/rotate", "{\"rate\":10}", 202);
    CHECK(v != NULL);
    yajl_tree_free(v);
    REQUIRE(rotation_progress(&c.b, 4, 60));
    int runs_a = 0;
    log_has(&c.a, "master-key rotation (from version 1) started", &runs_a);
    /* Whichever node runs it is killed; the other must take it over once the lease runs out. */
    sx_srv *victim = runs_a ? &c.a : &c.b, *other = runs_a ? &c.b : &c.a;
    sx_srv_stop(victim, SIGKILL, 10);
    CHECK(ops_wait_rotations_done(other, 120));
    CHECK(log_has(other, "master-key rotation (version 1 -> 2) taken over from another node", NULL));
    if (sx_test_failures) {
        char *log = sx_test_read_file(other->stderr_path, NULL);
        fprintf(stderr, "the other node's log:\n%s\n", log ? log : "");
        free(log);
    }
    CHECK(log_has(other, "master-key rotation (version 1 -> 2) finished", NULL));
    CHECK_INT(active_master(other), 2);
    long total = 0;
    CHECK_INT(data_keys_not_under(&c, 2, &total), 0);
    CHECK_INT(ops_seed(other, c.token, "acme", "rot", "e%03d", NULL, ROT_ENVS, 4, true), 0);
    cluster_down(&c);
}

/* ---- the database restarts ----------------------------------------------------------------------- */

#define WRITERS 4

typedef struct writer {
    cluster *c;
    sx_srv *srv;
    int id;
    atomic_bool *stop;
    atomic_int acked;     /* value index of the last acknowledged set */
    atomic_int attempted; /* value index of the last set sent */
    atomic_int unavailable;
    int other; /* answers other than 2xx and 503 "unavailable", or no answer */
    int created[256];
    int ncreated;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    ops_client cl;
    ops_client_init(&cl, w->srv, w->id % 2 == 1, w->c->token);
    for (int i = 1; !atomic_load(w->stop); i++) {
        char path[256], body[128];
        long st = 0;
        char *resp = NULL;
        snprintf(path, sizeof(path), "/acme/dr/envs/prod/secrets/W%d/value", w->id);
        snprintf(body, sizeof(body), "{\"value\":\"%d:%d\"}", w->id, i);
        atomic_store(&w->attempted, i);
        ops_call(&cl, "PUT", path, body, &st, &resp);
        if (st == 200)
            atomic_store(&w->acked, i);
        else if (st == 503 && resp && strstr(resp, "\"code\":\"unavailable\""))
            atomic_fetch_add(&w->unavailable, 1);
        else if (w->other++ < 5)
            fprintf(stderr, "writer %d: %s -> %ld %.200s\n", w->id, path, st, resp ? resp : "");
        free(resp);
        resp = NULL;
        if (i % 10 == 0 && w->ncreated < 256) {
            snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"N%d-%d\"}", w->id, i);
            ops_call(&cl, "POST", "/acme/dr/envs/prod/secrets", body, &st, &resp);
            if (st == 201)
                w->created[w->ncreated++] = i;
            else if (!(st == 503 && resp && strstr(resp, "\"code\":\"unavailable\"")) && w->other++ < 5)
                fprintf(stderr, "writer %d: create -> %ld %.200s\n", w->id, st, resp ? resp : "");
            free(resp);
        }
        if (st == 503)
            sx_test_sleep_ms(10);
    }
    ops_client_clear(&cl);
    return NULL;
}

static long readyz(const sx_srv *srv)
{
    sx_resp r;
    long st = sx_srv_request(srv, SX_H1, "GET", "/readyz", NULL, NULL, 0, &r) == 0 ? r.status : 0;
    sx_resp_free(&r);
    return st;
}

static void a_database_restart_gives_503s_then_recovers_losing_no_acknowledged_write(void)
{
    cluster c;
    if (!cluster_ready(&c))
        return;
    for (int i = 0; i < WRITERS; i++) {
        char body[96];
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"W%d\"}", i);
        CHECK_INT(call(&c, &c.a, "POST", "/acme/dr/envs/prod/secrets", body, NULL), 201);
    }
    atomic_bool stop;
    atomic_init(&stop, false);
    static writer w[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].c = &c;
        w[i].srv = i % 2 ? &c.b : &c.a;
        w[i].id = i;
        w[i].stop = &stop;
        REQUIRE(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
    }
    sx_test_sleep_ms(500);
    CHECK_INT(readyz(&c.a), 200);
    REQUIRE(sx_pgtest_halt(&c.pg, true) == 0); /* crash-like: recovery from the WAL */
    /* While it is down: /readyz and the API answer 503, the nodes stay up. */
    long ready_a = 0, ready_b = 0;
    for (int i = 0; i < 100 && (ready_a != 503 || ready_b != 503); i++) {
        ready_a = readyz(&c.a);
        ready_b = readyz(&c.b);
        sx_test_sleep_ms(50);
    }
    CHECK_INT(ready_a, 503);
    CHECK_INT(ready_b, 503);
    sx_test_sleep_ms(1000);
    int down503 = 0, before[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        down503 += atomic_load(&w[i].unavailable);
    REQUIRE(sx_pgtest_resume(&c.pg) == 0);
    for (int i = 0; i < WRITERS; i++)
        before[i] = atomic_load(&w[i].acked);
    bool recovered = false;
    for (int t = 0; t < 600 && !recovered; t++) { /* generous: 60 s */
        sx_test_sleep_ms(100);
        recovered = true;
        for (int i = 0; i < WRITERS; i++)
            recovered &= atomic_load(&w[i].acked) > before[i] + 5;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    CHECK(recovered);
    CHECK(down503 > 0);
    CHECK_INT(readyz(&c.a), 200);
    CHECK_INT(readyz(&c.b), 200);
    for (int i = 0; i < WRITERS; i++) {
        CHECK_INT(w[i].other, 0);
        /* The stored value is the last acknowledged one, or a later one whose answer was lost. */
        char path[128], *body = NULL;
        snprintf(path, sizeof(path), "/acme/dr/envs/prod/secrets/W%d/value", i);
        CHECK_INT(call(&c, i % 2 ? &c.a : &c.b, "GET", path, NULL, &body), 200);
        char want[32];
        snprintf(want, sizeof(want), "\"value\":\"%d:", i);
        const char *p = body ? strstr(body, want) : NULL;
        int idx = p ? atoi(p + strlen(want)) : -1;
        CHECK(idx >= atomic_load(&w[i].acked) && idx <= atomic_load(&w[i].attempted));
        free(body);
        for (int k = 0; k < w[i].ncreated; k++) {
            snprintf(path, sizeof(path), "/acme/dr/envs/prod/secrets/N%d-%d", i, w[i].created[k]);
            CHECK_INT(call(&c, &c.b, "GET", path, NULL, NULL), 200);
        }
    }
    CHECK(log_has(&c.a, "storage", NULL));
    check_password_hygiene(&c);
    cluster_down(&c); /* both exit 0: neither crashed */
}

/* ---- one audit chain per node ---------------------------------------------------------------------- */

typedef struct auditor {
    cluster *c;
    sx_srv *srv;
    int id;
    long failures;
} auditor;

#define AUDIT_ROUNDS 60

/* Writes and reveals of this client's own secret, on one node: audited intent and done lines. */
static void *auditor_main(void *arg)
{
    auditor *w = arg;
    for (int i = 0; i < AUDIT_ROUNDS; i++) {
        char path[128], body[64], want[64];
        snprintf(path, sizeof(path), "/acme/audit/envs/load/secrets/C%d/value", w->id);
        snprintf(body, sizeof(body), "{\"value\":\"v%d-%d\"}", w->id, i);
        snprintf(want, sizeof(want), "\"value\":\"v%d-%d\"", w->id, i);
        char *resp = NULL;
        if (call(w->c, w->srv, "PUT", path, body, NULL) != 200)
            w->failures++;
        if (call(w->c, w->srv, "GET", path, NULL, &resp) != 200 || !resp || !strstr(resp, want))
            w->failures++;
        free(resp);
    }
    return NULL;
}

/* secretsctl audit verify FILE on node srv (text, or --json); the exit status, its output in out. */
static int audit_verify(const sx_srv *srv, const char *file, bool json, char *out, size_t cap)
{
    char *text = NULL;
    int st = sx_test_sh(&text, "'%s' --socket '%s' %s audit verify '%s' 2>&1", SX_SECRETSCTL_PATH, srv->admin_socket,
                        json ? "--json" : "", file);
    snprintf(out, cap, "%s", text ? text : "");
    free(text);
    return st;
}

/* The file verifies on srv and says it is node's chain, in the text and in the JSON answer. */
static void expect_node_ok(const sx_srv *srv, const char *file, const char *node, const char *what)
{
    char out[4096], want[128];
    int st = audit_verify(srv, file, false, out, sizeof(out));
    snprintf(want, sizeof(want), "OK: node %s, ", node);
    if (st != 0 || strncmp(out, want, strlen(want)) != 0) {
        fprintf(stderr, "%s: verify exit %d, output %s (want %s...)\n", what, st, out, want);
        sx_test_failures++;
    }
    st = audit_verify(srv, file, true, out, sizeof(out));
    snprintf(want, sizeof(want), "\"node\":\"%s\"", node);
    if (st != 0 || !strstr(out, "\"ok\":true") || !strstr(out, want)) {
        fprintf(stderr, "%s: verify --json exit %d, answer %s (want %s)\n", what, st, out, want);
        sx_test_failures++;
    }
}

/* The node id in an audit file's open lines: every one names node (and there is at least one). */
static int open_lines_naming(const char *file, const char *node)
{
    char *log = sx_test_read_file(file, NULL);
    char want[128];
    snprintf(want, sizeof(want), "\"event\":\"audit.open\",\"prev\":\"");
    char named[128];
    snprintf(named, sizeof(named), "\"node\":\"%s\",\"time\"", node);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, want)) != NULL; p++) {
        const char *nl = strchr(p, '\n');
        const char *q = strstr(p, named);
        if (!q || (nl && q > nl)) {
            n = -1;
            break;
        }
        n++;
    }
    free(log);
    return n;
}

static void both_nodes_audit_under_load_each_to_its_own_chain(void)
{
    cluster c;
    g_audit = true;
    if (!cluster_ready(&c))
        return;
    char a_log[1100], b_log[1100], b_node_file[1100];
    snprintf(a_log, sizeof(a_log), "%s/audit.log", c.a.dir);
    snprintf(b_log, sizeof(b_log), "%s/audit.log", c.b.dir);
    snprintf(b_node_file, sizeof(b_node_file), "%s/audit.log.node", c.b.dir);
    c.dir_b = strdup(c.b.dir);
    /* B generated its id: 16 random bytes in hex and a newline, in a file only its owner reads. */
    size_t len = 0;
    char *b_id = sx_test_read_file(b_node_file, &len);
    REQUIRE(b_id && len == 33 && b_id[32] == '\n');
    b_id[32] = '\0';
    CHECK(strspn(b_id, "0123456789abcdef") == 32);
    struct stat sb;
    CHECK(stat(b_node_file, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    /* A has its configured id, and no file for a generated one. */
    char a_node_file[1100];
    snprintf(a_node_file, sizeof(a_node_file), "%s/audit.log.node", c.a.dir);
    CHECK(access(a_node_file, F_OK) != 0);

    CHECK_INT(call(&c, &c.a, "POST", "/acme/audit/envs/load/secrets", "{\"kind\":\"secret\",\"name\":\"X\"}", NULL),
              201);
    enum { CLIENTS = 4 };
    char name[32], json[96];
    for (int i = 0; i < CLIENTS; i++) {
        snprintf(name, sizeof(name), "C%d", i);
        snprintf(json, sizeof(json), "{\"kind\":\"secret\",\"name\":\"%s\"}", name);
        CHECK_INT(call(&c, i % 2 ? &c.b : &c.a, "POST", "/acme/audit/envs/load/secrets", json, NULL), 201);
    }
    /* Writes and reveals on both nodes at once: both chains grow and store their heads together. */
    auditor w[CLIENTS];
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        w[i] = (auditor){.c = &c, .srv = i % 2 ? &c.b : &c.a, .id = i};
        REQUIRE(pthread_create(&th[i], NULL, auditor_main, &w[i]) == 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(w[i].failures, 0);
    }
    sx_test_sleep_ms(300); /* the heads of the last batches */
    expect_node_ok(&c.a, a_log, AUDIT_NODE_A, "A's file on A");
    expect_node_ok(&c.b, b_log, b_id, "B's file on B");
    /* The chains share one MAC key: each node checks the other's file against the other's head. */
    expect_node_ok(&c.a, b_log, b_id, "B's file on A");
    expect_node_ok(&c.b, a_log, AUDIT_NODE_A, "A's file on B");
    CHECK_INT(open_lines_naming(a_log, AUDIT_NODE_A), 1);
    CHECK_INT(open_lines_naming(b_log, b_id), 1);

    /* B restarted keeps its generated id: its file goes on under the same node, and verifies. */
    CHECK_INT(sx_srv_stop(&c.b, SIGTERM, 60), 0);
    REQUIRE(start_node(&c, &c.b, false) == 0);
    char *again = sx_test_read_file(b_node_file, NULL);
    CHECK(again && strncmp(again, b_id, 32) == 0);
    free(again);
    CHECK_INT(call(&c, &c.b, "PUT", "/acme/audit/envs/load/secrets/C1/value", "{\"value\":\"after\"}", NULL), 200);
    sx_test_sleep_ms(300);
    CHECK_INT(open_lines_naming(b_log, b_id), 2);
    expect_node_ok(&c.a, b_log, b_id, "B's file after B's restart");

    /* Cut B's tail (B stopped, so its head names its last line): caught, and A's file still verifies. */
    CHECK_INT(sx_srv_stop(&c.b, SIGTERM, 60), 0);
    char *log = sx_test_read_file(b_log, &len);
    REQUIRE(log && len > 1);
    size_t cut = len - 1;
    for (int lines = 0; cut > 0 && lines < 3; cut--)
        if (log[cut - 1] == '\n' && ++lines == 3)
            break;
    CHECK_INT(sx_test_write_file(b_log, log, cut), 0);
    free(log);
    char out[4096];
    CHECK_INT(audit_verify(&c.a, b_log, true, out, sizeof(out)), 1);
    CHECK(strstr(out, "\"ok\":false") && strstr(out, "cut from the end"));
    snprintf(json, sizeof(json), "\"node\":\"%s\"", b_id);
    CHECK(strstr(out, json) != NULL);
    expect_node_ok(&c.a, a_log, AUDIT_NODE_A, "A's file after B's was cut");

    /* A file whose open lines name two nodes: B's first line spliced before A's file. */
    char mixed[1100];
    snprintf(mixed, sizeof(mixed), "%s/mixed.log", c.a.dir);
    char *a_text = sx_test_read_file(a_log, &len);
    char *b_text = sx_test_read_file(b_log, NULL);
    REQUIRE(a_text && b_text);
    char *b_first = strchr(b_text, '\n');
    REQUIRE(b_first);
    size_t blen = (size_t)(b_first - b_text) + 1;
    char *joined = malloc(blen + len);
    REQUIRE(joined);
    memcpy(joined, b_text, blen);
    memcpy(joined + blen, a_text, len);
    CHECK_INT(sx_test_write_file(mixed, joined, blen + len), 0);
    CHECK_INT(audit_verify(&c.a, mixed, true, out, sizeof(out)), 1);
    CHECK(strstr(out, "\"ok\":false") && strstr(out, "\"badLine\":2") && strstr(out, "two nodes"));
    free(joined);
    free(a_text);
    free(b_text);
    free(b_id);
    cluster_down(&c);
    g_audit = false;
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"what_one_node_writes_the_other_serves", what_one_node_writes_the_other_serves},
        {"a_password_file_readable_by_others_stops_start_up", a_password_file_readable_by_others_stops_start_up},
        {"a_token_revoked_on_one_node_fails_on_the_other_within_2s",
         a_token_revoked_on_one_node_fails_on_the_other_within_2s},
        {"master_rotate_on_one_node_fails_no_request_on_either", master_rotate_on_one_node_fails_no_request_on_either},
        {"a_rotation_left_by_a_killed_node_is_finished_by_the_other",
         a_rotation_left_by_a_killed_node_is_finished_by_the_other},
        {"a_database_restart_gives_503s_then_recovers_losing_no_acknowledged_write",
         a_database_restart_gives_503s_then_recovers_losing_no_acknowledged_write},
        {"both_nodes_audit_under_load_each_to_its_own_chain", both_nodes_audit_under_load_each_to_its_own_chain},
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int r = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return g_skip && r == 0 ? SX_PGTEST_SKIP : r;
}
