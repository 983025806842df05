/*
 * token.c - token format, keyed hashing, the storage record, and token management.
 *
 * A token is "sxt_" + hex(id) + "_" + base64url(secret), 16 random id bytes and 32 random secret
 * bytes. Storage never sees the secret: a record at "t/" + hex(id) holds the token's public
 * description and BLAKE2b-256(key = token-hash key, msg = "sxt1" || id || secret). The "sxt1"
 * prefix separates this use of the key from any other and versions the hash construction.
 *
 * Record layout, format version 1 (all integers big-endian; every length field is one byte):
 *
 *     off  size  field
 *       0     1  version = 1
 *       1     1  role: 1 viewer, 2 editor, 3 owner, 4 service
 *       2     1  flags: bit 0 = revoked; other bits 0
 *       3     1  reserved, 0
 *       4     8  created_ms  (signed, ms since the Unix epoch)
 *      12     8  expires_ms  (signed; 0 = never)
 *      20     8  revoked_ms  (signed; 0 unless revoked)
 *      28    16  id (raw; equals the id in the key)
 *      44    32  keyed hash
 *      76     1  label length L (0..128), then L bytes of UTF-8 (no control characters)
 *             1  org length (1..64), then the org name
 *             1  project length (0..64; 0 = every project), then the name
 *             1  env length (0..64; 0 = every env; must be 0 when project length is 0), then the name
 *
 * When the handle has a record-MAC key (sx_auth_record_key_set(), always in the server) the stored
 * record is this encoding followed by a 32-byte record MAC over the storage key and the encoding
 * (crypto/FORMAT.md, "Record MACs"); a record without a valid one is SX_AUTH_EFORGED.
 *
 * The decoder accepts exactly this: a different version, a short or long record, an invalid name
 * or label, or an id differing from the key is -EBADMSG. A later version adds fields at the end and
 * bumps the version byte.
 *
 * Where plaintext lives: the secret is generated into a stack buffer, hashed and encoded straight
 * into the sodium_malloc'd token returned to the caller; every stack copy is wiped with
 * sodium_memzero before returning. During verification the secret is decoded into a stack buffer
 * that is wiped the same way; the header value itself is the server's request buffer (h2o pool)
 * and outside this module's control.
 */
#include "auth/auth_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Atomic uint64_t sx_auth_generation = 1;
static _Atomic uint64_t instance_counter = 0;

static const char hexdigits[] = "0123456789abcdef";

/* --- handle ---------------------------------------------------------------------------------------- */

int sx_auth_new(sx_storage *storage, const unsigned char *key, size_t key_len, sx_auth **ret)
{
    if (!storage || !key || key_len != SX_AUTH_KEY_BYTES || !ret)
        return -EINVAL;
    if (sodium_init() < 0)
        return -ENOMEM;
    sx_auth *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->key = sodium_malloc(SX_AUTH_KEY_BYTES);
    if (!a->key) {
        free(a);
        return -ENOMEM;
    }
    memcpy(a->key, key, SX_AUTH_KEY_BYTES);
    sodium_mprotect_readonly(a->key);
    a->storage = storage;
    a->instance = atomic_fetch_add(&instance_counter, 1) + 1;
    *ret = a;
    return 0;
}

int sx_auth_record_key_set(sx_auth *auth, const unsigned char *key, size_t key_len)
{
    if (!auth || !key || key_len != SX_AUTH_KEY_BYTES || auth->rec_key)
        return -EINVAL;
    auth->rec_key = sodium_malloc(SX_AUTH_KEY_BYTES);
    if (!auth->rec_key)
        return -ENOMEM;
    memcpy(auth->rec_key, key, SX_AUTH_KEY_BYTES);
    sodium_mprotect_readonly(auth->rec_key);
    return 0;
}

uint64_t sx_auth_forged_records(sx_auth *auth)
{
    return auth ? atomic_load(&auth->forged) : 0;
}

void sx_auth_free(sx_auth *auth)
{
    if (!auth)
        return;
    sodium_free(auth->rec_key);
    sodium_free(auth->key); /* wipes */
    free(auth);
}

/* --- ids, keys, hashes ------------------------------------------------------------------------------ */

void sx_auth_id_to_hex(const unsigned char id[SX_AUTH_ID_BYTES], char out[SX_AUTH_ID_LEN + 1])
{
    for (size_t i = 0; i < SX_AUTH_ID_BYTES; i++) {
        out[2 * i] = hexdigits[id[i] >> 4];
        out[2 * i + 1] = hexdigits[id[i] & 15];
    }
    out[SX_AUTH_ID_LEN] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is not canonical */
}

int sx_auth_id_from_hex(const char *hex, size_t len, unsigned char id[SX_AUTH_ID_BYTES])
{
    if (!hex || len != SX_AUTH_ID_LEN)
        return -EINVAL;
    for (size_t i = 0; i < SX_AUTH_ID_BYTES; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        id[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

bool sx_auth_id_valid(const char *s)
{
    unsigned char id[SX_AUTH_ID_BYTES];
    return s && strlen(s) == SX_AUTH_ID_LEN && sx_auth_id_from_hex(s, SX_AUTH_ID_LEN, id) == 0;
}

void sx_auth_storage_key(const unsigned char id[SX_AUTH_ID_BYTES], char out[SX_AUTH_STORAGE_KEY_LEN])
{
    char hex[SX_AUTH_ID_LEN + 1];
    sx_auth_id_to_hex(id, hex);
    memcpy(out, SX_AUTH_KEY_PREFIX, SX_AUTH_KEY_PREFIX_LEN);
    memcpy(out + SX_AUTH_KEY_PREFIX_LEN, hex, SX_AUTH_ID_LEN);
}

void sx_auth_token_hash(const sx_auth *auth, const unsigned char id[SX_AUTH_ID_BYTES],
                        const unsigned char secret[SX_AUTH_SECRET_BYTES], unsigned char out[SX_AUTH_HASH_BYTES])
{
    unsigned char msg[4 + SX_AUTH_ID_BYTES + SX_AUTH_SECRET_BYTES];
    memcpy(msg, "sxt1", 4);
    memcpy(msg + 4, id, SX_AUTH_ID_BYTES);
    memcpy(msg + 4 + SX_AUTH_ID_BYTES, secret, SX_AUTH_SECRET_BYTES);
    crypto_generichash(out, SX_AUTH_HASH_BYTES, msg, sizeof msg, auth->key, SX_AUTH_KEY_BYTES);
    sodium_memzero(msg, sizeof msg);
}

/* --- header parsing ---------------------------------------------------------------------------------- */

/* Base64url characters of the secret: 32 bytes = 43 characters without padding. */
#define SECRET_B64_LEN 43u

/* All-ones when a <= c <= b, else 0; no branch. */
static unsigned in_range(unsigned c, unsigned a, unsigned b)
{
    return 0u - (unsigned)((c - a) <= (b - a));
}

/*
 * Decode the 43 base64url characters of a secret into 32 bytes without branching on or indexing by
 * secret data (so neither timing nor cache lines depend on it). Rejects any byte outside
 * [A-Za-z0-9_-] and a non-canonical last character (its 2 unused low bits set). This replaces
 * sodium_base642bin, which in libsodium 1.0.18 accepts some bytes >= 0x80 as digits (and is slower).
 */
static int decode_secret(const char *b64, unsigned char out[SX_AUTH_SECRET_BYTES])
{
    unsigned bad = 0, acc = 0, bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < SECRET_B64_LEN; i++) {
        unsigned c = (unsigned char)b64[i];
        unsigned up = in_range(c, 'A', 'Z'), lo = in_range(c, 'a', 'z'), dg = in_range(c, '0', '9');
        unsigned dash = in_range(c, '-', '-'), us = in_range(c, '_', '_');
        unsigned v = (up & (c - 'A')) | (lo & (c - 'a' + 26)) | (dg & (c - '0' + 52)) | (dash & 62) | (us & 63);
        bad |= ~(up | lo | dg | dash | us) & 1u;
        acc = (acc << 6 | v) & 0xffffu;
        bits += 6;
        if (bits >= 8) { /* depends on the position only */
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    bad |= acc & ((1u << bits) - 1u); /* 2 bits left over: must be zero */
    return bad ? -1 : 0;
}

int sx_auth_header_parse(const char *value, size_t len, unsigned char id[SX_AUTH_ID_BYTES],
                         unsigned char secret[SX_AUTH_SECRET_BYTES])
{
    static const char scheme[] = "bearer ";
    const size_t slen = sizeof scheme - 1;

    /* Exact length first: this also rejects empty, "Bearer", overlong values and extra spaces. */
    if (!value || len != slen + SX_AUTH_TOKEN_LEN)
        return SX_AUTH_EMALFORMED;
    for (size_t i = 0; i < slen - 1; i++) {
        char c = value[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return SX_AUTH_EMALFORMED;
    }
    if (value[slen - 1] != ' ')
        return SX_AUTH_EMALFORMED;

    const char *tok = value + slen;
    if (memcmp(tok, SX_AUTH_TOKEN_PREFIX, 4) != 0 || tok[4 + SX_AUTH_ID_LEN] != '_')
        return SX_AUTH_EMALFORMED;
    if (sx_auth_id_from_hex(tok + 4, SX_AUTH_ID_LEN, id) != 0)
        return SX_AUTH_EMALFORMED;

    if (decode_secret(tok + 4 + SX_AUTH_ID_LEN + 1, secret) != 0) {
        sodium_memzero(secret, SX_AUTH_SECRET_BYTES);
        return SX_AUTH_EMALFORMED;
    }
    return 0;
}

/* --- record encoding ------------------------------------------------------------------------------- */

static void put64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
}

static int64_t get64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static unsigned char *put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    *p++ = (unsigned char)n;
    memcpy(p, s, n);
    return p + n;
}

size_t sx_auth_record_encode(const sx_auth_record *r, unsigned char buf[SX_AUTH_RECORD_MAX])
{
    buf[0] = SX_AUTH_RECORD_V1;
    buf[1] = (unsigned char)r->info.role;
    buf[2] = r->info.revoked ? 1 : 0;
    buf[3] = 0;
    put64(buf + 4, r->info.created_ms);
    put64(buf + 12, r->info.expires_ms);
    put64(buf + 20, r->info.revoked_ms);
    memcpy(buf + 28, r->id, SX_AUTH_ID_BYTES);
    memcpy(buf + 44, r->hash, SX_AUTH_HASH_BYTES);
    unsigned char *p = buf + SX_AUTH_RECORD_FIXED;
    p = put_str(p, r->info.label);
    p = put_str(p, r->info.org);
    p = put_str(p, r->info.project);
    p = put_str(p, r->info.env);
    return (size_t)(p - buf);
}

/* Read a one-byte-length string of at most max bytes into out (NUL-terminated). */
static bool get_str(const unsigned char **p, const unsigned char *end, size_t max, char *out)
{
    if (*p >= end)
        return false;
    size_t n = **p;
    (*p)++;
    if (n > max || (size_t)(end - *p) < n)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return true;
}

int sx_auth_record_decode(const void *data, size_t len, const unsigned char id[SX_AUTH_ID_BYTES], sx_auth_record *ret)
{
    const unsigned char *b = data, *end = b + len;
    sx_auth_record r;
    memset(&r, 0, sizeof r);
    if (!b || len < SX_AUTH_RECORD_FIXED + 4 || len > SX_AUTH_RECORD_MAX || b[0] != SX_AUTH_RECORD_V1)
        return -EBADMSG;
    if (b[1] < SX_AUTH_ROLE_VIEWER || b[1] > SX_AUTH_ROLE_SERVICE || (b[2] & ~1u) || b[3])
        return -EBADMSG;
    r.info.role = (sx_auth_role)b[1];
    r.info.revoked = b[2] & 1;
    r.info.created_ms = get64(b + 4);
    r.info.expires_ms = get64(b + 12);
    r.info.revoked_ms = get64(b + 20);
    memcpy(r.id, b + 28, SX_AUTH_ID_BYTES);
    memcpy(r.hash, b + 44, SX_AUTH_HASH_BYTES);
    if (memcmp(r.id, id, SX_AUTH_ID_BYTES) != 0)
        return -EBADMSG;
    sx_auth_id_to_hex(r.id, r.info.id);
    const unsigned char *p = b + SX_AUTH_RECORD_FIXED;
    if (!get_str(&p, end, SX_AUTH_LABEL_MAX, r.info.label) || !get_str(&p, end, SX_AUTH_NAME_MAX, r.info.org) ||
        !get_str(&p, end, SX_AUTH_NAME_MAX, r.info.project) || !get_str(&p, end, SX_AUTH_NAME_MAX, r.info.env) ||
        p != end)
        return -EBADMSG;
    if (!sx_auth_label_valid(r.info.label) || !sx_auth_name_valid(r.info.org) ||
        (r.info.project[0] && !sx_auth_name_valid(r.info.project)) ||
        (r.info.env[0] && (!r.info.project[0] || !sx_auth_name_valid(r.info.env))))
        return -EBADMSG;
    *ret = r;
    return 0;
}

/*
 * Record MAC: the construction of crypto/FORMAT.md ("Record MACs"), computed here with the key the
 * caller handed in because this module does not depend on crypto: keyed BLAKE2b-256 over
 * be32 len || "secretsd.record.v1", be32 len || storage key, be32 len || body.
 */
static void record_mac(const sx_auth *auth, unsigned char tag[SX_AUTH_RECORD_MACBYTES], const char *skey, size_t sklen,
                       const unsigned char *body, size_t blen)
{
    static const char label[] = "secretsd.record.v1";
    unsigned char be[4];
    crypto_generichash_state st;
    crypto_generichash_init(&st, auth->rec_key, SX_AUTH_KEY_BYTES, SX_AUTH_RECORD_MACBYTES);
    const unsigned char *parts[3] = {(const unsigned char *)label, (const unsigned char *)skey, body};
    size_t lens[3] = {sizeof label - 1, sklen, blen};
    for (int i = 0; i < 3; i++) {
        be[0] = (unsigned char)(lens[i] >> 24);
        be[1] = (unsigned char)(lens[i] >> 16);
        be[2] = (unsigned char)(lens[i] >> 8);
        be[3] = (unsigned char)lens[i];
        crypto_generichash_update(&st, be, 4);
        crypto_generichash_update(&st, parts[i], lens[i]);
    }
    crypto_generichash_final(&st, tag, SX_AUTH_RECORD_MACBYTES);
}

/* Append the MAC to an encoded record of blen bytes in buf (room for SX_AUTH_RECORD_STORED_MAX);
 * returns the stored length. Without a record key the record is stored as encoded. */
static size_t record_seal(const sx_auth *auth, const char key[SX_AUTH_STORAGE_KEY_LEN], unsigned char *buf, size_t blen)
{
    if (!auth->rec_key)
        return blen;
    record_mac(auth, buf + blen, key, SX_AUTH_STORAGE_KEY_LEN, buf, blen);
    return blen + SX_AUTH_RECORD_MACBYTES;
}

/* Check the MAC of a stored record; 0 and the body length, or SX_AUTH_EFORGED (counted). */
static int record_open(sx_auth *auth, const char *key, size_t klen, const void *val, size_t vlen, size_t *ret_len)
{
    if (!auth->rec_key) {
        *ret_len = vlen;
        return 0;
    }
    unsigned char tag[SX_AUTH_RECORD_MACBYTES];
    bool ok = val && vlen >= SX_AUTH_RECORD_MACBYTES;
    if (ok) {
        record_mac(auth, tag, key, klen, val, vlen - SX_AUTH_RECORD_MACBYTES);
        ok = sodium_memcmp(tag, (const unsigned char *)val + vlen - SX_AUTH_RECORD_MACBYTES, SX_AUTH_RECORD_MACBYTES) ==
             0;
    }
    if (!ok) {
        atomic_fetch_add(&auth->forged, 1);
        return SX_AUTH_EFORGED;
    }
    *ret_len = vlen - SX_AUTH_RECORD_MACBYTES;
    return 0;
}

int sx_auth_record_read(sx_auth *auth, const unsigned char id[SX_AUTH_ID_BYTES], sx_auth_record *ret, uint64_t *ret_rev)
{
    char key[SX_AUTH_STORAGE_KEY_LEN];
    void *val = NULL;
    size_t vlen = 0;
    uint64_t rev = 0;
    sx_auth_storage_key(id, key);
    int rc = sx_storage_get(auth->storage, key, sizeof key, &val, &vlen, &rev);
    if (rc < 0)
        return rc;
    size_t blen = 0;
    rc = record_open(auth, key, sizeof key, val, vlen, &blen);
    if (rc == 0)
        rc = sx_auth_record_decode(val, blen, id, ret);
    sx_storage_free(val);
    if (rc == 0 && ret_rev)
        *ret_rev = rev;
    return rc;
}

/* --- management -------------------------------------------------------------------------------------- */

static bool opt_empty(const char *s)
{
    return !s || !*s;
}

int sx_auth_token_create(sx_auth *auth, const sx_auth_token_spec *spec, int64_t now_ms, char **ret_token,
                         sx_auth_token *ret_info)
{
    if (!auth || !spec || !ret_token || now_ms < 0)
        return -EINVAL;
    if (!sx_auth_name_valid(spec->org) || (!opt_empty(spec->project) && !sx_auth_name_valid(spec->project)))
        return -EINVAL;
    if (!opt_empty(spec->env) && (opt_empty(spec->project) || !sx_auth_name_valid(spec->env)))
        return -EINVAL;
    if (!sx_auth_role_name(spec->role) || (spec->label && !sx_auth_label_valid(spec->label)))
        return -EINVAL;
    if (spec->ttl_ms < 0 || spec->ttl_ms > SX_AUTH_TTL_MAX_MS || now_ms > INT64_MAX - SX_AUTH_TTL_MAX_MS)
        return -EINVAL;

    sx_auth_record r;
    memset(&r, 0, sizeof r);
    r.info.role = spec->role;
    snprintf(r.info.label, sizeof r.info.label, "%s", spec->label ? spec->label : "");
    snprintf(r.info.org, sizeof r.info.org, "%s", spec->org);
    snprintf(r.info.project, sizeof r.info.project, "%s", spec->project ? spec->project : "");
    snprintf(r.info.env, sizeof r.info.env, "%s", spec->env ? spec->env : "");
    r.info.created_ms = now_ms;
    r.info.expires_ms = spec->ttl_ms ? now_ms + spec->ttl_ms : 0;

    char *token = sodium_malloc(SX_AUTH_TOKEN_LEN + 1);
    if (!token)
        return -ENOMEM;

    unsigned char secret[SX_AUTH_SECRET_BYTES];
    int rc = 0;
    /* An id collision (2^-128 per pair) would fail the ABSENT precondition; try a few fresh ids. */
    for (int attempt = 0; attempt < 4; attempt++) {
        randombytes_buf(r.id, sizeof r.id);
        randombytes_buf(secret, sizeof secret);
        sx_auth_id_to_hex(r.id, r.info.id);
        sx_auth_token_hash(auth, r.id, secret, r.hash);

        unsigned char buf[SX_AUTH_RECORD_STORED_MAX];
        char key[SX_AUTH_STORAGE_KEY_LEN];
        sx_auth_storage_key(r.id, key);
        size_t blen = record_seal(auth, key, buf, sx_auth_record_encode(&r, buf));
        sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                            .key = key,
                            .klen = sizeof key,
                            .val = buf,
                            .vlen = blen,
                            .cond = SX_STORAGE_COND_ABSENT};
        rc = sx_storage_batch(auth->storage, &op, 1, NULL);
        if (rc != SX_STORAGE_ECONDITION)
            break;
    }
    if (rc == 0) {
        memcpy(token, SX_AUTH_TOKEN_PREFIX, 4);
        memcpy(token + 4, r.info.id, SX_AUTH_ID_LEN);
        token[4 + SX_AUTH_ID_LEN] = '_';
        sodium_bin2base64(token + 4 + SX_AUTH_ID_LEN + 1, SECRET_B64_LEN + 1, secret, sizeof secret,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(r.hash, sizeof r.hash);
    if (rc < 0) {
        sodium_free(token);
        return rc == SX_STORAGE_ECONDITION ? -EEXIST : rc;
    }
    *ret_token = token;
    if (ret_info)
        *ret_info = r.info;
    return 0;
}

void sx_auth_token_plaintext_free(char *token)
{
    sodium_free(token); /* NULL ok; wipes before unmapping */
}

int sx_auth_token_get(sx_auth *auth, const char *id, sx_auth_token *ret)
{
    unsigned char raw[SX_AUTH_ID_BYTES];
    sx_auth_record r;
    if (!auth || !ret || !id || sx_auth_id_from_hex(id, strnlen(id, SX_AUTH_ID_LEN + 1), raw) != 0)
        return -EINVAL;
    int rc = sx_auth_record_read(auth, raw, &r, NULL);
    if (rc < 0)
        return rc;
    *ret = r.info;
    sodium_memzero(&r, sizeof r);
    return 0;
}

int sx_auth_token_list(sx_auth *auth, int (*cb)(const sx_auth_token *tok, void *userdata), void *userdata)
{
    if (!auth || !cb)
        return -EINVAL;
    sx_storage_iter *it = NULL;
    int rc = sx_storage_iter_new(auth->storage, SX_AUTH_KEY_PREFIX, SX_AUTH_KEY_PREFIX_LEN, NULL, 0, 0, &it);
    if (rc < 0)
        return rc;
    for (;;) {
        const void *k, *v;
        size_t klen, vlen;
        rc = sx_storage_iter_next(it, &k, &klen, &v, &vlen, NULL);
        if (rc == SX_STORAGE_DONE) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        unsigned char raw[SX_AUTH_ID_BYTES];
        sx_auth_record r;
        size_t blen = 0;
        if (klen == SX_AUTH_STORAGE_KEY_LEN && record_open(auth, k, klen, v, vlen, &blen) == SX_AUTH_EFORGED)
            continue; /* an edited record is no token: leave it out (counted) */
        if (klen != SX_AUTH_STORAGE_KEY_LEN ||
            sx_auth_id_from_hex((const char *)k + SX_AUTH_KEY_PREFIX_LEN, SX_AUTH_ID_LEN, raw) != 0 ||
            sx_auth_record_decode(v, blen, raw, &r) != 0) {
            rc = -EBADMSG;
            break;
        }
        sodium_memzero(r.hash, sizeof r.hash);
        rc = cb(&r.info, userdata);
        if (rc != 0)
            break;
    }
    sx_storage_iter_free(it);
    return rc;
}

int sx_auth_token_revoke(sx_auth *auth, const char *id, int64_t now_ms)
{
    unsigned char raw[SX_AUTH_ID_BYTES];
    if (!auth || !id || sx_auth_id_from_hex(id, strnlen(id, SX_AUTH_ID_LEN + 1), raw) != 0)
        return -EINVAL;
    int rc;
    /* Compare-and-set loop: a concurrent writer of the same record makes us re-read. */
    for (int attempt = 0; attempt < 16; attempt++) {
        sx_auth_record r;
        uint64_t rev = 0;
        rc = sx_auth_record_read(auth, raw, &r, &rev);
        if (rc < 0)
            return rc;
        if (r.info.revoked) {
            rc = 0;
            break;
        }
        r.info.revoked = true;
        r.info.revoked_ms = now_ms > 0 ? now_ms : 1;
        unsigned char buf[SX_AUTH_RECORD_STORED_MAX];
        char key[SX_AUTH_STORAGE_KEY_LEN];
        sx_auth_storage_key(raw, key);
        size_t blen = record_seal(auth, key, buf, sx_auth_record_encode(&r, buf));
        sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                            .key = key,
                            .klen = sizeof key,
                            .val = buf,
                            .vlen = blen,
                            .cond = SX_STORAGE_COND_REV,
                            .rev = rev};
        rc = sx_storage_batch(auth->storage, &op, 1, NULL);
        if (rc != SX_STORAGE_ECONDITION)
            break;
    }
    if (rc == SX_STORAGE_ECONDITION)
        return -EBUSY;
    if (rc == 0)
        atomic_fetch_add_explicit(&sx_auth_generation, 1, memory_order_release);
    return rc;
}

int sx_auth_store_count(sx_storage *st, uint64_t *ret_tokens)
{
    return sx_storage_count(st, SX_AUTH_KEY_PREFIX, strlen(SX_AUTH_KEY_PREFIX), ret_tokens);
}
