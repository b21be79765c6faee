/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl ek fingerprint FILE: the EK key fingerprint an operator lists in vouchd's
 * --allowlist to enroll a TPM without an EK certificate (docs/real-devices.md). FILE is
 * the EK's public part as tpm2_createek writes it: TPM2B_PUBLIC (-u, the default tss
 * format) or a PEM public key (-f pem). */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ekcert.h"
#include "quote.h"
#include "vouchctl.h"

/* Copies big-endian bytes of a BIGNUM parameter into buf (at most cap). */
static int bn_param(const EVP_PKEY *k, const char *name, uint8_t *buf, size_t cap, uint16_t *ret_len) {
        BIGNUM *bn = NULL;
        if (!EVP_PKEY_get_bn_param(k, name, &bn))
                return -EINVAL;
        int n = BN_num_bytes(bn);
        int r = n > 0 && (size_t) n <= cap && BN_bn2bin(bn, buf) == n ? 0 : -EINVAL;
        BN_free(bn);
        *ret_len = (uint16_t) n;
        return r;
}

/* A PEM public key as the TPMT_PUBLIC fields the key id covers (type, exponent or curve,
 * and the key material). */
static int public_from_pem(const uint8_t *pem, size_t len, TPMT_PUBLIC *out) {
        BIO *b = BIO_new_mem_buf(pem, (int) len);
        EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        int r = -EINVAL;
        BIO_free(b);
        if (!k)
                return -EBADMSG;
        memset(out, 0, sizeof(*out));
        if (EVP_PKEY_is_a(k, "RSA")) {
                BIGNUM *e = NULL;
                out->type = TPM2_ALG_RSA;
                if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e) && BN_num_bytes(e) <= 4) {
                        out->parameters.rsaDetail.exponent = (uint32_t) BN_get_word(e);
                        r = bn_param(k, OSSL_PKEY_PARAM_RSA_N, out->unique.rsa.buffer, sizeof(out->unique.rsa.buffer),
                                     &out->unique.rsa.size);
                }
                BN_free(e);
        } else if (EVP_PKEY_is_a(k, "EC")) {
                char group[64] = "";
                out->type = TPM2_ALG_ECC;
                EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL);
                out->parameters.eccDetail.curveID = !strcmp(group, "prime256v1") || !strcmp(group, "P-256")
                                                            ? TPM2_ECC_NIST_P256
                                                    : !strcmp(group, "secp384r1") || !strcmp(group, "P-384")
                                                            ? TPM2_ECC_NIST_P384
                                                            : 0;
                if (out->parameters.eccDetail.curveID &&
                    bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, out->unique.ecc.x.buffer, sizeof(out->unique.ecc.x.buffer),
                             &out->unique.ecc.x.size) == 0 &&
                    bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, out->unique.ecc.y.buffer, sizeof(out->unique.ecc.y.buffer),
                             &out->unique.ecc.y.size) == 0)
                        r = 0;
        }
        EVP_PKEY_free(k);
        return r;
}

int cmd_ek(int argc, char **argv) {
        static const char usage[] =
                "Usage: vouchctl ek fingerprint FILE   (FILE: tpm2_createek -u output, TPM2B_PUBLIC or PEM)\n";
        if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
                fputs(usage, stdout);
                return EXIT_OK;
        }
        if (argc != 3 || strcmp(argv[1], "fingerprint") != 0) {
                fputs(usage, stderr);
                return EXIT_USAGE;
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        TPM2B_PUBLIC pub = { 0 };
        char fp[65];
        int r = read_input(argv[2], 64 * 1024, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "vouchctl: %s: %s\n", argv[2], strerror(-r));
                return EXIT_USAGE;
        }
        if (len > 11 && memcmp(buf, "-----BEGIN ", 11) == 0)
                r = public_from_pem(buf, len, &pub.publicArea);
        else
                r = vc_tpm2b_public_parse(buf, len, &pub);
        free(buf);
        if (r < 0 || vc_ek_key_fingerprint(&pub.publicArea, fp) < 0) {
                fprintf(stderr, "vouchctl: %s: not an RSA or ECC (P-256, P-384) public key as TPM2B_PUBLIC or PEM\n",
                        argv[2]);
                return EXIT_USAGE;
        }
        printf("%s\n", fp);
        return EXIT_OK;
}
