/*
 * pgtest.h - a throw-away PostgreSQL server for tests of the postgres storage backend.
 *
 * sx_pgtest_start() makes a temporary folder, runs initdb there and starts `postgres` on a free
 * loopback port (127.0.0.1 only, its Unix socket inside the folder, fsync off: the tests simulate
 * process crashes, not power loss), with one superuser "secretsd" whose random password must be
 * given on every connection (scram-sha-256), so the password path of the backend is exercised.
 * initdb and postgres refuse to run as root: when the test runs as root they run as the "postgres"
 * user (or "nobody"), which then owns the folder.
 *
 * Cleanup happens however the test ends: sx_pgtest_stop() (also run at exit for every server still
 * up) stops the server and removes the folder, and a watchdog process started with the server does
 * the same if the test process dies without it (a crash, SIGKILL from a ctest timeout).
 *
 * Replication: sx_pgtest_start_primary() makes a cluster that can stream to standbys (full-page writes
 * and wal_log_hints on, so that pg_rewind works on it after a failover), sx_pgtest_standby_start()
 * a hot standby of it on a port of its own (pg_basebackup, streaming replication) that the primary
 * then waits for at every commit (synchronous_standby_names, synchronous_commit on). For a failover
 * the test kills the primary (sx_pgtest_kill: SIGKILL, like a machine dying) and promotes the
 * standby (sx_pgtest_promote: it then commits without waiting for a standby, since it has none);
 * sx_pgtest_rejoin() brings the old primary back as the synchronous standby of the new one
 * (pg_rewind, or a fresh base backup when that fails), ready for the next failover. A standby
 * retries its primary every 200 ms (wal_retrieve_retry_interval), which bounds how long a promotion
 * waits.
 *
 * The binaries come from SX_PG_BINDIR (found by CMake, /usr/lib/postgresql/N/bin on Debian); when
 * there is none, sx_pgtest_start() returns SX_PGTEST_SKIP and the test should exit with it (ctest
 * reports it as skipped).
 */
#ifndef SX_PGTEST_H
#define SX_PGTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SX_PGTEST_SKIP 77

typedef struct sx_pgtest {
    char *dir;         /* the cluster's folder */
    char password[33]; /* of the superuser "secretsd" */
    int port;          /* on 127.0.0.1 */
    pid_t pid;         /* the postmaster; 0 while stopped */
    uid_t uid;
    gid_t gid;
    bool drop;    /* run the server as uid/gid (we are root) */
    int watch_fd; /* write end of the watchdog's pipe */
    pid_t watchdog;
    bool replication;  /* full_page_writes and wal_log_hints on: a primary or standby */
    int upstream_port; /* a standby's primary (its primary_conninfo), 0 for none */
} sx_pgtest;

/* Create and start a cluster. 0, SX_PGTEST_SKIP (no PostgreSQL installed), or -1 after printing
 * why. */
int sx_pgtest_start(sx_pgtest *pg);

/* Stop the server (if running), remove the folder, end the watchdog. Idempotent. */
void sx_pgtest_stop(sx_pgtest *pg);

/* Stop only the server, keeping the data: a fast shutdown (SIGINT, like `pg_ctl stop -m fast`) or,
 * with immediate, a crash-like one (SIGQUIT: no checkpoint, recovery from the WAL at the next
 * start). 0 or -1. */
int sx_pgtest_halt(sx_pgtest *pg, bool immediate);

/* Start the server again on the same folder and port after sx_pgtest_halt(). 0 or -1. */
int sx_pgtest_resume(sx_pgtest *pg);

/* Start the server again after sx_pgtest_halt() so that it stays in start-up: in recovery (standby
 * mode, hot_standby off), refusing every connection with "the database system is not accepting
 * connections" until sx_pgtest_promote() ends the recovery. 0 or -1. */
int sx_pgtest_resume_starting(sx_pgtest *pg);

/* End the recovery of a server started by sx_pgtest_resume_starting(), or of a standby of
 * sx_pgtest_standby_start() (pg_ctl promote), and wait until it accepts connections and writes. A
 * promoted standby commits without waiting for a standby from then on (synchronous_standby_names
 * emptied), until sx_pgtest_rejoin() gives it one. 0 or -1. */
int sx_pgtest_promote(sx_pgtest *pg);

/* Create and start a cluster that can be the primary of sx_pgtest_standby_start(). Returns like
 * sx_pgtest_start(). */
int sx_pgtest_start_primary(sx_pgtest *pg);

/* Make standby a hot standby of the running primary (a base backup of it, in a folder and on a port
 * of its own, streaming from it), start it, and make it the primary's synchronous standby: returns
 * once the primary reports it as "sync", so that every later commit on the primary is acknowledged
 * only after the standby has it. The standby shares the primary's password. Stop it with
 * sx_pgtest_stop(). 0, SX_PGTEST_SKIP or -1 after printing why. */
int sx_pgtest_standby_start(sx_pgtest *standby, sx_pgtest *primary);

/* Kill the server hard: SIGKILL to the postmaster and then to every backend (its process group),
 * no shutdown of any kind. The data stay for sx_pgtest_resume() or sx_pgtest_rejoin(). 0 or -1. */
int sx_pgtest_kill(sx_pgtest *pg);

/* Make the stopped old_primary the synchronous standby of primary, the standby promoted in its
 * place: pg_rewind its folder to the new timeline (a fresh base backup when pg_rewind fails), start
 * it streaming from primary and wait until primary reports it as "sync". 0 or -1. */
int sx_pgtest_rejoin(sx_pgtest *old_primary, sx_pgtest *primary);

/* The text of the first column of the first row of a query, into buf. 0 or -1. */
int sx_pgtest_query(const sx_pgtest *pg, const char *db, const char *sql, char *buf, size_t cap);

/* libpq connection string for database db, without the password. */
void sx_pgtest_dsn(const sx_pgtest *pg, const char *db, char *buf, size_t cap);

/* Run sql in database db ("postgres" always exists). 0 or -1 after printing the error. */
int sx_pgtest_exec(const sx_pgtest *pg, const char *db, const char *sql);

/* CREATE DATABASE name. 0 or -1. */
int sx_pgtest_createdb(const sx_pgtest *pg, const char *name);

#endif
