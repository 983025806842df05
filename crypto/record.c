/*
 * record.c - MACs of the records that carry authority but hold no ciphertext (token records,
 * rotation records, the audit chain head).
 *
 * Such a record is plain bytes in the store: whoever can write the store could turn a viewer token
 * into an owner token or rewind a rotation. Each of them therefore ends with a keyed BLAKE2b-256
 * (libsodium crypto_generichash with the keyring's record-MAC key) over a domain label, its
 * storage key and its body, so an edited record - or one copied to another key - fails the check.
 * The key is in the keyring, which only the seal opens. auth/token.c computes the same construction
 * with the key handed to it (the auth module does not depend on this one); FORMAT.md pins it.
 */
#include "crypto/crypto_internal.h"

#include <string.h>

#define RECORD_LABEL "secretsd.record.v1"

void sx_crypto_record_mac(uint8_t tag[SX_CRYPTO_RECORD_MACBYTES], const uint8_t mac_key[SX_CRYPTO_KEYBYTES],
                          const void *skey, size_t sklen, const void *val, size_t vlen)
{
    uint8_t hdr[8];
    crypto_generichash_state st;
    crypto_generichash_init(&st, mac_key, SX_CRYPTO_KEYBYTES, SX_CRYPTO_RECORD_MACBYTES);
    sx_be32_put(hdr, (uint32_t)(sizeof RECORD_LABEL - 1));
    crypto_generichash_update(&st, hdr, 4);
    crypto_generichash_update(&st, (const uint8_t *)RECORD_LABEL, sizeof RECORD_LABEL - 1);
    sx_be32_put(hdr, (uint32_t)sklen);
    crypto_generichash_update(&st, hdr, 4);
    crypto_generichash_update(&st, skey, sklen);
    sx_be32_put(hdr, (uint32_t)vlen);
    crypto_generichash_update(&st, hdr, 4);
    crypto_generichash_update(&st, val, vlen);
    crypto_generichash_final(&st, tag, SX_CRYPTO_RECORD_MACBYTES);
}

int sx_crypto_record_check(size_t *ret_body_len, const uint8_t mac_key[SX_CRYPTO_KEYBYTES], const void *skey,
                           size_t sklen, const void *rec, size_t len)
{
    if (!mac_key || !rec || len < SX_CRYPTO_RECORD_MACBYTES)
        return SX_CRYPTO_EFORGED;
    size_t body = len - SX_CRYPTO_RECORD_MACBYTES;
    uint8_t tag[SX_CRYPTO_RECORD_MACBYTES];
    sx_crypto_record_mac(tag, mac_key, skey, sklen, rec, body);
    int ok = sodium_memcmp(tag, (const uint8_t *)rec + body, SX_CRYPTO_RECORD_MACBYTES) == 0;
    if (!ok)
        return SX_CRYPTO_EFORGED;
    *ret_body_len = body;
    return 0;
}
