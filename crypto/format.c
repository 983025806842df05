/*
 * format.c - the byte formats of everything the crypto module persists (see FORMAT.md), the
 * associated data that binds each ciphertext to its place, the printable recovery key, and the
 * module's error sentences.
 *
 * Functions here are pure: no storage, no locks. Those that encrypt come in two forms, one taking
 * the nonce (or ephemeral key) explicitly so the known-answer tests can pin every output byte, and
 * one drawing it from randombytes_buf() for production use.
 */
#include "crypto/crypto_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Domain-separation labels, one per kind of ciphertext. Changing one is a format change. */
static const char LABEL_VALUE[] = "secretsd.value.v1";
static const char LABEL_VALUE_V2[] = "secretsd.value.v2";
static const char LABEL_DATAKEY[] = "secretsd.datakey.v1";
static const char LABEL_KEYRING[] = "secretsd.keyring.v1";
static const char LABEL_RECOVERY[] = "secretsd.keyring.recovery.v1";
static const char LABEL_RECOVERY_WRAP[] = "secretsd.recovery.wrap.v1";
static const char LABEL_RECOVERY_X25519[] = "secretsd.recovery.x25519.v1";
static const char LABEL_RECOVERY_CHECK[] = "secretsd.recovery.check.v1";
static const char LABEL_SEAL_REC[] = "secretsd.seal.record.v1";
static const char LABEL_KEYRING_V2[] = "secretsd.keyring.v2";
static const char LABEL_SLOT[] = "secretsd.slot.v1";

const char *sx_crypto_strerror(int code)
{
    switch (code) {
    case -ENOKEY:
        return "the key version this ciphertext needs no longer exists";
    case -EBUSY:
        return "the key version is still in use";
    default:
        if (code <= SX_CRYPTO_EFORGED && code > SX_CRYPTO_EFORGED - 100)
            return sx_strerror(code);
        return sx_storage_strerror(code);
    }
}

/* --- places ----------------------------------------------------------------------------------- */

static bool name_ok(const char *s, size_t max, bool alnum_first)
{
    if (!s)
        return false;
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '.' && ch != '_' && ch != '-')
            return false;
        if (i == 0 && alnum_first && !alnum)
            return false;
    }
    return true;
}

int sx_crypto_place_check(const sx_crypto_place *p, bool with_name)
{
    if (!p || !name_ok(p->org, 64, true) || !name_ok(p->project, 64, true) || !name_ok(p->env, 64, true))
        return -EINVAL;
    if (with_name) {
        if (!name_ok(p->name, 256, false) || strcmp(p->name, ".") == 0 || strcmp(p->name, "..") == 0)
            return -EINVAL;
    }
    return 0;
}

size_t sx_crypto_env_key(char *buf, size_t cap, const sx_crypto_place *p)
{
    return (size_t)snprintf(buf, cap, "e/%s/%s/%s", p->org, p->project, p->env);
}

size_t sx_crypto_dk_prefix(char *buf, size_t cap, const sx_crypto_place *p)
{
    return (size_t)snprintf(buf, cap, "d/%s/%s/%s/", p->org, p->project, p->env);
}

size_t sx_crypto_dk_key(char *buf, size_t cap, const sx_crypto_place *p, uint32_t version)
{
    return (size_t)snprintf(buf, cap, "d/%s/%s/%s/%08x", p->org, p->project, p->env, (unsigned)version);
}

/* --- associated data: length-prefixed fields (u16 big-endian length, bytes) -------------------- */

typedef struct ad_buf {
    uint8_t b[SX_AD_MAX];
    size_t n;
} ad_buf;

static void ad_field(ad_buf *ad, const void *p, size_t len)
{
    /* Callers validated every field (<= 256 bytes), so the buffer cannot overflow. */
    ad->b[ad->n++] = (uint8_t)(len >> 8);
    ad->b[ad->n++] = (uint8_t)len;
    memcpy(ad->b + ad->n, p, len);
    ad->n += len;
}

static void ad_str(ad_buf *ad, const char *s)
{
    ad_field(ad, s, strlen(s));
}

/* hdr is the blob's header of hdr_len bytes; its format byte picks the label. */
static void ad_value(ad_buf *ad, const sx_crypto_place *p, const uint8_t *hdr, size_t hdr_len)
{
    ad->n = 0;
    ad_str(ad, hdr[0] == SX_VALUE_FMT_V2 ? LABEL_VALUE_V2 : LABEL_VALUE);
    ad_str(ad, p->org);
    ad_str(ad, p->project);
    ad_str(ad, p->env);
    ad_str(ad, p->name);
    ad_field(ad, hdr, hdr_len);
}

static void ad_datakey(ad_buf *ad, const sx_crypto_place *p, uint32_t dk_version, const uint8_t hdr[5])
{
    uint8_t v[4];
    sx_be32_put(v, dk_version);
    ad->n = 0;
    ad_str(ad, LABEL_DATAKEY);
    ad_str(ad, p->org);
    ad_str(ad, p->project);
    ad_str(ad, p->env);
    ad_field(ad, v, 4);
    ad_field(ad, hdr, 5);
}

static void ad_keyring(ad_buf *ad, const uint8_t *seal_rec, size_t seal_len)
{
    uint8_t h[32], fmt = SX_FMT_V1;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)LABEL_SEAL_REC, sizeof LABEL_SEAL_REC - 1);
    crypto_generichash_update(&st, seal_rec, seal_len);
    crypto_generichash_final(&st, h, sizeof h);
    ad->n = 0;
    ad_str(ad, LABEL_KEYRING);
    ad_field(ad, h, sizeof h);
    ad_field(ad, &fmt, 1);
}

/* --- value blobs ---------------------------------------------------------------------------------- *
 * format 1: fmt(1) | dk_version(4) | nonce(24) | ciphertext+tag
 * format 2: fmt(2) | dk_version(4) | value version(4) | nonce(24) | ciphertext+tag */

int sx_crypto_value_header(sx_value_hdr *ret, const uint8_t *blob, size_t bloblen)
{
    sx_value_hdr h = {0};
    if (!blob || bloblen < 1)
        return SX_CRYPTO_EFORMAT;
    h.fmt = blob[0];
    if (h.fmt == SX_FMT_V1)
        h.len = SX_VALUE_HDR_LEN_V1;
    else if (h.fmt == SX_VALUE_FMT_V2)
        h.len = SX_VALUE_HDR_LEN_V2;
    else
        return SX_CRYPTO_EFORMAT;
    if (bloblen < h.len + SX_NONCEBYTES + SX_TAGBYTES)
        return SX_CRYPTO_EFORMAT;
    h.plen = bloblen - h.len - SX_NONCEBYTES - SX_TAGBYTES;
    h.dk_version = sx_be32_get(blob + 1);
    if (h.fmt == SX_VALUE_FMT_V2 && (h.version = sx_be32_get(blob + 5)) == 0)
        return SX_CRYPTO_EFORMAT; /* format 2 is written only for versions 1, 2, ... */
    *ret = h;
    return 0;
}

bool sx_crypto_value_version_ok(const sx_value_hdr *h, uint32_t version)
{
    return h->fmt == SX_VALUE_FMT_V2 ? version == h->version : version <= 1;
}

void sx_crypto_value_seal_nonce(uint8_t *out, const uint8_t dk[32], uint32_t dk_version, const sx_crypto_place *p,
                                const void *pt, size_t len, const uint8_t nonce[SX_NONCEBYTES])
{
    ad_buf ad;
    size_t hlen = p->version ? SX_VALUE_HDR_LEN_V2 : SX_VALUE_HDR_LEN_V1;
    out[0] = p->version ? SX_VALUE_FMT_V2 : SX_FMT_V1;
    sx_be32_put(out + 1, dk_version);
    if (p->version)
        sx_be32_put(out + 5, p->version);
    memcpy(out + hlen, nonce, SX_NONCEBYTES);
    ad_value(&ad, p, out, hlen);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + hlen + SX_NONCEBYTES, NULL, pt, len, ad.b, ad.n, NULL, nonce, dk);
}

int sx_crypto_value_open_raw(void *out, const uint8_t dk[32], const sx_crypto_place *p, const uint8_t *blob,
                             size_t bloblen)
{
    ad_buf ad;
    sx_value_hdr h;
    if (sx_crypto_value_header(&h, blob, bloblen) < 0)
        return SX_CRYPTO_EFORMAT;
    if (!sx_crypto_value_version_ok(&h, p->version))
        return SX_CRYPTO_EFORGED;
    ad_value(&ad, p, blob, h.len);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, blob + h.len + SX_NONCEBYTES,
                                                   bloblen - h.len - SX_NONCEBYTES, ad.b, ad.n, blob + h.len, dk) != 0)
        return SX_CRYPTO_EFORGED;
    return 0;
}

int sx_crypto_value_version(uint32_t *ret_version, const uint8_t *blob, size_t bloblen)
{
    sx_value_hdr h;
    if (!ret_version || sx_crypto_value_header(&h, blob, bloblen) < 0)
        return SX_CRYPTO_EFORMAT;
    *ret_version = h.dk_version;
    return 0;
}

int sx_crypto_value_secret_version(uint32_t *ret_version, const uint8_t *blob, size_t bloblen)
{
    sx_value_hdr h;
    if (!ret_version || sx_crypto_value_header(&h, blob, bloblen) < 0)
        return SX_CRYPTO_EFORMAT;
    *ret_version = h.version;
    return 0;
}

/* --- wrapped data keys: fmt(1) | mk_version(4) | nonce(24) | 32-byte key + tag ------------------- */

void sx_crypto_datakey_wrap_nonce(uint8_t *out, const uint8_t mk[32], uint32_t mk_version, const sx_crypto_place *env,
                                  uint32_t dk_version, const uint8_t dk[32], const uint8_t nonce[SX_NONCEBYTES])
{
    ad_buf ad;
    out[0] = SX_FMT_V1;
    sx_be32_put(out + 1, mk_version);
    memcpy(out + 5, nonce, SX_NONCEBYTES);
    ad_datakey(&ad, env, dk_version, out);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 5 + SX_NONCEBYTES, NULL, dk, SX_CRYPTO_KEYBYTES, ad.b, ad.n, NULL,
                                               nonce, mk);
}

void sx_crypto_datakey_wrap(uint8_t *out, const uint8_t mk[32], uint32_t mk_version, const sx_crypto_place *env,
                            uint32_t dk_version, const uint8_t dk[32])
{
    uint8_t nonce[SX_NONCEBYTES];
    randombytes_buf(nonce, sizeof nonce);
    sx_crypto_datakey_wrap_nonce(out, mk, mk_version, env, dk_version, dk, nonce);
}

int sx_crypto_datakey_master(uint32_t *ret_mk_version, const uint8_t *blob, size_t len)
{
    if (len != SX_DATAKEY_BLOB_LEN || blob[0] != SX_FMT_V1)
        return SX_CRYPTO_EFORMAT;
    *ret_mk_version = sx_be32_get(blob + 1);
    return 0;
}

int sx_crypto_datakey_unwrap(uint8_t dk[32], const uint8_t mk[32], const sx_crypto_place *env, uint32_t dk_version,
                             const uint8_t *blob, size_t len)
{
    ad_buf ad;
    if (len != SX_DATAKEY_BLOB_LEN || blob[0] != SX_FMT_V1)
        return SX_CRYPTO_EFORMAT;
    ad_datakey(&ad, env, dk_version, blob);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(dk, NULL, NULL, blob + 5 + SX_NONCEBYTES, len - 5 - SX_NONCEBYTES,
                                                   ad.b, ad.n, blob + 5, mk) != 0)
        return SX_CRYPTO_EFORGED;
    return 0;
}

/* --- sealed keyring: fmt(1) | nonce(24) | ciphertext+tag, AD binds the s/seal record ------------ */

void sx_crypto_keyring_seal_nonce(uint8_t *out, const uint8_t sk[32], const uint8_t *seal_rec, size_t seal_len,
                                  const uint8_t *pt, size_t len, const uint8_t nonce[SX_NONCEBYTES])
{
    ad_buf ad;
    out[0] = SX_FMT_V1;
    memcpy(out + 1, nonce, SX_NONCEBYTES);
    ad_keyring(&ad, seal_rec, seal_len);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SX_KEYRING_HDR_LEN, NULL, pt, len, ad.b, ad.n, NULL, nonce, sk);
}

int sx_crypto_keyring_open_raw(uint8_t *out, size_t *ret_len, const uint8_t sk[32], const uint8_t *seal_rec,
                               size_t seal_len, const uint8_t *blob, size_t len)
{
    ad_buf ad;
    if (len < SX_KEYRING_HDR_LEN + SX_TAGBYTES || len > SX_KEYRING_HDR_LEN + SX_KEYRING_PLAIN_MAX + SX_TAGBYTES ||
        blob[0] != SX_FMT_V1)
        return SX_CRYPTO_EFORMAT;
    ad_keyring(&ad, seal_rec, seal_len);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, blob + SX_KEYRING_HDR_LEN, len - SX_KEYRING_HDR_LEN,
                                                   ad.b, ad.n, blob + 1, sk) != 0)
        return SX_CRYPTO_EBADSEAL;
    *ret_len = len - SX_KEYRING_HDR_LEN - SX_TAGBYTES;
    return 0;
}

/* --- keyring format 2: fmt(1) | keyring-key id(16) | nonce(24) | ciphertext+tag ---------------- *
 * Under the keyring key; the AD binds the header (format byte and keyring-key id). */

void sx_crypto_keyring2_seal_nonce(uint8_t *out, const uint8_t kk[32], const uint8_t kkid[SX_KKID_BYTES],
                                   const uint8_t *pt, size_t len, const uint8_t nonce[SX_NONCEBYTES])
{
    ad_buf ad = {.n = 0};
    out[0] = SX_KEYRING_BLOB_V2;
    memcpy(out + 1, kkid, SX_KKID_BYTES);
    memcpy(out + 1 + SX_KKID_BYTES, nonce, SX_NONCEBYTES);
    ad_str(&ad, LABEL_KEYRING_V2);
    ad_field(&ad, out, 1 + SX_KKID_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SX_KEYRING2_HDR_LEN, NULL, pt, len, ad.b, ad.n, NULL, nonce, kk);
}

int sx_crypto_keyring2_open_raw(uint8_t *out, size_t *ret_len, const uint8_t kk[32], const uint8_t *blob, size_t len)
{
    ad_buf ad = {.n = 0};
    if (len < SX_KEYRING2_HDR_LEN + SX_TAGBYTES || len > SX_KEYRING2_HDR_LEN + SX_KEYRING_PLAIN_MAX + SX_TAGBYTES ||
        blob[0] != SX_KEYRING_BLOB_V2)
        return SX_CRYPTO_EFORMAT;
    ad_str(&ad, LABEL_KEYRING_V2);
    ad_field(&ad, blob, 1 + SX_KKID_BYTES);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, blob + SX_KEYRING2_HDR_LEN,
                                                   len - SX_KEYRING2_HDR_LEN, ad.b, ad.n, blob + 1 + SX_KKID_BYTES,
                                                   kk) != 0)
        return SX_CRYPTO_EBADSEAL;
    *ret_len = len - SX_KEYRING2_HDR_LEN - SX_TAGBYTES;
    return 0;
}

/* --- a slot's wrapped keyring key: nonce(24) | ciphertext(32)+tag -------------------------------- *
 * AD = lp(label) lp(BLAKE2b-256(slot header)); the header holds the slot's id and type, so a record
 * copied under another id or with its type byte changed fails to open. */

static void ad_slot(ad_buf *ad, const uint8_t *hdr, size_t hdrlen)
{
    uint8_t h[32];
    crypto_generichash(h, sizeof h, hdr, hdrlen, NULL, 0);
    ad->n = 0;
    ad_str(ad, LABEL_SLOT);
    ad_field(ad, h, sizeof h);
}

void sx_crypto_slot_wrap_nonce(uint8_t *out, const uint8_t slot_key[32], const uint8_t *hdr, size_t hdrlen,
                               const uint8_t kk[32], const uint8_t nonce[SX_NONCEBYTES])
{
    ad_buf ad;
    ad_slot(&ad, hdr, hdrlen);
    memcpy(out, nonce, SX_NONCEBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SX_NONCEBYTES, NULL, kk, SX_CRYPTO_KEYBYTES, ad.b, ad.n, NULL,
                                               nonce, slot_key);
}

int sx_crypto_slot_unwrap(uint8_t kk[32], const uint8_t slot_key[32], const uint8_t *hdr, size_t hdrlen,
                          const uint8_t *wrap)
{
    ad_buf ad;
    ad_slot(&ad, hdr, hdrlen);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(kk, NULL, NULL, wrap + SX_NONCEBYTES,
                                                   SX_CRYPTO_KEYBYTES + SX_TAGBYTES, ad.b, ad.n, wrap, slot_key) != 0)
        return SX_CRYPTO_EBADSEAL;
    return 0;
}

/* --- recovery copy: fmt(1) | eph_pk(32) | nonce(24) | ciphertext+tag ---------------------------- *
 * An X25519 exchange between a fresh ephemeral key and the recovery public key gives a shared
 * secret; BLAKE2b keyed with it over (label, eph_pk, rpk) gives the XChaCha20-Poly1305 key. The
 * running server needs only the public key to keep the recovery copy current after rotations. */

int sx_crypto_recovery_wrap_key(uint8_t key[32], const uint8_t sk[32], const uint8_t pk_other[32],
                                const uint8_t eph_pk[32], const uint8_t rpk[32])
{
    uint8_t shared[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(shared, sk, pk_other) != 0)
        return SX_CRYPTO_EFORMAT; /* low-order point */
    crypto_generichash_state st;
    crypto_generichash_init(&st, shared, sizeof shared, 32);
    crypto_generichash_update(&st, (const uint8_t *)LABEL_RECOVERY_WRAP, sizeof LABEL_RECOVERY_WRAP - 1);
    crypto_generichash_update(&st, eph_pk, 32);
    crypto_generichash_update(&st, rpk, 32);
    crypto_generichash_final(&st, key, 32);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(&st, sizeof st);
    return 0;
}

static void ad_recovery(ad_buf *ad, const uint8_t rpk[32], const uint8_t *hdr)
{
    ad->n = 0;
    ad_str(ad, LABEL_RECOVERY);
    ad_field(ad, rpk, 32);
    ad_field(ad, hdr, 1 + 32);
}

int sx_crypto_recovery_seal_eph(uint8_t *out, const uint8_t rpk[32], const uint8_t *pt, size_t len,
                                const uint8_t eph_sk[32], const uint8_t nonce[SX_NONCEBYTES])
{
    uint8_t key[32];
    ad_buf ad;
    out[0] = SX_FMT_V1;
    crypto_scalarmult_base(out + 1, eph_sk);
    memcpy(out + 33, nonce, SX_NONCEBYTES);
    int r = sx_crypto_recovery_wrap_key(key, eph_sk, rpk, out + 1, rpk);
    if (r < 0)
        return r;
    ad_recovery(&ad, rpk, out);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SX_RECOVERY_HDR_LEN, NULL, pt, len, ad.b, ad.n, NULL, nonce, key);
    sodium_memzero(key, sizeof key);
    return 0;
}

int sx_crypto_recovery_seal(uint8_t *out, const uint8_t rpk[32], const uint8_t *pt, size_t len)
{
    uint8_t eph_sk[32], nonce[SX_NONCEBYTES];
    randombytes_buf(eph_sk, sizeof eph_sk);
    randombytes_buf(nonce, sizeof nonce);
    int r = sx_crypto_recovery_seal_eph(out, rpk, pt, len, eph_sk, nonce);
    sodium_memzero(eph_sk, sizeof eph_sk);
    return r;
}

int sx_crypto_recovery_open_raw(uint8_t *out, size_t *ret_len, const uint8_t rpk[32], const uint8_t rsk[32],
                                const uint8_t *blob, size_t len)
{
    uint8_t key[32];
    ad_buf ad;
    if (len < SX_RECOVERY_HDR_LEN + SX_TAGBYTES || len > SX_RECOVERY_HDR_LEN + SX_KEYRING_PLAIN_MAX + SX_TAGBYTES ||
        blob[0] != SX_FMT_V1)
        return SX_CRYPTO_EFORMAT;
    int r = sx_crypto_recovery_wrap_key(key, rsk, blob + 1, blob + 1, rpk);
    if (r < 0)
        return SX_CRYPTO_EBADRECOVERY;
    ad_recovery(&ad, rpk, blob);
    r = crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, blob + SX_RECOVERY_HDR_LEN,
                                                   len - SX_RECOVERY_HDR_LEN, ad.b, ad.n, blob + 33, key);
    sodium_memzero(key, sizeof key);
    if (r != 0)
        return SX_CRYPTO_EBADRECOVERY;
    *ret_len = len - SX_RECOVERY_HDR_LEN - SX_TAGBYTES;
    return 0;
}

/* --- printable recovery key ------------------------------------------------------------------- *
 * "SXR1-" then 35 bytes (32 key bytes + 3 checksum bytes) in RFC 4648 base32, 56 symbols in seven
 * dash-separated groups of eight. The checksum catches typos before any decryption is tried. */

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static void recovery_checksum(uint8_t out[3], const uint8_t raw[32])
{
    uint8_t h[16];
    crypto_generichash(h, sizeof h, raw, 32, (const uint8_t *)LABEL_RECOVERY_CHECK, sizeof LABEL_RECOVERY_CHECK - 1);
    memcpy(out, h, 3);
}

void sx_crypto_recovery_encode(char out[SX_CRYPTO_RECOVERY_KEY_SIZE], const uint8_t raw[32])
{
    uint8_t buf[SX_RECOVERY_RAWBYTES];
    memcpy(buf, raw, 32);
    recovery_checksum(buf + 32, raw);
    size_t o = 0;
    memcpy(out, "SXR1", 4);
    o = 4;
    for (size_t sym = 0; sym < 56; sym++) {
        if (sym % 8 == 0)
            out[o++] = '-';
        size_t bit = sym * 5;
        unsigned v = (unsigned)buf[bit / 8] << 8 | (bit / 8 + 1 < sizeof buf ? buf[bit / 8 + 1] : 0);
        out[o++] = B32[(v >> (11 - bit % 8)) & 31];
    }
    out[o] = '\0';
    sodium_memzero(buf, sizeof buf);
}

int sx_crypto_recovery_decode(uint8_t raw[32], const char *text)
{
    uint8_t buf[SX_RECOVERY_RAWBYTES] = {0}, check[3];
    size_t sym = 0;
    if (!text)
        return SX_CRYPTO_EBADRECOVERY;
    while (*text == ' ' || *text == '\t')
        text++;
    if (strncasecmp(text, "SXR1", 4) == 0)
        text += 4;
    for (; *text; text++) {
        char ch = *text;
        if (ch == '-' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
            continue;
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        if (ch == '0')
            ch = 'O'; /* common misreadings of symbols base32 does not use */
        else if (ch == '1')
            ch = 'I';
        else if (ch == '8')
            ch = 'B';
        const char *pos = ch ? strchr(B32, ch) : NULL;
        if (!pos || sym >= 56) {
            sodium_memzero(buf, sizeof buf);
            return SX_CRYPTO_EBADRECOVERY;
        }
        unsigned v = (unsigned)(pos - B32);
        size_t bit = sym * 5;
        unsigned w = v << (11 - bit % 8);
        buf[bit / 8] |= (uint8_t)(w >> 8);
        if (bit / 8 + 1 < sizeof buf)
            buf[bit / 8 + 1] |= (uint8_t)w;
        sym++;
    }
    int r = SX_CRYPTO_EBADRECOVERY;
    if (sym == 56) {
        recovery_checksum(check, buf);
        if (sodium_memcmp(check, buf + 32, 3) == 0) {
            memcpy(raw, buf, 32);
            r = 0;
        }
    }
    sodium_memzero(buf, sizeof buf);
    return r;
}

void sx_crypto_recovery_keypair(uint8_t pk[32], uint8_t sk[32], const uint8_t raw[32])
{
    uint8_t seed[crypto_box_SEEDBYTES];
    crypto_generichash(seed, sizeof seed, (const uint8_t *)LABEL_RECOVERY_X25519, sizeof LABEL_RECOVERY_X25519 - 1, raw,
                       32);
    crypto_box_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof seed);
}
