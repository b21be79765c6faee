/* SPDX-License-Identifier: Apache-2.0 */
/* The shared whole-file reader: exact limits, NUL termination, errors passed up. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fileio.h"

static char dir[] = "/tmp/vouch-fileio-XXXXXX";

static void put(const char *name, size_t len) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        for (size_t i = 0; i < len; i++)
                fputc('a' + (int) (i % 26), f);
        assert_int_equal(fclose(f), 0);
}

static int dirfd_open(void) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void test_reads_whole_file(void **state) {
        int dfd = dirfd_open();
        uint8_t *b = NULL;
        size_t n = 0;
        put("big", 100000); /* several reads and reallocations */
        assert_int_equal(vu_read_file(dfd, "big", 100000, &b, &n), 0);
        assert_int_equal(n, 100000);
        assert_int_equal(b[0], 'a');
        assert_int_equal(b[99999], 'a' + 99999 % 26);
        assert_int_equal(b[n], 0);
        free(b);
        put("empty", 0);
        assert_int_equal(vu_read_file(dfd, "empty", 10, &b, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(b[0], 0);
        free(b);
        close(dfd);
}

static void test_limit_is_exact(void **state) {
        int dfd = dirfd_open();
        uint8_t *b = (uint8_t *) "untouched";
        size_t n = 7;
        put("ten", 10);
        assert_int_equal(vu_read_file(dfd, "ten", 10, &b, &n), 0);
        assert_int_equal(n, 10);
        free(b);
        b = (uint8_t *) "untouched";
        assert_int_equal(vu_read_file(dfd, "ten", 9, &b, &n), -EFBIG);
        assert_string_equal((char *) b, "untouched");
        assert_int_equal(vu_read_file(dfd, "ten", 0, &b, &n), -EFBIG);
        close(dfd);
}

static void test_errors(void **state) {
        int dfd = dirfd_open();
        uint8_t *b = NULL;
        size_t n = 0;
        assert_int_equal(vu_read_file(dfd, "missing", 10, &b, &n), -ENOENT);
        assert_int_equal(vu_read_file(dfd, ".", 10, &b, &n), -EISDIR);
        assert_null(b);
        char path[256];
        snprintf(path, sizeof path, "%s/big", dir);
        put("big", 100);
        assert_int_equal(vu_read_file(AT_FDCWD, path, 1000, &b, &n), 0); /* absolute path */
        assert_int_equal(n, 100);
        free(b);
        close(dfd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reads_whole_file),
                cmocka_unit_test(test_limit_is_exact),
                cmocka_unit_test(test_errors),
        };
        assert_non_null(mkdtemp(dir));
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        return r;
}
