/*
 * datakey.c - per-environment data keys and the values they encrypt.
 *
 * An environment's state record (e/o/p/env) names its active data-key version; each version is a
 * random 256-bit key stored wrapped under one master version (d/o/p/env/%08x). Values are
 * encrypted under the active version; a blob names its version, so older versions keep decrypting
 * until a data-key rotation has re-encrypted every value and destroyed them.
 *
 * Writes are single storage batches with preconditions: creating a version puts the state record
 * (absent, or at the revision read) and the new wrapped key (absent) together, and every batch that
 * writes a wrap also checks the keyring revision the master key came from. Two writers racing
 * therefore never both win, and nothing is ever wrapped under a master version that has stopped
 * being active (see sx_crypto_master_retire() in rotation.c). The loser re-reads and, where that
 * makes sense, retries.
 *
 * Plaintext: a value's plaintext lives in the caller's buffers (request memory in the server);
 * reencrypt holds it briefly in sodium_malloc memory. Unwrapped data keys live in the cache
 * (cache.c); a master key is copied into a sodium_malloc scratch slot while it is used.
 */
#include "crypto/crypto_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Without snprintf's cost: this runs on every value decryption, 50 times for a values map of 50. */
void sx_crypto_env_name(char *buf, size_t cap, const sx_crypto_place *p)
{
    const char *parts[3] = {p->org, p->project, p->env};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (i && n + 1 < cap)
            buf[n++] = '/';
        size_t l = strlen(parts[i]);
        if (l > cap - 1 - n)
            l = cap - 1 - n;
        memcpy(buf + n, parts[i], l);
        n += l;
    }
    buf[n] = '\0';
}

int sx_crypto_env_state_read(sx_crypto *c, const sx_crypto_place *env, sx_env_state *es)
{
    char key[SX_KEY_BUF];
    size_t klen = sx_crypto_env_key(key, sizeof key, env);
    uint8_t *val = NULL;
    size_t len = 0;
    es->active = 0;
    es->rev = 0;
    int r = sx_storage_get(c->st, key, klen, (void **)&val, &len, &es->rev);
    if (r == -ENOENT) {
        es->rev = 0;
        return 0;
    }
    if (r < 0)
        return r;
    if (len != 5 || val[0] != SX_FMT_V1 || sx_be32_get(val + 1) == 0)
        r = SX_CRYPTO_EFORMAT;
    else
        es->active = sx_be32_get(val + 1);
    sx_storage_free(val);
    return r;
}

static int max_version(void *ctx, uint32_t version)
{
    uint32_t *max = ctx;
    if (version > *max)
        *max = version;
    return 0;
}

/* Highest data-key version stored for env (0 when none). */
static int env_max_version(sx_crypto *c, const sx_crypto_place *env, uint32_t *ret_max)
{
    uint32_t max = 0;
    int r = sx_crypto_datakey_each(c, env, max_version, &max);
    if (r < 0)
        return r;
    *ret_max = max;
    return 0;
}

int sx_crypto_env_advance(sx_crypto *c, uint32_t *ret_active, uint64_t *ret_rev, const sx_crypto_place *env,
                          sx_advance_mode mode, uint32_t from)
{
    char ekey[SX_KEY_BUF], dkey[SX_KEY_BUF], name[SX_KEY_BUF];
    uint8_t *k = sx_scratch_get(c->scratch); /* master, data key */
    if (!k)
        return -ENOMEM;
    sx_crypto_env_name(name, sizeof name, env);
    int r = SX_STORAGE_ECONDITION;
    for (int attempt = 0; attempt < SX_WRITE_RETRIES && r == SX_STORAGE_ECONDITION; attempt++) {
        sx_env_state es;
        uint32_t max, mver, next;
        uint64_t kr_rev;
        if ((r = sx_crypto_env_state_read(c, env, &es)) < 0)
            break;
        if ((mode == SX_ADVANCE_ENSURE && es.active) || (mode == SX_ADVANCE_FROM && from && es.active != from)) {
            *ret_active = es.active;
            if (ret_rev)
                *ret_rev = es.rev;
            break;
        }
        if ((r = env_max_version(c, env, &max)) < 0)
            break;
        next = (max > es.active ? max : es.active) + 1;
        if (next == 0) {
            r = -EOVERFLOW;
            break;
        }
        if ((r = sx_crypto_master_active(c, k, &mver, &kr_rev)) < 0)
            break;
        randombytes_buf(k + 32, SX_CRYPTO_KEYBYTES);
        uint8_t state[5], wrapped[SX_DATAKEY_BLOB_LEN];
        state[0] = SX_FMT_V1;
        sx_be32_put(state + 1, next);
        sx_crypto_datakey_wrap(wrapped, k, mver, env, next, k + 32);
        sx_storage_op ops[3] = {
            {.kind = SX_STORAGE_OP_PUT,
             .key = ekey,
             .klen = sx_crypto_env_key(ekey, sizeof ekey, env),
             .val = state,
             .vlen = sizeof state,
             .cond = es.rev ? SX_STORAGE_COND_REV : SX_STORAGE_COND_ABSENT,
             .rev = es.rev},
            {.kind = SX_STORAGE_OP_PUT,
             .key = dkey,
             .klen = sx_crypto_dk_key(dkey, sizeof dkey, env, next),
             .val = wrapped,
             .vlen = sizeof wrapped,
             .cond = SX_STORAGE_COND_ABSENT},
            {.kind = SX_STORAGE_OP_CHECK,
             .key = SX_KEY_S_KEYRING,
             .klen = strlen(SX_KEY_S_KEYRING),
             .cond = SX_STORAGE_COND_REV,
             .rev = kr_rev},
        };
        size_t failed = 0;
        r = sx_storage_batch(c->st, ops, 3, &failed);
        if (r == SX_STORAGE_ECONDITION && failed == 2) {
            int rr = sx_crypto_keyring_reload(c); /* the keyring moved on: use its new active master */
            if (rr < 0)
                r = rr;
        }
        if (r == 0) {
            const uint8_t *dk;
            sx_dk_cache_unpin(c->cache, sx_dk_cache_put(c->cache, name, next, k + 32, &dk));
            *ret_active = next;
            if (ret_rev)
                *ret_rev = ops[0].ret_rev;
        }
    }
    sx_scratch_put(c->scratch, k);
    return r;
}

/* Pin the unwrapped data key (env, version), loading it from storage on a cache miss. */
static int datakey_get(sx_crypto *c, sx_dk_ref **ret_ref, const uint8_t **ret_key, const sx_crypto_place *env,
                       uint32_t version)
{
    char name[SX_KEY_BUF], dkey[SX_KEY_BUF];
    sx_crypto_env_name(name, sizeof name, env);
    sx_dk_ref *ref = sx_dk_cache_get(c->cache, name, version, ret_key);
    if (ref) {
        *ret_ref = ref;
        return 0;
    }
    uint8_t *blob = NULL;
    size_t len = 0;
    uint32_t mver;
    int r = sx_storage_get(c->st, dkey, sx_crypto_dk_key(dkey, sizeof dkey, env, version), (void **)&blob, &len, NULL);
    if (r == -ENOENT)
        return -ENOKEY;
    if (r < 0)
        return r;
    uint8_t *k = sx_scratch_get(c->scratch); /* master, data key */
    if (!k)
        r = -ENOMEM;
    if (r == 0)
        r = sx_crypto_datakey_master(&mver, blob, len);
    if (r == 0)
        r = sx_crypto_master_get(c, k, mver);
    if (r == 0)
        r = sx_crypto_datakey_unwrap(k + 32, k, env, version, blob, len);
    if (r == 0) {
        ref = sx_dk_cache_put(c->cache, name, version, k + 32, ret_key);
        if (!ref)
            r = -EAGAIN; /* every cache slot is pinned by a running call */
    }
    sx_scratch_put(c->scratch, k);
    sx_storage_free(blob);
    if (r == 0)
        *ret_ref = ref;
    return r;
}

int sx_crypto_datakey_active(sx_crypto *c, uint32_t *ret_version, const sx_crypto_place *env)
{
    if (!c || !ret_version || sx_crypto_place_check(env, false) < 0)
        return -EINVAL;
    sx_env_state es;
    int r = sx_crypto_env_state_read(c, env, &es);
    if (r < 0)
        return r;
    if (!es.active)
        return -ENOENT;
    *ret_version = es.active;
    return 0;
}

/* Encrypt under the env's active version (creating it if needed); *ret_env_rev (may be NULL) gets
 * the revision of the env's state record that named that version. */
static int value_encrypt(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, uint64_t *ret_env_rev,
                         const sx_crypto_place *place, const void *pt, size_t len)
{
    uint32_t active;
    int r = sx_crypto_env_advance(c, &active, ret_env_rev, place, SX_ADVANCE_ENSURE, 0);
    if (r < 0)
        return r;
    sx_dk_ref *ref;
    const uint8_t *dk;
    if ((r = datakey_get(c, &ref, &dk, place, active)) < 0)
        return r;
    size_t blen = SX_CRYPTO_VALUE_BLOB_LEN_V(len, place->version);
    uint8_t *blob = malloc(blen), nonce[SX_NONCEBYTES];
    if (blob) {
        randombytes_buf(nonce, sizeof nonce);
        sx_crypto_value_seal_nonce(blob, dk, active, place, pt, len, nonce);
    }
    sx_dk_cache_unpin(c->cache, ref);
    if (!blob)
        return -ENOMEM;
    *ret_blob = blob;
    *ret_len = blen;
    return 0;
}

int sx_crypto_value_encrypt(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, const sx_crypto_place *place,
                            const void *plaintext, size_t len)
{
    if (!c || !ret_blob || !ret_len || (!plaintext && len) || len > SX_CRYPTO_VALUE_MAX ||
        sx_crypto_place_check(place, true) < 0)
        return -EINVAL;
    return value_encrypt(c, ret_blob, ret_len, NULL, place, plaintext, len);
}

int sx_crypto_value_encrypt_pinned(sx_crypto *c, uint8_t **ret_blob, size_t *ret_len, sx_crypto_pin *ret_pin,
                                   const sx_crypto_place *place, const void *plaintext, size_t len)
{
    if (!c || !ret_blob || !ret_len || !ret_pin || (!plaintext && len) || len > SX_CRYPTO_VALUE_MAX ||
        sx_crypto_place_check(place, true) < 0)
        return -EINVAL;
    uint64_t rev = 0;
    uint8_t *blob = NULL;
    size_t blen = 0;
    int r = value_encrypt(c, &blob, &blen, &rev, place, plaintext, len);
    if (r < 0)
        return r;
    ret_pin->klen = sx_crypto_env_key(ret_pin->key, sizeof ret_pin->key, place);
    ret_pin->rev = rev;
    *ret_blob = blob;
    *ret_len = blen;
    return 0;
}

int sx_crypto_value_decrypt(sx_crypto *c, void *out, size_t outcap, size_t *ret_len, const sx_crypto_place *place,
                            const uint8_t *blob, size_t bloblen)
{
    sx_value_hdr h;
    if (!c || !ret_len || !blob || sx_crypto_place_check(place, true) < 0)
        return -EINVAL;
    int r = sx_crypto_value_header(&h, blob, bloblen);
    if (r < 0)
        return r;
    if (!sx_crypto_value_version_ok(&h, place->version))
        return SX_CRYPTO_EFORGED; /* another version's blob: no need to read its data key */
    size_t plen = h.plen;
    if (outcap < plen || (!out && plen))
        return -ENOBUFS;
    sx_dk_ref *ref;
    const uint8_t *dk;
    if ((r = datakey_get(c, &ref, &dk, place, h.dk_version)) < 0)
        return r; /* SX_CRYPTO_EFORGED here: the wrapped data key was altered or moved */
    uint8_t dummy;
    r = sx_crypto_value_open_raw(plen ? out : &dummy, dk, place, blob, bloblen);
    sx_dk_cache_unpin(c->cache, ref);
    if (r == 0)
        *ret_len = plen;
    return r;
}

int sx_crypto_scan_datakeys(sx_crypto *c, const char *prefix, sx_crypto_scan_fn fn, void *ctx)
{
    sx_storage_iter *it;
    int r = sx_storage_iter_new(c->st, prefix, strlen(prefix), NULL, 0, 0, &it);
    if (r < 0)
        return r;
    const void *k, *v;
    size_t klen, vlen;
    char key[SX_KEY_BUF];
    while ((r = sx_storage_iter_next(it, &k, &klen, &v, &vlen, NULL)) == 0) {
        uint32_t mver;
        if (klen >= sizeof key || sx_crypto_datakey_master(&mver, v, vlen) < 0)
            continue; /* not ours or malformed: unwrapping it will report the error */
        memcpy(key, k, klen);
        key[klen] = '\0';
        if ((r = fn(ctx, key, klen, mver)) < 0)
            break;
    }
    sx_storage_iter_free(it);
    return r < 0 ? r : 0;
}

/* --- walking the store ------------------------------------------------------------------------ */

int sx_crypto_datakey_each(sx_crypto *c, const sx_crypto_place *env, sx_crypto_version_fn fn, void *ctx)
{
    if (!c || !fn || sx_crypto_place_check(env, false) < 0)
        return -EINVAL;
    char prefix[SX_KEY_BUF];
    size_t plen = sx_crypto_dk_prefix(prefix, sizeof prefix, env);
    sx_storage_iter *it;
    int r = sx_storage_iter_new(c->st, prefix, plen, NULL, 0, 0, &it);
    if (r < 0)
        return r;
    const void *k;
    size_t klen;
    while ((r = sx_storage_iter_next(it, &k, &klen, NULL, NULL, NULL)) == 0) {
        char hex[9] = {0};
        if (klen != plen + 8)
            continue;
        memcpy(hex, (const char *)k + plen, 8);
        uint32_t v = (uint32_t)strtoul(hex, NULL, 16);
        if (v && (r = fn(ctx, v)) != 0)
            break;
    }
    sx_storage_iter_free(it);
    return r < 0 ? r : 0;
}

int sx_crypto_store_count(sx_storage *st, uint64_t *ret_envs, uint64_t *ret_data_keys)
{
    if (!st)
        return -EINVAL;
    uint64_t envs = 0, data_keys = 0;
    int r = 0;
    if (ret_envs)
        r = sx_storage_count(st, "e/", 2, &envs);
    if (r == 0 && ret_data_keys)
        r = sx_storage_count(st, "d/", 2, &data_keys);
    if (r < 0)
        return r;
    if (ret_envs)
        *ret_envs = envs;
    if (ret_data_keys)
        *ret_data_keys = data_keys;
    return 0;
}

/* --- status ----------------------------------------------------------------------------------- */

static int status_count(void *ctx, const char *key, size_t klen, uint32_t mk_version)
{
    sx_crypto_status *s = ctx;
    s->data_keys++;
    for (size_t i = 0; i < s->n_masters; i++)
        if (s->masters[i].version == mk_version)
            s->masters[i].data_keys++;
    return 0;
}

int sx_crypto_status_get(sx_crypto *c, sx_crypto_status *ret)
{
    if (!c || !ret)
        return -EINVAL;
    int r = sx_crypto_keyring_reload(c);
    if (r < 0)
        return r;
    sx_crypto_status s;
    memset(&s, 0, sizeof s);
    pthread_rwlock_rdlock(&c->lock);
    s.seal = c->seal_type;
    s.active_master = c->kr->active;
    s.n_masters = c->kr->n;
    for (uint32_t i = 0; i < c->kr->n; i++)
        s.masters[i].version = c->kr->masters[i].version;
    pthread_rwlock_unlock(&c->lock);
    if ((r = sx_crypto_scan_datakeys(c, "d/", status_count, &s)) < 0)
        return r;
    *ret = s;
    return 0;
}
