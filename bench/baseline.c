/*
 * baseline.c - the ceiling that bench/run measures secretsd against.
 *
 * A bare h2o server with secretsd's shape (N event-loop threads that all accept on every
 * listener, cleartext HTTP/1.1 + h2c with prior knowledge, TLS with ALPN h2 / http/1.1, the same
 * server name, TCP_NODELAY, the same request body limit) whose handler does nothing but look the
 * method and path up in a small table and send a response held in memory: no authentication, no
 * storage, no crypto, no JSON, no per-request allocation beyond what h2o itself does. Whatever
 * secretsd achieves below this server's rate is the cost of its own work.
 *
 *   baseline [--threads N] [--listen HOST:PORT]... [--tls-listen HOST:PORT --cert PEM --key PEM]
 *            --route METHOD PATTERN FILE [--route ...]
 *
 * FILE is a captured response: a status line and header lines as `curl -D` writes them, a blank
 * line, then the body, exactly the bytes secretsd answered (bench/run captures them after seeding).
 * Headers that h2o writes itself (date, server, content-length, connection, transfer-encoding)
 * are dropped from the file and left to h2o, as they are in secretsd. An x-request-id header gets a
 * fresh value of the same length in each response (secretsd makes one per request, and a value
 * that never changes would cost less to compress in HTTP/2 than secretsd's do). PATTERN is a path in which
 * '*' stands for one or more bytes other than '/'; the query string is ignored. Unknown routes get
 * a JSON 404. Port 0 picks a free port; each bound address is printed to stderr as
 * "listening on http://HOST:PORT" (or https://). SIGTERM or SIGINT ends the process.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_LISTENERS 16
#define MAX_ROUTES    64
#define MAX_HEADERS   32

typedef struct header {
    const h2o_token_t *token; /* NULL: use name */
    h2o_iovec_t name;
    h2o_iovec_t value;
    int fresh_id; /* x-request-id: a new value of the same length for each response, as secretsd's */
} header;

typedef struct route {
    h2o_iovec_t method;
    const char *pattern;
    int status;
    const char *reason;
    header headers[MAX_HEADERS];
    size_t nheaders;
    h2o_iovec_t body;
} route;

typedef struct listener {
    int fd;
    int tls;
} listener;

typedef struct thread {
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx[2]; /* [0] cleartext, [1] TLS */
    pthread_t tid;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t conn_receiver; /* connections handed over by another loop */
    atomic_uint load;                         /* open connections plus those handed over */
} thread;

/* A connection accepted by one loop for another (as secretsd spreads them). */
typedef struct handoff_msg {
    h2o_multithread_message_t super;
    int fd;
    int tls;
} handoff_msg;

typedef struct listen_sock {
    thread *t;
    listener *l;
    int fd;
} listen_sock;

static h2o_globalconf_t globalconf;
static SSL_CTX *ssl_ctx;
static listener listeners[MAX_LISTENERS];
static size_t nlisteners;
static route routes[MAX_ROUTES];
static size_t nroutes;
static unsigned nthreads; /* loop threads */
static thread *threads;
static pthread_barrier_t started; /* every loop's queue exists before any loop accepts */

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "baseline: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

/* ---- captured responses -------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open \"%s\"", path);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf)
        die("out of memory reading \"%s\"", path);
    *ret_len = len;
    return buf;
}

static int is_h2o_own_header(const char *name, size_t len)
{
    static const char *const own[] = {"date",      "server", "content-length", "connection", "transfer-encoding",
                                      "keep-alive"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strlen(own[i]) == len && strncasecmp(own[i], name, len) == 0)
            return 1;
    return 0;
}

static void load_route(route *r, const char *method, const char *pattern, const char *path)
{
    size_t len;
    char *buf = read_file(path, &len);
    char *end = buf + len, *p = buf;
    r->method = h2o_iovec_init(method, strlen(method));
    r->pattern = pattern;
    /* Status line: "HTTP/1.1 200 OK" or "HTTP/2 200 ". */
    char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol || strncmp(p, "HTTP/", 5) != 0)
        die("\"%s\" does not start with an HTTP status line", path);
    char *sp = memchr(p, ' ', (size_t)(eol - p));
    if (!sp)
        die("\"%s\" has a malformed status line", path);
    r->status = atoi(sp + 1);
    char *reason = memchr(sp + 1, ' ', (size_t)(eol - sp - 1));
    char *rend = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    if (reason && rend > reason + 1) {
        *rend = '\0';
        r->reason = reason + 1;
    } else {
        r->reason = r->status < 300 ? "OK" : "Error";
    }
    p = eol + 1;
    /* Header lines up to the blank line. */
    for (;;) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            die("\"%s\" has no blank line after the headers", path);
        char *lend = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        if (lend == p) {
            p = eol + 1;
            break;
        }
        char *colon = memchr(p, ':', (size_t)(lend - p));
        if (!colon)
            die("\"%s\" has a header line without ':'", path);
        size_t nlen = (size_t)(colon - p);
        char *v = colon + 1;
        while (v < lend && (*v == ' ' || *v == '\t'))
            v++;
        if (!is_h2o_own_header(p, nlen)) {
            if (r->nheaders == MAX_HEADERS)
                die("\"%s\" has too many headers", path);
            for (size_t i = 0; i < nlen; i++)
                p[i] = (char)tolower((unsigned char)p[i]);
            header *h = &r->headers[r->nheaders++];
            h->token = h2o_lookup_token(p, nlen);
            h->name = h2o_iovec_init(p, nlen);
            h->value = h2o_iovec_init(v, (size_t)(lend - v));
            h->fresh_id = nlen == 12 && memcmp(p, "x-request-id", 12) == 0 && h->value.len >= 8;
        }
        p = eol + 1;
    }
    r->body = h2o_iovec_init(p, (size_t)(end - p));
}

/* '*' matches one or more bytes other than '/'; everything else matches itself. */
static int path_matches(const char *pat, const char *path, size_t len)
{
    size_t i = 0;
    for (; *pat; pat++) {
        if (*pat == '*') {
            size_t start = i;
            while (i < len && path[i] != '/')
                i++;
            if (i == start)
                return 0;
        } else {
            if (i >= len || path[i] != *pat)
                return 0;
            i++;
        }
    }
    return i == len;
}

/* ---- the handler --------------------------------------------------------------------------------- */

static _Thread_local unsigned long long id_next;

/* A request id as secretsd makes them: the captured value's first bytes, then a per-thread counter
 * in hex over the last 12 (fewer when the captured value is shorter), in request memory. */
static h2o_iovec_t fresh_id(h2o_mem_pool_t *pool, h2o_iovec_t captured)
{
    static const char hex[] = "0123456789abcdef";
    char *p = h2o_mem_alloc_pool(pool, captured.len);
    memcpy(p, captured.base, captured.len);
    unsigned long long n = id_next++;
    size_t digits = captured.len - 8 < 12 ? captured.len - 8 : 12;
    for (size_t k = 0; k < digits; k++, n >>= 4)
        p[captured.len - 1 - k] = hex[n & 15];
    return h2o_iovec_init(p, captured.len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    (void)self;
    const char *path = req->input.path.base;
    size_t plen = req->input.path.len;
    const char *q = memchr(path, '?', plen);
    if (q)
        plen = (size_t)(q - path);
    for (size_t i = 0; i < nroutes; i++) {
        const route *r = &routes[i];
        if (!h2o_memis(req->method.base, req->method.len, r->method.base, r->method.len) ||
            !path_matches(r->pattern, path, plen))
            continue;
        req->res.status = r->status;
        req->res.reason = r->reason;
        req->res.content_length = r->body.len;
        for (size_t k = 0; k < r->nheaders; k++) {
            const header *h = &r->headers[k];
            h2o_iovec_t v = h->fresh_id ? fresh_id(&req->pool, h->value) : h->value;
            if (h->token)
                h2o_add_header(&req->pool, &req->res.headers, h->token, NULL, v.base, v.len);
            else
                h2o_add_header_by_str(&req->pool, &req->res.headers, h->name.base, h->name.len, 0, NULL, v.base, v.len);
        }
        /* The body is sent from the route table itself, without a copy. */
        h2o_iovec_t body = r->body;
        h2o_start_response(req, &generator);
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
        return 0;
    }
    static const char nf[] = "{\"error\":\"no such route\",\"code\":\"not_found\"}";
    req->res.status = 404;
    req->res.reason = "Not Found";
    req->res.content_length = sizeof(nf) - 1;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_iovec_t body = h2o_iovec_init(nf, sizeof(nf) - 1);
    h2o_start_response(req, &generator);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

/* ---- listeners and threads ----------------------------------------------------------------------- */

static void open_listener(const char *spec, int tls)
{
    if (nlisteners == MAX_LISTENERS)
        die("too many listeners (at most 16): \"%s\"", spec);
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        die("listen address \"%s\" is not HOST:PORT", spec);
    const char *h = spec;
    size_t hl = (size_t)(colon - spec);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        die("cannot resolve \"%s\"", spec);
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0)
        die("cannot listen on \"%s\"", spec);
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        fprintf(stderr, "baseline: listening on %s://%s:%u\n", tls ? "https" : "http", addr, port);
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        fprintf(stderr, "baseline: listening on %s://[%s]:%u\n", tls ? "https" : "http", addr, port);
    }
    listeners[nlisteners].fd = fd;
    listeners[nlisteners].tls = tls;
    nlisteners++;
}

static void on_conn_close(void *data)
{
    atomic_fetch_sub_explicit(&((thread *)data)->load, 1, memory_order_relaxed);
}

static void adopt(thread *t, int fd, int tls)
{
    h2o_socket_t *s = h2o_evloop_socket_create(t->ctx.loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
    s->on_close.cb = on_conn_close;
    s->on_close.data = t;
    h2o_accept(&t->accept_ctx[tls], s);
}

static void on_handoff(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    thread *t = H2O_STRUCT_FROM_MEMBER(thread, conn_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        handoff_msg *m = H2O_STRUCT_FROM_MEMBER(handoff_msg, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        adopt(t, m->fd, m->tls);
        free(m);
    }
}

/* Each accepted connection goes to the loop with the fewest when the accepting loop has more by
 * two or more: secretsd's rule, so that both spread a burst of connections the same way. */
static void on_accept(h2o_socket_t *sock, const char *err)
{
    listen_sock *ls = sock->data;
    if (err != NULL)
        return;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        thread *t = ls->t, *to = t;
        unsigned own = atomic_load_explicit(&t->load, memory_order_relaxed), best = own;
        for (unsigned k = 0; k < nthreads; k++) {
            unsigned l = atomic_load_explicit(&threads[k].load, memory_order_relaxed);
            if (&threads[k] != t && l + 2 <= own && l < best) {
                to = &threads[k];
                best = l;
            }
        }
        handoff_msg *m = to == t ? NULL : calloc(1, sizeof(*m));
        if (!m) {
            atomic_fetch_add_explicit(&t->load, 1, memory_order_relaxed);
            adopt(t, fd, ls->l->tls);
            continue;
        }
        atomic_fetch_add_explicit(&to->load, 1, memory_order_relaxed);
        m->fd = fd;
        m->tls = ls->l->tls;
        h2o_multithread_send_message(&to->conn_receiver, &m->super);
    }
}

/* Runs on the loop's own thread: h2o sockets take their buffer allocator from a thread-local
 * prototype (h2o_socket_buffer_prototype) when they are created, so a loop's sockets must be created
 * by the thread that will use them, or several loops would share one unsynchronised free list. */
static void thread_init(thread *t)
{
    h2o_context_init(&t->ctx, h2o_evloop_create(), &globalconf);
    for (int k = 0; k < 2; k++) {
        t->accept_ctx[k].ctx = &t->ctx;
        t->accept_ctx[k].hosts = globalconf.hosts;
        t->accept_ctx[k].ssl_ctx = k ? ssl_ctx : NULL;
    }
    t->queue = h2o_multithread_create_queue(t->ctx.loop);
    h2o_multithread_register_receiver(t->queue, &t->conn_receiver, on_handoff);
    pthread_barrier_wait(&started);
    for (size_t i = 0; i < nlisteners; i++) {
        listen_sock *ls = calloc(1, sizeof(*ls));
        ls->t = t;
        ls->l = &listeners[i];
        ls->fd = fcntl(listeners[i].fd, F_DUPFD_CLOEXEC, 0);
        if (!ls || ls->fd < 0)
            die("%s", "cannot set up a listener for a thread");
        h2o_socket_t *sock = h2o_evloop_socket_create(t->ctx.loop, ls->fd, H2O_SOCKET_FLAG_DONT_READ);
        sock->data = ls;
        h2o_socket_read_start(sock, on_accept);
    }
}

static void *thread_main(void *arg)
{
    thread *t = arg;
    thread_init(t);
    for (;;)
        h2o_evloop_run(t->ctx.loop, INT32_MAX);
    return NULL;
}

static void setup_tls(const char *cert, const char *key)
{
    ssl_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cert) != 1)
        die("cannot load the certificate \"%s\"", cert);
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ssl_ctx) != 1)
        die("cannot load the key \"%s\"", key);
    h2o_ssl_register_alpn_protocols(ssl_ctx, h2o_http2_alpn_protocols);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: baseline [--threads N] [--listen HOST:PORT]... [--tls-listen HOST:PORT --cert PEM --key PEM]\n"
            "                --route METHOD PATTERN FILE [--route METHOD PATTERN FILE]...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    nthreads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    const char *cert = NULL, *key = NULL;
    const char *clear[MAX_LISTENERS], *tls[MAX_LISTENERS];
    size_t nclear = 0, ntls = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            nthreads = (unsigned)atoi(argv[++i]);
        } else if (strcmp(a, "--listen") == 0 && i + 1 < argc && nclear < MAX_LISTENERS) {
            clear[nclear++] = argv[++i];
        } else if (strcmp(a, "--tls-listen") == 0 && i + 1 < argc && ntls < MAX_LISTENERS) {
            tls[ntls++] = argv[++i];
        } else if (strcmp(a, "--cert") == 0 && i + 1 < argc) {
            cert = argv[++i];
        } else if (strcmp(a, "--key") == 0 && i + 1 < argc) {
            key = argv[++i];
        } else if (strcmp(a, "--route") == 0 && i + 3 < argc) {
            if (nroutes == MAX_ROUTES)
                die("%s", "too many routes (at most 64)");
            load_route(&routes[nroutes++], argv[i + 1], argv[i + 2], argv[i + 3]);
            i += 3;
        } else {
            usage();
        }
    }
    if (nthreads == 0 || nthreads > 256 || nroutes == 0 || (nclear == 0 && ntls == 0) || (ntls && (!cert || !key)))
        usage();

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&globalconf);
    /* As secretsd: same server header bytes and the same body limit (2 x max_body_bytes). */
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("secretsd"));
    globalconf.max_request_entity_size = 2 * 1024 * 1024;
    h2o_hostconf_t *host = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    h->on_req = on_req;

    if (ntls)
        setup_tls(cert, key);
    for (size_t i = 0; i < nclear; i++)
        open_listener(clear[i], 0);
    for (size_t i = 0; i < ntls; i++)
        open_listener(tls[i], 1);
    fflush(stderr);

    threads = calloc(nthreads, sizeof(*threads));
    if (!threads)
        die("%s", "out of memory");
    pthread_barrier_init(&started, NULL, nthreads);
    for (unsigned i = 0; i < nthreads; i++)
        h2o_multithread_create_thread(&threads[i].tid, NULL, thread_main, &threads[i]);
    fprintf(stderr, "baseline: serving %zu routes with %u threads\n", nroutes, nthreads);
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    /* Nothing to flush or close cleanly: the process holds only copies of captured responses. */
    _exit(0);
}
