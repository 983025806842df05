/*
 * secrets.h - the product's domain: secrets, their metadata and their values, as records and as
 * transactions. No HTTP here: every function returns 0 or a code, and the server decides what a
 * code means to a client.
 *
 * Records (this module is the one owner of their layout; storage/LAYOUT.md lists every prefix):
 *     m/{org}/{project}/{env}/{name}   the metadata record (format below, record.c)
 *     v/{org}/{project}/{env}/{name}   the current value's ciphertext blob (crypto/FORMAT.md)
 *     h/{org}/{project}/{env}/{name}/{%08x version}   a previous version (record.c)
 *     n/{org}/{project}/{env}/{name}   the last version number given out for the name
 * Names and scopes can only hold [A-Za-z0-9._-], so '/' separates them unambiguously and the
 * prefix "m/{org}/{project}/{env}/" lists exactly one environment. The data-key records of an
 * environment (e/, d/) belong to crypto/.
 *
 * Transactions: a write reads the metadata record, checks the caller's precondition and writes
 * with one atomic conditional batch, the metadata and the value record together, conditioned on
 * the revision it read; when another writer got in between it reads again and retries. So a value
 * set concurrently with a delete is either deleted with it or refused, never left behind a
 * deleted name. Reads are plain storage reads (served from caches; no batch).
 *
 * Errors: 0, -ENOENT (no such secret), -EEXIST (create: the name is taken), -EBADMSG (a stored
 * record is malformed), a storage code, or one of SX_SECRETS_E* (reserved range -1400 .. -1499,
 * common/errors.h; sx_strerror() gives their sentences). ret_ out-parameters are written only on
 * success.
 *
 * Plaintext values pass through here only as borrowed buffers: a set-value encrypts the caller's
 * plaintext (crypto/ copies nothing outside its wiped temporaries), a decrypt writes into the
 * caller's buffer. Wiping those buffers is the caller's duty.
 *
 * Threads: every function may be called from any thread. The reads (get, list, reveal, values)
 * are cheap enough for an event loop; the writes fsync and belong on a worker pool.
 */
#ifndef SX_SECRETS_H
#define SX_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "crypto/crypto.h"
#include "storage/storage.h"

/* ---- sizes and places -------------------------------------------------------------------------- */

#define SX_SECRETS_SCOPE_MAX       64u   /* org, project, env: 1-64 characters */
#define SX_SECRETS_NAME_MAX        256u  /* a secret's name: 1-256 characters */
#define SX_SECRETS_DESCRIPTION_MAX 1024u /* bytes of UTF-8 */

/* Where a secret lives: copies of the path's parameters, NUL-terminated. name is "" for an
 * environment (the prefix of list and values). */
typedef struct sx_secrets_place {
    char org[SX_SECRETS_SCOPE_MAX + 1];
    char project[SX_SECRETS_SCOPE_MAX + 1];
    char env[SX_SECRETS_SCOPE_MAX + 1];
    char name[SX_SECRETS_NAME_MAX + 1];
} sx_secrets_place;

/* The same place as crypto/ takes it; the pointers borrow p's strings (valid while p is). */
static inline sx_crypto_place sx_secrets_crypto_place(const sx_secrets_place *p)
{
    return (sx_crypto_place){p->org, p->project, p->env, p->name, 0};
}
/* The same, for version of p's value. */
static inline sx_crypto_place sx_secrets_crypto_place_v(const sx_secrets_place *p, uint32_t version)
{
    return (sx_crypto_place){p->org, p->project, p->env, p->name, version};
}

/* True when s (len bytes) is a valid secret name: 1-256 characters of [A-Za-z0-9._-], not "." or
 * "..". */
bool sx_secrets_name_valid(const char *s, size_t len);

/* ---- the metadata record (record.c) -------------------------------------------------------------- */

typedef struct sx_secret_meta {
    int64_t created_ms;
    int64_t updated_ms;
    uint32_t version;         /* the current value's version (1, 2, ...); 0 = no value */
    int64_t value_created_ms; /* when the current version was written (0 = no value) */
    bool has_value;
    bool has_description; /* false = null */
    size_t description_len;
    char description[SX_SECRETS_DESCRIPTION_MAX + 1];
} sx_secret_meta;

/* Encode into buf (at least SX_META_MAX bytes); returns the length. A record without a version
 * (no value was ever set) keeps format 1; one with a version is format 2. */
#define SX_META_MAX (32 + SX_SECRETS_DESCRIPTION_MAX)
size_t sx_meta_encode(const sx_secret_meta *m, uint8_t *buf);
/* Decode (the description NUL-terminated in m); -EBADMSG when malformed. */
int sx_meta_decode(sx_secret_meta *m, const uint8_t *buf, size_t len);

/* The same record decoded in place: description points into buf (not NUL-terminated) and is
 * valid as long as buf is. For reads, where copying every description would be wasted work. */
typedef struct sx_secret_meta_view {
    int64_t created_ms;
    int64_t updated_ms;
    uint32_t version;
    int64_t value_created_ms;
    bool has_value;
    bool has_description;
    size_t description_len;
    const char *description;
} sx_secret_meta_view;
int sx_meta_view(sx_secret_meta_view *m, const uint8_t *buf, size_t len);

/* The view of a decoded record (pointers into m, valid while m is). */
void sx_meta_view_of(sx_secret_meta_view *v, const sx_secret_meta *m);

/* ---- storage keys (record.c) --------------------------------------------------------------------- */

typedef enum sx_secrets_record {
    SX_SECRETS_RECORD_META = 'm',  /* m/{org}/{project}/{env}/{name} */
    SX_SECRETS_RECORD_VALUE = 'v', /* v/{org}/{project}/{env}/{name} */
    /* h/{org}/{project}/{env}/{name}/{%08x version}: a previous version (history record below) */
    SX_SECRETS_RECORD_HISTORY = 'h',
    /* n/{org}/{project}/{env}/{name}: the last version number given out for the name; outlives
     * a delete of the secret, so a version number is never given out twice */
    SX_SECRETS_RECORD_COUNTER = 'n',
    /* b/{org}/{project}/{env}/{name}: a deleted secret kept for its recovery window (below) */
    SX_SECRETS_RECORD_TRASH = 'b',
    /* x/{org}/{project}/{env}/{name}/{%08x version}: the versions of a deleted secret, history
     * records (its current version's too) */
    SX_SECRETS_RECORD_TRASHED_VERSION = 'x',
} sx_secrets_record;

/* Longest key, with its NUL (a history key is the longest: "/{%08x}" after the name). */
#define SX_SECRETS_KEY_MAX (2 + 3 * (SX_SECRETS_SCOPE_MAX + 1) + SX_SECRETS_NAME_MAX + 9 + 1 + 1)

/* Most versions kept of one secret (the current one and its history), and the default. */
#define SX_SECRETS_MAX_VERSIONS_LIMIT   1000u
#define SX_SECRETS_MAX_VERSIONS_DEFAULT 10u

/* The key of version of p in the history; version 0 gives the prefix of all of p's history
 * "h/{org}/{project}/{env}/{name}/". Returns the length. */
size_t sx_secrets_history_key(char *buf, const sx_secrets_place *p, uint32_t version);
/* The same for the records of kind h or x. */
size_t sx_secrets_version_key(char *buf, sx_secrets_record kind, const sx_secrets_place *p, uint32_t version);
/* The place named by a key of kind whose four parts follow "{kind}/" (m/, v/, n/ or b/). -EBADMSG. */
int sx_secrets_key_parse(const char *key, size_t len, sx_secrets_record kind, sx_secrets_place *ret);
/* A history key's tail after the env's prefix ("{name}/{%08x}", len bytes): the name (copied,
 * NUL-terminated, into name of SX_SECRETS_NAME_MAX + 1 bytes) and the version. -EBADMSG. */
int sx_secrets_history_key_parse(const char *tail, size_t len, char *name, uint32_t *ret_version);

/* A history record: the version's createdAt and its ciphertext, or no ciphertext once destroyed
 * (a tombstone, kept until the version leaves the max_versions window). */
typedef struct sx_secrets_history_view {
    int64_t created_ms;
    bool destroyed;
    const uint8_t *blob; /* into the record; NULL when destroyed */
    size_t blob_len;
} sx_secrets_history_view;
/* Decode a history record in place. 0 or -EBADMSG. */
int sx_secrets_history_view_of(sx_secrets_history_view *h, const uint8_t *rec, size_t len);
/* Encode a history record (blob NULL = a tombstone) into a malloc'd buffer. 0 or -ENOMEM. */
int sx_secrets_history_encode(int64_t created_ms, const uint8_t *blob, size_t blob_len, uint8_t **ret_rec,
                              size_t *ret_len) __attribute__((warn_unused_result));

/* A deleted secret's record: when it was deleted, when the sweeper may purge it, how many versions
 * with a value it keeps, and the metadata record it had (meta points into the record). */
typedef struct sx_secrets_trash_view {
    int64_t deleted_ms;
    int64_t purge_ms;
    uint32_t versions;
    const uint8_t *meta;
    size_t meta_len;
} sx_secrets_trash_view;
/* Decode a deleted-secret record in place (its metadata checked too). 0 or -EBADMSG. */
int sx_secrets_trash_view_of(sx_secrets_trash_view *t, const uint8_t *rec, size_t len);
/* Encode t into a malloc'd record. 0 or -ENOMEM. */
int sx_secrets_trash_encode(const sx_secrets_trash_view *t, uint8_t **ret_rec, size_t *ret_len)
    __attribute__((warn_unused_result));

/* A name's counter record: the last version given out, and the pruned mark (every history
 * record at or below it is gone, so a write prunes only what is above it). */
typedef struct sx_secrets_counter {
    uint32_t last;
    uint32_t pruned;
} sx_secrets_counter;
#define SX_SECRETS_COUNTER_LEN 9
/* Decode a counter record (either format). 0 or -EBADMSG. */
int sx_secrets_counter_decode(sx_secrets_counter *cnt, const uint8_t *rec, size_t len);
/* Encode cnt in the current format into out. */
void sx_secrets_counter_encode(const sx_secrets_counter *cnt, uint8_t out[SX_SECRETS_COUNTER_LEN]);

/* Write the key of kind for p into buf (SX_SECRETS_KEY_MAX bytes), NUL-terminated; returns its
 * length. With p->name "" it is the environment's prefix "m/{org}/{project}/{env}/". */
size_t sx_secrets_key_build(char *buf, sx_secrets_record kind, const sx_secrets_place *p);
/* The same prefix "{kind}/{org}/{project}/{env}/" for an env named as crypto/ names it (env->name
 * ignored), for a walk over every record of one kind of the env (a rotation's value sweep). */
size_t sx_secrets_env_prefix(char *buf, sx_secrets_record kind, const sx_crypto_place *env);
/* Count the secrets (metadata records) and the values stored in st, every env together (each
 * pointer may be NULL: that kind is not counted). 0 or a storage code. */
int sx_secrets_store_count(sx_storage *st, uint64_t *ret_secrets, uint64_t *ret_values)
    __attribute__((warn_unused_result));

/* ---- what a transaction works on ----------------------------------------------------------------- */

/* The storage calls a transaction times, for the caller's metrics. */
typedef enum sx_secrets_io {
    SX_SECRETS_IO_GET = 0,   /* a metadata read of get and reveal */
    SX_SECRETS_IO_LIST = 1,  /* a list's scan, from its start to its close */
    SX_SECRETS_IO_BATCH = 2, /* a write's batch */
} sx_secrets_io;

/* Borrowed by every call; the store and the keys must outlive it. */
typedef struct sx_secrets_ctx {
    sx_storage *storage;
    sx_crypto *crypto;
    /* told how long each timed storage call took (on the calling thread); NULL = not timed */
    void (*timed)(void *arg, sx_secrets_io io, uint64_t ns);
    void *timed_arg;
    /* versions kept of each secret, the current one included (1 = no history); 0 = the default */
    unsigned max_versions;
    /* seconds a deleted secret stays restorable; 0 = a delete destroys it at once */
    unsigned recovery_window;
    /* told (on the writing thread) after a write deleted ciphertext of p's env - a destroyed or
     * pruned version, a purged deleted secret, a delete without a recovery window - so that the
     * store can be made to drop it from its files; NULL = nobody is told */
    void (*destroyed)(void *arg, const sx_secrets_place *p);
    void *destroyed_arg;
} sx_secrets_ctx;

/* A precondition on the revision a write finds: the write goes on only when rev_ok(arg, rev) says
 * true (an If-Match). Called on the writing thread, once per attempt. */
typedef struct sx_secrets_cond {
    bool (*rev_ok)(void *arg, uint64_t rev);
    void *arg;
} sx_secrets_cond;

/* ---- reads (secrets.c) --------------------------------------------------------------------------- */

/* Read p's metadata record in place: *ret_raw gets the stored bytes (free with sx_storage_free())
 * and *ret_meta points into them. 0, -ENOENT, -EBADMSG or a storage code. */
int sx_secrets_get(const sx_secrets_ctx *c, const sx_secrets_place *p, void **ret_raw, sx_secret_meta_view *ret_meta,
                   uint64_t *ret_rev) __attribute__((warn_unused_result));

/*
 * Content tags: a short digest that names what a read returned without holding the values, so that
 * equal tags mean equal answers (the server makes ETags of them). A tag is a keyless BLAKE2b
 * (libsodium's crypto_generichash) over a label of its kind, the place's org, project and env (and
 * name) and the version of each value, so the tags of two secrets or of two envs never meet. A
 * value's version number names its plaintext: it is given out once per name (the n/ counter
 * outlives a delete), and re-encrypting a value under a new key keeps it. Not secret material: a
 * tag tells nothing a caller with the read permission could not list.
 */
#define SX_SECRETS_TAG_LEN       16u  /* bytes of a content tag */
#define SX_SECRETS_TAG_STATE_MAX 384u /* room for a crypto_generichash_state inside a scan */

/* The tag of version of p's value (p's org, project, env and name). */
void sx_secrets_version_tag(const sx_secrets_place *p, uint32_t version, uint8_t ret_tag[SX_SECRETS_TAG_LEN]);

/* A scan of one environment, by name: its metadata records (list) or its value records (values).
 * Lives on the caller's stack; what _next returns is valid until the next call or the close. */
typedef struct sx_secrets_scan {
    const sx_secrets_ctx *c;
    sx_secrets_record kind;
    sx_storage_iter *it;
    size_t prefix_len;
    uint64_t t0;
    sx_crypto_place place;              /* values: the current record's place */
    char name[SX_SECRETS_NAME_MAX + 1]; /* values: the current name */
    const uint8_t *blob;                /* values: the current ciphertext */
    size_t blob_len;
    /* values: the env's metadata records walked alongside, for the version of each value */
    sx_storage_iter *meta_it;
    char meta_name[SX_SECRETS_NAME_MAX + 1]; /* the last one read ("" = none yet) */
    size_t meta_namelen;
    uint32_t meta_version;
    bool meta_done;
    void *reread; /* values: the current ciphertext when it was read again (sx_storage_free) */
    /* values: the content tag of what _next returned so far (a crypto_generichash_state) */
    _Alignas(64) unsigned char tag_state[SX_SECRETS_TAG_STATE_MAX];
} sx_secrets_scan;

/* Scan env's secrets (env->name ignored) in name order, after the name after (NULL or "" = from
 * the first). 0 or a storage code; on 0 close it with sx_secrets_scan_close(). */
int sx_secrets_list_open(sx_secrets_scan *s, const sx_secrets_ctx *c, const sx_secrets_place *env, const char *after)
    __attribute__((warn_unused_result));
/* The next secret: its name (not NUL-terminated, *ret_namelen bytes) and its metadata in place.
 * 0, SX_STORAGE_DONE at the end, -EBADMSG for a malformed record, or a storage code. */
int sx_secrets_list_next(sx_secrets_scan *s, const char **ret_name, size_t *ret_namelen, sx_secret_meta_view *ret_meta)
    __attribute__((warn_unused_result));

/* The scopes that hold secrets below a place, in name order, each once: with project NULL the
 * projects of org, otherwise the envs of org/project. fn gets each name (len bytes, not
 * NUL-terminated, valid during the call); its nonzero return stops the walk and is returned. One
 * storage seek per name given, not one read per secret. 0, -EINVAL (a name that is not a scope
 * name), -EBADMSG or a storage code. */
int sx_secrets_scopes(const sx_secrets_ctx *c, const char *org, const char *project,
                      int (*fn)(void *arg, const char *name, size_t len), void *arg)
    __attribute__((warn_unused_result));

/* Scan env's values (env->name ignored) in name order. 0 or a storage code; on 0 close it. */
int sx_secrets_values_open(sx_secrets_scan *s, const sx_secrets_ctx *c, const sx_secrets_place *env)
    __attribute__((warn_unused_result));
/* The next value: its name (NUL-terminated, in s) and the length of its ciphertext, which
 * SX_CRYPTO_VALUE_PLAIN_LEN() turns into the room its plaintext needs. 0, SX_STORAGE_DONE,
 * -EBADMSG for a malformed key, or a storage code. */
int sx_secrets_values_next(sx_secrets_scan *s, const char **ret_name, size_t *ret_namelen, size_t *ret_blob_len)
    __attribute__((warn_unused_result));
/* The content tag of the values map the scan returned: the env and each value's (name, version), in
 * name order. Call it once, after _next returned SX_STORAGE_DONE (earlier it names only the values
 * returned so far). Two scans with equal tags returned the same names with the same plaintexts. */
void sx_secrets_values_tag(sx_secrets_scan *s, uint8_t ret_tag[SX_SECRETS_TAG_LEN]);
/* The content tag env's values map has now (what sx_secrets_values_tag() would give after a full
 * scan), from the metadata records alone: no ciphertext is read or decrypted. For a conditional
 * read that may need no values. 0 or a code of sx_secrets_list_open() and _next(). */
int sx_secrets_values_tag_now(const sx_secrets_ctx *c, const sx_secrets_place *env, uint8_t ret_tag[SX_SECRETS_TAG_LEN])
    __attribute__((warn_unused_result));
/* Decrypt the current value into out (outcap bytes). 0; SX_SECRETS_EUNREADABLE when the blob fails
 * authentication or its format; other codes (a data key that cannot be read, -ENOKEY when its
 * version was destroyed, -EBADMSG) pass through as they are. */
int sx_secrets_values_decrypt(sx_secrets_scan *s, void *out, size_t outcap, size_t *ret_len)
    __attribute__((warn_unused_result));

/* End a scan: frees the iterator and reports a list's time (SX_SECRETS_IO_LIST). */
void sx_secrets_scan_close(sx_secrets_scan *s);

/*
 * Read p's value with the revision and update time of the metadata it belongs to. Metadata and
 * value are two records that every set-value writes in one batch: read the metadata, the value,
 * then the metadata again; when the revision did not move no write came in between, so the value
 * is the one of that revision, otherwise read again. *ret_blob is the ciphertext (free with
 * sx_storage_free()). 0; SX_SECRETS_ENOVALUE when there is no such secret or it has no value;
 * SX_SECRETS_ECONTENTION when writers kept moving the revision; -EBADMSG or a storage code.
 * *ret_version is the value's version (decrypt with sx_secrets_value_decrypt_v()).
 */
int sx_secrets_reveal(const sx_secrets_ctx *c, const sx_secrets_place *p, void **ret_blob, size_t *ret_blob_len,
                      uint64_t *ret_rev, int64_t *ret_updated_ms, uint32_t *ret_version)
    __attribute__((warn_unused_result));
/* Decrypt a revealed blob into out (outcap bytes, at least SX_CRYPTO_VALUE_PLAIN_LEN(blob_len)).
 * 0; SX_SECRETS_EUNREADABLE when the blob is broken, moved, or its data key gone; a storage code
 * when the data key could not be read. */
int sx_secrets_value_decrypt(const sx_secrets_ctx *c, const sx_secrets_place *p, const void *blob, size_t blob_len,
                             void *out, size_t outcap, size_t *ret_len) __attribute__((warn_unused_result));

/* ---- versions (secrets.c) ------------------------------------------------------------------------ */

typedef enum sx_secrets_version_state {
    SX_SECRETS_VERSION_CURRENT = 0,
    SX_SECRETS_VERSION_PREVIOUS = 1,
    SX_SECRETS_VERSION_DESTROYED = 2,
} sx_secrets_version_state;

typedef struct sx_secrets_version {
    uint32_t version;
    int64_t created_ms;
    sx_secrets_version_state state;
} sx_secrets_version;

/* p's versions, newest first: the current one and the history kept. *ret_list is malloc'd (free()
 * it; NULL when *ret_n is 0). 0, -ENOENT (no such secret), SX_SECRETS_ECONTENTION, -EBADMSG or a
 * storage code. */
int sx_secrets_versions(const sx_secrets_ctx *c, const sx_secrets_place *p, sx_secrets_version **ret_list,
                        size_t *ret_n) __attribute__((warn_unused_result));
/* Read version of p's value (the current one or one from the history): its ciphertext (free with
 * sx_storage_free()), its createdAt and the secret's revision. Decrypt with
 * sx_secrets_value_decrypt_v(). 0, -ENOENT (no such secret), SX_SECRETS_ENOVERSION (never was,
 * destroyed, or pruned), SX_SECRETS_ECONTENTION, -EBADMSG or a storage code. */
int sx_secrets_reveal_version(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version, void **ret_blob,
                              size_t *ret_blob_len, uint64_t *ret_rev, int64_t *ret_created_ms)
    __attribute__((warn_unused_result));
/* sx_secrets_value_decrypt() of a blob of that version of p's value. */
int sx_secrets_value_decrypt_v(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version, const void *blob,
                               size_t blob_len, void *out, size_t outcap, size_t *ret_len)
    __attribute__((warn_unused_result));
/* The version of the value the v/ record of place holds now (0 when the secret has none), for a
 * rotation's re-encryption of that record (read it after the record). 0 or a storage code. */
int sx_secrets_current_version(sx_storage *st, const sx_crypto_place *place, uint32_t *ret_version)
    __attribute__((warn_unused_result));

/* ---- writes (secrets.c) -------------------------------------------------------------------------- */

/* Create p with a description (NULL = null; at most SX_SECRETS_DESCRIPTION_MAX bytes) and no
 * value. A stale value record of the name is removed in the same batch. *ret_meta and *ret_rev get
 * the new record. 0, -EEXIST, or a storage code. */
int sx_secrets_create(const sx_secrets_ctx *c, const sx_secrets_place *p, const char *description, size_t len,
                      sx_secret_meta *ret_meta, uint64_t *ret_rev) __attribute__((warn_unused_result));
/* Replace p's description (NULL = null). cond may be NULL. 0, -ENOENT, SX_SECRETS_EPRECONDITION,
 * SX_SECRETS_ECONTENTION, -EBADMSG or a storage code. */
int sx_secrets_update(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                      const char *description, size_t len, sx_secret_meta *ret_meta, uint64_t *ret_rev)
    __attribute__((warn_unused_result));
/* Delete p. With a recovery window, p, its value and its history move in one batch to a deleted
 * secret's records (replacing, and destroying, an older deleted copy of the name); without one they
 * are deleted. The version counter stays either way. cond may be NULL. Codes as
 * sx_secrets_update(). */
int sx_secrets_delete(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond)
    __attribute__((warn_unused_result));
/* Encrypt value (len bytes of plaintext, borrowed) for p and store it with p's metadata. The batch
 * also checks the env's data-key state at the revision the value was encrypted under, so a
 * data-key rotation that began meanwhile makes the write encrypt again rather than store a value
 * under a key about to be destroyed. Codes as sx_secrets_update(), and SX_SECRETS_EENCRYPT. */
int sx_secrets_set_value(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                         const void *value, size_t len, sx_secret_meta *ret_meta, uint64_t *ret_rev)
    __attribute__((warn_unused_result));

/* Store version of p's value again as a new current version (decrypted and encrypted anew), like
 * a set-value. Codes as sx_secrets_set_value(), and SX_SECRETS_ENOVERSION, SX_SECRETS_EUNREADABLE. */
int sx_secrets_rollback(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                        uint32_t version, sx_secret_meta *ret_meta, uint64_t *ret_rev)
    __attribute__((warn_unused_result));
/* Destroy version of p's value: its ciphertext is deleted, a tombstone says it was. 0, -ENOENT,
 * SX_SECRETS_ENOVERSION (never was, already destroyed or pruned), SX_SECRETS_ECURRENT,
 * SX_SECRETS_ECONTENTION, -EBADMSG or a storage code. */
int sx_secrets_version_destroy(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version)
    __attribute__((warn_unused_result));

/* ---- deleted secrets (trash.c) -------------------------------------------------------------------- */

/* A deleted secret as listed: its name, when it was deleted, when it may be purged, how many
 * versions with a value it keeps, the version that was current when it was deleted (0 = it had no
 * value) with that version's createdAt, and the secret's own createdAt. */
typedef struct sx_secrets_deleted {
    char name[SX_SECRETS_NAME_MAX + 1];
    int64_t deleted_ms;
    int64_t purge_ms;
    uint32_t versions;
    uint32_t version;
    int64_t value_created_ms;
    int64_t created_ms;
} sx_secrets_deleted;

/* The deleted secrets of env (env->name ignored), by name. *ret_list is malloc'd (free() it; NULL
 * when *ret_n is 0). 0, -EBADMSG or a storage code. */
int sx_secrets_deleted_list(const sx_secrets_ctx *c, const sx_secrets_place *env, sx_secrets_deleted **ret_list,
                            size_t *ret_n) __attribute__((warn_unused_result));
/* The deleted secret p, as the list gives it, and the revision of its record (ret_rev may be NULL).
 * 0, SX_SECRETS_ENOTDELETED, -EBADMSG or a storage code. */
int sx_secrets_deleted_get(const sx_secrets_ctx *c, const sx_secrets_place *p, sx_secrets_deleted *ret,
                           uint64_t *ret_rev) __attribute__((warn_unused_result));
/* The versions the deleted secret p keeps, newest first, as sx_secrets_versions() lists a live
 * secret's (the version it was deleted at is the CURRENT one). *ret_list is malloc'd (free() it; NULL
 * when *ret_n is 0). 0, SX_SECRETS_ENOTDELETED, SX_SECRETS_ECONTENTION, -EBADMSG or a storage code. */
int sx_secrets_deleted_history(const sx_secrets_ctx *c, const sx_secrets_place *p, sx_secrets_version **ret_list,
                               size_t *ret_n) __attribute__((warn_unused_result));
/* Bring the deleted secret p back with every version it kept (its updatedAt becomes now). A value
 * not under the env's active data key is encrypted again under it, and the batch carries the
 * key-state pin, so a restore never outlives a rotation's sweep. *ret_meta and *ret_rev get the
 * restored record. 0, SX_SECRETS_ENOTDELETED, SX_SECRETS_ELIVE (p exists again),
 * SX_SECRETS_ECONTENTION, SX_SECRETS_EUNREADABLE, -EBADMSG or a storage code. */
int sx_secrets_restore(const sx_secrets_ctx *c, const sx_secrets_place *p, sx_secret_meta *ret_meta, uint64_t *ret_rev)
    __attribute__((warn_unused_result));
/* Destroy the deleted secret p now. 0, SX_SECRETS_ENOTDELETED, SX_SECRETS_ECONTENTION, -EBADMSG
 * or a storage code. */
int sx_secrets_purge(const sx_secrets_ctx *c, const sx_secrets_place *p) __attribute__((warn_unused_result));
/* One round of the sweeper: purge up to max deleted secrets, of any env, whose purge time is at or
 * before now_ms, telling on_purged (may be NULL) of each. Every purge is one batch of its own, so a
 * round cut short (a crash) leaves the rest for the next. *ret_purged gets how many were purged, *ret_kept how many
 * deleted secrets remain (due or not). 0, -EBADMSG or a storage code. */
int sx_secrets_sweep(const sx_secrets_ctx *c, int64_t now_ms, size_t max,
                     void (*on_purged)(void *arg, const sx_secrets_place *p), void *arg, size_t *ret_purged,
                     uint64_t *ret_kept) __attribute__((warn_unused_result));

/* ---- what uses an environment's data keys (secrets.c) -------------------------------------------- */

/* For each value of env (env->name ignored) whose blob names its data-key version, call fn with
 * that version. *ret_count gets the number of values, readable or not. 0 or a storage code
 * (or fn's nonzero return, which stops the scan). */
int sx_secrets_value_versions(const sx_secrets_ctx *c, const sx_secrets_place *env,
                              int (*fn)(void *arg, uint32_t version), void *arg, uint64_t *ret_count)
    __attribute__((warn_unused_result));
/* The same for the retained previous versions of env's secrets (history records; destroyed ones
 * are skipped): fn gets each one's data-key version, *ret_count the number of retained versions. */
int sx_secrets_history_versions(const sx_secrets_ctx *c, const sx_secrets_place *env,
                                int (*fn)(void *arg, uint32_t version), void *arg, uint64_t *ret_count)
    __attribute__((warn_unused_result));
/* The same for the versions kept by env's deleted secrets (x/ records). */
int sx_secrets_deleted_versions(const sx_secrets_ctx *c, const sx_secrets_place *env,
                                int (*fn)(void *arg, uint32_t version), void *arg, uint64_t *ret_count)
    __attribute__((warn_unused_result));

#endif /* SX_SECRETS_H */
