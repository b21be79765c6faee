/* SPDX-License-Identifier: Apache-2.0 */
/* Replay: extend rules, PCR 0 locality, incremental replay, dropped banks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "logbuilder.h"
#include "replay.h"

static const uint16_t banks[] = { VC_ALG_SHA1, VC_ALG_SHA256 };

/* Expected extend chain computed independently with one-shot hashes. */
static void extend(uint16_t alg, uint8_t *pcr, const uint8_t *digest) {
        const vc_alg_info *a = vc_alg_lookup(alg);
        uint8_t buf[2 * VC_MAX_DIGEST];
        memcpy(buf, pcr, a->size);
        memcpy(buf + a->size, digest, a->size);
        assert_int_equal(vc_digest(alg, buf, 2 * a->size, pcr), 0);
}

static void replay_buf(const logbuilder *b, vc_pcr_set *out, int expect) {
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_error err;
        assert_int_equal(vc_eventlog_parse(b->buf, b->len, &log, &err), 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_eventlog_replay(h, log, out, &err), expect);
        vc_eventlog_free(log);
        vc_hasher_free(h);
}

static void test_extend_chain(void **state) {
        logbuilder b;
        vc_pcr_set s;
        uint8_t want1[20] = { 0 }, want256[32] = { 0 }, d1[20], d256[32];
        lb_init_agile(&b, banks, 2);
        lb_event(&b, 4, EV_EFI_ACTION, "one", 3);
        lb_event(&b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        lb_event_fill(&b, 4, EV_NO_ACTION, 0x99, "x", 1);         /* never extended */
        lb_event_fill(&b, VC_PCR_NONE, EV_EVENT_TAG, 0x98, "12345678", 8); /* never extended */
        replay_buf(&b, &s, 0);
        vc_digest(VC_ALG_SHA1, "one", 3, d1);
        vc_digest(VC_ALG_SHA256, "one", 3, d256);
        extend(VC_ALG_SHA1, want1, d1);
        extend(VC_ALG_SHA256, want256, d256);
        vc_digest(VC_ALG_SHA1, "\0\0\0\0", 4, d1);
        vc_digest(VC_ALG_SHA256, "\0\0\0\0", 4, d256);
        extend(VC_ALG_SHA1, want1, d1);
        extend(VC_ALG_SHA256, want256, d256);
        assert_int_equal(s.n_banks, 2);
        const vc_pcr_bank *b1 = vc_pcr_set_find(&s, VC_ALG_SHA1), *b256 = vc_pcr_set_find(&s, VC_ALG_SHA256);
        assert_int_equal(b1->mask, 1u << 4);
        assert_int_equal(b256->mask, 1u << 4);
        assert_memory_equal(b1->values[4], want1, 20);
        assert_memory_equal(b256->values[4], want256, 32);
        lb_free(&b);
}

static void test_startup_locality(void **state) {
        logbuilder b;
        vc_pcr_set s;
        uint8_t want[32] = { 0 }, d[32];
        lb_init_agile(&b, banks, 2);
        lb_event_fill(&b, 0, EV_NO_ACTION, 0, "StartupLocality\0\3", 17);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        replay_buf(&b, &s, 0);
        want[31] = 3;
        vc_digest(VC_ALG_SHA256, "v", 1, d);
        extend(VC_ALG_SHA256, want, d);
        assert_memory_equal(vc_pcr_set_find(&s, VC_ALG_SHA256)->values[0], want, 32);
        lb_free(&b);
}

static void test_startup_locality_too_late(void **state) {
        logbuilder b;
        vc_pcr_set s;
        lb_init_agile(&b, banks, 2);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        lb_event_fill(&b, 0, EV_NO_ACTION, 0, "StartupLocality\0\3", 17);
        replay_buf(&b, &s, -EBADMSG);
        lb_free(&b);
}

static void test_startup_locality_other_pcr_ignored(void **state) {
        /* Only a PCR 0 StartupLocality event counts. */
        logbuilder b;
        vc_pcr_set s;
        uint8_t want[32] = { 0 }, d[32];
        lb_init_agile(&b, banks, 2);
        lb_event_fill(&b, 1, EV_NO_ACTION, 0, "StartupLocality\0\3", 17);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        replay_buf(&b, &s, 0);
        vc_digest(VC_ALG_SHA256, "v", 1, d);
        extend(VC_ALG_SHA256, want, d);
        assert_memory_equal(vc_pcr_set_find(&s, VC_ALG_SHA256)->values[0], want, 32);
        lb_free(&b);
}

static void test_hcrtm(void **state) {
        /* An H-CRTM sequence starts PCR 0 at locality 4. */
        logbuilder b;
        vc_pcr_set s;
        uint8_t want[32] = { 0 }, d[32];
        lb_init_agile(&b, banks, 2);
        lb_event_fill(&b, 0, EV_EFI_HCRTM_EVENT, 0x42, "HCRTM", 5);
        replay_buf(&b, &s, 0);
        want[31] = 4;
        memset(d, 0x42, 32);
        extend(VC_ALG_SHA256, want, d);
        assert_memory_equal(vc_pcr_set_find(&s, VC_ALG_SHA256)->values[0], want, 32);
        lb_free(&b);
}

static void test_legacy_first_event_extended(void **state) {
        logbuilder b;
        vc_pcr_set s;
        uint8_t want[20] = { 0 }, d[20];
        lb_init_legacy(&b);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        replay_buf(&b, &s, 0);
        vc_digest(VC_ALG_SHA1, "v", 1, d);
        extend(VC_ALG_SHA1, want, d);
        assert_int_equal(s.n_banks, 1);
        assert_memory_equal(s.banks[0].values[0], want, 20);
        lb_free(&b);
}

static void test_bank_missing_in_event_dropped(void **state) {
        logbuilder b;
        vc_pcr_set s;
        uint8_t d[20] = { 0 };
        lb_init_agile(&b, banks, 2);
        lb_event(&b, 4, EV_EFI_ACTION, "one", 3);
        lb_u32(&b, 4);
        lb_u32(&b, EV_EFI_ACTION);
        lb_u32(&b, 1);
        lb_raw(&b, (uint8_t[]) { 4, 0 }, 2);
        lb_raw(&b, d, 20);
        lb_u32(&b, 0);
        replay_buf(&b, &s, 0);
        assert_int_equal(s.n_banks, 1);
        assert_int_equal(s.banks[0].alg, VC_ALG_SHA1);
        lb_free(&b);
}

static void test_unknown_bank_skipped(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_replay r;
        uint16_t algs[] = { VC_ALG_SHA256, 0x0027 }, sizes[] = { 32, 48 };
        lb_init_agile_sizes(&b, algs, sizes, 2);
        lb_event(&b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        assert_int_equal(vc_eventlog_parse(b.buf, b.len, &log, NULL), 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        vc_replay_init(&r);
        assert_int_equal(vc_replay_update(h, log, &r, NULL, NULL), 0);
        assert_int_equal(r.pcrs.n_banks, 1);
        assert_int_equal(r.n_skipped_algs, 1);
        assert_int_equal(r.skipped_algs[0], 0x0027);
        vc_eventlog_free(log);
        vc_hasher_free(h);
        lb_free(&b);
}

static void test_incremental_equals_whole(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_replay r;
        vc_pcr_set whole;
        vc_event_check checks[8];
        lb_init_agile(&b, banks, 2);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        lb_event(&b, 4, EV_EFI_ACTION, "a", 1);
        size_t cut = b.len;
        lb_event(&b, 4, EV_EFI_ACTION, "b", 1);
        lb_event(&b, 8, EV_IPL, "grub_cmd: x", 12);
        replay_buf(&b, &whole, 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_eventlog_parse(b.buf, cut, &log, NULL), 0);
        vc_replay_init(&r);
        assert_int_equal(vc_replay_update(h, log, &r, checks, NULL), 0);
        assert_int_equal(r.next_event, 3);
        assert_int_equal(vc_eventlog_append(log, b.buf + cut, b.len - cut, NULL), 0);
        assert_int_equal(vc_replay_update(h, log, &r, checks, NULL), 0);
        assert_int_equal(r.next_event, 5);
        assert_memory_equal(&r.pcrs, &whole, sizeof(whole));
        assert_int_equal(checks[2].status, VC_DIGEST_VERIFIED);
        /* a grub string whose digest is of the whole logged data, not the command: mismatch */
        assert_int_equal(checks[4].status, VC_DIGEST_MISMATCH);
        vc_eventlog_free(log);
        vc_hasher_free(h);
        lb_free(&b);
}

/* vc_replay_pack keeps what a replay carried between attestations, byte for byte, in less
 * room; a replay continued from its packed copy equals the whole log's replay. */
/* CCEL: registers keyed by their index as written, each from zero; a StartupLocality or
 * H-CRTM event at register 0 (MRTD, not PCR 0) changes nothing. */
static void test_ccel_registers(void **state) {
        static const uint16_t sha384[] = { VC_ALG_SHA384 };
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_pcr_set s;
        uint8_t want0[48] = { 0 }, want2[48] = { 0 }, d[48];
        lb_init_agile(&b, sha384, 1);
        b.buf[0] = 1; /* Spec ID at register 1, as TDX firmware writes it */
        lb_event(&b, 0, EV_NO_ACTION, "StartupLocality\0\3", 17);
        lb_event(&b, 0, EV_EFI_HCRTM_EVENT, "HCRTM", 5);
        lb_event(&b, 2, EV_EFI_ACTION, "two", 3);
        assert_int_equal(vc_eventlog_parse_as(b.buf, b.len, VC_READ_AUTO, &log, NULL), 0);
        assert_int_equal(log->kind, VC_LOG_CCEL);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_eventlog_replay(h, log, &s, NULL), 0);
        vc_digest(VC_ALG_SHA384, "HCRTM", 5, d);
        extend(VC_ALG_SHA384, want0, d);
        vc_digest(VC_ALG_SHA384, "two", 3, d);
        extend(VC_ALG_SHA384, want2, d);
        assert_int_equal(s.n_banks, 1);
        const vc_pcr_bank *bank = vc_pcr_set_find(&s, VC_ALG_SHA384);
        assert_non_null(bank);
        assert_int_equal(bank->mask, (1u << 0) | (1u << 2));
        assert_memory_equal(bank->values[0], want0, 48);
        assert_memory_equal(bank->values[2], want2, 48);
        vc_eventlog_free(log);

        /* the same bytes read as a TPM log (Spec ID forced to PCR 0): PCR 0 starts at 4 */
        b.buf[0] = 0;
        assert_int_equal(vc_eventlog_parse(b.buf, b.len, &log, NULL), 0);
        assert_int_equal(vc_eventlog_replay(h, log, &s, NULL), 0);
        assert_memory_not_equal(vc_pcr_set_find(&s, VC_ALG_SHA384)->values[0], want0, 48);
        vc_eventlog_free(log);
        vc_hasher_free(h);
        lb_free(&b);
}

static void test_pack_round_trip(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_replay r, u;
        vc_replay_packed *p = NULL;
        vc_pcr_set whole;
        uint16_t algs[] = { VC_ALG_SHA1, VC_ALG_SHA256, 0x0027 }, sizes[] = { 20, 32, 48 };
        vc_replay_unpack(NULL, &u);
        vc_replay_init(&r);
        assert_memory_equal(&u, &r, sizeof(r));
        lb_init_agile_sizes(&b, algs, sizes, 3);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        lb_event(&b, 4, EV_EFI_ACTION, "a", 1);
        size_t cut = b.len;
        lb_event(&b, 7, EV_EFI_ACTION, "b", 1);
        lb_event(&b, 8, EV_IPL, "grub_cmd: x", 12);
        replay_buf(&b, &whole, 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_eventlog_parse(b.buf, cut, &log, NULL), 0);
        assert_int_equal(vc_replay_update(h, log, &r, NULL, NULL), 0);
        assert_int_equal(r.n_skipped_algs, 1);
        assert_int_equal(vc_replay_pack(&r, &p), 0);
        /* two banks of two PCRs each */
        assert_true(vc_replay_packed_size(p) < 400 && vc_replay_packed_size(p) >= 2 * (20 + 32));
        vc_replay_unpack(p, &u);
        assert_memory_equal(&u, &r, sizeof(r));
        free(p);
        assert_int_equal(vc_eventlog_append(log, b.buf + cut, b.len - cut, NULL), 0);
        assert_int_equal(vc_replay_update(h, log, &u, NULL, NULL), 0);
        assert_memory_equal(&u.pcrs, &whole, sizeof(whole));
        assert_int_equal(vc_replay_pack(&u, &p), 0);
        vc_replay_unpack(p, &r);
        assert_memory_equal(&u, &r, sizeof(r));
        assert_int_equal(r.next_event, 5);
        free(p);
        vc_eventlog_free(log);
        vc_hasher_free(h);
        lb_free(&b);
}

/* A replay restricted to some banks computes those as a whole replay does, leaves the
 * others out (not as skipped: they were not asked for), and carries the restriction
 * through pack and unpack. */
static void test_restricted_banks(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_replay r, u;
        vc_replay_packed *p = NULL;
        vc_pcr_set whole;
        uint16_t algs[] = { VC_ALG_SHA1, VC_ALG_SHA256, 0x0027 }, sizes[] = { 20, 32, 48 };
        uint32_t sha256 = 1u << vc_alg_index(VC_ALG_SHA256), sha384 = 1u << vc_alg_index(VC_ALG_SHA384);
        vc_replay_init_banks(&r, 0);
        vc_replay_init(&u);
        assert_memory_equal(&r, &u, sizeof(r));
        lb_init_agile_sizes(&b, algs, sizes, 3);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        lb_event(&b, 4, EV_EFI_ACTION, "a", 1);
        size_t cut = b.len;
        lb_event(&b, 7, EV_EFI_ACTION, "b", 1);
        replay_buf(&b, &whole, 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_eventlog_parse(b.buf, cut, &log, NULL), 0);
        vc_replay_init_banks(&r, sha256 | sha384);
        assert_int_equal(vc_replay_update(h, log, &r, NULL, NULL), 0);
        assert_int_equal(r.pcrs.n_banks, 1);
        assert_int_equal(r.n_skipped_algs, 0);
        assert_true(vc_replay_covers(&r, VC_ALG_SHA256));
        assert_true(vc_replay_covers(&r, VC_ALG_SHA384)); /* asked for; the log has none */
        assert_false(vc_replay_covers(&r, VC_ALG_SHA1));
        assert_false(vc_replay_covers(&r, 0x0027));
        assert_int_equal(vc_replay_pack(&r, &p), 0);
        vc_replay_unpack(p, &u);
        assert_memory_equal(&u, &r, sizeof(r));
        free(p);
        assert_int_equal(vc_eventlog_append(log, b.buf + cut, b.len - cut, NULL), 0);
        assert_int_equal(vc_replay_update(h, log, &u, NULL, NULL), 0);
        assert_int_equal(u.pcrs.n_banks, 1);
        assert_false(vc_replay_covers(&u, VC_ALG_SHA1));
        const vc_pcr_bank *want = vc_pcr_set_find(&whole, VC_ALG_SHA256), *got = vc_pcr_set_find(&u.pcrs, VC_ALG_SHA256);
        assert_non_null(got);
        assert_memory_equal(got, want, sizeof(*got));
        vc_eventlog_free(log);
        lb_free(&b);

        /* a legacy SHA-1 log replayed for SHA-256 alone: nothing to replay */
        lb_init_legacy(&b);
        lb_event(&b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        assert_int_equal(vc_eventlog_parse(b.buf, b.len, &log, NULL), 0);
        vc_replay_init_banks(&r, sha256);
        assert_int_equal(vc_replay_update(h, log, &r, NULL, NULL), 0);
        assert_int_equal(r.pcrs.n_banks, 0);
        assert_int_equal(r.n_skipped_algs, 0);
        vc_eventlog_free(log);
        vc_hasher_free(h);
        lb_free(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_extend_chain),
                cmocka_unit_test(test_startup_locality),
                cmocka_unit_test(test_startup_locality_too_late),
                cmocka_unit_test(test_startup_locality_other_pcr_ignored),
                cmocka_unit_test(test_hcrtm),
                cmocka_unit_test(test_legacy_first_event_extended),
                cmocka_unit_test(test_bank_missing_in_event_dropped),
                cmocka_unit_test(test_unknown_bank_skipped),
                cmocka_unit_test(test_incremental_equals_whole),
                cmocka_unit_test(test_pack_round_trip),
                cmocka_unit_test(test_restricted_banks),
                cmocka_unit_test(test_ccel_registers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
