/* SPDX-License-Identifier: Apache-2.0 */
/* TPM2_MakeCredential in software (TPM 2.0 Part 1 section 24, Part 3 section 12.6): the
 * verifier wraps a secret so that only the TPM holding the EK, and only for the key whose
 * Name is given (the AK), can recover it with TPM2_ActivateCredential. This binds an AK to
 * an EK without a TPM on the verifier. Pure: bytes in, bytes out; the random input comes from
 * the caller, so the same input makes the same credential (known-answer tests). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#include "hash.h"
#include "vc-util.h"

/* SP800-108 KDF in counter mode with HMAC (TPM 2.0 Part 1, 11.4.10.2): bits of output
 * into out (bits/8 bytes). label is the ASCII label without its NUL (the NUL is added). */
int vc_kdfa(uint16_t hash_alg, const uint8_t *key, size_t key_len, const char *label, const uint8_t *context_u,
            size_t u_len, const uint8_t *context_v, size_t v_len, uint32_t bits, uint8_t *out);

/* SP800-56A concatenation KDF (TPM 2.0 Part 1, 11.4.10.3). */
int vc_kdfe(uint16_t hash_alg, const uint8_t *z, size_t z_len, const char *label, const uint8_t *party_u,
            size_t u_len, const uint8_t *party_v, size_t v_len, uint32_t bits, uint8_t *out);

/* The random input of one credential, drawn by the caller (RAND_bytes over the whole
 * struct) and cleansed after use. Each EK type uses its part. */
typedef struct vc_credential_random {
        /* RSA EK: the seed (its first nameAlg digest size bytes) and the seed of its OAEP
         * encoding (RFC 8017, 7.1.1; the same length). */
        uint8_t seed[VC_MAX_DIGEST];
        uint8_t oaep_seed[VC_MAX_DIGEST];
        /* ECC EK: the random bits of the ephemeral private key, the curve's coordinate size
         * plus 8 bytes (FIPS 186-4, B.4.1: 64 extra bits; P-521 uses all 66 + 8). */
        uint8_t ecc_key[66 + 8];
} vc_credential_random;

/* Makes a credential for object_name (the AK's Name: nameAlg || H(TPMT_PUBLIC)) under the
 * EK public area ek (RSA with OAEP, or ECC with an ephemeral ECDH key; the EK's nameAlg
 * and symmetric definition are used, as the TPM will). secret is at most the digest size of
 * the EK's nameAlg. rnd is the random input (see above); the result is a function of the
 * arguments. *ret_blob and *ret_secret are written only on success. Errors: -ENOTSUP (EK
 * type, curve, symmetric or hash not supported), -EBADMSG (OpenSSL rejects the RSA key, an
 * ECC point off its curve or with coordinates of a wrong size), -EINVAL (secret too long,
 * name empty, an RSA key too small for OAEP with the nameAlg), -EIO (OpenSSL), -ENOMEM. */
int vc_make_credential(const TPMT_PUBLIC *ek, const uint8_t *object_name, size_t name_len, const uint8_t *secret,
                       size_t secret_len, const vc_credential_random *rnd, TPM2B_ID_OBJECT *ret_blob,
                       TPM2B_ENCRYPTED_SECRET *ret_secret, vc_error *err);

/* The file tpm2_makecredential writes and tpm2_activatecredential reads: magic 0xBADCC0DE,
 * version 1 (both big-endian), the marshalled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
 * *ret is malloc'ed. */
int vc_credential_to_tpm2_tools(const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *secret, uint8_t **ret,
                                size_t *ret_len);

/* Name of a public area: nameAlg || H_nameAlg(marshalled TPMT_PUBLIC). out holds 2+64. */
int vc_public_name(const TPMT_PUBLIC *pub, uint8_t *out, size_t *out_len);
