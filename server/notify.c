/*
 * notify.c - the service manager's readiness protocol (sd_notify), without libsystemd.
 *
 * When systemd starts secretsd from a unit with Type=notify it sets NOTIFY_SOCKET to the address
 * of a Unix datagram socket: a path, or an abstract name written with a leading '@'. A state
 * change is one datagram of newline-separated VAR=VALUE assignments: READY=1 once the keyring is
 * unsealed and every listener accepts, STOPPING=1 when the drain begins, STATUS=... a line that
 * `systemctl status` shows. That is the whole protocol this needs (no file descriptors passed, no
 * watchdog), so a few lines here spare the dependency. Without NOTIFY_SOCKET (started by hand, by
 * tests, by another supervisor) nothing is sent.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sx_notify(const char *state)
{
    const char *addr = getenv("NOTIFY_SOCKET");
    if (!addr || !*addr)
        return 0;
    if (!state)
        return -EINVAL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(addr);
    if ((addr[0] != '/' && addr[0] != '@') || len < 2 || len > sizeof(sa.sun_path))
        return -EAFNOSUPPORT; /* systemd also knows vsock:, which a local service never gets */
    if (len == sizeof(sa.sun_path) && addr[0] == '/')
        return -ENAMETOOLONG; /* a path needs its NUL */
    memcpy(sa.sun_path, addr, len);
    if (addr[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL, not NUL-terminated */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (addr[0] == '/' ? 1 : 0));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t n;
    do
        n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    while (n < 0 && errno == EINTR);
    int rc = n < 0 ? -errno : (size_t)n == strlen(state) ? 0 : -EMSGSIZE;
    close(fd);
    return rc;
}
