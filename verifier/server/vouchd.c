/* SPDX-License-Identifier: Apache-2.0 */
/* libvouchd's life cycle: start (keys, trust anchors, golden sets, the store, the loops and
 * the API), reload on SIGHUP, drain, free. main.c is the command line around it. */
#include <errno.h>
#include <fcntl.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <dirent.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "api-internal.h"
#include "api.h"
#include "devcert.h"
#include "ekfetch.h"
#include "fileio.h"
#include "health.h"
#include "ident.h"
#include "keys.h"
#include "tls.h"
#include "vouchd.h"

void vouchd_init(vouchd *d) {
        *d = (vouchd) { 0 };
        config_defaults(&d->cfg);
        pthread_mutex_init(&d->lock, NULL);
        pthread_mutex_init(&d->seq_lock, NULL);
        lease_init(d);
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

static int64_t mono_us(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t) t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* --accept-rate, per loop: tokens at the loop's share of the rate, at most a tenth of a
 * second's worth (and one) saved up. */
static double accept_share(const loop *l) {
        return (double) l->d->cfg.accept_rate / l->d->n_loops;
}

static void accept_refill(loop *l, int64_t now) {
        double rate = accept_share(l), cap = rate / 10 < 1 ? 1 : rate / 10;
        l->accept_tokens += (double) (now - l->accept_refill_us) * rate / 1e6;
        if (l->accept_tokens > cap)
                l->accept_tokens = cap;
        l->accept_refill_us = now;
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg) {
        loop *l = arg;
        if (!atomic_load(&l->d->stopping))
                evconnlistener_enable(l->listener);
}

/* A reconnection storm (an instance died and its agents come to the others, a network came
 * back) would take the CPU that the connected agents' attestations need: with --accept-rate
 * the listener is turned off while the loop's share is used up, and the connections wait in
 * the kernel's listen backlog (no handshake, no descriptor) until it is on again. */
static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg) {
        loop *l = arg;
        session_accept(l, fd);
        if (!l->d->cfg.accept_rate)
                return;
        int64_t now = mono_us();
        accept_refill(l, now);
        l->accept_tokens -= 1;
        if (l->accept_tokens >= 1)
                return;
        /* (libevent accepts no more in this round once the listener is off) */
        evconnlistener_disable(lis);
        atomic_fetch_add(&l->d->accept_pauses, 1);
        int64_t wait = (int64_t) ((1 - l->accept_tokens) * 1e6 / accept_share(l)) + 1;
        struct timeval tv = { (time_t) (wait / 1000000), (suseconds_t) (wait % 1000000) };
        evtimer_add(l->accept_resume, &tv);
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
int vouchd_lock_state_dir(const char *dir, char *why, size_t n) {
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
                int r = vu_read_file(AT_FDCWD, path, EK_CA_MAX, ret, ret_len);
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
                if ((r = vu_read_file(AT_FDCWD, file, EK_CA_MAX, &one, &one_len)) < 0) {
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

/* A shared store (ident.h): this instance's CA checked, its golden sets registered and its
 * verdict keys published; another CA, or a set whose name and version the deployment holds
 * with another content, refuses the start. */
static int join_deployment(vouchd *d) {
        char err[1024];
        int r;
        /* the CA and the golden sets first: an instance refused publishes nothing */
        if ((r = ident_check_ca(d, err, sizeof(err))) < 0) {
                vlog(LOG_ERR, "store: %s", err);
                return r;
        }
        if ((r = ident_register_golden(d, d->golden, err, sizeof(err))) < 0) {
                vlog(LOG_ERR, "golden sets in %s: %s%s", d->cfg.golden_dir, err,
                     r == -EEXIST ? "; not started (a name and version must mean one content in the whole deployment)"
                                  : "");
                return r;
        }
        if ((r = ident_publish_keys(d, &d->keys, false, err, sizeof(err))) < 0) {
                vlog(LOG_ERR, "store: cannot publish this instance's verdict keys: %s", err);
                return r;
        }
        vlog(LOG_INFO, "store: instance %s published verdict key %.16s and %zu retired; %zu golden sets agree with the "
                       "deployment's", d->cfg.instance ? d->cfg.instance : "default", d->keys.active.id,
             d->keys.n_retired, d->golden->n);
        return 0;
}

/* Opens the store: created only in a fresh state dir (or with --fresh-store); an
 * initialised state dir whose vouch.db is missing or empty is refused, so that
 * revocations are never silently forgotten. Then the latest verdicts are settled against
 * how the previous run ended (verdict_settle_at_start). */
static int open_store(vouchd *d, bool fresh_dir) {
        char url[4096], err[1024];
        vs_open_info info;
        const char *path = config_store_url(&d->cfg, url, sizeof(url));
        bool file = config_store_is_file(&d->cfg);
        unsigned flags = fresh_dir || d->cfg.fresh_store ? VS_OPEN_CREATE : 0;
        vs_open_options opt = { .history_keep = d->cfg.history, .flags = flags, .instance = d->cfg.instance };
        int r = vs_open_ex(path, &opt, &d->store, &info, err, sizeof(err));
        if (r == -ENOENT) {
                vlog(LOG_ERR, "store: %s, but %s holds vouchd's keys: the devices, their revocations and verdicts "
                              "would be forgotten. Restore the store from a backup, or start with --fresh-store if "
                              "this is meant to be a new store (docs/failure-behaviour.md)",
                     err, d->cfg.state_dir);
                return -ENOENT;
        }
        if (r < 0) {
                vlog(LOG_ERR, "store: %s", err);
                return r;
        }
        d->shared = !file;
        if (info.created)
                vlog(LOG_INFO, "store: %s created", file ? path : "the PostgreSQL schema");
        /* before any verdict is signed (the settling below): every instance serves this
         * one's keys, and its golden sets are the deployment's */
        if (d->shared && (r = join_deployment(d)) < 0)
                return r;
        if (d->shared && (r = devcert_check_deployment(d, err, sizeof(err))) < 0) {
                vlog(LOG_ERR, "store: %s", err);
                return r;
        }
        if ((r = registry_load(d)) < 0 || (r = verdict_load_latest(d)) < 0) {
                vs_read_error(d->store, err, sizeof(err));
                if (r == -EUCLEAN && file)
                        vlog(LOG_ERR, "store: %s is damaged (%s): check it with: sqlite3 %s 'PRAGMA integrity_check'; "
                                      "restore it from a backup, or salvage what is readable with: sqlite3 %s .recover "
                                      "| sqlite3 NEW.db (docs/failure-behaviour.md)",
                             path, err, path, path);
                else if (r == -EUCLEAN)
                        vlog(LOG_ERR, "store: the PostgreSQL store is damaged (%s): restore it from a backup "
                                      "(docs/failure-behaviour.md)", err);
                else
                        vlog(LOG_ERR, "store: cannot load the devices and their verdicts: %s",
                             r == -ENOMEM ? "out of memory" : err);
                return r;
        }
        /* a shared store: this instance's heartbeat runs before any device is claimed */
        if (d->shared && (r = lease_heartbeat_start(d)) < 0) {
                vs_stats st;
                vs_get_stats(d->store, &st);
                vlog(LOG_ERR, "store: cannot store this instance's heartbeat (device leases): %s",
                     r == -EIO ? st.last_error : strerror(-r));
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


/* The TLS identity, the verdict keys, the EK trust anchors, the allowlist and the golden
 * sets: everything read before the store is opened. */
static int load_trust(vouchd *d) {
        uint8_t *pem = NULL;
        size_t pem_len = 0;
        vc_error verr;
        int r;

        d->tls = tls_server_ctx(d->cfg.state_dir);
        if (!d->tls || (r = tls_verifier_id(d->cfg.state_dir, d->verifier_id)) < 0) {
                vlog(LOG_ERR, "%s: server.pem, server.key or ca.pem cannot be used (checked by init): %s",
                     d->cfg.state_dir, ERR_reason_error_string(ERR_get_error()) ?: "unreadable");
                return -EINVAL;
        }
        /* the real failure, e.g. ENOSPC writing verdict-keys.pem on a full disk */
        if ((r = vk_load(d->cfg.state_dir, &d->keys)) < 0) {
                vlog(LOG_ERR, "%s: cannot load the verdict keys and publish verdict-keys.pem: %s", d->cfg.state_dir,
                     strerror(-r));
                return r;
        }
        char ekerr[600];
        if ((r = read_ek_ca(d->cfg.ek_ca, &pem, &pem_len, ekerr, sizeof(ekerr))) < 0) {
                vlog(LOG_ERR, "cannot read the EK CA bundle %s: %s", d->cfg.ek_ca, ekerr);
                return r;
        }
        r = vc_ek_ca_load(pem, pem_len, &d->ek_ca, &verr);
        free(pem);
        if (r < 0) {
                vlog(LOG_ERR, "%s: %s", d->cfg.ek_ca, verr.msg);
                return r;
        }
        if ((d->cfg.approval == APPROVAL_ALLOWLIST || d->cfg.allowlist) && (!d->cfg.allowlist || load_allowlist(d) < 0)) {
                if (!d->cfg.allowlist)
                        vlog(LOG_ERR, "--approval allowlist needs --allowlist FILE");
                return -EINVAL;
        }
        if (ekfetch_init(d) < 0) {
                vlog(LOG_ERR, "--ek-cert-fetch: libcurl cannot be initialised");
                return -EINVAL;
        }
        if (golden_table_load(d->cfg.golden_dir, &d->golden) < 0)
                return -EINVAL;
        if (!golden_table_find(d->golden, d->cfg.default_golden)) {
                vlog(LOG_ERR, "the default golden set \"%s\" is not in %s", d->cfg.default_golden, d->cfg.golden_dir);
                return -EINVAL;
        }
        return devcert_load(d) < 0 ? -EINVAL : 0;
}

/* One loop per core, each with its own listening socket on the same port (SO_REUSEPORT):
 * the kernel spreads connections, a connection stays on its loop. */
static int make_loops(vouchd *d, const struct sockaddr_storage *ss, int sslen) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        d->n_loops = d->cfg.threads ? d->cfg.threads : (unsigned) (cores > 0 ? cores : 1);
        d->loops = calloc(d->n_loops, sizeof(*d->loops));
        if (!d->loops)
                return -ENOMEM;
        for (unsigned i = 0; i < d->n_loops; i++) {
                loop *l = &d->loops[i];
                l->d = d;
                l->index = i;
                l->base = event_base_new();
                if (!l->base || session_loop_init(l) < 0 || vc_eval_cache_new(4096, &l->cache) < 0 ||
                    vc_hasher_new(&l->hasher) < 0)
                        return -ENOMEM;
                l->accept_resume = evtimer_new(l->base, accept_resume_cb, l);
                l->accept_refill_us = mono_us();
                l->accept_tokens = 1;
                if (!l->accept_resume)
                        return -ENOMEM;
                l->listener = evconnlistener_new_bind(l->base, accept_cb, l,
                                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                              LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
                                                      4096, (const struct sockaddr *) ss, sslen);
                if (!l->listener) {
                        vlog(LOG_ERR, "cannot listen on %s: %s", d->cfg.listen, strerror(errno));
                        return -errno;
                }
                evconnlistener_set_error_cb(l->listener, accept_error_cb);
        }
        return 0;
}

/* ---- following the other instances (shared stores) ---- */

#define FOLLOW_BATCH 64

int vouchd_follow(vouchd *d) {
        vs_device rows[FOLLOW_BATCH];
        int total = 0;
        for (;;) {
                char err[300];
                int n = vs_device_changes_since(d->store, d->follow_after, rows, FOLLOW_BATCH);
                if (n < 0) {
                        vs_read_error(d->store, err, sizeof(err));
                        if (!d->follow_failing)
                                vlog(LOG_ERR, "store: cannot read the devices' changes (%s): the admin actions and "
                                              "enrollments of other instances are not followed until it can; trying "
                                              "every %d ms", err, FOLLOW_EVERY_MS);
                        d->follow_failing = true;
                        return n;
                }
                if (d->follow_failing)
                        vlog(LOG_INFO, "store: following the devices' changes again");
                d->follow_failing = false;
                int i = 0, r = 0;
                for (; i < n && r != -ENOMEM; i++) {
                        registry_applied a;
                        pthread_mutex_lock(&d->seq_lock);
                        pthread_mutex_lock(&d->lock);
                        r = registry_apply_locked(d, &rows[i], &a);
                        pthread_mutex_unlock(&d->lock);
                        pthread_mutex_unlock(&d->seq_lock);
                        if (r == -ENOMEM) /* again at the next poll */
                                vlog(LOG_ERR, "device %s: its change at another instance is not applied yet: out of "
                                              "memory", rows[i].id);
                        else if (r < 0) /* a row not to be used: skipped, as at start */
                                vlog(LOG_ERR, "device %s: its change at another instance is not applied: its AK does "
                                              "not load", rows[i].id);
                        if (r == -ENOMEM)
                                break;
                        if (a.added)
                                vlog(LOG_DEBUG, "device %s: enrolled at another instance", rows[i].id);
                        else if (a.new_ak)
                                vlog(LOG_DEBUG, "device %s: enrolled again at another instance (a new AK)", rows[i].id);
                        /* its verdicts, if any, were skipped by verdict_follow while it was
                         * not known here (this thread: none is read meanwhile) */
                        if (r == 0 && a.added && verdict_reload_latest(d, a.dev) < 0)
                                vlog(LOG_ERR, "device %s: enrolled at another instance; its latest verdict could not "
                                              "be read yet (it shows from its next one on)", rows[i].id);
                        if (r == 0)
                                device_follow(d, &a);
                        d->follow_after = rows[i].change;
                        total++;
                }
                for (int k = 0; k < n; k++)
                        vs_device_done(&rows[k]);
                if (r == -ENOMEM || n < FOLLOW_BATCH)
                        return r == -ENOMEM ? r : total;
        }
}

static void follow_cb(evutil_socket_t fd, short what, void *arg) {
        vouchd_follow(arg);
}

int vouchd_follow_start(vouchd *d) {
        struct timeval every = { 0, FOLLOW_EVERY_MS * 1000 };
        if (!d->api || !d->api->base)
                return -EINVAL;
        d->follow_ev = event_new(d->api->base, -1, EV_PERSIST, follow_cb, d);
        if (!d->follow_ev || event_add(d->follow_ev, &every) < 0)
                return -ENOMEM;
        return 0;
}

static int start_loops(vouchd *d) {
        for (unsigned i = 0; i < d->n_loops; i++) {
                int e = pthread_create(&d->loops[i].thread, NULL, loop_main, &d->loops[i]);
                if (e != 0) {
                        /* the loops already running stop before vouchd_free() frees what they use */
                        vlog(LOG_ERR, "cannot start event loop %u: %s", i, strerror(e));
                        atomic_store(&d->stopping, true);
                        api_stop(d);
                        for (unsigned k = 0; k < i; k++)
                                event_base_loopexit(d->loops[k].base, NULL);
                        for (unsigned k = 0; k < i; k++)
                                pthread_join(d->loops[k].thread, NULL);
                        return -e;
                }
        }
        return 0;
}

int vouchd_start(vouchd *d, bool fresh_dir) {
        char why[4096];
        struct sockaddr_storage ss;
        int sslen, r;

        evthread_use_pthreads();
        if (load_trust(d) < 0)
                return -EINVAL;
        /* One vouchd per state dir: a second would share the database and the agents' port
         * (SO_REUSEPORT) and number verdicts from its own memory. The lock lives as long as
         * the process (the descriptor is never closed). */
        if (vouchd_lock_state_dir(d->cfg.state_dir, why, sizeof(why)) < 0) {
                vlog(LOG_ERR, "%s", why);
                return -EBUSY;
        }
        if (parse_listen(d->cfg.listen, &ss, &sslen) < 0) {
                vlog(LOG_ERR, "--listen %s: expected HOST:PORT", d->cfg.listen);
                return -EINVAL;
        }
        if ((r = probe_port(&ss, sslen)) < 0) {
                vlog(LOG_ERR, "--listen %s: %s", d->cfg.listen,
                     r == -EADDRINUSE ? "the port is in use by another process (another vouchd?)" : strerror(-r));
                return r;
        }
        if ((r = open_store(d, fresh_dir)) < 0 || (r = devcert_start(d)) < 0)
                return r;
        check_file_limit(&d->cfg);
        if ((r = make_loops(d, &ss, sslen)) < 0 || (r = api_start(d)) < 0 || (r = health_start(d)) < 0 ||
            (d->shared && (r = vouchd_follow_start(d)) < 0) || (r = start_loops(d)) < 0)
                return r < 0 ? r : -EINVAL;
        vlog(LOG_INFO, "listening on %s with %u event loops; %zu devices; golden default %s; verifier %.16s",
             d->cfg.listen, d->n_loops, d->n_devices, d->cfg.default_golden, d->verifier_id);
        return 0;
}

int vouchd_reload(vouchd *d) {
        golden_table *t;
        char err[1024];
        if (golden_table_load(d->cfg.golden_dir, &t) < 0 || !golden_table_find(t, d->cfg.default_golden)) {
                vlog(LOG_ERR, "SIGHUP: golden sets not reloaded (errors above); the old ones stay");
                return -EINVAL;
        }
        /* a shared store: the new sets must be the deployment's (ident.h) */
        if (d->shared && ident_register_golden(d, t, err, sizeof(err)) < 0) {
                vlog(LOG_ERR, "SIGHUP: golden sets not reloaded: %s; the old ones stay", err);
                golden_table_unref(t);
                return -EINVAL;
        }
        pthread_mutex_lock(&d->lock);
        golden_table *old = d->golden;
        d->golden = t;
        pthread_mutex_unlock(&d->lock);
        golden_table_unref(old);
        vlog(LOG_INFO, "SIGHUP: %zu golden sets reloaded", t->n);
        if (devcert_names_reload(d) < 0)
                vlog(LOG_ERR, "SIGHUP: device names not reloaded; the old ones stay");
        if (verdict_keys_reload(d) < 0) {
                vlog(LOG_ERR, "SIGHUP: verdict keys not reloaded; the old ones stay");
                return -EINVAL;
        }
        pthread_mutex_lock(&d->seq_lock);
        vlog(LOG_INFO, "SIGHUP: verdicts are signed with key %.16s; %zu retired keys published", d->keys.active.id,
             d->keys.n_retired);
        pthread_mutex_unlock(&d->seq_lock);
        return 0;
}

void vouchd_stop(vouchd *d) {
        atomic_store(&d->stopping, true);
        health_stop(d);
        api_stop(d);
        devcert_stop(d);
        for (unsigned i = 0; i < d->n_loops; i++) {
                evconnlistener_disable(d->loops[i].listener);
                event_base_loopexit(d->loops[i].base, NULL);
        }
        for (unsigned i = 0; i < d->n_loops; i++)
                pthread_join(d->loops[i].thread, NULL);
        ekfetch_fini(d); /* their answers wait on the loops, run (and dropped) in vouchd_free() */
        lease_release_all(d); /* after the last verdict queued: other instances may claim at once */
        vs_flush(d->store);
        /* a shared store: this instance signs no more; its active key is published until the
         * verdicts it signed have expired (ident.h), unless another instance signs with it */
        char err[600];
        if (d->shared && ident_publish_keys(d, &d->keys, true, err, sizeof(err)) < 0)
                vlog(LOG_WARN, "store: cannot publish this instance's stop (its active verdict key stays published): %s",
                     err);
        vlog(LOG_INFO, "stopped: %llu attestations trusted, %llu not, %llu enrollments",
             (unsigned long long) d->attestations_ok, (unsigned long long) d->attestations_bad,
             (unsigned long long) d->enrollments);
}

void vouchd_free(vouchd *d) {
        devcert_stop(d); /* it reads the store */
        if (d->store) {
                lease_release_all(d); /* (a start that failed after the heartbeat started) */
                vs_close(d->store); /* after the loops: pending commits still reach their sessions' bases */
        }
        for (unsigned i = 0; d->loops && i < d->n_loops; i++) {
                loop *l = &d->loops[i];
                /* let the last store callbacks release what they hold */
                if (l->base)
                        event_base_loop(l->base, EVLOOP_NONBLOCK);
                session_free_all(l);
                if (l->listener)
                        evconnlistener_free(l->listener);
                if (l->accept_resume)
                        event_free(l->accept_resume);
                session_loop_fini(l);
                if (l->base)
                        event_base_free(l->base);
                vc_eval_cache_free(l->cache);
                vc_hasher_free(l->hasher);
                OPENSSL_cleanse(l->nonce_pool, sizeof(l->nonce_pool));
        }
        free(d->loops);
        registry_free(d);
        golden_table_unref(d->golden);
        vc_ek_ca_free(d->ek_ca);
        SSL_CTX_free(d->tls);
        api_stop(d); /* the follower's timer runs on the API thread */
        if (d->follow_ev)
                event_free(d->follow_ev);
        api_free(d);
        verdict_keys_free(&d->keys);
        devcert_free(d);
        for (size_t i = 0; i < d->n_allow; i++)
                free(d->allow[i]);
        free(d->allow);
        config_free(&d->cfg);
}

/* vouchd init makes the store too, in a fresh state dir only: an initialised one whose store
 * is gone is not silently given an empty one (vouchd --fresh-store says so). */
int vouchd_init_store(const config *c, bool fresh, char *err, size_t n) {
        char url[4200];
        struct stat st;
        vs_store *s = NULL;
        const char *path = config_store_url(c, url, sizeof(url));
        if (!fresh && config_store_is_file(c) && (stat(path, &st) < 0 || st.st_size == 0)) {
                fprintf(stderr, "vouchd init: warning: %s is %s but the state dir has keys: vouchd refuses to start "
                                "without it; restore it from a backup, or start vouchd once with --fresh-store\n",
                        path, stat(path, &st) < 0 ? "missing" : "empty");
                return 0;
        }
        /* under a name of its own: on PostgreSQL a running vouchd holds "default" */
        vs_open_options opt = { .history_keep = 1, .flags = fresh ? VS_OPEN_CREATE : 0, .instance = "init" };
        int r = vs_open_ex(path, &opt, &s, NULL, err, n);
        /* a shared store that belongs to another CA's deployment (ident.h): said now, as the
         * start will refuse it */
        char stored[VS_VERIFIER_ID_MAX + 1], mine[65];
        if (r == 0 && !config_store_is_file(c) && vs_verifier_id_get(s, stored, sizeof(stored)) == 0 &&
            tls_verifier_id(c->state_dir, mine) == 0 && strcmp(stored, mine) != 0)
                fprintf(stderr, "vouchd init: warning: the store belongs to a deployment with another CA (verifier id "
                                "%.16s..., this state dir's %.16s...): vouchd will refuse to start on it. A further "
                                "instance's state dir is made with --join EXISTING\n", stored, mine);
        vs_close(s);
        return r;
}
