/*
 * compact.c - "destroyed means gone" on a real RocksDB store: after sx_storage_compact() over the
 * range of deleted records, their value bytes are in no file of the store's directory (logs, table
 * files, MANIFEST, OPTIONS, LOG...), neither while it is open nor after it is closed.
 *
 * Canaries are random 32-byte values, so any occurrence in a file is theirs. Half of them are
 * flushed into a table file before they are deleted (a checkpoint flushes the memtables), the
 * other half live only in the write-ahead log and the memtable, among many ordinary records.
 * The control run does the same without compact and must find every canary in the directory:
 * that is what shows the search can see them at all. The store is opened with sync on, as the
 * server opens it.
 */
#include "storage/storage.h"
#include "testutil.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>

/* A table file's blocks are compressed (Snappy), and a compressor may encode a canary's first or
 * last byte as part of a copy of the neighbouring bytes (the record header before it repeats from
 * record to record, and a random byte matches its predecessor's one time in 256). The search looks
 * for the canary without CANARY_EDGE bytes at each end: 24 random bytes that can only be stored
 * as they are. */
enum { CANARIES = 16, CANARY_LEN = 32, CANARY_EDGE = 4, FILLERS = 800 };

typedef struct canaries {
    uint8_t flushed[CANARIES][CANARY_LEN]; /* in a table file before they are deleted */
    uint8_t logged[CANARIES][CANARY_LEN];  /* only in the log and the memtable */
} canaries;

static sx_storage *open_rocksdb(const char *path)
{
    sx_storage_options opt = {.backend = "rocksdb", .path = path, .sync = true};
    sx_storage *s = NULL;
    char err[256];
    int r = sx_storage_open(&opt, &s, err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "open %s: %s\n", path, err);
    return r == 0 ? s : NULL;
}

static void new_canary(uint8_t out[CANARY_LEN])
{
    if (getrandom(out, CANARY_LEN, 0) != CANARY_LEN)
        abort();
}

/* How many of the n canaries occur in some regular file under dir (recursively); names the file
 * of every hit on stderr when verbose. */
static int count_in_dir(const char *dir, const uint8_t (*c)[CANARY_LEN], size_t n, bool *seen, bool verbose)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            count_in_dir(path, c, n, seen, verbose);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        size_t len = 0;
        char *data = sx_test_read_file(path, &len);
        if (!data)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (sx_test_memmem(data, len, c[i] + CANARY_EDGE, CANARY_LEN - 2 * CANARY_EDGE)) {
                if (verbose && !seen[i])
                    fprintf(stderr, "canary %zu found in %s\n", i, e->d_name);
                seen[i] = true;
            }
        }
        free(data);
    }
    closedir(d);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found += seen[i];
    return found;
}

static int found_in(const char *dir, const uint8_t (*c)[CANARY_LEN], bool verbose)
{
    bool seen[CANARIES] = {0};
    return count_in_dir(dir, c, CANARIES, seen, verbose);
}

/* Fill a store with ordinary records around two groups of canaries, then delete the canaries.
 * Between the groups the store is restarted: its first write then also writes the backend's
 * bookkeeping (the revision lease), which pins the log the logged canaries go to until that
 * bookkeeping is flushed too. */
static void write_and_delete(sx_storage **sp, const char *db, const char *copy, canaries *c)
{
    sx_storage *s = *sp;
    char k[32], v[128];
    for (int i = 0; i < FILLERS; i++) {
        int kl = snprintf(k, sizeof(k), "a/%05d", i);
        int vl = snprintf(v, sizeof(v), "ordinary record %d of the store, kept alive", i);
        CHECK_INT(sx_storage_put(s, k, (size_t)kl, v, (size_t)vl, NULL), 0);
    }
    for (int i = 0; i < CANARIES; i++) {
        new_canary(c->flushed[i]);
        int kl = snprintf(k, sizeof(k), "c/f%02d", i);
        CHECK_INT(sx_storage_put(s, k, (size_t)kl, c->flushed[i], CANARY_LEN, NULL), 0);
    }
    CHECK_INT(sx_storage_checkpoint(s, copy), 0); /* flushes the memtables into table files */
    sx_storage_close(s);
    *sp = s = open_rocksdb(db);
    if (!s)
        abort();
    for (int i = 0; i < CANARIES; i++) {
        new_canary(c->logged[i]);
        int kl = snprintf(k, sizeof(k), "c/l%02d", i);
        CHECK_INT(sx_storage_put(s, k, (size_t)kl, c->logged[i], CANARY_LEN, NULL), 0);
    }
    for (int i = 0; i < FILLERS; i++) {
        int kl = snprintf(k, sizeof(k), "z/%05d", i);
        int vl = snprintf(v, sizeof(v), "another ordinary record %d", i);
        CHECK_INT(sx_storage_put(s, k, (size_t)kl, v, (size_t)vl, NULL), 0);
    }
    for (int i = 0; i < CANARIES; i++) {
        int kl = snprintf(k, sizeof(k), "c/f%02d", i);
        CHECK_INT(sx_storage_delete(s, k, (size_t)kl), 0);
        kl = snprintf(k, sizeof(k), "c/l%02d", i);
        CHECK_INT(sx_storage_delete(s, k, (size_t)kl), 0);
    }
}

static void check_fillers(sx_storage *s)
{
    char k[32];
    uint64_t n = 0;
    CHECK_INT(sx_storage_count(s, "a/", 2, &n), 0);
    CHECK_INT(n, FILLERS);
    CHECK_INT(sx_storage_count(s, "z/", 2, &n), 0);
    CHECK_INT(n, FILLERS);
    CHECK_INT(sx_storage_count(s, "c/", 2, &n), 0);
    CHECK_INT(n, 0);
    int kl = snprintf(k, sizeof(k), "a/%05d", FILLERS - 1);
    void *v = NULL;
    size_t vlen = 0;
    CHECK_INT(sx_storage_get(s, k, (size_t)kl, &v, &vlen, NULL), 0);
    sx_storage_free(v);
}

/*
 * Write and delete the canaries, then compact [begin, end) (NULL = unbounded) when compact is set,
 * and search the store's directory while it is open, after it is closed and (with compact) after
 * a restart: no canary with compact; without it (the control) every one while the store is open,
 * and the flushed ones after it is closed (closing flushes a memtable holding a put and its delete
 * as nothing, so the logged ones may go then). Either way a copy made before keeps what it held.
 */
static void run_scenario(bool compact, const char *begin, const char *end)
{
    char *dir = sx_test_tmpdir("compact");
    char db[4096], copy[4096];
    snprintf(db, sizeof(db), "%s/db", dir);
    snprintf(copy, sizeof(copy), "%s/copy", dir);
    static canaries c;
    sx_storage *s = open_rocksdb(db);
    REQUIRE(s);
    write_and_delete(&s, db, copy, &c);
    if (compact)
        CHECK_INT(sx_storage_compact(s, begin, begin ? strlen(begin) : 0, end, end ? strlen(end) : 0), 0);
    int want = compact ? 0 : CANARIES;
    CHECK_INT(found_in(db, c.flushed, compact), want);
    CHECK_INT(found_in(db, c.logged, compact), want);
    check_fillers(s);
    sx_storage_close(s);
    CHECK_INT(found_in(db, c.flushed, compact), want);
    if (compact) {
        CHECK_INT(found_in(db, c.logged, true), 0);
        /* The ordinary records are all there after a restart, and still no canary. */
        s = open_rocksdb(db);
        REQUIRE(s);
        check_fillers(s);
        sx_storage_close(s);
        CHECK_INT(found_in(db, c.flushed, true), 0);
        CHECK_INT(found_in(db, c.logged, true), 0);
    }
    CHECK_INT(found_in(copy, c.flushed, false), CANARIES);
    sx_test_rmtree(dir);
    free(dir);
}

static void test_compact_drops_deleted_bytes(void)
{
    run_scenario(true, "c/", "c0");
}

/* The whole store (no bounds) drops them too. */
static void test_compact_of_whole_store_drops_deleted_bytes(void)
{
    run_scenario(true, NULL, NULL);
}

/* The control: without compact, a deleted record's bytes are still in the files (the flushed ones
 * in a table file, the others in the log), so the searches of the tests above can see canaries. */
static void test_without_compact_deleted_bytes_stay(void)
{
    run_scenario(false, NULL, NULL);
}

static const sx_test tests[] = {
    {"compact_drops_deleted_bytes", test_compact_drops_deleted_bytes},
    {"compact_of_whole_store_drops_deleted_bytes", test_compact_of_whole_store_drops_deleted_bytes},
    {"without_compact_deleted_bytes_stay", test_without_compact_deleted_bytes_stay},
};

int main(int argc, char **argv)
{
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc - 1, argv + 1);
}
