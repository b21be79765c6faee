/* SPDX-License-Identifier: Apache-2.0 */
/* Event log parser: structure, caps and every rejection path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "eventlog.h"
#include "hash.h"
#include "logbuilder.h"

static const uint16_t two_banks[] = { VC_ALG_SHA1, VC_ALG_SHA256 };

static int parse(const logbuilder *b, vc_eventlog **log, vc_error *err) {
        return vc_eventlog_parse(b->buf, b->len, log, err);
}

static void test_agile_basic(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_error err;
        lb_init_agile(&b, two_banks, 2);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v\0", 2);
        lb_event(&b, 7, EV_SEPARATOR, "\0\0\0\0", 4);
        assert_int_equal(parse(&b, &log, &err), 0);
        assert_int_equal(log->format, VC_LOG_CRYPTO_AGILE);
        assert_int_equal(log->n_events, 3);
        assert_int_equal(log->spec.n_algs, 2);
        assert_int_equal(log->spec.algs[1].alg, VC_ALG_SHA256);
        assert_int_equal(log->spec.uintn_size, 2);
        assert_int_equal(log->events[1].pcr, 0);
        assert_int_equal(log->events[1].type, EV_S_CRTM_VERSION);
        assert_int_equal(log->events[1].n_digests, 2);
        assert_int_equal(log->events[2].pcr, 7);
        assert_int_equal(log->events[2].data_size, 4);
        assert_int_equal(log->events[2].offset, log->events[1].offset + log->events[1].size);
        assert_int_equal(vc_eventlog_digest_size(log, VC_ALG_SHA256), 32);
        assert_int_equal(vc_eventlog_digest_size(log, VC_ALG_SHA384), 0);
        assert_non_null(vc_event_find_digest(&log->events[1], VC_ALG_SHA1));
        assert_null(vc_event_find_digest(&log->events[1], VC_ALG_SHA384));
        vc_eventlog_free(log);
        lb_free(&b);
}

static void test_legacy(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        lb_init_legacy(&b);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "abc", 3);
        lb_event(&b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        assert_int_equal(parse(&b, &log, NULL), 0);
        assert_int_equal(log->format, VC_LOG_SHA1_LEGACY);
        assert_int_equal(log->n_events, 2);
        assert_int_equal(log->events[0].digests[0].alg, VC_ALG_SHA1);
        vc_eventlog_free(log);
        lb_free(&b);
}

static void expect_reject(const logbuilder *b, int code, const char *needle) {
        vc_eventlog *log = NULL;
        vc_error err;
        assert_int_equal(vc_eventlog_parse(b->buf, b->len, &log, &err), code);
        assert_null(log);
        assert_int_equal(err.code, code);
        if (!strstr(err.msg, needle))
                fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static void test_empty(void **state) {
        vc_eventlog *log = NULL;
        vc_error err;
        assert_int_equal(vc_eventlog_parse((const uint8_t *) "", 0, &log, &err), -EBADMSG);
        assert_string_equal(err.msg, "empty event log");
}

static void test_truncated_everywhere(void **state) {
        logbuilder b;
        lb_init_agile(&b, two_banks, 2);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "version", 7);
        lb_event(&b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        /* Every proper prefix either parses (event boundary) or is rejected as truncated,
         * with the offset of the problem inside the buffer. */
        size_t boundaries = 0;
        for (size_t n = 1; n < b.len; n++) {
                vc_eventlog *log = NULL;
                vc_error err;
                int r = vc_eventlog_parse(b.buf, n, &log, &err);
                if (r == 0) {
                        /* a cut inside an event whose bytes so far are all zero reads as
                         * zero padding after the last complete event */
                        if (log->padding == 0)
                                boundaries++;
                        else
                                assert_int_equal(log->padding_byte, 0);
                        vc_eventlog_free(log);
                        continue;
                }
                assert_int_equal(r, -EBADMSG);
                assert_true(err.offset <= n);
                assert_non_null(strstr(err.msg, "truncated"));
        }
        assert_int_equal(boundaries, 2); /* after the Spec ID event and after event 1 */
        lb_free(&b);
}

static void test_event_data_too_large(void **state) {
        logbuilder b;
        lb_init_agile(&b, two_banks, 2);
        uint8_t hdr[] = { 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0 };
        lb_raw(&b, hdr, sizeof(hdr));
        uint8_t d[32] = { 0 };
        lb_raw(&b, (uint8_t[]) { 0x04, 0x00 }, 2);
        lb_raw(&b, d, 20);
        lb_raw(&b, (uint8_t[]) { 0x0b, 0x00 }, 2);
        lb_raw(&b, d, 32);
        lb_u32(&b, VC_EVENTLOG_MAX_EVENT_DATA + 1);
        expect_reject(&b, -E2BIG, "exceeds the limit");
        lb_free(&b);
}

static void test_large_event_ok(void **state) {
        /* No 64 KiB limit (tpm2-tools' old uint16_t bug): a 200 KiB event parses. */
        logbuilder b;
        vc_eventlog *log = NULL;
        size_t n = 200 * 1024;
        uint8_t *big = calloc(1, n);
        lb_init_agile(&b, two_banks, 2);
        lb_event(&b, 1, EV_EFI_VARIABLE_BOOT, big, n);
        assert_int_equal(parse(&b, &log, NULL), 0);
        assert_int_equal(log->events[1].data_size, n);
        vc_eventlog_free(log);
        free(big);
        lb_free(&b);
}

static void test_digest_count(void **state) {
        logbuilder b;
        uint8_t d[32] = { 0 };
        /* zero digests */
        lb_init_agile(&b, two_banks, 2);
        lb_u32(&b, 0);
        lb_u32(&b, EV_IPL);
        lb_u32(&b, 0);
        lb_u32(&b, 0);
        expect_reject(&b, -EBADMSG, "digest count 0");
        lb_free(&b);
        /* more digests than algorithms */
        lb_init_agile(&b, two_banks, 2);
        lb_u32(&b, 0);
        lb_u32(&b, EV_IPL);
        lb_u32(&b, 3);
        expect_reject(&b, -EBADMSG, "digest count 3");
        lb_free(&b);
        /* a huge count is capped before anything is read */
        lb_init_agile(&b, two_banks, 2);
        lb_u32(&b, 0);
        lb_u32(&b, EV_IPL);
        lb_u32(&b, 0xFFFFFFFF);
        expect_reject(&b, -E2BIG, "digest count");
        lb_free(&b);
        /* an undeclared algorithm: its size is unknown, the log cannot be walked */
        lb_init_agile(&b, two_banks, 2);
        lb_u32(&b, 0);
        lb_u32(&b, EV_IPL);
        lb_u32(&b, 1);
        lb_raw(&b, (uint8_t[]) { 0x0c, 0x00 }, 2);
        lb_raw(&b, d, 32);
        expect_reject(&b, -ENOTSUP, "not declared");
        lb_free(&b);
        /* the same algorithm twice */
        lb_init_agile(&b, two_banks, 2);
        lb_u32(&b, 0);
        lb_u32(&b, EV_IPL);
        lb_u32(&b, 2);
        lb_raw(&b, (uint8_t[]) { 0x04, 0x00 }, 2);
        lb_raw(&b, d, 20);
        lb_raw(&b, (uint8_t[]) { 0x04, 0x00 }, 2);
        lb_raw(&b, d, 20);
        lb_u32(&b, 0);
        expect_reject(&b, -EBADMSG, "appears twice");
        lb_free(&b);
}

static void test_fewer_digests_ok(void **state) {
        /* An event may carry fewer banks than declared (tpm2-tools fixtures do). */
        logbuilder b;
        vc_eventlog *log = NULL;
        uint8_t d[20] = { 1 };
        lb_init_agile(&b, two_banks, 2);
        lb_u32(&b, 7);
        lb_u32(&b, EV_EFI_ACTION);
        lb_u32(&b, 1);
        lb_raw(&b, (uint8_t[]) { 0x04, 0x00 }, 2);
        lb_raw(&b, d, 20);
        lb_u32(&b, 1);
        lb_raw(&b, "x", 1);
        assert_int_equal(parse(&b, &log, NULL), 0);
        assert_int_equal(log->events[1].n_digests, 1);
        vc_eventlog_free(log);
        lb_free(&b);
}

static void test_pcr_range(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        lb_init_agile(&b, two_banks, 2);
        lb_event(&b, 24, EV_IPL, "x", 1);
        expect_reject(&b, -EBADMSG, "PCR index 24 out of range");
        lb_free(&b);
        /* 0xFFFFFFFF (Windows boot configuration entries) is accepted */
        lb_init_agile(&b, two_banks, 2);
        lb_event(&b, VC_PCR_NONE, EV_EVENT_TAG, "\0\0\0\0\0\0\0\0", 8);
        assert_int_equal(parse(&b, &log, NULL), 0);
        vc_eventlog_free(log);
        lb_free(&b);
        /* legacy first event too */
        lb_init_legacy(&b);
        lb_event(&b, 31, EV_IPL, "x", 1);
        expect_reject(&b, -EBADMSG, "PCR index 31");
        lb_free(&b);
}

/* Builds a header event with a hand-written Spec ID body. */
static void spec_log(logbuilder *b, const uint8_t *body, size_t n) {
        uint8_t zero[20] = { 0 };
        memset(b, 0, sizeof(*b));
        lb_u32(b, 0);
        lb_u32(b, EV_NO_ACTION);
        lb_raw(b, zero, 20);
        lb_u32(b, (uint32_t) (16 + n));
        lb_raw(b, "Spec ID Event03", 16);
        lb_raw(b, body, n);
}

static void test_spec_id_rejections(void **state) {
        logbuilder b;
        /* no algorithms */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0, 0 }, 13);
        expect_reject(&b, -EBADMSG, "declares no digest algorithm");
        lb_free(&b);
        /* too many algorithms */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 9, 0, 0, 0, 0 }, 13);
        expect_reject(&b, -E2BIG, "at most 8");
        lb_free(&b);
        /* SHA-256 declared with 20 bytes */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 0x0b, 0, 20, 0, 0 }, 17);
        expect_reject(&b, -EBADMSG, "sha256 with digest size 20, expected 32");
        lb_free(&b);
        /* unknown algorithm with size 0 */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 0x99, 0, 0, 0, 0 }, 17);
        expect_reject(&b, -EBADMSG, "digest size 0");
        lb_free(&b);
        /* the same algorithm twice */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 4, 0, 20, 0, 4, 0, 20, 0, 0 }, 21);
        expect_reject(&b, -EBADMSG, "twice");
        lb_free(&b);
        /* truncated in the algorithm list */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 4, 0, 20, 0 }, 16);
        expect_reject(&b, -EBADMSG, "truncated Spec ID algorithm 1");
        lb_free(&b);
        /* trailing bytes after vendor info */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 4, 0, 20, 0, 1, 0xaa, 0xbb }, 19);
        expect_reject(&b, -EBADMSG, "trailing bytes");
        lb_free(&b);
        /* too short to hold the header fields */
        spec_log(&b, (uint8_t[]) { 0, 0, 0 }, 3);
        expect_reject(&b, -EBADMSG, "truncated Spec ID event");
        lb_free(&b);
}

static void test_spec_id_vendor_info(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        /* vendor info inside the event */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 4, 0, 20, 0, 2, 0xde, 0xad }, 19);
        assert_int_equal(parse(&b, &log, NULL), 0);
        assert_int_equal(log->spec.vendor_info_size, 2);
        assert_int_equal(log->spec.vendor_info[1], 0xad);
        vc_eventlog_free(log);
        lb_free(&b);
        /* eventSize that stops at vendorInfoSize, vendor info following (tpm2-tools fixture) */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 4, 0, 20, 0, 2 }, 17);
        lb_raw(&b, (uint8_t[]) { 0xde, 0xad }, 2);
        assert_int_equal(parse(&b, &log, NULL), 0);
        assert_int_equal(log->spec.vendor_info[0], 0xde);
        assert_int_equal(log->n_events, 1);
        vc_eventlog_free(log);
        lb_free(&b);
        /* ... but not when the vendor info is missing */
        spec_log(&b, (uint8_t[]) { 0, 0, 0, 0, 0, 2, 0, 2, 1, 0, 0, 0, 4, 0, 20, 0, 4 }, 17);
        lb_raw(&b, (uint8_t[]) { 0xde }, 1);
        expect_reject(&b, -EBADMSG, "vendorInfoSize 4");
        lb_free(&b);
}

static void test_spec_id_wrong_pcr(void **state) {
        logbuilder b;
        lb_init_agile(&b, two_banks, 2);
        b.buf[0] = 1; /* Spec ID event in PCR 1 */
        expect_reject(&b, -EBADMSG, "Spec ID event in PCR 1");
        lb_free(&b);
}

static void test_unknown_algorithm_declared(void **state) {
        /* An algorithm the verifier does not know but whose size is declared is walked over. */
        logbuilder b;
        vc_eventlog *log = NULL;
        uint16_t algs[] = { VC_ALG_SHA256, 0x0027 }, sizes[] = { 32, 48 };
        lb_init_agile_sizes(&b, algs, sizes, 2);
        lb_event(&b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        assert_int_equal(parse(&b, &log, NULL), 0);
        assert_int_equal(log->events[1].digests[1].alg, 0x0027);
        assert_int_equal(log->events[1].digests[1].size, 48);
        vc_eventlog_free(log);
        lb_free(&b);
}

static void test_too_many_events(void **state) {
        logbuilder b;
        lb_init_legacy(&b);
        for (unsigned i = 0; i < VC_EVENTLOG_MAX_EVENTS + 1; i++)
                lb_event_fill(&b, 1, EV_IPL, 0, NULL, 0);
        expect_reject(&b, -E2BIG, "more than 65536 events");
        lb_free(&b);
}

static void test_append(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_error err;
        lb_init_agile(&b, two_banks, 2);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        size_t first = b.len;
        lb_event(&b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        lb_event(&b, 5, EV_EFI_ACTION, "hello", 5);
        assert_int_equal(vc_eventlog_parse(b.buf, first, &log, &err), 0);
        assert_int_equal(log->n_events, 2);
        /* a truncated append is rejected and leaves the log as it was */
        assert_int_equal(vc_eventlog_append(log, b.buf + first, b.len - first - 1, &err), -EBADMSG);
        assert_int_equal(log->n_events, 2);
        assert_int_equal(log->len, first);
        assert_int_equal(vc_eventlog_append(log, b.buf + first, b.len - first, &err), 0);
        assert_int_equal(log->n_events, 4);
        assert_memory_equal(log->events[3].data, "hello", 5);
        assert_memory_equal(log->events[1].data, "v", 1); /* pointers survive the realloc */
        assert_int_equal(vc_eventlog_append(log, NULL, 0, &err), 0);
        vc_eventlog_free(log);
        lb_free(&b);
}

/* A tail parsed after the log's first event only gives the whole parse's events, with
 * whole-log indices and offsets, and its errors point into the whole log. */
static void test_parse_tail(void **state) {
        logbuilder b;
        vc_eventlog *whole = NULL, *tail = NULL;
        vc_error err;
        lb_init_agile(&b, two_banks, 2);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "v", 1);
        lb_event(&b, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        lb_event(&b, 5, EV_EFI_ACTION, "hello", 5);
        lb_event(&b, 5, EV_EFI_ACTION, "world", 5);
        assert_int_equal(vc_eventlog_parse(b.buf, b.len, &whole, &err), 0);
        assert_int_equal(whole->n_events, 5);
        size_t head = whole->events[0].size, cut = whole->events[3].offset;
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head, cut, 3, b.buf + cut, b.len - cut, &tail, &err), 0);
        assert_int_equal(tail->n_events, 3);
        for (size_t i = 1; i < 3; i++) {
                const vc_event *t = &tail->events[i], *w = &whole->events[i + 2];
                assert_int_equal(t->index, w->index);
                assert_int_equal(t->offset, w->offset);
                assert_int_equal(t->size, w->size);
                assert_int_equal(t->type, w->type);
                assert_memory_equal(t->data, w->data, w->data_size);
                assert_memory_equal(t->digests[1].bytes, w->digests[1].bytes, w->digests[1].size);
        }
        vc_eventlog_free(tail);
        tail = NULL;
        /* nothing appended: just the head */
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head, b.len, 5, NULL, 0, &tail, &err), 0);
        assert_int_equal(tail->n_events, 1);
        vc_eventlog_free(tail);
        tail = NULL;
        /* a truncated tail: the error names the whole log's event and an offset in the tail */
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head, cut, 3, b.buf + cut, b.len - cut - 1, &tail, &err),
                         -EBADMSG);
        assert_null(tail);
        assert_int_equal(err.event, 4);
        assert_true(err.offset >= whole->events[4].offset && err.offset < b.len);
        /* a head that is not one whole first event, or a base that cannot follow it */
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head + whole->events[1].size, cut, 3, b.buf + cut,
                                                b.len - cut, &tail, &err),
                         -EINVAL);
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head, head - 1, 3, b.buf + cut, b.len - cut, &tail, &err),
                         -EINVAL);
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head, cut, 0, b.buf + cut, b.len - cut, &tail, &err), -EINVAL);
        /* a head that does not parse (its PCR index gone bad): the caller's bytes, -EINVAL */
        uint8_t *bad = malloc(head);
        memcpy(bad, b.buf, head);
        memset(bad, 0x7f, 4);
        assert_int_equal(vc_eventlog_parse_tail(bad, head, cut, 3, b.buf + cut, b.len - cut, &tail, &err), -EINVAL);
        free(bad);
        /* the caps count the whole log */
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head, VC_EVENTLOG_MAX_SIZE - 1, 3, b.buf + cut, b.len - cut,
                                                &tail, &err),
                         -E2BIG);
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head, cut, VC_EVENTLOG_MAX_EVENTS, b.buf + cut, b.len - cut,
                                                &tail, &err),
                         -E2BIG);
        assert_null(tail);
        vc_eventlog_free(whole);
        lb_free(&b);
}

/* ---- padding after the last event (a copy of the firmware's log area) ---- */

static void build_small(logbuilder *b) {
        lb_init_agile(b, two_banks, 2);
        lb_event(b, 0, EV_S_CRTM_VERSION, "v\0", 2);
        lb_event(b, 7, EV_SEPARATOR, "\0\0\0\0", 4);
}

static void pad(logbuilder *b, uint8_t byte, size_t n) {
        uint8_t *p = malloc(n);
        assert_non_null(p);
        memset(p, byte, n);
        lb_raw(b, p, n);
        free(p);
}

static void test_padding_accepted(void **state) {
        static const uint8_t bytes[] = { 0xFF, 0x00 };
        for (size_t k = 0; k < ELEMENTSOF(bytes); k++) {
                static const size_t sizes[] = { 1, 3, 12, 4096, 262144 - 123 };
                for (size_t j = 0; j < ELEMENTSOF(sizes); j++) {
                        logbuilder b;
                        vc_eventlog *log = NULL;
                        vc_error err;
                        build_small(&b);
                        size_t end = b.len;
                        pad(&b, bytes[k], sizes[j]);
                        assert_int_equal(parse(&b, &log, &err), 0);
                        assert_int_equal(log->n_events, 3);
                        assert_int_equal(log->padding, sizes[j]);
                        assert_int_equal(log->padding_byte, bytes[k]);
                        assert_int_equal(log->events[2].offset + log->events[2].size, end);
                        assert_int_equal(log->len, end + sizes[j]);
                        vc_eventlog_free(log);
                        lb_free(&b);
                }
        }
        /* a legacy log too */
        logbuilder b;
        vc_eventlog *log = NULL;
        lb_init_legacy(&b);
        lb_event(&b, 0, EV_S_CRTM_VERSION, "abc", 3);
        pad(&b, 0xFF, 100);
        assert_int_equal(parse(&b, &log, NULL), 0);
        assert_int_equal(log->n_events, 1);
        assert_int_equal(log->padding, 100);
        vc_eventlog_free(log);
        lb_free(&b);
}

/* Anything but one padding byte repeated is an error at the offset after the last event. */
static void test_padding_rejections(void **state) {
        static const struct {
                uint8_t tail[8];
                size_t n;
        } cases[] = {
                { { 0xFF, 0xFF, 0x00, 0x00 }, 4 },       /* mixed */
                { { 0x00, 0x00, 0xFF, 0xFF }, 4 },
                { { 0xFF, 0xFF, 0xFF, 0x01 }, 4 },       /* garbage at the end */
                { { 0x01, 0xFF, 0xFF, 0xFF }, 4 },       /* garbage first */
                { { 0xFE, 0xFE, 0xFE, 0xFE }, 4 },       /* not a padding byte */
                { { 0x00, 0x00, 0x00, 0x00, 0x07 }, 5 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                logbuilder b;
                vc_eventlog *log = NULL;
                vc_error err;
                build_small(&b);
                size_t end = b.len;
                lb_raw(&b, cases[i].tail, cases[i].n);
                assert_int_equal(parse(&b, &log, &err), -EBADMSG);
                assert_null(log);
                assert_int_equal(err.offset, end);
                assert_int_equal(err.event, 3);
                lb_free(&b);
        }
}

/* Appending reads a padding again with what follows: events after it are an error (as in
 * the whole log), more of the same padding is padding. */
static void test_padding_append(void **state) {
        logbuilder b, more;
        vc_eventlog *log = NULL;
        vc_error err;
        build_small(&b);
        size_t end = b.len;
        pad(&b, 0xFF, 64);
        assert_int_equal(parse(&b, &log, &err), 0);
        assert_int_equal(log->padding, 64);

        lb_init_agile(&more, two_banks, 2);
        size_t hdr = more.len;
        lb_event(&more, 4, EV_SEPARATOR, "\0\0\0\0", 4);
        int r = vc_eventlog_append(log, more.buf + hdr, more.len - hdr, &err);
        assert_true(r == -EBADMSG || r == -E2BIG); /* 0xFF.. read as an event: digest count 0xFFFFFFFF */
        assert_int_equal(err.offset, end + 8);
        assert_int_equal(log->n_events, 3); /* unchanged */
        assert_int_equal(log->padding, 64);
        assert_int_equal(log->len, end + 64);

        uint8_t ff[16];
        memset(ff, 0xFF, sizeof(ff));
        assert_int_equal(vc_eventlog_append(log, ff, sizeof(ff), &err), 0);
        assert_int_equal(log->padding, 80);
        assert_int_equal(log->n_events, 3);
        vc_eventlog_free(log);

        /* a log without padding, then an append ending in padding */
        assert_int_equal(vc_eventlog_parse(b.buf, end, &log, &err), 0);
        assert_int_equal(log->padding, 0);
        logbuilder tail = more;
        pad(&tail, 0x00, 33);
        assert_int_equal(vc_eventlog_append(log, tail.buf + hdr, tail.len - hdr, &err), 0);
        assert_int_equal(log->n_events, 4);
        assert_int_equal(log->padding, 33);
        assert_int_equal(log->padding_byte, 0);
        vc_eventlog_free(log);

        /* vouchd's path: a tail after the head */
        assert_int_equal(vc_eventlog_parse(b.buf, end, &log, &err), 0);
        size_t head_len = log->events[0].size;
        vc_eventlog *t = NULL;
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head_len, end, 3, tail.buf + hdr, tail.len - hdr, &t, &err), 0);
        assert_int_equal(t->n_events, 2);
        assert_int_equal(t->padding, 33);
        vc_eventlog_free(t);
        tail.buf[tail.len - 1] = 0x01;
        assert_int_equal(vc_eventlog_parse_tail(b.buf, head_len, end, 3, tail.buf + hdr, tail.len - hdr, &t, &err),
                         -EBADMSG);
        assert_int_equal(err.offset, end + (tail.len - hdr) - 33 + 8); /* the zeros read as an event: count 0 */
        vc_eventlog_free(log);
        lb_free(&tail);
        lb_free(&b);
}

/* ---- CCEL ---- */

static const uint16_t sha384_only[] = { VC_ALG_SHA384 };

/* A CCEL log as TDX firmware writes it: Spec ID at register 1, SHA-384, RTMR events. */
static void build_ccel(logbuilder *b, uint32_t spec_index) {
        lb_init_agile(b, sha384_only, 1);
        b->buf[0] = (uint8_t) spec_index;
        lb_event(b, 1, EV_EFI_HANDOFF_TABLES2, "TdxTable", 8);
        lb_event(b, 1, EV_SEPARATOR, "\0\0\0\0", 4);
        lb_event(b, 2, EV_EFI_ACTION, "Calling EFI Application from Boot Option", 40);
        lb_event(b, 3, EV_IPL, "grub_cmd: x", 12);
        lb_event(b, 4, EV_EVENT_TAG, "\1\0\0\0\0\0\0\0", 8);
}

static int parse_as(const logbuilder *b, vc_log_read how, vc_eventlog **log, vc_error *err) {
        return vc_eventlog_parse_as(b->buf, b->len, how, log, err);
}

static void test_ccel(void **state) {
        logbuilder b;
        vc_eventlog *log = NULL;
        vc_error err;
        build_ccel(&b, 1);
        /* read as a TPM log: refused */
        expect_reject(&b, -EBADMSG, "Spec ID event in PCR 1");
        assert_int_equal(parse_as(&b, VC_READ_TPM, &log, &err), -EBADMSG);
        assert_null(log);
        static const vc_log_read hows[] = { VC_READ_CCEL, VC_READ_AUTO };
        for (size_t i = 0; i < ELEMENTSOF(hows); i++) {
                assert_int_equal(parse_as(&b, hows[i], &log, &err), 0);
                assert_int_equal(log->kind, VC_LOG_CCEL);
                assert_int_equal(log->format, VC_LOG_CRYPTO_AGILE);
                assert_int_equal(log->n_events, 6);
                assert_int_equal(log->events[0].pcr, 1);
                assert_int_equal(log->events[5].pcr, 4);
                assert_string_equal(vc_log_kind_name(log->kind), "ccel");
                vc_eventlog_free(log);
        }
        /* padded like the real log area */
        pad(&b, 0xFF, 4000);
        assert_int_equal(parse_as(&b, VC_READ_AUTO, &log, &err), 0);
        assert_int_equal(log->padding, 4000);
        vc_eventlog_free(log);
        lb_free(&b);

        /* early TDVF: Spec ID at register 0; auto reads that as a TPM log, --format ccel as CCEL */
        build_ccel(&b, 0);
        assert_int_equal(parse_as(&b, VC_READ_AUTO, &log, &err), 0);
        assert_int_equal(log->kind, VC_LOG_TPM);
        vc_eventlog_free(log);
        assert_int_equal(parse_as(&b, VC_READ_CCEL, &log, &err), 0);
        assert_int_equal(log->kind, VC_LOG_CCEL);
        vc_eventlog_free(log);
        assert_int_equal(parse_as(&b, 7, &log, &err), -EINVAL);
        lb_free(&b);
}

static void expect_ccel_reject(const logbuilder *b, const char *needle) {
        vc_eventlog *log = NULL;
        vc_error err;
        assert_int_equal(vc_eventlog_parse_as(b->buf, b->len, VC_READ_CCEL, &log, &err), -EBADMSG);
        assert_null(log);
        if (!strstr(err.msg, needle))
                fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static void test_ccel_rejections(void **state) {
        logbuilder b;
        /* register 5 and beyond do not exist; nor does 0xFFFFFFFF */
        static const uint32_t bad[] = { 5, 23, VC_PCR_NONE };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                build_ccel(&b, 1);
                lb_event(&b, bad[i], EV_EFI_ACTION, "x", 1);
                expect_ccel_reject(&b, "register index");
                lb_free(&b);
        }
        /* Spec ID at register 2 */
        build_ccel(&b, 2);
        expect_ccel_reject(&b, "CCEL Spec ID event at register 2");
        lb_free(&b);
        /* banks other than SHA-384 or SM3 alone */
        lb_init_agile(&b, two_banks, 2);
        b.buf[0] = 1;
        expect_ccel_reject(&b, "expected SHA-384 or SM3 alone");
        lb_free(&b);
        static const uint16_t sha256_only[] = { VC_ALG_SHA256 };
        lb_init_agile(&b, sha256_only, 1);
        b.buf[0] = 1;
        expect_ccel_reject(&b, "expected SHA-384 or SM3 alone");
        lb_free(&b);
        static const uint16_t sm3_only[] = { VC_ALG_SM3_256 };
        vc_eventlog *log = NULL;
        lb_init_agile(&b, sm3_only, 1);
        b.buf[0] = 1;
        lb_event(&b, 1, EV_SEPARATOR, "\0\0\0\0", 4);
        assert_int_equal(parse_as(&b, VC_READ_AUTO, &log, NULL), 0); /* Hygon CSV: SM3 */
        assert_int_equal(log->kind, VC_LOG_CCEL);
        vc_eventlog_free(log);
        lb_free(&b);
        /* no Spec ID event: not a CCEL log */
        lb_init_legacy(&b);
        lb_event(&b, 1, EV_S_CRTM_VERSION, "abc", 3);
        expect_ccel_reject(&b, "a CCEL log starts with a Spec ID event");
        lb_free(&b);
}

static void test_type_names(void **state) {
        assert_string_equal(vc_event_type_name(EV_EFI_VARIABLE_AUTHORITY), "EV_EFI_VARIABLE_AUTHORITY");
        assert_string_equal(vc_event_type_name(EV_NO_ACTION), "EV_NO_ACTION");
        assert_string_equal(vc_event_type_name(0x12345678), "EV_UNKNOWN");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_agile_basic),
                cmocka_unit_test(test_legacy),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_parse_tail),
                cmocka_unit_test(test_truncated_everywhere),
                cmocka_unit_test(test_event_data_too_large),
                cmocka_unit_test(test_large_event_ok),
                cmocka_unit_test(test_digest_count),
                cmocka_unit_test(test_fewer_digests_ok),
                cmocka_unit_test(test_pcr_range),
                cmocka_unit_test(test_spec_id_rejections),
                cmocka_unit_test(test_spec_id_vendor_info),
                cmocka_unit_test(test_spec_id_wrong_pcr),
                cmocka_unit_test(test_unknown_algorithm_declared),
                cmocka_unit_test(test_too_many_events),
                cmocka_unit_test(test_append),
                cmocka_unit_test(test_type_names),
                cmocka_unit_test(test_padding_accepted),
                cmocka_unit_test(test_padding_rejections),
                cmocka_unit_test(test_padding_append),
                cmocka_unit_test(test_ccel),
                cmocka_unit_test(test_ccel_rejections),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
