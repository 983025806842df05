/*
 * test_ctl.c - secretsctl's client commands (secret, export, run) against the real secretsd:
 * every `secret` subcommand and its exit statuses, export's three formats round-tripped through
 * sh, bash and jq with values full of quotes, newlines, `$`, backslashes and unicode, and (in
 * test_ctl_run.c) `run` with and without --watch and its fallback snapshot.
 *
 * `test_ctl [test names...]`: each ctest entry runs one test against a server of its own, with
 * the owner token only in SECRETSD_TOKEN; at the end no file of the run may hold the token.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_util.h"
#include "test_ctl.h"

/* ---- secret ------------------------------------------------------------------------------------------ */

static void secret_commands_work_end_to_end(void)
{
    char *out = NULL, *err = NULL;
    /* set from stdin creates the secret; the value is taken byte for byte */
    CHECK_INT(ctl_sh(&out, NULL, "secret set acme/web/dev/DB_PASSWORD --description 'primary db' <<'EOF'\nfirst\nEOF"),
              0);
    CHECK(strstr(out, "DB_PASSWORD: value set (secret created)") != NULL);
    free(out);
    CHECK_INT(ctl_sh(&out, NULL, "secret get acme/web/dev/DB_PASSWORD"), 0);
    CHECK_STR(out, "first\n\n"); /* the value "first\n" and get's newline */
    free(out);
    ctl_expect(0, "first\n", "secret get -n acme/web/dev/DB_PASSWORD");
    /* --from-file, a second version */
    char *vf = sx_test_path(g_dir, "value.txt");
    CHECK_INT(sx_test_write_file(vf, "s3cr3t 'two'", 12), 0);
    ctl_expect(0, "DB_PASSWORD: value set\n", "secret set --from-file '%s' acme/web/dev/DB_PASSWORD", vf);
    free(vf);
    ctl_expect(0, "s3cr3t 'two'", "secret get -n acme/web/dev/DB_PASSWORD");
    ctl_expect(0, "first\n", "secret get -n --version 1 acme/web/dev/DB_PASSWORD");
    ctl_expect(0, "s3cr3t 'two'", "secret get --json acme/web/dev/DB_PASSWORD | jq -j .value");
    /* list: people and --json (the server's answer, never a value) */
    CHECK_INT(ctl_sh(&out, NULL, "secret list acme/web/dev"), 0);
    CHECK(strstr(out, "DB_PASSWORD") && strstr(out, "primary db") && !strstr(out, "s3cr3t"));
    free(out);
    ctl_expect(0, "DB_PASSWORD\ntrue\n", "--json secret list acme/web/dev | jq -r '.[0].name, .[0].hasValue'");
    /* versions, rollback */
    CHECK_INT(ctl_sh(&out, NULL, "secret versions acme/web/dev/DB_PASSWORD"), 0);
    CHECK(strstr(out, "2  current") && strstr(out, "1  previous"));
    free(out);
    CHECK_INT(ctl_sh(&out, NULL, "secret rollback --version 1 acme/web/dev/DB_PASSWORD"), 0);
    free(out);
    ctl_expect(0, "[3,2,1]\n", "secret versions --json acme/web/dev/DB_PASSWORD | jq -c '[.[].version]'");
    ctl_expect(0, "first\n", "secret get -n acme/web/dev/DB_PASSWORD");
    /* delete, then the name is gone (3), then restore */
    ctl_expect(0, "DB_PASSWORD: deleted\n", "secret delete acme/web/dev/DB_PASSWORD");
    CHECK_INT(ctl_sh(&out, &err, "secret get acme/web/dev/DB_PASSWORD"), 3);
    CHECK_STR(out, "");
    CHECK(strstr(err, "secret \"DB_PASSWORD\": 404:") != NULL);
    free(out);
    free(err);
    /* POST .../deleted-secrets/{name}/restore: a server without that route answers 404 (exit 3),
     * the only status tolerated here besides success. */
    int st = ctl_sh(&out, &err, "secret restore acme/web/dev/DB_PASSWORD");
    CHECK(st == 0 || st == 3);
    if (st == 0) {
        CHECK_STR(out, "DB_PASSWORD: restored\n");
        free(out);
        CHECK_INT(ctl_sh(&out, NULL, "secret list acme/web/dev"), 0);
        CHECK(strstr(out, "DB_PASSWORD") != NULL);
    } else {
        fprintf(stderr, "   (this server has no restore route: 404 tolerated)\n");
    }
    free(out);
    free(err);
    /* h2c by default; HTTP/1.1 on request */
    CHECK_INT(ctl_sh(&out, NULL, "secret list --http1.1 acme/web/dev"), 0);
    free(out);
}

static void secret_exit_statuses_say_not_found_forbidden_and_usage(void)
{
    char *out = NULL, *err = NULL;
    CHECK(ctl_api_set("/acme/web/envs/dev", "API_KEY", "k-123"));
    /* 3: not found (a name, a version) */
    CHECK_INT(ctl_sh(NULL, NULL, "secret get acme/web/dev/NOPE"), 3);
    CHECK_INT(ctl_sh(NULL, NULL, "secret get --version 9 acme/web/dev/API_KEY"), 3);
    CHECK_INT(ctl_sh(NULL, NULL, "secret delete acme/web/dev/NOPE"), 3);
    CHECK_INT(ctl_sh(NULL, NULL, "secret versions acme/web/dev/NOPE"), 3);
    /* 4: a viewer may list but not reveal (403); another org's scope (403); a bad token (401) */
    char *viewer = sx_srv_mint_token(&g_srv, "acme", NULL, NULL, "viewer", NULL);
    REQUIRE(viewer);
    char *tf = sx_test_path(g_dir, "viewer.token");
    char *line = malloc(strlen(viewer) + 2);
    sprintf(line, "%s\n", viewer);
    CHECK_INT(sx_test_write_file(tf, line, strlen(line)), 0);
    CHECK_INT(ctl_sh(&out, NULL, "secret list --token-file '%s' acme/web/dev", tf), 0);
    CHECK(strstr(out, "API_KEY") != NULL);
    free(out);
    CHECK_INT(ctl_sh(&out, &err, "secret get --token-file '%s' acme/web/dev/API_KEY", tf), 4);
    CHECK_STR(out, "");
    CHECK(strstr(err, "403") && !strstr(err, viewer) && !strstr(err, "k-123"));
    free(out);
    free(err);
    CHECK_INT(ctl_sh(NULL, NULL, "export --token-file '%s' acme/web/dev", tf), 4);
    CHECK_INT(ctl_sh(NULL, NULL, "secret list other/web/dev"), 4);
    ctl_setenv("SECRETSD_TOKEN", "sxt_00000000000000000000000000000000_nope");
    CHECK_INT(ctl_sh(&out, &err, "secret list acme/web/dev"), 4);
    CHECK(strstr(err, "401") && !strstr(err, "_nope"));
    free(out);
    free(err);
    ctl_setenv("SECRETSD_TOKEN", g_token);
    /* 2: usage - a value on the command line, a bad target, no address, no token, bad options */
    CHECK_INT(ctl_sh(NULL, NULL, "secret set acme/web/dev/API_KEY the-value </dev/null"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "secret get acme/web/dev"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "secret get acme/web/dev/../x"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "secret list 'acme/web/d%%2Fev'"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "secret frob acme/web/dev/API_KEY"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "secret rollback acme/web/dev/API_KEY"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "secret get --version x acme/web/dev/API_KEY"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "export --format yaml acme/web/dev"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "run acme/web/dev"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "run --watch=fast acme/web/dev -- true"), 2);
    CHECK_INT(ctl_sh(NULL, NULL, "secret list --token-file /nonexistent acme/web/dev"), 2);
    char *addr = strdup(getenv("SECRETSD_ADDR"));
    ctl_setenv("SECRETSD_ADDR", NULL);
    CHECK_INT(ctl_sh(NULL, NULL, "secret list acme/web/dev"), 2);
    ctl_setenv("SECRETSD_ADDR", "ftp://127.0.0.1:1");
    CHECK_INT(ctl_sh(NULL, NULL, "secret list acme/web/dev"), 2);
    ctl_setenv("SECRETSD_ADDR", addr);
    ctl_setenv("SECRETSD_TOKEN", NULL);
    CHECK_INT(ctl_sh(NULL, NULL, "secret list acme/web/dev"), 2);
    ctl_setenv("SECRETSD_TOKEN", g_token);
    /* 1: nothing listens there */
    int port = sx_test_free_port();
    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", port);
    ctl_setenv("SECRETSD_ADDR", dead);
    CHECK_INT(ctl_sh(NULL, &err, "secret list acme/web/dev"), 1);
    CHECK(strstr(err, "cannot reach the server") != NULL);
    free(err);
    ctl_setenv("SECRETSD_ADDR", addr);
    free(addr);
    free(line);
    free(tf);
    free(viewer);
}

static void secret_commands_speak_tls_h2_with_the_given_ca(void)
{
    CHECK(ctl_api_set("/acme/web/envs/tls", "T", "over tls"));
    char *addr = strdup(getenv("SECRETSD_ADDR")), https[64], *out = NULL, *err = NULL;
    snprintf(https, sizeof(https), "https://127.0.0.1:%d", g_srv.tls_port);
    ctl_setenv("SECRETSD_ADDR", https);
    ctl_setenv("SECRETSD_CACERT", g_srv.cert_path);
    ctl_expect(0, "over tls", "secret get -n acme/web/tls/T");
    ctl_expect(0, "over tls", "secret get -n --http1.1 acme/web/tls/T");
    /* three requests on one kept TLS connection: PUT (404), POST, PUT */
    ctl_expect(0, "NEW: value set (secret created)\n", "secret set acme/web/tls/NEW <<'EOF'\nnew\nEOF");
    ctl_expect(0, "new\n", "secret get -n acme/web/tls/NEW");
    /* an unknown CA is refused: nothing is sent */
    ctl_setenv("SECRETSD_CACERT", NULL);
    CHECK_INT(ctl_sh(&out, &err, "secret get -n acme/web/tls/T"), 1);
    CHECK_STR(out, "");
    free(out);
    free(err);
    ctl_setenv("SECRETSD_ADDR", addr);
    free(addr);
}

/* ---- export ------------------------------------------------------------------------------------------- */

static const struct {
    const char *name, *value;
} nasty[] = {
    {"MULTI", "line one\nline two\n"},
    {"QUOTES", "it's \"quoted\" and 'single'"},
    {"DOLLAR", "$HOME ${PATH} $(id) `id` $1 $$"},
    {"BACKSLASH", "back\\slash \\\\ \\n \\' end\\"},
    {"UNICODE", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e"},
    {"SPACES", "  leading and trailing  "},
    {"TABS", "a\tb\r\nc"},
    {"LONE_QUOTE", "'"},
    {"EMPTY", ""},
    {"EQUALS", "a=b=c #not a comment"},
    {"GLOB", "* ? [a-z] ~"},
};
#define NNASTY (sizeof(nasty) / sizeof(nasty[0]))

static void seed_nasty(const char *env_path)
{
    for (size_t i = 0; i < NNASTY; i++)
        CHECK(ctl_api_set(env_path, nasty[i].name, nasty[i].value));
}

static void export_round_trips_nasty_values_through_sh_bash_and_jq(void)
{
    seed_nasty("/acme/web/envs/nasty");
    char *out = NULL;
    CHECK_INT(ctl_sh(NULL, NULL, "export acme/web/nasty --output out.env"), 0);
    CHECK_INT(ctl_sh(NULL, NULL, "export acme/web/nasty --format shell > out.sh"), 0);
    CHECK_INT(ctl_sh(NULL, NULL, "export acme/web/nasty --format json --output out.json"), 0);
    char *envf = sx_test_path(g_dir, "out.env"), *jsonf = sx_test_path(g_dir, "out.json");
    struct stat st;
    CHECK(stat(envf, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(jsonf, &st) == 0 && (st.st_mode & 0777) == 0600);
    static const char *const shells[] = {"sh", "bash", "dash"};
    for (size_t s = 0; s < sizeof(shells) / sizeof(shells[0]); s++) {
        for (size_t i = 0; i < NNASTY; i++) {
            /* dotenv: set -a exports what the file assigns */
            CHECK_INT(sx_test_sh(&out, "cd '%s' && env -i %s -c 'set -a; . ./out.env; set +a; printenv %s'", g_dir,
                                 shells[s], nasty[i].name),
                      0);
            size_t vl = strlen(nasty[i].value);
            if (!(strlen(out) == vl + 1 && memcmp(out, nasty[i].value, vl) == 0))
                fprintf(stderr, "   %s dotenv %s: got \"%s\"\n", shells[s], nasty[i].name, out);
            CHECK(strlen(out) == vl + 1 && memcmp(out, nasty[i].value, vl) == 0);
            free(out);
            /* shell: export lines */
            CHECK_INT(
                sx_test_sh(&out, "cd '%s' && env -i %s -c '. ./out.sh; printenv %s'", g_dir, shells[s], nasty[i].name),
                0);
            CHECK(strlen(out) == vl + 1 && memcmp(out, nasty[i].value, vl) == 0);
            free(out);
        }
    }
    for (size_t i = 0; i < NNASTY; i++) {
        CHECK_INT(sx_test_sh(&out, "jq -j '.%s' '%s'", nasty[i].name, jsonf), 0);
        CHECK_STR(out, nasty[i].value);
        free(out);
    }
    CHECK_INT(sx_test_sh(&out, "jq -r 'keys | length' '%s'", jsonf), 0);
    CHECK_INT(atoi(out), NNASTY);
    free(out);
    /* --json alone means the JSON format */
    ctl_expect(0, nasty[2].value, "--json export acme/web/nasty | jq -j .DOLLAR");
    free(envf);
    free(jsonf);
}

static void export_only_prefix_and_invalid_names(void)
{
    const char *env = "/acme/web/envs/sel";
    CHECK(ctl_api_set(env, "A", "1"));
    CHECK(ctl_api_set(env, "B", "2"));
    CHECK(ctl_api_set(env, "C", "3"));
    char *out = NULL, *err = NULL;
    ctl_expect(0, "APP_A='1'\nAPP_C='3'\n", "export acme/web/sel --only A,C --prefix APP_");
    ctl_expect(0, "{\"B\":\"2\"}\n", "export acme/web/sel --only B --format json");
    CHECK_INT(ctl_sh(&out, &err, "export acme/web/sel --only A,NOPE"), 3);
    CHECK(strstr(err, "\"NOPE\"") != NULL);
    free(out);
    free(err);
    /* names that are no environment identifiers: refused by dotenv/shell, listed; kept by json */
    CHECK(ctl_api_set(env, "my.dotted-name", "x"));
    CHECK(ctl_api_set(env, "9LIVES", "y"));
    CHECK_INT(ctl_sh(&out, &err, "export acme/web/sel"), 1);
    CHECK_STR(out, "");
    CHECK(strstr(err, "my.dotted-name") && strstr(err, "9LIVES"));
    free(out);
    free(err);
    ctl_expect(0, "export A='1'\nexport B='2'\nexport C='3'\n", "export acme/web/sel --skip-invalid --format shell");
    /* a prefix can make a name valid */
    ctl_expect(0, "X_9LIVES='y'\n", "export acme/web/sel --only 9LIVES --prefix X_");
    ctl_expect(0, "x\n", "export acme/web/sel --format json | jq -r '.\"my.dotted-name\"'");
    /* an empty env exports nothing */
    ctl_expect(0, "", "export acme/web/empty");
}

/* ---- main --------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"secret_commands_work_end_to_end", secret_commands_work_end_to_end},
        {"secret_exit_statuses_say_not_found_forbidden_and_usage",
         secret_exit_statuses_say_not_found_forbidden_and_usage},
        {"secret_commands_speak_tls_h2_with_the_given_ca", secret_commands_speak_tls_h2_with_the_given_ca},
        {"export_round_trips_nasty_values_through_sh_bash_and_jq",
         export_round_trips_nasty_values_through_sh_bash_and_jq},
        {"export_only_prefix_and_invalid_names", export_only_prefix_and_invalid_names},
        {"run_execs_in_place_with_the_values", run_execs_in_place_with_the_values},
        {"run_refuses_or_skips_invalid_names_and_keeps_existing_with_no_override",
         run_refuses_or_skips_invalid_names_and_keeps_existing_with_no_override},
        {"run_watch_restarts_on_change_and_forwards_signals", run_watch_restarts_on_change_and_forwards_signals},
        {"run_fallback_used_only_when_unreachable_and_refused_when_old_or_tampered",
         run_fallback_used_only_when_unreachable_and_refused_when_old_or_tampered},
        {"wire_http11_reads_chunked_and_read_to_close_answers", wire_http11_reads_chunked_and_read_to_close_answers},
        {"wire_tls_server_offering_only_http11_is_spoken_to_in_http11",
         wire_tls_server_offering_only_http11_is_spoken_to_in_http11},
        {"wire_certificate_for_another_name_fails_without_fallback",
         wire_certificate_for_another_name_fails_without_fallback},
        {"wire_oversized_heads_and_bodies_are_refused", wire_oversized_heads_and_bodies_are_refused},
    };
    signal(SIGPIPE, SIG_IGN);
    if (ctl_suite_start() != 0)
        return 1;
    int st = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    int before = sx_test_failures;
    ctl_suite_finish();
    if (sx_test_failures > before) {
        fprintf(stderr, "FAIL the token was found in a file of the run\n");
        return 1;
    }
    return st;
}
