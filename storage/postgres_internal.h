/*
 * postgres_internal.h - what the two files of the postgres backend share: the handle, the
 * connection pool (postgres_conn.c: connections, schema, session, error translation) and the
 * limits. Only storage/postgres*.c include it; the design is described at the top of postgres.c.
 */
#ifndef SX_STORAGE_POSTGRES_INTERNAL_H
#define SX_STORAGE_POSTGRES_INTERNAL_H

#include "storage/storage_internal.h"
#include "common/bytes.h"

#include <libpq-fe.h>

#define PG_SCHEMA_VERSION  1
#define PG_DEFAULT_POOL    8
#define PG_MAX_POOL        1024
#define PG_FIRST_PAGE_ROWS 128
#define PG_PAGE_ROWS       256
#define PG_PAGE_BYTES      (4u << 20)
#define PG_ORDER_PREFIX    2000 /* bytes of the key in the ordering index */
#define PG_MAX_KEY_LOCKS   64
#define PG_BACKOFF_MIN_MS  50
#define PG_BACKOFF_MAX_MS  1000
#define PG_WAIT_MS         10000 /* longest wait for a free connection */
#define PG_BATCH_RETRIES   8

typedef struct pg_conn {
    PGconn *pq;    /* NULL when not connected */
    bool busy;     /* lent to a call */
    bool was_open; /* had a connection before: opening one again is a reconnect */
} pg_conn;

typedef struct pg_store {
    sx_storage base; /* must stay first */
    const char *kw[16];
    const char *val[16]; /* strdup'd, except the password slot */
    char *password;      /* sodium_malloc; NULL = none */
    bool sync;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* a connection was given back */
    pg_conn *conns;
    size_t nconns;
    int64_t retry_at_ms; /* monotonic; 0 = the last connection attempt worked */
    unsigned backoff_ms;
    bool probing; /* one thread is trying to reconnect while backing off */
    /* what the operator sees (sx_storage_remote): the server reached last, its role, reconnects */
    sx_storage_remote remote;
} pg_store;

/* Copy a libpq message into err as one line, the password scrubbed. */
void sxs_pg_err(const pg_store *s, char *err, size_t errlen, const char *what, const char *msg);

/* What a failed statement means: the errno, whether the connection is unusable now (*ret_broken),
 * and whether the statement certainly did nothing and may run again (*ret_retry). */
int sxs_pg_classify(PGconn *pq, const PGresult *res, bool *ret_broken, bool *ret_retry);

/* Open one connection without session setup (open() creates the schema on it first). */
int sxs_pg_connect(pg_store *s, PGconn **ret, char *err, size_t errlen);
/* Create the schema, or check and migrate it, under the schema lock. */
int sxs_pg_schema_ensure(pg_store *s, PGconn *pq, char *err, size_t errlen);
/* Session settings and prepared statements of a new connection. */
int sxs_pg_session_setup(pg_store *s, PGconn *pq, char *err, size_t errlen);

/* A connection was opened (reconnect: to replace one that was lost): note the server it reached
 * and its role (one round trip on pq), and a failover when either changed. */
void sxs_pg_note_connected(pg_store *s, PGconn *pq, bool reconnect);
/* A statement was refused because the server is read-only (-EROFS): the primary became a standby. */
void sxs_pg_note_read_only(pg_store *s);

/* Lend a connection to the calling thread (0, -ENOTCONN at once while backing off, -EAGAIN when
 * every connection stayed busy); give it back with sxs_pg_conn_give(), broken or not. */
int sxs_pg_conn_take(pg_store *s, pg_conn **ret);
void sxs_pg_conn_give(pg_store *s, pg_conn *c, bool broken);

/* Run a prepared read statement with binary parameters and results; *ret is its result (PQclear
 * it). A read whose connection was lost runs once more on a fresh connection. */
int sxs_pg_read(pg_store *s, const char *stmt, int nparams, const char *const *values, const int *lengths,
                PGresult **ret);

#endif /* SX_STORAGE_POSTGRES_INTERNAL_H */
