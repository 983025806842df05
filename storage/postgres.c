/*
 * postgres.c - the networked storage backend: PostgreSQL through libpq, so that several stateless
 * secretsd nodes behind a load balancer can share one (replicated) database.
 *
 * Schema (versioned in secretsd_meta, created or migrated on open under an advisory lock, so nodes
 * starting together do it once): one table of records, keys and values as bytea exactly as the
 * callers give them (storage/LAYOUT.md: no header, the revision is its own column).
 *
 *     secretsd_records (k bytea, v bytea, rev bigint)
 *         unique index on sha256(k)               point reads and writes
 *         index on substring(k from 1 for 2000)   ordered range scans
 *     secretsd_rev     a sequence: revisions      (never handed out twice, by any node)
 *     secretsd_batch() the conditional batch      (PL/pgSQL, one round trip)
 *
 * bytea compares bytewise (memcmp, the shorter first on a common prefix), which is the store's
 * order. Keys are not indexed whole because a btree entry holds at most 2704 bytes and the vtable
 * promises keys up to 4096: identity goes through the hash, order through the 2000-byte prefix,
 * and a scan orders by (prefix, k), which is k's own order because a prefix never sorts after the
 * key it was cut from. Every key secretsd writes is far shorter than 2000 bytes.
 *
 * Atomic conditional batches, without SERIALIZABLE: every write (put, delete, batch) is one call of
 * secretsd_batch() and so one transaction, at READ COMMITTED. It first takes a transaction-scoped
 * advisory lock per key (a 64-bit hash of the key; shared for a key it only CHECKs, exclusive
 * otherwise) in ascending order, so two batches never deadlock; then reads the current revisions,
 * each statement seeing everything committed before the locks were granted; then checks every
 * precondition before it writes anything, and writes. Locks are released at commit, after the
 * commit is visible. This is RocksDB's stripe locking (rocksdb.c) moved into the database, so it
 * holds across nodes; SERIALIZABLE would give the same guarantee with retries on false conflicts
 * between neighbouring keys (btree predicate locks are per page). A batch of more keys than
 * PG_MAX_KEY_LOCKS takes one exclusive store-wide lock instead, which every other batch holds in
 * shared mode; that keeps the database's lock table small. A serialization failure or deadlock
 * report (possible only if someone else locks our rows) rolls back and is retried here.
 *
 * Reads are single prepared statements (binary parameters and results) and need no lock. An
 * iterator fetches pages ("k > last key seen", so writes during the iteration may or may not be
 * seen but no key comes twice) and holds no connection between pages, so a caller may write while
 * it iterates. The first page asks for PG_FIRST_PAGE_ROWS rows (a list of 100 secrets is one round
 * trip); later ones for as many records as the largest seen so far fit in PG_PAGE_BYTES, at most
 * PG_PAGE_ROWS. (A byte limit computed by the database, a window sum over the value lengths, cost
 * a third of a page query's time.)
 * Every read waits for its round trip, so the backend says SX_STORAGE_CAP_SLOW_READS: the server
 * makes its reads on worker threads, never on an event loop.
 *
 * Connections (postgres_conn.c): a pool of at most pool_size, opened on demand, each used by one
 * thread at a time. An idle connection is checked before use (a restarted server leaves dead
 * sockets behind). When a connection attempt fails, new attempts wait out a backoff
 * (PG_BACKOFF_MIN_MS doubling to PG_BACKOFF_MAX_MS) and only one thread probes at a time; meanwhile
 * calls fail at once with -ENOTCONN (the server answers 503) instead of blocking an event loop. A
 * read that lost its connection is retried once on a fresh one; a write is not, since its answer
 * was lost and it may have committed (it never half-committed). [storage] sync = false sets
 * synchronous_commit = off: faster, and a database crash may lose the last writes, never part of
 * one.
 *
 * For operators (the remote slot): the host and port of the server the last connection reached,
 * whether it takes writes (pg_is_in_recovery() and default_transaction_read_only, asked once per
 * new connection), how many connections were opened again after one was lost, and when a failover
 * was last seen: a reconnect that reached another host:port (a multi-host dsn, a moved DNS name),
 * a new connection to a server that turned standby, or a write refused as read-only.
 *
 * Secrets: the connection string must not hold a password; the caller passes it separately (from
 * an environment variable or a file). It is kept in sodium_malloc memory for reconnecting, and
 * scrubbed from every libpq message before one reaches an error string. Like every backend this
 * one never logs; libpq's notices are swallowed.
 */
#include "common/clock.h"
#include "storage/postgres_internal.h"

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>

/* Type OIDs of the built-in types we exchange in binary (pg_type.h, stable across versions). */
#define OID_BOOL  16
#define OID_BYTEA 17
#define OID_INT8  20
#define OID_INT4  23

typedef struct pg_iter {
    sx_storage_iter base; /* must stay first */
    pg_store *s;
    uint8_t *prefix;
    size_t plen;
    uint8_t *upper; /* smallest key above the prefix; unbounded when ulen == 0 */
    size_t ulen;
    uint8_t *pos; /* the next page starts at (excl: after) this key */
    size_t poslen, poscap;
    bool excl;
    PGresult *page;
    int row, nrows;
    bool last_page; /* this page reached the end of the range */
    int limit;      /* rows to ask for in the next page */
    size_t largest; /* largest value seen so far */
    bool done;
} pg_iter;

static const sx_storage_iter_ops pg_iter_ops;

/* ---- binary parameters: PostgreSQL's array_send format ------------------------------------------ */

typedef struct pgbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} pgbuf;

static void pb_put(pgbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pb_u32(pgbuf *b, uint32_t v)
{
    uint8_t x[4];
    sx_be32_put(x, v);
    pb_put(b, x, 4);
}

static void pb_u64(pgbuf *b, uint64_t v)
{
    pb_u32(b, (uint32_t)(v >> 32));
    pb_u32(b, (uint32_t)v);
}

/* Header of a one-dimensional array of n elements of type oid (lower bound 1). */
static void pb_array(pgbuf *b, uint32_t oid, uint32_t n, bool has_null)
{
    pb_u32(b, 1);
    pb_u32(b, has_null ? 1 : 0);
    pb_u32(b, oid);
    pb_u32(b, n);
    pb_u32(b, 1);
}

static void pb_elem(pgbuf *b, const void *data, size_t n)
{
    pb_u32(b, (uint32_t)n);
    pb_put(b, data, n);
}

static void pb_null(pgbuf *b)
{
    pb_u32(b, 0xffffffffu);
}

/* ---- operations ---------------------------------------------------------------------------------- */

static int pg_get(sx_storage *base, const void *key, size_t klen, void **ret_val, size_t *ret_len, uint64_t *ret_rev)
{
    pg_store *s = (pg_store *)base;
    const char *values[1] = {key};
    int lengths[1] = {(int)klen};
    PGresult *res = NULL;
    int r = sxs_pg_read(s, "sx_get", 1, values, lengths, &res);
    if (r < 0)
        return r;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return -ENOENT;
    }
    size_t vlen = (size_t)PQgetlength(res, 0, 0);
    if (PQnfields(res) != 2 || PQgetlength(res, 0, 1) != 8) {
        PQclear(res);
        return -EIO;
    }
    if (ret_val) {
        void *copy = malloc(vlen ? vlen : 1);
        if (!copy) {
            PQclear(res);
            return -ENOMEM;
        }
        memcpy(copy, PQgetvalue(res, 0, 0), vlen);
        *ret_val = copy;
    }
    if (ret_len)
        *ret_len = vlen;
    if (ret_rev)
        *ret_rev = sx_be64_get((const uint8_t *)PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

/* FNV-1a: spreads keys over advisory lock ids; a collision only makes two keys share a lock. */
static int64_t key_lock_id(const void *key, size_t klen)
{
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return (int64_t)h;
}

typedef struct lock_ref {
    int64_t id;
    bool excl;
} lock_ref;

static int cmp_lock(const void *a, const void *b)
{
    int64_t x = ((const lock_ref *)a)->id, y = ((const lock_ref *)b)->id;
    return x < y ? -1 : x > y;
}

/* The parameters of one secretsd_batch() call. */
typedef struct batch_params {
    pgbuf k, op, v, cond, rev, lock, excl;
    uint8_t all;
} batch_params;

static void batch_params_clear(batch_params *p)
{
    free(p->k.p);
    free(p->op.p);
    free(p->v.p);
    free(p->cond.p);
    free(p->rev.p);
    free(p->lock.p);
    free(p->excl.p);
}

static int batch_params_build(batch_params *p, const sx_storage_op *ops, size_t n)
{
    memset(p, 0, sizeof(*p));
    lock_ref *locks = malloc(n * sizeof(*locks));
    if (!locks)
        return -ENOMEM;
    bool has_null = false;
    for (size_t i = 0; i < n; i++) {
        locks[i].id = key_lock_id(ops[i].key, ops[i].klen);
        locks[i].excl = ops[i].kind != SX_STORAGE_OP_CHECK;
        has_null |= ops[i].kind != SX_STORAGE_OP_PUT;
    }
    qsort(locks, n, sizeof(*locks), cmp_lock);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && locks[m - 1].id == locks[i].id)
            locks[m - 1].excl |= locks[i].excl;
        else
            locks[m++] = locks[i];
    }
    if (m > PG_MAX_KEY_LOCKS) {
        p->all = 1; /* the store-wide lock, exclusive, instead of one per key */
        m = 0;
    }
    pb_array(&p->k, OID_BYTEA, (uint32_t)n, false);
    pb_array(&p->op, OID_INT4, (uint32_t)n, false);
    pb_array(&p->v, OID_BYTEA, (uint32_t)n, has_null);
    pb_array(&p->cond, OID_INT4, (uint32_t)n, false);
    pb_array(&p->rev, OID_INT8, (uint32_t)n, false);
    pb_array(&p->lock, OID_INT8, (uint32_t)m, false);
    pb_array(&p->excl, OID_BOOL, (uint32_t)m, false);
    for (size_t i = 0; i < n; i++) {
        uint8_t x[4];
        pb_elem(&p->k, ops[i].key, ops[i].klen);
        sx_be32_put(x, (uint32_t)ops[i].kind);
        pb_elem(&p->op, x, 4);
        if (ops[i].kind == SX_STORAGE_OP_PUT)
            pb_elem(&p->v, ops[i].vlen ? ops[i].val : "", ops[i].vlen);
        else
            pb_null(&p->v);
        sx_be32_put(x, (uint32_t)ops[i].cond);
        pb_elem(&p->cond, x, 4);
        pb_u32(&p->rev, 8);
        pb_u64(&p->rev, ops[i].rev);
    }
    for (size_t i = 0; i < m; i++) {
        uint8_t e = locks[i].excl;
        pb_u32(&p->lock, 8);
        pb_u64(&p->lock, (uint64_t)locks[i].id);
        pb_elem(&p->excl, &e, 1);
    }
    free(locks);
    bool oom = p->k.oom || p->op.oom || p->v.oom || p->cond.oom || p->rev.oom || p->lock.oom || p->excl.oom;
    if (oom || p->k.len > INT32_MAX || p->v.len > INT32_MAX) {
        batch_params_clear(p);
        return -ENOMEM;
    }
    return 0;
}

/* Decode the int8[] answer of secretsd_batch() into revs (n entries). */
static int batch_answer(const PGresult *res, int64_t *revs, size_t n, size_t *ret_count)
{
    if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0))
        return -EIO;
    const uint8_t *p = (const uint8_t *)PQgetvalue(res, 0, 0);
    size_t len = (size_t)PQgetlength(res, 0, 0);
    if (len < 12 || sx_be32_get(p) != 1 || sx_be32_get(p + 8) != OID_INT8 || len < 20)
        return -EIO;
    size_t count = sx_be32_get(p + 12);
    if (count == 0 || count > n || len != 20 + count * 12)
        return -EIO;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = p + 20 + i * 12;
        if (sx_be32_get(e) != 8)
            return -EIO;
        revs[i] = (int64_t)sx_be64_get(e + 4);
    }
    *ret_count = count;
    return 0;
}

static int pg_batch(sx_storage *base, sx_storage_op *ops, size_t n, size_t *ret_failed)
{
    pg_store *s = (pg_store *)base;
    int r = sxs_batch_validate(ops, n);
    if (r < 0)
        return r;
    batch_params p;
    if ((r = batch_params_build(&p, ops, n)) < 0)
        return r;
    const char *values[8] = {(char *)p.k.p,   (char *)p.op.p,   (char *)p.v.p,    (char *)p.cond.p,
                             (char *)p.rev.p, (char *)p.lock.p, (char *)p.excl.p, (char *)&p.all};
    int lengths[8] = {(int)p.k.len,   (int)p.op.len,   (int)p.v.len,    (int)p.cond.len,
                      (int)p.rev.len, (int)p.lock.len, (int)p.excl.len, 1};
    static const int formats[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int64_t stack_revs[16];
    int64_t *revs = n <= 16 ? stack_revs : malloc(n * sizeof(*revs));
    if (!revs) {
        batch_params_clear(&p);
        return -ENOMEM;
    }
    bool retry = true;
    for (int attempt = 0; attempt < PG_BATCH_RETRIES && retry; attempt++) {
        pg_conn *c;
        retry = false;
        if ((r = sxs_pg_conn_take(s, &c)) < 0)
            break;
        PGresult *res = PQexecPrepared(c->pq, "sx_batch", 8, values, lengths, formats, 1);
        bool broken = false;
        size_t count = 0;
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            r = batch_answer(res, revs, n, &count);
        else
            r = sxs_pg_classify(c->pq, res, &broken, &retry); /* retry: rolled back, run it again */
        PQclear(res);
        sxs_pg_conn_give(s, c, broken);
        if (r == -EROFS)
            sxs_pg_note_read_only(s);
        if (r == 0 && count == 1 && revs[0] < 0) {
            if ((size_t)-revs[0] > n) {
                r = -EIO;
            } else {
                if (ret_failed)
                    *ret_failed = (size_t)-revs[0] - 1;
                r = SX_STORAGE_ECONDITION;
            }
        } else if (r == 0 && count != n) {
            r = -EIO;
        } else if (r == 0) {
            for (size_t i = 0; i < n; i++)
                if (ops[i].kind == SX_STORAGE_OP_PUT)
                    ops[i].ret_rev = (uint64_t)revs[i];
        }
    }
    if (revs != stack_revs)
        free(revs);
    batch_params_clear(&p);
    return r;
}

static int pg_put(sx_storage *base, const void *key, size_t klen, const void *val, size_t vlen, uint64_t *ret_rev)
{
    sx_storage_op op = {.kind = SX_STORAGE_OP_PUT, .key = key, .klen = klen, .val = val, .vlen = vlen};
    int r = pg_batch(base, &op, 1, NULL);
    if (r == 0 && ret_rev)
        *ret_rev = op.ret_rev;
    return r;
}

static int pg_del(sx_storage *base, const void *key, size_t klen)
{
    sx_storage_op op = {.kind = SX_STORAGE_OP_DELETE, .key = key, .klen = klen, .cond = SX_STORAGE_COND_PRESENT};
    int r = pg_batch(base, &op, 1, NULL);
    return r == SX_STORAGE_ECONDITION ? -ENOENT : r;
}

/* ---- iterators ----------------------------------------------------------------------------------- */

static int pos_set(pg_iter *it, const void *key, size_t len)
{
    if (len > it->poscap) {
        uint8_t *p = realloc(it->pos, len);
        if (!p)
            return -ENOMEM;
        it->pos = p;
        it->poscap = len;
    }
    if (len)
        memcpy(it->pos, key, len);
    it->poslen = len;
    return 0;
}

static void pg_iter_free(sx_storage_iter *base)
{
    pg_iter *it = (pg_iter *)base;
    if (!it)
        return;
    PQclear(it->page);
    free(it->prefix);
    free(it->upper);
    free(it->pos);
    free(it);
}

static int pg_iter_new(sx_storage *base, const void *prefix, size_t plen, const void *start, size_t slen,
                       unsigned flags, sx_storage_iter **ret)
{
    pg_iter *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    it->base.ops = &pg_iter_ops;
    it->s = (pg_store *)base;
    const void *lb;
    size_t lblen;
    sxs_iter_lower_bound(prefix, plen, start, slen, flags, &lb, &lblen, &it->excl);
    it->prefix = malloc(plen ? plen : 1);
    it->upper = malloc(plen ? plen : 1);
    if (!it->prefix || !it->upper || pos_set(it, lb, lblen) < 0) {
        pg_iter_free(&it->base);
        return -ENOMEM;
    }
    if (plen)
        memcpy(it->prefix, prefix, plen);
    it->plen = plen;
    sxs_prefix_successor(it->prefix, plen, it->upper, &it->ulen);
    it->limit = PG_FIRST_PAGE_ROWS;
    it->largest = 1;
    *ret = &it->base;
    return 0;
}

/* Fetch the page after the current one. */
static int iter_fetch(pg_iter *it)
{
    if (it->page) {
        int last = it->nrows - 1;
        int r = pos_set(it, PQgetvalue(it->page, last, 0), (size_t)PQgetlength(it->page, last, 0));
        if (r < 0)
            return r;
        it->excl = true;
        PQclear(it->page);
        it->page = NULL;
    }
    const char *stmt =
        it->ulen ? (it->excl ? "sx_page_gt" : "sx_page_ge") : (it->excl ? "sx_page_gt_open" : "sx_page_ge_open");
    uint8_t limit[4];
    sx_be32_put(limit, (uint32_t)it->limit);
    const char *values[3] = {it->poslen ? (const char *)it->pos : "", (const char *)it->upper, (const char *)limit};
    int lengths[3] = {(int)it->poslen, (int)it->ulen, 4};
    if (!it->ulen) {
        values[1] = (const char *)limit;
        lengths[1] = 4;
    }
    PGresult *res = NULL;
    int r = sxs_pg_read(it->s, stmt, it->ulen ? 3 : 2, values, lengths, &res);
    if (r < 0)
        return r;
    int rows = PQntuples(res);
    if (PQnfields(res) != 3) {
        PQclear(res);
        return -EIO;
    }
    size_t largest = 1;
    for (int i = 0; i < rows; i++) {
        if (PQgetlength(res, i, 2) != 8) {
            PQclear(res);
            return -EIO;
        }
        if ((size_t)PQgetlength(res, i, 1) > largest)
            largest = (size_t)PQgetlength(res, i, 1);
    }
    it->page = res;
    it->nrows = rows;
    it->row = 0;
    it->last_page = rows < it->limit; /* fewer rows than asked for: the range is exhausted */
    /* The next page holds about PG_PAGE_BYTES of records as large as the largest seen so far. */
    if (largest > it->largest)
        it->largest = largest;
    size_t fit = PG_PAGE_BYTES / it->largest;
    it->limit = fit < 1 ? 1 : fit > PG_PAGE_ROWS ? PG_PAGE_ROWS : (int)fit;
    return 0;
}

static int pg_iter_next(sx_storage_iter *base, const void **key, size_t *klen, const void **val, size_t *vlen,
                        uint64_t *rev)
{
    pg_iter *it = (pg_iter *)base;
    if (it->done)
        return SX_STORAGE_DONE;
    if (!it->page || it->row >= it->nrows) {
        if (it->page && it->last_page) {
            it->done = true;
            return SX_STORAGE_DONE;
        }
        int r = iter_fetch(it);
        if (r < 0)
            return r;
        if (it->nrows == 0) {
            it->done = true;
            return SX_STORAGE_DONE;
        }
    }
    int i = it->row++;
    const char *k = PQgetvalue(it->page, i, 0);
    size_t kl = (size_t)PQgetlength(it->page, i, 0);
    if (!sxs_has_prefix(k, kl, it->prefix, it->plen)) {
        it->done = true; /* only reachable for all-0xff prefixes, which have no upper bound */
        return SX_STORAGE_DONE;
    }
    if (key)
        *key = k;
    if (klen)
        *klen = kl;
    if (val)
        *val = PQgetvalue(it->page, i, 1);
    if (vlen)
        *vlen = (size_t)PQgetlength(it->page, i, 1);
    if (rev)
        *rev = sx_be64_get((const uint8_t *)PQgetvalue(it->page, i, 2));
    return 0;
}

static const sx_storage_iter_ops pg_iter_ops = {
    .next = pg_iter_next,
    .free = pg_iter_free,
};

/* ---- open and close ------------------------------------------------------------------------------ */

static void pg_close(sx_storage *base)
{
    pg_store *s = (pg_store *)base;
    if (!s)
        return;
    for (size_t i = 0; s->conns && i < s->nconns; i++)
        if (s->conns[i].pq)
            PQfinish(s->conns[i].pq);
    free(s->conns);
    for (size_t i = 0; i < sizeof(s->val) / sizeof(s->val[0]); i++)
        if (s->val[i] != s->password)
            free((char *)s->val[i]);
    sodium_free(s->password);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Append a connection keyword; the value is copied unless it is the password. */
static int add_kw(pg_store *s, size_t *n, const char *kw, const char *val)
{
    if (*n + 1 >= sizeof(s->kw) / sizeof(s->kw[0]))
        return -EINVAL;
    char *copy = val == s->password ? s->password : strdup(val);
    if (!copy)
        return -ENOMEM;
    s->kw[*n] = kw;
    s->val[*n] = copy;
    (*n)++;
    return 0;
}

/* Refuse a connection string that carries a password (it belongs in password_env / password_file). */
static int dsn_check(const char *dsn, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &msg);
    if (!opts) {
        /* libpq's message may quote a piece of the string; do not repeat it. */
        PQfreemem(msg);
        sx_fail(err, errlen, 0, "postgres storage: the dsn is not a valid libpq connection string or URI");
        return -EINVAL;
    }
    int r = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            r = -EINVAL;
    PQconninfoFree(opts);
    if (r < 0)
        sx_fail(err, errlen, 0,
                "postgres storage: the dsn must not contain a password; give it through [storage] "
                "password_env or password_file");
    return r;
}

static int pg_open(const sx_storage_options *opt, sx_storage **ret, char *err, size_t errlen)
{
    if (!opt->dsn || !*opt->dsn) {
        sx_fail(err, errlen, 0, "postgres storage: no dsn configured");
        return -EINVAL;
    }
    int r = dsn_check(opt->dsn, err, errlen);
    if (r < 0)
        return r;
    if (sodium_init() < 0) {
        sx_fail(err, errlen, 0, "postgres storage: libsodium could not be initialised");
        return -EIO;
    }
    pg_store *s = calloc(1, sizeof(*s));
    if (!s) {
        sx_fail(err, errlen, 0, "postgres storage: out of memory");
        return -ENOMEM;
    }
    s->base.ops = &sx_storage_postgres_ops;
    s->sync = opt->sync;
    pthread_mutex_init(&s->mu, NULL);
    sx_clock_cond_init(&s->cv);
    s->nconns = opt->pool_size ? opt->pool_size : PG_DEFAULT_POOL;
    if (s->nconns > PG_MAX_POOL)
        s->nconns = PG_MAX_POOL;
    s->conns = calloc(s->nconns, sizeof(*s->conns));
    if (opt->password && *opt->password) {
        size_t pl = strlen(opt->password);
        if ((s->password = sodium_malloc(pl + 1)) != NULL)
            memcpy(s->password, opt->password, pl + 1);
    }
    /* Keywords are processed in order and a later one wins: defaults first (the dsn may override
     * them), then the dsn itself, then the password (which the dsn may not hold). */
    size_t n = 0;
    r = !s->conns || (opt->password && *opt->password && !s->password) ? -ENOMEM : 0;
    if (r == 0)
        r = add_kw(s, &n, "connect_timeout", "3");
    if (r == 0)
        r = add_kw(s, &n, "keepalives", "1");
    if (r == 0)
        r = add_kw(s, &n, "keepalives_idle", "10");
    if (r == 0)
        r = add_kw(s, &n, "keepalives_interval", "5");
    if (r == 0)
        r = add_kw(s, &n, "keepalives_count", "3");
    if (r == 0)
        r = add_kw(s, &n, "tcp_user_timeout", "15000");
    if (r == 0)
        r = add_kw(s, &n, "application_name", "secretsd");
    if (r == 0)
        r = add_kw(s, &n, "dbname", opt->dsn);
    if (r == 0 && s->password)
        r = add_kw(s, &n, "password", s->password);
    if (r < 0) {
        sx_fail(err, errlen, 0, "postgres storage: out of memory");
        pg_close(&s->base);
        return r;
    }
    /* The first connection creates or checks the schema, then joins the pool. */
    PGconn *pq = NULL;
    r = sxs_pg_connect(s, &pq, err, errlen);
    if (r == 0)
        r = sxs_pg_schema_ensure(s, pq, err, errlen);
    if (r == 0)
        r = sxs_pg_session_setup(s, pq, err, errlen);
    if (r < 0) {
        PQfinish(pq);
        pg_close(&s->base);
        return r;
    }
    s->conns[0].pq = pq;
    s->conns[0].was_open = true;
    s->remote.primary = -1;
    sxs_pg_note_connected(s, pq, false);
    *ret = &s->base;
    return 0;
}

static int pg_remote(sx_storage *base, sx_storage_remote *ret)
{
    pg_store *s = (pg_store *)base;
    pthread_mutex_lock(&s->mu);
    *ret = s->remote;
    ret->connected = false;
    for (size_t i = 0; i < s->nconns && !ret->connected; i++)
        ret->connected = s->conns[i].pq != NULL;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

const sx_storage_ops sx_storage_postgres_ops = {
    .version = SX_STORAGE_OPS_VERSION,
    .name = "postgres",
    /* Durable with synchronous_commit (sync = true); shared by every node on the database. No
     * checkpoint slot: the database has its own backups (pg_dump, base backups, replicas). No
     * compact slot: a deleted row's bytes stay in the table's pages until VACUUM reclaims them
     * (and even then until the space is reused), and in the WAL segments until the server
     * recycles them, in replicas and in archived WAL: the database's operator owns all of that,
     * so this backend cannot promise that a deleted record is gone from the files. */
    .caps = SX_STORAGE_CAP_DURABLE | SX_STORAGE_CAP_SHARED | SX_STORAGE_CAP_SLOW_READS,
    .open = pg_open,
    .close = pg_close,
    .get = pg_get,
    .put = pg_put,
    .del = pg_del,
    .batch = pg_batch,
    .iter_new = pg_iter_new,
    .checkpoint = NULL,
    .change_seq = NULL,
    .compact = NULL,
    .remote = pg_remote,
};
