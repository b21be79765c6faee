/* SPDX-License-Identifier: Apache-2.0 */
/* The device key's certify (verifier/core/certify.h) with synthetic structures: software AKs
 * and device keys (quotebuilder), every check and every rejection path. */
#include <errno.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>
#include <cmocka.h>

#include "certify.h"
#include "quotebuilder.h"

static qb_key ak_key, other_ak_key;
static vc_ak *ak, *other_ak;
static uint8_t nonce[32], qualifying[VC_CERTIFY_QUALIFYING_SIZE];

static int group_setup(void **state) {
        vc_error err;
        qb_key_new(&ak_key);
        qb_key_new(&other_ak_key);
        assert_int_equal(vc_ak_load(ak_key.pub_bytes, ak_key.pub_len, &ak, &err), 0);
        assert_int_equal(vc_ak_load(other_ak_key.pub_bytes, other_ak_key.pub_len, &other_ak, &err), 0);
        for (size_t i = 0; i < sizeof(nonce); i++)
                nonce[i] = (uint8_t) i;
        assert_int_equal(vc_certify_qualifying_data(nonce, sizeof(nonce), qualifying), 0);
        return 0;
}

static int group_teardown(void **state) {
        vc_ak_free(ak);
        vc_ak_free(other_ak);
        qb_key_free(&ak_key);
        qb_key_free(&other_ak_key);
        return 0;
}

/* Parses what the agent would send (key, certify, signature) and verifies it with the AK
 * over the expected qualifying data; returns the result. */
static vc_certify_result verify_with(const qb_key *key, const qb_quote *q, const vc_ak *with,
                                     const vc_quote_policy *policy) {
        vc_certify *c = NULL;
        vc_certify_result res;
        vc_error err;
        assert_int_equal(vc_certify_parse(key->pub_bytes, key->pub_len, q->attest, q->attest_len, q->sig, q->sig_len,
                                          &c, &err),
                         0);
        assert_int_equal(vc_certify_verify(c, with, qualifying, sizeof(qualifying), policy, &res), 0);
        vc_certify_free(c);
        return res;
}

static void expect_refused(vc_certify_result res, vc_certify_check check, const char *in_reason) {
        if (res.status != VC_CERTIFY_INVALID || res.failed != check)
                fail_msg("expected %s, got status %d check %s: %s", vc_certify_check_name(check), res.status,
                         vc_certify_check_name(res.failed), res.reason);
        if (!strstr(res.reason, in_reason))
                fail_msg("reason \"%s\" does not say \"%s\"", res.reason, in_reason);
}

static void test_qualifying_data_known_answer(void **state) {
        /* SHA-256("vouch device key certify" || 00 01 .. 1f), by Python's hashlib */
        static const char want[] = "0e43a9780015595e9aedeba4573914ff3c5d0485409f5731f717449e00b609b6";
        char hex[2 * VC_CERTIFY_QUALIFYING_SIZE + 1];
        vc_hex(qualifying, sizeof(qualifying), hex);
        assert_string_equal(hex, want);
        /* not the nonce itself, and another nonce gives another value */
        uint8_t other[VC_CERTIFY_QUALIFYING_SIZE], n2[32];
        memcpy(n2, nonce, sizeof(n2));
        n2[31] ^= 1;
        assert_int_equal(vc_certify_qualifying_data(n2, sizeof(n2), other), 0);
        assert_memory_not_equal(other, qualifying, sizeof(other));
        assert_memory_not_equal(nonce, qualifying, sizeof(nonce));
}

static void test_valid(void **state) {
        qb_key dev;
        qb_quote q;
        vc_certify *c = NULL;
        vc_certify_result res;
        vc_error err;
        uint8_t name[34];
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        qb_certify_make(&ak_key, &dev, qualifying, sizeof(qualifying), &q);
        assert_int_equal(vc_certify_parse(dev.pub_bytes, dev.pub_len, q.attest, q.attest_len, q.sig, q.sig_len, &c, &err),
                         0);
        assert_int_equal(vc_certify_verify(c, ak, qualifying, sizeof(qualifying), NULL, &res), 0);
        assert_int_equal(res.status, VC_CERTIFY_VALID);
        assert_int_equal(res.failed, VC_CERTIFY_CHECK_NONE);
        qb_key_name(&dev, name);
        assert_int_equal(res.name_len, sizeof(name));
        assert_memory_equal(res.name, name, sizeof(name));
        /* the key for the certificate is the device's */
        EVP_PKEY *pk = NULL;
        assert_int_equal(vc_certify_key(c, &pk, &err), 0);
        assert_int_equal(EVP_PKEY_eq(pk, dev.pkey), 1);
        EVP_PKEY_free(pk);
        vc_certify_free(c);
        /* a TPM2B_ATTEST (size prefix) is taken as well, like a quote's */
        qb_quote q2b = q;
        q2b.attest[0] = (uint8_t) (q.attest_len >> 8);
        q2b.attest[1] = (uint8_t) q.attest_len;
        memcpy(q2b.attest + 2, q.attest, q.attest_len);
        q2b.attest_len = q.attest_len + 2;
        assert_int_equal(verify_with(&dev, &q2b, ak, NULL).status, VC_CERTIFY_VALID);
        qb_key_free(&dev);
}

/* Changes one field of a good certify, signs it again with the AK, and expects check. */
static void test_magic_and_type(void **state) {
        qb_key dev;
        qb_quote q;
        TPMS_ATTEST a;
        uint8_t name[34];
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        qb_key_name(&dev, name);
        qb_certify_attest(name, sizeof(name), qualifying, sizeof(qualifying), &a);
        a.magic = 0xff544348;
        qb_attest_sign(&ak_key, &a, &q);
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_MAGIC, "0xff544348");

        /* a quote (type 0x8018) is not a certify, whatever it holds */
        qb_certify_attest(name, sizeof(name), qualifying, sizeof(qualifying), &a);
        a.type = TPM2_ST_ATTEST_QUOTE;
        memset(&a.attested, 0, sizeof(a.attested));
        qb_attest_sign(&ak_key, &a, &q);
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_TYPE, "0x8018, expected TPM_ST_ATTEST_CERTIFY");
        qb_key_free(&dev);
}

static void test_ak_not_restricted(void **state) {
        qb_key dev, loose = ak_key;
        qb_quote q;
        vc_ak *a = NULL;
        vc_error err;
        loose.pub.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
        loose.pub.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        qb_key_remarshal(&loose);
        assert_int_equal(vc_ak_load(loose.pub_bytes, loose.pub_len, &a, &err), 0);
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        qb_certify_make(&ak_key, &dev, qualifying, sizeof(qualifying), &q);
        expect_refused(verify_with(&dev, &q, a, NULL), VC_CERTIFY_CHECK_AK_ATTRIBUTES, "must be restricted");
        vc_ak_free(a);
        qb_key_free(&dev);
}

static void test_scheme(void **state) {
        qb_key dev;
        qb_quote q;
        TPMT_SIGNATURE s;
        size_t off = 0;
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        qb_certify_make(&ak_key, &dev, qualifying, sizeof(qualifying), &q);
        /* the AK signs RSASSA-SHA256 only: a signature that says SHA-384 is not its own */
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Unmarshal(q.sig, q.sig_len, &off, &s), TSS2_RC_SUCCESS);
        s.signature.rsassa.hash = TPM2_ALG_SHA384;
        off = 0;
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, q.sig, sizeof(q.sig), &off), TSS2_RC_SUCCESS);
        q.sig_len = off;
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_SCHEME, "hash 0x000c");
        /* an ECDSA signature from an RSA AK */
        s = (TPMT_SIGNATURE) { .sigAlg = TPM2_ALG_ECDSA };
        s.signature.ecdsa.hash = TPM2_ALG_SHA256;
        s.signature.ecdsa.signatureR.size = s.signature.ecdsa.signatureS.size = 32;
        off = 0;
        assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, q.sig, sizeof(q.sig), &off), TSS2_RC_SUCCESS);
        q.sig_len = off;
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_SCHEME, "scheme 0x0018");
        qb_key_free(&dev);
}

static void test_signature(void **state) {
        qb_key dev;
        qb_quote q;
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        /* certified by another device's AK: its signature does not verify with this AK */
        qb_certify_make(&other_ak_key, &dev, qualifying, sizeof(qualifying), &q);
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_SIGNATURE, "does not verify with the AK");
        assert_int_equal(verify_with(&dev, &q, other_ak, NULL).status, VC_CERTIFY_VALID);
        /* one bit of the signed structure changed after signing */
        qb_certify_make(&ak_key, &dev, qualifying, sizeof(qualifying), &q);
        q.attest[q.attest_len - 1] ^= 1;
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_SIGNATURE, "RSASSA");
        qb_key_free(&dev);
}

static void test_qualifying_data(void **state) {
        qb_key dev;
        qb_quote q;
        uint8_t old_nonce[32], old[VC_CERTIFY_QUALIFYING_SIZE];
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        /* certified over an earlier challenge's nonce */
        memset(old_nonce, 0x55, sizeof(old_nonce));
        assert_int_equal(vc_certify_qualifying_data(old_nonce, sizeof(old_nonce), old), 0);
        qb_certify_make(&ak_key, &dev, old, sizeof(old), &q);
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_QUALIFYING_DATA, "certified for another challenge");
        /* over the nonce itself (the quote's extraData): not domain-separated, refused */
        qb_certify_make(&ak_key, &dev, nonce, sizeof(nonce), &q);
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_QUALIFYING_DATA,
                       "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        /* over nothing */
        qb_certify_make(&ak_key, &dev, NULL, 0, &q);
        expect_refused(verify_with(&dev, &q, ak, NULL), VC_CERTIFY_CHECK_QUALIFYING_DATA, "extraData \"\"");
        qb_key_free(&dev);
}

static void test_name(void **state) {
        qb_key dev, soft;
        qb_quote q;
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        qb_devkey_new(&soft, QB_DEVKEY_ATTRS);
        /* the TPM certified dev; the agent sends a software key's public area with it */
        qb_certify_make(&ak_key, &dev, qualifying, sizeof(qualifying), &q);
        expect_refused(verify_with(&soft, &q, ak, NULL), VC_CERTIFY_CHECK_NAME, "another key was certified");
        /* the same key with one attribute changed has another Name too */
        qb_key tweaked = dev;
        tweaked.pub.objectAttributes |= TPMA_OBJECT_NODA;
        qb_key_remarshal(&tweaked);
        expect_refused(verify_with(&tweaked, &q, ak, NULL), VC_CERTIFY_CHECK_NAME, "is not the Name");

        /* nameAlg SHA-1: refused by default, its Name checked when the policy allows SHA-1 */
        qb_key sha1 = dev;
        uint8_t name[22];
        unsigned n = 0;
        TPMS_ATTEST a;
        sha1.pub.nameAlg = TPM2_ALG_SHA1;
        qb_key_remarshal(&sha1);
        name[0] = 0x00;
        name[1] = 0x04;
        assert_int_equal(EVP_Digest(sha1.pub_bytes, sha1.pub_len, name + 2, &n, EVP_sha1(), NULL), 1);
        qb_certify_attest(name, 22, qualifying, sizeof(qualifying), &a);
        a.attested.certify.name.size = 22;
        qb_attest_sign(&ak_key, &a, &q);
        expect_refused(verify_with(&sha1, &q, ak, NULL), VC_CERTIFY_CHECK_NAME, "SHA-1");
        static const vc_quote_policy allow_sha1 = { .allow_sha1 = true };
        assert_int_equal(verify_with(&sha1, &q, ak, &allow_sha1).status, VC_CERTIFY_VALID);

        /* a nameAlg the verifier cannot compute (SM3) */
        qb_key sm3 = dev;
        sm3.pub.nameAlg = TPM2_ALG_SM3_256;
        qb_key_remarshal(&sm3);
        expect_refused(verify_with(&sm3, &q, ak, NULL), VC_CERTIFY_CHECK_NAME, "0x0012");
        qb_key_free(&dev);
        qb_key_free(&soft);
}

/* k's public area certified correctly by the AK: only the key checks remain. */
static vc_certify_result certify_as_is(qb_key *k) {
        qb_quote q;
        qb_certify_make(&ak_key, k, qualifying, sizeof(qualifying), &q);
        return verify_with(k, &q, ak, NULL);
}

static void test_key_type(void **state) {
        qb_key dev;
        /* an RSA key, correctly certified: not the device key's type */
        qb_key rsa = ak_key;
        rsa.pub.objectAttributes = QB_DEVKEY_ATTRS;
        qb_key_remarshal(&rsa);
        expect_refused(certify_as_is(&rsa), VC_CERTIFY_CHECK_KEY_TYPE, "type 0x0001");
        /* ECC on P-384 */
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        qb_key p384 = dev;
        p384.pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
        qb_key_remarshal(&p384);
        expect_refused(certify_as_is(&p384), VC_CERTIFY_CHECK_KEY_TYPE, "curve 0x0004");
        /* a point off the curve */
        qb_key off = dev;
        off.pub.unique.ecc.y.buffer[31] ^= 1;
        qb_key_remarshal(&off);
        expect_refused(certify_as_is(&off), VC_CERTIFY_CHECK_KEY_TYPE, "not on curve");
        qb_key_free(&dev);
}

static void test_key_attributes(void **state) {
        static const struct {
                uint32_t clear, set;
                const char *says;
        } cases[] = {
                { TPMA_OBJECT_FIXEDTPM, 0, "missing fixedTPM" },
                { TPMA_OBJECT_FIXEDPARENT, 0, "missing fixedParent" },
                { TPMA_OBJECT_SENSITIVEDATAORIGIN, 0, "missing sensitiveDataOrigin" },
                { TPMA_OBJECT_SIGN_ENCRYPT, 0, "missing sign" },
                { 0, TPMA_OBJECT_DECRYPT, "has decrypt" },
                { 0, TPMA_OBJECT_RESTRICTED, "has restricted" },
                { TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT, TPMA_OBJECT_DECRYPT,
                  "missing fixedTPM,fixedParent; has decrypt" },
        };
        qb_key dev;
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                qb_key k = dev;
                k.pub.objectAttributes = (QB_DEVKEY_ATTRS & ~cases[i].clear) | cases[i].set;
                qb_key_remarshal(&k);
                expect_refused(certify_as_is(&k), VC_CERTIFY_CHECK_KEY_ATTRIBUTES, cases[i].says);
        }
        /* what the device key need not have: userWithAuth off, noDA on */
        qb_key k = dev;
        k.pub.objectAttributes = (QB_DEVKEY_ATTRS & ~TPMA_OBJECT_USERWITHAUTH) | TPMA_OBJECT_NODA;
        qb_key_remarshal(&k);
        assert_int_equal(certify_as_is(&k).status, VC_CERTIFY_VALID);
        qb_key_free(&dev);
}

static void test_parse_errors(void **state) {
        qb_key dev;
        qb_quote q;
        vc_certify *c = NULL;
        vc_error err;
        uint8_t big[VC_CERTIFY_PUBLIC_MAX + 1] = { 0 }, longer[sizeof(dev.pub_bytes) + 1];
        qb_devkey_new(&dev, QB_DEVKEY_ATTRS);
        qb_certify_make(&ak_key, &dev, qualifying, sizeof(qualifying), &q);
        /* the public area: truncated, trailing bytes, a TPM2B_PUBLIC, over the cap, empty */
        assert_int_equal(vc_certify_parse(dev.pub_bytes, dev.pub_len - 1, q.attest, q.attest_len, q.sig, q.sig_len, &c, &err),
                         -EBADMSG);
        assert_non_null(strstr(err.msg, "device key: TPMT_PUBLIC"));
        memcpy(longer, dev.pub_bytes, dev.pub_len);
        longer[dev.pub_len] = 0;
        assert_int_equal(vc_certify_parse(longer, dev.pub_len + 1, q.attest, q.attest_len, q.sig, q.sig_len, &c, &err),
                         -EBADMSG);
        assert_non_null(strstr(err.msg, "1 trailing bytes"));
        uint8_t tpm2b[sizeof(dev.pub_bytes) + 2];
        tpm2b[0] = (uint8_t) (dev.pub_len >> 8);
        tpm2b[1] = (uint8_t) dev.pub_len;
        memcpy(tpm2b + 2, dev.pub_bytes, dev.pub_len);
        assert_int_equal(vc_certify_parse(tpm2b, dev.pub_len + 2, q.attest, q.attest_len, q.sig, q.sig_len, &c, &err),
                         -EBADMSG);
        assert_int_equal(vc_certify_parse(big, sizeof(big), q.attest, q.attest_len, q.sig, q.sig_len, &c, &err), -E2BIG);
        assert_int_equal(vc_certify_parse(NULL, 0, q.attest, q.attest_len, q.sig, q.sig_len, &c, &err), -EBADMSG);
        /* the attest and the signature: truncated, trailing bytes */
        assert_int_equal(vc_certify_parse(dev.pub_bytes, dev.pub_len, q.attest, q.attest_len - 1, q.sig, q.sig_len, &c, &err),
                         -EBADMSG);
        assert_non_null(strstr(err.msg, "TPMS_ATTEST"));
        assert_int_equal(vc_certify_parse(dev.pub_bytes, dev.pub_len, q.attest, q.attest_len, q.sig, q.sig_len - 1, &c, &err),
                         -EBADMSG);
        assert_non_null(strstr(err.msg, "TPMT_SIGNATURE"));
        assert_int_equal(vc_certify_parse(dev.pub_bytes, dev.pub_len, q.attest, q.attest_len, NULL, 0, &c, &err), -EBADMSG);
        assert_null(c);
        qb_key_free(&dev);
}

static void test_check_names(void **state) {
        /* every check has its own name, and the names are stable (findings use them) */
        static const char *const want[] = { "none", "magic", "type", "ak-attributes", "scheme", "signature",
                                            "qualifying-data", "name", "key-type", "key-attributes" };
        for (int i = 0; i <= VC_CERTIFY_CHECK_KEY_ATTRIBUTES; i++)
                assert_string_equal(vc_certify_check_name((vc_certify_check) i), want[i]);
}

int main(void) {
        setenv("TSS2_LOG", "all+none", 0);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_qualifying_data_known_answer),
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_magic_and_type),
                cmocka_unit_test(test_ak_not_restricted),
                cmocka_unit_test(test_scheme),
                cmocka_unit_test(test_signature),
                cmocka_unit_test(test_qualifying_data),
                cmocka_unit_test(test_name),
                cmocka_unit_test(test_key_type),
                cmocka_unit_test(test_key_attributes),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_check_names),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
