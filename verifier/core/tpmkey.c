/* SPDX-License-Identifier: Apache-2.0 */
#include "tpmkey.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <string.h>

static const vc_ecc_curve curves[] = {
        { TPM2_ECC_NIST_P256, "prime256v1", NID_X9_62_prime256v1, 32 },
        { TPM2_ECC_NIST_P384, "secp384r1", NID_secp384r1, 48 },
        { TPM2_ECC_NIST_P521, "secp521r1", NID_secp521r1, 66 },
};

const vc_ecc_curve *vc_ecc_curve_lookup(uint16_t curve_id) {
        for (size_t i = 0; i < ELEMENTSOF(curves); i++)
                if (curves[i].curve_id == curve_id)
                        return &curves[i];
        return NULL;
}

int vc_ecc_public_point(const TPMT_PUBLIC *pub, const char *who, const vc_ecc_curve **ret_curve,
                        uint8_t out[VC_ECC_POINT_MAX], size_t *ret_len, vc_error *err) {
        const vc_ecc_curve *c = vc_ecc_curve_lookup(pub->parameters.eccDetail.curveID);
        const TPM2B_ECC_PARAMETER *x = &pub->unique.ecc.x, *y = &pub->unique.ecc.y;
        if (!c)
                return vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "ECC %s: curve 0x%04x is not supported", who,
                                    pub->parameters.eccDetail.curveID);
        if (x->size > c->size || y->size > c->size || x->size == 0 || y->size == 0)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "ECC %s: coordinates of %u/%u bytes for a %zu-byte curve",
                                    who, x->size, y->size, c->size);
        memset(out, 0, VC_ECC_POINT_MAX);
        out[0] = 0x04;
        memcpy(out + 1 + c->size - x->size, x->buffer, x->size);
        memcpy(out + 1 + 2 * c->size - y->size, y->buffer, y->size);
        *ret_curve = c;
        *ret_len = 1 + 2 * c->size;
        return 0;
}

static int rsa_key(const TPMT_PUBLIC *pub, const char *who, EVP_PKEY **ret, vc_error *err) {
        uint32_t e = pub->parameters.rsaDetail.exponent ? pub->parameters.rsaDetail.exponent : 65537;
        BIGNUM *bn_n = BN_bin2bn(pub->unique.rsa.buffer, pub->unique.rsa.size, NULL), *bn_e = BN_new();
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        int r = -ENOMEM;

        if (!bn_n || !bn_e || !bld || !BN_set_word(bn_e, e) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) || !(params = OSSL_PARAM_BLD_to_param(bld)))
                goto out;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        if (!ctx)
                goto out;
        if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) != 1) {
                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "RSA %s: OpenSSL rejected the public key", who);
                goto out;
        }
        r = 0;
out:
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn_n);
        BN_free(bn_e);
        return r;
}

static int ecc_key(const TPMT_PUBLIC *pub, const char *who, EVP_PKEY **ret, vc_error *err) {
        const vc_ecc_curve *c;
        uint8_t point[VC_ECC_POINT_MAX];
        size_t point_len;
        int r = vc_ecc_public_point(pub, who, &c, point, &point_len, err);
        if (r < 0)
                return r;
        OSSL_PARAM params[3] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) c->group, 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, point_len),
                OSSL_PARAM_construct_end(),
        };
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) != 1)
                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "ECC %s: the point is not on curve %s", who, c->group);
        EVP_PKEY_CTX_free(ctx);
        return r;
}

int vc_tpm_public_key(const TPMT_PUBLIC *pub, const char *who, EVP_PKEY **ret, vc_error *err) {
        switch (pub->type) {
        case TPM2_ALG_RSA:
                return rsa_key(pub, who, ret, err);
        case TPM2_ALG_ECC:
                return ecc_key(pub, who, ret, err);
        default:
                return vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "%s type 0x%04x is not RSA or ECC", who, pub->type);
        }
}
