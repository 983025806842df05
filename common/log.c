/*
 * log.c - the diagnostic log (log.h): formatting, levels and the one descriptor lines go to.
 */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "common/clock.h"

static sx_log_level log_level = SX_LOG_INFO;
static bool log_json;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;
static _Thread_local const char *log_request_id;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void sx_log_setup(sx_log_level level, bool json)
{
    log_level = level;
    log_json = json;
}

bool sx_log_json(void)
{
    return log_json;
}

int sx_log_set_fd(int fd)
{
    pthread_mutex_lock(&log_mutex);
    int old = log_fd;
    log_fd = fd;
    pthread_mutex_unlock(&log_mutex);
    return old;
}

void sx_log_set_request_id(const char *id)
{
    log_request_id = id;
}

void sx_logv(sx_log_level level, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    char msg[1800], line[2048];
    int w = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t ml = w < 0 ? 0 : (size_t)w >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)w;
    char ts[SX_TIME_SIZE];
    sx_time_format(sx_clock_wall_ms(), ts, sizeof(ts));
    const char *lvl = level_names[level > SX_LOG_DEBUG ? SX_LOG_DEBUG : level];
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
        ssize_t wr = write(log_fd, line + off, n - off);
        if (wr < 0 && errno == EINTR)
            continue;
        if (wr <= 0)
            break;
        off += (size_t)wr;
    }
    pthread_mutex_unlock(&log_mutex);
}

void sx_log(sx_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sx_logv(level, fmt, ap);
    va_end(ap);
}
