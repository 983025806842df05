/*
 * audit_admin.c - POST /v1/audit/verify on the admin socket: `secretsctl audit verify FILE` asks
 * the server to check an audit file, since the MAC key never leaves the server process. The check
 * (sx_audit_verify, audit/audit.c) reads the file on a worker-pool thread; the answer names the first bad
 * line and why, or says OK. Only the socket's file mode guards the route, as for every admin route.
 */
#include "server/api.h"
#include "audit/audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- POST /v1/audit/verify {"path": FILE, "rotated"?: bool} (admin socket) ----------------------- */

typedef struct verify_job {
    sx_job super;
    sx_request *r;
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

static void gen_u64(yajl_gen g, const char *key, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    sx_json_str(g, key);
    yajl_gen_number(g, buf, (size_t)n);
}

static void verify_done(sx_job *job)
{
    verify_job *j = (verify_job *)job;
    if (j->rc != 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot read the audit file: %s", strerror(-j->rc));
        sx_send_error(j->r, 400, "invalid_request", msg);
        return;
    }
    yajl_gen g = sx_json_gen_thread();
    yajl_gen_map_open(g);
    sx_json_str(g, "ok");
    yajl_gen_bool(g, j->rep.ok);
    gen_u64(g, "lines", j->rep.lines);
    gen_u64(g, "firstSeq", j->rep.first_seq);
    gen_u64(g, "lastSeq", j->rep.last_seq);
    gen_u64(g, "headSeq", j->rep.head_seq);
    if (j->rep.bad_line) {
        gen_u64(g, "badLine", j->rep.bad_line);
    } else {
        sx_json_str(g, "badLine");
        yajl_gen_null(g);
    }
    sx_json_kv(g, "reason", j->rep.reason);
    yajl_gen_map_close(g);
    sx_send_json_pooled(j->r, 200, sx_json_gen_thread_finish(g, &j->r->req->pool));
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

void sx_ops_audit_verify(sx_request *r)
{
    if (!r->server->audit) {
        sx_send_error(r, 409, "audit_off", "the audit log is off ([log] audit_log is not set)");
        return;
    }
    if (!sx_require_json(r))
        return;
    sx_json_value v[2];
    char err[256];
    int rc =
        sx_json_parse(&r->req->pool, r->req->entity.base, r->req->entity.len, verify_fields, 2, v, err, sizeof(err));
    if (rc != 0) {
        sx_send_error(r, 400, rc == SX_JSON_EINVALID ? "invalid_json" : "invalid_request", err);
        return;
    }
    if (v[0].len == 0 || v[0].len > 4096 || v[0].str[0] != '/' || memchr(v[0].str, '\0', v[0].len)) {
        sx_send_error(r, 400, "invalid_request", "field \"path\" must be an absolute file path");
        return;
    }
    verify_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->path = strdup(v[0].str))) {
        free(j);
        sx_send_error(r, 503, "unavailable", "out of memory");
        return;
    }
    j->r = r;
    j->audit = r->server->audit;
    j->rotated = v[1].present && v[1].boolean;
    j->super.work = verify_work;
    j->super.done = verify_done;
    j->super.release = verify_release;
    sx_request_submit(r, &j->super);
}
