/*
 * health.c - GET /healthz (the process answers) and GET /readyz (the store answers too), on the
 * TCP listeners and the admin socket. Neither is audited or authenticated.
 */
#include "server/api/api.h"

#include <errno.h>

void sx_api_healthz(sx_request *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    sx_send_json(r, 200, "OK", body, sizeof(body) - 1);
}

typedef struct readyz_job {
    sx_api_job base;
    int result;
} readyz_job;

int sx_api_storage_check(sx_server *s)
{
    /* Any answer from the store - found or not - shows it is serving. */
    void *val = NULL;
    int rc = sx_storage_get(s->storage, "s/readyz", 8, &val, NULL, NULL);
    sx_storage_free(val);
    return (rc == 0 || rc == -ENOENT) ? 0 : rc;
}

static void readyz_work(sx_job *job)
{
    readyz_job *j = (readyz_job *)job;
    j->result = sx_api_storage_check(j->base.server);
}

static void readyz_done(sx_job *job)
{
    readyz_job *j = (readyz_job *)job;
    if (j->result == 0) {
        static const char body[] = "{\"status\":\"ready\"}";
        sx_send_json(j->base.r, 200, "OK", body, sizeof(body) - 1);
    } else {
        sx_log(SX_LOG_WARN, "readiness check: storage error: %s", sx_storage_strerror(j->result));
        sx_send_failure(j->base.r, SX_ERR_READY, j->result, NULL);
    }
}

void sx_api_readyz(sx_request *r)
{
    readyz_job *j = sx_api_job_new(r, sizeof(*j), readyz_work, readyz_done, NULL);
    if (j)
        sx_request_submit(r, &j->base.super);
}
