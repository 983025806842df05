/*
 * values.c - the values of secrets: PUT (set) and GET (reveal, of the current version or of
 * ?version=N) on /{o}/{p}/envs/{env}/secrets/{name}/value, POST .../rollback (a previous version
 * stored again as the current one), and GET /{o}/{p}/envs/{env}/values (the env's map). Every
 * read carries a strong ETag and answers If-None-Match with 304, after the permission check and
 * before any value is decrypted.
 *
 * Plaintext values live briefly in three places, all accepted because the process must hold them
 * to encrypt or to answer: the request body buffer (h2o's, wiped once copied), the set-value job's
 * copy (wiped when the job is released), and the response buffer of a reveal (allocated in the
 * request pool with a destructor that wipes it when the request ends).
 */
#include "server/api/api.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/* ---- set-value ----------------------------------------------------------------------------------- */

typedef struct set_value_job {
    sx_write_job w;
    uint8_t *value; /* plaintext, wiped in release */
    size_t value_len;
} set_value_job;

static int set_value_apply(sx_write_job *w, const sx_secrets_ctx *c)
{
    set_value_job *j = (set_value_job *)w;
    sx_secrets_cond cond;
    return sx_secrets_set_value(c, &w->place, sx_write_job_cond(w, &cond), j->value, j->value_len, &w->meta, &w->rev);
}

static void set_value_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, set_value_apply, 200);
}

static void set_value_done(sx_job *job)
{
    sx_write_job *j = (sx_write_job *)job;
    if (sx_write_job_failed(j))
        return;
    sx_request *r = j->base.r;
    sx_api_etag(r, j->rev);
    yajl_gen g = sx_json_gen_thread();
    char ts[32];
    yajl_gen_map_open(g);
    sx_json_kv(g, "name", j->place.name);
    sx_json_str(g, "hasValue");
    yajl_gen_bool(g, 1);
    sx_time_format(j->meta.updated_ms, ts, sizeof(ts));
    sx_json_kv(g, "updatedAt", ts);
    yajl_gen_map_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}

static void set_value_release(sx_job *job)
{
    set_value_job *j = (set_value_job *)job;
    if (j->value) {
        sodium_memzero(j->value, j->value_len);
        free(j->value);
    }
    sx_write_job_release(job);
}

static const sx_json_field value_fields[] = {
    {"value", SX_JSON_STRING, "a string", true},
};

void sx_api_set_value(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_SET_VALUE, &p) || !sx_require_json(r))
        return;
    sx_json_value v[1];
    if (!sx_api_parse_body(r, value_fields, 1, v))
        return;
    if (v[0].len > r->server->config->max_value_bytes) {
        sodium_memzero(v[0].str, v[0].len);
        sx_send_error(r, 413, "payload_too_large", "field \"value\" is longer than max_value_bytes");
        return;
    }
    set_value_job *j = (set_value_job *)sx_write_job_new(r, sizeof(set_value_job), &p, set_value_work, set_value_done,
                                                         set_value_release);
    if (!j) {
        sodium_memzero(v[0].str, v[0].len);
        return;
    }
    j->value = malloc(v[0].len ? v[0].len : 1);
    if (!j->value) {
        sodium_memzero(v[0].str, v[0].len);
        set_value_release(&j->w.base.super);
        sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
        return;
    }
    memcpy(j->value, v[0].str, v[0].len);
    j->value_len = v[0].len;
    sodium_memzero(v[0].str, v[0].len);
    sx_write_job_submit(r, &j->w);
}

/* ---- rollback ------------------------------------------------------------------------------------ */

typedef struct rollback_job {
    sx_write_job w;
    uint32_t version;
} rollback_job;

static int rollback_apply(sx_write_job *w, const sx_secrets_ctx *c)
{
    sx_secrets_cond cond;
    return sx_secrets_rollback(c, &w->place, sx_write_job_cond(w, &cond), ((rollback_job *)w)->version, &w->meta,
                               &w->rev);
}

static void rollback_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, rollback_apply, 200);
}

static const sx_json_field rollback_fields[] = {
    {"version", SX_JSON_NUMBER, "a version number", true},
};

void sx_api_rollback(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_SET_VALUE, &p) || !sx_require_json(r))
        return;
    sx_json_value v[1];
    if (!sx_api_parse_body(r, rollback_fields, 1, v))
        return;
    uint32_t version = 0;
    if (!sx_api_version_parse(v[0].str, v[0].len, &version)) {
        sx_send_error(r, 400, "invalid_request", "field \"version\" must be a version number (an integer >= 1)");
        return;
    }
    rollback_job *j = (rollback_job *)sx_write_job_new(r, sizeof(rollback_job), &p, rollback_work, set_value_done,
                                                       sx_write_job_release);
    if (!j)
        return;
    j->version = version;
    sx_write_job_submit(r, &j->w);
}

/* ---- answers that hold values -------------------------------------------------------------------- */

/*
 * A reveal is audited before its value leaves: an intent line, then the answer (whose "done" line
 * sx_request_finish() queues). Under fail_closed the intent line must be on file first: the request
 * parks (audit_wait.c) and the value is sent only when the audit writer confirms the line; when it
 * cannot, or not in time, the answer is 503 and nothing was revealed. Under fail_open the intent
 * line is queued and the value sent at once. The body lives in wiped request-pool memory and is
 * sent without a further (unwiped) copy.
 */
typedef struct reveal_wait {
    sx_audit_wait base;
    h2o_iovec_t body; /* request-pool memory: only touched in proceed(), while the request lives */
    sx_api_etag_buf etag;
    bool has_etag;
} reveal_wait;

static void reveal_proceed(sx_audit_wait *w, sx_request *r)
{
    reveal_wait *rw = (reveal_wait *)w;
    sx_api_etag_add(r, rw->has_etag ? &rw->etag : NULL);
    sx_send_json_pooled(r, 200, rw->body);
}

static void reveal_release(sx_audit_wait *w)
{
    free(w);
}

/* Send the revealed body with its ETag (NULL: none), once the audit allows it (an error answer
 * carries none). */
void sx_api_send_revealed(sx_request *r, const sx_secrets_place *p, const sx_api_etag_buf *etag, h2o_iovec_t body)
{
    sx_audit *au = r->server->audit;
    if (!au) {
        sx_api_etag_add(r, etag);
        sx_send_json_pooled(r, 200, body);
        return;
    }
    char client[64], scope[200];
    snprintf(scope, sizeof(scope), "%s/%s/%s", p->org, p->project, p->env);
    sx_audit_rec rec;
    sx_request_audit_rec(r, &rec, client, scope, p->name[0] ? p->name : NULL);
    rec.intent = true;
    if (!sx_audit_fail_closed(au)) {
        sx_audit_log(au, r->thread->index, &rec);
        sx_api_etag_add(r, etag);
        sx_send_json_pooled(r, 200, body);
        return;
    }
    reveal_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
        return;
    }
    w->base.proceed = reveal_proceed;
    w->base.release = reveal_release;
    w->body = body;
    w->has_etag = etag != NULL;
    if (etag)
        w->etag = *etag;
    sx_audit_wait_start(r, &w->base, &rec);
}

void sx_api_send_unreadable(sx_request *r, int rc, const char *what)
{
    if (rc == SX_SECRETS_EUNREADABLE)
        sx_log(SX_LOG_ERROR, "a stored value could not be decrypted");
    else if (rc == -EBADMSG)
        sx_log(SX_LOG_ERROR, "corrupt record while %s", what);
    else if (rc != SX_SECRETS_ENOVALUE && rc != SX_SECRETS_ECONTENTION)
        sx_log(SX_LOG_WARN, "storage error while %s: %s", what, sx_storage_strerror(rc));
    sx_send_failure(r, SX_ERR_SECRET, rc, NULL);
}

/*
 * Reveal answers are written straight into wiped request-pool memory (no generator, whose buffers
 * would be more copies of the plaintext to wipe). A value is decrypted in place, where its JSON
 * string goes; it is escaped afterwards only when it holds a byte that needs it, from a wiped copy.
 * The output is byte for byte what the yajl generator wrote before (upper-case \u00XX escapes).
 */
/* Make room for need more bytes; a grown buffer is a new wiped allocation (the old one is wiped
 * when the request ends, like every other). */
void sx_wiped_reserve(sx_wiped_out *o, size_t need)
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

void sx_wiped_lit(sx_wiped_out *o, const char *s, size_t len)
{
    memcpy(o->buf + o->len, s, len);
    o->len += len;
}

/* The value just decrypted at the end of o (plen bytes, not yet counted in o->len) becomes the
 * contents of a JSON string: kept as it is, or escaped from a wiped copy. */
void sx_wiped_escape_tail(sx_wiped_out *o, size_t plen)
{
    char *at = o->buf + o->len;
    size_t elen = sx_json_escaped_len(at, plen);
    if (elen == plen) {
        o->len += plen;
        return;
    }
    char *copy = sx_pool_alloc_wiped(o->pool, plen);
    memcpy(copy, at, plen);
    sodium_memzero(at, plen);
    sx_wiped_reserve(o, elen + 32);
    o->len += sx_json_escape(o->buf + o->len, copy, plen, true);
    sodium_memzero(copy, plen);
}

int sx_wiped_value(sx_wiped_out *o, const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version, void *blob,
                   size_t blob_len)
{
    size_t cap = SX_CRYPTO_VALUE_PLAIN_LEN(blob_len), plen = 0;
    sx_wiped_reserve(o, cap + 32);
    int rc = sx_secrets_value_decrypt_v(c, p, version, blob, blob_len, o->buf + o->len, cap, &plen);
    sx_storage_free(blob);
    if (rc == 0)
        sx_wiped_escape_tail(o, plen);
    return rc;
}

/* ---- reveal -------------------------------------------------------------------------------------- */

/* ?version=N of a reveal: 0 when the query does not name one, -1 (answered 400) when it is
 * malformed. Other query parameters are ignored, as a reveal always did. */
static int64_t reveal_version_of(sx_request *r)
{
    const char *q = r->query.base;
    size_t len = r->query.len;
    while (len) {
        const char *amp = memchr(q, '&', len);
        size_t pl = amp ? (size_t)(amp - q) : len;
        if (pl >= 8 && memcmp(q, "version=", 8) == 0) {
            uint32_t v = 0;
            if (!sx_api_version_parse(q + 8, pl - 8, &v)) {
                sx_send_error(r, 400, "invalid_request", "query parameter \"version\" must be a version number");
                return -1;
            }
            return v;
        }
        q += pl + (amp ? 1 : 0);
        len -= pl + (amp ? 1 : 0);
    }
    return 0;
}

/* A reveal: the version asked for (0 = the current one) and what failed. */
typedef struct reveal_read_job {
    sx_read_job base;
    uint32_t asked;
    const char *what; /* static: what was being done when rc failed */
} reveal_read_job;

static int reveal_read(sx_read_job *rj, const sx_secrets_ctx *c)
{
    reveal_read_job *j = (reveal_read_job *)rj;
    const sx_secrets_place *p = &rj->place;
    void *blob = NULL;
    size_t blen = 0;
    uint64_t rev = 0;
    int64_t updated_ms = 0;
    uint32_t version = j->asked;
    j->what = "revealing a secret";
    int rc = j->asked ? sx_secrets_reveal_version(c, p, version, &blob, &blen, &rev, &updated_ms)
                      : sx_secrets_reveal(c, p, &blob, &blen, &rev, &updated_ms, &version);
    if (rc != 0)
        return rc;
    /* The ETag of the current value is the secret's revision (as set-value answered it, for an
     * If-Match); version N's names that version of this secret, whose plaintext never changes. */
    if (j->asked) {
        uint8_t tag[SX_SECRETS_TAG_LEN];
        sx_secrets_version_tag(p, version, tag);
        sx_api_etag_of_tag(tag, &rj->etag);
    } else {
        sx_api_etag_of_rev(rev, &rj->etag);
    }
    rj->has_etag = true;
    if (sx_read_job_not_modified(rj, &rj->etag)) { /* nothing decrypted, no value leaves */
        sx_storage_free(blob);
        return 0;
    }
    size_t namelen = strlen(p->name);
    sx_wiped_out o = {.pool = rj->pool};
    sx_wiped_reserve(&o, 96 + namelen + SX_CRYPTO_VALUE_PLAIN_LEN(blen)); /* all of it, unless escaped */
    sx_wiped_lit(&o, "{\"name\":\"", 9);
    sx_wiped_lit(&o, p->name, namelen);
    sx_wiped_lit(&o, "\",\"value\":\"", 11);
    if ((rc = sx_wiped_value(&o, c, p, version, blob, blen)) != 0) {
        j->what = "reading a data key";
        return rc;
    }
    sx_wiped_reserve(&o, 80);
    if (j->asked) /* a version's answer names it, and its updatedAt is when that version was written */
        o.len += (size_t)snprintf(o.buf + o.len, 32, "\",\"version\":%u", version);
    else
        sx_wiped_lit(&o, "\"", 1);
    sx_wiped_lit(&o, ",\"updatedAt\":\"", 14);
    o.len += sx_time_format(updated_ms, o.buf + o.len, 32);
    sx_wiped_lit(&o, "\"}", 2);
    rj->body = h2o_iovec_init(o.buf, o.len);
    return 0;
}

/* The answer of a reveal or of the env's values: the failure, a 304, or the values once the audit
 * allows them to leave. */
static void revealed_answer(sx_read_job *rj)
{
    reveal_read_job *j = (reveal_read_job *)rj;
    sx_request *r = rj->base.r;
    if (rj->rc != 0)
        sx_api_send_unreadable(r, rj->rc, j->what);
    else if (rj->not_modified)
        sx_read_job_send(rj);
    else
        sx_api_send_revealed(r, &rj->place, rj->has_etag ? &rj->etag : NULL, rj->body);
}

void sx_api_reveal(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_REVEAL, &p))
        return;
    int64_t asked = reveal_version_of(r);
    if (asked < 0)
        return;
    reveal_read_job *j = sx_read_job_new(r, sizeof(*j), &p, reveal_read, revealed_answer, NULL);
    if (!j)
        return;
    j->asked = (uint32_t)asked;
    sx_read_job_start(r, &j->base);
}

/* ---- the values of an environment ---------------------------------------------------------------- */

int sx_api_values_write(const sx_secrets_ctx *c, const sx_secrets_place *env, sx_wiped_out *o, uint8_t *ret_tag)
{
    sx_secrets_scan scan;
    int rc = sx_secrets_values_open(&scan, c, env);
    if (rc != 0)
        return rc;
    sx_wiped_reserve(o, 8192);
    sx_wiped_lit(o, "{", 1);
    size_t first = o->len;
    const char *name;
    size_t namelen, blen;
    while ((rc = sx_secrets_values_next(&scan, &name, &namelen, &blen)) == 0) {
        sx_wiped_reserve(o, namelen + 8);
        if (o->len > first)
            sx_wiped_lit(o, ",", 1);
        sx_wiped_lit(o, "\"", 1);
        sx_wiped_lit(o, name, namelen);
        sx_wiped_lit(o, "\":\"", 3);
        size_t cap = SX_CRYPTO_VALUE_PLAIN_LEN(blen), plen = 0;
        sx_wiped_reserve(o, cap + 32);
        rc = sx_secrets_values_decrypt(&scan, o->buf + o->len, cap, &plen);
        if (rc != 0)
            break;
        sx_wiped_escape_tail(o, plen);
        sx_wiped_lit(o, "\"", 1);
    }
    if (rc == SX_STORAGE_DONE && ret_tag)
        sx_secrets_values_tag(&scan, ret_tag);
    sx_secrets_scan_close(&scan);
    if (rc < 0)
        return rc;
    sx_wiped_reserve(o, 1);
    sx_wiped_lit(o, "}", 1);
    return 0;
}

/*
 * The ETag the env's values map has now, for a conditional read: from the metadata records, or,
 * on the loop while the store has not changed since it was last worked out there, from the loop's
 * page cache (page_cache.c: the store's change sequence is read before the walk, so a write racing
 * with it only makes the entry stale). Only the tag is kept, never a value, and only after the
 * caller's permission was checked, as for every read. False when the walk failed.
 */
static bool values_etag_now(sx_read_job *j, const sx_secrets_ctx *c, sx_api_etag_buf *ret)
{
    const sx_secrets_place *p = &j->place;
    uint64_t seq = 0;
    char id[SX_PAGE_ID_MAX];
    int n = snprintf(id, sizeof(id), "%s/%s/%s\nvalues etag", p->org, p->project, p->env);
    bool cacheable = j->on_loop && n > 0 && (size_t)n < sizeof(id) && sx_storage_change_seq(c->storage, &seq) == 0;
    h2o_iovec_t body, link;
    if (cacheable && sx_page_cache_get(id, (size_t)n, seq, j->pool, &body, &link) && body.len < SX_API_ETAG_MAX) {
        memcpy(ret->s, body.base, body.len);
        ret->s[body.len] = '\0';
        ret->len = body.len;
        return true;
    }
    uint8_t tag[SX_SECRETS_TAG_LEN];
    if (sx_secrets_values_tag_now(c, p, tag) != 0)
        return false;
    sx_api_etag_of_tag(tag, ret);
    if (cacheable)
        sx_page_cache_put(id, (size_t)n, seq, h2o_iovec_init(ret->s, ret->len), h2o_iovec_init(NULL, 0));
    return true;
}

static int values_read(sx_read_job *rj, const sx_secrets_ctx *c)
{
    reveal_read_job *j = (reveal_read_job *)rj;
    j->what = "reading values";
    /* A poller that has the map already: a walk of the metadata that reads no value tells whether
     * it changed. When it did (or that walk failed), the map is read and its ETag is the one of the
     * values sent. */
    sx_api_etag_buf etag;
    if (rj->if_none_match && values_etag_now(rj, c, &etag) && sx_read_job_not_modified(rj, &etag))
        return 0;
    uint8_t tag[SX_SECRETS_TAG_LEN];
    sx_wiped_out o = {.pool = rj->pool};
    int rc = sx_api_values_write(c, &rj->place, &o, tag);
    if (rc != 0)
        return rc;
    sx_api_etag_of_tag(tag, &rj->etag);
    rj->has_etag = true;
    rj->body = h2o_iovec_init(o.buf, o.len);
    return 0;
}

void sx_api_values(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_REVEAL, &p))
        return;
    reveal_read_job *j = sx_read_job_new(r, sizeof(*j), &p, values_read, revealed_answer, NULL);
    if (j)
        sx_read_job_start(r, &j->base);
}
