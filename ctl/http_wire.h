/*
 * http_wire.h - the HTTP transport under secretsctl's two clients (http_client.c for the API,
 * client.c for the admin socket): one connection (TCP, TLS over TCP, or a Unix socket) and one
 * request at a time on it, spoken as HTTP/2 (nghttp2: h2c with prior knowledge, or h2 chosen over
 * ALPN) or as HTTP/1.1 (a small strict client: Content-Length, chunked or read-to-close bodies).
 * TLS is OpenSSL's, always verifying the server's chain and name.
 *
 * It exists instead of libcurl so that secretsctl starts quickly: libcurl and the ~36 libraries
 * it loads cost more than the whole request. Only what secretsctl needs is here: no redirects,
 * no proxies, no cookies, no compression, no authentication schemes.
 *
 * Answers are collected into a buffer that is wiped whenever it grows or is freed (values come
 * back in answers). The caller's header lines (the Authorization line with the token) are written
 * into the connection's output buffers and wiped there once sent; nghttp2's HPACK encoder keeps
 * its own copy of the Authorization value (sent never-indexed, so not in its table), in this
 * short-lived process only.
 */
#ifndef SX_CTL_HTTP_WIRE_H
#define SX_CTL_HTTP_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/text.h"

/* Why no answer came. */
typedef enum ctl_wire_err {
    CTL_WIRE_OK = 0,
    CTL_WIRE_RESOLVE,   /* the host name does not resolve */
    CTL_WIRE_CONNECT,   /* the connection was refused or failed */
    CTL_WIRE_TIMEOUT,   /* connecting or the answer took too long */
    CTL_WIRE_DROPPED,   /* the connection or the HTTP/2 stream ended before a whole answer came */
    CTL_WIRE_TLS,       /* the TLS handshake failed: a certificate that does not verify, a bad name */
    CTL_WIRE_MALFORMED, /* the answer broke HTTP's rules */
    CTL_WIRE_TOO_BIG,   /* the answer's head or body is over its limit */
    CTL_WIRE_PEER,      /* the admin socket is served by another user */
    CTL_WIRE_NOMEM,
} ctl_wire_err;

/* Bytes of an error message (ctl_wire_resp.error). */
#define CTL_WIRE_ERROR_MAX 256
/* Bytes of an answer's head (status line and header lines, or the HTTP/2 header block); a longer
 * one fails the request with CTL_WIRE_TOO_BIG. */
#define CTL_WIRE_HEAD_MAX (32u * 1024)
/* Bytes of an ETag kept from an answer, quotes included, with a NUL. */
#define CTL_WIRE_ETAG_MAX 128

/* Where to connect and how. */
typedef struct ctl_wire_target {
    const char *host;       /* a name, an IPv4 address or an IPv6 address without brackets */
    const char *port;       /* decimal */
    const char *unix_path;  /* set: a Unix socket instead of host/port (HTTP/1.1, no TLS) */
    const char *authority;  /* the Host / :authority value */
    const char *cacert;     /* TLS: a PEM file of the CAs to trust, NULL: the system's */
    bool tls;               /* https */
    bool http11;            /* HTTP/1.1 only (no h2c, only http/1.1 offered over ALPN) */
    bool check_peer_uid;    /* Unix socket: the server must run as this user or root */
    int connect_timeout_ms; /* connecting, TLS handshake included */
    int request_timeout_ms; /* one request, from sending to the end of the answer; <= 0: none */
} ctl_wire_target;

/* One header line of a request. sensitive: HTTP/2 sends it never-indexed. */
typedef struct ctl_wire_header {
    const char *name; /* lower case */
    const char *value;
    bool sensitive;
} ctl_wire_header;

/* An answer, or why none came. */
typedef struct ctl_wire_resp {
    ctl_wire_err err;
    int status;                   /* 0 when no answer came */
    ctl_text body;                /* wiped by ctl_wire_resp_free; body.data is never NULL after a request */
    char etag[CTL_WIRE_ETAG_MAX]; /* "" when none came or it was too long */
    int peer_uid;                 /* CTL_WIRE_PEER: the uid serving the socket, -1 unknown */
    char error[CTL_WIRE_ERROR_MAX];
} ctl_wire_resp;

typedef struct ctl_wire ctl_wire;

/* A connection to t (the strings are copied), not opened yet: the first request opens it. NULL
 * when out of memory. Free with ctl_wire_free(). */
ctl_wire *ctl_wire_new(const ctl_wire_target *t);
/* Close the connection and free w (NULL is fine). */
void ctl_wire_free(ctl_wire *w);

/* Send method path with the headers and an optional body (body_len bytes), and read the answer
 * (at most body_max bytes of body) into *ret, which is always filled. The connection is opened
 * when needed and kept for the next request when HTTP allows it; a kept connection the server
 * closed meanwhile is opened again once. Returns 0 when an answer came (any status), -EIO
 * otherwise (ret->err, ret->error say why). Free ret with ctl_wire_resp_free(). */
int ctl_wire_request(ctl_wire *w, const char *method, const char *path, const ctl_wire_header *hdrs, size_t nhdrs,
                     const char *body, size_t body_len, size_t body_max, ctl_wire_resp *ret);
void ctl_wire_resp_free(ctl_wire_resp *r);

/* The protocol the last request went over ("h2", "HTTP/1.1"), or NULL before any. */
const char *ctl_wire_protocol(const ctl_wire *w);

#endif /* SX_CTL_HTTP_WIRE_H */
