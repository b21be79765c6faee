/* SPDX-License-Identifier: Apache-2.0 */
/* store.h on SQLite (WAL, synchronous=FULL): one writer thread commits queued writes in
 * batches; reads use their own connection. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define BATCH_MAX 512
#define SCHEMA_VERSION 3 /* 2: the meta table (the run's state); 3: devices.ek_anchor, ek_certs */
#define PRUNE_EVERY VS_PRUNE_EVERY
#define GROUP_INTERVAL_NS 10000000L /* 10 ms: at most 100 commits a second */
#define CHECKPOINT_FRAMES 10000 /* 4 KiB pages: a WAL of about 40 MiB */
#define CHECKPOINT_SECONDS 10   /* and at least this often while it holds any frame */

/* Test builds (meson -Dfailpoints=true) can make chosen writes fail, as a full disk would:
 * VOUCH_FAILPOINTS names them, comma-separated ("store-verdict": every verdict insert). */
#ifdef VOUCH_FAILPOINTS
static bool failpoint(const char *name) {
        const char *e = getenv("VOUCH_FAILPOINTS");
        size_t n = strlen(name);
        for (const char *p = e; p && (p = strstr(p, name)); p += n)
                if ((p == e || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
                        return true;
        return false;
}
#else
#define failpoint(name) false
#endif

/* The writer's statements, prepared once on the writer connection and reset after each use. */
enum {
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST_DEVICE,
        ST_ENROLL,
        ST_CLOCK,
        ST_VERDICT,
        ST_PRUNE,
        ST_EKCERT,
        ST_COUNT,
};

#define ROW_COLS                                                                                        \
        "id, ek_public, ak_public, golden, approved, revoked, enrolled_at, has_last, reset_count, restart_count, " \
        "clock, sequence, ek_anchor"

static const char *const statements[ST_COUNT] = {
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_DEVICE] = "INSERT INTO devices (" ROW_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13) "
                      "ON CONFLICT(id) DO UPDATE SET ek_public=?2, ak_public=?3, golden=?4, approved=?5,"
                      " revoked=?6, enrolled_at=?7, has_last=?8, reset_count=?9, restart_count=?10,"
                      " clock=?11, sequence=?12, ek_anchor=?13",
        /* an enrollment: the whole row for a new device; for a known one, not the admin's
         * fields (golden, approved, revoked), which only the API writes */
        [ST_ENROLL] = "INSERT INTO devices (" ROW_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13) "
                      "ON CONFLICT(id) DO UPDATE SET ek_public=?2, ak_public=?3, enrolled_at=?7, has_last=?8,"
                      " reset_count=?9, restart_count=?10, clock=?11, sequence=?12, ek_anchor=?13",
        [ST_EKCERT] = "INSERT OR REPLACE INTO ek_certs (key, url, der, fetched_at) VALUES (?1,?2,?3,?4)",
        [ST_CLOCK] = "UPDATE devices SET has_last=1, reset_count=?2, restart_count=?3, clock=?4 WHERE id=?1",
        [ST_VERDICT] = "INSERT INTO verdicts (device, sequence, status, issued_at, expires_at, record, gseq) VALUES (?1,?2,?3,?4,?5,?6,?7)",
        [ST_PRUNE] = "DELETE FROM verdicts WHERE device=?1 AND sequence<=?2",
};

typedef enum op_kind { OP_DEVICE, OP_ENROLL, OP_CLOCK, OP_VERDICT, OP_VERDICT_DEVICE, OP_EKCERT } op_kind;

typedef struct op {
        op_kind kind;
        vs_device dev;          /* OP_DEVICE, OP_VERDICT_DEVICE (owned copies), OP_CLOCK (id + clock fields) */
        vs_verdict verdict;     /* OP_VERDICT, OP_VERDICT_DEVICE (owned copy) */
        vs_ekcert ekcert;       /* OP_EKCERT (owned copies) */
        vs_done_fn done;
        void *userdata;
        struct op *next;
} op;

/* Which file a path named when the store was opened. */
typedef struct file_id {
        bool known;
        dev_t dev;
        ino_t ino;
} file_id;

struct vs_store {
        sqlite3 *wdb, *rdb;
        pthread_mutex_t rlock;          /* the read connection */
        char read_error[200];           /* under rlock */
        char *path;
        file_id db_id, wal_id, shm_id;  /* writer thread (set before it starts) */
        off_t db_min_size;              /* the database file never shrinks (no VACUUM): writer */
        struct timespec last_checkpoint;/* CLOCK_MONOTONIC, writer thread */
        bool lost;                      /* under lock; lost_why with it */
        bool unsettled;                 /* the previous run was unclean and vs_run_settled not called */
        char lost_why[400];
        pthread_t writer;
        pthread_mutex_t lock;
        pthread_cond_t wake, idle;
        op *head, *tail;
        size_t queued, in_flight;
        bool stop;
        bool writer_idle;               /* the writer waits for a first write */
        size_t history_keep;
        struct timespec last_batch;     /* CLOCK_MONOTONIC, when the writer took its last batch */
        int wal_frames;                 /* frames in the WAL after the last commit (writer thread) */
        vs_stats stats;                 /* under lock */
        sqlite3_stmt *st[ST_COUNT];           /* the writer's statements (ST_*) */
};

void vs_device_done(vs_device *d) {
        free(d->ek_public);
        free(d->ak_public);
        d->ek_public = d->ak_public = NULL;
}

void vs_verdict_done(vs_verdict *v) {
        free(v->record);
        v->record = NULL;
}

void vs_ekcert_done(vs_ekcert *c) {
        free(c->url);
        free(c->der);
        c->url = NULL;
        c->der = NULL;
}

static void op_free(op *o) {
        vs_ekcert_done(&o->ekcert);
        vs_device_done(&o->dev);
        vs_verdict_done(&o->verdict);
        free(o);
}

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS devices ("
        " id TEXT PRIMARY KEY, ek_public BLOB NOT NULL, ak_public BLOB NOT NULL, golden TEXT NOT NULL,"
        " approved INTEGER NOT NULL, revoked INTEGER NOT NULL, enrolled_at INTEGER NOT NULL,"
        " has_last INTEGER NOT NULL, reset_count INTEGER NOT NULL, restart_count INTEGER NOT NULL,"
        " clock INTEGER NOT NULL, sequence INTEGER NOT NULL, ek_anchor INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE IF NOT EXISTS verdicts ("
        " gseq INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, sequence INTEGER NOT NULL,"
        " status INTEGER NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, record BLOB NOT NULL);"
        "CREATE INDEX IF NOT EXISTS verdicts_device ON verdicts (device, sequence);"
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS ek_certs (key TEXT PRIMARY KEY, url TEXT NOT NULL, der BLOB NOT NULL,"
        " fetched_at INTEGER NOT NULL);";

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

/* The device-row updates of a batch (the last quote's clock), gathered per device and
 * written once per device at the end of the batch, in the same transaction. A verdict
 * does not touch its device's row: the device's sequence is read as the largest of its
 * verdicts' (DEVICE_COLS), so a verdict dirties the verdicts table's pages only. Open
 * addressing over a power-of-two table at least twice the batch size. */
#define PENDING_SLOTS (2 * BATCH_MAX)

typedef struct pending_dev {
        const char *id;         /* points into an op of the batch; NULL = free slot */
        uint32_t reset_count, restart_count;
        uint64_t clock;
} pending_dev;

typedef struct pending_set {
        pending_dev slots[PENDING_SLOTS];
        uint32_t used[PENDING_SLOTS];   /* indexes of the slots in use, in first-use order */
        size_t n;
} pending_set;

static pending_dev *pending_get(pending_set *ps, const char *id) {
        uint32_t h = 2166136261u;
        for (const char *p = id; *p; p++)
                h = (h ^ (uint8_t) *p) * 16777619u;
        for (uint32_t i = h & (PENDING_SLOTS - 1);; i = (i + 1) & (PENDING_SLOTS - 1)) {
                pending_dev *pd = &ps->slots[i];
                if (!pd->id) {
                        *pd = (pending_dev) { .id = id };
                        ps->used[ps->n++] = i;
                        return pd;
                }
                if (strcmp(pd->id, id) == 0)
                        return pd;
        }
}

static int pending_flush(vs_store *s, pending_set *ps) {
        int r = 0;
        for (size_t k = 0; k < ps->n; k++) {
                pending_dev *pd = &ps->slots[ps->used[k]];
                if (r == 0) {
                        sqlite3_stmt *st = s->st[ST_CLOCK];
                        sqlite3_bind_text(st, 1, pd->id, -1, SQLITE_STATIC);
                        sqlite3_bind_int64(st, 2, pd->reset_count);
                        sqlite3_bind_int64(st, 3, pd->restart_count);
                        sqlite3_bind_int64(st, 4, (sqlite3_int64) pd->clock);
                        r = run(st);
                }
                pd->id = NULL;
        }
        ps->n = 0;
        return r;
}

static int apply_verdict(vs_store *s, const vs_verdict *v);

static int apply(vs_store *s, pending_set *ps, op *o) {
        sqlite3_stmt *st;
        pending_dev *pd;
        int r;
        switch (o->kind) {
        case OP_DEVICE:
        case OP_ENROLL:
        case OP_VERDICT_DEVICE:
                /* the whole row: the batch's earlier updates go first, in queue order */
                if ((r = pending_flush(s, ps)) < 0)
                        return r;
                st = s->st[o->kind == OP_ENROLL ? ST_ENROLL : ST_DEVICE];
                sqlite3_bind_text(st, 1, o->dev.id, -1, SQLITE_STATIC);
                sqlite3_bind_blob(st, 2, o->dev.ek_public, (int) o->dev.ek_public_len, SQLITE_STATIC);
                sqlite3_bind_blob(st, 3, o->dev.ak_public, (int) o->dev.ak_public_len, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, o->dev.golden, -1, SQLITE_STATIC);
                sqlite3_bind_int(st, 5, o->dev.approved);
                sqlite3_bind_int(st, 6, o->dev.revoked);
                sqlite3_bind_int64(st, 7, o->dev.enrolled_at);
                sqlite3_bind_int(st, 8, o->dev.has_last);
                sqlite3_bind_int64(st, 9, o->dev.reset_count);
                sqlite3_bind_int64(st, 10, o->dev.restart_count);
                sqlite3_bind_int64(st, 11, (sqlite3_int64) o->dev.clock);
                sqlite3_bind_int64(st, 12, (sqlite3_int64) o->dev.sequence);
                sqlite3_bind_int(st, 13, o->dev.ek_anchor);
                if ((r = run(st)) < 0 || o->kind != OP_VERDICT_DEVICE)
                        return r;
                /* in the same transaction: the row and the verdict, or neither */
                return apply_verdict(s, &o->verdict);
        case OP_CLOCK:
                /* the last one queued wins, as if each were written in turn */
                pd = pending_get(ps, o->dev.id);
                pd->reset_count = o->dev.reset_count;
                pd->restart_count = o->dev.restart_count;
                pd->clock = o->dev.clock;
                return 0;
        case OP_VERDICT:
                return apply_verdict(s, &o->verdict);
        case OP_EKCERT:
                st = s->st[ST_EKCERT];
                sqlite3_bind_text(st, 1, o->ekcert.key, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, o->ekcert.url, -1, SQLITE_STATIC);
                sqlite3_bind_blob(st, 3, o->ekcert.der, (int) o->ekcert.der_len, SQLITE_STATIC);
                sqlite3_bind_int64(st, 4, o->ekcert.fetched_at);
                return run(st);
        }
        return -EINVAL;
}

static int apply_verdict(vs_store *s, const vs_verdict *v) {
        sqlite3_stmt *st = s->st[ST_VERDICT];
        int r;
        if (failpoint("store-verdict"))
                return -ENOSPC;
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
        /* retention (store.h): every PRUNE_EVERY-th verdict of a device deletes its
         * verdicts older than the newest history_keep */
        if (v->sequence <= s->history_keep || v->sequence % PRUNE_EVERY != 0)
                return 0;
        st = s->st[ST_PRUNE];
        sqlite3_bind_text(st, 1, v->device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) (v->sequence - s->history_keep));
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
static void remember_files(vs_store *s) {
        char p[4200];
        off_t size = 0;
        file_id now;
        /* the identity is the one opened, never re-read: a file swapped in between a check
         * and this does not become "the store" */
        if (file_id_of(s->path, &now, &size) == 0) {
                if (!s->db_id.known)
                        s->db_id = now;
                if (size > s->db_min_size)
                        s->db_min_size = size;
        }
        snprintf(p, sizeof(p), "%s-wal", s->path);
        if (!s->wal_id.known)
                file_id_of(p, &s->wal_id, NULL);
        snprintf(p, sizeof(p), "%s-shm", s->path);
        if (!s->shm_id.known)
                file_id_of(p, &s->shm_id, NULL);
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
        char why[300] = "";
        int moved = 0;
        off_t size = 0;
        file_id now;
        pthread_mutex_lock(&s->lock);
        bool lost = s->lost;
        pthread_mutex_unlock(&s->lock);
        if (lost)
                return -EIO;
        if (sqlite3_file_control(s->wdb, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved)
                snprintf(why, sizeof(why), "%s was deleted, renamed or replaced", s->path);
        else if (!same_file(s->path, "", &s->db_id, why, sizeof(why)) || !same_file(s->path, "-wal", &s->wal_id, why, sizeof(why)) ||
                 !same_file(s->path, "-shm", &s->shm_id, why, sizeof(why)))
                ;
        else if (file_id_of(s->path, &now, &size) == 0 && size < s->db_min_size)
                snprintf(why, sizeof(why), "%s was truncated (%lld bytes, was at least %lld)", s->path, (long long) size,
                         (long long) s->db_min_size);
        if (!why[0])
                return 0;
        pthread_mutex_lock(&s->lock);
        s->lost = true;
        snprintf(s->lost_why, sizeof(s->lost_why), "%s while vouchd ran: nothing more is stored or acknowledged", why);
        pthread_mutex_unlock(&s->lock);
        return -EIO;
}

void vs_run_settled(vs_store *s) {
        pthread_mutex_lock(&s->lock);
        s->unsettled = false;
        pthread_mutex_unlock(&s->lock);
}

bool vs_lost(vs_store *s, char *why, size_t n) {
        pthread_mutex_lock(&s->lock);
        bool lost = s->lost;
        if (why && n)
                snprintf(why, n, "%s", lost ? s->lost_why : "");
        pthread_mutex_unlock(&s->lock);
        return lost;
}

static double seconds_since(const struct timespec *t) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double) (now.tv_sec - t->tv_sec) + (double) (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* PASSIVE: never waits for a reader; what it cannot copy now, the next one will. On a
 * schedule as well as by size, so that a small fleet's verdicts do not live in the WAL
 * alone (a deleted WAL loses at most CHECKPOINT_SECONDS of them). */
static void checkpoint_if_due(vs_store *s) {
        if (s->wal_frames == 0 ||
            (s->wal_frames < CHECKPOINT_FRAMES && seconds_since(&s->last_checkpoint) < CHECKPOINT_SECONDS))
                return;
        if (check_files(s) < 0)
                return; /* never write pages into a file that is no longer the store */
        sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        s->wal_frames = 0;
        clock_gettime(CLOCK_MONOTONIC, &s->last_checkpoint);
        remember_files(s);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames) {
        vs_store *s = arg;
        s->wal_frames = frames;
        return SQLITE_OK;
}

static void *writer_main(void *arg) {
        vs_store *s = arg;
        pending_set *ps = calloc(1, sizeof(*ps));
        for (;;) {
                pthread_mutex_lock(&s->lock);
                s->writer_idle = true;
                while (!s->head && !s->stop)
                        pthread_cond_wait(&s->wake, &s->lock);
                s->writer_idle = false;
                if (!s->head && s->stop) {
                        pthread_mutex_unlock(&s->lock);
                        break;
                }
                /* group commit: a commit costs the same (its fsync above all) for one write as
                 * for hundreds, so batches start at most every GROUP_INTERVAL_NS: a write
                 * queued soon after the last commit started waits for others to join it (at
                 * most that long, or until the batch is full); one after a quiet spell goes
                 * at once. Under load the queue fills during a commit and nothing waits. */
                struct timespec until = s->last_batch;
                until.tv_nsec += GROUP_INTERVAL_NS;
                if (until.tv_nsec >= 1000000000L)
                        until.tv_sec++, until.tv_nsec -= 1000000000L;
                while (!s->stop && s->queued < BATCH_MAX &&
                       pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
                        ;
                clock_gettime(CLOCK_MONOTONIC, &s->last_batch);
                /* take a batch */
                op *batch = s->head, *last = batch;
                size_t n = 1;
                while (last->next && n < BATCH_MAX)
                        last = last->next, n++;
                s->head = last->next;
                if (!s->head)
                        s->tail = NULL;
                last->next = NULL;
                s->queued -= n;
                s->in_flight = n;
                pthread_mutex_unlock(&s->lock);

                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                int r = ps ? run(s->st[ST_BEGIN]) : -ENOMEM;
                for (op *o = batch; r == 0 && o; o = o->next)
                        r = apply(s, ps, o);
                if (ps && pending_flush(s, ps) < 0 && r == 0)
                        r = -EIO;
                int lost = r == 0 ? check_files(s) : 0;
                if (r == 0 && lost == 0)
                        r = run(s->st[ST_COMMIT]);
                clock_gettime(CLOCK_MONOTONIC, &t1);
                char why[sizeof(s->stats.last_error)] = "";
                if (lost < 0)
                        vs_lost(s, why, sizeof(why));
                else if (r == -ENOSPC)
                        snprintf(why, sizeof(why), "failpoint store-verdict (as if the disk were full)");
                else if (r < 0)
                        snprintf(why, sizeof(why), "%s", ps ? sqlite3_errmsg(s->wdb) : "out of memory");
                if (lost < 0)
                        r = -EIO;

                if (r < 0 && !sqlite3_get_autocommit(s->wdb))
                        run(s->st[ST_ROLLBACK]);
                while (batch) {
                        op *next = batch->next;
                        if (batch->done)
                                batch->done(r, batch->userdata);
                        op_free(batch);
                        batch = next;
                }
                checkpoint_if_due(s);
                pthread_mutex_lock(&s->lock);
                if (r == 0) {
                        s->stats.commits++;
                        s->stats.writes += n;
                        s->stats.commit_us += (uint64_t) ((t1.tv_sec - t0.tv_sec) * 1000000 +
                                                          (t1.tv_nsec - t0.tv_nsec) / 1000);
                } else {
                        s->stats.failures++;
                        memcpy(s->stats.last_error, why, sizeof(why));
                }
                s->in_flight = 0;
                if (!s->head)
                        pthread_cond_broadcast(&s->idle);
                pthread_mutex_unlock(&s->lock);
        }
        free(ps);
        return NULL;
}

static int enqueue(vs_store *s, op *o) {
        pthread_mutex_lock(&s->lock);
        if (s->stop) {
                pthread_mutex_unlock(&s->lock);
                op_free(o);
                return -ESHUTDOWN;
        }
        if (s->tail)
                s->tail->next = o;
        else
                s->head = o;
        s->tail = o;
        s->queued++;
        /* wakes the writer when it is idle or a batch is full, not for every write that
         * joins a batch it is gathering */
        if (s->writer_idle || s->queued == BATCH_MAX)
                pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
        uint8_t *d = malloc(n ? n : 1);
        if (d && n)
                memcpy(d, p, n);
        return d;
}

static int device_put(vs_store *s, op_kind kind, const vs_device *d, vs_done_fn done, void *userdata) {
        op *o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->kind = kind;
        o->dev = *d;
        o->dev.ek_public = dup_bytes(d->ek_public, d->ek_public_len);
        o->dev.ak_public = dup_bytes(d->ak_public, d->ak_public_len);
        o->done = done;
        o->userdata = userdata;
        if (!o->dev.ek_public || !o->dev.ak_public) {
                op_free(o);
                return -ENOMEM;
        }
        return enqueue(s, o);
}

int vs_device_put(vs_store *s, const vs_device *d, vs_done_fn done, void *userdata) {
        return device_put(s, OP_DEVICE, d, done, userdata);
}

int vs_device_put_enrollment(vs_store *s, const vs_device *d, vs_done_fn done, void *userdata) {
        return device_put(s, OP_ENROLL, d, done, userdata);
}

int vs_device_put_clock(vs_store *s, const char *id, uint32_t reset_count, uint32_t restart_count, uint64_t clock,
                        vs_done_fn done, void *userdata) {
        op *o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->kind = OP_CLOCK;
        snprintf(o->dev.id, sizeof(o->dev.id), "%s", id);
        o->dev.reset_count = reset_count;
        o->dev.restart_count = restart_count;
        o->dev.clock = clock;
        o->done = done;
        o->userdata = userdata;
        return enqueue(s, o);
}

static int verdict_put(vs_store *s, const vs_verdict *v, const vs_device *d, vs_done_fn done, void *userdata) {
        op *o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->kind = d ? OP_VERDICT_DEVICE : OP_VERDICT;
        o->verdict = *v;
        o->verdict.record = dup_bytes(v->record, v->record_len);
        o->done = done;
        o->userdata = userdata;
        if (d) {
                o->dev = *d;
                o->dev.ek_public = dup_bytes(d->ek_public, d->ek_public_len);
                o->dev.ak_public = dup_bytes(d->ak_public, d->ak_public_len);
        }
        if (!o->verdict.record || (d && (!o->dev.ek_public || !o->dev.ak_public))) {
                op_free(o);
                return -ENOMEM;
        }
        return enqueue(s, o);
}

int vs_ekcert_put(vs_store *s, const vs_ekcert *c, vs_done_fn done, void *userdata) {
        op *o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->kind = OP_EKCERT;
        o->ekcert = *c;
        o->ekcert.url = strdup(c->url ? c->url : "");
        o->ekcert.der = dup_bytes(c->der, c->der_len);
        o->done = done;
        o->userdata = userdata;
        if (!o->ekcert.url || !o->ekcert.der) {
                op_free(o);
                return -ENOMEM;
        }
        return enqueue(s, o);
}

int vs_verdict_put(vs_store *s, const vs_verdict *v, vs_done_fn done, void *userdata) {
        return verdict_put(s, v, NULL, done, userdata);
}

int vs_verdict_put_with_device(vs_store *s, const vs_verdict *v, const vs_device *d, vs_done_fn done,
                               void *userdata) {
        return verdict_put(s, v, d, done, userdata);
}

size_t vs_queue_depth(vs_store *s) {
        pthread_mutex_lock(&s->lock);
        size_t n = s->queued + s->in_flight;
        pthread_mutex_unlock(&s->lock);
        return n;
}

void vs_get_stats(vs_store *s, vs_stats *ret) {
        pthread_mutex_lock(&s->lock);
        *ret = s->stats;
        pthread_mutex_unlock(&s->lock);
}

void vs_flush(vs_store *s) {
        pthread_mutex_lock(&s->lock);
        while (s->head || s->in_flight)
                pthread_cond_wait(&s->idle, &s->lock);
        pthread_mutex_unlock(&s->lock);
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
static int check_existing(vs_store *s, const char *path, unsigned flags, bool *created, char *err, size_t errlen) {
        char msg[200] = "";
        sqlite3_int64 tables = 0;
        int r;
        if ((r = query_one(s->wdb, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN ('devices','verdicts')",
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
        if ((r = query_one(s->wdb, "PRAGMA quick_check(1)", NULL, first, sizeof(first), msg, sizeof(msg))) < 0 ||
            strcmp(first, "ok") != 0) {
                int k = snprintf(err, errlen, "%s is damaged (%s); ", path, r < 0 ? msg : first);
                if (k >= 0 && (size_t) k < errlen)
                        snprintf(err + k, errlen - (size_t) k, recover_hint, path, path);
                return -EUCLEAN;
        }
        return 0;
}

/* The previous run's end, and this one's start, in the meta table (store.h, vs_open_info). */
static int begin_run(vs_store *s, bool created, vs_open_info *info, char *err, size_t errlen) {
        char state[32] = "", msg[200] = "";
        int r = query_one(s->wdb, "SELECT value FROM meta WHERE key='run'", NULL, state, sizeof(state), msg, sizeof(msg));
        if (r < 0) {
                snprintf(err, errlen, "%s: cannot read its run state: %s", s->path, msg);
                return r;
        }
        bool clean = created || strcmp(state, "clean") == 0;
        s->unsettled = !clean;
        if (info)
                *info = (vs_open_info) { .created = created, .previous_clean = clean };
        if ((r = exec(s->wdb, "INSERT OR REPLACE INTO meta VALUES ('run', 'running')", msg, sizeof(msg))) < 0)
                snprintf(err, errlen, "cannot write to %s: %s", s->path, msg);
        return r;
}

int vs_open(const char *path, size_t history_keep, unsigned flags, vs_store **ret, vs_open_info *info, char *err,
            size_t errlen) {
        vs_store *s = calloc(1, sizeof(*s));
        bool created = false;
        char msg[200];
        int r;
        if (!s || !(s->path = strdup(path))) {
                free(s);
                return -ENOMEM;
        }
        s->history_keep = history_keep ? history_keep : 1;
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_init(&s->rlock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->wake, &ca);
        pthread_condattr_destroy(&ca);
        pthread_cond_init(&s->idle, NULL);
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
        if ((r = open_db(path, oflags, &s->wdb, err, errlen)) < 0 ||
            (r = check_existing(s, path, flags, &created, err, errlen)) < 0)
                goto fail;
        /* WAL: readers never block the writer; FULL: a commit survives power loss, so
         * nothing acknowledged is lost. */
        if ((r = exec(s->wdb, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", msg,
                      sizeof(msg))) < 0 ||
            (r = exec(s->wdb, schema, msg, sizeof(msg))) < 0) {
                snprintf(err, errlen, "%s: %s", path, msg);
                goto fail;
        }
        sqlite3_int64 version = 0;
        if ((r = query_one(s->wdb, "PRAGMA user_version", &version, NULL, 0, msg, sizeof(msg))) < 0) {
                snprintf(err, errlen, "%s: %s", path, msg);
                goto fail;
        }
        if (version > SCHEMA_VERSION) {
                snprintf(err, errlen, "%s has schema version %lld, newer than this vouchd's %d", path, (long long) version,
                         SCHEMA_VERSION);
                r = -EPROTO;
                goto fail;
        }
        /* 3: devices from before have an EK certificate (ek_anchor 0) */
        sqlite3_int64 has_anchor = 0;
        if ((r = query_one(s->wdb, "SELECT count(*) FROM pragma_table_info('devices') WHERE name='ek_anchor'", &has_anchor,
                           NULL, 0, msg, sizeof(msg))) < 0 ||
            (!has_anchor &&
             (r = exec(s->wdb, "ALTER TABLE devices ADD COLUMN ek_anchor INTEGER NOT NULL DEFAULT 0", msg, sizeof(msg))) <
                     0) ||
            (r = exec(s->wdb, "PRAGMA user_version=3", msg, sizeof(msg))) < 0) {
                snprintf(err, errlen, "cannot write to %s: %s", path, msg);
                goto fail;
        }
        if ((r = begin_run(s, created, info, err, errlen)) < 0)
                goto fail;
        /* "running" into the database file itself, not only the WAL: a WAL lost before the
         * first checkpoint must not leave the previous "clean" behind */
        if (sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_FULL, NULL, NULL) != SQLITE_OK) {
                snprintf(err, errlen, "cannot write to %s: %s", path, sqlite3_errmsg(s->wdb));
                r = -EIO;
                goto fail;
        }
        /* Checkpoints: by the writer thread itself, after a batch's callbacks ran (so that no
         * acknowledgement waits for one), once the WAL holds CHECKPOINT_FRAMES frames or
         * CHECKPOINT_SECONDS have passed. A large WAL copies a hot page (a device row, an
         * index leaf) to the database file once per checkpoint rather than once per 1000
         * frames. */
        sqlite3_wal_autocheckpoint(s->wdb, 0);
        sqlite3_wal_hook(s->wdb, wal_hook, s);
        clock_gettime(CLOCK_MONOTONIC, &s->last_checkpoint);
        remember_files(s);
        for (int i = 0; i < ST_COUNT; i++)
                if (sqlite3_prepare_v3(s->wdb, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
                    SQLITE_OK) {
                        snprintf(err, errlen, "cannot prepare \"%s\": %s", statements[i], sqlite3_errmsg(s->wdb));
                        r = -EIO;
                        goto fail;
                }
        if ((r = open_db(path, SQLITE_OPEN_READWRITE, &s->rdb, err, errlen)) < 0)
                goto fail;
        if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
                snprintf(err, errlen, "cannot start the store's writer thread");
                r = -EAGAIN;
                goto fail;
        }
        *ret = s;
        return 0;
fail:
        for (int i = 0; i < ST_COUNT; i++)
                sqlite3_finalize(s->st[i]);
        sqlite3_close(s->wdb);
        sqlite3_close(s->rdb);
        free(s->path);
        free(s);
        return r;
}

void vs_close(vs_store *s) {
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->writer, NULL);

        /* every write of this run stored, and an unclean previous run acted on: the next
         * open may trust the latest verdicts */
        if (s->stats.failures == 0 && !s->unsettled && check_files(s) == 0)
                exec(s->wdb, "INSERT OR REPLACE INTO meta VALUES ('run', 'clean')", NULL, 0);
        sqlite3_close(s->rdb);
        for (int i = 0; i < ST_COUNT; i++)
                sqlite3_finalize(s->st[i]);
        sqlite3_close(s->wdb);
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->rlock);
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->idle);
        free(s->path);
        free(s);
}

static int blob_dup(sqlite3_stmt *st, int col, uint8_t **ret, size_t *len) {
        const void *p = sqlite3_column_blob(st, col);
        *len = (size_t) sqlite3_column_bytes(st, col);
        *ret = dup_bytes(p, *len);
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
        "ek_anchor"
#define VERDICT_COLS "gseq, device, sequence, status, issued_at, expires_at, record"
/* Retention as reads see it (store.h): a verdict is among the newest history_keep (?3) of
 * its device, whether or not the batched pruning has deleted the older ones yet. */
#define RETAINED "sequence > (SELECT max(r.sequence) FROM verdicts r WHERE r.device=verdicts.device) - ?3"

/* A read's final status (rlock held): SQLITE_DONE is the end of the rows; anything else is
 * an error, recorded for vs_read_error. */
static int read_status(vs_store *s, int rc) {
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
                return 0;
        snprintf(s->read_error, sizeof(s->read_error), "%s", sqlite3_errmsg(s->rdb));
        return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ? -EUCLEAN : -EIO;
}

void vs_read_error(vs_store *s, char *buf, size_t n) {
        pthread_mutex_lock(&s->rlock);
        snprintf(buf, n, "%s", s->read_error);
        pthread_mutex_unlock(&s->rlock);
}

static int prepare_read(vs_store *s, const char *sql, sqlite3_stmt **st) {
        return read_status(s, sqlite3_prepare_v2(s->rdb, sql, -1, st, NULL) == SQLITE_OK ? SQLITE_DONE
                                                                                         : sqlite3_errcode(s->rdb));
}

int vs_device_get(vs_store *s, const char *id, vs_device *ret) {
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
int vs_device_foreach(vs_store *s, int (*fn)(const vs_device *d, void *ud), void *ud) {
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

int vs_verdict_history(vs_store *s, const char *device, vs_verdict *out, size_t max) {
        return verdict_query(s, "SELECT " VERDICT_COLS " FROM verdicts WHERE device=?1 AND " RETAINED
                             " ORDER BY sequence DESC LIMIT ?2", device, 0, out, max);
}

int vs_verdict_latest(vs_store *s, const char *device, vs_verdict *ret) {
        int n = vs_verdict_history(s, device, ret, 1);
        return n < 0 ? n : n == 0 ? -ENOENT : 0;
}

int vs_verdict_since(vs_store *s, uint64_t since, vs_verdict *out, size_t max) {
        if (failpoint("store-read-since")) { /* as a damaged page met mid-scan */
                pthread_mutex_lock(&s->rlock);
                snprintf(s->read_error, sizeof(s->read_error), "failpoint store-read-since (as if a page were damaged)");
                pthread_mutex_unlock(&s->rlock);
                return -EUCLEAN;
        }
        return verdict_query(s, "SELECT " VERDICT_COLS " FROM verdicts WHERE gseq>?1 AND " RETAINED " ORDER BY gseq LIMIT ?2",
                             NULL, since, out, max);
}

int vs_verdict_last_global(vs_store *s, uint64_t *ret) {
        sqlite3_stmt *st = NULL;
        int r;
        pthread_mutex_lock(&s->rlock);
        /* AUTOINCREMENT keeps the largest number ever used in sqlite_sequence, also after
         * retention deleted those rows: a number is never handed out twice. */
        if ((r = prepare_read(s,
                              "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name='verdicts'), 0),"
                              " coalesce((SELECT max(gseq) FROM verdicts), 0))",
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

int vs_ekcert_get(vs_store *s, const char *key, vs_ekcert *ret) {
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
