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
#include "ident.h"
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
        /* shared stores: the verdict packed without its global sequence, numbered and signed
         * by seal(): the bytes of the fields before global_sequence (13) and after it */
        uint8_t *head;
        size_t head_len;
        uint8_t tail[48];               /* the fields after global_sequence: ek_anchor, device_key */
        size_t tail_len;
        uint64_t sequence;              /* per device */
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

static void set_latest_locked(vouchd *d, device *dev, commit *c) {
        free(dev->latest);
        dev->latest = c->record;
        dev->latest_len = c->record_len;
        dev->latest_status = c->status;
        dev->latest_expires = c->expires_at;
        dev->latest_deadline = c->deadline;
        snprintf(dev->latest_golden, sizeof(dev->latest_golden), "%s", c->golden);
        dev->latest_golden_version = c->golden_version;
        dev->latest_sequence = c->sequence;
        dev->stale_queued = false;
        c->record = NULL;
        registry_wheel_update_locked(d, dev);
}

/* dev's STALE verdict is no longer on its way (issued, or not queued after all): the sweep
 * looks at dev again when its latest verdict's deadline passes (d->lock held) */
static void stale_unqueue_locked(vouchd *d, device *dev) {
        dev->stale_queued = false;
        registry_wheel_update_locked(d, dev);
}

/* device.unstored, counted: while any device has it, the sweep walks every device */
static void set_unstored_locked(vouchd *d, device *dev, bool unstored) {
        if (dev->unstored != unstored)
                unstored ? d->n_unstored++ : d->n_unstored--;
        dev->unstored = unstored;
}

/* Shared stores. A verdict is packed when it is issued, without its global sequence, and
 * numbered on the writer thread (seal) by splicing field 13 between the fields before it
 * and the one after it: the bytes are exactly what packing it with the number would give
 * (protobuf-c packs fields by number), so the record is the same as vv_verdict_sign's.
 * A field added after global_sequence has to join the tail here; until then the check
 * below refuses to issue. */
static int pack_unnumbered(const Vouch__V1__Verdict *v, commit *c) {
        const ProtobufCMessageDescriptor *desc = &vouch__v1__verdict__descriptor;
        if (desc->n_fields != 15 || desc->fields[12].id != 13 || desc->fields[13].id != 14 ||
            desc->fields[14].id != 15)
                return -EPROTO;
        Vouch__V1__Verdict head = *v, tail = VOUCH__V1__VERDICT__INIT;
        head.global_sequence = 0;
        head.ek_anchor = 0;
        head.device_key = (ProtobufCBinaryData) { 0 };
        tail.ek_anchor = v->ek_anchor;
        tail.device_key = v->device_key;
        if (vouch__v1__verdict__get_packed_size(&tail) > sizeof(c->tail))
                return -EINVAL;
        c->tail_len = vouch__v1__verdict__pack(&tail, c->tail);
        c->head_len = vouch__v1__verdict__get_packed_size(&head);
        c->head = malloc(c->head_len ? c->head_len : 1);
        if (!c->head)
                return -ENOMEM;
        c->head_len = vouch__v1__verdict__pack(&head, c->head);
        return 0;
}

/* c's verdict numbered gseq (0: without a number, a failed commit's verdict shown from
 * memory) and signed with the active key: the SignedVerdict in *ret (malloc'ed). The key
 * is taken under seq_lock and used after it (a SIGHUP may swap it meanwhile). */
static int sign_numbered(vouchd *d, const commit *c, uint64_t gseq, uint8_t **ret, size_t *ret_len) {
        ProtobufCBinaryData vb = { 0 }, sig = { 0 };
        vkey key;
        int r;
        vb.data = malloc(c->head_len + 11 + c->tail_len);
        if (!vb.data)
                return -ENOMEM;
        memcpy(vb.data, c->head, c->head_len);
        vb.len = c->head_len;
        if (gseq) {
                vb.data[vb.len++] = 13 << 3; /* field 13, a varint */
                for (uint64_t x = gseq; x; x >>= 7)
                        vb.data[vb.len++] = (uint8_t) ((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
        }
        memcpy(vb.data + vb.len, c->tail, c->tail_len);
        vb.len += c->tail_len;
        pthread_mutex_lock(&d->seq_lock);
        key = d->keys.active;
        if (key.pkey)
                EVP_PKEY_up_ref(key.pkey);
        pthread_mutex_unlock(&d->seq_lock);
        r = key.pkey ? vv_sign(key.pkey, vb.data, vb.len, &sig.data, &sig.len) : -EIO;
        if (r == 0)
                r = vv_signed_pack(&vb, &sig, key.id, ret, ret_len);
        EVP_PKEY_free(key.pkey);
        OPENSSL_free(sig.data);
        free(vb.data);
        return r;
}

/* The store's seal hook (store.h, Global order): on the writer thread, in the open
 * transaction, under the store's order lock (every instance's commit-ordered commits wait
 * for it, so it only signs). The store gets the record; c keeps a copy for committed(). */
static int seal(vs_verdict *vr, uint64_t gseq, void *userdata) {
        commit *c = userdata;
        vouchd *d = c->d;
        uint8_t *rec = NULL;
        size_t len = 0;
        int r = sign_numbered(d, c, gseq, &rec, &len);
        if (r < 0)
                return r;
        free(c->record);
        c->record = malloc(len);
        if (!c->record) {
                free(rec);
                return -ENOMEM;
        }
        memcpy(c->record, rec, len);
        c->record_len = len;
        c->global_sequence = gseq;
        vr->record = rec;
        vr->record_len = len;
        return 0;
}

/* c's verdict becomes its device's latest in memory. With a shared store, not over a newer
 * one (by device sequence) that verdict_follow has read meanwhile: one the device's next
 * holder issued. stored: whether it was committed; one that was not (shown from memory)
 * marks the device unstored on a shared store: lease.c keeps its lease until a later
 * verdict of it is stored (verdict_sweep stores this one again). */
static void hand_off_locked(vouchd *d, commit *c, bool stored) {
        if (d->shared && c->sequence < c->dev->latest_sequence)
                return;
        set_latest_locked(d, c->dev, c);
        set_unstored_locked(d, c->dev, d->shared && !stored);
}

/* On the writer thread, once the verdict is durable (or could not be stored). */
static void committed(int error, void *arg) {
        commit *c = arg;
        vouchd *d = c->d;
        uint8_t *copy = NULL; /* the record for done: the device's latest takes c's */
        size_t copy_len = 0;
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
                        /* shared stores: the transaction failed before it was numbered; if it
                         * cannot be signed, the device shows UNKNOWN (never the older one) */
                        if (!c->record && c->head && sign_numbered(d, c, 0, &c->record, &c->record_len) < 0)
                                c->record = NULL;
                        pthread_mutex_lock(&d->lock);
                        hand_off_locked(d, c, false);
                        pthread_mutex_unlock(&d->lock);
                }
        }
        if (error == 0) {
                if (c->done && c->record && (copy = malloc(c->record_len))) {
                        memcpy(copy, c->record, c->record_len);
                        copy_len = c->record_len;
                }
                pthread_mutex_lock(&d->lock);
                hand_off_locked(d, c, true);
                pthread_mutex_unlock(&d->lock);
                /* callbacks run in commit order; with a shared store other instances commit
                 * between them: verdict_follow reads them all and moves published */
                if (!d->shared)
                        atomic_store(&d->published, c->global_sequence);
        }
        if (error == 0 && d->on_committed)
                d->on_committed(d);
        if (c->done)
                c->done(error, copy, copy_len, c->userdata);
        free(copy);
        free(c->record);
        free(c->head);
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
 * transaction. cert: a TRUSTED verdict's device certificate, stored in its transaction
 * (devcert.h); a verdict that is not TRUSTED revokes the device's certificates in its. */
static int issue_cert(vouchd *d, device *dev, Vouch__V1__Verdict *v, int kind, uint64_t ticket, const vs_device *access,
                      const vs_cert *cert, verdict_done_fn done, void *userdata) {
        bool trusted = v->status == VOUCH__V1__TRUST_STATUS__TRUSTED;
        if (cert && !trusted)
                return -EINVAL;
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
        /* c belongs to the store once queued (committed() frees it) */
        int64_t deadline = c->deadline;
        v->sequence = dev->rec.sequence + 1;
        c->sequence = v->sequence;
        if (d->shared) {
                /* numbered by the store in commit order, signed then (seal) */
                v->global_sequence = 0;
                r = pack_unnumbered(v, c);
        } else {
                v->global_sequence = d->gseq + 1;
                c->global_sequence = v->global_sequence;
                r = vv_verdict_sign(v, &d->keys.active, &c->record, &c->record_len);
        }
        if (r == 0) {
                vs_verdict vr = { .sequence = v->sequence, .global_sequence = v->global_sequence, .status = v->status,
                                  .issued_at = v->issued_at, .expires_at = v->expires_at, .record = c->record,
                                  .record_len = c->record_len, .seal = d->shared ? seal : NULL, .seal_userdata = c,
                                  .cert = cert, .revoke_certs = !trusted };
                snprintf(vr.device, sizeof(vr.device), "%s", dev->rec.id);
                if ((r = queue_verdict(d, dev, &vr, access, c)) == 0) {
                        /* numbers are used only once queued, in queue order */
                        dev->rec.sequence = v->sequence;
                        if (!d->shared)
                                d->gseq = v->global_sequence;
                        dev->queued_deadline = deadline;
                        if (kind == ISSUE_ATTESTED)
                                dev->issued_ticket = ticket;
                }
        }
        pthread_mutex_unlock(&d->seq_lock);
        if (r < 0) {
                free(c->record);
                free(c->head);
                free(c);
                return r;
        }
        atomic_fetch_add(&d->verdicts_issued, 1);
        return 0;
}

static int issue(vouchd *d, device *dev, Vouch__V1__Verdict *v, int kind, uint64_t ticket, const vs_device *access,
                 verdict_done_fn done, void *userdata) {
        return issue_cert(d, dev, v, kind, ticket, access, NULL, done, userdata);
}

int verdict_issue(vouchd *d, device *dev, Vouch__V1__Verdict *v, verdict_done_fn done, void *userdata) {
        return issue(d, dev, v, ISSUE_PLAIN, 0, NULL, done, userdata);
}

int verdict_issue_with_access(vouchd *d, device *dev, Vouch__V1__Verdict *v, bool approved, bool revoked,
                              verdict_done_fn done, void *userdata) {
        vs_device access = { .approved = approved, .revoked = revoked };
        return issue(d, dev, v, ISSUE_WITH_ROW, 0, &access, done, userdata);
}

int verdict_issue_attested(vouchd *d, device *dev, Vouch__V1__Verdict *v, uint64_t ticket, verdict_done_fn done,
                           void *userdata) {
        return issue(d, dev, v, ISSUE_ATTESTED, ticket, NULL, done, userdata);
}

int verdict_issue_attested_cert(vouchd *d, device *dev, Vouch__V1__Verdict *v, uint64_t ticket, const vs_cert *cert,
                                verdict_done_fn done, void *userdata) {
        return issue_cert(d, dev, v, ISSUE_ATTESTED, ticket, NULL, cert, done, userdata);
}

void verdict_set_access(vouchd *d, device *dev, bool approved, bool revoked) {
        pthread_mutex_lock(&d->seq_lock);
        pthread_mutex_lock(&d->lock);
        dev->rec.approved = approved;
        dev->rec.revoked = revoked;
        pthread_mutex_unlock(&d->lock);
        pthread_mutex_unlock(&d->seq_lock);
}

/* dev->mu held. A shared store's device that this instance does not use has no AK loaded
 * (registry.h): it is loaded for the Name and not kept. */
static void fill_ak_name(device *dev, uint8_t *buf, Vouch__V1__Verdict *v) {
        size_t n = 0;
        vc_ak *loaded = NULL;
        const vc_ak *ak = dev->ak;
        if (!ak && vc_ak_load(dev->rec.ak_public, dev->rec.ak_public_len, &loaded, NULL) == 0)
                ak = loaded;
        if (ak && ak->has_public && vc_public_name(&ak->public, buf, &n) == 0) {
                v->ak_name.data = buf;
                v->ak_name.len = n;
        }
        vc_ak_free(loaded);
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
        int r = issue(d, dev, &v, ISSUE_STALE, 0, NULL, NULL, NULL);
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
static bool needs_stale_locked(vouchd *d, device *dev) {
        if (!dev->latest || dev->stale_queued || dev->latest_status != VOUCH__V1__TRUST_STATUS__TRUSTED ||
            !verdict_expired_locked(dev))
                return false;
        dev->stale_queued = true;
        registry_wheel_update_locked(d, dev);
        return true;
}

/* Held by whoever changes d->keys (also under seq_lock, which its readers take) or writes
 * verdict-keys.pem: SIGHUP (main thread) and a retired key's end date (sweep, API thread).
 * Its holder may read d->keys without seq_lock. */
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

int verdict_keys_reload(vouchd *d) {
        verdict_keys k;
        char err[600];
        pthread_mutex_lock(&keys_lock);
        int r = vk_load(d->cfg.state_dir, &k);
        /* a shared store: the new keys published before they sign, so that every instance
         * serves them first (ident.h); if they cannot be, the old ones stay. Not under
         * keys_lock (the sweep takes it): verdict-keys.pem is written again with the swap */
        if (r == 0 && d->shared) {
                pthread_mutex_unlock(&keys_lock);
                if ((r = ident_publish_keys(d, &k, false, err, sizeof(err))) < 0) {
                        vlog(LOG_ERR, "store: cannot publish the verdict keys: %s", err);
                        verdict_keys_free(&k);
                }
                pthread_mutex_lock(&keys_lock);
                if (r == 0)
                        r = vk_write_pubs(d->cfg.state_dir, &k);
                if (r < 0 && k.active.pkey)
                        verdict_keys_free(&k);
        }
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

static void shown_stored(int error, const uint8_t *record, size_t record_len, void *userdata) {
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
                set_unstored_locked(d, dev, false);
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
        stale_unqueue_locked(d, dev);
        bool due = result == 0 && needs_stale_locked(d, dev);
        int64_t expired_at = dev->latest_expires;
        pthread_mutex_unlock(&d->lock);
        if (due && issue_stale(d, dev, expired_at) < 0) {
                pthread_mutex_lock(&d->lock);
                stale_unqueue_locked(d, dev);
                pthread_mutex_unlock(&d->lock);
        }
        if (result == 0)
                lease_put(d, dev);
}

/* The devices whose STALE verdict the sweep issues (or, shared, claims the lease for). */
typedef struct due_list {
        device **dev;
        int64_t *when;
        size_t n, cap;
} due_list;

static bool due_add(due_list *l, device *dev) {
        if (l->n == l->cap) {
                size_t nc = l->cap ? l->cap * 2 : 64;
                device **nd = realloc(l->dev, nc * sizeof(*nd));
                if (nd)
                        l->dev = nd;
                int64_t *nw = nd ? realloc(l->when, nc * sizeof(*nw)) : NULL;
                if (!nw)
                        return false;
                l->when = nw;
                l->cap = nc;
        }
        l->dev[l->n] = dev;
        l->when[l->n++] = dev->latest_expires;
        return true;
}

/* The wheel's: dev's deadline passed (d->lock held). */
static void wheel_due(vouchd *d, device *dev, void *ud) {
        if (needs_stale_locked(d, dev)) {
                if (!due_add(ud, dev))
                        stale_unqueue_locked(d, dev); /* the next sweep */
        } else {
                registry_wheel_update_locked(d, dev);
        }
}

void verdict_sweep(vouchd *d) {
        int64_t now = vclock_wall();
        retire_keys(d, now);
        size_t nu = 0;
        device *unstored[64];
        due_list due = { 0 };
        /* Most seconds only the devices whose deadline passed (the expiry wheel). Every device
         * is walked while a shown verdict is not stored (a device with device.unstored) and
         * after a step of the wall clock. */
        pthread_mutex_lock(&d->lock);
        bool walk = d->n_unstored > 0 || registry_wheel_take_due_locked(d, vclock_mono(), now, wheel_due, &due) < 0;
        pthread_mutex_unlock(&d->lock);
        /* the registry lock is taken for SWEEP_CHUNK buckets at a time, not for the whole
         * walk: with 100,000 devices a walk takes milliseconds, and every attestation takes
         * this lock. Devices are never removed while vouchd runs; one added behind the walk
         * is seen by the next sweep, a second later. */
        for (size_t b0 = 0; walk && b0 < d->n_buckets; b0 += SWEEP_CHUNK) {
                pthread_mutex_lock(&d->lock);
                for (size_t b = b0; b < d->n_buckets && b < b0 + SWEEP_CHUNK; b++)
                        for (device *dev = d->buckets[b]; dev; dev = dev->next) {
                                /* (a few a second: more wait for the next sweep) */
                                if (dev->unstored && dev->lease_row && !dev->lease_uses && !dev->lease_claims &&
                                    nu < sizeof(unstored) / sizeof(unstored[0]))
                                        unstored[nu++] = dev;
                                if (needs_stale_locked(d, dev) && !due_add(&due, dev)) {
                                        stale_unqueue_locked(d, dev); /* the next sweep */
                                        pthread_mutex_unlock(&d->lock);
                                        goto issue;
                                }
                        }
                pthread_mutex_unlock(&d->lock);
        }
issue:
        for (size_t i = 0; i < nu; i++)
                lease_get(d, unstored[i], unstored_leased, NULL);
        for (size_t i = 0; i < due.n; i++)
                if (d->shared) {
                        /* only the holder issues it: the device's lease is taken for it, or
                         * refused while another instance holds it (that one issues it) */
                        if (lease_get(d, due.dev[i], sweep_leased, NULL) < 0) {
                                pthread_mutex_lock(&d->lock);
                                stale_unqueue_locked(d, due.dev[i]);
                                pthread_mutex_unlock(&d->lock);
                        }
                } else if (issue_stale(d, due.dev[i], due.when[i]) < 0) {
                        pthread_mutex_lock(&d->lock);
                        stale_unqueue_locked(d, due.dev[i]);
                        pthread_mutex_unlock(&d->lock);
                }
        free(due.dev);
        free(due.when);
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
                /* its STALE verdict is the holder's to issue (a shared store): numbered after
                 * the holder's verdicts, never beside them */
                queue = lease_held_locked(d, dev) && needs_stale_locked(d, dev);
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
                        stale_unqueue_locked(d, dev);
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

/* What a stored verdict is taken for when it becomes a device's latest. */
typedef struct stored {
        int status;
        int64_t expires_at;
        char golden[129];
        int64_t golden_version;
} stored;

/* What the latest verdict is taken for comes from the signed record itself, not from the
 * row's columns: a row whose columns disagree with its record (edited, or corrupt) is not
 * served. 0, or -EBADMSG with why set. */
static int parse_stored(const char *id, const vs_verdict *v, stored *ret, char *why, size_t n) {
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
                ret->expires_at = vd->expires_at;
                snprintf(ret->golden, sizeof(ret->golden), "%s", vd->golden_name ? vd->golden_name : "");
                ret->golden_version = vd->golden_version;
        }
        vouch__v1__verdict__free_unpacked(vd, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        return r;
}

/* v (its record taken) becomes dev's latest verdict (d->lock held, or at start). A verdict
 * in memory that was shown but not stored (device.unstored) is superseded by it: it is not
 * to be stored again (verdict_store_shown). */
static void take_stored_locked(vouchd *d, device *dev, vs_verdict *v, const stored *st) {
        free(dev->latest);
        dev->latest = v->record;
        dev->latest_len = v->record_len;
        v->record = NULL;
        v->record_len = 0;
        dev->latest_status = st->status;
        dev->latest_expires = st->expires_at;
        dev->latest_deadline = verdict_deadline(st->expires_at);
        snprintf(dev->latest_golden, sizeof(dev->latest_golden), "%s", st->golden);
        dev->latest_golden_version = st->golden_version;
        dev->latest_sequence = v->sequence;
        dev->stale_queued = false;
        set_unstored_locked(d, dev, false);
        registry_wheel_update_locked(d, dev);
}

/* Whether the stored verdict v says more than dev's latest in memory (d->lock held): a
 * newer one by device sequence (a device's sequence only grows, whichever instance holds
 * it). One with the same sequence and other bytes replaces it only on a device this
 * instance does not hold: the one in memory is then a verdict whose commit failed here
 * (shown, never stored) and the device's next holder stored another under its number. */
static bool stored_newer_locked(vouchd *d, const device *dev, const vs_verdict *v) {
        if (v->sequence != dev->latest_sequence)
                return v->sequence > dev->latest_sequence;
        return !device_held_locked(d, dev) && dev->latest &&
               (dev->latest_len != v->record_len || memcmp(dev->latest, v->record, v->record_len) != 0);
}

/* One verdict read by verdict_follow. Its record is parsed only when it is newer than the
 * device's latest (most of this instance's own are in memory already). */
static void follow_one(vouchd *d, vs_verdict *v) {
        stored st;
        char why[300];
        pthread_mutex_lock(&d->seq_lock);
        pthread_mutex_lock(&d->lock);
        device *dev = registry_find_locked(d, v->device);
        bool newer = dev && stored_newer_locked(d, dev, v);
        /* what GET shows as the device's sequence; the next verdict of the device's holder
         * is numbered after it (a holder that took over reloads it from the store) */
        if (dev && v->sequence > dev->rec.sequence)
                dev->rec.sequence = v->sequence;
        pthread_mutex_unlock(&d->lock);
        pthread_mutex_unlock(&d->seq_lock);
        if (!newer) /* or a device this instance does not know yet */
                return;
        if (parse_stored(v->device, v, &st, why, sizeof(why)) < 0) {
                vlog(LOG_ERR, "store: device %s: verdict (global sequence %llu) not used: %s", v->device,
                     (unsigned long long) v->global_sequence, why);
                return;
        }
        pthread_mutex_lock(&d->lock);
        if (stored_newer_locked(d, dev, v)) /* not superseded meanwhile by a commit here */
                take_stored_locked(d, dev, v, &st);
        pthread_mutex_unlock(&d->lock);
}

#define FOLLOW_BATCH 256

int verdict_follow(vouchd *d) {
        vs_verdict batch[FOLLOW_BATCH];
        uint64_t from = atomic_load(&d->published), last = from;
        int total = 0, r = 0;
        for (;;) {
                int n = vs_verdict_since(d->store, last, batch, FOLLOW_BATCH);
                if (n < 0) {
                        r = n;
                        break;
                }
                for (int i = 0; i < n; i++) {
                        follow_one(d, &batch[i]);
                        last = batch[i].global_sequence;
                        vs_verdict_done(&batch[i]);
                }
                total += n;
                if (n < FOLLOW_BATCH)
                        break;
        }
        /* every verdict up to last is its device's latest in memory or older than it (this
         * instance's own whose hand-off has not run yet included): the watch stream may go
         * that far without being ahead of GET */
        if (last > from)
                atomic_store(&d->published, last);
        return r < 0 ? r : total;
}

/* Shared stores, at start: where verdict_follow begins, read before the devices' latest
 * verdicts are. Any committed global sequence will do: once a number is committed, every
 * lower one is committed or never will be (the store's commit order), so the loads after
 * this read see them all and verdict_follow reads every later one. The largest near the
 * store's last number is taken (vs_verdict_last_global may count numbers handed to a
 * transaction that has not committed yet: not one of them). 0 when none is stored. */
static int follow_start(vouchd *d, uint64_t *ret) {
        vs_verdict b[64];
        uint64_t last, span = 64, from;
        int r = vs_verdict_last_global(d->store, &last), n;
        *ret = 0;
        if (r < 0)
                return r;
        for (bool found = false;;) {
                if (!found)
                        from = last > span ? last - span : 0;
                if ((n = vs_verdict_since(d->store, from, b, 64)) < 0)
                        return n;
                if (n > 0)
                        *ret = from = b[n - 1].global_sequence;
                for (int i = 0; i < n; i++)
                        vs_verdict_done(&b[i]);
                if (n == 64) /* on to the last one */
                        found = true;
                else if (found || n > 0 || from == 0)
                        return 0;
                else
                        span *= 16; /* only failed transactions' numbers there: further back */
        }
}

int verdict_load_latest(vouchd *d) {
        uint64_t start = 0;
        int r;
        if (d->shared && (r = follow_start(d, &start)) < 0)
                return r;
        for (size_t b = 0; b < d->n_buckets; b++)
                for (device *dev = d->buckets[b]; dev; dev = dev->next) {
                        vs_verdict v = { 0 };
                        stored st;
                        char why[300];
                        r = vs_verdict_latest(d->store, dev->rec.id, &v);
                        if (r == -ENOENT)
                                continue;
                        if (r < 0)
                                return r;
                        if (parse_stored(dev->rec.id, &v, &st, why, sizeof(why)) < 0) {
                                /* the device shows as never attested (UNKNOWN) until it does */
                                vlog(LOG_ERR, "store: device %s: latest verdict (sequence %llu) not used: %s", dev->rec.id,
                                     (unsigned long long) v.sequence, why);
                                free(v.record);
                                continue;
                        }
                        take_stored_locked(d, dev, &v, &st);
                }
        if (d->shared) {
                atomic_store(&d->published, start);
                return 0;
        }
        r = vs_verdict_last_global(d->store, &d->gseq);
        atomic_store(&d->published, d->gseq);
        return r;
}

int verdict_reload_latest(vouchd *d, device *dev) {
        vs_verdict v = { 0 };
        int r = vs_verdict_latest(d->store, dev->rec.id, &v);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = verdict_take_latest(d, dev, &v);
        vs_verdict_done(&v);
        return r;
}

int verdict_take_latest(vouchd *d, device *dev, vs_verdict *latest) {
        vs_verdict v = *latest;
        stored st;
        char why[300];
        pthread_mutex_lock(&d->lock);
        /* a newer one in memory is this instance's own that was shown but not stored (a
         * failed commit): it stays */
        bool newer = stored_newer_locked(d, dev, &v);
        pthread_mutex_unlock(&d->lock);
        if (newer && parse_stored(dev->rec.id, &v, &st, why, sizeof(why)) < 0) {
                vlog(LOG_ERR, "store: device %s: latest verdict (sequence %llu) not used: %s", dev->rec.id,
                     (unsigned long long) v.sequence, why);
                newer = false;
        }
        if (newer) {
                pthread_mutex_lock(&d->lock);
                if (stored_newer_locked(d, dev, &v)) /* not superseded meanwhile */
                        take_stored_locked(d, dev, &v, &st);
                pthread_mutex_unlock(&d->lock);
        }
        latest->record = v.record; /* NULL when taken */
        latest->record_len = v.record_len;
        return 0;
}

/* The store's answer to the verdicts issued at start (writer thread). */
static void settle_done(int error, const uint8_t *record, size_t record_len, void *userdata) {
        if (error < 0)
                atomic_fetch_add((atomic_uint *) userdata, 1);
}

int verdict_supersede(vouchd *d, device *dev, const char *taken_from, verdict_done_fn done, void *userdata) {
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
        int r = issue(d, dev, &v, ISSUE_PLAIN, 0, NULL, done, userdata);
        return r < 0 ? r : 1;
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
                r = issue(d, dev, v, ISSUE_PLAIN, 0, NULL, done, userdata);
                v->verifier_id = verifier_id;
        }
        vouch__v1__verdict__free_unpacked(v, NULL);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        free(copy);
        return r < 0 ? r : 1;
}

/* With a store of its own: dev's TRUSTED latest verdict superseded when it may stand for
 * nothing (verdict_supersede), after an unclean run, or always when the device is revoked. */
static int settle_one(vouchd *d, device *dev, bool previous_clean, atomic_uint *failed) {
        bool revoked = dev->rec.revoked || !dev->rec.approved;
        if (previous_clean && !revoked)
                return 0;
        int r = verdict_supersede(d, dev, NULL, settle_done, failed);
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
        if (d->shared) /* only the holder of a device's lease issues its verdicts; the store's
                        * numbers are its own, never reused */
                return lease_settle_at_start(d, previous_clean, ret_stale, ret_revoked);
        if (!previous_clean)
                d->gseq += GSEQ_GAP_AFTER_UNCLEAN;
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
