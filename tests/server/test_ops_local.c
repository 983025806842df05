/*
 * test_ops_local.c - what guards the server on its own machine, against the real secretsd and
 * secretsctl: the admin socket's folder and a stale socket of another user stop start-up,
 * secretsctl sends nothing to a socket served by another user (a fake server that drops to uid
 * 65534), a seal key file of another user is refused, a new keyring's recovery key goes to a 0400
 * file (never to a log stream) unless stdout is a terminal, the passphrase seal's floor, and the
 * token.create audit line.
 *
 * "Another user" needs root (the CI runs the tests as root): files are handed to uid 65534
 * (nobody). Without root those steps are skipped and say so.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops_util.h"
#include "testutil.h"

#define NOBODY 65534

static bool have_root(const char *what)
{
    if (geteuid() == 0)
        return true;
    printf("skipped: %s needs root\n", what);
    return false;
}

/* dir/name as a configuration: rocksdb at dir/data, a file seal dir/seal.key, the admin socket at
 * socket (relative to dir), extra lines appended at the end (in [log]). */
static void write_config(const char *dir, const char *name, const char *socket, const char *seal, const char *log)
{
    char conf[4096];
    snprintf(conf, sizeof(conf),
             "[server]\nlisten = 127.0.0.1:0\nthreads = 2\nadmin_socket = %s\n"
             "[storage]\nbackend = rocksdb\npath = data\nsync = false\n"
             "[seal]\n%s"
             "[log]\nlevel = info\naccess_log =\n%s",
             socket, seal ? seal : "type = file\nkey_file = seal.key\n", log ? log : "");
    char *path = sx_test_path(dir, name);
    sx_test_write_file(path, conf, strlen(conf));
    free(path);
}

/* Start dir/conf and expect it to exit with status want_exit and to log why. */
static void refuses_to_start(const char *dir, const char *conf, int want_exit, const char *why)
{
    sx_srv srv;
    int ex = 0;
    char *errlog = sx_test_path(dir, "stderr.log");
    unlink(errlog);
    int rc = ops_start(&srv, dir, conf, &ex);
    if (rc == 0) {
        fprintf(stderr, "%s/%s started; expected it to refuse (%s)\n", dir, conf, why);
        sx_test_failures++;
        sx_srv_stop(&srv, SIGTERM, 30);
    } else {
        CHECK_INT(ex, want_exit);
    }
    char *log = sx_test_read_file(errlog, NULL);
    if (!log || !strstr(log, why)) {
        fprintf(stderr, "expected \"%s\" in the log of %s: %s\n", why, conf, log ? log : "(none)");
        sx_test_failures++;
    }
    free(log);
    free(errlog);
    free(srv.dir);
    free(srv.config_path);
    free(srv.admin_socket);
    free(srv.stderr_path);
}

static void starts_and_stops(const char *dir, const char *conf)
{
    sx_srv srv;
    int ex = 0;
    int rc = ops_start(&srv, dir, conf, &ex);
    CHECK_INT(rc, 0);
    if (rc == 0)
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(srv.dir);
    free(srv.config_path);
    free(srv.admin_socket);
    free(srv.stderr_path);
}

/* A Unix socket file at path with nobody listening (what a server that died leaves behind). */
static void leave_socket_file(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    CHECK_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
}

static void admin_socket_in_a_folder_others_can_write_stops_start_up(void)
{
    char *dir = sx_test_tmpdir("ops-sockdir");
    char *sub = sx_test_path(dir, "run");
    REQUIRE(mkdir(sub, 0700) == 0);
    REQUIRE(chmod(sub, 0777) == 0); /* no sticky bit: anyone may replace the socket */
    write_config(dir, "open.conf", "run/admin.sock", NULL, NULL);
    refuses_to_start(dir, "open.conf", 1, "has mode 0777: other users may write it");
    char *sock = sx_test_path(sub, "admin.sock");
    CHECK(access(sock, F_OK) != 0); /* no socket was made */
    REQUIRE(chmod(sub, 0770) == 0);
    refuses_to_start(dir, "open.conf", 1, "has mode 0770");
    /* Sticky, like /tmp: others cannot remove or rename what is ours. */
    REQUIRE(chmod(sub, 01777) == 0);
    starts_and_stops(dir, "open.conf");
    REQUIRE(chmod(sub, 0700) == 0);
    starts_and_stops(dir, "open.conf");

    /* A stale socket of this user is replaced, as before. */
    leave_socket_file(sock);
    starts_and_stops(dir, "open.conf");

    if (have_root("the folder and the stale socket of another user")) {
        /* A stale socket that another user left (or planted) is not ours to remove. */
        leave_socket_file(sock);
        REQUIRE(chown(sock, NOBODY, NOBODY) == 0);
        refuses_to_start(dir, "open.conf", 1, "is owned by uid 65534, not by this server's user");
        struct stat st;
        CHECK(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == NOBODY); /* left alone */
        unlink(sock);
        /* A folder another user owns: they can make it writable whenever they like. */
        REQUIRE(chown(sub, NOBODY, NOBODY) == 0);
        refuses_to_start(dir, "open.conf", 1, "is owned by uid 65534, not by this server's user");
        REQUIRE(chown(sub, 0, 0) == 0);
        starts_and_stops(dir, "open.conf");
    }
    free(sock);
    free(sub);
    sx_test_rmtree(dir);
    free(dir);
}

static void seal_key_file_of_another_user_stops_start_up(void)
{
    if (!have_root("a key file of another user"))
        return;
    char *dir = sx_test_tmpdir("ops-keyowner");
    write_config(dir, "a.conf", "admin.sock", NULL, NULL);
    starts_and_stops(dir, "a.conf"); /* creates seal.key */
    char *key = sx_test_path(dir, "seal.key");
    REQUIRE(chown(key, NOBODY, NOBODY) == 0);
    refuses_to_start(dir, "a.conf", 1, "is owned by uid 65534, not by this process's user");
    REQUIRE(chown(key, 0, 0) == 0);
    REQUIRE(chmod(key, 0640) == 0);
    refuses_to_start(dir, "a.conf", 1, "has mode 0640"); /* the mode check stays */
    REQUIRE(chmod(key, 0600) == 0);
    starts_and_stops(dir, "a.conf");
    free(key);
    sx_test_rmtree(dir);
    free(dir);
}

/* ---- a fake admin server of another user --------------------------------------------------------- */

/* Read one HTTP request (head and Content-Length body) or until EOF; returns the bytes (malloc'd). */
static char *read_request(int fd, size_t *ret_len)
{
    size_t len = 0, cap = 65536;
    char *b = calloc(1, cap + 1);
    for (;;) {
        ssize_t n = read(fd, b + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        b[len] = '\0';
        char *end = strstr(b, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(b, "content-length:");
            size_t want = (size_t)(end + 4 - b) + (cl && cl < end ? (size_t)atol(cl + 15) : 0);
            if (len >= want || len == cap)
                break;
        }
        if (len == cap)
            break;
    }
    *ret_len = len;
    return b;
}

/* Fork a server on path that, as uid (after bind, before listen, so SO_PEERCRED names uid), reads
 * each connection's request and copies every byte it got into the pipe *ret_pipe. A connection
 * that sends "STOP" ends it. */
static pid_t fake_server(const char *path, uid_t uid, int *ret_pipe)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[0]);
        if (uid != geteuid() && (setgid(uid) != 0 || setuid(uid) != 0))
            _exit(3);
        if (listen(fd, 8) != 0)
            _exit(4);
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                _exit(5);
            size_t n;
            char *req = read_request(c, &n);
            close(c);
            if (n == 4 && memcmp(req, "STOP", 4) == 0)
                _exit(0);
            if (n && write(p[1], req, n) != (ssize_t)n)
                _exit(6);
            free(req);
        }
    }
    close(fd);
    close(p[1]);
    *ret_pipe = p[0];
    return pid;
}

/* Stop the fake server (its queue is served in order, so everything before is in the pipe) and
 * return what it received (malloc'd). */
static char *fake_server_stop(const char *path, pid_t pid, int pipe_fd, size_t *ret_len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        CHECK_INT(write(fd, "STOP", 4), 4);
        shutdown(fd, SHUT_WR);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(fd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    size_t len = 0, cap = 65536;
    char *b = calloc(1, cap + 1);
    ssize_t n;
    while (len < cap && (n = read(pipe_fd, b + len, cap - len)) > 0)
        len += (size_t)n;
    close(pipe_fd);
    *ret_len = len;
    return b;
}

#define FAKE_PASS "not for the fake server 12345"

static int migrate_via(const char *sock, char **out)
{
    return sx_test_sh(out,
                      "FAKEPASS='" FAKE_PASS
                      "' '%s' --socket '%s' seal migrate --to passphrase --passphrase-env FAKEPASS "
                      "2>&1",
                      SX_SECRETSCTL_PATH, sock);
}

static void secretsctl_sends_nothing_to_a_socket_of_another_user(void)
{
    if (!have_root("a socket served by another user"))
        return;
    char *dir = sx_test_tmpdir("ops-peercred");
    REQUIRE(chmod(dir, 0755) == 0); /* uid 65534 keeps serving the socket it bound here */
    char *sock = sx_test_path(dir, "admin.sock");

    /* The control: a fake server of this user gets the request, passphrase and all - so the fake
     * server does see what a client sends. */
    int pfd;
    pid_t pid = fake_server(sock, geteuid(), &pfd);
    REQUIRE(pid > 0);
    char *out = NULL;
    CHECK(migrate_via(sock, &out) != 0); /* it answers nothing */
    free(out);
    size_t n;
    char *got = fake_server_stop(sock, pid, pfd, &n);
    CHECK(n > 0 && strstr(got, FAKE_PASS) != NULL);
    free(got);

    /* The same server as uid 65534: secretsctl refuses before sending a byte. */
    pid = fake_server(sock, NOBODY, &pfd);
    REQUIRE(pid > 0);
    int rc = migrate_via(sock, &out);
    CHECK_INT(rc, 1);
    CHECK(out && strstr(out, "is served by uid 65534, not by this user"));
    CHECK(out && !strstr(out, FAKE_PASS));
    free(out);
    /* Other commands too: a token list answered by someone else is not believed. */
    CHECK_INT(sx_test_sh(&out, "'%s' --socket '%s' token list 2>&1", SX_SECRETSCTL_PATH, sock), 1);
    CHECK(out && strstr(out, "is served by uid 65534"));
    free(out);
    got = fake_server_stop(sock, pid, pfd, &n);
    CHECK_INT(n, 0);
    CHECK(!strstr(got, FAKE_PASS));
    free(got);
    free(sock);
    sx_test_rmtree(dir);
    free(dir);
}

/* ---- the recovery key ---------------------------------------------------------------------------- */

static bool has_recovery_key(const char *path)
{
    char *text = sx_test_read_file(path, NULL);
    bool yes = text && strstr(text, "SXR1-");
    free(text);
    return yes;
}

static void recovery_key_goes_to_a_0400_file_never_to_a_log_stream(void)
{
    char *dir = sx_test_tmpdir("ops-recovery");
    write_config(dir, "a.conf", "admin.sock", NULL, "audit_log = audit.log\n");
    starts_and_stops(dir, "a.conf"); /* stdout and stderr are files here, not terminals */
    char *out = sx_test_path(dir, "stdout.log"), *err = sx_test_path(dir, "stderr.log"),
         *audit = sx_test_path(dir, "audit.log");
    char *key = sx_test_path(dir, "var/recovery.key"), *key1 = sx_test_path(dir, "var/recovery.key.1");
    CHECK(!has_recovery_key(out));
    CHECK(!has_recovery_key(err));
    CHECK(!has_recovery_key(audit));
    struct stat st;
    REQUIRE(lstat(key, &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_INT(st.st_mode & 07777, 0400);
    CHECK_INT(st.st_size, 68); /* the key and a newline */
    CHECK(has_recovery_key(key));
    char *log = sx_test_read_file(err, NULL);
    char want[1200];
    snprintf(want, sizeof(want), "RECOVERY KEY was written to \"%s\" (mode 0400)", key);
    CHECK(log && strstr(log, want));
    free(log);
    char first[80];
    REQUIRE(ops_recovery_key(dir, first));

    /* A restart creates no keyring, so no file and no key anywhere. */
    starts_and_stops(dir, "a.conf");
    CHECK(access(key1, F_OK) != 0);
    CHECK(!has_recovery_key(out) && !has_recovery_key(err));

    /* A new store next to an old key file: the old file is kept as it is, the new key gets a new
     * name; a symlink in the way is never followed. */
    char *data = sx_test_path(dir, "data"), *seal = sx_test_path(dir, "seal.key");
    sx_test_rmtree(data);
    unlink(seal);
    char *target = sx_test_path(dir, "elsewhere"), *key2 = sx_test_path(dir, "var/recovery.key.2");
    CHECK_INT(symlink(target, key1), 0);
    starts_and_stops(dir, "a.conf");
    char again[80];
    REQUIRE(ops_recovery_key(dir, again));
    CHECK_STR(again, first); /* untouched */
    CHECK(access(target, F_OK) != 0);
    REQUIRE(lstat(key2, &st) == 0);
    CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0400 && has_recovery_key(key2));
    CHECK(!has_recovery_key(out) && !has_recovery_key(err) && !has_recovery_key(audit));

    /* [seal] recovery_key_file names the file. */
    sx_test_rmtree(data);
    unlink(seal);
    write_config(dir, "b.conf", "admin.sock", "type = file\nkey_file = seal.key\nrecovery_key_file = keys/rk.txt\n",
                 NULL);
    starts_and_stops(dir, "b.conf");
    char *custom = sx_test_path(dir, "keys/rk.txt");
    CHECK(lstat(custom, &st) == 0 && (st.st_mode & 07777) == 0400 && has_recovery_key(custom));
    free(custom);
    free(data);
    free(seal);
    free(target);
    free(key2);
    free(out);
    free(err);
    free(audit);
    free(key);
    free(key1);
    sx_test_rmtree(dir);
    free(dir);
}

static void recovery_key_is_printed_on_a_terminal_and_written_nowhere(void)
{
    char *dir = sx_test_tmpdir("ops-recovery-tty");
    write_config(dir, "a.conf", "admin.sock", NULL, NULL);
    char *conf = sx_test_path(dir, "a.conf");
    fflush(stdout);
    fflush(stderr);
    int master = -1;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execl(SX_SECRETSD_PATH, "secretsd", "--config", conf, (char *)NULL);
        _exit(127);
    }
    /* Read the terminal until the server serves (its log goes there too). */
    size_t len = 0, cap = 65536;
    char *text = calloc(1, cap + 1);
    while (len < cap && !strstr(text, "serving with")) {
        ssize_t n = read(master, text + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        text[len] = '\0';
    }
    kill(pid, SIGTERM);
    /* Drain the terminal so the server's last lines do not block it, then reap it. */
    for (;;) {
        char sink[4096];
        if (read(master, sink, sizeof(sink)) <= 0)
            break;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(master);
    CHECK(strstr(text, "Its RECOVERY KEY is shown this once") != NULL);
    CHECK(strstr(text, "SXR1-") != NULL);
    CHECK(strstr(text, "written to") == NULL);
    char *key = sx_test_path(dir, "var/recovery.key");
    CHECK(access(key, F_OK) != 0);
    free(key);
    free(text);
    free(conf);
    sx_test_rmtree(dir);
    free(dir);
}

/* ---- the passphrase seal's floor ----------------------------------------------------------------- */

#define ARGON_LEAST "pwhash_opslimit = 2\npwhash_memlimit = 64M\n"

static void passphrase_seal_refuses_short_passphrases_and_weak_argon2id(void)
{
    char *dir = sx_test_tmpdir("ops-passfloor");
    write_config(dir, "pass.conf", "admin.sock", "type = passphrase\npassphrase_env = SX_FLOOR_PASS\n" ARGON_LEAST,
                 NULL);
    setenv("SX_FLOOR_PASS", "eleven char", 1);
    refuses_to_start(dir, "pass.conf", 1, "the seal passphrase is shorter than 12 characters");
    char *data = sx_test_path(dir, "data");
    sx_test_rmtree(data);
    write_config(dir, "weak.conf", "admin.sock",
                 "type = passphrase\npassphrase_env = SX_FLOOR_PASS\npwhash_opslimit = 1\npwhash_memlimit = 64M\n",
                 NULL);
    setenv("SX_FLOOR_PASS", "long enough passphrase", 1);
    refuses_to_start(dir, "weak.conf", 2, "pwhash_opslimit: must be at least 2 (libsodium's INTERACTIVE");
    write_config(dir, "weak.conf", "admin.sock",
                 "type = passphrase\npassphrase_env = SX_FLOOR_PASS\npwhash_opslimit = 2\npwhash_memlimit = 32M\n",
                 NULL);
    refuses_to_start(dir, "weak.conf", 2, "pwhash_memlimit: must be at least 64M (libsodium's INTERACTIVE");
    sx_test_rmtree(data);
    starts_and_stops(dir, "pass.conf"); /* 22 characters and INTERACTIVE limits */
    unsetenv("SX_FLOOR_PASS");

    /* A migration to a short passphrase: secretsctl says so and sends nothing; the server would
     * refuse it too (400), and the seal stays. */
    sx_test_rmtree(data);
    write_config(dir, "file.conf", "admin.sock", "type = file\nkey_file = seal.key\n" ARGON_LEAST, NULL);
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "file.conf", NULL) == 0);
    char *out = NULL;
    CHECK_INT(
        sx_test_sh(&out,
                   "SHORTPASS='too short' '%s' --socket '%s' seal migrate --to passphrase --passphrase-env SHORTPASS "
                   "2>&1",
                   SX_SECRETSCTL_PATH, srv.admin_socket),
        2);
    CHECK(out && strstr(out, "shorter than 12 characters"));
    free(out);
    yajl_val v =
        ops_admin_json(&srv, "POST", "/v1/seal/migrate", "{\"to\":\"passphrase\",\"passphrase\":\"too short\"}", 400);
    CHECK(v != NULL);
    yajl_tree_free(v);
    v = ops_admin_json(&srv, "GET", "/v1/status", NULL, 200);
    yajl_val seal = ops_jget(v, yajl_t_string, "seal", NULL);
    const char *seal_name = seal ? YAJL_GET_STRING(seal) : NULL;
    CHECK(seal_name && strcmp(seal_name, "file") == 0);
    yajl_tree_free(v);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(srv.dir);
    free(srv.config_path);
    free(srv.admin_socket);
    free(srv.stderr_path);
    free(data);
    sx_test_rmtree(dir);
    free(dir);
}

/* ---- token.create in the audit log --------------------------------------------------------------- */

static void token_create_audit_line_names_the_new_tokens_id_role_and_scope(void)
{
    char *dir = sx_test_tmpdir("ops-tokaudit");
    write_config(dir, "a.conf", "admin.sock", NULL, "audit_log = audit.log\n");
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    char id[40] = "", id2[40] = "";
    char *token = sx_srv_mint_token(&srv, "acme", "web", "prod", "service", id);
    REQUIRE(token);
    char *token2 = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", id2);
    REQUIRE(token2);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0); /* the writer flushes the log */
    char *apath = sx_test_path(dir, "audit.log");
    char *log = sx_test_read_file(apath, NULL);
    REQUIRE(log);
    char want[512];
    snprintf(want, sizeof(want),
             "\"action\":\"token.create\",\"scope\":\"acme/web/prod\",\"name\":\"%s\",\"phase\":\"done\","
             "\"status\":201,\"grantedRole\":\"service\"",
             id);
    if (!strstr(log, want)) {
        fprintf(stderr, "no line with %s in:\n%s\n", want, log);
        sx_test_failures++;
    }
    snprintf(want, sizeof(want),
             "\"action\":\"token.create\",\"scope\":\"acme\",\"name\":\"%s\",\"phase\":\"done\","
             "\"status\":201,\"grantedRole\":\"viewer\"",
             id2);
    CHECK(strstr(log, want) != NULL);
    /* never the secret part */
    CHECK(!strstr(log, token));
    CHECK(!strstr(log, token2));
    size_t tl = strlen(token);
    CHECK(tl > 40 && !sx_test_memmem(log, strlen(log), token + tl - 40, 40));
    /* and the chain still verifies */
    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    char *out = NULL;
    CHECK_INT(
        sx_test_sh(&out, "'%s' --socket '%s' audit verify '%s' 2>&1", SX_SECRETSCTL_PATH, srv.admin_socket, apath), 0);
    free(out);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(srv.dir);
    free(srv.config_path);
    free(srv.admin_socket);
    free(srv.stderr_path);
    free(log);
    free(apath);
    free(token);
    free(token2);
    sx_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"admin_socket_in_a_folder_others_can_write_stops_start_up",
         admin_socket_in_a_folder_others_can_write_stops_start_up},
        {"seal_key_file_of_another_user_stops_start_up", seal_key_file_of_another_user_stops_start_up},
        {"secretsctl_sends_nothing_to_a_socket_of_another_user", secretsctl_sends_nothing_to_a_socket_of_another_user},
        {"recovery_key_goes_to_a_0400_file_never_to_a_log_stream",
         recovery_key_goes_to_a_0400_file_never_to_a_log_stream},
        {"recovery_key_is_printed_on_a_terminal_and_written_nowhere",
         recovery_key_is_printed_on_a_terminal_and_written_nowhere},
        {"passphrase_seal_refuses_short_passphrases_and_weak_argon2id",
         passphrase_seal_refuses_short_passphrases_and_weak_argon2id},
        {"token_create_audit_line_names_the_new_tokens_id_role_and_scope",
         token_create_audit_line_names_the_new_tokens_id_role_and_scope},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
