/*
 * crypto_internal.h - what the files of the crypto module share, and what its tests reach into.
 *
 * Three groups: the blob formats (format.c; pure functions with an explicit nonce so known-answer
 * tests pin the bytes), the seals (seal_file.c, seal_passphrase.c, seal_tpm.c; each turns options
 * and stored parameters into the 32-byte seal key), and the handle itself (keyring.c, datakey.c).
 * Nothing here is part of the public contract.
 */
#ifndef SX_CRYPTO_INTERNAL_H
#define SX_CRYPTO_INTERNAL_H

#include <pthread.h>
#include <sodium.h>

#include "crypto/crypto.h"
#include "common/bytes.h"

#define SX_FMT_V1       1u
#define SX_NONCEBYTES   crypto_aead_xchacha20poly1305_ietf_NPUBBYTES /* 24 */
#define SX_TAGBYTES     crypto_aead_xchacha20poly1305_ietf_ABYTES    /* 16 */
#define SX_SEAL_IDBYTES 16u
#define SX_SALTBYTES    crypto_pwhash_SALTBYTES /* 16 */

/* Blob sizes (see FORMAT.md). */
#define SX_DATAKEY_BLOB_LEN (1u + 4u + SX_NONCEBYTES + SX_CRYPTO_KEYBYTES + SX_TAGBYTES) /* 77 */
#define SX_KEYRING_HDR_LEN  (1u + SX_NONCEBYTES)
#define SX_RECOVERY_HDR_LEN (1u + 32u + SX_NONCEBYTES)
/* Keyring plaintext: version, install id, recovery public key, two system keys, active, count,
 * then count x (version, key). */
#define SX_KEYRING_PLAIN_MAX                                                                                           \
    (1u + 16u + 32u + 32u + 32u + 4u + 4u + SX_CRYPTO_MAX_MASTERS * (4u + SX_CRYPTO_KEYBYTES) + 1u)
/* Keyring plaintext format 2 = format 1 + a trailing flags byte. */
#define SX_KEYRING_FMT_V2 0x02
/* Flag: every record that carries authority has been written with its MAC (FORMAT.md). */
#define SX_KEYRING_F_RECORD_MACS 0x01
/* The system-key block: token-hash key, audit key, record-MAC key (derived). */
#define SX_SYS_BYTES         96u
#define SX_RECOVERY_RAWBYTES 35u /* 32 key bytes + 3 checksum bytes */

/* Largest associated data we build (labels + 3 x 64 + 256 + headers). */
#define SX_AD_MAX 1024u

/* Room for any storage key or env name this module builds (names are bounded, crypto.h). */
#define SX_KEY_BUF 320
/* Attempts of a conditional write that keeps losing races before it gives up with
 * SX_STORAGE_ECONDITION (data keys, keyring commits). */
#define SX_WRITE_RETRIES          16
#define SX_KEYRING_COMMIT_RETRIES 16

/* --- places and storage keys (format.c) ------------------------------------------------------- */
/* Validate place; with_name also checks name. 0 or -EINVAL. */
int sx_crypto_place_check(const sx_crypto_place *p, bool with_name);
/* "e/o/p/env" into buf (cap >= 256). Returns the length. */
size_t sx_crypto_env_key(char *buf, size_t cap, const sx_crypto_place *p);
/* "d/o/p/env/" (with trailing '/') and "d/o/p/env/%08x". Return the length. */
size_t sx_crypto_dk_prefix(char *buf, size_t cap, const sx_crypto_place *p);
size_t sx_crypto_dk_key(char *buf, size_t cap, const sx_crypto_place *p, uint32_t version);

/* --- blob formats (format.c) ------------------------------------------------------------------ *
 * The _nonce variants take the nonce explicitly (known-answer tests); the others draw it from
 * randombytes_buf(). Open functions return SX_CRYPTO_EFORMAT for a malformed blob and
 * SX_CRYPTO_EFORGED when authentication fails. */

/* A value blob's header: format 1 = fmt | be32 dk_version; format 2 = fmt | be32 dk_version |
 * be32 value version (never 0). */
#define SX_VALUE_FMT_V2     0x02
#define SX_VALUE_HDR_LEN_V1 5u
#define SX_VALUE_HDR_LEN_V2 9u
typedef struct sx_value_hdr {
    uint8_t fmt;         /* SX_FMT_V1 or SX_VALUE_FMT_V2 */
    size_t len;          /* header bytes: SX_VALUE_HDR_LEN_V1 or _V2 */
    size_t plen;         /* plaintext bytes of the blob */
    uint32_t dk_version; /* data-key version */
    uint32_t version;    /* value version; 0 for format 1 */
} sx_value_hdr;
/* Parse a blob's header (nothing authenticated). SX_CRYPTO_EFORMAT for a malformed blob. */
int sx_crypto_value_header(sx_value_hdr *ret, const uint8_t *blob, size_t bloblen);
/* Whether a blob with header h may open at a place of version version: format 2 at its own
 * version only, format 1 at 0 or 1 (a value stored before versions is version 1 of its secret). */
bool sx_crypto_value_version_ok(const sx_value_hdr *h, uint32_t version);

/* Value blob for p (format 1 when p->version is 0, else format 2 bound to it): out must hold
 * SX_CRYPTO_VALUE_BLOB_LEN_V(len, p->version). Open: out must hold the plaintext (see
 * sx_value_hdr.plen); SX_CRYPTO_EFORGED also when sx_crypto_value_version_ok() says no. */
void sx_crypto_value_seal_nonce(uint8_t *out, const uint8_t dk[32], uint32_t dk_version, const sx_crypto_place *p,
                                const void *pt, size_t len, const uint8_t nonce[SX_NONCEBYTES]);
int sx_crypto_value_open_raw(void *out, const uint8_t dk[32], const sx_crypto_place *p, const uint8_t *blob,
                             size_t bloblen);

/* Wrapped data key: out must hold SX_DATAKEY_BLOB_LEN. */
void sx_crypto_datakey_wrap_nonce(uint8_t *out, const uint8_t mk[32], uint32_t mk_version, const sx_crypto_place *env,
                                  uint32_t dk_version, const uint8_t dk[32], const uint8_t nonce[SX_NONCEBYTES]);
void sx_crypto_datakey_wrap(uint8_t *out, const uint8_t mk[32], uint32_t mk_version, const sx_crypto_place *env,
                            uint32_t dk_version, const uint8_t dk[32]);
/* The master version a wrapped data key names (header only). */
int sx_crypto_datakey_master(uint32_t *ret_mk_version, const uint8_t *blob, size_t len);
int sx_crypto_datakey_unwrap(uint8_t dk[32], const uint8_t mk[32], const sx_crypto_place *env, uint32_t dk_version,
                             const uint8_t *blob, size_t len);

/* Sealed keyring: out must hold SX_KEYRING_HDR_LEN + len + SX_TAGBYTES. seal_rec is the s/seal
 * record, bound in the associated data. Open returns SX_CRYPTO_EBADSEAL on authentication failure;
 * out must hold len - SX_KEYRING_HDR_LEN - SX_TAGBYTES bytes. */
void sx_crypto_keyring_seal_nonce(uint8_t *out, const uint8_t sk[32], const uint8_t *seal_rec, size_t seal_len,
                                  const uint8_t *pt, size_t len, const uint8_t nonce[SX_NONCEBYTES]);
int sx_crypto_keyring_open_raw(uint8_t *out, size_t *ret_len, const uint8_t sk[32], const uint8_t *seal_rec,
                               size_t seal_len, const uint8_t *blob, size_t len);

/* Recovery copy of the keyring, encrypted to the recovery X25519 public key with an ephemeral key
 * (eph_sk given explicitly for known answers). out must hold SX_RECOVERY_HDR_LEN + len + 16. */
int sx_crypto_recovery_seal_eph(uint8_t *out, const uint8_t rpk[32], const uint8_t *pt, size_t len,
                                const uint8_t eph_sk[32], const uint8_t nonce[SX_NONCEBYTES]);
int sx_crypto_recovery_seal(uint8_t *out, const uint8_t rpk[32], const uint8_t *pt, size_t len);
int sx_crypto_recovery_open_raw(uint8_t *out, size_t *ret_len, const uint8_t rpk[32], const uint8_t rsk[32],
                                const uint8_t *blob, size_t len);
/* The key that wraps a recovery copy or the recovery slot: BLAKE2b over the X25519 secret of (sk,
 * pk_other) with eph_pk and rpk. SX_CRYPTO_EFORMAT for a low-order point. */
int sx_crypto_recovery_wrap_key(uint8_t key[32], const uint8_t sk[32], const uint8_t pk_other[32],
                                const uint8_t eph_pk[32], const uint8_t rpk[32]);

/* Keyring of format 2, under the keyring key: fmt(0x02) | keyring-key id(16) | nonce | ct+tag.
 * out must hold SX_KEYRING2_HDR_LEN + len + SX_TAGBYTES. Open: SX_CRYPTO_EBADSEAL on
 * authentication failure, out must hold len - SX_KEYRING2_HDR_LEN - SX_TAGBYTES. */
#define SX_KEYRING_BLOB_V2  0x02
#define SX_KKID_BYTES       16u
#define SX_KEYRING2_HDR_LEN (1u + SX_KKID_BYTES + SX_NONCEBYTES)
void sx_crypto_keyring2_seal_nonce(uint8_t *out, const uint8_t kk[32], const uint8_t kkid[SX_KKID_BYTES],
                                   const uint8_t *pt, size_t len, const uint8_t nonce[SX_NONCEBYTES]);
int sx_crypto_keyring2_open_raw(uint8_t *out, size_t *ret_len, const uint8_t kk[32], const uint8_t *blob, size_t len);

/* A slot's wrapped keyring key: hdr (the slot record's header, FORMAT.md) is the associated data;
 * out must hold SX_SLOT_WRAP_LEN. Open: SX_CRYPTO_EBADSEAL on authentication failure. */
#define SX_SLOT_WRAP_LEN (SX_NONCEBYTES + SX_CRYPTO_KEYBYTES + SX_TAGBYTES)
void sx_crypto_slot_wrap_nonce(uint8_t *out, const uint8_t slot_key[32], const uint8_t *hdr, size_t hdrlen,
                               const uint8_t kk[32], const uint8_t nonce[SX_NONCEBYTES]);
int sx_crypto_slot_unwrap(uint8_t kk[32], const uint8_t slot_key[32], const uint8_t *hdr, size_t hdrlen,
                          const uint8_t *wrap);

/* Recovery key text <-> 32 raw bytes; and the X25519 key pair derived from the raw key. */
void sx_crypto_recovery_encode(char out[SX_CRYPTO_RECOVERY_KEY_SIZE], const uint8_t raw[32]);
int sx_crypto_recovery_decode(uint8_t raw[32], const char *text);
void sx_crypto_recovery_keypair(uint8_t pk[32], uint8_t sk[32], const uint8_t raw[32]);

/* --- seals (seal_*.c) ------------------------------------------------------------------------- */
/* Parsed s/seal record. Blobs point into the record buffer they were parsed from. */
typedef struct sx_seal_params {
    sx_crypto_seal_type type;
    uint8_t seal_id[SX_SEAL_IDBYTES];
    uint64_t opslimit, memlimit; /* passphrase */
    uint8_t salt[SX_SALTBYTES];  /* passphrase */
    uint32_t pcrs;               /* tpm */
    const uint8_t *tpm_pub;
    size_t tpm_publen;
    const uint8_t *tpm_priv;
    size_t tpm_privlen;
    bool pin;           /* tpm (slots only): bound to a PIN through PolicyAuthValue */
    uint8_t eph_pk[32]; /* recovery (slots only): the ephemeral X25519 public key */
} sx_seal_params;

/* Encode params into a malloc'd record; decode a record (borrowing blobs from rec). This is the
 * s/seal record of stores made before keyslots (read by the upgrade; tests write it). */
int sx_seal_params_encode(uint8_t **ret, size_t *ret_len, const sx_seal_params *sp);
int sx_seal_params_decode(sx_seal_params *sp, const uint8_t *rec, size_t len);

/* The type-specific part of a seal's parameters: s/seal format (slot false) or a slot's (slot
 * true: a TPM flags byte, the recovery type). _size gives the bytes _put writes, -EINVAL for a
 * type or blob size it cannot encode. _get parses exactly len bytes (borrowing blobs) for
 * sp->type, SX_CRYPTO_EFORMAT. */
int sx_seal_tail_size(size_t *ret, const sx_seal_params *sp, bool slot);
uint8_t *sx_seal_tail_put(uint8_t *p, const sx_seal_params *sp, bool slot);
int sx_seal_tail_get(sx_seal_params *sp, const uint8_t *p, size_t len, bool slot);

/* seal.c: create a new seal of o->type (fresh seal id; TPM blobs malloc'd, released with
 * sx_seal_params_release()) and its key; or unlock stored params with o. key is sodium_malloc'd. */
int sx_seal_create(uint8_t key[32], sx_seal_params *sp, const sx_crypto_seal_options *o, char *err, size_t errlen);
int sx_seal_unlock(uint8_t key[32], const sx_seal_params *sp, const sx_crypto_seal_options *o, char *err,
                   size_t errlen);
void sx_seal_params_release(sx_seal_params *sp);

/* Create a new seal: fill sp (type-specific fields; the caller sets seal_id) and key. TPM blobs in
 * sp are malloc'd by seal_tpm and freed by the caller with free(). */
int sx_seal_file_create(uint8_t key[32], const sx_crypto_seal_options *o, char *err, size_t errlen);
int sx_seal_file_load(uint8_t key[32], const sx_crypto_seal_options *o, char *err, size_t errlen);
int sx_seal_passphrase_create(uint8_t key[32], sx_seal_params *sp, const sx_crypto_seal_options *o, char *err,
                              size_t errlen);
int sx_seal_passphrase_derive(uint8_t key[32], const sx_seal_params *sp, const sx_crypto_seal_options *o, char *err,
                              size_t errlen);
int sx_seal_tpm_create(uint8_t key[32], sx_seal_params *sp, const sx_crypto_seal_options *o, char *err, size_t errlen);
int sx_seal_tpm_unseal(uint8_t key[32], const sx_seal_params *sp, const sx_crypto_seal_options *o, char *err,
                       size_t errlen);

/* --- the data-key cache (cache.c) ------------------------------------------------------------- */
typedef struct sx_dk_cache sx_dk_cache;
typedef struct sx_dk_ref sx_dk_ref; /* a pinned entry */

int sx_dk_cache_new(sx_dk_cache **ret, size_t cap);
void sx_dk_cache_free(sx_dk_cache *c);
/* Find (env key "o/p/env", version) and pin it; *ret_key is valid until sx_dk_cache_unpin(). */
sx_dk_ref *sx_dk_cache_get(sx_dk_cache *c, const char *env, uint32_t version, const uint8_t **ret_key);
/* Insert (or find) and pin; copies key. NULL on -ENOMEM or when every slot is pinned. */
sx_dk_ref *sx_dk_cache_put(sx_dk_cache *c, const char *env, uint32_t version, const uint8_t key[32],
                           const uint8_t **ret_key);
void sx_dk_cache_unpin(sx_dk_cache *c, sx_dk_ref *r);
/* Drop an entry (when unpinned; otherwise it is dropped at unpin). */
void sx_dk_cache_drop(sx_dk_cache *c, const char *env, uint32_t version);

/* Scratch slots of SX_SCRATCH_BYTES in sodium_malloc memory for keys in flight (cache.c). get
 * never fails except on -ENOMEM (NULL): it falls back to sodium_malloc when the pool is busy. put
 * wipes the slot; NULL ok. Thread-safe. */
#define SX_SCRATCH_BYTES 96u
typedef struct sx_scratch sx_scratch;
int sx_scratch_new(sx_scratch **ret);
void sx_scratch_free(sx_scratch *s);
uint8_t *sx_scratch_get(sx_scratch *s);
void sx_scratch_put(sx_scratch *s, uint8_t *p);

/* --- the handle (keyring.c, datakey.c, rotation.c) ---------------------------------------------- *
 * The files call down, never back: keyring.c (the keyring and its master keys) uses neither of the
 * others; datakey.c (data keys and values) uses keyring.c; rotation.c (the rotation primitives)
 * uses both. */
typedef struct sx_master {
    uint32_t version;
    uint8_t key[SX_CRYPTO_KEYBYTES];
} sx_master;

/* All of it sodium_malloc'd: the decoded keyring. */
typedef struct sx_keyring {
    uint8_t install_id[16];
    uint8_t recovery_pk[32];
    uint32_t active;
    uint32_t n;
    sx_master masters[SX_CRYPTO_MAX_MASTERS];
    uint8_t flags; /* SX_KEYRING_F_* */
} sx_keyring;

struct sx_crypto {
    sx_storage *st;
    pthread_rwlock_t lock; /* guards everything below except the cache and sys */
    sx_keyring *kr;        /* sodium_malloc */
    uint8_t *kk;           /* sodium_malloc, 32 bytes: the keyring key */
    uint8_t kkid[SX_KKID_BYTES];
    uint8_t *seal_key; /* sodium_malloc, 32 bytes: the key of this handle's slot (wraps kk) */
    uint32_t slot_id;  /* the slot this handle opened with */
    uint64_t keyring_rev;
    sx_crypto_seal_type seal_type;
    uint8_t *sys; /* sodium_malloc, SX_SYS_BYTES: token-hash, audit and record-MAC keys; constant */
    sx_dk_cache *cache;
    sx_scratch *scratch;
};

/* keyring.c: the entry of version in kr, or NULL. */
const sx_master *sx_crypto_keyring_find(const sx_keyring *kr, uint32_t version);
/* keyring.c: with c->lock held for writing, persist nk (both keyring records) if nobody changed the
 * keyring since this process read it, then adopt it. SX_STORAGE_ECONDITION when somebody did. */
int sx_crypto_keyring_commit(sx_crypto *c, const sx_keyring *nk);
/* keyring.c: change the keyring and persist it, retrying (with a reload) while another process
 * commits first. edit runs with c->lock held for writing on nk, a copy of the current keyring: it
 * returns 0 to commit nk, SX_KEYRING_EDIT_NONE when nothing needs changing, or a negative error. */
#define SX_KEYRING_EDIT_NONE 1
typedef int (*sx_keyring_edit_fn)(void *ctx, sx_keyring *nk);
int sx_crypto_keyring_update(sx_crypto *c, sx_keyring_edit_fn edit, void *ctx);
/* keyring.c: look up master version under the read lock, reloading the keyring from storage once
 * when it is unknown. Copies the key into mk (sodium_malloc'd by the caller). */
int sx_crypto_master_get(sx_crypto *c, uint8_t mk[32], uint32_t version);
/* The active master (version and key copy) plus the keyring revision it belongs to. */
int sx_crypto_master_active(sx_crypto *c, uint8_t mk[32], uint32_t *ret_version, uint64_t *ret_keyring_rev);
/* Reload the keyring from storage (write lock). */
int sx_crypto_keyring_reload(sx_crypto *c);

/* datakey.c: "org/project/env" (what snprintf("%s/%s/%s") writes, truncated to cap): the name of
 * env in the data-key cache. */
void sx_crypto_env_name(char *buf, size_t cap, const sx_crypto_place *p);

/* datakey.c: the env's state record (e/), as read. */
typedef struct sx_env_state {
    uint32_t active; /* 0 = no data key yet */
    uint64_t rev;    /* 0 = record absent */
} sx_env_state;
int sx_crypto_env_state_read(sx_crypto *c, const sx_crypto_place *env, sx_env_state *es);

/* datakey.c: make sure env has a data key (ENSURE), or add a version if the active one is still
 * from (FROM; from 0 = unconditionally). *ret_active gets the active version afterwards, *ret_rev
 * (may be NULL) the revision of the env's state record that names it. The new key goes into the
 * cache. */
typedef enum sx_advance_mode { SX_ADVANCE_ENSURE, SX_ADVANCE_FROM } sx_advance_mode;
int sx_crypto_env_advance(sx_crypto *c, uint32_t *ret_active, uint64_t *ret_rev, const sx_crypto_place *env,
                          sx_advance_mode mode, uint32_t from);

/* datakey.c: call fn for every wrapped data key under prefix ("d/" = the whole store; key
 * "d/o/p/env/ver" and the master version it names). fn returns 0 to go on or a negative error to
 * stop with it. */
typedef int (*sx_crypto_scan_fn)(void *ctx, const char *key, size_t klen, uint32_t mk_version);
int sx_crypto_scan_datakeys(sx_crypto *c, const char *prefix, sx_crypto_scan_fn fn, void *ctx);

#define SX_KEY_S_SEAL      "s/seal" /* before keyslots; removed by the upgrade */
#define SX_KEY_S_KEYRING   "s/keyring"
#define SX_KEY_S_RECOVERY  "s/keyring.recovery" /* before keyslots; removed by the upgrade */
#define SX_KEY_SLOT_PREFIX "s/slot/"
#define SX_KEY_SLOT_USED   "s/slot.used/"
#define SX_SLOT_KEY_BUF    32
/* The records initialisation writes: the recovery slot and the first node's slot. */
#define SX_KEY_SLOT_RECOVERY "s/slot/00000000"
#define SX_KEY_SLOT_FIRST    "s/slot/00000001"

/* --- keyslots (slot.c) -------------------------------------------------------------------------- */
/* keyring.c: encode kr (and the system keys) and encrypt it under kk into a malloc'd s/keyring blob. */
int sx_crypto_keyring_blob(uint8_t **ret, size_t *ret_len, const sx_keyring *kr, const uint8_t *sys, const uint8_t *kk,
                           const uint8_t kkid[SX_KKID_BYTES]);
/* keyring.c: decrypt an s/keyring blob with kk into kr (and sys when not NULL). */
int sx_crypto_keyring_unseal(sx_keyring *kr, uint8_t *sys, const uint8_t *kk, const uint8_t *blob, size_t len);

/* A stored slot record, parsed (pointers into rec). */
typedef struct sx_slot {
    uint32_t id;
    sx_crypto_seal_type type;
    int64_t created;
    uint8_t kkid[SX_KKID_BYTES];
    char label[SX_CRYPTO_SLOT_LABEL_MAX + 1];
    sx_seal_params sp; /* type-specific parameters (blobs borrowed from rec) */
    const uint8_t *rec;
    size_t hdrlen; /* header bytes (the AD); the wrap follows */
    size_t len;
    uint64_t rev;
} sx_slot;

/* "s/slot/%08x" into buf (SX_SLOT_KEY_BUF); returns the length. */
size_t sx_slot_key(char *buf, uint32_t id);
/* Parse a slot record stored under id. SX_CRYPTO_EFORMAT when malformed or when its id differs. */
int sx_slot_parse(sx_slot *s, uint32_t id, const uint8_t *rec, size_t len);
/* A malloc'd slot record: header from the arguments, the keyring key wrapped under slot_key. */
int sx_slot_build(uint8_t **ret, size_t *ret_len, uint32_t id, int64_t created, const char *label,
                  const sx_seal_params *sp, const uint8_t kkid[SX_KKID_BYTES], const uint8_t *slot_key,
                  const uint8_t *kk);
/* The recovery slot for recovery public key rpk (a fresh ephemeral key). */
int sx_slot_build_recovery(uint8_t **ret, size_t *ret_len, int64_t created, const uint8_t rpk[32],
                           const uint8_t kkid[SX_KKID_BYTES], const uint8_t *kk);
/* Unwrap the keyring key of a parsed slot with slot_key into kk. SX_CRYPTO_EBADSEAL. */
int sx_slot_open(uint8_t *kk, const sx_slot *s, const uint8_t *slot_key);

/* Every slot record of st: a malloc'd array of *ret_n parsed slots whose records are malloc'd too
 * (free with sx_slots_free). A malformed record is SX_CRYPTO_EFORMAT. */
int sx_slots_read(sx_storage *st, sx_slot **ret, size_t *ret_n);
void sx_slots_free(sx_slot *s, size_t n);

/* keyring.c: the keyring plaintext (FORMAT.md); decode fills sys (when not NULL) with the system
 * keys, deriving the record-MAC key. */
size_t sx_crypto_keyring_encode(uint8_t *out, const sx_keyring *kr, const uint8_t *sys);
int sx_crypto_keyring_decode(sx_keyring *kr, uint8_t *sys, const uint8_t *pt, size_t len);
void sx_crypto_sys_derive(uint8_t *sys);
/* keyring.c: an empty handle on st (keys in sodium_malloc memory, all zero). */
int sx_crypto_handle_new(sx_crypto **ret, sx_storage *st, const sx_crypto_options *opt);

/* upgrade.c: open a store of the one-seal format (s/seal, s/keyring of format 1,
 * s/keyring.recovery) with opt->seal, or with the recovery key kp (raw key, public, secret; a new
 * slot for opt->seal is made then), and rewrite it as keyslots in one batch. 1 when another process
 * changed the records meanwhile (the caller reads them again). */
int sx_crypto_legacy_open(sx_crypto *c, const sx_crypto_options *opt, const uint8_t *kp, char *err, size_t errlen);

/* slot.c: write the records a store starts with - s/keyring of c->kr under a new keyring key (put
 * at keyring_rev, 0 = absent), the recovery slot and slot 1 (labelled label) for sp under
 * c->seal_key, both absent-only - together with the caller's extra ops (at most 4: preconditions,
 * deletions) in one batch. 1 when a precondition failed (another process was first). On success
 * the handle has opened with slot 1. */
int sx_crypto_first_slots_commit(sx_crypto *c, const sx_seal_params *sp, const char *label, uint64_t keyring_rev,
                                 const sx_storage_op *extra, size_t nextra);

/* slot.c: open the keyring from the slots (called by sx_crypto_open for a store with slots). */
int sx_crypto_slots_unlock(sx_crypto *c, const sx_crypto_options *opt, char *err, size_t errlen);
/* slot.c: the recovery key path: unwrap kk from the recovery slot (kp = raw key, pk, sk). */
int sx_crypto_slots_recover(sx_crypto *c, const uint8_t *kp, const sx_crypto_options *opt, char *err, size_t errlen);

#endif /* SX_CRYPTO_INTERNAL_H */
