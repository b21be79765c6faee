/* SPDX-License-Identifier: Apache-2.0 */
/* Verdicts: numbering, signing (with the verdict library, verdict-sign.h) and queueing them
 * to the store, the latest one of every device (only ever a committed one), STALE verdicts
 * when a device stops attesting, and the EAR (IETF RATS) form of a verdict with the active
 * key (verdict-ear.h). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "credential.h"
#include "keys.h"
#include "lease.h"
#include "verdict-ear.h"
#include "verdict-sign.h"
#include "vouchd.h"

const double latency_bounds[LATENCY_BUCKETS] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,   0.25,   0.5,   1,    2.5,   10 };

typedef struct commit {
        vouchd *d;
        device *dev;
        uint8_t *record;
        size_t record_len;
        int status;
        int64_t expires_at;
        int64_t deadline;               /* expires_at on the monotonic clock (verdict_deadline) */
        bool keep_on_failure;           /* a failed commit leaves the latest verdict as it was */
        char golden[129];
        int64_t golden_version;
        uint64_t global_sequence;
        verdict_done_fn done;
        void *userdata;
} commit;

/* A verdict's lifetime runs on the monotonic clock from the moment it is issued or loaded:
 * a step of the wall clock (back by 20 minutes, say) does not keep an old verdict alive.
 * The wall-clock expires_at is what the signed record says; a verdict counts as expired
 * when either has passed (verdict_expired_locked). */
int64_t verdict_deadline(int64_t expires_at) {
        int64_t left = expires_at - vclock_wall();
        return vclock_mono() + (left > 0 ? left : 0);
}

bool verdict_expired_locked(const device *dev) {
        return vclock_mono() >= dev->latest_deadline || vclock_wall() >= dev->latest_expires;
}

static void set_latest_locked(device *dev, commit *c) {
        free(dev->latest);
        dev->latest = c->record;
        dev->latest_len = c->record_len;
        dev->latest_status = c->status;
        dev->latest_expires = c->expires_at;
        dev->latest_deadline = c->deadline;
        snprintf(dev->latest_golden, sizeof(dev->latest_golden), "%s", c->golden);
        dev->latest_golden_version = c->golden_version;
        dev->stale_queued = false;
        c->record = NULL;
}

/* On the writer thread, once the verdict is durable (or could not be stored). */
static void committed(int error, void *arg) {
        commit *c = arg;
        vouchd *d = c->d;
        if (error < 0) {
                /* not stored: it no longer holds back a STALE verdict (issue) */
                pthread_mutex_lock(&d->seq_lock);
                if (c->dev->queued_deadline == c->deadline)
                        c->dev->queued_deadline = 0;
                pthread_mutex_unlock(&d->seq_lock);
                /* A verdict that is not TRUSTED still replaces the latest one in memory
                 * (signed, not stored: a restart forgets it): the device's older verdict,
                 * TRUSTED perhaps, must not stand for a device whose newest evidence failed.
                 * Only a TRUSTED verdict needs to be durable before it is shown. A failed
                 * revocation changes nothing (its caller puts the flags back). The failed
                 * transaction marks the run unclean (store.h, vs_open_info): after a
                 * restart the stored TRUSTED verdicts are superseded by STALE ones. */
                if (c->status != VOUCH__V1__TRUST_STATUS__TRUSTED && !c->keep_on_failure) {
                        pthread_mutex_lock(&d->lock);
                        set_latest_locked(c->dev, c);
                        c->dev->unstored = d->shared; /* lease.c keeps the lease until it is */
                        pthread_mutex_unlock(&d->lock);
                }
        }
        if (error == 0) {
                pthread_mutex_lock(&d->lock);
                set_latest_locked(c->dev, c);
                c->dev->unstored = false;
                pthread_mutex_unlock(&d->lock);
                atomic_store(&d->published, c->global_sequence); /* callbacks run in commit order */
                if (d->on_committed)
                        d->on_committed(d);
        }
        if (c->done)
                c->done(error, c->userdata);
        free(c->record);
        free(c);
}

void verdict_one_finding(Vouch__V1__Verdict *v, Vouch__V1__Finding *f, Vouch__V1__Finding **fp, const char *rule,
                         const char *expected, const char *actual, const char *explanation) {
        vouch__v1__finding__init(f);
        f->rule = (char *) rule;
        f->pcr = -1;
        f->event = -1;
        f->event_type = (char *) "";
        f->expected = (char *) expected;
        f->actual = (char *) actual;
        f->explanation = (char *) explanation;
        *fp = f;
        v->findings = fp;
        v->n_findings = 1;
}

enum { ISSUE_PLAIN, ISSUE_ATTESTED, ISSUE_STALE, ISSUE_WITH_ROW };

vs_device verdict_row_locked(device *dev) {
        vs_device row = dev->rec; /* shallow: the store copies the key bytes when queueing */
        /* the last accepted quote's clock lives in the attestation state, not in rec */
        pthread_mutex_lock(&dev->mu);
        row.has_last = dev->state.has_last;
        row.reset_count = dev->state.reset_count;
        row.restart_count = dev->state.restart_count;
        row.clock = dev->state.clock;
        pthread_mutex_unlock(&dev->mu);
        return row;
}

/* Queues the verdict; for ISSUE_WITH_ROW with the device's row, its access flags set to
 * access's, in the same transaction. The row is copied and queued under d->lock, as an
 * enrollment's is (session.c), so a re-enrollment's new AK is never overwritten by an
 * older copy. seq_lock held. */
static int queue_verdict(vouchd *d, device *dev, const vs_verdict *vr, const vs_device *access, commit *c) {
        if (!access)
                return vs_verdict_put(d->store, vr, committed, c);
        pthread_mutex_lock(&d->lock);
        vs_device row = verdict_row_locked(dev);
        row.approved = access->approved;
        row.revoked = access->revoked;
        int r = vs_verdict_put_with_device(d->store, vr, &row, committed, c);
        pthread_mutex_unlock(&d->lock);
        return r;
}

/* access: for ISSUE_WITH_ROW, the flags of the device row stored in the verdict's
 * transaction. */
static int issue(vouchd *d, device *dev, Vouch__V1__Verdict *v, int kind, uint64_t ticket, const vs_device *access,
                 verdict_done_fn done, void *userdata, uint8_t **record, size_t *record_len) {
        commit *c = calloc(1, sizeof(*c));
        int r;
        if (!c)
                return -ENOMEM;
        c->d = d;
        c->dev = dev;
        c->status = v->status;
        c->expires_at = v->expires_at;
        c->deadline = verdict_deadline(v->expires_at);
        c->keep_on_failure = kind == ISSUE_WITH_ROW;
        pthread_mutex_lock(&d->lock);
        v->ek_anchor = dev->rec.ek_anchor; /* what the device's identity rests on */
        pthread_mutex_unlock(&d->lock);
        snprintf(c->golden, sizeof(c->golden), "%s", v->golden_name ? v->golden_name : "");
        c->golden_version = v->golden_version;
        c->done = done;
        c->userdata = userdata;
        v->verifier_id = d->verifier_id;
        pthread_mutex_lock(&d->seq_lock);
        int refused = 0;
        if (kind == ISSUE_ATTESTED || kind == ISSUE_STALE) {
                /* a shared store: only the holder of the device's lease attests it and lets
                 * its verdict go STALE (lease.h), and only before its heartbeat's deadline */
                pthread_mutex_lock(&d->lock);
                bool held = lease_held_locked(d, dev);
                pthread_mutex_unlock(&d->lock);
                if (!held)
                        refused = -ENOLCK;
        }
        if (refused) {
                /* below */
        } else if (kind == ISSUE_STALE && dev->queued_deadline > vclock_mono()) {
                /* a fresh verdict is on its way to the store (the sweep only sees committed
                 * ones): it says more than STALE would */
                refused = -EALREADY;
        } else if (kind == ISSUE_ATTESTED) {
                /* verdict_set_access sets the flags under seq_lock: an attestation's verdict
                 * is numbered before the revocation's, or not issued at all */
                pthread_mutex_lock(&d->lock);
                bool barred = dev->rec.revoked || !dev->rec.approved;
                pthread_mutex_unlock(&d->lock);
                if (barred)
                        refused = -EACCES;
                else if (ticket < dev->issued_ticket) /* evidence older than a verdict already out */
                        refused = -ESTALE;
        }
        if (refused) {
                pthread_mutex_unlock(&d->seq_lock);
                free(c);
                return refused;
        }
        v->sequence = dev->rec.sequence + 1;
        v->global_sequence = d->gseq + 1;
        c->global_sequence = v->global_sequence;
        r = vv_verdict_sign(v, &d->keys.active, &c->record, &c->record_len);
        if (r == 0) {
                vs_verdict vr = { .sequence = v->sequence, .global_sequence = v->global_sequence, .status = v->status,
                                  .issued_at = v->issued_at, .expires_at = v->expires_at, .record = c->record,
                                  .record_len = c->record_len };
                snprintf(vr.device, sizeof(vr.device), "%s", dev->rec.id);
                if (record) {
                        *record = malloc(c->record_len);
                        if (*record) {
                                memcpy(*record, c->record, c->record_len);
                                *record_len = c->record_len;
                        }
                }
                if (record && !*record)
                        r = -ENOMEM;
                else if ((r = queue_verdict(d, dev, &vr, access, c)) == 0) {
                        /* numbers are used only once queued, in queue order */
                        dev->rec.sequence = v->sequence;
                        d->gseq = v->global_sequence;
                        dev->queued_deadline = c->deadline;
                        if (kind == ISSUE_ATTESTED)
                                dev->issued_ticket = ticket;
                }
                if (r < 0 && record) {
                        free(*record);
                        *record = NULL;
                }
        }
        pthread_mutex_unlock(&d->seq_lock);
        if (r < 0) {
                free(c->record);
                free(c);
                return r;
        }
        atomic_fetch_add(&d->verdicts_issued, 1);
        return 0;
}

int verdict_issue(vouchd *d, device *dev, Vouch__V1__Verdict *v, verdict_done_fn done, void *userdata,
                  uint8_t **record, size_t *record_len) {
        return issue(d, dev, v, ISSUE_PLAIN, 0, NULL, done, userdata, record, record_len);
}

int verdict_issue_with_access(vouchd *d, device *dev, Vouch__V1__Verdict *v, bool approved, bool revoked,
                              verdict_done_fn done, void *userdata) {
        vs_device access = { .approved = approved, .revoked = revoked };
        return issue(d, dev, v, ISSUE_WITH_ROW, 0, &access, done, userdata, NULL, NULL);
}

int verdict_issue_attested(vouchd *d, device *dev, Vouch__V1__Verdict *v, uint64_t ticket, verdict_done_fn done,
                           void *userdata, uint8_t **record, size_t *record_len) {
        return issue(d, dev, v, ISSUE_ATTESTED, ticket, NULL, done, userdata, record, record_len);
}

void verdict_set_access(vouchd *d, device *dev, bool approved, bool revoked) {
        pthread_mutex_lock(&d->seq_lock);
        pthread_mutex_lock(&d->lock);
        dev->rec.approved = approved;
        dev->rec.revoked = revoked;
        pthread_mutex_unlock(&d->lock);
        pthread_mutex_unlock(&d->seq_lock);
}

static void fill_ak_name(device *dev, uint8_t *buf, Vouch__V1__Verdict *v) {
        size_t n = 0;
        if (dev->ak && dev->ak->has_public && vc_public_name(&dev->ak->public, buf, &n) == 0) {
                v->ak_name.data = buf;
                v->ak_name.len = n;
        }
}

/* A signed verdict that is not stored (sequence 0, expiring at once) standing in for the
 * latest one, with one finding (rule NULL: none). */
static int stand_in(vouchd *d, device *dev, int status, const char *rule, const char *expected, const char *actual,
                    const char *why, uint8_t **record, size_t *record_len) {
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        Vouch__V1__Finding f = VOUCH__V1__FINDING__INIT, *fp = &f;
        uint8_t name[2 + VC_MAX_DIGEST];
        int64_t now = vclock_wall();
        v.device_id = dev->rec.id;
        v.status = status;
        v.issued_at = now;
        v.expires_at = now;
        v.verifier_id = d->verifier_id;
        pthread_mutex_lock(&d->lock);
        v.ek_anchor = dev->rec.ek_anchor;
        pthread_mutex_unlock(&d->lock);
        if (rule)
                verdict_one_finding(&v, &f, &fp, rule, expected, actual, why);
        pthread_mutex_lock(&dev->mu);
        fill_ak_name(dev, name, &v);
        pthread_mutex_unlock(&dev->mu);
        pthread_mutex_lock(&d->seq_lock);
        int r = vv_verdict_sign(&v, &d->keys.active, record, record_len);
        pthread_mutex_unlock(&d->seq_lock);
        return r;
}

int verdict_adhoc(vouchd *d, device *dev, int status, uint8_t **record, size_t *record_len) {
        return stand_in(d, dev, status, "attestation", "an attestation", "none",
                        "the device has not attested since it enrolled", record, record_len);
}

static int issue_stale(vouchd *d, device *dev, int64_t expired_at) {
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        Vouch__V1__Finding f = VOUCH__V1__FINDING__INIT, *fp = &f;
        uint8_t name[2 + VC_MAX_DIGEST];
        char expected[96], actual[96], when[40];
        time_t now = (time_t) vclock_wall(), t = (time_t) expired_at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        v.device_id = dev->rec.id;
        v.status = VOUCH__V1__TRUST_STATUS__STALE;
        v.issued_at = now;
        v.expires_at = now + (int64_t) d->cfg.interval * d->cfg.verdict_ttl_intervals;
        pthread_mutex_lock(&dev->mu);
        v.boot_count = dev->state.reset_count;
        fill_ak_name(dev, name, &v);
        pthread_mutex_unlock(&dev->mu);
        snprintf(expected, sizeof(expected), "a fresh attestation before %s", when);
        snprintf(actual, sizeof(actual), "none since");
        verdict_one_finding(&v, &f, &fp, "freshness", expected, actual,
                            "the device's last verdict expired without a new attestation; it is not trusted until it "
                            "attests again");
        int r = issue(d, dev, &v, ISSUE_STALE, 0, NULL, NULL, NULL, NULL, NULL);
        if (r == 0) {
                atomic_fetch_add(&d->stale_issued, 1);
                vlog(LOG_INFO, "device %s: STALE (its verdict expired at %s)", dev->rec.id, when);
        }
        return r;
}

/* Marks dev as having a STALE verdict on its way if its latest one has expired; the
 * caller holds d->lock and issues it after unlocking. */
/* Only a TRUSTED verdict turns STALE: an UNTRUSTED one stays the device's verdict, with its
 * findings, until the device attests again (docs/verdicts.md, "Lifetime"). */
static bool needs_stale_locked(device *dev) {
        if (!dev->latest || dev->stale_queued || dev->latest_status != VOUCH__V1__TRUST_STATUS__TRUSTED ||
            !verdict_expired_locked(dev))
                return false;
        dev->stale_queued = true;
        return true;
}

/* Held by whoever changes d->keys (also under seq_lock, which its readers take) or writes
 * verdict-keys.pem: SIGHUP (main thread) and a retired key's end date (sweep, API thread).
 * Its holder may read d->keys without seq_lock. */
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

int verdict_keys_reload(vouchd *d) {
        verdict_keys k;
        pthread_mutex_lock(&keys_lock);
        int r = vk_load(d->cfg.state_dir, &k);
        if (r == 0) {
                pthread_mutex_lock(&d->seq_lock);
                verdict_keys old = d->keys;
                d->keys = k;
                pthread_mutex_unlock(&d->seq_lock);
                verdict_keys_free(&old);
        }
        pthread_mutex_unlock(&keys_lock);
        return r;
}

/* A retired key stops being published (GET /v1/keys, verdict-keys.pem) at its end date,
 * not at the next SIGHUP. Only the retired keys change: a key made by rotate-key still
 * waits for the SIGHUP that puts it to use. */
static void retire_keys(vouchd *d, int64_t now) {
        char id[65] = "";
        size_t dropped = 0, kept = 0;
        int r = 0;
        pthread_mutex_lock(&keys_lock);
        pthread_mutex_lock(&d->seq_lock);
        verdict_keys *k = &d->keys;
        for (size_t i = 0; i < k->n_retired; i++) {
                if (k->retired[i].not_after > now) {
                        k->retired[kept++] = k->retired[i];
                        continue;
                }
                memcpy(id, k->retired[i].id, sizeof(id));
                EVP_PKEY_free(k->retired[i].pkey);
                dropped++;
        }
        k->n_retired = kept;
        pthread_mutex_unlock(&d->seq_lock);
        if (dropped) /* the file (and its fsync) under keys_lock only: numbering goes on */
                r = vk_write_pubs(d->cfg.state_dir, k);
        pthread_mutex_unlock(&keys_lock);
        if (dropped && r < 0)
                vlog(LOG_ERR, "retired verdict key %.16s reached its end date: no longer served, but verdict-keys.pem "
                              "could not be rewritten (%s); it lists the key until the next SIGHUP", id, strerror(-r));
        else if (dropped)
                vlog(LOG_INFO, "retired verdict key %.16s reached its end date: no longer published", id);
}

#define SWEEP_CHUNK 4096

typedef struct shown_store {
        vouchd *d;
        device *dev;
} shown_store;

static void shown_stored(int error, void *userdata) {
        shown_store *ss = userdata;
        if (error < 0)
                vlog(LOG_ERR, "device %s: its latest verdict could not be stored again: its lease is kept",
                     ss->dev->rec.id);
        lease_put(ss->d, ss->dev); /* released once stored (lease.c) */
        free(ss);
}

/* A shared store's sweep, for a device whose latest verdict in memory could not be stored
 * and whose session ended: it is stored again, then the lease can go. Its row is never
 * released before (lease.c), so another instance holds it only by taking it over after this
 * one's heartbeat lapsed, and that one superseded the store's verdict. */
static void unstored_leased(vouchd *d, device *dev, int result, const char *holder, void *userdata) {
        if (result == -EBUSY) {
                pthread_mutex_lock(&d->lock);
                dev->unstored = false;
                dev->lease_row = false;
                pthread_mutex_unlock(&d->lock);
        }
        if (result < 0)
                return;
        shown_store *ss = malloc(sizeof(*ss));
        if (ss)
                *ss = (shown_store) { d, dev };
        int r = ss ? verdict_store_shown(d, dev, shown_stored, ss) : -ENOMEM;
        if (r <= 0) {
                free(ss);
                lease_put(d, dev);
        }
}

/* A shared store's sweep, once it holds the device's lease (on the writer thread after a
 * claim, or on the sweep's when it held it already): the latest verdict is judged again, as
 * a new claim reloaded it (another instance may have issued the STALE one, or attested the
 * device, since this one last knew), and the lease dropped. */
static void sweep_leased(vouchd *d, device *dev, int result, const char *holder, void *userdata) {
        if (result == -EBUSY) /* the holder issues it: what it issued, so that this sweep stops asking */
                verdict_reload_latest(d, dev);
        pthread_mutex_lock(&d->lock);
        dev->stale_queued = false;
        bool due = result == 0 && needs_stale_locked(dev);
        int64_t expired_at = dev->latest_expires;
        pthread_mutex_unlock(&d->lock);
        if (due && issue_stale(d, dev, expired_at) < 0) {
                pthread_mutex_lock(&d->lock);
                dev->stale_queued = false;
                pthread_mutex_unlock(&d->lock);
        }
        if (result == 0)
                lease_put(d, dev);
}

void verdict_sweep(vouchd *d) {
        int64_t now = vclock_wall();
        retire_keys(d, now);
        size_t n = 0, cap = 0, nu = 0;
        device **due = NULL, *unstored[64];
        int64_t *when = NULL;
        /* the registry lock is taken for SWEEP_CHUNK buckets at a time, not for the whole
         * walk: with 100,000 devices a walk takes milliseconds, and every attestation takes
         * this lock. Devices are never removed while vouchd runs; one added behind the walk
         * is seen by the next sweep, a second later. */
        for (size_t b0 = 0; b0 < d->n_buckets; b0 += SWEEP_CHUNK) {
                pthread_mutex_lock(&d->lock);
                for (size_t b = b0; b < d->n_buckets && b < b0 + SWEEP_CHUNK; b++)
                        for (device *dev = d->buckets[b]; dev; dev = dev->next) {
                                int64_t exp = dev->latest_expires;
                                /* (a few a second: more wait for the next sweep) */
                                if (dev->unstored && dev->lease_row && !dev->lease_uses && !dev->lease_claims &&
                                    nu < sizeof(unstored) / sizeof(unstored[0]))
                                        unstored[nu++] = dev;
                                if (!needs_stale_locked(dev))
                                        continue;
                                if (n == cap) {
                                        size_t nc = cap ? cap * 2 : 64;
                                        device **nd = realloc(due, nc * sizeof(*nd));
                                        int64_t *nw = nd ? realloc(when, nc * sizeof(*nw)) : NULL;
                                        if (nd)
                                                due = nd;
                                        if (!nw) {
                                                dev->stale_queued = false; /* next sweep */
                                                pthread_mutex_unlock(&d->lock);
                                                goto issue;
                                        }
                                        when = nw;
                                        cap = nc;
                                }
                                due[n] = dev;
                                when[n++] = exp;
                        }
                pthread_mutex_unlock(&d->lock);
        }
issue:
        for (size_t i = 0; i < nu; i++)
                lease_get(d, unstored[i], unstored_leased, NULL);
        for (size_t i = 0; i < n; i++)
                if (d->shared) {
                        /* only the holder issues it: the device's lease is taken for it, or
                         * refused while another instance holds it (that one issues it) */
                        if (lease_get(d, due[i], sweep_leased, NULL) < 0) {
                                pthread_mutex_lock(&d->lock);
                                due[i]->stale_queued = false;
                                pthread_mutex_unlock(&d->lock);
                        }
                } else if (issue_stale(d, due[i], when[i]) < 0) {
                        pthread_mutex_lock(&d->lock);
                        due[i]->stale_queued = false;
                        pthread_mutex_unlock(&d->lock);
                }
        free(due);
        free(when);
}

bool verdict_golden_outdated_locked(vouchd *d, const device *dev, char *why, size_t n) {
        if (!dev->latest || dev->latest_status != VOUCH__V1__TRUST_STATUS__TRUSTED)
                return false;
        const char *name = dev->rec.golden[0] ? dev->rec.golden : d->cfg.default_golden;
        const vc_golden *g = golden_table_find(d->golden, name);
        if (g && strcmp(dev->latest_golden, name) == 0 && g->version == dev->latest_golden_version)
                return false;
        if (why) {
                char now_set[160];
                if (g)
                        snprintf(now_set, sizeof(now_set), "golden set %s version %lld", name, (long long) g->version);
                else
                        snprintf(now_set, sizeof(now_set), "golden set %s (not loaded)", name);
                snprintf(why, n, "the latest TRUSTED verdict was judged by golden set %s version %lld; the device is now "
                         "judged by %s and has not attested under it yet", dev->latest_golden,
                         (long long) dev->latest_golden_version, now_set);
        }
        return true;
}

/* What the device's latest verdict stands for when it is shown (d->lock held): it is judged
 * against the device's state now, whatever is stored. */
typedef enum shown {
        SHOWN_NONE,             /* never attested: UNKNOWN */
        SHOWN_LATEST,           /* the latest verdict as it is */
        SHOWN_REVOKED,          /* TRUSTED, but the device is revoked: UNTRUSTED */
        SHOWN_EXPIRED,          /* TRUSTED past its expiry, not superseded yet: STALE */
        SHOWN_GOLDEN,           /* TRUSTED under a golden set no longer in force: STALE */
} shown;

static shown shown_locked(vouchd *d, const device *dev, char *why, size_t n) {
        if (!dev->latest)
                return SHOWN_NONE;
        if (dev->latest_status == VOUCH__V1__TRUST_STATUS__TRUSTED && (dev->rec.revoked || !dev->rec.approved))
                return SHOWN_REVOKED;
        if (dev->latest_status == VOUCH__V1__TRUST_STATUS__TRUSTED && verdict_expired_locked(dev))
                return SHOWN_EXPIRED;
        if (verdict_golden_outdated_locked(d, dev, why, n))
                return SHOWN_GOLDEN;
        return SHOWN_LATEST;
}

int verdict_shown_status_locked(vouchd *d, const device *dev) {
        switch (shown_locked(d, dev, NULL, 0)) {
        case SHOWN_NONE: return VOUCH__V1__TRUST_STATUS__UNKNOWN;
        case SHOWN_REVOKED: return VOUCH__V1__TRUST_STATUS__UNTRUSTED;
        case SHOWN_EXPIRED:
        case SHOWN_GOLDEN: return VOUCH__V1__TRUST_STATUS__STALE;
        case SHOWN_LATEST: break;
        }
        return dev->latest_status;
}

int verdict_current(vouchd *d, device *dev, uint8_t **record, size_t *record_len, int *status) {
        char why[400] = "";
        int64_t exp = 0;
        bool queue = false;
        *record = NULL;
        pthread_mutex_lock(&d->lock);
        shown sh = shown_locked(d, dev, why, sizeof(why));
        if (sh == SHOWN_EXPIRED) {
                exp = dev->latest_expires;
                queue = needs_stale_locked(dev);
        } else if (sh == SHOWN_LATEST) {
                *record = malloc(dev->latest_len);
                if (*record) {
                        memcpy(*record, dev->latest, dev->latest_len);
                        *record_len = dev->latest_len;
                        *status = dev->latest_status;
                }
        }
        pthread_mutex_unlock(&d->lock);
        switch (sh) {
        case SHOWN_LATEST:
                return *record ? 0 : -ENOMEM;
        case SHOWN_NONE:
                *status = VOUCH__V1__TRUST_STATUS__UNKNOWN;
                return verdict_adhoc(d, dev, VOUCH__V1__TRUST_STATUS__UNKNOWN, record, record_len);
        case SHOWN_REVOKED:
                *status = VOUCH__V1__TRUST_STATUS__UNTRUSTED;
                return stand_in(d, dev, *status, "revoked", "not revoked", "revoked",
                                "the device is revoked; its latest stored verdict (TRUSTED) predates the revocation",
                                record, record_len);
        case SHOWN_EXPIRED:
                /* expired and the STALE verdict not yet committed: never show the old
                 * status; a signed STALE that is not stored stands in */
                if (queue && issue_stale(d, dev, exp) < 0) {
                        pthread_mutex_lock(&d->lock);
                        dev->stale_queued = false;
                        pthread_mutex_unlock(&d->lock);
                }
                *status = VOUCH__V1__TRUST_STATUS__STALE;
                return stand_in(d, dev, *status, NULL, NULL, NULL, NULL, record, record_len);
        case SHOWN_GOLDEN:
                *status = VOUCH__V1__TRUST_STATUS__STALE;
                return stand_in(d, dev, *status, "golden", "an attestation under the golden set in force",
                                "a verdict under another golden set or version", why, record, record_len);
        }
        return -EINVAL;
}

/* What the latest verdict is taken for comes from the signed record itself, not from the
 * row's columns: a row whose columns disagree with its record (edited, or corrupt) is not
 * served. 0 with *ret filled (but for the record, which stays the caller's), or -EBADMSG with
 * why set. */
typedef struct loaded {
        int status;
        int64_t expires;
        char golden[129];
        int64_t golden_version;
} loaded;

static int check_record(const char *id, const vs_verdict *v, loaded *ret, char *why, size_t n) {
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, v->record_len, v->record);
        Vouch__V1__Verdict *vd = sv ? vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data) : NULL;
        int r = -EBADMSG;
        if (!vd)
                snprintf(why, n, "its record is not a SignedVerdict");
        else if (strcmp(vd->device_id, id) != 0)
                snprintf(why, n, "its record is about device %.64s", vd->device_id);
        else if ((int) vd->status != v->status || vd->expires_at != v->expires_at || vd->sequence != v->sequence)
                snprintf(why, n, "its columns (status %d, expires %lld, sequence %llu) disagree with its record "
                         "(status %d, expires %lld, sequence %llu)", v->status, (long long) v->expires_at,
                         (unsigned long long) v->sequence, (int) vd->status, (long long) vd->expires_at,
                         (unsigned long long) vd->sequence);
        else
                r = 0;
        if (r == 0) {
                ret->status = vd->status;
                ret->expires = vd->expires_at;
                snprintf(ret->golden, sizeof(ret->golden), "%s", vd->golden_name ? vd->golden_name : "");
                ret->golden_version = vd->golden_version;
        }
        vouch__v1__verdict__free_unpacked(vd, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return r;
}

/* dev's latest verdict becomes v's record (taken from v), as check_record read it. */
static void apply_loaded_locked(device *dev, vs_verdict *v, const loaded *l) {
        free(dev->latest);
        dev->latest = v->record;
        dev->latest_len = v->record_len;
        v->record = NULL;
        dev->latest_status = l->status;
        dev->latest_expires = l->expires;
        dev->latest_deadline = verdict_deadline(l->expires);
        snprintf(dev->latest_golden, sizeof(dev->latest_golden), "%s", l->golden);
        dev->latest_golden_version = l->golden_version;
        dev->stale_queued = false;
}

int verdict_load_latest(vouchd *d) {
        for (size_t b = 0; b < d->n_buckets; b++)
                for (device *dev = d->buckets[b]; dev; dev = dev->next) {
                        vs_verdict v = { 0 };
                        loaded l;
                        char why[300];
                        int r = vs_verdict_latest(d->store, dev->rec.id, &v);
                        if (r == -ENOENT)
                                continue;
                        if (r < 0)
                                return r;
                        if (check_record(dev->rec.id, &v, &l, why, sizeof(why)) < 0) {
                                /* the device shows as never attested (UNKNOWN) until it does */
                                vlog(LOG_ERR, "store: device %s: latest verdict (sequence %llu) not used: %s", dev->rec.id,
                                     (unsigned long long) v.sequence, why);
                                free(v.record);
                                continue;
                        }
                        apply_loaded_locked(dev, &v, &l);
                }
        int r = vs_verdict_last_global(d->store, &d->gseq);
        atomic_store(&d->published, d->gseq);
        return r;
}

/* The per-device sequence of a serialized SignedVerdict (0 when it does not parse). */
static uint64_t record_sequence(const uint8_t *record, size_t len) {
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, record);
        Vouch__V1__Verdict *vd = sv ? vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data) : NULL;
        uint64_t n = vd ? vd->sequence : 0;
        vouch__v1__verdict__free_unpacked(vd, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return n;
}

int verdict_reload_latest(vouchd *d, device *dev) {
        vs_verdict v = { 0 };
        loaded l;
        char why[300];
        int r = vs_verdict_latest(d->store, dev->rec.id, &v);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (check_record(dev->rec.id, &v, &l, why, sizeof(why)) < 0) {
                vlog(LOG_ERR, "store: device %s: latest verdict (sequence %llu) not used: %s", dev->rec.id,
                     (unsigned long long) v.sequence, why);
                free(v.record);
                return 0;
        }
        pthread_mutex_lock(&d->lock);
        /* a newer one in memory is this instance's own that was shown but not stored (a
         * failed commit): it stays */
        uint64_t have = dev->latest ? record_sequence(dev->latest, dev->latest_len) : 0;
        if (!dev->latest || v.sequence > have)
                apply_loaded_locked(dev, &v, &l);
        pthread_mutex_unlock(&d->lock);
        free(v.record);
        return 0;
}

/* The store's answer to the verdicts issued at start (writer thread). */
static void settle_done(int error, void *userdata) {
        if (error < 0)
                atomic_fetch_add((atomic_uint *) userdata, 1);
}

/* The verdict that supersedes dev's latest TRUSTED one when that may stand for nothing: an
 * UNTRUSTED one when the device is revoked (or not approved), else a STALE one saying why
 * (taken_from: the instance whose lease this one took over; NULL: this instance's own
 * unclean run). Returns 1 when one was issued, 0 when the latest one is not TRUSTED. */
static int supersede(vouchd *d, device *dev, const char *taken_from, verdict_done_fn done, void *userdata) {
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        Vouch__V1__Finding f = VOUCH__V1__FINDING__INIT, *fp = &f;
        char actual[160], why[400];
        int64_t now = vclock_wall();
        pthread_mutex_lock(&d->lock);
        bool trusted = dev->latest && dev->latest_status == VOUCH__V1__TRUST_STATUS__TRUSTED;
        bool revoked = dev->rec.revoked || !dev->rec.approved;
        pthread_mutex_unlock(&d->lock);
        if (!trusted)
                return 0;
        v.device_id = dev->rec.id;
        v.issued_at = now;
        v.expires_at = now + (int64_t) d->cfg.interval * d->cfg.verdict_ttl_intervals;
        pthread_mutex_lock(&dev->mu);
        v.boot_count = dev->state.reset_count;
        pthread_mutex_unlock(&dev->mu);
        if (revoked) {
                v.status = VOUCH__V1__TRUST_STATUS__UNTRUSTED;
                verdict_one_finding(&v, &f, &fp, "revoked", "not revoked", "revoked",
                                    "the device is revoked; its latest stored verdict (TRUSTED) predates the revocation");
        } else if (taken_from) {
                v.status = VOUCH__V1__TRUST_STATUS__STALE;
                snprintf(actual, sizeof(actual), "instance %s stopped holding it without releasing it", taken_from);
                snprintf(why, sizeof(why),
                         "the vouchd instance %s that attested this device stopped (a crash, a kill, or lost contact "
                         "with the database) and its lease was taken over: a newer, less trusting verdict it issued "
                         "may be missing; the device is trusted again once it attests",
                         taken_from);
                verdict_one_finding(&v, &f, &fp, "takeover", "the device's lease released by its holder", actual, why);
        } else {
                v.status = VOUCH__V1__TRUST_STATUS__STALE;
                verdict_one_finding(&v, &f, &fp, "restart", "a store holding every verdict vouchd issued",
                                    "vouchd stopped without storing them all",
                                    "vouchd stopped without storing every verdict it issued (a crash, a kill, or a "
                                    "failed write): a newer, less trusting verdict may be missing; the device is "
                                    "trusted again once it attests");
        }
        int r = issue(d, dev, &v, ISSUE_PLAIN, 0, NULL, done, userdata, NULL, NULL);
        return r < 0 ? r : 1;
}

int verdict_supersede(vouchd *d, device *dev, const char *taken_from, verdict_done_fn done, void *userdata) {
        return supersede(d, dev, taken_from, done, userdata);
}

int verdict_store_shown(vouchd *d, device *dev, verdict_done_fn done, void *userdata) {
        uint8_t *copy = NULL;
        size_t len = 0;
        pthread_mutex_lock(&d->lock);
        if (dev->unstored && dev->latest && (copy = malloc(dev->latest_len))) {
                memcpy(copy, dev->latest, dev->latest_len);
                len = dev->latest_len;
        }
        bool wanted = dev->unstored;
        pthread_mutex_unlock(&d->lock);
        if (!copy)
                return wanted ? -ENOMEM : 0;
        Vouch__V1__SignedVerdict *sv = vouch__v1__signed_verdict__unpack(NULL, len, copy);
        Vouch__V1__Verdict *v = sv ? vouch__v1__verdict__unpack(NULL, sv->verdict.len, sv->verdict.data) : NULL;
        int r = -EBADMSG;
        if (v) { /* the same statement, numbered (and signed) anew: its old numbers were never stored */
                char *verifier_id = v->verifier_id; /* issue() points it at d's: freed below as unpacked */
                r = issue(d, dev, v, ISSUE_PLAIN, 0, NULL, done, userdata, NULL, NULL);
                v->verifier_id = verifier_id;
        }
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        free(copy);
        return r < 0 ? r : 1;
}

static int settle_one(vouchd *d, device *dev, bool previous_clean, atomic_uint *failed) {
        bool revoked = dev->rec.revoked || !dev->rec.approved;
        if (previous_clean && !revoked)
                return 0;
        int r = supersede(d, dev, NULL, settle_done, failed);
        return r < 0 ? r : 0;
}

/* After an unclean run the global numbering jumps this far: a verdict numbered and shown
 * then (a failed commit's, served from memory) but never stored must not have its number
 * given to another verdict, or a watcher resuming after it would skip that one. */
#define GSEQ_GAP_AFTER_UNCLEAN (UINT64_C(1) << 32)

int verdict_settle_at_start(vouchd *d, bool previous_clean, size_t *ret_stale, size_t *ret_revoked) {
        atomic_uint failed = 0;
        size_t stale = 0, revoked = 0;
        int r = 0;
        if (!previous_clean)
                d->gseq += GSEQ_GAP_AFTER_UNCLEAN;
        if (d->shared) /* only the holder of a device's lease issues its verdicts */
                return lease_settle_at_start(d, previous_clean, ret_stale, ret_revoked);
        for (size_t b = 0; r == 0 && b < d->n_buckets; b++)
                for (device *dev = d->buckets[b]; r == 0 && dev; dev = dev->next) {
                        bool was_revoked = dev->rec.revoked || !dev->rec.approved;
                        uint64_t before = dev->rec.sequence;
                        if ((r = settle_one(d, dev, previous_clean, &failed)) == 0 && dev->rec.sequence != before)
                                (*(was_revoked ? &revoked : &stale))++;
                }
        vs_flush(d->store);
        *ret_stale = stale;
        *ret_revoked = revoked;
        if (r == 0 && atomic_load(&failed) == 0)
                vs_run_settled(d->store);
        return r < 0 ? r : atomic_load(&failed) ? -EIO : 0;
}

/* The EAR (verdict-ear.h) signed with the active key: the key and its id taken together, as
 * a SIGHUP may swap the active key meanwhile. */
int verdict_ear(vouchd *d, const uint8_t *record, size_t len, char **jwt) {
        vkey key;
        pthread_mutex_lock(&d->seq_lock);
        key = d->keys.active;
        if (key.pkey)
                EVP_PKEY_up_ref(key.pkey);
        pthread_mutex_unlock(&d->seq_lock);
        if (!key.pkey)
                return -ENOMEM;
        int r = vv_ear(record, len, &key, "vouchd " VOUCH_VERSION, jwt);
        EVP_PKEY_free(key.pkey);
        return r;
}
