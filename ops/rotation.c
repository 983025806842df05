/*
 * rotation.c - online master-key and data-key rotation on a dedicated thread.
 *
 * A rotation is a stored r/ record (storage/LAYOUT.md) that names its kind, the version it started
 * from, the version it rotates to, its phase and a cursor, and one thread works through every such
 * record in small chunks:
 *
 *   master  START   sx_crypto_master_add(from)            -> to (idempotent: from_active check)
 *           SWEEP   for each env with data keys after the cursor (sx_crypto_env_each(), whose
 *                   positions the cursor holds): sx_crypto_datakey_rewrap(env)
 *           FINISH  sx_crypto_datakey_rewrap_all() (stragglers), sx_crypto_master_retire() of every
 *                   version that is not active; the record is deleted
 *   env     START   sx_crypto_datakey_rotate(env, from)   -> to
 *           SWEEP   for each v/{o}/{p}/{env}/{name} after the cursor: re-encrypt under `to`, written
 *                   with COND_REV on the v/ record as read, so a value set or deleted meanwhile is
 *                   never overwritten or brought back (a delete removes m/ and v/ together, and our
 *                   write fails on the missing v/)
 *           FINISH  sx_crypto_datakey_destroy() of every other version, asking whether any v/
 *                   record of the env still names it; if one does (a client's set-value that
 *                   encrypted under the old version just before the rotation), another sweep runs
 *
 * A master rotation costs one step per environment and never reads a value, so its time grows
 * with the number of environments, not of secrets. After every chunk the cursor is persisted with
 * a COND_REV write of the record; a crash repeats at most one chunk, and every step is idempotent.
 *
 * Rate: each rotation has a rate in rewrites per second (data keys re-wrapped, values
 * re-encrypted; an item already under the new version costs one read and is not counted). The
 * thread runs a chunk of at most rate/5 rewrites (256 at most) and then does not touch that
 * rotation again before rewrites/rate seconds have passed, so several rotations share the thread
 * fairly and none floods the store. Client requests
 * are never blocked: crypto decrypts under every version still stored, and writes use
 * preconditions instead of locks.
 *
 * Grace: between the end of a sweep and destroying old keys the thread waits grace_ms, so that a
 * request that read a ciphertext just before the sweep rewrote it can still decrypt it.
 *
 * A failed step is remembered (shown by status), reported through on_event and retried with
 * exponential backoff (0.5 s .. 30 s). The engine never logs itself.
 *
 * Several nodes. When the store is shared (SX_STORAGE_CAP_SHARED: several secretsd nodes on one
 * database), every node runs an engine, and a rotation begun on any node must run on exactly one.
 * Correctness never depends on that - every step is idempotent and every write is conditional, so
 * two engines on one rotation only waste work and report conflicts - but the rotation lease keeps
 * them from doing so. The lease is a record (s/rotation.lease: the holder's random node id and the
 * lease time) whose revision is the heartbeat: the holder rewrites it (COND_REV) every third of the
 * lease time and runs rotations only while it is sure no other node can have taken over; the
 * others read it once per poll and take it over (COND_REV on the revision they saw) only after
 * that revision has stayed the same for a whole lease time by their own monotonic clock. No node
 * compares its clock with another's, so clock skew between nodes does not matter. A holder that
 * cannot renew (storage down) stops starting chunks when its lease time runs out; a node that stops
 * deletes the lease, and one that crashes is replaced after one lease time. Without rotations the
 * lease is not held, and idle engines poll the r/ records every SHARED_POLL_MS, so a rotation begun
 * on another node, or left behind by a crashed one, is picked up.
 */
#include "common/bytes.h"
#include "common/clock.h"
#include "ops/rotation_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REC_FMT          0x01
#define REC_HDR          49 /* bytes before the cursor */
#define KEY_MASTER       "r/master"
#define KEY_ENV_PREFIX   "r/env/"
#define BACKOFF_MIN_MS   500
#define BACKOFF_MAX_MS   30000
#define DEFAULT_GRACE_MS 2000
#define DEFAULT_LEASE_MS 10000
#define LEASE_SLACK_MS   500 /* a taker waits this much longer than the lease time */
#define SHARED_POLL_MS   1000
#define LEASE_KEY        "s/rotation.lease"
#define LEASE_FMT        0x01
#define LEASE_LEN        29 /* format, node id (16), lease ms (4), written at (8, wall clock, informational) */

/* ---- helpers ----------------------------------------------------------------------------------- */

const char *sx_rotation_kind_name(const sx_rotation *rot)
{
    return rot->kind == SX_ROTATION_MASTER ? "master" : "env";
}

const char *sx_rotation_phase_name(const sx_rotation *rot)
{
    static const char *const master[] = {"?", "add", "rewrap", "retire"};
    static const char *const env[] = {"?", "rotate", "reencrypt", "destroy"};
    unsigned p = rot->phase <= SX_ROTATION_FINISH ? (unsigned)rot->phase : 0;
    return rot->kind == SX_ROTATION_MASTER ? master[p] : env[p];
}

void sx_rot_place(const sx_rotation *rot, sx_crypto_place *p)
{
    *p = (sx_crypto_place){.org = rot->org, .project = rot->project, .env = rot->env};
}

/* "r/master" or "r/env/o/p/env" into buf (256 bytes). */
static size_t rec_key(char *buf, const sx_rotation *rot)
{
    if (rot->kind == SX_ROTATION_MASTER)
        return (size_t)snprintf(buf, 256, "%s", KEY_MASTER);
    return (size_t)snprintf(buf, 256, "%s%s/%s/%s", KEY_ENV_PREFIX, rot->org, rot->project, rot->env);
}

/* Copy one '/'-separated component of at most 64 bytes; NULL when malformed. */
static const char *take_name(char *dst, const char *p, const char *end, bool last)
{
    const char *slash = last ? end : memchr(p, '/', (size_t)(end - p));
    if (!slash || slash == p || slash - p > SX_ROTATION_NAME_MAX)
        return NULL;
    memcpy(dst, p, (size_t)(slash - p));
    dst[slash - p] = '\0';
    return last ? end : slash + 1;
}

/* Parse "{o}/{p}/{env}" (len bytes at s) into the names of rot. */
int sx_rot_parse_env(sx_rotation *rot, const char *s, size_t len)
{
    const char *end = s + len, *p = s;
    if (!(p = take_name(rot->org, p, end, false)) || !(p = take_name(rot->project, p, end, false)) ||
        !take_name(rot->env, p, end, true) || memchr(rot->env, '/', strlen(rot->env)))
        return -EBADMSG;
    return 0;
}

/* A stored r/ record is the encoding below followed by its record MAC (crypto.h), so a rotation
 * edited in storage (phase, versions, cursor) is refused instead of run. */
static int rec_decode(sx_rotor *r, sx_rotation *rot, const char *key, size_t klen, const uint8_t *v, size_t vlen,
                      uint64_t rev)
{
    memset(rot, 0, sizeof(*rot));
    if (sx_crypto_record_check(&vlen, sx_crypto_system_key(r->c, SX_CRYPTO_KEY_RECORD), key, klen, v, vlen) != 0) {
        if (r->on_forged)
            r->on_forged(r->event_ctx);
        return SX_CRYPTO_EFORGED;
    }
    if (vlen < REC_HDR || v[0] != REC_FMT || (v[1] != SX_ROTATION_MASTER && v[1] != SX_ROTATION_ENV) || v[2] < 1 ||
        v[2] > SX_ROTATION_FINISH)
        return -EBADMSG;
    rot->kind = v[1];
    rot->phase = v[2];
    rot->from = sx_be32_get(v + 3);
    rot->to = sx_be32_get(v + 7);
    rot->rate = sx_be32_get(v + 11);
    rot->started_ms = (int64_t)sx_be64_get(v + 15);
    rot->done = sx_be64_get(v + 23);
    rot->total = sx_be64_get(v + 31);
    rot->sweeps = sx_be64_get(v + 39);
    rot->cursor_len = (size_t)v[47] << 8 | v[48];
    if (rot->cursor_len >= SX_ROTATION_CURSOR_MAX || REC_HDR + rot->cursor_len != vlen)
        return -EBADMSG;
    memcpy(rot->cursor, v + REC_HDR, rot->cursor_len);
    rot->rev = rev;
    size_t pl = strlen(KEY_ENV_PREFIX);
    if (rot->kind == SX_ROTATION_MASTER)
        return klen == strlen(KEY_MASTER) && memcmp(key, KEY_MASTER, klen) == 0 ? 0 : -EBADMSG;
    if (klen <= pl || memcmp(key, KEY_ENV_PREFIX, pl) != 0)
        return -EBADMSG;
    return sx_rot_parse_env(rot, key + pl, klen - pl);
}

static size_t rec_encode(uint8_t *out, const sx_rotation *rot)
{
    out[0] = REC_FMT;
    out[1] = (uint8_t)rot->kind;
    out[2] = (uint8_t)rot->phase;
    sx_be32_put(out + 3, rot->from);
    sx_be32_put(out + 7, rot->to);
    sx_be32_put(out + 11, rot->rate);
    sx_be64_put(out + 15, (uint64_t)rot->started_ms);
    sx_be64_put(out + 23, rot->done);
    sx_be64_put(out + 31, rot->total);
    sx_be64_put(out + 39, rot->sweeps);
    out[47] = (uint8_t)(rot->cursor_len >> 8);
    out[48] = (uint8_t)rot->cursor_len;
    memcpy(out + REC_HDR, rot->cursor, rot->cursor_len);
    return REC_HDR + rot->cursor_len;
}

/* Write rot at the revision it was read with (absent when rot->rev is 0); updates rot->rev. */
int sx_rot_write(sx_rotor *r, sx_rotation *rot)
{
    char key[256];
    uint8_t val[REC_HDR + SX_ROTATION_CURSOR_MAX + SX_CRYPTO_RECORD_MACBYTES];
    size_t klen = rec_key(key, rot), vlen = rec_encode(val, rot);
    sx_crypto_record_mac(val + vlen, sx_crypto_system_key(r->c, SX_CRYPTO_KEY_RECORD), key, klen, val, vlen);
    vlen += SX_CRYPTO_RECORD_MACBYTES;
    sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                        .key = key,
                        .klen = klen,
                        .val = val,
                        .vlen = vlen,
                        .cond = rot->rev ? SX_STORAGE_COND_REV : SX_STORAGE_COND_ABSENT,
                        .rev = rot->rev};
    int rc = sx_storage_batch(r->st, &op, 1, NULL);
    if (rc == 0)
        rot->rev = op.ret_rev;
    return rc;
}

int sx_rot_delete(sx_rotor *r, const sx_rotation *rot)
{
    char key[256];
    sx_storage_op op = {.kind = SX_STORAGE_OP_DELETE,
                        .key = key,
                        .klen = rec_key(key, rot),
                        .cond = SX_STORAGE_COND_REV,
                        .rev = rot->rev};
    return sx_storage_batch(r->st, &op, 1, NULL);
}

/* ---- the rotation lease (shared stores) ----------------------------------------------------------- */

/* Write the lease as ours, over revision rev (0 = absent). t0 is a monotonic time taken before the
 * write was sent: the lease is ours until t0 + lease_ms, whenever the write really committed. */
static bool lease_write(sx_rotor *r, uint64_t rev, int64_t t0)
{
    uint8_t val[LEASE_LEN];
    val[0] = LEASE_FMT;
    memcpy(val + 1, r->node, 16);
    sx_be32_put(val + 17, r->lease_ms);
    sx_be64_put(val + 21, (uint64_t)sx_clock_wall_ms());
    sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                        .key = LEASE_KEY,
                        .klen = strlen(LEASE_KEY),
                        .val = val,
                        .vlen = sizeof(val),
                        .cond = rev ? SX_STORAGE_COND_REV : SX_STORAGE_COND_ABSENT,
                        .rev = rev};
    int rc = sx_storage_batch(r->st, &op, 1, NULL);
    if (rc == 0) {
        r->lease_held = true;
        r->lease_rev = op.ret_rev;
        r->lease_valid_ms = t0 + r->lease_ms;
        r->lease_renew_ms = t0 + r->lease_ms / 3;
        r->seen_rev = 0;
        return true;
    }
    /* Lost a race for it, or storage failed: ours only while the last renewal still holds. */
    r->lease_held = rc != SX_STORAGE_ECONDITION && r->lease_held && sx_clock_mono_ms() < r->lease_valid_ms;
    return r->lease_held;
}

/* Take or renew the lease when that is due. True when this engine may run a chunk now. */
static bool lease_hold(sx_rotor *r)
{
    int64_t now = sx_clock_mono_ms();
    if (r->lease_held && now < r->lease_renew_ms)
        return true;
    uint8_t *v = NULL;
    size_t vl = 0;
    uint64_t rev = 0;
    int rc = sx_storage_get(r->st, LEASE_KEY, strlen(LEASE_KEY), (void **)&v, &vl, &rev);
    if (rc < 0 && rc != -ENOENT) {
        r->lease_held = r->lease_held && now < r->lease_valid_ms;
        return r->lease_held;
    }
    bool valid = rc == 0 && vl == LEASE_LEN && v[0] == LEASE_FMT;
    bool ours = valid && memcmp(v + 1, r->node, 16) == 0;
    uint32_t their_ms = valid ? sx_be32_get(v + 17) : r->lease_ms;
    sx_storage_free(v);
    if (rc == 0 && !ours) {
        r->lease_held = false;
        if (rev != r->seen_rev) {
            r->seen_rev = rev; /* it moved: its holder is alive; watch it from now */
            r->seen_since_ms = now;
            return false;
        }
        if (now - r->seen_since_ms < (int64_t)their_ms + LEASE_SLACK_MS)
            return false;
        /* Not renewed for a whole lease time: its holder is gone. Take it over. */
    }
    return lease_write(r, rc == 0 ? rev : 0, now);
}

/* Give the lease up (when no rotation is left, or the engine stops), so another node need not wait. */
static void lease_release(sx_rotor *r)
{
    if (!r->shared || !r->lease_held)
        return;
    sx_storage_op op = {.kind = SX_STORAGE_OP_DELETE,
                        .key = LEASE_KEY,
                        .klen = strlen(LEASE_KEY),
                        .cond = SX_STORAGE_COND_REV,
                        .rev = r->lease_rev};
    int rc = sx_storage_batch(r->st, &op, 1, NULL);
    (void)rc; /* if this fails, the others take over after one lease time */
    r->lease_held = false;
}

/* ---- the thread ----------------------------------------------------------------------------------- */

static int list_records(sx_rotor *r, sx_rotation **ret, size_t *ret_n)
{
    sx_storage *st = r->st;
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(st, "r/", 2, NULL, 0, 0, &it);
    if (rc < 0)
        return rc;
    sx_rotation *rots = NULL;
    size_t n = 0, cap = 0;
    const void *k, *v;
    size_t kl, vl;
    uint64_t rev;
    while ((rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, &rev)) == 0) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            sx_rotation *nr = realloc(rots, nc * sizeof(*nr));
            if (!nr) {
                rc = -ENOMEM;
                break;
            }
            rots = nr;
            cap = nc;
        }
        if (rec_decode(r, &rots[n], k, kl, v, vl, rev) == 0)
            n++; /* a malformed or forged record is skipped rather than stopping every rotation */
    }
    sx_storage_iter_free(it);
    if (rc < 0) {
        free(rots);
        return rc;
    }
    /* The master rotation first ("r/env/..." sorts before "r/master"). */
    for (size_t i = 0; i < n; i++) {
        if (rots[i].kind == SX_ROTATION_MASTER && i > 0) {
            sx_rotation m = rots[i];
            memmove(&rots[1], &rots[0], i * sizeof(*rots));
            rots[0] = m;
        }
    }
    *ret = rots;
    *ret_n = n;
    return 0;
}

/* Under r->mu. */
static rot_state *state_find(sx_rotor *r, const char *key)
{
    for (size_t i = 0; i < r->nstates; i++)
        if (strcmp(r->states[i].key, key) == 0)
            return &r->states[i];
    return NULL;
}

/* Under r->mu. NULL on ENOMEM. *ret_new is true when the state was created now. */
static rot_state *state_get(sx_rotor *r, const char *key, bool *ret_new)
{
    rot_state *s = state_find(r, key);
    *ret_new = s == NULL;
    if (s)
        return s;
    if (r->nstates == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 8;
        rot_state *ns = realloc(r->states, nc * sizeof(*ns));
        if (!ns)
            return NULL;
        r->states = ns;
        r->cap = nc;
    }
    s = &r->states[r->nstates++];
    memset(s, 0, sizeof(*s));
    snprintf(s->key, sizeof(s->key), "%s", key);
    return s;
}

static void event(sx_rotor *r, const sx_rotation *rot, const char *what, int code)
{
    if (r->on_event)
        r->on_event(r->event_ctx, rot, what, code);
}

/* Run one chunk of rot. 1 = finished, 0 = progress, < 0 = failed (msg says why). *ret_next_ms is
 * the monotonic time before which this rotation must not run again. */
static int run_chunk(sx_rotor *r, sx_rotation *rot, int64_t *ret_next_ms, char *msg, size_t msglen)
{
    int64_t t0 = sx_clock_mono_ms();
    size_t budget = rot->rate ? rot->rate / 5 : ROT_CHUNK_MAX, items = 0;
    budget = budget < 1 ? 1 : budget > ROT_CHUNK_MAX ? ROT_CHUNK_MAX : budget;
    int rc;
    *ret_next_ms = t0;
    switch (rot->phase) {
    case SX_ROTATION_START:
        rc = sx_rot_step_start(r, rot);
        if (rc < 0 && !msg[0])
            snprintf(msg, msglen, "%s: %s",
                     rot->kind == SX_ROTATION_MASTER ? "adding a master version" : "creating a data-key version",
                     sx_crypto_strerror(rc));
        return rc;
    case SX_ROTATION_SWEEP:
        rc = sx_rot_step_sweep(r, rot, budget, &items, msg, msglen);
        if (rc == 0 && rot->phase == SX_ROTATION_FINISH)
            *ret_next_ms = t0 + r->grace_ms;
        else if (rot->rate)
            *ret_next_ms = t0 + (int64_t)((uint64_t)items * 1000u / rot->rate);
        if (rc < 0 && !msg[0])
            snprintf(msg, msglen, "sweep: %s", sx_crypto_strerror(rc));
        return rc;
    case SX_ROTATION_FINISH:
        rc = sx_rot_step_finish(r, rot, msg, msglen);
        if (rc < 0 && !msg[0])
            snprintf(msg, msglen, "%s: %s",
                     rot->kind == SX_ROTATION_MASTER ? "retiring old master versions"
                                                     : "destroying old data-key versions",
                     sx_crypto_strerror(rc));
        return rc;
    }
    return -EBADMSG;
}

/* One pass over every rotation: a chunk for each that is due. Returns the ms until the next one is
 * due, or -1 when there is none. */
static int64_t rotor_pass(sx_rotor *r)
{
    sx_rotation *rots = NULL;
    size_t n = 0;
    r->pass_error = 0;
    int rc = list_records(r, &rots, &n);
    if (rc < 0) {
        r->pass_error = rc;
        return r->shared ? SHARED_POLL_MS : BACKOFF_MAX_MS;
    }
    pthread_mutex_lock(&r->mu);
    bool first = r->first_pass;
    r->first_pass = false;
    pthread_mutex_unlock(&r->mu);
    if (r->shared && n == 0)
        lease_release(r);
    if (r->shared && n > 0 && !lease_hold(r)) {
        free(rots); /* another node runs them; watch its lease */
        return SHARED_POLL_MS;
    }
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nstates; i++)
        r->states[i].seen = false;
    pthread_mutex_unlock(&r->mu);

    int64_t wait = -1;
    for (size_t i = 0; i < n && !atomic_load(&r->stopping); i++) {
        sx_rotation *rot = &rots[i];
        char key[256];
        rec_key(key, rot);
        bool fresh;
        pthread_mutex_lock(&r->mu);
        rot_state *s = state_get(r, key, &fresh);
        int64_t next = s ? s->next_ms : 0;
        if (s)
            s->seen = true;
        pthread_mutex_unlock(&r->mu);
        if (!s) {
            r->pass_error = -ENOMEM;
            continue;
        }
        if (fresh) /* past its start later on: another node ran it, and stopped or died */
            event(r, rot,
                  first                                             ? "resumed"
                  : rot->phase != SX_ROTATION_START || rot->to != 0 ? "taken over from another node"
                                                                    : "started",
                  0);
        int64_t now = sx_clock_mono_ms();
        if (next > now) {
            wait = wait < 0 || next - now < wait ? next - now : wait;
            continue;
        }
        if (r->shared && !lease_hold(r)) {
            wait = SHARED_POLL_MS; /* lost the lease: another node carries on */
            break;
        }
        char msg[SX_ROTATION_MSG_SIZE] = "";
        int64_t next_ms = now;
        rc = run_chunk(r, rot, &next_ms, msg, sizeof(msg));
        pthread_mutex_lock(&r->mu);
        s = state_find(r, key);
        if (rc < 0) {
            s->errors++;
            s->last_error = rc;
            snprintf(s->msg, sizeof(s->msg), "%s", msg);
            int64_t backoff = (int64_t)BACKOFF_MIN_MS << (s->errors < 7 ? s->errors - 1 : 6);
            s->next_ms = sx_clock_mono_ms() + (backoff > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff);
            next_ms = s->next_ms;
        } else {
            s->errors = 0;
            s->last_error = 0;
            s->msg[0] = '\0';
            s->next_ms = next_ms;
        }
        pthread_mutex_unlock(&r->mu);
        if (rc < 0) {
            if (!r->pass_error)
                r->pass_error = rc;
            rot->last_error = rc;
            snprintf(rot->last_error_msg, sizeof(rot->last_error_msg), "%s", msg);
            event(r, rot, "failed", rc);
        } else if (rc == 1) {
            event(r, rot, "finished", 0);
            pthread_mutex_lock(&r->mu);
            s = state_find(r, key);
            s->seen = false; /* dropped below */
            pthread_mutex_unlock(&r->mu);
            continue;
        }
        int64_t left = next_ms - sx_clock_mono_ms();
        left = left < 0 ? 0 : left;
        wait = wait < 0 || left < wait ? left : wait;
    }
    pthread_mutex_lock(&r->mu);
    size_t j = 0;
    for (size_t i = 0; i < r->nstates; i++)
        if (r->states[i].seen)
            r->states[j++] = r->states[i];
    r->nstates = j;
    pthread_mutex_unlock(&r->mu);
    free(rots);
    if (r->shared && r->lease_held) {
        /* Wake in time to renew, however long the rotations sleep. */
        int64_t renew = r->lease_renew_ms - sx_clock_mono_ms();
        renew = renew < 0 ? 0 : renew;
        wait = wait < 0 || renew < wait ? renew : wait;
    }
    return wait;
}

static void *rotor_main(void *arg)
{
    sx_rotor *r = arg;
    for (;;) {
        int64_t wait = rotor_pass(r);
        if (wait < 0 && r->shared)
            wait = SHARED_POLL_MS; /* a rotation may begin on another node */
        pthread_mutex_lock(&r->mu);
        if (!atomic_load(&r->stopping) && !r->woken && wait != 0) {
            if (wait < 0) {
                pthread_cond_wait(&r->cond, &r->mu);
            } else {
                struct timespec ts = sx_clock_mono_deadline(wait);
                pthread_cond_timedwait(&r->cond, &r->mu, &ts);
            }
        }
        r->woken = false;
        bool stop = atomic_load(&r->stopping);
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
    }
    return NULL;
}

/* ---- the public side ---------------------------------------------------------------------------- */

int sx_rotor_new(sx_rotor **ret, sx_storage *st, sx_crypto *c, const sx_rotor_options *opt)
{
    if (!ret || !st || !c)
        return -EINVAL;
    sx_rotor *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->st = st;
    r->c = c;
    r->grace_ms = opt && opt->grace_ms ? opt->grace_ms : DEFAULT_GRACE_MS;
    r->lease_ms = opt && opt->lease_ms ? opt->lease_ms : DEFAULT_LEASE_MS;
    r->shared = sx_storage_has(st, SX_STORAGE_CAP_SHARED);
    randombytes_buf(r->node, sizeof(r->node));
    r->on_event = opt ? opt->on_event : NULL;
    r->on_forged = opt ? opt->on_forged : NULL;
    r->event_ctx = opt ? opt->event_ctx : NULL;
    r->first_pass = true;
    atomic_init(&r->stopping, false);
    sx_clock_cond_init(&r->cond);
    pthread_mutex_init(&r->mu, NULL);
    *ret = r;
    return 0;
}

int sx_rotor_start(sx_rotor *r)
{
    pthread_mutex_lock(&r->mu);
    int rc = r->running ? -EALREADY : 0;
    if (rc == 0) {
        atomic_store(&r->stopping, false);
        rc = -pthread_create(&r->tid, NULL, rotor_main, r);
        r->running = rc == 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void sx_rotor_stop(sx_rotor *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    bool running = r->running;
    atomic_store(&r->stopping, true);
    pthread_cond_broadcast(&r->cond);
    r->running = false;
    pthread_mutex_unlock(&r->mu);
    if (running)
        pthread_join(r->tid, NULL);
    lease_release(r);
}

void sx_rotor_free(sx_rotor *r)
{
    if (!r)
        return;
    sx_rotor_stop(r);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free(r->states);
    free(r);
}

static void wake(sx_rotor *r)
{
    pthread_mutex_lock(&r->mu);
    r->woken = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

/* Copy the in-memory error of rot's state into rot. */
static void merge_state(sx_rotor *r, sx_rotation *rot)
{
    char key[256];
    rec_key(key, rot);
    pthread_mutex_lock(&r->mu);
    rot_state *s = state_find(r, key);
    if (s && s->last_error) {
        rot->last_error = s->last_error;
        snprintf(rot->last_error_msg, sizeof(rot->last_error_msg), "%s", s->msg);
    }
    pthread_mutex_unlock(&r->mu);
}

static int read_record(sx_rotor *r, sx_rotation *rot)
{
    char key[256];
    size_t kl = rec_key(key, rot);
    void *v = NULL;
    size_t vl = 0;
    uint64_t rev = 0;
    int rc = sx_storage_get(r->st, key, kl, &v, &vl, &rev);
    if (rc == 0) {
        rc = rec_decode(r, rot, key, kl, v, vl, rev);
        sx_storage_free(v);
    }
    if (rc == 0)
        merge_state(r, rot);
    return rc;
}

static int begin(sx_rotor *r, sx_rotation *rot, sx_rotation *ret)
{
    rot->phase = SX_ROTATION_START;
    rot->started_ms = sx_clock_wall_ms();
    rot->rev = 0;
    int rc = sx_rot_write(r, rot);
    if (rc == SX_STORAGE_ECONDITION) {
        /* One is in progress already: report that one. */
        rc = read_record(r, rot);
        if (rc == 0 && ret)
            *ret = *rot;
        return rc == 0 ? -EBUSY : rc;
    }
    if (rc < 0)
        return rc;
    if (ret)
        *ret = *rot;
    wake(r);
    return 0;
}

int sx_rotor_begin_master(sx_rotor *r, uint32_t rate, sx_rotation *ret)
{
    if (!r || rate > SX_ROTATION_RATE_MAX)
        return -EINVAL;
    sx_crypto_status *s = malloc(sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = sx_crypto_status_get(r->c, s);
    sx_rotation rot = {.kind = SX_ROTATION_MASTER, .rate = rate, .from = s->active_master};
    free(s);
    return rc < 0 ? rc : begin(r, &rot, ret);
}

int sx_rotor_begin_env(sx_rotor *r, const sx_crypto_place *env, uint32_t rate, sx_rotation *ret)
{
    if (!r || !env || rate > SX_ROTATION_RATE_MAX || strlen(env->org) > SX_ROTATION_NAME_MAX ||
        strlen(env->project) > SX_ROTATION_NAME_MAX || strlen(env->env) > SX_ROTATION_NAME_MAX)
        return -EINVAL;
    sx_rotation rot = {.kind = SX_ROTATION_ENV, .rate = rate};
    snprintf(rot.org, sizeof(rot.org), "%s", env->org);
    snprintf(rot.project, sizeof(rot.project), "%s", env->project);
    snprintf(rot.env, sizeof(rot.env), "%s", env->env);
    int rc = sx_crypto_datakey_active(r->c, &rot.from, env);
    return rc < 0 ? rc : begin(r, &rot, ret);
}

int sx_rotor_list(sx_rotor *r, sx_rotation **ret, size_t *ret_n)
{
    if (!r || !ret || !ret_n)
        return -EINVAL;
    sx_rotation *rots = NULL;
    size_t n = 0;
    int rc = list_records(r, &rots, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        merge_state(r, &rots[i]);
    if (n == 0) {
        free(rots);
        rots = NULL;
    }
    *ret = rots;
    *ret_n = n;
    return 0;
}

int sx_rotor_get(sx_rotor *r, const sx_crypto_place *env, sx_rotation *ret)
{
    if (!r || !ret)
        return -EINVAL;
    sx_rotation rot = {.kind = env ? SX_ROTATION_ENV : SX_ROTATION_MASTER};
    if (env) {
        if (strlen(env->org) > SX_ROTATION_NAME_MAX || strlen(env->project) > SX_ROTATION_NAME_MAX ||
            strlen(env->env) > SX_ROTATION_NAME_MAX)
            return -EINVAL;
        snprintf(rot.org, sizeof(rot.org), "%s", env->org);
        snprintf(rot.project, sizeof(rot.project), "%s", env->project);
        snprintf(rot.env, sizeof(rot.env), "%s", env->env);
    }
    int rc = read_record(r, &rot);
    if (rc == 0)
        *ret = rot;
    return rc;
}

int sx_rotor_run_all(sx_rotor *r)
{
    if (!r || r->running)
        return -EINVAL;
    unsigned grace = r->grace_ms;
    r->grace_ms = 0;
    int rc = 0;
    for (;;) {
        int64_t wait = rotor_pass(r);
        if (r->pass_error) {
            rc = r->pass_error;
            break;
        }
        if (wait < 0)
            break;
        if (wait > 0)
            nanosleep(&(struct timespec){.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000L}, NULL);
    }
    r->grace_ms = grace;
    lease_release(r);
    return rc;
}
