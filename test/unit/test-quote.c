/* SPDX-License-Identifier: Apache-2.0 */
/* Quote verification with synthetic quotes signed by OpenSSL keys: every check and every
 * rejection path. */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>
#include <cmocka.h>

#include "quote.h"

typedef struct key {
        EVP_PKEY *pkey;
        TPMT_PUBLIC pub;
} key;

static key rsa_key, ec_key;

static void make_public_rsa(key *k) {
        BIGNUM *n = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        k->pub = (TPMT_PUBLIC) {
                .type = TPM2_ALG_RSA,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                                    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                    TPMA_OBJECT_USERWITHAUTH,
        };
        k->pub.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        k->pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        k->pub.parameters.rsaDetail.keyBits = 2048;
        k->pub.unique.rsa.size = (UINT16) BN_bn2bin(n, k->pub.unique.rsa.buffer);
        BN_free(n);
}

static void make_public_ec(key *k) {
        BIGNUM *x = NULL, *y = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        k->pub = (TPMT_PUBLIC) {
                .type = TPM2_ALG_ECC,
                .nameAlg = TPM2_ALG_SHA256,
                .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM,
        };
        k->pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        k->pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        k->pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        k->pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        k->pub.unique.ecc.x.size = (UINT16) BN_bn2binpad(x, k->pub.unique.ecc.x.buffer, 32);
        k->pub.unique.ecc.y.size = (UINT16) BN_bn2binpad(y, k->pub.unique.ecc.y.buffer, 32);
        BN_free(x);
        BN_free(y);
}

static int group_setup(void **state) {
        rsa_key.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        ec_key.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(rsa_key.pkey);
        assert_non_null(ec_key.pkey);
        make_public_rsa(&rsa_key);
        make_public_ec(&ec_key);
        return 0;
}

static int group_teardown(void **state) {
        EVP_PKEY_free(rsa_key.pkey);
        EVP_PKEY_free(ec_key.pkey);
        return 0;
}

/* ---- building evidence ---- */

typedef struct evidence {
        uint8_t attest[sizeof(TPMS_ATTEST)];
        size_t attest_len;
        uint8_t sig[sizeof(TPMT_SIGNATURE)];
        size_t sig_len;
        vc_pcr_set pcrs;
        uint8_t nonce[32];
} evidence;

static void fill_pcrs(vc_pcr_set *s) {
        memset(s, 0, sizeof(*s));
        vc_pcr_bank *b = vc_pcr_set_bank(s, VC_ALG_SHA256);
        for (unsigned i = 0; i < VC_PCR_COUNT; i++) {
                memset(b->values[i], (int) i, 32);
                b->mask |= 1u << i;
        }
        b = vc_pcr_set_bank(s, VC_ALG_SHA1);
        for (unsigned i = 0; i < VC_PCR_COUNT; i++) {
                memset(b->values[i], (int) (0x80 + i), 20);
                b->mask |= 1u << i;
        }
}

/* Marshals a quote over sha256 PCRs 0-7 and 16 (and sha1 PCR 0 when two_banks), signed
 * with k in scheme sig_alg / hash. */
static void make_evidence(evidence *e, key *k, uint16_t sig_alg, uint16_t hash, bool two_banks) {
        TPMS_ATTEST a = { 0 };
        const EVP_MD *md = hash == TPM2_ALG_SHA1 ? EVP_sha1() : hash == TPM2_ALG_SHA384 ? EVP_sha384() : EVP_sha256();
        size_t off = 0;

        memset(e, 0, sizeof(*e));
        fill_pcrs(&e->pcrs);
        for (int i = 0; i < 32; i++)
                e->nonce[i] = (uint8_t) (i * 3);
        a.magic = TPM2_GENERATED_VALUE;
        a.type = TPM2_ST_ATTEST_QUOTE;
        a.qualifiedSigner.size = 34;
        memset(a.qualifiedSigner.name, 0xab, 34);
        a.extraData.size = 32;
        memcpy(a.extraData.buffer, e->nonce, 32);
        a.clockInfo.clock = 123456;
        a.clockInfo.resetCount = 7;
        a.clockInfo.restartCount = 2;
        a.clockInfo.safe = 1;
        a.firmwareVersion = 0x2020;
        TPML_PCR_SELECTION *sel = &a.attested.quote.pcrSelect;
        sel->count = two_banks ? 2 : 1;
        sel->pcrSelections[0] = (TPMS_PCR_SELECTION) { .hash = TPM2_ALG_SHA256, .sizeofSelect = 3,
                                                         .pcrSelect = { 0xff, 0x00, 0x01 } };
        sel->pcrSelections[1] = (TPMS_PCR_SELECTION) { .hash = TPM2_ALG_SHA1, .sizeofSelect = 3,
                                                         .pcrSelect = { 0x01, 0x00, 0x00 } };
        /* pcrDigest with the signing hash over the values in selection order */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned mdlen;
        EVP_DigestInit_ex(ctx, md, NULL);
        const vc_pcr_bank *b256 = vc_pcr_set_find(&e->pcrs, VC_ALG_SHA256);
        for (int i = 0; i < 8; i++)
                EVP_DigestUpdate(ctx, b256->values[i], 32);
        EVP_DigestUpdate(ctx, b256->values[16], 32);
        if (two_banks)
                EVP_DigestUpdate(ctx, vc_pcr_set_find(&e->pcrs, VC_ALG_SHA1)->values[0], 20);
        EVP_DigestFinal_ex(ctx, a.attested.quote.pcrDigest.buffer, &mdlen);
        a.attested.quote.pcrDigest.size = (UINT16) mdlen;
        EVP_MD_CTX_free(ctx);
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&a, e->attest, sizeof(e->attest), &off), TSS2_RC_SUCCESS);
        e->attest_len = off;

        /* sign */
        uint8_t raw[512];
        size_t rawlen = sizeof(raw);
        EVP_PKEY_CTX *pctx = NULL;
        ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, k->pkey), 1);
        if (sig_alg == TPM2_ALG_RSAPSS) {
                EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
        }
        assert_int_equal(EVP_DigestSign(ctx, raw, &rawlen, e->attest, e->attest_len), 1);
        EVP_MD_CTX_free(ctx);
        TPMT_SIGNATURE s = { .sigAlg = sig_alg };
        if (sig_alg == TPM2_ALG_ECDSA) {
                const uint8_t *p = raw;
                ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long) rawlen);
                const BIGNUM *r, *ss;
                ECDSA_SIG_get0(es, &r, &ss);
                s.signature.ecdsa.hash = hash;
                s.signature.ecdsa.signatureR.size = (UINT16) BN_bn2binpad(r, s.signature.ecdsa.signatureR.buffer, 32);
                s.signature.ecdsa.signatureS.size = (UINT16) BN_bn2binpad(ss, s.signature.ecdsa.signatureS.buffer, 32);
                ECDSA_SIG_free(es);
        } else {
                s.signature.rsassa.hash = hash;
                s.signature.rsassa.sig.size = (UINT16) rawlen;
                memcpy(s.signature.rsassa.sig.buffer, raw, rawlen);
        }
        off = 0;
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, e->sig, sizeof(e->sig), &off), TSS2_RC_SUCCESS);
        e->sig_len = off;
}

static vc_ak *load_ak(const TPMT_PUBLIC *pub) {
        uint8_t buf[sizeof(TPMT_PUBLIC)];
        size_t off = 0;
        vc_ak *ak = NULL;
        vc_error err;
        assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
        assert_int_equal(vc_ak_load(buf, off, &ak, &err), 0);
        return ak;
}

static vc_quote_result verify_full(const evidence *e, const vc_ak *ak, const vc_pcr_set *replayed,
                                   const uint8_t *qs, size_t qs_len) {
        vc_quote *q = NULL;
        vc_quote_result res;
        vc_error err;
        assert_int_equal(vc_quote_parse(e->attest, e->attest_len, e->sig, e->sig_len, &q, &err), 0);
        vc_quote_policy policy = { .allow_sha1 = true };
        assert_int_equal(vc_quote_verify(q, ak, &e->pcrs, e->nonce, 32, qs, qs_len, replayed, &policy, &res), 0);
        vc_quote_free(q);
        return res;
}

static vc_quote_result verify(const evidence *e, const vc_ak *ak) {
        return verify_full(e, ak, NULL, NULL, 0);
}

static void expect_invalid(vc_quote_result r, vc_quote_check c, const char *needle) {
        assert_int_equal(r.status, VC_QUOTE_INVALID);
        assert_int_equal(r.failed, c);
        if (!strstr(r.reason, needle))
                fail_msg("reason \"%s\" does not mention \"%s\"", r.reason, needle);
}

/* ---- tests ---- */

static void test_valid_schemes(void **state) {
        static const struct {
                key *k;
                uint16_t alg, hash;
        } cases[] = {
                { &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256 }, { &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA1 },
                { &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA384 }, { &rsa_key, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256 },
                { &ec_key, TPM2_ALG_ECDSA, TPM2_ALG_SHA256 },   { &ec_key, TPM2_ALG_ECDSA, TPM2_ALG_SHA384 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                evidence e;
                make_evidence(&e, cases[i].k, cases[i].alg, cases[i].hash, i % 2 == 0);
                vc_ak *ak = load_ak(&cases[i].k->pub);
                vc_quote_result r = verify(&e, ak);
                if (r.status != VC_QUOTE_VALID)
                        fail_msg("case %zu: %s", i, r.reason);
                assert_int_equal(r.failed, VC_QUOTE_CHECK_NONE);
                assert_int_equal(r.clock, 123456);
                assert_int_equal(r.reset_count, 7);
                assert_int_equal(r.restart_count, 2);
                assert_true(r.safe);
                vc_ak_free(ak);
        }
}

/* An AK that names its scheme signs with it alone: a valid signature by the same key in
 * another scheme or with another hash is not a quote of that AK (a NULL-scheme AK, which
 * enrollment refuses, is left to the signature check, as test_valid_schemes shows). */
static void test_scheme_is_the_aks(void **state) {
        static const struct {
                key *k;
                uint16_t ak_scheme, ak_hash, alg, hash;
                bool valid;
        } cases[] = {
                { &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, true },
                { &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256, false },
                { &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, TPM2_ALG_RSASSA, TPM2_ALG_SHA384, false },
                { &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, TPM2_ALG_RSASSA, TPM2_ALG_SHA1, false },
                { &rsa_key, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256, true },
                { &rsa_key, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false },
                { &ec_key, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, true },
                { &ec_key, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, TPM2_ALG_ECDSA, TPM2_ALG_SHA384, false },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                TPMT_PUBLIC pub = cases[i].k->pub;
                if (pub.type == TPM2_ALG_RSA) {
                        pub.parameters.rsaDetail.scheme.scheme = cases[i].ak_scheme;
                        pub.parameters.rsaDetail.scheme.details.anySig.hashAlg = cases[i].ak_hash;
                } else {
                        pub.parameters.eccDetail.scheme.scheme = cases[i].ak_scheme;
                        pub.parameters.eccDetail.scheme.details.anySig.hashAlg = cases[i].ak_hash;
                }
                evidence e;
                make_evidence(&e, cases[i].k, cases[i].alg, cases[i].hash, false);
                vc_ak *ak = load_ak(&pub);
                vc_quote_result r = verify(&e, ak);
                if (cases[i].valid && r.status != VC_QUOTE_VALID)
                        fail_msg("case %zu: %s", i, r.reason);
                if (!cases[i].valid)
                        expect_invalid(r, VC_QUOTE_CHECK_SCHEME, "but the AK signs with scheme");
                vc_ak_free(ak);
        }
}

static void test_ak_formats(void **state) {
        /* TPM2B_PUBLIC and PEM load the same key; PEM has no name/attributes. */
        uint8_t buf[sizeof(TPM2B_PUBLIC)];
        size_t off = 0;
        vc_ak *ak = NULL;
        evidence e;
        TPM2B_PUBLIC p2 = { .publicArea = ec_key.pub };
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&p2, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
        assert_int_equal(vc_ak_load(buf, off, &ak, NULL), 0);
        assert_true(ak->has_public);
        assert_int_equal(ak->name_len, 34);
        make_evidence(&e, &ec_key, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, false);
        assert_int_equal(verify(&e, ak).status, VC_QUOTE_VALID);
        vc_ak_free(ak);

        BIO *bio = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(bio, ec_key.pkey);
        char *pem;
        long n = BIO_get_mem_data(bio, &pem);
        assert_int_equal(vc_ak_load((uint8_t *) pem, (size_t) n, &ak, NULL), 0);
        assert_false(ak->has_public);
        assert_int_equal(verify(&e, ak).status, VC_QUOTE_VALID);
        vc_ak_free(ak);
        BIO_free(bio);
}

static void test_ak_load_errors(void **state) {
        vc_ak *ak = NULL;
        vc_error err;
        uint8_t buf[sizeof(TPMT_PUBLIC) + 1];
        size_t off = 0;
        assert_int_equal(vc_ak_load((const uint8_t *) "garbage", 7, &ak, &err), -EBADMSG);
        assert_int_equal(Tss2_MU_TPMT_PUBLIC_Marshal(&rsa_key.pub, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
        buf[off] = 0;
        assert_int_equal(vc_ak_load(buf, off + 1, &ak, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "ends at byte"));
        assert_int_equal(vc_ak_load(buf, off - 1, &ak, &err), -EBADMSG);
        /* unsupported curve */
        TPMT_PUBLIC p = ec_key.pub;
        p.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
        off = 0;
        Tss2_MU_TPMT_PUBLIC_Marshal(&p, buf, sizeof(buf), &off);
        assert_int_equal(vc_ak_load(buf, off, &ak, &err), -ENOTSUP);
        /* a point not on the curve */
        p = ec_key.pub;
        p.unique.ecc.y.buffer[31] ^= 1;
        off = 0;
        Tss2_MU_TPMT_PUBLIC_Marshal(&p, buf, sizeof(buf), &off);
        assert_int_equal(vc_ak_load(buf, off, &ak, &err), -EBADMSG);
        /* RSA modulus size disagreeing with keyBits */
        p = rsa_key.pub;
        p.parameters.rsaDetail.keyBits = 1024;
        off = 0;
        Tss2_MU_TPMT_PUBLIC_Marshal(&p, buf, sizeof(buf), &off);
        assert_int_equal(vc_ak_load(buf, off, &ak, &err), -EBADMSG);
        /* PEM of a key type that cannot be an AK */
        EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        BIO *bio = BIO_new(BIO_s_mem());
        PEM_write_bio_PUBKEY(bio, ed);
        char *pem;
        long n = BIO_get_mem_data(bio, &pem);
        assert_int_equal(vc_ak_load((uint8_t *) pem, (size_t) n, &ak, &err), -ENOTSUP);
        assert_int_equal(vc_ak_load((uint8_t *) pem, 40, &ak, &err), -EBADMSG);
        BIO_free(bio);
        EVP_PKEY_free(ed);
        /* over the size cap */
        uint8_t *big = calloc(1, VC_AK_MAX_FILE + 1);
        assert_int_equal(vc_ak_load(big, VC_AK_MAX_FILE + 1, &ak, &err), -E2BIG);
        free(big);
}

static void test_parse_errors(void **state) {
        evidence e;
        vc_quote *q = NULL;
        vc_error err;
        uint8_t buf[sizeof(TPMS_ATTEST) + 8];
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        assert_int_equal(vc_quote_parse(e.attest, e.attest_len - 1, e.sig, e.sig_len, &q, &err), -EBADMSG);
        memcpy(buf, e.attest, e.attest_len);
        buf[e.attest_len] = 0;
        assert_int_equal(vc_quote_parse(buf, e.attest_len + 1, e.sig, e.sig_len, &q, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "trailing"));
        assert_int_equal(vc_quote_parse(e.attest, e.attest_len, e.sig, e.sig_len - 1, &q, &err), -EBADMSG);
        assert_int_equal(vc_quote_parse(e.attest, e.attest_len, e.sig, 0, &q, &err), -EBADMSG);
        uint8_t sig2[sizeof(TPMT_SIGNATURE) + 1];
        memcpy(sig2, e.sig, e.sig_len);
        sig2[e.sig_len] = 0;
        assert_int_equal(vc_quote_parse(e.attest, e.attest_len, sig2, e.sig_len + 1, &q, &err), -EBADMSG);
        /* a TPM2B_ATTEST (with the size prefix) is unwrapped */
        buf[0] = (uint8_t) (e.attest_len >> 8);
        buf[1] = (uint8_t) e.attest_len;
        memcpy(buf + 2, e.attest, e.attest_len);
        assert_int_equal(vc_quote_parse(buf, e.attest_len + 2, e.sig, e.sig_len, &q, &err), 0);
        vc_quote_free(q);
        uint8_t *big = calloc(1, sizeof(TPMS_ATTEST) + 1);
        assert_int_equal(vc_quote_parse(big, sizeof(TPMS_ATTEST) + 1, e.sig, e.sig_len, &q, &err), -E2BIG);
        free(big);
}

/* Rewrites one field of the attest and re-signs, so only that check can fail. */
static void resign_with(evidence *e, key *k, uint16_t alg, void (*mutate)(TPMS_ATTEST *a)) {
        TPMS_ATTEST a;
        size_t off = 0;
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(e->attest, e->attest_len, &off, &a), TSS2_RC_SUCCESS);
        mutate(&a);
        off = 0;
        assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&a, e->attest, sizeof(e->attest), &off), TSS2_RC_SUCCESS);
        e->attest_len = off;
        uint8_t raw[512];
        size_t rawlen = sizeof(raw);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey), 1);
        assert_int_equal(EVP_DigestSign(ctx, raw, &rawlen, e->attest, e->attest_len), 1);
        EVP_MD_CTX_free(ctx);
        TPMT_SIGNATURE s = { .sigAlg = alg };
        s.signature.rsassa.hash = TPM2_ALG_SHA256;
        s.signature.rsassa.sig.size = (UINT16) rawlen;
        memcpy(s.signature.rsassa.sig.buffer, raw, rawlen);
        off = 0;
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, e->sig, sizeof(e->sig), &off), TSS2_RC_SUCCESS);
        e->sig_len = off;
}

static void bad_magic(TPMS_ATTEST *a) { a->magic = 0xff544348; }
static void bad_type(TPMS_ATTEST *a) { a->type = TPM2_ST_ATTEST_CERTIFY; }
static void short_nonce(TPMS_ATTEST *a) { a->extraData.size = 31; }
static void high_pcr(TPMS_ATTEST *a) { a->attested.quote.pcrSelect.pcrSelections[0].pcrSelect[3] = 0x01; a->attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 4; }
static void unknown_bank(TPMS_ATTEST *a) { a->attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA3_256; }

static void test_rejections(void **state) {
        evidence e;
        vc_ak *ak = load_ak(&rsa_key.pub), *ek = load_ak(&ec_key.pub);

        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        resign_with(&e, &rsa_key, TPM2_ALG_RSASSA, bad_magic);
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_MAGIC, "magic 0xff544348");

        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        resign_with(&e, &rsa_key, TPM2_ALG_RSASSA, bad_type);
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_TYPE, "0x8017");

        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        resign_with(&e, &rsa_key, TPM2_ALG_RSASSA, short_nonce);
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_NONCE, "is not the expected nonce");

        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        resign_with(&e, &rsa_key, TPM2_ALG_RSASSA, high_pcr);
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_PCR_MISSING, "PCR 24");

        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        resign_with(&e, &rsa_key, TPM2_ALG_RSASSA, unknown_bank);
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_PCR_MISSING, "does not know");

        /* wrong nonce supplied by the verifier */
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        e.nonce[5] ^= 1;
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_NONCE, "nonce");

        /* another key */
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        vc_ak *other = NULL;
        {
                key k2 = { .pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048) };
                make_public_rsa(&k2);
                other = load_ak(&k2.pub);
                EVP_PKEY_free(k2.pkey);
        }
        expect_invalid(verify(&e, other), VC_QUOTE_CHECK_SIGNATURE, "does not verify");
        vc_ak_free(other);

        /* RSA signature, EC key: scheme */
        expect_invalid(verify(&e, ek), VC_QUOTE_CHECK_SCHEME, "not an RSA key");
        make_evidence(&e, &ec_key, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, false);
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_SCHEME, "not an EC key");

        /* PSS signature presented as PKCS#1 v1.5 and the reverse */
        make_evidence(&e, &rsa_key, TPM2_ALG_RSAPSS, TPM2_ALG_SHA256, false);
        e.sig[1] = (uint8_t) TPM2_ALG_RSASSA;
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_SIGNATURE, "RSASSA");

        /* a flipped bit in the signature */
        make_evidence(&e, &ec_key, TPM2_ALG_ECDSA, TPM2_ALG_SHA256, false);
        e.sig[e.sig_len - 3] ^= 0x10;
        expect_invalid(verify(&e, ek), VC_QUOTE_CHECK_SIGNATURE, "ECDSA");

        /* a PCR value changed after the quote */
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, true);
        vc_pcr_set_bank(&e.pcrs, VC_ALG_SHA1)->values[0][0] ^= 1;
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_PCR_DIGEST, "pcrDigest");

        /* a selected PCR not supplied */
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        vc_pcr_set_bank(&e.pcrs, VC_ALG_SHA256)->mask &= ~(1u << 16);
        expect_invalid(verify(&e, ak), VC_QUOTE_CHECK_PCR_MISSING, "sha256 PCR 16");

        /* an AK that is not a restricted signing key */
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        TPMT_PUBLIC p = rsa_key.pub;
        p.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
        vc_ak *unrestricted = load_ak(&p);
        expect_invalid(verify(&e, unrestricted), VC_QUOTE_CHECK_AK_ATTRIBUTES, "restricted");
        vc_ak_free(unrestricted);

        /* qualifiedSigner: checked only when the caller knows it */
        uint8_t qs[34];
        memset(qs, 0xab, sizeof(qs));
        assert_int_equal(verify_full(&e, ak, NULL, qs, sizeof(qs)).status, VC_QUOTE_VALID);
        qs[33] = 0;
        expect_invalid(verify_full(&e, ak, NULL, qs, sizeof(qs)), VC_QUOTE_CHECK_SIGNER, "qualifiedSigner");

        vc_ak_free(ak);
        vc_ak_free(ek);
}

static void test_eventlog_compare(void **state) {
        evidence e;
        vc_ak *ak = load_ak(&rsa_key.pub);
        vc_pcr_set replayed = { 0 };
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);

        /* the log has no sha256 bank */
        vc_pcr_set_bank(&replayed, VC_ALG_SHA1);
        expect_invalid(verify_full(&e, ak, &replayed, NULL, 0), VC_QUOTE_CHECK_EVENTLOG, "no sha256 digests");

        /* PCRs 0-7 and 16 replayed equal to the quote: valid; 9 is logged but not quoted */
        vc_pcr_bank *rb = vc_pcr_set_bank(&replayed, VC_ALG_SHA256);
        const vc_pcr_bank *qb = vc_pcr_set_find(&e.pcrs, VC_ALG_SHA256);
        for (unsigned i = 0; i < 8; i++)
                memcpy(rb->values[i], qb->values[i], 32);
        memcpy(rb->values[9], qb->values[9], 32);
        rb->mask = 0xff | (1u << 9);
        vc_quote_result r = verify_full(&e, ak, &replayed, NULL, 0);
        assert_int_equal(r.status, VC_QUOTE_VALID);
        assert_int_equal(r.n_pcrs_compared_to_log, 8); /* PCR 16 is not in the log: not compared */
        assert_int_equal(r.log_unquoted_mask, 1u << 9);

        /* a logged PCR that differs */
        rb->values[4][0] ^= 1;
        expect_invalid(verify_full(&e, ak, &replayed, NULL, 0), VC_QUOTE_CHECK_EVENTLOG, "sha256 PCR 4");
        rb->values[4][0] ^= 1;

        /* PCR 3 missing from the log while quoted non-zero: firmware PCRs must be explained */
        rb->mask &= ~(1u << 3);
        expect_invalid(verify_full(&e, ak, &replayed, NULL, 0), VC_QUOTE_CHECK_EVENTLOG,
                       "does not extend it from its reset value");
        rb->mask |= 1u << 3;

        /* PCR 16 quoted, not in the log, not at its reset value: valid, but not attested */
        r = verify_full(&e, ak, &replayed, NULL, 0);
        assert_int_equal(r.status, VC_QUOTE_VALID);
        assert_int_equal(r.log_unexplained[vc_alg_index(VC_ALG_SHA256)], 1u << 16);
        assert_int_equal(r.log_matched[vc_alg_index(VC_ALG_SHA256)], 0xffu);
        assert_int_equal(vc_quote_attested(&r, VC_ALG_SHA256), 0xffu);
        assert_int_equal(vc_quote_attested(&r, VC_ALG_SHA1), 0);
        vc_ak_free(ak);
}

static void test_sha1_refused_by_default(void **state) {
        evidence e;
        vc_quote *q = NULL;
        vc_quote_result res;
        vc_ak *ak = load_ak(&rsa_key.pub);
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA1, false);
        assert_int_equal(vc_quote_parse(e.attest, e.attest_len, e.sig, e.sig_len, &q, NULL), 0);
        assert_int_equal(vc_quote_verify(q, ak, &e.pcrs, e.nonce, 32, NULL, 0, NULL, NULL, &res), 0);
        expect_invalid(res, VC_QUOTE_CHECK_SCHEME, "SHA-1");
        vc_quote_free(q);
        vc_ak_free(ak);
}

/* The banks a quote selects, read before anything is verified (what a replay must hold). */
static void test_quote_banks(void **state) {
        evidence e;
        vc_quote *q = NULL;
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, false);
        assert_int_equal(vc_quote_parse(e.attest, e.attest_len, e.sig, e.sig_len, &q, NULL), 0);
        assert_int_equal(vc_quote_banks(q), 1u << vc_alg_index(VC_ALG_SHA256));
        /* a selection of no PCR does not count */
        q->attest.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 0;
        assert_int_equal(vc_quote_banks(q), 0);
        vc_quote_free(q);
        make_evidence(&e, &rsa_key, TPM2_ALG_RSASSA, TPM2_ALG_SHA256, true);
        assert_int_equal(vc_quote_parse(e.attest, e.attest_len, e.sig, e.sig_len, &q, NULL), 0);
        assert_int_equal(vc_quote_banks(q), (1u << vc_alg_index(VC_ALG_SHA256)) | (1u << vc_alg_index(VC_ALG_SHA1)));
        vc_quote_free(q);
}

static void test_zeroed_result_is_not_valid(void **state) {
        vc_quote_result r = { 0 };
        assert_int_not_equal(r.status, VC_QUOTE_VALID);
        assert_string_equal(vc_quote_check_name(VC_QUOTE_CHECK_EVENTLOG), "eventlog");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_schemes),     cmocka_unit_test(test_ak_formats),
                cmocka_unit_test(test_scheme_is_the_aks),
                cmocka_unit_test(test_ak_load_errors),    cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_rejections),        cmocka_unit_test(test_eventlog_compare),
                cmocka_unit_test(test_zeroed_result_is_not_valid),
                cmocka_unit_test(test_sha1_refused_by_default),
                cmocka_unit_test(test_quote_banks),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
