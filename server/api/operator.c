/*
 * operator.c - the operator endpoints of the admin socket: status, key rotation, backups and the
 * check of an audit file (the seal's endpoints are seal.c's).
 *
 *   GET  /v1/status                          server, seal, master versions, rotations in progress
 *   GET  /v1/rotations                       [rotation]
 *   POST /v1/master/rotate      {"rate"?}    202 rotation | 409 rotation_in_progress
 *   POST /v1/envs/{o}/{p}/{env}/rotate {"rate"?}  202 rotation | 404 | 409
 *   GET  /v1/envs/{o}/{p}/{env}              the env's data-key versions and what uses them
 *   POST /v1/backup             {"dir"}      201 what the backup holds
 *   POST /v1/audit/verify       {"path", "rotated"?}  the verdict on an audit file
 *
 * A handler validates on the event loop and hands the work (storage scans, Argon2id, TPM calls,
 * checkpoints, reading a file) to the worker pool in a job of its own; the answer is built back on
 * the loop. Only the socket's file mode guards these routes. A passphrase for a migration crosses
 * this process in the request body (request memory, wiped as soon as it is copied) and a
 * sodium_malloc copy that the job wipes when released; it is never logged. The audit check runs
 * here because the audit MAC key never leaves the server process.
 */
#include "server/api/api.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ops/ops.h"

#define ENV_VERSIONS_MAX 64 /* data-key versions an env listing shows */

/* ---- answers ------------------------------------------------------------------------------------- */

static void gen_rotation(yajl_gen g, const sx_rotation *rot)
{
    char ts[32];
    yajl_gen_map_open(g);
    sx_json_kv(g, "kind", sx_rotation_kind_name(rot));
    if (rot->kind == SX_ROTATION_ENV) {
        sx_json_kv(g, "org", rot->org);
        sx_json_kv(g, "project", rot->project);
        sx_json_kv(g, "env", rot->env);
    }
    sx_json_kv(g, "phase", sx_rotation_phase_name(rot));
    sx_api_gen_uint(g, "from", rot->from);
    if (rot->to) {
        sx_api_gen_uint(g, "to", rot->to);
    } else {
        sx_json_str(g, "to");
        yajl_gen_null(g);
    }
    sx_api_gen_uint(g, "done", rot->done);
    sx_api_gen_uint(g, "total", rot->total);
    sx_api_gen_uint(g, "sweeps", rot->sweeps);
    sx_api_gen_uint(g, "rate", rot->rate);
    sx_time_format(rot->started_ms, ts, sizeof(ts));
    sx_json_kv(g, "startedAt", ts);
    sx_json_kv(g, "lastError", rot->last_error ? rot->last_error_msg : NULL);
    yajl_gen_map_close(g);
}

/* sx_send_json() with a status that http.c has no reason phrase for (202). */
static void send_accepted(sx_request *r, h2o_iovec_t body)
{
    h2o_req_t *req = r->req;
    sx_request_finish(r, 202);
    req->res.status = 202;
    req->res.reason = "Accepted";
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body.base, body.len);
}

/* ---- GET /v1/status ------------------------------------------------------------------------------ */

typedef struct status_job {
    sx_api_job base;
    int rc;
    sx_crypto_status *cs;
    sx_rotation *rots;
    size_t nrots;
} status_job;

static void status_work(sx_job *job)
{
    status_job *j = (status_job *)job;
    sx_server *s = j->base.server;
    j->cs = malloc(sizeof(*j->cs));
    j->rc = j->cs ? sx_crypto_status_get(s->crypto, j->cs) : -ENOMEM;
    if (j->rc == 0)
        j->rc = sx_rotor_list(s->rotor, &j->rots, &j->nrots);
}

/* The sweeper: its settings, its last run and what it counted then. */
static void gen_sweeper(yajl_gen g, sx_server *s)
{
    struct sx_sweeper *sw = __atomic_load_n(&s->sweeper, __ATOMIC_ACQUIRE);
    sx_json_str(g, "sweeper");
    if (!sw) {
        yajl_gen_null(g);
        return;
    }
    sx_sweeper_stats st;
    sx_sweeper_stats_get(sw, &st);
    char ts[32];
    yajl_gen_map_open(g);
    sx_api_gen_uint(g, "recoveryWindowSeconds", s->config->recovery_window);
    sx_api_gen_uint(g, "intervalSeconds", s->config->sweep_interval);
    sx_api_gen_uint(g, "runs", st.runs);
    sx_json_str(g, "lastRunAt");
    if (st.last_run_ms) {
        sx_time_format(st.last_run_ms, ts, sizeof(ts));
        sx_json_str(g, ts);
    } else {
        yajl_gen_null(g);
    }
    sx_api_gen_uint(g, "purged", st.purged_total);
    sx_api_gen_uint(g, "failures", st.failures);
    sx_api_gen_uint(g, "deletedSecrets", st.deleted_secrets);
    sx_api_gen_uint(g, "deletedSecretVersions", st.deleted_version_records);
    sx_api_gen_uint(g, "previousVersionRecords", st.previous_version_records);
    sx_json_str(g, "compaction");
    yajl_gen_bool(g, st.compact_supported);
    sx_api_gen_uint(g, "compactions", st.compactions);
    sx_api_gen_uint(g, "compactionFailures", st.compact_failures);
    sx_json_str(g, "compactionPending");
    yajl_gen_bool(g, st.compact_pending);
    sx_json_str(g, "lastError");
    if (st.last_error)
        sx_json_str(g, sx_storage_strerror(st.last_error));
    else
        yajl_gen_null(g);
    yajl_gen_map_close(g);
}

/* "database": where a networked store is connected, its role, reconnects, the last failover; null
 * for a store in local files or memory. */
static void gen_database(yajl_gen g, sx_server *s)
{
    sx_storage_remote rm;
    sx_json_str(g, "database");
    if (sx_storage_remote_get(s->storage, &rm) != 0) {
        yajl_gen_null(g);
        return;
    }
    yajl_gen_map_open(g);
    sx_json_kv(g, "host", rm.host);
    sx_api_gen_uint(g, "port", rm.port);
    sx_json_str(g, "connected");
    yajl_gen_bool(g, rm.connected);
    sx_json_str(g, "primary");
    if (rm.primary >= 0)
        yajl_gen_bool(g, rm.primary);
    else
        yajl_gen_null(g);
    sx_api_gen_uint(g, "reconnects", rm.reconnects);
    sx_json_str(g, "lastFailoverAt");
    if (rm.last_failover_ms) {
        char ts[32];
        sx_time_format(rm.last_failover_ms, ts, sizeof(ts));
        sx_json_str(g, ts);
    } else {
        yajl_gen_null(g);
    }
    yajl_gen_map_close(g);
}

static void status_done(sx_job *job)
{
    status_job *j = (status_job *)job;
    sx_request *r = j->base.r;
    if (j->rc < 0) {
        sx_api_send_ops_failure(r, SX_ERR_OPS, j->rc, NULL);
        return;
    }
    sx_server *s = j->base.server;
    const sx_crypto_status *cs = j->cs;
    yajl_gen g = sx_json_gen_new();
    yajl_gen_map_open(g);
    sx_json_kv(g, "status", "ok");
    sx_json_kv(g, "version", SX_VERSION);
    sx_json_kv(g, "storage", sx_storage_name(s->storage));
    sx_api_gen_uint(g, "threads", s->nthreads);
    sx_api_gen_uint(g, "pool_queued", sx_pool_queued(s->pool));
    sx_json_str(g, "requests_per_thread");
    yajl_gen_array_open(g);
    for (unsigned i = 0; i < s->nthreads; i++)
        sx_api_gen_uint(g, NULL, atomic_load_explicit(&s->threads[i].requests, memory_order_relaxed));
    yajl_gen_array_close(g);
    uint64_t al_lines, al_dropped;
    sx_access_log_stats(&al_lines, &al_dropped);
    sx_json_str(g, "accessLog");
    yajl_gen_map_open(g);
    sx_json_str(g, "enabled");
    yajl_gen_bool(g, sx_access_log_enabled());
    sx_api_gen_uint(g, "lines", al_lines);
    sx_api_gen_uint(g, "droppedLines", al_dropped);
    yajl_gen_map_close(g);
    /* A server only ever runs unsealed: without its seal it does not start. */
    sx_json_str(g, "sealed");
    yajl_gen_bool(g, 0);
    sx_json_kv(g, "seal", sx_crypto_seal_type_name(cs->seal));
    sx_json_str(g, "masterKey");
    yajl_gen_map_open(g);
    sx_api_gen_uint(g, "active", cs->active_master);
    sx_json_str(g, "versions");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < cs->n_masters; i++) {
        yajl_gen_map_open(g);
        sx_api_gen_uint(g, "version", cs->masters[i].version);
        sx_api_gen_uint(g, "dataKeys", cs->masters[i].data_keys);
        sx_json_str(g, "active");
        yajl_gen_bool(g, cs->masters[i].version == cs->active_master);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    sx_api_gen_uint(g, "dataKeys", cs->data_keys);
    sx_json_str(g, "rotations");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < j->nrots; i++)
        gen_rotation(g, &j->rots[i]);
    yajl_gen_array_close(g);
    gen_sweeper(g, s);
    gen_database(g, s);
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    sx_send_json(r, 200, NULL, body.base, body.len);
}

static void status_release(sx_job *job)
{
    status_job *j = (status_job *)job;
    free(j->cs);
    free(j->rots);
    free(j);
}

void sx_api_status(sx_request *r)
{
    status_job *j = sx_api_job_new(r, sizeof(*j), status_work, status_done, status_release);
    if (j)
        sx_request_submit(r, &j->base.super);
}

/* ---- GET /v1/rotations --------------------------------------------------------------------------- */

typedef struct rotations_job {
    sx_api_job base;
    int rc;
    sx_rotation *rots;
    size_t nrots;
} rotations_job;

static void rotations_work(sx_job *job)
{
    rotations_job *j = (rotations_job *)job;
    j->rc = sx_rotor_list(j->base.server->rotor, &j->rots, &j->nrots);
}

static void rotations_done(sx_job *job)
{
    rotations_job *j = (rotations_job *)job;
    sx_request *r = j->base.r;
    if (j->rc < 0) {
        sx_api_send_ops_failure(r, SX_ERR_OPS, j->rc, NULL);
        return;
    }
    yajl_gen g = sx_json_gen_new();
    yajl_gen_array_open(g);
    for (size_t i = 0; i < j->nrots; i++)
        gen_rotation(g, &j->rots[i]);
    yajl_gen_array_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    sx_send_json(r, 200, NULL, body.base, body.len);
}

static void rotations_release(sx_job *job)
{
    rotations_job *j = (rotations_job *)job;
    free(j->rots);
    free(j);
}

void sx_api_rotations(sx_request *r)
{
    rotations_job *j = sx_api_job_new(r, sizeof(*j), rotations_work, rotations_done, rotations_release);
    if (j)
        sx_request_submit(r, &j->base.super);
}

/* ---- POST /v1/master/rotate, POST /v1/envs/{o}/{p}/{env}/rotate ---------------------------------- */

typedef struct rotate_job {
    sx_api_job base;
    sx_secrets_place env; /* env rotations */
    uint32_t rate;
    int rc;
    sx_rotation rot;
} rotate_job;

static const sx_json_field rotate_fields[] = {
    {"rate", SX_JSON_NUMBER | SX_JSON_NULL, "an integer from 0 (unlimited) to 1000000 (items per second)", false},
};

/* Parse an optional {"rate": n} body into j->rate; sends the error and returns false when bad. */
static bool parse_rate(sx_request *r, rotate_job *j)
{
    j->rate = SX_ROTATION_DEFAULT_RATE;
    if (r->req->entity.len == 0)
        return true;
    if (!sx_require_json(r))
        return false;
    sx_json_value v[1];
    if (!sx_api_parse_body(r, rotate_fields, 1, v))
        return false;
    if (!v[0].present || v[0].is_null)
        return true;
    char *end = NULL;
    unsigned long long n = strtoull(v[0].str, &end, 10);
    if (v[0].str[0] < '0' || v[0].str[0] > '9' || *end || n > SX_ROTATION_RATE_MAX) {
        sx_send_error(r, 400, "invalid_request", "field \"rate\" must be an integer from 0 (unlimited) to 1000000");
        return false;
    }
    j->rate = (uint32_t)n;
    return true;
}

/* Start the job of a rotation whose body (an optional rate) is valid. */
static void rotate_submit(sx_request *r, void (*work)(sx_job *), void (*done)(sx_job *), bool env)
{
    rotate_job *j = sx_api_job_new(r, sizeof(*j), work, done, NULL);
    if (!j)
        return;
    if (env)
        sx_api_place_of(r, &j->env);
    if (!parse_rate(r, j)) {
        sx_api_job_free(&j->base.super);
        return;
    }
    sx_request_submit(r, &j->base.super);
}

static void master_rotate_work(sx_job *job)
{
    rotate_job *j = (rotate_job *)job;
    j->rc = sx_rotor_begin_master(j->base.server->rotor, j->rate, &j->rot);
}

static void env_rotate_work(sx_job *job)
{
    rotate_job *j = (rotate_job *)job;
    sx_crypto_place env = sx_secrets_crypto_place(&j->env);
    j->rc = sx_rotor_begin_env(j->base.server->rotor, &env, j->rate, &j->rot);
}

/* 202 with the rotation that began. */
static void send_rotation(rotate_job *j)
{
    yajl_gen g = sx_json_gen_new();
    gen_rotation(g, &j->rot);
    send_accepted(j->base.r, sx_json_gen_finish(g, &j->base.r->req->pool));
}

static void master_rotate_done(sx_job *job)
{
    rotate_job *j = (rotate_job *)job;
    if (j->rc < 0) {
        sx_api_send_ops_failure(j->base.r, SX_ERR_MASTER_ROTATE, j->rc, NULL);
        return;
    }
    sx_log(SX_LOG_INFO, "admin: master-key rotation requested (from version %u)", j->rot.from);
    send_rotation(j);
}

static void env_rotate_done(sx_job *job)
{
    rotate_job *j = (rotate_job *)job;
    if (j->rc < 0) {
        sx_api_send_ops_failure(j->base.r, SX_ERR_ENV_ROTATE, j->rc, NULL);
        return;
    }
    sx_log(SX_LOG_INFO, "admin: data-key rotation of \"%s/%s/%s\" requested (from version %u)", j->env.org,
           j->env.project, j->env.env, j->rot.from);
    send_rotation(j);
}

void sx_api_master_rotate(sx_request *r)
{
    rotate_submit(r, master_rotate_work, master_rotate_done, false);
}

void sx_api_env_rotate(sx_request *r)
{
    rotate_submit(r, env_rotate_work, env_rotate_done, true);
}

/* ---- GET /v1/envs/{o}/{p}/{env} ------------------------------------------------------------------ */

typedef struct env_keys_job {
    sx_api_job base;
    sx_secrets_place env;
    int rc;
    uint32_t active; /* 0 = none */
    sx_crypto_datakey_info vers[ENV_VERSIONS_MAX];
    uint64_t vers_values[ENV_VERSIONS_MAX];   /* current values encrypted under each */
    uint64_t vers_retained[ENV_VERSIONS_MAX]; /* retained previous versions encrypted under each */
    uint64_t vers_deleted[ENV_VERSIONS_MAX];  /* versions kept by deleted secrets under each */
    size_t nvers;
    uint64_t values, retained, deleted_versions;
    size_t deleted_secrets;
    sx_rotation rot;
    bool has_rot;
} env_keys_job;

static int count_version(void *arg, uint32_t version)
{
    env_keys_job *j = arg;
    for (size_t i = 0; i < j->nvers; i++)
        if (j->vers[i].version == version)
            j->vers_values[i]++;
    return 0;
}

static int count_retained(void *arg, uint32_t version)
{
    env_keys_job *j = arg;
    for (size_t i = 0; i < j->nvers; i++)
        if (j->vers[i].version == version)
            j->vers_retained[i]++;
    return 0;
}

static int count_deleted(void *arg, uint32_t version)
{
    env_keys_job *j = arg;
    for (size_t i = 0; i < j->nvers; i++)
        if (j->vers[i].version == version)
            j->vers_deleted[i]++;
    return 0;
}

/* Data-key versions of the env, and how many values each encrypts. */
static int env_keys(env_keys_job *j)
{
    sx_server *s = j->base.server;
    sx_crypto_place env = sx_secrets_crypto_place(&j->env);
    int rc = sx_crypto_datakey_active(s->crypto, &j->active, &env);
    if (rc == -ENOENT)
        j->active = 0;
    else if (rc < 0)
        return rc;
    if ((rc = sx_crypto_datakey_versions(s->crypto, &env, j->vers, ENV_VERSIONS_MAX, &j->nvers)) < 0)
        return rc;
    sx_secrets_ctx c;
    sx_api_secrets_ctx_pool(s, &c);
    rc = sx_secrets_value_versions(&c, &j->env, count_version, j, &j->values);
    if (rc == 0)
        rc = sx_secrets_history_versions(&c, &j->env, count_retained, j, &j->retained);
    if (rc == 0)
        rc = sx_secrets_deleted_versions(&c, &j->env, count_deleted, j, &j->deleted_versions);
    sx_secrets_deleted *list = NULL;
    if (rc == 0)
        rc = sx_secrets_deleted_list(&c, &j->env, &list, &j->deleted_secrets);
    free(list);
    return rc;
}

static void env_keys_work(sx_job *job)
{
    env_keys_job *j = (env_keys_job *)job;
    j->rc = env_keys(j);
    if (j->rc == 0 && !j->active && !j->nvers && !j->values && !j->retained && !j->deleted_secrets) {
        j->rc = -ENOENT;
        return;
    }
    if (j->rc == 0) {
        sx_crypto_place env = sx_secrets_crypto_place(&j->env);
        j->has_rot = sx_rotor_get(j->base.server->rotor, &env, &j->rot) == 0;
    }
}

static void env_keys_done(sx_job *job)
{
    env_keys_job *j = (env_keys_job *)job;
    sx_request *r = j->base.r;
    if (j->rc < 0) {
        sx_api_send_ops_failure(r, SX_ERR_ENV_KEYS, j->rc, NULL);
        return;
    }
    yajl_gen g = sx_json_gen_new();
    yajl_gen_map_open(g);
    sx_json_kv(g, "org", j->env.org);
    sx_json_kv(g, "project", j->env.project);
    sx_json_kv(g, "env", j->env.env);
    sx_json_str(g, "activeVersion");
    if (j->active)
        sx_api_gen_uint(g, NULL, j->active);
    else
        yajl_gen_null(g);
    sx_json_str(g, "dataKeys");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < j->nvers; i++) {
        yajl_gen_map_open(g);
        sx_api_gen_uint(g, "version", j->vers[i].version);
        sx_api_gen_uint(g, "masterVersion", j->vers[i].master);
        sx_api_gen_uint(g, "values", j->vers_values[i]);
        sx_api_gen_uint(g, "retainedVersions", j->vers_retained[i]);
        sx_api_gen_uint(g, "deletedSecretVersions", j->vers_deleted[i]);
        sx_json_str(g, "active");
        yajl_gen_bool(g, j->vers[i].version == j->active);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    sx_api_gen_uint(g, "values", j->values);
    sx_api_gen_uint(g, "retainedVersions", j->retained);
    sx_api_gen_uint(g, "deletedSecrets", j->deleted_secrets);
    sx_api_gen_uint(g, "deletedSecretVersions", j->deleted_versions);
    sx_json_str(g, "rotation");
    if (j->has_rot)
        gen_rotation(g, &j->rot);
    else
        yajl_gen_null(g);
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    sx_send_json(r, 200, NULL, body.base, body.len);
}

void sx_api_env_keys(sx_request *r)
{
    env_keys_job *j = sx_api_job_new(r, sizeof(*j), env_keys_work, env_keys_done, NULL);
    if (!j)
        return;
    sx_api_place_of(r, &j->env);
    sx_request_submit(r, &j->base.super);
}

/* ---- POST /v1/backup ----------------------------------------------------------------------------- */

typedef struct backup_job {
    sx_api_job base;
    char path[PATH_MAX]; /* the backup's directory */
    int rc;
    char err[512];
    sx_backup_info backup;
} backup_job;

static void backup_work(sx_job *job)
{
    backup_job *j = (backup_job *)job;
    sx_server *s = j->base.server;
    j->rc = sx_backup_create(s->storage, s->crypto, j->path, &j->backup, j->err, sizeof(j->err));
}

static void backup_done(sx_job *job)
{
    backup_job *j = (backup_job *)job;
    sx_request *r = j->base.r;
    if (j->rc < 0) {
        sx_api_send_ops_failure(r, SX_ERR_BACKUP, j->rc, j->err);
        return;
    }
    const sx_backup_info *b = &j->backup;
    char ts[32], manifest[PATH_MAX + 32];
    yajl_gen g = sx_json_gen_new();
    yajl_gen_map_open(g);
    sx_json_kv(g, "dir", j->path);
    snprintf(manifest, sizeof(manifest), "%s/%s", j->path, SX_BACKUP_MANIFEST);
    sx_json_kv(g, "manifest", manifest);
    sx_time_format(b->created_ms, ts, sizeof(ts));
    sx_json_kv(g, "createdAt", ts);
    sx_json_kv(g, "backend", b->backend);
    sx_json_kv(g, "seal", b->seal);
    sx_api_gen_uint(g, "activeMasterVersion", b->active_master);
    sx_api_gen_uint(g, "files", b->files);
    sx_api_gen_uint(g, "bytes", b->bytes);
    sx_json_str(g, "records");
    yajl_gen_map_open(g);
    sx_api_gen_uint(g, "secrets", b->secrets);
    sx_api_gen_uint(g, "values", b->values);
    sx_api_gen_uint(g, "envs", b->envs);
    sx_api_gen_uint(g, "dataKeys", b->data_keys);
    sx_api_gen_uint(g, "tokens", b->tokens);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    sx_log(SX_LOG_INFO, "admin: backup written to \"%s\" (%llu files, %llu bytes)", j->path,
           (unsigned long long)j->backup.files, (unsigned long long)j->backup.bytes);
    sx_send_json(r, 201, NULL, body.base, body.len);
}

static const sx_json_field backup_fields[] = {
    {"dir", SX_JSON_STRING, "an absolute path", true},
};

void sx_api_backup(sx_request *r)
{
    if (!sx_require_json(r))
        return;
    sx_json_value v[1];
    if (!sx_api_parse_body(r, backup_fields, 1, v))
        return;
    backup_job *j = sx_api_job_new(r, sizeof(*j), backup_work, backup_done, NULL);
    if (!j)
        return;
    if (!sx_json_copy_string(j->path, sizeof(j->path) - 64, &v[0]) || j->path[0] != '/') {
        sx_api_job_free(&j->base.super);
        sx_send_error(r, 400, "invalid_request", "field \"dir\" must be an absolute path");
        return;
    }
    sx_request_submit(r, &j->base.super);
}

/* ---- POST /v1/audit/verify {"path": FILE, "rotated"?: bool} --------------------------------------- */

/* `secretsctl audit verify FILE` asks the server to check an audit file (sx_audit_verify reads it
 * on a worker-pool thread); the answer names the first bad line and why, or says OK. */
typedef struct verify_job {
    sx_api_job base;
    sx_audit *audit;
    bool rotated;
    char *path;
    int rc;
    sx_audit_report rep;
} verify_job;

static void verify_work(sx_job *job)
{
    verify_job *j = (verify_job *)job;
    j->rc = sx_audit_verify(j->audit, j->path, j->rotated, &j->rep);
}

static void verify_done(sx_job *job)
{
    verify_job *j = (verify_job *)job;
    sx_request *r = j->base.r;
    if (j->rc != 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot read the audit file: %s", strerror(-j->rc));
        sx_send_failure(r, SX_ERR_AUDIT_VERIFY, j->rc, msg);
        return;
    }
    yajl_gen g = sx_json_gen_thread();
    yajl_gen_map_open(g);
    sx_json_str(g, "ok");
    yajl_gen_bool(g, j->rep.ok);
    sx_api_gen_uint(g, "lines", j->rep.lines);
    sx_api_gen_uint(g, "firstSeq", j->rep.first_seq);
    sx_api_gen_uint(g, "lastSeq", j->rep.last_seq);
    sx_api_gen_uint(g, "headSeq", j->rep.head_seq);
    if (j->rep.bad_line) {
        sx_api_gen_uint(g, "badLine", j->rep.bad_line);
    } else {
        sx_json_str(g, "badLine");
        yajl_gen_null(g);
    }
    sx_json_kv(g, "reason", j->rep.reason);
    if (j->rep.node[0]) {
        sx_json_kv(g, "node", j->rep.node);
    } else {
        sx_json_str(g, "node");
        yajl_gen_null(g);
    }
    yajl_gen_map_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}

static void verify_release(sx_job *job)
{
    verify_job *j = (verify_job *)job;
    free(j->path);
    free(j);
}

static const sx_json_field verify_fields[] = {
    {"path", SX_JSON_STRING, "an absolute file path", true},
    {"rotated", SX_JSON_BOOL, "true or false", false},
};

void sx_api_audit_verify(sx_request *r)
{
    if (!r->server->audit) {
        sx_send_error(r, 409, "audit_off", "the audit log is off ([log] audit_log is not set)");
        return;
    }
    if (!sx_require_json(r))
        return;
    sx_json_value v[2];
    if (!sx_api_parse_body(r, verify_fields, 2, v))
        return;
    if (v[0].len == 0 || v[0].len > 4096 || v[0].str[0] != '/' || memchr(v[0].str, '\0', v[0].len)) {
        sx_send_error(r, 400, "invalid_request", "field \"path\" must be an absolute file path");
        return;
    }
    verify_job *j = sx_api_job_new(r, sizeof(*j), verify_work, verify_done, verify_release);
    if (!j)
        return;
    if (!(j->path = strdup(v[0].str))) {
        verify_release(&j->base.super);
        sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
        return;
    }
    j->audit = r->server->audit;
    j->rotated = v[1].present && v[1].boolean;
    sx_request_submit(r, &j->base.super);
}
