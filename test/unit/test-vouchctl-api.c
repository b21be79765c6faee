/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl's API client, the parts that need no server: configuration, server URLs,
 * request paths, error messages; and the JSON and text forms of verdicts, devices, keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api-client.h"
#include "verdict-format.h"

static void test_config(void **state) {
        static const char text[] = "# vouchctl\n"
                                   "server = https://verifier.example:8443\n"
                                   "\n"
                                   "  cert=/etc/vouch/pe.crt  \r\n"
                                   "key =\t/etc/vouch/pe.key\n"
                                   "ca = /etc/vouch/ca.pem\n"
                                   "server = https://127.0.0.1:9443";
        api_config cfg = { 0 };
        unsigned line = 0;
        assert_int_equal(api_config_parse(text, strlen(text), &cfg, &line), 0);
        assert_string_equal(cfg.server, "https://127.0.0.1:9443"); /* the last one wins */
        assert_string_equal(cfg.cert, "/etc/vouch/pe.crt");
        assert_string_equal(cfg.key, "/etc/vouch/pe.key");
        assert_string_equal(cfg.ca, "/etc/vouch/ca.pem");
        api_config_done(&cfg);
        assert_null(cfg.server);

        static const struct {
                const char *text;
                unsigned line;
        } bad[] = {
                { "server = https://x\nbogus = 1\n", 2 },
                { "\n\n# c\nserver https://x\n", 4 },
                { "cert =\n", 1 },
                { "ca = a\0b", 0 },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                size_t len = i == 3 ? 8 : strlen(bad[i].text);
                line = 99;
                assert_int_equal(api_config_parse(bad[i].text, len, &cfg, &line), -EBADMSG);
                assert_int_equal(line, bad[i].line);
                api_config_done(&cfg);
        }
}

static void test_server_url(void **state) {
        api_server s;
        assert_int_equal(api_server_parse("https://verifier.example:8443", &s), 0);
        assert_string_equal(s.host, "verifier.example");
        assert_int_equal(s.port, 8443);
        assert_false(s.host_is_ip);
        assert_string_equal(s.prefix, "");
        assert_int_equal(api_server_parse("HTTPS://127.0.0.1:9443/", &s), 0);
        assert_string_equal(s.host, "127.0.0.1");
        assert_true(s.host_is_ip);
        assert_string_equal(s.prefix, "");
        assert_int_equal(api_server_parse("https://[::1]:9443/vouch/", &s), 0);
        assert_string_equal(s.host, "::1");
        assert_true(s.host_is_ip);
        assert_int_equal(s.port, 9443);
        assert_string_equal(s.prefix, "/vouch");
        assert_int_equal(api_server_parse("https://localhost", &s), 0);
        assert_int_equal(s.port, 443);
        static const char *bad[] = { "http://127.0.0.1:80", "127.0.0.1:9443", "https://", "https://:9443",
                                     "https://host:0",      "https://host:65536", "https://host:9x",
                                     "https://host:",       "https://[::1",      "https://[::1]x:1",
                                     "https://ho st:1",     "https://host?x=1",  "https://a:b:c",
                                     "https://user@host:1", NULL };
        for (size_t i = 0; bad[i]; i++)
                assert_int_equal(api_server_parse(bad[i], &s), -EINVAL);
        assert_int_equal(api_server_parse(NULL, &s), -EINVAL);
}

static void test_paths(void **state) {
        api_server s;
        char out[API_PATH_MAX], small[24];
        assert_int_equal(api_server_parse("https://127.0.0.1:9443", &s), 0);
        assert_int_equal(api_device_path(&s, "0123abcdef", "verdict", out, sizeof(out)), 0);
        assert_string_equal(out, "/v1/devices/0123abcdef/verdict");
        assert_int_equal(api_device_path(&s, "0123abcdef", NULL, out, sizeof(out)), 0);
        assert_string_equal(out, "/v1/devices/0123abcdef");
        /* a device id cannot leave its path segment */
        assert_int_equal(api_device_path(&s, "../../keys?x=1#", "approve", out, sizeof(out)), 0);
        assert_string_equal(out, "/v1/devices/..%2F..%2Fkeys%3Fx%3D1%23/approve");
        assert_int_equal(api_device_path(&s, "a b\n\xc3\xa9~_-.", "golden", out, sizeof(out)), 0);
        assert_string_equal(out, "/v1/devices/a%20b%0A%C3%A9~_-./golden");
        assert_int_equal(api_device_path(&s, "", "verdict", out, sizeof(out)), -EINVAL);
        assert_int_equal(api_device_path(&s, "0123abcdef", "verdict", small, sizeof(small)), -E2BIG);

        assert_int_equal(api_server_parse("https://h:1/pre/fix/", &s), 0);
        assert_int_equal(api_path(&s, "/v1/verdicts", out, sizeof(out)), 0);
        assert_string_equal(out, "/pre/fix/v1/verdicts");
        assert_int_equal(api_query_add(out, sizeof(out), "status", "UNTRUSTED"), 0);
        assert_int_equal(api_query_add(out, sizeof(out), "page_size", "10"), 0);
        assert_int_equal(api_query_add(out, sizeof(out), "page_token", "a+b/c=&d"), 0);
        assert_string_equal(out, "/pre/fix/v1/verdicts?status=UNTRUSTED&page_size=10&page_token=a%2Bb%2Fc%3D%26d");
        /* too long: unchanged */
        strcpy(small, "/v1/watch");
        assert_int_equal(api_query_add(small, sizeof(small), "since", "123456789012345"), -E2BIG);
        assert_string_equal(small, "/v1/watch");
        assert_int_equal(api_query_add(small, sizeof(small), "since", "1234567"), 0);
        assert_string_equal(small, "/v1/watch?since=1234567");

        char esc[4];
        assert_int_equal(api_escape("abc", esc, sizeof(esc)), 0);
        assert_int_equal(api_escape("abcd", esc, sizeof(esc)), -E2BIG);
        assert_int_equal(api_escape("a/", esc, sizeof(esc)), -E2BIG);
}

static void test_error_text(void **state) {
        char buf[256];
        Vouch__V1__Error e = VOUCH__V1__ERROR__INIT;
        e.code = 13;
        e.message = "reader 'pe' may not call POST /v1/devices/x/revoke";
        uint8_t packed[128];
        size_t n = vouch__v1__error__pack(&e, packed);
        api_response r = { .status = 403, .body = packed, .len = n };
        strcpy(r.content_type, "application/x-protobuf");
        assert_string_equal(api_error_text(&r, buf, sizeof(buf)),
                            "HTTP 403 Forbidden: reader 'pe' may not call POST /v1/devices/x/revoke");
        /* not protobuf: the start of the body, control characters blanked */
        static uint8_t text[] = "no such device\n\x1b[2J";
        api_response t = { .status = 404, .body = text, .len = sizeof(text) - 1 };
        strcpy(t.content_type, "text/plain");
        assert_string_equal(api_error_text(&t, buf, sizeof(buf)), "HTTP 404 Not Found: no such device  [2J");
        api_response empty = { .status = 503 };
        assert_string_equal(api_error_text(&empty, buf, sizeof(buf)), "HTTP 503 Service Unavailable");
        api_response odd = { .status = 418 };
        assert_string_equal(api_error_text(&odd, buf, sizeof(buf)), "HTTP 418");
}

static Vouch__V1__Verdict *sample_verdict(Vouch__V1__Verdict *v, Vouch__V1__Finding *f, Vouch__V1__Finding **fp,
                                          uint8_t *nonce) {
        vouch__v1__verdict__init(v);
        vouch__v1__finding__init(f);
        v->device_id = "dev1";
        v->status = VOUCH__V1__TRUST_STATUS__UNTRUSTED;
        f->rule = "pcr4";
        f->pcr = 4;
        f->event = 23;
        f->event_type = "EV_EFI_BOOT_SERVICES_APPLICATION";
        f->expected = "aa";
        f->actual = "bb";
        f->explanation = "boot application\nnot allowed";
        *fp = f;
        v->findings = fp;
        v->n_findings = 1;
        v->issued_at = 1795600800;
        v->expires_at = 1795604400;
        nonce[0] = 0xde;
        nonce[1] = 0xad;
        v->nonce.data = nonce;
        v->nonce.len = 2;
        v->golden_name = "arch";
        v->golden_version = 3;
        v->boot_count = 7;
        v->sequence = 42;
        v->verifier_id = "ver";
        v->global_sequence = 9007199254740993ULL; /* past 2^53: kept exact as a JSON integer */
        return v;
}

static void test_verdict_json(void **state) {
        Vouch__V1__Verdict v;
        Vouch__V1__Finding f, *fp;
        uint8_t nonce[2];
        sample_verdict(&v, &f, &fp, nonce);
        json_object *o = vfmt_verdict_json(&v);
        assert_string_equal(vfmt_json_text(o, 0),
                            "{\"device_id\":\"dev1\",\"status\":\"UNTRUSTED\",\"findings\":[{\"rule\":\"pcr4\",\"pcr\":4,"
                            "\"event\":23,\"event_type\":\"EV_EFI_BOOT_SERVICES_APPLICATION\",\"expected\":\"aa\","
                            "\"actual\":\"bb\",\"explanation\":\"boot application\\nnot allowed\"}],"
                            "\"issued_at\":1795600800,\"expires_at\":1795604400,\"nonce\":\"dead\","
                            "\"golden_name\":\"arch\",\"golden_version\":3,\"boot_count\":7,\"ak_name\":\"\","
                            "\"sequence\":42,\"verifier_id\":\"ver\",\"global_sequence\":9007199254740993,"
                            "\"ek_anchor\":\"CERTIFICATE\",\"device_key\":\"\"}");
        json_object_put(o);

        /* an enum value this build does not know stays a number */
        v.status = 77;
        o = vfmt_verdict_json(&v);
        json_object *st;
        assert_true(json_object_object_get_ex(o, "status", &st));
        assert_true(json_object_is_type(st, json_type_int));
        assert_int_equal(json_object_get_int(st), 77);
        json_object_put(o);

        /* SignedVerdict: decoded verdict next to the signed bytes (docs/API.md) */
        Vouch__V1__SignedVerdict sv = VOUCH__V1__SIGNED_VERDICT__INIT;
        uint8_t vb[] = { 0x0a, 0x01, 0x41 }, sig[] = { 0x30, 0x45 };
        sv.verdict.data = vb;
        sv.verdict.len = sizeof(vb);
        sv.signature.data = sig;
        sv.signature.len = sizeof(sig);
        sv.key_id = "9f2c";
        o = vfmt_signed_json(&sv, NULL);
        assert_string_equal(vfmt_json_text(o, 0),
                            "{\"verdict\":null,\"verdict_bytes\":\"0a0141\",\"signature\":\"3045\",\"key_id\":\"9f2c\"}");
        json_object_put(o);
}

static void test_device_and_keys_json(void **state) {
        Vouch__V1__DeviceInfo d = VOUCH__V1__DEVICE_INFO__INIT;
        d.id = "dev1";
        d.approved = 1;
        d.golden = "";
        d.enrolled_at = 1795600800;
        d.status = VOUCH__V1__TRUST_STATUS__STALE;
        d.sequence = 5;
        json_object *o = vfmt_device_json(&d);
        assert_string_equal(vfmt_json_text(o, 0),
                            "{\"id\":\"dev1\",\"approved\":true,\"revoked\":false,\"golden\":\"\","
                            "\"enrolled_at\":1795600800,\"status\":\"STALE\",\"sequence\":5,\"connected\":false}");
        json_object_put(o);

        Vouch__V1__VerdictKey k = VOUCH__V1__VERDICT_KEY__INIT, *kp = &k;
        Vouch__V1__VerdictKeys ks = VOUCH__V1__VERDICT_KEYS__INIT;
        uint8_t spki[] = { 0x30, 0x59 };
        k.key_id = "abcd";
        k.spki.data = spki;
        k.spki.len = 2;
        k.active = 1;
        ks.keys = &kp;
        ks.n_keys = 1;
        o = vfmt_keys_json(&ks);
        assert_string_equal(vfmt_json_text(o, 0),
                            "{\"keys\":[{\"key_id\":\"abcd\",\"spki\":\"3059\",\"active\":true,\"not_after\":0}]}");
        json_object_put(o);
}

static char *capture(void (*fn)(FILE *, const void *), const void *arg) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        fn(f, arg);
        fclose(f);
        return buf;
}

static void verdict_text(FILE *f, const void *v) {
        vfmt_verdict_text(f, v);
}

static void test_verdict_text(void **state) {
        Vouch__V1__Verdict v;
        Vouch__V1__Finding f, *fp;
        uint8_t nonce[2];
        sample_verdict(&v, &f, &fp, nonce);
        v.device_id = "dev\x1b[31m1";
        char *out = capture(verdict_text, &v);
        assert_non_null(strstr(out, "device:       dev\\x1b[31m1\n")); /* a peer's escape sequence is shown, not run */
        assert_non_null(strstr(out, "status:       UNTRUSTED\n"));
        assert_non_null(strstr(out, "issued:       2026-11-25T10:00:00Z\n"));
        assert_non_null(strstr(out, "expires:      2026-11-25T11:00:00Z\n"));
        assert_non_null(strstr(out, "golden:       arch (version 3)\n"));
        assert_non_null(strstr(out, "boot count:   7\n"));
        assert_non_null(strstr(out, "sequence:     42 (global 9007199254740993)\n"));
        assert_non_null(strstr(out, "nonce:        dead\n"));
        assert_non_null(strstr(out, "  [pcr4] PCR 4 event 23 (EV_EFI_BOOT_SERVICES_APPLICATION): boot application\\nnot allowed\n"));
        assert_non_null(strstr(out, "      expected: aa\n      actual:   bb\n"));
        assert_null(strchr(out, '\x1b'));
        free(out);
}

static char *safe(const char *s, size_t max) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        vfmt_put_safe(f, s, max);
        fclose(f);
        return buf;
}

static void test_safe_text(void **state) {
        static const struct {
                const char *in, *out;
                size_t max;
        } cases[] = {
                { "plain text", "plain text", 100 },
                { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92", 100 },
                { "a\nb\tc\\d\x1b[31m\x7f", "a\\nb\\tc\\\\d\\x1b[31m\\x7f", 100 },
                { "csi\xc2\x9b" "2J", "csi\\xc2\\x9b2J", 100 },         /* C1 control */
                { "bad\xff\xfe", "bad\\xff\\xfe", 100 },             /* not UTF-8 */
                { "over\xc0\xaf", "over\\xc0\\xaf", 100 },           /* overlong '/' */
                { "sur\xed\xa0\x80", "sur\\xed\\xa0\\x80", 100 },  /* UTF-16 surrogate */
                { "cut\xe2\x82", "cut\\xe2\\x82", 100 },             /* truncated sequence */
                { "big\xf4\x90\x80\x80", "big\\xf4\\x90\\x80\\x80", 100 }, /* over U+10FFFF */
                { "abcdef", "abc...", 3 },
                { "a\xc3\xa9", "a...", 2 },                           /* a character is not cut */
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got = safe(cases[i].in, cases[i].max);
                assert_string_equal(got, cases[i].out);
                free(got);
        }
        char *got = safe(NULL, 10);
        assert_string_equal(got, "");
        free(got);
}

static void test_json_utf8(void **state) {
        Vouch__V1__DeviceInfo d = VOUCH__V1__DEVICE_INFO__INIT;
        d.id = "a\xff" "b\xc3\xa9";
        d.golden = "g\x01";
        json_object *o = vfmt_device_json(&d);
        const char *t = vfmt_json_text(o, 0);
        assert_non_null(strstr(t, "\"id\":\"a\xef\xbf\xbd" "b\xc3\xa9\""));
        assert_non_null(strstr(t, "\"golden\":\"g\\u0001\""));
        json_tokener *tok = json_tokener_new();
        json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
        json_object *back = json_tokener_parse_ex(tok, t, (int) strlen(t));
        assert_non_null(back);
        json_object_put(back);
        json_tokener_free(tok);
        json_object_put(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config),        cmocka_unit_test(test_server_url),
                cmocka_unit_test(test_paths),         cmocka_unit_test(test_error_text),
                cmocka_unit_test(test_verdict_json),  cmocka_unit_test(test_device_and_keys_json),
                cmocka_unit_test(test_verdict_text),  cmocka_unit_test(test_safe_text),
                cmocka_unit_test(test_json_utf8),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
