/* SPDX-License-Identifier: Apache-2.0 */
/* The verifier's durable state, behind a narrow interface with two backends: the embedded
 * SQLite one (store-sqlite.c) and PostgreSQL through libpq (store-pg.c); vs_open picks one
 * from its store URL. Devices (enrollment, golden assignment, approval, last quote state)
 * and verdicts (history and the latest per device, a global sequence for watchers). Writes
 * are queued to one writer thread (store.c) that commits them in batches (the event loops
 * never wait for fsync). Group commit: a batch starts at most every 10 ms, so a write may
 * wait up to that long to share a commit (and its fsync) with others; one queued after a
 * quiet spell goes at once. Each write's callback runs on the writer thread once its
 * transaction is durable, so a verdict is acknowledged only after it is committed. Reads are
 * synchronous and may run on any thread (the store's read connection, one at a time). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_ID_MAX 64
#define VS_INSTANCE_MAX 63      /* an instance's name: 1-63 of [A-Za-z0-9._-] */

typedef struct vs_store vs_store;

typedef struct vs_device {
        char id[VS_ID_MAX + 1];        /* hex SHA-256 of the EK public area */
        uint8_t *ek_public;            /* TPM2B_PUBLIC */
        size_t ek_public_len;
        uint8_t *ak_public;            /* TPM2B_PUBLIC of the enrolled AK */
        size_t ak_public_len;
        char golden[129];              /* assigned golden set name; "" = the default */
        bool approved;
        bool revoked;
        int64_t enrolled_at;           /* Unix seconds */
        bool has_last;                 /* last accepted quote's clock state */
        uint32_t reset_count, restart_count;
        uint64_t clock;
        uint64_t sequence;             /* last verdict's per-device sequence number */
        int ek_anchor;                 /* EkAnchor: 0 an EK certificate, 1 the EK key (allowlisted) */
        uint64_t change;               /* read only: the row's number in the change feed (Device
                                        * changes below); ignored by the writes */
} vs_device;

void vs_device_done(vs_device *d);

typedef struct vs_verdict vs_verdict;

/* Device certificates (issue 19): the X.509 certificates vouchd issues for the devices'
 * TPM-resident keys. Each is stored in the transaction of the TRUSTED verdict it was issued
 * with (vs_verdict.cert), so that a certificate exists only if its verdict committed; its
 * revocation is stored in the transaction of what causes it: a verdict that is not TRUSTED
 * (vs_verdict.revoke_certs), or a write of the device's row that leaves it revoked or not
 * approved (vs_device_put, vs_device_put_admin with VS_ADMIN_ACCESS: revoked_at is the
 * writer's clock then). A revocation is never undone: an approval afterwards, or a
 * TRUSTED verdict, leaves the device's earlier certificates revoked.
 * Retention: a verdict whose transaction prunes its device's verdicts (store.h, Retention)
 * also deletes the device's certificates of the verdicts pruned that expired more than
 * VS_CERT_KEEP_EXPIRED seconds before the verdict's issued_at; unexpired ones stay. */
#define VS_SERIAL_MAX 40                /* a serial number in hex: 20 octets (RFC 5280, 4.1.2.2) */
#define VS_CERT_DER_MAX 16384
#define VS_CERT_KEEP_EXPIRED 3600

typedef struct vs_cert {
        char serial[VS_SERIAL_MAX + 1]; /* lowercase hex, as the issuer wrote it */
        char device[VS_ID_MAX + 1];     /* read only: the verdict's (writes take the verdict's) */
        int64_t not_before, not_after;  /* Unix seconds */
        uint64_t sequence;              /* read only: its verdict's per-device sequence */
        uint64_t global_sequence;       /* read only: its verdict's global sequence */
        int64_t revoked_at;             /* read only: Unix seconds; 0 while not revoked */
        uint64_t revoked_sequence;      /* read only: the per-device sequence of the verdict that
                                         * revoked it; 0 when a write of the device's row did */
        uint8_t *der;                   /* the certificate (DER; NULL in vs_cert_revoked's rows) */
        size_t der_len;
} vs_cert;

void vs_cert_done(vs_cert *c);

/* Global order. Every stored verdict has a global sequence number, numbered in one of three
 * ways (a store's writers should keep to one):
 *   - by the caller (global_sequence != 0): it must queue verdicts in number order; one
 *     process's store commits them in that order (vouchd alone on its store);
 *   - 0 without seal: the store's next, when its insert runs (not in commit order across
 *     several writers);
 *   - commit-ordered (seal set, global_sequence 0): numbered inside the transaction that
 *     stores the verdict, under a lock that every commit-ordered transaction of the store
 *     holds from the moment it takes its numbers until its COMMIT has ended (PostgreSQL:
 *     pg_advisory_xact_lock keyed by the store's id, so across instances; SQLite: its write
 *     lock). Numbers thus increase in commit order: a reader (vs_verdict_since) that has
 *     seen number N will never later find a number below N committed. Numbers are never
 *     reused; a transaction that fails leaves a gap (PostgreSQL: the sequence's numbers are
 *     consumed; SQLite: the store records the largest number it handed to a hook, also
 *     after a failed transaction, best effort).
 * seal(v, n, seal_userdata) runs on the writer thread, in the open transaction, after n was
 * assigned (v->global_sequence is n) and before the verdict's INSERT, at most once per
 * write: it must set v->record / record_len to the finished record (from malloc; the store
 * owns and frees it; the record given at queueing, if any, is freed before the call) and
 * return 0; a negative return, or no record, fails the whole transaction with that error
 * (every write of the batch gets it). It must be quick (on PostgreSQL every instance's
 * commit-ordered commits wait for it) and must not wait for the store (vs_flush) nor for
 * anything that does. It does not run when the transaction fails before numbers were
 * assigned (the write's done callback then gets the error). */
typedef int (*vs_seal_fn)(vs_verdict *v, uint64_t global_sequence, void *userdata);

struct vs_verdict {
        char device[VS_ID_MAX + 1];
        uint64_t sequence;             /* per device */
        uint64_t global_sequence;      /* order across the fleet (Global order): the caller's, or
                                        * 0: the store's (commit-ordered with seal) */
        int status;                    /* TrustStatus */
        int64_t issued_at, expires_at;
        uint8_t *record;               /* the serialized (signed) verdict, opaque here; with seal,
                                        * may be empty at queueing */
        size_t record_len;
        vs_seal_fn seal;               /* commit-ordered numbering (Global order); NULL on reads */
        void *seal_userdata;
        /* Device certificates (below), for the writes (vs_verdict_put, _with_device); reads
         * leave them NULL and false: */
        const vs_cert *cert;           /* a certificate stored in the verdict's transaction
                                        * (copied when queued), its device, sequence and
                                        * global sequence the verdict's; NULL: none */
        bool revoke_certs;             /* the device's certificates not revoked yet and not
                                        * expired at issued_at are revoked in the verdict's
                                        * transaction (revoked_at issued_at, revoked_sequence
                                        * the verdict's sequence) */
};

void vs_verdict_done(vs_verdict *v);

/* Called on the writer thread after the write is committed (error 0) or failed (<0). */
typedef void (*vs_done_fn)(int error, void *userdata);

/* Retention: every read (vs_verdict_history, _latest, _since) sees exactly the newest
 * history_keep verdicts of each device, by per-device sequence: those with sequence >
 * (the device's largest stored sequence - history_keep). The older rows are deleted in
 * batches: a verdict whose sequence is a multiple of VS_PRUNE_EVERY (and > history_keep)
 * deletes, in its transaction, every verdict of its device with sequence <= its sequence -
 * history_keep. So the database holds at most history_keep + VS_PRUNE_EVERY - 1 verdicts
 * per device, and the hidden ones are never returned. */
#define VS_PRUNE_EVERY 16u

/* vs_open flags. */
#define VS_OPEN_CREATE 1u       /* create the database and its schema when absent or empty */

/* What vs_open found. */
typedef struct vs_open_info {
        bool created;           /* the store was created by this open */
        /* This instance's previous run (the last open with the same instance name) closed
         * the store with every write it was given stored (vs_close after no failed
         * transaction). False after a crash, a kill, or a run in which a write failed (a
         * disk full): verdicts it issued may be missing from the store, so the latest stored
         * one of a device may be older than the one it was last shown. The run state is kept
         * per instance (schema version 4): another instance's clean close says nothing about
         * this one. An instance that never ran on this store (a new name) had no previous
         * run: true. */
        bool previous_clean;
} vs_open_info;

/* vs_open_ex's options. */
typedef struct vs_open_options {
        size_t history_keep;    /* verdicts kept per device (see Retention; 0 means 1) */
        unsigned flags;         /* VS_OPEN_* */
        /* This vouchd's name among the instances that share the store (1 to VS_INSTANCE_MAX
         * of [A-Za-z0-9._-]); NULL or "" is "default", vs_open's. It names the run state
         * (vs_open_info) and the leases this handle claims. On PostgreSQL one handle at a
         * time may run under a name: the writer's connection holds a session advisory lock
         * keyed by the store's id and the name while the store is open (vs_open_ex fails
         * with -EBUSY when another holds it; a reconnection that finds it taken marks the
         * store lost, vs_lost). SQLite keeps no such lock: one instance. */
        const char *instance;
} vs_open_options;

/* Opens the store that url names, creates or migrates its schema (each backend records its
 * schema version), marks the run as started (durably: the next open tells whether this one
 * closed cleanly) and starts the writer thread. url:
 *   - "sqlite:PATH" or a plain PATH: SQLite, WAL mode, checked with PRAGMA quick_check;
 *   - "postgresql://..." or "postgres://...": a libpq connection URI, e.g.
 *     postgresql:///vouch?host=/run/postgresql or postgresql://vouch@db.example/vouch. A
 *     password in it is refused: libpq finds it in PGPASSFILE or ~/.pgpass. If the server
 *     goes away while the store is open, writes and reads fail at once (stats.unavailable)
 *     and the store reconnects by itself, with backoff (100 ms doubling to 5 s).
 * history_keep: verdicts kept per device (see Retention above; 0 means 1). info (may be
 * NULL) gets what was found. Errors, with err set to a sentence naming the file or URI:
 * -EINVAL a URL of another kind, or with a password; -ENOENT no store there (a missing or
 * empty file, a file or database without vouch's tables) and flags lack VS_OPEN_CREATE;
 * -EUCLEAN the store is damaged (SQLite: quick_check; PostgreSQL: some of vouch's tables or
 * columns missing, or its schema version unreadable); -EPROTO its schema is newer than this
 * code's; -EIO anything else the database refused (read-only, not a database, disk full,
 * the server unreachable or refusing the connection). */
int vs_open(const char *url, size_t history_keep, unsigned flags, vs_store **ret, vs_open_info *info, char *err,
            size_t errlen);
/* The same with options (vs_open is vs_open_ex with instance "default"); opt may be NULL (all
 * defaults). Also -EINVAL for an instance name that is not 1 to VS_INSTANCE_MAX of
 * [A-Za-z0-9._-], and -EBUSY (PostgreSQL) when another open handle runs under the name. */
int vs_open_ex(const char *url, const vs_open_options *opt, vs_store **ret, vs_open_info *info, char *err,
               size_t errlen);
/* The instance name the store was opened with. */
const char *vs_instance(vs_store *s);
/* Commits everything queued, stops the writer thread, and marks this instance's run clean
 * when no transaction of it failed, the files were not lost, and an unclean previous run
 * was settled (vs_run_settled; see vs_open_info); closes. */
void vs_close(vs_store *s);
/* The caller has acted on previous_clean being false (it superseded the verdicts that may
 * be outdated, durably): from now on this run may close clean. Until then it may not, so
 * that a start that fails before that step leaves the store as unclean as it found it. */
void vs_run_settled(vs_store *s);

/* Queues an insert-or-update of the device (all fields). */
int vs_device_put(vs_store *s, const vs_device *d, vs_done_fn done, void *userdata);
/* The same for an enrollment: a new device gets the whole row; a known one keeps its
 * golden assignment, approval and revocation (the admin's, written with vs_device_put). */
int vs_device_put_enrollment(vs_store *s, const vs_device *d, vs_done_fn done, void *userdata);
/* Queues an update of the last-quote state only. */
int vs_device_put_clock(vs_store *s, const char *id, uint32_t reset_count, uint32_t restart_count, uint64_t clock,
                        vs_done_fn done, void *userdata);
/* Queues a verdict (copied; with seal, its record may be empty). -EINVAL: seal with a
 * global_sequence given. It does not write its device's row: a device's sequence as read is the
 * larger of its row's and its newest verdict's. A batch writes each device's row once:
 * clock updates queued for the same device are merged (the last one queued wins) and
 * written in the batch's transaction. */
int vs_verdict_put(vs_store *s, const vs_verdict *v, vs_done_fn done, void *userdata);
/* A verdict and its device's row in one write: both are stored in one transaction, or
 * neither is (a revocation and its UNTRUSTED verdict). The row is written as vs_device_put
 * writes it, except a known device's golden assignment, which is kept as stored: a
 * revocation does not change it, and the writer's copy of it may be older than the store's
 * (another instance's vs_device_put_admin). */
int vs_verdict_put_with_device(vs_store *s, const vs_verdict *v, const vs_device *d, vs_done_fn done,
                               void *userdata);

/* vs_device_put_admin's fields. */
#define VS_ADMIN_GOLDEN 1u      /* golden */
#define VS_ADMIN_ACCESS 2u      /* approved and revoked */

/* Queues an update of the admin's fields that fields names (VS_ADMIN_*, d's values), and of
 * no other, of a device the store knows (else nothing is written): what an admin action
 * writes on a store that several instances share. The writer's copy of the rest of the row
 * may be old: the clock and AK of an instance that does not hold the device's lease, or an
 * admin field another instance changed a moment ago (a golden assignment must not undo a
 * revocation made elsewhere). -EINVAL: fields is 0 or names no such field. */
int vs_device_put_admin(vs_store *s, const vs_device *d, unsigned fields, vs_done_fn done, void *userdata);

/* Device changes: how instances follow each other's writes to devices (issue 18). Every
 * write of a device's row (vs_device_put, _put_enrollment, _put_admin,
 * vs_verdict_put_with_device; not clock updates, not verdicts) gives the row the next change
 * number, in commit order as global sequences are (store.h, Global order; PostgreSQL: under
 * the same lock): a follower that has read up to change N never later finds a change below
 * N committed, so polling vs_device_changes_since(after = the last one it read) sees every
 * change. Only a device's newest change is kept (its row): a follower may skip
 * intermediate states of a device, never the last. Devices from before schema version 4
 * were numbered by the migration. */
/* Up to max devices whose change > after, by change (out[i].change), oldest first; returns
 * how many (errors as the reads below). */
int vs_device_changes_since(vs_store *s, uint64_t after, vs_device *out, size_t max);
/* The largest change number of any device (0 if none): where a follower that has just
 * loaded every device (vs_device_foreach) starts. */
int vs_device_change_last(vs_store *s, uint64_t *ret);

/* An EK certificate fetched from its maker's service (vouchd --ek-cert-fetch), kept so the
 * service is asked once per TPM; it is checked again whenever it is used. */
typedef struct vs_ekcert {
        char key[VS_ID_MAX + 1];       /* the EK key fingerprint (vc_ek_key_fingerprint) */
        char *url;                     /* where it was fetched */
        uint8_t *der;
        size_t der_len;
        int64_t fetched_at;            /* Unix seconds */
} vs_ekcert;

void vs_ekcert_done(vs_ekcert *c);
/* Queues an insert-or-replace of c (copied). */
int vs_ekcert_put(vs_store *s, const vs_ekcert *c, vs_done_fn done, void *userdata);
/* The certificate kept for key (-ENOENT: none); as the reads below. */
int vs_ekcert_get(vs_store *s, const char *key, vs_ekcert *ret);

/* ---- Leases: one instance attests a device at a time (issue 18, docs/scale-out.md) ----
 * A device's lease row names the instance that holds it; it is valid while that instance's
 * heartbeat is: a time in the instances table that its claims and renewals push forward, by
 * the database's clock (PostgreSQL's now(), the transaction's start; SQLite: the writer's
 * wall clock), so the instances' own clocks never matter. One heartbeat per instance, not
 * one expiry per lease: renewing is one row (vs_lease_renew_all), and an instance that dies
 * or loses the database loses all its leases at once, ttl after its last renewal.
 *
 * Claims, renewals and releases are writes: queued, committed by the writer thread with the
 * batch they join (a write that fails fails them, and theirs fail it: one transaction), and
 * answered on the writer thread; the caller (an event loop) never waits. A claim is granted
 * when the device has no lease, has one of this instance, or one of an instance whose
 * heartbeat has lapsed (taken over: res->taken_from names it). Two instances claiming one
 * device at once: the database orders them, one is granted, the other refused with the
 * first as holder.
 *
 * The holder's own view of its lease is its business: it must stop attesting a device once
 * it can no longer be sure of its heartbeat, i.e. ttl after it *queued* the last claim or
 * renewal that committed (the database counts from a later moment, the transaction's start:
 * the holder's deadline comes first), less a margin for the clocks' rates. */
typedef struct vs_lease_result {
        bool granted;                           /* the lease is this instance's (now) */
        char holder[VS_INSTANCE_MAX + 1];       /* the instance holding it (this one when granted) */
        /* a granted claim that took over the lease of another instance whose heartbeat had
         * lapsed (died, or lost the database): its name; "" when the device was free, released
         * or already this instance's. Verdicts that instance showed may not all be stored. */
        char taken_from[VS_INSTANCE_MAX + 1];
        int64_t expires_in_ms;                  /* the holder's heartbeat ends this long after the
                                                 * statement (by the database's clock; <= 0: lapsed) */
        /* A claim or renewal: this instance's heartbeat was not running when the batch that
         * carried it began (the first of this run, or it lapsed): the leases the instance
         * held before may have been taken over. It does not say which: claim each device
         * again before attesting it. */
        bool lapsed;
        /* A granted claim: the device's row (vs_device_get's) and its latest verdict
         * (vs_verdict_latest's), read in the claim's transaction after the lease was taken, so
         * the claimer needs no read of its own: has_row false when the store has no such device
         * (yet), has_latest false when it has no verdict. Owned by the store (valid during the
         * callback); never set by renewals, refused claims or vs_lease_get. */
        bool has_row, has_latest;
        vs_device row;
        vs_verdict latest;
        /* A granted claim whose row or latest verdict is there but could not be read (-EUCLEAN:
         * not as vouch wrote it, damaged; -ENOMEM): the claim and the rest of its transaction
         * stand, and the claimer, which cannot know the device's state, lets it go again. 0
         * otherwise. */
        int read_error;
} vs_lease_result;

/* On the writer thread once the claim's transaction committed (error 0, res filled) or failed
 * (<0: nothing claimed; res zeroed). */
typedef void (*vs_lease_fn)(int error, const vs_lease_result *res, void *userdata);

/* The longest heartbeat a claim or renewal may ask for. */
#define VS_LEASE_TTL_MAX_MS (24 * 3600 * 1000LL)

/* Queues a claim of device's lease for this store's instance (vs_instance), and pushes the
 * instance's heartbeat to at least ttl_ms from now (a heartbeat is never shortened). -EINVAL: an id longer than VS_ID_MAX or
 * empty, ttl_ms not in 1..VS_LEASE_TTL_MAX_MS; -ESHUTDOWN after vs_close began; -ENOMEM. */
int vs_lease_claim(vs_store *s, const char *device, int64_t ttl_ms, vs_lease_fn done, void *userdata);
/* Queues a heartbeat: every lease this instance holds is valid for ttl_ms from now at least
 * (one row written, however many leases). done (may be NULL) gets res->lapsed (and
 * expires_in_ms); errors as vs_lease_claim. */
int vs_lease_renew_all(vs_store *s, int64_t ttl_ms, vs_lease_fn done, void *userdata);
/* Queues the release of device's lease if this instance holds it (else a no-op): another
 * instance may claim it at once. */
int vs_lease_release(vs_store *s, const char *device, vs_done_fn done, void *userdata);
/* Queues the release of every lease of this instance. (vs_close also ends its heartbeat, so
 * that the leases it still holds can be claimed at once.) */
int vs_lease_release_all(vs_store *s, vs_done_fn done, void *userdata);
/* The device's lease as stored (synchronous read, as below): -ENOENT when none; granted
 * means held by this instance with its heartbeat running. */
int vs_lease_get(vs_store *s, const char *device, vs_lease_result *ret);

/* ---- The deployment's identity (issue 18, docs/scale-out.md): what the instances sharing a
 * store must agree on beside devices and verdicts ----
 *
 * Verdict keys. Each instance publishes the public halves of its verdict-signing keys: its
 * active key and its retired keys still valid. Every instance serves the union of what all
 * of them published (vouchd's GET /v1/keys), so that a verdict of any instance verifies with
 * the keys file of any instance. An instance's keys are a set of its own: publishing
 * replaces that set and leaves every other instance's as it is. */
#define VS_KEY_ID_MAX 64                /* hex SHA-256 of the DER SubjectPublicKeyInfo */
#define VS_KEY_PEM_MAX 4096
#define VS_KEYS_PUBLISH_MAX 64

typedef struct vs_verdict_key {
        char key_id[VS_KEY_ID_MAX + 1];
        char *pem;                              /* the public key, PEM "PUBLIC KEY" */
        /* Unix seconds until which verdicts it signed verify; 0: an active key (no end) */
        int64_t not_after;
        char instance[VS_INSTANCE_MAX + 1];     /* read only (ignored by publish): who published it */
} vs_verdict_key;

void vs_verdict_key_done(vs_verdict_key *k);
/* Queues the replacement of this instance's (vs_instance) published keys by keys[0..n)
 * (copied), in one transaction: publishing the same set again changes nothing; n 0
 * withdraws them all. -EINVAL: n over VS_KEYS_PUBLISH_MAX, a key id empty or longer than
 * VS_KEY_ID_MAX, a PEM missing, empty or longer than VS_KEY_PEM_MAX, a negative not_after,
 * the same key id twice; -ENOMEM; -ESHUTDOWN after vs_close began. */
int vs_verdict_keys_publish(vs_store *s, const vs_verdict_key *keys, size_t n, vs_done_fn done, void *userdata);
/* Up to max published keys of every instance, by key id, then instance (a key that several
 * instances publish comes once for each); returns how many (errors as the reads below).
 * The caller judges not_after against its clock: the rows are as published. */
int vs_verdict_keys_list(vs_store *s, vs_verdict_key *out, size_t max);

/* The deployment's CA. vouchd's verifier id is the key id of its CA's key: the instances of
 * one deployment (one CA, vouchd init --join) have the same one. The store keeps the first
 * one registered; an instance with another CA is not of this deployment. */
#define VS_VERIFIER_ID_MAX 64
/* Queues the registration of id (1 to VS_VERIFIER_ID_MAX characters) as the store's
 * verifier id if it has none yet (else nothing is written: the first one stays). -EINVAL;
 * -ENOMEM; -ESHUTDOWN. */
int vs_verifier_id_register(vs_store *s, const char *id, vs_done_fn done, void *userdata);
/* The store's verifier id into buf (n bytes); -ENOENT when none is registered; errors as the
 * reads below. */
int vs_verifier_id_get(vs_store *s, char *buf, size_t n);

/* Golden sets. A golden set's name and version mean one content in the whole deployment:
 * the first instance to register a name and version with its content's digest fixes it;
 * a set of that name and version with another digest is refused. */
#define VS_GOLDEN_NAME_MAX 128
#define VS_GOLDEN_DIGEST_MAX 64
#define VS_GOLDEN_REGISTER_MAX 1024

typedef struct vs_golden_digest {
        char name[VS_GOLDEN_NAME_MAX + 1];
        int64_t version;
        char digest[VS_GOLDEN_DIGEST_MAX + 1];  /* hex SHA-256 of the set's canonical content */
        /* the answer: what the store holds for name and version ("" when nothing), and the
         * instance that registered it first */
        char stored_digest[VS_GOLDEN_DIGEST_MAX + 1];
        char stored_by[VS_INSTANCE_MAX + 1];
} vs_golden_digest;

/* On the writer thread once the registration's transaction committed or failed: sets are
 * the registration's (sorted by name, then version), answered. error 0: every set is
 * registered with its digest (now, or before); -EEXIST: one or more sets are registered
 * with another digest (their stored_digest differs from their digest) and none of the sets
 * was stored (the transaction, and the other writes of its batch, committed all the same);
 * another error: the transaction failed (the answers are empty). */
typedef void (*vs_golden_fn)(int error, const vs_golden_digest *sets, size_t n, void *userdata);
/* Queues the registration of sets[0..n) (copied) for this instance, all or none: when none
 * of them is stored with another digest, the ones not stored yet are stored, registered by
 * this instance; otherwise none is. Registrations of several instances take turns
 * (PostgreSQL: a transaction-scoped advisory lock): two registering one new name and
 * version at once with different digests are answered 0 and -EEXIST, never both 0.
 * -EINVAL: n 0 or over VS_GOLDEN_REGISTER_MAX, a name empty or longer than
 * VS_GOLDEN_NAME_MAX, a digest empty or longer than VS_GOLDEN_DIGEST_MAX, the same name
 * and version twice; -ENOMEM; -ESHUTDOWN. */
int vs_golden_register(vs_store *s, const vs_golden_digest *sets, size_t n, vs_golden_fn done, void *userdata);
/* What is registered for name and version (ret's name, version, stored_digest and
 * stored_by; -ENOENT: nothing); errors as the reads below. */
int vs_golden_get(vs_store *s, const char *name, int64_t version, vs_golden_digest *ret);

/* The deployment's device CA (issue 19): the key id of the CA that issues device
 * certificates (vouchd's device-ca.pem, or the operator's), registered as the verifier id
 * is: the first one stays. Errors as vs_verifier_id_register and _get. */
int vs_device_ca_register(vs_store *s, const char *id, vs_done_fn done, void *userdata);
int vs_device_ca_get(vs_store *s, char *buf, size_t n);

/* Synchronous reads; -ENOENT when absent. A read that fails, at any row, is an error, never
 * a short answer: -EUCLEAN when the database finds its data damaged, -EIO otherwise (also
 * when the PostgreSQL server cannot be reached); vs_read_error then says why. */
int vs_device_get(vs_store *s, const char *id, vs_device *ret);
int vs_verdict_latest(vs_store *s, const char *device, vs_verdict *ret);
/* Up to max verdicts of a device, newest first; returns how many. */
int vs_verdict_history(vs_store *s, const char *device, vs_verdict *out, size_t max);
/* Verdicts with global sequence > since, oldest first, up to max (for watchers). */
int vs_verdict_since(vs_store *s, uint64_t since, vs_verdict *out, size_t max);
/* The largest global sequence ever stored (0 if none); numbers are never reused. (On
 * PostgreSQL a number given by the caller in a transaction that failed counts as used too:
 * the database's sequence is moved past it and sequences do not roll back; so does one
 * handed to a seal hook.) */
int vs_verdict_last_global(vs_store *s, uint64_t *ret);
/* Up to max certificates of a device (with their DER), newest first (by their verdicts'
 * sequence); returns how many. */
int vs_cert_list(vs_store *s, const char *device, vs_cert *out, size_t max);
/* What a certificate revocation list is made of, read in one snapshot of the store: fn gets
 * every revoked certificate whose not_after >= not_after_min (in no order; der NULL; fn runs
 * under the store's read lock, so it must not read the store; its negative return stops the
 * scan and is returned), and *ret_state the store's numbering as that snapshot has it: the
 * largest global sequence of a stored verdict plus the largest device change number. Every revocation is stored with a verdict or a device row's
 * change, both numbered in commit order (Global order, Device changes), so a later snapshot
 * that holds more revocations has a larger state; the state never decreases. Errors as
 * the reads below. */
int vs_cert_revoked(vs_store *s, int64_t not_after_min, int (*fn)(const vs_cert *c, void *ud), void *ud,
                    uint64_t *ret_state);
/* Calls fn for every device (for loading state at start); fn's error stops the scan. */
int vs_device_foreach(vs_store *s, int (*fn)(const vs_device *d, void *ud), void *ud);
/* The database's message for the last failed read ("" if none). */
void vs_read_error(vs_store *s, char *buf, size_t n);

/* Writes queued and not yet committed (for /metrics). */
size_t vs_queue_depth(vs_store *s);

/* The writer's record, for /metrics and the log: transactions committed and failed (a
 * failed one's writes all get an error and none of them is stored), writes committed, the
 * time spent in committed transactions (BEGIN to the end of COMMIT, its fsync included),
 * and the database's message for the last failure ("" if none). unavailable: the writer's
 * connection to the PostgreSQL server is down (writes fail at once; it is reconnecting);
 * reconnects: how often it came back. Always false and 0 on SQLite. */
typedef struct vs_stats {
        uint64_t commits, failures, writes;
        uint64_t commit_us;
        char last_error[400];
        bool unavailable;
        uint64_t reconnects;
} vs_stats;
void vs_get_stats(vs_store *s, vs_stats *ret);
/* The store gone while it runs. SQLite: the database deleted, renamed, replaced or
 * truncated, or its WAL or shared-memory file deleted or replaced (checked before every
 * commit and checkpoint). PostgreSQL: after a reconnection, or a write that found a table
 * missing, the database no longer holds this store (vouch's tables gone, or another
 * store's id in its meta table). From then on every transaction fails (nothing more is
 * acknowledged) and why (may be NULL) says what was found. */
bool vs_lost(vs_store *s, char *why, size_t n);
/* Blocks until everything queued so far is committed. */
void vs_flush(vs_store *s);
