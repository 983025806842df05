/*
 * lifecycle.c - opening, closing and sharing a store: the registry, error sentences, restarts of
 * both backends, a second opener of a RocksDB directory, checkpoints, a clean close leaving no log
 * to replay, and records that are not ours. The behaviour common to all backends lives in conformance.c.
 */
#include "storage/storage.h"
#include "testutil.h"

#include <dirent.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static sx_storage *open_at(const char *backend, const char *path, bool sync, int *ret_code, char *err, size_t errlen)
{
    sx_storage_options opt = {.backend = backend, .path = path, .sync = sync};
    sx_storage *s = NULL;
    char buf[256];
    int r = sx_storage_open(&opt, &s, err ? err : buf, err ? errlen : sizeof(buf));
    if (ret_code)
        *ret_code = r;
    return r == 0 ? s : NULL;
}

static char *db_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

static bool has(sx_storage *s, const char *k, const void *v, size_t vlen, uint64_t *ret_rev)
{
    void *val = NULL;
    size_t len = 0;
    if (sx_storage_get(s, k, strlen(k), &val, &len, ret_rev) != 0)
        return false;
    bool ok = len == vlen && memcmp(val, v, len) == 0;
    sx_storage_free(val);
    return ok;
}

static void test_registry_lists_backends(void)
{
    bool rocks = false, mem = false;
    for (size_t i = 0; sx_storage_backends[i]; i++) {
        CHECK_INT(sx_storage_backends[i]->version, SX_STORAGE_OPS_VERSION);
        rocks |= strcmp(sx_storage_backends[i]->name, "rocksdb") == 0;
        mem |= strcmp(sx_storage_backends[i]->name, "memory") == 0;
    }
    CHECK(rocks && mem);
    CHECK(sx_storage_backend_find("memory") != NULL);
    CHECK(sx_storage_backend_find("rocksdb")->caps & SX_STORAGE_CAP_DURABLE);
    CHECK(!(sx_storage_backend_find("memory")->caps & SX_STORAGE_CAP_DURABLE));
#ifdef SX_HAVE_POSTGRES
    CHECK_INT(sx_storage_backend_find("postgres")->caps,
              SX_STORAGE_CAP_DURABLE | SX_STORAGE_CAP_SHARED | SX_STORAGE_CAP_SLOW_READS);
    /* Local stores answer reads from memory or files: the server reads them on its loops. */
    CHECK(!(sx_storage_backend_find("rocksdb")->caps & SX_STORAGE_CAP_SLOW_READS));
    CHECK(!(sx_storage_backend_find("memory")->caps & SX_STORAGE_CAP_SLOW_READS));
#else
    CHECK(sx_storage_backend_find("postgres") == NULL);
#endif
    CHECK(sx_storage_backend_find(NULL) == NULL);
    int code = 0;
    char err[256];
    CHECK(open_at("nosuch", "/nonexistent", true, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -EINVAL);
    CHECK(strstr(err, "nosuch") != NULL);
    CHECK(open_at("rocksdb", NULL, true, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -EINVAL);
}

static void test_strerror_has_a_sentence_for_every_code(void)
{
    int codes[] = {0, SX_STORAGE_ECONDITION, -ENOENT, -EEXIST, -EINVAL, -EIO, -ENOMEM, -EBUSY, -ENOSPC, -ENOTSUP};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *m = sx_storage_strerror(codes[i]);
        CHECK(m && *m);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(m, sx_storage_strerror(codes[j])) != 0);
    }
    CHECK(sx_storage_strerror(-12345) != NULL);
}

static void test_memory_restart_is_empty(void)
{
    sx_storage *s = open_at("memory", NULL, true, NULL, NULL, 0);
    REQUIRE(s);
    CHECK_INT(sx_storage_put(s, "k", 1, "v", 1, NULL), 0);
    sx_storage_close(s);
    s = open_at("memory", NULL, true, NULL, NULL, 0);
    REQUIRE(s);
    CHECK_INT(sx_storage_get(s, "k", 1, NULL, NULL, NULL), -ENOENT);
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, NULL, 0, NULL, 0, 0, &it) == 0);
    CHECK_INT(sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL), SX_STORAGE_DONE);
    sx_storage_iter_free(it);
    sx_storage_close(s);
}

static void test_rocksdb_reopen_keeps_data_and_revisions_move_on(void)
{
    char *dir = sx_test_tmpdir("reopen");
    char *path = db_path(dir, "db");
    for (int pass = 0; pass < 2; pass++) {
        bool sync = pass == 0; /* a clean close keeps unsynced writes too */
        sx_test_rmtree(path);
        sx_storage *s = open_at("rocksdb", path, sync, NULL, NULL, 0);
        REQUIRE(s);
        size_t big = 1024 * 1024;
        char *bigv = malloc(big);
        REQUIRE(bigv);
        memset(bigv, 'B', big);
        uint64_t revs[3];
        CHECK_INT(sx_storage_put(s, "a", 1, "1", 1, &revs[0]), 0);
        CHECK_INT(sx_storage_put(s, "b", 1, bigv, big, &revs[1]), 0);
        CHECK_INT(sx_storage_put(s, "c", 1, "3", 1, &revs[2]), 0);
        CHECK_INT(sx_storage_delete(s, "c", 1), 0);
        sx_storage_close(s);

        s = open_at("rocksdb", path, sync, NULL, NULL, 0);
        REQUIRE(s);
        uint64_t rev = 0;
        CHECK(has(s, "a", "1", 1, &rev));
        CHECK_INT(rev, revs[0]);
        CHECK(has(s, "b", bigv, big, &rev));
        CHECK_INT(rev, revs[1]);
        CHECK_INT(sx_storage_get(s, "c", 1, NULL, NULL, NULL), -ENOENT);
        /* Re-creating "c" after the restart never yields a revision handed out before. */
        CHECK_INT(sx_storage_put(s, "c", 1, "3", 1, &rev), 0);
        for (int i = 0; i < 3; i++)
            CHECK(rev > revs[i]);
        sx_storage_close(s);
        free(bigv);
    }
    sx_test_rmtree(dir);
    free(path);
    free(dir);
}

/* Total size of the write-ahead log files ("NNNNNN.log") in dir, and how many there are. */
static long long wal_bytes(const char *dir, int *ret_files)
{
    DIR *d = opendir(dir);
    long long total = 0;
    *ret_files = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".log") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) == 0) {
            total += st.st_size;
            (*ret_files)++;
        }
    }
    closedir(d);
    return total;
}

/* A clean close flushes every column family, so the next open has no log to replay (a start
 * that stays fast whatever the store holds), and all the data is still there. */
static void test_rocksdb_clean_close_leaves_no_log_to_replay(void)
{
    char *dir = sx_test_tmpdir("flush");
    char *path = db_path(dir, "db");
    sx_storage *s = open_at("rocksdb", path, false, NULL, NULL, 0);
    REQUIRE(s);
    char key[32], val[1024];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < 4000; i++) { /* about 4 MiB of log */
        snprintf(key, sizeof(key), "k/%06d", i);
        CHECK_INT(sx_storage_put(s, key, strlen(key), val, sizeof(val), NULL), 0);
    }
    int files = 0;
    long long before = wal_bytes(path, &files);
    CHECK(before > 4000LL * 1024);
    sx_storage_close(s);
    long long after = wal_bytes(path, &files);
    printf("write-ahead log: %lld bytes before the close, %lld bytes in %d file(s) after\n", before, after, files);
    CHECK(after >= 0 && after < 64 * 1024);
    s = open_at("rocksdb", path, false, NULL, NULL, 0);
    REQUIRE(s);
    CHECK(has(s, "k/000000", val, sizeof(val), NULL));
    CHECK(has(s, "k/003999", val, sizeof(val), NULL));
    sx_storage_close(s);
    sx_test_rmtree(dir);
    free(path);
    free(dir);
}

/* Names, sizes and modification times of everything in dir, as one string. */
static void snapshot_dir(const char *dir, char *out, size_t outlen)
{
    out[0] = '\0';
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]->d_name);
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0 && stat(p, &st) == 0) {
            int w = snprintf(out + used, outlen - used, "%s:%lld:%lld.%09ld;", names[i]->d_name, (long long)st.st_size,
                             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
            if (w > 0 && (size_t)w < outlen - used)
                used += (size_t)w;
        }
        free(names[i]);
    }
    free(names);
}

static void test_rocksdb_second_opener_fails_at_once_and_changes_nothing(void)
{
    char *dir = sx_test_tmpdir("second");
    char *path = db_path(dir, "db");
    sx_storage *s = open_at("rocksdb", path, true, NULL, NULL, 0);
    REQUIRE(s);
    CHECK_INT(sx_storage_put(s, "k", 1, "v", 1, NULL), 0);
    static char before[16384], after[16384];
    snapshot_dir(path, before, sizeof(before));

    /* Another process. */
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        char err[512];
        int code = 0;
        sx_storage *t = open_at("rocksdb", path, true, &code, err, sizeof(err));
        char msg[600];
        int len = snprintf(msg, sizeof(msg), "%d %s", code, err);
        if (write(pipefd[1], msg, (size_t)len) < 0)
            _exit(2);
        _exit(t ? 1 : 0);
    }
    close(pipefd[1]);
    char msg[600] = "";
    ssize_t got = read(pipefd[0], msg, sizeof(msg) - 1);
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    REQUIRE(got > 0);
    msg[got] = '\0';
    CHECK_INT(atoi(msg), -EBUSY);
    CHECK(strstr(msg, "already open in another process") != NULL);
    CHECK(strstr(msg, path) != NULL);

    /* The same process opening it twice fails the same way. */
    int code = 0;
    char err[512];
    CHECK(open_at("rocksdb", path, true, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -EBUSY);

    snapshot_dir(path, after, sizeof(after));
    CHECK_STR(after, before);
    CHECK(has(s, "k", "v", 1, NULL)); /* the first opener is unharmed */
    CHECK_INT(sx_storage_put(s, "k2", 2, "v", 1, NULL), 0);
    sx_storage_close(s);
    /* Once closed, the directory opens again. */
    s = open_at("rocksdb", path, true, NULL, NULL, 0);
    CHECK(s != NULL);
    sx_storage_close(s);
    sx_test_rmtree(dir);
    free(path);
    free(dir);
}

static void test_rocksdb_missing_parent_directory_is_a_clear_error(void)
{
    char *dir = sx_test_tmpdir("parent");
    char *path = db_path(dir, "no/such/db");
    int code = 0;
    char err[512];
    CHECK(open_at("rocksdb", path, true, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -ENOENT);
    CHECK(strstr(err, path) != NULL);
    sx_test_rmtree(dir);
    free(path);
    free(dir);
}

static void test_rocksdb_checkpoint_is_a_consistent_copy(void)
{
    char *dir = sx_test_tmpdir("checkpoint");
    char *path = db_path(dir, "db");
    char *copy = db_path(dir, "copy");
    sx_storage *s = open_at("rocksdb", path, true, NULL, NULL, 0);
    REQUIRE(s);
    CHECK(sx_storage_has(s, SX_STORAGE_CAP_CHECKPOINT));
    char k[32];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof(k), "k/%03d", i);
        CHECK_INT(sx_storage_put(s, k, strlen(k), k, strlen(k), NULL), 0);
    }
    uint64_t rev = 0;
    CHECK_INT(sx_storage_put(s, "last", 4, "x", 1, &rev), 0);
    CHECK_INT(sx_storage_checkpoint(s, copy), 0);
    CHECK(sx_storage_checkpoint(s, copy) < 0); /* must not exist yet */
    CHECK_INT(sx_storage_put(s, "after", 5, "x", 1, NULL), 0);

    sx_storage *c = open_at("rocksdb", copy, true, NULL, NULL, 0); /* while the original is open */
    REQUIRE(c);
    uint64_t crev = 0;
    CHECK(has(c, "last", "x", 1, &crev));
    CHECK_INT(crev, rev);
    CHECK(has(c, "k/042", "k/042", 5, NULL));
    CHECK_INT(sx_storage_get(c, "after", 5, NULL, NULL, NULL), -ENOENT);
    CHECK_INT(sx_storage_put(c, "only-in-copy", 12, "x", 1, NULL), 0);
    CHECK_INT(sx_storage_get(s, "only-in-copy", 12, NULL, NULL, NULL), -ENOENT);
    sx_storage_close(c);
    sx_storage_close(s);

    /* The memory backend has no checkpoint. */
    s = open_at("memory", NULL, true, NULL, NULL, 0);
    REQUIRE(s);
    CHECK_INT(sx_storage_checkpoint(s, copy), -ENOTSUP);
    sx_storage_close(s);
    sx_test_rmtree(dir);
    free(copy);
    free(path);
    free(dir);
}

/* Write raw bytes into the RocksDB directory, bypassing the backend (what a bug or tampering
 * would leave behind). */
static int raw_put(const char *path, const char *cf, const char *k, const char *v, size_t vlen)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    const char *names[2] = {"default", "records"};
    const rocksdb_options_t *cfo[2] = {o, o};
    rocksdb_column_family_handle_t *h[2];
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, path, 2, names, cfo, h, &err);
    rocksdb_options_destroy(o);
    if (err) {
        rocksdb_free(err);
        return -1;
    }
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, wo, strcmp(cf, "records") == 0 ? h[1] : h[0], k, strlen(k), v, vlen, &err);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_column_family_handle_destroy(h[0]);
    rocksdb_column_family_handle_destroy(h[1]);
    rocksdb_close(db);
    if (err) {
        rocksdb_free(err);
        return -1;
    }
    return 0;
}

static void test_rocksdb_rejects_records_that_are_not_ours(void)
{
    char *dir = sx_test_tmpdir("foreign");
    char *path = db_path(dir, "db");
    sx_storage *s = open_at("rocksdb", path, true, NULL, NULL, 0);
    REQUIRE(s);
    CHECK_INT(sx_storage_put(s, "good", 4, "v", 1, NULL), 0);
    sx_storage_close(s);
    /* A record without our header reads as corrupt, in get and in iteration. */
    REQUIRE(raw_put(path, "records", "bad", "xy", 2) == 0);
    s = open_at("rocksdb", path, true, NULL, NULL, 0);
    REQUIRE(s);
    CHECK_INT(sx_storage_get(s, "bad", 3, NULL, NULL, NULL), -EIO);
    CHECK(has(s, "good", "v", 1, NULL));
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(s, "b", 1, NULL, 0, 0, &it) == 0);
    CHECK_INT(sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL), -EIO);
    sx_storage_iter_free(it);
    sx_storage_close(s);
    /* A directory written by something else refuses to open. */
    REQUIRE(raw_put(path, "default", "format", "other 9", 7) == 0);
    int code = 0;
    char err[512];
    CHECK(open_at("rocksdb", path, true, &code, err, sizeof(err)) == NULL);
    CHECK_INT(code, -EIO);
    CHECK(strstr(err, "unknown format") != NULL);
    sx_test_rmtree(dir);
    free(path);
    free(dir);
}

static const sx_test tests[] = {
    {"registry_lists_backends", test_registry_lists_backends},
    {"strerror_has_a_sentence_for_every_code", test_strerror_has_a_sentence_for_every_code},
    {"memory_restart_is_empty", test_memory_restart_is_empty},
    {"rocksdb_reopen_keeps_data_and_revisions_move_on", test_rocksdb_reopen_keeps_data_and_revisions_move_on},
    {"rocksdb_second_opener_fails_at_once_and_changes_nothing",
     test_rocksdb_second_opener_fails_at_once_and_changes_nothing},
    {"rocksdb_missing_parent_directory_is_a_clear_error", test_rocksdb_missing_parent_directory_is_a_clear_error},
    {"rocksdb_checkpoint_is_a_consistent_copy", test_rocksdb_checkpoint_is_a_consistent_copy},
    {"rocksdb_clean_close_leaves_no_log_to_replay", test_rocksdb_clean_close_leaves_no_log_to_replay},
    {"rocksdb_rejects_records_that_are_not_ours", test_rocksdb_rejects_records_that_are_not_ours},
};

int main(int argc, char **argv)
{
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
