/*
 * http_wire_h2.c - HTTP/2 for http_wire.h with nghttp2: h2c with prior knowledge on http://, h2
 * when the server chooses it over ALPN on https://. One session per connection, one stream at a
 * time on it; the session's output is written with ctl_wire_write() and its input read with
 * ctl_wire_read() (nghttp2's memory interface), so TLS and cleartext share the code.
 *
 * Limits: the answer's header block within CTL_WIRE_HEAD_MAX bytes (counted as names and values
 * arrive) and its body within the caller's maximum; either over resets the stream and fails the
 * request with CTL_WIRE_TOO_BIG. The Authorization value is sent never-indexed (HPACK), so no
 * table holds it. A stream reset or GOAWAY before the whole answer came counts as a dropped
 * connection.
 */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/http_wire_internal.h"

/* The state of the one stream in flight. */
typedef struct h2_stream {
    ctl_wire_resp *r;
    int32_t id;
    size_t head_bytes, body_max;
    const char *body;
    size_t body_len, body_off;
    bool closed, got_any;
} h2_stream;

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    (void)flags;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    st->got_any = true;
    st->head_bytes += namelen + valuelen + 32;
    if (st->head_bytes > CTL_WIRE_HEAD_MAX) {
        ctl_wire_fail(st->r, CTL_WIRE_TOO_BIG, "the answer's header block is over %u bytes", CTL_WIRE_HEAD_MAX);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && st->r->status != 0)
        return 0; /* trailers */
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            status = status * 10 + (value[i] - '0'); /* nghttp2 checked the digits */
        if (status >= 200)
            st->r->status = status;
    } else if (namelen == 4 && memcmp(name, "etag", 4) == 0 && valuelen < sizeof(st->r->etag)) {
        memcpy(st->r->etag, value, valuelen);
        st->r->etag[valuelen] = '\0';
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len, void *user)
{
    (void)flags;
    (void)user;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, stream_id);
    if (!st)
        return 0;
    st->got_any = true;
    if (!ctl_wire_body_add(st->r, data, len, st->body_max))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *user)
{
    (void)user;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, stream_id);
    if (!st)
        return 0;
    st->closed = true;
    if (error_code != NGHTTP2_NO_ERROR)
        ctl_wire_fail(st->r, CTL_WIRE_DROPPED, "the server reset the HTTP/2 stream: %s",
                      nghttp2_http2_strerror(error_code));
    else if (st->r->status == 0)
        ctl_wire_fail(st->r, CTL_WIRE_MALFORMED, "the HTTP/2 stream ended without a final status");
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)stream_id;
    (void)user;
    h2_stream *st = src->ptr;
    size_t n = st->body_len - st->body_off;
    if (n > len)
        n = len;
    memcpy(buf, st->body + st->body_off, n);
    st->body_off += n;
    if (st->body_off == st->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

int ctl_wire_h2_start(ctl_wire *w, ctl_wire_resp *r)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        ctl_wire_fail(r, CTL_WIRE_NOMEM, "out of memory");
        return -1;
    }
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    int rc = nghttp2_session_client_new(&w->h2s, cb, w);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        w->h2s = NULL;
        ctl_wire_fail(r, CTL_WIRE_NOMEM, "cannot set up HTTP/2: %s", nghttp2_strerror(rc));
        return -1;
    }
    /* No push; a window large enough that a big answer does not wait for WINDOW_UPDATEs. */
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 24},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, CTL_WIRE_HEAD_MAX},
    };
    rc = nghttp2_submit_settings(w->h2s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    if (rc == 0)
        rc = nghttp2_session_set_local_window_size(w->h2s, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    if (rc != 0) {
        ctl_wire_fail(r, CTL_WIRE_NOMEM, "cannot set up HTTP/2: %s", nghttp2_strerror(rc));
        ctl_wire_h2_end(w);
        return -1;
    }
    return 0;
}

void ctl_wire_h2_end(ctl_wire *w)
{
    if (w->h2s)
        nghttp2_session_del(w->h2s);
    w->h2s = NULL;
}

/* Write what the session has to send. */
static int flush(ctl_wire *w, ctl_wire_resp *r)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(w->h2s, &data);
        if (n < 0) {
            ctl_wire_fail(r, CTL_WIRE_DROPPED, "HTTP/2: %s", nghttp2_strerror((int)n));
            return -1;
        }
        if (n == 0)
            return 0;
        if (ctl_wire_write(w, data, (size_t)n, r) != 0)
            return -1;
    }
}

int ctl_wire_h2_request(ctl_wire *w, const char *method, const char *path, const ctl_wire_header *hdrs, size_t nhdrs,
                        const char *body, size_t body_len, size_t body_max, int64_t deadline, ctl_wire_resp *r,
                        bool *got_any)
{
    (void)deadline; /* the socket's timeouts carry it */
    if (!nghttp2_session_want_read(w->h2s) && !nghttp2_session_want_write(w->h2s)) {
        ctl_wire_fail(r, CTL_WIRE_DROPPED, "the server ended the HTTP/2 connection");
        return -1;
    }
    enum { FIXED = 5 };
    nghttp2_nv *nv = calloc(nhdrs + FIXED, sizeof(*nv));
    if (!nv) {
        ctl_wire_fail(r, CTL_WIRE_NOMEM, "out of memory");
        return -1;
    }
    char clen[24];
    snprintf(clen, sizeof(clen), "%zu", body ? body_len : 0);
    const char *scheme = w->ssl ? "https" : "http";
    const char *fixed[][2] = {
        {":method", method}, {":scheme", scheme}, {":authority", w->t.authority}, {":path", path}};
    size_t n = 0;
    for (size_t i = 0; i < 4; i++, n++)
        nv[n] = (nghttp2_nv){(uint8_t *)fixed[i][0], (uint8_t *)fixed[i][1], strlen(fixed[i][0]), strlen(fixed[i][1]),
                             NGHTTP2_NV_FLAG_NONE};
    if (body)
        nv[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < nhdrs; i++, n++)
        nv[n] =
            (nghttp2_nv){(uint8_t *)hdrs[i].name, (uint8_t *)hdrs[i].value, strlen(hdrs[i].name), strlen(hdrs[i].value),
                         hdrs[i].sensitive ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE};
    h2_stream st = {.r = r, .body_max = body_max, .body = body, .body_len = body ? body_len : 0};
    nghttp2_data_provider prd = {.source.ptr = &st, .read_callback = read_body};
    st.id = nghttp2_submit_request(w->h2s, NULL, nv, n, body ? &prd : NULL, &st);
    free(nv);
    if (st.id < 0) {
        ctl_wire_fail(r, CTL_WIRE_MALFORMED, "HTTP/2: %s", nghttp2_strerror(st.id));
        return -1;
    }
    int rc = 0;
    while (!st.closed) {
        if (flush(w, r) != 0) {
            rc = -1;
            break;
        }
        if (st.closed)
            break;
        if (!nghttp2_session_want_read(w->h2s)) {
            ctl_wire_fail(r, CTL_WIRE_DROPPED, "the server ended the HTTP/2 connection before answering");
            rc = -1;
            break;
        }
        uint8_t buf[16384];
        ssize_t k = ctl_wire_read(w, buf, sizeof(buf), r);
        if (k <= 0) {
            if (k == 0)
                ctl_wire_fail(r, CTL_WIRE_DROPPED, "the server closed the connection %s",
                              st.got_any ? "in the middle of the answer" : "without answering");
            rc = -1;
            break;
        }
        ssize_t used = nghttp2_session_mem_recv(w->h2s, buf, (size_t)k);
        if (used < 0) {
            ctl_wire_fail(r, CTL_WIRE_DROPPED, "HTTP/2: %s", nghttp2_strerror((int)used));
            rc = -1;
            break;
        }
    }
    /* Send what is pending (WINDOW_UPDATE, RST_STREAM of a refused answer) before the stream's
     * state goes out of scope; a failure here changes nothing of the answer. */
    if (rc == 0) {
        ctl_wire_resp scratch = {0};
        if (flush(w, &scratch) != 0)
            w->reusable = false;
    }
    nghttp2_session_set_stream_user_data(w->h2s, st.id, NULL);
    *got_any = st.got_any;
    if (r->err != CTL_WIRE_OK)
        rc = -1;
    if (rc != 0 || !nghttp2_session_want_read(w->h2s))
        w->reusable = false;
    return rc;
}
