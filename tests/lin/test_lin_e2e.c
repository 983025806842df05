/*
 * test_lin_e2e.c - the real secretsd stays linearizable under concurrent clients, SIGKILLs and
 * key rotations.
 *
 * One node (RocksDB, or PostgreSQL on a throw-away database server) serves lin_load: several
 * clients, each with its own connection, creating, updating (with and without If-Match),
 * deleting, setting, getting and revealing a few secrets, recording every operation with its
 * times and outcome. Meanwhile the test SIGKILLs the server and starts it again on the same
 * port and data (lin_load's requests in flight become unknown outcomes, the next ones fail to
 * connect until it is back), and asks the admin socket for data-key and master-key rotations,
 * which re-encrypt the values under the clients' feet. Then lin_check's search (lin.h) must
 * find an order of all the operations that explains every answer.
 *
 * Usage: test_lin_e2e TEST [SECONDS]; the tests name the backend, the protocol and the length.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "harness.h"
#include "lin.h"
#ifdef SX_HAVE_PGTEST
#include "pgtest.h"
#endif
#include "testutil.h"

static int g_skip;

typedef struct run_opts {
    const char *backend; /* "rocksdb" or "postgres" */
    bool tls;            /* https (with --h2: ALPN h2) rather than cleartext */
    bool h2;
    int seconds;
    int clients, keys;
} run_opts;

static pid_t spawn_load(const sx_srv *srv, const run_opts *ro, const char *token_file, const char *history)
{
    char url[64], clients[16], keys[16], secs[16];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d", ro->tls ? "https" : "http", ro->tls ? srv->tls_port : srv->port);
    snprintf(clients, sizeof(clients), "%d", ro->clients);
    snprintf(keys, sizeof(keys), "%d", ro->keys);
    snprintf(secs, sizeof(secs), "%d", ro->seconds);
    char *argv[24] = {"lin_load",  "--url",     url,     "--token-file", (char *)token_file, "--org", "lin",
                      "--project", "app",       "--env", "prod",         "--clients",        clients, "--keys",
                      keys,        "--seconds", secs,    "--history",    (char *)history};
    int n = 19;
    if (ro->tls) {
        argv[n++] = "--cacert";
        argv[n++] = srv->cert_path;
    }
    if (ro->h2)
        argv[n++] = "--h2";
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execv(SX_LIN_LOAD_PATH, argv);
        _exit(127);
    }
    return pid;
}

enum { PROGRESS_BYTES = 8192 }; /* history written (some 40 operations) before the next kill */

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Ask the admin socket for a rotation; 202 started, 409 one runs already, 404 (env) no data key
 * yet. Returns the status, 0 when no answer came. */
static long rotate(const sx_srv *srv, const char *path)
{
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    sx_resp r;
    if (sx_srv_request(srv, SX_ADMIN, "POST", path, hdrs, "{}", 2, &r) != 0)
        return 0;
    long st = r.status;
    sx_resp_free(&r);
    return st;
}

static void run(const run_opts *ro)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    char *dir = sx_test_tmpdir("lin");
    sx_srv_opts o = {.backend = ro->backend, .threads = 2, .keep_dir = true, .dir = dir};
    char storage[1024] = "";
#ifdef SX_HAVE_PGTEST
    sx_pgtest pg;
    bool pg_up = false;
#endif
    if (strcmp(ro->backend, "postgres") == 0) {
#ifdef SX_HAVE_PGTEST
        /* our own database server, so that it outlives the restarts of secretsd */
        int r = sx_pgtest_start(&pg);
        if (r == SX_PGTEST_SKIP) {
            g_skip = 1;
            sx_test_rmtree(dir);
            free(dir);
            return;
        }
        REQUIRE(r == 0);
        pg_up = true;
        REQUIRE(sx_pgtest_createdb(&pg, "secretsd") == 0);
        char *pwfile = sx_test_path(dir, "dbpassword"), dsn[256];
        REQUIRE(sx_test_write_file(pwfile, pg.password, strlen(pg.password)) == 0);
        sx_pgtest_dsn(&pg, "secretsd", dsn, sizeof(dsn));
        snprintf(storage, sizeof(storage), "dsn = \"%s\"\npassword_file = %s\n", dsn, pwfile);
        free(pwfile);
        o.extra_storage = storage;
#else
        g_skip = 1;
        return;
#endif
    }
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    o.port = srv.port; /* every restart listens where lin_load sends */
    o.tls_port = srv.tls_port;
    char *token = sx_srv_mint_token(&srv, "lin", "app", "prod", "owner", NULL);
    REQUIRE(token != NULL);
    char *token_file = sx_test_path(dir, "token"), *history = sx_test_path(dir, "history.jsonl");
    REQUIRE(sx_test_write_file(token_file, token, strlen(token)) == 0);
    printf("backend %s, %s%s, %d clients on %d keys for %d s (seed %u)\n", ro->backend, ro->h2 ? "HTTP/2" : "HTTP/1.1",
           ro->tls ? " over TLS" : "", ro->clients, ro->keys, ro->seconds, seed);

    pid_t load = spawn_load(&srv, ro, token_file, history);
    REQUIRE(load > 0);
    int kills = 0, env_rot = 0, master_rot = 0, round = 0, wst = 0;
    long served_from = 0; /* the history's size when the server last came up */
    bool up = true;
    for (;;) {
        sx_test_sleep_ms(250 + rand_r(&seed) % 700);
        if (waitpid(load, &wst, WNOHANG) == load)
            break;
        switch (round++ % 3) {
        case 0: { /* SIGKILL, then the same data dir and port */
            /* not before the clients got a few answers from this run of the server (a slow
             * restart on a busy machine must not leave the whole load facing a dead port) */
            while (file_size(history) < served_from + PROGRESS_BYTES && waitpid(load, &wst, WNOHANG) == 0)
                sx_test_sleep_ms(50);
            int st = 0;
            if (waitpid(srv.pid, &st, WNOHANG) == srv.pid) {
                fprintf(stderr, "secretsd died by itself (status %d)\n", st);
                sx_test_failures++;
            } else {
                kill(srv.pid, SIGKILL);
                waitpid(srv.pid, &st, 0);
            }
            srv.pid = 0;
            sx_srv_stop(&srv, SIGTERM, 1); /* frees the paths; keep_dir keeps the data */
            kills++;
            sx_test_sleep_ms(rand_r(&seed) % 300); /* down for a while */
            int rc = -1;
            for (int attempt = 0; attempt < 5 && rc != 0; attempt++) /* the port may linger a moment */
                if ((rc = sx_srv_start(&srv, &o)) != 0)
                    sx_test_sleep_ms(200);
            up = rc == 0;
            served_from = file_size(history);
            break;
        }
        case 1: {
            long st = rotate(&srv, "/v1/envs/lin/app/prod/rotate");
            CHECK(st == 202 || st == 409 || st == 404);
            env_rot += st == 202;
            break;
        }
        default: {
            long st = rotate(&srv, "/v1/master/rotate");
            CHECK(st == 202 || st == 409);
            master_rot += st == 202;
            break;
        }
        }
        if (!up) {
            fprintf(stderr, "secretsd did not come back after the kill\n");
            sx_test_failures++;
            kill(load, SIGKILL);
            waitpid(load, &wst, 0);
            break;
        }
    }
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    printf("%d SIGKILLs and restarts, %d env rotations and %d master rotations started\n", kills, env_rot, master_rot);
    CHECK(kills >= 1);

    sx_lin_history h = {0};
    char err[SX_LIN_ERR_LEN];
    int rc = sx_lin_history_load(&h, history, err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    CHECK_INT(rc, 0);
    sx_lin_summary s;
    uint64_t t0 = sx_clock_mono_ns();
    sx_lin_limits lim = {.max_seconds = 120};
    sx_lin_verdict v = sx_lin_check(&h, &lim, stdout, &s);
    double secs = (double)(sx_clock_mono_ns() - t0) / 1e9;
    printf("%zu operations on %zu keys: %s\n", s.ops, s.keys,
           v == SX_LIN_LINEARIZABLE ? "linearizable"
           : v == SX_LIN_UNDECIDED  ? "undecided"
                                    : "NOT linearizable");
    printf("outcomes: %zu ok, %zu failed, %zu unknown; ", s.by_outcome[SX_LIN_OK], s.by_outcome[SX_LIN_FAIL],
           s.by_outcome[SX_LIN_UNKNOWN]);
    for (int k = 0; k < SX_LIN_KINDS; k++)
        printf("%s %zu%s", sx_lin_kind_name((sx_lin_kind)k), s.by_kind[k], k + 1 < SX_LIN_KINDS ? ", " : "\n");
    printf("search: %llu steps in %.2f s\n", (unsigned long long)s.steps, secs);
    CHECK_INT(v, SX_LIN_LINEARIZABLE);
    CHECK(s.by_outcome[SX_LIN_OK] > 0);
    bool keep = sx_test_failures != 0;
    if (keep)
        fprintf(stderr, "the history and the server's logs are kept in %s\n", dir);
    sx_lin_history_free(&h);

    if (srv.pid)
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    else
        sx_srv_stop(&srv, SIGTERM, 1);
#ifdef SX_HAVE_PGTEST
    if (pg_up)
        sx_pgtest_stop(&pg);
#endif
    if (!keep)
        sx_test_rmtree(dir);
    free(token);
    free(token_file);
    free(history);
    free(dir);
}

static int seconds_or(int dflt)
{
    const char *e = getenv("SX_LIN_SECONDS");
    return e && atoi(e) > 0 ? atoi(e) : dflt;
}

static void rocksdb_h1_short(void)
{
    run(&(run_opts){"rocksdb", false, false, seconds_or(6), 4, 3});
}

static void rocksdb_h2tls_long(void)
{
    run(&(run_opts){"rocksdb", true, true, seconds_or(60), 6, 5});
}

static void postgres_h2tls_short(void)
{
    run(&(run_opts){"postgres", true, true, seconds_or(6), 4, 3});
}

static void postgres_h2c_long(void)
{
    run(&(run_opts){"postgres", false, true, seconds_or(60), 6, 5});
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"rocksdb_h1_short", rocksdb_h1_short},
        {"rocksdb_h2tls_long", rocksdb_h2tls_long},
        {"postgres_h2tls_short", postgres_h2tls_short},
        {"postgres_h2c_long", postgres_h2c_long},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    return g_skip && rc == 0 ? 77 : rc;
}
