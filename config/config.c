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
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FILE_BYTES  (1024 * 1024) /* a config file larger than this is a mistake */
#define MAX_LISTEN      64            /* listeners per section */
#define MAX_TRUSTED     256           /* networks in [server] trusted_proxies */
#define MAX_THREADS     256
#define MAX_BODY_LIMIT  (1024ULL * 1024 * 1024)
#define MAX_CONNS_LIMIT 1048576
#define MAX_DRAIN       3600
#define MAX_TIMEOUT     3600
#define MAX_HDR_LIMIT   (256 * 1024) /* h2o itself buffers at most about 400 KiB of header */
#define MAX_H2_STREAMS  100          /* h2o 2.2.5 advertises and enforces 100 open streams */
#define MAX_FRAME_LIMIT 1000000
#define MAX_POOL_SIZE   1024
#define MAX_START_WAIT  86400
#define DEFAULT_LISTEN  "127.0.0.1"
#define DEFAULT_PORT    8080

enum key_id {
    K_SERVER_LISTEN,
    K_THREADS,
    K_ADMIN_SOCKET,
    K_MAX_BODY,
    K_MAX_VALUE,
    K_DRAIN_TIMEOUT,
    K_MAX_CONNECTIONS,
    K_METRICS_LISTEN,
    K_REQUEST_TIMEOUT,
    K_H2_IDLE_TIMEOUT,
    K_MAX_HEADER,
    K_H2_MAX_CONCURRENT,
    K_H2_MAX_RESETS,
    K_H2_MAX_CONTROL,
    K_TRUSTED_PROXIES,
    K_PROXY_LISTEN,
    K_TLS_LISTEN,
    K_TLS_CERT,
    K_TLS_KEY,
    K_BACKEND,
    K_STORAGE_PATH,
    K_SYNC,
    K_DSN,
    K_DB_PASSWORD_ENV,
    K_DB_PASSWORD_FILE,
    K_POOL_SIZE,
    K_START_TIMEOUT,
    K_SEAL_TYPE,
    K_KEY_FILE,
    K_PASSPHRASE_ENV,
    K_OPSLIMIT,
    K_MEMLIMIT,
    K_TCTI,
    K_PCRS,
    K_RECOVERY_KEY_FILE,
    K_LEVEL,
    K_ACCESS_LOG,
    K_AUDIT_LOG,
    K_AUDIT_POLICY,
    K_LOG_FORMAT,
    N_KEYS
};

/* Indexed by enum key_id. */
static const sx_config_key keys[N_KEYS] = {
    [K_SERVER_LISTEN] = {"server", "listen", true},
    [K_THREADS] = {"server", "threads", false},
    [K_ADMIN_SOCKET] = {"server", "admin_socket", false},
    [K_MAX_BODY] = {"server", "max_body_bytes", false},
    [K_MAX_VALUE] = {"server", "max_value_bytes", false},
    [K_DRAIN_TIMEOUT] = {"server", "drain_timeout", false},
    [K_MAX_CONNECTIONS] = {"server", "max_connections", false},
    [K_METRICS_LISTEN] = {"server", "metrics_listen", false},
    [K_REQUEST_TIMEOUT] = {"server", "request_timeout", false},
    [K_H2_IDLE_TIMEOUT] = {"server", "http2_idle_timeout", false},
    [K_MAX_HEADER] = {"server", "max_header_bytes", false},
    [K_H2_MAX_CONCURRENT] = {"server", "http2_max_concurrent_requests", false},
    [K_H2_MAX_RESETS] = {"server", "http2_max_resets", false},
    [K_H2_MAX_CONTROL] = {"server", "http2_max_control_frames", false},
    [K_TRUSTED_PROXIES] = {"server", "trusted_proxies", true},
    [K_PROXY_LISTEN] = {"server", "proxy_listen", true},
    [K_TLS_LISTEN] = {"tls", "listen", true},
    [K_TLS_CERT] = {"tls", "cert", false},
    [K_TLS_KEY] = {"tls", "key", false},
    [K_BACKEND] = {"storage", "backend", false},
    [K_STORAGE_PATH] = {"storage", "path", false},
    [K_SYNC] = {"storage", "sync", false},
    [K_DSN] = {"storage", "dsn", false},
    [K_DB_PASSWORD_ENV] = {"storage", "password_env", false},
    [K_DB_PASSWORD_FILE] = {"storage", "password_file", false},
    [K_POOL_SIZE] = {"storage", "pool_size", false},
    [K_START_TIMEOUT] = {"storage", "start_timeout", false},
    [K_SEAL_TYPE] = {"seal", "type", false},
    [K_KEY_FILE] = {"seal", "key_file", false},
    [K_PASSPHRASE_ENV] = {"seal", "passphrase_env", false},
    [K_OPSLIMIT] = {"seal", "pwhash_opslimit", false},
    [K_MEMLIMIT] = {"seal", "pwhash_memlimit", false},
    [K_TCTI] = {"seal", "tcti", false},
    [K_PCRS] = {"seal", "pcrs", false},
    [K_RECOVERY_KEY_FILE] = {"seal", "recovery_key_file", false},
    [K_LEVEL] = {"log", "level", false},
    [K_ACCESS_LOG] = {"log", "access_log", false},
    [K_AUDIT_LOG] = {"log", "audit_log", false},
    [K_AUDIT_POLICY] = {"log", "audit_policy", false},
    [K_LOG_FORMAT] = {"log", "format", false},
};

static const char *const sections[] = {"server", "tls", "storage", "seal", "log"};

typedef struct load_ctx {
    sx_config *cfg;
    const char *file; /* as given, for messages */
    const char *buf;  /* the whole file */
    size_t len, pos;
    int lineno;       /* the line most recently handed to inih */
    int seen[N_KEYS]; /* line where each key was first set; 0 = never */
    int err;          /* first mistake (negative errno); 0 = none yet */
    char *msg;
    size_t msglen;
} load_ctx;

const sx_config_key *sx_config_keys(size_t *ret_n)
{
    if (ret_n)
        *ret_n = N_KEYS;
    return keys;
}

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

static void replace(char **slot, char *v)
{
    free(*slot);
    *slot = v;
}

static int add_listen(sx_config_listen **list, size_t *n, char *host, uint16_t port, int line)
{
    sx_config_listen *nl = realloc(*list, (*n + 1) * sizeof **list);
    if (!nl)
        return -ENOMEM;
    nl[*n] = (sx_config_listen){.host = host, .port = port, .line = line};
    *list = nl;
    (*n)++;
    return 0;
}

/* [server] trusted_proxies: networks separated by commas and/or blanks; the key may be repeated. */
static int add_trusted(sx_config *cfg, const char *v, char *why)
{
    const char *p = v;
    bool any = false;
    for (;;) {
        p += strspn(p, ", \t");
        if (!*p)
            break;
        size_t n = strcspn(p, ", \t");
        char item[64];
        sx_config_cidr net;
        if (n >= sizeof item) {
            snprintf(why, SX_CONFIG_WHY_LEN, "'%.40s...' is not an IPv4 or IPv6 network", p);
            return -EINVAL;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        if (sx_config_parse_cidr(item, &net) < 0) {
            snprintf(why, SX_CONFIG_WHY_LEN,
                     "'%s' is not an IPv4 or IPv6 network (ADDRESS or ADDRESS/PREFIX with no bits set past the "
                     "prefix, e.g. 10.0.0.0/8 or fd00::/8)",
                     item);
            return -EINVAL;
        }
        if (cfg->n_trusted_proxies >= MAX_TRUSTED) {
            snprintf(why, SX_CONFIG_WHY_LEN, "at most %d networks", MAX_TRUSTED);
            return -EINVAL;
        }
        sx_config_cidr *nl = realloc(cfg->trusted_proxies, (cfg->n_trusted_proxies + 1) * sizeof *nl);
        if (!nl)
            return -ENOMEM;
        nl[cfg->n_trusted_proxies++] = net;
        cfg->trusted_proxies = nl;
        any = true;
        p += n;
    }
    if (!any) {
        snprintf(why, SX_CONFIG_WHY_LEN, "expected a list of networks, e.g. 10.0.0.0/8, ::1");
        return -EINVAL;
    }
    return 0;
}

/* True when a libpq connection string or URI carries a password, which must come from
 * [storage] password_env or password_file instead. */
static bool dsn_has_password(const char *v)
{
    for (const char *p = v; (p = strstr(p, "password")) != NULL; p += 8) {
        const char *q = p + 8;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '=' && (p == v || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '?' || p[-1] == '&'))
            return true;
    }
    const char *a = strstr(v, "://");
    if (a && (strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0)) {
        a += 3;
        size_t alen = strcspn(a, "/?");
        const char *at = memrchr(a, '@', alen);
        if (at && memchr(a, ':', (size_t)(at - a)))
            return true; /* user:password@host */
    }
    return false;
}

/* ---- the handler: one key = value line ---- */

/* Parse the value of key id into the configuration. 0, -EINVAL (why says what is wrong) or -ENOMEM. */
static int set_key(load_ctx *c, enum key_id id, const char *v, char *why)
{
    sx_config *cfg = c->cfg;
    unsigned long long n;
    char *s = NULL, *host = NULL;
    uint16_t port;
    int r, e;
    bool b;

    switch (id) {
    case K_SERVER_LISTEN:
    case K_TLS_LISTEN: {
        bool tls = id == K_TLS_LISTEN;
        if ((tls ? cfg->n_tls_listen : cfg->n_listen) >= MAX_LISTEN) {
            snprintf(why, SX_CONFIG_WHY_LEN, "at most %d listeners", MAX_LISTEN);
            return -EINVAL;
        }
        if ((r = sx_config_parse_listen(v, &host, &port, why)) < 0)
            return r;
        r = tls ? add_listen(&cfg->tls_listen, &cfg->n_tls_listen, host, port, c->lineno)
                : add_listen(&cfg->listen, &cfg->n_listen, host, port, c->lineno);
        if (r < 0)
            free(host);
        return r;
    }
    case K_PROXY_LISTEN:
        if (cfg->n_proxy_listen >= MAX_LISTEN) {
            snprintf(why, SX_CONFIG_WHY_LEN, "at most %d listeners", MAX_LISTEN);
            return -EINVAL;
        }
        if ((r = sx_config_parse_listen(v, &host, &port, why)) < 0)
            return r;
        if ((r = add_listen(&cfg->proxy_listen, &cfg->n_proxy_listen, host, port, c->lineno)) < 0)
            free(host);
        return r;
    case K_TRUSTED_PROXIES:
        return add_trusted(cfg, v, why);
    case K_METRICS_LISTEN:
        if (!*v) /* empty = no metrics listener */
            return 0;
        if ((r = sx_config_parse_listen(v, &host, &port, why)) < 0)
            return r;
        if ((r = add_listen(&cfg->metrics_listen, &cfg->n_metrics_listen, host, port, c->lineno)) < 0)
            free(host);
        return r;
    case K_AUDIT_POLICY:
        if ((r = sx_config_parse_enum(v, "fail_closed\0fail_open\0", "fail_closed or fail_open", &e, why)) == 0)
            cfg->audit_policy = (sx_config_audit_policy)e;
        return r;
    case K_LOG_FORMAT:
        if ((r = sx_config_parse_enum(v, "text\0json\0", "text or json", &e, why)) == 0)
            cfg->log_format = (sx_config_log_format)e;
        return r;
    case K_THREADS:
        if ((r = sx_config_parse_uint(v, 0, MAX_THREADS, &n, why)) == 0)
            cfg->threads = (unsigned)n;
        return r;
    case K_MAX_BODY:
        if ((r = sx_config_parse_size(v, 1, MAX_BODY_LIMIT, &n, why)) == 0)
            cfg->max_body_bytes = (size_t)n;
        return r;
    case K_MAX_VALUE:
        if ((r = sx_config_parse_size(v, 1, MAX_BODY_LIMIT, &n, why)) == 0)
            cfg->max_value_bytes = (size_t)n;
        return r;
    case K_DRAIN_TIMEOUT:
        if ((r = sx_config_parse_uint(v, 0, MAX_DRAIN, &n, why)) == 0)
            cfg->drain_timeout = (unsigned)n;
        return r;
    case K_MAX_CONNECTIONS:
        if ((r = sx_config_parse_uint(v, 1, MAX_CONNS_LIMIT, &n, why)) == 0)
            cfg->max_connections = (size_t)n;
        return r;
    case K_REQUEST_TIMEOUT:
    case K_H2_IDLE_TIMEOUT:
        if ((r = sx_config_parse_uint(v, 1, MAX_TIMEOUT, &n, why)) < 0)
            return r;
        if (id == K_REQUEST_TIMEOUT)
            cfg->request_timeout = (unsigned)n;
        else
            cfg->http2_idle_timeout = (unsigned)n;
        return 0;
    case K_MAX_HEADER:
        if ((r = sx_config_parse_size(v, 1024, MAX_HDR_LIMIT, &n, why)) == 0)
            cfg->max_header_bytes = (size_t)n;
        return r;
    case K_H2_MAX_CONCURRENT:
        if ((r = sx_config_parse_uint(v, 1, MAX_H2_STREAMS, &n, why)) == 0)
            cfg->http2_max_concurrent_requests = (unsigned)n;
        return r;
    case K_H2_MAX_RESETS:
    case K_H2_MAX_CONTROL:
        if ((r = sx_config_parse_uint(v, 0, MAX_FRAME_LIMIT, &n, why)) < 0)
            return r;
        if (id == K_H2_MAX_RESETS)
            cfg->http2_max_resets = (unsigned)n;
        else
            cfg->http2_max_control_frames = (unsigned)n;
        return 0;
    /* Argon2id below libsodium's INTERACTIVE preset makes an offline guess of the passphrase too
     * cheap for a key that guards every secret. */
    case K_OPSLIMIT:
        if ((r = sx_config_parse_uint(v, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_OPSLIMIT_MAX, &n, why)) < 0)
            return r;
        if (n < crypto_pwhash_OPSLIMIT_INTERACTIVE) {
            snprintf(why, SX_CONFIG_WHY_LEN,
                     "must be at least %llu (libsodium's INTERACTIVE; the default is %llu), got '%.100s'",
                     (unsigned long long)crypto_pwhash_OPSLIMIT_INTERACTIVE,
                     (unsigned long long)crypto_pwhash_OPSLIMIT_MODERATE, v);
            return -EINVAL;
        }
        cfg->seal_pwhash_opslimit = n;
        return 0;
    case K_MEMLIMIT:
        if ((r = sx_config_parse_size(v, crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_MEMLIMIT_MAX, &n, why)) < 0)
            return r;
        if (n < crypto_pwhash_MEMLIMIT_INTERACTIVE) {
            snprintf(why, SX_CONFIG_WHY_LEN,
                     "must be at least %zuM (libsodium's INTERACTIVE; the default is %zuM), got '%.100s'",
                     (size_t)crypto_pwhash_MEMLIMIT_INTERACTIVE >> 20, (size_t)crypto_pwhash_MEMLIMIT_MODERATE >> 20,
                     v);
            return -EINVAL;
        }
        cfg->seal_pwhash_memlimit = (size_t)n;
        return 0;
    case K_SYNC:
        if ((r = sx_config_parse_bool(v, &b, why)) == 0)
            cfg->storage_sync = b;
        return r;
    case K_BACKEND:
        if ((r = sx_config_parse_enum(v, "rocksdb\0memory\0postgres\0", "rocksdb, memory or postgres", &e, why)) == 0)
            cfg->backend = (sx_config_backend)e;
        return r;
    case K_POOL_SIZE:
        if ((r = sx_config_parse_uint(v, 0, MAX_POOL_SIZE, &n, why)) == 0)
            cfg->storage_pool_size = (unsigned)n;
        return r;
    case K_START_TIMEOUT:
        if ((r = sx_config_parse_uint(v, 0, MAX_START_WAIT, &n, why)) == 0)
            cfg->storage_start_timeout = (unsigned)n;
        return r;
    case K_DSN:
        /* Never quoted back: a mistaken value may hold a password. */
        if (dsn_has_password(v)) {
            snprintf(why, SX_CONFIG_WHY_LEN,
                     "must not contain a password; give it through [storage] password_env or password_file");
            return -EINVAL;
        }
        if (!(s = strdup(v)))
            return -ENOMEM;
        replace(&cfg->storage_dsn, s);
        return 0;
    case K_SEAL_TYPE:
        if ((r = sx_config_parse_enum(v, "file\0passphrase\0tpm\0", "file, passphrase or tpm", &e, why)) == 0)
            cfg->seal = (sx_config_seal)e;
        return r;
    case K_LEVEL:
        if ((r = sx_config_parse_enum(v, "error\0warn\0info\0debug\0", "error, warn, info or debug", &e, why)) == 0)
            cfg->log_level = (sx_log_level)e;
        return r;
    case K_PCRS: {
        uint32_t mask;
        if (sx_config_parse_pcrs(v, &mask) < 0) {
            snprintf(why, SX_CONFIG_WHY_LEN, "expected none or sha256:N[,N...] with PCR numbers 0..23, got '%.100s'",
                     v);
            return -EINVAL;
        }
        cfg->seal_pcrs = mask;
        return 0;
    }
    case K_PASSPHRASE_ENV:
    case K_DB_PASSWORD_ENV:
        if (!*v || strlen(v) > 128 || (v[0] >= '0' && v[0] <= '9') ||
            strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(v)) {
            snprintf(why, SX_CONFIG_WHY_LEN,
                     "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got '%.100s'", v);
            return -EINVAL;
        }
        if (!(s = strdup(v)))
            return -ENOMEM;
        replace(id == K_PASSPHRASE_ENV ? &cfg->seal_passphrase_env : &cfg->storage_password_env, s);
        return 0;
    case K_TCTI:
        if (!*v) {
            snprintf(why, SX_CONFIG_WHY_LEN, "must not be empty (e.g. device:/dev/tpmrm0)");
            return -EINVAL;
        }
        if (!(s = strdup(v)))
            return -ENOMEM;
        replace(&cfg->seal_tcti, s);
        return 0;
    case K_ADMIN_SOCKET:
    case K_TLS_CERT:
    case K_TLS_KEY:
    case K_STORAGE_PATH:
    case K_KEY_FILE:
    case K_ACCESS_LOG:
    case K_AUDIT_LOG:
    case K_DB_PASSWORD_FILE:
    case K_RECOVERY_KEY_FILE: {
        char **slot = id == K_ADMIN_SOCKET        ? &cfg->admin_socket
                      : id == K_TLS_CERT          ? &cfg->tls_cert
                      : id == K_TLS_KEY           ? &cfg->tls_key
                      : id == K_STORAGE_PATH      ? &cfg->storage_path
                      : id == K_KEY_FILE          ? &cfg->seal_key_file
                      : id == K_ACCESS_LOG        ? &cfg->access_log
                      : id == K_DB_PASSWORD_FILE  ? &cfg->storage_password_file
                      : id == K_RECOVERY_KEY_FILE ? &cfg->seal_recovery_key_file
                                                  : &cfg->audit_log;
        if (!*v && (id == K_STORAGE_PATH || id == K_KEY_FILE || id == K_RECOVERY_KEY_FILE)) {
            snprintf(why, SX_CONFIG_WHY_LEN, "must not be empty");
            return -EINVAL;
        }
        if (strcmp(v, "-") == 0 && id != K_ACCESS_LOG) {
            snprintf(why, SX_CONFIG_WHY_LEN, "'-' (stderr) is only allowed for [log] access_log");
            return -EINVAL;
        }
        if (!*v || strcmp(v, "-") == 0)
            s = strdup(v); /* "" = off / unset, "-" = stderr */
        else if ((r = sx_config_resolve_path(c->cfg->dir, v, &s, why)) < 0)
            return r;
        if (!s)
            return -ENOMEM;
        replace(slot, s);
        return 0;
    }
    case N_KEYS:
        break;
    }
    return -EINVAL;
}

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
    enum key_id id = N_KEYS;
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            id = (enum key_id)i;
    if (id == N_KEYS) {
        fail(c, -EINVAL, line, "unknown key '%.100s' in [%s]", name, section);
        return 1;
    }
    if (c->seen[id] && !keys[id].repeatable) {
        fail(c, -EINVAL, line, "[%s] %s: set twice (first on line %d)", section, name, c->seen[id]);
        return 1;
    }
    if (!c->seen[id])
        c->seen[id] = line;

    /* One pair of surrounding double quotes is dropped: `key = ""` is an empty value. */
    char buf[512];
    size_t vlen = strlen(value ? value : "");
    if (value && vlen >= 2 && vlen < sizeof buf && value[0] == '"' && value[vlen - 1] == '"') {
        memcpy(buf, value + 1, vlen - 2);
        buf[vlen - 2] = '\0';
        value = buf;
    }
    char why[SX_CONFIG_WHY_LEN];
    int r = set_key(c, id, value ? value : "", why);
    if (r == -ENOMEM)
        fail(c, r, line, "out of memory");
    else if (r < 0)
        fail(c, r, line, "[%s] %s: %s", section, name, why);
    return 1;
}

/* ---- the reader: one whole, cleaned-up line per call (see the top of the file) ---- */

static bool known_section(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        if (strlen(sections[i]) == len && memcmp(sections[i], s, len) == 0)
            return true;
    return false;
}

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
        if (!known_section(s, slen)) {
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

static int set_defaults(sx_config *cfg)
{
    char why[SX_CONFIG_WHY_LEN];
    cfg->threads = 0;
    cfg->max_body_bytes = 1048576;
    cfg->max_value_bytes = 65536;
    cfg->drain_timeout = 10;
    cfg->max_connections = 4096;
    cfg->request_timeout = 10;
    cfg->http2_idle_timeout = 10;
    cfg->max_header_bytes = 16384;
    cfg->http2_max_concurrent_requests = 100;
    cfg->http2_max_resets = 200;
    cfg->http2_max_control_frames = 1000;
    cfg->backend = SX_CONFIG_BACKEND_ROCKSDB;
    cfg->storage_sync = true;
    cfg->storage_start_timeout = 60;
    cfg->seal = SX_CONFIG_SEAL_FILE;
    cfg->seal_pwhash_opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
    cfg->seal_pwhash_memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
    cfg->seal_pcrs = 0;
    cfg->log_level = SX_LOG_INFO;
    if (sx_config_resolve_path(cfg->dir, "var/secretsd.sock", &cfg->admin_socket, why) < 0 ||
        sx_config_resolve_path(cfg->dir, "var/data", &cfg->storage_path, why) < 0 ||
        sx_config_resolve_path(cfg->dir, "var/seal.key", &cfg->seal_key_file, why) < 0 ||
        sx_config_resolve_path(cfg->dir, "var/recovery.key", &cfg->seal_recovery_key_file, why) < 0 ||
        !(cfg->seal_passphrase_env = strdup("SECRETSD_PASSPHRASE")) ||
        !(cfg->seal_tcti = strdup("device:/dev/tpmrm0")) || !(cfg->access_log = strdup("-")) ||
        !(cfg->audit_log = strdup("")) || !(cfg->tls_cert = strdup("")) || !(cfg->tls_key = strdup("")) ||
        !(cfg->storage_dsn = strdup("")) || !(cfg->storage_password_env = strdup("SECRETSD_DB_PASSWORD")) ||
        !(cfg->storage_password_file = strdup("")))
        return -ENOMEM;
    return 0;
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
        char *h = strdup(DEFAULT_LISTEN);
        if (!h || add_listen(&cfg->listen, &cfg->n_listen, h, DEFAULT_PORT, 0) < 0) {
            free(h);
            fail(c, -ENOMEM, 0, "out of memory");
            return;
        }
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
        fail(c, -EINVAL, c->seen[K_BACKEND], "[storage] backend = postgres needs [storage] dsn");
        return;
    }
    if (cfg->backend != SX_CONFIG_BACKEND_POSTGRES && *cfg->storage_dsn) {
        fail(c, -EINVAL, c->seen[K_DSN], "[storage] dsn: only used with backend = postgres");
        return;
    }
    if (cfg->max_value_bytes >= cfg->max_body_bytes) {
        int line = c->seen[K_MAX_VALUE] ? c->seen[K_MAX_VALUE] : c->seen[K_MAX_BODY];
        fail(c, -EINVAL, line, "[server] max_value_bytes (%zu) must be less than max_body_bytes (%zu)",
             cfg->max_value_bytes, cfg->max_body_bytes);
        return;
    }
    size_t sun_max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    if (strlen(cfg->admin_socket) > sun_max) {
        fail(c, -EINVAL, c->seen[K_ADMIN_SOCKET],
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
        cfg->threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (unsigned)cpus;
    }
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
    if (!c.cfg || !(c.cfg->path = strdup(path)) || !(c.cfg->dir = folder_of(path)) || set_defaults(c.cfg) < 0) {
        fail(&c, -ENOMEM, 0, "out of memory");
        goto out;
    }
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
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->storage_path);
    free(cfg->storage_dsn);
    free(cfg->storage_password_env);
    free(cfg->storage_password_file);
    free(cfg->seal_key_file);
    free(cfg->seal_recovery_key_file);
    free(cfg->seal_passphrase_env);
    free(cfg->seal_tcti);
    free(cfg->access_log);
    free(cfg->audit_log);
    free(cfg);
}
