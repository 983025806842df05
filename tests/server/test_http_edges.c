/*
 * test_http_edges.c - the edges of HTTP that outside clients and tools found, against the real
 * secretsd binary: ambiguous body framing (request smuggling's building blocks) over raw sockets,
 * bodies over max_body_bytes from clients that write the whole body first (Python's http.client),
 * HEAD on every GET route, "/" and "*", and
 * bodies that are not JSON even though their first bytes already break a rule.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

#define ENVS "/acme/web/envs/"

/* Send req on a fresh connection and read until the server closes it. Returns what was read
 * (malloc'd, NUL-terminated); *ret_closed says whether the server closed (rather than the read
 * timing out). */
static char *raw_exchange(int port, const char *req, size_t len, bool *ret_closed)
{
    *ret_closed = false;
    int fd = sx_test_tcp_connect(port, 15);
    if (fd < 0)
        return NULL;
    if (write(fd, req, len) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            *ret_closed = true;
            break;
        }
        if (r < 0)
            break;
        n += (size_t)r;
        if (n == cap)
            break;
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* ---- request smuggling ---------------------------------------------------------------------- */

static void ambiguous_body_framing_is_400_and_closes_the_connection(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    /* Each carries a second request that a server reading the framing one way would answer. */
    static const char *const bad[] = {
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\n"
        "helloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\ncontent-length: 5\r\n\r\n"
        "helloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 44\r\n\r\n"
        "helloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
        "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
        "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
        "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"
        "helloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        /* after a first, well-framed request on the same connection */
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\n"
        "helloGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool closed;
        char *got = raw_exchange(srv.port, bad[i], strlen(bad[i]), &closed);
        REQUIRE(got);
        /* One answer, the 400, then the close: the smuggled request is never answered (nor, when
         * it is pipelined behind another, the one before it). */
        bool ok = strncmp(got, "HTTP/1.1 400", 12) == 0 && strstr(got, "application/json") &&
                  strstr(got, "\"code\":\"invalid_request\"") && strstr(got, "Connection: close") &&
                  count_of(got, "HTTP/1.1 ") == 1 && closed;
        if (!ok)
            fprintf(stderr, "case %zu: closed=%d got:\n%s\n", i, closed, got);
        CHECK(ok);
        free(got);
    }
    /* Repeating one length is not ambiguous; chunked alone is fine. */
    static const char *const good[] = {
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        "hello",
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        bool closed;
        char *got = raw_exchange(srv.port, good[i], strlen(good[i]), &closed);
        REQUIRE(got);
        if (strncmp(got, "HTTP/1.1 405", 12) != 0)
            fprintf(stderr, "good case %zu got:\n%s\n", i, got);
        CHECK(strncmp(got, "HTTP/1.1 405", 12) == 0);
        free(got);
    }
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* ---- bodies over max_body_bytes --------------------------------------------------------------- */

static const char *python(void)
{
    /* Debian's, which CI installs; a pyenv shim earlier in PATH is not what CI has. */
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

static const char k_py_post[] = "import http.client, sys\n"
                                "c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=30)\n"
                                "try:\n"
                                "    c.request('POST', '/healthz', body=b'a' * int(sys.argv[2]),\n"
                                "              headers={'Content-Type': 'application/json'})\n"
                                "    r = c.getresponse()\n"
                                "    print(r.status, r.read().decode())\n"
                                "except Exception as e:\n"
                                "    print('error', type(e).__name__, e)\n";

static void oversized_bodies_get_413_that_clients_read_over_http1(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &(sx_srv_opts){.extra_server = "max_body_bytes = 4096\nmax_value_bytes = 1024\n"}) == 0);

    /* HTTP/1.1, a client that writes all of an 8 MiB body before it reads. */
    char *out = NULL;
    setenv("SX_PY", k_py_post, 1);
    sx_test_sh(&out, "%s -c \"$SX_PY\" %d %d", python(), srv.port, 8 << 20);
    if (strncmp(out, "413 ", 4) != 0)
        fprintf(stderr, "python http.client: %s\n", out);
    CHECK(strncmp(out, "413 ", 4) == 0 && strstr(out, "\"code\":\"payload_too_large\""));
    free(out);

    /* The connection after such a 413 still takes the next client. */
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H1, "GET", "/healthz", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);

    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* An upload over libcurl (HTTP/2 prior knowledge). announce: send a content-length (else the body
 * goes out in DATA frames of unknown total). Counts what curl read of the body and how often it
 * rewound it to send it again (a retry after REFUSED_STREAM). */
typedef struct upload {
    size_t total, sent;
    unsigned rewinds;
    char body[512];
    size_t body_len;
} upload;

static size_t upload_read(char *buf, size_t size, size_t nitems, void *arg)
{
    upload *u = arg;
    size_t n = size * nitems, left = u->total - u->sent;
    if (n > left)
        n = left;
    memset(buf, 'x', n);
    u->sent += n;
    return n;
}

static int upload_seek(void *arg, curl_off_t offset, int origin)
{
    upload *u = arg;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > u->total)
        return CURL_SEEKFUNC_FAIL;
    u->sent = (size_t)offset;
    u->rewinds++;
    return CURL_SEEKFUNC_OK;
}

static size_t upload_write(char *p, size_t size, size_t nitems, void *arg)
{
    upload *u = arg;
    size_t n = size * nitems, room = sizeof(u->body) - 1 - u->body_len;
    memcpy(u->body + u->body_len, p, n < room ? n : room);
    u->body_len += n < room ? n : room;
    u->body[u->body_len] = '\0';
    return n;
}

static CURLcode h2_upload(CURL *c, int port, size_t total, bool announce, upload *u, long *ret_status)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d" ENVS "dev/secrets", port);
    memset(u, 0, sizeof(*u));
    u->total = total;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(c, CURLOPT_READDATA, u);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, upload_seek);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, u);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, upload_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    if (announce)
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)total);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    *ret_status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
    curl_slist_free_all(h);
    return rc;
}

static void oversized_bodies_get_413_at_once_over_http2(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &(sx_srv_opts){.extra_server = "max_body_bytes = 4096\nmax_value_bytes = 1024\n"}) == 0);
    CURL *c = curl_easy_init();
    REQUIRE(c);

    /* 3 x and 256 x the limit, with a content-length and without one. h2o alone resets such a
     * stream with REFUSED_STREAM past twice the limit, and libcurl then sends the body again. */
    static const struct {
        size_t total;
        bool announce;
    } cases[] = {{12288, true}, {1 << 20, true}, {12288, false}, {1 << 20, false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        upload u;
        long status;
        CURLcode rc = h2_upload(c, srv.port, cases[i].total, cases[i].announce, &u, &status);
        fprintf(stderr, "%zu bytes%s: curl %d (%s), status %ld, %zu bytes read by curl, %u rewinds\n", cases[i].total,
                cases[i].announce ? " with content-length" : "", (int)rc, curl_easy_strerror(rc), status, u.sent,
                u.rewinds);
        CHECK_INT(rc, CURLE_OK);
        CHECK_INT(status, 413);
        CHECK(strstr(u.body, "\"code\":\"payload_too_large\"") != NULL);
        CHECK_INT(u.rewinds, 0);
    }

    /* A body at the limit is read and answered as usual (not JSON of a secret, no token: 4xx). */
    upload u;
    long status;
    CHECK_INT(h2_upload(c, srv.port, 4096, true, &u, &status), CURLE_OK);
    CHECK(status != 413 && status >= 400 && status < 500);

    /* Node's HTTP/2 client on one session (clients/h2_oversized.js): uploads answered 413 before
     * their bodies are complete, more discarded body bytes than the connection's flow-control
     * window, GET requests in between and after answered 200. */
    char *out = NULL;
    CHECK_INT(sx_test_sh(&out, "node %s/clients/h2_oversized.js %d", SX_TEST_SOURCE_DIR, srv.port), 0);
    fprintf(stderr, "node http2:\n%s", out);
    static const char *const expect[] = {
        "{\"name\":\"announced\",\"status\":413,\"code\":\"payload_too_large\",\"early\":true,\"error\":null}",
        "{\"name\":\"unannounced\",\"status\":413,\"code\":\"payload_too_large\",\"early\":true,\"error\":null}",
        "{\"name\":\"healthz\",\"status\":200,",
        "{\"name\":\"announced2\",\"status\":413,\"code\":\"payload_too_large\",\"early\":true,\"error\":null}",
        "{\"name\":\"after\",\"status\":200,",
    };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        CHECK(strstr(out, expect[i]) != NULL);
    CHECK(!strstr(out, "\"session\""));
    free(out);

    curl_easy_cleanup(c);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* ---- HEAD, "/" and "*" ------------------------------------------------------------------------ */

static bool header_of(const sx_resp *r, const char *name, char *buf, size_t cap)
{
    if (!sx_resp_header(r, name, buf, cap)) {
        buf[0] = '\0';
        return false;
    }
    return true;
}

static void head_is_get_without_the_body_on_every_get_route(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(token);
    char *auth = sx_auth_header(token);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    const char create[] = "{\"kind\":\"secret\",\"name\":\"db\"}";
    REQUIRE(sx_srv_request(&srv, SX_H1, "POST", ENVS "dev/secrets", h, create, sizeof(create) - 1, &r) == 0);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);
    REQUIRE(sx_srv_request(&srv, SX_H1, "PUT", ENVS "dev/secrets/db/value", h, "{\"value\":\"v1\"}", 14, &r) == 0);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);

    static const struct {
        sx_proto proto; /* SX_H1 stands for h1 and h2c both */
        const char *path;
    } routes[] = {
        {SX_H1, "/healthz"},
        {SX_H1, "/readyz"},
        {SX_H1, ENVS "dev/secrets"},
        {SX_H1, ENVS "dev/secrets/db"},
        {SX_H1, ENVS "dev/secrets/db/value"},
        {SX_H1, ENVS "dev/values"},
        {SX_H1, ENVS "dev/secrets/nope"}, /* GET's 404 */
        {SX_ADMIN, "/healthz"},
        {SX_ADMIN, "/metrics"},
        {SX_ADMIN, "/v1/status"},
        {SX_ADMIN, "/v1/rotations"},
        {SX_ADMIN, "/v1/envs/acme/web/dev"},
        {SX_ADMIN, "/v1/tokens"},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        for (int k = 0; k < (routes[i].proto == SX_H1 ? 2 : 1); k++) {
            sx_proto proto = routes[i].proto == SX_H1 ? (k ? SX_H2C : SX_H1) : SX_ADMIN;
            sx_resp g, hd;
            REQUIRE(sx_srv_request(&srv, proto, "GET", routes[i].path, h, NULL, 0, &g) == 0);
            REQUIRE(sx_srv_request(&srv, proto, "HEAD", routes[i].path, h, NULL, 0, &hd) == 0);
            char gl[32], hl[32], gt[64], ht[64];
            bool gl_ok = header_of(&g, "content-length", gl, sizeof(gl));
            header_of(&hd, "content-length", hl, sizeof(hl));
            header_of(&g, "content-type", gt, sizeof(gt));
            header_of(&hd, "content-type", ht, sizeof(ht));
            /* The metrics text and the status document (uptime, sweeper counters) change
             * between the two requests in their numbers; the status, the type and (for the
             * rest) the length must agree. */
            bool counts = strcmp(routes[i].path, "/metrics") == 0 || strcmp(routes[i].path, "/v1/status") == 0;
            bool same_len = counts || strcmp(gl, hl) == 0;
            bool ok = g.status == hd.status && gl_ok && same_len && strcmp(gt, ht) == 0 && hd.body_len == 0;
            if (!ok)
                fprintf(stderr, "%s %d: GET %ld len %s type %s / HEAD %ld len %s type %s body %zu\n", routes[i].path,
                        (int)proto, g.status, gl, gt, hd.status, hl, ht, hd.body_len);
            CHECK(ok);
            sx_resp_free(&g);
            sx_resp_free(&hd);
        }
    }

    /* Allow lists HEAD wherever GET is. */
    for (int proto = SX_H1; proto <= SX_H2C; proto++) {
        char allow[64];
        CHECK(sx_srv_request(&srv, proto, "POST", "/healthz", h, "{}", 2, &r) == 0);
        CHECK_INT(r.status, 405);
        CHECK(header_of(&r, "allow", allow, sizeof(allow)) && strcmp(allow, "GET, HEAD") == 0);
        sx_resp_free(&r);
        CHECK(sx_srv_request(&srv, proto, "PATCH", ENVS "dev/secrets/db", h, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 405);
        CHECK(header_of(&r, "allow", allow, sizeof(allow)) && strcmp(allow, "GET, HEAD, PUT, DELETE") == 0);
        sx_resp_free(&r);
        /* HEAD of an unknown route: 404, without a body. */
        CHECK(sx_srv_request(&srv, proto, "HEAD", ENVS "dev/secrets/db/nothing", h, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 404);
        CHECK_INT(r.body_len, 0);
        sx_resp_free(&r);

        /* "/" is an unknown route, not a malformed path. */
        CHECK(sx_srv_request(&srv, proto, "GET", "/", h, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
    }
    /* OPTIONS * (the asterisk form exists only in HTTP/1.1). */
    bool closed;
    const char opt[] = "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *got = raw_exchange(srv.port, opt, sizeof(opt) - 1, &closed);
    REQUIRE(got);
    if (strncmp(got, "HTTP/1.1 404", 12) != 0)
        fprintf(stderr, "OPTIONS *: %s\n", got);
    CHECK(strncmp(got, "HTTP/1.1 404", 12) == 0 && strstr(got, "\"code\":\"not_found\""));
    free(got);
    /* HEAD over HTTP/1.1 keeps the connection usable: the next answer is read right. */
    const char two[] = "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
                       "Connection: close\r\n\r\n";
    got = raw_exchange(srv.port, two, sizeof(two) - 1, &closed);
    REQUIRE(got);
    CHECK_INT(count_of(got, "HTTP/1.1 200"), 2);
    CHECK_INT(count_of(got, "{\"status\":\"ok\"}"), 1);
    free(got);

    free(auth);
    free(token);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* ---- invalid JSON ----------------------------------------------------------------------------- */

static void unparsable_bodies_are_invalid_json_even_after_a_broken_rule(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(token);
    char *auth = sx_auth_header(token);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    /* JSONTestSuite n_ files (named after each), and the same faults after a field that breaks a
     * rule first: an unknown key, a wrong type, a top-level array. */
    static const char *const not_json[] = {
        "[1,2",                                     /* n_array_unclosed */
        "[\"x\"",                                   /* n_array_unclosed_with_object_inside... */
        "[1,]",                                     /* n_array_extra_comma */
        "[\"\": 1]",                                /* n_array_colon_instead_of_comma */
        "[-]",                                      /* n_number_minus_sign */
        "[012]",                                    /* n_number_with_leading_zero */
        "[1.]",                                     /* n_number_real_without_fractional_part */
        "[\"a\"]x",                                 /* n_structure_array_trailing_garbage */
        "[[[[[[[[[[",                               /* n_structure_open_array_... */
        "{\"a\":\"a\" 123}",                        /* n_object_garbage_at_end */
        "{\"x\":1,}",                               /* n_object_trailing_comma */
        "{\"x\"::1}",                               /* n_object_double_colon */
        "{\"x\"}",                                  /* n_object_missing_value */
        "{1:1}",                                    /* n_object_non_string_key */
        "{\"a\":true} \"x\"",                       /* n_object_trailing_garbage */
        "\"abc",                                    /* n_string_unterminated */
        "[nul]",                                    /* n_incomplete_null */
        "[True]",                                   /* n_structure_capitalized_True */
        "{\"kind\":1,\"name\":\"x\"",               /* wrong type, then unterminated */
        "{\"kind\":1,\"name\":\"x\"} garbage",      /* wrong type, then trailing garbage */
        "{\"nope\":1,\"name\":[1,2",                /* unknown field, then an unterminated array */
        "{\"nope\":1,,}",                           /* unknown field, then a double comma */
        "{\"kind\":\"secret\",\"kind\":\"secret\"", /* duplicate, then unterminated */
        "{\"kind\":{\"a\":[1,2,}}",                 /* wrong type, then an extra comma inside it */
        "[{\"kind\":\"secret\"}",                   /* top-level array, unterminated */
        "null x",                                   /* top-level scalar, trailing garbage */
    };
    /* Well-formed JSON that breaks a rule stays invalid_request. */
    static const char *const wrong_shape[] = {
        "[1,2]", "\"abc\"", "{\"nope\":1}", "{\"kind\":1,\"name\":\"x\"}", "{\"kind\":\"secret\",\"kind\":\"secret\"}",
    };
    size_t failed = 0;
    for (size_t i = 0; i < sizeof(not_json) / sizeof(not_json[0]) + sizeof(wrong_shape) / sizeof(wrong_shape[0]); i++) {
        bool bad = i < sizeof(not_json) / sizeof(not_json[0]);
        const char *body = bad ? not_json[i] : wrong_shape[i - sizeof(not_json) / sizeof(not_json[0])];
        const char *want = bad ? "invalid_json" : "invalid_request";
        for (int proto = SX_H1; proto <= SX_H2C; proto++) {
            sx_resp r;
            int rc = sx_srv_request(&srv, proto, "POST", ENVS "dev/secrets", h, body, strlen(body), &r);
            if (rc != 0 || r.status != 400 || !sx_resp_is_error(&r, want)) {
                fprintf(stderr, "body %s: got %ld %s, want 400 %s\n", body, r.status, r.body, want);
                failed++;
            }
            sx_resp_free(&r);
        }
    }
    CHECK_INT(failed, 0);
    /* Nothing was created. */
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H1, "GET", ENVS "dev/secrets", h, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"name\"") == NULL);
    sx_resp_free(&r);
    free(auth);
    free(token);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* ---- library lines on stderr ------------------------------------------------------------------ */

/* h2o 2.2.5 writes "skipping frame (type:N)" to stderr for an HTTP/2 frame of unknown type. With
 * format = json every line the server writes to stderr must still be one JSON object, that line
 * among them as a warning. */
static void library_stderr_lines_come_out_in_the_log_format(void)
{
    static const sx_srv_opts opts = {.extra_log = "format = json\n", .keep_dir = true};
    sx_srv srv;
    CHECK(sx_srv_start(&srv, &opts) == 0);
    char *dir = strdup(srv.dir), *stderr_path = strdup(srv.stderr_path);
    /* preface, an empty SETTINGS, then an empty frame of type 0x20 on stream 0 */
    static const char frames[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                 "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                                 "\x00\x00\x00\x20\x00\x00\x00\x00\x00";
    int fd = sx_test_tcp_connect(srv.port, 5);
    CHECK(fd >= 0);
    CHECK(write(fd, frames, sizeof(frames) - 1) == (ssize_t)(sizeof(frames) - 1));
    char buf[256];
    CHECK(read(fd, buf, sizeof(buf)) > 0); /* the server's SETTINGS: our frames were read */
    close(fd);
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H1, "GET", "/healthz", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    char *log = NULL;
    for (int i = 0; i < 100; i++) { /* the re-emitting thread writes the line soon, not at once */
        free(log);
        log = sx_test_read_file(srv.stderr_path, NULL);
        if (log && strstr(log, "library: skipping frame (type:32)"))
            break;
        usleep(20000);
    }
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    free(log);
    log = sx_test_read_file(stderr_path, NULL);
    sx_test_rmtree(dir);
    free(dir);
    free(stderr_path);
    CHECK(log != NULL);
    CHECK(strstr(log, "{\"time\":") != NULL);
    CHECK(strstr(log, "\"level\":\"warn\",\"msg\":\"library: skipping frame (type:32)\"") != NULL);
    /* Every line the server wrote is a JSON log line. A sanitizer build's runtime adds its own
     * summary at exit (LeakSanitizer's "Suppressions used" block, on the original stderr by
     * design): the check ends where that begins. */
    size_t lines = 0, json_lines = 0;
    for (char *line = log; line && *line && strncmp(line, "-----", 5) != 0; lines++) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, "{\"time\":\"", 9) == 0 && nl && nl[-1] == '}')
            json_lines++;
        else
            fprintf(stderr, "not a JSON log line: %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
        line = nl ? nl + 1 : NULL;
    }
    CHECK(lines > 3);
    CHECK_INT(json_lines, lines);
    free(log);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"ambiguous_body_framing_is_400_and_closes_the_connection",
         ambiguous_body_framing_is_400_and_closes_the_connection},
        {"oversized_bodies_get_413_that_clients_read_over_http1",
         oversized_bodies_get_413_that_clients_read_over_http1},
        {"oversized_bodies_get_413_at_once_over_http2", oversized_bodies_get_413_at_once_over_http2},
        {"head_is_get_without_the_body_on_every_get_route", head_is_get_without_the_body_on_every_get_route},
        {"unparsable_bodies_are_invalid_json_even_after_a_broken_rule",
         unparsable_bodies_are_invalid_json_even_after_a_broken_rule},
        {"library_stderr_lines_come_out_in_the_log_format", library_stderr_lines_come_out_in_the_log_format},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
