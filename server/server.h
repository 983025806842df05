/*
 * server.h - the secretsd HTTP server: listeners, event-loop threads, routing, the worker pool.
 *
 * One h2o event loop per thread, all accepting on the same listening sockets (cleartext HTTP/1.1
 * with HTTP/2 prior knowledge, TLS with ALPN h2/http1.1, and a Unix admin socket). Blocking work
 * (fsync'ing writes, Argon2id, TPM calls) never runs on a loop thread: it is handed to a worker
 * pool and answered with a message to the loop that asked (see pool.c).
 *
 * The server module is the one place that logs: storage/, crypto/, auth/ and config/ return
 * errors, and the server decides what to say about them, without values or tokens.
 */
#ifndef SX_SERVER_H
#define SX_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "common/log.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "storage/storage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sx_server sx_server;

/* Process-wide services a server runs with. All are borrowed and must outlive the server. */
typedef struct sx_server_deps {
    const sx_config *config;
    sx_storage *storage;
    sx_crypto *crypto; /* the unsealed key hierarchy */
    sx_auth *auth;     /* token verification, keyed with the keyring's token-hash key */
} sx_server_deps;

/*
 * Create a server: bind every listener, load the TLS certificate, create the admin socket (mode
 * 0600). Nothing is served until sx_server_run(). On failure returns a negative errno and writes a
 * one-line reason into err.
 */
int sx_server_new(sx_server **ret, const sx_server_deps *deps, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Serve until SIGTERM or SIGINT (which the caller must have blocked in every thread before calling,
 * see sx_server_block_signals()), then drain: stop accepting, let in-flight requests finish (up to
 * [server] drain_timeout) and return 0. Runs [server] threads event loops; the calling thread only
 * waits for signals.
 */
int sx_server_run(sx_server *s);

/* Ask a running server to drain and stop, as SIGTERM does. Safe from any thread. */
void sx_server_stop(sx_server *s);

/* Free a server that is not running. NULL ok. */
void sx_server_free(sx_server *s);

/* Block SIGTERM, SIGINT, SIGHUP and SIGPIPE in the calling thread (and so in threads it creates). */
void sx_server_block_signals(void);

/* --- logging (server/log.c) ------------------------------------------------------------------- */

/* Open the log: level and the access log destination from the configuration. */
int sx_log_open(const sx_config *cfg, char *err, size_t errlen);
void sx_log_close(void);
/* Route what libraries write to stderr (h2o's own lines, libpq notices) through the log as
 * warnings in the configured format: our lines go on to the original stderr, descriptor 2 becomes
 * a pipe read by a detached thread. Call once, before the server's threads start. Returns 0 or a
 * negative errno (nothing changed then). */
int sx_log_capture_stderr(void);

#ifdef __cplusplus
}
#endif

#endif /* SX_SERVER_H */
