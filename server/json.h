/*
 * json.h - JSON in the server: the strict parser of request bodies, the generators of responses
 * (a per-thread one, and one whose memory is wiped for output holding values or tokens), and the
 * escaping used by responses written straight into a buffer (json.c). Internal to server/.
 */
#ifndef SX_SERVER_JSON_H
#define SX_SERVER_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <h2o/memory.h>
#include <yajl/yajl_gen.h>

#include "common/errors.h"

/* ---- strict JSON bodies (json.c) --------------------------------------------------------------- */

#define SX_JSON_STRING (1u << 0)
#define SX_JSON_NULL   (1u << 1)
#define SX_JSON_BOOL   (1u << 2)
#define SX_JSON_NUMBER (1u << 3)
#define SX_JSON_OBJECT (1u << 4)
#define SX_JSON_ARRAY  (1u << 5)
/* An object whose members are scalars (string, number, bool or null), each key once: collected into
 * the value's members. A nested object or array in it breaks the field's rule. */
#define SX_JSON_MEMBERS (1u << 6)
/* An array of scalars: collected into the value's members like SX_JSON_MEMBERS, each with key NULL
 * (key_len 0), in the order of the body. A nested object or array in it breaks the field's rule. */
#define SX_JSON_ITEMS (1u << 7)

/* Parse errors: SX_JSON_EINVALID and SX_JSON_ERULE (common/errors.h). */

typedef struct sx_json_field {
    const char *name;
    unsigned types;        /* SX_JSON_* accepted */
    const char *type_desc; /* "a string", "a string or null" - for the error message */
    bool required;
} sx_json_field;

/* One member of an SX_JSON_MEMBERS object (or an item of an SX_JSON_ITEMS array): its key and value (strings and
 * numbers copied into the request pool, NUL-terminated), in the order of the body. */
typedef struct sx_json_member {
    char *key;
    size_t key_len;
    unsigned type; /* SX_JSON_STRING, SX_JSON_NUMBER, SX_JSON_BOOL or SX_JSON_NULL */
    char *str;     /* strings and numbers */
    size_t len;
    bool boolean;
} sx_json_member;

typedef struct sx_json_value {
    bool seen;
    bool present;
    bool is_null;
    bool boolean;
    char *str; /* strings and numbers: a NUL-terminated copy in the request pool */
    size_t len;
    sx_json_member *members; /* SX_JSON_MEMBERS, SX_JSON_ITEMS: in the request pool */
    size_t nmembers;
} sx_json_value;

/* Parse body as one flat object of the given fields into out[nfields]. 0, SX_JSON_EINVALID or
 * SX_JSON_ERULE with a message naming the field in err. */
int sx_json_parse(h2o_mem_pool_t *pool, const char *body, size_t len, const sx_json_field *fields, size_t nfields,
                  sx_json_value *out, char *err, size_t errlen);

/* Copy a parsed string field into dst (cap bytes, NUL-terminated). An absent or null field leaves
 * dst as it is. False when the string does not fit or holds a NUL byte. */
bool sx_json_copy_string(char *dst, size_t cap, const sx_json_value *v);

yajl_gen sx_json_gen_new(void);
void sx_json_str(yajl_gen g, const char *s);
void sx_json_strn(yajl_gen g, const char *s, size_t len);
/* "key": "value" (or null when value is NULL). */
void sx_json_kv(yajl_gen g, const char *key, const char *value);
/* The calling loop thread's own generator (no allocation per request); finish it in the same
 * handler call with sx_json_gen_thread_finish(), which copies into pool and resets it. Never for
 * output holding values or tokens (its buffer is reused, not wiped). */
yajl_gen sx_json_gen_thread(void);
h2o_iovec_t sx_json_gen_thread_finish(yajl_gen g, h2o_mem_pool_t *pool);
/* Copy the generated text into pool and free g. */
h2o_iovec_t sx_json_gen_finish(yajl_gen g, h2o_mem_pool_t *pool);
/* A generator whose memory is wiped when freed, for output holding values or tokens, and its
 * finish, which copies into request-pool memory that is wiped when the request ends. */
yajl_gen sx_json_gen_wiped(void);
h2o_iovec_t sx_json_gen_finish_wiped(yajl_gen g, h2o_mem_pool_t *pool);
/* len + 1 bytes of request-pool memory, wiped when the request ends. */
char *sx_pool_alloc_wiped(h2o_mem_pool_t *pool, size_t len);
/* JSON string escaping for output written straight into a buffer, without the quotes: the quote,
 * the backslash and control characters (\n \r \t \b \f short, others \u00XX with upper_hex or
 * \u00xx); every other byte is copied as it is (the input is UTF-8 that was checked on the way
 * in). sx_json_escape writes exactly sx_json_escaped_len(s, len) bytes (at most 6 * len) to out.
 * With upper_hex the output is byte for byte what a yajl generator writes for the same string. */
size_t sx_json_escaped_len(const char *s, size_t len);
size_t sx_json_escape(char *out, const char *s, size_t len, bool upper_hex);

#endif /* SX_SERVER_JSON_H */
