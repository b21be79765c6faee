/* SPDX-License-Identifier: Apache-2.0 */
/* One agent connection: TLS 1.3, length-prefixed protobuf frames, enrollment (EK chain,
 * AK attributes, MakeCredential / ActivateCredential), then nonce-challenged attestations
 * at the configured interval, each verdict sent back once it is stored. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <tss2/tss2_mu.h>

#include "clock.h"
#include "credential.h"
#include "devcert.h"
#include "frame.h"
#include "vouchd.h"
#include "ekfetch.h"
#include "tlsconn.h"
#include "vouch.pb-c.h"
#include "wire.h"

typedef enum sstate {
        S_HELLO = 0,    /* waiting for Hello */
        S_ACTIVATE,     /* waiting for ActivateAnswer */
        S_STORING,      /* enrollment or verdict being committed */
        S_IDLE,         /* between attestations */
        S_QUOTE,        /* waiting for QuoteAnswer */
        S_CLOSING,      /* error sent, closing once written */
} sstate;

typedef struct session {
        loop *l;
        const session_io *io;           /* the connection: the agent's TLS (tconn), or a test's */
        void *conn;                     /* NULL once dropped */
        vf_decoder dec;
        sstate state;
        int refs;
        char peer[64];
        device *dev;                    /* bound device (the registry owns it) */
        /* enrollment */
        TPM2B_PUBLIC ek, ak;
        uint8_t *ek_pub_bytes, *ak_pub_bytes;
        size_t ek_pub_len, ak_pub_len;
        char id[VS_ID_MAX + 1];
        uint8_t ek_key[32];             /* vc_ek_key_id: one identity per EK key */
        uint8_t secret[32];
        bool needs_approval;
        int ek_anchor;                  /* Vouch__V1__EkAnchor of this enrollment */
        bool provisional;               /* known device, no quote verified yet on this session */
        /* attestation */
        uint8_t nonce[32];
        uint8_t nonce_used[32];         /* the answered challenge's nonce, for its verdict */
        struct timespec nonce_expiry, challenged_at;
        struct event *timer;
        golden_table *golden;           /* the table the challenge was made under */
        const vc_golden *g;
        uint64_t sequence;
        device *lease;                  /* a shared store: the device whose lease this session uses (lease.h) */
        struct session *prev, *next;    /* the loop's list */
} session;

typedef struct pending {
        session *s;
        struct pending *next;           /* in the loop's done list */
        int error;
        uint8_t *notice;                /* the framed VerdictNotice / Welcome to send on success */
        size_t notice_len;
        uint8_t *cert;                  /* the device's certificate (DER) issued with the verdict */
        size_t cert_len;
        int64_t cert_not_after;         /* ... and its notAfter (Unix seconds) */
        bool notice_failed;
        bool reschedule;
        struct timespec t0;             /* when the challenge was sent (0: not an attestation) */
        /* a claim of a device's lease (take_lease): the device, the instance that holds it
         * when refused, and what the session does once it has it */
        device *lease_dev;
        char holder[VS_INSTANCE_MAX + 1];
        void (*leased)(session *s);
} pending;

static void session_unref(session *s);
static void session_close(session *s, uint32_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_challenge(session *s);
static void bind_device(session *s, device *dev);
static void welcome(session *s, bool via_store);
static void hello_leased(session *s);

static int send_msg(session *s, const Vouch__V1__VerifierMessage *m) {
        uint8_t *b;
        size_t n;
        int r = vw_frame_verifier_message(m, s->l->d->cfg.max_frame, &b, &n);
        if (r < 0)
                return r;
        r = s->io->write(s->conn, b, n);
        free(b);
        return r;
}

/* Sends m; when it cannot be sent the session is closed (saying what could not be sent)
 * and false is returned. */
static bool send_or_close(session *s, const Vouch__V1__VerifierMessage *m, const char *what) {
        if (send_msg(s, m) == 0)
                return true;
        session_close(s, EIO, "cannot send %s", what);
        return false;
}

static void free_session(session *s) {
        if (s->prev)
                s->prev->next = s->next;
        else if (s->l->sessions == s)
                s->l->sessions = s->next;
        if (s->next)
                s->next->prev = s->prev;
        if (s->timer)
                event_free(s->timer);
        if (s->conn)
                s->io->free(s->conn);
        vf_decoder_done(&s->dec);
        free(s->ek_pub_bytes);
        free(s->ak_pub_bytes);
        golden_table_unref(s->golden);
        OPENSSL_cleanse(s->secret, sizeof(s->secret));
        atomic_fetch_sub(&s->l->d->connections, 1);
        free(s);
}

static void session_unref(session *s) {
        if (--s->refs == 0)
                free_session(s);
}

/* Unbinds from the device (if this session is still its active one) and drops the
 * connection's resources; the session itself lives on while pending work refers to it. */
static void session_drop(session *s) {
        vouchd *d = s->l->d;
        if (s->lease) {
                lease_put(d, s->lease);
                s->lease = NULL;
        }
        if (s->dev) {
                pthread_mutex_lock(&d->lock);
                if (s->dev->session == s)
                        s->dev->session = NULL;
                pthread_mutex_unlock(&d->lock);
                s->dev = NULL;
        }
        if (s->timer)
                event_del(s->timer);
        if (s->conn)
                s->io->free(s->conn);
        s->conn = NULL;
        if (s->state != S_CLOSING)
                s->state = S_CLOSING;
        session_unref(s);
}

static void session_close(session *s, uint32_t code, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        if (s->state == S_CLOSING)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        vlog(code ? LOG_WARN : LOG_INFO, "%s%s%s: closing: %s", s->peer, s->id[0] ? " device " : "", s->id, msg);
        s->state = S_CLOSING;
        if (s->timer)
                event_del(s->timer);
        if (!s->conn) {
                session_drop(s);
                return;
        }
        Vouch__V1__VerifierMessage m = VOUCH__V1__VERIFIER_MESSAGE__INIT;
        Vouch__V1__Error e = VOUCH__V1__ERROR__INIT;
        e.code = code;
        e.message = msg;
        m.msg_case = VOUCH__V1__VERIFIER_MESSAGE__MSG_ERROR;
        m.error = &e;
        /* say why, then close once it is written (or on any error); a peer that has not
         * completed the handshake cannot receive it and is dropped at once */
        s->io->stop_reading(s->conn);
        s->io->set_timeout(s->conn, 0);
        if (send_msg(s, &m) < 0) {
                session_drop(s);
                return;
        }
        s->io->close_after_flush(s->conn);
        /* a peer that does not read is gone 5 s from now */
        struct timeval tv = { 5, 0 };
        evtimer_add(s->timer, &tv);
}

static bool still_bound(session *s) {
        vouchd *d = s->l->d;
        bool bound;
        pthread_mutex_lock(&d->lock);
        bound = s->dev && (s->provisional || s->dev->session == s);
        pthread_mutex_unlock(&d->lock);
        return bound;
}

/* ---- per-loop randomness ---- */

/* Bytes from the loop's pool of DRBG output (refilled by one RAND_bytes per KiB: 32
 * nonces); what is handed out is wiped from the pool. */
static int loop_random(loop *l, uint8_t *out, size_t n) {
        if (n > sizeof(l->nonce_pool))
                return RAND_bytes(out, (int) n) == 1 ? 0 : -EIO;
        if (l->nonce_left < n) {
                if (RAND_bytes(l->nonce_pool, sizeof(l->nonce_pool)) != 1)
                        return -EIO;
                l->nonce_left = sizeof(l->nonce_pool);
        }
        uint8_t *p = l->nonce_pool + sizeof(l->nonce_pool) - l->nonce_left;
        memcpy(out, p, n);
        OPENSSL_cleanse(p, n);
        l->nonce_left -= n;
        return 0;
}

/* Uniform in [0, 1] for the schedule's jitter, from the DRBG: when a device is challenged
 * next is not for its peers (or a watcher of the network) to predict. */
static double loop_jitter01(loop *l) {
        uint64_t x;
        if (loop_random(l, (uint8_t *) &x, sizeof(x)) < 0)
                return 0.5;
        return (double) (x >> 11) / (double) ((1ULL << 53) - 1);
}

/* The delay to the next challenge, secs from now rounded up so that the challenge falls on
 * a multiple of CHALLENGE_SLACK_US of the loop's clock: agents due within the same few
 * milliseconds are challenged in one wake-up of the loop (and their answers tend to come
 * back together) instead of one wake-up each. The schedule's spread (the jitter, seconds)
 * is unchanged in substance. */
#define CHALLENGE_SLACK_US 8000
static struct timeval challenge_delay(loop *l, double secs) {
        struct timeval now;
        if (event_base_gettimeofday_cached(l->base, &now) < 0)
                gettimeofday(&now, NULL);
        int64_t now_us = (int64_t) now.tv_sec * 1000000 + now.tv_usec;
        int64_t at = now_us + (int64_t) (secs * 1e6);
        at += CHALLENGE_SLACK_US - at % CHALLENGE_SLACK_US;
        int64_t d = at - now_us;
        return (struct timeval) { (time_t) (d / 1000000), (suseconds_t) (d % 1000000) };
}

/* ---- work finished on the store's writer thread, continued on the session's loop ---- */

/* A claim of the device's lease answered (take_lease): the session goes on, or is closed
 * saying why (the agent connects again after its backoff, through the load balancer to
 * another instance, perhaps the holder). */
static void lease_finish(pending *p) {
        session *s = p->s;
        vouchd *d = s->l->d;
        const char *id = p->lease_dev->rec.id;
        if (s->state == S_CLOSING || !s->conn || atomic_load(&d->stopping)) {
                if (p->error == 0)
                        lease_put(d, p->lease_dev);
                return;
        }
        switch (p->error) {
        case 0:
                s->lease = p->lease_dev;
                p->leased(s);
                return;
        case -EBUSY:
                vlog(LOG_INFO, "device %s: refused: vouchd instance \"%s\" holds its lease (%s)", id, p->holder, s->peer);
                session_close(s, EBUSY,
                              "device %s is attested by the vouchd instance \"%s\" now (it holds the device's lease): "
                              "connect again later",
                              id, p->holder);
                return;
        case -ENOLINK:
                session_close(s, EAGAIN, "this vouchd instance cannot attest devices now: its heartbeat could not be "
                                         "stored in the database; connect again later");
                return;
        default:
                session_close(s, EIO, "cannot claim device %s for this vouchd instance: %s", id, strerror(-p->error));
        }
}

static void pending_finish(pending *p) {
        session *s = p->s;
        if (p->leased) {
                lease_finish(p);
                goto out;
        }
        if (s->state != S_CLOSING && s->conn && !atomic_load(&s->l->d->stopping)) {
                if (p->error == -EACCES) {
                        session_close(s, EACCES, "device %s is revoked or not approved: no verdict issued",
                                      s->dev ? s->dev->rec.id : s->id);
                } else if (p->error == -ENOLCK) {
                        session_close(s, EAGAIN, "this vouchd instance no longer holds device %s (its heartbeat "
                                      "could not be stored in time): no verdict issued; connect again",
                                      s->dev ? s->dev->rec.id : s->id);
                } else if (p->error == -ESTALE) {
                        session_close(s, ESTALE, "a later attestation of this device on another connection was "
                                      "verified first: no verdict issued for this one");
                } else if (p->error < 0) {
                        session_close(s, EIO, "the store could not commit: %s", strerror(-p->error));
                } else if (p->notice_failed) {
                        session_close(s, ENOMEM, "out of memory sending the verdict");
                } else {
                        if (p->notice && s->io->write(s->conn, p->notice, p->notice_len) < 0) {
                                session_close(s, EIO, "cannot send the verdict");
                                goto out;
                        }
                        s->state = S_IDLE;
                        if (p->reschedule) {
                                /* next attestation: interval +- jitter, so a fleet does not synchronise */
                                const config *c = &s->l->d->cfg;
                                double j = c->interval * (c->jitter_pct / 100.0);
                                double secs = c->interval - j + 2 * j * loop_jitter01(s->l);
                                /* a device certificate shorter-lived than the interval
                                 * (--device-cert-ttl) is renewed at two thirds of its life */
                                if (p->cert_not_after) {
                                        double renew = (double) (p->cert_not_after - vclock_wall()) * 2 / 3;
                                        if (renew < secs)
                                                secs = renew > 1 ? renew : 1;
                                }
                                struct timeval tv = challenge_delay(s->l, secs);
                                evtimer_add(s->timer, &tv);
                        } else {
                                send_challenge(s);
                        }
                }
        }
out:
        free(p->notice);
        free(p->cert);
        free(p);
        session_unref(s);
}

/* Runs on the loop: everything the writer (or the loop itself, on an error) handed back
 * since the last run, in the order it was handed back. */
static void pending_drain(evutil_socket_t fd, short what, void *arg) {
        loop *l = arg;
        pthread_mutex_lock(&l->done_lock);
        pending *p = l->done_head;
        l->done_head = l->done_tail = NULL;
        pthread_mutex_unlock(&l->done_lock);
        while (p) {
                pending *next = p->next;
                pending_finish(p);
                p = next;
        }
}

/* From any thread. Only the post that finds the list empty wakes the loop: a later one
 * joins a list that pending_drain has yet to take (it takes it under the lock). */
static void pending_post(pending *p) {
        loop *l = p->s->l;
        p->next = NULL;
        pthread_mutex_lock(&l->done_lock);
        bool first = !l->done_head;
        if (l->done_tail)
                l->done_tail->next = p;
        else
                l->done_head = p;
        l->done_tail = p;
        pthread_mutex_unlock(&l->done_lock);
        if (first)
                event_active(l->done_ev, 0, 0); /* thread-safe: evthread is on */
}

int session_loop_init(loop *l) {
        pthread_mutex_init(&l->done_lock, NULL);
        l->done_ev = event_new(l->base, -1, 0, pending_drain, l);
        return l->done_ev ? 0 : -ENOMEM;
}

void session_loop_fini(loop *l) {
        if (!l->done_ev)
                return;
        event_free(l->done_ev);
        l->done_ev = NULL;
        pthread_mutex_destroy(&l->done_lock);
}

static void store_done(int error, void *userdata) {
        pending *p = userdata;
        p->error = error;
        if (error == 0 && p->t0.tv_sec) {
                vouchd *d = p->s->l->d;
                struct timespec now;
                vclock_mono_ts(&now);
                double secs = (double) (now.tv_sec - p->t0.tv_sec) + (now.tv_nsec - p->t0.tv_nsec) / 1e9;
                size_t b = 0;
                while (b < LATENCY_BUCKETS && secs > latency_bounds[b])
                        b++;
                atomic_fetch_add(&d->latency_count[b], 1);
                atomic_fetch_add(&d->latency_sum_us, (unsigned long long) (secs * 1e6));
        }
        pending_post(p);
}

/* An attestation's verdict committed (writer thread): the notice carries its record, and the
 * device's certificate stored with it. */
static void verdict_stored(int error, const uint8_t *record, size_t record_len, void *userdata) {
        pending *p = userdata;
        if (error == 0 && (!record || devcert_frame_notice(p->s->l->d, record, record_len, p->cert, p->cert_len,
                                                            &p->notice, &p->notice_len) < 0))
                p->notice_failed = true;
        store_done(error, userdata);
}

static pending *pending_new(session *s) {
        pending *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->s = s;
        s->refs++;
        s->state = S_STORING;
        return p;
}

/* The lease's answer (lease_fn; the writer thread, or the loop when held already). */
static void session_leased(vouchd *d, device *dev, int result, const char *holder, void *userdata) {
        pending *p = userdata;
        p->error = result;
        snprintf(p->holder, sizeof(p->holder), "%s", holder);
        pending_post(p);
}

/* On a shared store, a device is attested only under its lease (lease.h): the session takes
 * a use of it and goes on with leased once it has it, on its loop, no message being expected
 * meanwhile; with a store of its own at once. The use is dropped when the session ends. */
static void take_lease(session *s, device *dev, void (*leased)(session *s)) {
        vouchd *d = s->l->d;
        if (!d->shared || s->lease == dev) {
                leased(s);
                return;
        }
        if (s->lease) { /* one device per session */
                session_close(s, EPROTO, "a second device on one connection");
                return;
        }
        pending *p = pending_new(s);
        if (!p) {
                session_close(s, ENOMEM, "out of memory");
                return;
        }
        p->lease_dev = dev;
        p->leased = leased;
        int r = lease_get(d, dev, session_leased, p);
        if (r < 0) {
                p->error = r;
                pending_post(p);
        }
}

/* ---- attestation ---- */

static void challenge_timer_cb(evutil_socket_t fd, short what, void *arg) {
        session *s = arg;
        if (s->state == S_IDLE)
                send_challenge(s);
        else if (s->state == S_CLOSING && s->conn)
                session_drop(s);
}

static const vc_golden *golden_for(session *s) {
        vouchd *d = s->l->d;
        char name[sizeof(s->dev->rec.golden)];
        golden_table_unref(s->golden);
        pthread_mutex_lock(&d->lock); /* the API may assign another set */
        snprintf(name, sizeof(name), "%s", s->dev->rec.golden[0] ? s->dev->rec.golden : d->cfg.default_golden);
        s->golden = golden_table_ref(d->golden);
        pthread_mutex_unlock(&d->lock);
        return golden_table_find(s->golden, name);
}

static void send_challenge(session *s) {
        vouchd *d = s->l->d;
        if (!still_bound(s)) {
                session_close(s, EALREADY, "replaced by a newer connection of the same device");
                return;
        }
        s->g = golden_for(s);
        if (!s->g) {
                session_close(s, ENOENT, "no golden set \"%s\" is loaded for this device",
                              s->dev->rec.golden[0] ? s->dev->rec.golden : d->cfg.default_golden);
                return;
        }
        if (loop_random(s->l, s->nonce, sizeof(s->nonce)) < 0) {
                session_close(s, EIO, "no randomness for a nonce");
                return;
        }
        vclock_mono_ts(&s->nonce_expiry);
        s->nonce_expiry.tv_sec += d->cfg.nonce_timeout;

        uint32_t pcrs[VC_PCR_COUNT];
        size_t n = 0;
        for (unsigned i = 0; i < VC_PCR_COUNT; i++)
                if (s->g->pcrs & (1u << i))
                        pcrs[n++] = i;
        Vouch__V1__PcrSelection sel = VOUCH__V1__PCR_SELECTION__INIT, *selp = &sel;
        sel.hash_alg = s->g->bank;
        sel.pcrs = pcrs;
        sel.n_pcrs = n;
        Vouch__V1__QuoteChallenge c = VOUCH__V1__QUOTE_CHALLENGE__INIT;
        c.nonce.data = s->nonce;
        c.nonce.len = sizeof(s->nonce);
        c.expires_in_ms = (uint64_t) d->cfg.nonce_timeout * 1000;
        c.n_selection = 1;
        c.selection = &selp;
        pthread_mutex_lock(&s->dev->mu);
        c.eventlog_offset = vc_device_state_log_offset(&s->dev->state);
        pthread_mutex_unlock(&s->dev->mu);
        Vouch__V1__VerifierMessage m = VOUCH__V1__VERIFIER_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__VERIFIER_MESSAGE__MSG_CHALLENGE;
        m.challenge = &c;
        if (!send_or_close(s, &m, "the challenge"))
                return;
        s->state = S_QUOTE;
        vclock_mono_ts(&s->challenged_at);
        s->io->set_timeout(s->conn, d->cfg.nonce_timeout);
}

static int pcrs_from_msg(const Vouch__V1__QuoteAnswer *a, vc_pcr_set *out, char *why, size_t n) {
        memset(out, 0, sizeof(*out));
        if (a->n_pcrs > VC_NUM_ALGS)
                return snprintf(why, n, "%zu PCR banks", a->n_pcrs), -EBADMSG;
        for (size_t i = 0; i < a->n_pcrs; i++) {
                const Vouch__V1__PcrBank *b = a->pcrs[i];
                vc_pcr_bank *bank = b->hash_alg <= 0xffff ? vc_pcr_set_bank(out, (uint16_t) b->hash_alg) : NULL;
                if (!bank || vc_pcr_set_find(out, (uint16_t) b->hash_alg) != bank || bank->mask)
                        return snprintf(why, n, "PCR bank 0x%x unknown or repeated", b->hash_alg), -EBADMSG;
                if (b->n_values > VC_PCR_COUNT)
                        return snprintf(why, n, "%zu PCR values in one bank", b->n_values), -EBADMSG;
                for (size_t k = 0; k < b->n_values; k++) {
                        uint32_t idx = b->values[k]->key;
                        ProtobufCBinaryData v = b->values[k]->value;
                        if (idx >= VC_PCR_COUNT || v.len != bank->size || (bank->mask & (1u << idx)))
                                return snprintf(why, n, "PCR %u of bank 0x%x: bad index, size %zu or repeated", idx,
                                                b->hash_alg, v.len),
                                       -EBADMSG;
                        memcpy(bank->values[idx], v.data, v.len);
                        bank->mask |= 1u << idx;
                }
        }
        return 0;
}

static Vouch__V1__TrustStatus status_of(vc_trust t) {
        return t == VC_TRUST_TRUSTED ? VOUCH__V1__TRUST_STATUS__TRUSTED : VOUCH__V1__TRUST_STATUS__UNTRUSTED;
}

/* Whether to persist the last quote's clock with this attestation's verdict: when the
 * boot (resetCount) or the TPM restart count changed, and otherwise every
 * CLOCK_SAVE_EVERY-th attestation. The clock in the store thus lags the device's by
 * fewer than CLOCK_SAVE_EVERY intervals, which only matters after a vouchd restart: the
 * freshness check then compares against the older clock. It cannot admit a replayed
 * quote (every quote answers a fresh nonce); a TPM whose clock went back less than the
 * lag (a VM snapshot restored) goes unnoticed in that window. Saving it every time would
 * cost a device-row page per verdict in the store. Under dev->mu. */
#define CLOCK_SAVE_EVERY 16
static bool clock_due(device *dev) {
        const vc_device_state *st = &dev->state;
        if (dev->clock_saved && st->reset_count == dev->saved_reset && st->restart_count == dev->saved_restart &&
            ++dev->clock_unsaved < CLOCK_SAVE_EVERY)
                return false;
        dev->clock_saved = true;
        dev->saved_reset = st->reset_count;
        dev->saved_restart = st->restart_count;
        dev->clock_unsaved = 0;
        return true;
}

/* Builds the verdict and has it signed and queued; the agent gets it once it is committed. */
/* ak_name: the Name of the AK that verified the quote (read with the quote, under dev->mu:
 * a re-enrollment on another loop replaces and frees dev->ak). proof: the device key's
 * (devcert.h): with a TRUSTED verdict, its certificate is issued and stored with the
 * verdict; a proof that failed, or a certificate that could not be made, is a finding of
 * the verdict (which stays TRUSTED: its boot is, its key is not proven). */
static void issue_verdict(session *s, const vc_attest_result *res, uint64_t ticket, const uint8_t *ak_name,
                          size_t ak_name_len, const devcert_proof *proof) {
        vouchd *d = s->l->d;
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        Vouch__V1__Finding *fs = NULL, **fp = NULL;
        Vouch__V1__Finding single = VOUCH__V1__FINDING__INIT, *singlep = &single;
        time_t now = (time_t) vclock_wall();
        vs_cert cert = { 0 };
        char key_actual[96] = "", reason[400] = "", key_why[480] = "";
        bool key_finding = false;
        v.device_id = s->dev->rec.id;
        v.status = status_of(res->trust);
        v.issued_at = now;
        v.expires_at = now + (int64_t) d->cfg.interval * d->cfg.verdict_ttl_intervals;
        v.nonce.data = s->nonce_used;
        v.nonce.len = sizeof(s->nonce_used);
        v.golden_name = (char *) s->g->name;
        v.golden_version = s->g->version;
        v.boot_count = res->quote.reset_count;
        if (ak_name_len) {
                v.ak_name.data = (uint8_t *) ak_name;
                v.ak_name.len = ak_name_len;
        }
        /* the key this attestation proved, for relying parties that see it over TLS */
        uint8_t device_key[32];
        if (res->trust == VC_TRUST_TRUSTED && proof->state == DEVCERT_PROOF_VALID &&
            devcert_key_digest(proof->key, device_key) == 0) {
                v.device_key.data = device_key;
                v.device_key.len = sizeof(device_key);
        }
        if (res->trust == VC_TRUST_TRUSTED && proof->state == DEVCERT_PROOF_VALID &&
            devcert_issue(d, s->dev->rec.id, proof->key, now, v.expires_at, &cert, reason, sizeof(reason)) < 0) {
                key_finding = true;
                snprintf(key_actual, sizeof(key_actual), "no certificate could be issued");
        } else if (res->trust == VC_TRUST_TRUSTED && proof->state == DEVCERT_PROOF_INVALID) {
                key_finding = true;
                snprintf(key_actual, sizeof(key_actual), "%s check failed", proof->check);
                snprintf(reason, sizeof(reason), "%s", proof->why);
        }
        if (key_finding) {
                snprintf(key_why, sizeof(key_why), "no device certificate issued: %s", reason);
                vlog(LOG_WARN, "device %s: %s", s->dev->rec.id, key_why);
        }
        size_t n_findings = res->evaluation.n_findings + key_finding;
        if (n_findings) {
                fs = calloc(n_findings, sizeof(*fs));
                fp = calloc(n_findings, sizeof(*fp));
                for (size_t i = 0; fs && fp && i < res->evaluation.n_findings; i++) {
                        const vc_finding *f = &res->evaluation.findings[i];
                        vouch__v1__finding__init(&fs[i]);
                        fs[i].rule = (char *) f->rule;
                        fs[i].pcr = f->pcr;
                        fs[i].event = f->event;
                        fs[i].event_type = (char *) (f->event >= 0 ? vc_event_type_name(f->event_type) : "");
                        fs[i].expected = f->expected;
                        fs[i].actual = f->actual;
                        fs[i].explanation = f->explanation;
                        fp[i] = &fs[i];
                }
                if (!fs || !fp)
                        goto fail; /* never a verdict without its findings */
                if (key_finding) {
                        Vouch__V1__Finding *kf = &fs[n_findings - 1];
                        verdict_one_finding(&v, kf, &fp[n_findings - 1], "device-key",
                                            "a device key certified by the AK over this challenge", key_actual, key_why);
                }
                v.findings = fp;
                v.n_findings = n_findings;
        } else if (res->trust != VC_TRUST_TRUSTED) {
                verdict_one_finding(&v, &single, &singlep, "attestation", "valid, fresh evidence", "", res->reason);
        }
        pending *p = pending_new(s);
        if (!p)
                goto fail;
        p->reschedule = true;
        p->t0 = s->challenged_at;
        if (res->failure == VC_ATTEST_OK || res->failure == VC_ATTEST_GOLDEN) {
                pthread_mutex_lock(&s->dev->mu);
                bool due = clock_due(s->dev);
                uint32_t reset = s->dev->state.reset_count, restart = s->dev->state.restart_count;
                uint64_t clock = s->dev->state.clock;
                pthread_mutex_unlock(&s->dev->mu);
                if (due && vs_device_put_clock(d->store, s->dev->rec.id, reset, restart, clock, NULL, NULL) < 0) {
                        pthread_mutex_lock(&s->dev->mu);
                        s->dev->clock_saved = false; /* not queued: try again next time */
                        pthread_mutex_unlock(&s->dev->mu);
                }
        }
        /* the store copies it when queued; the notice, once committed (verdict_stored, on the
         * writer thread), takes p's: set before the verdict is queued */
        p->cert = cert.der;
        p->cert_len = cert.der_len;
        p->cert_not_after = cert.der ? cert.not_after : 0;
        int r = verdict_issue_attested_cert(d, s->dev, &v, ticket, cert.der ? &cert : NULL, verdict_stored, p);
        bool issued = r == 0 && cert.der;
        cert.der = NULL; /* p's */
        if (r < 0) {
                p->error = r;
                pending_post(p);
        }
        free(fs);
        free(fp);
        if (r == -EACCES) {
                vlog(LOG_WARN, "device %s: revoked or not approved while its quote was on the way: no verdict issued",
                     s->dev->rec.id);
                return;
        }
        if (r == -ENOLCK) {
                vlog(LOG_WARN, "device %s: this instance's lease on it was lost while its quote was on the way: no "
                               "verdict issued", s->dev->rec.id);
                return;
        }
        if (r == -ESTALE) {
                vlog(LOG_WARN, "device %s: evidence verified before another connection's, whose verdict was issued "
                               "first: no verdict issued for it", s->dev->rec.id);
                return;
        }
        if (r < 0)
                return; /* pending_finish closes the session */
        vlog(LOG_INFO, "device %s: %s (sequence %llu)%s%s%s%s", s->dev->rec.id,
             res->trust == VC_TRUST_TRUSTED ? "TRUSTED" : "UNTRUSTED", (unsigned long long) v.sequence,
             res->trust == VC_TRUST_TRUSTED ? "" : ": ", res->trust == VC_TRUST_TRUSTED ? "" : res->reason,
             issued ? "; device certificate " : "", issued ? cert.serial : "");
        return;
fail:
        vs_cert_done(&cert);
        free(fs);
        free(fp);
        session_close(s, ENOMEM, "out of memory issuing the verdict");
}

/* How long past the challenge's expiry now is (seconds, 0 if not past). A timer or an
 * answer read that late means vouchd itself did not run for that long (stopped with
 * SIGSTOP, a suspended VM, a starved host): the agent was not necessarily slow. */
#define LATE_SECONDS 2.0
static double past_expiry(const session *s, const struct timespec *now) {
        double late = (double) (now->tv_sec - s->nonce_expiry.tv_sec) +
                      (double) (now->tv_nsec - s->nonce_expiry.tv_nsec) / 1e9;
        return late > 0 ? late : 0;
}

static void on_quote(session *s, const Vouch__V1__QuoteAnswer *a) {
        vouchd *d = s->l->d;
        struct timespec now;
        vc_pcr_set pcrs;
        char why[200];
        vclock_mono_ts(&now);
        s->io->set_timeout(s->conn, 0);
        if (now.tv_sec > s->nonce_expiry.tv_sec ||
            (now.tv_sec == s->nonce_expiry.tv_sec && now.tv_nsec > s->nonce_expiry.tv_nsec)) {
                double late = past_expiry(s, &now);
                if (late >= LATE_SECONDS)
                        session_close(s, ETIMEDOUT,
                                      "the challenge expired %.0f s before its answer was read: vouchd itself was not "
                                      "running meanwhile (stopped, e.g. SIGSTOP, or starved), the answer may have "
                                      "waited for it; the device is challenged again when its agent reconnects",
                                      late);
                else
                        session_close(s, ETIMEDOUT, "the challenge expired before the answer came");
                return;
        }
        if (!still_bound(s)) {
                session_close(s, EALREADY, "replaced by a newer connection of the same device");
                return;
        }
        if (pcrs_from_msg(a, &pcrs, why, sizeof(why)) < 0) {
                session_close(s, EBADMSG, "QuoteAnswer: %s", why);
                return;
        }
        vc_attest_input in = { .attest = a->attest.data, .attest_len = a->attest.len, .signature = a->signature.data,
                               .signature_len = a->signature.len, .pcrs = &pcrs, .nonce = s->nonce,
                               .nonce_len = sizeof(s->nonce), .eventlog_offset = a->eventlog_offset,
                               .eventlog = a->eventlog.data, .eventlog_len = a->eventlog.len };
        vc_quote_policy policy = { .allow_sha1 = d->cfg.allow_sha1 };
        vc_attest_result res;
        pthread_mutex_lock(&s->dev->mu);
        /* (a shared store's device: loaded at its first use here) */
        vc_ak *ak = device_ak_locked(s->dev);
        if (!ak) {
                pthread_mutex_unlock(&s->dev->mu);
                OPENSSL_cleanse(s->nonce, sizeof(s->nonce));
                vlog(LOG_ERR, "device %s: its enrolled AK does not load", s->dev->rec.id);
                session_close(s, EIO, "the device's enrolled AK cannot be loaded: no verdict issued");
                return;
        }
        int r = vc_attest_verify(&s->dev->state, ak, s->g, s->l->cache, s->l->hasher, &policy, &in, &res);
        uint8_t ak_name[2 + VC_MAX_DIGEST];
        size_t ak_name_len = 0;
        if (!ak->has_public || vc_public_name(&ak->public, ak_name, &ak_name_len) < 0)
                ak_name_len = 0;
        /* the device key's proof, by the same AK over the same challenge (issue 19) */
        devcert_proof proof = { .state = DEVCERT_PROOF_NONE };
        int pr = r == 0 && res.trust == VC_TRUST_TRUSTED
                         ? devcert_check(d, ak, s->nonce, sizeof(s->nonce), a->device_key_public.data,
                                         a->device_key_public.len, a->device_key_certify.data, a->device_key_certify.len,
                                         a->device_key_signature.data, a->device_key_signature.len, &proof)
                         : 0;
        if (pr < 0) {
                proof = (devcert_proof) { .state = DEVCERT_PROOF_INVALID, .check = "evaluation" };
                snprintf(proof.why, sizeof(proof.why), "it could not be checked: %s", strerror(-pr));
        }
        /* the order of verification, for verdict_issue_attested: two sessions of one device
         * (a bound one and a new one) must not have the older evidence's verdict issued last */
        uint64_t ticket = ++s->dev->verified;
        pthread_mutex_unlock(&s->dev->mu);
        /* the nonce is single use, whatever happened */
        memcpy(s->nonce_used, s->nonce, sizeof(s->nonce));
        OPENSSL_cleanse(s->nonce, sizeof(s->nonce));
        if (r < 0) {
                session_close(s, (uint32_t) -r, "could not evaluate the attestation");
                return;
        }
        if (s->provisional) {
                /* evidence only the device's TPM can make (its AK's signature over this
                 * challenge's nonce) binds the session; anything else is not the device's */
                bool signed_by_ak = res.failure == VC_ATTEST_OK || res.failure == VC_ATTEST_GOLDEN ||
                                    res.failure == VC_ATTEST_STALE || res.failure == VC_ATTEST_NEW_BOOT ||
                                    res.failure == VC_ATTEST_NEED_LOG ||
                                    (res.failure == VC_ATTEST_QUOTE &&
                                     (res.quote.failed == VC_QUOTE_CHECK_SIGNER || res.quote.failed == VC_QUOTE_CHECK_PCR_MISSING ||
                                      res.quote.failed == VC_QUOTE_CHECK_PCR_DIGEST ||
                                      res.quote.failed == VC_QUOTE_CHECK_EVENTLOG));
                if (!signed_by_ak) {
                        atomic_fetch_add(&d->attestations_bad, 1);
                        session_close(s, EPERM, "evidence rejected, no verdict issued: %s", res.reason);
                        devcert_proof_done(&proof);
                        vc_attest_result_done(&res);
                        return;
                }
                pthread_mutex_lock(&d->lock);
                bind_device(s, s->dev);
                s->provisional = false;
                pthread_mutex_unlock(&d->lock);
        }
        if (res.failure == VC_ATTEST_NEW_BOOT || res.failure == VC_ATTEST_NEED_LOG) {
                /* the device rebooted since the last challenge, or its new state needs the
                 * whole log to be evaluated: ask again, for the whole log */
                vlog(LOG_INFO, "device %s: %s; challenging again", s->dev->rec.id, res.reason);
                if (res.failure == VC_ATTEST_NEED_LOG)
                        atomic_fetch_add(&d->log_rerequests, 1);
                devcert_proof_done(&proof);
                vc_attest_result_done(&res);
                s->state = S_IDLE;
                send_challenge(s);
                return;
        }
        if (res.cache_hit)
                atomic_fetch_add(&s->l->cache_hits, 1);
        else if (res.failure == VC_ATTEST_OK || res.failure == VC_ATTEST_GOLDEN)
                atomic_fetch_add(&s->l->cache_misses, 1);
        atomic_fetch_add(res.trust == VC_TRUST_TRUSTED ? &d->attestations_ok : &d->attestations_bad, 1);
        issue_verdict(s, &res, ticket, ak_name, ak_name_len, &proof);
        devcert_proof_done(&proof);
        vc_attest_result_done(&res);
}

/* ---- enrollment ---- */

static bool allowlisted(vouchd *d, const uint8_t *der, size_t len) {
        char fp[65];
        if (vc_cert_fingerprint(der, len, fp) < 0)
                return false;
        for (size_t i = 0; i < d->n_allow; i++)
                if (strcasecmp(d->allow[i], fp) == 0)
                        return true;
        return false;
}

/* Queues the device's enrollment as it is now (copied under d->lock). For a known device
 * the store keeps the admin's fields (golden, approval, revocation): the API writes those,
 * and one of its changes may be waiting for the store at this moment. */
static int device_put(vouchd *d, device *dev, vs_done_fn done, void *userdata) {
        pthread_mutex_lock(&d->lock);
        int r = vs_device_put_enrollment(d->store, &dev->rec, done, userdata);
        pthread_mutex_unlock(&d->lock);
        return r;
}

static void welcome(session *s, bool via_store) {
        vouchd *d = s->l->d;
        Vouch__V1__Welcome w = VOUCH__V1__WELCOME__INIT;
        w.protocol_version = VOUCH__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1;
        w.device_id = s->id;
        w.enrolled = true;
        w.verifier_id = d->verifier_id;
        Vouch__V1__VerifierMessage m = VOUCH__V1__VERIFIER_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__VERIFIER_MESSAGE__MSG_WELCOME;
        m.welcome = &w;
        if (!via_store) {
                if (send_msg(s, &m) < 0) {
                        session_close(s, EIO, "cannot send Welcome");
                        return;
                }
                send_challenge(s);
                return;
        }
        /* enrollment: acknowledged once the device record is committed */
        pending *p = pending_new(s);
        if (!p || vw_frame_verifier_message(&m, d->cfg.max_frame, &p->notice, &p->notice_len) < 0) {
                if (p) {
                        p->error = -ENOMEM;
                        pending_post(p);
                } else {
                        session_close(s, ENOMEM, "out of memory");
                }
                return;
        }
        if (device_put(d, s->dev, store_done, p) < 0) {
                p->error = -EIO;
                pending_post(p);
        }
}

/* Binds this session as the device's active one (a previous session is replaced). */
static void bind_device(session *s, device *dev) {
        if (dev->session && dev->session != s)
                vlog(LOG_INFO, "device %s: a new connection replaces the previous one", dev->rec.id);
        dev->session = s;
        s->dev = dev;
}

/* Under d->lock, for an id the registry does not know: is the EK's key enrolled under
 * another id (the same TPM presenting its EK public with other attributes, policy or
 * padding)? Then the enrollment is refused (d->lock released, session closed): one TPM
 * is one device, and a revoked device does not come back under a new name. */
static bool refuse_second_identity(session *s) {
        vouchd *d = s->l->d;
        device *other = registry_find_key_locked(d, s->ek_key);
        if (!other || strcmp(other->rec.id, s->id) == 0)
                return false;
        char id[VS_ID_MAX + 1];
        snprintf(id, sizeof(id), "%s", other->rec.id);
        pthread_mutex_unlock(&d->lock);
        vlog(LOG_WARN, "%s: enrollment refused: its EK key is enrolled as device %s (EK public area differs)", s->peer, id);
        session_close(s, EPERM,
                      "enrollment refused: this EK's key is already enrolled as device %s; its EK public area differs "
                      "(attributes, policy or encoding) and a TPM enrolls under one identity",
                      id);
        return true;
}

/* The device's record as this enrollment makes it (its keys are the session's). */
static vs_device enrollment_rec(session *s) {
        vs_device rec = { .ek_public = s->ek_pub_bytes, .ek_public_len = s->ek_pub_len, .ak_public = s->ak_pub_bytes,
                          .ak_public_len = s->ak_pub_len, .approved = !s->needs_approval, .enrolled_at = vclock_wall(),
                          .ek_anchor = s->ek_anchor };
        snprintf(rec.id, sizeof(rec.id), "%s", s->id);
        return rec;
}

static void activate_leased(session *s);

static void on_activate(session *s, const Vouch__V1__ActivateAnswer *a) {
        vouchd *d = s->l->d;
        s->io->set_timeout(s->conn, 0);
        if (a->secret.len != sizeof(s->secret) || CRYPTO_memcmp(a->secret.data, s->secret, sizeof(s->secret)) != 0) {
                session_close(s, EPERM, "ActivateCredential answer is wrong: the AK is not bound to this EK");
                return;
        }
        OPENSSL_cleanse(s->secret, sizeof(s->secret));
        if (!d->shared) {
                activate_leased(s);
                return;
        }
        /* a shared store: the device is enrolled under its lease, as another instance may be
         * attesting or enrolling it; a new one is added first (its row is stored once held) */
        vs_device rec = enrollment_rec(s);
        pthread_mutex_lock(&d->lock);
        device *dev = registry_find_locked(d, s->id);
        if (!dev && refuse_second_identity(s))
                return; /* unlocked */
        if (!dev)
                dev = registry_add_locked(d, &rec);
        pthread_mutex_unlock(&d->lock);
        if (!dev) {
                session_close(s, ENOMEM, "cannot record the device");
                return;
        }
        take_lease(s, dev, activate_leased);
}

/* An enrollment's AK proved bound to the EK (and, on a shared store, the device's lease
 * held): the device recorded and welcomed, or told to wait for approval. */
static void activate_leased(session *s) {
        vouchd *d = s->l->d;
        vs_device rec = enrollment_rec(s);
        pthread_mutex_lock(&d->lock);
        device *dev = registry_find_locked(d, s->id);
        if (!dev && refuse_second_identity(s))
                return; /* unlocked */
        if (d->shared && dev && dev->rec.revoked) { /* revoked at another instance meanwhile */
                pthread_mutex_unlock(&d->lock);
                session_close(s, EACCES, "device %s is revoked", s->id);
                return;
        }
        if (dev) {
                /* re-enrollment with a new AK: keeps the id, the golden assignment and the
                 * verdict sequence; the old AK and its boot state are gone */
                vc_ak *ak = NULL;
                uint8_t *copy = malloc(s->ak_pub_len);
                if (!copy || vc_ak_load(s->ak_pub_bytes, s->ak_pub_len, &ak, NULL) < 0) {
                        pthread_mutex_unlock(&d->lock);
                        free(copy);
                        session_close(s, ENOMEM, "cannot load the new AK");
                        return;
                }
                pthread_mutex_lock(&dev->mu);
                memcpy(copy, s->ak_pub_bytes, s->ak_pub_len);
                free(dev->rec.ak_public);
                dev->rec.ak_public = copy;
                dev->rec.ak_public_len = s->ak_pub_len;
                vc_ak_free(dev->ak);
                dev->ak = ak;
                vc_device_state_done(&dev->state);
                dev->state.has_last = false;
                dev->rec.has_last = false;
                dev->clock_saved = false; /* the next quote's clock is written at once */
                pthread_mutex_unlock(&dev->mu);
                dev->rec.ek_anchor = s->ek_anchor; /* under d->lock, as every rec field */
        } else {
                dev = registry_add_locked(d, &rec);
        }
        bool approved = dev && dev->rec.approved;
        if (dev && approved)
                bind_device(s, dev);
        pthread_mutex_unlock(&d->lock);
        if (!dev) {
                session_close(s, ENOMEM, "cannot record the device");
                return;
        }
        if (!approved) {
                device_put(d, dev, NULL, NULL);
                vlog(LOG_INFO, "device %s: enrolled, waiting for approval (%s)", s->id, s->peer);
                session_close(s, EACCES, "device %s is enrolled but not approved yet: an admin must approve it", s->id);
                return;
        }
        atomic_fetch_add(&d->enrollments, 1);
        vlog(LOG_INFO, "device %s: enrolled (%s)", s->id, s->peer);
        welcome(s, true);
}

/* The EK's key on the allowlist (its fingerprint as vouchctl ek fingerprint prints it). */
static bool key_allowlisted(vouchd *d, session *s, char fp[65]) {
        if (vc_ek_key_fingerprint(&s->ek.publicArea, fp) < 0)
                return false;
        for (size_t i = 0; i < d->n_allow; i++)
                if (strcasecmp(d->allow[i], fp) == 0)
                        return true;
        return false;
}

/* The last step of an enrollment, once the EK is anchored: one identity per EK key, the
 * approval, the AK's attributes, and the credential challenge (TPM2_MakeCredential) that
 * only the TPM holding both keys can answer. */
static void enroll_challenge(session *s, int anchor, bool listed) {
        vouchd *d = s->l->d;
        vc_error err;
        /* after the anchor: who is enrolled under this key is told only to a holder of its
         * EK certificate or an allowlisted key (checked again at activation, under the
         * same lock as the add) */
        pthread_mutex_lock(&d->lock);
        if (!registry_find_locked(d, s->id) && refuse_second_identity(s))
                return; /* unlocked */
        pthread_mutex_unlock(&d->lock);
        s->ek_anchor = anchor;
        /* not allowlisted: the enrollment goes ahead (the AK is bound to the EK) and the
         * device waits for an admin's approval (POST /v1/devices/{id}/approve) */
        s->needs_approval = d->cfg.approval == APPROVAL_ALLOWLIST && !listed;
        if (vc_ak_check_attributes(&s->ak.publicArea, &err) < 0) {
                session_close(s, EPERM, "enrollment refused: %s", err.msg);
                return;
        }
        uint8_t name[2 + VC_MAX_DIGEST];
        size_t name_len;
        TPM2B_ID_OBJECT blob;
        TPM2B_ENCRYPTED_SECRET enc;
        vc_credential_random rnd;
        if (vc_public_name(&s->ak.publicArea, name, &name_len) < 0 || RAND_bytes(s->secret, sizeof(s->secret)) != 1 ||
            RAND_bytes((uint8_t *) &rnd, sizeof(rnd)) != 1 ||
            vc_make_credential(&s->ek.publicArea, name, name_len, s->secret, sizeof(s->secret), &rnd, &blob, &enc,
                               &err) < 0) {
                OPENSSL_cleanse(&rnd, sizeof(rnd));
                session_close(s, EPERM, "enrollment refused: cannot make a credential: %s", err.msg);
                return;
        }
        OPENSSL_cleanse(&rnd, sizeof(rnd));
        uint8_t bbuf[sizeof(blob)], ebuf[sizeof(enc)];
        size_t bl = 0, el = 0;
        Tss2_MU_TPM2B_ID_OBJECT_Marshal(&blob, bbuf, sizeof(bbuf), &bl);
        Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&enc, ebuf, sizeof(ebuf), &el);
        Vouch__V1__ActivateChallenge ac = VOUCH__V1__ACTIVATE_CHALLENGE__INIT;
        ac.credential_blob.data = bbuf;
        ac.credential_blob.len = bl;
        ac.encrypted_secret.data = ebuf;
        ac.encrypted_secret.len = el;
        Vouch__V1__VerifierMessage m = VOUCH__V1__VERIFIER_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__VERIFIER_MESSAGE__MSG_ACTIVATE;
        m.activate = &ac;
        if (!send_or_close(s, &m, "the credential challenge"))
                return;
        s->state = S_ACTIVATE;
        s->io->set_timeout(s->conn, 30);
}

/* An EK certificate, from the TPM's NV, the agent's --ek-cert file or the maker's service
 * (source says which): checked alike (chain to --ek-ca, EK profile, the EK's key). */
static bool enroll_with_certificate(session *s, const uint8_t *der, size_t len, const uint8_t *const *inter,
                                    const size_t *inter_len, size_t n_inter, const char *source) {
        vouchd *d = s->l->d;
        vc_error err;
        char msg[512], fp[65];
        if (vc_ek_verify(d->ek_ca, der, len, inter, inter_len, n_inter, &s->ek.publicArea, vclock_wall(), &err) < 0) {
                session_close(s, EPERM, "enrollment refused: the EK certificate from %s: %s", source,
                              vc_error_format(&err, msg, sizeof(msg)));
                return false;
        }
        bool listed = allowlisted(d, der, len) || key_allowlisted(d, s, fp);
        enroll_challenge(s, VOUCH__V1__EK_ANCHOR__EK_ANCHOR_CERTIFICATE, listed);
        return true;
}

/* The maker's service answered (on this session's loop). */
static void on_fetched(int error, const char *why, const uint8_t *der, size_t der_len, const char *url, void *arg) {
        session *s = arg;
        vouchd *d = s->l->d;
        if (s->state == S_CLOSING || atomic_load(&d->stopping)) {
                session_unref(s);
                return;
        }
        if (error < 0) {
                atomic_fetch_add(&d->ek_fetch_failures, 1);
                session_close(s, EPERM, "enrollment refused: the TPM has no EK certificate in NV and its maker's "
                                        "service gave none: %s", why);
                session_unref(s);
                return;
        }
        atomic_fetch_add(&d->ek_fetched, 1);
        if (enroll_with_certificate(s, der, der_len, NULL, NULL, 0, url)) {
                /* kept once checked: the service is asked once per TPM */
                vs_ekcert c = { .url = (char *) url, .der = (uint8_t *) der, .der_len = der_len, .fetched_at = vclock_wall() };
                if (vc_ek_key_fingerprint(&s->ek.publicArea, c.key) == 0)
                        vs_ekcert_put(d->store, &c, NULL, NULL);
                vlog(LOG_INFO, "device %s: EK certificate fetched from %s", s->id, url);
        }
        session_unref(s);
}

/* No EK certificate in Hello (a firmware TPM, an old one): its key on the allowlist, or
 * the certificate its maker serves (kept in the store once fetched), or a refusal that
 * says how to anchor it. */
static void enroll_without_certificate(session *s, uint32_t manufacturer) {
        vouchd *d = s->l->d;
        char fp[65] = "", mf[12], err[600];
        vc_tpm_manufacturer_name(manufacturer, mf);
        if (key_allowlisted(d, s, fp)) {
                vlog(LOG_INFO, "%s: EK key %.16s... is on the allowlist: enrolling without a certificate (TPM %s)",
                     s->peer, fp, mf);
                enroll_challenge(s, VOUCH__V1__EK_ANCHOR__EK_ANCHOR_KEY, true);
                return;
        }
        const ek_service *svc = ekfetch_service_for(d, manufacturer);
        if (!svc) {
                session_close(s, EPERM,
                              "enrollment refused: the TPM (manufacturer %s) sent no EK certificate and nothing else "
                              "anchors it: list its EK key fingerprint %s in --allowlist, give the agent --ek-cert "
                              "FILE, or let vouchd fetch it from the maker (--ek-cert-fetch)",
                              mf, fp[0] ? fp : "(none: not an RSA or ECC key)");
                return;
        }
        vs_ekcert kept;
        if (fp[0] && vs_ekcert_get(d->store, fp, &kept) == 0) {
                /* kept once it checked out; when it no longer does (expired, a CA bundle
                 * changed), the service is asked again */
                vc_error verr;
                bool good = vc_ek_verify(d->ek_ca, kept.der, kept.der_len, NULL, NULL, 0, &s->ek.publicArea, vclock_wall(),
                                         &verr) == 0;
                if (good) {
                        char source[600];
                        snprintf(source, sizeof(source), "%.500s (kept in the store)", kept.url);
                        enroll_with_certificate(s, kept.der, kept.der_len, NULL, NULL, 0, source);
                }
                vs_ekcert_done(&kept);
                if (good)
                        return;
        }
        s->state = S_STORING; /* no message is expected while the service is asked */
        s->refs++;
        if (ekfetch_start(d, s->l->base, s->peer, svc, &s->ek.publicArea, on_fetched, s, err, sizeof(err)) < 0) {
                s->refs--;
                s->state = S_HELLO;
                session_close(s, EPERM, "enrollment refused: the TPM (manufacturer %s) has no EK certificate in NV: %s",
                              mf, err);
        }
}

/* A known device's Hello, once this instance holds its lease: the device as the store has it
 * now (another instance may have revoked or re-enrolled it) is checked again. */
static void hello_leased(session *s) {
        vouchd *d = s->l->d;
        device *dev = s->dev;
        pthread_mutex_lock(&d->lock);
        bool revoked = dev->rec.revoked, approved = dev->rec.approved;
        bool same_ak = dev->rec.ak_public_len == s->ak_pub_len &&
                       memcmp(dev->rec.ak_public, s->ak_pub_bytes, s->ak_pub_len) == 0;
        pthread_mutex_unlock(&d->lock);
        if (revoked) {
                session_close(s, EACCES, "device %s is revoked", s->id);
        } else if (!same_ak) {
                session_close(s, EAGAIN, "device %s was enrolled again with another AK (at another vouchd instance) "
                                         "while this connection was accepted: connect again to enroll",
                              s->id);
        } else if (!approved) {
                session_close(s, EACCES, "device %s is enrolled but not approved yet: an admin must approve it", s->id);
        } else {
                vlog(LOG_INFO, "device %s: connected (%s)", s->id, s->peer);
                welcome(s, false);
        }
}

static void on_hello(session *s, const Vouch__V1__Hello *h) {
        vouchd *d = s->l->d;

        s->io->set_timeout(s->conn, 0);
        if (h->protocol_version != VOUCH__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1) {
                session_close(s, EPROTONOSUPPORT, "protocol version %u is not supported (this verifier speaks 1)",
                              h->protocol_version);
                return;
        }
        /* Each exactly one TPM2B_PUBLIC: the bytes stored (and loaded again by vc_ak_load)
         * must mean what was checked. */
        if (vc_tpm2b_public_parse(h->ek_public.data, h->ek_public.len, &s->ek) < 0) {
                session_close(s, EBADMSG, "Hello.ek_public (%zu bytes) is not one TPM2B_PUBLIC whose size covers the rest",
                              h->ek_public.len);
                return;
        }
        if (vc_tpm2b_public_parse(h->ak_public.data, h->ak_public.len, &s->ak) < 0) {
                session_close(s, EBADMSG, "Hello.ak_public (%zu bytes) is not one TPM2B_PUBLIC whose size covers the rest",
                              h->ak_public.len);
                return;
        }
        if (vc_device_id(&s->ek.publicArea, s->id) < 0 || vc_ek_key_id(&s->ek.publicArea, s->ek_key) < 0) {
                session_close(s, EBADMSG, "cannot derive a device id from the EK");
                return;
        }
        s->ek_pub_bytes = malloc(h->ek_public.len);
        s->ak_pub_bytes = malloc(h->ak_public.len);
        if (!s->ek_pub_bytes || !s->ak_pub_bytes) {
                session_close(s, ENOMEM, "out of memory");
                return;
        }
        memcpy(s->ek_pub_bytes, h->ek_public.data, h->ek_public.len);
        memcpy(s->ak_pub_bytes, h->ak_public.data, h->ak_public.len);
        s->ek_pub_len = h->ek_public.len;
        s->ak_pub_len = h->ak_public.len;

        pthread_mutex_lock(&d->lock);
        device *dev = registry_find_locked(d, s->id);
        if (dev && dev->rec.revoked) {
                pthread_mutex_unlock(&d->lock);
                session_close(s, EACCES, "device %s is revoked", s->id);
                return;
        }
        if (dev && !dev->rec.approved && dev->rec.ak_public_len == s->ak_pub_len &&
            memcmp(dev->rec.ak_public, s->ak_pub_bytes, s->ak_pub_len) == 0) {
                pthread_mutex_unlock(&d->lock);
                session_close(s, EACCES, "device %s is enrolled but not approved yet: an admin must approve it", s->id);
                return;
        }
        if (dev && dev->rec.ak_public_len == s->ak_pub_len &&
            memcmp(dev->rec.ak_public, s->ak_pub_bytes, s->ak_pub_len) == 0) {
                /* Public keys prove nothing: the session takes the device's place (and its
                 * verdicts are issued) only once a quote signed by the device's AK verifies. */
                s->dev = dev;
                s->provisional = true;
                pthread_mutex_unlock(&d->lock);
                take_lease(s, dev, hello_leased);
                return;
        }
        pthread_mutex_unlock(&d->lock);

        /* Enrollment: the EK is anchored (a certificate chaining to a trusted EK CA, or its
         * key on the allowlist), the AK must be a restricted signing key; MakeCredential
         * binds them. */
        if (h->ek_certificate.len == 0) {
                enroll_without_certificate(s, h->tpm_manufacturer);
                return;
        }
        if (h->n_ek_intermediates > VC_EK_MAX_INTERMEDIATES) {
                session_close(s, E2BIG, "%zu EK intermediates, at most %u", h->n_ek_intermediates, VC_EK_MAX_INTERMEDIATES);
                return;
        }
        const uint8_t *inter[VC_EK_MAX_INTERMEDIATES];
        size_t inter_len[VC_EK_MAX_INTERMEDIATES];
        for (size_t i = 0; i < h->n_ek_intermediates; i++)
                inter[i] = h->ek_intermediates[i].data, inter_len[i] = h->ek_intermediates[i].len;
        enroll_with_certificate(s, h->ek_certificate.data, h->ek_certificate.len, inter, inter_len,
                                h->n_ek_intermediates,
                                h->ek_cert_source == VOUCH__V1__EK_CERT_SOURCE__EK_CERT_SOURCE_FILE ? "the agent's --ek-cert file"
                                                                                                    : "the TPM's NV");
}

/* ---- I/O ---- */

static void dispatch(session *s, const uint8_t *frame, size_t len) {
        Vouch__V1__AgentMessage *m = vouch__v1__agent_message__unpack(NULL, len, frame);
        if (!m) {
                session_close(s, EBADMSG, "a frame of %zu bytes is not an AgentMessage", len);
                return;
        }
        if (m->msg_case == VOUCH__V1__AGENT_MESSAGE__MSG_ERROR) {
                session_close(s, 0, "the agent reports an error: %s", m->error->message ? m->error->message : "");
        } else if (s->state == S_HELLO && m->msg_case == VOUCH__V1__AGENT_MESSAGE__MSG_HELLO) {
                on_hello(s, m->hello);
        } else if (s->state == S_ACTIVATE && m->msg_case == VOUCH__V1__AGENT_MESSAGE__MSG_ACTIVATE) {
                on_activate(s, m->activate);
        } else if (s->state == S_QUOTE && m->msg_case == VOUCH__V1__AGENT_MESSAGE__MSG_QUOTE) {
                on_quote(s, m->quote);
        } else {
                static const char *const names[] = { "Hello", "ActivateAnswer", "StoringWait", "Idle", "QuoteAnswer",
                                                     "Closing" };
                session_close(s, EPROTO, "unexpected message %d while waiting for %s", (int) m->msg_case,
                              names[s->state]);
        }
        vouch__v1__agent_message__free_unpacked(m, NULL);
}

static void on_data(const uint8_t *data, size_t len, void *arg) {
        session *s = arg;
        s->refs++;
        while (s->state != S_CLOSING && len > 0) {
                uint8_t *frame;
                size_t flen;
                long used = vf_decoder_feed(&s->dec, data, len, &frame, &flen);
                if (used < 0) {
                        session_close(s, E2BIG, "frame over the limit of %u bytes", s->l->d->cfg.max_frame);
                        break;
                }
                data += used;
                len -= (size_t) used;
                if (frame) {
                        if (s->state == S_STORING || s->state == S_IDLE)
                                session_close(s, EPROTO, "message while no answer was asked for");
                        else
                                dispatch(s, frame, flen);
                        free(frame);
                }
        }
        session_unref(s);
}

static double late_timer(const session *s) {
        struct timespec now;
        vclock_mono_ts(&now);
        return past_expiry(s, &now);
}

static void on_conn_event(int what, const char *detail, void *arg) {
        session *s = arg;
        if (what & TCONN_FLUSHED) {
                session_drop(s); /* the Error frame of session_close is out */
                return;
        }
        if (what & TCONN_TIMEOUT) {
                if (s->state == S_CLOSING)
                        session_drop(s);
                else if (s->state == S_QUOTE && late_timer(s) >= LATE_SECONDS)
                        session_close(s, ETIMEDOUT,
                                      "the challenge expired while vouchd itself was not running (its timer fired "
                                      "%.0f s late: vouchd was stopped, e.g. SIGSTOP, or starved), not because the "
                                      "agent was silent; the device is challenged again when its agent reconnects",
                                      late_timer(s));
                else
                        session_close(s, ETIMEDOUT, "peer silent too long while waiting for %s",
                                      s->state == S_HELLO ? "Hello" : s->state == S_QUOTE ? "the quote" : "an answer");
                return;
        }
        vlog(s->dev ? LOG_INFO : LOG_DEBUG, "%s%s%s: connection %s%s%s", s->peer, s->id[0] ? " device " : "", s->id,
             what & TCONN_EOF ? "closed" : "error", detail[0] ? ": " : "", detail);
        s->state = S_CLOSING;
        session_drop(s);
}

/* The agent's TLS connection under a session. */
static int tls_write(void *c, const void *data, size_t len) {
        return tconn_write(c, data, len);
}
static void tls_set_timeout(void *c, unsigned secs) {
        tconn_set_timeout(c, secs);
}
static void tls_stop_reading(void *c) {
        tconn_stop_reading(c);
}
static void tls_close_after_flush(void *c) {
        tconn_close_after_flush(c);
}
static void tls_free(void *c) {
        tconn_free(c);
}
static const session_io tls_io = { tls_write, tls_set_timeout, tls_stop_reading, tls_close_after_flush, tls_free };

/* A new session in the loop's list (its connection counted in d->connections by the
 * caller, uncounted when it is freed); NULL when out of memory (then uncounted here). */
static session *session_alloc(loop *l, const session_io *io, const char *peer) {
        session *s = calloc(1, sizeof(*s));
        if (!s) {
                atomic_fetch_sub(&l->d->connections, 1);
                return NULL;
        }
        s->l = l;
        s->io = io;
        s->refs = 1;
        s->next = l->sessions;
        if (l->sessions)
                l->sessions->prev = s;
        l->sessions = s;
        vf_decoder_init(&s->dec, l->d->cfg.max_frame);
        snprintf(s->peer, sizeof(s->peer), "%s", peer);
        s->timer = evtimer_new(l->base, challenge_timer_cb, s);
        if (!s->timer) {
                free_session(s);
                return NULL;
        }
        return s;
}

static void peer_name(evutil_socket_t fd, char *buf, size_t n) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[48] = "?";
        snprintf(buf, n, "?");
        if (getpeername(fd, (struct sockaddr *) &ss, &sl) != 0)
                return;
        if (ss.ss_family == AF_INET)
                evutil_inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, host, sizeof(host));
        else if (ss.ss_family == AF_INET6)
                evutil_inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, host, sizeof(host));
        snprintf(buf, n, "%s:%u", host,
                 ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                               : ((struct sockaddr_in6 *) &ss)->sin6_port));
}

void session_accept(loop *l, evutil_socket_t fd) {
        vouchd *d = l->d;
        unsigned n = atomic_fetch_add(&d->connections, 1) + 1;
        if (n > d->cfg.max_connections) {
                static atomic_ullong last_log, refused;
                unsigned long long now = (unsigned long long) time(NULL), nref = atomic_fetch_add(&refused, 1) + 1;
                atomic_fetch_sub(&d->connections, 1);
                if (atomic_exchange(&last_log, now) != now) /* once a second at most */
                        vlog(LOG_WARN, "connection refused: %u connections is the limit (%llu refused so far)",
                             d->cfg.max_connections, nref);
                evutil_closesocket(fd);
                return;
        }
        char peer[64];
        peer_name(fd, peer, sizeof(peer));
        SSL *ssl = SSL_new(d->tls);
        session *s = ssl ? session_alloc(l, &tls_io, peer) : NULL;
        if (!s) {
                if (!ssl)
                        atomic_fetch_sub(&d->connections, 1);
                SSL_free(ssl);
                evutil_closesocket(fd);
                return;
        }
        /* at most a few messages are ever queued for an agent (the protocol is lockstep) */
        s->conn = tconn_new(l->base, fd, ssl, 4 * ((size_t) d->cfg.max_frame + VF_HEADER_SIZE), on_data, on_conn_event, s);
        if (!s->conn) {
                free_session(s);
                return;
        }
        /* the handshake and Hello must come quickly: silent peers are dropped */
        s->io->set_timeout(s->conn, d->cfg.hello_timeout);
}

session *session_open(loop *l, const session_io *io, void *conn, const char *peer) {
        atomic_fetch_add(&l->d->connections, 1);
        session *s = session_alloc(l, io, peer);
        if (!s)
                return NULL;
        s->conn = conn;
        s->io->set_timeout(s->conn, l->d->cfg.hello_timeout);
        return s;
}

void session_data(session *s, const uint8_t *data, size_t len) {
        on_data(data, len, s);
}

void session_event(session *s, int what, const char *detail) {
        on_conn_event(what, detail, s);
}

void session_free_all(loop *l) {
        while (l->sessions) {
                session *s = l->sessions;
                if (s->lease) /* the leases were released before the store closed: counted only */
                        lease_put(l->d, s->lease);
                if (s->dev) {
                        pthread_mutex_lock(&l->d->lock);
                        if (s->dev->session == s)
                                s->dev->session = NULL;
                        pthread_mutex_unlock(&l->d->lock);
                }
                free_session(s);
        }
}

/* ---- the API closes a device's session (revocation) from its own thread ---- */

typedef struct kick {
        vouchd *d;
        device *dev;
        loop *l;
        char why[96];
} kick;

static void kick_cb(evutil_socket_t fd, short what, void *arg) {
        kick *k = arg;
        pthread_mutex_lock(&k->d->lock);
        session *s = k->dev->session;
        bool here = s && s->l == k->l; /* sessions are only ever freed on their own loop */
        pthread_mutex_unlock(&k->d->lock);
        if (here && s->state != S_CLOSING)
                session_close(s, EACCES, "%s", k->why);
        free(k);
}

void session_kick(vouchd *d, device *dev, const char *why) {
        kick *k = calloc(1, sizeof(*k));
        if (!k)
                return;
        k->d = d;
        k->dev = dev;
        snprintf(k->why, sizeof(k->why), "%s", why);
        pthread_mutex_lock(&d->lock);
        k->l = dev->session ? dev->session->l : NULL;
        pthread_mutex_unlock(&d->lock);
        if (!k->l || event_base_once(k->l->base, -1, EV_TIMEOUT, kick_cb, k, NULL) < 0)
                free(k);
}
