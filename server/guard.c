/*
 * guard.c - defences against hostile clients below the request handler: HTTP/2 frame budgets
 * (Rapid Reset, control-frame floods, oversized header blocks) and the HTTP/1.1 request-head limit.
 *
 * h2o 2.2.5 has no fix for HTTP/2 Rapid Reset (CVE-2023-44487), no per-connection limit on
 * SETTINGS, PING or PRIORITY frames, and no hook between reading bytes and parsing frames. The
 * guard makes one: it wraps each connection's socket read callback (h2o_socket_t._cb.read). Before
 * h2o sees newly read bytes (the last sock->bytes_read bytes of sock->input), a small streaming
 * parser walks the HTTP/2 frame headers in them - payloads are skipped, never copied - and charges
 * two token buckets per connection:
 *
 *   resets   RST_STREAM frames, and the other ways a client can make the server abandon a stream
 *            it has begun to answer: a WINDOW_UPDATE of 0 (or of 2^30 or more, which overflows) on
 *            a stream, and DATA on a stream whose HEADERS carried END_STREAM (h2o answers both
 *            with a stream reset). [server] http2_max_resets, default 200.
 *   control  SETTINGS, PING, PRIORITY, empty DATA without END_STREAM, empty CONTINUATION and
 *            frames of unknown type: frames that cost work (SETTINGS and PING are answered, unknown
 *            frames make h2o write a line to stderr) without asking for anything.
 *            [server] http2_max_control_frames, default 1000.
 *
 * A bucket holds its limit and refills at a tenth of it per second ("LIMIT per 10 s" with bursts
 * up to LIMIT). The frame that finds its bucket empty ends the connection before h2o parses any of
 * the bytes just read: the guard logs one warning, writes a GOAWAY (ENHANCE_YOUR_CALM) when it can
 * put one on a frame boundary (cleartext, no h2o write in flight), shuts the socket down, drops the
 * input and hands h2o a read error, so h2o tears the connection down through its own close path
 * (streams closed, pool jobs cancelled). So one connection makes the server start at most
 * http2_max_resets answers it then abandons, instead of millions. The loop thread remembers the
 * address for a minute: its next HTTP/2 connections start with a tenth of each budget, so a client
 * that reconnects after every close gets 20 abandoned answers per connection, not 200.
 *
 * A header block (HEADERS + CONTINUATION) larger than max_header_bytes + 4 KiB ends the connection
 * the same way: h2o 2.2.5 would buffer up to 400 KiB and HPACK can expand that further; smaller
 * blocks that decode to more than max_header_bytes are answered 431 by the request handler
 * (http.c).
 *
 * On HTTP/1.1 the guard checks each request head before h2o parses it: a head longer than
 * max_header_bytes, or with more header fields than h2o accepts (100), is answered 431 with the
 * JSON error body (h2o would buffer up to 400 KiB, then answer a plain-text 400). A head whose
 * body framing is ambiguous - Content-Length twice with different values or as a list, with
 * Transfer-Encoding, or Transfer-Encoding not ending in chunked, which h2o 2.2.5 all accepts - is
 * answered 400: those are what request smuggling through a proxy is built from. A Content-Length
 * over max_body_bytes is answered 413 before any of the body is read. After each of these answers
 * the write side is shut and the input is read and discarded - 64 KiB, or after a 413 the
 * announced body up to 64 MiB - so that a client that writes its whole body before reading gets
 * the answer rather than a reset; the client's close, that budget or [server] request_timeout ends
 * the connection.
 *
 * Keeping the wrapper in place. h2o installs a new read callback when a connection changes protocol
 * (TLS handshake -> HTTP/1.1 or HTTP/2 by ALPN; HTTP/1.1 -> HTTP/2 by prior knowledge or
 * Upgrade: h2c) and re-arms reading with its own callback after stopping (HTTP/1.1 while a request
 * is handled; HTTP/2 while more than 512 KiB of output waits for a client that does not read). The
 * guard wraps again: right after each of its own calls into h2o; at the end of every loop turn for
 * the connections it saw stop reading and those whose answers went out from a pool job; and once a
 * second for every connection, as a backstop. Bytes h2o read while unwrapped are not counted; after
 * such a gap the frame parser re-synchronises at the front of sock->input, which is a frame
 * boundary (h2o 2.2.5 always parses every complete frame it has). A frame longer than h2o accepts
 * (16 KiB; h2o closes the connection over it) stops the counting for that connection rather than
 * risk counting garbage.
 *
 * What this does not cover. HTTP/2 over TLS gets no GOAWAY (the socket is shut without one), and
 * the bytes decrypted together with the end of a TLS handshake reach h2o uncounted (one read's
 * worth). A connection's bytes are read before they are walked: h2o reads everything the socket
 * holds, so a flooding connection costs its read (up to the kernel's receive buffer) before it is
 * closed. Streams that h2o refuses on its own (more than 100 open) or resets before they reach the
 * handler (a request body that breaks its content-length or max_request_entity_size) cost only
 * their parsing and are not charged. WINDOW_UPDATE frames with ordinary increments are not limited
 * (h2o only records them). A client that sends a byte now and then keeps an HTTP/2 connection past
 * http2_idle_timeout (h2o re-arms it on every read), bounded by max_connections. Nothing here
 * limits how fast addresses open connections, nor an attack spread over many addresses: that is
 * max_connections', the authentication throttle's and the network's job.
 */
#include "server/metrics.h"
#include "server/server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define PREFACE       "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN   24
#define H2C_SIGNATURE 12          /* h2o switches an HTTP/1.1 connection to HTTP/2 on "PRI * HTTP/2" */
#define MAX_FRAME     16384       /* h2o 2.2.5 keeps the default SETTINGS_MAX_FRAME_SIZE */
#define BLOCK_SLACK   4096        /* a header block may exceed max_header_bytes by this before the connection ends */
#define MAX_FIELDS    100         /* h2o's H2O_MAX_HEADERS: HTTP/1.1 heads with more fields get 431 */
#define DRAIN_SMALL   65536       /* after its own answer the guard reads and drops this much more input */
#define DRAIN_MAX     (64u << 20) /* ... or, after a 413, the announced body up to this */
#define REFILL_SECS   10          /* a budget refills completely in this many seconds */
#define BACKSTOP_MS   1000
#define ENDED_RING    32
#define OFFENDERS     64                     /* addresses remembered per loop thread */
#define OFFENDER_MS   60000                  /* for this long after one of its connections was closed */
#define OFFENDER_CUT  10                     /* their next connections start with 1/10 of the budgets */
#define DISCARD_MAX   (2 * SX_H2_REFUSE_MAX) /* streams whose DATA the guard drops, per connection */

/* HTTP/2 frame types (RFC 9113 section 6) and flags */
enum {
    F_DATA,
    F_HEADERS,
    F_PRIORITY,
    F_RST_STREAM,
    F_SETTINGS,
    F_PUSH_PROMISE,
    F_PING,
    F_GOAWAY,
    F_WINDOW_UPDATE,
    F_CONTINUATION
};
#define FLAG_END_STREAM  0x1
#define FLAG_END_HEADERS 0x4

enum { PROTO_H1, PROTO_HANDSHAKE, PROTO_H2 };
enum { GO, TOO_MANY_RESETS, TOO_MANY_CONTROL, BLOCK_TOO_LARGE };

/* A token bucket in 1/10000 frame units: holds limit frames, refills limit per REFILL_SECS. */
typedef struct budget {
    uint64_t level, at; /* at: the loop time (ms) of the last refill, 0 = never used */
    uint64_t used;      /* frames charged in all */
} budget;

/* The streaming HTTP/2 frame parser. */
typedef struct h2scan {
    uint8_t hdr[9], hdr_len; /* a frame header split over reads */
    uint8_t preface_pos;     /* bytes of the client preface seen so far */
    bool preface_maybe;      /* the client preface may come next: skipped if it does */
    uint8_t type, flags;
    uint32_t stream, len, payload_left;
    uint8_t pl[4], pl_len, pl_want; /* the payload kept (WINDOW_UPDATE's increment) */
    uint32_t block;                 /* size of the header block so far */
    uint32_t last_stream;           /* highest stream of a HEADERS frame */
    uint32_t ended[ENDED_RING];     /* recent streams whose HEADERS carried END_STREAM */
    uint8_t ended_next;
    bool lost; /* out of step: counts nothing until the next resync */
} h2scan;

typedef struct sx_guard sx_guard;

struct sx_guard {
    sx_conn *conn;
    h2o_socket_cb inner;    /* h2o's read callback, called by the guard's */
    h2o_socket_cb first_cb; /* HTTP/1.1's read callback (cleartext), or the TLS handshake's */
    h2o_linklist_t watch;   /* in thread->guard_watch while h2o may re-arm reading unwrapped */
    uint64_t watched_at;    /* loop time it was put there */
    uint8_t proto;
    unsigned in_read;  /* depth of the guard's calls into h2o */
    bool closed;       /* the socket closed during such a call: free on the way out */
    bool dropping;     /* ending (HTTP/2) or answered by the guard (HTTP/1.1): input is discarded */
    bool head_pending; /* HTTP/1.1: the bytes at the front of the input begin a request head */
    bool h1_next;      /* HTTP/1.1: a request ended; the next read may begin a head */
    bool offender;     /* HTTP/2 from an address that was closed for abuse lately */
    bool bodies;       /* HTTP/2: the input walked since h2_feed last looked has request-body frames */
    size_t head_scanned;
    size_t drain_left; /* HTTP/1.1 answered by the guard: bytes it still reads before it closes */
    budget resets, control;
    h2scan scan;
    /* HTTP/2 streams just answered 413 (h2_streams.c): input waits here until those answers are
     * out, so that no frame of theirs reaches h2o first (it would reset them, answer unsent). */
    char *held;
    size_t held_len, held_keep; /* held_keep: the bytes left in sock->input (a frame's start) */
    uint32_t refused[SX_H2_REFUSE_MAX];
    uint8_t nrefused;
    /* Streams answered 413 whose client may still be sending: their DATA frames are taken out of
     * the input (and credited back to the connection's flow-control window) until END_STREAM or
     * the client's RST_STREAM - h2o would reset the stream (STREAM_CLOSED) on each, which clients
     * report as a failed request. Past DRAIN_MAX bytes the client is asked to stop with
     * RST_STREAM NO_ERROR (RFC 9113 section 8.1); not before, as libcurl 7.88 takes that reset for
     * a failure too. */
    uint32_t discard[DISCARD_MAX];
    uint64_t discarded[DISCARD_MAX]; /* bytes taken out so far */
    uint8_t ndiscard;
    bool held_stopped; /* the guard stopped reading while it held too much */
};

static void guard_read(h2o_socket_t *sock, const char *err);

/* The fields of a 9-byte HTTP/2 frame header (RFC 9113 section 4.1). */
static void frame_header(const uint8_t h[9], uint32_t *ret_len, uint8_t *ret_type, uint8_t *ret_flags,
                         uint32_t *ret_stream)
{
    *ret_len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
    *ret_type = h[3];
    *ret_flags = h[4];
    *ret_stream = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) & 0x7fffffffu;
}

/* ---- budgets ---------------------------------------------------------------------------------- */

/* Charge one frame; false when the bucket is empty (limit 0 = no limit). A bucket starts full, or
 * at a tenth for a repeat offender. */
static bool budget_take(budget *b, unsigned limit, bool offender, uint64_t now_ms)
{
    b->used++;
    if (!limit)
        return true;
    uint64_t cap = (uint64_t)limit * 10000;
    if (!b->at) {
        b->level = offender ? cap / OFFENDER_CUT : cap;
        b->at = now_ms;
    } else if (now_ms > b->at) {
        /* limit per REFILL_SECS = limit * 10000 / (REFILL_SECS * 1000) units per ms */
        b->level += (now_ms - b->at) * limit * 10000 / (REFILL_SECS * 1000);
        if (b->level > cap)
            b->level = cap;
        b->at = now_ms;
    }
    if (b->level < 10000)
        return false;
    b->level -= 10000;
    return true;
}

/* Addresses whose HTTP/2 connections were closed for abuse lately, per loop thread. A client that
 * reconnects after each close would otherwise get full budgets every time: 200 answers started
 * and abandoned per connection. Its next connections start with a tenth instead. */
typedef struct offender {
    uint8_t addr[16];
    uint64_t until; /* loop time (ms); 0 = free slot */
} offender;
static _Thread_local offender offenders[OFFENDERS];

/* The connection's peer as h2o knows it: on a proxy_listen listener, the client its PROXY header
 * named (peer.c), so an abuser behind a load balancer is remembered, not the balancer. */
static socklen_t conn_peer(sx_conn *c, struct sockaddr_storage *ss)
{
    if (c->sock)
        return h2o_socket_getpeername(c->sock, (struct sockaddr *)ss);
    socklen_t sl = sizeof(*ss);
    return getpeername(c->fd, (struct sockaddr *)ss, &sl) == 0 ? sl : 0;
}

static bool peer_addr(sx_conn *c, uint8_t addr[16])
{
    struct sockaddr_storage ss;
    memset(addr, 0, 16);
    if (conn_peer(c, &ss) == 0)
        return false;
    if (ss.ss_family == AF_INET)
        memcpy(addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    else if (ss.ss_family == AF_INET6)
        memcpy(addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    else
        return false;
    return true;
}

static bool is_offender(sx_conn *c, uint64_t now)
{
    uint8_t a[16];
    if (!peer_addr(c, a))
        return false;
    for (int i = 0; i < OFFENDERS; i++)
        if (offenders[i].until > now && memcmp(offenders[i].addr, a, 16) == 0)
            return true;
    return false;
}

static void add_offender(sx_conn *c, uint64_t now)
{
    uint8_t a[16];
    if (!peer_addr(c, a))
        return;
    int slot = -1, soonest = 0;
    for (int i = 0; i < OFFENDERS && slot < 0; i++) {
        if (offenders[i].until > now && memcmp(offenders[i].addr, a, 16) == 0)
            slot = i; /* known: extend */
        else if (offenders[i].until < offenders[soonest].until)
            soonest = i; /* a free slot, an expired one, or the one that expires first */
    }
    if (slot < 0)
        slot = soonest;
    memcpy(offenders[slot].addr, a, 16);
    offenders[slot].until = now + OFFENDER_MS;
}

/* ---- the HTTP/2 frame parser ------------------------------------------------------------------ */

typedef struct scan_ctx {
    sx_conn *c;
    bool count; /* false while re-synchronising: frames are walked, not charged */
    uint64_t now;
} scan_ctx;

static int charge(scan_ctx *x, budget *b, unsigned limit, int verdict)
{
    if (!x->count)
        return GO;
    return budget_take(b, limit, x->c->guard->offender, x->now) ? GO : verdict;
}

static int check_block(scan_ctx *x, h2scan *s)
{
    if (!x->count)
        return GO;
    return s->block > x->c->thread->server->config->max_header_bytes + BLOCK_SLACK ? BLOCK_TOO_LARGE : GO;
}

/* A complete frame header has been read. */
static int on_frame(scan_ctx *x, h2scan *s)
{
    const sx_config *cfg = x->c->thread->server->config;
    sx_guard *g = x->c->guard;
    if (s->type == F_DATA || (s->type == F_HEADERS && !(s->flags & FLAG_END_STREAM)))
        g->bodies = true;
    if (s->len > MAX_FRAME) {
        s->lost = true; /* h2o answers FRAME_SIZE_ERROR and closes; or the parser lost step */
        return GO;
    }
    switch (s->type) {
    case F_DATA:
        if (s->len == 0 && !(s->flags & FLAG_END_STREAM))
            return charge(x, &g->control, cfg->http2_max_control_frames, TOO_MANY_CONTROL);
        for (int i = 0; i < ENDED_RING; i++)
            if (s->ended[i] == s->stream && s->stream)
                return charge(x, &g->resets, cfg->http2_max_resets, TOO_MANY_RESETS);
        return GO;
    case F_HEADERS:
        s->block = s->len;
        if (s->stream > s->last_stream)
            s->last_stream = s->stream;
        if (s->flags & FLAG_END_STREAM) {
            s->ended[s->ended_next] = s->stream;
            s->ended_next = (uint8_t)((s->ended_next + 1) % ENDED_RING);
        }
        return check_block(x, s);
    case F_CONTINUATION:
        s->block += s->len;
        if (s->len == 0 && !(s->flags & FLAG_END_HEADERS)) {
            int v = charge(x, &g->control, cfg->http2_max_control_frames, TOO_MANY_CONTROL);
            if (v)
                return v;
        }
        return check_block(x, s);
    case F_RST_STREAM:
        return charge(x, &g->resets, cfg->http2_max_resets, TOO_MANY_RESETS);
    case F_SETTINGS:
    case F_PING:
    case F_PRIORITY:
        return charge(x, &g->control, cfg->http2_max_control_frames, TOO_MANY_CONTROL);
    case F_WINDOW_UPDATE:
        if (s->stream && s->len == 4)
            s->pl_want = 4; /* decided on the increment, once it is in */
        return GO;
    case F_PUSH_PROMISE:
    case F_GOAWAY:
        return GO;
    default:
        return charge(x, &g->control, cfg->http2_max_control_frames, TOO_MANY_CONTROL);
    }
}

/* The kept payload of a frame is complete. */
static int on_payload(scan_ctx *x, h2scan *s)
{
    uint32_t incr =
        ((uint32_t)s->pl[0] << 24 | (uint32_t)s->pl[1] << 16 | (uint32_t)s->pl[2] << 8 | s->pl[3]) & 0x7fffffffu;
    if (incr == 0 || incr >= 0x40000000u) /* h2o resets the stream: a zero increment, or an overflow */
        return charge(x, &x->c->guard->resets, x->c->thread->server->config->http2_max_resets, TOO_MANY_RESETS);
    return GO;
}

/* Walk n bytes of the client's byte stream. Returns GO or why the connection must end. */
static int scan_feed(scan_ctx *x, const uint8_t *p, size_t n)
{
    h2scan *s = &x->c->guard->scan;
    while (n && !s->lost) {
        size_t k;
        if (s->preface_maybe) {
            /* No frame starts like the preface (its length would be 5 MiB), so the bytes decide. */
            if (p[0] != (uint8_t)PREFACE[s->preface_pos]) {
                s->lost = s->preface_pos > 0; /* half a preface: h2o closes the connection over it */
                s->preface_maybe = false;
                continue;
            }
            k = 1;
            if (++s->preface_pos == PREFACE_LEN)
                s->preface_maybe = false;
        } else if (s->payload_left) {
            k = n < s->payload_left ? n : s->payload_left;
            for (size_t i = 0; i < k && s->pl_len < s->pl_want; i++)
                s->pl[s->pl_len++] = p[i];
            s->payload_left -= (uint32_t)k;
            if (!s->payload_left && s->pl_want) {
                s->pl_want = 0;
                int v = on_payload(x, s);
                if (v)
                    return v;
            }
        } else {
            k = 9u - s->hdr_len;
            if (k > n)
                k = n;
            memcpy(s->hdr + s->hdr_len, p, k);
            s->hdr_len = (uint8_t)(s->hdr_len + k);
            if (s->hdr_len == 9) {
                s->hdr_len = 0;
                frame_header(s->hdr, &s->len, &s->type, &s->flags, &s->stream);
                s->payload_left = s->len;
                s->pl_len = s->pl_want = 0;
                int v = on_frame(x, s);
                if (v)
                    return v;
            }
        }
        p += k;
        n -= k;
    }
    return GO;
}

/* Start over at the front of sock->input, which h2o leaves on a frame boundary or before the
 * preface (it consumes whole frames, and the preface whole), counting nothing. */
static void scan_resync(sx_conn *c, h2o_socket_t *sock)
{
    h2scan *s = &c->guard->scan;
    uint32_t last = s->last_stream;
    memset(s, 0, sizeof(*s));
    s->last_stream = last;
    s->preface_maybe = true; /* an empty buffer may be before the preface (Upgrade: h2c) or after it */
    scan_ctx x = {c, false, 0};
    scan_feed(&x, (const uint8_t *)sock->input->bytes, sock->input->size);
}

/* ---- connection life ------------------------------------------------------------------------ */

static void conn_free(sx_conn *c)
{
    free(c->guard->held);
    free(c->guard);
    free(c);
}

/* Call h2o's read callback. False when the connection closed meanwhile (c is freed then). */
static bool call_inner(sx_conn *c, h2o_socket_t *sock, const char *err)
{
    sx_guard *g = c->guard;
    g->in_read++;
    g->inner(sock, err);
    g->in_read--;
    if (g->closed && !g->in_read) {
        conn_free(c);
        return false;
    }
    return !g->closed;
}

static void watch(sx_conn *c)
{
    if (!h2o_linklist_is_linked(&c->guard->watch)) {
        h2o_linklist_insert(&c->thread->guard_watch, &c->guard->watch);
        c->guard->watched_at = h2o_now(c->thread->ctx.loop);
    }
}

/* The connection speaks HTTP/2 from now on. */
static void become_h2(sx_conn *c)
{
    sx_guard *g = c->guard;
    g->proto = PROTO_H2;
    g->head_pending = g->h1_next = false;
    g->offender = is_offender(c, h2o_now(c->thread->ctx.loop));
}

/* h2o installed cb as the read callback: wrap it and learn what the connection speaks now. */
static void adopt(sx_conn *c, h2o_socket_t *sock, h2o_socket_cb cb)
{
    sx_guard *g = c->guard;
    g->inner = cb;
    sock->_cb.read = guard_read;
    switch (g->proto) {
    case PROTO_HANDSHAKE: {
        if (cb == g->first_cb)
            return; /* still shaking hands */
        h2o_iovec_t alpn = h2o_socket_ssl_get_selected_protocol(sock);
        if (alpn.len == 2 && memcmp(alpn.base, "h2", 2) == 0) {
            become_h2(c);
            scan_resync(c, sock);
        } else {
            g->proto = PROTO_H1;
            g->first_cb = cb;
            g->head_pending = true;
            g->head_scanned = 0;
        }
        return;
    }
    case PROTO_H1:
        if (cb == g->first_cb)
            return;
        become_h2(c); /* only HTTP/2 replaces HTTP/1.1's callback on a connection */
        scan_resync(c, sock);
        return;
    default:
        scan_resync(c, sock);
        return;
    }
}

/* After a call into h2o: keep the wrapper in place. */
static void after_inner(sx_conn *c, h2o_socket_t *sock)
{
    h2o_socket_cb cb = sock->_cb.read;
    if (cb == guard_read)
        return;
    if (!cb)
        watch(c); /* stopped reading; h2o will re-arm it with its own callback */
    else
        adopt(c, sock, cb);
}

static void peer_of(sx_conn *c, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    snprintf(buf, cap, "?");
    if (conn_peer(c, &ss) == 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)cap);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, (socklen_t)cap);
}

/* End an abusive HTTP/2 connection (see the top of the file). */
static void h2_end(sx_conn *c, h2o_socket_t *sock, int verdict, uint32_t last_stream)
{
    sx_guard *g = c->guard;
    const sx_config *cfg = c->thread->server->config;
    char peer[64];
    peer_of(c, peer, sizeof(peer));
    if (verdict == BLOCK_TOO_LARGE)
        sx_log(SX_LOG_WARN, "closing HTTP/2 connection from %s after a header block of %u bytes (limit %zu)", peer,
               g->scan.block, cfg->max_header_bytes + BLOCK_SLACK);
    else
        sx_log(SX_LOG_WARN, "closing HTTP/2 connection from %s after %llu %s (limit %u per %d s)", peer,
               (unsigned long long)(verdict == TOO_MANY_RESETS ? g->resets.used : g->control.used),
               verdict == TOO_MANY_RESETS ? "stream resets" : "control frames",
               verdict == TOO_MANY_RESETS ? cfg->http2_max_resets : cfg->http2_max_control_frames, REFILL_SECS);
    sx_metrics_abuse_close(verdict == BLOCK_TOO_LARGE   ? SX_METRICS_ABUSE_HEADER_BLOCK
                           : verdict == TOO_MANY_RESETS ? SX_METRICS_ABUSE_RESETS
                                                        : SX_METRICS_ABUSE_CONTROL_FRAMES);
    g->dropping = true;
    add_offender(c, h2o_now(c->thread->ctx.loop));
    if (!sock->ssl && !h2o_socket_is_writing(sock)) {
        /* Nothing of h2o's is on its way to the kernel, so this lands on a frame boundary. */
        uint8_t f[17] = {0,
                         0,
                         8,
                         F_GOAWAY,
                         0,
                         0,
                         0,
                         0,
                         0,
                         (uint8_t)(last_stream >> 24 & 0x7f),
                         (uint8_t)(last_stream >> 16),
                         (uint8_t)(last_stream >> 8),
                         (uint8_t)last_stream,
                         0,
                         0,
                         0,
                         0x0b /* ENHANCE_YOUR_CALM */};
        ssize_t w = send(c->fd, f, sizeof(f), MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
    }
    /* Shut down both ways: a write h2o still has in flight to a client that does not read fails
     * now, instead of holding the connection open. */
    shutdown(c->fd, SHUT_RDWR);
    h2o_buffer_consume(&sock->input, sock->input->size);
    call_inner(c, sock, h2o_socket_error_closed);
}

/* ---- HTTP/1.1 request heads ------------------------------------------------------------------- */

/* The answers the guard writes itself on HTTP/1.1, each ending the connection. */
enum { H1_431, H1_400_FRAMING, H1_413, H1_NANSWERS };
static const struct {
    const char *status, *body;
} h1_texts[H1_NANSWERS] = {
    [H1_431] =
        {"431 Request Header Fields Too Large",
         "{\"error\":\"the request headers are larger than the server accepts\",\"code\":\"headers_too_large\"}"},
    [H1_400_FRAMING] =
        {"400 Bad Request",
         "{\"error\":\"the request body's length is ambiguous (Content-Length and Transfer-Encoding disagree "
         "or repeat)\",\"code\":\"invalid_request\"}"},
    [H1_413] = {"413 Payload Too Large",
                "{\"error\":\"the request body is larger than max_body_bytes\",\"code\":\"payload_too_large\"}"},
};
static char h1_answers[H1_NANSWERS][400];
static size_t h1_answer_len[H1_NANSWERS];
static pthread_once_t h1_answers_once = PTHREAD_ONCE_INIT;

static void h1_answers_init(void)
{
    for (int i = 0; i < H1_NANSWERS; i++) {
        int n = snprintf(h1_answers[i], sizeof(h1_answers[i]),
                         "HTTP/1.1 %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                         "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                         h1_texts[i].status, strlen(h1_texts[i].body), h1_texts[i].body);
        h1_answer_len[i] = n > 0 && (size_t)n < sizeof(h1_answers[i]) ? (size_t)n : 0;
    }
}

static void on_answer_sent(h2o_socket_t *sock, const char *err)
{
    sx_conn *c = sock->on_close.data;
    if (err) {
        call_inner(c, sock, err); /* h2o closes the connection */
        return;
    }
    /* The answer is out: FIN after it. The client's close, the drain budget or the request timeout
     * ends the rest. */
    shutdown(c->fd, SHUT_WR);
}

/* Answer an HTTP/1.1 request with one of the guard's own answers and take the connection over:
 * the input is read and discarded from now on, up to drain bytes, so that a client that writes its
 * whole body before it reads (Python's http.client, for one) reads the answer instead of a reset.
 * False when h2o still has an answer in flight (then h2o's own handling applies). */
static bool h1_reject(sx_conn *c, h2o_socket_t *sock, int answer, size_t drain)
{
    if (h2o_socket_is_writing(sock))
        return false;
    pthread_once(&h1_answers_once, h1_answers_init);
    if (!h1_answer_len[answer])
        return false;
    c->guard->dropping = true;
    c->guard->drain_left = drain;
    size_t n = sock->input->size;
    h2o_buffer_consume(&sock->input, n);
    c->guard->drain_left -= n < drain ? n : drain;
    h2o_iovec_t buf = h2o_iovec_init(h1_answers[answer], h1_answer_len[answer]);
    h2o_socket_write(sock, &buf, 1, on_answer_sent);
    sx_log(SX_LOG_DEBUG, "answered %.3s on HTTP/1.1 and closed the connection", h1_texts[answer].status);
    return true;
}

/* Case-insensitive: does the header line at p (up to its end e) have the field name name? */
static bool field_is(const char *p, const char *e, const char *name, size_t nlen)
{
    if ((size_t)(e - p) <= nlen || p[nlen] != ':')
        return false;
    for (size_t i = 0; i < nlen; i++) {
        char a = p[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != name[i])
            return false;
    }
    return true;
}

/* The field value of a header line p..e without the name and the surrounding blanks. */
static void field_value(const char *p, const char *e, size_t nlen, const char **ret_v, size_t *ret_len)
{
    const char *v = p + nlen + 1;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *ret_v = v;
    *ret_len = (size_t)(e - v);
}

/*
 * How the head p[0..end) frames its body (RFC 9112 section 6). A request whose body length two
 * parties could read differently is the building block of request smuggling, and h2o 2.2.5 lets
 * it through: two Content-Length fields that differ (h2o uses the first), a Content-Length list,
 * or Transfer-Encoding together with Content-Length. Transfer-Encoding that does not end in
 * "chunked" cannot be framed at all. All of these are H1_400_FRAMING. A Content-Length over
 * max_body_bytes is H1_413 (*ret_length says how much the client means to send). Otherwise -1.
 */
static int h1_framing(const char *p, size_t end, size_t max_body, uint64_t *ret_length, bool *ret_chunked)
{
    bool have_cl = false, have_te = false;
    uint64_t cl = 0;
    const char *line = memchr(p, '\n', end);
    while (line && (size_t)(line + 1 - p) < end) {
        const char *b = line + 1;
        const char *e = memchr(b, '\n', end - (size_t)(b - p));
        if (!e)
            break;
        const char *v;
        size_t vl;
        if (field_is(b, e, "content-length", 14)) {
            field_value(b, e, 14, &v, &vl);
            uint64_t n = 0;
            if (vl == 0 || vl > 19)
                return H1_400_FRAMING;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return H1_400_FRAMING; /* "5, 5", "+5", "0x5": never guessed at */
                n = n * 10 + (uint64_t)(v[i] - '0');
            }
            if (have_cl && n != cl)
                return H1_400_FRAMING;
            have_cl = true;
            cl = n;
        } else if (field_is(b, e, "transfer-encoding", 17)) {
            field_value(b, e, 17, &v, &vl);
            if (vl < 7 || strncasecmp(v + vl - 7, "chunked", 7) != 0 ||
                (vl > 7 && v[vl - 8] != ' ' && v[vl - 8] != ','))
                return H1_400_FRAMING;
            have_te = true;
        }
        line = e;
    }
    if (have_cl && have_te)
        return H1_400_FRAMING;
    *ret_length = cl;
    *ret_chunked = have_te;
    return have_cl && cl > max_body ? H1_413 : -1;
}

static size_t head_end(const char *p, size_t n, size_t from);

/* Requests pipelined behind the one at the front in the same read reach h2o without passing
 * through the guard's head check: walk the ones whose place is known (after bodies framed by
 * Content-Length) and report H1_400_FRAMING when one of them is ambiguous. */
static int h1_pipelined(const char *p, size_t n, size_t off, size_t limit, size_t max_body)
{
    for (int k = 0; k < 64 && off < n; k++) {
        size_t upto = n - off < limit + 4 ? n - off : limit + 4;
        size_t end = head_end(p + off, upto, 0);
        if (!end)
            return -1;
        uint64_t length = 0;
        bool chunked = false;
        int f = h1_framing(p + off, end, max_body, &length, &chunked);
        if (f == H1_400_FRAMING)
            return f;
        if (f >= 0 || chunked || length > n)
            return -1;
        off += end + (size_t)length;
    }
    return -1;
}

/* After a request, the next bytes begin a head only if they look like a request line (a pipelined
 * request may already be in its body, which h2o reads with the same callback). */
static bool looks_like_request_start(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z')
        i++;
    return i == n || (i > 0 && p[i] == ' ');
}

/* End of the head in p[0..n): the offset after its empty line, or 0. */
static size_t head_end(const char *p, size_t n, size_t from)
{
    for (const char *q = p + from; from < n && (q = memchr(q, '\n', (size_t)(p + n - q))) != NULL; q++) {
        size_t j = (size_t)(q - p) + 1;
        if (j < n && p[j] == '\r')
            j++;
        if (j < n && p[j] == '\n')
            return j + 1;
    }
    return 0;
}

/* Check the head at the front of the input of an HTTP/1.1 connection. True when the guard took
 * the connection over (431). A connection that turns out to be h2c leaves with g->proto set. */
static bool h1_check(sx_conn *c, h2o_socket_t *sock)
{
    sx_guard *g = c->guard;
    const char *p = sock->input->bytes;
    size_t n = sock->input->size;
    if (g->h1_next) {
        g->h1_next = false;
        g->head_pending = looks_like_request_start(p, n);
        g->head_scanned = 0;
    }
    if (!g->head_pending || !n)
        return false;
    if (!sock->ssl && memcmp(p, PREFACE, n < PREFACE_LEN ? n : PREFACE_LEN) == 0) {
        if (n >= H2C_SIGNATURE) {
            /* h2c with prior knowledge: h2o switches to HTTP/2 on these bytes. */
            become_h2(c);
            memset(&g->scan, 0, sizeof(g->scan));
            g->scan.preface_maybe = true;
        }
        return false;
    }
    size_t limit = c->thread->server->config->max_header_bytes;
    size_t upto = n < limit + 4 ? n : limit + 4;
    size_t end = head_end(p, upto, g->head_scanned > 3 ? g->head_scanned - 3 : 0);
    if (end) {
        size_t lines = 0;
        for (const char *q = p; (q = memchr(q, '\n', (size_t)(p + end - q))) != NULL; q++)
            lines++;
        g->head_pending = false;
        /* the request line, the fields, the empty line */
        if (lines > MAX_FIELDS + 2)
            return h1_reject(c, sock, H1_431, DRAIN_SMALL);
        uint64_t length = 0;
        bool chunked = false;
        size_t max_body = c->thread->server->config->max_body_bytes;
        int framing = h1_framing(p, end, max_body, &length, &chunked);
        if (framing == H1_413)
            return h1_reject(c, sock, H1_413, length < DRAIN_MAX ? (size_t)length + DRAIN_SMALL : DRAIN_MAX);
        if (framing < 0 && !chunked && length <= n - end)
            framing = h1_pipelined(p, n, end + (size_t)length, limit, max_body);
        return framing >= 0 && h1_reject(c, sock, framing, DRAIN_SMALL);
    }
    g->head_scanned = upto;
    return n > limit && h1_reject(c, sock, H1_431, DRAIN_SMALL);
}

/* ---- HTTP/2 request bodies over max_body_bytes ------------------------------------------------ */

/* More input than this waits in g->held: the guard stops reading instead. */
static size_t held_limit(const sx_conn *c)
{
    return 2 * c->thread->server->config->max_body_bytes + 65536;
}

static int discard_index(const sx_guard *g, uint32_t stream)
{
    for (int i = 0; i < g->ndiscard; i++)
        if (g->discard[i] == stream)
            return i;
    return -1;
}

static void discard_drop(sx_guard *g, int i)
{
    size_t after = (size_t)(g->ndiscard - i - 1);
    memmove(g->discard + i, g->discard + i + 1, sizeof(g->discard[0]) * after);
    memmove(g->discarded + i, g->discarded + i + 1, sizeof(g->discarded[0]) * after);
    g->ndiscard--;
}

static void discard_add(sx_guard *g, uint32_t stream)
{
    if (g->ndiscard == DISCARD_MAX)
        discard_drop(g, 0); /* the oldest goes: h2o answers its DATA itself */
    g->discard[g->ndiscard] = stream;
    g->discarded[g->ndiscard++] = 0;
}

/* Take the DATA frames of discarded streams out of sock->input and give their bytes back to the
 * client's connection window. The input begins on a frame boundary (h2o parses whole frames only);
 * the walk stops at the first incomplete frame, which a later call sees whole. */
static void strip_discarded(sx_guard *g, h2o_socket_t *sock)
{
    if (!g->ndiscard)
        return;
    uint8_t *p = (uint8_t *)sock->input->bytes;
    size_t n = sock->input->size, off = 0, kept = 0, credit = 0, nask = 0;
    uint32_t ask[DISCARD_MAX];
    while (g->ndiscard && n - off >= 9) {
        uint32_t len, stream;
        uint8_t type, flags;
        frame_header(p + off, &len, &type, &flags, &stream);
        if (n - off < 9 + (size_t)len)
            break;
        int i = type == F_DATA || type == F_RST_STREAM ? discard_index(g, stream) : -1;
        bool drop = i >= 0 && type == F_DATA;
        if (drop) {
            credit += len;
            uint64_t before = g->discarded[i];
            g->discarded[i] += len;
            if (before <= DRAIN_MAX && g->discarded[i] > DRAIN_MAX && nask < DISCARD_MAX)
                ask[nask++] = stream;
        }
        if (i >= 0 && (type == F_RST_STREAM || (flags & FLAG_END_STREAM)))
            discard_drop(g, i);
        if (!drop) {
            if (kept != off)
                memmove(p + kept, p + off, 9 + (size_t)len);
            kept += 9 + len;
        }
        off += 9 + len;
    }
    if (kept == off)
        return;
    memmove(p + kept, p + off, n - off);
    sock->input->size = kept + (n - off);
    sx_h2_window_credit(sock, credit);
    sx_h2_end_refused(sock, ask, nask);
}

/* Keep rest (malloc'd, or NULL) and what sock->input holds past held_keep for later. False when
 * out of memory. */
static bool hold(sx_guard *g, h2o_socket_t *sock, char *rest, size_t rest_len)
{
    size_t extra = sock->input->size > g->held_keep ? sock->input->size - g->held_keep : 0;
    if (extra || rest_len) {
        char *p = realloc(g->held, g->held_len + rest_len + extra);
        if (!p)
            return false;
        g->held = p;
        if (rest_len)
            memcpy(p + g->held_len, rest, rest_len);
        if (extra)
            memcpy(p + g->held_len + rest_len, sock->input->bytes + g->held_keep, extra);
        g->held_len += rest_len + extra;
        sock->input->size = g->held_keep;
    }
    return true;
}

/* After a call into h2o on an HTTP/2 connection: hand each stream whose body is over
 * max_body_bytes to the handler now (h2_streams.c), which answers 413. Until those answers are
 * written (sx_guard_sweep), the rest of the input waits. True when it does. */
static bool h2_refuse_bodies(sx_conn *c, h2o_socket_t *sock, bool look)
{
    sx_guard *g = c->guard;
    if (!look || g->inner == g->first_cb)
        return false; /* h2o's HTTP/1.1 code still owns the socket: no HTTP/2 streams yet */
    g->nrefused =
        (uint8_t)sx_h2_refuse_oversized(sock, c->thread->server->config->max_body_bytes, g->refused, SX_H2_REFUSE_MAX);
    if (!g->nrefused)
        return false;
    for (unsigned i = 0; i < g->nrefused; i++)
        discard_add(g, g->refused[i]);
    g->held_keep = sock->input->size;
    watch(c);
    return true;
}

/* Hand HTTP/2 input to h2o at most max_body_bytes at a time and look for bodies over the limit
 * after each piece: h2o resets a stream whose buffered body passes twice the limit with
 * REFUSED_STREAM, so no piece may carry a stream from under the limit to past that. The rest of the
 * input waits in a copy meanwhile. */
static void h2_feed(sx_conn *c, h2o_socket_t *sock, bool look)
{
    sx_guard *g = c->guard;
    /* Only input with request-body frames (or not walked) can bring a body over the limit. */
    look = look || g->bodies || g->scan.lost;
    g->bodies = false;
    size_t piece = c->thread->server->config->max_body_bytes;
    char *rest = NULL;
    size_t rest_len = 0, rest_off = 0;
    if (sock->input->size > piece) {
        rest_len = sock->input->size - piece;
        rest = malloc(rest_len);
        if (rest) {
            memcpy(rest, sock->input->bytes + piece, rest_len);
            sock->input->size = piece;
        } else {
            rest_len = 0; /* all of it at once: h2o's own limit still holds */
        }
    }
    for (;;) {
        strip_discarded(g, sock);
        if (!call_inner(c, sock, NULL))
            break;
        after_inner(c, sock);
        if (h2_refuse_bodies(c, sock, look)) {
            if (!hold(g, sock, rest ? rest + rest_off : NULL, rest_len - rest_off)) {
                h2o_socket_read_stop(sock);
                call_inner(c, sock, h2o_socket_error_out_of_memory);
            }
            break;
        }
        if (rest_off == rest_len)
            break;
        /* h2o stopped reading (too many requests in progress): it keeps what it did not parse and
         * goes on from there when it reads again, so the rest joins its input now. */
        size_t n = sock->_cb.read == guard_read && rest_len - rest_off > piece ? piece : rest_len - rest_off;
        h2o_iovec_t room = h2o_buffer_reserve(&sock->input, n);
        if (!room.base) {
            h2o_socket_read_stop(sock);
            call_inner(c, sock, h2o_socket_error_out_of_memory);
            break;
        }
        memcpy(room.base, rest + rest_off, n);
        sock->input->size += n;
        rest_off += n;
        if (sock->_cb.read != guard_read)
            break;
    }
    free(rest);
}

/* From sx_guard_sweep: once the 413 answers are written, give h2o the input that waited (without
 * those streams' DATA). False while they are not out yet. */
static bool h2_resume(sx_conn *c, h2o_socket_t *sock)
{
    sx_guard *g = c->guard;
    if (!sx_h2_answers_out(sock, g->refused, g->nrefused))
        return false;
    char *held = g->held;
    size_t len = g->held_len;
    g->held = NULL;
    g->held_len = 0;
    if (g->held_stopped) {
        g->held_stopped = false;
        if (!sock->_cb.read)
            h2o_socket_read_start(sock, guard_read);
    }
    h2o_iovec_t room = len ? h2o_buffer_reserve(&sock->input, len) : h2o_iovec_init(NULL, 0);
    if (len && !room.base) {
        free(held);
        h2o_socket_read_stop(sock);
        call_inner(c, sock, h2o_socket_error_out_of_memory);
        return true;
    }
    if (len) {
        memcpy(room.base, held, len);
        sock->input->size += len;
    }
    free(held);
    g->nrefused = 0;
    if (sock->input->size)
        h2_feed(c, sock, true);
    return true;
}

/* ---- the read callback ---------------------------------------------------------------------- */

static void guard_read(h2o_socket_t *sock, const char *err)
{
    sx_conn *c = sock->on_close.data;
    sx_guard *g = c->guard;
    if (g->dropping) {
        size_t n = sock->input->size;
        h2o_buffer_consume(&sock->input, n);
        if (err) {
            call_inner(c, sock, err);
        } else if (g->proto == PROTO_H1 && n >= g->drain_left) {
            /* Read and thrown away all the guard means to: end it. */
            shutdown(c->fd, SHUT_RDWR);
            call_inner(c, sock, h2o_socket_error_closed);
        } else if (g->proto == PROTO_H1) {
            g->drain_left -= n;
        }
        return;
    }
    size_t fresh = sock->bytes_read < sock->input->size ? sock->bytes_read : sock->input->size;
    if (g->proto == PROTO_H1 && (g->head_pending || g->h1_next) && !err) {
        if (h1_check(c, sock))
            return; /* answered 431 */
        if (g->proto == PROTO_H2)
            fresh = sock->input->size; /* h2c: none of it was walked yet */
    }
    if (g->proto == PROTO_H2 && fresh) {
        scan_ctx x = {c, true, h2o_now(c->thread->ctx.loop)};
        uint32_t passed = g->scan.last_stream; /* the streams h2o has seen */
        int v = scan_feed(&x, (const uint8_t *)sock->input->bytes + sock->input->size - fresh, fresh);
        if (v) {
            h2_end(c, sock, v, passed);
            return;
        }
    }
    if (g->nrefused && !err) {
        /* answers of refused bodies not out yet: this input waits behind them */
        if (!hold(g, sock, NULL, 0)) {
            h2o_socket_read_stop(sock);
            call_inner(c, sock, h2o_socket_error_out_of_memory);
        } else if (g->held_len > held_limit(c)) {
            h2o_socket_read_stop(sock);
            g->held_stopped = true;
        }
        return;
    }
    if (g->proto == PROTO_H2 && !err) {
        h2_feed(c, sock, false);
        return;
    }
    if (call_inner(c, sock, err))
        after_inner(c, sock);
}

/* ---- entry points (server_internal.h) ------------------------------------------------------- */

void sx_guard_attach(sx_conn *c)
{
    h2o_socket_t *sock = c->sock;
    if (c->kind == SX_LISTEN_ADMIN || !sock->_cb.read)
        return; /* the admin socket is trusted (mode 0600); a socket h2o closed at once needs nothing */
    sx_guard *g = calloc(1, sizeof(*g));
    if (!g)
        return; /* unguarded, as before: h2o's own limits still apply */
    c->guard = g;
    g->conn = c;
    g->inner = g->first_cb = sock->_cb.read;
    g->proto = c->kind == SX_LISTEN_TLS ? PROTO_HANDSHAKE : PROTO_H1;
    g->head_pending = g->proto == PROTO_H1;
    sock->_cb.read = guard_read;
}

bool sx_guard_detach(sx_conn *c)
{
    sx_guard *g = c->guard;
    if (!g)
        return false;
    if (h2o_linklist_is_linked(&g->watch))
        h2o_linklist_unlink(&g->watch);
    if (g->in_read) {
        g->closed = true; /* call_inner frees c on its way out */
        return true;
    }
    free(g);
    c->guard = NULL;
    return false;
}

void sx_guard_request_done(sx_conn *c)
{
    sx_guard *g = c->guard;
    if (!g || g->closed)
        return;
    if (g->proto == PROTO_H1)
        g->h1_next = true;
    else if (g->proto == PROTO_H2 && !g->in_read)
        watch(c); /* an answer from a pool job: h2o may stop and re-arm reading around it */
}

void sx_guard_saw_http2(sx_conn *c)
{
    sx_guard *g = c->guard;
    if (!g || g->closed || g->dropping || g->proto == PROTO_H2 || !c->sock)
        return;
    /* The Upgrade: h2c path switches protocol from a write callback, outside the guard. */
    become_h2(c);
    h2o_socket_cb cb = c->sock->_cb.read;
    if (cb && cb != guard_read) {
        g->inner = cb;
        c->sock->_cb.read = guard_read;
    } else if (!cb) {
        watch(c);
    }
    scan_resync(c, c->sock);
}

void sx_guard_sweep(sx_thread *t)
{
    uint64_t now = h2o_now(t->ctx.loop);
    for (h2o_linklist_t *l = t->guard_watch.next; l != &t->guard_watch;) {
        sx_guard *g = H2O_STRUCT_FROM_MEMBER(sx_guard, watch, l);
        l = l->next;
        h2o_socket_t *sock = g->conn->sock;
        if (g->nrefused && !g->dropping && !g->closed) {
            /* on the list until the answers are out; h2_resume may close the connection */
            if (!h2_resume(g->conn, sock))
                continue;
            if (l->prev != &g->watch) /* the connection closed and g went with it */
                continue;
        }
        h2o_socket_cb cb = sock->_cb.read;
        if (!cb && !g->dropping && now - g->watched_at < BACKSTOP_MS)
            continue; /* still stopped; a connection stopped for longer is left to the backstop */
        h2o_linklist_unlink(&g->watch);
        if (cb && cb != guard_read && !g->dropping)
            adopt(g->conn, sock, cb);
    }
}

static void on_backstop(h2o_timeout_entry_t *entry)
{
    sx_thread *t = H2O_STRUCT_FROM_MEMBER(sx_thread, guard_backstop, entry);
    for (h2o_linklist_t *l = t->conns.next; l != &t->conns; l = l->next) {
        sx_conn *c = H2O_STRUCT_FROM_MEMBER(sx_conn, link, l);
        sx_guard *g = c->guard;
        h2o_socket_cb cb = g && !g->dropping && !g->closed ? c->sock->_cb.read : NULL;
        if (cb && cb != guard_read)
            adopt(c, c->sock, cb);
    }
    h2o_timeout_link(t->ctx.loop, &t->guard_timeout, &t->guard_backstop);
}

void sx_guard_thread_init(sx_thread *t)
{
    h2o_linklist_init_anchor(&t->guard_watch);
    h2o_timeout_init(t->ctx.loop, &t->guard_timeout, BACKSTOP_MS);
    t->guard_backstop.cb = on_backstop;
    h2o_timeout_link(t->ctx.loop, &t->guard_timeout, &t->guard_backstop);
}

void sx_guard_thread_dispose(sx_thread *t)
{
    if (h2o_timeout_is_linked(&t->guard_backstop))
        h2o_timeout_unlink(&t->guard_backstop);
    h2o_timeout_dispose(t->ctx.loop, &t->guard_timeout);
}
