/* SPDX-License-Identifier: Apache-2.0 */
/* The verifier: what every part of vouchd shares (main.c owns it). */
#pragma once

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "enroll.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "verdict.h"

struct api;


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
        char verifier_id[65];

        /* verdicts: numbered and signed under seq_lock, and queued to the store in that
         * order, so the store commits them in global sequence order (watchers rely on it) */
        pthread_mutex_t seq_lock;
        uint64_t gseq;
        /* the highest global sequence whose verdict is committed and is (or was) its
         * device's latest in memory: the watch stream goes no further, so it is never
         * ahead of GET */
        atomic_ullong published;
        verdict_keys keys;
        struct api *api;
        /* after each verdict's commit (the store's writer thread): set by the API (api_start)
         * before the loops start, so that verdict.c does not call into api.c */
        void (*on_committed)(vouchd *d);
        atomic_ullong latency_count[LATENCY_BUCKETS + 1];
        atomic_ullong latency_sum_us;
        atomic_ullong stale_issued, verdicts_issued;

        pthread_mutex_t lock;           /* devices, golden, sessions count */
        device **buckets;
        device **key_buckets;           /* the same devices by EK key (one identity per TPM) */
        size_t n_buckets, n_devices;
        golden_table *golden;
        atomic_uint connections;
        atomic_ullong attestations_ok, attestations_bad, enrollments;
        atomic_ullong log_rerequests;   /* NEED_LOG: challenged again for the whole log */
        atomic_ullong ek_fetched, ek_fetch_failures;

        loop *loops;
        unsigned n_loops;
        atomic_bool stopping;
};
