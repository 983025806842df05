/*
 * config.h - secretsd's INI configuration (parsed with inih).
 *
 * sx_config_load() reads the whole file, validates every key and resolves defaults, so that the
 * rest of the server only ever sees a complete, valid configuration. Any mistake - a missing file,
 * an unknown section or key, a bad value, a repeated non-repeatable key - is reported as
 * "FILE:LINE: what is wrong" (LINE is 0 when the mistake is not on one line, e.g. a missing file or
 * a key that must be present). Relative paths in the file are resolved against the folder that
 * holds the config file. The module does not log: the caller prints the message and exits with
 * status 2.
 *
 * Every key, its default and its bounds are one row of the module's key table (config/keys.c);
 * secrets.conf.example at the top of the source tree documents every key with that default.
 */
#ifndef SX_CONFIG_H
#define SX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A TCP address to listen on. host is a numeric IPv4/IPv6 address or a name ("localhost"); IPv6
 * is written "[::1]:8080" in the file and stored without brackets. port 0 = an ephemeral port. */
typedef struct sx_config_listen {
    char *host;
    uint16_t port;
    int line; /* where it was configured, for error messages */
} sx_config_listen;

/* A network of [server] trusted_proxies: family 4 or 6, the address bytes (4 or 16, the bits past
 * prefix zero) and the prefix length (0..32 or 0..128). A bare address is a /32 or /128. */
typedef struct sx_config_cidr {
    uint8_t family; /* 4 or 6 */
    uint8_t prefix;
    uint8_t addr[16];
} sx_config_cidr;

/* The longest name [seal] credential accepts (systemd's own limit for a credential name is the
 * file-name limit, 255). */
#define SX_CONFIG_CREDENTIAL_MAX 255

/* A mount of [vault] mounts: the name Vault clients use in /v1/{mount}/ and the org it stands for
 * (both 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit). */
#define SX_CONFIG_MOUNT_MAX 64u
typedef struct sx_config_mount {
    char mount[SX_CONFIG_MOUNT_MAX + 1];
    char org[SX_CONFIG_MOUNT_MAX + 1];
} sx_config_mount;

typedef enum sx_config_backend {
    SX_CONFIG_BACKEND_ROCKSDB = 0,
    SX_CONFIG_BACKEND_MEMORY = 1,
    SX_CONFIG_BACKEND_POSTGRES = 2, /* a PostgreSQL database shared by several nodes */
} sx_config_backend;

typedef enum sx_config_seal {
    SX_CONFIG_SEAL_FILE = 0,
    SX_CONFIG_SEAL_PASSPHRASE = 1,
    SX_CONFIG_SEAL_TPM = 2,
} sx_config_seal;

typedef enum sx_config_audit_policy {
    SX_AUDIT_FAIL_CLOSED = 0, /* a reveal or write whose audit line cannot be written gets 503 */
    SX_AUDIT_FAIL_OPEN = 1,   /* it goes ahead; the lost line is counted and logged */
} sx_config_audit_policy;

typedef enum sx_config_log_format {
    SX_LOG_FORMAT_TEXT = 0,
    SX_LOG_FORMAT_JSON = 1, /* one JSON object per line (diagnostic and access log) */
} sx_config_log_format;

typedef struct sx_config {
    char *path; /* the config file as given */
    char *dir;  /* its folder (absolute), base of relative paths */

    /* [server] */
    sx_config_listen *listen; /* cleartext HTTP/1.1 + h2c; default 127.0.0.1:8080 when neither
                                 [server] listen nor [tls] listen is given */
    size_t n_listen;
    unsigned threads;                 /* resolved: 0 in the file means the number of online CPUs */
    char *admin_socket;               /* absolute path; default "var/secretsd.sock"; "" disables it */
    size_t max_body_bytes;            /* default 1048576 */
    size_t max_value_bytes;           /* default 65536; must be < max_body_bytes */
    unsigned drain_timeout;           /* seconds SIGTERM waits for in-flight requests; default 10 */
    size_t max_connections;           /* per server; default 4096 */
    sx_config_listen *metrics_listen; /* optional TCP listener serving only GET /metrics; at most
                                         one (n_metrics_listen 0 or 1); default none */
    size_t n_metrics_listen;

    /* slow and hostile clients (server.c, guard.c); the default last */
    unsigned request_timeout;               /* s: an HTTP/1.1 request, a TLS handshake, an idle keep-alive; 10 */
    unsigned http2_idle_timeout;            /* s: an HTTP/2 connection without a request or a frame; 10 */
    size_t max_header_bytes;                /* an HTTP/1.1 head or decoded HTTP/2 header list (431 past it); 16384 */
    unsigned http2_max_concurrent_requests; /* requests of one HTTP/2 connection handled at once, 1..100; 100 */
    unsigned http2_max_resets;              /* stream resets per HTTP/2 connection and 10 s, 0 = no limit; 200 */
    unsigned http2_max_control_frames;      /* SETTINGS, PING, PRIORITY, empty and unknown frames, the same; 1000 */

    /* clients behind load balancers (server/peer.c): the peers whose PROXY header or
     * X-Forwarded-For names the client; default none (every peer is the client itself) */
    sx_config_cidr *trusted_proxies;
    size_t n_trusted_proxies;
    sx_config_listen *proxy_listen; /* cleartext HTTP/1.1 + h2c behind a PROXY protocol (v1 or v2)
                                       header from a trusted proxy; needs trusted_proxies */
    size_t n_proxy_listen;
    char *node_id; /* this node's audit chain id (1..64 of [A-Za-z0-9._-]); "" = generated, kept next to audit_log */

    /* [tls] */
    sx_config_listen *tls_listen; /* HTTP/1.1 + h2 over ALPN */
    size_t n_tls_listen;
    char *tls_cert; /* absolute path; required when tls listen is set; "" when not given */
    char *tls_key;

    /* [storage] */
    sx_config_backend backend;   /* default rocksdb */
    char *storage_path;          /* absolute; default "var/data" */
    bool storage_sync;           /* default true */
    char *storage_dsn;           /* postgres: libpq connection string or URI, never with a password; default "" */
    char *storage_password_env;  /* postgres: environment variable with the password; default "SECRETSD_DB_PASSWORD" */
    char *storage_password_file; /* postgres: absolute path of a file with the password, or ""; default "" */
    unsigned storage_pool_size;  /* postgres: most connections; resolved: 0 in the file (the default)
                                    means threads + 20 (after threads is resolved), so never 0 here */
    unsigned storage_start_timeout; /* postgres: s start-up waits for the database to accept connections; 60 */

    /* [secrets] */
    unsigned max_versions;    /* versions kept of each secret, the current one included, 1..1000; 10 */
    unsigned recovery_window; /* s a deleted secret stays restorable; 0 = destroyed at once; 7d */
    unsigned sweep_interval;  /* s between two runs of the sweeper that purges expired deleted secrets; 60 */

    /* [vault]: the Vault KV v2 compatible routes under /v1/ of the public listeners (server/api/vault.c) */
    bool vault_enabled;            /* default true */
    sx_config_mount *vault_mounts; /* aliases of mount names to orgs; a mount not listed is the org of its name */
    size_t n_vault_mounts;         /* default none */
    unsigned vault_lease_duration; /* s, the lease_duration of a read (KV v2 answers 0); default 0 */

    /* [seal] */
    sx_config_seal seal;                     /* default file */
    char *seal_key_file;                     /* absolute; default "var/seal.key" */
    char *seal_passphrase_env;               /* name of the environment variable; default "SECRETSD_PASSPHRASE" */
    char *seal_credential;                   /* systemd credential holding the file seal's key or the passphrase
                                                ($CREDENTIALS_DIRECTORY/NAME), instead of key_file or passphrase_env;
                                                default "" = none */
    unsigned long long seal_pwhash_opslimit; /* default crypto_pwhash_OPSLIMIT_MODERATE */
    size_t seal_pwhash_memlimit;             /* default crypto_pwhash_MEMLIMIT_MODERATE */
    char *seal_tcti;                         /* default "device:/dev/tpmrm0" */
    uint32_t seal_pcrs;                      /* bitmask of sha256 PCRs to bind to (bit n = PCR n); default 0 = none */
    char *seal_pin_env;                      /* TPM: variable holding the PIN (PolicyAuthValue); default "" = no PIN */
    char *seal_recovery_key_file;            /* absolute; where a new keyring's recovery key is written (mode 0400) when
                                                stdout is not a terminal; default "var/recovery.key" */

    /* [log] */
    sx_log_level log_level;              /* default info */
    char *access_log;                    /* absolute path, "-" = stderr, "" = off; default "-" */
    char *audit_log;                     /* absolute path or "" = off; default "" */
    sx_config_audit_policy audit_policy; /* default fail_closed */
    sx_config_log_format log_format;     /* default text */
} sx_config;

/*
 * Load and validate path. On success *ret is a new configuration (free with sx_config_free()).
 * On failure returns a negative errno (-ENOENT missing file, -EINVAL any mistake in it, -ENOMEM)
 * and writes "FILE:LINE: what is wrong" into err (errlen bytes, always NUL-terminated; err may be
 * NULL). *ret is written only on success. Touches no global state (not even inih's settings), so
 * any thread may call it.
 */
int sx_config_load(const char *path, sx_config **ret, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Free a configuration. NULL ok. */
void sx_config_free(sx_config *cfg);

/* Parse "sha256:7,14" (or "" / "none") into a PCR bitmask. 0 on success, -EINVAL otherwise. */
int sx_config_parse_pcrs(const char *s, uint32_t *ret_mask);

/* Parse one network, "10.0.0.0/8", "192.0.2.7", "fd00::/8" or "::1" (a bare address is /32 or
 * /128). Bits set past the prefix are refused ("10.0.0.1/8"). 0 and *ret, or -EINVAL. */
int sx_config_parse_cidr(const char *s, sx_config_cidr *ret);

/* Does addr (4 or 16 bytes, family 4 or 6) lie in net? An IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * is matched as the IPv4 address it carries. */
bool sx_config_cidr_match(const sx_config_cidr *net, int family, const uint8_t *addr);

/* One key that sx_config_load() accepts: the public part of a row of config/'s key table. */
typedef struct sx_config_key {
    const char *section; /* "server", "tls", "storage", "secrets", "seal", "log" */
    const char *name;
    bool repeatable;  /* may appear on several lines (listen) */
    const char *dflt; /* the value the key has when the file leaves it out, written as in the file
                         ("64K", "var/data", "" = off); NULL when it is then unset or an empty list.
                         [server] listen's applies only when no listener of any kind is configured */
} sx_config_key;

/* The i-th key sx_config_load() accepts, in the order of secrets.conf.example, or NULL when i is
 * past the last. The row is static and valid for the life of the process (for documentation
 * checks and tools). Any thread may call it. */
const sx_config_key *sx_config_key_at(size_t i);

#ifdef __cplusplus
}
#endif

#endif /* SX_CONFIG_H */
