/*
 * vault_kv.c - the data/ routes of the Vault KV v2 surface:
 *
 *   GET             /v1/{mount}/data/PROJECT/ENV        the env's values as one map (secrets:reveal)
 *   GET             /v1/{mount}/data/PROJECT/ENV/NAME   {"value": ...} (?version=N: that version)
 *   POST, PUT       /v1/{mount}/data/PROJECT/ENV        replace the map: keys given are created and set,
 *                                                       the env's other secrets deleted
 *   POST, PUT       /v1/{mount}/data/PROJECT/ENV/NAME   {"data": {"value": ...}}: set (create) it
 *   PATCH           the same paths                      merge (application/merge-patch+json): a key
 *                                                       with null is deleted, others set
 *
 * Permissions are those of our own routes for what a write may do, decided from the body before
 * anything is read: every write needs secrets:write (it may create or delete a name; checked
 * before the body is parsed, so a caller without it learns nothing from the body's errors), and a
 * write that gives a value needs secrets:set-value too (only owners have both).
 *
 * Check-and-set (options.cas): on a secret, the version of its current value (0 = no value or no
 * secret) must equal cas, checked in the same transaction as the write (a write that raced it is
 * refused). On a map, cas must equal the map's version (vault.h: the sum of its values' versions;
 * 0 = no value) when the write starts - what hvac's patch() and other read-modify-write
 * clients send back. It is checked before the map's secrets are written one by one, so it catches
 * every write that came before the check but not one that lands between two of the map's writes;
 * for a strict check-and-set write PROJECT/ENV/NAME. A mismatch is Vault's 400 "check-and-set
 * parameter did not match the current version".
 *
 * A map write is one transaction per secret, applied in the body's order and then the deletions:
 * when one fails, the ones before it stay applied (the answer is the failure). A value equal to the
 * current one is not written again, so rewriting a map does not push each secret's history out of
 * [secrets] max_versions.
 *
 * Reads are read jobs (api.h): the permission is checked on the loop, and the read runs inline or,
 * when the store's reads are slow (PostgreSQL), on the worker pool, so a loop never waits for it.
 *
 * Plaintext: a read's answer is written into wiped memory of the read job's pool, which the request
 * takes over and wipes when it ends (values.c), and leaves after its audit line; a write's values
 * are copied from the parsed body (wiped at once) into the job's malloc'd buffers, wiped when the
 * job is released; a map write compares with each current value decrypted into a wiped buffer.
 */
#include "server/api/vault.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

static const char cas_mismatch[] = "check-and-set parameter did not match the current version";

/* ---- reads --------------------------------------------------------------------------------------- */

/* ?version=N: 0 (absent, or 0: the current one), -1 when malformed (answered 400). */
static int64_t version_query(sx_request *r)
{
    h2o_iovec_t v;
    if (!sx_vault_query(r, "version", &v) || (v.len == 1 && v.base[0] == '0'))
        return 0;
    uint32_t n = 0;
    if (!sx_api_version_parse(v.base, v.len, &n)) {
        sx_send_error(r, 400, "invalid_request", "query parameter \"version\" must be a version number");
        return -1;
    }
    return n;
}

/* The current (asked 0) or asked version of p: its blob, number and createdAt. A concurrent write
 * may move the current version into the history or prune it: read again. */
static int reveal_one(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t asked, void **ret_blob,
                      size_t *ret_len, uint32_t *ret_version, int64_t *ret_created_ms)
{
    uint64_t rev = 0;
    if (asked) {
        *ret_version = asked;
        return sx_secrets_reveal_version(c, p, asked, ret_blob, ret_len, &rev, ret_created_ms);
    }
    int rc = SX_SECRETS_ECONTENTION;
    for (int attempt = 0; attempt < 4 && rc == SX_SECRETS_ECONTENTION; attempt++) {
        void *raw = NULL;
        sx_secret_meta_view m;
        rc = sx_secrets_get(c, p, &raw, &m, &rev);
        if (rc != 0)
            return rc == -ENOENT ? SX_SECRETS_ENOVALUE : rc;
        uint32_t version = m.has_value ? m.version : 0;
        sx_storage_free(raw);
        if (!version)
            return SX_SECRETS_ENOVALUE;
        rc = sx_secrets_reveal_version(c, p, version, ret_blob, ret_len, &rev, ret_created_ms);
        if (rc == SX_SECRETS_ENOVERSION)
            rc = SX_SECRETS_ECONTENTION;
        *ret_version = version;
    }
    return rc;
}

/*
 * A data read (a read job: inline on the loop, or on the worker pool when the store's reads are
 * slow). read() writes the whole answer - the envelope's head, copied from the request on the loop,
 * and the values - into wiped memory of the job's pool; answer() sends it once the audit allows.
 */
typedef struct kv_read_job {
    sx_read_job base; /* place: the env (a map) or the secret */
    bool map;
    uint32_t asked;
    char head[SX_VAULT_HEAD_MAX];
    size_t head_len;
    /* outcome */
    const char *what; /* static: what was being done when rc failed */
    bool deleted;     /* rc SX_SECRETS_ENOVALUE: the secret was deleted, d says how */
    sx_secrets_deleted d;
} kv_read_job;

/* A read of a deleted secret (no live one of the name; asked 0, or the version it was deleted at)?
 * Then j->d says how, and answer() sends Vault's 404 of a deleted version. */
static bool read_deleted(kv_read_job *j, const sx_secrets_ctx *c)
{
    void *raw = NULL;
    sx_secret_meta_view m;
    uint64_t rev = 0;
    const sx_secrets_place *p = &j->base.place;
    int rc = sx_secrets_get(c, p, &raw, &m, &rev);
    sx_storage_free(raw);
    if (rc != -ENOENT || sx_secrets_deleted_get(c, p, &j->d, NULL) != 0 || !j->d.version ||
        (j->asked && j->asked != j->d.version))
        return false;
    return true;
}

static int read_secret(kv_read_job *j, const sx_secrets_ctx *c)
{
    const sx_secrets_place *p = &j->base.place;
    void *blob = NULL;
    size_t blen = 0;
    uint32_t version = 0;
    int64_t created_ms = 0;
    j->what = "revealing a secret";
    int rc = reveal_one(c, p, j->asked, &blob, &blen, &version, &created_ms);
    if (rc == -ENOENT || rc == SX_SECRETS_ENOVERSION)
        rc = SX_SECRETS_ENOVALUE; /* Vault's 404, nothing to log */
    if (rc == SX_SECRETS_ENOVALUE)
        j->deleted = read_deleted(j, c);
    if (rc != 0)
        return rc;
    sx_wiped_out o = {.pool = j->base.pool};
    sx_wiped_reserve(&o, SX_VAULT_HEAD_MAX + 32 + SX_CRYPTO_VALUE_PLAIN_LEN(blen));
    sx_wiped_lit(&o, j->head, j->head_len);
    sx_wiped_lit(&o, "{\"data\":{\"value\":\"", 18);
    if ((rc = sx_wiped_value(&o, c, p, version, blob, blen)) != 0) {
        j->what = "reading a data key";
        return rc;
    }
    sx_wiped_reserve(&o, SX_VAULT_META_MAX + sizeof(SX_VAULT_TAIL) + 32);
    sx_wiped_lit(&o, "\"},\"metadata\":", 14);
    o.len += sx_vault_version_meta_text(o.buf + o.len, created_ms, version);
    sx_wiped_lit(&o, "}", 1);
    sx_wiped_lit(&o, SX_VAULT_TAIL, sizeof(SX_VAULT_TAIL) - 1);
    j->base.body = h2o_iovec_init(o.buf, o.len);
    return 0;
}

static int read_map(kv_read_job *j, const sx_secrets_ctx *c)
{
    const sx_secrets_place *p = &j->base.place;
    sx_vault_map_head h;
    j->what = "reading values";
    int rc = sx_vault_map_head_read(c, p, &h);
    if (rc == 0 && !h.values)
        rc = SX_SECRETS_ENOVALUE;
    if (rc != 0)
        return rc;
    sx_wiped_out o = {.pool = j->base.pool};
    sx_wiped_reserve(&o, SX_VAULT_HEAD_MAX + 16);
    sx_wiped_lit(&o, j->head, j->head_len);
    sx_wiped_lit(&o, "{\"data\":", 8);
    if ((rc = sx_api_values_write(c, p, &o, NULL)) != 0)
        return rc;
    sx_wiped_reserve(&o, SX_VAULT_META_MAX + sizeof(SX_VAULT_TAIL) + 32);
    sx_wiped_lit(&o, ",\"metadata\":", 12);
    o.len += sx_vault_version_meta_text(o.buf + o.len, h.value_ms, h.version);
    sx_wiped_lit(&o, "}", 1);
    sx_wiped_lit(&o, SX_VAULT_TAIL, sizeof(SX_VAULT_TAIL) - 1);
    j->base.body = h2o_iovec_init(o.buf, o.len);
    return 0;
}

static int kv_read(sx_read_job *rj, const sx_secrets_ctx *c)
{
    kv_read_job *j = (kv_read_job *)rj;
    return j->map ? read_map(j, c) : read_secret(j, c);
}

/* Vault's 404 of a deleted version, {"data": {"data": null, "metadata": {..., "deletion_time"}}},
 * from which clients learn that undelete can bring it back. */
static void send_deleted(sx_request *r, const sx_secrets_deleted *d)
{
    char ts[SX_TIME_SIZE];
    yajl_gen g = sx_json_gen_thread();
    sx_vault_envelope_open(r, g, r->server->config->vault_lease_duration);
    yajl_gen_map_open(g);
    sx_json_kv(g, "data", NULL);
    sx_json_str(g, "metadata");
    yajl_gen_map_open(g);
    sx_time_format(d->value_created_ms, ts, sizeof(ts));
    sx_json_kv(g, "created_time", ts);
    sx_json_kv(g, "custom_metadata", NULL);
    sx_time_format(d->deleted_ms, ts, sizeof(ts));
    sx_json_kv(g, "deletion_time", ts);
    sx_json_str(g, "destroyed");
    yajl_gen_bool(g, 0);
    sx_json_str(g, "version");
    yajl_gen_integer(g, d->version);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    sx_vault_envelope_close(g);
    sx_send_json_pooled(r, 404, sx_json_gen_thread_finish(g, &r->req->pool));
}

static void kv_read_answer(sx_read_job *rj)
{
    kv_read_job *j = (kv_read_job *)rj;
    sx_request *r = rj->base.r;
    if (rj->rc == SX_SECRETS_ENOVALUE && j->deleted)
        send_deleted(r, &j->d);
    else if (rj->rc != 0)
        sx_api_send_unreadable(r, rj->rc, j->what);
    else
        sx_api_send_revealed(r, &rj->place, NULL, rj->body);
}

void sx_api_vault_read(sx_request *r)
{
    sx_auth_token t;
    sx_vault_path vp;
    if (!sx_vault_begin(r, &t, &vp))
        return;
    if (vp.depth < SX_VAULT_AT_ENV) {
        sx_send_error(r, 404, "not_found", "no secret at this path");
        return;
    }
    if (!sx_vault_allow(r, &t, SX_AUTH_PERM_REVEAL, &vp.place))
        return;
    int64_t asked = version_query(r);
    if (asked < 0)
        return;
    if (vp.depth == SX_VAULT_AT_ENV && asked) {
        sx_send_error(r, 400, "invalid_request",
                      "query parameter \"version\" is taken on a secret's path (PROJECT/ENV/NAME), not on an env's "
                      "map");
        return;
    }
    kv_read_job *j = sx_read_job_new(r, sizeof(*j), &vp.place, kv_read, kv_read_answer, NULL);
    if (!j)
        return;
    j->map = vp.depth == SX_VAULT_AT_ENV;
    j->asked = (uint32_t)asked;
    j->head_len = sx_vault_envelope_head(r, j->head, r->server->config->vault_lease_duration);
    sx_read_job_start(r, &j->base);
}

/* ---- writes -------------------------------------------------------------------------------------- */

typedef struct kv_item {
    char name[SX_SECRETS_NAME_MAX + 1];
    uint8_t *value; /* plaintext (malloc'd, wiped in release); NULL = delete (PATCH null) */
    size_t len;
} kv_item;

typedef struct kv_write_job {
    sx_write_job w; /* place: the env (a map) or the secret */
    bool map;
    bool patch;
    bool has_cas;
    uint64_t cas;
    kv_item *items;
    size_t n;
    /* outcome */
    bool cas_mismatch;
    uint64_t version;
    int64_t created_ms;
} kv_write_job;

static bool rev_is(void *arg, uint64_t rev)
{
    return *(const uint64_t *)arg == rev;
}

/* A secret's write: check-and-set against the version of its current value, in the transaction. */
static int write_secret(kv_write_job *j, const sx_secrets_ctx *c)
{
    const sx_secrets_place *p = &j->w.place;
    const kv_item *it = &j->items[0];
    for (int attempt = 0; attempt < 16; attempt++) {
        void *raw = NULL;
        sx_secret_meta_view m;
        uint64_t rev = 0;
        int rc = sx_secrets_get(c, p, &raw, &m, &rev);
        if (rc != 0 && rc != -ENOENT)
            return rc;
        bool exists = rc == 0;
        uint32_t current = exists && m.has_value ? m.version : 0;
        sx_storage_free(raw);
        if (j->has_cas && j->cas != current) {
            j->cas_mismatch = true;
            return SX_SECRETS_EPRECONDITION;
        }
        if (j->patch && !current)
            return -ENOENT; /* a merge needs something to merge into */
        sx_secrets_cond cond = {rev_is, &rev};
        if (!it->value) {
            rc = sx_secrets_delete(c, p, &cond);
        } else {
            if (!exists) {
                sx_secret_meta made;
                rc = sx_secrets_create(c, p, NULL, 0, &made, &rev);
                if (rc == -EEXIST)
                    continue;
                if (rc != 0)
                    return rc;
            }
            sx_secret_meta meta;
            uint64_t new_rev = 0;
            rc = sx_secrets_set_value(c, p, &cond, it->value, it->len, &meta, &new_rev);
            if (rc == 0) {
                j->version = meta.version;
                j->created_ms = meta.value_created_ms;
            }
        }
        if (rc == SX_SECRETS_EPRECONDITION || rc == -ENOENT)
            continue; /* another writer got in between: check again */
        return rc;
    }
    return SX_SECRETS_ECONTENTION;
}

/* Is p's current value exactly value? Decrypted into a wiped buffer; any failure says no. */
static bool value_is(const sx_secrets_ctx *c, const sx_secrets_place *p, const uint8_t *value, size_t len)
{
    void *blob = NULL;
    size_t blen = 0, plen = 0;
    uint64_t rev = 0;
    int64_t ms = 0;
    uint32_t version = 0;
    if (sx_secrets_reveal(c, p, &blob, &blen, &rev, &ms, &version) != 0)
        return false;
    size_t cap = SX_CRYPTO_VALUE_PLAIN_LEN(blen);
    uint8_t *plain = malloc(cap ? cap : 1);
    bool same = plain && sx_secrets_value_decrypt_v(c, p, version, blob, blen, plain, cap, &plen) == 0 && plen == len &&
                (len == 0 || sodium_memcmp(plain, value, len) == 0);
    if (plain) {
        sodium_memzero(plain, cap);
        free(plain);
    }
    sx_storage_free(blob);
    return same;
}

/* One key of a map write on the secret at p (exists: the env had it when the write began). */
static int write_map_item(const sx_secrets_ctx *c, const sx_secrets_place *p, const kv_item *it, bool exists)
{
    if (!it->value) {
        int rc = exists ? sx_secrets_delete(c, p, NULL) : 0;
        return rc == -ENOENT ? 0 : rc;
    }
    if (exists && value_is(c, p, it->value, it->len))
        return 0;
    for (int attempt = 0; attempt < 16; attempt++) {
        sx_secret_meta meta;
        uint64_t rev = 0;
        int rc = sx_secrets_create(c, p, NULL, 0, &meta, &rev);
        if (rc != 0 && rc != -EEXIST)
            return rc;
        rc = sx_secrets_set_value(c, p, NULL, it->value, it->len, &meta, &rev);
        if (rc != -ENOENT) /* deleted between the create and the set: again */
            return rc;
    }
    return SX_SECRETS_ECONTENTION;
}

static int write_map(kv_write_job *j, const sx_secrets_ctx *c)
{
    sx_vault_names e = {0};
    int rc = sx_vault_names_read(c, &j->w.place, &e);
    if (rc == 0 && j->patch && e.n == 0)
        rc = -ENOENT;
    if (rc == 0 && j->has_cas && j->cas != e.version) {
        j->cas_mismatch = true;
        rc = SX_SECRETS_EPRECONDITION;
    }
    sx_secrets_place p = j->w.place;
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        bool exists = false;
        for (size_t k = 0; !exists && k < e.n; k++)
            exists = strcmp(e.names[k], j->items[i].name) == 0;
        memcpy(p.name, j->items[i].name, sizeof(p.name));
        rc = write_map_item(c, &p, &j->items[i], exists);
    }
    /* A replace deletes the env's secrets the body left out. */
    for (size_t k = 0; rc == 0 && !j->patch && k < e.n; k++) {
        bool kept = false;
        for (size_t i = 0; !kept && i < j->n; i++)
            kept = strcmp(e.names[k], j->items[i].name) == 0;
        if (kept)
            continue;
        memcpy(p.name, e.names[k], sizeof(p.name));
        rc = sx_secrets_delete(c, &p, NULL);
        if (rc == -ENOENT)
            rc = 0;
    }
    sx_vault_names_free(&e);
    sx_vault_map_head h;
    if (rc == 0 && (rc = sx_vault_map_head_read(c, &j->w.place, &h)) == 0) {
        j->version = h.version;
        j->created_ms = h.value_ms ? h.value_ms : sx_clock_wall_ms();
    }
    return rc;
}

static int kv_apply(sx_write_job *w, const sx_secrets_ctx *c)
{
    kv_write_job *j = (kv_write_job *)w;
    return j->map ? write_map(j, c) : write_secret(j, c);
}

static void kv_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, kv_apply, 200);
}

static void kv_done(sx_job *job)
{
    kv_write_job *j = (kv_write_job *)job;
    sx_request *r = j->w.base.r;
    if (j->cas_mismatch) {
        r->audit_done = true; /* the job wrote the outcome line */
        sx_send_error(r, 400, "invalid_request", cas_mismatch);
        return;
    }
    if (sx_write_job_failed(&j->w))
        return;
    yajl_gen g = sx_json_gen_thread();
    sx_vault_envelope_open(r, g, 0);
    sx_vault_version_meta(g, j->created_ms, j->version);
    sx_vault_envelope_close(g);
    sx_send_json_pooled(r, 200, sx_json_gen_thread_finish(g, &r->req->pool));
}

static void kv_release(sx_job *job)
{
    kv_write_job *j = (kv_write_job *)job;
    for (size_t i = 0; i < j->n; i++) {
        if (j->items[i].value) {
            sodium_memzero(j->items[i].value, j->items[i].len);
            free(j->items[i].value);
        }
    }
    free(j->items);
    sx_write_job_release(job);
}

static const sx_json_field kv_fields[] = {
    {"data", SX_JSON_MEMBERS, "an object of strings", true},
    {"options", SX_JSON_MEMBERS, "an object", false},
};

/* Wipe every string of the parsed body (values are plaintext). */
static void wipe_members(sx_json_value *v)
{
    for (size_t i = 0; i < v->nmembers; i++)
        if (v->members[i].str)
            sodium_memzero(v->members[i].str, v->members[i].len);
}

/* The content type of a PATCH: JSON merge patch, as Vault requires. */
static bool is_merge_patch(sx_request *r)
{
    ssize_t i = h2o_find_header(&r->req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = r->req->headers.entries[i].value;
    size_t n = 0;
    while (n < v.len && v.base[n] != ';' && v.base[n] != ' ' && v.base[n] != '\t')
        n++;
    return h2o_lcstris(v.base, n, H2O_STRLIT("application/merge-patch+json"));
}

/* options: {"cas": N} (N a whole number, 0 .. 2^53); anything else is a 400. */
static bool parse_options(sx_request *r, const sx_json_value *o, kv_write_job *j)
{
    for (size_t i = 0; i < o->nmembers; i++) {
        const sx_json_member *m = &o->members[i];
        if (m->key_len != 3 || memcmp(m->key, "cas", 3) != 0) {
            sx_send_error(r, 400, "invalid_request", "field \"options\" takes only \"cas\"");
            return false;
        }
        if (m->type == SX_JSON_NULL)
            continue;
        uint64_t v = 0;
        bool ok = m->type == SX_JSON_NUMBER && m->len >= 1 && m->len <= 16;
        for (size_t k = 0; ok && k < m->len; k++) {
            ok = m->str[k] >= '0' && m->str[k] <= '9';
            v = v * 10 + (uint64_t)(m->str[k] - '0');
        }
        if (!ok || v > (1ULL << 53)) {
            sx_send_error(r, 400, "invalid_request", "field \"options.cas\" must be a whole number (a version)");
            return false;
        }
        j->has_cas = true;
        j->cas = v;
    }
    return true;
}

/* data: the items of the write, checked against the path (a map's keys are names; a secret's only
 * key is "value") and the limits. Sends the 4xx and returns false when a rule is broken. */
static bool parse_data(sx_request *r, const sx_json_value *d, kv_write_job *j)
{
    if (!j->map && (d->nmembers != 1 || d->members[0].key_len != 5 || memcmp(d->members[0].key, "value", 5) != 0)) {
        sx_send_error(r, 400, "invalid_request",
                      "a secret's path (PROJECT/ENV/NAME) takes exactly {\"data\": {\"value\": \"...\"}}");
        return false;
    }
    j->items = calloc(d->nmembers ? d->nmembers : 1, sizeof(*j->items));
    if (!j->items) {
        sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
        return false;
    }
    for (size_t i = 0; i < d->nmembers; i++) {
        const sx_json_member *m = &d->members[i];
        if (j->map && !sx_secrets_name_valid(m->key, m->key_len)) {
            sx_send_error(r, 400, "invalid_request",
                          "every key of \"data\" must be a secret name: 1-256 characters of [A-Za-z0-9._-], not "
                          "\".\" or \"..\"");
            return false;
        }
        if (!(m->type == SX_JSON_STRING || (j->patch && m->type == SX_JSON_NULL))) {
            sx_send_error(r, 400, "invalid_request",
                          j->patch ? "every value of \"data\" must be a string, or null to delete the secret"
                                   : "every value of \"data\" must be a string (secretsd stores text values)");
            return false;
        }
        if (m->type == SX_JSON_STRING && m->len > r->server->config->max_value_bytes) {
            sx_send_error(r, 413, "payload_too_large", "a value of \"data\" is longer than max_value_bytes");
            return false;
        }
        kv_item *it = &j->items[j->n++];
        if (j->map)
            memcpy(it->name, m->key, m->key_len + 1);
        if (m->type == SX_JSON_STRING) {
            it->value = malloc(m->len ? m->len : 1);
            if (!it->value) {
                sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
                return false;
            }
            memcpy(it->value, m->str, m->len);
            it->len = m->len;
        }
    }
    return true;
}

/* What the write may do, from its body: the permissions our own routes require for it. */
static unsigned write_perms(const kv_write_job *j)
{
    unsigned perms = SX_AUTH_PERM_WRITE;
    for (size_t i = 0; i < j->n; i++)
        if (j->items[i].value)
            perms |= SX_AUTH_PERM_SET_VALUE;
    return perms;
}

void sx_api_vault_write(sx_request *r)
{
    sx_auth_token t;
    sx_vault_path vp;
    if (!sx_vault_begin_change(r, &t, &vp))
        return;
    bool patch = h2o_memis(r->req->method.base, r->req->method.len, H2O_STRLIT("PATCH"));
    if (patch && !is_merge_patch(r)) {
        sx_send_error(r, 415, "unsupported_media_type", "PATCH requires Content-Type: application/merge-patch+json");
        return;
    }
    /* Every write needs secrets:write: checked before the body is read. */
    if (!sx_vault_allow(r, &t, SX_AUTH_PERM_WRITE, &vp.place))
        return;
    sx_json_value v[2];
    if (!sx_api_parse_body(r, kv_fields, 2, v)) {
        wipe_members(&v[0]);
        return;
    }
    kv_write_job *j = (kv_write_job *)sx_write_job_new(r, sizeof(*j), &vp.place, kv_work, kv_done, kv_release);
    if (!j) {
        wipe_members(&v[0]);
        return;
    }
    j->map = vp.depth == SX_VAULT_AT_ENV;
    j->patch = patch;
    bool ok = parse_data(r, &v[0], j) && parse_options(r, &v[1], j);
    wipe_members(&v[0]);
    if (ok && !sx_vault_allow(r, &t, write_perms(j), &vp.place))
        ok = false;
    if (!ok) {
        kv_release(&j->w.base.super);
        return;
    }
    sx_write_job_submit(r, &j->w);
}
