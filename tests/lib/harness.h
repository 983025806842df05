/*
 * harness.h - runs the real secretsd binary for integration tests and talks to it with libcurl.
 *
 * sx_srv_start() writes a configuration into a fresh temp dir (memory, RocksDB or PostgreSQL
 * storage, a cleartext and a TLS listener on ephemeral loopback ports, an admin socket), generates a
 * throw-away TLS certificate with the openssl tool, starts the binary and waits until it logs its
 * listeners. sx_srv_stop() signals it, reaps it and removes the temp dir.
 *
 * backend "postgres" without extra_storage starts a throw-away PostgreSQL server for this secretsd
 * alone (tests/lib/pgtest.h), stopped and removed by sx_srv_stop(). Tests of several nodes on one
 * database start the database themselves and give each node its [storage] lines in extra_storage.
 */
#ifndef SX_TEST_HARNESS_H
#define SX_TEST_HARNESS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum sx_proto {
    SX_H1 = 0,    /* cleartext HTTP/1.1 */
    SX_H2C = 1,   /* cleartext HTTP/2 with prior knowledge */
    SX_H2TLS = 2, /* TLS, ALPN h2 */
    SX_H1TLS = 3, /* TLS, ALPN http/1.1 */
    SX_ADMIN = 4, /* HTTP/1.1 over the admin socket */
} sx_proto;

typedef struct sx_srv_opts {
    const char *backend;      /* "memory" (default) or "rocksdb" */
    unsigned threads;         /* default 2 */
    const char *extra_server; /* extra lines for [server], e.g. "max_body_bytes = 4096\n" */
    bool keep_dir;            /* leave the temp dir after stop (for restart tests) */
    const char *dir;          /* reuse this dir instead of making one */
    const char *extra_log;    /* extra lines for [log], e.g. "audit_log = audit.log\n" */
    /* added for several nodes on one database; all optional */
    const char *extra_storage;    /* extra lines for [storage], e.g. "dsn = ...\npassword_file = ...\n" */
    const char *seal_key;         /* [seal] key_file; default "seal.key" in the temp dir (nodes share one) */
    const char *const *extra_env; /* NULL-terminated "NAME=value" added to secretsd's environment */
    const char *extra_secrets;    /* lines for a [secrets] section, e.g. "max_versions = 3\n" */
    const char *seal_lines;       /* the whole body of [seal] instead of "type = file\nkey_file = ..." */
    int port;                     /* the cleartext listener's port (a restart on the same one); 0 = ephemeral */
    int tls_port;                 /* the TLS listener's port; 0 = ephemeral */
} sx_srv_opts;

typedef struct sx_srv {
    char *dir;
    char *config_path;
    char *admin_socket;
    char *stderr_path;
    char *access_log;
    char *cert_path;
    pid_t pid;
    int port;     /* cleartext */
    int tls_port; /* TLS */
    bool own_dir;
    void *pg; /* the PostgreSQL server started for this secretsd alone (pgtest.h), or NULL */
} sx_srv;

typedef struct sx_resp {
    long status;
    long http_version; /* CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2_0 */
    char *body;        /* NUL-terminated */
    size_t body_len;
    char *headers; /* raw header block, NUL-terminated */
} sx_resp;

/* Start a server; returns 0, or -1 after printing why (77 when it needs a PostgreSQL server and none
 * is installed: the test should exit with 77, "skipped"). */
int sx_srv_start(sx_srv *srv, const sx_srv_opts *opts);
/* Send sig (SIGTERM usually), wait up to timeout_s for the exit; returns the exit status, or -1 if
 * it had to be killed or died from a signal. Removes the temp dir unless keep_dir was set. */
int sx_srv_stop(sx_srv *srv, int sig, int timeout_s);

/* One request. headers: NULL-terminated array of "Name: value" lines (may be NULL). body may be
 * NULL. Returns 0 when an HTTP answer came back (any status). */
int sx_srv_request(const sx_srv *srv, sx_proto proto, const char *method, const char *path, const char *const *headers,
                   const char *body, size_t body_len, sx_resp *ret);
void sx_resp_free(sx_resp *r);

/* Perform the request set up on h (a libcurl easy handle: URL, method, headers, body), collecting
 * the answer into *ret: status and HTTP version when it came back, and always a malloc'd body and
 * header block (empty on a transport failure; free with sx_resp_free()). h keeps its connection
 * for reuse. Returns libcurl's code, CURLE_OK when an HTTP answer came back. */
CURLcode sx_resp_perform(CURL *h, sx_resp *ret);

/* Have the answer r to the request done on h checked against openapi.yaml when the program exits
 * (sx_resp_perform() does it for every answer it collects; a test that drives libcurl itself, say
 * many requests at once, calls it for each answer). r->headers is the raw header block. */
void sx_resp_record(CURL *h, const sx_resp *r);

/* Value of response header name (case-insensitive), copied into buf; false when absent. */
bool sx_resp_header(const sx_resp *r, const char *name, char *buf, size_t cap);

/* True when the body is a JSON error with exactly the keys "error" (non-empty string) and "code"
 * equal to code. */
bool sx_resp_is_error(const sx_resp *r, const char *code);

/* Mint a token over the admin socket (POST /v1/tokens). project/env may be NULL. Returns a
 * malloc'd token string and writes its id into id_out (33 bytes) when not NULL; NULL on failure. */
/* The value of a sample of the admin socket's /metrics (e.g. `secretsd_forged_records_total{kind="token"}`),
 * -1 when absent or when the request fails. */
long long sx_srv_metric(const sx_srv *srv, const char *sample);
char *sx_srv_mint_token(const sx_srv *srv, const char *org, const char *project, const char *env, const char *role,
                        char *id_out);

/* One JSON request over HTTP/1.1 with the header line auth ("Authorization: Bearer ...", may be
 * NULL) and json as the body (may be NULL); the status, 0 when no answer came. With ret_body, the
 * answer's body (or "") as a malloc'd string the caller frees. */
long sx_srv_call(const sx_srv *srv, const char *auth, const char *method, const char *path, const char *json,
                 char **ret_body);

/* "Authorization: Bearer <token>" as a malloc'd header line. */
char *sx_auth_header(const char *token);

#endif
