/*
 * test_failover.c - two secretsd nodes behind haproxy survive their PostgreSQL primary failing over
 * to a synchronous standby, and failing back, without losing an acknowledged write.
 *
 * The set-up is what an operator runs for high availability: a primary and a synchronous hot
 * standby (tests/lib/pgtest.h: streaming replication, synchronous_commit on), two real secretsd
 * nodes whose dsn names both database hosts with target_session_attrs=read-write, and a real
 * haproxy (tests/lib/haproxy.h: mode tcp, PROXY v2, /readyz health checks) in front of the nodes.
 * Clients (half HTTP/1.1 on a keep-alive connection each, half h2c, through haproxy) create
 * secrets, set values and read them back, recording every acknowledged write, while the test
 *
 *  1. kills the primary (SIGKILL of the postmaster and its backends, like a machine dying) and
 *     promotes the standby (pg_ctl promote), nodes and load left running;
 *  2. brings the old primary back as the new primary's synchronous standby (pg_rewind), under load;
 *  3. fails back: stops the new primary (a fast shutdown, as for a planned switch) and promotes the
 *     old one.
 *
 * For each failover it prints the requests that failed and the window in which they did (from the
 * first to the last failure, and from the kill to the last), and how long after the kill each node
 * served a write again (a write sent straight to the node every 20 ms). It asserts only
 * correctness: every node serves writes again within 60 s; no answer is anything but 2xx or
 * 503 "unavailable" (or a connection cut by the failover); every read returns the value of the
 * client's last acknowledged write or of a later one (never an older one); and after the run,
 * every acknowledged create still exists and every value is the last acknowledged one or a later
 * attempt whose answer was lost. No timing is asserted.
 *
 * Besides its own clients, two lin_load processes (tests/lin) run through haproxy's port for the
 * whole run, one over HTTP/1.1 (a keep-alive connection per client), one over h2c, on secrets of
 * their own env (lin/ha/prod, an owner token); at the end lin_check must find each recorded history
 * linearizable. A failing run keeps the histories and says where.
 *
 * `test_failover failover_and_failback_lose_no_acknowledged_write` keeps the load on a few seconds
 * around each step; `..._long` for 30 s around each (ctest label "long").
 */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "harness.h"
#include "haproxy.h"
#include "pgtest.h"
#include "testutil.h"

#define CLIENTS          8
#define KEYS             4     /* secrets each client sets values of */
#define MAX_CREATES      4096  /* secrets each client may create */
#define RECOVERY_MS      60000 /* the bound on "every node serves writes again" */
#define FAILURE_PAUSE_MS 20    /* a client waits this long after a failed request, as a retrying client would */
#define LIN_CLIENTS      "4"   /* of each lin_load */
#define LIN_KEYS         "3"
#define LIN_SECONDS      "3600" /* an upper bound: the test stops lin_load (SIGTERM) after the fail-back */
#define LIN_CHECK_SECS   "600"  /* lin_check's time budget per key, so that its step budget decides */

static int g_skip;

/* What the clients saw in one phase of the run. */
typedef struct phase_stats {
    long requests, failed, unavailable, cut, other;
    long slowest_ms;                     /* the longest a request took, answered or not */
    int64_t first_fail_ms, last_fail_ms; /* monotonic; 0 = none */
} phase_stats;

#define PHASES 4 /* steady, after the failover, during the rejoin, after the failback */

typedef struct ha {
    sx_pgtest db[2]; /* db[0] is the first primary */
    int primary;     /* index of the primary in db */
    char *shared;
    char pwfile[600], seal_key[600], storage[1024];
    sx_srv nodes[2];
    sx_haproxy lb;
    sx_srv via; /* nodes[0] with its port pointed at haproxy */
    char *token;
    char auth[512];
    pthread_mutex_t mu;
    phase_stats stats[PHASES];
    atomic_int phase;
    atomic_bool stop;
} ha;

typedef struct client {
    ha *h;
    int id;
    bool h2;
    int acked[KEYS];     /* sequence number of the last acknowledged value per key */
    int attempted[KEYS]; /* of the last one sent */
    int *created;        /* indexes of the acknowledged creates */
    int ncreated;
    long bad_answers; /* answers other than 2xx, 503 unavailable or a cut connection */
    long stale_reads; /* reads older than the last acknowledged write */
    long cuts;        /* requests without an answer */
    long acked_writes;
} client;

/* ---- the cluster --------------------------------------------------------------------------------- */

static int node_proxy_port(const sx_srv *srv)
{
    const char *prefix = "listening on proxy+http://[::1]:";
    char *log = sx_test_read_file(srv->stderr_path, NULL);
    char *p = log ? strstr(log, prefix) : NULL;
    int port = p ? atoi(p + strlen(prefix)) : 0;
    free(log);
    return port;
}

static bool ha_up(ha *h)
{
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
    int r = sx_pgtest_start_primary(&h->db[0]);
    if (r == SX_PGTEST_SKIP)
        g_skip = 1;
    if (r != 0)
        return false;
    if (sx_pgtest_createdb(&h->db[0], "secretsd") != 0 || sx_pgtest_standby_start(&h->db[1], &h->db[0]) != 0)
        return false;
    h->shared = sx_test_tmpdir("ha");
    snprintf(h->pwfile, sizeof(h->pwfile), "%s/dbpassword", h->shared);
    snprintf(h->seal_key, sizeof(h->seal_key), "%s/seal.key", h->shared);
    if (sx_test_write_file(h->pwfile, h->db[0].password, strlen(h->db[0].password)) != 0)
        return false;
    /* Both hosts; libpq tries them in order and keeps the one that accepts writes. */
    snprintf(h->storage, sizeof(h->storage),
             "dsn = \"host=127.0.0.1,127.0.0.1 port=%d,%d dbname=secretsd user=secretsd "
             "target_session_attrs=read-write connect_timeout=2\"\npassword_file = %s\n",
             h->db[0].port, h->db[1].port, h->pwfile);
    for (int i = 0; i < 2; i++) {
        sx_srv_opts o = {.backend = "postgres",
                         .threads = 2,
                         .extra_storage = h->storage,
                         .seal_key = h->seal_key,
                         .extra_server = "trusted_proxies = ::1/128\nproxy_listen = [::1]:0\n"};
        if (sx_srv_start(&h->nodes[i], &o) != 0) /* the first initialises the keyring and seal key */
            return false;
    }
    sx_haproxy_node lbn[2] = {{"::1", node_proxy_port(&h->nodes[0])}, {"::1", node_proxy_port(&h->nodes[1])}};
    if (!lbn[0].port || !lbn[1].port)
        return false;
    r = sx_haproxy_start(&h->lb, lbn, 2);
    if (r == SX_HAPROXY_SKIP)
        g_skip = 1;
    if (r != 0)
        return false;
    for (int i = 0; i < 100 && sx_haproxy_nodes_up(&h->lb) < 2; i++)
        sx_test_sleep_ms(50);
    if (sx_haproxy_nodes_up(&h->lb) < 2)
        return false;
    h->via = h->nodes[0];
    h->via.port = h->lb.port;
    h->token = sx_srv_mint_token(&h->nodes[0], "acme", NULL, NULL, "owner", NULL);
    if (!h->token)
        return false;
    snprintf(h->auth, sizeof(h->auth), "Authorization: Bearer %s", h->token);
    return true;
}

static void ha_down(ha *h)
{
    sx_haproxy_stop(&h->lb);
    for (int i = 0; i < 2; i++) {
        if (h->nodes[i].pid)
            CHECK_INT(sx_srv_stop(&h->nodes[i], SIGTERM, 60), 0); /* neither crashed */
        else if (h->nodes[i].dir)
            sx_srv_stop(&h->nodes[i], SIGTERM, 60);
    }
    sx_pgtest_stop(&h->db[0]);
    sx_pgtest_stop(&h->db[1]);
    if (h->shared)
        sx_test_rmtree(h->shared);
    free(h->shared);
    free(h->token);
    pthread_mutex_destroy(&h->mu);
}

/* One request as the owner straight to srv over HTTP/1.1; the status (0: none). */
static long call(ha *h, const sx_srv *srv, const char *method, const char *path, const char *json, char **ret_body)
{
    return sx_srv_call(srv, h->auth, method, path, json, ret_body);
}

/* ---- the clients --------------------------------------------------------------------------------- */

/* One request on the client's own connection through haproxy; the status, 0 when none came. */
static long client_call(client *c, CURL *curl, const char *method, const char *path, const char *json, char **ret_body)
{
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", c->h->lb.port, path);
    struct curl_slist *hd = curl_slist_append(NULL, c->h->auth);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hd);
    if (json) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(json));
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    sx_resp r;
    CURLcode rc = sx_resp_perform(curl, &r);
    long st = rc == CURLE_OK ? r.status : 0;
    curl_slist_free_all(hd);
    if (rc != CURLE_OK && c->cuts++ < 3)
        fprintf(stderr, "client %d (%s): %s %s: %s\n", c->id, c->h2 ? "h2c" : "HTTP/1.1", method, path,
                curl_easy_strerror(rc));
    if (ret_body)
        *ret_body = strdup(r.body ? r.body : "");
    else if (st != 200 && st != 201 && st != 503 && st != 0 && c->bad_answers < 5)
        fprintf(stderr, "client %d: %s %s -> %ld %.200s\n", c->id, method, path, st, r.body ? r.body : "");
    sx_resp_free(&r);
    return st;
}

/* Count the outcome of one request sent at sent_ms in the current phase; true when it succeeded. */
static bool client_count(client *c, int64_t sent_ms, long st, const char *body, bool ok)
{
    ha *h = c->h;
    int64_t now = sx_clock_mono_ms();
    bool unavailable = st == 503 && body && strstr(body, "\"code\":\"unavailable\"");
    pthread_mutex_lock(&h->mu);
    phase_stats *ps = &h->stats[atomic_load(&h->phase)];
    ps->requests++;
    if (now - sent_ms > ps->slowest_ms)
        ps->slowest_ms = (long)(now - sent_ms);
    if (!ok) {
        ps->failed++;
        if (unavailable)
            ps->unavailable++;
        else if (st == 0)
            ps->cut++;
        else
            ps->other++;
        if (!ps->first_fail_ms)
            ps->first_fail_ms = now;
        ps->last_fail_ms = now;
    }
    pthread_mutex_unlock(&h->mu);
    if (!ok && !unavailable && st != 0) {
        if (c->bad_answers < 5)
            fprintf(stderr, "client %d: unexpected answer %ld %.200s\n", c->id, st, body ? body : "");
        c->bad_answers++;
    }
    return ok;
}

/* The sequence number in a value "C:K:SEQ" of client c's key k, or -1. */
static int value_seq(const char *body, int id, int k)
{
    char want[64];
    snprintf(want, sizeof(want), "\"value\":\"%d:%d:", id, k);
    const char *p = body ? strstr(body, want) : NULL;
    return p ? atoi(p + strlen(want)) : -1;
}

static void stale_read(client *c, int k, int got, int floor, int ceil)
{
    if (c->stale_reads++ < 5)
        fprintf(stderr, "client %d: read of key %d gave %d, acknowledged %d, attempted %d\n", c->id, k, got, floor,
                ceil);
}

static void *client_main(void *arg)
{
    client *c = arg;
    ha *h = c->h;
    CURL *curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, c->h2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : CURL_HTTP_VERSION_1_1);
    /* libcurl before 8.0.0 fails the second request on a reused h2c (prior knowledge) connection
     * ("Error in the HTTP2 framing layer", curl/curl#10634): h2c clients connect per request. */
    curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, c->h2 ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, c->h2 ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    char path[256], json[256];
    int seq = 0;
    for (long i = 0; !atomic_load(&h->stop); i++) {
        int k = (int)(i % KEYS);
        int64_t sent = sx_clock_mono_ms();
        long st;
        char *body = NULL;
        bool ok;
        switch (i % 10) {
        case 0:
        case 1:
        case 2:
        case 3: /* a value, unique: the client, the key, a sequence number */
            seq++;
            snprintf(path, sizeof(path), "/acme/ha/envs/prod/secrets/C%dK%d/value", c->id, k);
            snprintf(json, sizeof(json), "{\"value\":\"%d:%d:%d\"}", c->id, k, seq);
            c->attempted[k] = seq;
            st = client_call(c, curl, "PUT", path, json, &body);
            ok = client_count(c, sent, st, body, st == 200);
            if (ok) {
                c->acked[k] = seq;
                c->acked_writes++;
            }
            break;
        case 4: /* a new secret */
            if (c->ncreated >= MAX_CREATES)
                continue;
            snprintf(json, sizeof(json), "{\"kind\":\"secret\",\"name\":\"N%dI%ld\"}", c->id, i);
            st = client_call(c, curl, "POST", "/acme/ha/envs/prod/secrets", json, &body);
            ok = client_count(c, sent, st, body, st == 201);
            if (ok) {
                c->created[c->ncreated++] = (int)i;
                c->acked_writes++;
            }
            break;
        default: { /* read back one of the values: never older than the last acknowledged write */
            snprintf(path, sizeof(path), "/acme/ha/envs/prod/secrets/C%dK%d/value", c->id, k);
            int floor = c->acked[k], ceil = c->attempted[k];
            st = client_call(c, curl, "GET", path, NULL, &body);
            /* no value yet: none sent, or none acknowledged (the answers of those sent were lost) */
            ok = client_count(c, sent, st, body, st == 200 || (st == 404 && floor == 0));
            if (st == 404 && floor > 0)
                stale_read(c, k, -1, floor, ceil);
            int got = st == 200 ? value_seq(body, c->id, k) : 0;
            if (st == 200 && (got < floor || got > ceil))
                stale_read(c, k, got, floor, ceil);
            break;
        }
        }
        free(body);
        if (!ok)
            sx_test_sleep_ms(FAILURE_PAUSE_MS);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

/* ---- lin_load through haproxy --------------------------------------------------------------------- */

enum { LIN_LOADS = 2 }; /* HTTP/1.1, h2c */

typedef struct lin_run {
    char *dir, *token_file;
    char history[LIN_LOADS][600];
    pid_t pid[LIN_LOADS];
} lin_run;

/* Start argv[0] with argv; the child gets SIGTERM should this test die first. The pid, or -1. */
static pid_t spawn(char *const argv[])
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Wait for pid; true when it exited with status 0. */
static bool exited_ok(pid_t pid)
{
    int st = 0;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Mint an owner token for lin/ha/prod and start the lin_loads through haproxy. */
static bool lin_start(ha *h, lin_run *lr)
{
    memset(lr, 0, sizeof(*lr));
    lr->dir = sx_test_tmpdir("ha-lin");
    lr->token_file = sx_test_path(lr->dir, "token");
    char *token = sx_srv_mint_token(&h->nodes[0], "lin", "ha", "prod", "owner", NULL);
    if (!token)
        return false;
    int w = sx_test_write_file(lr->token_file, token, strlen(token));
    free(token);
    if (w != 0)
        return false;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", h->lb.port);
    for (int i = 0; i < LIN_LOADS; i++) {
        snprintf(lr->history[i], sizeof(lr->history[i]), "%s/history-%s.jsonl", lr->dir, i ? "h2c" : "http1");
        char *argv[] = {
            SX_LIN_LOAD_PATH, "--url",     url,         "--token-file", lr->token_file, "--org",           "lin",
            "--project",      "ha",        "--env",     "prod",         "--clients",    LIN_CLIENTS,       "--keys",
            LIN_KEYS,         "--seconds", LIN_SECONDS, "--history",    lr->history[i], i ? "--h2" : NULL, NULL};
        if ((lr->pid[i] = spawn(argv)) < 0)
            return false;
    }
    return true;
}

/* The number of lines of a history whose outcome is ok. */
static long history_ok(const char *path)
{
    char *text = sx_test_read_file(path, NULL);
    long n = 0;
    for (const char *p = text; p && (p = strstr(p, "\"outcome\":\"ok\"")); p++)
        n++;
    free(text);
    return n;
}

/* Stop each lin_load in turn (it finishes its requests in flight and prints its counts), then
 * lin_check its history: it prints the counts and the verdict and must find it linearizable.
 * Keeps the histories when anything failed. */
static void lin_finish(lin_run *lr)
{
    for (int i = 0; i < LIN_LOADS; i++) {
        if (lr->pid[i] <= 0)
            continue;
        printf("lin_load over %s through haproxy, history %s:\n", i ? "h2c" : "HTTP/1.1", lr->history[i]);
        fflush(stdout);
        kill(lr->pid[i], SIGTERM);
        CHECK(exited_ok(lr->pid[i]));
        char *argv[] = {SX_LIN_CHECK_PATH, "--max-seconds", LIN_CHECK_SECS, lr->history[i], NULL};
        bool linearizable = exited_ok(spawn(argv));
        if (!linearizable)
            fprintf(stderr, "lin_check: the history %s is not linearizable (or undecided, or unreadable)\n",
                    lr->history[i]);
        CHECK(linearizable);
        CHECK(history_ok(lr->history[i]) > 0);
    }
    fflush(stdout);
    if (sx_test_failures)
        fprintf(stderr, "the lin_load histories are kept in %s\n", lr->dir);
    else
        sx_test_rmtree(lr->dir);
    free(lr->dir);
    free(lr->token_file);
}

/* ---- one failover -------------------------------------------------------------------------------- */

/* Write straight to each node every 20 ms from start_ms on; each node's first success, in ms after
 * start_ms, into ret_ms (-1: none within RECOVERY_MS). */
static void wait_writes_served(ha *h, int64_t start_ms, long ret_ms[2])
{
    ret_ms[0] = ret_ms[1] = -1;
    for (int n = 0; ret_ms[0] < 0 || ret_ms[1] < 0;) {
        int64_t now = sx_clock_mono_ms();
        if (now - start_ms > RECOVERY_MS)
            break;
        for (int i = 0; i < 2; i++) {
            if (ret_ms[i] >= 0)
                continue;
            char path[128], json[64];
            snprintf(path, sizeof(path), "/acme/ha/envs/prod/secrets/PROBE%d/value", i);
            snprintf(json, sizeof(json), "{\"value\":\"probe %d\"}", n++);
            if (call(h, &h->nodes[i], "PUT", path, json, NULL) == 200)
                ret_ms[i] = (long)(sx_clock_mono_ms() - start_ms);
        }
        sx_test_sleep_ms(20);
    }
}

static void next_phase(ha *h)
{
    pthread_mutex_lock(&h->mu);
    atomic_fetch_add(&h->phase, 1);
    pthread_mutex_unlock(&h->mu);
}

static phase_stats phase_get(ha *h, int phase)
{
    pthread_mutex_lock(&h->mu);
    phase_stats ps = h->stats[phase];
    pthread_mutex_unlock(&h->mu);
    return ps;
}

static void print_phase(const char *what, const phase_stats *ps, int64_t event_ms)
{
    if (ps->failed == 0 || !event_ms) {
        printf("  %s: %ld requests, %ld failed; the slowest took %ld ms\n", what, ps->requests, ps->failed,
               ps->slowest_ms);
        return;
    }
    printf("  %s: %ld requests, %ld failed (%ld 503 unavailable, %ld connections cut, %ld other) "
           "from %+ld ms to %+ld ms after the stop: a window of %ld ms; the slowest request took %ld ms\n",
           what, ps->requests, ps->failed, ps->unavailable, ps->cut, ps->other, (long)(ps->first_fail_ms - event_ms),
           (long)(ps->last_fail_ms - event_ms), (long)(ps->last_fail_ms - ps->first_fail_ms), ps->slowest_ms);
}

/* Stop the primary (killed, or a fast shutdown), promote the standby, and wait until both nodes
 * serve writes again; prints what it measured. */
static void fail_over(ha *h, bool kill_it, int settle_ms)
{
    sx_pgtest *old = &h->db[h->primary], *standby = &h->db[1 - h->primary];
    next_phase(h);
    int phase = atomic_load(&h->phase);
    int64_t t0 = sx_clock_mono_ms();
    CHECK_INT(kill_it ? sx_pgtest_kill(old) : sx_pgtest_halt(old, false), 0);
    int64_t t_stopped = sx_clock_mono_ms();
    CHECK_INT(sx_pgtest_promote(standby), 0);
    int64_t t_promoted = sx_clock_mono_ms();
    h->primary = 1 - h->primary;
    long served[2];
    wait_writes_served(h, t0, served);
    printf("%s of the primary (port %d): stopped in %ld ms, standby (port %d) promoted %ld ms after the stop; "
           "node A serves writes again %ld ms, node B %ld ms after the stop\n",
           kill_it ? "SIGKILL" : "fast shutdown", old->port, (long)(t_stopped - t0), standby->port,
           (long)(t_promoted - t0), served[0], served[1]);
    CHECK(served[0] >= 0);
    CHECK(served[1] >= 0);
    sx_test_sleep_ms(settle_ms); /* the load keeps going on the new primary */
    phase_stats ps = phase_get(h, phase);
    print_phase("clients through haproxy", &ps, t0);
    fflush(stdout);
}

/* After the run: every acknowledged write is there, through haproxy and on both nodes. */
static long count_lost(ha *h, client *cl)
{
    long lost = 0;
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &cl[i];
        for (int k = 0; k < KEYS; k++) {
            char path[128], *body = NULL;
            snprintf(path, sizeof(path), "/acme/ha/envs/prod/secrets/C%dK%d/value", c->id, k);
            long st = call(h, &h->nodes[(i + k) % 2], "GET", path, NULL, &body);
            int got = st == 200 ? value_seq(body, c->id, k) : -1;
            if (st != 200 || got < c->acked[k] || got > c->attempted[k]) {
                fprintf(stderr, "lost: client %d key %d holds %d (status %ld), acknowledged %d, attempted %d\n", c->id,
                        k, got, st, c->acked[k], c->attempted[k]);
                lost++;
            }
            free(body);
        }
        /* Every acknowledged create, read from both nodes in turn. */
        for (int n = 0; n < c->ncreated; n++) {
            char path[128];
            snprintf(path, sizeof(path), "/acme/ha/envs/prod/secrets/N%dI%d", c->id, c->created[n]);
            long st = call(h, &h->nodes[n % 2], "GET", path, NULL, NULL);
            if (st != 200) {
                fprintf(stderr, "lost: client %d's secret N%dI%d (status %ld)\n", c->id, c->id, c->created[n], st);
                lost++;
            }
        }
    }
    return lost;
}

static void run(int steady_ms, int settle_ms)
{
    ha h;
    if (!ha_up(&h)) {
        if (!g_skip)
            CHECK(!"cluster up");
        ha_down(&h);
        return;
    }
    printf("primary on port %d, synchronous standby on port %d, haproxy on port %d, nodes A and B\n", h.db[0].port,
           h.db[1].port, h.lb.port);
    static client cl[CLIENTS];
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].h = &h;
        cl[i].id = i;
        cl[i].h2 = i % 2 == 1;
        cl[i].created = calloc(MAX_CREATES, sizeof(int));
        for (int k = 0; k < KEYS; k++) {
            char json[96];
            snprintf(json, sizeof(json), "{\"kind\":\"secret\",\"name\":\"C%dK%d\"}", i, k);
            CHECK_INT(call(&h, &h.via, "POST", "/acme/ha/envs/prod/secrets", json, NULL), 201);
        }
    }
    for (int i = 0; i < 2; i++) {
        char json[96];
        snprintf(json, sizeof(json), "{\"kind\":\"secret\",\"name\":\"PROBE%d\"}", i);
        CHECK_INT(call(&h, &h.via, "POST", "/acme/ha/envs/prod/secrets", json, NULL), 201);
    }
    lin_run lr;
    CHECK(lin_start(&h, &lr));
    for (int i = 0; i < CLIENTS; i++)
        REQUIRE(pthread_create(&th[i], NULL, client_main, &cl[i]) == 0);
    sx_test_sleep_ms(steady_ms);

    /* 1. The primary dies; the standby takes over. */
    fail_over(&h, true, settle_ms);
    /* 2. The old primary comes back as the synchronous standby of the new one, under load. */
    next_phase(&h);
    int64_t t = sx_clock_mono_ms();
    CHECK_INT(sx_pgtest_rejoin(&h.db[1 - h.primary], &h.db[h.primary]), 0);
    printf("old primary rewound and back as the synchronous standby in %ld ms\n", (long)(sx_clock_mono_ms() - t));
    sx_test_sleep_ms(settle_ms);
    phase_stats ps = phase_get(&h, 2);
    print_phase("clients during and after the rejoin", &ps, t);
    /* 3. Fail back: the new primary is stopped, the old one promoted again. */
    fail_over(&h, false, settle_ms);

    atomic_store(&h.stop, true);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);
    lin_finish(&lr);

    long acked = 0, bad = 0, stale = 0;
    for (int i = 0; i < CLIENTS; i++) {
        acked += cl[i].acked_writes;
        bad += cl[i].bad_answers;
        stale += cl[i].stale_reads;
    }
    long lost = count_lost(&h, cl);
    printf("acknowledged writes: %ld, lost: %ld; reads older than an acknowledged write: %ld; answers other than "
           "2xx or 503: %ld\n",
           acked, lost, stale, bad);
    print_phase("clients before the failover", &h.stats[0], 0);
    CHECK_INT(lost, 0);
    CHECK_INT(stale, 0);
    CHECK_INT(bad, 0);
    CHECK(acked > 0);
    for (int i = 0; i < CLIENTS; i++)
        free(cl[i].created);
    ha_down(&h);
}

static void failover_and_failback_lose_no_acknowledged_write(void)
{
    run(3000, 3000);
}

static void failover_and_failback_lose_no_acknowledged_write_long(void)
{
    run(30000, 30000);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"failover_and_failback_lose_no_acknowledged_write", failover_and_failback_lose_no_acknowledged_write},
        {"failover_and_failback_lose_no_acknowledged_write_long",
         failover_and_failback_lose_no_acknowledged_write_long},
    };
    setvbuf(stdout, NULL, _IOLBF, 0); /* the figures in order with the clients' messages on stderr */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int r = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return g_skip && r == 0 ? SX_PGTEST_SKIP : r;
}
