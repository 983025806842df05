/*
 * rotor_life.c - the rotation engine's and the sweeper's life in the server: created with the
 * server, their threads started once the loops run and stopped before storage closes; the
 * rotation's events logged and its forged records counted.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/api/api.h"
#include "server/metrics.h"
#include "ops/ops.h"

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

/* A deleted secret purged at the end of its recovery window: an audit line, as the purge a client
 * asks for has (no token, no request: the server did it). */
static void on_sweeper_purged(void *ctx, const sx_secrets_place *p)
{
    sx_server *s = ctx;
    if (!s->audit)
        return;
    char scope[3 * (SX_SECRETS_SCOPE_MAX + 1)];
    snprintf(scope, sizeof(scope), "%s/%s/%s", p->org, p->project, p->env);
    sx_audit_rec rec = {.action = "secret.purge", .client = "sweeper", .scope = scope, .name = p->name, .status = 200};
    sx_audit_log(s->audit, SX_AUDIT_ANY_THREAD, &rec);
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
    sx_secrets_ctx c;
    sx_api_secrets_ctx_pool(s, &c);
    struct sx_sweeper *sw = NULL;
    rc = sx_sweeper_start(&sw, &c, s->config->sweep_interval, on_sweeper_purged, s);
    if (rc != 0)
        sx_log(SX_LOG_ERROR, "cannot start the sweeper thread: %s; deleted secrets will not be purged", strerror(-rc));
    __atomic_store_n(&s->sweeper, sw, __ATOMIC_RELEASE);
}

void sx_ops_stop(sx_server *s)
{
    sx_rotor_stop(s->rotor);
}

void sx_ops_stop_sweeper(sx_server *s)
{
    struct sx_sweeper *sw = __atomic_exchange_n(&s->sweeper, NULL, __ATOMIC_ACQ_REL);
    sx_sweeper_stop(sw);
}

void sx_ops_free(sx_server *s)
{
    sx_rotor_free(s->rotor);
    s->rotor = NULL;
}
