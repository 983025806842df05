/*
 * records.c - the one-time upgrade that gives every authority record of an older store its MAC.
 *
 * Token records (t/), rotation records (r/) and the audit chain head (s/audit.head) end with a
 * record MAC (crypto.h) and are refused without a valid one. A store made before record MACs
 * existed holds them without; the keyring says which kind of store this is (a flag inside the
 * sealed keyring, which nobody without the seal can clear). On the first start after unsealing
 * such a store, every such record that does not already carry a valid MAC gets one (a COND_REV
 * rewrite, so a concurrent writer is never overwritten), and then the flag is set. From then on a
 * record without a valid MAC is an edit, whoever made it. Every step is idempotent: an interrupted
 * upgrade simply runs again on the next start, and two nodes upgrading at once do the same work.
 */
#include "ops/ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending {
    char *key;
    size_t klen;
    uint8_t *val; /* the old bytes followed by room for the MAC */
    size_t vlen;
    uint64_t rev;
} pending;

static const char *const prefixes[] = {"t/", "r/", "s/audit.head"};

/* Collect the records under prefix that lack a valid MAC. */
static int collect(sx_storage *st, const uint8_t *mac_key, const char *prefix, pending **list, size_t *n, size_t *cap)
{
    sx_storage_iter *it = NULL;
    int rc = sx_storage_iter_new(st, prefix, strlen(prefix), NULL, 0, 0, &it);
    if (rc < 0)
        return rc;
    const void *k, *v;
    size_t kl, vl;
    uint64_t rev;
    while ((rc = sx_storage_iter_next(it, &k, &kl, &v, &vl, &rev)) == 0) {
        size_t body;
        if (sx_crypto_record_check(&body, mac_key, k, kl, v, vl) == 0)
            continue; /* done by an earlier (interrupted) run or another node */
        if (vl + SX_CRYPTO_RECORD_MACBYTES > SX_STORAGE_MAX_VALUE) {
            rc = -EFBIG;
            break;
        }
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            pending *nl = realloc(*list, nc * sizeof(*nl));
            if (!nl) {
                rc = -ENOMEM;
                break;
            }
            *list = nl;
            *cap = nc;
        }
        pending *p = &(*list)[*n];
        p->key = malloc(kl);
        p->val = malloc(vl + SX_CRYPTO_RECORD_MACBYTES);
        if (!p->key || !p->val) {
            free(p->key);
            free(p->val);
            rc = -ENOMEM;
            break;
        }
        memcpy(p->key, k, kl);
        memcpy(p->val, v, vl);
        p->klen = kl;
        p->vlen = vl;
        p->rev = rev;
        (*n)++;
    }
    sx_storage_iter_free(it);
    return rc == SX_STORAGE_DONE ? 0 : rc;
}

int sx_records_upgrade(sx_storage *st, sx_crypto *c, size_t *ret_count, char *err, size_t errlen)
{
    if (sx_crypto_records_authenticated(c)) {
        *ret_count = 0;
        return 0;
    }
    const uint8_t *mac_key = sx_crypto_system_key(c, SX_CRYPTO_KEY_RECORD);
    pending *list = NULL;
    size_t n = 0, cap = 0, done = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        rc = collect(st, mac_key, prefixes[i], &list, &n, &cap);
    if (rc != 0)
        snprintf(err, errlen, "cannot read the records to authenticate: %s", sx_storage_strerror(rc));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        pending *p = &list[i];
        sx_crypto_record_mac(p->val + p->vlen, mac_key, p->key, p->klen, p->val, p->vlen);
        sx_storage_op op = {.kind = SX_STORAGE_OP_PUT,
                            .key = p->key,
                            .klen = p->klen,
                            .val = p->val,
                            .vlen = p->vlen + SX_CRYPTO_RECORD_MACBYTES,
                            .cond = SX_STORAGE_COND_REV,
                            .rev = p->rev};
        rc = sx_storage_batch(st, &op, 1, NULL);
        if (rc == SX_STORAGE_ECONDITION)
            rc = 0; /* rewritten meanwhile by a writer that MACs it, or deleted */
        else if (rc == 0)
            done++;
        else
            snprintf(err, errlen, "cannot authenticate a stored record: %s", sx_storage_strerror(rc));
    }
    for (size_t i = 0; i < n; i++) {
        free(list[i].key);
        free(list[i].val);
    }
    free(list);
    if (rc == 0 && (rc = sx_crypto_records_authenticated_set(c)) != 0)
        snprintf(err, errlen, "cannot record the upgrade in the keyring: %s", sx_crypto_strerror(rc));
    if (rc == 0)
        *ret_count = done;
    return rc;
}
