/* SPDX-License-Identifier: Apache-2.0 */
/* Enrollment checks (pure): the EK certificate chain against the configured EK CA bundle
 * and its binding to the EK public key, the AK's attributes, and the device id. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <tss2/tss2_tpm2_types.h>

#include "vc-util.h"

#define VC_EK_CERT_MAX (16u << 10)
#define VC_EK_MAX_INTERMEDIATES 8u
#define VC_DEVICE_ID_LEN 64 /* hex SHA-256 */

typedef struct vc_ek_ca vc_ek_ca;

/* Loads trusted EK CA certificates (PEM, one or more). -EBADMSG when none can be read. */
int vc_ek_ca_load(const uint8_t *pem, size_t len, vc_ek_ca **ret, vc_error *err);
vc_ek_ca *vc_ek_ca_free(vc_ek_ca *ca);

/* Verifies the EK certificate (DER) up to a CA of the bundle through the optional
 * intermediates (DER), at time now, and that the certificate's public key is the EK's
 * (RSA modulus/exponent or ECC point of ek). TPM EK certificates carry a critical
 * Subject Alternative Name of TPM attributes that OpenSSL does not understand; that one
 * extension is accepted. The certificate must be an EK certificate (TCG EK Credential
 * Profile): not a CA, keyUsage keyEncipherment or keyAgreement, and an extended key usage,
 * if any, naming tcg-kp-EKCertificate (2.23.133.8.1). Returns 0 valid; -EPERM invalid (err says why); -EBADMSG
 * malformed input; -ENOMEM. */
int vc_ek_verify(const vc_ek_ca *ca, const uint8_t *cert_der, size_t cert_len, const uint8_t *const *intermediates,
                 const size_t *intermediate_lens, size_t n_intermediates, const TPMT_PUBLIC *ek, time_t now,
                 vc_error *err);

/* SHA-256 fingerprint of a DER certificate, lowercase hex (for allowlists). */
int vc_cert_fingerprint(const uint8_t *der, size_t len, char out[65]);

/* An attestation key must be a restricted signing key that never leaves the TPM:
 * restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin, not decrypt; and usable
 * (userWithAuth, or an authPolicy). RSA (RSASSA or RSAPSS scheme) or ECC (ECDSA); not a
 * NULL scheme: quotes must be signed with the AK's own scheme and hash, which
 * vc_quote_verify checks.
 * Returns 0 or -EPERM with err naming the attribute. */
int vc_ak_check_attributes(const TPMT_PUBLIC *ak, vc_error *err);

/* The device id: lowercase hex SHA-256 of the EK's marshalled TPMT_PUBLIC; stable across
 * agent restarts and re-enrollment since it is rooted in the TPM's EK. */
int vc_device_id(const TPMT_PUBLIC *ek, char out[VC_DEVICE_ID_LEN + 1]);

/* The EK's key alone: SHA-256 over the key type and its canonical key material (RSA: the
 * exponent, 0 read as 65537, and the modulus; ECC: the curve and both coordinates; leading
 * zero bytes dropped, lengths prefixed). The EK certificate check and MakeCredential use
 * only the key, so two EK public areas that differ in attributes, policy or zero padding
 * are the same TPM: they have different device ids but the same key id, which is how the
 * verifier refuses a second identity for one TPM. -EINVAL for a type other than RSA/ECC. */
int vc_ek_key_id(const TPMT_PUBLIC *ek, uint8_t out[32]);
