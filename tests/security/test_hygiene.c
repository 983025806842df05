/*
 * test_hygiene.c - secret values and tokens never reach the disk or a log, and the running server
 * is not dumpable and writes no core file: plaintext values and tokens never reach a log line, an
 * error message or the storage files, and the process is not dumpable.
 *
 * Against the real binary on RocksDB: 1000 values that each carry a unique canary are written
 * (create + set-value), all are revealed once, half are deleted, the master key and then the env's
 * data key are rotated, and the server is stopped cleanly; it is started once more on the same
 * data (RocksDB then replays its WAL into SST files) and stopped again. Then every file of the
 * server's directory is searched - the RocksDB data dir (WAL, SST, MANIFEST, OPTIONS, LOG:
 * whatever exists), the access and audit logs, the server's stderr, the seal key file - and the
 * server's stdout (captured by the test): no canary, no minted token, no token
 * secret part, and no presented-but-wrong token may appear. The files are searched as written;
 * since SST blocks are Snappy-compressed with prefix-compressed keys (RocksDB's defaults) and a
 * clean stop flushes everything into them, every record is also read back through RocksDB
 * (rocksdump.h) and searched. That search is shown to work by finding the secret names
 * (plaintext by design) in the records.
 *
 * Dumpability: nothing outside a process can read its dumpable flag (there is no Dumpable line in
 * /proc/PID/status, and a non-dumpable process's /proc/PID files being owned by root proves
 * nothing when the test runs as root). So the server is started with dumpcheck.so preloaded, and
 * SIGUSR2 makes it report prctl(PR_GET_DUMPABLE) and RLIMIT_CORE from the inside while it serves.
 * The core limit is also read from the outside (/proc/PID/limits), and when the test runs as
 * another user than root, the root ownership of /proc/PID/environ is checked too.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "ops_util.h"
#include "rocksdump.h"
#include "testutil.h"

#define N_SECRETS 1000
#define TOKEN_LEN 80

static void random_hex(char *out, size_t nhex)
{
    unsigned char raw[64];
    size_t n = (nhex + 1) / 2;
    if (getrandom(raw, n, 0) != (ssize_t)n)
        abort();
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < nhex; i++)
        out[i] = digits[(raw[i / 2] >> ((i & 1) ? 0 : 4)) & 15];
    out[nhex] = '\0';
}

/* One request with the bearer token; returns the status (0 when no answer came). */
static long call(const sx_srv *srv, const char *auth, const char *method, const char *path, const char *body,
                 sx_resp *ret)
{
    const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    if (sx_srv_request(srv, SX_H1, method, path, hdrs, body, body ? strlen(body) : 0, &r) != 0)
        r.status = 0;
    long status = r.status;
    if (ret)
        *ret = r;
    else
        sx_resp_free(&r);
    return status;
}

/* Count non-overlapping occurrences of needle in hay. */
static size_t count_occurrences(const char *hay, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += nl)
        n++;
    return n;
}

/* ---- the file scan ----------------------------------------------------------------------------- */

typedef struct needle {
    const char *text;
    const char *what;
} needle;

static needle scan_needles[8];
static size_t scan_nneedles;
static int scan_hits, scan_files;
static const char *scan_data_dir;
static const char *scan_name; /* a secret name that must be found in the records */
static bool scan_wal, scan_manifest, scan_sst, scan_log;

static void scan_buffer(const char *path, const char *data, size_t len)
{
    scan_files++;
    for (size_t i = 0; i < scan_nneedles; i++) {
        if (sx_test_memmem(data, len, scan_needles[i].text, strlen(scan_needles[i].text))) {
            fprintf(stderr, "%s holds %s\n", path, scan_needles[i].what);
            scan_hits++;
        }
    }
}

static int scan_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    if (flag != FTW_F)
        return 0;
    size_t len = 0;
    char *data = sx_test_read_file(path, &len);
    if (!data) {
        fprintf(stderr, "cannot read %s\n", path);
        scan_hits++;
        return 0;
    }
    scan_buffer(path, data, len);
    if (strncmp(path, scan_data_dir, strlen(scan_data_dir)) == 0) {
        const char *base = path + ftw->base;
        size_t bl = strlen(base);
        scan_wal |= bl > 4 && strcmp(base + bl - 4, ".log") == 0;
        scan_sst |= bl > 4 && strcmp(base + bl - 4, ".sst") == 0;
        scan_manifest |= strncmp(base, "MANIFEST-", 9) == 0;
        scan_log |= strncmp(base, "LOG", 3) == 0;
    }
    free(data);
    return 0;
}

/* ---- dumpability ------------------------------------------------------------------------------- */

/* Ask the server (through the preloaded dumpcheck.so) for its dumpable flag and core limit. */
static bool server_reports_not_dumpable(pid_t pid, const char *out_path)
{
    unlink(out_path);
    if (kill(pid, SIGUSR2) != 0)
        return false;
    char *report = NULL;
    for (int i = 0; i < 100 && !report; i++) {
        sx_test_sleep_ms(50);
        report = sx_test_read_file(out_path, NULL);
        if (report && !strchr(report, '\n')) {
            free(report);
            report = NULL;
        }
    }
    if (!report) {
        fprintf(stderr, "the server did not answer the dumpability probe (is dumpcheck.so preloaded?)\n");
        return false;
    }
    bool ok = strcmp(report, "dumpable=0 core_soft=0 core_hard=0\n") == 0;
    if (!ok)
        fprintf(stderr, "the server reports: %s", report);
    free(report);
    return ok;
}

/* "Max core file size  0  0  bytes" in /proc/PID/limits. */
static bool core_limit_zero(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    char *limits = sx_test_read_file(path, NULL);
    if (!limits)
        return false;
    const char *line = strstr(limits, "Max core file size");
    char soft[32] = "", hard[32] = "";
    bool ok = line && sscanf(line + strlen("Max core file size"), "%31s %31s", soft, hard) == 2 &&
              strcmp(soft, "0") == 0 && strcmp(hard, "0") == 0;
    if (!ok)
        fprintf(stderr, "core limit of the server: soft %s, hard %s\n", soft, hard);
    free(limits);
    return ok;
}

/* Start the server with its stdout appended to stdout_path, and (when probe_path is not NULL)
 * dumpcheck.so preloaded, reporting into probe_path. The test's own stdout and environment are
 * restored afterwards; the server keeps both for its whole life. */
static int start_captured(sx_srv *srv, const sx_srv_opts *opts, const char *stdout_path, const char *probe_path)
{
    fflush(stdout);
    int saved_stdout = dup(STDOUT_FILENO);
    int out_fd = open(stdout_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (saved_stdout < 0 || out_fd < 0)
        return -1;
    dup2(out_fd, STDOUT_FILENO);
    close(out_fd);
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved_asan = asan ? strdup(asan) : NULL;
    if (probe_path) {
        char asan_opts[1024];
        /* A sanitizer build checks that its runtime comes first among the loaded libraries. */
        snprintf(asan_opts, sizeof(asan_opts), "%s%sverify_asan_link_order=0", asan ? asan : "", asan ? ":" : "");
        setenv("ASAN_OPTIONS", asan_opts, 1);
        setenv("LD_PRELOAD", SX_DUMPCHECK_PATH, 1);
        setenv("SX_DUMPCHECK_OUT", probe_path, 1);
    }
    int rc = sx_srv_start(srv, opts);
    if (probe_path) {
        unsetenv("LD_PRELOAD");
        unsetenv("SX_DUMPCHECK_OUT");
        if (saved_asan)
            setenv("ASAN_OPTIONS", saved_asan, 1);
        else
            unsetenv("ASAN_OPTIONS");
    }
    free(saved_asan);
    fflush(stdout);
    dup2(saved_stdout, STDOUT_FILENO);
    close(saved_stdout);
    return rc;
}

/* ---- the test ---------------------------------------------------------------------------------- */

static void values_and_tokens_never_reach_disk_logs_or_error_bodies(void)
{
    char *own = sx_test_tmpdir("hygiene");
    char stdout_path[4096], probe_path[4096];
    snprintf(stdout_path, sizeof(stdout_path), "%s/secretsd.stdout", own);
    snprintf(probe_path, sizeof(probe_path), "%s/dumpcheck.out", own);

    sx_srv srv;
    sx_srv_opts opts = {.backend = "rocksdb", .threads = 2, .keep_dir = true, .extra_log = "audit_log = audit.log\n"};
    REQUIRE(start_captured(&srv, &opts, stdout_path, probe_path) == 0);
    char *dir = strdup(srv.dir);
    char data_dir[4096];
    snprintf(data_dir, sizeof(data_dir), "%s/data/", dir);

    /* While it serves: not dumpable, no core files. */
    CHECK(server_reports_not_dumpable(srv.pid, probe_path));
    CHECK(core_limit_zero(srv.pid));
    if (getuid() != 0) {
        char environ_path[64];
        struct stat st;
        snprintf(environ_path, sizeof(environ_path), "/proc/%d/environ", (int)srv.pid);
        CHECK(stat(environ_path, &st) == 0 && st.st_uid == 0);
    }

    char *token = sx_srv_mint_token(&srv, "acme", "web", "prod", "owner", NULL);
    REQUIRE(token != NULL && strlen(token) == TOKEN_LEN);
    char *auth = sx_auth_header(token);
    /* The same id with another secret: presented, never valid, never to be recorded either. */
    char wrong_token[TOKEN_LEN + 1];
    memcpy(wrong_token, token, TOKEN_LEN + 1);
    random_hex(wrong_token + 37, 42);
    wrong_token[79] = 'A'; /* canonical last base64url character */
    char *wrong_auth = sx_auth_header(wrong_token);

    /* A run tag makes every canary unique to this run; each value adds its own random part. */
    char tag[17], canary_prefix[32];
    random_hex(tag, 16);
    snprintf(canary_prefix, sizeof(canary_prefix), "SXCANARY%s", tag);

    char path[256], body[2048];
    int created = 0, valued = 0;
    for (int i = 0; i < N_SECRETS; i++) {
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"k%04d\",\"description\":\"hygiene test\"}", i);
        if (call(&srv, auth, "POST", "/acme/web/envs/prod/secrets", body, NULL) == 201)
            created++;
        char rnd[17];
        random_hex(rnd, 16);
        /* Every tenth value is long enough to span more than one RocksDB block fragment. */
        int pad = i % 10 == 0 ? 900 : 0;
        snprintf(body, sizeof(body), "{\"value\":\"user=app password=%s-%04d-%s%*s\"}", canary_prefix, i, rnd, pad, "");
        snprintf(path, sizeof(path), "/acme/web/envs/prod/secrets/k%04d/value", i);
        if (call(&srv, auth, "PUT", path, body, NULL) == 200)
            valued++;
    }
    CHECK_INT(created, N_SECRETS);
    CHECK_INT(valued, N_SECRETS);

    /* Reveal all (they are stored and come back), then delete half. */
    sx_resp r;
    CHECK_INT(call(&srv, auth, "GET", "/acme/web/envs/prod/values", NULL, &r), 200);
    CHECK_INT(count_occurrences(r.body, canary_prefix), N_SECRETS);
    sx_resp_free(&r);
    CHECK_INT(call(&srv, auth, "GET", "/acme/web/envs/prod/secrets/k0001/value", NULL, &r), 200);
    CHECK(strstr(r.body, canary_prefix) != NULL);
    sx_resp_free(&r);
    int deleted = 0;
    for (int i = 0; i < N_SECRETS; i += 2) {
        snprintf(path, sizeof(path), "/acme/web/envs/prod/secrets/k%04d", i);
        if (call(&srv, auth, "DELETE", path, NULL, NULL) == 200)
            deleted++;
    }
    CHECK_INT(deleted, N_SECRETS / 2);

    /* Rotate the keys: a new master version re-wraps every data key, then the env's data key gets
     * a new version and every value is re-encrypted under it. Neither may write plaintext. */
    yajl_val rot = ops_admin_json(&srv, "POST", "/v1/master/rotate", NULL, 202);
    CHECK(rot != NULL);
    yajl_tree_free(rot);
    CHECK(ops_wait_rotations_done(&srv, 120));
    rot = ops_admin_json(&srv, "POST", "/v1/envs/acme/web/prod/rotate", NULL, 202);
    CHECK(rot != NULL);
    yajl_tree_free(rot);
    CHECK(ops_wait_rotations_done(&srv, 120));
    CHECK_INT(call(&srv, auth, "GET", "/acme/web/envs/prod/values", NULL, &r), 200);
    CHECK_INT(count_occurrences(r.body, canary_prefix), N_SECRETS / 2);
    sx_resp_free(&r);

    /* Refused writes that carry a canary: the error bodies never echo the value. */
    static const struct {
        const char *fmt;
        long status;
    } refused[] = {
        {"{\"value\":\"%s-refused-1\",\"extra\":true}", 400},  /* unknown field */
        {"{\"value\":\"%s-refused-2\"", 400},                  /* truncated JSON */
        {"{\"value\":\"%s-refused-3\",\"value\":\"x\"}", 400}, /* duplicate key */
        {"{\"value\":[\"%s-refused-4\"]}", 400},               /* wrong type */
        {"{\"value\":\"%s-refused-5\\ud800\"}", 400},          /* lone surrogate */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(body, sizeof(body), refused[i].fmt, canary_prefix);
        CHECK_INT(call(&srv, auth, "PUT", "/acme/web/envs/prod/secrets/k0001/value", body, &r), refused[i].status);
        CHECK(!strstr(r.body, canary_prefix));
        sx_resp_free(&r);
    }
    {
        /* Longer than max_value_bytes (64 KiB by default): 413. */
        size_t big = 70000;
        char *b = malloc(big + 64);
        REQUIRE(b);
        int n = snprintf(b, 64, "{\"value\":\"%s", canary_prefix);
        memset(b + n, 'v', big);
        memcpy(b + n + big, "\"}", 3);
        CHECK_INT(call(&srv, auth, "PUT", "/acme/web/envs/prod/secrets/k0001/value", b, &r), 413);
        CHECK(!strstr(r.body, canary_prefix));
        sx_resp_free(&r);
        free(b);
    }
    /* A wrong token and a token sent to another scope. */
    CHECK_INT(call(&srv, wrong_auth, "GET", "/acme/web/envs/prod/values", NULL, &r), 401);
    CHECK(!strstr(r.body, wrong_token + 37) && !strstr(r.body, token + 37));
    sx_resp_free(&r);
    CHECK_INT(call(&srv, auth, "GET", "/acme/web/envs/dev/values", NULL, &r), 403);
    CHECK(!strstr(r.body, token + 37));
    sx_resp_free(&r);

    /* Once more while it has served all that: still not dumpable. */
    CHECK(server_reports_not_dumpable(srv.pid, probe_path));

    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 60), 0);

    /* Start once more on the same data (and audit log): RocksDB replays its WAL into SST files at open, so the
     * scan below sees the records in every kind of file. The survivors are all still there. */
    sx_srv_opts again = {.backend = "rocksdb", .threads = 2, .dir = dir, .extra_log = "audit_log = audit.log\n"};
    REQUIRE(start_captured(&srv, &again, stdout_path, NULL) == 0);
    CHECK_INT(call(&srv, auth, "GET", "/acme/web/envs/prod/values", NULL, &r), 200);
    CHECK_INT(count_occurrences(r.body, canary_prefix), N_SECRETS / 2);
    sx_resp_free(&r);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 60), 0);

    /* Search every file the server wrote, and its stdout. */
    char secret_part[64], wrong_secret_part[64];
    snprintf(secret_part, sizeof(secret_part), "%s", token + 37);
    snprintf(wrong_secret_part, sizeof(wrong_secret_part), "%s", wrong_token + 37);
    scan_nneedles = 0;
    scan_needles[scan_nneedles++] = (needle){canary_prefix, "a value canary"};
    scan_needles[scan_nneedles++] = (needle){token, "the minted token"};
    scan_needles[scan_nneedles++] = (needle){secret_part, "the minted token's secret part"};
    scan_needles[scan_nneedles++] = (needle){wrong_token, "the presented wrong token"};
    scan_needles[scan_nneedles++] = (needle){wrong_secret_part, "the presented wrong token's secret part"};
    scan_hits = scan_files = 0;
    scan_data_dir = data_dir;
    scan_name = "acme/web/prod/k"; /* a secret-name prefix, in the records' keys */
    scan_wal = scan_manifest = scan_sst = scan_log = false;
    CHECK(nftw(dir, scan_one, 16, FTW_PHYS) == 0);
    size_t out_len = 0;
    char *out = sx_test_read_file(stdout_path, &out_len);
    CHECK(out != NULL);
    if (out)
        scan_buffer("the server's stdout", out, out_len);
    free(out);
    fprintf(stderr, "scanned %d files (data dir: WAL %s, SST %s, MANIFEST %s, LOG %s)\n", scan_files,
            scan_wal ? "yes" : "no", scan_sst ? "yes" : "no", scan_manifest ? "yes" : "no", scan_log ? "yes" : "no");
    /* The files hold the records compressed (SST blocks) once RocksDB has flushed them, which a
     * clean stop does: search the records as RocksDB reads them back, too. */
    sx_test_buf recs = {0};
    CHECK_INT(sx_test_rocksdb_dump(data_dir, &recs), 0);
    if (recs.data) {
        scan_buffer("a record of the store", recs.data, recs.len);
        /* the search reads the records (secret names are plaintext by design) */
        CHECK(sx_test_memmem(recs.data, recs.len, scan_name, strlen(scan_name)));
    }
    free(recs.data);
    CHECK_INT(scan_hits, 0);
    CHECK(scan_wal && scan_sst && scan_manifest && scan_log);
    char access_log[4096];
    snprintf(access_log, sizeof(access_log), "%s/access.log", dir);
    char *alog = sx_test_read_file(access_log, NULL);
    CHECK(alog && strstr(alog, "/acme/web/envs/prod/secrets/k0001/value")); /* the access log was scanned */
    free(alog);
    char audit_log[4096];
    snprintf(audit_log, sizeof(audit_log), "%s/audit.log", dir);
    char *audit = sx_test_read_file(audit_log, NULL);
    /* the audit log was scanned, and it records the reveals and the rotations */
    CHECK(audit && strstr(audit, "k0001") && strstr(audit, "rotate"));
    free(audit);

    sx_test_rmtree(dir);
    sx_test_rmtree(own);
    free(dir);
    free(own);
    free(auth);
    free(wrong_auth);
    free(token);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"values_and_tokens_never_reach_disk_logs_or_error_bodies",
         values_and_tokens_never_reach_disk_logs_or_error_bodies},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
