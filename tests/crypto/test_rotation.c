/*
 * test_rotation.c - master-key and data-key rotation primitives: each step idempotent, retire and
 * destroy refuse while something still needs the version, and two handles on one store (two
 * processes or nodes) that do not know each other's changes stay correct.
 */
#include "crypto/crypto_internal.h"
#include "helpers.h"
#include "storage/fault.h"

static int in_use_yes(void *ctx, const sx_crypto_place *env, uint32_t version)
{
    return 1;
}

static int in_use_no(void *ctx, const sx_crypto_place *env, uint32_t version)
{
    (*(int *)ctx)++;
    return 0;
}

static int in_use_err(void *ctx, const sx_crypto_place *env, uint32_t version)
{
    return -EIO;
}

static void test_master_rotation_is_idempotent_and_retire_waits_for_rewrap(void)
{
    fixture f;
    fixture_init(&f, "cr-master");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place a = place4("acme", "web", "prod", "A"), b = place4("acme", "web", "dev", "B");
    size_t la, lb;
    uint8_t *ba = must_encrypt(c, &la, &a, "alpha"), *bb = must_encrypt(c, &lb, &b, "beta");
    uint32_t active = 0;
    CHECK_INT(sx_crypto_master_add(c, &active, 1), 0);
    CHECK_INT(active, 2);
    CHECK_INT(sx_crypto_master_add(c, &active, 1), 0); /* a resumed run: nothing added */
    CHECK_INT(active, 2);
    sx_crypto_status s;
    REQUIRE(sx_crypto_status_get(c, &s) == 0);
    CHECK_INT(s.n_masters, 2);
    CHECK_INT(s.active_master, 2);
    CHECK_INT(s.masters[0].version, 1);
    CHECK_INT(s.masters[0].data_keys, 2);
    CHECK_INT(s.masters[1].data_keys, 0);
    CHECK_INT(sx_crypto_master_retire(c, 1), -EBUSY);
    CHECK_INT(sx_crypto_master_retire(c, 2), -EBUSY); /* active */

    size_t n = 99;
    CHECK_INT(sx_crypto_datakey_rewrap(c, &n, &a), 0);
    CHECK_INT(n, 1);
    CHECK_INT(sx_crypto_master_retire(c, 1), -EBUSY); /* b still under 1 */
    CHECK_INT(sx_crypto_datakey_rewrap_all(c, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(sx_crypto_datakey_rewrap_all(c, &n), 0);
    CHECK_INT(n, 0);
    CHECK_INT(sx_crypto_master_retire(c, 1), 0);
    CHECK_INT(sx_crypto_master_retire(c, 1), 0); /* already retired */
    REQUIRE(sx_crypto_status_get(c, &s) == 0);
    CHECK_INT(s.n_masters, 1);
    CHECK_INT(s.masters[0].version, 2);
    CHECK_INT(s.masters[0].data_keys, 2);
    CHECK_INT(decrypt_is(c, &a, ba, la, "alpha"), 0);
    sx_crypto_free(c);
    c = must_open(st, &f.opt);
    CHECK_INT(decrypt_is(c, &a, ba, la, "alpha"), 0);
    CHECK_INT(decrypt_is(c, &b, bb, lb, "beta"), 0);
    free(ba);
    free(bb);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_datakey_rotation_reencrypt_and_destroy(void)
{
    fixture f;
    fixture_init(&f, "cr-dk");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "A");
    size_t l1, l2;
    uint8_t *b1 = must_encrypt(c, &l1, &p, "one"), *b2 = NULL;
    uint32_t active = 0, v = 0;
    CHECK_INT(sx_crypto_datakey_rotate(c, &active, &p, 1), 0);
    CHECK_INT(active, 2);
    CHECK_INT(sx_crypto_datakey_rotate(c, &active, &p, 1), 0); /* resumed: no third version */
    CHECK_INT(active, 2);
    CHECK_INT(decrypt_is(c, &p, b1, l1, "one"), 0); /* old version still readable */
    CHECK_INT(sx_crypto_value_reencrypt(c, &b2, &l2, &p, b1, l1), 0);
    CHECK_INT(sx_crypto_value_version(&v, b2, l2), 0);
    CHECK_INT(v, 2);
    CHECK_INT(decrypt_is(c, &p, b2, l2, "one"), 0);
    uint8_t *b3 = NULL;
    size_t l3 = 0;
    CHECK_INT(sx_crypto_value_reencrypt(c, &b3, &l3, &p, b2, l2), 1); /* already current */
    CHECK(b3 == NULL);
    /* Re-encrypting a forged blob fails and produces nothing. */
    b1[l1 - 1] ^= 1;
    CHECK_INT(sx_crypto_value_reencrypt(c, &b3, &l3, &p, b1, l1), SX_CRYPTO_EFORGED);
    b1[l1 - 1] ^= 1;

    int calls = 0;
    CHECK_INT(sx_crypto_datakey_destroy(c, &p, 2, in_use_no, &calls), -EBUSY); /* active */
    CHECK_INT(sx_crypto_datakey_destroy(c, &p, 1, in_use_yes, NULL), -EBUSY);
    CHECK_INT(sx_crypto_datakey_destroy(c, &p, 1, in_use_err, NULL), -EIO);
    CHECK_INT(sx_crypto_datakey_destroy(c, &p, 1, in_use_no, &calls), 0);
    CHECK_INT(calls, 1);
    CHECK_INT(sx_crypto_datakey_destroy(c, &p, 1, in_use_no, &calls), 0); /* already gone */
    CHECK_INT(calls, 1);
    CHECK_INT(decrypt_is(c, &p, b1, l1, "one"), -ENOKEY); /* also evicted from the cache */
    CHECK_INT(decrypt_is(c, &p, b2, l2, "one"), 0);
    /* Unconditional rotation, and a new version number is never reused. */
    CHECK_INT(sx_crypto_datakey_rotate(c, &active, &p, 0), 0);
    CHECK_INT(active, 3);
    CHECK_INT(sx_crypto_datakey_active(c, &v, &p), 0);
    CHECK_INT(v, 3);
    free(b1);
    free(b2);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* Handle B does not know that A rotated the master; its next wrap must still use the new master,
 * and it must be able to read data keys wrapped under a master it has never loaded. */
static void test_two_handles_on_one_store_follow_each_other(void)
{
    fixture f;
    fixture_init(&f, "cr-nodes");
    sx_storage *st = mem_store();
    sx_crypto *a = must_open(st, &f.opt), *b = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "X"), q = place4("acme", "web", "new", "Y");
    size_t lp, lq;
    uint8_t *bp = must_encrypt(a, &lp, &p, "from a");
    CHECK_INT(decrypt_is(b, &p, bp, lp, "from a"), 0);
    uint32_t active;
    CHECK_INT(sx_crypto_master_add(a, &active, 1), 0);
    /* B, stale (thinks master 1 is active), creates a new env's data key. */
    uint8_t *bq = must_encrypt(b, &lq, &q, "from b");
    size_t n;
    CHECK_INT(sx_crypto_datakey_rewrap_all(a, &n), 0);
    CHECK_INT(n, 1); /* only p's key: q's was wrapped under master 2 */
    CHECK_INT(sx_crypto_master_retire(a, 1), 0);
    CHECK_INT(decrypt_is(a, &q, bq, lq, "from b"), 0);
    /* A rotates p's data key under master 2; B (cache holds p v1 only) reads a value under v2. */
    CHECK_INT(sx_crypto_datakey_rotate(a, &active, &p, 1), 0);
    size_t lp2;
    uint8_t *bp2 = must_encrypt(a, &lp2, &p, "v2 from a");
    CHECK_INT(decrypt_is(b, &p, bp2, lp2, "v2 from a"), 0);
    /* B encrypts under the env's current active version, not the one it cached. */
    size_t lp3;
    uint8_t *bp3 = must_encrypt(b, &lp3, &p, "b after rotation");
    uint32_t v = 0;
    CHECK_INT(sx_crypto_value_version(&v, bp3, lp3), 0);
    CHECK_INT(v, 2);
    /* B adds a master while A's view is stale: A's master_add(from 2) sees it and adds nothing. */
    CHECK_INT(sx_crypto_master_add(b, &active, 2), 0);
    CHECK_INT(active, 3);
    CHECK_INT(sx_crypto_master_add(a, &active, 2), 0);
    CHECK_INT(active, 3);
    sx_crypto_status s;
    CHECK_INT(sx_crypto_status_get(a, &s), 0);
    CHECK_INT(s.n_masters, 2);
    free(bp);
    free(bq);
    free(bp2);
    free(bp3);
    sx_crypto_free(a);
    sx_crypto_free(b);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_storage_faults_change_nothing(void)
{
    fixture f;
    fixture_init(&f, "cr-fault");
    sx_storage *inner = mem_store(), *st = NULL;
    REQUIRE(sx_storage_fault_wrap(inner, &st) == 0);
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "A");
    size_t l;
    uint8_t *b = must_encrypt(c, &l, &p, "v");
    /* Fail each storage call of a master rotation in turn; every failure leaves a usable store. */
    for (unsigned long nth = 1; nth < 12; nth++) {
        uint32_t active;
        sx_storage_fault_set(st, nth, false);
        int r = sx_crypto_master_add(c, &active, 0);
        sx_storage_fault_set(st, 0, false);
        CHECK(r == 0 || r == -EIO);
        sx_crypto *c2 = must_open(st, &f.opt);
        CHECK_INT(decrypt_is(c2, &p, b, l, "v"), 0);
        sx_crypto_free(c2);
    }
    sx_storage_fault_set(st, 1, true);
    uint8_t *b2;
    size_t l2;
    sx_crypto_place q = place4("acme", "web", "other", "A");
    CHECK_INT(sx_crypto_value_encrypt(c, &b2, &l2, &q, "x", 1), -EIO);
    sx_storage_fault_set(st, 0, false);
    free(b);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    static const sx_test tests[] = {
        {"master_rotation_is_idempotent_and_retire_waits_for_rewrap",
         test_master_rotation_is_idempotent_and_retire_waits_for_rewrap},
        {"datakey_rotation_reencrypt_and_destroy", test_datakey_rotation_reencrypt_and_destroy},
        {"two_handles_on_one_store_follow_each_other", test_two_handles_on_one_store_follow_each_other},
        {"storage_faults_change_nothing", test_storage_faults_change_nothing},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
