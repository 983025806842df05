/*
 * request.c - what every handler of server/api/ does the same way: create a job for the worker
 * pool, copy the path's parameters, authenticate and authorize the caller, check the media type
 * and parse a body, and hand the secrets transactions their context.
 *
 * Authentication and authorization come first in every secrets handler (sx_api_begin), so a caller
 * without the permission learns nothing about which names exist.
 */
#include "server/api/api.h"

#include "ops/ops.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "server/metrics.h"

_Static_assert(SX_SECRETS_SCOPE_MAX == SX_AUTH_NAME_MAX, "a scope name is one size in secrets and auth");

/* ---- jobs ---------------------------------------------------------------------------------------- */

void sx_api_job_free(sx_job *job)
{
    free(job);
}

void *sx_api_job_new(sx_request *r, size_t size, void (*work)(sx_job *), void (*done)(sx_job *),
                     void (*release)(sx_job *))
{
    sx_api_job *j = calloc(1, size);
    if (!j) {
        sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
        return NULL;
    }
    j->r = r;
    j->server = r->server;
    j->super.work = work;
    j->super.done = done;
    j->super.release = release ? release : sx_api_job_free;
    return j;
}

/* ---- reads of the store -------------------------------------------------------------------------- */

static void read_job_release(sx_job *job)
{
    sx_read_job *j = (sx_read_job *)job;
    if (j->clear)
        j->clear(j);
    if (j->own_live)
        h2o_mem_clear_pool(&j->own); /* wipes what read() allocated wiped */
    free(j->if_none_match);
    free(j);
}

void *sx_read_job_new(sx_request *r, size_t size, const sx_secrets_place *p,
                      int (*read)(sx_read_job *, const sx_secrets_ctx *), void (*answer)(sx_read_job *),
                      void (*clear)(sx_read_job *))
{
    h2o_headers_t *hs = &r->req->headers;
    size_t inm = 0;
    for (ssize_t i = -1; (i = h2o_find_header(hs, H2O_TOKEN_IF_NONE_MATCH, i)) >= 0;)
        inm += hs->entries[i].value.len + 1;
    sx_read_job *j = sx_api_job_new(r, size, NULL, NULL, read_job_release);
    if (!j)
        return NULL;
    if (inm) {
        if (!(j->if_none_match = malloc(inm))) {
            free(j);
            sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
            return NULL;
        }
        /* Several If-None-Match fields are one list (RFC 9110, 5.3). */
        for (ssize_t i = -1; (i = h2o_find_header(hs, H2O_TOKEN_IF_NONE_MATCH, i)) >= 0;) {
            if (j->if_none_match_len)
                j->if_none_match[j->if_none_match_len++] = ',';
            memcpy(j->if_none_match + j->if_none_match_len, hs->entries[i].value.base, hs->entries[i].value.len);
            j->if_none_match_len += hs->entries[i].value.len;
        }
    }
    j->place = *p;
    j->read = read;
    j->answer = answer;
    j->clear = clear;
    return j;
}

static void read_job_work(sx_job *job)
{
    sx_read_job *j = (sx_read_job *)job;
    sx_secrets_ctx c;
    sx_api_secrets_ctx_pool(j->base.server, &c);
    j->rc = j->read(j, &c);
}

static void keep_pool_dispose(void *p)
{
    h2o_mem_clear_pool(p);
}

static void read_job_done(sx_job *job)
{
    sx_read_job *j = (sx_read_job *)job;
    h2o_req_t *req = j->base.r->req;
    /* The request takes the answer's memory over: it lives (and is wiped) until the request ends. */
    h2o_mem_pool_t *kept = h2o_mem_alloc_shared(&req->pool, sizeof(*kept), keep_pool_dispose);
    *kept = j->own;
    j->own_live = false;
    j->pool = kept;
    j->answer(j);
}

void sx_read_job_start(sx_request *r, sx_read_job *j)
{
    if (!sx_storage_has(r->server->storage, SX_STORAGE_CAP_SLOW_READS)) {
        sx_secrets_ctx c;
        sx_api_secrets_ctx(r, &c);
        j->pool = &r->req->pool;
        j->on_loop = true;
        j->rc = j->read(j, &c);
        j->answer(j);
        read_job_release(&j->base.super);
        return;
    }
    h2o_mem_init_pool(&j->own);
    j->own_live = true;
    j->pool = &j->own;
    j->base.super.work = read_job_work;
    j->base.super.done = read_job_done;
    sx_request_submit(r, &j->base.super);
}

bool sx_read_job_not_modified(sx_read_job *j, const sx_api_etag_buf *e)
{
    if (!j->if_none_match || !sx_api_etag_list_match(j->if_none_match, j->if_none_match_len, e->s, e->len, true))
        return false;
    j->etag = *e;
    j->has_etag = true;
    j->not_modified = true;
    return true;
}

void sx_read_job_send(sx_read_job *j)
{
    sx_request *r = j->base.r;
    sx_api_etag_add(r, j->has_etag ? &j->etag : NULL);
    if (j->not_modified)
        sx_send_not_modified(r);
    else
        sx_send_json_pooled(r, 200, j->body);
}

/* ---- the path and the caller --------------------------------------------------------------------- */

void sx_api_copy_param(char *dst, size_t cap, h2o_iovec_t v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.base, n);
    dst[n] = '\0';
}

void sx_api_place_of(sx_request *r, sx_secrets_place *ret)
{
    sx_api_copy_param(ret->org, sizeof(ret->org), r->params[0]);
    sx_api_copy_param(ret->project, sizeof(ret->project), r->params[1]);
    sx_api_copy_param(ret->env, sizeof(ret->env), r->params[2]);
    ret->name[0] = '\0';
    if (r->nparams > 3)
        sx_api_copy_param(ret->name, sizeof(ret->name), r->params[3]);
}

/*
 * The caller's token record when the loop's cache cannot answer and the store's reads are slow:
 * read on the worker pool, handed to the request, and the route's handler runs again from the
 * start (every handler authenticates before it does anything else), now verifying with it.
 */
typedef struct auth_fetch_job {
    sx_api_job base;
    char *value; /* the Authorization header value: a token, wiped in release */
    size_t vlen;
    sx_auth_fetch *fetch;
    int rc;
} auth_fetch_job;

static void auth_fetch_work(sx_job *job)
{
    auth_fetch_job *j = (auth_fetch_job *)job;
    j->rc = sx_auth_fetch_new(j->base.server->auth, j->value, j->vlen, &j->fetch);
}

static void auth_fetch_done(sx_job *job)
{
    auth_fetch_job *j = (auth_fetch_job *)job;
    sx_request *r = j->base.r;
    if (j->rc != 0) {
        sx_send_failure(r, SX_ERR_AUTH, j->rc == SX_AUTH_EMALFORMED ? j->rc : SX_AUTH_EUNAVAILABLE, NULL);
        return;
    }
    r->auth_fetch = j->fetch;
    j->fetch = NULL;
    sx_request_rerun(r);
}

static void auth_fetch_release(sx_job *job)
{
    auth_fetch_job *j = (auth_fetch_job *)job;
    if (j->value) {
        sodium_memzero(j->value, j->vlen);
        free(j->value);
    }
    sx_auth_fetch_free(j->fetch);
    free(j);
}

static void auth_fetch_submit(sx_request *r, const char *value, size_t vlen)
{
    auth_fetch_job *j = sx_api_job_new(r, sizeof(*j), auth_fetch_work, auth_fetch_done, auth_fetch_release);
    if (!j)
        return;
    if (!(j->value = malloc(vlen ? vlen : 1))) {
        auth_fetch_release(&j->base.super);
        sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
        return;
    }
    memcpy(j->value, value, vlen);
    j->vlen = vlen;
    sx_request_submit(r, &j->base.super);
}

bool sx_api_authenticate(sx_request *r, const char *value, size_t vlen, sx_auth_token *ret_principal)
{
    h2o_req_t *req = r->req;
    sx_server *s = r->server;
    /* The client, not the load balancer in front of it: failures are counted per client. */
    struct sockaddr_storage ss;
    if (sx_peer_request_client(s->config, req, &ss) == 0)
        ss.ss_family = AF_UNSPEC;
    unsigned retry_after = 0;
    sx_auth_token principal;
    int rc;
    if (sx_storage_has(s->storage, SX_STORAGE_CAP_SLOW_READS)) {
        rc = sx_auth_authenticate_nowait(s->auth, r->thread->auth_cache, s->throttle, (struct sockaddr *)&ss, value,
                                         vlen, sx_clock_wall_ms(), r->auth_fetch, &principal, &retry_after);
        if (rc == -EWOULDBLOCK) {
            auth_fetch_submit(r, value, vlen); /* answers, or runs the handler again */
            return false;
        }
    } else {
        rc = sx_auth_authenticate(s->auth, r->thread->auth_cache, s->throttle, (struct sockaddr *)&ss, value, vlen,
                                  sx_clock_wall_ms(), &principal, &retry_after);
    }
    if (rc == SX_AUTH_ERATELIMITED) {
        char buf[16];
        int n = snprintf(buf, sizeof(buf), "%u", retry_after ? retry_after : 1);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                       h2o_strdup(&req->pool, buf, (size_t)n).base, (size_t)n);
    }
    if (rc == SX_AUTH_EFORGED)
        sx_metrics_forged_record(SX_METRICS_FORGED_TOKEN); /* then 401 like any unknown token */
    if (rc != 0) {
        sx_send_failure(r, SX_ERR_AUTH, rc, NULL);
        return false;
    }
    if (s->audit) {
        /* Who asked, for the audit line (ids and labels only, never the token). */
        r->has_principal = true;
        memcpy(r->token_id, principal.id, sizeof(r->token_id));
        memcpy(r->token_label, principal.label, sizeof(r->token_label));
        r->token_role = sx_auth_role_name(principal.role);
    }
    *ret_principal = principal;
    return true;
}

bool sx_api_begin(sx_request *r, unsigned perm, sx_secrets_place *ret_place)
{
    h2o_req_t *req = r->req;
    sx_api_place_of(r, ret_place);
    ssize_t hi = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    sx_auth_token principal;
    if (!sx_api_authenticate(r, hi >= 0 ? req->headers.entries[hi].value.base : NULL,
                             hi >= 0 ? req->headers.entries[hi].value.len : 0, &principal))
        return false;
    if (sx_auth_check(&principal, perm, ret_place->org, ret_place->project, ret_place->env) != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "the token does not grant %s on this environment", sx_auth_perm_name(perm));
        sx_send_failure(r, SX_ERR_AUTH, SX_AUTH_EFORBIDDEN, msg);
        return false;
    }
    return true;
}

/* ---- bodies -------------------------------------------------------------------------------------- */

bool sx_require_json(sx_request *r)
{
    h2o_req_t *req = r->req;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        size_t n = 0;
        while (n < v.len && v.base[n] != ';' && v.base[n] != ' ' && v.base[n] != '\t')
            n++;
        if (h2o_lcstris(v.base, n, H2O_STRLIT("application/json")))
            return true;
    }
    sx_send_error(r, 415, "unsupported_media_type", "the body must be sent as Content-Type: application/json");
    return false;
}

bool sx_api_parse_body(sx_request *r, const sx_json_field *fields, size_t n, sx_json_value *out)
{
    char err[256];
    int rc = sx_json_parse(&r->req->pool, r->req->entity.base, r->req->entity.len, fields, n, out, err, sizeof(err));
    if (rc != 0) {
        sx_send_failure(r, SX_ERR_ANY, rc, err);
        return false;
    }
    return true;
}

/* ---- the secrets transactions' context ----------------------------------------------------------- */

static void time_storage(void *metrics, sx_secrets_io io, uint64_t ns)
{
    static const sx_metrics_storage_op ops[] = {
        [SX_SECRETS_IO_GET] = SX_METRICS_STORAGE_GET,
        [SX_SECRETS_IO_LIST] = SX_METRICS_STORAGE_LIST,
        [SX_SECRETS_IO_BATCH] = SX_METRICS_STORAGE_BATCH,
    };
    sx_metrics_storage(metrics, ops[io], ns);
}

void sx_api_secrets_ctx_pool(sx_server *s, sx_secrets_ctx *ret)
{
    *ret = (sx_secrets_ctx){
        .storage = s->storage,
        .crypto = s->crypto,
        .timed = time_storage,
        .timed_arg = NULL, /* the shared counters: any thread */
        .max_versions = s->config->max_versions,
        .recovery_window = s->config->recovery_window,
    };
    struct sx_sweeper *sw = __atomic_load_n(&s->sweeper, __ATOMIC_ACQUIRE);
    if (sw) {
        ret->destroyed = sx_sweeper_note_destroyed;
        ret->destroyed_arg = sw;
    }
}

void sx_api_secrets_ctx(sx_request *r, sx_secrets_ctx *ret)
{
    sx_api_secrets_ctx_pool(r->server, ret);
    ret->timed_arg = r->thread->metrics; /* this loop's own counters */
}

/* ---- entity tags and conditional reads ----------------------------------------------------------- */

static const char hex_digits[] = "0123456789abcdef";

void sx_api_etag_of_rev(uint64_t rev, sx_api_etag_buf *ret)
{
    ret->s[0] = ret->s[17] = '"';
    for (int i = 16; i >= 1; i--) {
        ret->s[i] = hex_digits[rev & 15];
        rev >>= 4;
    }
    ret->s[18] = '\0';
    ret->len = 18;
}

void sx_api_etag_of_tag(const uint8_t tag[SX_SECRETS_TAG_LEN], sx_api_etag_buf *ret)
{
    size_t n = 0;
    ret->s[n++] = '"';
    for (size_t i = 0; i < SX_SECRETS_TAG_LEN; i++) {
        ret->s[n++] = hex_digits[tag[i] >> 4];
        ret->s[n++] = hex_digits[tag[i] & 15];
    }
    ret->s[n++] = '"';
    ret->s[n] = '\0';
    ret->len = n;
}

void sx_api_etag_add(sx_request *r, const sx_api_etag_buf *e)
{
    if (!e)
        return;
    h2o_req_t *req = r->req;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, h2o_strdup(&req->pool, e->s, e->len).base,
                   e->len);
}

void sx_api_etag(sx_request *r, uint64_t rev)
{
    sx_api_etag_buf e;
    sx_api_etag_of_rev(rev, &e);
    sx_api_etag_add(r, &e);
}

/*
 * The field's grammar (RFC 9110, 8.8.3 and 13.1): "*" / #entity-tag, entity-tag = [ "W/" ]
 * DQUOTE *etagc DQUOTE. Entries are read one by one (a comma inside quotes belongs to the tag);
 * the weak comparison ignores W/, the strong one lets no weak tag match.
 */
bool sx_api_etag_list_match(const char *v, size_t len, const char *etag, size_t elen, bool weak)
{
    size_t i = 0;
    for (;;) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        if (i == len)
            return false;
        if (v[i] == '*')
            return true;
        bool is_weak = len - i >= 2 && v[i] == 'W' && v[i + 1] == '/';
        if (is_weak)
            i += 2;
        if (i == len || v[i] != '"')
            return false;
        const char *close = memchr(v + i + 1, '"', len - i - 1);
        if (!close)
            return false;
        size_t tl = (size_t)(close - (v + i)) + 1;
        if ((weak || !is_weak) && tl == elen && memcmp(v + i, etag, elen) == 0)
            return true;
        i += tl;
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (i < len && v[i] != ',')
            return false;
    }
}

bool sx_api_has_if_none_match(sx_request *r)
{
    return h2o_find_header(&r->req->headers, H2O_TOKEN_IF_NONE_MATCH, -1) >= 0;
}

bool sx_api_not_modified(sx_request *r, const sx_api_etag_buf *e)
{
    h2o_headers_t *hs = &r->req->headers;
    /* Several If-None-Match fields are one list (RFC 9110, 5.3). */
    for (ssize_t i = -1; (i = h2o_find_header(hs, H2O_TOKEN_IF_NONE_MATCH, i)) >= 0;) {
        if (sx_api_etag_list_match(hs->entries[i].value.base, hs->entries[i].value.len, e->s, e->len, true)) {
            sx_api_etag_add(r, e);
            sx_send_not_modified(r);
            return true;
        }
    }
    return false;
}

void sx_api_gen_uint(yajl_gen g, const char *key, uint64_t v)
{
    char num[24];
    if (key)
        sx_json_str(g, key);
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    yajl_gen_number(g, num, (size_t)n);
}

void sx_api_send_ops_failure(sx_request *r, sx_err_ctx ctx, int rc, const char *detail)
{
    const sx_http_error *e = sx_http_error_of(ctx, rc);
    if (e->status >= 500)
        sx_log(SX_LOG_WARN, "admin: %s", e->message ? e->message : detail ? detail : sx_crypto_strerror(rc));
    sx_send_failure(r, ctx, rc, detail);
}
