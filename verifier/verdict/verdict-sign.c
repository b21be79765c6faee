/* SPDX-License-Identifier: Apache-2.0 */
/* Signing verdicts; see verdict-sign.h. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include "hash.h"
#include "vc-util.h"
#include "verdict-sign.h"

int vv_key_id(EVP_PKEY *key, char ret_id[VV_KEY_ID_LEN + 1]) {
        unsigned char *der = NULL;
        uint8_t md[32];
        int n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return -EIO;
        int r = vc_digest(VC_ALG_SHA256, der, (size_t) n, md);
        OPENSSL_free(der);
        if (r < 0)
                return r;
        vc_hex(md, sizeof(md), ret_id);
        return 0;
}

int vv_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **ret_sig, size_t *ret_sig_len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t *sig = NULL;
        size_t n = 0;
        int r = -EIO;
        if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
            EVP_DigestSign(ctx, NULL, &n, msg, len) == 1 && (sig = OPENSSL_malloc(n)) &&
            EVP_DigestSign(ctx, sig, &n, msg, len) == 1 &&
            /* low S: one signature per verdict (the other of the pair is refused) */
            vc_ecdsa_p256_low_s(&sig, &n) == 0) {
                *ret_sig = sig;
                *ret_sig_len = n;
                sig = NULL;
                r = 0;
        }
        OPENSSL_free(sig);
        EVP_MD_CTX_free(ctx);
        return r;
}

int vv_signed_pack(const ProtobufCBinaryData *verdict, const ProtobufCBinaryData *signature, const char *key_id,
                   uint8_t **ret, size_t *ret_len) {
        Vouch__V1__SignedVerdict sv = VOUCH__V1__SIGNED_VERDICT__INIT;
        sv.verdict = *verdict;
        sv.signature = *signature;
        sv.key_id = (char *) key_id;
        size_t n = vouch__v1__signed_verdict__get_packed_size(&sv);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf)
                return -ENOMEM;
        vouch__v1__signed_verdict__pack(&sv, buf);
        *ret = buf;
        *ret_len = n;
        return 0;
}

int vv_verdict_sign(const Vouch__V1__Verdict *v, const vv_key *key, uint8_t **ret_record, size_t *ret_len) {
        ProtobufCBinaryData vb = { 0 }, sig = { 0 };
        size_t vlen = vouch__v1__verdict__get_packed_size(v);
        int r;
        vb.data = malloc(vlen ? vlen : 1);
        if (!vb.data)
                return -ENOMEM;
        vb.len = vouch__v1__verdict__pack(v, vb.data);
        r = vv_sign(key->pkey, vb.data, vb.len, &sig.data, &sig.len);
        if (r == 0)
                r = vv_signed_pack(&vb, &sig, key->id, ret_record, ret_len);
        free(vb.data);
        OPENSSL_free(sig.data);
        return r;
}
