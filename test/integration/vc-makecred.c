/* SPDX-License-Identifier: Apache-2.0 */
/* Test helper: vc_make_credential from files, in the format tpm2_activatecredential reads.
 *   vc-makecred EK_TPM2B_PUBLIC NAME_FILE SECRET_HEX OUT */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "credential.h"

static size_t slurp(const char *p, uint8_t *buf, size_t cap) {
        FILE *f = fopen(p, "rb");
        if (!f) {
                perror(p);
                exit(2);
        }
        size_t n = fread(buf, 1, cap, f);
        fclose(f);
        return n;
}

int main(int argc, char **argv) {
        uint8_t ekbuf[sizeof(TPM2B_PUBLIC)], name[sizeof(TPMU_NAME)], secret[64], *out;
        size_t off = 0, outlen;
        TPM2B_PUBLIC ek = { 0 };
        TPM2B_ID_OBJECT blob;
        TPM2B_ENCRYPTED_SECRET enc;
        vc_credential_random rnd;
        vc_error err = { 0 };
        if (argc != 5) {
                fprintf(stderr, "usage: vc-makecred EK_PUB NAME SECRET_HEX OUT\n");
                return 2;
        }
        size_t eklen = slurp(argv[1], ekbuf, sizeof(ekbuf));
        if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(ekbuf, eklen, &off, &ek) != TSS2_RC_SUCCESS) {
                fprintf(stderr, "%s: not a TPM2B_PUBLIC\n", argv[1]);
                return 2;
        }
        size_t nl = slurp(argv[2], name, sizeof(name));
        int sl = vc_unhex(argv[3], strlen(argv[3]), secret, sizeof(secret));
        if (RAND_bytes((uint8_t *) &rnd, sizeof(rnd)) != 1) {
                fprintf(stderr, "RAND_bytes failed\n");
                return 1;
        }
        int r = sl <= 0 ? -1 : vc_make_credential(&ek.publicArea, name, nl, secret, (size_t) sl, &rnd, &blob, &enc, &err);
        OPENSSL_cleanse(&rnd, sizeof(rnd));
        if (r < 0 || vc_credential_to_tpm2_tools(&blob, &enc, &out, &outlen) < 0) {
                fprintf(stderr, "make credential failed: %s\n", err.msg);
                return 1;
        }
        FILE *f = fopen(argv[4], "wb");
        if (!f || fwrite(out, 1, outlen, f) != outlen || fclose(f) != 0) {
                perror(argv[4]);
                return 2;
        }
        free(out);
        return 0;
}
