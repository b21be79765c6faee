/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl: offline tools for event logs, quotes and signed verdicts, and the verifier's API. */
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vouchctl.h"

static void usage(FILE *f) {
        fputs("Usage: vouchctl COMMAND ...\n"
              "\n"
              "Event logs (TCG PC Client PFP, crypto-agile or SHA-1; CCEL of confidential VMs):\n"
              "  eventlog show FILE [--json]      every event, decoded, with its digest check\n"
              "  eventlog replay FILE [--json]    the PCR (CCEL: register) values the log replays to\n"
              "  (--format tpm|ccel|auto, default auto: a Spec ID event at index 1 is CCEL)\n"
              "\n"
              "Golden measurements:\n"
              "  golden create --eventlog FILE [--name NAME] [--description TEXT] [--format ...]\n"
              "  golden merge A.json B.json [C.json ...]\n"
              "  golden check --golden FILE --eventlog FILE [--json] [--format ...]\n"
              "\n"
              "Quotes:\n"
              "  quote verify --ak AK --msg QUOTE --sig SIG --pcrs PCRS --nonce HEX [--eventlog FILE]\n"
              "\n"
              "\n"
              "EK keys (for TPMs without an EK certificate: vouchd --allowlist):\n"
              "  ek fingerprint FILE              FILE: tpm2_createek -u output (TPM2B_PUBLIC or PEM)\n"
              "\n"
              "Signed verdicts (offline, the relying party's check):\n"
              "  verdict verify --keys KEYS_FILE VERDICT_FILE [--now TIME] [--any-status] [--json]\n"
              "                 [--device-cert CERT --device-ca CA [--crl CRL]]\n"
              "\n"
              "The verifier's policy-engine API (each with --server URL --cert FILE --key FILE --ca FILE\n"
              "or --config FILE, and --json):\n"
              "  verdict get DEVICE [--keys KEYS_FILE]  the device's latest verdict\n"
              "  verdict list [--status S] [--page-size N]  the fleet's latest verdicts (every page)\n"
              "  verdict watch [--since N] [--count N]   verdicts as they are issued\n"
              "  device list | approve ID | revoke ID | assign ID GOLDEN   (admin)\n"
              "  keys get [--pem]                       the verdict-signing public keys\n"
              "  cert list DEVICE                       the device certificates issued for a device's key\n"
              "  crl get [--pem] [--out FILE]           the device CA's certificate revocation list\n"
              "\n"
              "vouchctl --version prints \"vouchctl VERSION\".\n"
              "Exit status: 0 valid, 1 invalid, 2 usage error or unreadable input.\n",
              f);
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);      /* argv[0] is the command's name */
} commands[] = {
        { "eventlog", cmd_eventlog }, { "golden", cmd_golden }, { "quote", cmd_quote }, { "verdict", cmd_verdict },
        { "device", cmd_device },     { "keys", cmd_keys },     { "ek", cmd_ek },
        { "cert", cmd_cert },         { "crl", cmd_crl },
};

int main(int argc, char **argv) {
        /* tss2-mu logs unmarshalling errors to stderr; vouchctl reports them itself. */
        setenv("TSS2_LOG", "all+none", 0);
        if (argc < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        /* A short-lived tool: no atexit clean-up of OpenSSL (the kernel frees it all). The
         * event log and golden commands only hash, with digests fetched from a provider by
         * name, so they also skip building the legacy name tables. The system's openssl.cnf
         * is honoured (a FIPS provider set-up, say). BENCHMARKS.md has the measurements. */
        uint64_t init = OPENSSL_INIT_NO_ATEXIT;
        if (!strcmp(argv[1], "eventlog") || !strcmp(argv[1], "golden"))
                init |= OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS;
        OPENSSL_init_crypto(init, NULL);
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return EXIT_OK;
        }
        if (strcmp(argv[1], "--version") == 0) {
                puts("vouchctl " VOUCH_VERSION);
                return EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "vouchctl: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
}
