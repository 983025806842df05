/*
 * records.h - giving an older store's authority records their MACs (server/records.c).
 */
#ifndef SX_SERVER_RECORDS_H
#define SX_SERVER_RECORDS_H

#include <stddef.h>

#include "crypto/crypto.h"
#include "storage/storage.h"

/*
 * When the keyring says the store's authority records (t/, r/, s/audit.head) were written without
 * MACs, MAC every one that lacks a valid MAC and then set the keyring's flag; otherwise do nothing.
 * Run once after unsealing, before anything reads those records. *ret_count gets how many records
 * were rewritten. 0, or a storage / crypto error with a reason in err (the server does not start).
 */
int sx_records_upgrade(sx_storage *st, sx_crypto *c, size_t *ret_count, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif /* SX_SERVER_RECORDS_H */
