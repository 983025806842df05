/*
 * backup.c - online backups (a storage checkpoint plus a manifest) and their restore.
 *
 * A backup is a folder:
 *     DIR/data/           a consistent copy of the RocksDB store (sx_storage_checkpoint: hard links
 *                         to the immutable SST files where possible, memtables flushed first)
 *     DIR/MANIFEST.json   what it is and how to check it: format tag, creation time, server
 *                         version, backend, the seal type that protects it, the active master
 *                         version, record counts, and every file of data/ with its size and
 *                         BLAKE2b-256 hash
 * It holds no key material in the clear: the keyring inside is sealed, so opening a backup needs
 * the seal (key file, passphrase or TPM) that was current when it was taken, or the recovery key.
 *
 * The counts are taken from the copy itself (opened read-write once: RocksDB may add a log file),
 * and the file list is hashed after that, so the manifest describes exactly the bytes on disk.
 * Restore checks the whole manifest before it touches the target, copies into a temporary sibling,
 * fsyncs every file and the folder, and renames it into place, so a crash leaves either nothing
 * or a complete store.
 */
#include "common/clock.h"
#include "ops/ops.h"
#include "auth/auth.h"
#include "secrets/secrets.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define MANIFEST_FORMAT "secretsd-backup 1"
#define MANIFEST_MAX    (8u * 1024 * 1024)
#define HASH_HEX        (crypto_generichash_BYTES * 2 + 1)
#define MAX_FILES       100000u
#define PATH_BUF        (PATH_MAX + 512) /* a folder of at most PATH_MAX - 64 bytes, then a name */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* BLAKE2b-256 of a file as lowercase hex; *ret_size gets its size. */
static int hash_file(const char *path, char hex[HASH_HEX], uint64_t *ret_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
    static __thread uint8_t buf[65536];
    uint64_t size = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        crypto_generichash_update(&st, buf, (size_t)n);
        size += (uint64_t)n;
    }
    close(fd);
    uint8_t h[crypto_generichash_BYTES];
    crypto_generichash_final(&st, h, sizeof(h));
    if (rc == 0) {
        sodium_bin2hex(hex, HASH_HEX, h, sizeof(h));
        *ret_size = size;
    }
    return rc;
}

static bool plain_name(const char *n)
{
    return n[0] && strcmp(n, ".") != 0 && strcmp(n, "..") != 0 && !strchr(n, '/') && strlen(n) < 256;
}

/* The regular files of dir, sorted (malloc'd array of malloc'd names). Anything else is an error. */
static int list_files(const char *dir, char ***ret, size_t *ret_n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_BUF];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || !plain_name(e->d_name) || n >= MAX_FILES) {
            rc = -EBADMSG;
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = realloc(names, nc * sizeof(*nn));
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name)))
            rc = -ENOMEM;
        else
            n++;
    }
    closedir(d);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: a few dozen names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    *ret = names;
    *ret_n = n;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int sx_backup_count(sx_storage *st, sx_backup_info *info)
{
    /* Each module counts its own records. */
    int rc = sx_crypto_store_count(st, &info->envs, &info->data_keys);
    if (rc == 0)
        rc = sx_secrets_store_count(st, &info->secrets, &info->values);
    if (rc == 0)
        rc = sx_auth_store_count(st, &info->tokens);
    return rc;
}

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_u64(yajl_gen g, const char *key, uint64_t v)
{
    char num[24];
    gen_str(g, key);
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    yajl_gen_number(g, num, (size_t)n);
}

/* Write len bytes to dir/name through a synced temporary file and a rename. */
static int write_atomic(const char *dir, const char *name, const void *buf, size_t len)
{
    char tmp[PATH_BUF], final[PATH_BUF];
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
    snprintf(final, sizeof(final), "%s/%s", dir, name);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        rc = -errno;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t w = write(fd, (const char *)buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -EIO;
        else
            off += (size_t)w;
    }
    if (fd >= 0) {
        if (rc == 0 && fsync(fd) != 0)
            rc = -errno;
        close(fd);
    }
    if (rc == 0 && rename(tmp, final) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_path(dir, true);
    return rc;
}

static void manifest_mac(uint8_t tag[SX_CRYPTO_RECORD_MACBYTES], const uint8_t *mac_key, const char *text, size_t len)
{
    static const char label[] = "backup/" SX_BACKUP_MANIFEST;
    sx_crypto_record_mac(tag, mac_key, label, sizeof(label) - 1, text, len);
}

int sx_backup_manifest_check(sx_crypto *c, const char *manifest, size_t len, const char *mac_line, char *err,
                             size_t errlen)
{
    if (!mac_line) {
        if (sx_crypto_records_authenticated(c))
            return sx_fail(err, errlen, -EBADMSG,
                           "the backup has no %s: it was not written by secretsd, or the file was "
                           "removed",
                           SX_BACKUP_MANIFEST_MAC);
        return 0; /* written before manifests had MACs (its keyring says so) */
    }
    uint8_t want[SX_CRYPTO_RECORD_MACBYTES], got[SX_CRYPTO_RECORD_MACBYTES];
    size_t bin = 0;
    if (sodium_hex2bin(got, sizeof(got), mac_line, strlen(mac_line), "\n", &bin, NULL) != 0 || bin != sizeof(got))
        return sx_fail(err, errlen, -EBADMSG, "%s is malformed", SX_BACKUP_MANIFEST_MAC);
    manifest_mac(want, sx_crypto_system_key(c, SX_CRYPTO_KEY_RECORD), manifest, len);
    if (sodium_memcmp(want, got, sizeof(got)) != 0)
        return sx_fail(err, errlen, -EBADMSG,
                       "the manifest fails its MAC: the backup was edited, or it belongs to another installation");
    return 0;
}

/* Write the manifest for the files of data (already hashed into names/sizes/hashes), and its MAC
 * under mac_key. */
static int write_manifest(const char *dir, const sx_backup_info *info, char **names, const uint64_t *sizes,
                          char (*hashes)[HASH_HEX], size_t n, const uint8_t *mac_key)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return -ENOMEM;
    yajl_gen_config(g, yajl_gen_beautify, 1);
    char ts[40];
    sx_time_format(info->created_ms, ts, sizeof(ts));
    yajl_gen_map_open(g);
    gen_str(g, "format");
    gen_str(g, MANIFEST_FORMAT);
    gen_str(g, "createdAt");
    gen_str(g, ts);
    gen_str(g, "secretsdVersion");
    gen_str(g, SX_VERSION);
    gen_str(g, "backend");
    gen_str(g, info->backend);
    gen_str(g, "seal");
    gen_str(g, info->seal);
    gen_u64(g, "activeMasterVersion", info->active_master);
    gen_str(g, "records");
    yajl_gen_map_open(g);
    gen_u64(g, "secrets", info->secrets);
    gen_u64(g, "values", info->values);
    gen_u64(g, "envs", info->envs);
    gen_u64(g, "dataKeys", info->data_keys);
    gen_u64(g, "tokens", info->tokens);
    yajl_gen_map_close(g);
    gen_str(g, "files");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++) {
        yajl_gen_map_open(g);
        gen_str(g, "name");
        gen_str(g, names[i]);
        gen_u64(g, "bytes", sizes[i]);
        gen_str(g, "blake2b");
        gen_str(g, hashes[i]);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);

    int rc = write_atomic(dir, SX_BACKUP_MANIFEST, buf, len);
    if (rc == 0) {
        /* The MAC covers the manifest's exact bytes, so its file hashes cover every file. */
        uint8_t tag[SX_CRYPTO_RECORD_MACBYTES];
        char line[2 * SX_CRYPTO_RECORD_MACBYTES + 2];
        manifest_mac(tag, mac_key, (const char *)buf, len);
        sodium_bin2hex(line, sizeof(line), tag, sizeof(tag));
        strcat(line, "\n");
        rc = write_atomic(dir, SX_BACKUP_MANIFEST_MAC, line, strlen(line));
    }
    yajl_gen_free(g);
    return rc;
}

int sx_backup_create(sx_storage *st, sx_crypto *c, const char *dir, sx_backup_info *info, char *err, size_t errlen)
{
    if (!st || !c || !dir || !info)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    if (dir[0] != '/' || strlen(dir) > PATH_MAX - 64)
        return sx_fail(err, errlen, -EINVAL, "the backup folder must be an absolute path");
    struct stat sb;
    if (lstat(dir, &sb) == 0)
        return sx_fail(err, errlen, -EEXIST, "\"%s\" exists already; a backup goes into a new folder", dir);
    if (!sx_storage_has(st, SX_STORAGE_CAP_CHECKPOINT))
        return sx_fail(err, errlen, -ENOTSUP, "the %s storage backend cannot take online backups", sx_storage_name(st));
    if (mkdir(dir, 0700) != 0) {
        int e = errno;
        return sx_fail(err, errlen, -e, "cannot create \"%s\": %s", dir, strerror(e));
    }
    memset(info, 0, sizeof(*info));
    info->created_ms = sx_clock_wall_ms();
    snprintf(info->backend, sizeof(info->backend), "%s", sx_storage_name(st));

    char data[PATH_MAX];
    snprintf(data, sizeof(data), "%s/%s", dir, SX_BACKUP_DATA);
    char **names = NULL;
    size_t n = 0;
    uint64_t *sizes = NULL;
    char(*hashes)[HASH_HEX] = NULL;
    sx_crypto_status *cs = malloc(sizeof(*cs));
    int rc = cs ? sx_crypto_status_get(c, cs) : -ENOMEM;
    if (rc < 0) {
        sx_fail(err, errlen, rc, "cannot read the key hierarchy's status: %s", sx_crypto_strerror(rc));
        goto out;
    }
    snprintf(info->seal, sizeof(info->seal), "%s", sx_crypto_seal_type_name(cs->seal));
    info->active_master = cs->active_master;
    if ((rc = sx_storage_checkpoint(st, data)) < 0) {
        sx_fail(err, errlen, rc, "the storage checkpoint failed: %s", sx_storage_strerror(rc));
        goto out;
    }
    /* Count what the copy holds, from the copy. */
    sx_storage *copy = NULL;
    char oerr[256];
    sx_storage_options so = {.backend = info->backend, .path = data, .sync = true};
    if ((rc = sx_storage_open(&so, &copy, oerr, sizeof(oerr))) < 0) {
        sx_fail(err, errlen, rc, "cannot open the checkpoint: %s", oerr);
        goto out;
    }
    rc = sx_backup_count(copy, info);
    sx_storage_close(copy);
    if (rc < 0) {
        sx_fail(err, errlen, rc, "cannot count the checkpoint's records: %s", sx_storage_strerror(rc));
        goto out;
    }
    if ((rc = list_files(data, &names, &n)) < 0) {
        sx_fail(err, errlen, rc, "cannot list the checkpoint's files");
        goto out;
    }
    sizes = calloc(n ? n : 1, sizeof(*sizes));
    hashes = calloc(n ? n : 1, sizeof(*hashes));
    if (!sizes || !hashes) {
        rc = sx_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[PATH_BUF];
        snprintf(path, sizeof(path), "%s/%s", data, names[i]);
        if ((rc = hash_file(path, hashes[i], &sizes[i])) < 0)
            sx_fail(err, errlen, rc, "cannot read \"%s\": %s", path, strerror(-rc));
        info->files++;
        info->bytes += sizes[i];
    }
    if (rc == 0 && (rc = fsync_path(data, true)) < 0)
        sx_fail(err, errlen, rc, "cannot sync \"%s\"", data);
    if (rc == 0 &&
        (rc = write_manifest(dir, info, names, sizes, hashes, n, sx_crypto_system_key(c, SX_CRYPTO_KEY_RECORD))) < 0)
        sx_fail(err, errlen, rc, "cannot write the manifest: %s", strerror(-rc));
out:
    free(cs);
    free_names(names, n);
    free(sizes);
    free(hashes);
    if (rc < 0)
        rmtree(dir);
    return rc;
}

/* ---- restore ---------------------------------------------------------------------------------------- */

static yajl_val get(yajl_val v, const char *k1, const char *k2, yajl_type t)
{
    const char *path[] = {k1, k2, NULL};
    return yajl_tree_get(v, path, t);
}

static uint64_t get_u64(yajl_val v, const char *k1, const char *k2)
{
    yajl_val x = get(v, k1, k2, yajl_t_number);
    return x && YAJL_IS_INTEGER(x) && YAJL_GET_INTEGER(x) >= 0 ? (uint64_t)YAJL_GET_INTEGER(x) : 0;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return -errno;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return -e;
    }
    static __thread char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -EIO;
                break;
            }
            off += w;
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && fsync(out) != 0)
        rc = -errno;
    close(in);
    close(out);
    return rc;
}

/* Check every file of the manifest against data/ (and that data/ holds nothing else). */
static int verify(yajl_val m, const char *data, char *err, size_t errlen)
{
    yajl_val files = get(m, "files", NULL, yajl_t_array);
    if (!files)
        return sx_fail(err, errlen, -EBADMSG, "the manifest has no file list");
    char **names = NULL;
    size_t n = 0;
    int rc = list_files(data, &names, &n);
    if (rc < 0)
        return sx_fail(err, errlen, rc, "cannot list \"%s\" (or it holds something other than plain files)", data);
    if (n != files->u.array.len)
        rc = sx_fail(err, errlen, -EBADMSG, "\"%s\" holds %zu files, the manifest lists %zu", data, n,
                     files->u.array.len);
    for (size_t i = 0; rc == 0 && i < files->u.array.len; i++) {
        yajl_val f = files->u.array.values[i];
        yajl_val name = get(f, "name", NULL, yajl_t_string), hash = get(f, "blake2b", NULL, yajl_t_string);
        uint64_t bytes = get_u64(f, "bytes", NULL), size = 0;
        if (!name || !hash || !plain_name(YAJL_GET_STRING(name))) {
            rc = sx_fail(err, errlen, -EBADMSG, "manifest entry %zu is malformed", i);
            break;
        }
        char path[PATH_BUF], hex[HASH_HEX];
        snprintf(path, sizeof(path), "%s/%s", data, YAJL_GET_STRING(name));
        rc = hash_file(path, hex, &size);
        if (rc < 0)
            rc = sx_fail(err, errlen, -EBADMSG, "\"%s\" is missing or unreadable", path);
        else if (size != bytes || strcmp(hex, hash->u.string) != 0)
            rc = sx_fail(err, errlen, -EBADMSG, "\"%s\" does not match the manifest (size or hash differ)", path);
    }
    free_names(names, n);
    return rc;
}

/* The MAC file's first line (malloc'd), NULL when there is none. */
static char *read_mac_line(const char *dir)
{
    char path[PATH_BUF];
    snprintf(path, sizeof(path), "%s/%s", dir, SX_BACKUP_MANIFEST_MAC);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *line = calloc(1, 256);
    if (line && !fgets(line, 256, f))
        line[0] = '\0';
    fclose(f);
    return line;
}

int sx_backup_restore(const char *dir, const char *target, sx_backup_info *info, sx_backup_check_fn check, void *ctx,
                      char *err, size_t errlen)
{
    if (!dir || !target || !info || !check)
        return sx_fail(err, errlen, -EINVAL, "invalid argument");
    if (strlen(dir) > PATH_MAX - 64 || strlen(target) > PATH_MAX - 64)
        return sx_fail(err, errlen, -ENAMETOOLONG, "path too long");
    char mpath[PATH_BUF], data[PATH_MAX];
    snprintf(mpath, sizeof(mpath), "%s/%s", dir, SX_BACKUP_MANIFEST);
    snprintf(data, sizeof(data), "%s/%s", dir, SX_BACKUP_DATA);
    FILE *f = fopen(mpath, "re");
    if (!f) {
        int e = errno;
        return sx_fail(err, errlen, -e, "cannot open \"%s\": %s", mpath, strerror(e));
    }
    char *text = malloc(MANIFEST_MAX + 1);
    size_t len = text ? fread(text, 1, MANIFEST_MAX, f) : 0;
    fclose(f);
    if (!text)
        return sx_fail(err, errlen, -ENOMEM, "out of memory");
    text[len] = '\0';
    char perr[128];
    yajl_val m = yajl_tree_parse(text, perr, sizeof(perr));
    yajl_val fmt = m ? get(m, "format", NULL, yajl_t_string) : NULL;
    if (!fmt || strcmp(fmt->u.string, MANIFEST_FORMAT) != 0) {
        yajl_tree_free(m);
        free(text);
        return sx_fail(err, errlen, -EBADMSG, "\"%s\" is not a secretsd backup manifest (\"%s\")", mpath,
                       MANIFEST_FORMAT);
    }
    memset(info, 0, sizeof(*info));
    yajl_val backend = get(m, "backend", NULL, yajl_t_string), seal = get(m, "seal", NULL, yajl_t_string);
    snprintf(info->backend, sizeof(info->backend), "%s", backend ? YAJL_GET_STRING(backend) : "");
    snprintf(info->seal, sizeof(info->seal), "%s", seal ? YAJL_GET_STRING(seal) : "");
    info->active_master = (uint32_t)get_u64(m, "activeMasterVersion", NULL);
    info->secrets = get_u64(m, "records", "secrets");
    info->values = get_u64(m, "records", "values");
    info->envs = get_u64(m, "records", "envs");
    info->data_keys = get_u64(m, "records", "dataKeys");
    info->tokens = get_u64(m, "records", "tokens");
    int rc = verify(m, data, err, errlen);
    yajl_val files = get(m, "files", NULL, yajl_t_array);
    for (size_t i = 0; rc == 0 && files && i < files->u.array.len; i++) {
        info->files++;
        info->bytes += get_u64(files->u.array.values[i], "bytes", NULL);
    }
    if (rc < 0) {
        yajl_tree_free(m);
        free(text);
        return rc;
    }

    /* The target must be absent or an empty folder: a restore never overwrites a store. */
    struct stat sb;
    bool exists = lstat(target, &sb) == 0;
    if (exists) {
        DIR *d = S_ISDIR(sb.st_mode) ? opendir(target) : NULL;
        bool empty = d != NULL;
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                empty = false;
        if (d)
            closedir(d);
        if (!empty) {
            yajl_tree_free(m);
            free(text);
            return sx_fail(err, errlen, -EEXIST, "\"%s\" exists and is not empty: move it aside first", target);
        }
    }
    char tmp[PATH_MAX], parent[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.restore-XXXXXX", target);
    snprintf(parent, sizeof(parent), "%s", target);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), "%s", slash ? "/" : ".");
    if (!mkdtemp(tmp)) {
        int e = errno;
        yajl_tree_free(m);
        free(text);
        return sx_fail(err, errlen, -e, "cannot create a folder next to \"%s\": %s", target, strerror(e));
    }
    for (size_t i = 0; rc == 0 && i < files->u.array.len; i++) {
        const char *name = YAJL_GET_STRING(get(files->u.array.values[i], "name", NULL, yajl_t_string));
        char from[PATH_BUF], to[PATH_BUF];
        snprintf(from, sizeof(from), "%s/%s", data, name);
        snprintf(to, sizeof(to), "%s/%s", tmp, name);
        if ((rc = copy_file(from, to)) < 0)
            sx_fail(err, errlen, rc, "cannot copy \"%s\": %s", from, strerror(-rc));
    }
    yajl_tree_free(m);
    if (rc == 0 && (rc = fsync_path(tmp, true)) < 0)
        sx_fail(err, errlen, rc, "cannot sync \"%s\"", tmp);
    if (rc == 0) {
        /* The hashes above prove the files match the manifest; only the unsealed copy can prove the
         * manifest itself is the one this installation wrote. */
        char *mac_line = read_mac_line(dir);
        rc = check(ctx, tmp, info, text, len, mac_line, err, errlen);
        free(mac_line);
    }
    free(text);
    if (rc == 0 && exists && rmdir(target) != 0)
        rc = sx_fail(err, errlen, -errno, "cannot replace the empty folder \"%s\"", target);
    if (rc == 0 && rename(tmp, target) != 0)
        rc = sx_fail(err, errlen, -errno, "cannot rename \"%s\" to \"%s\"", tmp, target);
    if (rc == 0)
        (void)fsync_path(parent, true);
    if (rc < 0)
        rmtree(tmp);
    return rc;
}
