/*
 * test_server.c - the real secretsd binary on ephemeral loopback ports, driven by libcurl over
 * HTTP/1.1, h2c (prior knowledge), TLS h2 and the admin socket.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

static void healthz_answers_on_every_protocol(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    static const struct {
        sx_proto proto;
        long version;
    } cases[] = {
        {SX_H1, CURL_HTTP_VERSION_1_1},    {SX_H2C, CURL_HTTP_VERSION_2_0},   {SX_H2TLS, CURL_HTTP_VERSION_2_0},
        {SX_H1TLS, CURL_HTTP_VERSION_1_1}, {SX_ADMIN, CURL_HTTP_VERSION_1_1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sx_resp r;
        CHECK(sx_srv_request(&srv, cases[i].proto, "GET", "/healthz", NULL, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 200);
        CHECK_INT(r.http_version, cases[i].version);
        CHECK_STR(r.body, "{\"status\":\"ok\"}");
        char ct[64];
        CHECK(sx_resp_header(&r, "content-type", ct, sizeof(ct)) && strcmp(ct, "application/json") == 0);
        sx_resp_free(&r);
    }
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static void readyz_is_ready_when_storage_answers(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &(sx_srv_opts){.backend = "rocksdb"}) == 0);
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H2C, "GET", "/readyz", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "{\"status\":\"ready\"}");
    sx_resp_free(&r);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static void unknown_routes_and_methods_are_json_errors(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    for (int proto = SX_H1; proto <= SX_H2TLS; proto++) {
        sx_resp r;
        CHECK(sx_srv_request(&srv, proto, "GET", "/no/such/route", NULL, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);

        CHECK(sx_srv_request(&srv, proto, "POST", "/healthz", NULL, "{}", 2, &r) == 0);
        CHECK_INT(r.status, 405);
        CHECK(sx_resp_is_error(&r, "method_not_allowed"));
        char allow[64];
        CHECK(sx_resp_header(&r, "allow", allow, sizeof(allow)) && strcmp(allow, "GET, HEAD") == 0);
        sx_resp_free(&r);

        CHECK(sx_srv_request(&srv, proto, "PATCH", "/healthz", NULL, NULL, 0, &r) == 0);
        CHECK_INT(r.status, 405);
        sx_resp_free(&r);
    }
    /* Path tricks are refused, never decoded or normalised. */
    static const char *const bad[] = {"/%2e%2e/healthz", "//healthz",  "/healthz/", "/a/%2F/b",
                                      "/he%00althz",     "/./healthz", "/x y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sx_resp r;
        if (sx_srv_request(&srv, SX_H1, "GET", bad[i], NULL, NULL, 0, &r) != 0) {
            sx_resp_free(&r); /* curl refuses to send some of these: nothing to check */
            continue;
        }
        if (r.status != 400 && r.status != 404)
            fprintf(stderr, "path %s -> %ld\n", bad[i], r.status);
        CHECK(r.status == 400 || r.status == 404);
        CHECK(sx_resp_is_error(&r, r.status == 400 ? "invalid_request" : "not_found"));
        sx_resp_free(&r);
    }
    /* Admin routes are not served on the public listeners. */
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H1, "GET", "/v1/status", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 404);
    sx_resp_free(&r);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static void oversized_bodies_get_json_413(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &(sx_srv_opts){.extra_server = "max_body_bytes = 4096\nmax_value_bytes = 1024\n"}) == 0);
    size_t len = 8192;
    char *big = malloc(len);
    memset(big, 'a', len);
    for (int proto = SX_H1; proto <= SX_H2TLS; proto++) {
        sx_resp r;
        CHECK(sx_srv_request(&srv, proto, "POST", "/healthz", NULL, big, len, &r) == 0);
        CHECK_INT(r.status, 413);
        CHECK(sx_resp_is_error(&r, "payload_too_large"));
        sx_resp_free(&r);
    }
    /* Chunked upload without a length (HTTP/1.1). */
    sx_resp r;
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    CHECK(sx_srv_request(&srv, SX_H1, "POST", "/healthz", chunked, big, 6000, &r) == 0);
    CHECK_INT(r.status, 413);
    CHECK(sx_resp_is_error(&r, "payload_too_large"));
    sx_resp_free(&r);
    /* A body within the limit reaches the router (405 here, not 413). */
    CHECK(sx_srv_request(&srv, SX_H2C, "POST", "/healthz", NULL, big, 4096, &r) == 0);
    CHECK_INT(r.status, 405);
    sx_resp_free(&r);
    free(big);

    /* Far over the limit: refused from the headers alone, before any body is read. */
    int fd = sx_test_tcp_connect(srv.port, 10);
    REQUIRE(fd >= 0);
    const char *huge = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n";
    CHECK(write(fd, huge, strlen(huge)) == (ssize_t)strlen(huge));
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = '\0';
        CHECK(strncmp(buf, "HTTP/1.1 413", 12) == 0);
        CHECK(strstr(buf, "application/json") != NULL);
        CHECK(strstr(buf, "\"code\":\"payload_too_large\"") != NULL);
    }
    close(fd);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static void admin_socket_is_private_and_reports_status(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    struct stat st;
    REQUIRE(stat(srv.admin_socket, &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_INT(st.st_mode & 0777, 0600);
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_ADMIN, "GET", "/v1/status", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"storage\":\"memory\"") != NULL);
    CHECK(strstr(r.body, "\"threads\":2") != NULL);
    sx_resp_free(&r);

    /* secretsctl reaches it both through --socket and through --config. */
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' --socket '%s' status >/dev/null", SX_SECRETSCTL_PATH, srv.admin_socket);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "'%s' --config '%s' --json status | grep -q '\"status\":\"ok\"'", SX_SECRETSCTL_PATH,
             srv.config_path);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    /* A clean stop removes the socket file. */
    CHECK(access(srv.admin_socket ? srv.admin_socket : "/nonexistent-sx", F_OK) != 0);
}

static void secretsctl_fails_cleanly_without_a_server(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' --socket /nonexistent/admin.sock status 2>/dev/null", SX_SECRETSCTL_PATH);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    snprintf(cmd, sizeof(cmd), "'%s' 2>/dev/null", SX_SECRETSCTL_PATH);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

static void sigterm_during_a_slow_request_still_answers_it(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    /* An idle keep-alive connection must not hold the drain up. */
    int idle = sx_test_tcp_connect(srv.port, 10);
    REQUIRE(idle >= 0);
    const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(idle, get, strlen(get)) == (ssize_t)strlen(get));
    char buf[4096];
    CHECK(read(idle, buf, sizeof(buf)) > 0);

    /* A slow upload: headers and half the body now, the rest after SIGTERM. */
    int fd = sx_test_tcp_connect(srv.port, 10);
    REQUIRE(fd >= 0);
    const char *head =
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n"
        "{\"a\":";
    CHECK(write(fd, head, strlen(head)) == (ssize_t)strlen(head));
    sx_test_sleep_ms(200);
    kill(srv.pid, SIGTERM);
    sx_test_sleep_ms(500);
    CHECK(write(fd, "\"bcd\"}", 5) == 5);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    CHECK(n > 0);
    if (n > 0) {
        buf[n] = '\0';
        CHECK(strncmp(buf, "HTTP/1.1 405", 12) == 0);
        CHECK(strstr(buf, "method_not_allowed") != NULL);
    }
    close(fd);
    /* The server exits 0 by itself; the idle connection was closed by the drain. */
    CHECK_INT(sx_srv_stop(&srv, 0, 20), 0);
    CHECK(read(idle, buf, sizeof(buf)) <= 0);
    close(idle);
}

static void two_threads_serve_concurrently(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &(sx_srv_opts){.threads = 2}) == 0);
    bool both = false;
    for (int round = 0; round < 10 && !both; round++) {
        CURLM *m = curl_multi_init();
        CURL *hs[32];
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", srv.port);
        for (int i = 0; i < 32; i++) {
            hs[i] = curl_easy_init();
            curl_easy_setopt(hs[i], CURLOPT_URL, url);
            curl_easy_setopt(hs[i], CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
            curl_easy_setopt(hs[i], CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, fwrite);
            FILE *devnull = fopen("/dev/null", "w");
            curl_easy_setopt(hs[i], CURLOPT_WRITEDATA, devnull);
            curl_easy_setopt(hs[i], CURLOPT_PRIVATE, devnull);
            curl_multi_add_handle(m, hs[i]);
        }
        int running = 1;
        while (running) {
            curl_multi_perform(m, &running);
            curl_multi_wait(m, NULL, 0, 100, NULL);
        }
        for (int i = 0; i < 32; i++) {
            long code = 0;
            curl_easy_getinfo(hs[i], CURLINFO_RESPONSE_CODE, &code);
            CHECK_INT(code, 200);
            FILE *devnull;
            curl_easy_getinfo(hs[i], CURLINFO_PRIVATE, (char **)&devnull);
            fclose(devnull);
            curl_multi_remove_handle(m, hs[i]);
            curl_easy_cleanup(hs[i]);
        }
        curl_multi_cleanup(m);
        sx_resp r;
        CHECK(sx_srv_request(&srv, SX_ADMIN, "GET", "/v1/status", NULL, NULL, 0, &r) == 0);
        const char *p = strstr(r.body, "\"requests_per_thread\":[");
        unsigned long a = 0, b = 0;
        if (p && sscanf(p, "\"requests_per_thread\":[%lu,%lu]", &a, &b) == 2)
            both = a > 0 && b > 0;
        sx_resp_free(&r);
    }
    CHECK(both);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* One keep-alive HTTP/1.1 GET /healthz on fd; true when a 200 with its whole body came back. */
static bool healthz_on(int fd)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        return false;
    char buf[4096];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            return false;
        n += (size_t)r;
        buf[n] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "content-length:");
        if (end && cl && n >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
            return strncmp(buf, "HTTP/1.1 200", 12) == 0;
        if (n == sizeof(buf) - 1)
            return false;
    }
}

static bool requests_per_thread(const sx_srv *srv, unsigned long *a, unsigned long *b)
{
    sx_resp r;
    bool ok = sx_srv_request(srv, SX_ADMIN, "GET", "/v1/status", NULL, NULL, 0, &r) == 0;
    const char *p = ok ? strstr(r.body, "\"requests_per_thread\":[") : NULL;
    ok = p && sscanf(p, "\"requests_per_thread\":[%lu,%lu]", a, b) == 2;
    if (p)
        sx_resp_free(&r);
    return ok;
}

/* Connections opened all at once - as a client's pool of HTTP/2 connections or a load generator
 * opens them - are spread over the loops for their whole life, not left on the loop that woke
 * first: of 8 connections each loop serves at least 3. */
static void a_burst_of_connections_is_spread_over_the_loops(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &(sx_srv_opts){.threads = 2}) == 0);
    unsigned long a0 = 0, b0 = 0, a1 = 0, b1 = 0;
    REQUIRE(requests_per_thread(&srv, &a0, &b0));
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = sx_test_tcp_connect(srv.port, 10);
        REQUIRE(fds[i] >= 0);
    }
    int served = 0;
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 8; i++)
            served += healthz_on(fds[i]);
    CHECK_INT(served, 80);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    REQUIRE(requests_per_thread(&srv, &a1, &b1));
    fprintf(stderr, "requests per loop: %lu and %lu\n", a1 - a0, b1 - b0);
    CHECK(a1 - a0 >= 30 && b1 - b0 >= 30);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

typedef struct starter {
    sx_srv srv;
    sx_srv_opts opts;
    int rc;
} starter;

static void *start_in_background(void *arg)
{
    starter *st = arg;
    st->rc = sx_srv_start(&st->srv, &st->opts);
    return NULL;
}

/* The listeners are open before every loop runs, and a client that reconnects at once (after a
 * restart) gets in while a loop is still setting up. The loop that accepts keeps what it cannot
 * hand over: loop 1 is held in its set-up (a test pause point) while 8 connections are served by
 * loop 0, then everything goes on as usual. */
static void connections_accepted_while_a_loop_sets_up_are_served(void)
{
    char *pause = sx_test_tmpdir("pause");
    char env[600], hold[700], paused[700];
    snprintf(env, sizeof(env), "SECRETSD_TEST_PAUSE_DIR=%s", pause);
    snprintf(hold, sizeof(hold), "%s/loop.setup.hold", pause);
    snprintf(paused, sizeof(paused), "%s/loop.setup.paused", pause);
    REQUIRE(sx_test_write_file(hold, "", 0) == 0);
    const char *envs[] = {env, NULL};
    starter st = {.opts = {.threads = 2, .extra_env = envs, .port = sx_test_free_port()}};
    REQUIRE(st.opts.port > 0);
    pthread_t tid;
    REQUIRE(pthread_create(&tid, NULL, start_in_background, &st) == 0);
    bool held = sx_test_wait_for_file(paused, 30000);
    CHECK(held);
    int fds[8], served = 0;
    for (int i = 0; i < 8; i++) {
        fds[i] = sx_test_tcp_connect(st.opts.port, 10);
        CHECK(fds[i] >= 0);
    }
    for (int round = 0; held && round < 3; round++)
        for (int i = 0; i < 8; i++)
            served += fds[i] >= 0 && healthz_on(fds[i]);
    CHECK_INT(served, held ? 24 : 0);
    CHECK(unlink(hold) == 0);
    pthread_join(tid, NULL);
    CHECK_INT(st.rc, 0);
    for (int i = 0; i < 8; i++) {
        if (fds[i] >= 0) {
            CHECK(healthz_on(fds[i]));
            close(fds[i]);
        }
    }
    if (st.rc == 0)
        CHECK_INT(sx_srv_stop(&st.srv, SIGTERM, 20), 0);
    sx_test_rmtree(pause);
    free(pause);
}

static void access_log_has_one_line_per_request_without_secrets(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    const char *hdrs[] = {"Authorization: Bearer sxt_canary_token_value", NULL};
    sx_resp r;
    CHECK(sx_srv_request(&srv, SX_H1, "GET", "/healthz?q=canary_query", hdrs, NULL, 0, &r) == 0);
    sx_resp_free(&r);
    CHECK(sx_srv_request(&srv, SX_H2C, "POST", "/healthz", hdrs, "{\"value\":\"canary_body\"}", 23, &r) == 0);
    sx_resp_free(&r);
    char *path = strdup(srv.access_log);
    char *dir = strdup(srv.dir);
    srv.own_dir = false;
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    size_t len = 0;
    char *log = sx_test_read_file(path, &len);
    REQUIRE(log != NULL);
    CHECK(strstr(log, "\"GET /healthz\" HTTP/1.1 200") != NULL);
    CHECK(strstr(log, "\"POST /healthz\" HTTP/2 405") != NULL);
    CHECK(!sx_test_memmem(log, len, "canary", 6));
    free(log);
    sx_test_rmtree(dir);
    free(dir);
    free(path);
}

static void bad_config_exits_with_status_2(void)
{
    char *dir = sx_test_tmpdir("badconf");
    char path[4096];
    snprintf(path, sizeof(path), "%s/bad.conf", dir);
    const char *conf = "[server]\nthreads = lots\n";
    sx_test_write_file(path, conf, strlen(conf));
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s' --config '%s' 2>'%s/err'", SX_SECRETSD_PATH, path, dir);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    snprintf(path, sizeof(path), "%s/err", dir);
    char *err = sx_test_read_file(path, NULL);
    CHECK(err && strstr(err, "bad.conf:2:") != NULL);
    free(err);
    snprintf(cmd, sizeof(cmd), "'%s' --config '%s/missing.conf' 2>/dev/null", SX_SECRETSD_PATH, dir);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    sx_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"healthz_answers_on_every_protocol", healthz_answers_on_every_protocol},
        {"readyz_is_ready_when_storage_answers", readyz_is_ready_when_storage_answers},
        {"unknown_routes_and_methods_are_json_errors", unknown_routes_and_methods_are_json_errors},
        {"oversized_bodies_get_json_413", oversized_bodies_get_json_413},
        {"admin_socket_is_private_and_reports_status", admin_socket_is_private_and_reports_status},
        {"secretsctl_fails_cleanly_without_a_server", secretsctl_fails_cleanly_without_a_server},
        {"sigterm_during_a_slow_request_still_answers_it", sigterm_during_a_slow_request_still_answers_it},
        {"two_threads_serve_concurrently", two_threads_serve_concurrently},
        {"a_burst_of_connections_is_spread_over_the_loops", a_burst_of_connections_is_spread_over_the_loops},
        {"connections_accepted_while_a_loop_sets_up_are_served", connections_accepted_while_a_loop_sets_up_are_served},
        {"access_log_has_one_line_per_request_without_secrets", access_log_has_one_line_per_request_without_secrets},
        {"bad_config_exits_with_status_2", bad_config_exits_with_status_2},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
