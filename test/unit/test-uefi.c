/* SPDX-License-Identifier: Apache-2.0 */
/* UEFI helpers (GUIDs, UCS-2, device paths) and the small utilities. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hash.h"
#include "uefi.h"
#include "vc-util.h"

static void test_guid(void **state) {
        char s[VC_GUID_STR_LEN];
        uint8_t g[16];
        vc_guid_to_string(vc_guid_efi_global_variable, s);
        assert_string_equal(s, "8be4df61-93ca-11d2-aa0d-00e098032b8c");
        assert_int_equal(vc_guid_from_string(s, g), 0);
        assert_memory_equal(g, vc_guid_efi_global_variable, 16);
        assert_int_equal(vc_guid_from_string("8be4df61-93ca-11d2-aa0d-00e098032b8", g), -EBADMSG);
        assert_int_equal(vc_guid_from_string("8be4df61x93ca-11d2-aa0d-00e098032b8c", g), -EBADMSG);
        assert_int_equal(vc_guid_from_string("zbe4df61-93ca-11d2-aa0d-00e098032b8c", g), -EBADMSG);
}

static void test_utf16(void **state) {
        /* "Aé€" + surrogate pair U+1F600 + unpaired surrogate + NUL + ignored */
        uint8_t s[] = { 'A', 0, 0xe9, 0, 0xac, 0x20, 0x3d, 0xd8, 0x00, 0xde, 0x00, 0xd8, 0, 0, 'x', 0 };
        char *u = vc_utf16_to_utf8(s, sizeof(s) / 2);
        assert_string_equal(u, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd");
        free(u);
}

static char *devpath(const uint8_t *p, size_t n, int expect) {
        char *t = NULL;
        assert_int_equal(vc_devpath_to_text(p, n, &t), expect);
        return t;
}

static void test_devpath_nodes(void **state) {
        uint8_t p[] = {
                2, 1, 12, 0, 0xd0, 0x41, 0x03, 0x0a, 0, 0, 0, 0,                 /* PciRoot(0x0) */
                1, 1, 6, 0, 1, 0x1d,                                             /* Pci(0x1d,0x1) */
                3, 0x17, 16, 0, 1, 0, 0, 0, 0x00, 0x25, 0x38, 0xb1, 0x71, 0xe1, 0x8f, 0x21, /* NVMe */
                4, 1, 42, 0, 1, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0,
                0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0, 0xe0, 0x98, 0x03, 0x2b, 0x8c, 2, 2,
                3, 0x0b, 37, 0, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 1,                                          /* MAC */
                0x7f, 0x01, 4, 0,                                                /* end of instance */
                4, 6, 20, 0, 0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0, 0xe0, 0x98, 0x03, 0x2b, 0x8c,
                0x42, 0x42, 6, 0, 0xab, 0xcd,                                   /* unknown: Path() */
                0x7f, 0xff, 4, 0,
        };
        char *t = devpath(p, sizeof(p), 0);
        assert_string_equal(t, "PciRoot(0x0)/Pci(0x1d,0x1)/NVMe(0x1,00-25-38-B1-71-E1-8F-21)/"
                               "HD(1,GPT,8be4df61-93ca-11d2-aa0d-00e098032b8c,0x800,0x100000)/MAC(525400123456,0x1),"
                               "FvFile(8be4df61-93ca-11d2-aa0d-00e098032b8c)/Path(66,66,abcd)");
        free(t);
}

static void test_devpath_malformed(void **state) {
        uint8_t short_len[] = { 1, 1, 3, 0 };
        uint8_t past_end[] = { 1, 1, 9, 0, 0, 0 };
        uint8_t trunc[] = { 1, 1 };
        devpath(short_len, sizeof(short_len), -EBADMSG);
        devpath(past_end, sizeof(past_end), -EBADMSG);
        devpath(trunc, sizeof(trunc), -EBADMSG);
        /* node cap */
        uint8_t *many = calloc(VC_DEVPATH_MAX_NODES + 1, 4);
        for (unsigned i = 0; i <= VC_DEVPATH_MAX_NODES; i++)
                memcpy(many + 4 * i, (uint8_t[]) { 0x42, 0x42, 4, 0 }, 4);
        devpath(many, 4 * (VC_DEVPATH_MAX_NODES + 1), -E2BIG);
        free(many);
        /* text cap: one huge vendor node */
        size_t n = 4 + 16 + 3000;
        uint8_t *big = calloc(1, n);
        memcpy(big, (uint8_t[]) { 1, 4, (uint8_t) n, (uint8_t) (n >> 8) }, 4);
        devpath(big, n, -E2BIG);
        free(big);
}

static void test_hex(void **state) {
        uint8_t out[4];
        char s[9];
        assert_int_equal(vc_unhex(" 0aFf\n", 6, out, 4), 2);
        assert_int_equal(out[0], 0x0a);
        assert_int_equal(out[1], 0xff);
        assert_int_equal(vc_unhex("abc", 3, out, 4), -EBADMSG);
        assert_int_equal(vc_unhex("zz", 2, out, 4), -EBADMSG);
        assert_int_equal(vc_unhex("0011223344", 10, out, 4), -E2BIG);
        assert_int_equal(vc_unhex("", 0, out, 4), 0);
        vc_hex((const uint8_t *) "\x01\xab", 2, s);
        assert_string_equal(s, "01ab");
}

static void test_error_format(void **state) {
        vc_error e;
        char buf[128];
        vc_error_clear(&e);
        assert_int_equal(vc_error_set(&e, -EBADMSG, 12, 3, "bad %s", "thing"), -EBADMSG);
        assert_string_equal(vc_error_format(&e, buf, sizeof(buf)), "offset 12, event 3: bad thing");
        vc_error_set(&e, -EBADMSG, SIZE_MAX, -1, "plain");
        assert_string_equal(vc_error_format(&e, buf, sizeof(buf)), "plain");
        assert_int_equal(vc_error_set(NULL, -E2BIG, 0, 0, "x"), -E2BIG);
}

static void test_algs(void **state) {
        assert_string_equal(vc_alg_by_name("SHA-256")->name, "sha256");
        assert_string_equal(vc_alg_by_name("sm3")->name, "sm3_256");
        assert_null(vc_alg_by_name("md5"));
        assert_null(vc_alg_lookup(0x0005));
        uint8_t md[32];
        assert_int_equal(vc_digest(VC_ALG_SHA256, "abc", 3, md), 0);
        assert_int_equal(md[0], 0xba);
        assert_int_equal(vc_digest(0x0005, "abc", 3, md), -ENOTSUP);
}

static void test_sbuf_cap(void **state) {
        vc_sbuf b;
        assert_int_equal(vc_sbuf_init(&b, 8), 0);
        vc_sbuf_printf(&b, "%s", "1234");
        vc_sbuf_printf(&b, "%s", "56789");
        assert_int_equal(b.error, -E2BIG);
        assert_null(vc_sbuf_take(&b));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_guid),         cmocka_unit_test(test_utf16),
                cmocka_unit_test(test_devpath_nodes), cmocka_unit_test(test_devpath_malformed),
                cmocka_unit_test(test_hex),          cmocka_unit_test(test_error_format),
                cmocka_unit_test(test_algs),         cmocka_unit_test(test_sbuf_cap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
