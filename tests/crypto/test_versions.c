/*
 * test_versions.c - value versions in the value blob: a place of version 0 gets format 1 exactly as
 * before versions, any other version format 2; a format-2 blob opens only at its own version, a
 * format-1 blob only at 0 or 1; data-key re-encryption keeps a blob's format and version; a version
 * edited in a stored header is caught.
 */
#include "crypto/crypto_internal.h"
#include "helpers.h"

static sx_crypto_place at_version(sx_crypto_place p, uint32_t version)
{
    p.version = version;
    return p;
}

static void test_round_trips_in_both_formats(void)
{
    fixture f;
    fixture_init(&f, "cver-rt");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place base = place4("acme", "web", "prod", "DB_URL");
    uint32_t versions[] = {0, 1, 2, 77, UINT32_MAX};
    size_t sizes[] = {0, 1, 16, 1024, 65536};
    for (size_t vi = 0; vi < sizeof versions / sizeof versions[0]; vi++) {
        sx_crypto_place p = at_version(base, versions[vi]);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i], blen = 0, got = 0;
            uint8_t *pt = malloc(n + 1), *blob = NULL, *out = malloc(n + 4);
            randombytes_buf(pt, n);
            REQUIRE(sx_crypto_value_encrypt(c, &blob, &blen, &p, n ? pt : NULL, n) == 0);
            CHECK_INT(blen, SX_CRYPTO_VALUE_BLOB_LEN_V(n, p.version));
            CHECK_INT(blen, n + (p.version ? 49 : 45));
            CHECK_INT(blob[0], p.version ? 2 : 1);
            CHECK(SX_CRYPTO_VALUE_PLAIN_LEN(blen) >= n && SX_CRYPTO_VALUE_PLAIN_LEN(blen) <= n + 4);
            /* Exactly n bytes of room are enough, n - 1 are not. */
            CHECK_INT(sx_crypto_value_decrypt(c, out, n, &got, &p, blob, blen), 0);
            CHECK_INT(got, n);
            CHECK(memcmp(out, pt, n) == 0);
            if (n > 0)
                CHECK_INT(sx_crypto_value_decrypt(c, out, n - 1, &got, &p, blob, blen), -ENOBUFS);
            CHECK_INT(sx_crypto_value_decrypt(c, out, SX_CRYPTO_VALUE_PLAIN_LEN(blen), &got, &p, blob, blen), 0);
            CHECK_INT(got, n);
            uint32_t v = 0;
            CHECK_INT(sx_crypto_value_version(&v, blob, blen), 0);
            CHECK_INT(v, 1);
            CHECK_INT(sx_crypto_value_secret_version(&v, blob, blen), 0);
            CHECK_INT(v, p.version);
            free(pt);
            free(out);
            free(blob);
        }
    }
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* The same encryption at version 0 before and after this change: the pinned call too. */
static void test_version_0_writes_format_1(void)
{
    fixture f;
    fixture_init(&f, "cver-v0");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "A");
    uint8_t *blob = NULL;
    size_t blen = 0;
    sx_crypto_pin pin;
    REQUIRE(sx_crypto_value_encrypt_pinned(c, &blob, &blen, &pin, &p, "abc", 3) == 0);
    CHECK_INT(blen, SX_CRYPTO_VALUE_BLOB_LEN(3));
    CHECK_INT(blob[0], 1);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "abc"), 0);
    free(blob);
    sx_crypto_place p5 = at_version(p, 5);
    REQUIRE(sx_crypto_value_encrypt_pinned(c, &blob, &blen, &pin, &p5, "abc", 3) == 0);
    CHECK_INT(blen, SX_CRYPTO_VALUE_BLOB_LEN_V(3, 5));
    CHECK_INT(blob[0], 2);
    CHECK_INT(sx_be32_get(blob + 5), 5);
    CHECK_INT(decrypt_is(c, &p5, blob, blen, "abc"), 0);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_v2_blob_copied_onto_another_version_is_forged(void)
{
    fixture f;
    fixture_init(&f, "cver-copy");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p2 = at_version(place4("acme", "web", "prod", "A"), 2);
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p2, "second");
    CHECK_INT(decrypt_is(c, &p2, blob, blen, "second"), 0);
    uint32_t others[] = {0, 1, 3, 0x100 | 2, UINT32_MAX};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        sx_crypto_place q = at_version(p2, others[i]);
        CHECK_INT(decrypt_is(c, &q, blob, blen, "second"), SX_CRYPTO_EFORGED);
    }
    /* Also with its data key out of the cache: refused before any key is looked up. */
    sx_crypto_free(c);
    c = must_open(st, &f.opt);
    sx_crypto_place p3 = at_version(p2, 3);
    CHECK_INT(decrypt_is(c, &p3, blob, blen, "second"), SX_CRYPTO_EFORGED);
    /* Another name at the same version stays refused too. */
    sx_crypto_place b2 = at_version(place4("acme", "web", "prod", "B"), 2);
    CHECK_INT(decrypt_is(c, &b2, blob, blen, "second"), SX_CRYPTO_EFORGED);
    CHECK_INT(decrypt_is(c, &p2, blob, blen, "second"), 0);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_v1_blob_is_version_1_and_no_other(void)
{
    fixture f;
    fixture_init(&f, "cver-legacy");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "A");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "legacy"); /* version 0: format 1 */
    CHECK_INT(blob[0], 1);
    sx_crypto_place v1 = at_version(p, 1), v2 = at_version(p, 2), vmax = at_version(p, UINT32_MAX);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "legacy"), 0);
    CHECK_INT(decrypt_is(c, &v1, blob, blen, "legacy"), 0);
    CHECK_INT(decrypt_is(c, &v2, blob, blen, "legacy"), SX_CRYPTO_EFORGED);
    CHECK_INT(decrypt_is(c, &vmax, blob, blen, "legacy"), SX_CRYPTO_EFORGED);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* Every byte of a format-2 blob, the version bytes of its header in particular. */
static void test_edited_v2_header_is_forged(void)
{
    fixture f;
    fixture_init(&f, "cver-edit");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = at_version(place4("acme", "web", "prod", "A"), 0x0203);
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "a value of some length");
    CHECK_INT(undetected_value_flips(c, &p, blob, blen, "a value of some length"), 0);
    /* An edited version byte, read at the version the header now names: forged, not malformed. */
    for (size_t i = 5; i < 9; i++) {
        blob[i] ^= 0x01;
        sx_crypto_place q = at_version(p, sx_be32_get(blob + 5));
        CHECK_INT(decrypt_is(c, &q, blob, blen, "a value of some length"), SX_CRYPTO_EFORGED);
        CHECK_INT(decrypt_is(c, &p, blob, blen, "a value of some length"), SX_CRYPTO_EFORGED);
        blob[i] ^= 0x01;
    }
    /* Recast as format 1 (format byte 1, version bytes dropped): forged at 0 and 1. */
    uint8_t *v1 = malloc(blen - 4);
    v1[0] = 1;
    memcpy(v1 + 1, blob + 1, 4);
    memcpy(v1 + 5, blob + 9, blen - 9);
    sx_crypto_place q0 = at_version(p, 0), q1 = at_version(p, 1);
    CHECK_INT(decrypt_is(c, &q0, v1, blen - 4, "a value of some length"), SX_CRYPTO_EFORGED);
    CHECK_INT(decrypt_is(c, &q1, v1, blen - 4, "a value of some length"), SX_CRYPTO_EFORGED);
    free(v1);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "a value of some length"), 0);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* A data-key rotation's re-encryption keeps the blob's format and value version. */
static void test_reencrypt_keeps_format_and_version(void)
{
    fixture f;
    fixture_init(&f, "cver-reenc");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "A"), p5 = at_version(p, 5), p4 = at_version(p, 4);
    sx_crypto_place p1 = at_version(p, 1), p2 = at_version(p, 2);
    size_t l5, l1;
    uint8_t *b5 = must_encrypt(c, &l5, &p5, "five"), *b1 = must_encrypt(c, &l1, &p, "legacy");
    uint32_t active = 0, v = 0;
    REQUIRE(sx_crypto_datakey_rotate(c, &active, &p, 1) == 0);
    CHECK_INT(active, 2);

    /* A wrong version is refused before anything is decrypted or written. */
    uint8_t *nb = NULL;
    size_t nl = 0;
    CHECK_INT(sx_crypto_value_reencrypt(c, &nb, &nl, &p4, b5, l5), SX_CRYPTO_EFORGED);
    CHECK_INT(sx_crypto_value_reencrypt(c, &nb, &nl, &p2, b1, l1), SX_CRYPTO_EFORGED);
    CHECK(nb == NULL);

    /* Format 2, with the caller's version 0 ("what the blob says") and with its own version. */
    sx_crypto_place callers[] = {p, p5};
    for (size_t i = 0; i < 2; i++) {
        sx_crypto_pin pin;
        CHECK_INT(sx_crypto_value_reencrypt_pinned(c, &nb, &nl, &pin, &callers[i], b5, l5), 0);
        CHECK_INT(nl, l5);
        CHECK_INT(nb[0], 2);
        CHECK_INT(sx_crypto_value_version(&v, nb, nl), 0);
        CHECK_INT(v, 2);
        CHECK_INT(sx_crypto_value_secret_version(&v, nb, nl), 0);
        CHECK_INT(v, 5);
        CHECK_INT(decrypt_is(c, &p5, nb, nl, "five"), 0);
        CHECK_INT(decrypt_is(c, &p4, nb, nl, "five"), SX_CRYPTO_EFORGED);
        CHECK_INT(decrypt_is(c, &p, nb, nl, "five"), SX_CRYPTO_EFORGED);
        uint8_t *again = NULL;
        size_t al = 0;
        CHECK_INT(sx_crypto_value_reencrypt(c, &again, &al, &p5, nb, nl), 1); /* already current */
        CHECK(again == NULL);
        free(nb);
        nb = NULL;
    }

    /* Format 1 stays format 1, at version 0 or 1. */
    sx_crypto_place legacy[] = {p, p1};
    for (size_t i = 0; i < 2; i++) {
        CHECK_INT(sx_crypto_value_reencrypt(c, &nb, &nl, &legacy[i], b1, l1), 0);
        CHECK_INT(nl, l1);
        CHECK_INT(nl, SX_CRYPTO_VALUE_BLOB_LEN(6));
        CHECK_INT(nb[0], 1);
        CHECK_INT(sx_crypto_value_version(&v, nb, nl), 0);
        CHECK_INT(v, 2);
        CHECK_INT(sx_crypto_value_secret_version(&v, nb, nl), 0);
        CHECK_INT(v, 0);
        CHECK_INT(decrypt_is(c, &p, nb, nl, "legacy"), 0);
        CHECK_INT(decrypt_is(c, &p1, nb, nl, "legacy"), 0);
        CHECK_INT(decrypt_is(c, &p2, nb, nl, "legacy"), SX_CRYPTO_EFORGED);
        free(nb);
        nb = NULL;
    }
    free(b5);
    free(b1);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    static const sx_test tests[] = {
        {"round_trips_in_both_formats", test_round_trips_in_both_formats},
        {"version_0_writes_format_1", test_version_0_writes_format_1},
        {"v2_blob_copied_onto_another_version_is_forged", test_v2_blob_copied_onto_another_version_is_forged},
        {"v1_blob_is_version_1_and_no_other", test_v1_blob_is_version_1_and_no_other},
        {"edited_v2_header_is_forged", test_edited_v2_header_is_forged},
        {"reencrypt_keeps_format_and_version", test_reencrypt_keeps_format_and_version},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
