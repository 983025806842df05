/*
 * errors.h - every project-specific error code, in one reserved range per module, and the one
 * sentence each of them stands for.
 *
 * Functions return 0 on success and a negative value on failure: a negative errno (-ENOENT,
 * -EEXIST, -EINVAL, -EIO, ...) where one fits, otherwise one of the codes below. Negative errno
 * values stay above -1000, so the ranges never collide with them:
 *
 *   -1000 .. -1099  storage   (storage/storage.h)
 *   -1100 .. -1199  crypto    (crypto/crypto.h)
 *   -1200 .. -1299  JSON bodies (server)
 *   -1300 .. -1399  auth      (auth/auth.h)
 *   -1400 .. -1499  secrets   (secrets/secrets.h)
 *   -1500 .. -1599  ops       (ops/ops.h)
 *
 * A module's header re-exports its own range's codes by including this one.
 */
#ifndef SX_COMMON_ERRORS_H
#define SX_COMMON_ERRORS_H

#include <stddef.h>

/* ---- storage ---------------------------------------------------------------------------------- */
#define SX_STORAGE_ECONDITION (-1000) /* a batch precondition failed; see ret_failed */

/* ---- crypto ----------------------------------------------------------------------------------- */
#define SX_CRYPTO_EFORGED (-1100) /* a value or data-key blob failed authentication: altered or moved */
#define SX_CRYPTO_EBADSEAL                                                                                             \
    (-1101)                            /* the seal key does not open the keyring (wrong key file or passphrase,        \
                                          or the sealed keyring / seal record was altered or copied) */
#define SX_CRYPTO_EFORMAT      (-1102) /* a stored blob is malformed or has an unknown format version */
#define SX_CRYPTO_EKEYPERM     (-1103) /* the seal key file is accessible by group or others, or owned by another user */
#define SX_CRYPTO_ESEALTYPE    (-1104) /* the store is sealed with another seal type than configured */
#define SX_CRYPTO_EBADRECOVERY (-1105) /* the recovery key is mistyped or does not open the recovery record */
#define SX_CRYPTO_ENOTPM       (-1106) /* no TPM reachable through the configured TCTI */
#define SX_CRYPTO_ETPMWRONG    (-1107) /* the sealed object belongs to another TPM (or another owner seed) */
#define SX_CRYPTO_EPCR         (-1108) /* the TPM's PCR values differ from those the key was sealed to */
#define SX_CRYPTO_ELOCKOUT     (-1109) /* the TPM is in dictionary-attack lockout */
#define SX_CRYPTO_ETPM         (-1110) /* any other TPM failure */
#define SX_CRYPTO_ETOOMANY     (-1111) /* the keyring already holds SX_CRYPTO_MAX_MASTERS versions */
#define SX_CRYPTO_EPIN         (-1112) /* the TPM refused the PIN of a PIN-bound slot */
#define SX_CRYPTO_ESLOTREFUSED                                                                                         \
    (-1113) /* a slot change that would lock the operator out (last, own or recovery slot)                             \
             */

/* ---- JSON bodies ------------------------------------------------------------------------------ */
#define SX_JSON_EINVALID (-1200) /* not parsable JSON (syntax, invalid UTF-8): 400 invalid_json */
#define SX_JSON_ERULE    (-1201) /* parsable, but breaks a rule (field, type, duplicate): 400 invalid_request */

/* ---- auth ------------------------------------------------------------------------------------- */
/* "Unauthorized" family (-1300 .. -1309): 401 for all of them (sx_auth_is_unauthorized()). */
#define SX_AUTH_EMALFORMED   (-1300) /* no Authorization header, or not "Bearer <well-formed token>" */
#define SX_AUTH_EBADTOKEN    (-1301) /* unknown token id, or the secret does not match */
#define SX_AUTH_EEXPIRED     (-1302) /* the token's expiry has passed */
#define SX_AUTH_EREVOKED     (-1303) /* the token was revoked */
#define SX_AUTH_EFORGED      (-1304) /* the token's stored record fails its MAC: edited in storage */
#define SX_AUTH_EUNAUTH_LAST (-1309)
#define SX_AUTH_EFORBIDDEN   (-1310) /* a valid principal lacks the permission or the scope */
#define SX_AUTH_EUNAVAILABLE (-1311) /* storage failed (or held an undecodable record) while verifying */
#define SX_AUTH_ERATELIMITED (-1312) /* a throttled address was refused */

/* ---- secrets -------------------------------------------------------------------------------- */
#define SX_SECRETS_EPRECONDITION (-1400) /* the secret's revision is not one the caller's precondition accepts */
#define SX_SECRETS_ECONTENTION   (-1401) /* concurrent writers kept moving the secret's revision; retry */
#define SX_SECRETS_EENCRYPT      (-1402) /* the value could not be encrypted (the env's data key is unreadable) */
#define SX_SECRETS_ENOVALUE      (-1403) /* no secret of that name, or it has no value */
#define SX_SECRETS_EUNREADABLE   (-1404) /* a stored value could not be decrypted (altered, moved, key destroyed) */
#define SX_SECRETS_ENOVERSION    (-1405) /* no such version of the secret's value, or it was destroyed */
#define SX_SECRETS_ECURRENT      (-1406) /* the version is the secret's current value (cannot be destroyed) */
#define SX_SECRETS_ENOTDELETED   (-1407) /* no deleted secret of that name is kept (never deleted, or purged) */
#define SX_SECRETS_ELIVE         (-1408) /* a live secret of that name exists (a restore would replace it) */

/*
 * A sentence for code: any code above, a negative errno, or 0. Static string; it never holds a
 * name, a value or a token. Modules whose errno values mean something narrower (-EBUSY from a
 * store that another process holds) say so in their own *_strerror() and fall back to this one.
 */
const char *sx_strerror(int code);

/* Write a one-line reason (printf format) into err, when err is not NULL and errlen > 0, and return
 * code: `return sx_fail(err, errlen, -EINVAL, "bad \"%s\"", name);`. The reason must never hold a
 * value, a token or key material. */
int sx_fail(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif /* SX_COMMON_ERRORS_H */
