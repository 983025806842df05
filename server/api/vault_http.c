/*
 * vault_http.c - the shared parts of the Vault KV v2 surface (vault.h): Vault's error form, the
 * X-Vault-Token header, mounts and KV paths, the envelope of every answer, a map's version; and the
 * endpoints clients call around the KV ones:
 *
 *   GET      /v1/sys/health                      Vault's health fields; 200 serving, 503 storage down
 *   GET      /v1/sys/internal/ui/mounts/{path*}  the mount of a path: a KV version 2 mount
 *   GET      /v1/auth/token/lookup-self          the token's public description (never the token)
 *   POST/PUT /v1/auth/token/renew-self           the token's remaining lifetime; nothing is renewed
 *
 * Vault answers an unknown or missing token with 403 "permission denied", not 401; 404 has an empty
 * error list. Every error of a Vault request goes through sx_vault_send_error (http.c sends
 * r->vault requests' errors here), so the same failure reads the same on both surfaces except for
 * its form.
 */
#include "server/api/vault.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/* ---- errors -------------------------------------------------------------------------------------- */

void sx_vault_send_error(sx_request *r, int status, const char *message)
{
    const char *detail = NULL;
    if (status == 401) {
        status = 403;
        message = "permission denied";
    } else if (status == 403) {
        detail = message;
        message = "permission denied";
    }
    yajl_gen g = sx_json_gen_thread();
    yajl_gen_map_open(g);
    sx_json_str(g, "errors");
    yajl_gen_array_open(g);
    if (status != 404) {
        sx_json_str(g, message);
        if (detail)
            sx_json_str(g, detail);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    sx_send_json_pooled(r, status, sx_json_gen_thread_finish(g, &r->req->pool));
}

/* ---- the caller ---------------------------------------------------------------------------------- */

bool sx_vault_authenticate(sx_request *r, sx_auth_token *ret_principal)
{
    h2o_req_t *req = r->req;
    ssize_t hi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-vault-token"), -1);
    if (hi >= 0) {
        /* The same grammar as our own header: "Bearer <token>", in memory wiped with the request. */
        h2o_iovec_t v = req->headers.entries[hi].value;
        char *line = sx_pool_alloc_wiped(&req->pool, 7 + v.len);
        memcpy(line, "Bearer ", 7);
        memcpy(line + 7, v.base, v.len);
        return sx_api_authenticate(r, line, 7 + v.len, ret_principal);
    }
    hi = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    return sx_api_authenticate(r, hi >= 0 ? req->headers.entries[hi].value.base : NULL,
                               hi >= 0 ? req->headers.entries[hi].value.len : 0, ret_principal);
}

bool sx_vault_allow(sx_request *r, const sx_auth_token *t, unsigned perms, const sx_secrets_place *p)
{
    if (sx_auth_check(t, perms, p->org, p->project[0] ? p->project : NULL, p->env[0] ? p->env : NULL) == 0)
        return true;
    char msg[192];
    size_t n = 0;
    unsigned missing = perms & ~sx_auth_role_perms(t->role);
    if (missing) {
        n = (size_t)snprintf(msg, sizeof(msg), "the token does not grant");
        for (unsigned bit = 1; bit && bit <= missing && n < sizeof(msg); bit <<= 1)
            if (missing & bit)
                n += (size_t)snprintf(msg + n, sizeof(msg) - n, " %s", sx_auth_perm_name(bit));
    } else {
        snprintf(msg, sizeof(msg), "the token's scope does not cover this path");
    }
    sx_send_failure(r, SX_ERR_AUTH, SX_AUTH_EFORBIDDEN, msg);
    return false;
}

/* ---- paths --------------------------------------------------------------------------------------- */

/* The org a mount stands for: its alias in [vault] mounts, or its own name. */
static void org_of_mount(const sx_config *cfg, const char *mount, char *org, size_t cap)
{
    for (size_t i = 0; i < cfg->n_vault_mounts; i++) {
        if (strcmp(cfg->vault_mounts[i].mount, mount) == 0) {
            snprintf(org, cap, "%s", cfg->vault_mounts[i].org);
            return;
        }
    }
    snprintf(org, cap, "%s", mount);
}

bool sx_vault_path_of(sx_request *r, h2o_iovec_t mount, h2o_iovec_t path, sx_vault_path *ret)
{
    memset(ret, 0, sizeof(*ret));
    sx_api_copy_param(ret->mount, sizeof(ret->mount), mount);
    org_of_mount(r->server->config, ret->mount, ret->place.org, sizeof(ret->place.org));
    /* The router let through only segments of [A-Za-z0-9._-]; each must also fit what it names. */
    char *const slots[] = {ret->place.project, ret->place.env, ret->place.name};
    static const char *const rules[] = {
        "the path's project must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit",
        "the path's env must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit",
        "the path's secret name must be 1-256 characters of [A-Za-z0-9._-], not \".\" or \"..\"",
    };
    size_t i = 0, depth = 0;
    while (i < path.len) {
        size_t start = i;
        while (i < path.len && path.base[i] != '/')
            i++;
        size_t len = i - start;
        i++;
        if (depth == 3) {
            sx_send_error(r, 404, "not_found", "no such path");
            return false;
        }
        char seg[SX_SECRETS_NAME_MAX + 1];
        bool ok = len <= (depth < 2 ? SX_SECRETS_SCOPE_MAX : SX_SECRETS_NAME_MAX);
        if (ok) {
            memcpy(seg, path.base + start, len);
            seg[len] = '\0';
            ok = depth < 2 ? sx_auth_name_valid(seg) : sx_secrets_name_valid(seg, len);
        }
        if (!ok) {
            sx_send_error(r, 400, "invalid_request", rules[depth]);
            return false;
        }
        memcpy(slots[depth], seg, len + 1);
        depth++;
    }
    ret->depth = (sx_vault_depth)depth;
    return true;
}

bool sx_vault_begin(sx_request *r, sx_auth_token *ret_principal, sx_vault_path *ret_path)
{
    if (!sx_vault_authenticate(r, ret_principal) || !sx_vault_path_of(r, r->params[0], r->params[1], ret_path))
        return false;
    sx_vault_audit_target(r, ret_path);
    return true;
}

bool sx_vault_begin_change(sx_request *r, sx_auth_token *ret_principal, sx_vault_path *ret_path)
{
    if (!sx_vault_begin(r, ret_principal, ret_path))
        return false;
    if (ret_path->depth < SX_VAULT_AT_ENV) {
        sx_send_error(r, 400, "invalid_request",
                      "a KV path is PROJECT/ENV (the env's values as one map) or PROJECT/ENV/NAME (one secret)");
        return false;
    }
    return true;
}

void sx_vault_audit_target(sx_request *r, const sx_vault_path *vp)
{
    const sx_secrets_place *p = &vp->place;
    char scope[3 * (SX_SECRETS_SCOPE_MAX + 1)];
    int n = snprintf(scope, sizeof(scope), "%s%s%s%s%s", p->org, p->project[0] ? "/" : "", p->project,
                     p->env[0] ? "/" : "", p->env);
    r->audit_scope = h2o_strdup(&r->req->pool, scope, (size_t)n).base;
    r->audit_name = p->name[0] ? h2o_strdup(&r->req->pool, p->name, SIZE_MAX).base : NULL;
}

bool sx_vault_query(sx_request *r, const char *name, h2o_iovec_t *ret)
{
    size_t nl = strlen(name);
    const char *q = r->query.base;
    size_t len = r->query.len;
    while (len) {
        const char *amp = memchr(q, '&', len);
        size_t pl = amp ? (size_t)(amp - q) : len;
        if (pl >= nl && memcmp(q, name, nl) == 0 && (pl == nl || q[nl] == '=')) {
            *ret = pl == nl ? h2o_iovec_init("", 0) : h2o_iovec_init(q + nl + 1, pl - nl - 1);
            return true;
        }
        q += pl + (amp ? 1 : 0);
        len -= pl + (amp ? 1 : 0);
    }
    return false;
}

bool sx_vault_is_list(sx_request *r)
{
    if (h2o_memis(r->req->method.base, r->req->method.len, H2O_STRLIT("LIST")))
        return true;
    h2o_iovec_t v;
    return sx_vault_query(r, "list", &v) &&
           (h2o_memis(v.base, v.len, H2O_STRLIT("true")) || h2o_memis(v.base, v.len, H2O_STRLIT("1")));
}

/* ---- answers ------------------------------------------------------------------------------------- */

void sx_vault_envelope_open(sx_request *r, yajl_gen g, unsigned lease_duration)
{
    sx_vault_envelope_open_id(g, r->req_id, r->req_id_len, lease_duration);
}

void sx_vault_envelope_open_id(yajl_gen g, const char *req_id, size_t req_id_len, unsigned lease_duration)
{
    yajl_gen_map_open(g);
    sx_json_str(g, "request_id");
    sx_json_strn(g, req_id, req_id_len);
    sx_json_kv(g, "lease_id", "");
    sx_json_str(g, "renewable");
    yajl_gen_bool(g, 0);
    sx_json_str(g, "lease_duration");
    yajl_gen_integer(g, lease_duration);
    sx_json_str(g, "data");
}

void sx_vault_envelope_close(yajl_gen g)
{
    sx_json_kv(g, "wrap_info", NULL);
    sx_json_kv(g, "warnings", NULL);
    sx_json_kv(g, "auth", NULL);
    yajl_gen_map_close(g);
}

size_t sx_vault_envelope_head(sx_request *r, char *out, unsigned lease_duration)
{
    /* The request id is 1-64 characters of [A-Za-z0-9._-]: nothing to escape. */
    int n = snprintf(out, SX_VAULT_HEAD_MAX,
                     "{\"request_id\":\"%.*s\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":%u,\"data\":",
                     (int)r->req_id_len, r->req_id, lease_duration);
    return n < 0 ? 0 : (size_t)n;
}

void sx_vault_version_meta(yajl_gen g, int64_t created_ms, uint64_t version)
{
    char ts[SX_TIME_SIZE];
    sx_time_format(created_ms, ts, sizeof(ts));
    yajl_gen_map_open(g);
    sx_json_kv(g, "created_time", ts);
    sx_json_kv(g, "custom_metadata", NULL);
    sx_json_kv(g, "deletion_time", "");
    sx_json_str(g, "destroyed");
    yajl_gen_bool(g, 0);
    sx_json_str(g, "version");
    yajl_gen_integer(g, (long long)version);
    yajl_gen_map_close(g);
}

size_t sx_vault_version_meta_text(char *out, int64_t created_ms, uint64_t version)
{
    char ts[SX_TIME_SIZE];
    sx_time_format(created_ms, ts, sizeof(ts));
    int n = snprintf(out, SX_VAULT_META_MAX,
                     "{\"created_time\":\"%s\",\"custom_metadata\":null,\"deletion_time\":\"\",\"destroyed\":false,"
                     "\"version\":%llu}",
                     ts, (unsigned long long)version);
    return n < 0 ? 0 : (size_t)n;
}

int sx_vault_map_head_read(const sx_secrets_ctx *c, const sx_secrets_place *env, sx_vault_map_head *ret)
{
    sx_secrets_scan scan;
    int rc = sx_secrets_list_open(&scan, c, env, NULL);
    if (rc != 0)
        return rc;
    sx_vault_map_head h = {0};
    const char *name;
    size_t namelen;
    sx_secret_meta_view m;
    while ((rc = sx_secrets_list_next(&scan, &name, &namelen, &m)) == 0) {
        if (!h.secrets || m.created_ms < h.created_ms)
            h.created_ms = m.created_ms;
        if (m.updated_ms > h.updated_ms)
            h.updated_ms = m.updated_ms;
        h.secrets++;
        if (!m.has_value)
            continue;
        h.values++;
        h.version += m.version;
        if (m.value_created_ms > h.value_ms)
            h.value_ms = m.value_created_ms;
    }
    sx_secrets_scan_close(&scan);
    if (rc != SX_STORAGE_DONE)
        return rc;
    *ret = h;
    return 0;
}

int sx_vault_names_read(const sx_secrets_ctx *c, const sx_secrets_place *env, sx_vault_names *ret)
{
    sx_secrets_scan scan;
    int rc = sx_secrets_list_open(&scan, c, env, NULL);
    if (rc != 0)
        return rc;
    const char *name;
    size_t namelen;
    sx_secret_meta_view m;
    while ((rc = sx_secrets_list_next(&scan, &name, &namelen, &m)) == 0) {
        if (ret->n == ret->cap) {
            size_t cap = ret->cap ? ret->cap * 2 : 32;
            void *nn = realloc(ret->names, cap * sizeof(*ret->names));
            if (nn)
                ret->names = nn;
            void *nh = realloc(ret->has_value, cap * sizeof(*ret->has_value));
            if (nh)
                ret->has_value = nh;
            if (!nn || !nh) {
                rc = -ENOMEM;
                break;
            }
            ret->cap = cap;
        }
        memcpy(ret->names[ret->n], name, namelen);
        ret->names[ret->n][namelen] = '\0';
        ret->has_value[ret->n++] = m.has_value;
        if (m.has_value)
            ret->version += m.version;
    }
    sx_secrets_scan_close(&scan);
    return rc == SX_STORAGE_DONE ? 0 : rc;
}

void sx_vault_names_free(sx_vault_names *e)
{
    free(e->names);
    free(e->has_value);
    memset(e, 0, sizeof(*e));
}

/* ---- sys/health ---------------------------------------------------------------------------------- */

/* A status code from ?name=N (Vault's activecode, sealedcode, ...), or dflt. */
static int status_param(sx_request *r, const char *name, int dflt)
{
    h2o_iovec_t v;
    if (!sx_vault_query(r, name, &v) || v.len == 0 || v.len > 3)
        return dflt;
    int n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9')
            return dflt;
        n = n * 10 + (v.base[i] - '0');
    }
    return n >= 200 && n <= 599 ? n : dflt;
}

typedef struct health_job {
    sx_api_job base;
    int result;
} health_job;

static void health_work(sx_job *job)
{
    health_job *j = (health_job *)job;
    j->result = sx_api_storage_check(j->base.server);
}

/* A cluster id that stays the same across restarts of a server on the same store: a hash of the
 * backend and where its data lives, shaped like Vault's UUID. Names nothing secret. */
static void cluster_id(const sx_config *cfg, char out[37])
{
    unsigned char h[16];
    char in[4096];
    int n = snprintf(in, sizeof(in), "%d|%s|%s", (int)cfg->backend, cfg->storage_path ? cfg->storage_path : "",
                     cfg->backend == SX_CONFIG_BACKEND_POSTGRES && cfg->storage_dsn ? cfg->storage_dsn : "");
    crypto_generichash(h, sizeof(h), (const unsigned char *)in, n < 0 ? 0 : (size_t)n, NULL, 0);
    sodium_memzero(in, sizeof(in));
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[h[i] >> 4];
        out[o++] = hex[h[i] & 15];
    }
    out[o] = '\0';
}

static void health_done(sx_job *job)
{
    health_job *j = (health_job *)job;
    sx_request *r = j->base.r;
    if (j->result != 0)
        sx_log(SX_LOG_WARN, "vault health check: storage error: %s", sx_storage_strerror(j->result));
    /* secretsd serves only once unsealed, and is never a standby: active, or the store is down. */
    int status = j->result == 0 ? status_param(r, "activecode", 200) : 503;
    char id[37];
    cluster_id(r->server->config, id);
    yajl_gen g = sx_json_gen_thread();
    yajl_gen_map_open(g);
    static const char *const flags[] = {"initialized", "sealed", "standby", "performance_standby"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        sx_json_str(g, flags[i]);
        yajl_gen_bool(g, i == 0);
    }
    sx_json_kv(g, "replication_performance_mode", "disabled");
    sx_json_kv(g, "replication_dr_mode", "disabled");
    sx_json_str(g, "server_time_utc");
    yajl_gen_integer(g, sx_clock_wall_ms() / 1000);
    sx_json_kv(g, "version", SX_VERSION);
    sx_json_kv(g, "cluster_name", "secretsd");
    sx_json_kv(g, "cluster_id", id);
    yajl_gen_map_close(g);
    sx_send_json_pooled(r, status, sx_json_gen_thread_finish(g, &r->req->pool));
}

void sx_api_vault_health(sx_request *r)
{
    health_job *j = sx_api_job_new(r, sizeof(*j), health_work, health_done, NULL);
    if (j)
        sx_request_submit(r, &j->base.super);
}

/* ---- sys/internal/ui/mounts ---------------------------------------------------------------------- */

void sx_api_vault_mount(sx_request *r)
{
    sx_auth_token t;
    if (!sx_vault_authenticate(r, &t))
        return;
    h2o_iovec_t rest = r->params[0];
    size_t ml = 0;
    while (ml < rest.len && rest.base[ml] != '/')
        ml++;
    char mount[SX_SECRETS_SCOPE_MAX + 1], org[SX_SECRETS_SCOPE_MAX + 1];
    if (ml == 0) {
        sx_send_error(r, 404, "not_found", "no mount named");
        return;
    }
    if (ml <= SX_SECRETS_SCOPE_MAX) {
        memcpy(mount, rest.base, ml);
        mount[ml] = '\0';
    }
    if (ml > SX_SECRETS_SCOPE_MAX || !sx_auth_name_valid(mount)) {
        sx_send_error(r, 400, "invalid_request",
                      "the mount must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
        return;
    }
    /* What follows the mount is any path of it ("secret/data/app/prod/NAME" from consul-template
     * alike): only the mount is answered for. Any token of its org may learn it is KV version 2. */
    org_of_mount(r->server->config, mount, org, sizeof(org));
    if (strcmp(t.org, org) != 0) {
        sx_send_failure(r, SX_ERR_AUTH, SX_AUTH_EFORBIDDEN, "the token's scope does not cover this mount");
        return;
    }
    char path[SX_SECRETS_SCOPE_MAX + 2], accessor[SX_SECRETS_SCOPE_MAX + 8];
    snprintf(path, sizeof(path), "%s/", mount);
    snprintf(accessor, sizeof(accessor), "kv_%s", mount);
    yajl_gen g = sx_json_gen_thread();
    sx_vault_envelope_open(r, g, 0);
    yajl_gen_map_open(g);
    sx_json_kv(g, "accessor", accessor);
    sx_json_str(g, "config");
    yajl_gen_map_open(g);
    sx_json_str(g, "default_lease_ttl");
    yajl_gen_integer(g, r->server->config->vault_lease_duration);
    sx_json_str(g, "force_no_cache");
    yajl_gen_bool(g, 0);
    sx_json_str(g, "max_lease_ttl");
    yajl_gen_integer(g, r->server->config->vault_lease_duration);
    yajl_gen_map_close(g);
    sx_json_kv(g, "description", "secretsd org");
    sx_json_str(g, "external_entropy_access");
    yajl_gen_bool(g, 0);
    sx_json_str(g, "local");
    yajl_gen_bool(g, 0);
    sx_json_str(g, "options");
    yajl_gen_map_open(g);
    sx_json_kv(g, "version", "2");
    yajl_gen_map_close(g);
    sx_json_kv(g, "path", path);
    sx_json_str(g, "seal_wrap");
    yajl_gen_bool(g, 0);
    sx_json_kv(g, "type", "kv");
    yajl_gen_map_close(g);
    sx_vault_envelope_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}

/* ---- auth/token/lookup-self and renew-self ------------------------------------------------------- */

/* Seconds left of t (0 = never expires), rounded up so a live token never reads as 0. */
static int64_t ttl_of(const sx_auth_token *t)
{
    if (!t->expires_ms)
        return 0;
    int64_t left = t->expires_ms - sx_clock_wall_ms();
    return left <= 0 ? 1 : (left + 999) / 1000;
}

/* The token's scope and role as Vault's string metadata (only the parts it has). */
static void token_meta(yajl_gen g, const sx_auth_token *t)
{
    yajl_gen_map_open(g);
    sx_json_kv(g, "org", t->org);
    if (t->project[0])
        sx_json_kv(g, "project", t->project);
    if (t->env[0])
        sx_json_kv(g, "env", t->env);
    sx_json_kv(g, "role", sx_auth_role_name(t->role));
    yajl_gen_map_close(g);
}

static void token_policies(yajl_gen g, const char *key, const sx_auth_token *t)
{
    sx_json_str(g, key);
    yajl_gen_array_open(g);
    sx_json_str(g, sx_auth_role_name(t->role));
    yajl_gen_array_close(g);
}

void sx_api_vault_lookup_self(sx_request *r)
{
    sx_auth_token t;
    if (!sx_vault_authenticate(r, &t))
        return;
    char ts[SX_TIME_SIZE], name[SX_AUTH_LABEL_MAX + 8];
    snprintf(name, sizeof(name), "token%s%s", t.label[0] ? "-" : "", t.label);
    yajl_gen g = sx_json_gen_thread();
    sx_vault_envelope_open(r, g, 0);
    yajl_gen_map_open(g);
    /* Vault's "id" is the token itself; here it is the token's public id, as "accessor" is. */
    sx_json_kv(g, "accessor", t.id);
    sx_json_str(g, "creation_time");
    yajl_gen_integer(g, t.created_ms / 1000);
    sx_json_str(g, "creation_ttl");
    yajl_gen_integer(g, t.expires_ms ? (t.expires_ms - t.created_ms) / 1000 : 0);
    sx_json_kv(g, "display_name", name);
    sx_json_kv(g, "entity_id", "");
    if (t.expires_ms) {
        sx_time_format(t.expires_ms, ts, sizeof(ts));
        sx_json_kv(g, "expire_time", ts);
    } else {
        sx_json_kv(g, "expire_time", NULL);
    }
    sx_json_str(g, "explicit_max_ttl");
    yajl_gen_integer(g, 0);
    sx_json_kv(g, "id", t.id);
    sx_time_format(t.created_ms, ts, sizeof(ts));
    sx_json_kv(g, "issue_time", ts);
    sx_json_str(g, "meta");
    token_meta(g, &t);
    sx_json_str(g, "num_uses");
    yajl_gen_integer(g, 0);
    sx_json_str(g, "orphan");
    yajl_gen_bool(g, 1);
    sx_json_kv(g, "path", "auth/token/create");
    token_policies(g, "policies", &t);
    sx_json_str(g, "renewable");
    yajl_gen_bool(g, 0);
    sx_json_str(g, "ttl");
    yajl_gen_integer(g, ttl_of(&t));
    sx_json_kv(g, "type", "service");
    yajl_gen_map_close(g);
    sx_vault_envelope_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}

static const sx_json_field renew_fields[] = {
    {"increment", SX_JSON_STRING | SX_JSON_NUMBER | SX_JSON_NULL, "a duration (\"1h\" or seconds) or null", false},
};

void sx_api_vault_renew_self(sx_request *r)
{
    sx_auth_token t;
    if (!sx_vault_authenticate(r, &t))
        return;
    sx_json_value v[1];
    if (r->req->entity.len && !sx_api_parse_body(r, renew_fields, 1, v))
        return;
    yajl_gen g = sx_json_gen_thread();
    sx_vault_envelope_open(r, g, 0);
    yajl_gen_null(g);
    sx_json_kv(g, "wrap_info", NULL);
    sx_json_str(g, "warnings");
    yajl_gen_array_open(g);
    sx_json_str(g, "secretsd does not renew tokens: auth.lease_duration is the token's remaining lifetime");
    yajl_gen_array_close(g);
    sx_json_str(g, "auth");
    yajl_gen_map_open(g);
    sx_json_kv(g, "client_token", ""); /* never sent back */
    sx_json_kv(g, "accessor", t.id);
    token_policies(g, "policies", &t);
    token_policies(g, "token_policies", &t);
    sx_json_str(g, "metadata");
    token_meta(g, &t);
    sx_json_str(g, "lease_duration");
    yajl_gen_integer(g, ttl_of(&t));
    sx_json_str(g, "renewable");
    yajl_gen_bool(g, 0);
    sx_json_kv(g, "entity_id", "");
    sx_json_kv(g, "token_type", "service");
    sx_json_str(g, "orphan");
    yajl_gen_bool(g, 1);
    sx_json_str(g, "num_uses");
    yajl_gen_integer(g, 0);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}
