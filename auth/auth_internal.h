/*
 * auth_internal.h - what the auth module's files share and nobody else sees.
 *
 * The handle, the process-wide revocation generation, the decoded storage record (public part plus
 * raw id and keyed hash), and the parsing / hashing / record helpers used by both the management
 * functions (token.c) and the verification path (cache.c).
 */
#ifndef SX_AUTH_INTERNAL_H
#define SX_AUTH_INTERNAL_H

#include <stdatomic.h>

#include "auth/auth.h"

/* Storage keys: "t/" + 32 hex digits. */
#define SX_AUTH_KEY_PREFIX      "t/"
#define SX_AUTH_KEY_PREFIX_LEN  2u
#define SX_AUTH_STORAGE_KEY_LEN (SX_AUTH_KEY_PREFIX_LEN + SX_AUTH_ID_LEN)

/* Record format version written by this code. */
#define SX_AUTH_RECORD_V1 1u
/* Fixed part of a v1 record, and the largest possible record. */
#define SX_AUTH_RECORD_FIXED 76u
#define SX_AUTH_RECORD_MAX   (SX_AUTH_RECORD_FIXED + 4u + SX_AUTH_LABEL_MAX + 3u * SX_AUTH_NAME_MAX)

struct sx_auth {
    sx_storage *storage;     /* borrowed */
    unsigned char *key;      /* SX_AUTH_KEY_BYTES, sodium_malloc, read-only */
    uint64_t instance;       /* unique per handle in this process; tags cache entries */
    unsigned char *rec_key;  /* record-MAC key (sodium_malloc, read-only), NULL = records carry no MAC */
    _Atomic uint64_t forged; /* token records that failed their MAC */
};

/* Bytes of the MAC a token record ends with when a record-MAC key is set. */
#define SX_AUTH_RECORD_MACBYTES   32u
#define SX_AUTH_RECORD_STORED_MAX (SX_AUTH_RECORD_MAX + SX_AUTH_RECORD_MACBYTES)

/* Bumped (release) by every successful revoke in this process; caches compare it (acquire). */
extern _Atomic uint64_t sx_auth_generation;

/* A decoded token record. */
typedef struct sx_auth_record {
    sx_auth_token info;
    unsigned char id[SX_AUTH_ID_BYTES];
    unsigned char hash[SX_AUTH_HASH_BYTES];
} sx_auth_record;

/* Parse an Authorization header value strictly (see auth.h). 0 with id and secret filled, or
 * SX_AUTH_EMALFORMED. On failure secret is wiped. Touches nothing but its arguments. */
int sx_auth_header_parse(const char *value, size_t len, unsigned char id[SX_AUTH_ID_BYTES],
                         unsigned char secret[SX_AUTH_SECRET_BYTES]);

/* Keyed hash of (id, secret) under the handle's key. */
void sx_auth_token_hash(const sx_auth *auth, const unsigned char id[SX_AUTH_ID_BYTES],
                        const unsigned char secret[SX_AUTH_SECRET_BYTES], unsigned char out[SX_AUTH_HASH_BYTES]);

/* Raw id <-> 32 lowercase hex digits (+ NUL). id_from_hex returns 0 or -EINVAL (strict). */
void sx_auth_id_to_hex(const unsigned char id[SX_AUTH_ID_BYTES], char out[SX_AUTH_ID_LEN + 1]);
int sx_auth_id_from_hex(const char *hex, size_t len, unsigned char id[SX_AUTH_ID_BYTES]);

/* "t/<hex>" into out (SX_AUTH_STORAGE_KEY_LEN bytes, not NUL-terminated). */
void sx_auth_storage_key(const unsigned char id[SX_AUTH_ID_BYTES], char out[SX_AUTH_STORAGE_KEY_LEN]);

/* Encode r into buf (SX_AUTH_RECORD_MAX bytes); returns the length. r must be valid. */
size_t sx_auth_record_encode(const sx_auth_record *r, unsigned char buf[SX_AUTH_RECORD_MAX]);

/* Decode a record read at the key for id. 0 or -EBADMSG (wrong version, length, field, or id). */
int sx_auth_record_decode(const void *buf, size_t len, const unsigned char id[SX_AUTH_ID_BYTES], sx_auth_record *ret);

/* Read and decode the record for id. 0, -ENOENT, -EBADMSG, or a storage error; *ret_rev may be NULL. */
int sx_auth_record_read(sx_auth *auth, const unsigned char id[SX_AUTH_ID_BYTES], sx_auth_record *ret,
                        uint64_t *ret_rev);

/* Scope name check on a length-delimited string. */
bool sx_auth_name_valid_n(const char *s, size_t len);
/* Label check on a length-delimited string. */
bool sx_auth_label_valid_n(const char *s, size_t len);

#endif /* SX_AUTH_INTERNAL_H */
