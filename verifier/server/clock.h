/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's clocks: the wall clock (what signed verdicts say) and the monotonic one (how
 * long things last, whatever the wall clock does). One place, so that unit tests can drive
 * time (vclock_fake) without sleeping; libevent's timers are not affected. Any thread. */
#pragma once

#include <stdint.h>
#include <time.h>

/* Unix seconds. */
int64_t vclock_wall(void);
/* CLOCK_MONOTONIC, in seconds and as a timespec. */
int64_t vclock_mono(void);
void vclock_mono_ts(struct timespec *ret);

/* Tests only: from now on both clocks read the given values (monotonic in whole seconds),
 * moved on only by vclock_fake_advance. */
void vclock_fake(int64_t wall, int64_t mono);
void vclock_fake_advance(int64_t secs);
