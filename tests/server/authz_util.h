/*
 * authz_util.h - what the files of test_authz share (authz_util.c): token helpers, an HTTP client
 * bound to a chosen loopback source address, log checks and a server per test. The matrix and the
 * unauthenticated requests are in test_authz.c, expiry, revocation, throttling and token hygiene
 * in test_authz_tokens.c; test_authz.c's main() runs them all.
 */
#ifndef SX_TEST_AUTHZ_UTIL_H
#define SX_TEST_AUTHZ_UTIL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "harness.h"
#include "testutil.h"

#define TOKEN_LEN 80 /* "sxt_" + 32 hex + "_" + 43 base64url */

/* The token's parts: id (32 hex), secret (43 chars) and the secret's 32 raw bytes. */
typedef struct token_parts {
    char id[33];
    char secret[44];
    unsigned char raw[32];
} token_parts;

/*
 * Like the harness's sx_srv_request(), but the curl handle lives across requests so that its
 * connection is reused (a reused connection stays on the same server thread, whose auth cache then
 * knows the token), and the socket can be bound to another loopback address.
 */
typedef struct client {
    const sx_srv *srv;
    sx_proto proto; /* SX_H1, SX_H2C, SX_H2TLS or SX_H1TLS */
    char iface[64]; /* "host!127.0.0.N", or "" for the default source address 127.0.0.1 */
    bool fresh;     /* a new connection for every request */
    CURL *h;
    long connects; /* connections the last request opened (0: it reused one) */
} client;

bool is_hex_lower(char c);
int b64url_index(char c);
bool token_well_formed(const char *t);
void token_split(const char *t, token_parts *p);
void random_token(char out[TOKEN_LEN + 1]);
void wrong_secret_of(const char *token, char out[TOKEN_LEN + 1]);
char *json_str(const char *body, const char *key);
bool json_is(const char *body, yajl_type type);
void client_init(client *c, const sx_srv *srv, sx_proto proto, const char *src, bool fresh);
void client_clear(client *c);
int client_send(client *c, const char *method, const char *path, const char *authz, const char *ctype, const char *body,
                sx_resp *ret);
int client_req(client *c, const char *method, const char *path, const char *token, const char *body, sx_resp *ret);
bool is_unauthorized(const sx_resp *r);
int expect_status(const sx_resp *r, long want, const char *what);
char *ctl_cmd(char *buf, size_t cap, const sx_srv *srv, const char *args);
bool logs_clean(const sx_srv *srv, const char *const *never, size_t n);
void with_server(const sx_srv_opts *opts, void (*body)(sx_srv *srv));

/* The tests, in the order main() (test_authz.c) runs them. */
void every_endpoint_role_and_scope_gets_the_expected_status(void);
void missing_or_bad_tokens_get_401_even_for_nonexistent_names(void);
void expired_and_revoked_tokens_get_401(void);
void failed_auth_flood_is_throttled_per_address_and_spares_valid_clients(void);
void secretsctl_token_create_prints_only_the_token_on_stdout(void);
void tokens_never_reach_storage_logs_or_error_bodies(void);

#endif
