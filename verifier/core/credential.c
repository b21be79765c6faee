/* SPDX-License-Identifier: Apache-2.0 */
#include "credential.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "hash.h"

static const vc_alg_info *hash_of(uint16_t alg) {
        const vc_alg_info *a = vc_alg_lookup(alg);
        return a && alg != VC_ALG_SM3_256 ? a : NULL;
}

static int hmac(uint16_t alg, const uint8_t *key, size_t key_len, const uint8_t *const parts[], const size_t lens[],
                size_t n, uint8_t *out) {
        const vc_alg_info *a = hash_of(alg);
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM params[2] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) a->ossl_name, 0),
                                 OSSL_PARAM_construct_end() };
        size_t outl = 0;
        int r = -EIO;
        if (!ctx)
                goto out;
        if (EVP_MAC_init(ctx, key, key_len, params) != 1)
                goto out;
        for (size_t i = 0; i < n; i++)
                if (lens[i] && EVP_MAC_update(ctx, parts[i], lens[i]) != 1)
                        goto out;
        if (EVP_MAC_final(ctx, out, &outl, a->size) == 1)
                r = 0;
out:
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        return r;
}

int vc_kdfa(uint16_t hash_alg, const uint8_t *key, size_t key_len, const char *label, const uint8_t *context_u,
            size_t u_len, const uint8_t *context_v, size_t v_len, uint32_t bits, uint8_t *out) {
        const vc_alg_info *a = hash_of(hash_alg);
        uint8_t block[VC_MAX_DIGEST], bits_be[4] = { (uint8_t) (bits >> 24), (uint8_t) (bits >> 16),
                                                      (uint8_t) (bits >> 8), (uint8_t) bits };
        size_t need = (bits + 7) / 8;
        if (!a)
                return -ENOTSUP;
        for (uint32_t i = 1, done = 0; done < need; i++) {
                uint8_t ctr[4] = { (uint8_t) (i >> 24), (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i };
                const uint8_t *parts[] = { ctr, (const uint8_t *) label, context_u, context_v, bits_be };
                const size_t lens[] = { 4, strlen(label) + 1, u_len, v_len, 4 };
                int r = hmac(hash_alg, key, key_len, parts, lens, 5, block);
                if (r < 0)
                        return r;
                size_t take = need - done < a->size ? need - done : a->size;
                memcpy(out + done, block, take);
                done += (uint32_t) take;
        }
        return 0;
}

int vc_kdfe(uint16_t hash_alg, const uint8_t *z, size_t z_len, const char *label, const uint8_t *party_u,
            size_t u_len, const uint8_t *party_v, size_t v_len, uint32_t bits, uint8_t *out) {
        const vc_alg_info *a = hash_of(hash_alg);
        size_t need = (bits + 7) / 8;
        if (!a)
                return -ENOTSUP;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_MD *md = EVP_MD_fetch(NULL, a->ossl_name, NULL);
        int r = ctx && md ? 0 : -ENOMEM;
        for (uint32_t i = 1, done = 0; r == 0 && done < need; i++) {
                uint8_t block[VC_MAX_DIGEST];
                uint8_t ctr[4] = { (uint8_t) (i >> 24), (uint8_t) (i >> 16), (uint8_t) (i >> 8), (uint8_t) i };
                if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, ctr, 4) != 1 ||
                    EVP_DigestUpdate(ctx, z, z_len) != 1 || EVP_DigestUpdate(ctx, label, strlen(label) + 1) != 1 ||
                    (u_len && EVP_DigestUpdate(ctx, party_u, u_len) != 1) ||
                    (v_len && EVP_DigestUpdate(ctx, party_v, v_len) != 1) || EVP_DigestFinal_ex(ctx, block, NULL) != 1) {
                        r = -EIO;
                        break;
                }
                size_t take = need - done < a->size ? need - done : a->size;
                memcpy(out + done, block, take);
                done += (uint32_t) take;
        }
        EVP_MD_free(md);
        EVP_MD_CTX_free(ctx);
        return r;
}

int vc_public_name(const TPMT_PUBLIC *pub, uint8_t *out, size_t *out_len) {
        uint8_t buf[sizeof(TPMT_PUBLIC)];
        size_t off = 0;
        const vc_alg_info *a = hash_of(pub->nameAlg);
        if (!a)
                return -ENOTSUP;
        if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
                return -EINVAL;
        out[0] = (uint8_t) (a->alg >> 8);
        out[1] = (uint8_t) a->alg;
        int r = vc_digest(a->alg, buf, off, out + 2);
        if (r < 0)
                return r;
        *out_len = 2 + a->size;
        return 0;
}

/* RSA EK: seed random, encrypted with OAEP(nameAlg) and label "IDENTITY\0". */
static int seed_rsa(const TPMT_PUBLIC *ek, const vc_alg_info *na, uint8_t *seed, TPM2B_ENCRYPTED_SECRET *out,
                    vc_error *err) {
        const TPM2B_PUBLIC_KEY_RSA *n = &ek->unique.rsa;
        uint32_t e = ek->parameters.rsaDetail.exponent ? ek->parameters.rsaDetail.exponent : 65537;
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        OSSL_PARAM *params = NULL;
        EVP_PKEY_CTX *ctx = NULL, *ectx = NULL;
        EVP_PKEY *pkey = NULL;
        BIGNUM *bn_n = BN_bin2bn(n->buffer, n->size, NULL), *bn_e = BN_new();
        int r = -EIO;

        if (!bld || !bn_n || !bn_e || !BN_set_word(bn_e, e) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) || !(params = OSSL_PARAM_BLD_to_param(bld)))
                goto out;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
                r = vc_error_set(err, -EINVAL, SIZE_MAX, -1, "EK: OpenSSL rejects the RSA public key");
                goto out;
        }
        if (RAND_bytes(seed, (int) na->size) != 1)
                goto out;
        ectx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        size_t outl = sizeof(out->secret);
        /* OpenSSL keeps the label pointer; it must be a heap copy it can free. */
        unsigned char *label = OPENSSL_memdup("IDENTITY", 9);
        if (!ectx || !label || EVP_PKEY_encrypt_init(ectx) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_OAEP_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_oaep_md_name(ectx, na->ossl_name, NULL) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md_name(ectx, na->ossl_name, NULL) != 1 ||
            EVP_PKEY_CTX_set0_rsa_oaep_label(ectx, label, 9) != 1) {
                OPENSSL_free(label);
                goto out;
        }
        if (EVP_PKEY_encrypt(ectx, out->secret, &outl, seed, na->size) != 1)
                goto out;
        out->size = (UINT16) outl;
        r = 0;
out:
        EVP_PKEY_CTX_free(ectx);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(pkey);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn_n);
        BN_free(bn_e);
        return r;
}

/* ECC EK: ephemeral key on the EK's curve; Z = x of ECDH; seed = KDFe(nameAlg, Z,
 * "IDENTITY", ephemeral x, EK x); the secret is the ephemeral point (TPMS_ECC_POINT). */
static int seed_ecc(const TPMT_PUBLIC *ek, const vc_alg_info *na, uint8_t *seed, TPM2B_ENCRYPTED_SECRET *out,
                    vc_error *err) {
        const char *group;
        size_t fs;
        switch (ek->parameters.eccDetail.curveID) {
        case TPM2_ECC_NIST_P256:
                group = "prime256v1", fs = 32;
                break;
        case TPM2_ECC_NIST_P384:
                group = "secp384r1", fs = 48;
                break;
        case TPM2_ECC_NIST_P521:
                group = "secp521r1", fs = 66;
                break;
        default:
                return vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "EK: ECC curve 0x%04x not supported",
                                    ek->parameters.eccDetail.curveID);
        }
        const TPM2B_ECC_PARAMETER *x = &ek->unique.ecc.x, *y = &ek->unique.ecc.y;
        if (x->size > fs || y->size > fs || !x->size || !y->size)
                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "EK: ECC point coordinates of %u/%u bytes", x->size,
                                    y->size);
        uint8_t point[1 + 2 * 66] = { 0x04 }, ex[66] = { 0 };
        memcpy(point + 1 + fs - x->size, x->buffer, x->size);
        memcpy(point + 1 + 2 * fs - y->size, y->buffer, y->size);
        memcpy(ex + fs - x->size, x->buffer, x->size);
        OSSL_PARAM params[3] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) group, 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * fs),
                OSSL_PARAM_construct_end(),
        };
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *dctx = NULL;
        EVP_PKEY *peer = NULL, *eph = NULL;
        BIGNUM *bx = NULL, *by = NULL;
        uint8_t z[66];
        size_t zl = sizeof(z);
        int r = -EIO;
        if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1) {
                r = vc_error_set(err, -EINVAL, SIZE_MAX, -1, "EK: the ECC point is not on curve %s", group);
                goto out;
        }
        eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
        dctx = eph ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL) : NULL;
        if (!dctx || EVP_PKEY_derive_init(dctx) != 1 || EVP_PKEY_derive_set_peer(dctx, peer) != 1 ||
            EVP_PKEY_derive(dctx, z, &zl) != 1 || zl != fs)
                goto out;
        if (EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
            EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1)
                goto out;
        TPMS_ECC_POINT ep = { .x.size = (UINT16) fs, .y.size = (UINT16) fs };
        if (BN_bn2binpad(bx, ep.x.buffer, (int) fs) < 0 || BN_bn2binpad(by, ep.y.buffer, (int) fs) < 0)
                goto out;
        if ((r = vc_kdfe(na->alg, z, zl, "IDENTITY", ep.x.buffer, fs, ex, fs, (uint32_t) na->size * 8, seed)) < 0)
                goto out;
        size_t off = 0;
        if (Tss2_MU_TPMS_ECC_POINT_Marshal(&ep, out->secret, sizeof(out->secret), &off) != TSS2_RC_SUCCESS) {
                r = -EIO;
                goto out;
        }
        out->size = (UINT16) off;
        r = 0;
out:
        OPENSSL_cleanse(z, sizeof(z));
        BN_free(bx);
        BN_free(by);
        EVP_PKEY_CTX_free(dctx);
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(peer);
        EVP_PKEY_free(eph);
        return r;
}

int vc_make_credential(const TPMT_PUBLIC *ek, const uint8_t *object_name, size_t name_len, const uint8_t *secret,
                       size_t secret_len, TPM2B_ID_OBJECT *ret_blob, TPM2B_ENCRYPTED_SECRET *ret_secret,
                       vc_error *err) {
        const vc_alg_info *na = hash_of(ek->nameAlg);
        const TPMT_SYM_DEF_OBJECT *sym =
                ek->type == TPM2_ALG_RSA ? &ek->parameters.rsaDetail.symmetric : &ek->parameters.eccDetail.symmetric;
        uint8_t seed[VC_MAX_DIGEST], sym_key[32], hmac_key[VC_MAX_DIGEST];
        TPM2B_ENCRYPTED_SECRET enc = { 0 };
        int r;

        vc_error_clear(err);
        if (!na)
                return vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "EK nameAlg 0x%04x not supported", ek->nameAlg);
        if (sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB ||
            (sym->keyBits.aes != 128 && sym->keyBits.aes != 256))
                return vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "EK symmetric definition is not AES-128/256-CFB");
        if (secret_len == 0 || secret_len > na->size)
                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "credential of %zu bytes: 1-%zu allowed", secret_len,
                                    na->size);
        if (name_len < 2 || name_len > sizeof(TPMU_NAME))
                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "object name of %zu bytes", name_len);

        if (ek->type == TPM2_ALG_RSA)
                r = seed_rsa(ek, na, seed, &enc, err);
        else if (ek->type == TPM2_ALG_ECC)
                r = seed_ecc(ek, na, seed, &enc, err);
        else
                r = vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "EK type 0x%04x is not RSA or ECC", ek->type);
        if (r < 0)
                goto out;

        /* Part 1, 24.4: symKey = KDFa(nameAlg, seed, "STORAGE", name, NULL, keyBits) */
        uint16_t key_bits = sym->keyBits.aes;
        if ((r = vc_kdfa(na->alg, seed, na->size, "STORAGE", object_name, name_len, NULL, 0, key_bits, sym_key)) < 0)
                goto out;
        /* encIdentity = CFB(symKey, IV 0, TPM2B_DIGEST(credential)) */
        uint8_t plain[2 + VC_MAX_DIGEST], enc_identity[2 + VC_MAX_DIGEST];
        plain[0] = (uint8_t) (secret_len >> 8);
        plain[1] = (uint8_t) secret_len;
        memcpy(plain + 2, secret, secret_len);
        size_t plen = 2 + secret_len;
        {
                uint8_t iv[16] = { 0 };
                int outl = 0, fl = 0;
                EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
                EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, key_bits == 128 ? "AES-128-CFB" : "AES-256-CFB", NULL);
                r = c && cipher && EVP_EncryptInit_ex2(c, cipher, sym_key, iv, NULL) == 1 &&
                                    EVP_EncryptUpdate(c, enc_identity, &outl, plain, (int) plen) == 1 &&
                                    EVP_EncryptFinal_ex(c, enc_identity + outl, &fl) == 1
                            ? 0
                            : -EIO;
                EVP_CIPHER_free(cipher);
                EVP_CIPHER_CTX_free(c);
                OPENSSL_cleanse(plain, sizeof(plain));
                if (r < 0)
                        goto out;
        }
        /* HMACkey = KDFa(nameAlg, seed, "INTEGRITY", NULL, NULL, digest bits);
         * outerHMAC = HMAC(HMACkey, encIdentity || name) */
        if ((r = vc_kdfa(na->alg, seed, na->size, "INTEGRITY", NULL, 0, NULL, 0, (uint32_t) na->size * 8, hmac_key)) < 0)
                goto out;
        uint8_t outer[VC_MAX_DIGEST];
        const uint8_t *parts[] = { enc_identity, object_name };
        const size_t lens[] = { plen, name_len };
        if ((r = hmac(na->alg, hmac_key, na->size, parts, lens, 2, outer)) < 0)
                goto out;
        /* TPM2B_ID_OBJECT.credential = TPM2B_DIGEST(outerHMAC) || encIdentity */
        ret_blob->size = (UINT16) (2 + na->size + plen);
        ret_blob->credential[0] = (uint8_t) (na->size >> 8);
        ret_blob->credential[1] = (uint8_t) na->size;
        memcpy(ret_blob->credential + 2, outer, na->size);
        memcpy(ret_blob->credential + 2 + na->size, enc_identity, plen);
        *ret_secret = enc;
        r = 0;
out:
        OPENSSL_cleanse(seed, sizeof(seed));
        OPENSSL_cleanse(sym_key, sizeof(sym_key));
        OPENSSL_cleanse(hmac_key, sizeof(hmac_key));
        if (r == -EIO || r == -ENOMEM)
                vc_error_set(err, r, SIZE_MAX, -1, "OpenSSL failed while making the credential");
        return r;
}

int vc_credential_to_tpm2_tools(const TPM2B_ID_OBJECT *blob, const TPM2B_ENCRYPTED_SECRET *secret, uint8_t **ret,
                                size_t *ret_len) {
        size_t cap = 8 + sizeof(*blob) + sizeof(*secret), off = 8;
        uint8_t *b = malloc(cap);
        if (!b)
                return -ENOMEM;
        memcpy(b, (uint8_t[]) { 0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1 }, 8);
        if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(blob, b, cap, &off) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(secret, b, cap, &off) != TSS2_RC_SUCCESS) {
                free(b);
                return -EINVAL;
        }
        *ret = b;
        *ret_len = off;
        return 0;
}
