/*
 * storage.c - the backend registry, sx_storage_open(), error sentences and the helpers the
 * backends share.
 *
 * The registry is a NULL-terminated array of const backend tables, in the manner of curl's TLS
 * backends: a caller names a backend in its options and this file finds the table and calls its
 * open slot. Nothing here logs; errors come back as negative errno values and sentences.
 */
#include "storage/storage_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const sx_storage_ops *const sx_storage_backends[] = {
    &sx_storage_rocksdb_ops,
    &sx_storage_memory_ops,
#ifdef SX_HAVE_POSTGRES
    &sx_storage_postgres_ops,
#endif
    NULL,
};

const sx_storage_ops *sx_storage_backend_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; sx_storage_backends[i]; i++)
        if (strcmp(sx_storage_backends[i]->name, name) == 0)
            return sx_storage_backends[i];
    return NULL;
}

int sx_storage_open(const sx_storage_options *opt, sx_storage **ret, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!opt || !ret) {
        sx_fail(err, errlen, 0, "storage: no options given");
        return -EINVAL;
    }
    const char *name = opt->backend ? opt->backend : "rocksdb";
    const sx_storage_ops *ops = sx_storage_backend_find(name);
    if (!ops || !ops->open) {
        char known[128] = "";
        for (size_t i = 0; sx_storage_backends[i]; i++)
            if (sx_storage_backends[i]->open != NULL)
                snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
                         sx_storage_backends[i]->name);
        sx_fail(err, errlen, 0, "storage: unknown backend \"%.64s\" (built in: %s)", name, known);
        return -EINVAL;
    }
    sx_storage *s = NULL;
    int r = ops->open(opt, &s, err, errlen);
    if (r < 0)
        return r;
    *ret = s;
    return 0;
}

const char *sx_storage_strerror(int code)
{
    switch (code) {
    case SX_STORAGE_DONE:
        return "end of iteration";
    case -ENOENT:
        return "no such record";
    case -EEXIST:
        return "record already exists";
    case -EINVAL:
        return "invalid argument to a storage call";
    case -EIO:
        return "storage I/O error or corrupt data";
    case -ENOMEM:
        return "out of memory";
    case -EBUSY:
        return "the store is in use by another process";
    case -ENOSPC:
        return "no space left on the storage device";
    case -ENOTSUP:
        return "operation not supported by this storage backend";
    case -EACCES:
        return "permission denied (on the storage directory, or the database refused the credentials)";
    case -ENOTDIR:
        return "storage path is not a directory";
    case -EROFS:
        return "storage is read-only (a read-only file system or a database replica)";
    case -ENOTCONN:
        return "the storage database cannot be reached (reconnecting with backoff)";
    case -ETIMEDOUT:
        return "the storage database did not answer in time";
    case -EAGAIN:
        return "every storage connection is busy; retry";
    default:
        return code <= -1000 || code == 0 ? sx_strerror(code) : "storage error";
    }
}

void sx_storage_free(void *p)
{
    free(p);
}

/* qsort context is not portable in C11; sort an array of pointers to ops instead. */
int sx_storage_count(sx_storage *s, const void *prefix, size_t plen, uint64_t *ret_n)
{
    if (!ret_n)
        return -EINVAL;
    sx_storage_iter *it;
    int rc = sx_storage_iter_new(s, prefix, plen, NULL, 0, 0, &it);
    if (rc < 0)
        return rc;
    uint64_t n = 0;
    while ((rc = sx_storage_iter_next(it, NULL, NULL, NULL, NULL, NULL)) == 0)
        n++;
    sx_storage_iter_free(it);
    if (rc < 0)
        return rc;
    *ret_n = n;
    return 0;
}

static int cmp_op_ptr(const void *a, const void *b)
{
    const sx_storage_op *x = *(const sx_storage_op *const *)a;
    const sx_storage_op *y = *(const sx_storage_op *const *)b;
    return sxs_keycmp(x->key, x->klen, y->key, y->klen);
}

int sxs_batch_validate(const sx_storage_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ops[i].cond < SX_STORAGE_COND_NONE || ops[i].cond > SX_STORAGE_COND_REV)
            return -EINVAL;
    if (n < 2)
        return 0;
    if (n <= 8) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (sxs_keycmp(ops[i].key, ops[i].klen, ops[j].key, ops[j].klen) == 0)
                    return -EINVAL;
        return 0;
    }
    const sx_storage_op **idx = malloc(n * sizeof(*idx));
    if (!idx)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        idx[i] = &ops[i];
    qsort(idx, n, sizeof(*idx), cmp_op_ptr);
    int r = 0;
    for (size_t i = 1; i < n && r == 0; i++)
        if (cmp_op_ptr(&idx[i - 1], &idx[i]) == 0)
            r = -EINVAL;
    free(idx);
    return r;
}
