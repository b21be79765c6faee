/* SPDX-License-Identifier: Apache-2.0 */
/* Device identity: the device id covers the whole EK public area, the EK key id only the
 * key, so that one TPM presenting its EK with other attributes, policy or zero padding is
 * recognised as the device it already is. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

#include "ekcert.h"
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

/* ---- EK certificates from the makers' services (ekcert.h): known answers ---- */

/* The expected keys were computed with Python's hashlib and base64 from the services'
 * definitions (Intel: base64url of SHA-256(modulus || 010001); AMD: hex of the first 16
 * bytes of SHA-256(00002222 || exponent || modulus), 00004444 || x || y for ECC). */
static TPMT_PUBLIC kat_rsa(uint32_t exponent) {
        TPMT_PUBLIC p = ek_template(TPM2_ALG_RSA);
        p.parameters.rsaDetail.keyBits = 2048;
        p.parameters.rsaDetail.exponent = exponent;
        p.unique.rsa.size = 256;
        for (int i = 0; i < 256; i++)
                p.unique.rsa.buffer[i] = (uint8_t) (i * 7 + 3);
        return p;
}

static TPMT_PUBLIC kat_ecc(void) {
        TPMT_PUBLIC p = ek_template(TPM2_ALG_ECC);
        p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p.unique.ecc.x.size = p.unique.ecc.y.size = 32;
        for (int i = 0; i < 32; i++) {
                p.unique.ecc.x.buffer[i] = (uint8_t) (i + 1);
                p.unique.ecc.y.buffer[i] = (uint8_t) (i + 33);
        }
        return p;
}

static void test_ekcert_lookup_known_answers(void **state) {
        char k[VC_EKCERT_LOOKUP_MAX];
        TPMT_PUBLIC rsa = kat_rsa(0), rsa65537 = kat_rsa(65537), rsa3 = kat_rsa(3), ecc = kat_ecc();
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_INTEL, &rsa, k, sizeof(k)), 0);
        assert_string_equal(k, "-bEdcSOBLUj3F_BV4z1O2zPmxqZhQpmNaVlA9JHhQhs%3D");
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_INTEL, &rsa65537, k, sizeof(k)), 0);
        assert_string_equal(k, "-bEdcSOBLUj3F_BV4z1O2zPmxqZhQpmNaVlA9JHhQhs%3D");
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_AMD, &rsa, k, sizeof(k)), 0);
        assert_string_equal(k, "bbed5fc84c71e4ffdbf93172191c98e0");
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_AMD, &rsa3, k, sizeof(k)), 0);
        assert_string_equal(k, "58fe3e8ad70abe9de29bf3310e475944");
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_INTEL, &ecc, k, sizeof(k)), 0);
        assert_string_equal(k, "IKfshGhPf-Ekyzcn0ElzSrC32i9S_K-875iez9kehws%3D");
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_AMD, &ecc, k, sizeof(k)), 0);
        assert_string_equal(k, "d2eeaec844768eed7597d201477ae2c9");
        /* rejections */
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_INTEL, &rsa3, k, sizeof(k)), -ENOTSUP);
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_INTEL, &rsa, k, 10), -EINVAL);
        assert_int_equal(vc_ekcert_lookup(7, &rsa, k, sizeof(k)), -EINVAL);
        TPMT_PUBLIC other = ek_template(TPM2_ALG_KEYEDHASH);
        assert_int_equal(vc_ekcert_lookup(VC_EKCERT_FORM_AMD, &other, k, sizeof(k)), -EINVAL);
}

static void b64url(const uint8_t *p, size_t n, char *out, bool pad) {
        int len = EVP_EncodeBlock((unsigned char *) out, p, (int) n);
        for (int i = 0; i < len; i++)
                out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
        while (!pad && len > 0 && out[len - 1] == '=')
                out[--len] = 0;
}

static void test_ekcert_answers(void **state) {
        /* any DER certificate stands for the service's: a self-signed one */
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        X509 *x = X509_new();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, k);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *) "ek", -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(x));
        assert_true(X509_sign(x, k, EVP_sha256()) > 0);
        unsigned char *der = NULL;
        int dn = i2d_X509(x, &der);
        assert_true(dn > 0);
        uint8_t *got = NULL;
        size_t got_len = 0;
        vc_error err;
        char json[4096], b[2048];
        for (int pad = 0; pad < 2; pad++) {
                b64url(der, (size_t) dn, b, pad);
                int jn = snprintf(json, sizeof(json), "{\"pubhash\": \"x\", \"certificate\": \"%s\"}", b);
                assert_int_equal(vc_ekcert_from_answer(VC_EKCERT_FORM_INTEL, (uint8_t *) json, (size_t) jn, &got, &got_len,
                                                       &err), 0);
                assert_int_equal(got_len, dn);
                assert_memory_equal(got, der, got_len);
                free(got);
        }
        /* AMD: DER, and PEM */
        assert_int_equal(vc_ekcert_from_answer(VC_EKCERT_FORM_AMD, der, (size_t) dn, &got, &got_len, &err), 0);
        assert_int_equal(got_len, dn);
        free(got);
        BIO *pem = BIO_new(BIO_s_mem());
        PEM_write_bio_X509(pem, x);
        char *pp;
        long pl = BIO_get_mem_data(pem, &pp);
        assert_int_equal(vc_ekcert_from_answer(VC_EKCERT_FORM_AMD, (uint8_t *) pp, (size_t) pl, &got, &got_len, &err), 0);
        assert_memory_equal(got, der, (size_t) dn);
        free(got);
        /* rejections: not JSON, no certificate, not base64url, not a certificate, trailing
         * bytes after DER, a PEM with something after it, empty, too large */
        static const char *const bad_json[] = { "not json", "{\"pubhash\": \"x\"}", "{\"certificate\": 5}",
                                                "{\"certificate\": \"@@@@\"}", "{\"certificate\": \"AAAA\"}",
                                                "[\"certificate\"]", "{\"certificate\": \"AAAA\"} trailing" };
        for (size_t i = 0; i < sizeof(bad_json) / sizeof(*bad_json); i++)
                assert_int_equal(vc_ekcert_from_answer(VC_EKCERT_FORM_INTEL, (const uint8_t *) bad_json[i],
                                                       strlen(bad_json[i]), &got, &got_len, &err), -EBADMSG);
        uint8_t *longer = malloc((size_t) dn + 1);
        memcpy(longer, der, (size_t) dn);
        longer[dn] = 0;
        assert_int_equal(vc_ekcert_from_answer(VC_EKCERT_FORM_AMD, longer, (size_t) dn + 1, &got, &got_len, &err),
                         -EBADMSG);
        free(longer);
        BIO_puts(pem, "junk after the certificate\n");
        pl = BIO_get_mem_data(pem, &pp);
        assert_int_equal(vc_ekcert_from_answer(VC_EKCERT_FORM_AMD, (uint8_t *) pp, (size_t) pl, &got, &got_len, &err),
                         -EBADMSG);
        assert_int_equal(vc_ekcert_from_answer(VC_EKCERT_FORM_AMD, der, 0, &got, &got_len, &err), -EBADMSG);
        uint8_t *huge = calloc(1, VC_EKCERT_ANSWER_MAX + 1);
        assert_int_equal(vc_ekcert_from_answer(VC_EKCERT_FORM_AMD, huge, VC_EKCERT_ANSWER_MAX + 1, &got, &got_len, &err),
                         -E2BIG);
        assert_non_null(strstr(err.msg, "at most"));
        free(huge);
        BIO_free(pem);
        OPENSSL_free(der);
        X509_free(x);
        EVP_PKEY_free(k);
}

static void test_manufacturer_names(void **state) {
        char n[12];
        vc_tpm_manufacturer_name(VC_TPM_MANUFACTURER_INTC, n);
        assert_string_equal(n, "INTC");
        vc_tpm_manufacturer_name(VC_TPM_MANUFACTURER_AMD, n);
        assert_string_equal(n, "AMD");
        vc_tpm_manufacturer_name(0x49424d00u, n);
        assert_string_equal(n, "IBM");
        vc_tpm_manufacturer_name(0x01020304u, n);
        assert_string_equal(n, "0x01020304");
        vc_tpm_manufacturer_name(0, n);
        assert_string_equal(n, "0x00000000");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rsa_variants_share_the_key_id),
                cmocka_unit_test(test_ecc_variants_share_the_key_id),
                cmocka_unit_test(test_other_keys_differ),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_ek_certificate_profile),
                cmocka_unit_test(test_ak_scheme),
                cmocka_unit_test(test_ekcert_lookup_known_answers),
                cmocka_unit_test(test_ekcert_answers),
                cmocka_unit_test(test_manufacturer_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
