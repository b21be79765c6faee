/* SPDX-License-Identifier: Apache-2.0 */
/* EK certificates from the TPM makers' services (--ek-cert-fetch): firmware TPMs (Intel
 * PTT, AMD fTPM) keep none in NV. A fetch runs on a thread of its own (libcurl, blocking,
 * bounded in time and size), never on an event loop, and hands its answer back to the
 * session's loop. Only the configured base URLs are asked; redirects are not followed. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vouchd.h"
#include "clock.h"
#include "ekfetch.h"

#define FETCH_TIMEOUT_MS 5000   /* a service slower than this is treated as down */
#define FETCHES_MAX 16          /* at once, for the whole vouchd; one per peer address */
#define FAILED_SECONDS 120      /* a lookup that failed is not tried again this soon */
#define FAILED_SLOTS 1024

/* What the fetch threads share with the loops, in static storage: a thread that finishes
 * after vouchd began to stop (ekfetch_fini) touches neither the loops nor the vouchd. */
static struct {
        pthread_mutex_t mu;
        bool closed;                    /* vouchd is stopping: answers are dropped */
        unsigned inflight;
        char peers[FETCHES_MAX][64];    /* the peer address of each fetch under way ("" free) */
        struct {
                uint64_t key;           /* FNV-1a of the URL; 0 free */
                int64_t until;          /* CLOCK_MONOTONIC seconds */
        } failed[FAILED_SLOTS];         /* recent failed lookups (a spray of made-up EKs) */
} ctl = { .mu = PTHREAD_MUTEX_INITIALIZER };

static uint64_t url_key(const char *url) {
        uint64_t h = 1469598103934665603ull;
        for (const char *p = url; *p; p++)
                h = (h ^ (uint8_t) *p) * 1099511628211ull;
        return h ? h : 1;
}

/* ctl.mu held */
static int64_t failed_until_locked(uint64_t key) {
        int64_t u = ctl.failed[key % FAILED_SLOTS].until;
        return ctl.failed[key % FAILED_SLOTS].key == key && u > vclock_mono() ? u : 0;
}

static const struct {
        const char *name;
        uint32_t manufacturer;
        vc_ekcert_form form;
        const char *url;
} known[] = {
        { "intel", VC_TPM_MANUFACTURER_INTC, VC_EKCERT_FORM_INTEL, "https://ekop.intel.com/ekcertservice/" },
        { "amd", VC_TPM_MANUFACTURER_AMD, VC_EKCERT_FORM_AMD, "https://ftpm.amd.com/pki/aia/" },
};

static int manufacturer_of(const char *s, uint32_t *ret) {
        size_t n = strlen(s);
        if (n == 0 || n > 4)
                return -EINVAL;
        uint8_t b[4] = { 0 };
        memcpy(b, s, n);
        *ret = (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
        return 0;
}

int ekfetch_parse(const char *spec, ek_service *ret, char *err, size_t n) {
        for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
                if (strcmp(spec, known[i].name) == 0) {
                        *ret = (ek_service) { .manufacturer = known[i].manufacturer, .form = known[i].form };
                        return (ret->base = strdup(known[i].url)) ? 0 : -ENOMEM;
                }
        /* MANUFACTURER=[intel:|amd:]URL, e.g. INTC=https://mirror.example/ekcertservice/ */
        const char *eq = strchr(spec, '='), *url = eq ? eq + 1 : NULL;
        char mf[8];
        if (!eq || (size_t) (eq - spec) >= sizeof(mf)) {
                snprintf(err, n, "\"%s\": expected intel, amd, or MANUFACTURER=[intel:|amd:]URL", spec);
                return -EINVAL;
        }
        snprintf(mf, sizeof(mf), "%.*s", (int) (eq - spec), spec);
        *ret = (ek_service) { 0 };
        if (manufacturer_of(mf, &ret->manufacturer) < 0) {
                snprintf(err, n, "\"%s\": the manufacturer is 1-4 characters (INTC, AMD)", spec);
                return -EINVAL;
        }
        if (strncmp(url, "intel:", 6) == 0)
                ret->form = VC_EKCERT_FORM_INTEL, url += 6;
        else if (strncmp(url, "amd:", 4) == 0)
                ret->form = VC_EKCERT_FORM_AMD, url += 4;
        else
                ret->form = ret->manufacturer == VC_TPM_MANUFACTURER_AMD ? VC_EKCERT_FORM_AMD : VC_EKCERT_FORM_INTEL;
        if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
                snprintf(err, n, "\"%s\": the URL must start with https:// (or http://)", spec);
                return -EINVAL;
        }
        return (ret->base = strdup(url)) ? 0 : -ENOMEM;
}

const ek_service *ekfetch_service_for(const vouchd *d, uint32_t manufacturer) {
        for (size_t i = 0; i < d->cfg.n_ek_services; i++)
                if (d->cfg.ek_services[i].manufacturer == manufacturer)
                        return &d->cfg.ek_services[i];
        return NULL;
}

int ekfetch_init(vouchd *d) {
        return d->cfg.n_ek_services == 0 || curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

void ekfetch_fini(vouchd *d) {
        /* from now on a finishing thread drops its answer; wait for those under way (their
         * curl calls end within FETCH_TIMEOUT_MS; CURLOPT_QUICK_EXIT spares the resolver) */
        pthread_mutex_lock(&ctl.mu);
        ctl.closed = true;
        pthread_mutex_unlock(&ctl.mu);
        unsigned left = 1;
        for (int i = 0; i < 400 && left; i++) {
                pthread_mutex_lock(&ctl.mu);
                left = ctl.inflight;
                pthread_mutex_unlock(&ctl.mu);
                if (left)
                        usleep(25000);
        }
        if (d->cfg.n_ek_services && !left) /* never under a thread still in curl */
                curl_global_cleanup();
}

typedef struct fetch_job {
        struct event_base *base;
        int slot;                       /* in ctl.peers */
        vc_ekcert_form form;
        char url[512];
        uint8_t *body;
        size_t len;
        bool too_large;
        int error;
        char why[1200];
        ekfetch_done_fn done;
        void *userdata;
} fetch_job;

static size_t on_body(char *p, size_t size, size_t nitems, void *arg) {
        fetch_job *j = arg;
        size_t n = size * nitems;
        if (j->len + n > VC_EKCERT_ANSWER_MAX) {
                j->too_large = true;
                return 0; /* aborts the transfer */
        }
        uint8_t *nb = realloc(j->body, j->len + n + 1);
        if (!nb)
                return 0;
        j->body = nb;
        memcpy(j->body + j->len, p, n);
        j->len += n;
        return n;
}

static void fetch_done_cb(evutil_socket_t fd, short what, void *arg) {
        fetch_job *j = arg;
        uint8_t *der = NULL;
        size_t der_len = 0;
        vc_error err;
        int r;
        if (j->error == 0 && (r = vc_ekcert_from_answer(j->form, j->body, j->len, &der, &der_len, &err)) < 0) {
                j->error = r;
                snprintf(j->why, sizeof(j->why), "the answer from %.300s: %s", j->url,
                         r == -ENOMEM ? "out of memory" : err.msg);
        }
        j->done(j->error, j->why, der, der_len, j->url, j->userdata);
        free(der);
        free(j->body);
        free(j);
}

static void *fetch_main(void *arg) {
        fetch_job *j = arg;
        CURL *c = curl_easy_init();
        long status = 0;
        char cerr[CURL_ERROR_SIZE] = "";
        CURLcode rc = CURLE_FAILED_INIT;
        if (c) {
                curl_easy_setopt(c, CURLOPT_URL, j->url);
                curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
                curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* only the configured URLs */
                curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(c, CURLOPT_QUICK_EXIT, 1L); /* never wait for a stuck resolver */
                curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) FETCH_TIMEOUT_MS);
                curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) FETCH_TIMEOUT_MS);
                curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) VC_EKCERT_ANSWER_MAX);
                curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
                curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
                curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
                curl_easy_setopt(c, CURLOPT_USERAGENT, "vouchd/" VOUCH_VERSION);
                rc = curl_easy_perform(c);
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        }
        if (j->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
                j->error = -E2BIG;
                snprintf(j->why, sizeof(j->why), "%.300s answered with more than %u bytes", j->url, VC_EKCERT_ANSWER_MAX);
        } else if (rc == CURLE_OPERATION_TIMEDOUT) {
                j->error = -ETIMEDOUT;
                snprintf(j->why, sizeof(j->why), "%.300s did not answer within %d ms", j->url, FETCH_TIMEOUT_MS);
        } else if (rc != CURLE_OK) {
                j->error = -EIO;
                snprintf(j->why, sizeof(j->why), "%.300s: %s", j->url, cerr[0] ? cerr : curl_easy_strerror(rc));
        } else if (status >= 300 && status < 400) {
                char *loc = NULL;
                curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
                j->error = -EPERM;
                snprintf(j->why, sizeof(j->why), "%s redirected (HTTP %ld) to %s: not followed, only the configured "
                         "--ek-cert-fetch URLs are asked", j->url, status, loc ? loc : "(no Location)");
        } else if (status != 200) {
                j->error = status == 404 ? -ENOENT : -EIO;
                snprintf(j->why, sizeof(j->why), "%.300s answered HTTP %ld%s", j->url, status,
                         status == 404 ? " (the service has no certificate for this EK)" : "");
        }
        curl_easy_cleanup(c);
        struct timeval now = { 0, 0 };
        pthread_mutex_lock(&ctl.mu);
        if (j->error < 0 && j->error != -EBUSY) { /* remembered: the same lookup waits FAILED_SECONDS */
                uint64_t key = url_key(j->url);
                ctl.failed[key % FAILED_SLOTS].key = key;
                ctl.failed[key % FAILED_SLOTS].until = vclock_mono() + FAILED_SECONDS;
        }
        ctl.peers[j->slot][0] = 0;
        bool posted = !ctl.closed && event_base_once(j->base, -1, EV_TIMEOUT, fetch_done_cb, j, &now) == 0;
        ctl.inflight--;
        pthread_mutex_unlock(&ctl.mu);
        if (!posted) { /* vouchd is stopping: nobody waits for this answer */
                free(j->body);
                free(j);
        }
        return NULL;
}

/* A slot for a fetch by peer (its address without the port), or -EBUSY / -EAGAIN with err
 * set: at most FETCHES_MAX at once, one per peer address, and not a lookup that failed
 * less than FAILED_SECONDS ago (an agent retrying, or a spray of made-up EKs). */
static int take_slot(const char *peer, const char *url, char *err, size_t n) {
        char host[64];
        snprintf(host, sizeof(host), "%s", peer);
        char *colon = strrchr(host, ':');
        if (colon)
                *colon = 0;
        int slot = -1, r = 0;
        pthread_mutex_lock(&ctl.mu);
        int64_t until = failed_until_locked(url_key(url));
        for (int i = 0; i < FETCHES_MAX && r == 0; i++) {
                if (ctl.peers[i][0] && strcmp(ctl.peers[i], host) == 0)
                        r = -EBUSY;
                else if (!ctl.peers[i][0] && slot < 0)
                        slot = i;
        }
        if (until) {
                r = -EAGAIN;
                snprintf(err, n, "%.300s failed less than %d s ago: not asked again before %lld s from now", url,
                         FAILED_SECONDS, (long long) (until - vclock_mono()));
        } else if (r == -EBUSY) {
                snprintf(err, n, "an EK certificate fetch for %s is under way already: one at a time per address",
                         host);
        } else if (slot < 0 || ctl.closed) {
                r = -EBUSY;
                snprintf(err, n, "%d EK certificate fetches are under way already: retry", FETCHES_MAX);
        } else {
                snprintf(ctl.peers[slot], sizeof(ctl.peers[slot]), "%s", host);
                ctl.inflight++;
                r = slot;
        }
        pthread_mutex_unlock(&ctl.mu);
        return r;
}

static void give_slot(int slot) {
        pthread_mutex_lock(&ctl.mu);
        ctl.peers[slot][0] = 0;
        ctl.inflight--;
        pthread_mutex_unlock(&ctl.mu);
}

int ekfetch_start(vouchd *d, struct event_base *base, const char *peer, const ek_service *svc,
                  const TPMT_PUBLIC *ek, ekfetch_done_fn done, void *userdata, char *err, size_t n) {
        char key[VC_EKCERT_LOOKUP_MAX], url[sizeof(((fetch_job *) 0)->url)];
        int r = vc_ekcert_lookup(svc->form, ek, key, sizeof(key));
        if (r < 0) {
                snprintf(err, n, "no lookup key for this EK at %s (%s)", svc->base,
                         r == -ENOTSUP ? "an RSA exponent other than 65537" : "an unsupported key");
                return r;
        }
        snprintf(url, sizeof(url), "%s%s", svc->base, key);
        int slot = take_slot(peer, url, err, n);
        if (slot < 0)
                return slot;
        fetch_job *j = calloc(1, sizeof(*j));
        if (!j) {
                give_slot(slot);
                snprintf(err, n, "out of memory");
                return -ENOMEM;
        }
        *j = (fetch_job) { .base = base, .slot = slot, .form = svc->form, .done = done, .userdata = userdata };
        memcpy(j->url, url, sizeof(url));
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        r = pthread_create(&t, &a, fetch_main, j);
        pthread_attr_destroy(&a);
        if (r != 0) {
                give_slot(slot);
                free(j);
                snprintf(err, n, "cannot start a fetch thread: %s", strerror(r));
                return -r;
        }
        return 0;
}
