/*
 * ops_admin.c - the operator endpoints of the admin socket: status, key rotation, seal migration
 * and backups; and the server's side of the rotation engine (start, stop, logging its events).
 *
 *   GET  /v1/status                          server, seal, master versions, rotations in progress
 *   GET  /v1/rotations                       [rotation]
 *   POST /v1/master/rotate      {"rate"?}    202 rotation | 409 rotation_in_progress
 *   POST /v1/envs/{o}/{p}/{env}/rotate {"rate"?}  202 rotation | 404 | 409
 *   GET  /v1/envs/{o}/{p}/{env}              the env's data-key versions and what uses them
 *   POST /v1/seal/migrate       {"to", "keyFile"? | "passphrase"? "passphraseEnv"? | "tcti"? "pcrs"?}
 *   POST /v1/backup             {"dir"}      201 what the backup holds
 *
 * As in admin.c, a handler validates on the event loop and hands the work (storage scans, Argon2id,
 * TPM calls, checkpoints) to the worker pool; the answer is built back on the loop. Only the
 * socket's file mode guards these routes. A passphrase for a migration crosses this process in the
 * request body (request memory, wiped as soon as it is copied) and a sodium_malloc copy that the
 * job wipes when released; it is never logged.
 */
#include "server/api.h"
#include "server/metrics.h"
#include "ops/ops.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PASSPHRASE_MAX 1024

typedef enum ops_op {
    OPS_STATUS,
    OPS_ROTATIONS,
    OPS_MASTER_ROTATE,
    OPS_ENV_ROTATE,
    OPS_ENV_KEYS,
    OPS_SEAL_MIGRATE,
    OPS_BACKUP,
} ops_op;

typedef struct key_version {
    uint32_t version;
    uint32_t master; /* master version it is wrapped under (0 = unreadable) */
    uint64_t values; /* values encrypted under it */
} key_version;

typedef struct ops_job {
    sx_job super;
    sx_request *r;
    sx_server *server;
    ops_op op;
    /* inputs */
    char org[SX_ROTATION_NAME_MAX + 1], project[SX_ROTATION_NAME_MAX + 1], env[SX_ROTATION_NAME_MAX + 1];
    uint32_t rate;
    sx_crypto_seal_options seal;
    char *passphrase;    /* sodium_malloc */
    char path[PATH_MAX]; /* keyFile or backup dir */
    char tcti[256], pcrs[128], passphrase_env[128];
    /* results */
    int status;
    const char *code;
    char message[512];
    sx_crypto_status *cs;
    sx_rotation *rots;
    size_t nrots;
    sx_rotation rot;
    bool has_rot;
    uint32_t active; /* env keys */
    key_version vers[64];
    size_t nvers;
    uint64_t values;
    sx_backup_info backup;
} ops_job;

static void set_error(ops_job *j, int status, const char *code, const char *fmt, const char *arg)
{
    j->status = status;
    j->code = code;
    snprintf(j->message, sizeof(j->message), fmt, arg);
}

static void storage_error(ops_job *j, int rc)
{
    set_error(j, rc == -EBADMSG || rc == SX_CRYPTO_EFORMAT ? 500 : 503,
              rc == -EBADMSG || rc == SX_CRYPTO_EFORMAT ? "internal" : "unavailable", "%s", sx_crypto_strerror(rc));
}

/* ---- work (pool threads) -------------------------------------------------------------------------- */

/* Data-key versions of the env, and how many values each encrypts. */
static int env_keys(ops_job *j)
{
    sx_storage *st = j->server->storage;
    sx_crypto_place env = {j->org, j->project, j->env, NULL};
    int rc = sx_crypto_datakey_active(j->server->crypto, &j->active, &env);
    if (rc == -ENOENT)
        j->active = 0;
    else if (rc < 0)
        return rc;
    char prefix[256];
    size_t pl = (size_t)snprintf(prefix, sizeof(prefix), "d/%s/%s/%s/", j->org, j->project, j->env);
    sx_storage_iter *it;
    if ((rc = sx_storage_iter_new(st, prefix, pl, NULL, 0, 0, &it)) < 0)
        return rc;
    const void *k, *v;
    size_t kl, vl;
    while (j->nvers < 64 && (rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL)) == 0) {
        char hex[9] = {0};
        if (kl != pl + 8)
            continue;
        memcpy(hex, (const char *)k + pl, 8);
        key_version *kv = &j->vers[j->nvers++];
        memset(kv, 0, sizeof(*kv));
        kv->version = (uint32_t)strtoul(hex, NULL, 16);
        const uint8_t *b = v;
        /* crypto/FORMAT.md, wrapped data key: fmt byte, be32 master version, ... (77 bytes) */
        if (vl == 77 && b[0] == 1)
            kv->master = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
    }
    sx_storage_iter_free(it);
    if (rc < 0)
        return rc;
    pl = (size_t)snprintf(prefix, sizeof(prefix), "v/%s/%s/%s/", j->org, j->project, j->env);
    if ((rc = sx_storage_iter_new(st, prefix, pl, NULL, 0, 0, &it)) < 0)
        return rc;
    while ((rc = sx_storage_iter_next(it, NULL, NULL, &v, &vl, NULL)) == 0) {
        uint32_t ver;
        j->values++;
        if (sx_crypto_value_version(&ver, v, vl) < 0)
            continue;
        for (size_t i = 0; i < j->nvers; i++)
            if (j->vers[i].version == ver)
                j->vers[i].values++;
    }
    sx_storage_iter_free(it);
    return rc < 0 ? rc : 0;
}

static void work_seal_migrate(ops_job *j)
{
    struct stat sb;
    if (j->seal.type == SX_CRYPTO_SEAL_FILE && lstat(j->path, &sb) == 0) {
        set_error(j, 409, "already_exists",
                  "\"%.300s\" exists: a migration to a file seal creates a new key file, so name one that does not "
                  "exist yet",
                  j->path);
        return;
    }
    char err[512] = "";
    int rc = sx_crypto_reseal(j->server->crypto, &j->seal, err, sizeof(err));
    if (rc == 0) {
        j->status = 200;
        return;
    }
    int status = 500;
    const char *code = "internal";
    if (rc == -ENOTSUP || rc == -EINVAL || rc == -ENOENT || rc == -EACCES || rc == -ENOTDIR ||
        rc == SX_CRYPTO_EKEYPERM || rc == -ENAMETOOLONG) {
        status = 400;
        code = "invalid_request";
    } else if (rc == SX_CRYPTO_ENOTPM || rc == SX_CRYPTO_ELOCKOUT || rc == SX_CRYPTO_ETPM) {
        status = 503;
        code = "unavailable";
    } else if (rc == SX_STORAGE_ECONDITION) {
        status = 409;
        code = "conflict";
    }
    set_error(j, status, code, "%s", err[0] ? err : sx_crypto_strerror(rc));
}

static void ops_work(sx_job *job)
{
    ops_job *j = (ops_job *)job;
    sx_server *s = j->server;
    sx_crypto_place env = {j->org, j->project, j->env, NULL};
    int rc = 0;
    j->status = 200;
    switch (j->op) {
    case OPS_STATUS:
        j->cs = malloc(sizeof(*j->cs));
        rc = j->cs ? sx_crypto_status_get(s->crypto, j->cs) : -ENOMEM;
        if (rc == 0)
            rc = sx_rotor_list(s->rotor, &j->rots, &j->nrots);
        break;
    case OPS_ROTATIONS:
        rc = sx_rotor_list(s->rotor, &j->rots, &j->nrots);
        break;
    case OPS_MASTER_ROTATE:
    case OPS_ENV_ROTATE:
        rc = j->op == OPS_MASTER_ROTATE ? sx_rotor_begin_master(s->rotor, j->rate, &j->rot)
                                        : sx_rotor_begin_env(s->rotor, &env, j->rate, &j->rot);
        j->has_rot = rc == 0 || rc == -EBUSY;
        if (rc == -EBUSY) {
            set_error(j, 409, "rotation_in_progress", "%s",
                      j->op == OPS_MASTER_ROTATE ? "a master-key rotation is in progress already; see GET /v1/status"
                                                 : "this environment's data key is being rotated already");
            return;
        }
        if (rc == -ENOENT) {
            set_error(j, 404, "not_found", "%s",
                      "this environment has no data key: no value was ever set in it, so there is nothing to rotate");
            return;
        }
        j->status = 202;
        break;
    case OPS_ENV_KEYS:
        rc = env_keys(j);
        if (rc == 0 && !j->active && !j->nvers && !j->values) {
            set_error(j, 404, "not_found", "%s", "this environment has no data key and no values");
            return;
        }
        if (rc == 0)
            j->has_rot = sx_rotor_get(s->rotor, &env, &j->rot) == 0;
        break;
    case OPS_SEAL_MIGRATE:
        work_seal_migrate(j);
        return;
    case OPS_BACKUP: {
        char err[512] = "";
        rc = sx_backup_create(s->storage, s->crypto, j->path, &j->backup, err, sizeof(err));
        if (rc == -EEXIST)
            set_error(j, 409, "already_exists", "%s", err);
        else if (rc == -ENOTSUP || rc == -EINVAL || rc == -ENOENT || rc == -EACCES || rc == -ENOTDIR)
            set_error(j, 400, "invalid_request", "%s", err);
        else if (rc < 0)
            set_error(j, 500, "internal", "%s", err);
        else
            j->status = 201;
        return;
    }
    }
    if (rc < 0)
        storage_error(j, rc);
}

/* ---- answers (loop thread) ----------------------------------------------------------------------- */

static void gen_uint(yajl_gen g, const char *key, uint64_t v)
{
    char num[24];
    if (key)
        sx_json_str(g, key);
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    yajl_gen_number(g, num, (size_t)n);
}

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
    gen_uint(g, "from", rot->from);
    if (rot->to) {
        gen_uint(g, "to", rot->to);
    } else {
        sx_json_str(g, "to");
        yajl_gen_null(g);
    }
    gen_uint(g, "done", rot->done);
    gen_uint(g, "total", rot->total);
    gen_uint(g, "sweeps", rot->sweeps);
    gen_uint(g, "rate", rot->rate);
    sx_time_format(rot->started_ms, ts, sizeof(ts));
    sx_json_kv(g, "startedAt", ts);
    sx_json_kv(g, "lastError", rot->last_error ? rot->last_error_msg : NULL);
    yajl_gen_map_close(g);
}

static const char *seal_name(sx_crypto_seal_type t)
{
    return t == SX_CRYPTO_SEAL_FILE ? "file" : t == SX_CRYPTO_SEAL_PASSPHRASE ? "passphrase" : "tpm";
}

static void gen_status(yajl_gen g, ops_job *j)
{
    sx_server *s = j->server;
    const sx_crypto_status *cs = j->cs;
    sx_json_kv(g, "status", "ok");
    sx_json_kv(g, "version", SX_VERSION);
    sx_json_kv(g, "storage", sx_storage_name(s->storage));
    gen_uint(g, "threads", s->nthreads);
    gen_uint(g, "pool_queued", sx_pool_queued(s->pool));
    sx_json_str(g, "requests_per_thread");
    yajl_gen_array_open(g);
    for (unsigned i = 0; i < s->nthreads; i++)
        gen_uint(g, NULL, atomic_load_explicit(&s->threads[i].requests, memory_order_relaxed));
    yajl_gen_array_close(g);
    /* A server only ever runs unsealed: without its seal it does not start. */
    sx_json_str(g, "sealed");
    yajl_gen_bool(g, 0);
    sx_json_kv(g, "seal", seal_name(cs->seal));
    sx_json_str(g, "masterKey");
    yajl_gen_map_open(g);
    gen_uint(g, "active", cs->active_master);
    sx_json_str(g, "versions");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < cs->n_masters; i++) {
        yajl_gen_map_open(g);
        gen_uint(g, "version", cs->masters[i].version);
        gen_uint(g, "dataKeys", cs->masters[i].data_keys);
        sx_json_str(g, "active");
        yajl_gen_bool(g, cs->masters[i].version == cs->active_master);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    gen_uint(g, "dataKeys", cs->data_keys);
}

static void gen_env_keys(yajl_gen g, ops_job *j)
{
    sx_json_kv(g, "org", j->org);
    sx_json_kv(g, "project", j->project);
    sx_json_kv(g, "env", j->env);
    sx_json_str(g, "activeVersion");
    if (j->active)
        gen_uint(g, NULL, j->active);
    else
        yajl_gen_null(g);
    sx_json_str(g, "dataKeys");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < j->nvers; i++) {
        yajl_gen_map_open(g);
        gen_uint(g, "version", j->vers[i].version);
        gen_uint(g, "masterVersion", j->vers[i].master);
        gen_uint(g, "values", j->vers[i].values);
        sx_json_str(g, "active");
        yajl_gen_bool(g, j->vers[i].version == j->active);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    gen_uint(g, "values", j->values);
    sx_json_str(g, "rotation");
    if (j->has_rot)
        gen_rotation(g, &j->rot);
    else
        yajl_gen_null(g);
}

static void gen_seal_config(yajl_gen g, ops_job *j)
{
    const sx_config *cfg = j->server->config;
    char num[32];
    sx_json_kv(g, "seal", seal_name(j->seal.type));
    sx_json_str(g, "config"); /* the [seal] lines for the next start */
    yajl_gen_map_open(g);
    sx_json_kv(g, "type", seal_name(j->seal.type));
    switch (j->seal.type) {
    case SX_CRYPTO_SEAL_FILE:
        sx_json_kv(g, "key_file", j->path);
        break;
    case SX_CRYPTO_SEAL_PASSPHRASE:
        sx_json_kv(g, "passphrase_env", j->passphrase_env[0] ? j->passphrase_env : cfg->seal_passphrase_env);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)j->seal.pwhash_opslimit);
        sx_json_kv(g, "pwhash_opslimit", num);
        snprintf(num, sizeof(num), "%zu", j->seal.pwhash_memlimit);
        sx_json_kv(g, "pwhash_memlimit", num);
        break;
    case SX_CRYPTO_SEAL_TPM:
        sx_json_kv(g, "tcti", j->tcti);
        sx_json_kv(g, "pcrs", j->pcrs[0] ? j->pcrs : "none");
        break;
    }
    yajl_gen_map_close(g);
}

static void gen_backup(yajl_gen g, ops_job *j)
{
    const sx_backup_info *b = &j->backup;
    char ts[32], manifest[PATH_MAX + 32];
    sx_json_kv(g, "dir", j->path);
    snprintf(manifest, sizeof(manifest), "%s/%s", j->path, SX_BACKUP_MANIFEST);
    sx_json_kv(g, "manifest", manifest);
    sx_time_format(b->created_ms, ts, sizeof(ts));
    sx_json_kv(g, "createdAt", ts);
    sx_json_kv(g, "backend", b->backend);
    sx_json_kv(g, "seal", b->seal);
    gen_uint(g, "activeMasterVersion", b->active_master);
    gen_uint(g, "files", b->files);
    gen_uint(g, "bytes", b->bytes);
    sx_json_str(g, "records");
    yajl_gen_map_open(g);
    gen_uint(g, "secrets", b->secrets);
    gen_uint(g, "values", b->values);
    gen_uint(g, "envs", b->envs);
    gen_uint(g, "dataKeys", b->data_keys);
    gen_uint(g, "tokens", b->tokens);
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

static void ops_done(sx_job *job)
{
    ops_job *j = (ops_job *)job;
    sx_request *r = j->r;
    if (j->status >= 400) {
        if (j->status >= 500)
            sx_log(SX_LOG_WARN, "admin: %s", j->message);
        sx_send_error(r, j->status, j->code, j->message);
        return;
    }
    yajl_gen g = sx_json_gen_new();
    if (j->op == OPS_ROTATIONS || j->op == OPS_MASTER_ROTATE || j->op == OPS_ENV_ROTATE) {
        if (j->op == OPS_ROTATIONS) {
            yajl_gen_array_open(g);
            for (size_t i = 0; i < j->nrots; i++)
                gen_rotation(g, &j->rots[i]);
            yajl_gen_array_close(g);
        } else {
            gen_rotation(g, &j->rot);
        }
    } else {
        yajl_gen_map_open(g);
        if (j->op == OPS_STATUS) {
            gen_status(g, j);
            sx_json_str(g, "rotations");
            yajl_gen_array_open(g);
            for (size_t i = 0; i < j->nrots; i++)
                gen_rotation(g, &j->rots[i]);
            yajl_gen_array_close(g);
        } else if (j->op == OPS_ENV_KEYS) {
            gen_env_keys(g, j);
        } else if (j->op == OPS_SEAL_MIGRATE) {
            gen_seal_config(g, j);
        } else {
            gen_backup(g, j);
        }
        yajl_gen_map_close(g);
    }
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    switch (j->op) {
    case OPS_MASTER_ROTATE:
        sx_log(SX_LOG_INFO, "admin: master-key rotation requested (from version %u)", j->rot.from);
        break;
    case OPS_ENV_ROTATE:
        sx_log(SX_LOG_INFO, "admin: data-key rotation of \"%s/%s/%s\" requested (from version %u)", j->org, j->project,
               j->env, j->rot.from);
        break;
    case OPS_SEAL_MIGRATE:
        sx_log(SX_LOG_INFO, "admin: keyring re-sealed under a %s seal; the previous seal no longer opens it",
               seal_name(j->seal.type));
        break;
    case OPS_BACKUP:
        sx_log(SX_LOG_INFO, "admin: backup written to \"%s\" (%llu files, %llu bytes)", j->path,
               (unsigned long long)j->backup.files, (unsigned long long)j->backup.bytes);
        break;
    default:
        break;
    }
    if (j->status == 202)
        send_accepted(r, body);
    else
        sx_send_json(r, j->status, NULL, body.base, body.len);
}

static void ops_release(sx_job *job)
{
    ops_job *j = (ops_job *)job;
    if (j->passphrase)
        sodium_free(j->passphrase); /* wipes it */
    free(j->cs);
    free(j->rots);
    free(j);
}

static ops_job *new_job(sx_request *r, ops_op op)
{
    ops_job *j = calloc(1, sizeof(*j));
    if (!j) {
        sx_send_error(r, 503, "unavailable", "out of memory");
        return NULL;
    }
    j->r = r;
    j->server = r->server;
    j->op = op;
    j->rate = SX_ROTATION_DEFAULT_RATE;
    j->super.work = ops_work;
    j->super.done = ops_done;
    j->super.release = ops_release;
    return j;
}

static void copy_param(char *dst, size_t cap, h2o_iovec_t v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(dst, v.base, n);
    dst[n] = '\0';
}

/* ---- handlers (loop thread) ------------------------------------------------------------------------ */

void sx_ops_status(sx_request *r)
{
    ops_job *j = new_job(r, OPS_STATUS);
    if (j)
        sx_request_submit(r, &j->super);
}

void sx_ops_rotations(sx_request *r)
{
    ops_job *j = new_job(r, OPS_ROTATIONS);
    if (j)
        sx_request_submit(r, &j->super);
}

static const sx_json_field rotate_fields[] = {
    {"rate", SX_JSON_NUMBER | SX_JSON_NULL, "an integer from 0 (unlimited) to 1000000 (items per second)", false},
};

/* Parse an optional {"rate": n} body into j->rate; sends the error and returns false when bad. */
static bool parse_rate(sx_request *r, ops_job *j)
{
    if (r->req->entity.len == 0)
        return true;
    if (!sx_require_json(r))
        return false;
    sx_json_value v[1];
    char err[256];
    int rc =
        sx_json_parse(&r->req->pool, r->req->entity.base, r->req->entity.len, rotate_fields, 1, v, err, sizeof(err));
    if (rc != 0) {
        sx_send_error(r, 400, rc == SX_JSON_EINVALID ? "invalid_json" : "invalid_request", err);
        return false;
    }
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

void sx_ops_master_rotate(sx_request *r)
{
    ops_job *j = new_job(r, OPS_MASTER_ROTATE);
    if (!j)
        return;
    if (!parse_rate(r, j)) {
        ops_release(&j->super);
        return;
    }
    sx_request_submit(r, &j->super);
}

static ops_job *env_job(sx_request *r, ops_op op)
{
    ops_job *j = new_job(r, op);
    if (!j)
        return NULL;
    copy_param(j->org, sizeof(j->org), r->params[0]);
    copy_param(j->project, sizeof(j->project), r->params[1]);
    copy_param(j->env, sizeof(j->env), r->params[2]);
    return j;
}

void sx_ops_env_rotate(sx_request *r)
{
    ops_job *j = env_job(r, OPS_ENV_ROTATE);
    if (!j)
        return;
    if (!parse_rate(r, j)) {
        ops_release(&j->super);
        return;
    }
    sx_request_submit(r, &j->super);
}

void sx_ops_env_keys(sx_request *r)
{
    ops_job *j = env_job(r, OPS_ENV_KEYS);
    if (j)
        sx_request_submit(r, &j->super);
}

static const sx_json_field migrate_fields[] = {
    {"to", SX_JSON_STRING, "\"file\", \"passphrase\" or \"tpm\"", true},
    {"keyFile", SX_JSON_STRING, "an absolute path", false},
    {"passphrase", SX_JSON_STRING, "a non-empty string", false},
    {"passphraseEnv", SX_JSON_STRING, "the name of an environment variable", false},
    {"tcti", SX_JSON_STRING, "a TCTI string such as device:/dev/tpmrm0", false},
    {"pcrs", SX_JSON_STRING, "a PCR list such as sha256:7,14 or none", false},
};

/* Copy a string field without NUL bytes into dst; false when too long. */
static bool copy_field(char *dst, size_t cap, const sx_json_value *v)
{
    if (!v->present)
        return true;
    if (v->len >= cap || strlen(v->str) != v->len)
        return false;
    memcpy(dst, v->str, v->len + 1);
    return true;
}

static const char *check_migrate(ops_job *j, sx_json_value *v)
{
    const sx_config *cfg = j->server->config;
    const char *to = v[0].str;
    bool any_file = v[1].present, any_pass = v[2].present || v[3].present, any_tpm = v[4].present || v[5].present;
    if (strcmp(to, "file") == 0) {
        j->seal.type = SX_CRYPTO_SEAL_FILE;
        if (any_pass || any_tpm)
            return "a migration to a file seal takes only \"keyFile\"";
        if (!v[1].present || !copy_field(j->path, sizeof(j->path), &v[1]) || j->path[0] != '/')
            return "field \"keyFile\" must be the absolute path of the new key file";
        j->seal.key_file = j->path;
    } else if (strcmp(to, "passphrase") == 0) {
        j->seal.type = SX_CRYPTO_SEAL_PASSPHRASE;
        if (any_file || any_tpm)
            return "a migration to a passphrase seal takes only \"passphrase\" and \"passphraseEnv\"";
        if (!v[2].present || v[2].len == 0 || v[2].len > PASSPHRASE_MAX)
            return "field \"passphrase\" must be 1-1024 bytes";
        if (!copy_field(j->passphrase_env, sizeof(j->passphrase_env), &v[3]))
            return "field \"passphraseEnv\" is too long";
        if (!(j->passphrase = sodium_malloc(v[2].len + 1)))
            return "out of memory";
        memcpy(j->passphrase, v[2].str, v[2].len);
        j->seal.passphrase = j->passphrase;
        j->seal.passphrase_len = v[2].len;
        j->seal.pwhash_opslimit = cfg->seal_pwhash_opslimit;
        j->seal.pwhash_memlimit = cfg->seal_pwhash_memlimit;
    } else if (strcmp(to, "tpm") == 0) {
        j->seal.type = SX_CRYPTO_SEAL_TPM;
        if (any_file || any_pass)
            return "a migration to a TPM seal takes only \"tcti\" and \"pcrs\"";
        snprintf(j->tcti, sizeof(j->tcti), "%s", cfg->seal_tcti ? cfg->seal_tcti : "device:/dev/tpmrm0");
        if (!copy_field(j->tcti, sizeof(j->tcti), &v[4]) || !j->tcti[0])
            return "field \"tcti\" must be a TCTI string of at most 255 bytes";
        if (!copy_field(j->pcrs, sizeof(j->pcrs), &v[5]) || sx_config_parse_pcrs(j->pcrs, &j->seal.pcrs) != 0)
            return "field \"pcrs\" must be a PCR list such as sha256:7,14 (PCRs 0-23) or none";
        j->seal.tcti = j->tcti;
    } else {
        return "field \"to\" must be \"file\", \"passphrase\" or \"tpm\"";
    }
    return NULL;
}

void sx_ops_seal_migrate(sx_request *r)
{
    if (!sx_require_json(r))
        return;
    sx_json_value v[6];
    char err[256];
    int rc =
        sx_json_parse(&r->req->pool, r->req->entity.base, r->req->entity.len, migrate_fields, 6, v, err, sizeof(err));
    /* The raw body may hold a passphrase; the parsed fields are copies in the request pool. */
    sodium_memzero(r->req->entity.base, r->req->entity.len);
    if (rc != 0) {
        if (v[2].present && v[2].str)
            sodium_memzero(v[2].str, v[2].len);
        sx_send_error(r, 400, rc == SX_JSON_EINVALID ? "invalid_json" : "invalid_request", err);
        return;
    }
    ops_job *j = new_job(r, OPS_SEAL_MIGRATE);
    const char *bad = j ? check_migrate(j, v) : NULL;
    if (v[2].present) /* the parsed passphrase in request memory: the job has its own copy */
        sodium_memzero(v[2].str, v[2].len);
    if (!j)
        return;
    if (bad) {
        ops_release(&j->super);
        sx_send_error(r, 400, "invalid_request", bad);
        return;
    }
    sx_request_submit(r, &j->super);
}

static const sx_json_field backup_fields[] = {
    {"dir", SX_JSON_STRING, "an absolute path", true},
};

void sx_ops_backup(sx_request *r)
{
    if (!sx_require_json(r))
        return;
    sx_json_value v[1];
    char err[256];
    int rc =
        sx_json_parse(&r->req->pool, r->req->entity.base, r->req->entity.len, backup_fields, 1, v, err, sizeof(err));
    if (rc != 0) {
        sx_send_error(r, 400, rc == SX_JSON_EINVALID ? "invalid_json" : "invalid_request", err);
        return;
    }
    ops_job *j = new_job(r, OPS_BACKUP);
    if (!j)
        return;
    if (!copy_field(j->path, sizeof(j->path) - 64, &v[0]) || j->path[0] != '/') {
        ops_release(&j->super);
        sx_send_error(r, 400, "invalid_request", "field \"dir\" must be an absolute path");
        return;
    }
    sx_request_submit(r, &j->super);
}

/* ---- the rotation engine's life in the server --------------------------------------------------------- */

static void on_rotor_event(void *ctx, const sx_rotation *rot, const char *what, int code)
{
    (void)ctx;
    char subject[320], versions[48];
    if (rot->to)
        snprintf(versions, sizeof(versions), "version %u -> %u", rot->from, rot->to);
    else
        snprintf(versions, sizeof(versions), "from version %u", rot->from);
    if (rot->kind == SX_ROTATION_MASTER)
        snprintf(subject, sizeof(subject), "master-key rotation (%s)", versions);
    else
        snprintf(subject, sizeof(subject), "data-key rotation of \"%s/%s/%s\" (%s)", rot->org, rot->project, rot->env,
                 versions);
    if (code)
        sx_log(SX_LOG_WARN, "%s %s at phase %s: %s; retrying", subject, what, sx_rotation_phase_name(rot),
               rot->last_error_msg[0] ? rot->last_error_msg : sx_crypto_strerror(code));
    else
        sx_log(SX_LOG_INFO, "%s %s%s", subject, what, strcmp(what, "resumed") == 0 ? " after a restart" : "");
}

static void on_rotor_forged(void *ctx)
{
    (void)ctx;
    sx_metrics_forged_record(SX_METRICS_FORGED_ROTATION);
}

int sx_ops_init(sx_server *s, char *err, size_t errlen)
{
    sx_rotor_options opt = {.on_event = on_rotor_event, .event_ctx = s, .on_forged = on_rotor_forged};
    int rc = sx_rotor_new(&s->rotor, s->storage, s->crypto, &opt);
    if (rc != 0)
        snprintf(err, errlen, "cannot create the rotation engine: %s", strerror(-rc));
    return rc;
}

void sx_ops_start(sx_server *s)
{
    int rc = s->rotor ? sx_rotor_start(s->rotor) : -EINVAL;
    if (rc != 0)
        sx_log(SX_LOG_ERROR, "cannot start the rotation thread: %s; key rotations will not progress", strerror(-rc));
}

void sx_ops_stop(sx_server *s)
{
    sx_rotor_stop(s->rotor);
}

void sx_ops_free(sx_server *s)
{
    sx_rotor_free(s->rotor);
    s->rotor = NULL;
}
