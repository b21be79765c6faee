/* SPDX-License-Identifier: Apache-2.0 */
/* The device identity key's proof (issue 19): TPM2_Certify (TPM 2.0 Part 3, 18.2) of the
 * key by the device's AK, over qualifying data derived from the verifier's challenge nonce.
 * A valid certify says that a key whose public area the agent sent is loaded in the TPM that
 * holds the AK, now (the nonce), and its attributes say it cannot leave that TPM. Pure: the
 * caller has the AK (enrollment), the nonce (its challenge) and the agent's three byte
 * strings (QuoteAnswer.device_key_public, device_key_certify, device_key_signature). */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#include "quote.h"
#include "vc-util.h"

/* The qualifying data the agent passes to TPM2_Certify is not the nonce itself but
 * SHA-256(VC_CERTIFY_LABEL || nonce): the quote takes the nonce as its extraData, and a
 * signed structure made for one purpose must not be taken for another (domain separation;
 * the label has no NUL, the nonce follows it directly). */
#define VC_CERTIFY_LABEL "vouch device key certify"
#define VC_CERTIFY_QUALIFYING_SIZE 32u

/* SHA-256(VC_CERTIFY_LABEL || nonce) into out. 0, or -EIO (OpenSSL). */
int vc_certify_qualifying_data(const uint8_t *nonce, size_t nonce_len, uint8_t out[VC_CERTIFY_QUALIFYING_SIZE]);

#define VC_CERTIFY_PUBLIC_MAX sizeof(TPMT_PUBLIC) /* a marshalled TPMT_PUBLIC is never larger */

typedef struct vc_certify {
        vc_quote *signed_attest;        /* the TPMS_ATTEST and the AK's TPMT_SIGNATURE, as
                                         * vc_quote_parse() parses them (any attestation type) */
        TPMT_PUBLIC key;                /* the certified key's public area */
        uint8_t *key_bytes;             /* owned copy of its marshalled TPMT_PUBLIC: what the
                                         * Name hashes */
        size_t key_len;
} vc_certify;

/* Parses the certified key's marshalled TPMT_PUBLIC (no TPM2B size prefix; the structure
 * ends where the bytes do), the TPMS_ATTEST TPM2_Certify returned (a TPM2B_ATTEST with its
 * size is accepted, as by vc_quote_parse()) and the AK's TPMT_SIGNATURE. *ret is written
 * only on success; the caller frees it with vc_certify_free(). Nothing is verified.
 * Errors (err says which part and why): -EBADMSG malformed or trailing bytes, -E2BIG a part
 * over its cap, -ENOMEM. */
int vc_certify_parse(const uint8_t *key_public, size_t key_len, const uint8_t *attest, size_t attest_len,
                     const uint8_t *sig, size_t sig_len, vc_certify **ret, vc_error *err);
vc_certify *vc_certify_free(vc_certify *c);

/* What vc_certify_verify() checks, in its order; each failure is one of these. */
typedef enum vc_certify_check {
        VC_CERTIFY_CHECK_NONE = 0,              /* nothing failed (only with VC_CERTIFY_VALID) */
        VC_CERTIFY_CHECK_MAGIC = 1,             /* magic is not TPM_GENERATED_VALUE */
        VC_CERTIFY_CHECK_TYPE = 2,              /* not TPM_ST_ATTEST_CERTIFY */
        VC_CERTIFY_CHECK_AK_ATTRIBUTES = 3,     /* the AK is not a restricted signing key */
        VC_CERTIFY_CHECK_SCHEME = 4,            /* signature scheme or hash refused, not the AK's */
        VC_CERTIFY_CHECK_SIGNATURE = 5,         /* the signature does not verify with the AK */
        VC_CERTIFY_CHECK_QUALIFYING_DATA = 6,   /* extraData is not the expected qualifying data */
        VC_CERTIFY_CHECK_NAME = 7,              /* the certified Name is not the given key's */
        VC_CERTIFY_CHECK_KEY_TYPE = 8,          /* the key is not ECC NIST P-256 (a valid point) */
        VC_CERTIFY_CHECK_KEY_ATTRIBUTES = 9,    /* the key could leave the TPM, was not made in it,
                                                 * decrypts, is restricted, or does not sign */
} vc_certify_check;

typedef enum vc_certify_status {
        VC_CERTIFY_UNVERIFIED = 0,      /* zeroed result: never to be taken as valid */
        VC_CERTIFY_VALID = 1,
        VC_CERTIFY_INVALID = 2,
} vc_certify_status;

typedef struct vc_certify_result {
        vc_certify_status status;
        vc_certify_check failed;
        char reason[384];               /* what failed: field, expected vs actual */
        /* From the verified TPMS_ATTEST (VALID only): the key's Name as the TPM certified it. */
        uint8_t name[sizeof(TPMU_NAME)];
        size_t name_len;
} vc_certify_result;

/* A short stable name for a check ("qualifying-data", "key-attributes", ...), for
 * findings and logs. */
const char *vc_certify_check_name(vc_certify_check c);

/* The attributes a device key must have (TPM 2.0 Part 2, 8.3): it never leaves the TPM
 * (fixedTPM, fixedParent), the TPM made its private part (sensitiveDataOrigin), it signs,
 * and it is neither a decryption key nor restricted (it signs what its user hands it: a
 * TLS handshake, a CSR). userWithAuth and the rest are the agent's business. */
#define VC_DEVKEY_ATTRS_REQUIRED \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT)
#define VC_DEVKEY_ATTRS_FORBIDDEN (TPMA_OBJECT_DECRYPT | TPMA_OBJECT_RESTRICTED)

/* Verifies c under policy (NULL: the defaults, which refuse SHA-1) with the device's AK
 * and the qualifying data the verifier expects (vc_certify_qualifying_data() of its
 * challenge's nonce), in this order: magic, type TPM_ST_ATTEST_CERTIFY, the AK a restricted
 * signing key (when its TPMT_PUBLIC is known), the AK's signature over the TPMS_ATTEST
 * (vc_ak_verify_signature()), extraData == qualifying, the certified Name == nameAlg ||
 * H_nameAlg(the given TPMT_PUBLIC) (TPM 2.0 Part 1, 16: SHA-256/384/512, SHA-1 only when
 * the policy allows it), the key ECC NIST P-256 with a point on the curve, its attributes
 * (VC_DEVKEY_ATTRS_*). qualifiedName is not checked (it hashes the key's parents, which the
 * verifier does not know). Returns 0 with *ret saying VALID or INVALID and why; a negative
 * errno only when it could not evaluate (-ENOMEM, -EIO). */
int vc_certify_verify(const vc_certify *c, const vc_ak *ak, const uint8_t *qualifying, size_t qualifying_len,
                      const vc_quote_policy *policy, vc_certify_result *ret);

/* The certified key's public key (for the device's certificate), to be taken only after
 * vc_certify_verify() said VALID. *ret is the caller's (EVP_PKEY_free), written only on
 * success. Errors: -ENOTSUP (not RSA or ECC, curve), -EBADMSG (OpenSSL rejects it), -ENOMEM. */
int vc_certify_key(const vc_certify *c, EVP_PKEY **ret, vc_error *err);
