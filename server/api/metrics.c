/*
 * metrics.c - GET /metrics in the Prometheus text format (version 0.0.4), on the admin socket and
 * on the optional [server] metrics_listen listener.
 *
 * A scrape sums every loop's counters (server/metrics.c, sx_metrics_collect); the figures that
 * need storage (key versions, rotation progress) are read on the worker pool.
 *
 * Exported families: requests by route pattern, method and status; request latency histograms by
 * route; storage operation latency histograms; worker-pool queue depth; open connections; sealed
 * state; active master key version and versions kept; rotations in progress and their progress;
 * authentication failures (401) and throttled requests (429); HTTP/2 connections closed for abuse
 * (server/guard.c); records that failed their MAC; audit log lines, drops and failures.
 */
#include "server/api/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "ops/ops.h"

static const char *const bucket_le[SX_METRICS_NBUCKETS - 1] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025",
                                                               "0.005",  "0.01",    "0.025",  "0.05",  "0.1",
                                                               "0.25",   "0.5",     "1",      "2.5"};
static const char *const storage_ops[SX_METRICS_STORAGE_NOPS] = {"get", "list", "batch"};

typedef struct out {
    char *buf;
    size_t len, cap;
    bool oom;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (o->buf && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t nc = o->cap ? o->cap * 2 : 65536;
        while (nc < o->len + (size_t)n + 1)
            nc *= 2;
        char *nb = realloc(o->buf, nc);
        if (!nb) {
            o->oom = true;
            return;
        }
        o->buf = nb;
        o->cap = nc;
    }
}

static void family(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_histogram(out *o, const char *name, const char *labels, const uint64_t *b, uint64_t sum_us)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i < SX_METRICS_NBUCKETS - 1; i++) {
        cum += b[i];
        put(o, "%s_bucket{%s,le=\"%s\"} %" PRIu64 "\n", name, labels, bucket_le[i], cum);
    }
    cum += b[SX_METRICS_NBUCKETS - 1];
    put(o, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
    put(o, "%s_sum{%s} %.6f\n", name, labels, (double)sum_us / 1e6);
    put(o, "%s_count{%s} %" PRIu64 "\n", name, labels, cum);
}

static const char *method_name(unsigned methods)
{
    return methods & SX_GET ? "GET" : methods & SX_POST ? "POST" : methods & SX_PUT ? "PUT" : "DELETE";
}

typedef struct metrics_job {
    sx_api_job base;
    int crypto_rc, rot_rc;
    sx_crypto_status cs;
    sx_rotation *rots;
    size_t nrots;
    sx_metrics_snapshot sums;
} metrics_job;

static void metrics_work(sx_job *job)
{
    metrics_job *j = (metrics_job *)job;
    sx_server *s = j->base.server;
    j->crypto_rc = sx_crypto_status_get(s->crypto, &j->cs);
    j->rot_rc = s->rotor ? sx_rotor_list(s->rotor, &j->rots, &j->nrots) : -ENOENT;
}

static void gen_requests(out *o, const sx_metrics_snapshot *m)
{
    size_t nroutes = sx_router_count();
    uint64_t auth_failures = 0, throttled = 0;
    family(o, "secretsd_http_requests_total", "counter", "Requests answered, by route pattern, method and status.");
    for (size_t rt = 0; rt <= nroutes && rt < SX_METRICS_MAX_ROUTES; rt++) {
        const sx_route *route = sx_router_at(rt);
        for (unsigned st = 0; st < SX_METRICS_NSTATUS; st++) {
            uint64_t n = m->requests[rt][st];
            if (!n)
                continue;
            int status = st < SX_METRICS_NSTATUS - 1 ? sx_metrics_status_codes[st] : 0;
            if (status == 401)
                auth_failures += n;
            if (status == 429)
                throttled += n;
            char code[8];
            if (status)
                snprintf(code, sizeof(code), "%d", status);
            else
                snprintf(code, sizeof(code), "other");
            put(o, "secretsd_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                route ? route->pattern : "none", route ? method_name(route->methods) : "", code, n);
        }
    }
    family(o, "secretsd_http_request_duration_seconds", "histogram",
           "Time from the request's arrival to its answer, by route pattern and method.");
    for (size_t rt = 0; rt <= nroutes && rt < SX_METRICS_MAX_ROUTES; rt++) {
        const sx_route *route = sx_router_at(rt);
        const sx_metrics_histogram *h = &m->latency[rt];
        uint64_t total = 0;
        for (unsigned i = 0; i < SX_METRICS_NBUCKETS; i++)
            total += h->buckets[i];
        if (!total)
            continue;
        char labels[160];
        snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\"", route ? route->pattern : "none",
                 route ? method_name(route->methods) : "");
        put_histogram(o, "secretsd_http_request_duration_seconds", labels, h->buckets, h->sum_us);
    }
    family(o, "secretsd_auth_failures_total", "counter", "Requests refused for a missing or invalid token (401).");
    put(o, "secretsd_auth_failures_total %" PRIu64 "\n", auth_failures);
    family(o, "secretsd_auth_throttled_total", "counter",
           "Requests refused by the failed-authentication throttle (429).");
    put(o, "secretsd_auth_throttled_total %" PRIu64 "\n", throttled);
    family(o, "secretsd_http2_abusive_connections_closed_total", "counter",
           "HTTP/2 connections closed for abuse: too many stream resets, control frames, or a huge header block.");
    for (unsigned i = 0; i < SX_METRICS_ABUSE_NREASONS; i++)
        put(o, "secretsd_http2_abusive_connections_closed_total{reason=\"%s\"} %" PRIu64 "\n",
            sx_metrics_abuse_reasons[i], m->abuse[i]);

    family(o, "secretsd_forged_records_total", "counter",
           "Stored records that carry authority and failed their MAC (edited in storage), by kind; all refused.");
    for (unsigned i = 0; i < SX_METRICS_FORGED_NKINDS; i++)
        put(o, "secretsd_forged_records_total{kind=\"%s\"} %" PRIu64 "\n", sx_metrics_forged_kinds[i], m->forged[i]);

    family(o, "secretsd_seal_slot_changes_total", "counter",
           "Changes of the keyring's slots made through this node, by operation.");
    for (unsigned i = 0; i < SX_METRICS_SEAL_NOPS; i++)
        put(o, "secretsd_seal_slot_changes_total{op=\"%s\"} %" PRIu64 "\n", sx_metrics_seal_ops[i], m->seal_changes[i]);
    family(o, "secretsd_keyring_unlocks_total", "counter", "Unlocks of the keyring by this process, by slot type.");
    for (unsigned i = 1; i < SX_METRICS_UNLOCK_NTYPES; i++)
        put(o, "secretsd_keyring_unlocks_total{type=\"%s\"} %" PRIu64 "\n",
            sx_crypto_seal_type_name((sx_crypto_seal_type)i), m->unlocks[i]);
    family(o, "secretsd_keyring_unlock_slot", "gauge", "The id of the slot this process unlocked the keyring with.");
    put(o, "secretsd_keyring_unlock_slot %" PRIu64 "\n", m->unlock_slot);

    family(o, "secretsd_storage_operation_duration_seconds", "histogram", "Storage operations of the API, by kind.");
    for (unsigned op = 0; op < SX_METRICS_STORAGE_NOPS; op++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "op=\"%s\"", storage_ops[op]);
        put_histogram(o, "secretsd_storage_operation_duration_seconds", labels, m->storage[op].buckets,
                      m->storage[op].sum_us);
    }
}

/* A networked store's connection (storage.h, sx_storage_remote): where, its role, reconnects and
 * the last failover. Nothing for a store in local files or memory. */
static void gen_database(out *o, sx_storage *st)
{
    sx_storage_remote rm;
    if (sx_storage_remote_get(st, &rm) != 0)
        return;
    /* A label value escapes backslash, double quote and newline (the text format). */
    char host[2 * SX_STORAGE_HOST_MAX + 16];
    size_t n = 0;
    for (const char *p = rm.host; *p && n + 2 < sizeof(host) - 8; p++) {
        if (*p == '\\' || *p == '"')
            host[n++] = '\\';
        if (*p == '\n') {
            host[n++] = '\\';
            host[n++] = 'n';
            continue;
        }
        host[n++] = *p;
    }
    n += (size_t)snprintf(host + n, sizeof(host) - n, ":%u", rm.port);
    family(o, "secretsd_db_info", "gauge",
           "The database server this node reached last (host:port), 1 while a connection to it is open.");
    put(o, "secretsd_db_info{host=\"%s\"} %d\n", host, rm.connected ? 1 : 0);
    family(o, "secretsd_db_primary", "gauge", "1 when that database server takes writes, 0 when it is a standby.");
    if (rm.primary >= 0)
        put(o, "secretsd_db_primary %d\n", rm.primary);
    family(o, "secretsd_db_reconnects_total", "counter", "Database connections opened again after one was lost.");
    put(o, "secretsd_db_reconnects_total %" PRIu64 "\n", rm.reconnects);
    family(o, "secretsd_db_last_failover_timestamp_seconds", "gauge",
           "When a reconnect last reached another database server, or the primary turned standby (0 = never).");
    put(o, "secretsd_db_last_failover_timestamp_seconds %" PRId64 "\n", rm.last_failover_ms / 1000);
}

static void metrics_done(sx_job *job)
{
    metrics_job *j = (metrics_job *)job;
    sx_server *s = j->base.server;
    out o = {0};
    sx_metrics_collect(s, &j->sums);
    gen_requests(&o, &j->sums);
    size_t conns = 0;
    for (unsigned t = 0; t < s->nthreads; t++)
        conns += s->threads[t].nconns; /* other loops' counts: a racy but harmless read for a gauge */
    family(&o, "secretsd_connections", "gauge", "Open client connections.");
    put(&o, "secretsd_connections %zu\n", conns);
    family(&o, "secretsd_worker_pool_queue_depth", "gauge", "Blocking jobs queued for the worker pool.");
    put(&o, "secretsd_worker_pool_queue_depth %zu\n", sx_pool_queued(s->pool));
    family(&o, "secretsd_sealed", "gauge", "1 while the keys are not loaded (a running server is always unsealed).");
    put(&o, "secretsd_sealed 0\n");
    if (j->crypto_rc == 0) {
        family(&o, "secretsd_master_key_active_version", "gauge", "The active master key version.");
        put(&o, "secretsd_master_key_active_version %" PRIu32 "\n", j->cs.active_master);
        family(&o, "secretsd_master_key_versions", "gauge", "Master key versions in the keyring.");
        put(&o, "secretsd_master_key_versions %zu\n", j->cs.n_masters);
        family(&o, "secretsd_data_key_versions", "gauge", "Wrapped data-key versions, all environments.");
        put(&o, "secretsd_data_key_versions %" PRIu64 "\n", j->cs.data_keys);
    }
    family(&o, "secretsd_rotations_in_progress", "gauge", "Key rotations in progress.");
    put(&o, "secretsd_rotations_in_progress %zu\n", j->rot_rc == 0 ? j->nrots : 0);
    family(&o, "secretsd_rotation_progress_ratio", "gauge",
           "Share of the current sweep done, per rotation in progress (kind master or env; never a name).");
    for (size_t i = 0; j->rot_rc == 0 && i < j->nrots; i++) {
        const sx_rotation *rot = &j->rots[i];
        double ratio = rot->total ? (double)rot->done / (double)rot->total : 0.0;
        put(&o, "secretsd_rotation_progress_ratio{kind=\"%s\",index=\"%zu\",phase=\"%d\"} %.4f\n",
            rot->kind == SX_ROTATION_MASTER ? "master" : "env", i, (int)rot->phase, ratio > 1 ? 1.0 : ratio);
    }
    struct sx_sweeper *sw = __atomic_load_n(&s->sweeper, __ATOMIC_ACQUIRE);
    if (sw) {
        sx_sweeper_stats ss;
        sx_sweeper_stats_get(sw, &ss);
        family(&o, "secretsd_deleted_secrets", "gauge",
               "Deleted secrets kept for their recovery window, as the sweeper's last run counted them.");
        put(&o, "secretsd_deleted_secrets %" PRIu64 "\n", ss.deleted_secrets);
        family(&o, "secretsd_deleted_secret_versions", "gauge",
               "Version records kept by deleted secrets (destroyed ones' tombstones included), at the last sweep.");
        put(&o, "secretsd_deleted_secret_versions %" PRIu64 "\n", ss.deleted_version_records);
        family(&o, "secretsd_retained_versions", "gauge",
               "Previous-version records of live secrets (destroyed ones' tombstones included), at the last sweep.");
        put(&o, "secretsd_retained_versions %" PRIu64 "\n", ss.previous_version_records);
        family(&o, "secretsd_sweeper_runs_total", "counter", "Sweeps for deleted secrets past their recovery window.");
        put(&o, "secretsd_sweeper_runs_total %" PRIu64 "\n", ss.runs);
        family(&o, "secretsd_sweeper_failures_total", "counter", "Sweeps that met a storage error.");
        put(&o, "secretsd_sweeper_failures_total %" PRIu64 "\n", ss.failures);
        family(&o, "secretsd_deleted_secrets_purged_total", "counter",
               "Deleted secrets the sweeper purged past their recovery window.");
        put(&o, "secretsd_deleted_secrets_purged_total %" PRIu64 "\n", ss.purged_total);
        family(&o, "secretsd_sweeper_last_run_timestamp_seconds", "gauge", "When the last sweep ended (0 = none yet).");
        put(&o, "secretsd_sweeper_last_run_timestamp_seconds %" PRId64 "\n", ss.last_run_ms / 1000);
        family(&o, "secretsd_compactions_total", "counter",
               "Rounds that made the store drop destroyed ciphertext from its files.");
        put(&o, "secretsd_compactions_total %" PRIu64 "\n", ss.compactions);
        family(&o, "secretsd_compaction_failures_total", "counter", "Compaction rounds that failed (retried later).");
        put(&o, "secretsd_compaction_failures_total %" PRIu64 "\n", ss.compact_failures);
    }
    gen_database(&o, s->storage);
    sx_audit_stats as;
    sx_audit_get_stats(s->audit, &as);
    family(&o, "secretsd_audit_enabled", "gauge", "1 when [log] audit_log is set.");
    put(&o, "secretsd_audit_enabled %d\n", s->audit ? 1 : 0);
    family(&o, "secretsd_audit_lines_total", "counter", "Audit lines written.");
    put(&o, "secretsd_audit_lines_total %" PRIu64 "\n", as.lines);
    family(&o, "secretsd_audit_dropped_total", "counter", "Audit lines that could not be written.");
    put(&o, "secretsd_audit_dropped_total %" PRIu64 "\n", as.dropped);
    family(&o, "secretsd_audit_write_failures_total", "counter", "Failed audit batch writes.");
    put(&o, "secretsd_audit_write_failures_total %" PRIu64 "\n", as.write_failures);
    family(&o, "secretsd_audit_failing", "gauge", "1 while the audit log cannot be written.");
    put(&o, "secretsd_audit_failing %d\n", as.failing ? 1 : 0);
    uint64_t al_lines, al_dropped;
    sx_access_log_stats(&al_lines, &al_dropped);
    family(&o, "secretsd_access_log_lines_total", "counter", "Access log lines queued for writing.");
    put(&o, "secretsd_access_log_lines_total %" PRIu64 "\n", al_lines);
    family(&o, "secretsd_access_log_dropped_lines_total", "counter",
           "Access log lines dropped because the file could not keep up.");
    put(&o, "secretsd_access_log_dropped_lines_total %" PRIu64 "\n", al_dropped);

    sx_request *r = j->base.r;
    if (o.oom || !o.buf) {
        free(o.buf);
        sx_send_failure(r, SX_ERR_ALLOC, -ENOMEM, NULL);
        return;
    }
    h2o_req_t *req = r->req;
    sx_request_finish(r, 200);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = o.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, o.buf, o.len);
    free(o.buf);
}

static void metrics_release(sx_job *job)
{
    metrics_job *j = (metrics_job *)job;
    free(j->rots);
    free(j);
}

void sx_api_metrics(sx_request *r)
{
    metrics_job *j = sx_api_job_new(r, sizeof(*j), metrics_work, metrics_done, metrics_release);
    if (j)
        sx_request_submit(r, &j->base.super);
}
