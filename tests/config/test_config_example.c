/*
 * test_config_example.c - secrets.conf.example at the top of the source tree (SX_SOURCE_DIR) is a
 * valid configuration, equals the built-in defaults, and documents every key the parser accepts
 * in the right section, set to the default of the parser's key table; and the start-up path
 * (config_check, SX_CONFIG_CHECK) prints the message and exits with status 2 on a bad file.
 */
#include "config/config.h"
#include "testutil.h"

#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

#define EXAMPLE SX_SOURCE_DIR "/secrets.conf.example"

static char *dir;

static sx_config *load(const char *path)
{
    sx_config *cfg = NULL;
    char err[512];
    if (sx_config_load(path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "load %s: %s\n", path, err);
        return NULL;
    }
    return cfg;
}

static void example_loads_in_place(void)
{
    sx_config *cfg = load(EXAMPLE);
    REQUIRE(cfg);
    char *src = realpath(SX_SOURCE_DIR, NULL);
    REQUIRE(src);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "%s/var/data", src);
    CHECK_STR(cfg->storage_path, want);
    snprintf(want, sizeof want, "%s/var/seal.key", src);
    CHECK_STR(cfg->seal_key_file, want);
    snprintf(want, sizeof want, "%s/var/secretsd.sock", src);
    CHECK_STR(cfg->admin_socket, want);
    REQUIRE(cfg->n_listen == 1);
    CHECK_STR(cfg->listen[0].host, "127.0.0.1");
    CHECK_INT(cfg->listen[0].port, 8080);
    CHECK_STR(cfg->access_log, "-");
    free(src);
    sx_config_free(cfg);
}

/* Copied next to an empty file (as scripts/run copies it to ./secrets.conf), the example gives
 * exactly what an empty file gives: every value in it is the default. */
static void example_equals_the_defaults(void)
{
    size_t len;
    char *text = sx_test_read_file(EXAMPLE, &len);
    REQUIRE(text);
    char p_ex[PATH_MAX], p_empty[PATH_MAX];
    snprintf(p_ex, sizeof p_ex, "%s/secrets.conf", dir);
    snprintf(p_empty, sizeof p_empty, "%s/empty.conf", dir);
    REQUIRE(sx_test_write_file(p_ex, text, len) == 0);
    REQUIRE(sx_test_write_file(p_empty, "", 0) == 0);
    free(text);
    sx_config *a = load(p_ex), *b = load(p_empty);
    CHECK(a && b);
    if (a && b) {
        CHECK_STR(a->dir, b->dir);
        CHECK_INT(a->n_listen, b->n_listen);
        CHECK_STR(a->listen[0].host, b->listen[0].host);
        CHECK_INT(a->listen[0].port, b->listen[0].port);
        CHECK_INT(a->threads, b->threads);
        CHECK_STR(a->admin_socket, b->admin_socket);
        CHECK_INT(a->max_body_bytes, b->max_body_bytes);
        CHECK_INT(a->max_value_bytes, b->max_value_bytes);
        CHECK_INT(a->drain_timeout, b->drain_timeout);
        CHECK_INT(a->max_connections, b->max_connections);
        CHECK_INT(a->request_timeout, b->request_timeout);
        CHECK_INT(a->http2_idle_timeout, b->http2_idle_timeout);
        CHECK_INT(a->max_header_bytes, b->max_header_bytes);
        CHECK_INT(a->http2_max_concurrent_requests, b->http2_max_concurrent_requests);
        CHECK_INT(a->http2_max_resets, b->http2_max_resets);
        CHECK_INT(a->http2_max_control_frames, b->http2_max_control_frames);
        CHECK_STR(a->node_id, b->node_id);
        CHECK_INT(a->n_tls_listen, b->n_tls_listen);
        CHECK_STR(a->tls_cert, b->tls_cert);
        CHECK_STR(a->tls_key, b->tls_key);
        CHECK_INT(a->backend, b->backend);
        CHECK_STR(a->storage_path, b->storage_path);
        CHECK_INT(a->storage_sync, b->storage_sync);
        CHECK_INT(a->seal, b->seal);
        CHECK_STR(a->seal_key_file, b->seal_key_file);
        CHECK_STR(a->seal_recovery_key_file, b->seal_recovery_key_file);
        CHECK_STR(a->seal_passphrase_env, b->seal_passphrase_env);
        CHECK_STR(a->seal_credential, b->seal_credential);
        CHECK_INT(a->seal_pwhash_opslimit, b->seal_pwhash_opslimit);
        CHECK_INT(a->seal_pwhash_memlimit, b->seal_pwhash_memlimit);
        CHECK_STR(a->seal_tcti, b->seal_tcti);
        CHECK_INT(a->seal_pcrs, b->seal_pcrs);
        CHECK_INT(a->log_level, b->log_level);
        CHECK_STR(a->access_log, b->access_log);
        CHECK_STR(a->audit_log, b->audit_log);
    }
    sx_config_free(a);
    sx_config_free(b);
}

/* The example's line of key: "key = value" in its section, or commented out as "# key = value".
 * Its value goes into value, whether it is commented out into *commented, whether a comment line
 * is right above it into *explained. False when there is no such line. */
static bool example_line(const char *text, const sx_config_key *key, char *value, size_t cap, bool *commented,
                         bool *explained)
{
    char section[64] = "", prev[256] = "";
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 255 ? len : 255), line);
        if (buf[0] == '[')
            snprintf(section, sizeof section, "%.*s", (int)strcspn(buf + 1, "]"), buf + 1);
        const char *k = buf[0] == '#' ? buf + 1 + strspn(buf + 1, " ") : buf;
        size_t nl = strlen(key->name);
        if (strcmp(section, key->section) == 0 && strncmp(k, key->name, nl) == 0 && strncmp(k + nl, " =", 2) == 0) {
            const char *v = k + nl + 2;
            snprintf(value, cap, "%s", v + strspn(v, " "));
            *commented = buf[0] == '#';
            *explained = prev[0] == '#';
            return true;
        }
        snprintf(prev, sizeof prev, "%s", buf);
        line = end ? end + 1 : NULL;
    }
    return false;
}

/* Every key the parser accepts appears in its section, as "key =" or commented out as "# key =",
 * with a comment line right above it. */
static void example_documents_every_key(void)
{
    char *text = sx_test_read_file(EXAMPLE, NULL);
    REQUIRE(text);
    size_t n = 0;
    while (sx_config_key_at(n))
        n++;
    CHECK(n >= 23);
    for (size_t i = 0; i < n; i++) {
        const sx_config_key *key = sx_config_key_at(i);
        char value[256];
        bool commented, explained;
        if (!example_line(text, key, value, sizeof value, &commented, &explained)) {
            fprintf(stderr, "secrets.conf.example does not document [%s] %s\n", key->section, key->name);
            sx_test_failures++;
        } else if (!explained) {
            fprintf(stderr, "[%s] %s has no comment above it\n", key->section, key->name);
            sx_test_failures++;
        }
    }
    free(text);
}

/* The example sets every key that has a default to exactly the default of the parser's key table,
 * as written there ("64K", not 65536), and comments out only keys whose absence means none or
 * off: the table and the file say the same thing. */
static void example_shows_each_default_of_the_key_table(void)
{
    char *text = sx_test_read_file(EXAMPLE, NULL);
    REQUIRE(text);
    const sx_config_key *key;
    for (size_t i = 0; (key = sx_config_key_at(i)); i++) {
        char value[256];
        bool commented, explained;
        if (!example_line(text, key, value, sizeof value, &commented, &explained))
            continue; /* example_documents_every_key reports it */
        if (commented && key->dflt && *key->dflt) {
            fprintf(stderr, "[%s] %s has the default '%s' but is commented out in secrets.conf.example\n", key->section,
                    key->name, key->dflt);
            sx_test_failures++;
        } else if (!commented && (!key->dflt || strcmp(value, key->dflt) != 0)) {
            fprintf(stderr, "[%s] %s = %s in secrets.conf.example, but its default is %s\n", key->section, key->name,
                    value, key->dflt ? key->dflt : "(none)");
            sx_test_failures++;
        }
    }
    free(text);
}

/* Run config_check on path; returns its exit status and puts its stderr into out. */
static int run_check(const char *path, char *out, size_t outlen)
{
    char errfile[PATH_MAX];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = {(char *)SX_CONFIG_CHECK, (char *)path, NULL};
    pid_t pid;
    int r = posix_spawn(&pid, SX_CONFIG_CHECK, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    char *s = sx_test_read_file(errfile, NULL);
    snprintf(out, outlen, "%s", s ? s : "");
    free(s);
    return WEXITSTATUS(status);
}

static void startup_path_exits_2_with_the_message(void)
{
    char out[1024], p[PATH_MAX], want[PATH_MAX + 128];
    CHECK_INT(run_check(EXAMPLE, out, sizeof out), 0);
    CHECK_STR(out, "");

    snprintf(p, sizeof p, "%s/bad.conf", dir);
    REQUIRE(sx_test_write_file(p, "[server]\nthreads = many\n", 24) == 0);
    CHECK_INT(run_check(p, out, sizeof out), 2);
    snprintf(want, sizeof want, "%s:2: [server] threads: expected a whole number, got 'many'\n", p);
    CHECK_STR(out, want);

    snprintf(p, sizeof p, "%s/missing.conf", dir);
    CHECK_INT(run_check(p, out, sizeof out), 2);
    snprintf(want, sizeof want, "%s:0: cannot read config file: No such file or directory\n", p);
    CHECK_STR(out, want);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"example_loads_in_place", example_loads_in_place},
        {"example_equals_the_defaults", example_equals_the_defaults},
        {"example_documents_every_key", example_documents_every_key},
        {"example_shows_each_default_of_the_key_table", example_shows_each_default_of_the_key_table},
        {"startup_path_exits_2_with_the_message", startup_path_exits_2_with_the_message},
    };
    dir = sx_test_tmpdir("cfg-example");
    int r = sx_test_main(tests, sizeof tests / sizeof *tests, argc, argv);
    sx_test_rmtree(dir);
    free(dir);
    return r;
}
