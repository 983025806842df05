/*
 * audit.h - the tamper-evident audit log (audit.c): its writer, its verification and the record
 * copies a request's deferred work carries.
 *
 * The audit log is one JSON line per request that touches a secret or an admin action. Lines are
 * built on the thread that served the request and handed to one writer thread, which numbers them
 * (seq), chains them with a keyed BLAKE2b MAC (crypto_generichash keyed with the keyring's
 * SX_CRYPTO_KEY_AUDIT key, over the previous line's MAC and this line) and appends them to the
 * file; after each batch it stores the chain head (seq and MAC) in the node's `s/audit.head/{node}`
 * record, so that a cut tail is caught as well as an edited, inserted, deleted or reordered line.
 * The MAC key never leaves the process: verification runs here (sx_audit_verify) on a file the
 * server reads.
 *
 * Nodes: several servers may share one store, each with its own file and its own chain, whose head
 * is kept under the node's id ([server] node_id, or an id generated once and kept in the file
 * `<audit file>.node`). Every audit.open line names its node, so a file says whose chain it is and
 * is checked against that node's head. A store from before per-node chains has one head,
 * `s/audit.head` (SX_AUDIT_HEAD_KEY): the node whose file continues it (a line of the file carries
 * its seq and MAC) adopts it at start-up, moving it to its own key in one conditional batch; any
 * other node starts a chain of its own. A file none of whose lines names a node (written before) is
 * checked against that legacy head while it exists.
 *
 * Line format (the writer adds "seq" and "mac"; the MAC covers every byte before ,"mac"):
 *   {"seq":7,"event":"request","time":"...","requestId":"...","tokenId":"..."|null,
 *    "label":"..."|null,"role":"..."|null,"client":"...","action":"secret.reveal",
 *    "scope":"o/p/env"|null,"name":"..."|null,"phase":"intent"|"done","status":200|null,
 *    "grantedRole":"..." (token.create only), "mac":"64 hex"}
 *   (status SX_AUDIT_STATUS_GONE, 499: the client went away after the intent line and before the
 *    request acted; nothing was changed or returned)
 *   {"seq":1,"event":"audit.open","prev":"64 hex","node":"...","time":"...","mac":"..."}   (first
 *    line of a file and after every start or reopen; prev is the MAC the chain continues from, zeros
 *    at genesis; node is the id of the node whose chain it is)
 * Never a value, a token or key material: callers pass names and ids only.
 *
 * Lines that must be on file before their caller acts (the intent line of a reveal or a write under
 * fail_closed) are queued with sx_audit_log_async(): nobody waits for them. The writer takes every
 * queued line as one batch (group commit), appends it, fdatasyncs it and then answers each such
 * line's ticket through the post callback the caller installed, which carries it back to the thread
 * that queued it; the chain head of that batch is stored by a second thread while the writer goes
 * on with the next batch, so a slow store does not hold up the file.
 *
 * Threads: sx_audit_log() and sx_audit_log_async() from any thread (loop threads pass their index,
 * others SX_AUDIT_ANY_THREAD); sx_audit_verify() and sx_audit_flush() from threads that may block
 * (worker pool, main); sx_audit_reopen() from any thread.
 *
 * Nothing here knows HTTP: the caller hands in the file, the policy and the keys, and learns of a
 * forged chain head through a callback. The writer thread logs its own file errors (common/log.h).
 */
#ifndef SX_AUDIT_AUDIT_H
#define SX_AUDIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "storage/storage.h"

typedef struct sx_audit sx_audit;

#define SX_AUDIT_ANY_THREAD       (~0u)
#define SX_AUDIT_SYNC_TIMEOUT_MS  2000            /* a stuck disk answers 503 after this, never hangs a request */
#define SX_AUDIT_STATUS_GONE      499             /* outcome of a request whose client went away before it acted */
#define SX_AUDIT_HEAD_KEY         "s/audit.head"  /* the single head of a store from before per-node chains */
#define SX_AUDIT_HEAD_PREFIX      "s/audit.head/" /* + node id: each node's chain head */
#define SX_AUDIT_NODE_ID_MAX      64u             /* a node id: 1..64 bytes of [A-Za-z0-9._-] */
#define SX_AUDIT_NODE_ID_SIZE     (SX_AUDIT_NODE_ID_MAX + 1u)
#define SX_AUDIT_NODE_FILE_SUFFIX ".node" /* appended to the audit file's path: the generated node id */
#define SX_AUDIT_NODE_ID_RANDOM   16u     /* random bytes of a generated node id (written in hex) */

/* What one line says. Every string is borrowed for the call only; NULL is written as null. */
typedef struct sx_audit_rec {
    const char *request_id;
    const char *token_id;
    const char *label;
    const char *role;
    const char *client;
    const char *action; /* "secret.get", "token.create", ... */
    const char *scope;  /* "org/project/env" */
    const char *name;
    bool intent; /* phase "intent" (before a change or a reveal) instead of "done" */
    int status;  /* HTTP status of the answer; ignored for an intent */
    /* token.create only: the new token's role, written as "grantedRole" after "status" (its id goes
     * in name and its scope in scope); NULL on every other line, which then has no such field. */
    const char *granted_role;
} sx_audit_rec;

/* Buffer sizes (with the terminating NUL) of an sx_audit_copy: a longer string is cut to fit. */
#define SX_AUDIT_REQUEST_ID_SIZE 65u                      /* request ids of up to 64 bytes */
#define SX_AUDIT_TOKEN_ID_SIZE   (SX_AUTH_ID_LEN + 1u)    /* a token id in hex */
#define SX_AUDIT_LABEL_SIZE      (SX_AUTH_LABEL_MAX + 1u) /* a token's label */
#define SX_AUDIT_ROLE_SIZE       16u                      /* a role name */
#define SX_AUDIT_CLIENT_SIZE     64u                      /* the client's address as text */
#define SX_AUDIT_SCOPE_SIZE      200u                     /* "org/project/env": 3 x 64 bytes and two '/' */
#define SX_AUDIT_NAME_SIZE       260u                     /* a secret's name (up to 256 bytes) or a token id */

/* An audit record's strings copied into fixed buffers, for a job that outlives the request. */
typedef struct sx_audit_copy {
    const char *action; /* static */
    bool has_token, has_scope, has_name;
    char request_id[SX_AUDIT_REQUEST_ID_SIZE];
    char token_id[SX_AUDIT_TOKEN_ID_SIZE];
    char label[SX_AUDIT_LABEL_SIZE];
    char role[SX_AUDIT_ROLE_SIZE];
    char client[SX_AUDIT_CLIENT_SIZE];
    char scope[SX_AUDIT_SCOPE_SIZE];
    char name[SX_AUDIT_NAME_SIZE];
} sx_audit_copy;
/* Copy rec's strings into c (NULL strings are remembered as absent; granted_role is not kept). */
void sx_audit_copy_set(sx_audit_copy *c, const sx_audit_rec *rec);
/* Fill rec from c: rec's strings point into c (valid while c is). */
void sx_audit_copy_rec(const sx_audit_copy *c, sx_audit_rec *rec);

/*
 * A line that must be on file before its caller goes on (sx_audit_log_async). The caller owns the
 * memory and keeps it valid until done has run; its fields belong to the audit log until then.
 */
typedef struct sx_audit_ticket {
    struct sx_audit_ticket *next; /* the audit log's */
    void (*done)(void *arg, int rc);
    void *arg;
    unsigned thread_index;
    int rc; /* 0: written and fdatasync'ed; -EIO: it could not be */
} sx_audit_ticket;

/* How an audit log is run. Borrowed for the sx_audit_new() call (path is copied). */
typedef struct sx_audit_options {
    const char *path; /* the audit file, opened for appending (created 0600) */
    /* This node's id (1..SX_AUDIT_NODE_ID_MAX bytes of [A-Za-z0-9._-]). NULL or "": the id kept in
     * path + SX_AUDIT_NODE_FILE_SUFFIX, generated (and the file created, 0600) on the first start. */
    const char *node_id;
    bool fail_closed; /* sx_audit_fail_closed() answers this: callers refuse to act unlogged */
    /* Called (on the thread that read it) each time the stored chain head fails its record MAC:
     * at start-up, which then fails, and by sx_audit_verify(). May be NULL. */
    void (*on_forged)(void *ctx);
    void *ctx;
    /* Carries a finished ticket back to the thread that queued it (thread_index as given to
     * sx_audit_log_async), which then calls sx_audit_ticket_done(t). Called on the writer thread:
     * it must not block. NULL: sx_audit_log_async() is refused. */
    void (*post)(void *post_ctx, unsigned thread_index, sx_audit_ticket *t);
    void *post_ctx;
} sx_audit_options;

/*
 * Open the audit log at opt->path (appending), read the chain head from storage and start the
 * writer thread. key (32 bytes, the chain's MAC key), record_key (32 bytes, the MAC of the stored
 * head, crypto.h) and st are borrowed and must outlive the audit log. nthreads is the number of
 * loop threads (each gets its own buffer). Returns 0, SX_CRYPTO_EFORGED when the stored head
 * fails its MAC, a storage error, or a negative errno, with a reason in err.
 */
int sx_audit_new(sx_audit **ret, const sx_audit_options *opt, sx_storage *st, const uint8_t *key,
                 const uint8_t *record_key, unsigned nthreads, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The node id the audit log's chain belongs to (configured or generated). */
const char *sx_audit_node_id(const sx_audit *a);
/* True when id[0..len) is a valid node id. */
bool sx_audit_node_id_valid(const char *id, size_t len);

/* Write what is queued, store the head and stop the writer. NULL ok. */
void sx_audit_free(sx_audit *a);

/* True when [log] audit_policy = fail_closed. */
bool sx_audit_fail_closed(const sx_audit *a);

/* Queue one line; returns at once (the line reaches the file within a few tens of ms). A line that
 * does not fit the thread's buffer (the writer is far behind or failing) is dropped and counted. */
void sx_audit_log(sx_audit *a, unsigned thread_index, const sx_audit_rec *rec);

/* Queue one line that its caller must know to be on file, and return at once. 0: queued, and t's
 * done(arg, rc) will run exactly once, on the thread that gets t from the post callback (rc 0 once
 * the line is written and fdatasync'ed, -EIO when its batch could not be written); t must stay
 * valid until then. -ENOBUFS: the thread's buffer is full (the writer is far behind), -ENOTSUP: no
 * post callback; the line was dropped and done never runs. The caller keeps its own deadline
 * (SX_AUDIT_SYNC_TIMEOUT_MS): a late answer still comes, and must find t. */
int sx_audit_log_async(sx_audit *a, unsigned thread_index, const sx_audit_rec *rec, sx_audit_ticket *t,
                       void (*done)(void *arg, int rc), void *arg) __attribute__((warn_unused_result));
/* On the thread the post callback delivered t to: run its done(arg, rc). */
void sx_audit_ticket_done(sx_audit_ticket *t);

/* Wait until every line queued before the call has had its batch written (or failed) and every
 * ticket among them was posted. Blocks (as long as the disk does). NULL ok. */
void sx_audit_flush(sx_audit *a);

/* Ask the writer to close and reopen the file (SIGHUP, after log rotation). The chain continues. */
void sx_audit_reopen(sx_audit *a);

#define SX_AUDIT_REASON_SIZE 256u /* sx_audit_report.reason, with its NUL */

typedef struct sx_audit_report {
    bool ok;
    uint64_t lines;
    uint64_t first_seq, last_seq;
    uint64_t head_seq; /* the server's stored head; 0 when none */
    uint64_t bad_line; /* 1-based number of the first bad line; 0 when the problem is not one line */
    char reason[SX_AUDIT_REASON_SIZE];
    /* The node whose chain the file is (named by its audit.open lines); "" for a file none of whose
     * lines names one (written before per-node chains). */
    char node[SX_AUDIT_NODE_ID_SIZE];
} sx_audit_report;

/* Check the MAC chain of the audit file at path (up to its size when called) and, unless rotated
 * (an older file that ends before the head), that it ends at the stored head of the node its
 * audit.open lines name (any node's file can be checked; lines naming two nodes fail). 0 with the verdict
 * in *rep (a stored head that fails its MAC is a verdict too), or a negative errno or storage
 * error when the file or the head cannot be read (-EINVAL: not a regular file). Blocks:
 * worker-pool threads only. */
int sx_audit_verify(sx_audit *a, const char *path, bool rotated, sx_audit_report *rep);

typedef struct sx_audit_stats {
    uint64_t lines, dropped, write_failures;
    bool failing;
} sx_audit_stats;
void sx_audit_get_stats(sx_audit *a, sx_audit_stats *ret);

#endif /* SX_AUDIT_AUDIT_H */
