/* SPDX-License-Identifier: Apache-2.0 */
/* A takeover burst's lease claims and the verdict commits beside them (issue 18), through
 * store.h: N devices (each with its row and a verdict) claimed over about N/2000 s while
 * verdicts of other devices are queued at --rate per second, as vouchd's writer thread sees a
 * takeover. Two ways of reloading a claimed device, in alternating rounds:
 *   callback:    the claim's callback reads the row and the latest verdict itself
 *                (vs_device_get, vs_verdict_latest), on the writer thread, as vouchd's
 *                lease.c did before the claim's answer carried them;
 *   transaction: the claim's answer carries them (vs_lease_result.row, .latest).
 * Prints, per round, how long the claims took to be answered and the commit latency of the
 * verdicts queued meanwhile (queue to callback). Timing is printed, never checked.
 *
 *   test/pg/pg-harness.sh BUILDDIR/bench/bench-claims [--devices N] [--rate PER_SECOND] [--rounds R]
 *
 * The store: $VOUCH_TEST_STORE_URL (the harness's PostgreSQL), else --url URL. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define LATENCIES_MAX 200000
#define OTHER_DEVICES 1000

static double now_seconds(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static vs_store *store;
static bool reads_in_callback;
static atomic_ulong answered, reloaded, n_latencies;
static atomic_bool feeding;
static double latencies[LATENCIES_MAX];
static uint64_t sequences[OTHER_DEVICES];
static double rate = 500;

static void on_claim(int error, const vs_lease_result *res, void *userdata) {
        char *id = userdata;
        if (error == 0 && res->granted) {
                if (reads_in_callback) {
                        vs_device d;
                        vs_verdict v;
                        bool row = vs_device_get(store, id, &d) == 0, latest = vs_verdict_latest(store, id, &v) == 0;
                        if (row)
                                vs_device_done(&d);
                        if (latest)
                                vs_verdict_done(&v);
                        if (row && latest)
                                atomic_fetch_add(&reloaded, 1);
                } else if (res->has_row && res->has_latest) {
                        atomic_fetch_add(&reloaded, 1);
                }
        }
        free(id);
        atomic_fetch_add(&answered, 1);
}

static void on_verdict(int error, void *userdata) {
        double *queued = userdata;
        unsigned long i = atomic_fetch_add(&n_latencies, 1);
        if (error == 0 && i < LATENCIES_MAX)
                latencies[i] = now_seconds() - *queued;
        free(queued);
}

/* Verdicts of the other devices at the rate asked for, until feeding ends. */
static void *feed(void *arg) {
        static uint8_t rec[370];
        double t0 = now_seconds();
        memset(rec, 5, sizeof(rec));
        for (unsigned long i = 0; atomic_load(&feeding); i++) {
                double wait = t0 + (double) i / rate - now_seconds();
                if (wait > 0)
                        usleep((useconds_t) (wait * 1e6));
                unsigned long d = i % OTHER_DEVICES;
                vs_verdict v = { .sequence = ++sequences[d], .status = 1, .issued_at = 1700000000,
                                 .expires_at = 1700000360, .record = rec, .record_len = sizeof(rec) };
                snprintf(v.device, sizeof(v.device), "f%063lx", d);
                double *queued = malloc(sizeof(*queued));
                if (!queued)
                        continue;
                *queued = now_seconds();
                if (vs_verdict_put(store, &v, on_verdict, queued) < 0)
                        free(queued);
        }
        return NULL;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void put_device(const char *id) {
        static uint8_t ek[120], ak[90];
        memset(ek, 1, sizeof(ek));
        memset(ak, 2, sizeof(ak));
        vs_device d = { .ek_public = ek, .ek_public_len = sizeof(ek), .ak_public = ak, .ak_public_len = sizeof(ak),
                        .approved = true, .enrolled_at = 1700000000 };
        snprintf(d.id, sizeof(d.id), "%s", id);
        vs_device_put(store, &d, NULL, NULL);
}

int main(int argc, char **argv) {
        const char *url = getenv("VOUCH_TEST_STORE_URL");
        unsigned long devices = 2500, rounds = 4;
        char err[512];
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
                        url = argv[++i];
                else if (strcmp(argv[i], "--devices") == 0 && i + 1 < argc)
                        devices = strtoul(argv[++i], NULL, 10);
                else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
                        rate = strtod(argv[++i], NULL);
                else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
                        rounds = strtoul(argv[++i], NULL, 10);
                else {
                        fprintf(stderr, "usage: bench-claims [--url URL] [--devices N] [--rate PER_SECOND] [--rounds R]\n");
                        return 2;
                }
        }
        if (!url || devices < 1 || rate <= 0) {
                fprintf(stderr, "bench-claims: no store (run it under test/pg/pg-harness.sh, or give --url)\n");
                return 2;
        }
        vs_open_options opt = { .history_keep = 100, .flags = VS_OPEN_CREATE, .instance = "bench-claims" };
        if (vs_open_ex(url, &opt, &store, NULL, err, sizeof(err)) < 0) {
                fprintf(stderr, "bench-claims: %s\n", err);
                return 1;
        }
        static uint8_t rec[370];
        memset(rec, 3, sizeof(rec));
        for (unsigned long i = 0; i < devices; i++) {
                char id[VS_ID_MAX + 1];
                snprintf(id, sizeof(id), "c%063lx", i);
                put_device(id);
                vs_verdict v = { .sequence = 1, .status = 1, .issued_at = 1700000000, .expires_at = 1700000360,
                                 .record = rec, .record_len = sizeof(rec) };
                snprintf(v.device, sizeof(v.device), "%s", id);
                vs_verdict_put(store, &v, NULL, NULL);
        }
        for (unsigned long i = 0; i < OTHER_DEVICES; i++) {
                char id[VS_ID_MAX + 1];
                snprintf(id, sizeof(id), "f%063lx", i);
                put_device(id);
        }
        vs_flush(store);
        for (unsigned long round = 0; round < rounds; round++) {
                reads_in_callback = round % 2 == 0;
                vs_lease_release_all(store, NULL, NULL); /* every claim below is a new one */
                vs_flush(store);
                atomic_store(&answered, 0);
                atomic_store(&reloaded, 0);
                atomic_store(&n_latencies, 0);
                atomic_store(&feeding, true);
                pthread_t feeder;
                if (pthread_create(&feeder, NULL, feed, NULL) != 0)
                        return 1;
                usleep(300000);
                double t0 = now_seconds();
                for (unsigned long i = 0; i < devices; i++) { /* 100 claims every 50 ms */
                        char *id = malloc(VS_ID_MAX + 1);
                        if (!id)
                                return 1;
                        snprintf(id, VS_ID_MAX + 1, "c%063lx", i);
                        if (vs_lease_claim(store, id, 10000, on_claim, id) < 0) {
                                free(id);
                                atomic_fetch_add(&answered, 1);
                        }
                        if (i % 100 == 99)
                                usleep(50000);
                }
                while (atomic_load(&answered) < devices)
                        usleep(1000);
                double t1 = now_seconds();
                usleep(300000);
                atomic_store(&feeding, false);
                pthread_join(feeder, NULL);
                vs_flush(store);
                unsigned long m = atomic_load(&n_latencies);
                if (m > LATENCIES_MAX)
                        m = LATENCIES_MAX;
                if (m == 0)
                        continue;
                qsort(latencies, m, sizeof(double), cmp_double);
                printf("%-11s %lu claims answered in %.3f s (%lu reloaded); %lu verdicts meanwhile, commit latency "
                       "p50 %.1f p99 %.1f max %.1f ms\n",
                       reads_in_callback ? "callback:" : "transaction:", devices, t1 - t0, atomic_load(&reloaded), m,
                       latencies[m / 2] * 1e3, latencies[m * 99 / 100] * 1e3, latencies[m - 1] * 1e3);
        }
        vs_close(store);
        return 0;
}
