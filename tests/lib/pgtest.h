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

/* End the recovery of a server started by sx_pgtest_resume_starting() (pg_ctl promote) and wait
 * until it accepts connections. 0 or -1. */
int sx_pgtest_promote(sx_pgtest *pg);

/* libpq connection string for database db, without the password. */
void sx_pgtest_dsn(const sx_pgtest *pg, const char *db, char *buf, size_t cap);

/* Run sql in database db ("postgres" always exists). 0 or -1 after printing the error. */
int sx_pgtest_exec(const sx_pgtest *pg, const char *db, const char *sql);

/* CREATE DATABASE name. 0 or -1. */
int sx_pgtest_createdb(const sx_pgtest *pg, const char *name);

#endif
