/*
 * group.c - group commit for backends whose acknowledged writes each need an fsync.
 *
 * Why this exists: with `sync = true` every acknowledged write waits for an fsync of the log, so
 * the rate of one writer is one write per fsync. Many writers can share one fsync if their writes
 * are committed together. RocksDB has its own write groups, but its leader starts the fsync as soon
 * as it arrives; on a machine with few cores the followers of the previous group have not yet come
 * back, so groups stay small (measured: 8 writers reach about 3x one writer on 2 cores). This
 * queue adds the one thing missing, a bounded gather in the style of PostgreSQL's commit_delay:
 *
 *   - a writer appends its request to the queue; if no leader is active it becomes the leader,
 *     otherwise it sleeps on its own condition variable until a leader has committed it or it is
 *     promoted to leader;
 *   - the leader waits until as many requests are queued as the previous group had (the recent
 *     concurrency), but never longer than half the recent commit time, then takes the whole queue
 *     and hands it to the backend's commit function, which writes it with ONE synced write;
 *   - the result goes to every request of the group, and the next queued request is promoted.
 *
 * A lone writer never waits (its previous group had one member). Writers keep their own per-key
 * locks while queued, so nothing about atomicity changes: the group's write is one atomic batch
 * and readers see nothing of it before it is durable.
 */
#include "common/clock.h"
#include "storage/storage_internal.h"

#include <time.h>

#define GROUP_MAX_WAIT_NS 2000000ull /* never gather for more than 2 ms */

int sxs_group_init(sxs_group *g, sxs_group_commit_fn fn, void *ctx)
{
    memset(g, 0, sizeof(*g));
    if (sx_clock_cond_init(&g->arrive) != 0)
        return -ENOMEM;
    if (pthread_cond_init(&g->done, NULL) != 0) {
        pthread_cond_destroy(&g->arrive);
        return -ENOMEM;
    }
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        pthread_cond_destroy(&g->done);
        pthread_cond_destroy(&g->arrive);
        return -ENOMEM;
    }
    g->fn = fn;
    g->ctx = ctx;
    g->last_group = 1;
    return 0;
}

void sxs_group_clear(sxs_group *g)
{
    pthread_cond_destroy(&g->done);
    pthread_cond_destroy(&g->arrive);
    pthread_mutex_destroy(&g->mu);
}

/* Leader: gather, commit the queue, answer the group, promote the next leader. Called and
 * returns with g->mu held. */
static void lead(sxs_group *g)
{
    size_t target = g->last_group;
    if (g->qlen < target) {
        uint64_t wait = g->ewma_ns / 2;
        if (wait > GROUP_MAX_WAIT_NS)
            wait = GROUP_MAX_WAIT_NS;
        uint64_t deadline = sx_clock_mono_ns() + wait;
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000u), .tv_nsec = (long)(deadline % 1000000000u)};
        g->gather = target;
        while (g->qlen < target && pthread_cond_timedwait(&g->arrive, &g->mu, &ts) == 0)
            ;
        g->gather = 0;
    }
    sxs_group_req *list = g->head;
    size_t n = g->qlen;
    g->head = g->tail = NULL;
    g->qlen = 0;
    pthread_mutex_unlock(&g->mu);

    uint64_t t0 = sx_clock_mono_ns();
    int r = g->fn(g->ctx, list);
    uint64_t dt = sx_clock_mono_ns() - t0;

    pthread_mutex_lock(&g->mu);
    g->ewma_ns = g->ewma_ns ? (g->ewma_ns * 7 + dt) / 8 : dt;
    g->last_group = n;
    for (sxs_group_req *q = list; q; q = q->next) {
        q->result = r;
        q->done = true;
    }
    if (g->head)
        g->head->leader = true;
    else
        g->busy = false;
    /* One wake-up for the whole group (and the next leader), after the lock is released so the
     * woken threads do not run straight into it. The condition variable lives in g, so waking
     * after a waiter has already returned is harmless. */
    pthread_mutex_unlock(&g->mu);
    pthread_cond_broadcast(&g->done);
    pthread_mutex_lock(&g->mu);
}

int sxs_group_commit(sxs_group *g, void *arg)
{
    sxs_group_req req = {.arg = arg};
    pthread_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = &req;
    else
        g->head = &req;
    g->tail = &req;
    g->qlen++;
    if (g->gather && g->qlen >= g->gather)
        pthread_cond_signal(&g->arrive); /* wake the gathering leader only once it has enough */
    if (!g->busy) {
        g->busy = true;
        req.leader = true;
    }
    while (!req.done) {
        if (req.leader) {
            lead(g);
            break; /* the leader is always part of its own group */
        }
        pthread_cond_wait(&g->done, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return req.result;
}
