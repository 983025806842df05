/*
 * fuzz_http.c - libFuzzer target that drives the whole request stack: h2o's HTTP/1.1 and HTTP/2
 * (prior knowledge, "PRI * HTTP/2.0") parsers, secretsd's handler (routing, authentication,
 * authorization, strict bodies, the worker pool, crypto, storage) and its error filter and access
 * logger, the way h2o's own fuzz/driver.cc does.
 *
 * Set-up, once per process: the fixture (memory store, key hierarchy with a file seal, auth keyed
 * with the keyring's token-hash key, two planted tokens), a real sx_server made by sx_server_new()
 * on a configuration without listeners (so its globalconf carries the handler registered by
 * sx_http_register()), and one loop thread built as server.c's thread_init() does: an h2o context,
 * the accept context, a multithread queue whose receiver takes the worker pool's replies, and the
 * auth cache.
 *
 * Per input: a socketpair; one end is wrapped as an accepted cleartext connection (tracked like
 * server.c's on_accept does, so the handler finds its sx_conn) and handed to h2o_accept(), with
 * the hostile-client guard (guard.c) wrapped around its reads as on_accept does; the
 * input bytes are written into the other end while the loop runs. Responses are read and thrown
 * away. When everything is written and nothing is in flight, the client half-closes; the input is
 * over when h2o has closed the connection. A connection that does not close within a bounded time
 * after the client went away entirely is reported as a hang (abort).
 *
 * Oracle beyond sanitizers: no response may carry the "internal" error code (a 500 means a code
 * path the server did not expect). SX_FUZZ_VERBOSE=1 prints the responses (to check the seeds).
 *
 * The admin routes are not reachable here (the connection is a public listener's): the admin
 * socket is gated by its file mode, and its backup route writes to paths a fuzzer would choose.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz/fuzz_common.h"
#include "server/server_internal.h"

#define MAX_ROUNDS    400  /* loop turns while the client writes and reads */
#define CLOSE_ROUNDS  500  /* loop turns (10 ms each at most) for h2o to notice a closed client */
#define RESET_EVERY   4096 /* inputs between wipes of the secret records */
#define RESPONSE_KEEP (256 * 1024)

/* server.c's close callback of tracked connections; http.c finds the sx_conn through it. */
extern void sx_conn_on_close(void *data);

static sx_server *server;
static sx_thread thread;
static char *response;
static size_t response_len;
static unsigned long inputs;
static bool verbose; /* SX_FUZZ_VERBOSE=1: print what the server answered (to check seeds) */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_http: %s\n", what);
    abort();
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    fz_fixture *fx = fz_fixture_get();

    /* No listener at all: the fixture's config asks for none but gets the default one, and the
     * admin socket is off. Nothing else in the server reads n_listen after sx_server_new(). */
    size_t n_listen = fx->config->n_listen;
    fx->config->n_listen = 0;
    char err[256];
    if (sx_log_open(fx->config, err, sizeof(err)) != 0)
        die(err);
    sx_server_deps deps = {.config = fx->config, .storage = fx->storage, .crypto = fx->crypto, .auth = fx->auth};
    if (sx_server_new(&server, &deps, err, sizeof(err)) != 0)
        die(err);
    fx->config->n_listen = n_listen;

    sx_thread *t = &thread;
    t->server = server;
    t->index = 0;
    h2o_linklist_init_anchor(&t->conns);
    h2o_context_init(&t->ctx, h2o_evloop_create(), &server->globalconf);
    sx_guard_thread_init(t);
    t->accept_ctx[SX_LISTEN_CLEAR].ctx = &t->ctx;
    t->accept_ctx[SX_LISTEN_CLEAR].hosts = server->globalconf.hosts;
    t->queue = h2o_multithread_create_queue(t->ctx.loop);
    h2o_multithread_register_receiver(t->queue, &t->pool_receiver, sx_pool_on_reply);
    if (sx_auth_cache_new(256, &t->auth_cache) != 0)
        die("auth cache");
    server->threads = t;
    server->nthreads = 1;
    verbose = getenv("SX_FUZZ_VERBOSE") != NULL;
    response = malloc(RESPONSE_KEEP + 1);
    if (!response)
        die("out of memory");
}

/* Read whatever the server sent; returns bytes read, -1 at EOF. */
static ssize_t drain(int fd)
{
    ssize_t total = 0;
    for (;;) {
        char buf[16384];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            size_t keep = (size_t)n;
            if (response_len + keep > RESPONSE_KEEP)
                keep = RESPONSE_KEEP - response_len;
            memcpy(response + response_len, buf, keep);
            response_len += keep;
            total += n;
            continue;
        }
        if (n == 0)
            return total ? total : -1;
        return total; /* EAGAIN (or an error: the connection is going away) */
    }
}

static void check_responses(void)
{
    static const char internal[] = "\"code\":\"internal\"";
    response[response_len] = '\0';
    if (verbose) {
        fprintf(stderr, "---- %zu response bytes:\n", response_len);
        fwrite(response, 1, response_len, stderr);
        fprintf(stderr, "\n");
    }
    if (memmem(response, response_len, internal, sizeof(internal) - 1)) {
        fprintf(stderr, "fuzz_http: the server answered with an internal error:\n%.*s\n", (int)response_len, response);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server)
        setup();
    if (++inputs % RESET_EVERY == 0)
        fz_storage_reset_secrets();
    sx_thread *t = &thread;
    h2o_loop_t *loop = t->ctx.loop;
    response_len = 0;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    sx_conn *c = calloc(1, sizeof(*c));
    if (!c)
        die("out of memory");
    h2o_socket_t *sock = h2o_evloop_socket_create(loop, sv[0], H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
    c->thread = t;
    c->sock = sock;
    c->fd = sv[0];
    c->kind = SX_LISTEN_CLEAR;
    h2o_linklist_insert(&t->conns, &c->link);
    t->nconns++;
    sock->on_close.cb = sx_conn_on_close;
    sock->on_close.data = c;
    h2o_accept(&t->accept_ctx[SX_LISTEN_CLEAR], sock);
    sx_guard_attach(c); /* the hostile-client guard (guard.c) sees the input first, as in on_accept */

    int client = sv[1];
    size_t off = 0;
    bool shut = false, eof = false;
    int quiet = 0;
    for (int round = 0; round < MAX_ROUNDS && t->nconns > 0 && !eof; round++) {
        if (off < size) {
            ssize_t w = write(client, data + off, size - off);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                off = size; /* the server has closed its end */
        }
        h2o_evloop_run(loop, t->inflight ? 10 : 0);
        sx_guard_sweep(t);
        ssize_t got = drain(client);
        if (got < 0)
            eof = true;
        if (off == size && !shut && t->inflight == 0 && got == 0) {
            if (++quiet >= 2) {
                shutdown(client, SHUT_WR);
                shut = true;
            }
        } else {
            quiet = 0;
        }
    }
    /* Keep reading until h2o closes; if the rounds ran out, hang up on it entirely. */
    if (!eof && t->nconns > 0) {
        for (int round = 0; round < MAX_ROUNDS && t->nconns > 0; round++) {
            h2o_evloop_run(loop, 10);
            sx_guard_sweep(t);
            if (drain(client) < 0)
                break;
        }
    }
    close(client);
    for (int round = 0; round < CLOSE_ROUNDS && t->nconns > 0; round++) {
        h2o_evloop_run(loop, 10);
        sx_guard_sweep(t);
    }
    if (t->nconns > 0)
        die("the connection did not close after the client went away");
    check_responses();
    return 0;
}
