/*
 * test_units.c - unit tests of server helpers that have no HTTP surface of their own.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>

#include "common/clock.h"
#include "secrets/secrets.h"
#include "server/api/api.h"
#include "testutil.h"

/* The reference: what gmtime_r + strftime say. */
static void reference_time(int64_t ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void timestamps_match_gmtime_from_1970_to_9999(void)
{
    static const int64_t fixed[] = {
        0,
        999,
        1000,
        86399999,
        86400000,
        951782400000LL /* 2000-02-29 */,
        951868800000LL /* 2000-03-01 */,
        4107456000000LL /* 2100-02-28 */,
        4107542400000LL /* 2100-03-01 */,
        1795708581123LL,
        253402300799999LL /* 9999-12-31T23:59:59.999 */,
    };
    char a[32], b[64];
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        CHECK_INT(sx_time_format(fixed[i], a, sizeof(a)), 24);
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
        sx_time_format(ms, a, sizeof(a));
        reference_time(ms, b, sizeof(b));
        if (strcmp(a, b) != 0 && bad++ < 5)
            fprintf(stderr, "ms=%lld: %s != %s\n", (long long)ms, a, b);
    }
    CHECK_INT(bad, 0);
}

static void meta_records_round_trip_and_reject_damage(void)
{
    sx_secret_meta m = {.created_ms = 1795708581123LL,
                        .updated_ms = 1795708599999LL,
                        .has_value = true,
                        .has_description = true,
                        .description_len = 5};
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
    CHECK(sx_meta_decode(&d, buf, n - 1) != 0); /* truncated */
    buf[0] = 2;                                 /* unknown format */
    CHECK(sx_meta_decode(&d, buf, n) != 0);
    buf[0] = 1;
    buf[1] = 0x80; /* unknown flag */
    CHECK(sx_meta_decode(&d, buf, n) != 0);
}

/* What a yajl generator writes for the string (without validation, as the server configures it). */
static size_t yajl_reference(const char *s, size_t len, char *out, size_t cap)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_string(g, (const unsigned char *)s, len);
    const unsigned char *buf;
    size_t n = 0;
    yajl_gen_get_buf(g, &buf, &n);
    /* Without the quotes. */
    size_t m = n >= 2 && n - 2 < cap ? n - 2 : 0;
    memcpy(out, buf + 1, m);
    yajl_gen_free(g);
    return m;
}

static void json_escape_matches_yajl_generator_byte_for_byte(void)
{
    char in[512], got[6 * 512], want[6 * 512 + 2];
    /* Every single byte, alone and inside plain text at every offset of an 8-byte word. */
    for (int c = 0; c < 256; c++) {
        for (size_t at = 0; at < 20; at++) {
            size_t len = at + 1 + (size_t)(c % 11);
            memset(in, 'a', len);
            in[at] = (char)c;
            size_t n = sx_json_escape(got, in, len, true);
            CHECK_INT(n, sx_json_escaped_len(in, len));
            size_t w = yajl_reference(in, len, want, sizeof(want));
            CHECK_INT(n, w);
            CHECK(memcmp(got, want, n) == 0);
        }
    }
    /* Random mixes, dense in bytes that need escaping. */
    static const char pool[] = "\"\\\n\r\t\b\f\x01\x1f\x7f/ abcXYZ\xc3\xa9";
    uint64_t x = 2463534242ULL;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = (size_t)(x % sizeof(in));
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[k] = pool[x % (sizeof(pool) - 1)];
        }
        size_t n = sx_json_escape(got, in, len, true);
        size_t w = yajl_reference(in, len, want, sizeof(want));
        if ((n != w || memcmp(got, want, n) != 0 || n != sx_json_escaped_len(in, len)) && bad++ < 3)
            fprintf(stderr, "escape mismatch for a %zu-byte string\n", len);
    }
    CHECK_INT(bad, 0);
    /* Lower-case hex when asked (the metadata form). */
    CHECK_INT(sx_json_escape(got, "\x1a", 1, false), 6);
    CHECK(memcmp(got, "\\u001a", 6) == 0);
}

static void meta_view_reads_the_record_in_place(void)
{
    sx_secret_meta m = {
        .created_ms = 5, .updated_ms = 7, .has_value = false, .has_description = true, .description_len = 3};
    memcpy(m.description, "a\"b", 4);
    uint8_t buf[SX_META_MAX];
    size_t n = sx_meta_encode(&m, buf);
    sx_secret_meta_view v;
    REQUIRE(sx_meta_view(&v, buf, n) == 0);
    CHECK(v.description == (const char *)buf + 20);
    CHECK_INT(v.description_len, 3);
    CHECK(!v.has_value && v.has_description);
    CHECK_INT(v.created_ms, 5);
    CHECK_INT(v.updated_ms, 7);
    CHECK(sx_meta_view(&v, buf, n + 1) != 0);
    /* The Secret JSON of both forms is the same. */
    char a[256], b[256];
    size_t la = sx_secret_json_write(a, "N", 1, &m);
    CHECK_INT(la, strlen("{\"name\":\"N\",\"description\":\"a\\\"b\",\"hasValue\":false,"
                         "\"createdAt\":\"1970-01-01T00:00:00.005Z\",\"updatedAt\":\"1970-01-01T00:00:00.007Z\"}"));
    a[la] = '\0';
    CHECK_STR(a, "{\"name\":\"N\",\"description\":\"a\\\"b\",\"hasValue\":false,"
                 "\"createdAt\":\"1970-01-01T00:00:00.005Z\",\"updatedAt\":\"1970-01-01T00:00:00.007Z\"}");
    m.has_description = false;
    m.description_len = 0;
    m.has_value = true;
    size_t lb = sx_secret_json_write(b, "N", 1, &m);
    b[lb] = '\0';
    CHECK_STR(b, "{\"name\":\"N\",\"description\":null,\"hasValue\":true,"
                 "\"createdAt\":\"1970-01-01T00:00:00.005Z\",\"updatedAt\":\"1970-01-01T00:00:00.007Z\"}");
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"timestamps_match_gmtime_from_1970_to_9999", timestamps_match_gmtime_from_1970_to_9999},
        {"meta_records_round_trip_and_reject_damage", meta_records_round_trip_and_reject_damage},
        {"json_escape_matches_yajl_generator_byte_for_byte", json_escape_matches_yajl_generator_byte_for_byte},
        {"meta_view_reads_the_record_in_place", meta_view_reads_the_record_in_place},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
