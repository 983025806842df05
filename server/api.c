/*
 * api.c - the secrets API: the seed's six endpoints under /{o}/{p}/envs/{env}/secrets, reveal of
 * one value and of an environment's values map.
 *
 * Every handler authenticates and authorizes first (sx_api_begin), so a caller without the
 * permission learns nothing about which names exist. Reads run inline on the event loop (storage
 * reads are served from RocksDB's caches; values decrypt with cached data keys). Writes run on the
 * worker pool (they fsync), as a read / check / conditional batch that retries when a concurrent
 * writer got there first; with If-Match the retry is a 412 instead.
 *
 * Plaintext values live briefly in three places, all accepted because the process must hold them
 * to encrypt or to answer: the request body buffer (h2o's, freed with the request), the write
 * job's copy (wiped when the job is released), and the response buffer of a reveal (allocated in
 * the request pool with a destructor that wipes it when the request ends).
 */
#include "server/api.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "crypto/crypto.h"
#include "audit/audit.h"
#include "server/metrics.h"
#include "common/testpoint.h"

#define LIST_LIMIT_MAX 1000
#define REVEAL_RETRIES 16 /* reads of a reveal while writers keep moving the secret's revision */

typedef struct api_ctx {
    char org[SX_AUTH_NAME_MAX + 1];
    char project[SX_AUTH_NAME_MAX + 1];
    char env[SX_AUTH_NAME_MAX + 1];
    char name[257];
    sx_auth_token principal;
} api_ctx;

static void copy_param(char *dst, size_t cap, h2o_iovec_t v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.base, n);
    dst[n] = '\0';
}

/* Authenticate the caller and check perm on the path's scope. Sends the error and returns false
 * when the request may not proceed. */
static bool api_begin(sx_request *r, unsigned perm, api_ctx *a)
{
    h2o_req_t *req = r->req;
    sx_server *s = r->server;
    copy_param(a->org, sizeof(a->org), r->params[0]);
    copy_param(a->project, sizeof(a->project), r->params[1]);
    copy_param(a->env, sizeof(a->env), r->params[2]);
    a->name[0] = '\0';
    if (r->nparams > 3)
        copy_param(a->name, sizeof(a->name), r->params[3]);

    ssize_t hi = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    const char *value = hi >= 0 ? req->headers.entries[hi].value.base : NULL;
    size_t vlen = hi >= 0 ? req->headers.entries[hi].value.len : 0;
    /* The client, not the load balancer in front of it: failures are counted per client. */
    struct sockaddr_storage ss;
    if (sx_peer_request_client(s->config, req, &ss) == 0)
        ss.ss_family = AF_UNSPEC;
    unsigned retry_after = 0;
    int rc = sx_auth_authenticate(s->auth, r->thread->auth_cache, s->throttle, (struct sockaddr *)&ss, value, vlen,
                                  sx_clock_wall_ms(), &a->principal, &retry_after);
    if (rc == SX_AUTH_ERATELIMITED) {
        char buf[16];
        int n = snprintf(buf, sizeof(buf), "%u", retry_after ? retry_after : 1);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                       h2o_strdup(&req->pool, buf, (size_t)n).base, (size_t)n);
        sx_send_error(r, 429, "rate_limited", "too many failed authentications from this address");
        return false;
    }
    if (rc == SX_AUTH_EFORGED)
        sx_metrics_forged_record(SX_METRICS_FORGED_TOKEN); /* then 401 like any unknown token */
    if (rc == SX_AUTH_EUNAVAILABLE) {
        sx_send_error(r, 503, "unavailable", "storage is not answering");
        return false;
    }
    if (rc != 0) {
        sx_send_error(r, 401, "unauthorized", "a valid bearer token is required");
        return false;
    }
    if (s->audit) {
        /* Who asked, for the audit line (ids and labels only, never the token). */
        r->has_principal = true;
        memcpy(r->token_id, a->principal.id, sizeof(r->token_id));
        memcpy(r->token_label, a->principal.label, sizeof(r->token_label));
        r->token_role = sx_auth_role_name(a->principal.role);
    }
    if (sx_auth_check(&a->principal, perm, a->org, a->project, a->env) != 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "the token does not grant %s on this environment", sx_auth_perm_name(perm));
        sx_send_error(r, 403, "forbidden", msg);
        return false;
    }
    return true;
}

bool sx_api_authorize(sx_request *r, unsigned perm, char *org, char *project, char *env, char *name)
{
    api_ctx a;
    if (!api_begin(r, perm, &a))
        return false;
    memcpy(org, a.org, sizeof(a.org));
    memcpy(project, a.project, sizeof(a.project));
    memcpy(env, a.env, sizeof(a.env));
    memcpy(name, a.name, sizeof(a.name));
    return true;
}

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

/* ---- ETags ------------------------------------------------------------------------------------- */

/* "%016x" of the revision, quoted: 18 bytes in the request pool. */
static void add_etag(h2o_req_t *req, uint64_t rev)
{
    static const char hex[] = "0123456789abcdef";
    char *buf = h2o_mem_alloc_pool(&req->pool, 18);
    buf[0] = buf[17] = '"';
    for (int i = 16; i >= 1; i--) {
        buf[i] = hex[rev & 15];
        rev >>= 4;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, buf, 18);
}

/* ---- Secret JSON --------------------------------------------------------------------------------- */

/*
 * Secret JSON is written straight into the response buffer rather than through a generator: it is
 * the hot path of get and list. Only the description can need escaping (names are restricted to
 * [A-Za-z0-9._-] and timestamps are fixed-form), and it is UTF-8 that the strict parser already
 * validated, so escaping is the JSON minimum: quote, backslash and control characters.
 */
#define SECRET_JSON_MAX(namelen, desclen) (128 + (namelen) + 6 * (desclen))

static size_t append(char *out, const char *lit, size_t len)
{
    memcpy(out, lit, len);
    return len;
}

#define APPEND_LIT(out, lit) append((out), (lit), sizeof(lit) - 1)

/* Write one Secret object at out (room for SECRET_JSON_MAX bytes); returns its length. */
static size_t write_secret(char *out, const char *name, size_t namelen, const sx_secret_meta_view *m)
{
    size_t n = APPEND_LIT(out, "{\"name\":\"");
    n += append(out + n, name, namelen);
    if (m->has_description) {
        n += APPEND_LIT(out + n, "\",\"description\":\"");
        n += sx_json_escape(out + n, m->description, m->description_len, false);
        n += m->has_value ? APPEND_LIT(out + n, "\",\"hasValue\":true,\"createdAt\":\"")
                          : APPEND_LIT(out + n, "\",\"hasValue\":false,\"createdAt\":\"");
    } else {
        n += m->has_value ? APPEND_LIT(out + n, "\",\"description\":null,\"hasValue\":true,\"createdAt\":\"")
                          : APPEND_LIT(out + n, "\",\"description\":null,\"hasValue\":false,\"createdAt\":\"");
    }
    n += sx_time_format(m->created_ms, out + n, 32);
    n += APPEND_LIT(out + n, "\",\"updatedAt\":\"");
    n += sx_time_format(m->updated_ms, out + n, 32);
    n += APPEND_LIT(out + n, "\"}");
    return n;
}

static void meta_view_of(sx_secret_meta_view *v, const sx_secret_meta *m)
{
    v->created_ms = m->created_ms;
    v->updated_ms = m->updated_ms;
    v->has_value = m->has_value;
    v->has_description = m->has_description;
    v->description_len = m->has_description ? m->description_len : 0;
    v->description = m->description;
}

size_t sx_secret_json_max(size_t namelen, size_t desclen)
{
    return SECRET_JSON_MAX(namelen, desclen);
}

size_t sx_secret_json_write(char *out, const char *name, size_t namelen, const sx_secret_meta *m)
{
    sx_secret_meta_view v;
    meta_view_of(&v, m);
    return write_secret(out, name, namelen, &v);
}

static void send_secret(sx_request *r, int status, const char *name, const sx_secret_meta_view *m, uint64_t rev)
{
    size_t namelen = strlen(name);
    char *buf = h2o_mem_alloc_pool(&r->req->pool, SECRET_JSON_MAX(namelen, m->description_len));
    size_t n = write_secret(buf, name, namelen, m);
    add_etag(r->req, rev);
    sx_send_json_pooled(r, status, h2o_iovec_init(buf, n));
}

/* Read and decode the metadata record in place: on success *ret_raw holds the record (free with
 * sx_storage_free(); m points into it). 0, -ENOENT, -EBADMSG or a storage error. */
static int read_meta(sx_request *r, const api_ctx *a, void **ret_raw, sx_secret_meta_view *m, uint64_t *ret_rev)
{
    char key[SX_KEY_MAX];
    size_t kl = sx_key_build(key, 'm', a->org, a->project, a->env, a->name);
    void *val = NULL;
    size_t vlen = 0;
    uint64_t t0 = sx_clock_mono_ns();
    int rc = sx_storage_get(r->server->storage, key, kl, &val, &vlen, ret_rev);
    sx_metrics_storage(r->thread->metrics, SX_METRICS_STORAGE_GET, sx_clock_mono_ns() - t0);
    if (rc == 0) {
        rc = sx_meta_view(m, val, vlen);
        if (rc == 0)
            *ret_raw = val;
        else
            sx_storage_free(val);
    }
    return rc;
}

static void send_storage_error(sx_request *r, int rc, const char *what)
{
    if (rc == -EBADMSG) {
        sx_log(SX_LOG_ERROR, "corrupt metadata record while %s", what);
        sx_send_error(r, 500, "internal", "a stored record is corrupt");
        return;
    }
    sx_log(SX_LOG_WARN, "storage error while %s: %s", what, sx_storage_strerror(rc));
    sx_send_error(r, 503, "unavailable", "storage is not answering");
}

/* ---- reads --------------------------------------------------------------------------------------- */

void sx_api_get(sx_request *r)
{
    api_ctx a;
    if (!api_begin(r, SX_AUTH_PERM_READ, &a))
        return;
    sx_secret_meta_view m;
    void *raw = NULL;
    uint64_t rev = 0;
    int rc = read_meta(r, &a, &raw, &m, &rev);
    if (rc == -ENOENT) {
        sx_send_error(r, 404, "not_found", "no secret of that name in this environment");
        return;
    }
    if (rc != 0) {
        send_storage_error(r, rc, "reading a secret");
        return;
    }
    send_secret(r, 200, a.name, &m, rev);
    sx_storage_free(raw);
}

/* Query of the list: limit=N (1..1000) and after=NAME, nothing else. */
static bool parse_list_query(sx_request *r, size_t *ret_limit, char *after, size_t aftercap)
{
    *ret_limit = 0;
    after[0] = '\0';
    const char *q = r->query.base;
    size_t len = r->query.len;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && q[i] != '&')
            i++;
        const char *eq = memchr(q + start, '=', i - start);
        size_t klen = eq ? (size_t)(eq - (q + start)) : i - start;
        const char *val = eq ? eq + 1 : q + i;
        size_t vlen = eq ? (size_t)(q + i - val) : 0;
        if (klen == 5 && memcmp(q + start, "limit", 5) == 0) {
            size_t n = 0;
            bool ok = vlen > 0 && vlen <= 4;
            for (size_t j = 0; ok && j < vlen; j++) {
                if (val[j] < '0' || val[j] > '9')
                    ok = false;
                else
                    n = n * 10 + (size_t)(val[j] - '0');
            }
            if (!ok || n < 1 || n > LIST_LIMIT_MAX) {
                sx_send_error(r, 400, "invalid_request", "query parameter \"limit\" must be an integer from 1 to 1000");
                return false;
            }
            *ret_limit = n;
        } else if (klen == 5 && memcmp(q + start, "after", 5) == 0) {
            bool ok = vlen >= 1 && vlen <= 256 && vlen < aftercap && !(vlen == 1 && val[0] == '.') &&
                      !(vlen == 2 && val[0] == '.' && val[1] == '.');
            for (size_t j = 0; ok && j < vlen; j++) {
                char c = val[j];
                ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                     c == '_' || c == '-';
            }
            if (!ok) {
                sx_send_error(r, 400, "invalid_request", "query parameter \"after\" must be a secret name");
                return false;
            }
            memcpy(after, val, vlen);
            after[vlen] = '\0';
        } else if (i > start) {
            sx_send_error(r, 400, "invalid_request",
                          "unknown query parameter; only \"limit\" and \"after\" are accepted");
            return false;
        }
        i++;
    }
    return true;
}

void sx_api_list(sx_request *r)
{
    api_ctx a;
    if (!api_begin(r, SX_AUTH_PERM_READ, &a))
        return;
    size_t limit = 0;
    char after[257];
    if (!parse_list_query(r, &limit, after, sizeof(after)))
        return;

    char prefix[SX_KEY_MAX];
    size_t pl = sx_key_build(prefix, 'm', a.org, a.project, a.env, NULL);
    char start[SX_KEY_MAX + 257];
    size_t sl = 0;
    if (after[0]) {
        memcpy(start, prefix, pl);
        size_t al = strlen(after);
        memcpy(start + pl, after, al);
        sl = pl + al;
    }
    /* A page sent before is sent again while the store is unchanged (page_cache.c); the change
     * sequence is read before the scan, so a write racing with it only makes the page stale. */
    uint64_t seq = 0;
    bool cacheable = sx_storage_change_seq(r->server->storage, &seq) == 0;
    char page_id[SX_PAGE_ID_MAX];
    size_t page_id_len = 0;
    if (cacheable) {
        memcpy(page_id, prefix, pl);
        page_id_len = pl + (size_t)snprintf(page_id + pl, sizeof(page_id) - pl, "\n%zu\n%s", limit, after);
        h2o_iovec_t cbody, clink;
        if (sx_page_cache_get(page_id, page_id_len, seq, &r->req->pool, &cbody, &clink)) {
            if (clink.len)
                h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_LINK, NULL, clink.base, clink.len);
            sx_send_json_pooled(r, 200, cbody);
            return;
        }
    }
    sx_storage_iter *it = NULL;
    uint64_t t0 = sx_clock_mono_ns();
    int rc =
        sx_storage_iter_new(r->server->storage, prefix, pl, sl ? start : NULL, sl, sl ? SX_STORAGE_ITER_AFTER : 0, &it);
    if (rc != 0) {
        send_storage_error(r, rc, "listing secrets");
        return;
    }
    /* Grown by doubling in the request pool; each record needs at most SECRET_JSON_MAX bytes. The
     * first size holds a page of 100 secrets with descriptions of a sentence without growing. */
    size_t cap = 32768, len = 0;
    char *buf = h2o_mem_alloc_pool(&r->req->pool, cap);
    buf[len++] = '[';
    size_t count = 0;
    bool more = false;
    const char *last = NULL; /* the last name written, inside buf */
    size_t lastlen = 0;
    const void *k, *v;
    size_t klen, vlen;
    sx_secret_meta_view m;
    while ((rc = sx_storage_iter_next(it, &k, &klen, &v, &vlen, NULL)) == 0) {
        if (limit && count == limit) {
            more = true;
            break;
        }
        if (klen <= pl || klen - pl > 256 || sx_meta_view(&m, v, vlen) != 0) {
            rc = -EBADMSG;
            break;
        }
        size_t namelen = klen - pl;
        size_t need = SECRET_JSON_MAX(namelen, m.description_len) + 2;
        if (len + need > cap) {
            while (len + need > cap)
                cap *= 2;
            char *nb = h2o_mem_alloc_pool(&r->req->pool, cap);
            memcpy(nb, buf, len);
            buf = nb;
        }
        if (count)
            buf[len++] = ',';
        last = buf + len + sizeof("{\"name\":\"") - 1;
        lastlen = namelen;
        len += write_secret(buf + len, (const char *)k + pl, namelen, &m);
        count++;
    }
    sx_storage_iter_free(it);
    sx_metrics_storage(r->thread->metrics, SX_METRICS_STORAGE_LIST, sx_clock_mono_ns() - t0);
    if (rc < 0) {
        send_storage_error(r, rc, "listing secrets");
        return;
    }
    buf[len++] = ']';
    h2o_iovec_t body = h2o_iovec_init(buf, len);
    h2o_iovec_t link = {NULL, 0};
    if (more) {
        char lbuf[1024];
        int n = snprintf(lbuf, sizeof(lbuf), "</%s/%s/envs/%s/secrets?limit=%zu&after=%.*s>; rel=\"next\"", a.org,
                         a.project, a.env, limit, (int)lastlen, last ? last : "");
        link = h2o_strdup(&r->req->pool, lbuf, (size_t)n);
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_LINK, NULL, link.base, link.len);
    }
    if (cacheable)
        sx_page_cache_put(page_id, page_id_len, seq, body, link);
    sx_send_json_pooled(r, 200, body);
}

/* ---- reveal ---------------------------------------------------------------------------------------- */

/* A buffer in the request pool that is wiped when the request ends. */
typedef struct wiped_buf {
    size_t len;
    char data[];
} wiped_buf;

static void wipe_dispose(void *p)
{
    wiped_buf *b = p;
    sodium_memzero(b->data, b->len);
}

char *sx_pool_alloc_wiped(h2o_mem_pool_t *pool, size_t len)
{
    wiped_buf *b = h2o_mem_alloc_shared(pool, sizeof(*b) + len + 1, wipe_dispose);
    b->len = len + 1;
    return b->data;
}

/* yajl allocator that wipes what it frees, for generators that hold plaintext values. */
typedef struct wipe_hdr {
    size_t len;
    max_align_t align[];
} wipe_hdr;

static void *wipe_malloc(void *ctx, size_t sz)
{
    (void)ctx;
    wipe_hdr *h = malloc(sizeof(*h) + sz);
    if (!h)
        return NULL;
    h->len = sz;
    return h->align;
}

static void wipe_free(void *ctx, void *p)
{
    (void)ctx;
    if (!p)
        return;
    wipe_hdr *h = (wipe_hdr *)((char *)p - offsetof(wipe_hdr, align));
    sodium_memzero(p, h->len);
    free(h);
}

static void *wipe_realloc(void *ctx, void *p, size_t sz)
{
    if (!p)
        return wipe_malloc(ctx, sz);
    wipe_hdr *h = (wipe_hdr *)((char *)p - offsetof(wipe_hdr, align));
    void *np = wipe_malloc(ctx, sz);
    if (!np)
        return NULL;
    memcpy(np, p, h->len < sz ? h->len : sz);
    wipe_free(ctx, p);
    return np;
}

static yajl_alloc_funcs wipe_funcs = {wipe_malloc, wipe_realloc, wipe_free, NULL};

h2o_iovec_t sx_json_gen_finish_wiped(yajl_gen g, h2o_mem_pool_t *pool)
{
    const unsigned char *buf;
    size_t len = 0;
    h2o_iovec_t out = {NULL, 0};
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
        out.base = sx_pool_alloc_wiped(pool, len);
        memcpy(out.base, buf, len);
        out.len = len;
    }
    yajl_gen_free(g);
    return out;
}

yajl_gen sx_json_gen_wiped(void)
{
    /* No output validation: values and names were checked as strict UTF-8 on the way in. */
    return yajl_gen_alloc(&wipe_funcs);
}

/* The body lives in wiped request-pool memory; sent without a further (unwiped) copy. */
static void send_values_body(sx_request *r, h2o_iovec_t body)
{
    sx_send_json_pooled(r, 200, body);
}

/*
 * A reveal is audited before its value leaves: an intent line, then the answer (whose "done" line
 * sx_request_finish() queues). Under fail_closed the intent line must be on file first, so a
 * worker-pool job waits for the audit writer (the loop never does) and the value is sent only
 * when it confirms; otherwise the answer is 503 and nothing was revealed. Under fail_open the
 * intent line is queued and the value sent at once.
 */
typedef struct reveal_job {
    sx_job super;
    sx_request *r;
    sx_audit *audit;
    h2o_iovec_t body; /* request-pool memory: only touched in done(), while the request lives */
    sx_audit_copy who;
    int rc;
} reveal_job;

static void reveal_work(sx_job *job)
{
    reveal_job *j = (reveal_job *)job;
    sx_audit_rec rec;
    sx_audit_copy_rec(&j->who, &rec);
    rec.intent = true;
    j->rc = sx_audit_log_sync(j->audit, &rec);
}

static void reveal_done(sx_job *job)
{
    reveal_job *j = (reveal_job *)job;
    if (j->rc == 0) {
        send_values_body(j->r, j->body);
        return;
    }
    sx_log(SX_LOG_ERROR, "reveal refused: the audit log cannot be written (%s)", strerror(-j->rc));
    sx_send_error(j->r, 503, "unavailable", "the audit log cannot be written");
}

static void reveal_release(sx_job *job)
{
    free(job);
}

static void send_revealed(sx_request *r, const api_ctx *a, h2o_iovec_t body)
{
    sx_audit *au = r->server->audit;
    if (!au) {
        send_values_body(r, body);
        return;
    }
    char client[64], scope[200];
    snprintf(scope, sizeof(scope), "%s/%s/%s", a->org, a->project, a->env);
    sx_audit_rec rec;
    sx_request_audit_rec(r, &rec, client, scope, a->name[0] ? a->name : NULL);
    rec.intent = true;
    if (!sx_audit_fail_closed(au)) {
        sx_audit_log(au, r->thread->index, &rec);
        send_values_body(r, body);
        return;
    }
    reveal_job *j = calloc(1, sizeof(*j));
    if (!j) {
        sx_send_error(r, 503, "unavailable", "out of memory");
        return;
    }
    j->r = r;
    j->audit = au;
    j->body = body;
    sx_audit_copy_set(&j->who, &rec);
    j->super.work = reveal_work;
    j->super.done = reveal_done;
    j->super.release = reveal_release;
    sx_request_submit(r, &j->super);
}

static void send_crypto_error(sx_request *r, int rc)
{
    /* A data key that is not cached is read from storage first: when that read fails, the store
     * is what is not answering (503), not the record that is broken (500). */
    bool broken = (rc <= SX_CRYPTO_EFORGED && rc > SX_CRYPTO_EFORGED - 100) || rc == -ENOKEY || rc == -EBADMSG ||
                  rc == -ENOBUFS || rc == -EINVAL;
    if (!broken) {
        send_storage_error(r, rc, "reading a data key");
        return;
    }
    sx_log(SX_LOG_ERROR, "a stored value could not be decrypted: %s", sx_crypto_strerror(rc));
    sx_send_error(r, 500, "internal", "a stored value could not be decrypted");
}

/*
 * Reveal answers are written straight into wiped request-pool memory (no generator, whose buffers
 * would be more copies of the plaintext to wipe). A value is decrypted in place, where its JSON
 * string goes; it is escaped afterwards only when it holds a byte that needs it, from a wiped copy.
 * The output is byte for byte what the yajl generator wrote before (upper-case \u00XX escapes).
 */
typedef struct wiped_out {
    h2o_mem_pool_t *pool;
    char *buf;
    size_t len, cap;
} wiped_out;

/* Make room for need more bytes; a grown buffer is a new wiped allocation (the old one is wiped
 * when the request ends, like every other). */
static void wiped_reserve(wiped_out *o, size_t need)
{
    if (o->len + need <= o->cap)
        return;
    size_t cap = o->cap * 2;
    if (cap < o->len + need)
        cap = o->len + need;
    char *nb = sx_pool_alloc_wiped(o->pool, cap);
    if (o->len)
        memcpy(nb, o->buf, o->len);
    o->buf = nb;
    o->cap = cap;
}

static void wiped_lit(wiped_out *o, const char *s, size_t len)
{
    memcpy(o->buf + o->len, s, len);
    o->len += len;
}

/* Decrypt blob as a JSON string's contents at the end of o (quotes not included). 0 or the
 * crypto error. */
static int wiped_decrypt_string(sx_request *r, wiped_out *o, const sx_crypto_place *place, const uint8_t *blob,
                                size_t blen)
{
    size_t cap = SX_CRYPTO_VALUE_PLAIN_LEN(blen), plen = 0;
    wiped_reserve(o, cap + 32);
    char *at = o->buf + o->len;
    int rc = sx_crypto_value_decrypt(r->server->crypto, at, cap, &plen, place, blob, blen);
    if (rc != 0)
        return rc;
    size_t elen = sx_json_escaped_len(at, plen);
    if (elen == plen) {
        o->len += plen;
        return 0;
    }
    char *copy = sx_pool_alloc_wiped(o->pool, plen);
    memcpy(copy, at, plen);
    sodium_memzero(at, plen);
    wiped_reserve(o, elen + 32);
    o->len += sx_json_escape(o->buf + o->len, copy, plen, true);
    sodium_memzero(copy, plen);
    return 0;
}

void sx_api_reveal(sx_request *r)
{
    api_ctx a;
    if (!api_begin(r, SX_AUTH_PERM_REVEAL, &a))
        return;
    /* The metadata (ETag, updatedAt) and the value are two records that every set-value writes in
     * one batch. Read the metadata, the value, then the metadata again: when its revision did not
     * move, no write came in between (revisions are never handed out twice), so the value is the
     * one of that revision. Otherwise read again. */
    sx_secret_meta_view m;
    void *raw = NULL, *blob = NULL;
    size_t blen = 0;
    uint64_t rev = 0;
    int64_t updated_ms = 0;
    int rc = -EAGAIN;
    char key[SX_KEY_MAX];
    size_t kl = sx_key_build(key, 'v', a.org, a.project, a.env, a.name);
    for (int attempt = 0; attempt < REVEAL_RETRIES && rc == -EAGAIN; attempt++) {
        sx_storage_free(blob);
        blob = NULL;
        rc = read_meta(r, &a, &raw, &m, &rev);
        updated_ms = rc == 0 ? m.updated_ms : 0;
        if (rc == 0 && !m.has_value)
            rc = -ENOENT;
        sx_storage_free(raw);
        raw = NULL;
        if (rc != 0)
            break;
        sx_testpoint("reveal.value");
        rc = sx_storage_get(r->server->storage, key, kl, &blob, &blen, NULL);
        if (rc != 0)
            break;
        uint64_t rev2 = 0;
        rc = read_meta(r, &a, &raw, &m, &rev2);
        sx_storage_free(raw);
        raw = NULL;
        if (rc == 0 && rev2 != rev)
            rc = -EAGAIN;
    }
    if (rc != 0) {
        sx_storage_free(blob);
        blob = NULL;
    }
    if (rc == -EAGAIN) {
        sx_send_error(r, 503, "unavailable", "too much contention on this secret; retry");
        return;
    }
    if (rc == -ENOENT) {
        sx_send_error(r, 404, "not_found", "no secret of that name with a value in this environment");
        return;
    }
    if (rc != 0) {
        send_storage_error(r, rc, "revealing a secret");
        return;
    }
    sx_crypto_place place = {a.org, a.project, a.env, a.name};
    size_t namelen = strlen(a.name);
    wiped_out o = {.pool = &r->req->pool};
    wiped_reserve(&o, 96 + namelen + SX_CRYPTO_VALUE_PLAIN_LEN(blen)); /* all of it, unless escaped */
    wiped_lit(&o, "{\"name\":\"", 9);
    wiped_lit(&o, a.name, namelen);
    wiped_lit(&o, "\",\"value\":\"", 11);
    rc = wiped_decrypt_string(r, &o, &place, blob, blen);
    sx_storage_free(blob);
    if (rc != 0) {
        send_crypto_error(r, rc);
        return;
    }
    wiped_reserve(&o, 48);
    wiped_lit(&o, "\",\"updatedAt\":\"", 15);
    o.len += sx_time_format(updated_ms, o.buf + o.len, 32);
    wiped_lit(&o, "\"}", 2);
    add_etag(r->req, rev);
    send_revealed(r, &a, h2o_iovec_init(o.buf, o.len));
}

void sx_api_values(sx_request *r)
{
    api_ctx a;
    if (!api_begin(r, SX_AUTH_PERM_REVEAL, &a))
        return;
    char prefix[SX_KEY_MAX];
    size_t pl = sx_key_build(prefix, 'v', a.org, a.project, a.env, NULL);
    sx_storage_iter *it = NULL;
    int rc = sx_storage_iter_new(r->server->storage, prefix, pl, NULL, 0, 0, &it);
    if (rc != 0) {
        send_storage_error(r, rc, "reading values");
        return;
    }
    wiped_out o = {.pool = &r->req->pool};
    wiped_reserve(&o, 8192);
    wiped_lit(&o, "{", 1);
    const void *k, *v;
    size_t klen, vlen;
    char name[257];
    sx_crypto_place place = {a.org, a.project, a.env, name};
    while ((rc = sx_storage_iter_next(it, &k, &klen, &v, &vlen, NULL)) == 0) {
        if (klen <= pl || klen - pl > 256) {
            rc = -EBADMSG;
            break;
        }
        size_t namelen = klen - pl;
        memcpy(name, (const char *)k + pl, namelen);
        name[namelen] = '\0';
        wiped_reserve(&o, namelen + 8);
        if (o.len > 1)
            wiped_lit(&o, ",", 1);
        wiped_lit(&o, "\"", 1);
        wiped_lit(&o, name, namelen);
        wiped_lit(&o, "\":\"", 3);
        rc = wiped_decrypt_string(r, &o, &place, v, vlen);
        if (rc != 0)
            break;
        wiped_lit(&o, "\"", 1);
    }
    sx_storage_iter_free(it);
    if (rc < 0) {
        if (rc <= SX_CRYPTO_EFORGED && rc > SX_CRYPTO_EFORGED - 100)
            send_crypto_error(r, rc);
        else
            send_storage_error(r, rc, "reading values");
        return;
    }
    wiped_reserve(&o, 1);
    wiped_lit(&o, "}", 1);
    send_revealed(r, &a, h2o_iovec_init(o.buf, o.len));
}
