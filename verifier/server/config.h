/* SPDX-License-Identifier: Apache-2.0 */
/* vouchd's configuration: what the command line and --config set at start (main.c);
 * read-only once the threads start. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ekcert.h"

typedef enum approval_mode {
        APPROVAL_AUTO = 0,      /* a valid EK certificate chain suffices */
        APPROVAL_ALLOWLIST = 1, /* ... and the EK certificate's fingerprint must be listed */
} approval_mode;

/* A TPM maker's EK certificate service (--ek-cert-fetch). */
typedef struct ek_service {
        uint32_t manufacturer;  /* TPM2_PT_MANUFACTURER it serves */
        vc_ekcert_form form;
        char *base;             /* the lookup key is appended */
} ek_service;

typedef struct config {
        char *state_dir;
        char *store;            /* --store URL; NULL: sqlite:STATE_DIR/vouch.db */
        char *instance;         /* --instance NAME: this vouchd among those sharing the store ("default") */
        char *listen;           /* HOST:PORT */
        char *golden_dir;
        char *default_golden;
        char *ek_ca;
        char *allowlist;
        approval_mode approval;
        unsigned interval;      /* seconds between attestations */
        unsigned jitter_pct;    /* +- percent of interval */
        unsigned nonce_timeout; /* seconds a challenge stays valid */
        unsigned hello_timeout;
        unsigned threads;       /* event loops; 0 = one per core */
        unsigned max_connections;
        unsigned accept_rate;   /* new agent connections accepted per second; 0 = no cap */
        unsigned api_max_connections;   /* set from the file limit (check_file_limit) */
        unsigned max_frame;
        unsigned history;       /* verdicts kept per device */
        unsigned verdict_ttl_intervals; /* expires_at = issued_at + this * interval */
        bool allow_sha1;
        bool fresh_store;       /* --fresh-store: an initialised state dir may get a new, empty store */
        ek_service *ek_services;/* --ek-cert-fetch: off when none */
        size_t n_ek_services;
        int log_level;          /* 0 error, 1 warning, 2 info, 3 debug */
        int log_format;         /* vu_log_format: text or JSON lines */
        /* the policy-engine API (docs/API.md) */
        char *api_listen;       /* HOST:PORT, NULL = off */
        char *http_listen;    /* --http-listen HOST:PORT: plain-HTTP GET /healthz, NULL = off */
        char *api_client_ca;    /* NULL = the state dir's CA */
        char **api_admins, **api_readers; /* certificate CNs per role */
        size_t n_api_admins, n_api_readers;
        /* device certificates (issue 19, devcert.h) */
        char *trust_domain;     /* --trust-domain: SPIFFE trust domain; NULL: no certificates issued */
        char *device_ca_cert, *device_ca_key; /* the operator's device CA; NULL: the state dir's */
        char *crl_url;          /* --crl-url: their CRL distribution point; NULL: from --http-listen */
        unsigned device_cert_ttl; /* --device-cert-ttl SECONDS: at most this long; 0: the verdict's */
        char *device_names;     /* --device-names FILE: operator-assigned DNS names (devnames.h) */
} config;

/* What the command line asks for: run (the default), or one of the subcommands. */
typedef enum vouchd_cmd {
        CMD_RUN = 0,
        CMD_INIT,               /* vouchd init */
        CMD_ISSUE_CLIENT,       /* vouchd issue-client */
        CMD_ROTATE_KEY,         /* vouchd rotate-key */
        CMD_HELP,               /* --help */
} vouchd_cmd;

#define CONFIG_MAX_SANS 32

/* The command line's arguments that are not configuration (they point into argv). */
typedef struct config_args {
        vouchd_cmd cmd;
        const char *name, *out;         /* issue-client */
        const char *old_valid;          /* rotate-key */
        const char *join;               /* init --join EXISTING */
        char *sans[CONFIG_MAX_SANS];    /* init --san */
        size_t n_sans;
} config_args;

extern const char config_usage[];

void config_defaults(config *c);
/* argv (and a --config FILE first; flags override it) into c and ret. Returns 0, or 2 after
 * printing what is wrong (a usage error). --help gives ret->cmd CMD_HELP. */
int config_parse(config *c, int argc, char **argv, config_args *ret);
void config_free(config *c);

/* The store's URL: --store, or the state dir's vouch.db (buf, n bytes, holds it). */
const char *config_store_url(const config *c, char *buf, size_t n);
/* Whether the store is a file in the state dir (SQLite), which a fresh state dir creates. */
bool config_store_is_file(const config *c);
