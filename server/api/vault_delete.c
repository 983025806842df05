/*
 * vault_delete.c - the deletes of the Vault KV v2 surface, mapped onto our soft delete (deleted
 * secrets), restore, version destroy and purge, with the permissions of those routes:
 *
 *   DELETE     /v1/{mount}/data/{path}       soft delete: the secret (or every secret of an env's
 *                                            map) moves to the deleted secrets     secrets:write
 *   POST, PUT  /v1/{mount}/delete/{path}     {"versions": [...]}: the same, when the versions
 *                                            name the current one                  secrets:write
 *   POST, PUT  /v1/{mount}/undelete/{path}   {"versions": [...]}: restore the deleted secret
 *                                                                                  secrets:set-value
 *   POST, PUT  /v1/{mount}/destroy/{path}    {"versions": [...]}: destroy previous versions
 *                                                                                  secrets:set-value
 *   DELETE     /v1/{mount}/metadata/{path}   every version gone: soft delete, then purge (of a
 *                                            map: of every secret of the env, deleted ones too)
 *                                                                  secrets:write + secrets:set-value
 *
 * Success is Vault's 204. Vault keeps one line of versions per path and marks each version
 * deleted or destroyed; we keep a secret (its current version and its history) or a deleted
 * secret (all of them together). So:
 *  - a delete hides every version, not only the latest (they come back together with undelete);
 *  - a delete/ that lists only previous versions, which we cannot hide one by one, is a 400;
 *  - undelete restores the deleted secret when the versions name the version it was deleted at;
 *  - destroy refuses the current version (400): write a new version first, or delete the metadata.
 * As Vault does, versions that do not exist (or were destroyed already) are skipped, and a path
 * with nothing to delete, undelete or destroy answers 204 with nothing changed.
 *
 * A map (PROJECT/ENV) is one KV entry to Vault: DELETE data/ deletes all its secrets (as a write of
 * an empty map does), each restorable one by one; undelete and destroy take a secret's path.
 * Each secret is its own transaction: when one fails, the ones before it stay done.
 */
#include "server/api/vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/* Most versions one request may name (a secret keeps at most this many). */
#define VERSIONS_MAX SX_SECRETS_MAX_VERSIONS_LIMIT

typedef enum del_kind {
    DEL_LATEST = 0,   /* DELETE data/ */
    DEL_VERSIONS = 1, /* POST delete/ */
    DEL_UNDELETE = 2, /* POST undelete/ */
    DEL_DESTROY = 3,  /* POST destroy/ */
    DEL_METADATA = 4, /* DELETE metadata/ */
} del_kind;

/* What each kind needs: our own routes' permissions for the same change. */
static const unsigned del_perms[] = {
    [DEL_LATEST] = SX_AUTH_PERM_WRITE,
    [DEL_VERSIONS] = SX_AUTH_PERM_WRITE,
    [DEL_UNDELETE] = SX_AUTH_PERM_SET_VALUE,
    [DEL_DESTROY] = SX_AUTH_PERM_SET_VALUE,
    [DEL_METADATA] = SX_AUTH_PERM_WRITE | SX_AUTH_PERM_SET_VALUE,
};

typedef struct del_job {
    sx_write_job w; /* place: the secret, or the env of a map */
    del_kind kind;
    bool map;
    uint32_t *versions;
    size_t n;
    /* outcome: a 400 the job decided on (rc is then SX_JSON_ERULE, a 400 in the audit line too) */
    char refusal[256];
} del_job;

static bool listed(const del_job *j, uint64_t version)
{
    for (size_t i = 0; i < j->n; i++)
        if (j->versions[i] == version)
            return true;
    return false;
}

/* A 400 decided in the job: fmt takes one version number. */
static int refuse(del_job *j, const char *fmt, unsigned long long n)
{
    snprintf(j->refusal, sizeof(j->refusal), fmt, n);
    return SX_JSON_ERULE;
}

static bool rev_is(void *arg, uint64_t rev)
{
    return *(const uint64_t *)arg == rev;
}

/* ---- secrets ------------------------------------------------------------------------------------- */

/* Soft delete p; nothing to delete is done already (Vault's 204). */
static int delete_one(const sx_secrets_ctx *c, const sx_secrets_place *p)
{
    int rc = sx_secrets_delete(c, p, NULL);
    return rc == -ENOENT ? 0 : rc;
}

/* delete/ of a secret: the current version listed deletes the secret, in a transaction on the
 * revision that had it current; only previous versions listed is a 400 (they cannot be hidden
 * alone); none of its versions listed changes nothing. */
static int delete_versions(del_job *j, const sx_secrets_ctx *c)
{
    const sx_secrets_place *p = &j->w.place;
    for (int attempt = 0; attempt < 16; attempt++) {
        void *raw = NULL;
        sx_secret_meta_view m;
        uint64_t rev = 0;
        int rc = sx_secrets_get(c, p, &raw, &m, &rev);
        if (rc == -ENOENT)
            return 0;
        if (rc != 0)
            return rc;
        uint32_t current = m.has_value ? m.version : 0;
        sx_storage_free(raw);
        if (!current || !listed(j, current)) {
            sx_secrets_version *list = NULL;
            size_t n = 0;
            rc = sx_secrets_versions(c, p, &list, &n);
            bool previous = false;
            for (size_t i = 0; rc == 0 && i < n; i++)
                previous |= list[i].state == SX_SECRETS_VERSION_PREVIOUS && listed(j, list[i].version);
            free(list);
            if (rc != 0)
                return rc == -ENOENT ? 0 : rc;
            if (!previous)
                return 0;
            return refuse(j,
                          "secretsd deletes a secret with all its versions: list its current version (%llu) to "
                          "delete it; a previous version alone can only be destroyed (destroy/)",
                          current);
        }
        sx_secrets_cond cond = {rev_is, &rev};
        rc = sx_secrets_delete(c, p, &cond);
        if (rc == -ENOENT)
            return 0;
        if (rc != SX_SECRETS_EPRECONDITION)
            return rc;
    }
    return SX_SECRETS_ECONTENTION;
}

/* undelete/ of a secret: restore its deleted copy when the versions name the version it was
 * deleted at. */
static int undelete(del_job *j, const sx_secrets_ctx *c)
{
    const sx_secrets_place *p = &j->w.place;
    sx_secrets_deleted d;
    int rc = sx_secrets_deleted_get(c, p, &d, NULL);
    if (rc == SX_SECRETS_ENOTDELETED)
        return 0; /* nothing deleted: every version listed is live, unknown or destroyed */
    if (rc != 0)
        return rc;
    if (!d.version || !listed(j, d.version)) {
        void *raw = NULL;
        sx_secret_meta_view m;
        uint64_t rev = 0;
        rc = sx_secrets_get(c, p, &raw, &m, &rev);
        sx_storage_free(raw);
        if (rc == 0)
            return 0; /* the live secret's versions: not deleted, nothing to undelete */
        if (rc != -ENOENT)
            return rc;
        if (!d.version) {
            snprintf(j->refusal, sizeof(j->refusal),
                     "the deleted secret has no version with a value; restore it with POST "
                     "/{org}/{project}/envs/{env}/deleted-secrets/{name}/restore");
            return SX_JSON_ERULE;
        }
        return refuse(j,
                      "secretsd restores a deleted secret with all its versions: list the version it was deleted at "
                      "(%llu)",
                      d.version);
    }
    sx_secret_meta meta;
    uint64_t rev = 0;
    rc = sx_secrets_restore(c, p, &meta, &rev);
    if (rc == SX_SECRETS_ELIVE)
        return refuse(j,
                      "a secret of that name exists again (written after the delete); delete it before undeleting "
                      "version %llu",
                      d.version);
    return rc == SX_SECRETS_ENOTDELETED ? 0 : rc; /* restored or purged meanwhile */
}

/* destroy/ of a secret: every listed previous version; the current one is refused before anything
 * is destroyed. */
static int destroy(del_job *j, const sx_secrets_ctx *c)
{
    const sx_secrets_place *p = &j->w.place;
    sx_secrets_version *list = NULL;
    size_t n = 0;
    int rc = sx_secrets_versions(c, p, &list, &n);
    if (rc == -ENOENT) {
        sx_secrets_deleted d;
        rc = sx_secrets_deleted_get(c, p, &d, NULL);
        if (rc == SX_SECRETS_ENOTDELETED)
            return 0;
        if (rc != 0)
            return rc;
        return refuse(j,
                      "the secret is deleted (at version %llu): undelete it first, or delete its metadata "
                      "(DELETE metadata/) to destroy every version",
                      d.version);
    }
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (list[i].state == SX_SECRETS_VERSION_CURRENT && listed(j, list[i].version)) {
            rc = refuse(j,
                        "secretsd does not destroy a secret's current version (%llu): write a new version first, or "
                        "delete its metadata (DELETE metadata/) to destroy every version",
                        list[i].version);
            break;
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (list[i].state != SX_SECRETS_VERSION_PREVIOUS || !listed(j, list[i].version))
            continue;
        rc = sx_secrets_version_destroy(c, p, list[i].version);
        if (rc == SX_SECRETS_ENOVERSION || rc == -ENOENT)
            rc = 0; /* pruned, destroyed or deleted meanwhile */
        else if (rc == SX_SECRETS_ECURRENT)
            rc = refuse(j, "version %llu became the current version meanwhile", list[i].version);
    }
    free(list);
    return rc;
}

/* DELETE metadata/ of a secret: soft delete, then purge what the delete kept. */
static int delete_all(const sx_secrets_ctx *c, const sx_secrets_place *p)
{
    int rc = delete_one(c, p);
    if (rc == 0)
        rc = sx_secrets_purge(c, p);
    return rc == SX_SECRETS_ENOTDELETED ? 0 : rc;
}

/* ---- maps ---------------------------------------------------------------------------------------- */

/* Delete every secret of the env (all = purge them, and the env's deleted secrets too). */
static int map_delete(del_job *j, const sx_secrets_ctx *c, bool all)
{
    sx_vault_names e = {0};
    int rc = sx_vault_names_read(c, &j->w.place, &e);
    if (rc == 0 && j->kind == DEL_VERSIONS && e.n && !(e.version && listed(j, e.version)))
        rc = refuse(j,
                    "secretsd deletes an env's map with all its secrets: list the map's current version (%llu), or "
                    "name one secret (PROJECT/ENV/NAME)",
                    (unsigned long long)e.version);
    sx_secrets_place p = j->w.place;
    for (size_t i = 0; rc == 0 && i < e.n; i++) {
        memcpy(p.name, e.names[i], sizeof(p.name));
        rc = all ? delete_all(c, &p) : delete_one(c, &p);
    }
    sx_vault_names_free(&e);
    if (rc != 0 || !all)
        return rc;
    sx_secrets_deleted *list = NULL;
    size_t n = 0;
    rc = sx_secrets_deleted_list(c, &j->w.place, &list, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        memcpy(p.name, list[i].name, sizeof(p.name));
        rc = sx_secrets_purge(c, &p);
        if (rc == SX_SECRETS_ENOTDELETED)
            rc = 0;
    }
    free(list);
    return rc;
}

/* ---- the job ------------------------------------------------------------------------------------- */

static int del_apply(sx_write_job *w, const sx_secrets_ctx *c)
{
    del_job *j = (del_job *)w;
    if (j->map)
        return map_delete(j, c, j->kind == DEL_METADATA); /* undelete and destroy: refused in del_start */
    switch (j->kind) {
    case DEL_LATEST:
        return delete_one(c, &w->place);
    case DEL_VERSIONS:
        return delete_versions(j, c);
    case DEL_UNDELETE:
        return undelete(j, c);
    case DEL_DESTROY:
        return destroy(j, c);
    case DEL_METADATA:
        return delete_all(c, &w->place);
    }
    return -EINVAL;
}

static void del_work(sx_job *job)
{
    sx_write_job_run((sx_write_job *)job, del_apply, 204);
}

static void del_done(sx_job *job)
{
    del_job *j = (del_job *)job;
    sx_request *r = j->w.base.r;
    if (j->refusal[0]) {
        r->audit_done = true; /* the job wrote the outcome line */
        sx_send_error(r, 400, "invalid_request", j->refusal);
        return;
    }
    if (!sx_write_job_failed(&j->w))
        sx_send_no_content(r);
}

static void del_release(sx_job *job)
{
    free(((del_job *)job)->versions);
    sx_write_job_release(job);
}

/* ---- requests ------------------------------------------------------------------------------------ */

static const sx_json_field versions_field[] = {
    {"versions", SX_JSON_ITEMS | SX_JSON_STRING, "an array of version numbers", true},
};

static bool add_version(sx_request *r, del_job *j, const char *s, size_t len)
{
    uint32_t v = 0;
    if (!sx_api_version_parse(s, len, &v)) {
        sx_send_error(r, 400, "invalid_request", "every item of \"versions\" must be a version number (1, 2, ...)");
        return false;
    }
    if (j->n == VERSIONS_MAX) {
        char msg[64];
        snprintf(msg, sizeof(msg), "field \"versions\" names more than %u versions", VERSIONS_MAX);
        sx_send_error(r, 400, "invalid_request", msg);
        return false;
    }
    j->versions[j->n++] = v;
    return true;
}

/* {"versions": [1, 2]} (numbers or numeric strings), or "1,2" as Vault also takes it. */
static bool parse_versions(sx_request *r, del_job *j)
{
    sx_json_value v[1];
    if (!sx_api_parse_body(r, versions_field, 1, v))
        return false;
    size_t cap = v[0].nmembers ? v[0].nmembers : 1;
    for (size_t i = 0; v[0].str && i < v[0].len; i++)
        cap += v[0].str[i] == ',';
    j->versions = calloc(cap < VERSIONS_MAX ? cap : VERSIONS_MAX, sizeof(*j->versions));
    if (!j->versions) {
        sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
        return false;
    }
    for (size_t i = 0; i < v[0].nmembers; i++) {
        const sx_json_member *m = &v[0].members[i];
        if (m->type != SX_JSON_NUMBER && m->type != SX_JSON_STRING) {
            sx_send_error(r, 400, "invalid_request", "every item of \"versions\" must be a version number (1, 2, ...)");
            return false;
        }
        if (!add_version(r, j, m->str, m->len))
            return false;
    }
    for (size_t i = 0; v[0].str && v[0].len;) { /* "1,2": every item a number, none empty */
        size_t start = i;
        while (i < v[0].len && v[0].str[i] != ',')
            i++;
        if (!add_version(r, j, v[0].str + start, i - start))
            return false;
        if (i++ == v[0].len)
            break;
    }
    if (j->n == 0) {
        sx_send_error(r, 400, "invalid_request", "no version number provided");
        return false;
    }
    return true;
}

static void del_start(sx_request *r, del_kind kind)
{
    sx_auth_token t;
    sx_vault_path vp;
    if (!sx_vault_begin_change(r, &t, &vp))
        return;
    /* Checked before the body is read, as on every write. */
    if (!sx_vault_allow(r, &t, del_perms[kind], &vp.place))
        return;
    if (vp.depth == SX_VAULT_AT_ENV && (kind == DEL_UNDELETE || kind == DEL_DESTROY)) {
        sx_send_error(r, 400, "invalid_request",
                      "an env's map (PROJECT/ENV) has no versions of its own to undelete or destroy: name one secret "
                      "(PROJECT/ENV/NAME)");
        return;
    }
    del_job *j = (del_job *)sx_write_job_new(r, sizeof(*j), &vp.place, del_work, del_done, del_release);
    if (!j)
        return;
    j->kind = kind;
    j->map = vp.depth == SX_VAULT_AT_ENV;
    if ((kind == DEL_VERSIONS || kind == DEL_UNDELETE || kind == DEL_DESTROY) && !parse_versions(r, j)) {
        del_release(&j->w.base.super);
        return;
    }
    sx_write_job_submit(r, &j->w);
}

void sx_api_vault_delete(sx_request *r)
{
    del_start(r, DEL_LATEST);
}

void sx_api_vault_delete_versions(sx_request *r)
{
    del_start(r, DEL_VERSIONS);
}

void sx_api_vault_undelete(sx_request *r)
{
    del_start(r, DEL_UNDELETE);
}

void sx_api_vault_destroy(sx_request *r)
{
    del_start(r, DEL_DESTROY);
}

void sx_api_vault_delete_metadata(sx_request *r)
{
    del_start(r, DEL_METADATA);
}
