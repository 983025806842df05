/*
 * seal.c - the seal's endpoints of the admin socket: the keyring's slots, seal migration, rekey.
 *
 *   GET    /v1/seal/slots                     every slot: id, type, label, created, last used, PCRs
 *   POST   /v1/seal/slots   {"type", "label"?, "keyFile"? | "passphrase"? "passphraseEnv"? |
 *                            "tcti"? "pcrs"? "pin"? "pinEnv"?}    201 the new slot
 *   DELETE /v1/seal/slots/{slot}  {"force"?}   the slot removed | 404 | 409 refused
 *   POST   /v1/seal/migrate {"to", ...the same as a new slot}     add + remove this node's slot
 *   POST   /v1/seal/rekey                     a new keyring key; the slots it could not keep
 *
 * Each change runs on the worker pool (Argon2id, TPM, storage) as one conditional batch of the
 * crypto module, so the other nodes keep serving: none needs a restart. A passphrase or PIN
 * crosses this process in the request body (request memory, wiped as soon as it is copied) and a
 * sodium_malloc copy that the job wipes when released; it is never logged. Every change and every
 * refusal writes an audit line naming the slot (scope "seal", name "slot N type") and counts in
 * secretsd_seal_slot_changes_total; no key material is ever part of an answer.
 */
#include "server/api/api.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/metrics.h"

#define PASSPHRASE_MAX 1024

/* The audit line's target: scope "seal", name "slot N type". */
static void audit_slot(sx_request *r, uint32_t id, sx_crypto_seal_type type)
{
    char name[48];
    int n = snprintf(name, sizeof(name), "slot %u %s", (unsigned)id, sx_crypto_seal_type_name(type));
    r->audit_scope = "seal";
    r->audit_name = h2o_strdup(&r->req->pool, name, (size_t)n).base;
}

/* ---- POST /v1/seal/migrate ----------------------------------------------------------------------- */

typedef struct seal_job {
    sx_api_job base;
    bool add; /* POST /v1/seal/slots (else a migration) */
    sx_crypto_seal_options seal;
    char *passphrase;    /* sodium_malloc */
    char *pin;           /* sodium_malloc */
    char path[PATH_MAX]; /* keyFile */
    char tcti[256], pcrs[128], passphrase_env[128], pin_env[128];
    char label[SX_CRYPTO_SLOT_LABEL_MAX + 1];
    uint32_t id; /* the new slot */
    int rc;
    char message[512];
} seal_job;

static void seal_work(sx_job *job)
{
    seal_job *j = (seal_job *)job;
    struct stat sb;
    if (j->seal.type == SX_CRYPTO_SEAL_FILE && lstat(j->path, &sb) == 0) {
        snprintf(j->message, sizeof(j->message),
                 "\"%.300s\" exists: a file slot creates a new key file, so name one that does not exist yet", j->path);
        j->rc = -EEXIST;
        return;
    }
    char err[512] = "";
    sx_crypto *c = j->base.server->crypto;
    if (j->add)
        j->rc = sx_crypto_slot_add(c, &j->id, &j->seal, j->label, err, sizeof(err));
    else if ((j->rc = sx_crypto_reseal(c, &j->seal, err, sizeof(err))) == 0)
        j->id = sx_crypto_slot_current(c, NULL);
    snprintf(j->message, sizeof(j->message), "%s", err[0] ? err : sx_crypto_strerror(j->rc));
}

static void seal_done(sx_job *job)
{
    seal_job *j = (seal_job *)job;
    sx_request *r = j->base.r;
    if (j->rc != 0) {
        sx_api_send_ops_failure(r, SX_ERR_SEAL_MIGRATE, j->rc, j->message);
        return;
    }
    const sx_config *cfg = j->base.server->config;
    const char *seal = sx_crypto_seal_type_name(j->seal.type);
    char num[32];
    yajl_gen g = sx_json_gen_new();
    yajl_gen_map_open(g);
    sx_json_kv(g, "seal", seal);
    sx_api_gen_uint(g, "slot", j->id);
    if (j->add)
        sx_json_kv(g, "label", j->label);
    sx_json_str(g, "config"); /* the [seal] lines for the next start */
    yajl_gen_map_open(g);
    sx_json_kv(g, "type", seal);
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
        if (j->pin)
            sx_json_kv(g, "pin_env", j->pin_env[0] ? j->pin_env : cfg->seal_pin_env);
        break;
    case SX_CRYPTO_SEAL_RECOVERY:
        break;
    }
    /* The new slot's secret is a key file or an environment variable, not the credential that
     * opened this node: the next start must not read it. */
    if (*cfg->seal_credential)
        sx_json_kv(g, "credential", "");
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    audit_slot(r, j->id, j->seal.type);
    if (j->add) {
        sx_log(SX_LOG_INFO, "admin: seal slot %u (%s) added", (unsigned)j->id, seal);
        sx_metrics_seal(SX_METRICS_SEAL_ADD);
        sx_send_json(r, 201, NULL, body.base, body.len);
    } else {
        sx_log(SX_LOG_INFO,
               "admin: keyring re-sealed into slot %u (%s); the slot this node opened with was removed and no "
               "longer opens it",
               (unsigned)j->id, seal);
        sx_metrics_seal(SX_METRICS_SEAL_MIGRATE);
        sx_send_json(r, 200, NULL, body.base, body.len);
    }
}

static void seal_release(sx_job *job)
{
    seal_job *j = (seal_job *)job;
    if (j->passphrase)
        sodium_free(j->passphrase); /* wipes it */
    if (j->pin)
        sodium_free(j->pin);
    free(j);
}

/* The fields of a new slot (a migration names its type in "to", a new slot in "type"). */
#define METHOD_FIELDS                                                                                                  \
    {"keyFile", SX_JSON_STRING, "an absolute path", false},                                                            \
        {"passphrase", SX_JSON_STRING, "a non-empty string", false},                                                   \
        {"passphraseEnv", SX_JSON_STRING, "the name of an environment variable", false},                               \
        {"tcti", SX_JSON_STRING, "a TCTI string such as device:/dev/tpmrm0", false},                                   \
        {"pcrs", SX_JSON_STRING, "a PCR list such as sha256:7,14 or none", false},                                     \
        {"pin", SX_JSON_STRING, "a PIN of 1-32 bytes", false},                                                         \
    {                                                                                                                  \
        "pinEnv", SX_JSON_STRING, "the name of an environment variable", false                                         \
    }

static const sx_json_field migrate_fields[] = {
    {"to", SX_JSON_STRING, "\"file\", \"passphrase\" or \"tpm\"", true},
    METHOD_FIELDS,
};

static const sx_json_field add_fields[] = {
    {"type", SX_JSON_STRING, "\"file\", \"passphrase\" or \"tpm\"", true},
    METHOD_FIELDS,
    {"label", SX_JSON_STRING, "at most 64 printable ASCII characters", false},
};
#define NMIGRATE (sizeof(migrate_fields) / sizeof(migrate_fields[0]))
#define NADD     (sizeof(add_fields) / sizeof(add_fields[0]))

/* Take a secret field (passphrase, PIN) into sodium_malloc memory. */
static char *take_secret(const sx_json_value *v)
{
    char *s = sodium_malloc(v->len + 1);
    if (s) {
        memcpy(s, v->str, v->len);
        s[v->len] = '\0';
    }
    return s;
}

/* Fill j->seal from the parsed fields (v[0] the type); NULL or what is wrong. */
static const char *check_method(seal_job *j, sx_json_value *v)
{
    const sx_config *cfg = j->base.server->config;
    const char *to = v[0].str;
    bool any_file = v[1].present, any_pass = v[2].present || v[3].present;
    bool any_tpm = v[4].present || v[5].present || v[6].present || v[7].present;
    if (strcmp(to, "file") == 0) {
        j->seal.type = SX_CRYPTO_SEAL_FILE;
        if (any_pass || any_tpm)
            return "a file slot takes only \"keyFile\"";
        if (!v[1].present || !sx_json_copy_string(j->path, sizeof(j->path), &v[1]) || j->path[0] != '/')
            return "field \"keyFile\" must be the absolute path of the new key file";
        j->seal.key_file = j->path;
    } else if (strcmp(to, "passphrase") == 0) {
        j->seal.type = SX_CRYPTO_SEAL_PASSPHRASE;
        if (any_file || any_tpm)
            return "a passphrase slot takes only \"passphrase\" and \"passphraseEnv\"";
        if (!v[2].present || v[2].len == 0 || v[2].len > PASSPHRASE_MAX)
            return "field \"passphrase\" must be 1-1024 bytes";
        if (!sx_json_copy_string(j->passphrase_env, sizeof(j->passphrase_env), &v[3]))
            return "field \"passphraseEnv\" is too long";
        if (!(j->passphrase = take_secret(&v[2])))
            return "out of memory";
        j->seal.passphrase = j->passphrase;
        j->seal.passphrase_len = v[2].len;
        j->seal.pwhash_opslimit = cfg->seal_pwhash_opslimit;
        j->seal.pwhash_memlimit = cfg->seal_pwhash_memlimit;
    } else if (strcmp(to, "tpm") == 0) {
        j->seal.type = SX_CRYPTO_SEAL_TPM;
        if (any_file || any_pass)
            return "a TPM slot takes only \"tcti\", \"pcrs\", \"pin\" and \"pinEnv\"";
        snprintf(j->tcti, sizeof(j->tcti), "%s", cfg->seal_tcti ? cfg->seal_tcti : "device:/dev/tpmrm0");
        if (!sx_json_copy_string(j->tcti, sizeof(j->tcti), &v[4]) || !j->tcti[0])
            return "field \"tcti\" must be a TCTI string of at most 255 bytes";
        if (!sx_json_copy_string(j->pcrs, sizeof(j->pcrs), &v[5]) || sx_config_parse_pcrs(j->pcrs, &j->seal.pcrs) != 0)
            return "field \"pcrs\" must be a PCR list such as sha256:7,14 (PCRs 0-23) or none";
        j->seal.tcti = j->tcti;
        if (v[6].present) {
            if (v[6].len == 0 || v[6].len > SX_CRYPTO_PIN_MAX)
                return "field \"pin\" must be 1-32 bytes";
            if (!sx_json_copy_string(j->pin_env, sizeof(j->pin_env), &v[7]))
                return "field \"pinEnv\" is too long";
            if (!(j->pin = take_secret(&v[6])))
                return "out of memory";
            j->seal.pin = j->pin;
            j->seal.pin_len = v[6].len;
        } else if (v[7].present) {
            return "field \"pinEnv\" names where the node finds the PIN given in \"pin\"";
        }
    } else {
        return "the slot type must be \"file\", \"passphrase\" or \"tpm\"";
    }
    return NULL;
}

/* Parse a migration's or a new slot's body into a job and submit it. */
static void seal_begin(sx_request *r, bool add)
{
    if (!sx_require_json(r))
        return;
    sx_json_value v[NADD];
    char err[256];
    int rc = sx_json_parse(&r->req->pool, r->req->entity.base, r->req->entity.len, add ? add_fields : migrate_fields,
                           add ? NADD : NMIGRATE, v, err, sizeof(err));
    /* The raw body may hold a passphrase or a PIN; the parsed fields are copies in the request pool. */
    sodium_memzero(r->req->entity.base, r->req->entity.len);
    seal_job *j = rc == 0 ? sx_api_job_new(r, sizeof(*j), seal_work, seal_done, seal_release) : NULL;
    const char *bad = NULL;
    if (j) {
        j->add = add;
        bad = check_method(j, v);
        if (!bad && add && !sx_json_copy_string(j->label, sizeof(j->label), &v[8]))
            bad = "field \"label\" must be at most 64 printable ASCII characters";
    }
    for (int i = 2; i <= 6; i += 4) /* the parsed passphrase and PIN in request memory: the job has copies */
        if (rc == 0 && v[i].present && v[i].str)
            sodium_memzero(v[i].str, v[i].len);
    if (rc != 0) {
        sx_send_failure(r, SX_ERR_ANY, rc, err);
        return;
    }
    if (!j)
        return;
    if (bad) {
        seal_release(&j->base.super);
        sx_send_error(r, 400, "invalid_request", bad);
        return;
    }
    sx_request_submit(r, &j->base.super);
}

void sx_api_seal_migrate(sx_request *r)
{
    seal_begin(r, false);
}

void sx_api_seal_slot_add(sx_request *r)
{
    seal_begin(r, true);
}

/* ---- GET /v1/seal/slots -------------------------------------------------------------------------- */

typedef struct slots_job {
    sx_api_job base;
    int rc;
    size_t n;
    sx_crypto_slot_info slots[SX_CRYPTO_MAX_SLOTS];
    sx_crypto_slot_info dropped[SX_CRYPTO_MAX_SLOTS]; /* rekey */
    size_t ndropped;
    char message[512];
} slots_job;

static void gen_time(yajl_gen g, const char *key, int64_t t)
{
    char ts[32];
    sx_json_str(g, key);
    if (!t) {
        yajl_gen_null(g);
        return;
    }
    sx_time_format(t * 1000, ts, sizeof(ts));
    sx_json_str(g, ts);
}

/* "sha256:7,14" or "none". */
static void pcr_list(char *buf, size_t cap, uint32_t pcrs)
{
    size_t n = (size_t)snprintf(buf, cap, pcrs ? "sha256:" : "none");
    for (int i = 0; i < 24 && n < cap; i++)
        if (pcrs & (1u << i))
            n += (size_t)snprintf(buf + n, cap - n, "%s%d", buf[n - 1] == ':' ? "" : ",", i);
}

static void gen_slot(yajl_gen g, const sx_crypto_slot_info *s)
{
    yajl_gen_map_open(g);
    sx_api_gen_uint(g, "id", s->id);
    sx_json_kv(g, "type", sx_crypto_seal_type_name(s->type));
    sx_json_kv(g, "label", s->label);
    gen_time(g, "created", s->created);
    gen_time(g, "lastUsed", s->last_used);
    if (s->type == SX_CRYPTO_SEAL_TPM) {
        char pcrs[96];
        pcr_list(pcrs, sizeof(pcrs), s->pcrs);
        sx_json_kv(g, "pcrs", pcrs);
        sx_json_str(g, "pin");
        yajl_gen_bool(g, s->pin);
    }
    sx_json_str(g, "current");
    yajl_gen_bool(g, s->current);
    if (s->stale) {
        sx_json_str(g, "stale");
        yajl_gen_bool(g, true);
    }
    yajl_gen_map_close(g);
}

/* key: [slot, ...] */
static void gen_slots(yajl_gen g, const char *key, const sx_crypto_slot_info *slots, size_t n)
{
    sx_json_str(g, key);
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++)
        gen_slot(g, &slots[i]);
    yajl_gen_array_close(g);
}

static void slots_work(sx_job *job)
{
    slots_job *j = (slots_job *)job;
    j->rc = sx_crypto_slot_list(j->base.server->crypto, j->slots, SX_CRYPTO_MAX_SLOTS, &j->n);
}

static void slots_done(sx_job *job)
{
    slots_job *j = (slots_job *)job;
    sx_request *r = j->base.r;
    if (j->rc < 0) {
        sx_api_send_ops_failure(r, SX_ERR_OPS, j->rc, NULL);
        return;
    }
    yajl_gen g = sx_json_gen_new();
    yajl_gen_map_open(g);
    gen_slots(g, "slots", j->slots, j->n);
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    sx_send_json(r, 200, NULL, body.base, body.len);
}

void sx_api_seal_slots(sx_request *r)
{
    slots_job *j = sx_api_job_new(r, sizeof(*j), slots_work, slots_done, NULL);
    if (j)
        sx_request_submit(r, &j->base.super);
}

/* ---- DELETE /v1/seal/slots/{slot} ------------------------------------------------------------------ */

typedef struct remove_job {
    sx_api_job base;
    uint32_t id;
    sx_crypto_seal_type type;
    bool force;
    int rc;
    char message[512];
} remove_job;

static void remove_work(sx_job *job)
{
    remove_job *j = (remove_job *)job;
    sx_crypto *c = j->base.server->crypto;
    sx_crypto_slot_info s[SX_CRYPTO_MAX_SLOTS];
    size_t n = 0;
    j->type = 0;
    if (sx_crypto_slot_list(c, s, SX_CRYPTO_MAX_SLOTS, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (s[i].id == j->id)
                j->type = s[i].type;
    char err[512] = "";
    j->rc = sx_crypto_slot_remove(c, j->id, j->force ? SX_CRYPTO_SLOT_FORCE : 0, err, sizeof(err));
    snprintf(j->message, sizeof(j->message), "%s", err[0] ? err : sx_crypto_strerror(j->rc));
}

static void remove_done(sx_job *job)
{
    remove_job *j = (remove_job *)job;
    sx_request *r = j->base.r;
    audit_slot(r, j->id, j->type);
    if (j->rc < 0) {
        if (j->rc == SX_CRYPTO_ESLOTREFUSED)
            sx_log(SX_LOG_WARN, "admin: removal of seal slot %u refused: %s", (unsigned)j->id, j->message);
        sx_api_send_ops_failure(r, SX_ERR_SEAL_SLOT, j->rc, j->message);
        return;
    }
    sx_log(SX_LOG_INFO, "admin: seal slot %u (%s) removed%s", (unsigned)j->id, sx_crypto_seal_type_name(j->type),
           j->force ? " (forced)" : "");
    sx_metrics_seal(SX_METRICS_SEAL_REMOVE);
    yajl_gen g = sx_json_gen_new();
    yajl_gen_map_open(g);
    sx_api_gen_uint(g, "removed", j->id);
    sx_json_kv(g, "type", sx_crypto_seal_type_name(j->type));
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    sx_send_json(r, 200, NULL, body.base, body.len);
}

static const sx_json_field remove_fields[] = {
    {"force", SX_JSON_BOOL, "true or false", false},
};

void sx_api_seal_slot_remove(sx_request *r)
{
    char idbuf[16], *end;
    sx_api_copy_param(idbuf, sizeof(idbuf), r->params[0]);
    unsigned long id = strtoul(idbuf, &end, 10);
    if (!idbuf[0] || *end || idbuf[0] < '0' || idbuf[0] > '9' || id > UINT32_MAX) {
        sx_send_error(r, 400, "invalid_request", "the slot id must be a number (see GET /v1/seal/slots)");
        return;
    }
    sx_json_value v[1] = {0};
    if (r->req->entity.len && !sx_api_parse_body(r, remove_fields, 1, v))
        return;
    remove_job *j = sx_api_job_new(r, sizeof(*j), remove_work, remove_done, NULL);
    if (!j)
        return;
    j->id = (uint32_t)id;
    j->force = v[0].present && v[0].boolean;
    sx_request_submit(r, &j->base.super);
}

/* ---- POST /v1/seal/rekey ------------------------------------------------------------------------- */

static void rekey_work(sx_job *job)
{
    slots_job *j = (slots_job *)job;
    char err[512] = "";
    sx_crypto *c = j->base.server->crypto;
    j->rc = sx_crypto_rekey(c, j->dropped, SX_CRYPTO_MAX_SLOTS, &j->ndropped, err, sizeof(err));
    snprintf(j->message, sizeof(j->message), "%s", err[0] ? err : sx_crypto_strerror(j->rc));
    if (j->rc == 0)
        j->rc = sx_crypto_slot_list(c, j->slots, SX_CRYPTO_MAX_SLOTS, &j->n);
}

static void rekey_done(sx_job *job)
{
    slots_job *j = (slots_job *)job;
    sx_request *r = j->base.r;
    sx_crypto_seal_type type;
    uint32_t own = sx_crypto_slot_current(j->base.server->crypto, &type);
    audit_slot(r, own, type);
    if (j->rc < 0) {
        sx_api_send_ops_failure(r, SX_ERR_SEAL_MIGRATE, j->rc, j->message);
        return;
    }
    sx_log(SX_LOG_INFO, "admin: keyring rekeyed; %zu slot(s) kept, %zu removed (they wrapped the old key)", j->n,
           j->ndropped);
    sx_metrics_seal(SX_METRICS_SEAL_REKEY);
    yajl_gen g = sx_json_gen_new();
    yajl_gen_map_open(g);
    gen_slots(g, "slots", j->slots, j->n);
    gen_slots(g, "removed", j->dropped, j->ndropped); /* to be added again with their methods */
    yajl_gen_map_close(g);
    h2o_iovec_t body = sx_json_gen_finish(g, &r->req->pool);
    sx_send_json(r, 200, NULL, body.base, body.len);
}

void sx_api_seal_rekey(sx_request *r)
{
    slots_job *j = sx_api_job_new(r, sizeof(*j), rekey_work, rekey_done, NULL);
    if (j)
        sx_request_submit(r, &j->base.super);
}
