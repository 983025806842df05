/*
 * keyinfo.c - what an operator may know about the keys without touching key material: an
 * environment's wrapped data-key versions with the master version each is wrapped under (read
 * from the d/ records' headers, never unwrapped).
 */
#include "crypto/crypto_internal.h"

#include <stdlib.h>
#include <string.h>

int sx_crypto_datakey_versions(sx_crypto *c, const sx_crypto_place *env, sx_crypto_datakey_info *ret, size_t cap,
                               size_t *ret_n)
{
    char prefix[256];
    size_t pl = sx_crypto_dk_prefix(prefix, sizeof(prefix), env);
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(c->st, prefix, pl, NULL, 0, 0, &it);
    if (rc < 0)
        return rc;
    size_t n = 0;
    const void *k, *v;
    size_t kl, vl;
    while (n < cap && (rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, NULL)) == 0) {
        char hex[9] = {0};
        if (kl != pl + 8)
            continue;
        memcpy(hex, (const char *)k + pl, 8);
        sx_crypto_datakey_info *info = &ret[n++];
        info->version = (uint32_t)strtoul(hex, NULL, 16);
        if (sx_crypto_datakey_master(&info->master, v, vl) < 0)
            info->master = 0; /* malformed: unwrapping it will report the error */
    }
    sx_storage_iter_free(it);
    if (rc < 0)
        return rc;
    *ret_n = n;
    return 0;
}
