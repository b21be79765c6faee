/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd internals: configuration, the device registry and golden sets shared by all event
 * loops, the loops, and one agent session per connection. */
#pragma once

#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "attest.h"
#include "enroll.h"
#include "golden.h"
#include "store.h"

#define VOUCHD_MAX_GOLDEN 256

typedef enum approval_mode {
        APPROVAL_AUTO = 0,      /* a valid EK certificate chain suffices */
        APPROVAL_ALLOWLIST = 1, /* ... and the EK certificate's fingerprint must be listed */
} approval_mode;

typedef struct config {
        char *state_dir;
        char *listen;           /* HOST:PORT */
        char *golden_dir;
        char *default_golden;
        char *ek_ca;
        char *allowlist;
        approval_mode approval;
        unsigned interval;      /* seconds between attestations */
        unsigned jitter_pct;    /* +- percent of interval */
        unsigned nonce_timeout; /* seconds a challenge stays valid */
        unsigned hello_timeout;
        unsigned threads;       /* event loops; 0 = one per core */
        unsigned max_connections;
        unsigned max_frame;
        unsigned history;       /* verdicts kept per device */
        unsigned verdict_ttl_intervals; /* expires_at = issued_at + this * interval */
        bool allow_sha1;
        int log_level;          /* 0 error, 1 warning, 2 info, 3 debug */
} config;

/* Logging to stderr with a level; the edge logs once per failure. */
void vlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern int vlog_level;
#define LOG_ERR 0
#define LOG_WARN 1
#define LOG_INFO 2
#define LOG_DEBUG 3

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

struct session;

/* A known device: enrolled record plus its in-memory per-boot attestation state. */
typedef struct device {
        pthread_mutex_t mu;             /* state and ak, while an attestation is verified */
        vs_device rec;
        vc_device_state state;
        vc_ak *ak;
        struct session *session;        /* the one active session, or NULL */
        struct device *next;            /* hash chain */
} device;

typedef struct vouchd vouchd;

typedef struct loop {
        vouchd *d;
        unsigned index;
        struct event_base *base;
        struct evconnlistener *listener;
        pthread_t thread;
        vc_eval_cache *cache;
        uint64_t cache_hits, cache_misses;
        struct session *sessions;       /* every session of this loop (for shutdown) */
} loop;

struct vouchd {
        config cfg;
        SSL_CTX *tls;
        vc_ek_ca *ek_ca;
        char **allow;                   /* allowlisted EK certificate fingerprints */
        size_t n_allow;
        vs_store *store;
        EVP_PKEY *verdict_key;
        char verifier_id[65];

        pthread_mutex_t lock;           /* devices, golden, sessions count */
        device **buckets;
        size_t n_buckets, n_devices;
        golden_table *golden;
        atomic_uint connections;
        atomic_ullong attestations_ok, attestations_bad, enrollments;

        loop *loops;
        unsigned n_loops;
        atomic_bool stopping;
};

/* registry.c */
int registry_load(vouchd *d);
device *registry_find_locked(vouchd *d, const char *id);
device *registry_add_locked(vouchd *d, const vs_device *rec);
void registry_free(vouchd *d);

/* session.c */
void session_accept(loop *l, evutil_socket_t fd);
/* Frees every session of the loop (after its event loop has stopped). */
void session_free_all(loop *l);

/* tls.c */
int tls_init_state_dir(const char *dir, char *const *sans, size_t n_sans);
SSL_CTX *tls_server_ctx(const char *dir);
EVP_PKEY *tls_load_verdict_key(const char *dir);
int tls_key_id(EVP_PKEY *k, char out[65]);

/* verdict.c */
int verdict_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len);
