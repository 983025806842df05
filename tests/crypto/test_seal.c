/*
 * test_seal.c - the file and passphrase seals, seal migration, recovery, keyrings from another
 * installation, concurrent initialisation, and a reopen across a process restart on RocksDB.
 */
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/crypto_internal.h"
#include "helpers.h"

static void test_file_seal_creates_0600_key_and_recovery_key_once(void)
{
    fixture f;
    fixture_init(&f, "cs-file");
    sx_storage *st = mem_store();
    sx_crypto *c = NULL;
    char *rk = NULL, err[256];
    REQUIRE(sx_crypto_open(&c, &rk, st, &f.opt, err, sizeof err) == 0);
    REQUIRE(rk != NULL);
    CHECK(strncmp(rk, "SXR1-", 5) == 0);
    CHECK_INT(strlen(rk), 67);
    struct stat sb;
    REQUIRE(stat(f.key_file, &sb) == 0);
    CHECK_INT(sb.st_mode & 07777, 0600);
    CHECK_INT(sb.st_size, 32);
    uint8_t tok[32];
    memcpy(tok, sx_crypto_system_key(c, SX_CRYPTO_KEY_TOKEN_HASH), 32);
    CHECK(sodium_memcmp(tok, sx_crypto_system_key(c, SX_CRYPTO_KEY_AUDIT), 32) != 0);
    CHECK(sx_crypto_system_key(c, 0) == NULL);
    sx_crypto_free(c);

    char *rk2 = (char *)1;
    REQUIRE(sx_crypto_open(&c, &rk2, st, &f.opt, err, sizeof err) == 0);
    CHECK(rk2 == NULL);
    CHECK(sodium_memcmp(tok, sx_crypto_system_key(c, SX_CRYPTO_KEY_TOKEN_HASH), 32) == 0);
    sx_crypto_status s;
    CHECK_INT(sx_crypto_status_get(c, &s), 0);
    CHECK_INT(s.seal, SX_CRYPTO_SEAL_FILE);
    CHECK_INT(s.active_master, 1);
    CHECK_INT(s.n_masters, 1);
    /* Neither the store nor the key file contains the recovery key's raw bytes or a master key. */
    uint8_t raw[32];
    REQUIRE(sx_crypto_recovery_decode(raw, rk) == 0);
    size_t len;
    uint8_t *kr = must_get(st, SX_KEY_S_KEYRING, &len);
    CHECK(!sx_test_memmem(kr, len, raw, 32));
    CHECK(!sx_test_memmem(kr, len, tok, 32));
    CHECK(!sx_test_memmem(kr, len, c->kr->masters[0].key, 32));
    sx_storage_free(kr);
    sx_crypto_recovery_key_free(rk);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_file_seal_refuses_group_or_world_readable_key(void)
{
    fixture f;
    fixture_init(&f, "cs-perm");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_free(c);
    char err[256];
    REQUIRE(chmod(f.key_file, 0644) == 0);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_EKEYPERM);
    CHECK(strstr(err, "0644") != NULL);
    CHECK(strstr(err, f.key_file) != NULL);
    REQUIRE(chmod(f.key_file, 0640) == 0);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_EKEYPERM);
    /* A fresh install also refuses an existing 0644 key file rather than using it. */
    sx_storage *st2 = mem_store();
    REQUIRE(chmod(f.key_file, 0644) == 0);
    CHECK_INT(sx_crypto_open(&c, NULL, st2, &f.opt, err, sizeof err), SX_CRYPTO_EKEYPERM);
    REQUIRE(chmod(f.key_file, 0600) == 0);
    c = must_open(st, &f.opt);
    sx_crypto_free(c);
    sx_storage_close(st2);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_wrong_or_missing_key_file_is_a_clear_error(void)
{
    fixture f;
    fixture_init(&f, "cs-wrongkey");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_free(c);
    char err[256];
    uint8_t other[32];
    randombytes_buf(other, sizeof other);
    REQUIRE(sx_test_write_file(f.key_file, other, 32) == 0);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_EBADSEAL);
    CHECK(strstr(err, "key file") != NULL);
    REQUIRE(sx_test_write_file(f.key_file, other, 31) == 0);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_EFORMAT);
    unlink(f.key_file);
    /* Missing key file for an existing keyring: not silently replaced by a new one. */
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), -ENOENT);
    CHECK(access(f.key_file, F_OK) != 0);
    /* Another seal type than the store's. */
    sx_crypto_options po = {.seal = {.type = SX_CRYPTO_SEAL_PASSPHRASE, .passphrase = "x", .passphrase_len = 1}};
    CHECK_INT(sx_crypto_open(&c, NULL, st, &po, err, sizeof err), SX_CRYPTO_ESEALTYPE);
    CHECK(strstr(err, "'file'") != NULL);
    sx_storage_close(st);
    fixture_clear(&f);
}

static sx_crypto_options pass_opts(const char *pass)
{
    return (sx_crypto_options){.seal = {.type = SX_CRYPTO_SEAL_PASSPHRASE,
                                        .passphrase = pass,
                                        .passphrase_len = pass ? strlen(pass) : 0,
                                        .pwhash_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                        .pwhash_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE}};
}

static void test_passphrase_seal_right_wrong_and_empty(void)
{
    sx_storage *st = mem_store();
    sx_crypto_options o = pass_opts("correct horse battery staple");
    sx_crypto *c = must_open(st, &o);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "v1");
    sx_crypto_free(c);
    char err[256];
    sx_crypto_options wrong = pass_opts("correct horse battery stapler");
    CHECK_INT(sx_crypto_open(&c, NULL, st, &wrong, err, sizeof err), SX_CRYPTO_EBADSEAL);
    CHECK(strstr(err, "passphrase") != NULL);
    sx_crypto_options empty = pass_opts(NULL);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &empty, err, sizeof err), -EINVAL);
    /* The stored limits are used, whatever is configured now. */
    o.seal.pwhash_opslimit = 0;
    o.seal.pwhash_memlimit = 0;
    c = must_open(st, &o);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "v1"), 0);
    sx_crypto_free(c);
    /* Every byte of the passphrase seal record (salt, limits) is covered too. */
    o = pass_opts("correct horse battery staple");
    size_t len;
    uint8_t *rec = must_get(st, SX_KEY_SLOT_FIRST, &len);
    int detected = 0;
    for (size_t i = 0; i < len; i++) {
        rec[i] ^= 0x01;
        must_put(st, SX_KEY_SLOT_FIRST, rec, len);
        int r = sx_crypto_open(&c, NULL, st, &o, err, sizeof err);
        detected += r == SX_CRYPTO_EBADSEAL || r == SX_CRYPTO_EFORMAT || r == SX_CRYPTO_ESEALTYPE;
        if (r == 0)
            sx_crypto_free(c);
        rec[i] ^= 0x01;
    }
    CHECK_INT(detected, (int)len);
    sx_storage_free(rec);
    free(blob);
    sx_storage_close(st);
}

static void test_passphrase_seal_moderate_limits(void)
{
    sx_storage *st = mem_store();
    sx_crypto_options o = {
        .seal = {.type = SX_CRYPTO_SEAL_PASSPHRASE, .passphrase = "twelve chars", .passphrase_len = 12}};
    sx_crypto *c = must_open(st, &o);
    sx_crypto_free(c);
    size_t len;
    uint8_t *rec = must_get(st, SX_KEY_SLOT_FIRST, &len);
    sx_slot s;
    REQUIRE(sx_slot_parse(&s, 1, rec, len) == 0);
    CHECK_INT(s.sp.opslimit, crypto_pwhash_OPSLIMIT_MODERATE);
    CHECK_INT(s.sp.memlimit, crypto_pwhash_MEMLIMIT_MODERATE);
    sx_storage_free(rec);
    sx_storage_close(st);
}

static void test_reseal_migrates_and_old_seal_stops_working(void)
{
    fixture f;
    fixture_init(&f, "cs-reseal");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "keep me");
    char err[256];
    /* file -> passphrase */
    sx_crypto_options po = pass_opts("new passphrase");
    CHECK_INT(sx_crypto_reseal(c, &po.seal, err, sizeof err), 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "keep me"), 0);
    sx_crypto_free(c);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_ESEALTYPE);
    c = must_open(st, &po);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "keep me"), 0);
    /* passphrase -> another key file; the old key file no longer opens the store */
    fixture g;
    fixture_init(&g, "cs-reseal2");
    CHECK_INT(sx_crypto_reseal(c, &g.opt.seal, err, sizeof err), 0);
    sx_crypto_free(c);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_EBADSEAL);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &po, err, sizeof err), SX_CRYPTO_ESEALTYPE);
    c = must_open(st, &g.opt);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "keep me"), 0);
    /* A reseal that cannot create its seal changes nothing. */
    sx_crypto_options bad = pass_opts(NULL);
    CHECK_INT(sx_crypto_reseal(c, &bad.seal, err, sizeof err), -EINVAL);
    sx_crypto_free(c);
    c = must_open(st, &g.opt);
    sx_crypto_free(c);
    free(blob);
    sx_storage_close(st);
    fixture_clear(&g);
    fixture_clear(&f);
}

static void test_recovery_key_restores_access_after_losing_key_file(void)
{
    fixture f;
    fixture_init(&f, "cs-recover");
    sx_storage *st = mem_store();
    sx_crypto *c = NULL;
    char *rk = NULL, err[256];
    REQUIRE(sx_crypto_open(&c, &rk, st, &f.opt, err, sizeof err) == 0);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "precious");
    uint32_t active;
    CHECK_INT(sx_crypto_master_add(c, &active, 1), 0); /* the recovery copy follows rotations */
    uint8_t tok[32];
    memcpy(tok, sx_crypto_system_key(c, SX_CRYPTO_KEY_TOKEN_HASH), 32);
    sx_crypto_free(c);
    uint8_t *old_key;
    size_t klen;
    old_key = (uint8_t *)sx_test_read_file(f.key_file, &klen);
    unlink(f.key_file);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), -ENOENT);

    /* A mistyped recovery key, and one from another install, are refused. */
    char bad[SX_CRYPTO_RECOVERY_KEY_SIZE];
    snprintf(bad, sizeof bad, "%s", rk);
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    CHECK_INT(sx_crypto_recover(&c, st, bad, &f.opt, err, sizeof err), SX_CRYPTO_EBADRECOVERY);
    uint8_t raw[32];
    char foreign[SX_CRYPTO_RECOVERY_KEY_SIZE];
    randombytes_buf(raw, 32);
    sx_crypto_recovery_encode(foreign, raw);
    CHECK_INT(sx_crypto_recover(&c, st, foreign, &f.opt, err, sizeof err), SX_CRYPTO_EBADRECOVERY);

    fixture g;
    fixture_init(&g, "cs-recover2");
    REQUIRE(sx_crypto_recover(&c, st, rk, &g.opt, err, sizeof err) == 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "precious"), 0);
    CHECK(sodium_memcmp(tok, sx_crypto_system_key(c, SX_CRYPTO_KEY_TOKEN_HASH), 32) == 0);
    sx_crypto_status s;
    CHECK_INT(sx_crypto_status_get(c, &s), 0);
    CHECK_INT(s.active_master, 2);
    sx_crypto_free(c);
    c = must_open(st, &g.opt);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "precious"), 0);
    sx_crypto_free(c);
    /* The old key file, found again, no longer opens the store. */
    REQUIRE(old_key && sx_test_write_file(f.key_file, old_key, klen) == 0);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_EBADSEAL);
    /* The recovery key stays valid (recover again, back to a passphrase). */
    sx_crypto_options po = pass_opts("a passphrase of some length");
    REQUIRE(sx_crypto_recover(&c, st, rk, &po, err, sizeof err) == 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "precious"), 0);
    sx_crypto_free(c);
    free(old_key);
    free(blob);
    sx_crypto_recovery_key_free(rk);
    sx_storage_close(st);
    fixture_clear(&g);
    fixture_clear(&f);
}

static void copy_record(sx_storage *from, sx_storage *to, const char *key)
{
    size_t len;
    uint8_t *v = must_get(from, key, &len);
    must_put(to, key, v, len);
    sx_storage_free(v);
}

static void test_keyring_from_another_install_fails(void)
{
    fixture f;
    fixture_init(&f, "cs-install");
    sx_storage *a = mem_store(), *b = mem_store();
    /* Two installs that even share the key file. */
    sx_crypto *ca = must_open(a, &f.opt), *cb = must_open(b, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t lb;
    uint8_t *bb = must_encrypt(cb, &lb, &p, "b's value");
    sx_crypto_free(ca);
    sx_crypto_free(cb);
    char err[256];
    copy_record(a, b, SX_KEY_S_KEYRING);
    CHECK_INT(sx_crypto_open(&cb, NULL, b, &f.opt, err, sizeof err), SX_CRYPTO_EBADSEAL);
    /* Copy A's slots too: the keyring opens, but B's data keys are not A's to unwrap. */
    copy_record(a, b, SX_KEY_SLOT_FIRST);
    copy_record(a, b, SX_KEY_SLOT_RECOVERY);
    cb = must_open(b, &f.opt);
    CHECK_INT(decrypt_is(cb, &p, bb, lb, "b's value"), SX_CRYPTO_EFORGED);
    sx_crypto_free(cb);
    free(bb);
    sx_storage_close(a);
    sx_storage_close(b);
    fixture_clear(&f);
}

typedef struct opener {
    sx_storage *st;
    const sx_crypto_options *opt;
    int rc;
    char *rk;
    uint8_t tok[32];
} opener;

static void *opener_main(void *arg)
{
    opener *o = arg;
    sx_crypto *c;
    char err[256];
    o->rc = sx_crypto_open(&c, &o->rk, o->st, o->opt, err, sizeof err);
    if (o->rc == 0) {
        memcpy(o->tok, sx_crypto_system_key(c, SX_CRYPTO_KEY_TOKEN_HASH), 32);
        sx_crypto_free(c);
    }
    return NULL;
}

static void test_concurrent_initialisation_has_one_winner(void)
{
    enum { T = 6 };
    for (int round = 0; round < 2; round++) {
        fixture f;
        fixture_init(&f, "cs-race");
        sx_crypto_options po = pass_opts("a passphrase of some length");
        sx_storage *st = mem_store();
        pthread_t th[T];
        opener o[T];
        for (int i = 0; i < T; i++) {
            o[i] = (opener){.st = st, .opt = round ? &po : &f.opt};
            pthread_create(&th[i], NULL, opener_main, &o[i]);
        }
        int winners = 0;
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            CHECK_INT(o[i].rc, 0);
            winners += o[i].rk != NULL;
            CHECK(sodium_memcmp(o[i].tok, o[0].tok, 32) == 0);
            sx_crypto_recovery_key_free(o[i].rk);
        }
        CHECK_INT(winners, 1);
        sx_storage_close(st);
        fixture_clear(&f);
    }
}

static void test_rocksdb_reopen_across_process_restart(void)
{
    if (!sx_storage_backend_find("rocksdb")) {
        fprintf(stderr, "rocksdb backend not built: skipped\n");
        return;
    }
    fixture f;
    fixture_init(&f, "cs-rocks");
    char path[600], blobfile[600];
    snprintf(path, sizeof path, "%s/db", f.dir);
    snprintf(blobfile, sizeof blobfile, "%s/blob", f.dir);
    sx_storage_options so = {.backend = "rocksdb", .path = path, .sync = true};
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        sx_storage *st;
        char err[256];
        if (sx_storage_open(&so, &st, err, sizeof err) != 0)
            _exit(2);
        sx_crypto *c;
        if (sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err) != 0)
            _exit(3);
        uint8_t *blob;
        size_t blen;
        if (sx_crypto_value_encrypt(c, &blob, &blen, &p, "durable", 7) != 0 ||
            sx_test_write_file(blobfile, blob, blen) != 0)
            _exit(4);
        free(blob);
        sx_crypto_free(c);
        sx_storage_close(st);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sx_storage *st;
    char err[256];
    REQUIRE(sx_storage_open(&so, &st, err, sizeof err) == 0);
    sx_crypto *c = NULL;
    char *rk = (char *)1;
    REQUIRE(sx_crypto_open(&c, &rk, st, &f.opt, err, sizeof err) == 0);
    CHECK(rk == NULL);
    size_t blen;
    uint8_t *blob = (uint8_t *)sx_test_read_file(blobfile, &blen);
    REQUIRE(blob);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "durable"), 0);
    free(blob);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* Another user owns the key file: they may have read it, or put a key of their own there. Even at
 * mode 0600 it is refused (as root, the key file is handed to uid 65534). */
static void test_file_seal_refuses_key_file_owned_by_another_user(void)
{
    if (geteuid() != 0) {
        printf("skipped: needs root to give the key file to another user\n");
        return;
    }
    fixture f;
    fixture_init(&f, "cs-owner");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_free(c);
    char err[256];
    REQUIRE(chown(f.key_file, 65534, 65534) == 0);
    REQUIRE(chmod(f.key_file, 0600) == 0);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_EKEYPERM);
    CHECK(strstr(err, "owned by uid 65534") != NULL);
    CHECK(strstr(err, f.key_file) != NULL);
    /* A fresh install refuses it too rather than adopting it. */
    sx_storage *st2 = mem_store();
    CHECK_INT(sx_crypto_open(&c, NULL, st2, &f.opt, err, sizeof err), SX_CRYPTO_EKEYPERM);
    CHECK(!sx_test_memmem(err, strlen(err), "SXR1", 4));
    REQUIRE(chown(f.key_file, 0, 0) == 0);
    c = must_open(st, &f.opt);
    sx_crypto_free(c);
    sx_storage_close(st2);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* A new passphrase seal needs 12 characters (code points, not bytes) and Argon2id limits of at
 * least libsodium's INTERACTIVE preset; a refused one writes nothing. */
static void test_passphrase_seal_refuses_short_passphrase_and_weak_limits(void)
{
    sx_storage *st = mem_store();
    sx_crypto *c = NULL;
    char err[256];
    sx_crypto_options o = pass_opts("eleven char");
    CHECK_INT(sx_crypto_open(&c, NULL, st, &o, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "shorter than 12 characters") != NULL);
    o = pass_opts(
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"); /* 22 bytes, 11
                                                                                                        chars */
    CHECK_INT(sx_crypto_open(&c, NULL, st, &o, err, sizeof err), -EINVAL);
    o = pass_opts("a good twelve+ passphrase");
    o.seal.pwhash_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE - 1;
    CHECK_INT(sx_crypto_open(&c, NULL, st, &o, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "INTERACTIVE") != NULL);
    o = pass_opts("a good twelve+ passphrase");
    o.seal.pwhash_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE - 1;
    CHECK_INT(sx_crypto_open(&c, NULL, st, &o, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "INTERACTIVE") != NULL);
    size_t len;
    void *rec = NULL;
    CHECK_INT(sx_storage_get(st, SX_KEY_S_KEYRING, strlen(SX_KEY_S_KEYRING), &rec, &len, NULL), -ENOENT);
    CHECK_INT(sx_storage_get(st, SX_KEY_SLOT_FIRST, strlen(SX_KEY_SLOT_FIRST), &rec, &len, NULL), -ENOENT);
    sx_storage_free(rec);
    /* Exactly 12 characters (twelve 2-byte ones) and INTERACTIVE limits are enough. */
    o = pass_opts("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    c = must_open(st, &o);
    /* A migration to a short passphrase is refused the same way, and the seal stays. */
    sx_crypto_options short_pass = pass_opts("short");
    CHECK_INT(sx_crypto_reseal(c, &short_pass.seal, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "shorter than 12 characters") != NULL);
    sx_crypto_free(c);
    c = must_open(st, &o);
    sx_crypto_free(c);
    sx_storage_close(st);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    static const sx_test tests[] = {
        {"file_seal_creates_0600_key_and_recovery_key_once", test_file_seal_creates_0600_key_and_recovery_key_once},
        {"file_seal_refuses_group_or_world_readable_key", test_file_seal_refuses_group_or_world_readable_key},
        {"wrong_or_missing_key_file_is_a_clear_error", test_wrong_or_missing_key_file_is_a_clear_error},
        {"passphrase_seal_right_wrong_and_empty", test_passphrase_seal_right_wrong_and_empty},
        {"passphrase_seal_moderate_limits", test_passphrase_seal_moderate_limits},
        {"file_seal_refuses_key_file_owned_by_another_user", test_file_seal_refuses_key_file_owned_by_another_user},
        {"passphrase_seal_refuses_short_passphrase_and_weak_limits",
         test_passphrase_seal_refuses_short_passphrase_and_weak_limits},
        {"reseal_migrates_and_old_seal_stops_working", test_reseal_migrates_and_old_seal_stops_working},
        {"recovery_key_restores_access_after_losing_key_file", test_recovery_key_restores_access_after_losing_key_file},
        {"keyring_from_another_install_fails", test_keyring_from_another_install_fails},
        {"concurrent_initialisation_has_one_winner", test_concurrent_initialisation_has_one_winner},
        {"rocksdb_reopen_across_process_restart", test_rocksdb_reopen_across_process_restart},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
