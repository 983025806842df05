/*
 * secrets_internal.h - what the files of the secrets module share and nothing outside it uses:
 * the timed batch, the write retry bound, the soft delete that sx_secrets_delete() hands over to
 * trash.c, and the note to the ctx's destroyed callback.
 */
#ifndef SX_SECRETS_INTERNAL_H
#define SX_SECRETS_INTERNAL_H

#include "secrets/secrets.h"

/* Batches of one write while other writers keep moving the revisions it read. */
#define SX_SECRETS_WRITE_RETRIES 16

/* sx_storage_batch(), timed as SX_SECRETS_IO_BATCH. */
int sx_secrets_batch(const sx_secrets_ctx *c, sx_storage_op *ops, size_t n);

/* Tell c's destroyed callback, if any, that ciphertext of p's env was deleted. */
void sx_secrets_note_destroyed(const sx_secrets_ctx *c, const sx_secrets_place *p);

/* The delete of sx_secrets_delete() with a recovery window: p moves to the deleted secrets. */
int sx_secrets_trash_move(const sx_secrets_ctx *c, const sx_secrets_place *p, const sx_secrets_cond *cond);

#endif /* SX_SECRETS_INTERNAL_H */
