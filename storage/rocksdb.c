/*
 * rocksdb.c - the durable, embedded storage backend (RocksDB C API, RocksDB 7.8).
 *
 * Durability. The write-ahead log is always on; with `sync` (the default, `[storage] sync = true`)
 * every acknowledged write has been fsync'ed to the log before the call returns. The store opens
 * with paranoid checks and point-in-time WAL recovery (a torn log tail is cut at the last intact
 * record; nothing after a hole is replayed), and every read verifies block checksums.
 *
 * Layout inside RocksDB: two column families. "records" holds the callers' keys, unchanged, each
 * value prefixed by a 9-byte header (format byte 0x01, then the 64-bit revision big-endian).
 * "default" holds this backend's own bookkeeping: "format" and "rev_ceiling" (see LAYOUT.md).
 * Keeping bookkeeping in its own family means no caller key is reserved and no iteration can see it.
 *
 * Atomic conditional batches: per-key lock striping, not TransactionDB. Every write of a key (put,
 * delete, batch) takes the lock of the stripe its key hashes to (shared for a key it only CHECKs);
 * a batch takes the stripes of all
 * its keys in ascending stripe order (so two batches can never deadlock), reads the current
 * revisions, checks the preconditions, and applies all writes in one RocksDB WriteBatch (atomic in
 * the WAL) before releasing the stripes. Only this process writes to the directory (RocksDB's LOCK
 * plus our own lock file), so "check, then write" under the stripes is atomic against every other
 * writer. Unrelated keys almost always hash to different stripes, so concurrent writers commit
 * together and share one fsync; a single global mutex around check+write would serialise every
 * fsync. With sync on, writers that hold their stripes queue in group.c, whose leader writes the
 * whole group as ONE synced WriteBatch (RocksDB's own write groups alone reach only ~3x with 8
 * writers on 2 cores, because its leader never waits for the previous group to come back). Readers
 * see a group only after its WAL fsync, as with a plain synced write. A pessimistic TransactionDB
 * would give the same atomicity, but adds a lock manager, per-transaction allocations and
 * lock-timeout / deadlock errors we would have to retry, for nothing the stripes do not already
 * give us, and it would not group the fsyncs any better.
 *
 * Revisions: a hybrid clock, rev = max(last + 1, realtime in microseconds). It never goes
 * backwards while the process runs, even if the wall clock does. To survive restarts without a
 * scan, revisions are leased: "rev_ceiling" in the default family is a synced upper bound on every
 * revision ever handed out; when the clock would reach it, a new ceiling (now + 60 s of
 * microseconds) is written and synced first. On open, `last` starts at the stored ceiling, so no
 * revision is reused after delete + recreate, a crash or a clock step back.
 *
 * Second opener: before RocksDB sees the directory we take flock() on "secretsd.lock" in it. A
 * second process (or a second open in this process) fails at once with -EBUSY and changes
 * nothing; without our lock, RocksDB would rotate the first process's info LOG file before
 * discovering its own LOCK is taken. RocksDB's LOCK stays as a backstop and maps to -EBUSY too.
 *
 * Disk full: see rocksdb_db.c. Dropping deleted records from the files (compact): see rocksdb_compact.c.
 */
#include "storage/rocksdb_internal.h"
#include "common/bytes.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct rdb_iter {
    sx_storage_iter base; /* must stay first */
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ropt;
    uint8_t *prefix; /* prefix, lower bound and upper bound live in bytes[] */
    size_t plen;
    uint8_t *lower; /* first seek target */
    size_t llen;
    uint8_t *upper; /* kept alive: the read options point at it */
    bool excl;
    bool started;
    bool done;
    rdb_store *s;    /* holds s->db_lock shared from iter_new to iter_free */
    uint8_t bytes[]; /* plen + llen + plen bytes, one allocation with the iterator */
} rdb_iter;

static const sx_storage_iter_ops rdb_iter_ops;

/* Decode a stored record: 0 and the revision, or -EIO when the header is not ours. */
static int rec_decode(const char *raw, size_t len, uint64_t *ret_rev)
{
    if (len < RDB_HDR || (uint8_t)raw[0] != RDB_REC_FORMAT)
        return -EIO;
    *ret_rev = sx_be64_get((const uint8_t *)raw + 1);
    return 0;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * RocksDB counts into a thread-local perf context on every read step unless the calling thread
 * turns that off (its default level is "count"). Nothing here reads those counters, and on the
 * hot read paths (a prefix scan of an env, a point read) the counting is a tenth of the CPU, so
 * each thread that reads switches it off once.
 */
static __thread bool perf_off;

static inline void reads_no_perf_counters(void)
{
    if (!perf_off) {
        rocksdb_set_perf_level(rocksdb_disable);
        perf_off = true;
    }
}

/* Persist a new revision ceiling (always synced). Caller holds clock_mu. */
static int write_ceiling(rdb_store *s, uint64_t ceiling)
{
    uint8_t buf[8];
    sx_be64_put(buf, ceiling);
    char *err = NULL;
    rocksdb_put_cf(s->db, s->wopt_sync, s->meta, "rev_ceiling", 11, (const char *)buf, 8, &err);
    if (err) {
        int rc = rdb_errno(err);
        rdb_mark_broken(s, rc);
        return rc;
    }
    s->ceiling = ceiling;
    return 0;
}

/* Hand out n consecutive fresh revisions; *ret_first gets the first. */
static int alloc_revs(rdb_store *s, size_t n, uint64_t *ret_first)
{
    pthread_mutex_lock(&s->clock_mu);
    uint64_t now = now_us();
    uint64_t first = s->last_rev + 1 > now ? s->last_rev + 1 : now;
    uint64_t last = first + n - 1;
    if (last >= s->ceiling) {
        int r = write_ceiling(s, last + RDB_LEASE_US);
        if (r < 0) {
            pthread_mutex_unlock(&s->clock_mu);
            return r;
        }
    }
    s->last_rev = last;
    pthread_mutex_unlock(&s->clock_mu);
    *ret_first = first;
    return 0;
}

static unsigned stripe_of(const void *key, size_t klen)
{
    /* FNV-1a, folded; only needs to spread keys, not resist an attacker (a collision just shares
     * a mutex). */
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 32;
    return (unsigned)(h % RDB_STRIPES);
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

/* Lock the stripes of all keys in ops, ascending, each once. A stripe whose keys are only CHECKed
 * in this batch is taken shared: many writers may condition on the same record (set-value checks
 * its env's data-key record) and still commit together, while a batch that writes a key of that
 * stripe takes it exclusively. Fills idx with entries stripe * 2 + exclusive; returns how many
 * distinct stripes were locked. */
static size_t lock_stripes(rdb_store *s, const sx_storage_op *ops, size_t n, unsigned *idx)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = stripe_of(ops[i].key, ops[i].klen) * 2 + (ops[i].kind != SX_STORAGE_OP_CHECK);
    qsort(idx, n, sizeof(*idx), cmp_unsigned);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && idx[m - 1] / 2 == idx[i] / 2)
            idx[m - 1] |= idx[i] & 1; /* the same stripe twice: exclusive wins */
        else
            idx[m++] = idx[i];
    }
    for (size_t i = 0; i < m; i++) {
        if (idx[i] & 1)
            pthread_rwlock_wrlock(&s->stripes[idx[i] / 2]);
        else
            pthread_rwlock_rdlock(&s->stripes[idx[i] / 2]);
    }
    return m;
}

static void unlock_stripes(rdb_store *s, const unsigned *idx, size_t m)
{
    for (size_t i = m; i > 0; i--)
        pthread_rwlock_unlock(&s->stripes[idx[i - 1] / 2]);
}

/* Current revision of key: 0 with *ret_rev (0 when absent), or a negative errno. */
static int current_rev(rdb_store *s, const void *key, size_t klen, uint64_t *ret_rev)
{
    reads_no_perf_counters();
    char *err = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(s->db, s->ropt, s->recs, key, klen, &err);
    if (err)
        return rdb_errno(err);
    *ret_rev = 0;
    if (!ps)
        return 0;
    size_t len = 0;
    const char *raw = rocksdb_pinnableslice_value(ps, &len);
    int r = rec_decode(raw, len, ret_rev);
    rocksdb_pinnableslice_destroy(ps);
    return r;
}

static bool cond_holds(const sx_storage_op *op, uint64_t rev)
{
    switch (op->cond) {
    case SX_STORAGE_COND_NONE:
        return true;
    case SX_STORAGE_COND_ABSENT:
        return rev == 0;
    case SX_STORAGE_COND_PRESENT:
        return rev != 0;
    case SX_STORAGE_COND_REV:
        return rev != 0 && rev == op->rev;
    }
    return false;
}

/* One caller's writes, waiting to be committed (alone, or in a group). */
typedef struct rdb_write {
    sx_storage_op *ops;
    size_t n;
    uint8_t (*hdrs)[RDB_HDR]; /* record header of each PUT, revision filled in */
} rdb_write;

/*
 * Commit function for the group queue (and for single writes when sync is off): every request in
 * list goes into ONE WriteBatch, written with one call, so the whole group is atomic and shares one
 * fsync. Values are not copied twice: putv gathers header and value into the batch.
 */
static int write_list(void *ctx, sxs_group_req *list)
{
    rdb_store *s = ctx;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    if (!wb)
        return -ENOMEM;
    for (sxs_group_req *q = list; q; q = q->next) {
        const rdb_write *w = q->arg;
        for (size_t i = 0; i < w->n; i++) {
            const sx_storage_op *op = &w->ops[i];
            if (op->kind == SX_STORAGE_OP_PUT) {
                const char *k = op->key;
                const char *vs[2] = {(const char *)w->hdrs[i], op->vlen ? (const char *)op->val : ""};
                size_t vl[2] = {RDB_HDR, op->vlen};
                rocksdb_writebatch_putv_cf(wb, s->recs, 1, &k, &op->klen, 2, vs, vl);
            } else if (op->kind == SX_STORAGE_OP_DELETE) {
                rocksdb_writebatch_delete_cf(wb, s->recs, op->key, op->klen);
            }
        }
    }
    char *err = NULL;
    if (rocksdb_writebatch_count(wb) > 0)
        rocksdb_write(s->db, s->wopt, wb, &err);
    rocksdb_writebatch_destroy(wb);
    if (!err)
        return 0;
    int rc = rdb_errno(err);
    rdb_mark_broken(s, rc);
    return rc;
}

/*
 * The one write path: lock the stripes, check preconditions, assign revisions, commit, unlock.
 * With must_exist (single delete), a missing key answers -ENOENT.
 */
static int rdb_apply(rdb_store *s, sx_storage_op *ops, size_t n, size_t *ret_failed, bool must_exist)
{
    int r = sxs_batch_validate(ops, n);
    if (r < 0)
        return r;
    if (atomic_load(&s->broken))
        rdb_recover(s);
    if ((r = rdb_enter(s)) < 0)
        return r;
    unsigned stack_idx[16];
    uint8_t stack_hdr[16][RDB_HDR];
    unsigned *idx = n <= 16 ? stack_idx : malloc(n * sizeof(*idx));
    uint8_t(*hdrs)[RDB_HDR] = n <= 16 ? stack_hdr : malloc(n * sizeof(*hdrs));
    if (!idx || !hdrs) {
        r = -ENOMEM;
        goto out_free;
    }

    size_t m = lock_stripes(s, ops, n, idx);
    size_t puts = 0, writes = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == SX_STORAGE_OP_PUT)
            puts++;
        if (ops[i].kind != SX_STORAGE_OP_CHECK)
            writes++;
        if (ops[i].cond == SX_STORAGE_COND_NONE && !must_exist)
            continue;
        uint64_t cur = 0;
        r = current_rev(s, ops[i].key, ops[i].klen, &cur);
        if (r < 0)
            goto out_unlock;
        if (must_exist && cur == 0) {
            r = -ENOENT;
            goto out_unlock;
        }
        if (!cond_holds(&ops[i], cur)) {
            if (ret_failed)
                *ret_failed = i;
            r = SX_STORAGE_ECONDITION;
            goto out_unlock;
        }
    }
    uint64_t rev = 0;
    if (puts) {
        r = alloc_revs(s, puts, &rev);
        if (r < 0)
            goto out_unlock;
    }
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == SX_STORAGE_OP_PUT) {
            hdrs[i][0] = RDB_REC_FORMAT;
            sx_be64_put(hdrs[i] + 1, rev++);
        }
    }
    rdb_write w = {.ops = ops, .n = n, .hdrs = hdrs};
    if (writes == 0) {
        r = 0;
    } else if (s->sync) {
        r = sxs_group_commit(&s->group, &w);
    } else {
        sxs_group_req alone = {.arg = &w};
        r = write_list(s, &alone);
    }
    if (r < 0)
        goto out_unlock;
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == SX_STORAGE_OP_PUT)
            ops[i].ret_rev = sx_be64_get(hdrs[i] + 1);
    r = 0;
out_unlock:
    unlock_stripes(s, idx, m);
out_free:
    if (idx != stack_idx)
        free(idx);
    if (hdrs != stack_hdr)
        free(hdrs);
    rdb_leave(s);
    return r;
}

static int rdb_batch(sx_storage *base, sx_storage_op *ops, size_t n, size_t *ret_failed)
{
    return rdb_apply((rdb_store *)base, ops, n, ret_failed, false);
}

static int rdb_put(sx_storage *base, const void *key, size_t klen, const void *val, size_t vlen, uint64_t *ret_rev)
{
    sx_storage_op op = {.kind = SX_STORAGE_OP_PUT, .key = key, .klen = klen, .val = val, .vlen = vlen};
    int r = rdb_apply((rdb_store *)base, &op, 1, NULL, false);
    if (r == 0 && ret_rev)
        *ret_rev = op.ret_rev;
    return r;
}

static int rdb_del(sx_storage *base, const void *key, size_t klen)
{
    sx_storage_op op = {.kind = SX_STORAGE_OP_DELETE, .key = key, .klen = klen};
    return rdb_apply((rdb_store *)base, &op, 1, NULL, true);
}

static int rdb_get_locked(rdb_store *s, const void *key, size_t klen, void **ret_val, size_t *ret_len,
                          uint64_t *ret_rev)
{
    reads_no_perf_counters();
    char *err = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(s->db, s->ropt, s->recs, key, klen, &err);
    if (err)
        return rdb_errno(err);
    if (!ps)
        return -ENOENT;
    size_t len = 0;
    const char *raw = rocksdb_pinnableslice_value(ps, &len);
    uint64_t rev = 0;
    int r = rec_decode(raw, len, &rev);
    if (r == 0 && ret_val) {
        size_t vlen = len - RDB_HDR;
        void *copy = malloc(vlen ? vlen : 1);
        if (!copy) {
            r = -ENOMEM;
        } else {
            memcpy(copy, raw + RDB_HDR, vlen);
            *ret_val = copy;
        }
    }
    if (r == 0) {
        if (ret_len)
            *ret_len = len - RDB_HDR;
        if (ret_rev)
            *ret_rev = rev;
    }
    rocksdb_pinnableslice_destroy(ps);
    return r;
}

static int rdb_get(sx_storage *base, const void *key, size_t klen, void **ret_val, size_t *ret_len, uint64_t *ret_rev)
{
    rdb_store *s = (rdb_store *)base;
    int r = rdb_enter(s);
    if (r < 0)
        return r;
    r = rdb_get_locked(s, key, klen, ret_val, ret_len, ret_rev);
    rdb_leave(s);
    return r;
}

static void rdb_iter_free(sx_storage_iter *base)
{
    rdb_iter *it = (rdb_iter *)base;
    if (!it)
        return;
    if (it->it)
        rocksdb_iter_destroy(it->it);
    if (it->ropt)
        rocksdb_readoptions_destroy(it->ropt);
    if (it->s)
        rdb_leave(it->s);
    free(it);
}

/*
 * The RocksDB iterator reads the implicit snapshot taken here: later writes are not seen, and a
 * deleted key may still be yielded. It pins memtables and SST files until freed, so callers page
 * through long ranges (SX_STORAGE_ITER_AFTER) instead of holding one iterator open for long.
 */
static int rdb_iter_new(sx_storage *base, const void *prefix, size_t plen, const void *start, size_t slen,
                        unsigned flags, sx_storage_iter **ret)
{
    rdb_store *s = (rdb_store *)base;
    const void *lb;
    size_t llen = 0;
    bool excl = false;
    sxs_iter_lower_bound(prefix, plen, start, slen, flags, &lb, &llen, &excl);
    rdb_iter *it = malloc(sizeof(*it) + 2 * plen + llen);
    if (!it)
        return -ENOMEM;
    *it = (rdb_iter){.base.ops = &rdb_iter_ops, .plen = plen, .llen = llen, .excl = excl};
    it->prefix = it->bytes;
    it->lower = it->bytes + plen;
    it->upper = it->bytes + plen + llen;
    it->ropt = rocksdb_readoptions_create();
    if (!it->ropt) {
        rdb_iter_free(&it->base);
        return -ENOMEM;
    }
    if (plen)
        memcpy(it->prefix, prefix, plen);
    if (llen)
        memcpy(it->lower, lb, llen);
    int r = rdb_enter(s); /* held until rdb_iter_free() */
    if (r < 0) {
        rdb_iter_free(&it->base);
        return r;
    }
    it->s = s;
    reads_no_perf_counters();
    rocksdb_readoptions_set_verify_checksums(it->ropt, 1);
    /* The upper bound ends the scan at the prefix's end inside RocksDB: blocks and files past it
     * are never read, whatever the store holds after the prefix. */
    size_t ulen = 0;
    sxs_prefix_successor(it->prefix, plen, it->upper, &ulen);
    if (ulen)
        rocksdb_readoptions_set_iterate_upper_bound(it->ropt, (const char *)it->upper, ulen);
    it->it = rocksdb_create_iterator_cf(s->db, it->ropt, s->recs);
    if (!it->it) {
        rdb_iter_free(&it->base);
        return -ENOMEM;
    }
    *ret = &it->base;
    return 0;
}

static int rdb_iter_next(sx_storage_iter *base, const void **key, size_t *klen, const void **val, size_t *vlen,
                         uint64_t *rev)
{
    rdb_iter *it = (rdb_iter *)base;
    if (it->done)
        return SX_STORAGE_DONE;
    if (!it->started) {
        it->started = true;
        rocksdb_iter_seek(it->it, (const char *)it->lower, it->llen);
        if (it->excl && rocksdb_iter_valid(it->it)) {
            size_t kl = 0;
            const char *k = rocksdb_iter_key(it->it, &kl);
            if (sxs_keycmp(k, kl, it->lower, it->llen) == 0)
                rocksdb_iter_next(it->it);
        }
    } else {
        rocksdb_iter_next(it->it);
    }
    if (!rocksdb_iter_valid(it->it)) {
        char *err = NULL;
        rocksdb_iter_get_error(it->it, &err);
        if (err)
            return rdb_errno(err);
        it->done = true;
        return SX_STORAGE_DONE;
    }
    size_t kl = 0, rl = 0;
    const char *k = rocksdb_iter_key(it->it, &kl);
    if (!sxs_has_prefix(k, kl, it->prefix, it->plen)) {
        it->done = true; /* only reachable for all-0xff prefixes, which have no upper bound */
        return SX_STORAGE_DONE;
    }
    const char *raw = rocksdb_iter_value(it->it, &rl);
    uint64_t r = 0;
    if (rec_decode(raw, rl, &r) < 0)
        return -EIO;
    if (key)
        *key = k;
    if (klen)
        *klen = kl;
    if (val)
        *val = raw + RDB_HDR;
    if (vlen)
        *vlen = rl - RDB_HDR;
    if (rev)
        *rev = r;
    return 0;
}

static const sx_storage_iter_ops rdb_iter_ops = {
    .next = rdb_iter_next,
    .free = rdb_iter_free,
};

/* RocksDB's last published sequence number: every write (batch) that becomes visible to new
 * iterators and gets raises it, and an iterator reads the state at the sequence current when it
 * is created. One atomic load inside RocksDB, offset after a reopen (see rdb_recover) so the
 * answers never repeat for different contents. */
static int rdb_change_seq(sx_storage *base, uint64_t *ret_seq)
{
    rdb_store *s = (rdb_store *)base;
    int r = rdb_enter(s);
    if (r < 0)
        return r;
    uint64_t seq = s->seq_base + rocksdb_get_latest_sequence_number(s->db);
    rdb_leave(s);
    uint64_t high = atomic_load_explicit(&s->seq_high, memory_order_relaxed);
    while (seq > high && !atomic_compare_exchange_weak(&s->seq_high, &high, seq)) {
    }
    *ret_seq = seq;
    return 0;
}

static int rdb_checkpoint(sx_storage *base, const char *dir)
{
    rdb_store *s = (rdb_store *)base;
    int r = rdb_enter(s);
    if (r < 0)
        return r;
    char *err = NULL;
    pthread_mutex_lock(&s->maint_mu); /* its hold on file deletions must not defer a compact's purge */
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(s->db, &err);
    if (!err) {
        /* log_size_for_flush = 0: flush the memtables first, so the copy needs no WAL replay. */
        rocksdb_checkpoint_create(cp, dir, 0, &err);
        rocksdb_checkpoint_object_destroy(cp);
    }
    pthread_mutex_unlock(&s->maint_mu);
    rdb_leave(s);
    return err ? rdb_errno(err) : 0;
}

/*
 * A clean close writes both memtables out, so that the next open has no log to replay: it then
 * takes milliseconds whatever the store holds, instead of re-inserting up to RDB_MAX_WAL_BYTES of
 * log records. Best effort (the log is still there if a flush fails); never after a failed write.
 */
static void flush_all(rdb_store *s)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    if (!fo)
        return;
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_column_family_handle_t *cfs[2] = {s->recs, s->meta};
    for (int i = 0; i < 2; i++) {
        char *err = NULL;
        rocksdb_flush_cf(s->db, fo, cfs[i], &err);
        if (err)
            rocksdb_free(err);
    }
    rocksdb_flushoptions_destroy(fo);
}

static void rdb_close(sx_storage *base)
{
    rdb_store *s = (rdb_store *)base;
    if (!s)
        return;
    if (s->db && !atomic_load(&s->broken))
        flush_all(s);
    rdb_db_close(s);
    if (s->opts)
        rocksdb_options_destroy(s->opts);
    free(s->path);
    if (s->locks_ok) {
        pthread_rwlock_destroy(&s->db_lock);
        pthread_mutex_destroy(&s->recover_mu);
        pthread_mutex_destroy(&s->maint_mu);
    }
    if (s->wopt)
        rocksdb_writeoptions_destroy(s->wopt);
    if (s->wopt_sync)
        rocksdb_writeoptions_destroy(s->wopt_sync);
    if (s->ropt)
        rocksdb_readoptions_destroy(s->ropt);
    for (int i = 0; i < RDB_STRIPES; i++)
        pthread_rwlock_destroy(&s->stripes[i]);
    pthread_mutex_destroy(&s->clock_mu);
    if (s->group_ok)
        sxs_group_clear(&s->group);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    free(s);
}

/* Check the format tag (writing it into a fresh store) and load the revision ceiling. */
static int load_meta(rdb_store *s, const char *path, char *err, size_t errlen)
{
    char *e = NULL;
    size_t len = 0;
    char *tag = rocksdb_get_cf(s->db, s->ropt, s->meta, "format", 6, &len, &e);
    if (e) {
        int r = rdb_errno(e);
        sx_fail(err, errlen, 0, "rocksdb storage: cannot read '%s': %s", path, sx_storage_strerror(r));
        return r;
    }
    if (!tag) {
        rocksdb_put_cf(s->db, s->wopt_sync, s->meta, "format", 6, RDB_FORMAT_TAG, strlen(RDB_FORMAT_TAG), &e);
        if (e) {
            int r = rdb_errno(e);
            sx_fail(err, errlen, 0, "rocksdb storage: cannot initialise '%s': %s", path, sx_storage_strerror(r));
            return r;
        }
    } else {
        bool ok = len == strlen(RDB_FORMAT_TAG) && memcmp(tag, RDB_FORMAT_TAG, len) == 0;
        rocksdb_free(tag);
        if (!ok) {
            sx_fail(err, errlen, 0, "rocksdb storage: '%s' holds data in an unknown format", path);
            return -EIO;
        }
    }
    char *ceil = rocksdb_get_cf(s->db, s->ropt, s->meta, "rev_ceiling", 11, &len, &e);
    if (e) {
        int r = rdb_errno(e);
        sx_fail(err, errlen, 0, "rocksdb storage: cannot read '%s': %s", path, sx_storage_strerror(r));
        return r;
    }
    if (ceil) {
        bool ok = len == 8;
        if (ok)
            s->last_rev = s->ceiling = sx_be64_get((const uint8_t *)ceil);
        rocksdb_free(ceil);
        if (!ok) {
            sx_fail(err, errlen, 0, "rocksdb storage: '%s' has a corrupt revision ceiling", path);
            return -EIO;
        }
    }
    return 0;
}

static int rdb_open(const sx_storage_options *opt, sx_storage **ret, char *err, size_t errlen)
{
    if (!opt->path || !*opt->path) {
        sx_fail(err, errlen, 0, "rocksdb storage: no data directory configured");
        return -EINVAL;
    }
    rdb_store *s = calloc(1, sizeof(*s));
    if (!s) {
        sx_fail(err, errlen, 0, "rocksdb storage: out of memory");
        return -ENOMEM;
    }
    s->base.ops = &sx_storage_rocksdb_ops;
    s->lock_fd = -1;
    s->sync = opt->sync;
    pthread_mutex_init(&s->clock_mu, NULL);
    /* Reader-preferring (the default): an iterator's holder may take it again for a write. */
    pthread_rwlock_init(&s->db_lock, NULL);
    pthread_mutex_init(&s->recover_mu, NULL);
    pthread_mutex_init(&s->maint_mu, NULL);
    s->locks_ok = true;
    if (sxs_group_init(&s->group, write_list, s) < 0) {
        free(s);
        sx_fail(err, errlen, 0, "rocksdb storage: out of memory");
        return -ENOMEM;
    }
    s->group_ok = true;
    pthread_rwlockattr_t rwa;
    pthread_rwlockattr_init(&rwa);
    /* A writer waiting for a stripe that readers (CHECK ops) hold must not starve behind new ones. */
    pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (int i = 0; i < RDB_STRIPES; i++)
        pthread_rwlock_init(&s->stripes[i], &rwa);
    pthread_rwlockattr_destroy(&rwa);
    int r = rdb_take_dir_lock(s, opt->path, err, errlen);
    if (r < 0)
        goto fail;
    s->path = strdup(opt->path);
    if (!s->path) {
        sx_fail(err, errlen, 0, "rocksdb storage: out of memory");
        r = -ENOMEM;
        goto fail;
    }
    uint64_t avail = 0;
    if (rdb_free_bytes(opt->path, &avail) == 0 && avail < RDB_MIN_FREE) {
        sx_fail(err, errlen, 0,
                "rocksdb storage: only %llu KiB free on the file system of '%s'; at least %llu KiB are needed",
                (unsigned long long)(avail >> 10), opt->path, (unsigned long long)(RDB_MIN_FREE >> 10));
        r = -ENOSPC;
        goto fail;
    }

    rocksdb_options_t *o = rocksdb_options_create();
    s->opts = o;
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_set_paranoid_checks(o, 1);
    rocksdb_options_set_wal_recovery_mode(o, 2); /* kPointInTimeRecovery */
    rocksdb_options_increase_parallelism(o, 2);
    rocksdb_options_set_keep_log_file_num(o, 4);
    rocksdb_options_set_max_log_file_size(o, 4u << 20);
    rocksdb_options_set_info_log_level(o, RDB_INFO_LOG_FATAL); /* see "Disk full" in rocksdb_db.c */
    /* A log file is deleted only when every column family has flushed what it holds, and the
     * bookkeeping family gets a few bytes per open and never fills a memtable: without a bound the
     * log grows towards 4 x the write buffers, and the next start replays all of it (seconds for
     * a million secrets). Past this size RocksDB flushes the families that pin the oldest log. */
    rocksdb_options_set_max_total_wal_size(o, RDB_MAX_WAL_BYTES);
    /* An obsolete log is deleted, never reused nor archived: compact (rocksdb_compact.c) relies on
     * it to take deleted records out of the files. These are RocksDB's defaults, pinned here. */
    rocksdb_options_set_recycle_log_file_num(o, 0);
    rocksdb_options_set_WAL_ttl_seconds(o, 0);
    rocksdb_options_set_WAL_size_limit_MB(o, 0);
    rocksdb_block_based_table_options_t *bb = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(bb, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_options_set_block_based_table_factory(o, bb);
    rocksdb_block_based_options_destroy(bb);
    r = rdb_db_open(s, err, errlen);
    if (r < 0)
        goto fail;
    s->wopt = rocksdb_writeoptions_create();
    s->wopt_sync = rocksdb_writeoptions_create();
    s->ropt = rocksdb_readoptions_create();
    rocksdb_writeoptions_set_sync(s->wopt, opt->sync);
    rocksdb_writeoptions_disable_WAL(s->wopt, 0);
    rocksdb_writeoptions_set_sync(s->wopt_sync, 1);
    rocksdb_writeoptions_disable_WAL(s->wopt_sync, 0);
    rocksdb_readoptions_set_verify_checksums(s->ropt, 1);
    r = load_meta(s, opt->path, err, errlen);
    if (r < 0)
        goto fail;
    *ret = &s->base;
    return 0;
fail:
    rdb_close(&s->base);
    return r;
}

const sx_storage_ops sx_storage_rocksdb_ops = {
    .version = SX_STORAGE_OPS_VERSION,
    .name = "rocksdb",
    .caps = SX_STORAGE_CAP_DURABLE | SX_STORAGE_CAP_CHECKPOINT | SX_STORAGE_CAP_COMPACT,
    .open = rdb_open,
    .close = rdb_close,
    .get = rdb_get,
    .put = rdb_put,
    .del = rdb_del,
    .batch = rdb_batch,
    .iter_new = rdb_iter_new,
    .checkpoint = rdb_checkpoint,
    .change_seq = rdb_change_seq,
    .compact = rdb_compact,
};
