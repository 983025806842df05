/*
 * audit.c - the tamper-evident audit log: per-thread line buffers, one writer thread that numbers,
 * MACs and appends the lines and stores the chain head, and server-side verification.
 *
 * Why a writer thread: the MAC chain needs one order, and a disk that stalls must not stall an
 * event loop. Loop threads append finished line bodies to their own buffer (an uncontended mutex,
 * no allocation once the buffer has grown) and never wait; the writer swaps the buffers out every
 * few ms, so reads of metadata cost a memcpy. Lines that must be on file before the server acts -
 * the intent line of a write or a reveal under fail_closed - are queued with sx_audit_log_sync(),
 * which a worker-pool thread (never a loop) waits on with a timeout.
 *
 * "Change nothing" under fail_closed: a write job appends its intent line and waits for the writer
 * to confirm it before the storage batch runs, and a reveal waits for its intent line before the
 * value is sent; when the line cannot be written (or the writer does not answer in time) the
 * request gets 503 and nothing was changed or returned. The outcome line follows asynchronously.
 * A line counts as written once write() has accepted it; the batch is then fdatasync'ed and only
 * then does the head in storage advance, so the stored head is never ahead of the file (a crash
 * may leave the file ahead of the head, which verification accepts).
 *
 * On a failed write the partial batch is cut off again (ftruncate to the size before it) and the
 * chain rolls back to the last line on file, so the file stays verifiable after the disk recovers.
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
#define HEAD_FORMAT_V1 1 /* seq, mac */
#define HEAD_FORMAT    2 /* seq, mac, first seq and MAC of the current file; then the record MAC */
#define HEAD_V1_LEN    (1 + 8 + MAC_LEN)
#define HEAD_LEN       (1 + 8 + MAC_LEN + 8 + MAC_LEN)
#define OPEN_PREFIX    "\"event\":\"audit.open\",\"prev\":\""

typedef struct slot {
    pthread_mutex_t mu;
    char *buf; /* [u16 len][body] records */
    size_t len, cap;
} __attribute__((aligned(64))) slot;

typedef struct sync_ent {
    struct sync_ent *next;
    int result;
    bool done, abandoned;
    size_t len;
    char body[BODY_MAX];
} sync_ent;

struct sx_audit {
    const uint8_t *key;
    const uint8_t *record_key; /* MAC of the stored head (crypto.h, record MACs) */
    sx_storage *storage;
    char *path;
    bool fail_closed;
    void (*on_forged)(void *ctx); /* the stored head failed its MAC (may be NULL) */
    void *forged_ctx;
    int fd;
    unsigned nslots;
    slot *slots;
    pthread_t tid;
    pthread_mutex_t mu; /* sync queue, flags and stats */
    pthread_cond_t writer_cv;
    pthread_cond_t done_cv;
    sync_ent *sync_head, **sync_tail;
    bool stop, reopen;
    pthread_mutex_t file_mu; /* the file and the stored head change together (verify reads both) */
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
    char *spare;
    size_t spare_cap;
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
    if (r->intent)
        n += (size_t)snprintf(out + n, 32, ",\"status\":null");
    else
        n += (size_t)snprintf(out + n, 32, ",\"status\":%d", r->status);
    if (r->granted_role)
        n = put_str(out, n, "grantedRole", r->granted_role);
    return n;
}

/* ---- queueing ---------------------------------------------------------------------------------- */

bool sx_audit_fail_closed(const sx_audit *a)
{
    return a && a->fail_closed;
}

void sx_audit_log(sx_audit *a, unsigned thread_index, const sx_audit_rec *rec)
{
    if (!a)
        return;
    char body[BODY_MAX];
    size_t len = format_body(body, rec);
    slot *s = &a->slots[thread_index < a->nslots - 1 ? thread_index : a->nslots - 1];
    pthread_mutex_lock(&s->mu);
    if (s->len + len + 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 65536;
        while (nc < s->len + len + 2)
            nc *= 2;
        char *nb = nc <= SLOT_MAX_BYTES ? realloc(s->buf, nc) : NULL;
        if (!nb) {
            pthread_mutex_unlock(&s->mu);
            atomic_fetch_add_explicit(&a->dropped, 1, memory_order_relaxed);
            return;
        }
        s->buf = nb;
        s->cap = nc;
    }
    s->buf[s->len] = (char)(len & 0xff);
    s->buf[s->len + 1] = (char)(len >> 8);
    memcpy(s->buf + s->len + 2, body, len);
    s->len += len + 2;
    pthread_mutex_unlock(&s->mu);
}

int sx_audit_log_sync(sx_audit *a, const sx_audit_rec *rec)
{
    if (!a)
        return 0;
    sync_ent *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->len = format_body(e->body, rec);
    struct timespec deadline = sx_clock_mono_deadline(SX_AUDIT_SYNC_TIMEOUT_MS);
    pthread_mutex_lock(&a->mu);
    *a->sync_tail = e;
    a->sync_tail = &e->next;
    pthread_cond_signal(&a->writer_cv);
    int rc = 0;
    while (!e->done && rc == 0)
        rc = pthread_cond_timedwait(&a->done_cv, &a->mu, &deadline);
    if (!e->done) {
        e->abandoned = true; /* the writer frees it */
        pthread_mutex_unlock(&a->mu);
        return -ETIMEDOUT;
    }
    int result = e->result;
    pthread_mutex_unlock(&a->mu);
    free(e);
    return result;
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
    size_t n = (size_t)snprintf(p, 32, "{\"seq\":%llu,", (unsigned long long)*seq);
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

static size_t open_body(char *out, const uint8_t *prev)
{
    size_t n = sizeof(OPEN_PREFIX) - 1;
    memcpy(out, OPEN_PREFIX, n);
    tohex(out + n, prev, MAC_LEN);
    n += 2 * MAC_LEN;
    out[n++] = '"';
    char ts[32];
    sx_time_format(sx_clock_wall_ms(), ts, sizeof(ts));
    return put_str(out, n, "time", ts);
}

static int store_head(sx_audit *a)
{
    uint8_t rec[HEAD_LEN + SX_CRYPTO_RECORD_MACBYTES];
    rec[0] = HEAD_FORMAT;
    sx_be64_put(rec + 1, a->seq);
    memcpy(rec + 9, a->prev, MAC_LEN);
    sx_be64_put(rec + 9 + MAC_LEN, a->first_seq);
    memcpy(rec + 17 + MAC_LEN, a->first_mac, MAC_LEN);
    sx_crypto_record_mac(rec + HEAD_LEN, a->record_key, SX_AUDIT_HEAD_KEY, sizeof(SX_AUDIT_HEAD_KEY) - 1, rec,
                         HEAD_LEN);
    return sx_storage_put(a->storage, SX_AUDIT_HEAD_KEY, sizeof(SX_AUDIT_HEAD_KEY) - 1, rec, sizeof(rec), NULL);
}

/* The stored head. A format-1 head (written before the file's first line was recorded) leaves
 * *ret_first_seq 0. SX_CRYPTO_EFORGED (reported through on_forged) when the record fails its MAC. */
static int load_head(const sx_audit *a, uint64_t *ret_seq, uint8_t *ret_mac, uint64_t *ret_first_seq,
                     uint8_t *ret_first_mac)
{
    void *val = NULL;
    size_t len = 0;
    int rc = sx_storage_get(a->storage, SX_AUDIT_HEAD_KEY, sizeof(SX_AUDIT_HEAD_KEY) - 1, &val, &len, NULL);
    if (rc != 0)
        return rc;
    const uint8_t *v = val;
    if (sx_crypto_record_check(&len, a->record_key, SX_AUDIT_HEAD_KEY, sizeof(SX_AUDIT_HEAD_KEY) - 1, val, len) != 0) {
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

/* Answer the waiters of syncs with rc (0 = their lines are on file). */
static void answer(sx_audit *a, sync_ent *syncs, int rc)
{
    pthread_mutex_lock(&a->mu);
    for (sync_ent *e = syncs, *next; e; e = next) {
        next = e->next;
        if (e->abandoned) {
            free(e);
            continue;
        }
        e->result = rc == 0 ? 0 : -EIO;
        e->done = true;
    }
    pthread_cond_broadcast(&a->done_cv);
    pthread_mutex_unlock(&a->mu);
}

/* Write a->out[0..len) (lines chained into new_prev/new_seq): on success the waiters are answered
 * as soon as write() has taken the lines, then the file is fdatasync'ed and the head stored; on
 * failure the file is cut back and the chain stays where it was. */
static int commit(sx_audit *a, size_t len, const uint8_t *new_prev, uint64_t new_seq, sync_ent *syncs)
{
    int rc = 0;
    pthread_mutex_lock(&a->file_mu);
    if (a->fd < 0) {
        rc = -EBADF;
    } else {
        off_t before = lseek(a->fd, 0, SEEK_END);
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(a->fd, a->out + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = w < 0 ? -errno : -EIO;
                break;
            }
            off += (size_t)w;
        }
        if (rc != 0 && before >= 0 && off > 0 && ftruncate(a->fd, before) != 0) {
            /* /dev/full and friends: nothing was written anyway */
        }
    }
    answer(a, syncs, rc);
    if (rc == 0) {
        memcpy(a->prev, new_prev, MAC_LEN);
        a->seq = new_seq;
        /* The head may only name lines that are on disk: sync the file first. */
        if (fdatasync(a->fd) != 0 && errno != EINVAL)
            sx_log(SX_LOG_WARN, "audit log: fdatasync failed: %s", strerror(errno));
        int hrc = store_head(a);
        if (hrc != 0)
            sx_log(SX_LOG_WARN, "audit log: cannot store the chain head: %s", sx_storage_strerror(hrc));
    }
    pthread_mutex_unlock(&a->file_mu);
    return rc;
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

/* Take every queued line, write them as one batch and answer the waiters. */
static void run_batch(sx_audit *a, sync_ent *syncs)
{
    uint8_t prev[MAC_LEN];
    memcpy(prev, a->prev, MAC_LEN);
    uint64_t seq = a->seq;
    size_t len = 0, count = 0;
    bool ok = true;
    uint64_t first_seq = a->first_seq;
    uint8_t first_mac[MAC_LEN];
    memcpy(first_mac, a->first_mac, MAC_LEN);
    if (a->need_open_line) {
        char body[256];
        size_t bl = open_body(body, prev);
        ok = emit(a, &len, body, bl, prev, &seq);
        count++;
        if (a->file_fresh) { /* the open line starts this file */
            first_seq = seq;
            memcpy(first_mac, prev, MAC_LEN);
        }
    }
    for (unsigned i = 0; i < a->nslots; i++) {
        slot *s = &a->slots[i];
        pthread_mutex_lock(&s->mu);
        char *b = s->buf;
        size_t bl = s->len, bc = s->cap;
        s->buf = a->spare;
        s->cap = a->spare_cap;
        s->len = 0;
        pthread_mutex_unlock(&s->mu);
        for (size_t off = 0; off + 2 <= bl;) {
            size_t ll = (unsigned char)b[off] | (size_t)(unsigned char)b[off + 1] << 8;
            ok = emit(a, &len, b + off + 2, ll, prev, &seq) && ok;
            off += ll + 2;
            count++;
        }
        a->spare = b;
        a->spare_cap = bc;
    }
    for (sync_ent *e = syncs; e; e = e->next) {
        ok = emit(a, &len, e->body, e->len, prev, &seq) && ok;
        count++;
    }
    if (count == 0)
        return;
    int rc = -ENOMEM;
    if (ok) {
        /* commit() stores the head: it must name the first line already */
        uint64_t old_first = a->first_seq;
        uint8_t old_mac[MAC_LEN];
        memcpy(old_mac, a->first_mac, MAC_LEN);
        a->first_seq = first_seq;
        memcpy(a->first_mac, first_mac, MAC_LEN);
        rc = commit(a, len, prev, seq, syncs);
        if (rc != 0) {
            a->first_seq = old_first;
            memcpy(a->first_mac, old_mac, MAC_LEN);
        } else {
            a->file_fresh = false;
        }
    } else
        answer(a, syncs, rc);
    if (rc == 0) {
        a->need_open_line = false;
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
        if (!a->sync_head && !a->reopen && !a->stop) {
            struct timespec ts = sx_clock_mono_deadline(IDLE_WAIT_MS);
            pthread_cond_timedwait(&a->writer_cv, &a->mu, &ts);
        }
        sync_ent *syncs = a->sync_head;
        a->sync_head = NULL;
        a->sync_tail = &a->sync_head;
        bool reopen = a->reopen, stop = a->stop;
        a->reopen = false;
        pthread_mutex_unlock(&a->mu);
        if (reopen) {
            run_batch(a, NULL); /* what was queued for the old file goes there */
            do_reopen(a);
        }
        run_batch(a, syncs);
        pthread_mutex_lock(&a->mu);
        if (stop && !a->sync_head)
            break;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
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
    a->nslots = nthreads + 1; /* the last one is shared by worker-pool threads */
    a->slots = calloc(a->nslots, sizeof(*a->slots));
    a->path = strdup(opt->path);
    if (!a->slots || !a->path) {
        free(a->slots);
        free(a->path);
        free(a);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < a->nslots; i++)
        pthread_mutex_init(&a->slots[i].mu, NULL);
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->file_mu, NULL);
    sx_clock_cond_init(&a->writer_cv);
    sx_clock_cond_init(&a->done_cv);
    a->sync_tail = &a->sync_head;
    a->need_open_line = true;
    a->fd = -1;
    int rc = load_head(a, &a->seq, a->prev, &a->first_seq, a->first_mac);
    if (rc == -ENOENT) {
        a->seq = 0;
        memset(a->prev, 0, MAC_LEN);
    } else if (rc == SX_CRYPTO_EFORGED) {
        /* Starting a new chain would hide whatever the edit was meant to hide. */
        snprintf(err, errlen,
                 "the audit chain head (%s) fails its MAC: it was edited in storage; restore it from a backup",
                 SX_AUDIT_HEAD_KEY);
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
    if (a->file_fresh)
        a->first_seq = 0;
    else if (rc != 0 || a->first_seq == 0)
        read_first_line(a, a->path);
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
    if (a->fd >= 0)
        close(a->fd);
    for (unsigned i = 0; a->slots && i < a->nslots; i++) {
        free(a->slots[i].buf);
        pthread_mutex_destroy(&a->slots[i].mu);
    }
    free(a->slots);
    free(a->out);
    free(a->spare);
    free(a->path);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->file_mu);
    pthread_cond_destroy(&a->writer_cv);
    pthread_cond_destroy(&a->done_cv);
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

#define MAC_TAIL_LEN (8 + 2 * MAC_LEN + 2) /* ,"mac":"<hex>"} */
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

/* Check the lines of buf[0..len); fills rep (ok, counts, first bad line). */
static void verify_lines(sx_audit *a, const char *buf, size_t len, sx_audit_report *rep)
{
    uint8_t prev[MAC_LEN], mac[MAC_LEN], got[MAC_LEN];
    memset(prev, 0, MAC_LEN);
    uint64_t lineno = 0, last_seq = 0;
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
        crypto_generichash_state st;
        crypto_generichash_init(&st, a->key, 32, MAC_LEN);
        crypto_generichash_update(&st, prev, MAC_LEN);
        crypto_generichash_update(&st, (const unsigned char *)line, plen);
        crypto_generichash_final(&st, mac, MAC_LEN);
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
    /* Head and file size together: the writer appends before it stores a head, both under
     * file_mu, so every line up to the head is inside the size read here. */
    pthread_mutex_lock(&a->file_mu);
    int hrc = load_head(a, &head_seq, head_mac, &first_seq, first_mac);
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
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
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
