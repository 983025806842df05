/*
 * rocksdump.c - see rocksdump.h.
 */
#include "rocksdump.h"

#include <rocksdb/c.h>
#include <stdio.h>

#define NCF 2

int sx_test_rocksdb_dump(const char *path, sx_test_buf *out)
{
    const char *names[NCF] = {"default", "records"};
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_options_set_info_log_level(opts, 4); /* FATAL: write as little as possible */
    const rocksdb_options_t *cfo[NCF] = {opts, opts};
    rocksdb_column_family_handle_t *cf[NCF] = {NULL, NULL};
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_for_read_only_column_families(opts, path, NCF, names, cfo, cf, 0, &err);
    if (err) {
        fprintf(stderr, "cannot open %s read-only: %s\n", path, err);
        rocksdb_free(err);
        rocksdb_options_destroy(opts);
        return -1;
    }
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    int rc = 0;
    for (int i = 0; i < NCF && rc == 0; i++) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, cf[i]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t kl = 0, vl = 0;
            const char *k = rocksdb_iter_key(it, &kl);
            const char *v = rocksdb_iter_value(it, &vl);
            if (sx_test_buf_append((char *)k, 1, kl, out) != kl || sx_test_buf_append("\n", 1, 1, out) != 1 ||
                sx_test_buf_append((char *)v, 1, vl, out) != vl || sx_test_buf_append("\n", 1, 1, out) != 1) {
                rc = -1;
                break;
            }
        }
        rocksdb_iter_get_error(it, &err);
        if (err) {
            fprintf(stderr, "reading %s: %s\n", path, err);
            rocksdb_free(err);
            err = NULL;
            rc = -1;
        }
        rocksdb_iter_destroy(it);
    }
    rocksdb_readoptions_destroy(ro);
    for (int i = 0; i < NCF; i++)
        rocksdb_column_family_handle_destroy(cf[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(opts);
    return rc;
}
