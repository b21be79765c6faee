/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl golden create|merge|check */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "vouchctl.h"

static const char golden_usage[] =
        "Usage:\n"
        "  vouchctl golden create --eventlog FILE [--name NAME] [--description TEXT] [--format tpm|ccel|auto]\n"
        "  vouchctl golden merge A.json B.json [C.json ...]\n"
        "  vouchctl golden check --golden FILE --eventlog FILE [--json] [--format tpm|ccel|auto]\n"
        "check exits 0 TRUSTED, 1 UNTRUSTED (with the findings), 2 unusable input.\n";

static void lint_warn(const char *msg, void *userdata) {
        fprintf(stderr, "vouchctl: %s: warning: %s\n", (const char *) userdata, msg);
}

static int load_golden(const char *path, vc_golden **ret) {
        uint8_t *buf;
        size_t len;
        vc_error err;
        char msg[512];
        if (read_input(path, VC_GOLDEN_MAX_FILE, &buf, &len) < 0)
                return EXIT_USAGE;
        int r = vc_golden_parse((const char *) buf, len, ret, &err);
        free(buf);
        if (r < 0) {
                fprintf(stderr, "vouchctl: %s: %s\n", path, vc_error_format(&err, msg, sizeof(msg)));
                return EXIT_USAGE;
        }
        vc_golden_lint(*ret, lint_warn, (void *) path);
        return EXIT_OK;
}

static int print_golden(const vc_golden *g) {
        char *s = NULL;
        if (vc_golden_to_json(g, &s) < 0) {
                fprintf(stderr, "vouchctl: out of memory\n");
                return EXIT_USAGE;
        }
        puts(s);
        free(s);
        return EXIT_OK;
}

static int golden_create(int argc, char **argv) {
        const char *log_path = NULL, *name = "golden", *description = NULL;
        vc_log_read how = VC_READ_AUTO;
        const cmd_option options[] = {
                { "eventlog", .arg = &log_path, .required = true },
                { "name", .arg = &name },
                { "description", .arg = &description },
                { "format", .parse = option_log_read, .to = &how },
                {},
        };
        const cmd_spec spec = { golden_usage, options, 0, NULL };
        int r;
        if (!parse_command(argc, argv, &spec, &r))
                return r;
        loaded_log l;
        vc_golden *g = NULL;
        vc_error err;
        char msg[512];
        r = load_log(log_path, (int) how, &l);
        if (r == EXIT_OK) {
                if (vc_golden_create(l.log, l.checks, &l.replay.pcrs, name, description, &g, &err) < 0) {
                        fprintf(stderr, "vouchctl: %s: %s\n", log_path, vc_error_format(&err, msg, sizeof(msg)));
                        r = EXIT_USAGE;
                } else {
                        /* Round-trip through the parser: what we print must load. */
                        char *s = NULL;
                        vc_golden *back = NULL;
                        if (vc_golden_to_json(g, &s) < 0 || vc_golden_parse(s, strlen(s), &back, &err) < 0) {
                                fprintf(stderr, "vouchctl: the golden set created from %s does not load: %s\n", log_path,
                                        vc_error_format(&err, msg, sizeof(msg)));
                                r = EXIT_USAGE;
                        } else {
                                puts(s);
                        }
                        free(s);
                        vc_golden_free(back);
                }
        }
        vc_golden_free(g);
        loaded_log_done(&l);
        return r;
}

static int golden_merge(int argc, char **argv) {
        vc_golden *acc = NULL;
        vc_error err;
        char msg[512];
        if (argc < 4 || strcmp(argv[2], "--help") == 0) {
                fputs(golden_usage, argc >= 3 && strcmp(argv[2], "--help") == 0 ? stdout : stderr);
                return argc >= 3 && strcmp(argv[2], "--help") == 0 ? EXIT_OK : EXIT_USAGE;
        }
        for (int i = 2; i < argc; i++) {
                vc_golden *g = NULL, *m = NULL;
                if (load_golden(argv[i], &g) != EXIT_OK) {
                        vc_golden_free(acc);
                        return EXIT_USAGE;
                }
                if (!acc) {
                        acc = g;
                        continue;
                }
                int r = vc_golden_merge(acc, g, &m, &err);
                vc_golden_free(g);
                vc_golden_free(acc);
                acc = NULL;
                if (r < 0) {
                        fprintf(stderr, "vouchctl: %s: %s\n", argv[i], vc_error_format(&err, msg, sizeof(msg)));
                        return EXIT_USAGE;
                }
                acc = m;
        }
        int r = print_golden(acc);
        vc_golden_free(acc);
        return r;
}

static const char *trust_name(vc_trust t) {
        return t == VC_TRUST_TRUSTED ? "TRUSTED" : t == VC_TRUST_UNTRUSTED ? "UNTRUSTED" : "UNKNOWN";
}

/* What the set accepts that a reader of a TRUSTED verdict should know. */
static json_object *golden_notes(const vc_golden *g) {
        json_object *a = json_object_new_array();
        char line[256];
        if (g->error_separators) {
                snprintf(line, sizeof(line),
                         "golden set %s: the platform measures every separator as 0xFFFFFFFF (legacy BIOS such as "
                         "SeaBIOS; on UEFI that value reports a firmware error), and only that value is accepted",
                         g->name);
                json_object_array_add(a, json_object_new_string(line));
        }
        if (g->n_vendor_events) {
                snprintf(line, sizeof(line),
                         "golden set %s: %zu vendor event%s (types the PC Client spec does not define) accepted only "
                         "where pinned, with their digests",
                         g->name, g->n_vendor_events, g->n_vendor_events == 1 ? "" : "s");
                json_object_array_add(a, json_object_new_string(line));
        }
        if (g->log_kind == VC_LOG_CCEL) {
                snprintf(line, sizeof(line), "golden set %s: a CCEL set: its indices are registers (1-4 RTMR0-3)",
                         g->name);
                json_object_array_add(a, json_object_new_string(line));
        }
        return a;
}

static int golden_check(int argc, char **argv) {
        const char *golden_path = NULL, *log_path = NULL;
        vc_log_read how = VC_READ_AUTO;
        bool json = false;
        const cmd_option options[] = {
                { "golden", .arg = &golden_path, .required = true },
                { "eventlog", .arg = &log_path, .required = true },
                { "json", .flag = &json },
                { "format", .parse = option_log_read, .to = &how },
                {},
        };
        const cmd_spec spec = { golden_usage, options, 0, NULL };
        int r;
        if (!parse_command(argc, argv, &spec, &r))
                return r;
        vc_golden *g = NULL;
        loaded_log l;
        vc_evaluation ev = { 0 };
        r = load_golden(golden_path, &g);
        if (r != EXIT_OK)
                return r;
        r = load_log(log_path, (int) how, &l);
        if (r != EXIT_OK)
                goto out;
        /* Offline: the log itself is all there is, so every PCR counts as attested. */
        if (vc_golden_evaluate(g, l.log, l.checks, &l.replay.pcrs, (1u << VC_PCR_COUNT) - 1, &ev) < 0) {
                fprintf(stderr, "vouchctl: could not evaluate (out of memory)\n");
                r = EXIT_USAGE;
                goto out;
        }
        if (json) {
                json_object *o = json_object_new_object(), *gj = json_object_new_object(), *fa = json_object_new_array();
                json_object_object_add(o, "trust", json_object_new_string(trust_name(ev.trust)));
                json_object_object_add(gj, "name", json_object_new_string(g->name));
                json_object_object_add(gj, "version", json_object_new_int64(g->version));
                json_object_object_add(o, "golden", gj);
                for (size_t i = 0; i < ev.n_findings; i++) {
                        const vc_finding *f = &ev.findings[i];
                        json_object *fo = json_object_new_object();
                        json_object_object_add(fo, "rule", json_object_new_string(f->rule));
                        json_object_object_add(fo, "pcr", json_object_new_int(f->pcr));
                        json_object_object_add(fo, "event", json_object_new_int64(f->event));
                        if (f->event >= 0)
                                json_object_object_add(fo, "event_type",
                                                       json_object_new_string(vc_event_type_name(f->event_type)));
                        json_object_object_add(fo, "expected", json_object_new_string(f->expected));
                        json_object_object_add(fo, "actual", json_object_new_string(f->actual));
                        json_object_object_add(fo, "explanation", json_object_new_string(f->explanation));
                        json_object_array_add(fa, fo);
                }
                json_object_object_add(o, "findings", fa);
                json_object_object_add(o, "notes", golden_notes(g));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        } else {
                printf("%s: golden set %s version %lld", trust_name(ev.trust), g->name, (long long) g->version);
                if (ev.n_findings)
                        printf(", %zu finding%s", ev.n_findings, ev.n_findings == 1 ? "" : "s");
                putchar('\n');
                for (size_t i = 0; i < ev.n_findings; i++)
                        printf("  [%s] %s\n", ev.findings[i].rule, ev.findings[i].explanation);
                json_object *notes = golden_notes(g);
                for (size_t i = 0; i < json_object_array_length(notes); i++)
                        printf("  note: %s\n", json_object_get_string(json_object_array_get_idx(notes, i)));
                json_object_put(notes);
        }
        r = ev.trust == VC_TRUST_TRUSTED ? EXIT_OK : EXIT_INVALID;
        vc_evaluation_done(&ev);
out:
        loaded_log_done(&l);
        vc_golden_free(g);
        return r;
}

int cmd_golden(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "create") == 0)
                return golden_create(argc, argv);
        if (argc >= 2 && strcmp(argv[1], "merge") == 0)
                return golden_merge(argc, argv);
        if (argc >= 2 && strcmp(argv[1], "check") == 0)
                return golden_check(argc, argv);
        bool help = argc >= 2 && strcmp(argv[1], "--help") == 0;
        fputs(golden_usage, help ? stdout : stderr);
        return help ? EXIT_OK : EXIT_USAGE;
}
