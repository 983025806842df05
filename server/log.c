/*
 * log.c - the server's diagnostic log (stderr) and access log.
 *
 * Only the server module logs. Lines start with an RFC 3339 UTC timestamp and the level. Callers
 * quote names and never pass values, tokens or key material; the access log (http.c) writes the
 * method, the path, the status, the byte count and the duration, and no header value or body.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_level = SX_LOG_INFO;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static int access_fd = -1; /* -1 = access log off */
static char *access_path;  /* for reopen; NULL = stderr or off */
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

void sx_log_close(void)
{
    if (access_fd > STDERR_FILENO)
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
    char ts[32];
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
    fwrite(line, 1, n, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_mutex);
}

void sx_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sx_logv(level, fmt, ap);
    va_end(ap);
}
