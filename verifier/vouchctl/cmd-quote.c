/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl quote verify */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "golden.h"
#include "pcrs.h"
#include "quote.h"
#include "replay.h"
#include "vouchctl.h"

#define NONCE_MAX 64 /* TPM2B_DATA: at most the largest digest */

static const char quote_usage[] =
        "Usage: vouchctl quote verify --ak AK --msg QUOTE --sig SIG --pcrs PCRS --nonce HEX [--eventlog FILE]\n"
        "                             [--golden FILE] [--allow-sha1]\n"
        "  --ak AK         attestation key: PEM public key, TPM2B_PUBLIC (tpm2_createak -u) or TPMT_PUBLIC\n"
        "  --msg QUOTE     TPMS_ATTEST bytes (tpm2_quote -m)\n"
        "  --sig SIG       TPMT_SIGNATURE (tpm2_quote -s)\n"
        "  --pcrs PCRS     PCR values: tpm2_quote -o serialized file, or JSON {\"sha256\": {\"0\": \"hex\"}}\n"
        "  --nonce HEX     the expected qualifying data (\"\" for none)\n"
        "  --eventlog FILE the event log must replay to the quoted PCR values\n"
        "  --golden FILE   then evaluate the log against this golden set (needs --eventlog); only\n"
        "                  PCRs the quote covers in the set's bank, and the log accounts for, count\n"
        "  --allow-sha1    accept SHA-1 as the signature hash (refused by default)\n"
        "Exit status: 0 valid, 1 invalid (reason on stderr), 2 usage error or unreadable input.\n";

static void print_mask(const char *what, uint32_t mask) {
        fprintf(stderr, "vouchctl: note: %s:", what);
        for (unsigned i = 0; i < VC_PCR_COUNT; i++)
                if (mask & (1u << i))
                        fprintf(stderr, " %u", i);
        fputc('\n', stderr);
}

/* What the quote and the log together attest, for people. */
static void print_coverage(const vc_quote_result *res, const vc_pcr_set *replayed) {
        for (int b = 0; b < VC_NUM_ALGS; b++) {
                char what[160];
                const char *bank = vc_alg_at(b)->name;
                if (res->log_unexplained[b]) {
                        snprintf(what, sizeof(what), "%s PCRs the quote covers but the event log does not account for "
                                                     "(nothing in them is attested)", bank);
                        print_mask(what, res->log_unexplained[b]);
                }
                const vc_pcr_bank *rb = vc_pcr_set_find(replayed, vc_alg_at(b)->alg);
                if (rb && rb->mask & ~res->quoted[b]) {
                        snprintf(what, sizeof(what), "%s PCRs the event log extends that the quote does not cover "
                                                     "(their %s digests are not attested)", bank, bank);
                        print_mask(what, rb->mask & ~res->quoted[b]);
                }
        }
}

/* The files of a quote verification, in the order they are read. */
enum { IN_AK, IN_GOLDEN, IN_MSG, IN_SIG, IN_PCRS, IN_LOG, IN_N };

/* One quote verification: what the command line names, the files read, what they parse to. */
typedef struct quote_job {
        struct {
                const char *path;       /* NULL: not given */
                uint8_t *data;
                size_t len;
        } in[IN_N];
        const char *nonce_hex;
        uint8_t nonce[NONCE_MAX];
        size_t nonce_len;
        vc_quote_policy policy;
        vc_ak *ak;
        vc_golden *golden;
        vc_quote *q;
        vc_pcr_set pcrs;
        loaded_log ll;                  /* the log parsed and replayed (ll.replay.pcrs) */
} quote_job;

static void quote_job_done(quote_job *j) {
        for (size_t i = 0; i < IN_N; i++)
                free(j->in[i].data);
        vc_ak_free(j->ak);
        vc_golden_free(j->golden);
        vc_quote_free(j->q);
        loaded_log_done(&j->ll);
}

/* The files, in order: the key and the golden set (unreadable: exit 2; the golden set
 * parsed at once), then the evidence, which is invalid evidence (exit 1) when over its
 * size limit, and exit 2 when unreadable. */
static int quote_read(quote_job *j) {
        static const struct {
                size_t max;
                int too_large;          /* the exit code for a file over max */
        } limits[IN_N] = {
                [IN_AK] = { VC_AK_MAX_FILE, EXIT_USAGE },        [IN_GOLDEN] = { VC_GOLDEN_MAX_FILE, EXIT_USAGE },
                [IN_MSG] = { VC_ATTEST_MAX + 2, EXIT_INVALID },  [IN_SIG] = { VC_SIGNATURE_MAX, EXIT_INVALID },
                [IN_PCRS] = { VC_PCRS_MAX_FILE, EXIT_INVALID },  [IN_LOG] = { VC_EVENTLOG_MAX_SIZE, EXIT_INVALID },
        };
        vc_error err;
        char msgbuf[512];
        for (size_t i = 0; i < IN_N; i++) {
                if (!j->in[i].path)
                        continue;
                int r = read_input(j->in[i].path, limits[i].max, &j->in[i].data, &j->in[i].len);
                if (r < 0)
                        return r == -E2BIG ? limits[i].too_large : EXIT_USAGE;
                if (i == IN_GOLDEN && vc_golden_parse((const char *) j->in[i].data, j->in[i].len, &j->golden, &err) < 0) {
                        fprintf(stderr, "vouchctl: %s: %s\n", j->in[i].path, vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                        return EXIT_USAGE;
                }
        }
        return EXIT_OK;
}

/* The key (an unusable one: exit 2), then the evidence: malformed evidence is invalid
 * evidence (exit 1). The log is parsed, digest-checked and replayed into j->ll. */
static int quote_parse(quote_job *j) {
        vc_error err;
        char msgbuf[512];
        if (vc_ak_load(j->in[IN_AK].data, j->in[IN_AK].len, &j->ak, &err) < 0) {
                fprintf(stderr, "vouchctl: %s: %s\n", j->in[IN_AK].path, vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                return EXIT_USAGE;
        }
        if (!j->ak->has_public)
                fprintf(stderr, "vouchctl: note: %s is a plain public key: whether it is a restricted TPM signing key "
                                "cannot be checked (give the TPM2B_PUBLIC from tpm2_createak -u to check it)\n",
                        j->in[IN_AK].path);
        if (vc_quote_parse(j->in[IN_MSG].data, j->in[IN_MSG].len, j->in[IN_SIG].data, j->in[IN_SIG].len, &j->q, &err) <
            0) {
                fprintf(stderr, "vouchctl: quote invalid: %s\n", vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                return EXIT_INVALID;
        }
        if (vc_pcrs_parse(j->in[IN_PCRS].data, j->in[IN_PCRS].len, &j->pcrs, &err) < 0) {
                fprintf(stderr, "vouchctl: %s: PCR values invalid: %s\n", j->in[IN_PCRS].path,
                        vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                return EXIT_INVALID;
        }
        if (!j->in[IN_LOG].path)
                return EXIT_OK;
        loaded_log *l = &j->ll;
        if (vc_hasher_new(&l->hasher) < 0)
                return EXIT_USAGE;
        vc_replay_init(&l->replay);
        if (vc_eventlog_parse(j->in[IN_LOG].data, j->in[IN_LOG].len, &l->log, &err) < 0 ||
            !(l->checks = calloc(l->log->n_events, sizeof(*l->checks))) ||
            vc_replay_update(l->hasher, l->log, &l->replay, l->checks, &err) < 0) {
                fprintf(stderr, "vouchctl: %s: event log invalid: %s\n", j->in[IN_LOG].path,
                        vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                return EXIT_INVALID;
        }
        return EXIT_OK;
}

/* The golden set's judgement of the log, over the PCRs the quote attests in its bank. */
static int quote_golden(const quote_job *j, const vc_quote_result *res) {
        vc_evaluation ev = { 0 };
        uint32_t attested = vc_quote_attested(res, j->golden->bank);
        if (vc_golden_evaluate(j->golden, j->ll.log, j->ll.checks, &j->ll.replay.pcrs, attested, &ev) < 0) {
                fprintf(stderr, "vouchctl: could not evaluate the golden set (out of memory)\n");
                return EXIT_USAGE;
        }
        printf("%s: golden set %s version %lld", ev.trust == VC_TRUST_TRUSTED ? "TRUSTED" : "UNTRUSTED",
               j->golden->name, (long long) j->golden->version);
        if (ev.n_findings)
                printf(", %zu finding%s", ev.n_findings, ev.n_findings == 1 ? "" : "s");
        putchar('\n');
        for (size_t i = 0; i < ev.n_findings; i++)
                printf("  [%s] %s\n", ev.findings[i].rule, ev.findings[i].explanation);
        int ret = ev.trust == VC_TRUST_TRUSTED ? EXIT_OK : EXIT_INVALID;
        vc_evaluation_done(&ev);
        return ret;
}

/* The quote against the key, the nonce, the PCR values and the replayed log; then the
 * golden set, if any. */
static int quote_check(const quote_job *j) {
        vc_quote_result res;
        bool with_log = j->in[IN_LOG].path != NULL;
        if (vc_quote_verify(j->q, j->ak, &j->pcrs, j->nonce, j->nonce_len, NULL, 0, with_log ? &j->ll.replay.pcrs : NULL,
                            &j->policy, &res) < 0) {
                fprintf(stderr, "vouchctl: could not evaluate the quote (out of memory or OpenSSL failure)\n");
                return EXIT_USAGE;
        }
        if (res.status != VC_QUOTE_VALID) {
                fprintf(stderr, "vouchctl: quote INVALID (%s): %s\n", vc_quote_check_name(res.failed), res.reason);
                return EXIT_INVALID;
        }
        printf("quote valid: signature, nonce, PCR digest%s; clock %llu, resetCount %u, restartCount %u\n",
               with_log ? ", event log replay" : "", (unsigned long long) res.clock, res.reset_count,
               res.restart_count);
        if (with_log)
                print_coverage(&res, &j->ll.replay.pcrs);
        return j->golden ? quote_golden(j, &res) : EXIT_OK;
}

static int quote_verify(int argc, char **argv) {
        quote_job j = { 0 };
        const cmd_option options[] = {
                { "ak", .arg = &j.in[IN_AK].path, .required = true },
                { "msg", .arg = &j.in[IN_MSG].path, .required = true },
                { "sig", .arg = &j.in[IN_SIG].path, .required = true },
                { "pcrs", .arg = &j.in[IN_PCRS].path, .required = true },
                { "nonce", .arg = &j.nonce_hex, .required = true },
                { "eventlog", .arg = &j.in[IN_LOG].path },
                { "golden", .arg = &j.in[IN_GOLDEN].path },
                { "allow-sha1", .flag = &j.policy.allow_sha1 },
                {},
        };
        const cmd_spec spec = { quote_usage, options, 0,
                                "vouchctl quote verify: --ak, --msg, --sig, --pcrs and --nonce are required" };
        int n, ret;

        if (!parse_command(argc, argv, &spec, &ret))
                return ret;
        if (j.in[IN_GOLDEN].path && !j.in[IN_LOG].path) {
                fprintf(stderr, "vouchctl quote verify: --golden needs --eventlog\n");
                return EXIT_USAGE;
        }
        n = vc_unhex(j.nonce_hex, strlen(j.nonce_hex), j.nonce, sizeof(j.nonce));
        if (n < 0) {
                fprintf(stderr, "vouchctl: --nonce: %s (at most %d bytes of hex)\n",
                        n == -E2BIG ? "too long" : "not hex", NONCE_MAX);
                return EXIT_USAGE;
        }
        j.nonce_len = (size_t) n;
        ret = quote_read(&j);
        if (ret == EXIT_OK)
                ret = quote_parse(&j);
        if (ret == EXIT_OK)
                ret = quote_check(&j);
        quote_job_done(&j);
        return ret;
}

int cmd_quote(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "verify") == 0)
                return quote_verify(argc, argv);
        fputs(quote_usage, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? EXIT_OK : EXIT_USAGE;
}
