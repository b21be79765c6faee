/* SPDX-License-Identifier: Apache-2.0 */
/* One full verification in-process, as `vouchctl quote verify --eventlog --golden` does it,
 * on the real quotes of the shared dir (quotes/<name>/ with an eventlog.bin), part by part:
 *   quote     parse TPMS_ATTEST + TPMT_SIGNATURE, verify: signature, nonce, PCR digest
 *   log       parse the event log, check every bank's digests against the data, replay every
 *             bank (as `vouchctl quote verify --eventlog` and `eventlog show` do)
 *   log-attest parse the event log, replay the banks the quote selects and the set reads,
 *             check the digests of the set's bank in the PCRs it evaluates (vouchd's
 *             attestation: vc_golden_banks(), vc_golden_check_digests())
 *   parse     golden set JSON -> vc_golden (the set made from the same log by golden create)
 *   evaluate  the golden evaluation alone (on the log parsed and replayed once)
 *   full      quote + log-attest + evaluate with the set parsed once, as vouchd attests a
 *             device whose whole log it evaluates; full+parse also parses the set
 *   full-every-bank  quote + log + evaluate, as `vouchctl quote verify --eventlog --golden`
 * Each part runs round by round, interleaved with the others, for --seconds; the figure is
 * thread CPU per operation (CLOCK_THREAD_CPUTIME_ID), next to the quote's own cost in the same
 * run. Prints numbers; never fails on timing (STYLE.md). Issue 17's target: evaluate <= quote.
 *
 *   bench-verify [--seconds S] [QUOTES_DIR]   (default: the shared dir's quotes/) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eventlog.h"
#include "fileio.h"
#include "golden.h"
#include "pcrs.h"
#include "quote.h"
#include "replay.h"

#ifndef BENCH_SHARED_DIR
#define BENCH_SHARED_DIR "../shared"
#endif

#define SAMPLE_FILE_MAX (64u << 20)

static double thread_us(void) {
        struct timespec t;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return (double) t.tv_sec * 1e6 + (double) t.tv_nsec / 1e3;
}

/* The files of a quote directory (quotes/<name>/), read whole. */
enum { F_ATTEST, F_SIG, F_LOG, F_AK, F_PCRS, F_NONCE, F_N };
static const char *const sample_files[F_N] = { "quote.tpms_attest", "quote.tpmt_signature", "eventlog.bin",
                                               "ak.tpmt_public",    "pcrs.json",            "nonce.hex" };

typedef struct sample_file {
        uint8_t *data;
        size_t len;
} sample_file;

/* A log parsed, every event's digests checked against its data, and replayed (run_log). */
typedef struct replayed_log {
        vc_eventlog *log;
        vc_event_check *checks;
        vc_pcr_set *pcrs;       /* allocated by the caller of run_log */
} replayed_log;

static void replayed_log_done(replayed_log *l) {
        vc_eventlog_free(l->log);
        free(l->checks);
        free(l->pcrs);
}

/* What one quote directory holds, loaded once. */
typedef struct sample {
        sample_file file[F_N];
        uint8_t nonce[64];
        size_t nonce_len;
        vc_ak *ak;
        vc_pcr_set pcrs;
        char *golden_json;
        vc_golden *golden;
        bool golden_usable;     /* the quote covers the set's bank (else: quote and log only) */
        uint32_t banks;         /* the quote's and the set's banks (vc_alg_index() bits) */
        replayed_log once;      /* the log parsed and replayed once, for the evaluation measured alone */
} sample;

/* The parts; each returns 0 and keeps nothing. */
enum { P_QUOTE, P_LOG, P_LOG_ATTEST, P_PARSE, P_EVAL, P_FULL, P_FULL_PARSE, P_FULL_EVERY_BANK, P_N };
static const char *const part_names[P_N] = { "quote", "log", "log-attest", "parse", "evaluate", "full", "full+parse",
                                             "full-every-bank" };

static int run_quote(sample *s, vc_quote_result *res, const vc_pcr_set *replayed) {
        vc_quote *q = NULL;
        vc_error err;
        const sample_file *attest = &s->file[F_ATTEST], *sig = &s->file[F_SIG];
        int r = vc_quote_parse(attest->data, attest->len, sig->data, sig->len, &q, &err);
        /* SHA-1 signed quotes (windows-gce) are measured too; vouchd refuses them by default */
        vc_quote_policy policy = { .allow_sha1 = true };
        if (r == 0)
                r = vc_quote_verify(q, s->ak, &s->pcrs, s->nonce, s->nonce_len, NULL, 0, replayed, &policy, res);
        if (r == 0 && res->status != VC_QUOTE_VALID)
                r = -EBADMSG;
        vc_quote_free(q);
        return r;
}

/* log parse + replay + digest checks into l (replayed_log_done frees what it holds).
 * g NULL: every bank checked and replayed (vouchctl); else as vouchd's attestation does it:
 * the quote's and g's banks replayed (s->banks), the digests g's evaluation reads checked */
static int run_log(sample *s, vc_hasher *h, const vc_golden *g, replayed_log *l) {
        vc_replay rs;
        vc_error err;
        vc_replay_init_banks(&rs, g ? s->banks : 0);
        int r = vc_eventlog_parse(s->file[F_LOG].data, s->file[F_LOG].len, &l->log, &err);
        if (r < 0)
                return r;
        l->checks = calloc(l->log->n_events ? l->log->n_events : 1, sizeof(*l->checks));
        if (!l->checks)
                return -ENOMEM;
        r = vc_replay_update(h, l->log, &rs, g ? NULL : l->checks, &err);
        if (r == 0 && g)
                r = vc_golden_check_digests(h, g, l->log, l->checks);
        *l->pcrs = rs.pcrs;
        return r;
}

static int run_part(int part, sample *s, vc_hasher *h) {
        replayed_log rl = { .pcrs = calloc(1, sizeof(*rl.pcrs)) };
        vc_golden *g = NULL;
        vc_quote_result res;
        vc_evaluation ev = { 0 };
        vc_error err;
        int r = rl.pcrs ? 0 : -ENOMEM;
        bool full = part == P_FULL || part == P_FULL_PARSE || part == P_FULL_EVERY_BANK;
        if (r == 0 && part == P_QUOTE)
                r = run_quote(s, &res, NULL);
        if (r == 0 && (part == P_PARSE || part == P_FULL_PARSE))
                r = vc_golden_parse(s->golden_json, strlen(s->golden_json), &g, &err);
        const vc_golden *use = g ? g : s->golden;
        if (r == 0 && (part == P_LOG || part == P_FULL_EVERY_BANK))
                r = run_log(s, h, NULL, &rl);
        if (r == 0 && (part == P_LOG_ATTEST || part == P_FULL || part == P_FULL_PARSE))
                r = run_log(s, h, use, &rl);
        if (r == 0 && full)
                r = run_quote(s, &res, rl.pcrs);
        if (r == 0 && (part == P_EVAL || full)) {
                bool alone = part == P_EVAL; /* on the log parsed once */
                const replayed_log *on = alone ? &s->once : &rl;
                uint32_t attested = alone ? 0xffffffu : vc_quote_attested(&res, use->bank);
                r = vc_golden_evaluate(use, on->log, on->checks, on->pcrs, attested, &ev);
                if (r == 0 && ev.trust != VC_TRUST_TRUSTED)
                        r = -EBADMSG;
                vc_evaluation_done(&ev);
        }
        vc_golden_free(g);
        replayed_log_done(&rl);
        return r;
}

static int load(const char *dir, sample *s, vc_hasher *h) {
        vc_error err;
        memset(s, 0, sizeof(*s));
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = dfd < 0 ? -errno : 0;
        for (int i = 0; r == 0 && i < F_N; i++)
                r = vu_read_file(dfd, sample_files[i], SAMPLE_FILE_MAX, &s->file[i].data, &s->file[i].len);
        if (dfd >= 0)
                close(dfd);
        if (r < 0)
                return -ENOENT;
        size_t nl = s->file[F_NONCE].len;
        const char *nonce_hex = (const char *) s->file[F_NONCE].data;
        while (nl && (nonce_hex[nl - 1] == '\n' || nonce_hex[nl - 1] == '\r'))
                nl--;
        int n = vc_unhex(nonce_hex, nl, s->nonce, sizeof(s->nonce));
        if (n < 0 || vc_ak_load(s->file[F_AK].data, s->file[F_AK].len, &s->ak, &err) < 0 ||
            vc_pcrs_parse(s->file[F_PCRS].data, s->file[F_PCRS].len, &s->pcrs, &err) < 0)
                return -EBADMSG;
        s->nonce_len = (size_t) n;
        /* the golden set of this very log, as an operator makes it (golden create) */
        s->once.pcrs = calloc(1, sizeof(*s->once.pcrs));
        r = s->once.pcrs ? run_log(s, h, NULL, &s->once) : -ENOMEM;
        vc_golden *g = NULL;
        if (r == 0)
                r = vc_golden_create(s->once.log, s->once.checks, s->once.pcrs, "bench", NULL, &g, &err);
        if (r == 0)
                r = vc_golden_to_json(g, &s->golden_json);
        vc_golden_free(g);
        if (r == 0)
                r = vc_golden_parse(s->golden_json, strlen(s->golden_json), &s->golden, &err);
        vc_quote *q = NULL;
        if (r == 0)
                r = vc_quote_parse(s->file[F_ATTEST].data, s->file[F_ATTEST].len, s->file[F_SIG].data, s->file[F_SIG].len,
                                   &q, &err);
        if (r == 0)
                s->banks = vc_quote_banks(q) | vc_golden_banks(s->golden);
        vc_quote_free(q);
        /* a set is judged only through a quote of its bank (vouchd asks for that bank) */
        s->golden_usable = r == 0 && run_part(P_FULL, s, h) == 0 && run_part(P_FULL_EVERY_BANK, s, h) == 0;
        return r;
}

static void unload(sample *s) {
        for (int i = 0; i < F_N; i++)
                free(s->file[i].data);
        vc_ak_free(s->ak);
        free(s->golden_json);
        vc_golden_free(s->golden);
        replayed_log_done(&s->once);
}

static void bench_one(const char *name, sample *s, vc_hasher *h, double seconds) {
        double spent[P_N] = { 0 };
        unsigned long ops[P_N] = { 0 };
        int parts = s->golden_usable ? P_N : P_LOG + 1;
        /* rounds of ~20 ms per part, interleaved, so that load falls on every part alike */
        for (double t0 = thread_us(); thread_us() - t0 < seconds * 1e6;)
                for (int p = 0; p < parts; p++) {
                        double a = thread_us(), b = a;
                        while (b - a < 20000) {
                                if (run_part(p, s, h) < 0) {
                                        fprintf(stderr, "bench-verify: %s: part %s failed\n", name, part_names[p]);
                                        return;
                                }
                                ops[p]++;
                                b = thread_us();
                        }
                        spent[p] += b - a;
                }
        double q = spent[P_QUOTE] / (double) ops[P_QUOTE];
        printf("%-22s log %7zu B, golden %6zu B JSON:", name, s->file[F_LOG].len, strlen(s->golden_json));
        for (int p = 0; p < parts; p++) {
                double us = spent[p] / (double) ops[p];
                printf("  %s %.1f us (%.2fx quote)", part_names[p], us, us / q);
        }
        if (!s->golden_usable)
                printf("  (golden parts left out: the quote does not cover the set's bank)");
        putchar('\n');
        fflush(stdout);
}

int main(int argc, char **argv) {
        double seconds = 3;
        const char *dir = NULL;
        char def[4096];
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
                        seconds = atof(argv[++i]);
                else if (argv[i][0] != '-')
                        dir = argv[i];
                else {
                        fprintf(stderr, "usage: bench-verify [--seconds S] [QUOTES_DIR]\n");
                        return 2;
                }
        }
        if (!dir) {
                const char *sh = getenv("VOUCH_SHARED_DIR");
                snprintf(def, sizeof(def), "%s/quotes", sh && *sh ? sh : BENCH_SHARED_DIR);
                dir = def;
        }
        DIR *d = opendir(dir);
        if (!d) {
                fprintf(stderr, "bench-verify: %s: %s (set VOUCH_SHARED_DIR)\n", dir, strerror(errno));
                return 77;
        }
        char *names[64];
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d)) && n < 64;) {
                char sub[4400];
                struct stat st;
                snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
                if (de->d_name[0] != '.' && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                        names[n++] = strdup(de->d_name);
        }
        closedir(d);
        vc_hasher *h = NULL;
        if (vc_hasher_new(&h) < 0)
                return 1;
        printf("bench-verify: thread CPU per operation, %.1f s per quote, parts interleaved\n", seconds);
        int done = 0;
        for (size_t i = 0; i < n; i++) {
                char sub[4400];
                sample s;
                snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]);
                if (load(sub, &s, h) == 0) {
                        bench_one(names[i], &s, h, seconds);
                        done++;
                } else {
                        printf("%-22s skipped (no event log, or its golden set could not be made)\n", names[i]);
                }
                unload(&s);
                free(names[i]);
        }
        vc_hasher_free(h);
        return done ? 0 : 1;
}
