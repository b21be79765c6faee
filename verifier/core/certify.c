/* SPDX-License-Identifier: Apache-2.0 */
#include "certify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "hash.h"
#include "tpmkey.h"

int vc_certify_qualifying_data(const uint8_t *nonce, size_t nonce_len, uint8_t out[VC_CERTIFY_QUALIFYING_SIZE]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned n = 0;
        int r = -EIO;
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex2(ctx, EVP_sha256(), NULL) == 1 &&
            EVP_DigestUpdate(ctx, VC_CERTIFY_LABEL, strlen(VC_CERTIFY_LABEL)) == 1 &&
            (nonce_len == 0 || EVP_DigestUpdate(ctx, nonce, nonce_len) == 1) && EVP_DigestFinal_ex(ctx, out, &n) == 1 &&
            n == VC_CERTIFY_QUALIFYING_SIZE)
                r = 0;
        EVP_MD_CTX_free(ctx);
        return r;
}

const char *vc_certify_check_name(vc_certify_check c) {
        switch (c) {
        case VC_CERTIFY_CHECK_NONE:
                return "none";
        case VC_CERTIFY_CHECK_MAGIC:
                return "magic";
        case VC_CERTIFY_CHECK_TYPE:
                return "type";
        case VC_CERTIFY_CHECK_AK_ATTRIBUTES:
                return "ak-attributes";
        case VC_CERTIFY_CHECK_SCHEME:
                return "scheme";
        case VC_CERTIFY_CHECK_SIGNATURE:
                return "signature";
        case VC_CERTIFY_CHECK_QUALIFYING_DATA:
                return "qualifying-data";
        case VC_CERTIFY_CHECK_NAME:
                return "name";
        case VC_CERTIFY_CHECK_KEY_TYPE:
                return "key-type";
        case VC_CERTIFY_CHECK_KEY_ATTRIBUTES:
                return "key-attributes";
        }
        return "?";
}

vc_certify *vc_certify_free(vc_certify *c) {
        if (!c)
                return NULL;
        vc_quote_free(c->signed_attest);
        free(c->key_bytes);
        free(c);
        return NULL;
}

static void certify_freep(vc_certify **c) {
        vc_certify_free(*c);
}

int vc_certify_parse(const uint8_t *key_public, size_t key_len, const uint8_t *attest, size_t attest_len,
                     const uint8_t *sig, size_t sig_len, vc_certify **ret, vc_error *err) {
        _cleanup_(certify_freep) vc_certify *c = NULL;
        size_t off = 0;
        int r;

        vc_error_clear(err);
        if (key_len > VC_CERTIFY_PUBLIC_MAX)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "device key: TPMT_PUBLIC of %zu bytes exceeds %zu bytes",
                                    key_len, VC_CERTIFY_PUBLIC_MAX);
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        if (Tss2_MU_TPMT_PUBLIC_Unmarshal(key_public, key_len, &off, &c->key) != TSS2_RC_SUCCESS)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                    "device key: TPMT_PUBLIC malformed, truncated or of an unknown type (%zu bytes)",
                                    key_len);
        if (off != key_len)
                return vc_error_set(err, -EBADMSG, off, -1, "device key: %zu trailing bytes after the TPMT_PUBLIC",
                                    key_len - off);
        c->key_bytes = malloc(key_len);
        if (!c->key_bytes)
                return -ENOMEM;
        memcpy(c->key_bytes, key_public, key_len);
        c->key_len = key_len;
        r = vc_quote_parse(attest, attest_len, sig, sig_len, &c->signed_attest, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int fail(vc_certify_result *res, vc_certify_check c, const char *fmt, ...) _printf_(3, 4);
static int fail(vc_certify_result *res, vc_certify_check c, const char *fmt, ...) {
        va_list ap;
        res->status = VC_CERTIFY_INVALID;
        res->failed = c;
        va_start(ap, fmt);
        vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
        va_end(ap);
        return 0;
}

/* Is it the AK's TPM's: magic, type, the AK a restricted signing key, its signature. 1 yes,
 * 0 failed with ret set, <0 error. */
static int check_signed(const vc_certify *c, const vc_ak *ak, const vc_quote_policy *policy, vc_certify_result *ret) {
        const vc_quote *q = c->signed_attest;
        vc_signature_check bad;
        int r;
        /* TPM 2.0 Part 2, 10.12.8: every TPMS_ATTEST the TPM signs starts with TPM_GENERATED_VALUE */
        if (q->attest.magic != TPM2_GENERATED_VALUE)
                return fail(ret, VC_CERTIFY_CHECK_MAGIC, "magic 0x%08x, expected TPM_GENERATED_VALUE 0xff544347",
                            q->attest.magic);
        if (q->attest.type != TPM2_ST_ATTEST_CERTIFY)
                return fail(ret, VC_CERTIFY_CHECK_TYPE,
                            "attestation type 0x%04x, expected TPM_ST_ATTEST_CERTIFY 0x8017", q->attest.type);
        /* Only a restricted key's signature says the TPM made the structure: an unrestricted
         * one signs any digest it is given (Part 1, 25.2.4). */
        if (ak->has_public && ((ak->public.objectAttributes & TPMA_OBJECT_RESTRICTED) == 0 ||
                               (ak->public.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) == 0))
                return fail(ret, VC_CERTIFY_CHECK_AK_ATTRIBUTES,
                            "AK attributes 0x%08x: the certifying key must be restricted and sign",
                            ak->public.objectAttributes);
        r = vc_ak_verify_signature(ak, q->attest_bytes, q->attest_len, &q->sig, policy && policy->allow_sha1, &bad,
                                   ret->reason, sizeof(ret->reason));
        if (r == 0) {
                ret->status = VC_CERTIFY_INVALID;
                ret->failed = bad == VC_SIGNATURE_SCHEME ? VC_CERTIFY_CHECK_SCHEME : VC_CERTIFY_CHECK_SIGNATURE;
        }
        return r;
}

static void hex_short(const uint8_t *p, size_t n, char *out /* 2*64+1 */) {
        vc_hex(p, n > 64 ? 64 : n, out);
}

static int check_qualifying(const TPMS_ATTEST *a, const uint8_t *qualifying, size_t qualifying_len,
                            vc_certify_result *ret) {
        char h1[129], h2[129];
        if (a->extraData.size == qualifying_len &&
            (qualifying_len == 0 || memcmp(a->extraData.buffer, qualifying, qualifying_len) == 0))
                return 1;
        hex_short(a->extraData.buffer, a->extraData.size, h1);
        hex_short(qualifying, qualifying_len, h2);
        return fail(ret, VC_CERTIFY_CHECK_QUALIFYING_DATA,
                    "extraData \"%s\" is not the expected qualifying data \"%s\" (SHA-256 of \"" VC_CERTIFY_LABEL
                    "\" and this challenge's nonce): certified for another challenge",
                    h1, h2);
}

/* The Name of the key the agent sent (Part 1, 16: nameAlg || H_nameAlg(TPMT_PUBLIC)) against
 * the one the TPM certified. 1 the same, 0 failed with ret set, <0 error. */
static int check_name(const vc_certify *c, bool allow_sha1, vc_certify_result *ret) {
        const TPM2B_NAME *got = &c->signed_attest->attest.attested.certify.name;
        const vc_alg_info *a = vc_alg_lookup(c->key.nameAlg);
        uint8_t want[2 + VC_MAX_DIGEST];
        char h1[129], h2[129];
        if (!a || a->alg == VC_ALG_SM3_256)
                return fail(ret, VC_CERTIFY_CHECK_NAME,
                            "device key nameAlg 0x%04x is not SHA-256/384/512: its Name cannot be computed",
                            c->key.nameAlg);
        if (a->alg == VC_ALG_SHA1 && !allow_sha1)
                return fail(ret, VC_CERTIFY_CHECK_NAME,
                            "device key nameAlg is SHA-1, which is refused (collisions are practical)");
        want[0] = (uint8_t) (a->alg >> 8);
        want[1] = (uint8_t) a->alg;
        int r = vc_digest(a->alg, c->key_bytes, c->key_len, want + 2);
        if (r < 0)
                return r == -ENOMEM ? r : -EIO;
        if (got->size == 2 + a->size && memcmp(got->name, want, 2 + a->size) == 0)
                return 1;
        hex_short(got->name, got->size, h1);
        hex_short(want, 2 + a->size, h2);
        return fail(ret, VC_CERTIFY_CHECK_NAME,
                    "certified Name %s is not the Name %s of the device key sent (another key was certified)", h1, h2);
}

/* Names of the attribute bits VC_DEVKEY_ATTRS_* speak of, for the reasons. */
static const struct {
        uint32_t bit;
        const char *name;
} attr_names[] = {
        { TPMA_OBJECT_FIXEDTPM, "fixedTPM" },       { TPMA_OBJECT_FIXEDPARENT, "fixedParent" },
        { TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin" }, { TPMA_OBJECT_SIGN_ENCRYPT, "sign" },
        { TPMA_OBJECT_DECRYPT, "decrypt" },         { TPMA_OBJECT_RESTRICTED, "restricted" },
};

static void attr_list(uint32_t bits, char *out, size_t size) {
        size_t n = 0;
        out[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(attr_names); i++)
                if ((bits & attr_names[i].bit) && n < size) {
                        int k = snprintf(out + n, size - n, "%s%s", n ? "," : "", attr_names[i].name);
                        n += k > 0 ? (size_t) k : 0;
                }
}

static int check_key(const vc_certify *c, vc_certify_result *ret) {
        const TPMT_PUBLIC *k = &c->key;
        uint32_t attrs = k->objectAttributes;
        uint32_t missing = VC_DEVKEY_ATTRS_REQUIRED & ~attrs, extra = VC_DEVKEY_ATTRS_FORBIDDEN & attrs;
        char m[96], x[96];
        EVP_PKEY *pkey = NULL;
        vc_error err;

        if (k->type != TPM2_ALG_ECC || k->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256)
                return fail(ret, VC_CERTIFY_CHECK_KEY_TYPE,
                            "device key type 0x%04x curve 0x%04x, expected ECC 0x0023 NIST P-256 0x0003", k->type,
                            k->type == TPM2_ALG_ECC ? k->parameters.eccDetail.curveID : 0);
        int r = vc_tpm_public_key(k, "device key", &pkey, &err);
        EVP_PKEY_free(pkey);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fail(ret, VC_CERTIFY_CHECK_KEY_TYPE, "%s", err.msg);
        if (missing || extra) {
                attr_list(missing, m, sizeof(m));
                attr_list(extra, x, sizeof(x));
                return fail(ret, VC_CERTIFY_CHECK_KEY_ATTRIBUTES,
                            "device key attributes 0x%08x: %s%s%s%s (a device key never leaves its TPM, was made in "
                            "it, signs, and is neither restricted nor a decryption key)",
                            attrs, missing ? "missing " : "", m, missing && extra ? "; has " : extra ? "has " : "", x);
        }
        return 1;
}

int vc_certify_verify(const vc_certify *c, const vc_ak *ak, const uint8_t *qualifying, size_t qualifying_len,
                      const vc_quote_policy *policy, vc_certify_result *ret) {
        const TPMS_ATTEST *a = &c->signed_attest->attest;
        int r;

        *ret = (vc_certify_result) { 0 };
        if ((r = check_signed(c, ak, policy, ret)) <= 0 || (r = check_qualifying(a, qualifying, qualifying_len, ret)) <= 0 ||
            (r = check_name(c, policy && policy->allow_sha1, ret)) <= 0 || (r = check_key(c, ret)) <= 0)
                return r;
        memcpy(ret->name, a->attested.certify.name.name, a->attested.certify.name.size);
        ret->name_len = a->attested.certify.name.size;
        ret->status = VC_CERTIFY_VALID;
        ret->failed = VC_CERTIFY_CHECK_NONE;
        return 0;
}

int vc_certify_key(const vc_certify *c, EVP_PKEY **ret, vc_error *err) {
        vc_error_clear(err);
        return vc_tpm_public_key(&c->key, "device key", ret, err);
}
