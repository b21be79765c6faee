/* SPDX-License-Identifier: Apache-2.0 */
/* One device's attestations over a boot: incremental logs, freshness, reboots, rollback
 * of rejected evidence, golden verdicts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "attest.h"
#include "digest-set.h"
#include "logbuilder.h"
#include "quotebuilder.h"
#include "uefi.h"

static const uint16_t banks[] = { VC_ALG_SHA1, VC_ALG_SHA256 };
#define QUOTED 0x73ffu /* sha256 PCRs 0-9 and 12-14, as a created golden set evaluates */

typedef struct fix {
        qb_key key;
        vc_ak *ak;
        logbuilder b;
        size_t boot_len;        /* the log up to the end of boot */
        vc_golden *golden;
        vc_eval_cache *cache;
        vc_device_state st;
        uint64_t clock;
        uint32_t reset, restart;
        uint8_t nonce[32];
} fix;

static void boot_log(logbuilder *b) {
        lb_sample_boot(b);
        const char *cl = "kernel_cmdline: /vmlinuz ro";
        lb_event_measured(b, 8, EV_IPL, cl, strlen(cl) + 1, cl + 16, strlen(cl) - 16);
}

/* PCR values of the first n bytes of the log. */
static void pcrs_of(const uint8_t *buf, size_t len, vc_pcr_set *out) {
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        assert_int_equal(vc_eventlog_parse(buf, len, &log, NULL), 0);
        assert_int_equal(vc_hasher_new(&h), 0);
        assert_int_equal(vc_eventlog_replay(h, log, out, NULL), 0);
        vc_eventlog_free(log);
        vc_hasher_free(h);
        /* quoted PCRs the log leaves alone are at their reset value (0) */
        vc_pcr_bank *bank = vc_pcr_set_bank(out, VC_ALG_SHA256);
        bank->mask |= QUOTED;
}

static int setup(void **state) {
        fix *f = calloc(1, sizeof(*f));
        vc_error err;
        qb_key_new(&f->key);
        assert_int_equal(vc_ak_load(f->key.pub_bytes, f->key.pub_len, &f->ak, &err), 0);
        boot_log(&f->b);
        f->boot_len = f->b.len;
        /* the golden set from the boot log (and the later grub command allowed) */
        vc_eventlog *log = NULL;
        vc_hasher *h = NULL;
        vc_replay r;
        assert_int_equal(vc_eventlog_parse(f->b.buf, f->b.len, &log, NULL), 0);
        vc_event_check *checks = calloc(log->n_events, sizeof(*checks));
        assert_int_equal(vc_hasher_new(&h), 0);
        vc_replay_init(&r);
        assert_int_equal(vc_replay_update(h, log, &r, checks, NULL), 0);
        assert_int_equal(vc_golden_create(log, checks, &r.pcrs, "dev", NULL, &f->golden, &err), 0);
        assert_int_equal(vc_sset_add(&f->golden->boot_commands, "set late=1"), 0);
        vc_sset_finish(&f->golden->boot_commands);
        f->golden->has_boot_commands = true;
        vc_eventlog_free(log);
        free(checks);
        vc_hasher_free(h);
        assert_int_equal(vc_eval_cache_new(16, &f->cache), 0);
        f->clock = 1000;
        f->reset = 5;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fix *f = *state;
        vc_device_state_done(&f->st);
        vc_eval_cache_free(f->cache);
        vc_golden_free(f->golden);
        vc_ak_free(f->ak);
        qb_key_free(&f->key);
        lb_free(&f->b);
        free(f);
        return 0;
}

/* Attests with the log's first `upto` bytes, sending from `from`; vc_attest_verify's return. */
static int attest_rc(fix *f, size_t from, size_t upto, uint64_t clock, uint32_t reset, const vc_pcr_set *pcrs,
                     vc_attest_result *res) {
        qb_quote q;
        for (int i = 0; i < 32; i++)
                f->nonce[i] = (uint8_t) (rand() & 0xff);
        qb_quote_make(&f->key, pcrs, QUOTED, f->nonce, 32, clock, reset, f->restart, &q);
        vc_attest_input in = { .attest = q.attest, .attest_len = q.attest_len, .signature = q.sig, .signature_len = q.sig_len,
                               .pcrs = pcrs, .nonce = f->nonce, .nonce_len = 32, .eventlog_offset = from,
                               .eventlog = f->b.buf + from, .eventlog_len = upto - from };
        return vc_attest_verify(&f->st, f->ak, f->golden, f->cache, NULL, NULL, &in, res);
}

static vc_attest_result attest_ex(fix *f, size_t from, size_t upto, uint64_t clock, uint32_t reset, const vc_pcr_set *pcrs) {
        vc_attest_result res;
        assert_int_equal(attest_rc(f, from, upto, clock, reset, pcrs, &res), 0);
        return res;
}

static vc_attest_result attest(fix *f, size_t from, size_t upto) {
        vc_pcr_set pcrs;
        pcrs_of(f->b.buf, upto, &pcrs);
        f->clock += 60000;
        return attest_ex(f, from, upto, f->clock, f->reset, &pcrs);
}

static void expect(vc_attest_result *r, vc_trust t, vc_attest_failure fl) {
        if (r->trust != t || r->failure != fl)
                fail_msg("trust %d failure %d, expected %d/%d: %s", r->trust, r->failure, t, fl, r->reason);
        vc_attest_result_done(r);
}

/* Another device of the same fleet: attests the first `upto` bytes of the same log as a
 * whole, so its evaluation lands in the shared cache. */
static void other_device_attests(fix *f, size_t upto) {
        vc_device_state mine = f->st;
        f->st = (vc_device_state) { 0 };
        vc_attest_result r = attest(f, 0, upto);
        assert_true(r.trust == VC_TRUST_TRUSTED || r.failure == VC_ATTEST_GOLDEN);
        vc_attest_result_done(&r);
        vc_device_state_done(&f->st);
        f->st = mine;
}

static void test_boot_then_periodic(void **state) {
        fix *f = *state;
        vc_attest_result r = attest(f, 0, f->boot_len);
        assert_true(r.reboot);
        assert_false(r.cache_hit);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
        /* nothing new: the periodic attestation sends no log bytes, and the device's own
         * last evaluation answers */
        r = attest(f, f->boot_len, f->boot_len);
        assert_false(r.reboot);
        assert_true(r.cache_hit);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        /* a later, allowed event: only it is sent; a state nobody evaluated needs the whole
         * log, which the verifier does not keep: it asks again (the clock advanced) */
        const char *cmd = "grub_cmd: set late=1";
        lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        r = attest(f, f->boot_len, f->b.len);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_NEED_LOG);
        assert_int_equal(vc_device_state_log_offset(&f->st), 0);
        r = attest(f, 0, f->b.len);
        assert_false(r.reboot);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->b.len);
        /* a later event the golden set does not allow: once evaluated elsewhere in the
         * fleet, the cache answers the incremental attestation: UNTRUSTED, the state follows */
        size_t before = f->b.len;
        const char *evil = "grub_cmd: insmod evil";
        lb_event_measured(&f->b, 8, EV_IPL, evil, strlen(evil) + 1, evil + 10, strlen(evil) - 10);
        other_device_attests(f, f->b.len);
        r = attest(f, before, f->b.len);
        assert_true(r.cache_hit);
        assert_int_equal(r.evaluation.findings[0].event, 14);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_GOLDEN);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->b.len);
        /* and the same state again: the device's own evaluation, no log */
        r = attest(f, f->b.len, f->b.len);
        assert_true(r.cache_hit);
        assert_int_equal(r.evaluation.findings[0].event, 14);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_GOLDEN);
}

/* A log copied from the firmware's log area, padded with 0xFF: the same padding rule as
 * everywhere (the core parser). The verifier holds the log up to its last event, so the
 * padding sent again with the next part is read under the same rule: more padding is
 * padding, events after padding are an error at the padding's offset. */
static void test_padded_log(void **state) {
        fix *f = *state;
        uint8_t ff[4096];
        vc_pcr_set pcrs;
        memset(ff, 0xFF, sizeof(ff));
        lb_raw(&f->b, ff, sizeof(ff));
        vc_attest_result r = attest(f, 0, f->b.len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
        /* the same copied log again, from where the verifier asked: only padding */
        r = attest(f, f->boot_len, f->b.len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
        /* an event after the padding: not a log */
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        const char *cmd = "grub_cmd: set late=1";
        lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        f->clock += 60000;
        r = attest_ex(f, f->boot_len, f->b.len, f->clock, f->reset, &pcrs);
        assert_non_null(strstr(r.reason, "event log"));
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_MALFORMED);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
}

/* What the state holds does not grow with the log: no log bytes, no parsed events. */
static void test_state_is_small(void **state) {
        fix *f = *state;
        for (int i = 0; i < 200; i++) {
                const char *cmd = "grub_cmd: set late=1";
                lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        }
        assert_true(f->b.len > 16000);
        vc_attest_result r = attest(f, 0, f->b.len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->b.len);
        size_t heap = vc_device_state_heap_size(&f->st);
        if (heap > 1024)
                fail_msg("the state holds %zu heap bytes for a %zu-byte log", heap, f->b.len);
        /* periodic: the device's own evaluation, nothing parsed */
        r = attest(f, f->b.len, f->b.len);
        assert_true(r.cache_hit);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
}

/* The state after a boot and periodic attestations with new events (replayed on the
 * carried state, only the new bytes parsed) equals the state of one attestation of the
 * whole log. */
static void test_incremental_state_equals_whole(void **state) {
        fix *f = *state;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        size_t from = f->boot_len;
        for (int i = 0; i < 3; i++) {
                const char *cmd = "grub_cmd: set late=1"; /* the one the golden set allows */
                lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
                other_device_attests(f, f->b.len);
                r = attest(f, from, f->b.len);
                assert_true(r.cache_hit);
                expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
                r = attest(f, f->b.len, f->b.len); /* and nothing new */
                expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
                from = f->b.len;
        }
        vc_device_state inc = f->st;
        f->st = (vc_device_state) { 0 };
        r = attest(f, 0, f->b.len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        assert_int_equal(inc.log_len, f->st.log_len);
        assert_int_equal(inc.n_events, f->st.n_events);
        assert_int_equal(inc.head_len, f->st.head_len);
        assert_memory_equal(inc.head, f->st.head, inc.head_len);
        assert_memory_equal(inc.eval_key, f->st.eval_key, 32);
        vc_replay a, b;
        vc_replay_unpack(inc.replay, &a);
        vc_replay_unpack(f->st.replay, &b);
        assert_memory_equal(&a, &b, sizeof(a));
        assert_true(vc_replay_packed_size(inc.replay) < sizeof(vc_replay) / 2);
        vc_device_state_done(&inc);
}

/* Another golden set (a new version) has no evaluation of the device's state: the whole
 * log is asked for once, then the new set's evaluation is the device's. */
static void test_golden_change_needs_log(void **state) {
        fix *f = *state;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        f->golden->version++;
        r = attest(f, f->boot_len, f->boot_len);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_NEED_LOG);
        r = attest(f, 0, f->boot_len);
        assert_false(r.cache_hit);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        r = attest(f, f->boot_len, f->boot_len);
        assert_true(r.cache_hit);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        /* NEED_LOG is only for a valid quote: a forged one changes nothing */
        f->golden->version++;
        vc_pcr_set pcrs;
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        vc_pcr_set_bank(&pcrs, VC_ALG_SHA256)->values[0][0] ^= 1;
        r = attest_ex(f, f->boot_len, f->boot_len, f->clock + 10, f->reset, &pcrs);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_QUOTE);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
}

/* A state whose kept first event no longer parses (cannot happen; memory gone bad) must
 * not lock the device out: the attestation fails without a verdict and the next
 * challenge asks for the whole log. */
static void test_broken_state_recovers(void **state) {
        fix *f = *state;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        memset(f->st.head, 0x7f, 4); /* the Spec ID event's PCR index */
        const char *cmd = "grub_cmd: set late=1";
        lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        vc_pcr_set pcrs;
        pcrs_of(f->b.buf, f->b.len, &pcrs);
        assert_int_equal(attest_rc(f, f->boot_len, f->b.len, f->clock + 100, f->reset, &pcrs, &r), -EIO);
        assert_int_equal(vc_device_state_log_offset(&f->st), 0);
        r = attest(f, 0, f->b.len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
}

/* A log whose PCR values are those of the good boot but whose separator data does not
 * match its digest: when the golden set evaluates it (nothing cached for that state), the
 * data is checked against the digests and the mismatch is a finding. */
static void test_evaluated_log_is_digest_checked(void **state) {
        fix *f = *state;
        logbuilder bad;
        size_t n;
        lb_init_agile(&bad, banks, 2);
        lb_event(&bad, 0, EV_S_CRTM_VERSION, "v\0\0\0", 4);
        uint8_t *sb = lb_variable(vc_guid_efi_global_variable, "SecureBoot", "\1", 1, &n);
        lb_event(&bad, 7, EV_EFI_VARIABLE_DRIVER_CONFIG, sb, n);
        free(sb);
        for (uint32_t p = 0; p < 8; p++)
                if (p == 4)
                        lb_event_measured(&bad, p, EV_SEPARATOR, "\1\0\0\0", 4, "\0\0\0\0", 4);
                else
                        lb_event(&bad, p, EV_SEPARATOR, "\0\0\0\0", 4);
        lb_event_fill(&bad, 4, EV_EFI_BOOT_SERVICES_APPLICATION, 0x21, "app1", 4);
        const char *cl = "kernel_cmdline: /vmlinuz ro";
        lb_event_measured(&bad, 8, EV_IPL, cl, strlen(cl) + 1, cl + 16, strlen(cl) - 16);
        vc_pcr_set good, tampered;
        pcrs_of(f->b.buf, f->boot_len, &good);
        pcrs_of(bad.buf, bad.len, &tampered);
        assert_memory_equal(&good, &tampered, sizeof(good)); /* the same measured boot */
        lb_free(&f->b);
        f->b = bad;
        f->boot_len = bad.len;
        vc_attest_result r = attest(f, 0, f->boot_len);
        assert_false(r.cache_hit);
        bool digest_finding = false;
        for (size_t i = 0; i < r.evaluation.n_findings; i++)
                digest_finding |= r.evaluation.findings[i].event == 7 && strcmp(r.evaluation.findings[i].rule, "digest") == 0;
        assert_true(digest_finding);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_GOLDEN);
}

/* The quote covers sha256, the golden set's bank: the log is replayed and its data
 * checked in that bank (and in those the set's pcr_values read), not in sha1, which no
 * quote of the device attests. Garbage sha1 digests change nothing; the state holds the
 * sha256 replay alone. */
static void test_unquoted_bank_not_read(void **state) {
        fix *f = *state;
        vc_eventlog *log = NULL;
        assert_int_equal(vc_eventlog_parse(f->b.buf, f->boot_len, &log, NULL), 0);
        for (size_t i = 1; i < log->n_events; i++) {
                const vc_event_digest *d = vc_event_find_digest(&log->events[i], VC_ALG_SHA1);
                f->b.buf[d->bytes - log->buf] ^= 0x5a;
        }
        vc_eventlog_free(log);
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        vc_replay rp;
        vc_replay_unpack(f->st.replay, &rp);
        assert_int_equal(rp.pcrs.n_banks, 1);
        assert_non_null(vc_pcr_set_find(&rp.pcrs, VC_ALG_SHA256));
        assert_false(vc_replay_covers(&rp, VC_ALG_SHA1));
        r = attest(f, f->boot_len, f->boot_len);
        assert_true(r.cache_hit);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
}

/* A set whose pcr_values rule reads a bank other than its own (sha1) relies on that bank's
 * replay: its digests must then be those of the events' data (bound to the quoted sha256
 * bank through the data), or anyone could forge the value the rule compares. A sha1 digest
 * changed in that PCR, the rule's expected value set to what the forged log replays to: not
 * TRUSTED (finding "digest"). */
static void test_other_bank_rule_checks_that_bank(void **state) {
        fix *f = *state;
        vc_eventlog *log = NULL;
        vc_pcr_set forged;
        int b1 = vc_alg_index(VC_ALG_SHA1);
        assert_int_equal(vc_eventlog_parse(f->b.buf, f->boot_len, &log, NULL), 0);
        for (size_t i = 1; i < log->n_events; i++)
                if (log->events[i].pcr == 7) {
                        const vc_event_digest *d = vc_event_find_digest(&log->events[i], VC_ALG_SHA1);
                        f->b.buf[d->bytes - log->buf] ^= 0x5a;
                }
        vc_eventlog_free(log);
        pcrs_of(f->b.buf, f->boot_len, &forged);
        assert_int_equal(vc_dset_add(&f->golden->pcr_values[b1][7], vc_pcr_set_find(&forged, VC_ALG_SHA1)->values[7]), 0);
        vc_dset_finish(&f->golden->pcr_values[b1][7]);
        f->golden->pcr_values_mask[b1] |= 1u << 7;
        f->golden->has_pcr_values = true;
        f->golden->version++;
        vc_attest_result r = attest(f, 0, f->boot_len);
        assert_int_not_equal(r.trust, VC_TRUST_TRUSTED);
        bool digest = false;
        for (size_t i = 0; i < r.evaluation.n_findings; i++)
                digest |= strcmp(r.evaluation.findings[i].rule, "digest") == 0;
        assert_true(digest);
        vc_attest_result_done(&r);
}

/* A new golden set that reads another bank (sha1 pcr_values) than the state's replay of
 * this boot holds: that bank cannot be replayed from the part of the log sent, so a valid
 * quote gets the whole log asked for (its clock taken), and a forged one changes nothing. */
static void test_golden_bank_change_needs_log(void **state) {
        fix *f = *state;
        vc_pcr_set pcrs;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        int b1 = vc_alg_index(VC_ALG_SHA1);
        assert_int_equal(vc_dset_add(&f->golden->pcr_values[b1][8], vc_pcr_set_find(&pcrs, VC_ALG_SHA1)->values[8]), 0);
        vc_dset_finish(&f->golden->pcr_values[b1][8]);
        f->golden->pcr_values_mask[b1] |= 1u << 8;
        f->golden->has_pcr_values = true;
        f->golden->version++;
        /* forged: not the AK's signature */
        qb_quote q;
        uint64_t was = f->st.clock;
        qb_quote_make(&f->key, &pcrs, QUOTED, f->nonce, 32, f->clock + 10, f->reset, f->restart, &q);
        q.sig[q.sig_len - 1] ^= 1;
        vc_attest_input in = { .attest = q.attest, .attest_len = q.attest_len, .signature = q.sig, .signature_len = q.sig_len,
                               .pcrs = &pcrs, .nonce = f->nonce, .nonce_len = 32, .eventlog_offset = f->boot_len };
        assert_int_equal(vc_attest_verify(&f->st, f->ak, f->golden, f->cache, NULL, NULL, &in, &r), 0);
        assert_int_equal(r.quote.failed, VC_QUOTE_CHECK_SIGNATURE);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_QUOTE);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
        assert_int_equal(f->st.clock, was);
        /* valid: the whole log is needed */
        f->clock += 60000;
        r = attest_ex(f, f->boot_len, f->boot_len, f->clock, f->reset, &pcrs);
        if (!strstr(r.reason, "another golden set's banks"))
                fail_msg("%s", r.reason);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_NEED_LOG);
        assert_int_equal(vc_device_state_log_offset(&f->st), 0);
        assert_int_equal(f->st.clock, f->clock);
        r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        vc_replay rp;
        vc_replay_unpack(f->st.replay, &rp);
        assert_int_equal(rp.pcrs.n_banks, 2);
        r = attest(f, f->boot_len, f->boot_len);
        assert_true(r.cache_hit);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        /* and the sha1 value is read: another one is a finding */
        vc_dset_done(&f->golden->pcr_values[b1][8]);
        f->golden->pcr_values[b1][8].size = 20;
        assert_int_equal(vc_dset_add(&f->golden->pcr_values[b1][8], (const uint8_t *) "01234567890123456789"), 0);
        vc_dset_finish(&f->golden->pcr_values[b1][8]);
        f->golden->version++;
        vc_device_state_forget_log(&f->st);
        r = attest(f, 0, f->boot_len);
        assert_int_equal(r.evaluation.n_findings, 1);
        assert_string_equal(r.evaluation.findings[0].rule, "pcr_values");
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_GOLDEN);
}

static void test_replay_and_clock(void **state) {
        fix *f = *state;
        vc_pcr_set pcrs;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        /* the same clock again: a replayed quote */
        r = attest_ex(f, f->boot_len, f->boot_len, f->clock, f->reset, &pcrs);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_STALE);
        /* the clock going back */
        r = attest_ex(f, f->boot_len, f->boot_len, f->clock - 1, f->reset, &pcrs);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_STALE);
        /* resetCount going back */
        r = attest_ex(f, f->boot_len, f->boot_len, f->clock + 5, f->reset - 1, &pcrs);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_STALE);
        /* and a fresh one still works: nothing above changed the state */
        r = attest(f, f->boot_len, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
}

static void test_reboot_needs_whole_log(void **state) {
        fix *f = *state;
        vc_pcr_set pcrs;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        f->reset++;
        f->clock = 10; /* the clock restarts too */
        /* a quote the AK did not sign: refused, the state stays */
        qb_key other;
        qb_key_new(&other);
        qb_key k = f->key;
        f->key = other;
        r = attest_ex(f, f->boot_len, f->boot_len, f->clock, f->reset, &pcrs);
        f->key = k;
        qb_key_free(&other);
        assert_int_equal(r.quote.failed, VC_QUOTE_CHECK_SIGNATURE);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_QUOTE);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
        assert_int_equal(f->st.reset_count, f->reset - 1);
        /* from where the verifier's copy ends, as the agent was challenged: a genuine
         * quote of a new boot drops the old boot's log (no verdict), so the next challenge
         * asks for all of it */
        r = attest_ex(f, f->boot_len, f->boot_len, f->clock, f->reset, &pcrs);
        assert_true(r.reboot);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_NEW_BOOT);
        assert_int_equal(vc_device_state_log_offset(&f->st), 0);
        r = attest_ex(f, 0, f->boot_len, f->clock + 1, f->reset, &pcrs);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
}

/* The new boot's log is shorter than the old one (another command line, boot entry or
 * firmware): the agent sends from wherever it can; a genuine quote gets the whole log
 * asked for, not a refusal for ever. */
static void test_reboot_with_a_shorter_log(void **state) {
        fix *f = *state;
        vc_pcr_set pcrs;
        const char *cmd = "grub_cmd: set late=1";
        lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        assert_true(f->b.len > f->boot_len);
        vc_attest_result r = attest(f, 0, f->b.len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->b.len);
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        f->reset++;
        f->clock = 10;
        /* an empty tail from the end of its (shorter) log, as an older agent sends it */
        r = attest_ex(f, f->boot_len, f->boot_len, f->clock, f->reset, &pcrs);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_NEW_BOOT);
        r = attest_ex(f, 0, f->boot_len, f->clock + 1, f->reset, &pcrs);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
}

/* Once a genuine quote of a new boot was seen, a quote of the old boot is not fresh, even
 * one made before the reboot over a nonce still valid (held back by someone who had root
 * in the old boot): whether the new boot's quote led to a re-challenge or to UNTRUSTED. */
static void test_old_boot_quote_after_new_boot(void **state) {
        fix *f = *state;
        vc_pcr_set good, bad;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        pcrs_of(f->b.buf, f->boot_len, &good);
        uint64_t old_clock = f->clock + 500;
        /* the new boot, answering as challenged: re-challenged */
        r = attest_ex(f, f->boot_len, f->boot_len, 10, f->reset + 1, &good);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_NEW_BOOT);
        r = attest_ex(f, 0, f->boot_len, old_clock, f->reset, &good); /* with the whole log */
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_STALE);
        /* the new boot's whole log, whose PCRs are not what the log says: UNTRUSTED, and the
         * old boot's quote is still stale */
        bad = good;
        vc_pcr_set_bank(&bad, VC_ALG_SHA256)->values[4][0] ^= 1;
        r = attest_ex(f, 0, f->boot_len, 20, f->reset + 1, &bad);
        assert_int_equal(r.quote.failed, VC_QUOTE_CHECK_EVENTLOG);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_QUOTE);
        r = attest_ex(f, 0, f->boot_len, old_clock + 1, f->reset, &good);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_STALE);
        /* and the same within one boot: after a genuine mismatch at clock c, nothing older */
        r = attest_ex(f, 0, f->boot_len, 30, f->reset + 1, &good);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        r = attest_ex(f, f->boot_len, f->boot_len, 50, f->reset + 1, &bad);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_QUOTE);
        r = attest_ex(f, f->boot_len, f->boot_len, 40, f->reset + 1, &good);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_STALE);
        r = attest_ex(f, f->boot_len, f->boot_len, 60, f->reset + 1, &good);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
}

/* Attests with log bytes of its own at offset 0 (a new boot's whole log, as sent). */
static vc_attest_result attest_whole(fix *f, const uint8_t *log, size_t len, uint64_t clock, uint32_t reset,
                                     const vc_pcr_set *pcrs, const uint8_t *nonce) {
        vc_attest_result res;
        qb_quote q;
        for (int i = 0; i < 32; i++)
                f->nonce[i] = (uint8_t) (rand() & 0xff);
        qb_quote_make(&f->key, pcrs, QUOTED, nonce ? nonce : f->nonce, 32, clock, reset, f->restart, &q);
        vc_attest_input in = { .attest = q.attest, .attest_len = q.attest_len, .signature = q.sig, .signature_len = q.sig_len,
                               .pcrs = pcrs, .nonce = f->nonce, .nonce_len = 32, .eventlog = log, .eventlog_len = len };
        assert_int_equal(vc_attest_verify(&f->st, f->ak, f->golden, f->cache, NULL, NULL, &in, &res), 0);
        return res;
}

/* A new boot's genuine quote whose log is missing, garbage or does not replay: no
 * verdict but MALFORMED, and still the old boot is over (its quotes stale, its log gone).
 * A quote that is not the TPM's own over this challenge changes nothing. */
static void test_new_boot_with_a_bad_log(void **state) {
        fix *f = *state;
        vc_pcr_set good;
        uint8_t junk[64], other[32] = { 7 };
        memset(junk, 0xa5, sizeof(junk));
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        pcrs_of(f->b.buf, f->boot_len, &good);
        uint32_t old_reset = f->reset;
        uint64_t old_clock = f->clock + 500;
        /* no log, garbage, the log's first event cut short, and one that parses but does
         * not replay (PCR 0's locality set after PCR 0 was extended) */
        logbuilder nr;
        lb_init_agile(&nr, banks, 2);
        lb_event(&nr, 0, EV_S_CRTM_VERSION, "v", 1);
        lb_event_fill(&nr, 0, EV_NO_ACTION, 0, "StartupLocality\0\3", 17);
        const struct {
                const uint8_t *log;
                size_t len;
        } bad[] = { { NULL, 0 }, { junk, sizeof(junk) }, { f->b.buf, 40 }, { nr.buf, nr.len } };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                /* not over this challenge's nonce: nothing moves */
                r = attest_whole(f, bad[i].log, bad[i].len, 10 + i, old_reset + 1 + (uint32_t) i, &good, other);
                expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_MALFORMED);
                assert_int_equal(vc_device_state_log_offset(&f->st), f->boot_len);
                assert_int_equal(f->st.reset_count, old_reset + i);
                /* genuine: the old boot ends */
                r = attest_whole(f, bad[i].log, bad[i].len, 10 + i, old_reset + 1 + (uint32_t) i, &good, NULL);
                if (i == 3)
                        assert_non_null(strstr(r.reason, "event log replay:"));
                expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_MALFORMED);
                assert_int_equal(vc_device_state_log_offset(&f->st), 0);
                assert_int_equal(f->st.reset_count, old_reset + 1 + i);
                /* a quote of the old boot, held back, with the log it needs: stale */
                r = attest_ex(f, 0, f->boot_len, old_clock + i, old_reset + (uint32_t) i, &good);
                expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_STALE);
                /* the new boot's own whole log is trusted */
                r = attest_ex(f, 0, f->boot_len, 20 + i, old_reset + 1 + (uint32_t) i, &good);
                expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        }
        lb_free(&nr);
}

/* A quote may not select PCRs the challenge did not ask for: each would make another
 * evaluation key (and evaluation held) for every value the agent cares to put there. */
static void test_extra_pcrs_refused(void **state) {
        fix *f = *state;
        vc_pcr_set pcrs;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        vc_pcr_set_bank(&pcrs, VC_ALG_SHA256)->mask |= 1u << 16;
        qb_quote q;
        for (int i = 0; i < 32; i++)
                f->nonce[i] = (uint8_t) (i + 1);
        f->clock += 1000;
        qb_quote_make(&f->key, &pcrs, QUOTED | (1u << 16), f->nonce, 32, f->clock, f->reset, f->restart, &q);
        vc_attest_input in = { .attest = q.attest, .attest_len = q.attest_len, .signature = q.sig, .signature_len = q.sig_len,
                               .pcrs = &pcrs, .nonce = f->nonce, .nonce_len = 32, .eventlog_offset = f->boot_len };
        assert_int_equal(vc_attest_verify(&f->st, f->ak, f->golden, f->cache, NULL, NULL, &in, &r), 0);
        if (!strstr(r.reason, "quote selects sha256 PCRs (mask 0x010000) that the challenge did not ask for"))
                fail_msg("%s", r.reason);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_QUOTE);
        /* the quote was genuine: its clock counts; the boot goes on */
        assert_int_equal(f->st.clock, f->clock);
        r = attest(f, f->boot_len, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
}

/* A TPM Restart (resume from hibernation: restartCount up, PCRs reset, a new log, maybe
 * another boot) gets the whole log asked for and evaluated, not the old replay continued
 * (UNTRUSTED for ever). */
static void test_tpm_restart_needs_whole_log(void **state) {
        fix *f = *state;
        vc_pcr_set pcrs;
        size_t before = f->b.len;
        const char *cmd = "grub_cmd: set late=1";
        lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        vc_attest_result r = attest(f, 0, f->b.len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        /* resumed: the new log is the boot alone */
        f->restart++;
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        f->clock += 1000;
        r = attest_ex(f, before, before, f->clock, f->reset, &pcrs);
        assert_non_null(strstr(r.reason, "the TPM restarted"));
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_NEW_BOOT);
        assert_int_equal(vc_device_state_log_offset(&f->st), 0);
        f->clock += 1000;
        r = attest_ex(f, 0, f->boot_len, f->clock, f->reset, &pcrs);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        /* then periodic again, incremental */
        r = attest(f, f->boot_len, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        /* restartCount going back is stale */
        f->restart--;
        r = attest(f, f->boot_len, f->boot_len);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_STALE);
}

static void test_rejected_evidence_changes_nothing(void **state) {
        fix *f = *state;
        vc_attest_result r = attest(f, 0, f->boot_len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        /* events appended to the log that the TPM never saw: the quote disagrees */
        vc_pcr_set pcrs;
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        size_t before = f->b.len;
        const char *cmd = "grub_cmd: set late=1";
        lb_event_measured(&f->b, 8, EV_IPL, cmd, strlen(cmd) + 1, cmd + 10, strlen(cmd) - 10);
        f->clock += 1000;
        r = attest_ex(f, before, f->b.len, f->clock, f->reset, &pcrs);
        assert_int_equal(r.quote.failed, VC_QUOTE_CHECK_EVENTLOG);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_QUOTE);
        assert_int_equal(vc_device_state_log_offset(&f->st), before);
        /* garbage log bytes */
        uint8_t junk[7] = { 1, 2, 3, 4, 5, 6, 7 };
        qb_quote q;
        qb_quote_make(&f->key, &pcrs, QUOTED, f->nonce, 32, f->clock + 1, f->reset, 0, &q);
        vc_attest_input in = { .attest = q.attest, .attest_len = q.attest_len, .signature = q.sig, .signature_len = q.sig_len,
                               .pcrs = &pcrs, .nonce = f->nonce, .nonce_len = 32, .eventlog_offset = before,
                               .eventlog = junk, .eventlog_len = sizeof(junk) };
        assert_int_equal(vc_attest_verify(&f->st, f->ak, f->golden, f->cache, NULL, NULL, &in, &r), 0);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_MALFORMED);
        /* a quote over another nonce */
        uint8_t other[32] = { 9 };
        in.nonce = other;
        in.eventlog_len = 0;
        assert_int_equal(vc_attest_verify(&f->st, f->ak, f->golden, f->cache, NULL, NULL, &in, &r), 0);
        assert_int_equal(r.quote.failed, VC_QUOTE_CHECK_NONCE);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_QUOTE);
        /* the real continuation still verifies (its state evaluated elsewhere) */
        other_device_attests(f, f->b.len);
        r = attest(f, before, f->b.len);
        expect(&r, VC_TRUST_TRUSTED, VC_ATTEST_OK);
        /* a truncated quote */
        in.nonce = f->nonce;
        in.attest_len = 10;
        assert_int_equal(vc_attest_verify(&f->st, f->ak, f->golden, f->cache, NULL, NULL, &in, &r), 0);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_MALFORMED);
}

static void test_first_needs_a_log(void **state) {
        fix *f = *state;
        vc_pcr_set pcrs;
        pcrs_of(f->b.buf, f->boot_len, &pcrs);
        vc_attest_result r = attest_ex(f, 0, 0, f->clock, f->reset, &pcrs);
        expect(&r, VC_TRUST_UNTRUSTED, VC_ATTEST_MALFORMED);
        vc_attest_result zero = { 0 };
        assert_int_not_equal(zero.trust, VC_TRUST_TRUSTED);
}

#define T(n) cmocka_unit_test_setup_teardown(n, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_boot_then_periodic),
                T(test_padded_log), T(test_state_is_small), T(test_incremental_state_equals_whole), T(test_golden_change_needs_log), T(test_broken_state_recovers), T(test_evaluated_log_is_digest_checked), T(test_replay_and_clock), T(test_reboot_needs_whole_log),
                T(test_reboot_with_a_shorter_log), T(test_old_boot_quote_after_new_boot), T(test_tpm_restart_needs_whole_log), T(test_new_boot_with_a_bad_log), T(test_extra_pcrs_refused),
                T(test_rejected_evidence_changes_nothing), T(test_first_needs_a_log),
                T(test_unquoted_bank_not_read), T(test_golden_bank_change_needs_log),
                T(test_other_bank_rule_checks_that_bank),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
