/*
 * log.h - the diagnostic log: one line per event, to stderr (or what the server points it at).
 *
 * Lines start with an RFC 3339 UTC timestamp and the level ("text" format), or are one JSON object
 * each ("json" format, with time, level, msg and, while a request's code runs on the thread, its
 * requestId). Control characters never reach the sink verbatim.
 *
 * Who logs: libraries return errors and let their caller decide what to say, so storage/,
 * crypto/, auth/, config/ and secrets/ never call sx_log(). The engines that run threads of their
 * own (audit/, ops/) and server/ log where they decide. Messages quote names; a value, a token or
 * key material is never passed.
 *
 * Threads: every function may be called from any thread; sx_log_setup() and sx_log_set_fd() are
 * meant for start-up, before the threads that log run.
 */
#ifndef SX_COMMON_LOG_H
#define SX_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum sx_log_level {
    SX_LOG_ERROR = 0,
    SX_LOG_WARN = 1,
    SX_LOG_INFO = 2,
    SX_LOG_DEBUG = 3,
} sx_log_level;

/* The level below which lines are dropped (default info) and the format (default text). */
void sx_log_setup(sx_log_level level, bool json);
/* True when lines are JSON objects. */
bool sx_log_json(void);
/* Point the log at descriptor fd (borrowed: it must stay open while lines may be written); returns
 * the previous one. The default is 2. */
int sx_log_set_fd(int fd);
/* The request id the calling thread's lines carry (set while a request's code runs on it; NULL
 * clears it). The string is borrowed until cleared. */
void sx_log_set_request_id(const char *id);

/* Log one line at level. */
void sx_log(sx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sx_logv(sx_log_level level, const char *fmt, va_list ap);

#endif /* SX_COMMON_LOG_H */
