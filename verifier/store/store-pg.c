/* SPDX-License-Identifier: Apache-2.0 */
/* store.h on PostgreSQL, through libpq. The writer thread (store.c) sends each batch as one
 * pipeline (BEGIN, its statements, COMMIT, one round trip) on its own connection; reads use
 * another connection, one at a time. A connection the server closed (a restart, an
 * administrator, a network that went away) is noticed before the next statement is sent
 * into it where possible, else by the statement that fails; from then on the store works
 * without it, every write and read failing at once with the reason, and reconnects by
 * itself with backoff: at once, then after 100 ms, doubling up to 5 s (the writer keeps
 * trying while idle, so stats.unavailable tells /healthz when the database is back). */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "store-backend.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define PROBE_MS 1000           /* an idle writer connection is looked at this often */
#define MSG 256                 /* a message of the server's, on one line */
#define WHY 512                 /* a message of the store's, holding one of the server's */
/* The lock that makes opening (creating, migrating, checking) one store at a time, for
 * several vouchd starting together on one database: "vouch" in ASCII. */
#define SCHEMA_LOCK "126875637523304"
/* The classes (first keys) of the two-key advisory locks: an instance's name while its
 * handle is open (lock_instance), and the store's commit order (COMMIT_ORDER_LOCK) */
#define INSTANCE_LOCK_CLASS "1987016035"
#define ORDER_LOCK_CLASS "1987016036"
/* ... and golden registrations, which take turns (store.h, vs_golden_register) */
#define GOLDEN_LOCK_CLASS "1987016037"

/* The types of the parameters and columns, as the server numbers them (pg_type.oid). */
#define BOOLOID 16
#define BYTEAOID 17
#define INT8OID 20
#define TEXTOID 25
#define TEXTARRAYOID 1009
#define INT8ARRAYOID 1016

/* ---- the schema: a chain of steps, each to the version it names ---- */

typedef struct schema_step {
        int version;
        const char *sql;
} schema_step;

static const schema_step schema_steps[] = {
        /* 2: devices, their last quote's clock state (a narrow row of its own: it changes
         * with every attestation, and an update writes the whole row to the WAL),
         * verdicts (the global sequence from a database sequence, so that the database can
         * number verdicts itself), meta (the schema version, the store's id and the run's
         * state) */
        { 2, "CREATE TABLE devices ("
             " id text PRIMARY KEY, ek_public bytea NOT NULL, ak_public bytea NOT NULL, golden text NOT NULL,"
             " approved boolean NOT NULL, revoked boolean NOT NULL, enrolled_at bigint NOT NULL,"
             " sequence bigint NOT NULL);"
             "CREATE TABLE device_clocks ("
             " id text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE, has_last boolean NOT NULL,"
             " reset_count bigint NOT NULL, restart_count bigint NOT NULL, clock bigint NOT NULL);"
             "CREATE SEQUENCE verdicts_gseq;"
             "CREATE TABLE verdicts ("
             " gseq bigint PRIMARY KEY DEFAULT nextval('verdicts_gseq'), device text NOT NULL, sequence bigint NOT NULL,"
             " status bigint NOT NULL, issued_at bigint NOT NULL, expires_at bigint NOT NULL, record bytea NOT NULL);"
             "ALTER SEQUENCE verdicts_gseq OWNED BY verdicts.gseq;"
             "CREATE INDEX verdicts_device ON verdicts (device, sequence);"
             "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);"
             "INSERT INTO meta VALUES ('schema_version', '2'), ('store_id', gen_random_uuid()::text);" },
        /* 3: the device's EK anchor (devices from before have an EK certificate), the EK
         * certificates fetched from their makers */
        { 3, "ALTER TABLE devices ADD COLUMN ek_anchor bigint NOT NULL DEFAULT 0;"
             "CREATE TABLE ek_certs (key text PRIMARY KEY, url text NOT NULL, der bytea NOT NULL,"
             " fetched_at bigint NOT NULL);"
             "UPDATE meta SET value='3' WHERE key='schema_version';" },
        /* 4: several instances on one store. The run state and the heartbeat per instance
         * (meta's 'run' row becomes instance "default"'s); leases (one instance attests a
         * device at a time, while its heartbeat runs, by the database's clock); the change
         * feed: devices.change, numbered from device_changes in commit order (the devices
         * from before numbered now) */
        { 4, "CREATE TABLE instances (name text PRIMARY KEY, run text NOT NULL, started_at timestamptz NOT NULL,"
             " closed_at timestamptz, alive_until timestamptz);"
             "INSERT INTO instances (name, run, started_at) SELECT 'default', value, now() FROM meta WHERE key='run';"
             "DELETE FROM meta WHERE key='run';"
             "CREATE TABLE leases (device text PRIMARY KEY, instance text NOT NULL, taken_from text);"
             "CREATE INDEX leases_instance ON leases (instance);"
             "CREATE SEQUENCE device_changes;"
             "ALTER TABLE devices ADD COLUMN change bigint NOT NULL DEFAULT 0;"
             "UPDATE devices SET change=nextval('device_changes');"
             "CREATE INDEX devices_change ON devices (change);"
             "UPDATE meta SET value='4' WHERE key='schema_version';" },
        /* 5: the deployment's identity: each instance's published verdict keys (the union
         * verifies every instance's verdicts), the golden sets' digests (a name and version
         * are one content in the whole deployment) */
        { 5, "CREATE TABLE verdict_keys (key_id text NOT NULL, instance text NOT NULL, pem text NOT NULL,"
             " not_after bigint NOT NULL, published_at timestamptz NOT NULL, PRIMARY KEY (key_id, instance));"
             "CREATE TABLE golden_sets (name text NOT NULL, version bigint NOT NULL, digest text NOT NULL,"
             " instance text NOT NULL, registered_at timestamptz NOT NULL, PRIMARY KEY (name, version));"
             "UPDATE meta SET value='5' WHERE key='schema_version';" },
        /* 6: the device certificates (issue 19; times in Unix seconds, revoked_at 0: not
         * revoked), by device and, for the revocation list, the revoked ones by expiry;
         * meta's 'device_ca_id' comes with the first instance that issues */
        { 6, "CREATE TABLE certs (serial text PRIMARY KEY, device text NOT NULL, not_before bigint NOT NULL,"
             " not_after bigint NOT NULL, sequence bigint NOT NULL, gseq bigint NOT NULL,"
             " revoked_at bigint NOT NULL DEFAULT 0, revoked_sequence bigint NOT NULL DEFAULT 0, der bytea NOT NULL);"
             "CREATE INDEX certs_device ON certs (device, sequence);"
             "CREATE INDEX certs_revoked ON certs (not_after) WHERE revoked_at <> 0;"
             "UPDATE meta SET value='6' WHERE key='schema_version';" },
};

/* What each version must hold (checked at open, before and after migrating): a statement
 * that fails when a table or column is missing. */
static const char *const structure_v2 =
        "SELECT id, ek_public, ak_public, golden, approved, revoked, enrolled_at, sequence FROM devices WHERE false;"
        "SELECT id, has_last, reset_count, restart_count, clock FROM device_clocks WHERE false;"
        "SELECT gseq, device, sequence, status, issued_at, expires_at, record FROM verdicts WHERE false;"
        "SELECT last_value FROM verdicts_gseq WHERE false;"
        "SELECT key, value FROM meta WHERE false;";
static const char *const structure_v3 =
        "SELECT ek_anchor FROM devices WHERE false;"
        "SELECT key, url, der, fetched_at FROM ek_certs WHERE false;";
static const char *const structure_v4 =
        "SELECT name, run, started_at, closed_at, alive_until FROM instances WHERE false;"
        "SELECT device, instance, taken_from FROM leases WHERE false;"
        "SELECT change FROM devices WHERE false;"
        "SELECT last_value FROM device_changes WHERE false;";
static const char *const structure_v5 =
        "SELECT key_id, instance, pem, not_after, published_at FROM verdict_keys WHERE false;"
        "SELECT name, version, digest, instance, registered_at FROM golden_sets WHERE false;";
static const char *const structure_v6 =
        "SELECT serial, device, not_before, not_after, sequence, gseq, revoked_at, revoked_sequence, der FROM certs"
        " WHERE false;";

/* ---- statements, prepared on each connection ---- */

typedef struct stmt {
        const char *name, *sql;
        int nparams;
        Oid types[13];
} stmt;

/* A device as read (DEVICE_COLS): the columns of devices and of device_clocks, the change. */
#define DEVICE_NCOLS 14
#define ROW_TYPES { TEXTOID, BYTEAOID, BYTEAOID, TEXTOID, BOOLOID, BOOLOID, INT8OID, BOOLOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID }
#define CLOCK_ROW                                                                                        \
        "INSERT INTO device_clocks (id, has_last, reset_count, restart_count, clock) VALUES ($1,$2,$3,$4,$5) "   \
        "ON CONFLICT (id) DO UPDATE SET has_last=$2, reset_count=$3, restart_count=$4, clock=$5"

enum {
        W_DEVICE,
        W_ENROLL,
        W_DEVICE_ACCESS,
        W_CLOCK_ROW,
        W_CLOCK,
        W_VERDICT,
        W_PRUNE,
        W_EKCERT,
        W_GSEQ_PAST,
        W_HEARTBEAT,
        W_REAP,
        W_CLAIM,
        W_CLAIM_ROW,
        W_CLAIM_LATEST,
        W_RELEASE,
        W_RELEASE_ALL,
        W_ORDER_LOCK,
        W_NUMBERS,
        W_ADMIN,
        W_CHANGE,
        W_LOCK_ROWS,
        W_KEYS_CLEAR,
        W_KEY_PUT,
        W_GOLDEN_LOCK,
        W_GOLDEN,
        W_VERIFIER_ID,
        W_DEVICE_CA_ID,
        W_CERT,
        W_CERT_REVOKE,
        W_CERT_PRUNE,
        W_COUNT
};

/* A device: its row and its clock state (a device without the latter is damaged: the NULLs
 * are found by check_row). The sequence: the row's (a device put) or its newest verdict's,
 * whichever is larger. */
#define DEVICE_COLS                                                                                      \
        "d.id, d.ek_public, d.ak_public, d.golden, d.approved, d.revoked, d.enrolled_at, c.has_last, "        \
        "c.reset_count, c.restart_count, c.clock, "                                                     \
        "greatest(d.sequence, coalesce((SELECT max(v.sequence) FROM verdicts v WHERE v.device=d.id), 0)), " \
        "d.ek_anchor, d.change"
#define DEVICE_FROM "devices d LEFT JOIN device_clocks c ON c.id = d.id"
#define VERDICT_COLS "gseq, device, sequence, status, issued_at, expires_at, record"

/* A lease holder's heartbeat (store.h, leases), by the database's clock: NULL, or no row, is
 * lapsed */
/* Whether the holder l.instance's heartbeat has lapsed, by its newest committed value: a
 * claim that waited for another's transaction (two claiming one free device at once) must
 * see that transaction's heartbeat, not its statement's snapshot's (FOR SHARE follows the
 * row to its newest version; FOR KEY SHARE would not). SKIP LOCKED: a heartbeat being
 * written right now is a live holder's; the claim never waits for it. A holder without a
 * row (never: instances are not deleted) has lapsed. */
#define HOLDER_LAPSED                                                                                  \
        "CASE WHEN NOT EXISTS (SELECT 1 FROM instances i WHERE i.name = l.instance) THEN true ELSE"      \
        " coalesce((SELECT coalesce(i.alive_until, '-infinity') <= now() FROM instances i"               \
        " WHERE i.name = l.instance FOR SHARE SKIP LOCKED), false) END"
/* (what is left of it, as the statement's snapshot has it: for the answer) */
#define HOLDER_ALIVE_UNTIL_READ "(SELECT i.alive_until FROM instances i WHERE i.name = l.instance)"
#define MS_LEFT(t) "(extract(epoch FROM coalesce(" t ", now()) - now()) * 1000)::bigint"

static const stmt writer_stmts[W_COUNT] = {
        [W_DEVICE] = { "w_device",
                       "INSERT INTO devices (id, ek_public, ak_public, golden, approved, revoked, enrolled_at, sequence,"
                       " ek_anchor) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
                       "ON CONFLICT (id) DO UPDATE SET ek_public=$2, ak_public=$3, golden=$4, approved=$5, revoked=$6,"
                       " enrolled_at=$7, sequence=$8, ek_anchor=$9",
                       9, { TEXTOID, BYTEAOID, BYTEAOID, TEXTOID, BOOLOID, BOOLOID, INT8OID, INT8OID, INT8OID } },
        /* an enrollment: the whole row for a new device; for a known one, not the admin's
         * fields (golden, approved, revoked), which only the API writes */
        [W_ENROLL] = { "w_enroll",
                       "INSERT INTO devices (id, ek_public, ak_public, golden, approved, revoked, enrolled_at, sequence,"
                       " ek_anchor) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
                       "ON CONFLICT (id) DO UPDATE SET ek_public=$2, ak_public=$3, enrolled_at=$7, sequence=$8,"
                       " ek_anchor=$9",
                       9, { TEXTOID, BYTEAOID, BYTEAOID, TEXTOID, BOOLOID, BOOLOID, INT8OID, INT8OID, INT8OID } },
        /* a revocation's row, with its verdict: the whole row for a new device; for a known
         * one, not its golden assignment (the admin's, vs_device_put_admin: this writer's copy
         * may be older than another instance's write) */
        [W_DEVICE_ACCESS] = { "w_device_access",
                              "INSERT INTO devices (id, ek_public, ak_public, golden, approved, revoked, enrolled_at,"
                              " sequence, ek_anchor) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
                              "ON CONFLICT (id) DO UPDATE SET ek_public=$2, ak_public=$3, approved=$5, revoked=$6,"
                              " enrolled_at=$7, sequence=$8, ek_anchor=$9",
                              9,
                              { TEXTOID, BYTEAOID, BYTEAOID, TEXTOID, BOOLOID, BOOLOID, INT8OID, INT8OID, INT8OID } },
        /* and its clock state, with any of them */
        [W_CLOCK_ROW] = { "w_clock_row", CLOCK_ROW, 5, { TEXTOID, BOOLOID, INT8OID, INT8OID, INT8OID } },
        [W_CLOCK] = { "w_clock",
                      "UPDATE device_clocks SET has_last=true, reset_count=$2, restart_count=$3, clock=$4 WHERE id=$1",
                      4, { TEXTOID, INT8OID, INT8OID, INT8OID } },
        /* the caller's global sequence, or the database's next */
        [W_VERDICT] = { "w_verdict",
                        "INSERT INTO verdicts (device, sequence, status, issued_at, expires_at, record, gseq)"
                        " VALUES ($1,$2,$3,$4,$5,$6,coalesce($7, nextval('verdicts_gseq')))",
                        7, { TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, BYTEAOID, INT8OID } },
        [W_PRUNE] = { "w_prune", "DELETE FROM verdicts WHERE device=$1 AND sequence<=$2", 2, { TEXTOID, INT8OID } },
        [W_EKCERT] = { "w_ekcert",
                       "INSERT INTO ek_certs (key, url, der, fetched_at) VALUES ($1,$2,$3,$4) "
                       "ON CONFLICT (key) DO UPDATE SET url=$2, der=$3, fetched_at=$4",
                       4, { TEXTOID, TEXTOID, BYTEAOID, INT8OID } },
        /* numbers given by callers are never handed out by the sequence (as SQLite's
         * AUTOINCREMENT): it is moved past them (not transactional: see store.h) */
        [W_GSEQ_PAST] = { "w_gseq_past",
                          "SELECT setval('verdicts_gseq', $1) WHERE $1 > coalesce(pg_sequence_last_value('verdicts_gseq'), 0)",
                          1, { INT8OID } },
        /* leases (store.h): instance $1's heartbeat pushed to ttl $2 ms from now at least;
         * whether it had lapsed (the row as it was: o), what is left of it now */
        [W_HEARTBEAT] = { "w_heartbeat",
                          "UPDATE instances i SET alive_until = greatest(o.alive_until, now() + $2 * interval '1 millisecond')"
                          " FROM (SELECT alive_until FROM instances WHERE name = $1 FOR NO KEY UPDATE) o WHERE i.name = $1 "
                          "RETURNING coalesce(o.alive_until, '-infinity') <= now(), " MS_LEFT("i.alive_until"),
                          2, { TEXTOID, INT8OID } },
        /* instance $1 (of store $2) ends the heartbeat of every other instance whose database
         * session is gone: its lock (lock_instance) is free, so the process died or lost the
         * database and can commit nothing more (a writer back later finds its heartbeat
         * lapsed and gives every lease up). Its devices' leases lapse now, not at the end of
         * its ttl, and their agents, reconnecting to the others, are claimed at once instead
         * of refused until then. The lock taken by the probe ends with the transaction. */
        [W_REAP] = { "w_reap",
                     "UPDATE instances SET alive_until = now() WHERE name <> $1 AND alive_until > now()"
                     " AND pg_try_advisory_xact_lock(" INSTANCE_LOCK_CLASS ", hashtext($2 || '/' || name))",
                     2, { TEXTOID, TEXTOID } },
        /* device $1 for instance $2: granted when free, ours, or its holder's heartbeat has
         * lapsed (taken_from then names that holder; lapsed judged once); the row as it is now
         * either way */
        [W_CLAIM] = { "w_claim",
                      "INSERT INTO leases AS l (device, instance) VALUES ($1, $2) ON CONFLICT (device) DO UPDATE SET"
                      " (taken_from, instance) = (SELECT"
                      " CASE WHEN l.instance = $2 THEN NULL WHEN x.lapsed THEN l.instance ELSE l.taken_from END,"
                      " CASE WHEN l.instance = $2 OR x.lapsed THEN $2 ELSE l.instance END"
                      " FROM (SELECT l.instance <> $2 AND " HOLDER_LAPSED " AS lapsed) x) "
                      "RETURNING l.instance, coalesce(l.taken_from, ''), " MS_LEFT(HOLDER_ALIVE_UNTIL_READ),
                      2, { TEXTOID, TEXTOID } },
        /* a granted claim's device $1 (instance $2 holds its lease now, in this transaction): its
         * row and its latest verdict, read after the claim (a statement of its own: its snapshot
         * has what the previous holder committed before the claim could take the lease); no row
         * when the claim was refused */
        [W_CLAIM_ROW] = { "w_claim_row",
                          "SELECT " DEVICE_COLS " FROM " DEVICE_FROM " WHERE d.id = $1"
                          " AND EXISTS (SELECT 1 FROM leases l WHERE l.device = $1 AND l.instance = $2)",
                          2, { TEXTOID, TEXTOID } },
        [W_CLAIM_LATEST] = { "w_claim_latest",
                             "SELECT " VERDICT_COLS " FROM verdicts WHERE device = $1"
                             " AND EXISTS (SELECT 1 FROM leases l WHERE l.device = $1 AND l.instance = $2)"
                             " ORDER BY sequence DESC LIMIT 1",
                             2, { TEXTOID, TEXTOID } },
        [W_RELEASE] = { "w_release", "DELETE FROM leases WHERE device = $1 AND instance = $2", 2, { TEXTOID, TEXTOID } },
        [W_RELEASE_ALL] = { "w_release_all", "DELETE FROM leases WHERE instance = $1", 1, { TEXTOID } },
        /* commit order (store.h, Global order): the store's lock ($1 its id), held until the
         * transaction ends; then $1 numbers from the sequence, in order */
        [W_ORDER_LOCK] = { "w_order_lock", "SELECT pg_advisory_xact_lock(" ORDER_LOCK_CLASS ", hashtext($1))", 1,
                           { TEXTOID } },
        /* the admin's fields given (NULL: kept), of a known device */
        [W_ADMIN] = { "w_admin",
                      "UPDATE devices SET golden=coalesce($2, golden), approved=coalesce($3, approved),"
                      " revoked=coalesce($4, revoked) WHERE id=$1",
                      4, { TEXTOID, TEXTOID, BOOLOID, BOOLOID } },
        /* the device rows a batch writes, locked first and in one order (the ids'): two
         * instances' batches writing some of the same devices (an admin action at one, the
         * holder's writes at the other) then wait for each other, never deadlock */
        [W_LOCK_ROWS] = { "w_lock_rows", "SELECT 1 FROM devices WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE", 1,
                          { TEXTARRAYOID } },
        /* a written row's change number (store.h, device changes), under the order lock */
        [W_CHANGE] = { "w_change", "UPDATE devices SET change=nextval('device_changes') WHERE id=$1", 1, { TEXTOID } },
        [W_NUMBERS] = { "w_numbers", "SELECT nextval('verdicts_gseq') AS n FROM generate_series(1, $1) ORDER BY n", 1,
                        { INT8OID } },
        /* the deployment's identity (store.h): instance $1's verdict keys replaced (its rows
         * only: no other instance's batch waits for them) */
        [W_KEYS_CLEAR] = { "w_keys_clear", "DELETE FROM verdict_keys WHERE instance = $1", 1, { TEXTOID } },
        /* ... by the keys $1 (ids), $2 (PEMs), $3 (not_after): arrays in the same order; $4
         * the instance */
        [W_KEY_PUT] = { "w_key_put",
                        "INSERT INTO verdict_keys (key_id, instance, pem, not_after, published_at)"
                        " SELECT k, $4, p, a, now() FROM unnest($1, $2, $3) AS x (k, p, a)",
                        4, { TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTOID } },
        /* golden registrations take turns ($1 the store's id), so that the statement below
         * sees every registration committed before it */
        [W_GOLDEN_LOCK] = { "w_golden_lock", "SELECT pg_advisory_xact_lock(" GOLDEN_LOCK_CLASS ", hashtext($1))", 1,
                            { TEXTOID } },
        /* the sets ($1 names, $2 versions, $3 digests: arrays in the same order) stored by
         * instance $4 unless one of them is stored with another digest; what was stored for
         * each before, in name and version order */
        [W_GOLDEN] = { "w_golden",
                       "WITH i AS (SELECT * FROM unnest($1, $2, $3) AS i (name, version, digest)),"
                       " s AS (SELECT i.name, i.version, i.digest, g.digest AS stored, g.instance AS stored_by"
                       " FROM i LEFT JOIN golden_sets g ON g.name = i.name AND g.version = i.version),"
                       " ins AS (INSERT INTO golden_sets (name, version, digest, instance, registered_at)"
                       " SELECT name, version, digest, $4, now() FROM s WHERE stored IS NULL"
                       " AND NOT EXISTS (SELECT 1 FROM s WHERE stored <> digest) RETURNING 1) "
                       "SELECT name, version, coalesce(stored, ''), coalesce(stored_by, '') FROM s"
                       " ORDER BY name COLLATE \"C\", version",
                       4, { TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTOID } },
        /* the deployment's verifier id: the first one registered stays */
        [W_VERIFIER_ID] = { "w_verifier_id",
                            "INSERT INTO meta (key, value) VALUES ('verifier_id', $1) ON CONFLICT (key) DO NOTHING", 1,
                            { TEXTOID } },
        [W_DEVICE_CA_ID] = { "w_device_ca_id",
                             "INSERT INTO meta (key, value) VALUES ('device_ca_id', $1) ON CONFLICT (key) DO NOTHING", 1,
                             { TEXTOID } },
        /* device certificates (store.h): one stored with its verdict (its global sequence
         * $6, or the one the verdict just took from the sequence); device $1's revoked at $2
         * by its verdict of sequence $3 (0: its row); its pruned ones */
        [W_CERT] = { "w_cert",
                     "INSERT INTO certs (serial, device, not_before, not_after, sequence, gseq, der)"
                     " VALUES ($1,$2,$3,$4,$5,coalesce($6, currval('verdicts_gseq')),$7)",
                     7, { TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, BYTEAOID } },
        [W_CERT_REVOKE] = { "w_cert_revoke",
                            "UPDATE certs SET revoked_at=$2, revoked_sequence=$3 WHERE device=$1 AND revoked_at=0"
                            " AND not_after>$2",
                            3, { TEXTOID, INT8OID, INT8OID } },
        [W_CERT_PRUNE] = { "w_cert_prune", "DELETE FROM certs WHERE device=$1 AND sequence<=$2 AND not_after<$3", 3,
                           { TEXTOID, INT8OID, INT8OID } },
};

/* Retention as reads see it (store.h), whether or not the pruning has deleted the rest yet. */
#define RETAINED "sequence > (SELECT max(r.sequence) FROM verdicts r WHERE r.device=verdicts.device) - $3"
#define CERT_COLS "serial, device, not_before, not_after, sequence, gseq, revoked_at, revoked_sequence"
#define CERT_COLS_C                                                                                      \
        "c.serial, c.device, c.not_before, c.not_after, c.sequence, c.gseq, c.revoked_at, c.revoked_sequence"

enum {
        R_DEVICE,
        R_DEVICES,
        R_HISTORY,
        R_SINCE,
        R_LAST,
        R_EKCERT,
        R_LEASE,
        R_CHANGES,
        R_CHANGE_LAST,
        R_KEYS,
        R_GOLDEN,
        R_VERIFIER_ID,
        R_DEVICE_CA_ID,
        R_CERTS,
        R_REVOKED,
        R_COUNT
};

static const stmt reader_stmts[R_COUNT] = {
        [R_DEVICE] = { "r_device", "SELECT " DEVICE_COLS " FROM " DEVICE_FROM " WHERE d.id=$1", 1, { TEXTOID } },
        [R_DEVICES] = { "r_devices", "SELECT " DEVICE_COLS " FROM " DEVICE_FROM, 0, { 0 } },
        [R_HISTORY] = { "r_history",
                        "SELECT " VERDICT_COLS " FROM verdicts WHERE device=$1 AND " RETAINED
                        " ORDER BY sequence DESC LIMIT $2",
                        3, { TEXTOID, INT8OID, INT8OID } },
        [R_SINCE] = { "r_since",
                      "SELECT " VERDICT_COLS " FROM verdicts WHERE gseq>$1 AND " RETAINED " ORDER BY gseq LIMIT $2",
                      3, { INT8OID, INT8OID, INT8OID } },
        /* the sequence remembers the largest number handed out, also after retention
         * deleted its row */
        [R_LAST] = { "r_last",
                     "SELECT greatest(coalesce(pg_sequence_last_value('verdicts_gseq'), 0),"
                     " coalesce((SELECT max(gseq) FROM verdicts), 0))",
                     0, { 0 } },
        [R_EKCERT] = { "r_ekcert", "SELECT key, url, der, fetched_at FROM ek_certs WHERE key=$1", 1, { TEXTOID } },
        [R_CHANGES] = { "r_changes", "SELECT " DEVICE_COLS " FROM " DEVICE_FROM " WHERE d.change > $1 ORDER BY d.change"
                        " LIMIT $2", 2, { INT8OID, INT8OID } },
        [R_CHANGE_LAST] = { "r_change_last", "SELECT coalesce(max(change), 0)::bigint FROM devices", 0, { 0 } },
        [R_LEASE] = { "r_lease",
                      "SELECT l.instance, coalesce(l.taken_from, ''), " MS_LEFT(HOLDER_ALIVE_UNTIL_READ)
                      " FROM leases l WHERE l.device = $1",
                      1, { TEXTOID } },
        [R_KEYS] = { "r_keys",
                     "SELECT key_id, instance, pem, not_after FROM verdict_keys ORDER BY key_id COLLATE \"C\","
                     " instance COLLATE \"C\" LIMIT $1",
                     1, { INT8OID } },
        [R_GOLDEN] = { "r_golden", "SELECT digest, instance FROM golden_sets WHERE name = $1 AND version = $2", 2,
                       { TEXTOID, INT8OID } },
        [R_VERIFIER_ID] = { "r_verifier_id", "SELECT value FROM meta WHERE key = 'verifier_id'", 0, { 0 } },
        [R_DEVICE_CA_ID] = { "r_device_ca_id", "SELECT value FROM meta WHERE key = 'device_ca_id'", 0, { 0 } },
        [R_CERTS] = { "r_certs",
                      "SELECT " CERT_COLS ", der FROM certs WHERE device = $1 ORDER BY sequence DESC, not_before DESC,"
                      " serial COLLATE \"C\" LIMIT $2",
                      2, { TEXTOID, INT8OID } },
        /* one statement, one snapshot: the state in every row, the revoked certificates
         * beside it (none: one row of NULLs) */
        [R_REVOKED] = { "r_revoked",
                        "SELECT n.state, " CERT_COLS_C " FROM (SELECT"
                        " (coalesce((SELECT max(gseq) FROM verdicts), 0) +"
                        " coalesce((SELECT max(change) FROM devices), 0))::bigint AS state) n"
                        " LEFT JOIN certs c ON c.revoked_at <> 0 AND c.not_after >= $1",
                        1, { INT8OID } },
};

static const Oid device_types[] = ROW_TYPES;
static const Oid verdict_types[] = { INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, BYTEAOID };
static const Oid ekcert_types[] = { TEXTOID, TEXTOID, BYTEAOID, INT8OID };
static const Oid lease_types[] = { TEXTOID, TEXTOID, INT8OID };

/* ---- connections ---- */

typedef struct pg_conn {
        PGconn *conn;
        bool writer;            /* which statements it has */
        bool ok;                /* connected, checked, statements prepared */
        bool goodbye;           /* the server said it is closing the connection; why: */
        char goodbye_why[MSG];
        int64_t next_try_ms;    /* while down: the next reconnection attempt (CLOCK_MONOTONIC) */
        int64_t down_since_ms;
        long backoff_ms;        /* the wait after the next failed attempt */
        char error[MSG];        /* while down: why */
} pg_conn;

typedef struct pg_store {
        const char *url;        /* s->target */
        char store_id[64];      /* meta's store_id: a reconnection must find this store */
        pg_conn w;              /* the writer thread's */
        pg_conn r;              /* the reads', under s->rlock */
        _Atomic int64_t last_up_ms; /* the last time a connection came back */
        int w_pid;              /* the writer's session (its server process), the last one set up */
        struct tag *tags;       /* writer thread: what each statement of a pipeline is for */
        size_t tags_cap;
        uint64_t numbers[VS_BATCH_MAX]; /* writer thread: a batch's commit-ordered numbers */
        size_t n_numbers;
        vs_write *lease_plan[VS_BATCH_MAX]; /* writer thread: a batch's lease writes (send_leases) */
        bool hb_lapsed;                 /* writer thread: the batch's heartbeat (T_HEARTBEAT) */
        int64_t hb_left_ms;
        int64_t w_up_ms;                /* writer thread: when the writer's session was set up */
        int64_t reaped_ms;              /* writer thread: the last W_REAP sent */
} pg_store;

/* The writer's wall clock, Unix seconds (a revocation by a device row's write). */
static int64_t wall_seconds(void) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        return (int64_t) t.tv_sec;
}

static int64_t now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* libpq's messages span lines ("...\n\tIs the server running..."): one line, no prefix. */
static void one_line(char *dst, size_t n, const char *msg) {
        size_t k = 0;
        bool space = false;
        if (!n)
                return;
        if (!msg)
                msg = "";
        for (const char *p = msg; *p && k + 1 < n; p++) {
                if (*p == '\n' || *p == '\t' || *p == ' ') {
                        space = k > 0;
                        continue;
                }
                if (space && k + 2 < n)
                        dst[k++] = ' ';
                space = false;
                dst[k++] = *p;
        }
        dst[k] = 0;
}

/* A failed statement's message: the server's primary message and its detail. */
static void result_message(const PGresult *res, const PGconn *conn, char *buf, size_t n) {
        const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
        char tmp[600];
        if (!primary) {
                one_line(buf, n, res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn));
                if (!*buf)
                        snprintf(buf, n, "%s", res ? PQresStatus(PQresultStatus(res)) : "no answer from the server");
                return;
        }
        snprintf(tmp, sizeof(tmp), "%s%s%s%s", primary, detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
        one_line(buf, n, tmp);
}

static bool sqlstate_is(const PGresult *res, const char *prefix) {
        const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        return st && strncmp(st, prefix, strlen(prefix)) == 0;
}

/* Notices are not shown (vouchd logs what matters itself); but a FATAL one is the server's
 * goodbye, sent before it closes an idle connection (a shutdown, pg_terminate_backend),
 * which libpq passes on as a notice. */
static void on_notice(void *arg, const PGresult *res) {
        pg_conn *c = arg;
        const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
        if (c && sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
                c->goodbye = true;
                result_message(res, NULL, c->goodbye_why, sizeof(c->goodbye_why));
        }
}

/* Runs sql (one or more statements, text results); 0, or -EIO with the server's message. */
static int exec_sql(PGconn *conn, const char *sql, char *err, size_t errlen) {
        PGresult *res = PQexec(conn, sql);
        ExecStatusType st = PQresultStatus(res);
        int r = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -EIO;
        if (r < 0 && err)
                result_message(res, conn, err, errlen);
        PQclear(res);
        return r;
}

/* One text value from a one-row query with text parameters; 0 (buf "" and *found false when
 * no row), or -EIO. */
static int query_text_p(PGconn *conn, const char *sql, const char *const *params, int nparams, char *buf, size_t n,
                        bool *found, char *err, size_t errlen) {
        PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
        int r = 0;
        *buf = 0;
        *found = false;
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                result_message(res, conn, err, errlen);
                r = -EIO;
        } else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
                snprintf(buf, n, "%s", PQgetvalue(res, 0, 0));
                *found = true;
        }
        PQclear(res);
        return r;
}

static int query_text(PGconn *conn, const char *sql, char *buf, size_t n, bool *found, char *err, size_t errlen) {
        return query_text_p(conn, sql, NULL, 0, buf, n, found, err, errlen);
}

/* A password in the URL would be in vouchd's command line (ps) and its logs: refused, as
 * libpq finds one in PGPASSFILE or ~/.pgpass. */
static int check_url(const char *url, char *err, size_t errlen) {
        char *msg = NULL;
        PQconninfoOption *opts = PQconninfoParse(url, &msg);
        int r = 0;
        if (!opts) {
                char m[MSG];
                one_line(m, sizeof(m), msg ? msg : "out of memory");
                snprintf(err, errlen, "store URL \"%.200s\" is not a valid libpq connection URI: %s", url, m);
                PQfreemem(msg);
                return -EINVAL;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++)
                if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) {
                        snprintf(err, errlen, "the store URL holds a password: put it in ~/.pgpass or the file named by "
                                              "PGPASSFILE instead (a URL is seen in ps and in logs)");
                        r = -EINVAL;
                }
        PQconninfoFree(opts);
        return r;
}

/* A new connection to url. The URL's own settings win over these defaults: connecting
 * gives up after 5 s, and a TCP peer that stopped answering is found dead within about
 * 10 s (keepalives, tcp_user_timeout), so no statement waits for it forever. (Reads are
 * synchronous: in a network partition a read, or the reconnection it tries when one is
 * due, holds its caller that long.) */
static PGconn *connect_url(const char *url, pg_conn *owner, char *err, size_t errlen) {
        static const char *const keys[] = { "connect_timeout", "keepalives_idle", "keepalives_interval",
                                            "keepalives_count", "tcp_user_timeout", "fallback_application_name",
                                            "dbname", NULL };
        const char *vals[] = { "5", "5", "2", "3", "10000", "vouchd", url, NULL };
        PGconn *c = PQconnectdbParams(keys, vals, 1);
        if (!c) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        if (PQstatus(c) != CONNECTION_OK) {
                one_line(err, errlen, PQerrorMessage(c));
                PQfinish(c);
                return NULL;
        }
        if (owner)
                owner->goodbye = false;
        PQsetNoticeReceiver(c, on_notice, owner);
        return c;
}

static int prepare_all(PGconn *conn, const stmt *stmts, size_t n, char *err, size_t errlen) {
        for (size_t i = 0; i < n; i++) {
                PGresult *res = PQprepare(conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, stmts[i].types);
                int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
                if (!ok) {
                        char m[MSG];
                        result_message(res, conn, m, sizeof(m));
                        snprintf(err, errlen, "cannot prepare %s: %s", stmts[i].name, m);
                }
                PQclear(res);
                if (!ok)
                        return -EIO;
        }
        return 0;
}

/* Whether the database still holds the store that was opened: its meta table, with the
 * same store id and schema version. -ESTALE (and the store lost for good) when not. */
static int check_identity(vs_store *s, PGconn *conn, char *why, size_t n) {
        pg_store *p = s->be;
        char id[64], version[32], msg[MSG], lost[WHY];
        bool found_id, found_version;
        PGresult *res = PQexec(conn, "SELECT (SELECT value FROM meta WHERE key='store_id'),"
                                     " (SELECT value FROM meta WHERE key='schema_version')");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                bool gone = sqlstate_is(res, "42P01"); /* undefined_table */
                result_message(res, conn, msg, sizeof(msg));
                PQclear(res);
                if (!gone) {
                        snprintf(why, n, "%s", msg);
                        return -EIO;
                }
                snprintf(lost, sizeof(lost), "%.150s no longer holds the store vouchd opened (%.200s): nothing more is "
                                             "stored or acknowledged", p->url, msg);
                vs__set_lost(s, lost);
                snprintf(why, n, "%s", lost);
                return -ESTALE;
        }
        found_id = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
        found_version = PQntuples(res) == 1 && !PQgetisnull(res, 0, 1);
        snprintf(id, sizeof(id), "%s", found_id ? PQgetvalue(res, 0, 0) : "");
        snprintf(version, sizeof(version), "%s", found_version ? PQgetvalue(res, 0, 1) : "");
        PQclear(res);
        char want[16];
        snprintf(want, sizeof(want), "%d", VS_SCHEMA_VERSION);
        if (strcmp(id, p->store_id) == 0 && strcmp(version, want) == 0)
                return 0;
        if (strcmp(id, p->store_id) != 0)
                snprintf(lost, sizeof(lost), "%.150s holds another store now (store id %s, was %s): nothing more is "
                                             "stored or acknowledged", p->url, found_id ? id : "missing", p->store_id);
        else
                snprintf(lost, sizeof(lost), "%.150s has schema version %s now, not %s: nothing more is stored or "
                                             "acknowledged", p->url, version, want);
        vs__set_lost(s, lost);
        snprintf(why, n, "%s", lost);
        return -ESTALE;
}

/* The instance's name as this handle's alone (store.h, vs_open_options): a session advisory
 * lock on the writer's connection, keyed by the store's id and the name (vs_close unlocks
 * it; a connection's end, a crash included, releases it once the server has seen the end).
 * Taken is tried again for up to wait_ms: the server may still be ending the session of a
 * previous process (a restart), or, after a reconnection, this handle's own previous
 * session (old_pid: its backend, ended here if it still holds the lock: a network that went
 * away leaves the server holding it until its keepalives fail). 0; -EBUSY when another
 * session holds it; -EIO. */
static int lock_instance(vs_store *s, PGconn *conn, int old_pid, long wait_ms, char *why, size_t n) {
        pg_store *p = s->be;
        char key[sizeof(p->store_id) + VS_INSTANCE_MAX + 2], pid[16], got[8], msg[MSG];
        const char *args[2] = { key, pid };
        bool found;
        snprintf(key, sizeof(key), "%s/%s", p->store_id, s->instance);
        snprintf(pid, sizeof(pid), "%d", old_pid);
        for (int64_t until = now_ms() + wait_ms;;) {
                if (query_text_p(conn, "SELECT pg_try_advisory_lock(" INSTANCE_LOCK_CLASS ", hashtext($1))", args, 1,
                                 got, sizeof(got), &found, msg, sizeof(msg)) < 0) {
                        snprintf(why, n, "cannot lock instance %s: %s", s->instance, msg);
                        return -EIO;
                }
                if (found && strcmp(got, "t") == 0)
                        return 0;
                if (now_ms() >= until)
                        break;
                if (old_pid > 0) /* the lock's holder, if it is this handle's previous session */
                        query_text_p(conn,
                                     "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory'"
                                     " AND l.pid = $2::int AND l.classid = " INSTANCE_LOCK_CLASS "::oid"
                                     " AND l.objsubid = 2 AND l.objid = (hashtext($1)::bigint & 4294967295)::oid",
                                     args, 2, got, sizeof(got), &found, msg, sizeof(msg));
                struct timespec ts = { .tv_nsec = 50 * 1000000L };
                nanosleep(&ts, NULL);
        }
        snprintf(why, n, "instance %s is running already: another vouchd holds its name on this store (each "
                         "instance needs a name of its own)", s->instance);
        return -EBUSY;
}

/* A new connection made ready for the store: session settings, the store's identity, the
 * statements (closed again if any of it fails). */
static int conn_setup(vs_store *s, pg_conn *c, char *why, size_t n) {
        pg_store *p = s->be;
        char msg[WHY];
        int r;
        /* a verdict is acknowledged only once durable: never with synchronous_commit off. A
         * writer's transaction idle for 10 s (its client gone quiet between the two halves of
         * a commit-ordered batch: a partition, a stop) is ended by the server, so that the
         * store's order lock it holds is not held for longer */
        if ((r = exec_sql(c->conn,
                          c->writer ? "SELECT set_config('synchronous_commit', 'on', false)"
                                      " WHERE current_setting('synchronous_commit') = 'off';"
                                      "SET idle_in_transaction_session_timeout = '10s'"
                                    : "SET default_transaction_read_only = on",
                          msg, sizeof(msg))) < 0 ||
            (r = check_identity(s, c->conn, msg, sizeof(msg))) < 0 ||
            (c->writer && (r = lock_instance(s, c->conn, p->w_pid, 2000, msg, sizeof(msg))) < 0) ||
            (r = c->writer ? prepare_all(c->conn, writer_stmts, W_COUNT, msg, sizeof(msg))
                           : prepare_all(c->conn, reader_stmts, R_COUNT, msg, sizeof(msg))) < 0) {
                if (r == -EBUSY) { /* the name taken while this handle was away: it is not ours now */
                        char lost[WHY];
                        snprintf(lost, sizeof(lost), "%.300s: nothing more is stored or acknowledged", msg);
                        vs__set_lost(s, lost);
                        r = -ESTALE;
                }
                snprintf(why, n, "%.150s: %.340s", p->url, msg);
                PQfinish(c->conn);
                c->conn = NULL;
                return r;
        }
        if (c->writer) {
                p->w_pid = PQbackendPID(c->conn);
                p->w_up_ms = now_ms();
        }
        return 0;
}

/* (Re)connects c. */
static int conn_open(vs_store *s, pg_conn *c, char *why, size_t n) {
        pg_store *p = s->be;
        char msg[MSG];
        PQfinish(c->conn);
        c->conn = connect_url(p->url, c, msg, sizeof(msg));
        if (!c->conn) {
                snprintf(why, n, "cannot connect to %.150s: %s", p->url, msg);
                return -EIO;
        }
        return conn_setup(s, c, why, n);
}

static void conn_close(pg_conn *c) {
        PQfinish(c->conn);
        c->conn = NULL;
        c->ok = false;
}

/* c was found broken: the next attempt to reconnect is at once (the server may only have
 * restarted), the ones after that with backoff. */
static void conn_broken(pg_conn *c, const char *why) {
        if (c->ok) {
                c->ok = false;
                c->next_try_ms = 0;
                c->backoff_ms = BACKOFF_MIN_MS;
                c->down_since_ms = now_ms();
        }
        snprintf(c->error, sizeof(c->error), "%.250s", why);
}

/* Why c's connection is gone. */
static void conn_gone_why(const pg_conn *c, char *buf, size_t n) {
        one_line(buf, n, c->conn ? PQerrorMessage(c->conn) : "");
        if (!*buf)
                snprintf(buf, n, "%s", c->goodbye ? c->goodbye_why : "the connection was closed");
}

/* Whether c's idle connection is still there: not when the server's goodbye (a restart, an
 * administrator ending it) has arrived, or the socket is closed. Never waits: what has not
 * arrived yet is found by the next statement, which then fails. */
static bool conn_alive(pg_conn *c) {
        /* twice: the goodbye and the end of the stream may need a read each */
        for (int i = 0; i < 2; i++)
                if (!c->conn || c->goodbye || !PQconsumeInput(c->conn) || PQstatus(c->conn) != CONNECTION_OK)
                        return false;
        return !c->goodbye;
}

/* Whether a reconnection of c is due: its backoff has passed, or the store's other
 * connection came back since c's last failure. */
static bool conn_due(pg_store *p, const pg_conn *c, int64_t now) {
        return now >= c->next_try_ms || atomic_load(&p->last_up_ms) > c->down_since_ms;
}

/* c usable: 0, or -EIO (why says so) while the database cannot be reached; a reconnection is
 * tried only when due (or when the other connection came back since c went down). */
static int conn_ready(vs_store *s, pg_conn *c, char *why, size_t n) {
        pg_store *p = s->be;
        char msg[WHY];
        if (vs_lost(s, why, n))
                return -ESTALE;
        if (c->ok) {
                if (conn_alive(c))
                        return 0;
                conn_gone_why(c, msg, sizeof(msg));
                conn_broken(c, msg);
        }
        int64_t now = now_ms();
        if (!conn_due(p, c, now)) {
                snprintf(why, n, "the database is unreachable (%s); reconnecting, next attempt in %" PRId64 " ms",
                         c->error, c->next_try_ms - now);
                return -EIO;
        }
        int r = conn_open(s, c, msg, sizeof(msg));
        if (r < 0) {
                snprintf(c->error, sizeof(c->error), "%.250s", msg);
                c->down_since_ms = now_ms();
                c->next_try_ms = c->down_since_ms + c->backoff_ms;
                c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
                snprintf(why, n, "the database is unreachable (%.400s); reconnecting", msg);
                return r == -ESTALE ? r : -EIO;
        }
        c->ok = true;
        c->backoff_ms = BACKOFF_MIN_MS;
        c->error[0] = 0;
        atomic_store(&p->last_up_ms, now_ms());
        return 0;
}

/* ---- writes ---- */

/* A result's values (binary), as the statement's types say. */
static int64_t get_i64(const PGresult *res, int row, int col) {
        uint64_t be;
        memcpy(&be, PQgetvalue(res, row, col), 8);
        return (int64_t) be64toh(be);
}

static bool get_bool(const PGresult *res, int row, int col) {
        return PQgetvalue(res, row, col)[0] != 0;
}

static void get_text(const PGresult *res, int row, int col, char *buf, size_t n) {
        size_t len = (size_t) PQgetlength(res, row, col);
        if (len >= n)
                len = n - 1;
        memcpy(buf, PQgetvalue(res, row, col), len);
        buf[len] = 0;
}

static int get_bytes(const PGresult *res, int row, int col, uint8_t **ret, size_t *len) {
        *len = (size_t) PQgetlength(res, row, col);
        *ret = vs__dup_bytes((const uint8_t *) PQgetvalue(res, row, col), *len);
        return *ret ? 0 : -ENOMEM;
}

/* Whether a result's columns are the n of these types, in binary form (as vouch wrote them). */
static bool columns_are(const PGresult *res, const Oid *types, int n) {
        if (PQnfields(res) != n)
                return false;
        for (int i = 0; i < n; i++)
                if (PQftype(res, i) != types[i] || PQfformat(res, i) != 1)
                        return false;
        return true;
}

/* Whether each value of a row is one its type allows (no NULL, an integer's 8 bytes...). */
static bool row_valid(const PGresult *res, int row, const Oid *types, int n) {
        for (int i = 0; i < n; i++) {
                int len = PQgetlength(res, row, i);
                if (PQgetisnull(res, row, i) || (types[i] == INT8OID && len != 8) || (types[i] == BOOLOID && len != 1))
                        return false;
        }
        return true;
}

/* A row of DEVICE_COLS (columns checked), recording nothing: 0, -EUCLEAN (a value that is not
 * valid), -ENOMEM. */
static int device_fill(const PGresult *res, int row, vs_device *d) {
        memset(d, 0, sizeof(*d));
        if (!row_valid(res, row, device_types, DEVICE_NCOLS))
                return -EUCLEAN;
        get_text(res, row, 0, d->id, sizeof(d->id));
        if (get_bytes(res, row, 1, &d->ek_public, &d->ek_public_len) < 0 ||
            get_bytes(res, row, 2, &d->ak_public, &d->ak_public_len) < 0) {
                vs_device_done(d);
                return -ENOMEM;
        }
        get_text(res, row, 3, d->golden, sizeof(d->golden));
        d->approved = get_bool(res, row, 4);
        d->revoked = get_bool(res, row, 5);
        d->enrolled_at = get_i64(res, row, 6);
        d->has_last = get_bool(res, row, 7);
        d->reset_count = (uint32_t) get_i64(res, row, 8);
        d->restart_count = (uint32_t) get_i64(res, row, 9);
        d->clock = (uint64_t) get_i64(res, row, 10);
        d->sequence = (uint64_t) get_i64(res, row, 11);
        d->ek_anchor = (int) get_i64(res, row, 12);
        d->change = (uint64_t) get_i64(res, row, 13);
        return 0;
}

/* The same for a row of VERDICT_COLS. */
static int verdict_fill(const PGresult *res, int row, vs_verdict *v) {
        memset(v, 0, sizeof(*v));
        if (!row_valid(res, row, verdict_types, 7))
                return -EUCLEAN;
        v->global_sequence = (uint64_t) get_i64(res, row, 0);
        get_text(res, row, 1, v->device, sizeof(v->device));
        v->sequence = (uint64_t) get_i64(res, row, 2);
        v->status = (int) get_i64(res, row, 3);
        v->issued_at = get_i64(res, row, 4);
        v->expires_at = get_i64(res, row, 5);
        return get_bytes(res, row, 6, &v->record, &v->record_len);
}

/* Parameters in binary form, as the statements' types say. */
typedef struct params {
        const char *v[16];
        int len[16], fmt[16];
        uint64_t i8[16];
        char b[16];
        int n;
} params;

static void p_i64(params *p, int64_t x) {
        int i = p->n++;
        p->i8[i] = htobe64((uint64_t) x);
        p->v[i] = (const char *) &p->i8[i];
        p->len[i] = 8;
        p->fmt[i] = 1;
}

static void p_bool(params *p, bool x) {
        int i = p->n++;
        p->b[i] = x ? 1 : 0;
        p->v[i] = &p->b[i];
        p->len[i] = 1;
        p->fmt[i] = 1;
}

static void p_bytes(params *p, const void *d, size_t n) {
        int i = p->n++;
        p->v[i] = n ? d : "";
        p->len[i] = (int) n;
        p->fmt[i] = 1;
}

static void p_text(params *p, const char *t) {
        p_bytes(p, t, strlen(t));
}

static void p_null(params *p) {
        int i = p->n++;
        p->v[i] = NULL;
        p->len[i] = 0;
        p->fmt[i] = 1;
}

/* What a statement's result is wanted for, by its place in the pipeline (collect). */
typedef enum tag_kind {
        T_NONE = 0,
        T_CLAIM = 1,            /* a lease claim's row, into its write's lease */
        T_HEARTBEAT = 2,        /* the batch's heartbeat: lapsed, what is left (w: NULL) */
        T_NUMBERS = 3,          /* the batch's commit-ordered numbers (w: NULL) */
        T_GOLDEN = 4,           /* a golden registration's answers, into its write */
        T_CLAIM_ROW = 5,        /* a granted claim's device row, into its write's lease */
        T_CLAIM_LATEST = 6,     /* ... and its latest verdict */
} tag_kind;

typedef struct tag {
        tag_kind kind;
        vs_write *w;
} tag;

/* The most statements a batch sends between two syncs: per write at most two for the row,
 * the verdict, its pruning, its certificates' (revoked, stored, pruned), its change number,
 * and the store's own (BEGIN, COMMIT, the sequence moved past). */
#define TAGS_CAP (10 * VS_BATCH_MAX + 16)

/* The statements sent since the last sync, and what their results are for. */
typedef struct pipeline {
        vs_store *s;
        PGconn *conn;
        size_t sent;
} pipeline;

static int send_tagged(pipeline *pl, int which, const params *p, tag_kind kind, vs_write *w) {
        pg_store *ps = pl->s->be;
        if (pl->sent >= ps->tags_cap)
                return -E2BIG; /* never: TAGS_CAP bounds a batch */
        ps->tags[pl->sent++] = (tag) { .kind = kind, .w = w };
        return PQsendQueryPrepared(pl->conn, writer_stmts[which].name, p->n, p->v, p->len, p->fmt, 1) ? 0 : -EIO;
}

static int send_stmt(pipeline *pl, int which, const params *p) {
        return send_tagged(pl, which, p, T_NONE, NULL);
}

static int send_plain(pipeline *pl, const char *sql) {
        pg_store *ps = pl->s->be;
        if (pl->sent >= ps->tags_cap)
                return -E2BIG;
        ps->tags[pl->sent++] = (tag) { .kind = T_NONE };
        return PQsendQueryParams(pl->conn, sql, 0, NULL, NULL, NULL, NULL, 0) ? 0 : -EIO;
}

/* A whole row: the device's, then its clock state's (two statements). */
static int send_row(pipeline *pl, int which, const vs_device *d) {
        params p = { .n = 0 }, q = { .n = 0 };
        int r;
        p_text(&p, d->id);
        p_bytes(&p, d->ek_public, d->ek_public_len);
        p_bytes(&p, d->ak_public, d->ak_public_len);
        p_text(&p, d->golden);
        p_bool(&p, d->approved);
        p_bool(&p, d->revoked);
        p_i64(&p, d->enrolled_at);
        p_i64(&p, (int64_t) d->sequence);
        p_i64(&p, d->ek_anchor);
        if ((r = send_stmt(pl, which, &p)) < 0)
                return r;
        p_text(&q, d->id);
        p_bool(&q, d->has_last);
        p_i64(&q, d->reset_count);
        p_i64(&q, d->restart_count);
        p_i64(&q, (int64_t) d->clock);
        return send_stmt(pl, W_CLOCK_ROW, &q);
}

static int send_gseq_past(pipeline *pl, uint64_t gseq) {
        params p = { .n = 0 };
        p_i64(&p, (int64_t) gseq);
        return send_stmt(pl, W_GSEQ_PAST, &p);
}

/* The device's certificates not revoked yet and not expired at `at` revoked (store.h), by its
 * verdict of sequence seq (0: a write of its row). */
static int send_revoke(pipeline *pl, const char *device, int64_t at, uint64_t seq) {
        params p = { .n = 0 };
        p_text(&p, device);
        p_i64(&p, at);
        p_i64(&p, (int64_t) seq);
        return send_stmt(pl, W_CERT_REVOKE, &p);
}

/* What a verdict does to its device's existing certificates (store.h): revokes them, and
 * prunes them with its pruning. Before the order lock for a commit-ordered verdict (so that
 * no row lock is waited for while it is held: another instance's admin action may hold them
 * and wait for the lock); with the verdict otherwise. */
static int send_cert_updates(pipeline *pl, const vs_verdict *v) {
        vs_store *s = pl->s;
        int r;
        if (v->revoke_certs && (r = send_revoke(pl, v->device, v->issued_at, v->sequence)) < 0)
                return r;
        if (!vs__prune_due(s, v))
                return 0;
        params p = { .n = 0 };
        p_text(&p, v->device);
        p_i64(&p, (int64_t) (v->sequence - s->history_keep));
        p_i64(&p, vs__cert_prune_before(v));
        return send_stmt(pl, W_CERT_PRUNE, &p);
}

/* The certificate issued with v (after v's insert: the sequence's current value is its
 * global sequence when it has none of its own). */
static int send_cert(pipeline *pl, const vs_verdict *v) {
        const vs_cert *c = v->cert;
        params p = { .n = 0 };
        p_text(&p, c->serial);
        p_text(&p, v->device);
        p_i64(&p, c->not_before);
        p_i64(&p, c->not_after);
        p_i64(&p, (int64_t) v->sequence);
        if (v->global_sequence)
                p_i64(&p, (int64_t) v->global_sequence);
        else
                p_null(&p);
        p_bytes(&p, c->der, c->der_len);
        return send_stmt(pl, W_CERT, &p);
}

/* A verdict, its certificate, and its retention (store.h). *past: the largest caller-given
 * global sequence the database's sequence has not been moved past yet. */
static int send_verdict(pipeline *pl, const vs_verdict *v, uint64_t *past) {
        vs_store *s = pl->s;
        params p = { .n = 0 };
        int r;
        if (!v->global_sequence && *past) {
                if ((r = send_gseq_past(pl, *past)) < 0)
                        return r;
                *past = 0;
        }
        p_text(&p, v->device);
        p_i64(&p, (int64_t) v->sequence);
        p_i64(&p, v->status);
        p_i64(&p, v->issued_at);
        p_i64(&p, v->expires_at);
        p_bytes(&p, v->record, v->record_len);
        if (v->global_sequence)
                p_i64(&p, (int64_t) v->global_sequence);
        else
                p_null(&p); /* the next one */
        if (v->global_sequence > *past)
                *past = v->global_sequence;
        if ((r = send_stmt(pl, W_VERDICT, &p)) < 0 || (v->cert && (r = send_cert(pl, v)) < 0) ||
            (!v->seal && (r = send_cert_updates(pl, v)) < 0) || !vs__prune_due(s, v))
                return r;
        params q = { .n = 0 };
        p_text(&q, v->device);
        p_i64(&q, (int64_t) (v->sequence - s->history_keep));
        return send_stmt(pl, W_PRUNE, &q);
}

static bool is_lease(const vs_write *w) {
        return w->kind == VS_W_LEASE_CLAIM || w->kind == VS_W_LEASE_RENEW || w->kind == VS_W_LEASE_RELEASE ||
               w->kind == VS_W_LEASE_RELEASE_ALL;
}

/* Stable (a device's claims and releases keep their queue order): insertion sort, a batch
 * holds few lease writes. */
static void sort_by_device(vs_write **w, size_t n) {
        for (size_t i = 1; i < n; i++) {
                vs_write *x = w[i];
                size_t j = i;
                for (; j > 0 && strcmp(w[j - 1]->dev.id, x->dev.id) > 0; j--)
                        w[j] = w[j - 1];
                w[j] = x;
        }
}

/* A batch's lease writes (store.h, leases), before its other writes (they touch other tables
 * only): first one heartbeat for all its claims and renewals (the longest ttl asked; every
 * one of them answers with it: T_HEARTBEAT), then the claims and releases in the order of
 * their devices' ids, so that two instances' batches claiming some of the same devices
 * wait for each other instead of deadlocking. In queue order when the batch holds a
 * release_all (whose place among them matters). */
static int send_leases(pipeline *pl, vs_write *const *plan, size_t n) {
        vs_store *s = pl->s;
        pg_store *ps = s->be;
        vs_write **leases = ps->lease_plan;
        size_t k = 0;
        int64_t ttl = 0;
        bool all = false;
        int r;
        for (size_t i = 0; i < n; i++) {
                if (!is_lease(plan[i]))
                        continue;
                leases[k++] = plan[i];
                if (plan[i]->kind == VS_W_LEASE_CLAIM || plan[i]->kind == VS_W_LEASE_RENEW)
                        ttl = plan[i]->ttl_ms > ttl ? plan[i]->ttl_ms : ttl;
                all |= plan[i]->kind == VS_W_LEASE_RELEASE_ALL;
        }
        if (ttl > 0) {
                params p = { .n = 0 };
                p_text(&p, s->instance);
                p_i64(&p, ttl);
                if ((r = send_tagged(pl, W_HEARTBEAT, &p, T_HEARTBEAT, NULL)) < 0)
                        return r;
                /* the others' sessions probed at most once a second, and only once this
                 * writer's own session has been up for half a ttl: after the database
                 * restarted, every instance gets that long to come back before it is
                 * taken for dead */
                int64_t now = now_ms();
                if (now - ps->w_up_ms >= ttl / 2 && now - ps->reaped_ms >= 1000) {
                        params q = { .n = 0 };
                        p_text(&q, s->instance);
                        p_text(&q, ps->store_id);
                        if ((r = send_stmt(pl, W_REAP, &q)) < 0)
                                return r;
                        ps->reaped_ms = now;
                }
        }
        if (!all)
                sort_by_device(leases, k);
        for (size_t i = 0; i < k; i++) {
                vs_write *w = leases[i];
                params p = { .n = 0 };
                switch (w->kind) {
                case VS_W_LEASE_CLAIM:
                        p_text(&p, w->dev.id);
                        p_text(&p, s->instance);
                        if ((r = send_tagged(pl, W_CLAIM, &p, T_CLAIM, w)) == 0 &&
                            (r = send_tagged(pl, W_CLAIM_ROW, &p, T_CLAIM_ROW, w)) == 0)
                                r = send_tagged(pl, W_CLAIM_LATEST, &p, T_CLAIM_LATEST, w);
                        break;
                case VS_W_LEASE_RELEASE:
                        p_text(&p, w->dev.id);
                        p_text(&p, s->instance);
                        r = send_stmt(pl, W_RELEASE, &p);
                        break;
                case VS_W_LEASE_RELEASE_ALL:
                        p_text(&p, s->instance);
                        r = send_stmt(pl, W_RELEASE_ALL, &p);
                        break;
                default: /* a renewal: the heartbeat above */
                        r = 0;
                        break;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The batch's heartbeat answer (T_HEARTBEAT), given to each of its claims and renewals. */
static void lease_answers(vs_store *s, vs_write *const *plan, size_t n) {
        pg_store *ps = s->be;
        for (size_t i = 0; i < n; i++) {
                vs_lease_result *l = &plan[i]->lease;
                if (plan[i]->kind == VS_W_LEASE_CLAIM) {
                        l->lapsed = ps->hb_lapsed;
                } else if (plan[i]->kind == VS_W_LEASE_RENEW) {
                        l->lapsed = ps->hb_lapsed;
                        l->expires_in_ms = ps->hb_left_ms;
                        snprintf(l->holder, sizeof(l->holder), "%s", s->instance);
                }
        }
}

static int send_keys(pipeline *pl, vs_write *w);

static int send_write(pipeline *pl, vs_write *w, uint64_t *past) {
        params p = { .n = 0 };
        int r, which;
        switch (w->kind) {
        case VS_W_DEVICE:
        case VS_W_ENROLL:
        case VS_W_VERDICT_DEVICE:
                which = w->kind == VS_W_ENROLL ? W_ENROLL : w->kind == VS_W_DEVICE ? W_DEVICE : W_DEVICE_ACCESS;
                if ((r = send_row(pl, which, &w->dev)) < 0 ||
                    (vs__row_revokes_certs(w) && (r = send_revoke(pl, w->dev.id, wall_seconds(), 0)) < 0) ||
                    w->kind != VS_W_VERDICT_DEVICE)
                        return r;
                /* in the same transaction: the row and the verdict, or neither (a commit-ordered
                 * one comes once numbered: send_sealed) */
                return w->verdict.seal ? send_cert_updates(pl, &w->verdict) : send_verdict(pl, &w->verdict, past);
        case VS_W_ADMIN:
                p_text(&p, w->dev.id);
                if (w->admin_fields & VS_ADMIN_GOLDEN)
                        p_text(&p, w->dev.golden);
                else
                        p_null(&p);
                if (w->admin_fields & VS_ADMIN_ACCESS) {
                        p_bool(&p, w->dev.approved);
                        p_bool(&p, w->dev.revoked);
                } else {
                        p_null(&p);
                        p_null(&p);
                }
                if ((r = send_stmt(pl, W_ADMIN, &p)) < 0 || !vs__row_revokes_certs(w))
                        return r;
                return send_revoke(pl, w->dev.id, wall_seconds(), 0);
        case VS_W_CLOCK:
                p_text(&p, w->dev.id);
                p_i64(&p, w->dev.reset_count);
                p_i64(&p, w->dev.restart_count);
                p_i64(&p, (int64_t) w->dev.clock);
                return send_stmt(pl, W_CLOCK, &p);
        case VS_W_VERDICT:
                return w->verdict.seal ? send_cert_updates(pl, &w->verdict) : send_verdict(pl, &w->verdict, past);
        case VS_W_EKCERT:
                p_text(&p, w->ekcert.key);
                p_text(&p, w->ekcert.url ? w->ekcert.url : "");
                p_bytes(&p, w->ekcert.der, w->ekcert.der_len);
                p_i64(&p, w->ekcert.fetched_at);
                return send_stmt(pl, W_EKCERT, &p);
        case VS_W_KEYS:
                p_text(&p, pl->s->instance);
                if ((r = send_stmt(pl, W_KEYS_CLEAR, &p)) < 0 || w->n_items == 0)
                        return r;
                return send_keys(pl, w);
        case VS_W_VERIFIER_ID:
        case VS_W_DEVICE_CA_ID:
                p_text(&p, w->dev.id);
                return send_stmt(pl, w->kind == VS_W_VERIFIER_ID ? W_VERIFIER_ID : W_DEVICE_CA_ID, &p);
        case VS_W_LEASE_CLAIM:
        case VS_W_LEASE_RENEW:
        case VS_W_LEASE_RELEASE:
        case VS_W_LEASE_RELEASE_ALL:
        case VS_W_GOLDEN:
                return 0; /* sent first: send_leases, send_goldens */
        }
        return -EINVAL;
}

/* ---- writes that carry arrays (the deployment's identity) ---- */

/* An array literal in text form ({"a","b"}) of n strings, each at(w, i) (malloc). */
static char *text_array(size_t n, const char *(*at)(const vs_write *w, size_t i), const vs_write *w) {
        size_t cap = 3;
        for (size_t i = 0; i < n; i++)
                cap += 2 * strlen(at(w, i)) + 3;
        char *a = malloc(cap), *o = a;
        if (!a)
                return NULL;
        *o++ = '{';
        for (size_t i = 0; i < n; i++) {
                if (i)
                        *o++ = ',';
                *o++ = '"';
                for (const char *c = at(w, i); *c; c++) {
                        if (*c == '"' || *c == '\\')
                                *o++ = '\\';
                        *o++ = *c;
                }
                *o++ = '"';
        }
        *o++ = '}';
        *o = 0;
        return a;
}

/* The same of n integers ({1,2}). */
static char *int_array(size_t n, int64_t (*at)(const vs_write *w, size_t i), const vs_write *w) {
        size_t cap = 3 + n * 22, k = 0;
        char *a = malloc(cap);
        if (!a)
                return NULL;
        a[k++] = '{';
        for (size_t i = 0; i < n; i++)
                k += (size_t) snprintf(a + k, cap - k, "%s%" PRId64, i ? "," : "", at(w, i));
        snprintf(a + k, cap - k, "}");
        return a;
}

static const char *key_id_at(const vs_write *w, size_t i) {
        return w->keys[i].key_id;
}

static const char *key_pem_at(const vs_write *w, size_t i) {
        return w->keys[i].pem;
}

static int64_t key_not_after_at(const vs_write *w, size_t i) {
        return w->keys[i].not_after;
}

/* A statement whose first three parameters are arrays (text form, as their literals are)
 * and whose fourth is text. */
static int send_arrays(pipeline *pl, int which, char *a1, char *a2, char *a3, const char *t4, tag_kind kind,
                       vs_write *w) {
        int r = -ENOMEM;
        if (a1 && a2 && a3) {
                params p = { .n = 4, .v = { a1, a2, a3, t4 }, .fmt = { 0, 0, 0, 0 } };
                r = send_tagged(pl, which, &p, kind, w);
        }
        free(a1);
        free(a2);
        free(a3);
        return r;
}

/* This instance's published verdict keys (after W_KEYS_CLEAR). */
static int send_keys(pipeline *pl, vs_write *w) {
        return send_arrays(pl, W_KEY_PUT, text_array(w->n_items, key_id_at, w), text_array(w->n_items, key_pem_at, w),
                           int_array(w->n_items, key_not_after_at, w), pl->s->instance, T_NONE, NULL);
}

static const char *golden_name_at(const vs_write *w, size_t i) {
        return w->goldens[i].name;
}

static const char *golden_digest_at(const vs_write *w, size_t i) {
        return w->goldens[i].digest;
}

static int64_t golden_version_at(const vs_write *w, size_t i) {
        return w->goldens[i].version;
}

/* The batch's golden registrations (store.h), after its leases and before its other writes:
 * the registrations' lock (taken before any row lock of step 4, so that its holder never
 * waits for one held by a batch waiting for it), then each one's statement (T_GOLDEN). */
static int send_goldens(pipeline *pl, vs_write *const *plan, size_t n) {
        vs_store *s = pl->s;
        pg_store *ps = s->be;
        params a = { .n = 0 };
        int r;
        p_text(&a, ps->store_id);
        if ((r = send_stmt(pl, W_GOLDEN_LOCK, &a)) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                vs_write *w = plan[i];
                if (w->kind == VS_W_GOLDEN &&
                    (r = send_arrays(pl, W_GOLDEN, text_array(w->n_items, golden_name_at, w),
                                     int_array(w->n_items, golden_version_at, w),
                                     text_array(w->n_items, golden_digest_at, w), s->instance, T_GOLDEN, w)) < 0)
                        return r;
        }
        return 0;
}

/* A result that carries an answer (tag): 0, or -EIO with why set. */
static int take_result(vs_store *s, const tag *t, const PGresult *res, char *why, size_t n) {
        switch (t->kind) {
        case T_NONE:
                return 0;
        case T_HEARTBEAT: {
                pg_store *p = s->be;
                if (PQntuples(res) != 1 || PQnfields(res) != 2 || PQgetisnull(res, 0, 0) || PQgetlength(res, 0, 0) != 1 ||
                    PQgetisnull(res, 0, 1) || PQgetlength(res, 0, 1) != 8) {
                        snprintf(why, n, "instance %s has no row in the instances table: no heartbeat", s->instance);
                        return -EIO;
                }
                p->hb_lapsed = get_bool(res, 0, 0);
                p->hb_left_ms = get_i64(res, 0, 1);
                return 0;
        }
        case T_NUMBERS: {
                pg_store *p = s->be;
                int rows = PQntuples(res);
                if (PQnfields(res) != 1 || rows < 0 || (size_t) rows > VS_BATCH_MAX) {
                        snprintf(why, n, "the database gave %d numbers for a batch", rows);
                        return -EIO;
                }
                for (int i = 0; i < rows; i++) {
                        if (PQgetisnull(res, i, 0) || PQgetlength(res, i, 0) != 8) {
                                snprintf(why, n, "the database gave no number");
                                return -EIO;
                        }
                        p->numbers[i] = (uint64_t) get_i64(res, i, 0);
                }
                p->n_numbers = (size_t) rows;
                return 0;
        }
        case T_GOLDEN: {
                vs_write *w = t->w;
                if (PQnfields(res) != 4 || (size_t) PQntuples(res) != w->n_items) {
                        snprintf(why, n, "a golden registration got %d answers for %zu sets", PQntuples(res), w->n_items);
                        return -EIO;
                }
                for (size_t i = 0; i < w->n_items; i++) {
                        vs_golden_digest *g = &w->goldens[i];
                        char name[sizeof(g->name)];
                        int row = (int) i;
                        if (PQgetisnull(res, row, 0) || PQgetisnull(res, row, 1) || PQgetlength(res, row, 1) != 8 ||
                            PQgetisnull(res, row, 2) || PQgetisnull(res, row, 3)) {
                                snprintf(why, n, "a golden registration got an empty answer");
                                return -EIO;
                        }
                        get_text(res, row, 0, name, sizeof(name));
                        if (strcmp(name, g->name) != 0 || get_i64(res, row, 1) != g->version) {
                                snprintf(why, n, "a golden registration's answers are not in the order of its sets");
                                return -EIO;
                        }
                        get_text(res, row, 2, g->stored_digest, sizeof(g->stored_digest));
                        get_text(res, row, 3, g->stored_by, sizeof(g->stored_by));
                }
                vs__golden_outcome(s, w);
                return 0;
        }
        case T_CLAIM: {
                vs_lease_result *l = &t->w->lease;
                if (PQntuples(res) != 1 || PQnfields(res) != 3 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 2) ||
                    PQgetlength(res, 0, 2) != 8) {
                        snprintf(why, n, "a lease claim got no answer from the database");
                        return -EIO;
                }
                get_text(res, 0, 0, l->holder, sizeof(l->holder));
                get_text(res, 0, 1, l->taken_from, sizeof(l->taken_from));
                l->expires_in_ms = get_i64(res, 0, 2);
                l->granted = strcmp(l->holder, s->instance) == 0;
                return 0;
        }
        case T_CLAIM_ROW: {
                vs_lease_result *l = &t->w->lease;
                int r;
                if (PQntuples(res) > 1 || !columns_are(res, device_types, DEVICE_NCOLS)) {
                        snprintf(why, n, "a lease claim's device row is not as vouch wrote it");
                        return -EIO;
                }
                if (PQntuples(res) == 0 || l->has_row || l->read_error)
                        return 0;
                /* a damaged row fails this claim, not the transaction (every write in it) */
                if ((r = device_fill(res, 0, &l->row)) < 0)
                        l->read_error = r;
                else
                        l->has_row = true;
                return 0;
        }
        case T_CLAIM_LATEST: {
                vs_lease_result *l = &t->w->lease;
                int r;
                if (PQntuples(res) > 1 || !columns_are(res, verdict_types, 7)) {
                        snprintf(why, n, "a lease claim's latest verdict is not as vouch wrote it");
                        return -EIO;
                }
                if (PQntuples(res) == 0 || l->has_latest || l->read_error)
                        return 0;
                if ((r = verdict_fill(res, 0, &l->latest)) < 0)
                        l->read_error = r;
                else
                        l->has_latest = true;
                return 0;
        }
        }
        return 0;
}

/* The results of the pipeline's statements and its sync. 0 only when every one of them
 * succeeded (a COMMIT last of all) and gave what its tag wants; else the first failure's
 * message, and *state its SQLSTATE ("" if none). */
static int collect(pipeline *pl, char *why, size_t n, char state[6]) {
        pg_store *ps = pl->s->be;
        PGconn *conn = pl->conn;
        size_t queries = pl->sent, ok = 0, results = 0, ends = 0;
        bool failed = false;
        state[0] = 0;
        for (;;) {
                PGresult *res = PQgetResult(conn);
                if (!res) {
                        /* the end of one statement's results; none will come from a closed
                         * connection */
                        if (PQstatus(conn) == CONNECTION_BAD || ++ends > queries + 1)
                                break;
                        continue;
                }
                ExecStatusType st = PQresultStatus(res);
                if (st == PGRES_PIPELINE_SYNC) {
                        PQclear(res);
                        break;
                }
                size_t i = results++;
                if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                        if (i < queries && take_result(pl->s, &ps->tags[i], res, why, n) < 0 && !failed)
                                failed = true;
                        else
                                ok++;
                } else if (!failed && st != PGRES_PIPELINE_ABORTED) {
                        failed = true;
                        result_message(res, conn, why, n);
                        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                        snprintf(state, 6, "%s", code ? code : "");
                }
                PQclear(res);
                if (results > 2 * queries + 8) /* never: each statement has one result */
                        break;
        }
        pl->sent = 0;
        if (ok == queries && !failed)
                return 0;
        if (!failed) {
                char m[MSG];
                one_line(m, sizeof(m), PQerrorMessage(conn));
                snprintf(why, n, "%s", *m ? m : "the database did not answer every statement");
        }
        return -EIO;
}

/* A text[] literal of the ids of the rows the plan writes, {"id",...} (malloc). */
static char *row_ids(vs_write *const *plan, size_t n) {
        size_t cap = 3, k = 0;
        for (size_t i = 0; i < n; i++)
                if (vs__changes_row(plan[i]))
                        cap += 2 * strlen(plan[i]->dev.id) + 3;
        char *a = malloc(cap);
        if (!a)
                return NULL;
        a[k++] = '{';
        for (size_t i = 0; i < n; i++) {
                if (!vs__changes_row(plan[i]))
                        continue;
                if (k > 1)
                        a[k++] = ',';
                a[k++] = '"';
                for (const char *c = plan[i]->dev.id; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                a[k++] = '\\';
                        a[k++] = *c;
                }
                a[k++] = '"';
        }
        a[k++] = '}';
        a[k] = 0;
        return a;
}

static int send_lock_rows(pipeline *pl, vs_write *const *plan, size_t n) {
        char *ids = row_ids(plan, n);
        if (!ids)
                return -ENOMEM;
        params p = { .n = 1, .v = { ids }, .len = { 0 }, .fmt = { 0 } }; /* text form */
        int r = send_stmt(pl, W_LOCK_ROWS, &p);
        free(ids);
        return r;
}

/* The commit-ordered part of a batch (store.h, Global order and device changes), after its
 * other writes (so that it takes no row lock while it holds the order lock, but on rows it
 * has locked already): the store's order lock, the change numbers of the rows it wrote,
 * then the numbers for its nsealed verdicts (T_NUMBERS). */
static int send_ordered(pipeline *pl, vs_write *const *plan, size_t n, size_t nsealed) {
        pg_store *p = pl->s->be;
        params a = { .n = 0 }, b = { .n = 0 };
        int r;
        p_text(&a, p->store_id);
        if ((r = send_stmt(pl, W_ORDER_LOCK, &a)) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!vs__changes_row(plan[i]))
                        continue;
                params c = { .n = 0 };
                p_text(&c, plan[i]->dev.id);
                if ((r = send_stmt(pl, W_CHANGE, &c)) < 0)
                        return r;
        }
        if (!nsealed)
                return 0;
        p_i64(&b, (int64_t) nsealed);
        return send_tagged(pl, W_NUMBERS, &b, T_NUMBERS, NULL);
}

/* The batch's commit-ordered verdicts, numbered in plan order and sealed by their hooks,
 * then their inserts (the transaction still open, the lock held). */
static int send_sealed(pipeline *pl, vs_write *const *plan, size_t n, char *why, size_t whylen) {
        pg_store *p = pl->s->be;
        size_t k = 0;
        uint64_t past = 0; /* (unused: the numbers are the sequence's own) */
        int r;
        for (size_t i = 0; i < n; i++) {
                if (!vs__sealed(plan[i]))
                        continue;
                if (k >= p->n_numbers) {
                        snprintf(why, whylen, "the database gave %zu numbers for more verdicts", p->n_numbers);
                        return -EIO;
                }
                if ((r = vs__seal(&plan[i]->verdict, p->numbers[k++])) < 0) {
                        snprintf(why, whylen, "a verdict's seal hook failed (%s): not stored", strerror(-r));
                        return r;
                }
                if ((r = send_verdict(pl, &plan[i]->verdict, &past)) < 0)
                        return r;
        }
        return 0;
}

/* The pipeline's statements sent (r: how sending went), synced and their results read: 0
 * when all of it succeeded. */
static int sync_collect(pipeline *pl, int r, char *why, size_t whylen, char state[6]) {
        if (!PQpipelineSync(pl->conn) && r == 0)
                r = -EIO;
        /* the connection lost with the batch sent and its outcome unknown, as a network
         * that goes away mid-commit leaves it (test builds: VOUCH_FAILPOINTS=store-pg-drop) */
        if (vs__failpoint("store-pg-drop"))
                shutdown(PQsocket(pl->conn), SHUT_RDWR);
        int rc = collect(pl, why, whylen, state);
        if (r == 0)
                r = rc;
        else if (!*why)
                one_line(why, whylen, PQerrorMessage(pl->conn));
        return r;
}

/* One batch, one transaction (store-backend.h): one round trip; two when it holds
 * commit-ordered verdicts (their numbers are known only once the order lock is held: the
 * hooks run in between). */
static int pg_commit(vs_store *s, vs_write *const *plan, size_t n, char *why, size_t whylen) {
        pg_store *p = s->be;
        pg_conn *c = &p->w;
        char state[6] = "";
        uint64_t past = 0;
        size_t nsealed = 0, nrows = 0, nleases = 0, ngoldens = 0;
        int r = conn_ready(s, c, why, whylen);
        vs__set_available(s, c->ok);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                nsealed += vs__sealed(plan[i]);
                nrows += vs__changes_row(plan[i]);
                nleases += is_lease(plan[i]);
                ngoldens += plan[i]->kind == VS_W_GOLDEN;
        }
        PGconn *conn = c->conn;
        pipeline pl = { .s = s, .conn = conn };
        if (!PQenterPipelineMode(conn)) {
                one_line(why, whylen, PQerrorMessage(conn));
                return -EIO;
        }
        p->n_numbers = 0;
        /* the locks in one order, whatever the batch: device rows (by id), this instance's
         * heartbeat, leases (by device), the golden registrations' lock; then the rest; the
         * order lock last */
        r = send_plain(&pl, "BEGIN");
        if (r == 0 && nrows)
                r = send_lock_rows(&pl, plan, n);
        if (r == 0 && nleases)
                r = send_leases(&pl, plan, n);
        if (r == 0 && ngoldens)
                r = send_goldens(&pl, plan, n);
        for (size_t i = 0; r == 0 && i < n; i++)
                r = send_write(&pl, plan[i], &past);
        if (r == 0 && past)
                r = send_gseq_past(&pl, past);
        /* the lock last: held for as short a time as can be */
        if (r == 0 && (nsealed || nrows))
                r = send_ordered(&pl, plan, n, nsealed);
        bool synced = false;
        if (nsealed) {
                r = sync_collect(&pl, r, why, whylen, state);
                if (r == 0)
                        r = send_sealed(&pl, plan, n, why, whylen);
                synced = r < 0 && pl.sent == 0; /* nothing more in flight */
        }
        /* COMMIT only after everything was sent: a batch cut short is never committed */
        if (r == 0)
                r = send_plain(&pl, "COMMIT");
        if (!synced)
                r = sync_collect(&pl, r, why, whylen, state);
        if (r == 0 && nleases)
                lease_answers(s, plan, n);
        if (!PQexitPipelineMode(conn) && PQstatus(conn) == CONNECTION_OK) {
                /* results left unread (never: collect reads up to the sync): start afresh */
                conn_broken(c, "the pipeline did not end");
                conn_close(c);
                vs__set_available(s, false);
                return r < 0 ? r : -EIO;
        }
        if (PQstatus(conn) == CONNECTION_BAD) {
                char m[WHY];
                snprintf(m, sizeof(m), "%s", why);
                snprintf(why, whylen, "the connection to the database was lost (%.400s): not stored", m);
                conn_broken(c, m);
                vs__set_available(s, false);
                return r < 0 ? r : -EIO;
        }
        if (r < 0 && PQtransactionStatus(conn) != PQTRANS_IDLE)
                exec_sql(conn, "ROLLBACK", NULL, 0);
        /* a table gone under a working connection: is this still the store? */
        if (r < 0 && strncmp(state, "42", 2) == 0) {
                char m[WHY];
                if (check_identity(s, conn, m, sizeof(m)) == -ESTALE)
                        snprintf(why, whylen, "%s", m);
        }
        return r;
}

/* Writer thread, idle: reconnects while down, and looks at an idle connection once a
 * second, so that a database that went away is seen (stats.unavailable) without a write. */
static long pg_maintain(vs_store *s) {
        pg_store *p = s->be;
        pg_conn *c = &p->w;
        char why[WHY];
        if (vs_lost(s, NULL, 0))
                return -1;
        if (c->ok && !conn_alive(c)) {
                conn_gone_why(c, why, sizeof(why));
                conn_broken(c, why);
        }
        if (!c->ok && conn_due(p, c, now_ms()))
                conn_ready(s, c, why, sizeof(why));
        vs__set_available(s, c->ok);
        if (c->ok || vs_lost(s, NULL, 0))
                return c->ok ? PROBE_MS : -1;
        int64_t wait = c->next_try_ms - now_ms();
        return wait < 1 ? 1 : (long) wait;
}

/* ---- reads ---- */

/* The columns of a result, as vouch wrote them: else the store is damaged (-EUCLEAN). */
static int check_columns(vs_store *s, const PGresult *res, const Oid *types, int n) {
        if (PQnfields(res) != n)
                return vs__read_failed(s, -EUCLEAN, "%d columns where %d were expected", PQnfields(res), n);
        for (int i = 0; i < n; i++)
                if (PQftype(res, i) != types[i] || PQfformat(res, i) != 1)
                        return vs__read_failed(s, -EUCLEAN, "column %s has type %u where vouch wrote %u",
                                               PQfname(res, i), PQftype(res, i), types[i]);
        return 0;
}

/* A row's values, as their types say (-EUCLEAN for a NULL or a wrong size). */
static int check_row(vs_store *s, const PGresult *res, int row, const Oid *types, int n) {
        for (int i = 0; i < n; i++) {
                int len = PQgetlength(res, row, i);
                if (PQgetisnull(res, row, i) || (types[i] == INT8OID && len != 8) || (types[i] == BOOLOID && len != 1))
                        return vs__read_failed(s, -EUCLEAN, "column %s of a row holds no valid value", PQfname(res, i));
        }
        return 0;
}

static int device_from_row(vs_store *s, const PGresult *res, int row, vs_device *d) {
        int r;
        memset(d, 0, sizeof(*d));
        if ((r = check_row(s, res, row, device_types, DEVICE_NCOLS)) < 0)
                return r;
        if (device_fill(res, row, d) < 0)
                return vs__read_failed(s, -ENOMEM, "out of memory");
        return 0;
}

static int verdict_from_row(vs_store *s, const PGresult *res, int row, vs_verdict *v) {
        int r;
        memset(v, 0, sizeof(*v));
        if ((r = check_row(s, res, row, verdict_types, 7)) < 0)
                return r;
        if (verdict_fill(res, row, v) < 0)
                return vs__read_failed(s, -ENOMEM, "out of memory");
        return 0;
}

/* A failed read's error (rlock held): -EUCLEAN for data the server found damaged (SQLSTATE
 * class XX: data_corrupted, index_corrupted), -EIO otherwise. */
static int read_failed(vs_store *s, const PGresult *res, PGconn *conn) {
        char m[MSG];
        result_message(res, conn, m, sizeof(m));
        return vs__read_failed(s, sqlstate_is(res, "XX001") || sqlstate_is(res, "XX002") ? -EUCLEAN : -EIO, "%s", m);
}

/* Runs a read statement to completion (rlock held): 0 with *ret, or the error recorded. A
 * connection found broken by it is tried once more (reconnected at once: the server may
 * have come back since the last read). */
static int read_exec(vs_store *s, int which, const params *p, PGresult **ret) {
        pg_store *ps = s->be;
        char why[WHY];
        for (int attempt = 0;; attempt++) {
                int r = conn_ready(s, &ps->r, why, sizeof(why));
                if (r < 0)
                        return vs__read_failed(s, r == -ESTALE ? -EIO : r, "%s", why);
                PGresult *res = PQexecPrepared(ps->r.conn, reader_stmts[which].name, p->n, p->v, p->len, p->fmt, 1);
                if (PQresultStatus(res) == PGRES_TUPLES_OK) {
                        *ret = res;
                        return 0;
                }
                r = read_failed(s, res, ps->r.conn);
                PQclear(res);
                if (PQstatus(ps->r.conn) != CONNECTION_BAD)
                        return r;
                snprintf(why, sizeof(why), "%s", s->read_error);
                vs__read_failed(s, r, "the connection to the database was lost (%s)", why);
                conn_broken(&ps->r, why);
                if (attempt > 0)
                        return r;
        }
}

static int pg_device_get(vs_store *s, const char *id, vs_device *ret) {
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r;
        p_text(&p, id);
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_DEVICE, &p, &res)) == 0 && (r = check_columns(s, res, device_types, DEVICE_NCOLS)) == 0)
                r = PQntuples(res) == 0 ? -ENOENT : device_from_row(s, res, 0, ret);
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

/* Row by row (single-row mode: a fleet's devices are not held in memory at once); a
 * failure at any row is the scan's error, never its end. */
static int pg_device_foreach(vs_store *s, int (*fn)(const vs_device *d, void *ud), void *ud) {
        pg_store *ps = s->be;
        char why[WHY];
        int r;
        pthread_mutex_lock(&s->rlock);
        for (int attempt = 0;; attempt++) {
                if ((r = conn_ready(s, &ps->r, why, sizeof(why))) < 0) {
                        r = vs__read_failed(s, -EIO, "%s", why);
                        break;
                }
                PGconn *conn = ps->r.conn;
                size_t rows = 0;
                bool done = false;
                if (!PQsendQueryPrepared(conn, reader_stmts[R_DEVICES].name, 0, NULL, NULL, NULL, 1) ||
                    !PQsetSingleRowMode(conn)) {
                        char m[MSG];
                        one_line(m, sizeof(m), PQerrorMessage(conn));
                        r = vs__read_failed(s, -EIO, "%s", m);
                        while (PQstatus(conn) == CONNECTION_OK) { /* drain what was sent, if anything */
                                PGresult *res = PQgetResult(conn);
                                if (!res)
                                        break;
                                PQclear(res);
                        }
                } else {
                        PGresult *res;
                        while ((res = PQgetResult(conn))) {
                                ExecStatusType st = PQresultStatus(res);
                                if (st == PGRES_SINGLE_TUPLE) {
                                        if (r == 0 && (r = check_columns(s, res, device_types, DEVICE_NCOLS)) == 0) {
                                                vs_device d;
                                                if ((r = device_from_row(s, res, 0, &d)) == 0) {
                                                        rows++;
                                                        r = fn(&d, ud);
                                                        vs_device_done(&d);
                                                }
                                        }
                                } else if (st == PGRES_TUPLES_OK) {
                                        done = true; /* the end of the rows */
                                } else if (r == 0) {
                                        r = read_failed(s, res, conn);
                                }
                                PQclear(res);
                                if (PQstatus(conn) == CONNECTION_BAD)
                                        break;
                        }
                        if (r == 0 && !done)
                                r = vs__read_failed(s, -EIO, "the scan ended before its last row");
                }
                if (PQstatus(conn) != CONNECTION_BAD)
                        break;
                snprintf(why, sizeof(why), "%s", s->read_error);
                vs__read_failed(s, r, "the connection to the database was lost (%s)", why);
                conn_broken(&ps->r, why);
                if (attempt > 0 || rows > 0)
                        break;
                r = 0;
        }
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int verdicts_from(vs_store *s, int which, const params *p, vs_verdict *out, size_t max) {
        PGresult *res = NULL;
        int r, got = 0;
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, which, p, &res)) == 0 && (r = check_columns(s, res, verdict_types, 7)) == 0) {
                int n = PQntuples(res);
                if ((size_t) n > max)
                        r = vs__read_failed(s, -EIO, "%d rows where at most %zu were asked for", n, max);
                for (int i = 0; r == 0 && i < n; i++)
                        if ((r = verdict_from_row(s, res, i, &out[i])) == 0)
                                got++;
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        if (r < 0) {
                for (int i = 0; i < got; i++)
                        vs_verdict_done(&out[i]);
                return r;
        }
        return got;
}

static int64_t limit_of(size_t max) {
        return max > INT_MAX ? INT_MAX : (int64_t) max;
}

static int pg_verdict_history(vs_store *s, const char *device, vs_verdict *out, size_t max) {
        params p = { .n = 0 };
        p_text(&p, device);
        p_i64(&p, limit_of(max));
        p_i64(&p, (int64_t) s->history_keep);
        return verdicts_from(s, R_HISTORY, &p, out, max);
}

static int pg_verdict_since(vs_store *s, uint64_t since, vs_verdict *out, size_t max) {
        params p = { .n = 0 };
        p_i64(&p, since > INT64_MAX ? INT64_MAX : (int64_t) since);
        p_i64(&p, limit_of(max));
        p_i64(&p, (int64_t) s->history_keep);
        return verdicts_from(s, R_SINCE, &p, out, max);
}

static int pg_verdict_last_global(vs_store *s, uint64_t *ret) {
        static const Oid types[] = { INT8OID };
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_LAST, &p, &res)) == 0 && (r = check_columns(s, res, types, 1)) == 0) {
                if (PQntuples(res) != 1)
                        r = vs__read_failed(s, -EIO, "no answer to the largest global sequence");
                else if ((r = check_row(s, res, 0, types, 1)) == 0)
                        *ret = (uint64_t) get_i64(res, 0, 0);
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int pg_ekcert_get(vs_store *s, const char *key, vs_ekcert *ret) {
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r;
        p_text(&p, key);
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_EKCERT, &p, &res)) == 0 && (r = check_columns(s, res, ekcert_types, 4)) == 0) {
                if (PQntuples(res) == 0) {
                        r = -ENOENT;
                } else if ((r = check_row(s, res, 0, ekcert_types, 4)) == 0) {
                        memset(ret, 0, sizeof(*ret));
                        get_text(res, 0, 0, ret->key, sizeof(ret->key));
                        ret->url = strndup(PQgetvalue(res, 0, 1), (size_t) PQgetlength(res, 0, 1));
                        ret->fetched_at = get_i64(res, 0, 3);
                        if (!ret->url || get_bytes(res, 0, 2, &ret->der, &ret->der_len) < 0) {
                                vs_ekcert_done(ret);
                                r = vs__read_failed(s, -ENOMEM, "out of memory");
                        }
                }
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

/* ---- opening and closing ---- */

static const char damaged_hint[] =
        "restore the database from a backup (pg_dump/pg_restore), or start with a new, empty database "
        "(docs/failure-behaviour.md)";

/* In the open transaction: the schema version found (0: no vouch tables at all), or
 * -EUCLEAN (a part of the tables, or an unreadable version) / -EIO with err set. */
static int schema_version_of(PGconn *conn, const char *url, int *ret, char *err, size_t errlen) {
        PGresult *res = PQexec(conn, "SELECT to_regclass('meta') IS NOT NULL, to_regclass('devices') IS NOT NULL,"
                                     " to_regclass('verdicts') IS NOT NULL, to_regclass('ek_certs') IS NOT NULL,"
                                     " current_schema()");
        char m[MSG], value[64] = "";
        bool found;
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                result_message(res, conn, m, sizeof(m));
                snprintf(err, errlen, "%.200s cannot be read as a vouch store: %s", url, m);
                PQclear(res);
                return -EIO;
        }
        bool meta = PQgetvalue(res, 0, 0)[0] == 't', devices = PQgetvalue(res, 0, 1)[0] == 't',
             verdicts = PQgetvalue(res, 0, 2)[0] == 't', ekcerts = PQgetvalue(res, 0, 3)[0] == 't';
        char schema[64];
        snprintf(schema, sizeof(schema), "%s", PQgetisnull(res, 0, 4) ? "(none)" : PQgetvalue(res, 0, 4));
        PQclear(res);
        if (!meta && !devices && !verdicts && !ekcerts) {
                *ret = 0;
                return 0;
        }
        if (!meta) {
                snprintf(err, errlen, "%.200s is damaged: schema %s holds some of vouch's tables but not its meta "
                                      "table; %s", url, schema, damaged_hint);
                return -EUCLEAN;
        }
        if (query_text(conn, "SELECT value FROM meta WHERE key='schema_version'", value, sizeof(value), &found, m,
                       sizeof(m)) < 0) {
                snprintf(err, errlen, "%.200s is damaged: its schema version cannot be read (%s); %s", url, m,
                         damaged_hint);
                return -EUCLEAN;
        }
        char *end = NULL;
        errno = 0;
        long v = found ? strtol(value, &end, 10) : 0;
        if (!found || errno || end == value || *end || v < 2) {
                snprintf(err, errlen, "%.200s is damaged: its schema version is %s%s%s; %s", url, found ? "\"" : "missing",
                         found ? value : "", found ? "\"" : "", damaged_hint);
                return -EUCLEAN;
        }
        *ret = v > INT_MAX ? INT_MAX : (int) v;
        return 0;
}

/* In the open transaction: the tables and columns of version v are all there. */
static int check_structure(PGconn *conn, const char *url, int v, char *err, size_t errlen) {
        char m[MSG];
        if (exec_sql(conn, structure_v2, m, sizeof(m)) < 0 || (v >= 3 && exec_sql(conn, structure_v3, m, sizeof(m)) < 0) ||
            (v >= 4 && exec_sql(conn, structure_v4, m, sizeof(m)) < 0) ||
            (v >= 5 && exec_sql(conn, structure_v5, m, sizeof(m)) < 0) ||
            (v >= 6 && exec_sql(conn, structure_v6, m, sizeof(m)) < 0)) {
                snprintf(err, errlen, "%.200s is damaged: schema version %d but %s; %s", url, v, m, damaged_hint);
                return -EUCLEAN;
        }
        return 0;
}

/* The store's schema made current, its id read and this run marked started, in one
 * transaction (several vouchd opening one database at once take turns: SCHEMA_LOCK). */
static int setup(vs_store *s, unsigned flags, vs_open_info *info, char *err, size_t errlen) {
        pg_store *p = s->be;
        PGconn *conn = p->w.conn;
        char m[MSG], state[32], row[VS_INSTANCE_MAX + 1];
        bool found, found_row;
        int version = 0, r;
        if (exec_sql(conn, "BEGIN; SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")", m, sizeof(m)) < 0) {
                snprintf(err, errlen, "%.200s: %s", p->url, m);
                return -EIO;
        }
        if ((r = schema_version_of(conn, p->url, &version, err, errlen)) < 0)
                goto fail;
        if (version == 0 && !(flags & VS_OPEN_CREATE)) {
                snprintf(err, errlen, "%.200s holds no vouch store (no vouch tables in it)", p->url);
                r = -ENOENT;
                goto fail;
        }
        if (version > VS_SCHEMA_VERSION) {
                snprintf(err, errlen, "%.200s has schema version %d, newer than this vouchd's %d", p->url, version,
                         VS_SCHEMA_VERSION);
                r = -EPROTO;
                goto fail;
        }
        if (version > 0 && (r = check_structure(conn, p->url, version, err, errlen)) < 0)
                goto fail;
        bool created = version == 0;
        for (size_t i = 0; i < sizeof(schema_steps) / sizeof(schema_steps[0]); i++)
                if (schema_steps[i].version > version && exec_sql(conn, schema_steps[i].sql, m, sizeof(m)) < 0) {
                        snprintf(err, errlen, "cannot %s the vouch store in %.200s (to schema version %d): %s",
                                 created ? "create" : "migrate", p->url, schema_steps[i].version, m);
                        r = -EIO;
                        goto fail;
                }
        if ((r = check_structure(conn, p->url, VS_SCHEMA_VERSION, err, errlen)) < 0)
                goto fail;
        if (query_text(conn, "SELECT value FROM meta WHERE key='store_id'", p->store_id, sizeof(p->store_id), &found, m,
                       sizeof(m)) < 0 ||
            !found) {
                snprintf(err, errlen, "%.200s is damaged: its store id is %s; %s", p->url, found ? m : "missing",
                         damaged_hint);
                r = -EUCLEAN;
                goto fail;
        }
        /* the name is this handle's; then this instance's previous run's end, and this
         * run's start (store.h, vs_open_info) */
        if ((r = lock_instance(s, conn, 0, 1000, m, sizeof(m))) < 0) {
                snprintf(err, errlen, "%.200s: %s", p->url, m);
                goto fail;
        }
        const char *name[1] = { s->instance };
        if (query_text_p(conn, "SELECT run FROM instances WHERE name=$1", name, 1, state, sizeof(state), &found, m,
                         sizeof(m)) < 0 ||
            query_text_p(conn,
                         "INSERT INTO instances (name, run, started_at) VALUES ($1, 'running', now()) ON CONFLICT (name)"
                         " DO UPDATE SET run='running', started_at=now(), closed_at=NULL RETURNING name",
                         name, 1, row, sizeof(row), &found_row, m, sizeof(m)) < 0 ||
            exec_sql(conn, "COMMIT", m, sizeof(m)) < 0) {
                snprintf(err, errlen, "cannot write to %.200s: %s", p->url, m);
                r = -EIO;
                goto fail;
        }
        /* a name that never ran here issued nothing that could be missing */
        bool clean = created || !found || strcmp(state, "clean") == 0;
        s->unsettled = !clean;
        if (info)
                *info = (vs_open_info) { .created = created, .previous_clean = clean };
        return 0;
fail:
        exec_sql(conn, "ROLLBACK", NULL, 0);
        return r;
}

static void pg_free(pg_store *p) {
        conn_close(&p->w);
        conn_close(&p->r);
        free(p->tags);
        free(p);
}

static int pg_open(vs_store *s, const char *url, unsigned flags, vs_open_info *info, char *err, size_t errlen) {
        char m[WHY];
        int r;
        if ((r = check_url(url, err, errlen)) < 0)
                return r;
        pg_store *p = calloc(1, sizeof(*p));
        if (!p) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        p->url = url;
        p->tags_cap = TAGS_CAP;
        if (!(p->tags = calloc(p->tags_cap, sizeof(*p->tags)))) {
                free(p);
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        p->w.writer = true;
        p->w.backoff_ms = p->r.backoff_ms = BACKOFF_MIN_MS;
        s->be = p;
        if (!(p->w.conn = connect_url(url, &p->w, m, sizeof(m)))) {
                snprintf(err, errlen, "cannot connect to %.200s: %s", url, m);
                r = -EIO;
                goto fail;
        }
        if ((r = setup(s, flags, info, err, errlen)) < 0)
                goto fail;
        /* both connections as after a reconnection: settings, the store's id, statements */
        if ((r = conn_setup(s, &p->w, m, sizeof(m))) < 0 || (r = conn_open(s, &p->r, m, sizeof(m))) < 0) {
                snprintf(err, errlen, "%s", m);
                r = -EIO;
                goto fail;
        }
        p->w.ok = p->r.ok = true;
        return 0;
fail:
        pg_free(p);
        s->be = NULL;
        return r;
}

static void pg_close(vs_store *s, bool clean_ok) {
        pg_store *p = s->be;
        char why[WHY];
        /* the heartbeat ends (the leases left can be claimed at once); the run is clean if
         * clean_ok */
        const char *args[2] = { s->instance, clean_ok ? "t" : "f" };
        if (clean_ok)
                p->w.next_try_ms = 0; /* one more try, if it is down */
        if ((clean_ok || p->w.ok) && conn_ready(s, &p->w, why, sizeof(why)) == 0) {
                PQclear(PQexecParams(p->w.conn,
                                     "UPDATE instances SET alive_until=NULL, run=CASE WHEN $2::boolean THEN 'clean' ELSE"
                                     " run END, closed_at=CASE WHEN $2::boolean THEN now() ELSE closed_at END WHERE name=$1",
                                     2, NULL, args, NULL, NULL, 0));
                /* the name free at once (the server ends the session itself a little later) */
                exec_sql(p->w.conn, "SELECT pg_advisory_unlock_all()", NULL, 0);
        }
        pg_free(p);
        s->be = NULL;
}

static int pg_device_changes_since(vs_store *s, uint64_t after, vs_device *out, size_t max) {
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r, got = 0;
        p_i64(&p, after > INT64_MAX ? INT64_MAX : (int64_t) after);
        p_i64(&p, limit_of(max));
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_CHANGES, &p, &res)) == 0 &&
            (r = check_columns(s, res, device_types, DEVICE_NCOLS)) == 0) {
                int n = PQntuples(res);
                if ((size_t) n > max)
                        r = vs__read_failed(s, -EIO, "%d rows where at most %zu were asked for", n, max);
                for (int i = 0; r == 0 && i < n; i++)
                        if ((r = device_from_row(s, res, i, &out[i])) == 0)
                                got++;
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        if (r < 0) {
                for (int i = 0; i < got; i++)
                        vs_device_done(&out[i]);
                return r;
        }
        return got;
}

static int pg_device_change_last(vs_store *s, uint64_t *ret) {
        static const Oid types[] = { INT8OID };
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_CHANGE_LAST, &p, &res)) == 0 && (r = check_columns(s, res, types, 1)) == 0) {
                if (PQntuples(res) != 1)
                        r = vs__read_failed(s, -EIO, "no answer to the largest change number");
                else if ((r = check_row(s, res, 0, types, 1)) == 0)
                        *ret = (uint64_t) get_i64(res, 0, 0);
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int pg_lease_get(vs_store *s, const char *device, vs_lease_result *ret) {
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r;
        p_text(&p, device);
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_LEASE, &p, &res)) == 0 && (r = check_columns(s, res, lease_types, 3)) == 0) {
                if (PQntuples(res) == 0) {
                        r = -ENOENT;
                } else if ((r = check_row(s, res, 0, lease_types, 3)) == 0) {
                        memset(ret, 0, sizeof(*ret));
                        get_text(res, 0, 0, ret->holder, sizeof(ret->holder));
                        get_text(res, 0, 1, ret->taken_from, sizeof(ret->taken_from));
                        ret->expires_in_ms = get_i64(res, 0, 2);
                        ret->granted = strcmp(ret->holder, s->instance) == 0 && ret->expires_in_ms > 0;
                }
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int pg_verdict_keys_list(vs_store *s, vs_verdict_key *out, size_t max) {
        static const Oid types[] = { TEXTOID, TEXTOID, TEXTOID, INT8OID };
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r, got = 0;
        p_i64(&p, limit_of(max));
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_KEYS, &p, &res)) == 0 && (r = check_columns(s, res, types, 4)) == 0) {
                int n = PQntuples(res);
                if ((size_t) n > max)
                        r = vs__read_failed(s, -EIO, "%d rows where at most %zu were asked for", n, max);
                for (int i = 0; r == 0 && i < n; i++) {
                        vs_verdict_key *k = &out[i];
                        memset(k, 0, sizeof(*k));
                        if ((r = check_row(s, res, i, types, 4)) < 0)
                                break;
                        get_text(res, i, 0, k->key_id, sizeof(k->key_id));
                        get_text(res, i, 1, k->instance, sizeof(k->instance));
                        k->not_after = get_i64(res, i, 3);
                        if (!(k->pem = strndup(PQgetvalue(res, i, 2), (size_t) PQgetlength(res, i, 2)))) {
                                r = vs__read_failed(s, -ENOMEM, "out of memory");
                                break;
                        }
                        got++;
                }
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        if (r < 0) {
                for (int i = 0; i < got; i++)
                        vs_verdict_key_done(&out[i]);
                return r;
        }
        return got;
}

static int pg_golden_get(vs_store *s, const char *name, int64_t version, vs_golden_digest *ret) {
        static const Oid types[] = { TEXTOID, TEXTOID };
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r;
        p_text(&p, name);
        p_i64(&p, version);
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_GOLDEN, &p, &res)) == 0 && (r = check_columns(s, res, types, 2)) == 0) {
                if (PQntuples(res) == 0) {
                        r = -ENOENT;
                } else if ((r = check_row(s, res, 0, types, 2)) == 0) {
                        memset(ret, 0, sizeof(*ret));
                        snprintf(ret->name, sizeof(ret->name), "%s", name);
                        ret->version = version;
                        get_text(res, 0, 0, ret->stored_digest, sizeof(ret->stored_digest));
                        get_text(res, 0, 1, ret->stored_by, sizeof(ret->stored_by));
                }
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

/* A text value of the meta table, read by the prepared statement q: -ENOENT when none. */
static int meta_text_get(vs_store *s, int q, char *buf, size_t n) {
        static const Oid types[] = { TEXTOID };
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, q, &p, &res)) == 0 && (r = check_columns(s, res, types, 1)) == 0) {
                if (PQntuples(res) == 0)
                        r = -ENOENT;
                else if ((r = check_row(s, res, 0, types, 1)) == 0)
                        get_text(res, 0, 0, buf, n);
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int pg_verifier_id_get(vs_store *s, char *buf, size_t n) {
        return meta_text_get(s, R_VERIFIER_ID, buf, n);
}

static int pg_device_ca_get(vs_store *s, char *buf, size_t n) {
        return meta_text_get(s, R_DEVICE_CA_ID, buf, n);
}

static const Oid cert_types[] = { TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, BYTEAOID };

/* A certificate's row (CERT_COLS from col, checked), without its DER. */
static void cert_from_row(const PGresult *res, int row, int col, vs_cert *c) {
        memset(c, 0, sizeof(*c));
        get_text(res, row, col, c->serial, sizeof(c->serial));
        get_text(res, row, col + 1, c->device, sizeof(c->device));
        c->not_before = get_i64(res, row, col + 2);
        c->not_after = get_i64(res, row, col + 3);
        c->sequence = (uint64_t) get_i64(res, row, col + 4);
        c->global_sequence = (uint64_t) get_i64(res, row, col + 5);
        c->revoked_at = get_i64(res, row, col + 6);
        c->revoked_sequence = (uint64_t) get_i64(res, row, col + 7);
}

static int pg_cert_list(vs_store *s, const char *device, vs_cert *out, size_t max) {
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r, got = 0;
        p_text(&p, device);
        p_i64(&p, limit_of(max));
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_CERTS, &p, &res)) == 0 && (r = check_columns(s, res, cert_types, 9)) == 0) {
                int n = PQntuples(res);
                if ((size_t) n > max)
                        r = vs__read_failed(s, -EIO, "%d rows where at most %zu were asked for", n, max);
                for (int i = 0; r == 0 && i < n; i++) {
                        if ((r = check_row(s, res, i, cert_types, 9)) < 0)
                                break;
                        cert_from_row(res, i, 0, &out[i]);
                        if (get_bytes(res, i, 8, &out[i].der, &out[i].der_len) < 0) {
                                r = vs__read_failed(s, -ENOMEM, "out of memory");
                                break;
                        }
                        got++;
                }
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        if (r < 0) {
                for (int i = 0; i < got; i++)
                        vs_cert_done(&out[i]);
                return r;
        }
        return got;
}

static int pg_cert_revoked(vs_store *s, int64_t not_after_min, int (*fn)(const vs_cert *c, void *ud), void *ud,
                           uint64_t *ret_state) {
        static const Oid types[] = { INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID };
        params p = { .n = 0 };
        PGresult *res = NULL;
        int r;
        p_i64(&p, not_after_min);
        pthread_mutex_lock(&s->rlock);
        if ((r = read_exec(s, R_REVOKED, &p, &res)) == 0 && (r = check_columns(s, res, types, 9)) == 0) {
                int n = PQntuples(res);
                if (n < 1 || PQgetisnull(res, 0, 0) || PQgetlength(res, 0, 0) != 8)
                        r = vs__read_failed(s, -EIO, "the store's numbering could not be read");
                else
                        *ret_state = (uint64_t) get_i64(res, 0, 0);
                for (int i = 0; r == 0 && i < n; i++) {
                        vs_cert c;
                        if (PQgetisnull(res, i, 1))
                                continue; /* no revoked certificate */
                        if ((r = check_row(s, res, i, types, 9)) < 0)
                                break;
                        cert_from_row(res, i, 1, &c);
                        r = fn(&c, ud);
                }
        }
        PQclear(res);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

const vs_backend vs_backend_pg = {
        .name = "postgresql",
        .open = pg_open,
        .close = pg_close,
        .commit = pg_commit,
        .maintain = pg_maintain,
        .device_get = pg_device_get,
        .device_foreach = pg_device_foreach,
        .verdict_history = pg_verdict_history,
        .verdict_since = pg_verdict_since,
        .verdict_last_global = pg_verdict_last_global,
        .ekcert_get = pg_ekcert_get,
        .lease_get = pg_lease_get,
        .device_changes_since = pg_device_changes_since,
        .device_change_last = pg_device_change_last,
        .verdict_keys_list = pg_verdict_keys_list,
        .golden_get = pg_golden_get,
        .verifier_id_get = pg_verifier_id_get,
        .device_ca_get = pg_device_ca_get,
        .cert_list = pg_cert_list,
        .cert_revoked = pg_cert_revoked,
};
