/* SPDX-License-Identifier: Apache-2.0 */
/* The shared certificate-extension helper (common/x509.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "x509.h"

static void test_add_ext(void **state) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        X509 *x = X509_new();
        assert_non_null(key);
        assert_non_null(x);
        assert_int_equal(X509_set_pubkey(x, key), 1);
        assert_int_equal(vu_x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"), 0);
        assert_int_equal(vu_x509_add_ext(x, x, NID_subject_key_identifier, "hash"), 0);
        assert_int_equal(vu_x509_add_ext(x, x, NID_ext_key_usage, "2.23.133.8.1"), 0);
        assert_int_equal(X509_get_ext_count(x), 3);
        int crit = -1;
        BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
        assert_non_null(bc);
        assert_int_equal(crit, 1);
        assert_true(bc->ca);
        assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
        BASIC_CONSTRAINTS_free(bc);
        /* a value that does not parse for the extension: refused, nothing added */
        assert_int_equal(vu_x509_add_ext(x, x, NID_basic_constraints, "critical,CA:MAYBE"), -EINVAL);
        assert_int_equal(vu_x509_add_ext(x, x, NID_key_usage, "noSuchUsage"), -EINVAL);
        assert_int_equal(X509_get_ext_count(x), 3);
        X509_free(x);
        EVP_PKEY_free(key);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_ext),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
