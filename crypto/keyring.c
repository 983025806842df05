/*
 * keyring.c - the keyring: opening or initialising the hierarchy, seal migration and recovery,
 * and the commit that every change of the keyring goes through (master versions are added and
 * retired by rotation.c).
 *
 * The keyring is one record (s/keyring) holding every live master-key version plus the long-lived
 * system keys, sealed under the seal key; a second record (s/keyring.recovery) holds the same
 * plaintext encrypted to the recovery public key. Both change together in one storage batch whose
 * preconditions name the revisions this process last read, so two processes changing the keyring
 * at once cannot lose each other's update: the loser reloads and retries. Every data-key wrap also
 * checks the keyring revision (datakey.c), which is what makes the "nothing references it" scan of
 * sx_crypto_master_retire() (rotation.c) race-free: once a version stops being active, no wrap
 * under it can commit any more.
 *
 * In memory the decoded keyring lives in one sodium_malloc block guarded by c->lock (readers copy
 * a master key out into a sodium_malloc scratch slot, cache.c); the system keys live in a separate block
 * that never changes, so pointers to them can be lent out until sx_crypto_free().
 */
#include "crypto/crypto_internal.h"

#include <stdlib.h>
#include <string.h>

/* --- keyring plaintext ------------------------------------------------------------------------ */

static size_t keyring_encode(uint8_t *out, const sx_keyring *kr, const uint8_t *sys)
{
    uint8_t *p = out;
    *p++ = SX_KEYRING_FMT_V2;
    memcpy(p, kr->install_id, 16);
    memcpy(p + 16, kr->recovery_pk, 32);
    memcpy(p + 48, sys, 64);
    p += 16 + 32 + 64;
    sx_be32_put(p, kr->active);
    sx_be32_put(p + 4, kr->n);
    p += 8;
    for (uint32_t i = 0; i < kr->n; i++) {
        sx_be32_put(p, kr->masters[i].version);
        memcpy(p + 4, kr->masters[i].key, SX_CRYPTO_KEYBYTES);
        p += 4 + SX_CRYPTO_KEYBYTES;
    }
    *p++ = kr->flags;
    return (size_t)(p - out);
}

/* The record-MAC key is derived from the token-hash key (a KDF context of its own), so keyrings
 * written before record MACs existed have one without a format change of the key material. */
static void sys_derive(uint8_t *sys)
{
    crypto_kdf_derive_from_key(sys + 64, SX_CRYPTO_KEYBYTES, 1, "sxrecmac", sys);
}

/* sys may be NULL (reload: the system keys never change). Format 1 has no flags byte (flags 0:
 * the authority records were written without MACs); format 2 ends with it. */
static int keyring_decode(sx_keyring *kr, uint8_t *sys, const uint8_t *pt, size_t len)
{
    const size_t fixed = 1 + 16 + 32 + 64 + 8;
    if (len < fixed || (pt[0] != SX_FMT_V1 && pt[0] != SX_KEYRING_FMT_V2))
        return SX_CRYPTO_EFORMAT;
    size_t tail = pt[0] == SX_KEYRING_FMT_V2 ? 1 : 0;
    uint32_t n = sx_be32_get(pt + fixed - 4), active = sx_be32_get(pt + fixed - 8);
    if (n == 0 || n > SX_CRYPTO_MAX_MASTERS || len != fixed + n * (4 + SX_CRYPTO_KEYBYTES) + tail)
        return SX_CRYPTO_EFORMAT;
    uint8_t flags = tail ? pt[len - 1] : 0;
    if (flags & ~SX_KEYRING_F_RECORD_MACS)
        return SX_CRYPTO_EFORMAT;
    bool have_active = false;
    const uint8_t *p = pt + fixed;
    for (uint32_t i = 0; i < n; i++, p += 4 + SX_CRYPTO_KEYBYTES) {
        uint32_t v = sx_be32_get(p);
        if (v == 0 || (i > 0 && v <= kr->masters[i - 1].version))
            return SX_CRYPTO_EFORMAT;
        kr->masters[i].version = v;
        memcpy(kr->masters[i].key, p + 4, SX_CRYPTO_KEYBYTES);
        have_active |= v == active;
    }
    if (!have_active)
        return SX_CRYPTO_EFORMAT;
    memcpy(kr->install_id, pt + 1, 16);
    memcpy(kr->recovery_pk, pt + 17, 32);
    if (sys) {
        memcpy(sys, pt + 49, 64);
        sys_derive(sys);
    }
    kr->active = active;
    kr->n = n;
    kr->flags = flags;
    return 0;
}

const sx_master *sx_crypto_keyring_find(const sx_keyring *kr, uint32_t version)
{
    for (uint32_t i = 0; i < kr->n; i++)
        if (kr->masters[i].version == version)
            return &kr->masters[i];
    return NULL;
}

/* Seal the keyring plaintext under key for seal_rec, and encrypt it to the recovery key. The two
 * blobs are malloc'd. */
static int keyring_blobs(uint8_t **ret_sealed, size_t *ret_slen, uint8_t **ret_rec, size_t *ret_rlen,
                         const sx_keyring *kr, const uint8_t *sys, const uint8_t *key, const uint8_t *seal_rec,
                         size_t seal_len)
{
    uint8_t *pt = sodium_malloc(SX_KEYRING_PLAIN_MAX);
    if (!pt)
        return -ENOMEM;
    size_t len = keyring_encode(pt, kr, sys);
    size_t slen = SX_KEYRING_HDR_LEN + len + SX_TAGBYTES, rlen = SX_RECOVERY_HDR_LEN + len + SX_TAGBYTES;
    uint8_t *sealed = malloc(slen), *rec = malloc(rlen);
    int r = -ENOMEM;
    if (sealed && rec) {
        uint8_t nonce[SX_NONCEBYTES];
        randombytes_buf(nonce, sizeof nonce);
        sx_crypto_keyring_seal_nonce(sealed, key, seal_rec, seal_len, pt, len, nonce);
        r = sx_crypto_recovery_seal(rec, kr->recovery_pk, pt, len);
    }
    sodium_free(pt);
    if (r < 0) {
        free(sealed);
        free(rec);
        return r;
    }
    *ret_sealed = sealed;
    *ret_slen = slen;
    *ret_rec = rec;
    *ret_rlen = rlen;
    return 0;
}

static void cond_put(sx_storage_op *op, const char *key, const void *val, size_t vlen, uint64_t rev)
{
    *op = (sx_storage_op){.kind = SX_STORAGE_OP_PUT, .key = key, .klen = strlen(key), .val = val, .vlen = vlen};
    op->cond = rev ? SX_STORAGE_COND_REV : SX_STORAGE_COND_ABSENT;
    op->rev = rev;
}

int sx_crypto_keyring_commit(sx_crypto *c, const sx_keyring *nk)
{
    uint8_t *sealed, *rec;
    size_t slen, rlen;
    int r = keyring_blobs(&sealed, &slen, &rec, &rlen, nk, c->sys, c->seal_key, c->seal_rec, c->seal_len);
    if (r < 0)
        return r;
    sx_storage_op ops[3];
    cond_put(&ops[0], SX_KEY_S_KEYRING, sealed, slen, c->keyring_rev);
    cond_put(&ops[1], SX_KEY_S_RECOVERY, rec, rlen, c->recovery_rev);
    ops[2] = (sx_storage_op){.kind = SX_STORAGE_OP_CHECK,
                             .key = SX_KEY_S_SEAL,
                             .klen = strlen(SX_KEY_S_SEAL),
                             .cond = SX_STORAGE_COND_REV,
                             .rev = c->seal_rev};
    r = sx_storage_batch(c->st, ops, 3, NULL);
    free(sealed);
    free(rec);
    if (r < 0)
        return r;
    c->keyring_rev = ops[0].ret_rev;
    c->recovery_rev = ops[1].ret_rev;
    memcpy(c->kr, nk, sizeof *nk);
    return 0;
}

/* --- loading ---------------------------------------------------------------------------------- */

typedef struct records {
    uint8_t *seal, *keyring;
    size_t seal_len, keyring_len;
    uint64_t seal_rev, keyring_rev, recovery_rev;
} records;

static void records_clear(records *rs)
{
    sx_storage_free(rs->seal);
    sx_storage_free(rs->keyring);
    memset(rs, 0, sizeof *rs);
}

/* Read the three system records (absent ones stay NULL / rev 0). */
static int records_read(sx_storage *st, records *rs)
{
    memset(rs, 0, sizeof *rs);
    int r = sx_storage_get(st, SX_KEY_S_SEAL, strlen(SX_KEY_S_SEAL), (void **)&rs->seal, &rs->seal_len, &rs->seal_rev);
    if (r < 0 && r != -ENOENT)
        return r;
    r = sx_storage_get(st, SX_KEY_S_KEYRING, strlen(SX_KEY_S_KEYRING), (void **)&rs->keyring, &rs->keyring_len,
                       &rs->keyring_rev);
    if (r < 0 && r != -ENOENT)
        goto fail;
    r = sx_storage_get(st, SX_KEY_S_RECOVERY, strlen(SX_KEY_S_RECOVERY), NULL, NULL, &rs->recovery_rev);
    if (r < 0 && r != -ENOENT)
        goto fail;
    return 0;
fail:
    records_clear(rs);
    return r;
}

/* Open the sealed keyring in rs with key into kr (and sys when not NULL). */
static int keyring_unseal(sx_keyring *kr, uint8_t *sys, const uint8_t *key, const records *rs)
{
    uint8_t *pt = sodium_malloc(SX_KEYRING_PLAIN_MAX);
    if (!pt)
        return -ENOMEM;
    size_t len;
    int r = sx_crypto_keyring_open_raw(pt, &len, key, rs->seal, rs->seal_len, rs->keyring, rs->keyring_len);
    if (r == 0)
        r = keyring_decode(kr, sys, pt, len);
    sodium_free(pt);
    return r;
}

int sx_crypto_keyring_reload(sx_crypto *c)
{
    records rs;
    int r = records_read(c->st, &rs);
    if (r < 0)
        return r;
    sx_keyring *nk = sodium_malloc(sizeof *nk);
    if (!nk) {
        records_clear(&rs);
        return -ENOMEM;
    }
    pthread_rwlock_wrlock(&c->lock);
    if (!rs.seal || !rs.keyring)
        r = SX_CRYPTO_EFORMAT;
    else if (rs.seal_rev != c->seal_rev)
        r = SX_CRYPTO_EBADSEAL; /* re-sealed by another process: this one needs the new seal options */
    else
        r = keyring_unseal(nk, NULL, c->seal_key, &rs);
    if (r == 0) {
        memcpy(c->kr, nk, sizeof *nk);
        c->keyring_rev = rs.keyring_rev;
        c->recovery_rev = rs.recovery_rev;
    }
    pthread_rwlock_unlock(&c->lock);
    sodium_free(nk);
    records_clear(&rs);
    return r;
}

int sx_crypto_master_get(sx_crypto *c, uint8_t mk[32], uint32_t version)
{
    for (int pass = 0; pass < 2; pass++) {
        pthread_rwlock_rdlock(&c->lock);
        const sx_master *m = sx_crypto_keyring_find(c->kr, version);
        if (m)
            memcpy(mk, m->key, SX_CRYPTO_KEYBYTES);
        pthread_rwlock_unlock(&c->lock);
        if (m)
            return 0;
        if (pass == 0) {
            /* A version this process has not seen: another process may have added it. */
            int r = sx_crypto_keyring_reload(c);
            if (r < 0)
                return r;
        }
    }
    return -ENOKEY;
}

int sx_crypto_master_active(sx_crypto *c, uint8_t mk[32], uint32_t *ret_version, uint64_t *ret_keyring_rev)
{
    pthread_rwlock_rdlock(&c->lock);
    const sx_master *m = sx_crypto_keyring_find(c->kr, c->kr->active);
    if (m) {
        memcpy(mk, m->key, SX_CRYPTO_KEYBYTES);
        *ret_version = m->version;
        *ret_keyring_rev = c->keyring_rev;
    }
    pthread_rwlock_unlock(&c->lock);
    return m ? 0 : SX_CRYPTO_EFORMAT; /* keyring_decode guarantees the active version exists */
}

/* --- handle ----------------------------------------------------------------------------------- */

static int handle_new(sx_crypto **ret, sx_storage *st, const sx_crypto_options *opt)
{
    if (sodium_init() < 0)
        return -EIO;
    sx_crypto *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->st = st;
    pthread_rwlock_init(&c->lock, NULL);
    c->kr = sodium_malloc(sizeof *c->kr);
    c->seal_key = sodium_malloc(SX_CRYPTO_KEYBYTES);
    c->sys = sodium_malloc(SX_SYS_BYTES);
    int r = sx_dk_cache_new(&c->cache, opt->cache_entries ? opt->cache_entries : SX_CRYPTO_CACHE_DEFAULT);
    if (r == 0)
        r = sx_scratch_new(&c->scratch);
    if (!c->kr || !c->seal_key || !c->sys || r < 0) {
        sx_crypto_free(c);
        return -ENOMEM;
    }
    sodium_memzero(c->kr, sizeof *c->kr);
    *ret = c;
    return 0;
}

void sx_crypto_free(sx_crypto *c)
{
    if (!c)
        return;
    sx_dk_cache_free(c->cache);
    sx_scratch_free(c->scratch);
    sodium_free(c->kr); /* sodium_free zeroes before unmapping; NULL ok */
    sodium_free(c->seal_key);
    sodium_free(c->sys);
    free(c->seal_rec);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

void sx_crypto_recovery_key_free(char *key)
{
    sodium_free(key);
}

const uint8_t *sx_crypto_system_key(const sx_crypto *c, sx_crypto_system_key_id which)
{
    if (!c)
        return NULL;
    if (which == SX_CRYPTO_KEY_TOKEN_HASH)
        return c->sys;
    if (which == SX_CRYPTO_KEY_AUDIT)
        return c->sys + 32;
    if (which == SX_CRYPTO_KEY_RECORD)
        return c->sys + 64;
    return NULL;
}

/* Adopt a seal record copy and revisions. */
static int handle_adopt_seal(sx_crypto *c, const uint8_t *seal_rec, size_t seal_len, sx_crypto_seal_type type)
{
    uint8_t *copy = malloc(seal_len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, seal_rec, seal_len);
    free(c->seal_rec);
    c->seal_rec = copy;
    c->seal_len = seal_len;
    c->seal_type = type;
    return 0;
}

/* Initialise a new hierarchy. 1 when another process initialised first (caller re-reads). */
static int hierarchy_init(sx_crypto *c, char **ret_recovery_key, const sx_crypto_options *opt, char *err, size_t errlen)
{
    sx_seal_params sp;
    uint8_t *raw = sodium_malloc(32 + 32);
    if (!raw)
        return -ENOMEM;
    int r = sx_seal_create(c->seal_key, &sp, &opt->seal, err, errlen);
    if (r < 0) {
        sodium_free(raw);
        return r;
    }
    uint8_t *seal_rec = NULL, *sealed = NULL, *rec = NULL;
    size_t seal_len = 0, slen, rlen;
    r = sx_seal_params_encode(&seal_rec, &seal_len, &sp);
    sx_seal_params_release(&sp);
    if (r < 0)
        goto out;

    randombytes_buf(raw, 32);
    sx_crypto_recovery_keypair(c->kr->recovery_pk, raw + 32, raw);
    randombytes_buf(c->kr->install_id, sizeof c->kr->install_id);
    randombytes_buf(c->sys, 64);
    sys_derive(c->sys);
    c->kr->n = 1;
    c->kr->flags = SX_KEYRING_F_RECORD_MACS; /* a new store has no record written without a MAC */
    c->kr->active = 1;
    c->kr->masters[0].version = 1;
    randombytes_buf(c->kr->masters[0].key, SX_CRYPTO_KEYBYTES);
    r = keyring_blobs(&sealed, &slen, &rec, &rlen, c->kr, c->sys, c->seal_key, seal_rec, seal_len);
    if (r < 0)
        goto out;

    sx_storage_op ops[3];
    cond_put(&ops[0], SX_KEY_S_SEAL, seal_rec, seal_len, 0);
    cond_put(&ops[1], SX_KEY_S_KEYRING, sealed, slen, 0);
    cond_put(&ops[2], SX_KEY_S_RECOVERY, rec, rlen, 0);
    r = sx_storage_batch(c->st, ops, 3, NULL);
    if (r == SX_STORAGE_ECONDITION) {
        r = 1;
        goto out;
    }
    if (r < 0) {
        sx_fail(err, errlen, r, "cannot store the new keyring: %s", sx_storage_strerror(r));
        goto out;
    }
    c->seal_rev = ops[0].ret_rev;
    c->keyring_rev = ops[1].ret_rev;
    c->recovery_rev = ops[2].ret_rev;
    r = handle_adopt_seal(c, seal_rec, seal_len, opt->seal.type);
    if (r == 0 && ret_recovery_key) {
        char *text = sodium_malloc(SX_CRYPTO_RECOVERY_KEY_SIZE);
        if (!text)
            r = -ENOMEM; /* the store is initialised; the caller can still recover with nothing: report it */
        else {
            sx_crypto_recovery_encode(text, raw);
            *ret_recovery_key = text;
        }
    }
out:
    if (r != 0) {
        sodium_memzero(c->kr, sizeof *c->kr);
        sodium_memzero(c->sys, SX_SYS_BYTES);
    }
    sodium_free(raw);
    free(seal_rec);
    free(sealed);
    free(rec);
    return r;
}

/* Open an existing hierarchy from rs. */
static int hierarchy_open(sx_crypto *c, const records *rs, const sx_crypto_options *opt, char *err, size_t errlen)
{
    sx_seal_params sp;
    if (!rs->keyring)
        return sx_fail(err, errlen, SX_CRYPTO_EFORMAT, "the store has a seal record but no keyring");
    int r = sx_seal_params_decode(&sp, rs->seal, rs->seal_len);
    if (r < 0)
        return sx_fail(err, errlen, r, "the stored seal record is malformed");
    r = sx_seal_unlock(c->seal_key, &sp, &opt->seal, err, errlen);
    if (r < 0)
        return r;
    r = keyring_unseal(c->kr, c->sys, c->seal_key, rs);
    if (r == SX_CRYPTO_EBADSEAL)
        return sx_fail(err, errlen, r,
                       "the %s seal does not open the keyring: wrong %s, or the keyring was altered or comes "
                       "from another installation",
                       sx_crypto_seal_type_name(sp.type),
                       sp.type == SX_CRYPTO_SEAL_FILE         ? "key file"
                       : sp.type == SX_CRYPTO_SEAL_PASSPHRASE ? "passphrase"
                                                              : "TPM object");
    if (r < 0)
        return sx_fail(err, errlen, r, "cannot open the keyring: %s", sx_crypto_strerror(r));
    c->seal_rev = rs->seal_rev;
    c->keyring_rev = rs->keyring_rev;
    c->recovery_rev = rs->recovery_rev;
    return handle_adopt_seal(c, rs->seal, rs->seal_len, sp.type);
}

int sx_crypto_open(sx_crypto **ret, char **ret_recovery_key, sx_storage *st, const sx_crypto_options *opt, char *err,
                   size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!ret || !st || !opt)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    sx_crypto *c;
    int r = handle_new(&c, st, opt);
    if (r < 0)
        return sx_fail(err, errlen, r, "cannot allocate secure memory for keys");
    char *recovery = NULL;
    for (int attempt = 0; attempt < 3; attempt++) {
        records rs;
        r = records_read(st, &rs);
        if (r < 0) {
            sx_fail(err, errlen, r, "cannot read the keyring records: %s", sx_storage_strerror(r));
            break;
        }
        if (rs.seal)
            r = hierarchy_open(c, &rs, opt, err, errlen);
        else if (rs.keyring)
            r = sx_fail(err, errlen, SX_CRYPTO_EFORMAT, "the store has a keyring but no seal record");
        else
            r = hierarchy_init(c, &recovery, opt, err, errlen);
        records_clear(&rs);
        if (r != 1)
            break; /* 1: lost an initialisation race; read the winner's records */
    }
    if (r != 0) {
        sx_crypto_free(c);
        sodium_free(recovery);
        return r > 0 ? sx_fail(err, errlen, -EAGAIN, "keyring initialisation kept racing") : r;
    }
    if (ret_recovery_key)
        *ret_recovery_key = recovery;
    else
        sodium_free(recovery);
    *ret = c;
    return 0;
}

/* --- record MACs ---------------------------------------------------------------------------- */

bool sx_crypto_records_authenticated(sx_crypto *c)
{
    pthread_rwlock_rdlock(&c->lock);
    bool on = (c->kr->flags & SX_KEYRING_F_RECORD_MACS) != 0;
    pthread_rwlock_unlock(&c->lock);
    return on;
}

int sx_crypto_keyring_update(sx_crypto *c, sx_keyring_edit_fn edit, void *ctx)
{
    sx_keyring *nk = sodium_malloc(sizeof *nk);
    if (!nk)
        return -ENOMEM;
    int r = SX_STORAGE_ECONDITION;
    for (int attempt = 0; attempt < SX_KEYRING_COMMIT_RETRIES && r == SX_STORAGE_ECONDITION; attempt++) {
        if (attempt > 0 && (r = sx_crypto_keyring_reload(c)) < 0)
            break;
        pthread_rwlock_wrlock(&c->lock);
        memcpy(nk, c->kr, sizeof *nk);
        r = edit(ctx, nk);
        if (r == 0)
            r = sx_crypto_keyring_commit(c, nk);
        else if (r == SX_KEYRING_EDIT_NONE)
            r = 0;
        pthread_rwlock_unlock(&c->lock);
    }
    sodium_free(nk);
    return r;
}

static int set_records_authenticated(void *ctx, sx_keyring *nk)
{
    if (nk->flags & SX_KEYRING_F_RECORD_MACS)
        return SX_KEYRING_EDIT_NONE; /* another node (or an earlier run) finished the upgrade */
    nk->flags |= SX_KEYRING_F_RECORD_MACS;
    return 0;
}

int sx_crypto_records_authenticated_set(sx_crypto *c)
{
    if (!c)
        return -EINVAL;
    return sx_crypto_keyring_update(c, set_records_authenticated, NULL);
}

/* --- seal migration and recovery -------------------------------------------------------------- */

/* Write seal_rec and the keyring sealed under key in one batch, on condition that s/seal and
 * s/keyring still have the given revisions (0 = absent) and, when rec_rev != 0, that the recovery
 * record does too. On success updates the revisions in *rs. */
static int seal_commit(sx_storage *st, records *rs, const sx_keyring *kr, const uint8_t *sys, const uint8_t *key,
                       const uint8_t *seal_rec, size_t seal_len)
{
    uint8_t *sealed, *rec;
    size_t slen, rlen;
    int r = keyring_blobs(&sealed, &slen, &rec, &rlen, kr, sys, key, seal_rec, seal_len);
    if (r < 0)
        return r;
    sx_storage_op ops[3];
    cond_put(&ops[0], SX_KEY_S_SEAL, seal_rec, seal_len, rs->seal_rev);
    cond_put(&ops[1], SX_KEY_S_KEYRING, sealed, slen, rs->keyring_rev);
    size_t n = 2;
    if (rs->recovery_rev)
        ops[n++] = (sx_storage_op){.kind = SX_STORAGE_OP_CHECK,
                                   .key = SX_KEY_S_RECOVERY,
                                   .klen = strlen(SX_KEY_S_RECOVERY),
                                   .cond = SX_STORAGE_COND_REV,
                                   .rev = rs->recovery_rev};
    else
        cond_put(&ops[n++], SX_KEY_S_RECOVERY, rec, rlen, 0);
    r = sx_storage_batch(st, ops, n, NULL);
    free(sealed);
    free(rec);
    if (r == 0) {
        rs->seal_rev = ops[0].ret_rev;
        rs->keyring_rev = ops[1].ret_rev;
        if (!rs->recovery_rev)
            rs->recovery_rev = ops[2].ret_rev;
    }
    return r;
}

/* Create a new seal from o: key (sodium_malloc'd by the caller) and malloc'd record. */
static int seal_new(uint8_t *key, uint8_t **ret_rec, size_t *ret_len, const sx_crypto_seal_options *o, char *err,
                    size_t errlen)
{
    sx_seal_params sp;
    int r = sx_seal_create(key, &sp, o, err, errlen);
    if (r < 0)
        return r;
    r = sx_seal_params_encode(ret_rec, ret_len, &sp);
    sx_seal_params_release(&sp);
    if (r < 0)
        sodium_memzero(key, SX_CRYPTO_KEYBYTES);
    return r;
}

int sx_crypto_reseal(sx_crypto *c, const sx_crypto_seal_options *new_seal, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!c || !new_seal)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    uint8_t *key = sodium_malloc(SX_CRYPTO_KEYBYTES), *rec = NULL;
    size_t len = 0;
    if (!key)
        return -ENOMEM;
    int r = seal_new(key, &rec, &len, new_seal, err, errlen);
    for (int attempt = 0; r == 0 && attempt < SX_KEYRING_COMMIT_RETRIES; attempt++) {
        if (attempt > 0 && (r = sx_crypto_keyring_reload(c)) < 0)
            break;
        pthread_rwlock_wrlock(&c->lock);
        records rs = {.seal_rev = c->seal_rev, .keyring_rev = c->keyring_rev, .recovery_rev = c->recovery_rev};
        r = seal_commit(c->st, &rs, c->kr, c->sys, key, rec, len);
        if (r == 0) {
            r = handle_adopt_seal(c, rec, len, new_seal->type);
            memcpy(c->seal_key, key, SX_CRYPTO_KEYBYTES);
            c->seal_rev = rs.seal_rev;
            c->keyring_rev = rs.keyring_rev;
        }
        pthread_rwlock_unlock(&c->lock);
        if (r != SX_STORAGE_ECONDITION)
            break;
        r = 0; /* retry after reloading */
        if (attempt == SX_KEYRING_COMMIT_RETRIES - 1)
            r = SX_STORAGE_ECONDITION;
    }
    if (r < 0 && err && !err[0])
        sx_fail(err, errlen, r, "cannot re-seal the keyring: %s", sx_crypto_strerror(r));
    sodium_free(key);
    free(rec);
    return r;
}

int sx_crypto_recover(sx_crypto **ret, sx_storage *st, const char *recovery_key, const sx_crypto_options *opt,
                      char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!ret || !st || !recovery_key || !opt)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    sx_crypto *c;
    int r = handle_new(&c, st, opt);
    if (r < 0)
        return sx_fail(err, errlen, r, "cannot allocate secure memory for keys");
    uint8_t *kp = sodium_malloc(32 + 32 + 32), *pt = sodium_malloc(SX_KEYRING_PLAIN_MAX), *seal_rec = NULL;
    uint8_t *blob = NULL;
    size_t seal_len = 0, blen = 0, ptlen = 0;
    records rs = {0};
    if (!kp || !pt) {
        r = sx_fail(err, errlen, -ENOMEM, "cannot allocate secure memory for keys");
        goto out;
    }
    r = sx_crypto_recovery_decode(kp, recovery_key);
    if (r < 0) {
        sx_fail(err, errlen, r, "the recovery key is mistyped (its checksum does not match)");
        goto out;
    }
    sx_crypto_recovery_keypair(kp + 32, kp + 64, kp);
    r = records_read(st, &rs);
    if (r == 0)
        r = sx_storage_get(st, SX_KEY_S_RECOVERY, strlen(SX_KEY_S_RECOVERY), (void **)&blob, &blen, &rs.recovery_rev);
    if (r < 0) {
        sx_fail(err, errlen, r, "cannot read the recovery record: %s", sx_storage_strerror(r));
        goto out;
    }
    r = sx_crypto_recovery_open_raw(pt, &ptlen, kp + 32, kp + 64, blob, blen);
    if (r == 0)
        r = keyring_decode(c->kr, c->sys, pt, ptlen);
    if (r == 0 && sodium_memcmp(c->kr->recovery_pk, kp + 32, 32) != 0)
        r = SX_CRYPTO_EBADRECOVERY;
    if (r < 0) {
        sx_fail(err, errlen, r == SX_CRYPTO_EFORMAT ? r : SX_CRYPTO_EBADRECOVERY,
                "the recovery key does not open this store's recovery record");
        r = r == SX_CRYPTO_EFORMAT ? r : SX_CRYPTO_EBADRECOVERY;
        goto out;
    }
    r = seal_new(c->seal_key, &seal_rec, &seal_len, &opt->seal, err, errlen);
    if (r < 0)
        goto out;
    r = seal_commit(st, &rs, c->kr, c->sys, c->seal_key, seal_rec, seal_len);
    if (r < 0) {
        sx_fail(err, errlen, r, "cannot store the re-sealed keyring: %s", sx_crypto_strerror(r));
        goto out;
    }
    c->seal_rev = rs.seal_rev;
    c->keyring_rev = rs.keyring_rev;
    c->recovery_rev = rs.recovery_rev;
    r = handle_adopt_seal(c, seal_rec, seal_len, opt->seal.type);
out:
    sodium_free(kp);
    sodium_free(pt);
    sx_storage_free(blob);
    free(seal_rec);
    records_clear(&rs);
    if (r < 0) {
        sx_crypto_free(c);
        return r;
    }
    *ret = c;
    return 0;
}
