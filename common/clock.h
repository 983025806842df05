/*
 * clock.h - the project's clocks and its one timestamp format.
 *
 * Monotonic time measures durations and deadlines (it never steps); wall time stamps records and
 * log lines. Timestamps are RFC 3339 UTC with milliseconds, "2026-11-26T15:46:21.123Z", formatted
 * without gmtime_r (whose time-zone lock would serialise the loops that format many per response).
 *
 * Every function is safe from any thread.
 */
#ifndef SX_COMMON_CLOCK_H
#define SX_COMMON_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds and in milliseconds. */
uint64_t sx_clock_mono_ns(void);
int64_t sx_clock_mono_ms(void);
/* CLOCK_REALTIME in milliseconds since the epoch. */
int64_t sx_clock_wall_ms(void);

/* Initialise cond to wait on CLOCK_MONOTONIC, so that a wall-clock step neither shortens nor
 * stretches a timed wait. 0 or a positive pthread error. */
int sx_clock_cond_init(pthread_cond_t *cond);
/* The CLOCK_MONOTONIC deadline ms milliseconds from now, for pthread_cond_timedwait on a cond made
 * by sx_clock_cond_init(). */
struct timespec sx_clock_mono_deadline(int64_t ms);

/* Bytes sx_time_format() writes, with its terminating NUL. */
#define SX_TIME_SIZE 25
/* Format ms since the epoch as 2026-11-26T15:46:21.123Z into buf (cap >= SX_TIME_SIZE; NUL
 * terminated). Returns 24, or 0 when cap is too small. Times before 1970 or after 9999 are written
 * as 0000-01-01T00:00:00.000Z. */
size_t sx_time_format(int64_t ms, char *buf, size_t cap);

#endif /* SX_COMMON_CLOCK_H */
