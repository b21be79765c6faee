/* SPDX-License-Identifier: Apache-2.0 */
/* Golden sets: the parser's rejection paths, evaluation rules, merge and the cache, on
 * synthetic data; and on every real log in the shared data: the set created from a log
 * accepts it and rejects each tampering, with the finding at the tampered event. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <cmocka.h>

#include "digest-set.h"
#include "golden-classify.h"
#include "golden.h"
#include "logbuilder.h"
#include "logedit.h"
#include "replay.h"
#include "uefi.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* ---------------- parser ---------------- */

static const char *const hex32 = "\"0000000000000000000000000000000000000000000000000000000000000000\"";

static void expect_parse_error(const char *json, int code, const char *needle) {
        vc_golden *g = NULL;
        vc_error err;
        int r = vc_golden_parse(json, strlen(json), &g, &err);
        if (r != code)
                fail_msg("expected %d, got %d (%s) for %s", code, r, err.msg, json);
        assert_null(g);
        if (!strstr(err.msg, needle))
                fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static char *wrap(const char *rules) {
        static char buf[8192];
        snprintf(buf, sizeof(buf), "{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [0, 4, 7, 8], \"rules\": %s}",
                 rules);
        return buf;
}

static void lint_to(const char *msg, void *userdata) {
        snprintf(userdata, 512, "%s", msg);
}

/* structure.vendor_events, structure.error_separators, $.log */
static void test_parse_new_rules(void **state) {
        char r[2048];
        snprintf(r, sizeof(r), "{\"structure\": {\"vendor_events\": [{\"pcr\": 3, \"position\": 0, \"type\": 1038, "
                               "\"digest\": %s}]}}", hex32);
        expect_parse_error(wrap(r), -EBADMSG, "$.rules.structure.vendor_events[0].pcr: PCR 3 is not in $.pcrs");
        snprintf(r, sizeof(r), "{\"structure\": {\"vendor_events\": [{\"pcr\": 0, \"type\": 1038, \"digest\": %s}]}}",
                 hex32);
        expect_parse_error(wrap(r), -EBADMSG, "$.rules.structure.vendor_events[0]: missing field \"position\"");
        expect_parse_error(wrap("{\"structure\": {\"vendor_events\": [{\"pcr\": 0, \"position\": 0, \"type\": 1038, "
                                "\"digest\": \"00\"}]}}"),
                           -EBADMSG, "$.rules.structure.vendor_events[0].digest: expected 32 bytes of hex");
        snprintf(r, sizeof(r), "{\"structure\": {\"vendor_events\": [{\"pcr\": 0, \"position\": -1, \"type\": 1038, "
                               "\"digest\": %s}]}}", hex32);
        expect_parse_error(wrap(r), -EBADMSG, "position -1 out of range");
        snprintf(r, sizeof(r), "{\"structure\": {\"vendor_events\": [{\"pcr\": 0, \"position\": 1, \"type\": 1038, "
                               "\"digest\": %s, \"x\": 1}]}}", hex32);
        expect_parse_error(wrap(r), -EBADMSG, "unknown field \"x\"");
        expect_parse_error(wrap("{\"structure\": {\"error_separators\": 1}}"), -EBADMSG,
                           "$.rules.structure.error_separators: expected a boolean");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"log\": \"sev\", \"bank\": \"sha384\", \"pcrs\": [1], "
                           "\"rules\": {\"kernel\": {\"initrd\": []}}}",
                           -EBADMSG, "$.log: expected \"tpm\" or \"ccel\"");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"log\": \"ccel\", \"bank\": \"sha384\", \"pcrs\": [1, 5], "
                           "\"rules\": {\"kernel\": {\"initrd\": []}}}",
                           -EBADMSG, "a CCEL set evaluates registers 0-4");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"log\": \"ccel\", \"bank\": \"sha384\", \"pcrs\": [2, 3], "
                           "\"rules\": {\"secure_boot\": {\"enabled\": true}}}",
                           -EBADMSG, "measured in register 1 (RTMR0)");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"log\": \"ccel\", \"bank\": \"sha384\", \"pcrs\": [1, 3], "
                           "\"rules\": {\"secure_boot\": {\"mok\": []}}}",
                           -EBADMSG, "$.rules.secure_boot.mok: a CCEL log cannot tell");

        /* what parses round-trips: pins sorted, duplicates once */
        vc_golden *g = NULL;
        snprintf(r, sizeof(r), "{\"structure\": {\"error_separators\": true, \"vendor_events\": ["
                               "{\"pcr\": 4, \"position\": 2, \"type\": 33793, \"digest\": %s}, "
                               "{\"pcr\": 0, \"position\": 7, \"type\": 1038, \"digest\": %s}, "
                               "{\"pcr\": 0, \"position\": 7, \"type\": 1038, \"digest\": %s}]}}", hex32, hex32, hex32);
        const char *json = wrap(r);
        assert_int_equal(vc_golden_parse(json, strlen(json), &g, NULL), 0);
        assert_true(g->error_separators);
        assert_int_equal(g->n_vendor_events, 2);
        assert_int_equal(g->vendor_events[0].pcr, 0);
        assert_int_equal(g->vendor_events[0].position, 7);
        assert_int_equal(g->vendor_events[1].type, 0x8401);
        assert_int_equal(g->log_kind, VC_LOG_TPM);
        char *out = NULL;
        vc_golden *back = NULL;
        assert_int_equal(vc_golden_to_json(g, &out), 0);
        assert_int_equal(vc_golden_parse(out, strlen(out), &back, NULL), 0);
        assert_memory_equal(back->fingerprint, g->fingerprint, 32);
        assert_null(strstr(out, "\"log\""));
        free(out);
        vc_golden_free(back);
        vc_golden_free(g);
}

static void test_parse_errors(void **state) {
        char r[2048];
        expect_parse_error("", -EBADMSG, "not JSON");
        expect_parse_error("[]", -EBADMSG, "$: expected an object, got an array");
        expect_parse_error("{\"name\": \"t\"}", -EBADMSG, "missing field \"version\"");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [0], \"rules\": {}, \"x\": 1}",
                           -EBADMSG, "$: unknown field \"x\"");
        expect_parse_error("{\"name\": \"t t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [0], \"rules\": {}}", -EBADMSG,
                           "$.name");
        expect_parse_error("{\"name\": \"t\", \"version\": 0, \"bank\": \"sha256\", \"pcrs\": [0], \"rules\": {}}", -EBADMSG,
                           "$.version: expected an integer >= 1");
        expect_parse_error("{\"name\": \"t\", \"version\": \"1\", \"bank\": \"sha256\", \"pcrs\": [0], \"rules\": {}}",
                           -EBADMSG, "$.version: expected an integer, got a string");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"bank\": \"md5\", \"pcrs\": [0], \"rules\": {}}", -EBADMSG,
                           "$.bank: unknown bank");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [24], \"rules\": {}}", -EBADMSG,
                           "$.pcrs[0]: PCR 24 out of range");
        /* PCRs software can reset and extend at will */
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [0, 16], \"rules\": {}}",
                           -EBADMSG, "$.pcrs[1]: PCR 16 can be reset and extended by software");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [23, 0], \"rules\": {}}",
                           -EBADMSG, "$.pcrs[0]: PCR 23 can be reset and extended by software");
        expect_parse_error("{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [], \"rules\": {\"kernel\": "
                           "{\"initrd\": []}}}",
                           -EBADMSG, "$.pcrs: no PCR");
        expect_parse_error(wrap("{}"), -EBADMSG, "$.rules: empty rule");
        expect_parse_error(wrap("{\"secure_boot\": {}}"), -EBADMSG, "$.rules.secure_boot: empty rule");
        expect_parse_error(wrap("{\"boot_chain\": {\"chains\": []}}"), -EBADMSG, "$.rules.boot_chain.chains: no chain");
        snprintf(r, sizeof(r), "{\"boot_chain\": {\"chains\": [[{\"name\": \"shim\", \"digests\": [%s, \"00\"]}]]}}", hex32);
        expect_parse_error(wrap(r), -EBADMSG, "$.rules.boot_chain.chains[0][0].digests[1]: expected 32 bytes of hex");
        expect_parse_error(wrap("{\"boot_chain\": {\"chains\": [[{\"name\": \"shim\"}]]}}"), -EBADMSG,
                           "chains[0][0].digests: missing");
        expect_parse_error(wrap("{\"platform_firmware\": {\"firmware\": [\"zz\"]}}"), -EBADMSG,
                           "$.rules.platform_firmware.firmware[0]");
        expect_parse_error(wrap("{\"platform_firmware\": {\"firmware\": \"x\"}}"), -EBADMSG,
                           "$.rules.platform_firmware.firmware: expected an array, got a string");
        expect_parse_error(wrap("{\"platform_firmware\": {\"firmwares\": []}}"), -EBADMSG, "unknown field \"firmwares\"");
        expect_parse_error(wrap("{\"secure_boot\": {\"enabled\": 1}}"), -EBADMSG,
                           "$.rules.secure_boot.enabled: expected true, false or \"any\"");
        expect_parse_error(wrap("{\"secure_boot\": {\"dbx_must_contain\": {\"digests\": []}}}"), -EBADMSG,
                           "unknown field \"digests\"");
        expect_parse_error(wrap("{\"kernel\": {\"cmdline\": [{\"exact\": \"a\", \"regex\": \"b\"}]}}"), -EBADMSG,
                           "cmdline[0]: exactly one");
        expect_parse_error(wrap("{\"kernel\": {\"cmdline\": [{\"regex\": \"(\"}]}}"), -EBADMSG,
                           "cmdline[0].regex: invalid POSIX extended regex");
        /* unbalanced: the '(' after '|' is never closed */
        expect_parse_error(wrap("{\"kernel\": {\"cmdline\": [{\"regex\": \"/vmlinuz ro quiet)|(/vmlinuz ro splash\"}]}}"),
                           -EBADMSG, "cmdline[0].regex: invalid POSIX extended regex");
        expect_parse_error(wrap("{\"kernel\": {\"cmdline\": []}}"), -EBADMSG, "no allowed command line");
        expect_parse_error(wrap("{\"structure\": {\"after_separator\": {\"4\": [\"EV_BOGUS\"]}}}"), -EBADMSG,
                           "after_separator.4[0]: unknown event type");
        expect_parse_error(wrap("{\"structure\": {\"after_separator\": {\"x\": []}}}"), -EBADMSG, "is not a PCR index");
        expect_parse_error(wrap("{\"structure\": {\"unknown_events\": \"maybe\"}}"), -EBADMSG,
                           "\"reject\" or \"allow_listed\"");
        expect_parse_error(wrap("{\"structure\": {\"unknown_events\": \"allow_listed\"}}"), -EBADMSG, "go together");
        /* a pin outside the set's bank or PCRs would be checked against unquoted values */
        snprintf(r, sizeof(r), "{\"pcr_values\": {\"sha1\": {\"0\": [\"%040d\"]}}}", 0);
        expect_parse_error(wrap(r), -EBADMSG, "$.rules.pcr_values.sha1: a pinned value must be in the set's bank");
        snprintf(r, sizeof(r), "{\"pcr_values\": {\"sha256\": {\"9\": [%s]}}}", hex32);
        expect_parse_error(wrap(r), -EBADMSG, "$.rules.pcr_values.sha256.9: PCR 9 is pinned but not in $.pcrs");
        expect_parse_error(wrap("{\"pcr_values\": {\"sha256\": {\"0\": []}}}"), -EBADMSG, "no allowed value");
        /* a rule on events the classifier ties to a PCR the set leaves out would never apply */
        static const struct {
                const char *pcrs, *rules, *want;
        } blind[] = {
                { "[0, 4, 8]", "{\"secure_boot\": {\"enabled\": true, \"required\": false}}",
                  "$.rules.secure_boot: checks the Secure Boot variables, measured only in PCR 7" },
                { "[0, 4, 7]", "{\"secure_boot\": {\"enabled\": true, \"mok\": []}}",
                  "$.rules.secure_boot.mok: checks shim's MOK variables, measured only in PCR 14" },
        };
        for (size_t i = 0; i < sizeof(blind) / sizeof(blind[0]); i++) {
                snprintf(r, sizeof(r), "{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": %s, \"rules\": %s}",
                         blind[i].pcrs, blind[i].rules);
                expect_parse_error(r, -EBADMSG, blind[i].want);
        }
        /* where measurements only usually land: accepted, with a warning from vc_golden_lint */
        static const struct {
                const char *pcrs, *rules, *want;
        } unusual[] = {
                { "[4, 7, 8]", "{\"platform_firmware\": {\"s_crtm_versions\": [\"v1\"]}}", "$.rules.platform_firmware.s_crtm_versions checks the CRTM" },
                { "[0, 4, 7, 8]", "{\"platform_firmware\": {\"configuration\": [\"ZZ\"]}}", "$.rules.platform_firmware.configuration checks" },
                { "[0, 4, 7, 8]", "{\"platform_firmware\": {\"handoff_tables\": [\"ZZ\"]}}", "$.rules.platform_firmware.handoff_tables checks" },
                { "[0, 7, 8]", "{\"boot_chain\": {\"chains\": [[{\"name\": \"shim\", \"digests\": [\"AB\"]}]]}}", "$.rules.boot_chain checks the boot applications (PCR 4)" },
                { "[0, 4, 7]", "{\"boot_chain\": {\"gpt\": []}}", "$.rules.boot_chain.gpt checks the GPT (PCR 5)" },
                { "[0, 4, 7, 9]", "{\"kernel\": {\"boot_commands\": [\"set timeout=5\"]}}", "$.rules.kernel.boot_commands checks GRUB's commands (PCR 8)" },
                { "[0, 4, 7, 8]", "{\"kernel\": {\"initrd\": []}}", "$.rules.kernel.initrd checks the EFI stub's initrd (PCR 9)" },
        };
        for (size_t i = 0; i < sizeof(unusual) / sizeof(unusual[0]); i++) {
                char rules[512], w[512] = "";
                snprintf(rules, sizeof(rules), "%s", unusual[i].rules);
                for (char *p; (p = strstr(rules, "ZZ"));) { /* a 32-byte digest */
                        memmove(p + 64, p + 2, strlen(p + 2) + 1);
                        memset(p, '0', 64);
                }
                for (char *p; (p = strstr(rules, "AB"));) {
                        memmove(p + 64, p + 2, strlen(p + 2) + 1);
                        memset(p, 'a', 64);
                }
                snprintf(r, sizeof(r), "{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": %s, \"rules\": %s}",
                         unusual[i].pcrs, rules);
                vc_golden *g = NULL;
                vc_error err;
                if (vc_golden_parse(r, strlen(r), &g, &err) < 0)
                        fail_msg("%s: %s", r, err.msg);
                assert_int_equal(vc_golden_lint(g, lint_to, w), 1);
                if (!strstr(w, unusual[i].want))
                        fail_msg("lint \"%s\" does not mention \"%s\"", w, unusual[i].want);
                vc_golden_free(g);
        }
        /* the same rules with their PCRs: accepted, no warning */
        static const char *const inside[] = {
                "{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [0, 1, 4, 5, 7, 8, 9, 14], \"rules\": "
                "{\"platform_firmware\": {\"s_crtm_versions\": [\"v1\"], \"configuration\": [\"0000000000000000000000000000000000000000000000000000000000000000\"]},"
                " \"secure_boot\": {\"enabled\": true, \"mok\": []},"
                " \"boot_chain\": {\"chains\": [[{\"name\": \"shim\", \"digests\": [\"abababababababababababababababababababababababababababababababab\"]}]], \"gpt\": []},"
                " \"kernel\": {\"initrd\": [], \"boot_commands\": [\"set timeout=5\"]}}}",
        };
        for (size_t i = 0; i < sizeof(inside) / sizeof(inside[0]); i++) {
                vc_golden *g = NULL;
                vc_error err;
                if (vc_golden_parse(inside[i], strlen(inside[i]), &g, &err) < 0)
                        fail_msg("%s", err.msg);
                assert_int_equal(vc_golden_lint(g, NULL, NULL), 0);
                vc_golden_free(g);
        }
        expect_parse_error(wrap("{\"pcr_values\": {\"sha256\": {\"0\": [\"00\"]}}}"), -EBADMSG, "expected 32 bytes");
        expect_parse_error("{\"name\": \"t\", \"version\": 1} trailing", -EBADMSG, "not JSON");
        /* deep nesting stops in the tokenizer */
        expect_parse_error("{\"a\": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}", -EBADMSG, "not JSON");
        /* invalid UTF-8, and control characters */
        expect_parse_error(wrap("{\"kernel\": {\"boot_commands\": [\"a\xff\"]}}"), -EBADMSG, "not valid UTF-8");
        expect_parse_error(wrap("{\"kernel\": {\"boot_commands\": [\"a\\u0085b\"]}}"), -EBADMSG, "C1 control");
        /* a string with a NUL */
        expect_parse_error(wrap("{\"kernel\": {\"boot_commands\": [\"a\\u0000b\"]}}"), -EBADMSG, "NUL character");
        /* huge file */
        char *big = malloc(VC_GOLDEN_MAX_FILE + 2);
        memset(big, ' ', VC_GOLDEN_MAX_FILE + 1);
        big[VC_GOLDEN_MAX_FILE + 1] = 0;
        expect_parse_error(big, -E2BIG, "exceeds");
        free(big);
        /* an over-long string */
        size_t n = VC_GOLDEN_MAX_STRING + 200;
        char *longs = malloc(n + 512);
        int k = snprintf(longs, 512, "{\"name\": \"t\", \"version\": 1, \"bank\": \"sha256\", \"pcrs\": [0], \"description\": \"");
        memset(longs + k, 'a', VC_GOLDEN_MAX_STRING + 1);
        strcpy(longs + k + VC_GOLDEN_MAX_STRING + 1, "\", \"rules\": {\"kernel\": {\"initrd\": []}}}");
        expect_parse_error(longs, -E2BIG, "$.description: string of");
        free(longs);
}

static void test_parse_roundtrip(void **state) {
        char r[4096];
        snprintf(r, sizeof(r),
                 "{\"pcr_values\": {\"sha256\": {\"0\": [%s]}}, \"platform_firmware\": {\"s_crtm_versions\": [\"v1\"]},"
                 " \"secure_boot\": {\"enabled\": \"any\", \"db\": {\"certificates\": [%s]}},"
                 " \"boot_chain\": {\"chains\": [[{\"name\": \"shim\", \"digests\": [%s]}]]},"
                 " \"kernel\": {\"cmdline\": [{\"regex\": \"ro quiet( splash)?\"}, {\"exact\": \"x\"}]},"
                 " \"structure\": {\"separators\": [0, 7], \"after_separator\": {\"7\": [\"EV_EFI_VARIABLE_AUTHORITY\"]},"
                 " \"unknown_events\": \"allow_listed\", \"unknown_digests\": [%s]}}",
                 hex32, hex32, hex32, hex32);
        vc_golden *g = NULL, *g2 = NULL;
        vc_error err;
        char *s = NULL, *s2 = NULL;
        if (vc_golden_parse(wrap(r), strlen(wrap(r)), &g, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(g->secure_boot_enabled, 2);
        assert_int_equal(g->n_cmdline, 2);
        assert_true(g->cmdline[0].is_regex);
        assert_int_equal(g->separators, (1u << 0) | (1u << 7));
        assert_int_equal(g->unknown_events, VC_UNKNOWN_ALLOW_LISTED);
        assert_int_equal(g->unknown_digests.n, 1);
        assert_int_equal(vc_golden_to_json(g, &s), 0);
        assert_int_equal(vc_golden_parse(s, strlen(s), &g2, &err), 0);
        assert_int_equal(vc_golden_to_json(g2, &s2), 0);
        assert_string_equal(s, s2); /* stable */
        free(s);
        free(s2);
        vc_golden_free(g);
        vc_golden_free(g2);
}

/* Every rule of the format at once, for the table walks (golden-rules.c). */
static char *every_rule_json(void) {
        static char buf[8192];
        const char *h = hex32;
        snprintf(buf, sizeof(buf),
                 "{\"name\": \"every-rule\", \"version\": 3, \"description\": \"all of them\", \"bank\": \"sha256\","
                 " \"pcrs\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14], \"rules\": {"
                 "\"pcr_values\": {\"sha256\": {\"12\": [%s]}},"
                 " \"platform_firmware\": {\"s_crtm_versions\": [\"v1\"], \"firmware\": [%s], \"handoff_tables\": [%s],"
                 " \"configuration\": [%s]},"
                 " \"secure_boot\": {\"enabled\": true, \"required\": false,"
                 " \"pk\": {\"digests\": [%s], \"certificates\": [%s], \"hashes\": [%s]}, \"kek\": {\"digests\": [%s]},"
                 " \"db\": {\"hashes\": [%s]}, \"dbx_must_contain\": {\"certificates\": [%s]}, \"authorities\": [%s],"
                 " \"variables\": [%s], \"mok\": [%s]},"
                 " \"boot_chain\": {\"chains\": [[{\"name\": \"shim\", \"digests\": [%s]}, {\"digests\": [%s]}], []],"
                 " \"gpt\": [%s]},"
                 " \"kernel\": {\"cmdline\": [{\"regex\": \"ro( quiet)?\"}, {\"exact\": \"ro\"}], \"initrd\": [%s],"
                 " \"load_options\": [%s], \"boot_commands\": [\"linux /vmlinuz\"], \"boot_files\": [%s]},"
                 " \"structure\": {\"separators\": [0, 7], \"after_separator\": {\"7\": [\"EV_EFI_VARIABLE_AUTHORITY\"]},"
                 " \"actions\": [\"Exit Boot Services Invocation\"], \"unknown_events\": \"allow_listed\","
                 " \"unknown_digests\": [%s], \"vendor_events\": [{\"pcr\": 2, \"position\": 1, \"type\": 33793,"
                 " \"digest\": %s, \"after_separator\": true}], \"error_separators\": true}}}",
                 h, h, h, h, h, h, h, h, h, h, h, h, h, h, h, h, h, h, h, h, h);
        return buf;
}

static void expect_null_refused(json_object *root, json_object *parent, const char *key, size_t idx,
                                const char *path, unsigned *done) {
        json_object *saved = json_object_get(key ? json_object_object_get(parent, key)
                                                 : json_object_array_get_idx(parent, idx));
        if (key)
                json_object_object_add(parent, key, NULL);
        else
                json_object_array_put_idx(parent, idx, NULL);
        const char *text = json_object_to_json_string(root);
        char want[600];
        vc_golden *g = NULL;
        vc_error err;
        int r = vc_golden_parse(text, strlen(text), &g, &err);
        snprintf(want, sizeof(want), "golden: %s: ", path);
        if (r != -EBADMSG || strncmp(err.msg, want, strlen(want)) != 0)
                fail_msg("%s set to null: expected an error at it, got %d \"%s\"", path, r, r < 0 ? err.msg : "");
        vc_golden_free(g);
        if (key)
                json_object_object_add(parent, key, saved);
        else
                json_object_array_put_idx(parent, idx, saved);
        (*done)++;
}

/* Each value of the set, in turn, made null: refused, with its JSON path. */
static void null_walk(json_object *root, json_object *o, const char *path, unsigned *done) {
        char p[600];
        if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, key, v) {
                        snprintf(p, sizeof(p), "%s.%s", path, key);
                        expect_null_refused(root, o, key, 0, p, done);
                        null_walk(root, v, p, done);
                }
        } else if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++) {
                        snprintf(p, sizeof(p), "%s[%zu]", path, i);
                        expect_null_refused(root, o, NULL, i, p, done);
                        null_walk(root, json_object_array_get_idx(o, i), p, done);
                }
        }
}

/* Every rule parses, is written again (each key, once, stable), merges with itself into the
 * same rules, and refuses a null in any place. */
static void test_every_rule(void **state) {
        static const char *const keys[] = {
                "pcr_values", "platform_firmware", "s_crtm_versions", "firmware", "handoff_tables", "configuration",
                "secure_boot", "enabled", "required", "pk", "kek", "db", "digests", "certificates", "hashes",
                "dbx_must_contain", "authorities", "variables", "mok", "boot_chain", "chains", "gpt", "kernel",
                "cmdline", "regex", "exact", "initrd", "load_options", "boot_commands", "boot_files", "structure",
                "separators", "after_separator", "actions", "unknown_events", "unknown_digests", "vendor_events",
                "error_separators",
        };
        const char *in = every_rule_json();
        vc_golden *g = NULL, *back = NULL, *m = NULL;
        vc_error err;
        char *s = NULL, *s2 = NULL, *sm = NULL;
        if (vc_golden_parse(in, strlen(in), &g, &err) < 0)
                fail_msg("%s", err.msg);
        assert_true(g->has_pcr_values && g->has_firmware && g->has_secure_boot && g->has_boot_chain && g->has_kernel &&
                    g->has_structure);
        assert_true(g->pk.has_digests && g->pk.has_certificates && g->pk.has_hashes && g->kek.has_digests &&
                    !g->kek.has_hashes && g->db.has_hashes && g->has_dbx_must_contain && g->dbx_hashes.n == 0);
        assert_false(g->sb_required);
        assert_int_equal(g->n_chains, 2);
        assert_int_equal(g->n_vendor_events, 1);
        assert_int_equal(vc_golden_to_json(g, &s), 0);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                char k[64];
                snprintf(k, sizeof(k), "\"%s\"", keys[i]);
                if (!strstr(s, k))
                        fail_msg("%s is not written:\n%s", keys[i], s);
        }
        assert_int_equal(vc_golden_parse(s, strlen(s), &back, &err), 0);
        assert_int_equal(vc_golden_to_json(back, &s2), 0);
        assert_string_equal(s, s2);
        assert_memory_equal(back->fingerprint, g->fingerprint, 32);
        /* merged with itself: the same rules, one version on */
        assert_int_equal(vc_golden_merge(g, g, &m, &err), 0);
        assert_int_equal(m->version, 4);
        m->version = g->version;
        assert_int_equal(vc_golden_to_json(m, &sm), 0);
        assert_string_equal(s, sm);

        json_object *root = json_tokener_parse(in);
        unsigned done = 0;
        assert_non_null(root);
        null_walk(root, root, "$", &done);
        printf("%u values made null, each refused at its path\n", done);
        assert_true(done > 60);
        json_object_put(root);
        free(s);
        free(s2);
        free(sm);
        vc_golden_free(g);
        vc_golden_free(back);
        vc_golden_free(m);
}

/* ---------------- synthetic evaluation ---------------- */

static const uint16_t banks[] = { VC_ALG_SHA1, VC_ALG_SHA256 };

typedef struct state {
        vc_eventlog *log;
        vc_event_check *checks;
        vc_replay replay;
} lstate;

static void load(lstate *s, const uint8_t *buf, size_t len) {
        vc_hasher *h = NULL;
        vc_error err;
        char msg[512];
        /* by structure, as vouchctl reads logs: a CCEL log (Spec ID at index 1) as CCEL */
        if (vc_eventlog_parse_as(buf, len, VC_READ_AUTO, &s->log, &err) < 0)
                fail_msg("%s", vc_error_format(&err, msg, sizeof(msg)));
        s->checks = calloc(s->log->n_events, sizeof(*s->checks));
        assert_int_equal(vc_hasher_new(&h), 0);
        vc_replay_init(&s->replay);
        assert_int_equal(vc_replay_update(h, s->log, &s->replay, s->checks, NULL), 0);
        vc_hasher_free(h);
}

static void unload(lstate *s) {
        vc_eventlog_free(s->log);
        free(s->checks);
}

static void expect_same_evaluation(const vc_evaluation *a, const vc_evaluation *b) {
        assert_int_equal(a->trust, b->trust);
        assert_int_equal(a->n_findings, b->n_findings);
        for (size_t i = 0; i < a->n_findings; i++) {
                assert_string_equal(a->findings[i].rule, b->findings[i].rule);
                assert_int_equal(a->findings[i].event, b->findings[i].event);
                assert_string_equal(a->findings[i].explanation, b->findings[i].explanation);
        }
}

/* g's evaluation of s; the same as an attestation gets it, with the digests of g's bank
 * alone checked and its banks alone replayed (vc_golden_check_digests, vc_golden_banks) */
static vc_evaluation eval(const vc_golden *g, const lstate *s, uint32_t attested) {
        vc_evaluation e, att;
        vc_event_check *checks = calloc(s->log->n_events, sizeof(*checks));
        vc_replay *rp = malloc(sizeof(*rp));
        vc_hasher *h = NULL;
        assert_int_equal(vc_golden_evaluate(g, s->log, s->checks, &s->replay.pcrs, attested, &e), 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_golden_check_digests(h, g, s->log, checks), 0);
        vc_replay_init_banks(rp, vc_golden_banks(g));
        assert_int_equal(vc_replay_update(h, s->log, rp, NULL, NULL), 0);
        assert_int_equal(vc_golden_evaluate(g, s->log, checks, &rp->pcrs, attested, &att), 0);
        expect_same_evaluation(&e, &att);
        vc_evaluation_done(&att);
        vc_hasher_free(h);
        free(rp);
        free(checks);
        return e;
}

static const vc_finding *find(const vc_evaluation *e, const char *rule, long event) {
        for (size_t i = 0; i < e->n_findings; i++)
                if ((!rule || strcmp(e->findings[i].rule, rule) == 0) && (event < -1 || e->findings[i].event == event))
                        return &e->findings[i];
        return NULL;
}

static void dump(const vc_evaluation *e) {
        for (size_t i = 0; i < e->n_findings; i++)
                fprintf(stderr, "  [%s] %s\n", e->findings[i].rule, e->findings[i].explanation);
}

static void expect_finding(const vc_evaluation *e, const char *rule, long event) {
        assert_int_equal(e->trust, VC_TRUST_UNTRUSTED);
        if (!find(e, rule, event)) {
                dump(e);
                fail_msg("no finding %s at event %ld", rule ? rule : "(any)", event);
        }
}

/* g accepts s (all PCRs attested); the findings are printed when it does not */
static void expect_trusted(const vc_golden *g, const lstate *s) {
        vc_evaluation e = eval(g, s, 0xffffff);
        if (e.trust != VC_TRUST_TRUSTED)
                dump(&e);
        assert_int_equal(e.trust, VC_TRUST_TRUSTED);
        vc_evaluation_done(&e);
}

/* the synthetic platform, booting n_apps boot applications (0, 1 or 2) */
static void synthetic_log_apps(logbuilder *b, unsigned n_apps) {
        size_t n;
        lb_init_agile(b, banks, 2);
        lb_event(b, 0, EV_S_CRTM_VERSION, "v\0\0\0", 4);
        lb_event_fill(b, 0, EV_EFI_PLATFORM_FIRMWARE_BLOB, 0x11, "0123456789abcdef", 16);
        uint8_t *sb = lb_variable(vc_guid_efi_global_variable, "SecureBoot", "\1", 1, &n);
        lb_event(b, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, sb, n);
        free(sb);
        for (uint32_t p = 0; p < 8; p++)
                lb_event(b, p, EV_SEPARATOR, "\0\0\0\0", 4);
        lb_event(b, 4, EV_EFI_ACTION, "Calling EFI Application from Boot Option", 40);
        if (n_apps > 0)
                lb_event_fill(b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x21, "app1", 4);
        if (n_apps > 1)
                lb_event_fill(b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x22, "app2", 4);
        const char *cl = "kernel_cmdline: /vmlinuz ro quiet";
        lb_event_measured(b, 8, EV_IPL, cl, strlen(cl) + 1, cl + 16, strlen(cl) - 16);
}

static void synthetic_log(logbuilder *b) {
        synthetic_log_apps(b, 2);
}

static vc_golden *create(const lstate *s) {
        vc_golden *g = NULL;
        vc_error err;
        char msg[512];
        if (vc_golden_create(s->log, s->checks, &s->replay.pcrs, "synthetic", "test", &g, &err) < 0)
                fail_msg("%s", vc_error_format(&err, msg, sizeof(msg)));
        return g;
}

static void test_synthetic_create_accepts(void **state) {
        logbuilder b;
        lstate s;
        synthetic_log(&b);
        load(&s, b.buf, b.len);
        vc_golden *g = create(&s);
        assert_int_equal(g->secure_boot_enabled, 1);
        assert_int_equal(g->n_chains, 1);
        assert_int_equal(g->chains[0].n, 2);
        assert_int_equal(g->separators, 0xff);
        expect_trusted(g, &s);
        /* PCRs the set evaluates but the quote does not cover */
        vc_evaluation e = eval(g, &s, 0xffffff & ~(1u << 4));
        expect_finding(&e, "attestation", -1);
        assert_int_equal(e.findings[0].pcr, 4);
        vc_evaluation_done(&e);
        vc_golden_free(g);
        unload(&s);
        lb_free(&b);
}

static void test_synthetic_rejections(void **state) {
        logbuilder b;
        lstate s, t;
        logedit le;
        uint8_t *buf;
        size_t len;
        synthetic_log(&b);
        load(&s, b.buf, b.len);
        vc_golden *g = create(&s);

        /* boot chain: second application replaced */
        le_load(&le, s.log);
        le_set_measured(&le, 14, "evil", 4);
        le_write(&le, &buf, &len);
        load(&t, buf, len);
        vc_evaluation e = eval(g, &t, 0xffffff);
        expect_finding(&e, "boot_chain.chains", 14);
        assert_non_null(strstr(find(&e, "boot_chain.chains", 14)->explanation, "is not an allowed"));
        vc_evaluation_done(&e);
        unload(&t);
        free(buf);
        le_free(&le);

        /* an extra boot application after the chain */
        le_load(&le, s.log);
        le_insert(&le, 15, 4, EV_EFI_BOOT_SERVICES_APPLICATION, "app3", 4);
        le_write(&le, &buf, &len);
        load(&t, buf, len);
        e = eval(g, &t, 0xffffff);
        expect_finding(&e, "boot_chain.chains", 15);
        vc_evaluation_done(&e);
        unload(&t);
        free(buf);
        le_free(&le);

        /* an unknown event type, and an EFI action not allowed */
        le_load(&le, s.log);
        le_insert(&le, 3, 1, 0x12345, "??", 2);
        le_insert(&le, 4, 5, EV_EFI_ACTION, "UEFI Debug Mode", 15);
        le_write(&le, &buf, &len);
        load(&t, buf, len);
        e = eval(g, &t, 0xffffff);
        expect_finding(&e, "structure.unknown_events", 3);
        expect_finding(&e, "structure.actions", 4);
        vc_evaluation_done(&e);
        unload(&t);
        free(buf);
        le_free(&le);

        /* a separator missing (relabelled) */
        le_load(&le, s.log);
        le.ev[4].type = EV_POST_CODE; /* PCR 0's separator */
        le_write(&le, &buf, &len);
        load(&t, buf, len);
        e = eval(g, &t, 0xffffff);
        expect_finding(&e, "structure.separators", -1);
        expect_finding(&e, "platform_firmware.firmware", 4);
        vc_evaluation_done(&e);
        unload(&t);
        free(buf);
        le_free(&le);

        /* a digest that does not match its content */
        le_load(&le, s.log);
        le.ev[12].digests[1][0] ^= 1; /* the EFI action's sha256 */
        le_write(&le, &buf, &len);
        load(&t, buf, len);
        e = eval(g, &t, 0xffffff);
        expect_finding(&e, "digest", 12);
        vc_evaluation_done(&e);
        unload(&t);
        free(buf);
        le_free(&le);

        /* the command line */
        le_load(&le, s.log);
        const char *cl = "kernel_cmdline: /vmlinuz ro quiet init=/bin/sh";
        le_set_data(&le, 15, cl, strlen(cl) + 1, cl + 16, strlen(cl) - 16);
        le_write(&le, &buf, &len);
        load(&t, buf, len);
        e = eval(g, &t, 0xffffff);
        expect_finding(&e, "kernel.cmdline", 15);
        vc_evaluation_done(&e);
        /* a regex rule allows it */
        vc_golden *g2 = NULL;
        char *json = NULL;
        assert_int_equal(vc_golden_to_json(g, &json), 0);
        char *at = strstr(json, "\"exact\": \"/vmlinuz ro quiet\"");
        assert_non_null(at);
        char patched[16384];
        snprintf(patched, sizeof(patched), "%.*s\"regex\": \"/vmlinuz ro quiet( init=/bin/sh)?\"%s", (int) (at - json), json,
                 at + strlen("\"exact\": \"/vmlinuz ro quiet\""));
        assert_int_equal(vc_golden_parse(patched, strlen(patched), &g2, NULL), 0);
        vc_evaluation_done(&e);
        expect_trusted(g2, &t);
        expect_trusted(g2, &s);
        vc_golden_free(g2);
        /* Every regex is matched against the whole line, whatever its own parentheses do:
         * "A)|(B)" compiles (the first ')' is a literal) and inside a "^(...)$" wrapper
         * would have let any line starting with "/vmlinuz ro quiet" through. An unanchored
         * prefix is not enough either; of two alternatives the longest match counts. */
        static const struct {
                const char *regex;
                bool trusted;
        } rx[] = {
                { "/vmlinuz ro quiet)|(/vmlinuz ro splash)", false },
                { "/vmlinuz ro quiet", false },
                { "/vmlinuz ro", false },
                { "ro quiet init=/bin/sh", false },
                { "/vmlinuz ro quiet|/vmlinuz ro quiet init=/bin/sh", true },
                { "^/vmlinuz ro quiet( init=/bin/sh)?$", true },
                { ".*", true },
        };
        for (size_t i = 0; i < sizeof(rx) / sizeof(rx[0]); i++) {
                snprintf(patched, sizeof(patched), "%.*s\"regex\": \"%s\"%s", (int) (at - json), json, rx[i].regex,
                         at + strlen("\"exact\": \"/vmlinuz ro quiet\""));
                assert_int_equal(vc_golden_parse(patched, strlen(patched), &g2, NULL), 0);
                if (rx[i].trusted)
                        expect_trusted(g2, &t);
                else {
                        e = eval(g2, &t, 0xffffff);
                        expect_finding(&e, "kernel.cmdline", 15);
                        vc_evaluation_done(&e);
                }
                vc_golden_free(g2);
        }
        free(json);
        unload(&t);
        free(buf);
        le_free(&le);

        vc_golden_free(g);
        unload(&s);
        lb_free(&b);
}

static void test_merge_keeps_chains_apart(void **state) {
        /* Two platforms with different boot chains: the merge accepts each chain, not a mix. */
        logbuilder b;
        lstate s, t, mix;
        logedit le;
        uint8_t *buf, *mbuf;
        size_t len, mlen;
        synthetic_log(&b);
        load(&s, b.buf, b.len);
        le_load(&le, s.log);
        le_set_measured(&le, 13, "other shim", 10);
        le_set_measured(&le, 14, "other grub", 10);
        le_write(&le, &buf, &len);
        le_free(&le);
        load(&t, buf, len);
        le_load(&le, s.log);
        le_set_measured(&le, 14, "other grub", 10); /* platform A's shim, B's grub */
        le_write(&le, &mbuf, &mlen);
        le_free(&le);
        load(&mix, mbuf, mlen);
        vc_golden *ga = create(&s), *gb = create(&t), *m = NULL;
        assert_int_equal(vc_golden_merge(ga, gb, &m, NULL), 0);
        assert_int_equal(m->n_chains, 2);
        expect_trusted(m, &s);
        expect_trusted(m, &t);
        vc_evaluation e = eval(m, &mix, 0xffffff);
        expect_finding(&e, "boot_chain.chains", 14);
        vc_evaluation_done(&e);
        /* merging a set with itself changes nothing but the version */
        vc_golden *self = NULL;
        assert_int_equal(vc_golden_merge(ga, ga, &self, NULL), 0);
        assert_int_equal(self->n_chains, 1);
        vc_golden_free(self);
        vc_golden_free(ga);
        vc_golden_free(gb);
        vc_golden_free(m);
        unload(&s);
        unload(&t);
        unload(&mix);
        free(buf);
        free(mbuf);
        lb_free(&b);
}

static void test_no_boot_application(void **state) {
        /* A set that lists boot chains is not passed by a log with no boot application;
         * a log with none makes a set whose one chain is empty, which a merge keeps. */
        logbuilder ba, bn;
        lstate a, none;
        synthetic_log_apps(&ba, 2);
        synthetic_log_apps(&bn, 0);
        load(&a, ba.buf, ba.len);
        load(&none, bn.buf, bn.len);
        vc_golden *ga = create(&a), *gn = create(&none), *m = NULL, *back = NULL;

        vc_evaluation e = eval(ga, &none, 0xffffff);
        expect_finding(&e, "boot_chain.chains", -1);
        assert_int_equal(find(&e, "boot_chain.chains", -1)->pcr, 4);
        assert_non_null(strstr(find(&e, "boot_chain.chains", -1)->explanation, "ended after 0 applications"));
        vc_evaluation_done(&e);

        assert_int_equal(gn->n_chains, 1);
        assert_int_equal(gn->chains[0].n, 0);
        expect_trusted(gn, &none);
        e = eval(gn, &a, 0xffffff);
        expect_finding(&e, "boot_chain.chains", 13); /* the first application */
        assert_non_null(strstr(find(&e, "boot_chain.chains", 13)->explanation, "after the allowed chain of 0 ended"));
        vc_evaluation_done(&e);

        /* the empty chain survives JSON, and a merge accepts both platforms */
        char *json = NULL;
        assert_int_equal(vc_golden_to_json(gn, &json), 0);
        assert_int_equal(vc_golden_parse(json, strlen(json), &back, NULL), 0);
        assert_int_equal(back->n_chains, 1);
        assert_int_equal(back->chains[0].n, 0);
        assert_int_equal(vc_golden_merge(ga, back, &m, NULL), 0);
        assert_int_equal(m->n_chains, 2);
        expect_trusted(m, &a);
        expect_trusted(m, &none);

        free(json);
        vc_golden_free(ga);
        vc_golden_free(gn);
        vc_golden_free(back);
        vc_golden_free(m);
        unload(&a);
        unload(&none);
        lb_free(&ba);
        lb_free(&bn);
}

static void test_pin_explains_only_its_own_pcr(void **state) {
        /* A set that pins PCR 4 by value and has no chain rule: a boot application in PCR 4
         * is explained by the pin, but the event type is not measured, so an event of
         * another PCR relabelled as a boot application must not escape its own rule. */
        logbuilder b;
        lstate s, t;
        logedit le;
        uint8_t *buf;
        size_t len;
        synthetic_log(&b);
        load(&s, b.buf, b.len);
        vc_golden *created = create(&s), *g = NULL;
        char *json = NULL, hex[2 * 32 + 1];
        assert_int_equal(vc_golden_to_json(created, &json), 0);
        json_object *root = json_tokener_parse(json), *rules, *pin = json_object_new_object(),
                    *bank = json_object_new_object(), *values = json_object_new_array();
        assert_true(json_object_object_get_ex(root, "rules", &rules));
        json_object_object_del(rules, "boot_chain");
        vc_hex(vc_pcr_set_find(&s.replay.pcrs, VC_ALG_SHA256)->values[4], 32, hex);
        json_object_array_add(values, json_object_new_string(hex));
        json_object_object_add(bank, "4", values);
        json_object_object_add(pin, "sha256", bank);
        json_object_object_add(rules, "pcr_values", pin);
        const char *pinned = json_object_to_json_string(root);
        assert_int_equal(vc_golden_parse(pinned, strlen(pinned), &g, NULL), 0);
        expect_trusted(g, &s);

        /* PCR 8's command line changed, relabelled as a boot application */
        le_load(&le, s.log);
        const char *cl = "kernel_cmdline: /vmlinuz ro quiet init=/bin/sh";
        le_set_data(&le, 15, cl, strlen(cl) + 1, cl + 16, strlen(cl) - 16);
        le.ev[15].type = EV_EFI_BOOT_SERVICES_APPLICATION;
        le_write(&le, &buf, &len);
        load(&t, buf, len);
        vc_evaluation e = eval(g, &t, 0xffffff);
        expect_finding(&e, "coverage", 15);
        vc_evaluation_done(&e);

        unload(&t);
        free(buf);
        le_free(&le);
        json_object_put(root);
        free(json);
        vc_golden_free(created);
        vc_golden_free(g);
        unload(&s);
        lb_free(&b);
}

/* Judges the edited log with g: TRUSTED when coverage_event < 0, else a coverage finding
 * at that event. Frees the edit. */
static void judge_edit(const vc_golden *g, logedit *le, int coverage_event) {
        uint8_t *buf;
        size_t len;
        lstate t;
        le_write(le, &buf, &len);
        load(&t, buf, len);
        if (coverage_event < 0)
                expect_trusted(g, &t);
        else {
                vc_evaluation e = eval(g, &t, 0xffffff);
                expect_finding(&e, "coverage", coverage_event);
                vc_evaluation_done(&e);
        }
        unload(&t);
        free(buf);
        le_free(le);
}

/* A log that extends PCRs 16 and 23 (resettable from software) gets a set that does not
 * evaluate them: it parses, and what software puts there changes nothing. */
static void test_create_leaves_out_resettable_pcrs(void **state) {
        logbuilder b;
        lstate s;
        synthetic_log(&b);
        lb_event(&b, 16, EV_EVENT_TAG, "debug", 5);
        lb_event(&b, 23, EV_COMPACT_HASH, "app", 3);
        load(&s, b.buf, b.len);
        vc_golden *g = create(&s);
        assert_int_equal(g->pcrs & VC_GOLDEN_RESETTABLE_PCRS, 0);
        char *json = NULL;
        vc_golden *back = NULL;
        assert_int_equal(vc_golden_to_json(g, &json), 0);
        assert_int_equal(vc_golden_parse(json, strlen(json), &back, NULL), 0);
        expect_trusted(back, &s);
        vc_golden_free(back);
        free(json);
        vc_golden_free(g);
        unload(&s);
        lb_free(&b);
}

static void test_create_evaluates_unused_boot_pcrs(void **state) {
        /* The log extends no PCR 9 or 12-14; the set made from it still evaluates them, so a
         * system extension (13), a credential or command line (12), or an initrd (9) measured
         * on another device is not waved through unseen. 10, 11 and 15, which the OS extends
         * at run time, are left to the author. */
        static const struct {
                uint32_t pcr;
                bool trusted;
        } cases[] = { { 9, false }, { 12, false }, { 13, false }, { 14, false }, { 11, true }, { 15, true } };
        logbuilder b;
        lstate s;
        synthetic_log(&b);
        load(&s, b.buf, b.len);
        vc_golden *g = create(&s);
        assert_int_equal(g->pcrs & 0xffff, 0x73ff);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                logedit le;
                le_load(&le, s.log);
                le_insert(&le, 16, cases[i].pcr, EV_IPL, "sysext", 6);
                judge_edit(g, &le, cases[i].trusted ? -1 : 16);
        }
        vc_golden_free(g);
        unload(&s);
        lb_free(&b);
}

static void test_separator_outside_required_pcrs(void **state) {
        /* The set requires separators in PCRs 0-7 only. In PCR 8 a separator is accepted
         * only as what separators measure (0), once: "boot" (a 4-byte GRUB measurement)
         * labelled a separator is not explained by anything. */
        static const struct {
                const char *data1, *data2;
                bool trusted;
        } cases[] = { { "\0\0\0\0", NULL, true }, { "boot", NULL, false }, { "\0\0\0\0", "\0\0\0\0", false } };
        logbuilder b;
        lstate s;
        synthetic_log(&b);
        load(&s, b.buf, b.len);
        vc_golden *g = create(&s);
        assert_int_equal(g->separators, 0xff);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                logedit le;
                le_load(&le, s.log);
                le_insert(&le, 16, 8, EV_SEPARATOR, cases[i].data1, 4); /* after the command line */
                if (cases[i].data2)
                        le_insert(&le, 17, 8, EV_SEPARATOR, cases[i].data2, 4);
                judge_edit(g, &le, cases[i].trusted ? -1 : cases[i].data2 ? 17 : 16);
        }
        vc_golden_free(g);
        unload(&s);
        lb_free(&b);
}

static void test_grub_prefix_not_trusted(void **state) {
        /* GRUB's prefix is not measured: relabelling a measured command as a command line
         * (or the reverse) must not make it acceptable. */
        logbuilder b;
        lstate s, t;
        logedit le;
        uint8_t *buf;
        size_t len;
        synthetic_log(&b);
        const char *cmd = "grub_cmd: set timeout=5";
        lb_event_measured(&b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        load(&s, b.buf, b.len);
        vc_golden *g = create(&s);
        assert_int_equal(g->boot_commands.n, 1);
        assert_string_equal(g->boot_commands.s[0], "set timeout=5");
        /* the same measured body under the other prefix is the same measurement: allowed */
        le_load(&le, s.log);
        const char *relabel = "kernel_cmdline: set timeout=5";
        le_set_data(&le, 16, relabel, strlen(relabel) + 1, relabel + 16, strlen(relabel) - 16);
        const char *evil = "grub_cmd: insmod evil";
        le_set_data(&le, 15, evil, strlen(evil) + 1, evil + 10, strlen(evil) - 10);
        le_write(&le, &buf, &len);
        le_free(&le);
        load(&t, buf, len);
        vc_evaluation e = eval(g, &t, 0xffffff);
        expect_finding(&e, "kernel.boot_commands", 15);
        assert_null(find(&e, NULL, 16));
        vc_evaluation_done(&e);
        vc_golden_free(g);
        unload(&s);
        unload(&t);
        free(buf);
        lb_free(&b);
}

static void test_zeroed_evaluation_not_trusted(void **state) {
        vc_evaluation e = { 0 };
        assert_int_not_equal(e.trust, VC_TRUST_TRUSTED);
}

/* A log that fails everywhere gets a bounded evaluation: at most VC_EVAL_MAX_FINDINGS
 * findings, the last one counting those left out, and texts cut at VC_FINDING_TEXT_MAX
 * (a device could otherwise make the verifier hold many times its log). */
static void test_findings_are_bounded(void **state) {
        logbuilder b;
        lstate s, t;
        synthetic_log(&b);
        load(&s, b.buf, b.len);
        vc_golden *g = create(&s);
        unload(&s);
        char cmd[2100];
        for (int i = 0; i < 200; i++) {
                int n = snprintf(cmd, sizeof(cmd), "grub_cmd: evil %d", i);
                lb_event_measured(&b, 8, EV_IPL, cmd, (size_t) n + 1, cmd + 10, (size_t) n - 10);
        }
        /* and one very long command line, first among the findings */
        logbuilder big;
        synthetic_log(&big);
        memcpy(cmd, "kernel_cmdline: ", 16);
        memset(cmd + 16, 'x', sizeof(cmd) - 17);
        cmd[sizeof(cmd) - 1] = 0;
        lb_event_measured(&big, 8, EV_IPL, cmd, sizeof(cmd), cmd + 16, sizeof(cmd) - 17);
        load(&t, big.buf, big.len);
        vc_evaluation e = eval(g, &t, 0xffffff);
        const vc_finding *f = find(&e, "kernel.cmdline", -2);
        assert_non_null(f);
        assert_int_equal(strlen(f->actual), VC_FINDING_TEXT_MAX);
        assert_memory_equal(f->actual + VC_FINDING_TEXT_MAX - 3, "...", 3);
        vc_evaluation_done(&e);
        unload(&t);
        lb_free(&big);

        load(&t, b.buf, b.len);
        e = eval(g, &t, 0xffffff);
        assert_int_equal(e.trust, VC_TRUST_UNTRUSTED);
        assert_int_equal(e.n_findings, VC_EVAL_MAX_FINDINGS);
        const vc_finding *last = &e.findings[VC_EVAL_MAX_FINDINGS - 1];
        assert_string_equal(last->rule, "findings");
        if (!strstr(last->explanation, "137 more findings not listed (the first 63 are)"))
                fail_msg("%s", last->explanation);
        for (size_t i = 0; i + 1 < e.n_findings; i++)
                assert_string_equal(e.findings[i].rule, "kernel.boot_commands");
        assert_true(vc_evaluation_heap_size(&e) < 64 * 1024);
        vc_evaluation_done(&e);
        unload(&t);
        vc_golden_free(g);
        lb_free(&b);
}

/* The cache holds at most VC_EVAL_CACHE_MAX_BYTES of evaluations, whatever its entry count:
 * the oldest go first. */
static void test_cache_is_bounded_in_bytes(void **state) {
        vc_eval_cache *c = NULL;
        vc_evaluation big = { .trust = VC_TRUST_UNTRUSTED, .n_findings = VC_EVAL_MAX_FINDINGS };
        char text[VC_FINDING_TEXT_MAX + 1];
        memset(text, 'a', VC_FINDING_TEXT_MAX);
        text[VC_FINDING_TEXT_MAX] = 0;
        big.findings = calloc(big.n_findings, sizeof(*big.findings));
        assert_non_null(big.findings);
        for (size_t i = 0; i < big.n_findings; i++) {
                snprintf(big.findings[i].rule, sizeof(big.findings[i].rule), "kernel.cmdline");
                big.findings[i].expected = strdup(text);
                big.findings[i].actual = strdup(text);
                big.findings[i].explanation = strdup(text);
        }
        size_t each = vc_evaluation_heap_size(&big);
        assert_int_equal(vc_eval_cache_new(4096, &c), 0);
        uint8_t key[32] = { 0 };
        size_t n = 2 * VC_EVAL_CACHE_MAX_BYTES / each;
        for (size_t i = 0; i < n; i++) {
                memcpy(key, &i, sizeof(i));
                assert_int_equal(vc_eval_cache_put(c, key, &big), 0);
                assert_true(vc_eval_cache_bytes(c) <= VC_EVAL_CACHE_MAX_BYTES);
        }
        size_t entries;
        vc_eval_cache_stats(c, NULL, NULL, &entries);
        assert_int_equal(entries, VC_EVAL_CACHE_MAX_BYTES / each);
        assert_int_equal(vc_eval_cache_bytes(c), entries * each);
        /* the newest are there, the oldest gone */
        vc_evaluation e;
        size_t newest = n - 1, oldest = 0;
        memcpy(key, &newest, sizeof(newest));
        assert_int_equal(vc_eval_cache_lookup(c, key, &e), 0);
        assert_int_equal(e.n_findings, VC_EVAL_MAX_FINDINGS);
        vc_evaluation_done(&e);
        memcpy(key, &oldest, sizeof(oldest));
        assert_int_equal(vc_eval_cache_lookup(c, key, &e), -ENOENT);
        /* small entries are not held back by the budget once the big ones age out */
        vc_evaluation small = { .trust = VC_TRUST_TRUSTED };
        for (size_t i = 0; i < 4096; i++) {
                size_t k = n + i;
                memcpy(key, &k, sizeof(k));
                assert_int_equal(vc_eval_cache_put(c, key, &small), 0);
        }
        vc_eval_cache_stats(c, NULL, NULL, &entries);
        assert_int_equal(entries, 4096);
        assert_int_equal(vc_eval_cache_bytes(c), 0);
        vc_eval_cache_free(c);
        vc_evaluation_done(&big);
}

static void test_cache(void **state) {
        logbuilder b;
        lstate s;
        vc_eval_cache *c = NULL;
        vc_evaluation e;
        bool hit;
        uint64_t hits, misses;
        size_t entries;
        synthetic_log(&b);
        load(&s, b.buf, b.len);
        vc_golden *g = create(&s);
        assert_int_equal(vc_eval_cache_new(2, &c), 0);
        assert_int_equal(vc_golden_evaluate_cached(c, g, s.log, s.checks, &s.replay.pcrs, 0xffffff, &e, &hit), 0);
        assert_false(hit);
        assert_int_equal(e.trust, VC_TRUST_TRUSTED);
        vc_evaluation_done(&e);
        assert_int_equal(vc_golden_evaluate_cached(c, g, s.log, s.checks, &s.replay.pcrs, 0xffffff, &e, &hit), 0);
        assert_true(hit);
        assert_int_equal(e.trust, VC_TRUST_TRUSTED);
        vc_evaluation_done(&e);
        /* another attested mask is another state */
        assert_int_equal(vc_golden_evaluate_cached(c, g, s.log, s.checks, &s.replay.pcrs, 0xfffff0, &e, &hit), 0);
        assert_false(hit);
        assert_int_equal(e.trust, VC_TRUST_UNTRUSTED);
        vc_evaluation_done(&e);
        /* a new version of the golden set is not served from the cache */
        g->version++;
        assert_int_equal(vc_golden_evaluate_cached(c, g, s.log, s.checks, &s.replay.pcrs, 0xffffff, &e, &hit), 0);
        assert_false(hit);
        vc_evaluation_done(&e);
        /* the findings come back from the cache too */
        assert_int_equal(vc_golden_evaluate_cached(c, g, s.log, s.checks, &s.replay.pcrs, 0xfffff0, &e, &hit), 0);
        assert_false(hit); /* evicted: capacity 2 */
        vc_evaluation_done(&e);
        assert_int_equal(vc_golden_evaluate_cached(c, g, s.log, s.checks, &s.replay.pcrs, 0xfffff0, &e, &hit), 0);
        assert_true(hit);
        assert_int_equal(e.trust, VC_TRUST_UNTRUSTED);
        assert_true(e.n_findings > 0);
        vc_evaluation_done(&e);
        vc_eval_cache_stats(c, &hits, &misses, &entries);
        assert_int_equal(hits, 2);
        assert_int_equal(misses, 4);
        assert_int_equal(entries, 2);
        /* another set under the same name and version never hits this one's entries */
        vc_golden *other = NULL;
        char *json = NULL;
        assert_int_equal(vc_golden_to_json(g, &json), 0);
        char *at = strstr(json, "\"enabled\": true");
        assert_non_null(at);
        memcpy(at, "\"enabled\": 1==1", 15); /* keep the length; fix it up below */
        memcpy(at, "\"enabled\":false", 15);
        assert_int_equal(vc_golden_parse(json, strlen(json), &other, NULL), 0);
        other->version = g->version;
        assert_memory_not_equal(other->fingerprint, g->fingerprint, 32);
        assert_int_equal(vc_golden_evaluate_cached(c, other, s.log, s.checks, &s.replay.pcrs, 0xffffff, &e, &hit), 0);
        assert_false(hit);
        assert_int_equal(e.trust, VC_TRUST_UNTRUSTED);
        vc_evaluation_done(&e);
        vc_golden_free(other);
        free(json);
        vc_eval_cache_free(c);
        vc_golden_free(g);
        unload(&s);
        lb_free(&b);
}


/* ---------------- the content rules read ---------------- */

/* What the rules of cls read of an event (golden-classify.h) must be what vc_event_decode
 * gives: vc_rule_content takes it without the decoder's text, and must not tell apart what
 * the decoder does not (a string it would not decode, a variable it would not parse). */
static void expect_rule_content_is_decoders(const vc_event *ev, const char *where) {
        vc_ev_class cls = vc_classify_event(VC_LOG_TPM, ev);
        vc_event_content rc, dc;
        assert_int_equal(vc_rule_content(ev, cls, &rc), 0);
        (void) vc_event_decode(ev, &dc, NULL);
        bool strings = cls == CLS_ACTION || cls == CLS_GRUB || cls == CLS_CMDLINE || cls == CLS_CRTM_VERSION;
        if (cls == CLS_SEPARATOR) {
                if ((rc.kind == VC_CONTENT_SEPARATOR) != (dc.kind == VC_CONTENT_SEPARATOR) ||
                    (rc.kind == VC_CONTENT_SEPARATOR && rc.separator_value != dc.separator_value))
                        fail_msg("%s: separator read as %d, decoded as %d", where, rc.kind, dc.kind);
        } else if (cls == CLS_SB_VARIABLE) {
                if (rc.kind != dc.kind)
                        fail_msg("%s: variable read as %d, decoded as %d", where, rc.kind, dc.kind);
                if (rc.kind == VC_CONTENT_VARIABLE) {
                        assert_memory_equal(rc.var_guid, dc.var_guid, 16);
                        assert_string_equal(rc.var_name, dc.var_name);
                        assert_ptr_equal(rc.var_data, dc.var_data);
                        assert_int_equal(rc.var_data_len, dc.var_data_len);
                }
        } else if (strings) {
                if (rc.kind != dc.kind || !rc.string != !dc.string || (rc.string && strcmp(rc.string, dc.string) != 0))
                        fail_msg("%s: class %d read as %d \"%s\", decoded as %d \"%s\"", where, cls, rc.kind,
                                 rc.string ? rc.string : "(none)", dc.kind, dc.string ? dc.string : "(none)");
        }
        vc_event_content_done(&rc);
        vc_event_content_done(&dc);
}

static void expect_strings_read_as_decoded(uint32_t type, uint32_t pcr, const char *prefix, const uint8_t *body,
                                           size_t n, size_t nuls) {
        uint8_t d[64] = { 0 };
        size_t pl = strlen(prefix);
        assert_true(pl + n + nuls <= sizeof(d));
        memcpy(d, prefix, pl);
        memcpy(d + pl, body, n);
        vc_event ev = { .pcr = pcr, .type = type, .data = d, .data_size = (uint32_t) (pl + n + nuls) };
        char where[96];
        snprintf(where, sizeof(where), "type 0x%x \"%s\" + %zu bytes + %zu NUL", type, prefix, n, nuls);
        expect_rule_content_is_decoders(&ev, where);
}

/* Every byte (with and without trailing NULs) and every pair of bytes, and sequences of three
 * and four around the boundaries of UTF-8 (RFC 3629: overlong forms, surrogates, past
 * U+10FFFF, C1 controls), as GRUB commands and command lines, EFI actions and a systemd-boot
 * command line. */
static void test_rule_content_strings(void **state) {
        static const uint8_t edge[] = { 0x00, 0x0a, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                        0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff };
        static const struct {
                uint32_t type, pcr;
                const char *prefix;
        } forms[] = {
                { EV_IPL, 8, "grub_cmd: " },
                { EV_IPL, 8, "kernel_cmdline: " },
                { EV_EFI_ACTION, 4, "" },
                { EV_IPL, 12, "" },
        };
        uint8_t b[4];
        for (unsigned x = 0; x < 65536; x++) {
                b[0] = (uint8_t) (x >> 8), b[1] = (uint8_t) x;
                expect_strings_read_as_decoded(EV_IPL, 8, "grub_cmd: ", b, 2, 0);
        }
        for (size_t f = 0; f < ELEMENTSOF(forms); f++) {
                for (unsigned x = 0; x < 256; x++)
                        for (size_t nuls = 0; nuls <= 2; nuls++) {
                                b[0] = (uint8_t) x;
                                expect_strings_read_as_decoded(forms[f].type, forms[f].pcr, forms[f].prefix, b, 1, nuls);
                        }
                for (size_t i = 0; i < ELEMENTSOF(edge); i++)
                        for (size_t j = 0; j < ELEMENTSOF(edge); j++)
                                for (size_t k = 0; k < ELEMENTSOF(edge); k++) {
                                        b[0] = edge[i], b[1] = edge[j], b[2] = edge[k];
                                        expect_strings_read_as_decoded(forms[f].type, forms[f].pcr, forms[f].prefix,
                                                                       b, 3, 0);
                                }
        }
        for (unsigned lead = 0xf0; lead <= 0xf4; lead += 4)
                for (size_t i = 0; i < ELEMENTSOF(edge); i++)
                        for (size_t j = 0; j < ELEMENTSOF(edge); j++)
                                for (size_t k = 0; k < ELEMENTSOF(edge); k++) {
                                        b[0] = (uint8_t) lead, b[1] = edge[i], b[2] = edge[j], b[3] = edge[k];
                                        expect_strings_read_as_decoded(EV_IPL, 8, "grub_cmd: ", b, 4, 0);
                                }
}

/* ---------------- real logs ---------------- */

static char shared[4096];

typedef struct reallog {
        char path[4800];
        uint8_t *buf;
        size_t len;
} reallog;

static reallog logs[64];
static size_t n_logs;

static void collect_logs(void) {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/eventlogs", shared);
        DIR *top = opendir(dir);
        struct dirent *d;
        char names[64][4700];
        size_t n = 0;
        while (top && (d = readdir(top))) {
                char sub[4500];
                if (d->d_name[0] == '.')
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", dir, d->d_name);
                DIR *sd = opendir(sub);
                struct dirent *f;
                while (sd && (f = readdir(sd))) {
                        size_t l = strlen(f->d_name);
                        if (f->d_name[0] == '.' || (l > 5 && strcmp(f->d_name + l - 5, ".json") == 0) ||
                            (l > 3 && strcmp(f->d_name + l - 3, ".md") == 0) || n >= 64)
                                continue;
                        snprintf(names[n++], sizeof(names[0]), "%s/%s", sub, f->d_name);
                }
                if (sd)
                        closedir(sd);
        }
        if (top)
                closedir(top);
        qsort(names, n, sizeof(names[0]), (int (*)(const void *, const void *)) strcmp);
        for (size_t i = 0; i < n; i++) {
                FILE *f = fopen(names[i], "rb");
                reallog *r = &logs[n_logs];
                snprintf(r->path, sizeof(r->path), "%s", names[i]);
                fseek(f, 0, SEEK_END);
                r->len = (size_t) ftell(f);
                fseek(f, 0, SEEK_SET);
                r->buf = malloc(r->len);
                assert_int_equal(fread(r->buf, 1, r->len, f), r->len);
                fclose(f);
                n_logs++;
        }
}

/* Finds the first event satisfying pred; -1 if none. */
typedef bool (*pred_fn)(const vc_event *ev, const vc_event_check *chk);

static long first_event(const lstate *s, pred_fn pred) {
        for (size_t i = 1; i < s->log->n_events; i++)
                if (pred(&s->log->events[i], &s->checks[i]))
                        return (long) i;
        return -1;
}

static bool is_boot_app(const vc_event *ev, const vc_event_check *c) {
        return ev->type == EV_EFI_BOOT_SERVICES_APPLICATION;
}

static bool var_named(const vc_event *ev, const char *name) {
        vc_event_content c;
        bool yes = false;
        if (ev->pcr != 7 || ev->type != EV_EFI_VARIABLE_DRIVER_CONFIG)
                return false;
        if (vc_event_decode(ev, &c, NULL) == 0 && c.var_name && strcmp(c.var_name, name) == 0)
                yes = true;
        vc_event_content_done(&c);
        return yes;
}

static bool is_secureboot(const vc_event *ev, const vc_event_check *c) {
        return var_named(ev, "SecureBoot") && ev->data_size >= 33;
}

static int count_x509(void *ud, vc_sig_kind k, const uint8_t *o, const uint8_t *d, size_t n) {
        (*(int *) ud)++;
        return 0;
}

static bool is_db_with_lists(const vc_event *ev, const vc_event_check *c) {
        return var_named(ev, "db") && ev->data_size > 32 + 4 + 28;
}

static bool is_dbx_with_entries(const vc_event *ev, const vc_event_check *c) {
        if (!var_named(ev, "dbx"))
                return false;
        vc_event_content ct;
        int n = 0;
        if (vc_event_decode(ev, &ct, NULL) == 0)
                vc_siglist_foreach(ct.var_data, (size_t) ct.var_data_len, count_x509, &n);
        vc_event_content_done(&ct);
        return n > 0;
}

static bool is_cmdline(const vc_event *ev, const vc_event_check *c) {
        return ev->type == EV_IPL && c->status == VC_DIGEST_VERIFIED &&
               ((ev->data_size > 16 && memcmp(ev->data, "kernel_cmdline: ", 16) == 0) ||
                ((ev->pcr == 12 || ev->pcr == 8) && ev->data_size >= 4 && ev->data[1] == 0 && ev->data_size % 2 == 0));
}

static bool is_separator(const vc_event *ev, const vc_event_check *c) {
        return ev->type == EV_SEPARATOR && ev->pcr <= 7;
}

/* Variable data of a UEFI_VARIABLE_DATA event, for rebuilding. */
static size_t var_header(const vc_event *ev) {
        return 32 + 2 * (size_t) vc_le64(ev->data + 16);
}

/* Applies a mutation, evaluates, expects a finding at `at` (index in the mutated log). */
static void mutate_and_expect(const reallog *r, const lstate *s, const vc_golden *g, logedit *le, long at,
                              const char *what, unsigned *done) {
        uint8_t *buf;
        size_t len;
        lstate t;
        le_write(le, &buf, &len);
        load(&t, buf, len);
        vc_evaluation e = eval(g, &t, 0xffffff);
        if (e.trust == VC_TRUST_TRUSTED || !find(&e, NULL, at)) {
                dump(&e);
                fail_msg("%s: %s: expected a finding at event %ld", r->path, what, at);
        }
        vc_evaluation_done(&e);
        unload(&t);
        free(buf);
        le_free(le);
        (*done)++;
}

static void test_real_logs(void **state) {
        unsigned accepted = 0, mutations = 0, skipped = 0;
        for (size_t i = 0; i < n_logs; i++) {
                reallog *r = &logs[i];
                lstate s;
                vc_golden *g = NULL;
                vc_error err;
                logedit le;
                long at;
                load(&s, r->buf, r->len);
                if (vc_golden_create(s.log, s.checks, &s.replay.pcrs, "real", NULL, &g, &err) < 0) {
                        /* only logs that extend nothing cannot give a golden set */
                        assert_non_null(strstr(err.msg, "extends no PCR"));
                        skipped++;
                        unload(&s);
                        continue;
                }
                vc_evaluation e = eval(g, &s, 0xffffff);
                if (e.trust != VC_TRUST_TRUSTED) {
                        dump(&e);
                        fail_msg("%s: the golden set created from it rejects it", r->path);
                }
                vc_evaluation_done(&e);
                accepted++;

                if ((at = first_event(&s, is_boot_app)) > 0) {
                        le_load(&le, s.log);
                        le_set_measured(&le, (size_t) at, "a different boot application", 28);
                        mutate_and_expect(r, &s, g, &le, at, "boot application changed", &mutations);
                }
                if ((at = first_event(&s, is_secureboot)) > 0) {
                        const vc_event *ev = &s.log->events[at];
                        uint8_t *d = malloc(ev->data_size);
                        memcpy(d, ev->data, ev->data_size);
                        d[ev->data_size - 1] ^= 1; /* enabled <-> disabled */
                        le_load(&le, s.log);
                        le_set_data(&le, (size_t) at, d, ev->data_size, d, ev->data_size);
                        free(d);
                        mutate_and_expect(r, &s, g, &le, at, "Secure Boot toggled", &mutations);
                }
                if ((at = first_event(&s, is_db_with_lists)) > 0) {
                        /* append a signature list holding one more X.509 "certificate" */
                        const vc_event *ev = &s.log->events[at];
                        size_t extra = 28 + 16 + 64, n = ev->data_size + extra;
                        uint8_t *d = calloc(1, n), *l = d + ev->data_size;
                        memcpy(d, ev->data, ev->data_size);
                        memcpy(l, (uint8_t[]) { 0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c,
                                                0x2b, 0xf0, 0x72 },
                               16);
                        l[16] = (uint8_t) extra;
                        l[24] = 16 + 64;
                        memset(l + 28 + 16, 0x5a, 64);
                        uint64_t vl = vc_le64(d + 24) + extra;
                        for (int k = 0; k < 8; k++)
                                d[24 + k] = (uint8_t) (vl >> (8 * k));
                        le_load(&le, s.log);
                        le_set_data(&le, (size_t) at, d, n, d, n);
                        free(d);
                        mutate_and_expect(r, &s, g, &le, at, "db certificate added", &mutations);
                }
                if ((at = first_event(&s, is_dbx_with_entries)) > 0) {
                        /* drop the last entry of the last signature list */
                        const vc_event *ev = &s.log->events[at];
                        size_t hdr = var_header(ev), off = hdr, last = hdr;
                        while (off < ev->data_size) {
                                last = off;
                                off += vc_le32(ev->data + off + 16);
                        }
                        uint32_t lsize = vc_le32(ev->data + last + 16), ssize = vc_le32(ev->data + last + 24);
                        uint32_t hsize = vc_le32(ev->data + last + 20);
                        size_t cut = lsize - 28 - hsize == ssize ? lsize : ssize; /* a whole list if it held one */
                        size_t n = ev->data_size - cut;
                        uint8_t *d = malloc(n);
                        memcpy(d, ev->data, n);
                        if (cut == ssize) {
                                uint32_t nl = lsize - ssize;
                                memcpy(d + last + 16, &nl, 4);
                        }
                        uint64_t vl = vc_le64(d + 24) - cut;
                        for (int k = 0; k < 8; k++)
                                d[24 + k] = (uint8_t) (vl >> (8 * k));
                        le_load(&le, s.log);
                        le_set_data(&le, (size_t) at, d, n, d, n);
                        free(d);
                        mutate_and_expect(r, &s, g, &le, at, "dbx entry removed", &mutations);
                }
                if ((at = first_event(&s, is_cmdline)) > 0) {
                        const vc_event *ev = &s.log->events[at];
                        le_load(&le, s.log);
                        if (ev->data[1] != 0) { /* grub: "kernel_cmdline: X\0", measured X */
                                char cl[8192];
                                int n = snprintf(cl, sizeof(cl), "%.*s init=/bin/sh", (int) strnlen((char *) ev->data, ev->data_size),
                                                 (const char *) ev->data);
                                le_set_data(&le, (size_t) at, cl, (size_t) n + 1, cl + 16, (size_t) n - 16);
                        } else { /* systemd: UTF-16 with NUL, measured as logged */
                                size_t n = ev->data_size + 4;
                                uint8_t *d = malloc(n);
                                memcpy(d, ev->data, ev->data_size - 2);
                                memcpy(d + ev->data_size - 2, (uint8_t[]) { ' ', 0, 'x', 0, 0, 0 }, 6);
                                le_set_data(&le, (size_t) at, d, n, d, n);
                                free(d);
                        }
                        mutate_and_expect(r, &s, g, &le, at, "kernel command line changed", &mutations);
                }
                if ((at = first_event(&s, is_separator)) > 0) {
                        le_load(&le, s.log);
                        le_insert(&le, (size_t) at + 1, s.log->events[at].pcr, EV_EFI_ACTION, "Evil Action", 11);
                        mutate_and_expect(r, &s, g, &le, at + 1, "extra event after a separator", &mutations);
                }
                vc_golden_free(g);
                unload(&s);
        }
        printf("%u real logs accepted by their own golden set, %u tamperings rejected at the right event, "
               "%u logs extend no PCR\n",
               accepted, mutations, skipped);
        assert_true(accepted >= 25);
        assert_true(mutations >= 60);
}

static void test_real_cross_and_merge(void **state) {
        unsigned pairs = 0;
        for (size_t i = 0; i < n_logs; i++) {
                size_t j = (i + 1) % n_logs;
                lstate a, b;
                vc_golden *ga = NULL, *gb = NULL, *m = NULL;
                load(&a, logs[i].buf, logs[i].len);
                load(&b, logs[j].buf, logs[j].len);
                if (vc_golden_create(a.log, a.checks, &a.replay.pcrs, "a", NULL, &ga, NULL) < 0 ||
                    vc_golden_create(b.log, b.checks, &b.replay.pcrs, "b", NULL, &gb, NULL) < 0 || ga->bank != gb->bank ||
                    memcmp(&a.replay.pcrs, &b.replay.pcrs, sizeof(a.replay.pcrs)) == 0) {
                        vc_golden_free(ga);
                        vc_golden_free(gb);
                        unload(&a);
                        unload(&b);
                        continue;
                }
                vc_evaluation e = eval(ga, &b, 0xffffff);
                if (e.trust == VC_TRUST_TRUSTED)
                        fail_msg("golden set of %s accepts %s", logs[i].path, logs[j].path);
                vc_evaluation_done(&e);
                assert_int_equal(vc_golden_merge(ga, gb, &m, NULL), 0);
                assert_int_equal(m->version, 2);
                e = eval(m, &a, 0xffffff);
                if (e.trust != VC_TRUST_TRUSTED) {
                        dump(&e);
                        fail_msg("merge rejects %s", logs[i].path);
                }
                vc_evaluation_done(&e);
                e = eval(m, &b, 0xffffff);
                if (e.trust != VC_TRUST_TRUSTED) {
                        dump(&e);
                        fail_msg("merge rejects %s", logs[j].path);
                }
                vc_evaluation_done(&e);
                /* the merged set survives its own JSON */
                char *s1 = NULL, *s2 = NULL;
                vc_golden *back = NULL;
                assert_int_equal(vc_golden_to_json(m, &s1), 0);
                assert_int_equal(vc_golden_parse(s1, strlen(s1), &back, NULL), 0);
                assert_int_equal(vc_golden_to_json(back, &s2), 0);
                assert_string_equal(s1, s2);
                free(s1);
                free(s2);
                vc_golden_free(back);
                pairs++;
                vc_golden_free(ga);
                vc_golden_free(gb);
                vc_golden_free(m);
                unload(&a);
                unload(&b);
        }
        printf("%u pairs: each set rejects the other machine, the merge accepts both\n", pairs);
        assert_true(pairs >= 15);
}

/* ---------------- real logs, edited: vendor events, legacy BIOS, UTF-8, CCEL ---------------- */

static vc_golden *create_or_fail(const lstate *s, const char *what) {
        vc_golden *g = NULL;
        vc_error err;
        char msg[512];
        if (vc_golden_create(s->log, s->checks, &s->replay.pcrs, "edited", NULL, &g, &err) < 0)
                fail_msg("%s: create: %s", what, vc_error_format(&err, msg, sizeof(msg)));
        return g;
}

/* g, written and read back, still judges s the same (TRUSTED). */
static void expect_trusted_round_trip(const vc_golden *g, const lstate *s) {
        char *json = NULL;
        vc_golden *back = NULL;
        vc_error err;
        char msg[512];
        expect_trusted(g, s);
        assert_int_equal(vc_golden_to_json(g, &json), 0);
        if (vc_golden_parse(json, strlen(json), &back, &err) < 0)
                fail_msg("%s\n%s", vc_error_format(&err, msg, sizeof(msg)), json);
        expect_trusted(back, s);
        assert_memory_equal(back->fingerprint, g->fingerprint, 32);
        vc_golden_free(back);
        free(json);
}

/* Loads le (written) into t; frees nothing. buf is the caller's to free. */
static void load_edit(const logedit *le, lstate *t, uint8_t **buf) {
        size_t len;
        le_write(le, buf, &len);
        load(t, *buf, len);
}

static void expect_rule_at(const vc_golden *g, const logedit *le, const char *rule, long at, const char *what,
                           const char *path) {
        uint8_t *buf;
        lstate t;
        load_edit(le, &t, &buf);
        vc_evaluation e = eval(g, &t, 0xffffff);
        if (e.trust == VC_TRUST_TRUSTED || !find(&e, rule, at)) {
                dump(&e);
                fail_msg("%s: %s: expected a %s finding at event %ld", path, what, rule, at);
        }
        vc_evaluation_done(&e);
        unload(&t);
        free(buf);
}

/* The first event of PCR pcr that no content rule reads (a firmware or configuration
 * digest): the kind a vendor type replaces. -1 if none. */
static long vendor_candidate(const lstate *s, uint32_t pcr) {
        for (size_t i = 1; i < s->log->n_events; i++) {
                const vc_event *ev = &s->log->events[i];
                if (ev->pcr != pcr || ev->type == EV_NO_ACTION || ev->type == EV_SEPARATOR ||
                    ev->type == EV_S_CRTM_VERSION || ev->type == EV_EFI_ACTION || ev->type == EV_ACTION ||
                    ev->type == EV_EFI_VARIABLE_DRIVER_CONFIG)
                        continue;
                return (long) i;
        }
        return -1;
}

/* Vendor event types (0x40e in PCR 0 on an Intel server board, 0x8401 in PCR 2 on a
 * ThinkPad): a real log's firmware event relabelled so. The set created before refuses it
 * (unknown types stay rejected); the set created from it accepts exactly it: another
 * digest, another type, another place (a second copy) are findings. */
static void test_real_vendor_events(void **state) {
        unsigned done = 0;
        for (size_t i = 0; i < n_logs; i++) {
                reallog *r = &logs[i];
                lstate s, t;
                logedit le;
                uint8_t *buf;
                load(&s, r->buf, r->len);
                long at0 = vendor_candidate(&s, 0), at2 = vendor_candidate(&s, 2);
                if (at0 < 0 || s.log->format != VC_LOG_CRYPTO_AGILE) {
                        unload(&s);
                        continue;
                }
                vc_golden *before = create_or_fail(&s, r->path);
                le_load(&le, s.log);
                le.ev[at0].type = 0x40e;
                if (at2 > 0)
                        le.ev[at2].type = 0x8401;
                /* the type is not measured: the log still replays, to the same values */
                expect_rule_at(before, &le, "structure.unknown_events", at0, "vendor type, set made before", r->path);
                load_edit(&le, &t, &buf);
                vc_golden *g = create_or_fail(&t, r->path);
                assert_int_equal(g->n_vendor_events, at2 > 0 ? 2 : 1);
                assert_int_equal(g->unknown_events, VC_UNKNOWN_REJECT);
                expect_trusted_round_trip(g, &t);

                logedit x;
                le_load(&x, t.log); /* the digest changed */
                le_set_data(&x, (size_t) at0, "other firmware", 14, "other firmware", 14);
                expect_rule_at(g, &x, "structure.vendor_events", at0, "vendor event digest changed", r->path);
                le_free(&x);
                le_load(&x, t.log); /* the type changed to another vendor's */
                x.ev[at0].type = 0x40f;
                expect_rule_at(g, &x, "structure.vendor_events", at0, "vendor event type changed", r->path);
                le_free(&x);
                le_load(&x, t.log); /* measured twice: the copy is at a place nothing pins */
                le_insert(&x, (size_t) at0 + 1, 0, 0x40e, "copy", 4);
                le_set_data(&x, (size_t) at0 + 1, t.log->events[at0].data, t.log->events[at0].data_size, "", 0);
                memcpy(x.ev[at0 + 1].digests, x.ev[at0].digests, sizeof(x.ev[at0].digests));
                expect_rule_at(g, &x, "structure.unknown_events", at0 + 1, "vendor event repeated", r->path);
                le_free(&x);
                if (at2 > 0) {
                        le_load(&x, t.log);
                        le_set_measured(&x, (size_t) at2, "other option ROM", 16);
                        expect_rule_at(g, &x, "structure.vendor_events", at2, "PCR 2 vendor event changed", r->path);
                        le_free(&x);
                }
                vc_golden_free(g);
                vc_golden_free(before);
                le_free(&le);
                unload(&t);
                free(buf);
                unload(&s);
                done++;
        }
        printf("%u real logs with vendor event types: created, each change rejected\n", done);
        assert_true(done >= 10);
}

/* Removes every UEFI event (a legacy BIOS logs none) and measures every separator as
 * `separator`; as SeaBIOS does it for 0xFFFFFFFF (tcgbios.c tpm_add_event_separators: no
 * event data, the digest of the 4 bytes) when `unlogged`, else with the 4 bytes as data.
 * The result still replays. */
static void make_legacy_bios(const lstate *s, logedit *le, uint32_t separator, bool unlogged) {
        uint8_t v[4] = { (uint8_t) separator, (uint8_t) (separator >> 8), (uint8_t) (separator >> 16),
                         (uint8_t) (separator >> 24) };
        le_load(le, s->log);
        for (size_t i = le->n - 1; i >= 1; i--) {
                if (le->ev[i].type >= EV_EFI_EVENT_BASE && le->ev[i].type != VC_PCR_NONE)
                        le_delete(le, i);
                else if (le->ev[i].type == EV_SEPARATOR)
                        le_set_data(le, i, v, unlogged ? 0 : 4, v, 4);
        }
}

static long nth_separator(const logedit *le, unsigned n) {
        for (size_t i = 1; i < le->n; i++)
                if (le->ev[i].type == EV_SEPARATOR && le->ev[i].pcr <= 7 && n-- == 0)
                        return (long) i;
        return -1;
}

/* Legacy BIOS (SeaBIOS) error-value separators: a set created from such a log says so
 * and accepts it; a different separator is a finding; the set made from the same log with
 * 0 separators refuses it; a UEFI log with an error separator is refused by create, and so
 * is a legacy log that mixes both. */
static void test_real_error_separators(void **state) {
        unsigned done = 0;
        for (size_t i = 0; i < 2 * n_logs; i++) {
                bool unlogged = i < n_logs; /* SeaBIOS's form first, then with the value as data */
                reallog *r = &logs[i % n_logs];
                lstate s, bios, zero;
                logedit le, lz;
                uint8_t *buf, *zbuf;
                vc_golden *g = NULL;
                vc_error err;
                load(&s, r->buf, r->len);
                make_legacy_bios(&s, &le, 0xFFFFFFFF, unlogged);
                long sep = nth_separator(&le, 0);
                if (sep < 0 || s.log->format != VC_LOG_CRYPTO_AGILE) {
                        le_free(&le);
                        unload(&s);
                        continue;
                }
                load_edit(&le, &bios, &buf);
                if (vc_golden_create(bios.log, bios.checks, &bios.replay.pcrs, "bios", NULL, &g, &err) < 0) {
                        /* what is left of a UEFI log may not make sense as a BIOS boot */
                        le_free(&le);
                        unload(&bios);
                        free(buf);
                        unload(&s);
                        continue;
                }
                assert_true(g->error_separators);
                expect_trusted_round_trip(g, &bios);
                if (unlogged) /* SeaBIOS's separator: the digest check says what it measured */
                        assert_int_equal(bios.checks[sep].measured, VC_MEASURED_ERROR_SEPARATOR);
                /* one separator back to 0: differs from this platform's */
                logedit x;
                le_load(&x, bios.log);
                le_set_data(&x, (size_t) sep, "\0\0\0\0", 4, "\0\0\0\0", 4);
                expect_rule_at(g, &x, "structure.error_separators", sep, "separator 0 on an error-separator platform",
                               r->path);
                le_free(&x);
                /* the same log with 0 separators: its set refuses the error separators */
                make_legacy_bios(&s, &lz, 0, false);
                load_edit(&lz, &zero, &zbuf);
                vc_golden *gz = create_or_fail(&zero, r->path);
                assert_false(gz->error_separators);
                expect_rule_at(gz, &le, "structure.separators", sep, "error separator, set made with 0", r->path);
                vc_golden *m = NULL;
                assert_int_equal(vc_golden_merge(g, gz, &m, &err), -EBADMSG);
                assert_non_null(strstr(err.msg, "error-value separators"));
                /* a legacy log with both: not creatable */
                lstate mixed;
                uint8_t *mbuf;
                vc_golden *gm = NULL;
                le_load(&x, bios.log);
                long sep2 = nth_separator(&x, 1);
                if (sep2 > 0) {
                        le_set_data(&x, (size_t) sep2, "\0\0\0\0", 4, "\0\0\0\0", 4);
                        load_edit(&x, &mixed, &mbuf);
                        assert_int_equal(
                                vc_golden_create(mixed.log, mixed.checks, &mixed.replay.pcrs, "m", NULL, &gm, &err),
                                -EBADMSG);
                        assert_non_null(strstr(err.msg, "separators 0xFFFFFFFF and others"));
                        unload(&mixed);
                        free(mbuf);
                }
                le_free(&x);
                /* the UEFI log with one error separator: not creatable (a firmware error) */
                le_load(&x, s.log);
                long usep = nth_separator(&x, 0);
                le_set_data(&x, (size_t) usep, "\xff\xff\xff\xff", 4, "\xff\xff\xff\xff", 4);
                load_edit(&x, &mixed, &mbuf);
                assert_int_equal(vc_golden_create(mixed.log, mixed.checks, &mixed.replay.pcrs, "u", NULL, &gm, &err),
                                 -EBADMSG);
                assert_non_null(strstr(err.msg, "in a UEFI log"));
                unload(&mixed);
                free(mbuf);
                le_free(&x);
                vc_golden_free(gz);
                vc_golden_free(g);
                le_free(&lz);
                le_free(&le);
                unload(&zero);
                unload(&bios);
                free(zbuf);
                free(buf);
                unload(&s);
                done++;
        }
        printf("%u real logs made legacy BIOS with error separators (SeaBIOS's unlogged form and with data): "
               "created, changes rejected\n", done);
        assert_true(done >= 10);
}

static bool is_grub_cmd(const vc_event *ev, const vc_event_check *c) {
        return ev->type == EV_IPL && c->status == VC_DIGEST_VERIFIED && ev->data_size > 10 &&
               memcmp(ev->data, "grub_cmd: ", 10) == 0;
}

/* Replaces event at's GRUB command with body (grub_cmd: prefix, NUL), measured as GRUB
 * does: the body alone. */
static void set_grub_cmd(logedit *le, long at, const char *body, size_t n) {
        uint8_t d[256];
        assert_true(n + 11 <= sizeof(d));
        memcpy(d, "grub_cmd: ", 10);
        memcpy(d + 10, body, n);
        d[10 + n] = 0;
        le_set_data(le, (size_t) at, d, n + 11, body, n);
}

/* A GRUB menu entry in Chinese: decoded as UTF-8 (not UCS-2 mojibake), created as it is,
 * matched byte for byte; bytes that are not UTF-8 are shown escaped and not creatable. */
static void test_real_utf8_boot_strings(void **state) {
        static const char zh[] = "menuentry '\xe4\xb8\xad\xe6\x96\x87 Ubuntu' {"; /* 中文 */
        static const char zh2[] = "menuentry '\xe4\xb8\xad\xe6\x96\x88 Ubuntu' {"; /* one byte differs */
        static const char bad[] = "menuentry '\xff\xfe Ubuntu' {";
        unsigned done = 0;
        for (size_t i = 0; i < n_logs; i++) {
                reallog *r = &logs[i];
                lstate s, t;
                logedit le, x;
                uint8_t *buf;
                load(&s, r->buf, r->len);
                long at = first_event(&s, is_grub_cmd);
                if (at < 0) {
                        unload(&s);
                        continue;
                }
                vc_golden *before = create_or_fail(&s, r->path);
                le_load(&le, s.log);
                set_grub_cmd(&le, at, zh, strlen(zh));
                expect_rule_at(before, &le, "kernel.boot_commands", at, "UTF-8 command, set made before", r->path);
                load_edit(&le, &t, &buf);
                vc_event_content c;
                assert_int_equal(vc_event_decode(&t.log->events[at], &c, NULL), 0);
                assert_int_equal(c.kind, VC_CONTENT_STRING);
                assert_non_null(strstr(c.text, "\xe4\xb8\xad\xe6\x96\x87"));
                vc_event_content_done(&c);
                vc_golden *g = create_or_fail(&t, r->path);
                assert_true(vc_sset_has(&g->boot_commands, zh));
                expect_trusted_round_trip(g, &t);
                le_load(&x, t.log);
                set_grub_cmd(&x, at, zh2, strlen(zh2));
                expect_rule_at(g, &x, "kernel.boot_commands", at, "UTF-8 command changed", r->path);
                le_free(&x);
                /* not UTF-8: shown escaped, a set cannot hold it */
                le_load(&x, t.log);
                set_grub_cmd(&x, at, bad, strlen(bad));
                lstate u;
                uint8_t *ubuf;
                load_edit(&x, &u, &ubuf);
                assert_int_equal(vc_event_decode(&u.log->events[at], &c, NULL), 0);
                assert_null(c.string);
                assert_non_null(strstr(c.text, "\\xff\\xfe"));
                vc_event_content_done(&c);
                vc_golden *gu = NULL;
                vc_error err;
                assert_int_equal(vc_golden_create(u.log, u.checks, &u.replay.pcrs, "u", NULL, &gu, &err), -EBADMSG);
                assert_non_null(strstr(err.msg, "not UTF-8 text"));
                expect_rule_at(g, &x, "kernel.boot_commands", at, "not UTF-8", r->path);
                unload(&u);
                free(ubuf);
                le_free(&x);
                vc_golden_free(g);
                vc_golden_free(before);
                le_free(&le);
                unload(&t);
                free(buf);
                unload(&s);
                done++;
        }
        printf("%u real logs with a UTF-8 GRUB command: created, changes rejected\n", done);
        assert_true(done >= 3);
}

static bool is_sb_var_reg1(const vc_event *ev, const vc_event_check *c) {
        vc_event_content ct;
        bool yes = false;
        if (ev->pcr != 1 || ev->type != EV_EFI_VARIABLE_DRIVER_CONFIG)
                return false;
        if (vc_event_decode(ev, &ct, NULL) == 0 && ct.var_name && strcmp(ct.var_name, "SecureBoot") == 0)
                yes = true;
        vc_event_content_done(&ct);
        return yes;
}

/* CCEL (TDX): a set created from a CCEL log is a set of registers ("log": "ccel"), accepts
 * its log and refuses changes; it judges no TPM log and no TPM set judges it; it merges
 * with no TPM set. */
static void test_ccel_golden(void **state) {
        char dir[4200];
        unsigned done = 0;
        snprintf(dir, sizeof(dir), "%s/ccel", shared);
        DIR *dd = opendir(dir);
        if (!dd)
                skip();
        struct dirent *f;
        while ((f = readdir(dd))) {
                char path[4800];
                size_t l = strlen(f->d_name);
                if (f->d_name[0] == '.' || (l > 5 && strcmp(f->d_name + l - 5, ".json") == 0) ||
                    (l > 3 && strcmp(f->d_name + l - 3, ".md") == 0))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, f->d_name);
                FILE *fp = fopen(path, "rb");
                assert_non_null(fp);
                fseek(fp, 0, SEEK_END);
                size_t len = (size_t) ftell(fp);
                fseek(fp, 0, SEEK_SET);
                uint8_t *buf = malloc(len);
                assert_int_equal(fread(buf, 1, len, fp), len);
                fclose(fp);
                lstate s, tpm;
                load(&s, buf, len);
                assert_int_equal(s.log->kind, VC_LOG_CCEL);
                vc_golden *g = create_or_fail(&s, path);
                assert_int_equal(g->log_kind, VC_LOG_CCEL);
                assert_int_equal(g->pcrs, VC_GOLDEN_CREATE_CCEL_REGISTERS); /* RTMR0-2 */
                assert_int_equal(g->bank, VC_ALG_SHA384);
                expect_trusted_round_trip(g, &s);
                char *json = NULL;
                assert_int_equal(vc_golden_to_json(g, &json), 0);
                assert_non_null(strstr(json, "\"log\": \"ccel\""));
                free(json);

                /* changes are findings, at the register of the event */
                logedit le;
                long at = first_event(&s, is_grub_cmd);
                assert_true(at > 0);
                le_load(&le, s.log);
                set_grub_cmd(&le, at, "insmod evil", 11);
                expect_rule_at(g, &le, "kernel.boot_commands", at, "CCEL GRUB command changed", path);
                le_free(&le);
                at = first_event(&s, is_sb_var_reg1);
                assert_true(at > 0);
                const vc_event *ev = &s.log->events[at];
                uint8_t *d = malloc(ev->data_size);
                memcpy(d, ev->data, ev->data_size);
                d[ev->data_size - 1] ^= 1;
                le_load(&le, s.log);
                le_set_data(&le, (size_t) at, d, ev->data_size, d, ev->data_size);
                free(d);
                expect_rule_at(g, &le, "secure_boot.enabled", at, "CCEL Secure Boot toggled", path);
                le_free(&le);
                at = first_event(&s, is_boot_app);
                assert_true(at > 0);
                le_load(&le, s.log);
                le_set_measured(&le, (size_t) at, "another shim", 12);
                expect_rule_at(g, &le, "boot_chain.chains", at, "CCEL boot application changed", path);
                le_free(&le);

                /* PCRs are not registers */
                load(&tpm, logs[0].buf, logs[0].len);
                vc_golden *gt = create_or_fail(&tpm, logs[0].path);
                vc_evaluation e = eval(g, &tpm, 0xffffff);
                expect_finding(&e, "log", -1);
                vc_evaluation_done(&e);
                e = eval(gt, &s, 0xffffff);
                expect_finding(&e, "log", -1);
                assert_int_equal(e.n_findings, 1);
                vc_evaluation_done(&e);
                vc_golden *m = NULL;
                vc_error err;
                assert_int_equal(vc_golden_merge(g, gt, &m, &err), -EBADMSG);
                assert_non_null(strstr(err.msg, "ccel"));
                assert_int_equal(vc_golden_merge(g, g, &m, &err), 0);
                expect_trusted(m, &s);
                vc_golden_free(m);
                vc_golden_free(gt);
                unload(&tpm);
                vc_golden_free(g);
                unload(&s);
                free(buf);
                done++;
        }
        closedir(dd);
        printf("%u CCEL logs: golden sets of registers created, accepted, changes rejected\n", done);
        assert_true(done >= 1);
}

/* A vendor event's pin says on which side of its PCR's separator it was: one moved across
 * the separator, at the same position, is a finding (review of issue 22: the pin exempted
 * it from the after-separator check). */
static void vendor_log(logbuilder *b, bool after) {
        size_t n;
        lb_init_agile(b, banks, 2);
        lb_event(b, 0, EV_S_CRTM_VERSION, "v\0\0\0", 4);
        if (!after) {
                lb_event_fill(b, 0, EV_EFI_PLATFORM_FIRMWARE_BLOB, 0x11, "0123456789abcdef", 16);
                lb_event_fill(b, 0, 0x40e, 0x33, "vendor", 6);
        }
        uint8_t *sb = lb_variable(vc_guid_efi_global_variable, "SecureBoot", "\1", 1, &n);
        lb_event(b, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, sb, n);
        free(sb);
        for (uint32_t p = 0; p < 8; p++)
                lb_event(b, p, EV_SEPARATOR, "\0\0\0\0", 4);
        if (after) /* position 2 of PCR 0 too: S-CRTM version, separator, this */
                lb_event_fill(b, 0, 0x40e, 0x33, "vendor", 6);
        lb_event(b, 4, EV_EFI_ACTION, "Calling EFI Application from Boot Option", 40);
        lb_event_fill(b, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x21, "app1", 4);
}

static void test_vendor_pin_keeps_its_side_of_the_separator(void **state) {
        for (int from_after = 0; from_after < 2; from_after++) {
                logbuilder a, b;
                lstate s, t;
                vendor_log(&a, from_after);
                vendor_log(&b, !from_after);
                load(&s, a.buf, a.len);
                load(&t, b.buf, b.len);
                vc_golden *g = create(&s), *g2 = NULL;
                assert_int_equal(g->n_vendor_events, 1);
                assert_int_equal(g->vendor_events[0].after_separator, from_after);
                expect_trusted(g, &s);
                /* the side survives the JSON round trip */
                char *json = NULL;
                vc_error err;
                assert_int_equal(vc_golden_to_json(g, &json), 0);
                assert_int_equal(vc_golden_parse(json, strlen(json), &g2, &err), 0);
                assert_int_equal(g2->vendor_events[0].after_separator, from_after);
                expect_trusted(g2, &s);
                vc_evaluation e = eval(g2, &t, 0xffffff);
                assert_int_equal(e.trust, VC_TRUST_UNTRUSTED);
                vc_evaluation_done(&e);
                free(json);
                vc_golden_free(g);
                vc_golden_free(g2);
                unload(&s);
                unload(&t);
                lb_free(&a);
                lb_free(&b);
        }
}

/* Every event of every real log: the content its rules read is what the decoder gives. */
static void test_real_rule_content(void **state) {
        size_t events = 0;
        for (size_t i = 0; i < n_logs; i++) {
                lstate s;
                load(&s, logs[i].buf, logs[i].len);
                for (size_t k = 0; k < s.log->n_events; k++) {
                        char where[4900];
                        snprintf(where, sizeof(where), "%s event %zu", logs[i].path, k);
                        expect_rule_content_is_decoders(&s.log->events[k], where);
                        events++;
                }
                unload(&s);
        }
        printf("%zu events of %zu real logs: the content rules read is the decoder's\n", events, n_logs);
        assert_true(events > 1000);
}

int main(void) {
        const char *d = getenv("VOUCH_SHARED_DIR"), *ci = getenv("CI");
        struct stat st;
        char probe[4200];
        const struct CMUnitTest synthetic[] = {
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_parse_roundtrip),
                cmocka_unit_test(test_every_rule),
                cmocka_unit_test(test_parse_new_rules),
                cmocka_unit_test(test_synthetic_create_accepts),
                cmocka_unit_test(test_synthetic_rejections),
                cmocka_unit_test(test_zeroed_evaluation_not_trusted),
                cmocka_unit_test(test_merge_keeps_chains_apart),
                cmocka_unit_test(test_no_boot_application),
                cmocka_unit_test(test_pin_explains_only_its_own_pcr),
                cmocka_unit_test(test_separator_outside_required_pcrs), cmocka_unit_test(test_create_evaluates_unused_boot_pcrs),
                cmocka_unit_test(test_grub_prefix_not_trusted),
                cmocka_unit_test(test_cache),
                cmocka_unit_test(test_findings_are_bounded),
                cmocka_unit_test(test_create_leaves_out_resettable_pcrs),
                cmocka_unit_test(test_cache_is_bounded_in_bytes),
                cmocka_unit_test(test_vendor_pin_keeps_its_side_of_the_separator),
                cmocka_unit_test(test_rule_content_strings),
        };
        const struct CMUnitTest real[] = {
                cmocka_unit_test(test_real_logs),
                cmocka_unit_test(test_real_cross_and_merge),
                cmocka_unit_test(test_real_vendor_events),
                cmocka_unit_test(test_real_error_separators),
                cmocka_unit_test(test_real_utf8_boot_strings),
                cmocka_unit_test(test_ccel_golden),
                cmocka_unit_test(test_real_rule_content),
        };
        int r = cmocka_run_group_tests_name("golden (synthetic)", synthetic, NULL, NULL);
        snprintf(shared, sizeof(shared), "%s", d ? d : "../shared");
        snprintf(probe, sizeof(probe), "%s/eventlogs", shared);
        if (stat(probe, &st) < 0) {
                if (ci && strcmp(ci, "true") == 0) {
                        fprintf(stderr, "FAIL: real event logs not found at %s (CI=true)\n", shared);
                        return 1;
                }
                fprintf(stderr, "\n*** SKIPPED real-log golden tests: no data at %s (set VOUCH_SHARED_DIR) ***\n\n", shared);
                return r ? r : 77;
        }
        collect_logs();
        r |= cmocka_run_group_tests_name("golden (real logs)", real, NULL, NULL);
        for (size_t i = 0; i < n_logs; i++)
                free(logs[i].buf);
        return r;
}
