/*
 * fuzz_json.c - libFuzzer target for the strict request-body parser, sx_json_parse().
 *
 * Input: one selector byte (which field table, the same tables as the server's handlers), then the
 * body. Beyond "no crash, no leak, no UB", each input checks the parser's promises:
 *   - the result is 0, SX_JSON_EINVALID or SX_JSON_ERULE, and on failure the message is non-empty
 *     printable ASCII (it goes into a JSON error body) and short;
 *   - on success every required field is present, every present field has an allowed type, and
 *     every string is a NUL-terminated copy of len bytes of strict UTF-8 in the pool;
 *   - a body that is not strict UTF-8 is never accepted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o/memory.h>

#include "fuzz/fuzz_common.h"
#include "server/json.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_json: check failed: %s (line %d)\n", #cond, __LINE__);                               \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

/* Copies of the handlers' tables (server/api/secrets.c, values.c, tokens.c, operator.c). */
static const sx_json_field secret_fields[] = {
    {"kind", SX_JSON_STRING, "the string \"secret\"", true},
    {"name", SX_JSON_STRING, "a string", true},
    {"description", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
};
static const sx_json_field value_fields[] = {
    {"value", SX_JSON_STRING, "a string", true},
};
static const sx_json_field token_fields[] = {
    {"org", SX_JSON_STRING, "a string", true},
    {"project", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
    {"env", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
    {"role", SX_JSON_STRING, "a string", true},
    {"label", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
    {"ttl", SX_JSON_STRING | SX_JSON_NULL, "a string like \"30d\" or null", false},
};
static const sx_json_field rotate_fields[] = {
    {"rate", SX_JSON_NUMBER | SX_JSON_NULL, "an integer from 0 (unlimited) to 1000000 (items per second)", false},
};

static const struct {
    const sx_json_field *fields;
    size_t n;
} tables[] = {
    {secret_fields, 3},
    {value_fields, 1},
    {token_fields, 6},
    {rotate_fields, 1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t t = data[0] % (sizeof(tables) / sizeof(tables[0]));
    const sx_json_field *fields = tables[t].fields;
    size_t nfields = tables[t].n;
    /* A heap copy of exactly the body, so ASan sees any read past its end. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    CHECK(body);
    memcpy(body, data + 1, len);

    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    sx_json_value out[6];
    char err[256];
    memset(err, 'x', sizeof(err));
    int rc = sx_json_parse(&pool, body, len, fields, nfields, out, err, sizeof(err));
    CHECK(rc == 0 || rc == SX_JSON_EINVALID || rc == SX_JSON_ERULE);
    if (rc != 0) {
        size_t elen = strnlen(err, sizeof(err));
        CHECK(elen > 0 && elen < sizeof(err) - 1);
        /* yajl's messages end with a newline that server/json.c passes on (reported; harmless in the
         * JSON error body, where it is escaped). Any other control byte is a finding. */
        if (err[elen - 1] == '\n')
            elen--;
        for (size_t i = 0; i < elen; i++)
            CHECK(err[i] >= 0x20 && err[i] < 0x7f);
    } else {
        CHECK(fz_utf8_valid((const unsigned char *)body, len));
        for (size_t i = 0; i < nfields; i++) {
            if (fields[i].required)
                CHECK(out[i].present);
            if (!out[i].present)
                continue;
            if (out[i].is_null) {
                CHECK(fields[i].types & SX_JSON_NULL);
                continue;
            }
            if (out[i].str) {
                CHECK(out[i].str[out[i].len] == '\0');
                CHECK(fz_utf8_valid((const unsigned char *)out[i].str, out[i].len));
                CHECK(fields[i].types & (SX_JSON_STRING | SX_JSON_NUMBER));
            } else {
                CHECK(fields[i].types & SX_JSON_BOOL);
            }
        }
    }
    h2o_mem_clear_pool(&pool);
    free(body);
    return 0;
}
