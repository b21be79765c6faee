/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd: the attestation verifier. `vouchd init` prepares a state dir; otherwise it runs
 * in the foreground: one event loop per core accepting agents over TLS 1.3. */
#include <errno.h>
#include <fcntl.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <dirent.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vouchd.h"
#include "api.h"
#include "ekfetch.h"
#include "keys.h"
#include "statedir.h"
#include "tls.h"

static const char usage[] =
        "Usage:\n"
        "  vouchd init --state-dir DIR [--san NAME ...]\n"
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
        "  --max-frame BYTES       largest message accepted (default 4194304)\n"
        "  --history N             verdicts kept per device (default 100)\n"
        "  --verdict-ttl N         verdicts expire after N intervals (default 3)\n"
        "  --allow-sha1            accept SHA-1 signed quotes (refused by default)\n"
        "  --fresh-store           start with an empty store although the state dir has keys\n"
        "                          (vouch.db missing or empty is refused otherwise:\n"
        "                          docs/failure-behaviour.md)\n"
        "  --log-level LEVEL       error, warning, info (default), debug\n"
        "Policy-engine API (HTTPS, mutual TLS; docs/API.md):\n"
        "  --api-listen HOST:PORT  where it listens (off when not set)\n"
        "  --api-client-ca FILE    CA of client certificates (default: the state dir's ca.pem)\n"
        "  --api-admin CN          a client certificate CN with the admin role (repeatable)\n"
        "  --api-reader CN         a client certificate CN with the reader role (repeatable)\n"
        "Signals: SIGTERM/SIGINT drain and exit; SIGHUP reloads the golden sets and the\n"
        "verdict-signing keys (after rotate-key).\n";

enum {
        O_STATE = 256, O_LISTEN, O_GOLDEN_DIR, O_DEFAULT_GOLDEN, O_EK_CA, O_CONFIG, O_INTERVAL, O_APPROVAL, O_ALLOWLIST,
        O_JITTER, O_NONCE_TIMEOUT, O_HELLO_TIMEOUT, O_THREADS, O_MAX_CONN, O_MAX_FRAME, O_HISTORY, O_TTL, O_SHA1,
        O_LOG_LEVEL, O_SAN, O_HELP, O_API_LISTEN, O_API_CLIENT_CA, O_API_ADMIN, O_API_READER, O_EK_CERT_FETCH,
        /* from here on: the command line only (load_config) */
        O_NAME, O_OUT, O_OLD_VALID, O_FRESH_STORE,
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
        { "ek-cert-fetch", required_argument, NULL, O_EK_CERT_FETCH },
        {},
};

static const char *option_name(int id) {
        for (size_t i = 0; options[i].name; i++)
                if (options[i].val == id)
                        return options[i].name;
        return "?";
}

static void config_free(config *c) {
        free(c->state_dir);
        free(c->listen);
        free(c->golden_dir);
        free(c->default_golden);
        free(c->ek_ca);
        free(c->allowlist);
        free(c->api_listen);
        free(c->api_client_ca);
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
        case O_MAX_FRAME: return set_uint(name, v, 1024, 64u << 20, &c->max_frame);
        case O_HISTORY: return set_uint(name, v, 1, 1000000, &c->history);
        case O_TTL: return set_uint(name, v, 1, 1000, &c->verdict_ttl_intervals);
        case O_API_LISTEN: return set_str(&c->api_listen, v);
        case O_API_CLIENT_CA: return set_str(&c->api_client_ca, v);
        case O_API_ADMIN: return add_str(&c->api_admins, &c->n_api_admins, v);
        case O_API_READER: return add_str(&c->api_readers, &c->n_api_readers, v);
        case O_SHA1: c->allow_sha1 = !v || strcmp(v, "false") != 0; return 0;
        case O_FRESH_STORE: c->fresh_store = !v || strcmp(v, "false") != 0; return 0;
        case O_EK_CERT_FETCH: return add_ek_service(c, v);
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

/* The whole file, at most max bytes: -EFBIG when it is larger (never cut short), -EIO when
 * a read fails. */
static int read_whole(const char *path, size_t max, uint8_t **ret, size_t *len) {
        FILE *f = fopen(path, "rb");
        struct stat st;
        if (!f)
                return -errno;
        if (fstat(fileno(f), &st) < 0 || st.st_size < 0 || (uint64_t) st.st_size > max) {
                fclose(f);
                return -EFBIG;
        }
        size_t cap = (size_t) st.st_size + 1, n = 0;
        uint8_t *b = malloc(cap);
        if (!b) {
                fclose(f);
                return -ENOMEM;
        }
        /* the size may have changed since fstat: read to the end, within max */
        for (size_t got; (got = fread(b + n, 1, cap - n, f)) > 0;) {
                n += got;
                if (n == cap) {
                        uint8_t *nb = cap > max ? NULL : realloc(b, cap * 2);
                        if (!nb) {
                                free(b);
                                fclose(f);
                                return cap > max ? -EFBIG : -ENOMEM;
                        }
                        b = nb;
                        cap *= 2;
                }
        }
        int bad = ferror(f);
        fclose(f);
        if (bad || n > max) {
                free(b);
                return bad ? -EIO : -EFBIG;
        }
        *ret = b;
        *len = n;
        return 0;
}

static int load_allowlist(vouchd *d) {
        FILE *f = fopen(d->cfg.allowlist, "r");
        char line[256];
        if (!f) {
                vlog(LOG_ERR, "cannot open the allowlist %s: %s", d->cfg.allowlist, strerror(errno));
                return -errno;
        }
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, " \t\r\n#")] = 0;
                if (!line[0])
                        continue;
                if (strlen(line) != 64 || strspn(line, "0123456789abcdefABCDEF") != 64) {
                        vlog(LOG_ERR, "%s: \"%s\" is not a SHA-256 fingerprint", d->cfg.allowlist, line);
                        fclose(f);
                        return -EINVAL;
                }
                char **n = realloc(d->allow, (d->n_allow + 1) * sizeof(char *));
                if (!n || !(n[d->n_allow] = strdup(line))) {
                        fclose(f);
                        return -ENOMEM;
                }
                d->allow = n;
                d->n_allow++;
        }
        fclose(f);
        return 0;
}

/* accept() failed: out of file descriptors (or memory) is not a reason to spin. The
 * listener pauses for 100 ms and logs once per pause, connections already open go on. */
static void resume_cb(evutil_socket_t fd, short what, void *arg) {
        loop *l = arg;
        if (!atomic_load(&l->d->stopping))
                evconnlistener_enable(l->listener);
}

static void accept_error_cb(struct evconnlistener *lis, void *arg) {
        loop *l = arg;
        int e = EVUTIL_SOCKET_ERROR();
        static atomic_ullong last_log;
        unsigned long long now = (unsigned long long) time(NULL);
        if (atomic_exchange(&last_log, now) != now)
                vlog(LOG_WARN, "accept: %s; pausing new connections for 100 ms (%u open; raise the file limit, see "
                               "docs/vouchd.md, 'Limits')",
                     evutil_socket_error_to_string(e), atomic_load(&l->d->connections));
        evconnlistener_disable(lis);
        struct timeval tv = { 0, 100000 };
        event_base_once(l->base, -1, EV_TIMEOUT, resume_cb, l, &tv);
}

/* Every agent is one file descriptor: raise the soft limit to the hard one, and keep
 * max_connections below what the limit allows (room for the store, the API, logs). */
static void check_file_limit(config *c) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
                return;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
                getrlimit(RLIMIT_NOFILE, &rl);
        }
        unsigned long long cur = (unsigned long long) rl.rlim_cur, reserve = cur / 16 < 32 ? 32 : cur / 16;
        if (reserve > 256)
                reserve = 256;
        unsigned long long room = cur > reserve ? cur - reserve : 0;
        /* half of the reserve for API connections (16-128): a flood of them waits in the
         * backlog rather than taking the agents' or the store's descriptors */
        c->api_max_connections = (unsigned) (reserve / 2 > 128 ? 128 : reserve / 2 < 16 ? 16 : reserve / 2);
        if (c->max_connections == 0) { /* the default: what the limit allows */
                c->max_connections = rl.rlim_cur == RLIM_INFINITY || room > 10000000 ? 10000000 : (unsigned) (room ? room : 1);
                vlog(LOG_INFO, "file limit %llu: up to %u agent connections", cur, c->max_connections);
                return;
        }
        if (rl.rlim_cur != RLIM_INFINITY && c->max_connections > room) {
                vlog(LOG_WARN, "the file limit (%llu) allows %llu agent connections, not --max-connections %u; "
                               "using %llu (raise it with ulimit -n / LimitNOFILE=)",
                     cur, room, c->max_connections, room);
                c->max_connections = room ? (unsigned) room : 1;
        }
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg) {
        session_accept(arg, fd);
}

static void *loop_main(void *arg) {
        loop *l = arg;
        event_base_dispatch(l->base);
        return NULL;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, int *len) {
        char host[256];
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t) (colon - listen) >= sizeof(host))
                return -EINVAL;
        snprintf(host, sizeof(host), "%.*s", (int) (colon - listen), listen);
        char addr[300];
        if (host[0] == '[')
                snprintf(addr, sizeof(addr), "%s", listen);
        else if (strchr(host, ':'))
                snprintf(addr, sizeof(addr), "[%s]%s", host, colon);
        else if (strcmp(host, "localhost") == 0 || !host[0])
                snprintf(addr, sizeof(addr), "%s%s", strcmp(host, "localhost") == 0 ? "127.0.0.1" : "0.0.0.0", colon);
        else
                snprintf(addr, sizeof(addr), "%s", listen);
        *len = sizeof(*ss);
        return evutil_parse_sockaddr_port(addr, (struct sockaddr *) ss, len) == 0 ? 0 : -EINVAL;
}

/* One vouchd (or vouchd init) per state dir: a second would share the database and the
 * agents' port (SO_REUSEPORT) and number verdicts from its own memory, and an init beside
 * a running vouchd would mark the store's run clean under it. The lock lives as long as
 * the process (the descriptor is never closed). why (n bytes) says what failed. */
static int lock_state_dir(const char *dir, char *why, size_t n) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/vouchd.lock", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
                snprintf(why, n, "%.3000s: %s", path,
                         fd >= 0 && errno == EWOULDBLOCK ? "another vouchd is running on this state dir" : strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -EBUSY;
        }
        return fd;
}

/* EK CA bundles: vendors' roots and intermediates are a few hundred certificates at most. */
#define EK_CA_MAX (64u << 20)
#define EK_CA_MAX_TEXT "64 MiB"

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* --ek-ca FILE, or a directory: its *.pem files (e.g. ekca/ of the source tree, installed
 * as /usr/share/vouch/ekca), read in name order into one bundle of at most EK_CA_MAX. */
static int read_ek_ca(const char *path, uint8_t **ret, size_t *ret_len, char *err, size_t n) {
        struct stat st;
        if (stat(path, &st) < 0) {
                snprintf(err, n, "%s", strerror(errno));
                return -errno;
        }
        if (!S_ISDIR(st.st_mode)) {
                int r = read_whole(path, EK_CA_MAX, ret, ret_len);
                if (r < 0)
                        snprintf(err, n, "%s", r == -EFBIG ? "larger than " EK_CA_MAX_TEXT : strerror(-r));
                return r;
        }
        DIR *dir = opendir(path);
        struct dirent *de;
        char **names = NULL, file[4200];
        size_t count = 0, len = 0;
        uint8_t *all = NULL;
        int r = 0;
        if (!dir) {
                snprintf(err, n, "%s", strerror(errno));
                return -errno;
        }
        while (r == 0 && (de = readdir(dir))) {
                size_t l = strlen(de->d_name);
                if (l < 5 || strcmp(de->d_name + l - 4, ".pem") != 0 || de->d_name[0] == '.')
                        continue;
                char **nn = realloc(names, (count + 1) * sizeof(*nn));
                if (!nn || !(nn[count] = strdup(de->d_name)))
                        r = -ENOMEM;
                if (nn)
                        names = nn;
                if (r == 0)
                        count++;
        }
        closedir(dir);
        if (r == 0 && count == 0) {
                snprintf(err, n, "a directory with no *.pem file");
                r = -ENOENT;
        }
        if (names)
                qsort(names, count, sizeof(*names), name_cmp);
        for (size_t i = 0; r == 0 && i < count; i++) {
                uint8_t *one = NULL;
                size_t one_len = 0;
                snprintf(file, sizeof(file), "%s/%s", path, names[i]);
                if ((r = read_whole(file, EK_CA_MAX, &one, &one_len)) < 0) {
                        snprintf(err, n, "%.400s: %s", file, r == -EFBIG ? "too large" : strerror(-r));
                        break;
                }
                uint8_t *na = len + one_len + 1 > EK_CA_MAX ? NULL : realloc(all, len + one_len + 1);
                if (!na) {
                        r = len + one_len + 1 > EK_CA_MAX ? -EFBIG : -ENOMEM;
                        snprintf(err, n, "%s", r == -EFBIG ? "its files add up to more than " EK_CA_MAX_TEXT
                                                           : "out of memory");
                } else {
                        all = na;
                        memcpy(all + len, one, one_len);
                        len += one_len;
                        all[len++] = '\n'; /* a file without a final newline ends before the next BEGIN */
                }
                free(one);
        }
        for (size_t i = 0; i < count; i++)
                free(names[i]);
        free(names);
        if (r < 0) {
                free(all);
                return r;
        }
        *ret = all;
        *ret_len = len;
        return 0;
}

/* SO_REUSEPORT lets every socket of the same user bind the port, so a second vouchd (with
 * another state dir) would share the agents with this one. A socket without it cannot
 * bind a port that another process listens on: a probe refuses that before this vouchd's
 * own loops bind with SO_REUSEPORT. */
static int probe_port(const struct sockaddr_storage *ss, int sslen) {
        int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, r = 0;
        if (fd < 0)
                return -errno;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* TIME_WAIT is no owner */
        if (bind(fd, (const struct sockaddr *) ss, (socklen_t) sslen) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* Opens the store: created only in a fresh state dir (or with --fresh-store); an
 * initialised state dir whose vouch.db is missing or empty is refused, so that
 * revocations are never silently forgotten. Then the latest verdicts are settled against
 * how the previous run ended (verdict_settle_at_start). */
static int open_store(vouchd *d, bool fresh_dir) {
        char path[4096], err[1024];
        vs_open_info info;
        snprintf(path, sizeof(path), "%s/vouch.db", d->cfg.state_dir);
        unsigned flags = fresh_dir || d->cfg.fresh_store ? VS_OPEN_CREATE : 0;
        int r = vs_open(path, d->cfg.history, flags, &d->store, &info, err, sizeof(err));
        if (r == -ENOENT) {
                vlog(LOG_ERR, "store: %s, but %s holds vouchd's keys: the devices, their revocations and verdicts "
                              "would be forgotten. Restore vouch.db from a backup, or start with --fresh-store if "
                              "this is meant to be a new store (docs/failure-behaviour.md)",
                     err, d->cfg.state_dir);
                return -ENOENT;
        }
        if (r < 0) {
                vlog(LOG_ERR, "store: %s", err);
                return r;
        }
        if (info.created)
                vlog(LOG_INFO, "store: %s created", path);
        if ((r = registry_load(d)) < 0 || (r = verdict_load_latest(d)) < 0) {
                vs_read_error(d->store, err, sizeof(err));
                if (r == -EUCLEAN)
                        vlog(LOG_ERR, "store: %s is damaged (%s): check it with: sqlite3 %s 'PRAGMA integrity_check'; "
                                      "restore it from a backup, or salvage what is readable with: sqlite3 %s .recover "
                                      "| sqlite3 NEW.db (docs/failure-behaviour.md)",
                             path, err, path, path);
                else
                        vlog(LOG_ERR, "store: cannot load the devices and their verdicts from %s: %s", path,
                             r == -ENOMEM ? "out of memory" : err);
                return r;
        }
        size_t stale = 0, revoked = 0;
        if (!info.previous_clean)
                vlog(LOG_WARN, "store: the previous run did not close it cleanly (a crash, a kill, or a write that "
                               "failed): a verdict it issued may be missing, so every TRUSTED device is STALE until "
                               "it attests again");
        if ((r = verdict_settle_at_start(d, info.previous_clean, &stale, &revoked)) < 0) {
                vs_stats st;
                vs_get_stats(d->store, &st);
                vlog(LOG_ERR, "store: cannot store the verdicts that settle the previous run: %s", st.last_error);
                return r;
        }
        if (stale || revoked)
                vlog(LOG_INFO, "store: %zu TRUSTED verdicts superseded by STALE (finding 'restart'); %zu revoked "
                               "devices given their UNTRUSTED verdict", stale, revoked);
        return 0;
}

static int run(vouchd *d, bool fresh_dir) {
        char path[4096];
        uint8_t *pem = NULL;
        size_t pem_len = 0;
        vc_error verr;
        int r;

        evthread_use_pthreads();
        d->tls = tls_server_ctx(d->cfg.state_dir);
        if (!d->tls || (r = tls_verifier_id(d->cfg.state_dir, d->verifier_id)) < 0) {
                vlog(LOG_ERR, "%s: server.pem, server.key or ca.pem cannot be used (checked by init): %s",
                     d->cfg.state_dir, ERR_reason_error_string(ERR_get_error()) ?: "unreadable");
                return 1;
        }
        /* the real failure, e.g. ENOSPC writing verdict-keys.pem on a full disk */
        if ((r = vk_load(d->cfg.state_dir, &d->keys)) < 0) {
                vlog(LOG_ERR, "%s: cannot load the verdict keys and publish verdict-keys.pem: %s", d->cfg.state_dir,
                     strerror(-r));
                return 1;
        }
        char ekerr[600];
        if ((r = read_ek_ca(d->cfg.ek_ca, &pem, &pem_len, ekerr, sizeof(ekerr))) < 0) {
                vlog(LOG_ERR, "cannot read the EK CA bundle %s: %s", d->cfg.ek_ca, ekerr);
                return 1;
        }
        r = vc_ek_ca_load(pem, pem_len, &d->ek_ca, &verr);
        free(pem);
        if (r < 0) {
                vlog(LOG_ERR, "%s: %s", d->cfg.ek_ca, verr.msg);
                return 1;
        }
        if ((d->cfg.approval == APPROVAL_ALLOWLIST || d->cfg.allowlist) && (!d->cfg.allowlist || load_allowlist(d) < 0)) {
                if (!d->cfg.allowlist)
                        vlog(LOG_ERR, "--approval allowlist needs --allowlist FILE");
                return 1;
        }
        if (ekfetch_init(d) < 0) {
                vlog(LOG_ERR, "--ek-cert-fetch: libcurl cannot be initialised");
                return 1;
        }
        if (golden_table_load(d->cfg.golden_dir, &d->golden) < 0)
                return 1;
        if (!golden_table_find(d->golden, d->cfg.default_golden)) {
                vlog(LOG_ERR, "the default golden set \"%s\" is not in %s", d->cfg.default_golden, d->cfg.golden_dir);
                return 1;
        }
        /* blocked before any thread starts (the store's writer is the first), so that every
         * thread inherits the mask and only sigwait() below takes these: a signal that came
         * while the main thread was not in sigwait() (a SIGTERM right after start, a second
         * SIGHUP during a reload) would otherwise go to a thread that does not block it, and
         * its default action ends the process. A SIGTERM during start-up (opening the store,
         * loading the registry) takes effect once vouchd is ready. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        /* One vouchd per state dir: a second would share the database and the agents' port
         * (SO_REUSEPORT) and number verdicts from its own memory. The lock lives as long as
         * the process (the descriptor is never closed). */
        if (lock_state_dir(d->cfg.state_dir, path, sizeof(path)) < 0) {
                vlog(LOG_ERR, "%s", path);
                return 1;
        }
        struct sockaddr_storage ss;
        int sslen;
        if (parse_listen(d->cfg.listen, &ss, &sslen) < 0) {
                vlog(LOG_ERR, "--listen %s: expected HOST:PORT", d->cfg.listen);
                return 1;
        }
        if ((r = probe_port(&ss, sslen)) < 0) {
                vlog(LOG_ERR, "--listen %s: %s", d->cfg.listen,
                     r == -EADDRINUSE ? "the port is in use by another process (another vouchd?)" : strerror(-r));
                return 1;
        }
        if (open_store(d, fresh_dir) < 0)
                return 1;
        check_file_limit(&d->cfg);
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        d->n_loops = d->cfg.threads ? d->cfg.threads : (unsigned) (cores > 0 ? cores : 1);
        d->loops = calloc(d->n_loops, sizeof(*d->loops));
        if (!d->loops)
                return 1;
        /* one loop per core, each with its own listening socket on the same port
         * (SO_REUSEPORT): the kernel spreads connections, a connection stays on its loop */
        for (unsigned i = 0; i < d->n_loops; i++) {
                loop *l = &d->loops[i];
                l->d = d;
                l->index = i;
                l->base = event_base_new();
                if (!l->base || session_loop_init(l) < 0 || vc_eval_cache_new(4096, &l->cache) < 0 ||
                    vc_hasher_new(&l->hasher) < 0)
                        return 1;
                l->listener = evconnlistener_new_bind(l->base, accept_cb, l,
                                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                              LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
                                                      4096, (struct sockaddr *) &ss, sslen);
                if (!l->listener) {
                        vlog(LOG_ERR, "cannot listen on %s: %s", d->cfg.listen, strerror(errno));
                        return 1;
                }
                evconnlistener_set_error_cb(l->listener, accept_error_cb);
        }
        if (api_start(d) < 0)
                return 1;
        for (unsigned i = 0; i < d->n_loops; i++) {
                int e = pthread_create(&d->loops[i].thread, NULL, loop_main, &d->loops[i]);
                if (e != 0) {
                        /* the loops already running stop before main() frees what they use */
                        vlog(LOG_ERR, "cannot start event loop %u: %s", i, strerror(e));
                        atomic_store(&d->stopping, true);
                        api_stop(d);
                        for (unsigned k = 0; k < i; k++)
                                event_base_loopexit(d->loops[k].base, NULL);
                        for (unsigned k = 0; k < i; k++)
                                pthread_join(d->loops[k].thread, NULL);
                        return 1;
                }
        }
        vlog(LOG_INFO, "listening on %s with %u event loops; %zu devices; golden default %s; verifier %.16s",
             d->cfg.listen, d->n_loops, d->n_devices, d->cfg.default_golden, d->verifier_id);
        printf("vouchd: ready on %s\n", d->cfg.listen);
        fflush(stdout);
        for (;;) {
                int sig;
                if (sigwait(&set, &sig) != 0)
                        continue;
                if (sig == SIGHUP) {
                        golden_table *t;
                        if (golden_table_load(d->cfg.golden_dir, &t) < 0 || !golden_table_find(t, d->cfg.default_golden)) {
                                vlog(LOG_ERR, "SIGHUP: golden sets not reloaded (errors above); the old ones stay");
                                continue;
                        }
                        pthread_mutex_lock(&d->lock);
                        golden_table *old = d->golden;
                        d->golden = t;
                        pthread_mutex_unlock(&d->lock);
                        golden_table_unref(old);
                        vlog(LOG_INFO, "SIGHUP: %zu golden sets reloaded", t->n);
                        if (verdict_keys_reload(d) < 0) {
                                vlog(LOG_ERR, "SIGHUP: verdict keys not reloaded; the old ones stay");
                                continue;
                        }
                        pthread_mutex_lock(&d->seq_lock);
                        vlog(LOG_INFO, "SIGHUP: verdicts are signed with key %.16s; %zu retired keys published",
                             d->keys.active.id, d->keys.n_retired);
                        pthread_mutex_unlock(&d->seq_lock);
                        continue;
                }
                vlog(LOG_INFO, "signal %d: draining", sig);
                break;
        }
        atomic_store(&d->stopping, true);
        api_stop(d);
        for (unsigned i = 0; i < d->n_loops; i++) {
                evconnlistener_disable(d->loops[i].listener);
                event_base_loopexit(d->loops[i].base, NULL);
        }
        for (unsigned i = 0; i < d->n_loops; i++)
                pthread_join(d->loops[i].thread, NULL);
        ekfetch_fini(d); /* their answers wait on the loops, run (and dropped) below in main() */
        vs_flush(d->store);
        vlog(LOG_INFO, "stopped: %llu attestations trusted, %llu not, %llu enrollments",
             (unsigned long long) d->attestations_ok, (unsigned long long) d->attestations_bad,
             (unsigned long long) d->enrollments);
        return 0;
}

/* vouchd init makes the store too, in a fresh state dir only: an initialised one whose store
 * is gone is not silently given an empty one (vouchd --fresh-store says so). */
static int init_store(const char *dir, bool fresh, char *err, size_t n) {
        char path[4200];
        struct stat st;
        vs_store *s = NULL;
        snprintf(path, sizeof(path), "%s/vouch.db", dir);
        if (!fresh && (stat(path, &st) < 0 || st.st_size == 0)) {
                fprintf(stderr, "vouchd init: warning: %s is %s but the state dir has keys: vouchd refuses to start "
                                "without it; restore it from a backup, or start vouchd once with --fresh-store\n",
                        path, stat(path, &st) < 0 ? "missing" : "empty");
                return 0;
        }
        int r = vs_open(path, 1, fresh ? VS_OPEN_CREATE : 0, &s, NULL, err, n);
        vs_close(s);
        return r;
}

static int vouchd_main(vouchd *dp, int argc, char **argv) {
        vouchd *d = dp;
        config *c = &d->cfg;
        const char *config_path = NULL;
        char *sans[32];
        size_t n_sans = 0;
        bool init = argc > 1 && strcmp(argv[1], "init") == 0;
        bool issue = argc > 1 && strcmp(argv[1], "issue-client") == 0;
        bool rotate = argc > 1 && strcmp(argv[1], "rotate-key") == 0;
        const char *name = NULL, *out = NULL, *old_valid = NULL;
        int o;

        setenv("TSS2_LOG", "all+none", 0);
        *c = (config) { .interval = 60, .jitter_pct = 10, .nonce_timeout = 30, .hello_timeout = 10,
                        .max_connections = 0, .max_frame = 4u << 20, .history = 100,
                        .verdict_ttl_intervals = 3, .log_level = LOG_INFO };
        pthread_mutex_init(&d->lock, NULL);
        pthread_mutex_init(&d->seq_lock, NULL);
        /* the config file first, so flags override it */
        for (int i = 1; i < argc - 1; i++)
                if (strcmp(argv[i], "--config") == 0)
                        config_path = argv[i + 1];
                else if (strncmp(argv[i], "--config=", 9) == 0)
                        config_path = argv[i] + 9;
        if (config_path && load_config(c, config_path) < 0)
                return 2;
        optind = init || issue || rotate ? 2 : 1;
        while ((o = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (o == O_HELP || o == 'h') {
                        fputs(usage, stdout);
                        return 0;
                }
                if (o == O_CONFIG)
                        continue;
                if (o == O_NAME || o == O_OUT || o == O_OLD_VALID) {
                        *(o == O_NAME ? &name : o == O_OUT ? &out : &old_valid) = optarg;
                        continue;
                }
                if (o == O_SAN) {
                        if (n_sans < 32)
                                sans[n_sans++] = optarg;
                        continue;
                }
                if (o == '?' || apply_option(c, o, option_name(o), optarg) < 0) {
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "vouchd: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        vlog_level = c->log_level;
        if (!c->state_dir) {
                fprintf(stderr, "vouchd: --state-dir is required\n%s", usage);
                return 2;
        }
        char err[1200];
        bool fresh = statedir_is_fresh(c->state_dir);
        if (init) {
                if (tls_init_state_dir(c->state_dir, sans, n_sans, true, err, sizeof(err)) < 0 ||
                    lock_state_dir(c->state_dir, err, sizeof(err)) < 0 || init_store(c->state_dir, fresh, err, sizeof(err)) < 0) {
                        fprintf(stderr, "vouchd init: %s\n", err);
                        return 1;
                }
                printf("state dir %s ready\n  CA (give it to agents with --ca): %s/ca.pem\n"
                       "  server certificate: %s/server.pem\n  verdict-signing key: %s/verdict.key "
                       "(public: %s/verdict-keys.pem)\n",
                       c->state_dir, c->state_dir, c->state_dir, c->state_dir, c->state_dir);
                return 0;
        }
        if ((issue || rotate) && statedir_check(c->state_dir, err, sizeof(err)) < 0) {
                fprintf(stderr, "vouchd %s: %s\n", argv[1], err);
                return 1;
        }
        if (issue) {
                if (!name || !out || !*name || strlen(name) > 64) {
                        fprintf(stderr, "vouchd issue-client: --name CN (1-64 characters) and --out PREFIX are needed\n");
                        return 2;
                }
                int r = tls_issue_client(c->state_dir, name, out);
                if (r < 0) {
                        fprintf(stderr, "vouchd issue-client: cannot issue from %s/ca.pem: %s\n", c->state_dir,
                                strerror(-r));
                        return 1;
                }
                printf("client certificate for \"%s\": %s.crt, key %s.key (mode 0600)\n", name, out, out);
                return 0;
        }
        if (rotate) {
                int64_t until = time(NULL) + 30 * 86400;
                if (old_valid) {
                        struct tm tm = { 0 };
                        char *end = NULL;
                        long long n = strtoll(old_valid, &end, 10);
                        if (end && !*end && *old_valid)
                                until = n;
                        else if ((end = strptime(old_valid, "%Y-%m-%dT%H:%M:%SZ", &tm)) && !*end)
                                until = timegm(&tm);
                        else {
                                fprintf(stderr, "vouchd rotate-key: --old-valid-until \"%s\": expected Unix seconds or "
                                                "YYYY-MM-DDTHH:MM:SSZ\n", old_valid);
                                return 2;
                        }
                }
                char id[65];
                int r = vk_rotate(c->state_dir, until, id);
                verdict_keys k;
                if (r < 0 || vk_load(c->state_dir, &k) < 0) {
                        fprintf(stderr, "vouchd rotate-key: %s: %s\n", c->state_dir, strerror(r < 0 ? -r : EIO));
                        return 1;
                }
                verdict_keys_free(&k);
                printf("new verdict-signing key %s; the old one verifies until %lld; %s/verdict-keys.pem updated.\n"
                       "Send vouchd SIGHUP (or restart it) to sign with the new key.\n",
                       id, (long long) until, c->state_dir);
                return 0;
        }
        if (!c->listen || !c->golden_dir || !c->default_golden || !c->ek_ca) {
                fprintf(stderr, "vouchd: --listen, --golden-dir, --default-golden and --ek-ca are required\n%s", usage);
                return 2;
        }
        /* the first start in a fresh state dir creates what init would; otherwise every key
         * must be there and readable */
        if (tls_init_state_dir(c->state_dir, NULL, 0, fresh, err, sizeof(err)) < 0) {
                fprintf(stderr, "vouchd: %s\n", err);
                return 1;
        }
        return run(d, fresh);
}


int main(int argc, char **argv) {
        vouchd d = { 0 };
        config *c = &d.cfg;
        int r = vouchd_main(&d, argc, argv);
        if (d.store)
                vs_close(d.store); /* after the loops: pending commits still reach their sessions' bases */
        for (unsigned i = 0; d.loops && i < d.n_loops; i++) {
                loop *l = &d.loops[i];
                /* let the last store callbacks release what they hold */
                if (l->base)
                        event_base_loop(l->base, EVLOOP_NONBLOCK);
                session_free_all(l);
                if (l->listener)
                        evconnlistener_free(l->listener);
                session_loop_fini(l);
                if (l->base)
                        event_base_free(l->base);
                vc_eval_cache_free(l->cache);
                vc_hasher_free(l->hasher);
                OPENSSL_cleanse(l->nonce_pool, sizeof(l->nonce_pool));
        }
        free(d.loops);
        registry_free(&d);
        golden_table_unref(d.golden);
        vc_ek_ca_free(d.ek_ca);
        SSL_CTX_free(d.tls);
        api_free(&d);
        verdict_keys_free(&d.keys);
        for (size_t i = 0; i < d.n_allow; i++)
                free(d.allow[i]);
        free(d.allow);
        config_free(c);
        return r;
}
