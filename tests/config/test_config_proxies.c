/*
 * test_config_proxies.c - [server] trusted_proxies and proxy_listen: networks parse into the
 * values they say (IPv4 and IPv6, bare addresses, lists over several lines), a bad network stops
 * the load with FILE:LINE, and sx_config_cidr_match() matches exactly the addresses of a network
 * (IPv4-mapped IPv6 as IPv4).
 */
#include "config/config.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

static char *dir;
static char path[PATH_MAX];

static int load(const char *text, sx_config **ret, char *err, size_t errlen)
{
    snprintf(path, sizeof path, "%s/p.conf", dir);
    if (sx_test_write_file(path, text, strlen(text)) < 0)
        abort();
    return sx_config_load(path, ret, err, errlen);
}

/* text must fail with "PATH:" + msg. */
static void expect_error(int line, const char *text, const char *msg)
{
    sx_config *cfg = NULL;
    char err[512], want[PATH_MAX + 512];
    int r = load(text, &cfg, err, sizeof err);
    snprintf(want, sizeof want, "%s:%s", path, msg);
    if (r != -EINVAL || cfg || strcmp(err, want) != 0) {
        fprintf(stderr, "line %d: got %d \"%s\"\n         want \"%s\"\n", line, r, err, want);
        sx_test_failures++;
    }
    sx_config_free(cfg);
}

static bool match(const sx_config_cidr *n, const char *ip)
{
    uint8_t a[16];
    if (inet_pton(AF_INET, ip, a) == 1)
        return sx_config_cidr_match(n, 4, a);
    if (inet_pton(AF_INET6, ip, a) == 1)
        return sx_config_cidr_match(n, 6, a);
    abort();
}

static void trusted_proxies_and_proxy_listen_load(void)
{
    sx_config *cfg = NULL;
    char err[512];
    int r = load("[server]\n"
                 "trusted_proxies = 10.0.0.0/8, 192.0.2.7 ::1\n"
                 "trusted_proxies = fd00::/8,2001:db8::/32\n"
                 "proxy_listen = [::1]:0\n"
                 "proxy_listen = 127.0.0.1:0\n",
                 &cfg, err, sizeof err);
    REQUIRE(r == 0);
    REQUIRE(cfg->n_trusted_proxies == 5);
    CHECK_INT(cfg->trusted_proxies[0].family, 4);
    CHECK_INT(cfg->trusted_proxies[0].prefix, 8);
    CHECK_INT(cfg->trusted_proxies[0].addr[0], 10);
    CHECK_INT(cfg->trusted_proxies[1].prefix, 32);
    CHECK_INT(cfg->trusted_proxies[2].family, 6);
    CHECK_INT(cfg->trusted_proxies[2].prefix, 128);
    CHECK_INT(cfg->trusted_proxies[3].prefix, 8);
    CHECK_INT(cfg->trusted_proxies[4].prefix, 32);
    REQUIRE(cfg->n_proxy_listen == 2);
    CHECK_STR(cfg->proxy_listen[0].host, "::1");
    CHECK_INT(cfg->proxy_listen[1].line, 5);
    /* a proxy listener alone means no default cleartext listener */
    CHECK_INT(cfg->n_listen, 0);
    sx_config_free(cfg);

    REQUIRE(load("[server]\n", &cfg, err, sizeof err) == 0);
    CHECK_INT(cfg->n_trusted_proxies, 0);
    CHECK_INT(cfg->n_proxy_listen, 0);
    sx_config_free(cfg);
}

static void bad_network_is_file_line_error(void)
{
    const char *why = "is not an IPv4 or IPv6 network (ADDRESS or ADDRESS/PREFIX with no bits set past the prefix, "
                      "e.g. 10.0.0.0/8 or fd00::/8)";
    char msg[512];
    static const char *const bad[] = {"10.0.0.1/8",  "10.0.0.0/33", "::1/129",   "10.0.0/8",    "10.0.0.0/",
                                      "10.0.0.0/08", "fe80::1%lo",  "host.name", "10.0.0.0/-1", "::ffff:1.2.3.4/97"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[256];
        snprintf(text, sizeof text, "[server]\nthreads = 1\ntrusted_proxies = ::1, %s\n", bad[i]);
        snprintf(msg, sizeof msg, "3: [server] trusted_proxies: '%s' %s", bad[i], why);
        expect_error(__LINE__, text, msg);
    }
    expect_error(__LINE__, "[server]\ntrusted_proxies = \"\"\n",
                 "2: [server] trusted_proxies: expected a list of networks, e.g. 10.0.0.0/8, ::1");
    expect_error(__LINE__, "[server]\nthreads = 1\nproxy_listen = 127.0.0.1:0\n",
                 "3: [server] proxy_listen: needs [server] trusted_proxies (the proxies allowed to send a PROXY "
                 "header)");
    expect_error(__LINE__, "[server]\ntrusted_proxies = ::1\nproxy_listen = 127.0.0.1\n",
                 "3: [server] proxy_listen: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080, got '127.0.0.1'");
}

static void cidr_match_is_exact(void)
{
    sx_config_cidr n;
    REQUIRE(sx_config_parse_cidr("10.1.0.0/16", &n) == 0);
    CHECK(match(&n, "10.1.0.0"));
    CHECK(match(&n, "10.1.255.255"));
    CHECK(!match(&n, "10.2.0.0"));
    CHECK(!match(&n, "10.0.255.255"));
    CHECK(match(&n, "::ffff:10.1.2.3")); /* IPv4-mapped */
    CHECK(!match(&n, "::10.1.2.3"));     /* not mapped */
    CHECK(!match(&n, "2001:db8::1"));

    REQUIRE(sx_config_parse_cidr("192.0.2.128/25", &n) == 0);
    CHECK(match(&n, "192.0.2.128"));
    CHECK(match(&n, "192.0.2.255"));
    CHECK(!match(&n, "192.0.2.127"));

    REQUIRE(sx_config_parse_cidr("203.0.113.9", &n) == 0);
    CHECK_INT(n.prefix, 32);
    CHECK(match(&n, "203.0.113.9"));
    CHECK(!match(&n, "203.0.113.8"));

    REQUIRE(sx_config_parse_cidr("0.0.0.0/0", &n) == 0);
    CHECK(match(&n, "198.51.100.1"));
    CHECK(!match(&n, "::1"));

    REQUIRE(sx_config_parse_cidr("2001:db8:abcc::/47", &n) == 0);
    CHECK(match(&n, "2001:db8:abcc::1"));
    CHECK(match(&n, "2001:db8:abcd:ffff::1"));
    CHECK(!match(&n, "2001:db8:abcb::1"));
    CHECK(!match(&n, "2001:db8:abce::1"));
    CHECK(!match(&n, "10.0.0.1"));

    REQUIRE(sx_config_parse_cidr("::1", &n) == 0);
    CHECK_INT(n.prefix, 128);
    CHECK(match(&n, "::1"));
    CHECK(!match(&n, "::2"));
    CHECK(!match(&n, "127.0.0.1"));

    REQUIRE(sx_config_parse_cidr("::/0", &n) == 0);
    CHECK(match(&n, "fe80::1"));
    CHECK(!match(&n, "127.0.0.1"));

    CHECK(!sx_config_cidr_match(NULL, 4, n.addr));
    CHECK_INT(sx_config_parse_cidr(NULL, &n), -EINVAL);
    CHECK_INT(sx_config_parse_cidr("", &n), -EINVAL);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"trusted_proxies_and_proxy_listen_load", trusted_proxies_and_proxy_listen_load},
        {"bad_network_is_file_line_error", bad_network_is_file_line_error},
        {"cidr_match_is_exact", cidr_match_is_exact},
    };
    dir = sx_test_tmpdir("cfg-proxies");
    int r = sx_test_main(tests, sizeof tests / sizeof *tests, argc, argv);
    sx_test_rmtree(dir);
    free(dir);
    return r;
}
