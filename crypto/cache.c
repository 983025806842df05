/*
 * cache.c - the bounded cache of unwrapped data keys.
 *
 * Unwrapping a data key costs a storage read and an AEAD decryption; a value decryption should
 * cost neither. The cache keeps up to cap unwrapped keys in one sodium_malloc slab (guard pages
 * around it, locked in RAM, zeroed when freed), with the bookkeeping (env names, versions, hash
 * chains, LRU list) in ordinary memory since none of that is secret.
 *
 * Threads: one mutex guards the structure. A lookup pins its entry, so the caller can run the AEAD
 * with the key in place, outside the lock, while other threads use the cache; an entry is only
 * evicted (least recently used first) or dropped when nobody has it pinned, and a slot is wiped
 * before it is reused or released.
 */
#include "crypto/crypto_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENV_MAX (3 * 64 + 3)

struct sx_dk_ref {
    char env[ENV_MAX];
    uint32_t version;
    uint32_t slot;
    unsigned pins;
    bool dead; /* dropped while pinned: release at the last unpin */
    bool used;
    sx_dk_ref *hnext;
    sx_dk_ref *prev, *next; /* LRU list; head.next is the most recent */
};

struct sx_dk_cache {
    pthread_mutex_t mu;
    size_t cap;
    uint8_t *keys; /* sodium_malloc: cap x 32 bytes */
    sx_dk_ref *entries;
    sx_dk_ref **buckets;
    size_t nbuckets; /* power of two */
    sx_dk_ref *free_list;
    sx_dk_ref lru;
};

static size_t bucket_of(const sx_dk_cache *c, const char *env, uint32_t version)
{
    /* FNV-1a: the cache is not exposed to attacker-chosen keys beyond env names the caller has
     * already authorised, and chains stay short at the load factor we keep (<= 0.5). */
    uint64_t h = 1469598103934665603ull;
    for (const char *p = env; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ version) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29)) & (c->nbuckets - 1);
}

int sx_dk_cache_new(sx_dk_cache **ret, size_t cap)
{
    if (cap < 16)
        cap = 16;
    sx_dk_cache *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->cap = cap;
    c->nbuckets = 1;
    while (c->nbuckets < cap * 2)
        c->nbuckets <<= 1;
    c->keys = sodium_malloc(cap * SX_CRYPTO_KEYBYTES);
    c->entries = calloc(cap, sizeof *c->entries);
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->keys || !c->entries || !c->buckets) {
        sx_dk_cache_free(c);
        return -ENOMEM;
    }
    sodium_memzero(c->keys, cap * SX_CRYPTO_KEYBYTES);
    pthread_mutex_init(&c->mu, NULL);
    c->lru.prev = c->lru.next = &c->lru;
    for (size_t i = cap; i-- > 0;) {
        c->entries[i].slot = (uint32_t)i;
        c->entries[i].hnext = c->free_list;
        c->free_list = &c->entries[i];
    }
    *ret = c;
    return 0;
}

void sx_dk_cache_free(sx_dk_cache *c)
{
    if (!c)
        return;
    if (c->keys)
        pthread_mutex_destroy(&c->mu);
    sodium_free(c->keys); /* zeroes every slot */
    free(c->entries);
    free(c->buckets);
    free(c);
}

static void lru_unlink(sx_dk_ref *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(sx_dk_cache *c, sx_dk_ref *e)
{
    if (e->prev)
        lru_unlink(e);
    e->next = c->lru.next;
    e->prev = &c->lru;
    c->lru.next->prev = e;
    c->lru.next = e;
}

static void hash_unlink(sx_dk_cache *c, sx_dk_ref *e)
{
    sx_dk_ref **pp = &c->buckets[bucket_of(c, e->env, e->version)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    e->hnext = NULL;
}

/* Wipe the entry's key and put it on the free list. It is already out of the hash and LRU. */
static void release(sx_dk_cache *c, sx_dk_ref *e)
{
    sodium_memzero(c->keys + (size_t)e->slot * SX_CRYPTO_KEYBYTES, SX_CRYPTO_KEYBYTES);
    e->used = e->dead = false;
    e->pins = 0;
    e->hnext = c->free_list;
    c->free_list = e;
}

static sx_dk_ref *find(sx_dk_cache *c, const char *env, uint32_t version)
{
    for (sx_dk_ref *e = c->buckets[bucket_of(c, env, version)]; e; e = e->hnext)
        if (e->version == version && strcmp(e->env, env) == 0)
            return e;
    return NULL;
}

sx_dk_ref *sx_dk_cache_get(sx_dk_cache *c, const char *env, uint32_t version, const uint8_t **ret_key)
{
    pthread_mutex_lock(&c->mu);
    sx_dk_ref *e = find(c, env, version);
    if (e) {
        e->pins++;
        lru_front(c, e);
        *ret_key = c->keys + (size_t)e->slot * SX_CRYPTO_KEYBYTES;
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}

sx_dk_ref *sx_dk_cache_put(sx_dk_cache *c, const char *env, uint32_t version, const uint8_t key[32],
                           const uint8_t **ret_key)
{
    if (strlen(env) >= ENV_MAX)
        return NULL;
    pthread_mutex_lock(&c->mu);
    sx_dk_ref *e = find(c, env, version);
    if (!e) {
        e = c->free_list;
        if (e) {
            c->free_list = e->hnext;
        } else {
            /* Evict the least recently used unpinned entry. */
            for (sx_dk_ref *v = c->lru.prev; v != &c->lru; v = v->prev)
                if (v->pins == 0) {
                    e = v;
                    break;
                }
            if (e) {
                hash_unlink(c, e);
                lru_unlink(e);
                sodium_memzero(c->keys + (size_t)e->slot * SX_CRYPTO_KEYBYTES, SX_CRYPTO_KEYBYTES);
            }
        }
        if (e) {
            snprintf(e->env, sizeof e->env, "%s", env);
            e->version = version;
            e->used = true;
            e->dead = false;
            e->pins = 0;
            memcpy(c->keys + (size_t)e->slot * SX_CRYPTO_KEYBYTES, key, SX_CRYPTO_KEYBYTES);
            size_t b = bucket_of(c, env, version);
            e->hnext = c->buckets[b];
            c->buckets[b] = e;
        }
    }
    if (e) {
        e->pins++;
        lru_front(c, e);
        *ret_key = c->keys + (size_t)e->slot * SX_CRYPTO_KEYBYTES;
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}

void sx_dk_cache_unpin(sx_dk_cache *c, sx_dk_ref *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&c->mu);
    if (--e->pins == 0 && e->dead)
        release(c, e);
    pthread_mutex_unlock(&c->mu);
}

void sx_dk_cache_drop(sx_dk_cache *c, const char *env, uint32_t version)
{
    pthread_mutex_lock(&c->mu);
    sx_dk_ref *e = find(c, env, version);
    if (e) {
        hash_unlink(c, e);
        lru_unlink(e);
        if (e->pins == 0)
            release(c, e);
        else
            e->dead = true;
    }
    pthread_mutex_unlock(&c->mu);
}

/* --- scratch slots ---------------------------------------------------------------------------- *
 * Keys in flight (a master key copied out of the keyring, a freshly unwrapped data key) need
 * sodium_malloc memory too, but sodium_malloc costs three mappings and an mlock per call, which
 * would dominate a value encryption. So the handle keeps a pool of small slots in one region;
 * when every slot is busy, callers fall back to sodium_malloc. */

#define SCRATCH_SLOTS 64

struct sx_scratch {
    pthread_mutex_t mu;
    uint8_t *mem;  /* sodium_malloc: SCRATCH_SLOTS x SX_SCRATCH_BYTES */
    uint64_t busy; /* bit i = slot i in use */
};

int sx_scratch_new(sx_scratch **ret)
{
    sx_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->mem = sodium_malloc(SCRATCH_SLOTS * SX_SCRATCH_BYTES);
    if (!s->mem) {
        free(s);
        return -ENOMEM;
    }
    sodium_memzero(s->mem, SCRATCH_SLOTS * SX_SCRATCH_BYTES);
    pthread_mutex_init(&s->mu, NULL);
    *ret = s;
    return 0;
}

void sx_scratch_free(sx_scratch *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    sodium_free(s->mem);
    free(s);
}

uint8_t *sx_scratch_get(sx_scratch *s)
{
    uint8_t *p = NULL;
    pthread_mutex_lock(&s->mu);
    if (~s->busy) {
        int i = __builtin_ctzll(~s->busy);
        s->busy |= 1ull << i;
        p = s->mem + (size_t)i * SX_SCRATCH_BYTES;
    }
    pthread_mutex_unlock(&s->mu);
    return p ? p : sodium_malloc(SX_SCRATCH_BYTES);
}

void sx_scratch_put(sx_scratch *s, uint8_t *p)
{
    if (!p)
        return;
    if (p >= s->mem && p < s->mem + SCRATCH_SLOTS * SX_SCRATCH_BYTES) {
        size_t i = (size_t)(p - s->mem) / SX_SCRATCH_BYTES;
        sodium_memzero(p, SX_SCRATCH_BYTES);
        pthread_mutex_lock(&s->mu);
        s->busy &= ~(1ull << i);
        pthread_mutex_unlock(&s->mu);
    } else {
        sodium_free(p);
    }
}
