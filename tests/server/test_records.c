/*
 * test_records.c - records that carry authority, edited where they are stored, against the real
 * secretsd: a token record's role changed in RocksDB and in a PostgreSQL row is refused (401), a
 * rotation record changed in RocksDB is not run, and a backup with an edited record, file or
 * manifest does not restore. Every refusal is counted in secretsd_forged_records_total.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "ops_util.h"
#ifdef SX_TEST_POSTGRES
#include "pgtest.h"
#endif
#include "storage/storage.h"
#include "testutil.h"

#define SEAL_FILE "type = file\nkey_file = seal.key\n"

/* Open the stopped server's RocksDB store at dir/data (or path) as an intruder would: through the
 * storage layer, which knows nothing of MACs. */
static sx_storage *open_store(const char *path)
{
    sx_storage_options so = {.backend = "rocksdb", .path = path, .sync = true};
    sx_storage *st = NULL;
    char err[256];
    if (sx_storage_open(&so, &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot open %s: %s\n", path, err);
        return NULL;
    }
    return st;
}

/* Set byte off of the record at key to val. */
static int edit_byte(sx_storage *st, const char *key, size_t off, unsigned char val)
{
    void *v = NULL;
    size_t len = 0;
    int rc = sx_storage_get(st, key, strlen(key), &v, &len, NULL);
    if (rc != 0 || off >= len) {
        fprintf(stderr, "edit %s: rc %d, %zu bytes\n", key, rc, len);
        sx_storage_free(v);
        return -1;
    }
    unsigned char *b = malloc(len);
    memcpy(b, v, len);
    sx_storage_free(v);
    b[off] = val;
    rc = sx_storage_put(st, key, strlen(key), b, len, NULL);
    free(b);
    return rc;
}

static long get_status(const sx_srv *srv, const char *token, const char *path)
{
    ops_client c;
    ops_client_init(&c, srv, false, token);
    long st = 0;
    ops_call(&c, "GET", path, NULL, &st, NULL);
    ops_client_clear(&c);
    return st;
}

#define REVEAL "/acme/rec/envs/e0/secrets/S0/value"

/* ---- token records ------------------------------------------------------------------------------- */

static void token_record_edited_in_rocksdb_is_refused_401(void)
{
    char *dir = sx_test_tmpdir("rec-token");
    ops_write_config(dir, "a.conf", true, SEAL_FILE);
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    char id[33];
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    char *viewer = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", id);
    REQUIRE(owner && viewer);
    CHECK_INT(ops_seed(&srv, owner, "acme", "rec", NULL, "e0", 2, 1, false), 0);
    CHECK_INT(get_status(&srv, viewer, REVEAL), 403); /* a viewer may not reveal */
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);

    /* Someone with write access to the store turns the viewer into an owner (role byte). */
    char path[1024], key[64];
    snprintf(path, sizeof(path), "%s/data", dir);
    snprintf(key, sizeof(key), "t/%s", id);
    sx_storage *st = open_store(path);
    REQUIRE(st);
    CHECK_INT(edit_byte(st, key, 1, 3), 0);
    sx_storage_close(st);

    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    CHECK_INT(get_status(&srv, viewer, REVEAL), 401);
    CHECK_INT(get_status(&srv, viewer, "/acme/rec/envs/e0/secrets"), 401);
    CHECK_INT(get_status(&srv, owner, REVEAL), 200); /* the untouched token still works */
    CHECK(sx_srv_metric(&srv, "secretsd_forged_records_total{kind=\"token\"}") >= 1);
    snprintf(path, sizeof(path), "%s/stderr.log", dir);
    char *log = sx_test_read_file(path, NULL);
    CHECK(log && strstr(log, "stored token record fails its MAC"));
    free(log);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(owner);
    free(viewer);
    sx_test_rmtree(dir);
    free(dir);
}

#ifdef SX_TEST_POSTGRES
static void token_record_edited_in_a_postgres_row_is_refused_401(void)
{
    sx_srv srv;
    sx_srv_opts o = {.backend = "postgres"};
    int rc = sx_srv_start(&srv, &o);
    if (rc == 77)
        exit(77); /* no PostgreSQL server installed: skipped */
    REQUIRE(rc == 0);
    char id[33];
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    char *viewer = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", id);
    REQUIRE(owner && viewer);
    CHECK_INT(ops_seed(&srv, owner, "acme", "rec", NULL, "e0", 2, 1, false), 0);
    /* The viewer has not been used yet, so no node holds it in a cache: the next request reads the row. */
    char sql[512];
    snprintf(sql, sizeof(sql), "UPDATE secretsd_records SET v = set_byte(v, 1, 3) WHERE k = convert_to('t/%s', 'UTF8')",
             id);
    CHECK_INT(sx_pgtest_exec(srv.pg, "postgres", sql), 0);
    CHECK_INT(get_status(&srv, viewer, REVEAL), 401);
    CHECK_INT(get_status(&srv, owner, REVEAL), 200);
    CHECK(sx_srv_metric(&srv, "secretsd_forged_records_total{kind=\"token\"}") >= 1);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(owner);
    free(viewer);
}
#endif

/* ---- rotation records ---------------------------------------------------------------------------- */

static void rotation_record_edited_in_rocksdb_is_not_run(void)
{
    char *dir = sx_test_tmpdir("rec-rot");
    ops_write_config(dir, "a.conf", true, SEAL_FILE);
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(owner);
    CHECK_INT(ops_seed(&srv, owner, "acme", "rec", NULL, "e0", 40, 2, false), 0);
    /* One value a second: still running when the server stops. */
    yajl_val v = ops_admin_json(&srv, "POST", "/v1/envs/acme/rec/e0/rotate", "{\"rate\":1}", 202);
    CHECK(v != NULL);
    yajl_tree_free(v);
    sx_test_sleep_ms(300);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);

    /* Edit the rate field (offset 11, be32) to 0 = unlimited. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/data", dir);
    sx_storage *st = open_store(path);
    REQUIRE(st);
    CHECK_INT(edit_byte(st, "r/env/acme/rec/e0", 14, 0), 0);
    sx_storage_close(st);

    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    /* Unedited, the unlimited rotation would finish within its grace time and destroy the old data
     * key; edited, it must not run at all: both versions stay. */
    size_t keys = 0;
    for (int i = 0; i < 30; i++) {
        yajl_val e = ops_admin_json(&srv, "GET", "/v1/envs/acme/rec/e0", NULL, 200);
        yajl_val dk = e ? ops_jget(e, yajl_t_array, "dataKeys", NULL) : NULL;
        keys = dk ? dk->u.array.len : 0;
        yajl_tree_free(e);
        if (keys == 1)
            break;
        sx_test_sleep_ms(200);
    }
    CHECK_INT(keys, 2);
    CHECK(sx_srv_metric(&srv, "secretsd_forged_records_total{kind=\"rotation\"}") >= 1);
    /* Asking again is refused: the record is there but is not one this server wrote. */
    sx_resp r;
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    CHECK(sx_srv_request(&srv, SX_ADMIN, "POST", "/v1/envs/acme/rec/e0/rotate", hdrs, "{}", 2, &r) == 0);
    CHECK(r.status >= 400);
    sx_resp_free(&r);
    CHECK_INT(ops_seed(&srv, owner, "acme", "rec", NULL, "e0", 40, 2, true), 0); /* nothing lost */
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(owner);
    sx_test_rmtree(dir);
    free(dir);
}

/* ---- backups --------------------------------------------------------------------------------------- */

static void hash_hex(const char *path, char hex[65], unsigned long long *ret_size)
{
    size_t len = 0;
    char *data = sx_test_read_file(path, &len);
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)(data ? data : ""), len, NULL, 0);
    sodium_bin2hex(hex, 65, h, sizeof(h));
    *ret_size = len;
    free(data);
}

static void gen_s(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* Rewrite bk/MANIFEST.json as an intruder can: the same fields, with every file of data/ listed
 * with its current size and plain BLAKE2b-256 hash. */
static void forge_manifest(const char *bk)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/MANIFEST.json", bk);
    char *text = sx_test_read_file(path, NULL);
    REQUIRE(text);
    yajl_val m = yajl_tree_parse(text, NULL, 0);
    free(text);
    REQUIRE(m && YAJL_IS_OBJECT(m));
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_map_open(g);
    for (size_t i = 0; i < m->u.object.len; i++) {
        const char *k = m->u.object.keys[i];
        yajl_val v = m->u.object.values[i];
        if (strcmp(k, "files") == 0)
            continue;
        gen_s(g, k);
        if (YAJL_IS_STRING(v)) {
            gen_s(g, YAJL_GET_STRING(v));
        } else if (YAJL_IS_NUMBER(v)) {
            yajl_gen_integer(g, YAJL_GET_INTEGER(v));
        } else {
            yajl_gen_map_open(g);
            for (size_t j = 0; j < v->u.object.len; j++) {
                gen_s(g, v->u.object.keys[j]);
                yajl_gen_integer(g, YAJL_GET_INTEGER(v->u.object.values[j]));
            }
            yajl_gen_map_close(g);
        }
    }
    gen_s(g, "files");
    yajl_gen_array_open(g);
    snprintf(path, sizeof(path), "%s/data", bk);
    DIR *d = opendir(path);
    REQUIRE(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char fp[2048], hex[65];
        unsigned long long size;
        snprintf(fp, sizeof(fp), "%s/%s", path, e->d_name);
        hash_hex(fp, hex, &size);
        yajl_gen_map_open(g);
        gen_s(g, "name");
        gen_s(g, e->d_name);
        gen_s(g, "bytes");
        yajl_gen_integer(g, (long long)size);
        gen_s(g, "blake2b");
        gen_s(g, hex);
        yajl_gen_map_close(g);
    }
    closedir(d);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    snprintf(path, sizeof(path), "%s/MANIFEST.json", bk);
    CHECK_INT(sx_test_write_file(path, buf, len), 0);
    yajl_gen_free(g);
    yajl_tree_free(m);
}

/* Restore bk into a new folder: the exit status, and whether the target was left untouched. */
static int restore(const char *dir, const char *bk, const char *want_text)
{
    char *rdir = sx_test_tmpdir("rec-restore");
    char seal[1024];
    snprintf(seal, sizeof(seal), "type = file\nkey_file = %s/seal.key\n", dir);
    ops_write_config(rdir, "b.conf", true, seal);
    char *out = NULL;
    int st = sx_test_sh(&out, "'%s' --config '%s/b.conf' --restore '%s' 2>&1", SX_SECRETSD_PATH, rdir, bk);
    if (want_text && !(out && strstr(out, want_text))) {
        fprintf(stderr, "restore of %s said: %s\n", bk, out ? out : "");
        CHECK(false);
    }
    free(out);
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/data", rdir);
    bool untouched = stat(path, &sb) != 0;
    if (st != 0)
        CHECK(untouched); /* a refused restore changes nothing */
    /* nor leaves a temporary copy */
    sx_test_sh(&out, "ls -a '%s' | grep -c restore-", rdir);
    CHECK(out && atoi(out) == 0);
    free(out);
    sx_test_rmtree(rdir);
    free(rdir);
    return st;
}

static void tampered_backups_are_refused_and_change_nothing(void)
{
    char *dir = sx_test_tmpdir("rec-backup");
    ops_write_config(dir, "a.conf", true, SEAL_FILE);
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    char id[33];
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    char *viewer = sx_srv_mint_token(&srv, "acme", NULL, NULL, "viewer", id);
    REQUIRE(owner && viewer);
    CHECK_INT(ops_seed(&srv, owner, "acme", "rec", NULL, "e0", 10, 1, false), 0);
    char *out = NULL;
    CHECK_INT(sx_test_sh(&out, "cd '%s' && '%s' --config a.conf backup bk 2>&1", dir, SX_SECRETSCTL_PATH), 0);
    free(out);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    char bk[1024], copy[1024], path[1200], key[64];
    snprintf(bk, sizeof(bk), "%s/bk", dir);
    snprintf(key, sizeof(key), "t/%s", id);

    /* The backup as written restores. */
    CHECK_INT(restore(dir, bk, "authenticates the manifest"), 0);

    /* One record edited (the viewer made owner), the manifest's hashes fixed up to match. */
    snprintf(copy, sizeof(copy), "%s/bk-record", dir);
    CHECK_INT(sx_test_sh(NULL, "cp -r '%s' '%s'", bk, copy), 0);
    snprintf(path, sizeof(path), "%s/data", copy);
    sx_storage *st = open_store(path);
    REQUIRE(st);
    CHECK_INT(edit_byte(st, key, 1, 3), 0);
    sx_storage_close(st);
    forge_manifest(copy);
    CHECK_INT(restore(dir, copy, "the manifest fails its MAC"), 1);

    /* One file edited (a line added to RocksDB's options file, which it does not check itself), the
     * manifest fixed up to match. */
    snprintf(copy, sizeof(copy), "%s/bk-file", dir);
    CHECK_INT(sx_test_sh(NULL, "cp -r '%s' '%s' && f=$(ls '%s/data'/OPTIONS-* | head -1) && echo '# edited' >> \"$f\"",
                         bk, copy, copy),
              0);
    forge_manifest(copy);
    CHECK_INT(restore(dir, copy, "the manifest fails its MAC"), 1);

    /* The manifest alone edited (its creation time). */
    snprintf(copy, sizeof(copy), "%s/bk-manifest", dir);
    CHECK_INT(sx_test_sh(NULL,
                         "cp -r '%s' '%s' && sed -i 's/\"createdAt\": \"2/\"createdAt\": \"1/' '%s/MANIFEST.json'", bk,
                         copy, copy),
              0);
    CHECK_INT(restore(dir, copy, "the manifest fails its MAC"), 1);

    /* The MAC file removed. */
    snprintf(copy, sizeof(copy), "%s/bk-nomac", dir);
    CHECK_INT(sx_test_sh(NULL, "cp -r '%s' '%s' && rm '%s/MANIFEST.mac'", bk, copy, copy), 0);
    CHECK_INT(restore(dir, copy, "has no MANIFEST.mac"), 1);

    free(owner);
    free(viewer);
    sx_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"token_record_edited_in_rocksdb_is_refused_401", token_record_edited_in_rocksdb_is_refused_401},
#ifdef SX_TEST_POSTGRES
        {"token_record_edited_in_a_postgres_row_is_refused_401", token_record_edited_in_a_postgres_row_is_refused_401},
#endif
        {"rotation_record_edited_in_rocksdb_is_not_run", rotation_record_edited_in_rocksdb_is_not_run},
        {"tampered_backups_are_refused_and_change_nothing", tampered_backups_are_refused_and_change_nothing},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
