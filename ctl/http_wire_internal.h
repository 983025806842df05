/*
 * http_wire_internal.h - what the files of the HTTP transport share (http_wire.c: connections and
 * the request loop; http_wire_h1.c: HTTP/1.1; http_wire_h2.c: HTTP/2 with nghttp2). Not for the
 * commands: they use http_wire.h.
 */
#ifndef SX_CTL_HTTP_WIRE_INTERNAL_H
#define SX_CTL_HTTP_WIRE_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "ctl/http_wire.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct nghttp2_session nghttp2_session;

struct ctl_wire {
    ctl_wire_target t; /* strings owned */
    int fd;            /* -1 when not connected */
    SSL_CTX *ctx;      /* made at the first TLS connection, kept */
    SSL *ssl;
    bool h2;       /* this connection speaks HTTP/2 */
    bool reusable; /* the connection may carry the next request */
    const char *proto;
    nghttp2_session *h2s;
    /* HTTP/1.1: bytes read past the end of the previous answer are none (one request at a time,
     * no pipelining), so this buffer only holds the answer being read. */
    char in[CTL_WIRE_HEAD_MAX];
    size_t in_off, in_len;
};

/* Record why a request failed (the first reason stays). */
void ctl_wire_fail(ctl_wire_resp *r, ctl_wire_err err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int64_t ctl_wire_now_ms(void);
/* Append n bytes to r's body, at most max in all; false (r->err set) when over or out of memory. */
bool ctl_wire_body_add(ctl_wire_resp *r, const void *p, size_t n, size_t max);
/* The socket's send and receive timeouts from deadline (-1: none). */
void ctl_wire_set_timeout(ctl_wire *w, int64_t deadline);
/* Write all of p; 0, or -1 with r->err set. */
int ctl_wire_write(ctl_wire *w, const void *p, size_t n, ctl_wire_resp *r);
/* Read up to cap bytes: > 0 read, 0 the peer closed, -1 with r->err set. */
ssize_t ctl_wire_read(ctl_wire *w, void *p, size_t cap, ctl_wire_resp *r);
void ctl_wire_close(ctl_wire *w);

/* HTTP/1.1 and HTTP/2 halves of ctl_wire_request(): 0 with an answer in *r, or -1 with r->err set;
 * *got_any says whether any byte of an answer came (no retry then). */
int ctl_wire_h1_request(ctl_wire *w, const char *method, const char *path, const ctl_wire_header *hdrs, size_t nhdrs,
                        const char *body, size_t body_len, size_t body_max, int64_t deadline, ctl_wire_resp *r,
                        bool *got_any);
int ctl_wire_h2_request(ctl_wire *w, const char *method, const char *path, const ctl_wire_header *hdrs, size_t nhdrs,
                        const char *body, size_t body_len, size_t body_max, int64_t deadline, ctl_wire_resp *r,
                        bool *got_any);
/* Set up the HTTP/2 session of a new connection (the preface and SETTINGS go with the first
 * request); 0 or -1 with r->err set. */
int ctl_wire_h2_start(ctl_wire *w, ctl_wire_resp *r);
/* Free the HTTP/2 session, if any. */
void ctl_wire_h2_end(ctl_wire *w);

#endif /* SX_CTL_HTTP_WIRE_INTERNAL_H */
