/*
 * snapshot.c - the encrypted fallback snapshot of `secretsctl run` (see snapshot.h for the file's
 * layout and the key). Only libsodium's constructions are used: crypto_generichash and crypto_kdf
 * for the key, crypto_aead_xchacha20poly1305_ietf for the file; the key lives in a local array
 * wiped before return.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "ctl/envmap.h"
#include "ctl/snapshot.h"

#define KDF_CONTEXT "sxsnap01"

static void derive_key(uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES], const char *secret, size_t len)
{
    uint8_t master[crypto_kdf_KEYBYTES];
    crypto_generichash(master, sizeof(master), (const uint8_t *)secret, len, NULL, 0);
    crypto_kdf_derive_from_key(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, 1, KDF_CONTEXT, master);
    sodium_memzero(master, sizeof(master));
}

/* The additional data: the file's header up to the nonce, then the env's path. */
static uint8_t *make_ad(const uint8_t *header, const char *env_path, size_t *ret_len)
{
    size_t el = strlen(env_path), n = CTL_SNAPSHOT_MAGIC_LEN + 8 + el;
    uint8_t *ad = malloc(n);
    if (!ad)
        return NULL;
    memcpy(ad, header, CTL_SNAPSHOT_MAGIC_LEN + 8);
    memcpy(ad + CTL_SNAPSHOT_MAGIC_LEN + 8, env_path, el);
    *ret_len = n;
    return ad;
}

int ctl_snapshot_write(const char *path, const char *env_path, const char *token_secret, size_t secret_len,
                       const char *plain, size_t plain_len)
{
    size_t total = CTL_SNAPSHOT_HEADER_LEN + plain_len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    uint8_t *file = malloc(total);
    if (!file)
        return -ENOMEM;
    memcpy(file, CTL_SNAPSHOT_MAGIC, CTL_SNAPSHOT_MAGIC_LEN);
    sx_be64_put(file + CTL_SNAPSHOT_MAGIC_LEN, (uint64_t)sx_clock_wall_ms());
    uint8_t *nonce = file + CTL_SNAPSHOT_MAGIC_LEN + 8;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    size_t adlen;
    uint8_t *ad = make_ad(file, env_path, &adlen);
    if (!ad) {
        free(file);
        return -ENOMEM;
    }
    uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    derive_key(key, token_secret, secret_len);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(file + CTL_SNAPSHOT_HEADER_LEN, &clen, (const uint8_t *)plain, plain_len,
                                               ad, adlen, NULL, nonce, key);
    sodium_memzero(key, sizeof(key));
    free(ad);
    int rc = ctl_write_private_file(path, file, CTL_SNAPSHOT_HEADER_LEN + (size_t)clen);
    free(file);
    return rc;
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > CTL_SNAPSHOT_MAX) {
        close(fd);
        return -EBADMSG;
    }
    size_t n = (size_t)st.st_size, done = 0;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    while (done < n) {
        ssize_t k = read(fd, b + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        done += (size_t)k;
    }
    close(fd);
    if (done != n) {
        free(b);
        return -EIO;
    }
    *ret = b;
    *ret_len = n;
    return 0;
}

int ctl_snapshot_read(const char *path, const char *env_path, const char *token_secret, size_t secret_len,
                      char **ret_plain, size_t *ret_len, int64_t *ret_created_ms)
{
    uint8_t *file = NULL;
    size_t n = 0;
    int rc = read_all(path, &file, &n);
    if (rc != 0)
        return rc;
    if (n < CTL_SNAPSHOT_HEADER_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES ||
        memcmp(file, CTL_SNAPSHOT_MAGIC, CTL_SNAPSHOT_MAGIC_LEN) != 0) {
        free(file);
        return -EBADMSG;
    }
    size_t adlen;
    uint8_t *ad = make_ad(file, env_path, &adlen);
    size_t clen = n - CTL_SNAPSHOT_HEADER_LEN;
    char *plain = malloc(clen + 1);
    if (!ad || !plain) {
        free(ad);
        free(plain);
        free(file);
        return -ENOMEM;
    }
    uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    derive_key(key, token_secret, secret_len);
    unsigned long long plen = 0;
    int ok = crypto_aead_xchacha20poly1305_ietf_decrypt((uint8_t *)plain, &plen, NULL, file + CTL_SNAPSHOT_HEADER_LEN,
                                                        clen, ad, adlen, file + CTL_SNAPSHOT_MAGIC_LEN + 8, key);
    sodium_memzero(key, sizeof(key));
    free(ad);
    int64_t created = (int64_t)sx_be64_get(file + CTL_SNAPSHOT_MAGIC_LEN);
    free(file);
    if (ok != 0) {
        free(plain);
        return -EBADMSG;
    }
    plain[plen] = '\0';
    *ret_plain = plain;
    *ret_len = (size_t)plen;
    *ret_created_ms = created;
    return 0;
}
