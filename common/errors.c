/*
 * errors.c - the sentence of every project error code (errors.h).
 */
#include "common/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct code_text {
    int code;
    const char *text;
} code_text;

static const code_text texts[] = {
    {0, "success"},
    {SX_STORAGE_ECONDITION, "a precondition of the batch failed; nothing was written"},
    {SX_CRYPTO_EFORGED, "ciphertext failed authentication: it was altered or copied from another record"},
    {SX_CRYPTO_EBADSEAL, "the seal key does not open the keyring: wrong key file or passphrase, or the sealed keyring "
                         "was altered or belongs to another installation"},
    {SX_CRYPTO_EFORMAT, "a stored key record is malformed or has an unknown format version"},
    {SX_CRYPTO_EKEYPERM, "the seal key file is accessible by group or others (it must be mode 0600)"},
    {SX_CRYPTO_ESEALTYPE, "the store is sealed with a different seal type than configured (use seal migration)"},
    {SX_CRYPTO_EBADRECOVERY, "the recovery key is mistyped or does not belong to this store"},
    {SX_CRYPTO_ENOTPM, "no TPM is reachable through the configured TCTI"},
    {SX_CRYPTO_ETPMWRONG, "the sealed key belongs to another TPM (or the TPM's owner hierarchy was cleared)"},
    {SX_CRYPTO_EPCR, "the TPM's PCR values differ from those the key was sealed to (boot state changed)"},
    {SX_CRYPTO_ELOCKOUT, "the TPM is in dictionary-attack lockout"},
    {SX_CRYPTO_ETPM, "TPM operation failed"},
    {SX_CRYPTO_ETOOMANY, "the keyring holds the maximum number of master-key versions; retire old versions first"},
    {SX_CRYPTO_EPIN, "the TPM refused the PIN (wrong PIN); secretsd does not retry"},
    {SX_CRYPTO_ESLOTREFUSED,
     "refused: the change would remove the last slot, this node's own slot or the recovery slot"},
    {SX_JSON_EINVALID, "the body is not valid JSON"},
    {SX_JSON_ERULE, "a field of the body breaks a rule"},
    {SX_AUTH_EMALFORMED, "missing or malformed bearer token"},
    {SX_AUTH_EBADTOKEN, "unknown token or wrong secret"},
    {SX_AUTH_EEXPIRED, "token expired"},
    {SX_AUTH_EREVOKED, "token revoked"},
    {SX_AUTH_EFORGED, "stored token record fails its MAC (edited in storage)"},
    {SX_AUTH_EFORBIDDEN, "token lacks the permission or the scope"},
    {SX_AUTH_EUNAVAILABLE, "token storage unavailable"},
    {SX_AUTH_ERATELIMITED, "too many failed authentications from this address"},
    {SX_SECRETS_EPRECONDITION, "the secret has changed since the revision the caller named"},
    {SX_SECRETS_ECONTENTION, "concurrent writers kept changing the secret; retry"},
    {SX_SECRETS_EENCRYPT, "the value could not be encrypted"},
    {SX_SECRETS_ENOVALUE, "no secret of that name with a value"},
    {SX_SECRETS_EUNREADABLE, "a stored value could not be decrypted"},
    {SX_SECRETS_ENOVERSION, "no such version of the secret's value, or it was destroyed"},
    {SX_SECRETS_ECURRENT, "the version is the secret's current value"},
    {SX_SECRETS_ENOTDELETED, "no deleted secret of that name is kept"},
    {SX_SECRETS_ELIVE, "a secret of that name exists"},
};

const char *sx_strerror(int code)
{
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (texts[i].code == code)
            return texts[i].text;
    if (code < 0 && code > -1000)
        return strerror(-code);
    return "unknown error";
}

int sx_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
