/*
 * routes.c - the route table: every route of secretsd, its methods, the listeners that serve it,
 * its handler and its audit action. The only file that names every handler; router.c matches
 * requests against it and metrics label by its order.
 */
#include "server/api/api.h"
#include "server/api/vault.h"

/* The last field is the audit action (NULL: not audited). Route order is also the order of the
 * metrics labels. */
const sx_route sx_route_table[] = {
    {"/healthz", SX_GET, SX_ROUTE_PUBLIC | SX_ROUTE_ADMIN, sx_api_healthz, NULL},
    {"/readyz", SX_GET, SX_ROUTE_PUBLIC | SX_ROUTE_ADMIN, sx_api_readyz, NULL},
    {"/metrics", SX_GET, SX_ROUTE_ADMIN | SX_ROUTE_METRICS, sx_api_metrics, NULL},
    {"/v1/status", SX_GET, SX_ROUTE_ADMIN, sx_api_status, "admin.status"},
    {"/v1/rotations", SX_GET, SX_ROUTE_ADMIN, sx_api_rotations, "admin.rotations"},
    {"/v1/master/rotate", SX_POST, SX_ROUTE_ADMIN, sx_api_master_rotate, "master.rotate"},
    {"/v1/envs/{o}/{p}/{env}", SX_GET, SX_ROUTE_ADMIN, sx_api_env_keys, "env.keys"},
    {"/v1/envs/{o}/{p}/{env}/rotate", SX_POST, SX_ROUTE_ADMIN, sx_api_env_rotate, "env.rotate"},
    {"/v1/seal/migrate", SX_POST, SX_ROUTE_ADMIN, sx_api_seal_migrate, "seal.migrate"},
    {"/v1/seal/slots", SX_GET, SX_ROUTE_ADMIN, sx_api_seal_slots, "seal.list"},
    {"/v1/seal/slots", SX_POST, SX_ROUTE_ADMIN, sx_api_seal_slot_add, "seal.add"},
    {"/v1/seal/slots/{slot}", SX_DELETE, SX_ROUTE_ADMIN, sx_api_seal_slot_remove, "seal.remove"},
    {"/v1/seal/rekey", SX_POST, SX_ROUTE_ADMIN, sx_api_seal_rekey, "seal.rekey"},
    {"/v1/backup", SX_POST, SX_ROUTE_ADMIN, sx_api_backup, "backup.create"},
    {"/v1/audit/verify", SX_POST, SX_ROUTE_ADMIN, sx_api_audit_verify, "audit.verify"},
    {"/v1/tokens", SX_POST, SX_ROUTE_ADMIN, sx_api_token_create, "token.create"},
    {"/v1/tokens", SX_GET, SX_ROUTE_ADMIN, sx_api_token_list, "token.list"},
    {"/v1/tokens/{id}", SX_DELETE, SX_ROUTE_ADMIN, sx_api_token_revoke, "token.revoke"},
    {"/{o}/{p}/envs/{env}/secrets", SX_GET, SX_ROUTE_PUBLIC, sx_api_list, "secret.list"},
    {"/{o}/{p}/envs/{env}/secrets", SX_POST, SX_ROUTE_PUBLIC, sx_api_create, "secret.create"},
    {"/{o}/{p}/envs/{env}/secrets/{name}", SX_GET, SX_ROUTE_PUBLIC, sx_api_get, "secret.get"},
    {"/{o}/{p}/envs/{env}/secrets/{name}", SX_PUT, SX_ROUTE_PUBLIC, sx_api_update, "secret.update"},
    {"/{o}/{p}/envs/{env}/secrets/{name}", SX_DELETE, SX_ROUTE_PUBLIC, sx_api_delete, "secret.delete"},
    {"/{o}/{p}/envs/{env}/secrets/{name}/value", SX_PUT, SX_ROUTE_PUBLIC, sx_api_set_value, "secret.set_value"},
    {"/{o}/{p}/envs/{env}/secrets/{name}/value", SX_GET, SX_ROUTE_PUBLIC, sx_api_reveal, "secret.reveal"},
    {"/{o}/{p}/envs/{env}/values", SX_GET, SX_ROUTE_PUBLIC, sx_api_values, "secret.values"},
    {"/{o}/{p}/envs/{env}/secrets/{name}/versions", SX_GET, SX_ROUTE_PUBLIC, sx_api_versions, "secret.versions"},
    {"/{o}/{p}/envs/{env}/secrets/{name}/rollback", SX_POST, SX_ROUTE_PUBLIC, sx_api_rollback, "secret.rollback"},
    {"/{o}/{p}/envs/{env}/secrets/{name}/versions/{version}", SX_DELETE, SX_ROUTE_PUBLIC, sx_api_version_destroy,
     "secret.version.destroy"},
    {"/openapi.yaml", SX_GET, SX_ROUTE_PUBLIC, sx_api_openapi, NULL},
    {"/{o}/{p}/envs/{env}/deleted-secrets", SX_GET, SX_ROUTE_PUBLIC, sx_api_deleted_list, "secret.deleted_list"},
    {"/{o}/{p}/envs/{env}/deleted-secrets/{name}/restore", SX_POST, SX_ROUTE_PUBLIC, sx_api_restore, "secret.restore"},
    {"/{o}/{p}/envs/{env}/deleted-secrets/{name}", SX_DELETE, SX_ROUTE_PUBLIC, sx_api_purge, "secret.purge"},
    /* Vault KV v2 compatibility (api/vault_*.c): public listeners, when [vault] enabled */
    {"/v1/sys/health", SX_GET, SX_ROUTE_VAULT, sx_api_vault_health, NULL},
    {"/v1/sys/internal/ui/mounts/{path*}", SX_GET, SX_ROUTE_VAULT, sx_api_vault_mount, NULL},
    {"/v1/auth/token/lookup-self", SX_GET, SX_ROUTE_VAULT, sx_api_vault_lookup_self, NULL},
    {"/v1/auth/token/renew-self", SX_POST | SX_PUT, SX_ROUTE_VAULT, sx_api_vault_renew_self, NULL},
    {"/v1/{mount}/data/{path*}", SX_GET, SX_ROUTE_VAULT, sx_api_vault_read, "vault.read"},
    {"/v1/{mount}/data/{path*}", SX_POST | SX_PUT | SX_PATCH, SX_ROUTE_VAULT, sx_api_vault_write, "vault.write"},
    {"/v1/{mount}/metadata/{path*}", SX_GET | SX_LIST, SX_ROUTE_VAULT, sx_api_vault_metadata, "vault.metadata"},
    {"/v1/{mount}/data/{path*}", SX_DELETE, SX_ROUTE_VAULT, sx_api_vault_delete, "vault.delete"},
    {"/v1/{mount}/delete/{path*}", SX_POST | SX_PUT, SX_ROUTE_VAULT, sx_api_vault_delete_versions,
     "vault.delete_versions"},
    {"/v1/{mount}/undelete/{path*}", SX_POST | SX_PUT, SX_ROUTE_VAULT, sx_api_vault_undelete, "vault.undelete"},
    {"/v1/{mount}/destroy/{path*}", SX_POST | SX_PUT, SX_ROUTE_VAULT, sx_api_vault_destroy, "vault.destroy"},
    {"/v1/{mount}/metadata/{path*}", SX_DELETE, SX_ROUTE_VAULT, sx_api_vault_delete_metadata, "vault.delete_metadata"},
};

const size_t sx_route_table_len = sizeof(sx_route_table) / sizeof(sx_route_table[0]);

_Static_assert(sizeof(sx_route_table) / sizeof(sx_route_table[0]) <= SX_ROUTES_MAX, "SX_ROUTES_MAX is too small");
