/*
 * envmap.c - an environment's values for `export` and `run` (see envmap.h): the values map parsed
 * with yajl's event parser (which hands strings over with their length, so a value with a NUL byte
 * is seen, not cut short), --only and --prefix, the environment-name rules, the three output
 * formats and the 0600 file written by rename.
 *
 * yajl decodes strings into buffers of its own; it is given allocation functions that wipe every
 * block before it is freed or moved, so no value is left behind in freed memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

#include "ctl/envmap.h"

/* ---- parsing ---------------------------------------------------------------------------------------- */

static void *wipe_malloc(void *ctx, size_t sz)
{
    (void)ctx;
    return malloc(sz);
}

static void wipe_free(void *ctx, void *p)
{
    (void)ctx;
    if (p) {
        sodium_memzero(p, malloc_usable_size(p));
        free(p);
    }
}

static void *wipe_realloc(void *ctx, void *p, size_t sz)
{
    (void)ctx;
    void *n = malloc(sz);
    if (!n)
        return NULL;
    if (p) {
        size_t old = malloc_usable_size(p);
        memcpy(n, p, old < sz ? old : sz);
        wipe_free(ctx, p);
    }
    return n;
}

typedef struct parse_ctx {
    ctl_envmap *m;
    int depth;
    bool lenient; /* members that are not strings are left out */
    bool bad;
} parse_ctx;

static char *dup_bytes(const unsigned char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

static int on_map_start(void *ud)
{
    parse_ctx *c = ud;
    if (++c->depth > 1)
        c->bad = true;
    return !c->bad;
}

static int on_map_end(void *ud)
{
    parse_ctx *c = ud;
    c->depth--;
    return 1;
}

static int on_key(void *ud, const unsigned char *k, size_t n)
{
    parse_ctx *c = ud;
    ctl_envmap *m = c->m;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        ctl_var *nv = realloc(m->vars, cap * sizeof(*nv));
        if (!nv)
            return 0;
        m->vars = nv;
        m->cap = cap;
    }
    ctl_var *v = &m->vars[m->n];
    memset(v, 0, sizeof(*v));
    v->name = dup_bytes(k, n);
    if (!v->name || memchr(k, '\0', n))
        c->bad = true;
    m->n++;
    return !c->bad;
}

static int on_string(void *ud, const unsigned char *s, size_t n)
{
    parse_ctx *c = ud;
    if (c->depth != 1 || c->m->n == 0 || c->m->vars[c->m->n - 1].value) {
        c->bad = true;
        return 0;
    }
    ctl_var *v = &c->m->vars[c->m->n - 1];
    v->value = dup_bytes(s, n);
    v->value_len = n;
    return v->value != NULL;
}

static int on_other(void *ud)
{
    parse_ctx *c = ud;
    ctl_envmap *m = c->m;
    if (c->lenient && c->depth == 1 && m->n > 0 && !m->vars[m->n - 1].value) {
        free(m->vars[m->n - 1].name);
        m->n--;
        return 1;
    }
    c->bad = true;
    return 0;
}

static int on_bool(void *ud, int b)
{
    (void)b;
    return on_other(ud);
}

static int on_number(void *ud, const char *s, size_t n)
{
    (void)s;
    (void)n;
    return on_other(ud);
}

int ctl_envmap_parse(const char *json, size_t len, bool lenient, ctl_envmap *ret)
{
    static const yajl_callbacks cb = {
        .yajl_null = on_other,
        .yajl_boolean = on_bool,
        .yajl_number = on_number,
        .yajl_string = on_string,
        .yajl_start_map = on_map_start,
        .yajl_map_key = on_key,
        .yajl_end_map = on_map_end,
        .yajl_start_array = on_other,
        .yajl_end_array = on_other,
    };
    yajl_alloc_funcs af = {wipe_malloc, wipe_realloc, wipe_free, NULL};
    memset(ret, 0, sizeof(*ret));
    parse_ctx c = {.m = ret, .lenient = lenient};
    yajl_handle h = yajl_alloc(&cb, &af, &c);
    if (!h)
        return -ENOMEM;
    yajl_status st = yajl_parse(h, (const unsigned char *)json, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    yajl_free(h);
    if (st != yajl_status_ok || c.bad || c.depth != 0)
        return -EINVAL;
    for (size_t i = 0; i < ret->n; i++)
        if (!ret->vars[i].value)
            return -EINVAL;
    return 0;
}

static void var_free(ctl_var *v)
{
    free(v->name);
    if (v->value) {
        sodium_memzero(v->value, v->value_len);
        free(v->value);
    }
    memset(v, 0, sizeof(*v));
}

void ctl_envmap_free(ctl_envmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        var_free(&m->vars[i]);
    free(m->vars);
    memset(m, 0, sizeof(*m));
}

/* ---- selecting ---------------------------------------------------------------------------------- */

/* True when name is one of the comma-separated list. */
static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        if (l == n && memcmp(p, name, n) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

static bool present(const ctl_envmap *m, const char *name, size_t n)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->vars[i].name) == n && memcmp(m->vars[i].name, name, n) == 0)
            return true;
    return false;
}

int ctl_envmap_select(ctl_envmap *m, const char *only, const char *prefix)
{
    if (only) {
        bool missing = false;
        for (const char *p = only; *p;) {
            const char *comma = strchr(p, ',');
            size_t l = comma ? (size_t)(comma - p) : strlen(p);
            if (l > 0 && !present(m, p, l)) {
                fprintf(stderr, "%s\"%.*s\"", missing ? ", " : "secretsctl: no value for ", (int)l, p);
                missing = true;
            }
            if (!comma)
                break;
            p = comma + 1;
        }
        if (missing) {
            fprintf(stderr, " (named by --only)\n");
            return -ENOENT;
        }
        size_t k = 0;
        for (size_t i = 0; i < m->n; i++) {
            if (listed(only, m->vars[i].name))
                m->vars[k++] = m->vars[i];
            else
                var_free(&m->vars[i]);
        }
        m->n = k;
    }
    if (prefix && *prefix) {
        size_t pl = strlen(prefix);
        for (size_t i = 0; i < m->n; i++) {
            size_t nl = strlen(m->vars[i].name);
            char *nn = malloc(pl + nl + 1);
            if (!nn)
                return -ENOMEM;
            memcpy(nn, prefix, pl);
            memcpy(nn + pl, m->vars[i].name, nl + 1);
            free(m->vars[i].name);
            m->vars[i].name = nn;
        }
    }
    return 0;
}

bool ctl_env_name_ok(const char *name)
{
    if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return false;
    for (const char *p = name + 1; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

int ctl_envmap_check_env(ctl_envmap *m, bool skip, const char *what)
{
    size_t bad = 0, k = 0;
    for (size_t i = 0; i < m->n; i++) {
        ctl_var *v = &m->vars[i];
        bool name_ok = ctl_env_name_ok(v->name), value_ok = memchr(v->value, '\0', v->value_len) == NULL;
        if (name_ok && value_ok) {
            m->vars[k++] = *v;
            continue;
        }
        if (bad == 0)
            fprintf(stderr,
                    "secretsctl: %s %s these secrets: an environment variable needs a name of "
                    "[A-Za-z_][A-Za-z0-9_]* and a value without NUL bytes:\n",
                    what, skip ? "skips" : "refuses");
        fprintf(stderr, "  %s (%s)\n", v->name, !name_ok ? "not a valid name" : "the value holds a NUL byte");
        bad++;
        if (skip)
            var_free(v);
        else
            m->vars[k++] = *v;
    }
    m->n = k;
    if (bad && !skip) {
        fprintf(stderr, "secretsctl: rename them, narrow with --only, or give --skip-invalid to leave them out\n");
        return -EINVAL;
    }
    return 0;
}

/* ---- formats ------------------------------------------------------------------------------------- */

int ctl_format_parse(const char *s, ctl_format *ret)
{
    if (strcmp(s, "dotenv") == 0)
        *ret = CTL_FORMAT_DOTENV;
    else if (strcmp(s, "shell") == 0)
        *ret = CTL_FORMAT_SHELL;
    else if (strcmp(s, "json") == 0)
        *ret = CTL_FORMAT_JSON;
    else
        return -EINVAL;
    return 0;
}

/* 'value' with every ' written as '\'' : POSIX single quotes take every other byte as it is. */
static void add_single_quoted(ctl_text *out, const char *v, size_t n)
{
    ctl_text_add(out, "'", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\'') {
            ctl_text_add(out, v + start, i - start);
            ctl_text_add(out, "'\\''", 4);
            start = i + 1;
        }
    }
    ctl_text_add(out, v + start, n - start);
    ctl_text_add(out, "'", 1);
}

void ctl_text_add_json_string(ctl_text *out, const char *v, size_t n)
{
    ctl_text_add(out, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7f)
            continue;
        ctl_text_add(out, v + start, i - start);
        char esc[8];
        switch (ch) {
        case '"':
            ctl_text_add(out, "\\\"", 2);
            break;
        case '\\':
            ctl_text_add(out, "\\\\", 2);
            break;
        case '\n':
            ctl_text_add(out, "\\n", 2);
            break;
        case '\r':
            ctl_text_add(out, "\\r", 2);
            break;
        case '\t':
            ctl_text_add(out, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", ch);
            ctl_text_add(out, esc, 6);
            break;
        }
        start = i + 1;
    }
    ctl_text_add(out, v + start, n - start);
    ctl_text_add(out, "\"", 1);
}

void ctl_envmap_format(const ctl_envmap *m, ctl_format f, ctl_text *out)
{
    if (f == CTL_FORMAT_JSON) {
        ctl_text_add(out, "{", 1);
        for (size_t i = 0; i < m->n; i++) {
            if (i)
                ctl_text_add(out, ",", 1);
            ctl_text_add_json_string(out, m->vars[i].name, strlen(m->vars[i].name));
            ctl_text_add(out, ":", 1);
            ctl_text_add_json_string(out, m->vars[i].value, m->vars[i].value_len);
        }
        ctl_text_add(out, "}\n", 2);
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (f == CTL_FORMAT_SHELL)
            ctl_text_add(out, "export ", 7);
        ctl_text_add(out, m->vars[i].name, strlen(m->vars[i].name));
        ctl_text_add(out, "=", 1);
        add_single_quoted(out, m->vars[i].value, m->vars[i].value_len);
        ctl_text_add(out, "\n", 1);
    }
}

/* ---- files ------------------------------------------------------------------------------------------ */

int ctl_write_private_file(const char *path, const void *data, size_t len)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    const char *dir = dirname(copy);
    size_t tl = strlen(path) + 16;
    char *tmp = malloc(tl);
    if (!tmp) {
        free(copy);
        return -ENOMEM;
    }
    snprintf(tmp, tl, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t k = write(fd, p + done, len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            break;
        }
        done += (size_t)k;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
out:
    free(tmp);
    free(copy);
    return rc;
}
