/* SPDX-License-Identifier: Apache-2.0 */
/* Framing of the agent channel, and protobuf messages through it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frame.h"
#include "vouch.pb-c.h"
#include "wire.h"

static size_t frame(const void *payload, size_t len, uint8_t *out) {
        assert_int_equal(vf_header(len, VF_DEFAULT_MAX_FRAME, out), 0);
        memcpy(out + 4, payload, len);
        return len + 4;
}

static void test_whole_and_split(void **state) {
        uint8_t wire[64], *f;
        size_t n = frame("hello", 5, wire), flen;
        vf_decoder d;
        /* all at once */
        vf_decoder_init(&d, 1024);
        assert_int_equal(vf_decoder_feed(&d, wire, n, &f, &flen), (long) n);
        assert_non_null(f);
        assert_int_equal(flen, 5);
        assert_memory_equal(f, "hello", 5);
        free(f);
        assert_true(vf_decoder_idle(&d));
        /* one byte at a time */
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(vf_decoder_feed(&d, wire + i, 1, &f, &flen), 1);
                if (i + 1 < n) {
                        assert_null(f);
                        assert_false(vf_decoder_idle(&d));
                }
        }
        assert_non_null(f);
        assert_memory_equal(f, "hello", 5);
        free(f);
        vf_decoder_done(&d);
}

static void test_back_to_back(void **state) {
        uint8_t wire[64], *f;
        size_t n = frame("ab", 2, wire), flen;
        n += frame("", 0, wire + n);
        n += frame("cde", 3, wire + n);
        vf_decoder d;
        vf_decoder_init(&d, 16);
        const char *want[] = { "ab", "", "cde" };
        size_t off = 0, got = 0;
        while (off < n) {
                long r = vf_decoder_feed(&d, wire + off, n - off, &f, &flen);
                assert_true(r > 0);
                off += (size_t) r;
                if (f) {
                        assert_int_equal(flen, strlen(want[got]));
                        assert_memory_equal(f, want[got], flen);
                        free(f);
                        got++;
                }
        }
        assert_int_equal(got, 3);
        vf_decoder_done(&d);
}

static void test_cap_before_allocation(void **state) {
        uint8_t hdr[4] = { 0xff, 0xff, 0xff, 0xff }, *f;
        size_t flen;
        vf_decoder d;
        vf_decoder_init(&d, 1024);
        assert_int_equal(vf_decoder_feed(&d, hdr, 3, &f, &flen), 3);
        assert_int_equal(vf_decoder_feed(&d, hdr + 3, 1, &f, &flen), -E2BIG);
        assert_null(d.payload); /* nothing was allocated for the announced 4 GiB */
        vf_decoder_done(&d);
        uint8_t ok[4] = { 0, 0, 4, 0 }; /* exactly the cap */
        vf_decoder_init(&d, 1024);
        assert_int_equal(vf_decoder_feed(&d, ok, 4, &f, &flen), 4);
        assert_null(f);
        vf_decoder_done(&d);
        assert_int_equal(vf_header(1025, 1024, hdr), -E2BIG);
}

static void test_protobuf_roundtrip(void **state) {
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        Vouch__V1__Hello h = VOUCH__V1__HELLO__INIT;
        h.protocol_version = VOUCH__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1;
        h.agent_version = "test";
        h.ek_public.data = (uint8_t *) "ek";
        h.ek_public.len = 2;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_HELLO;
        m.hello = &h;
        size_t len = vouch__v1__agent_message__get_packed_size(&m);
        uint8_t *wire = malloc(len + 4), *f;
        size_t flen;
        assert_int_equal(vf_header(len, VF_DEFAULT_MAX_FRAME, wire), 0);
        vouch__v1__agent_message__pack(&m, wire + 4);
        vf_decoder d;
        vf_decoder_init(&d, VF_DEFAULT_MAX_FRAME);
        assert_int_equal(vf_decoder_feed(&d, wire, len + 4, &f, &flen), (long) (len + 4));
        Vouch__V1__AgentMessage *back = vouch__v1__agent_message__unpack(NULL, flen, f);
        assert_non_null(back);
        assert_int_equal(back->msg_case, VOUCH__V1__AGENT_MESSAGE__MSG_HELLO);
        assert_int_equal(back->hello->protocol_version, 1);
        assert_string_equal(back->hello->agent_version, "test");
        vouch__v1__agent_message__free_unpacked(back, NULL);
        free(f);
        /* garbage is refused by the decoder, not crashed on */
        uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01 };
        assert_null(vouch__v1__agent_message__unpack(NULL, sizeof(junk), junk));
        vf_decoder_done(&d);
        free(wire);
}

static void test_frame_messages(void **state) {
        Vouch__V1__Error e = VOUCH__V1__ERROR__INIT;
        e.code = 7;
        e.message = (char *) "no";
        Vouch__V1__AgentMessage am = VOUCH__V1__AGENT_MESSAGE__INIT;
        am.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_ERROR;
        am.error = &e;
        size_t n = vouch__v1__agent_message__get_packed_size(&am), len = 0;
        uint8_t *want = malloc(n + VF_HEADER_SIZE), *got = NULL;
        assert_non_null(want);
        assert_int_equal(vf_header(n, VF_DEFAULT_MAX_FRAME, want), 0);
        vouch__v1__agent_message__pack(&am, want + VF_HEADER_SIZE);
        assert_int_equal(vw_frame_agent_message(&am, VF_DEFAULT_MAX_FRAME, &got, &len), 0);
        assert_int_equal(len, n + VF_HEADER_SIZE);
        assert_memory_equal(got, want, len);
        free(got);
        free(want);
        /* over the cap: nothing is handed out */
        got = NULL;
        len = 0;
        assert_int_equal(vw_frame_agent_message(&am, n - 1, &got, &len), -E2BIG);
        assert_null(got);
        assert_int_equal(len, 0);

        Vouch__V1__VerifierMessage vm = VOUCH__V1__VERIFIER_MESSAGE__INIT;
        vm.msg_case = VOUCH__V1__VERIFIER_MESSAGE__MSG_ERROR;
        vm.error = &e;
        n = vouch__v1__verifier_message__get_packed_size(&vm);
        want = malloc(n + VF_HEADER_SIZE);
        assert_non_null(want);
        assert_int_equal(vf_header(n, VF_DEFAULT_MAX_FRAME, want), 0);
        vouch__v1__verifier_message__pack(&vm, want + VF_HEADER_SIZE);
        assert_int_equal(vw_frame_verifier_message(&vm, n, &got, &len), 0);
        assert_int_equal(len, n + VF_HEADER_SIZE);
        assert_memory_equal(got, want, len);
        free(got);
        free(want);
        assert_int_equal(vw_frame_verifier_message(&vm, n - 1, &got, &len), -E2BIG);
}

/* A serialized SignedVerdict whose verdict field holds n bytes. */
static uint8_t *signed_verdict(size_t n, size_t *ret_len) {
        Vouch__V1__SignedVerdict sv = VOUCH__V1__SIGNED_VERDICT__INIT;
        uint8_t *verdict = malloc(n ? n : 1), sig[72];
        assert_non_null(verdict);
        for (size_t i = 0; i < n; i++)
                verdict[i] = (uint8_t) (i * 7 + 1);
        memset(sig, 0x5a, sizeof(sig));
        sv.verdict.data = verdict;
        sv.verdict.len = n;
        sv.signature.data = sig;
        sv.signature.len = sizeof(sig);
        sv.key_id = (char *) "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        size_t len = vouch__v1__signed_verdict__get_packed_size(&sv);
        uint8_t *b = malloc(len);
        assert_non_null(b);
        assert_int_equal(vouch__v1__signed_verdict__pack(&sv, b), len);
        free(verdict);
        *ret_len = len;
        return b;
}

/* The hand-made wrapper of vw_frame_verdict_notice against protobuf-c packing the decoded
 * record into the same messages, and unpacking what was made. */
static void check_verdict_notice(const uint8_t *record, size_t len) {
        Vouch__V1__SignedVerdict *sv = NULL;
        if (len) {
                sv = vouch__v1__signed_verdict__unpack(NULL, len, record);
                assert_non_null(sv);
        }
        Vouch__V1__SignedVerdict empty = VOUCH__V1__SIGNED_VERDICT__INIT;
        Vouch__V1__VerdictNotice vn = VOUCH__V1__VERDICT_NOTICE__INIT;
        vn.verdict = sv ? sv : &empty;
        Vouch__V1__VerifierMessage vm = VOUCH__V1__VERIFIER_MESSAGE__INIT;
        vm.msg_case = VOUCH__V1__VERIFIER_MESSAGE__MSG_VERDICT;
        vm.verdict = &vn;
        uint8_t *want = NULL, *got = NULL;
        size_t want_len = 0, got_len = 0;
        assert_int_equal(vw_frame_verifier_message(&vm, VF_DEFAULT_MAX_FRAME, &want, &want_len), 0);
        assert_int_equal(vw_frame_verdict_notice(record, len, VF_DEFAULT_MAX_FRAME, &got, &got_len), 0);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, got_len);

        Vouch__V1__VerifierMessage *back =
                vouch__v1__verifier_message__unpack(NULL, got_len - VF_HEADER_SIZE, got + VF_HEADER_SIZE);
        assert_non_null(back);
        assert_int_equal(back->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_VERDICT);
        assert_non_null(back->verdict->verdict);
        size_t n = vouch__v1__signed_verdict__get_packed_size(back->verdict->verdict);
        assert_int_equal(n, len);
        uint8_t *again = malloc(n ? n : 1);
        assert_non_null(again);
        vouch__v1__signed_verdict__pack(back->verdict->verdict, again);
        assert_memory_equal(again, record, n);
        free(again);
        vouch__v1__verifier_message__free_unpacked(back, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        free(want);
        free(got);
}

static void test_verdict_notice_as_protobuf_c(void **state) {
        /* every length the varints of the two wrappers change size at: 1 -> 2 bytes at 128,
         * 2 -> 3 at 16384, 3 -> 4 at 2^21 */
        static const size_t ranges[][2] = { { 0, 400 }, { 16200, 16400 }, { 2097000, 2097200 } };
        check_verdict_notice(NULL, 0); /* an empty SignedVerdict packs to no bytes */
        for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++)
                for (size_t n = ranges[r][0]; n <= ranges[r][1]; n += r == 2 ? 7 : 1) {
                        size_t len;
                        uint8_t *record = signed_verdict(n, &len);
                        check_verdict_notice(record, len);
                        free(record);
                }
}

/* With device certificates: the same bytes protobuf-c packs, for no certificate, one, and
 * several of lengths around the varint steps (one empty), and the certificates back. */
static void test_verdict_notice_certs_as_protobuf_c(void **state) {
        static const size_t sizes[][3] = { { 0, 0, 0 }, { 1, 0, 0 }, { 127, 128, 0 }, { 0, 16383, 16384 },
                                           { 700, 900, 1200 } };
        static const size_t counts[] = { 0, 1, 2, 3, 3 };
        size_t len;
        uint8_t *record = signed_verdict(300, &len);
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, record);
        assert_non_null(sv);
        for (size_t t = 0; t < sizeof(counts) / sizeof(counts[0]); t++) {
                uint8_t *certs[3] = { 0 };
                ProtobufCBinaryData bin[3];
                size_t n = counts[t];
                for (size_t i = 0; i < n; i++) {
                        certs[i] = malloc(sizes[t][i] ? sizes[t][i] : 1);
                        assert_non_null(certs[i]);
                        for (size_t k = 0; k < sizes[t][i]; k++)
                                certs[i][k] = (uint8_t) (k * 7 + i);
                        bin[i] = (ProtobufCBinaryData) { .len = sizes[t][i], .data = certs[i] };
                }
                Vouch__V1__VerdictNotice vn = VOUCH__V1__VERDICT_NOTICE__INIT;
                vn.verdict = sv;
                vn.device_certificates = bin;
                vn.n_device_certificates = n;
                Vouch__V1__VerifierMessage vm = VOUCH__V1__VERIFIER_MESSAGE__INIT;
                vm.msg_case = VOUCH__V1__VERIFIER_MESSAGE__MSG_VERDICT;
                vm.verdict = &vn;
                uint8_t *want = NULL, *got = NULL;
                size_t want_len = 0, got_len = 0;
                assert_int_equal(vw_frame_verifier_message(&vm, VF_DEFAULT_MAX_FRAME, &want, &want_len), 0);
                assert_int_equal(vw_frame_verdict_notice_certs(record, len, (const uint8_t *const *) certs, sizes[t], n,
                                                               VF_DEFAULT_MAX_FRAME, &got, &got_len),
                                 0);
                assert_int_equal(got_len, want_len);
                assert_memory_equal(got, want, got_len);
                Vouch__V1__VerifierMessage *back =
                        vouch__v1__verifier_message__unpack(NULL, got_len - VF_HEADER_SIZE, got + VF_HEADER_SIZE);
                assert_non_null(back);
                assert_int_equal(back->verdict->n_device_certificates, n);
                for (size_t i = 0; i < n; i++) {
                        assert_int_equal(back->verdict->device_certificates[i].len, sizes[t][i]);
                        if (sizes[t][i])
                                assert_memory_equal(back->verdict->device_certificates[i].data, certs[i], sizes[t][i]);
                }
                vouch__v1__verifier_message__free_unpacked(back, NULL);
                for (size_t i = 0; i < n; i++)
                        free(certs[i]);
                free(want);
                free(got);
        }
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        free(record);
}

static void test_verdict_notice_certs_caps(void **state) {
        static const uint8_t cert[100] = { 0x30 };
        const uint8_t *certs[VW_MAX_DEVICE_CERTIFICATES + 1];
        size_t lens[VW_MAX_DEVICE_CERTIFICATES + 1], len;
        uint8_t *record = signed_verdict(100, &len), *got = NULL;
        size_t got_len = 0;
        for (size_t i = 0; i <= VW_MAX_DEVICE_CERTIFICATES; i++) {
                certs[i] = cert;
                lens[i] = sizeof(cert);
        }
        /* one certificate too many */
        assert_int_equal(vw_frame_verdict_notice_certs(record, len, certs, lens, VW_MAX_DEVICE_CERTIFICATES + 1,
                                                       VF_DEFAULT_MAX_FRAME, &got, &got_len),
                         -E2BIG);
        /* 242 + 6 bytes for the verdict, 100 + 2 per certificate: exactly at the cap, and one over */
        size_t wrapped = len + 6 + 2 * (sizeof(cert) + 2);
        assert_int_equal(vw_frame_verdict_notice_certs(record, len, certs, lens, 2, wrapped - 1, &got, &got_len), -E2BIG);
        assert_null(got);
        /* a certificate longer than the frame is refused before any sum */
        size_t huge[1] = { SIZE_MAX };
        assert_int_equal(vw_frame_verdict_notice_certs(record, len, certs, huge, 1, VF_DEFAULT_MAX_FRAME, &got, &got_len),
                         -E2BIG);
        assert_null(got);
        assert_int_equal(vw_frame_verdict_notice_certs(record, len, certs, lens, 2, wrapped, &got, &got_len), 0);
        assert_int_equal(got_len, wrapped + VF_HEADER_SIZE);
        free(got);
        free(record);
}

static void test_verdict_notice_cap(void **state) {
        size_t len;
        uint8_t *record = signed_verdict(100, &len), *got = NULL;
        size_t got_len = 0;
        /* a record of 242 bytes: tag and a 2-byte length around it, twice */
        assert_int_equal(len, 242);
        size_t wrapped = len + 6;
        assert_int_equal(vw_frame_verdict_notice(record, len, wrapped - 1, &got, &got_len), -E2BIG);
        assert_int_equal(vw_frame_verdict_notice(record, len, len - 1, &got, &got_len), -E2BIG);
        assert_null(got);
        assert_int_equal(got_len, 0);
        assert_int_equal(vw_frame_verdict_notice(record, len, wrapped, &got, &got_len), 0);
        assert_int_equal(got_len, wrapped + VF_HEADER_SIZE);
        free(got);
        free(record);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_whole_and_split),
                cmocka_unit_test(test_back_to_back),
                cmocka_unit_test(test_cap_before_allocation),
                cmocka_unit_test(test_protobuf_roundtrip),
                cmocka_unit_test(test_frame_messages),
                cmocka_unit_test(test_verdict_notice_as_protobuf_c),
                cmocka_unit_test(test_verdict_notice_cap),
                cmocka_unit_test(test_verdict_notice_certs_as_protobuf_c),
                cmocka_unit_test(test_verdict_notice_certs_caps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
