/*
 * test_units.c - unit tests of server helpers that have no HTTP surface of their own (or not all
 * of it): timestamps, records, JSON escaping and members, the router's rest parameter.
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

/* SX_JSON_MEMBERS: an object of scalars collected per field (each field its own array), repeated
 * keys, nesting and other types refused, the rest of the body strict as ever. */
static const sx_json_field members_fields[] = {
    {"data", SX_JSON_MEMBERS, "an object of strings", true},
    {"options", SX_JSON_MEMBERS, "an object", false},
};

static int parse_members(h2o_mem_pool_t *pool, const char *body, sx_json_value *v, char *err)
{
    return sx_json_parse(pool, body, strlen(body), members_fields, 2, v, err, 256);
}

static void json_members_collect_scalars_and_refuse_nesting_and_repeats(void)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    sx_json_value v[2];
    char err[256];
    REQUIRE(parse_members(&pool, "{\"data\":{\"A\":\"1\",\"B\":null,\"C\":2,\"D\":true},\"options\":{\"cas\":3}}", v,
                          err) == 0);
    REQUIRE(v[0].present && v[0].nmembers == 4 && v[1].present && v[1].nmembers == 1);
    CHECK_STR(v[0].members[0].key, "A");
    CHECK_STR(v[0].members[0].str, "1");
    CHECK_INT(v[0].members[0].type, SX_JSON_STRING);
    CHECK_INT(v[0].members[1].type, SX_JSON_NULL);
    CHECK_INT(v[0].members[2].type, SX_JSON_NUMBER);
    CHECK_STR(v[0].members[2].str, "2");
    CHECK(v[0].members[3].type == SX_JSON_BOOL && v[0].members[3].boolean);
    CHECK_STR(v[1].members[0].key, "cas");
    REQUIRE(parse_members(&pool, "{\"data\":{}}", v, err) == 0);
    CHECK(v[0].present && v[0].nmembers == 0 && !v[1].present);

    /* each field grows its own array: 20 members after a field of 1 */
    char big[1024];
    size_t n = (size_t)snprintf(big, sizeof(big), "{\"data\":{\"A\":\"1\"},\"options\":{");
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(big + n, sizeof(big) - n, "}}");
    REQUIRE(parse_members(&pool, big, v, err) == 0);
    CHECK(v[0].nmembers == 1 && v[1].nmembers == 20);
    CHECK_STR(v[1].members[19].key, "k19");

    static const struct {
        const char *body;
        int rc;
        const char *needle;
    } bad[] = {
        {"{\"data\":{\"A\":\"1\",\"A\":\"2\"}}", SX_JSON_ERULE, "more than once"},
        {"{\"data\":{\"A\":{\"x\":\"1\"}}}", SX_JSON_ERULE, "\"data\" must be an object of strings"},
        {"{\"data\":{\"A\":[\"1\"]}}", SX_JSON_ERULE, "\"data\" must be"},
        {"{\"data\":\"A\"}", SX_JSON_ERULE, "\"data\" must be"},
        {"{\"data\":{},\"data\":{}}", SX_JSON_ERULE, "more than once"},
        {"{\"options\":{}}", SX_JSON_ERULE, "\"data\" is required"},
        {"{\"data\":{},\"x\":{}}", SX_JSON_ERULE, "unknown field"},
        {"{\"data\":{\"A\":\"1\"}", SX_JSON_EINVALID, "not valid JSON"},
        {"{\"data\":{\"A\":\"\xc0\xaf\"}}", SX_JSON_EINVALID, "UTF-8"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_members(&pool, bad[i].body, v, err);
        CHECK_INT(rc, bad[i].rc);
        if (!strstr(err, bad[i].needle)) {
            fprintf(stderr, "body %zu: \"%s\" does not say \"%s\"\n", i, err, bad[i].needle);
            CHECK(false);
        }
    }
    h2o_mem_clear_pool(&pool);
}

/* SX_JSON_ITEMS: an array of scalars collected in order without keys; nesting refused, and the
 * fields after the array parsed as ever. */
static void json_items_collect_an_arrays_scalars_in_order(void)
{
    static const sx_json_field fields[] = {
        {"versions", SX_JSON_ITEMS | SX_JSON_STRING, "an array of version numbers", true},
        {"data", SX_JSON_MEMBERS, "an object", false},
    };
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    sx_json_value v[2];
    char err[256];
    const char *ok = "{\"versions\":[3,\"1\",null,true],\"data\":{\"A\":\"x\"}}";
    REQUIRE(sx_json_parse(&pool, ok, strlen(ok), fields, 2, v, err, sizeof(err)) == 0);
    REQUIRE(v[0].present && v[0].nmembers == 4 && v[1].nmembers == 1);
    CHECK(v[0].members[0].key == NULL && v[0].members[0].type == SX_JSON_NUMBER);
    CHECK_STR(v[0].members[0].str, "3");
    CHECK(v[0].members[1].type == SX_JSON_STRING);
    CHECK_STR(v[0].members[1].str, "1");
    CHECK_INT(v[0].members[2].type, SX_JSON_NULL);
    CHECK(v[0].members[3].type == SX_JSON_BOOL && v[0].members[3].boolean);
    CHECK_STR(v[1].members[0].key, "A");
    const char *empty = "{\"versions\":[]}";
    REQUIRE(sx_json_parse(&pool, empty, strlen(empty), fields, 2, v, err, sizeof(err)) == 0);
    CHECK(v[0].present && v[0].nmembers == 0);
    const char *str = "{\"versions\":\"1,2\"}";
    REQUIRE(sx_json_parse(&pool, str, strlen(str), fields, 2, v, err, sizeof(err)) == 0);
    CHECK(v[0].nmembers == 0);
    CHECK_STR(v[0].str, "1,2");
    static const char *const bad[] = {"{\"versions\":[[1]]}", "{\"versions\":[{\"a\":1}]}", "{\"versions\":{\"a\":1}}",
                                      "{\"versions\":1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(sx_json_parse(&pool, bad[i], strlen(bad[i]), fields, 2, v, err, sizeof(err)), SX_JSON_ERULE);
        CHECK(strstr(err, "\"versions\" must be an array of version numbers") != NULL);
    }
    h2o_mem_clear_pool(&pool);
}

/* A "{name*}" parameter takes the rest of the path (none or more segments, each still held to the
 * byte rules); the Vault routes are only in the SX_ROUTE_VAULT scope. */
static void router_rest_parameter_takes_the_remaining_segments(void)
{
    const unsigned vault = SX_ROUTE_PUBLIC | SX_ROUTE_VAULT;
    const sx_route *route = NULL;
    h2o_iovec_t params[SX_MAX_PARAMS];
    size_t np = 0;
    unsigned allow = 0;
    const char *bad = NULL;
#define MATCH(scope, method, path) sx_router_match(scope, method, path, strlen(path), &route, params, &np, &allow, &bad)
    REQUIRE(MATCH(vault, SX_GET, "/v1/secret/data/a/b/c") == SX_ROUTE_FOUND);
    REQUIRE(np == 2);
    CHECK(params[0].len == 6 && memcmp(params[0].base, "secret", 6) == 0);
    CHECK(params[1].len == 5 && memcmp(params[1].base, "a/b/c", 5) == 0);
    REQUIRE(MATCH(vault, SX_GET, "/v1/secret/data") == SX_ROUTE_FOUND);
    CHECK(np == 2 && params[1].len == 0);
    CHECK(MATCH(vault, SX_LIST, "/v1/secret/metadata/a") == SX_ROUTE_FOUND);
    CHECK(MATCH(vault, SX_PATCH, "/v1/secret/data/a/b") == SX_ROUTE_FOUND);
    CHECK(MATCH(vault, SX_GET, "/v1/sys/internal/ui/mounts/secret/a") == SX_ROUTE_FOUND);
    CHECK(np == 1 && params[0].len == 8);
    CHECK(MATCH(vault, SX_GET, "/v1/secret/data/a//b") == SX_ROUTE_BAD_PATH);
    CHECK(MATCH(vault, SX_GET, "/v1/secret/data/a/%2e%2e") == SX_ROUTE_BAD_PATH);
    CHECK(MATCH(vault, SX_GET, "/v1/.secret/data/a") == SX_ROUTE_BAD_PATH);
    CHECK(MATCH(vault, SX_DELETE, "/v1/secret/data/a/b") == SX_ROUTE_FOUND);
    CHECK(MATCH(vault, SX_POST, "/v1/secret/undelete/a/b/c") == SX_ROUTE_FOUND);
    CHECK(MATCH(vault, SX_GET, "/v1/secret/destroy/a/b/c") == SX_ROUTE_BAD_METHOD);
    CHECK(MATCH(vault, SX_POST, "/v1/secret/metadata/a/b") == SX_ROUTE_BAD_METHOD);
    CHECK((allow & SX_DELETE) && (allow & SX_GET) && (allow & SX_LIST) && !(allow & SX_POST));
    CHECK(MATCH(SX_ROUTE_PUBLIC, SX_GET, "/v1/secret/data/a/b") == SX_ROUTE_NOT_FOUND);
    CHECK(MATCH(SX_ROUTE_ADMIN, SX_GET, "/v1/secret/data/a/b") == SX_ROUTE_NOT_FOUND);
    CHECK(MATCH(vault, SX_GET, "/v1/secret/other/a") == SX_ROUTE_NOT_FOUND);
#undef MATCH
    char list[64];
    sx_method_list(SX_GET | SX_PATCH | SX_LIST, list, sizeof(list));
    CHECK_STR(list, "GET, PATCH, LIST");
    CHECK_INT(sx_method_parse("LIST", 4), SX_LIST);
    CHECK_INT(sx_method_parse("PATCH", 5), SX_PATCH);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"timestamps_match_gmtime_from_1970_to_9999", timestamps_match_gmtime_from_1970_to_9999},
        {"meta_records_round_trip_and_reject_damage", meta_records_round_trip_and_reject_damage},
        {"json_escape_matches_yajl_generator_byte_for_byte", json_escape_matches_yajl_generator_byte_for_byte},
        {"meta_view_reads_the_record_in_place", meta_view_reads_the_record_in_place},
        {"json_members_collect_scalars_and_refuse_nesting_and_repeats",
         json_members_collect_scalars_and_refuse_nesting_and_repeats},
        {"json_items_collect_an_arrays_scalars_in_order", json_items_collect_an_arrays_scalars_in_order},
        {"router_rest_parameter_takes_the_remaining_segments", router_rest_parameter_takes_the_remaining_segments},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
