/*
 * trash.c - deleted secrets: a delete with a recovery window moves the secret (its metadata, its
 * current value and its history) to records of their own, b/ and x/, in one batch; they are
 * listed, restored, purged on request, or purged by the sweeper once their window has passed.
 *
 * Every step is one conditional batch, so each is atomic and can be repeated: a move conditions on
 * the revisions it read (the metadata's, the value's and each history record's, since a rotation
 * may rewrite them meanwhile), a restore on the deleted record's and on the env's key state, a
 * purge on the deleted record's. A batch that meets a change reads again.
 */
#include "secrets/secrets_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/testpoint.h"

/* Batches of a move (with backoff) while other writers keep moving what it read. */
#define MOVE_RETRIES 32

/* ---- records read by a prefix scan -------------------------------------------------------------- */

typedef struct rec {
    char key[SX_SECRETS_KEY_MAX];
    size_t klen;
    uint8_t *val;
    size_t vlen;
    uint64_t rev;
} rec;

typedef struct recs {
    rec *v;
    size_t n, cap;
} recs;

static void recs_free(recs *r)
{
    for (size_t i = 0; i < r->n; i++) {
        sodium_memzero(r->v[i].val, r->v[i].vlen);
        free(r->v[i].val);
    }
    free(r->v);
    memset(r, 0, sizeof(*r));
}

/* Every record under prefix, copied, in key order. */
static int recs_scan(sx_storage *st, const char *prefix, size_t pl, recs *out)
{
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(st, prefix, pl, NULL, 0, 0, &it);
    if (rc != 0)
        return rc;
    const void *k, *v;
    size_t kl, vl;
    uint64_t rev;
    while ((rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, &rev)) == 0) {
        if (kl >= SX_SECRETS_KEY_MAX) {
            rc = -EBADMSG;
            break;
        }
        if (out->n == out->cap) {
            size_t ncap = out->cap ? out->cap * 2 : 16;
            rec *nv = realloc(out->v, ncap * sizeof(*nv));
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            out->v = nv;
            out->cap = ncap;
        }
        rec *r = &out->v[out->n];
        r->val = malloc(vl ? vl : 1);
        if (!r->val) {
            rc = -ENOMEM;
            break;
        }
        memcpy(r->key, k, kl);
        r->key[kl] = '\0';
        r->klen = kl;
        memcpy(r->val, v, vl);
        r->vlen = vl;
        r->rev = rev;
        out->n++;
    }
    sx_storage_iter_free(it);
    if (rc < 0) {
        recs_free(out);
        return rc;
    }
    return 0;
}

/* The version a version record's key ends with ("/{%08x}"). */
static int rec_version(const rec *r, uint32_t *ret)
{
    char name[SX_SECRETS_NAME_MAX + 1];
    const char *slash = memchr(r->key + 2, '/', r->klen - 2); /* after "{kind}/{org}" */
    for (int i = 0; i < 2 && slash; i++)                      /* past project and env */
        slash = memchr(slash + 1, '/', r->klen - (size_t)(slash + 1 - r->key));
    if (!slash)
        return -EBADMSG;
    size_t off = (size_t)(slash + 1 - r->key);
    return sx_secrets_history_key_parse(r->key + off, r->klen - off, name, ret);
}

/* ---- a batch under construction ----------------------------------------------------------------- */

typedef struct ops {
    sx_storage_op *v;
    size_t n, cap;
    uint8_t **owned; /* buffers the ops point into, freed with them */
    size_t nowned, owned_cap;
} ops;

static sx_storage_op *ops_add(ops *o)
{
    if (o->n == o->cap) {
        size_t ncap = o->cap ? o->cap * 2 : 16;
        sx_storage_op *nv = realloc(o->v, ncap * sizeof(*nv));
        if (!nv)
            return NULL;
        o->v = nv;
        o->cap = ncap;
    }
    sx_storage_op *op = &o->v[o->n++];
    memset(op, 0, sizeof(*op));
    return op;
}

/* Own buf (freed, zeroed, with the ops); NULL when out of memory (buf is freed then). */
static uint8_t *ops_own(ops *o, uint8_t *buf, size_t len)
{
    if (o->nowned == o->owned_cap) {
        size_t ncap = o->owned_cap ? o->owned_cap * 2 : 16;
        uint8_t **nv = realloc(o->owned, ncap * sizeof(*nv));
        if (!nv) {
            sodium_memzero(buf, len);
            free(buf);
            return NULL;
        }
        o->owned = nv;
        o->owned_cap = ncap;
    }
    return o->owned[o->nowned++] = buf;
}

static uint8_t *ops_copy(ops *o, const void *data, size_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return NULL;
    memcpy(b, data, len);
    return ops_own(o, b, len);
}

static void ops_free(ops *o)
{
    for (size_t i = 0; i < o->nowned; i++)
        free(o->owned[i]); /* ciphertexts and keys only: nothing to wipe */
    free(o->owned);
    free(o->v);
    memset(o, 0, sizeof(*o));
}

static int op_put(ops *o, const char *key, size_t klen, const uint8_t *val, size_t vlen, sx_storage_cond cond,
                  uint64_t rev)
{
    const uint8_t *k = ops_copy(o, key, klen);
    sx_storage_op *op = k ? ops_add(o) : NULL;
    if (!op)
        return -ENOMEM;
    *op = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                          .key = (const char *)k,
                          .klen = klen,
                          .val = val,
                          .vlen = vlen,
                          .cond = cond,
                          .rev = rev};
    return 0;
}

static int op_other(ops *o, sx_storage_op_kind kind, const char *key, size_t klen, sx_storage_cond cond, uint64_t rev)
{
    const uint8_t *k = ops_copy(o, key, klen);
    sx_storage_op *op = k ? ops_add(o) : NULL;
    if (!op)
        return -ENOMEM;
    *op = (sx_storage_op){.kind = kind, .key = (const char *)k, .klen = klen, .cond = cond, .rev = rev};
    return 0;
}

/* ---- delete: move to the deleted secrets -------------------------------------------------------- */

/* Build the move of p (metadata m as encoded in raw, at revision mrev). *ret_replaced is set when
 * an older deleted copy of the name is destroyed by it. */
static int build_move(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secret_meta *m, const uint8_t *raw,
                      size_t raw_len, uint64_t mrev, ops *o, recs *hist, recs *old, bool *ret_replaced)
{
    char mkey[SX_SECRETS_KEY_MAX], vkey[SX_SECRETS_KEY_MAX], tkey[SX_SECRETS_KEY_MAX], prefix[SX_SECRETS_KEY_MAX];
    size_t mkl = sx_secrets_key_build(mkey, SX_SECRETS_RECORD_META, p);
    size_t vkl = sx_secrets_key_build(vkey, SX_SECRETS_RECORD_VALUE, p);
    size_t tkl = sx_secrets_key_build(tkey, SX_SECRETS_RECORD_TRASH, p);
    int rc = op_other(o, SX_STORAGE_OP_DELETE, mkey, mkl, SX_STORAGE_COND_REV, mrev);
    if (rc != 0)
        return rc;
    uint32_t versions = 0;
    int64_t now = sx_clock_wall_ms();
    /* the current value, as the deleted secret's record of that version */
    if (m->has_value) {
        void *blob = NULL;
        size_t blen = 0;
        uint64_t vrev = 0;
        rc = sx_storage_get(c->storage, vkey, vkl, &blob, &blen, &vrev);
        if (rc == -ENOENT)
            return SX_STORAGE_ECONDITION; /* changed meanwhile: read again */
        if (rc != 0)
            return rc;
        uint8_t *hrec = NULL;
        size_t hlen = 0;
        rc = sx_secrets_history_encode(m->value_created_ms, blob, blen, &hrec, &hlen);
        sx_storage_free(blob);
        if (rc != 0 || !ops_own(o, hrec, hlen))
            return rc ? rc : -ENOMEM;
        char xkey[SX_SECRETS_KEY_MAX];
        size_t xkl = sx_secrets_version_key(xkey, SX_SECRETS_RECORD_TRASHED_VERSION, p, m->version ? m->version : 1);
        if ((rc = op_other(o, SX_STORAGE_OP_DELETE, vkey, vkl, SX_STORAGE_COND_REV, vrev)) != 0 ||
            (rc = op_put(o, xkey, xkl, hrec, hlen, SX_STORAGE_COND_NONE, 0)) != 0)
            return rc;
        versions++;
    }
    /* an older deleted copy of the name: destroyed (its version numbers are all lower) */
    size_t pl = sx_secrets_version_key(prefix, SX_SECRETS_RECORD_TRASHED_VERSION, p, 0);
    if ((rc = recs_scan(c->storage, prefix, pl, old)) != 0)
        return rc;
    for (size_t i = 0; i < old->n; i++)
        if ((rc = op_other(o, SX_STORAGE_OP_DELETE, old->v[i].key, old->v[i].klen, SX_STORAGE_COND_NONE, 0)) != 0)
            return rc;
    void *traw = NULL;
    size_t tlen = 0;
    uint64_t trev = 0;
    rc = sx_storage_get(c->storage, tkey, tkl, &traw, &tlen, &trev);
    sx_storage_free(traw);
    if (rc != 0 && rc != -ENOENT)
        return rc;
    *ret_replaced = rc == 0 || old->n > 0;
    bool had_trash = rc == 0;
    /* the history, each record conditioned on what was read (a rotation may rewrite it) */
    pl = sx_secrets_history_key(prefix, p, 0);
    if ((rc = recs_scan(c->storage, prefix, pl, hist)) != 0)
        return rc;
    for (size_t i = 0; i < hist->n; i++) {
        rec *h = &hist->v[i];
        sx_secrets_history_view hv;
        uint32_t hver;
        if (sx_secrets_history_view_of(&hv, h->val, h->vlen) != 0 || rec_version(h, &hver) != 0)
            return -EBADMSG;
        if (m->has_value && hver >= (m->version ? m->version : 1))
            return SX_STORAGE_ECONDITION; /* a set-value moved the value read into the history: again */
        versions += !hv.destroyed;
        char xkey[SX_SECRETS_KEY_MAX];
        memcpy(xkey, h->key, h->klen);
        xkey[0] = (char)SX_SECRETS_RECORD_TRASHED_VERSION; /* same layout, other kind */
        if ((rc = op_other(o, SX_STORAGE_OP_DELETE, h->key, h->klen, SX_STORAGE_COND_REV, h->rev)) != 0 ||
            (rc = op_put(o, xkey, h->klen, h->val, h->vlen, SX_STORAGE_COND_NONE, 0)) != 0)
            return rc;
    }
    sx_secrets_trash_view t = {.deleted_ms = now,
                               .purge_ms = now + (int64_t)c->recovery_window * 1000,
                               .versions = versions,
                               .meta = raw,
                               .meta_len = raw_len};
    uint8_t *trec = NULL;
    size_t trl = 0;
    if ((rc = sx_secrets_trash_encode(&t, &trec, &trl)) != 0 || !ops_own(o, trec, trl))
        return rc ? rc : -ENOMEM;
    return op_put(o, tkey, tkl, trec, trl, had_trash ? SX_STORAGE_COND_REV : SX_STORAGE_COND_ABSENT, trev);
}

/* After a batch lost to another writer: wait a random while that doubles with each loss, so that a
 * move, which reads more than a set-value, is not starved by a stream of them. */
static void backoff(int attempt)
{
    unsigned shift = attempt < 10 ? (unsigned)attempt : 10;
    uint32_t us = randombytes_uniform((20u << shift) + 1);
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
}

int sx_secrets_trash_move(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond)
{
    char mkey[SX_SECRETS_KEY_MAX];
    size_t mkl = sx_secrets_key_build(mkey, SX_SECRETS_RECORD_META, p);
    for (int attempt = 0; attempt < MOVE_RETRIES; attempt++) {
        if (attempt)
            backoff(attempt);
        void *raw = NULL;
        size_t rlen = 0;
        uint64_t mrev = 0;
        sx_secret_meta m;
        int rc = sx_storage_get(c->storage, mkey, mkl, &raw, &rlen, &mrev);
        if (rc == 0 && (rc = sx_meta_decode(&m, raw, rlen)) != 0)
            sx_storage_free(raw);
        if (rc != 0)
            return rc;
        if (cond && !cond->rev_ok(cond->arg, mrev)) {
            sx_storage_free(raw);
            return SX_SECRETS_EPRECONDITION;
        }
        ops o = {0};
        recs hist = {0}, old = {0};
        bool replaced = false;
        /* the metadata record is kept as it is: a restore gives it back */
        rc = build_move(c, p, &m, raw, rlen, mrev, &o, &hist, &old, &replaced);
        if (rc == 0)
            rc = sx_secrets_batch(c, o.v, o.n);
        ops_free(&o);
        recs_free(&hist);
        recs_free(&old);
        sx_storage_free(raw);
        if (rc == 0) {
            if (replaced)
                sx_secrets_note_destroyed(c, p);
            return 0;
        }
        if (rc != SX_STORAGE_ECONDITION)
            return rc;
    }
    return SX_SECRETS_ECONTENTION;
}

/* ---- reading a deleted secret ------------------------------------------------------------------- */

/* p's deleted record (free with sx_storage_free()), its view and revision. SX_SECRETS_ENOTDELETED. */
static int trash_get(const sx_secrets_ctx *c, const sx_secrets_place *p, void **ret_raw, sx_secrets_trash_view *ret_t,
                     uint64_t *ret_rev)
{
    char tkey[SX_SECRETS_KEY_MAX];
    size_t tkl = sx_secrets_key_build(tkey, SX_SECRETS_RECORD_TRASH, p);
    void *raw = NULL;
    size_t len = 0;
    int rc = sx_storage_get(c->storage, tkey, tkl, &raw, &len, ret_rev);
    if (rc == -ENOENT)
        return SX_SECRETS_ENOTDELETED;
    if (rc != 0)
        return rc;
    if (sx_secrets_trash_view_of(ret_t, raw, len) != 0) {
        sx_storage_free(raw);
        return -EBADMSG;
    }
    *ret_raw = raw;
    return 0;
}

/* The listed form of a deleted record of name (namelen bytes). 0 or -EBADMSG. */
static int deleted_of(const void *rec, size_t len, const char *name, size_t namelen, sx_secrets_deleted *ret)
{
    sx_secrets_trash_view t;
    sx_secret_meta_view m;
    if (namelen == 0 || namelen > SX_SECRETS_NAME_MAX || sx_secrets_trash_view_of(&t, rec, len) != 0 ||
        sx_meta_view(&m, t.meta, t.meta_len) != 0)
        return -EBADMSG;
    memcpy(ret->name, name, namelen);
    ret->name[namelen] = '\0';
    ret->deleted_ms = t.deleted_ms;
    ret->purge_ms = t.purge_ms;
    ret->versions = t.versions;
    ret->version = m.has_value ? m.version : 0;
    ret->value_created_ms = m.has_value ? m.value_created_ms : 0;
    ret->created_ms = m.created_ms;
    return 0;
}

int sx_secrets_deleted_get(const sx_secrets_ctx *c, const sx_secrets_place *p, sx_secrets_deleted *ret,
                           uint64_t *ret_rev)
{
    char tkey[SX_SECRETS_KEY_MAX];
    size_t tkl = sx_secrets_key_build(tkey, SX_SECRETS_RECORD_TRASH, p);
    void *raw = NULL;
    size_t len = 0;
    uint64_t rev = 0;
    int rc = sx_storage_get(c->storage, tkey, tkl, &raw, &len, &rev);
    if (rc == -ENOENT)
        return SX_SECRETS_ENOTDELETED;
    if (rc != 0)
        return rc;
    sx_secrets_deleted d;
    rc = deleted_of(raw, len, p->name, strlen(p->name), &d);
    sx_storage_free(raw);
    if (rc == 0) {
        *ret = d;
        if (ret_rev)
            *ret_rev = rev;
    }
    return rc;
}

/* ---- restore ------------------------------------------------------------------------------------ */

/* A version record of the deleted secret, as the live secret's record: re-encrypted under the
 * env's active data key when it is not, with the pin its batch must carry (pin->klen 0 until the
 * first). A tombstone is copied as it is. */
static int restore_version(const sx_secrets_ctx *c, const sx_secrets_place *p, const rec *x, uint32_t version,
                           int64_t *ret_created_ms, const uint8_t **ret_blob, size_t *ret_blen, ops *o,
                           sx_crypto_pin *pin)
{
    sx_secrets_history_view h;
    if (sx_secrets_history_view_of(&h, x->val, x->vlen) != 0)
        return -EBADMSG;
    *ret_created_ms = h.created_ms;
    *ret_blob = NULL;
    *ret_blen = 0;
    if (h.destroyed)
        return 0;
    sx_crypto_place place = sx_secrets_crypto_place_v(p, version);
    uint8_t *nb = NULL;
    size_t nl = 0;
    sx_crypto_pin this;
    int rc = sx_crypto_value_reencrypt_pinned(c->crypto, &nb, &nl, &this, &place, h.blob, h.blob_len);
    if (rc < 0)
        return rc == -ENOMEM ? rc : SX_SECRETS_EUNREADABLE;
    if (pin->klen == 0)
        *pin = this;
    else if (this.rev != pin->rev)
        return SX_STORAGE_ECONDITION; /* the key state moved between two reads: read again */
    if (rc == 0) {
        if (!ops_own(o, nb, nl))
            return -ENOMEM;
        *ret_blob = nb;
        *ret_blen = nl;
    } else {
        *ret_blob = h.blob; /* already under the active key: into x->val, alive until the batch */
        *ret_blen = h.blob_len;
    }
    return 0;
}

/* Build the restore of p from its deleted record t (at trev) and version records xs. */
static int build_restore(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_trash_view *t,
                         uint64_t trev, const recs *xs, sx_secret_meta *m, ops *o, sx_crypto_pin *pin)
{
    if (sx_meta_decode(m, t->meta, t->meta_len) != 0)
        return -EBADMSG;
    int64_t now = sx_clock_wall_ms();
    m->updated_ms = now > m->updated_ms ? now : m->updated_ms;
    uint8_t enc[SX_META_MAX];
    size_t elen = sx_meta_encode(m, enc);
    char key[SX_SECRETS_KEY_MAX];
    size_t kl = sx_secrets_key_build(key, SX_SECRETS_RECORD_META, p);
    const uint8_t *menc = ops_copy(o, enc, elen);
    int rc = menc ? op_put(o, key, kl, menc, elen, SX_STORAGE_COND_ABSENT, 0) : -ENOMEM;
    if (rc != 0)
        return rc;
    kl = sx_secrets_key_build(key, SX_SECRETS_RECORD_TRASH, p);
    if ((rc = op_other(o, SX_STORAGE_OP_DELETE, key, kl, SX_STORAGE_COND_REV, trev)) != 0)
        return rc;
    bool have_current = false;
    uint32_t current = m->has_value ? (m->version ? m->version : 1) : 0;
    for (size_t i = 0; i < xs->n; i++) {
        const rec *x = &xs->v[i];
        uint32_t version;
        if (rec_version(x, &version) != 0)
            return -EBADMSG;
        int64_t created_ms;
        const uint8_t *blob;
        size_t blen;
        if ((rc = restore_version(c, p, x, version, &created_ms, &blob, &blen, o, pin)) != 0)
            return rc;
        if ((rc = op_other(o, SX_STORAGE_OP_DELETE, x->key, x->klen, SX_STORAGE_COND_REV, x->rev)) != 0)
            return rc;
        if (version == current) {
            if (!blob)
                return -EBADMSG; /* the current version is never a tombstone */
            have_current = true;
            kl = sx_secrets_key_build(key, SX_SECRETS_RECORD_VALUE, p);
            rc = op_put(o, key, kl, blob, blen, SX_STORAGE_COND_NONE, 0);
        } else {
            uint8_t *hrec = NULL;
            size_t hlen = 0;
            if ((rc = sx_secrets_history_encode(created_ms, blob, blen, &hrec, &hlen)) != 0 || !ops_own(o, hrec, hlen))
                return rc ? rc : -ENOMEM;
            kl = sx_secrets_history_key(key, p, version);
            rc = op_put(o, key, kl, hrec, hlen, SX_STORAGE_COND_NONE, 0);
        }
        if (rc != 0)
            return rc;
    }
    if (current && !have_current)
        return -EBADMSG;
    if (pin->klen) {
        sx_storage_op *op = ops_add(o);
        if (!op)
            return -ENOMEM;
        *op = (sx_storage_op){.kind = SX_STORAGE_OP_CHECK,
                              .key = pin->key,
                              .klen = pin->klen,
                              .cond = SX_STORAGE_COND_REV,
                              .rev = pin->rev};
    }
    return 0;
}

int sx_secrets_restore(const sx_secrets_ctx *c, const sx_secrets_place *p, sx_secret_meta *ret_meta, uint64_t *ret_rev)
{
    for (int attempt = 0; attempt < SX_SECRETS_WRITE_RETRIES; attempt++) {
        void *live = NULL;
        sx_secret_meta_view lv;
        uint64_t lrev = 0;
        int rc = sx_secrets_get(c, p, &live, &lv, &lrev);
        sx_storage_free(live);
        if (rc == 0)
            return SX_SECRETS_ELIVE;
        if (rc != -ENOENT)
            return rc;
        void *traw = NULL;
        sx_secrets_trash_view t;
        uint64_t trev = 0;
        if ((rc = trash_get(c, p, &traw, &t, &trev)) != 0)
            return rc;
        char prefix[SX_SECRETS_KEY_MAX];
        size_t pl = sx_secrets_version_key(prefix, SX_SECRETS_RECORD_TRASHED_VERSION, p, 0);
        recs xs = {0};
        ops o = {0};
        sx_crypto_pin pin = {.klen = 0};
        sx_secret_meta m;
        rc = recs_scan(c->storage, prefix, pl, &xs);
        if (rc == 0)
            rc = build_restore(c, p, &t, trev, &xs, &m, &o, &pin);
        if (rc == 0)
            rc = sx_secrets_batch(c, o.v, o.n);
        uint64_t rev = o.n ? o.v[0].ret_rev : 0;
        ops_free(&o);
        recs_free(&xs);
        sx_storage_free(traw);
        if (rc == 0) {
            memcpy(ret_meta, &m, sizeof(m));
            *ret_rev = rev;
            return 0;
        }
        if (rc != SX_STORAGE_ECONDITION)
            return rc;
        /* re-created, purged or rotated meanwhile: the next round tells which */
    }
    return SX_SECRETS_ECONTENTION;
}

/* ---- purge -------------------------------------------------------------------------------------- */

/* Purge p's deleted copy; when due_ms >= 0, only if its purge time is at or before due_ms (1 when
 * it is not due). */
static int purge(const sx_secrets_ctx *c, const sx_secrets_place *p, int64_t due_ms)
{
    for (int attempt = 0; attempt < SX_SECRETS_WRITE_RETRIES; attempt++) {
        void *traw = NULL;
        sx_secrets_trash_view t;
        uint64_t trev = 0;
        int rc = trash_get(c, p, &traw, &t, &trev);
        if (rc != 0)
            return rc;
        bool due = due_ms < 0 || t.purge_ms <= due_ms;
        sx_storage_free(traw);
        if (!due)
            return 1;
        char key[SX_SECRETS_KEY_MAX];
        size_t kl = sx_secrets_key_build(key, SX_SECRETS_RECORD_TRASH, p);
        recs xs = {0};
        ops o = {0};
        rc = op_other(&o, SX_STORAGE_OP_DELETE, key, kl, SX_STORAGE_COND_REV, trev);
        size_t pl = sx_secrets_version_key(key, SX_SECRETS_RECORD_TRASHED_VERSION, p, 0);
        if (rc == 0)
            rc = recs_scan(c->storage, key, pl, &xs);
        for (size_t i = 0; rc == 0 && i < xs.n; i++)
            rc = op_other(&o, SX_STORAGE_OP_DELETE, xs.v[i].key, xs.v[i].klen, SX_STORAGE_COND_NONE, 0);
        if (rc == 0)
            rc = sx_secrets_batch(c, o.v, o.n);
        ops_free(&o);
        recs_free(&xs);
        if (rc == 0) {
            sx_secrets_note_destroyed(c, p);
            return 0;
        }
        if (rc != SX_STORAGE_ECONDITION)
            return rc;
    }
    return SX_SECRETS_ECONTENTION;
}

int sx_secrets_purge(const sx_secrets_ctx *c, const sx_secrets_place *p)
{
    return purge(c, p, -1);
}

/* ---- listing and sweeping ----------------------------------------------------------------------- */

int sx_secrets_deleted_list(const sx_secrets_ctx *c, const sx_secrets_place *env, sx_secrets_deleted **ret_list,
                            size_t *ret_n)
{
    char prefix[SX_SECRETS_KEY_MAX];
    sx_crypto_place place = sx_secrets_crypto_place(env);
    size_t pl = sx_secrets_env_prefix(prefix, SX_SECRETS_RECORD_TRASH, &place);
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(c->storage, prefix, pl, NULL, 0, 0, &it);
    if (rc != 0)
        return rc;
    sx_secrets_deleted *list = NULL;
    size_t n = 0, cap = 0;
    const void *k, *v;
    size_t kl, vl;
    while ((rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL)) == 0) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            sx_secrets_deleted *nl = realloc(list, ncap * sizeof(*nl));
            if (!nl) {
                rc = -ENOMEM;
                break;
            }
            list = nl;
            cap = ncap;
        }
        if ((rc = deleted_of(v, vl, (const char *)k + pl, kl - pl, &list[n])) != 0)
            break;
        n++;
    }
    sx_storage_iter_free(it);
    if (rc < 0) {
        free(list);
        return rc;
    }
    *ret_list = list;
    *ret_n = n;
    return 0;
}

int sx_secrets_sweep(const sx_secrets_ctx *c, int64_t now_ms, size_t max,
                     void (*on_purged)(void *arg, const sx_secrets_place *p), void *arg, size_t *ret_purged,
                     uint64_t *ret_kept)
{
    sx_storage_iter *it;
    static const char prefix[] = {SX_SECRETS_RECORD_TRASH, '/'};
    int rc = sx_storage_iter_new(c->storage, prefix, sizeof(prefix), NULL, 0, 0, &it);
    if (rc != 0)
        return rc;
    sx_secrets_place *due = max ? calloc(max, sizeof(*due)) : NULL;
    if (max && !due) {
        sx_storage_iter_free(it);
        return -ENOMEM;
    }
    size_t ndue = 0;
    uint64_t kept = 0;
    const void *k, *v;
    size_t kl, vl;
    while ((rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL)) == 0) {
        sx_secrets_trash_view t;
        sx_secrets_place p;
        kept++;
        /* a malformed record is left alone (and counted): the sweeper never guesses what to delete */
        if (sx_secrets_trash_view_of(&t, v, vl) != 0 ||
            sx_secrets_key_parse((const char *)k, kl, SX_SECRETS_RECORD_TRASH, &p) != 0 || t.purge_ms > now_ms ||
            ndue == max)
            continue;
        due[ndue++] = p;
    }
    sx_storage_iter_free(it);
    size_t purged = 0;
    for (size_t i = 0; rc >= 0 && i < ndue; i++) {
        int prc = purge(c, &due[i], now_ms);
        if (prc == 0) {
            purged++;
            if (on_purged)
                on_purged(arg, &due[i]);
            sx_testpoint("sweep.purged"); /* between two purges: a crash here leaves the rest due */
        } else if (prc != 1 && prc != SX_SECRETS_ENOTDELETED)
            rc = prc; /* restored or purged meanwhile is fine; a failing store is not */
    }
    free(due);
    if (rc < 0)
        return rc;
    *ret_purged = purged;
    *ret_kept = kept - purged;
    return 0;
}
