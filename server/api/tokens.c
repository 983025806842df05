/*
 * tokens.c - the tokens resource on the Unix admin socket: token management.
 *
 *   POST   /v1/tokens       {"org", "project"?, "env"?, "role", "label"?, "ttl"?}  -> 201 with the token
 *   GET    /v1/tokens       -> 200 [token descriptions]  (never a secret or a hash)
 *   DELETE /v1/tokens/{id}  -> 200 {"revoked": true, "id": ...}
 *
 * Only the socket's file mode (0600) guards these routes; they are not routed on TCP listeners.
 * The plaintext token of a create exists in the worker's sodium_malloc buffer, in the response
 * generator (wiped on free) and in the response buffer (wiped when the request ends), and nowhere
 * else: it is never stored, logged or kept.
 */
#include "server/api/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "audit/audit.h"

static void gen_token_info(yajl_gen g, const sx_auth_token *t)
{
    char ts[32];
    sx_json_kv(g, "id", t->id);
    sx_json_kv(g, "label", t->label);
    sx_json_kv(g, "role", sx_auth_role_name(t->role));
    sx_json_kv(g, "org", t->org);
    sx_json_kv(g, "project", t->project[0] ? t->project : NULL);
    sx_json_kv(g, "env", t->env[0] ? t->env : NULL);
    sx_time_format(t->created_ms, ts, sizeof(ts));
    sx_json_kv(g, "createdAt", ts);
    if (t->expires_ms) {
        sx_time_format(t->expires_ms, ts, sizeof(ts));
        sx_json_kv(g, "expiresAt", ts);
    } else {
        sx_json_kv(g, "expiresAt", NULL);
    }
    sx_json_str(g, "revoked");
    yajl_gen_bool(g, t->revoked);
}

/* ---- POST /v1/tokens ---------------------------------------------------------------------------- */

typedef struct create_job {
    sx_api_job base;
    sx_auth_token_spec spec;
    char org[SX_AUTH_NAME_MAX + 1];
    char project[SX_AUTH_NAME_MAX + 1];
    char env[SX_AUTH_NAME_MAX + 1];
    char label[SX_AUTH_LABEL_MAX + 1];
    /* outcome */
    int rc;
    char *token; /* sodium_malloc'd plaintext */
    sx_auth_token info;
} create_job;

static void create_work(sx_job *job)
{
    create_job *j = (create_job *)job;
    j->rc = sx_auth_token_create(j->base.server->auth, &j->spec, sx_clock_wall_ms(), &j->token, &j->info);
}

/* The token.create line names what was granted: the new token's id (as the line's name), its
 * scope and its role - never its secret part. The request has no token of its own (the admin
 * socket's file mode is its authority), so tokenId, label and role stay null. */
static void audit_created(sx_request *r, const sx_auth_token *t)
{
    if (!r->server->audit || r->audit_done)
        return;
    char client[64], scope[3 * (SX_AUTH_NAME_MAX + 1)];
    snprintf(scope, sizeof(scope), "%s%s%s%s%s", t->org, t->project[0] ? "/" : "", t->project, t->env[0] ? "/" : "",
             t->env);
    sx_audit_rec rec;
    sx_request_audit_rec(r, &rec, client, scope, t->id);
    rec.status = 201;
    rec.granted_role = sx_auth_role_name(t->role);
    sx_audit_log(r->server->audit, r->thread->index, &rec);
    r->audit_done = true;
}

static void create_done(sx_job *job)
{
    create_job *j = (create_job *)job;
    sx_request *r = j->base.r;
    if (j->rc != 0) {
        sx_send_failure(r, SX_ERR_TOKEN_CREATE, j->rc, NULL);
        return;
    }
    yajl_gen g = sx_json_gen_wiped();
    yajl_gen_map_open(g);
    sx_json_kv(g, "token", j->token);
    gen_token_info(g, &j->info);
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish_wiped(g, &r->req->pool);
    sx_log(SX_LOG_INFO, "admin: token %s created (role %s, org \"%s\")", j->info.id, sx_auth_role_name(j->info.role),
           j->info.org);
    audit_created(r, &j->info);
    sx_send_json_pooled(r, 201, body); /* no unwiped copy of the token */
}

static void create_release(sx_job *job)
{
    create_job *j = (create_job *)job;
    sx_auth_token_plaintext_free(j->token);
    free(j);
}

static const sx_json_field token_fields[] = {
    {"org", SX_JSON_STRING, "a string", true},
    {"project", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
    {"env", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
    {"role", SX_JSON_STRING, "a string", true},
    {"label", SX_JSON_STRING | SX_JSON_NULL, "a string or null", false},
    {"ttl", SX_JSON_STRING | SX_JSON_NULL, "a string like \"30d\" or null", false},
};

void sx_api_token_create(sx_request *r)
{
    if (!sx_require_json(r))
        return;
    sx_json_value v[6];
    if (!sx_api_parse_body(r, token_fields, 6, v))
        return;
    create_job *j = sx_api_job_new(r, sizeof(*j), create_work, create_done, create_release);
    if (!j)
        return;
    const char *bad = NULL;
    if (!sx_json_copy_string(j->org, sizeof(j->org), &v[0]) || !sx_auth_name_valid(j->org))
        bad = "field \"org\" must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit";
    else if (!sx_json_copy_string(j->project, sizeof(j->project), &v[1]) ||
             (j->project[0] && !sx_auth_name_valid(j->project)))
        bad = "field \"project\" must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit";
    else if (!sx_json_copy_string(j->env, sizeof(j->env), &v[2]) || (j->env[0] && !sx_auth_name_valid(j->env)))
        bad = "field \"env\" must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit";
    else if (j->env[0] && !j->project[0])
        bad = "field \"env\" needs a \"project\"";
    else if (sx_auth_role_parse(v[3].str, &j->spec.role) != 0)
        bad = "field \"role\" must be viewer, editor, owner or service";
    else if (!sx_json_copy_string(j->label, sizeof(j->label), &v[4]) || !sx_auth_label_valid(j->label))
        bad = "field \"label\" must be at most 128 bytes of printable UTF-8";
    else if (v[5].present && !v[5].is_null && sx_auth_ttl_parse(v[5].str, &j->spec.ttl_ms) != 0)
        bad = "field \"ttl\" must be a duration like 3600s, 90m, 12h or 30d (at most 3650d)";
    if (bad) {
        create_release(&j->base.super);
        sx_send_error(r, 400, "invalid_request", bad);
        return;
    }
    j->spec.org = j->org;
    j->spec.project = j->project;
    j->spec.env = j->env;
    j->spec.label = j->label;
    sx_request_submit(r, &j->base.super);
}

/* ---- GET /v1/tokens ----------------------------------------------------------------------------- */

typedef struct list_job {
    sx_api_job base;
    int rc;
    yajl_gen list;
} list_job;

static int list_one(const sx_auth_token *tok, void *ud)
{
    yajl_gen g = ud;
    yajl_gen_map_open(g);
    gen_token_info(g, tok);
    yajl_gen_map_close(g);
    return 0;
}

static void list_work(sx_job *job)
{
    list_job *j = (list_job *)job;
    j->list = sx_json_gen_new();
    yajl_gen_array_open(j->list);
    j->rc = sx_auth_token_list(j->base.server->auth, list_one, j->list);
    yajl_gen_array_close(j->list);
}

static void list_done(sx_job *job)
{
    list_job *j = (list_job *)job;
    sx_request *r = j->base.r;
    if (j->rc != 0) {
        sx_send_failure(r, SX_ERR_TOKEN_LIST, j->rc, NULL);
        return;
    }
    h2o_iovec_t body = sx_json_gen_finish(j->list, &r->req->pool);
    j->list = NULL;
    sx_send_json(r, 200, NULL, body.base, body.len);
}

static void list_release(sx_job *job)
{
    list_job *j = (list_job *)job;
    if (j->list)
        yajl_gen_free(j->list);
    free(j);
}

void sx_api_token_list(sx_request *r)
{
    list_job *j = sx_api_job_new(r, sizeof(*j), list_work, list_done, list_release);
    if (j)
        sx_request_submit(r, &j->base.super);
}

/* ---- DELETE /v1/tokens/{id} --------------------------------------------------------------------- */

typedef struct revoke_job {
    sx_api_job base;
    char id[SX_AUTH_ID_LEN + 1];
    int rc;
} revoke_job;

static void revoke_work(sx_job *job)
{
    revoke_job *j = (revoke_job *)job;
    j->rc = sx_auth_token_revoke(j->base.server->auth, j->id, sx_clock_wall_ms());
}

static void revoke_done(sx_job *job)
{
    revoke_job *j = (revoke_job *)job;
    sx_request *r = j->base.r;
    if (j->rc != 0) {
        sx_send_failure(r, SX_ERR_TOKEN_REVOKE, j->rc, NULL);
        return;
    }
    yajl_gen g = sx_json_gen_new();
    yajl_gen_map_open(g);
    sx_json_str(g, "revoked");
    yajl_gen_bool(g, 1);
    sx_json_kv(g, "id", j->id);
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    sx_log(SX_LOG_INFO, "admin: token %s revoked", j->id);
    sx_send_json(r, 200, NULL, body.base, body.len);
}

void sx_api_token_revoke(sx_request *r)
{
    revoke_job *j = sx_api_job_new(r, sizeof(*j), revoke_work, revoke_done, NULL);
    if (!j)
        return;
    sx_api_copy_param(j->id, sizeof(j->id), r->params[0]);
    sx_request_submit(r, &j->base.super);
}
