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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_whole_and_split),
                cmocka_unit_test(test_back_to_back),
                cmocka_unit_test(test_cap_before_allocation),
                cmocka_unit_test(test_protobuf_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
