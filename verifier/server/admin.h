/* SPDX-License-Identifier: Apache-2.0 */
/* An admin's actions on a device (the API's approve, revoke and golden assignment; admin.c).
 * Each is durable before it returns: written to the store, then applied in memory (a
 * revocation holds in memory from the start, and is undone there when it cannot be written).
 * They wait for the store: call them from the API's thread, never from an event loop. */
#pragma once

typedef struct vouchd vouchd;
typedef struct device device;

/* 0, or -EIO when the store could not record it (the device is unchanged). */
int device_approve(vouchd *d, device *dev, const char *who);
/* The device row (revoked, not approved) and its UNTRUSTED verdict in one transaction; its
 * agent's session is closed. 0, or -EIO (the device is unchanged). */
int device_revoke(vouchd *d, device *dev, const char *who);
/* name "" is the default set. -ENOENT when no such set is loaded; -EIO. Its agent's session
 * is closed so that it is judged by the new set at once. */
int device_assign_golden(vouchd *d, device *dev, const char *name, const char *who);
