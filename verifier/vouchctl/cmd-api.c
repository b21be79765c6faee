/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl verdict get|list|watch, device list|approve|revoke|assign, keys get, cert list, crl
 * get: clients of the policy-engine API (docs/API.md). Requests are protobuf; --json output is rendered
 * here in the API's JSON form. */
#include <errno.h>
#include <getopt.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api-client.h"
#include "frame.h"
#include "verdict-check.h"
#include "verdict-format.h"
#include "vouchctl.h"

#define LIST_MAX_PAGES 100000 /* a server handing out tokens forever is stopped */

static const char common_usage[] =
        "Connection (flags override the --config file):\n"
        "  --server URL    https://HOST:PORT of vouchd's API (--api-listen)\n"
        "  --cert FILE     client certificate (PEM; vouchd issue-client)\n"
        "  --key FILE      its private key\n"
        "  --ca FILE       CA of the server's certificate (STATE_DIR/ca.pem)\n"
        "  --config FILE   'server = URL', 'cert = FILE', 'key = FILE', 'ca = FILE' lines\n"
        "  --json          JSON output (the API's JSON form)\n"
        "Exit status: 0 done, 1 (verdict get) the verdict is not TRUSTED, valid and unexpired,\n"
        "2 usage error, connection, TLS or HTTP error (the status and the server's message on stderr).\n";

enum { OPT_SERVER = 1000, OPT_CERT, OPT_KEY, OPT_CA, OPT_CONFIG, OPT_JSON, OPT_HELP };
#define COMMON_OPTIONS                                                                                                 \
        { "server", required_argument, NULL, OPT_SERVER }, { "cert", required_argument, NULL, OPT_CERT },             \
                { "key", required_argument, NULL, OPT_KEY }, { "ca", required_argument, NULL, OPT_CA },               \
                { "config", required_argument, NULL, OPT_CONFIG }, { "json", no_argument, NULL, OPT_JSON },           \
        {                                                                                                              \
                "help", no_argument, NULL, OPT_HELP                                                                    \
        }

/* A command's own option ch (argument arg): NULL when taken, else the usage error to print
 * ("" for an option the command does not have). */
typedef const char *(*own_opt_fn)(int ch, const char *arg, void *ud);

/* A command line: what the command says of itself, and the connection options. */
typedef struct common {
        const char *usage;
        int n_args;                     /* the arguments after the options, exactly */
        const char *args_error;         /* the usage error when there are more or fewer */
        own_opt_fn own;                 /* its own options (NULL: none but flags) */
        void *own_ud;
        const char *config, *server, *cert, *key, *ca;
        bool json;
} common;

/* 1 handled, 0 not a common option, -1 help printed */
static int common_opt(common *o, int c) {
        switch (c) {
        case OPT_SERVER: o->server = optarg; return 1;
        case OPT_CERT: o->cert = optarg; return 1;
        case OPT_KEY: o->key = optarg; return 1;
        case OPT_CA: o->ca = optarg; return 1;
        case OPT_CONFIG: o->config = optarg; return 1;
        case OPT_JSON: o->json = true; return 1;
        case OPT_HELP:
                fputs(o->usage, stdout);
                fputs(common_usage, stdout);
                return -1;
        }
        return 0;
}

static int bad_usage(const common *o, const char *msg) {
        if (msg && msg[0])
                fprintf(stderr, "vouchctl: %s\n", msg);
        fputs(o->usage, stderr);
        fputs(common_usage, stderr);
        return EXIT_USAGE;
}

/* Parses the options after the command's words: the connection options into o, the
 * command's flags (struct option's flag) by getopt, its other options through o->own; then
 * counts its arguments. True when the command goes on (its arguments from argv[optind]);
 * false when it is done, with *ret_exit set: EXIT_OK after --help, EXIT_USAGE after a usage
 * error (printed). */
static bool parse_options(int argc, char **argv, const struct option *opts, common *o, int *ret_exit) {
        int ch;
        optind = 2;
        while ((ch = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                int h = ch == 0 ? 1 : common_opt(o, ch); /* 0: getopt set an option's flag */
                const char *bad = h ? NULL : o->own ? o->own(ch, optarg, o->own_ud) : "";
                if (h < 0)
                        *ret_exit = EXIT_OK;
                else if (bad)
                        *ret_exit = bad_usage(o, bad);
                if (h < 0 || bad)
                        return false;
        }
        if (argc - optind != o->n_args) {
                *ret_exit = bad_usage(o, o->args_error);
                return false;
        }
        return true;
}

static int replace(char **slot, const char *v) {
        if (!v)
                return 0;
        char *d = strdup(v);
        if (!d)
                return -ENOMEM;
        free(*slot);
        *slot = d;
        return 0;
}

static int connect_client(const common *o, api_client **ret) {
        api_config cfg = { 0 };
        char err[512];
        int r;
        if (o->config) {
                uint8_t *buf;
                size_t len;
                unsigned line = 0;
                if (read_input(o->config, API_CONFIG_MAX, &buf, &len) < 0)
                        return EXIT_USAGE;
                r = api_config_parse((const char *) buf, len, &cfg, &line);
                free(buf);
                if (r < 0) {
                        fprintf(stderr, "vouchctl: %s:%u: expected 'server|cert|key|ca = VALUE'\n", o->config, line);
                        api_config_done(&cfg);
                        return EXIT_USAGE;
                }
        }
        if (replace(&cfg.server, o->server) < 0 || replace(&cfg.cert, o->cert) < 0 || replace(&cfg.key, o->key) < 0 ||
            replace(&cfg.ca, o->ca) < 0) {
                api_config_done(&cfg);
                fprintf(stderr, "vouchctl: out of memory\n");
                return EXIT_USAGE;
        }
        r = api_client_new(&cfg, ret, err, sizeof(err));
        api_config_done(&cfg);
        if (r < 0) {
                fprintf(stderr, "vouchctl: %s\n", err);
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

/* parse_options, then the client (connect_client): true when the command goes on with
 * *ret_client; false with *ret_exit set when it is done. */
static bool start_command(int argc, char **argv, const struct option *opts, common *o, api_client **ret_client,
                          int *ret_exit) {
        if (!parse_options(argc, argv, opts, o, ret_exit))
                return false;
        *ret_exit = connect_client(o, ret_client);
        return *ret_exit == EXIT_OK;
}

/* One request whose 2xx answer is the protobuf message desc; *ret unpacked. */
static int fetch(api_client *c, const char *method, const char *path, const uint8_t *body, size_t body_len,
                 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret) {
        api_response resp;
        char err[1024];
        int r = api_call(c, method, path, body, body_len, API_BODY_MAX, &resp, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "vouchctl: %s %s: %s\n", method, path, err);
                return EXIT_USAGE;
        }
        if (resp.status < 200 || resp.status > 299) {
                fprintf(stderr, "vouchctl: %s %s: %s\n", method, path, api_error_text(&resp, err, sizeof(err)));
                api_response_done(&resp);
                return EXIT_USAGE;
        }
        if (strncmp(resp.content_type, "application/x-protobuf", 22) != 0) {
                fprintf(stderr, "vouchctl: %s %s: the answer is '%.60s', not application/x-protobuf\n", method, path,
                        resp.content_type);
                api_response_done(&resp);
                return EXIT_USAGE;
        }
        *ret = protobuf_c_message_unpack(desc, NULL, resp.len, resp.body);
        api_response_done(&resp);
        if (!*ret) {
                fprintf(stderr, "vouchctl: %s %s: the answer is not a %s\n", method, path, desc->short_name);
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

static void print_json(json_object *o, bool pretty) {
        if (!o) {
                fprintf(stderr, "vouchctl: out of memory\n");
                return;
        }
        puts(vfmt_json_text(o, pretty));
        json_object_put(o);
}

/* ---- verdict get ---- */

static const char get_usage[] =
        "Usage: vouchctl verdict get DEVICE [--keys KEYS_FILE] [--any-status] [connection options]\n"
        "  The device's latest verdict (STALE once expired, UNKNOWN if it never attested).\n"
        "  --keys FILE     also verify the signature and expiry as 'verdict verify' does\n"
        "  --any-status    exit 0 for a valid, unexpired verdict whatever its status\n";

static const char *keys_path_opt(int ch, const char *arg, void *ud) {
        if (ch != 'k')
                return "";
        *(const char **) ud = arg;
        return NULL;
}

static int verdict_get(int argc, char **argv) {
        const char *keys_path = NULL;
        int any_status = 0;
        const struct option opts[] = {
                COMMON_OPTIONS, { "keys", required_argument, NULL, 'k' }, { "any-status", no_argument, &any_status, 1 }, {},
        };
        common o = { .usage = get_usage, .n_args = 1, .args_error = "verdict get: one DEVICE is required",
                     .own = keys_path_opt, .own_ud = &keys_path };
        api_client *c = NULL;
        vv_keyring *keys = NULL;
        Vouch__V1__SignedVerdict *sv = NULL;
        char path[API_PATH_MAX];
        int ret = EXIT_USAGE;

        if (!parse_options(argc, argv, opts, &o, &ret))
                return ret;
        if (keys_path && load_keyring(keys_path, &keys) < 0)
                return EXIT_USAGE;
        if ((ret = connect_client(&o, &c)) != EXIT_OK)
                goto out;
        ret = EXIT_USAGE;
        if (api_device_path(api_client_server(c), argv[optind], "verdict", path, sizeof(path)) < 0) {
                fprintf(stderr, "vouchctl: bad device id\n");
                goto out;
        }
        if ((ret = fetch(c, "GET", path, NULL, 0, &vouch__v1__signed_verdict__descriptor, (ProtobufCMessage **) &sv)) !=
            EXIT_OK)
                goto out;
        if (keys) {
                ret = check_verdict(keys, sv, (int64_t) time(NULL), argv[optind], any_status, o.json);
                goto out;
        }
        /* without keys the signature is not checked (the answer came over mutual TLS) */
        Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
        if (!v) {
                fprintf(stderr, "vouchctl: the server's SignedVerdict does not hold a Verdict\n");
                ret = EXIT_USAGE;
                goto out;
        }
        if (o.json)
                print_json(vfmt_signed_json(sv, v), true);
        else {
                printf("signature:    not checked (no --keys); key %s\n", sv->key_id);
                vfmt_verdict_text(stdout, v);
        }
        int64_t now = (int64_t) time(NULL);
        if (!v->device_id || strcmp(v->device_id, argv[optind]) != 0) {
                fprintf(stderr, "vouchctl: the server's verdict is about device %.64s, not %s\n",
                        v->device_id ? v->device_id : "(none)", argv[optind]);
                ret = EXIT_INVALID;
        } else if (!(now < v->expires_at)) {
                fprintf(stderr, "vouchctl: the verdict has expired\n");
                ret = EXIT_INVALID;
        } else if (!any_status && v->status != VOUCH__V1__TRUST_STATUS__TRUSTED) {
                const char *st = vv_status_name(v->status);
                fprintf(stderr, "vouchctl: the device is %s\n", st ? st : "in an unknown state");
                ret = EXIT_INVALID;
        } else
                ret = EXIT_OK;
        vouch__v1__verdict__free_unpacked(v, NULL);
out:
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        vv_keyring_free(keys);
        api_client_free(c);
        return ret;
}

/* ---- verdict list / device list: every page ---- */

static const char list_usage[] =
        "Usage: vouchctl verdict list [--status S] [--page-size N] [connection options]\n"
        "  The latest verdict of every device (every page), ordered by device id.\n"
        "  --status S      TRUSTED, UNTRUSTED, STALE or UNKNOWN only\n"
        "  --page-size N   verdicts per request, 1..1000 (default: the server's, 100)\n";

static const char device_list_usage[] =
        "Usage: vouchctl device list [--page-size N] [connection options]   (admin)\n";

static int parse_page_size(const char *s, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || end == s || v < 1 || v > 1000 || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* Fetches every page of a list; page_fn gets each page and returns its next token. */
typedef int (*page_fn)(ProtobufCMessage *page, void *ud, const char **ret_token);

static int fetch_pages(api_client *c, const char *base_path, const char *status, unsigned page_size,
                       const ProtobufCMessageDescriptor *desc, page_fn fn, void *ud) {
        char *token = strdup("");
        int ret = EXIT_OK;
        if (!token)
                return EXIT_USAGE;
        for (unsigned n = 0;; n++) {
                char path[API_PATH_MAX], num[16];
                ProtobufCMessage *page = NULL;
                const char *next = NULL;
                if (n >= LIST_MAX_PAGES) {
                        fprintf(stderr, "vouchctl: GET %s: more than %d pages\n", base_path, LIST_MAX_PAGES);
                        ret = EXIT_USAGE;
                        break;
                }
                snprintf(path, sizeof(path), "%s", base_path);
                snprintf(num, sizeof(num), "%u", page_size);
                if ((status && api_query_add(path, sizeof(path), "status", status) < 0) ||
                    (page_size && api_query_add(path, sizeof(path), "page_size", num) < 0) ||
                    (token[0] && api_query_add(path, sizeof(path), "page_token", token) < 0)) {
                        fprintf(stderr, "vouchctl: the page token from the server is too long\n");
                        ret = EXIT_USAGE;
                        break;
                }
                ret = fetch(c, "GET", path, NULL, 0, desc, &page);
                if (ret != EXIT_OK)
                        break;
                ret = fn(page, ud, &next);
                bool again = ret == EXIT_OK && next && next[0];
                if (again && strcmp(next, token) == 0) {
                        fprintf(stderr, "vouchctl: GET %s: the server repeated page token '%.40s'\n", base_path, next);
                        ret = EXIT_USAGE;
                        again = false;
                }
                char *nt = again ? strdup(next) : NULL;
                protobuf_c_message_free_unpacked(page, NULL);
                if (!again)
                        break;
                if (!nt) {
                        ret = EXIT_USAGE;
                        break;
                }
                free(token);
                token = nt;
        }
        free(token);
        return ret;
}

typedef struct list_state {
        bool json, header_done;
        json_object *array;
        size_t count;
} list_state;

/* A list's header line, before its first line. */
static void header_once(bool *done, void (*header)(FILE *f)) {
        if (!*done)
                header(stdout);
        *done = true;
}

/* o (NULL: out of memory, left out) into the list's JSON array. */
static void list_add_json(list_state *s, json_object *o) {
        if (o)
                json_object_array_add(s->array, o);
}

static int verdict_page(ProtobufCMessage *m, void *ud, const char **ret_token) {
        Vouch__V1__VerdictPage *p = (Vouch__V1__VerdictPage *) m;
        list_state *s = ud;
        for (size_t i = 0; i < p->n_verdicts; i++) {
                const Vouch__V1__SignedVerdict *sv = p->verdicts[i];
                Vouch__V1__Verdict *v = vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data);
                if (!v) {
                        fprintf(stderr, "vouchctl: a SignedVerdict in the page does not hold a Verdict\n");
                        return EXIT_USAGE;
                }
                if (s->json)
                        list_add_json(s, vfmt_signed_json(sv, v));
                else {
                        header_once(&s->header_done, vfmt_verdict_line_header);
                        vfmt_verdict_line(stdout, v);
                }
                s->count++;
                vouch__v1__verdict__free_unpacked(v, NULL);
        }
        *ret_token = p->next_page_token;
        return EXIT_OK;
}

static int device_page(ProtobufCMessage *m, void *ud, const char **ret_token) {
        Vouch__V1__DevicePage *p = (Vouch__V1__DevicePage *) m;
        list_state *s = ud;
        for (size_t i = 0; i < p->n_devices; i++) {
                if (s->json)
                        list_add_json(s, vfmt_device_json(p->devices[i]));
                else {
                        header_once(&s->header_done, vfmt_device_line_header);
                        vfmt_device_line(stdout, p->devices[i]);
                }
                s->count++;
        }
        *ret_token = p->next_page_token;
        return EXIT_OK;
}

typedef struct list_args {
        bool devices;
        const char *status;
        unsigned page_size;
} list_args;

static const char *list_opt(int ch, const char *arg, void *ud) {
        list_args *l = ud;
        if (ch == 's' && !l->devices) {
                static const char *const names[] = { "TRUSTED", "UNTRUSTED", "STALE", "UNKNOWN" };
                l->status = NULL;
                for (size_t i = 0; i < 4; i++)
                        if (strcasecmp(arg, names[i]) == 0)
                                l->status = names[i];
                return l->status ? NULL : "--status: one of TRUSTED, UNTRUSTED, STALE, UNKNOWN";
        }
        if (ch == 'n')
                return parse_page_size(arg, &l->page_size) < 0 ? "--page-size: 1..1000" : NULL;
        return "";
}

static int run_list(int argc, char **argv, bool devices) {
        static const struct option opts[] = {
                COMMON_OPTIONS, { "status", required_argument, NULL, 's' }, { "page-size", required_argument, NULL, 'n' }, {},
        };
        list_args l = { .devices = devices };
        common o = { .usage = devices ? device_list_usage : list_usage, .args_error = "unexpected argument",
                     .own = list_opt, .own_ud = &l };
        api_client *c = NULL;
        char base[API_PATH_MAX];
        int ret;

        if (!start_command(argc, argv, opts, &o, &c, &ret))
                return ret;
        list_state s = { .json = o.json, .array = o.json ? json_object_new_array() : NULL };
        if (api_path(api_client_server(c), devices ? "/v1/devices" : "/v1/verdicts", base, sizeof(base)) < 0 ||
            (o.json && !s.array)) {
                fprintf(stderr, "vouchctl: --server path too long or out of memory\n");
                api_client_free(c);
                json_object_put(s.array);
                return EXIT_USAGE;
        }
        if (devices)
                ret = fetch_pages(c, base, NULL, l.page_size, &vouch__v1__device_page__descriptor, device_page, &s);
        else
                ret = fetch_pages(c, base, l.status, l.page_size, &vouch__v1__verdict_page__descriptor, verdict_page, &s);
        if (ret == EXIT_OK) {
                if (o.json) {
                        json_object *top = json_object_new_object();
                        if (top) {
                                json_object_object_add(top, devices ? "devices" : "verdicts", s.array);
                                s.array = NULL;
                        }
                        print_json(top, true);
                } else if (s.count == 0)
                        printf(devices ? "no devices\n" : "no verdicts\n");
        }
        json_object_put(s.array);
        api_client_free(c);
        return ret;
}

/* ---- verdict watch ---- */

static const char watch_usage[] =
        "Usage: vouchctl verdict watch [--since N] [--count N] [connection options]\n"
        "  Every verdict with global_sequence > N (default 0), then new ones as they are issued, one\n"
        "  line each (--json: one JSON object per line). Resume with --since the last global sequence.\n"
        "  --count N       stop after N verdicts (exit 0); otherwise runs until the stream ends (exit 2)\n";

typedef struct watch_state {
        bool json, header_done;
        unsigned long long count, max;
        uint64_t last;
} watch_state;

static int on_watch_frame(const uint8_t *frame, size_t len, void *ud, char *err, size_t errlen) {
        watch_state *w = ud;
        if (len == 0)
                return 0; /* a heartbeat on an idle stream (docs/API.md) */
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, frame);
        Vouch__V1__Verdict *v = sv ? vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data) : NULL;
        if (!v) {
                snprintf(err, errlen, "stream frame %llu is not a SignedVerdict holding a Verdict", w->count + 1);
                if (sv)
                        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
                return -EBADMSG;
        }
        /* docs/API.md: global_sequence order, nothing repeated */
        if (w->count > 0 && v->global_sequence <= w->last) {
                snprintf(err, errlen, "stream out of order: global sequence %llu after %llu",
                         (unsigned long long) v->global_sequence, (unsigned long long) w->last);
                vouch__v1__verdict__free_unpacked(v, NULL);
                vouch__v1__signed_verdict__free_unpacked(sv, NULL);
                return -EBADMSG;
        }
        w->last = v->global_sequence;
        if (w->json)
                print_json(vfmt_signed_json(sv, v), false);
        else {
                header_once(&w->header_done, vfmt_verdict_line_header);
                vfmt_verdict_line(stdout, v);
        }
        fflush(stdout);
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        w->count++;
        return w->max && w->count >= w->max ? 1 : 0;
}

static int parse_u64(const char *s, unsigned long long *ret) {
        char *end;
        errno = 0;
        if (!*s || *s == '-' || *s == '+')
                return -EINVAL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

typedef struct watch_args {
        unsigned long long since, count;
} watch_args;

static const char *watch_opt(int ch, const char *arg, void *ud) {
        watch_args *a = ud;
        if (ch == 's')
                return parse_u64(arg, &a->since) < 0 ? "--since: a global sequence number" : NULL;
        if (ch == 'n')
                return parse_u64(arg, &a->count) < 0 || a->count == 0 ? "--count: a positive number" : NULL;
        return "";
}

static int verdict_watch(int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS, { "since", required_argument, NULL, 's' }, { "count", required_argument, NULL, 'n' }, {},
        };
        watch_args a = { 0 };
        common o = { .usage = watch_usage, .args_error = "unexpected argument", .own = watch_opt, .own_ud = &a };
        watch_state w = { 0 };
        api_client *c = NULL;
        api_response resp;
        char path[API_PATH_MAX], num[32], err[1024];
        int ret;

        if (!start_command(argc, argv, opts, &o, &c, &ret))
                return ret;
        w.json = o.json;
        w.max = a.count;
        snprintf(num, sizeof(num), "%llu", a.since);
        if (api_path(api_client_server(c), "/v1/watch", path, sizeof(path)) < 0 ||
            api_query_add(path, sizeof(path), "since", num) < 0) {
                api_client_free(c);
                return EXIT_USAGE;
        }
        int r = api_stream(c, path, VV_SIGNED_MAX, on_watch_frame, &w, &resp, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "vouchctl: GET %s: %s (after %llu verdicts%s)\n", path, err, w.count,
                        w.count ? "; resume with --since the last global sequence" : "");
                ret = EXIT_USAGE;
        } else if (resp.status != 200) {
                fprintf(stderr, "vouchctl: GET %s: %s\n", path, api_error_text(&resp, err, sizeof(err)));
                ret = EXIT_USAGE;
        } else
                ret = EXIT_OK;
        api_response_done(&resp);
        api_client_free(c);
        return ret;
}

int cmd_api_verdict(int argc, char **argv) {
        if (strcmp(argv[1], "get") == 0)
                return verdict_get(argc, argv);
        if (strcmp(argv[1], "list") == 0)
                return run_list(argc, argv, false);
        return verdict_watch(argc, argv);
}

/* ---- device approve|revoke|assign ---- */

static const char device_usage[] =
        "Usage: vouchctl device list [--page-size N]        every device (admin)\n"
        "       vouchctl device approve ID                  approve a device waiting under --approval allowlist\n"
        "       vouchctl device revoke ID                   its next verdicts are UNTRUSTED, its agent disconnected\n"
        "       vouchctl device assign ID GOLDEN            evaluate it against golden set GOLDEN (\"\" = default)\n"
        "       [connection options]\n";

static int device_action(int argc, char **argv) {
        static const struct option opts[] = { COMMON_OPTIONS, {} };
        const char *verb = argv[1];
        bool assign = strcmp(verb, "assign") == 0;
        common o = { .usage = device_usage, .n_args = assign ? 2 : 1,
                     .args_error = assign ? "device assign: ID and GOLDEN are required" : "one device ID is required" };
        api_client *c = NULL;
        Vouch__V1__DeviceInfo *d = NULL;
        uint8_t *body = NULL;
        size_t body_len = 0;
        char path[API_PATH_MAX];
        int ret;

        if (!start_command(argc, argv, opts, &o, &c, &ret))
                return ret;
        ret = EXIT_USAGE;
        if (api_device_path(api_client_server(c), argv[optind], assign ? "golden" : verb, path, sizeof(path)) < 0) {
                fprintf(stderr, "vouchctl: bad device id\n");
                goto out;
        }
        if (assign) {
                Vouch__V1__GoldenAssignment ga = VOUCH__V1__GOLDEN_ASSIGNMENT__INIT;
                ga.golden = argv[optind + 1];
                body_len = vouch__v1__golden_assignment__get_packed_size(&ga);
                body = malloc(body_len > 2 ? body_len : 2);
                if (!body)
                        goto out;
                vouch__v1__golden_assignment__pack(&ga, body);
                if (body_len == 0) {
                        /* golden "": proto3 writes nothing for it, and vouchd refuses an empty
                         * body; the field is sent, empty (docs/API.md) */
                        body[0] = 0x0a;
                        body[1] = 0x00;
                        body_len = 2;
                }
        }
        ret = fetch(c, assign ? "PUT" : "POST", path, body, body_len, &vouch__v1__device_info__descriptor,
                    (ProtobufCMessage **) &d);
        if (ret != EXIT_OK)
                goto out;
        if (o.json)
                print_json(vfmt_device_json(d), true);
        else {
                vfmt_device_line_header(stdout);
                vfmt_device_line(stdout, d);
        }
        vouch__v1__device_info__free_unpacked(d, NULL);
out:
        free(body);
        api_client_free(c);
        return ret;
}

int cmd_device(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "list") == 0)
                return run_list(argc, argv, true);
        if (argc >= 2 && (strcmp(argv[1], "approve") == 0 || strcmp(argv[1], "revoke") == 0 || strcmp(argv[1], "assign") == 0))
                return device_action(argc, argv);
        fputs(device_usage, stderr);
        return EXIT_USAGE;
}

/* ---- keys get ---- */

static const char keys_usage[] =
        "Usage: vouchctl keys get [--pem | --verdict-keys] [connection options]\n"
        "  The verifier's verdict-signing public keys with their ids. For 'vouchctl verdict verify\n"
        "  --keys', after checking it: --verdict-keys writes the VerdictKeys file (protobuf, GET\n"
        "  /v1/keys), which carries each retired key's end date; --pem the PEM file (no dates).\n";

static int keys_get(int argc, char **argv) {
        int pem = 0, raw = 0;
        const struct option opts[] = { COMMON_OPTIONS, { "pem", no_argument, &pem, 1 },
                                       { "verdict-keys", no_argument, &raw, 1 }, {} };
        common o = { .usage = keys_usage, .args_error = "unexpected argument" };
        api_client *c = NULL;
        char path[API_PATH_MAX];
        int ret;

        if (!parse_options(argc, argv, opts, &o, &ret))
                return ret;
        if (pem && raw)
                return bad_usage(&o, "--pem and --verdict-keys are two forms of the same keys: choose one");
        if ((ret = connect_client(&o, &c)) != EXIT_OK)
                return ret;
        ret = EXIT_USAGE;
        if (api_path(api_client_server(c), "/v1/keys", path, sizeof(path)) < 0)
                goto out;
        if (pem || raw) {
                api_response resp;
                char err[1024];
                vv_keyring *k = NULL;
                if (pem && api_query_add(path, sizeof(path), "format", "pem") < 0)
                        goto out;
                if (api_call(c, "GET", path, NULL, 0, VV_KEYS_FILE_MAX, &resp, err, sizeof(err)) < 0) {
                        fprintf(stderr, "vouchctl: GET %s: %s\n", path, err);
                        goto out;
                }
                if (resp.status != 200) {
                        fprintf(stderr, "vouchctl: GET %s: %s\n", path, api_error_text(&resp, err, sizeof(err)));
                } else if (vv_keyring_parse(resp.body, resp.len, &k) < 0 || resp.len == 0 ||
                           (resp.body[0] == '-') != pem) {
                        /* only what verdict verify accepts is passed on */
                        fprintf(stderr, "vouchctl: GET %s: the answer is not %s\n", path,
                                pem ? "PEM EC P-256 public keys" : "a VerdictKeys message of EC P-256 keys");
                } else {
                        fwrite(resp.body, 1, resp.len, stdout);
                        ret = fflush(stdout) == 0 ? EXIT_OK : EXIT_USAGE;
                }
                vv_keyring_free(k);
                api_response_done(&resp);
                goto out;
        }
        Vouch__V1__VerdictKeys *keys = NULL;
        ret = fetch(c, "GET", path, NULL, 0, &vouch__v1__verdict_keys__descriptor, (ProtobufCMessage **) &keys);
        if (ret != EXIT_OK)
                goto out;
        if (o.json)
                print_json(vfmt_keys_json(keys), true);
        else
                vfmt_keys_text(stdout, keys);
        vouch__v1__verdict_keys__free_unpacked(keys, NULL);
out:
        api_client_free(c);
        return ret;
}

int cmd_keys(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "get") == 0)
                return keys_get(argc, argv);
        fputs(keys_usage, stderr);
        return EXIT_USAGE;
}

/* ---- cert list (issue 19) ---- */

static const char cert_usage[] =
        "Usage: vouchctl cert list DEVICE [connection options]\n"
        "  The certificates vouchd issued for the device's TPM key with its TRUSTED verdicts, newest\n"
        "  first: serial, validity, the verdict's sequence, and whether each is valid now, expired or\n"
        "  revoked (on the device CA's CRL). --json: the API's JSON form (with each certificate).\n";

static const char *when_text(int64_t t, char buf[32]) {
        time_t tt = (time_t) t;
        struct tm tm;
        if (!gmtime_r(&tt, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(buf, 32, "%lld", (long long) t);
        return buf;
}

static json_object *cert_json(const Vouch__V1__DeviceCertificate *c) {
        json_object *o = json_object_new_object();
        char *hex = malloc(2 * c->der.len + 1);
        if (!o || !hex) {
                json_object_put(o);
                free(hex);
                return NULL;
        }
        for (size_t i = 0; i < c->der.len; i++)
                snprintf(hex + 2 * i, 3, "%02x", c->der.data[i]);
        hex[2 * c->der.len] = 0;
        json_object_object_add(o, "serial", json_object_new_string(c->serial));
        json_object_object_add(o, "not_before", json_object_new_int64(c->not_before));
        json_object_object_add(o, "not_after", json_object_new_int64(c->not_after));
        json_object_object_add(o, "sequence", json_object_new_uint64(c->sequence));
        json_object_object_add(o, "global_sequence", json_object_new_uint64(c->global_sequence));
        json_object_object_add(o, "revoked", json_object_new_boolean(c->revoked));
        json_object_object_add(o, "revoked_at", json_object_new_int64(c->revoked_at));
        json_object_object_add(o, "revoked_sequence", json_object_new_uint64(c->revoked_sequence));
        json_object_object_add(o, "der", json_object_new_string(hex));
        free(hex);
        return o;
}

static int cert_list(int argc, char **argv) {
        static const struct option opts[] = { COMMON_OPTIONS, {} };
        common o = { .usage = cert_usage, .n_args = 1, .args_error = "cert list: one DEVICE is required" };
        api_client *c = NULL;
        Vouch__V1__DeviceCertificates *dc = NULL;
        char path[API_PATH_MAX];
        int ret;

        if (!start_command(argc, argv, opts, &o, &c, &ret))
                return ret;
        ret = EXIT_USAGE;
        if (api_device_path(api_client_server(c), argv[optind], "certificates", path, sizeof(path)) < 0) {
                fprintf(stderr, "vouchctl: bad device id\n");
                goto out;
        }
        if ((ret = fetch(c, "GET", path, NULL, 0, &vouch__v1__device_certificates__descriptor,
                         (ProtobufCMessage **) &dc)) != EXIT_OK)
                goto out;
        if (o.json) {
                json_object *top = json_object_new_object(), *arr = json_object_new_array();
                for (size_t i = 0; arr && i < dc->n_certificates; i++) {
                        json_object *e = cert_json(dc->certificates[i]);
                        if (e)
                                json_object_array_add(arr, e);
                }
                if (top && arr) {
                        json_object_object_add(top, "device", json_object_new_string(argv[optind]));
                        json_object_object_add(top, "certificates", arr);
                        arr = NULL;
                }
                json_object_put(arr);
                print_json(top, true);
        } else if (dc->n_certificates == 0) {
                printf("no certificates\n");
        } else {
                int64_t now = (int64_t) time(NULL);
                printf("%-34s %-20s %-20s %8s  %s\n", "SERIAL", "NOT_BEFORE", "NOT_AFTER", "SEQUENCE", "STATE");
                for (size_t i = 0; i < dc->n_certificates; i++) {
                        const Vouch__V1__DeviceCertificate *e = dc->certificates[i];
                        char nb[32], na[32], ra[32], state[96];
                        if (e->revoked && e->revoked_sequence)
                                snprintf(state, sizeof(state), "revoked %s (verdict %llu)", when_text(e->revoked_at, ra),
                                         (unsigned long long) e->revoked_sequence);
                        else if (e->revoked) /* the device revoked, or its approval withdrawn, by an admin */
                                snprintf(state, sizeof(state), "revoked %s (device revoked)", when_text(e->revoked_at, ra));
                        else
                                snprintf(state, sizeof(state), "%s", now >= e->not_after ? "expired" : "valid");
                        printf("%-34s %-20s %-20s %8llu  %s\n", e->serial, when_text(e->not_before, nb),
                               when_text(e->not_after, na), (unsigned long long) e->sequence, state);
                }
        }
        vouch__v1__device_certificates__free_unpacked(dc, NULL);
out:
        api_client_free(c);
        return ret;
}

int cmd_cert(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "list") == 0)
                return cert_list(argc, argv);
        fputs(cert_usage, stderr);
        return EXIT_USAGE;
}

/* ---- crl get (issue 19) ---- */

static const char crl_usage[] =
        "Usage: vouchctl crl get [--pem] [--out FILE] [connection options]\n"
        "  The device CA's certificate revocation list (GET /v1/crl), checked to be one: DER, or PEM\n"
        "  with --pem, on stdout or into FILE (replaced atomically; its number, dates and entries are\n"
        "  said on stdout, --json as JSON). For a TLS server's CRL file (nginx ssl_crl), refreshed\n"
        "  more often than its nextUpdate (at most 2 intervals of vouchd).\n";

static const char *out_opt(int ch, const char *arg, void *ud) {
        if (ch != 'o')
                return "";
        *(const char **) ud = arg;
        return NULL;
}

/* FILE written through FILE.tmp.PID and a rename: a server reading it never sees half of it. */
static int write_replace(const char *path, const uint8_t *data, size_t len) {
        char tmp[4200];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int) getpid());
        FILE *f = fopen(tmp, "wbx");
        if (!f)
                return -errno;
        bool ok = fwrite(data, 1, len, f) == len;
        ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
        ok &= fclose(f) == 0;
        if (!ok || rename(tmp, path) < 0) {
                int e = errno ? errno : EIO;
                unlink(tmp);
                return -e;
        }
        return 0;
}

static int crl_get(int argc, char **argv) {
        int pem = 0;
        const char *out_path = NULL;
        const struct option opts[] = { COMMON_OPTIONS, { "pem", no_argument, &pem, 1 },
                                       { "out", required_argument, NULL, 'o' }, {} };
        common o = { .usage = crl_usage, .args_error = "unexpected argument", .own = out_opt, .own_ud = &out_path };
        api_client *c = NULL;
        api_response resp = { 0 };
        X509_CRL *crl = NULL;
        char path[API_PATH_MAX], err[1024];
        int ret;

        if (!start_command(argc, argv, opts, &o, &c, &ret))
                return ret;
        ret = EXIT_USAGE;
        if (api_path(api_client_server(c), "/v1/crl", path, sizeof(path)) < 0 ||
            (pem && api_query_add(path, sizeof(path), "format", "pem") < 0))
                goto out;
        if (api_call(c, "GET", path, NULL, 0, API_BODY_MAX, &resp, err, sizeof(err)) < 0) {
                fprintf(stderr, "vouchctl: GET %s: %s\n", path, err);
                goto out;
        }
        if (resp.status != 200) {
                fprintf(stderr, "vouchctl: GET %s: %s\n", path, api_error_text(&resp, err, sizeof(err)));
                goto out;
        }
        /* only a CRL is passed on */
        if (pem) {
                BIO *b = BIO_new_mem_buf(resp.body, (int) resp.len);
                crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
                BIO_free(b);
        } else {
                const unsigned char *p = resp.body;
                crl = d2i_X509_CRL(NULL, &p, (long) resp.len);
                if (crl && p != resp.body + resp.len) {
                        X509_CRL_free(crl);
                        crl = NULL;
                }
        }
        if (!crl) {
                fprintf(stderr, "vouchctl: GET %s: the answer is not a %s CRL\n", path, pem ? "PEM" : "DER");
                goto out;
        }
        if (!out_path) {
                fwrite(resp.body, 1, resp.len, stdout);
                ret = fflush(stdout) == 0 ? EXIT_OK : EXIT_USAGE;
                goto out;
        }
        int r = write_replace(out_path, resp.body, resp.len);
        if (r < 0) {
                fprintf(stderr, "vouchctl: cannot write %s: %s\n", out_path, strerror(-r));
                goto out;
        }
        ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
        BIGNUM *bn = num ? ASN1_INTEGER_to_BN(num, NULL) : NULL;
        char *dec = bn ? BN_bn2dec(bn) : NULL;
        struct tm tl = { 0 }, tn = { 0 };
        int64_t last = ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(crl), &tl) == 1 ? (int64_t) timegm(&tl) : 0;
        int64_t next = X509_CRL_get0_nextUpdate(crl) && ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(crl), &tn) == 1
                               ? (int64_t) timegm(&tn)
                               : 0;
        STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
        int n = rev ? sk_X509_REVOKED_num(rev) : 0;
        char a[32], b[32];
        if (o.json) {
                json_object *j = json_object_new_object();
                if (j) {
                        json_object_object_add(j, "file", json_object_new_string(out_path));
                        json_object_object_add(j, "number", json_object_new_string(dec ? dec : ""));
                        json_object_object_add(j, "this_update", json_object_new_int64(last));
                        json_object_object_add(j, "next_update", json_object_new_int64(next));
                        json_object_object_add(j, "revoked", json_object_new_int(n));
                }
                print_json(j, true);
        } else {
                printf("CRL number %s, %d revoked, this update %s, next update %s: written to %s\n", dec ? dec : "?", n,
                       when_text(last, a), when_text(next, b), out_path);
        }
        OPENSSL_free(dec);
        BN_free(bn);
        ASN1_INTEGER_free(num);
        ret = EXIT_OK;
out:
        X509_CRL_free(crl);
        api_response_done(&resp);
        api_client_free(c);
        return ret;
}

int cmd_crl(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "get") == 0)
                return crl_get(argc, argv);
        fputs(crl_usage, stderr);
        return EXIT_USAGE;
}
