/*
 * log.c - the server's side of logging: the diagnostic log's set-up from the configuration
 * (common/log.h formats and writes its lines), the access log, and library lines on stderr.
 *
 * The access log (http.c) writes the method, the path, the status, the byte count and the
 * duration, and no header value or body.
 *
 * Libraries that write to stderr themselves (h2o 2.2.5 prints lines such as "skipping frame
 * (type:32)" with fprintf, libpq's default notice processor prints server notices) would put raw
 * lines between ours. Once the server is about to serve, sx_log_capture_stderr() moves our own
 * output to a duplicate of the original stderr and turns descriptor 2 into a pipe whose lines a
 * small thread re-emits as warnings in the configured format, control bytes replaced. Sanitizer
 * reports are pointed at the original stderr first, so a crash report is never left in the pipe.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

static pthread_mutex_t access_mutex = PTHREAD_MUTEX_INITIALIZER;
static int access_fd = -1;         /* -1 = access log off */
static char *access_path;          /* for reopen; NULL = stderr or off */
static int log_fd = STDERR_FILENO; /* the diagnostic log's descriptor once stderr is captured */

int sx_log_open(const sx_config *cfg, char *err, size_t errlen)
{
    sx_log_setup(cfg->log_level, cfg->log_format == SX_LOG_FORMAT_JSON);
    if (!cfg->access_log || !*cfg->access_log) {
        access_fd = -1;
    } else if (strcmp(cfg->access_log, "-") == 0) {
        access_fd = STDERR_FILENO;
    } else {
        access_fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (access_fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot open access log \"%s\": %s", cfg->access_log, strerror(e));
            return -e;
        }
        access_path = strdup(cfg->access_log);
    }
    return 0;
}

void sx_access_log_reopen(void)
{
    if (!access_path)
        return;
    int fd = open(access_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        sx_log(SX_LOG_ERROR, "cannot reopen access log \"%s\": %s", access_path, strerror(errno));
        return;
    }
    /* dup2 swaps the file under the same descriptor number, so a loop thread writing at this
     * moment writes whole lines to the old or the new file, never to a closed descriptor. */
    dup2(fd, access_fd);
    close(fd);
}

/* Longest library line re-emitted whole; a longer one is cut into pieces of this size. */
#define LIBRARY_LINE_MAX 1024

static void *stderr_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[LIBRARY_LINE_MAX];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t start = 0;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] != '\n')
                continue;
            if (i > start)
                sx_log(SX_LOG_WARN, "library: %.*s", (int)(i - start), buf + start);
            start = i + 1;
        }
        if (start == 0 && have == sizeof(buf)) { /* no newline in a whole buffer: emit it as it is */
            sx_log(SX_LOG_WARN, "library: %.*s", (int)have, buf);
            have = 0;
        } else {
            memmove(buf, buf + start, have - start);
            have -= start;
        }
    }
    close(fd);
    return NULL;
}

int sx_log_capture_stderr(void)
{
    int keep = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (keep < 0)
        return -errno;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        int e = errno;
        close(keep);
        return -e;
    }
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_set_report_fd((void *)(intptr_t)keep);
#endif
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, stderr_reader, (void *)(intptr_t)p[0]);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close(p[0]);
        close(p[1]);
        close(keep);
        return -rc;
    }
    fflush(stderr);
    log_fd = keep;
    sx_log_set_fd(keep);
    pthread_mutex_lock(&access_mutex);
    if (access_fd == STDERR_FILENO)
        access_fd = keep;
    pthread_mutex_unlock(&access_mutex);
    dup2(p[1], STDERR_FILENO); /* the copy on 2 is not close-on-exec, as stderr never is */
    close(p[1]);
    return 0;
}

void sx_log_close(void)
{
    if (access_fd > STDERR_FILENO && access_fd != log_fd)
        close(access_fd);
    access_fd = -1;
    free(access_path);
    access_path = NULL;
}

bool sx_access_log_enabled(void)
{
    return access_fd >= 0;
}

void sx_access_log_write(const char *line, size_t len)
{
    if (access_fd < 0)
        return;
    /* One write() per line on an O_APPEND descriptor keeps lines from different threads whole. */
    while (len > 0) {
        ssize_t w = write(access_fd, line, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        line += w;
        len -= (size_t)w;
    }
}
