/*
 * secrets.c - the secrets resource: GET (list) and POST (create) on /{o}/{p}/envs/{env}/secrets,
 * GET, PUT (description) and DELETE on /{o}/{p}/envs/{env}/secrets/{name}; and the write jobs that
 * values.c shares.
 *
 * Reads are read jobs (api.h): inline on the event loop when the store answers from memory or local
 * files, on the worker pool when it is a database. A write is validated
 * on the loop (auth, media type, strict JSON, the field rules) and handed to the worker pool as a
 * job that owns copies of everything it needs, since the request may go away while it runs; the
 * transaction itself is secrets/'s.
 */
#include "server/api/api.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

#define LIST_LIMIT_MAX 1000

/* ---- the Secret object --------------------------------------------------------------------------- */

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

size_t sx_secret_json_max(size_t namelen, size_t desclen)
{
    return SECRET_JSON_MAX(namelen, desclen);
}

size_t sx_secret_json_write(char *out, const char *name, size_t namelen, const sx_secret_meta *m)
{
    sx_secret_meta_view v;
    sx_meta_view_of(&v, m);
    return write_secret(out, name, namelen, &v);
}

static void send_read_failure(sx_request *r, int rc, const char *what)
{
    if (rc == -EBADMSG)
        sx_log(SX_LOG_ERROR, "corrupt metadata record while %s", what);
    else if (rc != -ENOENT)
        sx_log(SX_LOG_WARN, "storage error while %s: %s", what, sx_storage_strerror(rc));
    sx_send_failure(r, SX_ERR_SECRET, rc, NULL);
}

/* ---- reads --------------------------------------------------------------------------------------- */

static int get_read(sx_read_job *j, const sx_secrets_ctx *c)
{
    sx_secret_meta_view m;
    void *raw = NULL;
    uint64_t rev = 0;
    int rc = sx_secrets_get(c, &j->place, &raw, &m, &rev);
    if (rc != 0)
        return rc;
    size_t namelen = strlen(j->place.name);
    char *buf = h2o_mem_alloc_pool(j->pool, SECRET_JSON_MAX(namelen, m.description_len));
    j->body = h2o_iovec_init(buf, write_secret(buf, j->place.name, namelen, &m));
    sx_storage_free(raw);
    sx_api_etag_of_rev(rev, &j->etag);
    j->has_etag = true;
    return 0;
}

/* A metadata read, with where its answer is kept for the next read while the store is unchanged. */
typedef struct get_job {
    sx_read_job base;
    bool cacheable;
    uint64_t seq;
    size_t id_len;
    char id[SX_PAGE_ID_MAX];
} get_job;

static void get_answer(sx_read_job *rj)
{
    get_job *j = (get_job *)rj;
    if (rj->rc != 0) {
        send_read_failure(rj->base.r, rj->rc, "reading a secret");
        return;
    }
    if (j->cacheable)
        sx_meta_cache_put(j->id, j->id_len, j->seq, rj->body, h2o_iovec_init(rj->etag.s, rj->etag.len));
    sx_read_job_send(rj);
}

void sx_api_get(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_READ, &p))
        return;
    /* An answer sent before is sent again while the store is unchanged (page_cache.c), as list
     * pages are: the change sequence is read before the record, so a racing write only makes the
     * kept answer stale, never wrong. Shared stores have no change sequence and are not cached. */
    uint64_t seq = 0;
    bool cacheable = sx_storage_change_seq(r->server->storage, &seq) == 0;
    char id[SX_PAGE_ID_MAX];
    size_t id_len = 0;
    if (cacheable) {
        /* "org/project/env\nname", put together by hand: this runs for every metadata read. */
        const char *parts[4] = {p.org, p.project, p.env, p.name};
        const char seps[4] = {'/', '/', '\n', '\0'};
        for (size_t i = 0; i < 4 && cacheable; i++) {
            size_t l = strlen(parts[i]);
            if (id_len + l + 1 > sizeof(id)) {
                cacheable = false;
                break;
            }
            memcpy(id + id_len, parts[i], l);
            id_len += l;
            if (seps[i])
                id[id_len++] = seps[i];
        }
    }
    if (cacheable) {
        h2o_iovec_t cbody, cetag;
        if (sx_meta_cache_get(id, id_len, seq, &r->req->pool, &cbody, &cetag)) {
            h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_ETAG, NULL, cetag.base, cetag.len);
            sx_send_json_pooled(r, 200, cbody);
            return;
        }
    }
    get_job *j = sx_read_job_new(r, sizeof(*j), &p, get_read, get_answer, NULL);
    if (!j)
        return;
    j->cacheable = cacheable;
    if (cacheable) {
        memcpy(j->id, id, id_len);
        j->id_len = id_len;
        j->seq = seq;
    }
    sx_read_job_start(r, &j->base);
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
            if (vlen >= aftercap || !sx_secrets_name_valid(val, vlen)) {
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

/* A page of the list: what the query asked, and the Link to the next page. */
typedef struct list_job {
    sx_read_job base;
    size_t limit;
    char after[SX_SECRETS_NAME_MAX + 1];
    bool cacheable; /* the page goes into the loop's page cache under page_id at seq */
    uint64_t seq;
    char page_id[SX_PAGE_ID_MAX];
    size_t page_id_len;
    h2o_iovec_t link; /* in the job's pool; len 0 = the last page */
} list_job;

static int list_read(sx_read_job *rj, const sx_secrets_ctx *c)
{
    list_job *j = (list_job *)rj;
    sx_secrets_scan scan;
    int rc = sx_secrets_list_open(&scan, c, &rj->place, j->after);
    if (rc != 0)
        return rc;
    /* Grown by doubling; each record needs at most SECRET_JSON_MAX bytes. The first size holds a
     * page of 100 secrets with descriptions of a sentence without growing. */
    size_t cap = 32768, len = 0;
    char *buf = h2o_mem_alloc_pool(rj->pool, cap);
    buf[len++] = '[';
    size_t count = 0;
    bool more = false;
    const char *last = NULL; /* the last name written, inside buf */
    size_t lastlen = 0;
    const char *name;
    size_t namelen;
    sx_secret_meta_view m;
    while ((rc = sx_secrets_list_next(&scan, &name, &namelen, &m)) == 0) {
        if (j->limit && count == j->limit) {
            more = true;
            break;
        }
        size_t need = SECRET_JSON_MAX(namelen, m.description_len) + 2;
        if (len + need > cap) {
            while (len + need > cap)
                cap *= 2;
            char *nb = h2o_mem_alloc_pool(rj->pool, cap);
            memcpy(nb, buf, len);
            buf = nb;
        }
        if (count)
            buf[len++] = ',';
        last = buf + len + sizeof("{\"name\":\"") - 1;
        lastlen = namelen;
        len += write_secret(buf + len, name, namelen, &m);
        count++;
    }
    sx_secrets_scan_close(&scan);
    if (rc < 0)
        return rc;
    buf[len++] = ']';
    rj->body = h2o_iovec_init(buf, len);
    if (more) {
        const sx_secrets_place *p = &rj->place;
        char lbuf[1024];
        int n = snprintf(lbuf, sizeof(lbuf), "</%s/%s/envs/%s/secrets?limit=%zu&after=%.*s>; rel=\"next\"", p->org,
                         p->project, p->env, j->limit, (int)lastlen, last ? last : "");
        j->link = h2o_strdup(rj->pool, lbuf, (size_t)n);
    }
    return 0;
}

static void list_answer(sx_read_job *rj)
{
    list_job *j = (list_job *)rj;
    sx_request *r = rj->base.r;
    if (rj->rc != 0) {
        send_read_failure(r, rj->rc, "listing secrets");
        return;
    }
    if (j->link.len)
        h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_LINK, NULL, j->link.base, j->link.len);
    if (j->cacheable)
        sx_page_cache_put(j->page_id, j->page_id_len, j->seq, rj->body, j->link);
    sx_read_job_send(rj);
}

void sx_api_list(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_READ, &p))
        return;
    list_job *j = sx_read_job_new(r, sizeof(*j), &p, list_read, list_answer, NULL);
    if (!j)
        return;
    if (!parse_list_query(r, &j->limit, j->after, sizeof(j->after))) {
        j->base.base.super.release(&j->base.base.super);
        return;
    }

    /* A page sent before is sent again while the store is unchanged (page_cache.c); the change
     * sequence is read before the scan, so a write racing with it only makes the page stale. */
    j->cacheable = sx_storage_change_seq(r->server->storage, &j->seq) == 0;
    if (j->cacheable) {
        int n =
            snprintf(j->page_id, sizeof(j->page_id), "%s/%s/%s\n%zu\n%s", p.org, p.project, p.env, j->limit, j->after);
        j->page_id_len = n < 0 || (size_t)n >= sizeof(j->page_id) ? 0 : (size_t)n;
        j->cacheable = j->page_id_len > 0;
    }
    if (j->cacheable) {
        h2o_iovec_t cbody, clink;
        if (sx_page_cache_get(j->page_id, j->page_id_len, j->seq, &r->req->pool, &cbody, &clink)) {
            j->base.base.super.release(&j->base.base.super);
            if (clink.len)
                h2o_add_header(&r->req->pool, &r->req->res.headers, H2O_TOKEN_LINK, NULL, clink.base, clink.len);
            sx_send_json_pooled(r, 200, cbody);
            return;
        }
    }
    sx_read_job_start(r, &j->base);
}

/* ---- write jobs ---------------------------------------------------------------------------------- */

/* An If-Match list: '*' or the ETag of rev among its entries. */
static bool if_match_ok(void *arg, uint64_t rev)
{
    const sx_write_job *j = arg;
    sx_api_etag_buf want;
    sx_api_etag_of_rev(rev, &want);
    return sx_api_etag_list_match(j->if_match, j->if_match_len, want.s, want.len, false);
}

const sx_secrets_cond *sx_write_job_cond(sx_write_job *j, sx_secrets_cond *buf)
{
    if (!j->if_match)
        return NULL;
    *buf = (sx_secrets_cond){if_match_ok, j};
    return buf;
}

sx_write_job *sx_write_job_new(sx_request *r, size_t size, const sx_secrets_place *p, void (*work)(sx_job *),
                               void (*done)(sx_job *), void (*release)(sx_job *))
{
    sx_write_job *j = sx_api_job_new(r, size, work, done, release);
    if (!j)
        return NULL;
    j->place = *p;
    ssize_t hi = h2o_find_header(&r->req->headers, H2O_TOKEN_IF_MATCH, -1);
    if (hi >= 0) {
        h2o_iovec_t v = r->req->headers.entries[hi].value;
        j->if_match = malloc(v.len + 1);
        if (!j->if_match) {
            free(j);
            sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
            return NULL;
        }
        memcpy(j->if_match, v.base, v.len);
        j->if_match[v.len] = '\0';
        j->if_match_len = v.len;
    }
    return j;
}

/* Under fail_closed a write parks until its intent line is on file (audit_wait.c): the job goes
 * to the pool only then, so a pool thread never waits for the audit writer. */
typedef struct write_wait {
    sx_audit_wait base;
    sx_write_job *job; /* NULL once submitted */
} write_wait;

static void write_proceed(sx_audit_wait *w, sx_request *r)
{
    write_wait *ww = (write_wait *)w;
    sx_write_job *j = ww->job;
    ww->job = NULL;
    j->intent_on_file = true;
    sx_request_submit(r, &j->base.super);
}

static void write_wait_release(sx_audit_wait *w)
{
    write_wait *ww = (write_wait *)w;
    if (ww->job)
        ww->job->base.super.release(&ww->job->base.super);
    free(ww);
}

void sx_write_job_submit(sx_request *r, sx_write_job *j)
{
    if (r->server->audit) {
        char client[64], scope[200];
        snprintf(scope, sizeof(scope), "%s/%s/%s", j->place.org, j->place.project, j->place.env);
        sx_audit_rec rec;
        sx_request_audit_rec(r, &rec, client, scope, j->place.name[0] ? j->place.name : NULL);
        sx_audit_copy_set(&j->who, &rec);
        j->audit = r->server->audit;
        if (sx_audit_fail_closed(j->audit)) {
            write_wait *w = calloc(1, sizeof(*w));
            if (!w) {
                sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
                j->base.super.release(&j->base.super);
                return;
            }
            w->base.proceed = write_proceed;
            w->base.release = write_wait_release;
            w->job = j;
            rec.intent = true;
            sx_audit_wait_start(r, &w->base, &rec);
            return;
        }
    }
    sx_request_submit(r, &j->base.super);
}

/*
 * The audit lines of a write are the job's, not the request's, so that they are written even when
 * the client goes away mid-write: an intent line before anything is read or changed (under
 * fail_closed already on file before the job was submitted), the outcome line after.
 */
void sx_write_job_run(sx_write_job *j, int (*apply)(sx_write_job *j, const sx_secrets_ctx *c), int ok_status)
{
    sx_audit_rec rec;
    j->rc_ctx = SX_ERR_SECRET;
    j->ran = true;
    if (j->audit) {
        sx_audit_copy_rec(&j->who, &rec);
        rec.intent = true;
        if (!j->intent_on_file)
            sx_audit_log(j->audit, SX_AUDIT_ANY_THREAD, &rec);
    }
    sx_secrets_ctx c;
    sx_api_secrets_ctx_pool(j->base.server, &c);
    j->rc = apply(j, &c);
    if (j->audit) {
        rec.intent = false;
        rec.status = j->rc == 0 ? ok_status : sx_http_error_of(SX_ERR_SECRET, j->rc)->status;
        sx_audit_log(j->audit, SX_AUDIT_ANY_THREAD, &rec);
    }
}

bool sx_write_job_failed(sx_write_job *j)
{
    sx_request *r = j->base.r;
    r->audit_done = true; /* the job wrote the outcome line */
    if (j->rc == 0)
        return false;
    const sx_http_error *e = sx_http_error_of(j->rc_ctx, j->rc);
    if (e->status >= 500)
        sx_log(SX_LOG_WARN, "write to \"%s/%s/%s/%s\" failed: %s", j->place.org, j->place.project, j->place.env,
               j->place.name, e->message);
    sx_send_failure(r, j->rc_ctx, j->rc, NULL);
    return true;
}

void sx_write_job_release(sx_job *job)
{
    sx_write_job *j = (sx_write_job *)job;
    if (j->audit && j->intent_on_file && !j->ran) {
        /* cancelled before it ran (the client went away): the intent line is on file, so say
         * that nothing was changed */
        sx_audit_rec rec;
        sx_audit_copy_rec(&j->who, &rec);
        rec.status = SX_AUDIT_STATUS_GONE;
        sx_audit_log(j->audit, SX_AUDIT_ANY_THREAD, &rec);
    }
    free(j->if_match);
    sodium_memzero(j, sizeof(*j));
    free(j);
}

/* ---- create, update, delete ---------------------------------------------------------------------- */

/* Create and update: the description from the body. */
typedef struct describe_job {
    sx_write_job w;
    bool desc_null;
    char description[SX_SECRETS_DESCRIPTION_MAX + 1];
    size_t description_len;
} describe_job;

static const sx_json_field secret_fields[] = {
    {"kind", SX_JSON_STRING, "the string \"secret\"", true},
    {"name", SX_JSON_STRING, "a string", true},
    {"description", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
};

/* Parse and check a create/update body into the job. */
static bool parse_secret_body(sx_request *r, describe_job *j, const char *path_name)
{
    sx_json_value v[3];
    if (!sx_api_parse_body(r, secret_fields, 3, v))
        return false;
    if (v[0].len != 6 || memcmp(v[0].str, "secret", 6) != 0) {
        sx_send_error(r, 400, "invalid_request", "field \"kind\" must be \"secret\"");
        return false;
    }
    if (!sx_secrets_name_valid(v[1].str, v[1].len)) {
        sx_send_error(r, 400, "invalid_request",
                      "field \"name\" must be 1-256 characters of [A-Za-z0-9._-], and not \".\" or \"..\"");
        return false;
    }
    if (path_name && (strlen(path_name) != v[1].len || memcmp(path_name, v[1].str, v[1].len) != 0)) {
        sx_send_error(r, 400, "invalid_request", "field \"name\" must equal the name in the path");
        return false;
    }
    if (v[2].present && !v[2].is_null && v[2].len > SX_SECRETS_DESCRIPTION_MAX) {
        sx_send_error(r, 400, "invalid_request", "field \"description\" must be at most 1024 bytes");
        return false;
    }
    memcpy(j->w.place.name, v[1].str, v[1].len);
    j->w.place.name[v[1].len] = '\0';
    j->desc_null = !v[2].present || v[2].is_null;
    if (!j->desc_null) {
        memcpy(j->description, v[2].str, v[2].len);
        j->description_len = v[2].len;
    }
    return true;
}

static const char *description_of(const describe_job *j)
{
    return j->desc_null ? NULL : j->description;
}

/* Answer a create (with its Location) or an update: the Secret object with its ETag. */
static void send_described(sx_write_job *j, int status, bool location)
{
    sx_request *r = j->base.r;
    h2o_req_t *req = r->req;
    sx_api_etag(r, j->rev);
    size_t namelen = strlen(j->place.name);
    h2o_iovec_t body;
    body.base = h2o_mem_alloc_pool(&req->pool, sx_secret_json_max(namelen, j->meta.description_len));
    body.len = sx_secret_json_write(body.base, j->place.name, namelen, &j->meta);
    if (location) {
        char loc[512];
        int n = snprintf(loc, sizeof(loc), "/%s/%s/envs/%s/secrets/%s", j->place.org, j->place.project, j->place.env,
                         j->place.name);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                       h2o_strdup(&req->pool, loc, (size_t)n).base, (size_t)n);
    }
    sx_send_json_pooled(r, status, body);
}

static int create_apply(sx_write_job *w, const sx_secrets_ctx *c)
{
    describe_job *j = (describe_job *)w;
    return sx_secrets_create(c, &w->place, description_of(j), j->description_len, &w->meta, &w->rev);
}

static void create_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, create_apply, 201);
}

static void create_done(sx_job *job)
{
    sx_write_job *j = (sx_write_job *)job;
    if (!sx_write_job_failed(j))
        send_described(j, 201, true);
}

void sx_api_create(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_WRITE, &p) || !sx_require_json(r))
        return;
    /* If-None-Match: * asks for exactly what create does (fail when the name exists); any other
     * value cannot match a resource that is being created and is refused. */
    ssize_t hi = h2o_find_header(&r->req->headers, H2O_TOKEN_IF_NONE_MATCH, -1);
    if (hi >= 0 &&
        !h2o_memis(r->req->headers.entries[hi].value.base, r->req->headers.entries[hi].value.len, H2O_STRLIT("*"))) {
        sx_send_error(r, 400, "invalid_request", "If-None-Match on create must be \"*\"");
        return;
    }
    describe_job *j =
        (describe_job *)sx_write_job_new(r, sizeof(describe_job), &p, create_work, create_done, sx_write_job_release);
    if (!j)
        return;
    if (!parse_secret_body(r, j, NULL)) {
        sx_write_job_release(&j->w.base.super);
        return;
    }
    sx_write_job_submit(r, &j->w);
}

static int update_apply(sx_write_job *w, const sx_secrets_ctx *c)
{
    describe_job *j = (describe_job *)w;
    sx_secrets_cond cond;
    return sx_secrets_update(c, &w->place, sx_write_job_cond(w, &cond), description_of(j), j->description_len, &w->meta,
                             &w->rev);
}

static void update_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, update_apply, 200);
}

static void update_done(sx_job *job)
{
    sx_write_job *j = (sx_write_job *)job;
    if (!sx_write_job_failed(j))
        send_described(j, 200, false);
}

void sx_api_update(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_WRITE, &p) || !sx_require_json(r))
        return;
    describe_job *j =
        (describe_job *)sx_write_job_new(r, sizeof(describe_job), &p, update_work, update_done, sx_write_job_release);
    if (!j)
        return;
    if (!parse_secret_body(r, j, p.name)) {
        sx_write_job_release(&j->w.base.super);
        return;
    }
    sx_write_job_submit(r, &j->w);
}

static int delete_apply(sx_write_job *w, const sx_secrets_ctx *c)
{
    sx_secrets_cond cond;
    return sx_secrets_delete(c, &w->place, sx_write_job_cond(w, &cond));
}

static void delete_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, delete_apply, 200);
}

static void delete_done(sx_job *job)
{
    sx_write_job *j = (sx_write_job *)job;
    if (sx_write_job_failed(j))
        return;
    yajl_gen g = sx_json_gen_thread();
    yajl_gen_map_open(g);
    sx_json_str(g, "deleted");
    yajl_gen_bool(g, 1);
    sx_json_kv(g, "name", j->place.name);
    yajl_gen_map_close(g);
    sx_send_json_pooled(j->base.r, 200, sx_json_gen_thread_finish(g, &j->base.r->req->pool));
}

void sx_api_delete(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_WRITE, &p))
        return;
    sx_write_job *j = sx_write_job_new(r, sizeof(sx_write_job), &p, delete_work, delete_done, sx_write_job_release);
    if (j)
        sx_write_job_submit(r, j);
}
