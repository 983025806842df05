/*
 * clock.c - monotonic and wall clocks, and the RFC 3339 formatter (clock.h).
 */
#include "common/clock.h"

#include <stdio.h>
#include <string.h>

uint64_t sx_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t sx_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sx_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sx_clock_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

struct timespec sx_clock_mono_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* The last day formatted by this thread: timestamps in one response are mostly of few days. */
static __thread int64_t cached_day = INT64_MIN;
static __thread char cached_date[11];
/* Likewise the last second ("2026-11-26T15:46:21"): a list's records were mostly written in bursts. */
static __thread int64_t cached_sec = INT64_MIN;
static __thread char cached_second[19];

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm): integer arithmetic only. */
static void format_date(int64_t days, char *out)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
}

size_t sx_time_format(int64_t ms, char *buf, size_t cap)
{
    if (cap < SX_TIME_SIZE)
        return 0;
    if (ms < 0 || ms > 253402300799999LL) {
        memcpy(buf, "0000-01-01T00:00:00.000Z", SX_TIME_SIZE);
        return SX_TIME_SIZE - 1;
    }
    int64_t secs = ms / 1000;
    unsigned msec = (unsigned)(ms - secs * 1000);
    if (secs != cached_sec) {
        int64_t days = secs / 86400;
        unsigned sod = (unsigned)(secs - days * 86400);
        if (days != cached_day) {
            format_date(days, cached_date);
            cached_day = days;
        }
        memcpy(cached_second, cached_date, 10);
        cached_second[10] = 'T';
        put2(cached_second + 11, sod / 3600);
        cached_second[13] = ':';
        put2(cached_second + 14, sod / 60 % 60);
        cached_second[16] = ':';
        put2(cached_second + 17, sod % 60);
        cached_sec = secs;
    }
    memcpy(buf, cached_second, 19);
    buf[19] = '.';
    buf[20] = (char)('0' + msec / 100);
    put2(buf + 21, msec % 100);
    buf[23] = 'Z';
    buf[24] = '\0';
    return SX_TIME_SIZE - 1;
}
