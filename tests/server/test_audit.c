/*
 * test_audit.c - the audit log and request ids against the real binary: every endpoint
 * writes exactly its expected lines, `secretsctl audit verify` passes on a real log and catches a
 * changed byte, a deleted line, swapped lines and a cut tail, fail_closed answers 503 and changes
 * nothing when the log cannot be written (the file swapped for /dev/full and reopened by SIGHUP)
 * or when the disk stalls (a FIFO nobody reads), 1,000 concurrent reveals each get their intent and
 * outcome lines in order, a SIGKILL amid audited batches leaves a file that verifies after a
 * restart, and no value ever reaches the audit log. Per-node chains: a store left with the single
 * chain head of earlier versions is adopted by the node whose file continues it (and left alone by
 * another), and a corrupt node id file stops start-up.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit/audit.h"
#include "crypto/crypto.h"
#include "harness.h"
#include "storage/storage.h"
#include "testutil.h"

#define CANARY "canaryValue_6f1d0c"

static char *audit_path(const sx_srv *srv)
{
    char *p = malloc(strlen(srv->dir) + 16);
    sprintf(p, "%s/audit.log", srv->dir);
    return p;
}

/* One request with an explicit request id and an optional bearer token; returns the status. */
static long req(const sx_srv *srv, sx_proto proto, const char *method, const char *path, const char *token,
                const char *rid, const char *body)
{
    char auth[256], idh[128];
    const char *h[4];
    int n = 0;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[n++] = auth;
    }
    if (rid) {
        snprintf(idh, sizeof(idh), "X-Request-Id: %s", rid);
        h[n++] = idh;
    }
    if (body)
        h[n++] = "Content-Type: application/json";
    h[n] = NULL;
    sx_resp r;
    if (sx_srv_request(srv, proto, method, path, h, body, body ? strlen(body) : 0, &r) != 0)
        return -1;
    long st = r.status;
    sx_resp_free(&r);
    return st;
}

/* The audit lines carrying requestId rid, as "action phase status" joined by "|". */
static void lines_of(const char *log, const char *rid, char *out, size_t cap)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\"requestId\":\"%s\"", rid);
    out[0] = '\0';
    for (const char *line = log; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[4096];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < 4095 ? len : 4095), line);
        if (strstr(buf, needle)) {
            char action[64] = "?", phase[16] = "?", status[16] = "?";
            char *a = strstr(buf, "\"action\":\"");
            char *p = strstr(buf, "\"phase\":\"");
            char *s = strstr(buf, "\"status\":");
            if (a)
                sscanf(a + 10, "%63[^\"]", action);
            if (p)
                sscanf(p + 9, "%15[^\"]", phase);
            if (s)
                sscanf(s + 9, "%15[^,}]", status);
            size_t l = strlen(out);
            snprintf(out + l, cap - l, "%s%s %s %s", l ? "|" : "", action, phase, status);
        }
        line = end ? end + 1 : NULL;
    }
}

/* secretsctl [--json] audit verify FILE; returns its exit status, output in out. */
static int verify(const sx_srv *srv, const char *file, bool json, const char *extra, char *out, size_t cap)
{
    char *text = NULL;
    int st = sx_test_sh(&text, "'%s' --socket '%s' %s audit verify '%s' %s 2>&1", SX_SECRETSCTL_PATH, srv->admin_socket,
                        json ? "--json" : "", file, extra ? extra : "");
    snprintf(out, cap, "%s", text);
    free(text);
    return st;
}

static const sx_srv_opts audit_opts = {.extra_log = "audit_log = audit.log\n"};

/* The audit lines a request id must have (lines_of's form: "action phase status|..."). */
typedef struct expected_lines {
    const char *rid, *want;
} expected_lines;

static void check_lines(const char *log, const expected_lines *expect, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char got[1024];
        lines_of(log, expect[i].rid, got, sizeof(got));
        if (strcmp(got, expect[i].want) != 0) {
            fprintf(stderr, "request %s: audit lines \"%s\", want \"%s\"\n", expect[i].rid, got, expect[i].want);
            sx_test_failures++;
        }
    }
}

static void every_endpoint_writes_its_expected_audit_lines(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &audit_opts) == 0);
    char owner_id[40], viewer_id[40];
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", owner_id);
    char *viewer = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", viewer_id);
    REQUIRE(owner && viewer);
    const char *base = "/acme/web/envs/prod/secrets";
    CHECK_INT(req(&srv, SX_H1, "POST", base, owner, "r-create", "{\"kind\":\"secret\",\"name\":\"DB\"}"), 201);
    CHECK_INT(req(&srv, SX_H2C, "GET", "/acme/web/envs/prod/secrets/DB", owner, "r-get", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "GET", base, viewer, "r-list", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB", owner, "r-update",
                  "{\"kind\":\"secret\",\"name\":\"DB\",\"description\":\"d\"}"),
              200);
    CHECK_INT(req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, "r-setvalue",
                  "{\"value\":\"" CANARY "\"}"),
              200);
    CHECK_INT(req(&srv, SX_H2C, "GET", "/acme/web/envs/prod/secrets/DB/value", owner, "r-reveal", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/values", owner, "r-values", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB/value", viewer, "r-forbidden", NULL), 403);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB/value", "sxt_bogus", "r-unauth", NULL), 401);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/NOPE", owner, "r-missing", NULL), 404);
    CHECK_INT(req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, "r-badjson", "{\"value\":"), 400);
    CHECK_INT(req(&srv, SX_H1, "DELETE", "/acme/web/envs/prod/secrets/DB", owner, "r-delete", NULL), 200);
    CHECK_INT(req(&srv, SX_ADMIN, "GET", "/v1/tokens", NULL, "r-toklist", NULL), 200);
    char path[128];
    snprintf(path, sizeof(path), "/v1/tokens/%s", viewer_id);
    CHECK_INT(req(&srv, SX_ADMIN, "DELETE", path, NULL, "r-revoke", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "GET", "/healthz", NULL, "r-health", NULL), 200);
    sx_test_sleep_ms(300); /* the writer flushes every few ms */

    char *ap = audit_path(&srv);
    char *log = sx_test_read_file(ap, NULL);
    REQUIRE(log);
    static const expected_lines expect[] = {
        {"r-create", "secret.create intent null|secret.create done 201"},
        {"r-get", "secret.get done 200"},
        {"r-list", "secret.list done 200"},
        {"r-update", "secret.update intent null|secret.update done 200"},
        {"r-setvalue", "secret.set_value intent null|secret.set_value done 200"},
        {"r-reveal", "secret.reveal intent null|secret.reveal done 200"},
        {"r-values", "secret.values intent null|secret.values done 200"},
        {"r-forbidden", "secret.reveal done 403"},
        {"r-unauth", "secret.reveal done 401"},
        {"r-missing", "secret.get done 404"},
        {"r-badjson", "secret.set_value done 400"},
        {"r-delete", "secret.delete intent null|secret.delete done 200"},
        {"r-toklist", "token.list done 200"},
        {"r-revoke", "token.revoke done 200"},
        {"r-health", ""},
    };
    check_lines(log, expect, sizeof(expect) / sizeof(expect[0]));
    /* who and what: the token id, label and role, the scope and name; never the token or value */
    CHECK(strstr(log, "\"requestId\":\"r-get\",\"tokenId\":\"") != NULL);
    CHECK(strstr(log, owner_id) != NULL);
    CHECK(strstr(log, "\"role\":\"owner\"") != NULL);
    CHECK(strstr(log, "\"scope\":\"acme/web/prod\",\"name\":\"DB\"") != NULL);
    CHECK(strstr(log, "\"client\":\"127.0.0.1\"") != NULL);
    CHECK(strstr(log, CANARY) == NULL);
    CHECK(strstr(log, "sxt_") == NULL);
    CHECK(strstr(log, owner) == NULL);
    char out[4096];
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    CHECK(strncmp(out, "OK:", 3) == 0);
    free(log);
    free(ap);
    free(owner);
    free(viewer);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* The version endpoints: a read of the list, a reveal of an old version, a rollback and the
 * destruction of a version each write the lines of their kind (intent lines before a change or a
 * value leaves), naming the secret, never the value. */
static void deleted_secret_endpoints_write_their_audit_lines(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &audit_opts) == 0);
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(owner);
    static const char *const names[] = {"KEEP", "GONE"};
    for (int i = 0; i < 2; i++) {
        char body[96], path[128];
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\"}", names[i]);
        CHECK_INT(req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, "d-create", body), 201);
        snprintf(path, sizeof(path), "/acme/web/envs/prod/secrets/%s/value", names[i]);
        CHECK_INT(req(&srv, SX_H1, "PUT", path, owner, "d-set", "{\"value\":\"" CANARY "\"}"), 200);
        snprintf(path, sizeof(path), "/acme/web/envs/prod/secrets/%s", names[i]);
        CHECK_INT(req(&srv, SX_H1, "DELETE", path, owner, i ? "d-delete2" : "d-delete1", NULL), 200);
    }
    CHECK_INT(req(&srv, SX_H2C, "GET", "/acme/web/envs/prod/deleted-secrets", owner, "d-list", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "POST", "/acme/web/envs/prod/deleted-secrets/KEEP/restore", owner, "d-restore", NULL),
              200);
    CHECK_INT(req(&srv, SX_H1, "POST", "/acme/web/envs/prod/deleted-secrets/KEEP/restore", owner, "d-again", NULL),
              409);
    CHECK_INT(req(&srv, SX_H1, "DELETE", "/acme/web/envs/prod/deleted-secrets/GONE", owner, "d-purge", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "DELETE", "/acme/web/envs/prod/deleted-secrets/GONE", owner, "d-purge2", NULL), 404);
    char *ap = audit_path(&srv);
    REQUIRE(sx_test_file_wait(ap, "\"requestId\":\"d-purge2\"", 5000));
    sx_test_sleep_ms(300); /* its done line follows its intent line within a flush or two */
    char *log = sx_test_read_file(ap, NULL);
    REQUIRE(log);
    static const expected_lines expect[] = {
        {"d-delete1", "secret.delete intent null|secret.delete done 200"},
        {"d-list", "secret.deleted_list done 200"},
        {"d-restore", "secret.restore intent null|secret.restore done 200"},
        {"d-again", "secret.restore intent null|secret.restore done 409"},
        {"d-purge", "secret.purge intent null|secret.purge done 200"},
        {"d-purge2", "secret.purge intent null|secret.purge done 404"},
    };
    check_lines(log, expect, sizeof(expect) / sizeof(expect[0]));
    CHECK(strstr(log, CANARY) == NULL);
    CHECK(strstr(log, owner) == NULL);
    char out[4096];
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    CHECK(strncmp(out, "OK:", 3) == 0);
    free(log);
    free(ap);
    free(owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static void version_endpoints_write_their_audit_lines(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &audit_opts) == 0);
    char owner_id[40];
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", owner_id);
    REQUIRE(owner);
    CHECK_INT(req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, "v-create",
                  "{\"kind\":\"secret\",\"name\":\"DB\"}"),
              201);
    CHECK_INT(
        req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, "v-set1", "{\"value\":\"" CANARY "\"}"),
        200);
    CHECK_INT(req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, "v-set2", "{\"value\":\"two\"}"),
              200);
    CHECK_INT(req(&srv, SX_H2C, "GET", "/acme/web/envs/prod/secrets/DB/versions", owner, "v-list", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB/value?version=1", owner, "v-reveal1", NULL), 200);
    CHECK_INT(
        req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets/DB/rollback", owner, "v-rollback", "{\"version\":1}"),
        200);
    CHECK_INT(req(&srv, SX_H1, "DELETE", "/acme/web/envs/prod/secrets/DB/versions/2", owner, "v-destroy", NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "DELETE", "/acme/web/envs/prod/secrets/DB/versions/3", owner, "v-current", NULL), 409);
    sx_test_sleep_ms(300); /* the writer flushes every few ms */

    char *ap = audit_path(&srv);
    char *log = sx_test_read_file(ap, NULL);
    REQUIRE(log);
    static const expected_lines expect[] = {
        {"v-list", "secret.versions done 200"},
        {"v-reveal1", "secret.reveal intent null|secret.reveal done 200"},
        {"v-rollback", "secret.rollback intent null|secret.rollback done 200"},
        {"v-destroy", "secret.version.destroy intent null|secret.version.destroy done 200"},
        {"v-current", "secret.version.destroy intent null|secret.version.destroy done 409"},
    };
    check_lines(log, expect, sizeof(expect) / sizeof(expect[0]));
    CHECK(strstr(log, "\"requestId\":\"v-rollback\"") != NULL);
    CHECK(strstr(log, CANARY) == NULL);
    CHECK(strstr(log, owner) == NULL);
    char out[4096];
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    CHECK(strncmp(out, "OK:", 3) == 0);
    free(log);
    free(ap);
    free(owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* Write lines[0..n) (each with its newline) to path. */
static void write_lines(const char *path, char **lines, size_t n)
{
    FILE *f = fopen(path, "w");
    for (size_t i = 0; f && i < n; i++)
        fputs(lines[i], f);
    if (f)
        fclose(f);
}

static void expect_bad(const sx_srv *srv, const char *file, const char *want_line, const char *what)
{
    char out[4096];
    int st = verify(srv, file, true, NULL, out, sizeof(out));
    if (st != 1 || strstr(out, "\"ok\":false") == NULL || (want_line && strstr(out, want_line) == NULL)) {
        fprintf(stderr, "%s: verify exit %d, answer %s (want %s)\n", what, st, out, want_line ? want_line : "-");
        sx_test_failures++;
    }
}

static void audit_verify_catches_edits_deletions_swaps_and_a_cut_tail(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &audit_opts) == 0);
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(owner);
    for (int i = 0; i < 6; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"S%d\"}", i);
        CHECK_INT(req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, NULL, body), 201);
    }
    sx_test_sleep_ms(300);
    char *ap = audit_path(&srv);
    char out[4096];
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);

    /* Split the live file into lines and tamper with copies (the server's head is the same). */
    char *log = sx_test_read_file(ap, NULL);
    REQUIRE(log);
    char *lines[64];
    size_t n = 0;
    for (char *p = log; *p && n < 64;) {
        char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) + 1 : strlen(p);
        lines[n] = strndup(p, len);
        n++;
        p += len;
    }
    REQUIRE(n >= 10);
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s/tampered.log", srv.dir);

    /* a changed byte in line 4 */
    char *saved = lines[3];
    lines[3] = strdup(saved);
    char *st = strstr(lines[3], "\"S");
    REQUIRE(st);
    st[2] = st[2] == '1' ? '2' : '1';
    write_lines(copy, lines, n);
    expect_bad(&srv, copy, "\"badLine\":4", "changed byte");
    free(lines[3]);
    lines[3] = saved;

    /* a deleted line (line 5) */
    char *del[64];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (i != 4)
            del[m++] = lines[i];
    write_lines(copy, del, m);
    expect_bad(&srv, copy, "\"badLine\":5", "deleted line");

    /* lines 5 and 6 swapped */
    char *tmp = lines[4];
    lines[4] = lines[5];
    lines[5] = tmp;
    write_lines(copy, lines, n);
    expect_bad(&srv, copy, "\"badLine\":5", "swapped lines");
    lines[5] = lines[4];
    lines[4] = tmp;

    /* the copy untouched is intact up to where it was taken (older than the head: --rotated) */
    write_lines(copy, lines, n);
    CHECK_INT(verify(&srv, copy, false, "--rotated", out, sizeof(out)), 0);

    /* a cut tail: the last line of the live file removed; only the stored head can tell */
    sx_test_sleep_ms(300);
    free(log);
    size_t len = 0;
    log = sx_test_read_file(ap, &len);
    REQUIRE(log && len > 1);
    size_t cut = len - 1;
    while (cut > 0 && log[cut - 1] != '\n')
        cut--;
    REQUIRE(truncate(ap, (off_t)cut) == 0);
    expect_bad(&srv, ap, "cut from the end", "cut tail");
    /* an edited line cannot be repaired by hand either: the MAC needs the server's key */
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(log);
    free(ap);
    free(owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* Start a server with o and create secret A in acme/web/prod; the owner token (NULL on failure). */
static char *start_with_secret_a(sx_srv *srv, const sx_srv_opts *o)
{
    if (sx_srv_start(srv, o) != 0)
        return NULL;
    char *owner = sx_srv_mint_token(srv, "acme", NULL, NULL, "owner", NULL);
    if (owner)
        CHECK_INT(
            req(srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, NULL, "{\"kind\":\"secret\",\"name\":\"A\"}"),
            201);
    return owner;
}

/* A restart appends an audit.open line that continues the chain; cutting every line before it
 * leaves a file whose chain is intact from its first line. The stored head names the file's first
 * line, so verification still sees the cut. */
static void audit_verify_catches_a_cut_at_a_restarts_open_line(void)
{
    sx_srv srv;
    sx_srv_opts o = {.backend = "rocksdb", .extra_log = "audit_log = audit.log\n", .keep_dir = true};
    char *owner = start_with_secret_a(&srv, &o);
    REQUIRE(owner);
    sx_test_sleep_ms(300);
    char *dir = strdup(srv.dir);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    o.dir = dir;
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    CHECK_INT(
        req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, NULL, "{\"kind\":\"secret\",\"name\":\"B\"}"),
        201);
    char *ap = audit_path(&srv);
    /* The create's done line is written after its answer: cut only once it is on file, or it
     * could land between the read below and the write of the cut file. */
    CHECK(sx_test_file_wait(ap, "\"name\":\"B\",\"phase\":\"done\"", 10000));
    char out[4096];
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);

    /* Keep the file from the second audit.open line on. */
    size_t len = 0;
    char *log = sx_test_read_file(ap, &len);
    REQUIRE(log);
    char *first_nl = strchr(log, '\n');
    REQUIRE(first_nl);
    char *second = strstr(first_nl, "\"event\":\"audit.open\"");
    REQUIRE(second);
    while (second > log && second[-1] != '\n')
        second--;
    REQUIRE(second > log);
    CHECK_INT(sx_test_write_file(ap, second, len - (size_t)(second - log)), 0);
    expect_bad(&srv, ap, "cut from the start", "cut at a restart's open line");

    /* And after yet another restart (the server now appends to the cut file). */
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    sx_test_sleep_ms(300);
    expect_bad(&srv, ap, "cut from the start", "cut file after another restart");
    free(log);
    free(ap);
    free(owner);
    srv.own_dir = true;
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    free(dir);
}

/* Point audit.log at /dev/full and make the server reopen it. */
static void break_audit_log(const sx_srv *srv, const char *ap)
{
    char old[4096];
    snprintf(old, sizeof(old), "%s.1", ap);
    CHECK(rename(ap, old) == 0);
    CHECK(symlink("/dev/full", ap) == 0);
    kill(srv->pid, SIGHUP);
    sx_test_sleep_ms(300);
}

/* acme/web/prod/DB still holds the value "v1" (a reveal answers it). */
static void expect_db_value_v1(const sx_srv *srv, const char *owner)
{
    sx_resp r;
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", owner);
    const char *h[] = {auth, NULL};
    if (sx_srv_request(srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB/value", h, NULL, 0, &r) != 0) {
        sx_test_failures++;
        return;
    }
    CHECK_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "\"value\":\"v1\"") != NULL);
    sx_resp_free(&r);
}

static void fail_closed_refuses_reveals_and_writes_and_changes_nothing(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &audit_opts) == 0);
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(owner);
    const char *sec = "/acme/web/envs/prod/secrets/DB";
    CHECK_INT(
        req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, NULL, "{\"kind\":\"secret\",\"name\":\"DB\"}"),
        201);
    CHECK_INT(req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, NULL, "{\"value\":\"v1\"}"), 200);
    sx_test_sleep_ms(200);
    char *ap = audit_path(&srv);
    break_audit_log(&srv, ap);

    CHECK_INT(
        req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, NULL, "{\"value\":\"" CANARY "\"}"),
        503);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB/value", owner, NULL, NULL), 503);
    CHECK_INT(req(&srv, SX_H2C, "GET", "/acme/web/envs/prod/values", owner, NULL, NULL), 503);
    CHECK_INT(
        req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, NULL, "{\"kind\":\"secret\",\"name\":\"NEW\"}"),
        503);
    CHECK_INT(req(&srv, SX_H1, "PUT", sec, owner, NULL, "{\"kind\":\"secret\",\"name\":\"DB\",\"description\":\"x\"}"),
              503);
    CHECK_INT(req(&srv, SX_H1, "DELETE", sec, owner, NULL, NULL), 503);
    /* reads of metadata and health go on */
    CHECK_INT(req(&srv, SX_H1, "GET", sec, owner, NULL, NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets", owner, NULL, NULL), 200);
    CHECK_INT(req(&srv, SX_H1, "GET", "/healthz", NULL, NULL, NULL), 200);

    /* a writable file again: SIGHUP, and nothing had changed */
    unlink(ap);
    kill(srv.pid, SIGHUP);
    sx_test_sleep_ms(300);
    expect_db_value_v1(&srv, owner);
    sx_resp r;
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", owner);
    const char *h[] = {auth, NULL};
    REQUIRE(sx_srv_request(&srv, SX_H1, "GET", sec, h, NULL, 0, &r) == 0);
    CHECK(r.body && strstr(r.body, "\"description\":null") != NULL);
    sx_resp_free(&r);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/NEW", owner, NULL, NULL), 404);
    sx_test_sleep_ms(300);

    /* the chain continues across the files: the old one checks as rotated, the new one to the head */
    char out[4096], old[4096];
    snprintf(old, sizeof(old), "%s.1", ap);
    CHECK_INT(verify(&srv, old, false, "--rotated", out, sizeof(out)), 0);
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    char *log = sx_test_read_file(ap, NULL);
    char *log1 = sx_test_read_file(old, NULL);
    CHECK(log && log1 && strstr(log, CANARY) == NULL && strstr(log1, CANARY) == NULL);
    free(log);
    free(log1);
    free(ap);
    free(owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static void fail_open_serves_when_the_audit_log_is_broken(void)
{
    static const sx_srv_opts opts = {.extra_log = "audit_log = audit.log\naudit_policy = fail_open\n"};
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &opts) == 0);
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(owner);
    char *ap = audit_path(&srv);
    break_audit_log(&srv, ap);
    CHECK_INT(
        req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, NULL, "{\"kind\":\"secret\",\"name\":\"DB\"}"),
        201);
    CHECK_INT(req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, NULL, "{\"value\":\"v\"}"), 200);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB/value", owner, NULL, NULL), 200);
    free(ap);
    free(owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static void request_ids_are_honoured_or_generated_and_logged(void)
{
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &audit_opts) == 0);
    sx_resp r;
    char id[128];
    const char *good[] = {"X-Request-Id: abc.DEF_123-x", NULL};
    REQUIRE(sx_srv_request(&srv, SX_H1, "GET", "/healthz", good, NULL, 0, &r) == 0);
    CHECK(sx_resp_header(&r, "x-request-id", id, sizeof(id)) && strcmp(id, "abc.DEF_123-x") == 0);
    sx_resp_free(&r);
    const char *bad[] = {"X-Request-Id: has space;and\"quote", NULL};
    REQUIRE(sx_srv_request(&srv, SX_H2C, "GET", "/nope/x", bad, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 404);
    CHECK(sx_resp_header(&r, "x-request-id", id, sizeof(id)) && strlen(id) >= 16 && strchr(id, ' ') == NULL);
    sx_resp_free(&r);
    char longid[100];
    memset(longid, 'a', 65);
    longid[65] = '\0';
    char hl[128];
    snprintf(hl, sizeof(hl), "X-Request-Id: %s", longid);
    const char *lh[] = {hl, NULL};
    REQUIRE(sx_srv_request(&srv, SX_H1, "GET", "/healthz", lh, NULL, 0, &r) == 0);
    CHECK(sx_resp_header(&r, "x-request-id", id, sizeof(id)) && strcmp(id, longid) != 0);
    sx_resp_free(&r);
    /* a generated id differs per request and appears in the access log */
    char id2[128];
    REQUIRE(sx_srv_request(&srv, SX_H1, "GET", "/healthz", NULL, NULL, 0, &r) == 0);
    CHECK(sx_resp_header(&r, "x-request-id", id, sizeof(id)));
    sx_resp_free(&r);
    REQUIRE(sx_srv_request(&srv, SX_H1, "GET", "/healthz", NULL, NULL, 0, &r) == 0);
    CHECK(sx_resp_header(&r, "x-request-id", id2, sizeof(id2)) && strcmp(id, id2) != 0);
    sx_resp_free(&r);
    CHECK(sx_test_file_wait(srv.access_log, "abc.DEF_123-x", 5000));
    CHECK(sx_test_file_wait(srv.access_log, id2, 5000));
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static void json_log_format_carries_request_ids(void)
{
    static const sx_srv_opts opts = {.extra_log = "format = json\n"};
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &opts) == 0);
    const char *h[] = {"X-Request-Id: json-req-1", NULL};
    sx_resp r;
    REQUIRE(sx_srv_request(&srv, SX_H1, "GET", "/healthz", h, NULL, 0, &r) == 0);
    sx_resp_free(&r);
    CHECK(sx_test_file_wait(srv.access_log, "\"requestId\":\"json-req-1\"}", 5000));
    char *alog = sx_test_read_file(srv.access_log, NULL);
    CHECK(alog && strstr(alog, "{\"time\":\"") && strstr(alog, "\"requestId\":\"json-req-1\"}") &&
          strstr(alog, "\"status\":200"));
    free(alog);
    char *elog = sx_test_read_file(srv.stderr_path, NULL);
    CHECK(elog && strstr(elog, "{\"time\":\"") && strstr(elog, "\"level\":\"info\""));
    free(elog);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* ---- many requests at once ------------------------------------------------------------------------ */

typedef struct mreq {
    const char *method;
    char path[128];
    char rid[32];
    const char *body;
    long status;
} mreq;

#define STREAMS_PER_CONN 100 /* the server's http2_max_concurrent_requests */

/* Run the n requests at once as streams of TLS h2 connections, STREAMS_PER_CONN to a connection,
 * each connection of its own libcurl multi handle (libcurl 7.88 fails streams that join a
 * connection another multi-plexed set already uses, h2c or a retried TLS one, curl/curl#10634).
 * kill_after > 0: SIGKILL the server once that many answers came back, and give up on the rest.
 * Returns how many were answered. */
static size_t run_multi(sx_srv *srv, const char *token, mreq *q, size_t n, size_t kill_after)
{
    size_t nm = (n + STREAMS_PER_CONN - 1) / STREAMS_PER_CONN;
    CURLM **ms = calloc(nm, sizeof(*ms));
    for (size_t k = 0; k < nm; k++) {
        ms[k] = curl_multi_init();
        curl_multi_setopt(ms[k], CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    }
    CURL **hs = calloc(n, sizeof(*hs));
    struct curl_slist **hl = calloc(n, sizeof(*hl));
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    for (size_t i = 0; i < n; i++) {
        char url[256], idh[64];
        snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", srv->tls_port, q[i].path);
        snprintf(idh, sizeof(idh), "X-Request-Id: %s", q[i].rid);
        q[i].status = 0;
        CURL *h = hs[i] = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(h, CURLOPT_CAINFO, srv->cert_path);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q[i].method);
        hl[i] = curl_slist_append(hl[i], auth);
        hl[i] = curl_slist_append(hl[i], idh);
        if (q[i].body) {
            hl[i] = curl_slist_append(hl[i], "Content-Type: application/json");
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, q[i].body);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl[i]);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sx_test_buf_append);
        sx_test_buf *sink = calloc(1, sizeof(*sink));
        curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
        curl_easy_setopt(h, CURLOPT_PRIVATE, sink);
        curl_multi_add_handle(ms[i / STREAMS_PER_CONN], h);
    }
    size_t answered = 0, failed = 0, retries = 0;
    bool running = true;
    while (running) {
        running = false;
        for (size_t k = 0; k < nm; k++) {
            CURLM *m = ms[k];
            int still = 0;
            curl_multi_perform(m, &still);
            running = running || still > 0;
            CURLMsg *msg;
            int left;
            while ((msg = curl_multi_info_read(m, &left)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                    continue;
                CURLcode res = msg->data.result;
                if (res == CURLE_OK) {
                    answered++;
                } else if ((res == CURLE_SSL_CONNECT_ERROR || res == CURLE_COULDNT_CONNECT) && retries++ < n) {
                    /* A TLS handshake that failed (a slow sanitizer build starting many connections at
                     * once): the request never left, so it is sent again. */
                    CURL *h = msg->easy_handle;
                    curl_multi_remove_handle(m, h);
                    curl_multi_add_handle(m, h);
                    running = true;
                } else if (!kill_after && failed++ < 3) {
                    fprintf(stderr, "request failed: %s\n", curl_easy_strerror(res));
                }
            }
        }
        if (kill_after && answered >= kill_after) {
            kill(srv->pid, SIGKILL);
            break;
        }
        if (running)
            curl_multi_wait(ms[0], NULL, 0, 5, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        curl_easy_getinfo(hs[i], CURLINFO_RESPONSE_CODE, &q[i].status);
        sx_test_buf *sink = NULL;
        curl_easy_getinfo(hs[i], CURLINFO_PRIVATE, (char **)&sink);
        if (sink)
            free(sink->data);
        free(sink);
        curl_multi_remove_handle(ms[i / STREAMS_PER_CONN], hs[i]);
        curl_easy_cleanup(hs[i]);
        curl_slist_free_all(hl[i]);
    }
    for (size_t k = 0; k < nm; k++)
        curl_multi_cleanup(ms[k]);
    free(ms);
    free(hs);
    free(hl);
    return answered;
}

/* How many lines of the file at path carry "requestId":"<prefix>... */
static size_t count_lines_with(const char *path, const char *prefix)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "\"requestId\":\"%s", prefix);
    char *log = sx_test_read_file(path, NULL);
    size_t n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* Wait (at most a minute: a wait, not a measure) until the file has want such lines. */
static void wait_lines(const char *path, const char *prefix, size_t want)
{
    for (int i = 0; i < 600 && count_lines_with(path, prefix) < want; i++)
        sx_test_sleep_ms(100);
}

/* Start srv with opts and store acme/web/prod secret DB with value (a JSON string's contents);
 * returns an owner token of acme (malloc'd), NULL when the server could not start. */
static char *start_with_secret(sx_srv *srv, const sx_srv_opts *opts, const char *value)
{
    if (sx_srv_start(srv, opts) != 0)
        return NULL;
    char *owner = sx_srv_mint_token(srv, "acme", NULL, NULL, "owner", NULL);
    if (!owner)
        return NULL;
    char body[256];
    snprintf(body, sizeof(body), "{\"value\":\"%s\"}", value);
    CHECK_INT(
        req(srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, NULL, "{\"kind\":\"secret\",\"name\":\"DB\"}"),
        201);
    CHECK_INT(req(srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, NULL, body), 200);
    return owner;
}

#define NREVEALS 1000

static void thousand_concurrent_reveals_log_one_intent_and_one_done_each_in_order(void)
{
    sx_srv srv;
    char *owner = start_with_secret(&srv, &audit_opts, CANARY);
    REQUIRE(owner);
    mreq *q = calloc(NREVEALS, sizeof(*q));
    for (size_t i = 0; i < NREVEALS; i++) {
        q[i].method = "GET";
        snprintf(q[i].path, sizeof(q[i].path), "/acme/web/envs/prod/secrets/DB/value");
        snprintf(q[i].rid, sizeof(q[i].rid), "rv-%04zu", i);
    }
    size_t answered = run_multi(&srv, owner, q, NREVEALS, 0);
    CHECK_INT((long)answered, NREVEALS);
    if (answered != NREVEALS) { /* why: the server's side */
        char *err = sx_test_read_file(srv.stderr_path, NULL);
        fprintf(stderr, "server log:\n%s\n", err ? err : "");
        free(err);
    }
    size_t ok = 0;
    for (size_t i = 0; i < NREVEALS; i++)
        ok += q[i].status == 200;
    CHECK_INT((long)ok, NREVEALS);

    /* Every request: one intent line, then one outcome line with its 200, in chain order. */
    char *ap = audit_path(&srv);
    wait_lines(ap, "rv-", 2 * NREVEALS);
    char *log = sx_test_read_file(ap, NULL);
    REQUIRE(log);
    long *intent_at = calloc(NREVEALS, sizeof(long)), *done_at = calloc(NREVEALS, sizeof(long));
    int *intents = calloc(NREVEALS, sizeof(int)), *dones = calloc(NREVEALS, sizeof(int));
    long lineno = 0;
    for (char *line = log; *line;) {
        char *end = strchr(line, '\n');
        if (!end)
            break;
        *end = '\0';
        lineno++;
        char *id = strstr(line, "\"requestId\":\"rv-");
        if (id) {
            size_t k = strtoul(id + 16, NULL, 10);
            REQUIRE(k < NREVEALS);
            CHECK(strstr(line, "\"action\":\"secret.reveal\"") != NULL);
            if (strstr(line, "\"phase\":\"intent\",\"status\":null")) {
                intents[k]++;
                intent_at[k] = lineno;
            } else if (strstr(line, "\"phase\":\"done\",\"status\":200")) {
                dones[k]++;
                done_at[k] = lineno;
            } else {
                fprintf(stderr, "unexpected line for rv-%04zu: %s\n", k, line);
                sx_test_failures++;
            }
        }
        line = end + 1;
    }
    size_t bad = 0;
    for (size_t k = 0; k < NREVEALS; k++)
        if (intents[k] != 1 || dones[k] != 1 || intent_at[k] >= done_at[k]) {
            if (bad++ < 5)
                fprintf(stderr, "rv-%04zu: %d intent lines (line %ld), %d done lines (line %ld)\n", k, intents[k],
                        intent_at[k], dones[k], done_at[k]);
        }
    CHECK_INT((long)bad, 0);
    free(log);
    log = sx_test_read_file(ap, NULL);
    CHECK(log && strstr(log, CANARY) == NULL);
    char out[4096];
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    free(log);
    free(intent_at);
    free(done_at);
    free(intents);
    free(dones);
    free(q);
    free(ap);
    free(owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

/* Wait until a thread of pid is blocked in openat(2) (the audit writer reopening onto a FIFO that
 * nobody reads): the disk "stalls" from then on. */
static bool wait_writer_stuck_in_open(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    for (int tries = 0; tries < 300; tries++) {
        char *out = NULL;
        sx_test_sh(&out, "cat %s/*/syscall 2>/dev/null | awk '$1 == 257 {n++} END {print n+0}'", dir);
        bool stuck = out && atoi(out) > 0;
        free(out);
        if (stuck)
            return true;
        sx_test_sleep_ms(50);
    }
    return false;
}

static void fail_closed_answers_503_when_the_disk_stalls_and_changes_nothing(void)
{
    sx_srv srv;
    char *owner = start_with_secret(&srv, &audit_opts, "v1");
    REQUIRE(owner);
    char *ap = audit_path(&srv);
    char old[4096], fifo_lines[65536];
    snprintf(old, sizeof(old), "%s.1", ap);
    sx_test_sleep_ms(200);
    /* The writer reopens onto a FIFO and blocks in open() until someone reads it. */
    CHECK(rename(ap, old) == 0);
    CHECK(mkfifo(ap, 0600) == 0);
    kill(srv.pid, SIGHUP);
    REQUIRE(wait_writer_stuck_in_open(srv.pid));

    /* Stalled: each answer is 503 (after the timeout), nothing is revealed or changed. */
    CHECK_INT(req(&srv, SX_H2C, "GET", "/acme/web/envs/prod/secrets/DB/value", owner, "stall-reveal", NULL), 503);
    CHECK_INT(req(&srv, SX_H1, "PUT", "/acme/web/envs/prod/secrets/DB/value", owner, "stall-put",
                  "{\"value\":\"" CANARY "\"}"),
              503);
    CHECK_INT(req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, "stall-create",
                  "{\"kind\":\"secret\",\"name\":\"NEW\"}"),
              503);
    /* reads of metadata go on */
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB", owner, NULL, NULL), 200);

    /* The disk comes back: the queued lines arrive, each intent before its 503. */
    int rfd = open(ap, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(rfd >= 0);
    size_t got = 0;
    for (int i = 0; i < 300 && !strstr(fifo_lines, "stall-create\""); i++) {
        ssize_t r = read(rfd, fifo_lines + got, sizeof(fifo_lines) - 1 - got);
        if (r > 0)
            got += (size_t)r;
        fifo_lines[got] = '\0';
        if (r <= 0)
            sx_test_sleep_ms(50);
    }
    char lines[1024];
    lines_of(fifo_lines, "stall-reveal", lines, sizeof(lines));
    CHECK_STR(lines, "secret.reveal intent null|secret.reveal done 503");
    lines_of(fifo_lines, "stall-put", lines, sizeof(lines));
    CHECK_STR(lines, "secret.set_value intent null|secret.set_value done 503");
    lines_of(fifo_lines, "stall-create", lines, sizeof(lines));
    CHECK_STR(lines, "secret.create intent null|secret.create done 503");
    CHECK(strstr(fifo_lines, CANARY) == NULL);

    /* A file again (the FIFO stays read until the writer has left it), and nothing had changed. */
    CHECK(unlink(ap) == 0);
    kill(srv.pid, SIGHUP);
    CHECK(sx_test_file_wait(ap, "\"event\":\"audit.open\"", 10000));
    close(rfd);
    expect_db_value_v1(&srv, owner);
    CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/NEW", owner, NULL, NULL), 404);
    sx_test_sleep_ms(300);
    char out[4096];
    CHECK_INT(verify(&srv, old, false, "--rotated", out, sizeof(out)), 0);
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    free(ap);
    free(owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

#define NKILL 600

static void sigkill_amid_audited_batches_leaves_a_file_that_verifies_after_restart(void)
{
    sx_srv srv;
    sx_srv_opts o = {.backend = "rocksdb", .extra_log = "audit_log = audit.log\n", .keep_dir = true};
    char *owner = start_with_secret(&srv, &o, "v0");
    REQUIRE(owner);
    char *dir = strdup(srv.dir);
    char *ap = audit_path(&srv);
    for (int round = 0; round < 2; round++) {
        /* reveals and writes in flight, and the server killed while their batches are written */
        mreq *q = calloc(NKILL, sizeof(*q));
        for (size_t i = 0; i < NKILL; i++) {
            bool put = i % 4 == 0;
            q[i].method = put ? "PUT" : "GET";
            snprintf(q[i].path, sizeof(q[i].path), "/acme/web/envs/prod/secrets/DB/value");
            snprintf(q[i].rid, sizeof(q[i].rid), "k%d-%04zu", round, i);
            q[i].body = put ? "{\"value\":\"v\"}" : NULL;
        }
        size_t answered = run_multi(&srv, owner, q, NKILL, NKILL / 3);
        CHECK(answered >= NKILL / 3);
        free(q);
        int st = sx_srv_stop(&srv, SIGKILL, 20);
        (void)st; /* killed: not an exit status */
        o.dir = dir;
        REQUIRE(sx_srv_start(&srv, &o) == 0);
        char out[4096];
        if (verify(&srv, ap, false, NULL, out, sizeof(out)) != 0) {
            fprintf(stderr, "round %d: after SIGKILL and restart: %s\n", round, out);
            sx_test_failures++;
        }
        CHECK_INT(req(&srv, SX_H1, "GET", "/acme/web/envs/prod/secrets/DB/value", owner, NULL, NULL), 200);
        sx_test_sleep_ms(200);
        CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    }
    free(ap);
    free(owner);
    srv.own_dir = true;
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    free(dir);
}

/* ---- per-node chains ------------------------------------------------------------------------------ */

/* Rewrite the audit file at path as a version without per-node chains wrote it: its open lines lose
 * their "node" field and every line is MAC'd again under key (an open line's prev follows the
 * chain). The last line's seq and MAC and the first line's go to *head. */
typedef struct legacy_head {
    uint64_t seq, first_seq;
    uint8_t mac[32], first_mac[32];
} legacy_head;

static int strip_nodes(const char *path, const char *node, const uint8_t *key, legacy_head *head)
{
    size_t len = 0;
    char *text = sx_test_read_file(path, &len);
    char *out = malloc(len + 1);
    if (!text || !out)
        return -1;
    char field[128];
    snprintf(field, sizeof(field), ",\"node\":\"%s\"", node);
    size_t flen = strlen(field), olen = 0;
    uint8_t prev[32] = {0};
    bool first = true;
    for (char *line = text; line < text + len;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            return -1;
        *nl = '\0';
        char *f = strstr(line, field);
        if (f)
            memmove(f, f + flen, strlen(f + flen) + 1);
        char *m = strstr(line, ",\"mac\":\"");
        char *p = strstr(line, "\"prev\":\"");
        if (!m)
            return -1;
        if (p && !first) { /* a restart's open line continues the chain */
            uint8_t old[32];
            if (sodium_hex2bin(old, 32, p + 8, 64, NULL, NULL, NULL) != 0)
                return -1;
            if (!sodium_is_zero(old, 32)) {
                sodium_bin2hex(p + 8, 65, prev, 32);
                p[72] = '"';
            }
        }
        crypto_generichash_state st;
        crypto_generichash_init(&st, key, 32, 32);
        crypto_generichash_update(&st, prev, 32);
        crypto_generichash_update(&st, (const unsigned char *)line, (size_t)(m - line));
        crypto_generichash_final(&st, prev, 32);
        sodium_bin2hex(m + 8, 65, prev, 32);
        m[72] = '"';
        uint64_t seq = strtoull(line + 7, NULL, 10);
        if (first) {
            head->first_seq = seq;
            memcpy(head->first_mac, prev, 32);
            first = false;
        }
        head->seq = seq;
        memcpy(head->mac, prev, 32);
        size_t ll = strlen(line);
        memcpy(out + olen, line, ll);
        out[olen + ll] = '\n';
        olen += ll + 1;
        line = nl + 1;
    }
    int rc = sx_test_write_file(path, out, olen);
    free(text);
    free(out);
    return rc;
}

/* The stopped server in dir as a version without per-node chains left it: node's head moved to the
 * single s/audit.head (format 2, its record MAC under that key) and the node gone from audit.log. */
static int make_legacy_store(const char *dir, const char *node)
{
    char data[1024], keyfile[1024], log[1024], err[512];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(keyfile, sizeof(keyfile), "%s/seal.key", dir);
    snprintf(log, sizeof(log), "%s/audit.log", dir);
    sx_storage_options so = {.backend = "rocksdb", .path = data, .sync = true};
    sx_storage *st = NULL;
    sx_crypto *c = NULL;
    char *recovery = NULL;
    sx_crypto_options co = {.seal = {.type = SX_CRYPTO_SEAL_FILE, .key_file = keyfile}};
    if (sx_storage_open(&so, &st, err, sizeof(err)) != 0 ||
        sx_crypto_open(&c, &recovery, st, &co, err, sizeof(err)) != 0) {
        fprintf(stderr, "legacy store: %s\n", err);
        sx_storage_close(st);
        return -1;
    }
    legacy_head h = {0};
    int rc = strip_nodes(log, node, sx_crypto_system_key(c, SX_CRYPTO_KEY_AUDIT), &h);
    uint8_t rec[1 + 8 + 32 + 8 + 32 + SX_CRYPTO_RECORD_MACBYTES];
    rec[0] = 2;
    for (int i = 0; i < 8; i++) {
        rec[1 + i] = (uint8_t)(h.seq >> (56 - 8 * i));
        rec[41 + i] = (uint8_t)(h.first_seq >> (56 - 8 * i));
    }
    memcpy(rec + 9, h.mac, 32);
    memcpy(rec + 49, h.first_mac, 32);
    sx_crypto_record_mac(rec + 81, sx_crypto_system_key(c, SX_CRYPTO_KEY_RECORD), SX_AUDIT_HEAD_KEY,
                         strlen(SX_AUDIT_HEAD_KEY), rec, 81);
    char node_key[128];
    snprintf(node_key, sizeof(node_key), "%s%s", SX_AUDIT_HEAD_PREFIX, node);
    if (rc == 0)
        rc = sx_storage_put(st, SX_AUDIT_HEAD_KEY, strlen(SX_AUDIT_HEAD_KEY), rec, sizeof(rec), NULL);
    if (rc == 0)
        rc = sx_storage_delete(st, node_key, strlen(node_key));
    if (recovery)
        sx_crypto_recovery_key_free(recovery);
    sx_crypto_free(c);
    sx_storage_close(st);
    return rc;
}

/* Whether the stopped server's store in dir has a record at key. */
static bool store_has(const char *dir, const char *key)
{
    char data[1024], err[256];
    snprintf(data, sizeof(data), "%s/data", dir);
    sx_storage_options so = {.backend = "rocksdb", .path = data, .sync = true};
    sx_storage *st = NULL;
    if (sx_storage_open(&so, &st, err, sizeof(err)) != 0)
        return false;
    void *v = NULL;
    size_t len = 0;
    int rc = sx_storage_get(st, key, strlen(key), &v, &len, NULL);
    sx_storage_free(v);
    sx_storage_close(st);
    return rc == 0;
}

static void a_legacy_single_head_is_adopted_by_the_node_whose_file_continues_it(void)
{
    sx_srv srv;
    sx_srv_opts o = {.backend = "rocksdb",
                     .extra_log = "audit_log = audit.log\n",
                     .extra_server = "node_id = n1\n",
                     .keep_dir = true};
    char *owner = start_with_secret_a(&srv, &o);
    REQUIRE(owner);
    char *dir = strdup(srv.dir);
    char *ap = audit_path(&srv);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    REQUIRE(make_legacy_store(dir, "n1") == 0);
    CHECK(store_has(dir, SX_AUDIT_HEAD_KEY) && !store_has(dir, SX_AUDIT_HEAD_PREFIX "n1"));

    /* Another node (its own file) leaves the legacy head alone; the old file verifies against it. */
    o.dir = dir;
    o.extra_log = "audit_log = other.log\n";
    o.extra_server = "node_id = other\n";
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    char out[4096];
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    CHECK(strncmp(out, "OK: node (none), ", 17) == 0);
    CHECK_INT(verify(&srv, ap, true, NULL, out, sizeof(out)), 0);
    CHECK(strstr(out, "\"node\":null") && !strstr(out, "\"headSeq\":0,"));
    char other[1100];
    snprintf(other, sizeof(other), "%s/other.log", dir);
    sx_test_sleep_ms(300);
    CHECK_INT(verify(&srv, other, false, NULL, out, sizeof(out)), 0);
    CHECK(strncmp(out, "OK: node other, ", 16) == 0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    CHECK(store_has(dir, SX_AUDIT_HEAD_KEY) && store_has(dir, SX_AUDIT_HEAD_PREFIX "other"));

    /* The node whose file continues it adopts it: moved to its key, and its file goes on under it. */
    o.extra_log = "audit_log = audit.log\n";
    o.extra_server = "node_id = n1\n";
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    CHECK_INT(
        req(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", owner, NULL, "{\"kind\":\"secret\",\"name\":\"B\"}"),
        201);
    sx_test_sleep_ms(300);
    CHECK_INT(verify(&srv, ap, false, NULL, out, sizeof(out)), 0);
    CHECK(strncmp(out, "OK: node n1, ", 13) == 0);
    char *log = sx_test_read_file(ap, NULL);
    CHECK(log && strstr(log, "\"node\":\"n1\"") && strstr(log, "\"name\":\"A\""));
    free(log);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    CHECK(!store_has(dir, SX_AUDIT_HEAD_KEY) && store_has(dir, SX_AUDIT_HEAD_PREFIX "n1"));
    sx_test_rmtree(dir);
    free(dir);
    free(ap);
    free(owner);
}

static void a_corrupt_node_id_file_stops_start_up(void)
{
    sx_srv srv;
    sx_srv_opts o = {.extra_log = "audit_log = audit.log\n", .keep_dir = true};
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    char *dir = strdup(srv.dir);
    char node_file[1100];
    snprintf(node_file, sizeof(node_file), "%s/audit.log.node", dir);
    char *id = sx_test_read_file(node_file, NULL);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    /* The same id after a restart. */
    o.dir = dir;
    REQUIRE(sx_srv_start(&srv, &o) == 0);
    char *again = sx_test_read_file(node_file, NULL);
    CHECK(id && again && strcmp(id, again) == 0);
    free(again);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
    CHECK_INT(sx_test_write_file(node_file, "not/an id\n", 10), 0);
    CHECK(sx_srv_start(&srv, &o) != 0);
    char *err = sx_test_read_file(srv.stderr_path, NULL);
    CHECK(err && strstr(err, "audit.log.node\" is corrupt"));
    free(err);
    sx_srv_stop(&srv, SIGTERM, 20);
    sx_test_rmtree(dir);
    free(dir);
    free(id);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"every_endpoint_writes_its_expected_audit_lines", every_endpoint_writes_its_expected_audit_lines},
        {"version_endpoints_write_their_audit_lines", version_endpoints_write_their_audit_lines},
        {"deleted_secret_endpoints_write_their_audit_lines", deleted_secret_endpoints_write_their_audit_lines},
        {"audit_verify_catches_edits_deletions_swaps_and_a_cut_tail",
         audit_verify_catches_edits_deletions_swaps_and_a_cut_tail},
        {"audit_verify_catches_a_cut_at_a_restarts_open_line", audit_verify_catches_a_cut_at_a_restarts_open_line},
        {"fail_closed_refuses_reveals_and_writes_and_changes_nothing",
         fail_closed_refuses_reveals_and_writes_and_changes_nothing},
        {"fail_open_serves_when_the_audit_log_is_broken", fail_open_serves_when_the_audit_log_is_broken},
        {"request_ids_are_honoured_or_generated_and_logged", request_ids_are_honoured_or_generated_and_logged},
        {"json_log_format_carries_request_ids", json_log_format_carries_request_ids},
        {"thousand_concurrent_reveals_log_one_intent_and_one_done_each_in_order",
         thousand_concurrent_reveals_log_one_intent_and_one_done_each_in_order},
        {"fail_closed_answers_503_when_the_disk_stalls_and_changes_nothing",
         fail_closed_answers_503_when_the_disk_stalls_and_changes_nothing},
        {"sigkill_amid_audited_batches_leaves_a_file_that_verifies_after_restart",
         sigkill_amid_audited_batches_leaves_a_file_that_verifies_after_restart},
        {"a_legacy_single_head_is_adopted_by_the_node_whose_file_continues_it",
         a_legacy_single_head_is_adopted_by_the_node_whose_file_continues_it},
        {"a_corrupt_node_id_file_stops_start_up", a_corrupt_node_id_file_stops_start_up},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
