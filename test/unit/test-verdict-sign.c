/* SPDX-License-Identifier: Apache-2.0 */
/* Signing verdicts and their EAR form (verifier/verdict/verdict-sign.h, verdict-ear.h): a
 * signed verdict passes the relying party's check (verdict-check.h) with the published key,
 * a changed byte anywhere fails it, the EAR token's ES256 signature verifies with OpenSSL
 * over its first two parts, and its claims are those of the verdict. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hash.h"
#include "vc-util.h"
#include "verdict-check.h"
#include "verdict-ear.h"
#include "verdict-sign.h"

#define ISSUED 1795600800 /* 2026-11-25T10:00:00Z */
#define EXPIRES (ISSUED + 3600)

static vv_key key;              /* the signer: an EC P-256 private key and its id */
static char *key_pem;           /* its public half, as verdict-keys.pem holds it */

static int setup(void **state) {
        key.pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_non_null(key.pkey);
        assert_int_equal(vv_key_id(key.pkey, key.id), 0);
        BIO *b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PUBKEY(b, key.pkey), 1);
        char *p;
        long len = BIO_get_mem_data(b, &p);
        key_pem = strndup(p, (size_t) len);
        BIO_free(b);
        return 0;
}

static int teardown(void **state) {
        EVP_PKEY_free(key.pkey);
        free(key_pem);
        return 0;
}

/* A verdict with every field set, as vouchd issues one; n_findings findings with rules. */
typedef struct tverdict {
        Vouch__V1__Verdict v;
        Vouch__V1__Finding f[3], *fp[3];
        uint8_t nonce[32], ak_name[34];
} tverdict;

static void tverdict_init(tverdict *t, int status, const char *const *rules, const int *pcrs, size_t n_findings) {
        memset(t, 0, sizeof(*t));
        vouch__v1__verdict__init(&t->v);
        for (size_t i = 0; i < sizeof(t->nonce); i++)
                t->nonce[i] = (uint8_t) (i * 7 + 1);
        t->ak_name[0] = 0x00;
        t->ak_name[1] = 0x0b;
        memset(t->ak_name + 2, 0xab, 32);
        t->v.device_id = "0123abcd";
        t->v.status = status;
        t->v.issued_at = ISSUED;
        t->v.expires_at = EXPIRES;
        t->v.nonce.data = t->nonce;
        t->v.nonce.len = sizeof(t->nonce);
        t->v.golden_name = "arch";
        t->v.golden_version = 3;
        t->v.boot_count = 7;
        t->v.ak_name.data = t->ak_name;
        t->v.ak_name.len = sizeof(t->ak_name);
        t->v.sequence = 42;
        t->v.verifier_id = "verifier-id";
        t->v.global_sequence = 420;
        t->v.ek_anchor = VOUCH__V1__EK_ANCHOR__EK_ANCHOR_KEY;
        assert_true(n_findings <= 3);
        for (size_t i = 0; i < n_findings; i++) {
                vouch__v1__finding__init(&t->f[i]);
                t->f[i].rule = (char *) rules[i];
                t->f[i].pcr = pcrs[i];
                t->f[i].event = -1;
                t->f[i].event_type = "";
                t->f[i].expected = "aa";
                t->f[i].actual = "bb";
                t->f[i].explanation = "differs";
                t->fp[i] = &t->f[i];
        }
        t->v.findings = n_findings ? t->fp : NULL;
        t->v.n_findings = n_findings;
}

static uint8_t *pack_verdict(const Vouch__V1__Verdict *v, size_t *ret_len) {
        *ret_len = vouch__v1__verdict__get_packed_size(v);
        uint8_t *b = malloc(*ret_len);
        assert_non_null(b);
        vouch__v1__verdict__pack(v, b);
        return b;
}

static vv_keyring *published_keys(void) {
        vv_keyring *k = NULL;
        assert_int_equal(vv_keyring_parse((const uint8_t *) key_pem, strlen(key_pem), &k), 0);
        return k;
}

/* The check of a serialized SignedVerdict: VV_* or -1 when it is not a SignedVerdict. */
static int check_record(const vv_keyring *k, const uint8_t *rec, size_t len) {
        Vouch__V1__SignedVerdict *sv = NULL;
        vv_result r;
        if (vv_signed_parse(rec, len, &sv) < 0)
                return -1;
        assert_int_equal(vv_verify(k, sv, ISSUED + 10, VV_DEFAULT_SKEW, &r), 0);
        int o = (int) r.outcome;
        vv_result_done(&r);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return o;
}

static void test_key_id(void **state) {
        /* the hex SHA-256 of the DER SubjectPublicKeyInfo, computed here independently */
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(key.pkey, &der);
        assert_true(n > 0);
        uint8_t md[32];
        unsigned mdlen = 0;
        char want[VV_KEY_ID_LEN + 1];
        assert_int_equal(EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL), 1);
        OPENSSL_free(der);
        vc_hex(md, sizeof(md), want);
        assert_string_equal(key.id, want);
        /* the relying party names the published key the same */
        vv_keyring *k = published_keys();
        assert_int_equal(k->n, 1);
        assert_string_equal(k->keys[0].id, key.id);
        vv_keyring_free(k);
}

static void test_sign_check_round_trip(void **state) {
        static const char *const rules[] = { "pcr_values", "secure_boot" };
        static const int pcrs[] = { 7, -1 };
        for (int status = VOUCH__V1__TRUST_STATUS__TRUSTED; status <= VOUCH__V1__TRUST_STATUS__UNKNOWN; status++) {
                tverdict t;
                tverdict_init(&t, status, rules, pcrs, status == VOUCH__V1__TRUST_STATUS__TRUSTED ? 0 : 2);
                size_t vlen, len = 0;
                uint8_t *vb = pack_verdict(&t.v, &vlen), *rec = NULL;
                assert_int_equal(vv_verdict_sign(&t.v, &key, &rec, &len), 0);
                Vouch__V1__SignedVerdict *sv = NULL;
                assert_int_equal(vv_signed_parse(rec, len, &sv), 0);
                /* the signed bytes are the verdict exactly as packed, named by the key's id */
                assert_int_equal(sv->verdict.len, vlen);
                assert_memory_equal(sv->verdict.data, vb, vlen);
                assert_string_equal(sv->key_id, key.id);
                assert_true(vc_ecdsa_p256_is_low_s(sv->signature.data, sv->signature.len));
                vv_keyring *k = published_keys();
                vv_result r;
                assert_int_equal(vv_verify(k, sv, ISSUED + 10, VV_DEFAULT_SKEW, &r), 0);
                assert_int_equal(r.outcome, VV_VALID);
                assert_string_equal(r.reason, "");
                /* what the check decodes packs back to the same bytes */
                size_t back_len;
                uint8_t *back = pack_verdict(r.verdict, &back_len);
                assert_int_equal(back_len, vlen);
                assert_memory_equal(back, vb, vlen);
                assert_int_equal(vv_accept(&r, false), status == VOUCH__V1__TRUST_STATUS__TRUSTED);
                vv_expect_device(&r, "0123abcd");
                assert_int_equal(r.outcome, VV_VALID);
                free(back);
                vv_result_done(&r);
                vv_keyring_free(k);
                vouch__v1__signed_verdict__free_unpacked(sv, NULL);
                free(rec);
                free(vb);
        }
}

/* Every bit of every byte of the record, changed: never a valid verdict. A changed verdict
 * or signature byte fails the signature, a changed key id names no key. */
static void test_tampered_byte_fails(void **state) {
        tverdict t;
        tverdict_init(&t, VOUCH__V1__TRUST_STATUS__TRUSTED, NULL, NULL, 0);
        uint8_t *rec = NULL;
        size_t len = 0;
        assert_int_equal(vv_verdict_sign(&t.v, &key, &rec, &len), 0);
        vv_keyring *k = published_keys();
        assert_int_equal(check_record(k, rec, len), VV_VALID);
        Vouch__V1__SignedVerdict *sv = NULL;
        assert_int_equal(vv_signed_parse(rec, len, &sv), 0);
        /* SignedVerdict layout: 0x0a len verdict 0x12 len signature 0x1a len key_id */
        const uint8_t *vp = memmem(rec, len, sv->verdict.data, sv->verdict.len),
                      *sp = memmem(rec, len, sv->signature.data, sv->signature.len);
        assert_non_null(vp);
        assert_non_null(sp);
        size_t verdict_at = (size_t) (vp - rec), sig_at = (size_t) (sp - rec), id_at = len - strlen(sv->key_id);
        assert_true(verdict_at < sig_at && sig_at < id_at);
        size_t refused_sig = 0, refused_key = 0;
        for (size_t i = 0; i < len; i++)
                for (unsigned bit = 0; bit < 8; bit++) {
                        rec[i] ^= (uint8_t) (1u << bit);
                        int o = check_record(k, rec, len);
                        assert_int_not_equal(o, VV_VALID);
                        if ((i >= verdict_at && i < verdict_at + sv->verdict.len) ||
                            (i >= sig_at && i < sig_at + sv->signature.len)) {
                                assert_int_equal(o, VV_BAD_SIGNATURE);
                                refused_sig++;
                        } else if (i >= id_at) {
                                assert_int_equal(o, VV_UNKNOWN_KEY);
                                refused_key++;
                        }
                        rec[i] ^= (uint8_t) (1u << bit);
                }
        assert_int_equal(refused_sig, 8 * (sv->verdict.len + sv->signature.len));
        assert_int_equal(refused_key, 8 * VV_KEY_ID_LEN);
        assert_int_equal(check_record(k, rec, len), VV_VALID);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        vv_keyring_free(k);
        free(rec);
}

/* Half of raw ECDSA signatures have the high S: every one vv_sign makes has the low one. */
static void test_sign_low_s(void **state) {
        EVP_PKEY *pub = NULL;
        BIO *b = BIO_new_mem_buf(key_pem, -1);
        pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        BIO_free(b);
        assert_non_null(pub);
        for (int i = 0; i < 64; i++) {
                uint8_t msg[8] = { (uint8_t) i }, *sig = NULL;
                size_t sig_len = 0;
                assert_int_equal(vv_sign(key.pkey, msg, sizeof(msg), &sig, &sig_len), 0);
                assert_true(vc_ecdsa_p256_is_low_s(sig, sig_len));
                EVP_MD_CTX *ctx = EVP_MD_CTX_new();
                assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub), 1);
                assert_int_equal(EVP_DigestVerify(ctx, sig, sig_len, msg, sizeof(msg)), 1);
                EVP_MD_CTX_free(ctx);
                OPENSSL_free(sig);
        }
        EVP_PKEY_free(pub);
}

/* A key that cannot sign: -EIO, and nothing written. */
static void test_sign_refused(void **state) {
        EVP_PKEY *pub = NULL, *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        BIO *b = BIO_new_mem_buf(key_pem, -1);
        pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        BIO_free(b);
        assert_non_null(pub);
        assert_non_null(rsa);
        uint8_t *sig = (uint8_t *) 0x1;
        size_t sig_len = 99;
        assert_int_equal(vv_sign(pub, (const uint8_t *) "x", 1, &sig, &sig_len), -EIO);
        /* RSA signs, but its signature is no ECDSA-Sig-Value: refused, not passed on */
        assert_int_equal(vv_sign(rsa, (const uint8_t *) "x", 1, &sig, &sig_len), -EIO);
        assert_ptr_equal(sig, (uint8_t *) 0x1);
        assert_int_equal(sig_len, 99);
        tverdict t;
        tverdict_init(&t, VOUCH__V1__TRUST_STATUS__TRUSTED, NULL, NULL, 0);
        vv_key pk = { .pkey = pub };
        memcpy(pk.id, key.id, sizeof(pk.id));
        uint8_t *rec = (uint8_t *) 0x1;
        size_t len = 99;
        assert_int_equal(vv_verdict_sign(&t.v, &pk, &rec, &len), -EIO);
        assert_ptr_equal(rec, (uint8_t *) 0x1);
        assert_int_equal(len, 99);
        EVP_PKEY_free(pub);
        EVP_PKEY_free(rsa);
}

/* ---- EAR ---- */

static uint8_t *b64url_decode(const char *s, size_t n, size_t *ret_len) {
        size_t padded = (n + 3) / 4 * 4;
        char *t = malloc(padded + 1);
        uint8_t *out = malloc(padded / 4 * 3 + 1);
        assert_non_null(t);
        assert_non_null(out);
        for (size_t i = 0; i < padded; i++) {
                char c = i < n ? s[i] : '=';
                assert_true(c != '+' && c != '/' && (i >= n || c != '=')); /* the URL alphabet, no padding */
                t[i] = c == '-' ? '+' : c == '_' ? '/' : c;
        }
        int m = EVP_DecodeBlock(out, (const unsigned char *) t, (int) padded);
        assert_true(m >= 0);
        size_t pad = padded - n;
        *ret_len = (size_t) m - pad;
        out[*ret_len] = 0;
        free(t);
        return out;
}

typedef struct ear {
        char *header, *payload;         /* decoded JSON text */
        uint8_t *sig;                   /* r || s */
        size_t sig_len;
        char *input;                    /* what was signed: the first two parts */
} ear;

static void ear_split(const char *jwt, ear *e) {
        const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        assert_non_null(d2);
        assert_null(strchr(d2 + 1, '.'));
        size_t n;
        e->header = (char *) b64url_decode(jwt, (size_t) (d1 - jwt), &n);
        e->payload = (char *) b64url_decode(d1 + 1, (size_t) (d2 - d1 - 1), &n);
        e->sig = b64url_decode(d2 + 1, strlen(d2 + 1), &e->sig_len);
        e->input = strndup(jwt, (size_t) (d2 - jwt));
}

static void ear_done(ear *e) {
        free(e->header);
        free(e->payload);
        free(e->sig);
        free(e->input);
}

/* ES256 (RFC 7518, 3.4): r || s, verified by OpenSSL with the published key over the input. */
static bool es256_verifies(const ear *e, const char *pem) {
        if (e->sig_len != 64)
                return false;
        ECDSA_SIG *s = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(e->sig, 32, NULL), *ss = BN_bin2bn(e->sig + 32, 32, NULL);
        assert_int_equal(ECDSA_SIG_set0(s, r, ss), 1);
        unsigned char *der = NULL;
        int der_len = i2d_ECDSA_SIG(s, &der);
        assert_true(der_len > 0);
        BIO *b = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        BIO_free(b);
        assert_non_null(pub);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub), 1);
        bool ok = EVP_DigestVerify(ctx, der, (size_t) der_len, (const uint8_t *) e->input, strlen(e->input)) == 1;
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(pub);
        OPENSSL_free(der);
        ECDSA_SIG_free(s);
        return ok;
}

static char *ear_of(const Vouch__V1__Verdict *v) {
        uint8_t *rec = NULL;
        size_t len = 0;
        char *jwt = NULL;
        assert_int_equal(vv_verdict_sign(v, &key, &rec, &len), 0);
        assert_int_equal(vv_ear(rec, len, &key, "vouchd test", &jwt), 0);
        free(rec);
        return jwt;
}

static void test_ear_verifies(void **state) {
        tverdict t;
        tverdict_init(&t, VOUCH__V1__TRUST_STATUS__TRUSTED, NULL, NULL, 0);
        char *jwt = ear_of(&t.v);
        ear e;
        ear_split(jwt, &e);
        assert_true(es256_verifies(&e, key_pem));
        /* the header and claims, byte for byte (json-c keeps the order they were added in) */
        char want[200], kid[VV_JWK_KID_LEN + 1];
        assert_int_equal(vv_jwk_thumbprint(key.pkey, kid), 0);
        assert_int_equal(strlen(kid), VV_JWK_KID_LEN);
        snprintf(want, sizeof(want), "{\"alg\":\"ES256\",\"typ\":\"eat+jwt\",\"kid\":\"%s\"}", kid);
        assert_string_equal(e.header, want);
        assert_string_equal(e.payload,
                            "{\"eat_profile\":\"tag:github.com,2023:veraison/ear\",\"iss\":\"verifier-id\",\"iat\":1795600800,\"exp\":1795604400,"
                            "\"ear.verifier-id\":{\"developer\":\"vouch\",\"build\":\"vouchd test\"},"
                            "\"eat_nonce\":\"AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o\","
                            "\"submods\":{\"vouch-tpm\":{\"ear.status\":\"affirming\",\"ear.trustworthiness-vector\":"
                            "{\"instance-identity\":2,\"configuration\":2,\"executables\":2,\"hardware\":2},"
                            "\"ear.appraisal-policy-id\":\"golden:arch@3\",\"vouch.device-id\":\"0123abcd\","
                            "\"vouch.sequence\":42,\"vouch.global-sequence\":420,\"vouch.boot-count\":7,"
                            "\"vouch.findings\":[]}}}");
        /* a changed byte of the signed input or of the signature does not verify */
        e.input[strlen(e.input) / 2] ^= 0x01;
        assert_false(es256_verifies(&e, key_pem));
        e.input[strlen(e.input) / 2] ^= 0x01;
        e.sig[10] ^= 0x01;
        assert_false(es256_verifies(&e, key_pem));
        e.sig[10] ^= 0x01;
        assert_true(es256_verifies(&e, key_pem));
        ear_done(&e);
        free(jwt);
}

static json_object *ear_submod(const Vouch__V1__Verdict *v, json_object **ret_top) {
        char *jwt = ear_of(v);
        ear e;
        ear_split(jwt, &e);
        assert_true(es256_verifies(&e, key_pem));
        json_object *top = json_tokener_parse(e.payload), *subs, *sub;
        assert_non_null(top);
        assert_true(json_object_object_get_ex(top, "submods", &subs));
        assert_true(json_object_object_get_ex(subs, "vouch-tpm", &sub));
        ear_done(&e);
        free(jwt);
        *ret_top = top;
        return sub;
}

static int claim_int(json_object *o, const char *a, const char *b) {
        json_object *x, *y;
        assert_true(json_object_object_get_ex(o, a, &x));
        if (!b)
                return json_object_get_int(x);
        assert_true(json_object_object_get_ex(x, b, &y));
        return json_object_get_int(y);
}

static const char *claim_str(json_object *o, const char *a) {
        json_object *x;
        return json_object_object_get_ex(o, a, &x) ? json_object_get_string(x) : NULL;
}

/* The AR4SI vector: 2 affirming, 96 contraindicated, 0 no claim, from the findings' rules. */
static void test_ear_claims(void **state) {
        static const struct {
                int status;
                const char *rules[3];
                int pcrs[3];
                size_t n;
                int identity, configuration, executables, hardware;
                const char *ear_status;
        } cases[] = {
                { VOUCH__V1__TRUST_STATUS__UNTRUSTED, { "pcr_values" }, { 0 }, 1, 2, 2, 96, 96, "contraindicated" },
                { VOUCH__V1__TRUST_STATUS__UNTRUSTED, { "pcr_values" }, { 7 }, 1, 2, 2, 96, 2, "contraindicated" },
                { VOUCH__V1__TRUST_STATUS__UNTRUSTED, { "secure_boot_enabled" }, { -1 }, 1, 2, 96, 2, 2, "contraindicated" },
                { VOUCH__V1__TRUST_STATUS__UNTRUSTED, { "platform_firmware" }, { 0 }, 1, 2, 2, 96, 96, "contraindicated" },
                { VOUCH__V1__TRUST_STATUS__UNTRUSTED, { "secure_boot", "revoked" }, { -1, -1 }, 2, 96, 0, 0, 0,
                  "contraindicated" },
                { VOUCH__V1__TRUST_STATUS__UNTRUSTED, { "attestation" }, { -1 }, 1, 96, 0, 0, 0, "contraindicated" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                tverdict t;
                json_object *top;
                tverdict_init(&t, cases[i].status, cases[i].rules, cases[i].pcrs, cases[i].n);
                json_object *sub = ear_submod(&t.v, &top);
                assert_string_equal(claim_str(sub, "ear.status"), cases[i].ear_status);
                assert_int_equal(claim_int(sub, "ear.trustworthiness-vector", "instance-identity"), cases[i].identity);
                assert_int_equal(claim_int(sub, "ear.trustworthiness-vector", "configuration"), cases[i].configuration);
                assert_int_equal(claim_int(sub, "ear.trustworthiness-vector", "executables"), cases[i].executables);
                assert_int_equal(claim_int(sub, "ear.trustworthiness-vector", "hardware"), cases[i].hardware);
                json_object *rules;
                assert_true(json_object_object_get_ex(sub, "vouch.findings", &rules));
                assert_int_equal(json_object_array_length(rules), cases[i].n);
                assert_string_equal(json_object_get_string(json_object_array_get_idx(rules, 0)), cases[i].rules[0]);
                json_object_put(top);
        }
        /* STALE and UNKNOWN: status "none", no vector; an expired-at-once verdict has no "exp";
         * no golden set, no policy id; no nonce, no eat_nonce */
        tverdict t;
        json_object *top, *x;
        static const char *const fresh[] = { "freshness" };
        static const int none[] = { -1 };
        tverdict_init(&t, VOUCH__V1__TRUST_STATUS__STALE, fresh, none, 1);
        t.v.expires_at = t.v.issued_at;
        t.v.golden_name = "";
        t.v.nonce.len = 0;
        json_object *sub = ear_submod(&t.v, &top);
        assert_string_equal(claim_str(sub, "ear.status"), "none");
        assert_false(json_object_object_get_ex(sub, "ear.trustworthiness-vector", &x));
        assert_false(json_object_object_get_ex(sub, "ear.appraisal-policy-id", &x));
        assert_false(json_object_object_get_ex(top, "exp", &x));
        assert_false(json_object_object_get_ex(top, "eat_nonce", &x));
        assert_int_equal(claim_int(top, "iat", NULL), ISSUED);
        json_object_put(top);
}

static void test_ear_refused(void **state) {
        static const uint8_t junk[] = { 0xff, 0xff, 0xff };
        char *jwt = (char *) 0x1;
        assert_int_equal(vv_ear(junk, sizeof(junk), &key, "vouchd test", &jwt), -EBADMSG);
        assert_ptr_equal(jwt, (char *) 0x1);
        /* a SignedVerdict whose verdict bytes are not a Verdict */
        ProtobufCBinaryData vb = { .data = (uint8_t *) junk, .len = sizeof(junk) }, sig = vb;
        uint8_t *rec = NULL;
        size_t len = 0;
        assert_int_equal(vv_signed_pack(&vb, &sig, key.id, &rec, &len), 0);
        assert_int_equal(vv_ear(rec, len, &key, "vouchd test", &jwt), -EBADMSG);
        assert_ptr_equal(jwt, (char *) 0x1);
        free(rec);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_key_id),
                cmocka_unit_test(test_sign_check_round_trip),
                cmocka_unit_test(test_tampered_byte_fails),
                cmocka_unit_test(test_sign_low_s),
                cmocka_unit_test(test_sign_refused),
                cmocka_unit_test(test_ear_verifies),
                cmocka_unit_test(test_ear_claims),
                cmocka_unit_test(test_ear_refused),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
