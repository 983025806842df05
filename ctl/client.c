/*
 * client.c - secretsctl's client of the admin socket (see client.h): one HTTP request over the
 * Unix socket in HTTP/1.1 (http_wire.h), after checking who serves the socket.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "ctl/client.h"
#include "ctl/http_wire.h"

#define MAX_RESPONSE (16u * 1024 * 1024)

/* Before a byte is sent, secretsctl checks who serves the admin socket: a socket file proves
 * nothing by its name, and a server of another user (one that took the path, or a folder others
 * can write) would collect a passphrase or hand back tokens of its own. The peer must run as this
 * user or as root (SO_PEERCRED, recorded by the kernel when the server called listen()); the
 * transport checks it once connected and before it writes the request (check_peer_uid). */
int ctl_request(const ctl *c, const char *method, const char *path, const char *body, long *ret_status, buf *ret_body)
{
    ctl_wire_target t = {.unix_path = c->socket_path,
                         .authority = "localhost",
                         .http11 = true,
                         .check_peer_uid = true,
                         .connect_timeout_ms = 10000};
    ctl_wire *w = ctl_wire_new(&t);
    if (!w)
        return -ENOMEM;
    ctl_wire_header hdrs[] = {{"content-type", "application/json", false}};
    ctl_wire_resp r;
    int rc = ctl_wire_request(w, method, path, hdrs, body ? 1 : 0, body, body ? strlen(body) : 0, MAX_RESPONSE, &r);
    ctl_wire_free(w);
    if (rc != 0) {
        if (r.err == CTL_WIRE_PEER)
            fprintf(stderr,
                    "secretsctl: the admin socket \"%s\" is served by uid %d, not by this user (uid %u) or root: "
                    "refusing to send anything to it\n",
                    c->socket_path, r.peer_uid, (unsigned)getuid());
        else if (!c->quiet)
            fprintf(stderr, "secretsctl: cannot reach the server at \"%s\": %s\n", c->socket_path, r.error);
        ctl_wire_resp_free(&r);
        ret_body->data = NULL;
        ret_body->len = 0;
        return -ECONNREFUSED;
    }
    *ret_status = r.status;
    /* The buffer changes hands: callers free it with free() (admin answers may hold tokens or
     * secrets being created; they are not wiped, as before). */
    ret_body->data = r.body.data;
    ret_body->len = r.body.len;
    return 0;
}

void ctl_print_error(long status, const buf *b)
{
    char ebuf[256];
    yajl_val v = yajl_tree_parse(b->data, ebuf, sizeof(ebuf));
    const char *epath[] = {"error", NULL};
    yajl_val e = v ? yajl_tree_get(v, epath, yajl_t_string) : NULL;
    fprintf(stderr, "secretsctl: server answered %ld: %s\n", status, e ? YAJL_GET_STRING(e) : "(no message)");
    yajl_tree_free(v);
}
