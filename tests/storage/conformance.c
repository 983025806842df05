/*
 * conformance.c - the one behaviour suite every storage backend must pass.
 *
 * The program takes the backend name as its first argument ("memory", "rocksdb", "postgres", or
 * "fault", which is the fault-injecting wrapper around a memory store with no fault armed) and runs
 * the same tests against it; ctest registers it once per backend, in the manner of git's test suite
 * re-run against the reftable backend. Further arguments select single tests by name.
 *
 * Every test opens a fresh store (file backends in a fresh temporary directory, removed at the
 * end; postgres in a fresh database of a server this program starts and removes, tests/lib/pgtest.h).
 * Nothing here measures time.
 */
#include "storage/fault.h"
#include "storage/storage.h"
#include "testutil.h"
#ifdef SX_HAVE_POSTGRES
#include "pgtest.h"
static sx_pgtest pg;
#endif

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static const char *backend = "memory";
static char *store_dir;

static sx_storage *open_store(void)
{
    bool fault = strcmp(backend, "fault") == 0;
    store_dir = sx_test_tmpdir("conformance");
    char path[4096];
    snprintf(path, sizeof(path), "%s/db", store_dir);
    sx_storage_options opt = {.backend = fault ? "memory" : backend, .path = path, .sync = true};
#ifdef SX_HAVE_POSTGRES
    char dsn[256];
    if (strcmp(backend, "postgres") == 0) {
        static int databases;
        char db[32];
        snprintf(db, sizeof(db), "conformance%d", ++databases);
        if (sx_pgtest_createdb(&pg, db) != 0)
            return NULL;
        sx_pgtest_dsn(&pg, db, dsn, sizeof(dsn));
        opt.dsn = dsn;
        opt.password = pg.password;
        opt.pool_size = 12;
    }
#endif
    sx_storage *s = NULL;
    char err[256];
    int r = sx_storage_open(&opt, &s, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "open %s: %s (%s)\n", backend, err, sx_storage_strerror(r));
        return NULL;
    }
    if (fault) {
        sx_storage *w = NULL;
        if (sx_storage_fault_wrap(s, &w) < 0) {
            sx_storage_close(s);
            return NULL;
        }
        s = w;
    }
    return s;
}

static void close_store(sx_storage *s)
{
    sx_storage_close(s);
    sx_test_rmtree(store_dir);
    free(store_dir);
    store_dir = NULL;
}

static int put_str(sx_storage *s, const char *k, const char *v, uint64_t *rev)
{
    return sx_storage_put(s, k, strlen(k), v, strlen(v), rev);
}

/* True when key k exists with value v (strings). */
static bool has_str(sx_storage *s, const char *k, const char *v)
{
    void *val = NULL;
    size_t len = 0;
    if (sx_storage_get(s, k, strlen(k), &val, &len, NULL) != 0)
        return false;
    bool ok = len == strlen(v) && memcmp(val, v, len) == 0;
    sx_storage_free(val);
    return ok;
}

/* Collect the keys an iteration yields into one "k1,k2,..." string (keys are printable here). */
static int list_keys(sx_storage *s, const char *prefix, const char *start, unsigned flags, char *out, size_t outlen)
{
    sx_storage_iter *it = NULL;
    int r = sx_storage_iter_new(s, prefix, prefix ? strlen(prefix) : 0, start, start ? strlen(start) : 0, flags, &it);
    if (r < 0)
        return r;
    out[0] = '\0';
    size_t used = 0;
    const void *k;
    size_t kl;
    while ((r = sx_storage_iter_next(it, &k, &kl, NULL, NULL, NULL)) == 0) {
        int n = snprintf(out + used, outlen - used, "%s%.*s", used ? "," : "", (int)kl, (const char *)k);
        if (n < 0 || (size_t)n >= outlen - used) {
            r = -ENOSPC;
            break;
        }
        used += (size_t)n;
    }
    sx_storage_iter_free(it);
    return r == SX_STORAGE_DONE ? 0 : r;
}

static void test_round_trip(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    uint64_t rev1 = 0, rev2 = 0, grev = 0;
    CHECK_INT(put_str(s, "m/o/p/e/NAME", "hello", &rev1), 0);
    CHECK(rev1 != 0);
    void *val = NULL;
    size_t len = 0;
    CHECK_INT(sx_storage_get(s, "m/o/p/e/NAME", 12, &val, &len, &grev), 0);
    CHECK_INT(len, 5);
    CHECK(val && memcmp(val, "hello", 5) == 0);
    CHECK_INT(grev, rev1);
    sx_storage_free(val);
    CHECK_INT(put_str(s, "m/o/p/e/NAME", "world!", &rev2), 0);
    CHECK(rev2 != rev1);
    CHECK(has_str(s, "m/o/p/e/NAME", "world!"));
    CHECK_INT(sx_storage_get(s, "m/o/p/e/NAME", 12, NULL, NULL, &grev), 0);
    CHECK_INT(grev, rev2);
    CHECK_INT(sx_storage_get(s, "m/o/p/e/NAME", 12, NULL, NULL, NULL), 0);
    /* An empty value is a value. */
    CHECK_INT(put_str(s, "empty", "", NULL), 0);
    CHECK_INT(sx_storage_get(s, "empty", 5, &val, &len, NULL), 0);
    CHECK_INT(len, 0);
    sx_storage_free(val);
    CHECK_INT(sx_storage_delete(s, "m/o/p/e/NAME", 12), 0);
    CHECK_INT(sx_storage_get(s, "m/o/p/e/NAME", 12, NULL, NULL, NULL), -ENOENT);
    close_store(s);
}

static void test_missing_keys(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    void *val = (void *)1;
    size_t len = 77;
    uint64_t rev = 99;
    CHECK_INT(sx_storage_get(s, "nope", 4, &val, &len, &rev), -ENOENT);
    CHECK(val == (void *)1 && len == 77 && rev == 99); /* outputs untouched on failure */
    CHECK_INT(sx_storage_delete(s, "nope", 4), -ENOENT);
    char keys[64];
    CHECK_INT(list_keys(s, "", NULL, 0, keys, sizeof(keys)), 0);
    CHECK_STR(keys, "");
    CHECK_INT(list_keys(s, NULL, NULL, 0, keys, sizeof(keys)), 0);
    CHECK_STR(keys, "");
    close_store(s);
}

static void test_invalid_arguments(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    static char big[SX_STORAGE_MAX_KEY + 1];
    memset(big, 'k', sizeof(big));
    CHECK_INT(sx_storage_get(s, "", 0, NULL, NULL, NULL), -EINVAL);
    CHECK_INT(sx_storage_put(s, big, sizeof(big), "v", 1, NULL), -EINVAL);
    CHECK_INT(sx_storage_put(s, big, SX_STORAGE_MAX_KEY, "v", 1, NULL), 0);
    CHECK_INT(sx_storage_get(s, big, SX_STORAGE_MAX_KEY, NULL, NULL, NULL), 0);
    CHECK_INT(sx_storage_put(s, "k", 1, NULL, 3, NULL), -EINVAL);
    sx_storage_op dup[2] = {
        {.kind = SX_STORAGE_OP_PUT, .key = "k", .klen = 1, .val = "1", .vlen = 1},
        {.kind = SX_STORAGE_OP_DELETE, .key = "k", .klen = 1},
    };
    CHECK_INT(sx_storage_batch(s, dup, 2, NULL), -EINVAL);
    CHECK_INT(sx_storage_get(s, "k", 1, NULL, NULL, NULL), -ENOENT);
    sx_storage_op bad = {.kind = 9, .key = "k", .klen = 1};
    CHECK_INT(sx_storage_batch(s, &bad, 1, NULL), -EINVAL);
    sx_storage_op badcond = {.kind = SX_STORAGE_OP_CHECK, .key = "k", .klen = 1, .cond = 42};
    CHECK_INT(sx_storage_batch(s, &badcond, 1, NULL), -EINVAL);
    CHECK_INT(sx_storage_batch(s, NULL, 0, NULL), 0);
    close_store(s);
}

static void test_binary_keys_and_values(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    const uint8_t k1[] = {'b', 0, 1, 0xff, 0};
    const uint8_t k2[] = {'b', 0, 1, 0xff};
    const uint8_t k3[] = {'b', 0};
    uint8_t v[256];
    for (int i = 0; i < 256; i++)
        v[i] = (uint8_t)(255 - i);
    CHECK_INT(sx_storage_put(s, k1, sizeof(k1), v, sizeof(v), NULL), 0);
    CHECK_INT(sx_storage_put(s, k2, sizeof(k2), v, 10, NULL), 0);
    CHECK_INT(sx_storage_put(s, k3, sizeof(k3), v + 1, 1, NULL), 0);
    void *val = NULL;
    size_t len = 0;
    CHECK_INT(sx_storage_get(s, k1, sizeof(k1), &val, &len, NULL), 0);
    CHECK(len == sizeof(v) && memcmp(val, v, len) == 0);
    sx_storage_free(val);
    CHECK_INT(sx_storage_get(s, k2, sizeof(k2), &val, &len, NULL), 0);
    CHECK(len == 10 && memcmp(val, v, len) == 0);
    sx_storage_free(val);
    /* Order: k3 < k2 < k1 (a key sorts before its extensions); prefix with a NUL byte works. */
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, "b\0", 2, NULL, 0, 0, &it) == 0);
    const void *k;
    size_t kl, vl;
    const void *vv;
    const uint8_t *want[] = {k3, k2, k1};
    size_t wantlen[] = {sizeof(k3), sizeof(k2), sizeof(k1)};
    for (int i = 0; i < 3; i++) {
        REQUIRE(sx_storage_iter_next(it, &k, &kl, &vv, &vl, NULL) == 0);
        CHECK(kl == wantlen[i] && memcmp(k, want[i], kl) == 0);
    }
    CHECK_INT(sx_storage_iter_next(it, &k, &kl, NULL, NULL, NULL), SX_STORAGE_DONE);
    CHECK_INT(sx_storage_iter_next(it, &k, &kl, NULL, NULL, NULL), SX_STORAGE_DONE);
    sx_storage_iter_free(it);
    close_store(s);
}

static void test_one_mib_values(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    size_t n = 1024 * 1024;
    uint8_t *big = malloc(n);
    REQUIRE(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 13);
    uint64_t rev = 0;
    CHECK_INT(sx_storage_put(s, "big/1", 5, big, n, &rev), 0);
    sx_storage_op op = {
        .kind = SX_STORAGE_OP_PUT, .key = "big/2", .klen = 5, .val = big, .vlen = n, .cond = SX_STORAGE_COND_ABSENT};
    CHECK_INT(sx_storage_batch(s, &op, 1, NULL), 0);
    void *val = NULL;
    size_t len = 0;
    CHECK_INT(sx_storage_get(s, "big/1", 5, &val, &len, NULL), 0);
    CHECK(len == n && memcmp(val, big, n) == 0);
    sx_storage_free(val);
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, "big/", 4, NULL, 0, 0, &it) == 0);
    const void *vv;
    size_t vl;
    uint64_t irev = 0;
    int count = 0;
    while (sx_storage_iter_next(it, NULL, NULL, &vv, &vl, &irev) == 0) {
        CHECK(vl == n && memcmp(vv, big, n) == 0);
        if (count == 0)
            CHECK_INT(irev, rev);
        count++;
    }
    CHECK_INT(count, 2);
    sx_storage_iter_free(it);
    free(big);
    close_store(s);
}

static void test_ordering_is_bytewise(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    const char *keys[] = {"b", "a/b", "a", "A", "a/", "a0", "a/b/c", "aa", "\x7f", "a\xff", "0"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK_INT(put_str(s, keys[i], keys[i], NULL), 0);
    char out[256];
    CHECK_INT(list_keys(s, "", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "0,A,a,a/,a/b,a/b/c,a0,aa,a\xff,b,\x7f");
    close_store(s);
}

static void test_prefix_isolation(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    const char *keys[] = {"a/b", "a/b/", "a/b/1", "a/b/2", "a/bc", "a/bc/1", "a/b0", "a/a", "a/c", "b/b/1"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK_INT(put_str(s, keys[i], "x", NULL), 0);
    char out[256];
    CHECK_INT(list_keys(s, "a/b/", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "a/b/,a/b/1,a/b/2");
    CHECK_INT(list_keys(s, "a/bc/", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "a/bc/1");
    CHECK_INT(list_keys(s, "a/b", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "a/b,a/b/,a/b/1,a/b/2,a/b0,a/bc,a/bc/1");
    CHECK_INT(list_keys(s, "a/d", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "");
    CHECK_INT(list_keys(s, "b/", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "b/b/1");
    close_store(s);

    /* Prefixes ending in 0xff bytes have no simple successor; the bound must still hold. */
    s = open_store();
    REQUIRE(s);
    CHECK_INT(put_str(s, "\xff\xfe", "x", NULL), 0);
    CHECK_INT(put_str(s, "\xff\xff", "x", NULL), 0);
    CHECK_INT(put_str(s, "\xff\xff\x01", "x", NULL), 0);
    CHECK_INT(put_str(s, "\xff\xff\xff", "x", NULL), 0);
    CHECK_INT(put_str(s, "z\xff", "x", NULL), 0);
    CHECK_INT(sx_storage_put(s, "z\xff\x00", 3, "x", 1, NULL), 0);
    CHECK_INT(put_str(s, "{", "x", NULL), 0);
    CHECK_INT(list_keys(s, "\xff\xff", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "\xff\xff,\xff\xff\x01,\xff\xff\xff");
    CHECK_INT(list_keys(s, "z\xff", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "z\xff,z\xff"); /* second key is "z\xff\0"; %.*s stops at the NUL */
    close_store(s);
}

static void test_pagination_start_keys(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    char k[32];
    for (int i = 0; i < 25; i++) {
        snprintf(k, sizeof(k), "p/k%02d", i);
        CHECK_INT(put_str(s, k, "v", NULL), 0);
    }
    CHECK_INT(put_str(s, "p", "v", NULL), 0);
    CHECK_INT(put_str(s, "q/k00", "v", NULL), 0);
    /* Page through with "after the last key seen". */
    char last[32] = "";
    int seen = 0, pages = 0;
    for (;;) {
        sx_storage_iter *it = NULL;
        REQUIRE(sx_storage_iter_new(s, "p/", 2, last[0] ? last : NULL, strlen(last), SX_STORAGE_ITER_AFTER, &it) == 0);
        int got = 0;
        const void *kk;
        size_t kl;
        while (got < 10 && sx_storage_iter_next(it, &kk, &kl, NULL, NULL, NULL) == 0) {
            snprintf(k, sizeof(k), "p/k%02d", seen);
            CHECK(kl == strlen(k) && memcmp(kk, k, kl) == 0);
            memcpy(last, kk, kl);
            last[kl] = '\0';
            seen++;
            got++;
        }
        sx_storage_iter_free(it);
        pages++;
        if (got < 10)
            break;
    }
    CHECK_INT(seen, 25);
    CHECK_INT(pages, 3);
    char out[512];
    /* Inclusive start, exclusive start, start not present, start before and beyond the prefix. */
    CHECK_INT(list_keys(s, "p/", "p/k22", 0, out, sizeof(out)), 0);
    CHECK_STR(out, "p/k22,p/k23,p/k24");
    CHECK_INT(list_keys(s, "p/", "p/k22", SX_STORAGE_ITER_AFTER, out, sizeof(out)), 0);
    CHECK_STR(out, "p/k23,p/k24");
    CHECK_INT(list_keys(s, "p/", "p/k225", SX_STORAGE_ITER_AFTER, out, sizeof(out)), 0);
    CHECK_STR(out, "p/k23,p/k24");
    CHECK_INT(list_keys(s, "p/k2", "a", SX_STORAGE_ITER_AFTER, out, sizeof(out)), 0);
    CHECK_STR(out, "p/k20,p/k21,p/k22,p/k23,p/k24");
    CHECK_INT(list_keys(s, "p/k2", "p/k2", SX_STORAGE_ITER_AFTER, out, sizeof(out)), 0);
    CHECK_STR(out, "p/k20,p/k21,p/k22,p/k23,p/k24");
    CHECK_INT(list_keys(s, "p/", "p/zzz", 0, out, sizeof(out)), 0);
    CHECK_STR(out, "");
    CHECK_INT(list_keys(s, "p/", "p/k24", SX_STORAGE_ITER_AFTER, out, sizeof(out)), 0);
    CHECK_STR(out, "");
    close_store(s);
}

/* Keys the delete-during-iteration test removes before the iterator reaches them. */
static bool deleted_ahead(int i)
{
    return i % 4 == 2;
}

static void test_delete_during_iteration(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    char k[32];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof(k), "d/%02d", i);
        CHECK_INT(put_str(s, k, k, NULL), 0);
    }
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, "d/", 2, NULL, 0, 0, &it) == 0);
    const void *kk, *vv;
    size_t kl, vl;
    int prev = -1, count = 0;
    bool seen[20] = {false};
    while (sx_storage_iter_next(it, &kk, &kl, &vv, &vl, NULL) == 0) {
        REQUIRE(kl == 4 && memcmp(kk, "d/", 2) == 0);
        int i = (((const char *)kk)[2] - '0') * 10 + (((const char *)kk)[3] - '0');
        CHECK(i > prev); /* in order, never twice */
        CHECK(vl == 4 && memcmp(vv, kk, 4) == 0);
        prev = i;
        seen[i] = true;
        count++;
        /* Delete the current key and the one after next; write a key behind and one ahead. */
        /* A key deleted ahead of the iterator may still be yielded (snapshot iterators); deleting
         * it again then answers -ENOENT. */
        snprintf(k, sizeof(k), "d/%02d", i);
        CHECK_INT(sx_storage_delete(s, k, 4), deleted_ahead(i) ? -ENOENT : 0);
        if (i % 4 == 0 && i + 2 < 20) {
            snprintf(k, sizeof(k), "d/%02d", i + 2);
            CHECK_INT(sx_storage_delete(s, k, 4), 0);
        }
        CHECK_INT(put_str(s, "c/behind", "x", NULL), 0);
        CHECK_INT(put_str(s, "e/ahead", "x", NULL), 0);
    }
    sx_storage_iter_free(it);
    /* Every key that was never deleted before the iteration reached it was yielded. */
    for (int i = 0; i < 20; i++)
        if (!deleted_ahead(i))
            CHECK(seen[i]);
    char out[256];
    CHECK_INT(list_keys(s, "d/", NULL, 0, out, sizeof(out)), 0);
    CHECK_STR(out, "");
    close_store(s);
}

static void test_preconditions(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    uint64_t r1 = 0;
    CHECK_INT(put_str(s, "x", "1", &r1), 0);
    size_t failed = 99;
    /* ABSENT on a present key fails, naming the op; nothing else in the batch happens. */
    sx_storage_op ops[3] = {
        {.kind = SX_STORAGE_OP_PUT, .key = "y", .klen = 1, .val = "y", .vlen = 1, .cond = SX_STORAGE_COND_ABSENT},
        {.kind = SX_STORAGE_OP_PUT, .key = "x", .klen = 1, .val = "2", .vlen = 1, .cond = SX_STORAGE_COND_ABSENT},
        {.kind = SX_STORAGE_OP_DELETE, .key = "z", .klen = 1},
    };
    CHECK_INT(sx_storage_batch(s, ops, 3, &failed), SX_STORAGE_ECONDITION);
    CHECK_INT(failed, 1);
    CHECK_INT(sx_storage_get(s, "y", 1, NULL, NULL, NULL), -ENOENT);
    CHECK(has_str(s, "x", "1"));
    /* REV: wrong revision fails, right one succeeds and returns a new revision. */
    sx_storage_op cas = {
        .kind = SX_STORAGE_OP_PUT, .key = "x", .klen = 1, .val = "3", .vlen = 1, .cond = SX_STORAGE_COND_REV};
    cas.rev = r1 + 12345;
    CHECK_INT(sx_storage_batch(s, &cas, 1, &failed), SX_STORAGE_ECONDITION);
    CHECK_INT(failed, 0);
    CHECK_INT(cas.ret_rev, 0);
    cas.rev = r1;
    CHECK_INT(sx_storage_batch(s, &cas, 1, NULL), 0);
    CHECK(cas.ret_rev != 0 && cas.ret_rev != r1);
    CHECK(has_str(s, "x", "3"));
    uint64_t r2 = cas.ret_rev;
    CHECK_INT(sx_storage_batch(s, &cas, 1, &failed), SX_STORAGE_ECONDITION); /* stale now */
    /* REV and PRESENT on an absent key fail. */
    sx_storage_op absent = {.kind = SX_STORAGE_OP_DELETE, .key = "q", .klen = 1, .cond = SX_STORAGE_COND_PRESENT};
    CHECK_INT(sx_storage_batch(s, &absent, 1, NULL), SX_STORAGE_ECONDITION);
    absent.cond = SX_STORAGE_COND_REV;
    absent.rev = r2;
    CHECK_INT(sx_storage_batch(s, &absent, 1, NULL), SX_STORAGE_ECONDITION);
    /* CHECK ops guard a write to another key (e.g. "secret exists" while writing its value). */
    sx_storage_op guarded[2] = {
        {.kind = SX_STORAGE_OP_CHECK, .key = "x", .klen = 1, .cond = SX_STORAGE_COND_REV, .rev = r2},
        {.kind = SX_STORAGE_OP_PUT, .key = "v/x", .klen = 3, .val = "ct", .vlen = 2},
    };
    CHECK_INT(sx_storage_batch(s, guarded, 2, NULL), 0);
    CHECK(guarded[1].ret_rev != 0);
    CHECK(has_str(s, "v/x", "ct"));
    /* Conditional delete of two keys at once, then the whole batch is visible. */
    sx_storage_op del2[2] = {
        {.kind = SX_STORAGE_OP_DELETE, .key = "x", .klen = 1, .cond = SX_STORAGE_COND_REV, .rev = r2},
        {.kind = SX_STORAGE_OP_DELETE, .key = "v/x", .klen = 3, .cond = SX_STORAGE_COND_PRESENT},
    };
    CHECK_INT(sx_storage_batch(s, del2, 2, NULL), 0);
    CHECK_INT(sx_storage_get(s, "x", 1, NULL, NULL, NULL), -ENOENT);
    CHECK_INT(sx_storage_get(s, "v/x", 3, NULL, NULL, NULL), -ENOENT);
    /* Re-created, the key never gets back an old revision, so a stale ETag cannot match. */
    uint64_t r3 = 0;
    CHECK_INT(put_str(s, "x", "1", &r3), 0);
    CHECK(r3 != r1 && r3 != r2);
    cas.rev = r1;
    CHECK_INT(sx_storage_batch(s, &cas, 1, NULL), SX_STORAGE_ECONDITION);
    close_store(s);
}

static void test_revisions_never_repeat(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    enum { N = 200 };
    uint64_t revs[N];
    for (int i = 0; i < N; i++) {
        const char *k = (i % 3) ? "k" : "j";
        CHECK_INT(put_str(s, k, "v", &revs[i]), 0);
        if (i % 5 == 4)
            CHECK_INT(sx_storage_delete(s, k, 1), 0);
    }
    for (int i = 0; i < N; i++) {
        CHECK(revs[i] != 0);
        for (int j = 0; j < i; j++)
            CHECK(revs[i] != revs[j]);
    }
    /* The iterator reports the same revision as get. */
    uint64_t grev = 0, irev = 0;
    CHECK_INT(put_str(s, "k", "v", &grev), 0);
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, "k", 1, NULL, 0, 0, &it) == 0);
    CHECK_INT(sx_storage_iter_next(it, NULL, NULL, NULL, NULL, &irev), 0);
    CHECK_INT(irev, grev);
    sx_storage_iter_free(it);
    close_store(s);
}

/* Where the backend has a change sequence: reads leave it alone, every kind of write moves it, and
 * a failed precondition (nothing written) may or may not. Shared stores and backends without one
 * answer -ENOTSUP. */
static void test_change_seq_moves_with_every_write(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    uint64_t a = 0, b = 0;
    int r = sx_storage_change_seq(s, &a);
    if (r == -ENOTSUP) {
        CHECK(!s->ops->change_seq || sx_storage_has(s, SX_STORAGE_CAP_SHARED));
        close_store(s);
        return;
    }
    CHECK_INT(r, 0);
    CHECK_INT(put_str(s, "c/1", "v", NULL), 0);
    CHECK_INT(sx_storage_change_seq(s, &b), 0);
    CHECK(b != a);
    /* Reads do not move it. */
    char keys[64];
    CHECK(has_str(s, "c/1", "v"));
    CHECK_INT(list_keys(s, "c/", NULL, 0, keys, sizeof(keys)), 0);
    CHECK_INT(sx_storage_change_seq(s, &a), 0);
    CHECK(a == b);
    /* Overwrite, delete, batch. */
    CHECK_INT(put_str(s, "c/1", "w", NULL), 0);
    CHECK_INT(sx_storage_change_seq(s, &b), 0);
    CHECK(b != a);
    CHECK_INT(sx_storage_delete(s, "c/1", 3), 0);
    CHECK_INT(sx_storage_change_seq(s, &a), 0);
    CHECK(a != b);
    sx_storage_op ops[2] = {{.kind = SX_STORAGE_OP_PUT, .key = "c/2", .klen = 3, .val = "x", .vlen = 1},
                            {.kind = SX_STORAGE_OP_PUT, .key = "c/3", .klen = 3, .val = "y", .vlen = 1}};
    CHECK_INT(sx_storage_batch(s, ops, 2, NULL), 0);
    CHECK_INT(sx_storage_change_seq(s, &b), 0);
    CHECK(b != a);
    close_store(s);
}

/* Where the backend has a compact slot: after compacting a range, deleted records stay deleted,
 * live records inside the range and every record outside it read back unchanged, and an
 * iteration yields exactly the live keys. Without SX_STORAGE_CAP_COMPACT the call answers
 * -ENOTSUP and changes nothing. Arguments are checked first either way. */
static void test_compact_keeps_live_records(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    CHECK_INT(sx_storage_compact(NULL, NULL, 0, NULL, 0), -EINVAL);
    CHECK_INT(sx_storage_compact(s, NULL, 3, NULL, 0), -EINVAL);
    CHECK_INT(sx_storage_compact(s, NULL, 0, NULL, 3), -EINVAL);
    CHECK_INT(sx_storage_compact(s, "a", SX_STORAGE_MAX_KEY + 1, NULL, 0), -EINVAL);
    for (int i = 0; i < 50; i++) {
        char k[32], v[32];
        snprintf(k, sizeof(k), "k/%02d", i);
        snprintf(v, sizeof(v), "value %d", i);
        CHECK_INT(put_str(s, k, v, NULL), 0);
        snprintf(k, sizeof(k), "j/%02d", i);
        CHECK_INT(put_str(s, k, v, NULL), 0);
        snprintf(k, sizeof(k), "l/%02d", i);
        CHECK_INT(put_str(s, k, v, NULL), 0);
    }
    /* Inside the range k/: delete the odd keys, overwrite the multiples of 10. */
    for (int i = 1; i < 50; i += 2) {
        char k[32];
        snprintf(k, sizeof(k), "k/%02d", i);
        CHECK_INT(sx_storage_delete(s, k, strlen(k)), 0);
    }
    for (int i = 0; i < 50; i += 10) {
        char k[32];
        snprintf(k, sizeof(k), "k/%02d", i);
        CHECK_INT(put_str(s, k, "new", NULL), 0);
    }
    int r = sx_storage_compact(s, "k/", 2, "k0", 2);
    if (!sx_storage_has(s, SX_STORAGE_CAP_COMPACT)) {
        CHECK_INT(r, -ENOTSUP);
        CHECK_INT(sx_storage_compact(s, NULL, 0, NULL, 0), -ENOTSUP);
    } else {
        CHECK_INT(r, 0);
        CHECK_INT(sx_storage_compact(s, "k/", 2, "k/", 2), 0); /* empty range */
        CHECK_INT(sx_storage_compact(s, "z", 1, "a", 1), 0);   /* empty range */
    }
    for (int i = 0; i < 50; i++) {
        char k[32], v[32];
        snprintf(v, sizeof(v), "value %d", i);
        snprintf(k, sizeof(k), "j/%02d", i);
        CHECK(has_str(s, k, v));
        snprintf(k, sizeof(k), "l/%02d", i);
        CHECK(has_str(s, k, v));
        snprintf(k, sizeof(k), "k/%02d", i);
        if (i % 2)
            CHECK_INT(sx_storage_get(s, k, strlen(k), NULL, NULL, NULL), -ENOENT);
        else
            CHECK(has_str(s, k, i % 10 ? v : "new"));
    }
    uint64_t n = 0;
    CHECK_INT(sx_storage_count(s, "k/", 2, &n), 0);
    CHECK_INT(n, 25);
    CHECK_INT(sx_storage_count(s, "", 0, &n), 0);
    CHECK_INT(n, 125);
    if (sx_storage_has(s, SX_STORAGE_CAP_COMPACT)) {
        /* The whole store, then writes go on as before. */
        CHECK_INT(sx_storage_compact(s, NULL, 0, NULL, 0), 0);
        CHECK(has_str(s, "k/00", "new"));
        CHECK(has_str(s, "l/49", "value 49"));
        CHECK_INT(put_str(s, "k/01", "back", NULL), 0);
        CHECK(has_str(s, "k/01", "back"));
    }
    close_store(s);
}

enum { RACE_THREADS = 8, RACE_KEYS = 1000 };

typedef struct race_arg {
    sx_storage *s;
    int id;
    int wins;
    int errors;
    uint8_t won[RACE_KEYS];
} race_arg;

static void *race_thread(void *p)
{
    race_arg *a = p;
    for (int i = 0; i < RACE_KEYS; i++) {
        /* Threads walk the keys from different starting points so that contention varies. */
        int k = (i + a->id * 125) % RACE_KEYS;
        char key[32], val[16];
        int kl = snprintf(key, sizeof(key), "race/%04d", k);
        snprintf(val, sizeof(val), "%d", a->id);
        sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                            .key = key,
                            .klen = (size_t)kl,
                            .val = val,
                            .vlen = 1,
                            .cond = SX_STORAGE_COND_ABSENT};
        int r = sx_storage_batch(a->s, &op, 1, NULL);
        if (r == 0) {
            a->wins++;
            a->won[k] = 1;
        } else if (r != SX_STORAGE_ECONDITION) {
            a->errors++;
        }
    }
    return NULL;
}

static void test_race_create_if_absent_has_one_winner(void)
{
    sx_storage *s = open_store();
    REQUIRE(s);
    static race_arg args[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (int t = 0; t < RACE_THREADS; t++) {
        memset(&args[t], 0, sizeof(args[t]));
        args[t].s = s;
        args[t].id = t;
        REQUIRE(pthread_create(&th[t], NULL, race_thread, &args[t]) == 0);
    }
    for (int t = 0; t < RACE_THREADS; t++)
        pthread_join(th[t], NULL);
    int total = 0;
    for (int t = 0; t < RACE_THREADS; t++) {
        total += args[t].wins;
        CHECK_INT(args[t].errors, 0);
    }
    CHECK_INT(total, RACE_KEYS);
    for (int k = 0; k < RACE_KEYS; k++) {
        int winners = 0, who = -1;
        for (int t = 0; t < RACE_THREADS; t++)
            if (args[t].won[k]) {
                winners++;
                who = t;
            }
        CHECK_INT(winners, 1);
        char key[32], val[16];
        snprintf(key, sizeof(key), "race/%04d", k);
        snprintf(val, sizeof(val), "%d", who);
        CHECK(has_str(s, key, val)); /* the stored value is the winner's */
    }
    close_store(s);
}

static const sx_test tests[] = {
    {"round_trip", test_round_trip},
    {"missing_keys", test_missing_keys},
    {"invalid_arguments", test_invalid_arguments},
    {"binary_keys_and_values", test_binary_keys_and_values},
    {"one_mib_values", test_one_mib_values},
    {"ordering_is_bytewise", test_ordering_is_bytewise},
    {"prefix_isolation", test_prefix_isolation},
    {"pagination_start_keys", test_pagination_start_keys},
    {"delete_during_iteration", test_delete_during_iteration},
    {"preconditions", test_preconditions},
    {"revisions_never_repeat", test_revisions_never_repeat},
    {"race_create_if_absent_has_one_winner", test_race_create_if_absent_has_one_winner},
    {"change_seq_moves_with_every_write", test_change_seq_moves_with_every_write},
    {"compact_keeps_live_records", test_compact_keeps_live_records},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s memory|rocksdb|postgres|fault [test...]\n", argv[0]);
        return 2;
    }
    backend = argv[1];
#ifdef SX_HAVE_POSTGRES
    if (strcmp(backend, "postgres") == 0) {
        int r = sx_pgtest_start(&pg);
        if (r != 0)
            return r == SX_PGTEST_SKIP ? r : 1;
        r = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc - 1, argv + 1);
        sx_pgtest_stop(&pg);
        return r;
    }
#endif
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc - 1, argv + 1);
}
