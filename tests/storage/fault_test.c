/*
 * fault_test.c - the fault-injecting wrapper: the nth call fails with -EIO, "every" keeps failing,
 * a failed call changes nothing in the wrapped store, iterator steps count, capabilities and the
 * checkpoint pass through, and the counter is exact under many threads. Each test runs over both
 * the memory and the RocksDB backend. (The full conformance suite also runs through the wrapper,
 * as storage_conformance_fault.)
 */
#include "storage/fault.h"
#include "storage/storage.h"
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>

static const char *const inner_backends[] = {"memory", "rocksdb"};
static char *tmp;

static sx_storage *wrap(const char *backend)
{
    tmp = sx_test_tmpdir("fault");
    char path[4096];
    snprintf(path, sizeof(path), "%s/db", tmp);
    sx_storage_options opt = {.backend = backend, .path = path, .sync = false};
    sx_storage *inner = NULL, *s = NULL;
    char err[256];
    if (sx_storage_open(&opt, &inner, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    if (sx_storage_fault_wrap(inner, &s) < 0) {
        sx_storage_close(inner);
        return NULL;
    }
    return s;
}

static void unwrap(sx_storage *s)
{
    sx_storage_close(s); /* closes the inner store too */
    sx_test_rmtree(tmp);
    free(tmp);
    tmp = NULL;
}

static void test_nth_call_fails_with_eio(void)
{
    for (size_t b = 0; b < 2; b++) {
        sx_storage *s = wrap(inner_backends[b]);
        REQUIRE(s);
        CHECK_STR(sx_storage_name(s), "fault");
        sx_storage_fault_set(s, 3, false);
        CHECK_INT(sx_storage_put(s, "a", 1, "1", 1, NULL), 0);           /* 1 */
        CHECK_INT(sx_storage_get(s, "a", 1, NULL, NULL, NULL), 0);       /* 2 */
        CHECK_INT(sx_storage_put(s, "b", 1, "2", 1, NULL), -EIO);        /* 3 */
        CHECK_INT(sx_storage_get(s, "b", 1, NULL, NULL, NULL), -ENOENT); /* the failed put did nothing */
        CHECK_INT(sx_storage_delete(s, "a", 1), 0);
        sx_storage_fault_set(s, 1, false);
        CHECK_INT(sx_storage_delete(s, "zz", 2), -EIO);
        CHECK_INT(sx_storage_delete(s, "zz", 2), -ENOENT);
        unwrap(s);
    }
}

static void test_every_call_fails_until_disarmed(void)
{
    for (size_t b = 0; b < 2; b++) {
        sx_storage *s = wrap(inner_backends[b]);
        REQUIRE(s);
        CHECK_INT(sx_storage_put(s, "a", 1, "1", 1, NULL), 0);
        sx_storage_fault_set(s, 2, true);
        CHECK_INT(sx_storage_get(s, "a", 1, NULL, NULL, NULL), 0);
        for (int i = 0; i < 5; i++) {
            CHECK_INT(sx_storage_get(s, "a", 1, NULL, NULL, NULL), -EIO);
            CHECK_INT(sx_storage_put(s, "a", 1, "2", 1, NULL), -EIO);
        }
        sx_storage_iter *it = NULL;
        CHECK_INT(sx_storage_iter_new(s, "", 0, NULL, 0, 0, &it), -EIO);
        sx_storage_fault_set(s, 0, false);
        void *v = NULL;
        size_t vl = 0;
        CHECK_INT(sx_storage_get(s, "a", 1, &v, &vl, NULL), 0);
        CHECK(vl == 1 && memcmp(v, "1", 1) == 0);
        sx_storage_free(v);
        unwrap(s);
    }
}

static void test_failed_batch_changes_nothing(void)
{
    for (size_t b = 0; b < 2; b++) {
        sx_storage *s = wrap(inner_backends[b]);
        REQUIRE(s);
        uint64_t rev = 0;
        CHECK_INT(sx_storage_put(s, "m/o/p/e/X", 9, "meta", 4, &rev), 0);
        sx_storage_op ops[3] = {
            {.kind = SX_STORAGE_OP_PUT,
             .key = "m/o/p/e/X",
             .klen = 9,
             .val = "meta2",
             .vlen = 5,
             .cond = SX_STORAGE_COND_REV,
             .rev = rev},
            {.kind = SX_STORAGE_OP_PUT,
             .key = "v/o/p/e/X",
             .klen = 9,
             .val = "ct",
             .vlen = 2,
             .cond = SX_STORAGE_COND_ABSENT},
            {.kind = SX_STORAGE_OP_DELETE, .key = "m/o/p/e/Y", .klen = 9},
        };
        sx_storage_fault_set(s, 1, false);
        CHECK_INT(sx_storage_batch(s, ops, 3, NULL), -EIO);
        CHECK_INT(ops[0].ret_rev, 0);
        uint64_t now = 0;
        CHECK_INT(sx_storage_get(s, "m/o/p/e/X", 9, NULL, NULL, &now), 0);
        CHECK_INT(now, rev);
        CHECK_INT(sx_storage_get(s, "v/o/p/e/X", 9, NULL, NULL, NULL), -ENOENT);
        /* Retried once the fault is gone, the same batch applies whole. */
        CHECK_INT(sx_storage_batch(s, ops, 3, NULL), 0);
        CHECK_INT(sx_storage_get(s, "v/o/p/e/X", 9, NULL, NULL, NULL), 0);
        unwrap(s);
    }
}

static void test_iterator_steps_count_and_fail(void)
{
    for (size_t b = 0; b < 2; b++) {
        sx_storage *s = wrap(inner_backends[b]);
        REQUIRE(s);
        CHECK_INT(sx_storage_put(s, "p/1", 3, "1", 1, NULL), 0);
        CHECK_INT(sx_storage_put(s, "p/2", 3, "2", 1, NULL), 0);
        sx_storage_fault_set(s, 3, false);
        sx_storage_iter *it = NULL;
        REQUIRE(sx_storage_iter_new(s, "p/", 2, NULL, 0, 0, &it) == 0);       /* 1 */
        CHECK_INT(sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL), 0); /* 2 */
        CHECK_INT(sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL), -EIO);
        sx_storage_iter_free(it);
        unwrap(s);
    }
}

static void test_caps_and_checkpoint_pass_through(void)
{
    sx_storage *s = wrap("rocksdb");
    REQUIRE(s);
    CHECK(sx_storage_has(s, SX_STORAGE_CAP_DURABLE | SX_STORAGE_CAP_CHECKPOINT));
    CHECK_INT(sx_storage_put(s, "k", 1, "v", 1, NULL), 0);
    char copy[4200];
    snprintf(copy, sizeof(copy), "%s/copy", tmp);
    sx_storage_fault_set(s, 1, true);
    CHECK_INT(sx_storage_checkpoint(s, copy), 0); /* not counted */
    unwrap(s);
    s = wrap("memory");
    REQUIRE(s);
    CHECK(!sx_storage_has(s, SX_STORAGE_CAP_DURABLE));
    CHECK_INT(sx_storage_checkpoint(s, "/nonexistent/x"), -ENOTSUP);
    unwrap(s);
    sx_storage *w = NULL;
    CHECK_INT(sx_storage_fault_wrap(NULL, &w), -EINVAL);
}

typedef struct {
    sx_storage *s;
    int id;
    int eio;
    int other;
} thr_arg;

static void *hammer(void *p)
{
    thr_arg *a = p;
    char k[32];
    for (int i = 0; i < 250; i++) {
        int kl = snprintf(k, sizeof(k), "t/%d/%d", a->id, i);
        int r = sx_storage_put(a->s, k, (size_t)kl, "v", 1, NULL);
        if (r == -EIO)
            a->eio++;
        else if (r != 0)
            a->other++;
    }
    return NULL;
}

static void test_exactly_one_failure_under_threads(void)
{
    sx_storage *s = wrap("memory");
    REQUIRE(s);
    sx_storage_fault_set(s, 1000, false);
    thr_arg a[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (thr_arg){.s = s, .id = i};
        pthread_create(&th[i], NULL, hammer, &a[i]);
    }
    int eio = 0, other = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        eio += a[i].eio;
        other += a[i].other;
    }
    CHECK_INT(eio, 1);
    CHECK_INT(other, 0);
    int count = 0;
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, "t/", 2, NULL, 0, 0, &it) == 0);
    while (sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL) == 0)
        count++;
    sx_storage_iter_free(it);
    CHECK_INT(count, 8 * 250 - 1);
    unwrap(s);
}

static const sx_test tests[] = {
    {"nth_call_fails_with_eio", test_nth_call_fails_with_eio},
    {"every_call_fails_until_disarmed", test_every_call_fails_until_disarmed},
    {"failed_batch_changes_nothing", test_failed_batch_changes_nothing},
    {"iterator_steps_count_and_fail", test_iterator_steps_count_and_fail},
    {"caps_and_checkpoint_pass_through", test_caps_and_checkpoint_pass_through},
    {"exactly_one_failure_under_threads", test_exactly_one_failure_under_threads},
};

int main(int argc, char **argv)
{
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
