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
#include "ekcert.h"
#include "enroll.h"
#include "golden.h"
#include "log.h"
#include "store.h"
#include "vouch.pb-c.h"

#define VOUCHD_MAX_GOLDEN 256

typedef enum approval_mode {
        APPROVAL_AUTO = 0,      /* a valid EK certificate chain suffices */
        APPROVAL_ALLOWLIST = 1, /* ... and the EK certificate's fingerprint must be listed */
} approval_mode;

/* A TPM maker's EK certificate service (--ek-cert-fetch). */
typedef struct ek_service {
        uint32_t manufacturer;  /* TPM2_PT_MANUFACTURER it serves */
        vc_ekcert_form form;
        char *base;             /* the lookup key is appended */
} ek_service;

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
        unsigned api_max_connections;   /* set from the file limit (check_file_limit) */
        unsigned max_frame;
        unsigned history;       /* verdicts kept per device */
        unsigned verdict_ttl_intervals; /* expires_at = issued_at + this * interval */
        bool allow_sha1;
        bool fresh_store;       /* --fresh-store: an initialised state dir may get a new, empty store */
        ek_service *ek_services;/* --ek-cert-fetch: off when none */
        size_t n_ek_services;
        int log_level;          /* 0 error, 1 warning, 2 info, 3 debug */
        /* the policy-engine API (docs/API.md) */
        char *api_listen;       /* HOST:PORT, NULL = off */
        char *api_client_ca;    /* NULL = the state dir's CA */
        char **api_admins, **api_readers; /* certificate CNs per role */
        size_t n_api_admins, n_api_readers;
} config;


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

typedef struct vouchd vouchd;

/* The verdict-signing keys: the active one and retired ones still published. */
#define VERDICT_MAX_RETIRED 16
typedef struct vkey {
        EVP_PKEY *pkey;
        char id[65];
        int64_t not_after;              /* retired keys: verdicts verify until then */
} vkey;
typedef struct verdict_keys {
        vkey active;
        size_t n_retired;
        vkey retired[VERDICT_MAX_RETIRED];
} verdict_keys;
void verdict_keys_free(verdict_keys *k);

/* Challenge-to-stored-verdict latency histogram buckets (seconds), for /metrics. */
#define LATENCY_BUCKETS 12
extern const double latency_bounds[LATENCY_BUCKETS];
struct api;

typedef struct loop {
        vouchd *d;
        unsigned index;
        struct event_base *base;
        struct evconnlistener *listener;
        pthread_t thread;
        vc_eval_cache *cache;
        vc_hasher *hasher;              /* this loop's, for the attestations on it */
        atomic_ullong cache_hits, cache_misses;
        struct session *sessions;       /* every session of this loop (for shutdown) */
        /* challenge nonces and schedule jitter, drawn from the DRBG a pool at a time (each
         * RAND_bytes locks the DRBG and checks for a fork); bytes handed out are wiped */
        uint8_t nonce_pool[1024];
        size_t nonce_left;
        /* commits the store's writer thread finished for this loop's sessions, handed back
         * in one wake-up of the loop per batch instead of one event each (session.c) */
        pthread_mutex_t done_lock;
        struct pending *done_head, *done_tail;
        struct event *done_ev;
} loop;

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

/* registry.c */
int registry_load(vouchd *d);
device *registry_find_locked(vouchd *d, const char *id);
device *registry_add_locked(vouchd *d, const vs_device *rec);
/* The device enrolled with this EK key (vc_ek_key_id), whatever its EK public's other fields. */
device *registry_find_key_locked(vouchd *d, const uint8_t key[32]);
void registry_free(vouchd *d);

/* session.c */
void session_accept(loop *l, evutil_socket_t fd);
/* Closes the device's session, if any, on its loop (from any thread). */
void session_kick(vouchd *d, device *dev, const char *why);
/* The loop's hand-back of finished commits: after its base exists / after its last run. */
int session_loop_init(loop *l);
void session_loop_fini(loop *l);
/* Frees every session of the loop (after its event loop has stopped). */
void session_free_all(loop *l);

/* verdict.c */
typedef void (*verdict_done_fn)(int error, void *userdata);
/* CLOCK_MONOTONIC seconds; the monotonic second at which a verdict expiring at expires_at
 * (wall clock) expires, counted from now; whether the device's latest verdict has expired
 * by either clock (d->lock held). */
int64_t verdict_mono_now(void);
int64_t verdict_deadline(int64_t expires_at);
bool verdict_expired_locked(const device *dev);
/* Numbers (device and global sequence), signs and queues v for dev; done runs on the
 * writer thread once it is committed, after the device's latest verdict is updated and
 * watchers woken. *record (if record is not NULL) gets the SignedVerdict bytes. */
int verdict_issue(vouchd *d, device *dev, Vouch__V1__Verdict *v, verdict_done_fn done, void *userdata,
                  uint8_t **record, size_t *record_len);
/* The device's record as the store should hold it: rec with the last accepted quote's
 * clock from the attestation state (a shallow copy: the store copies the key bytes when
 * queueing). d->lock held; takes dev->mu. */
vs_device verdict_row_locked(device *dev);
/* The same with the device's row, its approved / revoked flags set to these, in the
 * verdict's transaction: both are stored or neither (a revocation and its verdict). When
 * the commit fails the device's latest verdict is left as it was. Lock order: seq_lock,
 * d->lock, dev->mu. */
int verdict_issue_with_access(vouchd *d, device *dev, Vouch__V1__Verdict *v, bool approved, bool revoked,
                              verdict_done_fn done, void *userdata);
/* The same for the verdict of an attestation: -EACCES (nothing issued) when the device is
 * revoked or not approved at the moment it would be numbered; -ESTALE when ticket (the
 * device's verification count when this evidence was verified) is below that of a verdict
 * already issued: verdicts go out in the order their evidence was verified. */
int verdict_issue_attested(vouchd *d, device *dev, Vouch__V1__Verdict *v, uint64_t ticket, verdict_done_fn done,
                           void *userdata, uint8_t **record, size_t *record_len);
/* Sets the device's approved / revoked flags, ordered with the numbering of verdicts:
 * every attestation verdict numbered after this call sees them. Lock order: seq_lock,
 * then d->lock. */
void verdict_set_access(vouchd *d, device *dev, bool approved, bool revoked);
/* A signed verdict that is not stored (sequence 0): UNKNOWN for a device never attested. */
int verdict_adhoc(vouchd *d, device *dev, int status, uint8_t **record, size_t *record_len);
/* True when the device's latest verdict is TRUSTED under a golden set (name or version)
 * other than the one it is judged by now (assigned another, or reloaded): that verdict
 * then stands for nothing and is shown as STALE. why (optional) explains. d->lock held. */
bool verdict_golden_outdated_locked(vouchd *d, const device *dev, char *why, size_t n);
/* v's findings: the one finding f (about no PCR or event), through *fp. */
void verdict_one_finding(Vouch__V1__Verdict *v, Vouch__V1__Finding *f, Vouch__V1__Finding **fp, const char *rule,
                         const char *expected, const char *actual, const char *explanation);
/* The device's latest verdict as the API shows it: a copy of the latest one (committed,
 * or a failed commit's that is not TRUSTED), or a signed UNKNOWN; judged against the
 * device's state when served: never TRUSTED for a revoked device (a signed UNTRUSTED
 * stand-in), once expired by either clock (a STALE one is then issued) nor under a golden
 * set the device is no longer judged by (a signed STALE stand-in). */
int verdict_current(vouchd *d, device *dev, uint8_t **record, size_t *record_len, int *status);
/* The status verdict_current shows (d->lock held). */
int verdict_shown_status_locked(vouchd *d, const device *dev);
/* At start, after verdict_load_latest: a revoked device whose latest verdict is TRUSTED
 * gets its UNTRUSTED (revoked) verdict; when the previous run did not close the store
 * cleanly (previous_clean false), every other TRUSTED latest verdict is superseded by a
 * STALE one (finding "restart"). Waits until they are stored; -EIO when one is not. */
int verdict_settle_at_start(vouchd *d, bool previous_clean, size_t *ret_stale, size_t *ret_revoked);
/* Issues STALE verdicts for devices whose latest verdict has expired. */
void verdict_sweep(vouchd *d);
/* Reads the verdict-signing keys again (tls_load_verdict_keys) and swaps them in. */
int verdict_keys_reload(vouchd *d);
/* Loads the latest verdict of every device from the store (at start). */
int verdict_load_latest(vouchd *d);
/* The verdict as an IETF RATS EAR (JWT, ES256). */
int verdict_ear(vouchd *d, const uint8_t *record, size_t len, char **jwt);

/* ekfetch.c */
/* "intel", "amd" (the makers' public services) or MANUFACTURER=[intel:|amd:]URL. */
int ekfetch_parse(const char *spec, ek_service *ret, char *err, size_t n);
const ek_service *ekfetch_service_for(const vouchd *d, uint32_t manufacturer);
int ekfetch_init(vouchd *d);
/* After the loops stopped: waits (at most 10 s) for fetch threads to hand back. */
void ekfetch_fini(vouchd *d);
/* On base's loop once the fetch is over: error 0 and the DER certificate (the callee copies
 * what it keeps), or error < 0 and why. */
typedef void (*ekfetch_done_fn)(int error, const char *why, const uint8_t *der, size_t der_len, const char *url,
                                void *userdata);
/* peer: the client's address ("host:port"): one fetch at a time per host. Errors (err set):
 * -EBUSY (too many under way, or one for this host), -EAGAIN (this lookup failed less than
 * two minutes ago), -ENOTSUP / -EINVAL (no lookup key for this EK), -ENOMEM. */
int ekfetch_start(vouchd *d, struct event_base *base, const char *peer, const ek_service *svc,
                  const TPMT_PUBLIC *ek, ekfetch_done_fn done, void *userdata, char *err, size_t n);

/* api.c */
int api_start(vouchd *d);
void api_stop(vouchd *d);
void api_notify(vouchd *d);    /* a verdict was committed: wake watchers (any thread) */
void api_free(vouchd *d);

/* tls.c */
int tls_issue_client(const char *dir, const char *cn, const char *prefix);
SSL_CTX *tls_api_ctx(const char *dir, const char *client_ca);
int tls_load_verdict_keys(const char *dir, verdict_keys *ret);
/* Writes DIR/verdict-keys.pem: the public keys of k (atomically). */
int tls_write_verdict_pubs(const char *dir, const verdict_keys *k);
int tls_rotate_verdict_key(const char *dir, int64_t old_not_after, char new_id[65]);
int tls_verifier_id(const char *dir, char out[65]);
/* Makes the state dir's keys and certificates that are absent when generate is set (vouchd
 * init, or a fresh state dir); one that is present but unreadable, or absent without
 * generate, is an error naming the file (err), never replaced. Checks the dir first. */
int tls_init_state_dir(const char *dir, char *const *sans, size_t n_sans, bool generate, char *err, size_t errlen);
/* The state dir and its files belong to vouchd's user and only it can change them (keys:
 * only it can read them), no file is a link; 0 when the dir does not exist yet. */
int tls_check_state_dir(const char *dir, char *err, size_t n);
/* None of vouchd's keys, certificates or store is there yet. */
bool tls_state_dir_is_fresh(const char *dir);
SSL_CTX *tls_server_ctx(const char *dir);
int tls_key_id(EVP_PKEY *k, char out[65]);

/* verdict.c */
int verdict_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len);
