/*
 * page_cache.c - recently sent list pages, per event-loop thread, valid while the store is unchanged.
 *
 * Listing an environment is the most expensive read: a prefix scan of every metadata record of
 * the env and a JSON object per record, for a body of some 20 KiB per 100 secrets, which clients
 * fetch far more often than anything is written. This cache keeps the finished bodies of recent
 * pages and sends them again as long as the store has not changed since they were read.
 *
 * Validity: a page is stored with the store's change sequence read BEFORE its scan began
 * (sx_storage_change_seq); it is sent again only while the store still reports that same number,
 * i.e. while no write at all has become visible since. A write racing with the scan can only make
 * the stored number older than what the scan saw, so the page is dropped at the next lookup, never
 * served stale. Stores that another process also writes (SX_STORAGE_CAP_SHARED) and backends
 * without a change sequence are never cached (the caller gets -ENOTSUP and skips the cache).
 *
 * What is cached is exactly what the list sends to any caller allowed to read the env: names,
 * descriptions and timestamps - metadata, never values. The values map keeps its ETag here too
 * (values.c: a digest of names and version numbers, never a value), so a poller's 304 costs no
 * walk while nothing was written. Authentication and authorization run before every lookup, as for
 * an uncached read.
 *
 * Threads: each event-loop thread has its own cache (no locks); pages live in h2o shared memory,
 * so a hit links the page into the request's pool instead of copying it, and an evicted page
 * lives on until the last response that sends it is done. Bounded: PAGE_SLOTS pages and
 * PAGE_BYTES of bodies per table and thread, least recently used evicted first.
 *
 * A second table, with the same rules, keeps single secrets' metadata answers (GET of one secret:
 * the JSON body and its ETag): the most frequent read, which without it costs a store read and a
 * JSON object per request. It is a table of its own so that reading many secrets never evicts the
 * list pages.
 */
#include "server/server_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SLOTS    32
#define PAGE_BYTES    (4u << 20) /* bodies per thread */
#define PAGE_BODY_MAX (1u << 20) /* larger pages are not kept */

typedef struct page {
    uint64_t seq;  /* the store's change sequence the page was read at */
    uint64_t used; /* LRU clock */
    uint64_t hash;
    char *mem; /* h2o shared memory: body, then link; NULL = free slot */
    size_t body_len, link_len;
    size_t id_len;
    char id[SX_PAGE_ID_MAX];
} page;

typedef struct page_cache {
    page slots[PAGE_SLOTS];
    size_t bytes;
    uint64_t clock;
} page_cache;

/* A loop thread's two tables: list pages, and single secrets' metadata answers (kept apart so that
 * reads of many secrets never push the more expensive list pages out). */
typedef struct thread_caches {
    page_cache pages;
    page_cache metas;
} thread_caches;

static __thread thread_caches *thread_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void drop(page_cache *c, page *p)
{
    if (p->mem) {
        h2o_mem_release_shared(p->mem);
        c->bytes -= p->body_len + p->link_len;
    }
    p->mem = NULL;
}

static void cache_free(void *arg)
{
    thread_caches *t = arg;
    for (size_t i = 0; i < PAGE_SLOTS; i++) {
        drop(&t->pages, &t->pages.slots[i]);
        drop(&t->metas, &t->metas.slots[i]);
    }
    free(t);
}

static void cache_key_init(void)
{
    pthread_key_create(&cache_key, cache_free);
}

static thread_caches *caches_get(void)
{
    if (!thread_cache) {
        pthread_once(&cache_once, cache_key_init);
        thread_cache = calloc(1, sizeof(*thread_cache));
        if (thread_cache)
            pthread_setspecific(cache_key, thread_cache); /* freed when the thread exits */
    }
    return thread_cache;
}

static uint64_t hash_of(const char *id, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)id[i]) * 0x100000001b3ull;
    return h;
}

static page *find(page_cache *c, const char *id, size_t len, uint64_t h)
{
    for (size_t i = 0; i < PAGE_SLOTS; i++) {
        page *p = &c->slots[i];
        if (p->mem && p->hash == h && p->id_len == len && memcmp(p->id, id, len) == 0)
            return p;
    }
    return NULL;
}

static bool cache_lookup(page_cache *c, const char *id, size_t id_len, uint64_t seq, h2o_mem_pool_t *pool,
                         h2o_iovec_t *ret_body, h2o_iovec_t *ret_link)
{
    if (!c || id_len > SX_PAGE_ID_MAX)
        return false;
    page *p = find(c, id, id_len, hash_of(id, id_len));
    if (!p)
        return false;
    if (p->seq != seq) {
        drop(c, p); /* the store has changed since: never valid again */
        return false;
    }
    p->used = ++c->clock;
    h2o_mem_link_shared(pool, p->mem); /* lives until the request's pool is cleared */
    *ret_body = h2o_iovec_init(p->mem, p->body_len);
    *ret_link = h2o_iovec_init(p->link_len ? p->mem + p->body_len : NULL, p->link_len);
    return true;
}

static void cache_store(page_cache *c, const char *id, size_t id_len, uint64_t seq, h2o_iovec_t body, h2o_iovec_t link)
{
    size_t size = body.len + link.len;
    if (!c || id_len > SX_PAGE_ID_MAX || size > PAGE_BODY_MAX || size == 0)
        return;
    uint64_t h = hash_of(id, id_len);
    page *p = find(c, id, id_len, h);
    if (p)
        drop(c, p);
    /* Make room: a free slot and the byte budget, evicting the least recently used. */
    for (;;) {
        page *lru = NULL, *free_slot = NULL;
        for (size_t i = 0; i < PAGE_SLOTS; i++) {
            page *q = &c->slots[i];
            if (!q->mem)
                free_slot = free_slot ? free_slot : q;
            else if (!lru || q->used < lru->used)
                lru = q;
        }
        if (free_slot && c->bytes + size <= PAGE_BYTES) {
            p = free_slot;
            break;
        }
        if (!lru)
            return;
        drop(c, lru);
    }
    char *mem = h2o_mem_alloc_shared(NULL, size, NULL);
    memcpy(mem, body.base, body.len);
    if (link.len)
        memcpy(mem + body.len, link.base, link.len);
    p->mem = mem;
    p->body_len = body.len;
    p->link_len = link.len;
    p->seq = seq;
    p->hash = h;
    p->used = ++c->clock;
    p->id_len = id_len;
    memcpy(p->id, id, id_len);
    c->bytes += size;
}

bool sx_page_cache_get(const char *id, size_t id_len, uint64_t seq, h2o_mem_pool_t *pool, h2o_iovec_t *ret_body,
                       h2o_iovec_t *ret_link)
{
    thread_caches *t = caches_get();
    return t && cache_lookup(&t->pages, id, id_len, seq, pool, ret_body, ret_link);
}

void sx_page_cache_put(const char *id, size_t id_len, uint64_t seq, h2o_iovec_t body, h2o_iovec_t link)
{
    thread_caches *t = caches_get();
    if (t)
        cache_store(&t->pages, id, id_len, seq, body, link);
}

bool sx_meta_cache_get(const char *id, size_t id_len, uint64_t seq, h2o_mem_pool_t *pool, h2o_iovec_t *ret_body,
                       h2o_iovec_t *ret_etag)
{
    thread_caches *t = caches_get();
    return t && cache_lookup(&t->metas, id, id_len, seq, pool, ret_body, ret_etag);
}

void sx_meta_cache_put(const char *id, size_t id_len, uint64_t seq, h2o_iovec_t body, h2o_iovec_t etag)
{
    thread_caches *t = caches_get();
    if (t)
        cache_store(&t->metas, id, id_len, seq, body, etag);
}
