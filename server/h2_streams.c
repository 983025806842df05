/*
 * h2_streams.c - HTTP/2 request bodies over max_body_bytes are answered 413 while they arrive.
 *
 * h2o 2.2.5 buffers an HTTP/2 request body whole and calls the handler only at END_STREAM. Past
 * globalconf.max_request_entity_size (twice max_body_bytes, server.c) it resets the stream with
 * REFUSED_STREAM, which tells the client that the server never processed the request and that it
 * may send it again: curl re-uploads the body five times, Go's client retries until its deadline.
 *
 * The guard (guard.c) instead hands h2o's parser at most max_body_bytes of input at a time and,
 * after each piece, calls sx_h2_refuse_oversized(): a stream still receiving its body whose
 * content-length announces more than max_body_bytes, or whose buffered body already holds more,
 * leaves the receiving state and goes to the request handler at once, marked so that the handler
 * answers 413 payload_too_large without looking at the body (sx_h2_body_over_limit). No stream can
 * reach h2o's own limit that way. The guard holds back the rest of the connection's input until
 * the answers are out (sx_h2_answers_out): a frame of such a stream reaching h2o first would reset
 * it with the answer unsent. It then takes the DATA frames the client still sends on those streams
 * out of the input and gives their bytes back to the connection window (sx_h2_window_credit), so
 * h2o never resets them either; past a bound it asks the client to stop with RST_STREAM NO_ERROR
 * (sx_h2_end_refused), RFC 9113 section 8.1's way for a server that answered early.
 *
 * This file is the one place that reads h2o's HTTP/2 internals (<h2o/http2_internal.h>): the
 * connection's stream table and each stream's state, expected content-length and body buffer, all
 * of them fields of the installed 2.2.5 headers.
 */
#define H2O_USE_LIBUV 0
#include "server/server_internal.h"

#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include <stdint.h>

/* The mark on a request whose body was refused: its entity points here, with length 0. */
static const char body_over_limit[1];

bool sx_h2_body_over_limit(const h2o_req_t *req)
{
    return req->entity.base == body_over_limit;
}

static h2o_http2_conn_t *conn_of(h2o_socket_t *sock)
{
    h2o_http2_conn_t *h2 = sock->data;
    return h2 && h2->sock == sock && h2->state < H2O_HTTP2_CONN_STATE_IS_CLOSING ? h2 : NULL;
}

static bool over_limit(const h2o_http2_stream_t *s, size_t max_body)
{
    if (s->state != H2O_HTTP2_STREAM_STATE_RECV_BODY || !s->_req_body)
        return false;
    return (s->_expected_content_length != SIZE_MAX && s->_expected_content_length > max_body) ||
           s->_req_body->size > max_body;
}

size_t sx_h2_refuse_oversized(h2o_socket_t *sock, size_t max_body, uint32_t *ret_ids, size_t cap)
{
    h2o_http2_conn_t *h2 = conn_of(sock);
    if (!h2 || !cap)
        return 0;
    h2o_http2_stream_t *s, *over[SX_H2_REFUSE_MAX];
    size_t n = 0;
    if (cap > SX_H2_REFUSE_MAX)
        cap = SX_H2_REFUSE_MAX;
    kh_foreach_value(h2->streams, s, {
        if (n < cap && over_limit(s, max_body))
            over[n++] = s;
    });
    /* What h2o itself does when a body ends (execute_or_enqueue_request, run_pending_requests),
     * minus the queue: the handler answers a refused body without waiting for anything. */
    for (size_t i = 0; i < n; i++) {
        s = over[i];
        ret_ids[i] = s->stream_id;
        h2o_http2_stream_set_state(h2, s, H2O_HTTP2_STREAM_STATE_REQ_PENDING);
        h2o_http2_stream_set_state(h2, s, H2O_HTTP2_STREAM_STATE_SEND_HEADERS);
        if (h2->pull_stream_ids.max_processed < s->stream_id)
            h2->pull_stream_ids.max_processed = s->stream_id;
        s->req.entity = h2o_iovec_init(body_over_limit, 0);
        h2o_process_request(&s->req);
    }
    return n;
}

/* Whether stream id's answer has left h2o's stream: it is gone or has sent END_STREAM. */
static bool answer_out(h2o_http2_conn_t *h2, uint32_t id)
{
    h2o_http2_stream_t *s = h2o_http2_conn_get_stream(h2, id);
    return !s || s->state == H2O_HTTP2_STREAM_STATE_END_STREAM;
}

bool sx_h2_answers_out(h2o_socket_t *sock, const uint32_t *ids, size_t n)
{
    h2o_http2_conn_t *h2 = conn_of(sock);
    for (size_t i = 0; h2 && i < n; i++)
        if (!answer_out(h2, ids[i]))
            return false;
    return true;
}

void sx_h2_end_refused(h2o_socket_t *sock, const uint32_t *ids, size_t n)
{
    h2o_http2_conn_t *h2 = conn_of(sock);
    if (!h2 || !n)
        return;
    for (size_t i = 0; i < n; i++)
        h2o_http2__encode_rst_stream_frame(&h2->_write.buf, ids[i], 0 /* NO_ERROR */);
    h2o_http2_conn_request_write(h2);
}

void sx_h2_window_credit(h2o_socket_t *sock, size_t bytes)
{
    h2o_http2_conn_t *h2 = conn_of(sock);
    while (h2 && bytes) {
        int32_t n = bytes > INT32_MAX ? INT32_MAX : (int32_t)bytes;
        h2o_http2_encode_window_update_frame(&h2->_write.buf, 0, n);
        bytes -= (size_t)n;
        h2o_http2_conn_request_write(h2);
    }
}
