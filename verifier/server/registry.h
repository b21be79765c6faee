/* SPDX-License-Identifier: Apache-2.0 */
/* The device registry and the golden sets shared by all event loops: who owns what.
 *
 * Lock order (take them in this order, never the reverse; each is held briefly):
 *   keys_lock (verdict.c: the verdict keys and verdict-keys.pem)
 *   -> vouchd.seq_lock (verdict numbering and signing; d->keys)
 *   -> vouchd.lock (the registry, the golden table, every device's rec and latest verdict)
 *   -> device.mu (a device's attestation state and AK, while a quote is verified)
 *   -> leaves: the store's locks (store-sqlite.c), loop.done_lock, the API's watchers.
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
        vs_device rec;
        vc_device_state state;
        /* what the store has of state's clock (under mu): see clock_due() in session.c */
        bool clock_saved;
        uint32_t saved_reset, saved_restart, clock_unsaved;
        vc_ak *ak;
        struct session *session;        /* the one active session, or NULL */
        /* the latest committed verdict (under vouchd.lock; set on the writer thread) */
        uint8_t *latest;                /* serialized SignedVerdict, NULL if none */
        size_t latest_len;
        int latest_status;              /* TrustStatus */
        int64_t latest_expires;         /* wall clock, as signed */
        int64_t latest_deadline;        /* the same on CLOCK_MONOTONIC (verdict_deadline) */
        char latest_golden[129];        /* the golden set it was judged by ("" for none) */
        int64_t latest_golden_version;
        bool stale_queued;              /* a STALE verdict for the latest one is on its way */
        int64_t queued_deadline;        /* monotonic expiry of the last verdict queued (under seq_lock) */
        uint64_t verified;              /* quotes verified (under mu): the order of evidence */
        uint64_t issued_ticket;         /* `verified` of the last attestation verdict queued (seq_lock) */
        struct device *next;            /* hash chain */
        uint8_t ek_key[32];             /* vc_ek_key_id of rec.ek_public */
        struct device *next_key;        /* hash chain by ek_key */
} device;

/* registry.c */
int registry_load(vouchd *d);
device *registry_find_locked(vouchd *d, const char *id);
device *registry_add_locked(vouchd *d, const vs_device *rec);
/* The device enrolled with this EK key (vc_ek_key_id), whatever its EK public's other fields. */
device *registry_find_key_locked(vouchd *d, const uint8_t key[32]);
void registry_free(vouchd *d);
