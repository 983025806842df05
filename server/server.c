/*
 * server.c - listeners, event-loop threads, signals and the drain.
 *
 * Every listening socket is opened once, then each of the N loop threads watches its own dup() of
 * it, so all threads accept on all listeners (the kernel wakes one or a few; the others find
 * nothing and go back to sleep). The loop that accepts a connection hands it to the loop with the
 * fewest when its own has more by two or more, so that the connections of a client that opens
 * them all at once (a pool of HTTP/2 connections, h2load) are spread over the loops instead of
 * all landing on the one that woke first. Accepted connections are tracked per thread so that, on SIGTERM,
 * a drain can close the idle HTTP/1 keep-alive connections at once while busy ones finish: the
 * loops stop accepting, h2o sends HTTP/2 GOAWAY, and each loop exits when its last connection is
 * gone or [server] drain_timeout has passed.
 */
#include "server/server_internal.h"

#include <sodium.h>

#include "audit/audit.h"
#include "common/testpoint.h"
#include "server/metrics.h"
#include "ops/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <h2o/http2.h>
#include <h2o/serverutil.h>

#define POOL_MAX_THREADS   16
#define AUTH_CACHE_ENTRIES 4096 /* verified tokens cached per loop thread */

#define FD_RESERVE      1024 /* file descriptors besides client connections: storage, logs, pool */
#define ACCEPT_PAUSE_MS 100  /* accepting pauses this long when file descriptors run out */

typedef struct sx_listen_sock {
    sx_thread *thread;
    sx_listener *listener;
    int fd; /* this thread's dup of listener->fd */
} sx_listen_sock;

/* ---- listeners --------------------------------------------------------------------------------- */

static int open_tcp(sx_listener *l, const sx_config_listen *cl, sx_listener_kind kind, bool proxy, char *err,
                    size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", cl->port);
    int rc = getaddrinfo(cl->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve listen address \"%s\": %s", cl->host, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(res);
        snprintf(err, errlen, "socket: %s", strerror(e));
        return -e;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        freeaddrinfo(res);
        close(fd);
        snprintf(err, errlen, "cannot listen on %s:%u: %s", cl->host, cl->port, strerror(e));
        return -e;
    }
    freeaddrinfo(res);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned bound_port = 0;
    const char *scheme = kind == SX_LISTEN_TLS       ? "https"
                         : kind == SX_LISTEN_METRICS ? "metrics+http"
                         : proxy                     ? "proxy+http"
                                                     : "http";
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
        bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(l->name, sizeof(l->name), "%s://%s:%u", scheme, host, bound_port);
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
        bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(l->name, sizeof(l->name), "%s://[%s]:%u", scheme, host, bound_port);
    }
    l->fd = fd;
    l->kind = kind;
    l->proxy = proxy;
    return 0;
}

static int open_admin(sx_listener *l, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "admin socket path \"%s\" is too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);

    /* The socket's file mode is the only gate on the admin API, so whoever can write its folder
     * can replace the socket with one of their own and collect what operators send (a passphrase)
     * or answer in the server's name. The folder must belong to this user (or root) and be
     * writable by nobody else, unless it is sticky (like /tmp), where others cannot remove or
     * rename our file; a name they took first is caught below by its owner. */
    char dir[sizeof(sa.sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    uid_t me = geteuid();
    struct stat st;
    if (stat(dir, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "admin socket folder \"%s\": %s", dir, strerror(e));
        return -e;
    }
    if (st.st_uid != me && st.st_uid != 0) {
        snprintf(err, errlen,
                 "admin socket folder \"%s\" is owned by uid %u, not by this server's user (uid %u) or root: its "
                 "owner could replace the socket; use a folder of this user with mode 0700",
                 dir, (unsigned)st.st_uid, (unsigned)me);
        return -EPERM;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        snprintf(err, errlen,
                 "admin socket folder \"%s\" has mode %04o: other users may write it and replace the socket; make "
                 "it 0700 (or sticky, like /tmp)",
                 dir, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }

    /* A socket file left by a server of this user that died is removed; one that answers belongs
     * to a live server, and starting a second one on it would steal its operator interface. One
     * that another user owns is not ours to remove, and may be a trap. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "admin socket path \"%s\" exists and is not a socket", path);
            return -EEXIST;
        }
        if (st.st_uid != me) {
            snprintf(err, errlen,
                     "admin socket \"%s\" exists and is owned by uid %u, not by this server's user (uid %u); "
                     "remove it only if you know it is stale",
                     path, (unsigned)st.st_uid, (unsigned)me);
            return -EPERM;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            close(probe);
            snprintf(err, errlen, "admin socket \"%s\" is in use by a running server", path);
            return -EADDRINUSE;
        }
        if (probe >= 0)
            close(probe);
        unlink(path);
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "socket: %s", strerror(e));
        return -e;
    }
    /* Created 0600 from the start (umask), not chmod'ed after bind: there is no window in which
     * another user could connect. The file mode is the only gate on the admin API. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0 || listen(fd, 64) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "cannot listen on admin socket \"%s\": %s", path, strerror(e));
        return -e;
    }
    l->fd = fd;
    l->kind = SX_LISTEN_ADMIN;
    snprintf(l->name, sizeof(l->name), "unix:%.120s", path);
    return 0;
}

static int setup_tls(sx_server *s, char *err, size_t errlen)
{
    const sx_config *cfg = s->config;
    s->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!s->ssl_ctx) {
        snprintf(err, errlen, "cannot create the TLS context");
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(s->ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, cfg->tls_cert) != 1) {
        snprintf(err, errlen, "cannot load TLS certificate \"%s\": %s", cfg->tls_cert,
                 ERR_reason_error_string(ERR_get_error()));
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(s->ssl_ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(s->ssl_ctx) != 1) {
        snprintf(err, errlen, "cannot load TLS key \"%s\" (or it does not match the certificate)", cfg->tls_key);
        return -EINVAL;
    }
    h2o_ssl_register_alpn_protocols(s->ssl_ctx, h2o_http2_alpn_protocols);
    return 0;
}

/* Every client connection is a file descriptor: raise the soft RLIMIT_NOFILE to what
 * max_connections needs (up to the hard limit), and say so once when even that is too low. A
 * server that runs out anyway pauses accepting (on_accept) instead of spinning on the listener. */
static void raise_fd_limit(const sx_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)cfg->max_connections + FD_RESERVE;
    if (rl.rlim_cur < want) {
        struct rlimit nl = rl;
        nl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
        if (nl.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl = nl;
    }
    if (rl.rlim_cur < want)
        sx_log(SX_LOG_WARN,
               "max_connections = %zu needs about %llu file descriptors, but the limit is %llu (raise it with "
               "ulimit -n or LimitNOFILE=, or lower max_connections)",
               cfg->max_connections, (unsigned long long)want, (unsigned long long)rl.rlim_cur);
}

/* The audit log's stored chain head failed its record MAC: counted (and the first one logged). */
static void on_audit_head_forged(void *ctx)
{
    (void)ctx;
    sx_metrics_forged_record(SX_METRICS_FORGED_AUDIT_HEAD);
}

int sx_server_new(sx_server **ret, const sx_server_deps *deps, char *err, size_t errlen)
{
    const sx_config *cfg = deps->config;
    sx_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->config = cfg;
    s->storage = deps->storage;
    s->crypto = deps->crypto;
    s->auth = deps->auth;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    atomic_init(&s->stop_requested, false);
    pthread_mutex_init(&s->life_mu, NULL);
    pthread_cond_init(&s->life_cv, NULL);
    int rc;

    /* Before anything reads a token, rotation or audit-head record: an older store's records get
     * their MACs (once), and the auth handle checks them from the first request on. */
    size_t upgraded = 0;
    if ((rc = sx_records_upgrade(s->storage, s->crypto, &upgraded, err, errlen)) != 0) {
        free(s);
        return rc;
    }
    if (upgraded)
        sx_log(SX_LOG_INFO, "storage: %zu token, rotation and audit-head records were given their MACs", upgraded);
    if ((rc = sx_auth_record_key_set(s->auth, sx_crypto_system_key(s->crypto, SX_CRYPTO_KEY_RECORD),
                                     SX_AUTH_KEY_BYTES)) != 0) {
        snprintf(err, errlen, "cannot set up token record authentication");
        free(s);
        return rc;
    }

    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("secretsd"));
    /* h2o's own default is 1 GiB. A body over max_body_bytes is answered 413 on a connection that
     * stays usable: HTTP/1.1 by the guard from its Content-Length (guard.c) or by our handler,
     * HTTP/2 by the handler as soon as the stream announces or buffers more (h2_streams.c). h2o's
     * own refusal past twice the limit and one more DATA frame (the guard feeds h2o at most
     * max_body_bytes at a time, but a frame is parsed whole) is a backstop no stream reaches. */
    s->globalconf.max_request_entity_size =
        cfg->max_body_bytes > (SIZE_MAX - 16384) / 2 ? cfg->max_body_bytes : cfg->max_body_bytes * 2 + 16384;
    /* Slow clients: an HTTP/1.1 request (head and body) must arrive within request_timeout, which
     * h2o does not extend byte by byte, so a client trickling a header ("slowloris") is closed when
     * it runs out; the same bounds a TLS handshake and an idle keep-alive connection. An HTTP/2
     * connection with no request in flight is closed after http2_idle_timeout without a frame. */
    s->globalconf.http1.req_timeout = (uint64_t)cfg->request_timeout * 1000;
    s->globalconf.handshake_timeout = (uint64_t)cfg->request_timeout * 1000;
    s->globalconf.http2.idle_timeout = (uint64_t)cfg->http2_idle_timeout * 1000;
    /* Requests of one HTTP/2 connection handled at once; the rest wait in h2o's queue (it still
     * advertises and enforces 100 open streams). */
    s->globalconf.http2.max_concurrent_requests_per_connection = cfg->http2_max_concurrent_requests;
    raise_fd_limit(cfg);
    s->hostconf = h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(s->hostconf, "/", 0);
    sx_http_register(s, pc);
    sx_http_register(s, &s->hostconf->fallback_path);

    size_t n = cfg->n_listen + cfg->n_tls_listen + cfg->n_metrics_listen + cfg->n_proxy_listen +
               (cfg->admin_socket && *cfg->admin_socket ? 1 : 0);
    s->listeners = calloc(n ? n : 1, sizeof(*s->listeners));
    if (!s->listeners) {
        rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        s->listeners[i].fd = -1;
    if (cfg->n_tls_listen && (rc = setup_tls(s, err, errlen)) != 0)
        goto fail;
    for (size_t i = 0; i < cfg->n_listen; i++, s->nlisteners++)
        if ((rc = open_tcp(&s->listeners[s->nlisteners], &cfg->listen[i], SX_LISTEN_CLEAR, false, err, errlen)) != 0)
            goto fail;
    for (size_t i = 0; i < cfg->n_proxy_listen; i++, s->nlisteners++)
        if ((rc = open_tcp(&s->listeners[s->nlisteners], &cfg->proxy_listen[i], SX_LISTEN_CLEAR, true, err, errlen)) !=
            0)
            goto fail;
    for (size_t i = 0; i < cfg->n_tls_listen; i++, s->nlisteners++)
        if ((rc = open_tcp(&s->listeners[s->nlisteners], &cfg->tls_listen[i], SX_LISTEN_TLS, false, err, errlen)) != 0)
            goto fail;
    for (size_t i = 0; i < cfg->n_metrics_listen; i++, s->nlisteners++)
        if ((rc = open_tcp(&s->listeners[s->nlisteners], &cfg->metrics_listen[i], SX_LISTEN_METRICS, false, err,
                           errlen)) != 0)
            goto fail;
    if (cfg->admin_socket && *cfg->admin_socket) {
        if ((rc = open_admin(&s->listeners[s->nlisteners], cfg->admin_socket, err, errlen)) != 0)
            goto fail;
        s->nlisteners++;
    }
    if ((rc = sx_auth_throttle_new(NULL, &s->throttle)) != 0) {
        snprintf(err, errlen, "cannot create the authentication throttle");
        goto fail;
    }
    if ((rc = sx_pool_new(&s->pool, POOL_MAX_THREADS)) != 0) {
        snprintf(err, errlen, "cannot create the worker pool");
        goto fail;
    }
    if ((rc = sx_ops_init(s, err, errlen)) != 0)
        goto fail;
    if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = -errno;
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    s->nthreads = cfg->threads ? cfg->threads : 1;
    {
        uint8_t rnd[4];
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2hex(s->reqid_prefix, sizeof(s->reqid_prefix), rnd, sizeof(rnd));
    }
    if (cfg->audit_log && *cfg->audit_log) {
        sx_audit_options aopt = {.path = cfg->audit_log,
                                 .node_id = cfg->node_id,
                                 .fail_closed = cfg->audit_policy == SX_AUDIT_FAIL_CLOSED,
                                 .on_forged = on_audit_head_forged,
                                 .post = sx_audit_wait_post,
                                 .post_ctx = s};
        rc = sx_audit_new(&s->audit, &aopt, s->storage, sx_crypto_system_key(s->crypto, SX_CRYPTO_KEY_AUDIT),
                          sx_crypto_system_key(s->crypto, SX_CRYPTO_KEY_RECORD), s->nthreads, err, errlen);
        if (rc != 0)
            goto fail;
        /* The unlock itself is an audit line: which slot (id and type) opened the keyring. */
        sx_crypto_seal_type type;
        uint32_t slot = sx_crypto_slot_current(s->crypto, &type);
        char name[48];
        snprintf(name, sizeof(name), "slot %u %s", (unsigned)slot, sx_crypto_seal_type_name(type));
        sx_audit_rec rec = {.client = "local", .action = "seal.unlock", .scope = "seal", .name = name, .status = 200};
        sx_audit_log(s->audit, SX_AUDIT_ANY_THREAD, &rec);
    }
    *ret = s;
    return 0;

fail:
    sx_server_free(s);
    return rc;
}

void sx_server_free(sx_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nlisteners; i++) {
        if (s->listeners[i].fd >= 0)
            close(s->listeners[i].fd);
        if (s->listeners[i].kind == SX_LISTEN_ADMIN && s->config->admin_socket)
            unlink(s->config->admin_socket);
    }
    free(s->listeners);
    sx_ops_free(s);
    sx_pool_free(s->pool);
    sx_audit_free(s->audit); /* after the loops and the pool: both queue lines */
    sx_auth_throttle_free(s->throttle);
    if (s->ssl_ctx)
        SSL_CTX_free(s->ssl_ctx);
    h2o_config_dispose(&s->globalconf);
    if (s->stop_pipe[0] >= 0)
        close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0)
        close(s->stop_pipe[1]);
    for (unsigned i = 0; s->threads && i < s->nthreads; i++)
        free(s->threads[i].metrics);
    free(s->threads);
    pthread_cond_destroy(&s->life_cv);
    pthread_mutex_destroy(&s->life_mu);
    free(s);
}

/* ---- connections ------------------------------------------------------------------------------- */

void sx_conn_on_close(void *data)
{
    sx_conn *c = data;
    h2o_linklist_unlink(&c->link);
    c->thread->nconns--;
    atomic_fetch_sub_explicit(&c->thread->load, 1, memory_order_relaxed);
    c->sock = NULL;
    sx_peer_conn_closed(c);
    if (!sx_guard_detach(c))
        free(c);
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void accept_resume(h2o_timeout_entry_t *entry)
{
    sx_thread *t = H2O_STRUCT_FROM_MEMBER(sx_thread, accept_resume, entry);
    for (size_t i = 0; !t->stopping && i < t->server->nlisteners; i++)
        if (t->listen_socks[i])
            h2o_socket_read_start(t->listen_socks[i], on_accept);
}

/* Out of file descriptors (or socket memory): the pending connection stays in the backlog and the
 * listener stays readable, so stop watching the listeners for a moment instead of spinning. */
static void accept_pause(sx_thread *t, int e)
{
    if (h2o_timeout_is_linked(&t->accept_resume))
        return;
    for (size_t i = 0; i < t->server->nlisteners; i++)
        if (t->listen_socks[i])
            h2o_socket_read_stop(t->listen_socks[i]);
    h2o_timeout_link(t->ctx.loop, &t->accept_timeout, &t->accept_resume);
    uint64_t now = h2o_now(t->ctx.loop);
    if (!t->fd_warned_at || now - t->fd_warned_at >= 10000) {
        t->fd_warned_at = now;
        sx_log(SX_LOG_WARN, "cannot accept connections (%s): pausing for %d ms (%zu open on this thread)", strerror(e),
               ACCEPT_PAUSE_MS, t->nconns);
    }
}

/* A connection accepted by some loop, handed to the loop that serves it. */
typedef struct handoff_msg {
    h2o_multithread_message_t super;
    int fd;
    sx_listener *listener;
} handoff_msg;

/* Serve the accepted connection fd on loop t (t's own thread), which counted it in its load. */
static void adopt(sx_thread *t, int fd, sx_listener *l)
{
    sx_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        atomic_fetch_sub_explicit(&t->load, 1, memory_order_relaxed);
        return;
    }
    h2o_socket_t *sock = h2o_evloop_socket_create(t->ctx.loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
    c->thread = t;
    c->sock = sock;
    c->fd = fd;
    c->kind = l->kind;
    h2o_linklist_insert(&t->conns, &c->link);
    t->nconns++;
    sock->on_close.cb = sx_conn_on_close;
    sock->on_close.data = c;
    if (l->proxy) {
        sx_peer_accept(c, &t->accept_ctx[l->kind]);
        return;
    }
    h2o_accept(&t->accept_ctx[l->kind], sock);
    sx_guard_attach(c); /* nothing was read yet, so h2o cannot have closed it */
}

static void on_handoff(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sx_thread *t = H2O_STRUCT_FROM_MEMBER(sx_thread, conn_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        handoff_msg *m = H2O_STRUCT_FROM_MEMBER(handoff_msg, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        if (t->stopping) { /* handed over as this loop began its drain */
            close(m->fd);
            atomic_fetch_sub_explicit(&t->load, 1, memory_order_relaxed);
        } else {
            adopt(t, m->fd, m->listener);
        }
        free(m);
    }
}

/* The loop that is to serve a connection accepted by t: t itself unless another loop that is not
 * draining has fewer by two or more (so a balanced server hands nothing over). Counts it in the
 * chosen loop's load; NULL when that loop is full. */
static sx_thread *pick_loop(sx_thread *t, size_t per_thread_max)
{
    sx_server *s = t->server;
    sx_thread *best = t;
    unsigned own = atomic_load_explicit(&t->load, memory_order_relaxed), best_load = own;
    for (unsigned i = 0; i < s->nthreads; i++) {
        sx_thread *o = &s->threads[i];
        /* A loop still setting up (the listeners are open before every loop runs) or draining
         * takes none. */
        if (o == t || !atomic_load_explicit(&o->ready, memory_order_acquire) ||
            atomic_load_explicit(&o->draining, memory_order_relaxed))
            continue;
        unsigned l = atomic_load_explicit(&o->load, memory_order_relaxed);
        if (l + 2 <= own && l < best_load) {
            best = o;
            best_load = l;
        }
    }
    if (best_load >= per_thread_max)
        return NULL;
    atomic_fetch_add_explicit(&best->load, 1, memory_order_relaxed);
    return best;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    sx_listen_sock *ls = listener->data;
    sx_thread *t = ls->thread;
    if (err != NULL || t->stopping)
        return;
    size_t per_thread_max = t->server->config->max_connections / t->server->nthreads + 1;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(t, errno);
            return; /* EAGAIN: another thread took it, or nothing left */
        }
        sx_thread *to = pick_loop(t, per_thread_max);
        if (!to) {
            close(fd);
            continue;
        }
        if (ls->listener->kind != SX_LISTEN_ADMIN) {
            int on = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        }
        if (to == t) {
            adopt(t, fd, ls->listener);
            continue;
        }
        handoff_msg *m = calloc(1, sizeof(*m));
        if (!m) {
            atomic_fetch_sub_explicit(&to->load, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&t->load, 1, memory_order_relaxed);
            adopt(t, fd, ls->listener);
            continue;
        }
        m->fd = fd;
        m->listener = ls->listener;
        h2o_multithread_send_message(&to->conn_receiver, &m->super);
    }
}

/* ---- loop threads ------------------------------------------------------------------------------ */

typedef struct stop_msg {
    h2o_multithread_message_t super;
} stop_msg;

static void begin_drain(sx_thread *t)
{
    if (t->stopping)
        return;
    t->stopping = true;
    atomic_store(&t->draining, true);
    for (size_t i = 0; i < t->server->nlisteners; i++) {
        if (t->listen_socks[i]) {
            h2o_socket_read_stop(t->listen_socks[i]);
            h2o_socket_close(t->listen_socks[i]);
            t->listen_socks[i] = NULL;
        }
    }
    /* HTTP/2 connections get GOAWAY and close when their streams are done. */
    h2o_context_request_shutdown(&t->ctx);
    t->stop_deadline = h2o_now(t->ctx.loop) + (uint64_t)t->server->config->drain_timeout * 1000;
}

static void on_ctl(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    sx_thread *t = H2O_STRUCT_FROM_MEMBER(sx_thread, ctl_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        stop_msg *m = H2O_STRUCT_FROM_MEMBER(stop_msg, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        free(m);
        begin_drain(t);
    }
}

/* One step of the drain: close idle HTTP/1 connections, and finish when nothing is left. */
static void drain_step(sx_thread *t)
{
    for (h2o_linklist_t *l = t->conns.next; l != &t->conns; l = l->next) {
        sx_conn *c = H2O_STRUCT_FROM_MEMBER(sx_conn, link, l);
        /* An HTTP/1 connection with no request in a handler and no partial request buffered is
         * idle: shutting down its read side makes h2o see EOF and close it cleanly. */
        if (!c->http2 && c->inflight == 0 && (c->sock->input == NULL || c->sock->input->size == 0))
            shutdown(c->fd, SHUT_RD);
    }
    if (t->nconns == 0 || h2o_now(t->ctx.loop) >= t->stop_deadline)
        t->stopped = true;
}

static int thread_init(sx_server *s, sx_thread *t, unsigned index);
static void thread_dispose(sx_thread *t);

/* The main thread and the loops meet at three points (under s->life_mu): every loop is set up
 * (ready), every loop has drained (drained), the worker pool is gone (pool_freed). */
static void life_bump(sx_server *s, unsigned *counter)
{
    pthread_mutex_lock(&s->life_mu);
    (*counter)++;
    pthread_cond_broadcast(&s->life_cv);
    pthread_mutex_unlock(&s->life_mu);
}

static void life_wait(sx_server *s, const unsigned *counter, unsigned n)
{
    pthread_mutex_lock(&s->life_mu);
    while (*counter < n)
        pthread_cond_wait(&s->life_cv, &s->life_mu);
    pthread_mutex_unlock(&s->life_mu);
}

/* A loop thread sets up and tears down its own loop: an h2o socket (the message queue's among
 * them) takes its buffer allocator from thread-local storage when it is created, so sockets made
 * on the main thread would have every loop reading into one unsynchronised allocator, which
 * corrupts the heap under load (h2o PR #168). */
static void *thread_main(void *arg)
{
    sx_thread *t = arg;
    sx_server *s = t->server;
    t->init_rc = thread_init(s, t, t->index);
    life_bump(s, &s->life_ready);
    while (t->init_rc == 0 && !t->stopped) {
        h2o_evloop_run(t->ctx.loop, t->stopping ? 20 : INT32_MAX);
        if (!h2o_linklist_is_empty(&t->guard_watch))
            sx_guard_sweep(t);
        if (t->stopping)
            drain_step(t);
    }
    life_bump(s, &s->life_drained);
    /* Jobs still in the pool answer this loop: dispose of it only once the pool is joined. */
    life_wait(s, &s->life_pool_freed, 1);
    thread_dispose(t);
    return NULL;
}

static int thread_init(sx_server *s, sx_thread *t, unsigned index)
{
    t->server = s;
    t->index = index;
    h2o_linklist_init_anchor(&t->conns);
    h2o_context_init(&t->ctx, h2o_evloop_create(), &s->globalconf);
    sx_guard_thread_init(t);
    sx_audit_wait_thread_init(t);
    h2o_timeout_init(t->ctx.loop, &t->accept_timeout, ACCEPT_PAUSE_MS);
    h2o_timeout_init(t->ctx.loop, &t->proxy_timeout, (uint64_t)s->config->request_timeout * 1000);
    t->accept_resume.cb = accept_resume;
    for (int k = 0; k < 4; k++) {
        t->accept_ctx[k].ctx = &t->ctx;
        t->accept_ctx[k].hosts = s->globalconf.hosts;
        t->accept_ctx[k].ssl_ctx = k == SX_LISTEN_TLS ? s->ssl_ctx : NULL;
    }
    if (index == 1)
        sx_testpoint("loop.setup"); /* the tests hold a loop here while another already serves */
    t->queue = h2o_multithread_create_queue(t->ctx.loop);
    h2o_multithread_register_receiver(t->queue, &t->pool_receiver, sx_pool_on_reply);
    h2o_multithread_register_receiver(t->queue, &t->ctl_receiver, on_ctl);
    h2o_multithread_register_receiver(t->queue, &t->audit_receiver, sx_audit_wait_on_answer);
    h2o_multithread_register_receiver(t->queue, &t->conn_receiver, on_handoff);
    atomic_store_explicit(&t->ready, true, memory_order_release);
    t->listen_socks = calloc(s->nlisteners, sizeof(*t->listen_socks));
    if (!t->listen_socks)
        return -ENOMEM;
    if (!(t->metrics = sx_metrics_thread_new()))
        return -ENOMEM;
    int rc = sx_auth_cache_new(AUTH_CACHE_ENTRIES, &t->auth_cache);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < s->nlisteners; i++) {
        int fd = fcntl(s->listeners[i].fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        h2o_socket_t *sock = h2o_evloop_socket_create(t->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        sx_listen_sock *ls = calloc(1, sizeof(*ls));
        if (!ls)
            return -ENOMEM;
        ls->thread = t;
        ls->listener = &s->listeners[i];
        ls->fd = fd;
        sock->data = ls;
        sock->on_close.cb = free;
        sock->on_close.data = ls;
        h2o_socket_read_start(sock, on_accept);
        t->listen_socks[i] = sock;
    }
    return 0;
}

static void thread_dispose(sx_thread *t)
{
    /* Deliver the last pool replies and audit answers (their release() frees the jobs and waits). */
    h2o_evloop_run(t->ctx.loop, 0);
    sx_guard_thread_dispose(t);
    sx_audit_wait_thread_dispose(t);
    if (h2o_timeout_is_linked(&t->accept_resume))
        h2o_timeout_unlink(&t->accept_resume);
    h2o_timeout_dispose(t->ctx.loop, &t->accept_timeout);
    for (h2o_linklist_t *l = t->conns.next; l != &t->conns; l = l->next) /* left by a timed-out drain */
        sx_peer_conn_closed(H2O_STRUCT_FROM_MEMBER(sx_conn, link, l));
    h2o_timeout_dispose(t->ctx.loop, &t->proxy_timeout);
    for (size_t i = 0; t->listen_socks && i < t->server->nlisteners; i++)
        if (t->listen_socks[i])
            h2o_socket_close(t->listen_socks[i]);
    free(t->listen_socks);
    sx_auth_cache_free(t->auth_cache);
    t->auth_cache = NULL;
    h2o_multithread_unregister_receiver(t->queue, &t->pool_receiver);
    h2o_multithread_unregister_receiver(t->queue, &t->ctl_receiver);
    h2o_multithread_unregister_receiver(t->queue, &t->audit_receiver);
    h2o_multithread_unregister_receiver(t->queue, &t->conn_receiver);
    h2o_multithread_destroy_queue(t->queue);
    /* The queue's notification socket is freed by the loop's next turn. */
    h2o_evloop_run(t->ctx.loop, 0);
    if (t->nconns == 0) {
        h2o_loop_t *loop = t->ctx.loop;
        /* The HTTP/2 graceful-shutdown timer (GOAWAY resend) may still be armed. */
        if (h2o_timeout_is_linked(&t->ctx.http2._graceful_shutdown_timeout))
            h2o_timeout_unlink(&t->ctx.http2._graceful_shutdown_timeout);
        h2o_context_dispose(&t->ctx);
        h2o_evloop_destroy(loop);
    }
    /* Otherwise the drain timed out with connections still open: the process is exiting, and
     * tearing the loop down under live connections would only risk touching freed memory. */
}

void sx_server_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void sx_server_stop(sx_server *s)
{
    atomic_store(&s->stop_requested, true);
    char c = 1;
    ssize_t w = write(s->stop_pipe[1], &c, 1);
    (void)w;
}

/* Wait for SIGTERM/SIGINT (blocked in every thread, taken with signalfd-free sigtimedwait) or a
 * call to sx_server_stop(). SIGHUP reopens the access and audit logs (after rotation); the audit
 * writer does its reopen on its own thread and continues the MAC chain in the new file. */
static void wait_for_stop(sx_server *s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    while (!atomic_load(&s->stop_requested)) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            sx_log(SX_LOG_INFO, "received %s, draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig == SIGHUP) {
            sx_log(SX_LOG_INFO, "received SIGHUP, reopening the logs");
            sx_access_log_reopen();
            sx_audit_reopen(s->audit);
        }
        char buf[8];
        while (read(s->stop_pipe[0], buf, sizeof(buf)) > 0)
            ;
    }
}

int sx_server_run(sx_server *s)
{
    s->threads = calloc(s->nthreads, sizeof(*s->threads));
    if (!s->threads)
        return -ENOMEM;
    for (unsigned i = 0; i < s->nthreads; i++) {
        s->threads[i].server = s;
        s->threads[i].index = i;
        h2o_multithread_create_thread(&s->threads[i].tid, NULL, thread_main, &s->threads[i]);
    }
    life_wait(s, &s->life_ready, s->nthreads);
    int rc = 0;
    for (unsigned i = 0; i < s->nthreads; i++) {
        if (s->threads[i].init_rc != 0 && rc == 0) {
            rc = s->threads[i].init_rc;
            sx_log(SX_LOG_ERROR, "cannot start loop thread %u: %s", i, strerror(-rc));
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < s->nlisteners; i++)
            sx_log(SX_LOG_INFO, "listening on %s", s->listeners[i].name);
        sx_log(SX_LOG_INFO, "serving with %u threads", s->nthreads);
        sx_ops_start(s);
        char state[128];
        snprintf(state, sizeof state, "READY=1\nSTATUS=serving with %u threads on %zu listeners", s->nthreads,
                 s->nlisteners);
        if ((rc = sx_notify(state)) != 0)
            sx_log(SX_LOG_WARN, "cannot tell the service manager that secretsd is ready (NOTIFY_SOCKET): %s",
                   strerror(-rc));
        rc = 0;
        wait_for_stop(s);
        (void)sx_notify("STOPPING=1\nSTATUS=draining");
        sx_ops_stop(s); /* the rotation thread persists its cursor and ends while the loops drain */
        for (unsigned i = 0; i < s->nthreads; i++) {
            stop_msg *m = calloc(1, sizeof(*m));
            if (m)
                h2o_multithread_send_message(&s->threads[i].ctl_receiver, &m->super);
        }
    }
    life_wait(s, &s->life_drained, s->nthreads);
    size_t left = 0;
    for (unsigned i = 0; i < s->nthreads; i++)
        left += s->threads[i].nconns;
    /* Every job has replied once the pool is joined; then each loop delivers its replies and
     * disposes of itself. */
    sx_pool_free(s->pool);
    s->pool = NULL;
    sx_ops_stop_sweeper(s); /* after every job that could note a deletion to it */
    /* Every parked request's answer is posted to its loop, which delivers it as it disposes. */
    sx_audit_flush(s->audit);
    life_bump(s, &s->life_pool_freed);
    for (unsigned i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i].tid, NULL);
    if (rc != 0)
        return rc;
    if (left)
        sx_log(SX_LOG_WARN, "drain timed out with %zu connections open", left);
    else
        sx_log(SX_LOG_INFO, "drained");
    return 0;
}
