/* SPDX-License-Identifier: Apache-2.0 */
/* The device registry and the golden sets shared by all event loops: who owns what.
 *
 * Lock order (take them in this order, never the reverse; each is held briefly):
 *   keys_lock (verdict.c: the verdict keys and verdict-keys.pem)
 *   -> vouchd.seq_lock (verdict numbering and signing; d->keys)
 *   -> vouchd.lock (the registry, the golden table, every device's rec and latest verdict)
 *   -> device.mu (a device's attestation state and AK, while a quote is verified)
 *   -> leaves: the store's locks (store-sqlite.c), loop.done_lock, the API's watchers,
 *      vouchd.leases.mu (lease.c: it is held only while the store queues a write).
 * Next to each shared field below: the lock it is read and written under, and which thread
 * writes it (loops: the event loops; writer: the store's writer thread; API: the API
 * thread; main: start and SIGHUP). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "attest.h"
#include "golden.h"
#include "quote.h"
#include "store.h"

#define VOUCHD_MAX_GOLDEN 256
#define REGISTRY_WHEEL 4096 /* the expiry wheel's seconds (a power of two) */

struct session;
typedef struct vouchd vouchd;


/* Golden sets loaded from golden_dir, replaced as a whole on SIGHUP. */
typedef struct golden_table {
        atomic_int refs;
        size_t n;
        vc_golden *sets[VOUCHD_MAX_GOLDEN];
} golden_table;

golden_table *golden_table_ref(golden_table *t);
void golden_table_unref(golden_table *t);
const vc_golden *golden_table_find(const golden_table *t, const char *name);
int golden_table_load(const char *dir, golden_table **ret);

/* A known device: enrolled record plus its in-memory per-boot attestation state. */
typedef struct device {
        pthread_mutex_t mu;             /* state and ak, while an attestation is verified */
        /* the enrolled record (lock; written by loops: enrollment, by API: approval,
         * revocation (verdict_set_access, under seq_lock too) and golden assignment) */
        vs_device rec;
        vc_device_state state;          /* mu; loops (the attestation that holds mu) */
        /* what the store has of state's clock (mu; loops): see clock_due() in session.c */
        bool clock_saved;
        uint32_t saved_reset, saved_restart, clock_unsaved;
        /* mu; loops (a re-enrollment's new AK). The enrolled AK parsed (~2.8 KiB): with a store
         * of its own always; with a shared one only while this instance uses the device (NULL
         * otherwise: device_ak_locked loads it from rec.ak_public, lease.c frees it when the
         * lease is released), since every instance keeps every device of the fleet */
        vc_ak *ak;
        struct session *session;        /* lock; loops: the one active session, or NULL */
        /* shared stores (vouchd.shared) only: this instance holds the device's lease (lock;
         * set on the writer thread by a claim's callback once the device was reloaded, cleared
         * by the last lease_put and when the heartbeat is lost: lease.c) */
        bool leased;
        /* lease.c's (lock): the store's lease row may be this instance's (released once unused);
         * uses taken by lease_get and not yet dropped (sessions, the sweep, admin actions);
         * claims queued and not yet answered (no release is queued while one is: its grant
         * would outlive it) */
        bool lease_row;
        unsigned lease_uses, lease_claims;
        /* shared stores (lock; written by verdict.c): the latest verdict in memory is this
         * instance's own and its commit failed, so the store's is older (and may be TRUSTED).
         * The lease row is kept, also when the heartbeat is lost, until a later verdict of the
         * device is stored (the sweep stores the shown one again, or another instance's is
         * read): no other instance claims the device as free and serves the older one. */
        bool unstored;
        /* the latest committed verdict: lock; written only by verdict.c: its commit hand-off
         * (set_latest_locked, on the writer thread; at start by main) and, with a shared
         * store, what other instances committed (verdict_follow, on the API thread;
         * verdict_reload_latest when the device is claimed) */
        uint8_t *latest;                /* serialized SignedVerdict, NULL if none */
        size_t latest_len;
        int latest_status;              /* TrustStatus */
        int64_t latest_expires;         /* wall clock, as signed */
        int64_t latest_deadline;        /* the same on CLOCK_MONOTONIC (verdict_deadline) */
        char latest_golden[129];        /* the golden set it was judged by ("" for none) */
        int64_t latest_golden_version;
        uint64_t latest_sequence;       /* its per-device sequence (0: a stand-in, none) */
        bool stale_queued;              /* lock; API (the sweep) and writer: a STALE verdict is on its way */
        int64_t queued_deadline;        /* seq_lock; any issuer: monotonic expiry of the last verdict queued */
        uint64_t verified;              /* mu; loops: quotes verified, the order of evidence */
        uint64_t issued_ticket;         /* seq_lock; loops: `verified` of the last attestation verdict queued */
        struct device *next;            /* lock; the hash chain (devices are never removed while running) */
        uint8_t ek_key[32];             /* vc_ek_key_id of rec.ek_public (set once when added) */
        struct device *next_key;        /* lock; the hash chain by ek_key */
        /* lock; the expiry wheel (registry_wheel_*): in it while its latest verdict is TRUSTED
         * and no STALE one is queued, under the second its deadline falls in (wheel_key) */
        struct device *wheel_next, *wheel_prev;
        int64_t wheel_key;
        bool in_wheel;
} device;

/* Whether this instance is the one that attests dev and issues its verdicts: always with a
 * store of its own (SQLite), under the device's lease with a shared one. d->lock held. */
#define device_held_locked(d, dev) (!(d)->shared || (dev)->leased)

/* registry.c */
/* Loads every device from the store (at start). With a shared store it first reads where the
 * change feed stands (vs_device_change_last into d->follow_after), so that what vouchd_follow
 * polls afterwards covers every change the load may have missed. */
int registry_load(vouchd *d);
device *registry_find_locked(vouchd *d, const char *id);
device *registry_add_locked(vouchd *d, const vs_device *rec);
/* The device enrolled with this EK key (vc_ek_key_id), whatever its EK public's other fields. */
device *registry_find_key_locked(vouchd *d, const uint8_t key[32]);
void registry_free(vouchd *d);

/* The expiry wheel: the devices whose latest verdict is TRUSTED and may turn STALE, by the
 * second (CLOCK_MONOTONIC, vclock_mono) their deadline falls in, so that the sweep looks
 * only at those due instead of walking every device of the fleet each second (with
 * 100,000 devices on each of 7 instances that walk was a fifth of a core). d->lock held.
 * registry_wheel_update puts dev where its latest verdict says (or takes it out); call it
 * after every change of dev->latest, latest_status, latest_deadline or stale_queued. */
void registry_wheel_update_locked(vouchd *d, device *dev);
/* The devices whose deadline second is at most mono (vclock_mono), in the seconds not swept
 * yet, taken out of the wheel and passed to fn (d->lock held while fn runs; fn may put them
 * back: they go to a later second). Returns -1, taking none, when the sweep has to walk every
 * device instead: the wall clock (wall, vclock_wall) moved against the monotonic one since
 * the last sweep (a verdict also expires at its wall-clock expires_at), or the monotonic clock
 * went back (only a test's fake clock does). */
int registry_wheel_take_due_locked(vouchd *d, int64_t mono, int64_t wall, void (*fn)(vouchd *d, device *dev, void *ud),
                                   void *ud);
/* The device's AK (dev->mu held), loaded from rec.ak_public when it is not (a shared store's
 * device that this instance did not use until now); NULL when it does not load. */
vc_ak *device_ak_locked(device *dev);
/* Whether nothing in this instance uses dev (d->lock held): no lease held, used or claimed,
 * no session. With a shared store its AK is then freed (device_drop_ak_locked). */
bool device_unused_locked(const device *dev);
/* A shared store: frees dev's AK when dev is unused (d->lock held; takes dev->mu); it is
 * loaded again at its next use. Nothing with a store of its own. */
void device_drop_ak_locked(vouchd *d, device *dev);

/* What registry_apply_locked did to the registry. */
typedef struct registry_applied {
        device *dev;            /* the device (NULL when the row changed nothing) */
        bool added;             /* a device this instance did not know (enrolled at another) */
        bool held;              /* this instance held it (device_held_locked) when applied */
        bool withdrawn;         /* it was approved and not revoked; now it is not */
        bool golden;            /* its golden assignment changed */
        bool new_ak;            /* its AK changed (a re-enrollment elsewhere): its boot state is gone */
} registry_applied;

/* Applies a device's row as the store has it (shared stores: the change feed, or the row
 * reloaded when the device's lease is claimed) to the registry: a device this instance did
 * not know is added. A row no newer than what was applied last (row->change <=
 * dev->rec.change) changes nothing. Of a device this instance holds, only the admin's fields
 * are taken (golden, approved, revoked): its AK, clock and sequence in memory are newer than
 * the store's or the same. Of any other, the AK (with its boot state) and the sequence too;
 * its clock is taken when it is claimed (lease.c, which applies the row it reloads here
 * first). Lock order: the caller holds seq_lock and d->lock (approval and revocation change
 * under both, as verdict_set_access). 0; -ENOMEM; -EBADMSG an AK that does not load (the
 * device is left as it was). */
int registry_apply_locked(vouchd *d, const vs_device *row, registry_applied *ret);
