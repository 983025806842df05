/*
 * test_units.c - unit tests of server helpers that have no HTTP surface of their own.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/api.h"
#include "testutil.h"

/* The reference: what gmtime_r + strftime say. */
static void reference_time(int64_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void timestamps_match_gmtime_from_1970_to_9999(void)
{
    static const int64_t fixed[] = {
        0, 999, 1000, 86399999, 86400000, 951782400000LL /* 2000-02-29 */, 951868800000LL /* 2000-03-01 */,
        4107456000000LL /* 2100-02-28 */, 4107542400000LL /* 2100-03-01 */, 1795708581123LL,
        253402300799999LL /* 9999-12-31T23:59:59.999 */,
    };
    char a[32], b[64];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        CHECK_INT(sx_format_time(fixed[i], a, sizeof(a)), 24);
        reference_time(fixed[i], b, sizeof(b));
        CHECK_STR(a, b);
    }
    uint64_t x = 88172645463325252ULL;
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = (int64_t)(x % 253402300800000ULL);
        sx_format_time(ms, a, sizeof(a));
        reference_time(ms, b, sizeof(b));
        if (strcmp(a, b) != 0 && bad++ < 5)
            fprintf(stderr, "ms=%lld: %s != %s\n", (long long)ms, a, b);
    }
    CHECK_INT(bad, 0);
}

static void meta_records_round_trip_and_reject_damage(void)
{
    sx_secret_meta m = {.created_ms = 1795708581123LL, .updated_ms = 1795708599999LL, .has_value = true,
                        .has_description = true, .description_len = 5};
    memcpy(m.description, "hello", 6);
    uint8_t buf[SX_META_MAX];
    size_t n = sx_meta_encode(&m, buf);
    CHECK_INT(n, 25);
    sx_secret_meta d;
    REQUIRE(sx_meta_decode(&d, buf, n) == 0);
    CHECK_INT(d.created_ms, m.created_ms);
    CHECK_INT(d.updated_ms, m.updated_ms);
    CHECK(d.has_value && d.has_description);
    CHECK_STR(d.description, "hello");
    CHECK(sx_meta_decode(&d, buf, n - 1) != 0);     /* truncated */
    buf[0] = 2;                                      /* unknown format */
    CHECK(sx_meta_decode(&d, buf, n) != 0);
    buf[0] = 1;
    buf[1] = 0x80; /* unknown flag */
    CHECK(sx_meta_decode(&d, buf, n) != 0);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"timestamps_match_gmtime_from_1970_to_9999", timestamps_match_gmtime_from_1970_to_9999},
        {"meta_records_round_trip_and_reject_damage", meta_records_round_trip_and_reject_damage},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
