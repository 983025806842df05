/*
 * crypto.h - secretsd's KMS-style key hierarchy.
 *
 *     slots        (key file | passphrase via Argon2id | TPM 2.0 sealed object | recovery key), each
 *                  wrapping the keyring key (keyslots: several unlock methods at once)
 *       keyring    master-key versions (one active) + long-lived system keys, under the keyring key
 *         data key per-environment versions (one active), each wrapped under one master version
 *           value  a secret's value, encrypted under one data-key version of its environment
 *
 * Every layer uses XChaCha20-Poly1305-IETF with a fresh random nonce per encryption; the associated
 * data binds each ciphertext to its place (org, project, env, name), key versions and, for a value
 * of a versioned secret, the value's version, so a blob copied to another record fails to decrypt. The persisted
 * formats are described in crypto/FORMAT.md. Initialisation also wraps the keyring for a recovery key (shown once),
 * which can re-seal the keyring when the seal is lost (dead TPM, lost key file, forgotten passphrase).
 *
 * Persistence goes through the storage vtable (storage/storage.h). The module owns these keys:
 *     s/keyring            the keyring under the keyring key
 *     s/slot/{%08x id}     a slot: the keyring key wrapped under one method (0 = the recovery key)
 *     s/slot.used/{id}     when the slot last opened the keyring (information only)
 *     e/{org}/{project}/{env}               the env's data-key state (active version)
 *     d/{org}/{project}/{env}/{%08x ver}    wrapped data-key versions
 * Every multi-record change is one sx_storage_batch() with preconditions, so several threads or
 * processes (or nodes sharing a networked store) may initialise, encrypt and rotate at once.
 *
 * Memory: key material lives only in sodium_malloc() memory (guarded, locked, zeroed on free);
 * temporaries are wiped with sodium_memzero(). The caller has called sodium_init() once before
 * starting threads (sx_crypto_open() calls it too; it is idempotent).
 *
 * Threads: once sx_crypto_open() has returned, every function taking an sx_crypto handle may be
 * called from any number of threads at once, except sx_crypto_free(). Functions that may block for
 * milliseconds or more (open, recover, reseal: Argon2id, TPM; the rotation primitives: storage
 * scans) must run off the event loop. Value encryption and decryption do a storage read on a cache
 * miss (decrypt) or always (encrypt: the env's active version) and are otherwise CPU-only.
 *
 * Errors: 0 on success, a negative errno, a storage code (SX_STORAGE_*) or one of the SX_CRYPTO_E*
 * codes below (reserved range -1100 .. -1199). sx_crypto_strerror() gives a sentence for any of
 * them. Functions that take err/errlen also write a one-line, more specific reason there (never a
 * secret). The module never logs. ret_ out-parameters are written only on success.
 */
#ifndef SX_CRYPTO_H
#define SX_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "storage/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- error codes: SX_CRYPTO_E* (-1100 .. -1199), defined in common/errors.h ------------------- */

/* A sentence for any code returned by this module (or by storage, or a negative errno). Static. */
const char *sx_crypto_strerror(int code);

/* --- sizes ------------------------------------------------------------------------------------ */
#define SX_CRYPTO_KEYBYTES 32u
/* Bytes a value blob adds to its plaintext. Format 1 (written for place->version 0): format byte,
 * data-key version, nonce, tag. Format 2 (place->version >= 1): the same plus the value's version. */
#define SX_CRYPTO_VALUE_OVERHEAD     (1u + 4u + 24u + 16u)
#define SX_CRYPTO_VALUE_OVERHEAD_V2  (SX_CRYPTO_VALUE_OVERHEAD + 4u)
#define SX_CRYPTO_VALUE_OVERHEAD_MAX SX_CRYPTO_VALUE_OVERHEAD_V2
/* Length of the blob sx_crypto_value_encrypt() writes for plen bytes at a place of version
 * version; SX_CRYPTO_VALUE_BLOB_LEN is the length for version 0 (format 1). */
#define SX_CRYPTO_VALUE_BLOB_LEN_V(plen, version)                                                                      \
    ((size_t)(plen) + ((version) ? SX_CRYPTO_VALUE_OVERHEAD_V2 : SX_CRYPTO_VALUE_OVERHEAD))
#define SX_CRYPTO_VALUE_BLOB_LEN(plen) SX_CRYPTO_VALUE_BLOB_LEN_V(plen, 0u)
/* Room for the plaintext of a blob of blen bytes, of either format: its exact length for format 1,
 * 4 bytes more than it for format 2 (sx_crypto_value_decrypt() reports the exact length). 0 for a
 * blob too short to be valid. */
#define SX_CRYPTO_VALUE_PLAIN_LEN(blen)                                                                                \
    ((blen) >= SX_CRYPTO_VALUE_OVERHEAD ? (size_t)(blen)-SX_CRYPTO_VALUE_OVERHEAD : 0u)
/* Largest value accepted by sx_crypto_value_encrypt(): its blob fits a storage value in either
 * format. */
#define SX_CRYPTO_VALUE_MAX (SX_STORAGE_MAX_VALUE - SX_CRYPTO_VALUE_OVERHEAD_MAX)
/* Most master-key versions a keyring holds at once (retire old ones after rotating). */
#define SX_CRYPTO_MAX_MASTERS 64u
/* Default number of unwrapped data keys kept in memory. */
#define SX_CRYPTO_CACHE_DEFAULT 1024u
/* A new passphrase seal needs a passphrase of at least this many characters (UTF-8 code points)
 * and Argon2id limits of at least libsodium's INTERACTIVE preset; an existing seal made under
 * weaker rules still opens, so that it can be migrated. */
#define SX_CRYPTO_PASSPHRASE_MIN_CHARS 12u

/* The number of characters (UTF-8 code points: bytes that are not continuation bytes) of s. */
size_t sx_crypto_passphrase_chars(const char *s, size_t len);

/* Length of a printable recovery key including the terminating NUL. */
#define SX_CRYPTO_RECOVERY_KEY_SIZE 72u

/* --- options ---------------------------------------------------------------------------------- */
typedef enum sx_crypto_seal_type {
    SX_CRYPTO_SEAL_FILE = 1,       /* 32 random bytes in a 0600 file, created on first start */
    SX_CRYPTO_SEAL_PASSPHRASE = 2, /* Argon2id(passphrase, stored salt) */
    SX_CRYPTO_SEAL_TPM = 3,        /* sealed under the TPM's storage primary key (ECC P-256) */
    SX_CRYPTO_SEAL_RECOVERY = 4,   /* a slot only: the keyring key encrypted to the recovery public key */
} sx_crypto_seal_type;

/* How the seal key is obtained. Borrowed for the duration of the call that takes it. */
typedef struct sx_crypto_seal_options {
    sx_crypto_seal_type type;
    const char *key_file;               /* FILE: path of the key file */
    const uint8_t *key;                 /* FILE: the SX_CRYPTO_KEYBYTES key bytes themselves (a systemd
                                           credential read by the caller) instead of key_file; borrowed
                                           for the call, never written anywhere */
    const char *passphrase;             /* PASSPHRASE: the bytes (the caller read the env variable) */
    size_t passphrase_len;              /* PASSPHRASE: a new seal needs SX_CRYPTO_PASSPHRASE_MIN_CHARS */
    unsigned long long pwhash_opslimit; /* PASSPHRASE: for a new seal (>= INTERACTIVE); 0 = OPSLIMIT_MODERATE */
    size_t pwhash_memlimit;             /* PASSPHRASE: for a new seal (>= INTERACTIVE); 0 = MEMLIMIT_MODERATE */
    const char *tcti;                   /* TPM: e.g. "device:/dev/tpmrm0" (default), "swtpm:host=...,port=..." */
    uint32_t pcrs;                      /* TPM: sha256 PCRs to bind a new seal to (bit n = PCR n); 0 = none */
    const char *pin;                    /* TPM: a PIN (PolicyAuthValue) for a new seal and to unseal; NULL = none */
    size_t pin_len;                     /* TPM: 1..SX_CRYPTO_PIN_MAX bytes when pin is set */
} sx_crypto_seal_options;

/* Longest TPM PIN (the sealed object's auth value is a SHA-256-sized TPM2B). */
#define SX_CRYPTO_PIN_MAX 32u

typedef struct sx_crypto_options {
    sx_crypto_seal_options seal;
    size_t cache_entries; /* unwrapped data keys kept in memory; 0 = SX_CRYPTO_CACHE_DEFAULT */
} sx_crypto_options;

/* Where a value lives. Strings are borrowed for the call. org, project, env: 1-64 chars of
 * [A-Za-z0-9._-] starting alphanumeric; name: 1-256 chars of [A-Za-z0-9._-], not "." or "..".
 * Functions that act on an environment ignore name. Anything else is -EINVAL. */
typedef struct sx_crypto_place {
    const char *org;
    const char *project;
    const char *env;
    const char *name;
    /* The version of the secret's value a value blob belongs to (1, 2, ...), bound into the blob's
     * header and associated data (blob format 2) so that a blob copied onto another version of the
     * same secret fails to decrypt; 0 = no version: encryption writes format 1, which binds none.
     * A format-1 blob (a value stored before versions) counts as version 1 of its secret. Ignored
     * by functions that act on an environment or on data keys. */
    uint32_t version;
} sx_crypto_place;

typedef struct sx_crypto sx_crypto;

/* --- lifecycle -------------------------------------------------------------------------------- */

/*
 * Open the key hierarchy in st, initialising it when the store holds none: then a new keyring
 * (one master version, the system keys) is sealed with opt->seal, a recovery key is generated and
 * *ret_recovery_key (when ret_recovery_key != NULL) receives it as a printable NUL-terminated
 * string in sodium_malloc memory: show it once, then free it with sx_crypto_recovery_key_free().
 * When the store was already initialised (also by a concurrent opener that won the race),
 * *ret_recovery_key is set to NULL. A FILE seal creates a missing key file only when initialising.
 *
 * st is borrowed and must outlive the handle. Blocks (Argon2id, TPM): call off the event loop.
 * Errors: SX_CRYPTO_EBADSEAL, _EKEYPERM, _ESEALTYPE, _ENOTPM, _ETPMWRONG, _EPCR, _ELOCKOUT, _ETPM,
 * _EFORMAT, -ENOENT (key file missing for an existing keyring), -ENOTSUP (TPM not built in),
 * -EINVAL, -ENOMEM, storage errors; err gets the specific reason.
 */
int sx_crypto_open(sx_crypto **ret, char **ret_recovery_key, sx_storage *st, const sx_crypto_options *opt, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* Wipe every key and free the handle. No other call on c may be running. NULL ok. */
void sx_crypto_free(sx_crypto *c);

/* Wipe and free a recovery key string. NULL ok. */
void sx_crypto_recovery_key_free(char *key);

/*
 * Recovery: open the hierarchy with the recovery key (the printed form; case, spaces and dashes
 * are ignored) through the recovery slot and add a slot for opt->seal, in one atomic write that
 * also removes this node's lost slots of that type: each slot of opt->seal's type that the
 * configured method does not open (a file or passphrase slot under another key, a TPM slot of this
 * TPM whose policy no longer matches); TPM slots of other machines stay. The recovery key itself
 * stays valid. On success *ret is an open handle as
 * from sx_crypto_open(). Errors: SX_CRYPTO_EBADRECOVERY, the seal errors of sx_crypto_open(),
 * SX_STORAGE_ECONDITION when another process changed the seal meanwhile (retry), storage errors.
 */
int sx_crypto_recover(sx_crypto **ret, sx_storage *st, const char *recovery_key, const sx_crypto_options *opt,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Seal migration: add a slot for new_seal (e.g. file -> TPM) and remove the slot this handle opened
 * with, in one atomic write; the new slot becomes this handle's. The old slot no longer opens the
 * store; other slots (other nodes', the recovery slot) stay. Errors as sx_crypto_recover(); on
 * failure nothing changed.
 */
int sx_crypto_reseal(sx_crypto *c, const sx_crypto_seal_options *new_seal, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* --- keyslots (slot.c) ------------------------------------------------------------------------ *
 * The keyring is encrypted under one random keyring key; each slot wraps that key under one unlock
 * method (FORMAT.md). A node opens with the first slot of its configured type that works; the
 * recovery slot (id 0) wraps it for the recovery key. Slot changes are single conditional batches,
 * so operators on several nodes may add and remove slots at once without losing one. */
#define SX_CRYPTO_SLOT_LABEL_MAX 64u /* bytes of a slot label (printable ASCII) */
#define SX_CRYPTO_MAX_SLOTS      64u /* slots per store */
#define SX_CRYPTO_RECOVERY_SLOT  0u  /* the recovery slot's id */

typedef struct sx_crypto_slot_info {
    uint32_t id;
    sx_crypto_seal_type type;
    char label[SX_CRYPTO_SLOT_LABEL_MAX + 1];
    int64_t created;   /* Unix seconds */
    int64_t last_used; /* Unix seconds of the last open with this slot; 0 = never */
    uint32_t pcrs;     /* TPM: the PCR mask it is bound to */
    bool pin;          /* TPM: bound to a PIN too */
    bool current;      /* the slot this handle opened with */
    bool stale;        /* wraps an older keyring key (a rekey happened since): it opens nothing */
} sx_crypto_slot_info;

/* The store's slots in id order: at most cap into ret[], their number into *ret_n. No key
 * material is read. 0 or a storage error. */
int sx_crypto_slot_list(sx_crypto *c, sx_crypto_slot_info *ret, size_t cap, size_t *ret_n)
    __attribute__((warn_unused_result));

/* The slot this handle opened with (its id and type). */
uint32_t sx_crypto_slot_current(sx_crypto *c, sx_crypto_seal_type *ret_type);

/* Add a slot for o (a FILE slot creates o->key_file, which must not exist; a TPM slot is created
 * with the TPM o->tcti reaches) labelled label (NULL or "" = none; printable ASCII up to
 * SX_CRYPTO_SLOT_LABEL_MAX, else -EINVAL). *ret_id gets the new slot's id. Blocks (TPM, Argon2id).
 * Errors: the seal errors of sx_crypto_open(), SX_CRYPTO_ETOOMANY (SX_CRYPTO_MAX_SLOTS), storage. */
int sx_crypto_slot_add(sx_crypto *c, uint32_t *ret_id, const sx_crypto_seal_options *o, const char *label, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/* Remove slot id. SX_CRYPTO_ESLOTREFUSED for the last slot, and without SX_CRYPTO_SLOT_FORCE for the
 * slot this handle opened with or the recovery slot; -ENOENT when there is no such slot. The removal
 * is conditional on every other slot being unchanged, so two removals racing never remove both of
 * the last two slots. */
#define SX_CRYPTO_SLOT_FORCE 1u
int sx_crypto_slot_remove(sx_crypto *c, uint32_t id, unsigned flags, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Rekey: a new keyring key encrypts the keyring, and is wrapped again into the slot this handle
 * opened with and the recovery slot (the methods at hand); every other slot is removed in the same
 * batch (a slot wrapping the old key would open nothing), its info into ret_dropped[] (at most cap,
 * the number into *ret_n_dropped). Copies of old slot records stop opening the keyring. */
int sx_crypto_rekey(sx_crypto *c, sx_crypto_slot_info *ret_dropped, size_t cap, size_t *ret_n_dropped, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/* --- values ----------------------------------------------------------------------------------- */

/*
 * Encrypt len bytes at plaintext for place (all four fields and its version) under the env's
 * active data-key version, creating and persisting the env's first data key when it has none.
 * place->version 0 writes a format-1 blob, any other version a format-2 blob bound to it. On
 * success *ret_blob is a malloc'd blob of *ret_len = SX_CRYPTO_VALUE_BLOB_LEN_V(len,
 * place->version) bytes (free with free()); the caller stores it. plaintext may be NULL when len
 * is 0. -EINVAL when len > SX_CRYPTO_VALUE_MAX.
 */
int sx_crypto_value_encrypt(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, const sx_crypto_place *place,
                            const void *plaintext, size_t len) __attribute__((warn_unused_result));

/*
 * A precondition that keeps a value from outliving its data-key version: the env's state record
 * (which names the active version) at the revision it had when the value was encrypted. A batch
 * that stores the blob adds {SX_STORAGE_OP_CHECK, key, klen, SX_STORAGE_COND_REV, rev}. A data-key
 * rotation rewrites that record (naming the new version) before its sweep begins, and destroys an
 * old version with a precondition on the same record, so such a batch either commits before the
 * rotation began (and the sweep re-encrypts the value) or fails, and the caller encrypts again.
 */
#define SX_CRYPTO_PIN_KEY_MAX 320
typedef struct sx_crypto_pin {
    char key[SX_CRYPTO_PIN_KEY_MAX];
    size_t klen;
    uint64_t rev;
} sx_crypto_pin;

/* sx_crypto_value_encrypt(), and *ret_pin gets the precondition the caller's write must carry. */
int sx_crypto_value_encrypt_pinned(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, sx_crypto_pin *ret_pin,
                                   const sx_crypto_place *place, const void *plaintext, size_t len)
    __attribute__((warn_unused_result));

/*
 * Decrypt blob for place into out (outcap bytes, at least the plaintext's length, else -ENOBUFS;
 * SX_CRYPTO_VALUE_PLAIN_LEN(bloblen) is always enough). *ret_len gets the plaintext length.
 * SX_CRYPTO_EFORGED when the blob was altered or belongs to another place, including another
 * version: a format-2 blob opens only when place->version is the version it was encrypted for, a
 * format-1 blob only when place->version is 0 or 1. -ENOKEY when its data-key version no longer
 * exists; SX_CRYPTO_EFORMAT for a malformed blob. On failure out's contents are unspecified but
 * hold no plaintext.
 */
int sx_crypto_value_decrypt(sx_crypto *c, void *out, size_t outcap, size_t *ret_len, const sx_crypto_place *place,
                            const uint8_t *blob, size_t bloblen) __attribute__((warn_unused_result));

/* The data-key version a value blob was encrypted under, either format (no key needed).
 * SX_CRYPTO_EFORMAT for a malformed blob. */
int sx_crypto_value_version(uint32_t *ret_version, const uint8_t *blob, size_t bloblen)
    __attribute__((warn_unused_result));

/* The value version a blob's header names (no key needed, not authenticated: decryption checks
 * it): the version of a format-2 blob, 0 for a format-1 blob. SX_CRYPTO_EFORMAT. */
int sx_crypto_value_secret_version(uint32_t *ret_version, const uint8_t *blob, size_t bloblen)
    __attribute__((warn_unused_result));

/* --- system keys ------------------------------------------------------------------------------ */
typedef enum sx_crypto_system_key_id {
    SX_CRYPTO_KEY_TOKEN_HASH = 1, /* key for crypto_generichash of API tokens (auth module) */
    SX_CRYPTO_KEY_AUDIT = 2,      /* key for the audit log's MAC chain */
    SX_CRYPTO_KEY_RECORD = 3,     /* key for the MACs of records that carry authority (derived, FORMAT.md) */
} sx_crypto_system_key_id;

/* A borrowed pointer to the 32-byte system key, in sodium_malloc memory, valid and constant until
 * sx_crypto_free(c). These keys live in the keyring, independent of master rotation. NULL for an
 * unknown id. */
const uint8_t *sx_crypto_system_key(const sx_crypto *c, sx_crypto_system_key_id which);

/* --- record MACs ----------------------------------------------------------------------------- *
 * Records that carry authority but hold no ciphertext (token records, rotation records, the audit
 * chain head) end with a MAC bound to their storage key, so an edit by someone who can write the
 * store but does not hold the keyring is detected. FORMAT.md gives the construction. */
#define SX_CRYPTO_RECORD_MACBYTES 32u

/* Write the MAC of (storage key skey, value val) under mac_key (SX_CRYPTO_KEY_RECORD) to tag. */
void sx_crypto_record_mac(uint8_t tag[SX_CRYPTO_RECORD_MACBYTES], const uint8_t mac_key[SX_CRYPTO_KEYBYTES],
                          const void *skey, size_t sklen, const void *val, size_t vlen);

/* A stored record (body || tag) read at skey: 0 and *ret_body_len = len - SX_CRYPTO_RECORD_MACBYTES
 * when the tag authenticates the body under that key; SX_CRYPTO_EFORGED otherwise (edited, moved
 * to another key, or written without a MAC). */
int sx_crypto_record_check(size_t *ret_body_len, const uint8_t mac_key[SX_CRYPTO_KEYBYTES], const void *skey,
                           size_t sklen, const void *rec, size_t len) __attribute__((warn_unused_result));

/* Whether every authority record of this store has been written with its MAC (a flag inside the
 * sealed keyring, so nobody without the keyring can clear it). A store made before record MACs
 * existed says false until the server has upgraded its records and called _set(). */
bool sx_crypto_records_authenticated(sx_crypto *c);

/* Set that flag (one keyring commit; 0 when it is set already). Errors as sx_crypto_master_add(). */
int sx_crypto_records_authenticated_set(sx_crypto *c) __attribute__((warn_unused_result));

/* --- status ----------------------------------------------------------------------------------- */
typedef struct sx_crypto_master_info {
    uint32_t version;
    uint64_t data_keys; /* wrapped data-key versions (all envs) still under this master */
} sx_crypto_master_info;

typedef struct sx_crypto_status {
    sx_crypto_seal_type seal;
    uint32_t active_master;
    size_t n_masters;
    sx_crypto_master_info masters[SX_CRYPTO_MAX_MASTERS]; /* ascending versions */
    uint64_t data_keys;                                   /* all wrapped data-key versions */
} sx_crypto_status;

/* Fill *ret (reloading the keyring from storage first). Scans every d/ record: operator use only. */
int sx_crypto_status_get(sx_crypto *c, sx_crypto_status *ret) __attribute__((warn_unused_result));

/* The env's active data-key version; -ENOENT when the env has no data key yet. */
int sx_crypto_datakey_active(sx_crypto *c, uint32_t *ret_version, const sx_crypto_place *env)
    __attribute__((warn_unused_result));

/* --- rotation primitives (rotation.c) --------------------------------------------------------- *
 * Each is idempotent so an interrupted rotation resumes by running the same steps again:
 *   master:   master_add(from) -> datakey_rewrap_all() -> master_retire(old)
 *   data key: datakey_rotate(env, from) -> value_reencrypt() for each value -> datakey_destroy(old)
 */

/* Add a master-key version and make it active, unless the active version is no longer from_active
 * (someone - maybe an earlier run of this step - already rotated): then nothing is added. Either
 * way *ret_active gets the active version afterwards. from_active 0 = add unconditionally.
 * SX_CRYPTO_ETOOMANY when the keyring is full. */
int sx_crypto_master_add(sx_crypto *c, uint32_t *ret_active, uint32_t from_active) __attribute__((warn_unused_result));

/* Re-wrap every data-key version of env that is not under the active master; *ret_count (may be
 * NULL) gets how many were re-wrapped by this call. */
int sx_crypto_datakey_rewrap(sx_crypto *c, size_t *ret_count, const sx_crypto_place *env)
    __attribute__((warn_unused_result));

/* The same for every env in the store. */
int sx_crypto_datakey_rewrap_all(sx_crypto *c, size_t *ret_count) __attribute__((warn_unused_result));

/* Remove master version from the keyring. -EBUSY when it is the active version or any data key is
 * still wrapped under it; 0 when it does not exist (already retired). */
int sx_crypto_master_retire(sx_crypto *c, uint32_t version) __attribute__((warn_unused_result));

/* Create a new data-key version for env and make it active, unless the active version is no
 * longer from_active (then nothing is created). *ret_active gets the active version afterwards.
 * from_active 0 = rotate unconditionally (creates the first version of a new env). */
int sx_crypto_datakey_rotate(sx_crypto *c, uint32_t *ret_active, const sx_crypto_place *env, uint32_t from_active)
    __attribute__((warn_unused_result));

/*
 * Data-key rotation step for one value: when blob is not under the env's active data-key version,
 * decrypt it and encrypt it again under the active one: returns 0 and a new malloc'd blob in
 * *ret_blob / *ret_len, which the caller writes with a REV precondition on the record it read.
 * Returns 1 and leaves the outputs alone when the blob already uses the active version.
 *
 * Only the data key changes: the new blob has the old one's format and value version, and so its
 * length. place->version 0 means "the version the blob names"; any other version must be one the
 * blob decrypts for (its own for format 2; 1 for format 1), else SX_CRYPTO_EFORGED before anything
 * is read. A format-1 blob stays format 1 even when place->version is 1: a rotation never makes a
 * stored value unreadable to a binary that knows only format 1, and an upgraded copy would bind
 * nothing the old blob (which stays valid until its data-key version is destroyed) does not.
 */
int sx_crypto_value_reencrypt(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, const sx_crypto_place *place,
                              const uint8_t *blob, size_t bloblen) __attribute__((warn_unused_result));

/* sx_crypto_value_reencrypt(), and on 0 or 1 *ret_pin gets the precondition the caller's write
 * must carry (see sx_crypto_pin): on 1, a write that moves the unchanged blob elsewhere (a restore)
 * needs it too, since it must not commit once a rotation has begun to sweep. */
int sx_crypto_value_reencrypt_pinned(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, sx_crypto_pin *ret_pin,
                                     const sx_crypto_place *place, const uint8_t *blob, size_t bloblen)
    __attribute__((warn_unused_result));

/* Asked by sx_crypto_datakey_destroy(): return 1 when some stored value of env still uses
 * data-key version, 0 when none does, or a negative error. The value records belong to the server. */
typedef int (*sx_crypto_in_use_fn)(void *ctx, const sx_crypto_place *env, uint32_t version);

/* Destroy data-key version of env. -EBUSY when it is the env's active version or in_use() says a
 * value still needs it; 0 when it does not exist (already destroyed). in_use may not be NULL. */
int sx_crypto_datakey_destroy(sx_crypto *c, const sx_crypto_place *env, uint32_t version, sx_crypto_in_use_fn in_use,
                              void *ctx) __attribute__((warn_unused_result));

/* --- walking the hierarchy's records (rotation sweeps, backups) ------------------------------- *
 * The e/ and d/ records are this module's: a rotation engine or a backup walks or counts them
 * through these, never by their storage keys. Callbacks run while a storage iterator is open:
 * they must not write to the store (collect, then act). */

/* Called for each env by sx_crypto_env_each(): env (strings valid for the call only) and its
 * position, an opaque byte string of at most SX_CRYPTO_ENV_POS_MAX bytes, valid for the call, that
 * a later walk may resume after (a rotation engine persists it as its cursor). Return 0 to go on,
 * 1 to stop, or a negative error to stop with it. */
#define SX_CRYPTO_ENV_POS_MAX 256u
typedef int (*sx_crypto_env_fn)(void *ctx, const sx_crypto_place *env, const void *pos, size_t pos_len);

/* Walk the envs that have a data key (their state records) in position order, starting after
 * position after (after_len bytes as handed to fn; NULL / 0 = from the first). A state record
 * whose key does not name a valid env is skipped. 0 (also when fn stopped), fn's error, or a
 * storage error. */
int sx_crypto_env_each(sx_crypto *c, const void *after, size_t after_len, sx_crypto_env_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/* Called for each data-key version by sx_crypto_datakey_each(); returns as sx_crypto_env_fn. */
typedef int (*sx_crypto_version_fn)(void *ctx, uint32_t version);

/* Call fn for each data-key version stored for env, in ascending order: the active one and every
 * older one not destroyed yet. 0 (also when fn stopped), fn's error, a storage error, -EINVAL. */
int sx_crypto_datakey_each(sx_crypto *c, const sx_crypto_place *env, sx_crypto_version_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/* Count this module's per-env records in st: env state records into *ret_envs and wrapped
 * data-key versions into *ret_data_keys (each may be NULL: that kind is not counted). Every
 * record of a kind counts, well-formed or not. Needs no keys, so a backup counts a copy it has
 * not unsealed. 0 or a storage error. */
int sx_crypto_store_count(sx_storage *st, uint64_t *ret_envs, uint64_t *ret_data_keys)
    __attribute__((warn_unused_result));

/* --- key information for operators (keyinfo.c; seal names in seal.c) ------------------------- */

/* "file", "passphrase" or "tpm" ("unknown" for anything else). Static. */
const char *sx_crypto_seal_type_name(sx_crypto_seal_type type);

/* One wrapped data-key version of an environment. */
typedef struct sx_crypto_datakey_info {
    uint32_t version;
    uint32_t master; /* the master version it is wrapped under; 0 when its record is malformed */
} sx_crypto_datakey_info;

/* The wrapped data-key versions of env (name ignored), in version order: at most cap entries into
 * ret[], their number into *ret_n. Reads record headers only, never key material. 0 or a storage
 * error. */
int sx_crypto_datakey_versions(sx_crypto *c, const sx_crypto_place *env, sx_crypto_datakey_info *ret, size_t cap,
                               size_t *ret_n) __attribute__((warn_unused_result));

#ifdef __cplusplus
}
#endif

#endif /* SX_CRYPTO_H */
