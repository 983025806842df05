/* authtest.c - see authtest.h. */
#include "authtest.h"

#include <sodium.h>
#include <stdlib.h>

const char *fx_backend(void)
{
    const char *b = getenv("SX_AUTH_TEST_BACKEND");
    return b && *b ? b : "memory";
}

void fx_open(fixture *fx)
{
    char err[256] = "";
    sx_storage *inner = NULL;
    memset(fx, 0, sizeof *fx);
    if (sodium_init() < 0)
        abort();
    const char *backend = fx_backend();
    if (strcmp(backend, "memory") != 0)
        fx->dir = sx_test_tmpdir("auth");
    sx_storage_options opt = {.backend = backend, .path = fx->dir, .sync = false};
    int rc = sx_storage_open(&opt, &inner, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "cannot open %s storage: %s (%s)\n", backend, sx_storage_strerror(rc), err);
        abort();
    }
    if (sx_storage_fault_wrap(inner, &fx->store) != 0)
        abort();
    randombytes_buf(fx->key, sizeof fx->key);
    if (sx_auth_new(fx->store, fx->key, sizeof fx->key, &fx->auth) != 0)
        abort();
    if (sx_auth_cache_new(64, &fx->cache) != 0)
        abort();
}

void fx_close_storage(fixture *fx)
{
    sx_auth_cache_free(fx->cache);
    sx_auth_free(fx->auth);
    sx_storage_close(fx->store);
    fx->cache = NULL;
    fx->auth = NULL;
    fx->store = NULL;
}

void fx_close(fixture *fx)
{
    fx_close_storage(fx);
    if (fx->dir) {
        sx_test_rmtree(fx->dir);
        free(fx->dir);
        fx->dir = NULL;
    }
}

void fx_fail_storage(fixture *fx, bool fail)
{
    sx_storage_fault_set(fx->store, fail ? 1 : 0, fail);
}

void fx_mint(fixture *fx, const char *org, const char *project, const char *env, sx_auth_role role, int64_t ttl_ms,
             char **ret_token, sx_auth_token *ret_info)
{
    sx_auth_token_spec spec = {
        .org = org, .project = project, .env = env, .role = role, .label = "test token", .ttl_ms = ttl_ms};
    int rc = sx_auth_token_create(fx->auth, &spec, T0, ret_token, ret_info);
    if (rc != 0) {
        fprintf(stderr, "token create: %s\n", sx_auth_strerror(rc));
        abort();
    }
}

size_t fx_bearer(char *buf, const char *token)
{
    return (size_t)sprintf(buf, "Bearer %s", token);
}

int fx_verify(fixture *fx, const char *token, int64_t now, sx_auth_token *ret)
{
    char hdr[128];
    size_t n = fx_bearer(hdr, token);
    return sx_auth_verify(fx->auth, fx->cache, hdr, n, now, ret);
}
