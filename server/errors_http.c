/*
 * errors_http.c - the one table from codes to HTTP answers: a negative errno, a storage, crypto,
 * auth or secrets code, in the context of what the request was doing, becomes a status, a machine
 * code and a message. Every handler answers a failed call through it (sx_send_failure), so two
 * handlers never answer the same failure differently unless a row says so.
 *
 * Rows are read in order and the first that matches wins: rows for one code come first, the
 * defaults of each context (SX_HTTP_ERROR_ANY_RC) after them, and the last row answers everything
 * else as a store that is not answering. A row without a message sends the caller's detail (a
 * reason the operation wrote, such as a path that exists) or the code's own sentence.
 */
#include "server/server_internal.h"

#include <errno.h>

#include "secrets/secrets.h"

#define ANY_RC SX_HTTP_ERROR_ANY_RC
/* The operator routes whose failures are storage or key-record errors, told in the code's words. */
#define OPS_STORE (SX_ERR_OPS | SX_ERR_MASTER_ROTATE | SX_ERR_ENV_ROTATE | SX_ERR_ENV_KEYS)
#define FILES     (SX_ERR_SEAL_MIGRATE | SX_ERR_BACKUP)

static const sx_http_error table[] = {
    /* request bodies */
    {SX_JSON_EINVALID, SX_ERR_ANY, 400, "invalid_json", NULL},
    {SX_JSON_ERULE, SX_ERR_ANY, 400, "invalid_request", NULL},
    /* the secrets API */
    {-ENOENT, SX_ERR_SECRET, 404, "not_found", "no secret of that name in this environment"},
    {SX_SECRETS_ENOVALUE, SX_ERR_SECRET, 404, "not_found", "no secret of that name with a value in this environment"},
    {SX_SECRETS_ENOVERSION, SX_ERR_SECRET, 404, "not_found",
     "no such version of this secret's value (never written, destroyed, or beyond max_versions)"},
    {SX_SECRETS_ECURRENT, SX_ERR_SECRET, 409, "conflict",
     "this version is the secret's current value; set a new value or roll back before destroying it"},
    {-EEXIST, SX_ERR_SECRET, 409, "already_exists", "a secret of that name already exists in this environment"},
    {SX_SECRETS_ENOTDELETED, SX_ERR_SECRET, 404, "not_found",
     "no deleted secret of that name is kept in this environment (never deleted, restored, or purged)"},
    {SX_SECRETS_ELIVE, SX_ERR_SECRET, 409, "conflict",
     "a secret of that name exists again in this environment; delete or rename it before restoring"},
    {SX_SECRETS_EPRECONDITION, SX_ERR_SECRET, 412, "precondition_failed",
     "the secret has changed since the ETag given in If-Match"},
    {SX_SECRETS_ECONTENTION, SX_ERR_SECRET, 503, "unavailable", "too much contention on this secret; retry"},
    {SX_SECRETS_EENCRYPT, SX_ERR_SECRET, 503, "unavailable", "the value could not be encrypted"},
    {SX_SECRETS_EUNREADABLE, SX_ERR_SECRET, 500, "internal", "a stored value could not be decrypted"},
    {-EBADMSG, SX_ERR_SECRET, 500, "internal", "a stored record is corrupt"},
    {-ENOSPC, SX_ERR_SECRET, 503, "unavailable", "the storage device is full"},
    /* authentication and authorization */
    {SX_AUTH_ERATELIMITED, SX_ERR_AUTH, 429, "rate_limited", "too many failed authentications from this address"},
    {SX_AUTH_EUNAVAILABLE, SX_ERR_AUTH, 503, "unavailable", "storage is not answering"},
    {SX_AUTH_EFORBIDDEN, SX_ERR_AUTH, 403, "forbidden", NULL},
    /* tokens */
    {-EINVAL, SX_ERR_TOKEN_CREATE, 400, "invalid_request", "the token's scope, role, label or ttl breaks a rule"},
    {-ENOENT, SX_ERR_TOKEN_REVOKE, 404, "not_found", "no token with that id"},
    /* rotations and key records */
    {-EBUSY, SX_ERR_MASTER_ROTATE, 409, "rotation_in_progress",
     "a master-key rotation is in progress already; see GET /v1/status"},
    {-EBUSY, SX_ERR_ENV_ROTATE, 409, "rotation_in_progress", "this environment's data key is being rotated already"},
    {-ENOENT, SX_ERR_ENV_ROTATE, 404, "not_found",
     "this environment has no data key: no value was ever set in it, so there is nothing to rotate"},
    {-ENOENT, SX_ERR_ENV_KEYS, 404, "not_found", "this environment has no data key and no values"},
    {-EBADMSG, OPS_STORE, 500, "internal", NULL},
    {SX_CRYPTO_EFORMAT, OPS_STORE, 500, "internal", NULL},
    /* seal migration and backups: files the operator named */
    {-EEXIST, FILES, 409, "already_exists", NULL},
    {-ENOTSUP, FILES, 400, "invalid_request", NULL},
    {-EINVAL, FILES, 400, "invalid_request", NULL},
    {-ENOENT, FILES, 400, "invalid_request", NULL},
    {-EACCES, FILES, 400, "invalid_request", NULL},
    {-ENOTDIR, FILES, 400, "invalid_request", NULL},
    {SX_CRYPTO_EKEYPERM, SX_ERR_SEAL_MIGRATE, 400, "invalid_request", NULL},
    {-ENAMETOOLONG, SX_ERR_SEAL_MIGRATE, 400, "invalid_request", NULL},
    {SX_CRYPTO_ENOTPM, SX_ERR_SEAL_MIGRATE, 503, "unavailable", NULL},
    {SX_CRYPTO_ELOCKOUT, SX_ERR_SEAL_MIGRATE, 503, "unavailable", NULL},
    {SX_CRYPTO_ETPM, SX_ERR_SEAL_MIGRATE, 503, "unavailable", NULL},
    {SX_STORAGE_ECONDITION, SX_ERR_SEAL_MIGRATE | SX_ERR_SEAL_SLOT, 409, "conflict", NULL},
    {SX_CRYPTO_EPIN, SX_ERR_SEAL_MIGRATE, 400, "invalid_request", NULL},
    {SX_CRYPTO_ETOOMANY, SX_ERR_SEAL_MIGRATE, 409, "conflict", NULL},
    {SX_CRYPTO_ESLOTREFUSED, SX_ERR_SEAL_SLOT, 409, "refused", NULL},
    {-ENOENT, SX_ERR_SEAL_SLOT, 404, "not_found", NULL},
    {SX_CRYPTO_EFORMAT, SX_ERR_SEAL_SLOT | SX_ERR_SEAL_MIGRATE, 500, "internal", NULL},
    /* memory for the request's own work */
    {-ENOMEM, SX_ERR_ALLOC, 503, "unavailable", "out of memory"},
    /* the defaults of each context */
    {ANY_RC, FILES, 500, "internal", NULL},
    {ANY_RC, OPS_STORE, 503, "unavailable", NULL},
    {ANY_RC, SX_ERR_AUDIT_VERIFY, 400, "invalid_request", NULL},
    {ANY_RC, SX_ERR_AUDIT_INTENT, 503, "unavailable", "the audit log cannot be written"},
    {ANY_RC, SX_ERR_TOKEN_LIST, 503, "unavailable", "the token records could not be read"},
    {ANY_RC, SX_ERR_TOKEN_REVOKE, 503, "unavailable", "the token could not be revoked"},
    {ANY_RC, SX_ERR_AUTH, 401, "unauthorized", "a valid bearer token is required"},
    /* everything else: the store failed */
    {ANY_RC, SX_ERR_ANY, 503, "unavailable", "storage is not answering"},
};

const sx_http_error *sx_http_error_of(sx_err_ctx ctx, int rc)
{
    size_t n = sizeof(table) / sizeof(table[0]);
    for (size_t i = 0; i < n; i++)
        if ((table[i].rc == rc || table[i].rc == ANY_RC) && (table[i].ctx & (unsigned)ctx))
            return &table[i];
    return &table[n - 1];
}

void sx_send_failure(sx_request *r, sx_err_ctx ctx, int rc, const char *detail)
{
    const sx_http_error *e = sx_http_error_of(ctx, rc);
    const char *message = e->message ? e->message : detail ? detail : sx_crypto_strerror(rc);
    sx_send_error(r, e->status, e->code, message);
}
