/*
 * test_cache.c - the per-thread verification cache: hits without storage reads, the 1 s trust
 * window, immediate local revocation, bounded capacity, and that failures never enter it.
 *
 * The clock is the now_ms argument, so "a second later" is T0 + 1000, never a sleep.
 */
#include "authtest.h"

#include <pthread.h>
#include <stdlib.h>

static void second_verify_is_served_from_cache_without_storage_read(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    fx_fail_storage(&fx, true);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    CHECK_INT(fx_verify(&fx, tok, T0 + 999, &p), 0);
    CHECK_STR(p.org, "acme");
    /* A second cache (another thread) has not seen the token: it must read, and storage is down. */
    sx_auth_cache *other = NULL;
    REQUIRE(sx_auth_cache_new(16, &other) == 0);
    char hdr[128];
    size_t n = fx_bearer(hdr, tok);
    CHECK_INT(sx_auth_verify(fx.auth, other, hdr, n, T0, &p), SX_AUTH_EUNAVAILABLE);
    sx_auth_cache_free(other);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void cache_hit_still_checks_the_secret(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    fx_fail_storage(&fx, true);
    char bad[SX_AUTH_TOKEN_LEN + 1];
    strcpy(bad, tok);
    bad[50] = bad[50] == 'x' ? 'y' : 'x';
    /* Same id, wrong secret: rejected from the cached hash, no storage read (else UNAVAILABLE). */
    CHECK_INT(fx_verify(&fx, bad, T0, &p), SX_AUTH_EBADTOKEN);
    /* Even when the entry is stale: a token's hash never changes. */
    CHECK_INT(fx_verify(&fx, bad, T0 + 5000, &p), SX_AUTH_EBADTOKEN);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

/* A cached entry skips the keyed hash only for the very secret that passed the full check: every
 * one-character change of the token's secret part is rejected, before and after the entry is
 * refreshed from storage, and none of them displaces the real token. */
static void cached_fast_path_takes_only_the_verified_secret(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    size_t len = strlen(tok), rejected = 0;
    char bad[SX_AUTH_TOKEN_LEN + 1];
    for (size_t i = len - 43; i < len; i++) {
        strcpy(bad, tok);
        bad[i] = bad[i] == 'A' ? 'E' : 'A'; /* both canonical as the last character too */
        for (int64_t when = T0; when <= T0 + 5000; when += 5000) {
            CHECK_INT(fx_verify(&fx, bad, when, &p), SX_AUTH_EBADTOKEN);
            rejected++;
            CHECK_INT(fx_verify(&fx, tok, when, &p), 0);
        }
    }
    CHECK_INT(rejected, 86);
    /* The real token is still served from the cache with storage down. */
    fx_fail_storage(&fx, true);
    CHECK_INT(fx_verify(&fx, tok, T0 + 5100, &p), 0);
    CHECK_STR(p.org, "acme");
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void cached_entry_is_trusted_at_most_one_second(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    fx_fail_storage(&fx, true);
    CHECK_INT(fx_verify(&fx, tok, T0 + SX_AUTH_CACHE_TRUST_MS - 1, &p), 0);
    CHECK_INT(fx_verify(&fx, tok, T0 + SX_AUTH_CACHE_TRUST_MS, &p), SX_AUTH_EUNAVAILABLE);
    /* A clock that goes backwards does not extend trust either. */
    CHECK_INT(fx_verify(&fx, tok, T0 - 1, &p), SX_AUTH_EUNAVAILABLE);
    fx_fail_storage(&fx, false);
    CHECK_INT(fx_verify(&fx, tok, T0 + 2000, &p), 0); /* refreshed */
    fx_fail_storage(&fx, true);
    CHECK_INT(fx_verify(&fx, tok, T0 + 2999, &p), 0);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void revoke_on_this_node_takes_effect_immediately(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p, info;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, &info);
    sx_auth_cache *thread2 = NULL;
    REQUIRE(sx_auth_cache_new(16, &thread2) == 0);
    char hdr[128];
    size_t n = fx_bearer(hdr, tok);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    CHECK_INT(sx_auth_verify(fx.auth, thread2, hdr, n, T0, &p), 0);
    REQUIRE(sx_auth_token_revoke(fx.auth, info.id, T0 + 1) == 0);
    /* Same millisecond window: both caches still fresh, yet both refuse. */
    CHECK_INT(fx_verify(&fx, tok, T0 + 2, &p), SX_AUTH_EREVOKED);
    CHECK_INT(sx_auth_verify(fx.auth, thread2, hdr, n, T0 + 2, &p), SX_AUTH_EREVOKED);
    CHECK(sx_auth_is_unauthorized(SX_AUTH_EREVOKED));
    sx_auth_cache_free(thread2);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void revoke_through_storage_takes_effect_within_one_second(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p, info;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, &info);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);

    /* Another node revokes: it writes the record directly (flags byte, offset 2), no generation bump
     * in this process. A second sx_auth over the same storage plays that node. */
    sx_auth *node2 = NULL;
    REQUIRE(sx_auth_new(fx.store, fx.key, sizeof fx.key, &node2) == 0);
    char key[2 + SX_AUTH_ID_LEN];
    memcpy(key, "t/", 2);
    memcpy(key + 2, info.id, SX_AUTH_ID_LEN);
    unsigned char *val = NULL;
    size_t vlen = 0;
    REQUIRE(sx_storage_get(fx.store, key, sizeof key, (void **)&val, &vlen, NULL) == 0);
    val[2] |= 1;
    REQUIRE(sx_storage_put(fx.store, key, sizeof key, val, vlen, NULL) == 0);
    sx_storage_free(val);
    /* Trusted for less than a second, then re-read. */
    CHECK_INT(fx_verify(&fx, tok, T0 + 500, &p), 0);
    CHECK_INT(fx_verify(&fx, tok, T0 + 1000, &p), SX_AUTH_EREVOKED);
    CHECK_INT(fx_verify(&fx, tok, T0 + 1001, &p), SX_AUTH_EREVOKED);
    /* Deleted outright on the other node: unknown after the window. */
    REQUIRE(sx_storage_delete(fx.store, key, sizeof key) == 0);
    CHECK_INT(fx_verify(&fx, tok, T0 + 2500, &p), SX_AUTH_EBADTOKEN);
    sx_auth_free(node2);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void failed_verifications_never_enter_or_evict_the_cache(void)
{
    fixture fx;
    fx_open(&fx);
    sx_auth_cache_free(fx.cache);
    REQUIRE(sx_auth_cache_new(4, &fx.cache) == 0); /* one set of 4 ways */
    char *toks[4];
    sx_auth_token p;
    for (int i = 0; i < 4; i++) {
        fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &toks[i], NULL);
        CHECK_INT(fx_verify(&fx, toks[i], T0, &p), 0);
    }
    /* 5000 attempts with random unknown ids (well-formed, so each is read from storage). */
    for (int i = 0; i < 5000; i++) {
        char bad[SX_AUTH_TOKEN_LEN + 1];
        strcpy(bad, toks[0]);
        for (int j = 0; j < 8; j++)
            bad[4 + j] = "0123456789abcdef"[(i >> (j * 4)) & 15];
        int rc = fx_verify(&fx, bad, T0 + 1, &p);
        if (strncmp(bad, toks[0], 36) != 0)
            CHECK_INT(rc, SX_AUTH_EBADTOKEN);
    }
    /* An expired and a revoked token verified with the right secret do not enter it either. */
    char *expired = NULL, *revoked = NULL;
    sx_auth_token rinfo;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 1000, &expired, NULL);
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &revoked, &rinfo);
    REQUIRE(sx_auth_token_revoke(fx.auth, rinfo.id, T0) == 0); /* also drops the cache once */
    for (int i = 0; i < 4; i++)
        CHECK_INT(fx_verify(&fx, toks[i], T0 + 2, &p), 0); /* re-fill after the revocation */
    CHECK_INT(fx_verify(&fx, expired, T0 + 5000, &p), SX_AUTH_EEXPIRED);
    CHECK_INT(fx_verify(&fx, revoked, T0 + 2, &p), SX_AUTH_EREVOKED);
    fx_fail_storage(&fx, true);
    for (int i = 0; i < 4; i++)
        CHECK_INT(fx_verify(&fx, toks[i], T0 + 3, &p), 0);
    for (int i = 0; i < 4; i++)
        sx_auth_token_plaintext_free(toks[i]);
    sx_auth_token_plaintext_free(expired);
    sx_auth_token_plaintext_free(revoked);
    fx_close(&fx);
}

static void capacity_is_bounded_least_recently_used_goes(void)
{
    fixture fx;
    fx_open(&fx);
    sx_auth_cache_free(fx.cache);
    REQUIRE(sx_auth_cache_new(4, &fx.cache) == 0);
    char *toks[5];
    sx_auth_token p;
    for (int i = 0; i < 5; i++)
        fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &toks[i], NULL);
    for (int i = 0; i < 4; i++)
        CHECK_INT(fx_verify(&fx, toks[i], T0, &p), 0);
    CHECK_INT(fx_verify(&fx, toks[0], T0, &p), 0); /* 0 is now the most recent; 1 the least */
    CHECK_INT(fx_verify(&fx, toks[4], T0, &p), 0); /* evicts 1 */
    fx_fail_storage(&fx, true);
    CHECK_INT(fx_verify(&fx, toks[0], T0, &p), 0);
    CHECK_INT(fx_verify(&fx, toks[1], T0, &p), SX_AUTH_EUNAVAILABLE);
    CHECK_INT(fx_verify(&fx, toks[2], T0, &p), 0);
    CHECK_INT(fx_verify(&fx, toks[3], T0, &p), 0);
    CHECK_INT(fx_verify(&fx, toks[4], T0, &p), 0);
    for (int i = 0; i < 5; i++)
        sx_auth_token_plaintext_free(toks[i]);
    fx_close(&fx);
}

static void cache_does_not_mix_handles_with_different_keys(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    unsigned char other_key[SX_AUTH_KEY_BYTES];
    memset(other_key, 7, sizeof other_key);
    sx_auth *other = NULL;
    REQUIRE(sx_auth_new(fx.store, other_key, sizeof other_key, &other) == 0);
    char hdr[128];
    size_t n = fx_bearer(hdr, tok);
    /* Same cache, same token, other key: the cached entry belongs to fx.auth and is not used. */
    CHECK_INT(sx_auth_verify(other, fx.cache, hdr, n, T0, &p), SX_AUTH_EBADTOKEN);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    sx_auth_free(other);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

/* --- threads ------------------------------------------------------------------------------------ */

typedef struct worker {
    fixture *fx;
    const char *token;
    int ok, refused, other;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    sx_auth_cache *c = NULL;
    if (sx_auth_cache_new(32, &c) != 0)
        return NULL;
    char hdr[128];
    size_t n = fx_bearer(hdr, w->token);
    for (int i = 0; i < 2000; i++) {
        sx_auth_token p;
        int rc = sx_auth_verify(w->fx->auth, c, hdr, n, T0 + i, &p);
        if (rc == 0)
            w->ok++;
        else if (rc == SX_AUTH_EREVOKED)
            w->refused++;
        else
            w->other++;
    }
    sx_auth_cache_free(c);
    return NULL;
}

static void threads_with_own_caches_see_a_revocation(void)
{
    fixture fx;
    fx_open(&fx);
    char *keep = NULL, *drop = NULL;
    sx_auth_token dinfo;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &keep, NULL);
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &drop, &dinfo);
    worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.fx = &fx, .token = i % 2 ? drop : keep};
        REQUIRE(pthread_create(&th[i], NULL, work, &w[i]) == 0);
    }
    CHECK_INT(sx_auth_token_revoke(fx.auth, dinfo.id, T0), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(w[i].other, 0);
        CHECK_INT(w[i].ok + w[i].refused, 2000);
        if (i % 2 == 0)
            CHECK_INT(w[i].refused, 0);
    }
    /* After the join every thread's next verify of the revoked token refuses. */
    sx_auth_token p;
    CHECK_INT(fx_verify(&fx, drop, T0, &p), SX_AUTH_EREVOKED);
    sx_auth_token_plaintext_free(keep);
    sx_auth_token_plaintext_free(drop);
    fx_close(&fx);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"second_verify_is_served_from_cache_without_storage_read",
         second_verify_is_served_from_cache_without_storage_read},
        {"cache_hit_still_checks_the_secret", cache_hit_still_checks_the_secret},
        {"cached_fast_path_takes_only_the_verified_secret", cached_fast_path_takes_only_the_verified_secret},
        {"cached_entry_is_trusted_at_most_one_second", cached_entry_is_trusted_at_most_one_second},
        {"revoke_on_this_node_takes_effect_immediately", revoke_on_this_node_takes_effect_immediately},
        {"revoke_through_storage_takes_effect_within_one_second",
         revoke_through_storage_takes_effect_within_one_second},
        {"failed_verifications_never_enter_or_evict_the_cache", failed_verifications_never_enter_or_evict_the_cache},
        {"capacity_is_bounded_least_recently_used_goes", capacity_is_bounded_least_recently_used_goes},
        {"cache_does_not_mix_handles_with_different_keys", cache_does_not_mix_handles_with_different_keys},
        {"threads_with_own_caches_see_a_revocation", threads_with_own_caches_see_a_revocation},
    };
    fprintf(stderr, "backend: %s\n", fx_backend());
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
