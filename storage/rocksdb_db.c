/*
 * rocksdb_db.c - the RocksDB backend's database handle: opening, closing, shared use, the
 * directory lock, and reopening after a failed write.
 *
 * Disk full. A write that fails (no space for the log, an I/O error) leaves RocksDB in its
 * background-error state: reads go on, every later write fails with the same error, and RocksDB
 * 7.8 offers no way out of it through the C API (no Resume). So the first write after such a
 * failure that finds room again (at least RDB_MIN_FREE bytes free, plus what the memtables hold,
 * which the reopen flushes) closes the database and opens it again, at most once per
 * RDB_RECOVER_EVERY_NS: recovery replays the intact log, cuts the record that failed, and writes
 * are served again. Every use of the database handle holds `db_lock` shared (an iterator for its
 * whole life), the reopen holds it exclusively for a bounded wait, so no call ever sees a closed
 * handle; a reopen that fails leaves no handle, and calls answer the error until a later write
 * reopens it. Reads run on event loops and never reopen (it blocks for milliseconds); while a
 * reopen runs they wait for it.
 * Two more things keep a full disk from killing the process, because Debian's librocksdb is built
 * with assertions, and RocksDB's file writer asserts when a file that failed a write is written
 * again: the info LOG (which shares the disk) only takes fatal messages, so nothing is logged
 * into it after a failure; and the store refuses to open with less than RDB_MIN_FREE bytes free,
 * since an open writes the LOG's header lines.
 */
#include "common/clock.h"
#include "storage/rocksdb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Translate a RocksDB error string into a negative errno, then free it with rocksdb_free(). */
int rdb_errno(char *msg)
{
    int r = -EIO;
    if (!msg)
        return r;
    if (strstr(msg, "No space left"))
        r = -ENOSPC;
    else if (strstr(msg, "Permission denied"))
        r = -EACCES;
    else if (strstr(msg, "Read-only file system"))
        r = -EROFS;
    else if (strstr(msg, "While lock file") || strstr(msg, "lock hold by current process"))
        r = -EBUSY;
    else if (strstr(msg, "does not exist"))
        r = -ENOENT;
    else if (strstr(msg, "exists"))
        r = -EEXIST;
    rocksdb_free(msg);
    return r;
}

/* ---- the database handle: shared use, reopen after a failed write ---------------------------- */

/*
 * Take the handle shared, for one call or for an iterator's whole life; -errno when there is no
 * open database (a reopen failed). The lock prefers readers, so a thread that holds an iterator
 * may take it again; if that thread writes while the store is broken, its reopen attempt waits for
 * itself until RDB_RECOVER_WAIT_S and gives up, and a later write tries again.
 */
int rdb_enter(rdb_store *s)
{
    pthread_rwlock_rdlock(&s->db_lock);
    if (!s->db) {
        pthread_rwlock_unlock(&s->db_lock);
        int rc = atomic_load(&s->broken_rc);
        return rc < 0 ? rc : -EIO;
    }
    return 0;
}

void rdb_leave(rdb_store *s)
{
    pthread_rwlock_unlock(&s->db_lock);
}

/* A write failed: RocksDB keeps refusing writes now (its background error). */
void rdb_mark_broken(rdb_store *s, int rc)
{
    atomic_store(&s->broken_rc, rc);
    atomic_store(&s->broken, true);
}

/* Bytes an unprivileged writer may still use on the file system holding path. */
int rdb_free_bytes(const char *path, uint64_t *ret)
{
    struct statvfs v;
    if (statvfs(path, &v) != 0)
        return -errno;
    *ret = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
    return 0;
}

/* Open the database at s->path with s->opts into s->db, s->meta, s->recs. */
int rdb_db_open(rdb_store *s, char *err, size_t errlen)
{
    const char *names[2] = {"default", "records"};
    const rocksdb_options_t *cfo[2] = {s->opts, s->opts};
    rocksdb_column_family_handle_t *h[2] = {NULL, NULL};
    char *e = NULL;
    rocksdb_t *db = rocksdb_open_column_families(s->opts, s->path, 2, names, cfo, h, &e);
    if (e) {
        sx_fail(err, errlen, 0, "rocksdb storage: cannot open '%s': %s", s->path, e);
        return rdb_errno(e);
    }
    s->db = db;
    s->meta = h[0];
    s->recs = h[1];
    return 0;
}

void rdb_db_close(rdb_store *s)
{
    if (s->meta)
        rocksdb_column_family_handle_destroy(s->meta);
    if (s->recs)
        rocksdb_column_family_handle_destroy(s->recs);
    if (s->db)
        rocksdb_close(s->db);
    s->meta = s->recs = NULL;
    s->db = NULL;
}

/*
 * Called by writes (on worker threads) while the store is broken: when the last attempt is old
 * enough and the disk has room, wait (boundedly) for every call in progress to finish, then close
 * and reopen the database. Best effort: on any obstacle the store stays broken and a later write
 * tries again.
 */
void rdb_recover(rdb_store *s)
{
    if (pthread_mutex_trylock(&s->recover_mu) != 0)
        return;
    uint64_t now = sx_clock_mono_ns();
    if (!atomic_load(&s->broken) || (s->recover_at && now - s->recover_at < RDB_RECOVER_EVERY_NS))
        goto out;
    s->recover_at = now;
    uint64_t avail = 0, mem = 0;
    if (rdb_free_bytes(s->path, &avail) != 0)
        goto out;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += RDB_RECOVER_WAIT_S;
    if (pthread_rwlock_timedwrlock(&s->db_lock, &deadline) != 0)
        goto out;
    /* The reopen writes the memtables out as a table file: they need room too. */
    if (s->db && rocksdb_property_int(s->db, "rocksdb.cur-size-all-mem-tables", &mem) != 0)
        mem = 0;
    if (avail >= RDB_MIN_FREE + mem) {
        rdb_db_close(s);
        int rc = rdb_db_open(s, NULL, 0);
        if (rc == 0) {
            /* A reopened database may publish a sequence number again for other contents (what
             * was published but not written out before the failure is gone): start change_seq
             * above every number it answered before, so no cache keyed by it is taken for new. */
            s->seq_base = atomic_load(&s->seq_high) + 1;
            atomic_store(&s->broken, false);
        } else
            atomic_store(&s->broken_rc, rc);
    }
    pthread_rwlock_unlock(&s->db_lock);
out:
    pthread_mutex_unlock(&s->recover_mu);
}

/* Take the directory's lock file (creating the directory if it is missing). */
int rdb_take_dir_lock(rdb_store *s, const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        sx_fail(err, errlen, 0, "rocksdb storage: cannot create directory '%s': %s", path, strerror(e));
        return -e;
    }
    char lock[4096];
    if ((size_t)snprintf(lock, sizeof(lock), "%s/%s", path, RDB_LOCK_FILE) >= sizeof(lock)) {
        sx_fail(err, errlen, 0, "rocksdb storage: path too long");
        return -ENAMETOOLONG;
    }
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        int e = errno;
        sx_fail(err, errlen, 0, "rocksdb storage: cannot open '%s': %s", lock, strerror(e));
        return -e;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            sx_fail(err, errlen, 0,
                    "rocksdb storage: '%s' is already open in another process (lock '%s' is held); "
                    "stop that process or use another directory",
                    path, lock);
            return -EBUSY;
        }
        sx_fail(err, errlen, 0, "rocksdb storage: cannot lock '%s': %s", lock, strerror(e));
        return -e;
    }
    return 0;
}
