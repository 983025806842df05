/*
 * crypto_bench.c - operations per second of the crypto module's hot paths.
 *
 *   value_encrypt_1k   sx_crypto_value_encrypt of 1 KiB (memory store: reads the env state, malloc)
 *   value_decrypt_1k   sx_crypto_value_decrypt of 1 KiB into a caller buffer (data key cached)
 *   aead_seal_1k       the value blob format alone (no storage, no cache)
 *   aead_open_1k
 *   datakey_wrap       wrap a 32-byte data key under a master key (format level)
 *   datakey_unwrap
 *   decrypt_cache_miss value decrypt when the data key must be read and unwrapped (cache of 16,
 *                      1000 envs visited round-robin)
 *   value_decrypt_1k_threads  the decrypt above from N threads at once (N = argv[1], default 4)
 *
 * Usage: crypto_bench [threads]. Prints one "name ops/s" line per measurement. Not run by ctest.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto_internal.h"

#define RUN_SECONDS 0.5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run fn in batches until RUN_SECONDS have passed; return ops per second. */
static double measure(void (*fn)(void *), void *ctx)
{
    unsigned long ops = 0;
    double start = now(), t;
    do {
        for (int i = 0; i < 256; i++)
            fn(ctx);
        ops += 256;
    } while ((t = now()) - start < RUN_SECONDS);
    return (double)ops / (t - start);
}

typedef struct bench {
    sx_crypto *c;
    sx_crypto_place p;
    uint8_t pt[1024], *blob, out[1024];
    size_t blen;
    uint8_t key[32], nonce[24], wrapped[SX_DATAKEY_BLOB_LEN], dk[32];
    uint8_t *blobs[1000];
    size_t lens[1000];
    char envs[1000][12];
    unsigned next;
} bench;

static void die(const char *what, int r)
{
    fprintf(stderr, "%s: %s\n", what, sx_crypto_strerror(r));
    exit(1);
}

static void b_encrypt(void *ctx)
{
    bench *b = ctx;
    uint8_t *blob;
    size_t len;
    int r = sx_crypto_value_encrypt(b->c, &blob, &len, &b->p, b->pt, sizeof b->pt);
    if (r)
        die("encrypt", r);
    free(blob);
}

static void b_decrypt(void *ctx)
{
    bench *b = ctx;
    uint8_t out[1024];
    size_t got;
    int r = sx_crypto_value_decrypt(b->c, out, sizeof out, &got, &b->p, b->blob, b->blen);
    if (r)
        die("decrypt", r);
}

static void b_seal(void *ctx)
{
    bench *b = ctx;
    randombytes_buf(b->nonce, sizeof b->nonce);
    sx_crypto_value_seal_nonce(b->blob, b->key, 1, &b->p, b->pt, sizeof b->pt, b->nonce);
}

static void b_open(void *ctx)
{
    bench *b = ctx;
    if (sx_crypto_value_open_raw(b->out, b->key, &b->p, b->blob, b->blen) != 0)
        die("open", SX_CRYPTO_EFORGED);
}

static void b_wrap(void *ctx)
{
    bench *b = ctx;
    sx_crypto_datakey_wrap(b->wrapped, b->key, 1, &b->p, 1, b->dk);
}

static void b_unwrap(void *ctx)
{
    bench *b = ctx;
    uint8_t dk[32];
    if (sx_crypto_datakey_unwrap(dk, b->key, &b->p, 1, b->wrapped, sizeof b->wrapped) != 0)
        die("unwrap", SX_CRYPTO_EFORGED);
    sodium_memzero(dk, sizeof dk);
}

static void b_miss(void *ctx)
{
    bench *b = ctx;
    unsigned i = b->next++ % 1000;
    sx_crypto_place p = {.org = "acme", .project = "web", .env = b->envs[i], .name = "K"};
    uint8_t out[64];
    size_t got;
    int r = sx_crypto_value_decrypt(b->c, out, sizeof out, &got, &p, b->blobs[i], b->lens[i]);
    if (r)
        die("decrypt (miss)", r);
}

typedef struct thr {
    bench *b;
    double ops;
} thr;

static void *thread_main(void *arg)
{
    thr *t = arg;
    t->ops = measure(b_decrypt, t->b);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 4;
    if (sodium_init() < 0 || nthreads < 1 || nthreads > 256)
        return 1;
    char dir[] = "/tmp/sx-crypto-bench-XXXXXX", keyfile[64], err[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(keyfile, sizeof keyfile, "%s/seal.key", dir);
    sx_storage *st;
    if (sx_storage_open(&(sx_storage_options){.backend = "memory"}, &st, err, sizeof err) != 0) {
        fprintf(stderr, "storage: %s\n", err);
        return 1;
    }
    bench *b = calloc(1, sizeof *b);
    sx_crypto_options o = {.seal = {.type = SX_CRYPTO_SEAL_FILE, .key_file = keyfile}};
    int r = sx_crypto_open(&b->c, NULL, st, &o, err, sizeof err);
    if (r)
        die(err, r);
    b->p = (sx_crypto_place){.org = "acme", .project = "web", .env = "prod", .name = "DATABASE_URL"};
    randombytes_buf(b->pt, sizeof b->pt);
    randombytes_buf(b->key, sizeof b->key);
    randombytes_buf(b->dk, sizeof b->dk);
    if ((r = sx_crypto_value_encrypt(b->c, &b->blob, &b->blen, &b->p, b->pt, sizeof b->pt)))
        die("encrypt", r);

    printf("value_encrypt_1k %.0f ops/s\n", measure(b_encrypt, b));
    printf("value_decrypt_1k %.0f ops/s\n", measure(b_decrypt, b));
    uint8_t *api_blob = b->blob;
    b->blob = malloc(SX_CRYPTO_VALUE_BLOB_LEN(1024));
    printf("aead_seal_1k %.0f ops/s\n", measure(b_seal, b));
    printf("aead_open_1k %.0f ops/s\n", measure(b_open, b));
    free(b->blob);
    b->blob = api_blob;
    printf("datakey_wrap %.0f ops/s\n", measure(b_wrap, b));
    b_wrap(b);
    printf("datakey_unwrap %.0f ops/s\n", measure(b_unwrap, b));

    sx_crypto_free(b->c);
    o.cache_entries = 16;
    if ((r = sx_crypto_open(&b->c, NULL, st, &o, err, sizeof err)))
        die(err, r);
    for (int i = 0; i < 1000; i++) {
        snprintf(b->envs[i], sizeof b->envs[i], "env%d", i);
        sx_crypto_place p = {.org = "acme", .project = "web", .env = b->envs[i], .name = "K"};
        if ((r = sx_crypto_value_encrypt(b->c, &b->blobs[i], &b->lens[i], &p, "v", 1)))
            die("encrypt", r);
    }
    printf("decrypt_cache_miss %.0f ops/s\n", measure(b_miss, b));

    pthread_t th[256];
    thr t[256];
    for (int i = 0; i < nthreads; i++) {
        t[i] = (thr){.b = b};
        pthread_create(&th[i], NULL, thread_main, &t[i]);
    }
    double total = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        total += t[i].ops;
    }
    printf("value_decrypt_1k_threads(%d) %.0f ops/s total\n", nthreads, total);

    for (int i = 0; i < 1000; i++)
        free(b->blobs[i]);
    free(b->blob);
    sx_crypto_free(b->c);
    free(b);
    sx_storage_close(st);
    unlink(keyfile);
    rmdir(dir);
    return 0;
}
