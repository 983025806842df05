/*
 * api.h - the secrets API inside the server module: strict JSON bodies, the metadata record, and
 * the handlers of the secret and admin routes. Internal to server/.
 */
#ifndef SX_SERVER_API_H
#define SX_SERVER_API_H

#include <yajl/yajl_gen.h>

#include "server/server_internal.h"

/* ---- strict JSON bodies (json.c) --------------------------------------------------------------- */

#define SX_JSON_STRING (1u << 0)
#define SX_JSON_NULL   (1u << 1)
#define SX_JSON_BOOL   (1u << 2)
#define SX_JSON_NUMBER (1u << 3)
#define SX_JSON_OBJECT (1u << 4)
#define SX_JSON_ARRAY  (1u << 5)

/* Parse errors: SX_JSON_EINVALID and SX_JSON_ERULE (common/errors.h). */

typedef struct sx_json_field {
    const char *name;
    unsigned types;        /* SX_JSON_* accepted */
    const char *type_desc; /* "a string", "a string or null" - for the error message */
    bool required;
} sx_json_field;

typedef struct sx_json_value {
    bool seen;
    bool present;
    bool is_null;
    bool boolean;
    char *str; /* strings and numbers: a NUL-terminated copy in the request pool */
    size_t len;
} sx_json_value;

/* Parse body as one flat object of the given fields into out[nfields]. 0, SX_JSON_EINVALID or
 * SX_JSON_ERULE with a message naming the field in err. */
int sx_json_parse(h2o_mem_pool_t *pool, const char *body, size_t len, const sx_json_field *fields, size_t nfields,
                  sx_json_value *out, char *err, size_t errlen);

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

/* ---- the metadata record m/{o}/{p}/{env}/{name} (record.c) -------------------------------------- */

#define SX_DESCRIPTION_MAX 1024

typedef struct sx_secret_meta {
    int64_t created_ms;
    int64_t updated_ms;
    bool has_value;
    bool has_description; /* false = null */
    size_t description_len;
    char description[SX_DESCRIPTION_MAX + 1];
} sx_secret_meta;

/* Encode into buf (at least SX_META_MAX bytes); returns the length. */
#define SX_META_MAX (20 + SX_DESCRIPTION_MAX)
size_t sx_meta_encode(const sx_secret_meta *m, uint8_t *buf);
/* Decode; -EBADMSG when malformed. */
int sx_meta_decode(sx_secret_meta *m, const uint8_t *buf, size_t len);

/* The same record decoded in place: description points into buf (not NUL-terminated) and is
 * valid as long as buf is. For scans, where copying every description would be wasted work. */
typedef struct sx_secret_meta_view {
    int64_t created_ms;
    int64_t updated_ms;
    bool has_value;
    bool has_description;
    size_t description_len;
    const char *description;
} sx_secret_meta_view;
int sx_meta_view(sx_secret_meta_view *m, const uint8_t *buf, size_t len);

/* Write a Secret object straight into out, which has room for sx_secret_json_max(namelen,
 * description_len) bytes; returns the bytes written (api.c). */
size_t sx_secret_json_max(size_t namelen, size_t desclen);
size_t sx_secret_json_write(char *out, const char *name, size_t namelen, const sx_secret_meta *m);

/* Storage keys. kind is 'm' (metadata) or 'v' (value). Returns the length written into buf (which
 * must hold SX_KEY_MAX bytes); name may be NULL for the env prefix "m/o/p/env/". */
#define SX_KEY_MAX (2 + 3 * 65 + 257 + 1)
size_t sx_key_build(char *buf, char kind, const char *org, const char *project, const char *env, const char *name);

/* ---- list pages sent again while the store is unchanged (page_cache.c) --------------------------- */

/* What identifies a page: the env's metadata prefix and the query (limit, after). */
#define SX_PAGE_ID_MAX (SX_KEY_MAX + 16 + 257)

/* On this loop thread's cache: the page stored under id at change sequence seq. On a hit, links
 * the page into pool (valid until the request ends) and returns true with its body and its Link
 * header value (len 0 when none); a page stored at another seq is dropped. Loop threads only. */
bool sx_page_cache_get(const char *id, size_t id_len, uint64_t seq, h2o_mem_pool_t *pool, h2o_iovec_t *ret_body,
                       h2o_iovec_t *ret_link);
/* Keep a copy of body and link under id, read at change sequence seq (read before the scan). */
void sx_page_cache_put(const char *id, size_t id_len, uint64_t seq, h2o_iovec_t body, h2o_iovec_t link);

/* ---- handlers (api.c, admin.c) ----------------------------------------------------------------- */

void sx_api_list(sx_request *r);
void sx_api_create(sx_request *r);
void sx_api_get(sx_request *r);
void sx_api_update(sx_request *r);
void sx_api_delete(sx_request *r);
void sx_api_set_value(sx_request *r);
void sx_api_reveal(sx_request *r);
void sx_api_values(sx_request *r);

void sx_admin_token_create(sx_request *r);
void sx_admin_token_list(sx_request *r);
void sx_admin_token_revoke(sx_request *r);

/* Authenticate and authorize perm on the path's scope; copies the path parameters into the
 * caller's buffers (65, 65, 65 and 257 bytes). Sends the error and returns false when denied. */
bool sx_api_authorize(sx_request *r, unsigned perm, char *org, char *project, char *env, char *name);

/* True when the request's Content-Type is application/json (parameters allowed); otherwise sends
 * 415 and returns false. */
bool sx_require_json(sx_request *r);

#endif /* SX_SERVER_API_H */
