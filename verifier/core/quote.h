/* SPDX-License-Identifier: Apache-2.0 */
/* TPM2_Quote verification: attestation key loading, TPMS_ATTEST / TPMT_SIGNATURE parsing,
 * and the checks of TPM 2.0 Part 1 section 36 / Part 3 section 18.4. Pure. */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#include "pcrs.h"
#include "vc-util.h"

#define VC_AK_MAX_FILE (64u << 10)
#define VC_ATTEST_MAX sizeof(TPMS_ATTEST)  /* a marshalled TPMS_ATTEST is never larger */
#define VC_SIGNATURE_MAX sizeof(TPMT_SIGNATURE)

typedef struct vc_ak {
        EVP_PKEY *pkey;
        bool has_public;        /* loaded from TPM2B_PUBLIC/TPMT_PUBLIC: public and name are set */
        TPMT_PUBLIC public;
        uint8_t name[2 + VC_MAX_DIGEST]; /* nameAlg || H(TPMT_PUBLIC) */
        size_t name_len;
} vc_ak;

/* buf is exactly one marshalled TPM2B_PUBLIC: its size field covers the rest (tss2-mu
 * also accepts a smaller one) and the structure ends where buf does. 0 or -EBADMSG. */
int vc_tpm2b_public_parse(const uint8_t *buf, size_t len, TPM2B_PUBLIC *out);

/* Loads an attestation key from PEM SubjectPublicKeyInfo, a marshalled TPM2B_PUBLIC (what
 * `tpm2_createak -u` writes) or a marshalled TPMT_PUBLIC. RSA and ECC (NIST P-256/384/521).
 * Errors: -EBADMSG unrecognised or malformed, -ENOTSUP unsupported key type or curve,
 * -E2BIG, -ENOMEM. */
int vc_ak_load(const uint8_t *buf, size_t len, vc_ak **ret, vc_error *err);
vc_ak *vc_ak_free(vc_ak *ak);

typedef enum vc_signature_check {
        VC_SIGNATURE_OK = 0,
        VC_SIGNATURE_SCHEME = 1,        /* scheme or hash unknown, refused, or not the AK's */
        VC_SIGNATURE_INVALID = 2,       /* does not verify with the AK */
} vc_signature_check;

/* Verifies the AK's TPMT_SIGNATURE sig over data (the marshalled TPMS_ATTEST it signed; a
 * quote's or a certify's): RSASSA, RSAPSS or ECDSA suiting the key and, when the AK's
 * TPMT_PUBLIC is known and names a scheme, that scheme and hash (a restricted signing key
 * signs with no other); SHA-256/384/512, SHA-1 only with allow_sha1. Returns 1 valid (with
 * *ret_check VC_SIGNATURE_OK), 0 refused with *ret_check saying which and why (what,
 * expected vs actual; why_size bytes, NUL-terminated), or a negative errno when it could not
 * evaluate (-ENOMEM). */
int vc_ak_verify_signature(const vc_ak *ak, const uint8_t *data, size_t len, const TPMT_SIGNATURE *sig,
                           bool allow_sha1, vc_signature_check *ret_check, char *why, size_t why_size);

typedef struct vc_quote {
        TPMS_ATTEST attest;
        TPMT_SIGNATURE sig;
        uint8_t *attest_bytes;   /* owned copy: what was signed */
        size_t attest_len;
} vc_quote;

/* Parses the TPMS_ATTEST bytes (as `tpm2_quote -m` writes them, no TPM2B size) and the
 * TPMT_SIGNATURE (`tpm2_quote -s`). A TPM2B_ATTEST with its size prefix is accepted too.
 * Trailing bytes are an error. Errors: -EBADMSG, -E2BIG, -ENOMEM. */
int vc_quote_parse(const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len, vc_quote **ret,
                   vc_error *err);
vc_quote *vc_quote_free(vc_quote *q);

typedef enum vc_quote_check {
        VC_QUOTE_CHECK_NONE = 0,        /* nothing failed (only with VC_QUOTE_VALID) */
        VC_QUOTE_CHECK_MAGIC,           /* magic is not TPM_GENERATED_VALUE */
        VC_QUOTE_CHECK_TYPE,            /* not TPM_ST_ATTEST_QUOTE */
        VC_QUOTE_CHECK_NONCE,           /* extraData differs from the expected nonce */
        VC_QUOTE_CHECK_SCHEME,          /* signature scheme does not fit the key */
        VC_QUOTE_CHECK_SIGNATURE,       /* signature does not verify with the AK */
        VC_QUOTE_CHECK_SIGNER,          /* qualifiedSigner is not the expected Qualified Name */
        VC_QUOTE_CHECK_PCR_MISSING,     /* a selected PCR has no value in the supplied set */
        VC_QUOTE_CHECK_PCR_DIGEST,      /* pcrDigest differs from the hash of the PCR values */
        VC_QUOTE_CHECK_EVENTLOG,        /* the replayed event log differs from the quoted PCRs */
        VC_QUOTE_CHECK_AK_ATTRIBUTES,   /* the AK is not a restricted signing key */
} vc_quote_check;

typedef enum vc_quote_status {
        VC_QUOTE_UNVERIFIED = 0,        /* zeroed result: never to be taken as valid */
        VC_QUOTE_VALID = 1,
        VC_QUOTE_INVALID = 2,
} vc_quote_status;

typedef struct vc_quote_result {
        vc_quote_status status;
        vc_quote_check failed;
        char reason[384];               /* what failed: field, expected vs actual */
        /* From the (verified) TPMS_ATTEST, for freshness and reboot checks by the caller: */
        uint64_t clock;
        uint32_t reset_count, restart_count;
        bool safe;
        uint64_t firmware_version;
        uint32_t n_pcrs_compared_to_log;   /* PCR values the event log was checked against */
        uint32_t log_unquoted_mask;        /* PCRs the log extends that the quote does not cover:
                                            * their events are not attested by this quote */
        /* Per bank, indexed by vc_alg_index(): */
        uint32_t quoted[VC_NUM_ALGS];          /* PCRs the quote selects */
        uint32_t log_matched[VC_NUM_ALGS];     /* quoted PCRs whose value the log accounts for
                                                * (replays to it, or leaves it at its reset value) */
        uint32_t log_unexplained[VC_NUM_ALGS]; /* quoted PCRs 8-23 the log does not account for
                                                * (e.g. IMA's PCR 10): their events are unknown */
} vc_quote_result;

typedef struct vc_quote_policy {
        bool allow_sha1;        /* accept SHA-1 as the signature / pcrDigest hash */
} vc_quote_policy;

/* The PCRs of bank whose events the quote and log together attest: what
 * vc_golden_evaluate() takes as `attested` for a golden set of that bank. */
uint32_t vc_quote_attested(const vc_quote_result *r, uint16_t bank);
/* The banks whose PCRs q selects (bit vc_alg_index(alg) per bank; unknown algorithms left
 * out), as parsed: nothing is verified. What a replay of the log must hold for
 * vc_quote_verify() to compare q against it. */
uint32_t vc_quote_banks(const vc_quote *q);

const char *vc_quote_check_name(vc_quote_check c);

/* Verifies q under policy (NULL: the defaults, which refuse SHA-1): magic, type, the AK
 * is a restricted signing key (when its TPMT_PUBLIC is known), signature with ak (scheme
 * and hash from the TPMT_SIGNATURE, which must suit the key), qualifiedSigner == qsigner
 * when qsigner is not NULL (the AK's Qualified Name, known from enrollment), extraData ==
 * nonce, every selected PCR present in pcrs, pcrDigest == H_sig(selected values in
 * selection order), and, when replayed is not NULL, every quoted PCR that the log
 * extends equals the replayed value; PCRs 0-7, which UEFI firmware always measures,
 * must equal the replayed value even when the log leaves them at their reset value.
 * Returns 0 with *ret saying VALID or INVALID and why; negative errno only when it could
 * not evaluate (-ENOMEM, -EIO). */
int vc_quote_verify(const vc_quote *q, const vc_ak *ak, const vc_pcr_set *pcrs, const uint8_t *nonce,
                    size_t nonce_len, const uint8_t *qsigner, size_t qsigner_len, const vc_pcr_set *replayed,
                    const vc_quote_policy *policy, vc_quote_result *ret);
