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

/*
 * Reads are read jobs (inline on the loop, or on the worker pool when the store's reads are slow):
 * the caller's permission is checked on the loop first. A LIST's read writes the whole answer with
 * the thread's generator (names only, never a value) into the job's pool; a GET's read keeps what it
 * found in the job and answer() writes it out on the loop.
 */
typedef struct list_job {
    sx_read_job base; /* place: the path listed */
    sx_vault_depth depth;
    char only[SX_SECRETS_SCOPE_MAX + 1]; /* the token's own project or env at this level ("" = all) */
    char req_id[SX_REQUEST_ID_MAX + 1];
    size_t req_id_len;
    size_t n; /* outcome: keys listed */
} list_job;

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

/* The keys below the job's path into the generator's open array; *ret_n gets how many. 0 or a
 * storage code. */
static int list_below(const list_job *j, const sx_secrets_ctx *c, yajl_gen g, size_t *ret_n)
{
    const sx_secrets_place *p = &j->base.place;
    if (j->depth < SX_VAULT_AT_ENV) {
        list_ctx l = {.g = g, .only = j->only, .both = j->depth == SX_VAULT_AT_PROJECT};
        int rc = sx_secrets_scopes(c, p->org, j->depth == SX_VAULT_AT_PROJECT ? p->project : NULL, add_scope, &l);
        *ret_n = l.n;
        return rc;
    }
    sx_secrets_scan scan;
    int rc = sx_secrets_list_open(&scan, c, p, NULL);
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

static int list_read(sx_read_job *rj, const sx_secrets_ctx *c)
{
    list_job *j = (list_job *)rj;
    yajl_gen g = sx_json_gen_thread();
    sx_vault_envelope_open_id(g, j->req_id, j->req_id_len, 0);
    yajl_gen_map_open(g);
    sx_json_str(g, "keys");
    yajl_gen_array_open(g);
    int rc = list_below(j, c, g, &j->n);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    sx_vault_envelope_close(g);
    rj->body = sx_json_gen_thread_finish(g, rj->pool); /* resets the generator, whatever rc is */
    return rc;
}

static void list_answer(sx_read_job *rj)
{
    list_job *j = (list_job *)rj;
    sx_request *r = rj->base.r;
    if (rj->rc != 0) {
        if (rj->rc != -EBADMSG)
            sx_log(SX_LOG_WARN, "listing a vault path failed: %s", sx_storage_strerror(rj->rc));
        sx_send_failure(r, SX_ERR_SECRET, rj->rc, NULL);
        return;
    }
    if (j->n == 0) {
        sx_send_error(r, 404, "not_found", "nothing below this path");
        return;
    }
    sx_send_json_pooled(r, 200, rj->body);
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
    list_job *j = sx_read_job_new(r, sizeof(*j), &vp->place, list_read, list_answer, NULL);
    if (!j)
        return;
    j->depth = vp->depth;
    if (vp->depth < SX_VAULT_AT_ENV) {
        const char *only = vp->depth == SX_VAULT_AT_MOUNT ? t->project : t->env;
        snprintf(j->only, sizeof(j->only), "%s", only);
    }
    memcpy(j->req_id, r->req_id, r->req_id_len);
    j->req_id_len = r->req_id_len;
    sx_read_job_start(r, &j->base);
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

/* What a metadata read found: of a secret (its versions, or those of the deleted secret of that
 * name) or of an env's map. */
typedef struct meta_job {
    sx_read_job base; /* place: the secret or the env */
    bool map;
    /* outcome */
    sx_vault_map_head h;  /* a map's */
    sx_secrets_deleted d; /* a deleted secret's (zero otherwise) */
    int64_t created_ms;   /* a secret's */
    int64_t updated_ms;
    sx_secrets_version *list; /* malloc'd, freed in clear */
    size_t n;
} meta_job;

/* The versions of a secret, or of the deleted secret of that name when none lives: every version
 * it keeps has the delete's time as deletion_time (they were deleted together), updated_time too. */
static int secret_meta_read(meta_job *j, const sx_secrets_ctx *c)
{
    const sx_secrets_place *p = &j->base.place;
    void *raw = NULL;
    sx_secret_meta_view m;
    uint64_t rev = 0;
    int rc = sx_secrets_get(c, p, &raw, &m, &rev);
    if (rc == 0) {
        j->created_ms = m.created_ms;
        j->updated_ms = m.updated_ms;
        sx_storage_free(raw);
        rc = sx_secrets_versions(c, p, &j->list, &j->n);
    } else if (rc == -ENOENT && (rc = sx_secrets_deleted_history(c, p, &j->list, &j->n)) == 0) {
        rc = sx_secrets_deleted_get(c, p, &j->d, NULL);
        j->created_ms = j->d.created_ms;
        j->updated_ms = j->d.deleted_ms;
    }
    return rc == SX_SECRETS_ENOTDELETED ? -ENOENT : rc;
}

static int map_meta_read(meta_job *j, const sx_secrets_ctx *c)
{
    int rc = sx_vault_map_head_read(c, &j->base.place, &j->h);
    return rc == 0 && !j->h.secrets ? -ENOENT : rc;
}

static int meta_read(sx_read_job *rj, const sx_secrets_ctx *c)
{
    meta_job *j = (meta_job *)rj;
    return j->map ? map_meta_read(j, c) : secret_meta_read(j, c);
}

static void meta_answer(sx_read_job *rj)
{
    meta_job *j = (meta_job *)rj;
    sx_request *r = rj->base.r;
    int rc = rj->rc;
    if (rc != 0) {
        if (rc != -ENOENT && rc != SX_SECRETS_ENOVALUE && rc != -EBADMSG)
            sx_log(SX_LOG_WARN, "reading vault metadata failed: %s", sx_storage_strerror(rc));
        sx_send_failure(r, SX_ERR_SECRET, rc, NULL);
        return;
    }
    yajl_gen g = sx_json_gen_thread();
    if (j->map) {
        meta_head(r, g, j->h.created_ms, j->h.updated_ms, j->h.version, j->h.version);
        if (j->h.values)
            version_entry(g, j->h.version, j->h.value_ms, 0, false);
        meta_send(r, g);
        return;
    }
    uint32_t current = 0, oldest = 0;
    for (size_t i = 0; i < j->n; i++) {
        if (j->list[i].state == SX_SECRETS_VERSION_CURRENT)
            current = j->list[i].version;
        if (!oldest || j->list[i].version < oldest)
            oldest = j->list[i].version;
    }
    meta_head(r, g, j->created_ms, j->updated_ms, current, oldest);
    for (size_t i = j->n; i-- > 0;) /* oldest first, as Vault lists them */
        version_entry(g, j->list[i].version, j->list[i].created_ms, j->d.deleted_ms,
                      j->list[i].state == SX_SECRETS_VERSION_DESTROYED);
    meta_send(r, g);
}

static void meta_clear(sx_read_job *rj)
{
    free(((meta_job *)rj)->list);
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
    meta_job *j = sx_read_job_new(r, sizeof(*j), &vp.place, meta_read, meta_answer, meta_clear);
    if (!j)
        return;
    j->map = vp.depth == SX_VAULT_AT_ENV;
    sx_read_job_start(r, &j->base);
}
