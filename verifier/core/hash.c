/* SPDX-License-Identifier: Apache-2.0 */
#include "hash.h"

#include <errno.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <strings.h>

#include "vc-util.h"

static const vc_alg_info algs[VC_NUM_ALGS] = {
        { VC_ALG_SHA1, "sha1", 20, "SHA1" },
        { VC_ALG_SHA256, "sha256", 32, "SHA256" },
        { VC_ALG_SHA384, "sha384", 48, "SHA384" },
        { VC_ALG_SHA512, "sha512", 64, "SHA512" },
        { VC_ALG_SM3_256, "sm3_256", 32, "SM3" },
};

int vc_alg_index(uint16_t alg) {
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (algs[i].alg == alg)
                        return (int) i;
        return -1;
}

const vc_alg_info *vc_alg_at(int index) {
        if (index < 0 || index >= VC_NUM_ALGS)
                return NULL;
        return &algs[index];
}

const vc_alg_info *vc_alg_lookup(uint16_t alg) {
        return vc_alg_at(vc_alg_index(alg));
}

const vc_alg_info *vc_alg_by_name(const char *name) {
        static const struct {
                const char *alias;
                uint16_t alg;
        } aliases[] = {
                { "sha-1", VC_ALG_SHA1 },     { "sha-256", VC_ALG_SHA256 }, { "sha-384", VC_ALG_SHA384 },
                { "sha-512", VC_ALG_SHA512 }, { "sm3", VC_ALG_SM3_256 },    { "sm3-256", VC_ALG_SM3_256 },
        };
        for (size_t i = 0; i < ELEMENTSOF(algs); i++)
                if (strcasecmp(name, algs[i].name) == 0)
                        return &algs[i];
        for (size_t i = 0; i < ELEMENTSOF(aliases); i++)
                if (strcasecmp(name, aliases[i].alias) == 0)
                        return vc_alg_lookup(aliases[i].alg);
        return NULL;
}

struct vc_hasher {
        EVP_MD *md[VC_NUM_ALGS];
        uint32_t fetched;       /* bit i: md[i] was fetched (NULL: the provider lacks it) */
        EVP_MD_CTX *ctx;
};

vc_hasher *vc_hasher_free(vc_hasher *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < VC_NUM_ALGS; i++)
                EVP_MD_free(h->md[i]);
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
}

int vc_hasher_new(vc_hasher **ret) {
        vc_hasher *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx) {
                vc_hasher_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

/* Explicit fetches, once per hasher and algorithm, when first used: OpenSSL 3's implicit
 * fetch per EVP_DigestInit is slow, and a fetch costs ~0.2 us, which a hasher made for a
 * few digests of one algorithm need not pay five times. An algorithm the provider lacks
 * (SM3 on some builds) stays NULL -> -ENOTSUP. */
static const EVP_MD *md_of(vc_hasher *h, int i) {
        if (!(h->fetched & (1u << i))) {
                h->md[i] = EVP_MD_fetch(NULL, algs[i].ossl_name, NULL);
                h->fetched |= 1u << i;
        }
        return h->md[i];
}

int vc_hasher_digest2(vc_hasher *h, uint16_t alg, const void *a, size_t alen, const void *b, size_t blen,
                      uint8_t *out) {
        int i = vc_alg_index(alg);
        const EVP_MD *md = i < 0 ? NULL : md_of(h, i);
        if (!md)
                return -ENOTSUP;
        if (EVP_DigestInit_ex2(h->ctx, md, NULL) != 1 || EVP_DigestUpdate(h->ctx, a, alen) != 1 ||
            (b && EVP_DigestUpdate(h->ctx, b, blen) != 1) || EVP_DigestFinal_ex(h->ctx, out, NULL) != 1)
                return -EIO;
        return 0;
}

int vc_digest(uint16_t alg, const void *data, size_t len, uint8_t *out) {
        vc_hasher *h = NULL;
        int r = vc_hasher_new(&h);
        if (r < 0)
                return r;
        r = vc_hasher_digest(h, alg, data, len, out);
        vc_hasher_free(h);
        return r;
}

/* n / 2 of P-256, rounded down */
static const uint8_t p256_half_order[32] = {
        0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
};
static const uint8_t p256_order[32] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* 1: s > n/2, 0: not, <0: not a signature or no memory; *ret_sig is the parsed signature */
static int high_s(const uint8_t *der, size_t len, ECDSA_SIG **ret_sig) {
        const unsigned char *p = der;
        ECDSA_SIG *sig = len <= LONG_MAX ? d2i_ECDSA_SIG(NULL, &p, (long) len) : NULL;
        if (!sig || p != der + len) {
                ECDSA_SIG_free(sig);
                return -EBADMSG;
        }
        BIGNUM *half = BN_bin2bn(p256_half_order, sizeof(p256_half_order), NULL);
        if (!half) {
                ECDSA_SIG_free(sig);
                return -ENOMEM;
        }
        int r = BN_cmp(ECDSA_SIG_get0_s(sig), half) > 0;
        BN_free(half);
        *ret_sig = sig;
        return r;
}

bool vc_ecdsa_p256_is_low_s(const uint8_t *der, size_t len) {
        ECDSA_SIG *sig = NULL;
        int r = high_s(der, len, &sig);
        ECDSA_SIG_free(sig);
        return r == 0;
}

int vc_ecdsa_p256_low_s(uint8_t **der, size_t *len) {
        ECDSA_SIG *sig = NULL;
        int r = high_s(*der, *len, &sig);
        if (r <= 0) {
                ECDSA_SIG_free(sig);
                return r;
        }
        BIGNUM *n = BN_bin2bn(p256_order, sizeof(p256_order), NULL), *s = BN_new(),
               *rr = BN_dup(ECDSA_SIG_get0_r(sig));
        unsigned char *out = NULL;
        int out_len = -1;
        r = -ENOMEM;
        if (n && s && rr && BN_sub(s, n, ECDSA_SIG_get0_s(sig)) == 1 && ECDSA_SIG_set0(sig, rr, s) == 1) {
                rr = s = NULL; /* owned by sig */
                out_len = i2d_ECDSA_SIG(sig, &out);
        }
        if (out_len > 0) {
                OPENSSL_free(*der);
                *der = out;
                *len = (size_t) out_len;
                r = 0;
        }
        BN_free(n);
        BN_free(s);
        BN_free(rr);
        ECDSA_SIG_free(sig);
        return r;
}
