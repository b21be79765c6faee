/* SPDX-License-Identifier: Apache-2.0 */
/* In-process event log throughput: vc_eventlog_parse + digest checks + replay (what a
 * verifier does with a received log) over the real logs in the shared data, printed next to
 * what OpenSSL EVP does with the same bytes in the same run, so the numbers mean something
 * on any machine:
 *   core  parse + vc_replay_update() with a vc_event_check array + free, one reused hasher
 *   base  bare EVP doing the same hashing without the core (data hash + extend per event
 *         and bank): core / base is the core's own overhead
 *   raw   SHA-256 and SHA-1 one-shot over each log buffer, and SHA-256 over 64-byte inputs
 * The phases run interleaved round by round (a round = every log once), so that load from
 * other processes hits them alike; MB/s are given per wall second and per CPU second.
 *
 * A benchmark, not a test: it prints numbers and exits 0 whatever they are. It exits 1 only
 * when the data cannot be read or a log fails to parse or replay, 2 on a usage error.
 *
 * Usage: bench-eventlog [-t SECONDS] [-v] [--core-only] [DIR]
 *   DIR is the shared data folder (holding eventlogs/) or an eventlogs folder itself;
 *   default $VOUCH_SHARED_DIR, else the shared_dir this was built with. Files named *.json,
 *   *.md or starting with a dot are skipped; every other file must be an event log. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "eventlog.h"
#include "fileio.h"
#include "hash.h"
#include "replay.h"
#include "vc-util.h"

#ifndef BENCH_SHARED_DIR
#define BENCH_SHARED_DIR "../shared"
#endif

#define MAX_LOGS 4096u          /* files under the eventlogs folder we are willing to load */
#define MAX_DEPTH 8             /* folder nesting we follow */
#define TARGET_MB_S 250.0       /* the target for parse + check + replay, one core */
#define SMALL_INPUT 64u         /* a PCR extend hashes 2 x 32 bytes */
#define SMALL_BATCH 4096u       /* small hashes between clock reads */

/* Logs whose per-log time is always shown: ~24 KB and ~49 KB UEFI logs as named in the
 * issue, a Windows log, and a SHA-1-only log. */
static const char *const representative[] = {
        "go-tpm-tools/cos-101-amd-sev.bin",
        "keylime/binary_bios_measurements",
        "go-attestation/windows_gcp_shielded_vm.eventlog.bin",
        "tpm2-tools/event-uefi-sha1-log.bin",
};

typedef struct bench_log {
        char *name;             /* path relative to the eventlogs folder; owned */
        uint8_t *buf;           /* owned */
        size_t len;
        vc_eventlog *parsed;    /* parsed once, for the bare-EVP baseline; owned */
        size_t n_events;
        uint64_t core_ns, core_runs;     /* per-log sums, for the table */
        uint64_t base_ns, base_runs;
        uint64_t sha256_ns, sha256_runs;
} bench_log;

typedef struct bench_set {
        bench_log *logs;
        size_t n, cap;
        size_t total_bytes;
} bench_set;

static volatile uint8_t sink; /* keeps the compiler from dropping a digest nobody reads */

static uint64_t now_ns(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static double mb_per_s(double bytes, uint64_t ns) {
        return ns ? bytes / 1e6 / ((double) ns / 1e9) : 0.0;
}

static void bench_set_done(bench_set *s) {
        for (size_t i = 0; i < s->n; i++) {
                vc_eventlog_free(s->logs[i].parsed);
                free(s->logs[i].name);
                free(s->logs[i].buf);
        }
        free(s->logs);
}

static bool skipped_name(const char *name) {
        size_t n = strlen(name);
        if (name[0] == '.')
                return true;
        return (n >= 5 && strcmp(name + n - 5, ".json") == 0) || (n >= 3 && strcmp(name + n - 3, ".md") == 0);
}

static int add_log(bench_set *s, const char *rel, uint8_t *buf, size_t len) {
        if (s->n >= MAX_LOGS)
                return -E2BIG;
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                bench_log *l = realloc(s->logs, cap * sizeof(*l));
                if (!l)
                        return -ENOMEM;
                s->logs = l;
                s->cap = cap;
        }
        char *name = strdup(rel);
        if (!name)
                return -ENOMEM;
        s->logs[s->n++] = (bench_log) { .name = name, .buf = buf, .len = len };
        s->total_bytes += len;
        return 0;
}

/* Loads every file under dir (sorted, recursive), skipping *.json, *.md and dot files.
 * prefix is dir's path relative to the eventlogs folder ("" at the top). */
static int load_dir(bench_set *s, int dirfd, const char *prefix, int depth) {
        struct dirent **ents = NULL;
        int n, r = 0;

        if (depth > MAX_DEPTH)
                return -ELOOP;
        n = scandirat(dirfd, ".", &ents, NULL, alphasort);
        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                const char *name = ents[i]->d_name;
                struct stat st;
                char rel[1024];

                if (r < 0 || skipped_name(name))
                        continue;
                if ((size_t) snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "/" : "", name) >= sizeof(rel)) {
                        r = -ENAMETOOLONG;
                        continue;
                }
                if (fstatat(dirfd, name, &st, 0) < 0) {
                        r = -errno;
                        fprintf(stderr, "bench-eventlog: cannot stat %s: %s\n", rel, strerror(-r));
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (sub < 0) {
                                r = -errno;
                                fprintf(stderr, "bench-eventlog: cannot open %s: %s\n", rel, strerror(-r));
                                continue;
                        }
                        r = load_dir(s, sub, rel, depth + 1);
                        close(sub);
                } else if (S_ISREG(st.st_mode)) {
                        uint8_t *buf = NULL;
                        size_t len = 0;
                        r = vu_read_file(dirfd, name, VC_EVENTLOG_MAX_SIZE, &buf, &len);
                        if (r < 0) {
                                fprintf(stderr, "bench-eventlog: cannot read %s: %s\n", rel, strerror(-r));
                                continue;
                        }
                        r = add_log(s, rel, buf, len);
                        if (r < 0)
                                free(buf);
                }
        }
        for (int i = 0; i < n; i++)
                free(ents[i]);
        free(ents);
        return r;
}

/* What a verifier does with a log it received: parse (copying the bytes), check every
 * event's digests against its data, replay to PCR values, free. One hasher is reused, as a
 * server thread would. */
static int process_log(vc_hasher *h, const bench_log *l, size_t *ret_events, vc_error *err) {
        vc_eventlog *log = NULL;
        vc_replay replay;
        int r = vc_eventlog_parse(l->buf, l->len, &log, err);
        if (r < 0)
                return r;
        vc_event_check *checks = calloc(log->n_events, sizeof(*checks));
        if (!checks) {
                vc_eventlog_free(log);
                return -ENOMEM;
        }
        vc_replay_init(&replay);
        r = vc_replay_update(h, log, &replay, checks, err);
        if (r >= 0 && ret_events)
                *ret_events = log->n_events;
        sink ^= replay.pcrs.n_banks ? replay.pcrs.banks[0].values[0][0] : 0;
        free(checks);
        vc_eventlog_free(log);
        return r;
}

/* Time spent in one phase, summed over rounds. */
typedef struct phase {
        uint64_t wall_ns, cpu_ns;
        double bytes;
        uint64_t rounds;
} phase;

enum {
        PHASE_CORE = 0,
        PHASE_BASE = 1,
        PHASE_SHA256 = 2,
        PHASE_SHA1 = 3,
        PHASE_SMALL = 4,
        N_PHASES = 5,
};

typedef struct stamp {
        uint64_t wall, cpu;
} stamp;

static stamp stamp_now(void) {
        return (stamp) { now_ns(CLOCK_MONOTONIC), now_ns(CLOCK_THREAD_CPUTIME_ID) };
}

static void phase_add(phase *p, stamp t0, double bytes) {
        stamp t1 = stamp_now();
        p->wall_ns += t1.wall - t0.wall;
        p->cpu_ns += t1.cpu - t0.cpu;
        p->bytes += bytes;
        p->rounds++;
}

typedef struct bench_ctx {
        vc_hasher *hasher;
        EVP_MD *md[VC_NUM_ALGS];        /* by vc_alg_index(); NULL when OpenSSL lacks it */
        EVP_MD_CTX *ctx;
        uint8_t pcrs[VC_NUM_ALGS][VC_PCR_COUNT][VC_MAX_DIGEST];
} bench_ctx;

static void bench_ctx_done(bench_ctx *b) {
        vc_hasher_free(b->hasher);
        for (int a = 0; a < VC_NUM_ALGS; a++)
                EVP_MD_free(b->md[a]);
        EVP_MD_CTX_free(b->ctx);
}

static int bench_ctx_init(bench_ctx *b) {
        *b = (bench_ctx) {};
        for (int a = 0; a < VC_NUM_ALGS; a++)
                b->md[a] = EVP_MD_fetch(NULL, vc_alg_at(a)->ossl_name, NULL);
        b->ctx = EVP_MD_CTX_new();
        if (!b->ctx || !b->md[vc_alg_index(VC_ALG_SHA1)] || !b->md[vc_alg_index(VC_ALG_SHA256)])
                return -EIO;
        return vc_hasher_new(&b->hasher);
}

/* The core over every log once. 0, or the negative errno of the first log that failed. */
static int core_round(bench_ctx *b, bench_set *s) {
        for (size_t i = 0; i < s->n; i++) {
                bench_log *l = &s->logs[i];
                vc_error err;
                uint64_t t0 = now_ns(CLOCK_MONOTONIC);
                int r = process_log(b->hasher, l, NULL, &err);
                if (r < 0) {
                        char msg[512];
                        fprintf(stderr, "bench-eventlog: %s: %s\n", l->name, vc_error_format(&err, msg, sizeof(msg)));
                        return r;
                }
                l->core_ns += now_ns(CLOCK_MONOTONIC) - t0;
                l->core_runs++;
        }
        return 0;
}

static int evp_hash(EVP_MD_CTX *ctx, const EVP_MD *md, const void *a, size_t alen, const void *b2, size_t blen,
                    uint8_t *out) {
        if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, a, alen) != 1 ||
            (b2 && EVP_DigestUpdate(ctx, b2, blen) != 1) || EVP_DigestFinal_ex(ctx, out, NULL) != 1)
                return -EIO;
        return 0;
}

/* Baseline: the hashing a verifier of these logs does, with bare EVP and none of the core's
 * logic, over every log once: for every extended event and every bank OpenSSL knows, one
 * hash of the event data (the digest check, as if the first guess at the measured data were
 * always right) and one extend. The core's time over this is its own overhead (parsing,
 * guesses at the measured data that miss, bookkeeping; it can also come in under it, as it
 * stops after one bank on events whose measured data is not in the log); the baseline's time
 * over one SHA-256 pass is the cost of the work itself (several banks, many small inputs). */
static int base_round(bench_ctx *b, bench_set *s) {
        uint8_t md[EVP_MAX_MD_SIZE];
        for (size_t i = 0; i < s->n; i++) {
                bench_log *l = &s->logs[i];
                uint64_t t0 = now_ns(CLOCK_MONOTONIC);
                for (size_t e = 0; e < l->parsed->n_events; e++) {
                        const vc_event *ev = &l->parsed->events[e];
                        if (ev->type == EV_NO_ACTION || ev->pcr == VC_PCR_NONE)
                                continue;
                        for (uint32_t d = 0; d < ev->n_digests; d++) {
                                int a = vc_alg_index(ev->digests[d].alg);
                                if (a < 0 || !b->md[a])
                                        continue;
                                uint8_t *v = b->pcrs[a][ev->pcr];
                                size_t n = ev->digests[d].size;
                                if (evp_hash(b->ctx, b->md[a], ev->data, ev->data_size, NULL, 0, md) < 0 ||
                                    evp_hash(b->ctx, b->md[a], v, n, ev->digests[d].bytes, n, v) < 0)
                                        return -EIO;
                                sink ^= md[0];
                        }
                }
                l->base_ns += now_ns(CLOCK_MONOTONIC) - t0;
                l->base_runs++;
        }
        return 0;
}

/* One-shot EVP_Digest over each whole log buffer. */
static int sha_round(const EVP_MD *md, bench_set *s, bool per_log) {
        uint8_t out[EVP_MAX_MD_SIZE];
        for (size_t i = 0; i < s->n; i++) {
                bench_log *l = &s->logs[i];
                uint64_t t0 = per_log ? now_ns(CLOCK_MONOTONIC) : 0;
                if (EVP_Digest(l->buf, l->len, out, NULL, md, NULL) != 1)
                        return -EIO;
                sink ^= out[0];
                if (per_log) {
                        l->sha256_ns += now_ns(CLOCK_MONOTONIC) - t0;
                        l->sha256_runs++;
                }
        }
        return 0;
}

/* SMALL_BATCH 64-byte inputs through one reused EVP_MD_CTX (Init_ex2/Update/Final), the
 * pattern vc_hasher uses for every event and every extend. */
static int small_round(bench_ctx *b) {
        uint8_t in[SMALL_INPUT] = { 0 }, out[EVP_MAX_MD_SIZE];
        const EVP_MD *md = b->md[vc_alg_index(VC_ALG_SHA256)];
        for (unsigned i = 0; i < SMALL_BATCH; i++) {
                in[0] = (uint8_t) i;
                if (evp_hash(b->ctx, md, in, sizeof(in), NULL, 0, out) < 0)
                        return -EIO;
                sink ^= out[0];
        }
        return 0;
}

/* All phases round by round, so that a change in machine load hits them alike and the
 * ratios stay meaningful on a shared machine. Stops once the core phase has had duration_ns. */
static int run_rounds(bench_ctx *b, bench_set *s, uint64_t duration_ns, bool core_only, phase ph[N_PHASES]) {
        const EVP_MD *sha256 = b->md[vc_alg_index(VC_ALG_SHA256)], *sha1 = b->md[vc_alg_index(VC_ALG_SHA1)];
        double bytes = (double) s->total_bytes;
        int r;
        do {
                stamp t = stamp_now();
                if ((r = core_round(b, s)) < 0)
                        return r;
                phase_add(&ph[PHASE_CORE], t, bytes);
                if (core_only)
                        continue;
                t = stamp_now();
                if ((r = base_round(b, s)) < 0)
                        return r;
                phase_add(&ph[PHASE_BASE], t, bytes);
                t = stamp_now();
                if ((r = sha_round(sha256, s, true)) < 0)
                        return r;
                phase_add(&ph[PHASE_SHA256], t, bytes);
                t = stamp_now();
                if ((r = sha_round(sha1, s, false)) < 0)
                        return r;
                phase_add(&ph[PHASE_SHA1], t, bytes);
                t = stamp_now();
                if ((r = small_round(b)) < 0)
                        return r;
                phase_add(&ph[PHASE_SMALL], t, (double) SMALL_BATCH * SMALL_INPUT);
        } while (ph[PHASE_CORE].wall_ns < duration_ns);
        return 0;
}

static void print_cpu_model(void) {
        FILE *f = fopen("/proc/cpuinfo", "re");
        char line[256];
        if (!f)
                return;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "model name", 10) == 0) {
                        char *colon = strchr(line, ':');
                        if (colon)
                                printf("cpu:      %s", colon + 2);
                        break;
                }
        fclose(f);
}

/* The first three fields of /proc/loadavg, or "?". */
static void read_loadavg(char *buf, size_t size) {
        FILE *f = fopen("/proc/loadavg", "re");
        double l1, l5, l15;
        if (f && fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3)
                snprintf(buf, size, "%.2f %.2f %.2f", l1, l5, l15);
        else
                snprintf(buf, size, "?");
        if (f)
                fclose(f);
}

static bool is_representative(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(representative); i++)
                if (strcmp(name, representative[i]) == 0)
                        return true;
        return false;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: bench-eventlog [-t SECONDS] [-v] [--core-only] [DIR]\n"
                   "  -t, --seconds=S  time in the core phase (default 2); the whole run takes ~2.7x that\n"
                   "  -v, --verbose    per-log numbers for every log, not only the representative ones\n"
                   "      --core-only  run only the core phase (for perf record / callgrind)\n"
                   "  DIR              shared data folder holding eventlogs/, or an eventlogs folder\n"
                   "                   (default $VOUCH_SHARED_DIR, else %s)\n",
                BENCH_SHARED_DIR);
}

typedef struct bench_args {
        double seconds;
        bool verbose, core_only;
        const char *dir;        /* the folder named, or the default */
} bench_args;

/* -1 to go on, or the exit code: 0 after --help, 2 on a usage error. */
static int parse_args(int argc, char **argv, bench_args *ret) {
        static const struct option opts[] = {
                { "seconds", required_argument, NULL, 't' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "core-only", no_argument, NULL, 'C' },
                {},
        };
        bench_args a = { .seconds = 2.0 };
        int c;

        while ((c = getopt_long(argc, argv, "t:vh", opts, NULL)) >= 0) {
                switch (c) {
                case 't': {
                        char *end;
                        a.seconds = strtod(optarg, &end);
                        if (*end || !(a.seconds > 0 && a.seconds <= 3600)) {
                                fprintf(stderr, "bench-eventlog: --seconds must be in (0, 3600], not '%s'\n", optarg);
                                return 2;
                        }
                        break;
                }
                case 'v':
                        a.verbose = true;
                        break;
                case 'C':
                        a.core_only = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (argc - optind > 1) {
                usage(stderr);
                return 2;
        }
        a.dir = optind < argc ? argv[optind] : getenv("VOUCH_SHARED_DIR");
        if (!a.dir || !*a.dir)
                a.dir = BENCH_SHARED_DIR;
        *ret = a;
        return -1;
}

/* Every log under dir/eventlogs, or under dir itself when it has no eventlogs folder (*shown:
 * what follows dir in messages). 0, or -1 once the failure is printed. */
static int load_logs(const char *dir, bench_set *set, const char **shown) {
        int top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (top < 0) {
                fprintf(stderr, "bench-eventlog: cannot open %s: %s\n", dir, strerror(errno));
                return -1;
        }
        /* DIR may be the shared folder or its eventlogs/ itself. */
        int logs_fd = openat(top, "eventlogs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *shown = "/eventlogs";
        if (logs_fd < 0) {
                logs_fd = top;
                top = -1;
                *shown = "";
        }
        int r = load_dir(set, logs_fd, "", 0);
        close(logs_fd);
        if (top >= 0)
                close(top);
        if (r < 0 || set->n == 0) {
                if (r >= 0)
                        fprintf(stderr, "bench-eventlog: no event logs under %s%s\n", dir, *shown);
                else
                        fprintf(stderr, "bench-eventlog: loading %s%s failed: %s\n", dir, *shown, strerror(-r));
                return -1;
        }
        return 0;
}

/* Every log must parse and replay before anything is timed; this also warms up. Each is parsed
 * once more for the bare-EVP baseline. */
static int check_logs(bench_ctx *b, bench_set *set, const char *dir, const char *shown) {
        for (size_t i = 0; i < set->n; i++) {
                bench_log *l = &set->logs[i];
                vc_error err;
                int r = process_log(b->hasher, l, &l->n_events, &err);
                if (r >= 0)
                        r = vc_eventlog_parse(l->buf, l->len, &l->parsed, &err);
                if (r < 0) {
                        char msg[512];
                        fprintf(stderr, "bench-eventlog: %s%s/%s: %s\n", dir, shown, l->name,
                                vc_error_format(&err, msg, sizeof(msg)));
                        return r;
                }
        }
        return 0;
}

/* The machine, the data and the throughput of every phase, with the ratios and the target. */
static void report_phases(const bench_set *set, const char *dir, const char *shown, const phase ph[N_PHASES],
                          bool core_only) {
        char loadavg[64];
        read_loadavg(loadavg, sizeof(loadavg));
        size_t events = 0;
        for (size_t i = 0; i < set->n; i++)
                events += set->logs[i].n_events;
        double mb[N_PHASES], mb_cpu[N_PHASES];
        for (int p = 0; p < N_PHASES; p++) {
                mb[p] = mb_per_s(ph[p].bytes, ph[p].wall_ns);
                mb_cpu[p] = mb_per_s(ph[p].bytes, ph[p].cpu_ns);
        }
        double small_ns = ph[PHASE_SMALL].rounds ? (double) ph[PHASE_SMALL].wall_ns /
                                                           ((double) ph[PHASE_SMALL].rounds * SMALL_BATCH)
                                                 : 0.0;

        printf("bench-eventlog: in-process event log verification, one thread (MB = 10^6 bytes of log)\n");
        print_cpu_model();
        printf("openssl:  %s\n", OpenSSL_version(OPENSSL_VERSION));
        printf("load:     %s at the end (%ld CPUs online)\n", loadavg, sysconf(_SC_NPROCESSORS_ONLN));
        printf("data:     %s%s: %zu logs, %zu bytes, %zu events\n", dir, shown, set->n, set->total_bytes, events);
        printf("timing:   phases interleaved round by round; %llu rounds, %.2f s in the core phase, "
               "%.2f s in all\n\n",
               (unsigned long long) ph[PHASE_CORE].rounds, (double) ph[PHASE_CORE].wall_ns / 1e9,
               (double) (ph[0].wall_ns + ph[1].wall_ns + ph[2].wall_ns + ph[3].wall_ns + ph[4].wall_ns) / 1e9);

        printf("                                                             MB/s wall  MB/s CPU\n");
        printf("core   vc_eventlog_parse + vc_replay_update(checks) + free   %9.1f %9.1f\n", mb[PHASE_CORE],
               mb_cpu[PHASE_CORE]);
        if (core_only) {
                printf("(--core-only: no baseline or raw SHA numbers)\n");
                return;
        }
        printf("base   bare EVP: hash data + extend, per event and bank      %9.1f %9.1f\n", mb[PHASE_BASE],
               mb_cpu[PHASE_BASE]);
        printf("raw    SHA-256 EVP_Digest one-shot over each log buffer      %9.1f %9.1f\n", mb[PHASE_SHA256],
               mb_cpu[PHASE_SHA256]);
        printf("raw    SHA-1   EVP_Digest one-shot over each log buffer      %9.1f %9.1f\n", mb[PHASE_SHA1],
               mb_cpu[PHASE_SHA1]);
        printf("raw    SHA-256 64-byte inputs, reused EVP_MD_CTX             %9.1f %9.1f  (%.0f ns/hash)\n",
               mb[PHASE_SMALL], mb_cpu[PHASE_SMALL], small_ns);
        printf("\nratio  core / raw SHA-256 throughput:  %6.3f  (core time = %.2fx one SHA-256 pass over the log)\n",
               mb[PHASE_CORE] / mb[PHASE_SHA256], mb[PHASE_SHA256] / mb[PHASE_CORE]);
        printf("ratio  core / base throughput:         %6.3f  (core time = %.2fx the bare-EVP baseline)\n",
               mb[PHASE_CORE] / mb[PHASE_BASE], mb[PHASE_BASE] / mb[PHASE_CORE]);
        /* "On one core" is per CPU second: wall time also counts time the thread waited for a
         * CPU that other processes had. Both are printed; a gap between them is said. */
        printf("target core >= %.0f MB/s on one core:   %s (%.1f MB/s per CPU second, %.1f MB/s wall)\n",
               TARGET_MB_S, mb_cpu[PHASE_CORE] >= TARGET_MB_S ? "met" : "NOT met", mb_cpu[PHASE_CORE], mb[PHASE_CORE]);
        if (mb[PHASE_CORE] < 0.9 * mb_cpu[PHASE_CORE])
                printf("note: wall throughput is %.0f%% below CPU throughput: other processes took the CPU "
                       "(load average %s); rerun on a quiet machine for wall numbers\n",
                       100.0 * (1.0 - mb[PHASE_CORE] / mb_cpu[PHASE_CORE]), loadavg);
        putchar('\n');
}

/* Mean time per run of each log (the representative ones, or every one when verbose). */
static void report_logs(const bench_set *set, uint64_t rounds, bool verbose) {
        printf("per log: mean us per run over %llu runs; ratios are of time\n", (unsigned long long) rounds);
        printf("  %-60s %6s %6s %5s %8s %8s %8s %10s %11s\n", "log", "bytes", "events", "banks", "core us", "base us",
               "sha256 us", "core/base", "core/sha256");
        for (size_t i = 0; i < set->n; i++) {
                const bench_log *l = &set->logs[i];
                if (!verbose && !is_representative(l->name))
                        continue;
                double cus = (double) l->core_ns / 1e3 / (double) l->core_runs;
                double bus = (double) l->base_ns / 1e3 / (double) l->base_runs;
                double sus = (double) l->sha256_ns / 1e3 / (double) l->sha256_runs;
                unsigned banks = l->parsed->format == VC_LOG_CRYPTO_AGILE ? l->parsed->spec.n_algs : 1;
                printf("  %-60s %6zu %6zu %5u %8.1f %8.1f %9.1f %9.2fx %10.2fx\n", l->name, l->len, l->n_events,
                       banks, cus, bus, sus, bus > 0 ? cus / bus : 0.0, sus > 0 ? cus / sus : 0.0);
        }
        if (!verbose)
                printf("  (-v for every log)\n");
}

int main(int argc, char **argv) {
        bench_args a;
        int r = parse_args(argc, argv, &a);
        if (r >= 0)
                return r;

        bench_set set = {};
        const char *shown = "";
        if (load_logs(a.dir, &set, &shown) < 0) {
                bench_set_done(&set);
                return 1;
        }

        bench_ctx b;
        r = bench_ctx_init(&b);
        if (r < 0) {
                fprintf(stderr, "bench-eventlog: cannot set up hashing (OpenSSL): %s\n", strerror(-r));
                goto out;
        }
        r = check_logs(&b, &set, a.dir, shown);
        if (r < 0)
                goto out;

        phase ph[N_PHASES] = {};
        r = run_rounds(&b, &set, (uint64_t) (a.seconds * 1e9), a.core_only, ph);
        if (r < 0) {
                fprintf(stderr, "bench-eventlog: hashing failed: %s\n", strerror(-r));
                goto out;
        }
        report_phases(&set, a.dir, shown, ph, a.core_only);
        if (!a.core_only)
                report_logs(&set, ph[PHASE_CORE].rounds, a.verbose);
        r = 0;
out:
        bench_ctx_done(&b);
        bench_set_done(&set);
        return r < 0 ? 1 : 0;
}
