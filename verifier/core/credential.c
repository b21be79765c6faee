/* SPDX-License-Identifier: Apache-2.0 */
#include "credential.h"

#include <assert.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "hash.h"
#include "tpmkey.h"

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

/* out ^= MGF1(seed) over out_len bytes (RFC 8017, B.2.1): H(seed || counter), the counter
 * a 4-byte big-endian number from 0. */
static int mgf1_xor(const vc_alg_info *h, const uint8_t *seed, size_t seed_len, uint8_t *out, size_t out_len) {
        uint8_t in[TPM2_MAX_RSA_KEY_BYTES + 4], block[VC_MAX_DIGEST];
        assert(seed_len <= TPM2_MAX_RSA_KEY_BYTES);
        memcpy(in, seed, seed_len);
        for (uint32_t i = 0, done = 0; done < out_len; i++) {
                in[seed_len] = (uint8_t) (i >> 24);
                in[seed_len + 1] = (uint8_t) (i >> 16);
                in[seed_len + 2] = (uint8_t) (i >> 8);
                in[seed_len + 3] = (uint8_t) i;
                int r = vc_digest(h->alg, in, seed_len + 4, block);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < h->size && done < out_len; j++)
                        out[done++] ^= block[j];
        }
        return 0;
}

/* EME-OAEP encoding (RFC 8017, 7.1.1 step 2) of m into em, k bytes, with hash and MGF1
 * hash h, the given label and the caller's OAEP seed (h->size bytes):
 * em = 0x00 || maskedSeed || maskedDB, DB = H(label) || zeros || 0x01 || m. */
static int oaep_encode(const vc_alg_info *h, const uint8_t *label, size_t label_len, const uint8_t *m, size_t m_len,
                       const uint8_t *seed, uint8_t *em, size_t k) {
        size_t hlen = h->size, db_len = k - hlen - 1;
        uint8_t *masked_seed = em + 1, *db = em + 1 + hlen;
        int r;
        assert(k >= 2 * hlen + 2 && m_len <= k - 2 * hlen - 2);
        em[0] = 0;
        if ((r = vc_digest(h->alg, label, label_len, db)) < 0)
                return r;
        memset(db + hlen, 0, db_len - hlen - m_len - 1);
        db[db_len - m_len - 1] = 0x01;
        memcpy(db + db_len - m_len, m, m_len);
        if ((r = mgf1_xor(h, seed, hlen, db, db_len)) < 0)
                return r;
        memcpy(masked_seed, seed, hlen);
        return mgf1_xor(h, db, db_len, masked_seed, hlen);
}

/* RSA EK (TPM 2.0 Part 1, Annex B.10, secret sharing): the seed is the caller's random
 * one, encrypted with RSAES-OAEP, hash and MGF1 hash the EK's nameAlg, label "IDENTITY"
 * with its NUL. OAEP is encoded here with the caller's OAEP seed, so that the result is a
 * function of the input. */
static int seed_rsa(const TPMT_PUBLIC *ek, const vc_alg_info *na, const vc_credential_random *rnd, uint8_t *seed,
                    TPM2B_ENCRYPTED_SECRET *out, vc_error *err) {
        static const uint8_t label[] = "IDENTITY";
        EVP_PKEY *pkey = NULL;
        EVP_PKEY_CTX *ctx = NULL;
        uint8_t em[TPM2_MAX_RSA_KEY_BYTES];
        size_t k, outl = sizeof(out->secret);
        int r = vc_tpm_public_key(ek, "EK", &pkey, err);
        if (r < 0)
                return r;
        k = (size_t) EVP_PKEY_get_size(pkey);
        if (k > sizeof(em) || k > sizeof(out->secret) || k < 3 * na->size + 2) {
                r = vc_error_set(err, -EINVAL, SIZE_MAX, -1, "EK: an RSA key of %zu bytes cannot carry a %s seed in OAEP",
                                 k, na->name);
                goto out;
        }
        memcpy(seed, rnd->seed, na->size);
        if ((r = oaep_encode(na, label, sizeof(label), seed, na->size, rnd->oaep_seed, em, k)) < 0)
                goto out;
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        r = ctx && EVP_PKEY_encrypt_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) == 1 &&
                            EVP_PKEY_encrypt(ctx, out->secret, &outl, em, k) == 1
                    ? 0
                    : -EIO;
        out->size = (UINT16) outl;
out:
        OPENSSL_cleanse(em, sizeof(em));
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(pkey);
        return r;
}

/* ECC EK (TPM 2.0 Part 1, Annex C.6, secret sharing, and 11.4.10.3): an ephemeral key d
 * on the EK's curve, Z = x of d * EK; seed = KDFe(nameAlg, Z, "IDENTITY", ephemeral x,
 * EK x); the secret is the ephemeral point (TPMS_ECC_POINT). d comes from the caller's random bytes as in
 * FIPS 186-4, B.4.1 (extra random bits): d = (c mod (n - 1)) + 1. */
static int seed_ecc(const TPMT_PUBLIC *ek, const vc_alg_info *na, const vc_credential_random *rnd, uint8_t *seed,
                    TPM2B_ENCRYPTED_SECRET *out, vc_error *err) {
        const vc_ecc_curve *c;
        uint8_t point[VC_ECC_POINT_MAX], z[VC_ECC_COORD_MAX];
        size_t point_len;
        int r = vc_ecc_public_point(ek, "EK", &c, point, &point_len, err);
        if (r < 0)
                return r;
        const uint8_t *ek_x = point + 1;
        EC_GROUP *g = EC_GROUP_new_by_curve_name(c->nid);
        EC_POINT *ekp = g ? EC_POINT_new(g) : NULL, *eph = g ? EC_POINT_new(g) : NULL, *zp = g ? EC_POINT_new(g) : NULL;
        BN_CTX *bctx = BN_CTX_new();
        BIGNUM *d = BN_secure_new(), *n1 = BN_new(), *x = BN_new(), *y = BN_new();
        TPMS_ECC_POINT ep = { .x.size = (UINT16) c->size, .y.size = (UINT16) c->size };
        size_t off = 0;

        r = -ENOMEM;
        if (!ekp || !eph || !zp || !bctx || !d || !n1 || !x || !y)
                goto out;
        if (EC_POINT_oct2point(g, ekp, point, point_len, bctx) != 1 || EC_POINT_is_on_curve(g, ekp, bctx) != 1) {
                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "ECC EK: the point is not on curve %s", c->group);
                goto out;
        }
        r = -EIO;
        if (!BN_copy(n1, EC_GROUP_get0_order(g)) || !BN_sub_word(n1, 1) ||
            !BN_bin2bn(rnd->ecc_key, (int) (c->size + 8), d) || !BN_mod(d, d, n1, bctx) || !BN_add_word(d, 1))
                goto out;
        if (EC_POINT_mul(g, eph, d, NULL, NULL, bctx) != 1 || EC_POINT_mul(g, zp, NULL, ekp, d, bctx) != 1)
                goto out;
        if (EC_POINT_get_affine_coordinates(g, zp, x, NULL, bctx) != 1 || BN_bn2binpad(x, z, (int) c->size) < 0)
                goto out;
        if (EC_POINT_get_affine_coordinates(g, eph, x, y, bctx) != 1 || BN_bn2binpad(x, ep.x.buffer, (int) c->size) < 0 ||
            BN_bn2binpad(y, ep.y.buffer, (int) c->size) < 0)
                goto out;
        r = vc_kdfe(na->alg, z, c->size, "IDENTITY", ep.x.buffer, c->size, ek_x, c->size, (uint32_t) na->size * 8, seed);
        if (r < 0)
                goto out;
        if (Tss2_MU_TPMS_ECC_POINT_Marshal(&ep, out->secret, sizeof(out->secret), &off) != TSS2_RC_SUCCESS) {
                r = -EIO;
                goto out;
        }
        out->size = (UINT16) off;
        r = 0;
out:
        OPENSSL_cleanse(z, sizeof(z));
        BN_clear_free(d);
        BN_free(n1);
        BN_free(x);
        BN_free(y);
        BN_CTX_free(bctx);
        EC_POINT_free(ekp);
        EC_POINT_free(eph);
        EC_POINT_clear_free(zp);
        EC_GROUP_free(g);
        return r;
}

/* encIdentity = CFB(symKey, IV 0, TPM2B_DIGEST(credential)) (TPM 2.0 Part 1, 24.4) */
static int encrypt_identity(uint16_t key_bits, const uint8_t *sym_key, const uint8_t *secret, size_t secret_len,
                            uint8_t *out) {
        uint8_t plain[2 + VC_MAX_DIGEST], iv[16] = { 0 };
        int outl = 0, fl = 0;
        size_t plen = 2 + secret_len;
        plain[0] = (uint8_t) (secret_len >> 8);
        plain[1] = (uint8_t) secret_len;
        memcpy(plain + 2, secret, secret_len);
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, key_bits == 128 ? "AES-128-CFB" : "AES-256-CFB", NULL);
        int r = c && cipher && EVP_EncryptInit_ex2(c, cipher, sym_key, iv, NULL) == 1 &&
                                EVP_EncryptUpdate(c, out, &outl, plain, (int) plen) == 1 &&
                                EVP_EncryptFinal_ex(c, out + outl, &fl) == 1
                        ? 0
                        : -EIO;
        EVP_CIPHER_free(cipher);
        EVP_CIPHER_CTX_free(c);
        OPENSSL_cleanse(plain, sizeof(plain));
        return r;
}

/* The credential blob from the seed (TPM 2.0 Part 1, 24.4 and 24.5):
 * symKey = KDFa(nameAlg, seed, "STORAGE", name, NULL, keyBits);
 * HMACkey = KDFa(nameAlg, seed, "INTEGRITY", NULL, NULL, digest bits);
 * outerHMAC = HMAC(HMACkey, encIdentity || name);
 * TPM2B_ID_OBJECT.credential = TPM2B_DIGEST(outerHMAC) || encIdentity. */
static int wrap_credential(const vc_alg_info *na, uint16_t key_bits, const uint8_t *seed, const uint8_t *object_name,
                           size_t name_len, const uint8_t *secret, size_t secret_len, TPM2B_ID_OBJECT *ret_blob) {
        uint8_t sym_key[32], hmac_key[VC_MAX_DIGEST], enc_identity[2 + VC_MAX_DIGEST], outer[VC_MAX_DIGEST];
        size_t plen = 2 + secret_len;
        const uint8_t *parts[] = { enc_identity, object_name };
        const size_t lens[] = { plen, name_len };
        int r;
        if ((r = vc_kdfa(na->alg, seed, na->size, "STORAGE", object_name, name_len, NULL, 0, key_bits, sym_key)) < 0 ||
            (r = encrypt_identity(key_bits, sym_key, secret, secret_len, enc_identity)) < 0 ||
            (r = vc_kdfa(na->alg, seed, na->size, "INTEGRITY", NULL, 0, NULL, 0, (uint32_t) na->size * 8, hmac_key)) < 0 ||
            (r = hmac(na->alg, hmac_key, na->size, parts, lens, 2, outer)) < 0)
                goto out;
        ret_blob->size = (UINT16) (2 + na->size + plen);
        ret_blob->credential[0] = (uint8_t) (na->size >> 8);
        ret_blob->credential[1] = (uint8_t) na->size;
        memcpy(ret_blob->credential + 2, outer, na->size);
        memcpy(ret_blob->credential + 2 + na->size, enc_identity, plen);
out:
        OPENSSL_cleanse(sym_key, sizeof(sym_key));
        OPENSSL_cleanse(hmac_key, sizeof(hmac_key));
        return r;
}

int vc_make_credential(const TPMT_PUBLIC *ek, const uint8_t *object_name, size_t name_len, const uint8_t *secret,
                       size_t secret_len, const vc_credential_random *rnd, TPM2B_ID_OBJECT *ret_blob,
                       TPM2B_ENCRYPTED_SECRET *ret_secret, vc_error *err) {
        const vc_alg_info *na = hash_of(ek->nameAlg);
        const TPMT_SYM_DEF_OBJECT *sym =
                ek->type == TPM2_ALG_RSA ? &ek->parameters.rsaDetail.symmetric : &ek->parameters.eccDetail.symmetric;
        uint8_t seed[VC_MAX_DIGEST];
        TPM2B_ENCRYPTED_SECRET enc = { 0 };
        TPM2B_ID_OBJECT blob = { 0 };
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
                r = seed_rsa(ek, na, rnd, seed, &enc, err);
        else if (ek->type == TPM2_ALG_ECC)
                r = seed_ecc(ek, na, rnd, seed, &enc, err);
        else
                r = vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "EK type 0x%04x is not RSA or ECC", ek->type);
        if (r >= 0)
                r = wrap_credential(na, sym->keyBits.aes, seed, object_name, name_len, secret, secret_len, &blob);
        OPENSSL_cleanse(seed, sizeof(seed));
        if (r == -EIO || r == -ENOMEM)
                return vc_error_set(err, r, SIZE_MAX, -1, "OpenSSL failed while making the credential");
        if (r < 0)
                return r;
        *ret_blob = blob;
        *ret_secret = enc;
        return 0;
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
