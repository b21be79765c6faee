/* SPDX-License-Identifier: Apache-2.0 */
/* OpenSSL keys from TPM public areas (TPM 2.0 Part 2, 12.2.3.5 TPMU_PUBLIC_PARMS and
 * 12.2.3.2 TPMU_PUBLIC_ID): the one place that turns an RSA modulus or an ECC point of a
 * TPMT_PUBLIC into something OpenSSL computes with, for the AK (quote.c) and the EK
 * (credential.c). who ("AK", "EK") starts each error message. */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#include "vc-util.h"

/* The largest coordinate (P-521) and uncompressed point (0x04 || x || y) handled. */
#define VC_ECC_COORD_MAX 66
#define VC_ECC_POINT_MAX (1 + 2 * VC_ECC_COORD_MAX)

typedef struct vc_ecc_curve {
        uint16_t curve_id; /* TPM_ECC_CURVE */
        const char *group; /* OpenSSL's group name */
        int nid;
        size_t size; /* coordinate (field element) size in bytes */
} vc_ecc_curve;

/* NIST P-256, P-384 or P-521; NULL for any other curve. */
const vc_ecc_curve *vc_ecc_curve_lookup(uint16_t curve_id);

/* The uncompressed point (0x04 || x || y, each coordinate left-padded with zeros to the
 * curve's size) of an ECC public area into out (VC_ECC_POINT_MAX bytes), its length in
 * *ret_len and its curve in *ret_curve. Does not check that the point is on the curve.
 * Errors: -ENOTSUP (curve), -EBADMSG (a coordinate empty or longer than the curve's size). */
int vc_ecc_public_point(const TPMT_PUBLIC *pub, const char *who, const vc_ecc_curve **ret_curve,
                        uint8_t out[VC_ECC_POINT_MAX], size_t *ret_len, vc_error *err);

/* The public key of an RSA (exponent 0 means 65537) or ECC public area into *ret (the
 * caller's, written only on success). Errors: -ENOTSUP (type or curve), -EBADMSG (OpenSSL
 * rejects the RSA key, an ECC point off its curve or with a coordinate of a wrong size),
 * -ENOMEM. */
int vc_tpm_public_key(const TPMT_PUBLIC *pub, const char *who, EVP_PKEY **ret, vc_error *err);
