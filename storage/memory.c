/*
 * memory.c - the in-memory storage backend: ordered, thread-safe, NOT durable.
 *
 * Everything lives in one skip list in process memory and is gone when the store is closed or the
 * process exits; a "restart" always begins empty. It exists for unit tests of the layers above and
 * for throwaway runs (`backend = memory`), never for data anyone wants to keep, which is why its
 * table does not set SX_STORAGE_CAP_DURABLE.
 *
 * Concurrency: one reader/writer lock per store. Readers (get, iterator steps) share it; writers
 * (put, delete, batch) take it exclusively, which makes every batch trivially atomic. All memory a
 * write needs is allocated before the lock is taken, so a batch never fails half-applied.
 *
 * Revisions come from a per-store counter starting at 1 and incremented under the write lock; the
 * store never lives longer than the process, so the counter is never reused.
 *
 * Iterators do not pin the list: each step takes the read lock, seeks to the first key after the
 * last one returned and copies that record into buffers owned by the iterator. Records written or
 * deleted meanwhile may or may not be seen, but no key is returned twice or out of order.
 */
#include "storage/storage_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MEM_MAX_LEVEL 24

typedef struct mem_node {
    uint8_t *key;
    size_t klen;
    uint8_t *val; /* malloc'd, at least 1 byte even when vlen == 0 */
    size_t vlen;
    uint64_t rev;
    int level;
    struct mem_node *next[]; /* level entries */
} mem_node;

typedef struct mem_store {
    sx_storage base; /* must stay first */
    pthread_rwlock_t lock;
    mem_node *head; /* sentinel with MEM_MAX_LEVEL links */
    int level;      /* highest level in use, >= 1 */
    uint64_t last_rev;
    atomic_uint_fast64_t rng;
} mem_store;

typedef struct mem_iter {
    sx_storage_iter base; /* must stay first */
    mem_store *s;
    uint8_t *prefix;
    size_t plen;
    uint8_t *kbuf; /* last key returned (also the position of the next seek) */
    size_t klen, kcap;
    uint8_t *vbuf;
    size_t vlen, vcap;
    uint64_t rev;
    bool excl; /* skip a key equal to kbuf */
    bool done;
} mem_iter;

static const sx_storage_iter_ops mem_iter_ops;

static void node_free(mem_node *n)
{
    if (!n)
        return;
    free(n->key);
    free(n->val);
    free(n);
}

/* A level with P(level >= k) = 4^-(k-1), from a lock-free splitmix64 sequence. */
static int random_level(mem_store *s)
{
    uint64_t z = atomic_fetch_add(&s->rng, 0x9E3779B97F4A7C15ull) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    int level = 1;
    while (level < MEM_MAX_LEVEL && (z & 3) == 0) {
        level++;
        z >>= 2;
    }
    return level;
}

/* Allocate a node holding copies of key and val; NULL on ENOMEM. */
static mem_node *node_new(mem_store *s, const void *key, size_t klen, const void *val, size_t vlen)
{
    int level = random_level(s);
    mem_node *n = calloc(1, sizeof(*n) + (size_t)level * sizeof(mem_node *));
    if (!n)
        return NULL;
    n->level = level;
    n->key = malloc(klen);
    n->val = malloc(vlen ? vlen : 1);
    if (!n->key || !n->val) {
        node_free(n);
        return NULL;
    }
    memcpy(n->key, key, klen);
    n->klen = klen;
    if (vlen)
        memcpy(n->val, val, vlen);
    n->vlen = vlen;
    return n;
}

/*
 * Find the first node with key >= (key, klen) (or > when excl). When update != NULL it receives,
 * per level, the last node before that position. Caller holds the lock.
 */
static mem_node *find_ge(mem_store *s, const void *key, size_t klen, bool excl, mem_node **update)
{
    mem_node *x = s->head;
    for (int i = s->level - 1; i >= 0; i--) {
        for (;;) {
            mem_node *nx = x->next[i];
            if (!nx)
                break;
            int c = sxs_keycmp(nx->key, nx->klen, key, klen);
            if (c < 0 || (excl && c == 0))
                x = nx;
            else
                break;
        }
        if (update)
            update[i] = x;
    }
    return x->next[0];
}

static mem_node *find_eq(mem_store *s, const void *key, size_t klen, mem_node **update)
{
    mem_node *n = find_ge(s, key, klen, false, update);
    return n && sxs_keycmp(n->key, n->klen, key, klen) == 0 ? n : NULL;
}

static void link_node(mem_store *s, mem_node *n, mem_node **update)
{
    if (n->level > s->level) {
        for (int i = s->level; i < n->level; i++)
            update[i] = s->head;
        s->level = n->level;
    }
    for (int i = 0; i < n->level; i++) {
        n->next[i] = update[i]->next[i];
        update[i]->next[i] = n;
    }
}

static void unlink_node(mem_store *s, mem_node *n, mem_node **update)
{
    for (int i = 0; i < n->level; i++)
        if (update[i]->next[i] == n)
            update[i]->next[i] = n->next[i];
    while (s->level > 1 && !s->head->next[s->level - 1])
        s->level--;
}

static int mem_open(const sx_storage_options *opt, sx_storage **ret, char *err, size_t errlen)
{
    mem_store *s = calloc(1, sizeof(*s));
    if (!s) {
        sx_fail(err, errlen, 0, "memory storage: out of memory");
        return -ENOMEM;
    }
    s->head = calloc(1, sizeof(mem_node) + MEM_MAX_LEVEL * sizeof(mem_node *));
    if (!s->head || pthread_rwlock_init(&s->lock, NULL) != 0) {
        free(s->head);
        free(s);
        sx_fail(err, errlen, 0, "memory storage: out of memory");
        return -ENOMEM;
    }
    s->head->level = MEM_MAX_LEVEL;
    s->level = 1;
    atomic_init(&s->rng, (uint64_t)(uintptr_t)s);
    s->base.ops = &sx_storage_memory_ops;
    *ret = &s->base;
    return 0;
}

static void mem_close(sx_storage *base)
{
    mem_store *s = (mem_store *)base;
    if (!s)
        return;
    mem_node *n = s->head->next[0];
    while (n) {
        mem_node *nx = n->next[0];
        node_free(n);
        n = nx;
    }
    free(s->head);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

static int mem_get(sx_storage *base, const void *key, size_t klen, void **ret_val, size_t *ret_len, uint64_t *ret_rev)
{
    mem_store *s = (mem_store *)base;
    pthread_rwlock_rdlock(&s->lock);
    mem_node *n = find_eq(s, key, klen, NULL);
    if (!n) {
        pthread_rwlock_unlock(&s->lock);
        return -ENOENT;
    }
    void *copy = NULL;
    if (ret_val) {
        copy = malloc(n->vlen ? n->vlen : 1);
        if (!copy) {
            pthread_rwlock_unlock(&s->lock);
            return -ENOMEM;
        }
        memcpy(copy, n->val, n->vlen);
        *ret_val = copy;
    }
    if (ret_len)
        *ret_len = n->vlen;
    if (ret_rev)
        *ret_rev = n->rev;
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

/* Does node n (NULL = absent) satisfy op's precondition? */
static bool cond_holds(const sx_storage_op *op, const mem_node *n)
{
    switch (op->cond) {
    case SX_STORAGE_COND_NONE:
        return true;
    case SX_STORAGE_COND_ABSENT:
        return n == NULL;
    case SX_STORAGE_COND_PRESENT:
        return n != NULL;
    case SX_STORAGE_COND_REV:
        return n != NULL && n->rev == op->rev;
    }
    return false;
}

static int mem_batch(sx_storage *base, sx_storage_op *ops, size_t n, size_t *ret_failed)
{
    mem_store *s = (mem_store *)base;
    int r = sxs_batch_validate(ops, n);
    if (r < 0)
        return r;

    /* Allocate every node a PUT may need before locking, so applying cannot fail. */
    mem_node **fresh = calloc(n, sizeof(*fresh));
    if (!fresh)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != SX_STORAGE_OP_PUT)
            continue;
        fresh[i] = node_new(s, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
        if (!fresh[i]) {
            r = -ENOMEM;
            goto out;
        }
    }

    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        if (!cond_holds(&ops[i], find_eq(s, ops[i].key, ops[i].klen, NULL))) {
            pthread_rwlock_unlock(&s->lock);
            if (ret_failed)
                *ret_failed = i;
            r = SX_STORAGE_ECONDITION;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        mem_node *update[MEM_MAX_LEVEL];
        mem_node *cur = find_eq(s, ops[i].key, ops[i].klen, update);
        if (ops[i].kind == SX_STORAGE_OP_PUT) {
            uint64_t rev = ++s->last_rev;
            if (cur) {
                /* Swap the new value into the existing node; the spare node takes the old one. */
                uint8_t *v = cur->val;
                size_t vl = cur->vlen;
                cur->val = fresh[i]->val;
                cur->vlen = fresh[i]->vlen;
                fresh[i]->val = v;
                fresh[i]->vlen = vl;
                cur->rev = rev;
            } else {
                fresh[i]->rev = rev;
                link_node(s, fresh[i], update);
                fresh[i] = NULL;
            }
            ops[i].ret_rev = rev;
        } else if (ops[i].kind == SX_STORAGE_OP_DELETE && cur) {
            unlink_node(s, cur, update);
            fresh[i] = cur; /* freed below, outside the lock */
        }
    }
    pthread_rwlock_unlock(&s->lock);
    r = 0;
out:
    for (size_t i = 0; i < n; i++)
        node_free(fresh[i]);
    free(fresh);
    return r;
}

static int mem_put(sx_storage *base, const void *key, size_t klen, const void *val, size_t vlen, uint64_t *ret_rev)
{
    sx_storage_op op = {.kind = SX_STORAGE_OP_PUT, .key = key, .klen = klen, .val = val, .vlen = vlen};
    int r = mem_batch(base, &op, 1, NULL);
    if (r == 0 && ret_rev)
        *ret_rev = op.ret_rev;
    return r;
}

static int mem_del(sx_storage *base, const void *key, size_t klen)
{
    mem_store *s = (mem_store *)base;
    mem_node *update[MEM_MAX_LEVEL];
    pthread_rwlock_wrlock(&s->lock);
    mem_node *cur = find_eq(s, key, klen, update);
    if (cur)
        unlink_node(s, cur, update);
    pthread_rwlock_unlock(&s->lock);
    if (!cur)
        return -ENOENT;
    node_free(cur);
    return 0;
}

/* Grow *buf to hold need bytes (at least 1). */
static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need == 0)
        need = 1;
    if (*cap >= need)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    uint8_t *p = realloc(*buf, c);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = c;
    return 0;
}

static int mem_iter_new(sx_storage *base, const void *prefix, size_t plen, const void *start, size_t slen,
                        unsigned flags, sx_storage_iter **ret)
{
    mem_iter *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    it->base.ops = &mem_iter_ops;
    it->s = (mem_store *)base;
    const void *lb;
    size_t lblen;
    sxs_iter_lower_bound(prefix, plen, start, slen, flags, &lb, &lblen, &it->excl);
    it->prefix = malloc(plen ? plen : 1);
    if (!it->prefix || reserve(&it->kbuf, &it->kcap, lblen) < 0) {
        free(it->prefix);
        free(it);
        return -ENOMEM;
    }
    if (plen)
        memcpy(it->prefix, prefix, plen);
    it->plen = plen;
    if (lblen)
        memcpy(it->kbuf, lb, lblen);
    it->klen = lblen;
    *ret = &it->base;
    return 0;
}

static int mem_iter_next(sx_storage_iter *base, const void **key, size_t *klen, const void **val, size_t *vlen,
                         uint64_t *rev)
{
    mem_iter *it = (mem_iter *)base;
    if (it->done)
        return SX_STORAGE_DONE;
    mem_store *s = it->s;
    pthread_rwlock_rdlock(&s->lock);
    mem_node *n = find_ge(s, it->kbuf, it->klen, it->excl, NULL);
    if (!n || !sxs_has_prefix(n->key, n->klen, it->prefix, it->plen)) {
        pthread_rwlock_unlock(&s->lock);
        it->done = true;
        return SX_STORAGE_DONE;
    }
    if (reserve(&it->kbuf, &it->kcap, n->klen) < 0 || reserve(&it->vbuf, &it->vcap, n->vlen) < 0) {
        pthread_rwlock_unlock(&s->lock);
        return -ENOMEM;
    }
    memcpy(it->kbuf, n->key, n->klen);
    it->klen = n->klen;
    memcpy(it->vbuf, n->val, n->vlen);
    it->vlen = n->vlen;
    it->rev = n->rev;
    it->excl = true;
    pthread_rwlock_unlock(&s->lock);
    if (key)
        *key = it->kbuf;
    if (klen)
        *klen = it->klen;
    if (val)
        *val = it->vbuf;
    if (vlen)
        *vlen = it->vlen;
    if (rev)
        *rev = it->rev;
    return 0;
}

static void mem_iter_free(sx_storage_iter *base)
{
    mem_iter *it = (mem_iter *)base;
    if (!it)
        return;
    free(it->prefix);
    free(it->kbuf);
    free(it->vbuf);
    free(it);
}

static const sx_storage_iter_ops mem_iter_ops = {
    .next = mem_iter_next,
    .free = mem_iter_free,
};

/* Nothing to do: a deleted record's memory is freed at once and the store has no files. */
static int mem_compact(sx_storage *base, const void *begin, size_t blen, const void *end, size_t elen)
{
    (void)base, (void)begin, (void)blen, (void)end, (void)elen;
    return 0;
}

const sx_storage_ops sx_storage_memory_ops = {
    .version = SX_STORAGE_OPS_VERSION,
    .name = "memory",
    .caps = SX_STORAGE_CAP_COMPACT, /* not durable, no checkpoint, one process, no files */
    .open = mem_open,
    .close = mem_close,
    .get = mem_get,
    .put = mem_put,
    .del = mem_del,
    .batch = mem_batch,
    .iter_new = mem_iter_new,
    .checkpoint = NULL,
    .change_seq = NULL,
    .compact = mem_compact,
};
