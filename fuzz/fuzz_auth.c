/*
 * fuzz_auth.c - libFuzzer target for the Authorization header parser inside sx_auth_verify().
 *
 * Input: the raw header value (as h2o hands it over). sx_auth_verify() runs against the fixture's
 * memory store behind a call-counting wrapper, with one long-lived cache (so the cache paths are
 * exercised too). The checks restate the grammar of auth/auth.h independently:
 *   value = "Bearer" SP "sxt_" 32*lowercase-hex "_" 43*base64url   (scheme case-insensitive,
 *           the last base64url character canonical: its 2 unused low bits zero)
 * and then require:
 *   - a value outside the grammar is SX_AUTH_EMALFORMED and made no storage call at all;
 *   - a value inside the grammar is never SX_AUTH_EMALFORMED;
 *   - success only for the planted tokens, with their own principal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_common.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_auth: check failed: %s (line %d)\n", #cond, __LINE__);                               \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

static bool well_formed(const char *v, size_t len)
{
    static const char scheme[] = "bearer ";
    if (len != 7 + 80)
        return false;
    for (size_t i = 0; i < 6; i++) {
        char c = v[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != scheme[i])
            return false;
    }
    if (v[6] != ' ')
        return false;
    const char *t = v + 7;
    if (memcmp(t, "sxt_", 4) != 0 || t[36] != '_')
        return false;
    for (size_t i = 4; i < 36; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return false;
    for (size_t i = 37; i < 80; i++) {
        int b = b64url_value((unsigned char)t[i]);
        if (b < 0)
            return false;
        if (i == 79 && (b & 3) != 0) /* 43 chars carry 258 bits; the last 2 must be zero */
            return false;
    }
    return true;
}

static sx_auth_cache *cache;
static int64_t now_ms = 1000;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_fixture *fx = fz_fixture_get();
    if (!cache)
        CHECK(sx_auth_cache_new(64, &cache) == 0);
    /* Advance the clock so that cache entries expire now and then (SX_AUTH_CACHE_TRUST_MS). */
    now_ms += 100;

    char *value = malloc(size ? size : 1);
    CHECK(value);
    memcpy(value, data, size);
    sx_auth_token who;
    memset(&who, 0, sizeof(who));
    unsigned long before = fz_storage_calls();
    int rc = sx_auth_verify(fx->auth, cache, size ? value : NULL, size, now_ms, &who);
    unsigned long calls = fz_storage_calls() - before;

    bool wf = well_formed(value, size);
    if (!wf) {
        CHECK(rc == SX_AUTH_EMALFORMED);
        CHECK(calls == 0);
    } else {
        CHECK(rc != SX_AUTH_EMALFORMED);
        CHECK(rc == 0 || sx_auth_is_unauthorized(rc));
        if (rc == 0) {
            bool owner = memcmp(value + 7, FZ_TOKEN_OWNER, 80) == 0;
            bool viewer = memcmp(value + 7, FZ_TOKEN_VIEWER, 80) == 0;
            CHECK(owner || viewer);
            CHECK(strcmp(who.org, "acme") == 0);
            CHECK(who.role == (owner ? SX_AUTH_ROLE_OWNER : SX_AUTH_ROLE_VIEWER));
            CHECK(strcmp(who.project, owner ? "" : "web") == 0);
        }
    }
    free(value);
    return 0;
}
