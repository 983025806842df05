/*
 * vault_meta.c - the metadata/ routes of the Vault KV v2 surface: LIST (or GET ?list=true) and GET
 * on /v1/{mount}/metadata/{path*}. Never a value: secrets:read is what they need.
 *
 * LIST by path level, Vault's {"data": {"keys": [...]}} with a trailing '/' on folders, 404
 * {"errors": []} when there is nothing:
 *
 *     metadata/                 the org's projects that hold secrets ("web/")
 *     metadata/PROJECT          its envs: each both a folder ("prod/", its secrets) and a secret
 *                               ("prod", the env's map), as Vault lists a path that is both
 *     metadata/PROJECT/ENV      the env's secret names, with or without a value
 *
 * A token scoped to a project or an env sees only its own in the levels above it; a token of
 * another org is refused (403), as on our own routes.
 *
 * GET gives Vault's metadata of a secret (its versions: current, oldest, each one's createdAt and
 * whether it was destroyed; of a deleted secret, each with the delete's time as deletion_time) or of
 * an env's map (one version: see vault.h).
 */
#include "server/api/vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/* ---- LIST ---------------------------------------------------------------------------------------- */

typedef struct list_ctx {
    yajl_gen g;
    const char *only; /* the token's own project or env at this level ("" = all) */
    bool both;        /* list each as a secret and as a folder */
    size_t n;
} list_ctx;

static int add_scope(void *arg, const char *name, size_t len)
{
    list_ctx *l = arg;
    if (l->only[0] && (strlen(l->only) != len || memcmp(l->only, name, len) != 0))
        return 0;
    char key[SX_SECRETS_SCOPE_MAX + 2];
    memcpy(key, name, len);
    if (l->both)
        sx_json_strn(l->g, key, len);
    key[len] = '/';
    sx_json_strn(l->g, key, len + 1);
    l->n++;
    return 0;
}

/* The keys below vp into the generator's open array; *ret_n gets how many. 0 or a storage code. */
static int list_below(sx_request *r, const sx_auth_token *t, const sx_vault_path *vp, yajl_gen g, size_t *ret_n)
{
    sx_secrets_ctx c;
    sx_api_secrets_ctx(r, &c);
    const sx_secrets_place *p = &vp->place;
    if (vp->depth < SX_VAULT_AT_ENV) {
        list_ctx l = {.g = g,
                      .only = vp->depth == SX_VAULT_AT_MOUNT ? t->project : t->env,
                      .both = vp->depth == SX_VAULT_AT_PROJECT};
        int rc = sx_secrets_scopes(&c, p->org, vp->depth == SX_VAULT_AT_PROJECT ? p->project : NULL, add_scope, &l);
        *ret_n = l.n;
        return rc;
    }
    sx_secrets_scan scan;
    int rc = sx_secrets_list_open(&scan, &c, p, NULL);
    if (rc != 0)
        return rc;
    const char *name;
    size_t namelen, n = 0;
    sx_secret_meta_view m;
    while ((rc = sx_secrets_list_next(&scan, &name, &namelen, &m)) == 0) {
        sx_json_strn(g, name, namelen);
        n++;
    }
    sx_secrets_scan_close(&scan);
    *ret_n = n;
    return rc == SX_STORAGE_DONE ? 0 : rc;
}

/* May t list below vp? Its org must be the mount's, and at the project and env levels its scope
 * must cover the path so far (what is above its scope is filtered, not refused). */
static bool may_list(sx_request *r, const sx_auth_token *t, const sx_vault_path *vp)
{
    if (vp->depth >= SX_VAULT_AT_ENV)
        return sx_vault_allow(r, t, SX_AUTH_PERM_READ, &vp->place);
    sx_secrets_place above = vp->place;
    if (t->project[0] && vp->depth == SX_VAULT_AT_MOUNT)
        memcpy(above.project, t->project, sizeof(above.project)); /* its own project, filtered to */
    if (t->env[0])
        memcpy(above.env, t->env, sizeof(above.env));
    return sx_vault_allow(r, t, SX_AUTH_PERM_READ, &above);
}

static void list_keys(sx_request *r, const sx_auth_token *t, const sx_vault_path *vp)
{
    if (!may_list(r, t, vp))
        return;
    if (vp->depth == SX_VAULT_AT_SECRET) {
        sx_send_error(r, 404, "not_found", "a secret has no keys below it");
        return;
    }
    yajl_gen g = sx_json_gen_thread();
    sx_vault_envelope_open(r, g, 0);
    yajl_gen_map_open(g);
    sx_json_str(g, "keys");
    yajl_gen_array_open(g);
    size_t n = 0;
    int rc = list_below(r, t, vp, g, &n);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    sx_vault_envelope_close(g);
    h2o_iovec_t body = sx_json_gen_thread_finish(g, &r->req->pool);
    if (rc != 0) {
        if (rc != -EBADMSG)
            sx_log(SX_LOG_WARN, "listing a vault path failed: %s", sx_storage_strerror(rc));
        sx_send_failure(r, SX_ERR_SECRET, rc, NULL);
        return;
    }
    if (n == 0) {
        sx_send_error(r, 404, "not_found", "nothing below this path");
        return;
    }
    sx_send_json_pooled(r, 200, body);
}

/* ---- GET ----------------------------------------------------------------------------------------- */

/* One entry of "versions"; deleted_ms 0: not deleted. */
static void version_entry(yajl_gen g, uint64_t version, int64_t created_ms, int64_t deleted_ms, bool destroyed)
{
    char key[24], ts[SX_TIME_SIZE];
    snprintf(key, sizeof(key), "%llu", (unsigned long long)version);
    sx_json_str(g, key);
    yajl_gen_map_open(g);
    sx_time_format(created_ms, ts, sizeof(ts));
    sx_json_kv(g, "created_time", ts);
    if (deleted_ms)
        sx_time_format(deleted_ms, ts, sizeof(ts));
    sx_json_kv(g, "deletion_time", deleted_ms ? ts : "");
    sx_json_str(g, "destroyed");
    yajl_gen_bool(g, destroyed);
    yajl_gen_map_close(g);
}

/* The fields every metadata answer has, before "versions". */
static void meta_head(sx_request *r, yajl_gen g, int64_t created_ms, int64_t updated_ms, uint64_t current,
                      uint64_t oldest)
{
    char ts[SX_TIME_SIZE];
    sx_vault_envelope_open(r, g, 0);
    yajl_gen_map_open(g);
    sx_json_str(g, "cas_required");
    yajl_gen_bool(g, 0);
    sx_time_format(created_ms, ts, sizeof(ts));
    sx_json_kv(g, "created_time", ts);
    sx_json_str(g, "current_version");
    yajl_gen_integer(g, (long long)current);
    sx_json_kv(g, "custom_metadata", NULL);
    sx_json_kv(g, "delete_version_after", "0s");
    sx_json_str(g, "max_versions");
    yajl_gen_integer(g, r->server->config->max_versions);
    sx_json_str(g, "oldest_version");
    yajl_gen_integer(g, (long long)oldest);
    sx_time_format(updated_ms, ts, sizeof(ts));
    sx_json_kv(g, "updated_time", ts);
    sx_json_str(g, "versions");
    yajl_gen_map_open(g);
}

static void meta_send(sx_request *r, yajl_gen g)
{
    yajl_gen_map_close(g); /* versions */
    yajl_gen_map_close(g); /* data */
    sx_vault_envelope_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}

static void read_failed(sx_request *r, int rc)
{
    if (rc != -ENOENT && rc != SX_SECRETS_ENOVALUE && rc != -EBADMSG)
        sx_log(SX_LOG_WARN, "reading vault metadata failed: %s", sx_storage_strerror(rc));
    sx_send_failure(r, SX_ERR_SECRET, rc, NULL);
}

/* The versions of a secret, or of the deleted secret of that name when none lives: every version
 * it keeps has the delete's time as deletion_time (they were deleted together), updated_time too. */
static void secret_meta(sx_request *r, const sx_vault_path *vp)
{
    sx_secrets_ctx c;
    sx_api_secrets_ctx(r, &c);
    void *raw = NULL;
    sx_secret_meta_view m;
    uint64_t rev = 0;
    sx_secrets_deleted d = {0};
    int64_t created_ms = 0, updated_ms = 0;
    sx_secrets_version *list = NULL;
    size_t n = 0;
    int rc = sx_secrets_get(&c, &vp->place, &raw, &m, &rev);
    if (rc == 0) {
        created_ms = m.created_ms;
        updated_ms = m.updated_ms;
        sx_storage_free(raw);
        rc = sx_secrets_versions(&c, &vp->place, &list, &n);
    } else if (rc == -ENOENT && (rc = sx_secrets_deleted_history(&c, &vp->place, &list, &n)) == 0) {
        rc = sx_secrets_deleted_get(&c, &vp->place, &d, NULL);
        created_ms = d.created_ms;
        updated_ms = d.deleted_ms;
    }
    if (rc == SX_SECRETS_ENOTDELETED)
        rc = -ENOENT;
    if (rc != 0) {
        free(list);
        read_failed(r, rc);
        return;
    }
    uint32_t current = 0, oldest = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].state == SX_SECRETS_VERSION_CURRENT)
            current = list[i].version;
        if (!oldest || list[i].version < oldest)
            oldest = list[i].version;
    }
    yajl_gen g = sx_json_gen_thread();
    meta_head(r, g, created_ms, updated_ms, current, oldest);
    for (size_t i = n; i-- > 0;) /* oldest first, as Vault lists them */
        version_entry(g, list[i].version, list[i].created_ms, d.deleted_ms,
                      list[i].state == SX_SECRETS_VERSION_DESTROYED);
    free(list);
    meta_send(r, g);
}

static void map_meta(sx_request *r, const sx_vault_path *vp)
{
    sx_secrets_ctx c;
    sx_api_secrets_ctx(r, &c);
    sx_vault_map_head h;
    int rc = sx_vault_map_head_read(&c, &vp->place, &h);
    if (rc == 0 && !h.secrets)
        rc = -ENOENT;
    if (rc != 0) {
        read_failed(r, rc);
        return;
    }
    yajl_gen g = sx_json_gen_thread();
    meta_head(r, g, h.created_ms, h.updated_ms, h.version, h.version);
    if (h.values)
        version_entry(g, h.version, h.value_ms, 0, false);
    meta_send(r, g);
}

void sx_api_vault_metadata(sx_request *r)
{
    sx_auth_token t;
    sx_vault_path vp;
    if (!sx_vault_begin(r, &t, &vp))
        return;
    if (sx_vault_is_list(r)) {
        list_keys(r, &t, &vp);
        return;
    }
    if (vp.depth < SX_VAULT_AT_ENV) {
        sx_send_error(r, 404, "not_found", "no secret at this path");
        return;
    }
    if (!sx_vault_allow(r, &t, SX_AUTH_PERM_READ, &vp.place))
        return;
    if (vp.depth == SX_VAULT_AT_SECRET)
        secret_meta(r, &vp);
    else
        map_meta(r, &vp);
}
