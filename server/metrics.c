/*
 * metrics.c - GET /metrics in the Prometheus text format (version 0.0.4), on the admin socket and
 * on the optional [server] metrics_listen listener.
 *
 * The hot path only bumps counters that belong to the loop thread serving the request (see
 * metrics.h): no lock, no allocation, no shared cache line. A scrape sums every thread's counters;
 * the figures that need storage (key versions, rotation progress) are read on the worker pool.
 *
 * Exported families: requests by route pattern, method and status; request latency histograms by
 * route; storage operation latency histograms; worker-pool queue depth; open connections; sealed
 * state; active master key version and versions kept; rotations in progress and their progress;
 * authentication failures (401) and throttled requests (429); HTTP/2 connections closed for abuse
 * (server/guard.c); records that failed their MAC; audit log lines, drops and failures.
 */
#include "server/api.h"
#include "audit/audit.h"
#include "server/metrics.h"
#include "ops/ops.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSTATUS  16
#define NBUCKETS 15 /* 14 bounds + Inf */

static const int status_codes[NSTATUS - 1] = {200, 201, 202, 400, 401, 403, 404, 405,
                                              409, 412, 413, 415, 429, 500, 503};
static const uint64_t bucket_us[NBUCKETS - 1] = {100,   250,   500,    1000,   2500,   5000,    10000,
                                                 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};
static const char *const bucket_le[NBUCKETS - 1] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                                                    "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1",     "2.5"};
static const char *const storage_ops[SX_METRICS_STORAGE_NOPS] = {"get", "list", "batch"};

typedef _Atomic uint64_t counter;

typedef struct histogram {
    counter buckets[NBUCKETS]; /* not cumulative; summed into le= form at scrape */
    counter sum_us;
} histogram;

struct sx_metrics_thread {
    counter requests[SX_METRICS_MAX_ROUTES][NSTATUS];
    histogram latency[SX_METRICS_MAX_ROUTES];
    histogram storage[SX_METRICS_STORAGE_NOPS];
};

/* Storage operations on threads that are not loops (worker pool): atomic adds. */
static histogram shared_storage[SX_METRICS_STORAGE_NOPS];
/* Connections closed as abusive, by reason (rare: atomic adds from any thread). */
static counter abuse_closes[SX_METRICS_ABUSE_NREASONS];
static const char *const abuse_reasons[SX_METRICS_ABUSE_NREASONS] = {"resets", "control_frames", "header_block"};

/* Records that failed their MAC, by kind (rare: atomic adds from any thread). */
static counter forged_records[SX_METRICS_FORGED_NKINDS];
static const char *const forged_kinds[SX_METRICS_FORGED_NKINDS] = {"token", "rotation", "audit_head"};

void sx_metrics_forged_record(sx_metrics_forged kind)
{
    if ((unsigned)kind >= SX_METRICS_FORGED_NKINDS)
        return;
    if (atomic_fetch_add_explicit(&forged_records[kind], 1, memory_order_relaxed) == 0)
        sx_log(SX_LOG_WARN,
               "a stored %s record fails its MAC: it was edited outside secretsd and is refused "
               "(further ones are counted in secretsd_forged_records_total)",
               forged_kinds[kind]);
}

void sx_metrics_abuse_close(sx_metrics_abuse why)
{
    if ((unsigned)why < SX_METRICS_ABUSE_NREASONS)
        atomic_fetch_add_explicit(&abuse_closes[why], 1, memory_order_relaxed);
}

sx_metrics_thread *sx_metrics_thread_new(void)
{
    return calloc(1, sizeof(sx_metrics_thread));
}

/* Single writer: a relaxed load and store is a plain add, and readers never see a torn value. */
static inline void bump(counter *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

static unsigned status_index(int status)
{
    for (unsigned i = 0; i < NSTATUS - 1; i++)
        if (status_codes[i] == status)
            return i;
    return NSTATUS - 1;
}

static unsigned bucket_index(uint64_t us)
{
    unsigned i = 0;
    while (i < NBUCKETS - 1 && us > bucket_us[i])
        i++;
    return i;
}

void sx_metrics_request(sx_metrics_thread *m, unsigned route, int status, uint64_t ns)
{
    if (!m)
        return;
    if (route >= SX_METRICS_MAX_ROUTES)
        route = SX_METRICS_MAX_ROUTES - 1;
    uint64_t us = ns / 1000;
    bump(&m->requests[route][status_index(status)], 1);
    bump(&m->latency[route].buckets[bucket_index(us)], 1);
    bump(&m->latency[route].sum_us, us);
}

void sx_metrics_storage(sx_metrics_thread *m, sx_metrics_storage_op op, uint64_t ns)
{
    uint64_t us = ns / 1000;
    if (!m) {
        atomic_fetch_add_explicit(&shared_storage[op].buckets[bucket_index(us)], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&shared_storage[op].sum_us, us, memory_order_relaxed);
        return;
    }
    bump(&m->storage[op].buckets[bucket_index(us)], 1);
    bump(&m->storage[op].sum_us, us);
}

/* ---- the scrape -------------------------------------------------------------------------------- */

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

static uint64_t ld(const counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void put_histogram(out *o, const char *name, const char *labels, const uint64_t *b, uint64_t sum_us)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i < NBUCKETS - 1; i++) {
        cum += b[i];
        put(o, "%s_bucket{%s,le=\"%s\"} %" PRIu64 "\n", name, labels, bucket_le[i], cum);
    }
    cum += b[NBUCKETS - 1];
    put(o, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
    put(o, "%s_sum{%s} %.6f\n", name, labels, (double)sum_us / 1e6);
    put(o, "%s_count{%s} %" PRIu64 "\n", name, labels, cum);
}

static const char *method_name(unsigned methods)
{
    return methods & SX_GET ? "GET" : methods & SX_POST ? "POST" : methods & SX_PUT ? "PUT" : "DELETE";
}

typedef struct metrics_job {
    sx_job super;
    sx_request *r;
    sx_server *server;
    int crypto_rc, rot_rc;
    sx_crypto_status cs;
    sx_rotation *rots;
    size_t nrots;
} metrics_job;

static void metrics_work(sx_job *job)
{
    metrics_job *j = (metrics_job *)job;
    j->crypto_rc = sx_crypto_status_get(j->server->crypto, &j->cs);
    j->rot_rc = j->server->rotor ? sx_rotor_list(j->server->rotor, &j->rots, &j->nrots) : -ENOENT;
}

static void gen_requests(out *o, sx_server *s)
{
    size_t nroutes = sx_router_count();
    uint64_t auth_failures = 0, throttled = 0;
    family(o, "secretsd_http_requests_total", "counter", "Requests answered, by route pattern, method and status.");
    for (size_t rt = 0; rt <= nroutes && rt < SX_METRICS_MAX_ROUTES; rt++) {
        const sx_route *route = sx_router_at(rt);
        for (unsigned st = 0; st < NSTATUS; st++) {
            uint64_t n = 0;
            for (unsigned t = 0; t < s->nthreads; t++)
                if (s->threads[t].metrics)
                    n += ld(&s->threads[t].metrics->requests[rt][st]);
            if (!n)
                continue;
            if (st == 4)
                auth_failures += n;
            if (st == 12)
                throttled += n;
            char code[8];
            if (st < NSTATUS - 1)
                snprintf(code, sizeof(code), "%d", status_codes[st]);
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
        uint64_t b[NBUCKETS] = {0}, sum = 0, total = 0;
        for (unsigned t = 0; t < s->nthreads; t++) {
            sx_metrics_thread *m = s->threads[t].metrics;
            for (unsigned i = 0; m && i < NBUCKETS; i++)
                b[i] += ld(&m->latency[rt].buckets[i]);
            if (m)
                sum += ld(&m->latency[rt].sum_us);
        }
        for (unsigned i = 0; i < NBUCKETS; i++)
            total += b[i];
        if (!total)
            continue;
        char labels[160];
        snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\"", route ? route->pattern : "none",
                 route ? method_name(route->methods) : "");
        put_histogram(o, "secretsd_http_request_duration_seconds", labels, b, sum);
    }
    family(o, "secretsd_auth_failures_total", "counter", "Requests refused for a missing or invalid token (401).");
    put(o, "secretsd_auth_failures_total %" PRIu64 "\n", auth_failures);
    family(o, "secretsd_auth_throttled_total", "counter",
           "Requests refused by the failed-authentication throttle (429).");
    put(o, "secretsd_auth_throttled_total %" PRIu64 "\n", throttled);
    family(o, "secretsd_http2_abusive_connections_closed_total", "counter",
           "HTTP/2 connections closed for abuse: too many stream resets, control frames, or a huge header block.");
    for (unsigned i = 0; i < SX_METRICS_ABUSE_NREASONS; i++)
        put(o, "secretsd_http2_abusive_connections_closed_total{reason=\"%s\"} %" PRIu64 "\n", abuse_reasons[i],
            ld(&abuse_closes[i]));

    family(o, "secretsd_forged_records_total", "counter",
           "Stored records that carry authority and failed their MAC (edited in storage), by kind; all refused.");
    for (unsigned i = 0; i < SX_METRICS_FORGED_NKINDS; i++)
        put(o, "secretsd_forged_records_total{kind=\"%s\"} %" PRIu64 "\n", forged_kinds[i], ld(&forged_records[i]));

    family(o, "secretsd_storage_operation_duration_seconds", "histogram", "Storage operations of the API, by kind.");
    for (unsigned op = 0; op < SX_METRICS_STORAGE_NOPS; op++) {
        uint64_t b[NBUCKETS] = {0}, sum = ld(&shared_storage[op].sum_us);
        for (unsigned i = 0; i < NBUCKETS; i++)
            b[i] = ld(&shared_storage[op].buckets[i]);
        for (unsigned t = 0; t < s->nthreads; t++) {
            sx_metrics_thread *m = s->threads[t].metrics;
            for (unsigned i = 0; m && i < NBUCKETS; i++)
                b[i] += ld(&m->storage[op].buckets[i]);
            if (m)
                sum += ld(&m->storage[op].sum_us);
        }
        char labels[32];
        snprintf(labels, sizeof(labels), "op=\"%s\"", storage_ops[op]);
        put_histogram(o, "secretsd_storage_operation_duration_seconds", labels, b, sum);
    }
}

static void metrics_done(sx_job *job)
{
    metrics_job *j = (metrics_job *)job;
    sx_server *s = j->server;
    out o = {0};
    gen_requests(&o, s);
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

    sx_request *r = j->r;
    if (o.oom || !o.buf) {
        free(o.buf);
        sx_send_error(r, 503, "unavailable", "out of memory");
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

void sx_handle_metrics(sx_request *r)
{
    metrics_job *j = calloc(1, sizeof(*j));
    if (!j) {
        sx_send_error(r, 503, "unavailable", "out of memory");
        return;
    }
    j->r = r;
    j->server = r->server;
    j->super.work = metrics_work;
    j->super.done = metrics_done;
    j->super.release = metrics_release;
    sx_request_submit(r, &j->super);
}
