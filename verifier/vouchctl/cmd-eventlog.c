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

static json_object *event_to_json(const vc_event *ev, const vc_event_check *chk, const vc_event_content *c) {
        json_object *o = json_object_new_object(), *d = json_object_new_object();
        char name[16];
        json_object_object_add(o, "index", json_object_new_int64(ev->index));
        json_object_object_add(o, "offset", json_object_new_int64((int64_t) ev->offset));
        json_object_object_add(o, "pcr", ev->pcr == VC_PCR_NONE ? json_object_new_int64(-1)
                                                                : json_object_new_int64(ev->pcr));
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

static void event_print_text(const vc_event *ev, const vc_event_check *chk, const vc_event_content *c) {
        char name[16], hex[2 * VC_EVENTLOG_MAX_DIGEST_SIZE + 1];
        if (ev->pcr == VC_PCR_NONE)
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

static int eventlog_show(const char *path, bool json) {
        loaded_log l;
        size_t mismatches = 0;
        int r = load_log(path, &l);
        if (r != EXIT_OK) {
                loaded_log_done(&l);
                return r;
        }
        json_object *root = NULL, *events = NULL;
        if (json) {
                root = json_object_new_object();
                events = json_object_new_array();
                json_object_object_add(root, "format", json_object_new_string(l.log->format == VC_LOG_CRYPTO_AGILE
                                                                                      ? "crypto-agile"
                                                                                      : "sha1-legacy"));
        } else {
                printf("Format: %s, %zu events, %zu bytes\n",
                       l.log->format == VC_LOG_CRYPTO_AGILE ? "crypto-agile" : "sha1-legacy", l.log->n_events,
                       l.log->len);
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
                        json_object_array_add(events, event_to_json(ev, &l.checks[i], &c));
                else
                        event_print_text(ev, &l.checks[i], &c);
                vc_event_content_done(&c);
        }
        if (json) {
                json_object_object_add(root, "events", events);
                json_object_object_add(root, "digest_mismatches", json_object_new_int64((int64_t) mismatches));
                print_json(root);
                json_object_put(root);
        } else {
                printf("Digest mismatches: %zu\n", mismatches);
        }
        loaded_log_done(&l);
        return EXIT_OK;
}

static int eventlog_replay(const char *path, bool json) {
        loaded_log l;
        int r = load_log(path, &l);
        if (r != EXIT_OK) {
                loaded_log_done(&l);
                return r;
        }
        const vc_pcr_set *s = &l.replay.pcrs;
        if (json) {
                json_object *o = replay_to_json(s);
                print_json(o);
                json_object_put(o);
        } else {
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
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool json = false;
        int c;

        if (argc < 2) {
                fprintf(stderr, "Usage: vouchctl eventlog show|replay FILE [--json]\n");
                return EXIT_USAGE;
        }
        const char *verb = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "jh", opts, NULL)) >= 0) {
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: vouchctl eventlog show|replay FILE [--json]\n");
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
                return eventlog_show(argv[optind], json);
        if (strcmp(verb, "replay") == 0)
                return eventlog_replay(argv[optind], json);
        fprintf(stderr, "vouchctl eventlog: unknown verb '%s' (show, replay)\n", verb);
        return EXIT_USAGE;
}
