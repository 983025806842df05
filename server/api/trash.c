/*
 * trash.c - deleted secrets, kept for [secrets] recovery_window after a DELETE:
 *   GET    /{o}/{p}/envs/{env}/deleted-secrets                 the list (secrets:read)
 *   POST   /{o}/{p}/envs/{env}/deleted-secrets/{name}/restore  bring one back (secrets:set-value)
 *   DELETE /{o}/{p}/envs/{env}/deleted-secrets/{name}          destroy one now (secrets:set-value)
 * Never a value: the list tells names, times and how many versions each keeps.
 */
#include "server/api/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/* ---- the list ------------------------------------------------------------------------------------ */

typedef struct list_job {
    sx_api_job base;
    sx_secrets_place env;
    sx_secrets_deleted *list;
    size_t n;
    int rc;
} list_job;

static void list_work(sx_job *job)
{
    list_job *j = (list_job *)job;
    sx_secrets_ctx c;
    sx_api_secrets_ctx_pool(j->base.server, &c);
    j->rc = sx_secrets_deleted_list(&c, &j->env, &j->list, &j->n);
}

static void list_done(sx_job *job)
{
    list_job *j = (list_job *)job;
    sx_request *r = j->base.r;
    if (j->rc != 0) {
        sx_log(SX_LOG_WARN, "listing the deleted secrets of an environment failed: %s", sx_storage_strerror(j->rc));
        sx_send_failure(r, SX_ERR_SECRET, j->rc, NULL);
        return;
    }
    yajl_gen g = sx_json_gen_thread();
    char ts[32];
    yajl_gen_array_open(g);
    for (size_t i = 0; i < j->n; i++) {
        yajl_gen_map_open(g);
        sx_json_kv(g, "name", j->list[i].name);
        sx_time_format(j->list[i].deleted_ms, ts, sizeof(ts));
        sx_json_kv(g, "deletedAt", ts);
        sx_time_format(j->list[i].purge_ms, ts, sizeof(ts));
        sx_json_kv(g, "purgeAt", ts);
        sx_json_str(g, "versions");
        yajl_gen_integer(g, j->list[i].versions);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}

static void list_release(sx_job *job)
{
    free(((list_job *)job)->list);
    sx_api_job_free(job);
}

void sx_api_deleted_list(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_READ, &p))
        return;
    list_job *j = sx_api_job_new(r, sizeof(*j), list_work, list_done, list_release);
    if (!j)
        return;
    j->env = p;
    sx_request_submit(r, &j->base.super);
}

/* ---- restore ------------------------------------------------------------------------------------- */

static int restore_apply(sx_write_job *j, const sx_secrets_ctx *c)
{
    return sx_secrets_restore(c, &j->place, &j->meta, &j->rev);
}

static void restore_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, restore_apply, 200);
}

static void restore_done(sx_job *job)
{
    sx_write_job *j = (sx_write_job *)job;
    if (sx_write_job_failed(j))
        return;
    sx_request *r = j->base.r;
    sx_api_etag(r, j->rev);
    size_t namelen = strlen(j->place.name);
    h2o_iovec_t body;
    body.base = h2o_mem_alloc_pool(&r->req->pool, sx_secret_json_max(namelen, j->meta.description_len));
    body.len = sx_secret_json_write(body.base, j->place.name, namelen, &j->meta);
    sx_send_json_pooled(r, 200, body);
}

void sx_api_restore(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_SET_VALUE, &p))
        return;
    sx_write_job *j = sx_write_job_new(r, sizeof(sx_write_job), &p, restore_work, restore_done, sx_write_job_release);
    if (j)
        sx_write_job_submit(r, j);
}

/* ---- purge --------------------------------------------------------------------------------------- */

static int purge_apply(sx_write_job *j, const sx_secrets_ctx *c)
{
    return sx_secrets_purge(c, &j->place);
}

static void purge_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, purge_apply, 200);
}

static void purge_done(sx_job *job)
{
    sx_write_job *j = (sx_write_job *)job;
    if (sx_write_job_failed(j))
        return;
    yajl_gen g = sx_json_gen_thread();
    yajl_gen_map_open(g);
    sx_json_str(g, "purged");
    yajl_gen_bool(g, 1);
    sx_json_kv(g, "name", j->place.name);
    yajl_gen_map_close(g);
    sx_send_json_pooled(j->base.r, 200, sx_json_gen_thread_finish(g, &j->base.r->req->pool));
}

void sx_api_purge(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_SET_VALUE, &p))
        return;
    sx_write_job *j = sx_write_job_new(r, sizeof(sx_write_job), &p, purge_work, purge_done, sx_write_job_release);
    if (j)
        sx_write_job_submit(r, j);
}
