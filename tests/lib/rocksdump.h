/*
 * rocksdump.h - every record of a RocksDB store as the database itself sees it, for tests that
 * search a stopped server's data for what must not be there. A search of the raw files alone can
 * miss text that RocksDB stored compressed (its SST blocks use Snappy) or shortened (prefix-
 * compressed keys); the records read back through RocksDB cannot hide anything.
 */
#ifndef SX_TEST_ROCKSDUMP_H
#define SX_TEST_ROCKSDUMP_H

#include "testutil.h"

/* Open the store at path read-only (its column families "default" and "records"), and append
 * every key and value of both to out, each followed by a newline. 0, or -1 with a message on
 * stderr. Run it after any scan of the raw files: an open may add an info LOG file. */
int sx_test_rocksdb_dump(const char *path, sx_test_buf *out);

#endif
