/*
 * keys.c - the table of every key secretsd's configuration accepts: its section and name, whether
 * it may be repeated, its default as it would be written in the file, the parser for its kind of
 * value (parsers.c), the field of sx_config it fills, and its bounds or choices. The loader
 * (config.c) knows no key by itself: it looks each `key = value` up here, and it applies the
 * defaults of this table, through the same parsers, before reading the file. A new key is one row
 * here, one field in config.h and its lines in secrets.conf.example (tests/config checks that the
 * example shows every key, with this default).
 *
 * The rows are in the order of secrets.conf.example.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <sodium.h>
#include <string.h>

#define MAX_LISTEN          64  /* listeners per key */
#define MAX_TRUSTED         256 /* networks in [server] trusted_proxies */
#define MAX_BODY_LIMIT      (1024ULL * 1024 * 1024)
#define MAX_CONNS_LIMIT     1048576
#define MAX_DRAIN           3600
#define MAX_TIMEOUT         3600
#define MAX_HDR_LIMIT       (256 * 1024) /* h2o itself buffers at most about 400 KiB of header */
#define MAX_H2_STREAMS      100          /* h2o 2.2.5 advertises and enforces 100 open streams */
#define MAX_FRAME_LIMIT     1000000
#define MAX_POOL_SIZE       1024
#define MAX_START_WAIT      86400
#define MAX_RECOVERY_WINDOW (365ull * 86400) /* a year */
#define MAX_SWEEP_INTERVAL  86400ull
#define MAX_VERSIONS        1000 /* secrets/: SX_SECRETS_MAX_VERSIONS_LIMIT */
#define MAX_MOUNTS          256
#define MAX_LEASE           (365u * 24 * 3600)

/* Where a row's value goes: the field, and its size (which is how wide a number is stored). */
#define FIELD(f)   .offset = offsetof(sx_config, f), .size = sizeof(((sx_config *)0)->f)
#define LIST(f, n) FIELD(f), .count_offset = offsetof(sx_config, n)

/* clang-format off */
const sx_config_item sx_config_items[] = {
    /* {{section, key, repeatable, default},
     *  parser, field, then flags, bounds or choices} */

    /* [server] */
    {{"server", "listen", true, "127.0.0.1:8080"},
     sx_config_set_listen, LIST(listen, n_listen), .max = MAX_LISTEN},
    {{"server", "threads", false, "0"},
     sx_config_set_number, FIELD(threads), .max = SX_CONFIG_THREADS_MAX},
    {{"server", "admin_socket", false, "var/secretsd.sock"},
     sx_config_set_path, FIELD(admin_socket), .flags = SX_CONFIG_EMPTY_OFF},
    {{"server", "max_body_bytes", false, "1M"},
     sx_config_set_number, FIELD(max_body_bytes), .flags = SX_CONFIG_BYTES, .min = 1, .max = MAX_BODY_LIMIT},
    {{"server", "max_value_bytes", false, "64K"},
     sx_config_set_number, FIELD(max_value_bytes), .flags = SX_CONFIG_BYTES, .min = 1, .max = MAX_BODY_LIMIT},
    {{"server", "drain_timeout", false, "10"},
     sx_config_set_number, FIELD(drain_timeout), .max = MAX_DRAIN},
    {{"server", "max_connections", false, "4096"},
     sx_config_set_number, FIELD(max_connections), .min = 1, .max = MAX_CONNS_LIMIT},
    {{"server", "metrics_listen", false, NULL},
     sx_config_set_listen, LIST(metrics_listen, n_metrics_listen), .flags = SX_CONFIG_EMPTY_OFF, .max = 1},
    {{"server", "request_timeout", false, "10"},
     sx_config_set_number, FIELD(request_timeout), .min = 1, .max = MAX_TIMEOUT},
    {{"server", "http2_idle_timeout", false, "10"},
     sx_config_set_number, FIELD(http2_idle_timeout), .min = 1, .max = MAX_TIMEOUT},
    {{"server", "max_header_bytes", false, "16K"},
     sx_config_set_number, FIELD(max_header_bytes), .flags = SX_CONFIG_BYTES, .min = 1024, .max = MAX_HDR_LIMIT},
    {{"server", "http2_max_concurrent_requests", false, "100"},
     sx_config_set_number, FIELD(http2_max_concurrent_requests), .min = 1, .max = MAX_H2_STREAMS},
    {{"server", "http2_max_resets", false, "200"},
     sx_config_set_number, FIELD(http2_max_resets), .max = MAX_FRAME_LIMIT},
    {{"server", "http2_max_control_frames", false, "1000"},
     sx_config_set_number, FIELD(http2_max_control_frames), .max = MAX_FRAME_LIMIT},
    {{"server", "trusted_proxies", true, NULL},
     sx_config_set_networks, LIST(trusted_proxies, n_trusted_proxies), .max = MAX_TRUSTED},
    {{"server", "proxy_listen", true, NULL},
     sx_config_set_listen, LIST(proxy_listen, n_proxy_listen), .max = MAX_LISTEN},
    {{"server", "node_id", false, ""},
     sx_config_set_node_id, FIELD(node_id), .flags = SX_CONFIG_EMPTY_OFF},

    /* [tls] */
    {{"tls", "listen", true, NULL},
     sx_config_set_listen, LIST(tls_listen, n_tls_listen), .max = MAX_LISTEN},
    {{"tls", "cert", false, ""},
     sx_config_set_path, FIELD(tls_cert), .flags = SX_CONFIG_EMPTY_OFF},
    {{"tls", "key", false, ""},
     sx_config_set_path, FIELD(tls_key), .flags = SX_CONFIG_EMPTY_OFF},

    /* [storage] */
    {{"storage", "backend", false, "rocksdb"},
     sx_config_set_enum, FIELD(backend),
     .choices = "rocksdb\0memory\0postgres\0", .what = "rocksdb, memory or postgres"},
    {{"storage", "path", false, "var/data"},
     sx_config_set_path, FIELD(storage_path)},
    {{"storage", "sync", false, "true"},
     sx_config_set_bool, FIELD(storage_sync)},
    {{"storage", "dsn", false, ""},
     sx_config_set_dsn, FIELD(storage_dsn)},
    {{"storage", "password_env", false, "SECRETSD_DB_PASSWORD"},
     sx_config_set_env_name, FIELD(storage_password_env)},
    {{"storage", "password_file", false, ""},
     sx_config_set_path, FIELD(storage_password_file), .flags = SX_CONFIG_EMPTY_OFF},
    {{"storage", "pool_size", false, "0"},
     sx_config_set_number, FIELD(storage_pool_size), .max = MAX_POOL_SIZE},
    {{"storage", "start_timeout", false, "60"},
     sx_config_set_number, FIELD(storage_start_timeout), .max = MAX_START_WAIT},

    /* [secrets] */
    {{"secrets", "max_versions", false, "10"},
     sx_config_set_number, FIELD(max_versions), .min = 1, .max = MAX_VERSIONS},
    {{"secrets", "recovery_window", false, "7d"},
     sx_config_set_number, FIELD(recovery_window), .flags = SX_CONFIG_DURATION, .max = MAX_RECOVERY_WINDOW},
    {{"secrets", "sweep_interval", false, "60s"},
     sx_config_set_number, FIELD(sweep_interval), .flags = SX_CONFIG_DURATION, .min = 1, .max = MAX_SWEEP_INTERVAL},

    /* [vault] */
    {{"vault", "enabled", false, "true"},
     sx_config_set_bool, FIELD(vault_enabled)},
    {{"vault", "mounts", true, NULL},
     sx_config_set_mounts, LIST(vault_mounts, n_vault_mounts), .max = MAX_MOUNTS},
    {{"vault", "lease_duration", false, "0"},
     sx_config_set_number, FIELD(vault_lease_duration), .max = MAX_LEASE},

    /* [seal] */
    {{"seal", "type", false, "file"},
     sx_config_set_enum, FIELD(seal), .choices = "file\0passphrase\0tpm\0", .what = "file, passphrase or tpm"},
    {{"seal", "key_file", false, "var/seal.key"},
     sx_config_set_path, FIELD(seal_key_file)},
    {{"seal", "passphrase_env", false, "SECRETSD_PASSPHRASE"},
     sx_config_set_env_name, FIELD(seal_passphrase_env)},
    {{"seal", "credential", false, ""},
     sx_config_set_credential, FIELD(seal_credential)},
    /* libsodium's OPSLIMIT_MODERATE and MEMLIMIT_MODERATE (tests/config checks that they still are). */
    {{"seal", "pwhash_opslimit", false, "3"},
     sx_config_set_pwhash, FIELD(seal_pwhash_opslimit),
     .min = crypto_pwhash_OPSLIMIT_MIN, .max = crypto_pwhash_OPSLIMIT_MAX},
    {{"seal", "pwhash_memlimit", false, "256M"},
     sx_config_set_pwhash, FIELD(seal_pwhash_memlimit), .flags = SX_CONFIG_BYTES,
     .min = crypto_pwhash_MEMLIMIT_MIN, .max = crypto_pwhash_MEMLIMIT_MAX},
    {{"seal", "tcti", false, "device:/dev/tpmrm0"},
     sx_config_set_string, FIELD(seal_tcti)},
    {{"seal", "pcrs", false, "none"},
     sx_config_set_pcrs, FIELD(seal_pcrs)},
    {{"seal", "pin_env", false, ""},
     sx_config_set_env_name_opt, FIELD(seal_pin_env)},
    {{"seal", "recovery_key_file", false, "var/recovery.key"},
     sx_config_set_path, FIELD(seal_recovery_key_file)},

    /* [log] */
    {{"log", "level", false, "info"},
     sx_config_set_enum, FIELD(log_level),
     .choices = "error\0warn\0info\0debug\0", .what = "error, warn, info or debug"},
    {{"log", "access_log", false, "-"},
     sx_config_set_path, FIELD(access_log), .flags = SX_CONFIG_EMPTY_OFF | SX_CONFIG_DASH_STDERR},
    {{"log", "audit_log", false, ""},
     sx_config_set_path, FIELD(audit_log), .flags = SX_CONFIG_EMPTY_OFF},
    {{"log", "audit_policy", false, "fail_closed"},
     sx_config_set_enum, FIELD(audit_policy),
     .choices = "fail_closed\0fail_open\0", .what = "fail_closed or fail_open"},
    {{"log", "format", false, "text"},
     sx_config_set_enum, FIELD(log_format), .choices = "text\0json\0", .what = "text or json"},
};
/* clang-format on */

const size_t sx_config_n_items = sizeof sx_config_items / sizeof *sx_config_items;

_Static_assert(sizeof sx_config_items / sizeof *sx_config_items <= SX_CONFIG_MAX_KEYS,
               "SX_CONFIG_MAX_KEYS is smaller than the key table");

/* The order of the enums' choices is the order of their values in config.h and common/log.h. */
_Static_assert(SX_CONFIG_BACKEND_POSTGRES == 2 && SX_CONFIG_SEAL_TPM == 2 && SX_LOG_DEBUG == 3 &&
                   SX_AUDIT_FAIL_OPEN == 1 && SX_LOG_FORMAT_JSON == 1,
               "an enum of config.h no longer matches its choices in the key table");

const sx_config_item *sx_config_item_find(const char *section, const char *name)
{
    for (size_t i = 0; i < sx_config_n_items; i++)
        if (strcmp(sx_config_items[i].key.section, section) == 0 && strcmp(sx_config_items[i].key.name, name) == 0)
            return &sx_config_items[i];
    return NULL;
}

bool sx_config_section_known(const char *section, size_t len)
{
    for (size_t i = 0; i < sx_config_n_items; i++)
        if (strlen(sx_config_items[i].key.section) == len && memcmp(sx_config_items[i].key.section, section, len) == 0)
            return true;
    return false;
}

const sx_config_key *sx_config_key_at(size_t i)
{
    return i < sx_config_n_items ? &sx_config_items[i].key : NULL;
}
