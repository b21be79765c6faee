/* SPDX-License-Identifier: Apache-2.0 */
#include "enroll.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "hash.h"

struct vc_ek_ca {
        X509_STORE *store;
        size_t n;
};

vc_ek_ca *vc_ek_ca_free(vc_ek_ca *ca) {
        if (!ca)
                return NULL;
        X509_STORE_free(ca->store);
        free(ca);
        return NULL;
}

int vc_ek_ca_load(const uint8_t *pem, size_t len, vc_ek_ca **ret, vc_error *err) {
        vc_ek_ca *ca = calloc(1, sizeof(*ca));
        BIO *bio = BIO_new_mem_buf(pem, (int) len);
        X509 *x;
        if (!ca || !bio || !(ca->store = X509_STORE_new())) {
                BIO_free(bio);
                vc_ek_ca_free(ca);
                return -ENOMEM;
        }
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
                X509_STORE_add_cert(ca->store, x);
                X509_free(x);
                ca->n++;
        }
        ERR_clear_error();
        BIO_free(bio);
        if (!ca->n) {
                vc_ek_ca_free(ca);
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "EK CA bundle: no PEM certificate found");
        }
        *ret = ca;
        return 0;
}

int vc_cert_fingerprint(const uint8_t *der, size_t len, char out[65]) {
        uint8_t md[32];
        int r = vc_digest(VC_ALG_SHA256, der, len, md);
        if (r < 0)
                return r;
        vc_hex(md, 32, out);
        return 0;
}

/* Does the certificate's key equal the EK public area? */
static int key_matches(EVP_PKEY *pk, const TPMT_PUBLIC *ek) {
        BIGNUM *a = NULL, *b = NULL;
        int match = 0;
        if (ek->type == TPM2_ALG_RSA && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
                uint32_t e = ek->parameters.rsaDetail.exponent ? ek->parameters.rsaDetail.exponent : 65537;
                BIGNUM *n = BN_bin2bn(ek->unique.rsa.buffer, ek->unique.rsa.size, NULL);
                if (n && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &a) == 1 &&
                    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &b) == 1)
                        match = BN_cmp(a, n) == 0 && BN_is_word(b, e);
                BN_free(n);
        } else if (ek->type == TPM2_ALG_ECC && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
                BIGNUM *x = BN_bin2bn(ek->unique.ecc.x.buffer, ek->unique.ecc.x.size, NULL);
                BIGNUM *y = BN_bin2bn(ek->unique.ecc.y.buffer, ek->unique.ecc.y.size, NULL);
                if (x && y && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &a) == 1 &&
                    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &b) == 1)
                        match = BN_cmp(a, x) == 0 && BN_cmp(b, y) == 0;
                BN_free(x);
                BN_free(y);
        }
        BN_free(a);
        BN_free(b);
        return match;
}

/* EK certificates mark their SAN (TPM manufacturer/model/version) critical; OpenSSL would
 * refuse the unknown critical content. Accept exactly that extension. */
static int verify_cb(int ok, X509_STORE_CTX *ctx) {
        if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION) {
                X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
                int unhandled = 0;
                for (int i = 0; cur && i < X509_get_ext_count(cur); i++) {
                        X509_EXTENSION *e = X509_get_ext(cur, i);
                        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));
                        if (X509_EXTENSION_get_critical(e) && nid != NID_subject_alt_name && !X509_supported_extension(e))
                                unhandled++;
                }
                if (!unhandled)
                        return 1;
        }
        return ok;
}

/* TCG EK Credential Profile: an EK certificate is an end-entity certificate (not a CA)
 * for key encipherment (RSA EKs) or key agreement (ECC EKs), and an extended key usage,
 * when it has one, names tcg-kp-EKCertificate. Without this check any other leaf under a
 * CA of the bundle (a TLS server's, say, whose key is in software) would be taken for a
 * TPM: its holder could answer the credential challenge for a software "AK". */
static int ek_profile(X509 *cert, vc_error *err) {
        int crit = 0;
        if (X509_check_ca(cert) != 0)
                return vc_error_set(err, -EPERM, SIZE_MAX, -1, "EK certificate is a CA certificate, not an EK's");
        uint32_t ku = X509_get_key_usage(cert);
        if (ku == UINT32_MAX)
                return vc_error_set(err, -EPERM, SIZE_MAX, -1,
                                    "EK certificate has no keyUsage; expected keyEncipherment (RSA) or keyAgreement (ECC)");
        if (!(ku & (KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)))
                return vc_error_set(err, -EPERM, SIZE_MAX, -1,
                                    "EK certificate's keyUsage is 0x%x without keyEncipherment (RSA) or keyAgreement (ECC): "
                                    "not an EK certificate", ku);
        EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
        if (!eku && crit != -1)
                return vc_error_set(err, -EPERM, SIZE_MAX, -1, "EK certificate's extended key usage cannot be read");
        if (!eku)
                return 0;
        ASN1_OBJECT *want = OBJ_txt2obj("2.23.133.8.1", 1);
        bool found = false;
        for (int i = 0; want && i < sk_ASN1_OBJECT_num(eku) && !found; i++)
                found = OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), want) == 0;
        ASN1_OBJECT_free(want);
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
        if (!found)
                return vc_error_set(err, -EPERM, SIZE_MAX, -1,
                                    "EK certificate's extended key usage does not include tcg-kp-EKCertificate "
                                    "(2.23.133.8.1): not an EK certificate");
        return 0;
}

int vc_ek_verify(const vc_ek_ca *ca, const uint8_t *cert_der, size_t cert_len, const uint8_t *const *intermediates,
                 const size_t *intermediate_lens, size_t n_intermediates, const TPMT_PUBLIC *ek, time_t now,
                 vc_error *err) {
        X509 *cert = NULL;
        STACK_OF(X509) *chain = NULL;
        X509_STORE_CTX *ctx = NULL;
        EVP_PKEY *pk;
        int r = -ENOMEM;

        vc_error_clear(err);
        if (cert_len == 0)
                return vc_error_set(err, -EPERM, SIZE_MAX, -1, "no EK certificate");
        if (cert_len > VC_EK_CERT_MAX || n_intermediates > VC_EK_MAX_INTERMEDIATES)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "EK certificate or chain over its size limit");
        const uint8_t *p = cert_der;
        cert = d2i_X509(NULL, &p, (long) cert_len);
        if (!cert || p != cert_der + cert_len) {
                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "EK certificate is not one DER X.509 certificate");
                goto out;
        }
        chain = sk_X509_new_null();
        if (!chain)
                goto out;
        for (size_t i = 0; i < n_intermediates; i++) {
                const uint8_t *q = intermediates[i];
                X509 *x = intermediate_lens[i] <= VC_EK_CERT_MAX ? d2i_X509(NULL, &q, (long) intermediate_lens[i]) : NULL;
                if (!x || !sk_X509_push(chain, x)) {
                        X509_free(x);
                        r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "EK intermediate %zu is not a DER certificate", i);
                        goto out;
                }
        }
        ctx = X509_STORE_CTX_new();
        if (!ctx || X509_STORE_CTX_init(ctx, ca->store, cert, chain) != 1)
                goto out;
        X509_STORE_CTX_set_time(ctx, 0, now);
        X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
        if (X509_verify_cert(ctx) != 1) {
                int e = X509_STORE_CTX_get_error(ctx);
                r = vc_error_set(err, -EPERM, SIZE_MAX, -1, "EK certificate chain: %s (depth %d)",
                                 X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(ctx));
                goto out;
        }
        if ((r = ek_profile(cert, err)) < 0)
                goto out;
        pk = X509_get0_pubkey(cert);
        if (!pk || !key_matches(pk, ek)) {
                r = vc_error_set(err, -EPERM, SIZE_MAX, -1, "EK certificate is for another key than the EK presented");
                goto out;
        }
        r = 0;
out:
        ERR_clear_error();
        X509_STORE_CTX_free(ctx);
        sk_X509_pop_free(chain, X509_free);
        X509_free(cert);
        return r;
}

int vc_ak_check_attributes(const TPMT_PUBLIC *ak, vc_error *err) {
        static const struct {
                TPMA_OBJECT bit;
                bool want;
                const char *name;
        } rules[] = {
                { TPMA_OBJECT_RESTRICTED, true, "restricted" },
                { TPMA_OBJECT_SIGN_ENCRYPT, true, "sign" },
                { TPMA_OBJECT_DECRYPT, false, "decrypt" },
                { TPMA_OBJECT_FIXEDTPM, true, "fixedTPM" },
                { TPMA_OBJECT_FIXEDPARENT, true, "fixedParent" },
                { TPMA_OBJECT_SENSITIVEDATAORIGIN, true, "sensitiveDataOrigin" },
        };
        TPMA_OBJECT a = ak->objectAttributes;
        vc_error_clear(err);
        for (size_t i = 0; i < ELEMENTSOF(rules); i++)
                if (!!(a & rules[i].bit) != rules[i].want)
                        return vc_error_set(err, -EPERM, SIZE_MAX, -1, "AK attribute %s must be %s (attributes 0x%08x)",
                                            rules[i].name, rules[i].want ? "set" : "clear", a);
        if (!(a & TPMA_OBJECT_USERWITHAUTH) && ak->authPolicy.size == 0)
                return vc_error_set(err, -EPERM, SIZE_MAX, -1, "AK is unusable: neither userWithAuth nor an authPolicy");
        if (ak->type == TPM2_ALG_RSA) {
                TPMI_ALG_RSA_SCHEME s = ak->parameters.rsaDetail.scheme.scheme;
                if (s != TPM2_ALG_RSASSA && s != TPM2_ALG_RSAPSS)
                        return vc_error_set(err, -EPERM, SIZE_MAX, -1, "RSA AK scheme 0x%04x is not RSASSA or RSAPSS", s);
                if (ak->parameters.rsaDetail.keyBits < 2048)
                        return vc_error_set(err, -EPERM, SIZE_MAX, -1, "RSA AK of %u bits; at least 2048 required",
                                            ak->parameters.rsaDetail.keyBits);
        } else if (ak->type == TPM2_ALG_ECC) {
                TPMI_ALG_ECC_SCHEME s = ak->parameters.eccDetail.scheme.scheme;
                if (s != TPM2_ALG_ECDSA)
                        return vc_error_set(err, -EPERM, SIZE_MAX, -1, "ECC AK scheme 0x%04x is not ECDSA", s);
        } else {
                return vc_error_set(err, -EPERM, SIZE_MAX, -1, "AK type 0x%04x is not RSA or ECC", ak->type);
        }
        if (!vc_alg_lookup(ak->nameAlg) || ak->nameAlg == VC_ALG_SM3_256)
                return vc_error_set(err, -EPERM, SIZE_MAX, -1, "AK nameAlg 0x%04x not supported", ak->nameAlg);
        return 0;
}

int vc_device_id(const TPMT_PUBLIC *ek, char out[VC_DEVICE_ID_LEN + 1]) {
        uint8_t buf[sizeof(TPMT_PUBLIC)], md[32];
        size_t off = 0;
        if (Tss2_MU_TPMT_PUBLIC_Marshal(ek, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
                return -EINVAL;
        int r = vc_digest(VC_ALG_SHA256, buf, off, md);
        if (r < 0)
                return r;
        vc_hex(md, 32, out);
        return 0;
}

/* n bytes of an unsigned big-endian integer, leading zeros dropped, as a 2-byte length
 * and the bytes */
static size_t put_uint(uint8_t *out, const uint8_t *b, size_t n) {
        while (n && !b[0])
                b++, n--;
        out[0] = (uint8_t) (n >> 8);
        out[1] = (uint8_t) n;
        memcpy(out + 2, b, n);
        return 2 + n;
}

int vc_ek_key_id(const TPMT_PUBLIC *ek, uint8_t out[32]) {
        uint8_t buf[16 + 2 * (2 + sizeof(ek->unique.rsa.buffer))];
        size_t off = 0;
        buf[off++] = (uint8_t) (ek->type >> 8);
        buf[off++] = (uint8_t) ek->type;
        if (ek->type == TPM2_ALG_RSA) {
                uint32_t e = ek->parameters.rsaDetail.exponent ? ek->parameters.rsaDetail.exponent : 65537;
                uint8_t eb[4] = { (uint8_t) (e >> 24), (uint8_t) (e >> 16), (uint8_t) (e >> 8), (uint8_t) e };
                if (ek->unique.rsa.size > sizeof(ek->unique.rsa.buffer))
                        return -EINVAL;
                off += put_uint(buf + off, eb, sizeof(eb));
                off += put_uint(buf + off, ek->unique.rsa.buffer, ek->unique.rsa.size);
        } else if (ek->type == TPM2_ALG_ECC) {
                uint16_t c = ek->parameters.eccDetail.curveID;
                if (ek->unique.ecc.x.size > sizeof(ek->unique.ecc.x.buffer) ||
                    ek->unique.ecc.y.size > sizeof(ek->unique.ecc.y.buffer))
                        return -EINVAL;
                buf[off++] = (uint8_t) (c >> 8);
                buf[off++] = (uint8_t) c;
                off += put_uint(buf + off, ek->unique.ecc.x.buffer, ek->unique.ecc.x.size);
                off += put_uint(buf + off, ek->unique.ecc.y.buffer, ek->unique.ecc.y.size);
        } else {
                return -EINVAL;
        }
        return vc_digest(VC_ALG_SHA256, buf, off, out);
}
