/*
 * record.c - the secret metadata record, the storage keys of secrets and the name rule.
 *
 * Key layout (storage/LAYOUT.md): "m/{org}/{project}/{env}/{name}" holds the metadata below,
 * "v/{org}/{project}/{env}/{name}" the value's ciphertext blob (crypto/FORMAT.md). Names and
 * scopes can only hold [A-Za-z0-9._-], so '/' separates them unambiguously and the prefix
 * "m/{org}/{project}/{env}/" lists exactly one environment.
 *
 * Metadata value, format 1 (big-endian integers):
 *   u8  format = 1
 *   u8  flags: bit 0 has a value, bit 1 description is not null
 *   u64 createdAt, ms since the epoch
 *   u64 updatedAt, ms since the epoch
 *   u16 description length (<= 1024)
 *   ... description bytes (UTF-8)
 * Format 2 (a secret whose value has a version) is format 1 with, before the description bytes:
 *   u32 the current value's version (>= 1)
 *   u64 the current version's createdAt, ms since the epoch
 * A format 1 record with a value is version 1, created at its updatedAt.
 *
 * History record "h/{org}/{project}/{env}/{name}/{%08x version}" (a previous version):
 *   u8  format = 1
 *   u8  flags: bit 0 destroyed (then nothing follows the createdAt)
 *   u64 createdAt of the version, ms since the epoch
 *   ... the version's ciphertext blob
 * Deleted-secret record "b/{org}/{project}/{env}/{name}" (a secret kept for its recovery window):
 *   u8  format = 1
 *   i64 deletedAt, ms since the epoch
 *   i64 purgeAt, ms since the epoch
 *   u32 versions with a value kept (its current one and the previous ones not destroyed)
 *   ... the metadata record the secret had (format 1 or 2 above)
 * Its versions are "x/{org}/{project}/{env}/{name}/{%08x version}", history records as above (the
 * current version's too), keyed like the h/ records they were.
 *
 * Counter record "n/{org}/{project}/{env}/{name}":
 *   u8  format = 2 (format 1 ends after the next field; its pruned mark reads as 0)
 *   u32 the last version given out for the name
 *   u32 the pruned mark: every history record at or below it is gone
 */
#include "secrets/secrets.h"

#include "common/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_FORMAT         1
#define META_FORMAT_VERSION 2
#define META_HEAD           20 /* format 1 before the description */
#define META_HEAD_VERSION   32 /* format 2 */
#define HISTORY_FORMAT      1
#define HISTORY_HEAD        10
#define HISTORY_DESTROYED   1u

size_t sx_meta_encode(const sx_secret_meta *m, uint8_t *buf)
{
    size_t dlen = m->has_description ? m->description_len : 0;
    size_t head = m->version ? META_HEAD_VERSION : META_HEAD;
    buf[0] = m->version ? META_FORMAT_VERSION : META_FORMAT;
    buf[1] = (uint8_t)((m->has_value ? 1 : 0) | (m->has_description ? 2 : 0));
    sx_be64_put(buf + 2, (uint64_t)m->created_ms);
    sx_be64_put(buf + 10, (uint64_t)m->updated_ms);
    buf[18] = (uint8_t)(dlen >> 8);
    buf[19] = (uint8_t)dlen;
    if (m->version) {
        sx_be32_put(buf + 20, m->version);
        sx_be64_put(buf + 24, (uint64_t)m->value_created_ms);
    }
    memcpy(buf + head, m->description, dlen);
    return head + dlen;
}

int sx_meta_view(sx_secret_meta_view *m, const uint8_t *buf, size_t len)
{
    if (len < META_HEAD || (buf[0] != META_FORMAT && buf[0] != META_FORMAT_VERSION) || (buf[1] & ~3u))
        return -EBADMSG;
    size_t head = buf[0] == META_FORMAT ? META_HEAD : META_HEAD_VERSION;
    size_t dlen = ((size_t)buf[18] << 8) | buf[19];
    if (dlen > SX_SECRETS_DESCRIPTION_MAX || len != head + dlen)
        return -EBADMSG;
    m->has_value = buf[1] & 1;
    m->has_description = (buf[1] & 2) != 0;
    if (!m->has_description && dlen)
        return -EBADMSG;
    m->created_ms = (int64_t)sx_be64_get(buf + 2);
    m->updated_ms = (int64_t)sx_be64_get(buf + 10);
    if (buf[0] == META_FORMAT) {
        m->version = m->has_value ? 1 : 0;
        m->value_created_ms = m->has_value ? m->updated_ms : 0;
    } else {
        m->version = sx_be32_get(buf + 20);
        m->value_created_ms = (int64_t)sx_be64_get(buf + 24);
        if (m->version == 0 || !m->has_value)
            return -EBADMSG;
    }
    m->description_len = dlen;
    m->description = (const char *)buf + head;
    return 0;
}

int sx_meta_decode(sx_secret_meta *m, const uint8_t *buf, size_t len)
{
    sx_secret_meta_view v;
    int rc = sx_meta_view(&v, buf, len);
    if (rc != 0)
        return rc;
    m->has_value = v.has_value;
    m->has_description = v.has_description;
    m->created_ms = v.created_ms;
    m->updated_ms = v.updated_ms;
    m->version = v.version;
    m->value_created_ms = v.value_created_ms;
    m->description_len = v.description_len;
    memcpy(m->description, v.description, v.description_len);
    m->description[v.description_len] = '\0';
    return 0;
}

void sx_meta_view_of(sx_secret_meta_view *v, const sx_secret_meta *m)
{
    v->created_ms = m->created_ms;
    v->updated_ms = m->updated_ms;
    v->version = m->version;
    v->value_created_ms = m->value_created_ms;
    v->has_value = m->has_value;
    v->has_description = m->has_description;
    v->description_len = m->has_description ? m->description_len : 0;
    v->description = m->description;
}

size_t sx_secrets_key_build(char *buf, sx_secrets_record kind, const sx_secrets_place *p)
{
    size_t n = 0;
    buf[n++] = (char)kind;
    buf[n++] = '/';
    const char *parts[] = {p->org, p->project, p->env, p->name};
    for (int i = 0; i < 4; i++) {
        size_t l = strlen(parts[i]);
        memcpy(buf + n, parts[i], l);
        n += l;
        if (i < 3)
            buf[n++] = '/';
    }
    buf[n] = '\0';
    return n;
}

size_t sx_secrets_history_key(char *buf, const sx_secrets_place *p, uint32_t version)
{
    return sx_secrets_version_key(buf, SX_SECRETS_RECORD_HISTORY, p, version);
}

size_t sx_secrets_version_key(char *buf, sx_secrets_record kind, const sx_secrets_place *p, uint32_t version)
{
    size_t n = sx_secrets_key_build(buf, kind, p);
    buf[n++] = '/';
    if (version)
        n += (size_t)snprintf(buf + n, 9, "%08x", version);
    buf[n] = '\0';
    return n;
}

int sx_secrets_history_key_parse(const char *tail, size_t len, char *name, uint32_t *ret_version)
{
    if (len < 10 || len - 9 > SX_SECRETS_NAME_MAX || tail[len - 9] != '/')
        return -EBADMSG;
    uint32_t v = 0;
    for (size_t i = len - 8; i < len; i++) {
        char ch = tail[i];
        unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                                              : 16;
        if (d > 15)
            return -EBADMSG;
        v = v << 4 | d;
    }
    memcpy(name, tail, len - 9);
    name[len - 9] = '\0';
    *ret_version = v;
    return 0;
}

int sx_secrets_history_view_of(sx_secrets_history_view *h, const uint8_t *rec, size_t len)
{
    if (len < HISTORY_HEAD || rec[0] != HISTORY_FORMAT || (rec[1] & ~HISTORY_DESTROYED))
        return -EBADMSG;
    h->destroyed = rec[1] & HISTORY_DESTROYED;
    if (h->destroyed != (len == HISTORY_HEAD))
        return -EBADMSG;
    h->created_ms = (int64_t)sx_be64_get(rec + 2);
    h->blob = h->destroyed ? NULL : rec + HISTORY_HEAD;
    h->blob_len = len - HISTORY_HEAD;
    return 0;
}

int sx_secrets_history_encode(int64_t created_ms, const uint8_t *blob, size_t blob_len, uint8_t **ret_rec,
                              size_t *ret_len)
{
    size_t len = HISTORY_HEAD + (blob ? blob_len : 0);
    uint8_t *rec = malloc(len);
    if (!rec)
        return -ENOMEM;
    rec[0] = HISTORY_FORMAT;
    rec[1] = blob ? 0 : HISTORY_DESTROYED;
    sx_be64_put(rec + 2, (uint64_t)created_ms);
    if (blob)
        memcpy(rec + HISTORY_HEAD, blob, blob_len);
    *ret_rec = rec;
    *ret_len = len;
    return 0;
}

size_t sx_secrets_env_prefix(char *buf, sx_secrets_record kind, const sx_crypto_place *env)
{
    sx_secrets_place p = {{0}};
    snprintf(p.org, sizeof(p.org), "%s", env->org);
    snprintf(p.project, sizeof(p.project), "%s", env->project);
    snprintf(p.env, sizeof(p.env), "%s", env->env);
    return sx_secrets_key_build(buf, kind, &p);
}

int sx_secrets_store_count(sx_storage *st, uint64_t *ret_secrets, uint64_t *ret_values)
{
    static const char meta[] = {SX_SECRETS_RECORD_META, '/'}, value[] = {SX_SECRETS_RECORD_VALUE, '/'};
    uint64_t n = 0;
    int rc;
    if (ret_secrets) {
        if ((rc = sx_storage_count(st, meta, sizeof meta, &n)) < 0)
            return rc;
        *ret_secrets = n;
    }
    if (ret_values) {
        if ((rc = sx_storage_count(st, value, sizeof value, &n)) < 0)
            return rc;
        *ret_values = n;
    }
    return 0;
}

bool sx_secrets_name_valid(const char *s, size_t len)
{
    if (len < 1 || len > SX_SECRETS_NAME_MAX || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

int sx_secrets_counter_decode(sx_secrets_counter *cnt, const uint8_t *rec, size_t len)
{
    if (len == 5 && rec[0] == 1) {
        *cnt = (sx_secrets_counter){sx_be32_get(rec + 1), 0};
        return 0;
    }
    if (len == SX_SECRETS_COUNTER_LEN && rec[0] == 2) {
        sx_secrets_counter c = {sx_be32_get(rec + 1), sx_be32_get(rec + 5)};
        if (c.pruned > c.last)
            return -EBADMSG;
        *cnt = c;
        return 0;
    }
    return -EBADMSG;
}

void sx_secrets_counter_encode(const sx_secrets_counter *cnt, uint8_t out[SX_SECRETS_COUNTER_LEN])
{
    out[0] = 2;
    sx_be32_put(out + 1, cnt->last);
    sx_be32_put(out + 5, cnt->pruned);
}

#define TRASH_FORMAT 1
#define TRASH_HEAD   21

int sx_secrets_trash_view_of(sx_secrets_trash_view *t, const uint8_t *rec, size_t len)
{
    if (len < TRASH_HEAD || rec[0] != TRASH_FORMAT)
        return -EBADMSG;
    t->deleted_ms = (int64_t)sx_be64_get(rec + 1);
    t->purge_ms = (int64_t)sx_be64_get(rec + 9);
    t->versions = sx_be32_get(rec + 17);
    t->meta = rec + TRASH_HEAD;
    t->meta_len = len - TRASH_HEAD;
    sx_secret_meta_view m;
    return sx_meta_view(&m, t->meta, t->meta_len) == 0 ? 0 : -EBADMSG;
}

int sx_secrets_trash_encode(const sx_secrets_trash_view *t, uint8_t **ret_rec, size_t *ret_len)
{
    size_t len = TRASH_HEAD + t->meta_len;
    uint8_t *rec = malloc(len);
    if (!rec)
        return -ENOMEM;
    rec[0] = TRASH_FORMAT;
    sx_be64_put(rec + 1, (uint64_t)t->deleted_ms);
    sx_be64_put(rec + 9, (uint64_t)t->purge_ms);
    sx_be32_put(rec + 17, t->versions);
    memcpy(rec + TRASH_HEAD, t->meta, t->meta_len);
    *ret_rec = rec;
    *ret_len = len;
    return 0;
}

int sx_secrets_key_parse(const char *key, size_t len, sx_secrets_record kind, sx_secrets_place *ret)
{
    if (len < 2 || key[0] != (char)kind || key[1] != '/')
        return -EBADMSG;
    sx_secrets_place p;
    memset(&p, 0, sizeof(p));
    char *parts[4] = {p.org, p.project, p.env, p.name};
    size_t caps[4] = {sizeof(p.org), sizeof(p.project), sizeof(p.env), sizeof(p.name)};
    size_t at = 2;
    for (int i = 0; i < 4; i++) {
        size_t end = at;
        while (end < len && key[end] != '/')
            end++;
        if (end == at || end - at >= caps[i] || (i < 3 && end == len) || (i == 3 && end != len))
            return -EBADMSG;
        memcpy(parts[i], key + at, end - at);
        at = end + 1;
    }
    *ret = p;
    return 0;
}
