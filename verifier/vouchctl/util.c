/* SPDX-License-Identifier: Apache-2.0 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "fileio.h"
#include "hash.h"
#include "replay.h"
#include "vouchctl.h"

static bool options_given(const cmd_option *options) {
        for (const cmd_option *o = options; o->name; o++)
                if (o->required && !*o->arg)
                        return false;
        return true;
}

bool parse_command(int argc, char **argv, const cmd_spec *spec, int *ret_exit) {
        struct option opts[CMD_OPTIONS_MAX + 2] = { 0 };
        size_t n = 0;
        int c;
        /* getopt's value of options[i] is i + 1: never 'h', '?' nor ':' */
        for (const cmd_option *o = spec->options; o->name; o++, n++) {
                assert(n < CMD_OPTIONS_MAX);
                opts[n] = (struct option) { o->name, o->flag ? no_argument : required_argument, NULL, (int) n + 1 };
        }
        opts[n] = (struct option) { "help", no_argument, NULL, 'h' };
        *ret_exit = EXIT_USAGE;
        optind = 2;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                const cmd_option *o = c >= 1 && (size_t) c <= n ? &spec->options[c - 1] : NULL;
                if (c == 'h') {
                        fputs(spec->usage, stdout);
                        *ret_exit = EXIT_OK;
                        return false;
                }
                if (!o) {
                        fputs(spec->usage, stderr);
                        return false;
                }
                if (o->flag)
                        *o->flag = true;
                else if (o->parse && o->parse(optarg, o->to) < 0)
                        return false;
                else if (o->arg)
                        *o->arg = optarg;
        }
        if (argc - optind != spec->n_operands || !options_given(spec->options)) {
                if (spec->missing)
                        fprintf(stderr, "%s\n", spec->missing);
                fputs(spec->usage, stderr);
                return false;
        }
        return true;
}

int read_input(const char *path, size_t max, uint8_t **ret, size_t *ret_len) {
        int r = vu_read_file(AT_FDCWD, path, max, ret, ret_len);
        if (r == 0 || r == -ENOMEM)
                return r;
        if (r == -EFBIG) {
                fprintf(stderr, "vouchctl: %s is larger than the limit of %zu bytes\n", path, max);
                return -E2BIG;
        }
        /* vu_read_file does not say which call failed: open(2) of a file to read does not
         * fail with these, read(2) does (a directory, a device error) */
        bool reading = strcmp(path, "-") == 0 || r == -EISDIR || r == -EIO || r == -EINVAL;
        fprintf(stderr, "vouchctl: cannot %s %s: %s\n", reading ? "read" : "open", path, strerror(-r));
        return r;
}

void loaded_log_done(loaded_log *l) {
        vc_eventlog_free(l->log);
        vc_hasher_free(l->hasher);
        free(l->checks);
}

const char *digest_name(uint16_t alg, char buf[16]) {
        const vc_alg_info *a = vc_alg_lookup(alg);
        if (a)
                return a->name;
        snprintf(buf, 16, "0x%04x", alg);
        return buf;
}

/* Reads, parses, digest-checks and replays; prints errors. Returns an exit code. */
int parse_log_read(const char *s, vc_log_read *ret) {
        if (strcmp(s, "tpm") == 0)
                *ret = VC_READ_TPM;
        else if (strcmp(s, "ccel") == 0)
                *ret = VC_READ_CCEL;
        else if (strcmp(s, "auto") == 0)
                *ret = VC_READ_AUTO;
        else {
                fprintf(stderr, "vouchctl: --format %s: expected tpm, ccel or auto\n", s);
                return -EINVAL;
        }
        return 0;
}

int option_log_read(const char *arg, void *to) {
        return parse_log_read(arg, to);
}

int load_log(const char *path, int how, loaded_log *l) {
        uint8_t *buf = NULL;
        size_t len;
        vc_error err;
        char msg[512];
        int r;

        memset(l, 0, sizeof(*l));
        r = read_input(path, VC_EVENTLOG_MAX_SIZE, &buf, &len);
        if (r < 0)
                return EXIT_USAGE;
        r = vc_eventlog_parse_as(buf, len, (vc_log_read) (how & ~LOAD_LOG_QUIET), &l->log, &err);
        free(buf);
        if (r < 0) {
                fprintf(stderr, "vouchctl: %s: invalid event log: %s\n", path, vc_error_format(&err, msg, sizeof(msg)));
                return EXIT_USAGE;
        }
        l->checks = calloc(l->log->n_events, sizeof(*l->checks));
        if (!l->checks || vc_hasher_new(&l->hasher) < 0) {
                fprintf(stderr, "vouchctl: out of memory\n");
                return EXIT_USAGE;
        }
        if (l->log->padding && !(how & LOAD_LOG_QUIET))
                fprintf(stderr, "vouchctl: %s: note: %zu bytes of padding after event %zu (0x%02X)\n", path,
                        l->log->padding, l->log->n_events - 1, l->log->padding_byte);
        vc_replay_init(&l->replay);
        r = vc_replay_update(l->hasher, l->log, &l->replay, l->checks, &err);
        if (r < 0) {
                fprintf(stderr, "vouchctl: %s: cannot replay: %s\n", path, vc_error_format(&err, msg, sizeof(msg)));
                return EXIT_USAGE;
        }
        for (uint32_t i = 0; i < l->replay.n_skipped_algs; i++) {
                char name[16];
                fprintf(stderr, "vouchctl: %s: note: bank %s not replayed: %s\n", path,
                        digest_name(l->replay.skipped_algs[i], name),
                        vc_alg_lookup(l->replay.skipped_algs[i]) ? "some events carry no digest for it"
                                                                 : "algorithm unknown to this verifier");
        }
        return EXIT_OK;
}

