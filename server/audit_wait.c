/*
 * audit_wait.c - requests parked until their audit intent line is on file, in the manner of the
 * worker pool (pool.c) turned around.
 *
 * Under [log] audit_policy = fail_closed a reveal may send its value, and a write may run its
 * transaction, only once its intent line is on file. Instead of a thread blocking until the audit
 * writer confirms it, the request parks: its intent line goes to the writer with a ticket
 * (sx_audit_log_async), and the writer, once the batch holding the line is written and
 * fdatasync'ed, posts the ticket back as an h2o_multithread message to the loop that queued it.
 * There the request goes on (proceed). Hundreds of parked requests cost no thread: the writer
 * answers all of a batch's tickets at once (group commit).
 *
 * Three things can end a wait, in any order, all on the request's loop thread:
 *   - the answer: proceed when the line is on file, 503 when its batch could not be written;
 *   - the timer (SX_AUDIT_SYNC_TIMEOUT_MS): 503, and the request never proceeds - a stuck disk
 *     answers in bounded time and changes nothing; the late answer only frees the wait;
 *   - the request going away (client reset or closed): an outcome line with status
 *     SX_AUDIT_STATUS_GONE, and the late answer only frees the wait.
 * The wait's memory is malloc'd and freed only when the writer's answer arrived (the writer holds
 * its ticket until then), never with the request; w->r is cleared the moment the request is
 * answered or gone, so a late answer never touches a freed request.
 */
#include "server/server_internal.h"

#include <errno.h>
#include <string.h>

/* Unpark: r and w forget each other and the timer stops. */
static void detach(sx_audit_wait *w)
{
    if (w->r)
        w->r->audit_wait = NULL;
    w->r = NULL;
    if (h2o_timeout_is_linked(&w->timer))
        h2o_timeout_unlink(&w->timer);
}

/* The outcome line of a request that did not proceed, from the wait's copy of its intent line. */
static void log_outcome(sx_audit_wait *w, int status)
{
    sx_audit_rec rec;
    sx_audit_copy_rec(&w->who, &rec);
    rec.status = status;
    sx_audit_log(w->thread->server->audit, w->thread->index, &rec);
}

/* Answer r 503: its intent line is not on file (rc: -EIO, -ETIMEDOUT, -ENOBUFS, -ESHUTDOWN). */
static void refuse(sx_audit_wait *w, sx_request *r, int rc)
{
    const sx_http_error *e = sx_http_error_of(SX_ERR_AUDIT_INTENT, rc);
    sx_log_set_request_id(r->req_id);
    sx_log(SX_LOG_ERROR, "%s refused: its audit intent line is not on file (%s)",
           w->who.action ? w->who.action : "request", strerror(-rc));
    log_outcome(w, e->status);
    r->audit_done = true; /* the outcome line names what the intent line named */
    sx_send_failure(r, SX_ERR_AUDIT_INTENT, rc, NULL);
    sx_log_set_request_id(NULL);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    sx_audit_wait *w = H2O_STRUCT_FROM_MEMBER(sx_audit_wait, timer, entry);
    sx_request *r = w->r;
    detach(w);
    if (r)
        refuse(w, r, -ETIMEDOUT);
}

/* The ticket's done: the writer's answer, on the loop that queued the line. */
static void on_logged(void *arg, int rc)
{
    sx_audit_wait *w = arg;
    sx_request *r = w->r;
    if (r) {
        detach(w);
        /* A loop that has stopped delivers its last messages while the pool is already gone. */
        if (rc == 0 && w->thread->stopped)
            rc = -ESHUTDOWN;
        if (rc == 0) {
            sx_log_set_request_id(r->req_id);
            w->proceed(w, r);
            sx_log_set_request_id(NULL);
        } else {
            refuse(w, r, rc);
        }
    }
    w->release(w);
}

void sx_audit_wait_start(sx_request *r, sx_audit_wait *w, const sx_audit_rec *rec)
{
    sx_thread *t = r->thread;
    w->thread = t;
    w->r = r;
    r->audit_wait = w;
    sx_audit_copy_set(&w->who, rec);
    w->timer = (h2o_timeout_entry_t){.cb = on_timeout};
    h2o_timeout_link(t->ctx.loop, &t->audit_timeout, &w->timer);
    /* A loop that has stopped no longer gets the writer's answers (they were flushed before it
     * disposes of itself). */
    int rc = t->stopped ? -ESHUTDOWN : sx_audit_log_async(r->server->audit, t->index, rec, &w->ticket, on_logged, w);
    if (rc != 0) {
        detach(w);
        refuse(w, r, rc);
        w->release(w);
    }
}

void sx_audit_wait_request_gone(sx_request *r)
{
    sx_audit_wait *w = r->audit_wait;
    detach(w);
    log_outcome(w, SX_AUDIT_STATUS_GONE);
}

void sx_audit_wait_post(void *ctx, unsigned thread_index, sx_audit_ticket *t)
{
    (void)ctx;
    (void)thread_index;
    sx_audit_wait *w = H2O_STRUCT_FROM_MEMBER(sx_audit_wait, ticket, t);
    h2o_multithread_send_message(&w->thread->audit_receiver, &w->super);
}

void sx_audit_wait_on_answer(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        sx_audit_wait *w = H2O_STRUCT_FROM_MEMBER(sx_audit_wait, super.link, messages->next);
        h2o_linklist_unlink(&w->super.link);
        sx_audit_ticket_done(&w->ticket);
    }
}

void sx_audit_wait_thread_init(sx_thread *t)
{
    h2o_timeout_init(t->ctx.loop, &t->audit_timeout, SX_AUDIT_SYNC_TIMEOUT_MS);
}

void sx_audit_wait_thread_dispose(sx_thread *t)
{
    /* A drain that timed out leaves requests parked: their timers go (their answers still come,
     * and free their waits, before the loop's last turn). */
    while (!h2o_linklist_is_empty(&t->audit_timeout._entries)) {
        h2o_timeout_entry_t *e = H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, t->audit_timeout._entries.next);
        h2o_timeout_unlink(e);
    }
    h2o_timeout_dispose(t->ctx.loop, &t->audit_timeout);
}
