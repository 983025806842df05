/*
 * test_rotation.c - the rotation engine (ops/rotation.c) on its own, over the memory store
 * behind the fault-injecting wrapper: a failing storage call is reported and retried until the
 * rotation finishes, a stopped engine leaves a cursor that a new engine resumes from, and a value
 * deleted or rewritten by a client is never overwritten with the engine's copy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/ops.h"
#include "storage/fault.h"
#include "testutil.h"

#define ENVS 120

typedef struct fixture {
    sx_storage *st; /* the fault wrapper (owns the memory store) */
    sx_crypto *c;
    char dir[256];
} fixture;

typedef struct events {
    int failed, finished, resumed, started;
} events;

static void on_event(void *ctx, const sx_rotation *rot, const char *what, int code)
{
    events *e = ctx;
    (void)rot;
    if (strcmp(what, "failed") == 0) {
        e->failed++;
        CHECK(code < 0);
    } else if (strcmp(what, "finished") == 0) {
        e->finished++;
    } else if (strcmp(what, "resumed") == 0) {
        e->resumed++;
    } else if (strcmp(what, "started") == 0) {
        e->started++;
    }
}

static void value_of(char *buf, size_t cap, int env, int i)
{
    snprintf(buf, cap, "value %d/%d", env, i);
}

static void setup(fixture *f)
{
    char *dir = sx_test_tmpdir("rotation");
    snprintf(f->dir, sizeof(f->dir), "%s", dir);
    free(dir);
    char err[256], keyfile[300];
    sx_storage *mem = NULL;
    sx_storage_options so = {.backend = "memory"};
    if (sx_storage_open(&so, &mem, err, sizeof(err)) != 0 || sx_storage_fault_wrap(mem, &f->st) != 0)
        abort();
    snprintf(keyfile, sizeof(keyfile), "%s/seal.key", f->dir);
    sx_crypto_options co = {.seal = {.type = SX_CRYPTO_SEAL_FILE, .key_file = keyfile}};
    if (sx_crypto_open(&f->c, NULL, f->st, &co, err, sizeof(err)) != 0)
        abort();
    for (int e = 0; e < ENVS; e++) {
        for (int i = 0; i < 3; i++) {
            char env[16], name[16], val[64], key[64];
            snprintf(env, sizeof(env), "e%03d", e);
            snprintf(name, sizeof(name), "n%d", i);
            value_of(val, sizeof(val), e, i);
            sx_crypto_place p = {"o", "p", env, name};
            uint8_t *blob;
            size_t blen;
            if (sx_crypto_value_encrypt(f->c, &blob, &blen, &p, val, strlen(val)) != 0)
                abort();
            snprintf(key, sizeof(key), "v/o/p/%s/%s", env, name);
            if (sx_storage_put(f->st, key, strlen(key), blob, blen, NULL) != 0)
                abort();
            free(blob);
        }
    }
}

static void teardown(fixture *f)
{
    sx_crypto_free(f->c);
    sx_storage_close(f->st);
    sx_test_rmtree(f->dir);
}

/* Every seeded value decrypts; returns the failures. */
static int check_values(fixture *f)
{
    int bad = 0;
    for (int e = 0; e < ENVS; e++) {
        for (int i = 0; i < 3; i++) {
            char env[16], name[16], val[64], key[64], out[64];
            snprintf(env, sizeof(env), "e%03d", e);
            snprintf(name, sizeof(name), "n%d", i);
            snprintf(key, sizeof(key), "v/o/p/%s/%s", env, name);
            value_of(val, sizeof(val), e, i);
            void *blob = NULL;
            size_t blen = 0, plen = 0;
            sx_crypto_place p = {"o", "p", env, name};
            if (sx_storage_get(f->st, key, strlen(key), &blob, &blen, NULL) != 0 ||
                sx_crypto_value_decrypt(f->c, out, sizeof(out), &plen, &p, blob, blen) != 0 || plen != strlen(val) ||
                memcmp(out, val, plen) != 0)
                bad++;
            sx_storage_free(blob);
        }
    }
    return bad;
}

static void storage_failures_are_reported_and_retried_until_done(void)
{
    fixture f;
    setup(&f);
    events ev = {0};
    sx_rotor *r;
    REQUIRE(sx_rotor_new(&r, f.st, f.c, &(sx_rotor_options){.grace_ms = 1, .on_event = on_event, .event_ctx = &ev}) ==
            0);
    sx_rotation rot;
    REQUIRE(sx_rotor_begin_master(r, 0, &rot) == 0);
    sx_storage_fault_set(f.st, 40, false); /* one storage call in the middle of the rotation fails */
    REQUIRE(sx_rotor_start(r) == 0);
    for (int i = 0; i < 200 && !ev.finished; i++)
        sx_test_sleep_ms(50);
    CHECK_INT(ev.failed, 1);
    CHECK_INT(ev.finished, 1);
    sx_rotation *list = NULL;
    size_t n = 9;
    CHECK(sx_rotor_list(r, &list, &n) == 0 && n == 0);
    free(list);
    sx_crypto_status cs;
    REQUIRE(sx_crypto_status_get(f.c, &cs) == 0);
    CHECK_INT(cs.n_masters, 1);
    CHECK_INT(cs.active_master, 2);
    CHECK_INT(cs.masters[0].data_keys, ENVS);
    CHECK_INT(check_values(&f), 0);
    sx_rotor_free(r);
    teardown(&f);
}

static void a_stopped_engine_leaves_a_cursor_that_the_next_resumes(void)
{
    fixture f;
    setup(&f);
    events ev = {0};
    sx_rotor *r;
    REQUIRE(sx_rotor_new(&r, f.st, f.c, &(sx_rotor_options){.grace_ms = 1, .on_event = on_event, .event_ctx = &ev}) ==
            0);
    REQUIRE(sx_rotor_start(r) == 0);
    sx_crypto_place env = {"o", "p", "e007", NULL};
    REQUIRE(sx_rotor_begin_master(r, 100, NULL) == 0);  /* 120 envs at 100/s */
    REQUIRE(sx_rotor_begin_env(r, &env, 1, NULL) == 0); /* 3 values at 1/s */
    CHECK_INT(sx_rotor_begin_master(r, 0, NULL), -EBUSY);
    CHECK_INT(sx_rotor_begin_env(r, &env, 0, NULL), -EBUSY);
    sx_crypto_place none = {"o", "p", "nothing", NULL};
    CHECK_INT(sx_rotor_begin_env(r, &none, 0, NULL), -ENOENT);
    sx_test_sleep_ms(600);
    sx_rotor_stop(r);
    sx_rotation m, e;
    REQUIRE(sx_rotor_get(r, NULL, &m) == 0);
    REQUIRE(sx_rotor_get(r, &env, &e) == 0);
    CHECK(m.phase == SX_ROTATION_SWEEP && m.done > 0 && m.done < ENVS && m.cursor_len > 0);
    CHECK(e.phase == SX_ROTATION_SWEEP && e.to == 2 && e.done < 3);
    sx_rotor_free(r);

    /* While nothing runs, a client deletes one value of the env and rewrites another. */
    CHECK(sx_storage_delete(f.st, "v/o/p/e007/n2", 13) == 0);
    sx_crypto_place p1 = {"o", "p", "e007", "n1"};
    uint8_t *blob;
    size_t blen;
    REQUIRE(sx_crypto_value_encrypt(f.c, &blob, &blen, &p1, "value 7/1", 9) == 0);
    CHECK(sx_storage_put(f.st, "v/o/p/e007/n1", 13, blob, blen, NULL) == 0);
    free(blob);

    ev = (events){0};
    REQUIRE(sx_rotor_new(&r, f.st, f.c, &(sx_rotor_options){.grace_ms = 1, .on_event = on_event, .event_ctx = &ev}) ==
            0);
    REQUIRE(sx_rotor_run_all(r) == 0);
    CHECK_INT(ev.resumed, 2);
    CHECK_INT(ev.finished, 2);
    CHECK(sx_storage_get(f.st, "v/o/p/e007/n2", 13, NULL, NULL, NULL) == -ENOENT); /* stays deleted */
    /* e007's old data key is destroyed, and n2 is the only value missing. */
    CHECK(sx_storage_get(f.st, "d/o/p/e007/00000001", 19, NULL, NULL, NULL) == -ENOENT);
    CHECK(sx_storage_get(f.st, "d/o/p/e007/00000002", 19, NULL, NULL, NULL) == 0);
    CHECK_INT(check_values(&f), 1);
    sx_crypto_status cs;
    REQUIRE(sx_crypto_status_get(f.c, &cs) == 0);
    CHECK_INT(cs.n_masters, 1);
    CHECK_INT(cs.data_keys, ENVS);
    sx_rotor_free(r);
    teardown(&f);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"storage_failures_are_reported_and_retried_until_done", storage_failures_are_reported_and_retried_until_done},
        {"a_stopped_engine_leaves_a_cursor_that_the_next_resumes",
         a_stopped_engine_leaves_a_cursor_that_the_next_resumes},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
