/* SPDX-License-Identifier: Apache-2.0 */
#include "quotebuilder.h"

#include <assert.h>
#include <openssl/core_names.h>
#include <string.h>
#include <tss2/tss2_mu.h>

void qb_key_new(qb_key *k) {
        BIGNUM *n = NULL;
        memset(k, 0, sizeof(*k));
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        assert(k->pkey);
        assert(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1);
        k->pub.type = TPM2_ALG_RSA;
        k->pub.nameAlg = TPM2_ALG_SHA256;
        k->pub.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                                  TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
        k->pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        k->pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        k->pub.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        k->pub.parameters.rsaDetail.keyBits = 2048;
        k->pub.unique.rsa.size = (UINT16) BN_bn2bin(n, k->pub.unique.rsa.buffer);
        BN_free(n);
        assert(Tss2_MU_TPMT_PUBLIC_Marshal(&k->pub, k->pub_bytes, sizeof(k->pub_bytes), &k->pub_len) ==
               TSS2_RC_SUCCESS);
}

void qb_key_free(qb_key *k) {
        EVP_PKEY_free(k->pkey);
        k->pkey = NULL;
}

void qb_quote_make(const qb_key *k, const vc_pcr_set *pcrs, uint32_t mask, const uint8_t *nonce, size_t nonce_len,
                   uint64_t clock, uint32_t reset_count, uint32_t restart_count, qb_quote *out) {
        TPMS_ATTEST a = { 0 };
        const vc_pcr_bank *b = vc_pcr_set_find(pcrs, VC_ALG_SHA256);
        size_t off = 0;
        unsigned mdlen;
        assert(b);
        a.magic = TPM2_GENERATED_VALUE;
        a.type = TPM2_ST_ATTEST_QUOTE;
        a.qualifiedSigner.size = 34;
        a.extraData.size = (UINT16) nonce_len;
        memcpy(a.extraData.buffer, nonce, nonce_len);
        a.clockInfo.clock = clock;
        a.clockInfo.resetCount = reset_count;
        a.clockInfo.restartCount = restart_count;
        a.clockInfo.safe = 1;
        TPMS_PCR_SELECTION *sel = &a.attested.quote.pcrSelect.pcrSelections[0];
        a.attested.quote.pcrSelect.count = 1;
        sel->hash = TPM2_ALG_SHA256;
        sel->sizeofSelect = 3;
        sel->pcrSelect[0] = (uint8_t) mask;
        sel->pcrSelect[1] = (uint8_t) (mask >> 8);
        sel->pcrSelect[2] = (uint8_t) (mask >> 16);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        for (unsigned p = 0; p < 24; p++)
                if (mask & (1u << p))
                        EVP_DigestUpdate(ctx, b->values[p], 32);
        EVP_DigestFinal_ex(ctx, a.attested.quote.pcrDigest.buffer, &mdlen);
        a.attested.quote.pcrDigest.size = (UINT16) mdlen;
        EVP_MD_CTX_free(ctx);
        assert(Tss2_MU_TPMS_ATTEST_Marshal(&a, out->attest, sizeof(out->attest), &off) == TSS2_RC_SUCCESS);
        out->attest_len = off;
        uint8_t raw[512];
        size_t rawlen = sizeof(raw);
        ctx = EVP_MD_CTX_new();
        assert(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1);
        assert(EVP_DigestSign(ctx, raw, &rawlen, out->attest, out->attest_len) == 1);
        EVP_MD_CTX_free(ctx);
        TPMT_SIGNATURE s = { .sigAlg = TPM2_ALG_RSASSA };
        s.signature.rsassa.hash = TPM2_ALG_SHA256;
        s.signature.rsassa.sig.size = (UINT16) rawlen;
        memcpy(s.signature.rsassa.sig.buffer, raw, rawlen);
        off = 0;
        assert(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, out->sig, sizeof(out->sig), &off) == TSS2_RC_SUCCESS);
        out->sig_len = off;
}

void qb_key_remarshal(qb_key *k) {
        k->pub_len = 0;
        assert(Tss2_MU_TPMT_PUBLIC_Marshal(&k->pub, k->pub_bytes, sizeof(k->pub_bytes), &k->pub_len) ==
               TSS2_RC_SUCCESS);
}

void qb_devkey_new(qb_key *k, uint32_t attrs) {
        BIGNUM *x = NULL, *y = NULL;
        memset(k, 0, sizeof(*k));
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert(k->pkey);
        assert(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1);
        assert(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1);
        k->pub.type = TPM2_ALG_ECC;
        k->pub.nameAlg = TPM2_ALG_SHA256;
        k->pub.objectAttributes = attrs;
        k->pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        k->pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        k->pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        k->pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        k->pub.unique.ecc.x.size = (UINT16) BN_bn2binpad(x, k->pub.unique.ecc.x.buffer, 32);
        k->pub.unique.ecc.y.size = (UINT16) BN_bn2binpad(y, k->pub.unique.ecc.y.buffer, 32);
        BN_free(x);
        BN_free(y);
        qb_key_remarshal(k);
}

void qb_key_name(const qb_key *k, uint8_t name[34]) {
        unsigned n = 0;
        assert(k->pub.nameAlg == TPM2_ALG_SHA256);
        name[0] = 0x00;
        name[1] = 0x0b;
        assert(EVP_Digest(k->pub_bytes, k->pub_len, name + 2, &n, EVP_sha256(), NULL) == 1 && n == 32);
}

void qb_attest_sign(const qb_key *signer, const TPMS_ATTEST *a, qb_quote *out) {
        uint8_t raw[512];
        size_t rawlen = sizeof(raw), off = 0;
        assert(Tss2_MU_TPMS_ATTEST_Marshal(a, out->attest, sizeof(out->attest), &off) == TSS2_RC_SUCCESS);
        out->attest_len = off;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, signer->pkey) == 1);
        assert(EVP_DigestSign(ctx, raw, &rawlen, out->attest, out->attest_len) == 1);
        EVP_MD_CTX_free(ctx);
        TPMT_SIGNATURE s = { .sigAlg = TPM2_ALG_RSASSA };
        s.signature.rsassa.hash = TPM2_ALG_SHA256;
        s.signature.rsassa.sig.size = (UINT16) rawlen;
        memcpy(s.signature.rsassa.sig.buffer, raw, rawlen);
        off = 0;
        assert(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, out->sig, sizeof(out->sig), &off) == TSS2_RC_SUCCESS);
        out->sig_len = off;
}

void qb_certify_attest(const uint8_t *name, size_t name_len, const uint8_t *extra, size_t extra_len, TPMS_ATTEST *ret) {
        TPMS_ATTEST a = { 0 };
        assert(name_len <= sizeof(a.attested.certify.name.name) && extra_len <= sizeof(a.extraData.buffer));
        a.magic = TPM2_GENERATED_VALUE;
        a.type = TPM2_ST_ATTEST_CERTIFY;
        a.qualifiedSigner.size = 34;
        a.extraData.size = (UINT16) extra_len;
        if (extra_len)
                memcpy(a.extraData.buffer, extra, extra_len);
        a.clockInfo.clock = 1000;
        a.clockInfo.resetCount = 1;
        a.clockInfo.safe = 1;
        a.attested.certify.name.size = (UINT16) name_len;
        memcpy(a.attested.certify.name.name, name, name_len);
        a.attested.certify.qualifiedName = a.attested.certify.name;
        *ret = a;
}

void qb_certify_make(const qb_key *signer, const qb_key *certified, const uint8_t *extra, size_t extra_len,
                     qb_quote *out) {
        uint8_t name[34];
        TPMS_ATTEST a;
        qb_key_name(certified, name);
        qb_certify_attest(name, sizeof(name), extra, extra_len, &a);
        qb_attest_sign(signer, &a, out);
}
