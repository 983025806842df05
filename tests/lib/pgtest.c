/* pgtest.c - see pgtest.h. */
#include "pgtest.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#ifndef SX_PG_BINDIR
#define SX_PG_BINDIR ""
#endif

#define MAX_CLUSTERS 8

static sx_pgtest *live[MAX_CLUSTERS]; /* stopped at exit */
static bool atexit_set;

static void stop_all(void)
{
    for (int i = 0; i < MAX_CLUSTERS; i++)
        if (live[i])
            sx_pgtest_stop(live[i]);
}

/* fork + exec argv as the cluster's user, output appended to log (NULL = /dev/null). In the child
 * only async-signal-safe calls run: the environment is built before the fork. */
static pid_t spawn(const sx_pgtest *pg, char *const argv[], const char *log)
{
    char home[4200];
    snprintf(home, sizeof(home), "HOME=%s", pg->dir);
    char *envp[] = {home, "PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC", NULL};
    int out =
        log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : open("/dev/null", O_WRONLY | O_CLOEXEC);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* signals meant for the test (a ^C) do not reach the server; stop does */
        if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(126);
        if (pg->drop && (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0))
            _exit(126);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    if (out >= 0)
        close(out);
    if (in >= 0)
        close(in);
    return pid;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (w < 0)
            return -1;
        sx_test_sleep_ms(20);
    }
    return -2;
}

/* Can the cluster's user reach and write dir? */
static bool user_can_use(const sx_pgtest *pg, const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0)
            _exit(1);
        _exit(access(dir, R_OK | W_OK | X_OK) == 0 ? 0 : 1);
    }
    return pid > 0 && wait_exit(pid, 10000) == 0;
}

/* The watchdog: a process of its own session that waits for the test to close the pipe (exit,
 * crash or kill) and then stops the last server it was told about and removes the folder. */
static void watchdog_main(int rfd, const char *dir)
{
    for (int fd = 0; fd < 1024; fd++)
        if (fd != rfd)
            close(fd);
    setsid();
    pid_t server = 0;
    char buf[64];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(rfd, buf + used, sizeof(buf) - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        buf[used] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n')) != NULL) {
            *nl = '\0';
            server = (pid_t)atoi(buf);
            memmove(buf, nl + 1, strlen(nl + 1) + 1);
            used = strlen(buf);
        }
    }
    if (server > 0 && kill(server, SIGQUIT) == 0) {
        for (int i = 0; i < 500 && kill(server, 0) == 0; i++)
            sx_test_sleep_ms(20);
        kill(-server, SIGKILL); /* its process group: the backends too */
    }
    sx_test_rmtree(dir);
    _exit(0);
}

static void tell_watchdog(sx_pgtest *pg, pid_t pid)
{
    if (pg->watch_fd >= 0)
        dprintf(pg->watch_fd, "%d\n", (int)pid);
}

static void conninfo(const sx_pgtest *pg, const char *db, char *buf, size_t cap)
{
    snprintf(buf, cap, "host=127.0.0.1 port=%d dbname=%s user=secretsd connect_timeout=5", pg->port, db);
}

/* Start postgres on the folder and wait until it accepts connections. 0, 1 (it exited: port
 * taken?), -1 (timeout). standby: in standby mode with hot_standby off, so that it stays in
 * recovery and refuses every connection ("not accepting connections") until it is promoted. A
 * replication cluster keeps the full-page writes its configuration file asks for (see
 * start_cluster) and, as a standby, streams from pg->upstream_port. */
static int start_server_mode(sx_pgtest *pg, bool standby)
{
    char bin[4200], data[4200], port[16], sock[4200], log[4200], upstream[4400];
    snprintf(bin, sizeof(bin), "%s/postgres", SX_PG_BINDIR);
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(port, sizeof(port), "port=%d", pg->port);
    snprintf(sock, sizeof(sock), "unix_socket_directories=%s", pg->dir);
    snprintf(log, sizeof(log), "%s/postgres.log", pg->dir);
    snprintf(upstream, sizeof(upstream),
             "primary_conninfo=host=127.0.0.1 port=%d user=secretsd passfile=%s/pgpass application_name=standby",
             pg->upstream_port, pg->dir);
    char *argv[40];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "-D";
    argv[n++] = data;
    const char *settings[] = {"listen_addresses=127.0.0.1",
                              port,
                              sock,
                              "fsync=off",
                              pg->replication ? NULL : "full_page_writes=off",
                              "max_connections=200",
                              "shared_buffers=32MB",
                              "log_min_messages=warning",
                              standby ? "hot_standby=off" : NULL,
                              pg->upstream_port > 0 ? upstream : NULL};
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (!settings[i])
            continue;
        argv[n++] = "-c";
        argv[n++] = (char *)settings[i];
    }
    argv[n] = NULL;
    if (standby) {
        char sig[4300];
        snprintf(sig, sizeof(sig), "%s/standby.signal", data);
        if (sx_test_write_file(sig, "", 0) != 0 || (pg->drop && chown(sig, pg->uid, pg->gid) != 0))
            return -1;
    }
    pg->pid = spawn(pg, argv, log);
    if (pg->pid < 0) {
        pg->pid = 0;
        return -1;
    }
    tell_watchdog(pg, pg->pid);
    char ci[256];
    conninfo(pg, "postgres", ci, sizeof(ci));
    for (int i = 0; i < 1500; i++) {
        PGPing ping = PQping(ci);
        if (ping == PQPING_OK || (standby && ping == PQPING_REJECT))
            return 0;
        int st;
        if (waitpid(pg->pid, &st, WNOHANG) == pg->pid) {
            pg->pid = 0;
            tell_watchdog(pg, 0);
            return 1;
        }
        sx_test_sleep_ms(20);
    }
    return -1;
}

static int start_server(sx_pgtest *pg)
{
    return start_server_mode(pg, false);
}

static void print_log(const sx_pgtest *pg, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", pg->dir, name);
    char *text = sx_test_read_file(path, NULL);
    fprintf(stderr, "pgtest: %s:\n%s\n", name, text ? text : "(none)");
    free(text);
}

/* What every cluster needs before its folder is filled: the user the server runs as (when we are
 * root), the folder, the watchdog, the at-exit stop. pg->replication survives the reset. 0, SX_PGTEST_SKIP or -1 after
 * printing why. */
static int prepare(sx_pgtest *pg)
{
    bool replication = pg->replication;
    memset(pg, 0, sizeof(*pg));
    pg->replication = replication;
    pg->watch_fd = -1;
    char initdb[4200];
    snprintf(initdb, sizeof(initdb), "%s/initdb", SX_PG_BINDIR);
    if (!*SX_PG_BINDIR || access(initdb, X_OK) != 0) {
        fprintf(stderr, "pgtest: no PostgreSQL server installed (initdb not found); skipping\n");
        return SX_PGTEST_SKIP;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw)
            pw = getpwnam("nobody");
        if (!pw) {
            fprintf(stderr, "pgtest: running as root, but there is neither a postgres nor a nobody user\n");
            return -1;
        }
        pg->drop = true;
        pg->uid = pw->pw_uid;
        pg->gid = pw->pw_gid;
    }
    pg->dir = sx_test_tmpdir("pg");
    if (pg->drop) {
        if (chown(pg->dir, pg->uid, pg->gid) != 0 || !user_can_use(pg, pg->dir)) {
            /* $TMPDIR may sit below a folder only root may enter: use /tmp. */
            sx_test_rmtree(pg->dir);
            free(pg->dir);
            char tmpl[] = "/tmp/sx-pg-XXXXXX";
            pg->dir = strdup(mkdtemp(tmpl) ? tmpl : "");
            if (!*pg->dir || chown(pg->dir, pg->uid, pg->gid) != 0 || !user_can_use(pg, pg->dir)) {
                fprintf(stderr, "pgtest: no temporary folder the server's user can write\n");
                free(pg->dir);
                pg->dir = NULL;
                return -1;
            }
        }
    }

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        sx_pgtest_stop(pg);
        return -1;
    }
    pid_t w = fork();
    if (w == 0)
        watchdog_main(fds[0], pg->dir);
    close(fds[0]);
    pg->watch_fd = fds[1];
    pg->watchdog = w > 0 ? w : 0;
    if (!atexit_set) {
        atexit(stop_all);
        atexit_set = true;
    }
    for (int i = 0; i < MAX_CLUSTERS; i++)
        if (!live[i]) {
            live[i] = pg;
            break;
        }

    return 0;
}

/* Start a prepared, filled folder's server on a free port; on failure print its log, stop and
 * remove it. 0 or -1. */
static int launch(sx_pgtest *pg)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        pg->port = sx_test_free_port();
        int r = start_server(pg);
        if (r == 0)
            return 0;
        if (r < 0)
            break;
    }
    fprintf(stderr, "pgtest: postgres did not start\n");
    print_log(pg, "postgres.log");
    sx_pgtest_stop(pg);
    return -1;
}

/* Create and start a cluster (see sx_pgtest_start and sx_pgtest_start_primary). */
static int start_cluster(sx_pgtest *pg, bool replication)
{
    pg->replication = replication;
    int pr = prepare(pg);
    if (pr != 0)
        return pr;
    char initdb[4200];
    snprintf(initdb, sizeof(initdb), "%s/initdb", SX_PG_BINDIR);
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        sx_pgtest_stop(pg);
        return -1;
    }
    for (int i = 0; i < 16; i++)
        snprintf(pg->password + 2 * i, 3, "%02x", rnd[i]);
    char pwfile[4200], data[4200], pwarg[4300], log[4200];
    snprintf(pwfile, sizeof(pwfile), "%s/pwfile", pg->dir);
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(pwarg, sizeof(pwarg), "--pwfile=%s", pwfile);
    snprintf(log, sizeof(log), "%s/initdb.log", pg->dir);
    if (sx_test_write_file(pwfile, pg->password, strlen(pg->password)) != 0 ||
        (pg->drop && chown(pwfile, pg->uid, pg->gid) != 0)) {
        sx_pgtest_stop(pg);
        return -1;
    }
    char *argv[] = {initdb,          "-D",        data, "-U",   "secretsd",   pwarg, "-A",
                    "scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C", NULL};
    pid_t pid = spawn(pg, argv, log);
    int st = pid > 0 ? wait_exit(pid, 120000) : -1;
    unlink(pwfile);
    if (st != 0) {
        fprintf(stderr, "pgtest: initdb failed (%d)\n", st);
        print_log(pg, "initdb.log");
        sx_pgtest_stop(pg);
        return -1;
    }
    /* In the configuration file, not on the command line: pg_rewind starts the server itself for
     * crash recovery, and what that run records in pg_control is what pg_rewind then checks. */
    char conf[4300];
    snprintf(conf, sizeof(conf), "%s/postgresql.conf", data);
    const char *repl = "\n# replication (pgtest)\nfull_page_writes = on\nwal_log_hints = on\nwal_keep_size = "
                       "256MB\nwal_retrieve_retry_interval = 200ms\n";
    FILE *f = replication ? fopen(conf, "a") : NULL;
    bool written = f && fputs(repl, f) >= 0;
    if (f && fclose(f) != 0)
        written = false;
    if (replication && !written) {
        fprintf(stderr, "pgtest: cannot write %s\n", conf);
        sx_pgtest_stop(pg);
        return -1;
    }
    return launch(pg);
}

int sx_pgtest_start(sx_pgtest *pg)
{
    return start_cluster(pg, false);
}

int sx_pgtest_start_primary(sx_pgtest *pg)
{
    return start_cluster(pg, true);
}

int sx_pgtest_halt(sx_pgtest *pg, bool immediate)
{
    if (pg->pid <= 0)
        return 0;
    kill(pg->pid, immediate ? SIGQUIT : SIGINT);
    int st = wait_exit(pg->pid, 60000);
    if (st == -2) {
        kill(-pg->pid, SIGKILL);
        wait_exit(pg->pid, 10000);
    }
    if (immediate)
        kill(-pg->pid, SIGKILL); /* a backend the postmaster did not wait for */
    pg->pid = 0;
    tell_watchdog(pg, 0);
    return st == -2 ? -1 : 0;
}

int sx_pgtest_resume(sx_pgtest *pg)
{
    if (pg->pid > 0)
        return 0;
    for (int attempt = 0; attempt < 50; attempt++) {
        int r = start_server(pg);
        if (r == 0)
            return 0;
        if (r < 0)
            break;
        sx_test_sleep_ms(100); /* the old server's port or socket may linger a moment */
    }
    fprintf(stderr, "pgtest: postgres did not start again\n");
    print_log(pg, "postgres.log");
    return -1;
}

void sx_pgtest_stop(sx_pgtest *pg)
{
    for (int i = 0; i < MAX_CLUSTERS; i++)
        if (live[i] == pg)
            live[i] = NULL;
    if (!pg->dir && pg->watch_fd < 0)
        return;
    sx_pgtest_halt(pg, false);
    if (pg->dir)
        sx_test_rmtree(pg->dir);
    if (pg->watch_fd >= 0) {
        close(pg->watch_fd); /* the watchdog ends: nothing left for it to do */
        pg->watch_fd = -1;
    }
    if (pg->watchdog > 0) {
        wait_exit(pg->watchdog, 30000);
        pg->watchdog = 0;
    }
    free(pg->dir);
    pg->dir = NULL;
}

void sx_pgtest_dsn(const sx_pgtest *pg, const char *db, char *buf, size_t cap)
{
    snprintf(buf, cap, "host=127.0.0.1 port=%d dbname=%s user=secretsd", pg->port, db);
}

/* A connection to database db as the superuser (check PQstatus; PQfinish it in any case). */
static PGconn *connect_db(const sx_pgtest *pg, const char *db)
{
    char ci[256];
    conninfo(pg, db, ci, sizeof(ci));
    const char *kw[] = {"dbname", "password", NULL};
    const char *val[] = {ci, pg->password, NULL};
    return PQconnectdbParams(kw, val, 1);
}

int sx_pgtest_exec(const sx_pgtest *pg, const char *db, const char *sql)
{
    PGconn *c = connect_db(pg, db);
    int r = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *res = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
            r = 0;
        else
            fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(c));
        PQclear(res);
    } else {
        fprintf(stderr, "pgtest: cannot connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return r;
}

int sx_pgtest_createdb(const sx_pgtest *pg, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
    return sx_pgtest_exec(pg, "postgres", sql);
}

int sx_pgtest_resume_starting(sx_pgtest *pg)
{
    if (pg->pid > 0)
        return -1;
    for (int attempt = 0; attempt < 50; attempt++) {
        int r = start_server_mode(pg, true);
        if (r == 0)
            return 0;
        if (r < 0)
            break;
        sx_test_sleep_ms(100);
    }
    fprintf(stderr, "pgtest: postgres did not start in standby mode\n");
    print_log(pg, "postgres.log");
    return -1;
}

int sx_pgtest_promote(sx_pgtest *pg)
{
    char bin[4200], data[4200], log[4200], ci[256];
    snprintf(bin, sizeof(bin), "%s/pg_ctl", SX_PG_BINDIR);
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(log, sizeof(log), "%s/promote.log", pg->dir);
    char *argv[] = {bin, "promote", "-D", data, "-W", NULL};
    pid_t pid = spawn(pg, argv, log);
    int st = pid > 0 ? wait_exit(pid, 60000) : -1;
    if (st != 0) {
        fprintf(stderr, "pgtest: pg_ctl promote failed (%d)\n", st);
        print_log(pg, "promote.log");
        return -1;
    }
    conninfo(pg, "postgres", ci, sizeof(ci));
    bool up = false;
    for (int i = 0; i < 1500 && !up; i++) {
        char rec[8] = "";
        up = PQping(ci) == PQPING_OK &&
             (!pg->replication ||
              (sx_pgtest_query(pg, "postgres", "SELECT pg_is_in_recovery()", rec, sizeof(rec)) == 0 &&
               strcmp(rec, "f") == 0));
        if (!up)
            sx_test_sleep_ms(20);
    }
    if (!up)
        return -1;
    pg->upstream_port = 0;
    if (!pg->replication)
        return 0;
    /* Alone now: waiting for a standby that is not there would stop every commit. The checkpoint
     * writes the new timeline into pg_control, where pg_rewind reads it: before it, pg_rewind
     * against this server finds both on the same timeline and rewinds nothing. */
    if (sx_pgtest_exec(pg, "postgres", "ALTER SYSTEM SET synchronous_standby_names = ''") != 0 ||
        sx_pgtest_exec(pg, "postgres", "SELECT pg_reload_conf()") != 0 ||
        sx_pgtest_exec(pg, "postgres", "CHECKPOINT") != 0)
        return -1;
    return 0;
}

/* ---- replication --------------------------------------------------------------------------------- */

int sx_pgtest_query(const sx_pgtest *pg, const char *db, const char *sql, char *buf, size_t cap)
{
    PGconn *c = connect_db(pg, db);
    int r = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0) {
            snprintf(buf, cap, "%s", PQgetvalue(res, 0, 0));
            r = 0;
        }
        PQclear(res);
    }
    PQfinish(c);
    return r;
}

/* The password file the standby's tools and its WAL receiver read (libpq's passfile). */
static int write_pgpass(const sx_pgtest *pg)
{
    char path[4200], line[128];
    snprintf(path, sizeof(path), "%s/pgpass", pg->dir);
    int n = snprintf(line, sizeof(line), "*:*:*:secretsd:%s\n", pg->password);
    if (sx_test_write_file(path, line, (size_t)n) != 0 || (pg->drop && chown(path, pg->uid, pg->gid) != 0))
        return -1;
    return 0;
}

/* Run a PostgreSQL tool (bin/<argv[0]>) as the cluster's user, its output into <dir>/<name>.log. */
static int run_tool(const sx_pgtest *pg, char **argv, const char *name)
{
    char bin[4200], log[4200];
    snprintf(bin, sizeof(bin), "%s/%s", SX_PG_BINDIR, argv[0]);
    snprintf(log, sizeof(log), "%s/%s.log", pg->dir, name);
    argv[0] = bin;
    pid_t pid = spawn(pg, argv, log);
    int st = pid > 0 ? wait_exit(pid, 300000) : -1;
    if (st != 0) {
        char file[64];
        snprintf(file, sizeof(file), "%s.log", name);
        fprintf(stderr, "pgtest: %s failed (%d)\n", name, st);
        print_log(pg, file);
        return -1;
    }
    return 0;
}

/* A fresh copy of primary's data in pg's folder (replacing what is there). */
static int base_backup(sx_pgtest *pg, const sx_pgtest *primary)
{
    char data[4200], source[4400];
    snprintf(data, sizeof(data), "%s/data", pg->dir);
    snprintf(source, sizeof(source), "host=127.0.0.1 port=%d user=secretsd passfile=%s/pgpass", primary->port, pg->dir);
    sx_test_rmtree(data);
    char *argv[] = {"pg_basebackup", "-D", data, "-d", source, "-X", "stream", "-c", "fast", "--no-sync", NULL};
    return run_tool(pg, argv, "basebackup");
}

/* Make the stopped, filled pg a standby of primary, start it and wait until primary waits for it. */
static int follow(sx_pgtest *pg, sx_pgtest *primary, bool new_port)
{
    char sig[4300];
    snprintf(sig, sizeof(sig), "%s/data/standby.signal", pg->dir);
    if (sx_test_write_file(sig, "", 0) != 0 || (pg->drop && chown(sig, pg->uid, pg->gid) != 0))
        return -1;
    pg->upstream_port = primary->port;
    if (new_port ? launch(pg) != 0 : sx_pgtest_resume(pg) != 0)
        return -1;
    /* Every commit on the primary now waits until the standby has flushed its WAL. */
    if (sx_pgtest_exec(primary, "postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'") != 0 ||
        sx_pgtest_exec(primary, "postgres", "SELECT pg_reload_conf()") != 0)
        return -1;
    /* Synchronous, streaming the primary's timeline, and replaying what the primary had written
     * once it was: a standby whose history forked off (a rewind that did not happen) connects and is
     * listed as synchronous for a moment, but never streams the new timeline. */
    char tli[32] = "", lsn[64] = "", sql[256], out[64] = "";
    bool ok =
        sx_pgtest_query(primary, "postgres", "SELECT timeline_id FROM pg_control_checkpoint()", tli, sizeof(tli)) == 0;
    snprintf(sql, sizeof(sql), "SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming'");
    int i = 0;
    for (; ok && i < 3000; i++) {
        if (sx_pgtest_query(primary, "postgres", "SELECT sync_state FROM pg_stat_replication WHERE sync_state = 'sync'",
                            out, sizeof(out)) == 0 &&
            sx_pgtest_query(pg, "postgres", sql, out, sizeof(out)) == 0 && strcmp(out, tli) == 0)
            break;
        sx_test_sleep_ms(20);
    }
    ok = ok && i < 3000 && sx_pgtest_query(primary, "postgres", "SELECT pg_current_wal_lsn()", lsn, sizeof(lsn)) == 0;
    snprintf(sql, sizeof(sql), "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn", lsn);
    for (i = 0; ok && i < 3000; i++) {
        if (sx_pgtest_query(pg, "postgres", sql, out, sizeof(out)) == 0 && strcmp(out, "t") == 0)
            return 0;
        sx_test_sleep_ms(20);
    }
    fprintf(stderr, "pgtest: the standby on port %d did not become a synchronous, replaying standby of timeline %s\n",
            pg->port, tli);
    print_log(pg, "postgres.log");
    return -1;
}

int sx_pgtest_standby_start(sx_pgtest *standby, sx_pgtest *primary)
{
    standby->replication = true;
    int r = prepare(standby);
    if (r != 0)
        return r;
    memcpy(standby->password, primary->password, sizeof(standby->password));
    if (write_pgpass(standby) != 0 || base_backup(standby, primary) != 0 || follow(standby, primary, true) != 0) {
        sx_pgtest_stop(standby);
        return -1;
    }
    return 0;
}

int sx_pgtest_kill(sx_pgtest *pg)
{
    if (pg->pid <= 0)
        return 0;
    pid_t pid = pg->pid;
    kill(pid, SIGKILL);
    kill(-pid, SIGKILL); /* the backends, the WAL sender and writer: none may outlive the machine */
    int st = wait_exit(pid, 30000);
    for (int i = 0; i < 500 && kill(-pid, 0) == 0; i++) {
        kill(-pid, SIGKILL);
        sx_test_sleep_ms(10);
    }
    pg->pid = 0;
    tell_watchdog(pg, 0);
    return st == -2 ? -1 : 0;
}

int sx_pgtest_rejoin(sx_pgtest *old_primary, sx_pgtest *primary)
{
    if (old_primary->pid > 0 || !old_primary->dir)
        return -1;
    if (write_pgpass(old_primary) != 0)
        return -1;
    /* pg_rewind turns the old timeline's history back to where the new primary branched off (after
     * crash recovery of a server that was killed); a fresh copy is the fallback. */
    char data[4200], source[4400];
    snprintf(data, sizeof(data), "%s/data", old_primary->dir);
    snprintf(source, sizeof(source), "host=127.0.0.1 port=%d user=secretsd dbname=postgres passfile=%s/pgpass",
             primary->port, old_primary->dir);
    char target[4300], server[4500];
    snprintf(target, sizeof(target), "--target-pgdata=%s", data);
    snprintf(server, sizeof(server), "--source-server=%s", source);
    char *argv[] = {"pg_rewind", target, server, "--no-sync", NULL};
    if (run_tool(old_primary, argv, "rewind") != 0 && base_backup(old_primary, primary) != 0)
        return -1;
    return follow(old_primary, primary, false);
}
