/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's device leases on a shared store (lease.h, docs/scale-out.md; issue 18), on the
 * PostgreSQL of test/pg/pg-harness.sh (skipped without it): a device held by another
 * instance is refused naming it; a lapsed holder's lease is taken over, the device reloaded
 * and its TRUSTED verdict superseded; a lost heartbeat closes the sessions, refuses new ones
 * and lets no verdict out; two instances sweeping issue one STALE verdict per expiry. The
 * heartbeat runs by hand (lease_heartbeat_tick) on the fake clock; the other instance is
 * either a bare store handle under another name or a second vouchd (server-fixture.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "admin.h"
#include "health.h"
#include "server-fixture.h"
#include "tlsconn.h"

static int setup(void **state) {
        if (!sfx_pg_url()) {
                fprintf(stderr, "SKIP: no PostgreSQL (run under test/pg/pg-harness.sh)\n");
                return -1;
        }
        sfx *f = calloc(1, sizeof(*f));
        sfx_setup_shared(f, true, sfx_pg_url(), "a", true);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        sfx *f = *state;
        if (f) {
                sfx_teardown(f);
                free(f);
        }
        return 0;
}

/* A bare store handle as another instance. */
static vs_store *open_other(const char *instance) {
        vs_store *s = NULL;
        char err[512];
        vs_open_options opt = { .history_keep = 10, .instance = instance };
        if (vs_open_ex(sfx_pg_url(), &opt, &s, NULL, err, sizeof(err)) < 0)
                fail_msg("open as %s: %s", instance, err);
        return s;
}

typedef struct answer {
        int error;
        vs_lease_result res;
} answer;

static void on_lease(int error, const vs_lease_result *res, void *userdata) {
        answer *a = userdata;
        a->error = error;
        a->res = *res;
}

static vs_lease_result claim_sync(vs_store *s, const char *id) {
        answer a = { .error = 1 };
        assert_int_equal(vs_lease_claim(s, id, 60000, on_lease, &a), 0);
        vs_flush(s);
        assert_int_equal(a.error, 0);
        return a.res;
}

/* The next message is an Error with this code, whose message contains want (if not NULL). */
static void expect_error(fconn *c, uint32_t code, const char *want) {
        Vouch__V1__VerifierMessage *m = sfx_next(c);
        assert_non_null(m);
        if (m->msg_case != VOUCH__V1__VERIFIER_MESSAGE__MSG_ERROR)
                fail_msg("expected an Error, got message %d", (int) m->msg_case);
        if (m->error->code != code)
                fail_msg("expected error %u, got %u: %s", code, m->error->code, m->error->message);
        if (want && !strstr(m->error->message, want))
                fail_msg("expected \"%s\" in the error: %s", want, m->error->message);
        assert_true(c->stopped);
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
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        vs_verdict_done(&v);
        return out;
}

static size_t stored_count(sfx *f, int status) {
        vs_verdict h[32];
        int n = vs_verdict_history(f->d.store, f->id, h, 32);
        size_t k = 0;
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                k += h[i].status == status;
                vs_verdict_done(&h[i]);
        }
        return k;
}

static bool leased(sfx *f) {
        device *dev = sfx_device(f);
        pthread_mutex_lock(&f->d.lock);
        bool l = dev->leased;
        pthread_mutex_unlock(&f->d.lock);
        return l;
}

static void close_conn(struct session *s) {
        session_event(s, TCONN_EOF, "");
}

/* The fake clock moved on by secs, each instance's heartbeat running every 3 s meanwhile. */
static void advance(sfx **fs, size_t n, int secs) {
        for (int t = 0; t < secs; t += 3) {
                vclock_fake_advance(secs - t < 3 ? secs - t : 3);
                for (size_t i = 0; i < n; i++) {
                        lease_heartbeat_tick(&fs[i]->d);
                        sfx_pump(fs[i]);
                }
        }
}

/* Another instance holds the device: its session is refused with an error naming that
 * instance, nothing is issued; once released there, the device attests here, under a lease
 * released again when the session ends. */
static void test_claim_refused(void **state) {
        sfx *f = *state;
        fconn *c;
        vs_store *b = open_other("b");
        vs_lease_result got = claim_sync(b, f->id);
        assert_true(got.granted);

        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        sfx_pump(f);
        expect_error(c, EBUSY, "\"b\"");
        session_event(s, TCONN_FLUSHED, "");
        assert_int_equal(atomic_load(&f->d.leases.refusals), 1);
        assert_false(leased(f));
        assert_int_equal(vs_lease_get(b, f->id, &got), 0); /* still b's */
        assert_true(got.granted);
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(f->d.store, f->id, &v), -ENOENT);

        assert_int_equal(vs_lease_release(b, f->id, NULL, NULL), 0);
        vs_flush(b);
        s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_true(leased(f));
        pthread_mutex_lock(&sfx_device(f)->mu);
        bool loaded = sfx_device(f)->ak != NULL; /* for the quote */
        pthread_mutex_unlock(&sfx_device(f)->mu);
        assert_true(loaded);
        assert_int_equal(vs_lease_get(b, f->id, &got), 0);
        assert_string_equal(got.holder, "a");
        /* b is refused now */
        got = claim_sync(b, f->id);
        assert_false(got.granted);
        assert_string_equal(got.holder, "a");
        close_conn(s);
        sfx_pump(f);
        assert_false(leased(f));
        assert_int_equal(vs_lease_get(b, f->id, &got), -ENOENT);
        /* released: the AK is not kept (registry.h), and loads again for the next quote */
        device *dev = sfx_device(f);
        pthread_mutex_lock(&f->d.lock);
        pthread_mutex_lock(&dev->mu);
        bool kept = dev->ak != NULL;
        pthread_mutex_unlock(&dev->mu);
        pthread_mutex_unlock(&f->d.lock);
        assert_false(kept);
        s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        sfx_pump(f);
        vs_close(b);
}

/* The holder dies (its heartbeat ends, its lease stays): the next instance to claim the
 * device takes it over, reloads what the holder stored (a later TPM clock: a quote older than
 * it is not trusted here either) and supersedes the TRUSTED verdict the holder may have
 * outdated with a STALE one, before the device's next verdict. */
static void test_takeover_after_lapse(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        sfx_pump(f);

        vs_store *b = open_other("b");
        vs_lease_result got = claim_sync(b, f->id);
        assert_true(got.granted);
        /* b attested the device an hour of TPM time later, and stored its clock */
        assert_int_equal(vs_device_put_clock(b, f->id, f->reset, f->restart, f->clock + 3600000, NULL, NULL), 0);
        vs_close(b); /* its heartbeat ends; the lease row stays b's */

        s = sfx_connect(f, &c);
        int status = sfx_attest(f, s, c);
        assert_int_not_equal(status, VOUCH__V1__TRUST_STATUS__TRUSTED); /* the clock went back */
        close_conn(s);
        sfx_pump(f);
        vs_verdict h[8];
        int n = vs_verdict_history(f->d.store, f->id, h, 8);
        assert_int_equal(n, 3);
        /* newest first: the attestation's, the takeover's STALE, the first TRUSTED */
        assert_int_equal(h[0].sequence, 3);
        assert_int_not_equal(h[0].status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(h[1].sequence, 2);
        assert_int_equal(h[1].status, VOUCH__V1__TRUST_STATUS__STALE);
        assert_int_equal(h[2].status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, h[1].record_len, h[1].record);
        Vouch__V1__Verdict *stale = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        assert_int_equal(stale->n_findings, 1);
        assert_string_equal(stale->findings[0]->rule, "takeover");
        assert_non_null(strstr(stale->findings[0]->actual, "instance b"));
        vouch__v1__verdict__free_unpacked(stale, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        for (int i = 0; i < n; i++)
                vs_verdict_done(&h[i]);
}

static vs_lease_result claim_ttl(vs_store *s, const char *id, int64_t ttl_ms) {
        answer a = { .error = 1 };
        assert_int_equal(vs_lease_claim(s, id, ttl_ms, on_lease, &a), 0);
        vs_flush(s);
        assert_int_equal(a.error, 0);
        return a.res;
}

static const char *self_path; /* this test binary: the dying holder runs as a process of its own */

/* The holder instance "b" (test-lease --hold-lease DEVICE): claims DEVICE for a minute, says
 * "y", and exits without closing its store once its standard input closes, as a process
 * killed would (its database sessions end with it). */
static int hold_lease(const char *id) {
        vs_store *b = NULL;
        char err[512], x;
        vs_open_options opt = { .history_keep = 10, .instance = "b" };
        answer a = { .error = 1 };
        if (vs_open_ex(sfx_pg_url(), &opt, &b, NULL, err, sizeof(err)) < 0 ||
            vs_lease_claim(b, id, 60000, on_lease, &a) < 0)
                _exit(1);
        vs_flush(b);
        if (write(1, a.error == 0 && a.res.granted ? "y" : "n", 1) != 1)
                _exit(1);
        while (read(0, &x, 1) == 1)
                ;
        _exit(0);
}

/* The holder's process dies (no clean close: its database sessions just end) long before its
 * heartbeat would lapse: once the claimer's own session has been up for half a ttl, it finds
 * the holder's instance lock free and takes the lease over at once, naming the dead holder.
 * A live holder (its lock held) is never taken for dead. (A holder whose session alone ended
 * reconnects and takes its lock again: it lives.) */
static void test_dead_holder_lapses_at_once(void **state) {
        sfx *f = *state;
        vs_store *c = open_other("c");
        int in[2], out[2];
        assert_int_equal(pipe(in), 0);
        assert_int_equal(pipe(out), 0);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_addclose(&fa, in[1]);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        char *argv[] = { (char *) self_path, "--hold-lease", f->id, NULL };
        pid_t pid;
        assert_int_equal(posix_spawn(&pid, self_path, &fa, NULL, argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        char x = 0;
        assert_int_equal(read(out[0], &x, 1), 1);
        assert_int_equal(x, 'y');
        struct timespec half = { 1, 200 * 1000000L };
        nanosleep(&half, NULL); /* c's session up for more than half its ttl (2 s) */
        vs_lease_result got = claim_ttl(c, f->id, 2000);
        assert_false(got.granted); /* b lives */
        assert_string_equal(got.holder, "b");
        close(in[1]); /* b dies with a minute of heartbeat left */
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(out[0]);
        struct timespec tick = { 0, 250 * 1000000L };
        for (int i = 0; i < 60 && !got.granted; i++) {
                nanosleep(&tick, NULL);
                got = claim_ttl(c, f->id, 2000);
        }
        assert_true(got.granted);
        assert_string_equal(got.taken_from, "b");
        vs_close(c);
}

/* The heartbeat is not stored before its local deadline: no verdict goes out under the
 * leases, new sessions are refused, and once the heartbeat's thread sees it every lease is
 * given up and the bound sessions are closed; a renewal that commits lets devices be claimed
 * again. */
static void test_heartbeat_lost(void **state) {
        sfx *f = *state;
        fconn *c, *c2;
        vouchd *d = &f->d;
        /* a session holding the lease, its challenge open */
        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        sfx_pump(f);
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        assert_non_null(ch);
        assert_int_equal(ch->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE);
        assert_true(leased(f));
        /* the heartbeat stalls past the deadline (ttl less the margin after the last renewal) */
        vclock_fake_advance((LEASE_TTL_MS - LEASE_MARGIN_MS) / 1000 + 1);
        sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
        sfx_pump(f);
        expect_error(c, EAGAIN, "no verdict issued");
        session_event(s, TCONN_FLUSHED, "");
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(d->store, f->id, &v), -ENOENT);
        assert_int_equal(atomic_load(&d->verdicts_issued), 0);
        /* not ready for a load balancer; a new session is refused */
        char why[300];
        assert_false(health_ready(d, why, sizeof(why)));
        assert_non_null(strstr(why, "heartbeat"));
        struct session *s2 = sfx_connect(f, &c2);
        sfx_hello(f, s2);
        sfx_pump(f);
        expect_error(c2, EAGAIN, "heartbeat");
        session_event(s2, TCONN_FLUSHED, "");
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);

        /* the heartbeat's step: every lease given up, then stored again */
        lease_heartbeat_tick(d);
        assert_true(atomic_load(&d->leases.lost));
        assert_false(leased(f));
        assert_int_equal(atomic_load(&d->leases.lost_leases), 0); /* the session's ended with it */
        sfx_pump(f);
        assert_false(atomic_load(&d->leases.lost));
        assert_true(health_ready(d, why, sizeof(why)));
        vs_lease_result got;
        assert_int_equal(vs_lease_get(d->store, f->id, &got), -ENOENT); /* every row released */

        /* claimed again: attests; then a loss closes the bound session */
        s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_true(leased(f));
        vclock_fake_advance((LEASE_TTL_MS - LEASE_MARGIN_MS) / 1000 + 1);
        lease_heartbeat_tick(d);
        assert_false(leased(f));
        assert_int_equal(atomic_load(&d->leases.lost_leases), 1);
        sfx_pump(f);
        expect_error(c, EACCES, "lost its hold");
        session_event(s, TCONN_FLUSHED, "");
        assert_int_equal(stored_count(f, VOUCH__V1__TRUST_STATUS__TRUSTED), 1);
        assert_int_equal(atomic_load(&d->leases.held), 0);
}

/* A renewal is stored every LEASE_RENEW_MS: the deadline moves on, the leases stay. */
static void test_heartbeat_renews(void **state) {
        sfx *f = *state;
        fconn *c;
        sfx *fs[] = { f };
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        advance(fs, 1, 30);
        assert_true(leased(f));
        assert_false(atomic_load(&f->d.leases.lost));
        assert_int_equal(atomic_load(&f->d.leases.lost_leases), 0);
        assert_false(c->stopped);
        close_conn(s);
        sfx_pump(f);
}

/* Two instances know the device's expired TRUSTED verdict: one STALE verdict is issued, by
 * whichever claimed the lease; the other, granted later, finds it reloaded, or is refused. */
static void test_stale_once(void **state) {
        sfx *a = *state, *b = calloc(1, sizeof(*b));
        fconn *c;
        struct session *s = sfx_connect(a, &c);
        assert_int_equal(sfx_attest(a, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        sfx_pump(a);
        sfx_setup_shared(b, false, sfx_pg_url(), "b", false); /* loads the device and its TRUSTED verdict */
        vclock_fake(SFX_WALL, SFX_MONO); /* (sfx_setup_shared set it again: as it was) */
        device *bdev = NULL;
        pthread_mutex_lock(&b->d.lock);
        bdev = registry_find_locked(&b->d, a->id);
        pthread_mutex_unlock(&b->d.lock);
        assert_non_null(bdev);
        assert_int_equal(bdev->latest_status, VOUCH__V1__TRUST_STATUS__TRUSTED);

        sfx *fs[] = { a, b };
        advance(fs, 2, 3 * 60 + 3); /* past the verdict's expiry */
        for (int round = 0; round < 3; round++) {
                verdict_sweep(&a->d);
                verdict_sweep(&b->d);
                for (int i = 0; i < 3; i++) {
                        sfx_pump(a);
                        sfx_pump(b);
                }
        }
        assert_int_equal(stored_count(a, VOUCH__V1__TRUST_STATUS__STALE), 1);
        assert_int_equal(atomic_load(&a->d.stale_issued) + atomic_load(&b->d.stale_issued), 1);
        vs_stats st;
        vs_get_stats(a->d.store, &st);
        assert_int_equal(st.failures, 0);
        vs_get_stats(b->d.store, &st);
        assert_int_equal(st.failures, 0);
        /* both show it */
        Vouch__V1__Verdict *v = stored_latest(a);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__STALE);
        assert_int_equal(v->sequence, 2);
        vouch__v1__verdict__free_unpacked(v, NULL);
        pthread_mutex_lock(&b->d.lock);
        int bstatus = verdict_shown_status_locked(&b->d, bdev);
        pthread_mutex_unlock(&b->d.lock);
        assert_int_equal(bstatus, VOUCH__V1__TRUST_STATUS__STALE);
        /* nobody holds it now */
        vs_lease_result got;
        assert_int_equal(vs_lease_get(a->d.store, a->id, &got), -ENOENT);
        sfx_teardown(b);
        free(b);
}

/* At stop every lease is released: another instance may claim at once. */
static void test_released_at_stop(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        vs_store *b = open_other("b");
        vs_lease_result got;
        assert_int_equal(vs_lease_get(b, f->id, &got), 0);
        assert_string_equal(got.holder, "a");
        sfx_restart(f); /* the session still open */
        assert_int_equal(vs_lease_get(b, f->id, &got), -ENOENT);
        got = claim_sync(b, f->id);
        assert_true(got.granted);
        assert_string_equal(got.taken_from, "");
        vs_close(b);
}

/* A verdict shown but not stored (its commit failed) keeps the device's lease until the
 * sweep has stored it again: meanwhile no other instance may claim the device and serve the
 * older TRUSTED verdict the store still has. */
static void test_unstored_keeps_the_lease(void **state) {
        sfx *f = *state;
        fconn *c;
        if (strcmp(getenv("VOUCH_FAILPOINTS_BUILT") ?: "0", "1") != 0) {
                fprintf(stderr, "SKIP: the store's failpoints are not built (meson -Dfailpoints=true)\n");
                skip();
        }
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        sfx_pump(f);
        f->clock -= 120000; /* the next quote's clock goes back: UNTRUSTED */
        s = sfx_connect(f, &c);
        sfx_hello(f, s);
        sfx_pump(f);
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        assert_int_equal(ch->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE);
        setenv("VOUCH_FAILPOINTS", "store-verdict", 1);
        sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
        sfx_pump(f);
        unsetenv("VOUCH_FAILPOINTS");
        expect_error(c, EIO, "could not commit");
        session_event(s, TCONN_FLUSHED, "");
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
        uint8_t *rec = NULL;
        size_t len = 0;
        int status = -1;
        assert_int_equal(verdict_current(&f->d, sfx_device(f), &rec, &len, &status), 0);
        free(rec);
        assert_int_equal(status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        vouch__v1__verdict__free_unpacked(v, NULL);
        /* the session is gone, the lease stays */
        vs_store *b = open_other("b");
        vs_lease_result got = claim_sync(b, f->id);
        assert_false(got.granted);
        assert_string_equal(got.holder, "a");
        /* also through a loss of the heartbeat and its recovery (which releases the rows
         * given up, but not this one: b would claim it as free) */
        vclock_fake_advance((LEASE_TTL_MS - LEASE_MARGIN_MS) / 1000 + 1);
        lease_heartbeat_tick(&f->d);
        assert_true(atomic_load(&f->d.leases.lost));
        sfx_pump(f);
        assert_false(atomic_load(&f->d.leases.lost));
        got = claim_sync(b, f->id);
        assert_false(got.granted);
        assert_string_equal(got.holder, "a");
        /* the sweep stores what was shown (claiming the device again), then releases */
        verdict_sweep(&f->d);
        sfx_pump(f);
        v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        assert_int_equal(v->sequence, 3); /* 2 was the failed commit's */
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_false(leased(f));
        got = claim_sync(b, f->id);
        assert_true(got.granted);
        vs_close(b);
}

/* A failed commit of an attestation's TRUSTED verdict: the run is unclean, nothing shown. */
static void failed_attestation(sfx *f) {
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        sfx_hello(f, s);
        sfx_pump(f);
        Vouch__V1__VerifierMessage *w = sfx_next(c), *ch = sfx_next(c);
        assert_int_equal(ch->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE);
        setenv("VOUCH_FAILPOINTS", "store-verdict", 1);
        sfx_answer(f, s, ch->challenge, ch->challenge->nonce.data);
        sfx_pump(f);
        unsetenv("VOUCH_FAILPOINTS");
        expect_error(c, EIO, "could not commit");
        session_event(s, TCONN_FLUSHED, "");
        vouch__v1__verifier_message__free_unpacked(w, NULL);
        vouch__v1__verifier_message__free_unpacked(ch, NULL);
}

/* After this instance's unclean run, its start claims the devices whose latest verdict is
 * TRUSTED and supersedes it (STALE, rule "restart"), one by one under their leases; a device
 * a live instance holds is left to it. */
static void test_unclean_restart_settles(void **state) {
        sfx *f = *state;
        fconn *c;
        if (strcmp(getenv("VOUCH_FAILPOINTS_BUILT") ?: "0", "1") != 0) {
                fprintf(stderr, "SKIP: the store's failpoints are not built (meson -Dfailpoints=true)\n");
                skip();
        }
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        failed_attestation(f);
        sfx_restart(f);
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__STALE);
        assert_string_equal(v->findings[0]->rule, "restart");
        uint64_t seq = v->sequence;
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_false(leased(f));
        vs_lease_result got;
        assert_int_equal(vs_lease_get(f->d.store, f->id, &got), -ENOENT); /* released */

        /* again, the device held by a live instance meanwhile: left to it */
        s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        failed_attestation(f);
        vs_store *b = open_other("b");
        got = claim_sync(b, f->id);
        assert_true(got.granted);
        sfx_restart(f);
        v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_true(v->sequence > seq);
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_true(atomic_load(&f->d.leases.refusals) >= 1);
        vs_close(b);
}

/* A claim applies the row it reloads as the change feed would, with its change number: a
 * row of the feed older than it, applied after it (a poll that read it before the claim),
 * changes nothing. Here the row says revoked (at another instance, while nobody held the
 * device): the session is refused, and the claim supersedes the TRUSTED latest verdict with
 * the UNTRUSTED one the holder would have issued. */
static void test_claim_applies_the_row(void **state) {
        sfx *f = *state;
        fconn *c;
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        sfx_pump(f);
        assert_false(leased(f));
        vs_store *b = open_other("b");
        vs_device old, now;
        assert_int_equal(vs_device_get(b, f->id, &old), 0);
        vs_device rev = old;
        rev.approved = false;
        rev.revoked = true;
        assert_int_equal(vs_device_put_admin(b, &rev, VS_ADMIN_ACCESS, NULL, NULL), 0);
        vs_flush(b);
        assert_int_equal(vs_device_get(b, f->id, &now), 0);
        assert_true(now.change > old.change);

        s = sfx_connect(f, &c);
        sfx_hello(f, s);
        sfx_pump(f);
        expect_error(c, EACCES, "revoked");
        session_event(s, TCONN_FLUSHED, "");
        device *dev = sfx_device(f);
        pthread_mutex_lock(&f->d.lock);
        uint64_t change = dev->rec.change;
        bool revoked = dev->rec.revoked;
        pthread_mutex_unlock(&f->d.lock);
        assert_int_equal(change, now.change);
        assert_true(revoked);
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        assert_string_equal(v->findings[0]->rule, "revoked");
        assert_int_equal(v->sequence, 2);
        vouch__v1__verdict__free_unpacked(v, NULL);

        /* the older row, applied late */
        registry_applied a;
        pthread_mutex_lock(&f->d.seq_lock);
        pthread_mutex_lock(&f->d.lock);
        int r = registry_apply_locked(&f->d, &old, &a);
        revoked = dev->rec.revoked;
        pthread_mutex_unlock(&f->d.lock);
        pthread_mutex_unlock(&f->d.seq_lock);
        assert_int_equal(r, 0);
        assert_null(a.dev);
        assert_true(revoked);
        vs_device_done(&old);
        vs_device_done(&now);
        vs_close(b);
}

/* An admin's revocation while the heartbeat is lost: this instance cannot hold the device,
 * so it writes the flags only (as at an instance that does not hold it), and shows the
 * device UNTRUSTED at once. The device's next claim finds it revoked and supersedes its
 * TRUSTED verdict; with no other instance (whose follower would claim it) and the agent
 * refused as revoked, that is the sweep's claim when the verdict expires: UNTRUSTED, no
 * STALE. */
static void test_revoke_while_heartbeat_lost(void **state) {
        sfx *f = *state;
        fconn *c;
        sfx *fs[] = { f };
        struct session *s = sfx_connect(f, &c);
        assert_int_equal(sfx_attest(f, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        close_conn(s);
        sfx_pump(f);
        vclock_fake_advance((LEASE_TTL_MS - LEASE_MARGIN_MS) / 1000 + 1);
        assert_false(lease_heartbeat_alive(&f->d));
        assert_int_equal(device_revoke(&f->d, sfx_device(f), "admin"), 0);
        vs_device row;
        assert_int_equal(vs_device_get(f->d.store, f->id, &row), 0);
        assert_true(row.revoked);
        assert_false(row.approved);
        vs_device_done(&row);
        uint8_t *rec = NULL;
        size_t len = 0;
        int status = -1;
        assert_int_equal(verdict_current(&f->d, sfx_device(f), &rec, &len, &status), 0);
        free(rec);
        assert_int_equal(status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        Vouch__V1__Verdict *v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED); /* no holder issued it yet */
        vouch__v1__verdict__free_unpacked(v, NULL);
        /* the heartbeat is back; the agent is refused (revoked) */
        lease_heartbeat_tick(&f->d);
        sfx_pump(f);
        assert_true(lease_heartbeat_alive(&f->d));
        s = sfx_connect(f, &c);
        sfx_hello(f, s);
        sfx_pump(f);
        expect_error(c, EACCES, "revoked");
        session_event(s, TCONN_FLUSHED, "");
        /* its verdict expires: the sweep's claim supersedes it */
        advance(fs, 1, 3 * 60 + 3);
        verdict_sweep(&f->d);
        sfx_pump(f);
        v = stored_latest(f);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        assert_string_equal(v->findings[0]->rule, "revoked");
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_int_equal(stored_count(f, VOUCH__V1__TRUST_STATUS__STALE), 0);
        assert_false(leased(f));
}

/* Two instances attesting their own devices, their verdicts interleaved: each commits, with
 * global sequences the store gives in commit order (no instance numbers them itself, so no
 * two collide). */
static void test_two_instances_commit(void **state) {
        sfx *a = *state, *b = calloc(1, sizeof(*b));
        sfx_setup_shared(b, true, sfx_pg_url(), "b", false); /* with a device of its own */
        vclock_fake(SFX_WALL, SFX_MONO);
        sfx *fs[] = { a, b };
        for (int round = 0; round < 10; round++) {
                /* an agent at each, both quotes answered before either instance commits */
                fconn *c[2];
                struct session *s[2];
                Vouch__V1__VerifierMessage *w[2], *ch[2];
                for (int i = 0; i < 2; i++) {
                        s[i] = sfx_connect(fs[i], &c[i]);
                        sfx_hello(fs[i], s[i]);
                        sfx_pump(fs[i]);
                        w[i] = sfx_next(c[i]);
                        ch[i] = sfx_next(c[i]);
                        assert_non_null(ch[i]);
                        assert_int_equal(ch[i]->msg_case, VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE);
                }
                for (int i = 0; i < 2; i++)
                        sfx_answer(fs[i], s[i], ch[i]->challenge, ch[i]->challenge->nonce.data);
                sfx_pump(a);
                sfx_pump(b);
                for (int i = 0; i < 2; i++) {
                        Vouch__V1__VerifierMessage *m = sfx_next(c[i]);
                        assert_non_null(m);
                        Vouch__V1__Verdict *v = sfx_verdict_of(m);
                        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED);
                        assert_true(v->global_sequence > 0);
                        vouch__v1__verdict__free_unpacked(v, NULL);
                        vouch__v1__verifier_message__free_unpacked(m, NULL);
                        vouch__v1__verifier_message__free_unpacked(ch[i], NULL);
                        vouch__v1__verifier_message__free_unpacked(w[i], NULL);
                        close_conn(s[i]);
                        sfx_pump(fs[i]);
                }
        }
        vs_stats st;
        for (int i = 0; i < 2; i++) {
                vs_get_stats(fs[i]->d.store, &st);
                assert_int_equal(st.failures, 0);
        }
        /* 20 verdicts, each number once, in order */
        vs_verdict all[64];
        int n = vs_verdict_since(a->d.store, 0, all, 64);
        assert_int_equal(n, 20);
        for (int i = 0; i < n; i++) {
                if (i > 0)
                        assert_true(all[i].global_sequence > all[i - 1].global_sequence);
                vs_verdict_done(&all[i]);
        }
        sfx_teardown(b);
        free(b);
}

int main(int argc, char **argv) {
        self_path = argv[0];
        if (argc == 3 && strcmp(argv[1], "--hold-lease") == 0)
                return hold_lease(argv[2]);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_claim_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_takeover_after_lapse, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dead_holder_lapses_at_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_heartbeat_lost, setup, teardown),
                cmocka_unit_test_setup_teardown(test_heartbeat_renews, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_released_at_stop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unstored_keeps_the_lease, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unclean_restart_settles, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_applies_the_row, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revoke_while_heartbeat_lost, setup, teardown),
                cmocka_unit_test_setup_teardown(test_two_instances_commit, setup, teardown),
        };
        if (!sfx_pg_url()) {
                fprintf(stderr, "SKIP: no PostgreSQL store (VOUCH_TEST_STORE_URL; test/pg/pg-harness.sh)\n");
                return 77;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
