/* SPDX-License-Identifier: Apache-2.0 */
/* store.h on SQLite (WAL, synchronous=FULL): the writer thread (store.c) commits each batch
 * here on its own connection; reads use another. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store-backend.h"

#define CHECKPOINT_FRAMES 10000 /* 4 KiB pages: a WAL of about 40 MiB */
#define CHECKPOINT_SECONDS 10   /* and at least this often while it holds any frame */

/* The writer's statements, prepared once on the writer connection and reset after each use. */
enum {
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST_DEVICE,
        ST_ENROLL,
        ST_DEVICE_ACCESS,
        ST_CLOCK,
        ST_ADMIN,
        ST_VERDICT,
        ST_PRUNE,
        ST_EKCERT,
        ST_NEXT_GSEQ,
        ST_ALIVE,
        ST_HEARTBEAT,
        ST_CLAIM,
        ST_RELEASE,
        ST_RELEASE_ALL,
        ST_KEYS_CLEAR,
        ST_KEY_PUT,
        ST_GOLDEN_GET,
        ST_GOLDEN_PUT,
        ST_VERIFIER_ID,
        ST_DEVICE_CA_ID,
        ST_CERT,
        ST_CERT_REVOKE,
        ST_CERT_PRUNE,
        ST_COUNT,
};

/* A lease holder's heartbeat as of ?3 (now, Unix ms): lapsed when at or before it */
#define HOLDER_ALIVE_UNTIL "coalesce((SELECT i.alive_until FROM instances i WHERE i.name = l.instance), 0)"

#define ROW_COLS                                                                                        \
        "id, ek_public, ak_public, golden, approved, revoked, enrolled_at, has_last, reset_count, restart_count, " \
        "clock, sequence, ek_anchor, change"
/* a row write's change number (store.h, device changes): the next one (the writer's
 * transaction holds SQLite's write lock, so they follow the commit order) */
#define NEXT_CHANGE "(SELECT coalesce(max(change), 0) + 1 FROM devices)"

static const char *const statements[ST_COUNT] = {
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_DEVICE] = "INSERT INTO devices (" ROW_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,"
                      NEXT_CHANGE ") "
                      "ON CONFLICT(id) DO UPDATE SET ek_public=?2, ak_public=?3, golden=?4, approved=?5,"
                      " revoked=?6, enrolled_at=?7, has_last=?8, reset_count=?9, restart_count=?10,"
                      " clock=?11, sequence=?12, ek_anchor=?13, change=excluded.change",
        /* an enrollment: the whole row for a new device; for a known one, not the admin's
         * fields (golden, approved, revoked), which only the API writes */
        [ST_ENROLL] = "INSERT INTO devices (" ROW_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,"
                      NEXT_CHANGE ") "
                      "ON CONFLICT(id) DO UPDATE SET ek_public=?2, ak_public=?3, enrolled_at=?7, has_last=?8,"
                      " reset_count=?9, restart_count=?10, clock=?11, sequence=?12, ek_anchor=?13,"
                      " change=excluded.change",
        /* a revocation's row, with its verdict: the whole row for a new device; for a known
         * one, not its golden assignment (the admin's, vs_device_put_admin) */
        [ST_DEVICE_ACCESS] = "INSERT INTO devices (" ROW_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,"
                             NEXT_CHANGE ") "
                             "ON CONFLICT(id) DO UPDATE SET ek_public=?2, ak_public=?3, approved=?5, revoked=?6,"
                             " enrolled_at=?7, has_last=?8, reset_count=?9, restart_count=?10, clock=?11,"
                             " sequence=?12, ek_anchor=?13, change=excluded.change",
        /* the admin's fields given (NULL: kept), of a known device */
        [ST_ADMIN] = "UPDATE devices SET golden=coalesce(?2, golden), approved=coalesce(?3, approved),"
                     " revoked=coalesce(?4, revoked), change=" NEXT_CHANGE " WHERE id=?1",
        [ST_EKCERT] = "INSERT OR REPLACE INTO ek_certs (key, url, der, fetched_at) VALUES (?1,?2,?3,?4)",
        [ST_CLOCK] = "UPDATE devices SET has_last=1, reset_count=?2, restart_count=?3, clock=?4 WHERE id=?1",
        [ST_VERDICT] = "INSERT INTO verdicts (device, sequence, status, issued_at, expires_at, record, gseq) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        [ST_PRUNE] = "DELETE FROM verdicts WHERE device=?1 AND sequence<=?2",
        /* the largest global sequence used: stored (AUTOINCREMENT remembers it after the row
         * is gone), or handed to a seal hook in a transaction that failed (meta gseq_used) */
        [ST_NEXT_GSEQ] = "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name='verdicts'), 0),"
                         " coalesce((SELECT max(gseq) FROM verdicts), 0),"
                         " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key='gseq_used'), 0))",
        /* leases (store.h): the instance ?1's heartbeat, and pushed to now ?2 + ttl ?3 at least */
        [ST_ALIVE] = "SELECT alive_until FROM instances WHERE name = ?1",
        [ST_HEARTBEAT] = "UPDATE instances SET alive_until = max(coalesce(alive_until, 0), ?2 + ?3) WHERE name = ?1",
        /* device ?1 for instance ?2 at now ?3: granted when free, ours, or its holder's
         * heartbeat has lapsed (taken_from then names that holder) */
        [ST_CLAIM] = "INSERT INTO leases AS l (device, instance, taken_from) VALUES (?1, ?2, NULL) "
                     "ON CONFLICT(device) DO UPDATE SET"
                     " taken_from = CASE WHEN l.instance = ?2 THEN NULL WHEN " HOLDER_ALIVE_UNTIL " <= ?3 THEN l.instance"
                     " ELSE l.taken_from END,"
                     " instance = CASE WHEN l.instance = ?2 OR " HOLDER_ALIVE_UNTIL " <= ?3 THEN ?2 ELSE l.instance END "
                     "RETURNING instance, coalesce(taken_from, ''),"
                     " coalesce((SELECT i.alive_until FROM instances i WHERE i.name = leases.instance), 0) - ?3",
        [ST_RELEASE] = "DELETE FROM leases WHERE device = ?1 AND instance = ?2",
        [ST_RELEASE_ALL] = "DELETE FROM leases WHERE instance = ?1",
        /* the deployment's identity (store.h): instance ?1's verdict keys replaced; golden
         * sets registered */
        [ST_KEYS_CLEAR] = "DELETE FROM verdict_keys WHERE instance = ?1",
        [ST_KEY_PUT] = "INSERT INTO verdict_keys (key_id, instance, pem, not_after, published_at) VALUES (?1,?2,?3,?4,?5)",
        [ST_GOLDEN_GET] = "SELECT digest, instance FROM golden_sets WHERE name = ?1 AND version = ?2",
        [ST_GOLDEN_PUT] = "INSERT INTO golden_sets (name, version, digest, instance, registered_at) VALUES (?1,?2,?3,?4,?5)",
        /* the deployment's verifier id: the first one registered stays */
        [ST_VERIFIER_ID] = "INSERT OR IGNORE INTO meta (key, value) VALUES ('verifier_id', ?1)",
        [ST_DEVICE_CA_ID] = "INSERT OR IGNORE INTO meta (key, value) VALUES ('device_ca_id', ?1)",
        /* device certificates (store.h): one stored with its verdict; device ?1's revoked at
         * ?2 by its verdict of sequence ?3 (0: its row); its pruned ones */
        [ST_CERT] = "INSERT INTO certs (serial, device, not_before, not_after, sequence, gseq, der)"
                    " VALUES (?1,?2,?3,?4,?5,?6,?7)",
        [ST_CERT_REVOKE] = "UPDATE certs SET revoked_at=?2, revoked_sequence=?3 WHERE device=?1 AND revoked_at=0"
                           " AND not_after>?2",
        [ST_CERT_PRUNE] = "DELETE FROM certs WHERE device=?1 AND sequence<=?2 AND not_after<?3",
};

/* Which file a path named when the store was opened. */
typedef struct file_id {
        bool known;
        dev_t dev;
        ino_t ino;
} file_id;

typedef struct sq_store {
        sqlite3 *wdb, *rdb;             /* the writer's connection; the reads' (under s->rlock) */
        const char *path;               /* s->target */
        file_id db_id, wal_id, shm_id;  /* writer thread (set before it starts) */
        off_t db_min_size;              /* the database file never shrinks (no VACUUM): writer */
        struct timespec last_checkpoint;/* CLOCK_MONOTONIC, writer thread */
        int wal_frames;                 /* frames in the WAL after the last commit (writer thread) */
        sqlite3_stmt *st[ST_COUNT];     /* the writer's statements (ST_*) */
        uint64_t gseq_handed;           /* writer thread: the largest number handed to a seal hook */
        char fail_why[100];             /* writer thread: why the batch failed, when not SQLite's doing */
        bool hb_known, hb_lapsed;       /* writer thread: the heartbeat as the batch found it */
} sq_store;

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS devices ("
        " id TEXT PRIMARY KEY, ek_public BLOB NOT NULL, ak_public BLOB NOT NULL, golden TEXT NOT NULL,"
        " approved INTEGER NOT NULL, revoked INTEGER NOT NULL, enrolled_at INTEGER NOT NULL,"
        " has_last INTEGER NOT NULL, reset_count INTEGER NOT NULL, restart_count INTEGER NOT NULL,"
        " clock INTEGER NOT NULL, sequence INTEGER NOT NULL, ek_anchor INTEGER NOT NULL DEFAULT 0,"
        " change INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE IF NOT EXISTS verdicts ("
        " gseq INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, sequence INTEGER NOT NULL,"
        " status INTEGER NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, record BLOB NOT NULL);"
        "CREATE INDEX IF NOT EXISTS verdicts_device ON verdicts (device, sequence);"
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS ek_certs (key TEXT PRIMARY KEY, url TEXT NOT NULL, der BLOB NOT NULL,"
        " fetched_at INTEGER NOT NULL);"
        /* 4: the run state and heartbeat per instance; leases (times in Unix milliseconds,
         * by the writer's clock: one instance) */
        "CREATE TABLE IF NOT EXISTS instances (name TEXT PRIMARY KEY, run TEXT NOT NULL, started_at INTEGER NOT NULL,"
        " closed_at INTEGER, alive_until INTEGER);"
        "CREATE TABLE IF NOT EXISTS leases (device TEXT PRIMARY KEY, instance TEXT NOT NULL, taken_from TEXT);"
        "CREATE INDEX IF NOT EXISTS leases_instance ON leases (instance);"
        /* 5: the deployment's identity: each instance's published verdict keys, the golden
         * sets' digests (times in Unix milliseconds) */
        "CREATE TABLE IF NOT EXISTS verdict_keys (key_id TEXT NOT NULL, instance TEXT NOT NULL, pem TEXT NOT NULL,"
        " not_after INTEGER NOT NULL, published_at INTEGER NOT NULL, PRIMARY KEY (key_id, instance));"
        "CREATE TABLE IF NOT EXISTS golden_sets (name TEXT NOT NULL, version INTEGER NOT NULL, digest TEXT NOT NULL,"
        " instance TEXT NOT NULL, registered_at INTEGER NOT NULL, PRIMARY KEY (name, version));"
        /* 6: the device certificates (times in Unix seconds; revoked_at 0: not revoked), by
         * device and, for the revocation list, the revoked ones by expiry */
        "CREATE TABLE IF NOT EXISTS certs (serial TEXT PRIMARY KEY, device TEXT NOT NULL, not_before INTEGER NOT NULL,"
        " not_after INTEGER NOT NULL, sequence INTEGER NOT NULL, gseq INTEGER NOT NULL,"
        " revoked_at INTEGER NOT NULL DEFAULT 0, revoked_sequence INTEGER NOT NULL DEFAULT 0, der BLOB NOT NULL);"
        "CREATE INDEX IF NOT EXISTS certs_device ON certs (device, sequence);"
        "CREATE INDEX IF NOT EXISTS certs_revoked ON certs (not_after) WHERE revoked_at <> 0;";

/* From an older schema (the tables above exist by now, perhaps without the newer columns):
 * 3 devices.ek_anchor (devices from before have an EK certificate); 4 devices.change (the
 * devices from before numbered in rowid order), its index, and meta's 'run' row as instance
 * "default"'s; 5 and 6 the tables of the schema above. In one transaction. */
static const char migrate_v3[] = "ALTER TABLE devices ADD COLUMN ek_anchor INTEGER NOT NULL DEFAULT 0;";
static const char migrate_v4_change[] =
        "ALTER TABLE devices ADD COLUMN change INTEGER NOT NULL DEFAULT 0;"
        "UPDATE devices SET change=rowid;";
/* the run state of a store from before (version 1 kept none: its end is unknown, unclean) */
static const char migrate_v4_run[] =
        "INSERT OR IGNORE INTO instances (name, run, started_at)"
        " SELECT 'default', coalesce((SELECT value FROM meta WHERE key='run'), 'running'), 0;"
        "DELETE FROM meta WHERE key='run';";
static const char migrate_v5[] =
        "CREATE INDEX IF NOT EXISTS devices_change ON devices (change);"
        "PRAGMA user_version=6;";

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen) {
        char *msg = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                if (err)
                        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
                sqlite3_free(msg);
                return -EIO;
        }
        return 0;
}

/* Runs a prepared statement to completion and resets it (bindings cleared, so that no
 * pointer into an op outlives it). */
static int run(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

static int apply_verdict(vs_store *s, vs_verdict *v);
static int64_t wall_ms(void);

/* The device's certificates not revoked yet and not expired at `at` revoked (store.h,
 * Device certificates), by its verdict of sequence seq (0: a write of its row). */
static int revoke_certs(vs_store *s, const char *device, int64_t at, uint64_t seq) {
        sq_store *q = s->be;
        sqlite3_stmt *st = q->st[ST_CERT_REVOKE];
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, at);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) seq);
        return run(st);
}

/* The instance's heartbeat pushed to ttl_ms from now (at least); whether it had lapsed, and
 * what is left of it, into res. */
static int heartbeat(vs_store *s, int64_t now, int64_t ttl_ms, vs_lease_result *res) {
        sq_store *q = s->be;
        sqlite3_stmt *st = q->st[ST_ALIVE];
        int r, rc;
        sqlite3_bind_text(st, 1, s->instance, -1, SQLITE_STATIC);
        int64_t until = 0;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                until = sqlite3_column_int64(st, 0); /* NULL: 0, long past */
                /* as the batch found it (as on PostgreSQL) */
                if (!q->hb_known)
                        q->hb_lapsed = until <= now;
                q->hb_known = true;
                res->lapsed = q->hb_lapsed;
                rc = sqlite3_step(st);
        } else if (rc == SQLITE_DONE) {
                rc = SQLITE_NOTFOUND; /* this instance's row gone: never, but not a heartbeat */
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_DONE)
                return -EIO;
        st = q->st[ST_HEARTBEAT];
        sqlite3_bind_text(st, 1, s->instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, ttl_ms);
        if ((r = run(st)) < 0)
                return r;
        snprintf(res->holder, sizeof(res->holder), "%s", s->instance);
        res->expires_in_ms = (until > now + ttl_ms ? until : now + ttl_ms) - now;
        return 0;
}

static int claim_reads(vs_store *s, vs_write *w);

/* A claim (store.h, leases): the heartbeat, then the lease row and its answer in w->lease;
 * when granted, the device's row and latest verdict with it. */
static int apply_claim(vs_store *s, vs_write *w) {
        sq_store *q = s->be;
        sqlite3_stmt *st = q->st[ST_CLAIM];
        int64_t now = wall_ms();
        int r, rc;
        if ((r = heartbeat(s, now, w->ttl_ms, &w->lease)) < 0)
                return r;
        sqlite3_bind_text(st, 1, w->dev.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                vs_lease_result *l = &w->lease;
                snprintf(l->holder, sizeof(l->holder), "%s",
                         sqlite3_column_text(st, 0) ? (const char *) sqlite3_column_text(st, 0) : "");
                snprintf(l->taken_from, sizeof(l->taken_from), "%s",
                         sqlite3_column_text(st, 1) ? (const char *) sqlite3_column_text(st, 1) : "");
                l->expires_in_ms = sqlite3_column_int64(st, 2);
                l->granted = strcmp(l->holder, s->instance) == 0;
                rc = sqlite3_step(st);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_DONE)
                return -EIO;
        return w->lease.granted ? claim_reads(s, w) : 0;
}

static void bind_row(sqlite3_stmt *st, const vs_device *d) {
        sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, d->ek_public, (int) d->ek_public_len, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, d->ak_public, (int) d->ak_public_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, d->golden, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, d->approved);
        sqlite3_bind_int(st, 6, d->revoked);
        sqlite3_bind_int64(st, 7, d->enrolled_at);
        sqlite3_bind_int(st, 8, d->has_last);
        sqlite3_bind_int64(st, 9, d->reset_count);
        sqlite3_bind_int64(st, 10, d->restart_count);
        sqlite3_bind_int64(st, 11, (sqlite3_int64) d->clock);
        sqlite3_bind_int64(st, 12, (sqlite3_int64) d->sequence);
        sqlite3_bind_int(st, 13, d->ek_anchor);
}

/* This instance's published verdict keys replaced (store.h). */
static int apply_keys(vs_store *s, vs_write *w) {
        sq_store *q = s->be;
        sqlite3_stmt *st = q->st[ST_KEYS_CLEAR];
        int r;
        sqlite3_bind_text(st, 1, s->instance, -1, SQLITE_STATIC);
        if ((r = run(st)) < 0)
                return r;
        int64_t now = wall_ms();
        for (size_t i = 0; i < w->n_items; i++) {
                st = q->st[ST_KEY_PUT];
                sqlite3_bind_text(st, 1, w->keys[i].key_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, s->instance, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, w->keys[i].pem, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 4, w->keys[i].not_after);
                sqlite3_bind_int64(st, 5, now);
                if ((r = run(st)) < 0)
                        return r;
        }
        return 0;
}

/* A golden registration (store.h), all or none: what is stored for each set, then (when
 * none disagrees) the new ones stored. SQLite's write lock makes it one at a time. */
static int apply_golden(vs_store *s, vs_write *w) {
        sq_store *q = s->be;
        sqlite3_stmt *st = q->st[ST_GOLDEN_GET];
        bool conflict = false;
        int r, rc = SQLITE_DONE;
        for (size_t i = 0; i < w->n_items && rc == SQLITE_DONE; i++) {
                vs_golden_digest *g = &w->goldens[i];
                g->stored_digest[0] = g->stored_by[0] = 0;
                sqlite3_bind_text(st, 1, g->name, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, g->version);
                if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        const unsigned char *d = sqlite3_column_text(st, 0), *by = sqlite3_column_text(st, 1);
                        snprintf(g->stored_digest, sizeof(g->stored_digest), "%s", d ? (const char *) d : "?");
                        snprintf(g->stored_by, sizeof(g->stored_by), "%s", by ? (const char *) by : "");
                        conflict |= strcmp(g->stored_digest, g->digest) != 0;
                        rc = sqlite3_step(st);
                }
                sqlite3_reset(st);
                sqlite3_clear_bindings(st);
        }
        if (rc != SQLITE_DONE)
                return -EIO;
        int64_t now = wall_ms();
        for (size_t i = 0; !conflict && i < w->n_items; i++) {
                vs_golden_digest *g = &w->goldens[i];
                if (g->stored_digest[0])
                        continue;
                st = q->st[ST_GOLDEN_PUT];
                sqlite3_bind_text(st, 1, g->name, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, g->version);
                sqlite3_bind_text(st, 3, g->digest, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, s->instance, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 5, now);
                if ((r = run(st)) < 0)
                        return r;
        }
        vs__golden_outcome(s, w);
        return 0;
}

/* One write of a plan (store-backend.h), in the open transaction. */
static int apply(vs_store *s, vs_write *w) {
        sq_store *q = s->be;
        sqlite3_stmt *st;
        int r;
        switch (w->kind) {
        case VS_W_DEVICE:
        case VS_W_ENROLL:
        case VS_W_VERDICT_DEVICE:
                st = q->st[w->kind == VS_W_ENROLL ? ST_ENROLL : w->kind == VS_W_DEVICE ? ST_DEVICE : ST_DEVICE_ACCESS];
                bind_row(st, &w->dev);
                if ((r = run(st)) < 0 || (vs__row_revokes_certs(w) && (r = revoke_certs(s, w->dev.id, wall_ms() / 1000, 0)) < 0))
                        return r;
                if (w->kind != VS_W_VERDICT_DEVICE)
                        return 0;
                /* in the same transaction: the row and the verdict, or neither */
                return apply_verdict(s, &w->verdict);
        case VS_W_ADMIN:
                st = q->st[ST_ADMIN];
                sqlite3_bind_text(st, 1, w->dev.id, -1, SQLITE_STATIC);
                if (w->admin_fields & VS_ADMIN_GOLDEN)
                        sqlite3_bind_text(st, 2, w->dev.golden, -1, SQLITE_STATIC);
                else
                        sqlite3_bind_null(st, 2);
                if (w->admin_fields & VS_ADMIN_ACCESS) {
                        sqlite3_bind_int(st, 3, w->dev.approved);
                        sqlite3_bind_int(st, 4, w->dev.revoked);
                } else {
                        sqlite3_bind_null(st, 3);
                        sqlite3_bind_null(st, 4);
                }
                if ((r = run(st)) < 0 || !vs__row_revokes_certs(w))
                        return r;
                return revoke_certs(s, w->dev.id, wall_ms() / 1000, 0);
        case VS_W_CLOCK:
                st = q->st[ST_CLOCK];
                sqlite3_bind_text(st, 1, w->dev.id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, w->dev.reset_count);
                sqlite3_bind_int64(st, 3, w->dev.restart_count);
                sqlite3_bind_int64(st, 4, (sqlite3_int64) w->dev.clock);
                return run(st);
        case VS_W_VERDICT:
                return apply_verdict(s, &w->verdict);
        case VS_W_EKCERT:
                st = q->st[ST_EKCERT];
                sqlite3_bind_text(st, 1, w->ekcert.key, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, w->ekcert.url, -1, SQLITE_STATIC);
                sqlite3_bind_blob(st, 3, w->ekcert.der, (int) w->ekcert.der_len, SQLITE_STATIC);
                sqlite3_bind_int64(st, 4, w->ekcert.fetched_at);
                return run(st);
        case VS_W_KEYS:
                return apply_keys(s, w);
        case VS_W_GOLDEN:
                return apply_golden(s, w);
        case VS_W_VERIFIER_ID:
        case VS_W_DEVICE_CA_ID:
                st = q->st[w->kind == VS_W_VERIFIER_ID ? ST_VERIFIER_ID : ST_DEVICE_CA_ID];
                sqlite3_bind_text(st, 1, w->dev.id, -1, SQLITE_STATIC);
                return run(st);
        case VS_W_LEASE_CLAIM:
                return apply_claim(s, w);
        case VS_W_LEASE_RENEW:
                return heartbeat(s, wall_ms(), w->ttl_ms, &w->lease);
        case VS_W_LEASE_RELEASE:
                st = q->st[ST_RELEASE];
                sqlite3_bind_text(st, 1, w->dev.id, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, s->instance, -1, SQLITE_STATIC);
                return run(st);
        case VS_W_LEASE_RELEASE_ALL:
                st = q->st[ST_RELEASE_ALL];
                sqlite3_bind_text(st, 1, s->instance, -1, SQLITE_STATIC);
                return run(st);
        }
        return -EINVAL;
}

/* A commit-ordered verdict's number (store.h, Global order): past every number used, in
 * the writer's transaction (SQLite's write lock orders the commits). */
static int seal_verdict(vs_store *s, vs_verdict *v) {
        sq_store *q = s->be;
        sqlite3_stmt *st = q->st[ST_NEXT_GSEQ];
        uint64_t used = 0;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                used = (uint64_t) sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
                return -EIO;
        if (q->gseq_handed > used)
                used = q->gseq_handed;
        q->gseq_handed = used + 1;
        int r = vs__seal(v, used + 1);
        if (r < 0)
                snprintf(q->fail_why, sizeof(q->fail_why), "a verdict's seal hook failed (%s): not stored", strerror(-r));
        return r;
}

static int apply_verdict(vs_store *s, vs_verdict *v) {
        sq_store *q = s->be;
        sqlite3_stmt *st = q->st[ST_VERDICT];
        int r;
        if (v->seal && (r = seal_verdict(s, v)) < 0)
                return r;
        sqlite3_bind_text(st, 1, v->device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) v->sequence);
        sqlite3_bind_int(st, 3, v->status);
        sqlite3_bind_int64(st, 4, v->issued_at);
        sqlite3_bind_int64(st, 5, v->expires_at);
        sqlite3_bind_blob(st, 6, v->record, (int) v->record_len, SQLITE_STATIC);
        if (v->global_sequence)
                sqlite3_bind_int64(st, 7, (sqlite3_int64) v->global_sequence);
        else
                sqlite3_bind_null(st, 7); /* the next one */
        if ((r = run(st)) < 0)
                return r;
        /* its device's certificates: revoked by it, or issued with it (store.h) */
        if (v->revoke_certs && (r = revoke_certs(s, v->device, v->issued_at, v->sequence)) < 0)
                return r;
        if (v->cert) {
                const vs_cert *c = v->cert;
                st = q->st[ST_CERT];
                sqlite3_bind_text(st, 1, c->serial, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, v->device, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, c->not_before);
                sqlite3_bind_int64(st, 4, c->not_after);
                sqlite3_bind_int64(st, 5, (sqlite3_int64) v->sequence);
                sqlite3_bind_int64(st, 6, v->global_sequence ? (sqlite3_int64) v->global_sequence
                                                             : sqlite3_last_insert_rowid(q->wdb));
                sqlite3_bind_blob(st, 7, c->der, (int) c->der_len, SQLITE_STATIC);
                if ((r = run(st)) < 0)
                        return r;
        }
        /* retention (store.h): every VS_PRUNE_EVERY-th verdict of a device deletes its
         * verdicts older than the newest history_keep, and their expired certificates */
        if (!vs__prune_due(s, v))
                return 0;
        st = q->st[ST_PRUNE];
        sqlite3_bind_text(st, 1, v->device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) (v->sequence - s->history_keep));
        if ((r = run(st)) < 0)
                return r;
        st = q->st[ST_CERT_PRUNE];
        sqlite3_bind_text(st, 1, v->device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) (v->sequence - s->history_keep));
        sqlite3_bind_int64(st, 3, vs__cert_prune_before(v));
        return run(st);
}

/* ---- the store's files: noticing that they are gone while vouchd runs ---- */

static int file_id_of(const char *path, file_id *ret, off_t *size) {
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        *ret = (file_id) { .known = true, .dev = st.st_dev, .ino = st.st_ino };
        if (size)
                *size = st.st_size;
        return 0;
}

/* The WAL and shared-memory files exist while a connection is open in WAL mode. */
static void remember_files(sq_store *q) {
        char p[4200];
        off_t size = 0;
        file_id now;
        /* the identity is the one opened, never re-read: a file swapped in between a check
         * and this does not become "the store" */
        if (file_id_of(q->path, &now, &size) == 0) {
                if (!q->db_id.known)
                        q->db_id = now;
                if (size > q->db_min_size)
                        q->db_min_size = size;
        }
        snprintf(p, sizeof(p), "%s-wal", q->path);
        if (!q->wal_id.known)
                file_id_of(p, &q->wal_id, NULL);
        snprintf(p, sizeof(p), "%s-shm", q->path);
        if (!q->shm_id.known)
                file_id_of(p, &q->shm_id, NULL);
}

static bool same_file(const char *path, const char *suffix, const file_id *id, char *why, size_t n) {
        char p[4200];
        file_id now = { 0 };
        snprintf(p, sizeof(p), "%s%s", path, suffix);
        if (!id->known)
                return true;
        int r = file_id_of(p, &now, NULL);
        if (r < 0)
                snprintf(why, n, "%.200s is gone (%s)", p, strerror(-r));
        else if (now.dev != id->dev || now.ino != id->ino)
                snprintf(why, n, "%.200s was replaced by another file", p);
        return r == 0 && now.dev == id->dev && now.ino == id->ino;
}

/* On the writer thread, before a commit or a checkpoint: 0, or -EIO once the files are
 * lost (then for good: see vs_lost). */
static int check_files(vs_store *s) {
        sq_store *q = s->be;
        char why[300] = "", msg[400];
        int moved = 0;
        off_t size = 0;
        file_id now;
        if (vs_lost(s, NULL, 0))
                return -EIO;
        if (sqlite3_file_control(q->wdb, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved)
                snprintf(why, sizeof(why), "%s was deleted, renamed or replaced", q->path);
        else if (!same_file(q->path, "", &q->db_id, why, sizeof(why)) ||
                 !same_file(q->path, "-wal", &q->wal_id, why, sizeof(why)) ||
                 !same_file(q->path, "-shm", &q->shm_id, why, sizeof(why)))
                ;
        else if (file_id_of(q->path, &now, &size) == 0 && size < q->db_min_size)
                snprintf(why, sizeof(why), "%s was truncated (%lld bytes, was at least %lld)", q->path, (long long) size,
                         (long long) q->db_min_size);
        if (!why[0])
                return 0;
        snprintf(msg, sizeof(msg), "%s while vouchd ran: nothing more is stored or acknowledged", why);
        vs__set_lost(s, msg);
        return -EIO;
}

static double seconds_since(const struct timespec *t) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double) (now.tv_sec - t->tv_sec) + (double) (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* PASSIVE: never waits for a reader; what it cannot copy now, the next one will. On a
 * schedule as well as by size, so that a small fleet's verdicts do not live in the WAL
 * alone (a deleted WAL loses at most CHECKPOINT_SECONDS of them). */
static void sq_after_batch(vs_store *s) {
        sq_store *q = s->be;
        if (q->wal_frames == 0 ||
            (q->wal_frames < CHECKPOINT_FRAMES && seconds_since(&q->last_checkpoint) < CHECKPOINT_SECONDS))
                return;
        if (check_files(s) < 0)
                return; /* never write pages into a file that is no longer the store */
        sqlite3_wal_checkpoint_v2(q->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        q->wal_frames = 0;
        clock_gettime(CLOCK_MONOTONIC, &q->last_checkpoint);
        remember_files(q);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames) {
        sq_store *q = arg;
        q->wal_frames = frames;
        return SQLITE_OK;
}

/* After a failed transaction: the numbers handed to seal hooks in it stay used (store.h,
 * Global order), recorded in a transaction of their own (best effort: when that fails too,
 * this run's memory still skips them). */
static void remember_gseq_handed(vs_store *s) {
        sq_store *q = s->be;
        sqlite3_stmt *st = NULL;
        if (check_files(s) < 0 ||
            sqlite3_prepare_v2(q->wdb,
                               "INSERT INTO meta VALUES ('gseq_used', ?1) ON CONFLICT(key) DO UPDATE SET value=?1"
                               " WHERE CAST(value AS INTEGER) < CAST(?1 AS INTEGER)",
                               -1, &st, NULL) != SQLITE_OK)
                return;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) q->gseq_handed);
        sqlite3_step(st);
        sqlite3_finalize(st);
}

/* One batch, one transaction (store-backend.h). */
static int sq_commit(vs_store *s, vs_write *const *plan, size_t n, char *why, size_t whylen) {
        sq_store *q = s->be;
        q->fail_why[0] = 0;
        q->hb_known = false;
        int r = run(q->st[ST_BEGIN]);
        for (size_t i = 0; r == 0 && i < n; i++)
                r = apply(s, plan[i]);
        int lost = r == 0 ? check_files(s) : 0;
        if (r == 0 && lost == 0)
                r = run(q->st[ST_COMMIT]);
        if (lost < 0) {
                vs_lost(s, why, whylen);
                r = -EIO;
        } else if (r < 0) {
                snprintf(why, whylen, "%s", q->fail_why[0] ? q->fail_why : sqlite3_errmsg(q->wdb));
        }
        if (r < 0 && !sqlite3_get_autocommit(q->wdb))
                run(q->st[ST_ROLLBACK]);
        if (r < 0 && q->gseq_handed)
                remember_gseq_handed(s);
        return r;
}

static int open_db(const char *path, int oflags, sqlite3 **ret, char *err, size_t errlen) {
        if (sqlite3_open_v2(path, ret, oflags | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
                snprintf(err, errlen, "cannot open %s: %s", path, *ret ? sqlite3_errmsg(*ret) : "out of memory");
                sqlite3_close(*ret);
                *ret = NULL;
                return -EIO;
        }
        sqlite3_busy_timeout(*ret, 10000);
        return 0;
}

/* One integer (or text, into buf) from a one-row query; -EIO (SQLite's message in err) or
 * -EUCLEAN (damaged) when it fails, 0 when there is no row (*ret unchanged). */
static int query_one(sqlite3 *db, const char *sql, sqlite3_int64 *ret, char *buf, size_t n, char *err, size_t errlen) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (ret)
                        *ret = sqlite3_column_int64(st, 0);
                if (buf)
                        snprintf(buf, n, "%s", sqlite3_column_text(st, 0) ? (const char *) sqlite3_column_text(st, 0) : "");
                rc = SQLITE_DONE;
        }
        if (rc != SQLITE_DONE)
                snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ? -EUCLEAN : -EIO;
}

static const char recover_hint[] =
        "check it with: sqlite3 %s 'PRAGMA integrity_check'; restore it from a backup, or salvage what is readable "
        "with: sqlite3 %s .recover | sqlite3 NEW.db (docs/failure-behaviour.md)";

/* The file as a store: it exists, is not empty, and holds vouch's tables; not damaged. */
static int check_existing(sq_store *q, const char *path, unsigned flags, bool *created, char *err, size_t errlen) {
        char msg[200] = "";
        sqlite3_int64 tables = 0;
        int r;
        if ((r = query_one(q->wdb, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('devices','verdicts')",
                           &tables, NULL, 0, msg, sizeof(msg))) < 0) {
                snprintf(err, errlen, "%s cannot be read as a vouch store: %s", path, msg);
                return r;
        }
        if (tables != 2 && !(flags & VS_OPEN_CREATE)) {
                snprintf(err, errlen, "%s holds no vouch store (%s)", path, tables ? "tables missing" : "no tables");
                return -ENOENT;
        }
        *created = tables == 0;
        if (*created)
                return 0;
        /* a damaged page found now, not as the end of a scan later */
        char first[200] = "";
        if ((r = query_one(q->wdb, "PRAGMA quick_check(1)", NULL, first, sizeof(first), msg, sizeof(msg))) < 0 ||
            strcmp(first, "ok") != 0) {
                int k = snprintf(err, errlen, "%s is damaged (%s); ", path, r < 0 ? msg : first);
                if (k >= 0 && (size_t) k < errlen)
                        snprintf(err + k, errlen - (size_t) k, recover_hint, path, path);
                return -EUCLEAN;
        }
        return 0;
}

static int64_t wall_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        return (int64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* This instance's previous run's end, and this one's start, in the instances table
 * (store.h, vs_open_info). */
static int begin_run(vs_store *s, bool created, vs_open_info *info, char *err, size_t errlen) {
        sq_store *q = s->be;
        sqlite3_stmt *st = NULL;
        char state[32] = "";
        bool found = false;
        int rc = sqlite3_prepare_v2(q->wdb, "SELECT run FROM instances WHERE name=?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, s->instance, -1, SQLITE_STATIC);
                if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        found = true;
                        snprintf(state, sizeof(state), "%s",
                                 sqlite3_column_text(st, 0) ? (const char *) sqlite3_column_text(st, 0) : "");
                        rc = SQLITE_DONE;
                }
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                snprintf(err, errlen, "%s: cannot read the run state of instance %s: %s", q->path, s->instance,
                         sqlite3_errmsg(q->wdb));
                return -EIO;
        }
        /* a name that never ran here issued nothing that could be missing */
        bool clean = created || !found || strcmp(state, "clean") == 0;
        s->unsettled = !clean;
        if (info)
                *info = (vs_open_info) { .created = created, .previous_clean = clean };
        st = NULL;
        rc = sqlite3_prepare_v2(q->wdb,
                                "INSERT INTO instances (name, run, started_at) VALUES (?1, 'running', ?2) "
                                "ON CONFLICT(name) DO UPDATE SET run='running', started_at=?2, closed_at=NULL",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, s->instance, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, wall_ms());
                rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                snprintf(err, errlen, "cannot write to %s: %s", q->path, sqlite3_errmsg(q->wdb));
                return -EIO;
        }
        return 0;
}

static void sq_free(sq_store *q) {
        if (!q)
                return;
        for (int i = 0; i < ST_COUNT; i++)
                sqlite3_finalize(q->st[i]);
        sqlite3_close(q->wdb);
        sqlite3_close(q->rdb);
        free(q);
}

static int sq_open(vs_store *s, const char *path, unsigned flags, vs_open_info *info, char *err, size_t errlen) {
        sq_store *q = calloc(1, sizeof(*q));
        bool created = false;
        char msg[200];
        int r;
        if (!q) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        q->path = path;
        s->be = q;
        int oflags = SQLITE_OPEN_READWRITE | (flags & VS_OPEN_CREATE ? SQLITE_OPEN_CREATE : 0);
        struct stat st;
        bool absent = stat(path, &st) < 0 || st.st_size == 0;
        if (!(flags & VS_OPEN_CREATE) && absent) {
                snprintf(err, errlen, "%s is %s", path, stat(path, &st) < 0 ? "missing" : "empty (0 bytes)");
                r = -ENOENT;
                goto fail;
        }
        if (absent) { /* a new store: a WAL left by a lost one must not be replayed into it */
                char side[4200];
                snprintf(side, sizeof(side), "%s-wal", path);
                unlink(side);
                snprintf(side, sizeof(side), "%s-shm", path);
                unlink(side);
        }
        if ((r = open_db(path, oflags, &q->wdb, err, errlen)) < 0 ||
            (r = check_existing(q, path, flags, &created, err, errlen)) < 0)
                goto fail;
        /* WAL: readers never block the writer; FULL: a commit survives power loss, so
         * nothing acknowledged is lost. */
        if ((r = exec(q->wdb, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", msg,
                      sizeof(msg))) < 0 ||
            (r = exec(q->wdb, schema, msg, sizeof(msg))) < 0) {
                snprintf(err, errlen, "%s: %s", path, msg);
                goto fail;
        }
        sqlite3_int64 version = 0;
        if ((r = query_one(q->wdb, "PRAGMA user_version", &version, NULL, 0, msg, sizeof(msg))) < 0) {
                snprintf(err, errlen, "%s: %s", path, msg);
                goto fail;
        }
        if (version > VS_SCHEMA_VERSION) {
                snprintf(err, errlen, "%s has schema version %lld, newer than this vouchd's %d", path, (long long) version,
                         VS_SCHEMA_VERSION);
                r = -EPROTO;
                goto fail;
        }
        sqlite3_int64 has_anchor = 0, has_change = 0;
        if ((r = query_one(q->wdb, "SELECT count(*) FROM pragma_table_info('devices') WHERE name='ek_anchor'", &has_anchor,
                           NULL, 0, msg, sizeof(msg))) < 0 ||
            (r = query_one(q->wdb, "SELECT count(*) FROM pragma_table_info('devices') WHERE name='change'", &has_change,
                           NULL, 0, msg, sizeof(msg))) < 0 ||
            (r = exec(q->wdb, "BEGIN IMMEDIATE", msg, sizeof(msg))) < 0 ||
            (!has_anchor && (r = exec(q->wdb, migrate_v3, msg, sizeof(msg))) < 0) ||
            (!has_change && (r = exec(q->wdb, migrate_v4_change, msg, sizeof(msg))) < 0) ||
            (!created && version < 4 && (r = exec(q->wdb, migrate_v4_run, msg, sizeof(msg))) < 0) ||
            (r = exec(q->wdb, migrate_v5, msg, sizeof(msg))) < 0 || (r = exec(q->wdb, "COMMIT", msg, sizeof(msg))) < 0) {
                snprintf(err, errlen, "cannot write to %s: %s", path, msg);
                if (!sqlite3_get_autocommit(q->wdb))
                        exec(q->wdb, "ROLLBACK", NULL, 0);
                goto fail;
        }
        if ((r = begin_run(s, created, info, err, errlen)) < 0)
                goto fail;
        /* "running" into the database file itself, not only the WAL: a WAL lost before the
         * first checkpoint must not leave the previous "clean" behind */
        if (sqlite3_wal_checkpoint_v2(q->wdb, NULL, SQLITE_CHECKPOINT_FULL, NULL, NULL) != SQLITE_OK) {
                snprintf(err, errlen, "cannot write to %s: %s", path, sqlite3_errmsg(q->wdb));
                r = -EIO;
                goto fail;
        }
        /* Checkpoints: by the writer thread itself, after a batch's callbacks ran (so that no
         * acknowledgement waits for one), once the WAL holds CHECKPOINT_FRAMES frames or
         * CHECKPOINT_SECONDS have passed. A large WAL copies a hot page (a device row, an
         * index leaf) to the database file once per checkpoint rather than once per 1000
         * frames. */
        sqlite3_wal_autocheckpoint(q->wdb, 0);
        sqlite3_wal_hook(q->wdb, wal_hook, q);
        clock_gettime(CLOCK_MONOTONIC, &q->last_checkpoint);
        remember_files(q);
        for (int i = 0; i < ST_COUNT; i++)
                if (sqlite3_prepare_v3(q->wdb, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) !=
                    SQLITE_OK) {
                        snprintf(err, errlen, "cannot prepare \"%s\": %s", statements[i], sqlite3_errmsg(q->wdb));
                        r = -EIO;
                        goto fail;
                }
        if ((r = open_db(path, SQLITE_OPEN_READWRITE, &q->rdb, err, errlen)) < 0)
                goto fail;
        return 0;
fail:
        sq_free(q);
        s->be = NULL;
        return r;
}

/* The instance's heartbeat ended (its leases free at once), and its run marked clean if
 * clean_ok. */
static void sq_close(vs_store *s, bool clean_ok) {
        sq_store *q = s->be;
        sqlite3_stmt *st = NULL;
        if (check_files(s) == 0 &&
            sqlite3_prepare_v2(q->wdb,
                               "UPDATE instances SET alive_until=NULL, run=CASE WHEN ?3 THEN 'clean' ELSE run END,"
                               " closed_at=CASE WHEN ?3 THEN ?2 ELSE closed_at END WHERE name=?1",
                               -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, s->instance, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, wall_ms());
                sqlite3_bind_int(st, 3, clean_ok);
                sqlite3_step(st);
        }
        sqlite3_finalize(st);
        sq_free(q);
        s->be = NULL;
}

static int blob_dup(sqlite3_stmt *st, int col, uint8_t **ret, size_t *len) {
        const void *p = sqlite3_column_blob(st, col);
        *len = (size_t) sqlite3_column_bytes(st, col);
        *ret = vs__dup_bytes(p, *len);
        return *ret ? 0 : -ENOMEM;
}

static int device_from_row(sqlite3_stmt *st, vs_device *d) {
        memset(d, 0, sizeof(*d));
        snprintf(d->id, sizeof(d->id), "%s", (const char *) sqlite3_column_text(st, 0));
        if (blob_dup(st, 1, &d->ek_public, &d->ek_public_len) < 0 || blob_dup(st, 2, &d->ak_public, &d->ak_public_len) < 0) {
                vs_device_done(d);
                return -ENOMEM;
        }
        snprintf(d->golden, sizeof(d->golden), "%s", (const char *) sqlite3_column_text(st, 3));
        d->approved = sqlite3_column_int(st, 4);
        d->revoked = sqlite3_column_int(st, 5);
        d->enrolled_at = sqlite3_column_int64(st, 6);
        d->has_last = sqlite3_column_int(st, 7);
        d->reset_count = (uint32_t) sqlite3_column_int64(st, 8);
        d->restart_count = (uint32_t) sqlite3_column_int64(st, 9);
        d->clock = (uint64_t) sqlite3_column_int64(st, 10);
        d->sequence = (uint64_t) sqlite3_column_int64(st, 11);
        d->ek_anchor = sqlite3_column_int(st, 12);
        d->change = (uint64_t) sqlite3_column_int64(st, 13);
        return 0;
}

static int verdict_from_row(sqlite3_stmt *st, vs_verdict *v) {
        memset(v, 0, sizeof(*v));
        v->global_sequence = (uint64_t) sqlite3_column_int64(st, 0);
        snprintf(v->device, sizeof(v->device), "%s", (const char *) sqlite3_column_text(st, 1));
        v->sequence = (uint64_t) sqlite3_column_int64(st, 2);
        v->status = sqlite3_column_int(st, 3);
        v->issued_at = sqlite3_column_int64(st, 4);
        v->expires_at = sqlite3_column_int64(st, 5);
        return blob_dup(st, 6, &v->record, &v->record_len);
}

/* The sequence: the row's (a device put) or its newest verdict's, whichever is larger
 * (one lookup in verdicts_device; retention never deletes the newest verdict). */
#define DEVICE_COLS                                                                                      \
        "id, ek_public, ak_public, golden, approved, revoked, enrolled_at, has_last, reset_count, restart_count, " \
        "clock, max(sequence, coalesce((SELECT max(v.sequence) FROM verdicts v WHERE v.device=devices.id), 0)), " \
        "ek_anchor, change"
#define VERDICT_COLS "gseq, device, sequence, status, issued_at, expires_at, record"
/* Retention as reads see it (store.h): a verdict is among the newest history_keep (?3) of
 * its device, whether or not the batched pruning has deleted the older ones yet. */
#define RETAINED "sequence > (SELECT max(r.sequence) FROM verdicts r WHERE r.device=verdicts.device) - ?3"

/* A granted claim's device row and latest verdict (store.h, vs_lease_result), read on the
 * writer's connection in the claim's transaction. */
static int claim_reads(vs_store *s, vs_write *w) {
        sq_store *q = s->be;
        vs_lease_result *l = &w->lease;
        sqlite3_stmt *st = NULL;
        int r = 0, rc;
        if (sqlite3_prepare_v2(q->wdb, "SELECT " DEVICE_COLS " FROM devices WHERE id=?1", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, w->dev.id, -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW && !l->has_row && (r = device_from_row(st, &l->row)) == 0)
                l->has_row = true;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return -EIO;
        if (r < 0) { /* this claim's, not the transaction's (as on PostgreSQL) */
                l->read_error = r;
                return 0;
        }
        if (sqlite3_prepare_v2(q->wdb, "SELECT " VERDICT_COLS " FROM verdicts WHERE device=?1 ORDER BY sequence DESC LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, w->dev.id, -1, SQLITE_STATIC);
        if ((rc = sqlite3_step(st)) == SQLITE_ROW && !l->has_latest && (r = verdict_from_row(st, &l->latest)) == 0)
                l->has_latest = true;
        else if (r < 0)
                vs_verdict_done(&l->latest);
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return -EIO;
        if (r < 0)
                l->read_error = r;
        return 0;
}

/* A read's final status (rlock held): SQLITE_DONE is the end of the rows; anything else is
 * an error, recorded for vs_read_error. */
static int read_status(vs_store *s, int rc) {
        sq_store *q = s->be;
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
                return 0;
        return vs__read_failed(s, (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ? -EUCLEAN : -EIO, "%s",
                               sqlite3_errmsg(q->rdb));
}

static int prepare_read(vs_store *s, const char *sql, sqlite3_stmt **st) {
        sq_store *q = s->be;
        return read_status(s, sqlite3_prepare_v2(q->rdb, sql, -1, st, NULL) == SQLITE_OK ? SQLITE_DONE
                                                                                         : sqlite3_errcode(q->rdb));
}

static int sq_device_get(vs_store *s, const char *id, vs_device *ret) {
        sqlite3_stmt *st = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT " DEVICE_COLS " FROM devices WHERE id=?1", &st)) == 0) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                int rc = sqlite3_step(st);
                r = rc == SQLITE_ROW ? device_from_row(st, ret) : rc == SQLITE_DONE ? -ENOENT : read_status(s, rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

/* Every scan ends on SQLITE_DONE or is an error: a damaged page or an I/O error mid-table
 * is not the end of the table. */
static int sq_device_foreach(vs_store *s, int (*fn)(const vs_device *d, void *ud), void *ud) {
        sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_DONE;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT " DEVICE_COLS " FROM devices", &st)) == 0) {
                while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        vs_device d;
                        if ((r = device_from_row(st, &d)) < 0)
                                break;
                        r = fn(&d, ud);
                        vs_device_done(&d);
                }
                if (r == 0)
                        r = read_status(s, rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int sq_device_changes_since(vs_store *s, uint64_t after, vs_device *out, size_t max) {
        sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_DONE;
        size_t got = 0;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT " DEVICE_COLS " FROM devices WHERE change > ?1 ORDER BY change LIMIT ?2", &st)) ==
            0) {
                sqlite3_bind_int64(st, 1, (sqlite3_int64) (after > INT64_MAX ? INT64_MAX : after));
                sqlite3_bind_int64(st, 2, (sqlite3_int64) (max > INT64_MAX ? INT64_MAX : max));
                while (got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        if ((r = device_from_row(st, &out[got])) < 0)
                                break;
                        got++;
                }
                if (r == 0)
                        r = read_status(s, rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        if (r < 0) {
                for (size_t i = 0; i < got; i++)
                        vs_device_done(&out[i]);
                return r;
        }
        return (int) got;
}

static int sq_device_change_last(vs_store *s, uint64_t *ret) {
        sqlite3_stmt *st = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT coalesce(max(change), 0) FROM devices", &st)) == 0) {
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        *ret = (uint64_t) sqlite3_column_int64(st, 0);
                r = read_status(s, rc == SQLITE_ROW ? SQLITE_DONE : rc == SQLITE_DONE ? SQLITE_ERROR : rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int verdict_query(vs_store *s, const char *sql, const char *device, uint64_t n, vs_verdict *out, size_t max) {
        sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_DONE;
        size_t got = 0;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, sql, &st)) == 0) {
                if (device)
                        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
                else
                        sqlite3_bind_int64(st, 1, (sqlite3_int64) n);
                sqlite3_bind_int64(st, 2, (sqlite3_int64) max);
                sqlite3_bind_int64(st, 3, (sqlite3_int64) s->history_keep);
                while (got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        if ((r = verdict_from_row(st, &out[got])) < 0)
                                break;
                        got++;
                }
                if (r == 0)
                        r = read_status(s, rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        if (r < 0) {
                for (size_t i = 0; i < got; i++)
                        vs_verdict_done(&out[i]);
                return r;
        }
        return (int) got;
}

static int sq_verdict_history(vs_store *s, const char *device, vs_verdict *out, size_t max) {
        return verdict_query(s, "SELECT " VERDICT_COLS " FROM verdicts WHERE device=?1 AND " RETAINED
                             " ORDER BY sequence DESC LIMIT ?2", device, 0, out, max);
}

static int sq_verdict_since(vs_store *s, uint64_t since, vs_verdict *out, size_t max) {
        return verdict_query(s, "SELECT " VERDICT_COLS " FROM verdicts WHERE gseq>?1 AND " RETAINED " ORDER BY gseq LIMIT ?2",
                             NULL, since, out, max);
}

static int sq_verdict_last_global(vs_store *s, uint64_t *ret) {
        sqlite3_stmt *st = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        /* AUTOINCREMENT keeps the largest number ever used in sqlite_sequence, also after
         * retention deleted those rows: a number is never handed out twice. */
        if ((r = prepare_read(s,
                              "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name='verdicts'), 0),"
                              " coalesce((SELECT max(gseq) FROM verdicts), 0),"
                              " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key='gseq_used'), 0))",
                              &st)) == 0) {
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        *ret = (uint64_t) sqlite3_column_int64(st, 0);
                r = read_status(s, rc == SQLITE_ROW ? SQLITE_DONE : rc == SQLITE_DONE ? SQLITE_ERROR : rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int sq_ekcert_get(vs_store *s, const char *key, vs_ekcert *ret) {
        sqlite3_stmt *st = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT key, url, der, fetched_at FROM ek_certs WHERE key=?1", &st)) == 0) {
                sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        memset(ret, 0, sizeof(*ret));
                        snprintf(ret->key, sizeof(ret->key), "%s", (const char *) sqlite3_column_text(st, 0));
                        ret->url = strdup(sqlite3_column_text(st, 1) ? (const char *) sqlite3_column_text(st, 1) : "");
                        ret->fetched_at = sqlite3_column_int64(st, 3);
                        r = blob_dup(st, 2, &ret->der, &ret->der_len);
                        if (r == 0 && !ret->url)
                                r = -ENOMEM;
                        if (r < 0)
                                vs_ekcert_done(ret);
                } else {
                        r = rc == SQLITE_DONE ? -ENOENT : read_status(s, rc);
                }
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int sq_lease_get(vs_store *s, const char *device, vs_lease_result *ret) {
        sqlite3_stmt *st = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s,
                              "SELECT l.instance, coalesce(l.taken_from, ''), coalesce(i.alive_until, 0) - ?2"
                              " FROM leases l LEFT JOIN instances i ON i.name = l.instance WHERE l.device = ?1",
                              &st)) == 0) {
                sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, wall_ms());
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        memset(ret, 0, sizeof(*ret));
                        snprintf(ret->holder, sizeof(ret->holder), "%s",
                                 sqlite3_column_text(st, 0) ? (const char *) sqlite3_column_text(st, 0) : "");
                        snprintf(ret->taken_from, sizeof(ret->taken_from), "%s",
                                 sqlite3_column_text(st, 1) ? (const char *) sqlite3_column_text(st, 1) : "");
                        ret->expires_in_ms = sqlite3_column_int64(st, 2);
                        ret->granted = strcmp(ret->holder, s->instance) == 0 && ret->expires_in_ms > 0;
                } else {
                        r = rc == SQLITE_DONE ? -ENOENT : read_status(s, rc);
                }
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int sq_verdict_keys_list(vs_store *s, vs_verdict_key *out, size_t max) {
        sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_DONE;
        size_t got = 0;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT key_id, instance, pem, not_after FROM verdict_keys ORDER BY key_id, instance"
                                 " LIMIT ?1", &st)) == 0) {
                sqlite3_bind_int64(st, 1, (sqlite3_int64) (max > INT64_MAX ? INT64_MAX : max));
                while (got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        vs_verdict_key *k = &out[got];
                        const unsigned char *id = sqlite3_column_text(st, 0), *by = sqlite3_column_text(st, 1),
                                            *pem = sqlite3_column_text(st, 2);
                        memset(k, 0, sizeof(*k));
                        snprintf(k->key_id, sizeof(k->key_id), "%s", id ? (const char *) id : "");
                        snprintf(k->instance, sizeof(k->instance), "%s", by ? (const char *) by : "");
                        k->not_after = sqlite3_column_int64(st, 3);
                        if (!(k->pem = strdup(pem ? (const char *) pem : ""))) {
                                r = vs__read_failed(s, -ENOMEM, "out of memory");
                                break;
                        }
                        got++;
                }
                if (r == 0)
                        r = read_status(s, rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        if (r < 0) {
                for (size_t i = 0; i < got; i++)
                        vs_verdict_key_done(&out[i]);
                return r;
        }
        return (int) got;
}

static int sq_golden_get(vs_store *s, const char *name, int64_t version, vs_golden_digest *ret) {
        sqlite3_stmt *st = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT digest, instance FROM golden_sets WHERE name = ?1 AND version = ?2", &st)) == 0) {
                sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, version);
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        const unsigned char *d = sqlite3_column_text(st, 0), *by = sqlite3_column_text(st, 1);
                        memset(ret, 0, sizeof(*ret));
                        snprintf(ret->name, sizeof(ret->name), "%s", name);
                        ret->version = version;
                        snprintf(ret->stored_digest, sizeof(ret->stored_digest), "%s", d ? (const char *) d : "");
                        snprintf(ret->stored_by, sizeof(ret->stored_by), "%s", by ? (const char *) by : "");
                } else {
                        r = rc == SQLITE_DONE ? -ENOENT : read_status(s, rc);
                }
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

/* A text value of the meta table (key): -ENOENT when it has none. */
static int meta_text_get(vs_store *s, const char *sql, char *buf, size_t n) {
        sqlite3_stmt *st = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, sql, &st)) == 0) {
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        snprintf(buf, n, "%s", sqlite3_column_text(st, 0) ? (const char *) sqlite3_column_text(st, 0) : "");
                else
                        r = rc == SQLITE_DONE ? -ENOENT : read_status(s, rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

static int sq_verifier_id_get(vs_store *s, char *buf, size_t n) {
        return meta_text_get(s, "SELECT value FROM meta WHERE key = 'verifier_id'", buf, n);
}

static int sq_device_ca_get(vs_store *s, char *buf, size_t n) {
        return meta_text_get(s, "SELECT value FROM meta WHERE key = 'device_ca_id'", buf, n);
}

#define CERT_COLS "serial, device, not_before, not_after, sequence, gseq, revoked_at, revoked_sequence"

/* A certificate's row (CERT_COLS from col), without its DER. */
static void cert_from_row(sqlite3_stmt *st, int col, vs_cert *c) {
        const unsigned char *serial = sqlite3_column_text(st, col), *dev = sqlite3_column_text(st, col + 1);
        memset(c, 0, sizeof(*c));
        snprintf(c->serial, sizeof(c->serial), "%s", serial ? (const char *) serial : "");
        snprintf(c->device, sizeof(c->device), "%s", dev ? (const char *) dev : "");
        c->not_before = sqlite3_column_int64(st, col + 2);
        c->not_after = sqlite3_column_int64(st, col + 3);
        c->sequence = (uint64_t) sqlite3_column_int64(st, col + 4);
        c->global_sequence = (uint64_t) sqlite3_column_int64(st, col + 5);
        c->revoked_at = sqlite3_column_int64(st, col + 6);
        c->revoked_sequence = (uint64_t) sqlite3_column_int64(st, col + 7);
}

static int sq_cert_list(vs_store *s, const char *device, vs_cert *out, size_t max) {
        sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_DONE;
        size_t got = 0;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT " CERT_COLS ", der FROM certs WHERE device=?1"
                                 " ORDER BY sequence DESC, not_before DESC, serial LIMIT ?2", &st)) == 0) {
                sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, (sqlite3_int64) max);
                while (got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        cert_from_row(st, 0, &out[got]);
                        if (blob_dup(st, 8, &out[got].der, &out[got].der_len) < 0) {
                                r = vs__read_failed(s, -ENOMEM, "out of memory");
                                break;
                        }
                        got++;
                }
                if (r == 0)
                        r = read_status(s, rc);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        if (r < 0) {
                for (size_t i = 0; i < got; i++)
                        vs_cert_done(&out[i]);
                return r;
        }
        return (int) got;
}

/* One statement, so one snapshot (a read transaction of its own): the state in every row,
 * the revoked certificates beside it (none: one row of NULLs). */
static int sq_cert_revoked(vs_store *s, int64_t not_after_min, int (*fn)(const vs_cert *c, void *ud), void *ud,
                           uint64_t *ret_state) {
        sqlite3_stmt *st = NULL;
        int r, rc = SQLITE_DONE;
        bool any = false;
        pthread_mutex_lock(&s->rlock);
        if ((r = prepare_read(s, "SELECT n.state, c.serial, c.device, c.not_before, c.not_after, c.sequence, c.gseq,"
                                 " c.revoked_at, c.revoked_sequence FROM (SELECT"
                                 " coalesce((SELECT max(gseq) FROM verdicts), 0) +"
                                 " coalesce((SELECT max(change) FROM devices), 0) AS state) n"
                                 " LEFT JOIN certs c ON c.revoked_at <> 0 AND c.not_after >= ?1", &st)) == 0) {
                sqlite3_bind_int64(st, 1, not_after_min);
                while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                        any = true;
                        *ret_state = (uint64_t) sqlite3_column_int64(st, 0);
                        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
                                continue;
                        vs_cert c;
                        cert_from_row(st, 1, &c);
                        r = fn(&c, ud);
                }
                if (r == 0)
                        r = read_status(s, rc);
                if (r == 0 && !any)
                        r = vs__read_failed(s, -EIO, "the store's numbering could not be read");
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->rlock);
        return r;
}

const vs_backend vs_backend_sqlite = {
        .name = "sqlite",
        .open = sq_open,
        .close = sq_close,
        .commit = sq_commit,
        .after_batch = sq_after_batch,
        .device_get = sq_device_get,
        .device_foreach = sq_device_foreach,
        .verdict_history = sq_verdict_history,
        .verdict_since = sq_verdict_since,
        .verdict_last_global = sq_verdict_last_global,
        .ekcert_get = sq_ekcert_get,
        .lease_get = sq_lease_get,
        .device_changes_since = sq_device_changes_since,
        .device_change_last = sq_device_change_last,
        .verdict_keys_list = sq_verdict_keys_list,
        .golden_get = sq_golden_get,
        .verifier_id_get = sq_verifier_id_get,
        .device_ca_get = sq_device_ca_get,
        .cert_list = sq_cert_list,
        .cert_revoked = sq_cert_revoked,
};
