/*
 * rotation_internal.h - what rotation.c (records, the thread, the public side) and
 * rotation_steps.c (the steps of a rotation) share. Internal to the rotation engine.
 */
#ifndef SX_OPS_ROTATION_INTERNAL_H
#define SX_OPS_ROTATION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "ops/ops.h"

#define ROT_CHUNK_MAX       256u
#define ROT_CHUNK_BYTES_MAX (4u * 1024 * 1024) /* value bytes collected per env chunk */
#define ROT_WRITE_RETRIES   16

typedef struct rot_state {
    char key[256];   /* the r/ record */
    int64_t next_ms; /* monotonic: not before */
    int last_error;
    char msg[SX_ROTATION_MSG_SIZE];
    unsigned errors;
    bool seen;
} rot_state;

struct sx_rotor {
    sx_storage *st;
    sx_crypto *c;
    unsigned grace_ms;
    unsigned lease_ms;
    sx_rotor_event_fn on_event;
    void (*on_forged)(void *ctx);
    void *event_ctx;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    bool running, woken, first_pass;
    atomic_bool stopping;
    pthread_t tid;
    rot_state *states;
    size_t nstates, cap;
    int pass_error; /* first error of the last pass (run_all) */
    /* Nodes sharing the store (SX_STORAGE_CAP_SHARED) take turns through the rotation lease
     * (rotation.c, "Several nodes"). Only the engine's thread (or run_all's caller) touches these. */
    bool shared;
    uint8_t node[16]; /* random id of this engine */
    bool lease_held;
    uint64_t lease_rev;     /* revision of our last write of the lease record */
    int64_t lease_valid_ms; /* monotonic: ours until then (from before the write that renewed it) */
    int64_t lease_renew_ms; /* monotonic: renew from then on */
    uint64_t seen_rev;      /* another node's lease as last read, and since when it has not moved */
    int64_t seen_since_ms;
};

/* Fill the crypto place of an env rotation's names. */
void sx_rot_place(const sx_rotation *rot, sx_crypto_place *p);
/* Parse "{o}/{p}/{env}" (len bytes at s) into rot's names; -EBADMSG when malformed. */
int sx_rot_parse_env(sx_rotation *rot, const char *s, size_t len);
/* Write rot's r/ record at the revision it was read with (absent when rot->rev is 0); updates
 * rot->rev. Delete it at that revision. Storage errors, SX_STORAGE_ECONDITION. */
int sx_rot_write(sx_rotor *r, sx_rotation *rot);
int sx_rot_delete(sx_rotor *r, const sx_rotation *rot);

/* The steps (rotation_steps.c), run by the engine's thread. Each persists what it did.
 * START: add the new version, count the sweep, enter SWEEP.
 * SWEEP: handle up to budget rewrites after the cursor (*ret_items gets how many rewrites), or
 *        enter FINISH when nothing is left.
 * FINISH: destroy or retire the old versions; returns 1 when the rotation is complete (its record
 *         deleted), 0 when something still needed an old version and another sweep began.
 * On failure msg gets a reason (names, never values). */
int sx_rot_step_start(sx_rotor *r, sx_rotation *rot);
int sx_rot_step_sweep(sx_rotor *r, sx_rotation *rot, size_t budget, size_t *ret_items, char *msg, size_t msglen);
int sx_rot_step_finish(sx_rotor *r, sx_rotation *rot, char *msg, size_t msglen);

#endif /* SX_OPS_ROTATION_INTERNAL_H */
