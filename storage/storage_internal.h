/*
 * storage_internal.h - helpers shared by the storage backends; not part of the public contract.
 *
 * Only files under storage/ include this header. It holds the pieces every backend needs in the
 * same form: the batch sanity check (a key at most once per batch), the key comparison that defines
 * the store's order, and the lower bound of an iteration.
 */
#ifndef SX_STORAGE_INTERNAL_H
#define SX_STORAGE_INTERNAL_H

#include "storage/storage.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* Bytewise key order: memcmp on the common length, the shorter key first on a tie. */
static inline int sxs_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* True when key starts with prefix. */
static inline bool sxs_has_prefix(const void *key, size_t klen, const void *prefix, size_t plen)
{
    return klen >= plen && (plen == 0 || memcmp(key, prefix, plen) == 0);
}

/*
 * The smallest key greater than every key with this prefix: strip trailing 0xff bytes, then add
 * one to the last byte (out has room for plen bytes). No such key exists for an empty or all-0xff
 * prefix (*ret_len = 0).
 */
static inline void sxs_prefix_successor(const uint8_t *prefix, size_t plen, uint8_t *out, size_t *ret_len)
{
    size_t n = plen;
    while (n > 0 && prefix[n - 1] == 0xff)
        n--;
    if (n == 0) {
        *ret_len = 0;
        return;
    }
    memcpy(out, prefix, n);
    out[n - 1]++;
    *ret_len = n;
}

/*
 * Where an iteration starts: the larger of prefix and start. *ret_key and *ret_len borrow one of the
 * two arguments; *ret_excl is true when the first key equal to the bound must be skipped (only
 * when the bound is start and SX_STORAGE_ITER_AFTER is set).
 */
static inline void sxs_iter_lower_bound(const void *prefix, size_t plen, const void *start, size_t slen, unsigned flags,
                                        const void **ret_key, size_t *ret_len, bool *ret_excl)
{
    if (start && slen && sxs_keycmp(start, slen, prefix, plen) >= 0) {
        *ret_key = start;
        *ret_len = slen;
        *ret_excl = (flags & SX_STORAGE_ITER_AFTER) != 0;
    } else {
        *ret_key = prefix;
        *ret_len = plen;
        *ret_excl = false;
    }
}

/*
 * Check what the inline wrapper cannot check cheaply: no key appears twice in ops, and every
 * precondition is a known value. Returns 0 or -EINVAL. Allocates a temporary index (-ENOMEM).
 */
int sxs_batch_validate(const sx_storage_op *ops, size_t n);

/* The backends built into the library (defined in their own files). */
extern const sx_storage_ops sx_storage_memory_ops;
extern const sx_storage_ops sx_storage_rocksdb_ops;
#ifdef SX_HAVE_POSTGRES
extern const sx_storage_ops sx_storage_postgres_ops;
#endif

/*
 * Group commit (group.c): writers that each need a synced write queue up, and one leader commits
 * the whole queue with one synced write. See group.c for the design.
 */
typedef struct sxs_group_req {
    void *arg; /* the caller's request, passed to the commit function */
    int result;
    bool done;
    bool leader;
    struct sxs_group_req *next;
} sxs_group_req;

/* Commit every request in list (linked by next) with one atomic, durable write; the result is
 * given to all of them. Called without the group's lock, by one thread at a time. */
typedef int (*sxs_group_commit_fn)(void *ctx, sxs_group_req *list);

typedef struct sxs_group {
    pthread_mutex_t mu;
    pthread_cond_t arrive; /* signalled when the queue reaches `gather`; the leader waits on it */
    pthread_cond_t done;   /* broadcast when a group is committed or a leader promoted */
    sxs_group_req *head, *tail;
    size_t qlen;
    size_t gather;     /* while a leader gathers: the queue length it waits for, else 0 */
    bool busy;         /* a leader is active */
    size_t last_group; /* size of the previous group: how many to gather */
    uint64_t ewma_ns;  /* recent commit duration: bounds the gather */
    sxs_group_commit_fn fn;
    void *ctx;
} sxs_group;

/* Initialise g (0 or -ENOMEM); sxs_group_clear() releases it once no writer uses it. */
int sxs_group_init(sxs_group *g, sxs_group_commit_fn fn, void *ctx);
void sxs_group_clear(sxs_group *g);

/* Queue arg and block until a group containing it has been committed; returns fn's result. */
int sxs_group_commit(sxs_group *g, void *arg);

#endif /* SX_STORAGE_INTERNAL_H */
