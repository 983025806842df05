/*
 * versions.c - the versions of a secret's value: GET /{o}/{p}/envs/{env}/secrets/{name}/versions
 * (the list, newest first, never a value) and DELETE .../versions/{N} (destroy one previous
 * version's ciphertext). Reading one version (GET .../value?version=N) and rolling back
 * (POST .../rollback) are answers that hold or take values, in values.c.
 */
#include "server/api/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

bool sx_api_version_parse(const char *s, size_t len, uint32_t *ret_version)
{
    if (len == 0 || len > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0 || v > UINT32_MAX)
        return false;
    *ret_version = (uint32_t)v;
    return true;
}

/* ---- the list ------------------------------------------------------------------------------------ */

/* The list is read by a read job (inline, or on the worker pool when the store's reads are slow)
 * and written out on the loop. */
typedef struct versions_job {
    sx_read_job base;
    sx_secrets_version *list;
    size_t n;
} versions_job;

static int versions_read(sx_read_job *rj, const sx_secrets_ctx *c)
{
    versions_job *j = (versions_job *)rj;
    return sx_secrets_versions(c, &rj->place, &j->list, &j->n);
}

static void versions_answer(sx_read_job *rj)
{
    versions_job *j = (versions_job *)rj;
    sx_request *r = rj->base.r;
    if (rj->rc != 0) {
        if (rj->rc != -ENOENT)
            sx_log(SX_LOG_WARN, "listing the versions of a secret failed: %s", sx_storage_strerror(rj->rc));
        sx_send_failure(r, SX_ERR_SECRET, rj->rc, NULL);
        return;
    }
    static const char *const states[] = {"current", "previous", "destroyed"};
    yajl_gen g = sx_json_gen_thread();
    char ts[32];
    yajl_gen_array_open(g);
    for (size_t i = 0; i < j->n; i++) {
        yajl_gen_map_open(g);
        sx_json_str(g, "version");
        yajl_gen_integer(g, j->list[i].version);
        sx_time_format(j->list[i].created_ms, ts, sizeof(ts));
        sx_json_kv(g, "createdAt", ts);
        sx_json_kv(g, "state", states[j->list[i].state]);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}

static void versions_clear(sx_read_job *rj)
{
    free(((versions_job *)rj)->list);
}

void sx_api_versions(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_READ, &p))
        return;
    versions_job *j = sx_read_job_new(r, sizeof(*j), &p, versions_read, versions_answer, versions_clear);
    if (j)
        sx_read_job_start(r, &j->base);
}

/* ---- destroy ------------------------------------------------------------------------------------- */

typedef struct destroy_job {
    sx_write_job w;
    uint32_t version;
} destroy_job;

static int destroy_apply(sx_write_job *w, const sx_secrets_ctx *c)
{
    return sx_secrets_version_destroy(c, &w->place, ((destroy_job *)w)->version);
}

static void destroy_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, destroy_apply, 200);
}

static void destroy_done(sx_job *job)
{
    destroy_job *j = (destroy_job *)job;
    if (sx_write_job_failed(&j->w))
        return;
    yajl_gen g = sx_json_gen_thread();
    yajl_gen_map_open(g);
    sx_json_str(g, "destroyed");
    yajl_gen_bool(g, 1);
    sx_json_kv(g, "name", j->w.place.name);
    sx_json_str(g, "version");
    yajl_gen_integer(g, j->version);
    yajl_gen_map_close(g);
    sx_send_json_pooled(j->w.base.r, 200, sx_json_gen_thread_finish(g, &j->w.base.r->req->pool));
}

void sx_api_version_destroy(sx_request *r)
{
    sx_secrets_place p;
    if (!sx_api_begin(r, SX_AUTH_PERM_SET_VALUE, &p))
        return;
    uint32_t version = 0;
    if (r->nparams < 5 || !sx_api_version_parse(r->params[4].base, r->params[4].len, &version)) {
        sx_send_failure(r, SX_ERR_SECRET, SX_SECRETS_ENOVERSION, NULL);
        return;
    }
    destroy_job *j =
        (destroy_job *)sx_write_job_new(r, sizeof(destroy_job), &p, destroy_work, destroy_done, sx_write_job_release);
    if (!j)
        return;
    j->version = version;
    sx_write_job_submit(r, &j->w);
}
