/*
 * seal_file.c - the file seal: the seal key is 32 random bytes in a file only its owner can read.
 *
 * The file is created on first start, when the store holds no keyring yet. To make creation safe
 * when two processes initialise at once, the key is written to a private temporary file in the same
 * folder, flushed, and then hard-linked to the final name: link() fails if the name exists, so a
 * reader never sees a half-written key and the loser of the race simply reads the winner's file.
 * A key file that group or others may access, or that another user owns (who could read it,
 * or swap in a key of their own), is refused rather than silently fixed: it may already have
 * leaked, and the operator should know.
 *
 * The key may also come from the caller as bytes (o->key: a systemd credential, which the service
 * manager decrypted into a private, non-swappable folder of the unit): then no file is read or
 * created, and a first start seals the keyring under those bytes.
 */
#include "crypto/crypto_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sx_seal_file_load(uint8_t key[32], const sx_crypto_seal_options *o, char *err, size_t errlen)
{
    if (o->key) {
        memcpy(key, o->key, SX_CRYPTO_KEYBYTES);
        return 0;
    }
    if (!o->key_file || !*o->key_file)
        return sx_fail(err, errlen, -EINVAL, "seal key_file is not set");
    int fd = open(o->key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        return sx_fail(err, errlen, -e, "cannot open seal key file \"%s\": %s", o->key_file, strerror(e));
    }
    struct stat sb;
    int r = 0;
    if (fstat(fd, &sb) != 0) {
        r = sx_fail(err, errlen, -errno, "cannot stat seal key file \"%s\"", o->key_file);
    } else if (!S_ISREG(sb.st_mode)) {
        r = sx_fail(err, errlen, -EINVAL, "seal key file \"%s\" is not a regular file", o->key_file);
    } else if (sb.st_uid != geteuid()) {
        r = sx_fail(err, errlen, SX_CRYPTO_EKEYPERM,
                    "seal key file \"%s\" is owned by uid %u, not by this process's user (uid %u): its owner "
                    "may have read or replaced it; chown it (and consider the key exposed)",
                    o->key_file, (unsigned)sb.st_uid, (unsigned)geteuid());
    } else if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
        r = sx_fail(err, errlen, SX_CRYPTO_EKEYPERM,
                    "seal key file \"%s\" has mode %04o: group or others may access it; make it 0600 (and "
                    "consider the key exposed)",
                    o->key_file, (unsigned)(sb.st_mode & 07777));
    } else if (sb.st_size != SX_CRYPTO_KEYBYTES) {
        r = sx_fail(err, errlen, SX_CRYPTO_EFORMAT, "seal key file \"%s\" is %lld bytes, expected %u", o->key_file,
                    (long long)sb.st_size, SX_CRYPTO_KEYBYTES);
    } else {
        size_t got = 0;
        while (got < SX_CRYPTO_KEYBYTES) {
            ssize_t n = read(fd, key + got, SX_CRYPTO_KEYBYTES - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                r = sx_fail(err, errlen, -EIO, "cannot read seal key file \"%s\"", o->key_file);
                sodium_memzero(key, SX_CRYPTO_KEYBYTES);
                break;
            }
            got += (size_t)n;
        }
    }
    close(fd);
    return r;
}

int sx_seal_file_create(uint8_t key[32], const sx_crypto_seal_options *o, char *err, size_t errlen)
{
    if (o->key)
        return sx_seal_file_load(key, o, err, errlen);
    if (!o->key_file || !*o->key_file)
        return sx_fail(err, errlen, -EINVAL, "seal key_file is not set");
    struct stat sb;
    if (lstat(o->key_file, &sb) == 0)
        return sx_seal_file_load(key, o, err, errlen); /* an existing key file is used as it is */

    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", o->key_file) >= sizeof tmp)
        return sx_fail(err, errlen, -ENAMETOOLONG, "seal key file path is too long");
    int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        int e = errno;
        return sx_fail(err, errlen, -e, "cannot create seal key file next to \"%s\": %s", o->key_file, strerror(e));
    }
    randombytes_buf(key, SX_CRYPTO_KEYBYTES);
    int r = 0;
    size_t put = 0;
    while (put < SX_CRYPTO_KEYBYTES) {
        ssize_t n = write(fd, key + put, SX_CRYPTO_KEYBYTES - put);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = -EIO;
            break;
        }
        put += (size_t)n;
    }
    if (r == 0 && (fchmod(fd, 0600) != 0 || fsync(fd) != 0))
        r = -errno;
    close(fd);
    if (r == 0 && link(tmp, o->key_file) != 0) {
        r = -errno;
        if (r == -EEXIST)
            r = 1; /* a concurrent initialiser won: use its key */
    }
    unlink(tmp);
    if (r == 1) {
        sodium_memzero(key, SX_CRYPTO_KEYBYTES);
        return sx_seal_file_load(key, o, err, errlen);
    }
    if (r < 0) {
        sodium_memzero(key, SX_CRYPTO_KEYBYTES);
        return sx_fail(err, errlen, r, "cannot write seal key file \"%s\": %s", o->key_file, strerror(-r));
    }
    /* Make the new name durable too. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", o->key_file);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}
