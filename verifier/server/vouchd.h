/* SPDX-License-Identifier: Apache-2.0 */
/* The verifier: what every part of libvouchd shares, and its life cycle (vouchd.c); main.c
 * owns the one instance. */
#pragma once

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "enroll.h"
#include "lease.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "verdict.h"

struct api;
struct health;
struct devcert;


/* Challenge-to-stored-verdict latency histogram buckets (seconds), for /metrics. */
#define LATENCY_BUCKETS 12
extern const double latency_bounds[LATENCY_BUCKETS];
struct vouchd {
        config cfg;
        SSL_CTX *tls;
        vc_ek_ca *ek_ca;
        char **allow;                   /* allowlisted EK certificate or EK key fingerprints */
        size_t n_allow;
        vs_store *store;
        /* the store is shared by several instances (PostgreSQL): a device is attested only
         * under its lease, verdicts are numbered in commit order, and what other instances
         * commit is polled (docs/scale-out.md). Set at start, read-only after. */
        bool shared;
        lease_state leases;             /* shared stores: the heartbeat and lease counters (lease.c) */
        char verifier_id[65];

        /* verdicts: numbered and signed under seq_lock, and queued to the store in that
         * order, so the store commits them in global sequence order (watchers rely on it).
         * A shared store numbers them itself, in commit order, and they are signed by the
         * seal hook on the writer thread (verdict.c); gseq is not used then. */
        pthread_mutex_t seq_lock;
        uint64_t gseq;
        /* the highest global sequence whose verdict is committed and is (or was) its
         * device's latest in memory: the watch stream goes no further, so it is never
         * ahead of GET. Set by the commit hand-off (writer thread); with a shared store by
         * verdict_follow only (API thread), which reads what every instance committed. */
        atomic_ullong published;
        verdict_keys keys;
        struct api *api;
        struct health *health;          /* --http-listen (health.c) */
        struct devcert *devcert;        /* device certificates (devcert.h): set at start */
        /* after each verdict's commit (the store's writer thread): set by the API's transport
         * (api-http.c, api_start) before the loops start, so that verdict.c does not call
         * into the API */
        void (*on_committed)(vouchd *d);
        atomic_ullong latency_count[LATENCY_BUCKETS + 1];
        atomic_ullong latency_sum_us;
        atomic_ullong stale_issued, verdicts_issued;

        pthread_mutex_t lock;           /* devices, golden, sessions count */
        device **buckets;
        device **key_buckets;           /* the same devices by EK key (one identity per TPM) */
        size_t n_buckets, n_devices;
        /* lock: the expiry wheel (registry.h): REGISTRY_WHEEL lists by deadline second; the
         * last second swept (INT64_MIN before the first sweep) and the wall clock's offset from
         * the monotonic one then */
        device **wheel;
        int64_t wheel_cursor, wheel_offset;
        size_t n_unstored;              /* lock; devices with device.unstored set (verdict.c) */
        golden_table *golden;
        atomic_uint connections;
        atomic_ullong accept_pauses;    /* --accept-rate: times a loop's listener paused */
        atomic_ullong attestations_ok, attestations_bad, enrollments;
        atomic_ullong log_rerequests;   /* NEED_LOG: challenged again for the whole log */
        atomic_ullong ek_fetched, ek_fetch_failures;

        loop *loops;
        unsigned n_loops;
        atomic_bool stopping;

        /* shared stores: following the other instances' device writes (vouchd_follow, on the
         * API thread): the last change applied, the poll's timer, a failing read logged once */
        uint64_t follow_after;
        struct event *follow_ev;
        bool follow_failing;
};

/* The life cycle (vouchd.c). vouchd_init sets the defaults; the caller fills d->cfg (config.h),
 * blocks SIGTERM/SIGINT/SIGHUP in every thread before vouchd_start (the threads it starts
 * inherit the mask) and takes them with sigwait. vouchd_start logs what failed and returns
 * <0; vouchd_free is called in every case, once. fresh_dir: the state dir was new (the store
 * may be created). */
void vouchd_init(vouchd *d);
int vouchd_start(vouchd *d, bool fresh_dir);
/* SIGHUP: the golden sets and the verdict keys again; the old ones stay on failure (<0). */
int vouchd_reload(vouchd *d);
/* SIGTERM: stops accepting, ends the loops and the API, commits what is queued. */
void vouchd_stop(vouchd *d);
void vouchd_free(vouchd *d);

/* Shared stores (docs/scale-out.md): what other instances write to devices (enrollments,
 * approvals, revocations, golden assignments) applied to the registry within
 * FOLLOW_EVERY_MS; this instance, when it holds the device, acts on them (admin.h,
 * device_follow). vouchd_follow_start: a timer on the API thread (api_start first);
 * vouchd_follow: one poll (on the API thread, where admin actions run: never both at
 * once); the number of changes applied, or <0 when the store could not be read. */
#define FOLLOW_EVERY_MS 250
int vouchd_follow_start(vouchd *d);
int vouchd_follow(vouchd *d);

/* One vouchd (or vouchd init) per state dir: flock on DIR/vouchd.lock, held for the life of
 * the process. Returns the descriptor, or -EBUSY with why (n bytes) saying what failed. */
int vouchd_lock_state_dir(const char *dir, char *why, size_t n);
/* vouchd init's store: created in a fresh state dir only. */
int vouchd_init_store(const config *c, bool fresh, char *err, size_t n);
