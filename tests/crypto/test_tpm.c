/*
 * test_tpm.c - the TPM seal against a real swtpm that the test starts (and kills) itself.
 *
 * Each swtpm (tests/lib/swtpm.h) gets a fresh state folder and two free local ports (server and
 * control); a second swtpm with fresh state plays "another machine". Without TPM support in the
 * build the program exits 77, which ctest reports as skipped.
 */
#include "crypto/crypto_internal.h"
#include "helpers.h"

#ifndef SX_HAVE_TPM
int main(void)
{
    printf("built without TPM support: skipped\n");
    return 77;
}
#else

#include <signal.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "swtpm.h"

static sx_crypto_options tpm_opts(const sx_swtpm *t, uint32_t pcrs)
{
    return (sx_crypto_options){.seal = {.type = SX_CRYPTO_SEAL_TPM, .tcti = t->tcti, .pcrs = pcrs}};
}

/* Count transient objects and loaded sessions left in the TPM (there must be none). */
static int tpm_leftovers(const sx_swtpm *t)
{
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *esys = NULL;
    int n = -1;
    if (Tss2_TctiLdr_Initialize(t->tcti, &tcti) != TSS2_RC_SUCCESS)
        return -1;
    if (Esys_Initialize(&esys, tcti, NULL) == TSS2_RC_SUCCESS) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        n = 0;
        /* TPM2_TRANSIENT_FIRST and TPM2_LOADED_SESSION_FIRST; the header's macros shift into the sign
         * bit of an int, which UBSan rejects. */
        TPM2_HANDLE firsts[] = {0x80000000u, 0x02000000u};
        for (int i = 0; i < 2; i++) {
            if (Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, firsts[i], 64,
                                   NULL, &cap) != TSS2_RC_SUCCESS)
                return -1;
            n += (int)cap->data.handles.count;
            Esys_Free(cap);
        }
        Esys_Finalize(&esys);
    }
    Tss2_TctiLdr_Finalize(&tcti);
    return n;
}

static bool pcr_extend(const sx_swtpm *t, int pcr)
{
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *esys = NULL;
    bool ok = false;
    if (Tss2_TctiLdr_Initialize(t->tcti, &tcti) != TSS2_RC_SUCCESS)
        return false;
    if (Esys_Initialize(&esys, tcti, NULL) == TSS2_RC_SUCCESS) {
        TPML_DIGEST_VALUES d = {.count = 1, .digests = {{.hashAlg = TPM2_ALG_SHA256}}};
        memset(d.digests[0].digest.sha256, 0x42, 32);
        ok = Esys_PCR_Extend(esys, ESYS_TR_PCR0 + (ESYS_TR)pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d) ==
             TSS2_RC_SUCCESS;
        Esys_Finalize(&esys);
    }
    Tss2_TctiLdr_Finalize(&tcti);
    return ok;
}

static void test_tpm_seal_unseal_and_flush_every_handle(void)
{
    sx_swtpm t = {0};
    REQUIRE(sx_swtpm_start(&t));
    sx_storage *st = mem_store();
    sx_crypto_options o = tpm_opts(&t, 0);
    sx_crypto *c = NULL;
    char *rk = NULL, err[512];
    int r = sx_crypto_open(&c, &rk, st, &o, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "open: %s\n", err);
    REQUIRE(r == 0);
    CHECK(rk != NULL);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "tpm-protected");
    sx_crypto_free(c);
    CHECK_INT(tpm_leftovers(&t), 0);
    /* The store holds the sealed object, never the seal key. */
    size_t len;
    uint8_t *rec = must_get(st, SX_KEY_SLOT_FIRST, &len);
    sx_slot s;
    CHECK_INT(sx_slot_parse(&s, 1, rec, len), 0);
    CHECK_INT(s.sp.type, SX_CRYPTO_SEAL_TPM);
    CHECK(s.sp.tpm_publen > 0 && s.sp.tpm_privlen > 0);
    sx_storage_free(rec);

    REQUIRE(sx_crypto_open(&c, NULL, st, &o, err, sizeof err) == 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "tpm-protected"), 0);
    sx_crypto_free(c);
    CHECK_INT(tpm_leftovers(&t), 0);
    /* Migrate to a key file and back to the TPM. */
    fixture f;
    fixture_init(&f, "ct-mig");
    REQUIRE(sx_crypto_open(&c, NULL, st, &o, err, sizeof err) == 0);
    CHECK_INT(sx_crypto_reseal(c, &f.opt.seal, err, sizeof err), 0);
    sx_crypto_free(c);
    c = must_open(st, &f.opt);
    CHECK_INT(sx_crypto_reseal(c, &o.seal, err, sizeof err), 0);
    sx_crypto_free(c);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &f.opt, err, sizeof err), SX_CRYPTO_ESEALTYPE);
    REQUIRE(sx_crypto_open(&c, NULL, st, &o, err, sizeof err) == 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "tpm-protected"), 0);
    sx_crypto_free(c);
    CHECK_INT(tpm_leftovers(&t), 0);
    fixture_clear(&f);
    free(blob);
    sx_crypto_recovery_key_free(rk);
    sx_storage_close(st);
    sx_swtpm_stop(&t);
}

static void test_tpm_other_machine_cannot_unseal_and_recovery_restores(void)
{
    sx_swtpm a = {0}, b = {0};
    REQUIRE(sx_swtpm_start(&a));
    sx_storage *st = mem_store();
    sx_crypto_options oa = tpm_opts(&a, 0);
    sx_crypto *c = NULL;
    char *rk = NULL, err[512];
    REQUIRE(sx_crypto_open(&c, &rk, st, &oa, err, sizeof err) == 0);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(c, &blen, &p, "survives the TPM");
    sx_crypto_free(c);
    sx_swtpm_stop(&a); /* the TPM and its state are gone */

    CHECK_INT(sx_crypto_open(&c, NULL, st, &oa, err, sizeof err), SX_CRYPTO_ENOTPM);
    fprintf(stderr, "  (no TPM) %s\n", err);
    REQUIRE(sx_swtpm_start(&b));
    sx_crypto_options ob = tpm_opts(&b, 0);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &ob, err, sizeof err), SX_CRYPTO_ETPMWRONG);
    fprintf(stderr, "  (other TPM) %s\n", err);
    CHECK_INT(tpm_leftovers(&b), 0);

    REQUIRE(sx_crypto_recover(&c, st, rk, &ob, err, sizeof err) == 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "survives the TPM"), 0);
    sx_crypto_free(c);
    REQUIRE(sx_crypto_open(&c, NULL, st, &ob, err, sizeof err) == 0);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "survives the TPM"), 0);
    sx_crypto_free(c);
    CHECK_INT(tpm_leftovers(&b), 0);
    free(blob);
    sx_crypto_recovery_key_free(rk);
    sx_storage_close(st);
    sx_swtpm_stop(&b);
}

static void test_tpm_pcr_policy_fails_after_extend(void)
{
    sx_swtpm t = {0};
    REQUIRE(sx_swtpm_start(&t));
    sx_storage *st = mem_store();
    sx_crypto_options o = tpm_opts(&t, (1u << 7) | (1u << 14));
    sx_crypto *c = NULL;
    char *rk = NULL, err[512];
    REQUIRE(sx_crypto_open(&c, &rk, st, &o, err, sizeof err) == 0);
    sx_crypto_free(c);
    REQUIRE(sx_crypto_open(&c, NULL, st, &o, err, sizeof err) == 0); /* same PCRs: unseals */
    sx_crypto_free(c);
    REQUIRE(pcr_extend(&t, 14));
    CHECK_INT(sx_crypto_open(&c, NULL, st, &o, err, sizeof err), SX_CRYPTO_EPCR);
    CHECK(strstr(err, "PCR") != NULL);
    fprintf(stderr, "  (pcr) %s\n", err);
    CHECK_INT(tpm_leftovers(&t), 0);
    /* Recovery re-seals to the new PCR values. */
    REQUIRE(sx_crypto_recover(&c, st, rk, &o, err, sizeof err) == 0);
    sx_crypto_free(c);
    REQUIRE(sx_crypto_open(&c, NULL, st, &o, err, sizeof err) == 0);
    sx_crypto_free(c);
    sx_crypto_recovery_key_free(rk);
    sx_storage_close(st);
    sx_swtpm_stop(&t);
}

/* The TPM's dictionary-attack failure counter (TPM2_PT_LOCKOUT_COUNTER), or -1. */
static int tpm_lockout_counter(const sx_swtpm *t)
{
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *esys = NULL;
    int n = -1;
    if (Tss2_TctiLdr_Initialize(t->tcti, &tcti) != TSS2_RC_SUCCESS)
        return -1;
    if (Esys_Initialize(&esys, tcti, NULL) == TSS2_RC_SUCCESS) {
        TPMS_CAPABILITY_DATA *cap = NULL;
        if (Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                               TPM2_PT_LOCKOUT_COUNTER, 1, NULL, &cap) == TSS2_RC_SUCCESS) {
            if (cap->data.tpmProperties.count == 1 &&
                cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_LOCKOUT_COUNTER)
                n = (int)cap->data.tpmProperties.tpmProperty[0].value;
            Esys_Free(cap);
        }
        Esys_Finalize(&esys);
    }
    Tss2_TctiLdr_Finalize(&tcti);
    return n;
}

static sx_crypto_options pass_opts(void)
{
    return (sx_crypto_options){.seal = {.type = SX_CRYPTO_SEAL_PASSPHRASE,
                                        .passphrase = "correct horse battery staple",
                                        .passphrase_len = 28,
                                        .pwhash_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                        .pwhash_memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE}};
}

/* Two machines share one store: each enrols its own TPM, the passphrase slot goes, and each opens
 * with its own TPM only; a machine whose slot is gone cannot use the other's. */
static void test_tpm_two_machines_each_open_with_their_own_slot(void)
{
    sx_swtpm a = {0}, b = {0};
    REQUIRE(sx_swtpm_start(&a));
    REQUIRE(sx_swtpm_start(&b));
    sx_storage *st = mem_store();
    sx_crypto_options po = pass_opts(), oa = tpm_opts(&a, 0), ob = tpm_opts(&b, 0);
    sx_crypto *na = must_open(st, &po), *nb = must_open(st, &po);
    sx_crypto_place p = place4("acme", "web", "prod", "K");
    size_t blen;
    uint8_t *blob = must_encrypt(na, &blen, &p, "two machines");
    char err[512];
    uint32_t ida, idb;
    CHECK_INT(sx_crypto_slot_add(na, &ida, &oa.seal, "node-a", err, sizeof err), 0);
    CHECK_INT(sx_crypto_slot_add(nb, &idb, &ob.seal, "node-b", err, sizeof err), 0);
    CHECK_INT(sx_crypto_slot_remove(na, 1, SX_CRYPTO_SLOT_FORCE, err, sizeof err), 0); /* the passphrase slot */
    sx_crypto_free(na);
    sx_crypto_free(nb);
    CHECK_INT(tpm_leftovers(&a), 0);
    CHECK_INT(tpm_leftovers(&b), 0);
    sx_crypto *c = NULL;
    CHECK_INT(sx_crypto_open(&c, NULL, st, &po, err, sizeof err), SX_CRYPTO_ESEALTYPE);
    /* Each machine tries both TPM slots: the other machine's fails to load, its own opens. */
    REQUIRE(sx_crypto_open(&c, NULL, st, &oa, err, sizeof err) == 0);
    CHECK_INT(sx_crypto_slot_current(c, NULL), ida);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "two machines"), 0);
    sx_crypto_free(c);
    REQUIRE(sx_crypto_open(&c, NULL, st, &ob, err, sizeof err) == 0);
    CHECK_INT(sx_crypto_slot_current(c, NULL), idb);
    CHECK_INT(decrypt_is(c, &p, blob, blen, "two machines"), 0);
    /* Machine B's slot goes: B cannot use A's. */
    CHECK_INT(sx_crypto_slot_remove(c, idb, SX_CRYPTO_SLOT_FORCE, err, sizeof err), 0);
    sx_crypto_free(c);
    CHECK_INT(sx_crypto_open(&c, NULL, st, &ob, err, sizeof err), SX_CRYPTO_ETPMWRONG);
    fprintf(stderr, "  (B with A's slot) %s\n", err);
    CHECK_INT(tpm_leftovers(&a), 0);
    CHECK_INT(tpm_leftovers(&b), 0);
    free(blob);
    sx_storage_close(st);
    sx_swtpm_stop(&a);
    sx_swtpm_stop(&b);
}

/* A PCR change: the TPM slot fails with a message that says what to do; another slot opens, and
 * re-enrolment (add a TPM slot for the new values, remove the old) brings the TPM back. */
static void test_tpm_pcr_change_reenrol_with_another_slot(void)
{
    sx_swtpm t = {0};
    REQUIRE(sx_swtpm_start(&t));
    sx_storage *st = mem_store();
    sx_crypto_options po = pass_opts(), o = tpm_opts(&t, 1u << 14);
    sx_crypto *c = must_open(st, &po);
    char err[512];
    uint32_t old, fresh;
    REQUIRE(sx_crypto_slot_add(c, &old, &o.seal, "tpm", err, sizeof err) == 0);
    sx_crypto_slot_info s[SX_CRYPTO_MAX_SLOTS];
    size_t n;
    REQUIRE(sx_crypto_slot_list(c, s, SX_CRYPTO_MAX_SLOTS, &n) == 0 && n == 3);
    CHECK_INT(s[2].pcrs, 1u << 14);
    CHECK(!s[2].pin);
    sx_crypto_free(c);
    REQUIRE(pcr_extend(&t, 14));
    CHECK_INT(sx_crypto_open(&c, NULL, st, &o, err, sizeof err), SX_CRYPTO_EPCR);
    CHECK(strstr(err, "PCR") && strstr(err, "seal add --type tpm"));
    fprintf(stderr, "  (pcr) %s\n", err);
    c = must_open(st, &po);
    REQUIRE(sx_crypto_slot_add(c, &fresh, &o.seal, "tpm after update", err, sizeof err) == 0);
    CHECK_INT(sx_crypto_slot_remove(c, old, 0, err, sizeof err), 0);
    sx_crypto_free(c);
    REQUIRE(sx_crypto_open(&c, NULL, st, &o, err, sizeof err) == 0);
    CHECK_INT(sx_crypto_slot_current(c, NULL), fresh);
    sx_crypto_free(c);
    CHECK_INT(tpm_leftovers(&t), 0);
    sx_storage_close(st);
    sx_swtpm_stop(&t);
}

/* A slot bound to a PIN: no PIN or a wrong one fails at once (one TPM attempt, even with two PIN
 * slots of this TPM), the right one opens, and the failed attempts never lock the TPM out. */
static void test_tpm_pin_wrong_fails_once_right_opens(void)
{
    sx_swtpm t = {0};
    REQUIRE(sx_swtpm_start(&t));
    sx_storage *st = mem_store();
    sx_crypto_options po = pass_opts(), o = tpm_opts(&t, 1u << 7);
    o.seal.pin = "2468";
    o.seal.pin_len = 4;
    sx_crypto *c = must_open(st, &po);
    char err[512];
    uint32_t id1, id2;
    REQUIRE(sx_crypto_slot_add(c, &id1, &o.seal, "pin 1", err, sizeof err) == 0);
    REQUIRE(sx_crypto_slot_add(c, &id2, &o.seal, "pin 2", err, sizeof err) == 0);
    sx_crypto_slot_info s[SX_CRYPTO_MAX_SLOTS];
    size_t n;
    REQUIRE(sx_crypto_slot_list(c, s, SX_CRYPTO_MAX_SLOTS, &n) == 0 && n == 4);
    CHECK(s[2].pin && s[3].pin);
    sx_crypto_free(c);
    int before = tpm_lockout_counter(&t);
    REQUIRE(before >= 0);
    sx_crypto_options wrong = o, none = o;
    wrong.seal.pin = "1357";
    none.seal.pin = NULL;
    none.seal.pin_len = 0;
    CHECK_INT(sx_crypto_open(&c, NULL, st, &none, err, sizeof err), SX_CRYPTO_EPIN);
    CHECK(strstr(err, "pin_env") != NULL);
    CHECK_INT(tpm_lockout_counter(&t), before); /* no PIN: nothing was tried */
    CHECK_INT(sx_crypto_open(&c, NULL, st, &wrong, err, sizeof err), SX_CRYPTO_EPIN);
    CHECK(!strstr(err, "1357") && !strstr(err, "2468"));
    fprintf(stderr, "  (wrong PIN) %s\n", err);
    CHECK_INT(tpm_lockout_counter(&t), before + 1); /* one attempt, not one per slot */
    REQUIRE(sx_crypto_open(&c, NULL, st, &o, err, sizeof err) == 0);
    CHECK_INT(sx_crypto_slot_current(c, NULL), id1);
    sx_crypto_free(c);
    REQUIRE(sx_crypto_open(&c, NULL, st, &o, err, sizeof err) == 0);
    sx_crypto_free(c);
    CHECK_INT(tpm_leftovers(&t), 0);
    sx_storage_close(st);
    sx_swtpm_stop(&t);
}

static void test_tpm_unreachable_is_a_clear_error(void)
{
    int port = sx_swtpm_free_port_pair();
    REQUIRE(port > 0);
    sx_swtpm t = {.port = port};
    snprintf(t.tcti, sizeof t.tcti, "swtpm:host=127.0.0.1,port=%d", port);
    sx_storage *st = mem_store();
    sx_crypto_options o = tpm_opts(&t, 0);
    sx_crypto *c = NULL;
    char err[512];
    CHECK_INT(sx_crypto_open(&c, NULL, st, &o, err, sizeof err), SX_CRYPTO_ENOTPM);
    CHECK(strstr(err, "TPM") != NULL);
    o.seal.tcti = "device:/nonexistent/tpm";
    CHECK_INT(sx_crypto_open(&c, NULL, st, &o, err, sizeof err), SX_CRYPTO_ENOTPM);
    sx_storage_close(st);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    setenv("TSS2_LOG", "all+none", 0); /* tpm2-tss would print expected failures to stderr */
    signal(SIGPIPE, SIG_IGN);
    static const sx_test tests[] = {
        {"tpm_seal_unseal_and_flush_every_handle", test_tpm_seal_unseal_and_flush_every_handle},
        {"tpm_other_machine_cannot_unseal_and_recovery_restores",
         test_tpm_other_machine_cannot_unseal_and_recovery_restores},
        {"tpm_pcr_policy_fails_after_extend", test_tpm_pcr_policy_fails_after_extend},
        {"tpm_unreachable_is_a_clear_error", test_tpm_unreachable_is_a_clear_error},
        {"tpm_two_machines_each_open_with_their_own_slot", test_tpm_two_machines_each_open_with_their_own_slot},
        {"tpm_pcr_change_reenrol_with_another_slot", test_tpm_pcr_change_reenrol_with_another_slot},
        {"tpm_pin_wrong_fails_once_right_opens", test_tpm_pin_wrong_fails_once_right_opens},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
#endif
