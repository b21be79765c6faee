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

/* One quote verification: what the command line names, the files read, what they parse to. */
typedef struct quote_job {
        const char *ak_path, *msg_path, *sig_path, *pcrs_path, *nonce_hex, *log_path, *golden_path;
        vc_quote_policy policy;
        uint8_t nonce[NONCE_MAX];
        size_t nonce_len;
        uint8_t *ak_buf, *msg, *sig, *pcrs_buf, *log_buf;
        size_t ak_len, msg_len, sig_len, pcrs_len, log_len;
        vc_golden *golden;
        vc_ak *ak;
        vc_quote *q;
        vc_pcr_set *pcrs, *replayed;
        vc_hasher *hasher;
        vc_eventlog *log;
        vc_event_check *checks;
} quote_job;

static void quote_job_done(quote_job *j) {
        free(j->ak_buf);
        free(j->msg);
        free(j->sig);
        free(j->pcrs_buf);
        free(j->log_buf);
        free(j->pcrs);
        free(j->replayed);
        vc_ak_free(j->ak);
        vc_quote_free(j->q);
        vc_eventlog_free(j->log);
        vc_hasher_free(j->hasher);
        vc_golden_free(j->golden);
        free(j->checks);
}

/* The files: the key and the golden set (unreadable: exit 2), then the evidence, which is
 * invalid evidence (exit 1) when over its size limit, and exit 2 when unreadable. */
static int quote_read(quote_job *j) {
        vc_error err;
        char msgbuf[512];
        if (read_input(j->ak_path, VC_AK_MAX_FILE, &j->ak_buf, &j->ak_len) < 0)
                return EXIT_USAGE;
        if (j->golden_path) {
                uint8_t *gbuf;
                size_t glen;
                if (read_input(j->golden_path, VC_GOLDEN_MAX_FILE, &gbuf, &glen) < 0)
                        return EXIT_USAGE;
                int r = vc_golden_parse((const char *) gbuf, glen, &j->golden, &err);
                free(gbuf);
                if (r < 0) {
                        fprintf(stderr, "vouchctl: %s: %s\n", j->golden_path, vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                        return EXIT_USAGE;
                }
        }
        const struct {
                const char *path;
                size_t max;
                uint8_t **buf;
                size_t *len;
        } evidence[] = {
                { j->msg_path, VC_ATTEST_MAX + 2, &j->msg, &j->msg_len },
                { j->sig_path, VC_SIGNATURE_MAX, &j->sig, &j->sig_len },
                { j->pcrs_path, VC_PCRS_MAX_FILE, &j->pcrs_buf, &j->pcrs_len },
                { j->log_path, VC_EVENTLOG_MAX_SIZE, &j->log_buf, &j->log_len },
        };
        for (size_t i = 0; i < sizeof(evidence) / sizeof(evidence[0]); i++) {
                if (!evidence[i].path)
                        continue;
                int r = read_input(evidence[i].path, evidence[i].max, evidence[i].buf, evidence[i].len);
                if (r < 0)
                        return r == -E2BIG ? EXIT_INVALID : EXIT_USAGE;
        }
        return EXIT_OK;
}

/* The key (an unusable one: exit 2), then the evidence: malformed evidence is invalid
 * evidence (exit 1). The log is parsed and replayed into j->replayed. */
static int quote_parse(quote_job *j) {
        vc_error err;
        char msgbuf[512];
        if (vc_ak_load(j->ak_buf, j->ak_len, &j->ak, &err) < 0) {
                fprintf(stderr, "vouchctl: %s: %s\n", j->ak_path, vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                return EXIT_USAGE;
        }
        if (!j->ak->has_public)
                fprintf(stderr, "vouchctl: note: %s is a plain public key: whether it is a restricted TPM signing key "
                                "cannot be checked (give the TPM2B_PUBLIC from tpm2_createak -u to check it)\n",
                        j->ak_path);
        if (vc_quote_parse(j->msg, j->msg_len, j->sig, j->sig_len, &j->q, &err) < 0) {
                fprintf(stderr, "vouchctl: quote invalid: %s\n", vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                return EXIT_INVALID;
        }
        j->pcrs = calloc(1, sizeof(*j->pcrs));
        j->replayed = calloc(1, sizeof(*j->replayed));
        if (!j->pcrs || !j->replayed || vc_hasher_new(&j->hasher) < 0)
                return EXIT_USAGE;
        if (vc_pcrs_parse(j->pcrs_buf, j->pcrs_len, j->pcrs, &err) < 0) {
                fprintf(stderr, "vouchctl: %s: PCR values invalid: %s\n", j->pcrs_path,
                        vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                return EXIT_INVALID;
        }
        if (j->log_path) {
                vc_replay rs;
                vc_replay_init(&rs);
                if (vc_eventlog_parse(j->log_buf, j->log_len, &j->log, &err) < 0 ||
                    !(j->checks = calloc(j->log->n_events, sizeof(*j->checks))) ||
                    vc_replay_update(j->hasher, j->log, &rs, j->checks, &err) < 0) {
                        fprintf(stderr, "vouchctl: %s: event log invalid: %s\n", j->log_path,
                                vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                        return EXIT_INVALID;
                }
                *j->replayed = rs.pcrs;
        }
        return EXIT_OK;
}

/* The golden set's judgement of the log, over the PCRs the quote attests in its bank. */
static int quote_golden(const quote_job *j, const vc_quote_result *res) {
        vc_evaluation ev = { 0 };
        uint32_t attested = vc_quote_attested(res, j->golden->bank);
        if (vc_golden_evaluate(j->golden, j->log, j->checks, j->replayed, attested, &ev) < 0) {
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
        if (vc_quote_verify(j->q, j->ak, j->pcrs, j->nonce, j->nonce_len, NULL, 0, j->log_path ? j->replayed : NULL,
                            &j->policy, &res) < 0) {
                fprintf(stderr, "vouchctl: could not evaluate the quote (out of memory or OpenSSL failure)\n");
                return EXIT_USAGE;
        }
        if (res.status != VC_QUOTE_VALID) {
                fprintf(stderr, "vouchctl: quote INVALID (%s): %s\n", vc_quote_check_name(res.failed), res.reason);
                return EXIT_INVALID;
        }
        printf("quote valid: signature, nonce, PCR digest%s; clock %llu, resetCount %u, restartCount %u\n",
               j->log_path ? ", event log replay" : "", (unsigned long long) res.clock, res.reset_count,
               res.restart_count);
        if (j->log_path)
                print_coverage(&res, j->replayed);
        return j->golden ? quote_golden(j, &res) : EXIT_OK;
}

static int quote_verify(int argc, char **argv) {
        quote_job j = { 0 };
        const cmd_option options[] = {
                { "ak", .arg = &j.ak_path },         { "msg", .arg = &j.msg_path },
                { "sig", .arg = &j.sig_path },       { "pcrs", .arg = &j.pcrs_path },
                { "nonce", .arg = &j.nonce_hex },    { "eventlog", .arg = &j.log_path },
                { "golden", .arg = &j.golden_path }, { "allow-sha1", .flag = &j.policy.allow_sha1 },
                {},
        };
        int n, ret;

        if (!parse_command(argc, argv, options, quote_usage, &ret))
                return ret;
        if (optind != argc || !j.ak_path || !j.msg_path || !j.sig_path || !j.pcrs_path || !j.nonce_hex) {
                fprintf(stderr, "vouchctl quote verify: --ak, --msg, --sig, --pcrs and --nonce are required\n");
                fputs(quote_usage, stderr);
                return EXIT_USAGE;
        }
        if (j.golden_path && !j.log_path) {
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
