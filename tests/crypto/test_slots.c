/*
 * test_slots.c - keyslots: several unlock methods for one keyring, the upgrade of a one-seal store,
 * slot records that cannot be moved or swapped, the refusals that keep an operator from locking
 * themselves out, racing slot changes, and rekey.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto_internal.h"
#include "helpers.h"

static sx_crypto_options pass_opts(const char *pass)
{
    return (sx_crypto_options){.seal = {.type = SX_CRYPTO_SEAL_PASSPHRASE,
                                        .passphrase = pass,
                                        .passphrase_len = strlen(pass),
                                        .pwhash_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                        .pwhash_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE}};
}

static sx_crypto_options file_opts(const char *path)
{
    return (sx_crypto_options){.seal = {.type = SX_CRYPTO_SEAL_FILE, .key_file = path}};
}

static int try_open(sx_storage *st, const sx_crypto_options *o, char *err, size_t errlen)
{
    sx_crypto *c = NULL;
    int r = sx_crypto_open(&c, NULL, st, o, err, errlen);
    sx_crypto_free(c);
    return r;
}

static size_t list(sx_crypto *c, sx_crypto_slot_info *out)
{
    size_t n = 0;
    if (sx_crypto_slot_list(c, out, SX_CRYPTO_MAX_SLOTS, &n) != 0)
        abort();
    return n;
}

static void test_new_store_has_recovery_slot_and_own_slot(void)
{
    fixture f;
    fixture_init(&f, "sl-new");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_slot_info s[SX_CRYPTO_MAX_SLOTS];
    REQUIRE(list(c, s) == 2);
    CHECK_INT(s[0].id, 0);
    CHECK_INT(s[0].type, SX_CRYPTO_SEAL_RECOVERY);
    CHECK_STR(s[0].label, "recovery");
    CHECK_INT(s[1].id, 1);
    CHECK_INT(s[1].type, SX_CRYPTO_SEAL_FILE);
    CHECK(s[1].current && !s[0].current);
    CHECK(!s[0].stale && !s[1].stale);
    CHECK(s[1].created > 0);
    sx_crypto_free(c);
    /* A second open notes the slot's use. */
    c = must_open(st, &f.opt);
    REQUIRE(list(c, s) == 2);
    CHECK(s[1].last_used > 0);
    CHECK_INT(s[0].last_used, 0);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_several_slots_each_open_the_keyring(void)
{
    fixture f;
    fixture_init(&f, "sl-multi");
    char k2[600];
    snprintf(k2, sizeof k2, "%s/second.key", f.dir);
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "shared");
    char err[512];
    uint32_t id2 = 0, id3 = 0;
    sx_crypto_options po = pass_opts("correct horse battery staple"), fo2 = file_opts(k2);
    CHECK_INT(sx_crypto_slot_add(c, &id2, &po.seal, "ops team", err, sizeof err), 0);
    CHECK_INT(sx_crypto_slot_add(c, &id3, &fo2.seal, NULL, err, sizeof err), 0);
    CHECK_INT(id2, 2);
    CHECK_INT(id3, 3);
    /* A label that is not printable ASCII, or too long, is refused. */
    uint32_t bad;
    CHECK_INT(sx_crypto_slot_add(c, &bad, &po.seal, "tab\there", err, sizeof err), -EINVAL);
    sx_crypto_free(c);
    /* Every method opens the same keyring; a file node tries both file slots. */
    c = must_open(st, &po);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "shared"), 0);
    CHECK_INT(sx_crypto_slot_current(c, NULL), 2);
    sx_crypto_free(c);
    c = must_open(st, &fo2);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "shared"), 0);
    CHECK_INT(sx_crypto_slot_current(c, NULL), 3);
    sx_crypto_free(c);
    /* A wrong passphrase names the slot type it tried, not the secret. */
    sx_crypto_options wrong = pass_opts("not the passphrase at all");
    CHECK_INT(try_open(st, &wrong, err, sizeof err), SX_CRYPTO_EBADSEAL);
    CHECK(strstr(err, "passphrase") != NULL);
    CHECK(!strstr(err, "not the passphrase"));
    free(blob);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_refusals_last_own_and_recovery_slot(void)
{
    fixture f;
    fixture_init(&f, "sl-refuse");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    char err[512];
    CHECK_INT(sx_crypto_slot_remove(c, 1, 0, err, sizeof err), SX_CRYPTO_ESLOTREFUSED);
    CHECK(strstr(err, "this node opened") != NULL);
    CHECK_INT(sx_crypto_slot_remove(c, 0, 0, err, sizeof err), SX_CRYPTO_ESLOTREFUSED);
    CHECK(strstr(err, "recovery slot") != NULL);
    CHECK_INT(sx_crypto_slot_remove(c, 7, 0, err, sizeof err), -ENOENT);
    /* With --force the recovery slot goes; then the own slot is the last one, force or not. */
    CHECK_INT(sx_crypto_slot_remove(c, 0, SX_CRYPTO_SLOT_FORCE, err, sizeof err), 0);
    CHECK_INT(sx_crypto_slot_remove(c, 1, SX_CRYPTO_SLOT_FORCE, err, sizeof err), SX_CRYPTO_ESLOTREFUSED);
    CHECK(strstr(err, "last slot") != NULL);
    sx_crypto_slot_info s[SX_CRYPTO_MAX_SLOTS];
    CHECK_INT(list(c, s), 1);
    sx_crypto_free(c);
    CHECK_INT(try_open(st, &f.opt, err, sizeof err), 0);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_moved_or_swapped_slot_record_opens_nothing(void)
{
    fixture f;
    fixture_init(&f, "sl-swap");
    char k2[600];
    snprintf(k2, sizeof k2, "%s/second.key", f.dir);
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_options fo2 = file_opts(k2);
    uint32_t id;
    char err[512];
    REQUIRE(sx_crypto_slot_add(c, &id, &fo2.seal, "second", err, sizeof err) == 0);
    sx_crypto_free(c);
    size_t l1, l2;
    uint8_t *r1 = must_get(st, "s/slot/00000001", &l1), *r2 = must_get(st, "s/slot/00000002", &l2);
    /* Swap the two records: each lies about its id. */
    must_put(st, "s/slot/00000001", r2, l2);
    must_put(st, "s/slot/00000002", r1, l1);
    CHECK_INT(try_open(st, &f.opt, err, sizeof err), SX_CRYPTO_EFORMAT);
    /* Rewrite the id inside too (a careful attacker): the associated data still binds the old one. */
    uint8_t *m = malloc(l1);
    memcpy(m, r1, l1);
    sx_be32_put(m + 2, 2);
    must_put(st, "s/slot/00000002", m, l1);
    must_put(st, "s/slot/00000001", r2, l2);
    sx_be32_put(r2 + 2, 1);
    must_put(st, "s/slot/00000001", r2, l2);
    CHECK_INT(try_open(st, &f.opt, err, sizeof err), SX_CRYPTO_EBADSEAL);
    CHECK_INT(try_open(st, &fo2, err, sizeof err), SX_CRYPTO_EBADSEAL);
    /* Turn a file slot into a passphrase one: the type is bound too. */
    sx_be32_put(r2 + 2, 2);
    must_put(st, "s/slot/00000001", r1, l1);
    must_put(st, "s/slot/00000002", r2, l2);
    CHECK_INT(try_open(st, &f.opt, err, sizeof err), 0);
    r1[1] = SX_CRYPTO_SEAL_PASSPHRASE;
    must_put(st, "s/slot/00000001", r1, l1);
    CHECK(try_open(st, &f.opt, err, sizeof err) != 0);
    free(m);
    sx_storage_free(r1);
    sx_storage_free(r2);
    sx_storage_close(st);
    fixture_clear(&f);
}

/* Write the one-seal store of earlier versions for a file seal: s/seal, s/keyring sealed under the
 * key file's key, s/keyring.recovery. Returns the recovery key (sodium_malloc'd). */
static char *legacy_store(sx_storage *st, const char *key_file, uint8_t tok[32])
{
    uint8_t key[32], raw[32], rpk[32], rsk[32], sys[96], nonce[SX_NONCEBYTES];
    randombytes_buf(key, sizeof key);
    if (sx_test_write_file(key_file, key, sizeof key) != 0 || chmod(key_file, 0600) != 0)
        abort();
    sx_seal_params sp = {.type = SX_CRYPTO_SEAL_FILE};
    randombytes_buf(sp.seal_id, sizeof sp.seal_id);
    uint8_t *seal;
    size_t seal_len;
    if (sx_seal_params_encode(&seal, &seal_len, &sp) != 0)
        abort();
    randombytes_buf(raw, sizeof raw);
    sx_crypto_recovery_keypair(rpk, rsk, raw);
    sx_keyring *kr = sodium_malloc(sizeof *kr);
    memset(kr, 0, sizeof *kr);
    randombytes_buf(kr->install_id, 16);
    memcpy(kr->recovery_pk, rpk, 32);
    kr->active = 1;
    kr->n = 1;
    kr->masters[0].version = 1;
    kr->flags = SX_KEYRING_F_RECORD_MACS;
    randombytes_buf(kr->masters[0].key, 32);
    randombytes_buf(sys, 64);
    memcpy(tok, sys, 32);
    uint8_t pt[SX_KEYRING_PLAIN_MAX];
    size_t len = sx_crypto_keyring_encode(pt, kr, sys);
    uint8_t *sealed = malloc(SX_KEYRING_HDR_LEN + len + SX_TAGBYTES), *rec = malloc(SX_RECOVERY_HDR_LEN + len + 16);
    randombytes_buf(nonce, sizeof nonce);
    sx_crypto_keyring_seal_nonce(sealed, key, seal, seal_len, pt, len, nonce);
    if (sx_crypto_recovery_seal(rec, rpk, pt, len) != 0)
        abort();
    must_put(st, SX_KEY_S_SEAL, seal, seal_len);
    must_put(st, SX_KEY_S_KEYRING, sealed, SX_KEYRING_HDR_LEN + len + SX_TAGBYTES);
    must_put(st, SX_KEY_S_RECOVERY, rec, SX_RECOVERY_HDR_LEN + len + 16);
    char *text = sodium_malloc(SX_CRYPTO_RECOVERY_KEY_SIZE);
    sx_crypto_recovery_encode(text, raw);
    sodium_free(kr);
    free(seal);
    free(sealed);
    free(rec);
    return text;
}

static void test_one_seal_store_is_upgraded_in_place(void)
{
    fixture f;
    fixture_init(&f, "sl-upgrade");
    sx_storage *st = mem_store();
    uint8_t tok[32];
    char *rk = legacy_store(st, f.key_file, tok);
    sx_crypto *c = NULL;
    char *fresh = NULL, err[512];
    REQUIRE(sx_crypto_open(&c, &fresh, st, &f.opt, err, sizeof err) == 0);
    CHECK(fresh == NULL); /* no new recovery key: the old one stays valid */
    CHECK(sodium_memcmp(tok, sx_crypto_system_key(c, SX_CRYPTO_KEY_TOKEN_HASH), 32) == 0);
    sx_crypto_slot_info s[SX_CRYPTO_MAX_SLOTS];
    REQUIRE(list(c, s) == 2);
    CHECK_INT(s[0].type, SX_CRYPTO_SEAL_RECOVERY);
    CHECK_INT(s[1].type, SX_CRYPTO_SEAL_FILE);
    CHECK_STR(s[1].label, "upgraded");
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "after upgrade");
    sx_crypto_free(c);
    void *v = NULL;
    size_t vl;
    CHECK_INT(sx_storage_get(st, SX_KEY_S_SEAL, strlen(SX_KEY_S_SEAL), &v, &vl, NULL), -ENOENT);
    CHECK_INT(sx_storage_get(st, SX_KEY_S_RECOVERY, strlen(SX_KEY_S_RECOVERY), &v, &vl, NULL), -ENOENT);
    /* The same key file opens the upgraded store, and the old recovery key its recovery slot. */
    c = must_open(st, &f.opt);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "after upgrade"), 0);
    sx_crypto_free(c);
    char k2[600];
    snprintf(k2, sizeof k2, "%s/after.key", f.dir);
    sx_crypto_options fo2 = file_opts(k2);
    REQUIRE(sx_crypto_recover(&c, st, rk, &fo2, err, sizeof err) == 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "after upgrade"), 0);
    sx_crypto_free(c);
    /* Recovery of a one-seal store upgrades it too. */
    sx_storage *st2 = mem_store();
    char *rk2 = legacy_store(st2, f.key_file, tok);
    REQUIRE(sx_crypto_recover(&c, st2, rk2, &fo2, err, sizeof err) == 0);
    REQUIRE(list(c, s) == 2);
    CHECK_STR(s[1].label, "recovered");
    sx_crypto_free(c);
    sx_crypto_recovery_key_free(rk);
    sx_crypto_recovery_key_free(rk2);
    free(blob);
    sx_storage_close(st);
    sx_storage_close(st2);
    fixture_clear(&f);
}

typedef struct racer {
    sx_crypto *c; /* opened before the race starts */
    int op;       /* 0 add a passphrase slot, 1 remove slot id */
    uint32_t id;
    int rc;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    sx_crypto *c = r->c;
    char err[512];
    if (r->op == 0) {
        sx_crypto_options po = pass_opts("correct horse battery staple");
        r->rc = sx_crypto_slot_add(c, &r->id, &po.seal, "race", err, sizeof err);
    } else
        r->rc = sx_crypto_slot_remove(c, r->id, SX_CRYPTO_SLOT_FORCE, err, sizeof err);
    return NULL;
}

static void test_racing_adds_and_removes_never_lose_a_slot(void)
{
    fixture f;
    fixture_init(&f, "sl-race");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    sx_crypto_free(c);
    /* Four adds at once: four distinct slots. */
    racer r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        r[i] = (racer){.c = must_open(st, &f.opt), .op = 0};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, race_main, &r[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        sx_crypto_free(r[i].c);
    }
    for (int i = 0; i < 4; i++) {
        CHECK_INT(r[i].rc, 0);
        for (int j = 0; j < i; j++)
            CHECK(r[i].id != r[j].id);
    }
    c = must_open(st, &f.opt);
    sx_crypto_slot_info s[SX_CRYPTO_MAX_SLOTS];
    CHECK_INT(list(c, s), 6);
    char err[512];
    /* Keep two: the file slot and slot 2. */
    for (uint32_t id = 3; id <= 5; id++)
        CHECK_INT(sx_crypto_slot_remove(c, id, 0, err, sizeof err), 0);
    CHECK_INT(sx_crypto_slot_remove(c, 0, SX_CRYPTO_SLOT_FORCE, err, sizeof err), 0);
    sx_crypto_free(c);
    /* Two operators remove the last two slots at once: exactly one succeeds. */
    racer a = {.c = must_open(st, &f.opt), .op = 1, .id = 1}, b = {.c = must_open(st, &f.opt), .op = 1, .id = 2};
    pthread_create(&th[0], NULL, race_main, &a);
    pthread_create(&th[1], NULL, race_main, &b);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    sx_crypto_free(a.c);
    sx_crypto_free(b.c);
    CHECK_INT((a.rc == 0) + (b.rc == 0), 1);
    CHECK(a.rc == SX_CRYPTO_ESLOTREFUSED || b.rc == SX_CRYPTO_ESLOTREFUSED);
    sx_crypto_options po = pass_opts("correct horse battery staple");
    c = must_open(st, a.rc == 0 ? &po : &f.opt);
    CHECK_INT(list(c, s), 1);
    sx_crypto_free(c);
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_reseal_replaces_only_the_own_slot(void)
{
    fixture f;
    fixture_init(&f, "sl-reseal");
    sx_storage *st = mem_store();
    sx_crypto *c = must_open(st, &f.opt);
    char err[512];
    sx_crypto_options po = pass_opts("correct horse battery staple");
    CHECK_INT(sx_crypto_reseal(c, &po.seal, err, sizeof err), 0);
    sx_crypto_seal_type t;
    CHECK_INT(sx_crypto_slot_current(c, &t), 2);
    CHECK_INT(t, SX_CRYPTO_SEAL_PASSPHRASE);
    sx_crypto_slot_info s[SX_CRYPTO_MAX_SLOTS];
    REQUIRE(list(c, s) == 2);
    CHECK_INT(s[0].type, SX_CRYPTO_SEAL_RECOVERY);
    CHECK_INT(s[1].id, 2);
    sx_crypto_free(c);
    CHECK_INT(try_open(st, &f.opt, err, sizeof err), SX_CRYPTO_ESEALTYPE);
    CHECK(strstr(err, "'passphrase'") && strstr(err, "'recovery'"));
    sx_storage_close(st);
    fixture_clear(&f);
}

static void test_rekey_stops_old_slot_material(void)
{
    fixture f;
    fixture_init(&f, "sl-rekey");
    char k2[600];
    snprintf(k2, sizeof k2, "%s/second.key", f.dir);
    sx_storage *st = mem_store();
    sx_crypto *c = NULL;
    char *rk = NULL, err[512];
    REQUIRE(sx_crypto_open(&c, &rk, st, &f.opt, err, sizeof err) == 0);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "rekeyed");
    sx_crypto_options fo2 = file_opts(k2);
    uint32_t id;
    REQUIRE(sx_crypto_slot_add(c, &id, &fo2.seal, "leaked", err, sizeof err) == 0);
    /* Another node opened with the same slot: it follows the rekey. */
    sx_crypto *other = must_open(st, &f.opt);
    /* Copies of the slot records before the rekey (what a thief of a backup would hold). */
    size_t l1, l2;
    uint8_t *old1 = must_get(st, SX_KEY_SLOT_FIRST, &l1), *old2 = must_get(st, "s/slot/00000002", &l2);
    sx_crypto_slot_info dropped[SX_CRYPTO_MAX_SLOTS];
    size_t nd = 0;
    CHECK_INT(sx_crypto_rekey(c, dropped, SX_CRYPTO_MAX_SLOTS, &nd, err, sizeof err), 0);
    CHECK_INT(nd, 1);
    CHECK_INT(dropped[0].id, 2);
    CHECK_STR(dropped[0].label, "leaked");
    CHECK_INT(decrypt_is(c, &p, blob, blen, "rekeyed"), 0);
    uint32_t active;
    CHECK_INT(sx_crypto_master_add(c, &active, 0), 0); /* commits under the new key */
    CHECK_INT(sx_crypto_master_add(other, &active, 0), 0);
    sx_crypto_free(other);
    sx_crypto_free(c);
    /* The file slot and the recovery key still open the store. */
    CHECK_INT(try_open(st, &f.opt, err, sizeof err), 0);
    REQUIRE(sx_crypto_recover(&c, st, rk, &f.opt, err, sizeof err) == 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "rekeyed"), 0);
    sx_crypto_free(c);
    /* The old slot records, put back, wrap the old keyring key: they open nothing. */
    must_put(st, "s/slot/00000002", old2, l2);
    CHECK_INT(try_open(st, &fo2, err, sizeof err), SX_CRYPTO_EBADSEAL);
    CHECK(strstr(err, "rekey") != NULL);
    sx_slot s;
    REQUIRE(sx_slot_parse(&s, 2, old2, l2) == 0);
    uint8_t slot_key[32], kk[32];
    int fd = open(k2, O_RDONLY);
    REQUIRE(fd >= 0 && read(fd, slot_key, 32) == 32);
    close(fd);
    REQUIRE(sx_slot_open(kk, &s, slot_key) == 0); /* the thief gets the old keyring key... */
    size_t kl;
    uint8_t *krb = must_get(st, SX_KEY_S_KEYRING, &kl);
    sx_keyring *kr = sodium_malloc(sizeof *kr);
    CHECK_INT(sx_crypto_keyring_unseal(kr, NULL, kk, krb, kl), SX_CRYPTO_EBADSEAL); /* ...which opens nothing */
    sodium_free(kr);
    sx_storage_free(krb);
    sx_storage_free(old1);
    sx_storage_free(old2);
    sx_crypto_recovery_key_free(rk);
    free(blob);
    sx_storage_close(st);
    fixture_clear(&f);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    static const sx_test tests[] = {
        {"new_store_has_recovery_slot_and_own_slot", test_new_store_has_recovery_slot_and_own_slot},
        {"several_slots_each_open_the_keyring", test_several_slots_each_open_the_keyring},
        {"refusals_last_own_and_recovery_slot", test_refusals_last_own_and_recovery_slot},
        {"moved_or_swapped_slot_record_opens_nothing", test_moved_or_swapped_slot_record_opens_nothing},
        {"one_seal_store_is_upgraded_in_place", test_one_seal_store_is_upgraded_in_place},
        {"racing_adds_and_removes_never_lose_a_slot", test_racing_adds_and_removes_never_lose_a_slot},
        {"reseal_replaces_only_the_own_slot", test_reseal_replaces_only_the_own_slot},
        {"rekey_stops_old_slot_material", test_rekey_stops_old_slot_material},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
