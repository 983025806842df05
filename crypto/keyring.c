/*
 * keyring.c - the keyring: opening or initialising the hierarchy, recovery, and the commit that
 * every change of the keyring goes through (master versions are added and retired by rotation.c;
 * the slots that wrap the keyring key are slot.c's, stores of the older one-seal format are
 * upgraded by upgrade.c).
 *
 * The keyring is one record (s/keyring) holding every live master-key version plus the long-lived
 * system keys, encrypted under the keyring key, which the slots wrap. A change is one storage
 * write whose precondition names the revision this process last read, so two processes changing
 * the keyring at once cannot lose each other's update: the loser reloads and retries. Every data-key wrap also
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

size_t sx_crypto_keyring_encode(uint8_t *out, const sx_keyring *kr, const uint8_t *sys)
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
void sx_crypto_sys_derive(uint8_t *sys)
{
    crypto_kdf_derive_from_key(sys + 64, SX_CRYPTO_KEYBYTES, 1, "sxrecmac", sys);
}

/* sys may be NULL (reload: the system keys never change). Format 1 has no flags byte (flags 0:
 * the authority records were written without MACs); format 2 ends with it. */
int sx_crypto_keyring_decode(sx_keyring *kr, uint8_t *sys, const uint8_t *pt, size_t len)
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
        sx_crypto_sys_derive(sys);
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

int sx_crypto_keyring_blob(uint8_t **ret, size_t *ret_len, const sx_keyring *kr, const uint8_t *sys, const uint8_t *kk,
                           const uint8_t kkid[SX_KKID_BYTES])
{
    uint8_t *pt = sodium_malloc(SX_KEYRING_PLAIN_MAX);
    if (!pt)
        return -ENOMEM;
    size_t len = sx_crypto_keyring_encode(pt, kr, sys), blen = SX_KEYRING2_HDR_LEN + len + SX_TAGBYTES;
    uint8_t *b = malloc(blen);
    if (b) {
        uint8_t nonce[SX_NONCEBYTES];
        randombytes_buf(nonce, sizeof nonce);
        sx_crypto_keyring2_seal_nonce(b, kk, kkid, pt, len, nonce);
    }
    sodium_free(pt);
    if (!b)
        return -ENOMEM;
    *ret = b;
    *ret_len = blen;
    return 0;
}

int sx_crypto_keyring_unseal(sx_keyring *kr, uint8_t *sys, const uint8_t *kk, const uint8_t *blob, size_t len)
{
    uint8_t *pt = sodium_malloc(SX_KEYRING_PLAIN_MAX);
    if (!pt)
        return -ENOMEM;
    size_t plen;
    int r = sx_crypto_keyring2_open_raw(pt, &plen, kk, blob, len);
    if (r == 0)
        r = sx_crypto_keyring_decode(kr, sys, pt, plen);
    sodium_free(pt);
    return r;
}

int sx_crypto_keyring_commit(sx_crypto *c, const sx_keyring *nk)
{
    uint8_t *blob;
    size_t len;
    int r = sx_crypto_keyring_blob(&blob, &len, nk, c->sys, c->kk, c->kkid);
    if (r < 0)
        return r;
    sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                        .key = SX_KEY_S_KEYRING,
                        .klen = strlen(SX_KEY_S_KEYRING),
                        .val = blob,
                        .vlen = len,
                        .cond = SX_STORAGE_COND_REV,
                        .rev = c->keyring_rev};
    r = sx_storage_batch(c->st, &op, 1, NULL);
    free(blob);
    if (r < 0)
        return r;
    c->keyring_rev = op.ret_rev;
    memcpy(c->kr, nk, sizeof *nk);
    return 0;
}

/* --- loading ---------------------------------------------------------------------------------- */

/* After a rekey by another process the keyring is under a new keyring key: unwrap it from this
 * handle's slot (which the rekey re-wrapped when it kept it) with the slot key this handle holds.
 * Called with c->lock held for writing. */
static int follow_rekey(sx_crypto *c, const uint8_t *blob, uint8_t *kk)
{
    char k[SX_SLOT_KEY_BUF];
    uint8_t *rec = NULL;
    size_t len = 0;
    int r = sx_storage_get(c->st, k, sx_slot_key(k, c->slot_id), (void **)&rec, &len, NULL);
    if (r == -ENOENT)
        return SX_CRYPTO_EBADSEAL; /* the slot was removed by the rekey: this process needs a restart */
    if (r < 0)
        return r;
    sx_slot s;
    r = sx_slot_parse(&s, c->slot_id, rec, len);
    if (r == 0 && (s.type != c->seal_type || sodium_memcmp(s.kkid, blob + 1, SX_KKID_BYTES) != 0))
        r = SX_CRYPTO_EBADSEAL;
    if (r == 0)
        r = sx_slot_open(kk, &s, c->seal_key);
    sx_storage_free(rec);
    return r;
}

int sx_crypto_keyring_reload(sx_crypto *c)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    uint64_t rev = 0;
    int r = sx_storage_get(c->st, SX_KEY_S_KEYRING, strlen(SX_KEY_S_KEYRING), (void **)&blob, &len, &rev);
    if (r == -ENOENT)
        return SX_CRYPTO_EFORMAT;
    if (r < 0)
        return r;
    sx_keyring *nk = sodium_malloc(sizeof *nk);
    uint8_t *kk = sodium_malloc(SX_CRYPTO_KEYBYTES);
    pthread_rwlock_wrlock(&c->lock);
    if (!nk || !kk)
        r = -ENOMEM;
    else if (len < SX_KEYRING2_HDR_LEN || blob[0] != SX_KEYRING_BLOB_V2)
        r = SX_CRYPTO_EFORMAT;
    else if (sodium_memcmp(blob + 1, c->kkid, SX_KKID_BYTES) == 0)
        memcpy(kk, c->kk, SX_CRYPTO_KEYBYTES);
    else
        r = follow_rekey(c, blob, kk);
    if (r == 0)
        r = sx_crypto_keyring_unseal(nk, NULL, kk, blob, len);
    if (r == 0) {
        memcpy(c->kr, nk, sizeof *nk);
        memcpy(c->kk, kk, SX_CRYPTO_KEYBYTES);
        memcpy(c->kkid, blob + 1, SX_KKID_BYTES);
        c->keyring_rev = rev;
    }
    pthread_rwlock_unlock(&c->lock);
    sodium_free(nk);
    sodium_free(kk);
    sx_storage_free(blob);
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

int sx_crypto_handle_new(sx_crypto **ret, sx_storage *st, const sx_crypto_options *opt)
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
    c->kk = sodium_malloc(SX_CRYPTO_KEYBYTES);
    c->sys = sodium_malloc(SX_SYS_BYTES);
    int r = sx_dk_cache_new(&c->cache, opt->cache_entries ? opt->cache_entries : SX_CRYPTO_CACHE_DEFAULT);
    if (r == 0)
        r = sx_scratch_new(&c->scratch);
    if (!c->kr || !c->seal_key || !c->kk || !c->sys || r < 0) {
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
    sodium_free(c->kk);
    sodium_free(c->sys);
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
/* Initialise a new hierarchy: the keyring, its keyring key, the recovery slot (0) and a slot for
 * opt->seal (1), all absent-only in one batch. 1 when another process initialised first (caller
 * re-reads). */
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
    randombytes_buf(raw, 32);
    sx_crypto_recovery_keypair(c->kr->recovery_pk, raw + 32, raw);
    randombytes_buf(c->kr->install_id, sizeof c->kr->install_id);
    randombytes_buf(c->sys, 64);
    sx_crypto_sys_derive(c->sys);
    c->kr->n = 1;
    c->kr->flags = SX_KEYRING_F_RECORD_MACS; /* a new store has no record written without a MAC */
    c->kr->active = 1;
    c->kr->masters[0].version = 1;
    randombytes_buf(c->kr->masters[0].key, SX_CRYPTO_KEYBYTES);
    sx_storage_op no_seal = {.kind = SX_STORAGE_OP_CHECK,
                             .key = SX_KEY_S_SEAL,
                             .klen = strlen(SX_KEY_S_SEAL),
                             .cond = SX_STORAGE_COND_ABSENT};
    r = sx_crypto_first_slots_commit(c, &sp, "", 0, &no_seal, 1);
    sx_seal_params_release(&sp);
    if (r < 0)
        sx_fail(err, errlen, r, "cannot store the new keyring: %s", sx_storage_strerror(r));
    if (r != 0)
        goto out;
    if (ret_recovery_key) {
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
    return r;
}

/* What the store holds: nothing, the one-seal format of older versions, or keyslots. */
typedef enum store_kind { STORE_EMPTY, STORE_LEGACY, STORE_SLOTS } store_kind;

static int store_kind_get(sx_storage *st, store_kind *ret)
{
    int r = sx_storage_get(st, SX_KEY_S_SEAL, strlen(SX_KEY_S_SEAL), NULL, NULL, NULL);
    if (r == 0) {
        *ret = STORE_LEGACY;
        return 0;
    }
    if (r != -ENOENT)
        return r;
    r = sx_storage_get(st, SX_KEY_S_KEYRING, strlen(SX_KEY_S_KEYRING), NULL, NULL, NULL);
    if (r < 0 && r != -ENOENT)
        return r;
    *ret = r == 0 ? STORE_SLOTS : STORE_EMPTY;
    return 0;
}

int sx_crypto_open(sx_crypto **ret, char **ret_recovery_key, sx_storage *st, const sx_crypto_options *opt, char *err,
                   size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!ret || !st || !opt)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    sx_crypto *c;
    int r = sx_crypto_handle_new(&c, st, opt);
    if (r < 0)
        return sx_fail(err, errlen, r, "cannot allocate secure memory for keys");
    char *recovery = NULL;
    for (int attempt = 0; attempt < 3; attempt++) {
        store_kind kind;
        r = store_kind_get(st, &kind);
        if (r < 0) {
            sx_fail(err, errlen, r, "cannot read the keyring records: %s", sx_storage_strerror(r));
            break;
        }
        if (kind == STORE_LEGACY)
            r = sx_crypto_legacy_open(c, opt, NULL, err, errlen);
        else if (kind == STORE_SLOTS)
            r = sx_crypto_slots_unlock(c, opt, err, errlen);
        else
            r = hierarchy_init(c, &recovery, opt, err, errlen);
        if (r != 1)
            break; /* 1: lost an initialisation or upgrade race; read the winner's records */
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
/* --- recovery -------------------------------------------------------------------------------- */

int sx_crypto_recover(sx_crypto **ret, sx_storage *st, const char *recovery_key, const sx_crypto_options *opt,
                      char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!ret || !st || !recovery_key || !opt)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    sx_crypto *c;
    int r = sx_crypto_handle_new(&c, st, opt);
    if (r < 0)
        return sx_fail(err, errlen, r, "cannot allocate secure memory for keys");
    uint8_t *kp = sodium_malloc(32 + 32 + 32);
    if (!kp) {
        sx_crypto_free(c);
        return sx_fail(err, errlen, -ENOMEM, "cannot allocate secure memory for keys");
    }
    r = sx_crypto_recovery_decode(kp, recovery_key);
    if (r < 0)
        sx_fail(err, errlen, r, "the recovery key is mistyped (its checksum does not match)");
    else
        sx_crypto_recovery_keypair(kp + 32, kp + 64, kp);
    for (int attempt = 0; r == 0 && attempt < 3; attempt++) {
        store_kind kind;
        r = store_kind_get(st, &kind);
        if (r < 0)
            sx_fail(err, errlen, r, "cannot read the keyring records: %s", sx_storage_strerror(r));
        else if (kind == STORE_LEGACY)
            r = sx_crypto_legacy_open(c, opt, kp, err, errlen);
        else if (kind == STORE_SLOTS)
            r = sx_crypto_slots_recover(c, kp, opt, err, errlen);
        else
            r = sx_fail(err, errlen, SX_CRYPTO_EBADRECOVERY, "the store holds no keyring");
        if (r != 1)
            break;
        r = 0; /* lost an upgrade race: read again */
    }
    sodium_free(kp);
    if (r != 0) {
        sx_crypto_free(c);
        return r > 0 ? -EAGAIN : r;
    }
    *ret = c;
    return 0;
}
