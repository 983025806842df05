/*
 * test_values.c - values and data keys against the memory backend: round trips, tamper and
 * transplant detection (every byte of every stored record), nonce uniqueness, caller-buffer rules,
 * the bounded data-key cache, and many threads at once.
 */
#include <pthread.h>

#include "crypto/crypto_internal.h"
#include "helpers.h"

static void test_round_trip_sizes(void)
{
    fixture f;
    fixture_init(&f, "cv-rt");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "DB_URL");
    size_t sizes[] = {0, 1, 15, 16, 17, 1024, 65536};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i], blen = 0, got = 0;
        uint8_t *pt = malloc(n + 1), *blob = NULL, *out = malloc(n + 1);
        randombytes_buf(pt, n);
        REQUIRE(sx_crypto_value_encrypt(c, &blob, &blen, &p, n ? pt : NULL, n) == 0);
        CHECK_INT(blen, SX_CRYPTO_VALUE_BLOB_LEN(n));
        CHECK_INT(SX_CRYPTO_VALUE_PLAIN_LEN(blen), n);
        CHECK(!sx_test_memmem(blob, blen, pt, n) || n < 4);
        CHECK_INT(sx_crypto_value_decrypt(c, out, n, &got, &p, blob, blen), 0);
        CHECK_INT(got, n);
        CHECK(memcmp(out, pt, n) == 0);
        if (n > 0)
            CHECK_INT(sx_crypto_value_decrypt(c, out, n - 1, &got, &p, blob, blen), -ENOBUFS);
        uint32_t v = 0;
        CHECK_INT(sx_crypto_value_version(&v, blob, blen), 0);
        CHECK_INT(v, 1);
        free(pt);
        free(out);
        free(blob);
    }
    uint32_t active = 0;
    CHECK_INT(sx_crypto_datakey_active(c, &active, &p), 0);
    CHECK_INT(active, 1);
    sx_crypto_place other = place4("acme", "web", "dev", "x");
    CHECK_INT(sx_crypto_datakey_active(c, &active, &other), -ENOENT);
    sx_crypto_place bad = place4("acme", "web", "prod", "../x");
    uint8_t *blob;
    size_t blen;
    CHECK_INT(sx_crypto_value_encrypt(c, &blob, &blen, &bad, "x", 1), -EINVAL);
    CHECK_INT(sx_crypto_value_encrypt(c, &blob, &blen, &p, "x", SX_CRYPTO_VALUE_MAX + 1), -EINVAL);

    /* Nothing in the store holds the plaintext or a raw key. */
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_decrypt_survives_reopen_with_empty_cache(void)
{
    fixture f;
    fixture_init(&f, "cv-reopen");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "API_KEY");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "s3cr3t-value");
    sx_crypto_free(c);
    c = must_open(st, &f.opt);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "s3cr3t-value"), 0);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_value_transplant_to_other_name_env_project_org_fails(void)
{
    fixture f;
    fixture_init(&f, "cv-transplant");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "DB_URL");
    sx_crypto_place others[] = {
        place4("acme", "web", "prod", "DB_URL2"),
        place4("acme", "web", "staging", "DB_URL"),
        place4("acme", "api", "prod", "DB_URL"),
        place4("other", "web", "prod", "DB_URL"),
    };
    /* Give every other env a data key of its own first. */
    for (size_t i = 0; i < 4; i++) {
        size_t l;
        free(must_encrypt(c, &l, &others[i], "filler"));
    }
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "postgres://secret");
    for (size_t i = 0; i < 4; i++)
        CHECK_INT(decrypt_is(c, &others[i], blob, blen, "postgres://secret"), SX_CRYPTO_EFORGED);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "postgres://secret"), 0);
    /* Claiming another data-key version in the header. */
    blob[4] = 2;
    CHECK(decrypt_is(c, &p, blob, blen, "postgres://secret") != 0);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_datakey_transplant_to_other_env_fails(void)
{
    fixture f;
    fixture_init(&f, "cv-dk-transplant");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place prod = place4("acme", "web", "prod", "K"), stag = place4("acme", "web", "staging", "K");
    size_t lp, ls, dlen;
    uint8_t *bp = must_encrypt(c, &lp, &prod, "prod-value");
    uint8_t *bs = must_encrypt(c, &ls, &stag, "staging-value");
    sx_crypto_free(c);
    /* Copy prod's wrapped data key over staging's. */
    uint8_t *dk = must_get(st, "d/acme/web/prod/00000001", &dlen);
    must_put(st, "d/acme/web/staging/00000001", dk, dlen);
    sx_storage_free(dk);
    c = must_open(st, &f.opt);
    CHECK_INT(decrypt_is(c, &stag, bs, ls, "staging-value"), SX_CRYPTO_EFORGED);
    CHECK_INT(decrypt_is(c, &prod, bp, lp, "prod-value"), 0);
    free(bp);
    free(bs);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* Flip every bit pattern 0x01 and 0x80 of every byte of the value blob. */
static void test_every_byte_of_value_blob_is_authenticated(void)
{
    fixture f;
    fixture_init(&f, "cv-flip-value");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "DB_URL");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "a value of some length");
    CHECK_INT(undetected_value_flips(c, &p, blob, blen, "a value of some length"), 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "a value of some length"), 0);
    /* Truncated and extended blobs. */
    CHECK(decrypt_is(c, &p, blob, blen - 1, "a value of some length") != 0);
    CHECK_INT(decrypt_is(c, &p, blob, SX_CRYPTO_VALUE_OVERHEAD - 1, ""), SX_CRYPTO_EFORMAT);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_every_byte_of_wrapped_datakey_is_authenticated(void)
{
    fixture f;
    fixture_init(&f, "cv-flip-dk");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "DB_URL");
    size_t blen, dlen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "v");
    sx_crypto_free(c);
    const char *key = "d/acme/web/prod/00000001";
    uint8_t *dk = must_get(st, key, &dlen);
    CHECK_INT(dlen, SX_DATAKEY_BLOB_LEN);
    int detected = 0, total = 0;
    for (size_t i = 0; i < dlen; i++)
        for (int m = 0; m < 2; m++) {
            dk[i] ^= m ? 0x80 : 0x01;
            must_put(st, key, dk, dlen);
            c = must_open(st, &f.opt); /* empty cache: the data key is unwrapped again */
            int r = decrypt_is(c, &p, blob, blen, "v");
            detected += r == SX_CRYPTO_EFORGED || r == SX_CRYPTO_EFORMAT || r == -ENOKEY;
            total++;
            sx_crypto_free(c);
            dk[i] ^= m ? 0x80 : 0x01;
        }
    CHECK_INT(detected, total);
    must_put(st, key, dk, dlen);
    c = must_open(st, &f.opt);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "v"), 0);
    sx_storage_free(dk);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* Every byte of the node's slot, s/keyring and the recovery slot. */
static void test_every_byte_of_keyring_records_is_authenticated(void)
{
    fixture f;
    fixture_init(&f, "cv-flip-kr");
    sx_storage *st = mem_store();
    sx_crypto *c = NULL;
    char *rk = NULL, err[256];
    REQUIRE(sx_crypto_open(&c, &rk, st, &f.opt, err, sizeof err) == 0);
    REQUIRE(rk != NULL);
    sx_crypto_free(c);
    const char *keys[] = {SX_KEY_SLOT_FIRST, SX_KEY_S_KEYRING};
    for (size_t k = 0; k < 2; k++) {
        size_t len;
        uint8_t *rec = must_get(st, keys[k], &len);
        int detected = 0, total = 0;
        for (size_t i = 0; i < len; i++)
            for (int m = 0; m < 2; m++) {
                rec[i] ^= m ? 0x80 : 0x01;
                must_put(st, keys[k], rec, len);
                int r = sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err);
                detected += r == SX_CRYPTO_EBADSEAL || r == SX_CRYPTO_EFORMAT || r == SX_CRYPTO_ESEALTYPE;
                total++;
                if (r == 0)
                    sx_crypto_free(c);
                rec[i] ^= m ? 0x80 : 0x01;
            }
        CHECK_INT(detected, total);
        must_put(st, keys[k], rec, len);
        sx_storage_free(rec);
    }
    /* The recovery copy: every flip makes recovery fail. */
    size_t len;
    uint8_t *rec = must_get(st, SX_KEY_SLOT_RECOVERY, &len);
    int detected = 0, total = 0;
    for (size_t i = 0; i < len; i++) {
        rec[i] ^= 0x01;
        must_put(st, SX_KEY_SLOT_RECOVERY, rec, len);
        int r = sx_crypto_recover(&c, st, rk, &f.opt, err, sizeof err);
        detected += r == SX_CRYPTO_EBADRECOVERY || r == SX_CRYPTO_EFORMAT;
        total++;
        if (r == 0)
            sx_crypto_free(c);
        rec[i] ^= 0x01;
    }
    CHECK_INT(detected, total);
    must_put(st, SX_KEY_SLOT_RECOVERY, rec, len);
    sx_storage_free(rec);
    c = must_open(st, &f.opt);
    sx_crypto_free(c);
    sx_crypto_recovery_key_free(rk);
    sx_storage_close(st);
    fixture_clear(&f);
}

static int cmp_nonce(const void *a, const void *b)
{
    return memcmp(a, b, 24);
}

static int cmp_ct(const void *a, const void *b)
{
    return memcmp(a, b, 21);
}

static void test_100k_encryptions_give_distinct_nonces_and_ciphertexts(void)
{
    enum { N = 100000 };
    fixture f;
    fixture_init(&f, "cv-nonce");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "SAME");
    uint8_t *nonces = malloc((size_t)N * 24), *cts = malloc((size_t)N * 21);
    REQUIRE(nonces && cts);
    for (size_t i = 0; i < N; i++) {
        uint8_t *blob;
        size_t blen;
        REQUIRE(sx_crypto_value_encrypt(c, &blob, &blen, &p, "same", 4) == 0);
        memcpy(nonces + i * 24, blob + 5, 24);
        memcpy(cts + i * 21, blob + 29, 20); /* 4 bytes ciphertext + 16 tag */
        cts[i * 21 + 20] = 0;
        free(blob);
    }
    qsort(nonces, N, 24, cmp_nonce);
    qsort(cts, N, 21, cmp_ct);
    size_t dup_n = 0, dup_c = 0;
    for (size_t i = 1; i < N; i++) {
        dup_n += memcmp(nonces + (i - 1) * 24, nonces + i * 24, 24) == 0;
        dup_c += memcmp(cts + (i - 1) * 21, cts + i * 21, 21) == 0;
    }
    CHECK_INT(dup_n, 0);
    CHECK_INT(dup_c, 0);
    free(nonces);
    free(cts);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_cache_bounded_evicts_and_reloads(void)
{
    fixture f;
    fixture_init(&f, "cv-cache");
    sx_storage *st = mem_store();
    f.opt.cache_entries = 16;
    sx_crypto *c = must_open(st, &f.opt);
    enum { ENVS = 50 };
    uint8_t *blobs[ENVS];
    size_t lens[ENVS];
    char envs[ENVS][16];
    for (int i = 0; i < ENVS; i++) {
        snprintf(envs[i], sizeof envs[i], "env%d", i);
        sx_crypto_place p = place4("acme", "web", envs[i], "X");
        blobs[i] = must_encrypt(c, &lens[i], &p, envs[i]);
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ENVS; i++) {
            sx_crypto_place p = place4("acme", "web", envs[i], "X");
            CHECK_INT(decrypt_is(c, &p, blobs[i], lens[i], envs[i]), 0);
        }
    for (int i = 0; i < ENVS; i++)
        free(blobs[i]);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

typedef struct worker {
    sx_crypto *c;
    int id;
    int failures;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    char env[16], val[64];
    for (int i = 0; i < 1500; i++) {
        snprintf(env, sizeof env, "e%d", (w->id + i) % 24);
        snprintf(val, sizeof val, "value-%d-%d", w->id, i);
        sx_crypto_place p = place4("acme", "web", env, "N");
        uint8_t *blob;
        size_t blen;
        if (sx_crypto_value_encrypt(w->c, &blob, &blen, &p, val, strlen(val)) != 0) {
            w->failures++;
            continue;
        }
        if (decrypt_is(w->c, &p, blob, blen, val) != 0)
            w->failures++;
        free(blob);
    }
    return NULL;
}

static void *rotator_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 20; i++) {
        char env[16];
        snprintf(env, sizeof env, "e%d", i % 24);
        sx_crypto_place p = place4("acme", "web", env, NULL);
        uint32_t active;
        if (sx_crypto_datakey_rotate(w->c, &active, &p, 0) != 0)
            w->failures++;
        if (i % 5 == 0 && sx_crypto_master_add(w->c, &active, 0) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_threads_encrypt_decrypt_while_rotating(void)
{
    enum { T = 8 };
    fixture f;
    fixture_init(&f, "cv-threads");
    sx_storage *st = mem_store();
    f.opt.cache_entries = 16; /* smaller than the working set: eviction under contention */
    sx_crypto *c = must_open(st, &f.opt);
    pthread_t th[T + 1];
    worker w[T + 1];
    for (int i = 0; i <= T; i++) {
        w[i] = (worker){.c = c, .id = i};
        pthread_create(&th[i], NULL, i == T ? rotator_main : worker_main, &w[i]);
    }
    for (int i = 0; i <= T; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(w[i].failures, 0);
    }
    sx_crypto_status s;
    CHECK_INT(sx_crypto_status_get(c, &s), 0);
    CHECK_INT(s.active_master, 5);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    static const sx_test tests[] = {
        {"round_trip_sizes", test_round_trip_sizes},
        {"decrypt_survives_reopen_with_empty_cache", test_decrypt_survives_reopen_with_empty_cache},
        {"value_transplant_to_other_name_env_project_org_fails",
         test_value_transplant_to_other_name_env_project_org_fails},
        {"datakey_transplant_to_other_env_fails", test_datakey_transplant_to_other_env_fails},
        {"every_byte_of_value_blob_is_authenticated", test_every_byte_of_value_blob_is_authenticated},
        {"every_byte_of_wrapped_datakey_is_authenticated", test_every_byte_of_wrapped_datakey_is_authenticated},
        {"every_byte_of_keyring_records_is_authenticated", test_every_byte_of_keyring_records_is_authenticated},
        {"100k_encryptions_give_distinct_nonces_and_ciphertexts",
         test_100k_encryptions_give_distinct_nonces_and_ciphertexts},
        {"cache_bounded_evicts_and_reloads", test_cache_bounded_evicts_and_reloads},
        {"threads_encrypt_decrypt_while_rotating", test_threads_encrypt_decrypt_while_rotating},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
