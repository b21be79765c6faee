/* SPDX-License-Identifier: Apache-2.0 */
/* Device identity: the device id covers the whole EK public area, the EK key id only the
 * key, so that one TPM presenting its EK with other attributes, policy or zero padding is
 * recognised as the device it already is. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

#include "enroll.h"

/* What the TCG's default EK templates share. */
static TPMT_PUBLIC ek_template(TPMI_ALG_PUBLIC type) {
        TPMT_PUBLIC p = { 0 };
        p.type = type;
        p.nameAlg = TPM2_ALG_SHA256;
        p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                             TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
        return p;
}

/* The TCG's default RSA 2048 EK template (low range) with a made-up modulus. */
static TPMT_PUBLIC rsa_ek(void) {
        TPMT_PUBLIC p = ek_template(TPM2_ALG_RSA);
        p.authPolicy.size = 32;
        memset(p.authPolicy.buffer, 0x83, 32);
        p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
        p.parameters.rsaDetail.symmetric.keyBits.aes = 128;
        p.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        p.parameters.rsaDetail.keyBits = 2048;
        p.parameters.rsaDetail.exponent = 0;
        p.unique.rsa.size = 256;
        for (int i = 0; i < 256; i++)
                p.unique.rsa.buffer[i] = (uint8_t) (0x80 + i * 7);
        return p;
}

static TPMT_PUBLIC ecc_ek(void) {
        TPMT_PUBLIC p = ek_template(TPM2_ALG_ECC);
        p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p.parameters.eccDetail.symmetric.keyBits.aes = 128;
        p.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p.unique.ecc.x.size = 32;
        p.unique.ecc.y.size = 32;
        p.unique.ecc.x.buffer[0] = 0x00; /* a coordinate with a leading zero byte */
        for (int i = 1; i < 32; i++)
                p.unique.ecc.x.buffer[i] = (uint8_t) (i * 5 + 1);
        for (int i = 0; i < 32; i++)
                p.unique.ecc.y.buffer[i] = (uint8_t) (0xf0 - i);
        return p;
}

static void ids(const TPMT_PUBLIC *p, char id[VC_DEVICE_ID_LEN + 1], uint8_t key[32]) {
        assert_int_equal(vc_device_id(p, id), 0);
        assert_int_equal(vc_ek_key_id(p, key), 0);
}

/* a variant: other device id, same key id */
static void same_key_other_id(const TPMT_PUBLIC *a, const TPMT_PUBLIC *b) {
        char ia[VC_DEVICE_ID_LEN + 1], ib[VC_DEVICE_ID_LEN + 1];
        uint8_t ka[32], kb[32];
        ids(a, ia, ka);
        ids(b, ib, kb);
        assert_string_not_equal(ia, ib);
        assert_memory_equal(ka, kb, 32);
}

static void test_rsa_variants_share_the_key_id(void **state) {
        (void) state;
        TPMT_PUBLIC a = rsa_ek(), b;
        b = a;
        b.objectAttributes |= TPMA_OBJECT_USERWITHAUTH; /* attributes */
        same_key_other_id(&a, &b);
        b = a;
        b.authPolicy.size = 0; /* policy */
        same_key_other_id(&a, &b);
        b = a;
        b.parameters.rsaDetail.exponent = 65537; /* the default exponent spelled out */
        same_key_other_id(&a, &b);
        b = a;
        b.nameAlg = TPM2_ALG_SHA384;
        same_key_other_id(&a, &b);
}

static void test_ecc_variants_share_the_key_id(void **state) {
        (void) state;
        TPMT_PUBLIC a = ecc_ek(), b = a;
        /* x without its leading zero byte: the same integer */
        b.unique.ecc.x.size = 31;
        memmove(b.unique.ecc.x.buffer, a.unique.ecc.x.buffer + 1, 31);
        same_key_other_id(&a, &b);
        b = a;
        b.objectAttributes &= ~TPMA_OBJECT_ADMINWITHPOLICY;
        same_key_other_id(&a, &b);
}

static void test_other_keys_differ(void **state) {
        (void) state;
        TPMT_PUBLIC a = rsa_ek(), b = a;
        uint8_t ka[32], kb[32];
        b.unique.rsa.buffer[100] ^= 1;
        assert_int_equal(vc_ek_key_id(&a, ka), 0);
        assert_int_equal(vc_ek_key_id(&b, kb), 0);
        assert_memory_not_equal(ka, kb, 32);
        b = a;
        b.parameters.rsaDetail.exponent = 3;
        assert_int_equal(vc_ek_key_id(&b, kb), 0);
        assert_memory_not_equal(ka, kb, 32);
        /* coordinates are not interchangeable: x and y swapped is another key */
        TPMT_PUBLIC e = ecc_ek(), f = e;
        f.unique.ecc.x = e.unique.ecc.y;
        f.unique.ecc.y = e.unique.ecc.x;
        assert_int_equal(vc_ek_key_id(&e, ka), 0);
        assert_int_equal(vc_ek_key_id(&f, kb), 0);
        assert_memory_not_equal(ka, kb, 32);
        /* nor are curves */
        f = e;
        f.parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
        assert_int_equal(vc_ek_key_id(&f, kb), 0);
        assert_memory_not_equal(ka, kb, 32);
}

static void test_rejects(void **state) {
        (void) state;
        uint8_t k[32];
        TPMT_PUBLIC p = rsa_ek();
        p.type = TPM2_ALG_KEYEDHASH;
        assert_int_equal(vc_ek_key_id(&p, k), -EINVAL);
        p = rsa_ek();
        p.unique.rsa.size = sizeof(p.unique.rsa.buffer) + 1;
        assert_int_equal(vc_ek_key_id(&p, k), -EINVAL);
        p = ecc_ek();
        p.unique.ecc.y.size = sizeof(p.unique.ecc.y.buffer) + 1;
        assert_int_equal(vc_ek_key_id(&p, k), -EINVAL);
}

/* An AK must name its signing scheme: quotes are then held to it (test-quote). */
static void test_ak_scheme(void **state) {
        (void) state;
        vc_error err;
        TPMT_PUBLIC ak = rsa_ek();
        ak.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                              TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
        ak.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        ak.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        ak.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        assert_int_equal(vc_ak_check_attributes(&ak, &err), 0);
        ak.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        assert_int_equal(vc_ak_check_attributes(&ak, &err), -EPERM);
        assert_non_null(strstr(err.msg, "RSA AK scheme 0x0010 is not RSASSA or RSAPSS"));
        TPMT_PUBLIC ec = ecc_ek();
        ec.objectAttributes = ak.objectAttributes;
        ec.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        ec.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        ec.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        assert_int_equal(vc_ak_check_attributes(&ec, &err), 0);
        ec.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        assert_int_equal(vc_ak_check_attributes(&ec, &err), -EPERM);
        assert_non_null(strstr(err.msg, "ECC AK scheme 0x0010 is not ECDSA"));
}

/* ---------------------------------------------------------------------------------------
 * The EK certificate's profile: only an EK certificate under the EK CA vouches for a TPM. */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
}

/* A certificate for key, issued by issuer/issuer_key (self-signed when NULL), with the
 * extensions given as "nid=value" pairs (NULL-terminated). */
static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *cn, const int *nids,
                       const char *const *values) {
        X509 *x = X509_new();
        assert_non_null(x);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0);
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
        for (size_t i = 0; nids && nids[i]; i++)
                add_ext(x, issuer ? issuer : x, nids[i], values[i]);
        assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
        return x;
}

/* The EK public area of an EC P-256 key. */
static TPMT_PUBLIC ek_of(EVP_PKEY *key) {
        TPMT_PUBLIC p = ecc_ek();
        BIGNUM *x = NULL, *y = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        assert_int_equal(BN_bn2binpad(x, p.unique.ecc.x.buffer, 32), 32);
        assert_int_equal(BN_bn2binpad(y, p.unique.ecc.y.buffer, 32), 32);
        BN_free(x);
        BN_free(y);
        return p;
}

static void test_ek_certificate_profile(void **state) {
        (void) state;
        static const char *const ca_v[] = { "critical,CA:TRUE", "critical,keyCertSign,cRLSign", "hash" };
        static const int ca_n[] = { NID_basic_constraints, NID_key_usage, NID_subject_key_identifier, 0 };
        static const struct {
                const char *what;
                int nids[4];
                const char *values[3];
                const char *refused; /* NULL: accepted */
        } cases[] = {
                { "an EK certificate as swtpm makes it",
                  { NID_basic_constraints, NID_key_usage, NID_ext_key_usage, 0 },
                  { "critical,CA:FALSE", "critical,keyAgreement", "2.23.133.8.1" },
                  NULL },
                { "an RSA EK's key usage, no extended key usage",
                  { NID_key_usage, 0 },
                  { "critical,keyEncipherment" },
                  NULL },
                { "tcg-kp-EKCertificate among others",
                  { NID_key_usage, NID_ext_key_usage, 0 },
                  { "keyAgreement", "serverAuth,2.23.133.8.1" },
                  NULL },
                { "a TLS server's certificate",
                  { NID_basic_constraints, NID_key_usage, NID_ext_key_usage, 0 },
                  { "CA:FALSE", "digitalSignature,keyAgreement", "serverAuth" },
                  "does not include tcg-kp-EKCertificate" },
                { "a signing certificate",
                  { NID_key_usage, 0 },
                  { "critical,digitalSignature" },
                  "without keyEncipherment" },
                { "no key usage at all",
                  { NID_basic_constraints, 0 },
                  { "CA:FALSE" },
                  "has no keyUsage" },
                { "a CA",
                  { NID_basic_constraints, NID_key_usage, 0 },
                  { "critical,CA:TRUE", "keyCertSign,keyAgreement" },
                  "is a CA certificate" },
        };
        EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *ek_key = EVP_EC_gen("P-256");
        assert_non_null(ca_key);
        assert_non_null(ek_key);
        X509 *ca = make_cert(ca_key, NULL, NULL, "EK CA", ca_n, ca_v);
        BIO *bio = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_X509(bio, ca), 1);
        char *pem;
        long pem_len = BIO_get_mem_data(bio, &pem);
        vc_ek_ca *store = NULL;
        vc_error err;
        assert_int_equal(vc_ek_ca_load((const uint8_t *) pem, (size_t) pem_len, &store, &err), 0);
        TPMT_PUBLIC ek = ek_of(ek_key);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                X509 *leaf = make_cert(ek_key, ca, ca_key, "EK", cases[i].nids, cases[i].values);
                uint8_t *der = NULL;
                int len = i2d_X509(leaf, &der);
                assert_true(len > 0);
                int r = vc_ek_verify(store, der, (size_t) len, NULL, NULL, 0, &ek, time(NULL), &err);
                if (cases[i].refused ? r != -EPERM || !strstr(err.msg, cases[i].refused) : r != 0)
                        fail_msg("%s: %d (%s), expected %s", cases[i].what, r, r ? err.msg : "accepted",
                                 cases[i].refused ? cases[i].refused : "accepted");
                /* the right profile for another key is still refused */
                if (!cases[i].refused) {
                        TPMT_PUBLIC other = ek;
                        other.unique.ecc.y.buffer[31] ^= 1;
                        assert_int_equal(vc_ek_verify(store, der, (size_t) len, NULL, NULL, 0, &other, time(NULL), &err),
                                         -EPERM);
                }
                OPENSSL_free(der);
                X509_free(leaf);
        }
        vc_ek_ca_free(store);
        BIO_free(bio);
        X509_free(ca);
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(ek_key);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rsa_variants_share_the_key_id),
                cmocka_unit_test(test_ecc_variants_share_the_key_id),
                cmocka_unit_test(test_other_keys_differ),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_ek_certificate_profile),
                cmocka_unit_test(test_ak_scheme),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
