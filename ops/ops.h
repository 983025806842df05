/*
 * ops.h - the operator machinery: the key-rotation engine (rotation.c, rotation_steps.c), online
 * backups with their restore (backup.c) and the one-time MAC upgrade of an older store's
 * authority records (records.c).
 *
 * Nothing here knows HTTP: secretsd's admin handlers and main() call these functions, and
 * bench/rotate_bench.c and the tests drive the rotation engine directly over a store.
 *
 * Rotation state lives in storage, in r/ records (layout: storage/LAYOUT.md, "Rotation records"),
 * so a server that crashed or was restarted resumes a rotation where its last persisted cursor
 * was. Every step is one of crypto's idempotent rotation primitives, so redoing the part of a
 * chunk that ran after the last persisted cursor changes nothing.
 *
 * Threads: the engine runs rotations on its own thread (never an event loop). Every other function
 * may be called from any thread; they block on storage and must not run on an event loop.
 * Errors: 0 or a negative errno / storage / crypto code (sx_crypto_strerror() names them all).
 */
#ifndef SX_OPS_OPS_H
#define SX_OPS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "secrets/secrets.h"
#include "storage/storage.h"

/* ---- rotations (rotation.c) -------------------------------------------------------------------- */

typedef enum sx_rotation_kind {
    SX_ROTATION_MASTER = 1, /* new master version; every data key re-wrapped; old versions retired */
    SX_ROTATION_ENV = 2,    /* new data-key version of one env; its values re-encrypted; old versions destroyed */
} sx_rotation_kind;

typedef enum sx_rotation_phase {
    SX_ROTATION_START = 1,  /* master: add the new version; env: create the new data-key version */
    SX_ROTATION_SWEEP = 2,  /* master: re-wrap each env's data keys; env: re-encrypt each value */
    SX_ROTATION_FINISH = 3, /* master: retire old versions; env: destroy old data-key versions */
} sx_rotation_phase;

#define SX_ROTATION_NAME_MAX     64
#define SX_ROTATION_CURSOR_MAX   512 /* longest storage key a cursor holds (h/o/p/env/name/{version} is < 470) */
#define SX_ROTATION_RATE_MAX     1000000u
#define SX_ROTATION_DEFAULT_RATE 2000u /* items (envs or values) per second */
#define SX_ROTATION_MSG_SIZE     400   /* sx_rotation.last_error_msg, with its NUL */

/* One rotation, as stored in its r/ record plus what the engine knows in memory. */
typedef struct sx_rotation {
    sx_rotation_kind kind;
    sx_rotation_phase phase;
    char org[SX_ROTATION_NAME_MAX + 1]; /* SX_ROTATION_ENV only */
    char project[SX_ROTATION_NAME_MAX + 1];
    char env[SX_ROTATION_NAME_MAX + 1];
    uint32_t from;      /* the version that was active when the rotation began */
    uint32_t to;        /* the new version; 0 until START is done */
    uint32_t rate;      /* items per second; 0 = unlimited */
    int64_t started_ms; /* wall clock */
    uint64_t done;      /* items handled in the current sweep */
    uint64_t total;     /* items counted when the sweep began (others may come and go meanwhile); raised to
                           done when more were handled, and set to done when the sweep ends */
    uint64_t sweeps;    /* sweeps started (a FINISH that finds stragglers starts another) */
    size_t cursor_len;  /* position of the last item the sweep has handled (0 = from the beginning): an
                           env's position from sx_crypto_env_each() (master) or a value's storage key (env) */
    char cursor[SX_ROTATION_CURSOR_MAX];
    uint64_t rev; /* revision of the r/ record */
    /* not persisted */
    int last_error; /* 0, or the code of the last failed step (retried with backoff) */
    char last_error_msg[SX_ROTATION_MSG_SIZE];
} sx_rotation;

typedef struct sx_rotor sx_rotor;

/* What the engine reports, for the server to log: what is "started", "resumed" (after a restart),
 * "taken over from another node" (shared stores), "finished" or "failed" (code set, and
 * rot->last_error_msg says why; the step is retried with backoff). rot is borrowed for the call.
 * Called on the engine's thread, or in sx_rotor_run_all()'s caller. */
typedef void (*sx_rotor_event_fn)(void *ctx, const sx_rotation *rot, const char *what, int code);

typedef struct sx_rotor_options {
    unsigned grace_ms;          /* wait between the end of a sweep and destroying old keys, so that a request
                                   that read a ciphertext before it was rewritten can still decrypt it;
                                   0 = 2000 ms */
    sx_rotor_event_fn on_event; /* may be NULL */
    void *event_ctx;
    unsigned lease_ms; /* shared stores: how long the rotation lease lasts without renewal before another
                          node may take it over (renewed every third of it); 0 = 10000 ms */
    /* Called (any thread that reads rotation records) for each r/ record read that fails its record
     * MAC: the rotation it describes is refused, never run. May be NULL. */
    void (*on_forged)(void *ctx);
} sx_rotor_options;

/* Create an engine over st and c (both borrowed; they must outlive it); opt may be NULL (every
 * default). No thread runs yet. When st is shared by several nodes (SX_STORAGE_CAP_SHARED), every
 * node runs an engine and they take turns through a lease record: one node at a time runs the
 * rotations; the others poll for the lease and take over from a node that stopped renewing it.
 * -EINVAL, -ENOMEM. */
int sx_rotor_new(sx_rotor **ret, sx_storage *st, sx_crypto *c, const sx_rotor_options *opt)
    __attribute__((warn_unused_result));
/* Stop the thread if it runs, then free. NULL ok. */
void sx_rotor_free(sx_rotor *r);
/* Start the background thread, which resumes every rotation found in storage. -EALREADY when it
 * runs already, or pthread_create()'s error (negated). */
int sx_rotor_start(sx_rotor *r) __attribute__((warn_unused_result));
/* Ask the thread to stop and join it: the running chunk ends after its current item and its
 * cursor is persisted, and the rotation lease (shared stores) is given up so another node carries
 * on at once. Idempotent; a no-op when the thread never started. */
void sx_rotor_stop(sx_rotor *r);

/*
 * Begin a master-key rotation at rate items per second (0 = unlimited, at most
 * SX_ROTATION_RATE_MAX, else -EINVAL): writes r/master and wakes the thread. *ret (may be NULL)
 * gets the new record. -EBUSY when a master rotation is already in progress (then *ret gets that
 * one; if it cannot be read, that error is returned instead); crypto and storage errors.
 */
int sx_rotor_begin_master(sx_rotor *r, uint32_t rate, sx_rotation *ret) __attribute__((warn_unused_result));
/* The same for the data key of env (org, project, env; name ignored). -ENOENT when the env has no
 * data key (no value was ever stored in it); -EBUSY when that env is already rotating; -EINVAL for
 * names that are not valid. */
int sx_rotor_begin_env(sx_rotor *r, const sx_crypto_place *env, uint32_t rate, sx_rotation *ret)
    __attribute__((warn_unused_result));

/* Every rotation in progress, master first, then envs in key order: a malloc'd array of *ret_n
 * entries (free with free(); NULL when none). A record that is malformed or fails its MAC
 * (on_forged is called) is left out. -EINVAL, -ENOMEM, storage errors. */
int sx_rotor_list(sx_rotor *r, sx_rotation **ret, size_t *ret_n) __attribute__((warn_unused_result));
/* The rotation of env in progress (env NULL = the master rotation); -ENOENT when none,
 * SX_CRYPTO_EFORGED when its record fails its MAC (on_forged is called), -EBADMSG when it is
 * malformed, -EINVAL for names that are too long, storage errors. */
int sx_rotor_get(sx_rotor *r, const sx_crypto_place *env, sx_rotation *ret) __attribute__((warn_unused_result));

/* Run every rotation in storage to its end in the calling thread (no background thread may be
 * running: -EINVAL), honouring their rates but not the grace period. Stops after the first pass in
 * which a step failed and returns that step's error. For the benchmark and for tests. */
int sx_rotor_run_all(sx_rotor *r) __attribute__((warn_unused_result));

/* "master"/"env" and the phase's name ("add", "rewrap", "retire" / "rotate", "reencrypt",
 * "destroy"; "?" for a phase out of range). Static strings. */
const char *sx_rotation_kind_name(const sx_rotation *rot);
const char *sx_rotation_phase_name(const sx_rotation *rot);

/* ---- backups (backup.c) ------------------------------------------------------------------------ */

#define SX_BACKUP_MANIFEST "MANIFEST.json"
#define SX_BACKUP_DATA     "data"
/* The manifest's MAC (hex, one line): keyed with the keyring's record key, so only a server holding
 * the keyring can make one, and checked after the restored copy has been unsealed. */
#define SX_BACKUP_MANIFEST_MAC "MANIFEST.mac"

#define SX_BACKUP_NAME_SIZE 16 /* sx_backup_info.backend and .seal, with their NUL */

/* What a backup holds, as written into its manifest. */
typedef struct sx_backup_info {
    int64_t created_ms;
    char backend[SX_BACKUP_NAME_SIZE];
    char seal[SX_BACKUP_NAME_SIZE]; /* seal type at backup time: what is needed to open it */
    uint32_t active_master;
    uint64_t files, bytes;                             /* in data/ */
    uint64_t secrets, values, envs, data_keys, tokens; /* records counted in the copy */
} sx_backup_info;

/*
 * Write an online, consistent backup of st into dir (absolute; must not exist; its parent must):
 * dir/data is a storage checkpoint, dir/MANIFEST.json names every file with its size and BLAKE2b
 * hash plus what *info holds, and dir/MANIFEST.mac the manifest's MAC. The seal key is NOT part of
 * it. c gives the seal type and master versions. -EINVAL when dir is not absolute, -ENOTSUP for a
 * backend without checkpoints, -EEXIST when dir exists, else a crypto, storage or file error. On
 * failure the partial dir is removed. err gets a one-line reason.
 */
int sx_backup_create(sx_storage *st, sx_crypto *c, const char *dir, sx_backup_info *info, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Called by sx_backup_restore() once the files are copied into copy (a temporary sibling of the
 * target) and synced, before anything is renamed into place: open the copy, unseal it and check
 * the manifest (its exact bytes, and the MAC file's line or NULL when the backup has none) with
 * sx_backup_manifest_check(), compare the records with *want. 0 to go on; anything else stops the
 * restore, which removes the copy and returns that code (err should say why).
 */
typedef int (*sx_backup_check_fn)(void *ctx, const char *copy, const sx_backup_info *want, const char *manifest,
                                  size_t len, const char *mac_line, char *err, size_t errlen);

/*
 * Restore the backup in dir into the RocksDB directory target, which must not exist or be an
 * empty directory: verify the manifest (every file present with its size and hash, no other
 * file), copy into a temporary sibling of target, fsync, let check() unseal the copy and check
 * the manifest's MAC, rename. *info gets the manifest's contents (as far as it was read, also on
 * failure). -EEXIST when target holds something, -EBADMSG for a manifest or file that does not
 * match, check()'s code when it refuses, -ENAMETOOLONG, or a file error (negative errno; -ENOENT:
 * dir has no manifest); on any failure target is left as it was. err gets a one-line reason.
 */
int sx_backup_restore(const char *dir, const char *target, sx_backup_info *info, sx_backup_check_fn check, void *ctx,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Check the manifest bytes against mac_line (the MAC file's content, NULL when the file is absent)
 * under c's record key. A backup without a MAC file is accepted only from a store whose records
 * predate record MACs (sx_crypto_records_authenticated() false): everything since writes one.
 * 0, or -EBADMSG with a reason in err.
 */
int sx_backup_manifest_check(sx_crypto *c, const char *manifest, size_t len, const char *mac_line, char *err,
                             size_t errlen) __attribute__((warn_unused_result));

/* Count the records of st by kind into info (secrets, values, envs, data_keys, tokens): every
 * record of a kind, well-formed or not. 0 or a storage error. */
int sx_backup_count(sx_storage *st, sx_backup_info *info) __attribute__((warn_unused_result));

/* ---- authority records (records.c) ------------------------------------------------------------ */

/*
 * When the keyring says the store's authority records (t/, r/, s/audit.head) were written without
 * MACs, MAC every one that lacks a valid MAC and then set the keyring's flag; otherwise do nothing.
 * Run once after unsealing, before anything reads those records. *ret_count gets how many records
 * were rewritten. 0, or a storage / crypto error with a reason in err (the server does not start).
 */
int sx_records_upgrade(sx_storage *st, sx_crypto *c, size_t *ret_count, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- the sweeper (sweeper.c) ------------------------------------------------------------------- */

/* What the sweeper has done, for /v1/status and /metrics. */
typedef struct sx_sweeper_stats {
    uint64_t runs;                     /* sweeps done */
    int64_t last_run_ms;               /* wall clock of the last sweep's end; 0 = none yet */
    uint64_t purged_total;             /* deleted secrets purged past their recovery window */
    uint64_t failures;                 /* sweeps that met a storage error */
    uint64_t deleted_secrets;          /* deleted secrets kept, as the last sweep counted them */
    uint64_t deleted_version_records;  /* their version records (x/), as counted then */
    uint64_t previous_version_records; /* previous-version records (h/, destroyed ones' too), then */
    uint64_t compactions;              /* rounds that made the store drop deleted records */
    uint64_t compact_failures;
    bool compact_supported; /* the backend can drop deleted records from its files */
    bool compact_pending;   /* deletions noted and not compacted yet */
    int last_error;         /* of the last sweep or compaction; 0 = none */
} sx_sweeper_stats;

typedef struct sx_sweeper sx_sweeper;

/*
 * Start the sweeper's thread: a sweep at once and every interval_s seconds (purging deleted
 * secrets past their purge time through ctx), and compactions of the envs whose ciphertext was
 * deleted, batched over a short delay (every range once after a start, since a crash may have
 * lost what was noted). ctx is copied; its destroyed callback is ignored (the sweeper's own).
 * on_purged (may be NULL) is told, on the sweeper's thread, of each deleted secret it purged.
 */
int sx_sweeper_start(sx_sweeper **ret, const sx_secrets_ctx *ctx, unsigned interval_s,
                     void (*on_purged)(void *arg, const sx_secrets_place *p), void *arg)
    __attribute__((warn_unused_result));
/* The destroyed callback of an sx_secrets_ctx (arg = the sweeper): note p's env for compaction. */
void sx_sweeper_note_destroyed(void *arg, const sx_secrets_place *p);
/* Sweep now rather than at the next interval. */
void sx_sweeper_wake(sx_sweeper *s);
void sx_sweeper_stats_get(sx_sweeper *s, sx_sweeper_stats *ret);
/* Stop the thread (a compaction in progress finishes first) and free s. NULL is a no-op. */
void sx_sweeper_stop(sx_sweeper *s);

#endif /* SX_OPS_OPS_H */
