/*
 * test_scope.c - permissions and scopes cannot be escaped by path tricks: a path segment
 * with %, / tricks or any other byte is rejected with 400, never normalised into another scope,
 * and scopes compare exactly.
 *
 * Against the real binary: a token with role owner scoped to acme/web/prod, which holds one secret
 * "mine". Secrets named "x" with known values sit in neighbouring scopes - another env, project
 * and org, and the scopes that case games and trailing dots would reach (ACME, WEB, PROD, "acme.",
 * "prod."). Every trick in the table - dot segments, %2e%2e, %2F, //, %00, overlong UTF-8 %c0%ae,
 * case, trailing dots, ';' parameters, backslashes, percent-encoded letters, absolute-form and
 * raw bytes - is sent over HTTP/1.1 and h2c (raw bytes over a plain socket) and must get one of
 * the answers its row allows, each of which reveals nothing of another scope:
 *   400   the router refused a segment (never decoded or normalised);
 *   403   the path names another scope, which the token does not cover;
 *   404   the path matches no route at all, or names an absent secret of the token's own scope;
 *   none  (raw bytes only) h2o refused the request line and closed the connection.
 * No response body may ever contain another scope's value, and after the table every seeded secret
 * still has its value and description, and no env gained a secret.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"

enum { S400 = 1, S403 = 2, S404 = 4, SNONE = 8 };

/* The scopes seeded with a secret "x" (none of them covered by the acme/web/prod token). */
static const struct {
    const char *org, *project, *env;
} others[] = {
    {"acme", "web", "dev"},  {"acme", "api", "prod"}, {"other", "web", "prod"}, {"ACME", "web", "prod"},
    {"acme", "WEB", "prod"}, {"acme", "web", "PROD"}, {"acme.", "web", "prod"}, {"acme", "web", "prod."},
};
#define N_OTHERS (sizeof(others) / sizeof(others[0]))

typedef struct trick {
    const char *method;
    const char *path;
    unsigned allowed;
} trick;

#define OWN "/acme/web/envs/prod"

/* Sent with curl (CURLOPT_PATH_AS_IS: the bytes go out as written) over HTTP/1.1 and h2c. */
static const trick tricks[] = {
    /* dot segments, plain and encoded */
    {"GET", OWN "/secrets/../../dev/secrets/x", S404},
    {"GET", OWN "/../dev/secrets/x", S404},
    {"GET", "/acme/web/envs/prod/secrets/x/../../../../dev/secrets/x/value", S404},
    {"GET", OWN "/values/../../dev/values", S404},
    {"GET", "/acme/web/envs/%2e%2e/secrets/x", S400},
    {"GET", OWN "/secrets/%2e%2e", S400},
    {"GET", OWN "/secrets/%2E%2E/%2E%2E/dev/secrets/x", S400},
    {"GET", OWN "/secrets/.%2e/.%2e/.%2e/dev/secrets/x", S400},
    {"GET", "/acme/web/envs/./prod/secrets/mine", S404},
    {"GET", OWN "/secrets/..", S400},
    {"GET", OWN "/secrets/.", S400},
    /* encoded slashes */
    {"GET", "/acme/web/envs/prod%2F..%2Fdev/secrets/x", S400},
    {"GET", OWN "/secrets%2F..%2F..%2Fdev%2Fsecrets%2Fx", S400},
    {"GET", OWN "/secrets/mine%2F..%2F..%2F..%2Fdev%2Fsecrets%2Fx", S400},
    {"GET", OWN "/secrets/..%2f..%2fdev", S400},
    {"GET", "/acme%2fweb%2fenvs%2fdev/secrets/x", S400},
    /* empty segments */
    {"GET", "/acme/web/envs//dev/secrets/x", S400},
    {"GET", "//acme/web/envs/dev/secrets/x", S400},
    {"GET", OWN "/secrets//x", S400},
    {"GET", OWN "/secrets/mine/", S400},
    /* NUL */
    {"GET", "/acme/web/envs/dev%00/secrets/x", S400},
    {"GET", OWN "/secrets/x%00", S400},
    {"GET", "/acme/web/envs/prod%00/../dev/secrets/x", S400},
    /* overlong UTF-8 and other encodings of '.' and '/' */
    {"GET", "/acme/web/envs/%c0%ae%c0%ae/secrets/x", S400},
    {"GET", OWN "/secrets/%c0%ae%c0%ae/%c0%ae%c0%ae/dev/secrets/x", S400},
    {"GET", "/acme/web/envs/prod%c0%afdev/secrets/x", S400},
    {"GET", OWN "/secrets/%e0%80%ae%e0%80%ae", S400},
    {"GET", OWN "/secrets/%u002e%u002e", S400},
    {"GET", OWN "/secrets/%252e%252e", S400},
    /* percent-encoded letters are never decoded */
    {"GET", "/acme/web/envs/%64ev/secrets/x", S400},
    {"GET", "/%61cme/web/envs/prod/values", S400},
    {"GET", OWN "/secrets/%6dine", S400},
    /* case games: other scopes (the token does not cover them) or no route */
    {"GET", "/ACME/web/envs/prod/secrets/x", S403},
    {"GET", "/acme/WEB/envs/prod/secrets/x", S403},
    {"GET", "/acme/web/envs/PROD/secrets/x", S403},
    {"GET", "/ACME/web/envs/prod/values", S403},
    {"GET", "/acme/web/ENVS/prod/secrets/x", S404},
    {"GET", OWN "/SECRETS/x", S404},
    {"GET", OWN "/secrets/MINE", S404},
    /* trailing dots: distinct names */
    {"GET", "/acme./web/envs/prod/secrets/x", S403},
    {"GET", "/acme/web/envs/prod./secrets/x", S403},
    {"GET", "/acme/web/envs/prod./values", S403},
    {"GET", OWN "/secrets/mine.", S404},
    {"GET", OWN "/secrets/x.", S404},
    /* ';' parameters */
    {"GET", OWN "/secrets/mine;x=1", S400},
    {"GET", "/acme/web/envs/prod;/secrets/x", S400},
    {"GET", "/acme/web/envs/dev;prod/secrets/x", S400},
    {"GET", "/acme/web/envs/prod;../dev/secrets/x", S400},
    /* backslashes */
    {"GET", "/acme/web/envs/prod\\..\\dev/secrets/x", S400},
    {"GET", OWN "/secrets/..\\..\\dev", S400},
    {"GET", OWN "/secrets\\x", S400},
    {"GET", "/acme/web/envs/prod%5c..%5cdev/secrets/x", S400},
    /* a fragment or a query never shortens the path into another route */
    {"GET", OWN "/secrets/mine%23/../../dev/secrets/x", S400},
    {"GET", "/acme/web/envs/dev/secrets/x?/acme/web/envs/prod/secrets/mine", S403},
    {"GET", OWN "/secrets/x?x=/../../../dev/secrets/x", S404},
    {"GET", "/acme/web/envs/prod%3f/../dev/secrets/x", S400},
    /* whitespace, encoded */
    {"GET", "/acme/web/envs/prod%20/secrets/x", S400},
    {"GET", "/acme/web/envs/prod%09/secrets/x", S400},
    /* writes through tricks */
    {"PUT", OWN "/secrets/..%2F..%2Fdev%2Fsecrets%2Fx/value", S400},
    {"PUT", OWN "/../dev/secrets/x/value", S404},
    {"PUT", "/ACME/web/envs/prod/secrets/x/value", S403},
    {"PUT", "/acme/web/envs/dev%00/secrets/x/value", S400},
    {"PUT", "/acme/web/envs/prod./secrets/x/value", S403},
    {"PUT", "/acme/web/envs/%c0%ae%c0%ae/secrets/x/value", S400},
    {"PUT", "/acme/web/envs/prod;/../dev/secrets/x", S400},
    {"DELETE", OWN "/secrets/%2e%2e/%2e%2e/dev/secrets/x", S400},
    {"DELETE", "/acme/web/envs/PROD/secrets/x", S403},
    {"DELETE", "/acme/web/envs/prod\\..\\dev/secrets/x", S400},
    {"POST", OWN "/secrets/../../dev/secrets", S404},
    {"POST", "/acme/web/envs/dev;/secrets", S400},
    {"POST", "/acme/web/envs/prod%2F..%2Fdev/secrets", S400},
    {"POST", "/acme/web/envs/prod./secrets", S403},
};

/* Raw HTTP/1.1 request lines (bytes curl would not send), over a plain socket. */
static const struct {
    const char *line; /* "GET <target> HTTP/1.1" (may hold any byte but NUL, see len) */
    size_t len;       /* 0 = strlen(line) */
    unsigned allowed;
} raw[] = {
    {"GET /acme/web/envs/dev\0/secrets/x HTTP/1.1", 43, S400 | SNONE},
    {"GET /acme/web/envs/prod/secrets/x\0/../../dev HTTP/1.1", 54, S400 | SNONE},
    {"GET /acme/web/envs/pr\xc3\xb6"
     "d/secrets/x HTTP/1.1",
     0, S400 | SNONE},
    {"GET /acme/web/envs/\xc0\xae\xc0\xae/secrets/x HTTP/1.1", 0, S400 | SNONE},
    {"GET /acme/web/envs/prod/secrets/\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/dev/secrets/x HTTP/1.1", 0, S400 | SNONE},
    {"GET /acme/web/envs/prod\\..\\dev/secrets/x HTTP/1.1", 0, S400 | SNONE},
    {"GET /acme/web/envs/prod/secrets/mine#/../../dev/secrets/x HTTP/1.1", 0, S400 | SNONE},
    {"GET /acme/web/envs/prod\t/secrets/x HTTP/1.1", 0, S400 | SNONE},
    {"GET /acme/web/envs/prod\x7f/secrets/x HTTP/1.1", 0, S400 | SNONE},
    {"GET /acme/web/envs/prod\x1b/../dev/secrets/x HTTP/1.1", 0, S400 | SNONE},
    {"GET http://localhost/acme/web/envs/dev/secrets/x HTTP/1.1", 0, S400 | S403 | SNONE},
    {"GET http://localhost/acme/web/envs/prod/../dev/secrets/x HTTP/1.1", 0, S400 | S404 | SNONE},
    {"GET acme/web/envs/dev/secrets/x HTTP/1.1", 0, S400 | SNONE},
    {"GET * HTTP/1.1", 0, S400 | S404 | SNONE}, /* the asterisk form names no resource: 404 */
};

static char leak_tag[40];  /* every seeded other-scope value contains it */
static char pwned_tag[40]; /* every value a trick tries to write contains it */

static void random_tag(char *out, size_t cap, const char *prefix)
{
    unsigned char raw_bytes[8];
    if (getrandom(raw_bytes, sizeof(raw_bytes), 0) != (ssize_t)sizeof(raw_bytes))
        abort();
    snprintf(out, cap, "%s%02x%02x%02x%02x%02x%02x%02x%02x", prefix, raw_bytes[0], raw_bytes[1], raw_bytes[2],
             raw_bytes[3], raw_bytes[4], raw_bytes[5], raw_bytes[6], raw_bytes[7]);
}

static long req(const sx_srv *srv, sx_proto proto, const char *token, const char *method, const char *path,
                const char *body, sx_resp *ret)
{
    char *auth = sx_auth_header(token);
    const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
    int rc = sx_srv_request(srv, proto, method, path, hdrs, body, body ? strlen(body) : 0, ret);
    free(auth);
    return rc == 0 ? ret->status : 0;
}

static bool status_allowed(long status, unsigned allowed)
{
    return (status == 400 && (allowed & S400)) || (status == 403 && (allowed & S403)) ||
           (status == 404 && (allowed & S404)) || (status == 0 && (allowed & SNONE));
}

static const char *body_for(const char *method, char *buf, size_t cap)
{
    if (strcmp(method, "PUT") == 0)
        snprintf(buf, cap, "{\"value\":\"%s\"}", pwned_tag);
    else if (strcmp(method, "POST") == 0)
        snprintf(buf, cap, "{\"kind\":\"secret\",\"name\":\"x\",\"description\":\"%s\"}", pwned_tag);
    else
        return NULL;
    return buf;
}

/* Send one raw request (with Connection: close) and return the status, 0 when the server closed
 * the connection without an answer. The whole answer goes into out (NUL-terminated). */
static long raw_request(int port, const char *line, size_t len, const char *token, char *out, size_t cap)
{
    int fd = sx_test_tcp_connect(port, 10);
    if (fd < 0)
        return -1;
    char tail[256];
    int tl = snprintf(tail, sizeof(tail),
                      "\r\nHost: localhost\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", token);
    bool sent = write(fd, line, len) == (ssize_t)len && write(fd, tail, (size_t)tl) == tl;
    size_t n = 0;
    while (sent && n + 1 < cap) {
        ssize_t got = read(fd, out + n, cap - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    out[n] = '\0';
    close(fd);
    if (!sent)
        return -1;
    int status = 0;
    if (n >= 12 && strncmp(out, "HTTP/1.", 7) == 0)
        status = atoi(out + 9);
    return status;
}

static void path_tricks_never_reach_another_scope(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, NULL) == 0);
    random_tag(leak_tag, sizeof(leak_tag), "LEAK");
    random_tag(pwned_tag, sizeof(pwned_tag), "PWNED");

    /* Seed: "mine" in the token's own scope, "x" in every other scope, each with its own value. */
    char *mine_owner = sx_srv_mint_token(&srv, "acme", "web", "prod", "owner", NULL);
    REQUIRE(mine_owner != NULL);
    sx_resp r;
    char path[512], body[512], value[128];
    CHECK_INT(req(&srv, SX_H1, mine_owner, "POST", OWN "/secrets", "{\"kind\":\"secret\",\"name\":\"mine\"}", &r), 201);
    sx_resp_free(&r);
    CHECK_INT(req(&srv, SX_H1, mine_owner, "PUT", OWN "/secrets/mine/value", "{\"value\":\"MINE\"}", &r), 200);
    sx_resp_free(&r);
    char *other_tokens[N_OTHERS];
    for (size_t i = 0; i < N_OTHERS; i++) {
        other_tokens[i] = sx_srv_mint_token(&srv, others[i].org, others[i].project, others[i].env, "owner", NULL);
        REQUIRE(other_tokens[i] != NULL);
        snprintf(path, sizeof(path), "/%s/%s/envs/%s/secrets", others[i].org, others[i].project, others[i].env);
        CHECK_INT(req(&srv, SX_H1, other_tokens[i], "POST", path,
                      "{\"kind\":\"secret\",\"name\":\"x\",\"description\":\"seed\"}", &r),
                  201);
        sx_resp_free(&r);
        snprintf(path, sizeof(path), "/%s/%s/envs/%s/secrets/x/value", others[i].org, others[i].project, others[i].env);
        snprintf(body, sizeof(body), "{\"value\":\"%s-%zu\"}", leak_tag, i);
        CHECK_INT(req(&srv, SX_H1, other_tokens[i], "PUT", path, body, &r), 200);
        sx_resp_free(&r);
    }

    /* Controls: the token works in its own scope and is refused next door. */
    CHECK_INT(req(&srv, SX_H1, mine_owner, "GET", OWN "/secrets/mine/value", NULL, &r), 200);
    CHECK(strstr(r.body, "\"MINE\"") != NULL);
    sx_resp_free(&r);
    CHECK_INT(req(&srv, SX_H1, mine_owner, "GET", "/acme/web/envs/dev/secrets/x/value", NULL, &r), 403);
    sx_resp_free(&r);

    unsigned seen[5] = {0}; /* answers by kind: 400, 403, 404, none, other */
    static const sx_proto protos[] = {SX_H1, SX_H2C};
    for (size_t p = 0; p < sizeof(protos) / sizeof(protos[0]); p++) {
        for (size_t i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
            const trick *t = &tricks[i];
            char b[256];
            const char *tb = body_for(t->method, b, sizeof(b));
            long status = req(&srv, protos[p], mine_owner, t->method, t->path, tb, &r);
            bool ok = status != 0 && status_allowed(status, t->allowed);
            bool clean = !strstr(r.body, leak_tag) && !strstr(r.body, pwned_tag);
            if (!ok || !clean)
                fprintf(stderr, "%s %s %s -> %ld %s\n", protos[p] == SX_H1 ? "h1" : "h2c", t->method, t->path, status,
                        r.body);
            CHECK(ok);
            CHECK(clean);
            if (status == 400)
                CHECK(sx_resp_is_error(&r, "invalid_request"));
            seen[status == 400 ? 0 : status == 403 ? 1 : status == 404 ? 2 : status == 0 ? 3 : 4]++;
            sx_resp_free(&r);
        }
    }
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        char out[8192];
        size_t len = raw[i].len ? raw[i].len : strlen(raw[i].line);
        long status = raw_request(srv.port, raw[i].line, len, mine_owner, out, sizeof(out));
        bool ok = status >= 0 && status_allowed(status, raw[i].allowed);
        bool clean = !strstr(out, leak_tag) && !strstr(out, pwned_tag);
        if (!ok || !clean)
            fprintf(stderr, "raw #%zu -> %ld %s\n", i, status, out);
        CHECK(ok);
        CHECK(clean);
        seen[status == 400 ? 0 : status == 403 ? 1 : status == 404 ? 2 : status == 0 ? 3 : 4]++;
    }
    fprintf(stderr, "%zu tricks over h1 and h2c, %zu raw: %u x 400, %u x 403, %u x 404, %u closed, %u other\n",
            sizeof(tricks) / sizeof(tricks[0]), sizeof(raw) / sizeof(raw[0]), seen[0], seen[1], seen[2], seen[3],
            seen[4]);

    /* Nothing changed anywhere: every seeded value and description is intact, no env gained a
     * secret, and the token's own secret is as it was. */
    for (size_t i = 0; i < N_OTHERS; i++) {
        snprintf(path, sizeof(path), "/%s/%s/envs/%s/values", others[i].org, others[i].project, others[i].env);
        snprintf(value, sizeof(value), "{\"x\":\"%s-%zu\"}", leak_tag, i);
        CHECK_INT(req(&srv, SX_H1, other_tokens[i], "GET", path, NULL, &r), 200);
        if (strcmp(r.body, value) != 0)
            fprintf(stderr, "%s: %s (expected %s)\n", path, r.body, value);
        CHECK_STR(r.body, value);
        sx_resp_free(&r);
        snprintf(path, sizeof(path), "/%s/%s/envs/%s/secrets", others[i].org, others[i].project, others[i].env);
        CHECK_INT(req(&srv, SX_H1, other_tokens[i], "GET", path, NULL, &r), 200);
        CHECK(strstr(r.body, "\"description\":\"seed\"") && !strstr(r.body, pwned_tag) &&
              strstr(r.body, "[{\"name\":\"x\"") == r.body && !strstr(r.body, "},{"));
        sx_resp_free(&r);
    }
    CHECK_INT(req(&srv, SX_H1, mine_owner, "GET", OWN "/values", NULL, &r), 200);
    CHECK_STR(r.body, "{\"mine\":\"MINE\"}");
    sx_resp_free(&r);

    for (size_t i = 0; i < N_OTHERS; i++)
        free(other_tokens[i]);
    free(mine_owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"path_tricks_never_reach_another_scope", path_tricks_never_reach_another_scope},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
