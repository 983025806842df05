/*
 * upgrade.c - the one-seal store format of earlier versions, read once and rewritten as keyslots.
 *
 * Before keyslots a store held s/seal (the seal's parameters), s/keyring (the keyring sealed
 * directly under the seal key, its AD binding a hash of s/seal) and s/keyring.recovery (the same
 * plaintext encrypted to the recovery public key). The first node that opens such a store with
 * its seal (or the recovery key) draws a keyring key and writes, in one batch conditional on the
 * three old records' revisions: s/keyring in format 2 under the keyring key, the recovery slot 0,
 * slot 1 wrapping the keyring key under the old seal key with the old seal's parameters (so the
 * same key file, passphrase or TPM object keeps opening the store), and deletes s/seal and
 * s/keyring.recovery. A node losing that race reads the store again and opens it by its slots.
 */
#include "crypto/crypto_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct legacy {
    uint8_t *seal, *keyring, *recovery;
    size_t seal_len, keyring_len, recovery_len;
    uint64_t seal_rev, keyring_rev, recovery_rev;
} legacy;

static void legacy_clear(legacy *l)
{
    sx_storage_free(l->seal);
    sx_storage_free(l->keyring);
    sx_storage_free(l->recovery);
}

static int get_opt(sx_storage *st, const char *key, uint8_t **v, size_t *len, uint64_t *rev)
{
    int r = sx_storage_get(st, key, strlen(key), (void **)v, len, rev);
    return r == -ENOENT ? 0 : r;
}

static int legacy_read(sx_storage *st, legacy *l)
{
    memset(l, 0, sizeof *l);
    int r = get_opt(st, SX_KEY_S_SEAL, &l->seal, &l->seal_len, &l->seal_rev);
    if (r == 0)
        r = get_opt(st, SX_KEY_S_KEYRING, &l->keyring, &l->keyring_len, &l->keyring_rev);
    if (r == 0)
        r = get_opt(st, SX_KEY_S_RECOVERY, &l->recovery, &l->recovery_len, &l->recovery_rev);
    if (r < 0)
        legacy_clear(l);
    return r;
}

/* Open with the configured seal: its key into c->seal_key, the keyring into c->kr / c->sys. */
static int open_with_seal(sx_crypto *c, const legacy *l, sx_seal_params *sp, const sx_crypto_options *opt, uint8_t *pt,
                          char *err, size_t errlen)
{
    int r = sx_seal_params_decode(sp, l->seal, l->seal_len);
    if (r < 0)
        return sx_fail(err, errlen, r, "the stored seal record is malformed");
    r = sx_seal_unlock(c->seal_key, sp, &opt->seal, err, errlen);
    if (r < 0)
        return r;
    size_t len;
    r = sx_crypto_keyring_open_raw(pt, &len, c->seal_key, l->seal, l->seal_len, l->keyring, l->keyring_len);
    if (r == 0)
        r = sx_crypto_keyring_decode(c->kr, c->sys, pt, len);
    if (r == SX_CRYPTO_EBADSEAL)
        return sx_fail(err, errlen, r,
                       "the %s seal does not open the keyring: wrong %s, or the keyring was altered or comes "
                       "from another installation",
                       sx_crypto_seal_type_name(sp->type),
                       sp->type == SX_CRYPTO_SEAL_FILE         ? "key file"
                       : sp->type == SX_CRYPTO_SEAL_PASSPHRASE ? "passphrase"
                                                               : "TPM object");
    if (r < 0)
        return sx_fail(err, errlen, r, "cannot open the keyring: %s", sx_crypto_strerror(r));
    return 0;
}

/* Open with the recovery key kp, then make a new seal for opt->seal (blobs malloc'd in sp). */
static int open_with_recovery(sx_crypto *c, const legacy *l, sx_seal_params *sp, const sx_crypto_options *opt,
                              const uint8_t *kp, uint8_t *pt, char *err, size_t errlen)
{
    size_t len;
    int r = l->recovery ? sx_crypto_recovery_open_raw(pt, &len, kp + 32, kp + 64, l->recovery, l->recovery_len)
                        : SX_CRYPTO_EBADRECOVERY;
    if (r == 0)
        r = sx_crypto_keyring_decode(c->kr, c->sys, pt, len);
    if (r == 0 && sodium_memcmp(c->kr->recovery_pk, kp + 32, 32) != 0)
        r = SX_CRYPTO_EBADRECOVERY;
    if (r < 0)
        return sx_fail(err, errlen, r == SX_CRYPTO_EFORMAT ? r : SX_CRYPTO_EBADRECOVERY,
                       "the recovery key does not open this store's recovery record");
    return sx_seal_create(c->seal_key, sp, &opt->seal, err, errlen);
}

int sx_crypto_legacy_open(sx_crypto *c, const sx_crypto_options *opt, const uint8_t *kp, char *err, size_t errlen)
{
    legacy l;
    int r = legacy_read(c->st, &l);
    if (r < 0)
        return sx_fail(err, errlen, r, "cannot read the keyring records: %s", sx_storage_strerror(r));
    if (!l.seal) {
        legacy_clear(&l);
        return 1; /* upgraded meanwhile */
    }
    if (!l.keyring) {
        legacy_clear(&l);
        return sx_fail(err, errlen, SX_CRYPTO_EFORMAT, "the store has a seal record but no keyring");
    }
    sx_seal_params sp;
    uint8_t *pt = sodium_malloc(SX_KEYRING_PLAIN_MAX);
    bool made = false;
    if (!pt) {
        legacy_clear(&l);
        return sx_fail(err, errlen, -ENOMEM, "cannot allocate secure memory for keys");
    }
    r = kp ? open_with_recovery(c, &l, &sp, opt, kp, pt, err, errlen)
           : open_with_seal(c, &l, &sp, opt, pt, err, errlen);
    made = kp && r == 0;
    if (r < 0)
        goto out;

    sx_storage_op drop[2] = {
        {.kind = SX_STORAGE_OP_DELETE,
         .key = SX_KEY_S_SEAL,
         .klen = strlen(SX_KEY_S_SEAL),
         .cond = SX_STORAGE_COND_REV,
         .rev = l.seal_rev},
        {.kind = SX_STORAGE_OP_DELETE,
         .key = SX_KEY_S_RECOVERY,
         .klen = strlen(SX_KEY_S_RECOVERY),
         .cond = l.recovery_rev ? SX_STORAGE_COND_REV : SX_STORAGE_COND_NONE,
         .rev = l.recovery_rev},
    };
    r = sx_crypto_first_slots_commit(c, &sp, kp ? "recovered" : "upgraded", l.keyring_rev, drop, 2);
    if (r < 0)
        sx_fail(err, errlen, r, "cannot store the upgraded keyring: %s", sx_crypto_strerror(r));
out:
    if (made)
        sx_seal_params_release(&sp);
    if (r != 0) {
        sodium_memzero(c->kr, sizeof *c->kr);
        sodium_memzero(c->sys, SX_SYS_BYTES);
    }
    sodium_free(pt);
    legacy_clear(&l);
    return r;
}
