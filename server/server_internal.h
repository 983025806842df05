/*
 * server_internal.h - what the files of the server module share: the server and thread structs,
 * the request context, the router, the worker pool and the JSON response helpers.
 */
#ifndef SX_SERVER_INTERNAL_H
#define SX_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <h2o.h>
#include <h2o/multithread.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "common/clock.h"
#include "crypto/crypto.h"
#include "server/server.h"

/* ---- worker pool (pool.c) ---------------------------------------------------------------------- */

typedef struct sx_job sx_job;
typedef struct sx_pool sx_pool;

/*
 * A unit of blocking work. The submitting loop thread fills in work and done; work() runs on a pool
 * thread, done() back on the submitting loop thread, unless the job was cancelled meanwhile, in
 * which case only release() runs (on the loop thread). The job's memory must not live in a request
 * pool (the request may be gone when the job comes back): embed sx_job in a malloc'd struct and
 * free it in release().
 */
struct sx_job {
    h2o_multithread_message_t super; /* must be first: messages come back as this */
    h2o_linklist_t pending;          /* link in the pool's queue */
    h2o_multithread_receiver_t *reply_to;
    void (*work)(sx_job *job);
    void (*done)(sx_job *job);    /* NULL = nothing to do on completion */
    void (*release)(sx_job *job); /* frees the job; always called exactly once */
    sx_job **owner_slot;          /* cleared on the loop thread when the job comes back (if not
                                     cancelled), so the owner never points at a released job */
    atomic_bool cancelled;
};

/* Create a pool that grows lazily up to max_threads threads. */
int sx_pool_new(sx_pool **ret, unsigned max_threads);
/* Stop the pool: running jobs finish, queued ones are cancelled (their release() still runs on
 * their loop when the loop delivers the message). Joins every pool thread. */
void sx_pool_free(sx_pool *pool);
/* Queue job. Call from a loop thread; job->reply_to is that loop's receiver. */
void sx_pool_submit(sx_pool *pool, sx_job *job);
/* Number of jobs queued and not yet started (for metrics and tests). */
size_t sx_pool_queued(sx_pool *pool);
/* The receiver callback each loop registers for pool replies. */
void sx_pool_on_reply(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);

/* ---- server and threads (server.c) ------------------------------------------------------------ */

typedef struct sx_thread sx_thread;
typedef struct sx_listener sx_listener;
typedef struct sx_conn sx_conn;

typedef enum sx_listener_kind {
    SX_LISTEN_CLEAR = 0,   /* HTTP/1.1 + h2c prior knowledge */
    SX_LISTEN_TLS = 1,     /* HTTP/1.1 + h2 over ALPN */
    SX_LISTEN_ADMIN = 2,   /* Unix socket, cleartext, admin routes */
    SX_LISTEN_METRICS = 3, /* [server] metrics_listen: cleartext, GET /metrics only */
} sx_listener_kind;

struct sx_listener {
    int fd;
    sx_listener_kind kind;
    bool proxy;     /* [server] proxy_listen: a PROXY header from trusted proxies (peer.c) */
    char name[128]; /* "http://127.0.0.1:8080", for logs */
};

/* One accepted connection, tracked so that a drain can tell idle ones from busy ones. */
struct sx_conn {
    h2o_linklist_t link; /* in thread->conns */
    sx_thread *thread;
    h2o_socket_t *sock;
    int fd;
    sx_listener_kind kind;
    unsigned inflight; /* requests of this connection inside a handler or sending */
    bool http2;        /* saw an HTTP/2 request */
    /* the hostile-client checks on its input (guard.c); NULL = none */
    struct sx_guard *guard;
    /* proxy_listen (peer.c): the PROXY header step before h2o takes the connection */
    h2o_timeout_entry_t proxy_timer;
    h2o_accept_ctx_t *proxy_ctx;
    uint8_t proxy_state; /* 0 = done or not a proxy listener */
};

struct sx_thread {
    sx_server *server;
    unsigned index;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx[4]; /* per listener kind */
    h2o_socket_t **listen_socks;    /* one per listener */
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t pool_receiver;  /* replies from the worker pool */
    h2o_multithread_receiver_t ctl_receiver;   /* stop requests from the main thread */
    h2o_multithread_receiver_t audit_receiver; /* intent lines on file, from the audit writer */
    h2o_multithread_receiver_t conn_receiver;  /* connections accepted by another loop for this one */
    atomic_uint load;            /* connections open on this loop plus those handed to it and not yet taken */
    atomic_bool draining;        /* takes no more connections (set by the loop itself, read by the others) */
    atomic_bool ready;           /* its conn_receiver is registered: other loops may hand it connections */
    h2o_timeout_t audit_timeout; /* SX_AUDIT_SYNC_TIMEOUT_MS for a parked request */
    sx_auth_cache *auth_cache;   /* verified tokens, this loop only */
    h2o_linklist_t conns;
    size_t nconns;
    size_t inflight;
    atomic_ulong requests;             /* served by this loop (read by the status handler of other loops) */
    struct sx_metrics_thread *metrics; /* this loop's counters (metrics.c), summed at scrape time */
    uint64_t reqid_next;               /* generated X-Request-Id counter */

    h2o_linklist_t guard_watch;  /* guard.c: connections whose read callback to re-check */
    h2o_timeout_t guard_timeout; /* guard.c: the once-a-second re-check of every connection */
    h2o_timeout_entry_t guard_backstop;
    h2o_timeout_t accept_timeout; /* accepting pauses this long when file descriptors run out */
    h2o_timeout_entry_t accept_resume;
    uint64_t fd_warned_at;       /* loop time of the last "out of file descriptors" warning */
    h2o_timeout_t proxy_timeout; /* peer.c: request_timeout for a PROXY header to arrive */
    uint64_t proxy_warned_at;    /* peer.c: loop time of the last refused-PROXY warning */

    bool stopping;
    bool stopped;
    uint64_t stop_deadline;
    int init_rc; /* thread_init()'s result, set on the thread itself */
};

struct sx_server {
    const sx_config *config;
    sx_storage *storage;
    sx_crypto *crypto;
    sx_auth *auth;
    sx_auth_throttle *throttle;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    SSL_CTX *ssl_ctx;
    sx_listener *listeners;
    size_t nlisteners;
    sx_thread *threads;
    unsigned nthreads;
    sx_pool *pool;
    struct sx_rotor *rotor; /* key rotations on their own thread (ops/rotation.c, rotor_life.c) */
    /* purges of expired deleted secrets and compactions of deleted ciphertext, on their own thread
     * (ops/sweeper.c, started and stopped with the rotor); NULL until started */
    struct sx_sweeper *sweeper;
    struct sx_audit *audit; /* NULL when [log] audit_log is off (audit/audit.c) */
    char reqid_prefix[9];   /* random per process: generated request ids are unique across restarts */
    atomic_bool stop_requested;
    int stop_pipe[2];        /* sx_server_stop() wakes the signal-waiting thread */
    pthread_mutex_t life_mu; /* loop start-up and shutdown meet here (server.c) */
    pthread_cond_t life_cv;
    unsigned life_ready, life_drained, life_pool_freed;
};

/* ---- hostile-client guard (guard.c) ------------------------------------------------------------ */

/* Wrap the read callback of a freshly accepted connection (after h2o_accept): HTTP/2 frame budgets
 * and the HTTP/1.1 head limit (see guard.c). Admin-socket connections are left alone. */
void sx_guard_attach(sx_conn *c);
/* c's socket closed (sx_conn_on_close). True when the guard frees c itself - the close happened
 * inside one of its calls into h2o - false when the caller frees c now. */
bool sx_guard_detach(sx_conn *c);
/* A request on c is done (its dispose): HTTP/1.1 reads a new head next; on HTTP/2 an answer sent
 * from a pool job may have made h2o stop and re-arm reading. */
void sx_guard_request_done(sx_conn *c);
/* on_req saw an HTTP/2 request on c (Upgrade: h2c switches protocol outside the guard). */
void sx_guard_saw_http2(sx_conn *c);
/* At the end of each loop turn: wrap again the sockets on which h2o re-armed reading. */
void sx_guard_sweep(sx_thread *t);
/* The loop thread's part (its lists and the backstop timer); init after h2o_context_init, dispose
 * before h2o_context_dispose. */
void sx_guard_thread_init(sx_thread *t);
void sx_guard_thread_dispose(sx_thread *t);

/* ---- HTTP/2 request bodies over max_body_bytes (h2_streams.c) ------------------------------- */

/* The most streams one call refuses; the rest wait for the next call. */
#define SX_H2_REFUSE_MAX 8
/* sock runs h2o's HTTP/2 code: hand each stream whose body is over max_body to the handler now,
 * marked for a 413 (at most cap, up to SX_H2_REFUSE_MAX). Writes their ids to ret_ids and returns
 * how many. */
size_t sx_h2_refuse_oversized(h2o_socket_t *sock, size_t max_body, uint32_t *ret_ids, size_t cap);
/* True when the answer of each of those streams has left h2o's stream (written out, or the stream
 * or the connection is gone). */
bool sx_h2_answers_out(h2o_socket_t *sock, const uint32_t *ids, size_t n);
/* RST_STREAM NO_ERROR on each of those streams (their answers are out): the client may stop
 * sending their bodies. */
void sx_h2_end_refused(h2o_socket_t *sock, const uint32_t *ids, size_t n);
/* The guard took bytes of DATA frames out of sock's input: give them back to the client's
 * connection flow-control window (WINDOW_UPDATE on stream 0), as h2o does for what it reads. */
void sx_h2_window_credit(h2o_socket_t *sock, size_t bytes);
/* req is one whose body sx_h2_refuse_oversized refused: answer 413. */
bool sx_h2_body_over_limit(const h2o_req_t *req);

/* ---- clients behind proxies (peer.c, pure parts in peer.h) ---------------------------------- */

/* c was accepted on a proxy_listen listener: read (or refuse) its PROXY header, then hand it to
 * h2o_accept(ctx) and the guard. Replaces the h2o_accept + sx_guard_attach of other listeners. */
void sx_peer_accept(sx_conn *c, h2o_accept_ctx_t *ctx);
/* c's socket closed: stop its PROXY timer. */
void sx_peer_conn_closed(sx_conn *c);
/* The client of req: the peer (as its PROXY header named it), or, from a trusted proxy, the one
 * X-Forwarded-For names (see sx_peer_client). Returns the address length, 0 when unknown. */
socklen_t sx_peer_request_client(const sx_config *cfg, h2o_req_t *req, struct sockaddr_storage *ret);

/* ---- logging helpers (log.c) ----------------------------------------------------------------- */

bool sx_access_log_enabled(void);
/* Queue one complete line (with its newline) for the access log: copied into the calling thread's
 * buffer, written by the access log's writer thread; never blocks on the file. A line that finds
 * the buffer full (the file stalls) is dropped and counted. */
void sx_access_log_write(const char *line, size_t len);
/* Lines queued and lines dropped since the start. */
void sx_access_log_stats(uint64_t *ret_lines, uint64_t *ret_dropped);
/* True when [log] format = json. */
bool sx_log_json(void);
/* Reopen the access log file (SIGHUP, after rotation). */
void sx_access_log_reopen(void);
/* The request id that the calling thread's log lines carry (set by the request path while a
 * handler or a completion runs; NULL clears it). The string is borrowed until cleared. */
void sx_log_set_request_id(const char *id);

/* ---- the service manager (notify.c) ------------------------------------------------------------ */

/* Send state ("READY=1\nSTATUS=...", newline-separated assignments) to the service manager's
 * NOTIFY_SOCKET (systemd's Type=notify). 0 when sent or when NOTIFY_SOCKET is unset; a negative
 * errno when it could not be sent (the caller logs it once). Any thread may call it. */
int sx_notify(const char *state);

/* ---- requests and routing (http.c, router.c) -------------------------------------------------- */

#define SX_MAX_PARAMS 5
/* An X-Request-Id: 1-64 characters of [A-Za-z0-9._-], the client's or one the server made. */
#define SX_REQUEST_ID_MAX 64

typedef struct sx_request sx_request;
typedef void (*sx_handler_fn)(sx_request *r);

/* Per-request state, allocated in req->pool (freed with the request). */
struct sx_request {
    h2o_req_t *req;
    sx_server *server;
    sx_thread *thread;
    sx_conn *conn;     /* may be NULL if the socket is unknown */
    bool admin;        /* arrived on the admin socket */
    h2o_iovec_t path;  /* without the query string */
    h2o_iovec_t query; /* after '?', may be empty */
    h2o_iovec_t params[SX_MAX_PARAMS];
    size_t nparams;
    sx_job *job;                  /* blocking work in flight for this request, cancelled if the request goes away */
    const struct sx_route *route; /* the route it was dispatched to (NULL before routing) */
    /* the caller's token record, read on the worker pool because the loop's cache could not answer
     * and the store's reads are slow (request.c); freed (wiped) with the request */
    struct sx_auth_fetch *auth_fetch;
    struct sx_audit_wait *audit_wait; /* parked until its audit intent line is on file (audit_wait.c) */
    bool vault; /* a /v1/ request on a public listener with [vault] enabled: errors in Vault's form */
    /* observability (http.c): the request id, the route for metrics, what the audit line says */
    char req_id[SX_REQUEST_ID_MAX + 1];
    uint8_t req_id_len;
    bool audit_done;     /* the audit line is written (or a job took it over): finish adds none */
    bool has_principal;  /* authenticated: the token fields below are set */
    uint8_t route_index; /* index into the route table; sx_router_count() = no route */
    uint8_t route_method;
    const char *audit_action; /* NULL = the route is not audited */
    /* what the audit line names when the path's parameters do not say it (a Vault path): set by
     * the handler in request-pool memory, NULL = from the parameters */
    const char *audit_scope;
    const char *audit_name;
    uint64_t start_ns; /* CLOCK_MONOTONIC at on_req, for the latency histogram */
    const char *token_role;
    char token_id[SX_AUTH_ID_LEN + 1];
    char token_label[SX_AUTH_LABEL_MAX + 1];
};

typedef enum sx_method {
    SX_GET = 1u << 0,
    SX_POST = 1u << 1,
    SX_PUT = 1u << 2,
    SX_DELETE = 1u << 3,
    SX_HEAD = 1u << 4,
    SX_PATCH = 1u << 5,
    SX_LIST = 1u << 6, /* Vault's LIST */
} sx_method;

typedef enum sx_route_scope {
    SX_ROUTE_PUBLIC = 1u << 0,  /* served on the TCP listeners */
    SX_ROUTE_ADMIN = 1u << 1,   /* served on the admin socket */
    SX_ROUTE_METRICS = 1u << 2, /* served on [server] metrics_listen */
    SX_ROUTE_VAULT = 1u << 3,   /* served on the TCP listeners when [vault] enabled */
} sx_route_scope;

typedef struct sx_route {
    const char *pattern; /* "/healthz", "/{o}/{p}/envs/{env}/secrets/{name}"; a last parameter
                            "{name*}" takes the rest of the path, none or more segments */
    unsigned methods;    /* SX_GET | ... */
    unsigned scope;      /* SX_ROUTE_* */
    sx_handler_fn handler;
    const char *audit; /* audit action ("secret.get"), NULL = not audited (health, metrics) */
} sx_route;

/* Outcome of matching a path against the route table. */
typedef enum sx_route_result {
    SX_ROUTE_FOUND = 0,
    SX_ROUTE_NOT_FOUND = 1,
    SX_ROUTE_BAD_METHOD = 2, /* *ret_allow holds the allowed methods */
    SX_ROUTE_BAD_PATH = 3,   /* a segment breaks the path rules; *ret_bad names it */
} sx_route_result;

/* The route table (routes.c, the only file that names every handler): sx_route_table_len entries,
 * at most SX_ROUTES_MAX (one metrics label is kept for "no route"). */
#define SX_ROUTES_MAX 48
extern const sx_route sx_route_table[];
extern const size_t sx_route_table_len;

/* Match method and path (no query) against the route table for the given scope (router.c). On
 * FOUND writes the route and fills params (borrowed slices of path). */
sx_route_result sx_router_match(unsigned scope, unsigned method, const char *path, size_t len,
                                const sx_route **ret_route, h2o_iovec_t *params, size_t *ret_nparams,
                                unsigned *ret_allow, const char **ret_bad);
/* The route table, for metrics labels: its length and entry i (static, valid forever). */
size_t sx_router_count(void);
const sx_route *sx_router_at(size_t i);
/* Parse an HTTP method name; 0 when unknown. */
unsigned sx_method_parse(const char *m, size_t len);
/* Write "GET, PUT" for a method mask into buf; returns the length. */
size_t sx_method_list(unsigned mask, char *buf, size_t cap);

/* The rotation engine's and the sweeper's life in the server (rotor_life.c): init creates the
 * engine (err gets a reason on failure), start runs both threads once the loops run, stop joins
 * the rotation's (before storage closes), stop_sweeper the sweeper's (once no job runs any more),
 * free releases the engine (NULL-safe, after stop). */
int sx_ops_init(sx_server *s, char *err, size_t errlen);
void sx_ops_start(sx_server *s);
void sx_ops_stop(sx_server *s);
void sx_ops_stop_sweeper(sx_server *s);
void sx_ops_free(sx_server *s);

/* Send a JSON body (bytes are copied into the request pool) with status. */
void sx_send_json(sx_request *r, int status, const char *reason, const char *json, size_t len);
/* Send body as is, without copying: it must live in the request pool (or be static). */
void sx_send_json_pooled(sx_request *r, int status, h2o_iovec_t body);
/* Send body as is (static or request-pool memory, not copied) with status, content_type and
 * cache_control (static strings), for answers that are not JSON. */
void sx_send_body(sx_request *r, int status, h2o_iovec_t content_type, h2o_iovec_t cache_control, h2o_iovec_t body);
/* Send 304 Not Modified: no body; the caller added the ETag. */
void sx_send_not_modified(sx_request *r);
/* Send 204 No Content (no body). */
void sx_send_no_content(sx_request *r);
/* Send the error form {"error": message, "code": code} with status; for a Vault request
 * (r->vault), Vault's form {"errors": [message]} (vault_http.c). */
void sx_send_error(sx_request *r, int status, const char *code, const char *message);
/* Vault's error form for r: {"errors": [message]}, or {"errors": []} for 404; an unauthenticated
 * request is Vault's 403 "permission denied" (vault_http.c). */
void sx_vault_send_error(sx_request *r, int status, const char *message);
/* Same, for a raw h2o request (used before an sx_request exists). */
void sx_send_error_raw(h2o_req_t *req, int status, const char *code, const char *message);
/* The reason phrase for a status code. */
const char *sx_status_reason(int status);

/* Register the request handler, the JSON error filter and the access logger on a pathconf. */
void sx_http_register(sx_server *s, h2o_pathconf_t *pathconf);

/* Every answer of an sx_request passes here once, just before it is sent (the sx_send_* helpers
 * call it): it counts the request in the loop's metrics and, for audited routes, queues the audit
 * line with the final status unless one was already written (r->audit_done). */
void sx_request_finish(sx_request *r, int status);
/* Fill an audit record for r (strings borrowed from r and client, a 64-byte buffer). */
struct sx_audit_rec;
void sx_request_audit_rec(sx_request *r, struct sx_audit_rec *rec, char *client, const char *scope, const char *name);

/* Submit blocking work for r; the job is cancelled if the request goes away first. */
void sx_request_submit(sx_request *r, sx_job *job);
/* Run r's route handler again from the start (on r's loop, from a job's done()): for a request
 * that stopped before anything was sent to wait for a read the loop could not make (its token's
 * record), which it now finds in r. */
void sx_request_rerun(sx_request *r);

/* ---- requests parked until their audit intent line is on file (audit_wait.c) ------------------- */

/*
 * A request that may act only once its intent line is on file (a reveal or a write under
 * fail_closed) parks: no thread waits. The audit writer answers the line's ticket to the loop that
 * queued it, through that loop's audit_receiver, and the request goes on there - the worker pool's
 * way in reverse. Embed sx_audit_wait first in a malloc'd struct (not request-pool memory: the
 * writer may answer after the request is gone) and set proceed and release.
 */
typedef struct sx_audit_wait sx_audit_wait;
struct sx_audit_wait {
    h2o_multithread_message_t super; /* the writer's answer comes back to the loop as this */
    sx_audit_ticket ticket;
    h2o_timeout_entry_t timer; /* SX_AUDIT_SYNC_TIMEOUT_MS */
    sx_thread *thread;
    sx_request *r;     /* NULL once r was answered without proceeding, or went away */
    sx_audit_copy who; /* the intent line's principal and target, for its outcome line */
    /* The intent line is on file and r is still there: go on (answer r, or submit its job). */
    void (*proceed)(sx_audit_wait *w, sx_request *r);
    /* Free w and what it still owns; runs exactly once, when the writer has answered. */
    void (*release)(sx_audit_wait *w);
};

/* Queue rec (an intent line) for r and park r until it is on file; then w->proceed(w, r) runs on
 * r's loop. When the line cannot be written, or is not on file within SX_AUDIT_SYNC_TIMEOUT_MS, r
 * is answered 503 with its outcome line and never proceeds. When r goes away first, an outcome line
 * with status SX_AUDIT_STATUS_GONE is written. w->release(w) always runs once, possibly before this
 * returns (the line could not be queued). Loop threads only; the server has an audit log. */
void sx_audit_wait_start(sx_request *r, sx_audit_wait *w, const sx_audit_rec *rec);
/* r goes away while parked (its dispose). */
void sx_audit_wait_request_gone(sx_request *r);
/* The audit writer's post callback (sx_audit_options.post): ctx is the server. */
void sx_audit_wait_post(void *ctx, unsigned thread_index, sx_audit_ticket *t);
/* The receiver callback each loop registers for the writer's answers. */
void sx_audit_wait_on_answer(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
/* A loop's part: its timer list (init after h2o_context_init; dispose once the loop stopped). */
void sx_audit_wait_thread_init(sx_thread *t);
void sx_audit_wait_thread_dispose(sx_thread *t);

/* ---- codes to HTTP answers (errors_http.c) ----------------------------------------------------- */

/* What a request was doing when a call failed: the same code can mean another answer (-ENOENT is
 * "no secret" to a read and "no token" to a revoke). One bit each, so that a row of the table can
 * serve several. */
typedef enum sx_err_ctx {
    SX_ERR_SECRET = 1u << 0,        /* the secrets API: reads, writes, reveals */
    SX_ERR_AUTH = 1u << 1,          /* authenticating and authorizing a caller */
    SX_ERR_TOKEN_CREATE = 1u << 2,  /* POST /v1/tokens */
    SX_ERR_TOKEN_LIST = 1u << 3,    /* GET /v1/tokens */
    SX_ERR_TOKEN_REVOKE = 1u << 4,  /* DELETE /v1/tokens/{id} */
    SX_ERR_OPS = 1u << 5,           /* status, rotations: storage and key records */
    SX_ERR_MASTER_ROTATE = 1u << 6, /* POST /v1/master/rotate */
    SX_ERR_ENV_ROTATE = 1u << 7,    /* POST /v1/envs/{o}/{p}/{env}/rotate */
    SX_ERR_ENV_KEYS = 1u << 8,      /* GET /v1/envs/{o}/{p}/{env} */
    SX_ERR_SEAL_MIGRATE = 1u << 9,  /* POST /v1/seal/migrate, /v1/seal/slots, /v1/seal/rekey */
    SX_ERR_BACKUP = 1u << 10,       /* POST /v1/backup */
    SX_ERR_AUDIT_VERIFY = 1u << 11, /* POST /v1/audit/verify: reading the file */
    SX_ERR_AUDIT_INTENT = 1u << 12, /* an intent line that fail_closed could not write */
    SX_ERR_READY = 1u << 13,        /* GET /readyz: the store's answer */
    SX_ERR_ALLOC = 1u << 14,        /* memory for the request's own work (a job, a page) */
    SX_ERR_SEAL_SLOT = 1u << 15,    /* DELETE /v1/seal/slots/{slot} */
    SX_ERR_ANY = 0xffffu,
} sx_err_ctx;

/* One answer: status, machine code and message (NULL: the caller's detail, or the code's own
 * sentence). */
typedef struct sx_http_error {
    int rc;       /* the code; SX_HTTP_ERROR_ANY_RC matches every code (a default row) */
    unsigned ctx; /* sx_err_ctx bits the row serves */
    int status;
    const char *code;
    const char *message;
} sx_http_error;
#define SX_HTTP_ERROR_ANY_RC 1

/* The row for rc (a negative errno or project code) in ctx: never NULL (the last row answers
 * everything). Static; any thread. */
const sx_http_error *sx_http_error_of(sx_err_ctx ctx, int rc);
/* Send the answer for rc in ctx. detail is the message of rows that have none (NULL: the code's
 * own sentence). */
void sx_send_failure(sx_request *r, sx_err_ctx ctx, int rc, const char *detail);

/* ---- list pages sent again while the store is unchanged (page_cache.c) --------------------------- */

/* What identifies a page: the env ("org/project/env") and the query (limit, after). */
#define SX_PAGE_ID_MAX (3 * 65 + 24 + 257)

/* On this loop thread's cache: the page stored under id at change sequence seq. On a hit, links
 * the page into pool (valid until the request ends) and returns true with its body and its Link
 * header value (len 0 when none); a page stored at another seq is dropped. Loop threads only. */
bool sx_page_cache_get(const char *id, size_t id_len, uint64_t seq, h2o_mem_pool_t *pool, h2o_iovec_t *ret_body,
                       h2o_iovec_t *ret_link);
/* Keep a copy of body and link under id, read at change sequence seq (read before the scan). */
void sx_page_cache_put(const char *id, size_t id_len, uint64_t seq, h2o_iovec_t body, h2o_iovec_t link);
/* The same for one secret's metadata answer, in a table of its own: id is "org/project/env\nname",
 * the header kept with the body is its ETag value. */
bool sx_meta_cache_get(const char *id, size_t id_len, uint64_t seq, h2o_mem_pool_t *pool, h2o_iovec_t *ret_body,
                       h2o_iovec_t *ret_etag);
void sx_meta_cache_put(const char *id, size_t id_len, uint64_t seq, h2o_iovec_t body, h2o_iovec_t etag);

#endif /* SX_SERVER_INTERNAL_H */
