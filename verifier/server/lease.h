/* SPDX-License-Identifier: Apache-2.0 */
/* Device leases on a shared store (vouchd.shared; docs/scale-out.md): one instance attests
 * a device and issues its verdicts at a time, the one that holds its lease (lease.c).
 *
 * A lease is held by this instance while at least one user in it needs it: the device's
 * agent session, or the sweep (or an admin action) that acts as the holder for a moment. The
 * first use claims it (vs_lease_claim, through the writer's group commit), the last drop
 * releases it (vs_lease_release). The instance's heartbeat (lease_heartbeat_start) keeps
 * every lease it holds valid; when the heartbeat cannot be committed before its local
 * deadline, every lease is treated as lost: device.leased is cleared, sessions are closed
 * (session_kick), new claims are refused until a renewal commits again, and each device is
 * claimed again before its next use.
 *
 * With a store of its own (SQLite, vouchd.shared false) every call succeeds at once and
 * nothing is written. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "registry.h"

/* How long a lease outlives the holder's last committed heartbeat (ms). */
#define LEASE_TTL_MS 10000
/* The heartbeat's period, and how long before the database's end of the heartbeat this
 * instance stops using its leases: ttl after it queued the last renewal that committed (the
 * database counts from later: the transaction's start), less this margin for clock rates and
 * a late timer. */
#define LEASE_RENEW_MS (LEASE_TTL_MS / 3)
#define LEASE_MARGIN_MS 2000

/* The instance's side of its leases (vouchd.leases). */
typedef struct lease_state {
        bool manual;                    /* tests: no heartbeat thread, they call lease_heartbeat_tick */
        /* the local deadline passed (or a renewal found the heartbeat lapsed): every lease was
         * given up, claims are refused until the unused rows are released and a renewal commits */
        atomic_bool lost;
        atomic_ullong epoch;            /* counts the losses: a claim queued before one is void */
        atomic_ullong held;             /* devices with device.leased set (/metrics) */
        atomic_ullong refusals;         /* claims refused: another instance held the device */
        atomic_ullong lost_leases;      /* leases given up when the heartbeat was lost */
        atomic_bool retry_release;      /* a release failed: the heartbeat queues it again */
        atomic_bool closed;             /* lease_release_all ran: the store closes, nothing more is queued */
        /* CLOCK_MONOTONIC ms (vclock): the local deadline, leases usable before it (0: none);
         * written under mu, read without it */
        atomic_llong deadline_ms;
        pthread_mutex_t mu;             /* the fields below; a leaf (only the store's enqueue under it) */
        int64_t renewed_ms;             /* when the last committed renewal was queued (0: none yet) */
        int64_t next_renew_ms;          /* when the heartbeat renews next */
        bool recovering;                /* a recovery's renewal (after a loss) is on its way */
        bool thread_started, stop;
        pthread_t thread;
        pthread_cond_t wake;
} lease_state;

/* vouchd_init: the heartbeat's lock and condition. */
void lease_init(vouchd *d);

/* result: 0 the lease is this instance's; -EBUSY another instance holds it (holder names
 * it); -ENOLINK this instance's heartbeat was lost meanwhile; another <0: the store failed
 * (nothing was claimed). When newly claimed, dev's row and latest verdict were reloaded from
 * the store first (another instance may have changed its clock, AK, approval or golden
 * assignment, or issued verdicts; the row is applied as the change feed's are,
 * registry_apply_locked), and a TRUSTED latest verdict was superseded: by a STALE one when
 * the claim took the lease over from an instance whose heartbeat had lapsed (it may have
 * shown a newer one it never stored), by an UNTRUSTED one when the device is revoked (its
 * holder would have issued it). Runs once, on the store's writer thread, or on the caller's
 * thread when this instance holds the lease already; the use is taken only on 0. */
typedef void (*lease_fn)(vouchd *d, device *dev, int result, const char *holder, void *userdata);

/* Takes a use of dev's lease. Returns <0 when nothing was queued (cb is not called): -ENOLINK
 * while the heartbeat is lost (or its deadline passed), -ESHUTDOWN once the leases were
 * released at stop, or the store's error. */
int lease_get(vouchd *d, device *dev, lease_fn cb, void *userdata);
/* Drops a use taken by lease_get (result 0); the last one releases the lease. */
void lease_put(vouchd *d, device *dev);
/* Whether this instance may attest dev and issue its verdicts now: always with a store of
 * its own; with a shared one, dev is leased and the heartbeat's local deadline has not
 * passed. d->lock held. */
bool lease_held_locked(vouchd *d, const device *dev);

/* Whether this instance's heartbeat runs (a renewal committed, none lost since, the local
 * deadline not passed): else no device is claimed (/healthz: not ready). */
bool lease_heartbeat_alive(vouchd *d);
/* The heartbeat: renews every lease of this instance at once (and waits for the commit:
 * <0 when it fails), then every LEASE_RENEW_MS (vs_lease_renew_all) from a thread of its own
 * (not with manual set), which also gives every lease up when the local deadline passes. */
int lease_heartbeat_start(vouchd *d);
/* One step of the heartbeat (what its thread runs; tests call it by hand, with the fake
 * clock): gives every lease up when the local deadline has passed; queues a renewal when one
 * is due, after the release of every unused row that may be this instance's when the
 * leases were lost (but a device's whose shown verdict is not stored: device.unstored) or a
 * release failed. */
void lease_heartbeat_tick(vouchd *d);
/* At stop, before the store closes (idempotent): stops the heartbeat and releases every
 * lease (waits for the commit); from then on lease_get fails and lease_put only counts. */
void lease_release_all(vouchd *d);
/* At start, on a shared store (verdict_settle_at_start): the devices whose latest verdict
 * is TRUSTED and may be superseded, after this instance's unclean previous run (previous_clean
 * false) or because the device is revoked, are claimed one by one; those granted get their
 * STALE (or revoked: UNTRUSTED) verdict and are released. One held by a live instance is
 * left to it: that one took the lease over from this instance (and superseded the verdict),
 * or claimed it after this one released it, which it does only once what it showed of the
 * device is stored (device.unstored). Then vs_run_settled. This replaces, on a shared
 * store, the plan of acting on previous_clean and lapsed at a device's first claim: a
 * restart within the ttl finds the crashed run's heartbeat still running (lapsed false).
 * Waits for the commits; -EIO when one failed. */
int lease_settle_at_start(vouchd *d, bool previous_clean, size_t *ret_stale, size_t *ret_revoked);
