/* SPDX-License-Identifier: Apache-2.0 */
/* The device key as a file OpenSSL 3 uses through a TPM provider (Debian's tpm2-openssl):
 * the TSS2 PRIVATE KEY format of the TPM 2.0 Key Files draft (draft-bottomley-tpm-keys,
 * section 3.1), as tpm2-openssl and tpm2-tss-engine read it:
 *
 *   TPMKey ::= SEQUENCE {
 *     type       OBJECT IDENTIFIER        -- id-loadablekey 2.23.133.10.1.3 (TPM2_Load)
 *     emptyAuth  [0] EXPLICIT BOOLEAN     -- TRUE: the key has no password
 *     parent     INTEGER                  -- 0x40000001: the owner hierarchy's ECC primary
 *     pubkey     OCTET STRING             -- TPM2B_PUBLIC
 *     privkey    OCTET STRING }           -- TPM2B_PRIVATE
 *
 * in PEM with the "TSS2 PRIVATE KEY" guards. The private part is wrapped by the TPM: the
 * file is useless on any other TPM, but it is still the key's handle, kept 0600. Encoded and
 * decoded with OpenSSL's ASN.1 templates. No I/O and no TPM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#define VA_TSS2_KEY_PEM_NAME "TSS2 PRIVATE KEY"
#define VA_TSS2_LOADABLE_KEY_OID "2.23.133.10.1.3"
#define VA_TSS2_KEY_MAX (16u << 10) /* a larger key file is refused (-E2BIG) */

/* The PEM file for the key of pub and priv under parent (a TPM handle: permanent
 * 0x40xxxxxx or persistent 0x81xxxxxx), emptyAuth TRUE. *ret is malloc'ed (the caller
 * cleanses and frees it), NUL-terminated, *ret_len without the NUL; both written only on
 * success. Errors: -EINVAL (parent not a permanent or persistent handle, blobs that do not
 * marshal), -ENOMEM. */
int va_tss2_key_pem(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, uint32_t parent, char **ret, size_t *ret_len);

/* Reads such a file back (the first PEM block of that name in pem): the blobs, the parent
 * and emptyAuth (absent reads as FALSE). Written only on success. Errors: -EBADMSG (no such
 * PEM block, not a TPMKey, another type OID, blobs that do not unmarshal exactly, a parent
 * over 32 bits), -E2BIG (over VA_TSS2_KEY_MAX), -ENOMEM. */
int va_tss2_key_parse(const char *pem, size_t len, TPM2B_PUBLIC *ret_pub, TPM2B_PRIVATE *ret_priv,
                      uint32_t *ret_parent, bool *ret_empty_auth);
