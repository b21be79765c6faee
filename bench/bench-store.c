/* SPDX-License-Identifier: Apache-2.0 */
/* The cost of a verdict write through store.h, on either backend: N verdicts (of D devices,
 * each with the clock update an attestation writes too, unless --verdict-only) queued
 * through vs_* and committed by the store's writer thread, as vouchd queues them. Prints
 * this process's CPU per verdict (the caller and the writer thread: what vouchd pays), and
 * for PostgreSQL the server's CPU per verdict (every process in pg_stat_activity, read from
 * /proc: run it on the database's machine) and the WAL bytes per verdict
 * (pg_current_wal_lsn() before and after).
 *
 *   bench-store [--url URL] [--verdicts N] [--devices D] [--record BYTES] [--rate PER_SECOND]
 *               [--verdict-only]
 *
 * URL: a store URL as vs_open takes it (default: $VOUCH_TEST_STORE_URL, else a new SQLite
 * file in a temp dir); a PostgreSQL database must be empty or hold a vouch store. --rate
 * queues at that pace (default: all at once, so batches are as large as they get). Timing
 * is printed, never checked. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

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

int main(int argc, char **argv) {
        const char *url = getenv("VOUCH_TEST_STORE_URL");
        unsigned long n = 20000, devices = 1000, record_len = 600;
        double rate = 0;
        bool clock_too = true;
        char tmpdir[64] = "", path[128];
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (strcmp(a, "--verdict-only") == 0) {
                        clock_too = false;
                        continue;
                }
                if (!v) {
                        fprintf(stderr, "usage: bench-store [--url URL] [--verdicts N] [--devices D] [--record BYTES] "
                                        "[--rate PER_SECOND] [--verdict-only]\n");
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
                else {
                        fprintf(stderr, "bench-store: unknown option %s\n", a);
                        return 2;
                }
                i++;
        }
        if (!n || !devices || !record_len || record_len > (1u << 20)) {
                fprintf(stderr, "bench-store: --verdicts, --devices and --record (at most 1 MiB) must be positive\n");
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

        vs_store *s = NULL;
        char err[1024];
        int r = vs_open(url, 100, VS_OPEN_CREATE, &s, NULL, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "bench-store: %s\n", err);
                return 1;
        }
        uint8_t ek[300], ak[300];
        memset(ek, 0x11, sizeof(ek));
        memset(ak, 0x22, sizeof(ak));
        uint64_t *seq = calloc(devices, sizeof(*seq));
        uint8_t *rec = malloc(record_len);
        if (!seq || !rec) {
                fprintf(stderr, "bench-store: out of memory\n");
                return 1;
        }
        for (size_t i = 0; i < record_len; i++)
                rec[i] = (uint8_t) (i * 131);
        for (unsigned long d = 0; d < devices; d++) {
                vs_device dev = { .ek_public = ek, .ek_public_len = sizeof(ek), .ak_public = ak,
                                  .ak_public_len = sizeof(ak), .approved = true, .enrolled_at = 1700000000 };
                snprintf(dev.id, sizeof(dev.id), "%064lx", d);
                vs_device_put(s, &dev, NULL, NULL);
        }
        vs_flush(s);
        uint64_t gseq = 0;
        if ((r = vs_verdict_last_global(s, &gseq)) < 0) {
                vs_read_error(s, err, sizeof(err));
                fprintf(stderr, "bench-store: %s\n", err);
                return 1;
        }
        for (unsigned long d = 0; d < devices; d++) {
                vs_device got;
                char id[VS_ID_MAX + 1];
                snprintf(id, sizeof(id), "%064lx", d);
                if (vs_device_get(s, id, &got) == 0) {
                        seq[d] = got.sequence;
                        vs_device_done(&got);
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
        vs_stats st0, st1;
        vs_get_stats(s, &st0);
        double c0 = cpu_seconds(), t0 = now_seconds();
        for (unsigned long i = 0; i < n; i++) {
                unsigned long d = i % devices;
                if (rate > 0) { /* at the pace asked for */
                        double due = t0 + (double) i / rate, wait = due - now_seconds();
                        if (wait > 0)
                                usleep((useconds_t) (wait * 1e6));
                }
                vs_verdict v = { .sequence = ++seq[d], .global_sequence = ++gseq, .status = 1,
                                 .issued_at = 1700000000 + (int64_t) i, .expires_at = 1700000180 + (int64_t) i,
                                 .record = rec, .record_len = record_len };
                snprintf(v.device, sizeof(v.device), "%064lx", d);
                if (clock_too)
                        vs_device_put_clock(s, v.device, 1, 0, 1000 * (uint64_t) i, NULL, NULL);
                vs_verdict_put(s, &v, done, NULL);
        }
        vs_flush(s);
        double wall = now_seconds() - t0, cpu = cpu_seconds() - c0;
        vs_get_stats(s, &st1);
        if (pg && sample_server(pc, &after) < 0)
                return 1;

        unsigned long good = atomic_load(&ok), bad = atomic_load(&failed);
        uint64_t commits = st1.commits - st0.commits;
        printf("backend            %s\n", pg ? "postgresql" : "sqlite");
        printf("verdicts           %lu (%lu devices, %lu-byte records%s), %lu failed\n", good, devices, record_len,
               clock_too ? ", each with its clock update" : "", bad);
        printf("commits            %" PRIu64 " (%.1f verdicts each)\n", commits, commits ? (double) good / (double) commits : 0);
        printf("wall               %.3f s, %.0f verdicts/s%s\n", wall, (double) good / wall, rate > 0 ? " (paced)" : "");
        printf("commit time        %.1f us/verdict (BEGIN to COMMIT's end, writer thread)\n",
               good ? (double) (st1.commit_us - st0.commit_us) / (double) good : 0);
        printf("CPU, this process  %.2f us/verdict\n", good ? cpu * 1e6 / (double) good : 0);
        if (pg) {
                long long wal = wal_bytes(pc, before.lsn, after.lsn);
                printf("CPU, PostgreSQL    %.2f us/verdict (its processes in pg_stat_activity)\n",
                       good ? (after.cpu - before.cpu) * 1e6 / (double) good : 0);
                printf("WAL                %.0f bytes/verdict (%lld bytes)\n", good ? (double) wal / (double) good : 0, wal);
                PQfinish(pc);
        }
        vs_close(s);
        free(seq);
        free(rec);
        if (tmpdir[0]) {
                char cmd[200];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
                if (system(cmd) != 0)
                        fprintf(stderr, "bench-store: could not remove %s\n", tmpdir);
        }
        return bad ? 1 : 0;
}
