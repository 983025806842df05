/*
 * metrics.c - the server's counters: requests, latencies, storage operations, abusive
 * connections and forged records, bumped by the request path (http.c, guard.c, the pool's jobs)
 * and summed for the /metrics page (server/api/metrics.c) by sx_metrics_collect().
 *
 * The hot path only bumps counters that belong to the loop thread serving the request (see
 * metrics.h): no lock, no allocation, no shared cache line.
 */
#include "server/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

#define NSTATUS  SX_METRICS_NSTATUS
#define NBUCKETS SX_METRICS_NBUCKETS

const int sx_metrics_status_codes[SX_METRICS_NSTATUS - 1] = {200, 201, 202, 304, 400, 401, 403, 404,
                                                             405, 409, 412, 413, 415, 429, 500, 503};
static const uint64_t bucket_us[NBUCKETS - 1] = {100,   250,   500,    1000,   2500,   5000,    10000,
                                                 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

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
const char *const sx_metrics_abuse_reasons[SX_METRICS_ABUSE_NREASONS] = {"resets", "control_frames", "header_block"};

/* Records that failed their MAC, by kind (rare: atomic adds from any thread). */
static counter forged_records[SX_METRICS_FORGED_NKINDS];
const char *const sx_metrics_forged_kinds[SX_METRICS_FORGED_NKINDS] = {"token", "rotation", "audit_head"};

void sx_metrics_forged_record(sx_metrics_forged kind)
{
    if ((unsigned)kind >= SX_METRICS_FORGED_NKINDS)
        return;
    if (atomic_fetch_add_explicit(&forged_records[kind], 1, memory_order_relaxed) == 0)
        sx_log(SX_LOG_WARN,
               "a stored %s record fails its MAC: it was edited outside secretsd and is refused "
               "(further ones are counted in secretsd_forged_records_total)",
               sx_metrics_forged_kinds[kind]);
}

/* Slot changes and unlocks (rare: atomic adds from any thread). */
static counter seal_changes[SX_METRICS_SEAL_NOPS];
static counter unlocks[SX_METRICS_UNLOCK_NTYPES];
static counter unlock_slot;
const char *const sx_metrics_seal_ops[SX_METRICS_SEAL_NOPS] = {"add", "remove", "migrate", "rekey"};

void sx_metrics_seal(sx_metrics_seal_op op)
{
    if ((unsigned)op < SX_METRICS_SEAL_NOPS)
        atomic_fetch_add_explicit(&seal_changes[op], 1, memory_order_relaxed);
}

void sx_metrics_unlock(unsigned type, uint32_t slot)
{
    if (type < SX_METRICS_UNLOCK_NTYPES)
        atomic_fetch_add_explicit(&unlocks[type], 1, memory_order_relaxed);
    atomic_store_explicit(&unlock_slot, slot, memory_order_relaxed);
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
        if (sx_metrics_status_codes[i] == status)
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

/* ---- the sums a scrape reads ------------------------------------------------------------------- */

static uint64_t ld(const counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void add_histogram(sx_metrics_histogram *h, const histogram *from)
{
    for (unsigned i = 0; i < NBUCKETS; i++)
        h->buckets[i] += ld(&from->buckets[i]);
    h->sum_us += ld(&from->sum_us);
}

void sx_metrics_collect(const struct sx_server *s, sx_metrics_snapshot *ret)
{
    memset(ret, 0, sizeof(*ret));
    for (unsigned t = 0; t < s->nthreads; t++) {
        const sx_metrics_thread *m = s->threads[t].metrics;
        if (!m)
            continue;
        for (unsigned rt = 0; rt < SX_METRICS_MAX_ROUTES; rt++) {
            for (unsigned st = 0; st < NSTATUS; st++)
                ret->requests[rt][st] += ld(&m->requests[rt][st]);
            add_histogram(&ret->latency[rt], &m->latency[rt]);
        }
        for (unsigned op = 0; op < SX_METRICS_STORAGE_NOPS; op++)
            add_histogram(&ret->storage[op], &m->storage[op]);
    }
    for (unsigned op = 0; op < SX_METRICS_STORAGE_NOPS; op++)
        add_histogram(&ret->storage[op], &shared_storage[op]);
    for (unsigned i = 0; i < SX_METRICS_ABUSE_NREASONS; i++)
        ret->abuse[i] = ld(&abuse_closes[i]);
    for (unsigned i = 0; i < SX_METRICS_FORGED_NKINDS; i++)
        ret->forged[i] = ld(&forged_records[i]);
    for (unsigned i = 0; i < SX_METRICS_SEAL_NOPS; i++)
        ret->seal_changes[i] = ld(&seal_changes[i]);
    for (unsigned i = 0; i < SX_METRICS_UNLOCK_NTYPES; i++)
        ret->unlocks[i] = ld(&unlocks[i]);
    ret->unlock_slot = ld(&unlock_slot);
}
