/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl quote verify */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "pcrs.h"
#include "quote.h"
#include "replay.h"
#include "vouchctl.h"

#define NONCE_MAX 64 /* TPM2B_DATA: at most the largest digest */

static const char quote_usage[] =
        "Usage: vouchctl quote verify --ak AK --msg QUOTE --sig SIG --pcrs PCRS --nonce HEX [--eventlog FILE]\n"
        "  --ak AK         attestation key: PEM public key, TPM2B_PUBLIC (tpm2_createak -u) or TPMT_PUBLIC\n"
        "  --msg QUOTE     TPMS_ATTEST bytes (tpm2_quote -m)\n"
        "  --sig SIG       TPMT_SIGNATURE (tpm2_quote -s)\n"
        "  --pcrs PCRS     PCR values: tpm2_quote -o serialized file, or JSON {\"sha256\": {\"0\": \"hex\"}}\n"
        "  --nonce HEX     the expected qualifying data (\"\" for none)\n"
        "  --eventlog FILE the event log must replay to the quoted PCR values\n"
        "Exit status: 0 valid, 1 invalid (reason on stderr), 2 usage error or unreadable input.\n";

static int quote_verify(int argc, char **argv) {
        static const struct option opts[] = {
                { "ak", required_argument, NULL, 'a' },     { "msg", required_argument, NULL, 'm' },
                { "sig", required_argument, NULL, 's' },    { "pcrs", required_argument, NULL, 'p' },
                { "nonce", required_argument, NULL, 'n' },  { "eventlog", required_argument, NULL, 'e' },
                { "help", no_argument, NULL, 'h' },         {},
        };
        const char *ak_path = NULL, *msg_path = NULL, *sig_path = NULL, *pcrs_path = NULL, *nonce_hex = NULL,
                   *log_path = NULL;
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
        int c, n, ret = EXIT_USAGE;

        optind = 2;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case 'a': ak_path = optarg; break;
                case 'm': msg_path = optarg; break;
                case 's': sig_path = optarg; break;
                case 'p': pcrs_path = optarg; break;
                case 'n': nonce_hex = optarg; break;
                case 'e': log_path = optarg; break;
                case 'h': fputs(quote_usage, stdout); return EXIT_OK;
                default: fputs(quote_usage, stderr); return EXIT_USAGE;
                }
        }
        if (optind != argc || !ak_path || !msg_path || !sig_path || !pcrs_path || !nonce_hex) {
                fprintf(stderr, "vouchctl quote verify: --ak, --msg, --sig, --pcrs and --nonce are required\n");
                fputs(quote_usage, stderr);
                return EXIT_USAGE;
        }
        n = vc_unhex(nonce_hex, strlen(nonce_hex), nonce, sizeof(nonce));
        if (n < 0) {
                fprintf(stderr, "vouchctl: --nonce: %s (at most %d bytes of hex)\n",
                        n == -E2BIG ? "too long" : "not hex", NONCE_MAX);
                return EXIT_USAGE;
        }
        if (read_file(ak_path, VC_AK_MAX_FILE, &ak_buf, &ak_len) < 0)
                goto out;
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
                int r = read_file(evidence[i].path, evidence[i].max, evidence[i].buf, evidence[i].len);
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
                if (vc_eventlog_parse(log_buf, log_len, &log, &err) < 0 ||
                    vc_eventlog_replay(hasher, log, replayed, &err) < 0) {
                        fprintf(stderr, "vouchctl: %s: event log invalid: %s\n", log_path,
                                vc_error_format(&err, msgbuf, sizeof(msgbuf)));
                        goto out;
                }
        }
        if (vc_quote_verify(q, ak, pcrs, nonce, (size_t) n, NULL, 0, log_path ? replayed : NULL, &res) < 0) {
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
        if (log_path && res.log_unquoted_mask) {
                fprintf(stderr, "vouchctl: note: the event log extends PCRs not covered by the quote:");
                for (unsigned i = 0; i < VC_PCR_COUNT; i++)
                        if (res.log_unquoted_mask & (1u << i))
                                fprintf(stderr, " %u", i);
                fprintf(stderr, " (their events are not attested)\n");
        }
        ret = EXIT_OK;
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
        return ret;
}

int cmd_quote(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "verify") == 0)
                return quote_verify(argc, argv);
        fputs(quote_usage, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? EXIT_OK : EXIT_USAGE;
}
