/*
 * fuzz_common.c - the shared fixture of the fuzz targets (see fuzz_common.h).
 *
 * The store the targets see is the memory backend behind a thin counting wrapper, so a target can
 * assert that an input was refused without any storage access (the Authorization header parser
 * must decide malformed headers alone). Tokens are planted as the auth module itself would write
 * them - a keyed hash of a fixed id and secret under the keyring's token-hash key - so that seeds
 * can authenticate.
 */
#include "fuzz/fuzz_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_internal.h"

/* LeakSanitizer (every fuzz build has ASan): h2o keeps recycled buffers and pool chunks in per-thread free lists that
 * it offers no way to empty, and h2o 2.2.5 never frees the queue of h2o_multithread_create_queue() without libuv (the
 * same suppressions as server/main.c). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\nleak:h2o_multithread_create_queue\n";
}

/* ---- a storage wrapper that counts calls ------------------------------------------------------- */

typedef struct counting_storage {
    sx_storage base; /* must be first */
    sx_storage *inner;
} counting_storage;

static _Atomic unsigned long storage_calls;

static sx_storage *inner_of(sx_storage *s)
{
    return ((counting_storage *)s)->inner;
}

static int c_get(sx_storage *s, const void *key, size_t klen, void **ret_val, size_t *ret_len, uint64_t *ret_rev)
{
    storage_calls++;
    return sx_storage_get(inner_of(s), key, klen, ret_val, ret_len, ret_rev);
}

static int c_put(sx_storage *s, const void *key, size_t klen, const void *val, size_t vlen, uint64_t *ret_rev)
{
    storage_calls++;
    return sx_storage_put(inner_of(s), key, klen, val, vlen, ret_rev);
}

static int c_del(sx_storage *s, const void *key, size_t klen)
{
    storage_calls++;
    return sx_storage_delete(inner_of(s), key, klen);
}

static int c_batch(sx_storage *s, sx_storage_op *ops, size_t n, size_t *ret_failed)
{
    storage_calls++;
    return sx_storage_batch(inner_of(s), ops, n, ret_failed);
}

static int c_iter_new(sx_storage *s, const void *prefix, size_t plen, const void *start, size_t slen, unsigned flags,
                      sx_storage_iter **ret)
{
    storage_calls++;
    return sx_storage_iter_new(inner_of(s), prefix, plen, start, slen, flags, ret);
}

static void c_close(sx_storage *s)
{
    if (!s)
        return;
    sx_storage_close(inner_of(s));
    free(s);
}

static const sx_storage_ops counting_ops = {
    .version = SX_STORAGE_OPS_VERSION,
    .name = "memory",
    .caps = 0,
    .open = NULL,
    .close = c_close,
    .get = c_get,
    .put = c_put,
    .del = c_del,
    .batch = c_batch,
    .iter_new = c_iter_new,
    .checkpoint = NULL,
};

unsigned long fz_storage_calls(void)
{
    return storage_calls;
}

/* ---- the fixture ------------------------------------------------------------------------------- */

static fz_fixture fixture;
static bool fixture_ready;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz fixture: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        die("out of memory", NULL);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void remove_dir(void)
{
    if (!fixture.dir)
        return;
    static const char *const files[] = {"secrets.conf", "seal.key"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = join(fixture.dir, files[i]);
        unlink(p);
        free(p);
    }
    rmdir(fixture.dir);
}

/* Write a token record for a fixed id and secret, exactly as sx_auth_token_create() would. */
static void plant_token(const char *id_hex, unsigned char secret_first, sx_auth_role role, const char *org,
                        const char *project, const char *env)
{
    sx_auth_record r;
    memset(&r, 0, sizeof(r));
    if (sx_auth_id_from_hex(id_hex, SX_AUTH_ID_LEN, r.id) != 0)
        die("bad planted token id", id_hex);
    sx_auth_id_to_hex(r.id, r.info.id);
    r.info.role = role;
    snprintf(r.info.label, sizeof(r.info.label), "fuzz");
    snprintf(r.info.org, sizeof(r.info.org), "%s", org);
    snprintf(r.info.project, sizeof(r.info.project), "%s", project);
    snprintf(r.info.env, sizeof(r.info.env), "%s", env);
    r.info.created_ms = 1;
    unsigned char secret[SX_AUTH_SECRET_BYTES];
    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (unsigned char)(secret_first + i);
    sx_auth_token_hash(fixture.auth, r.id, secret, r.hash);
    unsigned char buf[SX_AUTH_RECORD_MAX];
    size_t len = sx_auth_record_encode(&r, buf);
    char key[SX_AUTH_STORAGE_KEY_LEN];
    sx_auth_storage_key(r.id, key);
    if (sx_storage_put(fixture.inner, key, sizeof(key), buf, len, NULL) != 0)
        die("cannot plant a token", id_hex);
}

fz_fixture *fz_fixture_get(void)
{
    if (fixture_ready)
        return &fixture;
    char err[512];
    const char *tmp = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/secretsd-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl))
        die("mkdtemp", strerror(errno));
    fixture.dir = strdup(tmpl);
    atexit(remove_dir);

    /* Small body limits so that the 413 paths are within a fuzzer's reach. No listener is opened:
     * the HTTP target hands h2o its connections itself. */
    static const char conf[] = "[server]\nthreads = 1\nadmin_socket = \"\"\nmax_body_bytes = 8192\n"
                               "max_value_bytes = 1024\n"
                               "[storage]\nbackend = memory\n"
                               "[seal]\ntype = file\nkey_file = seal.key\n"
                               "[log]\nlevel = error\naccess_log = \"\"\n";
    char *conf_path = join(fixture.dir, "secrets.conf");
    FILE *f = fopen(conf_path, "w");
    if (!f || fwrite(conf, 1, sizeof(conf) - 1, f) != sizeof(conf) - 1 || fclose(f) != 0)
        die("cannot write the config", conf_path);
    if (sx_config_load(conf_path, &fixture.config, err, sizeof(err)) != 0)
        die("config", err);
    free(conf_path);

    sx_storage_options sopt = {.backend = "memory"};
    if (sx_storage_open(&sopt, &fixture.inner, err, sizeof(err)) != 0)
        die("storage", err);
    counting_storage *cs = calloc(1, sizeof(*cs));
    if (!cs)
        die("out of memory", NULL);
    cs->base.ops = &counting_ops;
    cs->inner = fixture.inner;
    fixture.storage = &cs->base;

    sx_crypto_options copt = {.seal = {.type = SX_CRYPTO_SEAL_FILE, .key_file = fixture.config->seal_key_file}};
    char *recovery = NULL;
    if (sx_crypto_open(&fixture.crypto, &recovery, fixture.storage, &copt, err, sizeof(err)) != 0)
        die("crypto", err);
    sx_crypto_recovery_key_free(recovery);
    const uint8_t *key = sx_crypto_system_key(fixture.crypto, SX_CRYPTO_KEY_TOKEN_HASH);
    if (!key || sx_auth_new(fixture.storage, key, SX_AUTH_KEY_BYTES, &fixture.auth) != 0)
        die("auth", NULL);

    plant_token("0123456789abcdef0123456789abcdef", 0x00, SX_AUTH_ROLE_OWNER, "acme", "", "");
    plant_token("fedcba9876543210fedcba9876543210", 0x20, SX_AUTH_ROLE_VIEWER, "acme", "web", "prod");

    /* The planted tokens must verify, or every seed that uses them would test nothing. */
    sx_auth_cache *cache = NULL;
    sx_auth_token who;
    static const char owner[] = "Bearer " FZ_TOKEN_OWNER, viewer[] = "Bearer " FZ_TOKEN_VIEWER;
    if (sx_auth_cache_new(4, &cache) != 0 ||
        sx_auth_verify(fixture.auth, cache, owner, sizeof(owner) - 1, 1000, &who) != 0 ||
        sx_auth_verify(fixture.auth, cache, viewer, sizeof(viewer) - 1, 1000, &who) != 0)
        die("the planted tokens do not verify", NULL);
    sx_auth_cache_free(cache);
    fixture_ready = true;
    return &fixture;
}

/* ---- housekeeping ------------------------------------------------------------------------------ */

static void delete_prefix(const char *prefix)
{
    sx_storage_iter *it = NULL;
    if (sx_storage_iter_new(fixture.inner, prefix, strlen(prefix), NULL, 0, 0, &it) != 0)
        return;
    char **keys = NULL;
    size_t *lens = NULL, n = 0, cap = 0;
    for (;;) {
        const void *k;
        size_t klen;
        if (sx_storage_iter_next(it, &k, &klen, NULL, NULL, NULL) != 0)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nk = realloc(keys, cap * sizeof(*keys));
            size_t *nl = realloc(lens, cap * sizeof(*lens));
            if (!nk || !nl)
                die("out of memory", NULL);
            keys = nk;
            lens = nl;
        }
        keys[n] = malloc(klen);
        if (!keys[n])
            die("out of memory", NULL);
        memcpy(keys[n], k, klen);
        lens[n++] = klen;
    }
    sx_storage_iter_free(it);
    for (size_t i = 0; i < n; i++) {
        int rc = sx_storage_delete(fixture.inner, keys[i], lens[i]);
        (void)rc;
        free(keys[i]);
    }
    free(keys);
    free(lens);
}

void fz_storage_reset_secrets(void)
{
    delete_prefix("m/");
    delete_prefix("v/");
}

/* ---- UTF-8 ------------------------------------------------------------------------------------- */

bool fz_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}
