/*
 * test_pgasync.c - on PostgreSQL a node's reads never hold up its event loop:
 *
 *  - while reads wait for a database that holds a lock on the records table, the same node (one
 *    loop thread, so there is no other loop to answer) still answers /healthz (HTTP/1.1 and h2c),
 *    an unknown route, and a request whose token its cache already knows to be wrong; the waiting
 *    reads are answered once the lock goes; the same for the Vault KV v2 reads (a secret, an env's
 *    map, a secret's metadata, a LIST);
 *  - a read waiting for the database when the database goes away is answered 503 in the JSON error
 *    form, and the node serves reads again once the database is back (and stops cleanly: no request
 *    was left behind);
 *  - /v1/status and /metrics name the database server the node is connected to, say it is a
 *    primary, and count the reconnects after the database's operator ends the node's sessions.
 *
 * "Waiting" is observed in the database (pg_stat_activity: the node's sessions waiting for a lock),
 * never measured by a clock. Each test starts its own PostgreSQL server (tests/lib/pgtest.h) through
 * the harness and the real secretsd binary.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pgtest.h"
#include "testutil.h"

#define SECRET_PATH "/acme/web/envs/prod/secrets/DB_URL"
#define READS       4

static int g_skip;

/* A connection of the test's own to the node's database. */
static PGconn *db_connect(const sx_pgtest *pg)
{
    char dsn[256], full[400];
    sx_pgtest_dsn(pg, "postgres", dsn, sizeof(dsn));
    snprintf(full, sizeof(full), "%s password=%s", dsn, pg->password);
    PGconn *c = PQconnectdb(full);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "test connection: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static bool db_run(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(res);
    return ok;
}

/* How many of the node's sessions wait for a lock now. */
static int waiting_sessions(PGconn *c)
{
    PGresult *res = PQexec(c, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'secretsd' "
                              "AND wait_event_type = 'Lock'");
    int n = PQresultStatus(res) == PGRES_TUPLES_OK ? atoi(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return n;
}

/* Wait (polling, up to about 60 s) until at least n of the node's sessions wait for a lock. */
static bool until_waiting(PGconn *c, int n)
{
    for (int i = 0; i < 6000; i++) {
        if (waiting_sessions(c) >= n)
            return true;
        sx_test_sleep_ms(10);
    }
    return false;
}

typedef struct reader {
    const sx_srv *srv;
    const char *auth;
    const char *path;
    const char *method; /* NULL: GET */
    sx_resp resp;
    int rc;
} reader;

static void *reader_main(void *arg)
{
    reader *x = arg;
    const char *h[] = {x->auth, NULL};
    x->rc = sx_srv_request(x->srv, SX_H1, x->method ? x->method : "GET", x->path, h, NULL, 0, &x->resp);
    return NULL;
}

static long call(const sx_srv *srv, sx_proto proto, const char *auth, const char *method, const char *path,
                 const char *json, sx_resp *ret)
{
    const char *h[] = {"Content-Type: application/json", auth, NULL};
    sx_resp r;
    long st = 0;
    if (sx_srv_request(srv, proto, method, path, h, json, json ? strlen(json) : 0, &r) == 0)
        st = r.status;
    if (ret)
        *ret = r;
    else
        sx_resp_free(&r);
    return st;
}

/* A node on its own database, one loop thread, with a token that can write and read acme/web/prod
 * and a secret with a value; the token is in the loop's cache. */
static bool node_start(sx_srv *srv, char **ret_auth, char *ret_id)
{
    int r = sx_srv_start(srv, &(sx_srv_opts){.backend = "postgres", .threads = 1});
    if (r == SX_PGTEST_SKIP)
        g_skip = 1;
    if (r != 0)
        return false;
    char *tok = sx_srv_mint_token(srv, "acme", "web", "prod", "owner", ret_id);
    if (!tok)
        return false;
    *ret_auth = sx_auth_header(tok);
    free(tok);
    CHECK_INT(call(srv, SX_H1, *ret_auth, "POST", "/acme/web/envs/prod/secrets",
                   "{\"kind\":\"secret\",\"name\":\"DB_URL\",\"description\":\"primary\"}", NULL),
              201);
    CHECK_INT(call(srv, SX_H1, *ret_auth, "PUT", SECRET_PATH "/value", "{\"value\":\"postgres://x\"}", NULL), 200);
    CHECK_INT(call(srv, SX_H1, *ret_auth, "GET", SECRET_PATH, NULL, NULL), 200);
    return true;
}

/* node_start(), or false (a failed check unless PostgreSQL is missing: skipped) with the node
 * stopped and nothing left to free. */
static bool node_up(sx_srv *srv, char **ret_auth, char *ret_id)
{
    *ret_auth = NULL;
    if (node_start(srv, ret_auth, ret_id))
        return true;
    if (!g_skip)
        CHECK(!"node up");
    sx_srv_stop(srv, SIGTERM, 10);
    free(*ret_auth);
    *ret_auth = NULL;
    return false;
}

/* Run the n readers while a transaction of the test's holds a lock on the records table: once all n
 * of the node's sessions wait for it, the loop must still answer /healthz (HTTP/1.1 and h2c) and
 * whatever meanwhile(srv, token_id) checks (may be NULL); then the lock goes and every reader is
 * joined, its answer in readers[i].resp for the caller to check and free. */
static void reads_waiting_on_a_lock(sx_srv *srv, reader *readers, int n,
                                    void (*meanwhile)(sx_srv *srv, const char *token_id), const char *token_id)
{
    PGconn *lock = db_connect(srv->pg), *watch = db_connect(srv->pg);
    REQUIRE(lock && watch);
    REQUIRE(db_run(lock, "BEGIN") && db_run(lock, "LOCK TABLE secretsd_records IN ACCESS EXCLUSIVE MODE"));
    pthread_t th[READS];
    REQUIRE(n <= READS);
    for (int i = 0; i < n; i++)
        REQUIRE(pthread_create(&th[i], NULL, reader_main, &readers[i]) == 0);
    CHECK(until_waiting(watch, n));

    /* The loop answers what needs no read meanwhile. */
    CHECK_INT(call(srv, SX_H1, NULL, "GET", "/healthz", NULL, NULL), 200);
    CHECK_INT(call(srv, SX_H2C, NULL, "GET", "/healthz", NULL, NULL), 200);
    if (meanwhile)
        meanwhile(srv, token_id);
    CHECK_INT(waiting_sessions(watch), n); /* the reads were still waiting all along */

    REQUIRE(db_run(lock, "ROLLBACK"));
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(readers[i].rc, 0);
    }
    PQfinish(lock);
    PQfinish(watch);
}

/* token_id: the cached token's id, for a request with a wrong secret. */
static void route_and_cached_token_answered(sx_srv *srv, const char *token_id)
{
    char bad[200];
    CHECK_INT(call(srv, SX_H1, NULL, "GET", "/no/such/route", NULL, NULL), 404);
    snprintf(bad, sizeof(bad), "Authorization: Bearer sxt_%s_%s", token_id,
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); /* the cached id, a wrong secret */
    sx_resp r;
    CHECK_INT(call(srv, SX_H1, bad, "GET", SECRET_PATH, NULL, &r), 401);
    CHECK(sx_resp_is_error(&r, "unauthorized"));
    sx_resp_free(&r);
}

static void reads_waiting_for_a_locked_database_leave_health_and_cached_token_failures_answered(void)
{
    sx_srv srv;
    char *auth = NULL, id[33];
    if (!node_up(&srv, &auth, id))
        return;
    /* Metadata reads, a list, a reveal and the values map, all waiting for the lock. */
    static const char *const paths[READS] = {SECRET_PATH, "/acme/web/envs/prod/secrets", SECRET_PATH "/value",
                                             "/acme/web/envs/prod/values"};
    reader readers[READS];
    for (int i = 0; i < READS; i++)
        readers[i] = (reader){.srv = &srv, .auth = auth, .path = paths[i]};
    reads_waiting_on_a_lock(&srv, readers, READS, route_and_cached_token_answered, id);
    for (int i = 0; i < READS; i++) {
        CHECK_INT(readers[i].resp.status, 200);
        if (i == 2)
            CHECK(readers[i].resp.body && strstr(readers[i].resp.body, "postgres://x"));
        sx_resp_free(&readers[i].resp);
    }
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(auth);
}

static void vault_reads_wait_for_a_locked_database_while_the_loop_answers_health(void)
{
    sx_srv srv;
    char *auth = NULL, id[33];
    if (!node_up(&srv, &auth, id))
        return;
    /* The Vault KV v2 reads of the mount "acme" (the org's own name): a secret's value, the env's
     * map, a secret's metadata and a LIST of the env, all waiting for the lock. */
    reader readers[READS] = {
        {.srv = &srv, .auth = auth, .path = "/v1/acme/data/web/prod/DB_URL"},
        {.srv = &srv, .auth = auth, .path = "/v1/acme/data/web/prod"},
        {.srv = &srv, .auth = auth, .path = "/v1/acme/metadata/web/prod/DB_URL"},
        {.srv = &srv, .auth = auth, .path = "/v1/acme/metadata/web/prod", .method = "LIST"},
    };
    reads_waiting_on_a_lock(&srv, readers, READS, NULL, NULL);
    static const char *const expect[READS] = {
        "{\"data\":{\"value\":\"postgres://x\"},\"metadata\":", "{\"data\":{\"DB_URL\":\"postgres://x\"},\"metadata\":",
        "\"current_version\":1", "{\"keys\":[\"DB_URL\"]}"};
    for (int i = 0; i < READS; i++) {
        CHECK_INT(readers[i].resp.status, 200);
        CHECK(readers[i].resp.body && strstr(readers[i].resp.body, expect[i]));
        sx_resp_free(&readers[i].resp);
    }
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(auth);
}

static void a_read_waiting_when_the_database_goes_away_is_503_and_the_node_serves_after(void)
{
    sx_srv srv;
    char *auth = NULL, id[33];
    if (!node_up(&srv, &auth, id))
        return;
    sx_pgtest *pg = srv.pg;
    PGconn *lock = db_connect(pg), *watch = db_connect(pg);
    REQUIRE(lock && watch);
    REQUIRE(db_run(lock, "BEGIN") && db_run(lock, "LOCK TABLE secretsd_records IN ACCESS EXCLUSIVE MODE"));
    reader rd = {.srv = &srv, .auth = auth, .path = SECRET_PATH};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, reader_main, &rd) == 0);
    CHECK(until_waiting(watch, 1));

    /* The database stops (like a crash) under the waiting read, the lock still held. */
    REQUIRE(sx_pgtest_halt(pg, true) == 0);
    PQfinish(lock);
    PQfinish(watch);
    pthread_join(th, NULL);
    CHECK_INT(rd.rc, 0);
    CHECK_INT(rd.resp.status, 503);
    CHECK(sx_resp_is_error(&rd.resp, "unavailable"));
    sx_resp_free(&rd.resp);
    CHECK_INT(call(&srv, SX_H1, NULL, "GET", "/healthz", NULL, NULL), 200);

    /* Back: reads are served again (after the node's reconnect backoff). */
    REQUIRE(sx_pgtest_resume(pg) == 0);
    long st = 0;
    for (int i = 0; i < 600 && st != 200; i++) {
        st = call(&srv, SX_H1, auth, "GET", SECRET_PATH, NULL, NULL);
        if (st != 200)
            sx_test_sleep_ms(50);
    }
    CHECK_INT(st, 200);
    sx_resp r;
    CHECK_INT(call(&srv, SX_H1, auth, "GET", SECRET_PATH "/value", NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "postgres://x"));
    sx_resp_free(&r);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(auth);
}

/* The body of an admin GET (malloc'd), or NULL. */
static char *admin_get(const sx_srv *srv, const char *path)
{
    sx_resp r;
    char *body = NULL;
    if (call(srv, SX_ADMIN, NULL, "GET", path, NULL, &r) == 200 && r.body)
        body = strdup(r.body);
    sx_resp_free(&r);
    return body;
}

static void status_and_metrics_name_the_database_and_count_a_reconnect_after_its_sessions_are_killed(void)
{
    sx_srv srv;
    char *auth = NULL, id[33];
    if (!node_up(&srv, &auth, id))
        return;
    sx_pgtest *pg = srv.pg;
    char want[200];
    char *st = admin_get(&srv, "/v1/status");
    snprintf(want, sizeof(want),
             "\"database\":{\"host\":\"127.0.0.1\",\"port\":%d,\"connected\":true,\"primary\":true,"
             "\"reconnects\":0,\"lastFailoverAt\":null}",
             pg->port);
    CHECK(st && strstr(st, want));
    if (st && !strstr(st, want))
        fprintf(stderr, "status: %s\nwanted: %s\n", st, want);
    free(st);
    char *m = admin_get(&srv, "/metrics");
    snprintf(want, sizeof(want), "secretsd_db_info{host=\"127.0.0.1:%d\"} 1\n", pg->port);
    CHECK(m && strstr(m, want));
    CHECK(m && strstr(m, "\nsecretsd_db_primary 1\n"));
    CHECK(m && strstr(m, "\nsecretsd_db_reconnects_total 0\n"));
    CHECK(m && strstr(m, "\nsecretsd_db_last_failover_timestamp_seconds 0\n"));
    free(m);

    /* Every session of the node is ended by the database's operator: the next reads reconnect. */
    PGconn *c = db_connect(pg);
    REQUIRE(c);
    REQUIRE(db_run(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'secretsd'"));
    PQfinish(c);
    long code = 0;
    for (int i = 0; i < 200 && code != 200; i++) {
        code = call(&srv, SX_H1, auth, "GET", SECRET_PATH, NULL, NULL);
        if (code != 200)
            sx_test_sleep_ms(50);
    }
    CHECK_INT(code, 200);
    st = admin_get(&srv, "/v1/status");
    CHECK(st && strstr(st, "\"primary\":true"));
    CHECK(st && !strstr(st, "\"reconnects\":0,"));
    CHECK(st && strstr(st, "\"lastFailoverAt\":null")); /* the same server: no failover */
    free(st);
    m = admin_get(&srv, "/metrics");
    CHECK(m && strstr(m, want));
    CHECK(m && !strstr(m, "\nsecretsd_db_reconnects_total 0\n") && strstr(m, "\nsecretsd_db_reconnects_total "));
    free(m);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(auth);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"reads_waiting_for_a_locked_database_leave_health_and_cached_token_failures_answered",
         reads_waiting_for_a_locked_database_leave_health_and_cached_token_failures_answered},
        {"vault_reads_wait_for_a_locked_database_while_the_loop_answers_health",
         vault_reads_wait_for_a_locked_database_while_the_loop_answers_health},
        {"a_read_waiting_when_the_database_goes_away_is_503_and_the_node_serves_after",
         a_read_waiting_when_the_database_goes_away_is_503_and_the_node_serves_after},
        {"status_and_metrics_name_the_database_and_count_a_reconnect_after_its_sessions_are_killed",
         status_and_metrics_name_the_database_and_count_a_reconnect_after_its_sessions_are_killed},
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int r = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return g_skip && r == 0 ? SX_PGTEST_SKIP : r;
}
