/*
 * peer.c - the client address behind load balancers: PROXY protocol headers on proxy_listen
 * listeners and X-Forwarded-For, both believed only from [server] trusted_proxies.
 *
 * Why not h2o's own `expect_proxy_line`: libh2o 2.2.5 parses only the v1 text header, so the
 * binary v2 header that load balancers send by default (haproxy send-proxy-v2, AWS NLB) reaches
 * the HTTP parser as garbage; and it parses the header from every peer of the listener, so any
 * client could name any address. Here the listener decides at accept time, from the real TCP
 * peer (getpeername), before h2o sees a byte:
 *
 *   trusted peer    must start with a PROXY v1 or v2 header; its source address becomes the
 *                   socket's peer name (h2o_socket_setpeername), which everything after -
 *                   throttle, guard, logs - reads. No header, a bad one, or none within
 *                   request_timeout: the connection is closed.
 *   any other peer  served as a direct client; if its first bytes are a PROXY signature the
 *                   connection is closed (a client trying to choose its own address).
 *
 * Then the connection is handed to h2o (h2o_accept) and the hostile-client guard is attached;
 * whatever followed the header in the same read is replayed through the guarded read callback,
 * so the guard sees the HTTP/1.1 head or HTTP/2 preface from its first byte.
 *
 * X-Forwarded-For is read per request (sx_peer_request_client) on every listener, but only when
 * the peer (after PROXY) is a trusted proxy: the rightmost address that is not a trusted proxy is
 * the client. A client can put anything on the left of the list; only what the proxies appended
 * on the right counts.
 */
#include "server/peer.h"
#include "server/server_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* ---- PROXY protocol (pure) --------------------------------------------------------------------- */

static const uint8_t v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};
static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define V1_MAX 107 /* the longest v1 line, CRLF included */

int sx_peer_proxy_sniff(const uint8_t *buf, size_t len)
{
    const uint8_t *sigs[2] = {v1_sig, v2_sig};
    size_t lens[2] = {sizeof v1_sig, sizeof v2_sig};
    for (int i = 0; i < 2; i++) {
        size_t n = len < lens[i] ? len : lens[i];
        if (memcmp(buf, sigs[i], n) == 0)
            return len >= lens[i] ? 1 : 0;
    }
    return -1;
}

/* Decimal port 0..65535 of exactly len digits (no sign, no leading zero except "0"). */
static bool parse_port(const char *s, size_t len, uint16_t *ret)
{
    if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *ret = (uint16_t)v;
    return true;
}

/* "PROXY TCP4 src dst sport dport\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN ...\r\n". */
static int parse_v1(const uint8_t *buf, size_t len, struct sockaddr_storage *ret_addr, socklen_t *ret_len,
                    size_t *ret_consumed)
{
    const uint8_t *cr = NULL;
    for (size_t i = 0; i < len && i + 2 <= V1_MAX; i++) {
        if (buf[i] == '\n')
            return -1; /* a bare LF */
        if (buf[i] == '\r' && i + 1 == len)
            break;
        if (buf[i] == '\r') {
            if (buf[i + 1] != '\n')
                return -1;
            cr = buf + i;
            break;
        }
    }
    if (!cr)
        return len >= V1_MAX ? -1 : 0;
    char line[V1_MAX + 1];
    size_t n = (size_t)(cr - buf);
    memcpy(line, buf, n);
    line[n] = '\0';
    if (memchr(line, '\0', n))
        return -1;

    /* Fields split at single spaces; a seventh field or an empty one is a mistake. */
    char *f[7];
    size_t nf = 0;
    char *p = line;
    while (nf < 7) {
        f[nf++] = p;
        char *sp = strchr(p, ' ');
        if (!sp)
            break;
        *sp = '\0';
        p = sp + 1;
    }
    if (nf >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
        *ret_len = 0;
        *ret_consumed = n + 2;
        return 1;
    }
    if (nf != 6 || (strcmp(f[1], "TCP4") != 0 && strcmp(f[1], "TCP6") != 0))
        return -1;
    bool v6 = f[1][3] == '6';
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    int af = v6 ? AF_INET6 : AF_INET;
    if (inet_pton(af, f[2], src) != 1 || inet_pton(af, f[3], dst) != 1 || !parse_port(f[4], strlen(f[4]), &sport) ||
        !parse_port(f[5], strlen(f[5]), &dport))
        return -1;
    memset(ret_addr, 0, sizeof *ret_addr);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret_addr;
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, src, 16);
        a->sin6_port = htons(sport);
        *ret_len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ret_addr;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, src, 4);
        a->sin_port = htons(sport);
        *ret_len = sizeof *a;
    }
    *ret_consumed = n + 2;
    return 1;
}

/* 12-byte signature, version/command, family/protocol, 2-byte length, addresses, TLVs. */
static int parse_v2(const uint8_t *buf, size_t len, struct sockaddr_storage *ret_addr, socklen_t *ret_len,
                    size_t *ret_consumed)
{
    if (len < 16)
        return 0;
    uint8_t ver = buf[12] >> 4, cmd = buf[12] & 15, fam = buf[13] >> 4, proto = buf[13] & 15;
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (ver != 2 || cmd > 1 || fam > 3 || proto > 2 || 16 + body > SX_PEER_PROXY_MAX)
        return -1;
    size_t need = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
    if (body < need)
        return -1;
    if (len < 16 + body)
        return 0;
    const uint8_t *a = buf + 16;
    /* LOCAL (the proxy's own health check), or an address we cannot use: the peer stays. */
    *ret_len = 0;
    if (cmd == 1 && proto == 1 && fam == 1) {
        struct sockaddr_in *in = (struct sockaddr_in *)ret_addr;
        memset(ret_addr, 0, sizeof *ret_addr);
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, a, 4);
        memcpy(&in->sin_port, a + 8, 2);
        *ret_len = sizeof *in;
    } else if (cmd == 1 && proto == 1 && fam == 2) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret_addr;
        memset(ret_addr, 0, sizeof *ret_addr);
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, a, 16);
        memcpy(&in6->sin6_port, a + 32, 2);
        *ret_len = sizeof *in6;
    }
    *ret_consumed = 16 + body;
    return 1;
}

int sx_peer_proxy_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *ret_addr, socklen_t *ret_len,
                        size_t *ret_consumed)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    size_t used = 0;
    int s = sx_peer_proxy_sniff(buf, len);
    if (s <= 0)
        return s;
    int r = buf[0] == 'P' ? parse_v1(buf, len, &ss, &sl, &used) : parse_v2(buf, len, &ss, &sl, &used);
    if (r != 1)
        return r;
    if (sl)
        *ret_addr = ss;
    *ret_len = sl;
    *ret_consumed = used;
    return 1;
}

/* ---- trusted proxies and X-Forwarded-For (pure) ------------------------------------------------ */

bool sx_peer_trusted(const sx_config *cfg, const struct sockaddr *sa)
{
    if (!cfg || !sa || !cfg->n_trusted_proxies)
        return false;
    int family;
    const uint8_t *addr;
    if (sa->sa_family == AF_INET) {
        family = 4;
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        family = 6;
        addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    } else {
        return false;
    }
    for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
        if (sx_config_cidr_match(&cfg->trusted_proxies[i], family, addr))
            return true;
    return false;
}

/* One list entry (blanks trimmed) as an address: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]",
 * "[v6]:port". Port 0. */
static socklen_t parse_entry(const char *s, size_t len, struct sockaddr_storage *ret)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *host = buf;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close || (close[1] && (close[1] != ':' || !parse_port(close + 2, strlen(close + 2), &(uint16_t){0}))))
            return 0;
        *close = '\0';
        host = buf + 1;
    } else {
        char *colon = strchr(buf, ':');
        if (colon && !strchr(colon + 1, ':')) { /* one colon: IPv4 with a port */
            if (!parse_port(colon + 1, strlen(colon + 1), &(uint16_t){0}))
                return 0;
            *colon = '\0';
        }
    }
    memset(ret, 0, sizeof *ret);
    struct sockaddr_in *in = (struct sockaddr_in *)ret;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
    if (host == buf && inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        return sizeof *in;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return sizeof *in6;
    }
    return 0;
}

socklen_t sx_peer_client(const sx_config *cfg, const struct sockaddr *peer, socklen_t peer_len,
                         const sx_peer_field *xff, size_t nxff, struct sockaddr_storage *ret)
{
    if (!peer || peer_len == 0 || peer_len > sizeof *ret)
        return 0;
    struct sockaddr_storage cur;
    socklen_t cur_len = peer_len;
    memcpy(&cur, peer, peer_len);
    if (sx_peer_trusted(cfg, peer)) {
        /* Right to left over all fields, each read right to left. */
        for (size_t f = nxff; f-- > 0;) {
            const char *b = xff[f].base;
            size_t end = xff[f].len;
            while (end > 0) {
                size_t start = end;
                while (start > 0 && b[start - 1] != ',')
                    start--;
                size_t s = start, e = end;
                while (s < e && (b[s] == ' ' || b[s] == '\t'))
                    s++;
                while (e > s && (b[e - 1] == ' ' || b[e - 1] == '\t'))
                    e--;
                end = start ? start - 1 : 0;
                if (s == e)
                    continue; /* an empty list element */
                struct sockaddr_storage a;
                socklen_t al = parse_entry(b + s, e - s, &a);
                if (!al)
                    goto done; /* not an address: the nearest trusted hop is the client */
                memcpy(&cur, &a, al);
                cur_len = al;
                if (!sx_peer_trusted(cfg, (struct sockaddr *)&a))
                    goto done;
            }
        }
    }
done:
    memcpy(ret, &cur, cur_len);
    return cur_len;
}

/* ---- accept-time glue (server_internal.h) ------------------------------------------------------ */

enum { PROXY_EXPECT = 1, PROXY_SNIFF = 2 };

static void peer_text(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    snprintf(buf, cap, "?");
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)cap);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)cap);
}

/* A connection closed for a PROXY mistake: say so, at most once per 10 s per loop thread (the
 * peer picks how often this happens). */
static void refuse(sx_conn *c, const char *why)
{
    sx_thread *t = c->thread;
    uint64_t now = h2o_now(t->ctx.loop);
    if (!t->proxy_warned_at || now - t->proxy_warned_at >= 10000) {
        t->proxy_warned_at = now;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char peer[INET6_ADDRSTRLEN] = "?";
        if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0)
            peer_text(&ss, peer, sizeof peer);
        sx_log(SX_LOG_WARN, "closing connection from %s on a proxy_listen listener: %s", peer, why);
    }
    h2o_socket_close(c->sock);
}

static void on_proxy_timeout(h2o_timeout_entry_t *entry)
{
    sx_conn *c = H2O_STRUCT_FROM_MEMBER(sx_conn, proxy_timer, entry);
    refuse(c, "no PROXY header within request_timeout");
}

/* The PROXY step is over: hand the connection to h2o and the guard, then replay what followed. */
static void hand_over(sx_conn *c)
{
    h2o_socket_t *sock = c->sock;
    if (h2o_timeout_is_linked(&c->proxy_timer))
        h2o_timeout_unlink(&c->proxy_timer);
    c->proxy_state = 0;
    h2o_socket_read_stop(sock);
    h2o_buffer_t *rest = sock->input;
    h2o_buffer_init(&sock->input, &h2o_socket_buffer_prototype);
    h2o_accept(c->proxy_ctx, sock); /* cleartext: h2o_http1_accept, which starts reading */
    sx_guard_attach(c);
    if (rest->size == 0 || !sock->_cb.read) {
        h2o_buffer_dispose(&rest);
        return;
    }
    h2o_buffer_dispose(&sock->input);
    sock->input = rest;
    sock->bytes_read = rest->size;
    sock->_cb.read(sock, NULL); /* may close the socket (and free c) */
}

static void on_proxy_read(h2o_socket_t *sock, const char *err)
{
    sx_conn *c = sock->on_close.data;
    if (err) {
        h2o_socket_close(sock);
        return;
    }
    const uint8_t *in = (const uint8_t *)sock->input->bytes;
    size_t n = sock->input->size;
    if (c->proxy_state == PROXY_SNIFF) {
        int s = sx_peer_proxy_sniff(in, n);
        if (s == 0)
            return;
        if (s > 0) {
            refuse(c, "a PROXY header from a peer that is not in trusted_proxies");
            return;
        }
        hand_over(c);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    size_t used = 0;
    int r = sx_peer_proxy_parse(in, n, &ss, &sl, &used);
    if (r == 0)
        return; /* bounded: v1 fails past 107 bytes, v2 past SX_PEER_PROXY_MAX */
    if (r < 0) {
        refuse(c, "a trusted proxy sent no valid PROXY header");
        return;
    }
    h2o_buffer_consume(&sock->input, used);
    if (sl)
        h2o_socket_setpeername(sock, (struct sockaddr *)&ss, sl);
    hand_over(c);
}

void sx_peer_accept(sx_conn *c, h2o_accept_ctx_t *ctx)
{
    sx_thread *t = c->thread;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    bool trusted = getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0 &&
                   sx_peer_trusted(t->server->config, (struct sockaddr *)&ss);
    c->proxy_ctx = ctx;
    c->proxy_state = trusted ? PROXY_EXPECT : PROXY_SNIFF;
    c->proxy_timer.cb = on_proxy_timeout;
    h2o_timeout_link(t->ctx.loop, &t->proxy_timeout, &c->proxy_timer);
    h2o_socket_read_start(c->sock, on_proxy_read);
}

void sx_peer_conn_closed(sx_conn *c)
{
    if (h2o_timeout_is_linked(&c->proxy_timer))
        h2o_timeout_unlink(&c->proxy_timer);
}

socklen_t sx_peer_request_client(const sx_config *cfg, h2o_req_t *req, struct sockaddr_storage *ret)
{
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl == 0)
        return 0;
    if (!cfg->n_trusted_proxies || !sx_peer_trusted(cfg, (struct sockaddr *)&ss)) {
        memcpy(ret, &ss, sl);
        return sl;
    }
    /* The last 16 fields at most: the proxies' own entries are the rightmost. */
    sx_peer_field f[16];
    size_t nf = 0, total = 0;
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, i)) >= 0;) {
        f[total % 16] = (sx_peer_field){req->headers.entries[i].value.base, req->headers.entries[i].value.len};
        total++;
    }
    nf = total < 16 ? total : 16;
    if (total > 16) { /* rotate the ring into order */
        sx_peer_field tmp[16];
        for (size_t k = 0; k < 16; k++)
            tmp[k] = f[(total + k) % 16];
        memcpy(f, tmp, sizeof f);
    }
    return sx_peer_client(cfg, (struct sockaddr *)&ss, sl, f, nf, ret);
}
