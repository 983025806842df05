/*
 * cache.c - the per-thread cache of verified tokens, sx_auth_verify() and sx_auth_authenticate().
 *
 * Every request is authenticated, so the common case must not read storage. Each event-loop thread
 * owns an sx_auth_cache: a set-associative table (4 ways per set, LRU within a set) indexed by the
 * token id, holding the keyed hash and the decoded record. It is never shared, so it has no locks.
 *
 * Rules that keep the cache from weakening authentication:
 * - The presented secret is always checked in constant time (sodium_memcmp); the cache saves the
 *   storage read, never the check. Nothing is keyed by the token string. An entry also keeps a
 *   SipHash-128 tag (crypto_shorthash_siphashx24) of the id and secret that last passed the full
 *   check, under a random key of this cache that never leaves it: a presented secret whose tag
 *   matches is that secret (finding another with the same tag needs the key), so it skips the
 *   keyed BLAKE2b, the larger part of a cached verification's cost. Any other secret takes the
 *   full check against the keyed hash.
 * - An entry is trusted for SX_AUTH_CACHE_TRUST_MS after it was read from storage; then the record
 *   is read again, so a revocation written by another node takes effect within that window.
 * - A revocation in this process bumps sx_auth_generation; a cache that sees a new generation
 *   drops all its entries before answering. The generation is loaded before a storage read, so a
 *   record read concurrently with a revocation is dropped at the next request.
 * - Only successful verifications insert entries (a failure may refresh an entry that is already
 *   there), so an attacker cannot fill or churn the cache with unknown ids or wrong secrets.
 * - A token's hash never changes, so a presented secret that does not match a cached entry - fresh
 *   or stale - is rejected without a storage read.
 *
 * A thread that must not wait for storage (an event loop on a networked store) verifies with
 * sx_auth_authenticate_nowait(): when the cache cannot answer it says so (-EWOULDBLOCK), another
 * thread reads the record (sx_auth_fetch_new()), and the same verification runs again with that
 * record in place of the storage read - the same checks, the same cache fill.
 */
#include "auth/auth_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define WAYS         4u
#define MAX_CAPACITY (1u << 20)

typedef struct entry {
    uint64_t instance;  /* owning sx_auth's instance; 0 = empty slot */
    uint64_t last_used; /* LRU tick */
    int64_t fetched_ms; /* when the record was read from storage */
    unsigned char id[SX_AUTH_ID_BYTES];
    unsigned char hash[SX_AUTH_HASH_BYTES];
    unsigned char tag[crypto_shorthash_siphashx24_BYTES]; /* of the id and secret that matched hash */
    sx_auth_token info;
} entry;

struct sx_auth_cache {
    entry *entries; /* nsets * WAYS */
    size_t nsets;
    uint64_t tick;
    uint64_t gen_seen;
    unsigned char tag_key[crypto_shorthash_siphashx24_KEYBYTES]; /* random, this cache's only */
};

/* The tag of a presented id and secret under the cache's key. */
static void secret_tag(const sx_auth_cache *c, const unsigned char id[SX_AUTH_ID_BYTES],
                       const unsigned char secret[SX_AUTH_SECRET_BYTES],
                       unsigned char out[crypto_shorthash_siphashx24_BYTES])
{
    unsigned char msg[SX_AUTH_ID_BYTES + SX_AUTH_SECRET_BYTES];
    memcpy(msg, id, SX_AUTH_ID_BYTES);
    memcpy(msg + SX_AUTH_ID_BYTES, secret, SX_AUTH_SECRET_BYTES);
    crypto_shorthash_siphashx24(out, msg, sizeof msg, c->tag_key);
    sodium_memzero(msg, sizeof msg);
}

int sx_auth_cache_new(size_t capacity, sx_auth_cache **ret)
{
    if (!ret || capacity == 0 || capacity > MAX_CAPACITY)
        return -EINVAL;
    sx_auth_cache *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->nsets = (capacity + WAYS - 1) / WAYS;
    c->entries = calloc(c->nsets * WAYS, sizeof *c->entries);
    if (!c->entries) {
        free(c);
        return -ENOMEM;
    }
    c->gen_seen = atomic_load_explicit(&sx_auth_generation, memory_order_acquire);
    randombytes_buf(c->tag_key, sizeof c->tag_key);
    *ret = c;
    return 0;
}

void sx_auth_cache_free(sx_auth_cache *cache)
{
    if (!cache)
        return;
    sodium_memzero(cache->entries, cache->nsets * WAYS * sizeof *cache->entries);
    free(cache->entries);
    sodium_memzero(cache, sizeof *cache);
    free(cache);
}

static void cache_clear(sx_auth_cache *c)
{
    sodium_memzero(c->entries, c->nsets * WAYS * sizeof *c->entries);
}

/* Ids are random, so their first bytes index sets uniformly. Only verified ids are ever inserted,
 * so an attacker choosing ids can make lookups probe a set but cannot place entries. */
static entry *set_of(sx_auth_cache *c, const unsigned char id[SX_AUTH_ID_BYTES])
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    return &c->entries[(h % c->nsets) * WAYS];
}

static entry *lookup(sx_auth_cache *c, uint64_t instance, const unsigned char id[SX_AUTH_ID_BYTES])
{
    entry *set = set_of(c, id);
    for (unsigned i = 0; i < WAYS; i++)
        if (set[i].instance == instance && memcmp(set[i].id, id, SX_AUTH_ID_BYTES) == 0)
            return &set[i];
    return NULL;
}

static entry *victim(sx_auth_cache *c, const unsigned char id[SX_AUTH_ID_BYTES])
{
    entry *set = set_of(c, id), *v = &set[0];
    for (unsigned i = 0; i < WAYS; i++) {
        if (set[i].instance == 0)
            return &set[i];
        if (set[i].last_used < v->last_used)
            v = &set[i];
    }
    return v;
}

/* tag: of the secret that matched r->hash. */
static void fill(sx_auth_cache *c, entry *e, uint64_t instance, const sx_auth_record *r, int64_t now_ms,
                 const unsigned char *tag)
{
    e->instance = instance;
    e->last_used = ++c->tick;
    e->fetched_ms = now_ms;
    memcpy(e->id, r->id, SX_AUTH_ID_BYTES);
    memcpy(e->hash, r->hash, SX_AUTH_HASH_BYTES);
    memcpy(e->tag, tag, sizeof e->tag);
    e->info = r->info;
}

/* The record's own verdict, once the secret matched. */
static int judge(const sx_auth_token *info, int64_t now_ms, sx_auth_token *ret)
{
    if (info->revoked)
        return SX_AUTH_EREVOKED;
    if (info->expires_ms != 0 && now_ms >= info->expires_ms)
        return SX_AUTH_EEXPIRED;
    *ret = *info;
    return 0;
}

/* A token record read ahead of a verification that may not read storage itself. */
struct sx_auth_fetch {
    int rc; /* of sx_auth_record_read() */
    sx_auth_record rec;
};

int sx_auth_fetch_new(sx_auth *auth, const char *value, size_t len, sx_auth_fetch **ret)
{
    if (!auth || !ret)
        return -EINVAL;
    unsigned char id[SX_AUTH_ID_BYTES], secret[SX_AUTH_SECRET_BYTES];
    if (sx_auth_header_parse(value, len, id, secret) != 0)
        return SX_AUTH_EMALFORMED;
    sodium_memzero(secret, sizeof secret);
    sx_auth_fetch *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->rc = sx_auth_record_read(auth, id, &f->rec, NULL);
    memcpy(f->rec.id, id, SX_AUTH_ID_BYTES); /* what was looked for, matched again in verify */
    *ret = f;
    return 0;
}

void sx_auth_fetch_free(sx_auth_fetch *f)
{
    if (!f)
        return;
    sodium_memzero(f, sizeof *f);
    free(f);
}

/* The record of id: read from storage (may_read), taken from pre (when it was read for this id),
 * or -EWOULDBLOCK. */
static int record_of(sx_auth *auth, const unsigned char id[SX_AUTH_ID_BYTES], bool may_read, const sx_auth_fetch *pre,
                     sx_auth_record *ret)
{
    if (pre && memcmp(pre->rec.id, id, SX_AUTH_ID_BYTES) == 0) {
        if (pre->rc == 0)
            *ret = pre->rec;
        return pre->rc;
    }
    if (!may_read)
        return -EWOULDBLOCK;
    return sx_auth_record_read(auth, id, ret, NULL);
}

static int verify(sx_auth *auth, sx_auth_cache *c, const char *value, size_t len, int64_t now_ms, bool may_read,
                  const sx_auth_fetch *pre, sx_auth_token *ret)
{
    unsigned char id[SX_AUTH_ID_BYTES], secret[SX_AUTH_SECRET_BYTES], hash[SX_AUTH_HASH_BYTES];
    unsigned char tag[crypto_shorthash_siphashx24_BYTES];
    if (sx_auth_header_parse(value, len, id, secret) != 0)
        return SX_AUTH_EMALFORMED;
    secret_tag(c, id, secret, tag);

    uint64_t gen = atomic_load_explicit(&sx_auth_generation, memory_order_acquire);
    if (gen != c->gen_seen) {
        cache_clear(c);
        c->gen_seen = gen;
    }

    entry *e = lookup(c, auth->instance, id);
    /* The secret that passed the full check for this entry: its hash is the entry's. */
    bool known = e && sodium_memcmp(tag, e->tag, sizeof tag) == 0;
    if (known)
        memcpy(hash, e->hash, SX_AUTH_HASH_BYTES);
    else
        sx_auth_token_hash(auth, id, secret, hash);
    sodium_memzero(secret, sizeof secret);
    if (e) {
        e->last_used = ++c->tick;
        if (!known && sodium_memcmp(hash, e->hash, SX_AUTH_HASH_BYTES) != 0)
            return SX_AUTH_EBADTOKEN;
        if (now_ms >= e->fetched_ms && now_ms - e->fetched_ms < SX_AUTH_CACHE_TRUST_MS)
            return judge(&e->info, now_ms, ret);
    }

    sx_auth_record r;
    int rc = record_of(auth, id, may_read, pre, &r);
    if (rc == -EWOULDBLOCK)
        return rc;
    if (rc == -ENOENT) {
        if (e)
            sodium_memzero(e, sizeof *e);
        return SX_AUTH_EBADTOKEN;
    }
    if (rc == SX_AUTH_EFORGED) {
        if (e)
            sodium_memzero(e, sizeof *e);
        return SX_AUTH_EFORGED;
    }
    if (rc < 0)
        return SX_AUTH_EUNAVAILABLE;
    if (sodium_memcmp(hash, r.hash, SX_AUTH_HASH_BYTES) != 0) {
        if (e) /* the stored record changed under the cached one: forget it */
            sodium_memzero(e, sizeof *e);
        sodium_memzero(&r, sizeof r);
        return SX_AUTH_EBADTOKEN;
    }
    rc = judge(&r.info, now_ms, ret);
    if (e || rc == 0)
        fill(c, e ? e : victim(c, id), auth->instance, &r, now_ms, tag);
    sodium_memzero(&r, sizeof r);
    return rc;
}

int sx_auth_verify(sx_auth *auth, sx_auth_cache *cache, const char *value, size_t len, int64_t now_ms,
                   sx_auth_token *ret)
{
    if (!auth || !cache || !ret)
        return -EINVAL;
    return verify(auth, cache, value, len, now_ms, true, NULL, ret);
}

static int authenticate(sx_auth *auth, sx_auth_cache *cache, sx_auth_throttle *throttle, const struct sockaddr *addr,
                        const char *value, size_t len, int64_t now_ms, bool may_read, const sx_auth_fetch *pre,
                        sx_auth_token *ret, unsigned *ret_retry_after_s);

int sx_auth_authenticate(sx_auth *auth, sx_auth_cache *cache, sx_auth_throttle *throttle, const struct sockaddr *addr,
                         const char *value, size_t len, int64_t now_ms, sx_auth_token *ret, unsigned *ret_retry_after_s)
{
    return authenticate(auth, cache, throttle, addr, value, len, now_ms, true, NULL, ret, ret_retry_after_s);
}

int sx_auth_authenticate_nowait(sx_auth *auth, sx_auth_cache *cache, sx_auth_throttle *throttle,
                                const struct sockaddr *addr, const char *value, size_t len, int64_t now_ms,
                                const sx_auth_fetch *fetched, sx_auth_token *ret, unsigned *ret_retry_after_s)
{
    return authenticate(auth, cache, throttle, addr, value, len, now_ms, false, fetched, ret, ret_retry_after_s);
}

static int authenticate(sx_auth *auth, sx_auth_cache *cache, sx_auth_throttle *throttle, const struct sockaddr *addr,
                        const char *value, size_t len, int64_t now_ms, bool may_read, const sx_auth_fetch *pre,
                        sx_auth_token *ret, unsigned *ret_retry_after_s)
{
    if (!auth || !cache || !ret)
        return -EINVAL;
    if (!throttle || !addr)
        return verify(auth, cache, value, len, now_ms, may_read, pre, ret);

    /* Every token is verified, also from a throttled address: the address may be a NAT or a load
     * balancer that many clients share, and a valid token must be served whatever its neighbours
     * did. Only the failures are slowed: 429 instead of 401, so a blocked guesser learns nothing,
     * not even whether an id exists. (A malformed header is refused before hashing or storage.) */
    unsigned retry = 0;
    bool blocked = sx_auth_throttle_blocked(throttle, addr, now_ms, &retry);
    int rc = verify(auth, cache, value, len, now_ms, may_read, pre, ret);
    if (rc == 0 || rc == SX_AUTH_EUNAVAILABLE || rc == -EINVAL || rc == -EWOULDBLOCK)
        return rc;
    /* Every failure counts, also while blocked: a client that keeps failing stays blocked. */
    sx_auth_throttle_failed(throttle, addr, now_ms);
    if (blocked) {
        if (ret_retry_after_s)
            *ret_retry_after_s = retry;
        return SX_AUTH_ERATELIMITED;
    }
    return rc;
}
