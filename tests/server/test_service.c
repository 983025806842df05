/*
 * test_service.c - secretsd as a systemd service, against the real binary: the readiness protocol
 * (READY=1 once it serves, STOPPING=1 when the drain begins) to a fake NOTIFY_SOCKET, the seal's
 * key or passphrase read from a systemd credential ($CREDENTIALS_DIRECTORY/NAME) and never logged,
 * a clear start-up error without $CREDENTIALS_DIRECTORY, and SIGHUP reopening the access log after
 * logrotate moved it (what the packaged logrotate configuration relies on), and an access log that
 * stalls dropping counted lines rather than holding requests up.
 */
#include "harness.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* A Unix datagram socket bound at addr (a path, or "@name" for an abstract one), as systemd's. */
static int notify_listener(const char *addr)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(addr);
    if (len >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, addr, len);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (addr[0] == '@')
        sa.sun_path[0] = '\0';
    else
        salen++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, salen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The next datagram (NUL-terminated into buf), waiting up to timeout_ms; false when none came. */
static bool notify_recv(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return false;
    ssize_t n = recv(fd, buf, cap - 1, 0);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

static long healthz(const sx_srv *srv)
{
    sx_resp r;
    long st = sx_srv_request(srv, SX_H1, "GET", "/healthz", NULL, NULL, 0, &r) == 0 ? r.status : -1;
    sx_resp_free(&r);
    return st;
}

/* One server with NOTIFY_SOCKET at addr: READY=1 (with a STATUS line) once it serves, STOPPING=1
 * at SIGTERM, before it exits 0. */
static void notify_round(const char *addr)
{
    int fd = notify_listener(addr);
    REQUIRE(fd >= 0);
    char env[256];
    snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", addr);
    const char *extra_env[] = {env, NULL};
    sx_srv_opts o = {.extra_env = extra_env};
    sx_srv srv;
    if (sx_srv_start(&srv, &o) != 0) {
        close(fd);
        REQUIRE(false);
    }
    char msg[512];
    CHECK(notify_recv(fd, msg, sizeof msg, 30000));
    CHECK(strncmp(msg, "READY=1\n", 8) == 0);
    CHECK(strstr(msg, "\nSTATUS=serving with 2 threads") != NULL);
    CHECK_INT(healthz(&srv), 200); /* ready means listening and unsealed */
    kill(srv.pid, SIGTERM);
    CHECK(notify_recv(fd, msg, sizeof msg, 30000));
    CHECK(strncmp(msg, "STOPPING=1\n", 11) == 0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    close(fd);
}

static void notify_ready_when_serving_and_stopping_at_the_drain(void)
{
    char *dir = sx_test_tmpdir("notify");
    REQUIRE(dir);
    char path[256];
    snprintf(path, sizeof path, "%s/notify.sock", dir);
    notify_round(path);
    snprintf(path, sizeof path, "@secretsd-test-notify-%d", (int)getpid());
    notify_round(path);
    sx_test_rmtree(dir);
    free(dir);
}

/* Run secretsd --config conf with env (NULL-terminated) to its exit; its stderr into *ret_err. */
static int run_to_exit(const char *conf, char *const *env, char **ret_err, const char *err_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        dup2(fd, 1);
        char *argv[] = {"secretsd", "--config", (char *)conf, NULL};
        execve(SX_SECRETSD_PATH, argv, env);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    *ret_err = sx_test_read_file(err_path, NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_credential(const char *dir, const char *name, const void *data, size_t len)
{
    char *creds = sx_test_path(dir, "creds");
    mkdir(creds, 0700);
    char *p = sx_test_path(creds, name);
    CHECK(sx_test_write_file(p, data, len) == 0);
    CHECK(chmod(p, 0400) == 0);
    free(p);
    free(creds);
}

enum { CRED_ENV_MAX = 4200 };

/* Options of a RocksDB server kept in dir whose [seal] is seal_lines, started with
 * CREDENTIALS_DIRECTORY=dir/creds (written into the caller's env; extra_env names it). */
static sx_srv_opts credential_opts(const char *dir, char env[CRED_ENV_MAX], const char *extra_env[2],
                                   const char *seal_lines)
{
    snprintf(env, CRED_ENV_MAX, "CREDENTIALS_DIRECTORY=%s/creds", dir);
    extra_env[0] = env;
    extra_env[1] = NULL;
    return (sx_srv_opts){
        .backend = "rocksdb", .dir = dir, .keep_dir = true, .extra_env = extra_env, .seal_lines = seal_lines};
}

static const char key_bytes[33] = "0123456789abcdefghijKLMNOPQRST!?";

/* Start a server in dir whose file seal's key is the credential "secretsd-seal" (key_bytes); *o
 * gets its options (for a restart), borrowing env and extra_env. */
static int start_on_key_credential(const char *dir, char env[CRED_ENV_MAX], const char *extra_env[2], sx_srv_opts *o,
                                   sx_srv *srv)
{
    write_credential(dir, "secretsd-seal", key_bytes, 32);
    *o = credential_opts(dir, env, extra_env, "type = file\nkey_file = seal.key\ncredential = secretsd-seal\n");
    return sx_srv_start(srv, o);
}

/* A file seal whose key is a credential: the keyring is sealed under it (no key file is made),
 * a value survives a restart, and neither the key nor a recovery key reaches the log. */
static void credential_file_seal_starts_and_reopens(void)
{
    char *dir = sx_test_tmpdir("cred");
    REQUIRE(dir);
    char env[CRED_ENV_MAX];
    const char *extra_env[2];
    sx_srv_opts o;
    sx_srv srv;
    REQUIRE(start_on_key_credential(dir, env, extra_env, &o, &srv) == 0);
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(owner);
    char *auth = sx_auth_header(owner);
    const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", hdrs,
                         "{\"kind\":\"secret\",\"name\":\"DB\"}", 29, &r) == 0 &&
          r.status == 201);
    sx_resp_free(&r);
    CHECK(sx_srv_request(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", hdrs, "{\"value\":\"v1\"}", 14,
                         &r) == 0 &&
          r.status == 200);
    sx_resp_free(&r);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    char *seal_key = sx_test_path(dir, "seal.key");
    CHECK(access(seal_key, F_OK) != 0); /* the credential is the key: no file was made */
    free(seal_key);

    REQUIRE(sx_srv_start(&srv, &o) == 0);
    CHECK(sx_srv_request(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB/value", hdrs, NULL, 0, &r) == 0 &&
          r.status == 200 && strstr(r.body, "\"v1\""));
    sx_resp_free(&r);
    char *log = sx_test_read_file(srv.stderr_path, NULL);
    CHECK(log && strstr(log, "keyring unsealed (file seal, slot "));
    CHECK(log && !sx_test_memmem(log, strlen(log), key_bytes, 32));
    free(log);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);

    /* Another key in the credential does not open the keyring: exit 1, and the log names the
     * credential's trouble without its bytes. */
    char *creds = sx_test_path(dir, "creds/secretsd-seal");
    chmod(creds, 0600);
    CHECK(sx_test_write_file(creds, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", 32) == 0);
    free(creds);
    char *err = NULL, *err_path = sx_test_path(dir, "run.err"), *conf = sx_test_path(dir, "secrets.conf");
    char *const envp[] = {env, NULL};
    CHECK_INT(run_to_exit(conf, envp, &err, err_path), 1);
    CHECK(err && strstr(err, "cannot unseal the keyring"));
    CHECK(err && !strstr(err, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));
    free(err);
    free(err_path);
    free(conf);
    free(auth);
    free(owner);
    sx_test_rmtree(dir);
    free(dir);
}

/* Migrating away from a credential: the answer's [seal] lines empty `credential`, and with them
 * the server starts on the new key file alone. */
static void credential_seal_migrates_to_a_key_file(void)
{
    char *dir = sx_test_tmpdir("credmig");
    REQUIRE(dir);
    char env[CRED_ENV_MAX];
    const char *extra_env[2];
    sx_srv_opts o;
    sx_srv srv;
    REQUIRE(start_on_key_credential(dir, env, extra_env, &o, &srv) == 0);
    char body[4400];
    int n = snprintf(body, sizeof body, "{\"to\":\"file\",\"keyFile\":\"%s/new.key\"}", dir);
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_ADMIN, "POST", "/v1/seal/migrate", hdrs, body, (size_t)n, &r) == 0 &&
          r.status == 200 && strstr(r.body, "\"credential\":\"\""));
    sx_resp_free(&r);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);

    char lines[4400];
    snprintf(lines, sizeof lines, "type = file\nkey_file = %s/new.key\ncredential =\n", dir);
    o.seal_lines = lines;
    o.extra_env = NULL; /* no CREDENTIALS_DIRECTORY: none is needed now */
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    CHECK_INT(healthz(&srv), 200);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    sx_test_rmtree(dir);
    free(dir);
}

/* A passphrase seal from a credential (one final newline dropped); the passphrase never reaches
 * the log and the environment variable passphrase_env is not needed. */
static void credential_passphrase_seal_starts(void)
{
    char *dir = sx_test_tmpdir("credpw");
    REQUIRE(dir);
    static const char pass[] = "correct horse battery staple";
    char with_nl[64];
    snprintf(with_nl, sizeof with_nl, "%s\n", pass);
    write_credential(dir, "pass", with_nl, strlen(with_nl));
    char env[CRED_ENV_MAX];
    const char *extra_env[2];
    sx_srv_opts o = credential_opts(
        dir, env, extra_env, "type = passphrase\ncredential = pass\npwhash_opslimit = 2\npwhash_memlimit = 64M\n");
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    REQUIRE(sx_srv_start(&srv, &o) == 0); /* the same passphrase opens it again */
    char *log = sx_test_read_file(srv.stderr_path, NULL);
    CHECK(log && strstr(log, "keyring unsealed (passphrase seal, slot "));
    CHECK(log && !strstr(log, pass));
    free(log);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);

    /* Without the final newline it is the same passphrase. */
    char *p = sx_test_path(dir, "creds/pass");
    chmod(p, 0600);
    CHECK(sx_test_write_file(p, pass, strlen(pass)) == 0);
    free(p);
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    sx_test_rmtree(dir);
    free(dir);
}

/* Start-up errors, each exit status 1 with the reason, never a byte of the credential. */
static void credential_errors_stop_start_up_clearly(void)
{
    char *dir = sx_test_tmpdir("crederr");
    REQUIRE(dir);
    char *conf = sx_test_path(dir, "secrets.conf"), *err_path = sx_test_path(dir, "err.log");
    const char *text = "[server]\nlisten = 127.0.0.1:0\nadmin_socket =\n[storage]\nbackend = memory\n"
                       "[seal]\ntype = file\ncredential = secretsd-seal\n";
    REQUIRE(sx_test_write_file(conf, text, strlen(text)) == 0);
    char *err = NULL;
    char *const no_env[] = {NULL};
    CHECK_INT(run_to_exit(conf, no_env, &err, err_path), 1);
    CHECK(err && strstr(err, "[seal] credential = \"secretsd-seal\", but $CREDENTIALS_DIRECTORY is not set"));
    free(err);

    char env[CRED_ENV_MAX];
    snprintf(env, sizeof env, "CREDENTIALS_DIRECTORY=%s/creds", dir);
    char *const envp[] = {env, NULL};
    char *creds = sx_test_path(dir, "creds");
    mkdir(creds, 0700);
    CHECK_INT(run_to_exit(conf, envp, &err, err_path), 1); /* the folder without the credential */
    CHECK(err && strstr(err, "[seal] credential \"secretsd-seal\" cannot be opened in"));
    free(err);

    write_credential(dir, "secretsd-seal", "short key\n", 10);
    CHECK_INT(run_to_exit(conf, envp, &err, err_path), 1);
    CHECK(err && strstr(err, "[seal] credential \"secretsd-seal\" holds 10 bytes; a file seal's key is 32"));
    CHECK(err && !strstr(err, "short key"));
    free(err);

    char *p = sx_test_path(creds, "secretsd-seal");
    chmod(p, 0600);
    CHECK(sx_test_write_file(p, key_bytes, 32) == 0);
    CHECK(chmod(p, 0644) == 0); /* others may read it */
    CHECK_INT(run_to_exit(conf, envp, &err, err_path), 1);
    CHECK(err && strstr(err, "that others cannot access"));
    free(err);
    free(p);
    free(creds);
    free(conf);
    free(err_path);
    sx_test_rmtree(dir);
    free(dir);
}

/* GET /healthz with an X-Request-Id header; the status. */
static int healthz_id(const sx_srv *srv, const char *id)
{
    char h[128];
    snprintf(h, sizeof h, "X-Request-Id: %s", id);
    const char *hdrs[] = {h, NULL};
    sx_resp r;
    if (sx_srv_request(srv, SX_H1, "GET", "/healthz", hdrs, NULL, 0, &r) != 0)
        return -1;
    int st = r.status;
    sx_resp_free(&r);
    return st;
}

/* logrotate's way: the access log is renamed, SIGHUP makes secretsd open a new one at the configured
 * path, and the next request's line lands there while the old file keeps the earlier ones. Lines
 * still queued when the file is renamed land in one file or the other: none is lost. */
static void sighup_reopens_the_access_log_after_a_rename(void)
{
    sx_srv srv;
    sx_srv_opts o = {0};
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    CHECK_INT(healthz(&srv), 200);
    char rotated[4200];
    snprintf(rotated, sizeof rotated, "%s.1", srv.access_log);
    CHECK(sx_test_file_wait(srv.access_log, "/healthz", 10000));
    enum { N = 20 };
    char id[64];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "before-rename-%d", i);
        CHECK_INT(healthz_id(&srv, id), 200);
    }
    CHECK(rename(srv.access_log, rotated) == 0);
    kill(srv.pid, SIGHUP);
    CHECK(sx_test_file_wait(srv.stderr_path, "received SIGHUP, reopening the logs", 10000));
    for (int i = 0; i < 100 && access(srv.access_log, F_OK) != 0; i++)
        sx_test_sleep_ms(50);
    CHECK_INT(healthz_id(&srv, "after-rename"), 200);
    CHECK(sx_test_file_wait(srv.access_log, "after-rename", 10000));
    char *path = strdup(srv.access_log);
    char *dir = strdup(srv.dir);
    srv.own_dir = false;
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    char *old = sx_test_read_file(rotated, NULL);
    char *cur = sx_test_read_file(path, NULL);
    REQUIRE(old && cur);
    CHECK(strstr(old, "/healthz") != NULL);
    CHECK(strstr(old, "after-rename") == NULL);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "before-rename-%d\n", i);
        CHECK(strstr(old, id) || strstr(cur, id));
    }
    free(old);
    free(cur);
    sx_test_rmtree(dir);
    free(dir);
    free(path);
}

/* Reads a FIFO until told to stop, keeping what it read. */
typedef struct fifo_drain {
    int fd;
    _Atomic bool stop;
    sx_test_buf got;
} fifo_drain;

static void *fifo_drain_main(void *arg)
{
    fifo_drain *d = arg;
    char buf[65536];
    for (;;) {
        struct pollfd p = {.fd = d->fd, .events = POLLIN};
        int n = poll(&p, 1, 100);
        if (n > 0) {
            ssize_t r = read(d->fd, buf, sizeof buf);
            if (r > 0) {
                sx_test_buf_append(buf, 1, (size_t)r, &d->got);
                continue;
            }
        }
        if (atomic_load(&d->stop))
            break;
    }
    return NULL;
}

/* An access log whose reader stops reading (a FIFO nobody drains, standing for a stalled disk):
 * the server keeps serving, drops the lines it cannot hold and counts them in /metrics and
 * /v1/status; once the reader drains again, the lines it kept arrive whole, and on a clean stop
 * the line of the last request served is written too. */
static void a_stalled_access_log_drops_counted_lines_and_serving_goes_on(void)
{
    char *dir = sx_test_tmpdir("alstall");
    char *fifo = sx_test_path(dir, "access.log");
    REQUIRE(mkfifo(fifo, 0600) == 0);
    fifo_drain d = {.fd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)};
    REQUIRE(d.fd >= 0);
    fcntl(d.fd, F_SETPIPE_SZ, 4096); /* the smallest pipe: it fills after a few lines */
    sx_srv srv;
    sx_srv_opts o = {.dir = dir, .threads = 1};
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    CHECK_INT(sx_srv_metric(&srv, "secretsd_access_log_dropped_lines_total"), 0);

    /* Long paths (404s) fill the server's buffer sooner; one keep-alive connection keeps it quick. */
    char *out = NULL;
    int rc = sx_test_sh(&out,
                        "python3 -c \"import http.client\n"
                        "c = http.client.HTTPConnection('127.0.0.1', %d, timeout=60)\n"
                        "p = '/healthz/' + 'x' * 500\n"
                        "n = 0\n"
                        "for i in range(1500):\n"
                        "    c.request('GET', p)\n"
                        "    r = c.getresponse()\n"
                        "    r.read()\n"
                        "    n += r.status == 404\n"
                        "print(n)\n\"",
                        srv.port);
    CHECK_INT(rc, 0);
    CHECK(out && atoi(out) == 1500);
    free(out);
    CHECK_INT(healthz_id(&srv, "served-after-the-stall"), 200);
    long long dropped = sx_srv_metric(&srv, "secretsd_access_log_dropped_lines_total");
    CHECK(dropped > 0);
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_ADMIN, "GET", "/v1/status", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "\"accessLog\":{\"enabled\":true,"));
    CHECK(r.body && strstr(r.body, "\"droppedLines\":") && atoll(strstr(r.body, "\"droppedLines\":") + 15) >= dropped);
    sx_resp_free(&r);

    /* The reader drains again: the stop writes what is left, the last request's line with it. */
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, fifo_drain_main, &d) == 0);
    srv.own_dir = false;
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    atomic_store(&d.stop, true);
    pthread_join(t, NULL);
    close(d.fd);
    REQUIRE(d.got.data != NULL);
    CHECK(strstr(d.got.data, "served-after-the-stall\n") != NULL);
    /* Every line is whole: a time stamp, the request, a request id, one newline. */
    size_t lines = 0;
    bool whole = d.got.len > 0 && d.got.data[d.got.len - 1] == '\n';
    for (char *line = d.got.data; *line; lines++) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        if (strncmp(line, "20", 2) != 0 || !strstr(line, "\" HTTP/1.1 ") || !strstr(line, "ms ") ||
            line[strlen(line) - 1] == ' ') {
            fprintf(stderr, "not a whole line: %s\n", line);
            whole = false;
        }
        line = nl + 1;
    }
    CHECK(whole);
    CHECK((long long)lines + dropped <= 1500 + 8); /* the dropped lines are not in the file */
    CHECK(lines > 0);
    free(d.got.data);
    sx_test_rmtree(dir);
    free(dir);
    free(fifo);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"notify_ready_when_serving_and_stopping_at_the_drain", notify_ready_when_serving_and_stopping_at_the_drain},
        {"credential_file_seal_starts_and_reopens", credential_file_seal_starts_and_reopens},
        {"credential_seal_migrates_to_a_key_file", credential_seal_migrates_to_a_key_file},
        {"credential_passphrase_seal_starts", credential_passphrase_seal_starts},
        {"credential_errors_stop_start_up_clearly", credential_errors_stop_start_up_clearly},
        {"sighup_reopens_the_access_log_after_a_rename", sighup_reopens_the_access_log_after_a_rename},
        {"a_stalled_access_log_drops_counted_lines_and_serving_goes_on",
         a_stalled_access_log_drops_counted_lines_and_serving_goes_on},
    };
    return sx_test_main(tests, sizeof tests / sizeof *tests, argc, argv);
}
