/*
 * seal.c - the s/seal record and the dispatch to the three seals.
 *
 * A seal turns configuration (and, for a passphrase or a TPM, stored parameters) into the 32-byte
 * seal key that encrypts the keyring. The s/seal record holds what a seal needs besides the
 * secret itself: its type, a random seal id (new every time a seal is created, so a keyring
 * sealed for another installation or an earlier seal does not open even under the same key
 * file), the Argon2id salt and limits, or the TPM's sealed public/private blobs. The record is
 * not encrypted; the keyring's associated data covers a hash of all of it, so any change to it is
 * caught when the keyring is opened.
 */
#include "crypto/crypto_internal.h"

#include <stdlib.h>
#include <string.h>

const char *sx_crypto_seal_type_name(sx_crypto_seal_type t)
{
    switch (t) {
    case SX_CRYPTO_SEAL_FILE:
        return "file";
    case SX_CRYPTO_SEAL_PASSPHRASE:
        return "passphrase";
    case SX_CRYPTO_SEAL_TPM:
        return "tpm";
    case SX_CRYPTO_SEAL_RECOVERY:
        return "recovery";
    }
    return "unknown";
}

int sx_seal_tail_size(size_t *ret, const sx_seal_params *sp, bool slot)
{
    switch (sp->type) {
    case SX_CRYPTO_SEAL_FILE:
        *ret = 0;
        return 0;
    case SX_CRYPTO_SEAL_PASSPHRASE:
        *ret = 8 + 8 + SX_SALTBYTES;
        return 0;
    case SX_CRYPTO_SEAL_TPM:
        if (sp->tpm_publen > UINT16_MAX || sp->tpm_privlen > UINT16_MAX)
            return -EINVAL;
        *ret = 4 + (slot ? 1 : 0) + 2 + sp->tpm_publen + 2 + sp->tpm_privlen;
        return 0;
    case SX_CRYPTO_SEAL_RECOVERY:
        *ret = 32;
        return slot ? 0 : -EINVAL;
    }
    return -EINVAL;
}

uint8_t *sx_seal_tail_put(uint8_t *p, const sx_seal_params *sp, bool slot)
{
    if (sp->type == SX_CRYPTO_SEAL_PASSPHRASE) {
        sx_be64_put(p, sp->opslimit);
        sx_be64_put(p + 8, sp->memlimit);
        memcpy(p + 16, sp->salt, SX_SALTBYTES);
        p += 16 + SX_SALTBYTES;
    } else if (sp->type == SX_CRYPTO_SEAL_TPM) {
        sx_be32_put(p, sp->pcrs);
        p += 4;
        if (slot)
            *p++ = sp->pin ? 1 : 0;
        *p++ = (uint8_t)(sp->tpm_publen >> 8);
        *p++ = (uint8_t)sp->tpm_publen;
        memcpy(p, sp->tpm_pub, sp->tpm_publen);
        p += sp->tpm_publen;
        *p++ = (uint8_t)(sp->tpm_privlen >> 8);
        *p++ = (uint8_t)sp->tpm_privlen;
        memcpy(p, sp->tpm_priv, sp->tpm_privlen);
        p += sp->tpm_privlen;
    } else if (sp->type == SX_CRYPTO_SEAL_RECOVERY) {
        memcpy(p, sp->eph_pk, 32);
        p += 32;
    }
    return p;
}

int sx_seal_tail_get(sx_seal_params *sp, const uint8_t *p, size_t len, bool slot)
{
    const uint8_t *end = p + len;
    switch (sp->type) {
    case SX_CRYPTO_SEAL_FILE:
        break;
    case SX_CRYPTO_SEAL_PASSPHRASE:
        if (end - p != 16 + SX_SALTBYTES)
            return SX_CRYPTO_EFORMAT;
        sp->opslimit = sx_be64_get(p);
        sp->memlimit = sx_be64_get(p + 8);
        memcpy(sp->salt, p + 16, SX_SALTBYTES);
        p += 16 + SX_SALTBYTES;
        break;
    case SX_CRYPTO_SEAL_TPM:
        if (end - p < 4 + 2 + (slot ? 1 : 0))
            return SX_CRYPTO_EFORMAT;
        sp->pcrs = sx_be32_get(p);
        p += 4;
        if (slot) {
            if (*p > 1)
                return SX_CRYPTO_EFORMAT;
            sp->pin = *p++ == 1;
        }
        sp->tpm_publen = (size_t)p[0] << 8 | p[1];
        p += 2;
        if ((size_t)(end - p) < sp->tpm_publen + 2)
            return SX_CRYPTO_EFORMAT;
        sp->tpm_pub = p;
        p += sp->tpm_publen;
        sp->tpm_privlen = (size_t)p[0] << 8 | p[1];
        p += 2;
        if ((size_t)(end - p) < sp->tpm_privlen)
            return SX_CRYPTO_EFORMAT;
        sp->tpm_priv = p;
        p += sp->tpm_privlen;
        break;
    case SX_CRYPTO_SEAL_RECOVERY:
        if (!slot || end - p != 32)
            return SX_CRYPTO_EFORMAT;
        memcpy(sp->eph_pk, p, 32);
        p += 32;
        break;
    default:
        return SX_CRYPTO_EFORMAT;
    }
    return p == end ? 0 : SX_CRYPTO_EFORMAT;
}

int sx_seal_params_encode(uint8_t **ret, size_t *ret_len, const sx_seal_params *sp)
{
    size_t tail;
    if (sx_seal_tail_size(&tail, sp, false) < 0)
        return -EINVAL;
    size_t len = 2 + SX_SEAL_IDBYTES + tail;
    uint8_t *b = malloc(len), *p = b;
    if (!b)
        return -ENOMEM;
    *p++ = SX_FMT_V1;
    *p++ = (uint8_t)sp->type;
    memcpy(p, sp->seal_id, SX_SEAL_IDBYTES);
    p = sx_seal_tail_put(p + SX_SEAL_IDBYTES, sp, false);
    *ret = b;
    *ret_len = (size_t)(p - b);
    return 0;
}

int sx_seal_params_decode(sx_seal_params *sp, const uint8_t *rec, size_t len)
{
    memset(sp, 0, sizeof *sp);
    if (len < 2 + SX_SEAL_IDBYTES || rec[0] != SX_FMT_V1 || rec[1] == SX_CRYPTO_SEAL_RECOVERY)
        return SX_CRYPTO_EFORMAT;
    sp->type = (sx_crypto_seal_type)rec[1];
    memcpy(sp->seal_id, rec + 2, SX_SEAL_IDBYTES);
    return sx_seal_tail_get(sp, rec + 2 + SX_SEAL_IDBYTES, len - 2 - SX_SEAL_IDBYTES, false);
}

void sx_seal_params_release(sx_seal_params *sp)
{
    if (sp->type == SX_CRYPTO_SEAL_TPM) {
        free((void *)sp->tpm_pub);
        free((void *)sp->tpm_priv);
    }
    sp->tpm_pub = sp->tpm_priv = NULL;
}

int sx_seal_create(uint8_t key[32], sx_seal_params *sp, const sx_crypto_seal_options *o, char *err, size_t errlen)
{
    memset(sp, 0, sizeof *sp);
    sp->type = o->type;
    randombytes_buf(sp->seal_id, sizeof sp->seal_id);
    switch (o->type) {
    case SX_CRYPTO_SEAL_FILE:
        return sx_seal_file_create(key, o, err, errlen);
    case SX_CRYPTO_SEAL_PASSPHRASE:
        return sx_seal_passphrase_create(key, sp, o, err, errlen);
    case SX_CRYPTO_SEAL_TPM:
        return sx_seal_tpm_create(key, sp, o, err, errlen);
    case SX_CRYPTO_SEAL_RECOVERY:
        break;
    }
    return sx_fail(err, errlen, -EINVAL, "unknown seal type %d", (int)o->type);
}

int sx_seal_unlock(uint8_t key[32], const sx_seal_params *sp, const sx_crypto_seal_options *o, char *err, size_t errlen)
{
    if (sp->type != o->type)
        return sx_fail(err, errlen, SX_CRYPTO_ESEALTYPE,
                       "the store is sealed with the '%s' seal but the configuration asks for '%s'; use seal "
                       "migration to change it",
                       sx_crypto_seal_type_name(sp->type), sx_crypto_seal_type_name(o->type));
    switch (o->type) {
    case SX_CRYPTO_SEAL_FILE:
        return sx_seal_file_load(key, o, err, errlen);
    case SX_CRYPTO_SEAL_PASSPHRASE:
        return sx_seal_passphrase_derive(key, sp, o, err, errlen);
    case SX_CRYPTO_SEAL_TPM:
        return sx_seal_tpm_unseal(key, sp, o, err, errlen);
    case SX_CRYPTO_SEAL_RECOVERY:
        break;
    }
    return sx_fail(err, errlen, -EINVAL, "unknown seal type %d", (int)o->type);
}

#ifndef SX_HAVE_TPM
int sx_seal_tpm_create(uint8_t key[32], sx_seal_params *sp, const sx_crypto_seal_options *o, char *err, size_t errlen)
{
    return sx_fail(err, errlen, -ENOTSUP, "this build has no TPM support (built without WITH_TPM)");
}

int sx_seal_tpm_unseal(uint8_t key[32], const sx_seal_params *sp, const sx_crypto_seal_options *o, char *err,
                       size_t errlen)
{
    return sx_fail(err, errlen, -ENOTSUP, "this build has no TPM support (built without WITH_TPM)");
}
#endif
