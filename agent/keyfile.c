/* SPDX-License-Identifier: Apache-2.0 */
#include "keyfile.h"

#include <errno.h>
#include <openssl/asn1t.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "vc-util.h"

typedef struct tss2_key {
        ASN1_OBJECT *type;
        ASN1_BOOLEAN empty_auth; /* -1 absent, 0 FALSE, else TRUE */
        ASN1_INTEGER *parent;
        ASN1_OCTET_STRING *pubkey;
        ASN1_OCTET_STRING *privkey;
} tss2_key;

/* draft-bottomley-tpm-keys 3.1 without the optional policy [1] and secret [2]: a loadable
 * key without a policy has neither (3.1.3, 3.1.4), and a file with them is not ours. */
ASN1_SEQUENCE(tss2_key) = {
        ASN1_SIMPLE(tss2_key, type, ASN1_OBJECT),
        ASN1_EXP_OPT(tss2_key, empty_auth, ASN1_BOOLEAN, 0),
        ASN1_SIMPLE(tss2_key, parent, ASN1_INTEGER),
        ASN1_SIMPLE(tss2_key, pubkey, ASN1_OCTET_STRING),
        ASN1_SIMPLE(tss2_key, privkey, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(tss2_key)

static void tss2_key_freep(tss2_key **k) {
        ASN1_item_free((ASN1_VALUE *) *k, ASN1_ITEM_rptr(tss2_key));
}

static void bio_freep(BIO **b) {
        BIO_free(*b);
}

/* 3.1.5: the parent SHOULD be a persistent (0x81) or permanent (0x40) handle. */
static bool parent_ok(uint32_t parent) {
        return (parent >> 24) == 0x40 || (parent >> 24) == 0x81;
}

int va_tss2_key_pem(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, uint32_t parent, char **ret, size_t *ret_len) {
        _cleanup_(tss2_key_freep) tss2_key *k = NULL;
        _cleanup_(bio_freep) BIO *bio = NULL;
        uint8_t pubbuf[sizeof(TPM2B_PUBLIC)], privbuf[sizeof(TPM2B_PRIVATE)];
        size_t publen = 0, privlen = 0;
        unsigned char *der = NULL;
        char *mem, *out;
        int derlen = 0, r = -ENOMEM;

        if (!parent_ok(parent) || Tss2_MU_TPM2B_PUBLIC_Marshal(pub, pubbuf, sizeof(pubbuf), &publen) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_PRIVATE_Marshal(priv, privbuf, sizeof(privbuf), &privlen) != TSS2_RC_SUCCESS)
                return -EINVAL;
        k = (tss2_key *) ASN1_item_new(ASN1_ITEM_rptr(tss2_key));
        if (!k)
                return -ENOMEM;
        ASN1_OBJECT_free(k->type);
        k->type = OBJ_txt2obj(VA_TSS2_LOADABLE_KEY_OID, 1);
        k->empty_auth = 0xff;
        if (!k->type || ASN1_INTEGER_set_uint64(k->parent, parent) != 1 ||
            ASN1_OCTET_STRING_set(k->pubkey, pubbuf, (int) publen) != 1 ||
            ASN1_OCTET_STRING_set(k->privkey, privbuf, (int) privlen) != 1)
                goto out;
        derlen = ASN1_item_i2d((ASN1_VALUE *) k, &der, ASN1_ITEM_rptr(tss2_key));
        if (derlen <= 0)
                goto out;
        bio = BIO_new(BIO_s_mem());
        if (!bio || PEM_write_bio(bio, VA_TSS2_KEY_PEM_NAME, "", der, derlen) <= 0)
                goto out;
        long n = BIO_get_mem_data(bio, &mem);
        if (n <= 0 || !(out = malloc((size_t) n + 1)))
                goto out;
        memcpy(out, mem, (size_t) n);
        out[n] = 0;
        *ret = out;
        *ret_len = (size_t) n;
        r = 0;
out:
        /* the private blob is wrapped by the TPM, but it is the key's handle all the same */
        OPENSSL_cleanse(privbuf, sizeof(privbuf));
        OPENSSL_clear_free(der, derlen > 0 ? (size_t) derlen : 0);
        return r;
}

/* The first PEM block named VA_TSS2_KEY_PEM_NAME in pem, as DER (OPENSSL_free). */
static int pem_block(const char *pem, size_t len, unsigned char **ret, long *ret_len) {
        _cleanup_(bio_freep) BIO *bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return -ENOMEM;
        for (;;) {
                char *name = NULL, *header = NULL;
                unsigned char *data = NULL;
                long n = 0;
                if (PEM_read_bio(bio, &name, &header, &data, &n) != 1)
                        return -EBADMSG;
                bool ours = strcmp(name, VA_TSS2_KEY_PEM_NAME) == 0;
                OPENSSL_free(name);
                OPENSSL_free(header);
                if (ours) {
                        *ret = data;
                        *ret_len = n;
                        return 0;
                }
                OPENSSL_free(data);
        }
}

int va_tss2_key_parse(const char *pem, size_t len, TPM2B_PUBLIC *ret_pub, TPM2B_PRIVATE *ret_priv,
                      uint32_t *ret_parent, bool *ret_empty_auth) {
        _cleanup_(tss2_key_freep) tss2_key *k = NULL;
        unsigned char *der = NULL;
        const unsigned char *p;
        TPM2B_PUBLIC pub = { 0 };
        TPM2B_PRIVATE priv = { 0 };
        uint64_t parent = 0;
        size_t off;
        char oid[64];
        long n;
        int r;

        if (len > VA_TSS2_KEY_MAX)
                return -E2BIG;
        r = pem_block(pem, len, &der, &n);
        if (r < 0)
                return r;
        p = der;
        k = (tss2_key *) ASN1_item_d2i(NULL, &p, n, ASN1_ITEM_rptr(tss2_key));
        /* the whole block is the structure: nothing after it */
        r = k && p == der + n ? 0 : -EBADMSG;
        OPENSSL_clear_free(der, (size_t) n);
        if (r < 0)
                return r;
        if (OBJ_obj2txt(oid, sizeof(oid), k->type, 1) <= 0 || strcmp(oid, VA_TSS2_LOADABLE_KEY_OID) != 0 ||
            ASN1_INTEGER_get_uint64(&parent, k->parent) != 1 || parent > UINT32_MAX)
                return -EBADMSG;
        off = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(k->pubkey->data, (size_t) k->pubkey->length, &off, &pub) != TSS2_RC_SUCCESS ||
            off != (size_t) k->pubkey->length)
                return -EBADMSG;
        off = 0;
        if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(k->privkey->data, (size_t) k->privkey->length, &off, &priv) !=
                    TSS2_RC_SUCCESS ||
            off != (size_t) k->privkey->length)
                return -EBADMSG;
        *ret_pub = pub;
        *ret_priv = priv;
        *ret_parent = (uint32_t) parent;
        *ret_empty_auth = k->empty_auth != -1 && k->empty_auth != 0;
        OPENSSL_cleanse(&priv, sizeof(priv));
        return 0;
}
