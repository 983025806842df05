/*
 * config.c - load, validate and resolve secretsd's INI configuration (see config.h).
 *
 * inih does the tokenising, but we never let it read the file itself: the file is read into memory
 * and handed to ini_parse_stream() one line per call by our own reader. That gives us four things
 * the installed inih cannot promise on its own:
 *
 *  - the line number of every key, whether or not inih was built with INI_HANDLER_LINENO (the
 *    handler simply reads the number of the line the reader handed out last);
 *  - a line longer than inih's buffer is an error, instead of being cut into two "lines";
 *  - leading whitespace is removed before inih sees a line, so inih's multi-line continuation
 *    (INI_ALLOW_MULTILINE, on in Debian's build) never turns an indented line into a second value
 *    of the key above it: a repeated key such as `listen` is seen exactly once per line;
 *  - comments behave the same whatever inih was built with: a line starting with '#' or ';' is a
 *    comment, and so is everything from a '#' or ';' that follows whitespace.
 *
 * This file knows no key by name but for the checks that involve several keys: every `key = value`
 * is looked up in the key table (keys.c), whose row names the parser (parsers.c) and the field of
 * sx_config; the table's defaults are applied, through the same parsers, before the file is read.
 *
 * The reader also checks section headers as they go by, so an unknown section is reported even
 * when it holds no keys. Values are taken literally; a value wrapped in one pair of double quotes
 * loses them (so `""` is an empty value), with no escapes.
 *
 * Parsing stops at the first mistake. Every mistake becomes "FILE:LINE: [section] key: problem";
 * checks that involve several keys run after the whole file was read and name the line of the key
 * that has to change (or 0 when that key was never written).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FILE_BYTES (1024 * 1024) /* a config file larger than this is a mistake */
#define POOL_EXTRA     20            /* [storage] pool_size 0 = threads + this many connections */

typedef struct load_ctx {
    sx_config *cfg;
    const char *file; /* as given, for messages */
    const char *buf;  /* the whole file */
    size_t len, pos;
    int lineno;                   /* the line most recently handed to inih */
    int seen[SX_CONFIG_MAX_KEYS]; /* line where each key of the table was first set; 0 = never */
    int err;                      /* first mistake (negative errno); 0 = none yet */
    char *msg;
    size_t msglen;
} load_ctx;

/* Record the first mistake as "FILE:LINE: ..."; later ones are dropped (parsing stops anyway). */
__attribute__((format(printf, 4, 5))) static void fail(load_ctx *c, int err, int line, const char *fmt, ...)
{
    if (c->err)
        return;
    c->err = err;
    if (!c->msg || !c->msglen)
        return;
    int n = snprintf(c->msg, c->msglen, "%s:%d: ", c->file, line);
    if (n < 0 || (size_t)n >= c->msglen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg + n, c->msglen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* The line where [section] name was first set, 0 when the file does not set it. */
static int line_of(const load_ctx *c, const char *section, const char *name)
{
    const sx_config_item *item = sx_config_item_find(section, name);
    return item ? c->seen[item - sx_config_items] : 0;
}

/* ---- the handler: one key = value line ---- */

/* inih calls this for every key line. Its signature follows the installed ini.h; the line number
 * comes from the reader either way. Mistakes are recorded in c and the reader then stops, so this
 * always returns 1 (inih's own error count stays for syntax it alone rejects). */
#if INI_HANDLER_LINENO
static int on_key(void *user, const char *section, const char *name, const char *value, int lineno)
#else
static int on_key(void *user, const char *section, const char *name, const char *value)
#endif
{
    load_ctx *c = user;
    int line = c->lineno; /* the reader hands out one line at a time, so this is the key's line */
    if (c->err)
        return 1;
    if (!*section) {
        fail(c, -EINVAL, line, "key '%.100s' is outside any section", name);
        return 1;
    }
    const sx_config_item *item = sx_config_item_find(section, name);
    if (!item) {
        fail(c, -EINVAL, line, "unknown key '%.100s' in [%s]", name, section);
        return 1;
    }
    int *seen = &c->seen[item - sx_config_items];
    if (*seen && !item->key.repeatable) {
        fail(c, -EINVAL, line, "[%s] %s: set twice (first on line %d)", section, name, *seen);
        return 1;
    }
    if (!*seen)
        *seen = line;

    /* One pair of surrounding double quotes is dropped: `key = ""` is an empty value. */
    char buf[512];
    size_t vlen = strlen(value ? value : "");
    if (value && vlen >= 2 && vlen < sizeof buf && value[0] == '"' && value[vlen - 1] == '"') {
        memcpy(buf, value + 1, vlen - 2);
        buf[vlen - 2] = '\0';
        value = buf;
    }
    char why[SX_CONFIG_WHY_LEN];
    int r = item->parse(item, value ? value : "", c->cfg, line, why);
    if (r == -ENOMEM)
        fail(c, r, line, "out of memory");
    else if (r < 0)
        fail(c, r, line, "[%s] %s: %s", section, name, why);
    return 1;
}

/* ---- the reader: one whole, cleaned-up line per call (see the top of the file) ---- */

static char *read_line(char *str, int num, void *stream)
{
    load_ctx *c = stream;
    if (c->err || c->pos >= c->len || num < 2)
        return NULL;
    const char *p = c->buf + c->pos;
    const char *nl = memchr(p, '\n', c->len - c->pos);
    size_t len = nl ? (size_t)(nl - p) : c->len - c->pos;
    c->pos += len + (nl ? 1 : 0);
    int line = ++c->lineno;

    if (line == 1 && len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3; /* UTF-8 byte order mark */
        len -= 3;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch < 0x20 && ch != '\t' && !(ch == '\r' && i == len - 1)) || ch == 0x7f) {
            fail(c, -EINVAL, line, "control character (byte 0x%02x) in line", ch);
            return NULL;
        }
    }
    /* Indentation, comments and trailing blanks go. */
    while (len && (*p == ' ' || *p == '\t'))
        p++, len--;
    if (len && (*p == '#' || *p == ';'))
        len = 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] == '#' || p[i] == ';') && (p[i - 1] == ' ' || p[i - 1] == '\t')) {
            len = i;
            break;
        }
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
        len--;

    if (len && *p == '[') {
        /* "[ name ]" becomes "[name]"; the name must be one we know. */
        const char *close = memchr(p, ']', len);
        if (!close || close != p + len - 1) {
            fail(c, -EINVAL, line, "expected '[section]', got '%.*s'", (int)(len > 100 ? 100 : len), p);
            return NULL;
        }
        const char *s = p + 1;
        size_t slen = (size_t)(close - s);
        while (slen && (*s == ' ' || *s == '\t'))
            s++, slen--;
        while (slen && (s[slen - 1] == ' ' || s[slen - 1] == '\t'))
            slen--;
        if (!sx_config_section_known(s, slen)) {
            fail(c, -EINVAL, line, "unknown section [%.*s]", (int)(slen > 100 ? 100 : slen), s);
            return NULL;
        }
        snprintf(str, (size_t)num, "[%.*s]\n", (int)slen, s);
        return str;
    }
    if (len) {
        const char *eq = memchr(p, '=', len), *colon = memchr(p, ':', len);
        if (!eq || eq == p || (colon && colon < eq)) {
            fail(c, -EINVAL, line, "expected 'key = value' or '[section]', got '%.*s'", (int)(len > 100 ? 100 : len),
                 p);
            return NULL;
        }
    }
    if (len + 2 > (size_t)num) {
        fail(c, -EINVAL, line, "line too long (at most %d characters without comments)", num - 2);
        return NULL;
    }
    memcpy(str, p, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    return str;
}

/* ---- loading ---- */

/* Read the whole file into *ret (NUL-terminated, malloc'd). */
static int slurp(load_ctx *c, const char *path, char **ret, size_t *ret_len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        fail(c, -e, 0, "cannot read config file: %s", strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        fail(c, -EINVAL, 0, "cannot read config file: not a regular file");
        return -EINVAL;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        fclose(f);
        fail(c, -EINVAL, 0, "config file is larger than %d bytes", MAX_FILE_BYTES);
        return -EINVAL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        fail(c, -ENOMEM, 0, "out of memory");
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    int e = ferror(f) ? EIO : 0;
    fclose(f);
    if (e) {
        free(buf);
        fail(c, -e, 0, "cannot read config file: %s", strerror(e));
        return -e;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        fail(c, -EINVAL, 0, "config file contains a NUL byte");
        return -EINVAL;
    }
    *ret = buf;
    *ret_len = n;
    return 0;
}

/* The absolute folder holding path (symlinks in the folder resolved; the file itself may be one). */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return realpath(".", NULL);
    if (slash == path)
        return strdup("/");
    char *d = strndup(path, (size_t)(slash - path));
    if (!d)
        return NULL;
    char *abs = realpath(d, NULL);
    free(d);
    return abs;
}

/* item's default from the table, parsed like a value in the file on line 0. */
static void apply_default(load_ctx *c, const sx_config_item *item)
{
    char why[SX_CONFIG_WHY_LEN];
    int r = item->parse(item, item->key.dflt, c->cfg, 0, why);
    if (r == -ENOMEM)
        fail(c, r, 0, "out of memory");
    else if (r < 0)
        fail(c, r, 0, "[%s] %s: the built-in default: %s", item->key.section, item->key.name, why);
}

/* Before the file is read, every key that has a default gets it; a repeatable key's default is
 * applied after the file instead, and only when the file gave none (check_all()). */
static void apply_defaults(load_ctx *c)
{
    for (size_t i = 0; i < sx_config_n_items && !c->err; i++)
        if (sx_config_items[i].key.dflt && !sx_config_items[i].key.repeatable)
            apply_default(c, &sx_config_items[i]);
}

static const char *fmt_listen(const sx_config_listen *l, char *buf, size_t len)
{
    bool v6 = strchr(l->host, ':') != NULL;
    snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", l->host, v6 ? "]" : "", (unsigned)l->port);
    return buf;
}

/* Checks that involve more than one key, after the whole file was read. */
static void check_all(load_ctx *c)
{
    sx_config *cfg = c->cfg;
    char a[300];

    if (cfg->n_proxy_listen && !cfg->n_trusted_proxies) {
        fail(c, -EINVAL, cfg->proxy_listen[0].line,
             "[server] proxy_listen: needs [server] trusted_proxies (the proxies allowed to send a PROXY header)");
        return;
    }
    if (cfg->n_listen == 0 && cfg->n_tls_listen == 0 && cfg->n_proxy_listen == 0) {
        apply_default(c, sx_config_item_find("server", "listen")); /* no listener at all: line 0 */
        if (c->err)
            return;
    }
    if (cfg->n_tls_listen && (!*cfg->tls_cert || !*cfg->tls_key)) {
        bool both = !*cfg->tls_cert && !*cfg->tls_key;
        fail(c, -EINVAL, cfg->tls_listen[0].line, "[tls] listen: needs [tls] %s",
             both              ? "cert and key"
             : !*cfg->tls_cert ? "cert"
                               : "key");
        return;
    }
    if (cfg->backend == SX_CONFIG_BACKEND_POSTGRES && !*cfg->storage_dsn) {
        fail(c, -EINVAL, line_of(c, "storage", "backend"), "[storage] backend = postgres needs [storage] dsn");
        return;
    }
    if (cfg->backend != SX_CONFIG_BACKEND_POSTGRES && *cfg->storage_dsn) {
        fail(c, -EINVAL, line_of(c, "storage", "dsn"), "[storage] dsn: only used with backend = postgres");
        return;
    }
    if (*cfg->seal_credential && cfg->seal == SX_CONFIG_SEAL_TPM) {
        fail(c, -EINVAL, line_of(c, "seal", "credential"),
             "[seal] credential: only for type = file (the key) or passphrase (the passphrase); a tpm seal has no "
             "secret to load");
        return;
    }
    if (cfg->max_value_bytes >= cfg->max_body_bytes) {
        int line = line_of(c, "server", "max_value_bytes");
        if (!line)
            line = line_of(c, "server", "max_body_bytes");
        fail(c, -EINVAL, line, "[server] max_value_bytes (%zu) must be less than max_body_bytes (%zu)",
             cfg->max_value_bytes, cfg->max_body_bytes);
        return;
    }
    size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    if (strlen(cfg->admin_socket) > sun_max) {
        fail(c, -EINVAL, line_of(c, "server", "admin_socket"),
             "[server] admin_socket: the absolute path is %zu bytes, a Unix socket allows at most %zu",
             strlen(cfg->admin_socket), sun_max);
        return;
    }
    /* The same address twice (port 0 excepted: every ephemeral listener gets its own port). */
    size_t n = cfg->n_listen + cfg->n_tls_listen;
    for (size_t i = 0; i < n; i++) {
        const sx_config_listen *li = i < cfg->n_listen ? &cfg->listen[i] : &cfg->tls_listen[i - cfg->n_listen];
        for (size_t j = 0; j < i && li->port; j++) {
            const sx_config_listen *lj = j < cfg->n_listen ? &cfg->listen[j] : &cfg->tls_listen[j - cfg->n_listen];
            if (lj->port == li->port && strcmp(lj->host, li->host) == 0) {
                fail(c, -EINVAL, li->line, "[%s] listen: %s is already configured on line %d",
                     i < cfg->n_listen ? "server" : "tls", fmt_listen(li, a, sizeof a), lj->line);
                return;
            }
        }
    }
    if (cfg->threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = cpus < 1 ? 1 : cpus > SX_CONFIG_THREADS_MAX ? SX_CONFIG_THREADS_MAX : (unsigned)cpus;
    }
    /* Resolved here, once, for every user of the configuration (the storage layer's own default
     * for 0 is another, smaller number). */
    if (cfg->storage_pool_size == 0)
        cfg->storage_pool_size = cfg->threads + POOL_EXTRA;
}

int sx_config_load(const char *path, sx_config **ret, char *err, size_t errlen)
{
    load_ctx c = {.file = path ? path : "(null)", .msg = err, .msglen = errlen};
    char *buf = NULL;
    int r;

    if (err && errlen)
        err[0] = '\0';
    if (!path || !ret) {
        fail(&c, -EINVAL, 0, "no config file given");
        return -EINVAL;
    }
    if ((r = slurp(&c, path, &buf, &c.len)) < 0)
        return r;
    c.buf = buf;
    c.cfg = calloc(1, sizeof *c.cfg);
    if (!c.cfg || !(c.cfg->path = strdup(path)) || !(c.cfg->dir = folder_of(path))) {
        fail(&c, -ENOMEM, 0, "out of memory");
        goto out;
    }
    apply_defaults(&c);
    if (c.err)
        goto out;
    r = ini_parse_stream(read_line, &c, on_key, &c);
    if (r == -2)
        fail(&c, -ENOMEM, 0, "out of memory");
    else if (r > 0)
        fail(&c, -EINVAL, r, "expected 'key = value' or '[section]'"); /* inih found what we let through */
    if (!c.err)
        check_all(&c);
out:
    free(buf);
    if (c.err) {
        sx_config_free(c.cfg);
        return c.err;
    }
    *ret = c.cfg;
    return 0;
}

static void free_listen(sx_config_listen *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i].host);
    free(l);
}

void sx_config_free(sx_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->dir);
    free_listen(cfg->listen, cfg->n_listen);
    free(cfg->admin_socket);
    free_listen(cfg->tls_listen, cfg->n_tls_listen);
    free_listen(cfg->metrics_listen, cfg->n_metrics_listen);
    free_listen(cfg->proxy_listen, cfg->n_proxy_listen);
    free(cfg->trusted_proxies);
    free(cfg->vault_mounts);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->storage_path);
    free(cfg->storage_dsn);
    free(cfg->storage_password_env);
    free(cfg->storage_password_file);
    free(cfg->seal_key_file);
    free(cfg->seal_recovery_key_file);
    free(cfg->seal_passphrase_env);
    free(cfg->seal_credential);
    free(cfg->seal_tcti);
    free(cfg->seal_pin_env);
    free(cfg->access_log);
    free(cfg->audit_log);
    free(cfg->node_id);
    free(cfg);
}
