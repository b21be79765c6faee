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

static int quote_verify(int argc, char **argv) {
        const char *ak_path = NULL, *msg_path = NULL, *sig_path = NULL, *pcrs_path = NULL, *nonce_hex = NULL,
                   *log_path = NULL, *golden_path = NULL;
        vc_quote_policy policy = { 0 };
        const cmd_option options[] = {
                { "ak", .arg = &ak_path },         { "msg", .arg = &msg_path },      { "sig", .arg = &sig_path },
                { "pcrs", .arg = &pcrs_path },     { "nonce", .arg = &nonce_hex },   { "eventlog", .arg = &log_path },
                { "golden", .arg = &golden_path }, { "allow-sha1", .flag = &policy.allow_sha1 }, {},
        };
        vc_golden *golden = NULL;
        vc_event_check *checks = NULL;
        uint8_t *ak_buf = NULL, *msg = NULL, *sig = NULL, *pcrs_buf = NULL, *log_buf = NULL;
        size_t ak_len, msg_len, sig_len, pcrs_len, log_len;
        uint8_t nonce[NONCE_MAX];
        vc_ak *ak = NULL;
        vc_quote *q = NULL;
        vc_eventlog *log = NULL;
        vc_hasher *hasher = NULL;
        vc_pcr_set *pcrs = NULL, *replayed = NULL;
        vc_quote_result res;
        vc_error err;
        char msgbuf[512];
        int n, ret = EXIT_USAGE;

        if (!parse_command(argc, argv, options, quote_usage, &ret))
                return ret;
        if (optind != argc || !ak_path || !msg_path || !sig_path || !pcrs_path || !nonce_hex) {
                fprintf(stderr, "vouchctl quote verify: --ak, --msg, --sig, --pcrs and --nonce are required\n");
                fputs(quote_usage, stderr);
                return EXIT_USAGE;
        }
        if (golden_path && !log_path) {
                fprintf(stderr, "vouchctl quote verify: --golden needs --eventlog\n");
                return EXIT_USAGE;
        }
        n = vc_unhex(nonce_hex, strlen(nonce_hex), nonce, sizeof(nonce));
        if (n < 0) {
                fprintf(stderr, "vouchctl: --nonce: %s (at most %d bytes of hex)\n",
                        n == -E2BIG ? "too long" : "not hex", NONCE_MAX);
                return EXIT_USAGE;
        }
        if (read_input(ak_path, VC_AK_MAX_FILE, &ak_buf, &ak_len) < 0)
                goto out;
        if (golden_path) {
                uint8_t *gbuf;
                size_t glen;
                if (read_input(golden_path, VC_GOLDEN_MAX_FILE, &gbuf, &glen) < 0)
                        goto out;
                int r = vc_golden_parse((const char *) gbuf, glen, &golden, &err);
                free(gbuf);
                if (r < 0) {
                        fprintf(stderr, "vouchctl: %s: %s\n", golden_path, vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                        goto out;
                }
        }
        /* Evidence over its size limit is invalid evidence (exit 1); unreadable is exit 2. */
        const struct {
                const char *path;
                size_t max;
                uint8_t **buf;
                size_t *len;
        } evidence[] = {
                { msg_path, VC_ATTEST_MAX + 2, &msg, &msg_len },
                { sig_path, VC_SIGNATURE_MAX, &sig, &sig_len },
                { pcrs_path, VC_PCRS_MAX_FILE, &pcrs_buf, &pcrs_len },
                { log_path, VC_EVENTLOG_MAX_SIZE, &log_buf, &log_len },
        };
        for (size_t i = 0; i < sizeof(evidence) / sizeof(evidence[0]); i++) {
                if (!evidence[i].path)
                        continue;
                int r = read_input(evidence[i].path, evidence[i].max, evidence[i].buf, evidence[i].len);
                if (r < 0) {
                        ret = r == -E2BIG ? EXIT_INVALID : EXIT_USAGE;
                        goto out;
                }
        }
        if (vc_ak_load(ak_buf, ak_len, &ak, &err) < 0) {
                fprintf(stderr, "vouchctl: %s: %s\n", ak_path, vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                goto out;
        }
        if (!ak->has_public)
                fprintf(stderr, "vouchctl: note: %s is a plain public key: whether it is a restricted TPM signing key "
                                "cannot be checked (give the TPM2B_PUBLIC from tpm2_createak -u to check it)\n",
                        ak_path);
        /* From here on, malformed evidence is invalid evidence: exit 1. */
        ret = EXIT_INVALID;
        if (vc_quote_parse(msg, msg_len, sig, sig_len, &q, &err) < 0) {
                fprintf(stderr, "vouchctl: quote invalid: %s\n", vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                goto out;
        }
        pcrs = calloc(1, sizeof(*pcrs));
        replayed = calloc(1, sizeof(*replayed));
        if (!pcrs || !replayed || vc_hasher_new(&hasher) < 0) {
                ret = EXIT_USAGE;
                goto out;
        }
        if (vc_pcrs_parse(pcrs_buf, pcrs_len, pcrs, &err) < 0) {
                fprintf(stderr, "vouchctl: %s: PCR values invalid: %s\n", pcrs_path,
                        vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                goto out;
        }
        if (log_path) {
                vc_replay rs;
                vc_replay_init(&rs);
                if (vc_eventlog_parse(log_buf, log_len, &log, &err) < 0 ||
                    !(checks = calloc(log->n_events, sizeof(*checks))) ||
                    vc_replay_update(hasher, log, &rs, checks, &err) < 0) {
                        fprintf(stderr, "vouchctl: %s: event log invalid: %s\n", log_path,
                                vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                        goto out;
                }
                *replayed = rs.pcrs;
        }
        if (vc_quote_verify(q, ak, pcrs, nonce, (size_t) n, NULL, 0, log_path ? replayed : NULL, &policy, &res) <
            0) {
                fprintf(stderr, "vouchctl: could not evaluate the quote (out of memory or OpenSSL failure)\n");
                ret = EXIT_USAGE;
                goto out;
        }
        if (res.status != VC_QUOTE_VALID) {
                fprintf(stderr, "vouchctl: quote INVALID (%s): %s\n", vc_quote_check_name(res.failed), res.reason);
                ret = EXIT_INVALID;
                goto out;
        }
        printf("quote valid: signature, nonce, PCR digest%s; clock %llu, resetCount %u, restartCount %u\n",
               log_path ? ", event log replay" : "", (unsigned long long) res.clock, res.reset_count,
               res.restart_count);
        if (log_path)
                print_coverage(&res, replayed);
        ret = EXIT_OK;
        if (golden) {
                vc_evaluation ev = { 0 };
                uint32_t attested = vc_quote_attested(&res, golden->bank);
                if (vc_golden_evaluate(golden, log, checks, replayed, attested, &ev) < 0) {
                        fprintf(stderr, "vouchctl: could not evaluate the golden set (out of memory)\n");
                        ret = EXIT_USAGE;
                        goto out;
                }
                printf("%s: golden set %s version %lld", ev.trust == VC_TRUST_TRUSTED ? "TRUSTED" : "UNTRUSTED",
                       golden->name, (long long) golden->version);
                if (ev.n_findings)
                        printf(", %zu finding%s", ev.n_findings, ev.n_findings == 1 ? "" : "s");
                putchar('\n');
                for (size_t i = 0; i < ev.n_findings; i++)
                        printf("  [%s] %s\n", ev.findings[i].rule, ev.findings[i].explanation);
                ret = ev.trust == VC_TRUST_TRUSTED ? EXIT_OK : EXIT_INVALID;
                vc_evaluation_done(&ev);
        }
out:
        free(ak_buf);
        free(msg);
        free(sig);
        free(pcrs_buf);
        free(log_buf);
        free(pcrs);
        free(replayed);
        vc_ak_free(ak);
        vc_quote_free(q);
        vc_eventlog_free(log);
        vc_hasher_free(hasher);
        vc_golden_free(golden);
        free(checks);
        return ret;
}

int cmd_quote(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "verify") == 0)
                return quote_verify(argc, argv);
        fputs(quote_usage, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? EXIT_OK : EXIT_USAGE;
}
