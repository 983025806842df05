/*
 * test_throttle.c - failed-authentication throttling: blocking, Retry-After, refill, address
 * keying (IPv4, IPv6 /64, mapped), bounded memory under address churn, threads, and that valid
 * clients are never slowed (sx_auth_authenticate).
 */
#include "authtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/un.h>

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, ip, &in6->sin6_addr) != 1)
            abort();
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        if (inet_pton(AF_INET, ip, &in->sin_addr) != 1)
            abort();
    }
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void thousand_failures_block_with_retry_after(void)
{
    sx_auth_throttle *t = NULL;
    REQUIRE(sx_auth_throttle_new(NULL, &t) == 0);
    struct sockaddr_storage a = addr("192.0.2.1"), b = addr("192.0.2.2");
    unsigned retry = 0;
    CHECK(!sx_auth_throttle_blocked(t, SA(a), T0, &retry));
    for (int i = 0; i < 19; i++)
        sx_auth_throttle_failed(t, SA(a), T0);
    CHECK(!sx_auth_throttle_blocked(t, SA(a), T0, &retry)); /* burst 20: one left */
    for (int i = 19; i < 1000; i++)
        sx_auth_throttle_failed(t, SA(a), T0 + i);
    CHECK(sx_auth_throttle_blocked(t, SA(a), T0 + 1000, &retry));
    CHECK(retry >= 1);
    CHECK(!sx_auth_throttle_blocked(t, SA(b), T0 + 1000, &retry));
    CHECK_INT(sx_auth_throttle_count(t), 1);
    sx_auth_throttle_free(t);
}

static void bucket_refills_at_the_configured_rate(void)
{
    sx_auth_throttle *t = NULL;
    sx_auth_throttle_options o = {.burst = 3, .refill_per_s = 0.5, .max_addresses = 64};
    REQUIRE(sx_auth_throttle_new(&o, &t) == 0);
    struct sockaddr_storage a = addr("198.51.100.7");
    for (int i = 0; i < 3; i++)
        sx_auth_throttle_failed(t, SA(a), T0);
    unsigned retry = 0;
    CHECK(sx_auth_throttle_blocked(t, SA(a), T0, &retry));
    CHECK_INT(retry, 2); /* one token at 0.5/s */
    CHECK(sx_auth_throttle_blocked(t, SA(a), T0 + 1999, &retry));
    CHECK_INT(retry, 1);
    CHECK(!sx_auth_throttle_blocked(t, SA(a), T0 + 2000, &retry));
    sx_auth_throttle_failed(t, SA(a), T0 + 2000);
    CHECK(sx_auth_throttle_blocked(t, SA(a), T0 + 2000, &retry));
    /* The clock going backwards refills nothing. */
    CHECK(sx_auth_throttle_blocked(t, SA(a), T0 - 100000, &retry));
    CHECK(!sx_auth_throttle_blocked(t, SA(a), T0 + 60000, &retry));
    sx_auth_throttle_options bad = {.refill_per_s = -1};
    sx_auth_throttle *t2 = NULL;
    CHECK_INT(sx_auth_throttle_new(&bad, &t2), -EINVAL);
    sx_auth_throttle_free(t);
    sx_auth_throttle_free(NULL);
}

static void ipv6_is_keyed_by_its_64_prefix(void)
{
    sx_auth_throttle *t = NULL;
    sx_auth_throttle_options o = {.burst = 2};
    REQUIRE(sx_auth_throttle_new(&o, &t) == 0);
    struct sockaddr_storage a1 = addr("2001:db8:1:2::1"), a2 = addr("2001:db8:1:2:ffff:ffff:ffff:ffff"),
                            other = addr("2001:db8:1:3::1");
    sx_auth_throttle_failed(t, SA(a1), T0);
    sx_auth_throttle_failed(t, SA(a2), T0);
    CHECK(sx_auth_throttle_blocked(t, SA(a1), T0, NULL));
    CHECK(sx_auth_throttle_blocked(t, SA(a2), T0, NULL));
    CHECK(!sx_auth_throttle_blocked(t, SA(other), T0, NULL));

    /* An IPv4-mapped IPv6 address is the IPv4 client. */
    struct sockaddr_storage v4 = addr("203.0.113.9"), mapped = addr("::ffff:203.0.113.9"),
                            mapped_other = addr("::ffff:203.0.113.10");
    sx_auth_throttle_failed(t, SA(v4), T0);
    sx_auth_throttle_failed(t, SA(mapped), T0);
    CHECK(sx_auth_throttle_blocked(t, SA(v4), T0, NULL));
    CHECK(!sx_auth_throttle_blocked(t, SA(mapped_other), T0, NULL));

    /* Unix sockets (the admin socket) and NULL are never throttled. */
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    for (int i = 0; i < 10; i++)
        sx_auth_throttle_failed(t, (const struct sockaddr *)&un, T0);
    CHECK(!sx_auth_throttle_blocked(t, (const struct sockaddr *)&un, T0, NULL));
    CHECK(!sx_auth_throttle_blocked(t, NULL, T0, NULL));
    sx_auth_throttle_free(t);
}

static void table_stays_bounded_under_100k_addresses(void)
{
    sx_auth_throttle *t = NULL;
    sx_auth_throttle_options o = {.max_addresses = 4096};
    REQUIRE(sx_auth_throttle_new(&o, &t) == 0);
    CHECK_INT(sx_auth_throttle_capacity(t), 4096);
    struct sockaddr_storage victim = addr("192.0.2.200");
    for (int i = 0; i < 25; i++)
        sx_auth_throttle_failed(t, SA(victim), T0);
    /* 100k distinct IPv6 /64s and 100k IPv4 addresses, one failure each. */
    for (uint32_t i = 0; i < 100000; i++) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        in6.sin6_addr.s6_addr[0] = 0x20;
        in6.sin6_addr.s6_addr[1] = 0x01;
        memcpy(in6.sin6_addr.s6_addr + 4, &i, 4);
        sx_auth_throttle_failed(t, (const struct sockaddr *)&in6, T0 + 1);
        struct sockaddr_in in = {.sin_family = AF_INET};
        in.sin_addr.s_addr = htonl(0x0a000000u + i);
        sx_auth_throttle_failed(t, (const struct sockaddr *)&in, T0 + 1);
        CHECK(sx_auth_throttle_count(t) <= 4096);
    }
    CHECK_INT(sx_auth_throttle_count(t), 4096);
    /* The churn evicted nearly-full buckets first: the blocked address is still blocked. */
    CHECK(sx_auth_throttle_blocked(t, SA(victim), T0 + 2, NULL));
    sx_auth_throttle_free(t);
}

typedef struct hammer {
    sx_auth_throttle *t;
    int base;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *h = arg;
    for (int i = 0; i < 20000; i++) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        in.sin_addr.s_addr = htonl(0xc6120000u + (uint32_t)((h->base + i) % 512));
        sx_auth_throttle_failed(h->t, (const struct sockaddr *)&in, T0 + i / 10);
        (void)sx_auth_throttle_blocked(h->t, (const struct sockaddr *)&in, T0 + i / 10, NULL);
    }
    return NULL;
}

static void concurrent_threads_share_one_table(void)
{
    sx_auth_throttle *t = NULL;
    sx_auth_throttle_options o = {.max_addresses = 256};
    REQUIRE(sx_auth_throttle_new(&o, &t) == 0);
    pthread_t th[4];
    hammer h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (hammer){.t = t, .base = i * 97};
        REQUIRE(pthread_create(&th[i], NULL, hammer_run, &h[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(sx_auth_throttle_count(t) <= 256);
    sx_auth_throttle_free(t);
}

/* --- sx_auth_authenticate: throttling never slows valid clients ---------------------------------- */

static int auth_as(fixture *fx, sx_auth_cache *c, sx_auth_throttle *t, const char *ip, const char *token, int64_t now,
                   unsigned *retry)
{
    struct sockaddr_storage a = addr(ip);
    char hdr[128];
    size_t n = token ? fx_bearer(hdr, token) : 0;
    sx_auth_token p;
    return sx_auth_authenticate(fx->auth, c, t, SA(a), token ? hdr : NULL, n, now, &p, retry);
}

static void attacker_is_rate_limited_while_valid_clients_are_not(void)
{
    fixture fx;
    fx_open(&fx);
    sx_auth_throttle *t = NULL;
    REQUIRE(sx_auth_throttle_new(NULL, &t) == 0);
    char *tok = NULL, *shared = NULL;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &shared, NULL);
    char guess[SX_AUTH_TOKEN_LEN + 1];
    strcpy(guess, tok);
    guess[45] = guess[45] == 'Q' ? 'R' : 'Q';

    /* A valid client behind the attacker's address (same NAT) verified just before the attack. */
    CHECK_INT(auth_as(&fx, fx.cache, t, "192.0.2.66", shared, T0, NULL), 0);

    unsigned retry = 0;
    int limited = 0, unauthorized = 0;
    for (int i = 0; i < 1000; i++) {
        int rc = auth_as(&fx, fx.cache, t, "192.0.2.66", i % 3 ? guess : "garbage", T0 + i, &retry);
        if (rc == SX_AUTH_ERATELIMITED)
            limited++;
        else if (sx_auth_is_unauthorized(rc))
            unauthorized++;
    }
    CHECK_INT(unauthorized, 20); /* the burst */
    CHECK_INT(limited, 980);
    CHECK(retry >= 1);

    /* Once blocked, a wrong secret and a missing or malformed header are 429 (a malformed one
     * without any storage read). */
    CHECK_INT(auth_as(&fx, fx.cache, t, "192.0.2.66", guess, T0 + 1000, &retry), SX_AUTH_ERATELIMITED);
    fx_fail_storage(&fx, true);
    CHECK_INT(auth_as(&fx, fx.cache, t, "192.0.2.66", NULL, T0 + 1000, &retry), SX_AUTH_ERATELIMITED);
    CHECK_INT(auth_as(&fx, fx.cache, t, "192.0.2.66", "garbage", T0 + 1000, &retry), SX_AUTH_ERATELIMITED);
    fx_fail_storage(&fx, false);

    /* Another address is unaffected, with a valid token and with a wrong one. */
    CHECK_INT(auth_as(&fx, fx.cache, t, "198.51.100.1", tok, T0 + 1000, NULL), 0);
    CHECK_INT(auth_as(&fx, fx.cache, t, "2001:db8::1", guess, T0 + 1000, NULL), SX_AUTH_EBADTOKEN);
    /* The valid client on the blocked address still gets through: its id is in the cache, stale
     * (cached at T0, so re-read from storage) or fresh (then without storage). */
    struct sockaddr_storage a66 = addr("192.0.2.66");
    CHECK(sx_auth_throttle_blocked(t, SA(a66), T0 + 1000, NULL));
    CHECK_INT(auth_as(&fx, fx.cache, t, "192.0.2.66", shared, T0 + 1000, NULL), 0);
    fx_fail_storage(&fx, true);
    CHECK_INT(auth_as(&fx, fx.cache, t, "192.0.2.66", shared, T0 + 1001, NULL), 0);
    fx_fail_storage(&fx, false);
    CHECK(sx_auth_throttle_blocked(t, SA(a66), T0 + 1001, NULL));
    /* A token valid but never seen by this thread's cache (another loop thread, or after a
     * revocation cleared every cache) from the blocked address is served too, and the address
     * stays blocked for failures. */
    sx_auth_cache *fresh = NULL;
    REQUIRE(sx_auth_cache_new(16, &fresh) == 0);
    CHECK_INT(auth_as(&fx, fresh, t, "192.0.2.66", tok, T0 + 1000, &retry), 0);
    char *other = NULL;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &other, NULL);
    sx_auth_cache *fresh2 = NULL;
    REQUIRE(sx_auth_cache_new(16, &fresh2) == 0);
    CHECK_INT(auth_as(&fx, fresh2, t, "192.0.2.66", shared, T0 + 1000, NULL), 0);
    /* an unrelated revocation clears the caches: still served */
    {
        char oid[SX_AUTH_ID_LEN + 1];
        memcpy(oid, other + 4, SX_AUTH_ID_LEN);
        oid[SX_AUTH_ID_LEN] = '\0';
        REQUIRE(sx_auth_token_revoke(fx.auth, oid, T0) == 0);
    }
    CHECK_INT(auth_as(&fx, fresh2, t, "192.0.2.66", shared, T0 + 1000, NULL), 0);
    CHECK_INT(auth_as(&fx, fresh2, t, "192.0.2.66", other, T0 + 1000, &retry), SX_AUTH_ERATELIMITED);
    CHECK(sx_auth_throttle_blocked(t, SA(a66), T0 + 1000, NULL));
    sx_auth_cache_free(fresh2);
    sx_auth_token_plaintext_free(other);
    CHECK_INT(auth_as(&fx, fresh, t, "192.0.2.67", tok, T0 + 1000, &retry), 0);
    /* Storage trouble is not counted as a client failure. */
    fx_fail_storage(&fx, true);
    for (int i = 0; i < 50; i++)
        CHECK_INT(auth_as(&fx, fresh, t, "192.0.2.68", shared, T0 + 1000, NULL), SX_AUTH_EUNAVAILABLE);
    struct sockaddr_storage a68 = addr("192.0.2.68");
    CHECK(!sx_auth_throttle_blocked(t, SA(a68), T0 + 1000, NULL));
    fx_fail_storage(&fx, false);
    /* Without a throttle, authenticate is verify. */
    CHECK_INT(auth_as(&fx, fresh, NULL, "192.0.2.66", tok, T0 + 1000, NULL), 0);
    sx_auth_cache_free(fresh);
    sx_auth_token_plaintext_free(tok);
    sx_auth_token_plaintext_free(shared);
    sx_auth_throttle_free(t);
    fx_close(&fx);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"thousand_failures_block_with_retry_after", thousand_failures_block_with_retry_after},
        {"bucket_refills_at_the_configured_rate", bucket_refills_at_the_configured_rate},
        {"ipv6_is_keyed_by_its_64_prefix", ipv6_is_keyed_by_its_64_prefix},
        {"table_stays_bounded_under_100k_addresses", table_stays_bounded_under_100k_addresses},
        {"concurrent_threads_share_one_table", concurrent_threads_share_one_table},
        {"attacker_is_rate_limited_while_valid_clients_are_not", attacker_is_rate_limited_while_valid_clients_are_not},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
