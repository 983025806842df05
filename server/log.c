/*
 * log.c - the server's diagnostic log (stderr) and access log.
 *
 * Only the server module logs. Lines start with an RFC 3339 UTC timestamp and the level. Callers
 * quote names and never pass values, tokens or key material; the access log (http.c) writes the
 * method, the path, the status, the byte count and the duration, and no header value or body.
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

static int log_level = SX_LOG_INFO;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO; /* where our lines go: stderr, or its duplicate once captured */
static int access_fd = -1;         /* -1 = access log off */
static char *access_path;          /* for reopen; NULL = stderr or off */
static bool log_json;
static _Thread_local const char *log_request_id; /* set while a request's code runs on this thread */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int sx_log_open(const sx_config *cfg, char *err, size_t errlen)
{
    log_level = (int)cfg->log_level;
    log_json = cfg->log_format == SX_LOG_FORMAT_JSON;
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

bool sx_log_json(void)
{
    return log_json;
}

void sx_log_set_request_id(const char *id)
{
    log_request_id = id;
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
    pthread_mutex_lock(&log_mutex);
    log_fd = keep;
    if (access_fd == STDERR_FILENO)
        access_fd = keep;
    dup2(p[1], STDERR_FILENO); /* the copy on 2 is not close-on-exec, as stderr never is */
    close(p[1]);
    pthread_mutex_unlock(&log_mutex);
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

/* Format the current time as 2026-11-26T15:46:21.123Z into buf (at least 25 bytes). */
size_t sx_log_timestamp(char *buf, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    return (size_t)snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

void sx_logv(int level, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    char msg[1800], line[2048];
    int w = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t ml = w < 0 ? 0 : (size_t)w >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)w;
    char ts[96]; /* 25 bytes in practice; room for any int the compiler thinks a field could hold */
    sx_log_timestamp(ts, sizeof(ts));
    const char *lvl = level_names[level < 0 ? 0 : level > 3 ? 3 : level];
    const char *rid = log_request_id;
    size_t n;
    if (log_json) {
        /* Messages quote names with '"': escape them (and anything else JSON needs) here. */
        n = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, lvl);
        for (size_t i = 0; i < ml && n < sizeof(line) - 160; i++) {
            unsigned char c = (unsigned char)msg[i];
            if (c == '"' || c == '\\')
                line[n++] = '\\';
            line[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"%s%s%s}", rid ? ",\"requestId\":\"" : "", rid ? rid : "",
                              rid ? "\"" : "");
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s %s %.*s%s%s%s", ts, lvl, (int)ml, msg, rid ? " [request " : "",
                             rid ? rid : "", rid ? "]" : "");
    }
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    /* Control characters never reach the terminal or the log file verbatim. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[n++] = '\n';
    pthread_mutex_lock(&log_mutex);
    for (size_t off = 0; off < n;) {
        ssize_t w = write(log_fd, line + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    pthread_mutex_unlock(&log_mutex);
}

void sx_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sx_logv(level, fmt, ap);
    va_end(ap);
}
