/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's TPM layer: the only code in vouch that talks to a TPM (tpm2-tss ESAPI through
 * the TCTI loader). It creates the EK from the TCG EK Credential Profile templates and reads
 * its certificate from NV, creates or reloads the attestation key (AK) under the EK, answers
 * the verifier's credential challenge (TPM2_ActivateCredential) and quotes PCRs.
 *
 * A va_tpm holds at most one EK and one AK loaded (two transient object slots). Every other
 * object or session it creates is flushed before the call returns, on success and on
 * failure: a TPM without a resource manager (swtpm, /dev/tpm0) has only three object slots.
 * It also makes and certifies the device identity key (issue 19; see there).
 *
 * Errors: functions return 0 or a negative errno and fill err (may be NULL) with what failed,
 * the TPM command and its decoded response code. Nothing is logged; unless the environment
 * sets TSS2_LOG, va_tpm_open() turns tpm2-tss's own logging to stderr off (see there).
 * Mapping of TPM responses: -ENOSPC out of object/session memory, -EACCES authorisation
 * refused (hierarchy or object password, policy), -EBUSY dictionary-attack lockout,
 * -EAGAIN TPM busy (retry, testing), -EBADMSG the TPM refused an input as malformed or not
 * for it (e.g. a credential made for another key), -ENOENT no such handle or NV index,
 * -ECONNREFUSED the TCTI could not reach the TPM, -EIO anything else. Not thread-safe: one
 * va_tpm per thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#include "pcrs.h"
#include "vc-util.h"

typedef struct va_tpm va_tpm;

/* Connects to the TPM named by tcti, a TCTI loader configuration string such as
 * "device:/dev/tpmrm0" or "swtpm:host=127.0.0.1,port=2321" (NULL: tpm2-tss's default),
 * and sends TPM2_Startup(CLEAR), which a TPM that firmware already started refuses with
 * TPM_RC_INITIALIZE (tolerated). The endorsement hierarchy's authValue is assumed empty
 * (the default). Unless TSS2_LOG is set, sets TSS2_LOG=all+none for this process first, so
 * that tpm2-tss does not print its own error lines (the caller reports err); set TSS2_LOG
 * to debug the TSS itself. Errors: -ECONNREFUSED, -EIO, -ENOMEM. */
int va_tpm_open(const char *tcti, va_tpm **ret, vc_error *err);
/* Flushes the EK and AK and closes the connection. Accepts NULL; returns NULL. */
va_tpm *va_tpm_close(va_tpm *t);

/* Lowers the size of the chunks NV certificates are read in below the TPM's
 * TPM2_PT_NV_BUFFER_MAX (never raises it). Tests use it to read a certificate that fits in
 * one chunk in several. Errors: -EINVAL (0). */
int va_tpm_set_nv_chunk_max(va_tpm *t, uint32_t max);

/* EK templates of the TCG EK Credential Profile for TPM Family 2.0 (version 2.5, section
 * 2.2.1.4 and annex B), with the NV index of the certificate for each. */
typedef enum va_ek_type {
        VA_EK_AUTO = 0,         /* RSA-2048, then ECC P-256, then ECC P-384: the first with a
                                 * certificate in NV */
        VA_EK_RSA_2048 = 1,     /* template L-1, certificate at 0x01c00002 */
        VA_EK_ECC_P256 = 2,     /* template L-2, certificate at 0x01c0000a */
        VA_EK_ECC_P384 = 3,     /* template H-3, certificate at 0x01c00016 (swtpm_setup's ECC
                                 * EK) */
        VA_EK_ECC = 4,          /* ECC P-256, then P-384: the first with a certificate */
} va_ek_type;

#define VA_EK_CERT_MAX (16u << 10)      /* a longer NV certificate is refused (-E2BIG) */
#define VA_EK_CHAIN_MAX 8u              /* intermediates read from NV (the verifier's limit) */

typedef struct va_ek {
        va_ek_type type;        /* the template used: never VA_EK_AUTO or VA_EK_ECC */
        TPM2B_PUBLIC public;    /* the EK's public area */
        uint32_t cert_index;    /* NV index the certificate belongs to */
        uint8_t *cert;          /* DER certificate (NV padding after the DER removed),
                                 * malloc'ed; NULL when cert_len is 0 */
        size_t cert_len;
        /* The issuing chain the TPM's maker stored in NV 0x01c00100-0x01c001ff (EK
         * Credential Profile 2.5, 2.2.1.5.2), in index order: DER, malloc'ed. Untrusted:
         * intermediates for vc_ek_verify(). Usually empty. */
        size_t n_chain;
        uint8_t *chain[VA_EK_CHAIN_MAX];
        size_t chain_len[VA_EK_CHAIN_MAX];
} va_ek;

/* Frees the certificates and zeroes *ek. Accepts NULL. */
void va_ek_clear(va_ek *ek);

/* Creates the EK of the given template as a primary object in the endorsement hierarchy,
 * keeps it loaded in t (replacing, and flushing, an EK and AK loaded before), and reads its
 * certificate: NV_ReadPublic for the size, NV_Read in chunks of at most TPM2_PT_NV_BUFFER_MAX;
 * when there is one, also the chain certificates in NV (padding after them ignored).
 * A missing certificate is not an error (cert_len 0): VA_EK_AUTO and VA_EK_ECC take the
 * first template whose index holds one (RSA 2048, then ECC P-256, then P-384), or, when
 * none does, the first of them (RSA 2048; ECC P-256).
 * *ret is written only on success; the caller frees it with va_ek_clear().
 * Errors: -E2BIG (certificate over VA_EK_CERT_MAX, more than VA_EK_CHAIN_MAX in
 * the chain), -EBADMSG (a chain index holds something else than DER certificates), -EINVAL
 * (type), TPM errors. */
int va_tpm_ek(va_tpm *t, va_ek_type type, va_ek *ret, vc_error *err);

/* Creates the EK of one template again (type: VA_EK_RSA_2048, VA_EK_ECC_P256 or
 * VA_EK_ECC_P384, as va_tpm_ek() chose it) and keeps it loaded in t like va_tpm_ek(), without
 * reading any NV index: for a caller that opens the TPM for each operation and read the
 * certificate once. The key must equal expect (the public area va_tpm_ek() returned).
 * Errors: -EINVAL (type), -ESTALE (another EK: another TPM, or its endorsement hierarchy
 * was cleared; t is unchanged), TPM errors. */
int va_tpm_ek_reload(va_tpm *t, va_ek_type type, const TPM2B_PUBLIC *expect, vc_error *err);

typedef enum va_ak_type {
        VA_AK_RSA_2048 = 1,     /* RSASSA with SHA-256 */
        VA_AK_ECC_P256 = 2,     /* ECDSA with SHA-256 */
} va_ak_type;

/* Creates an attestation key under the EK (va_tpm_ek first): a restricted signing key,
 * fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth (empty authValue), nameAlg
 * SHA-256, and loads it as t's AK. The AK loaded before is flushed first (with the EK, t
 * holds two object slots at most); on failure t has no AK. ret_public and ret_private are
 * what va_tpm_ak_load() takes to load the same key again (the private part is wrapped by
 * the EK: useless without this TPM). The EK is authorised with
 * PolicySecret(TPM_RH_ENDORSEMENT) in a policy session (EK templates without userWithAuth)
 * or its empty authValue (high-range templates, which set userWithAuth).
 * Errors: -EINVAL (no EK, type), TPM errors. */
int va_tpm_ak_create(va_tpm *t, va_ak_type type, TPM2B_PUBLIC *ret_public, TPM2B_PRIVATE *ret_private,
                     vc_error *err);

/* Loads a saved AK under the EK (va_tpm_ek first, with the EK type it was created under) as
 * t's AK; the AK loaded before is flushed first (on failure t has no AK).
 * Errors: -EINVAL (no EK), -EBADMSG (the TPM refused the blobs: not made under this EK, or
 * damaged), TPM errors. */
int va_tpm_ak_load(va_tpm *t, const TPM2B_PUBLIC *public, const TPM2B_PRIVATE *private, vc_error *err);

/* TPM2_ActivateCredential (TPM 2.0 Part 3, 12.5) with t's AK as the object and its EK as the
 * decryption key: recovers the secret the verifier wrapped with TPM2_MakeCredential. The
 * secret is written to *ret_secret only on success; the caller cleanses it after use.
 * Errors: -EINVAL (no EK or AK), -EBADMSG (not made for this AK's name under this EK), TPM
 * errors. */
int va_tpm_activate(va_tpm *t, const TPM2B_ID_OBJECT *credential, const TPM2B_ENCRYPTED_SECRET *secret,
                    TPM2B_DIGEST *ret_secret, vc_error *err);

typedef struct va_quote {
        uint8_t attest[sizeof(TPMS_ATTEST)];    /* marshalled TPMS_ATTEST, no TPM2B size */
        size_t attest_len;
        uint8_t sig[sizeof(TPMT_SIGNATURE)];    /* marshalled TPMT_SIGNATURE */
        size_t sig_len;
} va_quote;

/* TPM2_Quote (Part 3, 18.4) with t's AK and its own signing scheme over the selected PCRs,
 * nonce as qualifyingData (at most 64 bytes). *ret is written only on success.
 * Errors: -EINVAL (no AK, bad selection), -E2BIG (nonce), TPM errors. */
int va_tpm_quote(va_tpm *t, const TPML_PCR_SELECTION *sel, const uint8_t *nonce, size_t nonce_len, va_quote *ret,
                 vc_error *err);

/* ---- The device identity key (issue 19) ----
 * An ECC NIST P-256 signing key made in the TPM for the device's TLS identity: not
 * restricted (it signs what its user hands it), fixedTPM | fixedParent |
 * sensitiveDataOrigin | userWithAuth (empty authValue) | sign, nameAlg SHA-256, no scheme
 * of its own (ECDSA with the hash the signer asks for). Its parent is the storage
 * hierarchy's primary key that every TSS2 PRIVATE KEY file with parent TPM_RH_OWNER
 * (0x40000001) names: TPM2_CreatePrimary in the owner hierarchy from the ECC P-256 storage
 * template of the TPM 2.0 Key Files draft (draft-bottomley-tpm-keys, 3.1.5), the template
 * tpm2-openssl (1.1 to 1.3) and tpm2-tss-engine use for such files, so that OpenSSL loads
 * the key file the agent writes (agent/keyfile.h) without anything provisioned in the
 * TPM. A primary key is derived from the hierarchy's seed and the template, so the same
 * parent comes back each time until the owner hierarchy is cleared (TPM2_Clear), which
 * makes the saved blobs useless (the agent then makes a new key). The owner hierarchy's
 * authValue is assumed empty (the default; tpm2-openssl's TPM2OPENSSL_PARENT_AUTH would
 * be needed otherwise).
 *
 * Slots: the parent takes one only while the key is created or loaded; to leave room for
 * it and the key next to the AK, these calls flush t's EK first (the AK stays loaded:
 * va_tpm_ek_reload() brings the EK back, and va_tpm_activate() needs it). */
#define VA_DEVKEY_PARENT 0x40000001u    /* TPM_RH_OWNER: the key file's parent */

/* TPM2_Create of the device key under the storage primary key; ret_public and ret_private
 * are what va_tpm_devkey_certify() takes (the private part is wrapped by the parent: useless
 * without this TPM and its owner seed). Nothing stays loaded. Errors: -EACCES (the owner
 * hierarchy has a password), TPM errors. */
int va_tpm_devkey_create(va_tpm *t, TPM2B_PUBLIC *ret_public, TPM2B_PRIVATE *ret_private, vc_error *err);

/* TPM2_Load of saved device key blobs under the storage primary key, flushed again: does
 * this TPM still take them? Errors: -EBADMSG (not made under this TPM's owner seed, or
 * damaged), TPM errors. */
int va_tpm_devkey_check(va_tpm *t, const TPM2B_PUBLIC *public, const TPM2B_PRIVATE *private, vc_error *err);

/* TPM2_Certify (Part 3, 18.2) of the device key by t's AK over qualifying (at most 64
 * bytes; vouch passes vc_certify_qualifying_data() of the challenge's nonce): the key is
 * loaded, certified with the AK's own scheme and flushed. *ret (the TPMS_ATTEST and the
 * AK's TPMT_SIGNATURE) is written only on success. Errors: -EINVAL (no AK), -E2BIG
 * (qualifying), -EBADMSG (the blobs are not this TPM's), TPM errors. */
int va_tpm_devkey_certify(va_tpm *t, const TPM2B_PUBLIC *public, const TPM2B_PRIVATE *private,
                          const uint8_t *qualifying, size_t qualifying_len, va_quote *ret, vc_error *err);

/* Reads the selected PCRs (banks the core knows, PCRs 0-23) into *ret, which is
 * overwritten only on success. TPM2_PCR_Read returns at most 8 values per call: it is
 * repeated for what is missing; when another process extends a PCR in between (the update
 * counter changes) the whole read starts over (at most 8 times, then -EAGAIN).
 * Errors: -EINVAL (selection), -ENOTSUP (a bank the core does not know), -ENOENT (the TPM
 * returns no value for a selected PCR: its bank is not active), -EAGAIN, TPM errors. */
int va_tpm_pcr_read(va_tpm *t, const TPML_PCR_SELECTION *sel, vc_pcr_set *ret, vc_error *err);

/* TPM2_PCR_Extend of pcr (0-23) with one digest per bank in digests (for tests and
 * measurements the agent makes itself). Errors: -EINVAL, TPM errors. */
int va_tpm_pcr_extend(va_tpm *t, uint32_t pcr, const TPML_DIGEST_VALUES *digests, vc_error *err);

/* TPM2_PT_MANUFACTURER (four ASCII bytes, e.g. 0x494E5443 "INTC"), 0 when not reported. */
int va_tpm_manufacturer(va_tpm *t, uint32_t *ret, vc_error *err);

/* Counts the transient objects and the sessions (loaded or context-saved) the TPM holds
 * right now, for every client when there is no resource manager. For diagnostics and for
 * tests that check nothing leaks. */
int va_tpm_handle_counts(va_tpm *t, uint32_t *ret_transient, uint32_t *ret_sessions, vc_error *err);
