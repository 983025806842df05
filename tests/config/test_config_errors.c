/*
 * test_config_errors.c - every kind of mistake in a config file stops the load with its exact
 * "FILE:LINE: what is wrong" message and the right negative errno, and leaves *ret untouched.
 * The files are written into one temporary folder that main() removes at the end.
 */
#include "config/config.h"
#include "testutil.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

static char *dir;
static char path[PATH_MAX];

/* Load text and check the result is ret with the message path + ":" + msg. */
static void expect_at(int line, const char *text, int ret, const char *msg)
{
    snprintf(path, sizeof path, "%s/bad.conf", dir);
    if (sx_test_write_file(path, text, strlen(text)) < 0)
        abort();
    sx_config *sentinel = (sx_config *)&dir, *cfg = sentinel;
    char err[512], want[PATH_MAX + 512];
    memset(err, 'x', sizeof err);
    int r = sx_config_load(path, &cfg, err, sizeof err);
    snprintf(want, sizeof want, "%s:%s", path, msg);
    if (r != ret || cfg != sentinel || strcmp(err, want) != 0) {
        fprintf(stderr, "line %d: got %d \"%s\"\n         want %d \"%s\"\n", line, r, err, ret, want);
        sx_test_failures++;
    }
    if (cfg != sentinel)
        sx_config_free(cfg);
}
#define EXPECT(text, msg) expect_at(__LINE__, text, -EINVAL, msg)

static void missing_file_is_enoent_at_line_0(void)
{
    char p[PATH_MAX], err[256];
    snprintf(p, sizeof p, "%s/nope.conf", dir);
    sx_config *cfg = NULL;
    CHECK_INT(sx_config_load(p, &cfg, err, sizeof err), -ENOENT);
    CHECK(cfg == NULL);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:0: cannot read config file: No such file or directory", p);
    CHECK_STR(err, want);

    /* A folder is not a config file. */
    CHECK_INT(sx_config_load(dir, &cfg, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:0: cannot read config file: not a regular file", dir);
    CHECK_STR(err, want);
}

static void unknown_section_even_without_keys(void)
{
    EXPECT("[server]\nthreads = 1\n[srever]\n", "3: unknown section [srever]");
    EXPECT("# x\n[Server]\n", "2: unknown section [Server]");
    EXPECT("[]\n", "1: unknown section []");
}

static void unknown_key_names_key_and_section(void)
{
    EXPECT("[server]\nthread = 1\n", "2: unknown key 'thread' in [server]");
    EXPECT("[log]\n\npath = x\n", "3: unknown key 'path' in [log]");
    EXPECT("threads = 1\n", "1: key 'threads' is outside any section");
}

static void syntax_mistakes(void)
{
    EXPECT("[server]\nthreads\n", "2: expected 'key = value' or '[section]', got 'threads'");
    EXPECT("[server]\nlisten: 127.0.0.1:80\n", "2: expected 'key = value' or '[section]', got 'listen: 127.0.0.1:80'");
    EXPECT("[server]\n= 4\n", "2: expected 'key = value' or '[section]', got '= 4'");
    EXPECT("[server\n", "1: expected '[section]', got '[server'");
    EXPECT("[server] threads = 1\n", "1: expected '[section]', got '[server] threads = 1'");
    EXPECT("[server]\nthreads = 1\x01\n", "2: control character (byte 0x01) in line");
    char big[400];
    snprintf(big, sizeof big, "[server]\nadmin_socket = /%0250d\n", 0);
    EXPECT(big, "2: line too long (at most 198 characters without comments)");
}

static void bad_boolean(void)
{
    EXPECT("[storage]\nsync = maybe\n", "2: [storage] sync: expected true/false, yes/no, on/off or 1/0, got 'maybe'");
    EXPECT("[storage]\nsync =\n", "2: [storage] sync: expected true/false, yes/no, on/off or 1/0, got ''");
}

static void bad_sizes_and_numbers(void)
{
    EXPECT("[server]\nmax_body_bytes = 1X\n", "2: [server] max_body_bytes: expected a size (a whole number, optionally "
                                              "followed by K, M or G), got '1X'");
    EXPECT("[server]\nmax_body_bytes = 1.5M\n", "2: [server] max_body_bytes: expected a size (a whole number, "
                                                "optionally followed by K, M or G), got '1.5M'");
    EXPECT("[server]\nmax_body_bytes = M\n", "2: [server] max_body_bytes: expected a size (a whole number, "
                                             "optionally followed by K, M or G), got 'M'");
    EXPECT("[server]\nmax_body_bytes = -1\n", "2: [server] max_body_bytes: must not be negative, got '-1'");
    EXPECT("[server]\nmax_body_bytes = 0\n", "2: [server] max_body_bytes: must be 1..1073741824 bytes, got '0'");
    EXPECT("[server]\nmax_body_bytes = 2G\n", "2: [server] max_body_bytes: must be 1..1073741824 bytes, got '2G'");
    EXPECT("[server]\nmax_body_bytes = 99999999999999999999999\n",
           "2: [server] max_body_bytes: must be 1..1073741824 bytes, got '99999999999999999999999'");
    EXPECT("[server]\nmax_body_bytes = 18014398509481984K\n",
           "2: [server] max_body_bytes: must be 1..1073741824 bytes, got '18014398509481984K'");
    EXPECT("[server]\nmax_value_bytes = 0\n", "2: [server] max_value_bytes: must be 1..1073741824 bytes, got '0'");
    EXPECT("[seal]\npwhash_memlimit = 1K\n", "2: [seal] pwhash_memlimit: must be 8192..4398046510080 bytes, got '1K'");
    EXPECT("[seal]\npwhash_opslimit = 0\n", "2: [seal] pwhash_opslimit: must be 1..4294967295, got '0'");
    /* Argon2id below libsodium's INTERACTIVE preset is refused with the floor and the default named. */
    EXPECT("[seal]\npwhash_opslimit = 1\n",
           "2: [seal] pwhash_opslimit: must be at least 2 (libsodium's INTERACTIVE; the default is 3), got '1'");
    EXPECT("[seal]\npwhash_memlimit = 8M\n",
           "2: [seal] pwhash_memlimit: must be at least 64M (libsodium's INTERACTIVE; the default is 256M), got '8M'");
    EXPECT("[seal]\npwhash_memlimit = 65535K\n", "2: [seal] pwhash_memlimit: must be at least 64M (libsodium's "
                                                 "INTERACTIVE; the default is 256M), got '65535K'");
    EXPECT("[seal]\nrecovery_key_file =\n", "2: [seal] recovery_key_file: must not be empty");
    EXPECT("[server]\nthreads = 257\n", "2: [server] threads: must be 0..256, got '257'");
    EXPECT("[server]\nthreads = 0x10\n", "2: [server] threads: expected a whole number, got '0x10'");
    EXPECT("[server]\nthreads = +1\n", "2: [server] threads: expected a whole number, got '+1'");
    EXPECT("[server]\nthreads = -1\n", "2: [server] threads: must not be negative, got '-1'");
    EXPECT("[server]\ndrain_timeout = 3601\n", "2: [server] drain_timeout: must be 0..3600, got '3601'");
    EXPECT("[server]\ndrain_timeout = 10s\n", "2: [server] drain_timeout: expected a whole number, got '10s'");
    EXPECT("[server]\nmax_connections = 0\n", "2: [server] max_connections: must be 1..1048576, got '0'");
    EXPECT("[server]\nrequest_timeout = 0\n", "2: [server] request_timeout: must be 1..3600, got '0'");
    EXPECT("[server]\nhttp2_idle_timeout = 3601\n", "2: [server] http2_idle_timeout: must be 1..3600, got '3601'");
    EXPECT("[server]\nmax_header_bytes = 512\n", "2: [server] max_header_bytes: must be 1024..262144 bytes, got '512'");
    EXPECT("[server]\nhttp2_max_concurrent_requests = 101\n",
           "2: [server] http2_max_concurrent_requests: must be 1..100, got '101'");
    EXPECT("[server]\nhttp2_max_resets = -1\n", "2: [server] http2_max_resets: must not be negative, got '-1'");
    EXPECT("[server]\nhttp2_max_control_frames = 1000001\n",
           "2: [server] http2_max_control_frames: must be 0..1000000, got '1000001'");
}

static void bad_port(void)
{
    EXPECT("[server]\nlisten = 127.0.0.1:65536\n",
           "2: [server] listen: bad port in '127.0.0.1:65536' (expected 0..65535)");
    EXPECT("[server]\nlisten = 127.0.0.1:\n", "2: [server] listen: bad port in '127.0.0.1:' (expected 0..65535)");
    EXPECT("[server]\nlisten = 127.0.0.1:-1\n", "2: [server] listen: bad port in '127.0.0.1:-1' (expected 0..65535)");
    EXPECT("[server]\nlisten = [::1]:80x\n", "2: [server] listen: bad port in '[::1]:80x' (expected 0..65535)");
}

static void bad_host_port_syntax(void)
{
    EXPECT("[server]\nlisten = 8080\n",
           "2: [server] listen: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080, got '8080'");
    EXPECT("[server]\nlisten = ::1:8080\n",
           "2: [server] listen: an IPv6 address must be in brackets, e.g. [::1]:8080, got '::1:8080'");
    EXPECT("[server]\nlisten = [::1]8080\n",
           "2: [server] listen: expected [IPV6]:PORT, e.g. [::1]:8080, got '[::1]8080'");
    EXPECT("[server]\nlisten = [::1:8080\n",
           "2: [server] listen: expected [IPV6]:PORT, e.g. [::1]:8080, got '[::1:8080'");
    EXPECT("[tls]\nlisten = [::g]:443\n", "2: [tls] listen: bad IPv6 address in '[::g]:443'");
    EXPECT("[tls]\nlisten = [127.0.0.1]:443\n", "2: [tls] listen: bad IPv6 address in '[127.0.0.1]:443'");
    EXPECT("[server]\nlisten = :8080\n",
           "2: [server] listen: missing host in ':8080' (0.0.0.0 or [::] listens on every address)");
    EXPECT("[server]\nlisten = 999.1.1.1:80\n", "2: [server] listen: bad host in '999.1.1.1:80'");
    EXPECT("[server]\nlisten = bad_host:80\n", "2: [server] listen: bad host in 'bad_host:80'");
    EXPECT("[server]\nlisten =\n", "2: [server] listen: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080, got ''");
}

static void same_address_twice(void)
{
    EXPECT("[server]\nlisten = 127.0.0.1:8080\n[tls]\nlisten = 127.0.0.1:8080\ncert = c\nkey = k\n",
           "4: [tls] listen: 127.0.0.1:8080 is already configured on line 2");
    EXPECT("[server]\nlisten = [::1]:80\n\nlisten = [::1]:80\n",
           "4: [server] listen: [::1]:80 is already configured on line 2");
}

static void bad_pcrs(void)
{
    EXPECT("[seal]\npcrs = sha256:24\n",
           "2: [seal] pcrs: expected none or sha256:N[,N...] with PCR numbers 0..23, got 'sha256:24'");
    EXPECT("[seal]\npcrs = sha1:7\n",
           "2: [seal] pcrs: expected none or sha256:N[,N...] with PCR numbers 0..23, got 'sha1:7'");
    EXPECT("[seal]\npcrs = 7,14\n",
           "2: [seal] pcrs: expected none or sha256:N[,N...] with PCR numbers 0..23, got '7,14'");
}

static void bad_credential_names(void)
{
    EXPECT("[seal]\ncredential = a/b\n", "2: [seal] credential: expected a credential name (1..255 printable "
                                         "characters, no '/' or blank, not . or ..), got 'a/b'");
    EXPECT("[seal]\ncredential = ..\n", "2: [seal] credential: expected a credential name (1..255 printable "
                                        "characters, no '/' or blank, not . or ..), got '..'");
    EXPECT("[seal]\ncredential = \"a b\"\n", "2: [seal] credential: expected a credential name (1..255 "
                                             "printable characters, no '/' or blank, not . or ..), got 'a b'");
    EXPECT("[seal]\ntype = tpm\ncredential = seal\n",
           "3: [seal] credential: only for type = file (the key) or passphrase (the passphrase); a tpm seal has no "
           "secret to load");
}

static void bad_level_and_enums(void)
{
    EXPECT("[log]\nlevel = verbose\n", "2: [log] level: expected error, warn, info or debug, got 'verbose'");
    EXPECT("[storage]\nbackend = lmdb\n", "2: [storage] backend: expected rocksdb, memory or postgres, got 'lmdb'");
    EXPECT("[seal]\ntype = hsm\n", "2: [seal] type: expected file, passphrase or tpm, got 'hsm'");
}

static void bad_strings_and_paths(void)
{
    EXPECT("[seal]\npassphrase_env = 1PASS\n",
           "2: [seal] passphrase_env: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got '1PASS'");
    EXPECT("[seal]\npassphrase_env = MY-PASS\n",
           "2: [seal] passphrase_env: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got 'MY-PASS'");
    EXPECT("[seal]\npassphrase_env =\n",
           "2: [seal] passphrase_env: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got ''");
    EXPECT("[seal]\ntcti =\n", "2: [seal] tcti: must not be empty (e.g. device:/dev/tpmrm0)");
    EXPECT("[storage]\npath = \"\"\n", "2: [storage] path: must not be empty");
    EXPECT("[seal]\nkey_file =\n", "2: [seal] key_file: must not be empty");
    EXPECT("[storage]\npath = ~/data\n", "2: [storage] path: '~' is not expanded; use an absolute path or one "
                                         "relative to the config file, got '~/data'");
    EXPECT("[server]\nnode_id = a/b\n",
           "2: [server] node_id: expected a node id (1..64 characters of [A-Za-z0-9._-]), got 'a/b'");
    EXPECT("[server]\nnode_id = "
           "n12345678901234567890123456789012345678901234567890123456789012345\n",
           "2: [server] node_id: expected a node id (1..64 characters of [A-Za-z0-9._-]), got "
           "'n12345678901234567890123456789012345678901234567890123456789012345'");
    EXPECT("[log]\naudit_log = -\n", "2: [log] audit_log: '-' (stderr) is only allowed for [log] access_log");
    EXPECT("[secrets]\nrecovery_window = 7w\n", "2: [secrets] recovery_window: expected a duration (a whole number "
                                                "of seconds, or followed by s, m, h or d), got '7w'");
    EXPECT("[secrets]\nrecovery_window = 366d\n",
           "2: [secrets] recovery_window: must be 0..31536000 seconds, got '366d'");
    EXPECT("[secrets]\nsweep_interval = 0\n", "2: [secrets] sweep_interval: must be 1..86400 seconds, got '0'");
    EXPECT("[secrets]\nsweep_interval = -5s\n", "2: [secrets] sweep_interval: expected a duration (a whole number "
                                                "of seconds, or followed by s, m, h or d), got '-5s'");
    char text[400];
    snprintf(text, sizeof text, "[server]\n\nadmin_socket = /%0120d\n", 0);
    EXPECT(text, "3: [server] admin_socket: the absolute path is 121 bytes, a Unix socket allows at most 107");
}

static void duplicate_key_names_both_lines(void)
{
    EXPECT("[server]\nthreads = 1\nthreads = 2\n", "3: [server] threads: set twice (first on line 2)");
    EXPECT("[server]\nthreads = 1\n[log]\nlevel = info\n[server]\nthreads = 1\n",
           "6: [server] threads: set twice (first on line 2)");
    EXPECT("[tls]\ncert = a\ncert = a\n", "3: [tls] cert: set twice (first on line 2)");
}

static void tls_listen_needs_cert_and_key(void)
{
    EXPECT("[tls]\n\nlisten = 0.0.0.0:8443\nkey = k.pem\n", "3: [tls] listen: needs [tls] cert");
    EXPECT("[tls]\nlisten = 0.0.0.0:8443\ncert = c.pem\n", "2: [tls] listen: needs [tls] key");
    EXPECT("[tls]\nlisten = 0.0.0.0:8443\nlisten = 0.0.0.0:8444\n", "2: [tls] listen: needs [tls] cert and key");
    EXPECT("[tls]\nlisten = 0.0.0.0:8443\ncert =\nkey = k\n", "2: [tls] listen: needs [tls] cert");
}

static void max_value_must_be_below_max_body(void)
{
    EXPECT("[server]\nmax_body_bytes = 64K\n",
           "2: [server] max_value_bytes (65536) must be less than max_body_bytes (65536)");
    EXPECT("[server]\nmax_body_bytes = 1M\nmax_value_bytes = 2M\n",
           "3: [server] max_value_bytes (2097152) must be less than max_body_bytes (1048576)");
}

/* [storage] backend = postgres: a dsn is required, may not carry a password (the message never
 * repeats the value), and is refused with any other backend. */
static void postgres_dsn_rules(void)
{
    EXPECT("[storage]\nbackend = postgres\n", "2: [storage] backend = postgres needs [storage] dsn");
    EXPECT("[storage]\ndsn = host=db\n", "2: [storage] dsn: only used with backend = postgres");
    const char *with_password[] = {
        "host=db password=hunter2 user=s",
        "host=db user=s password = hunter2",
        "postgresql://s:hunter2@db/secretsd",
        "postgres://s:hunter2@db:5432/secretsd?sslmode=require",
        "postgresql://s@db/secretsd?password=hunter2",
    };
    for (size_t i = 0; i < sizeof with_password / sizeof *with_password; i++) {
        char text[256];
        snprintf(text, sizeof text, "[storage]\nbackend = postgres\ndsn = %s\n", with_password[i]);
        EXPECT(text, "3: [storage] dsn: must not contain a password; give it through [storage] password_env or "
                     "password_file");
    }
    EXPECT("[storage]\npassword_env = 9X\n",
           "2: [storage] password_env: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got '9X'");
    EXPECT("[storage]\npool_size = 5000\n", "2: [storage] pool_size: must be 0..1024, got '5000'");
    /* What is accepted. */
    snprintf(path, sizeof path, "%s/pg.conf", dir);
    const char *ok = "[storage]\nbackend = postgres\ndsn = \"host=db1,db2 dbname=s user=s passfile=/etc/pgpass\"\n"
                     "password_file = pw\npool_size = 40\n";
    REQUIRE(sx_test_write_file(path, ok, strlen(ok)) == 0);
    sx_config *cfg = NULL;
    char err[512];
    REQUIRE(sx_config_load(path, &cfg, err, sizeof err) == 0);
    CHECK_INT(cfg->backend, SX_CONFIG_BACKEND_POSTGRES);
    CHECK_STR(cfg->storage_dsn, "host=db1,db2 dbname=s user=s passfile=/etc/pgpass");
    CHECK_STR(cfg->storage_password_env, "SECRETSD_DB_PASSWORD");
    CHECK(cfg->storage_password_file[0] == '/' && strstr(cfg->storage_password_file, "/pw"));
    CHECK_INT(cfg->storage_pool_size, 40);
    sx_config_free(cfg);
}

static void first_mistake_wins_and_err_is_bounded(void)
{
    EXPECT("[server]\nthreads = x\nbogus = 1\n", "2: [server] threads: expected a whole number, got 'x'");

    /* A short buffer still ends in NUL; a NULL buffer is allowed. */
    const char *text = "[nope]\n";
    snprintf(path, sizeof path, "%s/bad.conf", dir);
    REQUIRE(sx_test_write_file(path, text, strlen(text)) == 0);
    char err[8];
    sx_config *cfg = NULL;
    CHECK_INT(sx_config_load(path, &cfg, err, sizeof err), -EINVAL);
    CHECK_INT(strlen(err), 7);
    CHECK_INT(sx_config_load(path, &cfg, NULL, 0), -EINVAL);
    CHECK(cfg == NULL);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"missing_file_is_enoent_at_line_0", missing_file_is_enoent_at_line_0},
        {"unknown_section_even_without_keys", unknown_section_even_without_keys},
        {"unknown_key_names_key_and_section", unknown_key_names_key_and_section},
        {"syntax_mistakes", syntax_mistakes},
        {"bad_boolean", bad_boolean},
        {"bad_sizes_and_numbers", bad_sizes_and_numbers},
        {"bad_port", bad_port},
        {"bad_host_port_syntax", bad_host_port_syntax},
        {"same_address_twice", same_address_twice},
        {"bad_pcrs", bad_pcrs},
        {"bad_credential_names", bad_credential_names},
        {"bad_level_and_enums", bad_level_and_enums},
        {"bad_strings_and_paths", bad_strings_and_paths},
        {"duplicate_key_names_both_lines", duplicate_key_names_both_lines},
        {"tls_listen_needs_cert_and_key", tls_listen_needs_cert_and_key},
        {"max_value_must_be_below_max_body", max_value_must_be_below_max_body},
        {"first_mistake_wins_and_err_is_bounded", first_mistake_wins_and_err_is_bounded},
        {"postgres_dsn_rules", postgres_dsn_rules},
    };
    dir = sx_test_tmpdir("cfg-errors");
    int r = sx_test_main(tests, sizeof tests / sizeof *tests, argc, argv);
    sx_test_rmtree(dir);
    free(dir);
    return r;
}
