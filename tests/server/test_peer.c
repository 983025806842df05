/*
 * test_peer.c - unit tests of server/peer.h: PROXY protocol v1/v2 parsing (complete, partial,
 * invalid), the signature sniff, and which X-Forwarded-For entry names the client.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "server/peer.h"
#include "testutil.h"

static sx_config cfg_with(const char *const *nets, size_t n, sx_config_cidr *store)
{
    sx_config c;
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < n; i++)
        if (sx_config_parse_cidr(nets[i], &store[i]) != 0)
            abort();
    c.trusted_proxies = store;
    c.n_trusted_proxies = n;
    return c;
}

static socklen_t addr_of(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        return sizeof *in;
    }
    if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return sizeof *in6;
    }
    abort();
}

static const char *text_of(const struct sockaddr_storage *ss, char *buf)
{
    if (ss->ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, INET6_ADDRSTRLEN);
    return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, INET6_ADDRSTRLEN);
}

static int parse(const void *b, size_t n, char *ip, size_t *used)
{
    struct sockaddr_storage ss;
    socklen_t sl = 99;
    int r = sx_peer_proxy_parse(b, n, &ss, &sl, used);
    ip[0] = '\0';
    if (r == 1 && sl)
        text_of(&ss, ip);
    return r;
}

static void proxy_v1_lines_parse_strictly(void)
{
    char ip[INET6_ADDRSTRLEN];
    size_t used = 0;
    const char *l = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\nGET / HTTP/1.1\r\n";
    CHECK_INT(parse(l, strlen(l), ip, &used), 1);
    CHECK_STR(ip, "203.0.113.7");
    CHECK_INT(used, strlen("PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\n"));
    l = "PROXY TCP6 2001:db8::5 ::1 1 65535\r\n";
    CHECK_INT(parse(l, strlen(l), ip, &used), 1);
    CHECK_STR(ip, "2001:db8::5");
    l = "PROXY UNKNOWN\r\n";
    CHECK_INT(parse(l, strlen(l), ip, &used), 1);
    CHECK_STR(ip, "");
    /* incomplete: every proper prefix asks for more */
    l = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\n";
    for (size_t n = 1; n < strlen(l); n++)
        CHECK_INT(parse(l, n, ip, &used), 0);
    static const char *const bad[] = {
        "PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080 x\r\n",
        "PROXY TCP4 203.0.113.7  10.0.0.1 51234 8080\r\n",
        "PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",
        "PROXY TCP6 203.0.113.7 ::1 1 2\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 65536 80\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 0080 80\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 1 2\n",
        "PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n",
        "PROXY TCP4 host 10.0.0.1 1 2\r\n",
        "GET / HTTP/1.1\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (parse(bad[i], strlen(bad[i]), ip, &used) != -1) {
            fprintf(stderr, "accepted: %s", bad[i]);
            sx_test_failures++;
        }
    char longl[200];
    memset(longl, 'x', sizeof longl);
    memcpy(longl, "PROXY TCP4 ", 11);
    CHECK_INT(parse(longl, sizeof longl, ip, &used), -1); /* no CRLF within 107 bytes */
}

static size_t v2(uint8_t *b, uint8_t vc, uint8_t fp, const uint8_t *addrs, size_t alen, size_t extra)
{
    static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    memcpy(b, sig, 12);
    b[12] = vc;
    b[13] = fp;
    b[14] = (uint8_t)((alen + extra) >> 8);
    b[15] = (uint8_t)(alen + extra);
    memcpy(b + 16, addrs, alen);
    memset(b + 16 + alen, 0, extra);
    return 16 + alen + extra;
}

static void proxy_v2_headers_parse_strictly(void)
{
    uint8_t b[4096], a4[12] = {203, 0, 113, 9, 10, 0, 0, 1, 0x1f, 0x90, 0x00, 0x50}, a6[36] = {0};
    char ip[INET6_ADDRSTRLEN];
    size_t used;
    size_t n = v2(b, 0x21, 0x11, a4, sizeof a4, 5); /* PROXY, INET/STREAM, 5 bytes of TLVs */
    CHECK_INT(parse(b, n, ip, &used), 1);
    CHECK_STR(ip, "203.0.113.9");
    CHECK_INT(used, n);
    for (size_t k = 1; k < n; k++)
        CHECK_INT(parse(b, k, ip, &used), 0);
    inet_pton(AF_INET6, "2001:db8::42", a6);
    n = v2(b, 0x21, 0x21, a6, sizeof a6, 0);
    CHECK_INT(parse(b, n, ip, &used), 1);
    CHECK_STR(ip, "2001:db8::42");
    n = v2(b, 0x20, 0x00, a4, 0, 0); /* LOCAL: the proxy's own check, no address */
    CHECK_INT(parse(b, n, ip, &used), 1);
    CHECK_STR(ip, "");
    CHECK_INT(used, 16);
    CHECK_INT(parse(b, v2(b, 0x11, 0x11, a4, 12, 0), ip, &used), -1); /* version 1 */
    CHECK_INT(parse(b, v2(b, 0x22, 0x11, a4, 12, 0), ip, &used), -1); /* command 2 */
    CHECK_INT(parse(b, v2(b, 0x21, 0x11, a4, 11, 0), ip, &used), -1); /* too short for INET */
    CHECK_INT(parse(b, v2(b, 0x21, 0x21, a6, 20, 0), ip, &used), -1); /* too short for INET6 */
    CHECK_INT(parse(b, v2(b, 0x21, 0x41, a4, 12, 0), ip, &used), -1); /* family 4 */
    CHECK_INT(parse(b, v2(b, 0x21, 0x11, a4, 12, SX_PEER_PROXY_MAX), ip, &used), -1);

    CHECK_INT(sx_peer_proxy_sniff((const uint8_t *)"PRO", 3), 0);
    CHECK_INT(sx_peer_proxy_sniff((const uint8_t *)"PROXY ", 6), 1);
    CHECK_INT(sx_peer_proxy_sniff((const uint8_t *)"PRI * HTTP/2.0", 14), -1);
    CHECK_INT(sx_peer_proxy_sniff((const uint8_t *)"\r\n\r\n", 4), 0);
    CHECK_INT(sx_peer_proxy_sniff((const uint8_t *)"\r\n\r\n\0\r\nQUIT\n", 12), 1);
    CHECK_INT(sx_peer_proxy_sniff((const uint8_t *)"\x16\x03\x01", 3), -1);
}

/* The client sx_peer_client picks for peer with these X-Forwarded-For fields. */
static const char *pick(const sx_config *cfg, const char *peer, const char *const *fields, size_t n, char *buf)
{
    struct sockaddr_storage p, out;
    socklen_t pl = addr_of(peer, &p);
    sx_peer_field f[8];
    for (size_t i = 0; i < n; i++)
        f[i] = (sx_peer_field){fields[i], strlen(fields[i])};
    if (sx_peer_client(cfg, (struct sockaddr *)&p, pl, f, n, &out) == 0)
        return "none";
    return text_of(&out, buf);
}

static void x_forwarded_for_picks_the_rightmost_untrusted_address(void)
{
    static const char *const nets[] = {"10.0.0.0/8", "fd00::/8"};
    sx_config_cidr store[2];
    sx_config cfg = cfg_with(nets, 2, store);
    char b[INET6_ADDRSTRLEN];
    const char *one[] = {"198.51.100.1, 203.0.113.5"};
    CHECK_STR(pick(&cfg, "10.0.0.2", one, 1, b), "203.0.113.5");
    /* from an untrusted peer the header is ignored */
    CHECK_STR(pick(&cfg, "192.0.2.1", one, 1, b), "192.0.2.1");
    /* trusted hops on the right are skipped, across several fields */
    const char *hops[] = {"198.51.100.1, 203.0.113.5", "10.1.1.1,fd00::7", " 10.2.2.2 "};
    CHECK_STR(pick(&cfg, "10.0.0.2", hops, 3, b), "203.0.113.5");
    /* all trusted: the leftmost */
    const char *all[] = {"10.9.9.9, 10.1.1.1"};
    CHECK_STR(pick(&cfg, "10.0.0.2", all, 1, b), "10.9.9.9");
    /* not an address on the way: the nearest trusted hop */
    const char *junk[] = {"203.0.113.5, unknown, 10.1.1.1"};
    CHECK_STR(pick(&cfg, "10.0.0.2", junk, 1, b), "10.1.1.1");
    const char *junk2[] = {"garbage"};
    CHECK_STR(pick(&cfg, "10.0.0.2", junk2, 1, b), "10.0.0.2");
    /* ports, brackets, IPv6, empty elements */
    const char *forms[] = {"203.0.113.5:443"};
    CHECK_STR(pick(&cfg, "10.0.0.2", forms, 1, b), "203.0.113.5");
    const char *forms6[] = {"[2001:db8::1]:443"};
    CHECK_STR(pick(&cfg, "fd00::1", forms6, 1, b), "2001:db8::1");
    const char *bare6[] = {"2001:db8::2,, "};
    CHECK_STR(pick(&cfg, "fd00::1", bare6, 1, b), "2001:db8::2");
    const char *mapped[] = {"::ffff:10.3.3.3, 10.4.4.4"};
    CHECK_STR(pick(&cfg, "::ffff:10.0.0.2", mapped, 1, b), "::ffff:10.3.3.3"); /* mapped = trusted v4 */
    /* no header: the peer */
    CHECK_STR(pick(&cfg, "10.0.0.2", NULL, 0, b), "10.0.0.2");
    /* no trusted proxies at all */
    sx_config none;
    memset(&none, 0, sizeof none);
    CHECK_STR(pick(&none, "10.0.0.2", one, 1, b), "10.0.0.2");
    CHECK(!sx_peer_trusted(&cfg, NULL));
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"proxy_v1_lines_parse_strictly", proxy_v1_lines_parse_strictly},
        {"proxy_v2_headers_parse_strictly", proxy_v2_headers_parse_strictly},
        {"x_forwarded_for_picks_the_rightmost_untrusted_address",
         x_forwarded_for_picks_the_rightmost_untrusted_address},
    };
    return sx_test_main(tests, sizeof tests / sizeof *tests, argc, argv);
}
