/*
 * test_consistency.c - races between clients and key rotations that must never lose a value or
 * mislabel one, made to happen every time with the server's pause points (common/testpoint.c:
 * SECRETSD_TEST_PAUSE_DIR, a file P.hold holds a thread at point P, which shows P.paused):
 *
 *  - a value set while a data-key rotation runs, committing between the rotation's scan for
 *    values under the old key and its destroy of that key, is still revealed afterwards
 *    (RocksDB and PostgreSQL);
 *  - PUT .../value with If-Match racing a DELETE of the same secret answers 200 or 404, never 412
 *    (nothing else wrote the key), over 2,000 rounds;
 *  - a reveal that a set-value overtakes between its reads returns an ETag that names the revision
 *    of the value it returns;
 *  - a rotation's progress never counts past its total, also when values are added mid-sweep.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops_util.h"
#include "testutil.h"

static int g_skip;

typedef struct rig {
    sx_srv srv;
    char *pause; /* the pause-point folder */
    char env[600];
    char *token;
    char auth[512];
} rig;

static void rig_down(rig *g);

static bool rig_up(rig *g, const char *backend)
{
    memset(g, 0, sizeof(*g));
    g->pause = sx_test_tmpdir("pause");
    snprintf(g->env, sizeof(g->env), "SECRETSD_TEST_PAUSE_DIR=%s", g->pause);
    const char *env[] = {g->env, NULL};
    int r = sx_srv_start(&g->srv, &(sx_srv_opts){.backend = backend, .threads = 2, .extra_env = env});
    if (r == 77) {
        g_skip = 1;
        return false;
    }
    CHECK_INT(r, 0);
    g->token = r == 0 ? sx_srv_mint_token(&g->srv, "acme", NULL, NULL, "owner", NULL) : NULL;
    CHECK(g->token != NULL);
    if (!g->token) {
        rig_down(g);
        return false;
    }
    snprintf(g->auth, sizeof(g->auth), "Authorization: Bearer %s", g->token);
    return true;
}

static void rig_down(rig *g)
{
    if (g->srv.pid)
        CHECK_INT(sx_srv_stop(&g->srv, SIGTERM, 60), 0);
    if (g->pause) {
        sx_test_rmtree(g->pause);
        free(g->pause);
    }
    free(g->token);
}

static void hold(rig *g, const char *point)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/%s.hold", g->pause, point);
    CHECK(sx_test_write_file(p, "", 0) == 0);
}

static void release(rig *g, const char *point)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/%s.hold", g->pause, point);
    CHECK(unlink(p) == 0);
}

/* Wait (up to 60 s) until a thread is held at point. */
static bool paused_at(rig *g, const char *point)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/%s.paused", g->pause, point);
    if (sx_test_wait_for_file(p, 60000))
        return true;
    fprintf(stderr, "nothing paused at %s\n", point);
    return false;
}

/* One request as the owner; the ETag into etag (when not NULL). Returns the status (0: no answer). */
static long call(rig *g, const char *method, const char *path, const char *json, const char *extra, char **ret_body,
                 char *etag, size_t etag_cap)
{
    const char *h[4] = {g->auth, NULL, NULL, NULL};
    size_t n = 1;
    if (json)
        h[n++] = "Content-Type: application/json";
    if (extra)
        h[n++] = extra;
    sx_resp r;
    long st = 0;
    if (sx_srv_request(&g->srv, SX_H1, method, path, h, json, json ? strlen(json) : 0, &r) == 0)
        st = r.status;
    if (etag && !sx_resp_header(&r, "etag", etag, etag_cap))
        etag[0] = '\0';
    if (ret_body) {
        *ret_body = r.body ? strdup(r.body) : NULL;
    }
    sx_resp_free(&r);
    return st;
}

static long create(rig *g, const char *env, const char *name, char *etag, size_t cap)
{
    char path[256], body[256];
    snprintf(path, sizeof(path), "/acme/web/envs/%s/secrets", env);
    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\"}", name);
    return call(g, "POST", path, body, NULL, NULL, etag, cap);
}

static long set_value(rig *g, const char *env, const char *name, const char *value, char *etag, size_t cap)
{
    char path[256], body[512];
    snprintf(path, sizeof(path), "/acme/web/envs/%s/secrets/%s/value", env, name);
    snprintf(body, sizeof(body), "{\"value\":\"%s\"}", value);
    return call(g, "PUT", path, body, NULL, NULL, etag, cap);
}

/* The revealed value of env/name into buf ("" when none); returns the status. */
static long reveal(rig *g, const char *env, const char *name, char *buf, size_t cap, char *etag, size_t ecap)
{
    char path[256], *body = NULL;
    snprintf(path, sizeof(path), "/acme/web/envs/%s/secrets/%s/value", env, name);
    long st = call(g, "GET", path, NULL, NULL, &body, etag, ecap);
    buf[0] = '\0';
    const char *v = body ? strstr(body, "\"value\":\"") : NULL;
    if (v) {
        v += 9;
        size_t l = strcspn(v, "\"");
        snprintf(buf, cap, "%.*s", (int)(l < cap ? l : cap - 1), v);
    }
    free(body);
    return st;
}

/* ---- a value set during a data-key rotation -------------------------------------------------- */

typedef struct bg_call {
    rig *g;
    const char *env, *name, *value;
    long status;
    char etag[64];
    char got[256];
} bg_call;

static void *bg_set_value(void *arg)
{
    bg_call *b = arg;
    b->status = set_value(b->g, b->env, b->name, b->value, b->etag, sizeof(b->etag));
    return NULL;
}

static void *bg_reveal(void *arg)
{
    bg_call *b = arg;
    b->status = reveal(b->g, b->env, b->name, b->got, sizeof(b->got), b->etag, sizeof(b->etag));
    return NULL;
}

/*
 * The set-value encrypts under data-key version 1 and is held before its batch; the rotation makes
 * version 2 active, re-encrypts the old value, finds nothing under version 1 and is held before
 * destroying it; then the set-value commits and the destroy runs. The value must survive: either
 * the set-value is refused and encrypts again under version 2, or the destroy sees it.
 */
static void value_set_during_rotation_survives(const char *backend)
{
    rig g;
    if (!rig_up(&g, backend))
        return;
    REQUIRE(create(&g, "prod", "a", NULL, 0) == 201);
    REQUIRE(set_value(&g, "prod", "a", "old", NULL, 0) == 200);

    hold(&g, "set-value.batch");
    bg_call b = {.g = &g, .env = "prod", .name = "a", .value = "new"};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, bg_set_value, &b) == 0);
    CHECK(paused_at(&g, "set-value.batch"));

    hold(&g, "rotation.destroy");
    yajl_val v = ops_admin_json(&g.srv, "POST", "/v1/envs/acme/web/prod/rotate", "{}", 202);
    CHECK(v != NULL);
    yajl_tree_free(v);
    CHECK(paused_at(&g, "rotation.destroy"));

    release(&g, "set-value.batch");
    pthread_join(th, NULL);
    CHECK_INT(b.status, 200);
    release(&g, "rotation.destroy");
    CHECK(ops_wait_rotations_done(&g.srv, 60));

    char got[64], etag[64];
    CHECK_INT(reveal(&g, "prod", "a", got, sizeof(got), etag, sizeof(etag)), 200);
    CHECK_STR(got, "new");
    CHECK_STR(etag, b.etag);
    /* Only the new data-key version is left. */
    v = ops_admin_json(&g.srv, "GET", "/v1/envs/acme/web/prod", NULL, 200);
    yajl_val vers = v ? ops_jget(v, yajl_t_array, "dataKeys", NULL) : NULL;
    CHECK(vers && vers->u.array.len == 1);
    CHECK_INT(ops_jint(v, "activeVersion", NULL), 2);
    yajl_tree_free(v);
    rig_down(&g);
}

static void a_value_set_between_the_rotation_scan_and_destroy_survives_on_rocksdb(void)
{
    value_set_during_rotation_survives("rocksdb");
}

static void a_value_set_between_the_rotation_scan_and_destroy_survives_on_postgres(void)
{
    value_set_during_rotation_survives("postgres");
}

/* ---- If-Match racing a delete ---------------------------------------------------------------- */

typedef struct racer {
    CURL *h;
    struct curl_slist *hdrs;
    sx_test_buf body;
    long status;
} racer;

static void racer_setup(racer *x, rig *g, const char *method, const char *path, const char *json, const char *extra)
{
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", g->srv.port, path);
    curl_easy_setopt(x->h, CURLOPT_URL, url);
    curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
    curl_slist_free_all(x->hdrs);
    x->hdrs = curl_slist_append(NULL, g->auth);
    if (json) {
        x->hdrs = curl_slist_append(x->hdrs, "Content-Type: application/json");
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)strlen(json));
    } else {
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(x->h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (extra)
        x->hdrs = curl_slist_append(x->hdrs, extra);
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, sx_test_buf_append);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, &x->body);
    free(x->body.data);
    memset(&x->body, 0, sizeof(x->body));
    x->status = 0;
}

/* Run both at once on their own keep-alive connections. */
static void race2(CURLM *m, racer *a, racer *b)
{
    curl_multi_add_handle(m, a->h);
    curl_multi_add_handle(m, b->h);
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &a->status);
    curl_easy_getinfo(b->h, CURLINFO_RESPONSE_CODE, &b->status);
    curl_multi_remove_handle(m, a->h);
    curl_multi_remove_handle(m, b->h);
}

static void if_match_set_value_racing_a_delete_is_200_or_404_never_412(void)
{
    enum { ROUNDS = 2000, VLEN = 16384 };
    rig g;
    if (!rig_up(&g, "memory"))
        return;
    /* A large value: encrypting it widens the window between the writer's read and its batch. */
    char *value = malloc(VLEN + 32);
    int n = snprintf(value, VLEN + 32, "{\"value\":\"");
    memset(value + n, 'v', VLEN);
    memcpy(value + n + VLEN, "\"}", 3);
    CURLM *m = curl_multi_init();
    racer del = {.h = curl_easy_init()}, put = {.h = curl_easy_init()};
    long counts[600] = {0};
    long other = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char name[32], etag[64], hdr[96], path[128], vpath[160];
        snprintf(name, sizeof(name), "r%d", round);
        if (create(&g, "race", name, etag, sizeof(etag)) != 201 || !etag[0]) {
            other++;
            continue;
        }
        snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
        snprintf(path, sizeof(path), "/acme/web/envs/race/secrets/%s", name);
        snprintf(vpath, sizeof(vpath), "%s/value", path);
        racer_setup(&del, &g, "DELETE", path, NULL, NULL);
        racer_setup(&put, &g, "PUT", vpath, value, hdr);
        race2(m, round % 2 ? &del : &put, round % 2 ? &put : &del);
        if (del.status != 200)
            other++;
        if (put.status >= 0 && put.status < 600)
            counts[put.status]++;
    }
    fprintf(stderr, "%d rounds: PUT 200 %ld, 404 %ld, 412 %ld; other answers %ld\n", ROUNDS, counts[200], counts[404],
            counts[412], other);
    CHECK_INT(counts[412], 0);
    CHECK_INT(counts[200] + counts[404], ROUNDS);
    CHECK_INT(other, 0);
    curl_slist_free_all(del.hdrs);
    curl_slist_free_all(put.hdrs);
    free(del.body.data);
    free(put.body.data);
    curl_easy_cleanup(del.h);
    curl_easy_cleanup(put.h);
    curl_multi_cleanup(m);
    free(value);
    rig_down(&g);
}

/* ---- reveal's ETag ----------------------------------------------------------------------------- */

/*
 * The reveal is held after it read the metadata (ETag, updatedAt) and before it reads the value;
 * a set-value commits meanwhile. Whatever value the reveal returns, its ETag must be the one of
 * that value's revision.
 */
static void a_reveal_overtaken_by_a_set_value_returns_the_etag_of_its_value(void)
{
    rig g;
    if (!rig_up(&g, "rocksdb"))
        return;
    char etag1[64], etag2[64];
    REQUIRE(create(&g, "prod", "s", NULL, 0) == 201);
    REQUIRE(set_value(&g, "prod", "s", "one", etag1, sizeof(etag1)) == 200);
    hold(&g, "reveal.value");
    bg_call b = {.g = &g, .env = "prod", .name = "s"};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, bg_reveal, &b) == 0);
    CHECK(paused_at(&g, "reveal.value"));
    /* The reveal holds one event loop; the other serves this write. */
    CHECK_INT(set_value(&g, "prod", "s", "two", etag2, sizeof(etag2)), 200);
    release(&g, "reveal.value");
    pthread_join(th, NULL);
    CHECK_INT(b.status, 200);
    fprintf(stderr, "revealed \"%s\" with ETag %s (\"one\" is %s, \"two\" is %s)\n", b.got, b.etag, etag1, etag2);
    if (strcmp(b.got, "two") == 0)
        CHECK_STR(b.etag, etag2);
    else
        CHECK(strcmp(b.got, "one") == 0 && strcmp(b.etag, etag1) == 0);
    rig_down(&g);
}

/* ---- the values map --------------------------------------------------------------------------- */

static void *bg_values(void *arg)
{
    bg_call *b = arg;
    char path[256], *body = NULL;
    snprintf(path, sizeof(path), "/acme/web/envs/%s/values", b->env);
    b->status = call(b->g, "GET", path, NULL, NULL, &body, NULL, 0);
    snprintf(b->got, sizeof(b->got), "%s", body ? body : "");
    free(body);
    return NULL;
}

/*
 * The values map walks the value records and the metadata records (which name each value's
 * version, bound into its ciphertext). It is held between the two walks while a set-value commits,
 * so the walks see the secret at two versions: the answer must still be 200 with one of the two
 * values, never a 500 for a value that "fails to decrypt".
 */
static void values_map_overtaken_by_a_set_value_is_200(void)
{
    rig g;
    if (!rig_up(&g, "rocksdb"))
        return;
    REQUIRE(create(&g, "prod", "s", NULL, 0) == 201);
    REQUIRE(set_value(&g, "prod", "s", "one", NULL, 0) == 200);
    REQUIRE(create(&g, "prod", "t", NULL, 0) == 201);
    REQUIRE(set_value(&g, "prod", "t", "tee", NULL, 0) == 200);
    hold(&g, "values.meta");
    bg_call b = {.g = &g, .env = "prod"};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, bg_values, &b) == 0);
    CHECK(paused_at(&g, "values.meta"));
    CHECK_INT(set_value(&g, "prod", "s", "two", NULL, 0), 200);
    release(&g, "values.meta");
    pthread_join(th, NULL);
    fprintf(stderr, "values map: %ld %s\n", b.status, b.got);
    CHECK_INT(b.status, 200);
    CHECK(strcmp(b.got, "{\"s\":\"two\",\"t\":\"tee\"}") == 0 || strcmp(b.got, "{\"s\":\"one\",\"t\":\"tee\"}") == 0);
    rig_down(&g);
}

/* ---- rotation progress --------------------------------------------------------------------------- */

static void rotation_counts(rig *g, char *phase, size_t cap, long long *ret_done, long long *ret_total)
{
    yajl_val v = ops_admin_json(&g->srv, "GET", "/v1/rotations", NULL, 200);
    yajl_val r = v && YAJL_IS_ARRAY(v) && v->u.array.len == 1 ? v->u.array.values[0] : NULL;
    yajl_val p = r ? ops_jget(r, yajl_t_string, "phase", NULL) : NULL;
    snprintf(phase, cap, "%s", p ? YAJL_GET_STRING(p) : "?");
    *ret_done = r ? ops_jint(r, "done", NULL) : -1;
    *ret_total = r ? ops_jint(r, "total", NULL) : -1;
    yajl_tree_free(v);
}

/*
 * Two values when the rotation counts them, four more set while its sweep is held: the sweep
 * handles six, and neither the sweep nor the destroy phase may report more done than total.
 */
static void rotation_progress_never_counts_past_its_total(void)
{
    rig g;
    if (!rig_up(&g, "rocksdb"))
        return;
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof(name), "a%d", i);
        REQUIRE(create(&g, "prog", name, NULL, 0) == 201);
        REQUIRE(set_value(&g, "prog", name, "before", NULL, 0) == 200);
    }
    hold(&g, "rotation.sweep");
    hold(&g, "rotation.destroy");
    yajl_val v = ops_admin_json(&g.srv, "POST", "/v1/envs/acme/web/prog/rotate", "{}", 202);
    CHECK(v != NULL);
    yajl_tree_free(v);
    CHECK(paused_at(&g, "rotation.sweep"));
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "b%d", i);
        CHECK_INT(create(&g, "prog", name, NULL, 0), 201);
        CHECK_INT(set_value(&g, "prog", name, "during", NULL, 0), 200);
    }
    char phase[32];
    long long done, total;
    rotation_counts(&g, phase, sizeof(phase), &done, &total);
    fprintf(stderr, "held sweep: %s %lld/%lld\n", phase, done, total);
    CHECK_STR(phase, "reencrypt");
    CHECK(done >= 0 && done <= total);
    release(&g, "rotation.sweep");
    CHECK(paused_at(&g, "rotation.destroy"));
    rotation_counts(&g, phase, sizeof(phase), &done, &total);
    fprintf(stderr, "held destroy: %s %lld/%lld\n", phase, done, total);
    CHECK_STR(phase, "destroy");
    CHECK_INT(done, 6);
    CHECK_INT(total, 6);
    /* What the operator sees. */
    char *out = NULL;
    CHECK_INT(sx_test_sh(&out, "'%s' --socket '%s' status 2>&1", SX_SECRETSCTL_PATH, g.srv.admin_socket), 0);
    fprintf(stderr, "secretsctl: %s", out ? out : "");
    CHECK(out && strstr(out, "destroy 6/6 (100%)"));
    free(out);
    release(&g, "rotation.destroy");
    CHECK(ops_wait_rotations_done(&g.srv, 60));
    rig_down(&g);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"a_value_set_between_the_rotation_scan_and_destroy_survives_on_rocksdb",
         a_value_set_between_the_rotation_scan_and_destroy_survives_on_rocksdb},
        {"a_value_set_between_the_rotation_scan_and_destroy_survives_on_postgres",
         a_value_set_between_the_rotation_scan_and_destroy_survives_on_postgres},
        {"if_match_set_value_racing_a_delete_is_200_or_404_never_412",
         if_match_set_value_racing_a_delete_is_200_or_404_never_412},
        {"a_reveal_overtaken_by_a_set_value_returns_the_etag_of_its_value",
         a_reveal_overtaken_by_a_set_value_returns_the_etag_of_its_value},
        {"rotation_progress_never_counts_past_its_total", rotation_progress_never_counts_past_its_total},
        {"values_map_overtaken_by_a_set_value_is_200", values_map_overtaken_by_a_set_value_is_200},
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int r = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return g_skip && r == 0 ? 77 : r;
}
