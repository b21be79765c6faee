/* SPDX-License-Identifier: Apache-2.0 */
/* EK certificates that are not in the TPM's NV: firmware TPMs (Intel PTT, AMD fTPM) have
 * their maker serve them online, looked up by a hash of the EK public key. Pure: the
 * lookup key a service's URL ends with, and the DER certificate in its answer; fetching is
 * the caller's (vouchd). What comes back is checked exactly as a certificate from NV
 * (vc_ek_verify: chain, EK profile, the key matches). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#include "vc-util.h"

/* TPM2_PT_MANUFACTURER values (TCG TPM Vendor ID Registry): four ASCII bytes, big-endian. */
#define VC_TPM_MANUFACTURER_INTC 0x494E5443u /* "INTC": Intel PTT */
#define VC_TPM_MANUFACTURER_AMD 0x414D4400u  /* "AMD\0": AMD fTPM */

/* How a maker's service names and returns a certificate. */
typedef enum vc_ekcert_form {
        VC_EKCERT_FORM_INTEL = 1, /* base64url lookup key, JSON answer with a base64url "certificate" */
        VC_EKCERT_FORM_AMD = 2,   /* hex lookup key, DER (or PEM) answer */
} vc_ekcert_form;

/* Answers larger than this are refused before they are parsed. */
#define VC_EKCERT_ANSWER_MAX (64u * 1024u)
/* The longest lookup key (Intel: 44 base64 characters, '=' escaped as %3D). */
#define VC_EKCERT_LOOKUP_MAX 64

/* The lookup key for ek, written NUL-terminated into out (n >= VC_EKCERT_LOOKUP_MAX):
 * - Intel: SHA-256 over the RSA modulus followed by the exponent 0x010001 (an EK with
 *   another exponent is refused, -ENOTSUP), or over the ECC point's x then y; base64 with
 *   '-' and '_' for '+' and '/' (RFC 4648, 5), its '=' written %3D as in a URL.
 * - AMD: SHA-256 over 00 00 22 22, the 4-byte big-endian exponent (0 means 65537) and the
 *   modulus, or over 00 00 44 44, x and y; the first 16 bytes in lowercase hex.
 * Errors: -EINVAL (form, key type, n), -ENOTSUP. */
int vc_ekcert_lookup(vc_ekcert_form form, const TPMT_PUBLIC *ek, char *out, size_t n);

/* The DER certificate in a service's answer (malloc'ed into *ret_der): Intel's JSON object
 * with a "certificate" string (base64url, padding optional); AMD's DER, or one PEM
 * certificate. Nothing else is accepted. Errors (err says what and where): -E2BIG over
 * VC_EKCERT_ANSWER_MAX, -EBADMSG, -ENOMEM. */
int vc_ekcert_from_answer(vc_ekcert_form form, const uint8_t *body, size_t len, uint8_t **ret_der, size_t *ret_len,
                          vc_error *err);

/* The manufacturer id as text: its four bytes where printable ("INTC", "AMD"), else hex. */
void vc_tpm_manufacturer_name(uint32_t id, char out[12]);

/* The EK key fingerprint operators list for key-anchored approval: vc_ek_key_id (SHA-256
 * over the key's type and canonical key material) in lowercase hex, into out[65]. */
int vc_ek_key_fingerprint(const TPMT_PUBLIC *ek, char out[65]);
