/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's configuration: the command line and --config FILE ("name = value" lines), into
 * one config (config.h). Nothing here starts anything. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ekfetch.h"
#include "log.h"

const char config_usage[] =
        "Usage:\n"
        "  vouchd init --state-dir DIR [--san NAME ...] [--join EXISTING]   (EXISTING: the state dir\n"
        "         of an instance whose CA and verdict keys DIR shares: docs/scale-out.md)\n"
        "  vouchd issue-client --state-dir DIR --name CN --out PREFIX   (PREFIX.crt, PREFIX.key)\n"
        "  vouchd rotate-key --state-dir DIR [--old-valid-until TIME]   (Unix seconds or\n"
        "         YYYY-MM-DDTHH:MM:SSZ; default: 30 days from now)\n"
        "  vouchd --state-dir DIR --listen HOST:PORT --golden-dir DIR --default-golden NAME --ek-ca FILE\n"
        "         [--config FILE] [--interval SECONDS] [options]\n"
        "\n"
        "Options (also accepted in --config FILE as \"name = value\" lines; flags override):\n"
        "  --state-dir DIR         keys, certificates and the SQLite store (vouch.db)\n"
        "  --listen HOST:PORT      where agents connect (TLS 1.3)\n"
        "  --golden-dir DIR        golden sets (*.json), reloaded on SIGHUP\n"
        "  --default-golden NAME   golden set for devices without an assignment\n"
        "  --ek-ca FILE|DIR        PEM bundle of trusted EK CA certificates, or a directory of\n"
        "                          *.pem files (e.g. /usr/share/vouch/ekca)\n"
        "  --approval auto|allowlist  auto: a valid EK chain suffices (default)\n"
        "  --allowlist FILE        SHA-256 fingerprints of allowed EK certificates, or EK key\n"
        "                          fingerprints (vouchctl ek fingerprint) of TPMs without one,\n"
        "                          one per line (key fingerprints count with --approval auto too)\n"
        "  --ek-cert-fetch SERVICE fetch the EK certificate of a TPM with none in NV from its maker:\n"
        "                          intel, amd, or MANUFACTURER=[intel:|amd:]URL (repeatable; off\n"
        "                          by default; fetched certificates are checked and kept in the store)\n"
        "  --interval SECONDS      between attestations (default 60)\n"
        "  --jitter PERCENT        +- spread of the interval (default 10)\n"
        "  --nonce-timeout SECONDS how long a challenge is valid (default 30)\n"
        "  --hello-timeout SECONDS for the TLS handshake and Hello (default 10)\n"
        "  --threads N             event loops (default: one per core)\n"
        "  --max-connections N     (default: what the file limit allows)\n"
        "  --accept-rate N         new agent connections accepted per second at most; the rest wait\n"
        "                          in the listen backlog (default 0: no cap; docs/scale-out.md)\n"
        "  --max-frame BYTES       largest message accepted (default 4194304)\n"
        "  --history N             verdicts kept per device (default 100)\n"
        "  --verdict-ttl N         verdicts expire after N intervals (default 3)\n"
        "  --allow-sha1            accept SHA-1 signed quotes (refused by default)\n"
        "  --store URL             where devices and verdicts are kept: sqlite:PATH or a path (default:\n"
        "                          DIR/vouch.db), or postgresql://... (password from PGPASSFILE or\n"
        "                          ~/.pgpass, never in the URL; docs/vouchd.md, The store)\n"
        "  --instance NAME         this vouchd's name among several sharing one PostgreSQL store\n"
        "                          (default \"default\"; 1-63 of A-Z a-z 0-9 . _ -; docs/scale-out.md)\n"
        "  --fresh-store           start with an empty store although the state dir has keys\n"
        "                          (vouch.db missing or empty is refused otherwise:\n"
        "                          docs/failure-behaviour.md)\n"
        "  --log-level LEVEL       error, warning, info (default), debug\n"
        "  --log-format FORMAT     text (default) or json (one JSON object per line)\n"
        "Policy-engine API (HTTPS, mutual TLS; docs/API.md):\n"
        "  --api-listen HOST:PORT  where it listens (off when not set)\n"
        "  --api-client-ca FILE    CA of client certificates (default: the state dir's ca.pem)\n"
        "  --api-admin CN          a client certificate CN with the admin role (repeatable)\n"
        "  --api-reader CN         a client certificate CN with the reader role (repeatable)\n"
        "  --http-listen HOST:PORT  plain HTTP without a client certificate: GET /healthz, for load\n"
        "                          balancers and orchestrators, and GET /v1/crl (off when not set)\n"
        "Device certificates for the devices' TPM keys, with TRUSTED verdicts (docs/vouchd.md):\n"
        "  --trust-domain NAME     issue them, named spiffe://NAME/device/DEVICE_ID (off when not set)\n"
        "  --device-ca-cert FILE   the CA that issues them (PEM, its chain after it; default: the state\n"
        "                          dir's device-ca.pem, made by vouchd init)\n"
        "  --device-ca-key FILE    its key (PEM; default: the state dir's device-ca.key)\n"
        "  --device-cert-ttl SECONDS  at most this long (default and longest: until the verdict expires)\n"
        "  --crl-url URL           the CRL distribution point they name (default:\n"
        "                          http://HTTP_LISTEN/v1/crl with --http-listen)\n"
        "  --device-names FILE     DNS names the operator gives devices (lines \"DEVICE_ID NAME...\"),\n"
        "                          added to their certificates; reloaded on SIGHUP\n"
        "Signals: SIGTERM/SIGINT drain and exit; SIGHUP reloads the golden sets and the\n"
        "verdict-signing keys (after rotate-key).\n";

enum {
        O_STATE = 256, O_LISTEN, O_GOLDEN_DIR, O_DEFAULT_GOLDEN, O_EK_CA, O_CONFIG, O_INTERVAL, O_APPROVAL, O_ALLOWLIST,
        O_JITTER, O_NONCE_TIMEOUT, O_HELLO_TIMEOUT, O_THREADS, O_MAX_CONN, O_ACCEPT_RATE, O_MAX_FRAME, O_HISTORY, O_TTL, O_SHA1,
        O_LOG_LEVEL, O_SAN, O_HELP, O_API_LISTEN, O_API_CLIENT_CA, O_API_ADMIN, O_API_READER, O_EK_CERT_FETCH, O_STORE,
        O_INSTANCE, O_LOG_FORMAT, O_HTTP_LISTEN, O_TRUST_DOMAIN, O_DEVICE_CA_CERT, O_DEVICE_CA_KEY, O_CRL_URL,
        O_DEVICE_CERT_TTL, O_DEVICE_NAMES,
        /* from here on: the command line only (load_config) */
        O_NAME, O_OUT, O_OLD_VALID, O_FRESH_STORE, O_JOIN,
};

static const struct option options[] = {
        { "state-dir", required_argument, NULL, O_STATE },
        { "listen", required_argument, NULL, O_LISTEN },
        { "golden-dir", required_argument, NULL, O_GOLDEN_DIR },
        { "default-golden", required_argument, NULL, O_DEFAULT_GOLDEN },
        { "ek-ca", required_argument, NULL, O_EK_CA },
        { "config", required_argument, NULL, O_CONFIG },
        { "interval", required_argument, NULL, O_INTERVAL },
        { "approval", required_argument, NULL, O_APPROVAL },
        { "allowlist", required_argument, NULL, O_ALLOWLIST },
        { "jitter", required_argument, NULL, O_JITTER },
        { "nonce-timeout", required_argument, NULL, O_NONCE_TIMEOUT },
        { "hello-timeout", required_argument, NULL, O_HELLO_TIMEOUT },
        { "threads", required_argument, NULL, O_THREADS },
        { "max-connections", required_argument, NULL, O_MAX_CONN },
        { "accept-rate", required_argument, NULL, O_ACCEPT_RATE },
        { "max-frame", required_argument, NULL, O_MAX_FRAME },
        { "history", required_argument, NULL, O_HISTORY },
        { "verdict-ttl", required_argument, NULL, O_TTL },
        { "allow-sha1", no_argument, NULL, O_SHA1 },
        { "log-level", required_argument, NULL, O_LOG_LEVEL },
        { "san", required_argument, NULL, O_SAN },
        { "help", no_argument, NULL, O_HELP },
        { "api-listen", required_argument, NULL, O_API_LISTEN },
        { "api-client-ca", required_argument, NULL, O_API_CLIENT_CA },
        { "api-admin", required_argument, NULL, O_API_ADMIN },
        { "api-reader", required_argument, NULL, O_API_READER },
        { "name", required_argument, NULL, O_NAME },
        { "out", required_argument, NULL, O_OUT },
        { "old-valid-until", required_argument, NULL, O_OLD_VALID },
        { "fresh-store", no_argument, NULL, O_FRESH_STORE },
        { "join", required_argument, NULL, O_JOIN },
        { "ek-cert-fetch", required_argument, NULL, O_EK_CERT_FETCH },
        { "store", required_argument, NULL, O_STORE },
        { "instance", required_argument, NULL, O_INSTANCE },
        { "log-format", required_argument, NULL, O_LOG_FORMAT },
        { "http-listen", required_argument, NULL, O_HTTP_LISTEN },
        { "trust-domain", required_argument, NULL, O_TRUST_DOMAIN },
        { "device-ca-cert", required_argument, NULL, O_DEVICE_CA_CERT },
        { "device-ca-key", required_argument, NULL, O_DEVICE_CA_KEY },
        { "crl-url", required_argument, NULL, O_CRL_URL },
        { "device-cert-ttl", required_argument, NULL, O_DEVICE_CERT_TTL },
        { "device-names", required_argument, NULL, O_DEVICE_NAMES },
        {},
};

static const char *option_name(int id) {
        for (size_t i = 0; options[i].name; i++)
                if (options[i].val == id)
                        return options[i].name;
        return "?";
}

void config_free(config *c) {
        free(c->state_dir);
        free(c->store);
        free(c->instance);
        free(c->listen);
        free(c->golden_dir);
        free(c->default_golden);
        free(c->ek_ca);
        free(c->allowlist);
        free(c->api_listen);
        free(c->http_listen);
        free(c->api_client_ca);
        free(c->trust_domain);
        free(c->device_ca_cert);
        free(c->device_ca_key);
        free(c->crl_url);
        free(c->device_names);
        for (size_t i = 0; i < c->n_api_admins; i++)
                free(c->api_admins[i]);
        for (size_t i = 0; i < c->n_api_readers; i++)
                free(c->api_readers[i]);
        free(c->api_admins);
        free(c->api_readers);
        for (size_t i = 0; i < c->n_ek_services; i++)
                free(c->ek_services[i].base);
        free(c->ek_services);
}

static int add_ek_service(config *c, const char *spec) {
        char err[300];
        ek_service svc;
        int r = ekfetch_parse(spec, &svc, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "vouchd: --ek-cert-fetch %s\n", r == -ENOMEM ? "out of memory" : err);
                return r;
        }
        ek_service *n = realloc(c->ek_services, (c->n_ek_services + 1) * sizeof(*n));
        if (!n) {
                free(svc.base);
                return -ENOMEM;
        }
        c->ek_services = n;
        for (size_t i = 0; i < c->n_ek_services; i++)
                if (n[i].manufacturer == svc.manufacturer) { /* the last one given wins */
                        free(n[i].base);
                        n[i] = svc;
                        return 0;
                }
        n[c->n_ek_services++] = svc;
        return 0;
}

static int add_str(char ***list, size_t *n, const char *v) {
        char **nl = realloc(*list, (*n + 1) * sizeof(*nl));
        if (!nl)
                return -ENOMEM;
        *list = nl;
        if (!(nl[*n] = strdup(v)))
                return -ENOMEM;
        (*n)++;
        return 0;
}

static int set_uint(const char *name, const char *v, unsigned min, unsigned max, unsigned *out) {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || *end || !*v || n < min || n > max) {
                fprintf(stderr, "vouchd: --%s: \"%s\" is not a number in %u-%u\n", name, v, min, max);
                return -EINVAL;
        }
        *out = (unsigned) n;
        return 0;
}

static int set_str(char **dst, const char *v) {
        free(*dst);
        *dst = strdup(v);
        return *dst ? 0 : -ENOMEM;
}

/* The store checks the name too (vs_open_ex); this says it at the command line. */
static int set_instance(config *c, const char *v) {
        size_t n = strlen(v);
        if (n < 1 || n > 63 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n) {
                fprintf(stderr, "vouchd: --instance: \"%s\" is not 1-63 characters from A-Z a-z 0-9 . _ -\n", v);
                return -EINVAL;
        }
        return set_str(&c->instance, v);
}

static int apply_option(config *c, int id, const char *name, const char *v) {
        switch (id) {
        case O_STATE: return set_str(&c->state_dir, v);
        case O_LISTEN: return set_str(&c->listen, v);
        case O_GOLDEN_DIR: return set_str(&c->golden_dir, v);
        case O_DEFAULT_GOLDEN: return set_str(&c->default_golden, v);
        case O_EK_CA: return set_str(&c->ek_ca, v);
        case O_ALLOWLIST: return set_str(&c->allowlist, v);
        case O_INTERVAL: return set_uint(name, v, 1, 86400, &c->interval);
        case O_JITTER: return set_uint(name, v, 0, 50, &c->jitter_pct);
        case O_NONCE_TIMEOUT: return set_uint(name, v, 1, 3600, &c->nonce_timeout);
        case O_HELLO_TIMEOUT: return set_uint(name, v, 1, 3600, &c->hello_timeout);
        case O_THREADS: return set_uint(name, v, 0, 256, &c->threads);
        case O_MAX_CONN: return set_uint(name, v, 1, 10000000, &c->max_connections);
        case O_ACCEPT_RATE: return set_uint(name, v, 0, 1000000, &c->accept_rate);
        case O_MAX_FRAME: return set_uint(name, v, 1024, 64u << 20, &c->max_frame);
        case O_HISTORY: return set_uint(name, v, 1, 1000000, &c->history);
        case O_TTL: return set_uint(name, v, 1, 1000, &c->verdict_ttl_intervals);
        case O_API_LISTEN: return set_str(&c->api_listen, v);
        case O_HTTP_LISTEN: return set_str(&c->http_listen, v);
        case O_TRUST_DOMAIN: return set_str(&c->trust_domain, v);
        case O_DEVICE_CA_CERT: return set_str(&c->device_ca_cert, v);
        case O_DEVICE_CA_KEY: return set_str(&c->device_ca_key, v);
        case O_CRL_URL: return set_str(&c->crl_url, v);
        case O_DEVICE_CERT_TTL: return set_uint(name, v, 30, 31536000, &c->device_cert_ttl);
        case O_DEVICE_NAMES: return set_str(&c->device_names, v);
        case O_API_CLIENT_CA: return set_str(&c->api_client_ca, v);
        case O_API_ADMIN: return add_str(&c->api_admins, &c->n_api_admins, v);
        case O_API_READER: return add_str(&c->api_readers, &c->n_api_readers, v);
        case O_SHA1: c->allow_sha1 = !v || strcmp(v, "false") != 0; return 0;
        case O_FRESH_STORE: c->fresh_store = !v || strcmp(v, "false") != 0; return 0;
        case O_EK_CERT_FETCH: return add_ek_service(c, v);
        case O_STORE: return set_str(&c->store, v);
        case O_INSTANCE: return set_instance(c, v);
        case O_LOG_FORMAT: {
                vu_log_format f;
                if (vu_log_format_parse(v, &f) < 0) {
                        fprintf(stderr, "vouchd: --log-format: \"%s\" is not text or json\n", v);
                        return -EINVAL;
                }
                c->log_format = (int) f;
                return 0;
        }
        case O_APPROVAL:
                if (strcmp(v, "auto") == 0)
                        c->approval = APPROVAL_AUTO;
                else if (strcmp(v, "allowlist") == 0)
                        c->approval = APPROVAL_ALLOWLIST;
                else {
                        fprintf(stderr, "vouchd: --approval: \"%s\" is not auto or allowlist\n", v);
                        return -EINVAL;
                }
                return 0;
        case O_LOG_LEVEL: {
                static const char *const lv[] = { "error", "warning", "info", "debug" };
                for (int i = 0; i < 4; i++)
                        if (strcmp(v, lv[i]) == 0) {
                                c->log_level = i;
                                return 0;
                        }
                fprintf(stderr, "vouchd: --log-level: \"%s\" is not error, warning, info or debug\n", v);
                return -EINVAL;
        }
        }
        return -EINVAL;
}

/* "name = value" lines; # comments. */
static int load_config(config *c, const char *path) {
        FILE *f = fopen(path, "r");
        char line[4096];
        unsigned n = 0;
        if (!f) {
                fprintf(stderr, "vouchd: cannot open config %s: %s\n", path, strerror(errno));
                return -errno;
        }
        while (fgets(line, sizeof(line), f)) {
                char *p = line, *eq, *k, *v;
                n++;
                p[strcspn(p, "\r\n")] = 0;
                p += strspn(p, " \t");
                if (!*p || *p == '#')
                        continue;
                eq = strchr(p, '=');
                k = p;
                v = eq ? eq + 1 : NULL;
                if (eq)
                        *eq = 0;
                for (char *e = k + strlen(k); e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
                        e[-1] = 0;
                for (char *e = k; *e; e++) /* api_admin and api-admin alike */
                        if (*e == '_')
                                *e = '-';
                if (v) {
                        v += strspn(v, " \t");
                        for (char *e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
                                e[-1] = 0;
                }
                const struct option *o = NULL;
                for (size_t i = 0; options[i].name; i++)
                        if (strcmp(options[i].name, k) == 0)
                                o = &options[i];
                /* the command line only (>= O_NAME): an init, a rotation, or a fresh start is said each time */
                if (!o || o->val == O_CONFIG || o->val == O_HELP || o->val == O_SAN || o->val >= O_NAME ||
                    (!v && o->has_arg)) {
                        fprintf(stderr, "vouchd: %s:%u: unknown or incomplete setting \"%s\"\n", path, n, k);
                        fclose(f);
                        return -EINVAL;
                }
                if (apply_option(c, o->val, k, v) < 0) {
                        fprintf(stderr, "vouchd: %s:%u: bad value for %s\n", path, n, k);
                        fclose(f);
                        return -EINVAL;
                }
        }
        fclose(f);
        return 0;
}

void config_defaults(config *c) {
        *c = (config) { .interval = 60, .jitter_pct = 10, .nonce_timeout = 30, .hello_timeout = 10,
                        .max_connections = 0, .max_frame = 4u << 20, .history = 100,
                        .verdict_ttl_intervals = 3, .log_level = LOG_INFO };
}

static vouchd_cmd command_of(int argc, char **argv) {
        static const char *const names[] = { [CMD_INIT] = "init", [CMD_ISSUE_CLIENT] = "issue-client",
                                             [CMD_ROTATE_KEY] = "rotate-key" };
        if (argc > 1)
                for (int i = CMD_INIT; i <= CMD_ROTATE_KEY; i++)
                        if (strcmp(argv[1], names[i]) == 0)
                                return (vouchd_cmd) i;
        return CMD_RUN;
}

int config_parse(config *c, int argc, char **argv, config_args *ret) {
        const char *config_path = NULL;
        config_args a = { .cmd = command_of(argc, argv) };
        int o;

        /* the config file first, so flags override it */
        for (int i = 1; i < argc - 1; i++)
                if (strcmp(argv[i], "--config") == 0)
                        config_path = argv[i + 1];
                else if (strncmp(argv[i], "--config=", 9) == 0)
                        config_path = argv[i] + 9;
        if (config_path && load_config(c, config_path) < 0)
                return 2;
        optind = a.cmd == CMD_RUN ? 1 : 2;
        while ((o = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (o == O_HELP || o == 'h') {
                        a.cmd = CMD_HELP;
                        break;
                }
                if (o == O_CONFIG)
                        continue;
                if (o == O_NAME || o == O_OUT || o == O_OLD_VALID || o == O_JOIN) {
                        *(o == O_NAME ? &a.name : o == O_OUT ? &a.out : o == O_OLD_VALID ? &a.old_valid : &a.join) = optarg;
                        continue;
                }
                if (o == O_SAN) {
                        if (a.n_sans < CONFIG_MAX_SANS)
                                a.sans[a.n_sans++] = optarg;
                        continue;
                }
                if (o == '?' || apply_option(c, o, option_name(o), optarg) < 0) {
                        fputs(config_usage, stderr);
                        return 2;
                }
        }
        if (a.cmd != CMD_HELP && optind != argc) {
                fprintf(stderr, "vouchd: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        if (a.join && a.cmd != CMD_INIT && a.cmd != CMD_HELP) {
                fprintf(stderr, "vouchd: --join is for vouchd init (a new state dir joining a deployment)\n");
                return 2;
        }
        if (a.cmd != CMD_HELP && !c->state_dir) {
                fprintf(stderr, "vouchd: --state-dir is required\n%s", config_usage);
                return 2;
        }
        *ret = a;
        return 0;
}

const char *config_store_url(const config *c, char *buf, size_t n) {
        if (c->store)
                return c->store;
        snprintf(buf, n, "%s/vouch.db", c->state_dir);
        return buf;
}

bool config_store_is_file(const config *c) {
        return !c->store || (strncmp(c->store, "postgresql:", 11) != 0 && strncmp(c->store, "postgres:", 9) != 0);
}
