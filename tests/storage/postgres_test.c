/*
 * postgres_test.c - what the postgres backend promises beyond the conformance suite: several
 * handles (nodes) on one database agreeing on preconditions and revisions, keys longer than its
 * ordering index holds, a restart of the database (errors, then recovery, nothing acknowledged
 * lost), the versioned schema, and a password that never shows up in an error.
 *
 * One PostgreSQL server is started for the whole program (tests/lib/pgtest.h); every test works in a
 * database of its own.
 */
#include "pgtest.h"
#include "storage/storage.h"
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static sx_pgtest pg;

/* A fresh database; its DSN into dsn. */
static bool fresh_db(char *dsn, size_t cap)
{
    static int n;
    char db[32];
    snprintf(db, sizeof(db), "pgtest%d", ++n);
    if (sx_pgtest_createdb(&pg, db) != 0)
        return false;
    sx_pgtest_dsn(&pg, db, dsn, cap);
    return true;
}

static sx_storage *open_dsn(const char *dsn, const char *password, unsigned pool, int *ret_code, char *err,
                            size_t errlen)
{
    sx_storage_options opt = {.backend = "postgres", .dsn = dsn, .password = password, .sync = true, .pool_size = pool};
    sx_storage *s = NULL;
    char buf[512];
    int r = sx_storage_open(&opt, &s, err ? err : buf, err ? errlen : sizeof(buf));
    if (r < 0 && !err)
        fprintf(stderr, "open: %s\n", buf);
    if (ret_code)
        *ret_code = r;
    return r == 0 ? s : NULL;
}

static sx_storage *open_db(const char *dsn)
{
    return open_dsn(dsn, pg.password, 8, NULL, NULL, 0);
}

/* ---- two nodes ------------------------------------------------------------------------------------ */

enum { NODE_THREADS = 4, INCREMENTS = 150 };

typedef struct inc_arg {
    sx_storage *s;
    int done;
    int errors;
} inc_arg;

/* Read-modify-write of one counter with COND_REV, retried on a lost race. */
static void *increment(void *p)
{
    inc_arg *a = p;
    while (a->done < INCREMENTS) {
        void *v = NULL;
        size_t len = 0;
        uint64_t rev = 0;
        int r = sx_storage_get(a->s, "counter", 7, &v, &len, &rev);
        if (r != 0 || len != 8) {
            sx_storage_free(v);
            a->errors++;
            return NULL;
        }
        uint64_t n;
        memcpy(&n, v, 8);
        sx_storage_free(v);
        n++;
        sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                            .key = "counter",
                            .klen = 7,
                            .val = &n,
                            .vlen = 8,
                            .cond = SX_STORAGE_COND_REV,
                            .rev = rev};
        r = sx_storage_batch(a->s, &op, 1, NULL);
        if (r == 0)
            a->done++;
        else if (r != SX_STORAGE_ECONDITION)
            a->errors++;
    }
    return NULL;
}

static void test_two_nodes_lose_no_compare_and_set_update(void)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    sx_storage *a = open_db(dsn), *b = open_db(dsn);
    REQUIRE(a && b);
    uint64_t zero = 0;
    CHECK_INT(sx_storage_put(a, "counter", 7, &zero, 8, NULL), 0);
    inc_arg args[2 * NODE_THREADS];
    pthread_t th[2 * NODE_THREADS];
    for (int i = 0; i < 2 * NODE_THREADS; i++) {
        args[i] = (inc_arg){.s = i % 2 ? b : a};
        REQUIRE(pthread_create(&th[i], NULL, increment, &args[i]) == 0);
    }
    for (int i = 0; i < 2 * NODE_THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(args[i].errors, 0);
    }
    void *v = NULL;
    size_t len = 0;
    CHECK_INT(sx_storage_get(b, "counter", 7, &v, &len, NULL), 0);
    uint64_t n = 0;
    if (v && len == 8)
        memcpy(&n, v, 8);
    sx_storage_free(v);
    CHECK_INT(n, 2 * NODE_THREADS * INCREMENTS); /* every acknowledged increment is in */
    sx_storage_close(a);
    sx_storage_close(b);
}

typedef struct absent_arg {
    sx_storage *s;
    int id;
    uint8_t won[400];
    uint64_t revs[400];
    int errors;
} absent_arg;

/* Every thread tries to create every key of a two-key batch (one CHECK of a guard key, one PUT):
 * exactly one wins per key. */
static void *create_all(void *p)
{
    absent_arg *a = p;
    for (int i = 0; i < 400; i++) {
        int k = (i + a->id * 97) % 400;
        char key[32];
        int kl = snprintf(key, sizeof(key), "m/o/p/e/n%03d", k);
        sx_storage_op ops[2] = {
            {.kind = SX_STORAGE_OP_CHECK, .key = "guard", .klen = 5, .cond = SX_STORAGE_COND_PRESENT},
            {.kind = SX_STORAGE_OP_PUT,
             .key = key,
             .klen = (size_t)kl,
             .val = &a->id,
             .vlen = sizeof(a->id),
             .cond = SX_STORAGE_COND_ABSENT},
        };
        size_t failed = 9;
        int r = sx_storage_batch(a->s, ops, 2, &failed);
        if (r == 0) {
            a->won[k] = 1;
            a->revs[k] = ops[1].ret_rev;
        } else if (r != SX_STORAGE_ECONDITION || failed != 1) {
            a->errors++;
        }
    }
    return NULL;
}

static void test_two_nodes_create_if_absent_has_one_winner_and_unique_revisions(void)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    sx_storage *a = open_db(dsn), *b = open_db(dsn);
    REQUIRE(a && b);
    CHECK_INT(sx_storage_put(b, "guard", 5, "g", 1, NULL), 0);
    static absent_arg args[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        memset(&args[i], 0, sizeof(args[i]));
        args[i].s = i % 2 ? b : a;
        args[i].id = i;
        REQUIRE(pthread_create(&th[i], NULL, create_all, &args[i]) == 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(args[i].errors, 0);
    }
    static uint64_t revs[400];
    for (int k = 0; k < 400; k++) {
        int winners = 0, who = -1;
        for (int i = 0; i < 6; i++)
            if (args[i].won[k]) {
                winners++;
                who = i;
            }
        CHECK_INT(winners, 1);
        char key[32];
        int kl = snprintf(key, sizeof(key), "m/o/p/e/n%03d", k);
        void *v = NULL;
        size_t len = 0;
        uint64_t rev = 0;
        sx_storage *reader = k % 2 ? a : b;
        CHECK_INT(sx_storage_get(reader, key, (size_t)kl, &v, &len, &rev), 0);
        CHECK(who >= 0 && len == sizeof(int) && memcmp(v, &args[who].id, len) == 0);
        sx_storage_free(v);
        if (who >= 0)
            CHECK_INT(rev, args[who].revs[k]);
        revs[k] = rev;
        for (int j = 0; j < k; j++)
            CHECK(revs[j] != rev); /* one sequence for both nodes: never handed out twice */
    }
    sx_storage_close(a);
    sx_storage_close(b);
}

/* A batch larger than the per-key lock limit takes the store-wide lock; it is still all or nothing
 * against concurrent small batches. */
typedef struct big_arg {
    sx_storage *s;
    atomic_bool *stop;
    int writes, errors;
} big_arg;

static void *small_writer(void *p)
{
    big_arg *a = p;
    while (!atomic_load(a->stop)) {
        char key[32];
        int kl = snprintf(key, sizeof(key), "big/%03d", a->writes % 300);
        int r = sx_storage_put(a->s, key, (size_t)kl, "small", 5, NULL);
        if (r == 0)
            a->writes++;
        else
            a->errors++;
    }
    return NULL;
}

static void test_batches_of_hundreds_of_keys_stay_atomic(void)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    sx_storage *a = open_db(dsn), *b = open_db(dsn);
    REQUIRE(a && b);
    atomic_bool stop;
    atomic_init(&stop, false);
    big_arg wa = {.s = b, .stop = &stop};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, small_writer, &wa) == 0);
    static sx_storage_op ops[300];
    static char keys[300][16];
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 300; i++) {
            int kl = snprintf(keys[i], sizeof(keys[i]), "big/%03d", i);
            ops[i] =
                (sx_storage_op){.kind = SX_STORAGE_OP_PUT, .key = keys[i], .klen = (size_t)kl, .val = "BIG", .vlen = 3};
        }
        /* The last op's condition fails: nothing of the batch may appear. */
        ops[299].cond = SX_STORAGE_COND_REV;
        ops[299].rev = 1;
        size_t failed = 0;
        CHECK_INT(sx_storage_batch(a, ops, 300, &failed), SX_STORAGE_ECONDITION);
        CHECK_INT(failed, 299);
        ops[299].cond = SX_STORAGE_COND_NONE;
        CHECK_INT(sx_storage_batch(a, ops, 300, NULL), 0);
    }
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    CHECK_INT(wa.errors, 0);
    CHECK(wa.writes > 0);
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(b, "big/", 4, NULL, 0, 0, &it) == 0);
    int n = 0;
    size_t vl;
    const void *v;
    while (sx_storage_iter_next(it, NULL, NULL, &v, &vl, NULL) == 0) {
        CHECK((vl == 3 && memcmp(v, "BIG", 3) == 0) || (vl == 5 && memcmp(v, "small", 5) == 0));
        n++;
    }
    sx_storage_iter_free(it);
    CHECK_INT(n, 300);
    sx_storage_close(a);
    sx_storage_close(b);
}

/* ---- keys and pages ----------------------------------------------------------------------------- */

/* Keys that agree on more bytes than the ordering index holds still come out in key order. */
static void test_keys_longer_than_the_ordering_prefix_keep_their_order(void)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    sx_storage *s = open_db(dsn);
    REQUIRE(s);
    enum { N = 40, LEN = SX_STORAGE_MAX_KEY };
    static uint8_t keys[N][LEN];
    static size_t lens[N];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < LEN; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            keys[i][j] = j < 2 ? (uint8_t) "L/"[j] : j < 2100 ? (uint8_t)(j * 7) : (uint8_t)(seed >> 56);
        }
        lens[i] = i % 4 == 0 ? 2100 + (size_t)i : LEN; /* some end inside the shared part's tail */
        CHECK_INT(sx_storage_put(s, keys[i], lens[i], &i, sizeof(i), NULL), 0);
        int got = -1;
        void *v = NULL;
        size_t vl = 0;
        CHECK_INT(sx_storage_get(s, keys[i], lens[i], &v, &vl, NULL), 0);
        if (v && vl == sizeof(got))
            memcpy(&got, v, sizeof(got));
        sx_storage_free(v);
        CHECK_INT(got, i);
    }
    /* The expected order: sort indexes bytewise. */
    int order[N];
    for (int i = 0; i < N; i++)
        order[i] = i;
    for (int i = 1; i < N; i++)
        for (int j = i; j > 0; j--) {
            const uint8_t *x = keys[order[j - 1]], *y = keys[order[j]];
            size_t xl = lens[order[j - 1]], yl = lens[order[j]];
            int c = memcmp(x, y, xl < yl ? xl : yl);
            if (c > 0 || (c == 0 && xl > yl)) {
                int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        }
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, "L/", 2, NULL, 0, 0, &it) == 0);
    const void *k, *v;
    size_t kl, vl;
    int i = 0;
    while (sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL) == 0) {
        if (i < N)
            CHECK(kl == lens[order[i]] && memcmp(k, keys[order[i]], kl) == 0);
        i++;
    }
    sx_storage_iter_free(it);
    CHECK_INT(i, N);
    /* Pagination after a long key. */
    REQUIRE(sx_storage_iter_new(s, "L/", 2, keys[order[N / 2]], lens[order[N / 2]], SX_STORAGE_ITER_AFTER, &it) == 0);
    CHECK_INT(sx_storage_iter_next(it, &k, &kl, NULL, NULL, NULL), 0);
    CHECK(kl == lens[order[N / 2 + 1]] && memcmp(k, keys[order[N / 2 + 1]], kl) == 0);
    sx_storage_iter_free(it);
    sx_storage_close(s);
}

/* Values larger than a page's byte budget, and more rows than a page: every record comes once, in order. */
static void test_large_values_and_many_rows_come_once_in_order_across_pages(void)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    sx_storage *s = open_db(dsn);
    REQUIRE(s);
    size_t big = 1536 * 1024;
    uint8_t *val = malloc(big);
    REQUIRE(val);
    for (size_t i = 0; i < big; i++)
        val[i] = (uint8_t)(i * 31);
    char key[32];
    for (int i = 0; i < 9; i++) {
        snprintf(key, sizeof(key), "b/%02d", i);
        CHECK_INT(sx_storage_put(s, key, 4, val, big, NULL), 0);
    }
    for (int i = 0; i < 700; i++) { /* more rows than one page */
        snprintf(key, sizeof(key), "c/%04d", i);
        CHECK_INT(sx_storage_put(s, key, 6, "x", 1, NULL), 0);
    }
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, "b/", 2, NULL, 0, 0, &it) == 0);
    const void *k, *v;
    size_t kl, vl;
    int n = 0;
    while (sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL) == 0) {
        snprintf(key, sizeof(key), "b/%02d", n);
        CHECK(kl == 4 && memcmp(k, key, 4) == 0);
        CHECK(vl == big && memcmp(v, val, big) == 0);
        n++;
    }
    sx_storage_iter_free(it);
    CHECK_INT(n, 9);
    REQUIRE(sx_storage_iter_new(s, "c/", 2, NULL, 0, 0, &it) == 0);
    n = 0;
    while (sx_storage_iter_next(it, &k, &kl, NULL, NULL, NULL) == 0) {
        snprintf(key, sizeof(key), "c/%04d", n);
        CHECK(kl == 6 && memcmp(k, key, 6) == 0);
        n++;
    }
    sx_storage_iter_free(it);
    CHECK_INT(n, 700);
    /* Many records of 48 KiB: after the first page, pages shrink to what fits the byte budget. The
     * first, last and a middle value tell the pages apart. */
    size_t mid = 48 * 1024;
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "m/%03d", i);
        val[0] = (uint8_t)i;
        val[mid - 1] = (uint8_t)(i * 7);
        CHECK_INT(sx_storage_put(s, key, 5, val, mid, NULL), 0);
    }
    REQUIRE(sx_storage_iter_new(s, "m/", 2, "m/010", 5, SX_STORAGE_ITER_AFTER, &it) == 0);
    n = 11;
    while (sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL) == 0) {
        snprintf(key, sizeof(key), "m/%03d", n);
        const uint8_t *b = v;
        CHECK(kl == 5 && memcmp(k, key, 5) == 0);
        CHECK(vl == mid && b[0] == (uint8_t)n && b[mid - 1] == (uint8_t)(n * 7) && b[100] == val[100]);
        n++;
    }
    sx_storage_iter_free(it);
    CHECK_INT(n, 300);
    free(val);
    sx_storage_close(s);
}

/* More threads than connections: they wait their turn. */
static void *pool_user(void *p)
{
    sx_storage *s = p;
    for (int i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "pool/%lx/%03d", (unsigned long)pthread_self(), i);
        if (sx_storage_put(s, key, strlen(key), "v", 1, NULL) != 0)
            return (void *)1;
        if (sx_storage_get(s, key, strlen(key), NULL, NULL, NULL) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_a_pool_smaller_than_the_threads_queues_them(void)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    sx_storage *s = open_dsn(dsn, pg.password, 2, NULL, NULL, 0);
    REQUIRE(s);
    pthread_t th[6];
    for (int i = 0; i < 6; i++)
        REQUIRE(pthread_create(&th[i], NULL, pool_user, s) == 0);
    for (int i = 0; i < 6; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        CHECK(r == NULL);
    }
    sx_storage_close(s);
}

/* ---- the database goes away -------------------------------------------------------------------- */

typedef struct restart_arg {
    sx_storage *s;
    int id;
    atomic_bool *stop;
    int acked;       /* puts acknowledged; value i is "id:i" */
    int attempted;   /* puts tried */
    int unavailable; /* calls answered -ENOTCONN / -ETIMEDOUT / -EAGAIN */
    int other_errors;
} restart_arg;

static void *restart_writer(void *p)
{
    restart_arg *a = p;
    char key[32], val[32];
    snprintf(key, sizeof(key), "w/%d", a->id);
    while (!atomic_load(a->stop)) {
        int vl = snprintf(val, sizeof(val), "%d:%d", a->id, a->attempted + 1);
        a->attempted++;
        int r = sx_storage_put(a->s, key, strlen(key), val, (size_t)vl, NULL);
        if (r == 0) {
            __atomic_store_n(&a->acked, a->attempted, __ATOMIC_RELAXED);
        } else if (r == -ENOTCONN || r == -ETIMEDOUT || r == -EAGAIN) {
            __atomic_add_fetch(&a->unavailable, 1, __ATOMIC_RELAXED);
            sx_test_sleep_ms(5);
        } else {
            a->other_errors++;
        }
        /* Reads are answered or fail cleanly too. */
        r = sx_storage_get(a->s, key, strlen(key), NULL, NULL, NULL);
        if (r != 0 && r != -ENOENT && r != -ENOTCONN && r != -ETIMEDOUT && r != -EAGAIN)
            a->other_errors++;
    }
    return NULL;
}

static int last_index(sx_storage *s, int id)
{
    char key[32];
    snprintf(key, sizeof(key), "w/%d", id);
    void *v = NULL;
    size_t len = 0;
    if (sx_storage_get(s, key, strlen(key), &v, &len, NULL) != 0)
        return -1;
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < 31 ? len : 31), (const char *)v);
    sx_storage_free(v);
    const char *colon = strchr(buf, ':');
    return colon && atoi(buf) == id ? atoi(colon + 1) : -1;
}

static void restart_round(bool immediate)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    sx_storage *s = open_db(dsn);
    REQUIRE(s);
    atomic_bool stop;
    atomic_init(&stop, false);
    restart_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (restart_arg){.s = s, .id = i, .stop = &stop};
        REQUIRE(pthread_create(&th[i], NULL, restart_writer, &args[i]) == 0);
    }
    sx_test_sleep_ms(300);
    REQUIRE(sx_pgtest_halt(&pg, immediate) == 0);
    sx_test_sleep_ms(700); /* down for a while: calls fail at once, nothing crashes */
    int during = 0;
    for (int i = 0; i < 4; i++)
        during += __atomic_load_n(&args[i].unavailable, __ATOMIC_RELAXED);
    REQUIRE(sx_pgtest_resume(&pg) == 0);
    /* Recovery: every writer gets acknowledged writes again. */
    int before[4];
    for (int i = 0; i < 4; i++)
        before[i] = __atomic_load_n(&args[i].acked, __ATOMIC_RELAXED);
    bool recovered = false;
    for (int t = 0; t < 600 && !recovered; t++) { /* generous: up to 60 s */
        sx_test_sleep_ms(100);
        recovered = true;
        for (int i = 0; i < 4; i++)
            if (__atomic_load_n(&args[i].acked, __ATOMIC_RELAXED) <= before[i] + 5)
                recovered = false;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(recovered);
    CHECK(during > 0); /* the outage was seen, as errors */
    for (int i = 0; i < 4; i++) {
        CHECK_INT(args[i].other_errors, 0);
        /* Nothing acknowledged is lost: the stored value is the last acknowledged one, or a later
         * one whose answer was lost with the connection. */
        int idx = last_index(s, i);
        CHECK(idx >= args[i].acked && idx <= args[i].attempted);
    }
    sx_storage_close(s);
}

static void test_a_database_restart_fails_calls_then_recovers_and_loses_nothing(void)
{
    restart_round(false);
}

static void test_a_database_crash_fails_calls_then_recovers_and_loses_nothing(void)
{
    restart_round(true);
}

static void test_opening_while_the_database_is_down_fails_cleanly(void)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    REQUIRE(sx_pgtest_halt(&pg, false) == 0);
    int code = 0;
    char err[512];
    CHECK(open_dsn(dsn, pg.password, 4, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -ENOTCONN);
    CHECK(strstr(err, "postgres storage") != NULL);
    CHECK(strstr(err, pg.password) == NULL);
    REQUIRE(sx_pgtest_resume(&pg) == 0);
    sx_storage *s = open_db(dsn);
    CHECK(s != NULL);
    sx_storage_close(s);
}

/* ---- schema and secrets -------------------------------------------------------------------------- */

static void test_the_schema_is_created_once_and_versioned(void)
{
    char dsn[256];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    const char *db = strstr(dsn, "dbname=") + 7;
    char dbname[32];
    snprintf(dbname, sizeof(dbname), "%.*s", (int)strcspn(db, " "), db);
    /* Several nodes starting at once create it once. */
    sx_storage *s[3];
    for (int i = 0; i < 3; i++)
        s[i] = open_db(dsn);
    CHECK(s[0] && s[1] && s[2]);
    CHECK_INT(sx_storage_put(s[0], "k", 1, "v", 1, NULL), 0);
    for (int i = 0; i < 3; i++)
        sx_storage_close(s[i]);
    CHECK_INT(sx_pgtest_exec(&pg, dbname, "SELECT 1/(value = '1')::int FROM secretsd_meta WHERE name = 'schema'"), 0);
    /* A schema from a newer secretsd is refused, and left alone. */
    REQUIRE(sx_pgtest_exec(&pg, dbname, "UPDATE secretsd_meta SET value = '99' WHERE name = 'schema'") == 0);
    int code = 0;
    char err[512];
    CHECK(open_dsn(dsn, pg.password, 4, &code, err, sizeof(err)) == NULL);
    CHECK(code < 0);
    CHECK(strstr(err, "schema version 99") != NULL);
    REQUIRE(sx_pgtest_exec(&pg, dbname, "UPDATE secretsd_meta SET value = '1' WHERE name = 'schema'") == 0);
    sx_storage *again = open_db(dsn);
    CHECK(again != NULL);
    void *v = NULL;
    CHECK_INT(sx_storage_get(again, "k", 1, &v, NULL, NULL), 0);
    sx_storage_free(v);
    sx_storage_close(again);
}

static void test_the_password_never_appears_in_an_error(void)
{
    char dsn[256], bad[512], err[512];
    REQUIRE(fresh_db(dsn, sizeof(dsn)));
    int code = 0;
    /* A dsn with a password is refused before any connection, in either syntax. */
    snprintf(bad, sizeof(bad), "%s password=%s", dsn, pg.password);
    CHECK(open_dsn(bad, NULL, 4, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -EINVAL);
    CHECK(strstr(err, "password") != NULL && strstr(err, pg.password) == NULL);
    snprintf(bad, sizeof(bad), "postgresql://secretsd:%s@127.0.0.1:%d/postgres", pg.password, pg.port);
    CHECK(open_dsn(bad, NULL, 4, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -EINVAL);
    CHECK(strstr(err, pg.password) == NULL);
    snprintf(bad, sizeof(bad), "host=127.0.0.1 '%s", pg.password); /* malformed: libpq would quote it */
    CHECK(open_dsn(bad, NULL, 4, &code, err, sizeof(err)) == NULL);
    CHECK(strstr(err, pg.password) == NULL);
    /* A wrong password: refused by the server (-EACCES: waiting for the database would not help);
     * neither password in the message. */
    char wrong[64];
    snprintf(wrong, sizeof(wrong), "%sWRONG", pg.password);
    CHECK(open_dsn(dsn, wrong, 4, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -EACCES);
    CHECK(strstr(err, "password authentication failed") != NULL);
    CHECK(strstr(err, pg.password) == NULL);
    /* No password at all. */
    CHECK(open_dsn(dsn, NULL, 4, &code, err, sizeof(err)) == NULL);
    CHECK(strstr(err, pg.password) == NULL);
    /* Nothing of it in a store's records either: a fresh store holds only the schema's rows. */
    sx_storage *s = open_db(dsn);
    REQUIRE(s);
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, NULL, 0, NULL, 0, 0, &it) == 0);
    CHECK_INT(sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL), SX_STORAGE_DONE);
    sx_storage_iter_free(it);
    sx_storage_close(s);
}

static const sx_test tests[] = {
    {"two_nodes_lose_no_compare_and_set_update", test_two_nodes_lose_no_compare_and_set_update},
    {"two_nodes_create_if_absent_has_one_winner_and_unique_revisions",
     test_two_nodes_create_if_absent_has_one_winner_and_unique_revisions},
    {"batches_of_hundreds_of_keys_stay_atomic", test_batches_of_hundreds_of_keys_stay_atomic},
    {"keys_longer_than_the_ordering_prefix_keep_their_order",
     test_keys_longer_than_the_ordering_prefix_keep_their_order},
    {"large_values_and_many_rows_come_once_in_order_across_pages",
     test_large_values_and_many_rows_come_once_in_order_across_pages},
    {"a_pool_smaller_than_the_threads_queues_them", test_a_pool_smaller_than_the_threads_queues_them},
    {"a_database_restart_fails_calls_then_recovers_and_loses_nothing",
     test_a_database_restart_fails_calls_then_recovers_and_loses_nothing},
    {"a_database_crash_fails_calls_then_recovers_and_loses_nothing",
     test_a_database_crash_fails_calls_then_recovers_and_loses_nothing},
    {"opening_while_the_database_is_down_fails_cleanly", test_opening_while_the_database_is_down_fails_cleanly},
    {"the_schema_is_created_once_and_versioned", test_the_schema_is_created_once_and_versioned},
    {"the_password_never_appears_in_an_error", test_the_password_never_appears_in_an_error},
};

int main(int argc, char **argv)
{
    int r = sx_pgtest_start(&pg);
    if (r != 0)
        return r == SX_PGTEST_SKIP ? r : 1;
    r = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    sx_pgtest_stop(&pg);
    return r;
}
