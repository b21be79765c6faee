/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's side of the protocol (agent/protocol.c), shared by vouch-agent and
 * vouch-loadgen. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <tss2/tss2_mu.h>

#include "frame.h"
#include "protocol.h"

static void challenge_init(Vouch__V1__QuoteChallenge *ch, Vouch__V1__PcrSelection *sels, Vouch__V1__PcrSelection **selp,
                           size_t n, size_t nonce_len) {
        static uint8_t nonce[VA_MAX_NONCE + 1];
        vouch__v1__quote_challenge__init(ch);
        ch->nonce.data = nonce;
        ch->nonce.len = nonce_len;
        for (size_t i = 0; i < n; i++) {
                vouch__v1__pcr_selection__init(&sels[i]);
                selp[i] = &sels[i];
        }
        ch->selection = selp;
        ch->n_selection = n;
}

static void test_selection(void **state) {
        Vouch__V1__QuoteChallenge ch;
        Vouch__V1__PcrSelection sels[2], *selp[2];
        uint32_t sha256_pcrs[] = { 0, 7, 23, 24, 100, 7 }, sha1_pcrs[] = { 10 };
        TPML_PCR_SELECTION sel;
        challenge_init(&ch, sels, selp, 2, 32);
        sels[0].hash_alg = TPM2_ALG_SHA256;
        sels[0].pcrs = sha256_pcrs;
        sels[0].n_pcrs = 6;
        sels[1].hash_alg = TPM2_ALG_SHA1;
        sels[1].pcrs = sha1_pcrs;
        sels[1].n_pcrs = 1;
        assert_int_equal(va_challenge_selection(&ch, &sel), 0);
        assert_int_equal(sel.count, 2);
        assert_int_equal(sel.pcrSelections[0].hash, TPM2_ALG_SHA256);
        assert_int_equal(sel.pcrSelections[0].sizeofSelect, 3);
        /* PCRs 0, 7 and 23; 24 and 100 are not PC Client PCRs and are left out */
        assert_int_equal(sel.pcrSelections[0].pcrSelect[0], 0x81);
        assert_int_equal(sel.pcrSelections[0].pcrSelect[1], 0x00);
        assert_int_equal(sel.pcrSelections[0].pcrSelect[2], 0x80);
        assert_int_equal(sel.pcrSelections[0].pcrSelect[3], 0x00);
        assert_int_equal(sel.pcrSelections[1].hash, TPM2_ALG_SHA1);
        assert_int_equal(sel.pcrSelections[1].pcrSelect[1], 0x04);
        /* a bank with no PCRs is still a bank of the selection */
        sels[1].n_pcrs = 0;
        assert_int_equal(va_challenge_selection(&ch, &sel), 0);
        assert_int_equal(sel.count, 2);
        assert_int_equal(sel.pcrSelections[1].pcrSelect[1], 0x00);
}

static void test_selection_refused(void **state) {
        Vouch__V1__QuoteChallenge ch;
        Vouch__V1__PcrSelection sels[VA_MAX_BANKS + 1], *selp[VA_MAX_BANKS + 1];
        TPML_PCR_SELECTION sel = { .count = 99 };
        challenge_init(&ch, sels, selp, 0, 32);
        assert_int_equal(va_challenge_selection(&ch, &sel), -EBADMSG);
        challenge_init(&ch, sels, selp, VA_MAX_BANKS + 1, 32);
        assert_int_equal(va_challenge_selection(&ch, &sel), -EBADMSG);
        challenge_init(&ch, sels, selp, 1, VA_MAX_NONCE + 1);
        assert_int_equal(va_challenge_selection(&ch, &sel), -EBADMSG);
        assert_int_equal(sel.count, 99); /* untouched on error */
        /* the limits themselves are fine */
        challenge_init(&ch, sels, selp, VA_MAX_BANKS, VA_MAX_NONCE);
        assert_int_equal(va_challenge_selection(&ch, &sel), 0);
        assert_int_equal(sel.count, VA_MAX_BANKS);
}

static void test_eventlog_from(void **state) {
        assert_int_equal(va_eventlog_from(0, 1000), 0);
        assert_int_equal(va_eventlog_from(400, 1000), 400);
        assert_int_equal(va_eventlog_from(1000, 1000), 1000); /* nothing new */
        assert_int_equal(va_eventlog_from(1001, 1000), 0);    /* another boot's log: all of this one */
        assert_int_equal(va_eventlog_from(UINT64_MAX, 0), 0);
}

static void test_answer_pcrs(void **state) {
        uint8_t v0[32], v7[32], s10[20];
        memset(v0, 0xa0, sizeof(v0));
        memset(v7, 0xa7, sizeof(v7));
        memset(s10, 0x1a, sizeof(s10));
        va_answer_pcrs p;
        va_answer_pcrs_init(&p);
        assert_int_equal(va_answer_pcrs_value(&p, 0, v0, sizeof(v0)), -EINVAL); /* no bank yet */
        assert_int_equal(va_answer_pcrs_bank(&p, TPM2_ALG_SHA256), 0);
        assert_int_equal(va_answer_pcrs_value(&p, 0, v0, sizeof(v0)), 0);
        assert_int_equal(va_answer_pcrs_value(&p, 7, v7, sizeof(v7)), 0);
        assert_int_equal(va_answer_pcrs_value(&p, 24, v7, sizeof(v7)), -EINVAL);
        assert_int_equal(va_answer_pcrs_bank(&p, TPM2_ALG_SHA1), 0);
        assert_int_equal(va_answer_pcrs_value(&p, 10, s10, sizeof(s10)), 0);
        assert_int_equal(va_answer_pcrs_bank(&p, TPM2_ALG_SHA384), 0); /* empty */

        Vouch__V1__QuoteAnswer a = VOUCH__V1__QUOTE_ANSWER__INIT;
        va_answer_pcrs_put(&p, &a);
        size_t n = vouch__v1__quote_answer__get_packed_size(&a);
        uint8_t *b = malloc(n);
        assert_non_null(b);
        vouch__v1__quote_answer__pack(&a, b);
        Vouch__V1__QuoteAnswer *back = vouch__v1__quote_answer__unpack(NULL, n, b);
        free(b);
        assert_non_null(back);
        assert_int_equal(back->n_pcrs, 3);
        assert_int_equal(back->pcrs[0]->hash_alg, TPM2_ALG_SHA256);
        assert_int_equal(back->pcrs[0]->n_values, 2);
        assert_int_equal(back->pcrs[0]->values[0]->key, 0);
        assert_memory_equal(back->pcrs[0]->values[0]->value.data, v0, sizeof(v0));
        assert_int_equal(back->pcrs[0]->values[1]->key, 7);
        assert_memory_equal(back->pcrs[0]->values[1]->value.data, v7, sizeof(v7));
        assert_int_equal(back->pcrs[1]->hash_alg, TPM2_ALG_SHA1);
        assert_int_equal(back->pcrs[1]->n_values, 1);
        assert_int_equal(back->pcrs[1]->values[0]->value.len, sizeof(s10));
        assert_int_equal(back->pcrs[2]->n_values, 0);
        vouch__v1__quote_answer__free_unpacked(back, NULL);

        assert_int_equal(va_answer_pcrs_bank(&p, TPM2_ALG_SHA512), 0);
        assert_int_equal(va_answer_pcrs_bank(&p, TPM2_ALG_SHA256), -E2BIG); /* a fifth bank */
        for (unsigned i = 0; i < VA_PCRS; i++)
                assert_int_equal(va_answer_pcrs_value(&p, i, v0, sizeof(v0)), 0);
        assert_int_equal(va_answer_pcrs_value(&p, 0, v0, sizeof(v0)), -E2BIG); /* the bank is full */
}

static void test_activate_challenge(void **state) {
        TPM2B_ID_OBJECT blob = { .size = 50 }, blob_back;
        TPM2B_ENCRYPTED_SECRET sec = { .size = 70 }, sec_back;
        uint8_t bb[sizeof(blob)], sb[sizeof(sec)];
        size_t bl = 0, sl = 0;
        memset(blob.credential, 0x42, blob.size);
        memset(sec.secret, 0x24, sec.size);
        assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Marshal(&blob, bb, sizeof(bb), &bl), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&sec, sb, sizeof(sb), &sl), TSS2_RC_SUCCESS);
        Vouch__V1__ActivateChallenge ac = VOUCH__V1__ACTIVATE_CHALLENGE__INIT;
        ac.credential_blob = (ProtobufCBinaryData) { .len = bl, .data = bb };
        ac.encrypted_secret = (ProtobufCBinaryData) { .len = sl, .data = sb };
        assert_int_equal(va_activate_challenge_parse(&ac, &blob_back, &sec_back), 0);
        assert_memory_equal(&blob_back, &blob, sizeof(blob));
        assert_memory_equal(&sec_back, &sec, sizeof(sec));
        /* cut short, or missing: refused */
        ac.encrypted_secret.len = sl - 1;
        assert_int_equal(va_activate_challenge_parse(&ac, &blob_back, &sec_back), -EBADMSG);
        ac.encrypted_secret.len = sl;
        ac.credential_blob.len = 1;
        assert_int_equal(va_activate_challenge_parse(&ac, &blob_back, &sec_back), -EBADMSG);
        ac.credential_blob = (ProtobufCBinaryData) { 0 };
        assert_int_equal(va_activate_challenge_parse(&ac, &blob_back, &sec_back), -EBADMSG);
}

static void test_frame_activate_answer(void **state) {
        uint8_t secret[32], *f = NULL, *payload = NULL;
        size_t n = 0, plen = 0;
        memset(secret, 0x77, sizeof(secret));
        assert_int_equal(va_frame_activate_answer(secret, sizeof(secret), &f, &n), 0);
        vf_decoder d;
        vf_decoder_init(&d, VA_MAX_AGENT_FRAME);
        assert_int_equal(vf_decoder_feed(&d, f, n, &payload, &plen), (long) n);
        assert_non_null(payload);
        Vouch__V1__AgentMessage *m = vouch__v1__agent_message__unpack(NULL, plen, payload);
        assert_non_null(m);
        assert_int_equal(m->msg_case, VOUCH__V1__AGENT_MESSAGE__MSG_ACTIVATE);
        assert_int_equal(m->activate->secret.len, sizeof(secret));
        assert_memory_equal(m->activate->secret.data, secret, sizeof(secret));
        vouch__v1__agent_message__free_unpacked(m, NULL);
        vf_decoder_done(&d);
        free(payload);
        free(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_selection),
                cmocka_unit_test(test_selection_refused),
                cmocka_unit_test(test_eventlog_from),
                cmocka_unit_test(test_answer_pcrs),
                cmocka_unit_test(test_activate_challenge),
                cmocka_unit_test(test_frame_activate_answer),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
