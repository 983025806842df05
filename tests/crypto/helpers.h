/*
 * helpers.h - shared set-up for the crypto tests: a memory store, file-seal options in a temporary
 * folder, and small wrappers that abort the test on set-up failures.
 */
#ifndef SX_TEST_CRYPTO_HELPERS_H
#define SX_TEST_CRYPTO_HELPERS_H

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "testutil.h"

static inline sx_storage *mem_store(void)
{
    sx_storage *s = NULL;
    char err[256];
    if (sx_storage_open(&(sx_storage_options){.backend = "memory"}, &s, err, sizeof err) != 0) {
        fprintf(stderr, "memory store: %s\n", err);
        abort();
    }
    return s;
}

/* A test fixture: temp dir, key-file path, file-seal options. */
typedef struct fixture {
    char *dir;
    char key_file[512];
    sx_crypto_options opt;
} fixture;

static inline void fixture_init(fixture *f, const char *tag)
{
    memset(f, 0, sizeof *f);
    f->dir = sx_test_tmpdir(tag);
    snprintf(f->key_file, sizeof f->key_file, "%s/seal.key", f->dir);
    f->opt.seal.type = SX_CRYPTO_SEAL_FILE;
    f->opt.seal.key_file = f->key_file;
}

static inline void fixture_clear(fixture *f)
{
    sx_test_rmtree(f->dir);
    free(f->dir);
}

/* Open c on st with f's options; abort on failure (a set-up step, not the behaviour under test). */
static inline sx_crypto *must_open(sx_storage *st, const sx_crypto_options *opt)
{
    sx_crypto *c = NULL;
    char *rk = NULL, err[256];
    int r = sx_crypto_open(&c, &rk, st, opt, err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "sx_crypto_open: %d %s\n", r, err);
        abort();
    }
    sx_crypto_recovery_key_free(rk);
    return c;
}

static inline sx_crypto_place place4(const char *org, const char *project, const char *env, const char *name)
{
    return (sx_crypto_place){.org = org, .project = project, .env = env, .name = name};
}

/* Encrypt then return the blob (abort on failure). */
static inline uint8_t *must_encrypt(sx_crypto *c, size_t *len, const sx_crypto_place *p, const char *text)
{
    uint8_t *blob = NULL;
    int r = sx_crypto_value_encrypt(c, &blob, len, p, text, strlen(text));
    if (r != 0) {
        fprintf(stderr, "encrypt: %d %s\n", r, sx_crypto_strerror(r));
        abort();
    }
    return blob;
}

/* Decrypt and compare with text; returns the error code (0 when it matched). */
static inline int decrypt_is(sx_crypto *c, const sx_crypto_place *p, const uint8_t *blob, size_t len, const char *text)
{
    char out[4096];
    size_t got = 0;
    int r = sx_crypto_value_decrypt(c, out, sizeof out, &got, p, blob, len);
    if (r != 0)
        return r;
    return got == strlen(text) && memcmp(out, text, got) == 0 ? 0 : -1;
}

/* Flip bit 0, then bit 7, of every byte of a value blob in turn and decrypt it for p: returns how
 * many of those edits were not refused with SX_CRYPTO_EFORGED, _EFORMAT or -ENOKEY (0 = every one
 * was). The blob is restored after each edit. */
static inline int undetected_value_flips(sx_crypto *c, const sx_crypto_place *p, uint8_t *blob, size_t len,
                                         const char *text)
{
    int undetected = 0;
    for (size_t i = 0; i < len; i++)
        for (int m = 0; m < 2; m++) {
            blob[i] ^= m ? 0x80 : 0x01;
            int r = decrypt_is(c, p, blob, len, text);
            undetected += !(r == SX_CRYPTO_EFORGED || r == SX_CRYPTO_EFORMAT || r == -ENOKEY);
            blob[i] ^= m ? 0x80 : 0x01;
        }
    return undetected;
}

/* Read a record (abort when absent). Free with sx_storage_free(). */
static inline uint8_t *must_get(sx_storage *st, const char *key, size_t *len)
{
    void *v = NULL;
    if (sx_storage_get(st, key, strlen(key), &v, len, NULL) != 0) {
        fprintf(stderr, "missing record %s\n", key);
        abort();
    }
    return v;
}

static inline void must_put(sx_storage *st, const char *key, const void *val, size_t len)
{
    if (sx_storage_put(st, key, strlen(key), val, len, NULL) != 0)
        abort();
}

#endif
