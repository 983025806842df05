/* hostile.c - see hostile.h. */
#include "hostile.h"
#include "harness.h"
#include "testutil.h"
#include "common/clock.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct sx_h2c {
    int fd;
    nghttp2_session *session;
    bool broken;
    /* the request in flight */
    int32_t stream_id;
    bool done;
    int status;
    char *body;
    size_t body_len;
    /* its request body */
    const char *req_body;
    size_t req_body_len, req_body_off;
};

/* ---- nghttp2 callbacks ---- */

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    sx_h2c *c = ud;
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->broken = true;
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        off += (size_t)n;
    }
    return (ssize_t)len;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    sx_h2c *c = ud;
    if (frame->hd.stream_id == c->stream_id && namelen == 7 && memcmp(name, ":status", 7) == 0) {
        char buf[8] = {0};
        memcpy(buf, value, valuelen < 7 ? valuelen : 7);
        c->status = atoi(buf);
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    (void)flags;
    sx_h2c *c = ud;
    if (stream_id != c->stream_id)
        return 0;
    char *nb = realloc(c->body, c->body_len + len + 1);
    if (!nb)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(nb + c->body_len, data, len);
    c->body = nb;
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    (void)s;
    (void)error_code;
    sx_h2c *c = ud;
    if (stream_id == c->stream_id)
        c->done = true;
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)stream_id;
    (void)src;
    sx_h2c *c = ud;
    size_t n = c->req_body_len - c->req_body_off;
    if (n > length)
        n = length;
    memcpy(buf, c->req_body + c->req_body_off, n);
    c->req_body_off += n;
    if (c->req_body_off == c->req_body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

sx_h2c *sx_h2c_connect(int port)
{
    sx_h2c *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = sx_test_tcp_connect(port, 0);
    nghttp2_session_callbacks *cbs;
    if (c->fd < 0 || nghttp2_session_callbacks_new(&cbs) != 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    int rc = nghttp2_session_client_new(&c->session, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0) {
        close(c->fd);
        free(c);
        return NULL;
    }
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100};
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, &iv, 1) != 0 || nghttp2_session_send(c->session) != 0) {
        sx_h2c_free(c);
        return NULL;
    }
    return c;
}

void sx_h2c_free(sx_h2c *c)
{
    if (!c)
        return;
    if (c->session)
        nghttp2_session_del(c->session);
    if (c->fd >= 0)
        close(c->fd);
    free(c->body);
    free(c);
}

static nghttp2_nv nv(const char *name, const char *value)
{
    return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE};
}

int sx_h2c_request_ex(sx_h2c *c, const char *method, const char *path, const char *auth, const char *hname,
                      const char *hvalue, const char *body, size_t body_len, int timeout_ms, int *ret_status,
                      char **ret_body)
{
    if (c->broken)
        return -1;
    nghttp2_nv nva[8] = {nv(":method", method), nv(":scheme", "http"), nv(":authority", "127.0.0.1"),
                         nv(":path", path)};
    size_t n = 4;
    char authbuf[512];
    if (auth) {
        snprintf(authbuf, sizeof(authbuf), "Bearer %s", auth);
        nva[n++] = nv("authorization", authbuf);
    }
    if (hname)
        nva[n++] = nv(hname, hvalue);
    if (body)
        nva[n++] = nv("content-type", "application/json");
    free(c->body);
    c->body = NULL;
    c->body_len = 0;
    c->status = 0;
    c->done = false;
    c->req_body = body;
    c->req_body_len = body_len;
    c->req_body_off = 0;
    nghttp2_data_provider prd = {.read_callback = read_body};
    c->stream_id = nghttp2_submit_request(c->session, NULL, nva, n, body ? &prd : NULL, c);
    if (c->stream_id < 0)
        return -1;
    uint64_t deadline = (sx_clock_mono_ns() / 1000u) + (uint64_t)timeout_ms * 1000u;
    while (!c->done) {
        if (nghttp2_session_send(c->session) != 0) {
            c->broken = true;
            return -1;
        }
        uint64_t now = (sx_clock_mono_ns() / 1000u);
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)((deadline - now) / 1000u) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        uint8_t buf[16384];
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || nghttp2_session_mem_recv(c->session, buf, (size_t)r) < 0) {
            c->broken = true;
            return -1;
        }
    }
    if (nghttp2_session_send(c->session) != 0) /* WINDOW_UPDATEs, SETTINGS ACKs */
        c->broken = true;
    *ret_status = c->status;
    *ret_body = c->body ? c->body : strdup("");
    c->body = NULL;
    return 0;
}

int sx_h2c_request(sx_h2c *c, const char *method, const char *path, const char *auth, int timeout_ms, int *ret_status,
                   char **ret_body)
{
    return sx_h2c_request_ex(c, method, path, auth, NULL, NULL, NULL, 0, timeout_ms, ret_status, ret_body);
}

void sx_good_client_run(int port, const char *path, const char *auth, const char *expect, size_t n, double *lat,
                        size_t *ret_done, size_t *ret_bad, volatile bool *stop)
{
    size_t done = 0, bad = 0;
    sx_h2c *c = NULL;
    for (size_t i = 0; i < n && !(stop && *stop); i++) {
        if (!c && !(c = sx_h2c_connect(port))) {
            bad++;
            continue;
        }
        int status = 0;
        char *body = NULL;
        uint64_t t0 = (sx_clock_mono_ns() / 1000u);
        int rc = sx_h2c_request(c, "GET", path, auth, 10000, &status, &body);
        uint64_t t1 = (sx_clock_mono_ns() / 1000u);
        if (rc != 0 || status != 200 || !body || !strstr(body, expect)) {
            if (bad < 5)
                fprintf(stderr, "good client: request %zu: rc %d status %d body %.200s\n", i, rc, status,
                        body ? body : "(none)");
            bad++;
            if (rc != 0) {
                sx_h2c_free(c);
                c = NULL;
            }
        } else {
            lat[done++] = (double)(t1 - t0);
        }
        free(body);
    }
    sx_h2c_free(c);
    *ret_done = done;
    *ret_bad = bad;
}

double sx_good_batch(int port, const char *path, const char *auth, const char *expect, size_t n, double *ret_p50,
                     size_t *bad)
{
    double *lat = calloc(n, sizeof(*lat));
    size_t done = 0, wrong = 0;
    if (!lat) {
        *bad += n;
        return 0;
    }
    sx_good_client_run(port, path, auth, expect, n / 10, lat, &done, &wrong, NULL);
    *bad += wrong;
    sx_good_client_run(port, path, auth, expect, n, lat, &done, &wrong, NULL);
    *bad += wrong;
    if (ret_p50)
        *ret_p50 = sx_percentile(lat, done, 50);
    double p99 = sx_percentile(lat, done, 99);
    free(lat);
    return p99;
}

double sx_median(double *v, size_t n)
{
    return sx_percentile(v, n, 50);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double sx_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

long sx_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

long sx_raise_nofile(long n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if ((long)rl.rlim_cur < n) {
        if ((long)rl.rlim_max < n) {
            struct rlimit want = {(rlim_t)n, (rlim_t)n};
            if (setrlimit(RLIMIT_NOFILE, &want) == 0)
                return n;
        }
        rl.rlim_cur = (long)rl.rlim_max < n ? rl.rlim_max : (rlim_t)n;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

bool sx_hostile_server_up(sx_srv *srv, int threads, const char *extra_server, char **ret_token)
{
    sx_srv_opts o = {.threads = threads, .extra_server = extra_server};
    *ret_token = NULL;
    if (sx_srv_start(srv, &o) != 0)
        return false;
    *ret_token = sx_srv_mint_token(srv, "acme", "web", "prod", "owner", NULL);
    if (!*ret_token)
        return false;
    char *auth = sx_auth_header(*ret_token);
    const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
    static const char body[] = "{\"kind\":\"secret\",\"name\":\"s1\",\"description\":\"target\"}";
    sx_resp r;
    int rc = sx_srv_request(srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", hdrs, body, sizeof(body) - 1, &r);
    bool ok = rc == 0 && r.status == 201;
    sx_resp_free(&r);
    free(auth);
    return ok;
}

int sx_hostile_server_down(sx_srv *srv, char **token)
{
    free(*token);
    *token = NULL;
    return sx_srv_stop(srv, SIGTERM, 30);
}
