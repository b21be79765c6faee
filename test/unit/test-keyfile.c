/* SPDX-License-Identifier: Apache-2.0 */
/* The device key's TSS2 PRIVATE KEY file (agent/keyfile.h): the DER against one built here
 * byte by byte from draft-bottomley-tpm-keys 3.1, the PEM guards, reading it back, and
 * every rejection of the reader. That OpenSSL's tpm2 provider loads the file is the swtpm
 * test's (test-swtpm-agent-tpm.sh). */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>
#include <cmocka.h>

#include "keyfile.h"

static void blobs(TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv) {
        memset(pub, 0, sizeof(*pub));
        memset(priv, 0, sizeof(*priv));
        TPMT_PUBLIC *p = &pub->publicArea;
        p->type = TPM2_ALG_ECC;
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                              TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p->unique.ecc.x.size = p->unique.ecc.y.size = 32;
        for (int i = 0; i < 32; i++) {
                p->unique.ecc.x.buffer[i] = (uint8_t) i;
                p->unique.ecc.y.buffer[i] = (uint8_t) (0x80 + i);
        }
        priv->size = 126; /* what a TPM returns for such a key: integrity, IV, sensitive */
        for (int i = 0; i < priv->size; i++)
                priv->buffer[i] = (uint8_t) (i * 13);
}

/* DER of a definite length (short or long form, up to 2 length bytes). */
static size_t put_tlv(uint8_t *out, uint8_t tag, const uint8_t *body, size_t n) {
        size_t h = 0;
        out[h++] = tag;
        if (n < 0x80)
                out[h++] = (uint8_t) n;
        else if (n < 0x100) {
                out[h++] = 0x81;
                out[h++] = (uint8_t) n;
        } else {
                out[h++] = 0x82;
                out[h++] = (uint8_t) (n >> 8);
                out[h++] = (uint8_t) n;
        }
        memmove(out + h, body, n);
        return h + n;
}

/* The DER of the key file, built from the draft's definition. */
static size_t expected_der(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, const uint8_t *parent, size_t parent_len,
                           uint8_t *out) {
        static const uint8_t oid[] = { 0x06, 0x06, 0x67, 0x81, 0x05, 0x0a, 0x01, 0x03 }; /* 2.23.133.10.1.3 */
        static const uint8_t empty_auth[] = { 0xa0, 0x03, 0x01, 0x01, 0xff };           /* [0] { TRUE } */
        uint8_t body[4096], pb[sizeof(TPM2B_PUBLIC)], vb[sizeof(TPM2B_PRIVATE)];
        size_t n = 0, pl = 0, vl = 0;
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(pub, pb, sizeof(pb), &pl), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPM2B_PRIVATE_Marshal(priv, vb, sizeof(vb), &vl), TSS2_RC_SUCCESS);
        memcpy(body + n, oid, sizeof(oid));
        n += sizeof(oid);
        memcpy(body + n, empty_auth, sizeof(empty_auth));
        n += sizeof(empty_auth);
        n += put_tlv(body + n, 0x02, parent, parent_len);
        n += put_tlv(body + n, 0x04, pb, pl);
        n += put_tlv(body + n, 0x04, vb, vl);
        return put_tlv(out, 0x30, body, n);
}

static void check_der(const char *pem, size_t len, const uint8_t *want, size_t want_len) {
        BIO *bio = BIO_new_mem_buf(pem, (int) len);
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long n = 0;
        assert_non_null(bio);
        assert_int_equal(PEM_read_bio(bio, &name, &header, &der, &n), 1);
        assert_string_equal(name, "TSS2 PRIVATE KEY");
        assert_int_equal(n, want_len);
        assert_memory_equal(der, want, want_len);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        BIO_free(bio);
}

static void test_owner_parent(void **state) {
        static const uint8_t owner[] = { 0x40, 0x00, 0x00, 0x01 };
        TPM2B_PUBLIC pub, pub2;
        TPM2B_PRIVATE priv, priv2;
        uint8_t want[4096];
        uint32_t parent = 0;
        bool empty = false;
        char *pem = NULL;
        size_t len = 0;
        blobs(&pub, &priv);
        assert_int_equal(va_tss2_key_pem(&pub, &priv, 0x40000001u, &pem, &len), 0);
        assert_int_equal(strlen(pem), len);
        assert_true(strncmp(pem, "-----BEGIN TSS2 PRIVATE KEY-----\n", 33) == 0);
        assert_non_null(strstr(pem, "\n-----END TSS2 PRIVATE KEY-----\n"));
        check_der(pem, len, want, expected_der(&pub, &priv, owner, sizeof(owner), want));
        assert_int_equal(va_tss2_key_parse(pem, len, &pub2, &priv2, &parent, &empty), 0);
        assert_int_equal(parent, 0x40000001u);
        assert_true(empty);
        assert_memory_equal(&pub2.publicArea, &pub.publicArea, sizeof(pub.publicArea));
        assert_int_equal(priv2.size, priv.size);
        assert_memory_equal(priv2.buffer, priv.buffer, priv.size);
        free(pem);
}

static void test_persistent_parent(void **state) {
        /* 0x81000001 has its top bit set: a positive INTEGER needs a leading zero byte */
        static const uint8_t persistent[] = { 0x00, 0x81, 0x00, 0x00, 0x01 };
        TPM2B_PUBLIC pub, pub2;
        TPM2B_PRIVATE priv, priv2;
        uint8_t want[4096];
        uint32_t parent = 0;
        bool empty = false;
        char *pem = NULL;
        size_t len = 0;
        blobs(&pub, &priv);
        assert_int_equal(va_tss2_key_pem(&pub, &priv, 0x81000001u, &pem, &len), 0);
        check_der(pem, len, want, expected_der(&pub, &priv, persistent, sizeof(persistent), want));
        assert_int_equal(va_tss2_key_parse(pem, len, &pub2, &priv2, &parent, &empty), 0);
        assert_int_equal(parent, 0x81000001u);
        free(pem);
        /* a transient (0x80), NV (0x01) or PCR handle is not a parent to write */
        assert_int_equal(va_tss2_key_pem(&pub, &priv, 0x80000001u, &pem, &len), -EINVAL);
        assert_int_equal(va_tss2_key_pem(&pub, &priv, 0x01c00002u, &pem, &len), -EINVAL);
        assert_int_equal(va_tss2_key_pem(&pub, &priv, 0, &pem, &len), -EINVAL);
}

/* PEM of DER bytes under a name. */
static char *pem_of(const char *name, const uint8_t *der, size_t n, size_t *ret_len) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *mem, *out;
        assert_non_null(bio);
        assert_true(PEM_write_bio(bio, name, "", der, (long) n) > 0);
        long k = BIO_get_mem_data(bio, &mem);
        out = malloc((size_t) k + 1);
        assert_non_null(out);
        memcpy(out, mem, (size_t) k);
        out[k] = 0;
        BIO_free(bio);
        *ret_len = (size_t) k;
        return out;
}

static void expect_parse(const char *pem, size_t len, int want) {
        TPM2B_PUBLIC pub;
        TPM2B_PRIVATE priv;
        uint32_t parent = 0xdead;
        bool empty = false;
        assert_int_equal(va_tss2_key_parse(pem, len, &pub, &priv, &parent, &empty), want);
        if (want < 0)
                assert_int_equal(parent, 0xdead);
}

static void test_parse_rejects(void **state) {
        static const uint8_t owner[] = { 0x40, 0x00, 0x00, 0x01 };
        TPM2B_PUBLIC pub;
        TPM2B_PRIVATE priv;
        uint8_t der[4096];
        size_t n, len;
        char *pem;
        blobs(&pub, &priv);
        n = expected_der(&pub, &priv, owner, sizeof(owner), der);
        /* the SEQUENCE's header (long form: over 127 bytes), then the OID's 8 bytes */
        size_t hl = der[1] < 0x80 ? 2 : 2 + (der[1] & 0x7fu);
        assert_true(hl > 2);

        /* the same DER under another PEM name, then with a block of another name first */
        pem = pem_of("PRIVATE KEY", der, n, &len);
        expect_parse(pem, len, -EBADMSG);
        char *ours = pem_of("TSS2 PRIVATE KEY", der, n, &len);
        size_t both_len = strlen(pem) + len;
        char *both = malloc(both_len + 1);
        assert_non_null(both);
        strcpy(both, pem);
        strcat(both, ours);
        expect_parse(both, both_len, 0);
        free(both);
        free(ours);
        free(pem);

        /* the importable-key OID (2.23.133.10.1.4) */
        uint8_t d2[4096];
        memcpy(d2, der, n);
        assert_int_equal(d2[hl + 7], 0x03);
        d2[hl + 7] = 0x04;
        pem = pem_of("TSS2 PRIVATE KEY", d2, n, &len);
        expect_parse(pem, len, -EBADMSG);
        free(pem);

        /* a byte after the SEQUENCE */
        memcpy(d2, der, n);
        d2[n] = 0;
        pem = pem_of("TSS2 PRIVATE KEY", d2, n + 1, &len);
        expect_parse(pem, len, -EBADMSG);
        free(pem);

        /* a TPM2B_PUBLIC one byte short inside its OCTET STRING (its size field says more) */
        TPM2B_PUBLIC bad = pub;
        uint8_t pb[sizeof(TPM2B_PUBLIC)], vb[sizeof(TPM2B_PRIVATE)], body[4096], d3[4096];
        size_t pl = 0, vl = 0, b = 0;
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&bad, pb, sizeof(pb), &pl), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPM2B_PRIVATE_Marshal(&priv, vb, sizeof(vb), &vl), TSS2_RC_SUCCESS);
        memcpy(body, der + hl, 13); /* OID and emptyAuth */
        b = 13;
        b += put_tlv(body + b, 0x02, owner, sizeof(owner));
        b += put_tlv(body + b, 0x04, pb, pl - 1);
        b += put_tlv(body + b, 0x04, vb, vl);
        size_t n3 = put_tlv(d3, 0x30, body, b);
        pem = pem_of("TSS2 PRIVATE KEY", d3, n3, &len);
        expect_parse(pem, len, -EBADMSG);
        free(pem);

        /* a negative parent */
        static const uint8_t negative[] = { 0xff };
        b = 13;
        b += put_tlv(body + b, 0x02, negative, sizeof(negative));
        b += put_tlv(body + b, 0x04, pb, pl);
        b += put_tlv(body + b, 0x04, vb, vl);
        n3 = put_tlv(d3, 0x30, body, b);
        pem = pem_of("TSS2 PRIVATE KEY", d3, n3, &len);
        expect_parse(pem, len, -EBADMSG);
        free(pem);

        /* no emptyAuth: valid, reads as FALSE (the draft's recommended form of false) */
        TPM2B_PUBLIC p2;
        TPM2B_PRIVATE v2;
        uint32_t parent;
        bool empty = true;
        memcpy(body, der + hl, 8);
        b = 8;
        b += put_tlv(body + b, 0x02, owner, sizeof(owner));
        b += put_tlv(body + b, 0x04, pb, pl);
        b += put_tlv(body + b, 0x04, vb, vl);
        n3 = put_tlv(d3, 0x30, body, b);
        pem = pem_of("TSS2 PRIVATE KEY", d3, n3, &len);
        assert_int_equal(va_tss2_key_parse(pem, len, &p2, &v2, &parent, &empty), 0);
        assert_false(empty);
        free(pem);

        /* garbage, nothing, too large */
        expect_parse("-----BEGIN TSS2 PRIVATE KEY-----\nAAAA\n-----END TSS2 PRIVATE KEY-----\n", 68, -EBADMSG);
        expect_parse("", 0, -EBADMSG);
        char *huge = calloc(1, VA_TSS2_KEY_MAX + 1);
        assert_non_null(huge);
        expect_parse(huge, VA_TSS2_KEY_MAX + 1, -E2BIG);
        free(huge);
}

int main(void) {
        setenv("TSS2_LOG", "all+none", 0);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_owner_parent),
                cmocka_unit_test(test_persistent_parent),
                cmocka_unit_test(test_parse_rejects),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
