/*
 * main.c - secretsd, the server executable.
 *
 *   secretsd --config FILE                  serve
 *   secretsd --config FILE --recover        re-seal the keyring with the recovery key (read from stdin)
 *   secretsd --config FILE --restore DIR    restore a backup made by `secretsctl backup DIR`
 *
 * --recover and --restore work offline, on the store named by [storage], and exit when done: the
 * RocksDB directory lock makes them fail at once while a server has the store open.
 *
 * Start-up order matters: signals are blocked and libsodium is initialised before any thread
 * exists (RocksDB starts background threads when it opens), the process is made non-dumpable with
 * no core files before any key material is loaded, and the configuration is validated completely
 * before anything is opened. A configuration mistake exits with status 2 and "FILE:LINE: what is
 * wrong"; any other start-up failure exits with status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "auth/auth.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "ops/ops.h"
#include "server/metrics.h"
#include "server/server.h"
#include "storage/storage.h"

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer, sanitizer builds only: h2o keeps recycled buffers and pool chunks in per-thread
 * free lists (h2o_mem_alloc_recycle) that it offers no way to empty, so they look leaked once the
 * loop threads are gone; and h2o 2.2.5's h2o_multithread_destroy_queue() never frees the queue it
 * allocated when built without libuv. Nothing of ours is allocated through these functions. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\nleak:h2o_multithread_create_queue\n";
}
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: secretsd --config FILE\n"
            "       secretsd --config FILE --recover      < recovery-key\n"
            "       secretsd --config FILE --restore DIR\n"
            "       secretsd --version\n"
            "\n"
            "Serves the secretsd HTTP API as configured in FILE (see secrets.conf.example).\n"
            "--recover   re-seals the keyring under the configured [seal] with the recovery key read from\n"
            "            stdin, when the old seal (key file, passphrase, TPM) is lost; the server must be stopped.\n"
            "--restore   copies the backup in DIR (made by `secretsctl backup DIR`) into the empty or missing\n"
            "            [storage] path after checking its manifest, then checks that the configured seal opens it.\n");
}

/* No core dumps and no ptrace by other processes of the same user: key material lives in this
 * process's memory. */
static int harden_process(void)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return -errno;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return -errno;
    return 0;
}

/* Create the parent folder of path (one level) with mode 0700 if it does not exist. */
static void ensure_parent_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return;
    *slash = '\0';
    mkdir(buf, 0700);
}

/* Read the passphrase from the environment into sodium_malloc memory, then wipe the variable's
 * bytes in place (they are what /proc/PID/environ shows) and remove it from the environment. */
static char *take_passphrase(const char *var, size_t *ret_len)
{
    char *v = getenv(var);
    if (!v || !*v)
        return NULL;
    size_t len = strlen(v);
    char *copy = sodium_malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, v, len + 1);
    sodium_memzero(v, len);
    unsetenv(var);
    *ret_len = len;
    return copy;
}

/* The database password of [storage] backend = postgres, in sodium_malloc memory (free with
 * sodium_free): the contents of password_file (one line) when set, else the variable named by
 * password_env, which is wiped and removed. *ret is NULL when neither gives one. A file that others
 * may read, or that cannot be read, is an error (logged). */
static int take_db_password(const sx_config *cfg, char **ret)
{
    *ret = NULL;
    if (!*cfg->storage_password_file) {
        size_t len = 0;
        *ret = take_passphrase(cfg->storage_password_env, &len);
        return 0;
    }
    size_t unused = 0;
    sodium_free(take_passphrase(cfg->storage_password_env, &unused)); /* the file wins; wipe the variable */
    const char *path = cfg->storage_password_file;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        sx_log(SX_LOG_ERROR, "[storage] password_file \"%s\": %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_size > 1024) {
        sx_log(SX_LOG_ERROR,
               "[storage] password_file \"%s\" must be a regular file of at most 1024 bytes that only "
               "its owner can read (chmod 600)",
               path);
        close(fd);
        return -EPERM;
    }
    char *pw = sodium_malloc(1025);
    ssize_t n = pw ? read(fd, pw, 1024) : -1;
    close(fd);
    if (n < 0) {
        sodium_free(pw);
        sx_log(SX_LOG_ERROR, "[storage] password_file \"%s\" cannot be read", path);
        return -EIO;
    }
    while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
        n--;
    pw[n] = '\0';
    if (n == 0 || memchr(pw, '\n', (size_t)n)) {
        sodium_free(pw);
        sx_log(SX_LOG_ERROR, "[storage] password_file \"%s\" must hold the password on one line", path);
        return -EINVAL;
    }
    *ret = pw;
    return 0;
}

/* Open the store named by [storage]. err gets the reason on failure. */
static int open_storage(const sx_config *cfg, sx_storage **ret, char *err, size_t errlen)
{
    static const char *const names[] = {"rocksdb", "memory", "postgres"};
    sx_storage_options sopt = {
        .backend = names[cfg->backend],
        .path = cfg->storage_path,
        .sync = cfg->storage_sync,
        .dsn = cfg->storage_dsn,
        .pool_size = cfg->storage_pool_size,
    };
    char *password = NULL;
    if (cfg->backend == SX_CONFIG_BACKEND_POSTGRES) {
        int rc = take_db_password(cfg, &password);
        if (rc != 0) {
            snprintf(err, errlen, "no usable database password");
            return rc;
        }
        sopt.password = password;
    }
    int rc = sx_storage_open(&sopt, ret, err, errlen);
    sodium_free(password); /* the backend keeps its own copy for reconnecting */
    return rc;
}

/*
 * open_storage(), waiting for a database that cannot be reached yet or is still starting up (a
 * node and its database started together, a database restarting): such a failure is -ENOTCONN,
 * retried with backoff (0.1 s doubling to 2 s) for [storage] start_timeout seconds. Anything
 * else (bad credentials, a newer schema) is final at once.
 */
static int open_storage_waiting(const sx_config *cfg, sx_storage **ret, char *err, size_t errlen)
{
    int64_t deadline = sx_clock_mono_ms() + (int64_t)cfg->storage_start_timeout * 1000;
    int64_t backoff = 100;
    for (unsigned attempt = 1;; attempt++) {
        int rc = open_storage(cfg, ret, err, errlen);
        if (rc != -ENOTCONN || cfg->backend != SX_CONFIG_BACKEND_POSTGRES)
            return rc;
        int64_t left = deadline - sx_clock_mono_ms();
        if (left <= 0)
            return rc;
        int64_t wait = backoff < left ? backoff : left;
        sx_log(SX_LOG_WARN, "the database is not accepting connections yet (attempt %u: %s); retrying in %lld ms",
               attempt, err, (long long)wait);
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

/* The configured seal's name, as crypto/ names seal types. */
static const char *seal_label(const sx_config *cfg)
{
    static const sx_crypto_seal_type types[] = {
        [SX_CONFIG_SEAL_FILE] = SX_CRYPTO_SEAL_FILE,
        [SX_CONFIG_SEAL_PASSPHRASE] = SX_CRYPTO_SEAL_PASSPHRASE,
        [SX_CONFIG_SEAL_TPM] = SX_CRYPTO_SEAL_TPM,
    };
    return sx_crypto_seal_type_name(types[cfg->seal]);
}

/* The most a credential may hold: a file seal's key is SX_CRYPTO_KEYBYTES, a passphrase far less. */
#define CREDENTIAL_MAX 4096

/*
 * Read [seal] credential NAME once from $CREDENTIALS_DIRECTORY/NAME (the folder systemd gives a
 * unit with LoadCredential= or LoadCredentialEncrypted=: private to the service, on a non-swappable
 * file system) into sodium_malloc memory (free with sodium_free). For a file seal it must be the
 * SX_CRYPTO_KEYBYTES key bytes; for a passphrase seal it is the passphrase, without one final
 * newline. Its bytes are never logged: the errors name the credential and the folder only.
 */
static int take_credential(const sx_config *cfg, char **ret, size_t *ret_len)
{
    const char *name = cfg->seal_credential;
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir) {
        sx_log(SX_LOG_ERROR,
               "[seal] credential = \"%s\", but $CREDENTIALS_DIRECTORY is not set: the credential comes from the "
               "service manager (LoadCredential= or LoadCredentialEncrypted= in the systemd unit, see "
               "secretsd.service); outside systemd, point CREDENTIALS_DIRECTORY at a folder holding it",
               name);
        return -ENOENT;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        sx_log(SX_LOG_ERROR, "[seal] credential \"%s\": $CREDENTIALS_DIRECTORY is too long", name);
        return -ENAMETOOLONG;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        sx_log(SX_LOG_ERROR, "[seal] credential \"%s\" cannot be opened in \"%s\": %s", name, dir, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXO | S_IWGRP)) || st.st_size > CREDENTIAL_MAX) {
        sx_log(SX_LOG_ERROR,
               "[seal] credential \"%s\" in \"%s\" must be a regular file of at most %d bytes that others cannot "
               "access",
               name, dir, CREDENTIAL_MAX);
        close(fd);
        return -EPERM;
    }
    char *buf = sodium_malloc(CREDENTIAL_MAX + 1);
    size_t len = 0;
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0 && len < CREDENTIAL_MAX) {
        ssize_t n = read(fd, buf + len, CREDENTIAL_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (rc != 0) {
        sx_log(SX_LOG_ERROR, "[seal] credential \"%s\" cannot be read: %s", name, strerror(-rc));
        sodium_free(buf);
        return rc;
    }
    if (cfg->seal == SX_CONFIG_SEAL_FILE && len != SX_CRYPTO_KEYBYTES) {
        sx_log(SX_LOG_ERROR,
               "[seal] credential \"%s\" holds %zu bytes; a file seal's key is %u random bytes (make one with "
               "`head -c %u /dev/urandom`)",
               name, len, SX_CRYPTO_KEYBYTES, SX_CRYPTO_KEYBYTES);
        sodium_free(buf);
        return -EINVAL;
    }
    if (cfg->seal == SX_CONFIG_SEAL_PASSPHRASE) {
        if (len > 0 && buf[len - 1] == '\n')
            len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
        if (len == 0) {
            sx_log(SX_LOG_ERROR, "[seal] credential \"%s\" is empty: it must hold the passphrase", name);
            sodium_free(buf);
            return -EINVAL;
        }
    }
    buf[len] = '\0';
    *ret = buf;
    *ret_len = len;
    return 0;
}

/* The configured seal as crypto options; *ret_secret (sodium_malloc'd, free with sodium_free, NULL
 * when none) holds the passphrase, the PIN or the credential bytes the options point at. */
static int seal_options(const sx_config *cfg, sx_crypto_options *ret, char **ret_secret)
{
    sx_crypto_options opt = {0};
    char *secret = NULL;
    size_t secret_len = 0;
    bool from_credential = *cfg->seal_credential != '\0';
    if (from_credential) {
        int rc = take_credential(cfg, &secret, &secret_len);
        if (rc != 0)
            return rc;
    }
    switch (cfg->seal) {
    case SX_CONFIG_SEAL_FILE:
        opt.seal.type = SX_CRYPTO_SEAL_FILE;
        opt.seal.key_file = cfg->seal_key_file;
        opt.seal.key = (const uint8_t *)secret;
        break;
    case SX_CONFIG_SEAL_PASSPHRASE:
        opt.seal.type = SX_CRYPTO_SEAL_PASSPHRASE;
        if (!from_credential)
            secret = take_passphrase(cfg->seal_passphrase_env, &secret_len);
        if (!secret) {
            sx_log(SX_LOG_ERROR, "[seal] type = passphrase, but the environment variable \"%s\" is empty or unset",
                   cfg->seal_passphrase_env);
            return -EINVAL;
        }
        opt.seal.passphrase = secret;
        opt.seal.passphrase_len = secret_len;
        opt.seal.pwhash_opslimit = cfg->seal_pwhash_opslimit;
        opt.seal.pwhash_memlimit = cfg->seal_pwhash_memlimit;
        break;
    case SX_CONFIG_SEAL_TPM:
        opt.seal.type = SX_CRYPTO_SEAL_TPM;
        opt.seal.tcti = cfg->seal_tcti;
        opt.seal.pcrs = cfg->seal_pcrs;
        if (*cfg->seal_pin_env) {
            /* The PIN, like a passphrase, is taken from the environment once and wiped there. */
            secret = take_passphrase(cfg->seal_pin_env, &opt.seal.pin_len);
            if (!secret) {
                sx_log(SX_LOG_ERROR, "[seal] pin_env = %s, but that environment variable is empty or unset",
                       cfg->seal_pin_env);
                return -EINVAL;
            }
            opt.seal.pin = secret;
        }
        break;
    }
    if (cfg->seal == SX_CONFIG_SEAL_FILE && !from_credential)
        ensure_parent_dir(cfg->seal_key_file);
    *ret = opt;
    *ret_secret = secret;
    return 0;
}

/* Write text (the recovery key and a newline) to a new file: path itself, or path.1 .. path.99 when
 * that exists, never an existing file (O_EXCL) and never through a symlink (O_NOFOLLOW); mode 0400,
 * flushed before the name is reported. The name used goes to ret_path. */
static int write_recovery_file(const char *path, const char *key, char *ret_path, size_t cap)
{
    char name[4096];
    int fd = -1, e = 0;
    for (int i = 0; i < 100 && fd < 0; i++) {
        if (i == 0)
            snprintf(name, sizeof(name), "%s", path);
        else
            snprintf(name, sizeof(name), "%s.%d", path, i);
        fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0400);
        e = errno;
        if (fd < 0 && e != EEXIST)
            return -e;
    }
    if (fd < 0)
        return -EEXIST;
    size_t len = strlen(key);
    int rc = 0;
    errno = 0;
    if (fchmod(fd, 0400) != 0 || write(fd, key, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        rc = errno ? -errno : -EIO;
    close(fd);
    if (rc != 0) {
        unlink(name);
        return rc;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", name);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    snprintf(ret_path, cap, "%s", name);
    return 0;
}

/* Show a new keyring's recovery key once. On a terminal it is printed there; otherwise stdout is
 * likely a pipe into a journal or a log collector, where a key would be kept and copied for as
 * long as the logs are, so it goes to [seal] recovery_key_file and only that file's name is
 * logged. A key that cannot be written anywhere safe fails start-up, before anything is served. */
static int show_recovery_key(const sx_config *cfg, const char *recovery)
{
    if (isatty(STDOUT_FILENO)) {
        printf("\n"
               "secretsd: a new keyring was created. Its RECOVERY KEY is shown this once:\n"
               "\n    %s\n\n"
               "Store it offline. With it, `secretsd --config FILE --recover` restores access when the seal (key\n"
               "file, passphrase or TPM) is lost. Anyone holding it and the data can decrypt every secret.\n\n",
               recovery);
        fflush(stdout);
        return 0;
    }
    char used[4096];
    const char *file = cfg->seal_recovery_key_file; /* a path, logged by name */
    ensure_parent_dir(file);
    int rc = write_recovery_file(file, recovery, used, sizeof(used));
    if (rc != 0) {
        sx_log(
            SX_LOG_ERROR,
            "a new keyring was created, but its recovery key could not be written to \"%s\" ([seal] "
            "recovery_key_file): %s. stdout is not a terminal, so it is not shown there either: remove the new store "
            "and start again (with a writable folder for the file), or this keyring has no recovery key",
            file, strerror(-rc));
        return rc;
    }
    sx_log(SX_LOG_WARN,
           "a new keyring was created; its RECOVERY KEY was written to \"%s\" (mode 0400), not to this log. Store "
           "it offline and delete the file: with it and the data anyone can decrypt every secret",
           used);
    return 0;
}

/* Open (or on first start initialise) the key hierarchy; a new keyring's recovery key is shown
 * once by show_recovery_key(), never logged. */
static int open_crypto(const sx_config *cfg, sx_storage *storage, sx_crypto **ret)
{
    sx_crypto_options opt;
    char *secret = NULL;
    int rc = seal_options(cfg, &opt, &secret);
    if (rc != 0)
        return rc;
    char err[1024];
    char *recovery = NULL;
    rc = sx_crypto_open(ret, &recovery, storage, &opt, err, sizeof(err));
    if (secret)
        sodium_free(secret);
    if (rc != 0) {
        sx_log(SX_LOG_ERROR, "cannot unseal the keyring: %s", err);
        return rc;
    }
    if (recovery) {
        rc = show_recovery_key(cfg, recovery);
        sx_crypto_recovery_key_free(recovery);
        if (rc != 0) {
            sx_crypto_free(*ret);
            *ret = NULL;
            return rc;
        }
    }
    sx_crypto_seal_type type;
    uint32_t slot = sx_crypto_slot_current(*ret, &type);
    sx_metrics_unlock((unsigned)type, slot);
    sx_log(SX_LOG_INFO, "keyring unsealed (%s seal, slot %u)", seal_label(cfg), (unsigned)slot);
    return 0;
}

/* Read the recovery key from stdin (one line; echo off on a terminal) into sodium_malloc memory. */
static char *read_recovery_key(void)
{
    enum { CAP = 256 };
    char *key = sodium_malloc(CAP);
    if (!key)
        return NULL;
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "recovery key: ");
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    size_t n = 0;
    int c;
    while ((c = getchar()) != EOF && c != '\n')
        if (n < CAP - 1)
            key[n++] = (char)c;
    key[n] = '\0';
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    while (n > 0 && (key[n - 1] == '\r' || key[n - 1] == ' '))
        key[--n] = '\0';
    if (n == 0) {
        sodium_free(key);
        return NULL;
    }
    return key;
}

/* secretsd --recover: re-seal the keyring of the (stopped) store under the configured seal. */
static int run_recover(const sx_config *cfg, sx_storage *storage)
{
    char *key = read_recovery_key();
    if (!key) {
        fprintf(stderr, "secretsd: no recovery key on stdin\n");
        return 2;
    }
    sx_crypto_options opt;
    char *secret = NULL;
    int rc = seal_options(cfg, &opt, &secret);
    char err[1024] = "";
    sx_crypto *crypto = NULL;
    if (rc == 0)
        rc = sx_crypto_recover(&crypto, storage, key, &opt, err, sizeof(err));
    sodium_free(key);
    if (secret)
        sodium_free(secret);
    if (rc != 0) {
        if (err[0])
            fprintf(stderr, "secretsd: recovery failed: %s\n", err);
        return 1;
    }
    uint32_t slot = sx_crypto_slot_current(crypto, NULL);
    sx_crypto_free(crypto);
    printf("secretsd: the keyring is re-sealed under the configured %s seal (new slot %u). This node's previous\n"
           "slots of that type no longer open it; other slots and the recovery key stay valid. Start secretsd\n"
           "normally now.\n",
           seal_label(cfg), (unsigned)slot);
    return 0;
}

/* secretsd --restore DIR: copy a backup into the [storage] path, then check it opens. */
typedef struct restore_ctx {
    const sx_config *cfg;
    sx_backup_info got;
} restore_ctx;

/* The copy of a backup, before it is renamed into place: it must hold what the manifest says and
 * open with the configured seal, and its keyring must authenticate the manifest. */
static int restore_check(void *ctx, const char *copy, const sx_backup_info *want, const char *manifest, size_t len,
                         const char *mac_line, char *err, size_t errlen)
{
    restore_ctx *rc_ = ctx;
    sx_storage_options sopt = {.backend = "rocksdb", .path = copy, .sync = true};
    sx_storage *storage = NULL;
    sx_crypto *crypto = NULL;
    char oerr[512];
    int rc = sx_storage_open(&sopt, &storage, oerr, sizeof(oerr));
    if (rc != 0) {
        snprintf(err, errlen, "the backup's store does not open: %s", oerr);
        return rc;
    }
    memset(&rc_->got, 0, sizeof(rc_->got));
    const sx_backup_info *got = &rc_->got;
    rc = sx_backup_count(storage, &rc_->got);
    if (rc == 0 && (got->secrets != want->secrets || got->values != want->values || got->envs != want->envs ||
                    got->data_keys != want->data_keys || got->tokens != want->tokens)) {
        snprintf(err, errlen, "the backup's records do not match the manifest");
        rc = -EBADMSG;
    } else if (rc != 0) {
        snprintf(err, errlen, "cannot count the backup's records: %s", sx_storage_strerror(rc));
    }
    if (rc == 0 && open_crypto(rc_->cfg, storage, &crypto) != 0) {
        snprintf(err, errlen,
                 "the configured %s seal does not open the backup. It was taken under a %s seal: configure that "
                 "seal (the key file, passphrase or TPM current at backup time), or restore and run `secretsd "
                 "--config FILE --recover` with the recovery key",
                 seal_label(rc_->cfg), want->seal);
        rc = SX_CRYPTO_EBADSEAL;
    }
    if (rc == 0)
        rc = sx_backup_manifest_check(crypto, manifest, len, mac_line, err, errlen);
    sx_crypto_free(crypto);
    sx_storage_close(storage);
    return rc;
}

static int run_restore(const sx_config *cfg, const char *dir)
{
    if (cfg->backend != SX_CONFIG_BACKEND_ROCKSDB) {
        fprintf(stderr, "secretsd: --restore needs [storage] backend = rocksdb\n");
        return 2;
    }
    ensure_parent_dir(cfg->storage_path);
    sx_backup_info want;
    restore_ctx ctx = {.cfg = cfg};
    char err[1024] = "";
    if (sx_backup_restore(dir, cfg->storage_path, &want, restore_check, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "secretsd: restore refused, nothing was changed: %s\n", err);
        return 1;
    }
    printf("secretsd: backup \"%s\" (%llu files, %llu bytes) copied to \"%s\"\n", dir, (unsigned long long)want.files,
           (unsigned long long)want.bytes, cfg->storage_path);
    printf("secretsd: restored %llu secrets (%llu values) in %llu environments and %llu tokens; the keyring opens\n"
           "with the configured %s seal and authenticates the manifest. Start secretsd normally now.\n",
           (unsigned long long)ctx.got.secrets, (unsigned long long)ctx.got.values, (unsigned long long)ctx.got.envs,
           (unsigned long long)ctx.got.tokens, seal_label(cfg));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"recover", no_argument, NULL, 'R'},
        {"restore", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *restore_dir = NULL;
    bool recover = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'R':
            recover = true;
            break;
        case 'r':
            restore_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("secretsd %s\n", SX_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config_path || optind != argc || (recover && restore_dir)) {
        usage(stderr);
        return 2;
    }

    sx_server_block_signals();
    /* tpm2-tss logs to stderr by itself; errors reach our log through the crypto module instead. */
    setenv("TSS2_LOG", "all+none", 0);
    if (sodium_init() < 0) {
        fprintf(stderr, "secretsd: libsodium could not be initialised\n");
        return 1;
    }
    if (harden_process() != 0) {
        fprintf(stderr, "secretsd: cannot disable core dumps: %s\n", strerror(errno));
        return 1;
    }

    char err[1024];
    sx_config *cfg = NULL;
    if (sx_config_load(config_path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (sx_log_open(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "secretsd: %s\n", err);
        sx_config_free(cfg);
        return 1;
    }

    if (restore_dir) {
        int st = run_restore(cfg, restore_dir);
        sx_log_close();
        sx_config_free(cfg);
        return st;
    }
    if (recover && cfg->backend == SX_CONFIG_BACKEND_MEMORY) {
        fprintf(stderr, "secretsd: --recover needs a durable [storage] backend (a memory store has nothing to "
                        "recover)\n");
        sx_log_close();
        sx_config_free(cfg);
        return 2;
    }

    int status = 1;
    sx_storage *storage = NULL;
    sx_crypto *crypto = NULL;
    sx_auth *auth = NULL;
    sx_server *server = NULL;
    if (cfg->backend == SX_CONFIG_BACKEND_ROCKSDB)
        ensure_parent_dir(cfg->storage_path);
    if (cfg->admin_socket && *cfg->admin_socket)
        ensure_parent_dir(cfg->admin_socket);
    int rc = open_storage_waiting(cfg, &storage, err, sizeof(err));
    if (rc != 0) {
        sx_log(SX_LOG_ERROR, "cannot open storage: %s", err);
        goto out;
    }
    if (recover) {
        status = run_recover(cfg, storage);
        goto out;
    }
    if (cfg->backend == SX_CONFIG_BACKEND_MEMORY)
        sx_log(SX_LOG_INFO, "storage: memory (not durable)");
    else if (cfg->backend == SX_CONFIG_BACKEND_POSTGRES)
        sx_log(SX_LOG_INFO, "storage: postgres, shared with every node on the database (at most %u connections)",
               cfg->storage_pool_size);
    else
        sx_log(SX_LOG_INFO, "storage: rocksdb at %s", cfg->storage_path);

    if (open_crypto(cfg, storage, &crypto) != 0)
        goto out;
    const uint8_t *token_key = sx_crypto_system_key(crypto, SX_CRYPTO_KEY_TOKEN_HASH);
    if (!token_key || sx_auth_new(storage, token_key, SX_AUTH_KEY_BYTES, &auth) != 0) {
        sx_log(SX_LOG_ERROR, "cannot set up token verification");
        goto out;
    }

    sx_server_deps deps = {.config = cfg, .storage = storage, .crypto = crypto, .auth = auth};
    rc = sx_server_new(&server, &deps, err, sizeof(err));
    if (rc != 0) {
        sx_log(SX_LOG_ERROR, "%s", err);
        goto out;
    }
    if ((rc = sx_log_capture_stderr()) != 0)
        sx_log(SX_LOG_WARN, "library lines on stderr stay as they are: %s", strerror(-rc));
    rc = sx_server_run(server);
    if (rc == 0)
        status = 0;

out:
    sx_server_free(server);
    sx_auth_free(auth);
    sx_crypto_free(crypto);
    sx_storage_close(storage);
    sx_log_close();
    sx_config_free(cfg);
    return status;
}
