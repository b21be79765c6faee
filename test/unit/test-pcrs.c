/* SPDX-License-Identifier: Apache-2.0 */
/* PCR value files: JSON and tpm2-tools' serialized layout. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pcrs.h"

static void expect_json_error(const char *json, const char *needle) {
        vc_pcr_set s;
        vc_error err;
        assert_int_equal(vc_pcrs_parse_json(json, strlen(json), &s, &err), -EBADMSG);
        if (!strstr(err.msg, needle))
                fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static const char sha1_0[] = "c032c3b51dbb6f96b047421512fd4b4dfde496f3";

static void test_json_ok(void **state) {
        vc_pcr_set s;
        char json[512];
        snprintf(json, sizeof(json), "{\"sha1\": {\"0\": \"%s\", \"23\": \"0x%s\"}, \"sha256\": {}}\n", sha1_0,
                 sha1_0);
        assert_int_equal(vc_pcrs_parse((const uint8_t *) json, strlen(json), &s, NULL), 0);
        assert_int_equal(s.n_banks, 2);
        const vc_pcr_bank *b = vc_pcr_set_find(&s, VC_ALG_SHA1);
        assert_int_equal(b->mask, 1u | (1u << 23));
        assert_int_equal(b->values[0][0], 0xc0);
        assert_int_equal(b->values[23][19], 0xf3);
        assert_int_equal(vc_pcr_set_find(&s, VC_ALG_SHA256)->mask, 0);
}

static void test_json_errors(void **state) {
        expect_json_error("[]", "$ must be an object");
        expect_json_error("{\"md5\": {}}", "$.md5: unknown bank");
        expect_json_error("{\"sha1\": []}", "$.sha1 must be an object");
        expect_json_error("{\"sha1\": {\"24\": \"00\"}}", "$.sha1.24: PCR index must be 0-23");
        expect_json_error("{\"sha1\": {\"-1\": \"00\"}}", "$.sha1.-1");
        expect_json_error("{\"sha1\": {\"x\": \"00\"}}", "$.sha1.x");
        expect_json_error("{\"sha1\": {\"0\": 5}}", "$.sha1.0 must be a hex string");
        expect_json_error("{\"sha1\": {\"0\": \"zz\"}}", "invalid hex");
        expect_json_error("{\"sha1\": {\"0\": \"00\"}}", "expected 20 bytes");
        expect_json_error("{\"sha1\": {", "unexpected end");
        expect_json_error("{} x", "trailing data");
        /* deep nesting is refused by the tokenizer's depth limit */
        expect_json_error("{\"sha1\": {\"0\": [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}}", "PCR JSON");
}

/* tpm2-tools serialized layout: TPML_PCR_SELECTION (132 bytes), UINT32 n, TPML_DIGEST[n]. */
static uint8_t *serialized(size_t *ret_len, uint32_t nsel, const uint16_t *algs, const uint32_t *masks,
                           uint32_t nlists, const uint32_t *counts, const uint16_t *sizes) {
        size_t len = 132 + 4 + 532 * (size_t) nlists;
        uint8_t *b = calloc(1, len);
        b[0] = (uint8_t) nsel;
        for (uint32_t i = 0; i < nsel; i++) {
                uint8_t *s = b + 4 + 8 * i;
                s[0] = (uint8_t) algs[i];
                s[1] = (uint8_t) (algs[i] >> 8);
                s[2] = 3;
                s[3] = (uint8_t) masks[i];
                s[4] = (uint8_t) (masks[i] >> 8);
                s[5] = (uint8_t) (masks[i] >> 16);
        }
        b[132] = (uint8_t) nlists;
        size_t k = 0;
        for (uint32_t l = 0; l < nlists; l++) {
                uint8_t *d = b + 136 + 532 * l;
                d[0] = (uint8_t) counts[l];
                for (uint32_t j = 0; j < counts[l]; j++, k++) {
                        d[4 + 66 * j] = (uint8_t) sizes[k];
                        memset(d + 4 + 66 * j + 2, (int) (k + 1), sizes[k]);
                }
        }
        *ret_len = len;
        return b;
}

static void test_serialized_two_banks(void **state) {
        /* sha256 PCRs 0..8 then sha1 PCRs 0,16: spans two TPML_DIGESTs and a bank change
         * inside one of them, as tpm2_quote writes it. */
        uint16_t algs[] = { VC_ALG_SHA256, VC_ALG_SHA1 };
        uint32_t masks[] = { 0x1ff, 0x10001 }, counts[] = { 8, 3 };
        uint16_t sizes[] = { 32, 32, 32, 32, 32, 32, 32, 32, 32, 20, 20 };
        size_t len;
        uint8_t *b = serialized(&len, 2, algs, masks, 2, counts, sizes);
        vc_pcr_set s;
        vc_error err;
        assert_int_equal(vc_pcrs_parse(b, len, &s, &err), 0);
        const vc_pcr_bank *b256 = vc_pcr_set_find(&s, VC_ALG_SHA256), *b1 = vc_pcr_set_find(&s, VC_ALG_SHA1);
        assert_int_equal(b256->mask, 0x1ff);
        assert_int_equal(b1->mask, 0x10001);
        assert_int_equal(b256->values[0][0], 1);
        assert_int_equal(b256->values[8][31], 9);
        assert_int_equal(b1->values[0][0], 10);
        assert_int_equal(b1->values[16][19], 11);
        free(b);
}

static void expect_ser_error(uint8_t *b, size_t len, const char *needle) {
        vc_pcr_set s;
        vc_error err;
        assert_true(vc_pcrs_parse_tpm2_serialized(b, len, &s, &err) < 0);
        if (!strstr(err.msg, needle))
                fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static void test_serialized_errors(void **state) {
        uint16_t algs[] = { VC_ALG_SHA256 };
        uint32_t masks[] = { 0x3 }, counts[] = { 2 };
        uint16_t sizes[] = { 32, 32 };
        size_t len;
        uint8_t *b = serialized(&len, 1, algs, masks, 1, counts, sizes);
        expect_ser_error(b, 100, "shorter than");
        expect_ser_error(b, len - 1, "expected");
        b[0] = 17;
        expect_ser_error(b, len, "at most 16");
        b[0] = 1;
        b[6] = 5;
        expect_ser_error(b, len, "sizeofSelect 5");
        b[6] = 3;
        b[4] = 0x99;
        expect_ser_error(b, len, "unknown bank algorithm 0x0099");
        b[4] = 0x0b;
        b[136] = 9;
        expect_ser_error(b, len, "at most 8");
        b[136] = 3;
        expect_ser_error(b, len, "more digests than selected");
        b[136] = 1;
        expect_ser_error(b, len, "1 digests for 2 selected");
        b[136] = 2;
        b[140] = 20;
        expect_ser_error(b, len, "digest size 20, expected 32");
        b[140] = 32;
        b[132] = 17;
        expect_ser_error(b, len, "digest lists");
        b[132] = 1;
        vc_pcr_set s;
        assert_int_equal(vc_pcrs_parse_tpm2_serialized(b, len, &s, NULL), 0);
        free(b);
}

static void test_set_bank(void **state) {
        vc_pcr_set s = { 0 };
        assert_null(vc_pcr_set_bank(&s, 0x1234));
        vc_pcr_bank *b = vc_pcr_set_bank(&s, VC_ALG_SHA384);
        assert_non_null(b);
        assert_int_equal(b->size, 48);
        assert_ptr_equal(vc_pcr_set_bank(&s, VC_ALG_SHA384), b);
        assert_int_equal(s.n_banks, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_json_ok),
                cmocka_unit_test(test_json_errors),
                cmocka_unit_test(test_serialized_two_banks),
                cmocka_unit_test(test_serialized_errors),
                cmocka_unit_test(test_set_bank),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
