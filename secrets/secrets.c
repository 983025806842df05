/*
 * secrets.c - the transactions on secrets: reads (get, list, reveal, the values of an env) and
 * writes (create, update, delete, set-value) as read / check / conditional batch with retries.
 *
 * A write reads the metadata record, checks the caller's precondition and writes with one atomic
 * conditional batch conditioned on the revision it read. When another writer got in between, it
 * reads again: a secret deleted meanwhile is -ENOENT, one whose revision the precondition no
 * longer accepts is SX_SECRETS_EPRECONDITION, and otherwise the change is applied to the new
 * state. A set-value also pins the env's data-key state (sx_crypto_value_encrypt_pinned), so a
 * rotation that began after the value was encrypted makes the batch fail and the value is
 * encrypted again under the new key.
 *
 * Plaintext: a set-value's plaintext is the caller's buffer, read once by the encryption; the
 * decrypts write into the caller's buffer. Nothing here keeps or copies a value.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/testpoint.h"

#define WRITE_RETRIES  16 /* batches of one write while other writers keep moving the revision */
#define REVEAL_RETRIES 16 /* reads of a reveal while writers keep moving the secret's revision */

static void timed(const sx_secrets_ctx *c, sx_secrets_io io, uint64_t t0)
{
    if (c->timed)
        c->timed(c->timed_arg, io, sx_clock_mono_ns() - t0);
}

/* ---- reads --------------------------------------------------------------------------------------- */

int sx_secrets_get(const sx_secrets_ctx *c, const sx_secrets_place *p, void **ret_raw, sx_secret_meta_view *ret_meta,
                   uint64_t *ret_rev)
{
    char key[SX_SECRETS_KEY_MAX];
    size_t kl = sx_secrets_key_build(key, SX_SECRETS_RECORD_META, p);
    void *val = NULL;
    size_t vlen = 0;
    uint64_t rev = 0;
    uint64_t t0 = sx_clock_mono_ns();
    int rc = sx_storage_get(c->storage, key, kl, &val, &vlen, &rev);
    timed(c, SX_SECRETS_IO_GET, t0);
    if (rc != 0)
        return rc;
    rc = sx_meta_view(ret_meta, val, vlen);
    if (rc != 0) {
        sx_storage_free(val);
        return rc;
    }
    *ret_raw = val;
    *ret_rev = rev;
    return 0;
}

static int scan_open(sx_secrets_scan *s, const sx_secrets_ctx *c, sx_secrets_record kind, const sx_secrets_place *env,
                     const char *after)
{
    sx_secrets_place prefix_of = *env;
    prefix_of.name[0] = '\0';
    char prefix[SX_SECRETS_KEY_MAX];
    size_t pl = sx_secrets_key_build(prefix, kind, &prefix_of);
    char start[SX_SECRETS_KEY_MAX + SX_SECRETS_NAME_MAX + 1];
    size_t sl = 0;
    if (after && after[0]) {
        size_t al = strlen(after);
        if (al > SX_SECRETS_NAME_MAX)
            return -EINVAL;
        memcpy(start, prefix, pl);
        memcpy(start + pl, after, al);
        sl = pl + al;
    }
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->kind = kind;
    s->prefix_len = pl;
    s->t0 = sx_clock_mono_ns();
    s->place = (sx_crypto_place){env->org, env->project, env->env, s->name};
    return sx_storage_iter_new(c->storage, prefix, pl, sl ? start : NULL, sl, sl ? SX_STORAGE_ITER_AFTER : 0, &s->it);
}

int sx_secrets_list_open(sx_secrets_scan *s, const sx_secrets_ctx *c, const sx_secrets_place *env, const char *after)
{
    return scan_open(s, c, SX_SECRETS_RECORD_META, env, after);
}

int sx_secrets_list_next(sx_secrets_scan *s, const char **ret_name, size_t *ret_namelen, sx_secret_meta_view *ret_meta)
{
    const void *k, *v;
    size_t klen, vlen;
    int rc = sx_storage_iter_next(s->it, &k, &klen, &v, &vlen, NULL);
    if (rc != 0)
        return rc;
    if (klen <= s->prefix_len || klen - s->prefix_len > SX_SECRETS_NAME_MAX || sx_meta_view(ret_meta, v, vlen) != 0)
        return -EBADMSG;
    *ret_name = (const char *)k + s->prefix_len;
    *ret_namelen = klen - s->prefix_len;
    return 0;
}

int sx_secrets_values_open(sx_secrets_scan *s, const sx_secrets_ctx *c, const sx_secrets_place *env)
{
    return scan_open(s, c, SX_SECRETS_RECORD_VALUE, env, NULL);
}

int sx_secrets_values_next(sx_secrets_scan *s, const char **ret_name, size_t *ret_namelen, size_t *ret_blob_len)
{
    const void *k, *v;
    size_t klen, vlen;
    int rc = sx_storage_iter_next(s->it, &k, &klen, &v, &vlen, NULL);
    if (rc != 0)
        return rc;
    if (klen <= s->prefix_len || klen - s->prefix_len > SX_SECRETS_NAME_MAX)
        return -EBADMSG;
    size_t namelen = klen - s->prefix_len;
    memcpy(s->name, (const char *)k + s->prefix_len, namelen);
    s->name[namelen] = '\0';
    s->blob = v;
    s->blob_len = vlen;
    *ret_name = s->name;
    *ret_namelen = namelen;
    *ret_blob_len = vlen;
    return 0;
}

/* A blob that fails authentication or its format is the record's fault, whatever else failed is
 * passed on as it is (a data key the store could not give, a destroyed key version). */
int sx_secrets_values_decrypt(sx_secrets_scan *s, void *out, size_t outcap, size_t *ret_len)
{
    int rc = sx_crypto_value_decrypt(s->c->crypto, out, outcap, ret_len, &s->place, s->blob, s->blob_len);
    if (rc <= SX_CRYPTO_EFORGED && rc > SX_CRYPTO_EFORGED - 100)
        return SX_SECRETS_EUNREADABLE;
    return rc;
}

void sx_secrets_scan_close(sx_secrets_scan *s)
{
    if (!s->it)
        return;
    sx_storage_iter_free(s->it);
    s->it = NULL;
    if (s->kind == SX_SECRETS_RECORD_META)
        timed(s->c, SX_SECRETS_IO_LIST, s->t0);
}

int sx_secrets_reveal(const sx_secrets_ctx *c, const sx_secrets_place *p, void **ret_blob, size_t *ret_blob_len,
                      uint64_t *ret_rev, int64_t *ret_updated_ms)
{
    sx_secret_meta_view m;
    void *raw = NULL, *blob = NULL;
    size_t blen = 0;
    uint64_t rev = 0;
    int64_t updated_ms = 0;
    int rc = SX_SECRETS_ECONTENTION;
    char key[SX_SECRETS_KEY_MAX];
    size_t kl = sx_secrets_key_build(key, SX_SECRETS_RECORD_VALUE, p);
    for (int attempt = 0; attempt < REVEAL_RETRIES && rc == SX_SECRETS_ECONTENTION; attempt++) {
        sx_storage_free(blob);
        blob = NULL;
        rc = sx_secrets_get(c, p, &raw, &m, &rev);
        updated_ms = rc == 0 ? m.updated_ms : 0;
        if (rc == 0 && !m.has_value)
            rc = -ENOENT;
        sx_storage_free(raw);
        raw = NULL;
        if (rc != 0)
            break;
        sx_testpoint("reveal.value");
        rc = sx_storage_get(c->storage, key, kl, &blob, &blen, NULL);
        if (rc != 0)
            break;
        uint64_t rev2 = 0;
        rc = sx_secrets_get(c, p, &raw, &m, &rev2);
        sx_storage_free(raw);
        raw = NULL;
        if (rc == 0 && rev2 != rev)
            rc = SX_SECRETS_ECONTENTION;
    }
    if (rc != 0) {
        sx_storage_free(blob);
        return rc == -ENOENT ? SX_SECRETS_ENOVALUE : rc;
    }
    *ret_blob = blob;
    *ret_blob_len = blen;
    *ret_rev = rev;
    *ret_updated_ms = updated_ms;
    return 0;
}

int sx_secrets_value_decrypt(const sx_secrets_ctx *c, const sx_secrets_place *p, const void *blob, size_t blob_len,
                             void *out, size_t outcap, size_t *ret_len)
{
    sx_crypto_place place = sx_secrets_crypto_place(p);
    int rc = sx_crypto_value_decrypt(c->crypto, out, outcap, ret_len, &place, blob, blob_len);
    /* A data key that is not cached is read from storage first: when that read fails, the store
     * is what is not answering, not the record that is broken. */
    bool broken = (rc <= SX_CRYPTO_EFORGED && rc > SX_CRYPTO_EFORGED - 100) || rc == -ENOKEY || rc == -EBADMSG ||
                  rc == -ENOBUFS || rc == -EINVAL;
    return broken ? SX_SECRETS_EUNREADABLE : rc;
}

int sx_secrets_value_versions(const sx_secrets_ctx *c, const sx_secrets_place *env,
                              int (*fn)(void *arg, uint32_t version), void *arg, uint64_t *ret_count)
{
    sx_secrets_scan s;
    int rc = sx_secrets_values_open(&s, c, env);
    if (rc != 0)
        return rc;
    uint64_t count = 0;
    const void *v;
    size_t vl;
    while ((rc = sx_storage_iter_next(s.it, NULL, NULL, &v, &vl, NULL)) == 0) {
        uint32_t ver;
        count++;
        if (sx_crypto_value_version(&ver, v, vl) < 0)
            continue;
        if ((rc = fn(arg, ver)) != 0)
            break;
    }
    sx_secrets_scan_close(&s);
    if (rc < 0)
        return rc;
    *ret_count = count;
    return 0;
}

/* ---- writes -------------------------------------------------------------------------------------- */

typedef enum write_op { OP_UPDATE, OP_DELETE, OP_SET_VALUE } write_op;

/* What a write changes: the description (update) or the value (set-value). */
typedef struct write_args {
    write_op op;
    const char *description; /* NULL = null */
    size_t description_len;
    const void *value;
    size_t value_len;
} write_args;

static int batch(const sx_secrets_ctx *c, sx_storage_op *ops, size_t n)
{
    uint64_t t0 = sx_clock_mono_ns();
    int rc = sx_storage_batch(c->storage, ops, n, NULL);
    timed(c, SX_SECRETS_IO_BATCH, t0);
    return rc;
}

static void set_description(sx_secret_meta *m, const char *description, size_t len)
{
    m->has_description = description != NULL;
    m->description_len = description ? len : 0;
    memcpy(m->description, description ? description : "", m->description_len);
}

int sx_secrets_create(const sx_secrets_ctx *c, const sx_secrets_place *p, const char *description, size_t len,
                      sx_secret_meta *ret_meta, uint64_t *ret_rev)
{
    if (description && len > SX_SECRETS_DESCRIPTION_MAX)
        return -EINVAL;
    char mkey[SX_SECRETS_KEY_MAX], vkey[SX_SECRETS_KEY_MAX];
    size_t mkl = sx_secrets_key_build(mkey, SX_SECRETS_RECORD_META, p);
    size_t vkl = sx_secrets_key_build(vkey, SX_SECRETS_RECORD_VALUE, p);
    uint8_t enc[SX_META_MAX];
    sx_secret_meta m;
    memset(&m, 0, sizeof(m));
    m.created_ms = m.updated_ms = sx_clock_wall_ms();
    set_description(&m, description, len);
    size_t elen = sx_meta_encode(&m, enc);
    /* A stale value record cannot exist (delete removes both), but a fresh secret must never
     * inherit one, so the batch clears it anyway. */
    sx_storage_op ops[2] = {
        {.kind = SX_STORAGE_OP_PUT, .key = mkey, .klen = mkl, .val = enc, .vlen = elen, .cond = SX_STORAGE_COND_ABSENT},
        {.kind = SX_STORAGE_OP_DELETE, .key = vkey, .klen = vkl},
    };
    int rc = batch(c, ops, 2);
    if (rc == SX_STORAGE_ECONDITION)
        return -EEXIST;
    if (rc != 0)
        return rc;
    memcpy(ret_meta, &m, sizeof(m));
    *ret_rev = ops[0].ret_rev;
    return 0;
}

/* One write: read, check, batch; again while another writer got in between. */
static int write_apply(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                       const write_args *a, sx_secret_meta *m, uint64_t *ret_rev)
{
    sx_storage *st = c->storage;
    char mkey[SX_SECRETS_KEY_MAX], vkey[SX_SECRETS_KEY_MAX];
    size_t mkl = sx_secrets_key_build(mkey, SX_SECRETS_RECORD_META, p);
    size_t vkl = sx_secrets_key_build(vkey, SX_SECRETS_RECORD_VALUE, p);
    uint8_t enc[SX_META_MAX];

    for (int attempt = 0; attempt < WRITE_RETRIES; attempt++) {
        void *val = NULL;
        size_t vlen = 0;
        uint64_t rev = 0;
        int rc = sx_storage_get(st, mkey, mkl, &val, &vlen, &rev);
        if (rc == 0) {
            rc = sx_meta_decode(m, val, vlen);
            sx_storage_free(val);
        }
        if (rc != 0)
            return rc;
        if (cond && !cond->rev_ok(cond->arg, rev))
            return SX_SECRETS_EPRECONDITION;
        int64_t now = sx_clock_wall_ms();
        if (now < m->updated_ms)
            now = m->updated_ms; /* a clock step back never makes updatedAt go backwards */
        sx_storage_op ops[3];
        size_t nops = 0;
        sx_crypto_pin pin;
        uint8_t *blob = NULL;
        size_t blen = 0;
        memset(ops, 0, sizeof(ops));
        if (a->op == OP_UPDATE || a->op == OP_SET_VALUE) {
            m->updated_ms = now;
            if (a->op == OP_UPDATE) {
                set_description(m, a->description, a->description_len);
            } else {
                sx_crypto_place place = sx_secrets_crypto_place(p);
                rc = sx_crypto_value_encrypt_pinned(c->crypto, &blob, &blen, &pin, &place, a->value, a->value_len);
                if (rc != 0)
                    return SX_SECRETS_EENCRYPT;
                m->has_value = true;
            }
            size_t elen = sx_meta_encode(m, enc);
            ops[nops++] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                                          .key = mkey,
                                          .klen = mkl,
                                          .val = enc,
                                          .vlen = elen,
                                          .cond = SX_STORAGE_COND_REV,
                                          .rev = rev};
            if (blob) {
                ops[nops++] =
                    (sx_storage_op){.kind = SX_STORAGE_OP_PUT, .key = vkey, .klen = vkl, .val = blob, .vlen = blen};
                /* The env must still name the data-key version the value was encrypted under when
                 * the batch commits: a data-key rotation that began after we encrypted would not
                 * re-encrypt this value and would destroy its key. */
                ops[nops++] = (sx_storage_op){.kind = SX_STORAGE_OP_CHECK,
                                              .key = pin.key,
                                              .klen = pin.klen,
                                              .cond = SX_STORAGE_COND_REV,
                                              .rev = pin.rev};
                sx_testpoint("set-value.batch");
            }
        } else { /* OP_DELETE: the value goes with the metadata, in the same batch */
            ops[nops++] = (sx_storage_op){
                .kind = SX_STORAGE_OP_DELETE, .key = mkey, .klen = mkl, .cond = SX_STORAGE_COND_REV, .rev = rev};
            ops[nops++] = (sx_storage_op){.kind = SX_STORAGE_OP_DELETE, .key = vkey, .klen = vkl};
        }
        rc = batch(c, ops, nops);
        free(blob);
        if (rc == 0) {
            *ret_rev = ops[0].ret_rev;
            return 0;
        }
        if (rc != SX_STORAGE_ECONDITION)
            return rc;
        /* Someone else wrote in between, or a data-key rotation began: read again. The next
         * round finds the secret deleted, the precondition no longer met, or applies the change
         * to what is there now (a rotation is never the caller's business: the value is
         * encrypted again under the env's new key). */
    }
    return SX_SECRETS_ECONTENTION;
}

static int write_meta(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                      const write_args *a, sx_secret_meta *ret_meta, uint64_t *ret_rev)
{
    sx_secret_meta m;
    uint64_t rev = 0;
    int rc = write_apply(c, p, cond, a, &m, &rev);
    if (rc != 0)
        return rc;
    if (ret_meta)
        memcpy(ret_meta, &m, sizeof(m));
    if (ret_rev)
        *ret_rev = rev;
    return 0;
}

int sx_secrets_update(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                      const char *description, size_t len, sx_secret_meta *ret_meta, uint64_t *ret_rev)
{
    if (description && len > SX_SECRETS_DESCRIPTION_MAX)
        return -EINVAL;
    write_args a = {.op = OP_UPDATE, .description = description, .description_len = len};
    return write_meta(c, p, cond, &a, ret_meta, ret_rev);
}

int sx_secrets_delete(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond)
{
    write_args a = {.op = OP_DELETE};
    return write_meta(c, p, cond, &a, NULL, NULL);
}

int sx_secrets_set_value(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                         const void *value, size_t len, sx_secret_meta *ret_meta, uint64_t *ret_rev)
{
    write_args a = {.op = OP_SET_VALUE, .value = value, .value_len = len};
    return write_meta(c, p, cond, &a, ret_meta, ret_rev);
}
