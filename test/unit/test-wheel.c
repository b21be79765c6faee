/* SPDX-License-Identifier: Apache-2.0 */
/* The expiry wheel (registry.h): the sweep is handed exactly the devices whose TRUSTED
 * verdict's deadline has passed, each once, whatever the clocks do; and it is told to walk
 * every device when the wall clock moved against the monotonic one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vouchd.h"

#define N 8
#define WALL0 1700000000
#define MONO0 5000

typedef struct fix {
        vouchd d;
        device dev[N];
        uint8_t rec[1];
        /* what the last take handed over, in order */
        device *got[N * 2];
        size_t n;
        bool put_back; /* the callback puts each device back (as a failed STALE would) */
} fix;

static void took(vouchd *d, device *dev, void *ud) {
        fix *f = ud;
        assert_true(f->n < N * 2);
        assert_false(dev->in_wheel);
        f->got[f->n++] = dev;
        if (f->put_back)
                registry_wheel_update_locked(d, dev);
}

static int take(fix *f, int64_t mono, int64_t wall) {
        f->n = 0;
        return registry_wheel_take_due_locked(&f->d, mono, wall, took, f);
}

static bool got(const fix *f, const device *dev) {
        for (size_t i = 0; i < f->n; i++)
                if (f->got[i] == dev)
                        return true;
        return false;
}

/* dev's latest verdict: TRUSTED until mono `deadline` */
static void trusted(fix *f, device *dev, int64_t deadline) {
        dev->latest = f->rec;
        dev->latest_status = VOUCH__V1__TRUST_STATUS__TRUSTED;
        dev->latest_deadline = deadline;
        dev->stale_queued = false;
        registry_wheel_update_locked(&f->d, dev);
}

static int setup(void **state) {
        fix *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->d.wheel = calloc(REGISTRY_WHEEL, sizeof(*f->d.wheel));
        assert_non_null(f->d.wheel);
        f->d.wheel_cursor = INT64_MIN;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fix *f = *state;
        free(f->d.wheel);
        free(f);
        return 0;
}

/* Only the devices whose deadline passed, each once; the others stay until theirs does. */
static void test_due_only(void **state) {
        fix *f = *state;
        for (int i = 0; i < N; i++)
                trusted(f, &f->dev[i], MONO0 + 10 * i);
        assert_int_equal(take(f, MONO0 - 1, WALL0 - 1), 0); /* the first sweep: nothing due */
        assert_int_equal(f->n, 0);
        assert_int_equal(take(f, MONO0 + 25, WALL0 + 25), 0);
        assert_int_equal(f->n, 3); /* deadlines 0, 10, 20 */
        for (int i = 0; i < 3; i++)
                assert_true(got(f, &f->dev[i]));
        assert_int_equal(take(f, MONO0 + 26, WALL0 + 26), 0); /* not twice */
        assert_int_equal(f->n, 0);
        /* several seconds at once (a late sweep) */
        assert_int_equal(take(f, MONO0 + 60, WALL0 + 60), 0);
        assert_int_equal(f->n, 4); /* 30, 40, 50, 60 */
        assert_true(got(f, &f->dev[6]));
        assert_false(got(f, &f->dev[7]));
        assert_true(f->dev[7].in_wheel);
}

/* A device attested again before its deadline moves to the new one; one whose verdict is no
 * longer TRUSTED, or whose STALE verdict is queued, leaves the wheel. */
static void test_moves_and_leaves(void **state) {
        fix *f = *state;
        trusted(f, &f->dev[0], MONO0 + 10);
        trusted(f, &f->dev[1], MONO0 + 10);
        trusted(f, &f->dev[2], MONO0 + 10);
        assert_int_equal(take(f, MONO0, WALL0), 0);
        trusted(f, &f->dev[0], MONO0 + 100);            /* attested again */
        f->dev[1].latest_status = VOUCH__V1__TRUST_STATUS__UNTRUSTED;
        registry_wheel_update_locked(&f->d, &f->dev[1]);
        assert_false(f->dev[1].in_wheel);
        f->dev[2].stale_queued = true;                  /* queued by a GET meanwhile */
        registry_wheel_update_locked(&f->d, &f->dev[2]);
        assert_false(f->dev[2].in_wheel);
        assert_int_equal(take(f, MONO0 + 50, WALL0 + 50), 0);
        assert_int_equal(f->n, 0);
        assert_int_equal(take(f, MONO0 + 100, WALL0 + 100), 0);
        assert_int_equal(f->n, 1);
        assert_ptr_equal(f->got[0], &f->dev[0]);
}

/* A device put back (its STALE verdict could not be queued) is handed over again at the
 * next sweep, never lost in a second already swept; so is a deadline that had passed
 * already when it was set. */
static void test_put_back_is_seen_next(void **state) {
        fix *f = *state;
        trusted(f, &f->dev[0], MONO0 + 5);
        assert_int_equal(take(f, MONO0, WALL0), 0);
        f->put_back = true;
        assert_int_equal(take(f, MONO0 + 5, WALL0 + 5), 0);
        assert_int_equal(f->n, 1);
        assert_true(f->dev[0].in_wheel);
        assert_int_equal(f->dev[0].wheel_key, MONO0 + 6);
        assert_int_equal(take(f, MONO0 + 6, WALL0 + 6), 0);
        assert_int_equal(f->n, 1);
        f->put_back = false;
        assert_int_equal(take(f, MONO0 + 7, WALL0 + 7), 0);
        assert_int_equal(f->n, 1);
        assert_false(f->dev[0].in_wheel);
        trusted(f, &f->dev[1], MONO0 + 2); /* already past: the next second */
        assert_int_equal(f->dev[1].wheel_key, MONO0 + 8);
        assert_int_equal(take(f, MONO0 + 8, WALL0 + 8), 0);
        assert_int_equal(f->n, 1);
        assert_ptr_equal(f->got[0], &f->dev[1]);
}

/* Deadlines further ahead than the wheel's seconds wait for their lap; a sweep that comes
 * after more than a whole turn still hands over every device due. */
static void test_laps(void **state) {
        fix *f = *state;
        trusted(f, &f->dev[0], MONO0 + 3);
        trusted(f, &f->dev[1], MONO0 + 3 + REGISTRY_WHEEL);     /* the same bucket, a lap later */
        trusted(f, &f->dev[2], MONO0 + 3 + 3 * REGISTRY_WHEEL);
        assert_int_equal(take(f, MONO0, WALL0), 0);
        assert_int_equal(take(f, MONO0 + 3, WALL0 + 3), 0);
        assert_int_equal(f->n, 1);
        assert_ptr_equal(f->got[0], &f->dev[0]);
        assert_int_equal(take(f, MONO0 + 3 + REGISTRY_WHEEL, WALL0 + 3 + REGISTRY_WHEEL), 0);
        assert_int_equal(f->n, 1);
        assert_ptr_equal(f->got[0], &f->dev[1]);
        /* the sweep stalled for two turns and more */
        assert_int_equal(take(f, MONO0 + 10 + 3 * REGISTRY_WHEEL, WALL0 + 10 + 3 * REGISTRY_WHEEL), 0);
        assert_int_equal(f->n, 1);
        assert_ptr_equal(f->got[0], &f->dev[2]);
}

/* A step of the wall clock (either way, two seconds or more) asks for a walk of every device
 * (a verdict also expires at its wall-clock expires_at), once; the one-second wobble of
 * two whole-second clocks does not. A monotonic clock that went back (a test's fake one)
 * asks for a walk too, and the wheel goes on from there. */
static void test_clock_steps(void **state) {
        fix *f = *state;
        trusted(f, &f->dev[0], MONO0 + 50);
        assert_int_equal(take(f, MONO0, WALL0), 0);
        assert_int_equal(take(f, MONO0 + 1, WALL0 + 2), 0);     /* wobble */
        assert_int_equal(take(f, MONO0 + 2, WALL0 + 2), 0);
        assert_int_equal(take(f, MONO0 + 3, WALL0 + 603), -1);  /* stepped forward */
        assert_int_equal(f->n, 0);
        assert_int_equal(take(f, MONO0 + 4, WALL0 + 604), 0);   /* once */
        assert_int_equal(take(f, MONO0 + 5, WALL0 - 900), -1);  /* stepped back */
        assert_int_equal(take(f, MONO0 + 6, WALL0 - 899), 0);
        assert_int_equal(take(f, MONO0 + 2, WALL0 - 903), -1);  /* monotonic back */
        trusted(f, &f->dev[1], MONO0 + 1);                     /* before the old cursor */
        assert_int_equal(take(f, MONO0 + 3, WALL0 - 902), 0);
        assert_int_equal(f->n, 1);
        assert_ptr_equal(f->got[0], &f->dev[1]);
        assert_int_equal(take(f, MONO0 + 50, WALL0 - 855), 0);
        assert_int_equal(f->n, 1);
        assert_ptr_equal(f->got[0], &f->dev[0]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_due_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_moves_and_leaves, setup, teardown),
                cmocka_unit_test_setup_teardown(test_put_back_is_seen_next, setup, teardown),
                cmocka_unit_test_setup_teardown(test_laps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_clock_steps, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
