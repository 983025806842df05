/*
 * rocksdb_compact.c - the RocksDB backend's compact slot: making the store drop deleted records
 * from its files ("destroyed means gone", see sx_storage_compact() in storage.h).
 *
 * A deleted record's bytes can sit in three kinds of file: the write-ahead log that received its
 * put, the memtable's table file once flushed, and older table files on every level. The call
 * removes each:
 * 1. Flush both column families (waiting). Each flush switches to a fresh log, and a log file is
 *    obsolete once every family has flushed what it holds: the bookkeeping family, which gets a
 *    few bytes now and then, would otherwise pin the old log for ever. Logs are never recycled
 *    (recycle_log_file_num 0, which would reuse a log file without clearing it) nor archived
 *    (WAL_ttl_seconds and WAL_size_limit_MB 0, which would move it to archive/): rdb_open sets
 *    these explicitly, since this call depends on it.
 * 2. Compact the range of "records" (the only family that holds callers' records) with the
 *    bottommost level forced: every file overlapping the range is rewritten down the levels, a put
 *    meets the tombstone that deletes it and is left out, and the bottommost rewrite also drops
 *    the tombstones. No explicit snapshot exists in this backend, so nothing keeps an old version.
 * 3. Delete the obsolete files now: RocksDB purges them from background threads, maybe after the
 *    compaction call returns; disabling and re-enabling file deletions makes this thread scan the
 *    directory and delete every obsolete log and table file before it goes on. An iterator pins
 *    the files it reads; they go when it is freed (RocksDB purges on the iterator's release).
 * Compactions and checkpoints are serialised by maint_mu, so a checkpoint's own hold on file
 * deletions never defers this call's purge.
 *
 * RocksDB's C API drops the status of a manual compaction, so a failure is seen through the count
 * of background errors, read before and after.
 */
#include "storage/rocksdb_internal.h"

#include <stdlib.h>

/* rocksdb::BottommostLevelCompaction::kForce */
#define RDB_BOTTOMMOST_FORCE 2

static uint64_t background_errors(rdb_store *s)
{
    uint64_t n = 0;
    if (rocksdb_property_int(s->db, "rocksdb.background-errors", &n) != 0)
        n = 0;
    return n;
}

/* Step 1: flush both families, waiting for the table files to be written. */
static int flush_families(rdb_store *s)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    if (!fo)
        return -ENOMEM;
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_column_family_handle_t *cfs[2] = {s->recs, s->meta};
    int r = 0;
    for (int i = 0; i < 2 && r == 0; i++) {
        char *err = NULL;
        rocksdb_flush_cf(s->db, fo, cfs[i], &err);
        if (err)
            r = rdb_errno(err);
    }
    rocksdb_flushoptions_destroy(fo);
    return r;
}

/* Step 2: rewrite the records' range down to and including the bottommost level. */
static int compact_records(rdb_store *s, const void *begin, size_t blen, const void *end, size_t elen)
{
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    if (!co)
        return -ENOMEM;
    rocksdb_compactoptions_set_bottommost_level_compaction(co, RDB_BOTTOMMOST_FORCE);
    /* RocksDB's end is inclusive: one key past the range may be rewritten too, which is harmless. */
    rocksdb_compact_range_cf_opt(s->db, s->recs, co, begin, blen, end, elen);
    rocksdb_compactoptions_destroy(co);
    return 0;
}

/* Step 3: delete every obsolete log and table file from this thread. */
static int purge_obsolete(rdb_store *s)
{
    char *err = NULL;
    rocksdb_disable_file_deletions(s->db, &err);
    if (err)
        return rdb_errno(err);
    /* force = 0: undo only our own hold; the scan and purge run here when no other hold remains. */
    rocksdb_enable_file_deletions(s->db, 0, &err);
    return err ? rdb_errno(err) : 0;
}

int rdb_compact(sx_storage *base, const void *begin, size_t blen, const void *end, size_t elen)
{
    rdb_store *s = (rdb_store *)base;
    if (atomic_load(&s->broken))
        rdb_recover(s);
    int r = rdb_enter(s);
    if (r < 0)
        return r;
    pthread_mutex_lock(&s->maint_mu);
    uint64_t errors = background_errors(s);
    r = flush_families(s);
    if (r == 0)
        r = compact_records(s, begin, blen, end, elen);
    if (r == 0 && background_errors(s) != errors) {
        uint64_t avail = 0;
        r = rdb_free_bytes(s->path, &avail) == 0 && avail < RDB_MIN_FREE ? -ENOSPC : -EIO;
    }
    if (r == 0)
        r = purge_obsolete(s);
    pthread_mutex_unlock(&s->maint_mu);
    rdb_leave(s);
    return r;
}
