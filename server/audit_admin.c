/*
 * audit_admin.c - the audit record copies that jobs carry past the request's life (sx_audit_copy).
 * The check of an audit file, POST /v1/audit/verify, is an operator route (server/api/operator.c).
 */
#include "server/audit.h"

#include <stdio.h>

/* ---- record copies ---------------------------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void sx_audit_copy_set(sx_audit_copy *c, const sx_audit_rec *rec)
{
    c->action = rec->action;
    c->has_token = rec->token_id != NULL;
    c->has_scope = rec->scope != NULL;
    c->has_name = rec->name != NULL;
    copy_str(c->request_id, sizeof(c->request_id), rec->request_id);
    copy_str(c->token_id, sizeof(c->token_id), rec->token_id);
    copy_str(c->label, sizeof(c->label), rec->label);
    copy_str(c->role, sizeof(c->role), rec->role);
    copy_str(c->client, sizeof(c->client), rec->client);
    copy_str(c->scope, sizeof(c->scope), rec->scope);
    copy_str(c->name, sizeof(c->name), rec->name);
}

void sx_audit_copy_rec(const sx_audit_copy *c, sx_audit_rec *rec)
{
    *rec = (sx_audit_rec){
        .request_id = c->request_id,
        .token_id = c->has_token ? c->token_id : NULL,
        .label = c->has_token ? c->label : NULL,
        .role = c->has_token ? c->role : NULL,
        .client = c->client,
        .action = c->action,
        .scope = c->has_scope ? c->scope : NULL,
        .name = c->has_name ? c->name : NULL,
    };
}
