/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's agent session and its verdicts, without sockets or a TPM (server-fixture.h):
 * the protocol's order, the nonce's single use and lifetime, what is refused and how, and
 * the order of verdicts around expiry, revocation, a failed commit and a restart. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "admin.h"
#include "clock.h"
#include "frame.h"
#include "server-fixture.h"
#include "tlsconn.h"

static int setup(void **state) {
        sfx *f = calloc(1, sizeof(*f));
        sfx_setup(f, true);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        sfx *f = *state;
        sfx_teardown(f);
        free(f);
        return 0;
}

/* The next message is an Error with this code; the session stopped reading and closes
 * once it is written. */
static void expect_error(fconn *c, uint32_t code) {
        Vouch__V1__VerifierMessage *m = sfx_next(c);
        assert_non_null(m);
        if (m->msg_case != VOUCH__V1__VERIFIER_MESSAGE__MSG_ERROR)
                fail_msg("expected an Error, got message %d", (int) m->msg_case);
        if (m->error->code != code)
                fail_msg("expected error %u, got %u: %s", code, m->error->code, m->error->message);
        assert_true(c->stopped);
        assert_true(c->flushing);
        vouch__v1__verifier_message__free_unpacked(m, NULL);
        assert_null(sfx_next(c));
}

static Vouch__V1__Verdict *stored_latest(sfx *f) {
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(f->d.store, f->id, &v), 0);
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, v.record_len, v.record);
        assert_non_null(sv);
        Vouch__V1__Verdict *out = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        assert_non_null(out);
        assert_int_equal(out->status, v.status);
        assert_int_equal(out->global_sequence, v.global_sequence);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        vs_verdict_done(&v);
        return out;
}

static int shown_status(sfx *f) {
        uint8_t *rec = NULL;
        size_t len = 0;
        int status = -1;
        assert_int_equal(verdict_current(&f->d, sfx_device(f), &rec, &len, &status), 0);
        free(rec);
        return status;
}

static void close_conn(struct session *s) {
        session_event(s, TCONN_EOF, "");
}

static void test_attest_trusted(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(c->timeout, f->d.cfg.hello_timeout); /* a silent peer is dropped */
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        /* stored before it was sent, and shown */
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(v->sequence, 1);
        assert_int_equal(v->issued_at, SFX_WALL);
        assert_int_equal(v->expires_at, SFX_WALL + 3 * 60);
        assert_string_equal(v->golden_name, "dev");
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_int_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_false(c->stopped);
        close_conn(s);
        assert_true(c->freed);
}

static void test_wrong_nonce_gets_no_verdict(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        uint8_t other[32];
        memcpy(other, ch->challenge->nonce.data, 32);
        other[0] ^= 1;
        sfx_answer(f, s, ch->challenge, other);
        sfx_pump(f);
        expect_error(c, EPERM);
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(f->d.store, f->id, &v), -ENOENT);
        assert_int_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__UNKNOWN);
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
        session_event(s, TCONN_FLUSHED, "");
        assert_true(c->freed);
}

static void test_expired_challenge_is_refused(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        assert_int_equal(c->timeout, f->d.cfg.nonce_timeout);
        assert_int_equal(ch->challenge->expires_in_ms, f->d.cfg.nonce_timeout * 1000);
        vclock_fake_advance(f->d.cfg.nonce_timeout + 1);
        sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
        sfx_pump(f);
        expect_error(c, ETIMEDOUT);
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(f->d.store, f->id, &v), -ENOENT);
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
        close_conn(s);
}

/* A quote whose TPM clock is older than the last accepted one is a replay or a rollback:
 * signed by the AK, so the device gets a verdict, and it is not TRUSTED. */
static void test_clock_rollback_is_untrusted(void **state) {
        sfx *f = *state;
        fconn *c1, *c2;
        struct session *s1 = sfx_connect(f, &c1);
        assert_int_equal(sfx_attest(f, s1, c1), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s1);
        f->clock -= 120000;
        struct session *s2 = sfx_connect(f, &c2);
        assert_int_not_equal(sfx_attest(f, s2, c2), VOUCH__V1__TRUST_STATUS__TRUSTED);
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->sequence, 2);
        assert_int_not_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_int_not_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s2);
}

static void test_protocol_order(void **state) {
        sfx *f = *state;
        fconn *c;
        /* a QuoteAnswer before Hello */
        struct session *s = sfx_connect(f, &c);
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        Vouch__V1__QuoteAnswer a = VOUCH__V1__QUOTE_ANSWER__INIT;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_QUOTE;
        m.quote = &a;
        sfx_send(s, &m);
        expect_error(c, EPROTO);
        session_event(s, TCONN_FLUSHED, "");
        /* a second Hello while the challenge is open */
        s = sfx_connect(f, &c);
        sfx_hello(f, s);
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        sfx_hello(f, s);
        expect_error(c, EPROTO);
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
        session_event(s, TCONN_FLUSHED, "");
        /* an unsupported protocol version */
        s = sfx_connect(f, &c);
        Vouch__V1__Hello h = VOUCH__V1__HELLO__INIT;
        h.protocol_version = 2;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_HELLO;
        m.hello = &h;
        sfx_send(s, &m);
        expect_error(c, EPROTONOSUPPORT);
        session_event(s, TCONN_FLUSHED, "");
}

static void test_bad_frames(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        sfx_send_raw(s, "\xff\xff\xff", 3);
        expect_error(c, EBADMSG);
        session_event(s, TCONN_FLUSHED, "");
        /* a header announcing more than --max-frame: refused before anything is allocated */
        s = sfx_connect(f, &c);
        uint8_t hdr[VF_HEADER_SIZE] = { 0x7f, 0xff, 0xff, 0xff };
        session_data(s, hdr, sizeof(hdr));
        expect_error(c, E2BIG);
        session_event(s, TCONN_FLUSHED, "");
        /* Hello with an EK that is not one TPM2B_PUBLIC */
        s = sfx_connect(f, &c);
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        Vouch__V1__Hello h = VOUCH__V1__HELLO__INIT;
        h.protocol_version = VOUCH__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1;
        h.ek_public = (ProtobufCBinaryData) { 3, (uint8_t *) "\0\1x" };
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_HELLO;
        m.hello = &h;
        sfx_send(s, &m);
        expect_error(c, EBADMSG);
        session_event(s, TCONN_FLUSHED, "");
}

static void test_silent_peer_times_out(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        session_event(s, TCONN_TIMEOUT, "");
        expect_error(c, ETIMEDOUT);
        session_event(s, TCONN_FLUSHED, "");
        assert_true(c->freed);
}

/* The admin's revocation (admin.h), as the API makes it; the loop is not run, so the
 * session's kick is still queued. */
static void revoke(sfx *f) {
        assert_int_equal(device_revoke(&f->d, sfx_device(f), "test"), 0);
}

static void test_revoked_device_is_refused(void **state) {
        sfx *f = *state;
        fconn *c;
        revoke(f);
        sfx_pump(f);
        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        expect_error(c, EACCES);
        session_event(s, TCONN_FLUSHED, "");
        assert_int_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
}

/* Revoked between the challenge and its answer: the good quote gets no TRUSTED verdict,
 * and the revocation's UNTRUSTED verdict stays the latest. */
static void test_revocation_wins_over_an_answer_in_flight(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        revoke(f);
        sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
        sfx_pump(f);
        expect_error(c, EACCES); /* the answer gets no verdict; then the kick arrives */
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_int_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
        session_event(s, TCONN_FLUSHED, "");
}

/* A revoked device's session is closed by the revocation. */
static void test_revocation_closes_the_session(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        revoke(f);
        assert_int_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        sfx_pump(f);
        expect_error(c, EACCES);
        session_event(s, TCONN_FLUSHED, "");
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        assert_int_equal(v->sequence, 2);
        vouch__v1__verdict__free_unpacked(v, NULL);
}

/* A TRUSTED verdict is STALE once its lifetime has passed on the monotonic clock, even when
 * the wall clock is stepped back, and the sweep stores a STALE verdict after it. */
static void test_expiry_gives_stale(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        Vouch__V1__Verdict *first = stored_latest(f);
        vclock_fake_advance(3 * 60 + 1);
        vclock_fake(SFX_WALL, SFX_MONO + 3 * 60 + 1); /* the wall clock stepped back */
        assert_int_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__STALE);
        verdict_sweep(&f->d);
        sfx_pump(f);
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__STALE);
        assert_int_equal(v->sequence, first->sequence + 1);
        assert_true(v->global_sequence > first->global_sequence);
        /* once is enough: a second sweep issues nothing more */
        verdict_sweep(&f->d);
        sfx_pump(f);
        Vouch__V1__Verdict *again = stored_latest(f);
        assert_int_equal(again->sequence, v->sequence);
        vouch__v1__verdict__free_unpacked(again, NULL);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verdict__free_unpacked(first, NULL);
}

/* The sweep's expiry wheel: a sweep before the deadline issues nothing; the first after it
 * stores the STALE verdict, with both clocks running on (no step: the wheel, not a walk);
 * a device attested again meanwhile is judged by its new deadline. */
static void test_sweep_finds_expiry(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        verdict_sweep(&f->d);
        vclock_fake_advance(2 * 60);
        s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED); /* again, 2 min later */
        close_conn(s);
        Vouch__V1__Verdict *second = stored_latest(f);
        vclock_fake_advance(60 + 30); /* past the first verdict's end, not the second's */
        verdict_sweep(&f->d);
        sfx_pump(f);
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(v->sequence, second->sequence);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vclock_fake_advance(3 * 60 - 90); /* the second's end */
        verdict_sweep(&f->d);
        sfx_pump(f);
        v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__STALE);
        assert_int_equal(v->sequence, second->sequence + 1);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__verdict__free_unpacked(second, NULL);
}

/* A wall clock stepped forward past a verdict's expires_at makes it STALE: stored by the
 * next sweep (after a restart, when no verdict of this run is on its way), although its deadline on the monotonic clock is still ahead: the sweep walks every
 * device after a step. */
static void test_wall_step_forward_gives_stale(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        sfx_restart(f);
        verdict_sweep(&f->d);
        vclock_fake_advance(1);
        verdict_sweep(&f->d);
        vclock_fake(SFX_WALL + 1 + 3 * 60, SFX_MONO + 2); /* the wall clock stepped forward */
        verdict_sweep(&f->d);
        sfx_pump(f);
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__STALE);
        vouch__v1__verdict__free_unpacked(v, NULL);
}

/* A TRUSTED verdict that cannot be stored is never sent nor shown. */
static void test_failed_commit_is_not_trusted(void **state) {
        sfx *f = *state;
        fconn *c;
        if (strcmp(getenv("VOUCH_FAILPOINTS_BUILT") ?: "0", "1") != 0) {
                fprintf(stderr, "SKIP: the store's failpoints are not built (meson -Dfailpoints=true)\n");
                skip();
        }
        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        setenv("VOUCH_FAILPOINTS", "store-verdict", 1);
        sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
        sfx_pump(f);
        unsetenv("VOUCH_FAILPOINTS");
        expect_error(c, EIO);
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(f->d.store, f->id, &v), -ENOENT);
        assert_int_not_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__TRUSTED);
        vs_stats st;
        vs_get_stats(f->d.store, &st);
        assert_true(st.failures >= 1);
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
        session_event(s, TCONN_FLUSHED, "");
}

/* After a clean restart the latest verdict and the numbering go on where they were. */
static void test_restart_continues(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        Vouch__V1__Verdict *before = stored_latest(f);
        sfx_restart(f);
        assert_int_equal(shown_status(f), VOUCH__V1__TRUST_STATUS__TRUSTED);
        s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        Vouch__V1__Verdict *after = stored_latest(f);
        assert_int_equal(after->sequence, before->sequence + 1);
        assert_true(after->global_sequence > before->global_sequence);
        vouch__v1__verdict__free_unpacked(before, NULL);
        vouch__v1__verdict__free_unpacked(after, NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_attest_trusted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_nonce_gets_no_verdict, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expired_challenge_is_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_clock_rollback_is_untrusted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_protocol_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_frames, setup, teardown),
                cmocka_unit_test_setup_teardown(test_silent_peer_times_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revoked_device_is_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revocation_wins_over_an_answer_in_flight, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revocation_closes_the_session, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expiry_gives_stale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sweep_finds_expiry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wall_step_forward_gives_stale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_commit_is_not_trusted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_continues, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
