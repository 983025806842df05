/*
 * test_config_load.c - valid configuration files load into the values they say: every key, the
 * defaults, relative paths, IPv6 and repeated listeners, comments and quotes, size suffixes,
 * sx_config_parse_pcrs(), the pool size resolved from the threads, and the key table's rows fitting
 * their fields. Files are written into a fresh temporary folder that each test removes.
 */
#include "config/config.h"
#include "config/config_internal.h"
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

static char *dir; /* the test's temporary folder, absolute with symlinks resolved */
static char path[PATH_MAX];
static char err[512];

/* Write text to dir/name (a new temporary folder per test) and load it. */
static sx_config *load_text(const char *tag, const char *text)
{
    char *d = sx_test_tmpdir(tag);
    dir = realpath(d, NULL);
    free(d);
    if (!dir)
        abort();
    snprintf(path, sizeof path, "%s/secrets.conf", dir);
    if (sx_test_write_file(path, text, strlen(text)) < 0)
        abort();
    sx_config *cfg = NULL;
    err[0] = '\0';
    int r = sx_config_load(path, &cfg, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "unexpected error %d: %s\n", r, err);
        return NULL;
    }
    return cfg;
}

static void done(sx_config *cfg)
{
    sx_config_free(cfg);
    sx_test_rmtree(dir);
    free(dir);
    dir = NULL;
}

/* dir + "/" + rel, in a static buffer. */
static const char *in_dir(const char *rel)
{
    static char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    return buf;
}

static void every_key_parsed_to_non_default_values(void)
{
    sx_config *cfg = load_text("cfg-every", "[server]\n"                          /* 1 */
                                            "listen = 0.0.0.0:9000\n"             /* 2 */
                                            "listen = [::1]:0\n"                  /* 3 */
                                            "threads = 7\n"                       /* 4 */
                                            "admin_socket = /run/sx/admin.sock\n" /* 5 */
                                            "max_body_bytes = 2M\n"               /* 6 */
                                            "max_value_bytes = 100000\n"          /* 7 */
                                            "drain_timeout = 30\n"                /* 8 */
                                            "max_connections = 100\n"             /* 9 */
                                            "[tls]\n"                             /* 10 */
                                            "listen = [::]:8443\n"                /* 11 */
                                            "cert = tls/cert.pem\n"
                                            "key = /etc/secretsd/key.pem\n"
                                            "[storage]\n"
                                            "backend = memory\n"
                                            "path = db\n"
                                            "sync = off\n"
                                            "[seal]\n"
                                            "type = passphrase\n"
                                            "key_file = keys/seal.key\n"
                                            "passphrase_env = MY_PASS_2\n"
                                            "credential = secretsd-passphrase.cred\n"
                                            "pwhash_opslimit = 5\n"
                                            "pwhash_memlimit = 64M\n"
                                            "tcti = swtpm:host=127.0.0.1,port=2321\n"
                                            "pcrs = sha256:0,7,23\n"
                                            "recovery_key_file = keys/recovery.key\n"
                                            "[log]\n"
                                            "level = debug\n"
                                            "access_log = logs/access.log\n"
                                            "audit_log = /var/log/secretsd/audit.log\n");
    REQUIRE(cfg);
    CHECK_STR(cfg->path, path);
    CHECK_STR(cfg->dir, dir);
    REQUIRE(cfg->n_listen == 2);
    CHECK_STR(cfg->listen[0].host, "0.0.0.0");
    CHECK_INT(cfg->listen[0].port, 9000);
    CHECK_INT(cfg->listen[0].line, 2);
    CHECK_STR(cfg->listen[1].host, "::1");
    CHECK_INT(cfg->listen[1].port, 0);
    CHECK_INT(cfg->listen[1].line, 3);
    CHECK_INT(cfg->threads, 7);
    CHECK_STR(cfg->admin_socket, "/run/sx/admin.sock");
    CHECK_INT(cfg->max_body_bytes, 2 * 1024 * 1024);
    CHECK_INT(cfg->max_value_bytes, 100000);
    CHECK_INT(cfg->drain_timeout, 30);
    CHECK_INT(cfg->max_connections, 100);
    REQUIRE(cfg->n_tls_listen == 1);
    CHECK_STR(cfg->tls_listen[0].host, "::");
    CHECK_INT(cfg->tls_listen[0].port, 8443);
    CHECK_INT(cfg->tls_listen[0].line, 11);
    CHECK_STR(cfg->tls_cert, in_dir("tls/cert.pem"));
    CHECK_STR(cfg->tls_key, "/etc/secretsd/key.pem");
    CHECK_INT(cfg->backend, SX_CONFIG_BACKEND_MEMORY);
    CHECK_STR(cfg->storage_path, in_dir("db"));
    CHECK(!cfg->storage_sync);
    CHECK_INT(cfg->seal, SX_CONFIG_SEAL_PASSPHRASE);
    CHECK_STR(cfg->seal_key_file, in_dir("keys/seal.key"));
    CHECK_STR(cfg->seal_recovery_key_file, in_dir("keys/recovery.key"));
    CHECK_STR(cfg->seal_passphrase_env, "MY_PASS_2");
    CHECK_STR(cfg->seal_credential, "secretsd-passphrase.cred");
    CHECK_INT(cfg->seal_pwhash_opslimit, 5);
    CHECK_INT(cfg->seal_pwhash_memlimit, 64 * 1024 * 1024);
    CHECK_STR(cfg->seal_tcti, "swtpm:host=127.0.0.1,port=2321");
    CHECK_INT(cfg->seal_pcrs, (1u << 0) | (1u << 7) | (1u << 23));
    CHECK_INT(cfg->log_level, SX_LOG_DEBUG);
    CHECK_STR(cfg->access_log, in_dir("logs/access.log"));
    CHECK_STR(cfg->audit_log, "/var/log/secretsd/audit.log");
    done(cfg);
}

static void empty_file_gives_every_default(void)
{
    sx_config *cfg = load_text("cfg-empty", "");
    REQUIRE(cfg);
    REQUIRE(cfg->n_listen == 1);
    CHECK_STR(cfg->listen[0].host, "127.0.0.1");
    CHECK_INT(cfg->listen[0].port, 8080);
    CHECK_INT(cfg->listen[0].line, 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK_INT(cfg->threads, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    CHECK_STR(cfg->admin_socket, in_dir("var/secretsd.sock"));
    CHECK_INT(cfg->max_body_bytes, 1048576);
    CHECK_INT(cfg->max_value_bytes, 65536);
    CHECK_INT(cfg->drain_timeout, 10);
    CHECK_INT(cfg->recovery_window, 7 * 86400);
    CHECK_INT(cfg->sweep_interval, 60);
    CHECK_INT(cfg->max_connections, 4096);
    CHECK_INT(cfg->request_timeout, 10);
    CHECK_INT(cfg->http2_idle_timeout, 10);
    CHECK_INT(cfg->max_header_bytes, 16384);
    CHECK_INT(cfg->http2_max_concurrent_requests, 100);
    CHECK_INT(cfg->http2_max_resets, 200);
    CHECK_INT(cfg->http2_max_control_frames, 1000);
    CHECK_INT(cfg->n_tls_listen, 0);
    CHECK_STR(cfg->tls_cert, "");
    CHECK_STR(cfg->tls_key, "");
    CHECK_INT(cfg->backend, SX_CONFIG_BACKEND_ROCKSDB);
    CHECK_STR(cfg->storage_path, in_dir("var/data"));
    CHECK(cfg->storage_sync);
    CHECK_INT(cfg->seal, SX_CONFIG_SEAL_FILE);
    CHECK_STR(cfg->seal_key_file, in_dir("var/seal.key"));
    CHECK_STR(cfg->seal_recovery_key_file, in_dir("var/recovery.key"));
    CHECK_STR(cfg->seal_passphrase_env, "SECRETSD_PASSPHRASE");
    CHECK_STR(cfg->seal_credential, "");
    CHECK_INT(cfg->seal_pwhash_opslimit, crypto_pwhash_OPSLIMIT_MODERATE);
    CHECK_INT(cfg->seal_pwhash_memlimit, crypto_pwhash_MEMLIMIT_MODERATE);
    CHECK_STR(cfg->seal_tcti, "device:/dev/tpmrm0");
    CHECK_INT(cfg->seal_pcrs, 0);
    CHECK_INT(cfg->log_level, SX_LOG_INFO);
    CHECK_STR(cfg->access_log, "-");
    CHECK_STR(cfg->audit_log, "");
    CHECK_STR(cfg->node_id, "");
    done(cfg);
}

static void relative_paths_resolve_against_the_config_folder(void)
{
    sx_config *cfg = load_text("cfg-rel", "[server]\nadmin_socket = ./run/admin.sock\n"
                                          "[storage]\npath = .\n"
                                          "[seal]\nkey_file = ../keys/seal.key\n"
                                          "[log]\naccess_log = .//logs/a.log\naudit_log = \"audit.log\"\n");
    REQUIRE(cfg);
    CHECK_STR(cfg->admin_socket, in_dir("run/admin.sock"));
    CHECK_STR(cfg->storage_path, dir);
    CHECK_STR(cfg->seal_key_file, in_dir("../keys/seal.key"));
    CHECK_STR(cfg->access_log, in_dir("logs/a.log"));
    CHECK_STR(cfg->audit_log, in_dir("audit.log"));
    sx_config_free(cfg);

    /* The folder is made absolute even when the file is named relative to the working directory. */
    char cwd[PATH_MAX];
    REQUIRE(getcwd(cwd, sizeof cwd));
    REQUIRE(chdir(dir) == 0);
    REQUIRE(sx_test_write_file("sub.conf", "[storage]\npath = d\n", 18) == 0);
    cfg = NULL;
    int r = sx_config_load("sub.conf", &cfg, err, sizeof err);
    CHECK(chdir(cwd) == 0);
    CHECK_INT(r, 0);
    REQUIRE(cfg);
    CHECK_STR(cfg->path, "sub.conf");
    CHECK_STR(cfg->dir, dir);
    CHECK_STR(cfg->storage_path, in_dir("d"));
    done(cfg);
}

static void empty_admin_socket_and_logs_mean_off(void)
{
    sx_config *cfg = load_text("cfg-off", "[server]\nadmin_socket =\n[log]\naccess_log = \"\"\naudit_log =\n");
    REQUIRE(cfg);
    CHECK_STR(cfg->admin_socket, "");
    CHECK_STR(cfg->access_log, "");
    CHECK_STR(cfg->audit_log, "");
    done(cfg);
}

static void ipv6_and_host_name_listeners_parse(void)
{
    sx_config *cfg = load_text("cfg-v6", "[server]\nlisten = [::1]:8080\nlisten = [2001:db8::7]:65535\n"
                                         "listen = localhost:1\nlisten = [::ffff:127.0.0.1]:8081\n");
    REQUIRE(cfg);
    REQUIRE(cfg->n_listen == 4);
    CHECK_STR(cfg->listen[0].host, "::1");
    CHECK_INT(cfg->listen[0].port, 8080);
    CHECK_STR(cfg->listen[1].host, "2001:db8::7");
    CHECK_INT(cfg->listen[1].port, 65535);
    CHECK_STR(cfg->listen[2].host, "localhost");
    CHECK_INT(cfg->listen[2].port, 1);
    CHECK_STR(cfg->listen[3].host, "::ffff:127.0.0.1");
    done(cfg);
}

/* Each listen line is one listener, in file order, and an indented line is its own key (inih's
 * multi-line continuation would otherwise make it a second value of the key above). */
static void repeated_listen_is_seen_once_per_line(void)
{
    sx_config *cfg = load_text("cfg-rep", "[server]\n"
                                          "listen = 127.0.0.1:1001\n"
                                          "    listen = 127.0.0.1:1002\n"
                                          "\tthreads = 2\n"
                                          "listen = 127.0.0.1:0\n"
                                          "listen = 127.0.0.1:0\n"
                                          "[tls]\nlisten = 127.0.0.1:1003\ncert = c.pem\nkey = k.pem\n");
    REQUIRE(cfg);
    REQUIRE(cfg->n_listen == 4);
    CHECK_INT(cfg->listen[0].port, 1001);
    CHECK_INT(cfg->listen[0].line, 2);
    CHECK_INT(cfg->listen[1].port, 1002);
    CHECK_INT(cfg->listen[1].line, 3);
    CHECK_INT(cfg->listen[2].line, 5);
    CHECK_INT(cfg->listen[3].line, 6);
    CHECK_INT(cfg->threads, 2);
    REQUIRE(cfg->n_tls_listen == 1);
    CHECK_INT(cfg->tls_listen[0].port, 1003);
    CHECK_INT(cfg->tls_listen[0].line, 8);
    done(cfg);
}

static void tls_listen_alone_means_no_cleartext_listener(void)
{
    sx_config *cfg = load_text("cfg-tls", "[tls]\nlisten = 0.0.0.0:8443\ncert = c.pem\nkey = k.pem\n");
    REQUIRE(cfg);
    CHECK_INT(cfg->n_listen, 0);
    REQUIRE(cfg->n_tls_listen == 1);
    CHECK_STR(cfg->tls_cert, in_dir("c.pem"));
    CHECK_STR(cfg->tls_key, in_dir("k.pem"));
    done(cfg);
}

static void comments_quotes_case_and_blanks_are_handled(void)
{
    sx_config *cfg = load_text("cfg-cmt", "\xEF\xBB\xBF# comment\n"
                                          "; another\n"
                                          "  [ server ]   # section comment\r\n"
                                          "threads = 3 ; inline\r\n"
                                          "max_body_bytes=4K# not a comment without a blank before it\n"
                                          "\n"
                                          "[seal]\n"
                                          "tcti = \"swtpm:host=::1,port=2321\"\n"
                                          "pcrs = SHA256:1, 2 ,3\n"
                                          "[storage]\nsync = No\nbackend = MEMORY\n");
    CHECK(cfg == NULL); /* "4K#..." is junk after the size */
    CHECK(strstr(err, ":5: [server] max_body_bytes: expected a size") != NULL);
    sx_test_rmtree(dir);
    free(dir);

    cfg = load_text("cfg-cmt2", "\xEF\xBB\xBF# comment\n"
                                "; another\n"
                                "  [ server ]   # section comment\r\n"
                                "threads = 3 ; inline\r\n"
                                "max_body_bytes=4K\t# comment\nmax_value_bytes = 1k\n"
                                "\n"
                                "[seal]\n"
                                "tcti = \"swtpm:host=::1,port=2321\"\n"
                                "pcrs = SHA256:1, 2 ,3\n"
                                "[storage]\nsync = No\nbackend = MEMORY\n");
    REQUIRE(cfg);
    CHECK_INT(cfg->threads, 3);
    CHECK_INT(cfg->max_body_bytes, 4096);
    CHECK_STR(cfg->seal_tcti, "swtpm:host=::1,port=2321");
    CHECK_INT(cfg->seal_pcrs, 0xe);
    CHECK(!cfg->storage_sync);
    CHECK_INT(cfg->backend, SX_CONFIG_BACKEND_MEMORY);
    done(cfg);
}

static void sizes_and_booleans_accept_every_spelling(void)
{
    static const struct {
        const char *text;
        size_t bytes;
    } sizes[] = {{"1", 1}, {"0010", 10}, {"3k", 3072}, {"2M", 2097152}, {"1023M", 1072693248}, {"1023K", 1047552}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char text[128];
        snprintf(text, sizeof text, "[server]\nmax_body_bytes = 1G\nmax_value_bytes = %s\n", sizes[i].text);
        sx_config *cfg = load_text("cfg-size", text);
        CHECK(cfg != NULL);
        if (cfg)
            CHECK_INT(cfg->max_value_bytes, sizes[i].bytes);
        done(cfg);
    }
    static const char *const spellings[] = {"true", "yes", "on", "1", "TRUE", "false", "no", "off", "0", "Off"};
    for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++) {
        char text[128];
        snprintf(text, sizeof text, "[storage]\nsync = %s\n", spellings[i]);
        sx_config *cfg = load_text("cfg-bool", text);
        CHECK(cfg != NULL);
        if (cfg)
            CHECK_INT(cfg->storage_sync, i < 5);
        done(cfg);
    }
}

static void parse_pcrs_accepts_banks_lists_and_none(void)
{
    uint32_t m = 99;
    CHECK_INT(sx_config_parse_pcrs("", &m), 0);
    CHECK_INT(m, 0);
    m = 99;
    CHECK_INT(sx_config_parse_pcrs("none", &m), 0);
    CHECK_INT(m, 0);
    CHECK_INT(sx_config_parse_pcrs("sha256:7,14", &m), 0);
    CHECK_INT(m, (1u << 7) | (1u << 14));
    CHECK_INT(sx_config_parse_pcrs("sha256:23", &m), 0);
    CHECK_INT(m, 1u << 23);
    static const char *const bad[] = {"sha256:",    "sha256:24", "sha256:7,",  "sha256:,7", "sha1:7", "7,14",
                                      "sha256:7;8", "sha256:-1", "sha256:7,7", "sha256:x",  "nonex",  "sha256:0007777"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        m = 42;
        if (sx_config_parse_pcrs(bad[i], &m) != -EINVAL || m != 42) {
            fprintf(stderr, "accepted bad pcrs '%s'\n", bad[i]);
            sx_test_failures++;
        }
    }
    CHECK_INT(sx_config_parse_pcrs(NULL, &m), -EINVAL);
}

static void free_accepts_null(void)
{
    sx_config_free(NULL);
}

/* [storage] pool_size 0 (the default) is resolved by the loader, once: threads + 20. */
static void pool_size_0_becomes_threads_plus_20(void)
{
    sx_config *cfg = load_text("cfg-pool", "[server]\nthreads = 3\n");
    REQUIRE(cfg);
    CHECK_INT(cfg->storage_pool_size, 23);
    done(cfg);
    cfg = load_text("cfg-pool", "[server]\nthreads = 5\n[storage]\npool_size = 0\n");
    REQUIRE(cfg);
    CHECK_INT(cfg->storage_pool_size, 25);
    done(cfg);
    cfg = load_text("cfg-pool", "");
    REQUIRE(cfg);
    CHECK_INT(cfg->storage_pool_size, cfg->threads + 20);
    done(cfg);
}

/* Numbers are stored by the width of their field: every numeric row's field is 4 or 8 bytes wide
 * and holds the row's largest value, and a list's count lies inside sx_config. */
static void every_key_table_row_fits_its_field(void)
{
    for (size_t i = 0; i < sx_config_n_items; i++) {
        const sx_config_item *it = &sx_config_items[i];
        int before = sx_test_failures;
        CHECK(it->offset + it->size <= sizeof(sx_config));
        bool number = it->parse == sx_config_set_number || it->parse == sx_config_set_pwhash ||
                      it->parse == sx_config_set_enum || it->parse == sx_config_set_pcrs;
        if (number) {
            CHECK(it->size == 4 || it->size == 8);
            CHECK(it->size == 8 || it->max <= UINT32_MAX);
        }
        if (it->parse == sx_config_set_bool)
            CHECK_INT(it->size, sizeof(bool));
        if (it->parse == sx_config_set_listen || it->parse == sx_config_set_networks)
            CHECK(it->count_offset && it->count_offset + sizeof(size_t) <= sizeof(sx_config) && it->max > 0);
        if (sx_test_failures != before)
            fprintf(stderr, "   in the row of [%s] %s\n", it->key.section, it->key.name);
    }
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"every_key_parsed_to_non_default_values", every_key_parsed_to_non_default_values},
        {"empty_file_gives_every_default", empty_file_gives_every_default},
        {"relative_paths_resolve_against_the_config_folder", relative_paths_resolve_against_the_config_folder},
        {"empty_admin_socket_and_logs_mean_off", empty_admin_socket_and_logs_mean_off},
        {"ipv6_and_host_name_listeners_parse", ipv6_and_host_name_listeners_parse},
        {"repeated_listen_is_seen_once_per_line", repeated_listen_is_seen_once_per_line},
        {"tls_listen_alone_means_no_cleartext_listener", tls_listen_alone_means_no_cleartext_listener},
        {"comments_quotes_case_and_blanks_are_handled", comments_quotes_case_and_blanks_are_handled},
        {"sizes_and_booleans_accept_every_spelling", sizes_and_booleans_accept_every_spelling},
        {"parse_pcrs_accepts_banks_lists_and_none", parse_pcrs_accepts_banks_lists_and_none},
        {"free_accepts_null", free_accepts_null},
        {"pool_size_0_becomes_threads_plus_20", pool_size_0_becomes_threads_plus_20},
        {"every_key_table_row_fits_its_field", every_key_table_row_fits_its_field},
    };
    return sx_test_main(tests, sizeof tests / sizeof *tests, argc, argv);
}
