/*
 * seal_passphrase.c - the passphrase seal: seal key = Argon2id(passphrase, salt, limits).
 *
 * The salt and the limits are chosen when the seal is created and stored in s/seal, so that the
 * configured limits may change later without locking the store out (new limits take effect at the
 * next seal migration). Because s/seal is not authenticated until the keyring is opened with the
 * derived key, the stored limits are bounded before use: an altered record must not be able to
 * make start-up allocate gigabytes or spin for hours. The bound is the larger of the configured
 * limits and libsodium's SENSITIVE preset.
 *
 * A new seal is refused for a passphrase under SX_CRYPTO_PASSPHRASE_MIN_CHARS characters or
 * limits below libsodium's INTERACTIVE preset: below those an offline guess costs too little for a
 * key that guards every secret. Opening an existing seal keeps the older, wider bounds, so a store
 * sealed before these rules still starts and can be migrated to a stronger seal.
 *
 * Argon2id at MODERATE limits takes about a second and 256 MiB: callers run this off the event
 * loop (sx_crypto_open is a start-up call).
 */
#include "crypto/crypto_internal.h"

#include <string.h>

static void resolve_limits(const sx_crypto_seal_options *o, unsigned long long *ops, size_t *mem)
{
    *ops = o->pwhash_opslimit ? o->pwhash_opslimit : crypto_pwhash_OPSLIMIT_MODERATE;
    *mem = o->pwhash_memlimit ? o->pwhash_memlimit : crypto_pwhash_MEMLIMIT_MODERATE;
}

static int derive(uint8_t key[32], const sx_crypto_seal_options *o, const uint8_t salt[SX_SALTBYTES],
                  unsigned long long ops, size_t mem, char *err, size_t errlen)
{
    if (!o->passphrase || o->passphrase_len == 0)
        return sx_fail(err, errlen, -EINVAL, "the seal passphrase is empty (is its environment variable set?)");
    if (crypto_pwhash(key, SX_CRYPTO_KEYBYTES, o->passphrase, o->passphrase_len, salt, ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return sx_fail(err, errlen, -ENOMEM, "Argon2id failed (out of memory for memlimit %zu bytes?)", mem);
    return 0;
}

size_t sx_crypto_passphrase_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

int sx_seal_passphrase_create(uint8_t key[32], sx_seal_params *sp, const sx_crypto_seal_options *o, char *err,
                              size_t errlen)
{
    unsigned long long ops;
    size_t mem;
    resolve_limits(o, &ops, &mem);
    if (ops < crypto_pwhash_OPSLIMIT_INTERACTIVE || ops > crypto_pwhash_OPSLIMIT_MAX ||
        mem < crypto_pwhash_MEMLIMIT_INTERACTIVE || mem > crypto_pwhash_MEMLIMIT_MAX)
        return sx_fail(err, errlen, -EINVAL,
                       "seal pwhash limits (opslimit %llu, memlimit %zu) are below libsodium's INTERACTIVE "
                       "preset (opslimit %llu, memlimit %zu) or out of range",
                       ops, mem, (unsigned long long)crypto_pwhash_OPSLIMIT_INTERACTIVE,
                       (size_t)crypto_pwhash_MEMLIMIT_INTERACTIVE);
    if (o->passphrase && o->passphrase_len &&
        sx_crypto_passphrase_chars(o->passphrase, o->passphrase_len) < SX_CRYPTO_PASSPHRASE_MIN_CHARS)
        return sx_fail(err, errlen, -EINVAL, "the seal passphrase is shorter than %u characters",
                       SX_CRYPTO_PASSPHRASE_MIN_CHARS);
    randombytes_buf(sp->salt, sizeof sp->salt);
    sp->opslimit = ops;
    sp->memlimit = mem;
    return derive(key, o, sp->salt, ops, mem, err, errlen);
}

int sx_seal_passphrase_derive(uint8_t key[32], const sx_seal_params *sp, const sx_crypto_seal_options *o, char *err,
                              size_t errlen)
{
    unsigned long long ops_cap;
    size_t mem_cap;
    resolve_limits(o, &ops_cap, &mem_cap);
    if (ops_cap < crypto_pwhash_OPSLIMIT_SENSITIVE)
        ops_cap = crypto_pwhash_OPSLIMIT_SENSITIVE;
    if (mem_cap < crypto_pwhash_MEMLIMIT_SENSITIVE)
        mem_cap = crypto_pwhash_MEMLIMIT_SENSITIVE;
    if (sp->opslimit < crypto_pwhash_OPSLIMIT_MIN || sp->opslimit > ops_cap ||
        sp->memlimit < crypto_pwhash_MEMLIMIT_MIN || sp->memlimit > mem_cap)
        return sx_fail(err, errlen, SX_CRYPTO_EFORMAT,
                       "the stored passphrase seal parameters are out of range (opslimit %llu, memlimit %llu)",
                       (unsigned long long)sp->opslimit, (unsigned long long)sp->memlimit);
    return derive(key, o, sp->salt, (unsigned long long)sp->opslimit, (size_t)sp->memlimit, err, errlen);
}
