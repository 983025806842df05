/*
 * record.c - the secret metadata record and the storage keys of secrets.
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
#include "server/api.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define META_FORMAT 1

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

size_t sx_meta_encode(const sx_secret_meta *m, uint8_t *buf)
{
    size_t dlen = m->has_description ? m->description_len : 0;
    buf[0] = META_FORMAT;
    buf[1] = (uint8_t)((m->has_value ? 1 : 0) | (m->has_description ? 2 : 0));
    put_u64(buf + 2, (uint64_t)m->created_ms);
    put_u64(buf + 10, (uint64_t)m->updated_ms);
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
    if (dlen > SX_DESCRIPTION_MAX || len != 20 + dlen)
        return -EBADMSG;
    m->has_value = buf[1] & 1;
    m->has_description = (buf[1] & 2) != 0;
    if (!m->has_description && dlen)
        return -EBADMSG;
    m->created_ms = (int64_t)get_u64(buf + 2);
    m->updated_ms = (int64_t)get_u64(buf + 10);
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

size_t sx_key_build(char *buf, char kind, const char *org, const char *project, const char *env, const char *name)
{
    size_t n = 0;
    buf[n++] = kind;
    buf[n++] = '/';
    const char *parts[] = {org, project, env, name};
    for (int i = 0; i < 4; i++) {
        if (!parts[i])
            break;
        size_t l = strlen(parts[i]);
        memcpy(buf + n, parts[i], l);
        n += l;
        if (i < 3)
            buf[n++] = '/';
    }
    buf[n] = '\0';
    return n;
}
