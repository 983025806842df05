/*
 * rotation_steps.c - the steps of a rotation (see rotation.c for the whole): START adds the new
 * key version, SWEEP walks the envs that have data keys (master; crypto walks its own records) or
 * the value records (env) from the cursor in chunks, FINISH retires or destroys the old versions. Each step is built
 * from crypto's idempotent primitives and persists its progress in the rotation's r/ record, so running a step again
 * after a crash redoes at most one chunk and changes nothing that was already done.
 */
#include "ops/rotation_internal.h"
#include "common/testpoint.h"
#include "secrets/secrets.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Start (another) sweep from the beginning: phase SWEEP, cursor cleared, total recounted (the envs
 * that have data keys, or the env's values). */
static int sweep_begin(sx_rotor *r, sx_rotation *rot)
{
    int rc;
    if (rot->kind == SX_ROTATION_MASTER) {
        rc = sx_crypto_store_count(r->st, &rot->total, NULL);
    } else {
        char prefix[SX_SECRETS_KEY_MAX];
        sx_crypto_place env;
        uint64_t history = 0, deleted = 0;
        sx_rot_place(rot, &env);
        rc = sx_storage_count(r->st, prefix, sx_secrets_env_prefix(prefix, SX_SECRETS_RECORD_VALUE, &env), &rot->total);
        if (rc >= 0)
            rc = sx_storage_count(r->st, prefix, sx_secrets_env_prefix(prefix, SX_SECRETS_RECORD_HISTORY, &env),
                                  &history);
        if (rc >= 0)
            rc = sx_storage_count(r->st, prefix, sx_secrets_env_prefix(prefix, SX_SECRETS_RECORD_TRASHED_VERSION, &env),
                                  &deleted);
        rot->total += history + deleted;
    }
    if (rc < 0)
        return rc;
    rot->phase = SX_ROTATION_SWEEP;
    rot->cursor_len = 0;
    rot->done = 0;
    rot->sweeps++;
    return sx_rot_write(r, rot);
}

/* ---- the steps ----------------------------------------------------------------------------------- */

int sx_rot_step_start(sx_rotor *r, sx_rotation *rot)
{
    int rc;
    if (rot->kind == SX_ROTATION_MASTER) {
        rc = sx_crypto_master_add(r->c, &rot->to, rot->from);
    } else {
        sx_crypto_place env;
        sx_rot_place(rot, &env);
        rc = sx_crypto_datakey_rotate(r->c, &rot->to, &env, rot->from);
    }
    return rc < 0 ? rc : sweep_begin(r, rot);
}

/* The ciphertext of a record of the sweep: a value record is its blob, a history record wraps it
 * (secrets/ owns that layout). 1 when there is nothing to re-encrypt (a destroyed version). */
static int record_blob(bool history, const uint8_t *rec, size_t len, const uint8_t **ret_blob, size_t *ret_len,
                       int64_t *ret_created_ms)
{
    if (!history) {
        *ret_blob = rec;
        *ret_len = len;
        return 0;
    }
    sx_secrets_history_view h;
    int rc = sx_secrets_history_view_of(&h, rec, len);
    if (rc != 0)
        return rc;
    if (h.destroyed)
        return 1;
    *ret_blob = h.blob;
    *ret_len = h.blob_len;
    *ret_created_ms = h.created_ms;
    return 0;
}

/* Re-encrypt the record at key (as read at rev: a value, or a previous version when history) under
 * the env's active data key, keeping the version of the secret's value it holds (place->version;
 * a value record's is read from the secret after the record). *did is set when a new ciphertext
 * was written. */
static int reencrypt_one(sx_rotor *r, const sx_crypto_place *where, bool history, const char *key, size_t klen,
                         const uint8_t *rec, size_t rlen, uint64_t rev, bool *did)
{
    void *reread = NULL;
    sx_crypto_place place = *where;
    int rc = 0;
    for (int attempt = 0; attempt < ROT_WRITE_RETRIES; attempt++) {
        const uint8_t *blob;
        size_t blen;
        int64_t created_ms = 0;
        rc = record_blob(history, rec, rlen, &blob, &blen, &created_ms);
        if (rc == 0 && !history)
            rc = sx_secrets_current_version(r->st, &place, &place.version);
        if (rc != 0) {
            rc = rc == 1 ? 0 : rc;
            break;
        }
        uint8_t *nb = NULL, *nrec = NULL;
        size_t nl = 0, nrl = 0;
        sx_crypto_pin pin;
        rc = sx_crypto_value_reencrypt_pinned(r->c, &nb, &nl, &pin, &place, blob, blen);
        if (rc != 0) {
            rc = rc == 1 ? 0 : rc; /* 1: already under the active version */
            break;
        }
        if (history) {
            rc = sx_secrets_history_encode(created_ms, nb, nl, &nrec, &nrl);
            free(nb);
            if (rc != 0)
                break;
            nb = nrec;
            nl = nrl;
        }
        /* Like a client's set-value, the write checks that the env still names the version it
         * encrypted under, so it never lands under a version that another rotation destroys. */
        sx_storage_op ops[2] = {{.kind = SX_STORAGE_OP_PUT,
                                 .key = key,
                                 .klen = klen,
                                 .val = nb,
                                 .vlen = nl,
                                 .cond = SX_STORAGE_COND_REV,
                                 .rev = rev},
                                {.kind = SX_STORAGE_OP_CHECK,
                                 .key = pin.key,
                                 .klen = pin.klen,
                                 .cond = SX_STORAGE_COND_REV,
                                 .rev = pin.rev}};
        rc = sx_storage_batch(r->st, ops, 2, NULL);
        free(nb);
        if (rc == 0)
            *did = true;
        if (rc != SX_STORAGE_ECONDITION)
            break;
        /* A client set or deleted the value since we read it, or the env's key state moved: look
         * again. A deleted value stays deleted; a new one was most likely encrypted under the new
         * version already. */
        sx_storage_free(reread);
        reread = NULL;
        rc = sx_storage_get(r->st, key, klen, &reread, &rlen, &rev);
        if (rc == -ENOENT) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        rec = reread;
        rc = SX_STORAGE_ECONDITION;
    }
    sx_storage_free(reread);
    return rc;
}

/* One item of a sweep: an env with data keys (master) or a value record (env). key is the sweep's
 * position (what the cursor persists): the env's position from sx_crypto_env_each(), or the value's
 * storage key. */
typedef struct item {
    char *key;
    size_t klen;
    uint8_t *val; /* env sweep: the value's ciphertext as read */
    size_t vlen;
    uint64_t rev;
    char org[SX_ROTATION_NAME_MAX + 1]; /* master sweep: the env */
    char project[SX_ROTATION_NAME_MAX + 1];
    char env[SX_ROTATION_NAME_MAX + 1];
} item;

/* Remember pos (klen bytes) in i; val (vlen bytes) too unless NULL. */
static int item_set(item *i, const void *pos, size_t klen, const void *val, size_t vlen, uint64_t rev)
{
    i->key = malloc(klen + 1);
    i->val = val ? malloc(vlen ? vlen : 1) : NULL;
    if (!i->key || (val && !i->val)) {
        free(i->key);
        free(i->val);
        return -ENOMEM;
    }
    memcpy(i->key, pos, klen);
    i->key[klen] = '\0';
    i->klen = klen;
    if (val)
        memcpy(i->val, val, vlen);
    i->vlen = vlen;
    i->rev = rev;
    return 0;
}

/* What a master sweep's chunk collects: up to max envs. */
typedef struct env_collect {
    item *items;
    size_t max, n;
} env_collect;

static int collect_env(void *ctx, const sx_crypto_place *env, const void *pos, size_t pos_len)
{
    env_collect *ec = ctx;
    if (pos_len >= SX_ROTATION_CURSOR_MAX || strlen(env->org) > SX_ROTATION_NAME_MAX ||
        strlen(env->project) > SX_ROTATION_NAME_MAX || strlen(env->env) > SX_ROTATION_NAME_MAX)
        return 0; /* cannot be one of ours (names are bounded) */
    item *i = &ec->items[ec->n];
    int rc = item_set(i, pos, pos_len, NULL, 0, 0);
    if (rc < 0)
        return rc;
    snprintf(i->org, sizeof(i->org), "%s", env->org);
    snprintf(i->project, sizeof(i->project), "%s", env->project);
    snprintf(i->env, sizeof(i->env), "%s", env->env);
    return ++ec->n < ec->max ? 0 : 1;
}

/* Collect items of the records under prefix, after the cursor when given, until max items or the
 * chunk's bytes. */
static int collect_prefix(sx_rotor *r, const char *prefix, size_t pl, const void *cursor, size_t cursor_len,
                          item *items, size_t max, size_t *n, size_t *bytes)
{
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(r->st, prefix, pl, cursor_len ? cursor : NULL, cursor_len,
                                 cursor_len ? SX_STORAGE_ITER_AFTER : 0, &it);
    if (rc < 0)
        return rc;
    while (*n < max && *bytes < ROT_CHUNK_BYTES_MAX) {
        const void *k, *v;
        size_t kl, vl;
        uint64_t rev;
        rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, &rev);
        if (rc != 0)
            break;
        if (kl >= SX_ROTATION_CURSOR_MAX)
            continue; /* cannot be one of ours (names are bounded) */
        if ((rc = item_set(&items[*n], k, kl, v, vl, rev)) < 0)
            break;
        *bytes += vl;
        (*n)++;
    }
    sx_storage_iter_free(it);
    return rc < 0 ? rc : 0;
}

/* The record kinds an env sweep walks, in this order: current values, then previous versions,
 * then deleted secrets' versions. A set-value that moves a value not yet swept into the history,
 * or a delete that moves a secret into the deleted ones, moves it ahead of the walk. A restore
 * moves records back, behind it: it encrypts anew what is not under the active key, under a pin
 * that fails once a rotation has begun, so nothing it moves escapes the sweep. */
static const sx_secrets_record sweep_kinds[] = {SX_SECRETS_RECORD_VALUE, SX_SECRETS_RECORD_HISTORY,
                                                SX_SECRETS_RECORD_TRASHED_VERSION};
#define NKINDS (sizeof(sweep_kinds) / sizeof(sweep_kinds[0]))

/* Collect up to max items after the cursor (values too for an env sweep). */
static int collect(sx_rotor *r, const sx_rotation *rot, item *items, size_t max, size_t *ret_n)
{
    if (rot->kind == SX_ROTATION_MASTER) {
        env_collect ec = {.items = items, .max = max};
        int rc = sx_crypto_env_each(r->c, rot->cursor_len ? rot->cursor : NULL, rot->cursor_len, collect_env, &ec);
        *ret_n = ec.n;
        return rc;
    }
    char prefixes[NKINDS][SX_SECRETS_KEY_MAX];
    size_t pls[NKINDS];
    sx_crypto_place env;
    sx_rot_place(rot, &env);
    size_t at = 0; /* the kind the cursor is in (the first when it is empty) */
    for (size_t k = 0; k < NKINDS; k++) {
        pls[k] = sx_secrets_env_prefix(prefixes[k], sweep_kinds[k], &env);
        if (rot->cursor_len >= pls[k] && memcmp(rot->cursor, prefixes[k], pls[k]) == 0)
            at = k;
    }
    size_t n = 0, bytes = 0;
    int rc = 0;
    for (size_t k = at; rc == 0 && k < NKINDS && n < max && bytes < ROT_CHUNK_BYTES_MAX; k++)
        rc = collect_prefix(r, prefixes[k], pls[k], rot->cursor, k == at ? rot->cursor_len : 0, items, max, &n, &bytes);
    *ret_n = n;
    return rc;
}

/* Handle one item of a sweep; *did is set when it rewrote something (what the rate counts); msg
 * gets a reason on failure. */
static int sweep_item(sx_rotor *r, const sx_rotation *rot, const item *i, bool *did, char *msg, size_t msglen)
{
    int rc;
    if (rot->kind == SX_ROTATION_MASTER) {
        sx_crypto_place env = {.org = i->org, .project = i->project, .env = i->env};
        size_t count = 0;
        rc = sx_crypto_datakey_rewrap(r->c, &count, &env);
        *did = count > 0;
        if (rc < 0)
            snprintf(msg, msglen, "re-wrapping the data keys of \"%s/%s/%s\": %s", i->org, i->project, i->env,
                     sx_crypto_strerror(rc));
        return rc;
    }
    char hprefix[SX_SECRETS_KEY_MAX], name[SX_SECRETS_NAME_MAX + 1];
    sx_crypto_place place;
    sx_rot_place(rot, &place);
    size_t hpl = sx_secrets_env_prefix(hprefix, SX_SECRETS_RECORD_HISTORY, &place);
    /* the record's storage key: a value's, or a version record's (h/ or x/: the prefixes differ
     * only in their first byte, and are as long as the value prefix) */
    const char *pos = i->key;
    bool history = i->klen > hpl && memcmp(pos + 1, hprefix + 1, hpl - 1) == 0 &&
                   (pos[0] == SX_SECRETS_RECORD_HISTORY || pos[0] == SX_SECRETS_RECORD_TRASHED_VERSION);
    place.version = 0;
    if (history) {
        rc = sx_secrets_history_key_parse(i->key + hpl, i->klen - hpl, name, &place.version);
        if (rc < 0) {
            snprintf(msg, msglen, "a malformed history record of \"%s/%s/%s\"", rot->org, rot->project, rot->env);
            return rc;
        }
    } else {
        snprintf(name, sizeof(name), "%s", i->key + hpl); /* the value prefix is as long */
    }
    place.name = name;
    rc = reencrypt_one(r, &place, history, i->key, i->klen, i->val, i->vlen, i->rev, did);
    if (rc < 0)
        snprintf(msg, msglen, "re-encrypting the value of \"%s/%s/%s/%s\": %s", rot->org, rot->project, rot->env, name,
                 sx_crypto_strerror(rc));
    return rc;
}

/* One chunk of a sweep: at most budget items, of which at most rewrite_budget rewritten. *ret_items
 * gets how many items were rewritten (the work the rate limits; an item already under the new
 * version costs one read). */
int sx_rot_step_sweep(sx_rotor *r, sx_rotation *rot, size_t budget, size_t *ret_items, char *msg, size_t msglen)
{
    sx_testpoint("rotation.sweep");
    size_t rewrite_budget = budget;
    budget = budget * 4 > ROT_CHUNK_MAX ? ROT_CHUNK_MAX : budget * 4;
    item *items = calloc(budget, sizeof(*items));
    if (!items)
        return -ENOMEM;
    size_t n = 0, handled = 0;
    int rc = collect(r, rot, items, budget, &n);
    if (rc == 0 && n == 0) {
        /* The sweep is complete: every item there was got handled, however many were added or
         * deleted since it was counted, so the progress reads done/done (100%) from here on. */
        rot->phase = SX_ROTATION_FINISH;
        rot->cursor_len = 0;
        rot->total = rot->done;
        rc = sx_rot_write(r, rot);
    }
    size_t rewritten = 0;
    for (size_t i = 0; rc == 0 && i < n && rewritten < rewrite_budget && !atomic_load(&r->stopping); i++) {
        bool did = false;
        rc = sweep_item(r, rot, &items[i], &did, msg, msglen);
        if (rc == 0) {
            memcpy(rot->cursor, items[i].key, items[i].klen);
            rot->cursor_len = items[i].klen;
            rot->done++;
            if (rot->done > rot->total)
                rot->total = rot->done; /* items added since the count: the total grows with them */
            handled++;
            rewritten += did;
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(items[i].key);
        if (items[i].val) {
            sodium_memzero(items[i].val, items[i].vlen);
            free(items[i].val);
        }
    }
    free(items);
    if (handled) {
        int wrc = sx_rot_write(r, rot); /* persist the progress made, also when an item failed */
        if (rc == 0)
            rc = wrc;
    }
    *ret_items = rewritten;
    return rc;
}

/* Does any record under prefix (values, or previous versions when history) use data-key version? */
static int prefix_uses(sx_rotor *r, const char *prefix, size_t pl, bool history, uint32_t version)
{
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(r->st, prefix, pl, NULL, 0, 0, &it);
    if (rc < 0)
        return rc;
    int used = 0;
    const void *v;
    size_t vl;
    while (!used && (rc = sx_storage_iter_next(it, NULL, NULL, &v, &vl, NULL)) == 0) {
        const uint8_t *blob;
        size_t blen;
        int64_t created_ms;
        uint32_t ver;
        if (record_blob(history, v, vl, &blob, &blen, &created_ms) == 0 &&
            sx_crypto_value_version(&ver, blob, blen) == 0 && ver == version)
            used = 1;
    }
    sx_storage_iter_free(it);
    return rc < 0 ? rc : used;
}

/* The in_use callback of sx_crypto_datakey_destroy(): does any value of env, current or previous,
 * use version? */
static int value_in_use(void *ctx, const sx_crypto_place *env, uint32_t version)
{
    sx_rotor *r = ctx;
    char prefix[SX_SECRETS_KEY_MAX];
    int used = prefix_uses(r, prefix, sx_secrets_env_prefix(prefix, SX_SECRETS_RECORD_VALUE, env), false, version);
    if (used == 0)
        used = prefix_uses(r, prefix, sx_secrets_env_prefix(prefix, SX_SECRETS_RECORD_HISTORY, env), true, version);
    if (used == 0)
        used = prefix_uses(r, prefix, sx_secrets_env_prefix(prefix, SX_SECRETS_RECORD_TRASHED_VERSION, env), true,
                           version);
    if (used == 0)
        sx_testpoint("rotation.destroy"); /* between the scan and the destroy's batch */
    return used;
}

/* The data-key versions of an env other than its active one, for FINISH to destroy. */
typedef struct old_versions {
    uint32_t active;
    uint32_t *vers;
    size_t max, n;
} old_versions;

static int collect_old(void *ctx, uint32_t version)
{
    old_versions *ov = ctx;
    if (version != ov->active)
        ov->vers[ov->n++] = version;
    return ov->n < ov->max ? 0 : 1;
}

/* FINISH: returns 1 when the rotation is complete (record deleted), 0 when another sweep began. */
int sx_rot_step_finish(sx_rotor *r, sx_rotation *rot, char *msg, size_t msglen)
{
    bool busy = false;
    int rc;
    if (rot->kind == SX_ROTATION_MASTER) {
        if ((rc = sx_crypto_datakey_rewrap_all(r->c, NULL)) < 0)
            return rc;
        sx_crypto_status *s = malloc(sizeof(*s));
        if (!s)
            return -ENOMEM;
        rc = sx_crypto_status_get(r->c, s);
        for (size_t i = 0; rc == 0 && i < s->n_masters; i++) {
            if (s->masters[i].version == s->active_master)
                continue;
            rc = sx_crypto_master_retire(r->c, s->masters[i].version);
            if (rc == -EBUSY) {
                busy = true;
                rc = 0;
            } else if (rc < 0) {
                snprintf(msg, msglen, "retiring master version %u: %s", s->masters[i].version, sx_crypto_strerror(rc));
            }
        }
        free(s);
    } else {
        sx_crypto_place env;
        uint32_t vers[64];
        old_versions ov = {.vers = vers, .max = 64};
        sx_rot_place(rot, &env);
        rc = sx_crypto_datakey_active(r->c, &ov.active, &env);
        if (rc == 0)
            rc = sx_crypto_datakey_each(r->c, &env, collect_old, &ov);
        for (size_t i = 0; rc == 0 && i < ov.n; i++) {
            rc = sx_crypto_datakey_destroy(r->c, &env, vers[i], value_in_use, r);
            if (rc == -EBUSY) {
                busy = true;
                rc = 0;
            } else if (rc < 0) {
                snprintf(msg, msglen, "destroying data-key version %u of \"%s/%s/%s\": %s", vers[i], rot->org,
                         rot->project, rot->env, sx_crypto_strerror(rc));
            }
        }
    }
    if (rc < 0)
        return rc;
    if (busy)
        return sweep_begin(r, rot); /* something still needs an old version: sweep again */
    rc = sx_rot_delete(r, rot);
    return rc < 0 ? rc : 1;
}
