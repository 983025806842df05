/*
 * storage.h - the storage vtable behind everything secretsd persists.
 *
 * Secret metadata, value ciphertexts, wrapped data keys, the sealed keyring and token records all
 * live in one ordered key/value store reached through this table. The shape follows SQLite's VFS
 * and git's ref backends: a versioned, const table of operations (`sx_storage_ops`), a handle whose
 * first member points at it, an iterator with its own small table, and thin inline wrappers that
 * check arguments before dispatching. New slots are only ever added at the end of a table, and a
 * caller checks `ops->version` before using a slot introduced after version 1.
 *
 * Keys and values are byte strings (keys may contain NUL). Keys sort bytewise (memcmp order, shorter
 * first on a common prefix). Every record carries a revision: a non-zero 64-bit number that changes
 * on every write of that key and is never handed out twice by one store, so that a key deleted and
 * created again never gets back a revision it had before. Revisions back ETags and compare-and-set.
 *
 * Concurrency: every operation may be called from many threads at once on the same handle. The
 * interface promises nothing about in-process locks, so that a networked SQL backend can implement
 * it; callers that need atomicity use sx_storage_batch() with preconditions.
 *
 * Errors: 0 on success, a negative errno otherwise (-ENOENT not found, -EINVAL bad argument,
 * -EIO an I/O or corruption error, -ENOMEM, -EBUSY store locked by another process, -ENOSPC disk
 * full, -EROFS read-only file system, -EACCES permission denied, -ENOTSUP an optional slot the
 * backend does not have; opening a file-based store may also return the errno of the directory or
 * lock file it could not make, such as -ENOTDIR or -ENAMETOOLONG, and a checkpoint into a folder
 * that exists -EEXIST; networked backends also -ENOTCONN the database cannot be reached (or is
 * still starting up), -EACCES it refused the credentials, -ETIMEDOUT it did not answer in time,
 * -EAGAIN every connection is busy, -EROFS it is a read-only replica), or SX_STORAGE_ECONDITION
 * when a batch precondition fails. After -ENOTCONN or -ETIMEDOUT a write may or may not have been
 * applied (the answer was lost), but never partly. The storage library never logs;
 * sx_storage_strerror() gives a sentence for any of these codes.
 *
 * Out-parameters (ret_*) are written only on success. The fault-injecting wrapper that tests put
 * around a store has its own header, storage/fault.h.
 */
#ifndef SX_STORAGE_H
#define SX_STORAGE_H

#include "common/errors.h"
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SX_STORAGE_OPS_VERSION 4 /* 2: change_seq; 3: compact; 4: remote */

/* Project-specific error codes: SX_STORAGE_ECONDITION (-1000 .. -1099), in common/errors.h. */

/* Return value of sx_storage_iter_next() when the iteration is over. */
#define SX_STORAGE_DONE 1

/* Capability bits in sx_storage_ops.caps. */
#define SX_STORAGE_CAP_DURABLE    (1u << 0) /* acknowledged writes survive a crash (with sync on) */
#define SX_STORAGE_CAP_CHECKPOINT (1u << 1) /* checkpoint slot implemented */
#define SX_STORAGE_CAP_SHARED     (1u << 2) /* several processes / nodes share the store (caches go stale) */
#define SX_STORAGE_CAP_COMPACT    (1u << 3) /* compact slot implemented: deleted records leave the files */
/* Reads (get, iter_new, iter_next) wait for a network round trip, milliseconds or, while the
 * database is unreachable or locked, up to its timeouts: a caller that must not block (an event
 * loop) makes them on another thread. Without the bit a read is answered from memory or local
 * files. Every slot works from any thread either way. */
#define SX_STORAGE_CAP_SLOW_READS (1u << 4)

/* Largest key any backend must accept. */
#define SX_STORAGE_MAX_KEY 4096
/* Largest value any backend must accept. */
#define SX_STORAGE_MAX_VALUE (16u * 1024 * 1024)

typedef struct sx_storage sx_storage;
typedef struct sx_storage_iter sx_storage_iter;
typedef struct sx_storage_ops sx_storage_ops;
typedef struct sx_storage_iter_ops sx_storage_iter_ops;

/* Options for opening a store. Strings are borrowed for the duration of the open call only (a
 * backend that needs one later, such as the password for reconnecting, keeps its own copy). */
typedef struct sx_storage_options {
    const char *backend; /* "rocksdb" | "memory" | "postgres"; NULL means "rocksdb" */
    const char *path;    /* directory for file-based backends (created 0700 if missing, parent must
                          * exist); ignored by "memory" and "postgres" */
    bool sync;           /* fsync the log before acknowledging a write (rocksdb; postgres: synchronous_commit
                          * on); the config default is true, but a zero-initialised struct means false:
                          * set it explicitly */
    /* postgres only */
    const char *dsn;      /* libpq connection string or URI, without a password (refused if it has one) */
    const char *password; /* NULL = none (libpq may still use PGPASSFILE / ~/.pgpass) */
    unsigned pool_size;   /* most connections this handle opens; 0 = 8 */
} sx_storage_options;

/* Longest database host name sx_storage_remote reports (longer ones are cut). */
#define SX_STORAGE_HOST_MAX 256

/* What a networked store is connected to, for operators (see the remote slot). */
typedef struct sx_storage_remote {
    char host[SX_STORAGE_HOST_MAX]; /* of the server the store reached last ("" = never reached) */
    unsigned port;                  /* 0 = unknown (a Unix socket's default) */
    bool connected;                 /* a connection to it is open now */
    int primary;                    /* 1 it takes writes, 0 it is a standby / read-only, -1 unknown */
    uint64_t reconnects;            /* connections opened again after one was lost or broke */
    int64_t last_failover_ms;       /* wall clock (ms since the epoch) of the last failover seen: a
                                     * reconnect that reached another host:port, or the primary
                                     * seen turning read-only; 0 = none since the store was opened */
} sx_storage_remote;

/* The kinds of operation in a batch. */
typedef enum sx_storage_op_kind {
    SX_STORAGE_OP_PUT = 1,    /* write val under key */
    SX_STORAGE_OP_DELETE = 2, /* remove key (no error if absent unless a precondition says so) */
    SX_STORAGE_OP_CHECK = 3,  /* write nothing; only evaluate the precondition */
} sx_storage_op_kind;

/* Preconditions, evaluated atomically with the whole batch. */
typedef enum sx_storage_cond {
    SX_STORAGE_COND_NONE = 0,
    SX_STORAGE_COND_ABSENT = 1,  /* key must not exist */
    SX_STORAGE_COND_PRESENT = 2, /* key must exist (any revision) */
    SX_STORAGE_COND_REV = 3,     /* key must exist with revision == rev */
} sx_storage_cond;

/* One operation of a batch. key/val are borrowed for the duration of the call. */
typedef struct sx_storage_op {
    sx_storage_op_kind kind;
    const void *key;
    size_t klen;
    const void *val; /* PUT only */
    size_t vlen;
    sx_storage_cond cond;
    uint64_t rev;     /* for SX_STORAGE_COND_REV */
    uint64_t ret_rev; /* out: for PUT, the record's new revision, written only on success */
} sx_storage_op;

/* Iterator flags. */
#define SX_STORAGE_ITER_AFTER (1u << 0) /* start key is exclusive (pagination: "after NAME") */

/*
 * The backend table. A backend provides one `const sx_storage_ops` instance. Slots marked optional
 * may be NULL when the matching capability bit is clear.
 */
struct sx_storage_ops {
    int version;      /* SX_STORAGE_OPS_VERSION the backend was written against */
    const char *name; /* "memory", "rocksdb", ... */
    unsigned caps;    /* SX_STORAGE_CAP_* */

    /* Open a store. On success *ret is a handle whose first member is this table. On failure
     * writes a one-line reason (no secrets) into err (errlen bytes, NUL-terminated) when err != NULL. */
    int (*open)(const sx_storage_options *opt, sx_storage **ret, char *err, size_t errlen);
    /* Close the store and free the handle. Outstanding iterators must be freed first. NULL ok. */
    void (*close)(sx_storage *s);

    /* Read key. On success *ret_val is a malloc'd copy (free with sx_storage_free()), *ret_len its
     * length, *ret_rev its revision (any of the three may be NULL). -ENOENT when absent. */
    int (*get)(sx_storage *s, const void *key, size_t klen, void **ret_val, size_t *ret_len, uint64_t *ret_rev);
    /* Write key unconditionally (val is copied). *ret_rev (may be NULL) gets the new revision. */
    int (*put)(sx_storage *s, const void *key, size_t klen, const void *val, size_t vlen, uint64_t *ret_rev);
    /* Delete key. -ENOENT when absent (nothing changes). */
    int (*del)(sx_storage *s, const void *key, size_t klen);
    /* Apply ops all-or-nothing. Every precondition is checked against the state the batch applies
     * to, atomically with the writes, also against concurrent batches from other threads or nodes.
     * On a failed precondition returns SX_STORAGE_ECONDITION, sets *ret_failed (may be NULL) to the
     * index of the first failing op and changes nothing. A key may appear at most once per batch
     * (-EINVAL otherwise, checked by the backend). */
    int (*batch)(sx_storage *s, sx_storage_op *ops, size_t n, size_t *ret_failed);
    /* Start an ordered forward iteration over the keys beginning with prefix, from the first key
     * >= start (or > start with SX_STORAGE_ITER_AFTER; start NULL = from the prefix itself). Keys
     * written or deleted during the iteration may or may not be seen, but every key is yielded at
     * most once, in order, and never one outside the prefix. prefix and start are borrowed for the
     * call only. The caller frees *ret with sx_storage_iter_free() before closing the store. */
    int (*iter_new)(sx_storage *s, const void *prefix, size_t plen, const void *start, size_t slen, unsigned flags,
                    sx_storage_iter **ret);
    /* Optional (SX_STORAGE_CAP_CHECKPOINT): write an online, consistent copy of the store into dir,
     * which must not exist yet. The copy opens with the same backend. Without the capability the
     * wrapper answers -ENOTSUP. */
    int (*checkpoint)(sx_storage *s, const char *dir);

    /* --- version 2 --- */

    /* Optional (NULL when the backend cannot tell): *ret_seq gets a number that changes whenever a
     * write to the store becomes visible to this process's readers. Read it before a get or an
     * iter_new: if a later call gives the same number, no write has become visible since, so what
     * was read is still what the store holds. Meaningless for SX_STORAGE_CAP_SHARED stores, which
     * other processes write too (the wrapper refuses them). */
    int (*change_seq)(sx_storage *s, uint64_t *ret_seq);

    /* --- version 3 --- */

    /* Optional (SX_STORAGE_CAP_COMPACT): make the store drop from its files every record deleted
     * (or overwritten) before the call whose key lies in [begin, end) (begin NULL = from the first
     * key, end NULL = through the last key); see sx_storage_compact() for the full contract. */
    int (*compact)(sx_storage *s, const void *begin, size_t blen, const void *end, size_t elen);

    /* --- version 4 --- */

    /* Optional (NULL for stores in this process's memory or files): what a networked store is
     * connected to (*ret filled). Answers from the handle's own bookkeeping, never with a round
     * trip: any thread, event loops included. */
    int (*remote)(sx_storage *s, sx_storage_remote *ret);
};

struct sx_storage_iter_ops {
    /* Advance. Returns 0 with the next record, SX_STORAGE_DONE at the end, or a negative errno.
     * The borrowed key and value stay valid until the next call to next() or free(). Any out
     * pointer may be NULL. */
    int (*next)(sx_storage_iter *it, const void **key, size_t *klen, const void **val, size_t *vlen, uint64_t *rev);
    /* Release the iterator. NULL ok. */
    void (*free)(sx_storage_iter *it);
};

/* Every handle starts with its table; backends embed this as their first member. */
struct sx_storage {
    const sx_storage_ops *ops;
};

struct sx_storage_iter {
    const sx_storage_iter_ops *ops;
};

/* NULL-terminated registry of the backends built into this binary. */
extern const sx_storage_ops *const sx_storage_backends[];

/* Find a backend by name; NULL when unknown. */
const sx_storage_ops *sx_storage_backend_find(const char *name);

/* Open the backend named in opt->backend (-EINVAL when it is not built in). On success *ret is the
 * handle, owned by the caller until sx_storage_close(). On failure *ret is untouched and err
 * (errlen bytes, may be NULL) gets a one-line reason without secrets. */
int sx_storage_open(const sx_storage_options *opt, sx_storage **ret, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A sentence for a code returned by any storage call (a static string: never freed, valid for the
 * life of the process). */
const char *sx_storage_strerror(int code);

/* Free a value returned by sx_storage_get(). NULL ok. */
void sx_storage_free(void *p);

/* --- inline wrappers: argument checks, then dispatch ------------------------------------------- */

static inline void sx_storage_close(sx_storage *s)
{
    if (s)
        s->ops->close(s);
}

static inline const char *sx_storage_name(const sx_storage *s)
{
    return s->ops->name;
}

static inline bool sx_storage_has(const sx_storage *s, unsigned cap)
{
    return (s->ops->caps & cap) == cap;
}

__attribute__((warn_unused_result)) static inline int sx_storage_get(sx_storage *s, const void *key, size_t klen,
                                                                     void **ret_val, size_t *ret_len, uint64_t *ret_rev)
{
    if (!s || !key || klen == 0 || klen > SX_STORAGE_MAX_KEY)
        return -EINVAL;
    return s->ops->get(s, key, klen, ret_val, ret_len, ret_rev);
}

__attribute__((warn_unused_result)) static inline int sx_storage_put(sx_storage *s, const void *key, size_t klen,
                                                                     const void *val, size_t vlen, uint64_t *ret_rev)
{
    if (!s || !key || klen == 0 || klen > SX_STORAGE_MAX_KEY || (!val && vlen) || vlen > SX_STORAGE_MAX_VALUE)
        return -EINVAL;
    return s->ops->put(s, key, klen, val, vlen, ret_rev);
}

__attribute__((warn_unused_result)) static inline int sx_storage_delete(sx_storage *s, const void *key, size_t klen)
{
    if (!s || !key || klen == 0 || klen > SX_STORAGE_MAX_KEY)
        return -EINVAL;
    return s->ops->del(s, key, klen);
}

__attribute__((warn_unused_result)) static inline int sx_storage_batch(sx_storage *s, sx_storage_op *ops, size_t n,
                                                                       size_t *ret_failed)
{
    if (!s || (!ops && n))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].key || ops[i].klen == 0 || ops[i].klen > SX_STORAGE_MAX_KEY)
            return -EINVAL;
        if (ops[i].kind == SX_STORAGE_OP_PUT && ((!ops[i].val && ops[i].vlen) || ops[i].vlen > SX_STORAGE_MAX_VALUE))
            return -EINVAL;
        if (ops[i].kind < SX_STORAGE_OP_PUT || ops[i].kind > SX_STORAGE_OP_CHECK)
            return -EINVAL;
    }
    if (n == 0)
        return 0;
    return s->ops->batch(s, ops, n, ret_failed);
}

__attribute__((warn_unused_result)) static inline int sx_storage_iter_new(sx_storage *s, const void *prefix,
                                                                          size_t plen, const void *start, size_t slen,
                                                                          unsigned flags, sx_storage_iter **ret)
{
    if (!s || !ret || (!prefix && plen) || plen > SX_STORAGE_MAX_KEY || (!start && slen) || slen > SX_STORAGE_MAX_KEY)
        return -EINVAL;
    return s->ops->iter_new(s, prefix, plen, start, slen, flags, ret);
}

__attribute__((warn_unused_result)) static inline int
sx_storage_iter_next(sx_storage_iter *it, const void **key, size_t *klen, const void **val, size_t *vlen, uint64_t *rev)
{
    if (!it)
        return -EINVAL;
    return it->ops->next(it, key, klen, val, vlen, rev);
}

static inline void sx_storage_iter_free(sx_storage_iter *it)
{
    if (it)
        it->ops->free(it);
}

/* Count the records whose key starts with prefix (plen bytes) into *ret_n, in one prefix scan.
 * 0, -EINVAL, or the backend's error. */
int sx_storage_count(sx_storage *s, const void *prefix, size_t plen, uint64_t *ret_n)
    __attribute__((warn_unused_result));

__attribute__((warn_unused_result)) static inline int sx_storage_checkpoint(sx_storage *s, const char *dir)
{
    if (!s || !dir)
        return -EINVAL;
    if (!(s->ops->caps & SX_STORAGE_CAP_CHECKPOINT) || !s->ops->checkpoint)
        return -ENOTSUP;
    return s->ops->checkpoint(s, dir);
}

/* The store's change sequence (see the change_seq slot): 0, or -ENOTSUP when the backend has none
 * or the store is shared with other processes. */
__attribute__((warn_unused_result)) static inline int sx_storage_change_seq(sx_storage *s, uint64_t *ret_seq)
{
    if (!s || !ret_seq)
        return -EINVAL;
    if (s->ops->version < 2 || !s->ops->change_seq || (s->ops->caps & SX_STORAGE_CAP_SHARED))
        return -ENOTSUP;
    return s->ops->change_seq(s, ret_seq);
}

/*
 * "Destroyed means gone": make the store drop deleted records from its files.
 *
 * Contract: after it returns 0, no record deleted (or overwritten) before the call whose key lies in
 * [begin, end) remains readable in the store's files: its value bytes are in no file of the store,
 * neither in a log nor in a table file. begin NULL (or blen 0) starts at the first key; end NULL (or
 * elen 0) runs through the last key; both NULL is the whole store. Records outside the range may or
 * may not be dropped too, and live records are never touched. An empty range (begin >= end)
 * returns 0 at once.
 *
 * What it does not promise: a file that an iterator opened before the call still reads is removed
 * when that iterator is freed, not before (page through long ranges, as iter_new says); the key of a
 * deleted record may stay in the store's manifest as a table file's boundary until the manifest is
 * rewritten (the next open); bytes the file system or the device keep in blocks that a deleted file
 * used are out of reach; and a copy made before the call (sx_storage_checkpoint(), a backup, a file
 * system snapshot) keeps whatever it held.
 *
 * Per backend: rocksdb flushes its memtables so that the logs holding the deleted writes become
 * obsolete and are deleted (logs are never recycled nor archived), compacts the range down to and
 * including the bottommost level, and deletes the obsolete files before returning. memory holds no
 * files (a deleted value's memory is freed at once): 0. postgres does not have it (-ENOTSUP): a
 * deleted row's bytes stay in the table's pages until VACUUM reclaims them, and in the WAL segments
 * until they are recycled, all outside this process's control.
 *
 * It reads and rewrites the range's files and may block for seconds: call it from a worker thread,
 * never from an event loop. Concurrent reads and writes go on meanwhile. Errors: -EINVAL, -ENOTSUP
 * without SX_STORAGE_CAP_COMPACT, -EIO, -ENOSPC (the rewrite needs room) or another of the codes
 * above; after an error the deleted records may still be in the files, and the call may be retried.
 */
__attribute__((warn_unused_result)) static inline int sx_storage_compact(sx_storage *s, const void *begin, size_t blen,
                                                                         const void *end, size_t elen)
{
    if (!s || (!begin && blen) || blen > SX_STORAGE_MAX_KEY || (!end && elen) || elen > SX_STORAGE_MAX_KEY)
        return -EINVAL;
    if (s->ops->version < 3 || !s->ops->compact || !(s->ops->caps & SX_STORAGE_CAP_COMPACT))
        return -ENOTSUP;
    if (blen && elen) {
        int c = memcmp(begin, end, blen < elen ? blen : elen);
        if (c > 0 || (c == 0 && blen >= elen))
            return 0;
    }
    return s->ops->compact(s, blen ? begin : NULL, blen, elen ? end : NULL, elen);
}

/* What a networked store is connected to (see the remote slot): 0 and *ret, or -ENOTSUP when the
 * store is local. Never blocks for the network. */
__attribute__((warn_unused_result)) static inline int sx_storage_remote_get(sx_storage *s, sx_storage_remote *ret)
{
    if (!s || !ret)
        return -EINVAL;
    if (s->ops->version < 4 || !s->ops->remote)
        return -ENOTSUP;
    return s->ops->remote(s, ret);
}

#ifdef __cplusplus
}
#endif

#endif /* SX_STORAGE_H */
