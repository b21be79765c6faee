/* SPDX-License-Identifier: Apache-2.0 */
/* Device leases on a shared store (vouchd.shared; docs/scale-out.md): one instance attests
 * a device and issues its verdicts at a time, the one that holds its lease (lease.c).
 *
 * A lease is held by this instance while at least one user in it needs it: the device's
 * agent session, or an admin action that acts as the holder for a moment. The first use
 * claims it (vs_lease_claim, through the writer's group commit), the last drop releases it
 * (vs_lease_release). The instance's heartbeat (lease_heartbeat_start) keeps every lease
 * it holds valid; when the heartbeat cannot be committed before its local deadline, every
 * lease is treated as lost: device.leased is cleared, sessions are closed (session_kick),
 * and each device is claimed again before its next use.
 *
 * With a store of its own (SQLite, vouchd.shared false) every call succeeds at once and
 * nothing is written. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "registry.h"

/* How long a lease outlives the holder's last committed heartbeat (ms). */
#define LEASE_TTL_MS 10000

/* result: 0 the lease is this instance's (when newly claimed, dev's row was reloaded from the
 * store first: another instance may have changed its clock, AK, approval or golden
 * assignment); -EBUSY another instance holds it (holder names it); another <0: the store
 * failed (nothing was claimed). Runs once, on the store's writer thread, or on the caller's
 * thread when this instance holds the lease already; the use is taken only on 0. */
typedef void (*lease_fn)(vouchd *d, device *dev, int result, const char *holder, void *userdata);

/* Takes a use of dev's lease. Returns <0 when nothing was queued (cb is not called). */
int lease_get(vouchd *d, device *dev, lease_fn cb, void *userdata);
/* Drops a use taken by lease_get (result 0); the last one releases the lease. */
void lease_put(vouchd *d, device *dev);

/* The heartbeat: a timer renewing every lease of this instance
 * every LEASE_TTL_MS / 3 (vs_lease_renew_all), and the local deadline after which they are
 * given up. At stop: every lease released before the store closes. */
int lease_heartbeat_start(vouchd *d);
void lease_release_all(vouchd *d);
