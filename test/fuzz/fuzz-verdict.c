/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes what a relying party is handed (verifier/verdict/verdict-check.h): the first
 * byte picks the target, the rest is the file.
 *   0: a SignedVerdict file (protobuf or JSON), checked against a fixed keys file;
 *   1: a keys file (PEM public keys or a VerdictKeys);
 *   2: Verdict bytes, signed here with the fixed key (a test key, public in this file) so
 *      that the check gets past the signature and decodes them, then printed as text and
 *      JSON the way vouchctl prints them.
 * Invariants: a failure leaves no output; a verdict is decoded only once its signature
 * verified; only a valid, unexpired TRUSTED verdict is accepted; key ids are the hash of
 * the key; text output is valid UTF-8 without control characters but newlines; JSON output
 * parses back as strict JSON in valid UTF-8. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "verdict-check.h"
#include "verdict-format.h"
#include "verdict-sign.h"

/* Generated for this harness only; never used anywhere else. */
static const char test_private_key[] = "-----BEGIN PRIVATE KEY-----\n"
                                       "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEj5oZihf6h7y6I+Z\n"
                                       "F+YavYjFJQ8g6TLUiO5qRu/rwMChRANCAAQI9xX433qx3ZanXOC1Zl1on2l7iuMS\n"
                                       "gAc131XVr9KU+T7KFLDCh9OimcuRsyPS76FZqmvhVaHzTAJeS6B9Utpr\n"
                                       "-----END PRIVATE KEY-----\n";
static const char test_public_key[] = "-----BEGIN PUBLIC KEY-----\n"
                                      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECPcV+N96sd2Wp1zgtWZdaJ9pe4rj\n"
                                      "EoAHNd9V1a/SlPk+yhSwwofTopnLkbMj0u+hWapr4VWh80wCXkugfVLaaw==\n"
                                      "-----END PUBLIC KEY-----\n";
static const char test_key_id[] = "c8e4c5b106a224a1f08afd1233f60cc436d46a20221cc03e4854766c5408fb71";
#define NOW 1795600800 /* 2026-11-25T10:00:00Z */

static vv_keyring *keys;
static EVP_PKEY *signer;

static void init(void) {
        if (keys)
                return;
        FUZZ_CHECK(vv_keyring_parse((const uint8_t *) test_public_key, strlen(test_public_key), &keys) == 0);
        FUZZ_CHECK(keys->n == 1 && strcmp(keys->keys[0].id, test_key_id) == 0);
        BIO *b = BIO_new_mem_buf(test_private_key, -1);
        signer = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
        FUZZ_CHECK(signer);
}

/* Every line valid UTF-8 without control characters (fuzz.h), whatever the peer sent. */
static void check_text(const char *s, size_t len) {
        char *copy = strndup(s, len), *save = NULL;
        FUZZ_CHECK(copy && strlen(copy) == len);
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                FUZZ_CHECK_TEXT(line);
        free(copy);
}

static void check_output(const Vouch__V1__SignedVerdict *sv, const Vouch__V1__Verdict *v) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        FUZZ_CHECK(f);
        vfmt_verdict_text(f, v);
        vfmt_verdict_line(f, v);
        fclose(f);
        check_text(text, len);
        free(text);
        json_object *o = vfmt_signed_json(sv, v);
        FUZZ_CHECK(o);
        const char *js = vfmt_json_text(o, 0);
        json_tokener *tok = json_tokener_new();
        FUZZ_CHECK(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8 | JSON_TOKENER_STRICT);
        json_object *back = json_tokener_parse_ex(tok, js, (int) strlen(js));
        FUZZ_CHECK(back && json_object_is_type(back, json_type_object));
        json_object_put(back);
        json_tokener_free(tok);
        json_object_put(o);
}

static void check_result(const Vouch__V1__SignedVerdict *sv, int64_t now) {
        vv_result r;
        FUZZ_CHECK(vv_verify(keys, sv, now, VV_DEFAULT_SKEW, &r) == 0);
        bool signed_ok = r.outcome != VV_UNKNOWN_KEY && r.outcome != VV_BAD_SIGNATURE;
        FUZZ_CHECK((r.verdict != NULL) == (signed_ok && r.outcome != VV_BAD_VERDICT));
        FUZZ_CHECK((r.outcome == VV_VALID) == (r.reason[0] == '\0'));
        check_text(r.reason, strlen(r.reason));
        if (vv_accept(&r, false))
                FUZZ_CHECK(r.outcome == VV_VALID && r.verdict->status == VOUCH__V1__TRUST_STATUS__TRUSTED &&
                           now < r.verdict->expires_at);
        if (vv_accept(&r, true))
                FUZZ_CHECK(r.outcome == VV_VALID && now < r.verdict->expires_at);
        if (r.verdict)
                check_output(sv, r.verdict);
        vv_result_done(&r);
}

static void fuzz_signed(const uint8_t *data, size_t size) {
        Vouch__V1__SignedVerdict *sv = (Vouch__V1__SignedVerdict *) 0x1;
        int r = vv_signed_parse(data, size, &sv);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(sv == (Vouch__V1__SignedVerdict *) 0x1);
                return;
        }
        FUZZ_CHECK(sv->verdict.len > 0 && sv->signature.len > 0 && sv->key_id && sv->key_id[0]);
        check_result(sv, NOW);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
}

static void fuzz_keys(const uint8_t *data, size_t size) {
        vv_keyring *k = (vv_keyring *) 0x1;
        int r = vv_keyring_parse(data, size, &k);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -ENOTSUP || r == -ENOENT || r == -E2BIG || r == -EEXIST || r == -ENOMEM);
                FUZZ_CHECK(k == (vv_keyring *) 0x1);
                return;
        }
        FUZZ_CHECK(k->n >= 1 && k->n <= VV_KEYS_MAX);
        for (size_t i = 0; i < k->n; i++) {
                FUZZ_CHECK(strlen(k->keys[i].id) == VV_KEY_ID_LEN);
                FUZZ_CHECK(strspn(k->keys[i].id, "0123456789abcdef") == VV_KEY_ID_LEN);
                FUZZ_CHECK(vv_keyring_find(k, k->keys[i].id) == &k->keys[i]); /* no duplicates */
                unsigned char *der = NULL;
                int n = i2d_PUBKEY(k->keys[i].pkey, &der);
                FUZZ_CHECK(n > 0);
                OPENSSL_free(der);
        }
        vv_keyring_free(k);
}

static void fuzz_signed_verdict_bytes(const uint8_t *data, size_t size) {
        if (size == 0 || size > 65536)
                return;
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        FUZZ_CHECK(vv_sign(signer, data, size, &sig, &sig_len) == 0); /* as vouchd signs */
        Vouch__V1__SignedVerdict sv = VOUCH__V1__SIGNED_VERDICT__INIT;
        sv.verdict.data = (uint8_t *) data;
        sv.verdict.len = size;
        sv.signature.data = sig;
        sv.signature.len = sig_len;
        sv.key_id = (char *) test_key_id;
        vv_result r;
        FUZZ_CHECK(vv_verify(keys, &sv, NOW, VV_DEFAULT_SKEW, &r) == 0);
        /* signed by the key the id names: never refused for the signature */
        FUZZ_CHECK(r.outcome != VV_UNKNOWN_KEY && r.outcome != VV_BAD_SIGNATURE);
        vv_result_done(&r);
        check_result(&sv, NOW);
        /* a flipped byte is refused */
        uint8_t *copy = malloc(size);
        FUZZ_CHECK(copy);
        memcpy(copy, data, size);
        copy[size / 2] ^= 0x01;
        sv.verdict.data = copy;
        FUZZ_CHECK(vv_verify(keys, &sv, NOW, VV_DEFAULT_SKEW, &r) == 0);
        FUZZ_CHECK(r.outcome == VV_BAD_SIGNATURE && !r.verdict);
        vv_result_done(&r);
        free(copy);
        OPENSSL_free(sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        init();
        if (size < 1)
                return 0;
        switch (data[0] % 3) {
        case 0: fuzz_signed(data + 1, size - 1); break;
        case 1: fuzz_keys(data + 1, size - 1); break;
        default: fuzz_signed_verdict_bytes(data + 1, size - 1); break;
        }
        return 0;
}
