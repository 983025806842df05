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
#include "secrets/secrets_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/testpoint.h"

#define WRITE_RETRIES  SX_SECRETS_WRITE_RETRIES
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
    s->place = (sx_crypto_place){env->org, env->project, env->env, s->name, 0};
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

int sx_secrets_scopes(const sx_secrets_ctx *c, const char *org, const char *project,
                      int (*fn)(void *arg, const char *name, size_t len), void *arg)
{
    size_t ol = strlen(org), pjl = project ? strlen(project) : 0;
    if (ol == 0 || ol > SX_SECRETS_SCOPE_MAX || (project && (pjl == 0 || pjl > SX_SECRETS_SCOPE_MAX)) ||
        memchr(org, '/', ol) || (project && memchr(project, '/', pjl)))
        return -EINVAL;
    /* "m/{org}/" or "m/{org}/{project}/": the next segment of every key below it is a scope. */
    char prefix[SX_SECRETS_KEY_MAX];
    size_t pl = (size_t)snprintf(prefix, sizeof(prefix), "%c/%s/%s%s", SX_SECRETS_RECORD_META, org,
                                 project ? project : "", project ? "/" : "");
    char start[SX_SECRETS_KEY_MAX];
    size_t sl = 0;
    uint64_t t0 = sx_clock_mono_ns();
    int rc = 0;
    for (;;) {
        sx_storage_iter *it = NULL;
        rc = sx_storage_iter_new(c->storage, prefix, pl, sl ? start : NULL, sl, 0, &it);
        if (rc != 0)
            break;
        const void *k, *v;
        size_t klen, vlen;
        rc = sx_storage_iter_next(it, &k, &klen, &v, &vlen, NULL);
        if (rc == 0) {
            const char *name = (const char *)k + pl;
            const char *slash = klen > pl ? memchr(name, '/', klen - pl) : NULL;
            size_t nl = slash ? (size_t)(slash - name) : 0;
            if (nl == 0 || nl > SX_SECRETS_SCOPE_MAX) {
                rc = -EBADMSG;
            } else {
                /* The next scope's keys start past "{name}/": "{name}0" ('0' follows '/'). */
                memcpy(start, k, pl + nl);
                start[pl + nl] = '/' + 1;
                sl = pl + nl + 1;
                rc = fn(arg, name, nl);
            }
        }
        sx_storage_iter_free(it);
        if (rc != 0)
            break;
    }
    timed(c, SX_SECRETS_IO_LIST, t0);
    return rc == SX_STORAGE_DONE ? 0 : rc;
}

/* ---- content tags -------------------------------------------------------------------------------- */

_Static_assert(sizeof(crypto_generichash_state) <= SX_SECRETS_TAG_STATE_MAX, "SX_SECRETS_TAG_STATE_MAX is too small");
_Static_assert(SX_SECRETS_TAG_LEN >= crypto_generichash_BYTES_MIN && SX_SECRETS_TAG_LEN <= crypto_generichash_BYTES_MAX,
               "a content tag is a BLAKE2b output length");

/* A string with its length first, so that no two sequences of fields hash alike. */
static void tag_field(crypto_generichash_state *h, const char *s, size_t len)
{
    uint8_t n[4];
    sx_be32_put(n, (uint32_t)len);
    crypto_generichash_update(h, n, sizeof(n));
    crypto_generichash_update(h, (const unsigned char *)s, len);
}

static void tag_version(crypto_generichash_state *h, uint32_t version)
{
    uint8_t v[4];
    sx_be32_put(v, version);
    crypto_generichash_update(h, v, sizeof(v));
}

/* Start a tag of kind (its label) for p's env. */
static void tag_start(crypto_generichash_state *h, const char *kind, const char *org, const char *project,
                      const char *env)
{
    crypto_generichash_init(h, NULL, 0, SX_SECRETS_TAG_LEN);
    tag_field(h, kind, strlen(kind));
    tag_field(h, org, strlen(org));
    tag_field(h, project, strlen(project));
    tag_field(h, env, strlen(env));
}

void sx_secrets_version_tag(const sx_secrets_place *p, uint32_t version, uint8_t ret_tag[SX_SECRETS_TAG_LEN])
{
    crypto_generichash_state h;
    tag_start(&h, "secretsd value version", p->org, p->project, p->env);
    tag_field(&h, p->name, strlen(p->name));
    tag_version(&h, version);
    crypto_generichash_final(&h, ret_tag, SX_SECRETS_TAG_LEN);
}

void sx_secrets_values_tag(sx_secrets_scan *s, uint8_t ret_tag[SX_SECRETS_TAG_LEN])
{
    crypto_generichash_final((crypto_generichash_state *)s->tag_state, ret_tag, SX_SECRETS_TAG_LEN);
}

/* ---- reads, continued ---------------------------------------------------------------------------- */

int sx_secrets_values_open(sx_secrets_scan *s, const sx_secrets_ctx *c, const sx_secrets_place *env)
{
    int rc = scan_open(s, c, SX_SECRETS_RECORD_VALUE, env, NULL);
    if (rc != 0)
        return rc;
    tag_start((crypto_generichash_state *)s->tag_state, "secretsd values map", env->org, env->project, env->env);
    /* The metadata records in the same name order name each value's version (a value's blob is
     * bound to it): one more walk, no read per value. */
    sx_testpoint("values.meta");
    sx_secrets_place menv = *env;
    menv.name[0] = '\0';
    char prefix[SX_SECRETS_KEY_MAX];
    size_t pl = sx_secrets_key_build(prefix, SX_SECRETS_RECORD_META, &menv);
    rc = sx_storage_iter_new(c->storage, prefix, pl, NULL, 0, 0, &s->meta_it);
    if (rc != 0) {
        sx_storage_iter_free(s->it);
        s->it = NULL;
    }
    return rc;
}

/* Names in key order: bytewise, a prefix first. */
static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : al < bl ? -1 : al > bl;
}

/* The version of the value named name into *ret: the metadata walk moved up to it (0 when it
 * has none). 0 or a storage code. */
static int values_version_of(sx_secrets_scan *s, const char *name, size_t namelen, uint32_t *ret)
{
    while (!s->meta_done && (!s->meta_namelen || name_cmp(s->meta_name, s->meta_namelen, name, namelen) < 0)) {
        const void *k, *v;
        size_t kl, vl;
        sx_secret_meta_view m;
        int rc = sx_storage_iter_next(s->meta_it, &k, &kl, &v, &vl, NULL);
        if (rc < 0)
            return rc;
        if (rc != 0) {
            s->meta_done = true;
            break;
        }
        if (kl <= s->prefix_len || kl - s->prefix_len > SX_SECRETS_NAME_MAX)
            continue;
        s->meta_namelen = kl - s->prefix_len;
        memcpy(s->meta_name, (const char *)k + s->prefix_len, s->meta_namelen);
        s->meta_version = sx_meta_view(&m, v, vl) == 0 ? m.version : 0;
    }
    bool same = s->meta_namelen && name_cmp(s->meta_name, s->meta_namelen, name, namelen) == 0;
    *ret = same ? s->meta_version : 0;
    return 0;
}

/* The metadata walk and the value walk each read the store at their own moment, so a set-value
 * that lands between them shows as a value whose blob names another version than its metadata.
 * Such a value is read again as one reveal reads it (metadata and value at one revision). 0, 1
 * when the secret has no value any more (skip it), or an error. */
static int values_reread(sx_secrets_scan *s)
{
    sx_secrets_place p;
    snprintf(p.org, sizeof(p.org), "%s", s->place.org);
    snprintf(p.project, sizeof(p.project), "%s", s->place.project);
    snprintf(p.env, sizeof(p.env), "%s", s->place.env);
    snprintf(p.name, sizeof(p.name), "%s", s->name);
    void *blob;
    size_t blen;
    uint64_t rev;
    int64_t updated_ms;
    uint32_t version;
    int rc = sx_secrets_reveal(s->c, &p, &blob, &blen, &rev, &updated_ms, &version);
    if (rc == SX_SECRETS_ENOVALUE)
        return 1;
    if (rc != 0)
        return rc;
    sx_storage_free(s->reread);
    s->reread = blob;
    s->blob = blob;
    s->blob_len = blen;
    s->place.version = version;
    return 0;
}

int sx_secrets_values_next(sx_secrets_scan *s, const char **ret_name, size_t *ret_namelen, size_t *ret_blob_len)
{
    for (;;) {
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
        s->place.version = 0;
        if (s->meta_it && (rc = values_version_of(s, s->name, namelen, &s->place.version)) != 0)
            return rc;
        uint32_t bv;
        if (sx_crypto_value_secret_version(&bv, s->blob, s->blob_len) == 0 && bv != s->place.version &&
            !(bv == 0 && s->place.version <= 1)) {
            rc = values_reread(s);
            if (rc == 1)
                continue;
            if (rc != 0)
                return rc;
        }
        crypto_generichash_state *h = (crypto_generichash_state *)s->tag_state;
        tag_field(h, s->name, namelen);
        tag_version(h, s->place.version);
        *ret_name = s->name;
        *ret_namelen = namelen;
        *ret_blob_len = s->blob_len;
        return 0;
    }
}

/*
 * The metadata records alone name the same pairs: a set-value, rollback or delete writes a secret's
 * metadata (has-value flag, version) and its value record in one batch, so in one consistent walk
 * the secrets whose metadata has a value are those with a value record, at that version. One walk
 * over small records instead of two, and no ciphertext read.
 */
int sx_secrets_values_tag_now(const sx_secrets_ctx *c, const sx_secrets_place *env, uint8_t ret_tag[SX_SECRETS_TAG_LEN])
{
    sx_secrets_scan s;
    int rc = sx_secrets_list_open(&s, c, env, NULL);
    if (rc != 0)
        return rc;
    crypto_generichash_state h;
    tag_start(&h, "secretsd values map", env->org, env->project, env->env);
    const char *name;
    size_t namelen;
    sx_secret_meta_view m;
    while ((rc = sx_secrets_list_next(&s, &name, &namelen, &m)) == 0) {
        if (!m.has_value)
            continue;
        tag_field(&h, name, namelen);
        tag_version(&h, m.version);
    }
    sx_secrets_scan_close(&s);
    if (rc != SX_STORAGE_DONE)
        return rc;
    crypto_generichash_final(&h, ret_tag, SX_SECRETS_TAG_LEN);
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
    sx_storage_iter_free(s->meta_it);
    s->meta_it = NULL;
    sx_storage_free(s->reread);
    s->reread = NULL;
    if (s->kind == SX_SECRETS_RECORD_META)
        timed(s->c, SX_SECRETS_IO_LIST, s->t0);
}

int sx_secrets_reveal(const sx_secrets_ctx *c, const sx_secrets_place *p, void **ret_blob, size_t *ret_blob_len,
                      uint64_t *ret_rev, int64_t *ret_updated_ms, uint32_t *ret_version)
{
    sx_secret_meta_view m;
    uint32_t version = 0;
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
        version = rc == 0 ? m.version : 0;
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
    *ret_version = version;
    return 0;
}

int sx_secrets_value_decrypt(const sx_secrets_ctx *c, const sx_secrets_place *p, const void *blob, size_t blob_len,
                             void *out, size_t outcap, size_t *ret_len)
{
    return sx_secrets_value_decrypt_v(c, p, 0, blob, blob_len, out, outcap, ret_len);
}

int sx_secrets_value_decrypt_v(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version, const void *blob,
                               size_t blob_len, void *out, size_t outcap, size_t *ret_len)
{
    sx_crypto_place place = sx_secrets_crypto_place_v(p, version);
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

/* fn for the data-key version of each version record (h/ or x/) of env that has a value. */
static int version_records_each(const sx_secrets_ctx *c, sx_secrets_record kind, const sx_secrets_place *env,
                                int (*fn)(void *arg, uint32_t version), void *arg, uint64_t *ret_count)
{
    char prefix[SX_SECRETS_KEY_MAX];
    sx_crypto_place place = sx_secrets_crypto_place(env);
    size_t pl = sx_secrets_env_prefix(prefix, kind, &place);
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(c->storage, prefix, pl, NULL, 0, 0, &it);
    if (rc != 0)
        return rc;
    uint64_t count = 0;
    const void *v;
    size_t vl;
    while ((rc = sx_storage_iter_next(it, NULL, NULL, &v, &vl, NULL)) == 0) {
        sx_secrets_history_view h;
        uint32_t ver;
        if (sx_secrets_history_view_of(&h, v, vl) != 0 || h.destroyed)
            continue;
        count++;
        if (sx_crypto_value_version(&ver, h.blob, h.blob_len) < 0)
            continue;
        if ((rc = fn(arg, ver)) != 0)
            break;
    }
    sx_storage_iter_free(it);
    if (rc < 0)
        return rc;
    *ret_count = count;
    return 0;
}

int sx_secrets_history_versions(const sx_secrets_ctx *c, const sx_secrets_place *env,
                                int (*fn)(void *arg, uint32_t version), void *arg, uint64_t *ret_count)
{
    return version_records_each(c, SX_SECRETS_RECORD_HISTORY, env, fn, arg, ret_count);
}

int sx_secrets_deleted_versions(const sx_secrets_ctx *c, const sx_secrets_place *env,
                                int (*fn)(void *arg, uint32_t version), void *arg, uint64_t *ret_count)
{
    return version_records_each(c, SX_SECRETS_RECORD_TRASHED_VERSION, env, fn, arg, ret_count);
}

/* ---- history ------------------------------------------------------------------------------------ */

/* One record of a secret's history as a scan found it. */
typedef struct hist {
    uint32_t version;
    int64_t created_ms;
    bool destroyed;
} hist;

/* p's version records of kind (h: its history, x: a deleted secret's versions), ascending.
 * *ret_list malloc'd (NULL when none). */
static int history_collect(const sx_secrets_ctx *c, sx_secrets_record kind, const sx_secrets_place *p, hist **ret_list,
                           size_t *ret_n)
{
    char prefix[SX_SECRETS_KEY_MAX];
    size_t pl = sx_secrets_version_key(prefix, kind, p, 0);
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(c->storage, prefix, pl, NULL, 0, 0, &it);
    if (rc != 0)
        return rc;
    hist *list = NULL;
    size_t n = 0, cap = 0;
    const void *k, *v;
    size_t kl, vl;
    while ((rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL)) == 0) {
        char name[SX_SECRETS_NAME_MAX + 1];
        uint32_t ver;
        sx_secrets_history_view h;
        size_t tail = pl - strlen(p->name) - 1; /* the env prefix: the parse wants the name too */
        if (sx_secrets_history_key_parse((const char *)k + tail, kl - tail, name, &ver) != 0 ||
            sx_secrets_history_view_of(&h, v, vl) != 0) {
            rc = -EBADMSG;
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            hist *nl = realloc(list, ncap * sizeof(*nl));
            if (!nl) {
                rc = -ENOMEM;
                break;
            }
            list = nl;
            cap = ncap;
        }
        list[n++] = (hist){ver, h.created_ms, h.destroyed};
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

static unsigned max_versions(const sx_secrets_ctx *c)
{
    return c->max_versions ? c->max_versions : SX_SECRETS_MAX_VERSIONS_DEFAULT;
}

/* Read version of p from the history: the record (free with sx_storage_free()), its view into it
 * and its revision. SX_SECRETS_ENOVERSION when there is none or it was destroyed. */
static int history_get(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version, void **ret_rec,
                       sx_secrets_history_view *ret_h, uint64_t *ret_rev)
{
    char hkey[SX_SECRETS_KEY_MAX];
    size_t hkl = sx_secrets_history_key(hkey, p, version);
    void *rec = NULL;
    size_t rl = 0;
    int rc = sx_storage_get(c->storage, hkey, hkl, &rec, &rl, ret_rev);
    if (rc == -ENOENT)
        return SX_SECRETS_ENOVERSION;
    if (rc != 0)
        return rc;
    rc = sx_secrets_history_view_of(ret_h, rec, rl);
    if (rc == 0 && ret_h->destroyed)
        rc = SX_SECRETS_ENOVERSION;
    if (rc != 0) {
        sx_storage_free(rec);
        return rc;
    }
    *ret_rec = rec;
    return 0;
}

/* The head of p's metadata: the current version, its createdAt and the record's revision. */
static int meta_head(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t *ret_version, int64_t *ret_created_ms,
                     uint64_t *ret_rev)
{
    void *raw = NULL;
    sx_secret_meta_view m;
    int rc = sx_secrets_get(c, p, &raw, &m, ret_rev);
    if (rc != 0)
        return rc;
    *ret_version = m.version;
    *ret_created_ms = m.value_created_ms;
    sx_storage_free(raw);
    return 0;
}

int sx_secrets_versions(const sx_secrets_ctx *c, const sx_secrets_place *p, sx_secrets_version **ret_list,
                        size_t *ret_n)
{
    for (int attempt = 0; attempt < REVEAL_RETRIES; attempt++) {
        uint64_t rev = 0, rev2 = 0;
        uint32_t current = 0, again = 0;
        int64_t current_ms = 0, again_ms = 0;
        int rc = meta_head(c, p, &current, &current_ms, &rev);
        if (rc != 0)
            return rc;
        hist *h = NULL;
        size_t nh = 0;
        if ((rc = history_collect(c, SX_SECRETS_RECORD_HISTORY, p, &h, &nh)) != 0)
            return rc;
        rc = meta_head(c, p, &again, &again_ms, &rev2);
        if (rc != 0 || rev2 != rev) {
            free(h);
            if (rc != 0)
                return rc;
            continue;
        }
        size_t n = 0;
        sx_secrets_version *list = malloc((nh + 1) * sizeof(*list));
        if (!list) {
            free(h);
            return -ENOMEM;
        }
        if (current)
            list[n++] = (sx_secrets_version){current, current_ms, SX_SECRETS_VERSION_CURRENT};
        for (size_t i = nh; i-- > 0;)
            if (h[i].version < current || !current)
                list[n++] =
                    (sx_secrets_version){h[i].version, h[i].created_ms,
                                         h[i].destroyed ? SX_SECRETS_VERSION_DESTROYED : SX_SECRETS_VERSION_PREVIOUS};
        free(h);
        if (!n) {
            free(list);
            list = NULL;
        }
        *ret_list = list;
        *ret_n = n;
        return 0;
    }
    return SX_SECRETS_ECONTENTION;
}

int sx_secrets_deleted_history(const sx_secrets_ctx *c, const sx_secrets_place *p, sx_secrets_version **ret_list,
                               size_t *ret_n)
{
    for (int attempt = 0; attempt < REVEAL_RETRIES; attempt++) {
        sx_secrets_deleted d, again;
        uint64_t rev = 0, rev2 = 0;
        int rc = sx_secrets_deleted_get(c, p, &d, &rev);
        if (rc != 0)
            return rc;
        hist *h = NULL;
        size_t nh = 0;
        if ((rc = history_collect(c, SX_SECRETS_RECORD_TRASHED_VERSION, p, &h, &nh)) != 0)
            return rc;
        /* the same deleted record after the scan: no restore, purge or new delete came between */
        rc = sx_secrets_deleted_get(c, p, &again, &rev2);
        if (rc != 0 || rev2 != rev) {
            free(h);
            if (rc != 0)
                return rc;
            continue;
        }
        sx_secrets_version *list = nh ? malloc(nh * sizeof(*list)) : NULL;
        if (nh && !list) {
            free(h);
            return -ENOMEM;
        }
        for (size_t i = 0; i < nh; i++) {
            const hist *v = &h[nh - 1 - i];
            sx_secrets_version_state state = v->destroyed              ? SX_SECRETS_VERSION_DESTROYED
                                             : v->version == d.version ? SX_SECRETS_VERSION_CURRENT
                                                                       : SX_SECRETS_VERSION_PREVIOUS;
            list[i] = (sx_secrets_version){v->version, v->created_ms, state};
        }
        free(h);
        *ret_list = list;
        *ret_n = nh;
        return 0;
    }
    return SX_SECRETS_ECONTENTION;
}

int sx_secrets_reveal_version(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version, void **ret_blob,
                              size_t *ret_blob_len, uint64_t *ret_rev, int64_t *ret_created_ms)
{
    char vkey[SX_SECRETS_KEY_MAX];
    size_t vkl = sx_secrets_key_build(vkey, SX_SECRETS_RECORD_VALUE, p);
    for (int attempt = 0; attempt < REVEAL_RETRIES; attempt++) {
        void *rec = NULL;
        size_t rl = 0;
        sx_secrets_history_view h = {0};
        uint64_t rev = 0, rev2 = 0;
        uint32_t current = 0, again = 0;
        int64_t created_ms = 0, again_ms = 0;
        int rc = meta_head(c, p, &current, &created_ms, &rev);
        if (rc != 0)
            return rc;
        if (version == 0 || version > current)
            return SX_SECRETS_ENOVERSION;
        bool is_current = version == current;
        rc = is_current ? sx_storage_get(c->storage, vkey, vkl, &rec, &rl, NULL)
                        : history_get(c, p, version, &rec, &h, NULL);
        if (rc == -ENOENT)
            rc = SX_SECRETS_ECONTENTION; /* the value went with a delete or a new version: read again */
        if (rc == SX_SECRETS_ENOVERSION || (rc != 0 && rc != SX_SECRETS_ECONTENTION))
            return rc;
        if (rc == 0)
            rc = meta_head(c, p, &again, &again_ms, &rev2);
        if (rc != 0 || rev2 != rev) {
            sx_storage_free(rec);
            if (rc != 0 && rc != SX_SECRETS_ECONTENTION)
                return rc;
            continue;
        }
        if (!is_current) {
            created_ms = h.created_ms;
            rl = h.blob_len;
            memmove(rec, h.blob, rl); /* the blob alone, at the start of the buffer */
        }
        *ret_blob = rec;
        *ret_blob_len = rl;
        *ret_rev = rev;
        *ret_created_ms = created_ms;
        return 0;
    }
    return SX_SECRETS_ECONTENTION;
}

int sx_secrets_current_version(sx_storage *st, const sx_crypto_place *place, uint32_t *ret_version)
{
    sx_secrets_place p = {{0}};
    snprintf(p.org, sizeof(p.org), "%s", place->org);
    snprintf(p.project, sizeof(p.project), "%s", place->project);
    snprintf(p.env, sizeof(p.env), "%s", place->env);
    snprintf(p.name, sizeof(p.name), "%s", place->name);
    sx_secrets_ctx c = {.storage = st};
    void *raw = NULL;
    sx_secret_meta_view m;
    uint64_t rev;
    int rc = sx_secrets_get(&c, &p, &raw, &m, &rev);
    if (rc == -ENOENT) {
        *ret_version = 0;
        return 0;
    }
    if (rc != 0)
        return rc;
    *ret_version = m.version;
    sx_storage_free(raw);
    return 0;
}

/* ---- writes -------------------------------------------------------------------------------------- */

typedef enum write_op { OP_UPDATE, OP_DELETE, OP_SET_VALUE, OP_ROLLBACK, OP_DESTROY } write_op;

/* What a write changes: the description (update), the value (set-value), the version to store
 * again (rollback) or to destroy. */
typedef struct write_args {
    write_op op;
    const char *description; /* NULL = null */
    size_t description_len;
    const void *value;
    size_t value_len;
    uint32_t version;
} write_args;

int sx_secrets_batch(const sx_secrets_ctx *c, sx_storage_op *ops, size_t n)
{
    uint64_t t0 = sx_clock_mono_ns();
    int rc = sx_storage_batch(c->storage, ops, n, NULL);
    timed(c, SX_SECRETS_IO_BATCH, t0);
    return rc;
}

#define batch sx_secrets_batch

void sx_secrets_note_destroyed(const sx_secrets_ctx *c, const sx_secrets_place *p)
{
    if (c->destroyed)
        c->destroyed(c->destroyed_arg, p);
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

/* Up to this many history records leaving the window are deleted by number; more take a scan. */
#define PRUNE_BY_NUMBER_MAX 64

/* What one attempt of a write read and built; freed by attempt_free(). */
typedef struct attempt {
    sx_storage_op *ops;
    size_t nops;
    char (*keys)[SX_SECRETS_KEY_MAX]; /* history keys the batch deletes or writes */
    size_t nkeys;
    hist *hist;
    size_t nhist;
    void *cur_blob; /* the current value's ciphertext, moved to the history */
    size_t cur_len;
    uint64_t cur_rev;
    int64_t cur_ms;    /* its createdAt */
    uint8_t *hist_rec; /* its history record */
    size_t hist_len;
    uint8_t *blob; /* the new ciphertext */
    size_t blob_len;
    uint8_t *plain; /* rollback: the old version's plaintext (wiped) */
    size_t plain_len;
    uint8_t counter[SX_SECRETS_COUNTER_LEN];
    bool pruned; /* the batch deletes history records that hold a value */
} attempt;

static void attempt_free(attempt *a)
{
    free(a->ops);
    free(a->keys);
    free(a->hist);
    sx_storage_free(a->cur_blob);
    free(a->hist_rec);
    free(a->blob);
    if (a->plain) {
        sodium_memzero(a->plain, a->plain_len);
        free(a->plain);
    }
    memset(a, 0, sizeof(*a));
}

/* Room for every op of an attempt: the fixed ones and one per history record. */
static int attempt_alloc(attempt *a, size_t fixed)
{
    a->ops = calloc(fixed + a->nhist + 1, sizeof(*a->ops));
    a->keys = calloc(a->nhist + 1, sizeof(*a->keys));
    return a->ops && a->keys ? 0 : -ENOMEM;
}

static char *attempt_key(attempt *a, const sx_secrets_place *p, uint32_t version, size_t *ret_len)
{
    char *k = a->keys[a->nkeys++];
    *ret_len = sx_secrets_history_key(k, p, version);
    return k;
}

/* Rollback: decrypt version of p (as m names it) into a->plain. */
static int rollback_plain(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secret_meta *m, uint32_t version,
                          attempt *a)
{
    if (version == 0 || version > m->version)
        return SX_SECRETS_ENOVERSION;
    const uint8_t *blob = a->cur_blob;
    size_t blen = a->cur_len;
    void *rec = NULL;
    if (version != m->version) {
        sx_secrets_history_view h;
        int rc = history_get(c, p, version, &rec, &h, NULL);
        if (rc != 0)
            return rc;
        blob = h.blob;
        blen = h.blob_len;
    }
    size_t cap = SX_CRYPTO_VALUE_PLAIN_LEN(blen);
    a->plain = malloc(cap ? cap : 1);
    int rc = a->plain ? sx_secrets_value_decrypt_v(c, p, version, blob, blen, a->plain, cap, &a->plain_len) : -ENOMEM;
    sx_storage_free(rec);
    return rc;
}

/*
 * Build the batch of one attempt of a set-value or a rollback: the new metadata (conditioned on
 * rev), the new ciphertext (conditioned on the current one's revision, which a rotation may
 * rewrite), the env's key-state pin, the version counter, the current ciphertext moved to the
 * history, and the deletion of the history records that leave the max_versions window.
 */
static int build_set_value(const sx_secrets_ctx *c, const sx_secrets_place *p, const write_args *wa, sx_secret_meta *m,
                           attempt *a, const char *mkey, size_t mkl, const char *vkey, size_t vkl, const char *nkey,
                           size_t nkl, uint8_t *enc, uint64_t rev, int64_t now, sx_crypto_pin *pin)
{
    int rc;
    if (m->version) {
        rc = sx_storage_get(c->storage, vkey, vkl, &a->cur_blob, &a->cur_len, &a->cur_rev);
        if (rc != 0)
            return rc == -ENOENT ? SX_STORAGE_ECONDITION : rc; /* deleted meanwhile: read again */
    }
    void *nraw = NULL;
    size_t nl = 0;
    uint64_t nrev = 0;
    sx_secrets_counter cnt = {0, 0};
    rc = sx_storage_get(c->storage, nkey, nkl, &nraw, &nl, &nrev);
    if (rc == 0) {
        rc = sx_secrets_counter_decode(&cnt, nraw, nl);
        sx_storage_free(nraw);
    }
    if (rc != 0 && rc != -ENOENT)
        return rc;
    bool have_counter = rc == 0;
    if (wa->op == OP_ROLLBACK && (rc = rollback_plain(c, p, m, wa->version, a)) != 0)
        return rc;
    uint32_t old = m->version;
    uint32_t version = (cnt.last > old ? cnt.last : old) + 1;
    if (version == 0)
        return -EOVERFLOW;
    uint32_t keep_above = version > max_versions(c) ? version - max_versions(c) : 0;
    /* The history records that leave the window: by number when few (one per write in the steady
     * state, read from nothing), by a scan when the window shrank a lot or the counter predates
     * the pruned mark. */
    uint32_t prune_from = cnt.pruned < keep_above ? cnt.pruned + 1 : keep_above + 1;
    if (keep_above >= prune_from && keep_above - prune_from >= PRUNE_BY_NUMBER_MAX) {
        if ((rc = history_collect(c, SX_SECRETS_RECORD_HISTORY, p, &a->hist, &a->nhist)) != 0)
            return rc;
        size_t kept = 0;
        for (size_t i = 0; i < a->nhist; i++)
            if (a->hist[i].version <= keep_above)
                a->hist[kept++] = a->hist[i];
        a->nhist = kept;
    } else {
        size_t n = keep_above >= prune_from ? keep_above - prune_from + 1 : 0;
        if (n && (a->hist = calloc(n, sizeof(*a->hist))) == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            a->hist[i].version = prune_from + (uint32_t)i;
        a->nhist = n;
    }
    sx_crypto_place place = sx_secrets_crypto_place_v(p, version);
    const void *plain = wa->op == OP_ROLLBACK ? (const void *)a->plain : wa->value;
    size_t plain_len = wa->op == OP_ROLLBACK ? a->plain_len : wa->value_len;
    rc = sx_crypto_value_encrypt_pinned(c->crypto, &a->blob, &a->blob_len, pin, &place, plain, plain_len);
    if (rc != 0)
        return SX_SECRETS_EENCRYPT;
    if ((rc = attempt_alloc(a, 6)) != 0)
        return rc;
    m->updated_ms = now;
    m->has_value = true;
    m->version = version;
    m->value_created_ms = now;
    size_t elen = sx_meta_encode(m, enc);
    sx_storage_op *ops = a->ops;
    size_t n = 0;
    ops[n++] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                               .key = mkey,
                               .klen = mkl,
                               .val = enc,
                               .vlen = elen,
                               .cond = SX_STORAGE_COND_REV,
                               .rev = rev};
    ops[n++] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                               .key = vkey,
                               .klen = vkl,
                               .val = a->blob,
                               .vlen = a->blob_len,
                               .cond = old ? SX_STORAGE_COND_REV : SX_STORAGE_COND_NONE,
                               .rev = a->cur_rev};
    /* The env must still name the data-key version the value was encrypted under when the batch
     * commits: a data-key rotation that began after we encrypted would not re-encrypt this value
     * and would destroy its key. */
    ops[n++] = (sx_storage_op){
        .kind = SX_STORAGE_OP_CHECK, .key = pin->key, .klen = pin->klen, .cond = SX_STORAGE_COND_REV, .rev = pin->rev};
    sx_secrets_counter_encode(&(sx_secrets_counter){version, keep_above > cnt.pruned ? keep_above : cnt.pruned},
                              a->counter);
    ops[n++] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                               .key = nkey,
                               .klen = nkl,
                               .val = a->counter,
                               .vlen = sizeof(a->counter),
                               .cond = have_counter ? SX_STORAGE_COND_REV : SX_STORAGE_COND_ABSENT,
                               .rev = nrev};
    if (old && old > keep_above) {
        if ((rc = sx_secrets_history_encode(a->cur_ms, a->cur_blob, a->cur_len, &a->hist_rec, &a->hist_len)) != 0)
            return rc;
        size_t hkl;
        char *hkey = attempt_key(a, p, old, &hkl);
        ops[n++] = (sx_storage_op){
            .kind = SX_STORAGE_OP_PUT, .key = hkey, .klen = hkl, .val = a->hist_rec, .vlen = a->hist_len};
    }
    for (size_t i = 0; i < a->nhist; i++) {
        size_t hkl;
        char *hkey = attempt_key(a, p, a->hist[i].version, &hkl);
        ops[n++] = (sx_storage_op){.kind = SX_STORAGE_OP_DELETE, .key = hkey, .klen = hkl};
    }
    a->pruned = a->nhist > 0 || (old && old <= keep_above); /* the latter: overwritten, no history */
    a->nops = n;
    return 0;
}

/* Destroy: the metadata as a check (the version must not have become the current one meanwhile)
 * and the history record replaced by its tombstone, conditioned on the revision read. */
static int build_destroy(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secret_meta *m, uint32_t version,
                         attempt *a, const char *mkey, size_t mkl, uint64_t rev)
{
    if (version == m->version)
        return SX_SECRETS_ECURRENT;
    if (version == 0 || version > m->version)
        return SX_SECRETS_ENOVERSION;
    if ((a->keys = calloc(1, sizeof(*a->keys))) == NULL || (a->ops = calloc(2, sizeof(*a->ops))) == NULL)
        return -ENOMEM;
    size_t hkl;
    char *hkey = attempt_key(a, p, version, &hkl);
    void *rec = NULL;
    uint64_t hrev = 0;
    sx_secrets_history_view h;
    int rc = history_get(c, p, version, &rec, &h, &hrev);
    if (rc != 0)
        return rc;
    rc = sx_secrets_history_encode(h.created_ms, NULL, 0, &a->hist_rec, &a->hist_len);
    sx_storage_free(rec);
    if (rc != 0)
        return rc;
    a->ops[0] =
        (sx_storage_op){.kind = SX_STORAGE_OP_CHECK, .key = mkey, .klen = mkl, .cond = SX_STORAGE_COND_REV, .rev = rev};
    a->ops[1] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                                .key = hkey,
                                .klen = hkl,
                                .val = a->hist_rec,
                                .vlen = a->hist_len,
                                .cond = SX_STORAGE_COND_REV,
                                .rev = hrev};
    a->nops = 2;
    return 0;
}

/* Delete: the metadata (conditioned on rev), the value and every history record. */
static int build_delete(const sx_secrets_ctx *c, const sx_secrets_place *p, attempt *a, const char *mkey, size_t mkl,
                        const char *vkey, size_t vkl, uint64_t rev)
{
    int rc = history_collect(c, SX_SECRETS_RECORD_HISTORY, p, &a->hist, &a->nhist);
    if (rc == 0)
        rc = attempt_alloc(a, 2);
    if (rc != 0)
        return rc;
    a->ops[0] = (sx_storage_op){
        .kind = SX_STORAGE_OP_DELETE, .key = mkey, .klen = mkl, .cond = SX_STORAGE_COND_REV, .rev = rev};
    a->ops[1] = (sx_storage_op){.kind = SX_STORAGE_OP_DELETE, .key = vkey, .klen = vkl};
    a->nops = 2;
    for (size_t i = 0; i < a->nhist; i++) {
        size_t hkl;
        char *hkey = attempt_key(a, p, a->hist[i].version, &hkl);
        a->ops[a->nops++] = (sx_storage_op){.kind = SX_STORAGE_OP_DELETE, .key = hkey, .klen = hkl};
    }
    return 0;
}

/* One write: read, check, batch; again while another writer got in between. */
static int write_apply(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                       const write_args *wa, sx_secret_meta *m, uint64_t *ret_rev)
{
    sx_storage *st = c->storage;
    char mkey[SX_SECRETS_KEY_MAX], vkey[SX_SECRETS_KEY_MAX], nkey[SX_SECRETS_KEY_MAX];
    size_t mkl = sx_secrets_key_build(mkey, SX_SECRETS_RECORD_META, p);
    size_t vkl = sx_secrets_key_build(vkey, SX_SECRETS_RECORD_VALUE, p);
    size_t nkl = sx_secrets_key_build(nkey, SX_SECRETS_RECORD_COUNTER, p);
    uint8_t enc[SX_META_MAX];

    for (int attempt_no = 0; attempt_no < WRITE_RETRIES; attempt_no++) {
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
        attempt a;
        memset(&a, 0, sizeof(a));
        sx_crypto_pin pin;
        sx_storage_op one[1];
        sx_storage_op *ops = one;
        size_t nops = 1;
        a.cur_ms = m->value_created_ms;
        if (wa->op == OP_UPDATE) {
            m->updated_ms = now;
            set_description(m, wa->description, wa->description_len);
            size_t elen = sx_meta_encode(m, enc);
            one[0] = (sx_storage_op){.kind = SX_STORAGE_OP_PUT,
                                     .key = mkey,
                                     .klen = mkl,
                                     .val = enc,
                                     .vlen = elen,
                                     .cond = SX_STORAGE_COND_REV,
                                     .rev = rev};
        } else {
            if (wa->op == OP_DELETE)
                rc = build_delete(c, p, &a, mkey, mkl, vkey, vkl, rev);
            else if (wa->op == OP_DESTROY)
                rc = build_destroy(c, p, m, wa->version, &a, mkey, mkl, rev);
            else
                rc = build_set_value(c, p, wa, m, &a, mkey, mkl, vkey, vkl, nkey, nkl, enc, rev, now, &pin);
            if (rc == SX_STORAGE_ECONDITION) {
                attempt_free(&a);
                continue;
            }
            if (rc != 0) {
                attempt_free(&a);
                return rc;
            }
            ops = a.ops;
            nops = a.nops;
            if (wa->op == OP_SET_VALUE || wa->op == OP_ROLLBACK)
                sx_testpoint("set-value.batch");
        }
        rc = batch(c, ops, nops);
        uint64_t new_rev = ops[0].ret_rev;
        /* ciphertext deleted: a destroyed version, a hard delete, or history left the window */
        bool destroyed = wa->op == OP_DESTROY || (wa->op == OP_DELETE && (m->has_value || a.nhist)) ||
                         ((wa->op == OP_SET_VALUE || wa->op == OP_ROLLBACK) && a.pruned);
        attempt_free(&a);
        if (rc == 0) {
            if (destroyed)
                sx_secrets_note_destroyed(c, p);
            *ret_rev = wa->op == OP_DESTROY ? rev : new_rev;
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
    if (c->recovery_window)
        return sx_secrets_trash_move(c, p, cond);
    write_args a = {.op = OP_DELETE};
    return write_meta(c, p, cond, &a, NULL, NULL);
}

int sx_secrets_set_value(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                         const void *value, size_t len, sx_secret_meta *ret_meta, uint64_t *ret_rev)
{
    write_args a = {.op = OP_SET_VALUE, .value = value, .value_len = len};
    return write_meta(c, p, cond, &a, ret_meta, ret_rev);
}

int sx_secrets_rollback(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond,
                        uint32_t version, sx_secret_meta *ret_meta, uint64_t *ret_rev)
{
    write_args a = {.op = OP_ROLLBACK, .version = version};
    return write_meta(c, p, cond, &a, ret_meta, ret_rev);
}

int sx_secrets_version_destroy(const sx_secrets_ctx *c, const sx_secrets_place *p, uint32_t version)
{
    write_args a = {.op = OP_DESTROY, .version = version};
    return write_meta(c, p, NULL, &a, NULL, NULL);
}
