/* SPDX-License-Identifier: Apache-2.0 */
/* An admin's actions on a device (the API's approve, revoke and golden assignment; admin.c).
 * Each is durable before it returns: written to the store, then applied in memory (a
 * revocation holds in memory from the start, and is undone there when it cannot be written).
 * They wait for the store: call them from the API's thread, never from an event loop.
 *
 * On a store that several instances share (vouchd.shared) each takes the device's lease
 * first (lease.h). Granted: this instance acts as the holder, as with a store of its own
 * (a revocation's UNTRUSTED verdict, the session closed), then lets the lease go. Held by
 * another instance, or while this instance's heartbeat is lost (lease.h: it holds no
 * device then): only the action's fields are written (vs_device_put_admin); the holder
 * follows within FOLLOW_EVERY_MS (vouchd_follow, device_follow) and acts there, or the
 * device's next holder when it claims it (lease.c). */
#pragma once

typedef struct vouchd vouchd;
typedef struct device device;
typedef struct registry_applied registry_applied;

/* 0, or -EIO when the store could not record it (the device is unchanged). */
int device_approve(vouchd *d, device *dev, const char *who);
/* The device row (revoked, not approved) and its UNTRUSTED verdict in one transaction; its
 * agent's session is closed. 0, or -EIO (the device is unchanged). */
int device_revoke(vouchd *d, device *dev, const char *who);
/* name "" is the default set. -ENOENT when no such set is loaded; -EIO. Its agent's session
 * is closed so that it is judged by the new set at once. */
int device_assign_golden(vouchd *d, device *dev, const char *name, const char *who);
/* The part of an admin action taken at another instance that falls to this one, once
 * vouchd_follow applied the device's row (registry_apply_locked; API thread, as the actions
 * above): a revocation gets its UNTRUSTED verdict from the device's holder (or, when no
 * instance holds it, from whichever claims it first, if its stored latest verdict is still
 * TRUSTED), and a revocation or another golden set closes the device's session here, if it
 * has one (it reconnects: refused, or judged by the new set at once). */
void device_follow(vouchd *d, const registry_applied *a);
