/*
 * slot.c - keyslots: the keyring key wrapped once per unlock method (FORMAT.md, "Slots").
 *
 * The keyring (s/keyring) is encrypted under one random keyring key. Each slot record
 * (s/slot/{%08x id}) holds that key wrapped under one method's key - a key file, a passphrase
 * through Argon2id, a TPM-sealed key of one machine, or the recovery key (slot 0) - with the
 * slot's header (id, type, label, parameters, the keyring key's id) as associated data, so a slot
 * record copied under another id, or with its type or parameters changed, opens nothing. A node
 * opens with the first slot of its configured type that works: a TPM slot made by another
 * machine's TPM fails to load there, and the node goes on to the next one.
 *
 * Every change is one conditional storage batch: an add puts its record absent-only and checks the
 * keyring's revision (so it never wraps a key a concurrent rekey replaced); a removal deletes at
 * the revision read and checks every other slot's revision (so two removals racing can never take
 * the last two slots); a rekey rewrites the keyring and every slot it keeps and deletes the rest.
 * A slot's last use is a separate, unauthenticated record (s/slot.used/{id}): information for
 * operators, never trusted.
 */
#include "crypto/crypto_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOT_FMT   1u
#define SLOT_FIXED (1u + 1u + 4u + 8u + SX_KKID_BYTES + 1u) /* up to the label */

size_t sx_slot_key(char *buf, uint32_t id)
{
    return (size_t)snprintf(buf, SX_SLOT_KEY_BUF, SX_KEY_SLOT_PREFIX "%08x", id);
}

static size_t used_key(char *buf, uint32_t id)
{
    return (size_t)snprintf(buf, SX_SLOT_KEY_BUF, SX_KEY_SLOT_USED "%08x", id);
}

static bool label_ok(const char *label)
{
    size_t n = label ? strlen(label) : 0;
    if (n > SX_CRYPTO_SLOT_LABEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (label[i] < 0x20 || label[i] > 0x7e)
            return false;
    return true;
}

int sx_slot_parse(sx_slot *s, uint32_t id, const uint8_t *rec, size_t len)
{
    memset(s, 0, sizeof *s);
    if (len < SLOT_FIXED || rec[0] != SLOT_FMT)
        return SX_CRYPTO_EFORMAT;
    s->type = (sx_crypto_seal_type)rec[1];
    s->id = sx_be32_get(rec + 2);
    s->created = (int64_t)sx_be64_get(rec + 6);
    memcpy(s->kkid, rec + 14, SX_KKID_BYTES);
    size_t l = rec[SLOT_FIXED - 1], off = SLOT_FIXED;
    if (s->id != id || l > SX_CRYPTO_SLOT_LABEL_MAX || len < off + l + 2)
        return SX_CRYPTO_EFORMAT;
    memcpy(s->label, rec + off, l);
    s->label[l] = '\0';
    if (!label_ok(s->label))
        return SX_CRYPTO_EFORMAT;
    off += l;
    size_t p = (size_t)rec[off] << 8 | rec[off + 1];
    off += 2;
    if (len != off + p + SX_SLOT_WRAP_LEN)
        return SX_CRYPTO_EFORMAT;
    s->sp.type = s->type;
    int r = sx_seal_tail_get(&s->sp, rec + off, p, true);
    if (r < 0)
        return r;
    s->rec = rec;
    s->hdrlen = off + p;
    s->len = len;
    return 0;
}

static int slot_encode(uint8_t **ret, size_t *ret_len, uint32_t id, int64_t created, const char *label,
                       const sx_seal_params *sp, const uint8_t kkid[SX_KKID_BYTES], const uint8_t *slot_key,
                       const uint8_t *kk)
{
    size_t tail, l = label ? strlen(label) : 0;
    if (!label_ok(label) || sx_seal_tail_size(&tail, sp, true) < 0 || tail > UINT16_MAX)
        return -EINVAL;
    size_t hdrlen = SLOT_FIXED + l + 2 + tail, len = hdrlen + SX_SLOT_WRAP_LEN;
    uint8_t *b = malloc(len), *p = b;
    if (!b)
        return -ENOMEM;
    *p++ = SLOT_FMT;
    *p++ = (uint8_t)sp->type;
    sx_be32_put(p, id);
    sx_be64_put(p + 4, (uint64_t)created);
    memcpy(p + 12, kkid, SX_KKID_BYTES);
    p += 12 + SX_KKID_BYTES;
    *p++ = (uint8_t)l;
    if (l)
        memcpy(p, label, l);
    p += l;
    *p++ = (uint8_t)(tail >> 8);
    *p++ = (uint8_t)tail;
    p = sx_seal_tail_put(p, sp, true);
    uint8_t nonce[SX_NONCEBYTES];
    randombytes_buf(nonce, sizeof nonce);
    sx_crypto_slot_wrap_nonce(p, slot_key, b, hdrlen, kk, nonce);
    *ret = b;
    *ret_len = len;
    return 0;
}

int sx_slot_build(uint8_t **ret, size_t *ret_len, uint32_t id, int64_t created, const char *label,
                  const sx_seal_params *sp, const uint8_t kkid[SX_KKID_BYTES], const uint8_t *slot_key,
                  const uint8_t *kk)
{
    if (sp->type == SX_CRYPTO_SEAL_RECOVERY)
        return -EINVAL;
    return slot_encode(ret, ret_len, id, created, label, sp, kkid, slot_key, kk);
}

int sx_slot_build_recovery(uint8_t **ret, size_t *ret_len, int64_t created, const uint8_t rpk[32],
                           const uint8_t kkid[SX_KKID_BYTES], const uint8_t *kk)
{
    sx_seal_params sp = {.type = SX_CRYPTO_SEAL_RECOVERY};
    uint8_t *eph = sodium_malloc(64);
    if (!eph)
        return -ENOMEM;
    randombytes_buf(eph, 32);
    crypto_scalarmult_base(sp.eph_pk, eph);
    int r = sx_crypto_recovery_wrap_key(eph + 32, eph, rpk, sp.eph_pk, rpk);
    if (r == 0)
        r = slot_encode(ret, ret_len, SX_CRYPTO_RECOVERY_SLOT, created, "recovery", &sp, kkid, eph + 32, kk);
    sodium_free(eph);
    return r;
}

int sx_slot_open(uint8_t *kk, const sx_slot *s, const uint8_t *slot_key)
{
    return sx_crypto_slot_unwrap(kk, slot_key, s->rec, s->hdrlen, s->rec + s->hdrlen);
}

void sx_slots_free(sx_slot *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        free((void *)s[i].rec);
    free(s);
}

int sx_slots_read(sx_storage *st, sx_slot **ret, size_t *ret_n)
{
    sx_storage_iter *it;
    int r = sx_storage_iter_new(st, SX_KEY_SLOT_PREFIX, strlen(SX_KEY_SLOT_PREFIX), NULL, 0, 0, &it);
    if (r < 0)
        return r;
    sx_slot *v = calloc(SX_CRYPTO_MAX_SLOTS, sizeof *v);
    size_t n = 0;
    if (!v)
        r = -ENOMEM;
    const void *k, *val;
    size_t klen, vlen;
    uint64_t rev;
    while (r == 0 && (r = sx_storage_iter_next(it, &k, &klen, &val, &vlen, &rev)) == 0) {
        const size_t pl = strlen(SX_KEY_SLOT_PREFIX);
        char hex[9];
        char *end;
        if (klen != pl + 8 || n == SX_CRYPTO_MAX_SLOTS) {
            r = SX_CRYPTO_EFORMAT;
            break;
        }
        memcpy(hex, (const char *)k + pl, 8);
        hex[8] = '\0';
        unsigned long id = strtoul(hex, &end, 16);
        uint8_t *copy = malloc(vlen ? vlen : 1);
        if (!copy) {
            r = -ENOMEM;
            break;
        }
        memcpy(copy, val, vlen);
        r = *end ? SX_CRYPTO_EFORMAT : sx_slot_parse(&v[n], (uint32_t)id, copy, vlen);
        if (r < 0) {
            free(copy);
            break;
        }
        v[n++].rev = rev;
    }
    sx_storage_iter_free(it);
    if (r != SX_STORAGE_DONE) {
        sx_slots_free(v, n);
        return r < 0 ? r : -EIO;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static void slot_info(sx_crypto_slot_info *i, const sx_slot *s, const uint8_t kkid[SX_KKID_BYTES], uint32_t own)
{
    memset(i, 0, sizeof *i);
    i->id = s->id;
    i->type = s->type;
    memcpy(i->label, s->label, sizeof i->label);
    i->created = s->created;
    i->pcrs = s->type == SX_CRYPTO_SEAL_TPM ? s->sp.pcrs : 0;
    i->pin = s->type == SX_CRYPTO_SEAL_TPM && s->sp.pin;
    i->current = s->id == own;
    i->stale = sodium_memcmp(s->kkid, kkid, SX_KKID_BYTES) != 0;
}

static void mark_used(sx_storage *st, uint32_t id)
{
    char k[SX_SLOT_KEY_BUF];
    uint8_t v[8];
    sx_be64_put(v, (uint64_t)time(NULL));
    /* Information only: a failure to note the time changes nothing. */
    if (sx_storage_put(st, k, used_key(k, id), v, sizeof v, NULL) < 0)
        return;
}

/* Adopt an opened slot: its id, type, key and the keyring key. Caller holds the write lock or is
 * the only user of c. */
static void adopt(sx_crypto *c, const sx_slot *s, const uint8_t *slot_key, const uint8_t *kk, const uint8_t *kkid)
{
    c->slot_id = s->id;
    c->seal_type = s->type;
    memcpy(c->seal_key, slot_key, SX_CRYPTO_KEYBYTES);
    if (kk) {
        memcpy(c->kk, kk, SX_CRYPTO_KEYBYTES);
        memcpy(c->kkid, kkid, SX_KKID_BYTES);
    }
}

/* Rank of an unlock failure, to report the most useful one when no slot opens. */
static int failure_rank(int r)
{
    if (r == SX_CRYPTO_ETPMWRONG)
        return 1; /* another machine's slot: expected in a cluster */
    if (r == SX_CRYPTO_EFORMAT || r == SX_CRYPTO_ETPM)
        return 2;
    return 3; /* EBADSEAL, EPCR: this node's slot that no longer opens */
}

/* Whether an unlock error ends the search: the same for every further slot (configuration, key
 * file, no TPM), or an authorization failure the TPM counts against its dictionary-attack limit. */
static bool unlock_error_final(sx_crypto_seal_type type, int r)
{
    if (type != SX_CRYPTO_SEAL_TPM)
        return true;
    return r != SX_CRYPTO_ETPMWRONG && r != SX_CRYPTO_EPCR && r != SX_CRYPTO_EFORMAT;
}

static const char *method_noun(sx_crypto_seal_type t)
{
    return t == SX_CRYPTO_SEAL_FILE ? "key file" : t == SX_CRYPTO_SEAL_PASSPHRASE ? "passphrase" : "TPM object";
}

/* Read the keyring record; *ret_blob is the storage's (free with sx_storage_free). */
static int keyring_read(sx_storage *st, uint8_t **ret_blob, size_t *ret_len, uint64_t *ret_rev)
{
    int r = sx_storage_get(st, SX_KEY_S_KEYRING, strlen(SX_KEY_S_KEYRING), (void **)ret_blob, ret_len, ret_rev);
    if (r == 0 && (*ret_len < SX_KEYRING2_HDR_LEN || (*ret_blob)[0] != SX_KEYRING_BLOB_V2)) {
        sx_storage_free(*ret_blob);
        return SX_CRYPTO_EFORMAT;
    }
    return r;
}

int sx_crypto_slots_unlock(sx_crypto *c, const sx_crypto_options *opt, char *err, size_t errlen)
{
    uint8_t *blob = NULL;
    size_t blen = 0, n = 0;
    uint64_t rev = 0;
    sx_slot *slots = NULL;
    int r = keyring_read(c->st, &blob, &blen, &rev);
    if (r < 0)
        return sx_fail(err, errlen, r, "cannot read the keyring: %s", sx_crypto_strerror(r));
    r = sx_slots_read(c->st, &slots, &n);
    if (r < 0) {
        sx_storage_free(blob);
        return sx_fail(err, errlen, r, "cannot read the keyring's slots: %s", sx_crypto_strerror(r));
    }
    const uint8_t *kkid = blob + 1;
    uint8_t *keys = sodium_malloc(2 * SX_CRYPTO_KEYBYTES); /* slot key, keyring key */
    char types[64] = "", why[512] = "";
    size_t tried = 0;
    int best = 0;
    if (!keys)
        r = -ENOMEM;
    for (size_t i = 0; r != -ENOMEM && i < n; i++) {
        const sx_slot *s = &slots[i];
        if (s->type != opt->seal.type) {
            char t[24];
            snprintf(t, sizeof t, "'%s'", sx_crypto_seal_type_name(s->type));
            if (!strstr(types, t))
                snprintf(types + strlen(types), sizeof types - strlen(types), "%s%s", types[0] ? ", " : "", t);
            continue;
        }
        tried++;
        char e[512] = "";
        if (sodium_memcmp(s->kkid, kkid, SX_KKID_BYTES) != 0) {
            r = SX_CRYPTO_EBADSEAL;
            snprintf(e, sizeof e, "slot %u wraps a keyring key replaced by a rekey", s->id);
        } else if ((r = sx_seal_unlock(keys, &s->sp, &opt->seal, e, sizeof e)) < 0) {
            if (unlock_error_final(s->type, r)) {
                sx_fail(err, errlen, r, "slot %u: %s", s->id, e);
                best = -1;
                break;
            }
        } else if ((r = sx_slot_open(keys + 32, s, keys)) < 0 ||
                   (r = sx_crypto_keyring_unseal(c->kr, c->sys, keys + 32, blob, blen)) < 0) {
            r = r == SX_CRYPTO_EFORMAT ? r : SX_CRYPTO_EBADSEAL;
            snprintf(e, sizeof e, "wrong %s", method_noun(s->type));
        } else {
            adopt(c, s, keys, keys + 32, kkid);
            c->keyring_rev = rev;
            mark_used(c->st, s->id);
            best = 0;
            r = 0;
            break;
        }
        if (failure_rank(r) > failure_rank(best) || best == 0)
            best = r;
        size_t wl = strlen(why);
        snprintf(why + wl, sizeof why - wl, "%sslot %u: %s", wl ? "; " : "", s->id, e);
    }
    if (r == -ENOMEM)
        sx_fail(err, errlen, r, "cannot allocate secure memory for keys");
    else if (best == -1)
        ; /* err written */
    else if (tried == 0)
        r = sx_fail(err, errlen, SX_CRYPTO_ESEALTYPE,
                    "the store has no '%s' slot (it has: %s); add one from a running node with `secretsctl seal "
                    "add`, or use the recovery key",
                    sx_crypto_seal_type_name(opt->seal.type), types[0] ? types : "none");
    else if (r != 0) {
        r = best;
        if (r == SX_CRYPTO_EBADSEAL)
            sx_fail(err, errlen, r,
                    "the %s does not open the keyring: no %s slot opens with it (%s); wrong %s, or the keyring was "
                    "altered or comes from another installation",
                    method_noun(opt->seal.type), sx_crypto_seal_type_name(opt->seal.type), why,
                    method_noun(opt->seal.type));
        else
            sx_fail(err, errlen, r, "no %s slot opens the keyring (%zu tried; %s)",
                    sx_crypto_seal_type_name(opt->seal.type), tried, why);
    }
    sodium_free(keys);
    sx_slots_free(slots, n);
    sx_storage_free(blob);
    return r;
}

/* --- operator commands ------------------------------------------------------------------------- */

int sx_crypto_slot_list(sx_crypto *c, sx_crypto_slot_info *ret, size_t cap, size_t *ret_n)
{
    if (!c || (!ret && cap) || !ret_n)
        return -EINVAL;
    sx_slot *slots;
    size_t n;
    int r = sx_slots_read(c->st, &slots, &n);
    if (r < 0)
        return r;
    pthread_rwlock_rdlock(&c->lock);
    uint8_t kkid[SX_KKID_BYTES];
    memcpy(kkid, c->kkid, sizeof kkid);
    uint32_t own = c->slot_id;
    pthread_rwlock_unlock(&c->lock);
    for (size_t i = 0; i < n && i < cap; i++) {
        slot_info(&ret[i], &slots[i], kkid, own);
        char k[SX_SLOT_KEY_BUF];
        uint8_t *v = NULL;
        size_t vlen = 0;
        if (sx_storage_get(c->st, k, used_key(k, slots[i].id), (void **)&v, &vlen, NULL) == 0 && vlen == 8)
            ret[i].last_used = (int64_t)sx_be64_get(v);
        sx_storage_free(v);
    }
    *ret_n = n < cap ? n : cap;
    sx_slots_free(slots, n);
    return 0;
}

uint32_t sx_crypto_slot_current(sx_crypto *c, sx_crypto_seal_type *ret_type)
{
    pthread_rwlock_rdlock(&c->lock);
    uint32_t id = c->slot_id;
    if (ret_type)
        *ret_type = c->seal_type;
    pthread_rwlock_unlock(&c->lock);
    return id;
}

static uint32_t next_id(const sx_slot *slots, size_t n)
{
    uint32_t id = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i].id > id)
            id = slots[i].id;
    return id + 1;
}

static void op_put(sx_storage_op *op, const char *key, size_t klen, const void *val, size_t vlen, uint64_t rev)
{
    *op = (sx_storage_op){.kind = SX_STORAGE_OP_PUT, .key = key, .klen = klen, .val = val, .vlen = vlen};
    op->cond = rev ? SX_STORAGE_COND_REV : SX_STORAGE_COND_ABSENT;
    op->rev = rev;
}

static void op_rev(sx_storage_op *op, int kind, const char *key, size_t klen, uint64_t rev)
{
    *op = (sx_storage_op){.kind = kind, .key = key, .klen = klen, .cond = SX_STORAGE_COND_REV, .rev = rev};
}

/* --- the first slots --------------------------------------------------------------------------- */

int sx_crypto_first_slots_commit(sx_crypto *c, const sx_seal_params *sp, const char *label, uint64_t keyring_rev,
                                 const sx_storage_op *extra, size_t nextra)
{
    uint8_t *recs[3] = {NULL, NULL, NULL};
    size_t lens[3] = {0, 0, 0};
    int64_t now = (int64_t)time(NULL);
    randombytes_buf(c->kk, SX_CRYPTO_KEYBYTES);
    randombytes_buf(c->kkid, SX_KKID_BYTES);
    int r = sx_crypto_keyring_blob(&recs[0], &lens[0], c->kr, c->sys, c->kk, c->kkid);
    if (r == 0)
        r = sx_slot_build_recovery(&recs[1], &lens[1], now, c->kr->recovery_pk, c->kkid, c->kk);
    if (r == 0)
        r = sx_slot_build(&recs[2], &lens[2], 1, now, label, sp, c->kkid, c->seal_key, c->kk);
    char k0[SX_SLOT_KEY_BUF], k1[SX_SLOT_KEY_BUF];
    sx_storage_op ops[3 + 4];
    if (r == 0 && nextra <= 4) {
        op_put(&ops[0], SX_KEY_S_KEYRING, strlen(SX_KEY_S_KEYRING), recs[0], lens[0], keyring_rev);
        op_put(&ops[1], k0, sx_slot_key(k0, SX_CRYPTO_RECOVERY_SLOT), recs[1], lens[1], 0);
        op_put(&ops[2], k1, sx_slot_key(k1, 1), recs[2], lens[2], 0);
        memcpy(ops + 3, extra, nextra * sizeof *extra);
        r = sx_storage_batch(c->st, ops, 3 + nextra, NULL);
    } else if (r == 0) {
        r = -EINVAL;
    }
    for (int i = 0; i < 3; i++)
        free(recs[i]);
    if (r == SX_STORAGE_ECONDITION)
        return 1;
    if (r < 0)
        return r;
    c->keyring_rev = ops[0].ret_rev;
    c->slot_id = 1;
    c->seal_type = sp->type;
    return 0;
}

/* One attempt of a slot change on the slots as read: 0, a negative error, or SX_STORAGE_ECONDITION
 * when another writer won (then the keyring is reloaded and the change tried again). */
typedef int (*slots_attempt_fn)(sx_crypto *c, const sx_slot *slots, size_t n, void *ctx);

static int slots_retry(sx_crypto *c, slots_attempt_fn fn, void *ctx)
{
    int r = SX_STORAGE_ECONDITION;
    for (int attempt = 0; attempt < SX_KEYRING_COMMIT_RETRIES && r == SX_STORAGE_ECONDITION; attempt++) {
        if (attempt > 0 && (r = sx_crypto_keyring_reload(c)) < 0)
            break;
        sx_slot *slots;
        size_t n;
        if ((r = sx_slots_read(c->st, &slots, &n)) < 0)
            break;
        r = fn(c, slots, n, ctx);
        sx_slots_free(slots, n);
    }
    return r;
}

typedef struct commit_ctx {
    const sx_seal_params *sp;
    const uint8_t *slot_key;
    const char *label;
    const uint32_t *drop;
    size_t ndrop;
    bool adopt_new;
    uint32_t id; /* out */
} commit_ctx;

static int commit_attempt(sx_crypto *c, const sx_slot *slots, size_t n, void *ctx)
{
    commit_ctx *x = ctx;
    char keys[SX_CRYPTO_MAX_SLOTS + 1][SX_SLOT_KEY_BUF];
    sx_storage_op ops[SX_CRYPTO_MAX_SLOTS + 2];
    size_t nops = 2, kept = n;
    for (size_t i = 0; i < x->ndrop; i++)
        for (size_t j = 0; j < n; j++)
            if (slots[j].id == x->drop[i] && nops < SX_CRYPTO_MAX_SLOTS + 2) {
                op_rev(&ops[nops], SX_STORAGE_OP_DELETE, keys[nops - 1], sx_slot_key(keys[nops - 1], x->drop[i]),
                       slots[j].rev);
                nops++;
                kept--;
            }
    if (kept >= SX_CRYPTO_MAX_SLOTS)
        return SX_CRYPTO_ETOOMANY;
    uint32_t id = next_id(slots, n);
    uint8_t *rec = NULL;
    size_t len = 0;
    pthread_rwlock_wrlock(&c->lock);
    int r = slot_encode(&rec, &len, id, (int64_t)time(NULL), x->label, x->sp, c->kkid, x->slot_key, c->kk);
    if (r == 0) {
        op_put(&ops[0], keys[0], sx_slot_key(keys[0], id), rec, len, 0);
        op_rev(&ops[1], SX_STORAGE_OP_CHECK, SX_KEY_S_KEYRING, strlen(SX_KEY_S_KEYRING), c->keyring_rev);
        r = sx_storage_batch(c->st, ops, nops, NULL);
    }
    if (r == 0 && x->adopt_new) {
        sx_slot s = {.id = id, .type = x->sp->type};
        adopt(c, &s, x->slot_key, NULL, NULL);
    }
    pthread_rwlock_unlock(&c->lock);
    free(rec);
    if (r == 0)
        x->id = id;
    return r;
}

/* Add a slot with key slot_key and parameters sp, and delete the slots in drop[] (ids whose
 * revisions must still match), in one batch conditional on the keyring's revision; retried while
 * other writers win. adopt_new makes the new slot this handle's. */
static int slot_commit(sx_crypto *c, uint32_t *ret_id, const sx_seal_params *sp, const uint8_t *slot_key,
                       const char *label, const uint32_t *drop, size_t ndrop, bool adopt_new)
{
    commit_ctx x = {
        .sp = sp, .slot_key = slot_key, .label = label, .drop = drop, .ndrop = ndrop, .adopt_new = adopt_new};
    int r = slots_retry(c, commit_attempt, &x);
    if (r == 0)
        *ret_id = x.id;
    return r;
}

int sx_crypto_slot_add(sx_crypto *c, uint32_t *ret_id, const sx_crypto_seal_options *o, const char *label, char *err,
                       size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!c || !ret_id || !o)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    if (!label_ok(label))
        return sx_fail(err, errlen, -EINVAL, "a slot label is at most %u printable ASCII characters",
                       SX_CRYPTO_SLOT_LABEL_MAX);
    if (o->type == SX_CRYPTO_SEAL_RECOVERY)
        return sx_fail(err, errlen, -EINVAL, "the recovery slot is made at initialisation only");
    uint8_t *key = sodium_malloc(SX_CRYPTO_KEYBYTES);
    if (!key)
        return sx_fail(err, errlen, -ENOMEM, "cannot allocate secure memory for keys");
    sx_seal_params sp;
    int r = sx_seal_create(key, &sp, o, err, errlen);
    if (r == 0) {
        r = slot_commit(c, ret_id, &sp, key, label, NULL, 0, false);
        sx_seal_params_release(&sp);
        if (r < 0)
            sx_fail(err, errlen, r, "cannot store the new slot: %s", sx_crypto_strerror(r));
    }
    sodium_free(key);
    return r;
}

int sx_crypto_reseal(sx_crypto *c, const sx_crypto_seal_options *new_seal, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!c || !new_seal || new_seal->type == SX_CRYPTO_SEAL_RECOVERY)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    uint8_t *key = sodium_malloc(SX_CRYPTO_KEYBYTES);
    if (!key)
        return sx_fail(err, errlen, -ENOMEM, "cannot allocate secure memory for keys");
    sx_seal_params sp;
    int r = sx_seal_create(key, &sp, new_seal, err, errlen);
    if (r == 0) {
        uint32_t id, old = sx_crypto_slot_current(c, NULL);
        r = slot_commit(c, &id, &sp, key, "", &old, 1, true);
        sx_seal_params_release(&sp);
        if (r < 0)
            sx_fail(err, errlen, r, "cannot re-seal the keyring: %s", sx_crypto_strerror(r));
    }
    sodium_free(key);
    return r;
}

int sx_crypto_slot_remove(sx_crypto *c, uint32_t id, unsigned flags, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!c)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    int r = SX_STORAGE_ECONDITION;
    for (int attempt = 0; attempt < SX_KEYRING_COMMIT_RETRIES && r == SX_STORAGE_ECONDITION; attempt++) {
        sx_slot *slots;
        size_t n, at = SIZE_MAX, live = 0;
        if ((r = sx_slots_read(c->st, &slots, &n)) < 0)
            return sx_fail(err, errlen, r, "cannot read the slots: %s", sx_crypto_strerror(r));
        pthread_rwlock_rdlock(&c->lock);
        for (size_t i = 0; i < n; i++) {
            if (slots[i].id == id)
                at = i;
            else if (sodium_memcmp(slots[i].kkid, c->kkid, SX_KKID_BYTES) == 0)
                live++;
        }
        uint32_t own = c->slot_id;
        pthread_rwlock_unlock(&c->lock);
        if (at == SIZE_MAX)
            r = sx_fail(err, errlen, -ENOENT, "there is no slot %u", id);
        else if (live == 0)
            r = sx_fail(err, errlen, SX_CRYPTO_ESLOTREFUSED,
                        "slot %u is the last slot that opens the keyring; add another one first", id);
        else if (id == own && !(flags & SX_CRYPTO_SLOT_FORCE))
            r = sx_fail(err, errlen, SX_CRYPTO_ESLOTREFUSED,
                        "slot %u is the slot this node opened the keyring with; it would not start again without "
                        "another slot of its type (use --force to remove it anyway)",
                        id);
        else if (slots[at].type == SX_CRYPTO_SEAL_RECOVERY && !(flags & SX_CRYPTO_SLOT_FORCE))
            r = sx_fail(err, errlen, SX_CRYPTO_ESLOTREFUSED,
                        "slot %u is the recovery slot; without it the recovery key opens nothing (use --force to "
                        "remove it anyway)",
                        id);
        else {
            char keys[SX_CRYPTO_MAX_SLOTS + 1][SX_SLOT_KEY_BUF];
            sx_storage_op ops[SX_CRYPTO_MAX_SLOTS + 1];
            size_t nops = 0;
            op_rev(&ops[nops++], SX_STORAGE_OP_DELETE, keys[0], sx_slot_key(keys[0], id), slots[at].rev);
            ops[nops++] = (sx_storage_op){.kind = SX_STORAGE_OP_DELETE, .key = keys[1], .klen = used_key(keys[1], id)};
            for (size_t i = 0; i < n; i++)
                if (i != at)
                    op_rev(&ops[nops], SX_STORAGE_OP_CHECK, keys[nops], sx_slot_key(keys[nops], slots[i].id),
                           slots[i].rev),
                        nops++;
            r = sx_storage_batch(c->st, ops, nops, NULL);
            if (r < 0 && r != SX_STORAGE_ECONDITION)
                sx_fail(err, errlen, r, "cannot remove slot %u: %s", id, sx_crypto_strerror(r));
        }
        sx_slots_free(slots, n);
    }
    if (r == SX_STORAGE_ECONDITION)
        sx_fail(err, errlen, r, "the slots kept changing while removing slot %u; try again", id);
    return r;
}

typedef struct rekey_ctx {
    const uint8_t *kk;
    const uint8_t *kkid;
    sx_crypto_slot_info *dropped;
    size_t cap, ndropped;
    char *err;
    size_t errlen;
} rekey_ctx;

/* Re-encrypt the keyring under x->kk, re-wrap this handle's slot and the recovery slot, delete the
 * others: one batch. Holds the write lock so that the keyring it encrypts is the one it commits. */
static int rekey_attempt(sx_crypto *c, const sx_slot *slots, size_t n, void *ctx)
{
    rekey_ctx *x = ctx;
    char keys[SX_CRYPTO_MAX_SLOTS + 1][SX_SLOT_KEY_BUF];
    uint8_t *recs[SX_CRYPTO_MAX_SLOTS + 1] = {0};
    sx_storage_op ops[SX_CRYPTO_MAX_SLOTS + 1];
    size_t nops = 0, lens[SX_CRYPTO_MAX_SLOTS + 1];
    bool own_found = false;
    x->ndropped = 0;
    pthread_rwlock_wrlock(&c->lock);
    int r =
        sx_crypto_keyring_blob(&recs[SX_CRYPTO_MAX_SLOTS], &lens[SX_CRYPTO_MAX_SLOTS], c->kr, c->sys, x->kk, x->kkid);
    if (r == 0)
        op_put(&ops[nops++], SX_KEY_S_KEYRING, strlen(SX_KEY_S_KEYRING), recs[SX_CRYPTO_MAX_SLOTS],
               lens[SX_CRYPTO_MAX_SLOTS], c->keyring_rev);
    for (size_t i = 0; r == 0 && i < n; i++) {
        const sx_slot *s = &slots[i];
        size_t kl = sx_slot_key(keys[i], s->id);
        if (s->id == c->slot_id && s->type != SX_CRYPTO_SEAL_RECOVERY) {
            own_found = true;
            r = slot_encode(&recs[i], &lens[i], s->id, s->created, s->label, &s->sp, x->kkid, c->seal_key, x->kk);
        } else if (s->type == SX_CRYPTO_SEAL_RECOVERY) {
            r = sx_slot_build_recovery(&recs[i], &lens[i], s->created, c->kr->recovery_pk, x->kkid, x->kk);
        } else {
            op_rev(&ops[nops++], SX_STORAGE_OP_DELETE, keys[i], kl, s->rev);
            if (x->ndropped < x->cap)
                slot_info(&x->dropped[x->ndropped], s, c->kkid, c->slot_id);
            x->ndropped++;
            continue;
        }
        if (r == 0)
            op_put(&ops[nops++], keys[i], kl, recs[i], lens[i], s->rev);
    }
    if (r == 0 && !own_found)
        r = sx_fail(x->err, x->errlen, -ENOENT,
                    "the slot this node opened with (%u) no longer exists: a rekey would leave this node without a "
                    "slot; add one with `secretsctl seal add` first",
                    c->slot_id);
    if (r == 0)
        r = sx_storage_batch(c->st, ops, nops, NULL);
    if (r == 0) {
        memcpy(c->kk, x->kk, SX_CRYPTO_KEYBYTES);
        memcpy(c->kkid, x->kkid, SX_KKID_BYTES);
        c->keyring_rev = ops[0].ret_rev;
    }
    pthread_rwlock_unlock(&c->lock);
    for (size_t i = 0; i <= SX_CRYPTO_MAX_SLOTS; i++)
        free(recs[i]);
    return r;
}

int sx_crypto_rekey(sx_crypto *c, sx_crypto_slot_info *ret_dropped, size_t cap, size_t *ret_n_dropped, char *err,
                    size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!c || (!ret_dropped && cap) || !ret_n_dropped)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    uint8_t *kk = sodium_malloc(SX_CRYPTO_KEYBYTES);
    if (!kk)
        return sx_fail(err, errlen, -ENOMEM, "cannot allocate secure memory for keys");
    uint8_t kkid[SX_KKID_BYTES];
    randombytes_buf(kk, SX_CRYPTO_KEYBYTES);
    randombytes_buf(kkid, sizeof kkid);
    rekey_ctx x = {.kk = kk, .kkid = kkid, .dropped = ret_dropped, .cap = cap, .err = err, .errlen = errlen};
    int r = slots_retry(c, rekey_attempt, &x);
    sodium_free(kk);
    if (r < 0 && err && !err[0])
        sx_fail(err, errlen, r, "cannot rekey: %s", sx_crypto_strerror(r));
    if (r == 0)
        *ret_n_dropped = x.ndropped < cap ? x.ndropped : cap;
    return r;
}

/* --- recovery ---------------------------------------------------------------------------------- */

int sx_crypto_slots_recover(sx_crypto *c, const uint8_t *kp, const sx_crypto_options *opt, char *err, size_t errlen)
{
    uint8_t *blob = NULL;
    size_t blen = 0, n = 0;
    uint64_t rev = 0;
    sx_slot *slots = NULL;
    int r = keyring_read(c->st, &blob, &blen, &rev);
    if (r == 0)
        r = sx_slots_read(c->st, &slots, &n);
    if (r < 0) {
        sx_storage_free(blob);
        return sx_fail(err, errlen, r, "cannot read the keyring and its slots: %s", sx_crypto_strerror(r));
    }
    uint8_t *keys = sodium_malloc(3 * SX_CRYPTO_KEYBYTES); /* wrap key, keyring key, probe key */
    r = keys ? SX_CRYPTO_EBADRECOVERY : -ENOMEM;
    for (size_t i = 0; keys && i < n && r < 0; i++) {
        const sx_slot *s = &slots[i];
        if (s->type != SX_CRYPTO_SEAL_RECOVERY || sodium_memcmp(s->kkid, blob + 1, SX_KKID_BYTES) != 0)
            continue;
        r = sx_crypto_recovery_wrap_key(keys, kp + 64, s->sp.eph_pk, s->sp.eph_pk, kp + 32);
        if (r == 0)
            r = sx_slot_open(keys + 32, s, keys);
        if (r == 0)
            r = sx_crypto_keyring_unseal(c->kr, c->sys, keys + 32, blob, blen);
        if (r == 0 && sodium_memcmp(c->kr->recovery_pk, kp + 32, 32) != 0)
            r = SX_CRYPTO_EBADRECOVERY;
        if (r < 0 && r != -ENOMEM)
            r = SX_CRYPTO_EBADRECOVERY;
    }
    if (r < 0) {
        sx_fail(err, errlen, r, "the recovery key does not open this store's recovery slot");
        goto out;
    }
    memcpy(c->kk, keys + 32, SX_CRYPTO_KEYBYTES);
    memcpy(c->kkid, blob + 1, SX_KKID_BYTES);
    c->keyring_rev = rev;
    c->slot_id = SX_CRYPTO_RECOVERY_SLOT;
    /* This node's lost slots of the configured type: those the configured method does not open.
     * A TPM slot made by another machine's TPM (or one not reachable) is not this node's. */
    uint32_t drop[SX_CRYPTO_MAX_SLOTS];
    size_t ndrop = 0;
    for (size_t i = 0; i < n; i++) {
        const sx_slot *s = &slots[i];
        if (s->type != opt->seal.type)
            continue;
        char e[256];
        int u = sx_seal_unlock(keys + 64, &s->sp, &opt->seal, e, sizeof e);
        if (u == 0)
            u = sx_slot_open(keys + 32, s, keys + 64);
        if (u < 0 && u != SX_CRYPTO_ETPMWRONG && u != SX_CRYPTO_ENOTPM)
            drop[ndrop++] = s->id;
    }
    sx_seal_params sp;
    r = sx_seal_create(keys, &sp, &opt->seal, err, errlen);
    if (r < 0)
        goto out;
    uint32_t id = 0;
    r = slot_commit(c, &id, &sp, keys, "recovered", drop, ndrop, true);
    sx_seal_params_release(&sp);
    if (r < 0)
        sx_fail(err, errlen, r, "cannot store the new slot: %s", sx_crypto_strerror(r));
    else
        mark_used(c->st, id);
out:
    sodium_free(keys);
    sx_slots_free(slots, n);
    sx_storage_free(blob);
    return r;
}
