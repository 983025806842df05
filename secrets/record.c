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
 */
#include "secrets/secrets.h"

#include "common/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define META_FORMAT 1

size_t sx_meta_encode(const sx_secret_meta *m, uint8_t *buf)
{
    size_t dlen = m->has_description ? m->description_len : 0;
    buf[0] = META_FORMAT;
    buf[1] = (uint8_t)((m->has_value ? 1 : 0) | (m->has_description ? 2 : 0));
    sx_be64_put(buf + 2, (uint64_t)m->created_ms);
    sx_be64_put(buf + 10, (uint64_t)m->updated_ms);
    buf[18] = (uint8_t)(dlen >> 8);
    buf[19] = (uint8_t)dlen;
    memcpy(buf + 20, m->description, dlen);
    return 20 + dlen;
}

int sx_meta_view(sx_secret_meta_view *m, const uint8_t *buf, size_t len)
{
    if (len < 20 || buf[0] != META_FORMAT || (buf[1] & ~3u))
        return -EBADMSG;
    size_t dlen = ((size_t)buf[18] << 8) | buf[19];
    if (dlen > SX_SECRETS_DESCRIPTION_MAX || len != 20 + dlen)
        return -EBADMSG;
    m->has_value = buf[1] & 1;
    m->has_description = (buf[1] & 2) != 0;
    if (!m->has_description && dlen)
        return -EBADMSG;
    m->created_ms = (int64_t)sx_be64_get(buf + 2);
    m->updated_ms = (int64_t)sx_be64_get(buf + 10);
    m->description_len = dlen;
    m->description = (const char *)buf + 20;
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
    m->description_len = v.description_len;
    memcpy(m->description, v.description, v.description_len);
    m->description[v.description_len] = '\0';
    return 0;
}

void sx_meta_view_of(sx_secret_meta_view *v, const sx_secret_meta *m)
{
    v->created_ms = m->created_ms;
    v->updated_ms = m->updated_ms;
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
