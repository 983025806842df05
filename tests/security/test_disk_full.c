/*
 * test_disk_full.c - a full disk under the RocksDB data directory: writes answer 503 JSON and
 * change nothing, reads keep working, the server never crashes, and once space is freed writes
 * succeed again without a restart.
 *
 * The data directory is a small file system of its own: a 16 MiB tmpfs, or when tmpfs cannot be
 * mounted, a loop-mounted ext4 image; when neither can be mounted (not root, no CAP_SYS_ADMIN) the
 * test is skipped (exit status 77, ctest SKIP_RETURN_CODE). It is smaller than the log
 * preallocation RocksDB asks for (about 70 MiB), so the log cannot hide free space from the test.
 * The test first moves itself into a private mount namespace, so the mount disappears with the test
 * process and the server it started whatever way they end; it still unmounts on every normal path.
 *
 * Twice in a row: a filler file takes every free byte; set-value, create, update and delete all
 * answer 503 {"code": "unavailable"}; the server still runs and answers list, get, reveal and the
 * values map with the data from before; nothing a failed write touched has changed. Then the filler
 * is deleted, and a write is retried until it succeeds (the backend reopens RocksDB, which stays in
 * its read-only error state otherwise); every kind of write works again, and after a clean restart
 * everything acknowledged is there.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

#define SKIP_STATUS 77
#define FS_SIZE     "16m"
#define BIG_VALUE   (48 * 1024)

static bool skipped;
static char skip_reason[512];

typedef struct small_fs {
    char mnt[1024];
    char image[1024];
    bool mounted;
} small_fs;

/* Mount a small file system at mnt: tmpfs, else a loop-mounted ext4 image. */
static int fs_mount(small_fs *fs, const char *dir)
{
    snprintf(fs->mnt, sizeof(fs->mnt), "%s/fs", dir);
    if (mkdir(fs->mnt, 0700) != 0)
        return -1;
    if (mount("tmpfs", fs->mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=" FS_SIZE ",mode=0700") == 0) {
        fs->mounted = true;
        printf("data directory on a %s tmpfs\n", FS_SIZE);
        return 0;
    }
    int tmpfs_errno = errno;
    snprintf(fs->image, sizeof(fs->image), "%s/fs.img", dir);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "truncate -s %s '%s' && mkfs.ext4 -q -F -m 0 '%s' >/dev/null 2>&1 && mount -o loop '%s' '%s' 2>/dev/null",
             FS_SIZE, fs->image, fs->image, fs->image, fs->mnt);
    if (system(cmd) == 0) {
        fs->mounted = true;
        printf("data directory on a loop-mounted %s ext4 image (tmpfs: %s)\n", FS_SIZE, strerror(tmpfs_errno));
        return 0;
    }
    snprintf(skip_reason, sizeof(skip_reason),
             "cannot mount a small file system for the data directory (tmpfs: %s; loop-mounted ext4 image: failed); "
             "this test needs root with CAP_SYS_ADMIN",
             strerror(tmpfs_errno));
    return -1;
}

static void fs_unmount(small_fs *fs)
{
    if (fs->mounted && umount2(fs->mnt, MNT_DETACH) != 0)
        fprintf(stderr, "test_disk_full: umount %s: %s\n", fs->mnt, strerror(errno));
    fs->mounted = false;
    if (fs->image[0])
        unlink(fs->image);
}

/* Fill the file system: write until not one more byte fits. Returns the bytes written. */
static long long fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    static char buf[1 << 16];
    memset(buf, 0x5a, sizeof(buf));
    long long total = 0;
    for (size_t chunk = sizeof(buf); chunk >= 1; chunk /= 16) {
        for (;;) {
            ssize_t w = write(fd, buf, chunk);
            if (w <= 0)
                break;
            total += w;
        }
        if (chunk == 1)
            break;
    }
    fsync(fd);
    close(fd);
    return total;
}

/* ---- requests ------------------------------------------------------------------------------------ */

static const char *auth_hdr;

static long req(const sx_srv *srv, sx_proto p, const char *method, const char *path, const char *body, sx_resp *out)
{
    const char *hdrs[] = {"Content-Type: application/json", auth_hdr, NULL};
    sx_resp r;
    long st = -1;
    if (sx_srv_request(srv, p, method, path, hdrs, body, body ? strlen(body) : 0, &r) == 0)
        st = r.status;
    if (out)
        *out = r;
    else
        sx_resp_free(&r);
    return st;
}

#define E "/o/p/envs/full"

static char *value_body(const char *prefix, size_t len)
{
    char *b = malloc(len + 64);
    int n = snprintf(b, len + 64, "{\"value\":\"%s", prefix);
    for (size_t i = strlen(prefix); i < len; i++)
        b[n++] = (char)('a' + i % 26);
    snprintf(b + n, 8, "\"}");
    return b;
}

/* The answer is the 503 JSON error with code "unavailable" that says the device is full. */
static void expect_unavailable(const sx_srv *srv, sx_proto p, const char *what, const char *method, const char *path,
                               const char *body)
{
    sx_resp r;
    long st = req(srv, p, method, path, body, &r);
    if (st != 503 || !sx_resp_is_error(&r, "unavailable") || !strstr(r.body, "full")) {
        fprintf(stderr, "%s on a full disk: %ld %s\n", what, st, r.body);
        sx_test_failures++;
    }
    sx_resp_free(&r);
}

static void expect_value(const sx_srv *srv, const char *name, const char *want_prefix)
{
    char path[256];
    snprintf(path, sizeof(path), E "/secrets/%s/value", name);
    sx_resp r;
    long st = req(srv, SX_H2C, "GET", path, NULL, &r);
    char frag[256];
    snprintf(frag, sizeof(frag), "\"value\":\"%s", want_prefix);
    if (st != 200 || !strstr(r.body, frag)) {
        fprintf(stderr, "%s: expected a value starting \"%s\", got %ld %.120s\n", name, want_prefix, st, r.body);
        sx_test_failures++;
    }
    sx_resp_free(&r);
}

static void expect_description(const sx_srv *srv, const char *name, const char *want)
{
    char path[256], frag[256];
    snprintf(path, sizeof(path), E "/secrets/%s", name);
    snprintf(frag, sizeof(frag), "\"description\":\"%s\"", want);
    sx_resp r;
    long st = req(srv, SX_H1, "GET", path, NULL, &r);
    if (st != 200 || !strstr(r.body, frag)) {
        fprintf(stderr, "%s: expected description \"%s\", got %ld %s\n", name, want, st, r.body);
        sx_test_failures++;
    }
    sx_resp_free(&r);
}

static bool server_alive(sx_srv *srv)
{
    int st;
    if (waitpid(srv->pid, &st, WNOHANG) == srv->pid) {
        fprintf(stderr, "secretsd died (status %d)\n", st);
        srv->pid = 0;
        return false;
    }
    return req(srv, SX_H1, "GET", "/healthz", NULL, NULL) == 200;
}

/* One cycle: fill, check that writes fail cleanly and reads work, free, check recovery. */
static void cycle(sx_srv *srv, const small_fs *fs, int n)
{
    char filler[1100], path[256], body[256];
    snprintf(filler, sizeof(filler), "%s/filler", fs->mnt);
    long long filled = fill(filler);
    REQUIRE(filled >= 0);
    printf("cycle %d: filler took the last %lld KiB\n", n, filled / 1024);

    /* A large value cannot fit in whatever is left of the log's last page: this write hits the
     * full disk for certain; every later one finds RocksDB refusing writes. */
    char *big = value_body("big-", BIG_VALUE);
    expect_unavailable(srv, SX_H1, "set-value (large)", "PUT", E "/secrets/a1/value", big);
    free(big);
    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"new%d\"}", n);
    expect_unavailable(srv, SX_H2C, "create", "POST", E "/secrets", body);
    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"upd\",\"description\":\"changed %d\"}", n);
    expect_unavailable(srv, SX_H1, "update", "PUT", E "/secrets/upd", body);
    snprintf(path, sizeof(path), E "/secrets/gone%d", n);
    expect_unavailable(srv, SX_H2C, "delete", "DELETE", path, NULL);
    expect_unavailable(srv, SX_H1, "set-value (small)", "PUT", E "/secrets/a2/value", "{\"value\":\"x\"}");

    /* Still serving, reads work, nothing the failed writes touched has changed. */
    CHECK(server_alive(srv));
    sx_resp r;
    CHECK_INT(req(srv, SX_H1, "GET", E "/secrets", NULL, &r), 200);
    snprintf(body, sizeof(body), "\"name\":\"new%d\"", n);
    CHECK(strstr(r.body, "\"name\":\"a1\"") && strstr(r.body, "\"name\":\"upd\"") && !strstr(r.body, body));
    sx_resp_free(&r);
    CHECK_INT(req(srv, SX_H2C, "GET", E "/values", NULL, NULL), 200);
    expect_value(srv, "a1", n == 0 ? "first-a1" : "recovered-0");
    expect_value(srv, "a2", n == 0 ? "first-a2" : "recovered-a2-0");
    expect_description(srv, "upd", n == 0 ? "original" : "after 0");
    CHECK_INT(req(srv, SX_H1, "GET", path, NULL, NULL), 200); /* gone<n> was not deleted */
    snprintf(path, sizeof(path), E "/secrets/new%d", n);
    CHECK_INT(req(srv, SX_H1, "GET", path, NULL, NULL), 404);

    /* Free the space: writes succeed again, without a restart. */
    CHECK(unlink(filler) == 0);
    long st = 0;
    int tries = 0;
    char want[64];
    snprintf(want, sizeof(want), "recovered-%d", n);
    char *vb = value_body(want, 4096);
    for (; tries < 600; tries++) {
        sx_resp w;
        st = req(srv, SX_H2C, "PUT", E "/secrets/a1/value", vb, &w);
        bool ok503 = st == 503 && sx_resp_is_error(&w, "unavailable");
        sx_resp_free(&w);
        if (st == 200)
            break;
        if (!ok503) {
            fprintf(stderr, "cycle %d: a write after freeing space answered %ld\n", n, st);
            sx_test_failures++;
            break;
        }
        sx_test_sleep_ms(100);
    }
    free(vb);
    REQUIRE(st == 200);
    printf("cycle %d: writes succeed again after %d retries\n", n, tries);
    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"new%d\"}", n);
    CHECK_INT(req(srv, SX_H1, "POST", E "/secrets", body, NULL), 201);
    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"upd\",\"description\":\"after %d\"}", n);
    CHECK_INT(req(srv, SX_H2C, "PUT", E "/secrets/upd", body, NULL), 200);
    snprintf(path, sizeof(path), E "/secrets/gone%d", n);
    CHECK_INT(req(srv, SX_H1, "DELETE", path, NULL, NULL), 200);
    snprintf(body, sizeof(body), "{\"value\":\"recovered-a2-%d\"}", n);
    CHECK_INT(req(srv, SX_H2C, "PUT", E "/secrets/a2/value", body, NULL), 200);
    expect_value(srv, "a1", want);
    CHECK_INT(req(srv, SX_H1, "GET", path, NULL, NULL), 404);
    /* The list (served from a page cache keyed by the store's change sequence, which the reopen
     * must not repeat) shows every write made after the recovery, on each protocol. */
    for (int i = 0; i < 4; i++) {
        CHECK_INT(req(srv, i % 2 ? SX_H2C : SX_H1, "GET", E "/secrets", NULL, &r), 200);
        snprintf(body, sizeof(body), "\"name\":\"new%d\"", n);
        CHECK(strstr(r.body, body) != NULL);
        snprintf(body, sizeof(body), "\"name\":\"gone%d\"", n);
        CHECK(strstr(r.body, body) == NULL);
        snprintf(body, sizeof(body), "after %d", n);
        CHECK(strstr(r.body, body) != NULL || strstr(r.body, "\"description\"") == NULL);
        sx_resp_free(&r);
    }
}

static int start(sx_srv *srv, const char *dir)
{
    sx_srv_opts o = {.backend = "rocksdb", .threads = 2, .dir = dir};
    return sx_srv_start(srv, &o);
}

static void run(const char *dir, small_fs *fs)
{
    /* The harness puts the store at DIR/data: make that the small file system's db directory. */
    char db[1100], data[1100];
    snprintf(db, sizeof(db), "%s/db", fs->mnt);
    snprintf(data, sizeof(data), "%s/data", dir);
    REQUIRE(mkdir(db, 0700) == 0);
    REQUIRE(symlink("fs/db", data) == 0);

    sx_srv srv;
    REQUIRE(start(&srv, dir) == 0);
    char *token = sx_srv_mint_token(&srv, "o", NULL, NULL, "owner", NULL);
    char *auth = token ? sx_auth_header(token) : NULL;
    auth_hdr = auth;
    if (!auth) {
        sx_srv_stop(&srv, SIGTERM, 30);
        REQUIRE(auth != NULL);
    }
    CHECK_INT(req(&srv, SX_H1, "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"a1\"}", NULL), 201);
    CHECK_INT(req(&srv, SX_H1, "PUT", E "/secrets/a1/value", "{\"value\":\"first-a1\"}", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"a2\"}", NULL), 201);
    CHECK_INT(req(&srv, SX_H1, "PUT", E "/secrets/a2/value", "{\"value\":\"first-a2\"}", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "POST", E "/secrets",
                  "{\"kind\":\"secret\",\"name\":\"upd\",\"description\":\"original\"}", NULL),
              201);
    CHECK_INT(req(&srv, SX_H1, "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"gone0\"}", NULL), 201);
    CHECK_INT(req(&srv, SX_H1, "POST", E "/secrets", "{\"kind\":\"secret\",\"name\":\"gone1\"}", NULL), 201);

    for (int n = 0; n < 2 && sx_test_failures == 0; n++)
        cycle(&srv, fs, n);

    /* A clean restart: everything acknowledged is there. */
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    if (start(&srv, dir) == 0) {
        expect_value(&srv, "a1", "recovered-1");
        expect_value(&srv, "a2", "recovered-a2-1");
        expect_description(&srv, "upd", "after 1");
        CHECK_INT(req(&srv, SX_H1, "GET", E "/secrets/new0", NULL, NULL), 200);
        CHECK_INT(req(&srv, SX_H1, "GET", E "/secrets/new1", NULL, NULL), 200);
        CHECK_INT(req(&srv, SX_H1, "GET", E "/secrets/gone0", NULL, NULL), 404);
        CHECK_INT(req(&srv, SX_H1, "GET", E "/secrets/gone1", NULL, NULL), 404);
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    } else {
        sx_test_failures++;
    }
    free(auth);
    free(token);
}

static void full_disk_gives_503_keeps_reads_and_recovers_when_space_returns(void)
{
    char *dir = sx_test_tmpdir("diskfull");
    small_fs fs;
    memset(&fs, 0, sizeof(fs));
    if (fs_mount(&fs, dir) != 0) {
        skipped = true;
    } else {
        run(dir, &fs);
        /* Whatever happened in run() (a REQUIRE returns early), the server is stopped by now or
         * was never started; unmount before removing the directory. */
        fs_unmount(&fs);
    }
    sx_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines interleave with stderr in order */
    /* A private mount namespace: the small file system goes away with this process (and the
     * server it starts) on every path, a crash or a ctest timeout included. */
    if (unshare(CLONE_NEWNS) == 0)
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    static const sx_test tests[] = {
        {"full_disk_gives_503_keeps_reads_and_recovers_when_space_returns",
         full_disk_gives_503_keeps_reads_and_recovers_when_space_returns},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    if (skipped) {
        printf("SKIPPED: %s\n", skip_reason);
        return SKIP_STATUS;
    }
    return rc;
}
