/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl eventlog show|replay */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "eventlog.h"
#include "replay.h"
#include "vouchctl.h"

static const char *measured_name(vc_measured m) {
        switch (m) {
        case VC_MEASURED_EVENT_DATA:
                return "event data";
        case VC_MEASURED_VARIABLE_DATA:
                return "variable data only (name and GUID not covered)";
        case VC_MEASURED_STRING:
                return "string without prefix/terminator";
        case VC_MEASURED_TRUNCATED:
                return "event data less its last byte";
        case VC_MEASURED_ERROR_SEPARATOR:
                return "0xFFFFFFFF, not logged (SeaBIOS)";
        case VC_MEASURED_NONE:
                break;
        }
        return NULL;
}

static json_object *replay_to_json(const vc_pcr_set *s) {
        json_object *root = json_object_new_object();
        for (uint32_t b = 0; b < s->n_banks; b++) {
                const vc_pcr_bank *bank = &s->banks[b];
                json_object *o = json_object_new_object();
                for (unsigned pcr = 0; pcr < VC_PCR_COUNT; pcr++) {
                        char key[8], hex[2 * VC_MAX_DIGEST + 1];
                        if (!(bank->mask & (1u << pcr)))
                                continue;
                        snprintf(key, sizeof(key), "%u", pcr);
                        vc_hex(bank->values[pcr], bank->size, hex);
                        json_object_object_add(o, key, json_object_new_string(hex));
                }
                json_object_object_add(root, vc_alg_lookup(bank->alg)->name, o);
        }
        return root;
}

static void print_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* CCEL registers (UEFI 2.10 38.4.1): 0 MRTD, 1-4 RTMR0-3. */
static const char *register_name(uint32_t index) {
        static const char *const names[VC_CCEL_REGISTERS] = { "MRTD", "RTMR0", "RTMR1", "RTMR2", "RTMR3" };
        return index < VC_CCEL_REGISTERS ? names[index] : "?";
}

static json_object *event_to_json(const vc_eventlog *log, const vc_event *ev, const vc_event_check *chk,
                                  const vc_event_content *c) {
        json_object *o = json_object_new_object(), *d = json_object_new_object();
        char name[16];
        json_object_object_add(o, "index", json_object_new_int64(ev->index));
        json_object_object_add(o, "offset", json_object_new_int64((int64_t) ev->offset));
        if (log->kind == VC_LOG_CCEL) {
                json_object_object_add(o, "register", json_object_new_int64(ev->pcr));
                json_object_object_add(o, "register_name", json_object_new_string(register_name(ev->pcr)));
        } else {
                json_object_object_add(o, "pcr", ev->pcr == VC_PCR_NONE ? json_object_new_int64(-1)
                                                                        : json_object_new_int64(ev->pcr));
        }
        json_object_object_add(o, "type", json_object_new_string(vc_event_type_name(ev->type)));
        json_object_object_add(o, "type_value", json_object_new_int64(ev->type));
        for (uint32_t i = 0; i < ev->n_digests; i++) {
                char *hex = vc_hex_dup(ev->digests[i].bytes, ev->digests[i].size);
                json_object_object_add(d, digest_name(ev->digests[i].alg, name), json_object_new_string(hex ? hex : ""));
                free(hex);
        }
        json_object_object_add(o, "digests", d);
        json_object_object_add(o, "data_size", json_object_new_int64(ev->data_size));
        json_object_object_add(o, "content", json_object_new_string(c->text ? c->text : ""));
        if (c->device_path)
                json_object_object_add(o, "device_path", json_object_new_string(c->device_path));
        if (c->var_name)
                json_object_object_add(o, "variable", json_object_new_string(c->var_name));
        json_object_object_add(o, "digest_check", json_object_new_string(vc_digest_status_name(chk->status)));
        if (measured_name(chk->measured))
                json_object_object_add(o, "measured", json_object_new_string(measured_name(chk->measured)));
        if (chk->mismatch_mask) {
                json_object *m = json_object_new_array();
                for (uint32_t i = 0; i < ev->n_digests; i++)
                        if (chk->mismatch_mask & (1u << i))
                                json_object_array_add(m, json_object_new_string(digest_name(ev->digests[i].alg, name)));
                json_object_object_add(o, "mismatched_banks", m);
        }
        return o;
}

static void event_print_text(const vc_eventlog *log, const vc_event *ev, const vc_event_check *chk,
                             const vc_event_content *c) {
        char name[16], hex[2 * VC_EVENTLOG_MAX_DIGEST_SIZE + 1];
        if (log->kind == VC_LOG_CCEL)
                printf("Event %u: register %u (%s) %s (0x%08x), offset %zu, %u bytes of data\n", ev->index, ev->pcr,
                       register_name(ev->pcr), vc_event_type_name(ev->type), ev->type, ev->offset, ev->data_size);
        else if (ev->pcr == VC_PCR_NONE)
                printf("Event %u: PCR none %s (0x%08x), offset %zu, %u bytes of data\n", ev->index,
                       vc_event_type_name(ev->type), ev->type, ev->offset, ev->data_size);
        else
                printf("Event %u: PCR %u %s (0x%08x), offset %zu, %u bytes of data\n", ev->index, ev->pcr,
                       vc_event_type_name(ev->type), ev->type, ev->offset, ev->data_size);
        for (uint32_t i = 0; i < ev->n_digests; i++) {
                vc_hex(ev->digests[i].bytes, ev->digests[i].size, hex);
                printf("  %-7s %s\n", digest_name(ev->digests[i].alg, name), hex);
        }
        printf("  content: %s\n", c->text ? c->text : "");
        printf("  digest:  %s", vc_digest_status_name(chk->status));
        if (chk->status == VC_DIGEST_VERIFIED && measured_name(chk->measured))
                printf(" (%s)", measured_name(chk->measured));
        if (chk->mismatch_mask) {
                printf(" in");
                for (uint32_t i = 0; i < ev->n_digests; i++)
                        if (chk->mismatch_mask & (1u << i))
                                printf(" %s", digest_name(ev->digests[i].alg, name));
        }
        putchar('\n');
}

static const char *format_name(const vc_eventlog *log) {
        if (log->kind == VC_LOG_CCEL)
                return "ccel";
        return log->format == VC_LOG_CRYPTO_AGILE ? "crypto-agile" : "sha1-legacy";
}

static int eventlog_show(const char *path, vc_log_read how, bool json) {
        loaded_log l;
        size_t mismatches = 0;
        int r = load_log(path, (int) how | LOAD_LOG_QUIET, &l);
        if (r != EXIT_OK) {
                loaded_log_done(&l);
                return r;
        }
        json_object *root = NULL, *events = NULL;
        if (json) {
                root = json_object_new_object();
                events = json_object_new_array();
                json_object_object_add(root, "format", json_object_new_string(format_name(l.log)));
        } else {
                printf("Format: %s, %zu events, %zu bytes\n", format_name(l.log), l.log->n_events, l.log->len);
                if (l.log->kind == VC_LOG_CCEL)
                        printf("Registers: 0 MRTD, 1-4 RTMR0-3 (the index of each event below)\n");
        }
        for (size_t i = 0; i < l.log->n_events; i++) {
                const vc_event *ev = &l.log->events[i];
                vc_event_content c;
                vc_error err;
                if (vc_event_decode(ev, &c, &err) == -ENOMEM) {
                        fprintf(stderr, "vouchctl: out of memory\n");
                        json_object_put(root);
                        json_object_put(events);
                        loaded_log_done(&l);
                        return EXIT_USAGE;
                }
                if (l.checks[i].status == VC_DIGEST_MISMATCH)
                        mismatches++;
                if (json)
                        json_object_array_add(events, event_to_json(l.log, ev, &l.checks[i], &c));
                else
                        event_print_text(l.log, ev, &l.checks[i], &c);
                vc_event_content_done(&c);
        }
        if (json) {
                json_object_object_add(root, "events", events);
                json_object_object_add(root, "digest_mismatches", json_object_new_int64((int64_t) mismatches));
                if (l.log->padding) {
                        char b[8];
                        snprintf(b, sizeof(b), "0x%02x", l.log->padding_byte);
                        json_object_object_add(root, "padding", json_object_new_int64((int64_t) l.log->padding));
                        json_object_object_add(root, "padding_byte", json_object_new_string(b));
                }
                print_json(root);
                json_object_put(root);
        } else {
                if (l.log->padding)
                        printf("%zu bytes of padding after event %zu (0x%02X)\n", l.log->padding,
                               l.log->n_events - 1, l.log->padding_byte);
                printf("Digest mismatches: %zu\n", mismatches);
        }
        loaded_log_done(&l);
        return EXIT_OK;
}

static int eventlog_replay(const char *path, vc_log_read how, bool json) {
        loaded_log l;
        int r = load_log(path, (int) how, &l);
        if (r != EXIT_OK) {
                loaded_log_done(&l);
                return r;
        }
        const vc_pcr_set *s = &l.replay.pcrs;
        if (json) {
                /* the JSON stays {bank: {index: hex}}, keyed by the index as written */
                if (l.log->kind == VC_LOG_CCEL)
                        fprintf(stderr, "vouchctl: %s: note: format: ccel: the indices are registers (0 MRTD, 1-4 "
                                        "RTMR0-3)\n", path);
                json_object *o = replay_to_json(s);
                print_json(o);
                json_object_put(o);
        } else {
                if (l.log->kind == VC_LOG_CCEL)
                        printf("format: ccel (registers: 0 MRTD, 1-4 RTMR0-3)\n");
                for (uint32_t b = 0; b < s->n_banks; b++) {
                        const vc_pcr_bank *bank = &s->banks[b];
                        printf("%s:\n", vc_alg_lookup(bank->alg)->name);
                        for (unsigned pcr = 0; pcr < VC_PCR_COUNT; pcr++) {
                                char hex[2 * VC_MAX_DIGEST + 1];
                                if (!(bank->mask & (1u << pcr)))
                                        continue;
                                vc_hex(bank->values[pcr], bank->size, hex);
                                printf("  %2u: %s\n", pcr, hex);
                        }
                }
        }
        loaded_log_done(&l);
        return EXIT_OK;
}

int cmd_eventlog(int argc, char **argv) {
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "format", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool json = false;
        vc_log_read how = VC_READ_AUTO;
        int c;

        if (argc < 2) {
                fprintf(stderr, "Usage: vouchctl eventlog show|replay FILE [--json] [--format tpm|ccel|auto]\n");
                return EXIT_USAGE;
        }
        const char *verb = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "jh", opts, NULL)) >= 0) {
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'f':
                        if (parse_log_read(optarg, &how) < 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        printf("Usage: vouchctl eventlog show|replay FILE [--json] [--format tpm|ccel|auto]\n"
                               "--format auto (default): a log whose Spec ID event has index 1 is CCEL, any other a TPM log\n");
                        return EXIT_OK;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind != argc - 1) {
                fprintf(stderr, "vouchctl eventlog %s: expected exactly one FILE\n", verb);
                return EXIT_USAGE;
        }
        if (strcmp(verb, "show") == 0)
                return eventlog_show(argv[optind], how, json);
        if (strcmp(verb, "replay") == 0)
                return eventlog_replay(argv[optind], how, json);
        fprintf(stderr, "vouchctl eventlog: unknown verb '%s' (show, replay)\n", verb);
        return EXIT_USAGE;
}
