/*
 * postgres_conn.c - the postgres backend's connections: the pool with its health checks and
 * reconnect backoff, the schema (created, checked and migrated on open), each session's settings
 * and prepared statements, and the translation of libpq's errors into errnos with the password
 * scrubbed. The design is described at the top of postgres.c.
 */
#include "common/clock.h"
#include "storage/postgres_internal.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------------------------------- */

/* libpq prints notices ("relation already exists, skipping") to stderr by default. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Copy a libpq message into err as one line, with the password (if the server or libpq ever
 * quoted it) replaced by "***". */
void sxs_pg_err(const pg_store *s, char *err, size_t errlen, const char *what, const char *msg)
{
    if (!err || errlen == 0)
        return;
    char line[400], clean[1200];
    snprintf(line, sizeof(line), "%s", msg && *msg ? msg : "no answer from the server");
    line[strcspn(line, "\r\n")] = '\0';
    size_t pl = s->password ? strlen(s->password) : 0, o = 0;
    for (const char *p = line; *p;) {
        if (pl && strncmp(p, s->password, pl) == 0) {
            memcpy(clean + o, "***", 3); /* at most 3 bytes out per byte in: clean cannot overflow */
            o += 3;
            p += pl;
        } else {
            clean[o++] = *p++;
        }
    }
    clean[o] = '\0';
    sx_fail(err, errlen, 0, "postgres storage: %s: %s", what, clean);
}

/*
 * What a failed statement means: the errno to return, whether the connection is unusable now
 * (*ret_broken) and whether the statement certainly did nothing and may simply run again
 * (*ret_retry: serialization failure, deadlock - the transaction was rolled back).
 */
int sxs_pg_classify(PGconn *pq, const PGresult *res, bool *ret_broken, bool *ret_retry)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    *ret_broken = PQstatus(pq) != CONNECTION_OK;
    *ret_retry = false;
    if (*ret_broken || !state)
        return -ENOTCONN; /* no SQLSTATE: libpq lost the server */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) {
        *ret_broken = true; /* connection exception, admin / crash shutdown */
        return -ENOTCONN;
    }
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
        *ret_retry = true;
        return -EAGAIN;
    }
    if (strcmp(state, "57014") == 0)
        return -ETIMEDOUT; /* statement_timeout */
    if (strcmp(state, "53100") == 0)
        return -ENOSPC;
    if (strcmp(state, "53200") == 0)
        return -ENOMEM;
    if (strcmp(state, "25006") == 0)
        return -EROFS; /* connected to a read-only replica */
    if (strcmp(state, "42501") == 0)
        return -EACCES;
    return -EIO;
}

/* ---- schema -------------------------------------------------------------------------------------- */

/* Migration i brings a store from schema version i to i + 1. Two-part advisory lock ids have class
 * 21368 (0x5378, "Sx"): (21368, 1) is the store-wide lock, (21368, 2) the schema lock. */
static const char *const migrations[PG_SCHEMA_VERSION] = {
    "CREATE SEQUENCE secretsd_rev AS bigint MINVALUE 1;"
    "CREATE TABLE secretsd_records (k bytea NOT NULL, v bytea NOT NULL, rev bigint NOT NULL);"
    /* Values are ciphertexts or small records: compressing them is wasted work. */
    "ALTER TABLE secretsd_records ALTER COLUMN v SET STORAGE EXTERNAL;"
    "CREATE UNIQUE INDEX secretsd_records_key ON secretsd_records (sha256(k));"
    "CREATE INDEX secretsd_records_order ON secretsd_records (substring(k from 1 for 2000));"
    "CREATE FUNCTION secretsd_batch(p_k bytea[], p_op int4[], p_v bytea[], p_cond int4[], p_rev int8[],"
    "                               p_lock int8[], p_excl bool[], p_all bool) RETURNS int8[]"
    " LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "    n int := coalesce(array_length(p_k, 1), 0);\n"
    "    revs int8[] := array_fill(0::int8, ARRAY[n]);\n"
    "    cur int8;\n"
    "    ok bool;\n"
    "BEGIN\n"
    "    IF p_all THEN\n"
    "        PERFORM pg_advisory_xact_lock(21368, 1);\n"
    "    ELSE\n"
    "        PERFORM pg_advisory_xact_lock_shared(21368, 1);\n"
    "    END IF;\n"
    "    FOR i IN 1 .. coalesce(array_length(p_lock, 1), 0) LOOP\n"
    "        IF p_excl[i] THEN\n"
    "            PERFORM pg_advisory_xact_lock(p_lock[i]);\n"
    "        ELSE\n"
    "            PERFORM pg_advisory_xact_lock_shared(p_lock[i]);\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "    FOR i IN 1 .. n LOOP\n"
    "        CONTINUE WHEN p_cond[i] = 0;\n"
    "        cur := NULL;\n"
    "        SELECT r.rev INTO cur FROM secretsd_records r WHERE sha256(r.k) = sha256(p_k[i]) AND r.k = p_k[i];\n"
    "        ok := CASE p_cond[i] WHEN 1 THEN cur IS NULL WHEN 2 THEN cur IS NOT NULL\n"
    "                             WHEN 3 THEN cur IS NOT NULL AND cur = p_rev[i] ELSE false END;\n"
    "        IF NOT ok THEN\n"
    "            RETURN ARRAY[-i::int8];\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "    FOR i IN 1 .. n LOOP\n"
    "        IF p_op[i] = 1 THEN\n"
    "            INSERT INTO secretsd_records AS r (k, v, rev) VALUES (p_k[i], p_v[i], nextval('secretsd_rev'))\n"
    "                ON CONFLICT ((sha256(k))) DO UPDATE SET v = EXCLUDED.v, rev = EXCLUDED.rev\n"
    "                RETURNING r.rev INTO cur;\n"
    "            revs[i] := cur;\n"
    "        ELSIF p_op[i] = 2 THEN\n"
    "            DELETE FROM secretsd_records r WHERE sha256(r.k) = sha256(p_k[i]) AND r.k = p_k[i];\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "    RETURN revs;\n"
    "END\n"
    "$fn$;",
};

/* Run sql (one or more statements) and expect success; errors go into err. */
static int pq_run(pg_store *s, PGconn *pq, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *res = PQexec(pq, sql);
    ExecStatusType st = PQresultStatus(res);
    int r = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        bool broken, retry;
        r = sxs_pg_classify(pq, res, &broken, &retry);
        sxs_pg_err(s, err, errlen, what, PQerrorMessage(pq));
    }
    PQclear(res);
    return r;
}

/* Create the schema, or check and migrate it, in one transaction under the schema lock. */
int sxs_pg_schema_ensure(pg_store *s, PGconn *pq, char *err, size_t errlen)
{
    int r = pq_run(s, pq, "BEGIN; SELECT pg_advisory_xact_lock(21368, 2)", "cannot lock the schema", err, errlen);
    if (r < 0)
        return r;
    PGresult *res = PQexec(pq, "SELECT to_regclass('secretsd_meta') IS NOT NULL");
    bool have_meta =
        PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        sxs_pg_err(s, err, errlen, "cannot read the schema", PQerrorMessage(pq));
        r = -EIO;
    }
    PQclear(res);
    if (r == 0 && !have_meta)
        r = pq_run(s, pq, "CREATE TABLE secretsd_meta (name text PRIMARY KEY, value text NOT NULL)",
                   "cannot create the schema", err, errlen);
    long version = 0;
    if (r == 0) {
        res = PQexec(pq, "SELECT value FROM secretsd_meta WHERE name = 'schema'");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            sxs_pg_err(s, err, errlen, "cannot read the schema version", PQerrorMessage(pq));
            r = -EIO;
        } else if (PQntuples(res) == 1) {
            char *end;
            version = strtol(PQgetvalue(res, 0, 0), &end, 10);
            if (*end || version < 1) {
                sx_fail(err, errlen, 0, "postgres storage: secretsd_meta holds a malformed schema version");
                r = -EIO;
            } else if (version > PG_SCHEMA_VERSION) {
                sx_fail(err, errlen, 0,
                        "postgres storage: the database has schema version %ld, written by a newer secretsd "
                        "(this one knows version %d); refusing to touch it",
                        version, PG_SCHEMA_VERSION);
                r = -EIO;
            }
        }
        PQclear(res);
    }
    for (long v = version; r == 0 && v < PG_SCHEMA_VERSION; v++) {
        char sql[160];
        r = pq_run(s, pq, migrations[v], "cannot create or migrate the schema", err, errlen);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO secretsd_meta (name, value) VALUES ('schema', '%ld') "
                 "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                 v + 1);
        if (r == 0)
            r = pq_run(s, pq, sql, "cannot record the schema version", err, errlen);
    }
    if (r == 0)
        return pq_run(s, pq, "COMMIT", "cannot commit the schema", err, errlen);
    PQclear(PQexec(pq, "ROLLBACK"));
    return r;
}

/* ---- connections --------------------------------------------------------------------------------- */

/* The SQL of a page of an iteration: $3 rows from (excl: after) $1, below $2 when bounded. The
 * conditions on the key's prefix are what the ordering index can use; those on k are exact. */
static void page_sql(char *buf, size_t cap, bool excl, bool bounded)
{
    char upper[160] = "";
    if (bounded)
        snprintf(upper, sizeof(upper), " AND substring(k from 1 for %d) <= substring($2 from 1 for %d) AND k < $2",
                 PG_ORDER_PREFIX, PG_ORDER_PREFIX);
    snprintf(buf, cap,
             "SELECT k, v, rev FROM secretsd_records "
             "WHERE substring(k from 1 for %d) >= substring($1 from 1 for %d) AND k %s $1%s "
             "ORDER BY substring(k from 1 for %d), k LIMIT $%d",
             PG_ORDER_PREFIX, PG_ORDER_PREFIX, excl ? ">" : ">=", upper, PG_ORDER_PREFIX, bounded ? 3 : 2);
}

/* Session settings and the prepared statements of one connection, in one round trip. */
int sxs_pg_session_setup(pg_store *s, PGconn *pq, char *err, size_t errlen)
{
    static const struct {
        const char *name, *types;
        bool excl, bounded;
    } pages[4] = {
        {"sx_page_ge", "(bytea, bytea, int4)", false, true},
        {"sx_page_gt", "(bytea, bytea, int4)", true, true},
        {"sx_page_ge_open", "(bytea, int4)", false, false},
        {"sx_page_gt_open", "(bytea, int4)", true, false},
    };
    char sql[4096];
    int n = snprintf(sql, sizeof(sql),
                     "SET default_transaction_isolation = 'read committed';"
                     "SET synchronous_commit = %s;"
                     "SET statement_timeout = '30s';"
                     "PREPARE sx_get(bytea) AS SELECT v, rev FROM secretsd_records "
                     "WHERE sha256(k) = sha256($1) AND k = $1;"
                     "PREPARE sx_batch(bytea[], int4[], bytea[], int4[], int8[], int8[], bool[], bool) AS "
                     "SELECT secretsd_batch($1, $2, $3, $4, $5, $6, $7, $8);",
                     s->sync ? "on" : "off");
    for (int i = 0; i < 4; i++) {
        char q[1024];
        page_sql(q, sizeof(q), pages[i].excl, pages[i].bounded);
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, "PREPARE %s%s AS %s;", pages[i].name, pages[i].types, q);
    }
    return pq_run(s, pq, sql, "cannot prepare the session", err, errlen);
}

/* Open one connection (no setup). */
int sxs_pg_connect(pg_store *s, PGconn **ret, char *err, size_t errlen)
{
    PGconn *pq = PQconnectdbParams(s->kw, s->val, 1);
    if (!pq) {
        sx_fail(err, errlen, 0, "postgres storage: out of memory");
        return -ENOMEM;
    }
    if (PQstatus(pq) != CONNECTION_OK) {
        /* The server answered but refused these credentials: waiting will not help, unlike a
         * server that is unreachable or still starting up (which refuses before authentication). */
        bool denied = PQconnectionNeedsPassword(pq) || PQconnectionUsedPassword(pq);
        sxs_pg_err(s, err, errlen, "cannot connect", PQerrorMessage(pq));
        PQfinish(pq);
        return denied ? -EACCES : -ENOTCONN;
    }
    PQsetNoticeProcessor(pq, ignore_notice, NULL);
    *ret = pq;
    return 0;
}

static int conn_open(pg_store *s, PGconn **ret, char *err, size_t errlen)
{
    PGconn *pq = NULL;
    int r = sxs_pg_connect(s, &pq, err, errlen);
    if (r == 0 && (r = sxs_pg_session_setup(s, pq, err, errlen)) < 0)
        PQfinish(pq);
    if (r == 0)
        *ret = pq;
    return r;
}

/* ---- what the operator sees --------------------------------------------------------------------- */

/* Whether the server behind pq takes writes: 1, 0 (in recovery, or read-only by default), -1 when
 * it did not say. */
static int server_primary(PGconn *pq)
{
    PGresult *res = PQexec(pq, "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')");
    int primary = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 2)
        primary = strcmp(PQgetvalue(res, 0, 0), "f") == 0 && strcmp(PQgetvalue(res, 0, 1), "off") == 0;
    PQclear(res);
    return primary;
}

void sxs_pg_note_connected(pg_store *s, PGconn *pq, bool reconnect)
{
    int primary = server_primary(pq);
    const char *host = PQhost(pq), *port = PQport(pq);
    char h[SX_STORAGE_HOST_MAX];
    snprintf(h, sizeof(h), "%s", host ? host : "");
    unsigned p = port && *port ? (unsigned)strtoul(port, NULL, 10) : 0;
    pthread_mutex_lock(&s->mu);
    sx_storage_remote *r = &s->remote;
    bool moved = r->host[0] && (strcmp(r->host, h) != 0 || r->port != p);
    bool demoted = r->primary == 1 && primary == 0;
    if (moved || demoted)
        r->last_failover_ms = sx_clock_wall_ms();
    if (reconnect)
        r->reconnects++;
    memcpy(r->host, h, sizeof(h));
    r->port = p;
    r->primary = primary;
    pthread_mutex_unlock(&s->mu);
}

void sxs_pg_note_read_only(pg_store *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->remote.primary == 1)
        s->remote.last_failover_ms = sx_clock_wall_ms();
    s->remote.primary = 0;
    pthread_mutex_unlock(&s->mu);
}

/* An idle connection is usable when libpq thinks so and nothing arrived on it: a server that shut
 * down or restarted has sent a termination message or closed the socket. */
static bool conn_healthy(PGconn *pq)
{
    if (PQstatus(pq) != CONNECTION_OK || PQtransactionStatus(pq) != PQTRANS_IDLE)
        return false;
    struct pollfd p = {.fd = PQsocket(pq), .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

/*
 * Lend a connection to the calling thread: 0 and *ret, -ENOTCONN when the database cannot be
 * reached (at once while backing off), -EAGAIN when every connection stayed busy for PG_WAIT_MS.
 * Give it back with sxs_pg_conn_give().
 */
int sxs_pg_conn_take(pg_store *s, pg_conn **ret)
{
    int64_t deadline = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        pg_conn *c = NULL;
        for (size_t i = 0; i < s->nconns; i++) {
            if (s->conns[i].busy)
                continue;
            if (s->conns[i].pq) {
                c = &s->conns[i];
                break;
            }
            if (!c)
                c = &s->conns[i];
        }
        if (!c) {
            struct timespec ts;
            if (!deadline)
                deadline = sx_clock_mono_ms() + PG_WAIT_MS;
            ts.tv_sec = deadline / 1000;
            ts.tv_nsec = (deadline % 1000) * 1000000L;
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) {
                pthread_mutex_unlock(&s->mu);
                return -EAGAIN;
            }
            continue;
        }
        c->busy = true;
        if (c->pq) {
            pthread_mutex_unlock(&s->mu);
            if (conn_healthy(c->pq)) {
                *ret = c;
                return 0;
            }
            PQfinish(c->pq); /* the slot is ours (busy): reconnect it below */
            c->pq = NULL;
            pthread_mutex_lock(&s->mu);
        }
        int64_t now = sx_clock_mono_ms();
        if (s->retry_at_ms && (now < s->retry_at_ms || s->probing)) {
            c->busy = false;
            pthread_cond_signal(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return -ENOTCONN;
        }
        bool probe = s->retry_at_ms != 0;
        if (probe)
            s->probing = true;
        pthread_mutex_unlock(&s->mu);
        PGconn *pq = NULL;
        int r = conn_open(s, &pq, NULL, 0);
        pthread_mutex_lock(&s->mu);
        if (probe)
            s->probing = false;
        if (r == 0) {
            bool reconnect = c->was_open;
            c->pq = pq;
            c->was_open = true;
            s->retry_at_ms = 0;
            s->backoff_ms = 0;
            pthread_mutex_unlock(&s->mu);
            sxs_pg_note_connected(s, pq, reconnect);
            *ret = c;
            return 0;
        }
        s->backoff_ms = s->backoff_ms ? (s->backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : s->backoff_ms * 2)
                                      : PG_BACKOFF_MIN_MS;
        s->retry_at_ms = sx_clock_mono_ms() + s->backoff_ms;
        c->busy = false;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return r == -ENOMEM ? r : -ENOTCONN;
    }
}

/* Give a connection back; a broken one is closed (its slot reconnects on next use). */
void sxs_pg_conn_give(pg_store *s, pg_conn *c, bool broken)
{
    if (broken && c->pq) {
        PQfinish(c->pq);
        c->pq = NULL;
    }
    pthread_mutex_lock(&s->mu);
    c->busy = false;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/*
 * Run a prepared read statement; on success *ret is its result (PQclear it). A read whose
 * connection was lost runs once more on a fresh connection.
 */
int sxs_pg_read(pg_store *s, const char *stmt, int nparams, const char *const *values, const int *lengths,
                PGresult **ret)
{
    static const int formats[4] = {1, 1, 1, 1};
    int r = -ENOTCONN;
    for (int attempt = 0; attempt < 2 && r == -ENOTCONN; attempt++) {
        pg_conn *c;
        if ((r = sxs_pg_conn_take(s, &c)) < 0)
            return r;
        PGresult *res = PQexecPrepared(c->pq, stmt, nparams, values, lengths, formats, 1);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            sxs_pg_conn_give(s, c, false);
            *ret = res;
            return 0;
        }
        bool broken, retry;
        r = sxs_pg_classify(c->pq, res, &broken, &retry);
        PQclear(res);
        sxs_pg_conn_give(s, c, broken);
        if (!broken)
            break;
    }
    return r;
}
