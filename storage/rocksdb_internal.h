/*
 * rocksdb_internal.h - what the two files of the RocksDB backend share: the store handle and the
 * life of the database handle (rocksdb_db.c). The records, batches, reads and iterators are in
 * rocksdb.c, the compact slot in rocksdb_compact.c. Not part of the storage interface.
 */
#ifndef SX_STORAGE_ROCKSDB_INTERNAL_H
#define SX_STORAGE_ROCKSDB_INTERNAL_H

#include "storage/storage_internal.h"

#include <rocksdb/c.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RDB_STRIPES       1024
#define RDB_HDR           9    /* format byte + revision */
#define RDB_REC_FORMAT    0x01 /* first byte of every record value */
#define RDB_LEASE_US      (60ull * 1000 * 1000)
#define RDB_FORMAT_TAG    "secretsd-storage 1"
#define RDB_LOCK_FILE     "secretsd.lock"
#define RDB_MAX_WAL_BYTES (64ull << 20) /* log size that forces a flush (see rdb_open) */

/* See "Disk full" in rocksdb_db.c. */
#define RDB_MIN_FREE         (1ull << 20)            /* bytes free needed to open or reopen */
#define RDB_RECOVER_EVERY_NS (1000ull * 1000 * 1000) /* at most one reopen attempt per second */
#define RDB_RECOVER_WAIT_S   1                       /* longest a reopen waits for calls in progress */
#define RDB_INFO_LOG_FATAL   4                       /* rocksdb::InfoLogLevel::FATAL_LEVEL */

typedef struct rdb_store {
    sx_storage base;                      /* must stay first */
    pthread_rwlock_t db_lock;             /* shared by every use of db, meta, recs; exclusive to reopen */
    rocksdb_t *db;                        /* NULL after a reopen that failed */
    rocksdb_column_family_handle_t *meta; /* "default" */
    rocksdb_column_family_handle_t *recs; /* "records" */
    rocksdb_writeoptions_t *wopt;         /* sync as configured */
    rocksdb_writeoptions_t *wopt_sync;    /* always sync (bookkeeping) */
    rocksdb_readoptions_t *ropt;          /* verify checksums */
    int lock_fd;
    bool sync;
    bool group_ok;   /* group initialised */
    sxs_group group; /* group commit of synced writes (group.c) */
    pthread_mutex_t clock_mu;
    uint64_t last_rev;
    uint64_t ceiling;
    char *path;
    rocksdb_options_t *opts;    /* kept for a reopen */
    atomic_bool broken;         /* a write failed: RocksDB refuses writes until reopened */
    atomic_int broken_rc;       /* the error that broke it (what calls answer while db is NULL) */
    pthread_mutex_t recover_mu; /* one reopen at a time */
    uint64_t recover_at;        /* CLOCK_MONOTONIC ns of the last attempt (under recover_mu) */
    uint64_t seq_base;          /* added to RocksDB's sequence by change_seq (set under db_lock held exclusively) */
    _Atomic uint64_t seq_high;  /* the largest number change_seq has answered */
    pthread_mutex_t maint_mu;   /* one compact or checkpoint at a time (see rocksdb_compact.c) */
    bool locks_ok;              /* db_lock, recover_mu and maint_mu initialised */
    pthread_rwlock_t stripes[RDB_STRIPES];
} rdb_store;

/* Translate a RocksDB error string into a negative errno, then free it with rocksdb_free(). */
int rdb_errno(char *msg);

/* Take the database handle shared, for one call or an iterator's whole life: 0, or -errno when
 * there is no open database (a reopen failed). rdb_leave() gives it back. */
int rdb_enter(rdb_store *s);
void rdb_leave(rdb_store *s);

/* A write failed with rc: RocksDB refuses writes from now on, until rdb_recover() reopens it. */
void rdb_mark_broken(rdb_store *s, int rc);

/* Open the database at s->path with s->opts into s->db, s->meta, s->recs; close it again. */
int rdb_db_open(rdb_store *s, char *err, size_t errlen);
void rdb_db_close(rdb_store *s);

/* Called by writes while the store is broken: reopen the database when there is room again (at
 * most once per RDB_RECOVER_EVERY_NS; best effort). */
void rdb_recover(rdb_store *s);

/* Bytes an unprivileged writer may still use on the file system holding path: 0 or -errno. */
int rdb_free_bytes(const char *path, uint64_t *ret);

/* Take the directory's lock file (creating the directory if it is missing). */
int rdb_take_dir_lock(rdb_store *s, const char *path, char *err, size_t errlen);

/* The compact slot (rocksdb_compact.c). */
int rdb_compact(sx_storage *base, const void *begin, size_t blen, const void *end, size_t elen);

#endif
