/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

int sx_test_failures;

int sx_test_main(const sx_test *tests, size_t n, int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            bool wanted = false;
            for (int a = 1; a < argc; a++)
                if (strcmp(argv[a], tests[i].name) == 0)
                    wanted = true;
            if (!wanted)
                continue;
        }
        sx_test_failures = 0;
        fprintf(stderr, "-- %s\n", tests[i].name);
        tests[i].fn();
        if (sx_test_failures) {
            fprintf(stderr, "FAIL %s (%d checks)\n", tests[i].name, sx_test_failures);
            failed++;
        } else {
            fprintf(stderr, "ok   %s\n", tests[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}

char *sx_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t len = strlen(base) + strlen(tag) + 32;
    char *p = malloc(len);
    if (!p)
        abort();
    snprintf(p, len, "%s/sx-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        perror("mkdtemp");
        abort();
    }
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -errno;
}

int sx_test_rmtree(const char *path)
{
    if (!path)
        return 0;
    return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

int sx_test_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    const char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd) == 0 ? 0 : -errno;
}

char *sx_test_read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    return buf;
}

bool sx_test_file_wait(const char *path, const char *needle, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        size_t len = 0;
        char *text = sx_test_read_file(path, &len);
        bool found = text && sx_test_memmem(text, len, needle, strlen(needle));
        free(text);
        if (found)
            return true;
        if (waited >= timeout_ms)
            return false;
        sx_test_sleep_ms(20);
    }
}

bool sx_test_memmem(const void *hay, size_t len, const void *needle, size_t nlen)
{
    return memmem(hay, len, needle, nlen) != NULL;
}

size_t sx_test_buf_append(char *p, size_t size, size_t n, void *ud)
{
    sx_test_buf *b = ud;
    size_t add = size * n;
    char *nd = realloc(b->data, b->len + add + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

char *sx_test_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void sx_test_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool sx_test_wait_for_file(const char *path, long timeout_ms)
{
    for (long waited = 0;; waited += 10) {
        if (access(path, F_OK) == 0)
            return true;
        if (waited >= timeout_ms)
            return false;
        sx_test_sleep_ms(10);
    }
}

int sx_test_sh(char **ret_out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    fflush(stdout); /* the child would write our buffered output a second time */
    fflush(stderr);
    sx_test_buf b = {0};
    int st = -1;
    FILE *p = popen(cmd, "r");
    if (p) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
            sx_test_buf_append(buf, 1, n, &b);
        st = pclose(p);
    }
    if (ret_out)
        *ret_out = b.data ? b.data : calloc(1, 1);
    else
        free(b.data);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

int sx_test_tcp_connect(int port, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = loopback(port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (timeout_s > 0) {
        struct timeval tv = {timeout_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

bool sx_test_port_accepts(int port)
{
    int fd = sx_test_tcp_connect(port, 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

bool sx_test_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in sa = loopback(port);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

int sx_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = loopback(0);
    socklen_t l = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}
