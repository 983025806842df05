/*
 * pool.c - the worker pool for blocking work, in the manner of h2o's lib/common/hostinfo.c.
 *
 * Loop threads must never block for milliseconds, so fsync'ing writes, Argon2id and TPM calls are
 * queued here. Pool threads are created lazily, one more whenever a job arrives and no thread is
 * idle, up to a maximum. A finished job travels back to the loop that submitted it as an
 * h2o_multithread message, so its completion runs on that loop, where the request lives. A job
 * whose request went away is marked cancelled: if it has not started it is skipped, and in either
 * case only its release() runs when it comes back.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define POOL_NICE 10

struct sx_pool {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    h2o_linklist_t queue;
    size_t queued;
    unsigned nthreads;
    unsigned idle;
    unsigned max_threads;
    bool stopping;
    pthread_t *tids;
};

static void *pool_main(void *arg)
{
    sx_pool *pool = arg;

    /* Blocking work yields the CPU to the event loops: a burst of writes (each with its share of
     * an fsync and of RocksDB's memtable work) must not push up the latency of reads, which the
     * loops answer inline. Linux applies a nice value to the calling thread alone. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), POOL_NICE) != 0) {
        /* Not fatal: the pool works at the default priority. */
    }

    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (h2o_linklist_is_empty(&pool->queue) && !pool->stopping) {
            pool->idle++;
            pthread_cond_wait(&pool->cond, &pool->mutex);
            pool->idle--;
        }
        if (h2o_linklist_is_empty(&pool->queue))
            break; /* stopping and nothing left */
        sx_job *job = H2O_STRUCT_FROM_MEMBER(sx_job, pending, pool->queue.next);
        h2o_linklist_unlink(&job->pending);
        pool->queued--;
        pthread_mutex_unlock(&pool->mutex);

        if (!atomic_load(&job->cancelled))
            job->work(job);
        h2o_multithread_send_message(job->reply_to, &job->super);

        pthread_mutex_lock(&pool->mutex);
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

int sx_pool_new(sx_pool **ret, unsigned max_threads)
{
    if (max_threads == 0)
        return -EINVAL;
    sx_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pool->tids = calloc(max_threads, sizeof(*pool->tids));
    if (!pool->tids) {
        free(pool);
        return -ENOMEM;
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->cond, NULL);
    h2o_linklist_init_anchor(&pool->queue);
    pool->max_threads = max_threads;
    *ret = pool;
    return 0;
}

void sx_pool_submit(sx_pool *pool, sx_job *job)
{
    atomic_init(&job->cancelled, false);
    job->super.link = (h2o_linklist_t){NULL, NULL};
    job->pending = (h2o_linklist_t){NULL, NULL};

    pthread_mutex_lock(&pool->mutex);
    h2o_linklist_insert(&pool->queue, &job->pending);
    pool->queued++;
    /* An idle thread counts itself busy only once it has woken up: while more jobs wait than
     * threads are idle, one more thread is made, so a burst of jobs submitted back to back does not
     * queue behind the first one (a read that waits for a locked database). */
    if (pool->queued > pool->idle && pool->nthreads < pool->max_threads) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1024 * 1024);
        if (pthread_create(&pool->tids[pool->nthreads], &attr, pool_main, pool) == 0)
            pool->nthreads++;
        pthread_attr_destroy(&attr);
        /* If no thread could be made, an existing one (there is at least one once any exists)
         * picks the job up; with none at all the job waits until the next successful create. */
    }
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
}

size_t sx_pool_queued(sx_pool *pool)
{
    pthread_mutex_lock(&pool->mutex);
    size_t n = pool->queued;
    pthread_mutex_unlock(&pool->mutex);
    return n;
}

void sx_pool_on_reply(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        sx_job *job = H2O_STRUCT_FROM_MEMBER(sx_job, super.link, messages->next);
        h2o_linklist_unlink(&job->super.link);
        if (!atomic_load(&job->cancelled)) {
            if (job->owner_slot)
                *job->owner_slot = NULL;
            if (job->done)
                job->done(job);
        }
        job->release(job);
    }
}

void sx_pool_free(sx_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mutex);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
    for (unsigned i = 0; i < pool->nthreads; i++)
        pthread_join(pool->tids[i], NULL);
    /* The loops are gone by now; jobs still queued (only possible if no thread could ever be
     * created) are released here. */
    while (!h2o_linklist_is_empty(&pool->queue)) {
        sx_job *job = H2O_STRUCT_FROM_MEMBER(sx_job, pending, pool->queue.next);
        h2o_linklist_unlink(&job->pending);
        job->release(job);
    }
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->tids);
    free(pool);
}
