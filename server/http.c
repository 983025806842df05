/*
 * http.c - the request path: the h2o handler that routes every request, the JSON response and
 * error helpers, a filter that turns h2o's own plain-text errors into the JSON error form, and the
 * access log.
 *
 * A /v1/ request on a public listener while [vault] is enabled is a Vault client's: its errors
 * take Vault's form (api/vault_http.c) and one trailing '/' of its path is dropped.
 *
 * Every request gets an sx_request in its own pool (h2o frees it with the request). Its dispose
 * callback keeps the in-flight counts that a drain waits for and cancels blocking work the
 * request had queued, so a job never answers a request that has gone away.
 */
#include "server/server_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <yajl/yajl_gen.h>

#include "audit/audit.h"
#include "server/metrics.h"
#include "storage/storage.h"

typedef struct sx_handler {
    h2o_handler_t super;
    sx_server *server;
} sx_handler;

typedef struct sx_error_filter {
    h2o_filter_t super;
    sx_server *server;
} sx_error_filter;

typedef struct sx_error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
} sx_error_ostream;

const char *sx_status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 202:
        return "Accepted";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

/* The machine code for an error status that h2o produced on its own. */
static const char *code_for_status(int status)
{
    switch (status) {
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 413:
        return "payload_too_large";
    case 503:
        return "unavailable";
    default:
        return status < 500 ? "invalid_request" : "internal";
    }
}

static const char *message_for_status(int status)
{
    switch (status) {
    case 404:
        return "no such route";
    case 413:
        return "the request body is larger than the server accepts";
    case 417:
        return "unsupported Expect header";
    default:
        return status < 500 ? "the request could not be parsed" : "the server could not answer the request";
    }
}

/* Build {"error": message, "code": code} into the request pool. */
static h2o_iovec_t error_body(h2o_mem_pool_t *pool, const char *code, const char *message)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    h2o_iovec_t out = {NULL, 0};
    if (!g)
        return h2o_iovec_init(H2O_STRLIT("{\"error\":\"out of memory\",\"code\":\"internal\"}"));
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"error", 5);
    if (yajl_gen_string(g, (const unsigned char *)message, strlen(message)) != yajl_gen_status_ok)
        yajl_gen_string(g, (const unsigned char *)"invalid request", 15);
    yajl_gen_string(g, (const unsigned char *)"code", 4);
    yajl_gen_string(g, (const unsigned char *)code, strlen(code));
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
        out = h2o_strdup(pool, (const char *)buf, len);
    yajl_gen_free(g);
    return out;
}

static void send_json_raw(h2o_req_t *req, int status, const char *json, size_t len)
{
    req->res.status = status;
    req->res.reason = sx_status_reason(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, json, len);
}

void sx_send_body(sx_request *r, int status, h2o_iovec_t content_type, h2o_iovec_t cache_control, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    sx_request_finish(r, status);
    req->res.status = status;
    req->res.reason = sx_status_reason(status);
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type.base, content_type.len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cache_control.base, cache_control.len);
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

void sx_send_json_pooled(sx_request *r, int status, h2o_iovec_t body)
{
    sx_send_body(r, status, h2o_iovec_init(H2O_STRLIT("application/json")), h2o_iovec_init(H2O_STRLIT("no-store")),
                 body);
}

/* A 304 has no content (RFC 9110, 15.4.5) and no Content-Length: the one it could carry is the
 * length of the 200 it stands for, which a conditional read does not build. h2o frames it without
 * one (no chunked encoding for a 304), so the connection stays open. */
void sx_send_not_modified(sx_request *r)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    sx_request_finish(r, 304);
    req->res.status = 304;
    req->res.reason = sx_status_reason(304);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

void sx_send_json(sx_request *r, int status, const char *reason, const char *json, size_t len)
{
    (void)reason;
    sx_request_finish(r, status);
    send_json_raw(r->req, status, json, len);
}

void sx_send_no_content(sx_request *r)
{
    h2o_req_t *req = r->req;
    sx_request_finish(r, 204);
    req->res.status = 204;
    req->res.reason = sx_status_reason(204);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, "", 0);
}

void sx_send_error_raw(h2o_req_t *req, int status, const char *code, const char *message)
{
    h2o_iovec_t body = error_body(&req->pool, code, message);
    if (status == 401)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
    send_json_raw(req, status, body.base, body.len);
}

void sx_send_error(sx_request *r, int status, const char *code, const char *message)
{
    if (r->vault) {
        sx_vault_send_error(r, status, message);
        return;
    }
    sx_request_finish(r, status);
    sx_send_error_raw(r->req, status, code, message);
}

/* ---- request lifecycle ------------------------------------------------------------------------- */

static void on_request_dispose(void *p)
{
    sx_request *r = p;
    if (r->job)
        atomic_store(&r->job->cancelled, true);
    sx_auth_fetch_free(r->auth_fetch);
    if (r->audit_wait)
        sx_audit_wait_request_gone(r);
    if (r->thread && r->thread->inflight)
        r->thread->inflight--;
    if (r->conn && r->conn->inflight)
        r->conn->inflight--;
    if (r->conn)
        sx_guard_request_done(r->conn);
}

void sx_request_submit(sx_request *r, sx_job *job)
{
    job->reply_to = &r->thread->pool_receiver;
    job->owner_slot = &r->job;
    r->job = job;
    sx_pool_submit(r->server->pool, job);
}

void sx_request_rerun(sx_request *r)
{
    sx_log_set_request_id(r->req_id);
    r->route->handler(r);
    sx_log_set_request_id(NULL);
}

extern void sx_conn_on_close(void *data);

/* ---- request ids, metrics and the audit line ------------------------------------------------------ */

/* An X-Request-Id from the client is kept when it is 1-64 characters of [A-Za-z0-9._-] (so it can
 * go into log lines as is); otherwise the server makes one: a random per-process prefix, the loop
 * index and a per-loop counter - unique, cheap (no syscall), and not a secret. */
static void set_request_id(sx_request *r)
{
    h2o_req_t *req = r->req;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        bool ok = v.len >= 1 && v.len <= SX_REQUEST_ID_MAX;
        for (size_t k = 0; ok && k < v.len; k++) {
            char c = v.base[k];
            ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                 c == '-';
        }
        if (ok) {
            memcpy(r->req_id, v.base, v.len);
            r->req_id[v.len] = '\0';
            r->req_id_len = (uint8_t)v.len;
        }
    }
    if (!r->req_id_len) {
        static const char hex[] = "0123456789abcdef";
        uint64_t n = r->thread->reqid_next++;
        char *p = r->req_id;
        memcpy(p, r->server->reqid_prefix, 8);
        p[8] = hex[(r->thread->index >> 4) & 15];
        p[9] = hex[r->thread->index & 15];
        for (int k = 0; k < 12; k++)
            p[10 + k] = hex[(n >> (44 - 4 * k)) & 15];
        p[22] = '\0';
        r->req_id_len = 22;
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, r->req_id, r->req_id_len);
}

static size_t format_peer(h2o_req_t *req, char *buf, size_t cap);

void sx_request_audit_rec(sx_request *r, sx_audit_rec *rec, char *client, const char *scope, const char *name)
{
    format_peer(r->req, client, 64);
    *rec = (sx_audit_rec){
        .request_id = r->req_id,
        .token_id = r->has_principal ? r->token_id : NULL,
        .label = r->has_principal ? r->token_label : NULL,
        .role = r->has_principal ? r->token_role : NULL,
        .client = client,
        .action = r->audit_action,
        .scope = scope,
        .name = name,
    };
}

/* Append n bytes of s to out (capacity cap, *len used), cut to what fits with its NUL. */
static void append_cut(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (n > cap - 1 - *len)
        n = cap - 1 - *len;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

/* Scope and name of an audited request from its path parameters: o/p/env and the secret name (or
 * the token id). Put together without snprintf: this runs for every audited request. */
static void audit_target(sx_request *r, char *scope, size_t cap, char *name, size_t ncap)
{
    size_t sl = 0, nl = 0;
    scope[0] = name[0] = '\0';
    if (r->audit_scope) {
        append_cut(scope, cap, &sl, r->audit_scope, strlen(r->audit_scope));
        if (r->audit_name)
            append_cut(name, ncap, &nl, r->audit_name, strlen(r->audit_name));
        return;
    }
    if (r->nparams >= 3)
        for (size_t i = 0; i < 3; i++) {
            if (i)
                append_cut(scope, cap, &sl, "/", 1);
            append_cut(scope, cap, &sl, r->params[i].base, r->params[i].len);
        }
    if (r->nparams == 4 || r->nparams == 1)
        append_cut(name, ncap, &nl, r->params[r->nparams - 1].base, r->params[r->nparams - 1].len);
}

void sx_request_finish(sx_request *r, int status)
{
    sx_metrics_request(r->thread->metrics, r->route_index, status, sx_clock_mono_ns() - r->start_ns);
    if (!r->audit_action || r->audit_done || !r->server->audit)
        return;
    r->audit_done = true;
    char client[64], scope[200], name[260];
    audit_target(r, scope, sizeof(scope), name, sizeof(name));
    sx_audit_rec rec;
    sx_request_audit_rec(r, &rec, client, scope[0] ? scope : NULL, name[0] ? name : NULL);
    rec.status = status;
    sx_audit_log(r->server->audit, r->thread->index, &rec);
}

/* The size of the request's header: at most what an HTTP/1.1 client sent, or what HPACK decoded
 * (the pseudo-headers included). */
static size_t request_header_bytes(const h2o_req_t *req)
{
    size_t n = req->input.method.len + req->input.path.len + (req->version >= 0x200 ? req->input.authority.len : 0);
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    sx_server *s = ((sx_handler *)self)->server;
    sx_thread *t = H2O_STRUCT_FROM_MEMBER(sx_thread, ctx, req->conn->ctx);
    sx_request *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), on_request_dispose);
    memset(r, 0, sizeof(*r));
    r->req = req;
    r->server = s;
    r->thread = t;
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock && sock->on_close.cb == sx_conn_on_close)
        r->conn = sock->on_close.data;
    r->admin = r->conn && r->conn->kind == SX_LISTEN_ADMIN;
    r->start_ns = sx_clock_mono_ns();
    r->route_index = (uint8_t)sx_router_count();
    t->inflight++;
    atomic_fetch_add_explicit(&t->requests, 1, memory_order_relaxed);
    if (r->conn) {
        r->conn->inflight++;
        if (req->version >= 0x200 && !r->conn->http2) {
            r->conn->http2 = true;
            sx_guard_saw_http2(r->conn);
        }
    }

    /* The raw request target, never h2o's percent-decoded normalised form. */
    const char *path = req->input.path.base;
    size_t plen = req->input.path.len;
    const char *q = memchr(path, '?', plen);
    r->path = h2o_iovec_init(path, q ? (size_t)(q - path) : plen);
    r->query = q ? h2o_iovec_init(q + 1, plen - (size_t)(q - path) - 1) : h2o_iovec_init(NULL, 0);

    set_request_id(r);

    /* Vault's paths (server/api/vault.c): a public listener's /v1/ when [vault] is enabled. Vault
     * takes "metadata/app/" for "metadata/app": one trailing slash is dropped before routing. */
    bool public = !r->admin && !(r->conn && r->conn->kind == SX_LISTEN_METRICS);
    if (public && s->config->vault_enabled && r->path.len >= 3 && memcmp(r->path.base, "/v1", 3) == 0 &&
        (r->path.len == 3 || r->path.base[3] == '/')) {
        r->vault = true;
        if (r->path.len > 4 && r->path.base[r->path.len - 1] == '/')
            r->path.len--;
    }

    /* HTTP/1.1 heads over the limit never get here (guard.c answers them); HTTP/2 header blocks
     * are only known once HPACK has decoded them. */
    if (request_header_bytes(req) > s->config->max_header_bytes) {
        sx_send_error(r, 431, "headers_too_large", "the request headers are larger than the server accepts");
        return 0;
    }
    if (sx_h2_body_over_limit(req) || (req->entity.base && req->entity.len > s->config->max_body_bytes)) {
        sx_send_error(r, 413, "payload_too_large", "the request body is larger than max_body_bytes");
        return 0;
    }

    unsigned method = sx_method_parse(req->method.base, req->method.len);
    const sx_route *route = NULL;
    unsigned allow = 0;
    const char *bad = NULL;
    unsigned scope = r->admin                                        ? SX_ROUTE_ADMIN
                     : r->conn && r->conn->kind == SX_LISTEN_METRICS ? SX_ROUTE_METRICS
                     : s->config->vault_enabled                      ? SX_ROUTE_PUBLIC | SX_ROUTE_VAULT
                                                                     : SX_ROUTE_PUBLIC;
    sx_route_result res =
        sx_router_match(scope, method, r->path.base, r->path.len, &route, r->params, &r->nparams, &allow, &bad);
    switch (res) {
    case SX_ROUTE_FOUND:
        r->route_index = (uint8_t)(route - sx_router_at(0));
        r->audit_action = route->audit;
        r->route = route;
        sx_request_rerun(r);
        return 0;
    case SX_ROUTE_BAD_PATH:
        sx_send_error(r, 400, "invalid_request", bad);
        return 0;
    case SX_ROUTE_BAD_METHOD: {
        char list[64];
        size_t n = sx_method_list(allow, list, sizeof(list));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, h2o_strdup(&req->pool, list, n).base, n);
        sx_send_error(r, 405, "method_not_allowed", "this path does not accept that method");
        return 0;
    }
    case SX_ROUTE_NOT_FOUND:
    default:
        sx_send_error(r, 404, "not_found", "no such route");
        return 0;
    }
}

/* ---- the error filter: h2o's own errors in our JSON form --------------------------------------- */

static void error_ostream_send(h2o_ostream_t *_self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                               h2o_send_state_t state)
{
    sx_error_ostream *self = (sx_error_ostream *)_self;
    (void)bufs;
    (void)bufcnt;
    if (!self->sent && !h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"))) {
        self->sent = true;
        h2o_ostream_send_next(&self->super, req, &self->body, 1, state);
    } else {
        h2o_ostream_send_next(&self->super, req, NULL, 0, state);
    }
}

/* HEAD: the handler answers as for GET; its body is dropped here, after its content-length was
 * set, so the head is GET's exactly (h2o 2.2.5 would send the body). */
static void head_ostream_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                              h2o_send_state_t state)
{
    (void)bufs;
    (void)bufcnt;
    h2o_ostream_send_next(self, req, NULL, 0, state);
}

static void error_filter_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    bool ours = ct != -1 && h2o_memis(req->res.headers.entries[ct].value.base, req->res.headers.entries[ct].value.len,
                                      H2O_STRLIT("application/json"));
    if (req->res.status < 400 || ours) {
        if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"))) {
            h2o_ostream_t *os = h2o_add_ostream(req, sizeof(*os), slot);
            os->do_send = head_ostream_send;
            slot = &os->next;
        }
        h2o_setup_next_ostream(req, slot);
        return;
    }
    /* A response h2o generated itself (413 on a too-large body, 400 on broken chunked encoding,
     * ...): replace its text/plain body with the JSON error form. */
    h2o_iovec_t body = error_body(&req->pool, code_for_status(req->res.status), message_for_status(req->res.status));
    if (ct != -1)
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    req->res.content_length = body.len;
    sx_error_ostream *os = (sx_error_ostream *)h2o_add_ostream(req, sizeof(*os), slot);
    os->body = body;
    os->sent = false;
    os->super.do_send = error_ostream_send;
    slot = &os->super.next;
    h2o_setup_next_ostream(req, slot);
}

/* ---- access log -------------------------------------------------------------------------------- */

/* The client's address as text: behind trusted proxies, the one they name (peer.c). */
static size_t format_peer(h2o_req_t *req, char *buf, size_t cap)
{
    sx_thread *t = H2O_STRUCT_FROM_MEMBER(sx_thread, ctx, req->conn->ctx);
    struct sockaddr_storage ss;
    socklen_t sl = sx_peer_request_client(t->server->config, req, &ss);
    if (sl == 0)
        return (size_t)snprintf(buf, cap, "-");
    if (ss.ss_family == AF_INET && cap >= INET_ADDRSTRLEN) {
        /* By hand: glibc's inet_ntop formats IPv4 with sprintf, and this runs twice per request. */
        const unsigned char *a = (const unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
        size_t n = 0;
        for (int i = 0; i < 4; i++) {
            unsigned v = a[i];
            if (i)
                buf[n++] = '.';
            if (v >= 100)
                buf[n++] = (char)('0' + v / 100);
            if (v >= 10)
                buf[n++] = (char)('0' + v / 10 % 10);
            buf[n++] = (char)('0' + v % 10);
        }
        buf[n] = '\0';
        return n;
    }
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, (socklen_t)cap);
        return strlen(buf);
    }
    return (size_t)snprintf(buf, cap, "unix");
}

/* Copy at most max bytes of src into dst, replacing bytes outside printable ASCII and the quote. */
static size_t copy_printable(char *dst, const char *src, size_t len, size_t max)
{
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    return n;
}

/* An access log line being built; its buffer (ACCESS_LINE_MAX) holds the longest line, as every
 * part put into it is bounded (the path at 515 bytes, the peer at 64, the request id at 64). */
#define ACCESS_LINE_MAX 1280
typedef struct line_buf {
    char *p;
    size_t len;
} line_buf;

static void put_n(line_buf *b, const char *s, size_t n)
{
    if (n > ACCESS_LINE_MAX - 1 - b->len)
        n = ACCESS_LINE_MAX - 1 - b->len;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put(line_buf *b, const char *s)
{
    put_n(b, s, strlen(s));
}

static void put_uint(line_buf *b, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_n(b, d + sizeof(d) - n, n);
}

/* Microseconds as milliseconds with three decimals ("12.345"), as printf's %.3f writes them. */
static void put_ms(line_buf *b, int64_t us)
{
    if (us < 0) {
        put(b, "-");
        us = -us;
    }
    put_uint(b, (uint64_t)us / 1000);
    char f[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10)};
    put_n(b, f, 4);
}

static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    if (!sx_access_log_enabled())
        return;
    char line[ACCESS_LINE_MAX];
    char ts[32], peer[64], method[20], path[520];
    sx_time_format(sx_clock_wall_ms(), ts, sizeof(ts));
    format_peer(req, peer, sizeof(peer));
    size_t ml = copy_printable(method, req->input.method.base, req->input.method.len, 16);
    method[ml] = '\0';
    /* The path without its query: paths name scopes and secrets, never values or tokens. */
    const char *p = req->input.path.base;
    size_t plen = req->input.path.len;
    const char *q = p ? memchr(p, '?', plen) : NULL;
    if (q)
        plen = (size_t)(q - p);
    size_t pl = copy_printable(path, p, plen, 512);
    if (plen > 512) {
        memcpy(path + pl, "...", 3);
        pl += 3;
    }
    path[pl] = '\0';
    /* The request id is one of ours (checked or generated in on_req), safe to print as is. */
    char rid[SX_REQUEST_ID_MAX + 1] = "-";
    ssize_t hi = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    if (hi >= 0) {
        size_t rl = copy_printable(rid, req->res.headers.entries[hi].value.base, req->res.headers.entries[hi].value.len,
                                   SX_REQUEST_ID_MAX);
        rid[rl] = '\0';
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t us = (int64_t)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
                 (int64_t)(now.tv_usec - req->timestamps.request_begin_at.tv_usec);
    if (req->timestamps.request_begin_at.tv_sec == 0)
        us = 0;
    const char *proto = req->version >= 0x200 ? "HTTP/2" : req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1";
    /* Built by hand rather than with snprintf: this runs for every request on the loop thread, and
     * formatting was the larger part of the access log's cost there. */
    line_buf b = {line, 0};
    bool json = sx_log_json();
    if (json) {
        put(&b, "{\"time\":\"");
        put(&b, ts);
        put(&b, "\",\"type\":\"access\",\"client\":\"");
        put(&b, peer);
        put(&b, "\",\"method\":\"");
        put(&b, method);
        put(&b, "\",\"path\":\"");
        put(&b, path);
        put(&b, "\",\"proto\":\"");
        put(&b, proto);
        put(&b, "\",\"status\":");
        put_uint(&b, (uint64_t)(req->res.status < 0 ? 0 : req->res.status));
        put(&b, ",\"bytes\":");
        put_uint(&b, req->bytes_sent);
        put(&b, ",\"ms\":");
        put_ms(&b, us);
        put(&b, ",\"requestId\":\"");
        put(&b, rid);
        put(&b, "\"}\n");
    } else {
        put(&b, ts);
        put(&b, " ");
        put(&b, peer);
        put(&b, " \"");
        put(&b, method);
        put(&b, " ");
        put(&b, path);
        put(&b, "\" ");
        put(&b, proto);
        put(&b, " ");
        put_uint(&b, (uint64_t)(req->res.status < 0 ? 0 : req->res.status));
        put(&b, " ");
        put_uint(&b, req->bytes_sent);
        put(&b, " ");
        put_ms(&b, us);
        put(&b, "ms ");
        put(&b, rid);
        put(&b, "\n");
    }
    size_t len = b.len;
    sx_access_log_write(line, len);
}

/* ---- registration ------------------------------------------------------------------------------ */

void sx_http_register(sx_server *s, h2o_pathconf_t *pathconf)
{
    if (pathconf != &s->hostconf->fallback_path) {
        sx_handler *h = (sx_handler *)h2o_create_handler(pathconf, sizeof(*h));
        h->super.on_req = on_req;
        h->server = s;
    }
    sx_error_filter *f = (sx_error_filter *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = error_filter_setup;
    f->server = s;
    h2o_logger_t *l = h2o_create_logger(pathconf, sizeof(*l));
    l->log_access = log_access;
}
