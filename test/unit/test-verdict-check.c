/* SPDX-License-Identifier: Apache-2.0 */
/* The relying party's verdict check (verifier/verdict/verdict-check.h): keys and verdicts
 * are made here with OpenSSL and protobuf-c, signed as vouchd signs them (verdict-sign.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/sha.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hash.h"
#include "vc-util.h"
#include "verdict-check.h"
#include "verdict-sign.h"

#define ISSUED 1795600800 /* 2026-11-25T10:00:00Z */
#define EXPIRES (ISSUED + 3600)

typedef struct tkey {
        EVP_PKEY *pkey;
        char id[65];
        uint8_t *spki;
        size_t spki_len;
        char *pem;
} tkey;

static tkey key_a, key_b;

static void tkey_make(tkey *k, const char *type) {
        k->pkey = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(k->pkey);
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(k->pkey, &der);
        assert_true(n > 0);
        k->spki = malloc((size_t) n);
        memcpy(k->spki, der, (size_t) n);
        k->spki_len = (size_t) n;
        uint8_t md[32];
        unsigned mdlen = 0;
        assert_int_equal(EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL), 1);
        vc_hex(md, 32, k->id);
        OPENSSL_free(der);
        BIO *b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PUBKEY(b, k->pkey), 1);
        char *p;
        long len = BIO_get_mem_data(b, &p);
        k->pem = strndup(p, (size_t) len);
        BIO_free(b);
}

static void tkey_free(tkey *k) {
        EVP_PKEY_free(k->pkey);
        free(k->spki);
        free(k->pem);
        memset(k, 0, sizeof(*k));
}

static int setup(void **state) {
        tkey_make(&key_a, "EC");
        tkey_make(&key_b, "EC");
        return 0;
}

static int teardown(void **state) {
        tkey_free(&key_a);
        tkey_free(&key_b);
        return 0;
}

/* A verdict as vouchd packs it. */
static uint8_t *make_verdict(int status, int64_t issued, int64_t expires, size_t *ret_len) {
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        Vouch__V1__Finding f = VOUCH__V1__FINDING__INIT, *fp = &f;
        uint8_t nonce[32] = { 1, 2, 3 };
        v.device_id = "0123abcd";
        v.status = status;
        v.issued_at = issued;
        v.expires_at = expires;
        v.nonce.data = nonce;
        v.nonce.len = sizeof(nonce);
        v.golden_name = "arch";
        v.golden_version = 3;
        v.boot_count = 7;
        v.sequence = 42;
        v.global_sequence = 420;
        v.verifier_id = "verifier";
        if (status != VOUCH__V1__TRUST_STATUS__TRUSTED) {
                f.rule = "pcr4";
                f.pcr = 4;
                f.event = -1;
                f.event_type = "";
                f.expected = "aa";
                f.actual = "bb";
                f.explanation = "PCR 4 differs";
                v.findings = &fp;
                v.n_findings = 1;
        }
        *ret_len = vouch__v1__verdict__get_packed_size(&v);
        uint8_t *b = malloc(*ret_len);
        vouch__v1__verdict__pack(&v, b);
        return b;
}

static void sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len) {
        assert_int_equal(vv_sign(key, msg, len, sig, sig_len), 0); /* as vouchd signs */
}

/* A SignedVerdict (unpacked from its serialized form, as read from a file). */
static Vouch__V1__SignedVerdict *make_signed_bytes(const uint8_t *vb, size_t vlen, const tkey *signer, const char *key_id,
                                                   uint8_t **ret_packed, size_t *ret_plen) {
        uint8_t *sig;
        size_t sig_len;
        sign(signer->pkey, vb, vlen, &sig, &sig_len);
        ProtobufCBinaryData vd = { .data = (uint8_t *) vb, .len = vlen }, sd = { .data = sig, .len = sig_len };
        uint8_t *packed;
        size_t plen;
        assert_int_equal(vv_signed_pack(&vd, &sd, key_id, &packed, &plen), 0);
        OPENSSL_free(sig);
        Vouch__V1__SignedVerdict *out = NULL;
        assert_int_equal(vv_signed_parse(packed, plen, &out), 0);
        if (ret_packed) {
                *ret_packed = packed;
                *ret_plen = plen;
        } else
                free(packed);
        return out;
}

static Vouch__V1__SignedVerdict *make_signed(int status, int64_t issued, int64_t expires, const tkey *signer,
                                             const char *key_id) {
        size_t vlen;
        uint8_t *vb = make_verdict(status, issued, expires, &vlen);
        Vouch__V1__SignedVerdict *sv = make_signed_bytes(vb, vlen, signer, key_id, NULL, NULL);
        free(vb);
        return sv;
}

static vv_keyring *ring_pem(const char *pem) {
        vv_keyring *k = NULL;
        assert_int_equal(vv_keyring_parse((const uint8_t *) pem, strlen(pem), &k), 0);
        return k;
}

static vv_keyring *ring_ab(void) {
        char *both = NULL;
        assert_true(asprintf(&both, "%s%s", key_a.pem, key_b.pem) > 0);
        vv_keyring *k = ring_pem(both);
        free(both);
        return k;
}

static vv_outcome check(const vv_keyring *k, const Vouch__V1__SignedVerdict *sv, int64_t now) {
        vv_result r;
        assert_int_equal(vv_verify(k, sv, now, VV_DEFAULT_SKEW, &r), 0);
        vv_outcome o = r.outcome;
        /* the verdict is decoded only once its signature verified */
        if (o == VV_UNKNOWN_KEY || o == VV_BAD_SIGNATURE || o == VV_BAD_VERDICT)
                assert_null(r.verdict);
        else
                assert_non_null(r.verdict);
        assert_true((o == VV_VALID) == (r.reason[0] == '\0'));
        vv_result_done(&r);
        return o;
}

static void free_sv(Vouch__V1__SignedVerdict *sv) {
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
}

static void test_valid(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_a.id);
        vv_result r;
        assert_int_equal(k->n, 1);
        assert_string_equal(k->keys[0].id, key_a.id);
        assert_int_equal(vv_verify(k, sv, ISSUED + 10, VV_DEFAULT_SKEW, &r), 0);
        assert_int_equal(r.outcome, VV_VALID);
        assert_non_null(r.verdict);
        assert_string_equal(r.verdict->device_id, "0123abcd");
        assert_int_equal(r.verdict->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(r.verdict->sequence, 42);
        assert_true(vv_accept(&r, false));
        assert_true(vv_accept(&r, true));
        vv_result_done(&r);
        assert_null(r.verdict);
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_valid_but_untrusted(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        static const int others[] = { VOUCH__V1__TRUST_STATUS__UNTRUSTED, VOUCH__V1__TRUST_STATUS__STALE,
                                      VOUCH__V1__TRUST_STATUS__UNKNOWN, VOUCH__V1__TRUST_STATUS__TRUST_STATUS_UNSPECIFIED, 99 };
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                Vouch__V1__SignedVerdict *sv = make_signed(others[i], ISSUED, EXPIRES, &key_a, key_a.id);
                vv_result r;
                assert_int_equal(vv_verify(k, sv, ISSUED + 10, VV_DEFAULT_SKEW, &r), 0);
                assert_int_equal(r.outcome, VV_VALID);
                assert_int_equal(r.verdict->status, others[i]);
                assert_false(vv_accept(&r, false)); /* zero trust: only an explicit TRUSTED */
                assert_true(vv_accept(&r, true));
                vv_result_done(&r);
                free_sv(sv);
        }
        vv_result zero = { 0 };
        assert_false(vv_accept(&zero, false));
        assert_false(vv_accept(&zero, true));
        assert_false(vv_accept(NULL, true));
        vv_keyring_free(k);
}

static void test_flipped_verdict_byte(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_a.id);
        assert_int_equal(check(k, sv, ISSUED), VV_VALID);
        for (size_t i = 0; i < sv->verdict.len; i++) {
                for (unsigned bit = 0; bit < 8; bit += 7) {
                        sv->verdict.data[i] ^= (uint8_t) (1u << bit);
                        assert_int_equal(check(k, sv, ISSUED), VV_BAD_SIGNATURE);
                        sv->verdict.data[i] ^= (uint8_t) (1u << bit);
                }
        }
        assert_int_equal(check(k, sv, ISSUED), VV_VALID);
        /* one byte more or less */
        sv->verdict.len--;
        assert_int_equal(check(k, sv, ISSUED), VV_BAD_SIGNATURE);
        sv->verdict.len++;
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_flipped_signature_byte(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_a.id);
        for (size_t i = 0; i < sv->signature.len; i++) {
                for (unsigned bit = 0; bit < 8; bit++) {
                        sv->signature.data[i] ^= (uint8_t) (1u << bit);
                        assert_int_equal(check(k, sv, ISSUED), VV_BAD_SIGNATURE);
                        sv->signature.data[i] ^= (uint8_t) (1u << bit);
                }
        }
        assert_int_equal(check(k, sv, ISSUED), VV_VALID);
        /* a trailing byte after the DER is not the same signature */
        uint8_t *longer = malloc(sv->signature.len + 1);
        memcpy(longer, sv->signature.data, sv->signature.len);
        longer[sv->signature.len] = 0;
        uint8_t *orig = sv->signature.data;
        sv->signature.data = longer;
        sv->signature.len++;
        assert_int_equal(check(k, sv, ISSUED), VV_BAD_SIGNATURE);
        sv->signature.len--;
        sv->signature.data = orig;
        free(longer);
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_unknown_key_id(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        /* signed by B, which the keys file does not hold */
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_b, key_b.id);
        vv_result r;
        assert_int_equal(vv_verify(k, sv, ISSUED, VV_DEFAULT_SKEW, &r), 0);
        assert_int_equal(r.outcome, VV_UNKNOWN_KEY);
        assert_non_null(strstr(r.reason, key_b.id));
        assert_false(vv_accept(&r, true));
        vv_result_done(&r);
        free_sv(sv);
        /* A's id spelled differently is not A's id */
        char upper[65];
        for (size_t i = 0; i < 65; i++)
                upper[i] = (char) (key_a.id[i] >= 'a' && key_a.id[i] <= 'f' ? key_a.id[i] - 32 : key_a.id[i]);
        if (strcmp(upper, key_a.id) != 0) {
                sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, upper);
                assert_int_equal(check(k, sv, ISSUED), VV_UNKNOWN_KEY);
                free_sv(sv);
        }
        /* a prefix of A's id, and an id with a control character, name no key */
        char prefix[65];
        memcpy(prefix, key_a.id, 63);
        prefix[63] = '\0';
        sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, prefix);
        assert_int_equal(check(k, sv, ISSUED), VV_UNKNOWN_KEY);
        free_sv(sv);
        sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, "\x1b[31mevil");
        assert_int_equal(vv_verify(k, sv, ISSUED, VV_DEFAULT_SKEW, &r), 0);
        assert_int_equal(r.outcome, VV_UNKNOWN_KEY);
        assert_null(strchr(r.reason, '\x1b'));
        vv_result_done(&r);
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_key_id_not_the_signing_key(void **state) {
        vv_keyring *k = ring_ab();
        /* signed by A but naming B, which is in the file: B's key must not verify it */
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_b.id);
        assert_int_equal(check(k, sv, ISSUED), VV_BAD_SIGNATURE);
        free_sv(sv);
        vv_keyring_free(k);
}

/* A VerdictKeys as GET /v1/keys answers; declared ids are checked against the keys. */
static uint8_t *make_verdict_keys(const tkey *const *keys, const char *const *ids, const int64_t *not_after, size_t n,
                                  size_t *ret_len) {
        Vouch__V1__VerdictKey e[4], *ep[4];
        Vouch__V1__VerdictKeys vk = VOUCH__V1__VERDICT_KEYS__INIT;
        assert_true(n <= 4);
        for (size_t i = 0; i < n; i++) {
                vouch__v1__verdict_key__init(&e[i]);
                e[i].key_id = (char *) ids[i];
                e[i].spki.data = keys[i]->spki;
                e[i].spki.len = keys[i]->spki_len;
                e[i].active = i == 0;
                e[i].not_after = not_after[i];
                ep[i] = &e[i];
        }
        vk.keys = ep;
        vk.n_keys = n;
        *ret_len = vouch__v1__verdict_keys__get_packed_size(&vk);
        uint8_t *b = malloc(*ret_len ? *ret_len : 1);
        vouch__v1__verdict_keys__pack(&vk, b);
        return b;
}

static void test_verdict_keys_ids(void **state) {
        const tkey *ab[] = { &key_a, &key_b };
        const char *good[] = { key_a.id, key_b.id }, *swapped[] = { key_b.id, key_a.id };
        const int64_t none[] = { 0, 0 };
        size_t len;
        vv_keyring *k = NULL;
        uint8_t *b = make_verdict_keys(ab, good, none, 2, &len);
        assert_int_equal(vv_keyring_parse(b, len, &k), 0);
        assert_int_equal(k->n, 2);
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_b, key_b.id);
        assert_int_equal(check(k, sv, ISSUED), VV_VALID);
        free_sv(sv);
        k = vv_keyring_free(k);
        free(b);
        /* published ids that are not the hashes of their keys: the file is not to be used */
        b = make_verdict_keys(ab, swapped, none, 2, &len);
        assert_int_equal(vv_keyring_parse(b, len, &k), -EBADMSG);
        assert_null(k);
        free(b);
}

static void test_rotation(void **state) {
        vv_keyring *k = ring_ab();
        assert_int_equal(k->n, 2);
        Vouch__V1__SignedVerdict *old = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_a.id);
        Vouch__V1__SignedVerdict *new = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_b, key_b.id);
        assert_int_equal(check(k, old, ISSUED), VV_VALID);
        assert_int_equal(check(k, new, ISSUED), VV_VALID);
        vv_keyring_free(k);
        /* the retired key (A) only verifies verdicts issued before its not_after */
        const tkey *ba[] = { &key_b, &key_a };
        const char *ids[] = { key_b.id, key_a.id };
        const int64_t na_later[] = { 0, EXPIRES }, na_now[] = { 0, ISSUED }, na_before_expiry[] = { 0, EXPIRES - 1 };
        size_t len;
        uint8_t *b = make_verdict_keys(ba, ids, na_later, 2, &len);
        assert_int_equal(vv_keyring_parse(b, len, &k), 0);
        assert_int_equal(check(k, old, ISSUED), VV_VALID);
        assert_int_equal(check(k, new, ISSUED), VV_VALID);
        /* once the key's end date has passed, by the checker's clock, nothing it signed
         * verifies: not even a verdict "issued" before that date and expiring long after
         * (a leaked retired key would make exactly that) */
        Vouch__V1__SignedVerdict *forged =
                make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, 4102444800 /* 2100 */, &key_a, key_a.id);
        assert_int_equal(check(k, old, EXPIRES), VV_KEY_RETIRED);
        assert_int_equal(check(k, forged, EXPIRES), VV_KEY_RETIRED);
        assert_int_equal(check(k, forged, ISSUED), VV_KEY_RETIRED); /* expires after the key's end */
        assert_int_equal(check(k, new, EXPIRES), VV_EXPIRED);       /* the active key: its own expiry */
        free_sv(forged);
        k = vv_keyring_free(k);
        free(b);
        /* a verdict that would outlive its retired key */
        b = make_verdict_keys(ba, ids, na_before_expiry, 2, &len);
        assert_int_equal(vv_keyring_parse(b, len, &k), 0);
        assert_int_equal(check(k, old, ISSUED), VV_KEY_RETIRED);
        k = vv_keyring_free(k);
        free(b);
        b = make_verdict_keys(ba, ids, na_now, 2, &len);
        assert_int_equal(vv_keyring_parse(b, len, &k), 0);
        assert_int_equal(check(k, old, ISSUED), VV_KEY_RETIRED);
        assert_int_equal(check(k, new, ISSUED), VV_VALID);
        vv_keyring_free(k);
        free(b);
        free_sv(old);
        free_sv(new);
}

static void test_expiry(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_a.id);
        vv_result r;
        assert_int_equal(check(k, sv, EXPIRES - 1), VV_VALID);
        /* docs/API.md: valid while now < expires_at */
        assert_int_equal(vv_verify(k, sv, EXPIRES, VV_DEFAULT_SKEW, &r), 0);
        assert_int_equal(r.outcome, VV_EXPIRED);
        assert_non_null(strstr(r.reason, "2026-11-25T11:00:00Z"));
        assert_false(vv_accept(&r, true));
        vv_result_done(&r);
        assert_int_equal(check(k, sv, EXPIRES + 86400), VV_EXPIRED);
        free_sv(sv);
        /* no expires_at at all is expired */
        sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, 0, &key_a, key_a.id);
        assert_int_equal(check(k, sv, ISSUED), VV_EXPIRED);
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_high_s_refused(void **state) {
        /* (r, s) and (r, n - s) both verify; only the low one (what vouchd signs) is valid */
        vv_keyring *k = ring_pem(key_a.pem);
        size_t vlen;
        uint8_t *vb = make_verdict(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &vlen), *sig, *twin = NULL;
        size_t sig_len;
        sign(key_a.pkey, vb, vlen, &sig, &sig_len);
        assert_true(vc_ecdsa_p256_is_low_s(sig, sig_len));
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long) sig_len);
        BIGNUM *n = BN_new(), *hs = BN_new();
        EC_GROUP *grp = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
        assert_true(es && n && hs && grp && EC_GROUP_get_order(grp, n, NULL) == 1);
        assert_int_equal(BN_sub(hs, n, ECDSA_SIG_get0_s(es)), 1);
        assert_int_equal(ECDSA_SIG_set0(es, BN_dup(ECDSA_SIG_get0_r(es)), hs), 1);
        int tlen = i2d_ECDSA_SIG(es, &twin);
        assert_true(tlen > 0);
        assert_false(vc_ecdsa_p256_is_low_s(twin, (size_t) tlen));
        /* OpenSSL accepts the twin; the check does not */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key_a.pkey), 1);
        assert_int_equal(EVP_DigestVerify(ctx, twin, (size_t) tlen, vb, vlen), 1);
        EVP_MD_CTX_free(ctx);
        Vouch__V1__SignedVerdict sv = VOUCH__V1__SIGNED_VERDICT__INIT;
        sv.verdict.data = vb;
        sv.verdict.len = vlen;
        sv.key_id = (char *) key_a.id;
        sv.signature.data = sig;
        sv.signature.len = sig_len;
        assert_int_equal(check(k, &sv, ISSUED), VV_VALID);
        sv.signature.data = twin;
        sv.signature.len = (size_t) tlen;
        assert_int_equal(check(k, &sv, ISSUED), VV_BAD_SIGNATURE);
        /* normalizing the twin gives the original back */
        size_t twin_len = (size_t) tlen;
        assert_int_equal(vc_ecdsa_p256_low_s(&twin, &twin_len), 0);
        assert_true(twin_len == sig_len && memcmp(twin, sig, sig_len) == 0);
        uint8_t junk[3] = { 1, 2, 3 };
        assert_false(vc_ecdsa_p256_is_low_s(junk, sizeof(junk)));
        OPENSSL_free(twin);
        OPENSSL_free(sig);
        ECDSA_SIG_free(es);
        BN_free(n);
        EC_GROUP_free(grp);
        free(vb);
        vv_keyring_free(k);
}

static void test_expect_device(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_a.id);
        vv_result r;
        assert_int_equal(vv_verify(k, sv, ISSUED, VV_DEFAULT_SKEW, &r), 0);
        const char *dev = r.verdict->device_id;
        vv_expect_device(&r, dev);
        assert_int_equal(r.outcome, VV_VALID);
        assert_true(vv_accept(&r, false));
        vv_expect_device(&r, "0000000000000000000000000000000000000000000000000000000000000000");
        assert_int_equal(r.outcome, VV_WRONG_DEVICE);
        assert_non_null(strstr(r.reason, "not 0000"));
        assert_false(vv_accept(&r, true));
        assert_string_equal(vv_outcome_name(r.outcome), "wrong-device");
        vv_result_done(&r);
        /* an invalid verdict keeps its own reason */
        assert_int_equal(vv_verify(k, sv, EXPIRES, VV_DEFAULT_SKEW, &r), 0);
        vv_expect_device(&r, "other");
        assert_int_equal(r.outcome, VV_EXPIRED);
        vv_result_done(&r);
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_expect_device_key(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_a.id);
        static const uint8_t spki[] = "a device key's SubjectPublicKeyInfo";
        uint8_t digest[32];
        vv_result r;
        assert_non_null(SHA256(spki, sizeof(spki), digest));
        /* a verdict that proves no key is not about the party presenting one */
        assert_int_equal(vv_verify(k, sv, ISSUED, VV_DEFAULT_SKEW, &r), 0);
        vv_expect_device_key(&r, NULL, 0); /* nothing expected: unchanged */
        assert_int_equal(r.outcome, VV_VALID);
        vv_expect_device_key(&r, spki, sizeof(spki));
        assert_int_equal(r.outcome, VV_WRONG_KEY);
        assert_non_null(strstr(r.reason, "proves no device key"));
        assert_false(vv_accept(&r, true));
        assert_string_equal(vv_outcome_name(r.outcome), "wrong-key");
        vv_result_done(&r);
        /* the key's digest: valid; another key's: not */
        for (int other = 0; other < 2; other++) {
                assert_int_equal(vv_verify(k, sv, ISSUED, VV_DEFAULT_SKEW, &r), 0);
                r.verdict->device_key.data = malloc(sizeof(digest)); /* freed with the verdict */
                assert_non_null(r.verdict->device_key.data);
                memcpy(r.verdict->device_key.data, digest, sizeof(digest));
                r.verdict->device_key.data[31] ^= (uint8_t) other;
                r.verdict->device_key.len = sizeof(digest);
                vv_expect_device_key(&r, spki, sizeof(spki));
                assert_int_equal(r.outcome, other ? VV_WRONG_KEY : VV_VALID);
                if (other)
                        assert_non_null(strstr(r.reason, "another device key"));
                else
                        assert_true(vv_accept(&r, false));
                vv_result_done(&r);
        }
        /* an invalid verdict keeps its own reason */
        assert_int_equal(vv_verify(k, sv, EXPIRES, VV_DEFAULT_SKEW, &r), 0);
        vv_expect_device_key(&r, spki, sizeof(spki));
        assert_int_equal(r.outcome, VV_EXPIRED);
        vv_result_done(&r);
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_not_yet_valid(void **state) {
        vv_keyring *k = ring_pem(key_a.pem);
        Vouch__V1__SignedVerdict *sv = make_signed(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &key_a, key_a.id);
        assert_int_equal(check(k, sv, ISSUED - VV_DEFAULT_SKEW), VV_VALID); /* small clock skew */
        assert_int_equal(check(k, sv, ISSUED - VV_DEFAULT_SKEW - 1), VV_NOT_YET_VALID);
        assert_int_equal(check(k, sv, 0), VV_NOT_YET_VALID);
        vv_result r;
        assert_int_equal(vv_verify(k, sv, ISSUED - 1, 0, &r), 0);
        assert_int_equal(r.outcome, VV_NOT_YET_VALID);
        vv_result_done(&r);
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_signed_garbage(void **state) {
        /* correctly signed bytes that are not a Verdict: "could not evaluate" is not TRUSTED */
        vv_keyring *k = ring_pem(key_a.pem);
        static const uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff };
        Vouch__V1__SignedVerdict *sv = make_signed_bytes(junk, sizeof(junk), &key_a, key_a.id, NULL, NULL);
        assert_int_equal(check(k, sv, ISSUED), VV_BAD_VERDICT);
        free_sv(sv);
        vv_keyring_free(k);
}

static void test_truncated_and_garbage(void **state) {
        size_t vlen, plen;
        uint8_t *vb = make_verdict(VOUCH__V1__TRUST_STATUS__TRUSTED, ISSUED, EXPIRES, &vlen), *packed;
        Vouch__V1__SignedVerdict *sv = make_signed_bytes(vb, vlen, &key_a, key_a.id, &packed, &plen), *out = NULL;
        free_sv(sv);
        /* every proper prefix is refused (a field cut short, or key_id missing) */
        for (size_t n = 0; n < plen; n++) {
                assert_int_equal(vv_signed_parse(packed, n, &out), -EBADMSG);
                assert_null(out);
        }
        assert_int_equal(vv_signed_parse(packed, plen, &out), 0);
        free_sv(out);
        out = NULL;
        static const char *garbage[] = { "hello, world\n", "\xff\xff\xff\xff", "{", "{\"verdict_bytes\": \"zz\"}", "[]",
                                         "{\"verdict_bytes\": \"00\", \"signature\": \"00\"}" };
        for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
                assert_int_equal(vv_signed_parse((const uint8_t *) garbage[i], strlen(garbage[i]), &out), -EBADMSG);
                assert_null(out);
        }
        /* another message (a Verdict) is not a SignedVerdict */
        assert_int_equal(vv_signed_parse(vb, vlen, &out), -EBADMSG);
        /* over the cap */
        uint8_t *big = calloc(1, VV_SIGNED_MAX + 1);
        assert_int_equal(vv_signed_parse(big, VV_SIGNED_MAX + 1, &out), -E2BIG);
        free(big);
        free(packed);
        free(vb);
}

/* base64 (url: the URL-safe alphabet, no padding), written here apart from the parser */
static char *b64_dup(const uint8_t *p, size_t n, bool url) {
        const char *a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                            : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc(4 * (n / 3 + 1) + 1);
        size_t k = 0;
        assert_non_null(out);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
                out[k++] = a[v >> 18 & 63];
                out[k++] = a[v >> 12 & 63];
                out[k++] = i + 1 < n ? a[v >> 6 & 63] : '=';
                out[k++] = i + 2 < n ? a[v & 63] : '=';
        }
        while (url && k > 0 && out[k - 1] == '=')
                k--;
        out[k] = '\0';
        return out;
}

static void test_json_form(void **state) {
        size_t vlen, plen;
        uint8_t *vb = make_verdict(VOUCH__V1__TRUST_STATUS__UNTRUSTED, ISSUED, EXPIRES, &vlen), *packed;
        Vouch__V1__SignedVerdict *sv = make_signed_bytes(vb, vlen, &key_a, key_a.id, &packed, &plen), *out = NULL;
        char *vhex = vc_hex_dup(sv->verdict.data, sv->verdict.len), *shex = vc_hex_dup(sv->signature.data, sv->signature.len);
        char *json = NULL;
        /* the decoded "verdict" object claims TRUSTED: only the signed bytes count */
        assert_true(asprintf(&json,
                             "  {\"verdict\": {\"device_id\": \"x\", \"status\": \"TRUSTED\"},\n"
                             "   \"verdict_bytes\": \"%s\", \"signature\": \"%s\", \"key_id\": \"%s\"}\n",
                             vhex, shex, key_a.id) > 0);
        assert_int_equal(vv_signed_parse((const uint8_t *) json, strlen(json), &out), 0);
        assert_memory_equal(out->verdict.data, sv->verdict.data, sv->verdict.len);
        assert_memory_equal(out->signature.data, sv->signature.data, sv->signature.len);
        assert_string_equal(out->key_id, key_a.id);
        vv_keyring *k = ring_pem(key_a.pem);
        vv_result r;
        assert_int_equal(vv_verify(k, out, ISSUED, VV_DEFAULT_SKEW, &r), 0);
        assert_int_equal(r.outcome, VV_VALID);
        assert_int_equal(r.verdict->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        assert_false(vv_accept(&r, false));
        vv_result_done(&r);
        free_sv(out);
        out = NULL;
        /* trailing garbage after the object */
        char *trailing = NULL;
        assert_true(asprintf(&trailing, "%sX", json) > 0);
        assert_int_equal(vv_signed_parse((const uint8_t *) trailing, strlen(trailing), &out), -EBADMSG);
        free(trailing);
        /* a flipped hex digit in verdict_bytes fails the signature */
        vhex[10] = vhex[10] == '0' ? '1' : '0';
        free(json);
        assert_true(asprintf(&json, "{\"verdict_bytes\": \"%s\", \"signature\": \"%s\", \"key_id\": \"%s\"}", vhex, shex,
                             key_a.id) > 0);
        assert_int_equal(vv_signed_parse((const uint8_t *) json, strlen(json), &out), 0);
        assert_int_equal(check(k, out, ISSUED), VV_BAD_SIGNATURE);
        free_sv(out);
        out = NULL;
        /* the API's form, the proto3 JSON mapping: base64 (padded or not, either alphabet) */
        char *vb64 = b64_dup(sv->verdict.data, sv->verdict.len, false), *sb64 = b64_dup(sv->signature.data, sv->signature.len, false);
        char *vurl = b64_dup(sv->verdict.data, sv->verdict.len, true);
        free(json);
        assert_true(asprintf(&json, "{\"verdict\": \"%s\", \"signature\": \"%s\", \"key_id\": \"%s\"}", vb64, sb64,
                             key_a.id) > 0);
        assert_int_equal(vv_signed_parse((const uint8_t *) json, strlen(json), &out), 0);
        assert_int_equal(out->verdict.len, sv->verdict.len);
        assert_memory_equal(out->verdict.data, sv->verdict.data, sv->verdict.len);
        assert_memory_equal(out->signature.data, sv->signature.data, sv->signature.len);
        assert_int_equal(check(k, out, ISSUED), VV_VALID);
        free_sv(out);
        out = NULL;
        free(json);
        assert_true(asprintf(&json, "{\"verdict\": \"%s\", \"signature\": \"%s\", \"key_id\": \"%s\"}", vurl, sb64,
                             key_a.id) > 0);
        assert_int_equal(vv_signed_parse((const uint8_t *) json, strlen(json), &out), 0);
        assert_int_equal(check(k, out, ISSUED), VV_VALID);
        free_sv(out);
        out = NULL;
        /* not base64, or hex where base64 belongs: refused */
        const char *bad[] = { "not base64!", "A", "", "QQ=Q" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                free(json);
                assert_true(asprintf(&json, "{\"verdict\": \"%s\", \"signature\": \"%s\", \"key_id\": \"%s\"}", bad[i],
                                     sb64, key_a.id) > 0);
                assert_int_equal(vv_signed_parse((const uint8_t *) json, strlen(json), &out), -EBADMSG);
        }
        free(vb64);
        free(sb64);
        free(vurl);
        vv_keyring_free(k);
        free(json);
        free(vhex);
        free(shex);
        free_sv(sv);
        free(packed);
        free(vb);
}

static void test_keys_file_errors(void **state) {
        vv_keyring *k = NULL;
        /* no key at all */
        assert_int_equal(vv_keyring_parse((const uint8_t *) "", 0, &k), -ENOENT);
        assert_int_equal(vv_keyring_parse((const uint8_t *) "just text\n", 10, &k), -EBADMSG);
        /* a truncated PEM block */
        char *cut = strndup(key_a.pem, strlen(key_a.pem) - 20);
        assert_int_equal(vv_keyring_parse((const uint8_t *) cut, strlen(cut), &k), -EBADMSG);
        free(cut);
        /* a corrupted base64 body */
        char *bad = strdup(key_a.pem);
        bad[40] = bad[40] == 'A' ? 'B' : 'A';
        int r = vv_keyring_parse((const uint8_t *) bad, strlen(bad), &k);
        if (r == 0) { /* still a point on the curve is astronomically unlikely; then the id differs */
                assert_string_not_equal(k->keys[0].id, key_a.id);
                k = vv_keyring_free(k);
        } else
                assert_true(r == -EBADMSG);
        free(bad);
        /* the same key twice */
        char *twice = NULL;
        assert_true(asprintf(&twice, "%s%s", key_a.pem, key_a.pem) > 0);
        assert_int_equal(vv_keyring_parse((const uint8_t *) twice, strlen(twice), &k), -EEXIST);
        free(twice);
        /* a private key, a certificate: not public keys */
        BIO *b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PrivateKey(b, key_a.pkey, NULL, NULL, 0, NULL, NULL), 1);
        char *p;
        long len = BIO_get_mem_data(b, &p);
        assert_int_equal(vv_keyring_parse((const uint8_t *) p, (size_t) len, &k), -EBADMSG);
        BIO_free(b);
        static const char cert[] = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert_int_equal(vv_keyring_parse((const uint8_t *) cert, strlen(cert), &k), -EBADMSG);
        /* an RSA key, a P-384 key: not what verdicts are signed with */
        tkey rsa = { 0 }, p384 = { 0 };
        tkey_make(&rsa, "RSA");
        assert_int_equal(vv_keyring_parse((const uint8_t *) rsa.pem, strlen(rsa.pem), &k), -ENOTSUP);
        tkey_free(&rsa);
        p384.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PUBKEY(b, p384.pkey), 1);
        len = BIO_get_mem_data(b, &p);
        assert_int_equal(vv_keyring_parse((const uint8_t *) p, (size_t) len, &k), -ENOTSUP);
        BIO_free(b);
        EVP_PKEY_free(p384.pkey);
        /* too many keys */
        size_t cap = (VV_KEYS_MAX + 1) * 200, used = 0;
        char *many = malloc(cap);
        for (int i = 0; i <= VV_KEYS_MAX; i++) {
                tkey t = { 0 };
                tkey_make(&t, "EC");
                used += (size_t) snprintf(many + used, cap - used, "%s", t.pem);
                tkey_free(&t);
        }
        assert_int_equal(vv_keyring_parse((const uint8_t *) many, used, &k), -E2BIG);
        free(many);
        assert_null(k);
        /* an SPKI with a byte after it is not one key (its id would not be the key's) */
        uint8_t *longer = malloc(key_a.spki_len + 1);
        memcpy(longer, key_a.spki, key_a.spki_len);
        longer[key_a.spki_len] = 0;
        b = BIO_new(BIO_s_mem());
        assert_true(PEM_write_bio(b, "PUBLIC KEY", "", longer, (long) key_a.spki_len + 1) > 0);
        len = BIO_get_mem_data(b, &p);
        assert_int_equal(vv_keyring_parse((const uint8_t *) p, (size_t) len, &k), -EBADMSG);
        BIO_free(b);
        /* a public key under another label is not taken for one */
        b = BIO_new(BIO_s_mem());
        assert_true(PEM_write_bio(b, "CERTIFICATE", "", key_a.spki, (long) key_a.spki_len) > 0);
        len = BIO_get_mem_data(b, &p);
        assert_int_equal(vv_keyring_parse((const uint8_t *) p, (size_t) len, &k), -EBADMSG);
        BIO_free(b);
        tkey padded = key_a;
        padded.spki = longer;
        padded.spki_len++;
        const tkey *pk[] = { &padded };
        const char *pid[] = { key_a.id };
        const int64_t pna[] = { 0 };
        size_t plen;
        uint8_t *pvk = make_verdict_keys(pk, pid, pna, 1, &plen);
        assert_int_equal(vv_keyring_parse(pvk, plen, &k), -EBADMSG);
        free(pvk);
        free(longer);
        /* an empty VerdictKeys: no keys */
        size_t vklen;
        uint8_t *vk = make_verdict_keys(NULL, NULL, NULL, 0, &vklen);
        assert_int_equal(vv_keyring_parse(vk, vklen, &k), -ENOENT);
        free(vk);
}

static void test_time(void **state) {
        int64_t t;
        char buf[32];
        assert_int_equal(vv_parse_time("2026-11-25T10:00:00Z", &t), 0);
        assert_int_equal(t, 1795600800);
        assert_int_equal(vv_parse_time("1795600800", &t), 0);
        assert_int_equal(t, 1795600800);
        assert_int_equal(vv_parse_time("2026-11-25T11:00:00+01:00", &t), 0);
        assert_int_equal(t, 1795600800);
        assert_int_equal(vv_parse_time("2026-11-25T09:30:00.999-00:30", &t), 0);
        assert_int_equal(t, 1795600800);
        assert_int_equal(vv_parse_time("2024-02-29t23:59:59z", &t), 0);
        assert_int_equal(t, 1709251199);
        static const char *bad[] = { "", "2026-11-25", "2026-11-25T10:00:00", "2026-02-30T00:00:00Z",
                                     "2026-13-01T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T10:00:00Zjunk",
                                     "2026-11-25 10:00:00Z", "-5", "12abc", "1234567890123456", "2026-11-25T10:00:00.Z",
                                     "2026-11-25T10:00:00+1:00" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(vv_parse_time(bad[i], &t), -EINVAL);
        assert_string_equal(vv_format_time(1795600800, buf, sizeof(buf)), "2026-11-25T10:00:00Z");
        assert_string_equal(vv_format_time(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
        assert_string_equal(vv_format_time(INT64_MAX, buf, sizeof(buf)), "9223372036854775807");
}

static void test_names(void **state) {
        assert_string_equal(vv_status_name(VOUCH__V1__TRUST_STATUS__TRUSTED), "TRUSTED");
        assert_string_equal(vv_status_name(VOUCH__V1__TRUST_STATUS__STALE), "STALE");
        assert_null(vv_status_name(99));
        assert_string_equal(vv_outcome_name(VV_EXPIRED), "expired");
        assert_string_equal(vv_outcome_name(VV_BAD_SIGNATURE), "bad-signature");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_valid_but_untrusted),
                cmocka_unit_test(test_flipped_verdict_byte),
                cmocka_unit_test(test_flipped_signature_byte),
                cmocka_unit_test(test_unknown_key_id),
                cmocka_unit_test(test_key_id_not_the_signing_key),
                cmocka_unit_test(test_verdict_keys_ids),
                cmocka_unit_test(test_rotation),
                cmocka_unit_test(test_expiry),
                cmocka_unit_test(test_expect_device),
                cmocka_unit_test(test_high_s_refused),
                cmocka_unit_test(test_not_yet_valid),
                cmocka_unit_test(test_signed_garbage),
                cmocka_unit_test(test_truncated_and_garbage),
                cmocka_unit_test(test_json_form),
                cmocka_unit_test(test_keys_file_errors),
                cmocka_unit_test(test_expect_device_key),
                cmocka_unit_test(test_time),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
