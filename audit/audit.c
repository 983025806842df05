/*
 * audit.c - the tamper-evident audit log: per-thread line buffers, one writer thread that numbers,
 * MACs and appends the lines, a head thread that stores the chain head (this node's, under its
 * node id; the legacy single head adopted at start-up), and server-side verification.
 *
 * Why a writer thread: the MAC chain needs one order, and a disk that stalls must not stall an
 * event loop. Loop threads append finished line bodies to their own buffer (an uncontended mutex,
 * no allocation once the buffer has grown) and never wait; the writer swaps the buffers out every
 * few ms, so reads of metadata cost a memcpy. Lines that must be on file before the server acts -
 * the intent line of a write or a reveal under fail_closed - are queued with sx_audit_log_async()
 * with a ticket, which wakes the writer; nobody blocks on them.
 *
 * Group commit: the writer takes every queued line (of every thread) as one batch, appends it with
 * write(), fdatasyncs it, and only then answers the batch's tickets, each through the post callback
 * to the thread that queued it. The chain head of the batch (seq and MAC) goes to the head thread,
 * which stores it while the writer already collects, writes and syncs the next batch: a slow store
 * costs no throughput. The head thread stores one head at a time and the writer hands it the next
 * one only when it is done, so the stored head is never ahead of the file and the file is ahead of
 * the stored head by at most the two newest batches (a crash there leaves lines after the head,
 * which verification accepts, as for a crash between a write and its head store).
 *
 * "Change nothing" under fail_closed: the server acts on a reveal or a write only once the ticket
 * of its intent line came back with 0, and answers 503 when it comes back with -EIO or not within
 * SX_AUDIT_SYNC_TIMEOUT_MS (its own timer). The outcome line follows asynchronously.
 *
 * On a failed write (or fdatasync) the batch is cut off again (ftruncate to the size before it) and
 * the chain rolls back to the last line on file, so the file stays verifiable after the disk
 * recovers.
 */
#include "audit/audit.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/log.h"
#include "crypto/crypto.h"

#define MAC_LEN        32
#define BODY_MAX       2048               /* one line body; every field is bounded (names, labels) */
#define SLOT_MAX_BYTES (8u * 1024 * 1024) /* per-thread backlog before lines are dropped */
#define IDLE_WAIT_MS   20
/* A batch goes to the file in pieces of about this size as its lines are made: copying a piece
 * that is still in the CPU's cache into the page cache costs a third of copying megabytes at once. */
#define OUT_CHUNK      (128u * 1024)
#define HEAD_FORMAT_V1 1 /* seq, mac */
#define HEAD_FORMAT    2 /* seq, mac, first seq and MAC of the current file; then the record MAC */
#define HEAD_V1_LEN    (1 + 8 + MAC_LEN)
#define HEAD_LEN       (1 + 8 + MAC_LEN + 8 + MAC_LEN)
#define OPEN_PREFIX    "\"event\":\"audit.open\",\"prev\":\""
#define NODE_FIELD     ",\"node\":\"" /* after an open line's prev: the node whose chain it is */
#define HEAD_KEY_SIZE  (sizeof(SX_AUDIT_HEAD_PREFIX) + SX_AUDIT_NODE_ID_MAX)

/* A line in a thread's buffer: its body's length (u16), its place in the order of all lines
 * (u64, native order), its body. */
#define REC_HDR 10

typedef struct slot {
    pthread_mutex_t mu;
    char *buf; /* records (REC_HDR, body), in the order they were queued */
    size_t len, cap;
    char *wbuf; /* the writer's: the buffer it took last, reused as buf at the next swap */
    size_t wlen, wcap;
    sx_audit_ticket *tickets, **tickets_tail; /* of lines in buf, in order */
    unsigned ntickets;
} __attribute__((aligned(64))) slot;

/* A chain head as stored: the last line on file and the current file's first line. */
typedef struct head_state {
    uint64_t seq, first_seq;
    uint8_t mac[MAC_LEN], first_mac[MAC_LEN];
} head_state;

struct sx_audit {
    const uint8_t *key;
    const uint8_t *record_key; /* MAC of the stored head (crypto.h, record MACs) */
    sx_storage *storage;
    char *path;
    char node_id[SX_AUDIT_NODE_ID_SIZE];
    char head_key[HEAD_KEY_SIZE]; /* SX_AUDIT_HEAD_PREFIX + node_id */
    size_t head_klen;
    bool fail_closed;
    void (*on_forged)(void *ctx); /* the stored head failed its MAC (may be NULL) */
    void *forged_ctx;
    int fd;
    unsigned nslots;
    slot *slots;
    void (*post)(void *post_ctx, unsigned thread_index, sx_audit_ticket *t);
    void *post_ctx;
    pthread_t tid;
    pthread_mutex_t mu; /* flags and flush counters */
    pthread_cond_t writer_cv;
    pthread_cond_t done_cv; /* a flush is answered */
    bool stop, reopen;
    uint64_t flush_req, flush_done;
    atomic_uint waiting;     /* tickets queued and not yet taken by the writer */
    atomic_bool writer_idle; /* the writer is (about to be) asleep: a ticket must wake it */
    pthread_mutex_t file_mu; /* the file descriptor (write, cut back, reopen) */
    /* the head thread: stores the head of the last batch while the writer goes on */
    pthread_t head_tid;
    pthread_mutex_t head_mu;
    pthread_cond_t head_cv;      /* a head to store, or stop */
    pthread_cond_t head_idle_cv; /* the head thread took and stored one */
    bool head_pending, head_busy, head_stop;
    head_state head_next;
    /* writer-only state */
    uint8_t prev[MAC_LEN];
    uint64_t seq; /* of the last line on file */
    bool need_open_line;
    /* The current file's first line (seq 0 = unknown): stored with the head, so a file whose start
     * was cut - even at a later audit.open line - fails verification. file_fresh: the file was
     * empty when opened, so its next line (the open line) becomes its first. */
    uint64_t first_seq;
    uint8_t first_mac[MAC_LEN];
    bool file_fresh;
    char *out;
    size_t out_cap;
    atomic_ullong order; /* the next line's place in the chain (see enqueue) */
    /* stats */
    atomic_ulong lines, dropped, failures;
    atomic_bool failing;
};

/* ---- line bodies ------------------------------------------------------------------------------- */

static size_t put_str(char *out, size_t n, const char *key, const char *v)
{
    static const char hex[] = "0123456789abcdef";
    size_t kl = strlen(key);
    out[n++] = ',';
    out[n++] = '"';
    memcpy(out + n, key, kl);
    n += kl;
    out[n++] = '"';
    out[n++] = ':';
    if (!v) {
        memcpy(out + n, "null", 4);
        return n + 4;
    }
    out[n++] = '"';
    /* Bounded: callers pass ids, names (<= 256) and labels (<= 128 bytes), 6x when escaped. */
    for (size_t i = 0; v[i] && i < 300; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + n, "\\u00", 4);
            n += 4;
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    return n;
}

/* The decimal digits of v at out (at most 20 and a sign); their count. */
static size_t put_int(char *out, long long v)
{
    char d[24];
    size_t n = 0, k = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        d[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[k++] = '-';
    while (n)
        out[k++] = d[--n];
    return k;
}

/* The body of a request line (without the leading {"seq":N, and the trailing MAC). */
static size_t format_body(char *out, const sx_audit_rec *r)
{
    static const char ev[] = "\"event\":\"request\"";
    size_t n = sizeof(ev) - 1;
    memcpy(out, ev, n);
    char ts[32];
    sx_time_format(sx_clock_wall_ms(), ts, sizeof(ts));
    n = put_str(out, n, "time", ts);
    n = put_str(out, n, "requestId", r->request_id);
    n = put_str(out, n, "tokenId", r->token_id);
    n = put_str(out, n, "label", r->label);
    n = put_str(out, n, "role", r->role);
    n = put_str(out, n, "client", r->client);
    n = put_str(out, n, "action", r->action);
    n = put_str(out, n, "scope", r->scope);
    n = put_str(out, n, "name", r->name);
    n = put_str(out, n, "phase", r->intent ? "intent" : "done");
    static const char st[] = ",\"status\":";
    memcpy(out + n, st, sizeof(st) - 1);
    n += sizeof(st) - 1;
    if (r->intent) {
        memcpy(out + n, "null", 4);
        n += 4;
    } else {
        n += put_int(out + n, r->status);
    }
    if (r->granted_role)
        n = put_str(out, n, "grantedRole", r->granted_role);
    return n;
}

/* ---- queueing ---------------------------------------------------------------------------------- */

bool sx_audit_fail_closed(const sx_audit *a)
{
    return a && a->fail_closed;
}

/* Append one line body (and its ticket, NULL for none) to the buffer of thread_index. False when
 * the buffer is full: the line is dropped. */
static bool enqueue(sx_audit *a, unsigned thread_index, const sx_audit_rec *rec, sx_audit_ticket *t)
{
    char body[BODY_MAX];
    size_t len = format_body(body, rec);
    slot *s = &a->slots[thread_index < a->nslots - 1 ? thread_index : a->nslots - 1];
    pthread_mutex_lock(&s->mu);
    if (s->len + len + REC_HDR > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 65536;
        while (nc < s->len + len + REC_HDR)
            nc *= 2;
        char *nb = nc <= SLOT_MAX_BYTES ? realloc(s->buf, nc) : NULL;
        if (!nb) {
            pthread_mutex_unlock(&s->mu);
            atomic_fetch_add_explicit(&a->dropped, 1, memory_order_relaxed);
            return false;
        }
        s->buf = nb;
        s->cap = nc;
    }
    /* Taken under the slot's lock, so a buffer's lines are in order; and a line queued after
     * another (on any thread) gets a later place: the chain keeps the order in which things
     * happened, not the order of the threads' buffers. */
    uint64_t order = atomic_fetch_add_explicit(&a->order, 1, memory_order_relaxed);
    s->buf[s->len] = (char)(len & 0xff);
    s->buf[s->len + 1] = (char)(len >> 8);
    memcpy(s->buf + s->len + 2, &order, 8);
    memcpy(s->buf + s->len + REC_HDR, body, len);
    s->len += len + REC_HDR;
    if (t) {
        t->next = NULL;
        *s->tickets_tail = t;
        s->tickets_tail = &t->next;
        s->ntickets++;
    }
    pthread_mutex_unlock(&s->mu);
    return true;
}

void sx_audit_log(sx_audit *a, unsigned thread_index, const sx_audit_rec *rec)
{
    if (a)
        (void)enqueue(a, thread_index, rec, NULL);
}

int sx_audit_log_async(sx_audit *a, unsigned thread_index, const sx_audit_rec *rec, sx_audit_ticket *t,
                       void (*done)(void *arg, int rc), void *arg)
{
    if (!a->post)
        return -ENOTSUP;
    t->done = done;
    t->arg = arg;
    t->thread_index = thread_index;
    t->rc = -EIO;
    if (!enqueue(a, thread_index, rec, t))
        return -ENOBUFS;
    /* Wake the writer when it sleeps. It sets writer_idle before it looks at waiting, and this
     * adds to waiting before it looks at writer_idle: one of the two sees the other's store. */
    atomic_fetch_add(&a->waiting, 1);
    if (atomic_load(&a->writer_idle)) {
        pthread_mutex_lock(&a->mu);
        pthread_cond_signal(&a->writer_cv);
        pthread_mutex_unlock(&a->mu);
    }
    return 0;
}

void sx_audit_ticket_done(sx_audit_ticket *t)
{
    t->done(t->arg, t->rc);
}

void sx_audit_flush(sx_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    uint64_t mine = ++a->flush_req;
    pthread_cond_signal(&a->writer_cv);
    while (a->flush_done < mine)
        pthread_cond_wait(&a->done_cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

void sx_audit_reopen(sx_audit *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->reopen = true;
    pthread_cond_signal(&a->writer_cv);
    pthread_mutex_unlock(&a->mu);
}

void sx_audit_get_stats(sx_audit *a, sx_audit_stats *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (!a)
        return;
    ret->lines = atomic_load(&a->lines);
    ret->dropped = atomic_load(&a->dropped);
    ret->write_failures = atomic_load(&a->failures);
    ret->failing = atomic_load(&a->failing);
}

/* ---- the writer -------------------------------------------------------------------------------- */

static int open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

static void tohex(char *out, const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
}

static bool reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap : 65536;
    while (nc < need)
        nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb)
        return false;
    *buf = nb;
    *cap = nc;
    return true;
}

/* Append one line for body to a->out at *len, chaining from *prev / *seq (advanced). */
static bool emit(sx_audit *a, size_t *len, const char *body, size_t blen, uint8_t *prev, uint64_t *seq)
{
    if (!reserve(&a->out, &a->out_cap, *len + blen + 128))
        return false;
    char *p = a->out + *len;
    (*seq)++;
    memcpy(p, "{\"seq\":", 7);
    size_t n = 7;
    n += put_int(p + n, (long long)*seq);
    p[n++] = ',';
    memcpy(p + n, body, blen);
    n += blen;
    crypto_generichash_state st;
    crypto_generichash_init(&st, a->key, 32, MAC_LEN);
    crypto_generichash_update(&st, prev, MAC_LEN);
    crypto_generichash_update(&st, (const unsigned char *)p, n);
    crypto_generichash_final(&st, prev, MAC_LEN);
    memcpy(p + n, ",\"mac\":\"", 8);
    n += 8;
    tohex(p + n, prev, MAC_LEN);
    n += 2 * MAC_LEN;
    memcpy(p + n, "\"}\n", 3);
    n += 3;
    *len += n;
    return true;
}

static size_t open_body(const sx_audit *a, char *out, const uint8_t *prev)
{
    size_t n = sizeof(OPEN_PREFIX) - 1;
    memcpy(out, OPEN_PREFIX, n);
    tohex(out + n, prev, MAC_LEN);
    n += 2 * MAC_LEN;
    out[n++] = '"';
    n = put_str(out, n, "node", a->node_id);
    char ts[32];
    sx_time_format(sx_clock_wall_ms(), ts, sizeof(ts));
    return put_str(out, n, "time", ts);
}

#define HEAD_REC_LEN (HEAD_LEN + SX_CRYPTO_RECORD_MACBYTES)

/* The record of head h under this node's key, with its record MAC. */
static void head_record(const sx_audit *a, const head_state *h, uint8_t *rec)
{
    rec[0] = HEAD_FORMAT;
    sx_be64_put(rec + 1, h->seq);
    memcpy(rec + 9, h->mac, MAC_LEN);
    sx_be64_put(rec + 9 + MAC_LEN, h->first_seq);
    memcpy(rec + 17 + MAC_LEN, h->first_mac, MAC_LEN);
    sx_crypto_record_mac(rec + HEAD_LEN, a->record_key, a->head_key, a->head_klen, rec, HEAD_LEN);
}

static int store_head(sx_audit *a, const head_state *h)
{
    uint8_t rec[HEAD_REC_LEN];
    head_record(a, h, rec);
    return sx_storage_put(a->storage, a->head_key, a->head_klen, rec, sizeof(rec), NULL);
}

/* The head stored under key (a node's, or the legacy SX_AUDIT_HEAD_KEY), and its revision when
 * ret_rev is not NULL. A format-1 head (written before the file's first line was recorded) leaves
 * *ret_first_seq 0. SX_CRYPTO_EFORGED (reported through on_forged) when the record fails its MAC. */
static int load_head(const sx_audit *a, const char *key, uint64_t *ret_seq, uint8_t *ret_mac, uint64_t *ret_first_seq,
                     uint8_t *ret_first_mac, uint64_t *ret_rev)
{
    void *val = NULL;
    size_t len = 0;
    int rc = sx_storage_get(a->storage, key, strlen(key), &val, &len, ret_rev);
    if (rc != 0)
        return rc;
    const uint8_t *v = val;
    if (sx_crypto_record_check(&len, a->record_key, key, strlen(key), val, len) != 0) {
        sx_storage_free(val);
        if (a->on_forged)
            a->on_forged(a->forged_ctx);
        return SX_CRYPTO_EFORGED;
    }
    if (!((len == HEAD_V1_LEN && v[0] == HEAD_FORMAT_V1) || (len == HEAD_LEN && v[0] == HEAD_FORMAT))) {
        sx_storage_free(val);
        return -EBADMSG;
    }
    *ret_seq = sx_be64_get(v + 1);
    memcpy(ret_mac, v + 9, MAC_LEN);
    *ret_first_seq = 0;
    if (v[0] == HEAD_FORMAT) {
        *ret_first_seq = sx_be64_get(v + 9 + MAC_LEN);
        memcpy(ret_first_mac, v + 17 + MAC_LEN, MAC_LEN);
    }
    sx_storage_free(val);
    return 0;
}

/* Parse the seq and MAC of the line of ll bytes at line; false when it is not one of ours. */
static bool line_seq_mac(const char *line, size_t ll, uint64_t *ret_seq, uint8_t *ret_mac);
#define MAC_TAIL_LEN (8 + 2 * MAC_LEN + 2) /* ,"mac":"<hex>"} */

/* Read the first line of the file open at fd (for a head that does not name it yet). */
static void read_first_line(sx_audit *a, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[BODY_MAX + 256];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    const char *nl = n > 0 ? memchr(buf, '\n', (size_t)n) : NULL;
    if (nl && line_seq_mac(buf, (size_t)(nl - buf), &a->first_seq, a->first_mac))
        return;
    a->first_seq = 0;
}

/* The chain MAC of a line whose bytes before ,"mac" are line[0..plen), after the MAC prev. */
static void line_mac(const sx_audit *a, const uint8_t *prev, const char *line, size_t plen, uint8_t *ret_mac)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, a->key, 32, MAC_LEN);
    crypto_generichash_update(&st, prev, MAC_LEN);
    crypto_generichash_update(&st, (const unsigned char *)line, plen);
    crypto_generichash_final(&st, ret_mac, MAC_LEN);
}

#define TAIL_CHUNK (1u << 20) /* the end of the file read first when looking for lines after the head */

/*
 * At start-up, on a file that already has lines: continue the chain from the file's last line when
 * the file is ahead of the stored head. A crash (or SIGKILL) between a batch's write and its head
 * store leaves such lines, which are the chain's; a restart that chained on from the head instead
 * would number its open line like one already on file and make the file fail verification. The
 * lines after the head are taken only as far as they chain from it (so an edited tail still
 * shows). A last line cut short by the crash (a write interrupted part-way; it was never answered)
 * is cut off first. Reads the file's end, more of it only when the lines after the head are many.
 */
static bool continue_from(sx_audit *a, int rfd, size_t size)
{
    for (size_t chunk = TAIL_CHUNK;; chunk *= 4) {
        size_t off = size > chunk ? size - chunk : 0;
        char *buf = malloc(size - off);
        if (!buf)
            return false;
        ssize_t n = pread(rfd, buf, size - off, (off_t)off);
        if (n != (ssize_t)(size - off)) {
            free(buf);
            return false;
        }
        size_t len = (size_t)n;
        if (buf[len - 1] != '\n') {
            const char *last = NULL;
            for (size_t i = len; i-- > 0;)
                if (buf[i] == '\n') {
                    last = buf + i;
                    break;
                }
            if (!last && off > 0) { /* a line longer than the chunk: read more */
                free(buf);
                continue;
            }
            size_t keep = last ? (size_t)(last - buf) + 1 : 0;
            if (ftruncate(a->fd, (off_t)(off + keep)) == 0) {
                sx_log(SX_LOG_WARN, "audit log: cut an incomplete last line from \"%s\" (the server stopped mid-write)",
                       a->path);
                size = off + keep;
                len = keep;
            }
        }
        /* Find the head's line (none: the chain starts at the file's first line), then follow. */
        size_t i = 0;
        if (off > 0) {
            const char *nl = memchr(buf, '\n', len);
            i = nl ? (size_t)(nl - buf) + 1 : len;
        }
        bool found = a->seq == 0 && off == 0;
        uint64_t seq = a->seq;
        uint8_t prev[MAC_LEN];
        memcpy(prev, a->prev, MAC_LEN);
        while (i < len) {
            const char *line = buf + i;
            const char *nl = memchr(line, '\n', len - i);
            size_t ll = (size_t)(nl - line);
            i += ll + 1;
            uint64_t ls;
            uint8_t lm[MAC_LEN], want[MAC_LEN];
            if (!line_seq_mac(line, ll, &ls, lm)) {
                if (found)
                    break;
                continue;
            }
            if (!found) {
                found = ls == a->seq && sodium_memcmp(lm, a->prev, MAC_LEN) == 0;
                continue;
            }
            line_mac(a, prev, line, ll - MAC_TAIL_LEN, want);
            if (ls != seq + 1 || sodium_memcmp(want, lm, MAC_LEN) != 0)
                break;
            seq = ls;
            memcpy(prev, lm, MAC_LEN);
        }
        free(buf);
        if (found || off == 0) {
            if (found && seq != a->seq) {
                sx_log(SX_LOG_INFO,
                       "audit log: \"%s\" goes on past the stored chain head (seq %llu to %llu): continuing from its "
                       "last line",
                       a->path, (unsigned long long)a->seq, (unsigned long long)seq);
                a->seq = seq;
                memcpy(a->prev, prev, MAC_LEN);
            }
            return found;
        }
    }
}

/* continue_from() on the audit file; true when the file holds the line at the chain head (seq and
 * MAC of a->seq, a->prev), or the head is genesis. */
static bool continue_from_file(sx_audit *a)
{
    struct stat sb;
    if (fstat(a->fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0)
        return false;
    int rfd = open(a->path, O_RDONLY | O_CLOEXEC); /* a->fd is write-only */
    if (rfd < 0)
        return false;
    bool found = continue_from(a, rfd, (size_t)sb.st_size);
    close(rfd);
    return found;
}

/* Answer the tickets of a batch with rc (0 = their lines are on file). A posted ticket belongs to
 * its owner again and may be gone at once: read next before posting. */
static void answer(sx_audit *a, sx_audit_ticket *list, int rc)
{
    for (sx_audit_ticket *t = list, *next; t; t = next) {
        next = t->next;
        t->next = NULL;
        t->rc = rc == 0 ? 0 : -EIO;
        a->post(a->post_ctx, t->thread_index, t);
    }
}

/* A batch on its way to the file: written piece by piece (out_flush), then fdatasync'ed, or cut back
 * to the file's size before it when any piece or the sync failed (out_end). The file's lock is
 * held from the first piece to the end. */
typedef struct batch_out {
    bool started;
    off_t before; /* the file's size before the batch (-1: unknown) */
    size_t written;
    int rc;
} batch_out;

/* Append a->out[0..*len) to the file (unless an earlier piece failed); *len becomes 0. */
static void out_flush(sx_audit *a, batch_out *b, size_t *len)
{
    if (!b->started) {
        b->started = true;
        pthread_mutex_lock(&a->file_mu);
        b->rc = a->fd < 0 ? -EBADF : 0;
        b->before = a->fd < 0 ? -1 : lseek(a->fd, 0, SEEK_END);
    }
    size_t off = 0;
    while (b->rc == 0 && off < *len) {
        ssize_t w = write(a->fd, a->out + off, *len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            b->rc = w < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)w;
    }
    b->written += off;
    *len = 0;
}

/* Write what is left and fdatasync: 0 once every line of the batch is on file. rc: an error met
 * while making the lines (the batch is then cut back too). */
static int out_end(sx_audit *a, batch_out *b, size_t *len, int rc)
{
    out_flush(a, b, len);
    if (b->rc == 0)
        b->rc = rc;
    /* EINVAL: a file that cannot be synced (a pipe, a character device) */
    if (b->rc == 0 && fdatasync(a->fd) != 0 && errno != EINVAL)
        b->rc = -errno;
    if (b->rc != 0 && b->before >= 0 && b->written > 0 && ftruncate(a->fd, b->before) != 0) {
        /* /dev/full and friends: nothing was written anyway */
    }
    pthread_mutex_unlock(&a->file_mu);
    return b->rc;
}

/* Give the head thread the head of the batch just written, once it has stored the previous one:
 * one store in flight at a time, so the stored head trails the file by at most two batches. */
static void head_handoff(sx_audit *a, const head_state *h)
{
    pthread_mutex_lock(&a->head_mu);
    while (a->head_pending || a->head_busy)
        pthread_cond_wait(&a->head_idle_cv, &a->head_mu);
    a->head_next = *h;
    a->head_pending = true;
    pthread_cond_signal(&a->head_cv);
    pthread_mutex_unlock(&a->head_mu);
}

static void *head_main(void *arg)
{
    sx_audit *a = arg;
    pthread_mutex_lock(&a->head_mu);
    for (;;) {
        while (!a->head_pending && !a->head_stop)
            pthread_cond_wait(&a->head_cv, &a->head_mu);
        if (!a->head_pending)
            break; /* stopping, and every head is stored */
        head_state h = a->head_next;
        a->head_pending = false;
        a->head_busy = true;
        pthread_mutex_unlock(&a->head_mu);
        int hrc = store_head(a, &h);
        if (hrc != 0)
            sx_log(SX_LOG_WARN, "audit log: cannot store the chain head: %s", sx_storage_strerror(hrc));
        pthread_mutex_lock(&a->head_mu);
        a->head_busy = false;
        pthread_cond_broadcast(&a->head_idle_cv);
    }
    pthread_mutex_unlock(&a->head_mu);
    return NULL;
}

static bool file_empty(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 && sb.st_size == 0;
}

static void do_reopen(sx_audit *a)
{
    int fd = open_file(a->path);
    pthread_mutex_lock(&a->file_mu);
    if (a->fd >= 0)
        close(a->fd);
    a->fd = fd < 0 ? -1 : fd;
    pthread_mutex_unlock(&a->file_mu);
    if (fd < 0)
        sx_log(SX_LOG_ERROR, "audit log: cannot reopen \"%s\": %s", a->path, strerror(-fd));
    else
        sx_log(SX_LOG_INFO, "audit log reopened: \"%s\"", a->path);
    a->need_open_line = true;
    a->file_fresh = fd >= 0 && file_empty(fd);
    if (fd >= 0 && !a->file_fresh)
        read_first_line(a, a->path); /* reopened onto a file that already has lines */
}

/* Take every queued line, write them as one batch, answer their tickets and have the head stored. */
static void run_batch(sx_audit *a)
{
    uint8_t prev[MAC_LEN];
    memcpy(prev, a->prev, MAC_LEN);
    uint64_t seq = a->seq;
    size_t len = 0, count = 0;
    bool ok = true;
    batch_out out = {0};
    uint64_t first_seq = a->first_seq;
    uint8_t first_mac[MAC_LEN];
    memcpy(first_mac, a->first_mac, MAC_LEN);
    if (a->need_open_line) {
        char body[256];
        size_t bl = open_body(a, body, prev);
        ok = emit(a, &len, body, bl, prev, &seq);
        count++;
        if (a->file_fresh) { /* the open line starts this file */
            first_seq = seq;
            memcpy(first_mac, prev, MAC_LEN);
        }
    }
    /* Take every buffer with all their locks held at once: a consistent cut, so that a line taken
     * now never follows one queued before it that is left for the next batch. */
    sx_audit_ticket *tickets = NULL, **tickets_tail = &tickets;
    unsigned ntickets = 0;
    for (unsigned i = 0; i < a->nslots; i++)
        pthread_mutex_lock(&a->slots[i].mu);
    for (unsigned i = 0; i < a->nslots; i++) {
        slot *s = &a->slots[i];
        char *b = s->buf;
        size_t bc = s->cap;
        s->buf = s->wbuf;
        s->cap = s->wcap;
        s->wbuf = b;
        s->wcap = bc;
        s->wlen = s->len;
        s->len = 0;
        if (s->tickets) {
            *tickets_tail = s->tickets;
            tickets_tail = s->tickets_tail;
            ntickets += s->ntickets;
        }
        s->tickets = NULL;
        s->tickets_tail = &s->tickets;
        s->ntickets = 0;
    }
    for (unsigned i = a->nslots; i-- > 0;)
        pthread_mutex_unlock(&a->slots[i].mu);
    /* Merge the buffers by each line's place in the order. */
    size_t pos[a->nslots];
    memset(pos, 0, sizeof(pos));
    for (;;) {
        unsigned best = a->nslots;
        uint64_t best_order = 0;
        for (unsigned i = 0; i < a->nslots; i++) {
            slot *s = &a->slots[i];
            if (pos[i] + REC_HDR > s->wlen)
                continue;
            uint64_t o;
            memcpy(&o, s->wbuf + pos[i] + 2, 8);
            if (best == a->nslots || o < best_order) {
                best = i;
                best_order = o;
            }
        }
        if (best == a->nslots)
            break;
        slot *s = &a->slots[best];
        const char *r = s->wbuf + pos[best];
        size_t ll = (unsigned char)r[0] | (size_t)(unsigned char)r[1] << 8;
        ok = emit(a, &len, r + REC_HDR, ll, prev, &seq) && ok;
        pos[best] += ll + REC_HDR;
        count++;
        if (len >= OUT_CHUNK)
            out_flush(a, &out, &len);
    }
    if (ntickets)
        atomic_fetch_sub(&a->waiting, ntickets);
    if (count == 0)
        return;
    int rc = out_end(a, &out, &len, ok ? 0 : -ENOMEM);
    answer(a, tickets, rc);
    if (rc == 0) {
        memcpy(a->prev, prev, MAC_LEN);
        a->seq = seq;
        a->first_seq = first_seq;
        memcpy(a->first_mac, first_mac, MAC_LEN);
        a->file_fresh = false;
        a->need_open_line = false;
        head_state h = {.seq = seq, .first_seq = first_seq};
        memcpy(h.mac, prev, MAC_LEN);
        memcpy(h.first_mac, first_mac, MAC_LEN);
        head_handoff(a, &h);
        atomic_fetch_add(&a->lines, count);
        if (atomic_exchange(&a->failing, false))
            sx_log(SX_LOG_INFO, "audit log: writing again to \"%s\"", a->path);
    } else {
        atomic_fetch_add(&a->failures, 1);
        atomic_fetch_add(&a->dropped, count);
        if (!atomic_exchange(&a->failing, true))
            sx_log(SX_LOG_ERROR, "audit log: cannot write to \"%s\": %s", a->path, strerror(-rc));
    }
}

static void *writer_main(void *arg)
{
    sx_audit *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        if (!a->reopen && !a->stop && a->flush_req == a->flush_done && atomic_load(&a->waiting) == 0) {
            atomic_store(&a->writer_idle, true);
            if (atomic_load(&a->waiting) == 0) {
                struct timespec ts = sx_clock_mono_deadline(IDLE_WAIT_MS);
                pthread_cond_timedwait(&a->writer_cv, &a->mu, &ts);
            }
            atomic_store(&a->writer_idle, false);
        }
        bool reopen = a->reopen, stop = a->stop;
        uint64_t flush = a->flush_req;
        a->reopen = false;
        pthread_mutex_unlock(&a->mu);
        if (reopen) {
            run_batch(a); /* what was queued for the old file goes there */
            do_reopen(a);
        }
        run_batch(a);
        pthread_mutex_lock(&a->mu);
        if (a->flush_done < flush) {
            a->flush_done = flush;
            pthread_cond_broadcast(&a->done_cv);
        }
        if (stop)
            break;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- the node id ------------------------------------------------------------------------------- */

bool sx_audit_node_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > SX_AUDIT_NODE_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

const char *sx_audit_node_id(const sx_audit *a)
{
    return a->node_id;
}

/* Read up to cap bytes from fd (fewer at its end or on an error); returns how many. */
static size_t read_upto(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Read the node id kept in file (one line); -EBADMSG when it holds anything but an id. */
static int read_node_file(const char *file, char *ret_id)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    char buf[SX_AUDIT_NODE_ID_SIZE + 2];
    size_t got = read_upto(fd, buf, sizeof(buf));
    close(fd);
    if (got > 0 && buf[got - 1] == '\n')
        got--;
    if (!sx_audit_node_id_valid(buf, got))
        return -EBADMSG;
    memcpy(ret_id, buf, got);
    ret_id[got] = '\0';
    return 0;
}

/* This node's id: the configured one, or the one kept next to the audit file (created with a new
 * random id on the first start; O_EXCL, so two starts racing end up with the same id). */
static int set_node_id(sx_audit *a, const char *configured, char *err, size_t errlen)
{
    if (configured && *configured) {
        if (!sx_audit_node_id_valid(configured, strlen(configured))) {
            snprintf(err, errlen, "the node id must be 1..%u characters of [A-Za-z0-9._-]", SX_AUDIT_NODE_ID_MAX);
            return -EINVAL;
        }
        snprintf(a->node_id, sizeof(a->node_id), "%s", configured);
        return 0;
    }
    size_t plen = strlen(a->path);
    char *file = malloc(plen + sizeof(SX_AUDIT_NODE_FILE_SUFFIX));
    if (!file)
        return -ENOMEM;
    memcpy(file, a->path, plen);
    memcpy(file + plen, SX_AUDIT_NODE_FILE_SUFFIX, sizeof(SX_AUDIT_NODE_FILE_SUFFIX));
    int rc = 0;
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        uint8_t rnd[SX_AUDIT_NODE_ID_RANDOM];
        randombytes_buf(rnd, sizeof(rnd));
        char line[2 * SX_AUDIT_NODE_ID_RANDOM + 1];
        tohex(line, rnd, sizeof(rnd));
        line[2 * SX_AUDIT_NODE_ID_RANDOM] = '\n';
        if (write(fd, line, sizeof(line)) != (ssize_t)sizeof(line) || fsync(fd) != 0) {
            rc = errno ? -errno : -EIO;
            close(fd);
            unlink(file);
            snprintf(err, errlen, "cannot write the audit node id file \"%s\": %s", file, strerror(-rc));
            free(file);
            return rc;
        }
        close(fd);
        memcpy(a->node_id, line, 2 * SX_AUDIT_NODE_ID_RANDOM);
        a->node_id[2 * SX_AUDIT_NODE_ID_RANDOM] = '\0';
    } else if (errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "cannot create the audit node id file \"%s\": %s", file, strerror(-rc));
    } else if ((rc = read_node_file(file, a->node_id)) == -EBADMSG) {
        snprintf(err, errlen,
                 "the audit node id file \"%s\" is corrupt (it must hold one id of 1..%u characters of "
                 "[A-Za-z0-9._-]): restore it, or set [server] node_id to this node's id",
                 file, SX_AUDIT_NODE_ID_MAX);
    } else if (rc != 0) {
        snprintf(err, errlen, "cannot read the audit node id file \"%s\": %s", file, strerror(-rc));
    }
    free(file);
    return rc;
}

/* Move the legacy head (rev) to this node's key, in one batch that fails if either changed. */
static int adopt_legacy_head(sx_audit *a, uint64_t rev, const head_state *h)
{
    uint8_t rec[HEAD_REC_LEN];
    head_record(a, h, rec);
    sx_storage_op ops[2] = {
        {.kind = SX_STORAGE_OP_PUT,
         .key = a->head_key,
         .klen = a->head_klen,
         .val = rec,
         .vlen = sizeof(rec),
         .cond = SX_STORAGE_COND_ABSENT},
        {.kind = SX_STORAGE_OP_DELETE,
         .key = SX_AUDIT_HEAD_KEY,
         .klen = sizeof(SX_AUDIT_HEAD_KEY) - 1,
         .cond = SX_STORAGE_COND_REV,
         .rev = rev},
    };
    return sx_storage_batch(a->storage, ops, 2, NULL);
}

int sx_audit_new(sx_audit **ret, const sx_audit_options *opt, sx_storage *st, const uint8_t *key,
                 const uint8_t *record_key, unsigned nthreads, char *err, size_t errlen)
{
    if (!opt || !opt->path) {
        snprintf(err, errlen, "no audit log file");
        return -EINVAL;
    }
    if (!key || !record_key) {
        snprintf(err, errlen, "the keyring has no audit key");
        return -EINVAL;
    }
    sx_audit *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->key = key;
    a->record_key = record_key;
    a->storage = st;
    a->fail_closed = opt->fail_closed;
    a->on_forged = opt->on_forged;
    a->forged_ctx = opt->ctx;
    a->post = opt->post;
    a->post_ctx = opt->post_ctx;
    a->nslots = nthreads + 1; /* the last one is shared by worker-pool threads */
    a->slots = calloc(a->nslots, sizeof(*a->slots));
    a->path = strdup(opt->path);
    if (!a->slots || !a->path) {
        free(a->slots);
        free(a->path);
        free(a);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < a->nslots; i++) {
        pthread_mutex_init(&a->slots[i].mu, NULL);
        a->slots[i].tickets_tail = &a->slots[i].tickets;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->file_mu, NULL);
    pthread_mutex_init(&a->head_mu, NULL);
    sx_clock_cond_init(&a->writer_cv);
    sx_clock_cond_init(&a->done_cv);
    pthread_cond_init(&a->head_cv, NULL);
    pthread_cond_init(&a->head_idle_cv, NULL);
    a->need_open_line = true;
    a->fd = -1;
    int rc = set_node_id(a, opt->node_id, err, errlen);
    if (rc != 0) {
        sx_audit_free(a);
        return rc;
    }
    a->head_klen = (size_t)snprintf(a->head_key, sizeof(a->head_key), "%s%s", SX_AUDIT_HEAD_PREFIX, a->node_id);
    const char *head_key = a->head_key;
    rc = load_head(a, head_key, &a->seq, a->prev, &a->first_seq, a->first_mac, NULL);
    /* No head of our own: the store's legacy head, which this node adopts if its file continues it. */
    uint64_t legacy_rev = 0;
    bool legacy = false;
    if (rc == -ENOENT) {
        head_key = SX_AUDIT_HEAD_KEY;
        rc = load_head(a, head_key, &a->seq, a->prev, &a->first_seq, a->first_mac, &legacy_rev);
        legacy = rc == 0;
    }
    if (rc == -ENOENT) {
        a->seq = 0;
        memset(a->prev, 0, MAC_LEN);
    } else if (rc == SX_CRYPTO_EFORGED) {
        /* Starting a new chain would hide whatever the edit was meant to hide. */
        snprintf(err, errlen,
                 "the audit chain head (%s) fails its MAC: it was edited in storage; restore it from a backup",
                 head_key);
        sx_audit_free(a);
        return rc;
    } else if (rc != 0) {
        snprintf(err, errlen, "cannot read the audit chain head: %s", sx_storage_strerror(rc));
        sx_audit_free(a);
        return rc;
    }
    a->fd = open_file(a->path);
    if (a->fd < 0) {
        rc = a->fd;
        snprintf(err, errlen, "cannot open audit log \"%s\": %s", a->path, strerror(-rc));
        sx_audit_free(a);
        return rc;
    }
    /* An empty file starts with our open line. A file with lines keeps the first line the head
     * names (a restart appends to it), so lines cut from its start while the server was down show;
     * a head that names none yet (written before it could) learns it from the file once. */
    a->file_fresh = file_empty(a->fd);
    if (legacy && (a->file_fresh || !continue_from_file(a))) {
        /* Another node's chain (or a file that lost it): leave the legacy head to the node whose
         * file continues it, and chain on from this file's own lines. */
        legacy = false;
        rc = -ENOENT;
        a->seq = 0;
        a->first_seq = 0;
        memset(a->prev, 0, MAC_LEN);
    } else if (legacy) {
        head_state h = {.seq = a->seq, .first_seq = a->first_seq};
        memcpy(h.mac, a->prev, MAC_LEN);
        memcpy(h.first_mac, a->first_mac, MAC_LEN);
        if ((rc = adopt_legacy_head(a, legacy_rev, &h)) != 0) {
            snprintf(err, errlen,
                     "cannot move the audit chain head %s to this node's %s: %s (another node took it: is its audit "
                     "file the same as this one?)",
                     SX_AUDIT_HEAD_KEY, a->head_key, sx_storage_strerror(rc));
            sx_audit_free(a);
            return rc;
        }
    }
    if (a->file_fresh)
        a->first_seq = 0;
    else if (rc != 0 || a->first_seq == 0)
        read_first_line(a, a->path);
    if (!a->file_fresh && !legacy)
        continue_from_file(a);
    if ((rc = pthread_create(&a->head_tid, NULL, head_main, a)) != 0) {
        snprintf(err, errlen, "cannot start the audit head thread");
        a->head_tid = 0;
        sx_audit_free(a);
        return -rc;
    }
    if ((rc = pthread_create(&a->tid, NULL, writer_main, a)) != 0) {
        snprintf(err, errlen, "cannot start the audit writer");
        a->tid = 0;
        sx_audit_free(a);
        return -rc;
    }
    *ret = a;
    return 0;
}

void sx_audit_free(sx_audit *a)
{
    if (!a)
        return;
    if (a->tid) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->writer_cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->tid, NULL);
    }
    if (a->head_tid) { /* after the writer: it stores the last batch's head */
        pthread_mutex_lock(&a->head_mu);
        a->head_stop = true;
        pthread_cond_signal(&a->head_cv);
        pthread_mutex_unlock(&a->head_mu);
        pthread_join(a->head_tid, NULL);
    }
    if (a->fd >= 0)
        close(a->fd);
    for (unsigned i = 0; a->slots && i < a->nslots; i++) {
        free(a->slots[i].buf);
        free(a->slots[i].wbuf);
        pthread_mutex_destroy(&a->slots[i].mu);
    }
    free(a->slots);
    free(a->out);
    free(a->path);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->file_mu);
    pthread_cond_destroy(&a->writer_cv);
    pthread_cond_destroy(&a->done_cv);
    pthread_mutex_destroy(&a->head_mu);
    pthread_cond_destroy(&a->head_cv);
    pthread_cond_destroy(&a->head_idle_cv);
    free(a);
}

/* ---- verification ------------------------------------------------------------------------------ */

static int unhex(uint8_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v << 4 | d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

static void fail_at(sx_audit_report *rep, uint64_t line, const char *fmt, unsigned long long x)
{
    rep->ok = false;
    rep->bad_line = line;
    snprintf(rep->reason, sizeof(rep->reason), fmt, x);
}

_Static_assert(MAC_TAIL_LEN == 74, "the MAC field is 74 bytes from the end of a line");
static const char field_m[] = ",\"mac\":\""; /* the public form of the last field, not a MAC */

static bool line_seq_mac(const char *line, size_t ll, uint64_t *ret_seq, uint8_t *ret_mac)
{
    if (ll < MAC_TAIL_LEN + 10 || memcmp(line, "{\"seq\":", 7) != 0 ||
        memcmp(line + ll - MAC_TAIL_LEN, field_m, 8) != 0 || unhex(ret_mac, line + ll - MAC_TAIL_LEN + 8, MAC_LEN) != 0)
        return false;
    uint64_t seq = 0;
    for (size_t i = 7; i < 27 && line[i] >= '0' && line[i] <= '9'; i++)
        seq = seq * 10 + (uint64_t)(line[i] - '0');
    *ret_seq = seq;
    return seq != 0;
}

/* The node an audit.open line of ll bytes names: 1 (its id in ret_node), 0 for an open line that
 * names none (written before per-node chains), -1 for any other line. */
static int open_line_node(const char *line, size_t ll, char *ret_node)
{
    size_t i = 7;
    if (ll < 8 || memcmp(line, "{\"seq\":", 7) != 0)
        return -1;
    while (i < ll && line[i] >= '0' && line[i] <= '9')
        i++;
    if (i >= ll || line[i] != ',')
        return -1;
    i++;
    if (ll - i < sizeof(OPEN_PREFIX) - 1 + 2 * MAC_LEN + 1 ||
        memcmp(line + i, OPEN_PREFIX, sizeof(OPEN_PREFIX) - 1) != 0)
        return -1;
    i += sizeof(OPEN_PREFIX) - 1 + 2 * MAC_LEN + 1;
    if (ll - i < sizeof(NODE_FIELD) - 1 || memcmp(line + i, NODE_FIELD, sizeof(NODE_FIELD) - 1) != 0)
        return 0;
    i += sizeof(NODE_FIELD) - 1;
    const char *end = memchr(line + i, '"', ll - i);
    size_t n = end ? (size_t)(end - (line + i)) : 0;
    if (!sx_audit_node_id_valid(line + i, n))
        return 0;
    memcpy(ret_node, line + i, n);
    ret_node[n] = '\0';
    return 1;
}

/* The node named by the first audit.open line of the file at path that names one ("" for none). */
static int file_node(const char *path, char *ret_node)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    ret_node[0] = '\0';
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        size_t ll = (size_t)n - (line[n - 1] == '\n');
        if (open_line_node(line, ll, ret_node) == 1)
            break;
    }
    free(line);
    fclose(f);
    return 0;
}

/* Check the lines of buf[0..len); fills rep (ok, counts, first bad line). Every open line naming a
 * node must name rep->node, and open lines naming none only come before the first that does. */
static void verify_lines(sx_audit *a, const char *buf, size_t len, sx_audit_report *rep)
{
    uint8_t prev[MAC_LEN], mac[MAC_LEN], got[MAC_LEN];
    memset(prev, 0, MAC_LEN);
    uint64_t lineno = 0, last_seq = 0;
    bool named = false;
    rep->ok = true;
    for (size_t off = 0; off < len;) {
        const char *line = buf + off;
        const char *nl = memchr(line, '\n', len - off);
        lineno++;
        if (!nl) {
            fail_at(rep, lineno, "line %llu is incomplete (the file was cut in the middle of a line)", lineno);
            return;
        }
        size_t ll = (size_t)(nl - line);
        off += ll + 1;
        if (ll < MAC_TAIL_LEN + 10 || memcmp(line, "{\"seq\":", 7) != 0 || memcmp(line + ll - 74, field_m, 8) != 0 ||
            memcmp(line + ll - 2, "\"}", 2) != 0 || unhex(got, line + ll - MAC_TAIL_LEN + 8, MAC_LEN) != 0) {
            fail_at(rep, lineno, "line %llu is not an audit line (its form was changed)", lineno);
            return;
        }
        size_t plen = ll - MAC_TAIL_LEN;
        uint64_t seq = 0;
        size_t i = 7;
        while (i < plen && line[i] >= '0' && line[i] <= '9' && i < 27)
            seq = seq * 10 + (uint64_t)(line[i++] - '0');
        if (i == 7 || i >= plen || line[i] != ',') {
            fail_at(rep, lineno, "line %llu has no valid sequence number", lineno);
            return;
        }
        i++;
        bool open = plen - i > sizeof(OPEN_PREFIX) - 1 + 2 * MAC_LEN &&
                    memcmp(line + i, OPEN_PREFIX, sizeof(OPEN_PREFIX) - 1) == 0;
        if (open) {
            uint8_t p[MAC_LEN];
            if (unhex(p, line + i + sizeof(OPEN_PREFIX) - 1, MAC_LEN) != 0) {
                fail_at(rep, lineno, "line %llu has a malformed prev field", lineno);
                return;
            }
            /* The first line of a file says where its chain starts; later open lines (a restart
             * appending to the same file) must continue the chain, or restart it at genesis. */
            if (lineno == 1 || sodium_is_zero(p, MAC_LEN)) {
                memcpy(prev, p, MAC_LEN);
                last_seq = seq - 1;
            }
            char node[SX_AUDIT_NODE_ID_SIZE];
            int nk = open_line_node(line, ll, node);
            if (nk == 1 && strcmp(node, rep->node) != 0) {
                rep->ok = false;
                rep->bad_line = lineno;
                snprintf(rep->reason, sizeof(rep->reason),
                         "line %llu names node %s but the file is node %s's chain (lines of two nodes were mixed)",
                         (unsigned long long)lineno, node, rep->node);
                return;
            }
            if (nk == 0 && named) {
                fail_at(rep, lineno, "line %llu names no node after lines that name one (lines were mixed)", lineno);
                return;
            }
            named = named || nk == 1;
        } else if (lineno == 1) {
            fail_at(rep, 1, "line %llu is not the audit.open line a file starts with (lines were cut from the start)",
                    1);
            return;
        }
        if (seq != last_seq + 1) {
            fail_at(rep, lineno, "line %llu is out of sequence (a line before it was deleted, inserted or moved)",
                    lineno);
            return;
        }
        line_mac(a, prev, line, plen, mac);
        if (sodium_memcmp(mac, got, MAC_LEN) != 0) {
            fail_at(rep, lineno, "line %llu fails its MAC (it was changed, or lines were reordered or removed)",
                    lineno);
            return;
        }
        memcpy(prev, mac, MAC_LEN);
        if (lineno == 1)
            rep->first_seq = seq;
        last_seq = seq;
        rep->lines = lineno;
        rep->last_seq = seq;
    }
}

static bool first_line_is(const char *buf, size_t len, const uint8_t *mac)
{
    const char *nl = memchr(buf, '\n', len);
    uint64_t seq;
    uint8_t m[MAC_LEN];
    return nl && line_seq_mac(buf, (size_t)(nl - buf), &seq, m) && sodium_memcmp(m, mac, MAC_LEN) == 0;
}

int sx_audit_verify(sx_audit *a, const char *path, bool rotated, sx_audit_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    uint8_t head_mac[MAC_LEN], first_mac[MAC_LEN];
    uint64_t head_seq = 0, first_seq = 0;
    /* Whose chain: the node its open lines name (a file from before per-node chains: the legacy
     * head, while it exists). */
    struct stat sb0; /* never open a FIFO or a device */
    if (stat(path, &sb0) != 0)
        return -errno;
    if (!S_ISREG(sb0.st_mode))
        return -EINVAL;
    int nrc = file_node(path, rep->node);
    if (nrc != 0)
        return nrc;
    char key[HEAD_KEY_SIZE];
    if (rep->node[0])
        snprintf(key, sizeof(key), "%s%s", SX_AUDIT_HEAD_PREFIX, rep->node);
    else
        snprintf(key, sizeof(key), "%s", SX_AUDIT_HEAD_KEY);
    /* Head first, then the file's size: a head is stored only once its lines are on file, so every
     * line up to the head is inside the size read here (file_mu: not across a reopen). */
    pthread_mutex_lock(&a->file_mu);
    int hrc = load_head(a, key, &head_seq, head_mac, &first_seq, first_mac, NULL);
    struct stat sb;
    int src = stat(path, &sb);
    int serr = errno;
    pthread_mutex_unlock(&a->file_mu);
    if (hrc == SX_CRYPTO_EFORGED) {
        rep->ok = false;
        snprintf(rep->reason, sizeof(rep->reason),
                 "the server's chain head record fails its MAC: it was edited in storage");
        return 0;
    }
    if (hrc != 0 && hrc != -ENOENT)
        return hrc;
    if (src != 0)
        return -serr;
    if (!S_ISREG(sb.st_mode))
        return -EINVAL;
    size_t size = (size_t)sb.st_size;
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return -ENOMEM;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(buf);
        return -e;
    }
    size_t got = read_upto(fd, buf, size);
    close(fd);
    rep->head_seq = hrc == 0 ? head_seq : 0;
    if (got == 0) {
        free(buf);
        rep->ok = false;
        snprintf(rep->reason, sizeof(rep->reason), "the file is empty");
        return 0;
    }
    verify_lines(a, buf, got, rep);
    if (rep->ok && !rotated && rep->head_seq) {
        /* The line at the head must carry the head's MAC; a file that ends before the head lost
         * its tail. Lines after the head are allowed: a crash between append and head update. */
        if (rep->last_seq < rep->head_seq) {
            rep->ok = false;
            snprintf(rep->reason, sizeof(rep->reason),
                     "the file ends at seq %llu but the server's chain head is seq %llu: lines were cut from the end",
                     (unsigned long long)rep->last_seq, (unsigned long long)rep->head_seq);
        } else if (first_seq && rep->first_seq != first_seq) {
            rep->ok = false;
            snprintf(rep->reason, sizeof(rep->reason),
                     "the file starts at seq %llu but the server recorded that it starts at seq %llu: lines were cut "
                     "from the start",
                     (unsigned long long)rep->first_seq, (unsigned long long)first_seq);
        } else if (first_seq && !first_line_is(buf, got, first_mac)) {
            rep->ok = false;
            snprintf(rep->reason, sizeof(rep->reason),
                     "the file's first line does not carry the MAC the server recorded for it: lines were cut from "
                     "the start");
        } else if (rep->first_seq > rep->head_seq) {
            rep->ok = false;
            snprintf(rep->reason, sizeof(rep->reason), "the file starts after the server's chain head (seq %llu)",
                     (unsigned long long)rep->head_seq);
        } else {
            /* find the head line's MAC */
            bool match = false;
            for (size_t off = 0; off < got;) {
                const char *line = buf + off;
                const char *nl = memchr(line, '\n', got - off);
                size_t ll = (size_t)(nl - line);
                off += ll + 1;
                unsigned long long seq = strtoull(line + 7, NULL, 10);
                if (seq == rep->head_seq) {
                    uint8_t m[MAC_LEN];
                    match = unhex(m, line + ll - MAC_TAIL_LEN + 8, MAC_LEN) == 0 &&
                            sodium_memcmp(m, head_mac, MAC_LEN) == 0;
                }
            }
            if (!match) {
                rep->ok = false;
                snprintf(rep->reason, sizeof(rep->reason),
                         "the line at the server's chain head (seq %llu) does not carry the head's MAC",
                         (unsigned long long)rep->head_seq);
            }
        }
    }
    if (rep->ok)
        snprintf(rep->reason, sizeof(rep->reason), "OK");
    free(buf);
    return 0;
}
