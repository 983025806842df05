/*
 * metrics.h - the server's counters (metrics.c), read by the GET /metrics page
 * (server/api/metrics.c). Internal to server/.
 *
 * Each loop thread owns one sx_metrics_thread and is its only writer: an increment is a relaxed
 * atomic load and store (a plain add, no lock, no locked instruction), and the scrape sums every
 * thread's counters with relaxed loads, so a scrape may see a request counted and its latency not
 * yet, never a torn value. Work done off the loops (storage batches on worker-pool threads) is
 * counted in one shared set with atomic adds. Labels are route patterns, methods, status codes and
 * operation names: never a secret's name.
 */
#ifndef SX_SERVER_METRICS_H
#define SX_SERVER_METRICS_H

#include <stdint.h>

#define SX_METRICS_MAX_ROUTES 49 /* SX_ROUTES_MAX route table entries + 1 for "no route" */
#define SX_METRICS_NSTATUS    17 /* the statuses of sx_metrics_status_codes, and "other" */
#define SX_METRICS_NBUCKETS   15 /* latency histogram buckets: 14 bounds (100 us .. 2.5 s) + Inf */

/* The statuses counted one by one; any other is counted as "other" (the last index). */
extern const int sx_metrics_status_codes[SX_METRICS_NSTATUS - 1];

typedef enum sx_metrics_storage_op {
    SX_METRICS_STORAGE_GET = 0,
    SX_METRICS_STORAGE_LIST = 1,
    SX_METRICS_STORAGE_BATCH = 2,
    SX_METRICS_STORAGE_NOPS = 3,
} sx_metrics_storage_op;

/* Why the server closed a client's connection as abusive (server/guard.c). */
typedef enum sx_metrics_abuse {
    SX_METRICS_ABUSE_RESETS = 0,         /* over http2_max_resets (Rapid Reset) */
    SX_METRICS_ABUSE_CONTROL_FRAMES = 1, /* over http2_max_control_frames (floods) */
    SX_METRICS_ABUSE_HEADER_BLOCK = 2,   /* an HTTP/2 header block far over max_header_bytes */
    SX_METRICS_ABUSE_NREASONS = 3,
} sx_metrics_abuse;

/* Records that carry authority and failed their MAC (edited in storage), by kind. */
typedef enum sx_metrics_forged {
    SX_METRICS_FORGED_TOKEN = 0,      /* t/ token records (refused: 401) */
    SX_METRICS_FORGED_ROTATION = 1,   /* r/ rotation records (the rotation is not run) */
    SX_METRICS_FORGED_AUDIT_HEAD = 2, /* s/audit.head (verification fails, the log does not start) */
    SX_METRICS_FORGED_NKINDS = 3,
} sx_metrics_forged;

/* Changes of the keyring's slots by this node, by operation. */
typedef enum sx_metrics_seal_op {
    SX_METRICS_SEAL_ADD = 0,
    SX_METRICS_SEAL_REMOVE = 1,
    SX_METRICS_SEAL_MIGRATE = 2,
    SX_METRICS_SEAL_REKEY = 3,
    SX_METRICS_SEAL_NOPS = 4,
} sx_metrics_seal_op;
/* Unlocks of the keyring by this process, by slot type (crypto's sx_crypto_seal_type, 1..4). */
#define SX_METRICS_UNLOCK_NTYPES 5

/* The names of the reasons and kinds above, for labels. */
extern const char *const sx_metrics_abuse_reasons[SX_METRICS_ABUSE_NREASONS];
extern const char *const sx_metrics_forged_kinds[SX_METRICS_FORGED_NKINDS];

typedef struct sx_metrics_thread sx_metrics_thread;

/* A zeroed set of counters (calloc'd; free with free()); NULL when out of memory. */
sx_metrics_thread *sx_metrics_thread_new(void);
/* Count one answered request: route index (sx_router_count() = no route), method bit, status, and
 * nanoseconds from arrival to answer. Only the owning loop thread may call it. m may be NULL. */
void sx_metrics_request(sx_metrics_thread *m, unsigned route, int status, uint64_t ns);
/* Count one storage operation; m NULL = the shared set (any thread). */
void sx_metrics_storage(sx_metrics_thread *m, sx_metrics_storage_op op, uint64_t ns);
/* Count one connection closed as abusive (any thread). */
void sx_metrics_abuse_close(sx_metrics_abuse why);
/* Count one record that failed its MAC (any thread); the first of each kind is logged (a warning
 * naming the kind, never the record's bytes), later ones are only counted. */
void sx_metrics_forged_record(sx_metrics_forged kind);
/* Count one slot change (any thread). */
void sx_metrics_seal(sx_metrics_seal_op op);
/* Count one unlock of the keyring with a slot of type (1..4) and note that slot as this node's. */
void sx_metrics_unlock(unsigned type, uint32_t slot);
extern const char *const sx_metrics_seal_ops[SX_METRICS_SEAL_NOPS];

/* Every counter summed over the loops (and the shared set), at one scrape. Buckets are not
 * cumulative. */
typedef struct sx_metrics_histogram {
    uint64_t buckets[SX_METRICS_NBUCKETS];
    uint64_t sum_us;
} sx_metrics_histogram;

typedef struct sx_metrics_snapshot {
    uint64_t requests[SX_METRICS_MAX_ROUTES][SX_METRICS_NSTATUS]; /* by route index and status index */
    sx_metrics_histogram latency[SX_METRICS_MAX_ROUTES];
    sx_metrics_histogram storage[SX_METRICS_STORAGE_NOPS];
    uint64_t abuse[SX_METRICS_ABUSE_NREASONS];
    uint64_t forged[SX_METRICS_FORGED_NKINDS];
    uint64_t seal_changes[SX_METRICS_SEAL_NOPS];
    uint64_t unlocks[SX_METRICS_UNLOCK_NTYPES]; /* by slot type; [0] unused */
    uint64_t unlock_slot;                       /* the slot of the last unlock */
} sx_metrics_snapshot;

/* Sum s's counters into *ret (relaxed reads: a request may be counted and its latency not yet).
 * Any thread. */
struct sx_server;
void sx_metrics_collect(const struct sx_server *s, sx_metrics_snapshot *ret);

#endif /* SX_SERVER_METRICS_H */
