/*
 * storage_bench.c - operations per second of the storage backends.
 *
 * For each backend setup (memory; rocksdb with sync off; rocksdb with sync on) and for 1 and 8
 * threads it measures, as the median of 5 alternating 1-thread / 8-thread windows:
 *   put   unconditional writes of distinct 100-byte records
 *   cas   conditional batches ("create if absent") on distinct keys - the path the server uses
 *   get   point reads of existing keys
 *   scan  prefix iterations of 100 records (reported as scans/s)
 * and finally prints the 8-thread / 1-thread ratio of `cas` with sync on, which shows whether
 * concurrent fsync'ing writers of unrelated keys share fsyncs (RocksDB group commit) or are
 * serialised. Figures depend on the machine and disk; they are printed, never asserted.
 *
 * usage: storage_bench [-d DIR] [-s SECONDS] [-b memory|rocksdb]
 *   DIR defaults to $TMPDIR or /tmp; a fresh sub-directory is created and removed.
 */
#include "storage/storage.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MAX_THREADS = 8, SCAN_KEYS = 100, VAL_LEN = 100, WINDOWS = 5 };

typedef enum { OP_PUT, OP_CAS, OP_GET, OP_SCAN } op_kind;
static const char *op_names[] = {"put", "cas", "get", "scan"};

typedef struct worker {
    pthread_t th;
    sx_storage *s;
    op_kind op;
    int id;
    unsigned long ops;
    unsigned long errors;
    unsigned long populated; /* keys available for get */
    uint64_t rng;
} worker;

static atomic_bool stop_flag;
static atomic_int ready_count;
static atomic_bool go_flag;
static unsigned long run_id; /* keeps keys of successive runs apart */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void *work(void *p)
{
    worker *w = p;
    char key[64], val[VAL_LEN];
    memset(val, 'v', sizeof(val));
    atomic_fetch_add(&ready_count, 1);
    while (!atomic_load(&go_flag))
        ;
    while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
        int r = 0;
        if (w->op == OP_PUT || w->op == OP_CAS) {
            int kl = snprintf(key, sizeof(key), "b/%lu/%02d/%010lu", run_id, w->id, w->ops);
            if (w->op == OP_PUT) {
                r = sx_storage_put(w->s, key, (size_t)kl, val, sizeof(val), NULL);
            } else {
                sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                                    .key = key,
                                    .klen = (size_t)kl,
                                    .val = val,
                                    .vlen = sizeof(val),
                                    .cond = SX_STORAGE_COND_ABSENT};
                r = sx_storage_batch(w->s, &op, 1, NULL);
            }
        } else if (w->op == OP_GET) {
            unsigned long i = next_rand(&w->rng) % w->populated;
            int kl = snprintf(key, sizeof(key), "g/%010lu", i);
            void *v = NULL;
            size_t vl = 0;
            r = sx_storage_get(w->s, key, (size_t)kl, &v, &vl, NULL);
            sx_storage_free(v);
        } else {
            unsigned long g = next_rand(&w->rng) % (w->populated / SCAN_KEYS);
            int kl = snprintf(key, sizeof(key), "g/%08lu", g); /* 100 keys share this prefix */
            sx_storage_iter *it = NULL;
            r = sx_storage_iter_new(w->s, key, (size_t)kl, NULL, 0, 0, &it);
            int n = 0;
            while (r == 0 && (r = sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL)) == 0)
                n++;
            sx_storage_iter_free(it);
            r = (r == SX_STORAGE_DONE && n == SCAN_KEYS) ? 0 : -1;
        }
        if (r != 0)
            w->errors++;
        w->ops++;
    }
    return NULL;
}

/* Run op on nthreads for secs seconds; returns ops per second. */
static double run(sx_storage *s, op_kind op, int nthreads, double secs, unsigned long populated)
{
    worker w[MAX_THREADS];
    atomic_store(&stop_flag, false);
    atomic_store(&go_flag, false);
    atomic_store(&ready_count, 0);
    run_id++;
    for (int i = 0; i < nthreads; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].s = s;
        w[i].op = op;
        w[i].id = i;
        w[i].populated = populated;
        w[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) + run_id;
        pthread_create(&w[i].th, NULL, work, &w[i]);
    }
    while (atomic_load(&ready_count) < nthreads)
        ;
    double t0 = now_s();
    atomic_store(&go_flag, true);
    usleep((useconds_t)(secs * 1e6));
    atomic_store(&stop_flag, true);
    unsigned long ops = 0, errors = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].th, NULL);
        ops += w[i].ops;
        errors += w[i].errors;
    }
    double dt = now_s() - t0;
    if (errors)
        fprintf(stderr, "  %s: %lu errors\n", op_names[op], errors);
    return (double)ops / dt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(int argc, char **argv)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    const char *only = NULL;
    double secs = 2.0; /* per figure, split into WINDOWS windows */
    int c;
    while ((c = getopt(argc, argv, "d:s:b:")) != -1) {
        if (c == 'd')
            base = optarg;
        else if (c == 's')
            secs = atof(optarg);
        else if (c == 'b')
            only = optarg;
        else {
            fprintf(stderr, "usage: %s [-d DIR] [-s SECONDS] [-b memory|rocksdb]\n", argv[0]);
            return 2;
        }
    }
    struct {
        const char *backend;
        bool sync;
    } setups[] = {{"memory", false}, {"rocksdb", false}, {"rocksdb", true}};
    const int threads[] = {1, 8};
    double cas_sync[2] = {0, 0};
    const unsigned long populated = 20000;

    printf("%-8s %-5s %-4s %14s %14s\n", "backend", "sync", "op", "1 thread", "8 threads");
    for (size_t si = 0; si < sizeof(setups) / sizeof(setups[0]); si++) {
        if (only && strcmp(only, setups[si].backend) != 0)
            continue;
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/sx-storage-bench-XXXXXX", base);
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        char path[4200];
        snprintf(path, sizeof(path), "%s/db", dir);
        sx_storage_options opt = {.backend = setups[si].backend, .path = path, .sync = setups[si].sync};
        sx_storage *s = NULL;
        char err[256];
        int r = sx_storage_open(&opt, &s, err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        /* Records for get and scan: g/%010lu, 100 per 8-digit prefix. */
        char val[VAL_LEN];
        memset(val, 'g', sizeof(val));
        for (unsigned long i = 0; i < populated; i += 500) {
            sx_storage_op ops[500];
            char keys[500][16];
            for (int j = 0; j < 500; j++) {
                int kl = snprintf(keys[j], sizeof(keys[j]), "g/%010lu", i + (unsigned long)j);
                ops[j] = (sx_storage_op){
                    .kind = SX_STORAGE_OP_PUT, .key = keys[j], .klen = (size_t)kl, .val = val, .vlen = sizeof(val)};
            }
            if (sx_storage_batch(s, ops, 500, NULL) != 0) {
                fprintf(stderr, "populate failed\n");
                return 1;
            }
        }
        for (int op = OP_PUT; op <= OP_SCAN; op++) {
            /* Alternate 1-thread and 8-thread windows and keep the medians, so that a passing
             * disturbance on a shared machine (another process's fsync storm) hits both sides. */
            double rate[2], samples[2][WINDOWS];
            for (int w = 0; w < WINDOWS; w++)
                for (int ti = 0; ti < 2; ti++)
                    samples[ti][w] = run(s, (op_kind)op, threads[ti], secs / WINDOWS, populated);
            for (int ti = 0; ti < 2; ti++)
                rate[ti] = median(samples[ti], WINDOWS);
            printf("%-8s %-5s %-4s %14.0f %14.0f\n", setups[si].backend, setups[si].sync ? "on" : "off", op_names[op],
                   rate[0], rate[1]);
            fflush(stdout);
            if (op == OP_CAS && setups[si].sync && strcmp(setups[si].backend, "rocksdb") == 0) {
                cas_sync[0] = rate[0];
                cas_sync[1] = rate[1];
            }
        }
        sx_storage_close(s);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (cas_sync[0] > 0)
        printf("rocksdb sync=on conditional batch, distinct keys: 8 threads / 1 thread = %.2fx (target >= 4x)\n",
               cas_sync[1] / cas_sync[0]);
    return 0;
}
