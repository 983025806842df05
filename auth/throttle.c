/*
 * throttle.c - token buckets of failed authentications per client address.
 *
 * Guessing a 256-bit secret is hopeless, so the throttle is not what keeps tokens safe; it makes a
 * client that fails over and over get 429 (so id scanning is slow and visible, and tells nothing)
 * and shows up in the metrics. It must never refuse a valid token - many clients may share one
 * address behind a NAT or a proxy, so sx_auth_authenticate() verifies every token and slows only
 * the failures - and it must not become a memory sink itself.
 *
 * Design: a fixed table of max_addresses slots, grouped into sets of 8 (set-associative, like a CPU
 * cache). An address maps to one set through SipHash (crypto_shorthash) keyed with a random key
 * made per table, so an attacker cannot aim many addresses at the set of a victim. Each set has its
 * own mutex (lock striping at the finest grain: the critical section is a few dozen instructions,
 * and two threads only contend when their clients share a set). Each slot is a token bucket: burst
 * tokens, refilled at refill_per_s, one taken per failure; the address is blocked while it has less
 * than one token. An address with no slot has a full bucket, so a slot whose bucket has refilled is
 * worth nothing: when a set is full, a new address takes the slot with the most tokens (ties: the
 * least recently touched), which keeps blocked addresses for as long as possible.
 *
 * Client identity: IPv4 addresses (and IPv4-mapped IPv6) one by one; IPv6 by /64 prefix, because a
 * single host usually controls a whole /64.
 */
#include "auth/auth_internal.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define WAYS              8u
#define DEFAULT_BURST     20u
#define DEFAULT_REFILL    1.0
#define DEFAULT_ADDRESSES 16384u
#define MAX_ADDRESSES     (1u << 24)
#define MAX_RETRY_S       3600u
#define KEY_LEN           9u /* family byte + up to 8 address bytes */

typedef struct slot {
    bool used;
    unsigned char key[KEY_LEN];
    double tokens;
    int64_t last_ms;
} slot;

typedef struct tset {
    pthread_mutex_t mu;
    atomic_uint nused; /* slots ever taken (they are reused, never freed): 0 = nothing to look up */
    slot slots[WAYS];
} tset;

struct sx_auth_throttle {
    tset *sets;
    size_t nsets;
    double burst;
    double rate; /* tokens per ms */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    _Atomic size_t count;
};

int sx_auth_throttle_new(const sx_auth_throttle_options *opt, sx_auth_throttle **ret)
{
    sx_auth_throttle_options o = {0};
    if (opt)
        o = *opt;
    if (!ret)
        return -EINVAL;
    if (o.burst == 0)
        o.burst = DEFAULT_BURST;
    if (o.refill_per_s == 0)
        o.refill_per_s = DEFAULT_REFILL;
    if (o.max_addresses == 0)
        o.max_addresses = DEFAULT_ADDRESSES;
    if (!(o.refill_per_s > 0 && o.refill_per_s <= 1e6) || o.max_addresses > MAX_ADDRESSES || o.burst > 1000000)
        return -EINVAL;
    if (sodium_init() < 0)
        return -ENOMEM;

    sx_auth_throttle *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->nsets = (o.max_addresses + WAYS - 1) / WAYS;
    t->sets = calloc(t->nsets, sizeof *t->sets);
    if (!t->sets) {
        free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->nsets; i++) {
        pthread_mutex_init(&t->sets[i].mu, NULL);
        atomic_init(&t->sets[i].nused, 0);
    }
    t->burst = o.burst;
    t->rate = o.refill_per_s / 1000.0;
    randombytes_buf(t->hkey, sizeof t->hkey);
    atomic_init(&t->count, 0);
    *ret = t;
    return 0;
}

void sx_auth_throttle_free(sx_auth_throttle *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nsets; i++)
        pthread_mutex_destroy(&t->sets[i].mu);
    free(t->sets);
    free(t);
}

size_t sx_auth_throttle_count(sx_auth_throttle *t)
{
    return t ? atomic_load(&t->count) : 0;
}

size_t sx_auth_throttle_capacity(const sx_auth_throttle *t)
{
    return t ? t->nsets * WAYS : 0;
}

/* The client key of addr; false for families that are not throttled. */
static bool client_key(const struct sockaddr *sa, unsigned char key[KEY_LEN])
{
    memset(key, 0, KEY_LEN);
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *a = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            key[0] = 4;
            memcpy(key + 1, a + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, a, 8); /* the /64 */
        }
        return true;
    }
    return false;
}

static tset *set_for(sx_auth_throttle *t, const unsigned char key[KEY_LEN])
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, key, KEY_LEN, t->hkey);
    memcpy(&v, h, sizeof v);
    return &t->sets[v % t->nsets];
}

/* Tokens of s at now_ms (refilled; the clock going backwards refills nothing). */
static double level(const sx_auth_throttle *t, const slot *s, int64_t now_ms)
{
    double v = s->tokens;
    if (now_ms > s->last_ms)
        v += (double)(now_ms - s->last_ms) * t->rate;
    return v > t->burst ? t->burst : v;
}

static slot *find(tset *set, const unsigned char key[KEY_LEN])
{
    for (unsigned i = 0; i < WAYS; i++)
        if (set->slots[i].used && memcmp(set->slots[i].key, key, KEY_LEN) == 0)
            return &set->slots[i];
    return NULL;
}

bool sx_auth_throttle_blocked(sx_auth_throttle *t, const struct sockaddr *addr, int64_t now_ms,
                              unsigned *ret_retry_after_s)
{
    unsigned char key[KEY_LEN];
    /* No address has failed yet (the usual state of a healthy server): nothing to look up or lock.
     * A failure counted on another thread at this moment is ordered after this check. */
    if (!t || atomic_load_explicit(&t->count, memory_order_acquire) == 0 || !client_key(addr, key))
        return false;
    tset *set = set_for(t, key);
    if (atomic_load_explicit(&set->nused, memory_order_acquire) == 0)
        return false;
    bool blocked = false;
    double tokens = 0;
    pthread_mutex_lock(&set->mu);
    slot *s = find(set, key);
    if (s) {
        tokens = level(t, s, now_ms);
        blocked = tokens < 1.0;
    }
    pthread_mutex_unlock(&set->mu);
    if (blocked && ret_retry_after_s) {
        double secs = ceil((1.0 - tokens) / t->rate / 1000.0);
        *ret_retry_after_s = secs < 1 ? 1 : secs > MAX_RETRY_S ? MAX_RETRY_S : (unsigned)secs;
    }
    return blocked;
}

void sx_auth_throttle_failed(sx_auth_throttle *t, const struct sockaddr *addr, int64_t now_ms)
{
    unsigned char key[KEY_LEN];
    if (!t || !client_key(addr, key))
        return;
    tset *set = set_for(t, key);
    pthread_mutex_lock(&set->mu);
    slot *s = find(set, key);
    double tokens;
    if (s) {
        tokens = level(t, s, now_ms);
    } else {
        /* Take a free slot, else the one nearest a full bucket (ties: least recently touched). */
        slot *v = NULL;
        double best = -1;
        for (unsigned i = 0; i < WAYS; i++) {
            slot *c = &set->slots[i];
            if (!c->used) {
                v = c;
                atomic_fetch_add(&t->count, 1);
                atomic_fetch_add(&set->nused, 1);
                break;
            }
            double l = level(t, c, now_ms);
            if (!v || l > best || (l == best && c->last_ms < v->last_ms)) {
                v = c;
                best = l;
            }
        }
        s = v;
        s->used = true;
        memcpy(s->key, key, KEY_LEN);
        s->last_ms = now_ms;
        tokens = t->burst;
    }
    tokens -= 1.0;
    s->tokens = tokens < 0 ? 0 : tokens;
    if (now_ms > s->last_ms)
        s->last_ms = now_ms;
    pthread_mutex_unlock(&set->mu);
}
