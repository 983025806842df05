/*
 * test_proxy.c - the failed-login throttle never refuses a valid token, and behind a real haproxy
 * the client address comes from the PROXY protocol (v1 and v2) or X-Forwarded-For - only from
 * [server] trusted_proxies - for the throttle and the access log.
 *
 * Loopback only: haproxy reaches secretsd over ::1 (the trusted proxy), clients reach haproxy and
 * secretsd over 127.0.0.1 (never trusted). haproxy's `http-request set-src` gives each test
 * client an address of its own (documentation ranges), which haproxy then sends in its PROXY
 * header or appends to X-Forwarded-For. The haproxy tests exit 77 when haproxy is not installed.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

/* A free TCP port on addr (v6 when it contains ':'). */
static int free_port(const char *addr)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (fam == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &in->sin_addr);
        sl = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &in6->sin6_addr);
        sl = sizeof(*in6);
    }
    int fd = socket(fam, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        abort();
    int port =
        fam == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port) : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    close(fd);
    return port;
}

/* The port of the listener logged as "listening on <prefix>PORT". */
static int logged_port(const sx_srv *srv, const char *prefix)
{
    char *log = sx_test_read_file(srv->stderr_path, NULL);
    char *p = log ? strstr(log, prefix) : NULL;
    int port = p ? atoi(p + strlen(prefix)) : 0;
    free(log);
    return port;
}

static bool have_haproxy(void)
{
    return system("haproxy -v >/dev/null 2>&1") == 0;
}

typedef struct haproxy {
    pid_t pid;
    char cfg[512];
} haproxy;

/* Start haproxy in the foreground (-db) with the given frontends/backends; wait for its ports. */
static int haproxy_start(haproxy *h, const sx_srv *srv, const char *body, const int *ports, size_t nports)
{
    snprintf(h->cfg, sizeof(h->cfg), "%s/haproxy.cfg", srv->dir);
    char text[4096];
    snprintf(text, sizeof(text),
             "global\n    maxconn 4000\ndefaults\n    timeout connect 5s\n    timeout client 30s\n"
             "    timeout server 30s\n%s",
             body);
    if (sx_test_write_file(h->cfg, text, strlen(text)) != 0)
        return -1;
    h->pid = fork();
    if (h->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("haproxy", "haproxy", "-db", "-f", h->cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        size_t up = 0;
        for (size_t k = 0; k < nports; k++)
            if (sx_test_port_accepts(ports[k]))
                up++;
        if (up == nports)
            return 0;
        sx_test_sleep_ms(50);
    }
    return -1;
}

static void haproxy_stop(haproxy *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGTERM);
        waitpid(h->pid, NULL, 0);
    }
}

/* GET a route that needs a token, through srv->port (which callers may point at haproxy). */
static long get_status(const sx_srv *srv, const char *token, const char *src, const char *xff)
{
    char auth[160], s[96], x[128];
    const char *hdrs[4];
    size_t n = 0;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    hdrs[n++] = auth;
    if (src) {
        snprintf(s, sizeof(s), "X-Test-Src: %s", src);
        hdrs[n++] = s;
    }
    if (xff) {
        snprintf(x, sizeof(x), "X-Forwarded-For: %s", xff);
        hdrs[n++] = x;
    }
    hdrs[n] = NULL;
    sx_resp r;
    long status = 0;
    if (sx_srv_request(srv, SX_H1, "GET", "/acme/app/envs/dev/secrets", hdrs, NULL, 0, &r) == 0)
        status = r.status;
    sx_resp_free(&r);
    return status;
}

/* A well-formed token whose secret is wrong. */
static void wrong_secret(const char *good, char *out)
{
    strcpy(out, good);
    size_t i = strlen(out) - 2;
    out[i] = out[i] == 'A' ? 'B' : 'A';
}

static bool revoke_token(const sx_srv *srv, const char *id)
{
    char path[80];
    snprintf(path, sizeof(path), "/v1/tokens/%s", id);
    sx_resp r;
    bool ok = sx_srv_request(srv, SX_ADMIN, "DELETE", path, NULL, NULL, 0, &r) == 0 && r.status == 200;
    sx_resp_free(&r);
    return ok;
}

/* 1,000 bad tokens from one address block it; then a token used before the flood, and one never
 * used, both over 100 fresh connections each (4 loop threads) and after an unrelated revocation
 * emptied every token cache, are all 200, while bad tokens keep getting 429. */
static void valid_token_is_served_while_its_address_is_throttled(void)
{
    sx_srv srv;
    sx_srv_opts o = {.threads = 4};
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    char used_id[33], fresh_id[33], other_id[33];
    char *used = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", used_id);
    char *fresh = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", fresh_id);
    char *other = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", other_id);
    REQUIRE(used && fresh && other);
    CHECK_INT(get_status(&srv, used, NULL, NULL), 200);

    char bad[128];
    wrong_secret(fresh, bad);
    int limited = 0;
    for (int i = 0; i < 1000; i++)
        limited += get_status(&srv, bad, NULL, NULL) == 429;
    CHECK(limited >= 900);
    CHECK(revoke_token(&srv, other_id));

    int ok_used = 0, ok_fresh = 0;
    for (int i = 0; i < 100; i++) { /* the harness opens a new connection per request */
        ok_used += get_status(&srv, used, NULL, NULL) == 200;
        ok_fresh += get_status(&srv, fresh, NULL, NULL) == 200;
    }
    CHECK_INT(ok_used, 100);
    CHECK_INT(ok_fresh, 100);
    /* the address is still blocked for failures, and the revoked token is refused */
    CHECK_INT(get_status(&srv, bad, NULL, NULL), 429);
    CHECK_INT(get_status(&srv, other, NULL, NULL), 429);
    free(used);
    free(fresh);
    free(other);
    sx_srv_stop(&srv, SIGTERM, 10);
}

/* secretsd with a proxy listener on ::1 (trusted) and on 127.0.0.1 (whose peers are not), and a
 * cleartext listener on ::1 for X-Forwarded-For. */
static int start_behind_proxy(sx_srv *srv, int *pp6, int *pp4, int *plain6)
{
    sx_srv_opts o = {.threads = 2,
                     .extra_server = "trusted_proxies = ::1/128\nproxy_listen = [::1]:0\nproxy_listen = 127.0.0.1:0\n"
                                     "listen = [::1]:0\n"};
    if (sx_srv_start(srv, &o) != 0)
        return -1;
    *pp6 = logged_port(srv, "listening on proxy+http://[::1]:");
    *pp4 = logged_port(srv, "listening on proxy+http://127.0.0.1:");
    *plain6 = logged_port(srv, "listening on http://[::1]:");
    return *pp6 && *pp4 && *plain6 ? 0 : -1;
}

static bool log_has(const sx_srv *srv, const char *needle)
{
    char *log = sx_test_read_file(srv->access_log, NULL);
    bool has = log && strstr(log, needle);
    free(log);
    return has;
}

/* A request's access-log line is written when its stream is disposed, which can come just after
 * the client has read the whole response. */
static bool log_shows(const sx_srv *srv, const char *needle)
{
    return sx_test_file_wait(srv->access_log, needle, 5000);
}

/* Raw bytes to 127.0.0.1:port; true when the server closed without answering. */
static bool closed_without_answer(int port, const char *bytes)
{
    int fd = sx_test_tcp_connect(port, 5);
    if (fd < 0)
        return false;
    if (send(fd, bytes, strlen(bytes), MSG_NOSIGNAL) < 0) {
        close(fd);
        return true;
    }
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    close(fd);
    return n <= 0;
}

/* haproxy with send-proxy-v2 (HTTP mode) and send-proxy v1 (TCP mode, h2c too): the throttle
 * counts per client address behind the proxy, the log shows the client; PROXY headers from a peer
 * outside trusted_proxies are refused and a trusted peer without one is cut off. */
static void proxy_protocol_from_haproxy_names_the_client(void)
{
    if (!have_haproxy()) {
        fprintf(stderr, "haproxy is not installed: skipped\n");
        exit(77);
    }
    sx_srv srv;
    int pp6, pp4, plain6;
    REQUIRE(start_behind_proxy(&srv, &pp6, &pp4, &plain6) == 0);
    int fe_v2 = free_port("127.0.0.1"), fe_v1 = free_port("127.0.0.1");
    char body[2048];
    snprintf(body, sizeof(body),
             "frontend fe_v2\n    mode http\n    bind 127.0.0.1:%d\n"
             "    http-request set-src hdr(x-test-src) if { req.hdr(x-test-src) -m found }\n"
             "    default_backend be_v2\n"
             "backend be_v2\n    mode http\n    server s1 [::1]:%d send-proxy-v2\n"
             "frontend fe_v1\n    mode tcp\n    bind 127.0.0.1:%d\n    default_backend be_v1\n"
             "backend be_v1\n    mode tcp\n    server s1 [::1]:%d send-proxy\n",
             fe_v2, pp6, fe_v1, pp6);
    haproxy h = {0};
    int ports[] = {fe_v2, fe_v1};
    REQUIRE(haproxy_start(&h, &srv, body, ports, 2) == 0);

    char id[33];
    char *tok = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", id);
    REQUIRE(tok);
    char bad[128];
    wrong_secret(tok, bad);
    sx_srv via = srv;
    via.port = fe_v2;

    /* 1,000 failures from 203.0.113.7 behind the proxy block that client only. */
    int limited = 0;
    for (int i = 0; i < 1000; i++)
        limited += get_status(&via, bad, "203.0.113.7", NULL) == 429;
    CHECK(limited >= 900);
    CHECK_INT(get_status(&via, bad, "203.0.113.8", NULL), 401);
    CHECK_INT(get_status(&via, bad, "2001:db8::8", NULL), 401);
    CHECK_INT(get_status(&via, tok, "203.0.113.7", NULL), 200); /* and its valid token is served */
    CHECK_INT(get_status(&via, tok, "2001:db8::9", NULL), 200);
    CHECK(log_shows(&srv, " 203.0.113.7 \"GET /acme/app/envs/dev/secrets\" HTTP/1.1 429"));
    CHECK(log_shows(&srv, " 2001:db8::9 \"GET /acme/app/envs/dev/secrets\" HTTP/1.1 200"));
    CHECK(!log_has(&srv, " ::1 \"GET"));

    /* PROXY v1 over TCP mode, HTTP/1.1 and h2c: the client is 127.0.0.1, not the proxy ::1. */
    via.port = fe_v1;
    CHECK_INT(get_status(&via, tok, NULL, NULL), 200);
    sx_resp r;
    const char *hdrs[] = {NULL};
    REQUIRE(sx_srv_request(&via, SX_H2C, "GET", "/healthz", hdrs, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    CHECK(log_shows(&srv, " 127.0.0.1 \"GET /healthz\" HTTP/2 200"));

    /* A peer outside trusted_proxies: served as itself, but a PROXY header (v1 or v2) is refused. */
    via.port = pp4;
    CHECK_INT(get_status(&via, tok, NULL, NULL), 200);
    CHECK(closed_without_answer(pp4, "PROXY TCP4 198.51.100.1 127.0.0.1 1234 80\r\nGET /healthz HTTP/1.1\r\n"
                                     "Host: x\r\n\r\n"));
    CHECK(closed_without_answer(pp4, "\r\n\r\n\0\r\nQUIT\n"));
    CHECK(!log_has(&srv, "198.51.100.1"));
    char *err = sx_test_read_file(srv.stderr_path, NULL);
    CHECK(err && strstr(err, "a PROXY header from a peer that is not in trusted_proxies"));
    free(err);

    haproxy_stop(&h);
    free(tok);
    sx_srv_stop(&srv, SIGTERM, 10);
}

/* haproxy `option forwardfor` in front of a plain listener: from the trusted proxy the rightmost
 * X-Forwarded-For address that is not a trusted proxy is the client (what the client itself put
 * on the left is ignored); sent straight to secretsd, X-Forwarded-For is ignored. */
static void x_forwarded_for_is_believed_only_from_trusted_proxies(void)
{
    if (!have_haproxy()) {
        fprintf(stderr, "haproxy is not installed: skipped\n");
        exit(77);
    }
    sx_srv srv;
    int pp6, pp4, plain6;
    REQUIRE(start_behind_proxy(&srv, &pp6, &pp4, &plain6) == 0);
    int fe = free_port("127.0.0.1");
    char body[1024];
    snprintf(body, sizeof(body),
             "frontend fe_xff\n    mode http\n    bind 127.0.0.1:%d\n    option forwardfor\n"
             "    http-request set-src hdr(x-test-src) if { req.hdr(x-test-src) -m found }\n"
             "    default_backend be_xff\n"
             "backend be_xff\n    mode http\n    server s1 [::1]:%d\n",
             fe, plain6);
    haproxy h = {0};
    REQUIRE(haproxy_start(&h, &srv, body, &fe, 1) == 0);
    char id[33];
    char *tok = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", id);
    REQUIRE(tok);
    char bad[128];
    wrong_secret(tok, bad);
    sx_srv via = srv;
    via.port = fe;

    /* The client forges an X-Forwarded-For of its own; haproxy appends the real one. */
    int limited = 0;
    for (int i = 0; i < 1000; i++)
        limited += get_status(&via, bad, "203.0.113.20", "198.51.100.77") == 429;
    CHECK(limited >= 900);
    CHECK_INT(get_status(&via, bad, "203.0.113.21", "203.0.113.20"), 401);
    CHECK_INT(get_status(&via, tok, "203.0.113.20", NULL), 200);
    CHECK(log_shows(&srv, " 203.0.113.20 \"GET /acme/app/envs/dev/secrets\" HTTP/1.1 429"));
    CHECK(!log_has(&srv, "198.51.100.77"));

    /* Straight to secretsd from 127.0.0.1 (not trusted): X-Forwarded-For is ignored. */
    sx_srv direct = srv;
    direct.port = logged_port(&srv, "listening on http://127.0.0.1:");
    CHECK_INT(get_status(&direct, bad, NULL, "192.0.2.99"), 401);
    CHECK(log_shows(&srv, " 127.0.0.1 \"GET /acme/app/envs/dev/secrets\" HTTP/1.1 401"));
    CHECK(!log_has(&srv, "192.0.2.99")); /* looked for once the request's line is written */

    haproxy_stop(&h);
    free(tok);
    sx_srv_stop(&srv, SIGTERM, 10);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"valid_token_is_served_while_its_address_is_throttled", valid_token_is_served_while_its_address_is_throttled},
        {"proxy_protocol_from_haproxy_names_the_client", proxy_protocol_from_haproxy_names_the_client},
        {"x_forwarded_for_is_believed_only_from_trusted_proxies",
         x_forwarded_for_is_believed_only_from_trusted_proxies},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
