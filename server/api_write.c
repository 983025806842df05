/*
 * api_write.c - the writing endpoints: create, update the description, delete, set the value.
 *
 * A write is validated on the event loop (auth, media type, strict JSON, the field rules), then
 * handed to the worker pool as a job that owns copies of everything it needs, since the request
 * may go away while the job runs. The job reads the metadata record, checks If-Match, and writes
 * with one atomic conditional batch: the metadata and the value record change together or not at
 * all, conditioned on the revision it read. When another writer got in between, the job reads
 * again and retries: a secret deleted meanwhile is 404, one whose revision no longer matches the
 * client's If-Match is 412, and otherwise the change is applied to the new state.
 * So a value set concurrently with a delete is either deleted with it or refused: never left
 * behind a deleted name.
 */
#include "server/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "audit/audit.h"
#include "server/metrics.h"
#include "common/testpoint.h"

#define WRITE_RETRIES 16

typedef enum write_op { OP_CREATE, OP_UPDATE, OP_DELETE, OP_SET_VALUE } write_op;

typedef struct write_job {
    sx_job super;
    sx_request *r; /* only touched in done(), which runs only while the request lives */
    sx_server *server;
    write_op op;
    char org[SX_AUTH_NAME_MAX + 1];
    char project[SX_AUTH_NAME_MAX + 1];
    char env[SX_AUTH_NAME_MAX + 1];
    char name[257];
    char *if_match; /* NULL = no If-Match */
    size_t if_match_len;
    bool desc_null;
    char description[SX_DESCRIPTION_MAX + 1];
    size_t description_len;
    uint8_t *value; /* plaintext of a set-value, wiped in release */
    size_t value_len;
    sx_audit *audit; /* NULL = not audited */
    sx_audit_copy who;
    /* results */
    int status;
    const char *code;
    const char *message;
    sx_secret_meta meta;
    uint64_t rev;
} write_job;

/* Shared with api.c (static there); small enough to keep a copy here. */
static size_t etag_of(char *buf, size_t cap, uint64_t rev)
{
    return (size_t)snprintf(buf, cap, "\"%016llx\"", (unsigned long long)rev);
}

static bool if_match_ok(const write_job *j, uint64_t rev)
{
    if (!j->if_match)
        return true;
    char want[24];
    size_t wl = etag_of(want, sizeof(want), rev);
    const char *v = j->if_match;
    size_t len = j->if_match_len, i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if ((end - start == 1 && v[start] == '*') || (end - start == wl && memcmp(v + start, want, wl) == 0))
            return true;
    }
    return false;
}

static void set_result(write_job *j, int status, const char *code, const char *message)
{
    j->status = status;
    j->code = code;
    j->message = message;
}

static void storage_failed(write_job *j, int rc)
{
    if (rc == -EBADMSG) {
        set_result(j, 500, "internal", "a stored record is corrupt");
        return;
    }
    if (rc == -ENOSPC) {
        set_result(j, 503, "unavailable", "the storage device is full");
        return;
    }
    set_result(j, 503, "unavailable", "storage is not answering");
}

static void write_apply(write_job *j)
{
    sx_storage *st = j->server->storage;
    char mkey[SX_KEY_MAX], vkey[SX_KEY_MAX];
    size_t mkl = sx_key_build(mkey, 'm', j->org, j->project, j->env, j->name);
    size_t vkl = sx_key_build(vkey, 'v', j->org, j->project, j->env, j->name);
    uint8_t enc[SX_META_MAX];

    if (j->op == OP_CREATE) {
        int64_t now = sx_clock_wall_ms();
        sx_secret_meta *m = &j->meta;
        memset(m, 0, sizeof(*m));
        m->created_ms = m->updated_ms = now;
        m->has_description = !j->desc_null;
        m->description_len = j->desc_null ? 0 : j->description_len;
        memcpy(m->description, j->description, m->description_len);
        size_t elen = sx_meta_encode(m, enc);
        /* A stale value record cannot exist (delete removes both), but a fresh secret must never
         * inherit one, so the batch clears it anyway. */
        sx_storage_op ops[2] = {
            {.kind = SX_STORAGE_OP_PUT,
             .key = mkey,
             .klen = mkl,
             .val = enc,
             .vlen = elen,
             .cond = SX_STORAGE_COND_ABSENT},
            {.kind = SX_STORAGE_OP_DELETE, .key = vkey, .klen = vkl},
        };
        uint64_t t0 = sx_clock_mono_ns();
        int rc = sx_storage_batch(st, ops, 2, NULL);
        sx_metrics_storage(NULL, SX_METRICS_STORAGE_BATCH, sx_clock_mono_ns() - t0);
        if (rc == SX_STORAGE_ECONDITION) {
            set_result(j, 409, "already_exists", "a secret of that name already exists in this environment");
            return;
        }
        if (rc != 0) {
            storage_failed(j, rc);
            return;
        }
        j->rev = ops[0].ret_rev;
        set_result(j, 201, NULL, NULL);
        return;
    }

    for (int attempt = 0; attempt < WRITE_RETRIES; attempt++) {
        void *val = NULL;
        size_t vlen = 0;
        uint64_t rev = 0;
        int rc = sx_storage_get(st, mkey, mkl, &val, &vlen, &rev);
        if (rc == -ENOENT) {
            set_result(j, 404, "not_found", "no secret of that name in this environment");
            return;
        }
        if (rc == 0) {
            rc = sx_meta_decode(&j->meta, val, vlen);
            sx_storage_free(val);
        }
        if (rc != 0) {
            storage_failed(j, rc);
            return;
        }
        if (!if_match_ok(j, rev)) {
            set_result(j, 412, "precondition_failed", "the secret has changed since the ETag given in If-Match");
            return;
        }
        sx_secret_meta *m = &j->meta;
        int64_t now = sx_clock_wall_ms();
        if (now < m->updated_ms)
            now = m->updated_ms; /* a clock step back never makes updatedAt go backwards */
        sx_storage_op ops[3];
        size_t nops = 0;
        sx_crypto_pin pin;
        uint8_t *blob = NULL;
        size_t blen = 0;
        memset(ops, 0, sizeof(ops));
        if (j->op == OP_UPDATE || j->op == OP_SET_VALUE) {
            m->updated_ms = now;
            if (j->op == OP_UPDATE) {
                m->has_description = !j->desc_null;
                m->description_len = j->desc_null ? 0 : j->description_len;
                memcpy(m->description, j->description, m->description_len);
            } else {
                sx_crypto_place place = {j->org, j->project, j->env, j->name};
                rc = sx_crypto_value_encrypt_pinned(j->server->crypto, &blob, &blen, &pin, &place, j->value,
                                                    j->value_len);
                if (rc != 0) {
                    set_result(j, 503, "unavailable", "the value could not be encrypted");
                    return;
                }
                m->has_value = true;
            }
            size_t elen = sx_meta_encode(m, enc);
            ops[nops++] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                                          .key = mkey,
                                          .klen = mkl,
                                          .val = enc,
                                          .vlen = elen,
                                          .cond = SX_STORAGE_COND_REV,
                                          .rev = rev};
            if (blob) {
                ops[nops++] =
                    (sx_storage_op){.kind = SX_STORAGE_OP_PUT, .key = vkey, .klen = vkl, .val = blob, .vlen = blen};
                /* The env must still name the data-key version the value was encrypted under when
                 * the batch commits: a data-key rotation that began after we encrypted would not
                 * re-encrypt this value and would destroy its key. */
                ops[nops++] = (sx_storage_op){.kind = SX_STORAGE_OP_CHECK,
                                              .key = pin.key,
                                              .klen = pin.klen,
                                              .cond = SX_STORAGE_COND_REV,
                                              .rev = pin.rev};
                sx_testpoint("set-value.batch");
            }
        } else { /* OP_DELETE: the value goes with the metadata, in the same batch */
            ops[nops++] = (sx_storage_op){
                .kind = SX_STORAGE_OP_DELETE, .key = mkey, .klen = mkl, .cond = SX_STORAGE_COND_REV, .rev = rev};
            ops[nops++] = (sx_storage_op){.kind = SX_STORAGE_OP_DELETE, .key = vkey, .klen = vkl};
        }
        uint64_t t0 = sx_clock_mono_ns();
        rc = sx_storage_batch(st, ops, nops, NULL);
        sx_metrics_storage(NULL, SX_METRICS_STORAGE_BATCH, sx_clock_mono_ns() - t0);
        free(blob);
        if (rc == 0) {
            j->rev = ops[0].ret_rev;
            set_result(j, 200, NULL, NULL);
            return;
        }
        if (rc != SX_STORAGE_ECONDITION) {
            storage_failed(j, rc);
            return;
        }
        /* Someone else wrote in between, or a data-key rotation began: read again. The next
         * round answers 404 when the secret was deleted meanwhile, 412 when If-Match no longer
         * names its revision, and otherwise applies the change to what is there now (a rotation
         * is never the client's business: the value is encrypted again under the env's new key). */
    }
    set_result(j, 503, "unavailable", "too much contention on this secret; retry");
}

/*
 * The audit lines of a write are the job's, not the request's, so that they are written even when
 * the client goes away mid-write: an intent line before anything is read or changed, the outcome
 * line after. Under fail_closed the job waits (on this pool thread, never a loop) until the writer
 * confirms the intent line; when it cannot, the answer is 503 and the storage batch never runs,
 * so nothing changed.
 */
static void write_work(sx_job *job)
{
    write_job *j = (write_job *)job;
    sx_audit_rec rec;
    if (j->audit) {
        sx_audit_copy_rec(&j->who, &rec);
        rec.intent = true;
        if (sx_audit_fail_closed(j->audit)) {
            int rc = sx_audit_log_sync(j->audit, &rec);
            if (rc != 0) {
                set_result(j, 503, "unavailable", "the audit log cannot be written");
                rec.intent = false;
                rec.status = 503;
                sx_audit_log(j->audit, SX_AUDIT_ANY_THREAD, &rec);
                return;
            }
        } else {
            sx_audit_log(j->audit, SX_AUDIT_ANY_THREAD, &rec);
        }
    }
    write_apply(j);
    if (j->audit) {
        rec.intent = false;
        rec.status = j->status;
        sx_audit_log(j->audit, SX_AUDIT_ANY_THREAD, &rec);
    }
}

static void write_done(sx_job *job)
{
    write_job *j = (write_job *)job;
    sx_request *r = j->r;
    r->audit_done = true; /* the job wrote the outcome line */
    if (j->status >= 400) {
        if (j->status >= 500)
            sx_log(SX_LOG_WARN, "write to \"%s/%s/%s/%s\" failed: %s", j->org, j->project, j->env, j->name, j->message);
        sx_send_error(r, j->status, j->code, j->message);
        return;
    }
    h2o_req_t *req = r->req;
    char etag[24];
    size_t el = etag_of(etag, sizeof(etag), j->rev);
    if (j->op != OP_DELETE)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, h2o_strdup(&req->pool, etag, el).base, el);
    h2o_iovec_t body;
    if (j->op == OP_CREATE || j->op == OP_UPDATE) {
        size_t namelen = strlen(j->name);
        body.base = h2o_mem_alloc_pool(&req->pool, sx_secret_json_max(namelen, j->meta.description_len));
        body.len = sx_secret_json_write(body.base, j->name, namelen, &j->meta);
    } else {
        yajl_gen g = sx_json_gen_thread();
        char ts[32];
        yajl_gen_map_open(g);
        if (j->op == OP_DELETE) {
            sx_json_str(g, "deleted");
            yajl_gen_bool(g, 1);
            sx_json_kv(g, "name", j->name);
        } else {
            sx_json_kv(g, "name", j->name);
            sx_json_str(g, "hasValue");
            yajl_gen_bool(g, 1);
            sx_time_format(j->meta.updated_ms, ts, sizeof(ts));
            sx_json_kv(g, "updatedAt", ts);
        }
        yajl_gen_map_close(g);
        body = sx_json_gen_thread_finish(g, &req->pool);
    }
    if (j->op == OP_CREATE) {
        char loc[512];
        int n = snprintf(loc, sizeof(loc), "/%s/%s/envs/%s/secrets/%s", j->org, j->project, j->env, j->name);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                       h2o_strdup(&req->pool, loc, (size_t)n).base, (size_t)n);
    }
    sx_send_json_pooled(r, j->status, body);
}

static void write_release(sx_job *job)
{
    write_job *j = (write_job *)job;
    if (j->value) {
        sodium_memzero(j->value, j->value_len);
        free(j->value);
    }
    free(j->if_match);
    sodium_memzero(j, sizeof(*j));
    free(j);
}

/* ---- entry points -------------------------------------------------------------------------------- */

typedef struct api_scope {
    char org[SX_AUTH_NAME_MAX + 1];
    char project[SX_AUTH_NAME_MAX + 1];
    char env[SX_AUTH_NAME_MAX + 1];
    char name[257];
} api_scope;

static write_job *new_job(sx_request *r, write_op op, const api_scope *sc)
{
    write_job *j = calloc(1, sizeof(*j));
    if (!j) {
        sx_send_error(r, 503, "unavailable", "out of memory");
        return NULL;
    }
    j->r = r;
    j->server = r->server;
    j->op = op;
    memcpy(j->org, sc->org, sizeof(j->org));
    memcpy(j->project, sc->project, sizeof(j->project));
    memcpy(j->env, sc->env, sizeof(j->env));
    memcpy(j->name, sc->name, sizeof(j->name));
    ssize_t hi = h2o_find_header(&r->req->headers, H2O_TOKEN_IF_MATCH, -1);
    if (hi >= 0) {
        h2o_iovec_t v = r->req->headers.entries[hi].value;
        j->if_match = malloc(v.len + 1);
        if (!j->if_match) {
            free(j);
            sx_send_error(r, 503, "unavailable", "out of memory");
            return NULL;
        }
        memcpy(j->if_match, v.base, v.len);
        j->if_match[v.len] = '\0';
        j->if_match_len = v.len;
    }
    j->super.work = write_work;
    j->super.done = write_done;
    j->super.release = write_release;
    return j;
}

/* Hand the job to the pool, with who asked and what it touches for its audit lines. */
static void submit(sx_request *r, write_job *j)
{
    if (r->server->audit) {
        char client[64], scope[200];
        snprintf(scope, sizeof(scope), "%s/%s/%s", j->org, j->project, j->env);
        sx_audit_rec rec;
        sx_request_audit_rec(r, &rec, client, scope, j->name[0] ? j->name : NULL);
        sx_audit_copy_set(&j->who, &rec);
        j->audit = r->server->audit;
    }
    sx_request_submit(r, &j->super);
}

static bool name_valid(const char *s, size_t len)
{
    if (len < 1 || len > 256 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static const sx_json_field secret_fields[] = {
    {"kind", SX_JSON_STRING, "the string \"secret\"", true},
    {"name", SX_JSON_STRING, "a string", true},
    {"description", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
};

/* Parse and check a create/update body into the job. */
static bool parse_secret_body(sx_request *r, write_job *j, const char *path_name)
{
    sx_json_value v[3];
    char err[256];
    int rc =
        sx_json_parse(&r->req->pool, r->req->entity.base, r->req->entity.len, secret_fields, 3, v, err, sizeof(err));
    if (rc != 0) {
        sx_send_error(r, 400, rc == SX_JSON_EINVALID ? "invalid_json" : "invalid_request", err);
        return false;
    }
    if (v[0].len != 6 || memcmp(v[0].str, "secret", 6) != 0) {
        sx_send_error(r, 400, "invalid_request", "field \"kind\" must be \"secret\"");
        return false;
    }
    if (!name_valid(v[1].str, v[1].len)) {
        sx_send_error(r, 400, "invalid_request",
                      "field \"name\" must be 1-256 characters of [A-Za-z0-9._-], and not \".\" or \"..\"");
        return false;
    }
    if (path_name && (strlen(path_name) != v[1].len || memcmp(path_name, v[1].str, v[1].len) != 0)) {
        sx_send_error(r, 400, "invalid_request", "field \"name\" must equal the name in the path");
        return false;
    }
    if (v[2].present && !v[2].is_null && v[2].len > SX_DESCRIPTION_MAX) {
        sx_send_error(r, 400, "invalid_request", "field \"description\" must be at most 1024 bytes");
        return false;
    }
    memcpy(j->name, v[1].str, v[1].len);
    j->name[v[1].len] = '\0';
    j->desc_null = !v[2].present || v[2].is_null;
    if (!j->desc_null) {
        memcpy(j->description, v[2].str, v[2].len);
        j->description_len = v[2].len;
    }
    return true;
}

static bool begin(sx_request *r, unsigned perm, api_scope *sc)
{
    return sx_api_authorize(r, perm, sc->org, sc->project, sc->env, sc->name);
}

void sx_api_create(sx_request *r)
{
    api_scope sc;
    if (!begin(r, SX_AUTH_PERM_WRITE, &sc) || !sx_require_json(r))
        return;
    /* If-None-Match: * asks for exactly what create does (fail when the name exists); any other
     * value cannot match a resource that is being created and is refused. */
    ssize_t hi = h2o_find_header(&r->req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (hi >= 0 &&
        !h2o_memis(r->req->headers.entries[hi].value.base, r->req->headers.entries[hi].value.len, H2O_STRLIT("*"))) {
        sx_send_error(r, 400, "invalid_request", "If-None-Match on create must be \"*\"");
        return;
    }
    write_job *j = new_job(r, OP_CREATE, &sc);
    if (!j)
        return;
    if (!parse_secret_body(r, j, NULL)) {
        write_release(&j->super);
        return;
    }
    submit(r, j);
}

void sx_api_update(sx_request *r)
{
    api_scope sc;
    if (!begin(r, SX_AUTH_PERM_WRITE, &sc) || !sx_require_json(r))
        return;
    write_job *j = new_job(r, OP_UPDATE, &sc);
    if (!j)
        return;
    if (!parse_secret_body(r, j, sc.name)) {
        write_release(&j->super);
        return;
    }
    submit(r, j);
}

void sx_api_delete(sx_request *r)
{
    api_scope sc;
    if (!begin(r, SX_AUTH_PERM_WRITE, &sc))
        return;
    write_job *j = new_job(r, OP_DELETE, &sc);
    if (j)
        submit(r, j);
}

static const sx_json_field value_fields[] = {
    {"value", SX_JSON_STRING, "a string", true},
};

void sx_api_set_value(sx_request *r)
{
    api_scope sc;
    if (!begin(r, SX_AUTH_PERM_SET_VALUE, &sc) || !sx_require_json(r))
        return;
    sx_json_value v[1];
    char err[256];
    int rc =
        sx_json_parse(&r->req->pool, r->req->entity.base, r->req->entity.len, value_fields, 1, v, err, sizeof(err));
    if (rc != 0) {
        sx_send_error(r, 400, rc == SX_JSON_EINVALID ? "invalid_json" : "invalid_request", err);
        return;
    }
    if (v[0].len > r->server->config->max_value_bytes) {
        sodium_memzero(v[0].str, v[0].len);
        sx_send_error(r, 413, "payload_too_large", "field \"value\" is longer than max_value_bytes");
        return;
    }
    write_job *j = new_job(r, OP_SET_VALUE, &sc);
    if (!j) {
        sodium_memzero(v[0].str, v[0].len);
        return;
    }
    j->value = malloc(v[0].len ? v[0].len : 1);
    if (!j->value) {
        sodium_memzero(v[0].str, v[0].len);
        write_release(&j->super);
        sx_send_error(r, 503, "unavailable", "out of memory");
        return;
    }
    memcpy(j->value, v[0].str, v[0].len);
    j->value_len = v[0].len;
    sodium_memzero(v[0].str, v[0].len);
    submit(r, j);
}
