/*
 * auth.h - bearer tokens, roles, scopes, a per-thread verification cache and failed-login throttling.
 *
 * Every HTTP request to secretsd carries `Authorization: Bearer <token>`. This module turns that
 * header into a principal (who is asking: token id, label, role, scope) and answers whether the
 * principal may perform an operation on an org/project/env. It also mints, lists and revokes
 * tokens for the admin socket (`secretsctl token create|list|revoke`).
 *
 * Token format (80 printable ASCII bytes):
 *
 *     sxt_<id: 32 lowercase hex digits = 16 random bytes>_<secret: 43 base64url chars, no padding = 32 random bytes>
 *
 * The id is public (it names the storage record, appears in `token list` and may be logged); the
 * secret is 256 random bits and is never stored, logged or returned after creation. Storage holds
 * only a keyed BLAKE2b hash (crypto_generichash, 32-byte output) of id and secret, keyed with the
 * token-hash key that the caller obtains from the crypto module's keyring and passes to
 * sx_auth_new(). Changing that key invalidates every token.
 *
 * Header grammar accepted by sx_auth_verify() (strict; anything else is malformed and rejected
 * before any storage access):
 *
 *     value = "Bearer" SP token          ; scheme case-insensitive, exactly one SP (0x20)
 *
 * no leading or trailing whitespace (h2o hands over the field value with OWS already stripped),
 * no second space, no other scheme, the token exactly as above (canonical base64url: the unused
 * low bits of the last secret character must be zero).
 *
 * Storage: one record per token at key "t/" + id (the 32 hex digits). The binary record layout is
 * documented in auth/token.c (first byte is the format version, currently 1).
 *
 * Threads: an sx_auth handle and an sx_auth_throttle are shared by every thread (all their
 * functions are thread-safe). An sx_auth_cache belongs to one thread (one per h2o event loop) and
 * is never locked; it must not be used by two threads at once.
 *
 * Errors: 0 on success, a negative errno (-EINVAL bad argument, -ENOENT unknown token, -ENOMEM,
 * -EBADMSG an undecodable stored record, or a storage code passed through), or one of the
 * SX_AUTH_E* codes below (reserved range -1300 .. -1399). sx_auth_strerror() gives a sentence for
 * any of them. This module never logs and never puts a token or secret into an error.
 */
#ifndef SX_AUTH_H
#define SX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "storage/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- error codes --------------------------------------------------------------------------------- */

/* Error codes SX_AUTH_E* (-1300 .. -1399, common/errors.h): the "unauthorized" family (-1300 ..
 * -1309) is answered 401 `unauthorized` for all of them (the server may log which one it was, never
 * the header itself); SX_AUTH_EFORBIDDEN 403, SX_AUTH_EUNAVAILABLE 503, SX_AUTH_ERATELIMITED 429. */
static inline bool sx_auth_is_unauthorized(int code)
{
    return code <= SX_AUTH_EMALFORMED && code >= SX_AUTH_EUNAUTH_LAST;
}

/* A sentence for any code returned by this module (static string; never contains token material). */
const char *sx_auth_strerror(int code);

/* --- sizes and limits ---------------------------------------------------------------------------- */

#define SX_AUTH_KEY_BYTES      32u /* the token-hash key */
#define SX_AUTH_ID_BYTES       16u /* raw id */
#define SX_AUTH_ID_LEN         32u /* id as lowercase hex */
#define SX_AUTH_SECRET_BYTES   32u /* raw secret: 256 bits */
#define SX_AUTH_HASH_BYTES     32u /* stored keyed BLAKE2b hash */
#define SX_AUTH_TOKEN_PREFIX   "sxt_"
#define SX_AUTH_TOKEN_LEN      80u                         /* "sxt_" + 32 + "_" + 43 */
#define SX_AUTH_NAME_MAX       64u                         /* org / project / env */
#define SX_AUTH_LABEL_MAX      128u                        /* bytes of UTF-8 */
#define SX_AUTH_TTL_MAX_MS     (3650LL * 24 * 3600 * 1000) /* 10 years (3650 days) */
#define SX_AUTH_CACHE_TRUST_MS 1000                        /* a cached record is re-read after this */

/* --- roles, permissions, principals ------------------------------------------------------------ */

typedef enum sx_auth_role {
    SX_AUTH_ROLE_VIEWER = 1,  /* secrets:read */
    SX_AUTH_ROLE_EDITOR = 2,  /* secrets:read, secrets:write */
    SX_AUTH_ROLE_OWNER = 3,   /* secrets:read, secrets:write, secrets:set-value, secrets:reveal */
    SX_AUTH_ROLE_SERVICE = 4, /* secrets:read, secrets:reveal */
} sx_auth_role;

/* Permission bits; sx_auth_check() requires every bit of the mask it is given. */
#define SX_AUTH_PERM_READ      (1u << 0) /* secrets:read */
#define SX_AUTH_PERM_WRITE     (1u << 1) /* secrets:write */
#define SX_AUTH_PERM_SET_VALUE (1u << 2) /* secrets:set-value */
#define SX_AUTH_PERM_REVEAL    (1u << 3) /* secrets:reveal */

/*
 * A token's public description; also the principal returned by verification. Plain value type:
 * copy it freely, nothing to free. Never holds the secret or the hash. Unset optional strings are
 * "" (project "" = every project of org; env "" = every env of the project(s)).
 */
typedef struct sx_auth_token {
    char id[SX_AUTH_ID_LEN + 1];
    char label[SX_AUTH_LABEL_MAX + 1];
    sx_auth_role role;
    char org[SX_AUTH_NAME_MAX + 1];
    char project[SX_AUTH_NAME_MAX + 1];
    char env[SX_AUTH_NAME_MAX + 1];
    int64_t created_ms; /* ms since the Unix epoch */
    int64_t expires_ms; /* 0 = never expires; expired when now_ms >= expires_ms */
    bool revoked;
    int64_t revoked_ms; /* when revoked (0 when not) */
} sx_auth_token;

/* Permission mask of a role (0 for an unknown value). */
unsigned sx_auth_role_perms(sx_auth_role role);

/* "viewer" | "editor" | "owner" | "service"; NULL for an unknown value. Static strings. */
const char *sx_auth_role_name(sx_auth_role role);

/* Parse a role name (exact, lowercase). 0 and *ret_role, or -EINVAL. */
int sx_auth_role_parse(const char *s, sx_auth_role *ret_role) __attribute__((warn_unused_result));

/* "secrets:read" etc. for a single permission bit; NULL otherwise. Static strings. */
const char *sx_auth_perm_name(unsigned perm);

/*
 * May principal do perm (a mask of SX_AUTH_PERM_* bits, all required) on org/project/env?
 * Returns 0, SX_AUTH_EFORBIDDEN when a permission is missing or the scope does not cover the
 * target, -EINVAL for NULL principal/org. project/env may be NULL for an operation above that level
 * (an org-wide operation); a token scoped to a project then does not cover it. Names compare
 * exactly (case-sensitive). Pure function; any thread.
 */
int sx_auth_check(const sx_auth_token *principal, unsigned perm, const char *org, const char *project, const char *env)
    __attribute__((warn_unused_result));

/* Validators shared with the CLI and admin handlers (no allocation, any thread). */
bool sx_auth_name_valid(const char *s);  /* 1-64 chars of [A-Za-z0-9._-], first alphanumeric */
bool sx_auth_label_valid(const char *s); /* <= 128 bytes of valid UTF-8, no C0/C1 controls or DEL */
bool sx_auth_id_valid(const char *s);    /* exactly 32 lowercase hex digits */

/* Parse a lifetime "<digits><unit>", unit one of s m h d (e.g. "90s", "30d"). 1 s .. 10 years.
 * 0 and *ret_ms, or -EINVAL (no unit, zero, junk, out of range). */
int sx_auth_ttl_parse(const char *s, int64_t *ret_ms) __attribute__((warn_unused_result));

/* --- the auth handle ----------------------------------------------------------------------------- */

typedef struct sx_auth sx_auth;

/*
 * Create a handle over storage with the token-hash key (key_len must be SX_AUTH_KEY_BYTES). The key
 * is copied into sodium_malloc memory (read-only, wiped on free); the caller may wipe its copy. The
 * storage handle is borrowed and must outlive the sx_auth. Calls sodium_init() (idempotent).
 * Returns 0, -EINVAL, -ENOMEM.
 */
int sx_auth_new(sx_storage *storage, const unsigned char *key, size_t key_len, sx_auth **ret)
    __attribute__((warn_unused_result));

/*
 * Give the handle the record-MAC key (SX_AUTH_KEY_BYTES; the keyring's record key): from then on
 * every token record it writes ends with a keyed BLAKE2b-256 of its storage key and body (the
 * construction of crypto/FORMAT.md, "Record MACs"), and a record read without a valid one counts
 * as forged: SX_AUTH_EFORGED from verification (a 401), skipped by sx_auth_token_list(), -EBADMSG
 * from get and revoke. Call once, before the handle is shared. Copied like the token-hash key.
 * Returns 0, -EINVAL, -ENOMEM.
 */
int sx_auth_record_key_set(sx_auth *auth, const unsigned char *key, size_t key_len) __attribute__((warn_unused_result));

/* Token records that failed their MAC since the handle was made (any thread). */
uint64_t sx_auth_forged_records(sx_auth *auth);

/* Free the handle and wipe the key. NULL ok. Every cache used with it must no longer be in use. */
void sx_auth_free(sx_auth *auth);

/* --- token management (admin socket worker thread; thread-safe) ---------------------------------- */

typedef struct sx_auth_token_spec {
    const char *org;     /* required */
    const char *project; /* NULL or "" = every project of org */
    const char *env;     /* NULL or "" = every env; only allowed together with project */
    sx_auth_role role;
    const char *label; /* NULL = "" */
    int64_t ttl_ms;    /* 0 = never expires; else 1 .. SX_AUTH_TTL_MAX_MS */
} sx_auth_token_spec;

/*
 * Mint a token. On success *ret_token is the plaintext token (NUL-terminated, SX_AUTH_TOKEN_LEN
 * chars) in sodium_malloc memory owned by the caller, to be shown once and released with
 * sx_auth_token_plaintext_free(); *ret_info (may be NULL) describes the new token. Both are written
 * only on success. Returns 0, -EINVAL (a spec field breaks a rule), -ENOMEM, or a storage error.
 */
int sx_auth_token_create(sx_auth *auth, const sx_auth_token_spec *spec, int64_t now_ms, char **ret_token,
                         sx_auth_token *ret_info) __attribute__((warn_unused_result));

/* Wipe and free a plaintext token from sx_auth_token_create(). NULL ok. */
void sx_auth_token_plaintext_free(char *token);

/* Read one token's description by id. 0, -EINVAL (not a valid id), -ENOENT, -EBADMSG, storage error. */
int sx_auth_token_get(sx_auth *auth, const char *id, sx_auth_token *ret) __attribute__((warn_unused_result));

/*
 * Call cb for every token (revoked ones included), in id order. tok is valid only during the call.
 * A non-zero return from cb stops the listing and is returned. Otherwise 0, -EBADMSG, or a storage
 * error. Hashes are never exposed.
 */
int sx_auth_token_list(sx_auth *auth, int (*cb)(const sx_auth_token *tok, void *userdata), void *userdata);

/*
 * Revoke a token by id: the record is kept with its revoked flag set (compare-and-set, so a
 * concurrent revoke is harmless). Every sx_auth_cache of this process stops trusting its cached
 * entries at once (process-wide generation); other processes sharing the storage notice within
 * SX_AUTH_CACHE_TRUST_MS. Revoking a revoked token is a no-op returning 0. Returns 0, -EINVAL,
 * -ENOENT, -EBADMSG, or a storage error.
 */
int sx_auth_token_revoke(sx_auth *auth, const char *id, int64_t now_ms) __attribute__((warn_unused_result));

/* --- verification -------------------------------------------------------------------------------- */

typedef struct sx_auth_cache sx_auth_cache;

/*
 * A cache of verified tokens for ONE thread (no locks). capacity is 1 .. 1<<20 entries (rounded up
 * to a multiple of 4) of about 480 bytes each; eviction is least-recently-used within a 4-way set.
 * Only successful verifications insert entries, so failed attempts cannot fill it or evict valid
 * clients. Returns 0, -EINVAL, -ENOMEM.
 */
int sx_auth_cache_new(size_t capacity, sx_auth_cache **ret) __attribute__((warn_unused_result));

/* Free a cache (wiping the hashes it holds). NULL ok. */
void sx_auth_cache_free(sx_auth_cache *cache);

/*
 * Verify an Authorization header value (value need not be NUL-terminated; NULL/0 = no header).
 * On success returns 0 and copies the principal into *ret. Otherwise one of the unauthorized codes
 * (SX_AUTH_EMALFORMED is decided without touching storage or cache), SX_AUTH_EUNAVAILABLE when
 * storage failed, or -EINVAL for NULL auth/cache/ret.
 *
 * cache (the calling thread's own) is consulted first: an entry read from storage less than
 * SX_AUTH_CACHE_TRUST_MS before now_ms, and not older than the last revocation in this process,
 * answers without a storage read - after the presented secret has been hashed and compared with the
 * cached hash in constant time. Otherwise the record is read from storage. now_ms is the caller's
 * clock (ms since the epoch); it decides expiry and cache freshness.
 */
int sx_auth_verify(sx_auth *auth, sx_auth_cache *cache, const char *value, size_t len, int64_t now_ms,
                   sx_auth_token *ret) __attribute__((warn_unused_result));

/* --- throttling of failed authentications --------------------------------------------------------- */

typedef struct sx_auth_throttle sx_auth_throttle;

typedef struct sx_auth_throttle_options {
    unsigned burst;       /* failures allowed back to back; default 20 */
    double refill_per_s;  /* failures forgiven per second; default 1.0 */
    size_t max_addresses; /* table size (fixed; rounded up to a multiple of 8); default 16384 */
} sx_auth_throttle_options;

/*
 * A token bucket per client address, shared by all threads (one mutex per 8-entry set). An IPv4
 * address (also IPv4-mapped IPv6) is one client; an IPv6 address is keyed by its /64. The table
 * never grows: a new address replaces the entry of its set that is closest to a full bucket (the
 * least throttled), so an attacker cycling addresses cannot evict a blocked address before the
 * innocuous ones, nor use memory. Set positions come from a keyed hash (random per table). opt may
 * be NULL for the defaults; zero fields take the default. Returns 0, -EINVAL, -ENOMEM.
 */
int sx_auth_throttle_new(const sx_auth_throttle_options *opt, sx_auth_throttle **ret)
    __attribute__((warn_unused_result));

void sx_auth_throttle_free(sx_auth_throttle *t); /* NULL ok */

/* True when addr's bucket is empty; then *ret_retry_after_s (may be NULL) gets the seconds (>= 1)
 * until one more attempt is allowed. Addresses other than AF_INET/AF_INET6 are never blocked. */
bool sx_auth_throttle_blocked(sx_auth_throttle *t, const struct sockaddr *addr, int64_t now_ms,
                              unsigned *ret_retry_after_s);

/* Record one failed authentication from addr (takes one token from its bucket). */
void sx_auth_throttle_failed(sx_auth_throttle *t, const struct sockaddr *addr, int64_t now_ms);

/* Addresses currently tracked (<= capacity), and the fixed capacity. For tests and /metrics. */
size_t sx_auth_throttle_count(sx_auth_throttle *t);
size_t sx_auth_throttle_capacity(const sx_auth_throttle *t);

/*
 * What the server calls per request: throttle check, verification, failure accounting in one.
 * The token is always verified (sx_auth_verify()), whether addr is blocked or not, so a valid token
 * is served even from an address that others behind the same NAT or proxy made fail: the throttle
 * slows failures only. An unauthorized result is counted against addr; while addr is blocked it
 * returns SX_AUTH_ERATELIMITED instead, with *ret_retry_after_s (may be NULL) set. A blocked
 * address therefore still costs one storage read per well-formed token (none for a malformed one).
 * throttle may be NULL (no throttling). Returns like sx_auth_verify(), plus SX_AUTH_ERATELIMITED.
 */
int sx_auth_authenticate(sx_auth *auth, sx_auth_cache *cache, sx_auth_throttle *throttle, const struct sockaddr *addr,
                         const char *value, size_t len, int64_t now_ms, sx_auth_token *ret, unsigned *ret_retry_after_s)
    __attribute__((warn_unused_result));

/* A token record read ahead (sx_auth_fetch_new) for sx_auth_authenticate_nowait(). */
typedef struct sx_auth_fetch sx_auth_fetch;

/*
 * Read the stored record of the token in an Authorization header value (blocking: any thread but
 * an event loop's). On 0, *ret holds the record or the storage code of the read (not found, forged,
 * unreadable: the verification decides what each means); free it with sx_auth_fetch_free(), which
 * wipes it. SX_AUTH_EMALFORMED for a header that names no token, -EINVAL, -ENOMEM.
 */
int sx_auth_fetch_new(sx_auth *auth, const char *value, size_t len, sx_auth_fetch **ret)
    __attribute__((warn_unused_result));
void sx_auth_fetch_free(sx_auth_fetch *f); /* NULL ok */

/*
 * sx_auth_authenticate() for a thread that must not wait for storage: where the cache cannot answer
 * and a storage read is due, it uses fetched (when it is the record of this header's token, read
 * by sx_auth_fetch_new() just before) or returns -EWOULDBLOCK having counted nothing against addr;
 * the caller then reads the record on another thread and calls again with it. Every other result
 * is sx_auth_authenticate()'s.
 */
int sx_auth_authenticate_nowait(sx_auth *auth, sx_auth_cache *cache, sx_auth_throttle *throttle,
                                const struct sockaddr *addr, const char *value, size_t len, int64_t now_ms,
                                const sx_auth_fetch *fetched, sx_auth_token *ret, unsigned *ret_retry_after_s)
    __attribute__((warn_unused_result));

/* Count the token records in st (revoked and expired ones included). Needs no key. 0 or a storage
 * code. */
int sx_auth_store_count(sx_storage *st, uint64_t *ret_tokens) __attribute__((warn_unused_result));

#ifdef __cplusplus
}
#endif

#endif /* SX_AUTH_H */
