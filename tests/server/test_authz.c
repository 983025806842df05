/*
 * test_authz.c - authentication and authorization of the secrets API, against the real secretsd.
 *
 * - the matrix: every endpoint of the API x every role x tokens scoped at org, org/project and
 *   org/project/env level x target environments in and out of scope, each cell on an existing
 *   and on a nonexistent secret, with the effect of every write checked (forbidden ones change
 *   nothing);
 * - no, malformed, unknown and wrong tokens: 401 with `WWW-Authenticate: Bearer`, whether or not
 *   the name exists;
 * - expired tokens and tokens revoked with `secretsctl token revoke` on the running server;
 * - throttling of failed authentications per client address (429 + Retry-After) while valid
 *   clients keep working;
 * - token material never in logs, error bodies, `token list` output or the storage files, and
 *   `secretsctl token create` printing the token alone on stdout.
 *
 * All test traffic comes from loopback. Linux routes all of 127/8 to lo, so a client socket bound
 * to 127.0.0.N reaches the server's 127.0.0.1 listener and the server sees 127.0.0.N as the peer:
 * that is how these tests act as distinct client addresses. The throttle allows 20 failures per
 * address back to back, so tests that fail authentication on purpose spread their requests over
 * addresses unless throttling is what they test.
 */
#include <curl/curl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "authz_util.h"

/* ---- the matrix ---------------------------------------------------------------------------------- */

enum { P_READ = 1, P_WRITE = 2, P_SET_VALUE = 4, P_REVEAL = 8 };

enum { EP_LIST, EP_CREATE, EP_GET, EP_UPDATE, EP_DELETE, EP_SET_VALUE, EP_REVEAL, EP_VALUES, EP_COUNT };

static const struct endpoint {
    const char *label;
    const char *method;
    unsigned perm;
    bool named; /* addresses one secret */
    bool write;
} endpoints[EP_COUNT] = {
    [EP_LIST] = {"list", "GET", P_READ, false, false},
    [EP_CREATE] = {"create", "POST", P_WRITE, false, true},
    [EP_GET] = {"get", "GET", P_READ, true, false},
    [EP_UPDATE] = {"update", "PUT", P_WRITE, true, true},
    [EP_DELETE] = {"delete", "DELETE", P_WRITE, true, true},
    [EP_SET_VALUE] = {"set-value", "PUT", P_SET_VALUE, true, true},
    [EP_REVEAL] = {"reveal", "GET", P_REVEAL, true, false},
    [EP_VALUES] = {"values", "GET", P_REVEAL, false, false},
};

#define NROLES 4
static const struct role {
    const char *name;
    unsigned perms;
} roles[NROLES] = {
    {"viewer", P_READ},
    {"editor", P_READ | P_WRITE},
    {"owner", P_READ | P_WRITE | P_SET_VALUE | P_REVEAL},
    {"service", P_READ | P_REVEAL},
};

/* Every token of the matrix is scoped inside acme/web/prod, at one of three levels. */
#define NLEVELS 3
static const struct level {
    const char *label;
    const char *org, *project, *env;
} levels[NLEVELS] = {
    {"acme", "acme", NULL, NULL},
    {"acme/web", "acme", "web", NULL},
    {"acme/web/prod", "acme", "web", "prod"},
};

#define NTARGETS 7
static const struct target {
    const char *label;
    const char *org, *project, *env;
} targets[NTARGETS] = {
    {"in scope", "acme", "web", "prod"},
    {"other project", "acme", "api", "prod"},
    {"other env", "acme", "web", "dev"},
    {"other org", "globex", "web", "prod"},
    {"org differing in case", "Acme", "web", "prod"},
    {"project with the scope's project as prefix", "acme", "webx", "prod"},
    {"env with the scope's env as prefix", "acme", "web", "prodx"},
};

/* Orgs of the targets, each with an org-wide owner token for setting up and checking. */
#define NORGS 3
static const char *const orgs[NORGS] = {"acme", "globex", "Acme"};

static bool level_covers(const struct level *l, const struct target *t)
{
    return strcmp(l->org, t->org) == 0 && (!l->project || strcmp(l->project, t->project) == 0) &&
           (!l->env || strcmp(l->env, t->env) == 0);
}

typedef struct matrix {
    sx_srv srv;
    client admin;  /* set-up and checks (HTTP/1.1) */
    client cli[3]; /* the cells rotate over HTTP/1.1, h2c and TLS h2 */
    char *tok[NROLES][NLEVELS];
    char *org_owner[NORGS];
    int cells;      /* status checks of the matrix proper */
    int mismatches; /* cells whose status or effect was wrong */
} matrix;

static const char *owner_of(const matrix *m, const char *org)
{
    for (int i = 0; i < NORGS; i++)
        if (strcmp(orgs[i], org) == 0)
            return m->org_owner[i];
    return NULL;
}

static void env_path(char *buf, size_t cap, const struct target *t, const char *rest)
{
    snprintf(buf, cap, "/%s/%s/envs/%s%s", t->org, t->project, t->env, rest);
}

static void ep_path(char *buf, size_t cap, const struct target *t, int ep, const char *name)
{
    char rest[320];
    switch (ep) {
    case EP_LIST:
    case EP_CREATE:
        snprintf(rest, sizeof(rest), "/secrets");
        break;
    case EP_VALUES:
        snprintf(rest, sizeof(rest), "/values");
        break;
    case EP_SET_VALUE:
    case EP_REVEAL:
        snprintf(rest, sizeof(rest), "/secrets/%s/value", name);
        break;
    default:
        snprintf(rest, sizeof(rest), "/secrets/%s", name);
        break;
    }
    env_path(buf, cap, t, rest);
}

/* Create name (description "orig") with value in t, as the org's owner. */
static bool admin_create(matrix *m, const struct target *t, const char *name, const char *value)
{
    const char *tok = owner_of(m, t->org);
    char path[512], body[512];
    sx_resp r;
    env_path(path, sizeof(path), t, "/secrets");
    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"orig\"}", name);
    client_req(&m->admin, "POST", path, tok, body, &r);
    bool ok = expect_status(&r, 201, "set-up create") == 0;
    sx_resp_free(&r);
    if (ok && value) {
        ep_path(path, sizeof(path), t, EP_SET_VALUE, name);
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", value);
        client_req(&m->admin, "PUT", path, tok, body, &r);
        ok = expect_status(&r, 200, "set-up set-value") == 0;
        sx_resp_free(&r);
    }
    return ok;
}

/* The secret's metadata and reveal answers as the org's owner (NULL for a 404); false when the
 * server answered anything else. */
static bool admin_snapshot(matrix *m, const struct target *t, const char *name, char **ret_meta, char **ret_value)
{
    const char *tok = owner_of(m, t->org);
    char path[512];
    sx_resp r;
    bool ok = true;
    ep_path(path, sizeof(path), t, EP_GET, name);
    client_req(&m->admin, "GET", path, tok, NULL, &r);
    *ret_meta = r.status == 200 ? strdup(r.body) : NULL;
    ok = ok && (r.status == 200 || r.status == 404);
    sx_resp_free(&r);
    ep_path(path, sizeof(path), t, EP_REVEAL, name);
    client_req(&m->admin, "GET", path, tok, NULL, &r);
    *ret_value = r.status == 200 ? strdup(r.body) : NULL;
    ok = ok && (r.status == 200 || r.status == 404);
    sx_resp_free(&r);
    return ok;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Exists (200) or not (404) as the org's owner. */
static long admin_get_status(matrix *m, const struct target *t, const char *name)
{
    char path[512];
    sx_resp r;
    ep_path(path, sizeof(path), t, EP_GET, name);
    client_req(&m->admin, "GET", path, owner_of(m, t->org), NULL, &r);
    long st = r.status;
    sx_resp_free(&r);
    return st;
}

/* A 403 that is the JSON error form and leaks neither token material nor the value. */
static bool forbidden_ok(const sx_resp *r, const char *value)
{
    bool ok = sx_resp_is_error(r, "forbidden");
    ok = ok && !strstr(r->body, "sxt_") && !(value && strstr(r->body, value));
    return ok;
}

static void run_cell(matrix *m, int ep, int role, int level, int ti, int idx)
{
    const struct endpoint *e = &endpoints[ep];
    const struct target *t = &targets[ti];
    bool allowed = (roles[role].perms & e->perm) == e->perm && level_covers(&levels[level], t);
    client *c = &m->cli[idx % 3];
    const char *tok = m->tok[role][level];
    char what[512];
    snprintf(what, sizeof(what), "matrix: %s as %s scoped at %s on %s (%s/%s/%s)", e->label, roles[role].name,
             levels[level].label, t->label, t->org, t->project, t->env);
    int bad = 0;

    char name[32], ghost[32], value[32], newvalue[32], created[32];
    snprintf(name, sizeof(name), "s%d", idx);
    snprintf(ghost, sizeof(ghost), "g%d", idx);
    snprintf(value, sizeof(value), "v%d", idx);
    snprintf(newvalue, sizeof(newvalue), "new%d", idx);
    snprintf(created, sizeof(created), "c%d", idx);
    if (e->named && !admin_create(m, t, name, value)) {
        m->mismatches++;
        CHECK(!"matrix set-up failed");
        return;
    }
    char *meta0 = NULL, *value0 = NULL;
    if (e->named && e->write)
        bad += !admin_snapshot(m, t, name, &meta0, &value0);

    /* The cell's request, on an existing secret. */
    char path[512], body[512];
    const char *b = NULL;
    if (ep == EP_CREATE) {
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"made\"}", created);
        b = body;
    } else if (ep == EP_UPDATE) {
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"changed\"}", name);
        b = body;
    } else if (ep == EP_SET_VALUE) {
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", newvalue);
        b = body;
    }
    ep_path(path, sizeof(path), t, ep, name);
    sx_resp r;
    client_req(c, e->method, path, tok, b, &r);
    m->cells++;
    bad += expect_status(&r, allowed ? (ep == EP_CREATE ? 201 : 200) : 403, what);
    if (!allowed) {
        bad += !forbidden_ok(&r, value);
    } else if (r.status < 300) {
        char expect[128];
        switch (ep) {
        case EP_LIST:
            bad += !json_is(r.body, yajl_t_array);
            break;
        case EP_VALUES:
            bad += !json_is(r.body, yajl_t_object);
            break;
        case EP_CREATE:
            snprintf(expect, sizeof(expect), "\"name\":\"%s\"", created);
            bad += !strstr(r.body, expect);
            break;
        case EP_GET:
        case EP_UPDATE:
        case EP_SET_VALUE:
            snprintf(expect, sizeof(expect), "\"name\":\"%s\"", name);
            bad += !strstr(r.body, expect) || strstr(r.body, value) || strstr(r.body, newvalue);
            break;
        case EP_DELETE:
            snprintf(expect, sizeof(expect), "{\"deleted\":true,\"name\":\"%s\"}", name);
            bad += strcmp(r.body, expect) != 0;
            break;
        case EP_REVEAL:
            snprintf(expect, sizeof(expect), "\"value\":\"%s\"", value);
            bad += !strstr(r.body, expect);
            break;
        }
    }
    sx_resp_free(&r);

    /* The effect of a write: allowed ones did what they said, forbidden ones changed nothing. */
    if (ep == EP_CREATE) {
        bad += admin_get_status(m, t, created) != (allowed ? 200 : 404);
    } else if (e->named && e->write) {
        char *meta1 = NULL, *value1 = NULL;
        bad += !admin_snapshot(m, t, name, &meta1, &value1);
        if (!allowed) {
            bad += !meta1 || !same_str(meta0, meta1) || !same_str(value0, value1);
        } else if (ep == EP_UPDATE) {
            /* The value stays (the reveal answer's updatedAt moves with the description). */
            char *v0 = value0 ? json_str(value0, "value") : NULL, *v1 = value1 ? json_str(value1, "value") : NULL;
            bad += !meta1 || !strstr(meta1, "\"description\":\"changed\"") || !v0 || !same_str(v0, v1);
            free(v0);
            free(v1);
        } else if (ep == EP_DELETE) {
            bad += meta1 != NULL || value1 != NULL;
        } else if (ep == EP_SET_VALUE) {
            char expect[64];
            snprintf(expect, sizeof(expect), "\"value\":\"%s\"", newvalue);
            bad += !value1 || !strstr(value1, expect);
        }
        free(meta1);
        free(value1);
    }
    free(meta0);
    free(value0);

    /* The same request on a secret that does not exist: 403 before 404, and nothing created. */
    if (e->named) {
        if (ep == EP_UPDATE) {
            snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"changed\"}", ghost);
            b = body;
        }
        ep_path(path, sizeof(path), t, ep, ghost);
        client_req(c, e->method, path, tok, b, &r);
        m->cells++;
        char gwhat[600];
        snprintf(gwhat, sizeof(gwhat), "%s, nonexistent name", what);
        bad += expect_status(&r, allowed ? 404 : 403, gwhat);
        bad += !(allowed ? sx_resp_is_error(&r, "not_found") : forbidden_ok(&r, NULL));
        sx_resp_free(&r);
        if (e->write)
            bad += admin_get_status(m, t, ghost) != 404;
    }
    if (bad) {
        fprintf(stderr, "%s: %d problem(s)\n", what, bad);
        m->mismatches++;
        sx_test_failures++;
    }
}

static bool matrix_setup(matrix *m)
{
    memset(m, 0, sizeof(*m));
    if (sx_srv_start(&m->srv, NULL) != 0)
        return false;
    client_init(&m->admin, &m->srv, SX_H1, NULL, false);
    static const sx_proto protos[3] = {SX_H1, SX_H2C, SX_H2TLS};
    for (int i = 0; i < 3; i++)
        client_init(&m->cli[i], &m->srv, protos[i], NULL, false);
    bool ok = true;
    for (int o = 0; o < NORGS; o++)
        ok = ok && (m->org_owner[o] = sx_srv_mint_token(&m->srv, orgs[o], NULL, NULL, "owner", NULL)) != NULL;
    for (int r = 0; r < NROLES; r++)
        for (int l = 0; l < NLEVELS; l++)
            ok = ok && (m->tok[r][l] = sx_srv_mint_token(&m->srv, levels[l].org, levels[l].project, levels[l].env,
                                                         roles[r].name, NULL)) != NULL;
    return ok;
}

static void matrix_teardown(matrix *m)
{
    if (m->srv.pid > 0) {
        const char *never[NORGS + NROLES * NLEVELS];
        size_t n = 0;
        for (int o = 0; o < NORGS; o++)
            never[n++] = m->org_owner[o] ? m->org_owner[o] + 37 : NULL;
        for (int r = 0; r < NROLES; r++)
            for (int l = 0; l < NLEVELS; l++)
                never[n++] = m->tok[r][l] ? m->tok[r][l] + 37 : NULL;
        CHECK(logs_clean(&m->srv, never, n));
    }
    for (int o = 0; o < NORGS; o++)
        free(m->org_owner[o]);
    for (int r = 0; r < NROLES; r++)
        for (int l = 0; l < NLEVELS; l++)
            free(m->tok[r][l]);
    client_clear(&m->admin);
    for (int i = 0; i < 3; i++)
        client_clear(&m->cli[i]);
    CHECK_INT(sx_srv_stop(&m->srv, SIGTERM, 30), 0);
}

void every_endpoint_role_and_scope_gets_the_expected_status(void)
{
    matrix m;
    bool ok = matrix_setup(&m);
    CHECK(ok);
    int idx = 0;
    for (int ep = 0; ok && ep < EP_COUNT; ep++)
        for (int role = 0; role < NROLES; role++)
            for (int level = 0; level < NLEVELS; level++)
                for (int ti = 0; ti < NTARGETS; ti++)
                    run_cell(&m, ep, role, level, ti, idx++);
    fprintf(stderr,
            "matrix: %d endpoints x %d roles x %d token scopes x %d targets = %d cells, %d status checks "
            "(with the nonexistent-name variants), %d wrong\n",
            EP_COUNT, NROLES, NLEVELS, NTARGETS, idx, m.cells, m.mismatches);
    CHECK_INT(m.mismatches, 0);

    /* Authorization comes before validation too: a forbidden request with a bad body is 403. */
    if (ok) {
        const struct target *in = &targets[0], *other = &targets[3];
        char path[512];
        sx_resp r;
        env_path(path, sizeof(path), in, "/secrets");
        client_send(&m.cli[0], "POST", path, NULL, NULL, NULL, &r); /* no token at all */
        CHECK(is_unauthorized(&r));
        sx_resp_free(&r);
        char authz[160];
        snprintf(authz, sizeof(authz), "Bearer %s", m.tok[0][2]); /* viewer: no write */
        client_send(&m.cli[1], "POST", path, authz, "text/plain", "{not json", &r);
        CHECK_INT(r.status, 403);
        CHECK(forbidden_ok(&r, NULL));
        sx_resp_free(&r);
        ep_path(path, sizeof(path), in, EP_SET_VALUE, "s0");
        snprintf(authz, sizeof(authz), "Bearer %s", m.tok[1][0]); /* editor: no set-value */
        client_send(&m.cli[2], "PUT", path, authz, "application/json", "[1,2", &r);
        CHECK_INT(r.status, 403);
        CHECK(forbidden_ok(&r, NULL));
        sx_resp_free(&r);
        env_path(path, sizeof(path), other, "/secrets");
        snprintf(authz, sizeof(authz), "Bearer %s", m.tok[2][0]); /* owner of acme, in globex */
        client_send(&m.cli[0], "POST", path, authz, "application/json", "{\"kind\":\"nope\"}", &r);
        CHECK_INT(r.status, 403);
        CHECK(forbidden_ok(&r, NULL));
        sx_resp_free(&r);
    }
    matrix_teardown(&m);
}

/* ---- unauthenticated requests ---------------------------------------------------------------------- */

static void unauthenticated_body(matrix *m)
{
    const struct target *in = &targets[0];
    const char *owner = m->tok[2][2];
    REQUIRE(admin_create(m, in, "exists", "hush-value"));
    char *meta0 = NULL, *value0 = NULL;
    CHECK(admin_snapshot(m, in, "exists", &meta0, &value0));

    char unknown[TOKEN_LEN + 1], wrong[TOKEN_LEN + 1], trailing[TOKEN_LEN + 8];
    random_token(unknown);
    wrong_secret_of(owner, wrong);
    snprintf(trailing, sizeof(trailing), "%sA", owner);
    char h_unknown[128], h_wrong[128], h_trailing[128], h_twospaces[128], h_token_only[128];
    snprintf(h_unknown, sizeof(h_unknown), "Bearer %s", unknown);
    snprintf(h_wrong, sizeof(h_wrong), "Bearer %s", wrong);
    snprintf(h_trailing, sizeof(h_trailing), "Bearer %s", trailing);
    snprintf(h_twospaces, sizeof(h_twospaces), "Bearer  %s", owner);
    snprintf(h_token_only, sizeof(h_token_only), "%s", owner);
    /* The valid token with its last character one step up: the same 32 bytes when decoded
     * leniently, but not the canonical encoding. And with its id in uppercase hex. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char h_noncanonical[128], h_upper[128];
    snprintf(h_noncanonical, sizeof(h_noncanonical), "Bearer %s", owner);
    char *last = h_noncanonical + strlen(h_noncanonical) - 1;
    *last = b64[(b64url_index(*last) + 1) % 64];
    snprintf(h_upper, sizeof(h_upper), "Bearer %s", owner);
    for (char *q = h_upper + 11; q < h_upper + 43; q++)
        if (*q >= 'a' && *q <= 'f')
            *q = (char)(*q - 'a' + 'A');
    const char *const kinds[] = {
        NULL,                         /* no Authorization header */
        "Bearer",                     /* no token */
        "Bearer ",                    /* empty token */
        "Basic dXNlcjpwYXNzd29yZA==", /* another scheme */
        h_token_only,                 /* a valid token without the scheme */
        h_twospaces,                  /* a valid token after two spaces */
        h_trailing,                   /* a valid token with a byte appended */
        h_unknown,                    /* well-formed, never issued */
        h_wrong,                      /* a real id with a wrong secret */
        h_noncanonical,               /* a valid token, non-canonical base64url */
        h_upper,                      /* a valid token, id in uppercase */
    };
    const size_t nkinds = sizeof(kinds) / sizeof(kinds[0]);
    const struct target nowhere = {"an env that does not exist", "nosuch", "proj", "env"};
    int sent = 0, src = 1;
    client c;
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.1.%d", src);
    client_init(&c, &m->srv, SX_H1, addr, false);
    for (int ep = 0; ep < EP_COUNT; ep++) {
        for (size_t k = 0; k < nkinds; k++) {
            for (int exists = 0; exists < 2; exists++) {
                /* At most 15 failures per client address: these must not be throttled. */
                if (sent > 0 && sent % 15 == 0) {
                    client_clear(&c);
                    snprintf(addr, sizeof(addr), "127.0.1.%d", ++src);
                    client_init(&c, &m->srv,
                                (sx_proto)(src % 3 == 0   ? SX_H2TLS
                                           : src % 3 == 1 ? SX_H1
                                                          : SX_H2C),
                                addr, false);
                }
                const struct target *t = exists ? in : &nowhere;
                char path[512], body[256];
                const char *b = NULL;
                ep_path(path, sizeof(path), t, ep, exists ? "exists" : "ghost");
                if (ep == EP_CREATE) {
                    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"new%d%zu\"}", exists, k);
                    b = body;
                } else if (ep == EP_UPDATE) {
                    snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"x\"}",
                             exists ? "exists" : "ghost");
                    b = body;
                } else if (ep == EP_SET_VALUE) {
                    b = "{\"value\":\"overwritten\"}";
                }
                sx_resp r;
                client_send(&c, endpoints[ep].method, path, kinds[k], b ? "application/json" : NULL, b, &r);
                sent++;
                if (!is_unauthorized(&r)) {
                    fprintf(stderr, "  (%s, authorization %s, %s)\n", endpoints[ep].label,
                            kinds[k] ? kinds[k] : "absent", t->label);
                    sx_test_failures++;
                }
                CHECK(!strstr(r.body, "sxt_") && !strstr(r.body, owner + 37) && !strstr(r.body, "hush-value"));
                sx_resp_free(&r);
            }
        }
    }
    client_clear(&c);
    fprintf(stderr, "unauthenticated: %d requests from %d addresses\n", sent, src);

    /* Nothing changed, nothing was created. */
    char *meta1 = NULL, *value1 = NULL;
    CHECK(admin_snapshot(m, in, "exists", &meta1, &value1));
    CHECK(meta1 && same_str(meta0, meta1) && value1 && same_str(value0, value1));
    free(meta0);
    free(value0);
    free(meta1);
    free(value1);
    sx_resp r;
    char path[512];
    env_path(path, sizeof(path), in, "/secrets");
    client_req(&m->admin, "GET", path, owner, NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"name\":\"exists\"") && !strstr(r.body, "\"name\":\"new"));
    sx_resp_free(&r);

    /* The scheme name is case-insensitive: the same valid token with "bearer" works. */
    char authz[160];
    snprintf(authz, sizeof(authz), "bearer %s", owner);
    client_send(&m->cli[1], "GET", path, authz, NULL, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
}

void missing_or_bad_tokens_get_401_even_for_nonexistent_names(void)
{
    matrix m;
    if (matrix_setup(&m))
        unauthenticated_body(&m);
    else
        CHECK(!"matrix set-up failed");
    matrix_teardown(&m);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    static const sx_test tests[] = {
        {"every_endpoint_role_and_scope_gets_the_expected_status",
         every_endpoint_role_and_scope_gets_the_expected_status},
        {"missing_or_bad_tokens_get_401_even_for_nonexistent_names",
         missing_or_bad_tokens_get_401_even_for_nonexistent_names},
        {"expired_and_revoked_tokens_get_401", expired_and_revoked_tokens_get_401},
        {"failed_auth_flood_is_throttled_per_address_and_spares_valid_clients",
         failed_auth_flood_is_throttled_per_address_and_spares_valid_clients},
        {"secretsctl_token_create_prints_only_the_token_on_stdout",
         secretsctl_token_create_prints_only_the_token_on_stdout},
        {"tokens_never_reach_storage_logs_or_error_bodies", tokens_never_reach_storage_logs_or_error_bodies},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
