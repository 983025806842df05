/*
 * auth_bench.c - what authenticating a request costs.
 *
 * Measures sx_auth_verify() with a warm per-thread cache (the common case: parse, keyed BLAKE2b,
 * constant-time compare, no storage), with a cold one (every call re-reads the record because the
 * clock moves past the trust window), rejections (malformed header, wrong secret), the throttle
 * check that sx_auth_authenticate() adds, and cached verification on several threads at once.
 *
 *     auth_bench [memory|rocksdb] [iterations]
 *
 * Figures are printed, never asserted: a shared machine makes wall-clock figures noisy.
 */
#include "auth/auth.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0 1767225600000LL

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, long n, double secs)
{
    printf("%-44s %10.0f ns/op %12.0f ops/s\n", what, secs / (double)n * 1e9, (double)n / secs);
}

typedef struct mt {
    sx_auth *auth;
    const char *hdr;
    size_t len;
    long n;
    int failures;
} mt;

static void *mt_run(void *arg)
{
    mt *m = arg;
    sx_auth_cache *c = NULL;
    if (sx_auth_cache_new(1024, &c) != 0)
        return NULL;
    sx_auth_token p;
    for (long i = 0; i < m->n; i++)
        if (sx_auth_verify(m->auth, c, m->hdr, m->len, T0 + (i & 511), &p) != 0)
            m->failures++;
    sx_auth_cache_free(c);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "memory";
    long n = argc > 2 ? atol(argv[2]) : 200000;
    if (sodium_init() < 0 || n <= 0)
        return 1;

    char dir[] = "/tmp/sx-auth-bench-XXXXXX";
    sx_storage_options opt = {.backend = backend, .sync = false};
    if (strcmp(backend, "memory") != 0) {
        if (!mkdtemp(dir))
            return 1;
        opt.path = dir;
    }
    char err[256] = "";
    sx_storage *s = NULL;
    if (sx_storage_open(&opt, &s, err, sizeof err) != 0) {
        fprintf(stderr, "open %s: %s\n", backend, err);
        return 1;
    }
    unsigned char key[SX_AUTH_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    sx_auth *auth = NULL;
    sx_auth_cache *cache = NULL;
    sx_auth_throttle *thr = NULL;
    if (sx_auth_new(s, key, sizeof key, &auth) != 0 || sx_auth_cache_new(1024, &cache) != 0 ||
        sx_auth_throttle_new(NULL, &thr) != 0)
        return 1;
    sodium_memzero(key, sizeof key);

    /* A store with 1000 tokens, like a busy deployment. */
    char *tok = NULL;
    for (int i = 0; i < 1000; i++) {
        sx_auth_token_spec spec = {.org = "acme", .project = "web", .role = SX_AUTH_ROLE_SERVICE, .label = "bench"};
        char *t = NULL;
        if (sx_auth_token_create(auth, &spec, T0, &t, NULL) != 0)
            return 1;
        if (i == 500)
            tok = t;
        else
            sx_auth_token_plaintext_free(t);
    }
    char hdr[128], bad[128], junk[128];
    size_t len = (size_t)snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    memcpy(bad, hdr, len);
    bad[60] = bad[60] == 'A' ? 'B' : 'A';
    size_t jlen = (size_t)snprintf(junk, sizeof junk, "Bearer not-a-token");
    sx_auth_token p;
    int fails = 0;
    printf("secretsd auth bench: backend %s, %ld iterations, %ld online CPUs\n", backend, n,
           sysconf(_SC_NPROCESSORS_ONLN));

    double t0 = now_s();
    for (long i = 0; i < n; i++)
        fails += sx_auth_verify(auth, cache, hdr, len, T0 + (i & 511), &p) != 0;
    report("verify, cached (hit)", n, now_s() - t0);

    long cold = n / 4 ? n / 4 : 1;
    t0 = now_s();
    for (long i = 0; i < cold; i++) /* each call 1 s later than the last: always a storage read */
        fails += sx_auth_verify(auth, cache, hdr, len, T0 + i * 1000, &p) != 0;
    report("verify, uncached (storage read)", cold, now_s() - t0);

    t0 = now_s();
    for (long i = 0; i < n; i++)
        fails += sx_auth_verify(auth, cache, junk, jlen, T0, &p) != SX_AUTH_EMALFORMED;
    report("reject malformed header", n, now_s() - t0);

    t0 = now_s();
    for (long i = 0; i < n; i++)
        fails += sx_auth_verify(auth, cache, bad, len, T0 + (i & 511), &p) != SX_AUTH_EBADTOKEN;
    report("reject wrong secret (id cached)", n, now_s() - t0);

    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr = {.s_addr = htonl(0xc0000201)}};
    t0 = now_s();
    for (long i = 0; i < n; i++)
        fails += sx_auth_authenticate(auth, cache, thr, (struct sockaddr *)&in, hdr, len, T0 + (i & 511), &p, NULL);
    report("authenticate (throttle check + cached verify)", n, now_s() - t0);

    t0 = now_s();
    for (long i = 0; i < n; i++) {
        in.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
        sx_auth_throttle_failed(thr, (struct sockaddr *)&in, T0);
    }
    report("throttle_failed, distinct addresses", n, now_s() - t0);

    for (int threads = 2; threads <= 8; threads *= 2) {
        mt m[8];
        pthread_t th[8];
        t0 = now_s();
        for (int i = 0; i < threads; i++) {
            m[i] = (mt){.auth = auth, .hdr = hdr, .len = len, .n = n};
            pthread_create(&th[i], NULL, mt_run, &m[i]);
        }
        for (int i = 0; i < threads; i++) {
            pthread_join(th[i], NULL);
            fails += m[i].failures;
        }
        double secs = now_s() - t0;
        char what[64];
        snprintf(what, sizeof what, "verify, cached, %d threads (aggregate)", threads);
        report(what, n * threads, secs);
    }

    if (fails)
        fprintf(stderr, "%d unexpected results\n", fails);
    sx_auth_token_plaintext_free(tok);
    sx_auth_throttle_free(thr);
    sx_auth_cache_free(cache);
    sx_auth_free(auth);
    sx_storage_close(s);
    if (opt.path) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return fails ? 1 : 0;
}
