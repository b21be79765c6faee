/* SPDX-License-Identifier: Apache-2.0 */
#include <stdatomic.h>
#include <stdbool.h>

#include "clock.h"

static atomic_bool fake;
static _Atomic int64_t fake_wall, fake_mono;

int64_t vclock_wall(void) {
        if (atomic_load_explicit(&fake, memory_order_relaxed))
                return atomic_load(&fake_wall);
        return (int64_t) time(NULL);
}

void vclock_mono_ts(struct timespec *ret) {
        if (atomic_load_explicit(&fake, memory_order_relaxed)) {
                *ret = (struct timespec) { .tv_sec = (time_t) atomic_load(&fake_mono) };
                return;
        }
        clock_gettime(CLOCK_MONOTONIC, ret);
}

int64_t vclock_mono(void) {
        struct timespec t;
        vclock_mono_ts(&t);
        return (int64_t) t.tv_sec;
}

void vclock_fake(int64_t wall, int64_t mono) {
        atomic_store(&fake_wall, wall);
        atomic_store(&fake_mono, mono);
        atomic_store(&fake, true);
}

void vclock_fake_advance(int64_t secs) {
        atomic_fetch_add(&fake_wall, secs);
        atomic_fetch_add(&fake_mono, secs);
}
