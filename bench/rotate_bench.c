/*
 * rotate_bench.c - wall time of an online master-key rotation, driven through the server's own
 * rotation engine (ops/, linked as sx_ops) over a RocksDB store, without HTTP.
 *
 *   rotate_bench [--envs N] [--secrets M] [--sync 0|1] [--settle SECONDS] [--dir PATH]
 *
 * Seeds N environments with M secrets each (a metadata record and a value encrypted under the
 * env's data key, written unsynced in batches by two threads), reopens the store with [storage]
 * sync as given (default 1, the production default), waits --settle seconds (default 5) so that
 * RocksDB's compaction of the freshly seeded data does not compete, then times one master rotation at an
 * unlimited rate: add a master version, re-wrap every env's data keys, retire the old version.
 * Prints one line: envs, secrets per env, sync, seconds, envs per second. The store lives in a
 * temporary folder (or --dir, which must not exist) and is removed afterwards.
 *
 * A master rotation never reads a value, so the time should follow N and not N x M: compare
 * "--envs 10000 --secrets 10" with "--envs 10000 --secrets 100". Not run by ctest.
 */
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/crypto.h"
#include "ops/ops.h"
#include "storage/storage.h"

#define SEED_THREADS 2
#define SEED_BATCH   64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "rotate_bench: %s: %s\n", what, sx_crypto_strerror(rc));
    exit(1);
}

typedef struct seeder {
    sx_storage *st;
    sx_crypto *c;
    int from, to, secrets;
} seeder;

static void *seed_main(void *arg)
{
    seeder *s = arg;
    char keys[SEED_BATCH * 2][128];
    uint8_t meta[32] = {1}; /* stands in for the server's metadata record: rotation never reads it */
    uint8_t *blobs[SEED_BATCH];
    sx_storage_op ops[SEED_BATCH * 2];
    size_t n = 0;
    for (int e = s->from; e < s->to; e++) {
        char env[16];
        snprintf(env, sizeof(env), "e%06d", e);
        for (int i = 0; i < s->secrets; i++) {
            char name[16], value[64];
            snprintf(name, sizeof(name), "S%04d", i);
            int vl = snprintf(value, sizeof(value), "value-%s-%s", env, name);
            sx_crypto_place p = {"bench", "rot", env, name};
            size_t blen;
            int rc = sx_crypto_value_encrypt(s->c, &blobs[n], &blen, &p, value, (size_t)vl);
            if (rc < 0)
                die("encrypt", rc);
            snprintf(keys[2 * n], sizeof(keys[0]), "m/bench/rot/%s/%s", env, name);
            snprintf(keys[2 * n + 1], sizeof(keys[0]), "v/bench/rot/%s/%s", env, name);
            ops[2 * n] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                                         .key = keys[2 * n],
                                         .klen = strlen(keys[2 * n]),
                                         .val = meta,
                                         .vlen = sizeof(meta)};
            ops[2 * n + 1] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                                             .key = keys[2 * n + 1],
                                             .klen = strlen(keys[2 * n + 1]),
                                             .val = blobs[n],
                                             .vlen = blen};
            if (++n == SEED_BATCH || (e == s->to - 1 && i == s->secrets - 1)) {
                if ((rc = sx_storage_batch(s->st, ops, 2 * n, NULL)) < 0)
                    die("seed batch", rc);
                for (size_t k = 0; k < n; k++)
                    free(blobs[k]);
                n = 0;
            }
        }
    }
    return NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void open_all(const char *dir, bool sync, sx_storage **st, sx_crypto **c)
{
    char data[1100], keyfile[1100], err[512];
    snprintf(data, sizeof(data), "%s/data", dir);
    snprintf(keyfile, sizeof(keyfile), "%s/seal.key", dir);
    sx_storage_options so = {.backend = "rocksdb", .path = data, .sync = sync};
    if (sx_storage_open(&so, st, err, sizeof(err)) < 0) {
        fprintf(stderr, "rotate_bench: %s\n", err);
        exit(1);
    }
    sx_crypto_options co = {.seal = {.type = SX_CRYPTO_SEAL_FILE, .key_file = keyfile}};
    char *recovery = NULL;
    if (sx_crypto_open(c, &recovery, *st, &co, err, sizeof(err)) < 0) {
        fprintf(stderr, "rotate_bench: %s\n", err);
        exit(1);
    }
    sx_crypto_recovery_key_free(recovery);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"envs", required_argument, NULL, 'e'},   {"secrets", required_argument, NULL, 's'},
        {"sync", required_argument, NULL, 'y'},   {"dir", required_argument, NULL, 'd'},
        {"settle", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
    };
    int envs = 1000, secrets = 10, settle = 5, o;
    bool sync = true;
    const char *dir_arg = NULL;
    while ((o = getopt_long(argc, argv, "e:s:y:d:t:", opts, NULL)) != -1) {
        switch (o) {
        case 'e':
            envs = atoi(optarg);
            break;
        case 's':
            secrets = atoi(optarg);
            break;
        case 'y':
            sync = atoi(optarg) != 0;
            break;
        case 'd':
            dir_arg = optarg;
            break;
        case 't':
            settle = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: rotate_bench [--envs N] [--secrets M] [--sync 0|1] [--settle S] [--dir PATH]\n");
            return 2;
        }
    }
    if (envs < 1 || secrets < 1)
        return 2;
    if (sodium_init() < 0)
        return 1;
    char dir[1024];
    if (dir_arg) {
        snprintf(dir, sizeof(dir), "%s", dir_arg);
        if (mkdir(dir, 0700) != 0) {
            perror("rotate_bench: --dir");
            return 1;
        }
    } else {
        snprintf(dir, sizeof(dir), "%s/rotate-bench-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            perror("rotate_bench: mkdtemp");
            return 1;
        }
    }

    sx_storage *st;
    sx_crypto *c;
    open_all(dir, false, &st, &c);
    double t0 = now_s();
    pthread_t tids[SEED_THREADS];
    seeder seeders[SEED_THREADS];
    for (int t = 0; t < SEED_THREADS; t++) {
        seeders[t] = (seeder){st, c, envs * t / SEED_THREADS, envs * (t + 1) / SEED_THREADS, secrets};
        pthread_create(&tids[t], NULL, seed_main, &seeders[t]);
    }
    for (int t = 0; t < SEED_THREADS; t++)
        pthread_join(tids[t], NULL);
    double seeded = now_s() - t0;
    sx_crypto_free(c);
    sx_storage_close(st);

    /* Measure on a freshly opened store, as a server would find it. */
    open_all(dir, sync, &st, &c);
    sleep((unsigned)settle);
    sx_rotor *r;
    int rc = sx_rotor_new(&r, st, c, NULL);
    if (rc < 0)
        die("rotor", rc);
    sx_rotation rot;
    t0 = now_s();
    if ((rc = sx_rotor_begin_master(r, 0, &rot)) < 0)
        die("begin", rc);
    if ((rc = sx_rotor_run_all(r)) < 0)
        die("rotation", rc);
    double took = now_s() - t0;
    sx_crypto_status cs;
    if ((rc = sx_crypto_status_get(c, &cs)) < 0)
        die("status", rc);
    bool ok = cs.n_masters == 1 && cs.active_master == rot.from + 1 && cs.data_keys == (uint64_t)envs;
    printf("envs=%d secrets/env=%d sync=%d seed=%.1fs rotate=%.3fs (%.0f envs/s)%s\n", envs, secrets, sync, seeded,
           took, envs / took, ok ? "" : " UNEXPECTED FINAL STATE");
    sx_rotor_free(r);
    sx_crypto_free(c);
    sx_storage_close(st);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return ok ? 0 : 1;
}
