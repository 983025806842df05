/*
 * test_format.c - known-answer vectors for every persisted blob format, and the pure codecs.
 *
 * The vectors use fixed keys and nonces through the internal functions that take the nonce
 * explicitly, so any change to a format (field order, labels, associated data) breaks a test here
 * before it breaks a deployed store. Two tests also rebuild a value's associated data (formats 1
 * and 2) by hand from FORMAT.md and decrypt with libsodium directly, so the document and the code
 * agree.
 */
#include "crypto/crypto_internal.h"
#include "helpers.h"

static void fill(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(start + i);
}

static bool hex_is(const uint8_t *p, size_t n, const char *expect)
{
    char hex[2048];
    sodium_bin2hex(hex, sizeof hex, p, n);
    if (strcmp(hex, expect) != 0) {
        fprintf(stderr, "  got    %s\n  expect %s\n", hex, expect);
        return false;
    }
    return true;
}

/* Frozen outputs (hex) of the fixed inputs below. A change here is a format change: bump the
 * format version and keep reading the old one instead of editing these. */
#define KAT_VALUE                                                                                                      \
    "0100000001404142434445464748494a4b4c4d4e4f5051525354555657bc4c6b04b5924b018c9f9dfc6761d02e135e4ede418ba8"
#define KAT_VALUE_V2                                                                                                   \
    "020000000100000003404142434445464748494a4b4c4d4e4f5051525354555657bc4c6b04b5924b6070a91386cf2c780a98c63bc2084e78"
#define KAT_DATAKEY                                                                                                    \
    "0100000003606162636465666768696a6b6c6d6e6f7071727374757677d1011037b4784afde593e9a059534ffd1a2300cce3ffdeb0b0ab5a" \
    "09bfe36ef1c494db71fa30731362f5f74d7bf29fa5"
#define KAT_KEYRING                                                                                                    \
    "01202122232425262728292a2b2c2d2e2f3031323334353637e70be6c386ff1a3311b4fe75cbcb18ee1b56f8891cea4a51356ed564d6c160" \
    "d14a"
#define KAT_RECOVERY_PK "3e8259d9215f676456f8b009e1f3cfcdb617f1a26225877c0cd1ef9ecc5ecc55"
#define KAT_RECOVERY                                                                                                   \
    "01736845d54e87de09d6bb114aa7042c50a4a015bd9901d1a0026f5956533a1519000102030405060708090a0b0c0d0e0f10111213141516" \
    "178c0f6e35e94c94a9628afc1d3dcfdcc02c883e3ed22972fb9e4d63ca7614b3f8bd"
#define KAT_RECOVERY_TEXT "SXR1-AAAQEAYE-AUDAOCAJ-BIFQYDIO-B4IBCEQT-CQKRMFYY-DENBWHA5-DYPZWNVN"
#define KAT_SEAL_PASSPHRASE                                                                                            \
    "0102303132333435363738393a3b3c3d3e3f00000000000000020000000000010000707172737475767778797a7b7c7d7e7f"

static const sx_crypto_place P = {.org = "acme", .project = "web", .env = "prod", .name = "DB_URL"};

static void test_value_blob_known_answer(void)
{
    uint8_t dk[32], nonce[24], blob[SX_CRYPTO_VALUE_BLOB_LEN(7)];
    fill(dk, 32, 0x00);
    fill(nonce, 24, 0x40);
    sx_crypto_value_seal_nonce(blob, dk, 1, &P, "hunter2", 7, nonce);
    CHECK(hex_is(blob, sizeof blob, KAT_VALUE));
    char out[7];
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &P, blob, sizeof blob), 0);
    CHECK(memcmp(out, "hunter2", 7) == 0);
}

static void test_value_ad_matches_format_doc(void)
{
    /* AD = lp("secretsd.value.v1") lp(org) lp(project) lp(env) lp(name) lp(fmt || be32 dk_version),
     * lp(x) = be16 length || x. */
    static const uint8_t ad[] = {0,   17,  's', 'e', 'c', 'r', 'e', 't', 's', 'd', '.', 'v', 'a', 'l', 'u', 'e', '.',
                                 'v', '1', 0,   4,   'a', 'c', 'm', 'e', 0,   3,   'w', 'e', 'b', 0,   4,   'p', 'r',
                                 'o', 'd', 0,   6,   'D', 'B', '_', 'U', 'R', 'L', 0,   5,   1,   0,   0,   0,   9};
    uint8_t dk[32], nonce[24], blob[SX_CRYPTO_VALUE_BLOB_LEN(3)], out[3];
    fill(dk, 32, 0x10);
    fill(nonce, 24, 0x50);
    sx_crypto_value_seal_nonce(blob, dk, 9, &P, "abc", 3, nonce);
    CHECK_INT(blob[0], 1);
    CHECK_INT(sx_be32_get(blob + 1), 9);
    CHECK(memcmp(blob + 5, nonce, 24) == 0);
    CHECK_INT(crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, blob + 29, sizeof blob - 29, ad, sizeof ad,
                                                         nonce, dk),
              0);
    CHECK(memcmp(out, "abc", 3) == 0);
}

/* Format 2: the same inputs at value version 3 (FORMAT.md, "Value blob"). */
static void test_value_blob_v2_known_answer(void)
{
    sx_crypto_place p3 = P;
    p3.version = 3;
    uint8_t dk[32], nonce[24], blob[SX_CRYPTO_VALUE_BLOB_LEN_V(7, 3)];
    CHECK_INT(sizeof blob, 7 + 49);
    fill(dk, 32, 0x00);
    fill(nonce, 24, 0x40);
    sx_crypto_value_seal_nonce(blob, dk, 1, &p3, "hunter2", 7, nonce);
    CHECK(hex_is(blob, sizeof blob, KAT_VALUE_V2));
    char out[7 + 4]; /* also holds the blob read as format 1 below */
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &p3, blob, sizeof blob), 0);
    CHECK(memcmp(out, "hunter2", 7) == 0);
    uint32_t v = 0;
    CHECK_INT(sx_crypto_value_version(&v, blob, sizeof blob), 0);
    CHECK_INT(v, 1);
    CHECK_INT(sx_crypto_value_secret_version(&v, blob, sizeof blob), 0);
    CHECK_INT(v, 3);
    /* Opened at any other version (0 included) it is refused. */
    uint32_t others[] = {0, 1, 2, 4, 0x03000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        sx_crypto_place q = P;
        q.version = others[i];
        CHECK_INT(sx_crypto_value_open_raw(out, dk, &q, blob, sizeof blob), SX_CRYPTO_EFORGED);
    }
    /* A version byte edited in the header: refused at the old version and at the new one. */
    blob[8] ^= 0x07; /* 3 -> 4 */
    sx_crypto_place p4 = P;
    p4.version = 4;
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &p3, blob, sizeof blob), SX_CRYPTO_EFORGED);
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &p4, blob, sizeof blob), SX_CRYPTO_EFORGED);
    blob[8] ^= 0x07;
    blob[5] ^= 0x01; /* 3 -> 0x01000003 */
    p4.version = 0x01000003u;
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &p3, blob, sizeof blob), SX_CRYPTO_EFORGED);
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &p4, blob, sizeof blob), SX_CRYPTO_EFORGED);
    blob[5] ^= 0x01;
    /* The format byte flipped to 1: a different AD (label and header length), refused. */
    blob[0] = 1;
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &p3, blob, sizeof blob), SX_CRYPTO_EFORGED);
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &P, blob, sizeof blob), SX_CRYPTO_EFORGED);
    blob[0] = 2;
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &p3, blob, sizeof blob), 0);
}

static void test_value_v2_ad_matches_format_doc(void)
{
    /* AD = lp("secretsd.value.v2") lp(org) lp(project) lp(env) lp(name)
     *      lp(fmt || be32 dk_version || be32 value_version). */
    static const uint8_t ad[] = {0,   17,  's', 'e', 'c', 'r', 'e', 't', 's', 'd', '.', 'v', 'a', 'l',
                                 'u', 'e', '.', 'v', '2', 0,   4,   'a', 'c', 'm', 'e', 0,   3,   'w',
                                 'e', 'b', 0,   4,   'p', 'r', 'o', 'd', 0,   6,   'D', 'B', '_', 'U',
                                 'R', 'L', 0,   9,   2,   0,   0,   0,   9,   0,   0,   1,   2};
    sx_crypto_place p = P;
    p.version = 0x102;
    uint8_t dk[32], nonce[24], blob[SX_CRYPTO_VALUE_BLOB_LEN_V(3, 0x102)], out[3];
    fill(dk, 32, 0x10);
    fill(nonce, 24, 0x50);
    sx_crypto_value_seal_nonce(blob, dk, 9, &p, "abc", 3, nonce);
    CHECK_INT(blob[0], 2);
    CHECK_INT(sx_be32_get(blob + 1), 9);
    CHECK_INT(sx_be32_get(blob + 5), 0x102);
    CHECK(memcmp(blob + 9, nonce, 24) == 0);
    CHECK_INT(crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, blob + 33, sizeof blob - 33, ad, sizeof ad,
                                                         nonce, dk),
              0);
    CHECK(memcmp(out, "abc", 3) == 0);
}

/* A blob from before versions opens as version 1 of its secret (or with no version), never as 2. */
static void test_value_v1_blob_opens_at_version_0_and_1_only(void)
{
    uint8_t dk[32], nonce[24], blob[SX_CRYPTO_VALUE_BLOB_LEN(7)];
    char out[7];
    fill(dk, 32, 0x00);
    fill(nonce, 24, 0x40);
    sx_crypto_value_seal_nonce(blob, dk, 1, &P, "hunter2", 7, nonce);
    CHECK(hex_is(blob, sizeof blob, KAT_VALUE));
    uint32_t v = 99;
    CHECK_INT(sx_crypto_value_secret_version(&v, blob, sizeof blob), 0);
    CHECK_INT(v, 0);
    sx_crypto_place q = P;
    for (uint32_t version = 0; version < 4; version++) {
        q.version = version;
        CHECK_INT(sx_crypto_value_open_raw(out, dk, &q, blob, sizeof blob), version <= 1 ? 0 : SX_CRYPTO_EFORGED);
    }
    q.version = UINT32_MAX;
    CHECK_INT(sx_crypto_value_open_raw(out, dk, &q, blob, sizeof blob), SX_CRYPTO_EFORGED);
}

static void test_value_header_rules(void)
{
    uint8_t b[SX_CRYPTO_VALUE_OVERHEAD_V2 + 1] = {0};
    sx_value_hdr h;
    uint32_t v;
    b[0] = 2;
    sx_be32_put(b + 1, 7);
    sx_be32_put(b + 5, 0); /* format 2 never names version 0 */
    CHECK_INT(sx_crypto_value_header(&h, b, sizeof b), SX_CRYPTO_EFORMAT);
    CHECK_INT(sx_crypto_value_version(&v, b, sizeof b), SX_CRYPTO_EFORMAT);
    sx_be32_put(b + 5, 5);
    CHECK_INT(sx_crypto_value_header(&h, b, sizeof b), 0);
    CHECK(h.fmt == 2 && h.len == 9 && h.plen == 1 && h.dk_version == 7 && h.version == 5);
    CHECK_INT(sx_crypto_value_header(&h, b, SX_CRYPTO_VALUE_OVERHEAD_V2), 0);
    CHECK_INT(h.plen, 0);
    CHECK_INT(sx_crypto_value_header(&h, b, SX_CRYPTO_VALUE_OVERHEAD_V2 - 1), SX_CRYPTO_EFORMAT);
    CHECK_INT(sx_crypto_value_secret_version(&v, b, SX_CRYPTO_VALUE_OVERHEAD_V2 - 1), SX_CRYPTO_EFORMAT);
    b[0] = 1;
    CHECK_INT(sx_crypto_value_header(&h, b, SX_CRYPTO_VALUE_OVERHEAD), 0);
    CHECK(h.fmt == 1 && h.len == 5 && h.plen == 0 && h.dk_version == 7 && h.version == 0);
    CHECK_INT(sx_crypto_value_header(&h, b, SX_CRYPTO_VALUE_OVERHEAD - 1), SX_CRYPTO_EFORMAT);
    b[0] = 3;
    CHECK_INT(sx_crypto_value_header(&h, b, sizeof b), SX_CRYPTO_EFORMAT);
    CHECK_INT(sx_crypto_value_header(&h, b, 0), SX_CRYPTO_EFORMAT);
    /* The size macros: format 1 at version 0, format 2 otherwise; PLAIN_LEN bounds both. */
    CHECK_INT(SX_CRYPTO_VALUE_BLOB_LEN(10), 55);
    CHECK_INT(SX_CRYPTO_VALUE_BLOB_LEN_V(10, 0), 55);
    CHECK_INT(SX_CRYPTO_VALUE_BLOB_LEN_V(10, 1), 59);
    CHECK_INT(SX_CRYPTO_VALUE_PLAIN_LEN(55), 10);
    CHECK(SX_CRYPTO_VALUE_PLAIN_LEN(59) >= 10);
    CHECK(SX_CRYPTO_VALUE_BLOB_LEN_V(SX_CRYPTO_VALUE_MAX, UINT32_MAX) <= SX_STORAGE_MAX_VALUE);
}

static void test_datakey_blob_known_answer(void)
{
    uint8_t mk[32], dk[32], nonce[24], blob[SX_DATAKEY_BLOB_LEN], back[32];
    fill(mk, 32, 0x80);
    fill(dk, 32, 0x00);
    fill(nonce, 24, 0x60);
    sx_crypto_datakey_wrap_nonce(blob, mk, 3, &P, 1, dk, nonce);
    CHECK(hex_is(blob, sizeof blob, KAT_DATAKEY));
    uint32_t mver = 0;
    CHECK_INT(sx_crypto_datakey_master(&mver, blob, sizeof blob), 0);
    CHECK_INT(mver, 3);
    CHECK_INT(sx_crypto_datakey_unwrap(back, mk, &P, 1, blob, sizeof blob), 0);
    CHECK(memcmp(back, dk, 32) == 0);
    CHECK_INT(sx_crypto_datakey_unwrap(back, mk, &P, 2, blob, sizeof blob), SX_CRYPTO_EFORGED);
}

static void test_keyring_blob_known_answer(void)
{
    uint8_t sk[32], nonce[24], seal_rec[18] = {1, 1}, blob[SX_KEYRING_HDR_LEN + 17 + SX_TAGBYTES], out[17];
    fill(sk, 32, 0xa0);
    fill(nonce, 24, 0x20);
    memset(seal_rec + 2, 0x11, 16);
    sx_crypto_keyring_seal_nonce(blob, sk, seal_rec, sizeof seal_rec, (const uint8_t *)"keyring-plaintext", 17, nonce);
    CHECK(hex_is(blob, sizeof blob, KAT_KEYRING));
    size_t len = 0;
    CHECK_INT(sx_crypto_keyring_open_raw(out, &len, sk, seal_rec, sizeof seal_rec, blob, sizeof blob), 0);
    CHECK_INT(len, 17);
    seal_rec[5] ^= 1; /* another seal id */
    CHECK_INT(sx_crypto_keyring_open_raw(out, &len, sk, seal_rec, sizeof seal_rec, blob, sizeof blob),
              SX_CRYPTO_EBADSEAL);
}

static void test_recovery_blob_known_answer(void)
{
    uint8_t raw[32], pk[32], sk[32], eph[32], nonce[24], blob[SX_RECOVERY_HDR_LEN + 17 + SX_TAGBYTES], out[17];
    fill(raw, 32, 0xc0);
    fill(eph, 32, 0xe0);
    fill(nonce, 24, 0x00);
    sx_crypto_recovery_keypair(pk, sk, raw);
    CHECK(hex_is(pk, 32, KAT_RECOVERY_PK));
    CHECK_INT(sx_crypto_recovery_seal_eph(blob, pk, (const uint8_t *)"keyring-plaintext", 17, eph, nonce), 0);
    CHECK(hex_is(blob, sizeof blob, KAT_RECOVERY));
    size_t len = 0;
    CHECK_INT(sx_crypto_recovery_open_raw(out, &len, pk, sk, blob, sizeof blob), 0);
    CHECK(len == 17 && memcmp(out, "keyring-plaintext", 17) == 0);
}

static void test_recovery_key_text_round_trip_and_typos(void)
{
    uint8_t raw[32], back[32];
    char text[SX_CRYPTO_RECOVERY_KEY_SIZE];
    fill(raw, 32, 0x00);
    sx_crypto_recovery_encode(text, raw);
    CHECK_STR(text, KAT_RECOVERY_TEXT);
    CHECK_INT(strlen(text), 67);
    CHECK_INT(sx_crypto_recovery_decode(back, text), 0);
    CHECK(memcmp(back, raw, 32) == 0);

    /* Lower case, spaces instead of dashes, no prefix: still accepted. */
    char loose[128];
    size_t o = 0;
    for (const char *p = text + 5; *p; p++)
        loose[o++] = *p == '-' ? ' ' : (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    loose[o] = '\0';
    memset(back, 0, sizeof back);
    CHECK_INT(sx_crypto_recovery_decode(back, loose), 0);
    CHECK(memcmp(back, raw, 32) == 0);

    /* Every single-symbol typo is caught by the checksum or the alphabet. */
    int caught = 0, total = 0;
    for (size_t i = 5; i < strlen(text); i++) {
        if (text[i] == '-')
            continue;
        char bad[SX_CRYPTO_RECOVERY_KEY_SIZE];
        memcpy(bad, text, sizeof bad);
        bad[i] = bad[i] == 'Q' ? 'R' : 'Q';
        total++;
        caught += sx_crypto_recovery_decode(back, bad) == SX_CRYPTO_EBADRECOVERY;
    }
    CHECK_INT(caught, total);
    CHECK_INT(sx_crypto_recovery_decode(back, "SXR1-AAAA"), SX_CRYPTO_EBADRECOVERY);
    CHECK_INT(sx_crypto_recovery_decode(back, ""), SX_CRYPTO_EBADRECOVERY);
}

static void test_seal_record_codec(void)
{
    sx_seal_params sp = {.type = SX_CRYPTO_SEAL_PASSPHRASE, .opslimit = 2, .memlimit = 65536}, back;
    fill(sp.seal_id, 16, 0x30);
    fill(sp.salt, 16, 0x70);
    uint8_t *rec;
    size_t len;
    REQUIRE(sx_seal_params_encode(&rec, &len, &sp) == 0);
    CHECK(hex_is(rec, len, KAT_SEAL_PASSPHRASE));
    CHECK_INT(sx_seal_params_decode(&back, rec, len), 0);
    CHECK(back.type == sp.type && back.opslimit == 2 && back.memlimit == 65536);
    CHECK(memcmp(back.salt, sp.salt, 16) == 0 && memcmp(back.seal_id, sp.seal_id, 16) == 0);
    CHECK_INT(sx_seal_params_decode(&back, rec, len - 1), SX_CRYPTO_EFORMAT);
    rec[0] = 2;
    CHECK_INT(sx_seal_params_decode(&back, rec, len), SX_CRYPTO_EFORMAT);
    free(rec);

    uint8_t pub[3] = {1, 2, 3}, priv[2] = {4, 5};
    sx_seal_params tp = {.type = SX_CRYPTO_SEAL_TPM,
                         .pcrs = (1u << 7) | (1u << 14),
                         .tpm_pub = pub,
                         .tpm_publen = 3,
                         .tpm_priv = priv,
                         .tpm_privlen = 2};
    REQUIRE(sx_seal_params_encode(&rec, &len, &tp) == 0);
    CHECK_INT(sx_seal_params_decode(&back, rec, len), 0);
    CHECK(back.pcrs == tp.pcrs && back.tpm_publen == 3 && back.tpm_privlen == 2);
    CHECK(memcmp(back.tpm_pub, pub, 3) == 0 && memcmp(back.tpm_priv, priv, 2) == 0);
    free(rec);
}

static void test_place_validation(void)
{
    CHECK_INT(sx_crypto_place_check(&P, true), 0);
    sx_crypto_place bad[] = {
        place4("", "web", "prod", "x"),       place4("ac/me", "web", "prod", "x"), place4("acme", ".web", "prod", "x"),
        place4("acme", "web", "prod", ".."),  place4("acme", "web", "prod", "."),  place4("acme", "web", "pr od", "x"),
        place4("acme", "web", "prod", "a/b"), place4("acme", "web", "prod", NULL),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(sx_crypto_place_check(&bad[i], true), -EINVAL);
    char longname[300];
    memset(longname, 'a', sizeof longname);
    longname[257] = '\0';
    sx_crypto_place l = place4("acme", "web", "prod", longname);
    CHECK_INT(sx_crypto_place_check(&l, true), -EINVAL);
    longname[256] = '\0';
    CHECK_INT(sx_crypto_place_check(&l, true), 0);
}

static void test_strerror_names_every_code(void)
{
    for (int code = -1111; code <= -1100; code++)
        CHECK(sx_crypto_strerror(code) && strlen(sx_crypto_strerror(code)) > 10);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    static const sx_test tests[] = {
        {"value_blob_known_answer", test_value_blob_known_answer},
        {"value_ad_matches_format_doc", test_value_ad_matches_format_doc},
        {"value_blob_v2_known_answer", test_value_blob_v2_known_answer},
        {"value_v2_ad_matches_format_doc", test_value_v2_ad_matches_format_doc},
        {"value_v1_blob_opens_at_version_0_and_1_only", test_value_v1_blob_opens_at_version_0_and_1_only},
        {"value_header_rules", test_value_header_rules},
        {"datakey_blob_known_answer", test_datakey_blob_known_answer},
        {"keyring_blob_known_answer", test_keyring_blob_known_answer},
        {"recovery_blob_known_answer", test_recovery_blob_known_answer},
        {"recovery_key_text_round_trip_and_typos", test_recovery_key_text_round_trip_and_typos},
        {"seal_record_codec", test_seal_record_codec},
        {"place_validation", test_place_validation},
        {"strerror_names_every_code", test_strerror_names_every_code},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
