/* SPDX-License-Identifier: Apache-2.0 */
/* Between store.c (the queue, the writer thread and its group commit, the vs_* entry points)
 * and the backends that keep the data (store-sqlite.c, store-pg.c). Internal to the store. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store.h"

/* Both backends record their schema version and mean the same content by it: 2 the meta
 * table (the run's state), 3 devices.ek_anchor and the ek_certs table, 4 the run state per
 * instance (the instances table; meta's 'run' row became instance "default"'s), the leases
 * table and devices.change with its index (the change feed), 5 the deployment's identity
 * (the verdict_keys and golden_sets tables), 6 the device certificates (the certs table;
 * meta's 'device_ca_id'). */
#define VS_SCHEMA_VERSION 6

/* One queued write. A batch reaches a backend as a plan: the writes in queue order, except
 * that the clock updates of a device are merged (the last one queued wins) and come just
 * before the next whole-row write of any device, or at the end (store.c, plan_batch). */
typedef enum vs_write_kind {
        VS_W_DEVICE = 0,        /* the whole row (vs_device_put) */
        VS_W_ENROLL = 1,        /* the row but the admin's fields (vs_device_put_enrollment) */
        VS_W_CLOCK = 2,         /* dev.id and the clock fields only */
        VS_W_VERDICT = 3,
        VS_W_VERDICT_DEVICE = 4,/* the row (a known one's golden kept) and the verdict, in one transaction */
        VS_W_EKCERT = 5,
        VS_W_LEASE_CLAIM = 6,   /* dev.id; ttl_ms; answers in lease */
        VS_W_LEASE_RENEW = 7,   /* ttl_ms */
        VS_W_LEASE_RELEASE = 8, /* dev.id */
        VS_W_LEASE_RELEASE_ALL = 9,
        VS_W_ADMIN = 10,        /* dev.id and the admin's fields admin_fields names (vs_device_put_admin) */
        VS_W_KEYS = 11,         /* keys[0..n_items): this instance's published verdict keys */
        VS_W_GOLDEN = 12,       /* goldens[0..n_items), sorted: answered in place, result set */
        VS_W_VERIFIER_ID = 13,  /* dev.id: the verifier id, stored if the store has none */
        VS_W_DEVICE_CA_ID = 14, /* dev.id: the device CA's key id, stored if the store has none */
} vs_write_kind;

/* The most writes in one batch (one transaction). */
#define VS_BATCH_MAX 512

typedef struct vs_write {
        vs_write_kind kind;
        vs_device dev;          /* owned copies */
        vs_verdict verdict;     /* owned copy (verdict.cert points at cert when it has one) */
        vs_cert cert;           /* owned copy of the verdict's certificate */
        vs_ekcert ekcert;       /* owned copies */
        unsigned admin_fields;  /* VS_W_ADMIN: VS_ADMIN_* */
        int64_t ttl_ms;         /* leases */
        vs_lease_result lease;  /* a claim's or renewal's answer, set by the backend's commit */
        vs_lease_fn lease_done; /* their callback (instead of done) */
        vs_verdict_key *keys;   /* VS_W_KEYS: owned copies */
        vs_golden_digest *goldens; /* VS_W_GOLDEN: owned copies, answered by the backend's commit */
        size_t n_items;
        int result;             /* VS_W_GOLDEN: 0 or -EEXIST, set by the backend's commit */
        vs_golden_fn golden_done; /* its callback (instead of done) */
        vs_done_fn done;
        void *userdata;
        struct vs_write *next;
} vs_write;

typedef struct vs_backend {
        const char *name;
        /* Opens the store at target (a path, or a libpq URI), checks, creates or migrates its
         * schema, marks the run started (sets s->unsettled, *info) and sets s->be. The
         * errors of vs_open, err naming target. */
        int (*open)(vs_store *s, const char *target, unsigned flags, vs_open_info *info, char *err, size_t errlen);
        /* After the writer stopped: marks the run clean if clean_ok (and the backend agrees),
         * closes, frees s->be. */
        void (*close)(vs_store *s, bool clean_ok);
        /* Writer thread: the plan's n writes in one transaction; 0 once committed, <0 (none
         * of them stored, as far as it knows) with why set. */
        int (*commit)(vs_store *s, vs_write *const *plan, size_t n, char *why, size_t whylen);
        /* Writer thread, after a batch's callbacks ran (may be NULL). */
        void (*after_batch)(vs_store *s);
        /* Writer thread, whenever it is about to wait for writes (may be NULL): background
         * work (reconnecting); returns the milliseconds until it wants to be called again,
         * or -1 for never. */
        long (*maintain)(vs_store *s);

        /* Reads, as store.h says (rlock is theirs to take). */
        int (*device_get)(vs_store *s, const char *id, vs_device *ret);
        int (*device_foreach)(vs_store *s, int (*fn)(const vs_device *d, void *ud), void *ud);
        int (*verdict_history)(vs_store *s, const char *device, vs_verdict *out, size_t max);
        int (*verdict_since)(vs_store *s, uint64_t since, vs_verdict *out, size_t max);
        int (*verdict_last_global)(vs_store *s, uint64_t *ret);
        int (*ekcert_get)(vs_store *s, const char *key, vs_ekcert *ret);
        int (*lease_get)(vs_store *s, const char *device, vs_lease_result *ret);
        int (*device_changes_since)(vs_store *s, uint64_t after, vs_device *out, size_t max);
        int (*device_change_last)(vs_store *s, uint64_t *ret);
        int (*verdict_keys_list)(vs_store *s, vs_verdict_key *out, size_t max);
        int (*golden_get)(vs_store *s, const char *name, int64_t version, vs_golden_digest *ret);
        int (*verifier_id_get)(vs_store *s, char *buf, size_t n);
        int (*device_ca_get)(vs_store *s, char *buf, size_t n);
        int (*cert_list)(vs_store *s, const char *device, vs_cert *out, size_t max);
        int (*cert_revoked)(vs_store *s, int64_t not_after_min, int (*fn)(const vs_cert *c, void *ud), void *ud,
                            uint64_t *ret_state);
} vs_backend;

extern const vs_backend vs_backend_sqlite;
extern const vs_backend vs_backend_pg;

struct vs_store {
        const vs_backend *ops;
        void *be;                       /* the backend's own state */
        char *target;                   /* what vs_open was given (a path or a URI), for messages */
        char instance[VS_INSTANCE_MAX + 1]; /* vs_open_options.instance; set before open, then constant */
        size_t history_keep;

        pthread_mutex_t rlock;          /* the backend's read connection */
        char read_error[300];           /* under rlock: why the last read failed */

        pthread_t writer;
        bool writer_started;
        pthread_mutex_t lock;
        pthread_cond_t wake, idle;
        vs_write *head, *tail;
        size_t queued, in_flight;
        bool stop;
        bool writer_idle;               /* the writer waits for a first write */
        struct timespec last_batch;     /* CLOCK_MONOTONIC, when the writer took its last batch */
        bool lost;                      /* under lock; lost_why with it */
        bool unsettled;                 /* under lock: the previous run was unclean and vs_run_settled not called */
        char lost_why[400];
        vs_stats stats;                 /* under lock */
};

/* Marks the store lost for good (vs_lost): every transaction from now on fails. */
void vs__set_lost(vs_store *s, const char *why);
/* The store's availability as /metrics shows it (vs_stats.unavailable, .reconnects). */
void vs__set_available(vs_store *s, bool available);
/* Records why a read failed (rlock held) and returns r. */
int vs__read_failed(vs_store *s, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Test builds (meson -Dfailpoints=true) can make chosen operations fail: VOUCH_FAILPOINTS
 * names them, comma-separated. */
#ifdef VOUCH_FAILPOINTS
bool vs__failpoint(const char *name);
#else
#define vs__failpoint(name) false
#endif

/* Retention (store.h): whether a verdict's transaction deletes its device's verdicts with
 * sequence <= v->sequence - history_keep. */
static inline bool vs__prune_due(const vs_store *s, const vs_verdict *v) {
        return v->sequence > s->history_keep && v->sequence % VS_PRUNE_EVERY == 0;
}

uint8_t *vs__dup_bytes(const uint8_t *p, size_t n);

/* Writer thread: a commit-ordered verdict (v->seal set) numbered global_sequence and sealed
 * by its hook (store.h, Global order): 0, or the hook's error (-EINVAL: it left no record). */
int vs__seal(vs_verdict *v, uint64_t global_sequence);

/* Whether a write of a device's row revokes its certificates (store.h, Device certificates):
 * a whole row that leaves it revoked or not approved, or the admin's access fields so. */
static inline bool vs__row_revokes_certs(const vs_write *w) {
        return (w->kind == VS_W_DEVICE || (w->kind == VS_W_ADMIN && (w->admin_fields & VS_ADMIN_ACCESS))) &&
               (w->dev.revoked || !w->dev.approved);
}

/* A pruning verdict's certificates (store.h, Device certificates): those of the verdicts it
 * prunes whose not_after is before this are deleted with them. */
static inline int64_t vs__cert_prune_before(const vs_verdict *v) {
        return v->issued_at - VS_CERT_KEEP_EXPIRED;
}

/* Whether a write gives its device's row a new change number (store.h, device changes). */
static inline bool vs__changes_row(const vs_write *w) {
        return w->kind == VS_W_DEVICE || w->kind == VS_W_ENROLL || w->kind == VS_W_VERDICT_DEVICE ||
               w->kind == VS_W_ADMIN;
}

static inline bool vs__sealed(const vs_write *w) {
        return (w->kind == VS_W_VERDICT || w->kind == VS_W_VERDICT_DEVICE) && w->verdict.seal;
}

/* A golden registration's outcome (store.h, vs_golden_register), once the backend has put
 * what it found stored into each set's stored_digest / stored_by ("" when nothing): -EEXIST
 * when a set is stored with another digest (then nothing may be stored); 0 otherwise, and
 * the sets not stored yet are answered as stored by this instance (the backend stores them). */
int vs__golden_outcome(vs_store *s, vs_write *w);
