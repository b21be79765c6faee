/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the PCR value files: vc_pcrs_parse (JSON, or tpm2-tools' serialized format), and
 * each format's parser directly so that neither is only reached through the other's
 * first-byte test. The input is one file. Checks that a parsed set holds known banks of
 * the right size, PCRs 0-23 only, and that a failure says why. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "pcrs.h"

static void check_set(const vc_pcr_set *s) {
        FUZZ_CHECK(s->n_banks <= VC_NUM_ALGS);
        for (uint32_t i = 0; i < s->n_banks; i++) {
                const vc_pcr_bank *b = &s->banks[i];
                const vc_alg_info *a = vc_alg_lookup(b->alg);
                FUZZ_CHECK(a && a->size == b->size);
                FUZZ_CHECK((b->mask >> VC_PCR_COUNT) == 0);
                FUZZ_CHECK(vc_pcr_set_find(s, b->alg) == b); /* each bank once */
        }
}

/* The output is written only on success (STYLE.md): a failed parse leaves it as it was. */
#define POISON 0xa5

static bool untouched(const vc_pcr_set *s) {
        const uint8_t *p = (const uint8_t *) s;
        for (size_t i = 0; i < sizeof(*s); i++)
                if (p[i] != POISON)
                        return false;
        return true;
}

static bool same_set(const vc_pcr_set *a, const vc_pcr_set *b) {
        if (a->n_banks != b->n_banks)
                return false;
        for (uint32_t i = 0; i < a->n_banks; i++) {
                const vc_pcr_bank *x = &a->banks[i], *y = vc_pcr_set_find(b, x->alg);
                if (!y || x->size != y->size || x->mask != y->mask)
                        return false;
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        if ((x->mask & (1u << p)) && memcmp(x->values[p], y->values[p], x->size) != 0)
                                return false;
        }
        return true;
}

/* A parsed set written as JSON (the format of `vouchctl eventlog replay --json`) parses
 * back to the same set. */
static void check_round_trip(const vc_pcr_set *s) {
        /* 5 banks x 24 PCRs x ("NN": "128 hex", ) plus names: well under 24 KiB */
        char *json = malloc(24576), hex[2 * VC_MAX_DIGEST + 1];
        size_t n = 0;
        vc_pcr_set *back = malloc(sizeof(*back));
        vc_error err;
        if (!json || !back)
                abort();
        n += (size_t) snprintf(json + n, 24576 - n, "{");
        for (uint32_t i = 0; i < s->n_banks; i++) {
                const vc_pcr_bank *b = &s->banks[i];
                bool first = true;
                n += (size_t) snprintf(json + n, 24576 - n, "%s\"%s\": {", i ? ", " : "",
                                       vc_alg_lookup(b->alg)->name);
                for (unsigned p = 0; p < VC_PCR_COUNT; p++) {
                        if (!(b->mask & (1u << p)))
                                continue;
                        vc_hex(b->values[p], b->size, hex);
                        n += (size_t) snprintf(json + n, 24576 - n, "%s\"%u\": \"%s\"", first ? "" : ", ", p, hex);
                        first = false;
                }
                n += (size_t) snprintf(json + n, 24576 - n, "}");
        }
        n += (size_t) snprintf(json + n, 24576 - n, "}\n");
        FUZZ_CHECK(n < 24576);
        int r = vc_pcrs_parse((const uint8_t *) json, n, back, &err);
        if (r != -ENOMEM) {
                if (r < 0)
                        fprintf(stderr, "round trip of %s: %s\n", json, err.msg);
                FUZZ_CHECK(r == 0);
                FUZZ_CHECK(same_set(s, back));
        }
        free(back);
        free(json);
}

static void check_result(int r, const vc_pcr_set *s, const vc_error *err) {
        char buf[512];
        if (r == 0) {
                check_set(s);
                check_round_trip(s);
                return;
        }
        FUZZ_CHECK(untouched(s));
        FUZZ_CHECK(r == -EBADMSG || r == -E2BIG || r == -ENOTSUP || r == -ENOMEM);
        if (r != -ENOMEM) {
                FUZZ_CHECK(err->code == r);
                FUZZ_CHECK(memchr(err->msg, '\0', sizeof(err->msg)) && err->msg[0]);
        }
        vc_error_format(err, buf, sizeof(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        vc_pcr_set *s = malloc(sizeof(*s));
        vc_error err;
        int r;

        if (!s)
                abort();

        memset(s, POISON, sizeof(*s));
        r = vc_pcrs_parse(data, size, s, &err);
        check_result(r, s, &err);

        memset(s, POISON, sizeof(*s));
        r = vc_pcrs_parse_json((const char *) data, size, s, &err);
        check_result(r, s, &err);

        memset(s, POISON, sizeof(*s));
        r = vc_pcrs_parse_tpm2_serialized(data, size, s, &err);
        check_result(r, s, &err);

        free(s);
        return 0;
}
