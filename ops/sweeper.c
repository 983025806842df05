/*
 * sweeper.c - the background job that keeps "deleted" and "destroyed" true: it purges deleted
 * secrets whose recovery window has passed (sx_secrets_sweep), and makes the store drop the
 * ciphertext that writes deleted (destroyed or pruned versions, purged or hard-deleted secrets)
 * from its files (sx_storage_compact over each touched env's records).
 *
 * One thread. Purges run every interval; compactions are batched: the first note of a deletion
 * in an env arms a short delay, and everything noted until it passes is compacted together, so a
 * burst of writes costs one compaction per env, never one per write. A purge is one batch per
 * deleted secret, so a sweep cut short by a crash simply leaves the rest for the next; the
 * compactions a crash loses are made up by the first sweep after a start, which compacts every
 * env that still holds deleted records' ranges (the whole records range, once).
 */
#include "ops/ops.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define SWEEP_BATCH      256 /* deleted secrets purged per round of a sweep */
#define DIRTY_MAX        64  /* envs remembered for compaction; more compacts the whole range */
#define COMPACT_DELAY_MS 2000
#define COMPACT_RETRY_MS 30000

struct sx_sweeper {
    sx_secrets_ctx ctx;
    unsigned interval_s;
    void (*on_purged)(void *arg, const sx_secrets_place *p);
    void *on_purged_arg;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    bool sweep_now;
    /* envs whose records lost ciphertext, "{org}/{project}/{env}/", until compacted */
    char dirty[DIRTY_MAX][3 * (SX_SECRETS_SCOPE_MAX + 1) + 1];
    size_t ndirty;
    bool dirty_all;
    int64_t compact_due_ms; /* monotonic; 0 = nothing to compact */
    sx_sweeper_stats stats;
};

/* The kinds of record that hold ciphertext (or, for b/, a deleted secret's description). */
static const char kinds[] = {SX_SECRETS_RECORD_HISTORY, SX_SECRETS_RECORD_TRASH, SX_SECRETS_RECORD_VALUE,
                             SX_SECRETS_RECORD_TRASHED_VERSION};

void sx_sweeper_note_destroyed(void *arg, const sx_secrets_place *p)
{
    sx_sweeper *s = arg;
    char env[sizeof(s->dirty[0])];
    snprintf(env, sizeof(env), "%s/%s/%s/", p->org, p->project, p->env);
    pthread_mutex_lock(&s->mu);
    bool known = s->dirty_all;
    for (size_t i = 0; !known && i < s->ndirty; i++)
        known = strcmp(s->dirty[i], env) == 0;
    if (!known) {
        if (s->ndirty < DIRTY_MAX)
            memcpy(s->dirty[s->ndirty++], env, sizeof(env));
        else
            s->dirty_all = true;
    }
    if (!s->compact_due_ms) {
        s->compact_due_ms = sx_clock_mono_ms() + COMPACT_DELAY_MS;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Compact [begin, begin with its last byte + 1). */
static int compact_prefix(sx_storage *st, const char *prefix, size_t len)
{
    char end[SX_SECRETS_KEY_MAX];
    memcpy(end, prefix, len);
    end[len - 1]++;
    return sx_storage_compact(st, prefix, len, end, len);
}

/* Compact what was noted; called without the lock. */
static void compact_noted(sx_sweeper *s, char (*envs)[sizeof(s->dirty[0])], size_t n, bool all)
{
    sx_storage *st = s->ctx.storage;
    int rc = 0;
    if (all) {
        for (size_t k = 0; rc == 0 && k < sizeof(kinds); k++) {
            char pre[2] = {kinds[k], '/'};
            rc = compact_prefix(st, pre, 2);
        }
    }
    for (size_t i = 0; !all && rc == 0 && i < n; i++) {
        for (size_t k = 0; rc == 0 && k < sizeof(kinds); k++) {
            char pre[SX_SECRETS_KEY_MAX];
            int len = snprintf(pre, sizeof(pre), "%c/%s", kinds[k], envs[i]);
            rc = compact_prefix(st, pre, (size_t)len);
        }
    }
    pthread_mutex_lock(&s->mu);
    if (rc == 0 || rc == -ENOTSUP) {
        s->stats.compactions += rc == 0;
    } else {
        s->stats.compact_failures++;
        s->stats.last_error = rc;
        s->dirty_all = true; /* try again, everything, a while later */
        s->compact_due_ms = sx_clock_mono_ms() + COMPACT_RETRY_MS;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != 0 && rc != -ENOTSUP)
        sx_log(SX_LOG_WARN, "sweeper: compacting deleted records failed: %s (tried again in %d s)",
               sx_storage_strerror(rc), COMPACT_RETRY_MS / 1000);
}

/* One sweep: purge every deleted secret that is due, then count what is kept. */
static void sweep(sx_sweeper *s)
{
    size_t purged = 0, round = 0;
    uint64_t kept = 0;
    int rc;
    do {
        rc = sx_secrets_sweep(&s->ctx, sx_clock_wall_ms(), SWEEP_BATCH, s->on_purged, s->on_purged_arg, &round, &kept);
        purged += rc == 0 ? round : 0;
        pthread_mutex_lock(&s->mu);
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
    } while (rc == 0 && round == SWEEP_BATCH);
    uint64_t previous = 0, deleted_versions = 0;
    static const char h[] = {SX_SECRETS_RECORD_HISTORY, '/'}, x[] = {SX_SECRETS_RECORD_TRASHED_VERSION, '/'};
    int crc = rc == 0 ? sx_storage_count(s->ctx.storage, h, sizeof(h), &previous) : rc;
    if (crc >= 0)
        crc = sx_storage_count(s->ctx.storage, x, sizeof(x), &deleted_versions);
    pthread_mutex_lock(&s->mu);
    s->stats.runs++;
    s->stats.last_run_ms = sx_clock_wall_ms();
    s->stats.purged_total += purged;
    if (rc == 0) {
        s->stats.deleted_secrets = kept;
        s->stats.last_error = 0;
    } else {
        s->stats.failures++;
        s->stats.last_error = rc;
    }
    if (crc >= 0) {
        s->stats.previous_version_records = previous;
        s->stats.deleted_version_records = deleted_versions;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != 0)
        sx_log(SX_LOG_WARN, "sweeper: purging expired deleted secrets failed: %s (the next sweep goes on)",
               sx_storage_strerror(rc));
    else if (purged)
        sx_log(SX_LOG_INFO, "sweeper: purged %zu deleted secret%s past the recovery window", purged,
               purged == 1 ? "" : "s");
}

static void *sweeper_main(void *arg)
{
    sx_sweeper *s = arg;
    int64_t next_sweep = sx_clock_mono_ms(); /* a sweep at start: what was due while stopped */
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        int64_t now = sx_clock_mono_ms();
        bool do_sweep = s->sweep_now || now >= next_sweep;
        bool do_compact = s->compact_due_ms && now >= s->compact_due_ms;
        if (!do_sweep && !do_compact) {
            int64_t until = next_sweep;
            if (s->compact_due_ms && s->compact_due_ms < until)
                until = s->compact_due_ms;
            struct timespec ts = sx_clock_mono_deadline(until - now);
            pthread_cond_timedwait(&s->cond, &s->mu, &ts);
            continue;
        }
        if (do_sweep) {
            s->sweep_now = false;
            pthread_mutex_unlock(&s->mu);
            sweep(s); /* its purges note their envs: compacted below once the delay passes */
            next_sweep = sx_clock_mono_ms() + (int64_t)s->interval_s * 1000;
            pthread_mutex_lock(&s->mu);
            continue;
        }
        char(*envs)[sizeof(s->dirty[0])] = malloc(sizeof(s->dirty));
        size_t n = s->ndirty;
        bool all = s->dirty_all || !envs;
        if (envs)
            memcpy(envs, s->dirty, n * sizeof(s->dirty[0]));
        s->ndirty = 0;
        s->dirty_all = false;
        s->compact_due_ms = 0;
        pthread_mutex_unlock(&s->mu);
        compact_noted(s, envs, n, all);
        free(envs);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int sx_sweeper_start(sx_sweeper **ret, const sx_secrets_ctx *ctx, unsigned interval_s,
                     void (*on_purged)(void *arg, const sx_secrets_place *p), void *arg)
{
    sx_sweeper *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->ctx = *ctx;
    s->ctx.destroyed = sx_sweeper_note_destroyed; /* the sweeper's own purges are noted too */
    s->ctx.destroyed_arg = s;
    s->interval_s = interval_s ? interval_s : 60;
    s->on_purged = on_purged;
    s->on_purged_arg = arg;
    s->stats.compact_supported = sx_storage_has(ctx->storage, SX_STORAGE_CAP_COMPACT);
    if (pthread_mutex_init(&s->mu, NULL) != 0 || sx_clock_cond_init(&s->cond) != 0) {
        free(s);
        return -ENOMEM;
    }
    /* Nothing records which compactions a crash lost: the first compaction covers every range. */
    s->dirty_all = true;
    s->compact_due_ms = sx_clock_mono_ms() + COMPACT_DELAY_MS;
    int rc = pthread_create(&s->thread, NULL, sweeper_main, s);
    if (rc != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -rc;
    }
    s->started = true;
    *ret = s;
    return 0;
}

void sx_sweeper_wake(sx_sweeper *s)
{
    pthread_mutex_lock(&s->mu);
    s->sweep_now = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

void sx_sweeper_stats_get(sx_sweeper *s, sx_sweeper_stats *ret)
{
    pthread_mutex_lock(&s->mu);
    *ret = s->stats;
    ret->compact_pending = s->compact_due_ms != 0;
    pthread_mutex_unlock(&s->mu);
}

void sx_sweeper_stop(sx_sweeper *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
