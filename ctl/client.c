/*
 * client.c - secretsctl's client of the admin socket (see client.h): one HTTP request over the
 * Unix socket with libcurl (CURLOPT_UNIX_SOCKET_PATH), after checking who serves the socket.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "ctl/client.h"

#define MAX_RESPONSE (16u * 1024 * 1024)

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    buf *b = userdata;
    size_t add = size * n;
    if (b->len + add > MAX_RESPONSE)
        return 0;
    char *nd = realloc(b->data, b->len + add + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* Before a byte is sent, secretsctl checks who serves the admin socket: a socket file proves
 * nothing by its name, and a server of another user (one that took the path, or a folder others
 * can write) would collect a passphrase or hand back tokens of its own. The peer must run as this
 * user or as root (SO_PEERCRED, recorded by the kernel when the server called listen()). libcurl
 * opens the socket through open_socket() (so its descriptor is known) and calls check_peer() once
 * connected and before it writes the request. */
typedef struct peer_check {
    curl_socket_t fd;
    bool refused;
    int peer_uid;
} peer_check;

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    peer_check *pc = clientp;
    (void)purpose;
    pc->fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    return pc->fd < 0 ? CURL_SOCKET_BAD : pc->fd;
}

static int check_peer(void *clientp, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                      int conn_local_port)
{
    peer_check *pc = clientp;
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    bool known = pc->fd >= 0 && getsockopt(pc->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred);
    if (known && (cred.uid == getuid() || cred.uid == geteuid() || cred.uid == 0))
        return CURL_PREREQFUNC_OK;
    pc->refused = true;
    pc->peer_uid = known ? (int)cred.uid : -1;
    return CURL_PREREQFUNC_ABORT;
}

int ctl_request(const ctl *c, const char *method, const char *path, const char *body, long *ret_status, buf *ret_body)
{
    peer_check pc = {.fd = CURL_SOCKET_BAD};
    CURL *h = curl_easy_init();
    if (!h)
        return -ENOMEM;
    char url[1024];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    struct curl_slist *hdrs = NULL;
    ret_body->data = NULL;
    ret_body->len = 0;
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ret_body);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &pc);
    curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, check_peer);
    curl_easy_setopt(h, CURLOPT_PREREQDATA, &pc);
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        if (pc.refused)
            fprintf(stderr,
                    "secretsctl: the admin socket \"%s\" is served by uid %d, not by this user (uid %u) or root: "
                    "refusing to send anything to it\n",
                    c->socket_path, pc.peer_uid, (unsigned)getuid());
        else if (!c->quiet)
            fprintf(stderr, "secretsctl: cannot reach the server at \"%s\": %s\n", c->socket_path,
                    curl_easy_strerror(rc));
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        free(ret_body->data);
        ret_body->data = NULL;
        return -ECONNREFUSED;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (!ret_body->data) {
        ret_body->data = calloc(1, 1);
        if (!ret_body->data)
            return -ENOMEM;
    }
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
