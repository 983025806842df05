/*
 * test_ctl_wire.c - secretsctl's own HTTP transport (ctl/http_wire*.c) against servers that answer
 * in ways secretsd does not: fake_api.py, a plain HTTP/1.1 server, answers chunked, read-to-close,
 * with an oversized head or body, and over TLS offering only http/1.1 over ALPN or presenting a
 * certificate for another name. What must hold: those answers are read exactly or refused with
 * exit 1; a certificate for another name fails verification before a request is sent, and neither
 * that nor a refused answer lets a fallback snapshot stand in.
 */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_util.h"
#include "test_ctl.h"

extern char **environ;

typedef struct fake {
    pid_t pid;
    int port;
    char *log;
} fake;

/* Start fake_api.py (with TLS when cert and key are given); false after printing why. */
static bool fake_start(fake *f, const char *tag, const char *cert, const char *key)
{
    char name[64];
    snprintf(name, sizeof(name), "fake-%s.port", tag);
    char *port_file = sx_test_path(g_dir, name);
    snprintf(name, sizeof(name), "fake-%s.log", tag);
    f->log = sx_test_path(g_dir, name);
    char *argv[] = {"python3", SX_CTL_FAKE_API, port_file, f->log, (char *)cert, (char *)key, NULL};
    if (!cert)
        argv[4] = NULL;
    f->port = 0;
    if (posix_spawnp(&f->pid, "python3", NULL, NULL, argv, environ) != 0) {
        fprintf(stderr, "cannot start python3\n");
        free(port_file);
        return false;
    }
    if (sx_test_file_wait(port_file, "\n", 15000)) {
        size_t len = 0;
        char *s = sx_test_read_file(port_file, &len);
        f->port = s ? atoi(s) : 0;
        free(s);
    }
    free(port_file);
    if (f->port <= 0) {
        fprintf(stderr, "fake_api.py did not start\n");
        return false;
    }
    return true;
}

static void fake_stop(fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    free(f->log);
    memset(f, 0, sizeof(*f));
}

static void set_addr(const char *scheme, const char *host, int port)
{
    char addr[128];
    snprintf(addr, sizeof(addr), "%s://%s:%d", scheme, host, port);
    ctl_setenv("SECRETSD_ADDR", addr);
}

void wire_http11_reads_chunked_and_read_to_close_answers(void)
{
    fake f;
    REQUIRE(fake_start(&f, "h1", NULL, NULL));
    char *addr = strdup(getenv("SECRETSD_ADDR"));
    set_addr("http", "127.0.0.1", f.port);
    ctl_expect(0, "from fake\n", "run --http1.1 acme/web/chunked -- printenv FAKE");
    ctl_expect(0, "from fake\n", "run --http1.1 acme/web/close -- printenv FAKE");
    ctl_expect(0, "from fake\n", "run --http1.1 acme/web/plain -- printenv FAKE");
    /* the request as sent: the path, HTTP/1.1, a token but not in the log */
    CHECK(ctl_file_has(f.log, "GET /acme/web/envs/chunked/values HTTP/1.1 auth=yes"));
    CHECK(!ctl_file_has(f.log, g_token));
    /* a server that speaks no HTTP/2 on http:// without --http1.1: an error, not a hang */
    CHECK_INT(ctl_sh(NULL, NULL, "run acme/web/plain -- true"), 1);
    ctl_setenv("SECRETSD_ADDR", addr);
    free(addr);
    fake_stop(&f);
}

void wire_tls_server_offering_only_http11_is_spoken_to_in_http11(void)
{
    fake f;
    char *key = sx_test_path(g_srv.dir, "key.pem");
    REQUIRE(fake_start(&f, "alpn", g_srv.cert_path, key));
    char *addr = strdup(getenv("SECRETSD_ADDR"));
    set_addr("https", "127.0.0.1", f.port);
    ctl_setenv("SECRETSD_CACERT", g_srv.cert_path);
    ctl_expect(0, "from fake\n", "run acme/web/chunked -- printenv FAKE");
    ctl_expect(0, "from fake\n", "run acme/web/plain -- printenv FAKE");
    /* by its DNS name too (the certificate names localhost) */
    set_addr("https", "localhost", f.port);
    ctl_expect(0, "from fake\n", "run --http1.1 acme/web/plain -- printenv FAKE");
    CHECK(ctl_file_has(f.log, "GET /acme/web/envs/plain/values HTTP/1.1 auth=yes"));
    ctl_setenv("SECRETSD_CACERT", NULL);
    ctl_setenv("SECRETSD_ADDR", addr);
    free(addr);
    free(key);
    fake_stop(&f);
}

void wire_certificate_for_another_name_fails_without_fallback(void)
{
    /* a good snapshot of the env, written from the real server */
    CHECK(ctl_api_set("/acme/web/envs/wn", "X", "1"));
    ctl_expect(0, "", "run --fallback wn.bin acme/web/wn -- true");
    char *cert = sx_test_path(g_dir, "other.pem"), *key = sx_test_path(g_dir, "other.key");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other.example "
             "-addext subjectAltName=DNS:other.example -keyout '%s' -out '%s' >/dev/null 2>&1",
             key, cert);
    REQUIRE(system(cmd) == 0);
    fake f;
    REQUIRE(fake_start(&f, "name", cert, key));
    char *addr = strdup(getenv("SECRETSD_ADDR")), *out = NULL, *err = NULL;
    ctl_setenv("SECRETSD_CACERT", cert); /* the chain verifies; the name does not */
    static const char *const hosts[] = {"127.0.0.1", "localhost"};
    for (size_t i = 0; i < 2; i++) {
        set_addr("https", hosts[i], f.port);
        CHECK_INT(ctl_sh(&out, &err, "run --fallback wn.bin acme/web/wn -- echo ran"), 1);
        CHECK_STR(out, "");
        CHECK(strstr(err, "certificate") && !strstr(err, "fallback"));
        free(out);
        free(err);
        CHECK_INT(ctl_sh(NULL, NULL, "run --http1.1 --fallback wn.bin acme/web/wn -- echo ran"), 1);
    }
    /* nothing was sent: no request reached the server */
    CHECK(!ctl_file_has(f.log, "GET "));
    ctl_setenv("SECRETSD_CACERT", NULL);
    ctl_setenv("SECRETSD_ADDR", addr);
    free(addr);
    free(cert);
    free(key);
    fake_stop(&f);
}

void wire_oversized_heads_and_bodies_are_refused(void)
{
    static const char *const modes[] = {"bighead", "bigbody", "bigchunk"};
    for (size_t i = 0; i < 3; i++) {
        /* good snapshots of envs named as the modes, written from the real server */
        char env[64];
        snprintf(env, sizeof(env), "/acme/web/envs/%s", modes[i]);
        CHECK(ctl_api_set(env, "X", "1"));
        ctl_expect(0, "", "run --fallback %s.bin acme/web/%s -- true", modes[i], modes[i]);
    }
    fake f;
    REQUIRE(fake_start(&f, "big", NULL, NULL));
    char *addr = strdup(getenv("SECRETSD_ADDR")), *out = NULL, *err = NULL;
    set_addr("http", "127.0.0.1", f.port);
    for (size_t i = 0; i < 3; i++) {
        /* an answer over its limit is no outage either: no fallback */
        CHECK_INT(ctl_sh(&out, &err, "run --http1.1 --fallback %s.bin acme/web/%s -- echo ran", modes[i], modes[i]), 1);
        CHECK_STR(out, "");
        CHECK(strstr(err, "over") && !strstr(err, "fallback"));
        free(out);
        free(err);
    }
    CHECK(ctl_file_has(f.log, "GET /acme/web/envs/bigchunk/values HTTP/1.1"));
    ctl_setenv("SECRETSD_ADDR", addr);
    free(addr);
    fake_stop(&f);
}
