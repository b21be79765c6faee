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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rsa_variants_share_the_key_id),
                cmocka_unit_test(test_ecc_variants_share_the_key_id),
                cmocka_unit_test(test_other_keys_differ),
                cmocka_unit_test(test_rejects),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
