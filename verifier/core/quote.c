/* SPDX-License-Identifier: Apache-2.0 */
#include "quote.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "hash.h"
#include "tpmkey.h"

const char *vc_quote_check_name(vc_quote_check c) {
        switch (c) {
        case VC_QUOTE_CHECK_NONE:
                return "none";
        case VC_QUOTE_CHECK_MAGIC:
                return "magic";
        case VC_QUOTE_CHECK_TYPE:
                return "type";
        case VC_QUOTE_CHECK_NONCE:
                return "nonce";
        case VC_QUOTE_CHECK_SCHEME:
                return "scheme";
        case VC_QUOTE_CHECK_SIGNATURE:
                return "signature";
        case VC_QUOTE_CHECK_SIGNER:
                return "qualified-signer";
        case VC_QUOTE_CHECK_PCR_MISSING:
                return "pcr-missing";
        case VC_QUOTE_CHECK_PCR_DIGEST:
                return "pcr-digest";
        case VC_QUOTE_CHECK_EVENTLOG:
                return "eventlog";
        case VC_QUOTE_CHECK_AK_ATTRIBUTES:
                return "ak-attributes";
        }
        return "?";
}

vc_ak *vc_ak_free(vc_ak *ak) {
        if (!ak)
                return NULL;
        EVP_PKEY_free(ak->pkey);
        free(ak);
        return NULL;
}

static int ak_from_public(vc_ak *ak, const uint8_t *tpmt, size_t tpmt_len, vc_error *err) {
        const TPM2B_PUBLIC_KEY_RSA *n = &ak->public.unique.rsa;
        int r;
        if (ak->public.type == TPM2_ALG_RSA && (n->size == 0 || n->size * 8u != ak->public.parameters.rsaDetail.keyBits))
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "RSA AK: modulus of %u bytes for keyBits %u", n->size,
                                    ak->public.parameters.rsaDetail.keyBits);
        r = vc_tpm_public_key(&ak->public, "AK", &ak->pkey, err);
        if (r < 0)
                return r;
        /* Name = nameAlg || H_nameAlg(marshalled TPMT_PUBLIC), TPM 2.0 Part 1 section 16. */
        const vc_alg_info *a = vc_alg_lookup(ak->public.nameAlg);
        if (!a)
                return vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "AK nameAlg 0x%04x is not supported",
                                    ak->public.nameAlg);
        ak->name[0] = (uint8_t) (a->alg >> 8);
        ak->name[1] = (uint8_t) a->alg;
        r = vc_digest(a->alg, tpmt, tpmt_len, ak->name + 2);
        if (r < 0)
                return vc_error_set(err, r, SIZE_MAX, -1, "hashing the AK public area failed");
        ak->name_len = 2 + a->size;
        ak->has_public = true;
        return 0;
}

int vc_tpm2b_public_parse(const uint8_t *buf, size_t len, TPM2B_PUBLIC *out) {
        size_t off = 0;
        *out = (TPM2B_PUBLIC) { 0 }; /* tss2-mu refuses to unmarshal into a non-zero size */
        if (len < 2 || vc_be16(buf) != len - 2 || Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, out) != TSS2_RC_SUCCESS ||
            off != len)
                return -EBADMSG;
        return 0;
}

static void ak_freep(vc_ak **ak) {
        vc_ak_free(*ak);
}

/* A PEM SubjectPublicKeyInfo, RSA or EC. */
static int ak_from_pem(vc_ak *ak, const uint8_t *buf, size_t len, vc_error *err) {
        BIO *bio = BIO_new_mem_buf(buf, (int) len);
        if (!bio)
                return -ENOMEM;
        ak->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!ak->pkey)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                    "AK: PEM is not a SubjectPublicKeyInfo (\"PUBLIC KEY\") OpenSSL can read");
        int id = EVP_PKEY_get_base_id(ak->pkey);
        if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC)
                return vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "AK: PEM key is neither RSA nor EC");
        return 0;
}

int vc_ak_load(const uint8_t *buf, size_t len, vc_ak **ret, vc_error *err) {
        _cleanup_(ak_freep) vc_ak *ak = NULL;
        TPM2B_PUBLIC p2;
        size_t off = 0;
        int r;

        vc_error_clear(err);
        if (len > VC_AK_MAX_FILE)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "AK file of %zu bytes exceeds %u bytes", len,
                                    VC_AK_MAX_FILE);
        ak = calloc(1, sizeof(*ak));
        if (!ak)
                return -ENOMEM;
        if (len >= 10 && memmem(buf, len, "-----BEGIN", 10))
                r = ak_from_pem(ak, buf, len, err);
        else if (vc_tpm2b_public_parse(buf, len, &p2) == 0) {
                /* TPM2B_PUBLIC: a big-endian size that covers exactly the rest of the file. */
                ak->public = p2.publicArea;
                r = ak_from_public(ak, buf + 2, len - 2, err);
        } else if (Tss2_MU_TPMT_PUBLIC_Unmarshal(buf, len, &off, &ak->public) != TSS2_RC_SUCCESS)
                r = vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                 "AK: %zu bytes are neither PEM, TPM2B_PUBLIC nor TPMT_PUBLIC", len);
        else if (off != len)
                r = vc_error_set(err, -EBADMSG, off, -1, "AK: TPMT_PUBLIC ends at byte %zu of %zu", off, len);
        else
                r = ak_from_public(ak, buf, len, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ak);
        return 0;
}

vc_quote *vc_quote_free(vc_quote *q) {
        if (!q)
                return NULL;
        free(q->attest_bytes);
        free(q);
        return NULL;
}

static void quote_freep(vc_quote **q) {
        vc_quote_free(*q);
}

int vc_quote_parse(const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len, vc_quote **ret,
                   vc_error *err) {
        _cleanup_(quote_freep) vc_quote *q = NULL;
        size_t off = 0;

        vc_error_clear(err);
        /* A TPM2B_ATTEST (size prefix) is unwrapped; TPMS_ATTEST starts with the magic
         * 0xff544347, whose first two bytes can never be a valid TPM2B size here. */
        if (attest_len >= 2 && vc_be16(attest) == attest_len - 2 && attest[0] != 0xff) {
                attest += 2;
                attest_len -= 2;
        }
        if (attest_len > VC_ATTEST_MAX)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "TPMS_ATTEST of %zu bytes exceeds %zu bytes",
                                    attest_len, VC_ATTEST_MAX);
        if (sig_len > VC_SIGNATURE_MAX)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "TPMT_SIGNATURE of %zu bytes exceeds %zu bytes",
                                    sig_len, VC_SIGNATURE_MAX);
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_len, &off, &q->attest) != TSS2_RC_SUCCESS)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1, "TPMS_ATTEST: malformed or truncated (%zu bytes)",
                                    attest_len);
        if (off != attest_len)
                return vc_error_set(err, -EBADMSG, off, -1, "TPMS_ATTEST: %zu trailing bytes after the structure",
                                    attest_len - off);
        off = 0;
        if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &q->sig) != TSS2_RC_SUCCESS)
                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                    "TPMT_SIGNATURE: malformed, truncated or unknown algorithm (%zu bytes)", sig_len);
        if (off != sig_len)
                return vc_error_set(err, -EBADMSG, off, -1, "TPMT_SIGNATURE: %zu trailing bytes after the structure",
                                    sig_len - off);
        q->attest_bytes = malloc(attest_len ? attest_len : 1);
        if (!q->attest_bytes)
                return -ENOMEM;
        memcpy(q->attest_bytes, attest, attest_len);
        q->attest_len = attest_len;
        *ret = TAKE_PTR(q);
        return 0;
}

static int fail(vc_quote_result *res, vc_quote_check c, const char *fmt, ...) _printf_(3, 4);
static int fail(vc_quote_result *res, vc_quote_check c, const char *fmt, ...) {
        va_list ap;
        res->status = VC_QUOTE_INVALID;
        res->failed = c;
        va_start(ap, fmt);
        vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
        va_end(ap);
        return 0;
}

static void hex_short(const uint8_t *p, size_t n, char *out /* 2*64+1 */) {
        vc_hex(p, n > 64 ? 64 : n, out);
}

/* Where vc_ak_verify_signature() writes why a signature is refused. */
typedef struct sig_fail {
        vc_signature_check *check;
        char *why;
        size_t why_size;
} sig_fail;

static int sig_refuse(const sig_fail *f, vc_signature_check c, const char *fmt, ...) _printf_(3, 4);
static int sig_refuse(const sig_fail *f, vc_signature_check c, const char *fmt, ...) {
        va_list ap;
        *f->check = c;
        va_start(ap, fmt);
        vsnprintf(f->why, f->why_size, fmt, ap);
        va_end(ap);
        return 0;
}

/* A restricted signing key signs with its own scheme and hash only: a signature of
 * another scheme or hash is not the TPM's (1 matches, 0 refused with f set). An AK whose
 * scheme is NULL (enrollment refuses those) is left to the signature check. */
static int scheme_matches(const TPMT_SIGNATURE *s, const TPMT_PUBLIC *ak, const sig_fail *f) {
        uint16_t want, want_hash, hash;
        if (ak->type == TPM2_ALG_RSA) {
                want = ak->parameters.rsaDetail.scheme.scheme;
                want_hash = ak->parameters.rsaDetail.scheme.details.anySig.hashAlg;
        } else if (ak->type == TPM2_ALG_ECC) {
                want = ak->parameters.eccDetail.scheme.scheme;
                want_hash = ak->parameters.eccDetail.scheme.details.anySig.hashAlg;
        } else {
                return 1;
        }
        if (want == TPM2_ALG_NULL)
                return 1;
        switch (s->sigAlg) {
        case TPM2_ALG_RSASSA:
        case TPM2_ALG_RSAPSS:
                hash = s->signature.rsassa.hash;
                break;
        case TPM2_ALG_ECDSA:
                hash = s->signature.ecdsa.hash;
                break;
        default:
                return 1; /* verify_signature names it */
        }
        if (s->sigAlg != want || hash != want_hash)
                return sig_refuse(f, VC_SIGNATURE_SCHEME,
                                  "signature scheme 0x%04x with hash 0x%04x, but the AK signs with scheme 0x%04x and hash "
                                  "0x%04x",
                                  s->sigAlg, hash, want, want_hash);
        return 1;
}

/* Verifies the signature over data. Returns 1 valid, 0 refused with f set, <0 error. */
static int verify_signature(const TPMT_SIGNATURE *s, const uint8_t *data, size_t len, EVP_PKEY *pkey,
                            bool allow_sha1, const sig_fail *f) {
        uint16_t hash;
        int key_id = EVP_PKEY_get_base_id(pkey);
        uint8_t *der = NULL;
        const uint8_t *sigbytes;
        size_t siglen;
        int r;

        switch (s->sigAlg) {
        case TPM2_ALG_RSASSA:
        case TPM2_ALG_RSAPSS:
                if (key_id != EVP_PKEY_RSA)
                        return sig_refuse(f, VC_SIGNATURE_SCHEME, "signature is %s but the AK is not an RSA key",
                                          s->sigAlg == TPM2_ALG_RSASSA ? "RSASSA" : "RSAPSS");
                hash = s->signature.rsassa.hash;
                sigbytes = s->signature.rsassa.sig.buffer;
                siglen = s->signature.rsassa.sig.size;
                break;
        case TPM2_ALG_ECDSA: {
                if (key_id != EVP_PKEY_EC)
                        return sig_refuse(f, VC_SIGNATURE_SCHEME, "signature is ECDSA but the AK is not an EC key");
                hash = s->signature.ecdsa.hash;
                ECDSA_SIG *es = ECDSA_SIG_new();
                BIGNUM *br = BN_bin2bn(s->signature.ecdsa.signatureR.buffer, s->signature.ecdsa.signatureR.size, NULL);
                BIGNUM *bs = BN_bin2bn(s->signature.ecdsa.signatureS.buffer, s->signature.ecdsa.signatureS.size, NULL);
                if (!es || !br || !bs || ECDSA_SIG_set0(es, br, bs) != 1) {
                        ECDSA_SIG_free(es);
                        BN_free(br);
                        BN_free(bs);
                        return -ENOMEM;
                }
                int dl = i2d_ECDSA_SIG(es, &der);
                ECDSA_SIG_free(es);
                if (dl <= 0)
                        return -ENOMEM;
                sigbytes = der;
                siglen = (size_t) dl;
                break;
        }
        default:
                return sig_refuse(f, VC_SIGNATURE_SCHEME, "signature algorithm 0x%04x is not RSASSA, RSAPSS or ECDSA",
                                  s->sigAlg);
        }
        const vc_alg_info *a = vc_alg_lookup(hash);
        if (!a || hash == VC_ALG_SM3_256) {
                OPENSSL_free(der);
                return sig_refuse(f, VC_SIGNATURE_SCHEME, "signature hash 0x%04x is not SHA-1/256/384/512", hash);
        }
        if (hash == VC_ALG_SHA1 && !allow_sha1) {
                OPENSSL_free(der);
                return sig_refuse(f, VC_SIGNATURE_SCHEME,
                                  "signature hash is SHA-1, which is refused (collisions are practical); allow it "
                                  "explicitly");
        }

        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        if (!ctx) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        r = EVP_DigestVerifyInit_ex(ctx, &pctx, a->ossl_name, NULL, NULL, pkey, NULL) == 1 ? 0 : -EIO;
        if (r == 0 && s->sigAlg == TPM2_ALG_RSAPSS) {
                /* The TPM's salt length is the hash size (or the maximum on older TPMs): let
                 * OpenSSL recover it from the signature. */
                if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1)
                        r = -EIO;
        } else if (r == 0 && s->sigAlg == TPM2_ALG_RSASSA) {
                if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
                        r = -EIO;
        }
        if (r == 0)
                r = EVP_DigestVerify(ctx, sigbytes, siglen, data, len) == 1 ? 1 : 0;
        EVP_MD_CTX_free(ctx);
        OPENSSL_free(der);
        if (r == -EIO)
                return sig_refuse(f, VC_SIGNATURE_SCHEME, "OpenSSL cannot verify %s with this AK", a->name);
        if (r == 0)
                return sig_refuse(f, VC_SIGNATURE_INVALID, "signature (%s) does not verify with the AK",
                                  s->sigAlg == TPM2_ALG_ECDSA  ? "ECDSA"
                                  : s->sigAlg == TPM2_ALG_RSAPSS ? "RSAPSS"
                                                                 : "RSASSA");
        return 1;
}

int vc_ak_verify_signature(const vc_ak *ak, const uint8_t *data, size_t len, const TPMT_SIGNATURE *sig,
                           bool allow_sha1, vc_signature_check *ret_check, char *why, size_t why_size) {
        vc_signature_check check = VC_SIGNATURE_OK;
        const sig_fail f = { &check, why, why_size };
        int r = 1;
        if (ak->has_public)
                r = scheme_matches(sig, &ak->public, &f);
        if (r > 0)
                r = verify_signature(sig, data, len, ak->pkey, allow_sha1, &f);
        if (r >= 0)
                *ret_check = check;
        return r;
}

static uint16_t sig_hash(const TPMT_SIGNATURE *s) {
        return s->sigAlg == TPM2_ALG_ECDSA ? s->signature.ecdsa.hash : s->signature.rsassa.hash;
}

uint32_t vc_quote_attested(const vc_quote_result *r, uint16_t bank) {
        int i = vc_alg_index(bank);
        return r->status == VC_QUOTE_VALID && i >= 0 ? r->log_matched[i] : 0;
}

/* A PCR's value after TPM2_Startup(CLEAR) when nothing extended it (PC Client platform
 * TPM profile: PCRs 17-22 start at all ones until a dynamic launch resets them). */
static void reset_value(uint32_t pcr, size_t size, uint8_t *out) {
        memset(out, pcr >= 17 && pcr <= 22 ? 0xff : 0, size);
}

/* The PCRs 0-23 a selection selects. */
static uint32_t selected_mask(const TPMS_PCR_SELECTION *sel) {
        uint32_t mask = 0;
        for (uint32_t pcr = 0; pcr < VC_PCR_COUNT && pcr < sel->sizeofSelect * 8u; pcr++)
                if (sel->pcrSelect[pcr / 8] & (1u << (pcr % 8)))
                        mask |= 1u << pcr;
        return mask;
}

uint32_t vc_quote_banks(const vc_quote *q) {
        const TPML_PCR_SELECTION *sel = &q->attest.attested.quote.pcrSelect;
        uint32_t banks = 0;
        for (uint32_t i = 0; i < sel->count && i < TPM2_NUM_PCR_BANKS; i++) {
                int b = vc_alg_index(sel->pcrSelections[i].hash);
                if (b >= 0 && selected_mask(&sel->pcrSelections[i]))
                        banks |= 1u << b;
        }
        return banks;
}

/* Is it the AK's TPM's quote: magic, type, the AK a restricted signing key (when its
 * TPMT_PUBLIC is known) of the signature's scheme, the signature. 1 yes, 0 failed with
 * ret set, <0 error. */
static int check_signed(const vc_quote *q, const vc_ak *ak, const vc_quote_policy *policy, vc_quote_result *ret) {
        const TPMS_ATTEST *a = &q->attest;
        int r;
        if (a->magic != TPM2_GENERATED_VALUE)
                return fail(ret, VC_QUOTE_CHECK_MAGIC, "magic 0x%08x, expected TPM_GENERATED_VALUE 0xff544347",
                            a->magic);
        if (a->type != TPM2_ST_ATTEST_QUOTE)
                return fail(ret, VC_QUOTE_CHECK_TYPE, "attestation type 0x%04x, expected TPM_ST_ATTEST_QUOTE 0x8018",
                            a->type);
        if (ak->has_public && ((ak->public.objectAttributes & TPMA_OBJECT_RESTRICTED) == 0 ||
                               (ak->public.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) == 0))
                return fail(ret, VC_QUOTE_CHECK_AK_ATTRIBUTES,
                            "AK attributes 0x%08x: a quote key must be restricted and sign", ak->public.objectAttributes);
        vc_signature_check bad;
        r = vc_ak_verify_signature(ak, q->attest_bytes, q->attest_len, &q->sig, policy && policy->allow_sha1, &bad,
                                   ret->reason, sizeof(ret->reason));
        if (r == 0) {
                ret->status = VC_QUOTE_INVALID;
                ret->failed = bad == VC_SIGNATURE_SCHEME ? VC_QUOTE_CHECK_SCHEME : VC_QUOTE_CHECK_SIGNATURE;
        }
        return r;
}

/* qualifiedSigner is the AK's Qualified Name (TPM 2.0 Part 1, 16.6: a hash chain over its
 * parents), not its Name: it is checked only against a value the caller knows (qsigner
 * not NULL). extraData is the nonce. 1 both match, 0 failed with ret set. */
static int check_signer_and_nonce(const TPMS_ATTEST *a, const uint8_t *qsigner, size_t qsigner_len,
                                  const uint8_t *nonce, size_t nonce_len, vc_quote_result *ret) {
        char h1[129], h2[129];
        if (qsigner && (a->qualifiedSigner.size != qsigner_len ||
                        memcmp(a->qualifiedSigner.name, qsigner, qsigner_len) != 0)) {
                hex_short(a->qualifiedSigner.name, a->qualifiedSigner.size, h1);
                hex_short(qsigner, qsigner_len, h2);
                return fail(ret, VC_QUOTE_CHECK_SIGNER, "qualifiedSigner %s is not the expected %s", h1, h2);
        }
        if (a->extraData.size != nonce_len || (nonce_len && memcmp(a->extraData.buffer, nonce, nonce_len) != 0)) {
                hex_short(a->extraData.buffer, a->extraData.size, h1);
                hex_short(nonce, nonce_len, h2);
                return fail(ret, VC_QUOTE_CHECK_NONCE, "extraData \"%s\" is not the expected nonce \"%s\"", h1, h2);
        }
        return 1;
}

/* pcrDigest = H_sig(PCR values in selection order), TPM 2.0 Part 3, 18.4: the digest of
 * the supplied values into md (1), or 0 with ret set when one is missing, or <0. */
static int pcr_digest(const vc_quote *q, const vc_pcr_set *pcrs, const EVP_MD *md_alg, uint8_t *md, unsigned *md_len,
                      vc_quote_result *ret) {
        const TPMS_QUOTE_INFO *qi = &q->attest.attested.quote;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int r = 1;
        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestInit_ex2(ctx, md_alg, NULL) != 1)
                r = -EIO;
        for (uint32_t i = 0; r == 1 && i < qi->pcrSelect.count; i++) {
                const TPMS_PCR_SELECTION *sel = &qi->pcrSelect.pcrSelections[i];
                const vc_alg_info *ba = vc_alg_lookup(sel->hash);
                const vc_pcr_bank *bank = vc_pcr_set_find(pcrs, sel->hash);
                for (uint32_t pcr = 0; r == 1 && pcr < sel->sizeofSelect * 8u; pcr++) {
                        if (!(sel->pcrSelect[pcr / 8] & (1u << (pcr % 8))))
                                continue;
                        if (!ba)
                                r = fail(ret, VC_QUOTE_CHECK_PCR_MISSING,
                                         "quote selects bank 0x%04x, which this verifier does not know", sel->hash);
                        else if (!bank || pcr >= VC_PCR_COUNT || !(bank->mask & (1u << pcr)))
                                r = fail(ret, VC_QUOTE_CHECK_PCR_MISSING,
                                         "quote selects %s PCR %u, but no value for it was supplied", ba->name, pcr);
                        else if (EVP_DigestUpdate(ctx, bank->values[pcr], bank->size) != 1)
                                r = -EIO;
                }
        }
        if (r == 1 && EVP_DigestFinal_ex(ctx, md, md_len) != 1)
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        return r;
}

/* The quote selects some PCR, each has a value in pcrs, and pcrDigest is theirs; the
 * selection goes into ret->quoted. 1 yes, 0 failed with ret set, <0 error. */
static int check_pcr_digest(const vc_quote *q, const vc_pcr_set *pcrs, vc_quote_result *ret) {
        const TPMS_QUOTE_INFO *qi = &q->attest.attested.quote;
        const vc_alg_info *ha = vc_alg_lookup(sig_hash(&q->sig));
        uint8_t md[VC_MAX_DIGEST];
        unsigned md_len = 0;
        char h1[129], h2[129];
        int r = pcr_digest(q, pcrs, EVP_get_digestbyname(ha->ossl_name), md, &md_len, ret);
        if (r <= 0)
                return r;
        uint32_t n_selected = 0;
        for (uint32_t i = 0; i < qi->pcrSelect.count; i++) {
                uint32_t mask = selected_mask(&qi->pcrSelect.pcrSelections[i]);
                int bi = vc_alg_index(qi->pcrSelect.pcrSelections[i].hash);
                n_selected += (uint32_t) __builtin_popcount(mask);
                if (bi >= 0)
                        ret->quoted[bi] |= mask;
        }
        if (n_selected == 0)
                return fail(ret, VC_QUOTE_CHECK_PCR_MISSING, "the quote selects no PCR: it attests nothing");
        if (qi->pcrDigest.size != md_len || memcmp(qi->pcrDigest.buffer, md, md_len) != 0) {
                hex_short(qi->pcrDigest.buffer, qi->pcrDigest.size, h1);
                hex_short(md, md_len, h2);
                return fail(ret, VC_QUOTE_CHECK_PCR_DIGEST,
                            "pcrDigest %s is not the %s of the supplied PCR values (%s)", h1, ha->name, h2);
        }
        return 1;
}

/* One quoted bank against the log's replay of it: each selected PCR the log extends must
 * equal the replayed value, and one it does not extend its reset value, except PCRs 8-23
 * (noted as unexplained). 1 yes, 0 failed with ret set. */
static int check_bank_against_log(const vc_pcr_bank *bank, const vc_pcr_bank *rb, uint16_t hash, uint32_t selected,
                                  vc_quote_result *ret) {
        const char *name = vc_alg_lookup(hash)->name;
        int bi = vc_alg_index(hash);
        char h1[129], h2[129];
        for (uint32_t pcr = 0; pcr < VC_PCR_COUNT; pcr++) {
                uint8_t reset[VC_MAX_DIGEST];
                bool logged = rb->mask & (1u << pcr);
                if (!(selected & (1u << pcr)))
                        continue;
                reset_value(pcr, bank->size, reset);
                const uint8_t *want = logged ? rb->values[pcr] : reset;
                if (memcmp(want, bank->values[pcr], bank->size) == 0) {
                        ret->log_matched[bi] |= 1u << pcr;
                        ret->n_pcrs_compared_to_log++;
                        continue;
                }
                if (!logged && pcr > 7) {
                        ret->log_unexplained[bi] |= 1u << pcr;
                        continue;
                }
                hex_short(bank->values[pcr], bank->size, h1);
                hex_short(want, bank->size, h2);
                return fail(ret, VC_QUOTE_CHECK_EVENTLOG, "%s PCR %u is %s in the quote but the event log %s %s", name,
                            pcr, h1, logged ? "replays to" : "does not extend it from its reset value", h2);
        }
        return 1;
}

/* The event log must account for every quoted PCR it extends, and for PCRs 0-7, which
 * UEFI firmware always measures (PFP 1.05 section 3.3.4). 1 yes, 0 failed with ret set. */
static int check_against_log(const vc_quote *q, const vc_pcr_set *pcrs, const vc_pcr_set *replayed,
                             vc_quote_result *ret) {
        const TPMS_QUOTE_INFO *qi = &q->attest.attested.quote;
        uint32_t all_quoted = 0, all_logged = 0;
        for (uint32_t i = 0; i < qi->pcrSelect.count; i++) {
                const TPMS_PCR_SELECTION *sel = &qi->pcrSelect.pcrSelections[i];
                const vc_pcr_bank *rb = vc_pcr_set_find(replayed, sel->hash);
                uint32_t selected = selected_mask(sel);
                if (!selected)
                        continue;
                if (!rb)
                        return fail(ret, VC_QUOTE_CHECK_EVENTLOG,
                                    "the event log has no %s digests, but the quote covers that bank",
                                    vc_alg_lookup(sel->hash)->name);
                all_quoted |= selected;
                all_logged |= rb->mask;
                int r = check_bank_against_log(vc_pcr_set_find(pcrs, sel->hash), rb, sel->hash, selected, ret);
                if (r <= 0)
                        return r;
        }
        ret->log_unquoted_mask = all_logged & ~all_quoted;
        return 1;
}

int vc_quote_verify(const vc_quote *q, const vc_ak *ak, const vc_pcr_set *pcrs, const uint8_t *nonce,
                    size_t nonce_len, const uint8_t *qsigner, size_t qsigner_len, const vc_pcr_set *replayed,
                    const vc_quote_policy *policy, vc_quote_result *ret) {
        const TPMS_ATTEST *a = &q->attest;
        int r;

        *ret = (vc_quote_result) { 0 };
        if ((r = check_signed(q, ak, policy, ret)) <= 0 ||
            (r = check_signer_and_nonce(a, qsigner, qsigner_len, nonce, nonce_len, ret)) <= 0)
                return r;
        /* signed by the AK over this nonce: the clock fields are the TPM's, whatever the
         * PCR checks below say (a verdict for a PCR mismatch still names the boot) */
        ret->clock = a->clockInfo.clock;
        ret->reset_count = a->clockInfo.resetCount;
        ret->restart_count = a->clockInfo.restartCount;
        if ((r = check_pcr_digest(q, pcrs, ret)) <= 0 || (replayed && (r = check_against_log(q, pcrs, replayed, ret)) <= 0))
                return r;
        ret->safe = a->clockInfo.safe;
        ret->firmware_version = a->firmwareVersion;
        ret->status = VC_QUOTE_VALID;
        ret->failed = VC_QUOTE_CHECK_NONE;
        return 0;
}
