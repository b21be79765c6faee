/* SPDX-License-Identifier: Apache-2.0 */
/* TPM hash algorithms the verifier knows, and hashing through OpenSSL 3 EVP. */
#pragma once

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* TPM_ALG_ID values, TCG Algorithm Registry. */
enum {
        VC_ALG_SHA1 = 0x0004,
        VC_ALG_SHA256 = 0x000B,
        VC_ALG_SHA384 = 0x000C,
        VC_ALG_SHA512 = 0x000D,
        VC_ALG_SM3_256 = 0x0012,
};

#define VC_MAX_DIGEST 64
#define VC_NUM_ALGS 5

typedef struct vc_alg_info {
        uint16_t alg;
        const char *name;      /* "sha256": the bank name used in JSON and on the CLI */
        size_t size;           /* digest size in bytes */
        const char *ossl_name; /* OpenSSL's name for it */
} vc_alg_info;

/* NULL when the algorithm is not one of the five above. */
const vc_alg_info *vc_alg_lookup(uint16_t alg);
/* Accepts "sha256", "SHA256", "sha-256" style names; NULL when unknown. */
const vc_alg_info *vc_alg_by_name(const char *name);
/* Index 0..VC_NUM_ALGS-1 into per-bank arrays, or -1 when unknown. */
int vc_alg_index(uint16_t alg);
const vc_alg_info *vc_alg_at(int index);

/* One reusable hashing context per algorithm; cheaper than a fresh EVP context per call.
 * Not thread-safe: one per thread. */
typedef struct vc_hasher vc_hasher;

/* Returns 0 or -ENOMEM. Each algorithm is fetched from OpenSSL when first used. */
int vc_hasher_new(vc_hasher **ret);
vc_hasher *vc_hasher_free(vc_hasher *h);

/* Hashes the concatenation of up to 2 buffers (b may be NULL). out holds the digest size
 * of alg. Returns 0, -ENOTSUP (unknown alg or not provided by OpenSSL), -EIO (OpenSSL). */
int vc_hasher_digest2(vc_hasher *h, uint16_t alg, const void *a, size_t alen, const void *b, size_t blen,
                      uint8_t *out);
static inline int vc_hasher_digest(vc_hasher *h, uint16_t alg, const void *a, size_t alen, uint8_t *out) {
        return vc_hasher_digest2(h, alg, a, alen, NULL, 0, out);
}
/* One-shot variant that needs no hasher. */
int vc_digest(uint16_t alg, const void *data, size_t len, uint8_t *out);

/* ECDSA P-256 signatures (DER) in low-S form. (r, s) and (r, n - s) both verify, so a
 * signature is unique only if one of the two is chosen: the one with s <= n/2.
 * vc_ecdsa_p256_low_s rewrites *der (allocated with OPENSSL_malloc) when s is high:
 * 0, -EBADMSG (not a DER ECDSA signature), -ENOMEM. vc_ecdsa_p256_is_low_s: a DER ECDSA
 * signature whose s is at most n/2. */
int vc_ecdsa_p256_low_s(uint8_t **der, size_t *len);
bool vc_ecdsa_p256_is_low_s(const uint8_t *der, size_t len);
