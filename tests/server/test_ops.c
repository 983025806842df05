/*
 * test_ops.c - online key rotation against the real secretsd and secretsctl: rotations under a
 * continuous client load on both HTTP versions, a SIGKILL in the middle of a rotation of 2000
 * environments, and the CLI's commands, help and errors.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "crypto/crypto.h"
#include "ops_util.h"
#include "storage/storage.h"
#include "testutil.h"

#define FILE_SEAL "type = file\nkey_file = seal.key\n"

/* ---- the load: clients creating, setting, revealing, listing, deleting ----------------------------- */

#define LOAD_THREADS 6
#define LOAD_ENVS    3
#define LOAD_MAX     4096

typedef struct load_worker {
    int id;
    const sx_srv *srv;
    const char *token;
    atomic_bool *stop;
    long requests, failures;
    int n;
    int env[LOAD_MAX];
    bool alive[LOAD_MAX];
    char value[LOAD_MAX][48];
} load_worker;

static void load_fail(load_worker *w, const char *what, const char *path, long st, const char *body)
{
    if (w->failures++ < 10)
        fprintf(stderr, "load %d: %s %s -> %ld %.200s\n", w->id, what, path, st, body ? body : "");
}

static void *load_main(void *arg)
{
    load_worker *w = arg;
    ops_client c;
    ops_client_init(&c, w->srv, w->id % 2 == 1, w->token);
    for (int i = 0; i < LOAD_MAX && !atomic_load(w->stop); i++) {
        int e = i % LOAD_ENVS;
        char base[128], path[256], body[256], name[32];
        snprintf(base, sizeof(base), "/acme/load/envs/e%d/secrets", e);
        snprintf(name, sizeof(name), "w%d-%d", w->id, i);
        long st;
        char *resp = NULL;
        w->n = i + 1;
        w->env[i] = e;
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"load\"}", name);
        ops_call(&c, "POST", base, body, &st, &resp);
        w->requests++;
        if (st != 201) {
            load_fail(w, "create", base, st, resp);
            free(resp);
            continue;
        }
        free(resp);
        for (int round = 0; round < (i % 3 == 0 ? 2 : 1); round++) {
            snprintf(w->value[i], sizeof(w->value[i]), "v%d-%d-%d", w->id, i, round);
            snprintf(path, sizeof(path), "%s/%s/value", base, name);
            snprintf(body, sizeof(body), "{\"value\":\"%s\"}", w->value[i]);
            ops_call(&c, "PUT", path, body, &st, &resp);
            w->requests++;
            if (st != 200)
                load_fail(w, "set", path, st, resp);
            free(resp);
            w->alive[i] = true;
            ops_call(&c, "GET", path, NULL, &st, &resp);
            w->requests++;
            char want[96];
            snprintf(want, sizeof(want), "\"value\":\"%s\"", w->value[i]);
            if (st != 200 || !strstr(resp, want))
                load_fail(w, "reveal", path, st, resp);
            free(resp);
        }
        ops_call(&c, "GET", base, NULL, &st, &resp);
        w->requests++;
        if (st != 200 || resp[0] != '[')
            load_fail(w, "list", base, st, resp);
        free(resp);
        snprintf(path, sizeof(path), "/acme/load/envs/e%d/values", e);
        ops_call(&c, "GET", path, NULL, &st, &resp);
        w->requests++;
        if (st != 200 || resp[0] != '{')
            load_fail(w, "values", path, st, resp);
        free(resp);
        if (i % 5 == 4) {
            snprintf(path, sizeof(path), "%s/%s", base, name);
            ops_call(&c, "DELETE", path, NULL, &st, &resp);
            w->requests++;
            if (st != 200)
                load_fail(w, "delete", path, st, resp);
            else
                w->alive[i] = false;
            free(resp);
        }
    }
    ops_client_clear(&c);
    return NULL;
}

typedef struct cli_run {
    char cmd[1024];
    int status;
    char *out;
} cli_run;

static void *cli_main(void *arg)
{
    cli_run *r = arg;
    r->status = sx_test_sh(&r->out, "%s", r->cmd);
    return NULL;
}

/* Every d/ record wraps under master, no d/ of env other than version dk, no v/ of env under another. */
static void check_store(const char *dir, uint32_t master, const char *env_prefix, uint32_t dk)
{
    char path[1024], err[256];
    snprintf(path, sizeof(path), "%s/data", dir);
    sx_storage_options so = {.backend = "rocksdb", .path = path, .sync = true};
    sx_storage *st = NULL;
    REQUIRE(sx_storage_open(&so, &st, err, sizeof(err)) == 0);
    sx_storage_iter *it;
    const void *k, *v;
    size_t kl, vl;
    long wrong_master = 0, stale_dk = 0, stale_values = 0, dks = 0, values = 0;
    REQUIRE(sx_storage_iter_new(st, "d/", 2, NULL, 0, 0, &it) == 0);
    while (sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL) == 0) {
        const uint8_t *b = v;
        dks++;
        uint32_t m = vl == 77 ? (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4] : 0;
        if (m != master)
            wrong_master++;
        char want[300];
        snprintf(want, sizeof(want), "d/%s/%08x", env_prefix, dk);
        if (kl > strlen(env_prefix) + 2 && memcmp((const char *)k + 2, env_prefix, strlen(env_prefix)) == 0 &&
            (kl != strlen(want) || memcmp(k, want, kl) != 0))
            stale_dk++;
    }
    sx_storage_iter_free(it);
    char vp[300];
    snprintf(vp, sizeof(vp), "v/%s/", env_prefix);
    REQUIRE(sx_storage_iter_new(st, vp, strlen(vp), NULL, 0, 0, &it) == 0);
    while (sx_storage_iter_next(it, NULL, NULL, &v, &vl, NULL) == 0) {
        uint32_t ver = 0;
        values++;
        if (sx_crypto_value_version(&ver, v, vl) != 0 || ver != dk)
            stale_values++;
    }
    sx_storage_iter_free(it);
    uint64_t rrecs = 0;
    REQUIRE(sx_storage_iter_new(st, "r/", 2, NULL, 0, 0, &it) == 0);
    while (sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL) == 0)
        rrecs++;
    sx_storage_iter_free(it);
    sx_storage_close(st);
    CHECK(dks > 0 && values > 0);
    CHECK_INT(wrong_master, 0);
    CHECK_INT(stale_dk, 0);
    CHECK_INT(stale_values, 0);
    CHECK_INT(rrecs, 0);
}

static void rotations_under_load_fail_no_request_and_lose_nothing(void)
{
    char *dir = sx_test_tmpdir("ops-load");
    ops_write_config(dir, "a.conf", true, FILE_SEAL);
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(token);
    /* 200 small envs for the master rotation to walk, and 60 values in e0 for the env rotation. */
    CHECK_INT(ops_seed(&srv, token, "acme", "load", "s%03d", NULL, 200, 4, false), 0);
    CHECK_INT(ops_seed(&srv, token, "acme", "load", NULL, "e0", 60, 4, false), 0);

    atomic_bool stop = false;
    load_worker *w = calloc(LOAD_THREADS, sizeof(*w));
    pthread_t tids[LOAD_THREADS];
    for (int t = 0; t < LOAD_THREADS; t++) {
        w[t] = (load_worker){.id = t, .srv = &srv, .token = token, .stop = &stop};
        pthread_create(&tids[t], NULL, load_main, &w[t]);
    }
    sx_test_sleep_ms(300);
    cli_run env_cli = {0}, master_cli = {0};
    snprintf(env_cli.cmd, sizeof(env_cli.cmd), "'%s' --config '%s/a.conf' env rotate acme/load/e0 --rate 100 --wait",
             SX_SECRETSCTL_PATH, dir);
    snprintf(master_cli.cmd, sizeof(master_cli.cmd), "'%s' --config '%s/a.conf' master rotate --rate 200 --wait",
             SX_SECRETSCTL_PATH, dir);
    pthread_t env_tid;
    pthread_create(&env_tid, NULL, cli_main, &env_cli);
    cli_main(&master_cli);
    pthread_join(env_tid, NULL);
    sx_test_sleep_ms(500); /* more load after both finished */
    atomic_store(&stop, true);
    long requests = 0, failures = 0;
    for (int t = 0; t < LOAD_THREADS; t++) {
        pthread_join(tids[t], NULL);
        requests += w[t].requests;
        failures += w[t].failures;
    }
    printf("load: %ld requests, %ld failed, during both rotations\n", requests, failures);
    CHECK_INT(master_cli.status, 0);
    CHECK_INT(env_cli.status, 0);
    CHECK(master_cli.out && strstr(master_cli.out, "done: master-key version 2 is active; version 1 is destroyed"));
    CHECK(env_cli.out && strstr(env_cli.out, "done: acme/load/e0 uses data-key version 2"));
    free(master_cli.out);
    free(env_cli.out);
    CHECK(requests > 500);
    CHECK_INT(failures, 0);

    /* Every value a client left behind reveals as last written; deleted ones stay deleted. */
    ops_client c;
    ops_client_init(&c, &srv, false, token);
    long wrong = 0;
    for (int t = 0; t < LOAD_THREADS; t++) {
        for (int i = 0; i < w[t].n; i++) {
            char path[256];
            snprintf(path, sizeof(path), "/acme/load/envs/e%d/secrets/w%d-%d/value", w[t].env[i], t, i);
            long st;
            char *resp = NULL;
            ops_call(&c, "GET", path, NULL, &st, &resp);
            char want[96];
            snprintf(want, sizeof(want), "\"value\":\"%s\"", w[t].value[i]);
            if (w[t].alive[i] ? (st != 200 || !strstr(resp, want)) : st != 404) {
                if (wrong++ < 5)
                    fprintf(stderr, "after: %s -> %ld %s (alive %d)\n", path, st, resp, w[t].alive[i]);
            }
            free(resp);
        }
    }
    ops_client_clear(&c);
    CHECK_INT(wrong, 0);
    CHECK_INT(ops_seed(&srv, token, "acme", "load", "s%03d", NULL, 200, 4, true), 0);
    CHECK_INT(ops_seed(&srv, token, "acme", "load", NULL, "e0", 60, 4, true), 0);

    yajl_val st = ops_admin_json(&srv, "GET", "/v1/status", NULL, 200);
    CHECK_INT(ops_jint(st, "masterKey", "active", NULL), 2);
    yajl_val vers = ops_jget(st, yajl_t_array, "masterKey", "versions", NULL);
    CHECK(vers && vers->u.array.len == 1);
    CHECK_INT(ops_jint(st, "dataKeys", NULL), 203);
    yajl_tree_free(st);
    yajl_val env = ops_admin_json(&srv, "GET", "/v1/envs/acme/load/e0", NULL, 200);
    CHECK_INT(ops_jint(env, "activeVersion", NULL), 2);
    yajl_val keys = ops_jget(env, yajl_t_array, "dataKeys", NULL);
    CHECK(keys && keys->u.array.len == 1);
    yajl_tree_free(env);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    check_store(dir, 2, "acme/load/e0", 2);
    free(w);
    free(token);
    sx_test_rmtree(dir);
    free(dir);
}

/* ---- crash in the middle of a rotation ----------------------------------------------------------- */

static void kill9(sx_srv *srv)
{
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    srv->pid = 0;
    sx_srv_stop(srv, SIGTERM, 1); /* frees the fields */
}

/* Poll the rotation (master when path is NULL) until done >= min in the sweep phase. */
static bool wait_progress(const sx_srv *srv, long long min, int timeout_s)
{
    double end = ((double)sx_clock_mono_ns() / 1e9) + timeout_s;
    while (((double)sx_clock_mono_ns() / 1e9) < end) {
        yajl_val v = ops_admin_json(srv, "GET", "/v1/rotations", NULL, 200);
        bool ok = false;
        for (size_t i = 0; v && YAJL_IS_ARRAY(v) && i < v->u.array.len; i++) {
            yajl_val r = v->u.array.values[i];
            yajl_val ph = ops_jget(r, yajl_t_string, "phase", NULL);
            const char *phase = ph ? YAJL_GET_STRING(ph) : "";
            if ((strcmp(phase, "rewrap") == 0 || strcmp(phase, "reencrypt") == 0) && ops_jint(r, "done", NULL) >= min)
                ok = true;
        }
        yajl_tree_free(v);
        if (ok)
            return true;
        sx_test_sleep_ms(50);
    }
    return false;
}

#define CRASH_ENVS   2000
#define CRASH_VALUES 400

static void sigkill_mid_rotation_resumes_and_loses_nothing(void)
{
    char *dir = sx_test_tmpdir("ops-crash");
    ops_write_config(dir, "seed.conf", false, FILE_SEAL); /* fast seeding: no fsync */
    ops_write_config(dir, "run.conf", true, FILE_SEAL);
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "seed.conf", NULL) == 0);
    char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(token);
    double t0 = ((double)sx_clock_mono_ns() / 1e9);
    CHECK_INT(ops_seed(&srv, token, "acme", "crash", "c%04d", NULL, CRASH_ENVS, 8, false), 0);
    CHECK_INT(ops_seed(&srv, token, "acme", "crash", NULL, "big", CRASH_VALUES, 8, false), 0);
    printf("seeded %d envs and %d values in one env in %.1f s\n", CRASH_ENVS, CRASH_VALUES,
           ((double)sx_clock_mono_ns() / 1e9) - t0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);

    /* Master rotation, killed with SIGKILL in the middle of the re-wrap. */
    REQUIRE(ops_start(&srv, dir, "run.conf", NULL) == 0);
    yajl_val v = ops_admin_json(&srv, "POST", "/v1/master/rotate", "{\"rate\":500}", 202);
    CHECK_INT(ops_jint(v, "from", NULL), 1);
    yajl_tree_free(v);
    CHECK(wait_progress(&srv, 300, 30));
    kill9(&srv);
    REQUIRE(ops_start(&srv, dir, "run.conf", NULL) == 0);
    yajl_val rots = ops_admin_json(&srv, "GET", "/v1/rotations", NULL, 200);
    CHECK(rots && YAJL_IS_ARRAY(rots) && rots->u.array.len == 1); /* resumed, not restarted from scratch */
    yajl_val done = rots && rots->u.array.len ? ops_jget(rots->u.array.values[0], yajl_t_number, "done", NULL) : NULL;
    CHECK(done && YAJL_GET_INTEGER(done) > 0);
    yajl_tree_free(rots);
    CHECK(ops_wait_rotations_done(&srv, 60));
    char *log = sx_test_read_file(srv.stderr_path, NULL);
    CHECK(log && strstr(log, "master-key rotation (version 1 -> 2) resumed after a restart"));
    CHECK(log && strstr(log, "master-key rotation (version 1 -> 2) finished"));
    free(log);
    yajl_val st = ops_admin_json(&srv, "GET", "/v1/status", NULL, 200);
    yajl_val vers = ops_jget(st, yajl_t_array, "masterKey", "versions", NULL);
    CHECK(vers && vers->u.array.len == 1);
    CHECK_INT(ops_jint(st, "masterKey", "active", NULL), 2);
    CHECK_INT(ops_jint(st, "dataKeys", NULL), CRASH_ENVS + 1);
    yajl_tree_free(st);

    /* Data-key rotation of the env with many values, killed during the re-encryption. */
    v = ops_admin_json(&srv, "POST", "/v1/envs/acme/crash/big/rotate", "{\"rate\":300}", 202);
    yajl_tree_free(v);
    CHECK(wait_progress(&srv, 60, 30));
    kill9(&srv);
    REQUIRE(ops_start(&srv, dir, "run.conf", NULL) == 0);
    CHECK(ops_wait_rotations_done(&srv, 60));
    yajl_val env = ops_admin_json(&srv, "GET", "/v1/envs/acme/crash/big", NULL, 200);
    CHECK_INT(ops_jint(env, "activeVersion", NULL), 2);
    CHECK_INT(ops_jint(env, "values", NULL), CRASH_VALUES);
    yajl_val keys = ops_jget(env, yajl_t_array, "dataKeys", NULL);
    CHECK(keys && keys->u.array.len == 1);
    yajl_tree_free(env);

    /* Zero values lost. */
    CHECK_INT(ops_seed(&srv, token, "acme", "crash", "c%04d", NULL, CRASH_ENVS, 8, true), 0);
    CHECK_INT(ops_seed(&srv, token, "acme", "crash", NULL, "big", CRASH_VALUES, 8, true), 0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    check_store(dir, 2, "acme/crash/big", 2);
    free(token);
    sx_test_rmtree(dir);
    free(dir);
}

/* ---- the CLI ---------------------------------------------------------------------------------------- */

static void cli_commands_have_help_json_and_clear_errors(void)
{
    const char *ctl = SX_SECRETSCTL_PATH;
    static const char *const helps[] = {
        "status --help", "master rotate --help", "master --help",       "env rotate a/b/c --help", "env --help",
        "seal --help",   "seal migrate --help",  "seal recover --help", "backup --help",           "token --help",
    };
    for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
        char *out = NULL;
        int rc = sx_test_sh(&out, "'%s' %s 2>&1", ctl, helps[i]);
        if (rc != 0 || !strstr(out, "usage: secretsctl"))
            fprintf(stderr, "%s -> %d: %s\n", helps[i], rc, out);
        CHECK_INT(rc, 0);
        free(out);
    }
    char *dir = sx_test_tmpdir("ops-cli");
    ops_write_config(dir, "a.conf", true, FILE_SEAL);
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    CHECK_INT(ops_seed(&srv, token, "acme", "cli", "e%d", NULL, 8, 2, false), 0);
    char conf[1024];
    snprintf(conf, sizeof(conf), "'%s' --config '%s/a.conf'", ctl, dir);

    char *out = NULL;
    CHECK_INT(sx_test_sh(&out, "%s --json status", conf), 0);
    char ebuf[128];
    yajl_val v = yajl_tree_parse(out, ebuf, sizeof(ebuf));
    CHECK(v && ops_jget(v, yajl_t_string, "seal", NULL) && ops_jint(v, "masterKey", "active", NULL) == 1);
    CHECK(v && YAJL_IS_FALSE(ops_jget(v, yajl_t_any, "sealed", NULL)));
    CHECK(v && ops_jget(v, yajl_t_array, "rotations", NULL));
    yajl_tree_free(v);
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s status", conf), 0);
    CHECK(strstr(out, "seal:        file, unsealed") && strstr(out, "version 1 wraps 8 data keys (active)"));
    free(out);

    /* Usage errors: 2, nothing sent. */
    CHECK_INT(sx_test_sh(NULL, "%s master rotate --rate x 2>/dev/null", conf), 2);
    CHECK_INT(sx_test_sh(NULL, "%s env rotate acme/cli 2>/dev/null", conf), 2);
    CHECK_INT(sx_test_sh(NULL, "%s env rotate 'acme/cli/e%%2f' 2>/dev/null", conf), 2);
    CHECK_INT(sx_test_sh(NULL, "unset NOPE; %s seal migrate --to passphrase --passphrase-env NOPE 2>/dev/null", conf),
              2);
    CHECK_INT(sx_test_sh(NULL, "%s seal migrate --to floppy 2>/dev/null", conf), 2);
    CHECK_INT(sx_test_sh(NULL, "%s backup 2>/dev/null", conf), 2);

    /* Server errors: 1 with the server's sentence. */
    CHECK_INT(sx_test_sh(&out, "%s env rotate acme/cli/nothing 2>&1", conf), 1);
    CHECK(strstr(out, "404") && strstr(out, "no data key"));
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s seal migrate --to file --key-file '%s/seal.key' 2>&1", conf, dir), 1);
    CHECK(strstr(out, "409"));
    free(out);
    /* A slow rotation is in progress: a second one is refused, status shows the first. */
    CHECK_INT(sx_test_sh(&out, "%s master rotate --rate 1", conf), 0);
    CHECK(strstr(out, "started: master-key rotation 1 -> "));
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s master rotate 2>&1", conf), 1);
    CHECK(strstr(out, "409") && strstr(out, "in progress"));
    free(out);
    bool shown = false;
    for (int i = 0; i < 40 && !shown; i++, sx_test_sleep_ms(50)) {
        CHECK_INT(sx_test_sh(&out, "%s status", conf), 0);
        shown = strstr(out, "rotations:   master-key rotation 1 -> 2: rewrap") != NULL;
        free(out);
    }
    CHECK(shown);
    CHECK_INT(sx_test_sh(&out, "%s --json env rotate acme/cli/e1 --rate 0", conf), 0);
    v = yajl_tree_parse(out, ebuf, sizeof(ebuf));
    CHECK(v && ops_jint(v, "from", NULL) == 1 && ops_jget(v, yajl_t_string, "phase", NULL));
    yajl_tree_free(v);
    free(out);

    /* The admin API's own checks. */
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_ADMIN, "POST", "/v1/master/rotate", hdrs, "{\"rate\":-1}", 11, &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK(sx_resp_is_error(&r, "invalid_request"));
    sx_resp_free(&r);
    CHECK(sx_srv_request(&srv, SX_ADMIN, "POST", "/v1/master/rotate", hdrs, "{\"speed\":1}", 11, &r) == 0);
    CHECK_INT(r.status, 400);
    sx_resp_free(&r);
    CHECK(sx_srv_request(&srv, SX_ADMIN, "GET", "/v1/master/rotate", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 405);
    sx_resp_free(&r);
    CHECK(sx_srv_request(&srv, SX_ADMIN, "POST", "/v1/backup", hdrs, "{\"dir\":\"rel/path\"}", 18, &r) == 0);
    CHECK_INT(r.status, 400);
    sx_resp_free(&r);
    CHECK(sx_srv_request(&srv, SX_ADMIN, "POST", "/v1/seal/migrate", hdrs, "{\"to\":\"file\",\"tcti\":\"x\"}", 24,
                         &r) == 0);
    CHECK_INT(r.status, 400);
    sx_resp_free(&r);
    /* Not on the public listener. */
    CHECK(sx_srv_request(&srv, SX_H1, "POST", "/v1/master/rotate", NULL, NULL, 0, &r) == 0);
    CHECK(r.status == 404 || r.status == 400);
    sx_resp_free(&r);
    /* SIGTERM in the middle of a rotation: a clean, prompt exit. */
    double t0 = ((double)sx_clock_mono_ns() / 1e9);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    CHECK(((double)sx_clock_mono_ns() / 1e9) - t0 < 10);

    /* The memory backend cannot be backed up. */
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    CHECK(sx_srv_request(&srv, SX_ADMIN, "POST", "/v1/backup", hdrs, "{\"dir\":\"/tmp/x-never\"}", 22, &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK(sx_resp_is_error(&r, "invalid_request"));
    sx_resp_free(&r);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(token);
    sx_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"rotations_under_load_fail_no_request_and_lose_nothing",
         rotations_under_load_fail_no_request_and_lose_nothing},
        {"sigkill_mid_rotation_resumes_and_loses_nothing", sigkill_mid_rotation_resumes_and_loses_nothing},
        {"cli_commands_have_help_json_and_clear_errors", cli_commands_have_help_json_and_clear_errors},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
