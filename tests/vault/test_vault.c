/*
 * test_vault.c - the Vault KV v2 compatible routes against the real secretsd: real Vault clients
 * (Debian's python3-hvac and node-vault from npm, the scripts beside this file) over HTTP/1.1 and
 * TLS, and libcurl for what clients do not show: Vault's error form and status codes, the
 * permissions of each role and scope, [vault] enabled = false, mount aliases, the admin socket's
 * own /v1/ routes, and that no value or token reaches a log.
 *
 * `test_vault [test names...]`: each test starts its own server.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "harness.h"
#include "testutil.h"

#define MOUNTS     "[vault]\nmounts = secret:acme, kv:beta\n"
#define CLIENT_DIR SX_TEST_SOURCE_DIR

/* ---- helpers ------------------------------------------------------------------------------------- */

static bool start(sx_srv *srv, const char *vault_conf)
{
    /* [log] is the last section the harness writes: the [vault] section follows it. */
    char extra[512];
    snprintf(extra, sizeof(extra), "audit_log = audit.log\n%s", vault_conf);
    if (sx_srv_start(srv, &(sx_srv_opts){.extra_log = extra}) != 0) {
        fprintf(stderr, "server did not start\n");
        return false;
    }
    return true;
}

static void stop(sx_srv *srv)
{
    CHECK_INT(sx_srv_stop(srv, SIGTERM, 30), 0);
}

/* One request with X-Vault-Token (token NULL: none) and a Content-Type when ctype is not NULL. */
static long vreq(const sx_srv *srv, sx_proto proto, const char *method, const char *path, const char *token,
                 const char *ctype, const char *body, sx_resp *ret)
{
    char th[160], ch[128];
    const char *headers[3] = {NULL, NULL, NULL};
    size_t n = 0;
    if (token) {
        snprintf(th, sizeof(th), "X-Vault-Token: %s", token);
        headers[n++] = th;
    }
    if (ctype) {
        snprintf(ch, sizeof(ch), "Content-Type: %s", ctype);
        headers[n++] = ch;
    }
    if (sx_srv_request(srv, proto, method, path, headers, body, body ? strlen(body) : 0, ret) != 0)
        return -1;
    return ret->status;
}

/* The status of one request, its answer freed. */
static long vstatus(const sx_srv *srv, const char *method, const char *path, const char *token, const char *body)
{
    sx_resp r;
    long st = vreq(srv, SX_H1, method, path, token, body ? "application/json" : NULL, body, &r);
    sx_resp_free(&r);
    return st;
}

/* True when r is Vault's error form {"errors": [...]} with status, and its first error contains
 * needle (needle NULL: the list is empty, as Vault's 404). */
static bool vault_error(const sx_resp *r, long status, const char *needle)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(r->body, ebuf, sizeof(ebuf));
    const char *ep[] = {"errors", NULL};
    yajl_val e = v && YAJL_IS_OBJECT(v) && v->u.object.len == 1 ? yajl_tree_get(v, ep, yajl_t_array) : NULL;
    bool ok = r->status == status && e;
    if (ok && !needle)
        ok = e->u.array.len == 0;
    else if (ok) {
        const char *first = e->u.array.len >= 1 ? YAJL_GET_STRING(e->u.array.values[0]) : NULL;
        ok = first && strstr(first, needle) != NULL;
    }
    char ct[128];
    ok = ok && sx_resp_header(r, "content-type", ct, sizeof(ct)) && strcmp(ct, "application/json") == 0;
    if (!ok)
        fprintf(stderr, "expected %ld {\"errors\": [\"...%s...\"]}, got %ld: %s\n", status, needle ? needle : "",
                r->status, r->body);
    yajl_tree_free(v);
    return ok;
}

static bool verr(const sx_srv *srv, const char *method, const char *path, const char *token, const char *ctype,
                 const char *body, long status, const char *needle)
{
    sx_resp r;
    vreq(srv, SX_H1, method, path, token, ctype, body, &r);
    bool ok = vault_error(&r, status, needle);
    sx_resp_free(&r);
    return ok;
}

/* The string at a path of r's JSON body (a static copy), or "" when there is none. */
static const char *jpath(const sx_resp *r, const char *const *path)
{
    static char out[1024];
    char ebuf[128];
    yajl_val v = yajl_tree_parse(r->body, ebuf, sizeof(ebuf));
    yajl_val s = v ? yajl_tree_get(v, (const char **)path, yajl_t_any) : NULL;
    out[0] = '\0';
    if (s && YAJL_IS_STRING(s))
        snprintf(out, sizeof(out), "%s", YAJL_GET_STRING(s));
    else if (s && YAJL_IS_INTEGER(s))
        snprintf(out, sizeof(out), "%lld", YAJL_GET_INTEGER(s));
    else if (s && YAJL_IS_ARRAY(s))
        for (size_t i = 0, n = 0; i < s->u.array.len && n < sizeof(out); i++)
            n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "," : "",
                                  YAJL_IS_STRING(s->u.array.values[i]) ? YAJL_GET_STRING(s->u.array.values[i]) : "?");
    yajl_tree_free(v);
    return out;
}

/* GET data/{path} on mount: data.data.value (a secret) or "" ; the status when not 200 as "#N". */
static const char *read_value(const sx_srv *srv, const char *mount, const char *path, const char *token)
{
    static char out[256];
    char url[512];
    snprintf(url, sizeof(url), "/v1/%s/data/%s", mount, path);
    sx_resp r;
    long st = vreq(srv, SX_H1, "GET", url, token, NULL, NULL, &r);
    static const char *const vp[] = {"data", "data", "value", NULL};
    if (st == 200)
        snprintf(out, sizeof(out), "%s", jpath(&r, vp));
    else
        snprintf(out, sizeof(out), "#%ld", st);
    sx_resp_free(&r);
    return out;
}

static long write_value(const sx_srv *srv, const char *mount, const char *path, const char *token, const char *value)
{
    char url[512], body[512];
    snprintf(url, sizeof(url), "/v1/%s/data/%s", mount, path);
    snprintf(body, sizeof(body), "{\"data\":{\"value\":\"%s\"}}", value);
    return vstatus(srv, "POST", url, token, body);
}

/* Run a client script; its output goes to stderr. 0 when it passed. */
static int run_client(const char *cmd_fmt, const char *token, const char *url, const char *mount, const char *ca)
{
    char *out = NULL;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), cmd_fmt, token, CLIENT_DIR, url, mount, ca ? ca : "");
    int rc = sx_test_sh(&out, "%s 2>&1", cmd);
    fprintf(stderr, "%s", out);
    free(out);
    return rc;
}

/* ---- real clients -------------------------------------------------------------------------------- */

#define HVAC "VAULT_TOKEN='%s' /usr/bin/python3 %s/hvac_client.py %s %s %s"
#define NODE "VAULT_TOKEN='%s' node %s/node_client.js %s %s %s"

static void clients_over_http_and_tls(const char *cmd_fmt)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    char *acme = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    char *beta = sx_srv_mint_token(&srv, "beta", NULL, NULL, "owner", NULL);
    REQUIRE(acme && beta);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    CHECK_INT(run_client(cmd_fmt, acme, url, "secret", NULL), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.tls_port);
    CHECK_INT(run_client(cmd_fmt, beta, url, "kv", srv.cert_path), 0);
    free(acme);
    free(beta);
    stop(&srv);
}

static void hvac_reads_writes_patches_and_lists_over_http_and_tls(void)
{
    clients_over_http_and_tls(HVAC);
}

static void node_vault_reads_writes_and_lists_over_http_and_tls(void)
{
    char *out = NULL;
    int rc = sx_test_sh(&out, "test -d %s/node_modules/node-vault", CLIENT_DIR);
    free(out);
    if (rc != 0) {
        fprintf(stderr, "node-vault is not installed in %s: run scripts/install-deps\n", CLIENT_DIR);
        CHECK(false);
        return;
    }
    clients_over_http_and_tls(NODE);
}

/* ---- errors -------------------------------------------------------------------------------------- */

static void errors_have_vaults_form_and_status_and_change_nothing(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    char *t = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(t);
    const char *J = "application/json";
    CHECK_INT(vstatus(&srv, "POST", "/v1/secret/data/app/dev", t, "{\"data\":{\"A\":\"1\",\"B\":\"2\"}}"), 200);

    /* bodies */
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":", 400, "not valid JSON"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"options\":{}}", 400, "\"data\" is required"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":\"A\"}", 400, "\"data\" must be"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":{\"A\":1}}", 400, "must be a string"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":{\"A\":{\"x\":\"y\"}}}", 400, "\"data\""));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":{\"A\":\"1\",\"A\":\"2\"}}", 400,
               "more than once"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":{\"a b\":\"1\"}}", 400, "secret name"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":{\"A\":\"1\"},\"extra\":1}", 400,
               "unknown field"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":{},\"options\":{\"ttl\":1}}", 400,
               "only \"cas\""));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":{},\"options\":{\"cas\":-1}}", 400,
               "options.cas"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev/A", t, J, "{\"data\":{\"val\":\"1\"}}", 400, "\"value\""));
    CHECK(
        verr(&srv, "POST", "/v1/secret/data/app/dev/A", t, J, "{\"data\":{\"value\":null}}", 400, "must be a string"));
    CHECK(verr(&srv, "PATCH", "/v1/secret/data/app/dev", t, J, "{\"data\":{\"A\":null}}", 415, "merge-patch"));
    CHECK(verr(&srv, "PATCH", "/v1/secret/data/app/none", t, "application/merge-patch+json", "{\"data\":{\"A\":\"1\"}}",
               404, NULL));
    size_t big = 65536 + 10;
    char *huge = malloc(big + 64);
    REQUIRE(huge);
    int n = snprintf(huge, 64, "{\"data\":{\"value\":\"");
    memset(huge + n, 'x', big);
    strcpy(huge + n + big, "\"}}");
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev/A", t, J, huge, 413, "max_value_bytes"));
    free(huge);

    /* check-and-set: Vault's 400 and its sentence */
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev/A", t, J, "{\"data\":{\"value\":\"x\"},\"options\":{\"cas\":7}}",
               400, "check-and-set parameter did not match the current version"));
    CHECK(verr(&srv, "POST", "/v1/secret/data/app/dev", t, J, "{\"data\":{\"A\":\"x\"},\"options\":{\"cas\":0}}", 400,
               "check-and-set parameter did not match the current version"));

    /* paths, methods, queries */
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/NOPE", t, NULL, NULL, 404, NULL));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app", t, NULL, NULL, 404, NULL));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/A/deeper", t, NULL, NULL, 404, NULL));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/%2e%2e/A", t, NULL, NULL, 400, "[A-Za-z0-9._-]"));
    CHECK(verr(&srv, "GET", "/v1/secret/data/.app/dev", t, NULL, NULL, 400, "project"));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/A?version=x", t, NULL, NULL, 400, "version"));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev?version=1", t, NULL, NULL, 400, "version"));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/A?version=9", t, NULL, NULL, 404, NULL));
    CHECK(verr(&srv, "GET", "/v1/nothing-here", t, NULL, NULL, 404, NULL));
    CHECK(verr(&srv, "GET", "/v1/sys/internal/ui/mounts", t, NULL, NULL, 404, NULL));
    sx_resp r;
    CHECK_INT(vreq(&srv, SX_H1, "POST", "/v1/secret/metadata/app/dev", t, J, "{}", &r), 405);
    char allow[128] = "";
    CHECK(sx_resp_header(&r, "allow", allow, sizeof(allow)) && strstr(allow, "DELETE") && strstr(allow, "LIST"));
    CHECK(vault_error(&r, 405, "method"));
    sx_resp_free(&r);

    /* tokens: Vault answers a missing or unknown one 403 "permission denied", not 401 */
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev", NULL, NULL, NULL, 403, "permission denied"));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev", "sxt_00000000000000000000000000000000_x", NULL, NULL, 403,
               "permission denied"));
    CHECK(verr(&srv, "GET", "/v1/auth/token/lookup-self", "nonsense", NULL, NULL, 403, "permission denied"));
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/secret/data/app/dev", NULL, NULL, NULL, &r), 403);
    char wa[64];
    CHECK(!sx_resp_header(&r, "www-authenticate", wa, sizeof(wa)));
    sx_resp_free(&r);

    /* health: status codes by query, HEAD */
    CHECK_INT(vstatus(&srv, "GET", "/v1/sys/health?activecode=299", NULL, NULL), 299);
    CHECK_INT(vstatus(&srv, "HEAD", "/v1/sys/health", NULL, NULL), 200);

    /* nothing changed */
    CHECK_STR(read_value(&srv, "secret", "app/dev/A", t), "1");
    CHECK_STR(read_value(&srv, "secret", "app/dev/B", t), "2");
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/secret/metadata/app/dev/A", t, NULL, NULL, &r), 200);
    static const char *const cv[] = {"data", "current_version", NULL};
    CHECK_STR(jpath(&r, cv), "1");
    sx_resp_free(&r);

    /* X-Vault-Token failures count in the failed-login throttle (its burst is 20); a valid token
     * is still served */
    bool throttled = false;
    for (int i = 0; i < 30 && !throttled; i++) {
        vreq(&srv, SX_H1, "GET", "/v1/secret/data/app/dev", "sxt_00000000000000000000000000000000_bad", NULL, NULL, &r);
        if (r.status == 429) {
            throttled = true;
            char ra[16];
            CHECK(sx_resp_header(&r, "retry-after", ra, sizeof(ra)));
            CHECK(vault_error(&r, 429, "too many failed"));
        } else {
            CHECK_INT(r.status, 403);
        }
        sx_resp_free(&r);
    }
    CHECK(throttled);
    CHECK_STR(read_value(&srv, "secret", "app/dev/A", t), "1");
    free(t);
    stop(&srv);
}

/* A token of each role for the whole of acme, one scoped to acme/app/prod with role prod_role, and
 * an owner of beta. */
typedef struct role_tokens {
    char *owner, *editor, *viewer, *service, *prod_only, *other_org;
} role_tokens;

static bool mint_roles(sx_srv *srv, const char *prod_role, role_tokens *ret)
{
    ret->owner = sx_srv_mint_token(srv, "acme", NULL, NULL, "owner", NULL);
    ret->editor = sx_srv_mint_token(srv, "acme", NULL, NULL, "editor", NULL);
    ret->viewer = sx_srv_mint_token(srv, "acme", NULL, NULL, "viewer", NULL);
    ret->service = sx_srv_mint_token(srv, "acme", NULL, NULL, "service", NULL);
    ret->prod_only = sx_srv_mint_token(srv, "acme", "app", "prod", prod_role, NULL);
    ret->other_org = sx_srv_mint_token(srv, "beta", NULL, NULL, "owner", NULL);
    return ret->owner && ret->editor && ret->viewer && ret->service && ret->prod_only && ret->other_org;
}

static void free_roles(role_tokens *t)
{
    char *all[] = {t->owner, t->editor, t->viewer, t->service, t->prod_only, t->other_org};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        free(all[i]);
}

/* ---- permissions --------------------------------------------------------------------------------- */

static void each_role_and_scope_gets_what_our_own_routes_give_it(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    role_tokens rt;
    REQUIRE(mint_roles(&srv, "service", &rt));
    char *app_only = sx_srv_mint_token(&srv, "acme", "app", NULL, "owner", NULL);
    REQUIRE(app_only);
    const char *owner = rt.owner, *editor = rt.editor, *viewer = rt.viewer, *service = rt.service,
               *prod_only = rt.prod_only, *other_org = rt.other_org;
    CHECK_INT(vstatus(&srv, "POST", "/v1/secret/data/app/dev", owner, "{\"data\":{\"A\":\"1\",\"T1\":\"t\"}}"), 200);
    CHECK_INT(vstatus(&srv, "POST", "/v1/secret/data/app/prod", owner, "{\"data\":{\"P\":\"p\"}}"), 200);
    CHECK_INT(vstatus(&srv, "POST", "/v1/secret/data/web/dev", owner, "{\"data\":{\"W\":\"w\"}}"), 200);

    struct {
        const char *role;
        const char *token;
        long reveal, set, delete, read;
    } roles[] = {
        {"owner", owner, 200, 200, 200, 200},
        {"editor", editor, 403, 403, 200, 200},
        {"viewer", viewer, 403, 403, 403, 200},
        {"service", service, 200, 403, 403, 200},
    };
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        fprintf(stderr, "role %s\n", roles[i].role);
        const char *tk = roles[i].token;
        CHECK_INT(vstatus(&srv, "GET", "/v1/secret/data/app/dev", tk, NULL), roles[i].reveal);
        CHECK_INT(vstatus(&srv, "GET", "/v1/secret/data/app/dev/A", tk, NULL), roles[i].reveal);
        CHECK_INT(vstatus(&srv, "POST", "/v1/secret/data/app/dev/A", tk, "{\"data\":{\"value\":\"2\"}}"), roles[i].set);
        CHECK_INT(vstatus(&srv, "POST", "/v1/secret/data/app/dev/NEW", tk, "{\"data\":{\"value\":\"n\"}}"),
                  roles[i].set);
        /* a PATCH that only deletes needs secrets:write, as our DELETE does */
        char body[128];
        snprintf(body, sizeof(body), "{\"data\":{\"T_%s\":\"t\"}}", roles[i].role);
        CHECK_INT(vstatus(&srv, "POST", "/v1/secret/data/app/tmp", owner, body), 200);
        snprintf(body, sizeof(body), "{\"data\":{\"T_%s\":null}}", roles[i].role);
        sx_resp r;
        CHECK_INT(vreq(&srv, SX_H1, "PATCH", "/v1/secret/data/app/tmp", tk, "application/merge-patch+json", body, &r),
                  roles[i].delete);
        sx_resp_free(&r);
        CHECK_INT(vstatus(&srv, "LIST", "/v1/secret/metadata/app/dev", tk, NULL), roles[i].read);
        CHECK_INT(vstatus(&srv, "GET", "/v1/secret/metadata/app/dev/A", tk, NULL), roles[i].read);
        CHECK_INT(vstatus(&srv, "GET", "/v1/auth/token/lookup-self", tk, NULL), 200);
        /* a 403 never depends on whether the name exists */
        if (roles[i].reveal == 403)
            CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/NOPE", tk, NULL, NULL, 403, "permission denied"));
    }

    /* scopes: a project's token sees only its project, an env's token only its env */
    CHECK_INT(vstatus(&srv, "GET", "/v1/secret/data/web/dev", app_only, NULL), 403);
    CHECK_STR(read_value(&srv, "secret", "app/prod/P", app_only), "p");
    CHECK_STR(read_value(&srv, "secret", "app/prod/P", prod_only), "p");
    CHECK_STR(read_value(&srv, "secret", "app/dev/A", prod_only), "#403");
    sx_resp r;
    static const char *const keys[] = {"data", "keys", NULL};
    CHECK_INT(vreq(&srv, SX_H1, "LIST", "/v1/secret/metadata/", owner, NULL, NULL, &r), 200);
    CHECK_STR(jpath(&r, keys), "app/,web/");
    sx_resp_free(&r);
    CHECK_INT(vreq(&srv, SX_H1, "LIST", "/v1/secret/metadata/", app_only, NULL, NULL, &r), 200);
    CHECK_STR(jpath(&r, keys), "app/");
    sx_resp_free(&r);
    CHECK_INT(vreq(&srv, SX_H1, "LIST", "/v1/secret/metadata/app", prod_only, NULL, NULL, &r), 200);
    CHECK_STR(jpath(&r, keys), "prod,prod/");
    sx_resp_free(&r);
    CHECK_INT(vstatus(&srv, "LIST", "/v1/secret/metadata/web", app_only, NULL), 403);
    CHECK_INT(vstatus(&srv, "LIST", "/v1/secret/metadata/app/dev", prod_only, NULL), 403);
    CHECK_INT(vstatus(&srv, "LIST", "/v1/secret/metadata/", other_org, NULL), 403);
    CHECK_INT(vstatus(&srv, "GET", "/v1/secret/data/app/dev", other_org, NULL), 403);
    CHECK_INT(vstatus(&srv, "GET", "/v1/sys/internal/ui/mounts/secret/app", other_org, NULL), 403);
    CHECK_INT(vstatus(&srv, "GET", "/v1/sys/internal/ui/mounts/kv/app", other_org, NULL), 200);
    CHECK_INT(vstatus(&srv, "GET", "/v1/sys/internal/ui/mounts/kv/data/app/dev/NAME/x", other_org, NULL), 200);
    CHECK_INT(vstatus(&srv, "GET", "/v1/sys/internal/ui/mounts/kv", other_org, NULL), 200);

    /* what the refused writes left: the owner's values only */
    CHECK_STR(read_value(&srv, "secret", "app/dev/A", owner), "2");
    CHECK_STR(read_value(&srv, "secret", "app/dev/NEW", owner), "n");
    free(app_only);
    free_roles(&rt);
    stop(&srv);
}

/* Names that sort around each other's "NAME/" prefixes ('-' '.' '/' '0' are neighbours): every
 * project and env is listed once, in order, however many secrets each holds. */
static void list_levels_name_every_project_and_env_once(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    char *t = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(t);
    static const char *const projects[] = {"ab", "a", "a0", "a.b", "a-b"};
    for (size_t i = 0; i < sizeof(projects) / sizeof(projects[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/secret/data/%s/e", projects[i]);
        CHECK_INT(vstatus(&srv, "POST", path, t, "{\"data\":{\"X\":\"1\",\"Y\":\"2\",\"Z\":\"3\"}}"), 200);
        snprintf(path, sizeof(path), "/v1/secret/data/%s/e0", projects[i]);
        CHECK_INT(vstatus(&srv, "POST", path, t, "{\"data\":{\"X\":\"1\"}}"), 200);
        snprintf(path, sizeof(path), "/v1/secret/data/%s/e.1", projects[i]);
        CHECK_INT(vstatus(&srv, "POST", path, t, "{\"data\":{\"X\":\"1\"}}"), 200);
    }
    static const char *const keys[] = {"data", "keys", NULL};
    sx_resp r;
    CHECK_INT(vreq(&srv, SX_H1, "LIST", "/v1/secret/metadata", t, NULL, NULL, &r), 200);
    CHECK_STR(jpath(&r, keys), "a-b/,a.b/,a/,a0/,ab/");
    sx_resp_free(&r);
    CHECK_INT(vreq(&srv, SX_H2C, "GET", "/v1/secret/metadata/a?list=true", t, NULL, NULL, &r), 200);
    CHECK_STR(jpath(&r, keys), "e.1,e.1/,e,e/,e0,e0/"); /* by name, as stored: "e.1/..." sorts before "e/..." */
    sx_resp_free(&r);
    CHECK_INT(vreq(&srv, SX_H1TLS, "LIST", "/v1/secret/metadata/a/e/", t, NULL, NULL, &r), 200);
    CHECK_STR(jpath(&r, keys), "X,Y,Z");
    sx_resp_free(&r);
    CHECK(verr(&srv, "LIST", "/v1/secret/metadata/a/e/X", t, NULL, NULL, 404, NULL));
    CHECK(verr(&srv, "LIST", "/v1/secret/metadata/b", t, NULL, NULL, 404, NULL));
    CHECK(verr(&srv, "LIST", "/v1/acme2/metadata/", t, NULL, NULL, 403, "permission denied"));
    free(t);
    stop(&srv);
}

/* ---- deletes ------------------------------------------------------------------------------------- */

/* Our own API's answer to GET path with token (Authorization: Bearer): its body, "#N" when not 200. */
static char *api_get(const sx_srv *srv, const char *token, const char *path)
{
    char auth[160];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *h[] = {auth, NULL};
    sx_resp r;
    char *out = NULL;
    if (sx_srv_request(srv, SX_H1, "GET", path, h, NULL, 0, &r) == 0)
        out = r.status == 200 ? strdup(r.body) : NULL;
    if (!out) {
        out = malloc(16);
        snprintf(out, 16, "#%ld", r.status);
    }
    sx_resp_free(&r);
    return out;
}

/* Does our own list of the deleted secrets of acme/app/{env} name name? */
static bool deleted_has(const sx_srv *srv, const char *token, const char *env, const char *name)
{
    char path[128], needle[300];
    snprintf(path, sizeof(path), "/acme/app/envs/%s/deleted-secrets", env);
    snprintf(needle, sizeof(needle), "\"name\":\"%s\"", name);
    char *body = api_get(srv, token, path);
    bool has = strstr(body, needle) != NULL;
    free(body);
    return has;
}

/* The current version of acme/app/dev/{name} by our own versions list (newest first), 0 when none. */
static unsigned current_version(const sx_srv *srv, const char *token, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/acme/app/envs/dev/secrets/%s/versions", name);
    char *body = api_get(srv, token, path);
    const char *v = strstr(body, "\"version\":");
    unsigned n = v ? (unsigned)strtoul(v + 10, NULL, 10) : 0;
    free(body);
    return n;
}

/* A 204 with no body, over proto. */
static bool no_content(const sx_srv *srv, sx_proto proto, const char *method, const char *path, const char *token,
                       const char *body)
{
    sx_resp r;
    long st = vreq(srv, proto, method, path, token, body ? "application/json" : NULL, body, &r);
    bool ok = st == 204 && r.body_len == 0;
    if (!ok)
        fprintf(stderr, "%s %s: expected 204 and no body, got %ld: %s\n", method, path, st, r.body);
    sx_resp_free(&r);
    return ok;
}

static void deletes_map_onto_deleted_secrets_restore_destroy_and_purge(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    char *t = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(t);
    const char *J = "application/json";
    CHECK_INT(write_value(&srv, "secret", "app/dev/S", t, "one"), 200);
    CHECK_INT(write_value(&srv, "secret", "app/dev/S", t, "two"), 200);

    /* DELETE data/ is our soft delete: listed in the deleted secrets, read as Vault's 404 of a
     * deleted version, restored by undelete with every version */
    CHECK(no_content(&srv, SX_H2C, "DELETE", "/v1/secret/data/app/dev/S", t, NULL));
    CHECK(deleted_has(&srv, t, "dev", "S"));
    sx_resp r;
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/secret/data/app/dev/S", t, NULL, NULL, &r), 404);
    static const char *const dt[] = {"data", "metadata", "deletion_time", NULL}, *const ver[] = {"data", "metadata",
                                                                                                 "version", NULL};
    CHECK(strlen(jpath(&r, dt)) == 24 && jpath(&r, dt)[23] == 'Z');
    CHECK_STR(jpath(&r, ver), "2");
    CHECK(strstr(r.body, "\"data\":{\"data\":null,") != NULL && strstr(r.body, "two") == NULL);
    sx_resp_free(&r);
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/secret/data/app/dev/S?version=2", t, NULL, NULL, &r), 404);
    CHECK_STR(jpath(&r, ver), "2");
    sx_resp_free(&r);
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/S?version=1", t, NULL, NULL, 404, NULL));
    /* its metadata: the versions it keeps, each deleted with it */
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/secret/metadata/app/dev/S", t, NULL, NULL, &r), 200);
    static const char *const cur[] = {"data", "current_version", NULL},
                             *const dt1[] = {"data", "versions", "1", "deletion_time", NULL},
                             *const dt2[] = {"data", "versions", "2", "deletion_time", NULL},
                             *const upd[] = {"data", "updated_time", NULL};
    CHECK_STR(jpath(&r, cur), "2");
    char when[64];
    snprintf(when, sizeof(when), "%s", jpath(&r, dt2));
    CHECK(strlen(when) == 24);
    CHECK_STR(jpath(&r, dt1), when);
    CHECK_STR(jpath(&r, upd), when);
    sx_resp_free(&r);
    CHECK(no_content(&srv, SX_H1TLS, "POST", "/v1/secret/undelete/app/dev/S", t, "{\"versions\":\"1,2\"}"));
    CHECK(!deleted_has(&srv, t, "dev", "S"));
    CHECK_STR(read_value(&srv, "secret", "app/dev/S", t), "two");
    CHECK_STR(read_value(&srv, "secret", "app/dev/S?version=1", t), "one");
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/secret/metadata/app/dev/S", t, NULL, NULL, &r), 200);
    CHECK_STR(jpath(&r, dt1), "");
    CHECK_STR(jpath(&r, dt2), "");
    sx_resp_free(&r);

    /* a name written again after the delete: undelete is refused, nothing changes */
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/delete/app/dev/S", t, "{\"versions\":[2]}"));
    CHECK_INT(write_value(&srv, "secret", "app/dev/S", t, "three"), 200);
    CHECK(verr(&srv, "POST", "/v1/secret/undelete/app/dev/S", t, J, "{\"versions\":[2]}", 400, "exists again"));
    CHECK(deleted_has(&srv, t, "dev", "S"));
    CHECK_STR(read_value(&srv, "secret", "app/dev/S", t), "three");
    /* undelete of the live secret's own versions: nothing deleted, nothing done */
    CHECK(no_content(&srv, SX_H1, "PUT", "/v1/secret/undelete/app/dev/S", t, "{\"versions\":[3]}"));
    CHECK_STR(read_value(&srv, "secret", "app/dev/S", t), "three");

    /* destroy: previous versions only, refused before anything is destroyed when the current one
     * is listed; unknown versions skipped */
    CHECK_INT(write_value(&srv, "secret", "app/dev/S", t, "four"), 200);
    CHECK(verr(&srv, "POST", "/v1/secret/destroy/app/dev/S", t, J, "{\"versions\":[3,4]}", 400, "current version (4)"));
    CHECK_STR(read_value(&srv, "secret", "app/dev/S?version=3", t), "three");
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/destroy/app/dev/S", t, "{\"versions\":[3,1000]}"));
    CHECK_STR(read_value(&srv, "secret", "app/dev/S?version=3", t), "#404");
    char *versions = api_get(&srv, t, "/acme/app/envs/dev/secrets/S/versions");
    CHECK(strstr(versions, "\"version\":3,\"createdAt\"") && strstr(versions, "\"state\":\"destroyed\""));
    free(versions);
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/destroy/app/dev/S", t, "{\"versions\":[3]}"));

    /* DELETE metadata/: the live secret and its deleted copy are both gone for good */
    CHECK(no_content(&srv, SX_H1, "DELETE", "/v1/secret/metadata/app/dev/S", t, NULL));
    CHECK(!deleted_has(&srv, t, "dev", "S"));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/S", t, NULL, NULL, 404, NULL));
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/undelete/app/dev/S", t, "{\"versions\":[4]}"));
    CHECK(verr(&srv, "GET", "/v1/secret/metadata/app/dev/S", t, NULL, NULL, 404, NULL));
    /* nothing at a path: 204, as Vault answers */
    CHECK(no_content(&srv, SX_H1, "DELETE", "/v1/secret/data/app/dev/NONE", t, NULL));
    CHECK(no_content(&srv, SX_H1, "DELETE", "/v1/secret/metadata/app/dev/NONE", t, NULL));
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/destroy/app/dev/NONE", t, "{\"versions\":[1]}"));

    /* a map: DELETE data/ deletes each secret (each restorable), delete/ needs the map's version,
     * undelete and destroy are a secret's; DELETE metadata/ purges the env, deleted secrets too */
    CHECK_INT(vstatus(&srv, "POST", "/v1/secret/data/app/map", t, "{\"data\":{\"A\":\"1\",\"B\":\"2\",\"C\":\"3\"}}"),
              200);
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/map", t, J, "{\"versions\":[1]}", 400, "current version (3)"));
    CHECK_STR(read_value(&srv, "secret", "app/map/A", t), "1");
    CHECK(verr(&srv, "POST", "/v1/secret/undelete/app/map", t, J, "{\"versions\":[3]}", 400, "name one secret"));
    CHECK(verr(&srv, "POST", "/v1/secret/destroy/app/map", t, J, "{\"versions\":[3]}", 400, "name one secret"));
    CHECK(no_content(&srv, SX_H1, "DELETE", "/v1/secret/data/app/map/C", t, NULL));
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/delete/app/map", t, "{\"versions\":[2]}"));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/map", t, NULL, NULL, 404, NULL));
    CHECK(deleted_has(&srv, t, "map", "A") && deleted_has(&srv, t, "map", "B") && deleted_has(&srv, t, "map", "C"));
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/undelete/app/map/B", t, "{\"versions\":[1]}"));
    CHECK_STR(read_value(&srv, "secret", "app/map/B", t), "2");
    CHECK(no_content(&srv, SX_H1, "DELETE", "/v1/secret/metadata/app/map", t, NULL));
    char *left = api_get(&srv, t, "/acme/app/envs/map/deleted-secrets");
    CHECK_STR(left, "[]");
    free(left);
    CHECK(verr(&srv, "LIST", "/v1/secret/metadata/app/map", t, NULL, NULL, 404, NULL));
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/delete/app/map", t, "{\"versions\":[1]}"));

    /* bodies and paths: Vault's 400, nothing changed */
    CHECK_INT(write_value(&srv, "secret", "app/dev/K", t, "k"), 200);
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":[]}", 400, "no version number"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{}", 400, "\"versions\" is required"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, NULL, NULL, 400, "JSON"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":[0]}", 400, "version number"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":[-1]}", 400, "version number"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":[1.5]}", 400, "version number"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":[null]}", 400, "version number"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":\"1,,2\"}", 400, "version number"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":\"1,\"}", 400, "version number"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":\"\"}", 400, "no version number"));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":[[1]]}", 400, "\"versions\""));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":{\"a\":1}}", 400, "\"versions\""));
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, "{\"versions\":[1],\"x\":1}", 400, "unknown"));
    CHECK(verr(&srv, "POST", "/v1/secret/undelete/app/dev/K", t, J, "{\"versions\":[4294967296]}", 400, "version"));
    char many[8192];
    size_t mn = (size_t)snprintf(many, sizeof(many), "{\"versions\":[");
    for (int i = 1; i <= 1001; i++)
        mn += (size_t)snprintf(many + mn, sizeof(many) - mn, "%s%d", i > 1 ? "," : "", i);
    snprintf(many + mn, sizeof(many) - mn, "]}");
    CHECK(verr(&srv, "POST", "/v1/secret/delete/app/dev/K", t, J, many, 400, "more than 1000 versions"));
    CHECK(verr(&srv, "DELETE", "/v1/secret/data/app", t, NULL, NULL, 400, "PROJECT/ENV"));
    CHECK(verr(&srv, "DELETE", "/v1/secret/metadata/", t, NULL, NULL, 400, "PROJECT/ENV"));
    CHECK(verr(&srv, "DELETE", "/v1/secret/data/app/dev/K/x", t, NULL, NULL, 404, NULL));
    CHECK(verr(&srv, "DELETE", "/v1/secret/data/app/%2e%2e/K", t, NULL, NULL, 400, "[A-Za-z0-9._-]"));
    CHECK(verr(&srv, "GET", "/v1/secret/destroy/app/dev/K", t, NULL, NULL, 405, "method"));
    CHECK(verr(&srv, "DELETE", "/v1/secret/data/app/dev/K", NULL, NULL, NULL, 403, "permission denied"));
    CHECK_STR(read_value(&srv, "secret", "app/dev/K", t), "k");

    /* the audit lines name the Vault routes */
    char *audit = sx_test_path(srv.dir, "audit.log");
    static const char *const actions[] = {"vault.delete\"", "vault.delete_versions\"", "vault.undelete\"",
                                          "vault.destroy\"", "vault.delete_metadata\""};
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        CHECK(sx_test_file_wait(audit, actions[i], 5000));
    free(audit);
    free(t);
    stop(&srv);

    /* [secrets] recovery_window = 0: a delete destroys at once, undelete finds nothing */
    REQUIRE(start(&srv, MOUNTS "[secrets]\nrecovery_window = 0\n"));
    t = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(t);
    CHECK_INT(write_value(&srv, "secret", "app/dev/S", t, "one"), 200);
    CHECK(no_content(&srv, SX_H1, "DELETE", "/v1/secret/data/app/dev/S", t, NULL));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/S", t, NULL, NULL, 404, NULL));
    CHECK(no_content(&srv, SX_H1, "POST", "/v1/secret/undelete/app/dev/S", t, "{\"versions\":[1]}"));
    CHECK(verr(&srv, "GET", "/v1/secret/data/app/dev/S", t, NULL, NULL, 404, NULL));
    free(t);
    stop(&srv);
}

/* Each delete needs what our own route for the same change needs: DELETE data/ and delete/ our
 * DELETE's secrets:write, undelete our restore's and destroy our version destroy's
 * secrets:set-value, DELETE metadata/ both; refused before the body is read, and nothing changes. */
static void each_role_and_scope_gets_the_deletes_our_own_routes_give_it(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    role_tokens rt;
    REQUIRE(mint_roles(&srv, "owner", &rt));
    const char *owner = rt.owner, *editor = rt.editor, *viewer = rt.viewer, *service = rt.service,
               *prod_only = rt.prod_only, *other_org = rt.other_org;
    struct {
        const char *role;
        const char *token;
        long del, del_versions, undelete, destroy, metadata;
    } roles[] = {
        {"viewer", viewer, 403, 403, 403, 403, 403},       {"service", service, 403, 403, 403, 403, 403},
        {"editor", editor, 204, 204, 403, 403, 403},       {"prod-only", prod_only, 403, 403, 403, 403, 403},
        {"other-org", other_org, 403, 403, 403, 403, 403}, {"owner", owner, 204, 204, 204, 204, 204},
    };
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        fprintf(stderr, "role %s\n", roles[i].role);
        const char *tk = roles[i].token;
        /* two versions of D1 and D2, one deleted copy of U */
        CHECK_INT(write_value(&srv, "secret", "app/dev/D1", owner, "a"), 200);
        CHECK_INT(write_value(&srv, "secret", "app/dev/D1", owner, "b"), 200);
        CHECK_INT(write_value(&srv, "secret", "app/dev/D2", owner, "a"), 200);
        CHECK_INT(write_value(&srv, "secret", "app/dev/D2", owner, "b"), 200);
        CHECK_INT(write_value(&srv, "secret", "app/dev/U", owner, "u"), 200);
        CHECK_INT(vstatus(&srv, "DELETE", "/v1/secret/data/app/dev/U", owner, NULL), 204);
        sx_resp r;
        long st = vreq(&srv, SX_H1, "DELETE", "/v1/secret/data/app/dev/D1", tk, NULL, NULL, &r);
        CHECK_INT(st, roles[i].del);
        if (st == 403)
            CHECK(vault_error(&r, 403, "permission denied"));
        sx_resp_free(&r);
        /* version numbers go on across the rounds (a purge keeps a name's counter) */
        char ver[32];
        snprintf(ver, sizeof(ver), "{\"versions\":[%u]}", current_version(&srv, owner, "D2"));
        CHECK_INT(vstatus(&srv, "POST", "/v1/secret/delete/app/dev/D2", tk, ver), roles[i].del_versions);
        CHECK_INT(vstatus(&srv, "POST", "/v1/secret/undelete/app/dev/U", tk, "{\"versions\":[1,2,3,4,5,6,7,8]}"),
                  roles[i].undelete);
        CHECK_INT(write_value(&srv, "secret", "app/dev/X", owner, "x1"), 200);
        CHECK_INT(write_value(&srv, "secret", "app/dev/X", owner, "x2"), 200);
        unsigned cur = current_version(&srv, owner, "X");
        snprintf(ver, sizeof(ver), "{\"versions\":[%u]}", cur - 1);
        CHECK_INT(vstatus(&srv, "POST", "/v1/secret/destroy/app/dev/X", tk, ver), roles[i].destroy);
        CHECK_INT(vstatus(&srv, "DELETE", "/v1/secret/metadata/app/dev/X", tk, NULL), roles[i].metadata);
        /* a 403 comes before the body is read, and whether or not the name exists */
        if (roles[i].undelete == 403) {
            CHECK(verr(&srv, "POST", "/v1/secret/undelete/app/dev/U", tk, "application/json", "{\"versions\":[]}", 403,
                       "permission denied"));
            CHECK(verr(&srv, "POST", "/v1/secret/destroy/app/dev/NOPE", tk, "application/json", "nonsense", 403,
                       "permission denied"));
        }
        /* what each refusal left */
        CHECK_STR(read_value(&srv, "secret", "app/dev/D1", owner), roles[i].del == 204 ? "#404" : "b");
        CHECK_STR(read_value(&srv, "secret", "app/dev/D2", owner), roles[i].del_versions == 204 ? "#404" : "b");
        CHECK_STR(read_value(&srv, "secret", "app/dev/U", owner), roles[i].undelete == 204 ? "u" : "#404");
        char path[64];
        snprintf(path, sizeof(path), "app/dev/X?version=%u", cur - 1);
        CHECK_STR(read_value(&srv, "secret", path, owner), roles[i].metadata == 204 ? "#404" : "x1");
        CHECK_STR(read_value(&srv, "secret", "app/dev/X", owner), roles[i].metadata == 204 ? "#404" : "x2");
        /* clean up for the next role */
        static const char *const names[] = {"D1", "D2", "U", "X"};
        for (size_t k = 0; k < 4; k++) {
            snprintf(path, sizeof(path), "/v1/secret/metadata/app/dev/%s", names[k]);
            CHECK_INT(vstatus(&srv, "DELETE", path, owner, NULL), 204);
        }
    }
    free_roles(&rt);
    stop(&srv);
}

/* ---- configuration ------------------------------------------------------------------------------- */

static void disabled_vault_answers_404_in_our_form_and_our_routes_work(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, "[vault]\nenabled = false\n"));
    char *t = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(t);
    static const char *const paths[] = {"/v1/acme/data/app/dev", "/v1/sys/health", "/v1/auth/token/lookup-self",
                                        "/v1/sys/internal/ui/mounts/acme"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        sx_resp r;
        CHECK_INT(vreq(&srv, SX_H1, "GET", paths[i], t, NULL, NULL, &r), 404);
        CHECK(sx_resp_is_error(&r, "not_found"));
        sx_resp_free(&r);
    }
    char auth[160];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    const char *body = "{\"kind\":\"secret\",\"name\":\"A\"}";
    CHECK_INT(sx_srv_request(&srv, SX_H1, "POST", "/acme/app/envs/dev/secrets", h, body, strlen(body), &r), 0);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);
    free(t);
    stop(&srv);
}

static void mounts_alias_orgs_and_both_surfaces_share_the_secrets(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    char *t = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(t);
    /* written through the alias, read through our own API and through the org's own name */
    CHECK_INT(write_value(&srv, "secret", "app/dev/DB", t, "from-vault"), 200);
    char auth[160];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    CHECK_INT(sx_srv_request(&srv, SX_H1, "GET", "/acme/app/envs/dev/values", h, NULL, 0, &r), 0);
    CHECK_STR(r.body, "{\"DB\":\"from-vault\"}");
    sx_resp_free(&r);
    CHECK_STR(read_value(&srv, "acme", "app/dev/DB", t), "from-vault");
    /* written through our own API, read through Vault's, with Authorization: Bearer too */
    const char *body = "{\"value\":\"from-api\"}";
    CHECK_INT(sx_srv_request(&srv, SX_H1, "PUT", "/acme/app/envs/dev/secrets/DB/value", h, body, strlen(body), &r), 0);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    CHECK_INT(sx_srv_request(&srv, SX_H2C, "GET", "/v1/secret/data/app/dev/DB", h, NULL, 0, &r), 0);
    static const char *const vp[] = {"data", "data", "value", NULL}, *const ver[] = {"data", "metadata", "version",
                                                                                     NULL};
    CHECK_STR(jpath(&r, vp), "from-api");
    CHECK_STR(jpath(&r, ver), "2");
    sx_resp_free(&r);
    /* beta's mount is kv: the name beta is another org, whose token this is not */
    CHECK_STR(read_value(&srv, "kv", "app/dev/DB", t), "#403");
    CHECK_STR(read_value(&srv, "beta", "app/dev/DB", t), "#403");
    /* the mount as the Vault CLI and hvac detect it */
    CHECK_INT(vreq(&srv, SX_H1TLS, "GET", "/v1/sys/internal/ui/mounts/secret/app/dev", t, NULL, NULL, &r), 200);
    static const char *const type[] = {"data", "type", NULL}, *const v2[] = {"data", "options", "version", NULL},
                             *const path[] = {"data", "path", NULL};
    CHECK_STR(jpath(&r, type), "kv");
    CHECK_STR(jpath(&r, v2), "2");
    CHECK_STR(jpath(&r, path), "secret/");
    sx_resp_free(&r);
    /* lease_duration of a read is [vault] lease_duration (0 by default) */
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/secret/data/app/dev", t, NULL, NULL, &r), 200);
    CHECK(strstr(r.body, "\"lease_duration\":0,") != NULL);
    sx_resp_free(&r);
    free(t);
    stop(&srv);

    REQUIRE(start(&srv, "[vault]\nlease_duration = 3600\n"));
    t = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(t);
    CHECK_INT(write_value(&srv, "acme", "app/dev/DB", t, "x"), 200);
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/acme/data/app/dev/DB", t, NULL, NULL, &r), 200);
    CHECK(strstr(r.body, "\"lease_duration\":3600,") != NULL);
    sx_resp_free(&r);
    CHECK_STR(read_value(&srv, "secret", "app/dev/DB", t), "#403"); /* no alias: secret is an org of its own */
    free(t);
    stop(&srv);
}

static void admin_socket_keeps_its_own_v1_routes(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    sx_resp r;
    CHECK_INT(sx_srv_request(&srv, SX_ADMIN, "GET", "/v1/status", NULL, NULL, 0, &r), 0);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    CHECK_INT(sx_srv_request(&srv, SX_ADMIN, "GET", "/v1/secret/data/app/dev", NULL, NULL, 0, &r), 0);
    CHECK_INT(r.status, 404);
    CHECK(sx_resp_is_error(&r, "not_found"));
    sx_resp_free(&r);
    CHECK_INT(sx_srv_request(&srv, SX_ADMIN, "GET", "/v1/sys/health", NULL, NULL, 0, &r), 0);
    CHECK_INT(r.status, 404);
    sx_resp_free(&r);
    /* the admin routes are not on the public listener */
    CHECK(verr(&srv, "GET", "/v1/status", NULL, NULL, NULL, 404, NULL));
    CHECK(
        verr(&srv, "POST", "/v1/tokens", NULL, "application/json", "{\"org\":\"acme\",\"role\":\"owner\"}", 404, NULL));
    stop(&srv);
}

/* ---- hygiene ------------------------------------------------------------------------------------- */

static void values_and_tokens_never_reach_logs_or_errors(void)
{
    sx_srv srv;
    REQUIRE(start(&srv, MOUNTS));
    char *t = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(t);
    const char *marks[] = {"Vmark1-q7Zk", "Vmark2-Jw3p", "Vmark3-x9Ld"};
    CHECK_INT(write_value(&srv, "secret", "app/dev/S1", t, marks[0]), 200);
    char body[256];
    snprintf(body, sizeof(body), "{\"data\":{\"S1\":\"%s\",\"S2\":\"%s\"}}", marks[0], marks[1]);
    CHECK_INT(vstatus(&srv, "PUT", "/v1/secret/data/app/dev", t, body), 200);
    CHECK_STR(read_value(&srv, "secret", "app/dev/S2", t), marks[1]);
    CHECK_INT(vstatus(&srv, "GET", "/v1/secret/data/app/dev", t, NULL), 200);
    /* rule errors name the rule, never the value */
    sx_resp r;
    snprintf(body, sizeof(body), "{\"data\":{\"S1\":\"%s\",\"S1\":\"%s\"}}", marks[2], marks[2]);
    CHECK_INT(vreq(&srv, SX_H1, "POST", "/v1/secret/data/app/dev", t, "application/json", body, &r), 400);
    CHECK(strstr(r.body, marks[2]) == NULL);
    sx_resp_free(&r);
    snprintf(body, sizeof(body), "{\"data\":{\"value\":\"%s\"},\"options\":{\"cas\":99}}", marks[2]);
    CHECK_INT(vreq(&srv, SX_H1, "POST", "/v1/secret/data/app/dev/S1", t, "application/json", body, &r), 400);
    CHECK(strstr(r.body, marks[2]) == NULL);
    sx_resp_free(&r);
    CHECK_INT(vreq(&srv, SX_H1, "GET", "/v1/auth/token/lookup-self", t, NULL, NULL, &r), 200);
    CHECK(strstr(r.body, t) == NULL && strstr(r.body, strrchr(t, '_') + 1) == NULL);
    sx_resp_free(&r);
    CHECK_INT(
        vreq(&srv, SX_H1, "POST", "/v1/auth/token/renew-self", t, "application/json", "{\"increment\":\"1h\"}", &r),
        200);
    CHECK(strstr(r.body, t) == NULL && strstr(r.body, strrchr(t, '_') + 1) == NULL);
    sx_resp_free(&r);
    char *audit = sx_test_path(srv.dir, "audit.log");
    CHECK(sx_test_file_wait(audit, "vault.read", 5000));
    CHECK(sx_test_file_wait(audit, "vault.write", 5000));
    const char *files[] = {srv.stderr_path, srv.access_log, audit};
    char *copies[3];
    size_t lens[3];
    for (size_t i = 0; i < 3; i++)
        copies[i] = sx_test_read_file(files[i], &lens[i]);
    for (size_t i = 0; i < 3; i++) {
        REQUIRE(copies[i]);
        for (size_t k = 0; k < 3; k++)
            CHECK(!sx_test_memmem(copies[i], lens[i], marks[k], strlen(marks[k])));
        CHECK(!sx_test_memmem(copies[i], lens[i], strrchr(t, '_') + 1, strlen(strrchr(t, '_') + 1)));
        free(copies[i]);
    }
    free(audit);
    free(t);
    stop(&srv);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"hvac_reads_writes_patches_and_lists_over_http_and_tls",
         hvac_reads_writes_patches_and_lists_over_http_and_tls},
        {"node_vault_reads_writes_and_lists_over_http_and_tls", node_vault_reads_writes_and_lists_over_http_and_tls},
        {"errors_have_vaults_form_and_status_and_change_nothing",
         errors_have_vaults_form_and_status_and_change_nothing},
        {"each_role_and_scope_gets_what_our_own_routes_give_it", each_role_and_scope_gets_what_our_own_routes_give_it},
        {"list_levels_name_every_project_and_env_once", list_levels_name_every_project_and_env_once},
        {"deletes_map_onto_deleted_secrets_restore_destroy_and_purge",
         deletes_map_onto_deleted_secrets_restore_destroy_and_purge},
        {"each_role_and_scope_gets_the_deletes_our_own_routes_give_it",
         each_role_and_scope_gets_the_deletes_our_own_routes_give_it},
        {"disabled_vault_answers_404_in_our_form_and_our_routes_work",
         disabled_vault_answers_404_in_our_form_and_our_routes_work},
        {"mounts_alias_orgs_and_both_surfaces_share_the_secrets",
         mounts_alias_orgs_and_both_surfaces_share_the_secrets},
        {"admin_socket_keeps_its_own_v1_routes", admin_socket_keeps_its_own_v1_routes},
        {"values_and_tokens_never_reach_logs_or_errors", values_and_tokens_never_reach_logs_or_errors},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
