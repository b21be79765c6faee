/* SPDX-License-Identifier: Apache-2.0 */
/* The CPU of a device certificate's renewal in-process (issue 19): what vouchd does for an
 * attestation that proves a device key, on top of the attestation, part by part, as
 * session.c calls them: devcert_check (the TPM2_Certify by the AK over the challenge:
 * parse, the AK's signature, the qualifying data, the key's Name and attributes, the key
 * made from its point; the parse and the key from its point are also timed alone),
 * devcert_key_digest (Verdict.device_key), devcert_issue (the certificate signed by the
 * device CA) and the VerdictNotice with the certificate and the CA's after the verdict
 * (devcert_frame_notice), next to the notice without them. Each part is printed next to the
 * AK signature check alone (vc_ak_verify_signature over the certify: what the quote's own
 * signature check costs). Thread CPU per operation, the parts interleaved in ~20 ms rounds
 * so that load falls on all of them alike. The store's row, the TLS record and the CRL's
 * share are not here: bench/run --device-certs both measures the whole in a running vouchd.
 * Timing is printed, never checked.
 *
 *   bench-devcert [--seconds S]     (default 2: CPU seconds of the reference part) */
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include "certify.h"
#include "credential.h"
#include "devcert.h"
#include "tpmkey.h"
#include "vouchd.h"
#include "wire.h"

static double thread_cpu_ns(void) {
        struct timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return (double) t.tv_sec * 1e9 + (double) t.tv_nsec;
}

/* An ECC P-256 TPMT_PUBLIC of key with attrs (and, for a restricted key, ECDSA SHA-256). */
static int ecc_public(EVP_PKEY *key, uint32_t attrs, TPMT_PUBLIC *p) {
        BIGNUM *x = NULL, *y = NULL;
        *p = (TPMT_PUBLIC) { .type = TPM2_ALG_ECC, .nameAlg = TPM2_ALG_SHA256, .objectAttributes = attrs };
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        if (attrs & TPMA_OBJECT_RESTRICTED) {
                p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
                p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        }
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        int ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
                 EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
                 BN_bn2binpad(x, p->unique.ecc.x.buffer, 32) == 32 && BN_bn2binpad(y, p->unique.ecc.y.buffer, 32) == 32;
        p->unique.ecc.x.size = p->unique.ecc.y.size = 32;
        BN_free(x);
        BN_free(y);
        return ok ? 0 : -EIO;
}

/* ECDSA P-256 over SHA-256(msg) by key, as a marshalled TPMT_SIGNATURE. */
static int sign_tpm(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t *out, size_t cap, size_t *out_len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t der[80];
        size_t dl = sizeof(der), off = 0;
        ECDSA_SIG *es = NULL;
        int r = -EIO;
        const unsigned char *p = der;
        if (!ctx || EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
            EVP_DigestSign(ctx, der, &dl, msg, len) != 1 || !(es = d2i_ECDSA_SIG(NULL, &p, (long) dl)))
                goto out;
        TPMT_SIGNATURE s = { .sigAlg = TPM2_ALG_ECDSA };
        s.signature.ecdsa.hash = TPM2_ALG_SHA256;
        s.signature.ecdsa.signatureR.size = s.signature.ecdsa.signatureS.size = 32;
        if (BN_bn2binpad(ECDSA_SIG_get0_r(es), s.signature.ecdsa.signatureR.buffer, 32) == 32 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(es), s.signature.ecdsa.signatureS.buffer, 32) == 32 &&
            Tss2_MU_TPMT_SIGNATURE_Marshal(&s, out, cap, &off) == TSS2_RC_SUCCESS) {
                *out_len = off;
                r = 0;
        }
out:
        ECDSA_SIG_free(es);
        EVP_MD_CTX_free(ctx);
        return r;
}

/* One device's proof as vouch-agent sends it, and what vouchd holds to check it. */
typedef struct bench {
        vouchd d;
        vc_ak *ak;
        uint8_t nonce[32];
        uint8_t pub[sizeof(TPMT_PUBLIC)], attest[sizeof(TPMS_ATTEST)], sig[sizeof(TPMT_SIGNATURE)];
        size_t pub_len, attest_len, sig_len;
        vc_certify *certify;    /* parsed once, for the signature check alone */
        devcert_proof proof;    /* a valid proof's key, for the parts after the check */
        uint8_t record[420];    /* a signed verdict's size (bench-verdict: ~410 bytes) */
        int64_t now;
        const char *device_id;
} bench;

static int setup(bench *b, const char *dir) {
        EVP_PKEY *ak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *dk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        TPMT_PUBLIC akp, dkp;
        uint8_t akb[sizeof(TPMT_PUBLIC)], ak_name[34], dk_name[34];
        size_t akb_len = 0, name_len = 0;
        char err[600];
        vc_error verr;
        int r = -EIO;
        if (!ak || !dk ||
            ecc_public(ak, TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                   TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT,
                       &akp) < 0 ||
            ecc_public(dk, TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                                   TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT,
                       &dkp) < 0 ||
            Tss2_MU_TPMT_PUBLIC_Marshal(&akp, akb, sizeof(akb), &akb_len) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPMT_PUBLIC_Marshal(&dkp, b->pub, sizeof(b->pub), &b->pub_len) != TSS2_RC_SUCCESS ||
            vc_public_name(&akp, ak_name, &name_len) < 0 || vc_public_name(&dkp, dk_name, &name_len) < 0 ||
            vc_ak_load(akb, akb_len, &b->ak, &verr) < 0)
                goto out;
        /* TPM2_Certify of the device key by the AK over the challenge (agent/agent.c) */
        TPMS_ATTEST at = { .magic = TPM2_GENERATED_VALUE, .type = TPM2_ST_ATTEST_CERTIFY };
        at.qualifiedSigner.size = sizeof(ak_name);
        memcpy(at.qualifiedSigner.name, ak_name, sizeof(ak_name));
        RAND_bytes(b->nonce, sizeof(b->nonce));
        at.extraData.size = VC_CERTIFY_QUALIFYING_SIZE;
        at.clockInfo = (TPMS_CLOCK_INFO) { .clock = 123456, .resetCount = 3, .safe = TPM2_YES };
        at.firmwareVersion = 0x0000000100020003ull;
        at.attested.certify.name.size = at.attested.certify.qualifiedName.size = sizeof(dk_name);
        memcpy(at.attested.certify.name.name, dk_name, sizeof(dk_name));
        memcpy(at.attested.certify.qualifiedName.name, dk_name, sizeof(dk_name));
        if (vc_certify_qualifying_data(b->nonce, sizeof(b->nonce), at.extraData.buffer) < 0 ||
            Tss2_MU_TPMS_ATTEST_Marshal(&at, b->attest, sizeof(b->attest), &b->attest_len) != TSS2_RC_SUCCESS ||
            sign_tpm(ak, b->attest, b->attest_len, b->sig, sizeof(b->sig), &b->sig_len) < 0 ||
            vc_certify_parse(b->pub, b->pub_len, b->attest, b->attest_len, b->sig, b->sig_len, &b->certify, &verr) < 0)
                goto out;
        /* vouchd with --trust-domain and the device CA vouchd init makes */
        vouchd_init(&b->d);
        vlog_level = -1;
        b->d.cfg.state_dir = strdup(dir);
        b->d.cfg.trust_domain = strdup("bench.vouch.test");
        if (!b->d.cfg.state_dir || !b->d.cfg.trust_domain || devca_init_state_dir(dir, true, err, sizeof(err)) < 0 ||
            devcert_load(&b->d) < 0 || !devcert_issuing(&b->d)) {
                fprintf(stderr, "bench-devcert: no device CA in %s: %s\n", dir, err);
                goto out;
        }
        if (devcert_check(&b->d, b->ak, b->nonce, sizeof(b->nonce), b->pub, b->pub_len, b->attest, b->attest_len,
                          b->sig, b->sig_len, &b->proof) < 0 ||
            b->proof.state != DEVCERT_PROOF_VALID) {
                fprintf(stderr, "bench-devcert: the proof does not verify: %s\n", b->proof.why);
                goto out;
        }
        RAND_bytes(b->record, sizeof(b->record));
        b->now = (int64_t) time(NULL);
        b->device_id = "5b0d7ac8d8c0e5b8a4d2f0d6f9e1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3";
        r = 0;
out:
        EVP_PKEY_free(ak);
        EVP_PKEY_free(dk);
        return r;
}

static int part_ak_signature(bench *b) {
        vc_signature_check bad;
        char why[200];
        const vc_quote *q = b->certify->signed_attest;
        return vc_ak_verify_signature(b->ak, q->attest_bytes, q->attest_len, &q->sig, false, &bad, why, sizeof(why)) == 1
                       ? 0
                       : -EIO;
}

static int part_parse(bench *b) {
        vc_certify *c = NULL;
        vc_error err;
        int r = vc_certify_parse(b->pub, b->pub_len, b->attest, b->attest_len, b->sig, b->sig_len, &c, &err);
        vc_certify_free(c);
        return r;
}

static int part_key_from_point(bench *b) {
        EVP_PKEY *k = NULL;
        vc_error err;
        int r = vc_tpm_public_key(&b->certify->key, "device key", &k, &err);
        EVP_PKEY_free(k);
        return r;
}

static int part_check(bench *b) {
        devcert_proof p;
        int r = devcert_check(&b->d, b->ak, b->nonce, sizeof(b->nonce), b->pub, b->pub_len, b->attest, b->attest_len,
                              b->sig, b->sig_len, &p);
        if (r == 0 && p.state != DEVCERT_PROOF_VALID)
                r = -EIO;
        devcert_proof_done(&p);
        return r;
}

static int part_key_digest(bench *b) {
        uint8_t md[32];
        return devcert_key_digest(b->proof.key, md);
}

static int part_issue(bench *b) {
        vs_cert c = { 0 };
        char why[200];
        int r = devcert_issue(&b->d, b->device_id, b->proof.key, b->now, b->now + 180, &c, why, sizeof(why));
        vs_cert_done(&c);
        return r;
}

static vs_cert notice_cert;

static int part_notice_plain(bench *b) {
        uint8_t *f = NULL;
        size_t n = 0;
        int r = devcert_frame_notice(&b->d, b->record, sizeof(b->record), NULL, 0, &f, &n);
        free(f);
        return r;
}

static int part_notice_certs(bench *b) {
        uint8_t *f = NULL;
        size_t n = 0;
        int r = devcert_frame_notice(&b->d, b->record, sizeof(b->record), notice_cert.der, notice_cert.der_len, &f, &n);
        free(f);
        return r;
}

/* A renewal as session.c makes it with a verdict: all of the above in one. */
static int part_renewal(bench *b) {
        devcert_proof p;
        vs_cert c = { 0 };
        uint8_t md[32], *f = NULL;
        size_t n = 0;
        char why[200];
        int r = devcert_check(&b->d, b->ak, b->nonce, sizeof(b->nonce), b->pub, b->pub_len, b->attest, b->attest_len,
                              b->sig, b->sig_len, &p);
        if (r == 0 && p.state != DEVCERT_PROOF_VALID)
                r = -EIO;
        if (r == 0)
                r = devcert_key_digest(p.key, md);
        if (r == 0)
                r = devcert_issue(&b->d, b->device_id, p.key, b->now, b->now + 180, &c, why, sizeof(why));
        if (r == 0)
                r = devcert_frame_notice(&b->d, b->record, sizeof(b->record), c.der, c.der_len, &f, &n);
        free(f);
        vs_cert_done(&c);
        devcert_proof_done(&p);
        return r;
}

typedef struct part {
        const char *name, *what;
        int (*fn)(bench *b);
        double ns;
        unsigned long n;
} part;

int main(int argc, char **argv) {
        double seconds = 2;
        char dir[512], cmd[600];
        const char *tmp = getenv("TMPDIR");
        static bench b;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
                        seconds = strtod(argv[++i], NULL);
                else {
                        fprintf(stderr, "usage: bench-devcert [--seconds S]\n");
                        return 2;
                }
        }
        if (seconds <= 0 || seconds > 600) {
                fprintf(stderr, "bench-devcert: --seconds: more than 0, at most 600\n");
                return 2;
        }
        snprintf(dir, sizeof(dir), "%s/vouch-bench-devcert-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
                perror("bench-devcert: mkdtemp");
                return 1;
        }
        int rc = 1;
        char why[200];
        if (setup(&b, dir) < 0 || devcert_issue(&b.d, b.device_id, b.proof.key, b.now, b.now + 180, &notice_cert, why,
                                                sizeof(why)) < 0)
                goto out;
        part parts[] = {
                { .name = "ak-signature", .what = "the AK's ECDSA P-256 signature over the certify alone (the reference)", .fn = part_ak_signature },
                { .name = "parse", .what = "vc_certify_parse: the key's TPMT_PUBLIC, the TPMS_ATTEST, the signature", .fn = part_parse },
                { .name = "key-from-point", .what = "vc_tpm_public_key: an EVP_PKEY from the TPMT_PUBLIC's point (check runs it twice)", .fn = part_key_from_point },
                { .name = "check", .what = "devcert_check: parse, signature, qualifying data, Name, attributes, the key", .fn = part_check },
                { .name = "key-digest", .what = "devcert_key_digest: SHA-256 of the key's SPKI (Verdict.device_key)", .fn = part_key_digest },
                { .name = "issue", .what = "devcert_issue: the certificate built and signed by the device CA", .fn = part_issue },
                { .name = "notice", .what = "the VerdictNotice framed without the certificates", .fn = part_notice_plain },
                { .name = "notice-certs", .what = "the VerdictNotice framed with the certificate and the CA's", .fn = part_notice_certs },
                { .name = "renewal", .what = "all of it for one verdict, as session.c calls it", .fn = part_renewal },
        };
        size_t np = sizeof(parts) / sizeof(parts[0]);
        /* interleaved rounds of ~20 ms per part until each had its seconds */
        while (parts[0].ns < seconds * 1e9)
                for (size_t i = 0; i < np; i++) {
                        double t0 = thread_cpu_ns(), t;
                        do {
                                for (int k = 0; k < 8; k++)
                                        if (parts[i].fn(&b) < 0) {
                                                fprintf(stderr, "bench-devcert: %s failed\n", parts[i].name);
                                                goto out;
                                        }
                                parts[i].n += 8;
                        } while ((t = thread_cpu_ns()) - t0 < 20e6);
                        parts[i].ns += t - t0;
                }
        uint8_t *f = NULL;
        size_t plain = 0, with = 0;
        if (devcert_frame_notice(&b.d, b.record, sizeof(b.record), NULL, 0, &f, &plain) < 0)
                goto out;
        free(f);
        f = NULL;
        if (devcert_frame_notice(&b.d, b.record, sizeof(b.record), notice_cert.der, notice_cert.der_len, &f, &with) < 0)
                goto out;
        free(f);
        double ref = parts[0].ns / (double) parts[0].n / 1000;
        printf("bench-devcert: thread CPU per operation, parts interleaved in ~20 ms rounds, %.1f s of the first; "
               "certificate %zu bytes; VerdictNotice %zu -> %zu bytes\n",
               seconds, notice_cert.der_len, plain, with);
        printf("%-14s %10s %9s  %s\n", "part", "us/op", "x ak-sig", "what");
        for (size_t i = 0; i < np; i++) {
                double us = parts[i].ns / (double) parts[i].n / 1000;
                printf("%-14s %10.1f %9.2f  %s\n", parts[i].name, us, us / ref, parts[i].what);
        }
        rc = 0;
out:
        vs_cert_done(&notice_cert);
        devcert_proof_done(&b.proof);
        vc_certify_free(b.certify);
        vc_ak_free(b.ak);
        vouchd_free(&b.d);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                rc = 1;
        return rc;
}
