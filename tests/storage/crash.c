/*
 * crash.c - crash safety of the RocksDB backend with sync on: no acknowledged write is lost, no
 * record is torn, no batch is half applied.
 *
 * Each round re-executes this program as a child ("--child DIR ROUND FD") that opens the store
 * and performs a deterministic sequence of writes (puts of 0 B - 200 KiB, atomic three-key
 * batches, overwrites, deletes, conditional mixed batches) from one writer thread, or from four
 * at once on disjoint keys in odd rounds (so group commit is crashed too); after each write is
 * acknowledged the writer reports (writer, index) to the parent over a pipe. The parent SIGKILLs the child at a random
 * point - after a random number of acknowledgements, or after a random delay that may fall inside
 * open and recovery - then reopens the store and compares ALL of it, byte for byte, with a model
 * (a memory-backend store) to which it has applied every acknowledged write: per writer, the
 * store must equal the model, or the model plus that writer's one write that was in flight. Zero lost is the only pass.
 * Rounds accumulate in one directory, so later rounds also check earlier rounds' data survived
 * repeated crash recovery. The seed is printed; SX_CRASH_SEED=N replays a run.
 */
#include "common/clock.h"
#include "storage/storage.h"
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 24, OPS = 300, MAX_WRITERS = 4 };

/* Odd rounds write from several threads at once, so group commit is crashed too. */
static int writers_in(int round)
{
    return round % 2 ? MAX_WRITERS : 1;
}

static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Deterministic value for (round, op, part): a header naming its origin, then pseudo-random bytes. */
static size_t make_value(int round, int i, int part, uint8_t *buf, size_t cap)
{
    uint64_t h = mix(((uint64_t)round << 40) ^ ((uint64_t)i << 8) ^ (uint64_t)part);
    size_t len = h % 3000;
    if (h % 20 == 0)
        len = 64 * 1024 + (h >> 20) % (136 * 1024); /* spans several 32 KiB WAL blocks */
    if (len > cap)
        len = cap;
    int n = snprintf((char *)buf, cap, "r%d/i%d/p%d|", round, i, part);
    for (size_t j = (size_t)n; j < len; j++)
        buf[j] = (uint8_t)mix(h + j);
    return len < (size_t)n ? (size_t)n : len;
}

static _Thread_local uint8_t valbuf[256 * 1024];

/* Apply write number i of writer thread t in the round to s. Both the child (real store) and the
 * parent (model) run this; its effect depends only on (round, t, i) and on the earlier writes of
 * the same writer, whose keys no other writer touches. */
static int apply_op(sx_storage *s, int round, int t, int i)
{
    char k1[64], k2[64], k3[64];
    int kind = i % 10;
    if (kind <= 4) {
        int kl = snprintf(k1, sizeof(k1), "c/%02d/%d/k%04d", round, t, i);
        size_t vl = make_value(round, i, 0, valbuf, sizeof(valbuf));
        return sx_storage_put(s, k1, (size_t)kl, valbuf, vl, NULL);
    }
    if (kind == 5 || kind == 6) {
        sx_storage_op ops[3];
        char keys[3][64];
        static _Thread_local uint8_t vb[3][8192];
        for (int p = 0; p < 3; p++) {
            int kl = snprintf(keys[p], sizeof(keys[p]), "c/%02d/%d/b%04d/%d", round, t, i, p);
            size_t vl = make_value(round, i, p + 1, vb[p], sizeof(vb[p]));
            ops[p] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                                     .key = keys[p],
                                     .klen = (size_t)kl,
                                     .val = vb[p],
                                     .vlen = vl,
                                     .cond = SX_STORAGE_COND_ABSENT};
        }
        return sx_storage_batch(s, ops, 3, NULL);
    }
    if (kind == 7) {
        int kl = snprintf(k1, sizeof(k1), "c/%02d/%d/counter", round, t);
        int vl = snprintf(k2, sizeof(k2), "%d", i);
        return sx_storage_put(s, k1, (size_t)kl, k2, (size_t)vl, NULL);
    }
    if (kind == 8) { /* the put of write i - 8 */
        int kl = snprintf(k1, sizeof(k1), "c/%02d/%d/k%04d", round, t, i - 8);
        return sx_storage_delete(s, k1, (size_t)kl);
    }
    /* kind 9: guarded by the counter, create one key and delete one part of batch i - 4 */
    int l1 = snprintf(k1, sizeof(k1), "c/%02d/%d/counter", round, t);
    int l2 = snprintf(k2, sizeof(k2), "c/%02d/%d/g%04d", round, t, i);
    int l3 = snprintf(k3, sizeof(k3), "c/%02d/%d/b%04d/1", round, t, i - 4);
    size_t vl = make_value(round, i, 9, valbuf, sizeof(valbuf));
    sx_storage_op ops[3] = {
        {.kind = SX_STORAGE_OP_CHECK, .key = k1, .klen = (size_t)l1, .cond = SX_STORAGE_COND_PRESENT},
        {.kind = SX_STORAGE_OP_PUT, .key = k2, .klen = (size_t)l2, .val = valbuf, .vlen = vl},
        {.kind = SX_STORAGE_OP_DELETE, .key = k3, .klen = (size_t)l3, .cond = SX_STORAGE_COND_PRESENT},
    };
    return sx_storage_batch(s, ops, 3, NULL);
}

/* One acknowledgement on the pipe (8 bytes: atomic, below PIPE_BUF). */
typedef struct ack {
    uint32_t thread;
    uint32_t index;
} ack;

typedef struct writer {
    pthread_t th;
    sx_storage *s;
    int round, t, fd, status;
} writer;

static void *writer_main(void *p)
{
    writer *w = p;
    for (uint32_t i = 0; i < OPS; i++) {
        int r = apply_op(w->s, w->round, w->t, (int)i);
        if (r != 0) {
            fprintf(stderr, "crash child: writer %d, write %u: %s\n", w->t, i, sx_storage_strerror(r));
            w->status = 4;
            return NULL;
        }
        ack a = {.thread = (uint32_t)w->t, .index = i};
        if (write(w->fd, &a, sizeof(a)) != sizeof(a)) { /* the acknowledgement */
            w->status = 5;
            return NULL;
        }
    }
    return NULL;
}

static int child_main(const char *path, int round, int fd)
{
    sx_storage_options opt = {.backend = "rocksdb", .path = path, .sync = true};
    sx_storage *s = NULL;
    char err[256];
    if (sx_storage_open(&opt, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "crash child: %s\n", err);
        return 3;
    }
    writer w[MAX_WRITERS];
    int n = writers_in(round);
    for (int t = 0; t < n; t++) {
        w[t] = (writer){.s = s, .round = round, .t = t, .fd = fd};
        pthread_create(&w[t].th, NULL, writer_main, &w[t]);
    }
    for (int t = 0; t < n; t++) {
        pthread_join(w[t].th, NULL);
        if (w[t].status)
            return w[t].status;
    }
    for (;;)
        pause(); /* wait for the kill */
}

/* True when a and b hold exactly the same keys and values under prefix (revisions are not
 * compared). */
static bool same_contents(sx_storage *a, sx_storage *b, const char *prefix, bool report)
{
    sx_storage_iter *ia = NULL, *ib = NULL;
    size_t pl = strlen(prefix);
    if (sx_storage_iter_new(a, prefix, pl, NULL, 0, 0, &ia) < 0 ||
        sx_storage_iter_new(b, prefix, pl, NULL, 0, 0, &ib) < 0) {
        sx_storage_iter_free(ia);
        return false;
    }
    bool same = true;
    for (;;) {
        const void *ka, *kb, *va, *vb;
        size_t kal, kbl, val, vbl;
        int ra = sx_storage_iter_next(ia, &ka, &kal, &va, &val, NULL);
        int rb = sx_storage_iter_next(ib, &kb, &kbl, &vb, &vbl, NULL);
        if (ra == SX_STORAGE_DONE && rb == SX_STORAGE_DONE)
            break;
        if (ra != 0 || rb != 0 || kal != kbl || memcmp(ka, kb, kal) != 0 || val != vbl || memcmp(va, vb, val) != 0) {
            if (report)
                fprintf(stderr, "  first difference: store %d '%.*s' (%zu bytes), model %d '%.*s' (%zu bytes)\n", ra,
                        ra == 0 ? (int)kal : 0, ra == 0 ? (const char *)ka : "", ra == 0 ? val : 0, rb,
                        rb == 0 ? (int)kbl : 0, rb == 0 ? (const char *)kb : "", rb == 0 ? vbl : 0);
            same = false;
            break;
        }
    }
    sx_storage_iter_free(ia);
    sx_storage_iter_free(ib);
    return same;
}

/* All rounds against the store at path, checked against model. Returns early (after killing the
 * child) on the first failure; the caller cleans up. */
static void crash_rounds(const char *path, sx_storage *model, uint64_t seed)
{
    char err[256];
    int total_acked = 0, in_flight_applied = 0, killed_early = 0, rounds = 0;

    for (int round = 0; round < ROUNDS; round++) {
        uint64_t rnd = mix(seed + (uint64_t)round);
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            char rs[16], fs[16];
            snprintf(rs, sizeof(rs), "%d", round);
            snprintf(fs, sizeof(fs), "%d", fds[1]);
            execl("/proc/self/exe", "storage_crash", "--child", path, rs, fs, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        /* Kill after a random number of acknowledgements (most rounds), or after a random delay. */
        bool by_time = rnd % 4 == 0;
        int want = (int)((rnd >> 8) % (OPS + 1));
        long delay_ms = (long)((rnd >> 20) % 60);
        int64_t t0 = sx_clock_mono_ms();
        int acked = 0, acks[MAX_WRITERS] = {0};
        bool bad_ack = false;
        ack a;
        for (;;) {
            if (!by_time && acked >= want)
                break;
            int timeout = -1;
            if (by_time) {
                long el = (long)(sx_clock_mono_ms() - t0);
                if (el >= delay_ms)
                    break;
                timeout = (int)(delay_ms - el);
            }
            struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
            int pr = poll(&pfd, 1, timeout);
            if (pr == 0)
                continue;
            if (pr < 0 || read(fds[0], &a, sizeof(a)) != sizeof(a))
                break; /* child gone */
            if (a.thread >= MAX_WRITERS || (int)a.index != acks[a.thread]) {
                bad_ack = true;
                break;
            }
            acks[a.thread]++;
            acked++;
        }
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        /* Acknowledgements already in the pipe count too: the child was told "done" for them. */
        while (!bad_ack && read(fds[0], &a, sizeof(a)) == sizeof(a)) {
            if (a.thread >= MAX_WRITERS || (int)a.index != acks[a.thread]) {
                bad_ack = true;
                break;
            }
            acks[a.thread]++;
            acked++;
        }
        close(fds[0]);
        REQUIRE(!bad_ack); /* acknowledgements arrive in order, from known writers */
        REQUIRE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL); /* not a child error */
        if (acked == 0)
            killed_early++;
        total_acked += acked;

        sx_storage_options opt = {.backend = "rocksdb", .path = path, .sync = true};
        sx_storage *s = NULL;
        int r = sx_storage_open(&opt, &s, err, sizeof(err));
        if (r < 0)
            fprintf(stderr, "round %d: reopen: %s\n", round, err);
        REQUIRE(r == 0);
        bool ok = true;
        for (int t = 0; t < writers_in(round) && ok; t++) {
            for (int i = 0; i < acks[t]; i++)
                REQUIRE(apply_op(model, round, t, i) == 0);
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "c/%02d/%d/", round, t);
            ok = same_contents(s, model, prefix, false);
            if (!ok && acks[t] < OPS) {
                /* The write after the writer's last acknowledged one may have committed. */
                REQUIRE(apply_op(model, round, t, acks[t]) == 0);
                ok = same_contents(s, model, prefix, true);
                in_flight_applied += ok;
            }
            if (!ok)
                fprintf(stderr, "round %d, writer %d: store differs from every acknowledged state (%d acknowledged)\n",
                        round, t, acks[t]);
        }
        /* And the store as a whole: earlier rounds intact, nothing outside the writers' keys. */
        if (ok && !same_contents(s, model, "", true)) {
            fprintf(stderr, "round %d: store differs from the model outside this round's writers\n", round);
            ok = false;
        }
        CHECK(ok);
        sx_storage_close(s);
        rounds++;
        if (!ok)
            break;
    }
    fprintf(stderr,
            "%d rounds, %d acknowledged writes, %d in-flight writes found committed, %d kills before "
            "the first acknowledgement\n",
            rounds, total_acked, in_flight_applied, killed_early);
}

static void test_sigkill_loses_no_acknowledged_write(void)
{
    const char *env = getenv("SX_CRASH_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    fprintf(stderr, "crash seed %llu (SX_CRASH_SEED to replay)\n", (unsigned long long)seed);
    char *dir = sx_test_tmpdir("crash");
    char path[4096];
    snprintf(path, sizeof(path), "%s/db", dir);
    sx_storage_options mopt = {.backend = "memory"};
    sx_storage *model = NULL;
    char err[256];
    if (sx_storage_open(&mopt, &model, err, sizeof(err)) == 0)
        crash_rounds(path, model, seed);
    else
        CHECK(!"memory model opens");
    sx_storage_close(model);
    sx_test_rmtree(dir);
    free(dir);
}

static const sx_test tests[] = {
    {"sigkill_loses_no_acknowledged_write", test_sigkill_loses_no_acknowledged_write},
};

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], atoi(argv[3]), atoi(argv[4]));
    signal(SIGPIPE, SIG_IGN);
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
