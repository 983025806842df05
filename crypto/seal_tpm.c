/*
 * seal_tpm.c - the TPM 2.0 seal (tpm2-tss ESAPI), built only WITH_TPM (SX_HAVE_TPM).
 *
 * The seal key is a random 32-byte key that the TPM seals: the store keeps the sealed object's
 * public and private blobs (s/seal), which only this TPM can load, and only when the PCRs it was
 * bound to (if any) hold the values they held at seal time. No TPM state is made persistent: the
 * storage primary key is re-derived on every use, so nothing needs provisioning or cleaning up.
 *
 * Errors are mapped to codes an operator can act on: SX_CRYPTO_ENOTPM (nothing answers on the
 * TCTI), SX_CRYPTO_ETPMWRONG (the blobs do not load: another TPM, or its owner seed was cleared),
 * SX_CRYPTO_EPCR (policy check failed: boot state changed), SX_CRYPTO_ELOCKOUT, SX_CRYPTO_ETPM
 * for the rest, each with Tss2_RC_Decode()'s text in err. tpm2-tss itself may print diagnostics to
 * stderr; the server silences them with TSS2_LOG=all+none before starting threads.
 */
#include "crypto/crypto_internal.h"

#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define DEFAULT_TCTI "device:/dev/tpmrm0"

typedef struct tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR primary, session, policy, object;
} tpm;

static const TPMT_SYM_DEF AES128CFB = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};

/* Translate a TSS2 return code into our codes with a reason in err. */
static int tpm_fail(TSS2_RC rc, const char *what, char *err, size_t errlen)
{
    TSS2_RC layer = rc & TSS2_RC_LAYER_MASK, code = rc & 0xFFFF;
    int r = SX_CRYPTO_ETPM;
    const char *hint = "";
    if (layer == TSS2_TPM_RC_LAYER) {
        TSS2_RC base = (code & TPM2_RC_FMT1) ? (code & (TPM2_RC_FMT1 | 0x3F)) : (code & 0xFFF);
        if (base == TPM2_RC_POLICY_FAIL || base == TPM2_RC_PCR_CHANGED) {
            r = SX_CRYPTO_EPCR;
            hint = "the PCR values differ from those the slot was bound to (boot chain or firmware changed); "
                   "open with another slot or the recovery key, then re-enrol: secretsctl seal add --type tpm, "
                   "then seal remove of the old slot";
        } else if (base == TPM2_RC_LOCKOUT) {
            r = SX_CRYPTO_ELOCKOUT;
            hint = "the TPM is in dictionary-attack lockout; wait for it to expire or reset it with the lockout "
                   "authorization";
        } else if (base == TPM2_RC_INTEGRITY || base == TPM2_RC_BINDING) {
            r = SX_CRYPTO_ETPMWRONG;
            hint = "the slot was made by another machine's TPM (or this TPM was cleared); enrol this machine's TPM "
                   "from a running node (secretsctl seal add --type tpm) or use the recovery key";
        } else if (base == TPM2_RC_AUTH_FAIL || base == TPM2_RC_BAD_AUTH) {
            hint = "the TPM refused the authorization (is an owner password set?)";
        }
    } else if (layer == TSS2_TCTI_RC_LAYER || (rc & 0xFFFF) == TSS2_BASE_RC_IO_ERROR ||
               (rc & 0xFFFF) == TSS2_BASE_RC_NO_CONNECTION) {
        r = SX_CRYPTO_ENOTPM;
        hint = "no TPM answers on the configured TCTI";
    }
    return sx_fail(err, errlen, r, "TPM %s failed: %s%s%s", what, Tss2_RC_Decode(rc), *hint ? "; " : "", hint);
}

static void tpm_close(tpm *t)
{
    ESYS_TR *handles[] = {&t->object, &t->policy, &t->session, &t->primary};
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
        if (*handles[i] != ESYS_TR_NONE) {
            (void)Esys_FlushContext(t->esys, *handles[i]);
            *handles[i] = ESYS_TR_NONE;
        }
    if (t->esys)
        Esys_Finalize(&t->esys);
    if (t->tcti)
        Tss2_TctiLdr_Finalize(&t->tcti);
}

static void pcr_selection(TPML_PCR_SELECTION *sel, uint32_t pcrs)
{
    memset(sel, 0, sizeof *sel);
    sel->count = 1;
    sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel->pcrSelections[0].sizeofSelect = 3;
    for (int i = 0; i < 24; i++)
        if (pcrs & (1u << i))
            sel->pcrSelections[0].pcrSelect[i / 8] |= (uint8_t)(1u << (i % 8));
}

/*
 * Connect, derive the storage primary key and start the parameter-encryption session that every
 * later command uses.
 *
 * The primary is the TCG "ECC P-256 SRK" template under the owner hierarchy (restricted
 * decryption key, AES-128-CFB, noDA). CreatePrimary is deterministic for a given owner seed, so
 * the same TPM gives the same key every time and nothing has to be stored in the TPM; a different
 * TPM (or a cleared one) gives a different key, and our blobs then fail the integrity check on
 * Load. CreatePrimary carries no secret, so it runs with the plain (empty) owner password session.
 *
 * The HMAC session is salted with that primary key, so its session key comes from an ECDH exchange
 * the bus cannot see, and it is marked decrypt+encrypt: the first TPM2B parameter of each command
 * (the seal key in Create) and of each response (the seal key in Unseal) crosses the bus
 * AES-encrypted. That is what protects the key from an interposer on an LPC/SPI bus.
 */
static int tpm_open(tpm *t, const char *tcti_conf, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->primary = t->session = t->policy = t->object = ESYS_TR_NONE;
    const char *conf = tcti_conf && *tcti_conf ? tcti_conf : DEFAULT_TCTI;
    TSS2_RC rc = Tss2_TctiLdr_Initialize(conf, &t->tcti);
    if (rc != TSS2_RC_SUCCESS)
        return sx_fail(err, errlen, SX_CRYPTO_ENOTPM, "cannot reach a TPM through TCTI \"%s\": %s", conf,
                       Tss2_RC_Decode(rc));
    rc = Esys_Initialize(&t->esys, t->tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        tpm_close(t);
        return tpm_fail(rc, "initialisation", err, errlen);
    }

    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_PUBLIC tmpl = {
        .publicArea =
            {
                .type = TPM2_ALG_ECC,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
                                    TPMA_OBJECT_DECRYPT,
                .parameters.eccDetail = {.symmetric = {.algorithm = TPM2_ALG_AES,
                                                       .keyBits.aes = 128,
                                                       .mode.aes = TPM2_ALG_CFB},
                                         .scheme.scheme = TPM2_ALG_NULL,
                                         .curveID = TPM2_ECC_NIST_P256,
                                         .kdf.scheme = TPM2_ALG_NULL},
            },
    };
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION none = {0};
    rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
                            &outside, &none, &t->primary, NULL, NULL, NULL, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        tpm_close(t);
        return tpm_fail(rc, "CreatePrimary (storage key)", err, errlen);
    }
    rc = Esys_StartAuthSession(t->esys, t->primary, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                               TPM2_SE_HMAC, &AES128CFB, TPM2_ALG_SHA256, &t->session);
    if (rc == TSS2_RC_SUCCESS)
        rc = Esys_TRSess_SetAttributes(
            t->esys, t->session, TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, 0xff);
    if (rc != TSS2_RC_SUCCESS) {
        tpm_close(t);
        return tpm_fail(rc, "StartAuthSession", err, errlen);
    }
    return 0;
}

/* Start a session of type (TRIAL or POLICY) and run the object's policy in it: PolicyPCR over the
 * current values of pcrs (when any), then PolicyAuthValue when the object has a PIN. */
static TSS2_RC policy_start(tpm *t, TPM2_SE type, uint32_t pcrs, bool pin, ESYS_TR *ret)
{
    static const TPMT_SYM_DEF null_sym = {.algorithm = TPM2_ALG_NULL};
    TPML_PCR_SELECTION sel;
    TPM2B_DIGEST empty = {0};
    pcr_selection(&sel, pcrs);
    TSS2_RC rc = Esys_StartAuthSession(t->esys, type == TPM2_SE_POLICY ? t->primary : ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, type,
                                       type == TPM2_SE_POLICY ? &AES128CFB : &null_sym, TPM2_ALG_SHA256, ret);
    if (rc != TSS2_RC_SUCCESS)
        return rc;
    if (type == TPM2_SE_POLICY)
        rc = Esys_TRSess_SetAttributes(t->esys, *ret, TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, 0xff);
    if (rc == TSS2_RC_SUCCESS && pcrs)
        rc = Esys_PolicyPCR(t->esys, *ret, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &empty, &sel);
    if (rc == TSS2_RC_SUCCESS && pin)
        rc = Esys_PolicyAuthValue(t->esys, *ret, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
    return rc;
}

/* Whether rc is the TPM's answer to a wrong authorization value (a wrong PIN). */
static bool rc_is_bad_auth(TSS2_RC rc)
{
    if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER)
        return false;
    TSS2_RC code = rc & 0xFFFF;
    TSS2_RC base = (code & TPM2_RC_FMT1) ? (code & (TPM2_RC_FMT1 | 0x3F)) : (code & 0xFFF);
    return base == TPM2_RC_AUTH_FAIL || base == TPM2_RC_BAD_AUTH;
}

/*
 * The seal sequence.
 *
 *   1. tpm_open(): connect through the TCTI, re-derive the storage primary key, start the salted
 *      HMAC session with parameter encryption (see above).
 *   2. When PCRs or a PIN are configured, compute the policy digest the sealed object will demand:
 *      a trial session runs PolicyPCR over the *current* sha256 values of those PCRs and/or
 *      PolicyAuthValue (the PIN), and PolicyGetDigest returns the digest; the trial session is
 *      flushed at once. The sealed object then has authPolicy = that digest and no userWithAuth,
 *      so only a policy session in which PolicyPCR succeeded against the same values, and whose
 *      HMAC was keyed with the right PIN, can unseal it. The PIN is the object's authValue. An
 *      object with a PIN is not noDA: wrong PINs count towards the TPM's dictionary-attack lockout,
 *      which is what makes a short PIN safe, so secretsd never retries after a wrong PIN (one
 *      attempt per start). Without PCRs or PIN the object has an empty auth value and userWithAuth.
 *   3. Create a KEYEDHASH object (fixedTPM, fixedParent, noDA, no sensitiveDataOrigin because we
 *      supply the data) under the primary with the 32 random bytes as its sensitive data. The key
 *      travels encrypted by the session (decrypt attribute). The TPM returns the object's public
 *      area and its private area encrypted under the primary's seed: those two blobs are what we
 *      store, marshalled with Tss2_MU. The object is never loaded at seal time.
 *   4. Flush every transient handle (session, primary) and close the context: with swtpm or
 *      /dev/tpm0 there is no resource manager to do it, and the TPM has only a few object slots.
 *
 * Unsealing repeats step 1, Loads the blobs under the primary (a blob from another TPM fails here
 * with an integrity error), and calls Unseal with either the HMAC session or, with PCRs, a fresh
 * salted policy session in which PolicyPCR was run; the response's key is encrypted by the
 * session (encrypt attribute). Every handle is flushed again, on every path.
 */
int sx_seal_tpm_create(uint8_t key[32], sx_seal_params *sp, const sx_crypto_seal_options *o, char *err, size_t errlen)
{
    if (o->pcrs & ~0xFFFFFFu)
        return sx_fail(err, errlen, -EINVAL, "PCR mask names a PCR above 23");
    if (o->pin && (o->pin_len == 0 || o->pin_len > SX_CRYPTO_PIN_MAX))
        return sx_fail(err, errlen, -EINVAL, "a TPM PIN is 1-%u bytes", SX_CRYPTO_PIN_MAX);
    bool pin = o->pin != NULL;
    tpm t;
    int r = tpm_open(&t, o->tcti, err, errlen);
    if (r < 0)
        return r;
    TSS2_RC rc = TSS2_RC_SUCCESS;
    TPM2B_PUBLIC pub = {
        .publicArea =
            {
                .type = TPM2_ALG_KEYEDHASH,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA,
                .parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
            },
    };
    if (pin)
        pub.publicArea.objectAttributes &= ~TPMA_OBJECT_NODA;
    if (o->pcrs || pin) {
        ESYS_TR trial = ESYS_TR_NONE;
        TPM2B_DIGEST *digest = NULL;
        rc = policy_start(&t, TPM2_SE_TRIAL, o->pcrs, pin, &trial);
        if (rc == TSS2_RC_SUCCESS)
            rc = Esys_PolicyGetDigest(t.esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &digest);
        if (trial != ESYS_TR_NONE)
            (void)Esys_FlushContext(t.esys, trial);
        if (rc != TSS2_RC_SUCCESS) {
            tpm_close(&t);
            return tpm_fail(rc, "policy computation", err, errlen);
        }
        pub.publicArea.authPolicy = *digest;
        Esys_Free(digest);
    } else {
        pub.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
    }

    TPM2B_SENSITIVE_CREATE sens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION none = {0};
    TPM2B_PRIVATE *out_priv = NULL;
    TPM2B_PUBLIC *out_pub = NULL;
    randombytes_buf(key, SX_CRYPTO_KEYBYTES);
    sens.sensitive.data.size = SX_CRYPTO_KEYBYTES;
    memcpy(sens.sensitive.data.buffer, key, SX_CRYPTO_KEYBYTES);
    if (pin) {
        sens.sensitive.userAuth.size = (UINT16)o->pin_len;
        memcpy(sens.sensitive.userAuth.buffer, o->pin, o->pin_len);
    }
    rc = Esys_Create(t.esys, t.primary, t.session, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &pub, &outside, &none, &out_priv,
                     &out_pub, NULL, NULL, NULL);
    sodium_memzero(&sens, sizeof sens);
    tpm_close(&t);
    if (rc != TSS2_RC_SUCCESS) {
        sodium_memzero(key, SX_CRYPTO_KEYBYTES);
        return tpm_fail(rc, "Create (seal)", err, errlen);
    }

    uint8_t *pubbuf = malloc(sizeof(TPM2B_PUBLIC)), *privbuf = malloc(sizeof(TPM2B_PRIVATE));
    size_t publen = 0, privlen = 0;
    if (!pubbuf || !privbuf)
        r = -ENOMEM;
    else if (Tss2_MU_TPM2B_PUBLIC_Marshal(out_pub, pubbuf, sizeof(TPM2B_PUBLIC), &publen) != TSS2_RC_SUCCESS ||
             Tss2_MU_TPM2B_PRIVATE_Marshal(out_priv, privbuf, sizeof(TPM2B_PRIVATE), &privlen) != TSS2_RC_SUCCESS)
        r = SX_CRYPTO_ETPM;
    Esys_Free(out_priv);
    Esys_Free(out_pub);
    if (r < 0) {
        free(pubbuf);
        free(privbuf);
        sodium_memzero(key, SX_CRYPTO_KEYBYTES);
        return sx_fail(err, errlen, r, "cannot marshal the sealed TPM object");
    }
    sp->pcrs = o->pcrs;
    sp->pin = pin;
    sp->tpm_pub = pubbuf;
    sp->tpm_publen = publen;
    sp->tpm_priv = privbuf;
    sp->tpm_privlen = privlen;
    return 0;
}

int sx_seal_tpm_unseal(uint8_t key[32], const sx_seal_params *sp, const sx_crypto_seal_options *o, char *err,
                       size_t errlen)
{
    TPM2B_PUBLIC pub = {0};
    TPM2B_PRIVATE priv = {0};
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(sp->tpm_pub, sp->tpm_publen, &off, &pub) != TSS2_RC_SUCCESS ||
        off != sp->tpm_publen)
        return sx_fail(err, errlen, SX_CRYPTO_EFORMAT, "the stored TPM public blob is malformed");
    off = 0;
    if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(sp->tpm_priv, sp->tpm_privlen, &off, &priv) != TSS2_RC_SUCCESS ||
        off != sp->tpm_privlen)
        return sx_fail(err, errlen, SX_CRYPTO_EFORMAT, "the stored TPM private blob is malformed");

    tpm t;
    int r = tpm_open(&t, o->tcti, err, errlen);
    if (r < 0)
        return r;
    TSS2_RC rc = Esys_Load(t.esys, t.primary, t.session, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &t.object);
    if (rc != TSS2_RC_SUCCESS) {
        tpm_close(&t);
        return tpm_fail(rc, "Load (sealed key)", err, errlen);
    }
    /* Loaded: the object is this TPM's. Only now is a missing PIN this slot's problem. */
    if (sp->pin && (!o->pin || o->pin_len == 0 || o->pin_len > SX_CRYPTO_PIN_MAX)) {
        tpm_close(&t);
        return sx_fail(err, errlen, SX_CRYPTO_EPIN,
                       "the TPM slot is bound to a PIN, and none is configured "
                       "([seal] pin_env)");
    }
    if (sp->pin) {
        TPM2B_AUTH auth_value = {.size = (UINT16)o->pin_len};
        memcpy(auth_value.buffer, o->pin, o->pin_len);
        rc = Esys_TR_SetAuth(t.esys, t.object, &auth_value);
        sodium_memzero(&auth_value, sizeof auth_value);
        if (rc != TSS2_RC_SUCCESS) {
            tpm_close(&t);
            return tpm_fail(rc, "SetAuth", err, errlen);
        }
    }
    ESYS_TR auth = t.session;
    if (sp->pcrs || sp->pin) {
        rc = policy_start(&t, TPM2_SE_POLICY, sp->pcrs, sp->pin, &t.policy);
        if (rc != TSS2_RC_SUCCESS) {
            tpm_close(&t);
            return tpm_fail(rc, "PolicyPCR", err, errlen);
        }
        auth = t.policy;
    }
    TPM2B_SENSITIVE_DATA *out = NULL;
    rc = Esys_Unseal(t.esys, t.object, auth, ESYS_TR_NONE, ESYS_TR_NONE, &out);
    tpm_close(&t);
    if (rc != TSS2_RC_SUCCESS && sp->pin && rc_is_bad_auth(rc))
        return sx_fail(err, errlen, SX_CRYPTO_EPIN,
                       "the TPM refused the PIN (%s); secretsd does not retry, so the TPM's dictionary-attack "
                       "counter grows by one per start with a wrong PIN",
                       Tss2_RC_Decode(rc));
    if (rc != TSS2_RC_SUCCESS)
        return tpm_fail(rc, "Unseal", err, errlen);
    if (out->size != SX_CRYPTO_KEYBYTES)
        r = sx_fail(err, errlen, SX_CRYPTO_EFORMAT, "the unsealed TPM object is %u bytes, expected %u",
                    (unsigned)out->size, SX_CRYPTO_KEYBYTES);
    else
        memcpy(key, out->buffer, SX_CRYPTO_KEYBYTES);
    sodium_memzero(out, sizeof *out);
    Esys_Free(out);
    return r;
}
