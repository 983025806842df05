/*
 * test_pgstart.c - a secretsd node on PostgreSQL started before its database is up (a host that
 * boots both, a database restarting after a crash) waits for it with backoff, bounded by [storage]
 * start_timeout, instead of exiting:
 *
 *  - started while the database is down, the node logs that it is waiting, and serves once the
 *    database comes up; started again after a crash-like stop of the database, it waits again
 *    and serves what was written before;
 *  - started while the database is up but still in start-up (in recovery, refusing connections
 *    with "the database system is not accepting connections"), it waits until it accepts;
 *  - with the database down for longer than start_timeout, start-up fails with a clear reason.
 *
 * Each test starts its own PostgreSQL server (tests/lib/pgtest.h) and the real secretsd binary.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops_util.h"
#include "pgtest.h"
#include "testutil.h"

#define WAITING_LINE "the database is not accepting connections yet"

static int g_skip;

typedef struct db {
    sx_pgtest pg;
    char *dir; /* the node's folder: config, seal key, password file, stderr.log */
    char storage[1024];
} db;

static bool db_up(db *d, const char *extra)
{
    memset(d, 0, sizeof(*d));
    int r = sx_pgtest_start(&d->pg);
    if (r == SX_PGTEST_SKIP)
        g_skip = 1;
    if (r != 0)
        return false;
    d->dir = sx_test_tmpdir("pgstart");
    char pwfile[600], dsn[256];
    snprintf(pwfile, sizeof(pwfile), "%s/dbpassword", d->dir);
    if (sx_test_write_file(pwfile, d->pg.password, strlen(d->pg.password)) != 0)
        return false;
    sx_pgtest_dsn(&d->pg, "postgres", dsn, sizeof(dsn));
    snprintf(d->storage, sizeof(d->storage), "dsn = \"%s\"\npassword_file = %s\n%s", dsn, pwfile, extra);
    return true;
}

static void db_down(db *d)
{
    sx_pgtest_stop(&d->pg);
    if (d->dir) {
        sx_test_rmtree(d->dir);
        free(d->dir);
    }
}

static int node_start(db *d, sx_srv *srv)
{
    return sx_srv_start(srv, &(sx_srv_opts){.backend = "postgres", .dir = d->dir, .extra_storage = d->storage});
}

/* How often the node's log says it is waiting for the database. */
static int waiting_lines(const db *d)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/stderr.log", d->dir);
    char *log = sx_test_read_file(path, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, WAITING_LINE)) != NULL; p++)
        n++;
    free(log);
    return n;
}

typedef struct resumer {
    db *d;
    int (*up)(sx_pgtest *pg); /* what brings the database up */
    int lines;                /* waiting lines seen before it did */
    int rc;
} resumer;

/* Bring the database up once the node has logged twice that it waits for it (or after 30 s). */
static void *resume_main(void *arg)
{
    resumer *x = arg;
    for (int i = 0; i < 3000 && (x->lines = waiting_lines(x->d)) < 2; i++)
        sx_test_sleep_ms(10);
    x->rc = x->up(&x->d->pg);
    return NULL;
}

static long call(const sx_srv *srv, const char *auth, const char *method, const char *path, const char *json,
                 char **ret_body)
{
    return sx_srv_call(srv, auth, method, path, json, ret_body);
}

/* Start the node while the database is not up; up() brings it up once the node waits. */
static bool start_while_down(db *d, sx_srv *srv, int (*up)(sx_pgtest *pg))
{
    resumer x = {.d = d, .up = up};
    pthread_t th;
    if (pthread_create(&th, NULL, resume_main, &x) != 0)
        return false;
    int r = node_start(d, srv);
    pthread_join(th, NULL);
    fprintf(stderr, "node start: %d after %d waiting lines; database start: %d\n", r, x.lines, x.rc);
    CHECK_INT(x.rc, 0);
    CHECK(x.lines >= 2);
    return r == 0;
}

static void a_node_started_before_its_database_waits_and_then_serves(void)
{
    db d;
    if (!db_up(&d, "start_timeout = 60\n")) {
        if (!g_skip)
            CHECK(!"database up");
        db_down(&d);
        return;
    }
    sx_srv srv;
    /* First start of the node, on a database that is not up yet. */
    REQUIRE(sx_pgtest_halt(&d.pg, false) == 0);
    if (!start_while_down(&d, &srv, sx_pgtest_resume)) {
        CHECK(!"node serves after waiting for the database");
        sx_srv_stop(&srv, SIGTERM, 30);
        db_down(&d);
        return;
    }
    char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(token);
    char auth[512];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    CHECK_INT(call(&srv, auth, "POST", "/acme/web/envs/prod/secrets", "{\"kind\":\"secret\",\"name\":\"k\"}", NULL),
              201);
    CHECK_INT(call(&srv, auth, "PUT", "/acme/web/envs/prod/secrets/k/value", "{\"value\":\"kept\"}", NULL), 200);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);

    /* The database stops crash-like (it recovers from its WAL at the next start) and the node is
     * started again before it is back. */
    REQUIRE(sx_pgtest_halt(&d.pg, true) == 0);
    if (start_while_down(&d, &srv, sx_pgtest_resume)) {
        char *body = NULL;
        CHECK_INT(call(&srv, auth, "GET", "/acme/web/envs/prod/secrets/k/value", NULL, &body), 200);
        CHECK(body && strstr(body, "\"value\":\"kept\""));
        free(body);
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    } else {
        CHECK(!"node serves after waiting for the database again");
        sx_srv_stop(&srv, SIGTERM, 30);
    }
    free(token);
    db_down(&d);
}

/* The database is up but still in start-up (in recovery, refusing every connection) when the
 * node starts; it ends its recovery once the node waits. */
static void a_node_started_while_its_database_is_starting_up_waits_and_then_serves(void)
{
    db d;
    if (!db_up(&d, "start_timeout = 60\n")) {
        if (!g_skip)
            CHECK(!"database up");
        db_down(&d);
        return;
    }
    sx_srv srv;
    REQUIRE(sx_pgtest_halt(&d.pg, true) == 0);
    REQUIRE(sx_pgtest_resume_starting(&d.pg) == 0);
    if (start_while_down(&d, &srv, sx_pgtest_promote)) {
        char path[700];
        snprintf(path, sizeof(path), "%s/stderr.log", d.dir);
        char *log = sx_test_read_file(path, NULL);
        CHECK(log && strstr(log, "not accepting connections"));
        free(log);
        char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
        CHECK(token != NULL);
        char auth[512];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
        CHECK_INT(call(&srv, auth, "POST", "/acme/web/envs/prod/secrets", "{\"kind\":\"secret\",\"name\":\"k\"}", NULL),
                  201);
        free(token);
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    } else {
        CHECK(!"node serves after waiting for the database's start-up");
        sx_srv_stop(&srv, SIGTERM, 30);
    }
    db_down(&d);
}

static void a_node_gives_up_after_start_timeout_while_the_database_stays_down(void)
{
    db d;
    if (!db_up(&d, "start_timeout = 1\n")) {
        if (!g_skip)
            CHECK(!"database up");
        db_down(&d);
        return;
    }
    REQUIRE(sx_pgtest_halt(&d.pg, false) == 0);
    sx_srv srv;
    CHECK(node_start(&d, &srv) != 0);
    sx_srv_stop(&srv, SIGTERM, 10);
    char path[700];
    snprintf(path, sizeof(path), "%s/stderr.log", d.dir);
    char *log = sx_test_read_file(path, NULL);
    CHECK(log && strstr(log, WAITING_LINE));
    CHECK(log && strstr(log, "cannot open storage"));
    CHECK(log && !strstr(log, d.pg.password));
    free(log);
    db_down(&d);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"a_node_started_before_its_database_waits_and_then_serves",
         a_node_started_before_its_database_waits_and_then_serves},
        {"a_node_started_while_its_database_is_starting_up_waits_and_then_serves",
         a_node_started_while_its_database_is_starting_up_waits_and_then_serves},
        {"a_node_gives_up_after_start_timeout_while_the_database_stays_down",
         a_node_gives_up_after_start_timeout_while_the_database_stays_down},
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int r = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return g_skip && r == 0 ? SX_PGTEST_SKIP : r;
}
