/*
 * fault.c - a storage backend that wraps another and fails chosen calls with -EIO.
 *
 * Tests of the layers above (crypto, auth, server) use it to prove that a storage error surfaces
 * as an error and never as a half-done change: sx_storage_fault_set(s, nth, every) makes the nth
 * counted call from now fail (and every later one too when `every` is set). Counted calls are get,
 * put, del, batch, iter_new, each iterator step and compact; close and checkpoint are forwarded
 * untouched.
 * A failed call is not forwarded at all, so the inner store is left exactly as it was.
 *
 * The wrapper's table is a per-handle copy of a template whose caps mirror the inner backend, so a
 * caller's capability checks see what the wrapped store can really do. The counter sits behind a
 * mutex; it is cheap compared with any real backend call.
 */
#include "storage/fault.h"
#include "storage/storage_internal.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct fault_store {
    sx_storage base; /* must stay first; base.ops points at table below */
    sx_storage_ops table;
    sx_storage *inner;
    pthread_mutex_t mu;
    unsigned long calls; /* counted calls since the last sx_storage_fault_set() */
    unsigned long nth;   /* 0 = never fail */
    bool every;
} fault_store;

typedef struct fault_iter {
    sx_storage_iter base; /* must stay first */
    fault_store *s;
    sx_storage_iter *inner;
} fault_iter;

static const sx_storage_iter_ops fault_iter_ops;

/* Count one call; true when it must fail. */
static bool should_fail(fault_store *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned long c = ++s->calls;
    bool fail = s->nth && (c == s->nth || (s->every && c > s->nth));
    pthread_mutex_unlock(&s->mu);
    return fail;
}

void sx_storage_fault_set(sx_storage *fault, unsigned long nth, bool every)
{
    fault_store *s = (fault_store *)fault;
    pthread_mutex_lock(&s->mu);
    s->calls = 0;
    s->nth = nth;
    s->every = every;
    pthread_mutex_unlock(&s->mu);
}

unsigned long sx_storage_fault_calls(sx_storage *fault)
{
    fault_store *s = (fault_store *)fault;
    pthread_mutex_lock(&s->mu);
    unsigned long c = s->calls;
    pthread_mutex_unlock(&s->mu);
    return c;
}

static int fault_open(const sx_storage_options *opt, sx_storage **ret, char *err, size_t errlen)
{
    sx_fail(err, errlen, 0, "fault storage: use sx_storage_fault_wrap() around an open store");
    return -ENOTSUP;
}

static void fault_close(sx_storage *base)
{
    fault_store *s = (fault_store *)base;
    if (!s)
        return;
    sx_storage_close(s->inner);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int fault_get(sx_storage *base, const void *key, size_t klen, void **ret_val, size_t *ret_len, uint64_t *ret_rev)
{
    fault_store *s = (fault_store *)base;
    if (should_fail(s))
        return -EIO;
    return s->inner->ops->get(s->inner, key, klen, ret_val, ret_len, ret_rev);
}

static int fault_put(sx_storage *base, const void *key, size_t klen, const void *val, size_t vlen, uint64_t *ret_rev)
{
    fault_store *s = (fault_store *)base;
    if (should_fail(s))
        return -EIO;
    return s->inner->ops->put(s->inner, key, klen, val, vlen, ret_rev);
}

static int fault_del(sx_storage *base, const void *key, size_t klen)
{
    fault_store *s = (fault_store *)base;
    if (should_fail(s))
        return -EIO;
    return s->inner->ops->del(s->inner, key, klen);
}

static int fault_batch(sx_storage *base, sx_storage_op *ops, size_t n, size_t *ret_failed)
{
    fault_store *s = (fault_store *)base;
    if (should_fail(s))
        return -EIO;
    return s->inner->ops->batch(s->inner, ops, n, ret_failed);
}

static int fault_iter_new(sx_storage *base, const void *prefix, size_t plen, const void *start, size_t slen,
                          unsigned flags, sx_storage_iter **ret)
{
    fault_store *s = (fault_store *)base;
    if (should_fail(s))
        return -EIO;
    fault_iter *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    int r = s->inner->ops->iter_new(s->inner, prefix, plen, start, slen, flags, &it->inner);
    if (r < 0) {
        free(it);
        return r;
    }
    it->base.ops = &fault_iter_ops;
    it->s = s;
    *ret = &it->base;
    return 0;
}

static int fault_checkpoint(sx_storage *base, const char *dir)
{
    fault_store *s = (fault_store *)base;
    return sx_storage_checkpoint(s->inner, dir);
}

static int fault_compact(sx_storage *base, const void *begin, size_t blen, const void *end, size_t elen)
{
    fault_store *s = (fault_store *)base;
    if (should_fail(s))
        return -EIO;
    return sx_storage_compact(s->inner, begin, blen, end, elen);
}

static int fault_iter_next(sx_storage_iter *base, const void **key, size_t *klen, const void **val, size_t *vlen,
                           uint64_t *rev)
{
    fault_iter *it = (fault_iter *)base;
    if (should_fail(it->s))
        return -EIO;
    return it->inner->ops->next(it->inner, key, klen, val, vlen, rev);
}

static void fault_iter_free(sx_storage_iter *base)
{
    fault_iter *it = (fault_iter *)base;
    if (!it)
        return;
    sx_storage_iter_free(it->inner);
    free(it);
}

static const sx_storage_iter_ops fault_iter_ops = {
    .next = fault_iter_next,
    .free = fault_iter_free,
};

/* What the inner store is connected to: no fault is injected into a bookkeeping read. */
static int fault_remote(sx_storage *base, sx_storage_remote *ret)
{
    return sx_storage_remote_get(((fault_store *)base)->inner, ret);
}

static const sx_storage_ops fault_template = {
    .version = SX_STORAGE_OPS_VERSION,
    .name = "fault",
    .caps = 0, /* replaced by the inner backend's caps */
    .open = fault_open,
    .close = fault_close,
    .get = fault_get,
    .put = fault_put,
    .del = fault_del,
    .batch = fault_batch,
    .iter_new = fault_iter_new,
    .checkpoint = fault_checkpoint,
    .compact = fault_compact,
    .remote = fault_remote,
};

int sx_storage_fault_wrap(sx_storage *inner, sx_storage **ret)
{
    if (!inner || !ret)
        return -EINVAL;
    fault_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return -ENOMEM;
    }
    s->table = fault_template;
    s->table.caps = inner->ops->caps;
    if (!inner->ops->checkpoint)
        s->table.checkpoint = NULL;
    if (inner->ops->version < 3 || !inner->ops->compact)
        s->table.compact = NULL;
    if (inner->ops->version < 4 || !inner->ops->remote)
        s->table.remote = NULL;
    s->inner = inner;
    s->base.ops = &s->table;
    *ret = &s->base;
    return 0;
}
