/*
 * json.c - strict parsing of request bodies (yajl's event parser) and JSON output helpers.
 *
 * Request bodies are small flat objects. The parser accepts exactly one JSON object whose keys
 * are all known, each at most once, each with a value of an allowed type; it refuses anything
 * else with a message that names the field: unknown and duplicate keys, wrong types, nesting
 * deeper than SX_JSON_MAX_DEPTH, invalid UTF-8 (checked strictly here, since yajl lets overlong
 * forms and surrogates through), unpaired surrogate escapes, trailing garbage. The whole body is
 * parsed before a broken rule is reported, so a body that is not JSON is always SX_JSON_EINVALID
 * (invalid_json) and only a well-formed one that breaks a rule is SX_JSON_ERULE (invalid_request).
 * Strings are copied into the request pool (yajl's are transient); the caller wipes a secret
 * value with sx_json_wipe() once it is encrypted.
 */
#include "server/json.h"

#include <h2o/string_.h>

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_parse.h>

#define SX_JSON_MAX_DEPTH 16

typedef struct parse_ctx {
    h2o_mem_pool_t *pool;
    const sx_json_field *fields;
    size_t nfields;
    sx_json_value *out;
    int depth;
    int field;      /* index of the field whose value comes next, -1 none */
    int members_of; /* index of the SX_JSON_MEMBERS (ITEMS) field whose object (array) is open (depth 2), -1 none */
    bool items;     /* members_of's is an SX_JSON_ITEMS array: its values come without keys */
    size_t members_cap;
    char *member_key; /* the key of the member whose value comes next (request pool), NULL none */
    size_t member_key_len;
    bool top_seen;
    char *err;
    size_t errlen;
    bool failed; /* a rule is broken (err says which); the rest is only checked for syntax */
} parse_ctx;

/* Quote a client-supplied key into the message only when it is short and plain. */
static void name_key(char *buf, size_t cap, const unsigned char *key, size_t len)
{
    bool plain = len > 0 && len <= 64;
    for (size_t i = 0; plain && i < len; i++)
        if (key[i] < 0x20 || key[i] >= 0x7f || key[i] == '"' || key[i] == '\\')
            plain = false;
    if (plain)
        snprintf(buf, cap, "\"%.*s\"", (int)len, (const char *)key);
    else
        snprintf(buf, cap, "(unprintable)");
}

/* Record the first broken rule and go on: the parse continues to the end so that a body that is
 * not JSON at all is reported as such even when its first bytes already break a rule. */
static int fail(parse_ctx *c, const char *fmt, const char *arg)
{
    snprintf(c->err, c->errlen, fmt, arg);
    c->failed = true;
    return 1;
}

/* A member of an SX_JSON_MEMBERS field's object: a scalar, kept under the key cb_map_key saw. */
static int on_member(parse_ctx *c, unsigned type, const unsigned char *s, size_t len)
{
    const sx_json_field *f = &c->fields[c->members_of];
    sx_json_value *v = &c->out[c->members_of];
    if (type == SX_JSON_OBJECT || type == SX_JSON_ARRAY || (!c->items && !c->member_key)) {
        snprintf(c->err, c->errlen, "field \"%s\" must be %s", f->name, f->type_desc);
        c->failed = true;
        return 1;
    }
    if (v->nmembers == c->members_cap) {
        size_t cap = c->members_cap ? c->members_cap * 2 : 16;
        sx_json_member *nm = h2o_mem_alloc_pool(c->pool, cap * sizeof(*nm));
        if (v->nmembers)
            memcpy(nm, v->members, v->nmembers * sizeof(*nm));
        v->members = nm;
        c->members_cap = cap;
    }
    sx_json_member *m = &v->members[v->nmembers++];
    memset(m, 0, sizeof(*m));
    m->key = c->member_key;
    m->key_len = c->member_key_len;
    m->type = type;
    if (type == SX_JSON_STRING || type == SX_JSON_NUMBER) {
        m->str = h2o_mem_alloc_pool(c->pool, len + 1);
        memcpy(m->str, s, len);
        m->str[len] = '\0';
        m->len = len;
    } else if (type == SX_JSON_BOOL) {
        m->boolean = len != 0;
    }
    c->member_key = NULL;
    return 1;
}

/* A scalar or container value starts; check it against the expected field. */
static int on_value(parse_ctx *c, unsigned type, const unsigned char *s, size_t len)
{
    if (c->failed)
        return 1;
    if (c->depth == 0) {
        /* A top-level scalar or array. */
        return fail(c, "%s", "the body must be a JSON object");
    }
    if (c->depth == 2 && c->members_of >= 0)
        return on_member(c, type, s, len);
    if (c->depth > 1) {
        if (type == SX_JSON_OBJECT || type == SX_JSON_ARRAY) {
            if (c->depth >= SX_JSON_MAX_DEPTH)
                return fail(c, "%s", "the body nests deeper than 16 levels");
        }
        return 1; /* inside a value already refused below (never reached: see on_map_key) */
    }
    if (c->field < 0)
        return fail(c, "%s", "the body is not a flat JSON object");
    const sx_json_field *f = &c->fields[c->field];
    if ((type == SX_JSON_OBJECT && (f->types & SX_JSON_MEMBERS)) ||
        (type == SX_JSON_ARRAY && (f->types & SX_JSON_ITEMS))) {
        c->members_of = c->field; /* the members follow (cb_map_key, on_member) */
        c->items = type == SX_JSON_ARRAY;
        c->members_cap = 0;
        c->out[c->field].present = true;
        c->field = -1;
        return 1;
    }
    if (!(f->types & type)) {
        snprintf(c->err, c->errlen, "field \"%s\" must be %s", f->name, f->type_desc);
        c->failed = true;
        return 1;
    }
    sx_json_value *v = &c->out[c->field];
    v->present = true;
    v->is_null = type == SX_JSON_NULL;
    if (type == SX_JSON_STRING) {
        v->str = h2o_mem_alloc_pool(c->pool, len + 1);
        memcpy(v->str, s, len);
        v->str[len] = '\0';
        v->len = len;
    } else if (type == SX_JSON_BOOL) {
        v->boolean = len != 0;
    } else if (type == SX_JSON_NUMBER) {
        v->str = h2o_mem_alloc_pool(c->pool, len + 1);
        memcpy(v->str, s, len);
        v->str[len] = '\0';
        v->len = len;
    }
    c->field = -1;
    return 1;
}

static int cb_null(void *ctx)
{
    return on_value(ctx, SX_JSON_NULL, NULL, 0);
}

static int cb_boolean(void *ctx, int b)
{
    return on_value(ctx, SX_JSON_BOOL, NULL, (size_t)(b != 0));
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    return on_value(ctx, SX_JSON_NUMBER, (const unsigned char *)s, len);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    return on_value(ctx, SX_JSON_STRING, s, len);
}

static int cb_start_map(void *ctx)
{
    parse_ctx *c = ctx;
    if (c->failed)
        return 1;
    if (c->depth == 0) {
        if (c->top_seen)
            return fail(c, "%s", "the body must be a single JSON object");
        c->top_seen = true;
        c->depth = 1;
        c->field = -1;
        return 1;
    }
    on_value(c, SX_JSON_OBJECT, NULL, 0);
    c->depth++;
    return 1;
}

static int cb_end_map(void *ctx)
{
    parse_ctx *c = ctx;
    c->depth--;
    if (c->depth == 1)
        c->members_of = -1;
    return 1;
}

static int cb_start_array(void *ctx)
{
    parse_ctx *c = ctx;
    on_value(c, SX_JSON_ARRAY, NULL, 0);
    c->depth++;
    return 1;
}

static int cb_end_array(void *ctx)
{
    parse_ctx *c = ctx;
    c->depth--;
    if (c->depth == 1) {
        c->members_of = -1;
        c->items = false;
    }
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    parse_ctx *c = ctx;
    if (!c->failed && c->depth == 2 && c->members_of >= 0) {
        const sx_json_value *v = &c->out[c->members_of];
        for (size_t i = 0; i < v->nmembers; i++) {
            if (v->members[i].key_len == len && memcmp(v->members[i].key, key, len) == 0) {
                char q[80];
                name_key(q, sizeof(q), key, len);
                snprintf(c->err, c->errlen, "field \"%s\" has the key %s more than once", c->fields[c->members_of].name,
                         q);
                c->failed = true;
                return 1;
            }
        }
        c->member_key = h2o_mem_alloc_pool(c->pool, len + 1);
        memcpy(c->member_key, key, len);
        c->member_key[len] = '\0';
        c->member_key_len = len;
        return 1;
    }
    if (c->failed || c->depth != 1)
        return 1;
    for (size_t i = 0; i < c->nfields; i++) {
        if (strlen(c->fields[i].name) == len && memcmp(c->fields[i].name, key, len) == 0) {
            if (c->out[i].present || c->out[i].seen) {
                snprintf(c->err, c->errlen, "field \"%s\" appears more than once", c->fields[i].name);
                c->failed = true;
                return 1;
            }
            c->out[i].seen = true;
            c->field = (int)i;
            return 1;
        }
    }
    char q[80];
    name_key(q, sizeof(q), key, len);
    return fail(c, "unknown field %s", q);
}

/* Length of the strict UTF-8 sequence at s (1-4), or 0 when it is not one: overlong forms, UTF-16
 * surrogates and code points above U+10FFFF are refused. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* The four hex digits of a \u escape at s; false when there are not four. */
static bool hex4(const unsigned char *s, size_t len, uint32_t *ret)
{
    uint32_t v = 0;
    if (len < 4)
        return false;
    for (size_t i = 0; i < 4; i++) {
        unsigned c = s[i];
        if (c >= '0' && c <= '9')
            v = v * 16 + (c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v = v * 16 + ((c | 0x20) - 'a' + 10);
        else
            return false;
    }
    *ret = v;
    return true;
}

/*
 * yajl checks only the shape of UTF-8 sequences (it lets overlong forms, encoded surrogates and
 * code points above U+10FFFF through), and decodes a \u escape of an unpaired surrogate into such
 * bytes or '?'. Either would store text that is not UTF-8 and later break the JSON we answer with.
 * So the whole body must be strict UTF-8 (RFC 8259 section 8.1), and every surrogate escape must be
 * a high one followed by a low one; NULL or the reason. Syntax errors are left to yajl.
 */
static const char *check_text(const unsigned char *s, size_t len)
{
    bool in_string = false;
    size_t i = 0;
    while (i < len) {
        if (s[i] >= 0x80) {
            size_t n = utf8_seq(s + i, len - i);
            if (n == 0)
                return "the body is not valid UTF-8";
            i += n;
        } else if (s[i] == '"') {
            in_string = !in_string;
            i++;
        } else if (s[i] == '\\' && in_string && i + 1 < len && s[i + 1] < 0x80) {
            uint32_t cp, lo;
            if (s[i + 1] != 'u' || !hex4(s + i + 2, len - i - 2, &cp)) {
                i += 2; /* another escape (\" too): yajl judges it */
            } else if (cp >= 0xd800 && cp <= 0xdbff) {
                if (len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' || !hex4(s + i + 8, len - i - 8, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return "the body has a \\u escape of an unpaired UTF-16 surrogate";
                i += 12;
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return "the body has a \\u escape of an unpaired UTF-16 surrogate";
            } else {
                i += 6;
            }
        } else {
            i++;
        }
    }
    return NULL;
}

static const yajl_callbacks callbacks = {
    cb_null,      cb_boolean, NULL,       NULL,           cb_number,    cb_string,
    cb_start_map, cb_map_key, cb_end_map, cb_start_array, cb_end_array,
};

int sx_json_parse(h2o_mem_pool_t *pool, const char *body, size_t len, const sx_json_field *fields, size_t nfields,
                  sx_json_value *out, char *err, size_t errlen)
{
    memset(out, 0, nfields * sizeof(*out));
    if (len == 0) {
        snprintf(err, errlen, "the body is empty; a JSON object is required");
        return SX_JSON_EINVALID;
    }
    const char *bad = check_text((const unsigned char *)body, len);
    if (bad) {
        snprintf(err, errlen, "%s", bad);
        return SX_JSON_EINVALID;
    }
    parse_ctx c = {.pool = pool,
                   .fields = fields,
                   .nfields = nfields,
                   .out = out,
                   .field = -1,
                   .members_of = -1,
                   .err = err,
                   .errlen = errlen};
    err[0] = '\0';
    yajl_handle h = yajl_alloc(&callbacks, NULL, &c);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)body, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    int rc = 0;
    if (st != yajl_status_ok) {
        /* yajl's own message names no body bytes when verbose is off. */
        unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)body, len);
        const char *m = msg ? (const char *)msg : "parse error";
        size_t ml = strlen(m);
        while (ml > 0 && (m[ml - 1] == '\n' || m[ml - 1] == ' ' || m[ml - 1] == '\r'))
            ml--;
        snprintf(err, errlen, "the body is not valid JSON: %.*s", (int)ml, m);
        if (msg)
            yajl_free_error(h, msg);
        rc = SX_JSON_EINVALID;
    } else if (c.failed) {
        rc = SX_JSON_ERULE;
    } else if (!c.top_seen) {
        snprintf(err, errlen, "the body must be a JSON object");
        rc = SX_JSON_ERULE;
    }
    yajl_free(h);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < nfields; i++) {
        if (fields[i].required && !out[i].present) {
            snprintf(err, errlen, "field \"%s\" is required", fields[i].name);
            return SX_JSON_ERULE;
        }
    }
    return 0;
}

/* ---- output ------------------------------------------------------------------------------------ */

bool sx_json_copy_string(char *dst, size_t cap, const sx_json_value *v)
{
    if (!v->present || v->is_null)
        return true;
    if (v->len >= cap || strlen(v->str) != v->len)
        return false;
    memcpy(dst, v->str, v->len + 1);
    return true;
}

yajl_gen sx_json_gen_new(void)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g)
        yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    return g;
}

void sx_json_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void sx_json_strn(yajl_gen g, const char *s, size_t len)
{
    yajl_gen_string(g, (const unsigned char *)s, len);
}

void sx_json_kv(yajl_gen g, const char *key, const char *value)
{
    sx_json_str(g, key);
    if (value)
        sx_json_str(g, value);
    else
        yajl_gen_null(g);
}

h2o_iovec_t sx_json_gen_finish(yajl_gen g, h2o_mem_pool_t *pool)
{
    const unsigned char *buf;
    size_t len;
    h2o_iovec_t out = {NULL, 0};
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
        out = h2o_strdup(pool, (const char *)buf, len);
    yajl_gen_free(g);
    return out;
}

/* A generator per loop thread, reset after each response instead of allocated per request.
 * Output validation is off: every string reaching it is a name from the restricted alphabet, a
 * timestamp, or text that sx_json_parse() accepted as strict UTF-8 on the way in. */
static __thread yajl_gen thread_gen;
static pthread_key_t thread_gen_key;
static pthread_once_t thread_gen_once = PTHREAD_ONCE_INIT;

static void thread_gen_free(void *g)
{
    yajl_gen_free(g);
}

static void thread_gen_key_init(void)
{
    pthread_key_create(&thread_gen_key, thread_gen_free);
}

yajl_gen sx_json_gen_thread(void)
{
    if (!thread_gen) {
        /* The key's destructor frees the generator when the thread exits. */
        pthread_once(&thread_gen_once, thread_gen_key_init);
        thread_gen = yajl_gen_alloc(NULL);
        pthread_setspecific(thread_gen_key, thread_gen);
    }
    return thread_gen;
}

h2o_iovec_t sx_json_gen_thread_finish(yajl_gen g, h2o_mem_pool_t *pool)
{
    const unsigned char *buf;
    size_t len;
    h2o_iovec_t out = {NULL, 0};
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
        out.base = h2o_mem_alloc_pool(pool, len);
        memcpy(out.base, buf, len);
        out.len = len;
    }
    yajl_gen_clear(g);
    yajl_gen_reset(g, NULL);
    return out;
}

/* ---- string escaping for output written straight into a buffer ---------------------------------- */

static inline bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

/* How many bytes from s can be copied as they are: 8 at a time, until a control character, quote
 * or backslash (word tests: "some byte < 0x20", "some byte == q"; a hit is then located bytewise). */
static size_t plain_run(const unsigned char *s, size_t len)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t hit = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b);
        if (hit & highs)
            break;
    }
    while (i < len && !needs_escape(s[i]))
        i++;
    return i;
}

/* The letter of c's two-byte escape (\n for a newline, ...), or 0 when c is written as \u00XX. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    default:
        return 0;
    }
}

size_t sx_json_escaped_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = len, i = 0;
    while ((i += plain_run(p + i, len - i)) < len)
        n += short_escape(p[i++]) ? 1 : 5;
    return n;
}

size_t sx_json_escape(char *out, const char *s, size_t len, bool upper_hex)
{
    const unsigned char *p = (const unsigned char *)s;
    const char *hex = upper_hex ? "0123456789ABCDEF" : "0123456789abcdef";
    size_t n = 0, i = 0;
    for (;;) {
        size_t run = plain_run(p + i, len - i);
        memcpy(out + n, p + i, run);
        n += run;
        i += run;
        if (i == len)
            return n;
        unsigned char c = p[i++];
        out[n++] = '\\';
        char letter = short_escape(c);
        if (letter) {
            out[n++] = letter;
        } else {
            out[n++] = 'u';
            out[n++] = '0';
            out[n++] = '0';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
}

/* ---- wiped memory, for output holding values or tokens --------------------------------------- */

/* A buffer in the request pool that is wiped when the request ends. */
typedef struct wiped_buf {
    size_t len;
    char data[];
} wiped_buf;

static void wipe_dispose(void *p)
{
    wiped_buf *b = p;
    sodium_memzero(b->data, b->len);
}

char *sx_pool_alloc_wiped(h2o_mem_pool_t *pool, size_t len)
{
    wiped_buf *b = h2o_mem_alloc_shared(pool, sizeof(*b) + len + 1, wipe_dispose);
    b->len = len + 1;
    return b->data;
}

/* yajl allocator that wipes what it frees, for generators that hold plaintext values. */
typedef struct wipe_hdr {
    size_t len;
    max_align_t align[];
} wipe_hdr;

static void *wipe_malloc(void *ctx, size_t sz)
{
    (void)ctx;
    wipe_hdr *h = malloc(sizeof(*h) + sz);
    if (!h)
        return NULL;
    h->len = sz;
    return h->align;
}

static void wipe_free(void *ctx, void *p)
{
    (void)ctx;
    if (!p)
        return;
    wipe_hdr *h = (wipe_hdr *)((char *)p - offsetof(wipe_hdr, align));
    sodium_memzero(p, h->len);
    free(h);
}

static void *wipe_realloc(void *ctx, void *p, size_t sz)
{
    if (!p)
        return wipe_malloc(ctx, sz);
    wipe_hdr *h = (wipe_hdr *)((char *)p - offsetof(wipe_hdr, align));
    void *np = wipe_malloc(ctx, sz);
    if (!np)
        return NULL;
    memcpy(np, p, h->len < sz ? h->len : sz);
    wipe_free(ctx, p);
    return np;
}

static yajl_alloc_funcs wipe_funcs = {wipe_malloc, wipe_realloc, wipe_free, NULL};

h2o_iovec_t sx_json_gen_finish_wiped(yajl_gen g, h2o_mem_pool_t *pool)
{
    const unsigned char *buf;
    size_t len = 0;
    h2o_iovec_t out = {NULL, 0};
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
        out.base = sx_pool_alloc_wiped(pool, len);
        memcpy(out.base, buf, len);
        out.len = len;
    }
    yajl_gen_free(g);
    return out;
}

yajl_gen sx_json_gen_wiped(void)
{
    /* No output validation: values and names were checked as strict UTF-8 on the way in. */
    return yajl_gen_alloc(&wipe_funcs);
}
