/*
 * http_client.h - secretsctl's client of secretsd's HTTP API, for the commands that read and write
 * secrets as an application does (`secret`, `export`, `run`): where the server is
 * (SECRETSD_ADDR), which token to send (SECRETSD_TOKEN or --token-file, never argv), which CA to
 * trust (SECRETSD_CACERT), one request at a time on a kept connection, and the exit statuses those
 * commands share. Part of secretsctl only; the admin-socket client is client.h.
 *
 * Answers that may hold values are kept in buffers that are wiped before they are freed
 * (ctl_api_resp_free), and the token lives in one sodium_malloc'd slot wiped by ctl_api_close.
 * The transport (http_wire.h) wipes its copy of the Authorization line once sent; nghttp2's HPACK
 * encoder keeps one while it encodes, which is accepted: it lives in this short-lived process
 * only, never in a file.
 */
#ifndef SX_CTL_HTTP_CLIENT_H
#define SX_CTL_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/http_wire.h"

/* The exit statuses of the client commands. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAIL = 1,      /* the server answered another error, or could not be reached */
    CTL_EXIT_USAGE = 2,     /* bad arguments or settings; nothing was sent */
    CTL_EXIT_NOTFOUND = 3,  /* 404 */
    CTL_EXIT_FORBIDDEN = 4, /* 401 or 403 */
};

/* Bytes of a token read from a file or the environment, newline excluded. */
#define CTL_TOKEN_MAX 512
/* Bytes of an ETag kept from an answer, quotes included. */
#define CTL_ETAG_MAX CTL_WIRE_ETAG_MAX
/* Bytes of the reason no answer came (ctl_api_resp.error). */
#define CTL_API_ERROR_MAX CTL_WIRE_ERROR_MAX
/* Bytes of an answer body accepted; a longer one fails the request. */
#define CTL_RESPONSE_MAX (64u * 1024 * 1024)
/* Milliseconds to connect (TLS handshake included) and to get one whole answer. */
#define CTL_API_CONNECT_TIMEOUT_MS 5000
#define CTL_API_REQUEST_TIMEOUT_MS 30000
/* Bytes of an env's path prefix "/o/p/envs/env" (three segments of at most 64) with a NUL. */
#define CTL_SCOPE_MAX 208
/* Bytes of a secret name with a NUL. */
#define CTL_NAME_MAX 257

/* Options every client command accepts (ctl_api_option()): their getopt_long ids. */
enum {
    CTL_OPT_TOKEN_FILE = 0x1000,
    CTL_OPT_HTTP11,
    CTL_OPT_JSON,
};
#define CTL_API_LONG_OPTIONS                                                                                           \
    {"token-file", required_argument, NULL, CTL_OPT_TOKEN_FILE}, {"http1.1", no_argument, NULL, CTL_OPT_HTTP11},       \
    {                                                                                                                  \
        "json", no_argument, NULL, CTL_OPT_JSON                                                                        \
    }

/* The settings of the client options, filled by ctl_api_option(). */
typedef struct ctl_api_opts {
    const char *token_file; /* argv */
    bool http11;
    bool json;
} ctl_api_opts;

/* One connection's worth of client state. */
typedef struct ctl_api {
    ctl_wire *w;
    char *base;   /* SECRETSD_ADDR without a trailing '/', malloc'd */
    char *prefix; /* the path of SECRETSD_ADDR (may be ""), put before each request's, malloc'd */
    char *auth;   /* "Bearer <token>", sodium_malloc'd */
    char *token;  /* points into auth */
    bool https;
} ctl_api;

/* An answer: status and body (wiped and freed by ctl_api_resp_free), the ETag when one came. */
typedef struct ctl_api_resp {
    long status; /* 0 when no answer came */
    char *body;  /* NUL-terminated, never NULL after ctl_api_call */
    size_t len;
    char etag[CTL_ETAG_MAX]; /* "" when none */
    ctl_wire_err err;        /* CTL_WIRE_OK when an HTTP answer came back */
    char error[CTL_API_ERROR_MAX];
} ctl_api_resp;

/* Handle one of the CTL_OPT_* ids of getopt_long into o; false when opt is not one of them. */
bool ctl_api_option(ctl_api_opts *o, int opt, const char *arg);

/* Help lines of the client options and the environment, for the commands' usage texts. */
extern const char ctl_api_usage[];

/* Read SECRETSD_ADDR, the token (o->token_file, else SECRETSD_TOKEN) and SECRETSD_CACERT and set
 * up the connection (opened by the first request). Returns CTL_EXIT_OK, or CTL_EXIT_USAGE after
 * printing why. On success the caller ends with ctl_api_close(). Needs sodium_init() called. */
int ctl_api_open(ctl_api *a, const ctl_api_opts *o);
void ctl_api_close(ctl_api *a);

/* The token's secret part (after "sxt_<id>_"), or the whole token when it has another shape;
 * valid until ctl_api_close(). */
const char *ctl_api_token_secret(const ctl_api *a, size_t *ret_len);

/* One request: method path (starting with '/', appended to SECRETSD_ADDR), an optional JSON body
 * and an optional If-None-Match value. *ret is always filled: ret->err != CTL_WIRE_OK when no
 * answer came (ret->error says why). Returns 0 when an HTTP answer came back (any status),
 * -EIO otherwise. Free with ctl_api_resp_free(). */
int ctl_api_call(ctl_api *a, const char *method, const char *path, const char *body, const char *if_none_match,
                 ctl_api_resp *ret);
void ctl_api_resp_free(ctl_api_resp *r);

/* True when the server could not be reached at all (refused, unresolved, timed out, the
 * connection dropped) or a gateway in front answered 502/503/504 - the cases where a fallback
 * snapshot may stand in. Never for a TLS verification failure or any other answer. */
bool ctl_api_unreachable(const ctl_api_resp *r);

/* The exit status of an answer (2xx 0, 404 3, 401/403 4, else 1), after printing the server's
 * message (or why no answer came) to stderr for a failure. what names the object ("secret
 * \"DB\"") in the message. */
int ctl_api_report(const ctl_api *a, const ctl_api_resp *r, const char *what);

/* Split "o/p/env" or, with_name, "o/p/env/name" and check each segment against the server's rules,
 * so it goes into a path as it is. Writes the env's path prefix ("/o/p/envs/env") and, with_name,
 * the name. Returns 0, or CTL_EXIT_USAGE after printing why. */
int ctl_parse_target(const char *arg, bool with_name, char ret_prefix[CTL_SCOPE_MAX], char ret_name[CTL_NAME_MAX]);

/* ctl_parse_target(arg, ...), then ctl_api_open(a, o): how every client command starts. Returns
 * CTL_EXIT_OK (the caller ends with ctl_api_close()) or the exit status after printing why. */
int ctl_api_start(ctl_api *a, const ctl_api_opts *o, const char *arg, bool with_name, char ret_prefix[CTL_SCOPE_MAX],
                  char ret_name[CTL_NAME_MAX]);

/* Exit status for an HTTP status (2xx 0, 404 3, 401/403 4, else 1). */
int ctl_exit_for_status(long status);

#endif /* SX_CTL_HTTP_CLIENT_H */
