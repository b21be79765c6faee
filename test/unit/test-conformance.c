/* SPDX-License-Identifier: Apache-2.0 */
/* Conformance on real data from real machines (the shared data folder, never copied into
 * the project): every event log replays to the PCR values its upstream project asserts;
 * every real quote verifies with its event log and fails with any single bit flipped in
 * the quote, the signature, the quoted PCR values, or the nonce.
 * VOUCH_SHARED_DIR points at the folder; without it the suite is skipped loudly, except
 * under CI=true, where missing data is a failure. */
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
#include <cmocka.h>

#include "eventlog.h"
#include "pcrs.h"
#include "quote.h"
#include "replay.h"

static char shared[4096];

static uint8_t *slurp(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *b = malloc((size_t) n + 1);
        assert_non_null(b);
        assert_int_equal(fread(b, 1, (size_t) n, f), (size_t) n);
        b[n] = 0;
        fclose(f);
        *len = (size_t) n;
        return b;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* An attestation replays and checks only the banks it needs (vc_replay_init_banks,
 * vc_event_check_digests_in): on a real log each bank alone replays to the values of the
 * whole replay, and each event's check of one bank says what the check of all says. */
static void check_bank_by_bank(const char *path, vc_hasher *h, const vc_eventlog *log, const vc_event_check *checks,
                               const vc_pcr_set *whole) {
        for (uint32_t b = 0; b < whole->n_banks; b++) {
                const vc_pcr_bank *wb = &whole->banks[b];
                uint32_t bit = 1u << vc_alg_index(wb->alg);
                vc_replay one;
                vc_replay_init_banks(&one, bit);
                assert_int_equal(vc_replay_update(h, log, &one, NULL, NULL), 0);
                if (one.pcrs.n_banks != 1 || memcmp(&one.pcrs.banks[0], wb, sizeof(*wb)) != 0)
                        fail_msg("%s: %s replayed alone differs", path, vc_alg_lookup(wb->alg)->name);
                for (size_t i = 0; i < log->n_events; i++) {
                        vc_event_check c;
                        assert_int_equal(vc_event_check_digests_in(h, &log->events[i], bit, &c), 0);
                        if (c.status != checks[i].status || c.measured != checks[i].measured)
                                fail_msg("%s: event %zu: %s alone is %s, every bank %s", path, i,
                                         vc_alg_lookup(wb->alg)->name, vc_digest_status_name(c.status),
                                         vc_digest_status_name(checks[i].status));
                }
        }
}

/* Replays one log read as how says; fills *out (and *ret_log when not NULL), or fails
 * the test. */
static void replay_file_as(const char *path, vc_log_read how, vc_pcr_set *out, vc_eventlog **ret_log) {
        size_t len;
        uint8_t *buf = slurp(path, &len);
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_replay r;
        vc_error err;
        char msg[512];
        assert_non_null(buf);
        if (vc_eventlog_parse_as(buf, len, how, &log, &err) < 0)
                fail_msg("%s: %s", path, vc_error_format(&err, msg, sizeof(msg)));
        vc_event_check *checks = calloc(log->n_events, sizeof(*checks));
        assert_int_equal(vc_hasher_new(&h), 0);
        vc_replay_init(&r);
        if (vc_replay_update(h, log, &r, checks, &err) < 0)
                fail_msg("%s: replay: %s", path, vc_error_format(&err, msg, sizeof(msg)));
        /* Every digest check of these real logs is consistent: no mismatch. */
        for (size_t i = 0; i < log->n_events; i++)
                if (checks[i].status == VC_DIGEST_MISMATCH)
                        fail_msg("%s: event %zu (%s) digest mismatch", path, i,
                                 vc_event_type_name(log->events[i].type));
        check_bank_by_bank(path, h, log, checks, &r.pcrs);
        *out = r.pcrs;
        free(checks);
        vc_hasher_free(h);
        if (ret_log)
                *ret_log = log;
        else
                vc_eventlog_free(log);
        free(buf);
}

static void replay_file(const char *path, vc_pcr_set *out) {
        replay_file_as(path, VC_READ_TPM, out, NULL);
}

/* got replays to exactly the banks, PCRs (registers) and values of path.pcrs.json. */
static void expect_pcrs_json(const char *path, const vc_pcr_set *got) {
        char exp[4900];
        size_t elen;
        vc_pcr_set want;
        vc_error err;
        snprintf(exp, sizeof(exp), "%s.pcrs.json", path);
        uint8_t *ebuf = slurp(exp, &elen);
        if (!ebuf)
                fail_msg("%s: no expected values", exp);
        assert_int_equal(vc_pcrs_parse_json((char *) ebuf, elen, &want, &err), 0);
        assert_true(want.n_banks >= 1);
        for (uint32_t b = 0; b < want.n_banks; b++) {
                const vc_pcr_bank *wb = &want.banks[b], *gb = vc_pcr_set_find(got, wb->alg);
                const char *bank = vc_alg_lookup(wb->alg)->name;
                if (!gb)
                        fail_msg("%s: no %s bank replayed", path, bank);
                if (gb->mask != wb->mask)
                        fail_msg("%s: %s indices extended 0x%06x, expected 0x%06x", path, bank, gb->mask, wb->mask);
                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                        if ((wb->mask & (1u << p)) && memcmp(gb->values[p], wb->values[p], wb->size) != 0)
                                fail_msg("%s: %s index %u differs", path, bank, p);
        }
        free(ebuf);
}

/* Every CCEL log in shared/ccel: read by its structure (auto) and as CCEL it is CCEL and
 * replays its registers to NAME.pcrs.json; read as a TPM log it is refused. */
static void test_ccel_logs(void **state) {
        char dir[4200];
        unsigned checked = 0;
        snprintf(dir, sizeof(dir), "%s/ccel", shared);
        DIR *dd = opendir(dir);
        if (!dd) {
                const char *ci = getenv("CI");
                if (ci && strcmp(ci, "true") == 0)
                        fail_msg("%s: not found (CI=true)", dir);
                printf("*** SKIPPED: no %s ***\n", dir);
                skip();
        }
        struct dirent *f;
        while ((f = readdir(dd))) {
                char path[4800];
                if (f->d_name[0] == '.' || ends_with(f->d_name, ".json") || ends_with(f->d_name, ".md"))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, f->d_name);
                static const vc_log_read hows[] = { VC_READ_AUTO, VC_READ_CCEL };
                for (size_t i = 0; i < 2; i++) {
                        vc_pcr_set got;
                        vc_eventlog *log = NULL;
                        replay_file_as(path, hows[i], &got, &log);
                        assert_int_equal(log->kind, VC_LOG_CCEL);
                        if (log->padding)
                                printf("%s: %zu bytes of padding (0x%02x) after event %zu\n", f->d_name, log->padding,
                                       log->padding_byte, log->n_events - 1);
                        vc_eventlog_free(log);
                        expect_pcrs_json(path, &got);
                }
                size_t len;
                uint8_t *buf = slurp(path, &len);
                vc_eventlog *log = NULL;
                vc_error err;
                assert_non_null(buf);
                assert_int_equal(vc_eventlog_parse(buf, len, &log, &err), -EBADMSG);
                assert_null(log);
                assert_int_equal(vc_eventlog_parse_as(buf, len, VC_READ_TPM, &log, &err), -EBADMSG);
                printf("ccel ok     %s (refused as a TPM log: %s)\n", f->d_name, err.msg);
                free(buf);
                checked++;
        }
        closedir(dd);
        assert_true(checked >= 1);
}

static void test_eventlogs(void **state) {
        char dir[4200];
        unsigned checked = 0, parse_only = 0;
        snprintf(dir, sizeof(dir), "%s/eventlogs", shared);
        DIR *top = opendir(dir);
        assert_non_null(top);
        struct dirent *d;
        while ((d = readdir(top))) {
                char sub[4500];
                if (d->d_name[0] == '.')
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", dir, d->d_name);
                DIR *sd = opendir(sub);
                if (!sd)
                        continue;
                struct dirent *f;
                while ((f = readdir(sd))) {
                        char path[4800], exp[4900];
                        if (f->d_name[0] == '.' || ends_with(f->d_name, ".json") || ends_with(f->d_name, ".md"))
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", sub, f->d_name);
                        snprintf(exp, sizeof(exp), "%s.pcrs.json", path);
                        vc_pcr_set got, want;
                        replay_file(path, &got);
                        size_t elen;
                        uint8_t *ebuf = slurp(exp, &elen);
                        if (!ebuf) {
                                parse_only++;
                                printf("parse only  %s/%s\n", d->d_name, f->d_name);
                                continue;
                        }
                        vc_error err;
                        assert_int_equal(vc_pcrs_parse_json((char *) ebuf, elen, &want, &err), 0);
                        for (uint32_t b = 0; b < want.n_banks; b++) {
                                const vc_pcr_bank *wb = &want.banks[b], *gb = vc_pcr_set_find(&got, wb->alg);
                                const char *bank = vc_alg_lookup(wb->alg)->name;
                                if (!gb)
                                        fail_msg("%s: no %s bank replayed", path, bank);
                                if (gb->mask != wb->mask)
                                        fail_msg("%s: %s PCRs extended 0x%06x, expected 0x%06x", path, bank,
                                                 gb->mask, wb->mask);
                                for (unsigned p = 0; p < VC_PCR_COUNT; p++)
                                        if ((wb->mask & (1u << p)) &&
                                            memcmp(gb->values[p], wb->values[p], wb->size) != 0)
                                                fail_msg("%s: %s PCR %u differs", path, bank, p);
                        }
                        printf("replays ok  %s/%s (%u banks)\n", d->d_name, f->d_name, want.n_banks);
                        checked++;
                        free(ebuf);
                }
                closedir(sd);
        }
        closedir(top);
        printf("%u logs matched their expected PCRs, %u parse-only logs replayed\n", checked, parse_only);
        assert_true(checked >= 20);
        assert_true(checked + parse_only >= 30);
}

typedef struct real_quote {
        uint8_t *ak, *attest, *sig, *log;
        size_t ak_len, attest_len, sig_len, log_len;
        vc_pcr_set pcrs, replayed;
        uint8_t nonce[64];
        size_t nonce_len;
} real_quote;

static void load_quote(const char *dir, real_quote *q) {
        char p[4600];
        size_t len;
        memset(q, 0, sizeof(*q));
#define LOAD(field, name)                                       \
        snprintf(p, sizeof(p), "%s/%s", dir, name);             \
        q->field = slurp(p, &q->field##_len);                   \
        assert_non_null(q->field);
        LOAD(ak, "ak.tpmt_public");
        LOAD(attest, "quote.tpms_attest");
        LOAD(sig, "quote.tpmt_signature");
        LOAD(log, "eventlog.bin");
#undef LOAD
        snprintf(p, sizeof(p), "%s/pcrs.json", dir);
        uint8_t *j = slurp(p, &len);
        assert_non_null(j);
        assert_int_equal(vc_pcrs_parse_json((char *) j, len, &q->pcrs, NULL), 0);
        free(j);
        snprintf(p, sizeof(p), "%s/nonce.hex", dir);
        j = slurp(p, &len);
        assert_non_null(j);
        int n = vc_unhex((char *) j, len, q->nonce, sizeof(q->nonce));
        assert_true(n >= 0);
        q->nonce_len = (size_t) n;
        free(j);
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        assert_int_equal(vc_eventlog_parse(q->log, q->log_len, &log, NULL), 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_eventlog_replay(h, log, &q->replayed, NULL), 0);
        vc_eventlog_free(log);
        vc_hasher_free(h);
}

static void free_quote(real_quote *q) {
        free(q->ak);
        free(q->attest);
        free(q->sig);
        free(q->log);
}

/* 1 valid, 0 invalid (including unparseable). */
static int check(const real_quote *q, const uint8_t *attest, const uint8_t *sig, const vc_pcr_set *pcrs,
                 const uint8_t *nonce, size_t nonce_len, vc_quote_result *res) {
        vc_ak *ak = NULL;
        vc_quote *qq = NULL;
        int valid = 0;
        assert_int_equal(vc_ak_load(q->ak, q->ak_len, &ak, NULL), 0);
        if (vc_quote_parse(attest, q->attest_len, sig, q->sig_len, &qq, NULL) == 0) {
                /* windows-gce signs with SHA-1, refused by default: allowed here on purpose */
                vc_quote_policy policy = { .allow_sha1 = true };
                assert_int_equal(vc_quote_verify(qq, ak, pcrs, nonce, nonce_len, NULL, 0, &q->replayed, &policy, res),
                                 0);
                valid = res->status == VC_QUOTE_VALID;
        }
        vc_quote_free(qq);
        vc_ak_free(ak);
        return valid;
}

static void test_quotes(void **state) {
        static const char *const names[] = { "gce-cos-85-sha1", "gce-cos-85-sha256", "gce-cos-85-sha384",
                                             "windows-gce" };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                char dir[4300];
                real_quote q;
                vc_quote_result res;
                unsigned flips = 0;
                snprintf(dir, sizeof(dir), "%s/quotes/%s", shared, names[i]);
                load_quote(dir, &q);
                if (!check(&q, q.attest, q.sig, &q.pcrs, q.nonce, q.nonce_len, &res))
                        fail_msg("%s: real quote rejected: %s", names[i], res.reason);
                assert_true(res.n_pcrs_compared_to_log >= 8);

                uint8_t *a = malloc(q.attest_len), *s = malloc(q.sig_len);
                memcpy(a, q.attest, q.attest_len);
                memcpy(s, q.sig, q.sig_len);
                for (size_t bit = 0; bit < q.attest_len * 8; bit++, flips++) {
                        a[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                        if (check(&q, a, q.sig, &q.pcrs, q.nonce, q.nonce_len, &res))
                                fail_msg("%s: quote bit %zu flipped still verifies", names[i], bit);
                        a[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                }
                for (size_t bit = 0; bit < q.sig_len * 8; bit++, flips++) {
                        s[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                        if (check(&q, q.attest, s, &q.pcrs, q.nonce, q.nonce_len, &res))
                                fail_msg("%s: signature bit %zu flipped still verifies", names[i], bit);
                        s[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                }
                /* every PCR value the quote covers (the files hold the quoted bank, all 24) */
                vc_pcr_set p = q.pcrs;
                for (uint32_t b = 0; b < p.n_banks; b++) {
                        vc_pcr_bank *bank = &p.banks[b];
                        assert_int_equal(bank->mask, 0xffffff);
                        for (unsigned pcr = 0; pcr < VC_PCR_COUNT; pcr++)
                                for (unsigned bit = 0; bit < bank->size * 8u; bit++, flips++) {
                                        bank->values[pcr][bit / 8] ^= (uint8_t) (1u << (bit % 8));
                                        if (check(&q, q.attest, q.sig, &p, q.nonce, q.nonce_len, &res))
                                                fail_msg("%s: PCR %u bit %u flipped still verifies", names[i],
                                                         pcr, bit);
                                        bank->values[pcr][bit / 8] ^= (uint8_t) (1u << (bit % 8));
                                }
                }
                /* the nonce: each bit of it flipped, and (these quotes have an empty nonce)
                 * any one-byte nonce instead */
                uint8_t n[64];
                memcpy(n, q.nonce, q.nonce_len);
                for (size_t bit = 0; bit < q.nonce_len * 8; bit++, flips++) {
                        n[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                        assert_false(check(&q, q.attest, q.sig, &q.pcrs, n, q.nonce_len, &res));
                        n[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                }
                for (unsigned bit = 0; bit < 8; bit++, flips++) {
                        n[q.nonce_len] = (uint8_t) (1u << bit);
                        assert_false(check(&q, q.attest, q.sig, &q.pcrs, n, q.nonce_len + 1, &res));
                        assert_int_equal(res.failed, VC_QUOTE_CHECK_NONCE);
                }
                printf("%s: valid; %u single-bit changes all rejected\n", names[i], flips);
                free(a);
                free(s);
                free_quote(&q);
        }
}

int main(void) {
        const char *d = getenv("VOUCH_SHARED_DIR"), *ci = getenv("CI");
        char probe[4200];
        struct stat st;
        snprintf(shared, sizeof(shared), "%s", d ? d : "../shared");
        snprintf(probe, sizeof(probe), "%s/eventlogs", shared);
        if (stat(probe, &st) < 0) {
                if (ci && strcmp(ci, "true") == 0) {
                        fprintf(stderr, "FAIL: real-data conformance data not found at %s (CI=true)\n", shared);
                        return 1;
                }
                fprintf(stderr, "\n*** SKIPPED: real-data conformance data not found at %s ***\n"
                                "*** set VOUCH_SHARED_DIR to the folder holding eventlogs/ and quotes/ ***\n\n",
                        shared);
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_eventlogs),
                cmocka_unit_test(test_quotes),
                cmocka_unit_test(test_ccel_logs),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
