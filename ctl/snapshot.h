/*
 * snapshot.h - the fallback snapshot of `secretsctl run --fallback FILE`: the last values map
 * fetched for an env, encrypted so that only the same token opens it, used when the server cannot
 * be reached. Part of secretsctl only.
 *
 * File: magic "SXCTLSN1" | created (ms since the epoch, 8 bytes big-endian) | 24-byte nonce |
 * XChaCha20-Poly1305 ciphertext of the values JSON and its 16-byte tag. The additional data is the
 * magic, the creation time and the env's path ("/o/p/envs/env"), so the time cannot be changed and
 * a snapshot of another env is refused. The key is derived from the token's secret part:
 * BLAKE2b-256 of it (crypto_generichash) as the master key of crypto_kdf, subkey 1, context
 * "sxsnap01". The token secret is 256 random bits, so no password hashing is needed.
 */
#ifndef SX_CTL_SNAPSHOT_H
#define SX_CTL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#define CTL_SNAPSHOT_MAGIC     "SXCTLSN1"
#define CTL_SNAPSHOT_MAGIC_LEN 8
/* magic + created + nonce in front of the ciphertext */
#define CTL_SNAPSHOT_HEADER_LEN (CTL_SNAPSHOT_MAGIC_LEN + 8 + 24)
/* Largest snapshot file read back. */
#define CTL_SNAPSHOT_MAX (64u * 1024 * 1024)

/* Encrypt plain (the values JSON) for env_path under the key of the token secret and write it to
 * path (mode 0600, temporary file + rename). Returns 0 or a negative errno. */
int ctl_snapshot_write(const char *path, const char *env_path, const char *token_secret, size_t secret_len,
                       const char *plain, size_t plain_len);

/* Read and open path for env_path. On success returns 0, *ret_plain is a malloc'd NUL-terminated
 * copy of the values JSON (the caller wipes and frees it), *ret_created_ms its creation time.
 * -ENOENT (or another errno) when it cannot be read, -EBADMSG when it is not a snapshot, was
 * changed, or belongs to another token or env. */
int ctl_snapshot_read(const char *path, const char *env_path, const char *token_secret, size_t secret_len,
                      char **ret_plain, size_t *ret_len, int64_t *ret_created_ms);

#endif /* SX_CTL_SNAPSHOT_H */
