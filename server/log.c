/*
 * log.c - the server's side of logging: the diagnostic log's set-up from the configuration
 * (common/log.h formats and writes its lines), the access log, and library lines on stderr.
 *
 * The access log (http.c) writes the method, the path, the status, the byte count and the
 * duration, and no header value or body.
 *
 * Libraries that write to stderr themselves (h2o 2.2.5 prints lines such as "skipping frame
 * (type:32)" with fprintf, libpq's default notice processor prints server notices) would put raw
 * lines between ours. Once the server is about to serve, sx_log_capture_stderr() moves our own
 * output to a duplicate of the original stderr and turns descriptor 2 into a pipe whose lines a
 * small thread re-emits as warnings in the configured format, control bytes replaced. Sanitizer
 * reports are pointed at the original stderr first, so a crash report is never left in the pipe.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

/*
 * The access log is written off the loop threads. Each thread that logs appends whole lines to its
 * own buffer (a mutex that only it and the writer take, so uncontended but for the moment of a
 * swap); a writer thread swaps each buffer for an empty one and writes what it took with one
 * write() per buffer. A loop thread never calls write(). A buffer holds at most ACCESS_BUF_BYTES:
 * when the disk (or the pipe behind stderr) stalls and a buffer is full, the line is dropped and
 * counted - the access log is a convenience, the audit log is the record, and a request is never
 * held up for it. Lines are appended whole and buffers are written whole by one thread, so lines
 * are never cut or interleaved. sx_log_close() (after the loops stopped) writes what is left.
 */
#define ACCESS_BUF_BYTES (256u * 1024u)
/* A buffer past this fill wakes the writer before its next tick. */
#define ACCESS_BUF_NUDGE (ACCESS_BUF_BYTES / 2u)
/* The writer looks at the buffers at least this often. */
#define ACCESS_TICK_MS 50
/* How long sx_log_close() waits for a stalled access log before leaving its last lines unwritten. */
#define ACCESS_CLOSE_WAIT_MS 5000

typedef struct access_buf {
    pthread_mutex_t mu;
    char *data; /* ACCESS_BUF_BYTES, owned; swapped with the writer's spare */
    size_t len;
    bool nudged; /* the writer was woken for this fill */
    /* this thread's lines kept and dropped: counted per thread, so that loops never write to a
     * shared cache line for each request (sx_access_log_stats() sums them) */
    _Atomic uint64_t lines, dropped;
    struct access_buf *next;
} access_buf;

static pthread_mutex_t access_mutex = PTHREAD_MUTEX_INITIALIZER; /* the list, the writer's state */
static pthread_cond_t access_cond;                               /* CLOCK_MONOTONIC */
static access_buf *access_bufs;
static _Thread_local access_buf *access_mine;
static pthread_t access_writer;
static bool access_writer_running, access_stopping, access_writer_done;
static pthread_cond_t access_done_cond; /* CLOCK_MONOTONIC */
static _Atomic uint64_t access_dropped; /* lines of a thread that has no buffer */
static _Atomic int access_fd = -1;      /* -1 = access log off */
static char *access_path;               /* for reopen; NULL = stderr or off */
static int log_fd = STDERR_FILENO;      /* the diagnostic log's descriptor once stderr is captured */

static void access_write_all(const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(atomic_load(&access_fd), p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* a full disk: these lines are lost, the next batch tries again */
        }
        p += w;
        len -= (size_t)w;
    }
}

/* Take every buffer's lines and write them. Returns false when all buffers were empty. */
static bool access_flush_once(char **spare)
{
    bool any = false;
    pthread_mutex_lock(&access_mutex);
    access_buf *b = access_bufs;
    pthread_mutex_unlock(&access_mutex);
    /* Buffers are only ever added at the head and freed after the writer stopped, so the walk
     * needs no lock past the head. */
    for (; b; b = b->next) {
        pthread_mutex_lock(&b->mu);
        size_t len = b->len;
        char *full = NULL;
        if (len > 0) {
            full = b->data;
            b->data = *spare;
            b->len = 0;
            b->nudged = false;
        }
        pthread_mutex_unlock(&b->mu);
        if (!full)
            continue;
        access_write_all(full, len);
        *spare = full;
        any = true;
    }
    return any;
}

static void *access_writer_main(void *arg)
{
    char *spare = arg;
    pthread_mutex_lock(&access_mutex);
    for (;;) {
        bool stopping = access_stopping;
        pthread_mutex_unlock(&access_mutex);
        bool wrote = access_flush_once(&spare);
        pthread_mutex_lock(&access_mutex);
        if (stopping && !wrote)
            break;
        if (!wrote && !access_stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += ACCESS_TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&access_cond, &access_mutex, &ts);
        }
    }
    access_writer_done = true;
    pthread_cond_broadcast(&access_done_cond);
    pthread_mutex_unlock(&access_mutex);
    free(spare);
    return NULL;
}

static int access_writer_start(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&access_cond, &ca);
    pthread_cond_init(&access_done_cond, &ca);
    pthread_condattr_destroy(&ca);
    char *spare = malloc(ACCESS_BUF_BYTES);
    if (!spare)
        return -ENOMEM;
    access_stopping = access_writer_done = false;
    int rc = pthread_create(&access_writer, NULL, access_writer_main, spare);
    if (rc != 0) {
        free(spare);
        return -rc;
    }
    access_writer_running = true;
    return 0;
}

/* Write what the buffers hold and stop the writer. A writer stuck on a stalled file for longer than
 * ACCESS_CLOSE_WAIT_MS is left behind (the process is about to exit), its buffers with it. */
static void access_writer_stop(void)
{
    if (!access_writer_running)
        return;
    pthread_mutex_lock(&access_mutex);
    access_stopping = true;
    pthread_cond_signal(&access_cond);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ACCESS_CLOSE_WAIT_MS / 1000;
    int rc = 0;
    while (!access_writer_done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&access_done_cond, &access_mutex, &ts);
    bool done = access_writer_done;
    pthread_mutex_unlock(&access_mutex);
    access_writer_running = false;
    if (!done) {
        pthread_detach(access_writer);
        access_bufs = NULL; /* still the writer's: left to the exit */
        return;
    }
    pthread_join(access_writer, NULL);
    while (access_bufs) {
        access_buf *b = access_bufs;
        access_bufs = b->next;
        pthread_mutex_destroy(&b->mu);
        free(b->data);
        free(b);
    }
}

int sx_log_open(const sx_config *cfg, char *err, size_t errlen)
{
    sx_log_setup(cfg->log_level, cfg->log_format == SX_LOG_FORMAT_JSON);
    int fd = -1;
    if (!cfg->access_log || !*cfg->access_log) {
        return 0;
    } else if (strcmp(cfg->access_log, "-") == 0) {
        fd = STDERR_FILENO;
    } else {
        fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot open access log \"%s\": %s", cfg->access_log, strerror(e));
            return -e;
        }
        access_path = strdup(cfg->access_log);
    }
    int rc = access_writer_start();
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the access log writer: %s", strerror(-rc));
        if (fd > STDERR_FILENO)
            close(fd);
        free(access_path);
        access_path = NULL;
        return rc;
    }
    atomic_store(&access_fd, fd);
    return 0;
}

void sx_access_log_reopen(void)
{
    if (!access_path)
        return;
    int fd = open(access_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        sx_log(SX_LOG_ERROR, "cannot reopen access log \"%s\": %s", access_path, strerror(errno));
        return;
    }
    /* dup2 swaps the file under the same descriptor number, so the writer writing at this moment
     * writes its batch to the old or the new file, never to a closed descriptor. */
    dup2(fd, atomic_load(&access_fd));
    close(fd);
}

/* Longest library line re-emitted whole; a longer one is cut into pieces of this size. */
#define LIBRARY_LINE_MAX 1024

static void *stderr_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[LIBRARY_LINE_MAX];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t start = 0;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] != '\n')
                continue;
            if (i > start)
                sx_log(SX_LOG_WARN, "library: %.*s", (int)(i - start), buf + start);
            start = i + 1;
        }
        if (start == 0 && have == sizeof(buf)) { /* no newline in a whole buffer: emit it as it is */
            sx_log(SX_LOG_WARN, "library: %.*s", (int)have, buf);
            have = 0;
        } else {
            memmove(buf, buf + start, have - start);
            have -= start;
        }
    }
    close(fd);
    return NULL;
}

int sx_log_capture_stderr(void)
{
    int keep = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (keep < 0)
        return -errno;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        int e = errno;
        close(keep);
        return -e;
    }
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_set_report_fd((void *)(intptr_t)keep);
#endif
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, stderr_reader, (void *)(intptr_t)p[0]);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close(p[0]);
        close(p[1]);
        close(keep);
        return -rc;
    }
    fflush(stderr);
    log_fd = keep;
    sx_log_set_fd(keep);
    int expect = STDERR_FILENO;
    atomic_compare_exchange_strong(&access_fd, &expect, keep);
    dup2(p[1], STDERR_FILENO); /* the copy on 2 is not close-on-exec, as stderr never is */
    close(p[1]);
    return 0;
}

void sx_log_close(void)
{
    access_writer_stop();
    int fd = atomic_exchange(&access_fd, -1);
    if (fd > STDERR_FILENO && fd != log_fd)
        close(fd);
    free(access_path);
    access_path = NULL;
}

bool sx_access_log_enabled(void)
{
    return atomic_load_explicit(&access_fd, memory_order_relaxed) >= 0;
}

static access_buf *access_buf_mine(void)
{
    if (access_mine)
        return access_mine;
    access_buf *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->data = malloc(ACCESS_BUF_BYTES);
    if (!b->data) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_lock(&access_mutex);
    b->next = access_bufs;
    access_bufs = b;
    pthread_mutex_unlock(&access_mutex);
    access_mine = b;
    return b;
}

void sx_access_log_write(const char *line, size_t len)
{
    if (!sx_access_log_enabled() || len == 0)
        return;
    access_buf *b = access_buf_mine();
    if (!b || len > ACCESS_BUF_BYTES) {
        atomic_fetch_add_explicit(&access_dropped, 1, memory_order_relaxed);
        return;
    }
    bool nudge = false, kept = false;
    pthread_mutex_lock(&b->mu);
    if (b->len + len <= ACCESS_BUF_BYTES) {
        memcpy(b->data + b->len, line, len);
        b->len += len;
        kept = true;
        if (b->len >= ACCESS_BUF_NUDGE && !b->nudged)
            nudge = b->nudged = true;
    }
    pthread_mutex_unlock(&b->mu);
    atomic_fetch_add_explicit(kept ? &b->lines : &b->dropped, 1, memory_order_relaxed);
    if (nudge) {
        pthread_mutex_lock(&access_mutex);
        pthread_cond_signal(&access_cond);
        pthread_mutex_unlock(&access_mutex);
    }
}

void sx_access_log_stats(uint64_t *ret_lines, uint64_t *ret_dropped)
{
    uint64_t lines = 0, dropped = atomic_load_explicit(&access_dropped, memory_order_relaxed);
    pthread_mutex_lock(&access_mutex);
    for (access_buf *b = access_bufs; b; b = b->next) {
        lines += atomic_load_explicit(&b->lines, memory_order_relaxed);
        dropped += atomic_load_explicit(&b->dropped, memory_order_relaxed);
    }
    pthread_mutex_unlock(&access_mutex);
    *ret_lines = lines;
    *ret_dropped = dropped;
}
