/*
 * haproxy.h - a real haproxy in front of several secretsd nodes, for tests of a cluster behind a
 * load balancer.
 *
 * sx_haproxy_start() writes a configuration into a temporary folder and runs haproxy in the
 * foreground on an ephemeral loopback port: `mode tcp` (so HTTP/1.1 and h2c both pass), round robin
 * over the nodes' PROXY-protocol listeners with `send-proxy-v2`, each node health-checked every
 * 200 ms with `GET /readyz` (`option httpchk`, `check-send-proxy`: that listener expects the PROXY
 * header on every connection, checks included), out after 2 failed checks and back after 1
 * good one. A node whose /readyz says 503 (its database is unreachable or read-only) gets no new
 * connections until it is ready again. sx_haproxy_stop() ends it and removes the folder.
 *
 * haproxy comes from PATH (Debian: haproxy); without it sx_haproxy_start() returns SX_HAPROXY_SKIP.
 */
#ifndef SX_TEST_HAPROXY_H
#define SX_TEST_HAPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SX_HAPROXY_SKIP      77
#define SX_HAPROXY_MAX_NODES 8

typedef struct sx_haproxy_node {
    const char *addr; /* the node's proxy_listen address: "::1" or "127.0.0.1" */
    int port;
} sx_haproxy_node;

typedef struct sx_haproxy {
    pid_t pid;
    char *dir;   /* its configuration and log */
    int port;    /* the frontend, on 127.0.0.1 */
    char *stats; /* its admin socket (`show servers state`) */
} sx_haproxy;

/* Start haproxy in front of n nodes (at most SX_HAPROXY_MAX_NODES) and wait until its frontend
 * accepts connections and at least one node passed its health check. 0, SX_HAPROXY_SKIP (not
 * installed) or -1 after printing why. */
int sx_haproxy_start(sx_haproxy *h, const sx_haproxy_node *nodes, size_t n);

/* How many nodes haproxy considers up now (from its admin socket), or -1. */
int sx_haproxy_nodes_up(const sx_haproxy *h);

/* Stop haproxy (SIGTERM, then SIGKILL) and remove its folder. Idempotent. */
void sx_haproxy_stop(sx_haproxy *h);

#endif
