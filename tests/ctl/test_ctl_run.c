/*
 * test_ctl_run.c - `secretsctl run` against the real secretsd: exec in place (same pid), the
 * child's environment (values, overrides, no token), exit statuses, invalid names, --watch
 * restarts and signal forwarding, and the encrypted fallback snapshot (used only when the server
 * cannot be reached; refused when too old, changed, or for another token or env). The token is
 * checked to be in no process's command line and in no child's environment.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_util.h"
#include "test_ctl.h"

/* Wait up to 15 s for needle in the file at path. */
static bool wait_for(const char *path, const char *needle)
{
    return sx_test_file_wait(path, needle, 15000);
}

/* /proc/pid/FILE ("cmdline", "environ") holds needle (NULs read as they are). */
static bool proc_has(pid_t pid, const char *file, const char *needle)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/%s", (int)pid, file);
    return ctl_file_has(p, needle);
}

static char *dir_file(const char *name)
{
    return sx_test_path(g_dir, name);
}

void run_execs_in_place_with_the_values(void)
{
    const char *env = "/acme/web/envs/run";
    CHECK(ctl_api_set(env, "GREETING", "hello world"));
    CHECK(ctl_api_set(env, "MULTI", "a 'b'\n$HOME \"c\"\\"));
    char *outp = dir_file("run.out");
    /* the child replaces secretsctl: same pid; it sees the values and not the token */
    ctl_setenv("GREETING", "from the parent");
    char *const argv1[] = {"secretsctl",
                           "run",
                           "acme/web/run",
                           "--",
                           "sh",
                           "-c",
                           "echo $$; printenv GREETING; printenv MULTI; printenv SECRETSD_TOKEN || echo no-token; "
                           "exit 7",
                           NULL};
    pid_t pid = ctl_spawn(argv1, outp, NULL);
    REQUIRE(pid > 0);
    CHECK_INT(ctl_wait(pid, 30000), 7);
    ctl_setenv("GREETING", NULL);
    char *out = sx_test_read_file(outp, NULL), want[512];
    snprintf(want, sizeof(want), "%d\nhello world\na 'b'\n$HOME \"c\"\\\nno-token\n", (int)pid);
    CHECK_STR(out, want);
    free(out);
    /* a command that runs a while: its command line and environment hold no token */
    char *const argv2[] = {"secretsctl", "run", "acme/web/run", "--", "sleep", "5", NULL};
    pid = ctl_spawn(argv2, NULL, NULL);
    REQUIRE(pid > 0);
    bool became_sleep = false;
    char cmdline[64];
    snprintf(cmdline, sizeof(cmdline), "/proc/%d/cmdline", (int)pid);
    for (int i = 0; i < 500 && !became_sleep; i++) {
        char *c = sx_test_read_file(cmdline, NULL);
        became_sleep = c && strcmp(c, "sleep") == 0; /* argv[0], up to its NUL */
        free(c);
        if (!became_sleep)
            sx_test_sleep_ms(10);
    }
    CHECK(became_sleep);
    CHECK(!proc_has(pid, "cmdline", g_token));
    CHECK(!proc_has(pid, "environ", g_token));
    CHECK(proc_has(pid, "environ", "GREETING=hello world"));
    kill(pid, SIGTERM);
    CHECK_INT(ctl_wait(pid, 30000), 128 + SIGTERM);
    /* exit statuses: the command's own, 127 when it does not exist */
    CHECK_INT(ctl_sh(NULL, NULL, "run acme/web/run -- sh -c 'exit 42'"), 42);
    CHECK_INT(ctl_sh(NULL, NULL, "run acme/web/run -- /nonexistent/cmd"), 127);
    /* a server error does not run the command */
    ctl_expect(4, "", "run other/web/run -- echo ran");
    free(outp);
}

void run_refuses_or_skips_invalid_names_and_keeps_existing_with_no_override(void)
{
    const char *env = "/acme/web/envs/inv";
    CHECK(ctl_api_set(env, "GOOD", "1"));
    CHECK(ctl_api_set(env, "bad.name", "2"));
    CHECK(ctl_api_set(env, "also-bad", "3"));
    char *out = NULL, *err = NULL;
    CHECK_INT(ctl_sh(&out, &err, "run acme/web/inv -- echo ran"), 1);
    CHECK_STR(out, "");
    CHECK(strstr(err, "bad.name") && strstr(err, "also-bad") && !strstr(err, "GOOD"));
    free(out);
    free(err);
    CHECK_INT(ctl_sh(&out, &err, "run --skip-invalid acme/web/inv -- sh -c 'printenv GOOD; env | grep -c bad || true'"),
              0);
    CHECK_STR(out, "1\n0\n");
    CHECK(strstr(err, "bad.name") != NULL); /* skipped with a warning */
    free(out);
    free(err);
    /* --only / --prefix */
    ctl_expect(0, "1\n", "run --only GOOD --prefix APP_ acme/web/inv -- printenv APP_GOOD");
    /* an existing variable is replaced, or kept with --no-override */
    ctl_setenv("GOOD", "mine");
    ctl_expect(0, "1\n", "run --only GOOD acme/web/inv -- printenv GOOD");
    ctl_expect(0, "mine\n", "run --only GOOD --no-override acme/web/inv -- printenv GOOD");
    ctl_setenv("GOOD", NULL);
}

void run_watch_restarts_on_change_and_forwards_signals(void)
{
    const char *env = "/acme/web/envs/watch";
    CHECK(ctl_api_set(env, "V", "one"));
    char *script = dir_file("child.sh"), *log = dir_file("child.log"), *err = dir_file("watch.err");
    const char *body = "echo \"start $V $$\" >> child.log\n"
                       "trap 'echo \"hup $V\" >> child.log' HUP\n"
                       "trap 'echo \"term $V\" >> child.log; exit 3' TERM\n"
                       "while :; do sleep 0.05; done\n";
    CHECK_INT(sx_test_write_file(script, body, strlen(body)), 0);
    char *const argv[] = {"secretsctl", "run", "--watch=200ms", "--restart-grace", "5s", "acme/web/watch", "--", "sh",
                          "./child.sh", NULL};
    pid_t pid = ctl_spawn(argv, NULL, err);
    REQUIRE(pid > 0);
    REQUIRE(wait_for(log, "start one"));
    /* the parent stays: its command line holds no token, its child's environment neither */
    char *text = sx_test_read_file(log, NULL);
    int child = 0;
    CHECK(text && sscanf(strstr(text, "start one"), "start one %d", &child) == 1);
    free(text);
    CHECK(child > 0 && child != pid);
    CHECK(!proc_has(pid, "cmdline", g_token));
    CHECK(!proc_has(child, "cmdline", g_token));
    CHECK(!proc_has(child, "environ", g_token));
    CHECK(proc_has(child, "environ", "V=one"));
    /* SIGHUP is forwarded and the child keeps running */
    kill(pid, SIGHUP);
    CHECK(wait_for(log, "hup one"));
    /* a change: SIGTERM to the old child, the new one has the new value */
    CHECK(ctl_api_set(env, "V", "two"));
    CHECK(wait_for(log, "term one"));
    CHECK(wait_for(log, "start two"));
    /* SIGTERM is forwarded; secretsctl exits with the child's status */
    kill(pid, SIGTERM);
    CHECK_INT(ctl_wait(pid, 30000), 3);
    CHECK(wait_for(log, "term two"));
    CHECK(wait_for(err, "restarting"));

    /* a child that ignores SIGTERM is killed after the grace; SIGINT ends it: 128 + SIGINT */
    unlink(log);
    const char *stubborn = "trap '' TERM; echo \"start $V\" >> child.log; while :; do sleep 0.05; done\n";
    CHECK_INT(sx_test_write_file(script, stubborn, strlen(stubborn)), 0);
    char *const argv2[] = {"secretsctl", "run", "--watch=100ms", "--restart-grace=300ms", "acme/web/watch", "--", "sh",
                           "./child.sh", NULL};
    pid = ctl_spawn(argv2, NULL, NULL);
    REQUIRE(pid > 0);
    REQUIRE(wait_for(log, "start two"));
    CHECK(ctl_api_set(env, "V", "three"));
    CHECK(wait_for(log, "start three"));
    kill(pid, SIGINT);
    CHECK_INT(ctl_wait(pid, 30000), 128 + SIGINT);

    /* a child that ends by itself ends the watch with its status */
    CHECK_INT(ctl_sh(NULL, NULL, "run --watch=1s acme/web/watch -- sh -c 'exit 5'"), 5);
    free(script);
    free(log);
    free(err);
}

void run_fallback_used_only_when_unreachable_and_refused_when_old_or_tampered(void)
{
    const char *env = "/acme/web/envs/fb";
    CHECK(ctl_api_set(env, "F", "from-server"));
    char *snap = dir_file("snap.bin"), *out = NULL, *err = NULL;
    ctl_expect(0, "from-server\n", "run --fallback snap.bin acme/web/fb -- printenv F");
    struct stat st;
    CHECK(stat(snap, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(!ctl_file_has(snap, "from-server"));
    CHECK(!ctl_file_has(snap, g_token));
    /* another token's snapshot, and that token revoked: 401 never falls back */
    char id[33] = "", *other = sx_srv_mint_token(&g_srv, "acme", NULL, NULL, "owner", id);
    char *third = sx_srv_mint_token(&g_srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(other && third);
    ctl_setenv("SECRETSD_TOKEN", other);
    CHECK_INT(ctl_sh(NULL, NULL, "run --fallback snap2.bin acme/web/fb -- true"), 0);
    char path[64];
    snprintf(path, sizeof(path), "/v1/tokens/%s", id);
    sx_resp r;
    CHECK(sx_srv_request(&g_srv, SX_ADMIN, "DELETE", path, NULL, NULL, 0, &r) == 0 && r.status == 200);
    sx_resp_free(&r);
    CHECK_INT(ctl_sh(&out, &err, "run --fallback snap2.bin acme/web/fb -- echo ran"), 4);
    CHECK_STR(out, "");
    CHECK(strstr(err, "401") && !strstr(err, "fallback"));
    free(out);
    free(err);
    ctl_setenv("SECRETSD_TOKEN", g_token);
    CHECK_INT(ctl_token_files(g_srv.dir), 0);
    /* --watch writes the snapshot again when the values change */
    char *fblog = dir_file("fb.log");
    char *const wargv[] = {"secretsctl",
                           "run",
                           "--watch=200ms",
                           "--fallback",
                           "snapw.bin",
                           "acme/web/fb",
                           "--",
                           "sh",
                           "-c",
                           "printenv F >> fb.log; exec sleep 100",
                           NULL};
    pid_t wpid = ctl_spawn(wargv, NULL, NULL);
    REQUIRE(wpid > 0);
    CHECK(wait_for(fblog, "from-server"));
    CHECK(ctl_api_set(env, "F", "changed"));
    CHECK(wait_for(fblog, "changed"));
    kill(wpid, SIGTERM);
    CHECK_INT(ctl_wait(wpid, 30000), 128 + SIGTERM);
    free(fblog);
    CHECK(ctl_api_set(env, "F", "from-server"));
    /* a certificate that does not verify is no outage: no fallback */
    char *addr = strdup(getenv("SECRETSD_ADDR")), https[64];
    snprintf(https, sizeof(https), "https://127.0.0.1:%d", g_srv.tls_port);
    ctl_setenv("SECRETSD_ADDR", https);
    CHECK_INT(ctl_sh(&out, &err, "run --fallback snap.bin acme/web/fb -- echo ran"), 1);
    CHECK_STR(out, "");
    CHECK(strstr(err, "certificate") && !strstr(err, "fallback"));
    free(out);
    free(err);
    ctl_setenv("SECRETSD_ADDR", addr);
    free(addr);

    /* the server goes away: the snapshot stands in, with a warning naming its age */
    sx_srv_stop(&g_srv, SIGTERM, 60);
    g_running = false;
    CHECK_INT(ctl_sh(&out, &err, "run --fallback snap.bin acme/web/fb -- printenv F"), 0);
    CHECK_STR(out, "from-server\n");
    CHECK(strstr(err, "fallback snapshot") && strstr(err, "ago"));
    free(out);
    free(err);
    ctl_expect(0, "changed\n", "run --fallback snapw.bin acme/web/fb -- printenv F");
    ctl_expect(0, "from-server\n", "run --watch=1s --fallback snap.bin acme/web/fb -- printenv F");
    /* without --fallback, or with none written: 1 */
    ctl_expect(1, "", "run acme/web/fb -- echo ran");
    CHECK_INT(ctl_sh(NULL, NULL, "run --fallback missing.bin acme/web/fb -- echo ran"), 1);
    /* too old */
    sx_test_sleep_ms(20);
    CHECK_INT(ctl_sh(&out, &err, "run --fallback snap.bin --fallback-max-age 1ms acme/web/fb -- echo ran"), 1);
    CHECK_STR(out, "");
    CHECK(strstr(err, "older than") != NULL);
    free(out);
    free(err);
    /* another token, another env */
    ctl_setenv("SECRETSD_TOKEN", third);
    CHECK_INT(ctl_sh(&out, &err, "run --fallback snap.bin acme/web/fb -- echo ran"), 1);
    CHECK(strstr(err, "refused") != NULL);
    free(out);
    free(err);
    ctl_setenv("SECRETSD_TOKEN", g_token);
    ctl_expect(1, "", "run --fallback snap.bin acme/web/other -- echo ran");
    /* tampered: a flipped byte in the creation time, in the ciphertext */
    size_t len = 0;
    char *data = sx_test_read_file(snap, &len);
    REQUIRE(data && len > 60);
    static const size_t flips[] = {9, 15, 45, 0};
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        data[flips[i]] ^= 0x01;
        char *bad = dir_file("bad.bin");
        CHECK_INT(sx_test_write_file(bad, data, len), 0);
        ctl_expect(1, "", "run --fallback bad.bin acme/web/fb -- echo ran");
        free(bad);
        data[flips[i]] ^= 0x01;
    }
    /* the untouched one still works */
    CHECK_INT(ctl_sh(NULL, NULL, "run --fallback snap.bin acme/web/fb -- true"), 0);
    free(data);
    free(other);
    free(third);
    free(snap);
}
