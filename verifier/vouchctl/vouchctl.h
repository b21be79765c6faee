/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Exit codes shared by every command (the interface other tools rely on). */
enum {
        EXIT_OK = 0,
        EXIT_INVALID = 1,  /* evidence is invalid / untrusted */
        EXIT_USAGE = 2,    /* usage error, unreadable or unusable input */
};

#include <stdbool.h>

/* A command's option (a table of them ends with { NULL }): its long name, and where it goes:
 * a flag sets *flag; an option with an argument stores it in *arg, or hands it to parse (to
 * check and convert it as it comes: 0, or -EINVAL with the error printed) with to. A
 * required option (stored in *arg) must be given. */
typedef struct cmd_option {
        const char *name;
        const char **arg;
        bool *flag;
        int (*parse)(const char *arg, void *to);
        void *to;
        bool required;
} cmd_option;
#define CMD_OPTIONS_MAX 16

/* A command's command line: what parse_command takes. */
typedef struct cmd_spec {
        const char *usage;
        const cmd_option *options;
        int n_operands;                 /* exactly this many after the options */
        const char *missing;            /* said before the usage when a required option or an
                                         * operand is missing (NULL: the usage alone) */
} cmd_spec;

/* Parses the command line of a command from argv[2] on (getopt_long: long options, and
 * -h): --help / -h print the usage on stdout; an unknown option (getopt says which), a
 * missing required option or a wrong number of operands print it on stderr. True when the
 * command goes on, its operands from argv[optind]; false when it is done, with *ret_exit
 * set: EXIT_OK after the help, EXIT_USAGE after a usage error. */
bool parse_command(int argc, char **argv, const cmd_spec *spec, int *ret_exit);

/* Reads a whole file (or "-" for stdin) with vu_read_file (common/fileio.h: never trusts
 * the size a file reports, as securityfs says 0), NUL-terminated. Prints what failed and
 * which path, except for -ENOMEM. Returns 0, -E2BIG (over max bytes), -ENOMEM or the
 * -errno of the open or read. */
int read_input(const char *path, size_t max, uint8_t **ret, size_t *ret_len);

#include "event.h"
#include "eventlog.h"
#include "replay.h"

/* An event log read, parsed, digest-checked and replayed. */
typedef struct loaded_log {
        vc_eventlog *log;
        vc_hasher *hasher;
        vc_replay replay;
        vc_event_check *checks;
} loaded_log;

/* Reads, parses (as how says), digest-checks and replays path; prints errors and notes
 * (padding, banks not replayed) on stderr. Returns an exit code. */
#define LOAD_LOG_QUIET 0x100 /* or'ed into how: the caller reports the padding itself */
int load_log(const char *path, int how, loaded_log *l);
/* --format tpm|ccel|auto: 0, or -EINVAL (printed). option_log_read: the same as a
 * cmd_option's parse, into the vc_log_read at to. */
int parse_log_read(const char *s, vc_log_read *ret);
int option_log_read(const char *arg, void *to);
void loaded_log_done(loaded_log *l);
/* "sha256", or "0x1234" for an unknown algorithm (buf holds 16 chars). */
const char *digest_name(uint16_t alg, char buf[16]);

int cmd_eventlog(int argc, char **argv);
int cmd_golden(int argc, char **argv);
int cmd_quote(int argc, char **argv);
int cmd_verdict(int argc, char **argv);
/* verdict get|list|watch, device ..., keys get: the policy-engine API (cmd-api.c) */
int cmd_api_verdict(int argc, char **argv);
int cmd_device(int argc, char **argv);
int cmd_keys(int argc, char **argv);
/* cert list, crl get: device certificates (issue 19; cmd-api.c) */
int cmd_cert(int argc, char **argv);
int cmd_crl(int argc, char **argv);
int cmd_ek(int argc, char **argv);

#include "verdict-check.h"

/* Reads and parses a keys file; prints errors. Returns 0 or a negative errno. */
int load_keyring(const char *path, vv_keyring **ret);
/* Checks sv with keys at now (vv_verify), about device (NULL: any device), prints the
 * verdict and the check (text or JSON), the reason on stderr, and returns the exit code of
 * the decision (0 valid and TRUSTED, or any status with any_status; 1 otherwise; 2 when it
 * could not be checked). */
int check_verdict(const vv_keyring *keys, const Vouch__V1__SignedVerdict *sv, int64_t now, const char *device,
                  bool any_status, bool json);
