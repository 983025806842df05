/*
 * dumpcheck.c - a tiny LD_PRELOAD module that lets test_hygiene ask a running secretsd, from the
 * inside, whether it is dumpable.
 *
 * Nothing outside a process can read its dumpable flag reliably: /proc/PID/status has no such
 * line, and the other external signal (a non-dumpable process's /proc/PID files belong to root)
 * proves nothing when the tests run as root. So the test preloads this module into secretsd; in
 * the secretsd process only (other programs started with the same environment, such as the
 * openssl run that makes the test certificate, are left alone) it installs a SIGUSR2 handler that
 * writes "dumpable=D core_soft=S core_hard=H\n" - prctl(PR_GET_DUMPABLE) and RLIMIT_CORE, read at
 * that moment - into the file named by SX_DUMPCHECK_OUT. Only async-signal-safe calls are used.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

extern char *program_invocation_short_name;

static char out_path[4096];

static size_t put_str(char *buf, size_t n, const char *s)
{
    while (*s)
        buf[n++] = *s++;
    return n;
}

static size_t put_num(char *buf, size_t n, long long v)
{
    char tmp[32];
    size_t k = 0;
    if (v < 0) {
        buf[n++] = '-';
        v = -v;
    }
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        buf[n++] = tmp[--k];
    return n;
}

static void on_usr2(int sig)
{
    (void)sig;
    int saved = errno;
    int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    struct rlimit rl = {0, 0};
    long long soft = -2, hard = -2;
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
        soft = rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur;
        hard = rl.rlim_max == RLIM_INFINITY ? -1 : (long long)rl.rlim_max;
    }
    char buf[128];
    size_t n = put_str(buf, 0, "dumpable=");
    n = put_num(buf, n, dumpable);
    n = put_str(buf, n, " core_soft=");
    n = put_num(buf, n, soft);
    n = put_str(buf, n, " core_hard=");
    n = put_num(buf, n, hard);
    buf[n++] = '\n';
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, buf, n);
        (void)w;
        close(fd);
    }
    errno = saved;
}

__attribute__((constructor)) static void dumpcheck_init(void)
{
    const char *out = getenv("SX_DUMPCHECK_OUT");
    if (!out || strlen(out) >= sizeof(out_path) || strcmp(program_invocation_short_name, "secretsd") != 0)
        return;
    strcpy(out_path, out);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}
