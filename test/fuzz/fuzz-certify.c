/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the device key's certify as the server checks a peer's submission (issue 19):
 * vc_ak_load, vc_certify_parse and, when both succeed, vc_certify_verify and vc_certify_key.
 *
 * Input layout (integers little-endian; make-corpus.py writes it):
 *   byte 0     flags  bit 0: allow SHA-1 (vc_quote_policy.allow_sha1)
 *                     bit 1: the expected qualifying data is the nonce bytes themselves
 *                            (else vc_certify_qualifying_data() of them, as the server does)
 *   bytes 1-2  AK length                (PEM, TPM2B_PUBLIC or TPMT_PUBLIC)
 *   bytes 3-4  device key length        (TPMT_PUBLIC)
 *   bytes 5-6  TPMS_ATTEST length
 *   bytes 7-8  TPMT_SIGNATURE length
 *   byte 9     nonce length
 *   then the AK, the key, the TPMS_ATTEST, the TPMT_SIGNATURE and the nonce; the rest is
 *   ignored. Inputs too short for their lengths are ignored.
 *
 * Checks: a parse failure leaves *ret alone and says why; a VALID result has no failed check
 * and is only given to a certify of type TPM_ST_ATTEST_CERTIFY over the expected qualifying
 * data whose certified Name is the given key's (computed here again), for an ECC P-256 key
 * with the device key's attributes, whose public key OpenSSL takes; an INVALID one names
 * the check and the reason; a VALID certify turns INVALID when one bit of the TPMS_ATTEST,
 * the signature, the key or the qualifying data is flipped. */
#include <errno.h>
#include <string.h>

#include "certify.h"
#include "fuzz.h"
#include "hash.h"

#define HDR 10

enum {
        F_ALLOW_SHA1 = 1 << 0,
        F_RAW_QUALIFYING = 1 << 1,
};

static void check_error(int r, const vc_error *err) {
        char buf[512];
        FUZZ_CHECK(r == -EBADMSG || r == -E2BIG || r == -ENOTSUP || r == -ENOMEM);
        if (r != -ENOMEM) {
                FUZZ_CHECK(err->code == r);
                FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) && err->msg[0]);
        }
        vc_error_format(err, buf, sizeof(buf));
}

static vc_certify_status verify_plain(const vc_ak *ak, const uint8_t *key, size_t key_len, const uint8_t *attest,
                                      size_t attest_len, const uint8_t *sig, size_t sig_len, const uint8_t *qd,
                                      size_t qd_len, const vc_quote_policy *policy) {
        vc_certify *c = NULL;
        vc_certify_result res;
        if (vc_certify_parse(key, key_len, attest, attest_len, sig, sig_len, &c, NULL) < 0)
                return VC_CERTIFY_INVALID;
        int r = vc_certify_verify(c, ak, qd, qd_len, policy, &res);
        vc_certify_free(c);
        return r < 0 ? VC_CERTIFY_UNVERIFIED : res.status;
}

static uint8_t *dup_or_die(const uint8_t *p, size_t n) {
        uint8_t *d = malloc(n ? n : 1);
        if (!d)
                abort();
        if (n)
                memcpy(d, p, n);
        return d;
}

/* One bit (chosen by the input) flipped in each part of a valid submission. */
static void check_tampering(const vc_ak *ak, const uint8_t *key, size_t key_len, const uint8_t *attest,
                            size_t attest_len, const uint8_t *sig, size_t sig_len, const uint8_t *qd, size_t qd_len,
                            const vc_quote_policy *policy, uint64_t seed) {
        uint8_t *k = dup_or_die(key, key_len), *a = dup_or_die(attest, attest_len), *s = dup_or_die(sig, sig_len),
                *q = dup_or_die(qd, qd_len);
        size_t bit;
        FUZZ_CHECK(attest_len && key_len && sig_len);
        bit = (size_t) (seed % (attest_len * 8u));
        a[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        FUZZ_CHECK(verify_plain(ak, k, key_len, a, attest_len, s, sig_len, q, qd_len, policy) != VC_CERTIFY_VALID);
        a[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        /* a flipped bit in an ECDSA r or s or an RSA signature; the scheme bytes are checked too */
        bit = (size_t) ((seed >> 16) % (sig_len * 8u));
        s[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        FUZZ_CHECK(verify_plain(ak, k, key_len, a, attest_len, s, sig_len, q, qd_len, policy) != VC_CERTIFY_VALID);
        s[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        /* the key's Name covers every byte of its public area */
        bit = (size_t) ((seed >> 32) % (key_len * 8u));
        k[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        FUZZ_CHECK(verify_plain(ak, k, key_len, a, attest_len, s, sig_len, q, qd_len, policy) != VC_CERTIFY_VALID);
        k[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        if (qd_len) {
                bit = (size_t) ((seed >> 48) % (qd_len * 8u));
                q[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                FUZZ_CHECK(verify_plain(ak, k, key_len, a, attest_len, s, sig_len, q, qd_len, policy) !=
                           VC_CERTIFY_VALID);
        } else {
                q[0] = (uint8_t) seed;
                FUZZ_CHECK(verify_plain(ak, k, key_len, a, attest_len, s, sig_len, q, 1, policy) != VC_CERTIFY_VALID);
        }
        free(q);
        free(s);
        free(a);
        free(k);
}

static void check_valid(const vc_certify *c, const vc_certify_result *res, const uint8_t *qd, size_t qd_len,
                        bool allow_sha1) {
        const TPMS_ATTEST *a = &c->signed_attest->attest;
        const vc_alg_info *alg = vc_alg_lookup(c->key.nameAlg);
        uint8_t name[2 + VC_MAX_DIGEST];
        EVP_PKEY *pk = NULL;
        vc_error err;

        FUZZ_CHECK(res->failed == VC_CERTIFY_CHECK_NONE);
        FUZZ_CHECK(a->magic == TPM2_GENERATED_VALUE && a->type == TPM2_ST_ATTEST_CERTIFY);
        FUZZ_CHECK(a->extraData.size == qd_len && memcmp(a->extraData.buffer, qd, qd_len) == 0);
        /* the Name, computed here again: nameAlg || H(the key's bytes) */
        FUZZ_CHECK(alg && alg->alg != VC_ALG_SM3_256 && (allow_sha1 || alg->alg != VC_ALG_SHA1));
        name[0] = (uint8_t) (alg->alg >> 8);
        name[1] = (uint8_t) alg->alg;
        FUZZ_CHECK(vc_digest(alg->alg, c->key_bytes, c->key_len, name + 2) == 0);
        FUZZ_CHECK(a->attested.certify.name.size == 2 + alg->size &&
                   memcmp(a->attested.certify.name.name, name, 2 + alg->size) == 0);
        FUZZ_CHECK(res->name_len == 2 + alg->size && memcmp(res->name, name, res->name_len) == 0);
        FUZZ_CHECK(c->key.type == TPM2_ALG_ECC && c->key.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256);
        FUZZ_CHECK((c->key.objectAttributes & VC_DEVKEY_ATTRS_REQUIRED) == VC_DEVKEY_ATTRS_REQUIRED);
        FUZZ_CHECK((c->key.objectAttributes & VC_DEVKEY_ATTRS_FORBIDDEN) == 0);
        int r = vc_certify_key(c, &pk, &err);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        FUZZ_CHECK(r < 0 || EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC);
        EVP_PKEY_free(pk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* tss2-mu logs every rejected structure to stderr; the user's TSS2_LOG still wins */
        setenv("TSS2_LOG", "all+none", 0);
        if (size < HDR)
                return 0;
        uint8_t flags = data[0];
        size_t ak_len = vc_le16(data + 1), key_len = vc_le16(data + 3), attest_len = vc_le16(data + 5),
               sig_len = vc_le16(data + 7), nonce_len = data[9];
        size_t off = HDR;
        if (size - off < ak_len + key_len + attest_len + sig_len + nonce_len)
                return 0;
        const uint8_t *ak_buf = data + off;
        off += ak_len;
        const uint8_t *key = data + off;
        off += key_len;
        const uint8_t *attest = data + off;
        off += attest_len;
        const uint8_t *sig = data + off;
        off += sig_len;
        const uint8_t *nonce = data + off;

        uint8_t derived[VC_CERTIFY_QUALIFYING_SIZE];
        const uint8_t *qd = nonce;
        size_t qd_len = nonce_len;
        if (!(flags & F_RAW_QUALIFYING)) {
                FUZZ_CHECK(vc_certify_qualifying_data(nonce, nonce_len, derived) == 0);
                qd = derived;
                qd_len = sizeof(derived);
        }
        vc_quote_policy policy = { .allow_sha1 = flags & F_ALLOW_SHA1 };

        vc_ak *ak = NULL;
        vc_certify *c = NULL;
        vc_error err;
        int r_ak = vc_ak_load(ak_buf, ak_len, &ak, &err);
        if (r_ak < 0) {
                check_error(r_ak, &err);
                FUZZ_CHECK(!ak);
        }
        int r_c = vc_certify_parse(key, key_len, attest, attest_len, sig, sig_len, &c, &err);
        if (r_c < 0) {
                check_error(r_c, &err);
                FUZZ_CHECK(!c);
        } else {
                FUZZ_CHECK(c && c->signed_attest && c->key_len == key_len && memcmp(c->key_bytes, key, key_len) == 0);
        }
        if (r_ak == 0 && r_c == 0) {
                vc_certify_result res;
                int r = vc_certify_verify(c, ak, qd, qd_len, (flags & F_ALLOW_SHA1) ? &policy : NULL, &res);
                if (r < 0)
                        FUZZ_CHECK(r == -ENOMEM || r == -EIO);
                else if (res.status == VC_CERTIFY_VALID) {
                        check_valid(c, &res, qd, qd_len, flags & F_ALLOW_SHA1);
                        check_tampering(ak, key, key_len, attest, attest_len, sig, sig_len, qd, qd_len,
                                        (flags & F_ALLOW_SHA1) ? &policy : NULL, fuzz_hash(data, size));
                } else {
                        FUZZ_CHECK(res.status == VC_CERTIFY_INVALID);
                        FUZZ_CHECK(res.failed > VC_CERTIFY_CHECK_NONE && res.failed <= VC_CERTIFY_CHECK_KEY_ATTRIBUTES);
                        FUZZ_CHECK(memchr(res.reason, '\0', sizeof(res.reason)) && res.reason[0]);
                        FUZZ_CHECK(res.name_len == 0);
                }
                FUZZ_CHECK_TEXT(res.reason);
                (void) vc_certify_check_name(res.failed);
        }
        vc_certify_free(c);
        vc_ak_free(ak);
        return 0;
}
