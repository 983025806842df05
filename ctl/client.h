/*
 * client.h - secretsctl's client of secretsd's admin socket: what every command needs to send one
 * request and report a failed one. Part of secretsctl only (ctl/), not of any library the server
 * links.
 *
 * The socket's file mode (0600, owned by the server's user) is the only gate on the admin API, so
 * secretsctl runs as that user, and it sends nothing to a server that runs as anyone else but root
 * (checked with SO_PEERCRED once connected, before the request is written).
 */
#ifndef SX_CTL_CLIENT_H
#define SX_CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* The global options of one secretsctl run. */
typedef struct ctl {
    char *socket_path;       /* malloc'd */
    const char *config_path; /* --config as given (argv), or NULL */
    bool json;
    bool quiet; /* ctl_request() does not report an unreachable server (polling) */
} ctl;

typedef struct buf {
    char *data; /* malloc'd, NUL-terminated */
    size_t len;
} buf;

/* Perform method path (with an optional JSON body) over the admin socket. On success (an HTTP
 * answer came back, any status) returns 0, *ret_status is the status and *ret_body the answer
 * (free ret_body->data with free()). Prints why to stderr and returns a negative errno otherwise. */
int ctl_request(const ctl *c, const char *method, const char *path, const char *body, long *ret_status, buf *ret_body);

/* Print the server's error answer ({"error": ..., "code": ...}) to stderr. */
void ctl_print_error(long status, const buf *b);

#endif /* SX_CTL_CLIENT_H */
