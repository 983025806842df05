/*
 * rotation.c - the rotation primitives: a new master version and the retirement of old ones, a new
 * data-key version of an env and the destruction of old ones, re-wrapping data keys under the
 * active master, re-encrypting a value under its env's active data key, and the walk over every
 * env that a master rotation's sweep makes.
 *
 * Each primitive is idempotent, so a rotation engine (ops/) that was interrupted resumes by running
 * the same steps again, and each is one or a few conditional storage batches, so rotations run
 * while clients read and write: a wrap checks the keyring revision its master key came from, a
 * destroy checks the env's state record, and the loser of a race re-reads and retries.
 *
 * Layering: this file uses keyring.c (master keys, keyring commits) and datakey.c (env state, data
 * keys, values); neither of them uses this file.
 */
#include "crypto/crypto_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- master versions -------------------------------------------------------------------------- */

typedef struct master_add_edit {
    uint32_t from_active;
    uint32_t active;
} master_add_edit;

static int add_master(void *ctx, sx_keyring *nk)
{
    master_add_edit *e = ctx;
    if (e->from_active && nk->active != e->from_active) {
        e->active = nk->active; /* already rotated (maybe by an earlier run of this step) */
        return SX_KEYRING_EDIT_NONE;
    }
    if (nk->n >= SX_CRYPTO_MAX_MASTERS)
        return SX_CRYPTO_ETOOMANY;
    sx_master *m = &nk->masters[nk->n];
    m->version = nk->masters[nk->n - 1].version + 1;
    randombytes_buf(m->key, SX_CRYPTO_KEYBYTES);
    nk->active = m->version;
    nk->n++;
    e->active = nk->active;
    return 0;
}

int sx_crypto_master_add(sx_crypto *c, uint32_t *ret_active, uint32_t from_active)
{
    if (!c || !ret_active)
        return -EINVAL;
    master_add_edit e = {.from_active = from_active};
    int r = sx_crypto_keyring_update(c, add_master, &e);
    if (r == 0)
        *ret_active = e.active;
    return r;
}

typedef struct retire_scan {
    uint32_t version;
    uint64_t refs;
} retire_scan;

static int retire_count(void *ctx, const char *key, size_t klen, uint32_t mk_version)
{
    retire_scan *rs = ctx;
    if (mk_version == rs->version)
        rs->refs++;
    return 0;
}

int sx_crypto_master_retire(sx_crypto *c, uint32_t version)
{
    if (!c || version == 0)
        return -EINVAL;
    int r = sx_crypto_keyring_reload(c);
    if (r < 0)
        return r;
    sx_keyring *nk = sodium_malloc(sizeof *nk);
    if (!nk)
        return -ENOMEM;
    r = SX_STORAGE_ECONDITION;
    for (int attempt = 0; attempt < SX_KEYRING_COMMIT_RETRIES && r == SX_STORAGE_ECONDITION; attempt++) {
        if (attempt > 0 && (r = sx_crypto_keyring_reload(c)) < 0)
            break;
        pthread_rwlock_rdlock(&c->lock);
        bool present = sx_crypto_keyring_find(c->kr, version) != NULL, active = c->kr->active == version;
        uint64_t seen_rev = c->keyring_rev;
        pthread_rwlock_unlock(&c->lock);
        if (!present) {
            r = 0;
            break;
        }
        if (active) {
            r = -EBUSY;
            break;
        }
        /* The version was not active at seen_rev, so no wrap under it can commit after that
         * revision (every wrap checks the keyring revision it used): the scan sees them all. */
        retire_scan scan = {.version = version};
        r = sx_crypto_scan_datakeys(c, "d/", retire_count, &scan);
        if (r < 0)
            break;
        if (scan.refs) {
            r = -EBUSY;
            break;
        }
        pthread_rwlock_wrlock(&c->lock);
        if (c->keyring_rev != seen_rev) {
            r = SX_STORAGE_ECONDITION;
        } else {
            memcpy(nk, c->kr, sizeof *nk);
            uint32_t j = 0;
            for (uint32_t i = 0; i < nk->n; i++)
                if (nk->masters[i].version != version)
                    nk->masters[j++] = nk->masters[i];
            sodium_memzero(&nk->masters[j], sizeof nk->masters[j]);
            nk->n = j;
            r = sx_crypto_keyring_commit(c, nk);
        }
        pthread_rwlock_unlock(&c->lock);
    }
    sodium_free(nk);
    return r;
}

/* --- data-key versions ------------------------------------------------------------------------ */

int sx_crypto_datakey_rotate(sx_crypto *c, uint32_t *ret_active, const sx_crypto_place *env, uint32_t from_active)
{
    if (!c || !ret_active || sx_crypto_place_check(env, false) < 0)
        return -EINVAL;
    return sx_crypto_env_advance(c, ret_active, NULL, env, SX_ADVANCE_FROM, from_active);
}

/* Split a copy of one of our keys (in buf) into env and, for "d/o/p/env/%08x", the version
 * (ret_version NULL: "e/o/p/env"). SX_CRYPTO_EFORMAT when it is not such a key of a valid env. */
static int key_parse(char *buf, sx_crypto_place *env, uint32_t *ret_version)
{
    int want = ret_version ? 5 : 4;
    char *parts[5], *save = NULL, *tok;
    int n = 0;
    for (tok = strtok_r(buf, "/", &save); tok && n < want; tok = strtok_r(NULL, "/", &save))
        parts[n++] = tok;
    if (n != want || tok || strcmp(parts[0], ret_version ? "d" : "e") != 0 || (ret_version && strlen(parts[4]) != 8))
        return SX_CRYPTO_EFORMAT;
    *env = (sx_crypto_place){.org = parts[1], .project = parts[2], .env = parts[3]};
    if (sx_crypto_place_check(env, false) < 0)
        return SX_CRYPTO_EFORMAT;
    if (ret_version) {
        char *end;
        unsigned long v = strtoul(parts[4], &end, 16);
        if (*end || v == 0)
            return SX_CRYPTO_EFORMAT;
        *ret_version = (uint32_t)v;
    }
    return 0;
}

/* Re-wrap the data key stored at key under the active master. *did = 1 when it wrote. */
static int rewrap_one(sx_crypto *c, const char *key, int *did)
{
    char buf[SX_KEY_BUF];
    sx_crypto_place env;
    uint32_t version;
    snprintf(buf, sizeof buf, "%s", key);
    int r = key_parse(buf, &env, &version);
    if (r < 0)
        return r;
    uint8_t *k = sx_scratch_get(c->scratch); /* old master, data key, active master */
    if (!k)
        return -ENOMEM;
    r = SX_STORAGE_ECONDITION;
    for (int attempt = 0; attempt < SX_WRITE_RETRIES && r == SX_STORAGE_ECONDITION; attempt++) {
        uint8_t *blob = NULL;
        size_t len = 0;
        uint64_t rev, kr_rev;
        uint32_t old, mver;
        r = sx_storage_get(c->st, key, strlen(key), (void **)&blob, &len, &rev);
        if (r == -ENOENT) {
            r = 0; /* destroyed meanwhile */
            break;
        }
        if (r == 0)
            r = sx_crypto_datakey_master(&old, blob, len);
        if (r == 0)
            r = sx_crypto_master_active(c, k + 64, &mver, &kr_rev);
        if (r == 0 && old == mver) {
            sx_storage_free(blob);
            break;
        }
        if (r == 0)
            r = sx_crypto_master_get(c, k, old);
        if (r == 0)
            r = sx_crypto_datakey_unwrap(k + 32, k, &env, version, blob, len);
        sx_storage_free(blob);
        if (r < 0)
            break;
        uint8_t wrapped[SX_DATAKEY_BLOB_LEN];
        sx_crypto_datakey_wrap(wrapped, k + 64, mver, &env, version, k + 32);
        sx_storage_op ops[2] = {
            {.kind = SX_STORAGE_OP_PUT,
             .key = key,
             .klen = strlen(key),
             .val = wrapped,
             .vlen = sizeof wrapped,
             .cond = SX_STORAGE_COND_REV,
             .rev = rev},
            {.kind = SX_STORAGE_OP_CHECK,
             .key = SX_KEY_S_KEYRING,
             .klen = strlen(SX_KEY_S_KEYRING),
             .cond = SX_STORAGE_COND_REV,
             .rev = kr_rev},
        };
        size_t failed = 0;
        r = sx_storage_batch(c->st, ops, 2, &failed);
        if (r == SX_STORAGE_ECONDITION && failed == 1) {
            int rr = sx_crypto_keyring_reload(c);
            if (rr < 0)
                r = rr;
        }
        if (r == 0)
            *did = 1;
    }
    sx_scratch_put(c->scratch, k);
    return r;
}

typedef struct key_list {
    char **keys;
    size_t n, cap;
    uint32_t active;
} key_list;

static int collect_stale(void *ctx, const char *key, size_t klen, uint32_t mk_version)
{
    key_list *l = ctx;
    if (mk_version == l->active)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **keys = realloc(l->keys, cap * sizeof *keys);
        if (!keys)
            return -ENOMEM;
        l->keys = keys;
        l->cap = cap;
    }
    if (!(l->keys[l->n] = strdup(key)))
        return -ENOMEM;
    l->n++;
    return 0;
}

/* Re-wrap the stale data keys under prefix ("d/" for all, or one env's prefix). */
static int rewrap_prefix(sx_crypto *c, size_t *ret_count, const char *prefix)
{
    int r = sx_crypto_keyring_reload(c); /* learn about a master added by another process */
    if (r < 0)
        return r;
    key_list l = {0};
    pthread_rwlock_rdlock(&c->lock);
    l.active = c->kr->active;
    pthread_rwlock_unlock(&c->lock);
    /* Collect first, then write, so the iteration never sees its own writes. */
    r = sx_crypto_scan_datakeys(c, prefix, collect_stale, &l);
    size_t count = 0;
    for (size_t i = 0; i < l.n; i++) {
        int did = 0;
        if (r == 0) {
            r = rewrap_one(c, l.keys[i], &did);
            count += (size_t)did;
        }
        free(l.keys[i]);
    }
    free(l.keys);
    if (r == 0 && ret_count)
        *ret_count = count;
    return r;
}

int sx_crypto_datakey_rewrap(sx_crypto *c, size_t *ret_count, const sx_crypto_place *env)
{
    char prefix[SX_KEY_BUF];
    if (!c || sx_crypto_place_check(env, false) < 0)
        return -EINVAL;
    sx_crypto_dk_prefix(prefix, sizeof prefix, env);
    return rewrap_prefix(c, ret_count, prefix);
}

int sx_crypto_datakey_rewrap_all(sx_crypto *c, size_t *ret_count)
{
    if (!c)
        return -EINVAL;
    return rewrap_prefix(c, ret_count, "d/");
}

int sx_crypto_datakey_destroy(sx_crypto *c, const sx_crypto_place *env, uint32_t version, sx_crypto_in_use_fn in_use,
                              void *ctx)
{
    if (!c || !in_use || version == 0 || sx_crypto_place_check(env, false) < 0)
        return -EINVAL;
    char ekey[SX_KEY_BUF], dkey[SX_KEY_BUF], name[SX_KEY_BUF];
    size_t eklen = sx_crypto_env_key(ekey, sizeof ekey, env), dklen = sx_crypto_dk_key(dkey, sizeof dkey, env, version);
    sx_crypto_env_name(name, sizeof name, env);
    int r = SX_STORAGE_ECONDITION;
    for (int attempt = 0; attempt < SX_WRITE_RETRIES && r == SX_STORAGE_ECONDITION; attempt++) {
        sx_env_state es;
        uint64_t rev;
        if ((r = sx_crypto_env_state_read(c, env, &es)) < 0)
            break;
        if (es.active == version) {
            r = -EBUSY;
            break;
        }
        r = sx_storage_get(c->st, dkey, dklen, NULL, NULL, &rev);
        if (r == -ENOENT) {
            r = 0; /* already destroyed */
            break;
        }
        if (r < 0)
            break;
        if ((r = in_use(ctx, env, version)) != 0) {
            r = r > 0 ? -EBUSY : r;
            break;
        }
        sx_storage_op ops[2] = {
            {.kind = SX_STORAGE_OP_DELETE, .key = dkey, .klen = dklen, .cond = SX_STORAGE_COND_REV, .rev = rev},
            {.kind = SX_STORAGE_OP_CHECK,
             .key = ekey,
             .klen = eklen,
             .cond = es.rev ? SX_STORAGE_COND_REV : SX_STORAGE_COND_ABSENT,
             .rev = es.rev},
        };
        r = sx_storage_batch(c->st, ops, 2, NULL);
    }
    if (r == 0)
        sx_dk_cache_drop(c->cache, name, version);
    return r;
}

/* --- values ---------------------------------------------------------------------------------- */

/* Re-encrypt under the active version, keeping the blob's format and value version; *ret_pin (may
 * be NULL) as in sx_crypto_value_encrypt_pinned(). */
static int value_reencrypt(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, sx_crypto_pin *ret_pin,
                           const sx_crypto_place *place, const uint8_t *blob, size_t bloblen)
{
    uint32_t active;
    sx_value_hdr h;
    if (!c || !ret_blob || !ret_len || !blob || sx_crypto_place_check(place, true) < 0)
        return -EINVAL;
    int r = sx_crypto_value_header(&h, blob, bloblen);
    if (r < 0)
        return r;
    if (place->version && !sx_crypto_value_version_ok(&h, place->version))
        return SX_CRYPTO_EFORGED;
    /* Decrypt and encrypt at the blob's own version: format 2 stays bound to it, format 1 (0)
     * stays format 1. */
    sx_crypto_place at = *place;
    at.version = h.version;
    place = &at;
    uint64_t rev = 0;
    if ((r = sx_crypto_env_advance(c, &active, &rev, place, SX_ADVANCE_ENSURE, 0)) < 0)
        return r;
    if (h.dk_version == active) {
        if (ret_pin) { /* the blob stays: its write must still find this version active */
            ret_pin->klen = sx_crypto_env_key(ret_pin->key, sizeof ret_pin->key, place);
            ret_pin->rev = rev;
        }
        return 1;
    }
    size_t plen = h.plen ? h.plen : 1, got = 0;
    uint8_t *pt = sodium_malloc(plen);
    if (!pt)
        return -ENOMEM;
    sx_crypto_pin pin;
    r = sx_crypto_value_decrypt(c, pt, plen, &got, place, blob, bloblen);
    if (r == 0)
        r = sx_crypto_value_encrypt_pinned(c, ret_blob, ret_len, ret_pin ? ret_pin : &pin, place, pt, got);
    sodium_free(pt); /* zeroes the plaintext */
    return r;
}

int sx_crypto_value_reencrypt(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, const sx_crypto_place *place,
                              const uint8_t *blob, size_t bloblen)
{
    return value_reencrypt(c, ret_blob, ret_len, NULL, place, blob, bloblen);
}

int sx_crypto_value_reencrypt_pinned(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, sx_crypto_pin *ret_pin,
                                     const sx_crypto_place *place, const uint8_t *blob, size_t bloblen)
{
    if (!ret_pin)
        return -EINVAL;
    return value_reencrypt(c, ret_blob, ret_len, ret_pin, place, blob, bloblen);
}

/* --- walking the envs ------------------------------------------------------------------------- */

int sx_crypto_env_each(sx_crypto *c, const void *after, size_t after_len, sx_crypto_env_fn fn, void *ctx)
{
    if (!c || !fn || (after_len && !after))
        return -EINVAL;
    sx_storage_iter *it;
    int r = sx_storage_iter_new(c->st, "e/", 2, after_len ? after : NULL, after_len,
                                after_len ? SX_STORAGE_ITER_AFTER : 0, &it);
    if (r < 0)
        return r;
    const void *k;
    size_t klen;
    while ((r = sx_storage_iter_next(it, &k, &klen, NULL, NULL, NULL)) == 0) {
        char buf[SX_KEY_BUF], again[SX_KEY_BUF];
        sx_crypto_place env;
        if (klen > SX_CRYPTO_ENV_POS_MAX || klen >= sizeof buf)
            continue;
        memcpy(buf, k, klen);
        buf[klen] = '\0';
        /* strtok_r() folds empty components: only a record at exactly its env's key counts. */
        if (key_parse(buf, &env, NULL) < 0 || sx_crypto_env_key(again, sizeof again, &env) != klen ||
            memcmp(again, k, klen) != 0)
            continue;
        if ((r = fn(ctx, &env, k, klen)) != 0)
            break;
    }
    sx_storage_iter_free(it);
    return r < 0 ? r : 0;
}
