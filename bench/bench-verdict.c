/* SPDX-License-Identifier: Apache-2.0 */
/* The CPU of vouchd's verdict path per verdict (issue 18): verdict_issue as an event loop
 * calls it for an attestation (numbered, signed, queued), the store's commit, and the
 * hand-off to the device's latest verdict and to the agent's callback, in-process on either
 * backend. Two ways of numbering, as vouchd has them (verdict.c):
 *   default   the caller's numbers, signed when issued (vouchd with a store of its own)
 *   --seal    a shared store's: numbered by the store in commit order, signed by the seal
 *             hook on the writer thread (vouchd.shared)
 * Prints this process's CPU per verdict (the feeding thread, the store's writer thread)
 * and the rate; timing is printed, never checked.
 *
 *   bench-verdict [--url URL] [--verdicts N] [--devices D] [--rate PER_SECOND] [--seal]
 *
 * URL: a store URL as vs_open takes it (default: $VOUCH_TEST_STORE_URL, else a new SQLite
 * file in a temp dir); run it under test/pg/pg-harness.sh for a PostgreSQL of its own.
 * --rate queues at that pace (default: all at once, so batches are as large as they get). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"
#include "vouchd.h"

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

static atomic_ulong ok, failed, record_bytes;

/* What a session does with the record: it frames it for the agent (a copy). */
static void done(int error, const uint8_t *record, size_t len, void *userdata) {
        if (error == 0 && record) {
                uint8_t *copy = malloc(len);
                if (copy)
                        memcpy(copy, record, len);
                free(copy);
                atomic_fetch_add(&record_bytes, len);
        }
        atomic_fetch_add(error == 0 ? &ok : &failed, 1);
}

static void usage(void) {
        fprintf(stderr, "usage: bench-verdict [--url URL] [--verdicts N] [--devices D] [--rate PER_SECOND] [--seal]\n");
}

int main(int argc, char **argv) {
        const char *url = getenv("VOUCH_TEST_STORE_URL");
        unsigned long n = 20000, ndev = 1000;
        double rate = 0;
        bool seal = false;
        char dir[64] = "/tmp/vouch-bench-verdict-XXXXXX", path[160], err[600];
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (strcmp(a, "--seal") == 0) {
                        seal = true;
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
                        ndev = strtoul(v, NULL, 10);
                else if (strcmp(a, "--rate") == 0)
                        rate = strtod(v, NULL);
                else {
                        usage();
                        return 2;
                }
                i++;
        }
        if (!n || !ndev) {
                usage();
                return 2;
        }
        if (!mkdtemp(dir)) {
                perror("bench-verdict: mkdtemp");
                return 1;
        }
        if (!url || !*url) {
                snprintf(path, sizeof(path), "sqlite:%s/vouch.db", dir);
                url = path;
        }
        vouchd d;
        vouchd_init(&d);
        char state[128];
        snprintf(state, sizeof(state), "%s/state", dir);
        d.cfg.state_dir = strdup(state);
        vlog_level = -1;
        vs_open_options opt = { .history_keep = 100, .flags = VS_OPEN_CREATE, .instance = "bench-verdict" };
        if (tls_init_state_dir(state, NULL, 0, true, err, sizeof(err)) < 0 || tls_verifier_id(state, d.verifier_id) < 0 ||
            vk_load(state, &d.keys) < 0) {
                fprintf(stderr, "bench-verdict: cannot make a state dir in %s: %s\n", state, err);
                return 1;
        }
        if (vs_open_ex(url, &opt, &d.store, NULL, err, sizeof(err)) < 0) {
                fprintf(stderr, "bench-verdict: %s\n", err);
                return 1;
        }
        d.shared = seal;
        uint64_t last = 0;
        vs_verdict_last_global(d.store, &last);
        d.gseq = last;
        atomic_store(&d.published, last);
        /* the devices: not in a registry (nothing here looks them up), their sequences
         * after whatever an earlier run on the same store left */
        device *devs = calloc(ndev, sizeof(*devs));
        if (!devs)
                return 1;
        for (unsigned long i = 0; i < ndev; i++) {
                pthread_mutex_init(&devs[i].mu, NULL);
                snprintf(devs[i].rec.id, sizeof(devs[i].rec.id), "%064lx", i);
                devs[i].rec.approved = true;
                devs[i].rec.sequence = last; /* above any earlier run's */
        }
        /* an attestation's TRUSTED verdict: nonce, golden set, AK name, no findings */
        uint8_t nonce[32], ak_name[34];
        memset(nonce, 0x5a, sizeof(nonce));
        memset(ak_name, 0x0b, sizeof(ak_name));
        double t0 = now_seconds(), c0 = cpu_seconds();
        for (unsigned long i = 0; i < n; i++) {
                if (rate > 0) {
                        double wait = t0 + (double) i / rate - now_seconds();
                        if (wait > 0)
                                usleep((useconds_t) (wait * 1e6));
                }
                device *dev = &devs[i % ndev];
                Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
                v.device_id = dev->rec.id;
                v.status = VOUCH__V1__TRUST_STATUS__TRUSTED;
                v.issued_at = 1800000000 + (int64_t) i / 1000;
                v.expires_at = v.issued_at + 180;
                v.nonce.data = nonce;
                v.nonce.len = sizeof(nonce);
                v.golden_name = (char *) "bench";
                v.golden_version = 1;
                v.boot_count = 3;
                v.ak_name.data = ak_name;
                v.ak_name.len = sizeof(ak_name);
                if (verdict_issue_attested(&d, dev, &v, i + 1, done, NULL) < 0)
                        atomic_fetch_add(&failed, 1);
        }
        vs_flush(d.store);
        double wall = now_seconds() - t0, cpu = cpu_seconds() - c0;
        printf("bench-verdict: %s, %s: %lu verdicts (%lu devices) in %.2f s: %.0f verdicts/s, CPU %.1f us/verdict "
               "(%.0f%% of a core), record %.0f bytes, %lu failed\n",
               strncmp(url, "postgres", 8) == 0 ? "PostgreSQL" : "SQLite",
               seal ? "commit-ordered (seal hook signs)" : "caller's numbers (signed when issued)", n, ndev, wall,
               (double) n / wall, cpu * 1e6 / (double) n, 100 * cpu / wall,
               (double) atomic_load(&record_bytes) / (double) (atomic_load(&ok) ? atomic_load(&ok) : 1),
               atomic_load(&failed));
        vs_close(d.store);
        d.store = NULL;
        for (unsigned long i = 0; i < ndev; i++) {
                free(devs[i].latest);
                pthread_mutex_destroy(&devs[i].mu);
        }
        free(devs);
        vouchd_free(&d);
        snprintf(err, sizeof(err), "rm -rf '%s'", dir);
        if (system(err) != 0)
                return 1;
        return atomic_load(&failed) ? 1 : 0;
}
