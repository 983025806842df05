/*
 * test_faults.c - a failing storage call reaches the client as a 503 JSON error, changes nothing,
 * and the server keeps serving.
 *
 * The server runs in this process: the server library is started exactly as main.c starts it
 * (configuration file, log, key hierarchy, token verification, sx_server_new, sx_server_run on its
 * own thread), except that the store handed to crypto, auth and the server is the memory (or
 * RocksDB) backend wrapped in the fault-injecting backend (storage/fault.c). Production builds
 * therefore carry no test hook at all: the wrapper only exists where a test links it in. Requests
 * still travel over real HTTP/1.1 and h2c connections through h2o, the router, the worker pool and
 * the handlers.
 *
 * For every operation (list, get, reveal, values, create, update, set-value, delete, readyz, and
 * the admin socket's token create/list/revoke) the test walks n = 1, 2, ... and makes the nth
 * storage call of the request fail with -EIO, until n is past the request's last call (the
 * wrapper counts them). Every request mints a fresh token first, so the token verification read
 * (an uncached token) is among the calls walked. Each injected failure must give 503 with the
 * {"error", "code": "unavailable"} body, the full store (every key, value and revision) must be
 * byte-for-byte what it was before the request, and /healthz must still answer. The walk is
 * repeated after a restart of the server on the same store, so that cold caches (data keys,
 * tokens) add their storage reads to the walk, and once with the store failing every call.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "server/server_internal.h"
#include "storage/fault.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
/* As in main.c: h2o's recycled per-thread buffers and its multithread queue are never freed. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\nleak:h2o_multithread_create_queue\n";
}
#endif

#define MAX_WALK 256 /* no request makes this many storage calls; a walk that gets here is a bug */

static const char *backend = "memory";

typedef struct fixture {
    char *dir;
    sx_config *cfg;
    sx_storage *inner; /* owned by fault */
    sx_storage *fault;
    sx_crypto *crypto;
    sx_auth *auth;
    sx_server *server;
    pthread_t tid;
    bool running;
    sx_srv srv; /* what the harness's request helpers need: port and admin socket */
} fixture;

typedef struct totals {
    unsigned walks;
    unsigned injected;
} totals;

static totals tot;

static void *run_server(void *arg)
{
    fixture *f = arg;
    if (sx_server_run(f->server) != 0)
        fprintf(stderr, "test_faults: sx_server_run failed\n");
    return NULL;
}

/* The rotation engine scans its records once when the server starts, on its own thread: wait until
 * no storage call has happened for a while, so that walks count only their requests' calls. */
static int settle(fixture *f)
{
    sx_storage_fault_set(f->fault, 0, false);
    unsigned long last = 0;
    for (int i = 0, quiet = 0; i < 200 && quiet < 5; i++) {
        sx_test_sleep_ms(50);
        unsigned long c = sx_storage_fault_calls(f->fault);
        quiet = c == last ? quiet + 1 : 0;
        last = c;
    }
    return 0;
}

/* Crypto, auth and a server on f->fault, as main.c sets them up; waits until /healthz answers. */
static int server_up(fixture *f)
{
    char err[1024];
    char keyfile[1024];
    snprintf(keyfile, sizeof(keyfile), "%s/seal.key", f->dir);
    sx_crypto_options co = {.seal = {.type = SX_CRYPTO_SEAL_FILE, .key_file = keyfile}};
    char *recovery = NULL;
    if (sx_crypto_open(&f->crypto, &recovery, f->fault, &co, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_faults: crypto: %s\n", err);
        return -1;
    }
    if (recovery)
        sx_crypto_recovery_key_free(recovery);
    const uint8_t *tk = sx_crypto_system_key(f->crypto, SX_CRYPTO_KEY_TOKEN_HASH);
    if (!tk || sx_auth_new(f->fault, tk, SX_AUTH_KEY_BYTES, &f->auth) != 0) {
        fprintf(stderr, "test_faults: auth set-up failed\n");
        return -1;
    }
    sx_server_deps deps = {.config = f->cfg, .storage = f->fault, .crypto = f->crypto, .auth = f->auth};
    if (sx_server_new(&f->server, &deps, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_faults: server: %s\n", err);
        return -1;
    }
    /* The cleartext listener is the first one (server.c opens [server] listen first). */
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    if (f->server->nlisteners < 1 || f->server->listeners[0].kind != SX_LISTEN_CLEAR ||
        getsockname(f->server->listeners[0].fd, (struct sockaddr *)&sa, &sl) != 0) {
        fprintf(stderr, "test_faults: no cleartext listener\n");
        return -1;
    }
    f->srv.port = ntohs(sa.sin_port);
    if (pthread_create(&f->tid, NULL, run_server, f) != 0)
        return -1;
    f->running = true;
    for (int i = 0; i < 300; i++) {
        sx_resp r;
        int rc = sx_srv_request(&f->srv, SX_H1, "GET", "/healthz", NULL, NULL, 0, &r);
        long st = r.status;
        sx_resp_free(&r);
        if (rc == 0 && st == 200)
            return settle(f);
        sx_test_sleep_ms(100);
    }
    fprintf(stderr, "test_faults: the server did not answer /healthz\n");
    return -1;
}

static void server_down(fixture *f)
{
    if (f->running) {
        sx_server_stop(f->server);
        pthread_join(f->tid, NULL);
        f->running = false;
    }
    sx_server_free(f->server);
    f->server = NULL;
    sx_auth_free(f->auth);
    f->auth = NULL;
    sx_crypto_free(f->crypto);
    f->crypto = NULL;
}

static int fixture_start(fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->dir = sx_test_tmpdir("faults");
    char path[1024], conf[1024], err[1024];
    snprintf(path, sizeof(path), "%s/secrets.conf", f->dir);
    /* [storage] is not used to open the store (the test opens it), but must be valid. */
    snprintf(conf, sizeof(conf),
             "[server]\nlisten = 127.0.0.1:0\nthreads = 2\nadmin_socket = admin.sock\n"
             "[storage]\nbackend = memory\n"
             "[seal]\ntype = file\nkey_file = seal.key\n"
             "[log]\nlevel = error\naccess_log =\n");
    if (sx_test_write_file(path, conf, strlen(conf)) != 0 || sx_config_load(path, &f->cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_faults: config: %s\n", err);
        return -1;
    }
    if (sx_log_open(f->cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_faults: log: %s\n", err);
        return -1;
    }
    char data[1024];
    snprintf(data, sizeof(data), "%s/data", f->dir);
    sx_storage_options so = {.backend = backend, .path = data, .sync = true};
    if (sx_storage_open(&so, &f->inner, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_faults: storage: %s\n", err);
        return -1;
    }
    if (sx_storage_fault_wrap(f->inner, &f->fault) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/admin.sock", f->dir);
    f->srv.admin_socket = strdup(path);
    f->srv.dir = f->dir;
    return server_up(f);
}

static void fixture_stop(fixture *f)
{
    server_down(f);
    sx_storage_close(f->fault ? f->fault : f->inner);
    sx_log_close();
    sx_config_free(f->cfg);
    free(f->srv.admin_socket);
    if (f->dir)
        sx_test_rmtree(f->dir);
    free(f->dir);
    memset(f, 0, sizeof(*f));
}

/* ---- the whole store, byte for byte ------------------------------------------------------------ */

typedef struct state {
    unsigned char digest[crypto_generichash_BYTES];
    unsigned char secrets[crypto_generichash_BYTES]; /* the same without the env data-key records */
    size_t records;
} state;

/* An env's data key (e/ state and d/ wrapped key) is made by the first set-value in the env, in its
 * own batch before the value's: it is key infrastructure the next attempt reuses, not a part of
 * the secret, so a later failure may leave it behind. */
static bool env_key_record(const void *k, size_t kl)
{
    return kl >= 2 && (memcmp(k, "e/", 2) == 0 || memcmp(k, "d/", 2) == 0);
}

/* Every key, value and revision of the inner store (not through the wrapper: not counted). */
static int snapshot(fixture *f, state *ret)
{
    crypto_generichash_state h, hs;
    crypto_generichash_init(&h, NULL, 0, sizeof(ret->digest));
    crypto_generichash_init(&hs, NULL, 0, sizeof(ret->secrets));
    sx_storage_iter *it = NULL;
    int rc = sx_storage_iter_new(f->inner, NULL, 0, NULL, 0, 0, &it);
    if (rc != 0)
        return rc;
    const void *k, *v;
    size_t kl, vl;
    uint64_t rev;
    ret->records = 0;
    while ((rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, &rev)) == 0) {
        uint64_t lens[3] = {kl, vl, rev};
        crypto_generichash_update(&h, (const unsigned char *)lens, sizeof(lens));
        crypto_generichash_update(&h, k, kl);
        crypto_generichash_update(&h, v, vl);
        if (!env_key_record(k, kl)) {
            crypto_generichash_update(&hs, (const unsigned char *)lens, sizeof(lens));
            crypto_generichash_update(&hs, k, kl);
            crypto_generichash_update(&hs, v, vl);
        }
        ret->records++;
    }
    sx_storage_iter_free(it);
    crypto_generichash_final(&h, ret->digest, sizeof(ret->digest));
    crypto_generichash_final(&hs, ret->secrets, sizeof(ret->secrets));
    return rc == SX_STORAGE_DONE ? 0 : rc;
}

static bool same_state(const state *a, const state *b)
{
    return a->records == b->records && memcmp(a->digest, b->digest, sizeof(a->digest)) == 0;
}

static bool same_secrets(const state *a, const state *b)
{
    return memcmp(a->secrets, b->secrets, sizeof(a->secrets)) == 0;
}

/* ---- one operation, walked over its storage calls ---------------------------------------------- */

typedef struct step {
    const char *what;
    const char *method;
    const char *path; /* "{id}" is replaced by the id of the token minted for the request */
    const char *body;
    long ok; /* status when no call fails */
    bool admin;
    bool env_key; /* may make the env's data key before a later call fails (see env_key_record) */
} step;

static bool healthy(fixture *f)
{
    sx_resp r;
    int rc = sx_srv_request(&f->srv, SX_H2C, "GET", "/healthz", NULL, NULL, 0, &r);
    bool ok = rc == 0 && r.status == 200;
    sx_resp_free(&r);
    return ok;
}

/* Send st once, with a fresh owner token (over the admin socket, only when the path names one).
 * The token is minted before the fault counter is armed, so its storage writes are not walked. */
static int send_step(fixture *f, const step *st, sx_proto proto, unsigned long nth, bool every, sx_resp *r,
                     state *before)
{
    memset(r, 0, sizeof(*r));
    char id[33] = "";
    const char *at = strstr(st->path, "{id}");
    char *token = !st->admin || at ? sx_srv_mint_token(&f->srv, "o", NULL, NULL, "owner", id) : strdup("none");
    if (!token)
        return -1;
    char path[512];
    if (at)
        snprintf(path, sizeof(path), "%.*s%s%s", (int)(at - st->path), st->path, id, at + 4);
    else
        snprintf(path, sizeof(path), "%s", st->path);
    char *auth = sx_auth_header(token);
    const char *hdrs[] = {"Content-Type: application/json", auth, NULL};
    if (snapshot(f, before) != 0) {
        free(auth);
        free(token);
        return -1;
    }
    sx_storage_fault_set(f->fault, nth, every);
    int rc = sx_srv_request(&f->srv, st->admin ? SX_ADMIN : proto, st->method, path, hdrs, st->body,
                            st->body ? strlen(st->body) : 0, r);
    sodium_memzero(token, strlen(token));
    free(auth);
    free(token);
    return rc;
}

/* Walk n over every storage call of st. Returns the number of calls the request makes. */
static unsigned long walk(fixture *f, const step *st, sx_proto proto)
{
    bool retried = false;
    for (unsigned long n = 1; n <= MAX_WALK; n++) {
        sx_resp r;
        state before, after;
        int rc = send_step(f, st, proto, n, false, &r, &before);
        unsigned long calls = sx_storage_fault_calls(f->fault);
        sx_storage_fault_set(f->fault, 0, false);
        if (rc != 0) {
            fprintf(stderr, "%s: no answer (call %lu failing)\n", st->what, n);
            sx_test_failures++;
            sx_resp_free(&r);
            return 0;
        }
        if (calls < n) {
            /* Past the last call: nothing failed, the operation must do what it always does. */
            if (r.status != st->ok) {
                fprintf(stderr, "%s: %ld without a fault, expected %ld: %s\n", st->what, r.status, st->ok, r.body);
                sx_test_failures++;
            }
            sx_resp_free(&r);
            tot.walks++;
            return calls;
        }
        if (r.status == st->ok && !retried) {
            /* The failure may have gone to a call of the server's own (the rotation engine's
             * first scan): try the same position once more; twice in a row is a real miss. */
            retried = true;
            sx_resp_free(&r);
            n--;
            continue;
        }
        retried = false;
        tot.injected++;
        if (r.status != 503 || !sx_resp_is_error(&r, "unavailable")) {
            fprintf(stderr, "%s: storage call %lu of %lu failing gave %ld, expected 503 unavailable: %s\n", st->what, n,
                    calls, r.status, r.body);
            sx_test_failures++;
        }
        sx_resp_free(&r);
        CHECK(snapshot(f, &after) == 0);
        if (st->env_key ? !same_secrets(&before, &after) : !same_state(&before, &after)) {
            fprintf(stderr, "%s: storage call %lu failing changed the store (%zu -> %zu records)\n", st->what, n,
                    before.records, after.records);
            sx_test_failures++;
        }
        if (!healthy(f)) {
            fprintf(stderr, "%s: the server stopped answering after call %lu failed\n", st->what, n);
            sx_test_failures++;
            return 0;
        }
    }
    fprintf(stderr, "%s: still failing after %d calls\n", st->what, MAX_WALK);
    sx_test_failures++;
    return 0;
}

/* Unfaulted request, for set-up and checks. */
static long plain(fixture *f, const char *method, const char *path, const char *body, char *out, size_t outcap)
{
    step st = {"set-up", method, path, body, 0, false, false};
    sx_resp r;
    state before;
    long status = -1;
    if (send_step(f, &st, SX_H1, 0, false, &r, &before) == 0)
        status = r.status;
    sx_storage_fault_set(f->fault, 0, false);
    if (out)
        snprintf(out, outcap, "%s", r.body ? r.body : "");
    sx_resp_free(&r);
    return status;
}

#define E "/o/p/envs/e"

/* The steps in an order in which each one's unfaulted end leaves what the next one expects. */
static const step warm_steps[] = {
    /* Token list reads every token record, and every request here mints one: walk it early. */
    {"token create", "POST", "/v1/tokens", "{\"org\":\"o\",\"role\":\"viewer\",\"label\":\"walk\"}", 201, true},
    {"token list", "GET", "/v1/tokens", NULL, 200, true},
    {"token revoke", "DELETE", "/v1/tokens/{id}", NULL, 200, true},
    {"list", "GET", E "/secrets", NULL, 200, false},
    {"list page", "GET", E "/secrets?limit=1&after=keep1", NULL, 200, false},
    {"get", "GET", E "/secrets/keep1", NULL, 200, false},
    {"get missing", "GET", E "/secrets/nope", NULL, 404, false},
    {"reveal", "GET", E "/secrets/keep1/value", NULL, 200, false},
    {"reveal without value", "GET", E "/secrets/keep2/value", NULL, 404, false},
    {"values", "GET", E "/values", NULL, 200, false},
    {"create", "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"w1\",\"description\":\"d1\"}", 201, false},
    {"create existing", "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"w1\"}", 409, false},
    {"update", "PUT", E "/secrets/w1", "{\"kind\":\"secret\",\"name\":\"w1\",\"description\":\"d2\"}", 200, false},
    {"update missing", "PUT", E "/secrets/nope", "{\"kind\":\"secret\",\"name\":\"nope\"}", 404, false},
    {"set-value", "PUT", E "/secrets/w1/value", "{\"value\":\"first value\"}", 200, false},
    {"set-value again", "PUT", E "/secrets/w1/value", "{\"value\":\"second value\"}", 200, false},
    {"set-value missing", "PUT", E "/secrets/nope/value", "{\"value\":\"x\"}", 404, false},
    {"delete", "DELETE", E "/secrets/w1", NULL, 200, false},
    {"delete missing", "DELETE", E "/secrets/w1", NULL, 404, false},
    {"create in a new env", "POST", "/o/p/envs/e2/secrets", "{\"kind\":\"secret\",\"name\":\"n\"}", 201, false},
    {"first value of an env", "PUT", "/o/p/envs/e2/secrets/n/value", "{\"value\":\"env key made now\"}", 200, false,
     true},
    {"readyz", "GET", "/readyz", NULL, 200, false},
};

/* After a restart: data keys and tokens are no longer cached, so their reads join the walk. */
static const step cold_steps[] = {
    {"reveal (cold caches)", "GET", E "/secrets/keep1/value", NULL, 200, false},
    {"values (cold caches)", "GET", "/o/p/envs/e2/values", NULL, 200, false},
    {"set-value (cold caches)", "PUT", "/o/p/envs/e2/secrets/n/value", "{\"value\":\"after restart\"}", 200, false},
};

static void check_value(fixture *f, const char *path, const char *want)
{
    char body[4096];
    long st = plain(f, "GET", path, NULL, body, sizeof(body));
    CHECK_INT(st, 200);
    char frag[256];
    snprintf(frag, sizeof(frag), "\"value\":\"%s\"", want);
    if (!strstr(body, frag)) {
        fprintf(stderr, "%s: expected value \"%s\", got %s\n", path, want, body);
        sx_test_failures++;
    }
}

static void every_storage_failure_is_a_503_that_changes_nothing(void)
{
    fixture f;
    memset(&tot, 0, sizeof(tot));
    REQUIRE(fixture_start(&f) == 0);
    REQUIRE(plain(&f, "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"keep1\"}", NULL, 0) == 201);
    REQUIRE(plain(&f, "PUT", E "/secrets/keep1/value", "{\"value\":\"kept\"}", NULL, 0) == 200);
    REQUIRE(plain(&f, "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"keep2\"}", NULL, 0) == 201);

    unsigned long most = 0;
    for (size_t i = 0; i < sizeof(warm_steps) / sizeof(warm_steps[0]); i++) {
        unsigned long calls = walk(&f, &warm_steps[i], i % 2 ? SX_H2C : SX_H1);
        printf("  %-24s %lu storage calls\n", warm_steps[i].what, calls);
        if (calls > most)
            most = calls;
    }
    /* The writes that succeeded at the end of their walks are all there. */
    check_value(&f, E "/secrets/keep1/value", "kept");
    check_value(&f, "/o/p/envs/e2/secrets/n/value", "env key made now");
    CHECK_INT(plain(&f, "GET", E "/secrets/w1", NULL, NULL, 0), 404);

    /* Restart on the same store: cold data-key and token caches. */
    server_down(&f);
    REQUIRE(server_up(&f) == 0);
    for (size_t i = 0; i < sizeof(cold_steps) / sizeof(cold_steps[0]); i++) {
        unsigned long calls = walk(&f, &cold_steps[i], i % 2 ? SX_H1 : SX_H2C);
        printf("  %-24s %lu storage calls\n", cold_steps[i].what, calls);
    }
    check_value(&f, "/o/p/envs/e2/secrets/n/value", "after restart");
    printf("%u operations walked, %u storage failures injected (at most %lu calls per request)\n", tot.walks,
           tot.injected, most);
    CHECK(tot.injected >= tot.walks);
    fixture_stop(&f);
}

/* The store failing every call: every storage-backed answer is 503 (healthz still 200), nothing
 * changes, and everything works again the moment the store does. */
static void storage_down_answers_503_everywhere_and_recovers(void)
{
    fixture f;
    REQUIRE(fixture_start(&f) == 0);
    REQUIRE(plain(&f, "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"keep1\"}", NULL, 0) == 201);
    REQUIRE(plain(&f, "PUT", E "/secrets/keep1/value", "{\"value\":\"kept\"}", NULL, 0) == 200);
    REQUIRE(plain(&f, "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"keep2\"}", NULL, 0) == 201);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof(warm_steps) / sizeof(warm_steps[0]); i++) {
            const step *st = &warm_steps[i];
            sx_resp r;
            state before, after;
            int rc = send_step(&f, st, (i + (size_t)round) % 2 ? SX_H2C : SX_H1, 1, true, &r, &before);
            CHECK_INT(rc, 0);
            if (r.status != 503 || !sx_resp_is_error(&r, "unavailable")) {
                fprintf(stderr, "%s with the store down: %ld %s\n", st->what, r.status, r.body);
                sx_test_failures++;
            }
            sx_resp_free(&r);
            CHECK(healthy(&f));
            sx_storage_fault_set(f.fault, 0, false);
            CHECK(snapshot(&f, &after) == 0);
            CHECK(same_state(&before, &after));
        }
    }
    /* Back up: the same operations succeed. */
    for (size_t i = 0; i < sizeof(warm_steps) / sizeof(warm_steps[0]); i++) {
        const step *st = &warm_steps[i];
        sx_resp r;
        state before;
        CHECK_INT(send_step(&f, st, i % 2 ? SX_H1 : SX_H2C, 0, false, &r, &before), 0);
        if (r.status != st->ok) {
            fprintf(stderr, "%s after the store came back: %ld %s\n", st->what, r.status, r.body);
            sx_test_failures++;
        }
        sx_resp_free(&r);
    }
    check_value(&f, E "/secrets/keep1/value", "kept");
    fixture_stop(&f);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines interleave with stderr in order */
    static const sx_test tests[] = {
        {"every_storage_failure_is_a_503_that_changes_nothing", every_storage_failure_is_a_503_that_changes_nothing},
        {"storage_down_answers_503_everywhere_and_recovers", storage_down_answers_503_everywhere_and_recovers},
    };
    /* --backend NAME selects the store behind the wrapper (memory by default). */
    if (argc >= 3 && strcmp(argv[1], "--backend") == 0) {
        backend = argv[2];
        argv[2] = argv[0];
        argc -= 2;
        argv += 2;
    }
    sx_server_block_signals();
    if (sodium_init() < 0)
        return 1;
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
