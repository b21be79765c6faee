/* SPDX-License-Identifier: Apache-2.0 */
/* Device certificates (issue 19, devcert.h) with libvouchd in the process (server-fixture.h):
 * an attestation whose QuoteAnswer proves a device key (TPM2_Certify by the AK over the
 * challenge) gets, with its TRUSTED verdict, a certificate for that key from the device CA,
 * stored with the verdict and sent with it; a bad proof, an UNTRUSTED verdict or issuing
 * turned off gets none; an UNTRUSTED or STALE verdict or a revocation puts the device's
 * certificates on the CRL within a second; the API lists them. With VOUCH_TEST_STORE_URL
 * (test/pg/pg-harness.sh) also two instances on one PostgreSQL store: a change at one is on
 * the other's CRL within a second. */
#include <errno.h>
#include <event2/event.h>
#include <openssl/sha.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "admin.h"
#include "api-internal.h"
#include "api.h"
#include "certify.h"
#include "clock.h"
#include "devcert.h"
#include "lease.h"
#include "server-fixture.h"
#include "statedir.h"
#include "uefi.h"

#define TD "example.org"
#define HTTP "127.0.0.1:8099"
#define WITHIN_MS 1000 /* the issue's bound: a change is on the CRL within a second */

/* How the device proves its key. */
typedef enum proof_mode {
        PROOF_OK = 0,
        PROOF_NONE,             /* no device key sent (an agent without one) */
        PROOF_OTHER_NONCE,      /* certified over another challenge's nonce */
        PROOF_OTHER_AK,         /* certified by another TPM's AK */
        PROOF_SOFTWARE_KEY,     /* a key that could leave the TPM (not fixedTPM, not made in it) */
        PROOF_GARBAGE,          /* bytes that are no TPMS_ATTEST */
} proof_mode;

typedef struct devkey {
        qb_key key, soft, other_ak;
        proof_mode mode;
        qb_quote q;
} devkey;

static void add_device_key(sfx *f, Vouch__V1__QuoteAnswer *a, const uint8_t *nonce) {
        devkey *k = f->hook_data;
        uint8_t qd[VC_CERTIFY_QUALIFYING_SIZE], other[32];
        const qb_key *certified = k->mode == PROOF_SOFTWARE_KEY ? &k->soft : &k->key;
        if (k->mode == PROOF_NONE)
                return;
        memset(other, 0x5a, sizeof(other));
        assert_int_equal(vc_certify_qualifying_data(k->mode == PROOF_OTHER_NONCE ? other : nonce, 32, qd), 0);
        qb_certify_make(k->mode == PROOF_OTHER_AK ? &k->other_ak : &f->key, certified, qd, sizeof(qd), &k->q);
        a->device_key_public = (ProtobufCBinaryData) { certified->pub_len, (uint8_t *) certified->pub_bytes };
        a->device_key_certify = (ProtobufCBinaryData) { k->q.attest_len, k->q.attest };
        a->device_key_signature = (ProtobufCBinaryData) { k->q.sig_len, k->q.sig };
        if (k->mode == PROOF_GARBAGE)
                a->device_key_certify = (ProtobufCBinaryData) { 3, (uint8_t *) "abc" };
}

typedef struct t {
        sfx f;
        devkey k;
        X509 *ca;
} t;

/* Device certificates on (trust_domain NULL: the device CA only), the CRL's thread running. */
static void enable(sfx *f, const char *trust_domain, unsigned ttl) {
        vouchd *d = &f->d;
        char err[600];
        assert_int_equal(devca_init_state_dir(d->cfg.state_dir, true, err, sizeof(err)), 0);
        d->cfg.trust_domain = trust_domain ? strdup(trust_domain) : NULL;
        d->cfg.http_listen = strdup(HTTP);
        d->cfg.device_cert_ttl = ttl;
        assert_int_equal(devcert_load(d), 0);
        assert_int_equal(devcert_start(d), 0);
}

static t *new_t(const char *trust_domain, unsigned ttl) {
        t *x = calloc(1, sizeof(*x));
        assert_non_null(x);
        sfx_setup(&x->f, true);
        qb_devkey_new(&x->k.key, QB_DEVKEY_ATTRS);
        qb_devkey_new(&x->k.soft, QB_DEVKEY_ATTRS & ~(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                                      TPMA_OBJECT_SENSITIVEDATAORIGIN));
        qb_key_new(&x->k.other_ak);
        x->f.answer_hook = add_device_key;
        x->f.hook_data = &x->k;
        enable(&x->f, trust_domain, ttl);
        x->ca = sd_read_cert(x->f.d.cfg.state_dir, DEVCA_CERT_FILE);
        assert_non_null(x->ca);
        return x;
}

static int setup(void **state) {
        *state = new_t(TD, 0);
        return 0;
}

static int setup_off(void **state) {
        *state = new_t(NULL, 0);
        return 0;
}

static int setup_ttl(void **state) {
        *state = new_t(TD, 100);
        return 0;
}

static int setup_long(void **state) {
        *state = new_t(TD, 100000);
        return 0;
}

static void t_free(t *x) {
        sfx_teardown(&x->f);
        qb_key_free(&x->k.key);
        qb_key_free(&x->k.soft);
        qb_key_free(&x->k.other_ak);
        X509_free(x->ca);
}

static int teardown(void **state) {
        t *x = *state;
        t_free(x);
        free(x);
        return 0;
}

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* An attestation on a new connection (as sfx_attest): the VerdictNotice the agent got. */
static Vouch__V1__VerifierMessage *attest(sfx *f) {
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        sfx_pump(f); /* a shared store: Welcome once the device's lease is claimed */
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        assert_non_null(ch);
        assert_int_equal(ch->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE);
        sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
        sfx_pump(f);
        Vouch__V1__VerifierMessage *vm = sfx_next(c);
        for (int again = 0; vm && vm->msg_case == VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE && again < 2; again++) {
                vouch__v1__verifier_message__free_unpacked(ch, NULL);
                ch = vm;
                sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
                sfx_pump(f);
                vm = sfx_next(c);
        }
        assert_non_null(vm);
        assert_int_equal(vm->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_VERDICT);
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
        return vm;
}

static const Vouch__V1__Finding *finding(const Vouch__V1__Verdict *v, const char *rule) {
        for (size_t i = 0; i < v->n_findings; i++)
                if (strcmp(v->findings[i]->rule, rule) == 0)
                        return v->findings[i];
        return NULL;
}

static int64_t seconds_of(const ASN1_TIME *a) {
        struct tm tm;
        assert_int_equal(ASN1_TIME_to_tm(a, &tm), 1);
        return (int64_t) timegm(&tm);
}

static X509 *parse_cert(const ProtobufCBinaryData *b) {
        const unsigned char *p = b->data;
        X509 *x = d2i_X509(NULL, &p, (long) b->len);
        assert_non_null(x);
        assert_ptr_equal(p, b->data + b->len);
        return x;
}

static bool der_equal(X509 *x, const ProtobufCBinaryData *b) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        bool eq = len > 0 && (size_t) len == b->len && memcmp(der, b->data, b->len) == 0;
        OPENSSL_free(der);
        return eq;
}

/* The leaf verifies against the CA at the fake clock's now, for a TLS client. */
static int verify_leaf(X509 *ca, X509 *leaf, X509_CRL *crl) {
        X509_STORE *st = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        assert_int_equal(X509_STORE_add_cert(st, ca), 1);
        if (crl) {
                assert_int_equal(X509_STORE_add_crl(st, crl), 1);
                X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
        }
        assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t) SFX_WALL);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
        int ok = X509_verify_cert(ctx);
        int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(st);
        return err;
}

static void test_trusted_gets_certificate(void **state) {
        t *x = *state;
        sfx *f = &x->f;
        char want[200];
        Vouch__V1__VerifierMessage *m = attest(f);
        Vouch__V1__Verdict *v = sfx_verdict_of(m);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_null(finding(v, "device-key"));
        const Vouch__V1__VerdictNotice *vn = m->verdict;
        assert_int_equal(vn->n_device_certificates, 2); /* the device's, then the device CA */
        assert_true(der_equal(x->ca, &vn->device_certificates[1]));
        X509 *leaf = parse_cert(&vn->device_certificates[0]);

        /* the subject and names come from vouchd's data: the device id and its SPIFFE ID */
        char cn[128];
        assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn)) > 0);
        assert_string_equal(cn, f->id);
        assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 1);
        assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(x->ca)), 0);
        GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        assert_non_null(sans);
        assert_int_equal(sk_GENERAL_NAME_num(sans), 1);
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, 0);
        assert_int_equal(g->type, GEN_URI);
        snprintf(want, sizeof(want), "spiffe://" TD "/device/%s", f->id);
        assert_int_equal(ASN1_STRING_length(g->d.uniformResourceIdentifier), (int) strlen(want));
        assert_memory_equal(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), want, strlen(want));
        GENERAL_NAMES_free(sans);

        /* a client certificate, not a CA: clientAuth only, digitalSignature only (critical) */
        uint32_t flags = X509_get_extension_flags(leaf);
        assert_true(flags & EXFLAG_BCONS);
        assert_false(flags & EXFLAG_CA);
        assert_true(flags & EXFLAG_XKUSAGE);
        assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_CLIENT);
        assert_true(flags & EXFLAG_KUSAGE);
        assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
        assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(leaf, X509_get_ext_by_NID(leaf, NID_key_usage, -1))), 1);

        /* a random positive 16-byte serial */
        BIGNUM *sn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
        assert_non_null(sn);
        assert_false(BN_is_negative(sn));
        assert_int_equal(BN_num_bytes(sn), 16);

        /* valid from a minute before its issue, never past its verdict */
        assert_int_equal(seconds_of(X509_get0_notBefore(leaf)), v->issued_at - DEVCERT_BACKDATE);
        assert_int_equal(seconds_of(X509_get0_notAfter(leaf)), v->expires_at);
        assert_int_equal(v->issued_at, SFX_WALL);

        /* the key identifiers, the CRL distribution point */
        const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(leaf), *ski = X509_get0_subject_key_id(x->ca);
        assert_non_null(aki);
        assert_non_null(ski);
        assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ski), 0);
        assert_non_null(X509_get0_subject_key_id(leaf));
        STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
        assert_non_null(dps);
        assert_int_equal(sk_DIST_POINT_num(dps), 1);
        DIST_POINT *dp = sk_DIST_POINT_value(dps, 0);
        assert_non_null(dp->distpoint);
        g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
        assert_int_equal(g->type, GEN_URI);
        assert_string_equal((const char *) ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
                            "http://" HTTP "/v1/crl");
        sk_DIST_POINT_pop_free(dps, DIST_POINT_free);

        /* for the device's key, and it verifies against the device CA */
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), x->k.key.pkey), 1);
        /* the verdict names the key it proved: SHA-256 of the certificate's SPKI */
        unsigned char *spki = NULL;
        int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &spki);
        uint8_t spki_digest[32];
        assert_true(spki_len > 0);
        assert_non_null(SHA256(spki, (size_t) spki_len, spki_digest));
        OPENSSL_free(spki);
        assert_int_equal(v->device_key.len, 32);
        assert_memory_equal(v->device_key.data, spki_digest, 32);
        assert_int_equal(verify_leaf(x->ca, leaf, NULL), X509_V_OK);

        /* stored with its verdict: the verdict's sequences, the same bytes */
        vs_cert c[2];
        vs_verdict latest;
        assert_int_equal(vs_cert_list(f->d.store, f->id, c, 2), 1);
        assert_int_equal(vs_verdict_latest(f->d.store, f->id, &latest), 0);
        assert_int_equal(c[0].sequence, v->sequence);
        assert_int_equal(c[0].global_sequence, latest.global_sequence);
        assert_int_equal(c[0].global_sequence, v->global_sequence);
        assert_int_equal(c[0].not_after, v->expires_at);
        assert_int_equal(c[0].revoked_at, 0);
        assert_int_equal(c[0].der_len, vn->device_certificates[0].len);
        assert_memory_equal(c[0].der, vn->device_certificates[0].data, c[0].der_len);
        char *hex = BN_bn2hex(sn);
        assert_int_equal(strcasecmp(hex, c[0].serial), 0);
        OPENSSL_free(hex);
        vs_cert_done(&c[0]);
        vs_verdict_done(&latest);

        /* renewed with the next TRUSTED verdict: another serial, the first one not revoked */
        Vouch__V1__VerifierMessage *m2 = attest(f);
        assert_int_equal(m2->verdict->n_device_certificates, 2);
        X509 *leaf2 = parse_cert(&m2->verdict->device_certificates[0]);
        assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf), X509_get0_serialNumber(leaf2)), 0);
        assert_int_equal(vs_cert_list(f->d.store, f->id, c, 2), 2);
        assert_int_equal(c[0].revoked_at, 0);
        assert_int_equal(c[1].revoked_at, 0);
        vs_cert_done(&c[0]);
        vs_cert_done(&c[1]);
        X509_free(leaf2);
        vouch__v1__verifier_message__free_unpacked(m2, NULL);
        BN_free(sn);
        X509_free(leaf);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

/* --device-cert-ttl shortens a certificate (100 s here); it never outlives its verdict. */
static void test_shorter_ttl(void **state) {
        t *x = *state;
        Vouch__V1__VerifierMessage *m = attest(&x->f);
        Vouch__V1__Verdict *v = sfx_verdict_of(m);
        assert_int_equal(m->verdict->n_device_certificates, 2);
        X509 *leaf = parse_cert(&m->verdict->device_certificates[0]);
        assert_int_equal(seconds_of(X509_get0_notAfter(leaf)), v->issued_at + 100);
        assert_true(seconds_of(X509_get0_notAfter(leaf)) <= v->expires_at);
        X509_free(leaf);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

/* Longer than the verdict lives (3 intervals of 60 s): the verdict's expiry. */
static void test_longer_ttl(void **state) {
        t *x = *state;
        Vouch__V1__VerifierMessage *m = attest(&x->f);
        Vouch__V1__Verdict *v = sfx_verdict_of(m);
        assert_int_equal(m->verdict->n_device_certificates, 2);
        X509 *leaf = parse_cert(&m->verdict->device_certificates[0]);
        assert_int_equal(seconds_of(X509_get0_notAfter(leaf)), v->expires_at);
        X509_free(leaf);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

/* No certificate, and a finding naming the check, for each bad proof; the verdict stays
 * TRUSTED (the boot is) and nothing is stored. */
static void expect_refused(t *x, proof_mode mode, const char *check) {
        x->k.mode = mode;
        Vouch__V1__VerifierMessage *m = attest(&x->f);
        Vouch__V1__Verdict *v = sfx_verdict_of(m);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(m->verdict->n_device_certificates, 0);
        assert_int_equal(v->device_key.len, 0); /* no key proven */
        const Vouch__V1__Finding *fd = finding(v, "device-key");
        assert_non_null(fd);
        if (!strstr(fd->actual, check))
                fail_msg("proof %d: finding says \"%s\", expected the %s check", mode, fd->actual, check);
        assert_non_null(strstr(fd->explanation, "no device certificate issued"));
        vs_cert c;
        assert_int_equal(vs_cert_list(x->f.d.store, x->f.id, &c, 1), 0);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

static void call(t *x, const char *path, api_role role, api_response *out);

static void write_names(const char *path, const char *text) {
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        assert_int_equal(fputs(text, fp) >= 0, 1);
        assert_int_equal(fclose(fp), 0);
}

/* The certificate of the next attestation: its SAN entries as "URI:..." / "DNS:..." joined
 * by spaces into buf. */
static const char *sans_of_next(t *x, char *buf, size_t size) {
        Vouch__V1__VerifierMessage *m = attest(&x->f);
        assert_int_equal(m->verdict->n_device_certificates, 2);
        X509 *leaf = parse_cert(&m->verdict->device_certificates[0]);
        GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        size_t k = 0;
        buf[0] = 0;
        for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
                GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
                const ASN1_STRING *v = g->type == GEN_URI ? g->d.uniformResourceIdentifier : g->d.dNSName;
                assert_true(g->type == GEN_URI || g->type == GEN_DNS);
                k += (size_t) snprintf(buf + k, size - k, "%s%s:%.*s", k ? " " : "", g->type == GEN_URI ? "URI" : "DNS",
                                       ASN1_STRING_length(v), (const char *) ASN1_STRING_get0_data(v));
        }
        GENERAL_NAMES_free(sans);
        X509_free(leaf);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
        return buf;
}

/* --device-names: the operator's DNS names join the SPIFFE ID in the device's certificate;
 * reloaded (SIGHUP) in place, a bad file keeping the names in use. */
static void test_device_names(void **state) {
        t *x = *state;
        vouchd *d = &x->f.d;
        char path[300], text[400], want[600], got[1200];
        snprintf(path, sizeof(path), "%s/device-names", x->f.dir);
        snprintf(text, sizeof(text), "# operator's names\n%s host1.example.org Host1.Internal\n", x->f.id);
        write_names(path, text);
        d->cfg.device_names = strdup(path);
        assert_int_equal(devcert_names_reload(d), 0);
        snprintf(want, sizeof(want), "URI:spiffe://" TD "/device/%s DNS:host1.example.org DNS:host1.internal",
                 x->f.id);
        assert_string_equal(sans_of_next(x, got, sizeof(got)), want);
        /* a file that is refused: the names in use stay */
        snprintf(text, sizeof(text), "%s *.example.org\n", x->f.id);
        write_names(path, text);
        assert_true(devcert_names_reload(d) < 0);
        assert_string_equal(sans_of_next(x, got, sizeof(got)), want);
        /* the device no longer listed: its SPIFFE ID alone */
        write_names(path, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef other.example.org\n");
        assert_int_equal(devcert_names_reload(d), 0);
        snprintf(want, sizeof(want), "URI:spiffe://" TD "/device/%s", x->f.id);
        assert_string_equal(sans_of_next(x, got, sizeof(got)), want);
        /* a file gone: an error, the names in use stay */
        assert_int_equal(unlink(path), 0);
        assert_true(devcert_names_reload(d) < 0);
        assert_string_equal(sans_of_next(x, got, sizeof(got)), want);
}

static void test_bad_proofs_get_none(void **state) {
        t *x = *state;
        expect_refused(x, PROOF_OTHER_NONCE, "qualifying-data");
        expect_refused(x, PROOF_OTHER_AK, "signature");
        expect_refused(x, PROOF_SOFTWARE_KEY, "key-attributes");
        expect_refused(x, PROOF_GARBAGE, "malformed");
        api_response r;
        call(x, "/metrics", API_ROLE_READER, &r);
        assert_non_null(strstr((const char *) r.body, "\nvouch_device_key_proofs_refused_total 4\n"));
        assert_non_null(strstr((const char *) r.body, "\nvouch_device_certs_issued_total 0\n"));
        api_response_done(&r);
        /* an agent without a device key: nothing to say */
        x->k.mode = PROOF_NONE;
        Vouch__V1__VerifierMessage *m = attest(&x->f);
        Vouch__V1__Verdict *v = sfx_verdict_of(m);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(m->verdict->n_device_certificates, 0);
        assert_null(finding(v, "device-key"));
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

/* A rogue boot measurement: UNTRUSTED, no certificate (the proof itself is fine). */
static void rogue(sfx *f) {
        lb_event_fill(&f->b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x66, "rogue", 5);
}

static void test_untrusted_gets_none(void **state) {
        t *x = *state;
        rogue(&x->f);
        Vouch__V1__VerifierMessage *m = attest(&x->f);
        Vouch__V1__Verdict *v = sfx_verdict_of(m);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        assert_int_equal(m->verdict->n_device_certificates, 0);
        assert_null(finding(v, "device-key"));
        vs_cert c;
        assert_int_equal(vs_cert_list(x->f.d.store, x->f.id, &c, 1), 0);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

/* Without --trust-domain nothing is issued (the CRL is served all the same). */
static void test_no_trust_domain(void **state) {
        t *x = *state;
        assert_false(devcert_issuing(&x->f.d));
        Vouch__V1__VerifierMessage *m = attest(&x->f);
        Vouch__V1__Verdict *v = sfx_verdict_of(m);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(m->verdict->n_device_certificates, 0);
        assert_null(finding(v, "device-key"));
        vs_cert c;
        assert_int_equal(vs_cert_list(x->f.d.store, x->f.id, &c, 1), 0);
        uint8_t *der = NULL;
        size_t len = 0;
        assert_int_equal(devcert_crl_get(&x->f.d, false, &der, &len), 0);
        free(der);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

/* ---- the CRL ---- */

static X509_CRL *crl_of(vouchd *d) {
        uint8_t *der = NULL;
        size_t len = 0;
        assert_int_equal(devcert_crl_get(d, false, &der, &len), 0);
        const unsigned char *p = der;
        X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long) len);
        assert_non_null(crl);
        free(der);
        return crl;
}

static bool crl_lists(X509_CRL *crl, X509 *leaf) {
        X509_REVOKED *rv = NULL;
        return X509_CRL_get0_by_serial(crl, &rv, (ASN1_INTEGER *) X509_get0_serialNumber(leaf)) == 1;
}

static BIGNUM *crl_number_of(X509_CRL *crl) {
        ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
        assert_non_null(n);
        BIGNUM *bn = ASN1_INTEGER_to_BN(n, NULL);
        ASN1_INTEGER_free(n);
        return bn;
}

/* Milliseconds until d's CRL lists leaf (fails after 5 s); *ret its CRL then. */
static double wait_listed(vouchd *d, X509 *leaf, double t0, X509_CRL **ret) {
        for (;;) {
                X509_CRL *crl = crl_of(d);
                double ms = now_ms() - t0;
                if (crl_lists(crl, leaf)) {
                        *ret = crl;
                        return ms;
                }
                X509_CRL_free(crl);
                if (ms > 5000)
                        fail_msg("not on the CRL after %.0f ms", ms);
                usleep(2000);
        }
}

/* The CRL as a relying party checks it: signed by the device CA, v2, its number, thisUpdate
 * and a short nextUpdate (max(2 intervals, 60 s): 120 s here). */
static void check_crl(t *x, X509_CRL *crl) {
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(x->ca)), 1);
        assert_int_equal(X509_CRL_get_version(crl), 1);
        assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(x->ca)), 0);
        int64_t last = seconds_of(X509_CRL_get0_lastUpdate(crl)), next = seconds_of(X509_CRL_get0_nextUpdate(crl));
        assert_int_equal(last, vclock_wall());
        assert_int_equal(next - last, 120);
        AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
        assert_non_null(akid);
        assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(x->ca)), 0);
        AUTHORITY_KEYID_free(akid);
}

/* The leaf of a TRUSTED attestation, and the CRL (not listing it) with its number. */
static X509 *trusted_leaf(t *x, BIGNUM **ret_number) {
        Vouch__V1__VerifierMessage *m = attest(&x->f);
        assert_int_equal(m->verdict->n_device_certificates, 2);
        X509 *leaf = parse_cert(&m->verdict->device_certificates[0]);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
        X509_CRL *crl = crl_of(&x->f.d);
        check_crl(x, crl);
        assert_false(crl_lists(crl, leaf));
        assert_int_equal(verify_leaf(x->ca, leaf, crl), X509_V_OK);
        *ret_number = crl_number_of(crl);
        X509_CRL_free(crl);
        return leaf;
}

/* leaf is on d's CRL within WITHIN_MS of t0, the CRL's number above number (freed), and a
 * relying party checking the CRL refuses it. */
static void expect_listed(t *x, X509 *leaf, double t0, BIGNUM *number) {
        X509_CRL *crl = NULL;
        double ms = wait_listed(&x->f.d, leaf, t0, &crl);
        print_message("on the CRL after %.0f ms\n", ms);
        assert_true(ms < WITHIN_MS);
        check_crl(x, crl);
        BIGNUM *n = crl_number_of(crl);
        assert_true(BN_cmp(n, number) > 0);
        assert_int_equal(verify_leaf(x->ca, leaf, crl), X509_V_ERR_CERT_REVOKED);
        X509_REVOKED *rv = NULL;
        assert_int_equal(X509_CRL_get0_by_serial(crl, &rv, (ASN1_INTEGER *) X509_get0_serialNumber(leaf)), 1);
        assert_true(seconds_of(X509_REVOKED_get0_revocationDate(rv)) >= SFX_WALL);
        BN_free(n);
        BN_free(number);
        X509_CRL_free(crl);
}

static void test_untrusted_revokes(void **state) {
        t *x = *state;
        BIGNUM *number;
        X509 *leaf = trusted_leaf(x, &number);
        rogue(&x->f);
        Vouch__V1__VerifierMessage *m = attest(&x->f); /* committed when it returns */
        double t0 = now_ms();
        vouch__v1__verifier_message__free_unpacked(m, NULL);
        expect_listed(x, leaf, t0, number);
        /* the API lists it as revoked, by that verdict */
        vs_cert c;
        assert_int_equal(vs_cert_list(x->f.d.store, x->f.id, &c, 1), 1);
        assert_true(c.revoked_at > 0);
        assert_int_equal(c.revoked_sequence, 2);
        vs_cert_done(&c);
        X509_free(leaf);
}

static void test_revocation_revokes(void **state) {
        t *x = *state;
        BIGNUM *number;
        X509 *leaf = trusted_leaf(x, &number);
        double t0 = now_ms();
        assert_int_equal(device_revoke(&x->f.d, sfx_device(&x->f), "test"), 0);
        expect_listed(x, leaf, t0, number);
        X509_free(leaf);
}

/* A STALE verdict before the certificate expired (a restart that superseded it, a takeover,
 * like any verdict that is not TRUSTED). */
static void test_stale_revokes(void **state) {
        t *x = *state;
        BIGNUM *number;
        X509 *leaf = trusted_leaf(x, &number);
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        v.device_id = x->f.id;
        v.status = VOUCH__V1__TRUST_STATUS__STALE;
        v.issued_at = vclock_wall();
        v.expires_at = v.issued_at + 180;
        assert_int_equal(verdict_issue(&x->f.d, sfx_device(&x->f), &v, NULL, NULL), 0);
        vs_flush(x->f.d.store);
        double t0 = now_ms();
        expect_listed(x, leaf, t0, number);
        /* expired (and past the grace): off the CRL */
        vclock_fake_advance(180 + DEVCERT_CRL_EXPIRED_GRACE + 1);
        assert_int_equal(devcert_crl_refresh(&x->f.d, false), 1);
        X509_CRL *crl = crl_of(&x->f.d);
        assert_false(crl_lists(crl, leaf));
        X509_CRL_free(crl);
        X509_free(leaf);
}

/* The CRL is reissued every interval even when nothing changed, with a larger number; and
 * its number goes on growing across a restart. */
static void test_crl_reissued(void **state) {
        t *x = *state;
        BIGNUM *number;
        X509 *leaf = trusted_leaf(x, &number);
        assert_int_equal(devcert_crl_refresh(&x->f.d, false), 0); /* nothing to do */
        vclock_fake_advance(60);
        assert_int_equal(devcert_crl_refresh(&x->f.d, false), 1);
        X509_CRL *crl = crl_of(&x->f.d);
        BIGNUM *n = crl_number_of(crl);
        assert_true(BN_cmp(n, number) > 0);
        X509_CRL_free(crl);
        /* PEM as well */
        uint8_t *pem = NULL;
        size_t len = 0;
        assert_int_equal(devcert_crl_get(&x->f.d, true, &pem, &len), 0);
        assert_true(len > 30 && memcmp(pem, "-----BEGIN X509 CRL-----", 24) == 0);
        free(pem);
        /* a restart */
        sfx_restart(&x->f);
        x->f.answer_hook = add_device_key;
        x->f.hook_data = &x->k;
        vclock_fake_advance(1);
        enable(&x->f, TD, 0);
        crl = crl_of(&x->f.d);
        BIGNUM *after = crl_number_of(crl);
        assert_true(BN_cmp(after, n) > 0);
        X509_CRL_free(crl);
        BN_free(after);
        BN_free(n);
        BN_free(number);
        X509_free(leaf);
}

/* ---- the API ---- */

static void call(t *x, const char *path, api_role role, api_response *out) {
        if (!x->f.d.api)
                assert_int_equal(api_new(&x->f.d, &x->f.d.api), 0);
        api_param q[1];
        size_t nq = 0;
        char p[300];
        snprintf(p, sizeof(p), "%s", path);
        char *qs = strchr(p, '?');
        if (qs) {
                *qs++ = 0;
                char *eq = strchr(qs, '=');
                assert_non_null(eq);
                *eq = 0;
                q[nq++] = (api_param) { qs, eq + 1 };
        }
        api_request in = { .method = API_METHOD_GET, .path = p, .query = q, .n_query = nq, .role = role, .cn = "test" };
        api_handle(x->f.d.api, &in, out);
}

static void test_api(void **state) {
        t *x = *state;
        api_response r;
        char path[200];
        BIGNUM *number;
        X509 *leaf = trusted_leaf(x, &number);
        BN_free(number);
        call(x, "/v1/crl", API_ROLE_READER, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/pkix-crl");
        const unsigned char *p = r.body;
        X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long) r.body_len);
        assert_non_null(crl);
        X509_CRL_free(crl);
        api_response_done(&r);
        call(x, "/v1/crl?format=pem", API_ROLE_READER, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/x-pem-file");
        api_response_done(&r);
        call(x, "/v1/crl?format=json", API_ROLE_READER, &r);
        assert_int_equal(r.status, 400);
        api_response_done(&r);

        /* a reader lists a device's certificates */
        snprintf(path, sizeof(path), "/v1/devices/%s/certificates", x->f.id);
        call(x, path, API_ROLE_READER, &r);
        assert_int_equal(r.status, 200);
        Vouch__V1__DeviceCertificates *dc = vouch__v1__device_certificates__unpack(NULL, r.body_len, r.body);
        assert_non_null(dc);
        assert_int_equal(dc->n_certificates, 1);
        assert_int_equal(dc->certificates[0]->sequence, 1);
        assert_false(dc->certificates[0]->revoked);
        X509 *back = parse_cert(&dc->certificates[0]->der);
        assert_int_equal(X509_cmp(back, leaf), 0);
        X509_free(back);
        vouch__v1__device_certificates__free_unpacked(dc, NULL);
        api_response_done(&r);
        assert_int_equal(device_revoke(&x->f.d, sfx_device(&x->f), "test"), 0);
        X509_CRL *listed = NULL;
        wait_listed(&x->f.d, leaf, now_ms(), &listed);
        X509_CRL_free(listed);
        snprintf(path, sizeof(path), "/v1/devices/%s/certificates?format=json", x->f.id);
        call(x, path, API_ROLE_READER, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr((const char *) r.body, "\"revoked\":true"));
        assert_non_null(strstr((const char *) r.body, "\"revoked_sequence\":\"2\""));
        api_response_done(&r);
        call(x, "/v1/devices/0000000000000000000000000000000000000000000000000000000000000000/certificates",
             API_ROLE_READER, &r);
        assert_int_equal(r.status, 404);
        api_response_done(&r);
        call(x, "/metrics", API_ROLE_READER, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr((const char *) r.body, "\nvouch_device_certs_issued_total 1\n"));
        assert_non_null(strstr((const char *) r.body, "\nvouch_crl_revoked 1\n"));
        api_response_done(&r);
        X509_free(leaf);
}

/* ---- the device CA: the operator's, the state dir's, joined; what is refused ---- */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        if (system(cmd) != 0)
                fail_msg("failed: %s", cmd);
}

/* An operator's PKI in dir: root.pem (self-signed), int.pem and int.key (an intermediate CA
 * under it), chain.pem (int.pem then root.pem), leaf.pem (not a CA, under the intermediate). */
static void make_pki(const char *dir) {
        sh("cd '%s' && printf '%%s\n' basicConstraints=critical,CA:TRUE keyUsage=critical,keyCertSign,cRLSign "
           "subjectKeyIdentifier=hash authorityKeyIdentifier=keyid >ca.cnf && "
           "printf '%%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature >leaf.cnf && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -subj /CN=root "
           "-days 3650 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
           "-out root.pem 2>/dev/null && "
           "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -subj /CN=intermediate "
           "-out int.csr 2>/dev/null && "
           "openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3650 -extfile ca.cnf "
           "-out int.pem 2>/dev/null && cat int.pem root.pem >chain.pem && "
           "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -subj /CN=leaf "
           "-out leaf.csr 2>/dev/null && "
           "openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -days 3650 -extfile leaf.cnf "
           "-out leaf.pem 2>/dev/null && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout noski.key -subj /CN=noski "
           "-days 3650 -addext subjectKeyIdentifier=none -addext basicConstraints=critical,CA:TRUE -out noski.pem "
           "2>/dev/null",
           dir);
}

static X509 *read_pem_cert(const char *path) {
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
        fclose(fp);
        assert_non_null(x);
        return x;
}

/* --device-ca-cert with its chain: the agent gets the device's certificate, the
 * intermediate and the root; the certificate verifies up to the root; the CRL is the
 * intermediate's. */
static void test_operator_ca(void **state) {
        t *x = calloc(1, sizeof(*x));
        char path[300];
        assert_non_null(x);
        sfx_setup(&x->f, true);
        qb_devkey_new(&x->k.key, QB_DEVKEY_ATTRS);
        qb_devkey_new(&x->k.soft, QB_DEVKEY_ATTRS);
        qb_key_new(&x->k.other_ak);
        x->f.answer_hook = add_device_key;
        x->f.hook_data = &x->k;
        *state = x;
        make_pki(x->f.dir);
        vouchd *d = &x->f.d;
        snprintf(path, sizeof(path), "%s/chain.pem", x->f.dir);
        d->cfg.device_ca_cert = strdup(path);
        snprintf(path, sizeof(path), "%s/int.key", x->f.dir);
        d->cfg.device_ca_key = strdup(path);
        d->cfg.trust_domain = strdup(TD);
        d->cfg.crl_url = strdup("https://pki.example.org/devices.crl");
        assert_int_equal(devcert_load(d), 0);
        assert_int_equal(devcert_start(d), 0);
        snprintf(path, sizeof(path), "%s/int.pem", x->f.dir);
        x->ca = read_pem_cert(path);
        snprintf(path, sizeof(path), "%s/root.pem", x->f.dir);
        X509 *root = read_pem_cert(path);

        Vouch__V1__VerifierMessage *m = attest(&x->f);
        assert_int_equal(m->verdict->n_device_certificates, 3);
        assert_true(der_equal(x->ca, &m->verdict->device_certificates[1]));
        assert_true(der_equal(root, &m->verdict->device_certificates[2]));
        X509 *leaf = parse_cert(&m->verdict->device_certificates[0]);
        STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(leaf, NID_crl_distribution_points, NULL, NULL);
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);
        assert_string_equal((const char *) ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
                            "https://pki.example.org/devices.crl");
        sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
        /* up to the root, through the intermediate sent with it */
        X509_STORE *st = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        STACK_OF(X509) *untrusted = sk_X509_new_null();
        sk_X509_push(untrusted, x->ca);
        X509_STORE_add_cert(st, root);
        X509_STORE_CTX_init(ctx, st, leaf, untrusted);
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t) SFX_WALL);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
        assert_int_equal(X509_verify_cert(ctx), 1);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(st);
        sk_X509_free(untrusted);
        X509_CRL *crl = crl_of(d);
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(x->ca)), 1);
        X509_CRL_free(crl);
        X509_free(leaf);
        X509_free(root);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
}

/* devcert_load refuses, before anything starts, each of these (and names what). */
static void expect_load_refused(sfx *f, const char *cert, const char *key, const char *td) {
        vouchd *d = &f->d;
        devcert_free(d);
        free(d->cfg.device_ca_cert);
        free(d->cfg.device_ca_key);
        free(d->cfg.trust_domain);
        d->cfg.device_ca_cert = cert ? strdup(cert) : NULL;
        d->cfg.device_ca_key = key ? strdup(key) : NULL;
        d->cfg.trust_domain = td ? strdup(td) : NULL;
        assert_true(devcert_load(d) < 0);
        assert_false(devcert_issuing(d));
}

static void test_load_refused(void **state) {
        t *x = calloc(1, sizeof(*x));
        char a[300], b[300], dir[200];
        assert_non_null(x);
        sfx_setup(&x->f, true);
        qb_devkey_new(&x->k.key, QB_DEVKEY_ATTRS);
        qb_devkey_new(&x->k.soft, QB_DEVKEY_ATTRS);
        qb_key_new(&x->k.other_ak);
        *state = x;
        sfx *f = &x->f;
        snprintf(dir, sizeof(dir), "%s", f->dir);
        make_pki(dir);
        /* a state dir without a device CA (made before them): --trust-domain is refused; without
         * it nothing is issued and no CRL served */
        expect_load_refused(f, NULL, NULL, TD);
        devcert_free(&f->d);
        free(f->d.cfg.trust_domain);
        f->d.cfg.trust_domain = NULL;
        assert_int_equal(devcert_load(&f->d), 0);
        uint8_t *crl = NULL;
        size_t len = 0;
        assert_int_equal(devcert_crl_get(&f->d, false, &crl, &len), -ENOENT);
        /* the operator's files: one without the other, not a pair, not a CA, missing */
        snprintf(a, sizeof(a), "%s/chain.pem", dir);
        expect_load_refused(f, a, NULL, TD);
        snprintf(b, sizeof(b), "%s/root.key", dir);
        expect_load_refused(f, a, b, TD);
        snprintf(a, sizeof(a), "%s/leaf.pem", dir);
        snprintf(b, sizeof(b), "%s/leaf.key", dir);
        expect_load_refused(f, a, b, TD);
        snprintf(a, sizeof(a), "%s/nothing.pem", dir);
        expect_load_refused(f, a, b, TD);
        snprintf(a, sizeof(a), "%s/noski.pem", dir); /* a CA without a subject key identifier */
        snprintf(b, sizeof(b), "%s/noski.key", dir);
        expect_load_refused(f, a, b, TD);
        snprintf(a, sizeof(a), "%s/int.key", dir); /* a key where the certificate belongs */
        snprintf(b, sizeof(b), "%s/int.key", dir);
        expect_load_refused(f, a, b, TD);
        /* a bad trust domain, a bad CRL URL */
        snprintf(a, sizeof(a), "%s/chain.pem", dir);
        expect_load_refused(f, a, b, "Example.ORG");
        expect_load_refused(f, a, b, "a/b");
        f->d.cfg.crl_url = strdup("ftp://x/crl");
        expect_load_refused(f, a, b, TD);
        free(f->d.cfg.crl_url);
        f->d.cfg.crl_url = strdup("http://x/a,b");
        expect_load_refused(f, a, b, TD);
        free(f->d.cfg.crl_url);
        f->d.cfg.crl_url = NULL;
        /* --device-names without --trust-domain (nothing to name), or a file that is refused */
        char names[300];
        snprintf(names, sizeof(names), "%s/names", dir);
        write_names(names, "not-an-id host\n");
        f->d.cfg.device_names = strdup(names);
        expect_load_refused(f, a, b, TD);
        write_names(names, "");
        expect_load_refused(f, a, b, NULL);
        free(f->d.cfg.device_names);
        f->d.cfg.device_names = NULL;
        /* the state dir's pair: garbled, or half of it, is an error naming the file, never
         * replaced; a pair made by init loads */
        char err[600], state_dir[200];
        snprintf(state_dir, sizeof(state_dir), "%s", f->d.cfg.state_dir);
        assert_int_equal(devca_init_state_dir(state_dir, true, err, sizeof(err)), 0);
        expect_load_refused(f, a, "/nonexistent/key", TD);
        devcert_free(&f->d);
        free(f->d.cfg.device_ca_cert);
        free(f->d.cfg.device_ca_key);
        f->d.cfg.device_ca_cert = f->d.cfg.device_ca_key = NULL;
        assert_int_equal(devcert_load(&f->d), 0);
        assert_true(devcert_issuing(&f->d));
        sh("cp '%s/device-ca.key' '%s/key.saved' && echo garbage > '%s/device-ca.key'", state_dir, dir, state_dir);
        assert_int_equal(devca_init_state_dir(state_dir, true, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "device-ca.key cannot be used"));
        expect_load_refused(f, NULL, NULL, TD);
        sh("rm '%s/device-ca.key'", state_dir);
        assert_int_equal(devca_init_state_dir(state_dir, true, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, "device-ca.key is missing"));
        sh("cp '%s/int.key' '%s/device-ca.key' && chmod 600 '%s/device-ca.key'", dir, state_dir, state_dir);
        assert_int_equal(devca_init_state_dir(state_dir, true, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "is not the certificate of"));
        sh("cp '%s/key.saved' '%s/device-ca.key'", dir, state_dir);
        assert_int_equal(devca_init_state_dir(state_dir, false, err, sizeof(err)), 0);
}

/* init --join copies the device CA, or none; never makes one of its own. */
static void test_join(void **state) {
        char base[64], a[100], b[100], c[100], err[600];
        bool copied = true;
        snprintf(base, sizeof(base), "/tmp/vouch-devca-XXXXXX");
        assert_non_null(mkdtemp(base));
        snprintf(a, sizeof(a), "%s/a", base);
        snprintf(b, sizeof(b), "%s/b", base);
        snprintf(c, sizeof(c), "%s/c", base);
        assert_int_equal(mkdir(a, 0700), 0);
        assert_int_equal(mkdir(b, 0700), 0);
        assert_int_equal(mkdir(c, 0700), 0);
        assert_int_equal(devca_join_state_dir(b, a, &copied, err, sizeof(err)), 0);
        assert_false(copied);
        assert_int_equal(devca_init_state_dir(a, true, err, sizeof(err)), 0);
        assert_int_equal(devca_join_state_dir(c, a, &copied, err, sizeof(err)), 0);
        assert_true(copied);
        sh("cmp -s '%s/device-ca.pem' '%s/device-ca.pem' && cmp -s '%s/device-ca.key' '%s/device-ca.key' && "
           "test \"$(stat -c %%a '%s/device-ca.key')\" = 600",
           a, c, a, c, c);
        sh("rm -rf '%s'", base);
}

/* ---- two instances on one PostgreSQL store ---- */

static const char *pg_url;

static void sql(const char *q) {
        PGconn *c = PQconnectdb(pg_url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PQclear(PQexec(c, "SET client_min_messages = warning"));
        PGresult *res = PQexec(c, q);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                fail_msg("%s: %s", q, PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(c);
}

typedef struct two {
        t a, b;
} two;

static void got_lease(vouchd *d, device *dev, int result, const char *holder, void *userdata) {
        *(int *) userdata = result;
}

static int setup_two(void **state) {
        two *w = calloc(1, sizeof(*w));
        char cmd[600];
        assert_non_null(w);
        sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        sfx_setup_shared(&w->a.f, true, pg_url, "a", true);
        sfx_setup_shared(&w->b.f, false, pg_url, "b", false);
        t *ts[2] = { &w->a, &w->b };
        /* one device CA for the deployment: a's, copied to b's state dir */
        char err[600];
        assert_int_equal(devca_init_state_dir(w->a.f.d.cfg.state_dir, true, err, sizeof(err)), 0);
        snprintf(cmd, sizeof(cmd), "cp -p '%s'/device-ca.* '%s'/", w->a.f.d.cfg.state_dir, w->b.f.d.cfg.state_dir);
        assert_int_equal(system(cmd), 0);
        for (int i = 0; i < 2; i++) {
                t *x = ts[i];
                qb_devkey_new(&x->k.key, QB_DEVKEY_ATTRS);
                qb_devkey_new(&x->k.soft, QB_DEVKEY_ATTRS);
                qb_key_new(&x->k.other_ak);
                x->f.answer_hook = add_device_key;
                x->f.hook_data = &x->k;
                enable(&x->f, TD, 0);
                assert_int_equal(devcert_check_deployment(&x->f.d, err, sizeof(err)), 0);
                x->ca = sd_read_cert(x->f.d.cfg.state_dir, DEVCA_CERT_FILE);
                assert_int_equal(api_start(&x->f.d), 0);
                assert_int_equal(vouchd_follow_start(&x->f.d), 0);
        }
        /* a holds the device's lease, as its session would */
        int result = 1;
        assert_int_equal(lease_get(&w->a.f.d, sfx_device(&w->a.f), got_lease, &result), 0);
        vs_flush(w->a.f.d.store);
        assert_int_equal(result, 0);
        *state = w;
        return 0;
}

static int teardown_two(void **state) {
        two *w = *state;
        api_stop(&w->a.f.d);
        api_stop(&w->b.f.d);
        t_free(&w->b);
        t_free(&w->a);
        free(w);
        return 0;
}

/* b is another instance whose device CA is a's: its CRL follows what a does, within 1 s. */
static void test_instances_share_the_crl(void **state) {
        two *w = *state;
        BIGNUM *number;
        X509 *leaf = trusted_leaf(&w->a, &number);
        X509_CRL *crl = crl_of(&w->b.f.d);
        assert_false(crl_lists(crl, leaf));
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(w->a.ca)), 1);
        X509_CRL_free(crl);
        /* an UNTRUSTED verdict at a: on b's CRL */
        rogue(&w->a.f);
        Vouch__V1__VerifierMessage *m = attest(&w->a.f);
        double t0 = now_ms();
        Vouch__V1__Verdict *v = sfx_verdict_of(m);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
        double ms = wait_listed(&w->b.f.d, leaf, t0, &crl);
        print_message("a's UNTRUSTED verdict on b's CRL after %.0f ms\n", ms);
        assert_true(ms < WITHIN_MS);
        BIGNUM *nb = crl_number_of(crl);
        assert_true(BN_cmp(nb, number) > 0); /* above a's earlier one: one numbering */
        BN_free(nb);
        BN_free(number);
        X509_CRL_free(crl);
        X509_free(leaf);
}

static void test_revocation_elsewhere(void **state) {
        two *w = *state;
        BIGNUM *number;
        X509 *leaf = trusted_leaf(&w->a, &number);
        BN_free(number);
        /* revoked at b, which does not hold the device: on a's CRL and on b's */
        double t0 = now_ms();
        device *dev = NULL;
        pthread_mutex_lock(&w->b.f.d.lock);
        dev = registry_find_locked(&w->b.f.d, w->a.f.id);
        pthread_mutex_unlock(&w->b.f.d.lock);
        for (int i = 0; !dev && i < 500; i++) { /* b follows a's enrollment */
                usleep(10000);
                pthread_mutex_lock(&w->b.f.d.lock);
                dev = registry_find_locked(&w->b.f.d, w->a.f.id);
                pthread_mutex_unlock(&w->b.f.d.lock);
        }
        assert_non_null(dev);
        t0 = now_ms();
        assert_int_equal(device_revoke(&w->b.f.d, dev, "admin"), 0);
        X509_CRL *crl = NULL;
        double ms_b = wait_listed(&w->b.f.d, leaf, t0, &crl);
        X509_CRL_free(crl);
        double ms_a = wait_listed(&w->a.f.d, leaf, t0, &crl);
        X509_CRL_free(crl);
        print_message("a revocation at b: on b's CRL after %.0f ms, on a's after %.0f ms\n", ms_b, ms_a);
        assert_true(ms_a < WITHIN_MS && ms_b < WITHIN_MS);
        X509_free(leaf);
}

/* Another instance with a device CA of its own is refused. */
static void test_other_device_ca_refused(void **state) {
        two *w = *state;
        char err[600], cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -f '%s'/device-ca.*", w->b.f.d.cfg.state_dir);
        assert_int_equal(system(cmd), 0);
        devcert_free(&w->b.f.d);
        free(w->b.f.d.cfg.trust_domain);
        free(w->b.f.d.cfg.http_listen);
        enable(&w->b.f, TD, 0);
        assert_int_equal(devcert_check_deployment(&w->b.f.d, err, sizeof(err)), -EXDEV);
        assert_non_null(strstr(err, "not the deployment's device CA"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_trusted_gets_certificate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_shorter_ttl, setup_ttl, teardown),
                cmocka_unit_test_setup_teardown(test_longer_ttl, setup_long, teardown),
                cmocka_unit_test_setup_teardown(test_bad_proofs_get_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_device_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_untrusted_gets_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_trust_domain, setup_off, teardown),
                cmocka_unit_test_setup_teardown(test_untrusted_revokes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revocation_revokes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_revokes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crl_reissued, setup, teardown),
                cmocka_unit_test_setup_teardown(test_api, setup, teardown),
                cmocka_unit_test_teardown(test_operator_ca, teardown),
                cmocka_unit_test_teardown(test_load_refused, teardown),
                cmocka_unit_test(test_join),
        };
        const struct CMUnitTest pg_tests[] = {
                cmocka_unit_test_setup_teardown(test_instances_share_the_crl, setup_two, teardown_two),
                cmocka_unit_test_setup_teardown(test_revocation_elsewhere, setup_two, teardown_two),
                cmocka_unit_test_setup_teardown(test_other_device_ca_refused, setup_two, teardown_two),
        };
        pg_url = getenv("VOUCH_TEST_STORE_URL");
        if (pg_url && strncmp(pg_url, "postgres", 8) == 0)
                return cmocka_run_group_tests_name("devcert-pg", pg_tests, NULL, NULL);
        return cmocka_run_group_tests_name("devcert", tests, NULL, NULL);
}
