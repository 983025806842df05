/*
 * vault.h - what the files of the Vault KV v2 surface share. Existing Vault clients (hvac,
 * node-vault, the Vault CLI, Vault Agent, consul-template, the External Secrets Operator) read and
 * write a KV v2 mount with a few endpoints under /v1/; secretsd serves them on its public listeners
 * when [vault] enabled, mapped onto its own model:
 *
 *     mount                = an org ([vault] mounts aliases a mount name to an org)
 *     {mount}/PROJECT/ENV  = the env's values as one map {"NAME": "value", ...}
 *     {mount}/PROJECT/ENV/NAME = one secret: {"value": "..."}
 *
 * vault_http.c holds the shared parts (the error form, the token headers, paths, the answers'
 * envelope) and the sys/auth endpoints; vault_kv.c the data/ routes (read, write, patch);
 * vault_meta.c the metadata/ routes (versions and LIST); vault_delete.c the deletes (DELETE data/,
 * delete/, undelete/, destroy/, DELETE metadata/) mapped onto soft delete, restore, version
 * destroy and purge. Every secret is read and written through
 * secrets/, with the permissions our own routes require.
 */
#ifndef SX_SERVER_API_VAULT_H
#define SX_SERVER_API_VAULT_H

#include "server/api/api.h"

/* How deep a KV path goes below its mount. */
typedef enum sx_vault_depth {
    SX_VAULT_AT_MOUNT = 0,   /* "" */
    SX_VAULT_AT_PROJECT = 1, /* PROJECT */
    SX_VAULT_AT_ENV = 2,     /* PROJECT/ENV: the env's map */
    SX_VAULT_AT_SECRET = 3,  /* PROJECT/ENV/NAME: one secret */
} sx_vault_depth;

typedef struct sx_vault_path {
    char mount[SX_SECRETS_SCOPE_MAX + 1];
    /* org of the mount; project, env and name as far as the path goes ("" beyond it) */
    sx_secrets_place place;
    sx_vault_depth depth;
} sx_vault_path;

/* The mount and the KV path of a /v1/{mount}/{data|metadata}/{path*} request: checks every
 * segment against the rule of what it names. Sends 400 (or 404 for a path deeper than a secret)
 * and returns false when it breaks one. */
bool sx_vault_path_of(sx_request *r, h2o_iovec_t mount, h2o_iovec_t path, sx_vault_path *ret);
/* Authenticate by X-Vault-Token (or Authorization: Bearer), with the throttle of every route.
 * Sends Vault's 403 (429, 503) and returns false when it fails. */
bool sx_vault_authenticate(sx_request *r, sx_auth_token *ret_principal);
/* Check every bit of perms (SX_AUTH_PERM_*) on org/project/env of p (project or env "" = above
 * that level); sends 403 "permission denied" and returns false when one is missing. */
bool sx_vault_allow(sx_request *r, const sx_auth_token *t, unsigned perms, const sx_secrets_place *p);
/* The start of a /v1/{mount}/{data|metadata}/{path*} handler: authenticate, the path, the audit
 * line's target. Sends the error and returns false when the request may not go on. */
bool sx_vault_begin(sx_request *r, sx_auth_token *ret_principal, sx_vault_path *ret_path);
/* The same for a handler that changes a KV path (writes and deletes): the path must also name an
 * env's map or a secret (400 otherwise). */
bool sx_vault_begin_change(sx_request *r, sx_auth_token *ret_principal, sx_vault_path *ret_path);
/* The audit line's scope and name for vp (the route's parameters do not say them). */
void sx_vault_audit_target(sx_request *r, const sx_vault_path *vp);
/* The value of query parameter name ("" when given without '='); false when absent. */
bool sx_vault_query(sx_request *r, const char *name, h2o_iovec_t *ret);
/* True for a LIST request, or a GET with ?list=true. */
bool sx_vault_is_list(sx_request *r);

/* Every answer's envelope: {"request_id", "lease_id": "", "renewable": false, "lease_duration",
 * then "data": - the caller writes data's value - and the close: "wrap_info", "warnings", "auth"
 * null. */
void sx_vault_envelope_open(sx_request *r, yajl_gen g, unsigned lease_duration);
/* The same with the request's id (req_id_len bytes) copied: for a read job off the loop. */
void sx_vault_envelope_open_id(yajl_gen g, const char *req_id, size_t req_id_len, unsigned lease_duration);
void sx_vault_envelope_close(yajl_gen g);
/* The same head as text (for answers written into wiped memory): at most SX_VAULT_HEAD_MAX bytes
 * written to out, ending with "data":; returns the length. */
#define SX_VAULT_HEAD_MAX (SX_REQUEST_ID_MAX + 128)
size_t sx_vault_envelope_head(sx_request *r, char *out, unsigned lease_duration);
#define SX_VAULT_TAIL ",\"wrap_info\":null,\"warnings\":null,\"auth\":null}"

/* A KV v2 version's metadata {created_time, custom_metadata, deletion_time, destroyed, version}. */
void sx_vault_version_meta(yajl_gen g, int64_t created_ms, uint64_t version);
/* The same as text into out (at least SX_VAULT_META_MAX bytes); returns the length. */
#define SX_VAULT_META_MAX 160
size_t sx_vault_version_meta_text(char *out, int64_t created_ms, uint64_t version);

/* What a map (PROJECT/ENV) stands for as one KV v2 secret, from a walk of the env's metadata: its
 * version is the sum of the versions of its current values - every new value of any of its
 * secrets makes it higher, a deleted value lowers it (see vault_kv.c for what a check-and-set on a
 * map catches) - and its created_time when the newest of those values was written. */
typedef struct sx_vault_map_head {
    size_t secrets; /* secrets in the env, with or without a value */
    size_t values;  /* of them, those with a value */
    uint64_t version;
    int64_t value_ms;   /* when the newest current value was written */
    int64_t created_ms; /* the oldest secret's createdAt */
    int64_t updated_ms; /* the latest updatedAt */
} sx_vault_map_head;
/* 0 or a storage code (-EBADMSG). */
int sx_vault_map_head_read(const sx_secrets_ctx *c, const sx_secrets_place *env, sx_vault_map_head *ret);

/* The names of an env's secrets (a copy: the caller may write to the env while walking it), which
 * have a value, and the map's version. Zero it before the read; free it with sx_vault_names_free
 * whatever the read returned. 0, -ENOMEM or a storage code. */
typedef struct sx_vault_names {
    char (*names)[SX_SECRETS_NAME_MAX + 1];
    bool *has_value;
    size_t n, cap;
    uint64_t version;
} sx_vault_names;
int sx_vault_names_read(const sx_secrets_ctx *c, const sx_secrets_place *env, sx_vault_names *ret);
void sx_vault_names_free(sx_vault_names *e);

/* Handlers (routes.c). */
void sx_api_vault_health(sx_request *r);
void sx_api_vault_mount(sx_request *r);
void sx_api_vault_lookup_self(sx_request *r);
void sx_api_vault_renew_self(sx_request *r);
void sx_api_vault_read(sx_request *r);
void sx_api_vault_write(sx_request *r);
void sx_api_vault_metadata(sx_request *r);
/* vault_delete.c */
void sx_api_vault_delete(sx_request *r);
void sx_api_vault_delete_versions(sx_request *r);
void sx_api_vault_undelete(sx_request *r);
void sx_api_vault_destroy(sx_request *r);
void sx_api_vault_delete_metadata(sx_request *r);

#endif /* SX_SERVER_API_VAULT_H */
