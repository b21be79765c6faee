/* SPDX-License-Identifier: Apache-2.0 */
/* Event content decoding and the digest-vs-data check. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "event.h"
#include "logbuilder.h"
#include "uefi.h"

static const uint16_t banks[] = { VC_ALG_SHA1, VC_ALG_SHA256, VC_ALG_SHA384 };

typedef struct fixture {
        logbuilder b;
        vc_eventlog *log;
        vc_hasher *h;
} fixture;

static int setup(void **state) {
        fixture *f = calloc(1, sizeof(*f));
        lb_init_agile(&f->b, banks, 3);
        assert_int_equal(vc_hasher_new(&f->h), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;
        vc_eventlog_free(f->log);
        vc_hasher_free(f->h);
        lb_free(&f->b);
        free(f);
        return 0;
}

/* Parses the builder's log and returns event i. */
static const vc_event *ev(fixture *f, size_t i) {
        vc_error err;
        if (!f->log)
                assert_int_equal(vc_eventlog_parse(f->b.buf, f->b.len, &f->log, &err), 0);
        assert_true(i < f->log->n_events);
        return &f->log->events[i];
}

static vc_event_check check(fixture *f, size_t i) {
        vc_event_check c;
        assert_int_equal(vc_event_check_digests(f->h, ev(f, i), &c), 0);
        return c;
}

static void decode(fixture *f, size_t i, vc_event_content *c, int expect) {
        vc_error err;
        assert_int_equal(vc_event_decode(ev(f, i), c, &err), expect);
        assert_non_null(c->text);
}

static void test_separator(void **state) {
        fixture *f = *state;
        vc_event_content c;
        lb_event(&f->b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        lb_event(&f->b, 5, EV_SEPARATOR, "\xff\xff\xff\xff", 4);
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        assert_int_equal(check(f, 1).measured, VC_MEASURED_EVENT_DATA);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_SEPARATOR);
        assert_int_equal(c.separator_value, 0);
        vc_event_content_done(&c);
        decode(f, 2, &c, 0);
        assert_int_equal(c.separator_value, 0xFFFFFFFF);
        assert_non_null(strstr(c.text, "error"));
        vc_event_content_done(&c);
}

/* SeaBIOS logs its separators with no data and measures 0xFFFFFFFF: verified as that;
 * no data with any other digest is a mismatch. */
static void test_separator_seabios(void **state) {
        fixture *f = *state;
        vc_event_content c;
        lb_event_measured(&f->b, 0, EV_SEPARATOR, "", 0, "\xff\xff\xff\xff", 4);
        lb_event_measured(&f->b, 1, EV_SEPARATOR, "", 0, "\0\0\0\0", 4);
        lb_event_measured(&f->b, 2, EV_SEPARATOR, "", 0, "", 0);
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        assert_int_equal(check(f, 1).measured, VC_MEASURED_ERROR_SEPARATOR);
        assert_int_equal(check(f, 2).status, VC_DIGEST_MISMATCH);
        assert_int_equal(check(f, 3).status, VC_DIGEST_VERIFIED); /* the empty data itself */
        assert_int_equal(check(f, 3).measured, VC_MEASURED_EVENT_DATA);
        decode(f, 1, &c, 0);
        assert_int_not_equal(c.kind, VC_CONTENT_SEPARATOR); /* the value is the digest check's to say */
        assert_string_equal(c.text, "separator with no data");
        vc_event_content_done(&c);
}

static void test_separator_mismatch_every_bank(void **state) {
        fixture *f = *state;
        lb_event_fill(&f->b, 4, EV_SEPARATOR, 0x11, "\0\0\0\0", 4);
        vc_event_check c = check(f, 1);
        assert_int_equal(c.status, VC_DIGEST_MISMATCH);
        assert_int_equal(c.mismatch_mask, 0x7);
}

static void test_one_bank_tampered(void **state) {
        /* sha256 replaced: the other banks match, so the mismatch names only sha256. */
        fixture *f = *state;
        lb_event(&f->b, 7, EV_EFI_ACTION, "Exit Boot Services Invocation", 29);
        const vc_event *e = ev(f, 1);
        ((uint8_t *) e->digests[1].bytes)[0] ^= 1;
        vc_event_check c = check(f, 1);
        assert_int_equal(c.status, VC_DIGEST_MISMATCH);
        assert_int_equal(c.mismatch_mask, 0x2);
}

static vc_event_check check_in(fixture *f, size_t i, uint32_t algs) {
        vc_event_check c;
        assert_int_equal(vc_event_check_digests_in(f->h, ev(f, i), algs, &c), 0);
        return c;
}

#define BANK(alg) (1u << vc_alg_index(alg))

/* A check of some banks alone looks at their digests only: sha256 tampered is a mismatch
 * of sha256 (its digest's position in the event) and nothing to the other banks. */
static void test_banks_checked_alone(void **state) {
        fixture *f = *state;
        lb_event(&f->b, 7, EV_EFI_ACTION, "Exit Boot Services Invocation", 29);
        lb_event(&f->b, 1, EV_PLATFORM_CONFIG_FLAGS, "flags", 5);
        ((uint8_t *) ev(f, 1)->digests[1].bytes)[0] ^= 1;
        ((uint8_t *) ev(f, 2)->digests[2].bytes)[0] ^= 1;

        vc_event_check c = check_in(f, 1, BANK(VC_ALG_SHA256));
        assert_int_equal(c.status, VC_DIGEST_MISMATCH);
        assert_int_equal(c.mismatch_mask, 0x2);
        assert_int_equal(c.unchecked_mask, 0);
        c = check_in(f, 1, BANK(VC_ALG_SHA1) | BANK(VC_ALG_SHA384));
        assert_int_equal(c.status, VC_DIGEST_VERIFIED);
        assert_int_equal(c.measured, VC_MEASURED_EVENT_DATA);
        assert_int_equal(c.mismatch_mask | c.unchecked_mask, 0);
        c = check_in(f, 1, BANK(VC_ALG_SHA256) | BANK(VC_ALG_SHA384));
        assert_int_equal(c.status, VC_DIGEST_MISMATCH);
        assert_int_equal(c.mismatch_mask, 0x2);
        /* a bank the event does not carry: nothing to check */
        c = check_in(f, 1, BANK(VC_ALG_SHA512));
        assert_int_equal(c.status, VC_DIGEST_NOT_CHECKED);
        assert_int_equal(c.mismatch_mask | c.unchecked_mask, 0);
        /* every bank is vc_event_check_digests() */
        vc_event_check all = check(f, 1);
        c = check_in(f, 1, VC_ALGS_ALL);
        assert_memory_equal(&c, &all, sizeof(c));

        /* data the spec does not define as measured: believed in the banks it matches */
        c = check_in(f, 2, BANK(VC_ALG_SHA256));
        assert_int_equal(c.status, VC_DIGEST_VERIFIED);
        c = check_in(f, 2, BANK(VC_ALG_SHA384));
        assert_int_equal(c.status, VC_DIGEST_NOT_CHECKED);
        assert_int_equal(check(f, 2).status, VC_DIGEST_MISMATCH);
        /* not extended: the same whatever the banks */
        assert_int_equal(check_in(f, 0, BANK(VC_ALG_SHA256)).status, VC_DIGEST_NOT_EXTENDED);
}

static void test_undefined_type_partial_mismatch(void **state) {
        /* For a type whose measured data is not defined, a digest matching in one bank but
         * not another is still inconsistent. */
        fixture *f = *state;
        lb_event(&f->b, 1, EV_PLATFORM_CONFIG_FLAGS, "flags", 5);
        lb_event_fill(&f->b, 2, EV_EFI_BOOT_SERVICES_DRIVER, 0x22, "x", 1);
        const vc_event *e = ev(f, 1);
        ((uint8_t *) e->digests[2].bytes)[3] ^= 1;
        vc_event_check c = check(f, 1);
        assert_int_equal(c.status, VC_DIGEST_MISMATCH);
        assert_int_equal(c.mismatch_mask, 0x4);
        assert_int_equal(check(f, 2).status, VC_DIGEST_NOT_CHECKED);
}

static void test_efi_action(void **state) {
        fixture *f = *state;
        vc_event_content c;
        lb_event(&f->b, 4, EV_EFI_ACTION, "Calling EFI Application from Boot Option", 40);
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_STRING);
        assert_string_equal(c.string, "Calling EFI Application from Boot Option");
        vc_event_content_done(&c);
}

static void test_no_action(void **state) {
        fixture *f = *state;
        vc_event_content c;
        lb_event_fill(&f->b, 0, EV_NO_ACTION, 0, "StartupLocality\0\3", 17);
        lb_event_fill(&f->b, 0, EV_NO_ACTION, 0, "SP800-155 Event3\x01\x02", 18);
        assert_int_equal(check(f, 1).status, VC_DIGEST_NOT_EXTENDED);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_STARTUP_LOCALITY);
        assert_int_equal(c.locality, 3);
        vc_event_content_done(&c);
        decode(f, 2, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_NO_ACTION);
        assert_non_null(strstr(c.text, "SP800-155 Event3: 0102"));
        vc_event_content_done(&c);
        decode(f, 0, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_SPEC_ID);
        assert_non_null(strstr(c.text, "sha1(20) sha256(32) sha384(48)"));
        vc_event_content_done(&c);
}

static void test_variable_driver_config(void **state) {
        fixture *f = *state;
        vc_event_content c;
        size_t n;
        uint8_t *v = lb_variable(vc_guid_efi_global_variable, "SecureBoot", "\1", 1, &n);
        lb_event(&f->b, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, v, n);
        /* measured as VariableData only: not acceptable for DRIVER_CONFIG */
        lb_event_measured(&f->b, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, v, n, "\1", 1);
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        assert_int_equal(check(f, 2).status, VC_DIGEST_MISMATCH);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_VARIABLE);
        assert_string_equal(c.var_name, "SecureBoot");
        assert_memory_equal(c.var_guid, vc_guid_efi_global_variable, 16);
        assert_int_equal(c.var_data_len, 1);
        assert_non_null(strstr(c.text, "enabled"));
        vc_event_content_done(&c);
        free(v);
}

static void test_variable_boot_data_only(void **state) {
        /* EDK2 measures only VariableData for boot variables: accepted, flagged. */
        fixture *f = *state;
        vc_event_content c;
        size_t n;
        uint8_t order[] = { 1, 0, 2, 0 };
        uint8_t *v = lb_variable(vc_guid_efi_global_variable, "BootOrder", order, 4, &n);
        lb_event_measured(&f->b, 1, EV_EFI_VARIABLE_BOOT, v, n, order, 4);
        lb_event(&f->b, 1, EV_EFI_VARIABLE_BOOT2, v, n);
        vc_event_check k = check(f, 1);
        assert_int_equal(k.status, VC_DIGEST_VERIFIED);
        assert_int_equal(k.measured, VC_MEASURED_VARIABLE_DATA);
        assert_int_equal(check(f, 2).measured, VC_MEASURED_EVENT_DATA);
        decode(f, 1, &c, 0);
        assert_non_null(strstr(c.text, "0001,0002"));
        vc_event_content_done(&c);
        free(v);
}

static void test_variable_malformed(void **state) {
        fixture *f = *state;
        vc_event_content c;
        size_t n;
        uint8_t *v = lb_variable(vc_guid_efi_global_variable, "db", "abc", 3, &n);
        v[24] = 200; /* VariableDataLength past the end */
        lb_event(&f->b, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, v, n);
        decode(f, 1, &c, -EBADMSG);
        assert_int_equal(c.kind, VC_CONTENT_RAW);
        assert_non_null(strstr(c.text, "malformed"));
        vc_event_content_done(&c);
        /* short of the fixed header */
        assert_int_equal(vc_parse_variable(v, 31, &(const uint8_t *) { 0 }, &(const uint8_t *) { 0 },
                                           &(uint64_t) { 0 }, &(const uint8_t *) { 0 }, &(uint64_t) { 0 }),
                         -EBADMSG);
        free(v);
}

static void test_authority_old_shim(void **state) {
        /* Old shim logged one byte more than it measured. */
        fixture *f = *state;
        size_t n;
        uint8_t *v = lb_variable(vc_guid_image_security_database, "db", "certificate-bytes", 17, &n);
        uint8_t *logged = malloc(n + 1);
        memcpy(logged, v, n);
        logged[n] = 0;
        lb_event_measured(&f->b, 7, EV_EFI_VARIABLE_AUTHORITY, logged, n + 1, v, n);
        vc_event_check k = check(f, 1);
        assert_int_equal(k.status, VC_DIGEST_VERIFIED);
        assert_int_equal(k.measured, VC_MEASURED_TRUNCATED);
        free(v);
        free(logged);
}

static void test_grub_strings(void **state) {
        fixture *f = *state;
        vc_event_content c;
        const char *cmd = "grub_cmd: linux /vmlinuz root=/dev/sda1";
        const char *kc = "kernel_cmdline: /vmlinuz root=/dev/sda1";
        lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        lb_event_measured(&f->b, 8, EV_IPL, kc, strlen(kc) + 1, kc + 16, strlen(kc) - 16);
        /* RHEL 8 form: "grub_cmd " prefix, NUL measured */
        lb_event_measured(&f->b, 8, EV_IPL, "grub_cmd set pager=1", 21, "set pager=1", 12);
        /* a grub string whose digest is of something else */
        lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, "other", 5);
        /* a file path (PCR 9): not checkable */
        lb_event_measured(&f->b, 9, EV_IPL, "/boot/vmlinuz", 14, "file contents", 13);
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        assert_int_equal(check(f, 1).measured, VC_MEASURED_STRING);
        assert_int_equal(check(f, 2).status, VC_DIGEST_VERIFIED);
        assert_int_equal(check(f, 3).status, VC_DIGEST_VERIFIED);
        assert_int_equal(check(f, 4).status, VC_DIGEST_MISMATCH);
        assert_int_equal(check(f, 5).status, VC_DIGEST_NOT_CHECKED);
        decode(f, 1, &c, 0);
        assert_string_equal(c.string, cmd);
        vc_event_content_done(&c);
}

/* GRUB's strings are bytes (UTF-8 in practice), never UCS-2: a Chinese menu entry of even
 * length is UTF-8 text, not UTF-16 mojibake; bytes that are not UTF-8 are escaped and give
 * no string; a file name in UTF-8 likewise. */
static void test_grub_utf8(void **state) {
        fixture *f = *state;
        vc_event_content c;
        const char *zh = "grub_cmd: menuentry '\xe4\xb8\xad\xe6\x96\x87' {"; /* 中文, even length */
        const char *bad = "grub_cmd: menuentry '\xff\xc3\x28\x01' {";
        const char *c1 = "grub_cmd: x\xc2\x85y"; /* U+0085, a C1 control */
        assert_int_equal(strlen(zh) % 2, 0);
        lb_event_measured(&f->b, 8, EV_IPL, zh, strlen(zh) + 1, zh + 10, strlen(zh) - 10);
        lb_event_measured(&f->b, 8, EV_IPL, bad, strlen(bad) + 1, bad + 10, strlen(bad) - 10);
        lb_event_measured(&f->b, 8, EV_IPL, c1, strlen(c1) + 1, c1 + 10, strlen(c1) - 10);
        lb_event_measured(&f->b, 9, EV_IPL, "/boot/\xe4\xb8\xad.cfg", 13, "file", 4);
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        assert_int_equal(check(f, 2).status, VC_DIGEST_VERIFIED);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_STRING);
        assert_string_equal(c.string, zh);
        assert_string_equal(c.text, zh);
        vc_event_content_done(&c);
        decode(f, 2, &c, 0);
        assert_null(c.string);
        assert_int_equal(c.kind, VC_CONTENT_RAW);
        assert_string_equal(c.text, "grub_cmd: menuentry '\\xff\\xc3(\\x01' { (not UTF-8 text)");
        vc_event_content_done(&c);
        decode(f, 3, &c, 0);
        assert_null(c.string);
        assert_non_null(strstr(c.text, "x\\xc2\\x85y"));
        vc_event_content_done(&c);
        decode(f, 4, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_STRING);
        assert_string_equal(c.string, "/boot/\xe4\xb8\xad.cfg");
        vc_event_content_done(&c);
}

static void test_systemd_utf16(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t s[] = { 'q', 0, 'u', 0, 'i', 0, 'e', 0, 't', 0, 0, 0 };
        lb_event(&f->b, 12, EV_IPL, s, sizeof(s));
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_UTF16);
        assert_string_equal(c.string, "quiet");
        vc_event_content_done(&c);
}

static void test_image(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t img[32 + 6 + 4 + 30 + 4] = { 0 };
        img[0] = 0x18; /* location */
        img[8] = 0x00, img[9] = 0x10; /* length 4096 */
        img[24] = 6 + 4 + 30 + 4;     /* device path length */
        uint8_t *p = img + 32;
        /* PCI node, file path node "\EFI\x.efi", end node */
        memcpy(p, (uint8_t[]) { 1, 1, 6, 0, 1, 2 }, 6);
        memcpy(p + 6, (uint8_t[]) { 4, 4, 34, 0 }, 4);
        const char *path = "\\EFI\\x.efi";
        for (size_t i = 0; i < strlen(path); i++)
                p[10 + 2 * i] = (uint8_t) path[i];
        memcpy(p + 40, (uint8_t[]) { 0x7f, 0xff, 4, 0 }, 4);
        lb_event_fill(&f->b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x33, img, sizeof(img));
        assert_int_equal(check(f, 1).status, VC_DIGEST_NOT_CHECKED);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_IMAGE);
        assert_int_equal(c.image_location, 0x18);
        assert_int_equal(c.image_length, 4096);
        assert_string_equal(c.device_path, "Pci(0x2,0x1)/\\EFI\\x.efi");
        vc_event_content_done(&c);
}

static void test_image_malformed(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t img[40] = { 0 };
        img[24] = 100; /* device path longer than the event */
        lb_event_fill(&f->b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x33, img, sizeof(img));
        lb_event_fill(&f->b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x33, img, 16);
        decode(f, 1, &c, -EBADMSG);
        vc_event_content_done(&c);
        decode(f, 2, &c, -EBADMSG);
        vc_event_content_done(&c);
}

static void test_blobs(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t blob[16] = { 0x00, 0x70, 0x20, 0x6b, 0, 0, 0, 0, 0x00, 0x00, 0x0d, 0, 0, 0, 0, 0 };
        uint8_t blob2[1 + 4 + 16];
        blob2[0] = 4;
        memcpy(blob2 + 1, "PEIF", 4);
        memcpy(blob2 + 5, blob, 16);
        lb_event_fill(&f->b, 0, EV_EFI_PLATFORM_FIRMWARE_BLOB, 0x44, blob, 16);
        lb_event_fill(&f->b, 0, EV_EFI_PLATFORM_FIRMWARE_BLOB2, 0x44, blob2, sizeof(blob2));
        lb_event_fill(&f->b, 0, EV_EFI_PLATFORM_FIRMWARE_BLOB, 0x44, blob, 15);
        lb_event_fill(&f->b, 0, EV_POST_CODE, 0x44, "POST CODE", 9);
        lb_event_fill(&f->b, 0, EV_POST_CODE, 0x44, blob, 16);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_BLOB);
        assert_int_equal(c.blob_base, 0x6b207000);
        assert_int_equal(c.blob_length, 0xd0000);
        vc_event_content_done(&c);
        decode(f, 2, &c, 0);
        assert_non_null(strstr(c.text, "\"PEIF\" blob at 0x6b207000"));
        vc_event_content_done(&c);
        decode(f, 3, &c, -EBADMSG);
        vc_event_content_done(&c);
        decode(f, 4, &c, 0);
        assert_string_equal(c.string, "POST CODE");
        vc_event_content_done(&c);
        decode(f, 5, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_BLOB);
        vc_event_content_done(&c);
}

static void test_gpt(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t gpt[92 + 8 + 128] = { 0 };
        memcpy(gpt, "EFI PART", 8);
        gpt[12] = 92;  /* header size */
        gpt[84] = 128; /* entry size */
        gpt[92] = 1;   /* one partition */
        const char *name = "ESP";
        for (size_t i = 0; i < 3; i++)
                gpt[100 + 56 + 2 * i] = (uint8_t) name[i];
        lb_event(&f->b, 5, EV_EFI_GPT_EVENT, gpt, sizeof(gpt));
        lb_event(&f->b, 5, EV_EFI_GPT_EVENT, gpt, sizeof(gpt) - 1);
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_GPT);
        assert_int_equal(c.count, 1);
        assert_non_null(strstr(c.text, "\"ESP\""));
        vc_event_content_done(&c);
        decode(f, 2, &c, -EBADMSG);
        vc_event_content_done(&c);
}

static void test_handoff_tables(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t t[8 + 24] = { 1 };
        lb_event_fill(&f->b, 1, EV_EFI_HANDOFF_TABLES, 0x55, t, sizeof(t));
        lb_event_fill(&f->b, 1, EV_EFI_HANDOFF_TABLES, 0x55, t, sizeof(t) - 1);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_HANDOFF_TABLES);
        assert_int_equal(c.count, 1);
        vc_event_content_done(&c);
        decode(f, 2, &c, -EBADMSG);
        vc_event_content_done(&c);
}

static void test_tagged(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t t[8 + 13] = { 0xec, 0x22, 0x3b, 0x8f, 13 };
        memcpy(t + 8, "Linux initrd", 13);
        lb_event_fill(&f->b, 9, EV_EVENT_TAG, 0x66, t, sizeof(t));
        t[4] = 14; /* size field disagrees */
        lb_event_fill(&f->b, 9, EV_EVENT_TAG, 0x66, t, sizeof(t));
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_TAGGED);
        assert_int_equal(c.tag_id, 0x8F3B22EC);
        assert_non_null(strstr(c.text, "Linux initrd"));
        vc_event_content_done(&c);
        decode(f, 2, &c, -EBADMSG);
        vc_event_content_done(&c);
}

static void test_crtm_version(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t v[] = { '1', 0, '.', 0, '0', 0, 0, 0 };
        lb_event(&f->b, 0, EV_S_CRTM_VERSION, v, sizeof(v));
        assert_int_equal(check(f, 1).status, VC_DIGEST_VERIFIED);
        decode(f, 1, &c, 0);
        assert_string_equal(c.string, "1.0");
        vc_event_content_done(&c);
}

static void test_raw_hex_capped(void **state) {
        fixture *f = *state;
        vc_event_content c;
        uint8_t *junk = malloc(4096);
        for (int i = 0; i < 4096; i++)
                junk[i] = (uint8_t) (i * 7 + 1) | 0x80;
        lb_event_fill(&f->b, 3, EV_NONHOST_CODE, 0x77, junk, 4096);
        decode(f, 1, &c, 0);
        assert_int_equal(c.kind, VC_CONTENT_RAW);
        assert_non_null(strstr(c.text, "(4096 bytes)"));
        assert_true(strlen(c.text) < 1200);
        vc_event_content_done(&c);
        free(junk);
}

static void test_not_extended_pcr_none(void **state) {
        fixture *f = *state;
        lb_event_fill(&f->b, VC_PCR_NONE, EV_EVENT_TAG, 0, "\0\0\0\0\0\0\0\0", 8);
        assert_int_equal(check(f, 1).status, VC_DIGEST_NOT_EXTENDED);
}

static void test_status_names(void **state) {
        assert_string_equal(vc_digest_status_name(VC_DIGEST_MISMATCH), "MISMATCH");
        assert_string_equal(vc_digest_status_name(VC_DIGEST_VERIFIED), "verified");
}

#define T(n) cmocka_unit_test_setup_teardown(n, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_separator),           T(test_separator_mismatch_every_bank),
                T(test_one_bank_tampered),   T(test_undefined_type_partial_mismatch),
                T(test_banks_checked_alone),
                T(test_efi_action),          T(test_no_action),
                T(test_variable_driver_config), T(test_variable_boot_data_only),
                T(test_variable_malformed),  T(test_authority_old_shim),
                T(test_grub_strings),        T(test_systemd_utf16),
                T(test_grub_utf8),
                T(test_separator_seabios),
                T(test_image),               T(test_image_malformed),
                T(test_blobs),               T(test_gpt),
                T(test_handoff_tables),      T(test_tagged),
                T(test_crtm_version),        T(test_raw_hex_capped),
                T(test_not_extended_pcr_none), T(test_status_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
