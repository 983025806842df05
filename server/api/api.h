/*
 * api.h - the handlers of the routes and what they share: authentication of the caller, request
 * bodies, jobs for the worker pool, the Secret object and the write jobs. Included by routes.c
 * (which names every handler) and the files of server/api/ only.
 *
 * A handler translates HTTP into calls of secrets/, auth/, crypto/ and the operator libraries, and
 * their results into HTTP: every failed call is answered through the one error table
 * (sx_send_failure, errors_http.c).
 */
#ifndef SX_SERVER_API_API_H
#define SX_SERVER_API_API_H

#include "secrets/secrets.h"
#include "audit/audit.h"
#include "server/json.h"
#include "server/server_internal.h"

/* ---- jobs for the worker pool (request.c) -------------------------------------------------------- */

/* The first member of every handler's job: the pool's job, the request it answers (only touched in
 * done(), which runs only while the request lives) and the server. */
typedef struct sx_api_job {
    sx_job super;
    sx_request *r;
    sx_server *server;
} sx_api_job;

/* A zeroed job of size bytes (a struct whose first member is sx_api_job) for r, with its work,
 * done (may be NULL) and release (NULL = sx_api_job_free) set. Answers 503 and returns NULL when
 * out of memory. Submit it with sx_request_submit(r, &job->super), or release it. */
void *sx_api_job_new(sx_request *r, size_t size, void (*work)(sx_job *), void (*done)(sx_job *),
                     void (*release)(sx_job *));
/* The release of a job that owns nothing but itself. */
void sx_api_job_free(sx_job *job);

/* ---- what handlers share (request.c) ------------------------------------------------------------- */

/* Copy a path parameter into dst (cap bytes, NUL-terminated, cut to fit). */
void sx_api_copy_param(char *dst, size_t cap, h2o_iovec_t v);
/* The place named by the path parameters {o}/{p}/{env}[/{name}] (name "" when the path has none). */
void sx_api_place_of(sx_request *r, sx_secrets_place *ret);
/* Authenticate the caller by an Authorization header value (value NULL = none): the throttle,
 * Retry-After, the audit line's principal. Sends the error and returns false when it fails. */
bool sx_api_authenticate(sx_request *r, const char *value, size_t vlen, sx_auth_token *ret_principal);
/* Authenticate the caller and check perm (SX_AUTH_PERM_*) on the path's scope; on success fills
 * *ret_place from the path. Sends the error and returns false when the request may not proceed. */
bool sx_api_begin(sx_request *r, unsigned perm, sx_secrets_place *ret_place);
/* True when the request's Content-Type is application/json (parameters allowed); otherwise sends
 * 415 and returns false. */
bool sx_require_json(sx_request *r);
/* Parse the body strictly into out[n] (json.c); sends 400 and returns false when it breaks a rule. */
bool sx_api_parse_body(sx_request *r, const sx_json_field *fields, size_t n, sx_json_value *out);
/* What the secrets transactions work on. sx_api_secrets_ctx: on r's loop thread (its metrics);
 * sx_api_secrets_ctx_pool: on worker-pool threads (the shared metrics). */
void sx_api_secrets_ctx(sx_request *r, sx_secrets_ctx *ret);
void sx_api_secrets_ctx_pool(sx_server *s, sx_secrets_ctx *ret);
/* A JSON number member (key NULL: an array element) of v. */
void sx_api_gen_uint(yajl_gen g, const char *key, uint64_t v);
/* An operator job's failure: logged when the server is at fault (5xx), then answered. */
void sx_api_send_ops_failure(sx_request *r, sx_err_ctx ctx, int rc, const char *detail);
/* Add ETag: the revision as "%016x", quoted. */
void sx_api_etag(sx_request *r, uint64_t rev);

/* ---- entity tags and conditional reads (request.c) ----------------------------------------------- */

/* A strong entity tag, quoted: a revision ("%016x") or a content tag (32 hex digits). */
#define SX_API_ETAG_MAX (2 * SX_SECRETS_TAG_LEN + 3)
typedef struct sx_api_etag_buf {
    char s[SX_API_ETAG_MAX];
    size_t len;
} sx_api_etag_buf;
void sx_api_etag_of_rev(uint64_t rev, sx_api_etag_buf *ret);
void sx_api_etag_of_tag(const uint8_t tag[SX_SECRETS_TAG_LEN], sx_api_etag_buf *ret);
/* Add e as the answer's ETag header. */
void sx_api_etag_add(sx_request *r, const sx_api_etag_buf *e); /* e NULL: nothing */
/* True when the header value v (len bytes) - "*" or a list of entity tags - names etag (quoted,
 * elen bytes). weak: the weak comparison (W/ ignored: If-None-Match); otherwise the strong one
 * (a W/ tag never matches: If-Match). A malformed entry ends the list: what follows never
 * matches. */
bool sx_api_etag_list_match(const char *v, size_t len, const char *etag, size_t elen, bool weak);
/* True when the request carries If-None-Match. */
bool sx_api_has_if_none_match(sx_request *r);
/* A conditional GET or HEAD: when an If-None-Match field of the request names e (or is "*": the
 * caller has a current representation), answers 304 with e and no body, and returns true. */
bool sx_api_not_modified(sx_request *r, const sx_api_etag_buf *e);

/* ---- reads of the store (request.c) -------------------------------------------------------------- */

/*
 * A read for a request, made where the store allows: inline on r's loop when the store answers from
 * memory or local files, on the worker pool when its reads are slow (SX_STORAGE_CAP_SLOW_READS: a
 * database), so that a loop never waits for the network and keeps answering what needs no read.
 * The handler authenticates and checks the request on the loop, fills the job, and starts it.
 *
 * read() works only on the job: its copies of what the request said, and j->pool for the memory
 * of the answer (r's own pool inline; on the worker pool a pool of the job's that r takes over
 * before answer() runs, so the answer is sent as read() wrote it, and what it allocated wiped is
 * wiped when r ends). answer() runs on r's loop while r lives and sends. A read whose request went
 * away is dropped when it comes back.
 */
typedef struct sx_read_job sx_read_job;
struct sx_read_job {
    sx_api_job base;
    sx_secrets_place place;
    int (*read)(sx_read_job *j, const sx_secrets_ctx *c);
    void (*answer)(sx_read_job *j);
    void (*clear)(sx_read_job *j); /* frees what a handler's job owns (NULL: nothing); any thread */
    h2o_mem_pool_t *pool;          /* where read() allocates the answer */
    bool on_loop;                  /* read() runs on r's loop (it may use the loop's caches) */
    char *if_none_match;           /* the request's If-None-Match fields, comma-joined; NULL = none */
    size_t if_none_match_len;
    /* outcome */
    int rc;
    bool not_modified; /* read() found the representation the client has: 304 */
    bool has_etag;
    sx_api_etag_buf etag;
    h2o_iovec_t body; /* in j->pool */
    /* the job's own pool, on the worker pool only */
    h2o_mem_pool_t own;
    bool own_live;
};

/* A zeroed read job of size bytes (a struct whose first member is sx_read_job) for r on place p,
 * with If-None-Match copied. Answers 503 and returns NULL when out of memory. */
void *sx_read_job_new(sx_request *r, size_t size, const sx_secrets_place *p,
                      int (*read)(sx_read_job *, const sx_secrets_ctx *), void (*answer)(sx_read_job *),
                      void (*clear)(sx_read_job *));
/* Run it inline or hand it to the worker pool (see above); the job is the callee's either way. */
void sx_read_job_start(sx_request *r, sx_read_job *j);
/* In read(): a conditional read whose If-None-Match names e (or is "*"): sets the outcome to 304
 * with e and returns true; nothing more needs to be read. */
bool sx_read_job_not_modified(sx_read_job *j, const sx_api_etag_buf *e);
/* In answer(): a successful read's answer: 304 with the ETag, or 200 with the ETag and the JSON
 * body. */
void sx_read_job_send(sx_read_job *j);

/* ---- the Secret object and the writes (secrets.c) ------------------------------------------------ */

/* Write a Secret object straight into out, which has room for sx_secret_json_max(namelen,
 * description_len) bytes; returns the bytes written. */
size_t sx_secret_json_max(size_t namelen, size_t desclen);
size_t sx_secret_json_write(char *out, const char *name, size_t namelen, const sx_secret_meta *m);

/* A write of a secret, on the worker pool: what it touches, its If-Match, its audit lines and its
 * outcome. Each write embeds it first in its own job. */
typedef struct sx_write_job {
    sx_api_job base;
    sx_secrets_place place;
    char *if_match; /* NULL = no If-Match */
    size_t if_match_len;
    sx_audit *audit; /* NULL = not audited */
    sx_audit_copy who;
    bool intent_on_file; /* fail_closed: the intent line was on file before the job was submitted */
    bool ran;            /* work() ran (a job cancelled first changed nothing) */
    /* outcome */
    int rc;
    sx_err_ctx rc_ctx; /* what rc is about: the write, or its audit intent line */
    sx_secret_meta meta;
    uint64_t rev;
} sx_write_job;

/* A write job of size bytes for r on place p, with its own work, done and release; copies the
 * If-Match header. Answers 503 and returns NULL when out of memory. */
sx_write_job *sx_write_job_new(sx_request *r, size_t size, const sx_secrets_place *p, void (*work)(sx_job *),
                               void (*done)(sx_job *), void (*release)(sx_job *));
/* Hand it to the pool with who asked, for its audit lines; under fail_closed only once its intent
 * line is on file (the request parks meanwhile, audit_wait.c). */
void sx_write_job_submit(sx_request *r, sx_write_job *j);
/* In work(): the audit intent line (unless already on file), then apply (its code goes to j->rc;
 * on 0 it wrote the outcome), then the outcome line with ok_status or the failure's status. */
void sx_write_job_run(sx_write_job *j, int (*apply)(sx_write_job *j, const sx_secrets_ctx *c), int ok_status);
/* The If-Match precondition for a transaction (in buf), or NULL when the request had none. */
const sx_secrets_cond *sx_write_job_cond(sx_write_job *j, sx_secrets_cond *buf);
/* In done(): when the write failed, answers it and returns true. */
bool sx_write_job_failed(sx_write_job *j);
/* The release of a write job (the value of a set-value is wiped by its own release first). */
void sx_write_job_release(sx_job *job);

/* ---- handlers ------------------------------------------------------------------------------------ */

/* secrets.c */
void sx_api_list(sx_request *r);
void sx_api_create(sx_request *r);
void sx_api_get(sx_request *r);
void sx_api_update(sx_request *r);
void sx_api_delete(sx_request *r);
/* values.c */
void sx_api_set_value(sx_request *r);
void sx_api_reveal(sx_request *r);
void sx_api_values(sx_request *r);
void sx_api_rollback(sx_request *r);
/*
 * Answers that hold values (values.c) are written straight into request-pool memory that is wiped
 * when the request ends: reserve room, append literals, and let a value decrypted in place at the
 * end of the buffer become a JSON string's contents (escaped from a wiped copy when it must be).
 */
typedef struct sx_wiped_out {
    h2o_mem_pool_t *pool;
    char *buf;
    size_t len, cap;
} sx_wiped_out;
void sx_wiped_reserve(sx_wiped_out *o, size_t need);
void sx_wiped_lit(sx_wiped_out *o, const char *s, size_t len);
void sx_wiped_escape_tail(sx_wiped_out *o, size_t plen);
/* Decrypt blob (version of p's value; freed here, whatever happens) as a JSON string's contents
 * at the end of o. 0 or the decrypt's code (sx_secrets_value_decrypt_v). */
int sx_wiped_value(sx_wiped_out *o, const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version, void *blob,
                   size_t blob_len);
/* Send an answer holding values of p (body in wiped request-pool memory) with its ETag (NULL:
 * none) after its audit intent line: under fail_closed only once that line is on file, else 503
 * (without the ETag). */
void sx_api_send_revealed(sx_request *r, const sx_secrets_place *p, const sx_api_etag_buf *etag, h2o_iovec_t body);
/* Append env's values as a JSON object {"NAME": "value", ...} to o; ret_tag (may be NULL) gets the
 * map's content tag (sx_secrets_values_tag). 0 or the code of the read or decrypt that failed
 * (nothing is sent). */
int sx_api_values_write(const sx_secrets_ctx *c, const sx_secrets_place *env, sx_wiped_out *o, uint8_t *ret_tag);
/* Answer a failed read of a value (logs the failures an operator must see, never a value). */
void sx_api_send_unreadable(sx_request *r, int rc, const char *what);
/* versions.c */
void sx_api_versions(sx_request *r);
void sx_api_version_destroy(sx_request *r);
/* A version number: 1-10 decimal digits, 1 .. 2^32-1. */
bool sx_api_version_parse(const char *s, size_t len, uint32_t *ret_version);
/* trash.c */
void sx_api_deleted_list(sx_request *r);
void sx_api_restore(sx_request *r);
void sx_api_purge(sx_request *r);
/* tokens.c */
void sx_api_token_create(sx_request *r);
void sx_api_token_list(sx_request *r);
void sx_api_token_revoke(sx_request *r);
/* operator.c */
void sx_api_status(sx_request *r);
void sx_api_rotations(sx_request *r);
void sx_api_master_rotate(sx_request *r);
void sx_api_env_rotate(sx_request *r);
void sx_api_env_keys(sx_request *r);
void sx_api_seal_migrate(sx_request *r);
/* seal.c */
void sx_api_seal_slots(sx_request *r);
void sx_api_seal_slot_add(sx_request *r);
void sx_api_seal_slot_remove(sx_request *r);
void sx_api_seal_rekey(sx_request *r);
void sx_api_backup(sx_request *r);
void sx_api_audit_verify(sx_request *r);
/* health.c */
void sx_api_healthz(sx_request *r);
/* Does the store answer (a read of one key, found or not)? 0 or its code. Blocking: a pool job's. */
int sx_api_storage_check(sx_server *s);
void sx_api_readyz(sx_request *r);
/* metrics.c */
void sx_api_metrics(sx_request *r);
/* openapi.c */
void sx_api_openapi(sx_request *r);

#endif /* SX_SERVER_API_API_H */
