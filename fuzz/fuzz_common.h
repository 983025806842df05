/*
 * fuzz_common.h - what the libFuzzer targets of secretsd share: a fixture with a memory store, the
 * key hierarchy opened on it (file seal in a private temp dir), token verification keyed like the
 * real server's, and two tokens planted with fixed ids and secrets so that the seed corpora and the
 * dictionary can carry them.
 *
 * The fixture is process-wide and built once (fuzz targets run one input after another in one
 * process); fz_fixture_get() aborts when it cannot be built, because fuzzing a half-initialised
 * server would only report noise. The temp dir is removed at exit.
 */
#ifndef SX_FUZZ_COMMON_H
#define SX_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "storage/storage.h"

/* The planted tokens (also in fuzz/http.dict and the corpora). FZ_TOKEN_OWNER is an owner of org
 * "acme" (every project and env); FZ_TOKEN_VIEWER a viewer of acme/web/prod only. Their secrets are
 * the bytes 0x00..0x1f and 0x20..0x3f, base64url without padding. */
#define FZ_TOKEN_OWNER  "sxt_0123456789abcdef0123456789abcdef_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define FZ_TOKEN_VIEWER "sxt_fedcba9876543210fedcba9876543210_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"

typedef struct fz_fixture {
    char *dir;           /* private temp dir (seal key file, config) */
    sx_config *config;   /* loaded from dir/secrets.conf: memory storage, no listeners */
    sx_storage *inner;   /* the memory store */
    sx_storage *storage; /* inner behind a counting wrapper (fz_storage_calls) */
    sx_crypto *crypto;
    sx_auth *auth;
} fz_fixture;

/* The process's fixture, built on first use. */
fz_fixture *fz_fixture_get(void);

/* Storage calls (get, put, del, batch, iter_new) made through fixture->storage so far. */
unsigned long fz_storage_calls(void);

/* Delete every secret record (m/ and v/) so that the store does not grow without bound over
 * millions of inputs. Tokens, keys and data-key records stay. */
void fz_storage_reset_secrets(void);

/* True when the len bytes at s are strict UTF-8 (no overlong forms, surrogates or > U+10FFFF). */
bool fz_utf8_valid(const unsigned char *s, size_t len);

#endif /* SX_FUZZ_COMMON_H */
