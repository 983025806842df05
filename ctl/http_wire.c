/*
 * http_wire.c - the connection half of http_wire.h: opening TCP, TLS and Unix-socket connections
 * with a deadline, reading and writing through OpenSSL or the socket, and one request at a time
 * dispatched to HTTP/2 (http_wire_h2.c) or HTTP/1.1 (http_wire_h1.c), with one retry on a fresh
 * connection when a kept one turns out closed before any answer byte came.
 *
 * TLS: TLS 1.2 or 1.3, the chain verified against SECRETSD_CACERT's file or the system's CAs (the
 * hashed folder, looked up lazily, rather than reading the whole bundle at every start), the
 * server's name checked (X509_VERIFY_PARAM_set1_host, or the address for an IP literal) and sent
 * as SNI. A handshake that fails is never retried nor downgraded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/http_wire_internal.h"

void ctl_wire_fail(ctl_wire_resp *r, ctl_wire_err err, const char *fmt, ...)
{
    if (r->err != CTL_WIRE_OK)
        return; /* the first reason stands */
    r->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

int64_t ctl_wire_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline (-1: none), at least 0. */
static int left_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t l = deadline - ctl_wire_now_ms();
    return l < 0 ? 0 : (int)(l > 86400000 ? 86400000 : l);
}

/* Wait until fd is readable (in) or writable; 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, bool in, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = in ? POLLIN : POLLOUT};
    for (;;) {
        int n = poll(&p, 1, left_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -1 : n;
    }
}

bool ctl_wire_body_add(ctl_wire_resp *r, const void *p, size_t n, size_t max)
{
    if (n > max || r->body.len > max - n) {
        ctl_wire_fail(r, CTL_WIRE_TOO_BIG, "the answer's body is over %zu bytes", max);
        return false;
    }
    ctl_text_add(&r->body, p, n);
    if (r->body.failed) {
        ctl_wire_fail(r, CTL_WIRE_NOMEM, "out of memory");
        return false;
    }
    return true;
}

void ctl_wire_resp_free(ctl_wire_resp *r)
{
    ctl_text_free(&r->body);
}

/* ---- connecting ---------------------------------------------------------------------------------- */

static int connect_unix(ctl_wire *w, ctl_wire_resp *r)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(w->t.unix_path) >= sizeof(sa.sun_path)) {
        ctl_wire_fail(r, CTL_WIRE_CONNECT, "the socket path is too long");
        return -1;
    }
    strcpy(sa.sun_path, w->t.unix_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        ctl_wire_fail(r, CTL_WIRE_CONNECT, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Who serves the socket is checked before a byte is sent (see client.c). */
    if (w->t.check_peer_uid) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        bool known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred);
        if (!known || !(cred.uid == getuid() || cred.uid == geteuid() || cred.uid == 0)) {
            r->peer_uid = known ? (int)cred.uid : -1;
            ctl_wire_fail(r, CTL_WIRE_PEER, "the socket is served by another user");
            close(fd);
            return -1;
        }
    }
    w->fd = fd;
    return 0;
}

/* Connect to one address with the connect deadline; the socket is left blocking. */
static int connect_addr(const struct addrinfo *ai, int64_t deadline, int *ret_errno)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        *ret_errno = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *ret_errno = errno;
            close(fd);
            return -1;
        }
        int ready = wait_fd(fd, false, deadline);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (ready <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            *ret_errno = ready == 0 ? ETIMEDOUT : soerr ? soerr : errno;
            close(fd);
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static int connect_tcp(ctl_wire *w, int64_t deadline, ctl_wire_resp *r)
{
    /* An address literal needs no resolver: no NSS modules, no netlink query for AI_ADDRCONFIG. */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST}, *res = NULL;
    int rc = getaddrinfo(w->t.host, w->t.port, &hints, &res);
    if (rc == EAI_NONAME) {
        hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
        rc = getaddrinfo(w->t.host, w->t.port, &hints, &res);
    }
    if (rc != 0) {
        ctl_wire_fail(r, CTL_WIRE_RESOLVE, "cannot resolve \"%s\": %s", w->t.host, gai_strerror(rc));
        return -1;
    }
    int err = ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = connect_addr(ai, deadline, &err);
        if (fd >= 0) {
            freeaddrinfo(res);
            w->fd = fd;
            return 0;
        }
        if (err == ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    ctl_wire_fail(r, err == ETIMEDOUT ? CTL_WIRE_TIMEOUT : CTL_WIRE_CONNECT, "cannot connect to %s port %s: %s",
                  w->t.host, w->t.port, strerror(err));
    return -1;
}

/* The CAs to trust: SECRETSD_CACERT's file, else the system's (the hashed folder, read lazily,
 * unless SSL_CERT_FILE / SSL_CERT_DIR name others or there is no such folder). */
static int load_cas(SSL_CTX *ctx, const char *cacert)
{
    if (cacert)
        return SSL_CTX_load_verify_locations(ctx, cacert, NULL) == 1 ? 0 : -1;
    struct stat st;
    const char *dir = X509_get_default_cert_dir();
    if (!getenv(X509_get_default_cert_file_env()) && !getenv(X509_get_default_cert_dir_env()) && stat(dir, &st) == 0 &&
        S_ISDIR(st.st_mode))
        return SSL_CTX_load_verify_dir(ctx, dir) == 1 ? 0 : -1;
    return SSL_CTX_set_default_verify_paths(ctx) == 1 ? 0 : -1;
}

static int start_tls(ctl_wire *w, int64_t deadline, ctl_wire_resp *r)
{
    if (!w->ctx) {
        /* secretsctl sets its own TLS policy below; the system's openssl.cnf is not read (it
         * costs a file parse at every start and changes nothing of it on Debian). */
        OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx) {
            ctl_wire_fail(r, CTL_WIRE_NOMEM, "cannot set up TLS");
            return -1;
        }
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
        static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1", alpn_h1[] = "\x08http/1.1";
        if (w->t.http11)
            SSL_CTX_set_alpn_protos(ctx, alpn_h1, sizeof(alpn_h1) - 1);
        else
            SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2) - 1);
        if (load_cas(ctx, w->t.cacert) != 0) {
            unsigned long e = ERR_get_error();
            ctl_wire_fail(r, CTL_WIRE_TLS, "cannot load the CA certificates%s%s: %s", w->t.cacert ? " of " : "",
                          w->t.cacert ? w->t.cacert : "", e ? ERR_reason_error_string(e) : "unknown error");
            SSL_CTX_free(ctx);
            return -1;
        }
        w->ctx = ctx;
    }
    SSL *ssl = SSL_new(w->ctx);
    if (!ssl || SSL_set_fd(ssl, w->fd) != 1) {
        SSL_free(ssl);
        ctl_wire_fail(r, CTL_WIRE_NOMEM, "cannot set up TLS");
        return -1;
    }
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    unsigned char addr[16];
    bool literal = inet_pton(AF_INET, w->t.host, addr) == 1 || inet_pton(AF_INET6, w->t.host, addr) == 1;
    int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, w->t.host)
                     : X509_VERIFY_PARAM_set1_host(vp, w->t.host, 0) && SSL_set_tlsext_host_name(ssl, w->t.host);
    if (ok != 1) {
        SSL_free(ssl);
        ctl_wire_fail(r, CTL_WIRE_TLS, "cannot check the name \"%s\"", w->t.host);
        return -1;
    }
    ERR_clear_error();
    ctl_wire_set_timeout(w, deadline);
    int rc = SSL_connect(ssl);
    if (rc != 1) {
        int serr = SSL_get_error(ssl, rc), saved = errno;
        long vr = SSL_get_verify_result(ssl);
        unsigned long e = ERR_peek_error();
        if (vr != X509_V_OK)
            ctl_wire_fail(r, CTL_WIRE_TLS, "TLS: the server's certificate does not verify: %s",
                          X509_verify_cert_error_string(vr));
        else if (serr == SSL_ERROR_SYSCALL && e == 0)
            ctl_wire_fail(r, saved == EAGAIN || saved == EWOULDBLOCK ? CTL_WIRE_TIMEOUT : CTL_WIRE_DROPPED,
                          "TLS handshake: %s", saved ? strerror(saved) : "the connection was closed");
        else
            ctl_wire_fail(r, CTL_WIRE_TLS, "TLS handshake failed: %s",
                          e ? ERR_reason_error_string(e) : "unknown error");
        ERR_clear_error();
        SSL_free(ssl);
        return -1;
    }
    w->ssl = ssl;
    const unsigned char *proto = NULL;
    unsigned plen = 0;
    SSL_get0_alpn_selected(ssl, &proto, &plen);
    w->h2 = !w->t.http11 && plen == 2 && memcmp(proto, "h2", 2) == 0;
    return 0;
}

void ctl_wire_close(ctl_wire *w)
{
    ctl_wire_h2_end(w);
    if (w->ssl) {
        SSL_free(w->ssl);
        w->ssl = NULL;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->in_off = w->in_len = 0;
    w->reusable = false;
}

static int open_conn(ctl_wire *w, ctl_wire_resp *r)
{
    int64_t deadline = w->t.connect_timeout_ms > 0 ? ctl_wire_now_ms() + w->t.connect_timeout_ms : -1;
    if ((w->t.unix_path ? connect_unix(w, r) : connect_tcp(w, deadline, r)) != 0)
        return -1;
    w->h2 = !w->t.unix_path && !w->t.http11 && !w->t.tls;
    if (w->t.tls && start_tls(w, deadline, r) != 0) {
        ctl_wire_close(w);
        return -1;
    }
    if (w->h2 && ctl_wire_h2_start(w, r) != 0) {
        ctl_wire_close(w);
        return -1;
    }
    w->reusable = true;
    return 0;
}

/* ---- reading and writing ------------------------------------------------------------------------ */

void ctl_wire_set_timeout(ctl_wire *w, int64_t deadline)
{
    int ms = left_ms(deadline);
    if (ms == 0)
        ms = 1;
    struct timeval tv = {.tv_sec = ms < 0 ? 0 : ms / 1000, .tv_usec = ms < 0 ? 0 : (ms % 1000) * 1000};
    setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(w->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int ctl_wire_write(ctl_wire *w, const void *p, size_t n, ctl_wire_resp *r)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k;
        if (w->ssl) {
            size_t done = 0;
            k = SSL_write_ex(w->ssl, c, n, &done) == 1 ? (ssize_t)done : -1;
            if (k < 0 && SSL_get_error(w->ssl, 0) != SSL_ERROR_SYSCALL)
                errno = EPIPE;
            ERR_clear_error();
        } else {
            k = send(w->fd, c, n, MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR)
                continue;
        }
        if (k <= 0) {
            bool to = errno == EAGAIN || errno == EWOULDBLOCK;
            ctl_wire_fail(r, to ? CTL_WIRE_TIMEOUT : CTL_WIRE_DROPPED, "cannot send the request: %s",
                          to ? "timed out" : strerror(errno));
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

ssize_t ctl_wire_read(ctl_wire *w, void *p, size_t cap, ctl_wire_resp *r)
{
    for (;;) {
        ssize_t k;
        errno = 0;
        if (w->ssl) {
            size_t got = 0;
            int ok = SSL_read_ex(w->ssl, p, cap, &got);
            if (ok == 1)
                return (ssize_t)got;
            int serr = SSL_get_error(w->ssl, 0);
            ERR_clear_error();
            if (serr == SSL_ERROR_ZERO_RETURN || (serr == SSL_ERROR_SYSCALL && errno == 0))
                return 0;
            if (serr != SSL_ERROR_SYSCALL) {
                ctl_wire_fail(r, CTL_WIRE_DROPPED, "TLS error while reading the answer");
                return -1;
            }
            k = -1;
        } else {
            k = recv(w->fd, p, cap, 0);
            if (k >= 0)
                return k;
        }
        if (errno == EINTR)
            continue;
        bool to = errno == EAGAIN || errno == EWOULDBLOCK;
        ctl_wire_fail(r, to ? CTL_WIRE_TIMEOUT : CTL_WIRE_DROPPED, "cannot read the answer: %s",
                      to ? "timed out" : strerror(errno));
        return -1;
    }
}

/* ---- requests ------------------------------------------------------------------------------------- */

static char *dup_opt(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

ctl_wire *ctl_wire_new(const ctl_wire_target *t)
{
    ctl_wire *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    bool failed = false;
    w->t = *t;
    w->t.host = dup_opt(t->host, &failed);
    w->t.port = dup_opt(t->port, &failed);
    w->t.unix_path = dup_opt(t->unix_path, &failed);
    w->t.authority = dup_opt(t->authority, &failed);
    w->t.cacert = dup_opt(t->cacert, &failed);
    w->fd = -1;
    if (failed) {
        ctl_wire_free(w);
        return NULL;
    }
    return w;
}

void ctl_wire_free(ctl_wire *w)
{
    if (!w)
        return;
    ctl_wire_close(w);
    SSL_CTX_free(w->ctx);
    free((char *)w->t.host);
    free((char *)w->t.port);
    free((char *)w->t.unix_path);
    free((char *)w->t.authority);
    free((char *)w->t.cacert);
    free(w);
}

const char *ctl_wire_protocol(const ctl_wire *w)
{
    return w->proto;
}

int ctl_wire_request(ctl_wire *w, const char *method, const char *path, const ctl_wire_header *hdrs, size_t nhdrs,
                     const char *body, size_t body_len, size_t body_max, ctl_wire_resp *ret)
{
    memset(ret, 0, sizeof(*ret));
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = w->fd >= 0;
        if (!reused && open_conn(w, ret) != 0)
            break;
        int64_t deadline = w->t.request_timeout_ms > 0 ? ctl_wire_now_ms() + w->t.request_timeout_ms : -1;
        ctl_wire_set_timeout(w, deadline);
        bool got_any = false;
        int rc =
            w->h2
                ? ctl_wire_h2_request(w, method, path, hdrs, nhdrs, body, body_len, body_max, deadline, ret, &got_any)
                : ctl_wire_h1_request(w, method, path, hdrs, nhdrs, body, body_len, body_max, deadline, ret, &got_any);
        w->proto = w->h2 ? "h2" : "HTTP/1.1";
        if (rc == 0 && ret->err == CTL_WIRE_OK) {
            if (!w->reusable)
                ctl_wire_close(w);
            break;
        }
        ctl_wire_close(w);
        /* A kept connection the server closed meanwhile: once more on a new one, when nothing of
         * an answer came. */
        if (!(reused && !got_any && ret->err == CTL_WIRE_DROPPED))
            break;
        ctl_wire_resp_free(ret);
        memset(ret, 0, sizeof(*ret));
    }
    if (!ret->body.data) {
        ctl_text_add(&ret->body, "", 0);
        if (ret->body.failed)
            ctl_wire_fail(ret, CTL_WIRE_NOMEM, "out of memory");
    }
    if (ret->err != CTL_WIRE_OK) {
        ret->status = 0;
        ret->etag[0] = '\0';
        return -EIO;
    }
    return 0;
}
