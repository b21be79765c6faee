/* SPDX-License-Identifier: Apache-2.0 */
/* The cost of a verdict write through store.h, on either backend: N verdicts (of D devices,
 * each with the clock update an attestation writes too, unless --verdict-only) queued
 * through vs_* and committed by the store's writer thread, as vouchd queues them. Prints
 * this process's CPU per verdict (the callers and the writer threads: what vouchd pays), and
 * for PostgreSQL the server's CPU per verdict (every process in pg_stat_activity, read from
 * /proc: run it on the database's machine) and the WAL bytes per verdict
 * (pg_current_wal_lsn() before and after).
 *
 *   bench-store [--url URL] [--verdicts N] [--devices D] [--record BYTES] [--rate PER_SECOND]
 *               [--verdict-only] [--writers W] [--seal] [--sign]
 *
 * URL: a store URL as vs_open takes it (default: $VOUCH_TEST_STORE_URL, else a new SQLite
 * file in a temp dir); a PostgreSQL database must be empty or hold a vouch store. --rate
 * queues at that pace (default: all at once, so batches are as large as they get).
 * --writers W: W handles on the store (instances bench-1..W, as W vouchd would be), each
 * fed by a thread of its own with N verdicts of D devices of its own (--verdicts, --devices
 * and --rate are per writer). Numbering (store.h, Global order): with --seal, commit-ordered
 * (the store numbers each verdict in its commit and a hook finishes its record); without,
 * by the caller (one writer, as vouchd numbers today) or, with several writers, the store's
 * next at insert (the unordered baseline). --sign: each record is signed (ECDSA P-256,
 * SHA-256, as vouchd signs verdicts): before queueing without --seal, in the hook with it
 * (so under the order lock). Timing is printed, never checked. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define WRITERS_MAX 8

static double now_seconds(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static atomic_ulong ok, failed;

static void done(int error, void *ud) {
        atomic_fetch_add(error == 0 ? &ok : &failed, 1);
}

/* The PostgreSQL server's side: its CPU (all its processes that pg_stat_activity lists) and
 * its WAL position. */
typedef struct server_sample {
        double cpu;
        char lsn[64];
} server_sample;

static double proc_cpu(long pid) {
        char p[64], buf[1024];
        snprintf(p, sizeof(p), "/proc/%ld/stat", pid);
        FILE *f = fopen(p, "r");
        if (!f)
                return 0;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        char *c = strrchr(buf, ')'); /* the command name may hold spaces */
        unsigned long utime = 0, stime = 0;
        if (!c || sscanf(c + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
                return 0;
        return (double) (utime + stime) / (double) sysconf(_SC_CLK_TCK);
}

static int sample_server(PGconn *c, server_sample *ret) {
        PGresult *res = PQexec(c, "SELECT pg_current_wal_lsn()::text");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                fprintf(stderr, "bench-store: pg_current_wal_lsn(): %s", PQerrorMessage(c));
                PQclear(res);
                return -EIO;
        }
        snprintf(ret->lsn, sizeof(ret->lsn), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        res = PQexec(c, "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()");
        ret->cpu = 0;
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
                for (int i = 0; i < PQntuples(res); i++)
                        ret->cpu += proc_cpu(strtol(PQgetvalue(res, i, 0), NULL, 10));
        PQclear(res);
        return 0;
}

static long long wal_bytes(PGconn *c, const char *from, const char *to) {
        const char *vals[2] = { to, from };
        PGresult *res = PQexecParams(c, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint", 2, NULL, vals, NULL,
                                     NULL, 0);
        long long n = PQresultStatus(res) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
        PQclear(res);
        return n;
}

/* One writer: a store handle (an instance) and the thread that feeds it. */
typedef struct writer {
        vs_store *s;
        unsigned long n, devices, record_len, index;
        double rate;
        bool clock_too, seal, sign, caller_numbers;
        uint64_t gseq;          /* caller numbering: the last one given */
        uint64_t *seq;          /* per device */
        uint8_t *rec;           /* the record's bytes (the signature appended with --sign) */
        EVP_PKEY *key;
        atomic_ulong sign_errors;
        pthread_t thread;
} writer;

/* A record: the template with the global sequence in its first 8 bytes, signed with --sign
 * (the signature appended). */
static int make_record(writer *w, uint64_t gseq, uint8_t **ret, size_t *ret_len) {
        size_t sig_len = 0, len = w->record_len;
        uint8_t *r = malloc(len + (w->sign ? 80 : 0));
        if (!r)
                return -ENOMEM;
        memcpy(r, w->rec, len);
        memcpy(r, &gseq, sizeof(gseq) < len ? sizeof(gseq) : len);
        if (w->sign) {
                EVP_MD_CTX *ctx = EVP_MD_CTX_new();
                sig_len = 80;
                if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, w->key) != 1 ||
                    EVP_DigestSign(ctx, r + len, &sig_len, r, len) != 1) {
                        EVP_MD_CTX_free(ctx);
                        free(r);
                        return -EIO;
                }
                EVP_MD_CTX_free(ctx);
        }
        *ret = r;
        *ret_len = len + sig_len;
        return 0;
}

/* The seal hook (writer thread, in the transaction, the order lock held). */
static int seal(vs_verdict *v, uint64_t gseq, void *ud) {
        writer *w = ud;
        int r = make_record(w, gseq, &v->record, &v->record_len);
        if (r < 0)
                atomic_fetch_add(&w->sign_errors, 1);
        return r;
}

static void *feed(void *arg) {
        writer *w = arg;
        double t0 = now_seconds();
        for (unsigned long i = 0; i < w->n; i++) {
                unsigned long d = i % w->devices;
                if (w->rate > 0) { /* at the pace asked for */
                        double due = t0 + (double) i / w->rate, wait = due - now_seconds();
                        if (wait > 0)
                                usleep((useconds_t) (wait * 1e6));
                }
                vs_verdict v = { .sequence = ++w->seq[d], .status = 1, .issued_at = 1700000000 + (int64_t) i,
                                 .expires_at = 1700000180 + (int64_t) i };
                snprintf(v.device, sizeof(v.device), "%02lx%062lx", w->index, d);
                uint8_t *rec = NULL;
                if (w->seal) {
                        v.seal = seal;
                        v.seal_userdata = w;
                } else {
                        v.global_sequence = w->caller_numbers ? ++w->gseq : 0;
                        if (make_record(w, v.global_sequence, &rec, &v.record_len) < 0) {
                                atomic_fetch_add(&w->sign_errors, 1);
                                continue;
                        }
                        v.record = rec;
                }
                if (w->clock_too)
                        vs_device_put_clock(w->s, v.device, 1, 0, 1000 * (uint64_t) i, NULL, NULL);
                vs_verdict_put(w->s, &v, done, NULL);
                free(rec);
        }
        vs_flush(w->s);
        return NULL;
}

static int writer_open(writer *w, const char *url, char *err, size_t errlen) {
        char name[32];
        uint8_t ek[300], ak[300];
        snprintf(name, sizeof(name), "bench-%lu", w->index + 1);
        vs_open_options opt = { .history_keep = 100, .flags = VS_OPEN_CREATE, .instance = name };
        int r = vs_open_ex(url, &opt, &w->s, NULL, err, errlen);
        if (r < 0)
                return r;
        memset(ek, 0x11, sizeof(ek));
        memset(ak, 0x22, sizeof(ak));
        w->seq = calloc(w->devices, sizeof(*w->seq));
        w->rec = malloc(w->record_len);
        if (!w->seq || !w->rec) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < w->record_len; i++)
                w->rec[i] = (uint8_t) (i * 131);
        for (unsigned long d = 0; d < w->devices; d++) {
                vs_device dev = { .ek_public = ek, .ek_public_len = sizeof(ek), .ak_public = ak,
                                  .ak_public_len = sizeof(ak), .approved = true, .enrolled_at = 1700000000 };
                snprintf(dev.id, sizeof(dev.id), "%02lx%062lx", w->index, d);
                vs_device_put(w->s, &dev, NULL, NULL);
        }
        vs_flush(w->s);
        if ((r = vs_verdict_last_global(w->s, &w->gseq)) < 0) {
                vs_read_error(w->s, err, errlen);
                return r;
        }
        for (unsigned long d = 0; d < w->devices; d++) {
                vs_device got;
                char id[VS_ID_MAX + 1];
                snprintf(id, sizeof(id), "%02lx%062lx", w->index, d);
                if (vs_device_get(w->s, id, &got) == 0) {
                        w->seq[d] = got.sequence;
                        vs_device_done(&got);
                }
        }
        return 0;
}

static void usage(void) {
        fprintf(stderr, "usage: bench-store [--url URL] [--verdicts N] [--devices D] [--record BYTES] "
                        "[--rate PER_SECOND] [--verdict-only] [--writers W] [--seal] [--sign]\n");
}

int main(int argc, char **argv) {
        const char *url = getenv("VOUCH_TEST_STORE_URL");
        unsigned long n = 20000, devices = 1000, record_len = 600, nwriters = 1;
        double rate = 0;
        bool clock_too = true, sealed = false, sign = false;
        char tmpdir[64] = "", path[128];
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (strcmp(a, "--verdict-only") == 0 || strcmp(a, "--seal") == 0 || strcmp(a, "--sign") == 0) {
                        clock_too = clock_too && strcmp(a, "--verdict-only") != 0;
                        sealed = sealed || strcmp(a, "--seal") == 0;
                        sign = sign || strcmp(a, "--sign") == 0;
                        continue;
                }
                if (!v) {
                        usage();
                        return 2;
                }
                if (strcmp(a, "--url") == 0)
                        url = v;
                else if (strcmp(a, "--verdicts") == 0)
                        n = strtoul(v, NULL, 10);
                else if (strcmp(a, "--devices") == 0)
                        devices = strtoul(v, NULL, 10);
                else if (strcmp(a, "--record") == 0)
                        record_len = strtoul(v, NULL, 10);
                else if (strcmp(a, "--rate") == 0)
                        rate = strtod(v, NULL);
                else if (strcmp(a, "--writers") == 0)
                        nwriters = strtoul(v, NULL, 10);
                else {
                        fprintf(stderr, "bench-store: unknown option %s\n", a);
                        usage();
                        return 2;
                }
                i++;
        }
        if (!n || !devices || !record_len || record_len > (1u << 20) || !nwriters || nwriters > WRITERS_MAX) {
                fprintf(stderr, "bench-store: --verdicts, --devices and --record (at most 1 MiB) must be positive, "
                                "--writers 1 to %d\n", WRITERS_MAX);
                return 2;
        }
        if (!url || !*url) {
                snprintf(tmpdir, sizeof(tmpdir), "/tmp/vouch-bench-store.XXXXXX");
                if (!mkdtemp(tmpdir)) {
                        perror("mkdtemp");
                        return 1;
                }
                snprintf(path, sizeof(path), "%s/vouch.db", tmpdir);
                url = path;
        }
        bool pg = strncmp(url, "postgres", 8) == 0;

        EVP_PKEY *key = sign ? EVP_EC_gen("P-256") : NULL;
        if (sign && !key) {
                fprintf(stderr, "bench-store: cannot make a P-256 key\n");
                return 1;
        }
        static writer ws[WRITERS_MAX];
        char err[1024];
        for (unsigned long k = 0; k < nwriters; k++) {
                writer *w = &ws[k];
                *w = (writer) { .n = n, .devices = devices, .record_len = record_len, .index = k, .rate = rate,
                                .clock_too = clock_too, .seal = sealed, .sign = sign,
                                .caller_numbers = nwriters == 1, .key = key };
                if (writer_open(w, url, err, sizeof(err)) < 0) {
                        fprintf(stderr, "bench-store: %s\n", err);
                        return 1;
                }
        }

        PGconn *pc = NULL;
        server_sample before = { 0 }, after = { 0 };
        if (pg) {
                pc = PQconnectdb(url);
                if (PQstatus(pc) != CONNECTION_OK || sample_server(pc, &before) < 0) {
                        fprintf(stderr, "bench-store: %s", PQerrorMessage(pc));
                        return 1;
                }
        }
        vs_stats st0[WRITERS_MAX], st1[WRITERS_MAX];
        for (unsigned long k = 0; k < nwriters; k++)
                vs_get_stats(ws[k].s, &st0[k]);
        double c0 = cpu_seconds(), t0 = now_seconds();
        for (unsigned long k = 0; k < nwriters; k++)
                if (pthread_create(&ws[k].thread, NULL, feed, &ws[k]) != 0) {
                        fprintf(stderr, "bench-store: cannot start a thread\n");
                        return 1;
                }
        for (unsigned long k = 0; k < nwriters; k++)
                pthread_join(ws[k].thread, NULL);
        double wall = now_seconds() - t0, cpu = cpu_seconds() - c0;
        uint64_t commits = 0, commit_us = 0;
        unsigned long sign_errors = 0;
        for (unsigned long k = 0; k < nwriters; k++) {
                vs_get_stats(ws[k].s, &st1[k]);
                commits += st1[k].commits - st0[k].commits;
                commit_us += st1[k].commit_us - st0[k].commit_us;
                sign_errors += atomic_load(&ws[k].sign_errors);
        }
        if (pg && sample_server(pc, &after) < 0)
                return 1;

        unsigned long good = atomic_load(&ok), bad = atomic_load(&failed);
        printf("backend            %s\n", pg ? "postgresql" : "sqlite");
        printf("writers            %lu (%s numbering%s)\n", nwriters,
               sealed ? "commit-ordered (seal hook)" : nwriters == 1 ? "caller's" : "store's next at insert",
               sign ? ", records signed (P-256)" : "");
        printf("verdicts           %lu (%lu devices, %lu-byte records%s), %lu failed\n", good, devices * nwriters,
               record_len, clock_too ? ", each with its clock update" : "", bad + sign_errors);
        printf("commits            %" PRIu64 " (%.1f verdicts each)\n", commits, commits ? (double) good / (double) commits : 0);
        printf("wall               %.3f s, %.0f verdicts/s%s\n", wall, (double) good / wall, rate > 0 ? " (paced)" : "");
        printf("commit time        %.1f us/verdict (BEGIN to COMMIT's end, writer threads)\n",
               good ? (double) commit_us / (double) good : 0);
        printf("CPU, this process  %.2f us/verdict\n", good ? cpu * 1e6 / (double) good : 0);
        if (pg) {
                long long wal = wal_bytes(pc, before.lsn, after.lsn);
                printf("CPU, PostgreSQL    %.2f us/verdict (its processes in pg_stat_activity)\n",
                       good ? (after.cpu - before.cpu) * 1e6 / (double) good : 0);
                printf("WAL                %.0f bytes/verdict (%lld bytes)\n", good ? (double) wal / (double) good : 0, wal);
                PQfinish(pc);
        }
        for (unsigned long k = 0; k < nwriters; k++) {
                vs_close(ws[k].s);
                free(ws[k].seq);
                free(ws[k].rec);
        }
        EVP_PKEY_free(key);
        if (tmpdir[0]) {
                char cmd[200];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
                if (system(cmd) != 0)
                        fprintf(stderr, "bench-store: could not remove %s\n", tmpdir);
        }
        return bad || sign_errors ? 1 : 0;
}
