/* haproxy.c - see haproxy.h. */
#include "haproxy.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static bool have_haproxy(void)
{
    return system("haproxy -v >/dev/null 2>&1") == 0;
}

static int write_config(const sx_haproxy *h, const sx_haproxy_node *nodes, size_t n)
{
    char text[8192];
    int len = snprintf(text, sizeof(text),
                       "global\n"
                       "    maxconn 4000\n"
                       "    stats socket %s mode 600 level admin\n"
                       "defaults\n"
                       "    mode tcp\n"
                       "    timeout connect 2s\n"
                       "    timeout client 120s\n"
                       "    timeout server 120s\n"
                       "    retries 3\n"
                       "    option redispatch\n"
                       "frontend fe\n"
                       "    bind 127.0.0.1:%d\n"
                       "    default_backend nodes\n"
                       "backend nodes\n"
                       "    balance roundrobin\n"
                       "    option httpchk\n"
                       "    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost\n"
                       "    http-check expect status 200\n"
                       "    default-server inter 200 fall 2 rise 1 send-proxy-v2 check-send-proxy\n",
                       h->stats, h->port);
    for (size_t i = 0; i < n; i++) {
        bool v6 = strchr(nodes[i].addr, ':') != NULL;
        len += snprintf(text + len, sizeof(text) - (size_t)len, "    server node%zu %s%s%s:%d check\n", i + 1,
                        v6 ? "[" : "", nodes[i].addr, v6 ? "]" : "", nodes[i].port);
    }
    char *cfg = sx_test_path(h->dir, "haproxy.cfg");
    int r = sx_test_write_file(cfg, text, (size_t)len);
    free(cfg);
    return r;
}

int sx_haproxy_nodes_up(const sx_haproxy *h)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (fd < 0 || strlen(h->stats) >= sizeof(sa.sun_path)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    strcpy(sa.sun_path, h->stats);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    const char cmd[] = "show stat\n";
    if (send(fd, cmd, sizeof(cmd) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(cmd) - 1)) {
        close(fd);
        return -1;
    }
    sx_test_buf buf = {0};
    char chunk[4096];
    ssize_t got;
    while ((got = read(fd, chunk, sizeof(chunk))) > 0)
        sx_test_buf_append(chunk, 1, (size_t)got, &buf);
    close(fd);
    if (!buf.data)
        return -1;
    /* CSV: pxname,svname,...; the 18th field is the status ("UP", "DOWN", "UP 1/2", ...). */
    int up = 0;
    for (char *line = buf.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, "nodes,node", 10) == 0) {
            const char *f = line;
            for (int i = 0; i < 17 && f; i++) {
                f = strchr(f, ',');
                if (f)
                    f++;
            }
            if (f && strncmp(f, "UP", 2) == 0)
                up++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf.data);
    return up;
}

int sx_haproxy_start(sx_haproxy *h, const sx_haproxy_node *nodes, size_t n)
{
    memset(h, 0, sizeof(*h));
    if (!have_haproxy()) {
        fprintf(stderr, "haproxy: not installed; skipping\n");
        return SX_HAPROXY_SKIP;
    }
    if (n == 0 || n > SX_HAPROXY_MAX_NODES)
        return -1;
    h->dir = sx_test_tmpdir("haproxy");
    h->stats = sx_test_path(h->dir, "admin.sock");
    char *cfg = sx_test_path(h->dir, "haproxy.cfg");
    char *log = sx_test_path(h->dir, "haproxy.log");
    int rc = -1;
    for (int attempt = 0; attempt < 5 && rc != 0; attempt++) {
        h->port = sx_test_free_port();
        if (write_config(h, nodes, n) != 0)
            break;
        h->pid = fork();
        if (h->pid == 0) {
            int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
            int in = open("/dev/null", O_RDONLY);
            if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
                _exit(126);
            setpgid(0, 0);
            execlp("haproxy", "haproxy", "-db", "-f", cfg, (char *)NULL);
            _exit(127);
        }
        if (h->pid < 0) {
            h->pid = 0;
            break;
        }
        for (int i = 0; i < 600; i++) { /* 30 s */
            int st;
            if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
                h->pid = 0; /* exited: its port taken a moment ago? */
                break;
            }
            if (sx_test_port_accepts(h->port) && sx_haproxy_nodes_up(h) > 0) {
                rc = 0;
                break;
            }
            sx_test_sleep_ms(50);
        }
        if (rc != 0 && h->pid > 0)
            break; /* running, but no node came up */
    }
    if (rc != 0) {
        char *text = sx_test_read_file(log, NULL);
        fprintf(stderr, "haproxy: did not come up:\n%s\n", text ? text : "(no log)");
        free(text);
        sx_haproxy_stop(h);
    }
    free(cfg);
    free(log);
    return rc;
}

void sx_haproxy_stop(sx_haproxy *h)
{
    if (h->pid > 0) {
        kill(h->pid, SIGTERM);
        int st;
        bool gone = false;
        for (int i = 0; i < 250 && !gone; i++) {
            gone = waitpid(h->pid, &st, WNOHANG) == h->pid;
            if (!gone)
                sx_test_sleep_ms(20);
        }
        if (!gone) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &st, 0);
        }
        h->pid = 0;
    }
    if (h->dir)
        sx_test_rmtree(h->dir);
    free(h->dir);
    free(h->stats);
    h->dir = NULL;
    h->stats = NULL;
}
