/*
 * test_authz_tokens.c - test_authz: expired and revoked tokens, throttling of failed
 * authentications, `secretsctl token create` output and token material in logs and storage
 * (see test_authz.c).
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

#include "common/clock.h"
#include "authz_util.h"
#include "rocksdump.h"

/* ---- expiry and revocation ----------------------------------------------------------------------- */

/* `secretsctl token create ARGS`: the token (the last and only line of stdout), or NULL. */
static char *ctl_token_create(const sx_srv *srv, const char *args, const char *stderr_path)
{
    char cmd[8192], full[2048];
    snprintf(full, sizeof(full), "token create %s 2>'%s'", args, stderr_path);
    char *out = NULL;
    int st = sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, full));
    size_t n = strlen(out);
    char *tok = NULL;
    if (st == 0 && n == TOKEN_LEN + 1 && out[TOKEN_LEN] == '\n') {
        out[TOKEN_LEN] = '\0';
        if (token_well_formed(out))
            tok = strdup(out);
    }
    if (!tok)
        fprintf(stderr, "secretsctl token create %s: exit %d, stdout \"%s\"\n", args, st, out);
    free(out);
    return tok;
}

static void expired_and_revoked_tokens_get_401_body(sx_srv *srv)
{
    char errpath[4096];
    snprintf(errpath, sizeof(errpath), "%s/ctl.err", srv->dir);
    const char *list = "/acme/web/envs/prod/secrets";

    /* Expiry: one token from secretsctl --ttl 1s, one from the admin API with "ttl":"1s". */
    int64_t t0 = sx_clock_mono_ms();
    char *cli_tok = ctl_token_create(srv, "--org acme --role viewer --ttl 1s", errpath);
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    const char *body = "{\"org\":\"acme\",\"project\":\"web\",\"role\":\"service\",\"ttl\":\"1s\"}";
    sx_resp r;
    CHECK(sx_srv_request(srv, SX_ADMIN, "POST", "/v1/tokens", hdrs, body, strlen(body), &r) == 0);
    CHECK_INT(r.status, 201);
    char *api_tok = json_str(r.body, "token");
    char *expires = json_str(r.body, "expiresAt");
    CHECK(expires != NULL);
    free(expires);
    sx_resp_free(&r);
    REQUIRE(cli_tok && api_tok);
    /* Both tokens exist from here on, so both have expired 1 s after it: creating them may take
     * long on a loaded machine (secretsctl is a process of its own). */
    int64_t t_made = sx_clock_mono_ms();
    client kept[2];
    client_init(&kept[0], srv, SX_H2TLS, "127.0.2.1", false);
    client_init(&kept[1], srv, SX_H1, "127.0.2.1", false);
    const char *expiring[2] = {cli_tok, api_tok};
    for (int i = 0; i < 2; i++) {
        client_req(&kept[i], "GET", list, expiring[i], NULL, &r);
        /* Before the expiry (checked only when this ran quickly enough to be before it). */
        if (sx_clock_mono_ms() - t0 < 800)
            CHECK_INT(r.status, 200);
        else
            fprintf(stderr, "note: too slow to see the 1 s token before its expiry\n");
        sx_resp_free(&r);
    }
    int64_t wait = t_made + 1500 - sx_clock_mono_ms();
    if (wait > 0)
        sx_test_sleep_ms((long)wait);
    for (int i = 0; i < 2; i++) {
        /* On the same connection, so the thread that cached the token answers: the cache does not
         * outlive the expiry. Then on a new connection. */
        client_req(&kept[i], "GET", list, expiring[i], NULL, &r);
        CHECK(is_unauthorized(&r));
        sx_resp_free(&r);
        client fresh;
        client_init(&fresh, srv, SX_H2TLS, "127.0.2.1", true);
        client_req(&fresh, "GET", list, expiring[i], NULL, &r);
        CHECK(is_unauthorized(&r));
        sx_resp_free(&r);
        client_clear(&fresh);
    }
    client_clear(&kept[0]);
    client_clear(&kept[1]);
    free(cli_tok);
    free(api_tok);

    /* Bad lifetimes are refused by the admin API and by secretsctl. */
    body = "{\"org\":\"acme\",\"role\":\"viewer\",\"ttl\":\"0s\"}";
    CHECK(sx_srv_request(srv, SX_ADMIN, "POST", "/v1/tokens", hdrs, body, strlen(body), &r) == 0);
    CHECK_INT(r.status, 400);
    CHECK(sx_resp_is_error(&r, "invalid_request"));
    sx_resp_free(&r);
    char cmd[4096];
    char *out = NULL;
    CHECK_INT(
        sx_test_sh(&out, "%s",
                   ctl_cmd(cmd, sizeof(cmd), srv, "token create --org acme --role viewer --ttl soon 2>/dev/null")),
        1);
    CHECK_STR(out, "");
    free(out);

    /* Revocation: a token in use on several connections (both threads' caches) and on one kept
     * connection stops working as soon as `secretsctl token revoke` returns. */
    char *rev_tok = ctl_token_create(srv, "--org acme --project web --role owner --label doomed", errpath);
    char *other_tok = sx_srv_mint_token(srv, "acme", "web", NULL, "viewer", NULL);
    REQUIRE(rev_tok && other_tok);
    token_parts rp;
    token_split(rev_tok, &rp);
    client keep, fresh;
    client_init(&keep, srv, SX_H2TLS, "127.0.2.2", false);
    client_init(&fresh, srv, SX_H1, "127.0.2.2", true);
    client_req(&keep, "POST", list, rev_tok, "{\"kind\":\"secret\",\"name\":\"before\"}", &r);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);
    for (int i = 0; i < 8; i++) {
        client_req(&fresh, "GET", list, rev_tok, NULL, &r);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
        client_req(&fresh, "GET", list, other_tok, NULL, &r);
        CHECK_INT(r.status, 200);
        sx_resp_free(&r);
    }
    char args[128];
    snprintf(args, sizeof(args), "token revoke %s", rp.id);
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, args)), 0);
    char expect[128];
    snprintf(expect, sizeof(expect), "token %s revoked\n", rp.id);
    CHECK_STR(out, expect);
    free(out);
    /* No wait: revocation on this node is immediate. */
    client_req(&keep, "POST", list, rev_tok, "{\"kind\":\"secret\",\"name\":\"after\"}", &r);
    CHECK(is_unauthorized(&r));
    sx_resp_free(&r);
    CHECK_INT(keep.connects, 0); /* it was the cached connection */
    for (int i = 0; i < 8; i++) {
        client_req(&fresh, "GET", list, rev_tok, NULL, &r);
        CHECK(is_unauthorized(&r));
        sx_resp_free(&r);
    }
    /* Other tokens are not affected. */
    client_req(&keep, "GET", list, other_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"before\"") && !strstr(r.body, "\"after\""));
    sx_resp_free(&r);
    client_clear(&keep);
    client_clear(&fresh);

    /* The list shows it revoked; revoking again is a no-op; unknown and malformed ids fail. */
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, "--json token list")), 0);
    {
        char ebuf[128];
        yajl_val v = yajl_tree_parse(out, ebuf, sizeof(ebuf));
        bool found = false;
        for (size_t i = 0; v && YAJL_IS_ARRAY(v) && i < v->u.array.len; i++) {
            yajl_val t = v->u.array.values[i];
            const char *ip[] = {"id", NULL}, *rvp[] = {"revoked", NULL};
            yajl_val id = yajl_tree_get(t, ip, yajl_t_string), rv = yajl_tree_get(t, rvp, yajl_t_any);
            const char *ids = id ? YAJL_GET_STRING(id) : NULL;
            if (ids && strcmp(ids, rp.id) == 0)
                found = rv && YAJL_IS_TRUE(rv);
        }
        CHECK(found);
        yajl_tree_free(v);
    }
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, "token list")), 0);
    {
        const char *row = strstr(out, rp.id);
        const char *eol = row ? strchr(row, '\n') : NULL;
        const char *state = row ? strstr(row, "revoked") : NULL;
        CHECK(row && eol && state && state < eol);
    }
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, args)), 0);
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s",
                         ctl_cmd(cmd, sizeof(cmd), srv, "token revoke 0123456789abcdef0123456789abcdef 2>/dev/null")),
              1);
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, "token revoke not-an-id 2>/dev/null")), 2);
    free(out);
    free(rev_tok);
    free(other_tok);
}

void expired_and_revoked_tokens_get_401(void)
{
    with_server(NULL, expired_and_revoked_tokens_get_401_body);
}

/* ---- throttling ------------------------------------------------------------------------------------ */

static void failed_auth_flood_is_throttled_per_address_and_spares_valid_clients_body(sx_srv *srv)
{
    const char *attacked = "127.0.0.2", *elsewhere = "127.0.0.3";
    const char *list = "/acme/web/envs/prod/secrets";
    char *cached_tok = sx_srv_mint_token(srv, "acme", NULL, NULL, "viewer", NULL);
    char *other_tok = sx_srv_mint_token(srv, "acme", NULL, NULL, "service", NULL);
    char *unused_tok = sx_srv_mint_token(srv, "acme", NULL, NULL, "viewer", NULL);
    REQUIRE(cached_tok && other_tok && unused_tok);

    /* A valid client on the attacked address that verified before the flood, on a kept TLS h2
     * connection (so its requests reach the thread whose cache holds its token). */
    client cached, other, attacker;
    client_init(&cached, srv, SX_H2TLS, attacked, false);
    client_init(&other, srv, SX_H1, elsewhere, true);
    client_init(&attacker, srv, SX_H1, attacked, false);
    sx_resp r;
    client_req(&cached, "GET", list, cached_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);

    int n401 = 0, n429 = 0, nother = 0, cached_ok = 0, other_ok = 0, checks = 0;
    long last_status = 0;
    char retry_after[32] = "";
    char *last_body = NULL;
    int64_t t0 = sx_clock_mono_ms();
    for (int i = 0; i < 1000; i++) {
        char tok[TOKEN_LEN + 8];
        if (i % 10 == 9)
            snprintf(tok, sizeof(tok), "garbage-%d", i); /* malformed */
        else if (i % 10 == 4)
            wrong_secret_of(cached_tok, tok); /* the cached client's id with a wrong secret */
        else
            random_token(tok); /* well-formed, unknown */
        if (i == 0)
            CHECK(client_req(&attacker, "GET", list, tok, NULL, &r) == 0);
        else
            client_req(&attacker, "GET", list, tok, NULL, &r);
        if (r.status == 401)
            n401++;
        else if (r.status == 429)
            n429++;
        else
            nother++;
        if (i == 0)
            CHECK(is_unauthorized(&r));
        last_status = r.status;
        if (r.status == 429) {
            if (!sx_resp_header(&r, "retry-after", retry_after, sizeof(retry_after)))
                retry_after[0] = '\0';
            free(last_body);
            last_body = strdup(r.body);
            if (!sx_resp_is_error(&r, "rate_limited"))
                nother++;
        }
        CHECK(!strstr(r.body, tok));
        sx_resp_free(&r);
        if (i % 100 == 99) {
            checks++;
            client_req(&cached, "GET", list, cached_tok, NULL, &r);
            cached_ok += r.status == 200 && cached.connects == 0;
            if (r.status != 200 || cached.connects != 0)
                fprintf(stderr, "cached client after %d bad tokens: %ld (new connections %ld)\n", i + 1, r.status,
                        cached.connects);
            sx_resp_free(&r);
            client_req(&other, "GET", list, other_tok, NULL, &r);
            other_ok += r.status == 200;
            sx_resp_free(&r);
        }
    }
    int64_t secs = (sx_clock_mono_ms() - t0) / 1000 + 1;
    fprintf(stderr, "flood: 1000 bad tokens in ~%lld s: %d x 401, %d x 429, %d other\n", (long long)secs, n401, n429,
            nother);
    CHECK_INT(nother, 0);
    CHECK(n401 >= 1 && n401 <= 20 + 2 * secs); /* the burst of 20, plus what refilled meanwhile */
    CHECK(n429 >= 1000 - 20 - 2 * secs);
    CHECK_INT(last_status, 429);
    CHECK(atoi(retry_after) >= 1);
    CHECK(last_body && !strstr(last_body, "sxt_"));
    free(last_body);
    CHECK_INT(cached_ok, checks);
    CHECK_INT(other_ok, checks);

    /* Still blocked for failures, but a valid token that this address has not used before is
     * served: many clients may share the address behind a NAT or a load balancer... */
    client fresh;
    client_init(&fresh, srv, SX_H1, attacked, true);
    client_req(&fresh, "GET", list, unused_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    char wrong[TOKEN_LEN + 1];
    random_token(wrong);
    client_req(&fresh, "GET", list, wrong, NULL, &r);
    CHECK_INT(r.status, 429);
    CHECK(sx_resp_is_error(&r, "rate_limited"));
    sx_resp_free(&r);
    client_clear(&fresh);
    /* ...while the cached client goes on, and other addresses fail or succeed normally. */
    client_req(&cached, "GET", list, cached_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    char bad[TOKEN_LEN + 1];
    random_token(bad);
    client_req(&other, "GET", list, bad, NULL, &r);
    CHECK(is_unauthorized(&r));
    sx_resp_free(&r);
    client_req(&other, "GET", list, unused_tok, NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);

    const char *never[] = {"garbage-", cached_tok + 37, other_tok + 37, unused_tok + 37};
    CHECK(logs_clean(srv, never, sizeof(never) / sizeof(never[0])));
    client_clear(&cached);
    client_clear(&other);
    client_clear(&attacker);
    free(cached_tok);
    free(other_tok);
    free(unused_tok);
}

void failed_auth_flood_is_throttled_per_address_and_spares_valid_clients(void)
{
    with_server(NULL, failed_auth_flood_is_throttled_per_address_and_spares_valid_clients_body);
}

/* ---- secretsctl token create / list ----------------------------------------------------------------- */

static const char *const token_keys[] = {"id",  "label",     "role",      "org",     "project",
                                         "env", "createdAt", "expiresAt", "revoked", NULL};

/* Every element of a token list is an object with exactly the public keys (no hash, no secret). */
static bool token_list_json_ok(const char *json, const char *const *forbidden)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(json, ebuf, sizeof(ebuf));
    bool ok = v && YAJL_IS_ARRAY(v) && v->u.array.len > 0;
    for (size_t i = 0; ok && i < v->u.array.len; i++) {
        yajl_val t = v->u.array.values[i];
        ok = YAJL_IS_OBJECT(t) && t->u.object.len == 9;
        for (size_t k = 0; ok && k < t->u.object.len; k++) {
            bool known = false;
            for (size_t j = 0; token_keys[j]; j++)
                known = known || strcmp(t->u.object.keys[k], token_keys[j]) == 0;
            ok = known;
        }
    }
    yajl_tree_free(v);
    for (size_t i = 0; ok && forbidden[i]; i++)
        ok = !strstr(json, forbidden[i]);
    if (!ok)
        fprintf(stderr, "token list JSON is not as expected: %s\n", json);
    return ok;
}

static void secretsctl_token_create_prints_only_the_token_on_stdout_body(sx_srv *srv)
{
    char errpath[4096];
    snprintf(errpath, sizeof(errpath), "%s/ctl.err", srv->dir);
    char *tok = ctl_token_create(srv, "--org acme --project web --env prod --role owner --label 'ci deploy'", errpath);
    REQUIRE(tok != NULL);
    token_parts p;
    token_split(tok, &p);
    char *err = sx_test_read_file(errpath, NULL);
    CHECK(err && strstr(err, p.id) && !strstr(err, tok) && !strstr(err, p.secret));
    free(err);

    /* The printed token works, with exactly its role and scope. */
    client c;
    client_init(&c, srv, SX_H2TLS, NULL, false);
    sx_resp r;
    client_req(&c, "POST", "/acme/web/envs/prod/secrets", tok, "{\"kind\":\"secret\",\"name\":\"db\"}", &r);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);
    client_req(&c, "PUT", "/acme/web/envs/prod/secrets/db/value", tok, "{\"value\":\"pw\"}", &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/dev/secrets", tok, NULL, &r);
    CHECK_INT(r.status, 403);
    sx_resp_free(&r);

    /* Errors print nothing on stdout. */
    char cmd[4096];
    char *out = NULL;
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, "token create --org acme 2>/dev/null")), 2);
    CHECK_STR(out, "");
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, "token create --org acme --role king 2>/dev/null")),
              1);
    CHECK_STR(out, "");
    free(out);
    CHECK_INT(
        sx_test_sh(&out, "%s",
                   ctl_cmd(cmd, sizeof(cmd), srv, "token create --org acme --env prod --role viewer 2>/dev/null")),
        1);
    CHECK_STR(out, "");
    free(out);

    /* `token list` shows the token's public description and nothing secret. */
    char *api_tok = sx_srv_mint_token(srv, "acme", NULL, NULL, "service", NULL);
    REQUIRE(api_tok != NULL);
    token_parts ap;
    token_split(api_tok, &ap);
    const char *const never[] = {tok, p.secret, api_tok, ap.secret, "sxt_", "hash", NULL};
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, "token list 2>/dev/null")), 0);
    CHECK(strstr(out, p.id) && strstr(out, ap.id) && strstr(out, "acme/web/prod") && strstr(out, "ci deploy"));
    for (size_t i = 0; never[i]; i++)
        CHECK(!strstr(out, never[i]));
    free(out);
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, "--json token list 2>/dev/null")), 0);
    CHECK(token_list_json_ok(out, never));
    free(out);
    CHECK(sx_srv_request(srv, SX_ADMIN, "GET", "/v1/tokens", NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK(token_list_json_ok(r.body, never));
    sx_resp_free(&r);

    client_clear(&c);
    free(api_tok);
    free(tok);
}

void secretsctl_token_create_prints_only_the_token_on_stdout(void)
{
    with_server(NULL, secretsctl_token_create_prints_only_the_token_on_stdout_body);
}

/* ---- token material in logs and storage ------------------------------------------------------------- */

typedef struct needle {
    const void *p;
    size_t len;
    const char *what;
} needle;

static const needle *scan_needles;
static size_t scan_nneedles;
static int scan_hits, scan_files;
static const char *scan_id; /* a token id that must be found in the records (sanity of the search) */

/* Search one file's bytes (or the records of the store) for every needle. */
static void scan_data(const char *what, const char *data, size_t len)
{
    for (size_t i = 0; i < scan_nneedles; i++) {
        if (sx_test_memmem(data, len, scan_needles[i].p, scan_needles[i].len)) {
            fprintf(stderr, "%s holds %s\n", what, scan_needles[i].what);
            scan_hits++;
        }
    }
}

static int scan_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    size_t len = 0;
    char *data = sx_test_read_file(path, &len);
    if (!data)
        return 0;
    scan_files++;
    scan_data(path, data, len);
    free(data);
    return 0;
}

static void tokens_never_reach_storage_logs_or_error_bodies_body(sx_srv *srv)
{
    char *dir = strdup(srv->dir);
    char errpath[4096];
    snprintf(errpath, sizeof(errpath), "%s/ctl.err", srv->dir);

    enum { NT = 5 };
    char *toks[NT] = {0};
    toks[0] = sx_srv_mint_token(srv, "acme", "web", NULL, "owner", NULL);
    toks[1] = ctl_token_create(srv, "--org acme --role editor --label from-cli", errpath);
    toks[2] = ctl_token_create(srv, "--org acme --project web --env prod --role service --ttl 30d", errpath);
    toks[3] = sx_srv_mint_token(srv, "acme", NULL, NULL, "viewer", NULL); /* revoked below */
    char wrong[TOKEN_LEN + 1];
    toks[4] = malloc(TOKEN_LEN + 1);
    REQUIRE(toks[0] && toks[1] && toks[2] && toks[3] && toks[4]);
    wrong_secret_of(toks[0], wrong); /* presented, never valid */
    memcpy(toks[4], wrong, sizeof(wrong));

    /* Use them: successful, failed, forbidden and revoked requests. */
    client c;
    client_init(&c, srv, SX_H2C, NULL, true);
    sx_resp r;
    client_req(&c, "POST", "/acme/web/envs/prod/secrets", toks[0], "{\"kind\":\"secret\",\"name\":\"api-key\"}", &r);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);
    client_req(&c, "PUT", "/acme/web/envs/prod/secrets/api-key/value", toks[0], "{\"value\":\"v1\"}", &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/prod/values", toks[2], NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    client_req(&c, "PUT", "/acme/web/envs/prod/secrets/api-key", toks[1],
               "{\"kind\":\"secret\",\"name\":\"api-key\",\"description\":\"d\"}", &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/prod/values", toks[1], NULL, &r); /* editor: no reveal */
    CHECK_INT(r.status, 403);
    CHECK(!strstr(r.body, toks[1]) && !strstr(r.body, toks[1] + 37) && !strstr(r.body, toks[1] + 4));
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/prod/secrets", wrong, NULL, &r);
    CHECK(is_unauthorized(&r));
    CHECK(!strstr(r.body, wrong + 4) && !strstr(r.body, wrong + 37));
    sx_resp_free(&r);
    char qpath[256];
    snprintf(qpath, sizeof(qpath), "/acme/web/envs/prod/secrets?access_token=%s", toks[0]);
    client_req(&c, "GET", qpath, toks[0], NULL, &r); /* a token in the query must not be logged either */
    CHECK_INT(r.status, 400);
    CHECK(!strstr(r.body, toks[0] + 37));
    sx_resp_free(&r);
    client_req(&c, "GET", "/acme/web/envs/prod/secrets", toks[3], NULL, &r);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    char cmd[4096], args[128];
    char *out = NULL;
    snprintf(args, sizeof(args), "token revoke %.32s", toks[3] + 4);
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, args)), 0);
    free(out);
    client_req(&c, "GET", "/acme/web/envs/prod/secrets", toks[3], NULL, &r);
    CHECK(is_unauthorized(&r));
    CHECK(!strstr(r.body, toks[3] + 37));
    sx_resp_free(&r);
    CHECK_INT(sx_test_sh(&out, "%s", ctl_cmd(cmd, sizeof(cmd), srv, "token list")), 0);
    for (int i = 0; i < NT; i++)
        CHECK(!strstr(out, toks[i] + 37));
    free(out);
    client_clear(&c);
    unlink(errpath); /* holds the ids only, but it is ours, not the server's */
    CHECK_INT(sx_srv_stop(srv, SIGTERM, 30), 0);

    /* Every file the server wrote: the RocksDB data dir (WAL, SST, MANIFEST, LOG...), its stderr
     * log and its access log. No token, no secret part as text, no secret as raw bytes. */
    needle needles[NT * 3];
    token_parts parts[NT];
    char what[NT * 3][64];
    for (int i = 0; i < NT; i++) {
        token_split(toks[i], &parts[i]);
        snprintf(what[i * 3], sizeof(what[0]), "token %d", i);
        snprintf(what[i * 3 + 1], sizeof(what[0]), "the secret part of token %d", i);
        snprintf(what[i * 3 + 2], sizeof(what[0]), "the raw secret of token %d", i);
        needles[i * 3] = (needle){toks[i], TOKEN_LEN, what[i * 3]};
        needles[i * 3 + 1] = (needle){parts[i].secret, 43, what[i * 3 + 1]};
        needles[i * 3 + 2] = (needle){parts[i].raw, 32, what[i * 3 + 2]};
    }
    char data_dir[4096];
    snprintf(data_dir, sizeof(data_dir), "%s/data/", dir);
    scan_needles = needles;
    scan_nneedles = NT * 3;
    scan_hits = scan_files = 0;
    scan_id = parts[0].id;
    CHECK_INT(nftw(dir, scan_one, 16, FTW_PHYS), 0);
    fprintf(stderr, "scanned %d files under %s\n", scan_files, dir);
    CHECK(scan_files >= 5);
    /* The files hold the records compressed (SST blocks) once RocksDB has flushed them, which a
     * clean stop does: search the records as RocksDB reads them back, too. */
    sx_test_buf recs = {0};
    CHECK_INT(sx_test_rocksdb_dump(data_dir, &recs), 0);
    if (recs.data) {
        scan_data("a record of the store", recs.data, recs.len);
        /* the token's record is there (its id is public), so the search reads the data */
        CHECK(sx_test_memmem(recs.data, recs.len, scan_id, 32));
    }
    free(recs.data);
    CHECK_INT(scan_hits, 0);

    for (int i = 0; i < NT; i++)
        free(toks[i]);
    sx_test_rmtree(dir);
    free(dir);
}

void tokens_never_reach_storage_logs_or_error_bodies(void)
{
    with_server(&(sx_srv_opts){.backend = "rocksdb", .keep_dir = true},
                tokens_never_reach_storage_logs_or_error_bodies_body);
}
