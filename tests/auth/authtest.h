/*
 * authtest.h - fixtures shared by the auth test programs.
 *
 * Every test runs against a real storage backend wrapped in the fault-injecting backend, so a test
 * can prove that some path reads nothing from storage: set the wrapper to fail every call, and any
 * read turns into SX_AUTH_EUNAVAILABLE. The backend is "memory" unless SX_AUTH_TEST_BACKEND names
 * another one (ctest registers each storage-backed program once per backend).
 */
#ifndef SX_AUTHTEST_H
#define SX_AUTHTEST_H

#include "auth/auth.h"
#include "storage/fault.h"
#include "testutil.h"

#include <stdint.h>

/* A fixed clock for tests: 2026-01-01T00:00:00Z in ms. */
#define T0 1767225600000LL

typedef struct fixture {
    char *dir;         /* rocksdb directory (NULL for memory) */
    sx_storage *store; /* the fault wrapper around the real backend */
    sx_auth *auth;
    sx_auth_cache *cache;
    unsigned char key[SX_AUTH_KEY_BYTES];
} fixture;

/* Open a fresh fixture; aborts the program when the backend cannot be opened. */
void fx_open(fixture *fx);
/* Close storage only (keeps dir), e.g. before grepping rocksdb files. */
void fx_close_storage(fixture *fx);
/* Close everything and remove the directory. */
void fx_close(fixture *fx);
/* Name of the backend under test. */
const char *fx_backend(void);

/* Fail every storage call from now on (true) or none (false). */
void fx_fail_storage(fixture *fx, bool fail);

/* Mint a token; aborts on failure. *ret_token must be freed with sx_auth_token_plaintext_free(). */
void fx_mint(fixture *fx, const char *org, const char *project, const char *env, sx_auth_role role, int64_t ttl_ms,
             char **ret_token, sx_auth_token *ret_info);

/* "Bearer <token>" into buf (>= 100 bytes); returns its length. */
size_t fx_bearer(char *buf, const char *token);

/* Verify token with fx's cache at now. */
int fx_verify(fixture *fx, const char *token, int64_t now, sx_auth_token *ret);

#endif
