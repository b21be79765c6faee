/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes quote verification as the server runs it on a peer's submission: vc_ak_load,
 * vc_quote_parse, vc_pcrs_parse and, when all three succeed, vc_quote_verify.
 *
 * Input layout (integers little-endian; make-corpus.py writes it):
 *   byte 0     flags  bit 0: pass a qualifiedSigner to check: the AK's Name when it has
 *                            one, else the nonce bytes
 *                     bit 1: pass the PCR set as the replayed event log as well, with
 *                            changes to the bank the quote selects first (or the first bank):
 *                     bit 2:   PCR (tweak % 24) changed
 *                     bit 3:   PCR (tweak % 24) not extended
 *                     bit 4:   the bank left out
 *                     bit 5: allow SHA-1 (vc_quote_policy.allow_sha1)
 *   byte 1     tweak
 *   bytes 2-3  AK length           (PEM, TPM2B_PUBLIC or TPMT_PUBLIC)
 *   bytes 4-5  TPMS_ATTEST length
 *   bytes 6-7  TPMT_SIGNATURE length
 *   byte 8     nonce length
 *   then the AK, the TPMS_ATTEST, the TPMT_SIGNATURE and the nonce; the rest of the input
 *   is the PCR file (JSON or tpm2-tools serialized).
 * Inputs too short for their lengths are ignored.
 *
 * Checks: a parse failure leaves *ret alone and says why; a VALID verdict has no failed
 * check and is only given to a well-formed quote whose extraData is the nonce; an INVALID
 * one names the check and the reason; a VALID quote turns INVALID when one bit of the
 * TPMS_ATTEST, the signature, the nonce or a quoted PCR value is flipped. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "pcrs.h"
#include "quote.h"

#define HDR 9

enum {
        F_QSIGNER = 1 << 0,
        F_REPLAYED = 1 << 1,
        F_REPLAYED_CHANGED = 1 << 2,
        F_REPLAYED_MISSING = 1 << 3,
        F_REPLAYED_NO_BANK = 1 << 4,
        F_ALLOW_SHA1 = 1 << 5,
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

static vc_quote_status verify(const vc_quote *q, const vc_ak *ak, const vc_pcr_set *pcrs, const uint8_t *nonce,
                   size_t nonce_len, uint8_t flags, uint8_t tweak) {
        const uint8_t *qsigner = NULL;
        size_t qsigner_len = 0;
        vc_pcr_set *replayed = NULL;
        vc_quote_result res;

        if (flags & F_QSIGNER) {
                if (ak->has_public)
                        qsigner = ak->name, qsigner_len = ak->name_len;
                else
                        qsigner = nonce, qsigner_len = nonce_len;
        }
        if (flags & F_REPLAYED) {
                replayed = malloc(sizeof(*replayed));
                if (!replayed)
                        abort();
                *replayed = *pcrs;
                const TPML_PCR_SELECTION *sel = &q->attest.attested.quote.pcrSelect;
                vc_pcr_bank *b = NULL;
                if (q->attest.type == TPM2_ST_ATTEST_QUOTE && sel->count > 0)
                        b = (vc_pcr_bank *) vc_pcr_set_find(replayed, sel->pcrSelections[0].hash);
                if (!b && replayed->n_banks > 0)
                        b = &replayed->banks[0];
                if (b) {
                        unsigned pcr = tweak % VC_PCR_COUNT;
                        if (flags & F_REPLAYED_CHANGED)
                                b->values[pcr][0] ^= 1;
                        if (flags & F_REPLAYED_MISSING)
                                b->mask &= ~(1u << pcr);
                        if (flags & F_REPLAYED_NO_BANK) {
                                size_t i = (size_t) (b - replayed->banks);
                                memmove(b, b + 1, (replayed->n_banks - i - 1) * sizeof(*b));
                                replayed->n_banks--;
                        }
                }
        }

        vc_quote_policy policy = { .allow_sha1 = flags & F_ALLOW_SHA1 };
        /* without the flag, no policy: the defaults */
        int r = vc_quote_verify(q, ak, pcrs, nonce, nonce_len, qsigner, qsigner_len, replayed,
                                (flags & F_ALLOW_SHA1) ? &policy : NULL, &res);
        if (r < 0)
                FUZZ_CHECK(r == -ENOMEM || r == -EIO);
        else if (res.status == VC_QUOTE_VALID) {
                FUZZ_CHECK(res.failed == VC_QUOTE_CHECK_NONE);
                FUZZ_CHECK(q->attest.magic == TPM2_GENERATED_VALUE && q->attest.type == TPM2_ST_ATTEST_QUOTE);
                FUZZ_CHECK(q->attest.extraData.size == nonce_len &&
                           memcmp(q->attest.extraData.buffer, nonce, nonce_len) == 0);
                if (qsigner)
                        FUZZ_CHECK(q->attest.qualifiedSigner.size == qsigner_len);
                if (!(flags & F_ALLOW_SHA1)) /* the default policy refuses SHA-1 */
                        FUZZ_CHECK(q->sig.signature.any.hashAlg != TPM2_ALG_SHA1);
                /* per-bank coverage: what the quote selects, within the PCRs the set has */
                for (int i = 0; i < VC_NUM_ALGS; i++) {
                        FUZZ_CHECK((res.quoted[i] >> VC_PCR_COUNT) == 0);
                        FUZZ_CHECK((res.log_matched[i] & ~res.quoted[i]) == 0);
                        FUZZ_CHECK((res.log_unexplained[i] & ~res.quoted[i]) == 0);
                        if (!replayed)
                                FUZZ_CHECK(res.log_matched[i] == 0);
                        (void) vc_quote_attested(&res, vc_alg_at(i)->alg);
                }
        } else {
                FUZZ_CHECK(res.status == VC_QUOTE_INVALID);
                FUZZ_CHECK(res.failed != VC_QUOTE_CHECK_NONE);
                FUZZ_CHECK(memchr(res.reason, '\0', sizeof(res.reason)) && res.reason[0]);
        }
        (void) vc_quote_check_name(res.failed);
        free(replayed);
        return r < 0 ? VC_QUOTE_UNVERIFIED : res.status;
}

/* Verification with SHA-1 allowed: the tampering checks need the quotes that passed with it. */
static vc_quote_status verify_plain(const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
                                    const vc_ak *ak, const vc_pcr_set *pcrs, const uint8_t *nonce, size_t nonce_len) {
        static const vc_quote_policy allow_sha1 = { .allow_sha1 = true };
        vc_quote *q = NULL;
        vc_quote_result res;
        if (vc_quote_parse(attest, attest_len, sig, sig_len, &q, NULL) < 0)
                return VC_QUOTE_INVALID;
        int r = vc_quote_verify(q, ak, pcrs, nonce, nonce_len, NULL, 0, NULL, &allow_sha1, &res);
        vc_quote_free(q);
        return r < 0 ? VC_QUOTE_UNVERIFIED : res.status;
}

/* quotes/README.md: "any single flipped bit in quote, signature, PCR values or nonce must
 * make them invalid". For a valid quote, flip one bit (chosen by the input) of each. */
static void check_tampering(const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
                            const vc_ak *ak, const vc_pcr_set *pcrs, const uint8_t *nonce, size_t nonce_len,
                            uint64_t seed) {
        uint8_t *a = malloc(attest_len + 1), *s = malloc(sig_len + 1), n[256];
        vc_pcr_set *p = malloc(sizeof(*p));
        if (!a || !s || !p)
                abort();
        memcpy(a, attest, attest_len);
        memcpy(s, sig, sig_len);
        memcpy(n, nonce, nonce_len);
        *p = *pcrs;

        FUZZ_CHECK(verify_plain(a, attest_len, s, sig_len, ak, p, n, nonce_len) == VC_QUOTE_VALID);
        if (attest_len > 0) {
                size_t bit = (size_t) (seed % (attest_len * 8));
                a[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                FUZZ_CHECK(verify_plain(a, attest_len, s, sig_len, ak, p, n, nonce_len) != VC_QUOTE_VALID);
                a[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        }
        if (sig_len > 0) {
                size_t bit = (size_t) ((seed >> 20) % (sig_len * 8));
                s[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                FUZZ_CHECK(verify_plain(a, attest_len, s, sig_len, ak, p, n, nonce_len) != VC_QUOTE_VALID);
                s[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        }
        if (nonce_len > 0) {
                size_t bit = (size_t) ((seed >> 40) % (nonce_len * 8));
                n[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                FUZZ_CHECK(verify_plain(a, attest_len, s, sig_len, ak, p, n, nonce_len) != VC_QUOTE_VALID);
                n[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        } else {
                n[0] = (uint8_t) seed;
                FUZZ_CHECK(verify_plain(a, attest_len, s, sig_len, ak, p, n, 1) != VC_QUOTE_VALID);
        }
        /* every value the quote selects is covered by pcrDigest */
        vc_quote *q = NULL;
        FUZZ_CHECK(vc_quote_parse(attest, attest_len, sig, sig_len, &q, NULL) == 0);
        const TPML_PCR_SELECTION *sel = &q->attest.attested.quote.pcrSelect;
        for (uint32_t i = 0; i < sel->count; i++) {
                vc_pcr_bank *b = (vc_pcr_bank *) vc_pcr_set_find(p, sel->pcrSelections[i].hash);
                for (unsigned pcr = 0; b && pcr < VC_PCR_COUNT && pcr < sel->pcrSelections[i].sizeofSelect * 8u; pcr++) {
                        if (!(sel->pcrSelections[i].pcrSelect[pcr / 8] & (1u << (pcr % 8))))
                                continue;
                        unsigned bit = (unsigned) ((seed >> 50) % (b->size * 8u));
                        b->values[pcr][bit / 8] ^= (uint8_t) (1u << (bit % 8));
                        FUZZ_CHECK(verify_plain(a, attest_len, s, sig_len, ak, p, n, nonce_len) != VC_QUOTE_VALID);
                        b->values[pcr][bit / 8] ^= (uint8_t) (1u << (bit % 8));
                }
        }
        vc_quote_free(q);
        free(p);
        free(s);
        free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* tss2-mu logs every rejected structure to stderr; the user's TSS2_LOG still wins */
        setenv("TSS2_LOG", "all+none", 0);
        if (size < HDR)
                return 0;
        uint8_t flags = data[0], tweak = data[1];
        size_t ak_len = vc_le16(data + 2), attest_len = vc_le16(data + 4), sig_len = vc_le16(data + 6),
               nonce_len = data[8];
        size_t off = HDR;
        if (size - off < ak_len + attest_len + sig_len + nonce_len)
                return 0;
        const uint8_t *ak_buf = data + off;
        off += ak_len;
        const uint8_t *attest = data + off;
        off += attest_len;
        const uint8_t *sig = data + off;
        off += sig_len;
        const uint8_t *nonce = data + off;
        off += nonce_len;
        const uint8_t *pcr_file = data + off;
        size_t pcr_len = size - off;

        vc_ak *ak = NULL;
        vc_quote *q = NULL;
        vc_pcr_set *pcrs = malloc(sizeof(*pcrs));
        vc_error err;
        int r_ak, r_q, r_p;

        if (!pcrs)
                abort();

        r_ak = vc_ak_load(ak_buf, ak_len, &ak, &err);
        if (r_ak < 0) {
                check_error(r_ak, &err);
                FUZZ_CHECK(!ak);
        } else {
                FUZZ_CHECK(ak && ak->pkey);
                if (ak->has_public) {
                        const vc_alg_info *a = vc_alg_lookup(ak->public.nameAlg);
                        FUZZ_CHECK(a && ak->name_len == 2 + a->size);
                        FUZZ_CHECK(vc_be16(ak->name) == ak->public.nameAlg);
                }
        }

        r_q = vc_quote_parse(attest, attest_len, sig, sig_len, &q, &err);
        if (r_q < 0) {
                check_error(r_q, &err);
                FUZZ_CHECK(!q);
        } else {
                FUZZ_CHECK(q && q->attest_bytes);
                FUZZ_CHECK(q->attest_len == attest_len || q->attest_len + 2 == attest_len);
                FUZZ_CHECK(memcmp(q->attest_bytes, attest + (attest_len - q->attest_len), q->attest_len) == 0);
        }

        r_p = vc_pcrs_parse(pcr_file, pcr_len, pcrs, &err);
        if (r_p < 0)
                check_error(r_p, &err);

        if (r_ak == 0 && r_q == 0 && r_p == 0 &&
            verify(q, ak, pcrs, nonce, nonce_len, flags, tweak) == VC_QUOTE_VALID)
                check_tampering(attest, attest_len, sig, sig_len, ak, pcrs, nonce, nonce_len, fuzz_hash(data, size));

        vc_quote_free(q);
        vc_ak_free(ak);
        free(pcrs);
        return 0;
}
