/* SPDX-License-Identifier: Apache-2.0 */
/* Builds quotes as a TPM would (TPMS_ATTEST signed RSASSA-SHA256 by a software RSA key),
 * for tests of the verifier logic that must not depend on a TPM. */
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
