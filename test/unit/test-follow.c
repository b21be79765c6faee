/* SPDX-License-Identifier: Apache-2.0 */
/* Two vouchd instances in this process on one PostgreSQL store (issue 18, docs/scale-out.md):
 * what one writes to a device (an enrollment, an admin's approval, revocation or golden
 * assignment) reaches the other within a second through the change feed (vouchd_follow on
 * each one's API thread), and the instance that holds the device's lease acts on it: a
 * revocation made elsewhere gets its UNTRUSTED verdict there and closes the session; a golden
 * set assigned elsewhere judges its next attestation. Needs VOUCH_TEST_STORE_URL (run by
 * test/pg/pg-harness.sh); skipped (77) without it. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>
#include <cmocka.h>

#include "admin.h"
#include "api-internal.h"
#include "api.h"
#include "lease.h"
#include "server-fixture.h"
#include "tlsconn.h"

/* the bound: an admin action at one instance takes effect at the holder within 1 s */
#define WITHIN_MS 1000

static const char *url;

typedef struct two {
        sfx a, b;       /* a attests the device (and holds its lease); b is where the admin acts */
} two;

static double now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec * 1e3 + (double) t.tv_nsec / 1e6;
}

/* Both instances on an empty store (emptied by a's setup), each following the other from its API thread. enrolled:
 * a's device is enrolled (at a) before b starts. */
static two *start_two(bool enrolled) {
        two *t = calloc(1, sizeof(*t));
        assert_non_null(t);
        sfx_setup_shared(&t->a, enrolled, url, "a", true);
        sfx_setup_shared(&t->b, false, url, "b", false);
        assert_int_equal(api_start(&t->a.d), 0);
        assert_int_equal(api_start(&t->b.d), 0);
        assert_int_equal(vouchd_follow_start(&t->a.d), 0);
        assert_int_equal(vouchd_follow_start(&t->b.d), 0);
        return t;
}

static int setup_enrolled(void **state) {
        *state = start_two(true);
        return 0;
}

static int setup_empty(void **state) {
        *state = start_two(false);
        return 0;
}

static int teardown(void **state) {
        two *t = *state;
        /* the API threads (and their followers) first: vouchd_free closes the store before
         * it stops them (vouchd_stop stops them first in vouchd) */
        api_stop(&t->a.d);
        api_stop(&t->b.d);
        sfx_teardown(&t->b);
        sfx_teardown(&t->a);
        free(t);
        return 0;
}

static device *find(sfx *f, const char *id) {
        pthread_mutex_lock(&f->d.lock);
        device *dev = registry_find_locked(&f->d, id);
        pthread_mutex_unlock(&f->d.lock);
        return dev;
}

/* ---- running an admin action on an instance's API thread, as the API does ---- */

typedef struct api_call {
        vouchd *d;
        device *dev;
        const char *action, *golden;
        int result;
        bool done;
        pthread_mutex_t mu;
        pthread_cond_t cond;
} api_call;

static void api_call_cb(evutil_socket_t fd, short what, void *arg) {
        api_call *c = arg;
        int r;
        if (strcmp(c->action, "revoke") == 0)
                r = device_revoke(c->d, c->dev, "admin");
        else if (strcmp(c->action, "approve") == 0)
                r = device_approve(c->d, c->dev, "admin");
        else
                r = device_assign_golden(c->d, c->dev, c->golden, "admin");
        pthread_mutex_lock(&c->mu);
        c->result = r;
        c->done = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
}

static int admin_at(sfx *f, const char *id, const char *action, const char *golden) {
        api_call c = { .d = &f->d, .dev = find(f, id), .action = action, .golden = golden,
                       .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        assert_non_null(c.dev);
        assert_int_equal(event_base_once(f->d.api->base, -1, EV_TIMEOUT, api_call_cb, &c, NULL), 0);
        pthread_mutex_lock(&c.mu);
        while (!c.done)
                pthread_cond_wait(&c.cond, &c.mu);
        pthread_mutex_unlock(&c.mu);
        return c.result;
}

/* ---- a use of the device's lease besides its session's (lease.h): the lease outlives the
 * session (closed by a revocation) until lease_put ---- */

static void got(vouchd *d, device *dev, int result, const char *holder, void *userdata) {
        *(int *) userdata = result;
}

static void hold(sfx *f) {
        int result = 1;
        assert_int_equal(lease_get(&f->d, sfx_device(f), got, &result), 0);
        vs_flush(f->d.store); /* the claim's answer runs before the queue counts as empty */
        assert_int_equal(result, 0);
}

/* ---- waiting for the follower ---- */

typedef bool (*cond_fn)(sfx *f, const char *id, const void *arg);

/* Milliseconds until cond held (fails after 5 s). */
static double wait_for(sfx *f, const char *id, cond_fn cond, const void *arg, double t0) {
        for (;;) {
                double t = now_ms() - t0;
                if (cond(f, id, arg))
                        return t;
                if (t > 5000)
                        fail_msg("not followed after %.0f ms", t);
                usleep(2000);
        }
}

static bool is_revoked(sfx *f, const char *id, const void *arg) {
        device *dev = find(f, id);
        pthread_mutex_lock(&f->d.lock);
        bool r = dev && dev->rec.revoked && !dev->rec.approved;
        pthread_mutex_unlock(&f->d.lock);
        return r;
}

static bool is_approved(sfx *f, const char *id, const void *arg) {
        device *dev = find(f, id);
        pthread_mutex_lock(&f->d.lock);
        bool r = dev && !dev->rec.revoked && dev->rec.approved;
        pthread_mutex_unlock(&f->d.lock);
        return r;
}

static bool latest_is(sfx *f, const char *id, const void *arg) {
        device *dev = find(f, id);
        pthread_mutex_lock(&f->d.lock);
        bool r = dev && dev->latest && dev->latest_status == *(const int *) arg;
        pthread_mutex_unlock(&f->d.lock);
        return r;
}

static bool has_golden(sfx *f, const char *id, const void *arg) {
        device *dev = find(f, id);
        pthread_mutex_lock(&f->d.lock);
        bool r = dev && strcmp(dev->rec.golden, arg) == 0;
        pthread_mutex_unlock(&f->d.lock);
        return r;
}

static bool is_known(sfx *f, const char *id, const void *arg) {
        return find(f, id) != NULL;
}

static bool has_ak(sfx *f, const char *id, const void *arg) {
        const sfx *from = arg;
        device *dev = find(f, id);
        pthread_mutex_lock(&f->d.lock);
        bool r = dev && dev->rec.ak_public_len == from->ak_len &&
                 memcmp(dev->rec.ak_public, from->ak_pub, from->ak_len) == 0;
        pthread_mutex_unlock(&f->d.lock);
        return r;
}

/* The device's latest verdict as stored (the caller frees it). */
static Vouch__V1__Verdict *stored_latest(sfx *f, const char *id) {
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(f->d.store, id, &v), 0);
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, v.record_len, v.record);
        assert_non_null(sv);
        Vouch__V1__Verdict *out = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        assert_non_null(out);
        assert_int_equal(out->status, v.status);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        vs_verdict_done(&v);
        return out;
}

/* A revocation at b, which does not hold the device: a (its holder) has it in its registry
 * within a second, issues the UNTRUSTED verdict, and closes the agent's session; b wrote the
 * flags only (a's clock stays). An approval at b then reaches a too. */
static void test_revoke_elsewhere_reaches_the_holder(void **state) {
        two *t = *state;
        sfx *a = &t->a, *b = &t->b;
        fconn *c;
        struct session *s = sfx_connect(a, &c);
        assert_int_equal(sfx_attest(a, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        hold(a);
        vs_flush(a->d.store);
        vs_device before;
        assert_int_equal(vs_device_get(b->d.store, a->id, &before), 0);
        assert_true(before.has_last);
        double t0 = now_ms();
        assert_int_equal(admin_at(b, a->id, "revoke", NULL), 0);
        double applied = wait_for(a, a->id, is_revoked, NULL, t0);
        int untrusted = VOUCH__V1__TRUST_STATUS__UNTRUSTED;
        double verdict = wait_for(a, a->id, latest_is, &untrusted, t0);
        print_message("revoked at b: in a's registry after %.0f ms, a's UNTRUSTED verdict committed after %.0f ms\n",
                      applied, verdict);
        assert_true(verdict < WITHIN_MS);
        /* the verdict is a's, in the store, with the revocation's finding */
        Vouch__V1__Verdict *v = stored_latest(b, a->id);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        assert_string_equal(v->verifier_id, a->d.verifier_id);
        assert_int_equal(v->n_findings, 1);
        assert_string_equal(v->findings[0]->rule, "revoked");
        assert_int_equal(v->sequence, 2);
        vouch__v1__verdict__free_unpacked(v, NULL);
        /* and the session is closed */
        for (int i = 0; i < 100 && !c->flushing; i++) {
                sfx_pump(a);
                usleep(2000);
        }
        assert_true(c->flushing);
        /* b's write took nothing of a's row but the flags */
        vs_device after;
        assert_int_equal(vs_device_get(b->d.store, a->id, &after), 0);
        assert_true(after.revoked);
        assert_false(after.approved);
        assert_true(after.has_last);
        assert_int_equal(after.clock, before.clock);
        assert_int_equal(after.reset_count, before.reset_count);
        vs_device_done(&before);
        vs_device_done(&after);
        /* an approval at b reaches a as well (no verdict: the device attests again) */
        t0 = now_ms();
        assert_int_equal(admin_at(b, a->id, "approve", NULL), 0);
        applied = wait_for(a, a->id, is_approved, NULL, t0);
        print_message("approved at b: in a's registry after %.0f ms\n", applied);
        assert_true(applied < WITHIN_MS);
        lease_put(&a->d, sfx_device(a));
}

/* A golden set assigned at b: a, the holder, closes the session and judges the device's next
 * attestation by it. */
static void test_golden_elsewhere_judges_the_next_attestation(void **state) {
        two *t = *state;
        sfx *a = &t->a, *b = &t->b;
        sfx_add_golden(a, "dev2");
        sfx_add_golden(b, "dev2");
        fconn *c;
        struct session *s = sfx_connect(a, &c);
        assert_int_equal(sfx_attest(a, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        hold(a);
        device *dev = sfx_device(a);
        pthread_mutex_lock(&a->d.lock);
        assert_string_equal(dev->latest_golden, "dev");
        pthread_mutex_unlock(&a->d.lock);
        double t0 = now_ms();
        assert_int_equal(admin_at(b, a->id, "golden", "dev2"), 0);
        double applied = wait_for(a, a->id, has_golden, "dev2", t0);
        print_message("golden set assigned at b: in a's registry after %.0f ms\n", applied);
        assert_true(applied < WITHIN_MS);
        for (int i = 0; i < 100 && !c->flushing; i++) {
                sfx_pump(a);
                usleep(2000);
        }
        assert_true(c->flushing);
        s = sfx_connect(a, &c);
        assert_int_equal(sfx_attest(a, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        pthread_mutex_lock(&a->d.lock);
        assert_string_equal(dev->latest_golden, "dev2");
        pthread_mutex_unlock(&a->d.lock);
        Vouch__V1__Verdict *v = stored_latest(b, a->id);
        assert_string_equal(v->golden_name, "dev2");
        vouch__v1__verdict__free_unpacked(v, NULL);
        lease_put(&a->d, dev);
}

/* A device enrolled at a appears in b's registry (by id and by EK key), and its
 * re-enrollment with a new AK replaces the AK there. */
static void test_enrollment_elsewhere_appears(void **state) {
        two *t = *state;
        sfx *a = &t->a, *b = &t->b;
        assert_null(find(b, a->id));
        vs_device rec = { .ek_public = a->ek_pub, .ek_public_len = a->ek_len, .ak_public = a->ak_pub,
                          .ak_public_len = a->ak_len, .approved = true, .enrolled_at = SFX_WALL };
        snprintf(rec.id, sizeof(rec.id), "%s", a->id);
        pthread_mutex_lock(&a->d.lock);
        assert_non_null(registry_add_locked(&a->d, &rec));
        pthread_mutex_unlock(&a->d.lock);
        double t0 = now_ms();
        assert_int_equal(vs_device_put_enrollment(a->d.store, &rec, NULL, NULL), 0);
        vs_flush(a->d.store);
        double seen = wait_for(b, a->id, is_known, NULL, t0);
        print_message("enrolled at a: in b's registry after %.0f ms\n", seen);
        assert_true(seen < WITHIN_MS);
        device *at_b = find(b, a->id), *at_a = sfx_device(a);
        pthread_mutex_lock(&b->d.lock);
        assert_ptr_equal(registry_find_key_locked(&b->d, at_a->ek_key), at_b);
        assert_true(at_b->rec.approved);
        /* b does not use the device: its AK is checked, not kept, and loads when used */
        pthread_mutex_lock(&at_b->mu);
        assert_null(at_b->ak);
        assert_non_null(device_ak_locked(at_b));
        assert_non_null(at_b->ak);
        pthread_mutex_unlock(&at_b->mu);
        pthread_mutex_unlock(&b->d.lock);
        assert_true(has_ak(b, a->id, a));
        /* the same device enrolls again with a new AK (a's session would) */
        qb_key_free(&a->key);
        qb_key_new(&a->key);
        TPM2B_PUBLIC pub = { .publicArea = a->key.pub };
        size_t off = 0;
        assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, a->ak_pub, sizeof(a->ak_pub), &off), TSS2_RC_SUCCESS);
        a->ak_len = off;
        rec.ak_public_len = a->ak_len;
        t0 = now_ms();
        assert_int_equal(vs_device_put_enrollment(a->d.store, &rec, NULL, NULL), 0);
        vs_flush(a->d.store);
        seen = wait_for(b, a->id, has_ak, a, t0);
        print_message("enrolled again at a: b has the new AK after %.0f ms\n", seen);
        assert_true(seen < WITHIN_MS);
        assert_ptr_equal(find(b, a->id), at_b); /* the same device, once in the registry */
        pthread_mutex_lock(&b->d.lock);
        assert_int_equal(b->d.n_devices, 1);
        /* the AK loaded above replaced, and the new one not kept either: it loads when used */
        pthread_mutex_lock(&at_b->mu);
        assert_null(at_b->ak);
        assert_non_null(device_ak_locked(at_b));
        pthread_mutex_unlock(&at_b->mu);
        pthread_mutex_unlock(&b->d.lock);
}

/* A device enrolled and attested at a before b's change feed has it: b's verdict follower
 * passes its verdict by (a device it does not know), so the change feed that adds the device
 * loads its latest verdict with it. */
static void test_enrolled_elsewhere_with_its_verdict(void **state) {
        two *t = *state;
        sfx *a = &t->a, *b = &t->b;
        event_del(b->d.follow_ev); /* b's change feed polled by hand, below */
        vs_device rec = { .ek_public = a->ek_pub, .ek_public_len = a->ek_len, .ak_public = a->ak_pub,
                          .ak_public_len = a->ak_len, .approved = true, .enrolled_at = SFX_WALL };
        snprintf(rec.id, sizeof(rec.id), "%s", a->id);
        pthread_mutex_lock(&a->d.lock);
        assert_non_null(registry_add_locked(&a->d, &rec));
        pthread_mutex_unlock(&a->d.lock);
        assert_int_equal(vs_device_put_enrollment(a->d.store, &rec, NULL, NULL), 0);
        vs_flush(a->d.store);
        fconn *c;
        struct session *s = sfx_connect(a, &c);
        assert_int_equal(sfx_attest(a, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        vs_verdict v;
        assert_int_equal(vs_verdict_latest(a->d.store, a->id, &v), 0);
        /* b's verdict follower (its API thread) went past it */
        double t0 = now_ms();
        while (atomic_load(&b->d.published) < v.global_sequence) {
                if (now_ms() - t0 > 5000)
                        fail_msg("b's verdict follower did not pass global sequence %llu",
                                 (unsigned long long) v.global_sequence);
                usleep(2000);
        }
        assert_null(find(b, a->id));
        assert_true(vouchd_follow(&b->d) >= 1);
        device *at_b = find(b, a->id);
        assert_non_null(at_b);
        pthread_mutex_lock(&b->d.lock); /* (copied: no assertion fails with the lock held) */
        bool same = at_b->latest && at_b->latest_len == v.record_len &&
                    memcmp(at_b->latest, v.record, v.record_len) == 0;
        int status = at_b->latest ? at_b->latest_status : -1;
        uint64_t sequence = at_b->latest_sequence;
        pthread_mutex_unlock(&b->d.lock);
        assert_int_equal(status, VOUCH__V1__TRUST_STATUS__TRUSTED);
        assert_int_equal(sequence, v.sequence);
        assert_true(same);
        vs_verdict_done(&v);
        session_event(s, TCONN_EOF, "");
        sfx_pump(a);
}

/* A revocation at b while a held the device, but a let go of it before it followed (its
 * agent left): nobody holds it, so a, following, claims it, and the claim (which reloads
 * the revoked device) issues the UNTRUSTED verdict that the holder would have; following it
 * again (as b does, its own change) issues none (it saw it done). */
static void test_revocation_after_the_holder_let_go(void **state) {
        two *t = *state;
        sfx *a = &t->a, *b = &t->b;
        /* a's follower stopped, to let go of the lease between b's write and a's poll */
        event_del(a->d.follow_ev);
        fconn *c;
        struct session *s = sfx_connect(a, &c);
        assert_int_equal(sfx_attest(a, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        hold(a);
        assert_int_equal(admin_at(b, a->id, "revoke", NULL), 0);
        lease_put(&a->d, sfx_device(a));
        session_event(s, TCONN_EOF, ""); /* the agent leaves: the session's use goes too */
        sfx_pump(a);
        vs_lease_result l;
        assert_int_equal(vs_lease_get(b->d.store, a->id, &l), -ENOENT); /* released */
        Vouch__V1__Verdict *v = stored_latest(b, a->id);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__TRUSTED); /* nobody issued it */
        vouch__v1__verdict__free_unpacked(v, NULL);
        assert_true(vouchd_follow(&a->d) >= 1);
        vs_flush(a->d.store);
        v = stored_latest(b, a->id);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        assert_string_equal(v->findings[0]->rule, "revoked");
        uint64_t seq = v->sequence;
        vouch__v1__verdict__free_unpacked(v, NULL);
        /* once is enough: following it again (another instance would) issues nothing */
        device *dev = sfx_device(a);
        pthread_mutex_lock(&a->d.lock);
        dev->rec.change = 0;
        dev->rec.approved = true;
        dev->rec.revoked = false;
        pthread_mutex_unlock(&a->d.lock);
        a->d.follow_after = 0;
        assert_true(vouchd_follow(&a->d) >= 1);
        vs_flush(a->d.store);
        v = stored_latest(b, a->id);
        assert_int_equal(v->sequence, seq);
        vouch__v1__verdict__free_unpacked(v, NULL);
}

/* A revocation at the holder itself is today's: the verdict with the row, at once; b
 * follows it in its registry. */
static void test_revoke_at_the_holder(void **state) {
        two *t = *state;
        sfx *a = &t->a, *b = &t->b;
        fconn *c;
        struct session *s = sfx_connect(a, &c);
        assert_int_equal(sfx_attest(a, s, c), VOUCH__V1__TRUST_STATUS__TRUSTED);
        hold(a);
        double t0 = now_ms();
        assert_int_equal(admin_at(a, a->id, "revoke", NULL), 0);
        Vouch__V1__Verdict *v = stored_latest(a, a->id);
        assert_int_equal(v->status, VOUCH__V1__TRUST_STATUS__UNTRUSTED);
        vouch__v1__verdict__free_unpacked(v, NULL);
        double seen = wait_for(b, a->id, is_revoked, NULL, t0);
        print_message("revoked at the holder: in b's registry after %.0f ms\n", seen);
        assert_true(seen < WITHIN_MS);
        lease_put(&a->d, sfx_device(a));
}

int main(void) {
        url = sfx_pg_url();
        if (!url) {
                fprintf(stderr, "test-follow: needs VOUCH_TEST_STORE_URL (a PostgreSQL store: test/pg/pg-harness.sh)\n");
                return 77;
        }
        evthread_use_pthreads(); /* the API threads kick sessions on the test's loops */
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_revoke_elsewhere_reaches_the_holder, setup_enrolled, teardown),
                cmocka_unit_test_setup_teardown(test_golden_elsewhere_judges_the_next_attestation, setup_enrolled,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_enrollment_elsewhere_appears, setup_empty, teardown),
                cmocka_unit_test_setup_teardown(test_enrolled_elsewhere_with_its_verdict, setup_empty, teardown),
                cmocka_unit_test_setup_teardown(test_revocation_after_the_holder_let_go, setup_enrolled, teardown),
                cmocka_unit_test_setup_teardown(test_revoke_at_the_holder, setup_enrolled, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
