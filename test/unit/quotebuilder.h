/* SPDX-License-Identifier: Apache-2.0 */
/* Builds quotes and certifies as a TPM would (TPMS_ATTEST signed RSASSA-SHA256 by a software
 * RSA key), for tests of the verifier logic that must not depend on a TPM. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#include "pcrs.h"

typedef struct qb_key {
        EVP_PKEY *pkey;
        TPMT_PUBLIC pub;        /* restricted signing RSA-2048 key, as tpm2_createak makes */
        uint8_t pub_bytes[sizeof(TPMT_PUBLIC)];
        size_t pub_len;         /* marshalled TPMT_PUBLIC */
} qb_key;

void qb_key_new(qb_key *k);
void qb_key_free(qb_key *k);

typedef struct qb_quote {
        uint8_t attest[sizeof(TPMS_ATTEST)];
        size_t attest_len;
        uint8_t sig[sizeof(TPMT_SIGNATURE)];
        size_t sig_len;
} qb_quote;

/* Quotes the PCRs in mask of pcrs' sha256 bank over nonce with the given clock info. */
void qb_quote_make(const qb_key *k, const vc_pcr_set *pcrs, uint32_t mask, const uint8_t *nonce, size_t nonce_len,
                   uint64_t clock, uint32_t reset_count, uint32_t restart_count, qb_quote *out);

/* A device identity key as the agent makes it (issue 19), in software: ECC NIST P-256,
 * nameAlg SHA-256, the given attributes (QB_DEVKEY_ATTRS: what the agent's template sets). */
#define QB_DEVKEY_ATTRS                                                                                 \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |             \
         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT)
void qb_devkey_new(qb_key *k, uint32_t attrs);
/* Marshals pub into k->pub_bytes again after a test changed k->pub. */
void qb_key_remarshal(qb_key *k);

/* The Name (nameAlg || H(marshalled TPMT_PUBLIC)) of k, SHA-256 names only: 34 bytes. */
void qb_key_name(const qb_key *k, uint8_t name[34]);

/* Marshals a and signs it (RSASSA-SHA256) with signer into out. */
void qb_attest_sign(const qb_key *signer, const TPMS_ATTEST *a, qb_quote *out);
/* The TPMS_ATTEST of TPM2_Certify of a key of the given Name (qualifiedName the same) over
 * extra (at most 64 bytes), unsigned: for tests that change a field before qb_attest_sign. */
void qb_certify_attest(const uint8_t *name, size_t name_len, const uint8_t *extra, size_t extra_len, TPMS_ATTEST *ret);
/* Certifies certified by signer (the AK) over extra: qb_certify_attest + qb_attest_sign. */
void qb_certify_make(const qb_key *signer, const qb_key *certified, const uint8_t *extra, size_t extra_len,
                     qb_quote *out);
