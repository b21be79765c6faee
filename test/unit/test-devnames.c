/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's --device-names file (verifier/server/devnames.h): what it keeps, and each way a
 * file is refused, with the line it names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devnames.h"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int parse(const char *text, devnames **ret, char *err) {
        return devnames_parse(text, strlen(text), ret, err, 512);
}

static void test_valid(void **state) {
        char err[512];
        devnames *n = NULL;
        const char *const *names = NULL;
        assert_int_equal(parse("# names for device certificates\n"
                               "  \n"
                               ID_B "\tbuild-07.ci.example.net\r\n"
                               "   # an indented comment\n"
                               ID_A " host1.example.org  Host1.INTERNAL x\n",
                               &n, err),
                         0);
        assert_int_equal(devnames_count(n), 2);
        assert_int_equal(devnames_find(n, ID_A, &names), 3);
        assert_string_equal(names[0], "host1.example.org");
        assert_string_equal(names[1], "host1.internal"); /* DNS names are kept in lowercase */
        assert_string_equal(names[2], "x");
        assert_int_equal(devnames_find(n, ID_B, &names), 1);
        assert_string_equal(names[0], "build-07.ci.example.net");
        /* a device not listed, an id of another form, no file */
        assert_int_equal(devnames_find(n, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", &names), 0);
        assert_int_equal(devnames_find(n, "aaaa", &names), 0);
        assert_int_equal(devnames_find(NULL, ID_A, &names), 0);
        devnames_free(n);
        /* empty, comments only, no newline at the end */
        assert_int_equal(parse("", &n, err), 0);
        assert_int_equal(devnames_count(n), 0);
        devnames_free(n);
        assert_int_equal(parse(ID_A " a.b", &n, err), 0);
        assert_int_equal(devnames_count(n), 1);
        devnames_free(n);
        /* the limits themselves: 8 names, 63-character labels, 253 characters */
        char line[1024];
        snprintf(line, sizeof(line), ID_A " a b c d e f g %.63s", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_int_equal(parse(line, &n, err), 0);
        assert_int_equal(devnames_find(n, ID_A, &names), 8);
        devnames_free(n);
        char big[300];
        memset(big, 'a', 253);
        for (int i = 63; i < 253; i += 64)
                big[i] = '.';
        big[253] = 0;
        snprintf(line, sizeof(line), ID_A " %s", big);
        assert_int_equal(parse(line, &n, err), 0);
        devnames_free(n);
}

/* text is refused with r, and err names where and what */
static void refused(const char *text, int r, const char *want) {
        char err[512];
        devnames *n = (devnames *) 1;
        int got = parse(text, &n, err);
        if (got != r || !strstr(err, want))
                fail_msg("\"%.80s\": %d \"%s\", expected %d \"...%s...\"", text, got, err, r, want);
        assert_ptr_equal(n, (devnames *) 1); /* left alone */
}

static void test_refused(void **state) {
        refused("ABC host\n", -EBADMSG, "line 1: the device id must be 64 lowercase hex digits (GET /v1/devices), not \"ABC\"");
        refused("\n" ID_A "\n", -EBADMSG, "line 2: device aaaaaaaaaaaaaaaa... has no name");
        refused("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA x\n", -EBADMSG, "64 lowercase hex");
        refused(ID_A " *.example.org\n", -EBADMSG, "\"*.example.org\" is not a DNS host name: a wildcard");
        refused(ID_A " host.example.org.\n", -EBADMSG, "it ends with a dot");
        refused(ID_A " a..b\n", -EBADMSG, "an empty label");
        refused(ID_A " -a.example\n", -EBADMSG, "a label starts with '-'");
        refused(ID_A " a-.example\n", -EBADMSG, "a label ends with '-'");
        refused(ID_A " a_b.example\n", -EBADMSG, "not a letter, digit, '-' or '.'");
        refused(ID_A " caf\xc3\xa9.example\n", -EBADMSG, "\"caf\\xc3\\xa9.example\"");
        refused(ID_A " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.a\n", -EBADMSG,
                "a label longer than 63 characters");
        refused(ID_A " a b c d e f g h i\n", -E2BIG, "line 1: more than 8 names");
        refused(ID_A " x y x\n", -EEXIST, "line 1: the name x twice");
        refused(ID_A " x\n" ID_B " y\n" ID_A " z\n", -EEXIST, "device " ID_A " is listed twice (lines 1 and 3)");
        char big[300], line[400];
        memset(big, 'a', 254);
        for (int i = 63; i < 254; i += 64)
                big[i] = '.';
        big[254] = 0;
        snprintf(line, sizeof(line), ID_A " %s", big);
        refused(line, -EBADMSG, "longer than 253 characters");

        char err[512];
        devnames *n = (devnames *) 1;
        static const char nul[] = ID_A " ok\0\n";
        assert_int_equal(devnames_parse(nul, sizeof(nul) - 1, &n, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "a NUL byte at offset 67"));
        char *huge = malloc(DEVNAMES_FILE_MAX + 1);
        assert_non_null(huge);
        memset(huge, '\n', DEVNAMES_FILE_MAX + 1);
        assert_int_equal(devnames_parse(huge, DEVNAMES_FILE_MAX + 1, &n, err, sizeof(err)), -E2BIG);
        assert_non_null(strstr(err, "more than 16777216"));
        free(huge);
        assert_ptr_equal(n, (devnames *) 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
