/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd: the attestation verifier's command line around libvouchd (vouchd.h). `vouchd init`
 * prepares a state dir, `issue-client` and `rotate-key` manage its keys; otherwise it runs in
 * the foreground until SIGTERM/SIGINT, reloading on SIGHUP. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devcert.h"
#include "keys.h"
#include "notify.h"
#include "statedir.h"
#include "tls.h"
#include "vouchd.h"

static int cmd_init(const config *c, const config_args *a, bool fresh) {
        char err[1200];
        /* --join: the deployment's CA and verdict keys first, so that the server certificate
         * made below is issued by that CA */
        if (a->join && !fresh) {
                fprintf(stderr, "vouchd init: %s already holds vouchd's keys or store: --join makes a new state dir "
                                "(name another one, or remove this one)\n", c->state_dir);
                return 1;
        }
        bool devca_joined = false;
        if (a->join && (tls_join_state_dir(c->state_dir, a->join, err, sizeof(err)) < 0 ||
                        devca_join_state_dir(c->state_dir, a->join, &devca_joined, err, sizeof(err)) < 0)) {
                fprintf(stderr, "vouchd init: %s\n", err);
                return 1;
        }
        /* the device CA: a joined instance's is the deployment's (or none), never one of its own;
         * an existing state dir from before device certificates gets one */
        if (tls_init_state_dir(c->state_dir, a->sans, a->n_sans, true, err, sizeof(err)) < 0 ||
            devca_init_state_dir(c->state_dir, !a->join, err, sizeof(err)) < 0 ||
            vouchd_lock_state_dir(c->state_dir, err, sizeof(err)) < 0 ||
            vouchd_init_store(c, fresh, err, sizeof(err)) < 0) {
                fprintf(stderr, "vouchd init: %s\n", err);
                return 1;
        }
        printf("state dir %s ready\n  CA (give it to agents with --ca): %s/ca.pem\n"
               "  server certificate: %s/server.pem\n  verdict-signing key: %s/verdict.key "
               "(public: %s/verdict-keys.pem)\n",
               c->state_dir, c->state_dir, c->state_dir, c->state_dir, c->state_dir);
        if (!a->join || devca_joined)
                printf("  device CA (relying parties verify device certificates with it): %s/" DEVCA_CERT_FILE "\n",
                       c->state_dir);
        else
                printf("  no device CA: %s has none (make one there with vouchd init, then join again)\n", a->join);
        if (a->join)
                printf("  joined %s: the same CA and verdict-signing keys; a server certificate of its own\n"
                       "  run it with a --instance NAME of its own on the deployment's --store%s\n",
                       a->join, config_store_is_file(c) ? " (this one's store is a file of its own: the "
                                                          "instances share devices and verdicts only on PostgreSQL)" : "");
        return 0;
}

static int cmd_issue_client(const config *c, const config_args *a) {
        if (!a->name || !a->out || !*a->name || strlen(a->name) > 64) {
                fprintf(stderr, "vouchd issue-client: --name CN (1-64 characters) and --out PREFIX are needed\n");
                return 2;
        }
        int r = tls_issue_client(c->state_dir, a->name, a->out);
        if (r < 0) {
                fprintf(stderr, "vouchd issue-client: cannot issue from %s/ca.pem: %s\n", c->state_dir, strerror(-r));
                return 1;
        }
        printf("client certificate for \"%s\": %s.crt, key %s.key (mode 0600)\n", a->name, a->out, a->out);
        return 0;
}

/* Unix seconds or YYYY-MM-DDTHH:MM:SSZ. */
static int parse_time(const char *s, int64_t *ret) {
        struct tm tm = { 0 };
        char *end = NULL;
        long long n = strtoll(s, &end, 10);
        if (end && !*end && *s) {
                *ret = n;
                return 0;
        }
        if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) && !*end) {
                *ret = timegm(&tm);
                return 0;
        }
        return -EINVAL;
}

static int cmd_rotate_key(const config *c, const config_args *a) {
        int64_t until = time(NULL) + 30 * 86400;
        if (a->old_valid && parse_time(a->old_valid, &until) < 0) {
                fprintf(stderr, "vouchd rotate-key: --old-valid-until \"%s\": expected Unix seconds or "
                                "YYYY-MM-DDTHH:MM:SSZ\n", a->old_valid);
                return 2;
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

/* Runs until SIGTERM or SIGINT. The signals are blocked before any thread starts (the
 * store's writer is the first), so that every thread inherits the mask and only sigwait()
 * takes them: a signal that came while the main thread was not in sigwait() (a SIGTERM right
 * after start, a second SIGHUP during a reload) would otherwise go to a thread that does not
 * block it, and its default action ends the process. A SIGTERM during start-up (opening the
 * store, loading the registry) takes effect once vouchd is ready. */
static int cmd_run(vouchd *d, bool fresh) {
        config *c = &d->cfg;
        char err[1200];
        sigset_t set;

        if (!c->listen || !c->golden_dir || !c->default_golden || !c->ek_ca) {
                fprintf(stderr, "vouchd: --listen, --golden-dir, --default-golden and --ek-ca are required\n%s",
                        config_usage);
                return 2;
        }
        /* the first start in a fresh state dir creates what init would; otherwise every key
         * must be there and readable */
        if (tls_init_state_dir(c->state_dir, NULL, 0, fresh, err, sizeof(err)) < 0 ||
            devca_init_state_dir(c->state_dir, fresh, err, sizeof(err)) < 0) {
                fprintf(stderr, "vouchd: %s\n", err);
                return 1;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        if (vouchd_start(d, fresh) < 0)
                return 1;
        printf("vouchd: ready on %s\n", c->listen);
        fflush(stdout);
        /* systemd (Type=notify): started once agents can connect and the API answers */
        vu_notify("READY=1\nSTATUS=verifying agents on %s", c->listen);
        for (;;) {
                int sig;
                if (sigwait(&set, &sig) != 0)
                        continue;
                if (sig == SIGHUP) {
                        vu_notify("RELOADING=1\nSTATUS=reloading golden sets and keys");
                        vouchd_reload(d);
                        vu_notify("READY=1\nSTATUS=verifying agents on %s", c->listen);
                        continue;
                }
                vlog(LOG_INFO, "signal %d: draining", sig);
                vu_notify("STOPPING=1\nSTATUS=draining");
                break;
        }
        vouchd_stop(d);
        return 0;
}

static int vouchd_main(vouchd *d, int argc, char **argv) {
        config *c = &d->cfg;
        config_args a;
        char err[1200];
        int r;

        setenv("TSS2_LOG", "all+none", 0);
        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                puts("vouchd " VOUCH_VERSION);
                return 0;
        }
        if ((r = config_parse(c, argc, argv, &a)) != 0)
                return r;
        if (a.cmd == CMD_HELP) {
                fputs(config_usage, stdout);
                puts("vouchd --version prints \"vouchd VERSION\" and exits.");
                return 0;
        }
        vlog_level = c->log_level;
        vu_log_setup("vouchd", (vu_log_format) c->log_format);
        bool fresh = statedir_is_fresh(c->state_dir);
        if (a.cmd == CMD_INIT)
                return cmd_init(c, &a, fresh);
        if (a.cmd != CMD_RUN && statedir_check(c->state_dir, err, sizeof(err)) < 0) {
                fprintf(stderr, "vouchd %s: %s\n", argv[1], err);
                return 1;
        }
        if (a.cmd == CMD_ISSUE_CLIENT)
                return cmd_issue_client(c, &a);
        if (a.cmd == CMD_ROTATE_KEY)
                return cmd_rotate_key(c, &a);
        return cmd_run(d, fresh);
}

int main(int argc, char **argv) {
        vouchd d;
        vouchd_init(&d);
        int r = vouchd_main(&d, argc, argv);
        vouchd_free(&d);
        return r;
}
