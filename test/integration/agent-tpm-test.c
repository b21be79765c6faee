/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's TPM layer (agent/tpm.c) against a private swtpm, checked with the verifier's
 * core: EK certificates from NV against the swtpm's local CA, AK attributes, credential
 * activation (vc_make_credential -> va_tpm_activate), quotes and PCR reads
 * (va_tpm_quote/va_tpm_pcr_read -> vc_quote_verify), AK reload, and no leaked handles.
 * Driven by test-swtpm-agent-tpm.sh in two phases around a swtpm restart, then the device
 * key's (issue 19):
 *   agent-tpm-test enroll TCTI CA_DIR OTHER_TCTI OTHER_CA_DIR STATE_DIR
 *   agent-tpm-test reload TCTI STATE_DIR
 *   agent-tpm-test devkey TCTI STATE_DIR
 *   agent-tpm-test verify-certify AK KEY ATTEST SIGNATURE QUALIFYING_HEX WANT
 * enroll writes the EK and AK blobs to STATE_DIR (as the agent keeps them); reload, after
 * the TPM restarted, loads them again; devkey makes and certifies the device key
 * (va_tpm_devkey_*, checked with vc_certify_verify) and writes it as a TSS2 PRIVATE KEY
 * file for the script's OpenSSL (devkey.tss2.pem, its public key devkey.spki.pem);
 * verify-certify checks a certify tpm2-tools made (AK and KEY: TPM2B_PUBLIC files) against
 * the expected qualifying data QUALIFYING_HEX (tpm2_certify 5.4 always passes 00ff55aa),
 * expecting WANT ("valid" or a vc_certify_check_name()). Prints "ok"/"FAIL" lines and
 * "N passed, M failed". */
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tss2/tss2_mu.h>

#include "certify.h"
#include "credential.h"
#include "enroll.h"
#include "hash.h"
#include "keyfile.h"
#include "quote.h"
#include "tpm.h"
#include "tpmkey.h"

static unsigned n_pass, n_fail;

static void _printf_(2, 3) check(bool ok, const char *fmt, ...) {
        va_list ap;
        printf("%s - ", ok ? "ok  " : "FAIL");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
        if (ok)
                n_pass++;
        else
                n_fail++;
}

static _Noreturn void _printf_(1, 2) fatal(const char *fmt, ...) {
        va_list ap;
        printf("FAIL - fatal: ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n%u passed, %u failed\n", n_pass, n_fail + 1);
        exit(1);
}

/* ---------------------------------------------------------------------------------------
 * Files */

static size_t read_file(const char *dir, const char *name, uint8_t *buf, size_t cap) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "rb");
        if (!f)
                fatal("%s: %s", path, strerror(errno));
        size_t n = fread(buf, 1, cap, f);
        bool big = n == cap && fgetc(f) != EOF;
        fclose(f);
        if (big)
                fatal("%s: larger than %zu bytes", path, cap);
        return n;
}

static void write_file(const char *dir, const char *name, const uint8_t *buf, size_t len) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
                fatal("%s: cannot write", path);
}

static size_t marshal_public(const TPM2B_PUBLIC *p, uint8_t *buf, size_t cap) {
        size_t off = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Marshal(p, buf, cap, &off) != TSS2_RC_SUCCESS)
                fatal("marshal TPM2B_PUBLIC");
        return off;
}

static void save_public(const char *dir, const char *name, const TPM2B_PUBLIC *p) {
        uint8_t buf[sizeof(TPM2B_PUBLIC)];
        write_file(dir, name, buf, marshal_public(p, buf, sizeof(buf)));
}

static void save_private(const char *dir, const char *name, const TPM2B_PRIVATE *p) {
        uint8_t buf[sizeof(TPM2B_PRIVATE)];
        size_t off = 0;
        if (Tss2_MU_TPM2B_PRIVATE_Marshal(p, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
                fatal("marshal TPM2B_PRIVATE");
        write_file(dir, name, buf, off);
}

static void load_public(const char *dir, const char *name, TPM2B_PUBLIC *p) {
        uint8_t buf[sizeof(TPM2B_PUBLIC)];
        size_t n = read_file(dir, name, buf, sizeof(buf)), off = 0;
        memset(p, 0, sizeof(*p));
        if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, n, &off, p) != TSS2_RC_SUCCESS || off != n)
                fatal("%s/%s: not a TPM2B_PUBLIC", dir, name);
}

static void load_private(const char *dir, const char *name, TPM2B_PRIVATE *p) {
        uint8_t buf[sizeof(TPM2B_PRIVATE)];
        size_t n = read_file(dir, name, buf, sizeof(buf)), off = 0;
        memset(p, 0, sizeof(*p));
        if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, n, &off, p) != TSS2_RC_SUCCESS || off != n)
                fatal("%s/%s: not a TPM2B_PRIVATE", dir, name);
}

/* The CA files swtpm_localca creates: a self-signed root and the issuer it signs with. */
typedef struct ca_files {
        vc_ek_ca *root;            /* root only */
        vc_ek_ca *both;            /* root + issuer */
        uint8_t issuer_der[VC_EK_CERT_MAX];
        size_t issuer_len;
} ca_files;

static void ca_load(const char *dir, ca_files *ca) {
        static uint8_t root[64 << 10], issuer[64 << 10], both[128 << 10];
        size_t rl = read_file(dir, "swtpm-localca-rootca-cert.pem", root, sizeof(root));
        size_t il = read_file(dir, "issuercert.pem", issuer, sizeof(issuer));
        vc_error err;
        memcpy(both, root, rl);
        memcpy(both + rl, issuer, il);
        if (vc_ek_ca_load(root, rl, &ca->root, &err) < 0 || vc_ek_ca_load(both, rl + il, &ca->both, &err) < 0)
                fatal("%s: CA: %s", dir, err.msg);
        BIO *bio = BIO_new_mem_buf(issuer, (int) il);
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        uint8_t *p = ca->issuer_der;
        int n = x ? i2d_X509(x, NULL) : -1;
        if (n <= 0 || (size_t) n > sizeof(ca->issuer_der) || i2d_X509(x, &p) != n)
                fatal("%s/issuercert.pem: not a PEM certificate", dir);
        ca->issuer_len = (size_t) n;
        X509_free(x);
        BIO_free(bio);
}

static void ca_free(ca_files *ca) {
        vc_ek_ca_free(ca->root);
        vc_ek_ca_free(ca->both);
}

/* vc_ek_verify through the issuer as the intermediate, as vouchd sees an enrollment. */
static int ek_verify(const ca_files *ca, const va_ek *ek, const TPMT_PUBLIC *pub, vc_error *err) {
        const uint8_t *inter[] = { ca->issuer_der };
        const size_t inter_len[] = { ca->issuer_len };
        return vc_ek_verify(ca->root, ek->cert, ek->cert_len, inter, inter_len, 1, pub, time(NULL), err);
}

/* ---------------------------------------------------------------------------------------
 * TPM helpers */

static const char *ek_label(va_ek_type t) {
        return t == VA_EK_RSA_2048 ? "rsa" : t == VA_EK_ECC_P256 ? "ecc256" : t == VA_EK_ECC_P384 ? "ecc384" : "?";
}

static void name_of(const TPM2B_PUBLIC *p, uint8_t *name, size_t *len) {
        if (vc_public_name(&p->publicArea, name, len) < 0)
                fatal("vc_public_name");
}

/* TPM 2.0 Part 1, 16.6: QN(B) = nameAlg(B) || H_nameAlg(B)(QN(parent) || Name(B)); the
 * qualified name of a hierarchy is its handle. */
static void qualified_name(const uint8_t *parent_qn, size_t parent_len, const TPM2B_PUBLIC *p, uint8_t *out,
                           size_t *out_len) {
        uint8_t name[2 + VC_MAX_DIGEST], cat[2 * (2 + VC_MAX_DIGEST)];
        size_t nl;
        uint16_t alg = p->publicArea.nameAlg;
        name_of(p, name, &nl);
        memcpy(cat, parent_qn, parent_len);
        memcpy(cat + parent_len, name, nl);
        out[0] = (uint8_t) (alg >> 8);
        out[1] = (uint8_t) alg;
        if (vc_digest(alg, cat, parent_len + nl, out + 2) < 0)
                fatal("vc_digest");
        *out_len = 2 + vc_alg_lookup(alg)->size;
}

static void ak_qualified_name(const TPM2B_PUBLIC *ek, const TPM2B_PUBLIC *ak, uint8_t *out, size_t *out_len) {
        static const uint8_t endorsement[4] = { 0x40, 0x00, 0x00, 0x0b }; /* TPM_RH_ENDORSEMENT */
        uint8_t ek_qn[2 + VC_MAX_DIGEST];
        size_t ek_qn_len;
        qualified_name(endorsement, sizeof(endorsement), ek, ek_qn, &ek_qn_len);
        qualified_name(ek_qn, ek_qn_len, ak, out, out_len);
}

/* Makes a credential with a fresh secret for name under ek and activates it with t's AK.
 * Returns va_tpm_activate's result; *matched tells whether the secret came back. */
static int credential_round(va_tpm *t, const TPM2B_PUBLIC *ek, const uint8_t *name, size_t name_len, bool *matched,
                            vc_error *err) {
        uint8_t secret[32];
        TPM2B_ID_OBJECT blob;
        TPM2B_ENCRYPTED_SECRET enc;
        TPM2B_DIGEST got = { 0 };
        vc_credential_random rnd;
        vc_error merr;
        if (RAND_bytes(secret, sizeof(secret)) != 1 || RAND_bytes((uint8_t *) &rnd, sizeof(rnd)) != 1)
                fatal("RAND_bytes");
        if (vc_make_credential(&ek->publicArea, name, name_len, secret, sizeof(secret), &rnd, &blob, &enc, &merr) < 0)
                fatal("vc_make_credential: %s", merr.msg);
        int r = va_tpm_activate(t, &blob, &enc, &got, err);
        *matched = r == 0 && got.size == sizeof(secret) && memcmp(got.buffer, secret, sizeof(secret)) == 0;
        explicit_bzero(&got, sizeof(got));
        return r;
}

static TPML_PCR_SELECTION sha256_0_7_16(void) {
        TPML_PCR_SELECTION s = { 0 };
        s.count = 1;
        s.pcrSelections[0].hash = TPM2_ALG_SHA256;
        s.pcrSelections[0].sizeofSelect = 3;
        s.pcrSelections[0].pcrSelect[0] = 0xff;
        s.pcrSelections[0].pcrSelect[2] = 0x01;
        return s;
}

typedef struct quote_check {
        int r;                     /* va_tpm_quote / va_tpm_pcr_read / parse result */
        vc_quote_result res;
        char msg[400];
} quote_check;

/* Quotes with nonce, reads the PCRs (after extend_16 extends PCR 16 when set) and verifies
 * with verify_nonce and the AK public pub, expecting qualifiedSigner qn. */
static void quote_and_verify(va_tpm *t, const TPM2B_PUBLIC *pub, const uint8_t *qn, size_t qn_len,
                             const uint8_t *nonce, const uint8_t *verify_nonce, bool extend_16, quote_check *out) {
        TPML_PCR_SELECTION sel = sha256_0_7_16();
        static va_quote q;
        static vc_pcr_set pcrs;
        uint8_t pubbuf[sizeof(TPM2B_PUBLIC)];
        vc_ak *ak = NULL;
        vc_quote *vq = NULL;
        vc_error err = { 0 };

        memset(out, 0, sizeof(*out));
        out->r = va_tpm_quote(t, &sel, nonce, 32, &q, &err);
        if (out->r < 0)
                goto done;
        if (extend_16) {
                TPML_DIGEST_VALUES d = { .count = 1 };
                d.digests[0].hashAlg = TPM2_ALG_SHA256;
                memset(d.digests[0].digest.sha256, 0x5a, 32);
                out->r = va_tpm_pcr_extend(t, 16, &d, &err);
                if (out->r < 0)
                        goto done;
        }
        out->r = va_tpm_pcr_read(t, &sel, &pcrs, &err);
        if (out->r < 0)
                goto done;
        out->r = vc_ak_load(pubbuf, marshal_public(pub, pubbuf, sizeof(pubbuf)), &ak, &err);
        if (out->r < 0)
                goto done;
        out->r = vc_quote_parse(q.attest, q.attest_len, q.sig, q.sig_len, &vq, &err);
        if (out->r < 0)
                goto done;
        out->r = vc_quote_verify(vq, ak, &pcrs, verify_nonce, 32, qn, qn_len, NULL, NULL, &out->res);
        snprintf(out->msg, sizeof(out->msg), "%s", out->res.reason);
done:
        if (out->r < 0)
                snprintf(out->msg, sizeof(out->msg), "error %d: %s", out->r, err.msg);
        vc_quote_free(vq);
        vc_ak_free(ak);
}

static bool quote_valid(const quote_check *c) {
        return c->r == 0 && c->res.status == VC_QUOTE_VALID;
}

static void check_handles(va_tpm *t, uint32_t want_objects, const char *when) {
        uint32_t objects = 0, sessions = 0;
        vc_error err;
        int r = va_tpm_handle_counts(t, &objects, &sessions, &err);
        check(r == 0 && objects == want_objects && sessions == 0,
              "%s: %u transient objects (want %u) and %u sessions (want 0) in the TPM%s%s", when, objects,
              want_objects, sessions, r < 0 ? ": " : "", r < 0 ? err.msg : "");
}

static va_tpm *open_tpm(const char *tcti) {
        va_tpm *t = NULL;
        vc_error err;
        if (va_tpm_open(tcti, &t, &err) < 0)
                fatal("va_tpm_open(%s): %s", tcti, err.msg);
        return t;
}

/* ---------------------------------------------------------------------------------------
 * Phase 1: enrollment */

static void enroll_one(va_tpm *t, va_ek_type ask, va_ek_type want, const ca_files *ca, const ca_files *other_ca,
                       const va_ek *other_ek, const char *state) {
        const char *L = ek_label(want);
        va_ek ek = { 0 };
        TPM2B_PUBLIC ak_pub, akb_pub;
        TPM2B_PRIVATE ak_priv, akb_priv;
        uint8_t ak_name[2 + VC_MAX_DIGEST], akb_name[2 + VC_MAX_DIGEST], qn[2 + VC_MAX_DIGEST];
        size_t ak_name_len, akb_name_len, qn_len;
        uint8_t nonce[32], other_nonce[32];
        quote_check qc;
        bool matched;
        vc_error err;
        int r;

        r = va_tpm_ek(t, ask, &ek, &err);
        if (r < 0)
                fatal("%s: va_tpm_ek: %s", L, err.msg);
        check(ek.type == want && ek.cert_len > 0 && ek.cert_index == (want == VA_EK_RSA_2048 ? 0x01c00002u : 0x01c00016u),
              "%s EK: template %s, certificate of %zu bytes read from NV 0x%08x", L, ek_label(ek.type), ek.cert_len,
              ek.cert_index);

        /* The certificate chain. */
        r = ek_verify(ca, &ek, &ek.public.publicArea, &err);
        check(r == 0, "%s EK: certificate verifies against the swtpm's root CA through its issuer and matches the EK%s%s",
              L, r ? ": " : "", r ? err.msg : "");
        const uint8_t *chain[VA_EK_CHAIN_MAX];
        for (size_t i = 0; i < ek.n_chain; i++)
                chain[i] = ek.chain[i];
        r = vc_ek_verify(ca->root, ek.cert, ek.cert_len, chain, ek.chain_len, ek.n_chain, &ek.public.publicArea,
                         time(NULL), &err);
        check(r == 0 && ek.n_chain == 2 && ek.chain_len[0] == ca->issuer_len &&
                      memcmp(ek.chain[0], ca->issuer_der, ca->issuer_len) == 0 && other_ek->n_chain == 0,
              "%s EK: the chain stored in NV (issuer padded, root) is read as 2 certificates and completes the "
              "path to the root (%zu in NV)%s%s", L, ek.n_chain, r ? ": " : "", r ? err.msg : "");
        r = vc_ek_verify(ca->both, ek.cert, ek.cert_len, NULL, NULL, 0, &ek.public.publicArea, time(NULL), &err);
        check(r == 0, "%s EK: certificate verifies with root + issuer in the CA bundle%s%s", L, r ? ": " : "",
              r ? err.msg : "");
        r = vc_ek_verify(ca->root, ek.cert, ek.cert_len, NULL, NULL, 0, &ek.public.publicArea, time(NULL), &err);
        check(r == -EPERM, "%s EK: without the issuer the root alone does not verify it (%d: %s)", L, r, err.msg);
        r = ek_verify(other_ca, &ek, &ek.public.publicArea, &err);
        check(r == -EPERM, "%s EK: another swtpm's CA refuses the certificate (%d: %s)", L, r, err.msg);
        r = ek_verify(other_ca, other_ek, &other_ek->public.publicArea, &err);
        check(r == 0, "%s EK: the other swtpm's certificate verifies against its own CA%s%s", L, r ? ": " : "",
              r ? err.msg : "");
        r = ek_verify(ca, other_ek, &other_ek->public.publicArea, &err);
        check(r == -EPERM, "%s EK: a certificate from another swtpm's CA is refused (%d: %s)", L, r, err.msg);
        r = ek_verify(ca, &ek, &other_ek->public.publicArea, &err);
        check(r == -EPERM, "%s EK: the certificate does not vouch for another TPM's EK (%d: %s)", L, r, err.msg);

        /* Two AKs: B (ECC) first, then A (RSA), which stays loaded. */
        r = va_tpm_ak_create(t, VA_AK_ECC_P256, &akb_pub, &akb_priv, &err);
        if (r < 0)
                fatal("%s: va_tpm_ak_create(ECC): %s", L, err.msg);
        r = va_tpm_ak_create(t, VA_AK_RSA_2048, &ak_pub, &ak_priv, &err);
        if (r < 0)
                fatal("%s: va_tpm_ak_create(RSA): %s", L, err.msg);
        r = vc_ak_check_attributes(&ak_pub.publicArea, &err);
        check(r == 0 && ak_pub.publicArea.type == TPM2_ALG_RSA &&
                      ak_pub.publicArea.parameters.rsaDetail.scheme.scheme == TPM2_ALG_RSASSA,
              "%s EK: RSA AK (RSASSA-SHA256) passes vc_ak_check_attributes%s%s", L, r ? ": " : "", r ? err.msg : "");
        r = vc_ak_check_attributes(&akb_pub.publicArea, &err);
        check(r == 0 && akb_pub.publicArea.type == TPM2_ALG_ECC,
              "%s EK: ECC P-256 AK (ECDSA-SHA256) passes vc_ak_check_attributes%s%s", L, r ? ": " : "",
              r ? err.msg : "");
        name_of(&ak_pub, ak_name, &ak_name_len);
        name_of(&akb_pub, akb_name, &akb_name_len);

        /* Credential activation. */
        r = credential_round(t, &ek.public, ak_name, ak_name_len, &matched, &err);
        check(r == 0 && matched, "%s EK: the credential made for the AK's name is activated, same secret%s%s", L,
              r ? ": " : "", r ? err.msg : "");
        r = credential_round(t, &ek.public, akb_name, akb_name_len, &matched, &err);
        check(r == -EBADMSG && !matched, "%s EK: a credential made for another AK's name is refused (%d: %s)", L, r,
              err.msg);

        /* Quotes with the RSA AK. */
        ak_qualified_name(&ek.public, &ak_pub, qn, &qn_len);
        if (RAND_bytes(nonce, 32) != 1 || RAND_bytes(other_nonce, 32) != 1)
                fatal("RAND_bytes");
        quote_and_verify(t, &ak_pub, qn, qn_len, nonce, nonce, false, &qc);
        check(quote_valid(&qc), "%s EK: RSA AK quote over sha256:0-7,16 verifies (qualifiedSigner = AK's qualified name "
                                "under the EK)%s%s", L, quote_valid(&qc) ? "" : ": ", quote_valid(&qc) ? "" : qc.msg);
        quote_and_verify(t, &ak_pub, qn, qn_len, nonce, other_nonce, false, &qc);
        check(qc.r == 0 && qc.res.status == VC_QUOTE_INVALID && qc.res.failed == VC_QUOTE_CHECK_NONCE,
              "%s EK: the quote is rejected for another nonce (%s)", L, qc.msg);
        quote_and_verify(t, &ak_pub, qn, qn_len, nonce, nonce, true, &qc);
        check(qc.r == 0 && qc.res.status == VC_QUOTE_INVALID && qc.res.failed == VC_QUOTE_CHECK_PCR_DIGEST,
              "%s EK: the quote is rejected when PCR 16 is extended after it (%s)", L, qc.msg);

        /* The ECC AK, reloaded from its blobs. */
        r = va_tpm_ak_load(t, &akb_pub, &akb_priv, &err);
        check(r == 0, "%s EK: the ECC AK loads from its saved blobs%s%s", L, r ? ": " : "", r ? err.msg : "");
        ak_qualified_name(&ek.public, &akb_pub, qn, &qn_len);
        quote_and_verify(t, &akb_pub, qn, qn_len, nonce, nonce, false, &qc);
        check(quote_valid(&qc), "%s EK: ECC AK quote verifies%s%s", L, quote_valid(&qc) ? "" : ": ",
              quote_valid(&qc) ? "" : qc.msg);
        r = credential_round(t, &ek.public, akb_name, akb_name_len, &matched, &err);
        check(r == 0 && matched, "%s EK: a credential for the ECC AK's name is activated with it%s%s", L,
              r ? ": " : "", r ? err.msg : "");

        check_handles(t, 2, ek_label(want));

        char fn[64];
        snprintf(fn, sizeof(fn), "ek-%s.pub", L);
        save_public(state, fn, &ek.public);
        snprintf(fn, sizeof(fn), "ak-%s-rsa.pub", L);
        save_public(state, fn, &ak_pub);
        snprintf(fn, sizeof(fn), "ak-%s-rsa.priv", L);
        save_private(state, fn, &ak_priv);
        snprintf(fn, sizeof(fn), "ak-%s-ecc.pub", L);
        save_public(state, fn, &akb_pub);
        snprintf(fn, sizeof(fn), "ak-%s-ecc.priv", L);
        save_private(state, fn, &akb_priv);
        va_ek_clear(&ek);
}

static void phase_enroll(const char *tcti, const char *ca_dir, const char *other_tcti, const char *other_ca_dir,
                         const char *state) {
        ca_files ca = { 0 }, other_ca = { 0 };
        va_ek other_rsa = { 0 }, other_ecc = { 0 }, ek = { 0 };
        va_tpm *t;
        vc_error err;
        int r;

        ca_load(ca_dir, &ca);
        ca_load(other_ca_dir, &other_ca);

        /* The other swtpm's EKs and certificates (its own CA). */
        t = open_tpm(other_tcti);
        if (va_tpm_ek(t, VA_EK_RSA_2048, &other_rsa, &err) < 0 || va_tpm_ek(t, VA_EK_ECC, &other_ecc, &err) < 0)
                fatal("other swtpm: va_tpm_ek: %s", err.msg);
        t = va_tpm_close(t);

        t = NULL;
        r = va_tpm_open("swtpm:host=127.0.0.1,port=1", &t, &err);
        check(r == -ECONNREFUSED && !t, "va_tpm_open: a TCTI with nothing listening is refused (%d: %s)", r, err.msg);

        t = open_tpm(tcti);
        check_handles(t, 0, "fresh swtpm");
        {
                TPML_PCR_SELECTION sel = sha256_0_7_16();
                va_quote q;
                static vc_pcr_set pcrs;
                r = va_tpm_quote(t, &sel, (const uint8_t *) "nonce", 5, &q, &err);
                check(r == -EINVAL, "quote without an AK is an error (%d: %s)", r, err.msg);
                sel.pcrSelections[0].hash = TPM2_ALG_SHA384;
                r = va_tpm_pcr_read(t, &sel, &pcrs, &err);
                check(r == -ENOENT, "PCR read of an inactive bank (sha384) is an error (%d: %s)", r, err.msg);
                sel = sha256_0_7_16();
                sel.count = 2;
                sel.pcrSelections[1].hash = TPM2_ALG_SHA1;
                sel.pcrSelections[1].sizeofSelect = 3;
                memset(sel.pcrSelections[1].pcrSelect, 0xff, 3);
                r = va_tpm_pcr_read(t, &sel, &pcrs, &err);
                const vc_pcr_bank *b1 = vc_pcr_set_find(&pcrs, TPM2_ALG_SHA1),
                                  *b256 = vc_pcr_set_find(&pcrs, TPM2_ALG_SHA256);
                check(r == 0 && b1 && b256 && b1->mask == 0xffffff && b256->mask == 0x100ff,
                      "PCR read of 33 PCRs in two banks (at most 8 per TPM2_PCR_Read) returns all of them%s%s",
                      r ? ": " : "", r ? err.msg : "");
        }

        enroll_one(t, VA_EK_RSA_2048, VA_EK_RSA_2048, &ca, &other_ca, &other_rsa, state);
        enroll_one(t, VA_EK_ECC, VA_EK_ECC_P384, &ca, &other_ca, &other_ecc, state);

        /* The ECC EK is loaded with its AK: a credential made under the RSA EK for that AK. */
        {
                TPM2B_PUBLIC rsa_ek, ecc_ak;
                uint8_t name[2 + VC_MAX_DIGEST];
                size_t nl;
                bool matched;
                load_public(state, "ek-rsa.pub", &rsa_ek);
                load_public(state, "ak-ecc384-ecc.pub", &ecc_ak);
                name_of(&ecc_ak, name, &nl);
                r = credential_round(t, &rsa_ek, name, nl, &matched, &err);
                check(r < 0 && !matched, "a credential made under another EK is refused (%d: %s)", r, err.msg);
        }

        /* The certificates fit in one TPM2_NV_Read of swtpm's 1024 bytes: read again in
         * 100-byte chunks. */
        {
                va_ek whole = { 0 };
                r = va_tpm_ek(t, VA_EK_RSA_2048, &whole, &err);
                if (r == 0)
                        r = va_tpm_set_nv_chunk_max(t, 100);
                if (r == 0)
                        r = va_tpm_ek(t, VA_EK_RSA_2048, &ek, &err);
                check(r == 0 && ek.cert_len == whole.cert_len && ek.cert_len > 300 &&
                              memcmp(ek.cert, whole.cert, ek.cert_len) == 0,
                      "RSA EK certificate read in 100-byte chunks (%zu bytes) equals the one read at once%s%s",
                      ek.cert_len, r ? ": " : "", r ? err.msg : "");
                va_ek_clear(&whole);
                va_ek_clear(&ek);
        }

        r = va_tpm_ek(t, VA_EK_AUTO, &ek, &err);
        check(r == 0 && ek.type == VA_EK_RSA_2048 && ek.cert_len > 0, "auto EK: picks RSA-2048, which has a certificate%s%s",
              r ? ": " : "", r ? err.msg : "");
        va_ek_clear(&ek);
        r = va_tpm_ek(t, VA_EK_ECC_P256, &ek, &err);
        check(r == 0 && ek.type == VA_EK_ECC_P256 && ek.cert_len == 0 && !ek.cert &&
                      ek.public.publicArea.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256,
              "explicit ECC P-256 EK without a certificate in NV: created, cert_len 0%s%s", r ? ": " : "",
              r ? err.msg : "");
        va_ek_clear(&ek);
        check_handles(t, 1, "after replacing EKs");
        t = va_tpm_close(t);

        t = open_tpm(tcti);
        check_handles(t, 0, "after va_tpm_close");
        va_tpm_close(t);

        va_ek_clear(&other_rsa);
        va_ek_clear(&other_ecc);
        ca_free(&ca);
        ca_free(&other_ca);
}

/* ---------------------------------------------------------------------------------------
 * Phase 2: after a TPM restart, the saved blobs */

static void reload_one(va_tpm *t, va_ek_type type, const char *state) {
        const char *L = ek_label(type);
        TPM2B_PUBLIC saved_ek, pubs[2];
        TPM2B_PRIVATE privs[2];
        uint8_t names[2][2 + VC_MAX_DIGEST], qns[2][2 + VC_MAX_DIGEST];
        size_t name_lens[2], qn_lens[2];
        va_ek ek = { 0 };
        char fn[64];
        vc_error err;
        unsigned ok_quotes = 0, ok_creds = 0, ok_refusals = 0;
        char first_failure[800] = "";
        int r;

        snprintf(fn, sizeof(fn), "ek-%s.pub", L);
        load_public(state, fn, &saved_ek);
        for (int i = 0; i < 2; i++) {
                snprintf(fn, sizeof(fn), "ak-%s-%s.pub", L, i ? "ecc" : "rsa");
                load_public(state, fn, &pubs[i]);
                snprintf(fn, sizeof(fn), "ak-%s-%s.priv", L, i ? "ecc" : "rsa");
                load_private(state, fn, &privs[i]);
                name_of(&pubs[i], names[i], &name_lens[i]);
                ak_qualified_name(&saved_ek, &pubs[i], qns[i], &qn_lens[i]);
        }

        r = va_tpm_ek(t, type, &ek, &err);
        if (r < 0)
                fatal("%s: va_tpm_ek: %s", L, err.msg);
        uint8_t a[sizeof(TPM2B_PUBLIC)], b[sizeof(TPM2B_PUBLIC)];
        size_t al = marshal_public(&ek.public, a, sizeof(a)), bl = marshal_public(&saved_ek, b, sizeof(b));
        check(al == bl && memcmp(a, b, al) == 0, "%s EK: after the restart the EK is the same key", L);

        r = va_tpm_ak_load(t, &pubs[0], &privs[0], &err);
        check(r == 0, "%s EK: the saved RSA AK loads after the restart%s%s", L, r ? ": " : "", r ? err.msg : "");
        bool matched;
        r = credential_round(t, &ek.public, names[0], name_lens[0], &matched, &err);
        check(r == 0 && matched, "%s EK: the reloaded AK activates a credential made for its name%s%s", L,
              r ? ": " : "", r ? err.msg : "");

        /* 20 rounds, alternating the two AKs: load, activate, refuse, quote, PCR read. */
        for (int i = 0; i < 20; i++) {
                int k = i % 2;
                uint8_t nonce[32];
                quote_check qc;
                char msg[700] = "";
                if (RAND_bytes(nonce, 32) != 1)
                        fatal("RAND_bytes");
                r = va_tpm_ak_load(t, &pubs[k], &privs[k], &err);
                if (r < 0)
                        snprintf(msg, sizeof(msg), "round %d: load: %s", i, err.msg);
                if (r == 0) {
                        r = credential_round(t, &ek.public, names[k], name_lens[k], &matched, &err);
                        if (r == 0 && matched)
                                ok_creds++;
                        else
                                snprintf(msg, sizeof(msg), "round %d: activate: %d %s", i, r, err.msg);
                        r = credential_round(t, &ek.public, names[1 - k], name_lens[1 - k], &matched, &err);
                        if (r == -EBADMSG)
                                ok_refusals++;
                        else
                                snprintf(msg, sizeof(msg), "round %d: refusal: %d %s", i, r, err.msg);
                        quote_and_verify(t, &pubs[k], qns[k], qn_lens[k], nonce, nonce, false, &qc);
                        if (quote_valid(&qc))
                                ok_quotes++;
                        else
                                snprintf(msg, sizeof(msg), "round %d: quote: %s", i, qc.msg);
                }
                if (msg[0] && !first_failure[0])
                        snprintf(first_failure, sizeof(first_failure), "%s", msg);
        }
        check(ok_quotes == 20 && ok_creds == 20 && ok_refusals == 20,
              "%s EK: 20 rounds of AK load + activation + refused activation + quote: %u quotes verified, %u "
              "credentials activated, %u refused%s%s",
              L, ok_quotes, ok_creds, ok_refusals, first_failure[0] ? "; first failure: " : "", first_failure);
        check_handles(t, 2, ek_label(type));

        /* Blobs the TPM must refuse: the AK made under the other EK, a damaged private part. */
        TPM2B_PUBLIC foreign_pub;
        TPM2B_PRIVATE foreign_priv, damaged = privs[0];
        snprintf(fn, sizeof(fn), "ak-%s-rsa.pub", ek_label(type == VA_EK_RSA_2048 ? VA_EK_ECC_P384 : VA_EK_RSA_2048));
        load_public(state, fn, &foreign_pub);
        fn[strlen(fn) - 3] = 0;
        strcat(fn, "priv");
        load_private(state, fn, &foreign_priv);
        r = va_tpm_ak_load(t, &foreign_pub, &foreign_priv, &err);
        check(r == -EBADMSG, "%s EK: an AK created under the other EK does not load (%d: %s)", L, r, err.msg);
        damaged.buffer[damaged.size / 2] ^= 0x01;
        r = va_tpm_ak_load(t, &pubs[0], &damaged, &err);
        check(r == -EBADMSG, "%s EK: an AK whose private blob was altered does not load (%d: %s)", L, r, err.msg);
        {
                TPML_PCR_SELECTION sel = sha256_0_7_16();
                static va_quote q;
                r = va_tpm_quote(t, &sel, (const uint8_t *) "nonce", 5, &q, &err);
                check(r == -EINVAL, "%s EK: after a failed load there is no AK to quote with (%d: %s)", L, r, err.msg);
        }
        check_handles(t, 1, ek_label(type));
        va_ek_clear(&ek);
}

/* The agent's rounds: the TPM opened for each one, the EK created again without reading NV
 * (va_tpm_ek_reload), the saved AK loaded, a quote; closing leaves nothing in the TPM. */
static void reopen_rounds(const char *tcti, va_ek_type type, const char *state) {
        const char *L = ek_label(type);
        TPM2B_PUBLIC ek_pub, ak_pub, other;
        TPM2B_PRIVATE ak_priv;
        uint8_t qn[2 + VC_MAX_DIGEST], nonce[32];
        size_t qn_len;
        char fn[64], first_failure[800] = "";
        unsigned ok = 0;
        vc_error err;
        int r;

        snprintf(fn, sizeof(fn), "ek-%s.pub", L);
        load_public(state, fn, &ek_pub);
        snprintf(fn, sizeof(fn), "ak-%s-rsa.pub", L);
        load_public(state, fn, &ak_pub);
        snprintf(fn, sizeof(fn), "ak-%s-rsa.priv", L);
        load_private(state, fn, &ak_priv);
        ak_qualified_name(&ek_pub, &ak_pub, qn, &qn_len);
        for (int i = 0; i < 5; i++) {
                va_tpm *t = open_tpm(tcti);
                quote_check qc = { 0 };
                if (RAND_bytes(nonce, 32) != 1)
                        fatal("RAND_bytes");
                r = va_tpm_ek_reload(t, type, &ek_pub, &err);
                if (r == 0)
                        r = va_tpm_ak_load(t, &ak_pub, &ak_priv, &err);
                if (r == 0)
                        quote_and_verify(t, &ak_pub, qn, qn_len, nonce, nonce, false, &qc);
                if (r == 0 && quote_valid(&qc))
                        ok++;
                else if (!first_failure[0])
                        snprintf(first_failure, sizeof(first_failure), "round %d: %d %s %s", i, r, r ? err.msg : "",
                                 qc.msg);
                va_tpm_close(t);
        }
        check(ok == 5, "%s EK: 5 rounds of open + EK reload + AK load + quote + close: %u quotes verified%s%s", L, ok,
              first_failure[0] ? "; first failure: " : "", first_failure);
        va_tpm *t = open_tpm(tcti);
        check_handles(t, 0, "after the rounds were closed");
        /* another EK than the one expected (as after a TPM clear): refused, nothing loaded */
        other = ek_pub;
        if (other.publicArea.type == TPM2_ALG_RSA)
                other.publicArea.unique.rsa.buffer[0] ^= 0x01;
        else
                other.publicArea.unique.ecc.x.buffer[0] ^= 0x01;
        r = va_tpm_ek_reload(t, type, &other, &err);
        check(r == -ESTALE, "%s EK: a reload expecting another EK is refused (%d: %s)", L, r, err.msg);
        r = va_tpm_ak_load(t, &ak_pub, &ak_priv, &err);
        check(r == -EINVAL, "%s EK: after the refused reload no EK is loaded (%d: %s)", L, r, err.msg);
        check_handles(t, 0, "after the refused reload");
        r = va_tpm_ek_reload(t, VA_EK_AUTO, &ek_pub, &err);
        check(r == -EINVAL, "EK reload: VA_EK_AUTO is not one template (%d: %s)", r, err.msg);
        va_tpm_close(t);
}

static void phase_reload(const char *tcti, const char *state) {
        va_tpm *t = open_tpm(tcti);
        check_handles(t, 0, "restarted swtpm");
        reload_one(t, VA_EK_RSA_2048, state);
        reload_one(t, VA_EK_ECC_P384, state);
        va_tpm_close(t);
        reopen_rounds(tcti, VA_EK_RSA_2048, state);
        reopen_rounds(tcti, VA_EK_ECC_P384, state);
}

/* ---------------------------------------------------------------------------------------
 * Phase 3: the device identity key (issue 19) */

static size_t marshal_tpmt(const TPMT_PUBLIC *p, uint8_t *buf, size_t cap) {
        size_t off = 0;
        if (Tss2_MU_TPMT_PUBLIC_Marshal(p, buf, cap, &off) != TSS2_RC_SUCCESS)
                fatal("marshal TPMT_PUBLIC");
        return off;
}

/* vc_certify_verify of a certify of key by the AK ak_pub over the qualifying data of nonce
 * (NULL: qd as it is); the result's check name ("valid" when valid), or "error: ...". */
static const char *certify_outcome(const TPM2B_PUBLIC *ak_pub, const TPMT_PUBLIC *key, const va_quote *q,
                                   const uint8_t *qd, size_t qd_len, char *msg, size_t msg_size) {
        uint8_t akb[sizeof(TPM2B_PUBLIC)], kb[sizeof(TPMT_PUBLIC)];
        vc_ak *ak = NULL;
        vc_certify *c = NULL;
        vc_certify_result res = { 0 };
        vc_error err = { 0 };
        const char *what;
        int r = vc_ak_load(akb, marshal_public(ak_pub, akb, sizeof(akb)), &ak, &err);
        if (r == 0)
                r = vc_certify_parse(kb, marshal_tpmt(key, kb, sizeof(kb)), q->attest, q->attest_len, q->sig, q->sig_len,
                                     &c, &err);
        if (r == 0)
                r = vc_certify_verify(c, ak, qd, qd_len, NULL, &res);
        if (r < 0) {
                snprintf(msg, msg_size, "error %d: %s", r, err.msg);
                what = "error";
        } else {
                snprintf(msg, msg_size, "%s", res.status == VC_CERTIFY_VALID ? "valid" : res.reason);
                what = res.status == VC_CERTIFY_VALID ? "valid" : vc_certify_check_name(res.failed);
        }
        vc_certify_free(c);
        vc_ak_free(ak);
        return what;
}

static void qualifying_of(const uint8_t nonce[32], uint8_t qd[VC_CERTIFY_QUALIFYING_SIZE]) {
        if (vc_certify_qualifying_data(nonce, 32, qd) < 0)
                fatal("vc_certify_qualifying_data");
}

/* The device key's public key as the SubjectPublicKeyInfo OpenSSL verifies with. */
static void save_spki(const char *dir, const char *name, const TPMT_PUBLIC *pub) {
        EVP_PKEY *pk = NULL;
        vc_error err;
        char path[4096];
        if (vc_tpm_public_key(pub, "device key", &pk, &err) < 0)
                fatal("device key: %s", err.msg);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "w");
        if (!f || PEM_write_PUBKEY(f, pk) != 1 || fclose(f) != 0)
                fatal("%s: cannot write", path);
        EVP_PKEY_free(pk);
}

/* A software ECC P-256 key dressed as a device key: the attributes of one, a point the TPM
 * never saw. */
static void software_devkey(const TPMT_PUBLIC *like, TPMT_PUBLIC *out) {
        EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        BIGNUM *x = NULL, *y = NULL;
        if (!pk || EVP_PKEY_get_bn_param(pk, "qx", &x) != 1 || EVP_PKEY_get_bn_param(pk, "qy", &y) != 1)
                fatal("software key");
        *out = *like;
        out->unique.ecc.x.size = (UINT16) BN_bn2binpad(x, out->unique.ecc.x.buffer, 32);
        out->unique.ecc.y.size = (UINT16) BN_bn2binpad(y, out->unique.ecc.y.buffer, 32);
        BN_free(x);
        BN_free(y);
        EVP_PKEY_free(pk);
}

static void phase_devkey(const char *tcti, const char *state) {
        TPM2B_PUBLIC ek_pub, ak_pub, other_ak_pub, dk_pub;
        TPM2B_PRIVATE ak_priv, other_ak_priv, dk_priv;
        uint8_t nonce[32], nonce2[32], qd[VC_CERTIFY_QUALIFYING_SIZE], qd2[VC_CERTIFY_QUALIFYING_SIZE];
        uint8_t name[2 + VC_MAX_DIGEST];
        size_t name_len;
        static va_quote q, q2;
        char msg[400];
        const char *what;
        vc_error err;
        int r;

        load_public(state, "ek-rsa.pub", &ek_pub);
        load_public(state, "ak-rsa-rsa.pub", &ak_pub);
        load_private(state, "ak-rsa-rsa.priv", &ak_priv);
        if (RAND_bytes(nonce, 32) != 1 || RAND_bytes(nonce2, 32) != 1)
                fatal("RAND_bytes");
        qualifying_of(nonce, qd);
        qualifying_of(nonce2, qd2);

        va_tpm *t = open_tpm(tcti);
        r = va_tpm_devkey_certify(t, &ak_pub, &ak_priv, qd, sizeof(qd), &q, &err);
        check(r == -EINVAL, "device key: certify without an AK is an error (%d: %s)", r, err.msg);
        if (va_tpm_ek_reload(t, VA_EK_RSA_2048, &ek_pub, &err) < 0 || va_tpm_ak_load(t, &ak_pub, &ak_priv, &err) < 0)
                fatal("EK reload / AK load: %s", err.msg);

        r = va_tpm_devkey_create(t, &dk_pub, &dk_priv, &err);
        if (r < 0)
                fatal("va_tpm_devkey_create: %s", err.msg);
        const TPMT_PUBLIC *dk = &dk_pub.publicArea;
        check(dk->type == TPM2_ALG_ECC && dk->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 &&
                      dk->nameAlg == TPM2_ALG_SHA256 &&
                      dk->objectAttributes == (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                               TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                               TPMA_OBJECT_SIGN_ENCRYPT) &&
                      dk->parameters.eccDetail.scheme.scheme == TPM2_ALG_NULL,
              "device key: ECC P-256, nameAlg SHA-256, fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign "
              "(attributes 0x%08x), no scheme", dk->objectAttributes);
        /* the EK was flushed for the storage primary: the AK alone is left */
        check_handles(t, 1, "after the device key was created");
        r = va_tpm_devkey_check(t, &dk_pub, &dk_priv, &err);
        check(r == 0, "device key: its blobs load under the owner hierarchy's storage primary%s%s", r ? ": " : "",
              r ? err.msg : "");

        /* Certified by the AK over the qualifying data of a nonce: valid, the Name is the key's. */
        r = va_tpm_devkey_certify(t, &dk_pub, &dk_priv, qd, sizeof(qd), &q, &err);
        if (r < 0)
                fatal("va_tpm_devkey_certify: %s", err.msg);
        check_handles(t, 1, "after the device key was certified");
        what = certify_outcome(&ak_pub, dk, &q, qd, sizeof(qd), msg, sizeof(msg));
        check(strcmp(what, "valid") == 0, "device key: TPM2_Certify by the AK over SHA-256(label || nonce) is accepted "
                                          "by vc_certify_verify (%s)", msg);
        name_of(&dk_pub, name, &name_len);
        {
                vc_quote *vq = NULL;
                r = vc_quote_parse(q.attest, q.attest_len, q.sig, q.sig_len, &vq, &err);
                check(r == 0 && vq->attest.attested.certify.name.size == name_len &&
                              memcmp(vq->attest.attested.certify.name.name, name, name_len) == 0,
                      "device key: the certified Name is nameAlg || SHA-256 of the key's TPMT_PUBLIC");
                vc_quote_free(vq);
        }
        /* The same certify checked for another challenge's nonce. */
        what = certify_outcome(&ak_pub, dk, &q, qd2, sizeof(qd2), msg, sizeof(msg));
        check(strcmp(what, "qualifying-data") == 0, "device key: a certify over another nonce is refused (%s)", msg);
        /* The nonce itself as qualifying data (the quote's use of it): refused. */
        r = va_tpm_devkey_certify(t, &dk_pub, &dk_priv, nonce, sizeof(nonce), &q2, &err);
        what = r == 0 ? certify_outcome(&ak_pub, dk, &q2, qd, sizeof(qd), msg, sizeof(msg)) : "error";
        check(strcmp(what, "qualifying-data") == 0,
              "device key: a certify over the raw nonce, not the derived value, is refused (%s)", msg);
        /* A software key sent with the TPM's certify: the Name is not its own. */
        TPMT_PUBLIC soft;
        software_devkey(dk, &soft);
        what = certify_outcome(&ak_pub, &soft, &q, qd, sizeof(qd), msg, sizeof(msg));
        check(strcmp(what, "name") == 0, "device key: a software key with the TPM key's certify is refused (%s)", msg);

        /* Certified by another AK of this TPM (as another device's AK would): the signature is
         * not the enrolled AK's. */
        r = va_tpm_ek_reload(t, VA_EK_RSA_2048, &ek_pub, &err);
        if (r == 0)
                r = va_tpm_ak_create(t, VA_AK_RSA_2048, &other_ak_pub, &other_ak_priv, &err);
        if (r == 0)
                r = va_tpm_devkey_certify(t, &dk_pub, &dk_priv, qd, sizeof(qd), &q2, &err);
        if (r < 0)
                fatal("another AK: %s", err.msg);
        what = certify_outcome(&ak_pub, dk, &q2, qd, sizeof(qd), msg, sizeof(msg));
        check(strcmp(what, "signature") == 0, "device key: a certify by another AK is refused (%s)", msg);
        what = certify_outcome(&other_ak_pub, dk, &q2, qd, sizeof(qd), msg, sizeof(msg));
        check(strcmp(what, "valid") == 0, "device key: ... and valid for that AK (%s)", msg);

        /* Blobs the TPM refuses: a damaged private part. */
        TPM2B_PRIVATE damaged = dk_priv;
        damaged.buffer[damaged.size / 2] ^= 0x01;
        r = va_tpm_devkey_check(t, &dk_pub, &damaged, &err);
        check(r == -EBADMSG, "device key: a damaged private blob does not load (%d: %s)", r, err.msg);
        r = va_tpm_devkey_certify(t, &dk_pub, &damaged, qd, sizeof(qd), &q2, &err);
        check(r == -EBADMSG, "device key: ... nor is it certified (%d: %s)", r, err.msg);
        check_handles(t, 1, "after the refusals");
        va_tpm_close(t);

        /* The agent's rounds: open, EK reload, AK load, quote, device key certify, close. */
        unsigned ok = 0;
        char first_failure[800] = "";
        for (int i = 0; i < 10; i++) {
                TPML_PCR_SELECTION sel = sha256_0_7_16();
                if (RAND_bytes(nonce, 32) != 1)
                        fatal("RAND_bytes");
                qualifying_of(nonce, qd);
                t = open_tpm(tcti);
                r = va_tpm_ek_reload(t, VA_EK_RSA_2048, &ek_pub, &err);
                if (r == 0)
                        r = va_tpm_ak_load(t, &ak_pub, &ak_priv, &err);
                if (r == 0)
                        r = va_tpm_quote(t, &sel, nonce, sizeof(nonce), &q2, &err);
                if (r == 0)
                        r = va_tpm_devkey_certify(t, &dk_pub, &dk_priv, qd, sizeof(qd), &q, &err);
                what = r == 0 ? certify_outcome(&ak_pub, dk, &q, qd, sizeof(qd), msg, sizeof(msg)) : "error";
                if (strcmp(what, "valid") == 0)
                        ok++;
                else if (!first_failure[0])
                        snprintf(first_failure, sizeof(first_failure), "round %d: %s %s", i, r ? err.msg : "", msg);
                va_tpm_close(t);
        }
        check(ok == 10, "device key: 10 rounds of open + EK reload + AK load + quote + certify + close: %u certifies "
                        "verified%s%s", ok, first_failure[0] ? "; first failure: " : "", first_failure);
        t = open_tpm(tcti);
        check_handles(t, 0, "after the device key rounds");
        va_tpm_close(t);

        /* The files for the script: the key for OpenSSL's tpm2 provider, its public key. */
        char *pem = NULL;
        size_t pem_len = 0;
        r = va_tss2_key_pem(&dk_pub, &dk_priv, VA_DEVKEY_PARENT, &pem, &pem_len);
        if (r < 0)
                fatal("va_tss2_key_pem: %d", r);
        write_file(state, "devkey.tss2.pem", (const uint8_t *) pem, pem_len);
        free(pem);
        save_spki(state, "devkey.spki.pem", dk);
        save_public(state, "devkey.pub", &dk_pub);
        save_private(state, "devkey.priv", &dk_priv);
}

static size_t unhex_arg(const char *hex, uint8_t *out, size_t cap) {
        int n = vc_unhex(hex, strlen(hex), out, cap);
        if (n < 0)
                fatal("not hex: %s", hex);
        return (size_t) n;
}

/* A certify tpm2-tools made, checked as vouchd would. */
static void phase_verify_certify(const char *ak_file, const char *key_file, const char *attest_file,
                                 const char *sig_file, const char *qd_hex, const char *want) {
        TPM2B_PUBLIC ak_pub, key_pub;
        uint8_t qd[VC_MAX_DIGEST];
        static va_quote q;
        char msg[400];
        size_t qd_len = unhex_arg(qd_hex, qd, sizeof(qd));

        load_public(".", ak_file, &ak_pub);
        load_public(".", key_file, &key_pub);
        q.attest_len = read_file(".", attest_file, q.attest, sizeof(q.attest));
        q.sig_len = read_file(".", sig_file, q.sig, sizeof(q.sig));
        const char *what = certify_outcome(&ak_pub, &key_pub.publicArea, &q, qd, qd_len, msg, sizeof(msg));
        check(strcmp(what, want) == 0, "certify of %s by %s (tpm2_certify): %s, expected %s (%s)", key_file, ak_file,
              what, want, msg);
}

int main(int argc, char **argv) {
        if (argc == 7 && strcmp(argv[1], "enroll") == 0)
                phase_enroll(argv[2], argv[3], argv[4], argv[5], argv[6]);
        else if (argc == 4 && strcmp(argv[1], "reload") == 0)
                phase_reload(argv[2], argv[3]);
        else if (argc == 4 && strcmp(argv[1], "devkey") == 0)
                phase_devkey(argv[2], argv[3]);
        else if (argc == 8 && strcmp(argv[1], "verify-certify") == 0)
                phase_verify_certify(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7]);
        else {
                fprintf(stderr, "usage: agent-tpm-test enroll TCTI CA_DIR OTHER_TCTI OTHER_CA_DIR STATE_DIR\n"
                                "       agent-tpm-test reload TCTI STATE_DIR\n"
                                "       agent-tpm-test devkey TCTI STATE_DIR\n"
                                "       agent-tpm-test verify-certify AK KEY ATTEST SIGNATURE QUALIFYING_HEX WANT\n");
                return 2;
        }
        printf("%u passed, %u failed\n", n_pass, n_fail);
        return n_fail ? 1 : 0;
}
