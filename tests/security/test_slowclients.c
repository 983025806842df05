/*
 * test_slowclients.c - slow and greedy clients against the real binary, and the header and body
 * limits.
 *
 * slow_and_idle_connections_do_not_stop_a_normal_client: 500 slowloris connections (an HTTP/1.1
 * request head sent one byte every 2 seconds, never finished) and 500 idle HTTP/2 connections (the
 * preface and a SETTINGS frame, then nothing) are opened at once; meanwhile a normal client on its
 * own HTTP/2 connection gets correct answers. Its p99 latency alone and beside the slow crowd is
 * printed with the ratio (never asserted: shared 2-core machines are noisy). The server must close
 * every slow and idle connection by itself ([server] request_timeout and http2_idle_timeout, 10 s
 * by default), its resident memory is sampled before, during (peak) and after and must stay under
 * a generous bound, and its open-file limit must have been raised for max_connections.
 *
 * header_and_body_limits_answer_4xx_json: heads over max_header_bytes or with more than 100 fields
 * get 431 with the JSON error body over HTTP/1.1 (from 20 KB up to 500 KB) and HTTP/2; an HTTP/2
 * header block far over the limit ends the connection; bodies over max_body_bytes get 413 JSON; a
 * large body or a pipelined request on a keep-alive connection is not mistaken for a long head.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "harness.h"
#include "hostile.h"
#include "testutil.h"

#define SECRET_PATH   "/acme/web/envs/prod/secrets/s1"
#define EXPECT        "\"name\":\"s1\""
#define N_SLOW        500
#define N_IDLE        500
#define GOOD_N        3000
#define BATCHES       3
#define RSS_BOUND_KIB (256L * 1024)

static sx_srv srv;
static char *token;

static bool setup(void)
{
    return sx_hostile_server_up(&srv, 2, NULL, &token);
}

static void teardown(void)
{
    CHECK_INT(sx_hostile_server_down(&srv, &token), 0);
}

/* ---- slow and idle connections ---- */

typedef struct crowd {
    int fds[N_SLOW + N_IDLE];
    bool open[N_SLOW + N_IDLE];
    int n_open;
    volatile bool stop;
    long rss_peak;
} crowd;

/* True when the server has closed fd (EOF or reset; anything it sent first is read away). */
static bool closed_by_server(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0)
            return true;
        return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
}

/* The slowloris side: one more byte of the never-ending head on every open slow connection every
 * 2 s (a twentieth of them every 100 ms, so the crowd is steady rather than bursty), and twice a
 * second the bookkeeping of which connections the server has closed (one poll() over them all, to
 * take little of the machine from the good client). Samples the server's RSS. */
static void *crowd_main(void *arg)
{
    crowd *cr = arg;
    static const char more[] = "X-Slow-Header-Abcdefghijklmnopqrstuvwxyz: 0123456789";
    struct pollfd *pfd = calloc(N_SLOW + N_IDLE, sizeof(*pfd));
    int *idx = calloc(N_SLOW + N_IDLE, sizeof(*idx));
    for (unsigned tick = 0; !cr->stop && pfd && idx; tick++) {
        long rss = sx_rss_kib(srv.pid);
        if (rss > cr->rss_peak)
            cr->rss_peak = rss;
        for (int i = (int)(tick % 20); i < N_SLOW; i += 20)
            if (cr->open[i])
                send(cr->fds[i], more + (tick / 20) % (sizeof(more) - 1), 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (tick % 5 == 0) {
            int n = 0;
            for (int i = 0; i < N_SLOW + N_IDLE; i++) {
                if (cr->open[i]) {
                    pfd[n] = (struct pollfd){.fd = cr->fds[i], .events = POLLIN | POLLRDHUP};
                    idx[n++] = i;
                }
            }
            if (poll(pfd, (nfds_t)n, 0) > 0) {
                for (int k = 0; k < n; k++) {
                    if (pfd[k].revents && closed_by_server(pfd[k].fd)) {
                        cr->open[idx[k]] = false;
                        cr->n_open--;
                    }
                }
            }
        }
        usleep(100000);
    }
    free(pfd);
    free(idx);
    return NULL;
}

static const uint8_t h2_hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                  "\x00\x00\x00\x04\x00\x00\x00\x00\x00"; /* preface + empty SETTINGS */

static int open_crowd(crowd *cr)
{
    static const char head[] = "GET " SECRET_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    int opened = 0;
    for (int i = 0; i < N_SLOW + N_IDLE; i++) {
        int fd = sx_test_tcp_connect(srv.port, 0);
        if (fd < 0)
            break;
        const void *p = i < N_SLOW ? (const void *)head : (const void *)h2_hello;
        size_t len = i < N_SLOW ? sizeof(head) - 1 : sizeof(h2_hello) - 1;
        if (send(fd, p, len, MSG_NOSIGNAL) != (ssize_t)len) {
            close(fd);
            break;
        }
        cr->fds[i] = fd;
        cr->open[i] = true;
        opened++;
    }
    cr->n_open = opened;
    return opened;
}

/* The good client's median p99 over BATCHES batches of GOOD_N requests (less moved by noise from
 * elsewhere on the machine than one long run). Wrong answers are added to *bad. */
static double good_run(const char *label, size_t *bad)
{
    double p99[BATCHES], p50[BATCHES];
    for (int i = 0; i < BATCHES; i++)
        p99[i] = sx_good_batch(srv.port, SECRET_PATH, token, EXPECT, GOOD_N, &p50[i], bad);
    double m99 = sx_median(p99, BATCHES), m50 = sx_median(p50, BATCHES);
    printf("%-28s good client median p50 %.0f us, median p99 %.0f us (%d batches of %d requests)\n", label, m50, m99,
           BATCHES, GOOD_N);
    fflush(stdout);
    return m99;
}

/* The server's soft limit on open files, from /proc. */
static long server_nofile(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)srv.pid);
    char *text = sx_test_read_file(path, NULL);
    const char *p = text ? strstr(text, "Max open files") : NULL;
    long n = p ? strtol(p + strlen("Max open files"), NULL, 10) : -1;
    free(text);
    return n;
}

static void slow_and_idle_connections_do_not_stop_a_normal_client(void)
{
    REQUIRE(sx_raise_nofile(N_SLOW + N_IDLE + 512) >= N_SLOW + N_IDLE + 256);
    /* The server starts with a soft open-file limit of 1024 (a common default) and must raise it
     * for max_connections = 4096 (about 5120 descriptors), as far as the hard limit allows. */
    struct rlimit rl, low;
    getrlimit(RLIMIT_NOFILE, &rl);
    low = (struct rlimit){1024, rl.rlim_max};
    setrlimit(RLIMIT_NOFILE, &low);
    bool started = setup();
    setrlimit(RLIMIT_NOFILE, &rl);
    REQUIRE(started);
    long nofile = server_nofile();
    printf("server open-file limit: %ld (started with 1024; hard limit %llu)\n", nofile,
           (unsigned long long)rl.rlim_max);
    CHECK(nofile >= 5120 || (rlim_t)nofile == rl.rlim_max);

    size_t bad = 0;
    double base = good_run("unloaded", &bad);
    long rss_before = sx_rss_kib(srv.pid);

    crowd *cr = calloc(1, sizeof(*cr));
    REQUIRE(cr);
    uint64_t t0 = (sx_clock_mono_ns() / 1000u);
    CHECK_INT(open_crowd(cr), N_SLOW + N_IDLE);
    cr->rss_peak = sx_rss_kib(srv.pid);
    pthread_t tid;
    REQUIRE(pthread_create(&tid, NULL, crowd_main, cr) == 0);
    usleep(500000); /* every connection accepted and read */
    double loaded = good_run("500 slowloris + 500 idle h2", &bad);
    /* Still there, so the run above really was beside them (the timeouts are 10 s). */
    int still_open = cr->n_open;
    printf("slow and idle connections still open after the measurement: %d\n", still_open);
    CHECK(still_open > 0);

    /* The server closes every one of them by itself. */
    while (cr->n_open > 0 && (sx_clock_mono_ns() / 1000u) - t0 < 60000000u)
        usleep(200000);
    double closed_after = (double)((sx_clock_mono_ns() / 1000u) - t0) / 1e6;
    cr->stop = true;
    pthread_join(tid, NULL);
    CHECK_INT(cr->n_open, 0);
    int slow_left = 0, idle_left = 0;
    for (int i = 0; i < N_SLOW + N_IDLE; i++) {
        if (cr->open[i] && i < N_SLOW)
            slow_left++;
        else if (cr->open[i])
            idle_left++;
        close(cr->fds[i]);
    }
    printf("all slow and idle connections closed by the server within %.1f s (left open: %d slow, %d idle)\n",
           closed_after, slow_left, idle_left);
    usleep(500000);
    long rss_after = sx_rss_kib(srv.pid);
    printf("server RSS: before %ld KiB, peak %ld KiB, after %ld KiB (bound %ld KiB)\n", rss_before, cr->rss_peak,
           rss_after, RSS_BOUND_KIB);
    printf("good client p99 beside the slow crowd: %.2f x unloaded\n", base > 0 ? loaded / base : 0);
    CHECK(rss_before > 0 && cr->rss_peak > 0 && rss_after > 0);
    CHECK(cr->rss_peak < RSS_BOUND_KIB);
    CHECK(rss_after < RSS_BOUND_KIB);
    free(cr);

    good_run("afterwards", &bad);
    CHECK_INT(bad, 0);
    teardown();
}

/* ---- header and body limits ---- */

/* Send raw bytes on a fresh HTTP/1.1 connection and read the answer until the server closes (or
 * until one complete answer with Content-Length arrived when keep is set). Returns a malloc'd
 * string or NULL. */
static char *raw_exchange(int fd, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may answer and close before taking everything */
        off += (size_t)n;
    }
    char *out = calloc(1, 1);
    size_t olen = 0;
    uint64_t deadline = (sx_clock_mono_ns() / 1000u) + 15000000u;
    while ((sx_clock_mono_ns() / 1000u) < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        char buf[8192];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        out = realloc(out, olen + (size_t)n + 1);
        memcpy(out + olen, buf, (size_t)n);
        olen += (size_t)n;
        out[olen] = '\0';
        /* one complete answer is enough */
        char *hend = strstr(out, "\r\n\r\n");
        char *cl = hend ? strcasestr(out, "content-length:") : NULL;
        if (cl && cl < hend && olen >= (size_t)(hend + 4 - out) + strtoul(cl + 15, NULL, 10))
            break;
    }
    return out;
}

static char *raw_request(const char *data, size_t len)
{
    int fd = sx_test_tcp_connect(srv.port, 0);
    if (fd < 0)
        return NULL;
    char *out = raw_exchange(fd, data, len);
    close(fd);
    return out;
}

static bool is_431_json(const char *resp)
{
    return resp && strncmp(resp, "HTTP/1.1 431 ", 13) == 0 && strcasestr(resp, "content-type: application/json") &&
           strstr(resp, "\"code\":\"headers_too_large\"");
}

static char *head_with_header(size_t value_len, size_t n_fields)
{
    size_t cap = value_len + n_fields * 32 + 512;
    char *h = malloc(cap);
    size_t n = (size_t)snprintf(h, cap, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if (value_len) {
        n += (size_t)snprintf(h + n, cap - n, "X-Big: ");
        memset(h + n, 'a', value_len);
        n += value_len;
        n += (size_t)snprintf(h + n, cap - n, "\r\n");
    }
    for (size_t i = 0; i < n_fields; i++)
        n += (size_t)snprintf(h + n, cap - n, "X-F%zu: v\r\n", i);
    snprintf(h + n, cap - n, "Connection: close\r\n\r\n");
    return h;
}

static void h1_head(size_t value_len, size_t n_fields, int want)
{
    char *h = head_with_header(value_len, n_fields);
    char *resp = raw_request(h, strlen(h));
    bool ok = want == 431 ? is_431_json(resp) : resp && strncmp(resp, "HTTP/1.1 200 ", 13) == 0;
    if (!ok)
        fprintf(stderr, "HTTP/1.1 head of %zu bytes, %zu extra fields: want %d, got %.300s\n", strlen(h), n_fields,
                want, resp ? resp : "(nothing)");
    CHECK(ok);
    free(resp);
    free(h);
}

static void h2_header(size_t value_len, bool random_bytes, int want)
{
    sx_h2c *c = sx_h2c_connect(srv.port);
    REQUIRE(c);
    char *v = malloc(value_len + 1);
    for (size_t i = 0; i < value_len; i++)
        v[i] = random_bytes ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[rand() % 62] : 'a';
    v[value_len] = '\0';
    int status = 0;
    char *body = NULL;
    int rc = sx_h2c_request_ex(c, "GET", "/healthz", NULL, "x-big", v, NULL, 0, 10000, &status, &body);
    if (want == 0) {
        /* the connection ends (GOAWAY, then the close): no answer */
        if (rc == 0 && status != 0)
            fprintf(stderr, "HTTP/2 header of %zu bytes: want the connection closed, got %d %s\n", value_len, status,
                    body);
        CHECK(rc != 0 || status == 0);
        char *log = sx_test_read_file(srv.stderr_path, NULL);
        CHECK(log && strstr(log, "closing HTTP/2 connection from 127.0.0.1 after a header block of"));
        free(log);
    } else {
        bool ok = rc == 0 && status == want && (want != 431 || strstr(body, "\"code\":\"headers_too_large\""));
        if (!ok)
            fprintf(stderr, "HTTP/2 header of %zu bytes: want %d, got rc %d status %d %s\n", value_len, want, rc,
                    status, body ? body : "");
        CHECK(ok);
    }
    free(body);
    free(v);
    sx_h2c_free(c);
}

static void header_and_body_limits_answer_4xx_json(void)
{
    REQUIRE(setup());
    char *auth = sx_auth_header(token);

    /* HTTP/1.1 heads: under the 16 KiB default, over it, far over it, too many fields. */
    h1_head(12 * 1024, 0, 200);
    h1_head(20 * 1024, 0, 431);
    h1_head(500 * 1024, 0, 431);
    h1_head(0, 98, 200); /* with Host and Connection: 100 fields */
    h1_head(0, 150, 431);
    /* The same through curl, which reads the answer as a client would. */
    {
        char *big = malloc(20 * 1024 + 16);
        snprintf(big, 16, "X-Big: ");
        memset(big + 7, 'b', 20 * 1024);
        big[7 + 20 * 1024] = '\0';
        const char *hdrs[] = {big, NULL};
        sx_resp r;
        CHECK(sx_srv_request(&srv, SX_H1, "GET", "/healthz", hdrs, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 431);
        CHECK(sx_resp_is_error(&r, "headers_too_large"));
        sx_resp_free(&r);
        CHECK(sx_srv_request(&srv, SX_H2C, "GET", "/healthz", hdrs, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 431);
        CHECK(sx_resp_is_error(&r, "headers_too_large"));
        sx_resp_free(&r);
        free(big);
    }

    /* HTTP/2: decoded over the limit -> 431; far over it -> the connection ends. */
    h2_header(12 * 1024, false, 200);
    h2_header(20 * 1024, false, 431);
    h2_header(18 * 1024, true, 431);
    h2_header(60 * 1024, true, 0);

    /* A keep-alive connection: a request with a 100 KB body, then another; and the two pipelined
     * in one write. Neither body is mistaken for a head. */
    {
        size_t blen = 100 * 1024;
        char *body = malloc(blen + 1);
        memset(body, ' ', blen);
        static const char json[] = "{\"kind\":\"secret\",\"name\":\"big\",\"description\":\"x\"}";
        memcpy(body, json, sizeof(json) - 1);
        body[blen] = '\0';
        size_t cap = blen + 4096;
        char *req = malloc(cap);
        int n = snprintf(req, cap,
                         "POST /acme/web/envs/prod/secrets HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                         auth, blen, body);
        int fd = sx_test_tcp_connect(srv.port, 0);
        REQUIRE(fd >= 0);
        char *a1 = raw_exchange(fd, req, (size_t)n);
        CHECK(a1 && strncmp(a1, "HTTP/1.1 201 ", 13) == 0);
        static const char next[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        char *a2 = raw_exchange(fd, next, sizeof(next) - 1);
        CHECK(a2 && strncmp(a2, "HTTP/1.1 200 ", 13) == 0);
        if (!a1 || !a2 || strncmp(a2, "HTTP/1.1 200 ", 13) != 0)
            fprintf(stderr, "keep-alive after a large body: %.200s / %.200s\n", a1 ? a1 : "-", a2 ? a2 : "-");
        free(a1);
        free(a2);
        close(fd);

        /* pipelined: POST (409, the name exists now) and GET in one write */
        char *both = malloc(cap + sizeof(next));
        memcpy(both, req, (size_t)n);
        memcpy(both + n, next, sizeof(next));
        fd = sx_test_tcp_connect(srv.port, 0);
        REQUIRE(fd >= 0);
        char *b1 = raw_exchange(fd, both, (size_t)n + sizeof(next) - 1);
        char *b2 = b1 && strstr(b1, "HTTP/1.1 200 ") ? NULL : raw_exchange(fd, "", 0);
        const char *all2 = b2 ? b2 : b1;
        CHECK(b1 && strncmp(b1, "HTTP/1.1 409 ", 13) == 0);
        CHECK(all2 && strstr(all2, "HTTP/1.1 200 "));
        CHECK(!strstr(b1 ? b1 : "", " 431 ") && !strstr(b2 ? b2 : "", " 431 "));
        free(b1);
        free(b2);
        free(both);
        close(fd);
        free(req);
        free(body);
    }

    /* Bodies over max_body_bytes (1 MiB): 413 JSON over HTTP/1.1 and h2c, from the handler (up to
     * twice the limit) and from h2o itself (beyond, HTTP/1.1). */
    {
        const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
        size_t sizes[] = {1536 * 1024, 3 * 1024 * 1024};
        for (size_t i = 0; i < 2; i++) {
            char *body = malloc(sizes[i]);
            memset(body, ' ', sizes[i]);
            body[0] = '{';
            body[sizes[i] - 1] = '}';
            for (int p = 0; p < 2; p++) {
                if (p == 1 && i == 1)
                    continue; /* h2o resets an HTTP/2 stream over 2 x max_body_bytes (REFUSED_STREAM) */
                sx_resp r;
                CHECK(sx_srv_request(&srv, p ? SX_H2C : SX_H1, "POST", "/acme/web/envs/prod/secrets", hdrs, body,
                                     sizes[i], &r) == 0);
                CHECK_INT(r.status, 413);
                CHECK(sx_resp_is_error(&r, "payload_too_large"));
                sx_resp_free(&r);
            }
            free(body);
        }
    }

    /* Still serving, and still answering on HTTP/2. */
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H2C, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200);
    sx_resp_free(&r);
    free(auth);
    teardown();
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    static const sx_test tests[] = {
        {"slow_and_idle_connections_do_not_stop_a_normal_client",
         slow_and_idle_connections_do_not_stop_a_normal_client},
        {"header_and_body_limits_answer_4xx_json", header_and_body_limits_answer_4xx_json},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
