/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "lease.h"
#include "vouchd.h"

/* The store's answer to the writes that the API waits for with vs_flush (the writer runs
 * the callbacks before the queue counts as empty): the first failure, if any. */
static void record_error(int error, void *userdata) {
        int *e = userdata;
        if (error < 0 && *e == 0)
                *e = error;
}

static void verdict_error(int error, const uint8_t *record, size_t record_len, void *userdata) {
        *(int *) userdata = error;
}

/* What an admin action changes in the record written (-1 / NULL: as it is). */
typedef struct rec_edit {
        int approved, revoked;
        const char *golden;
} rec_edit;

/* 0 once the device's record, with edit applied, is durable; < 0 when it could not be
 * queued or committed. The in-memory record is not changed here. The record is copied
 * and queued under d->lock, as an enrollment is (session.c, device_put): a re-enrollment's
 * new AK is either in this write or queued after it, never overwritten by an older copy.
 *
 * On a shared store only the fields of the action are written (vs_device_put_admin): this
 * instance's copy of the others may be older than another instance's admin action, and,
 * when it does not hold the device (held false), its copy of the AK and clock too. The
 * holder first writes the row as it has it, the admin's fields kept as stored
 * (vs_device_put_enrollment), for a device whose enrollment could not be stored. */
static int put_device_sync(vouchd *d, device *dev, rec_edit edit, bool held) {
        int error = 0, r = 0;
        bool queued = false;
        pthread_mutex_lock(&d->lock);
        vs_device copy = verdict_row_locked(dev);
        if (d->shared && held)
                queued = (r = vs_device_put_enrollment(d->store, &copy, record_error, &error)) == 0;
        if (edit.approved >= 0)
                copy.approved = edit.approved;
        if (edit.revoked >= 0)
                copy.revoked = edit.revoked;
        if (edit.golden)
                snprintf(copy.golden, sizeof(copy.golden), "%s", edit.golden);
        if (r == 0 && d->shared) {
                unsigned fields = (edit.golden ? VS_ADMIN_GOLDEN : 0) | (edit.approved >= 0 ? VS_ADMIN_ACCESS : 0);
                r = vs_device_put_admin(d->store, &copy, fields, record_error, &error);
        } else if (r == 0) {
                r = vs_device_put(d->store, &copy, record_error, &error);
        }
        queued |= r == 0;
        pthread_mutex_unlock(&d->lock);
        if (queued)
                vs_flush(d->store); /* answered once durable: error is written until then */
        return r < 0 ? r : error;
}

/* ---- the device's lease (shared stores) ---- */

typedef struct lease_wait {
        pthread_mutex_t mu;
        pthread_cond_t cond;
        bool done;
        int result;
        char holder[VS_INSTANCE_MAX + 1];
} lease_wait;

static void lease_got(vouchd *d, device *dev, int result, const char *holder, void *userdata) {
        lease_wait *w = userdata;
        pthread_mutex_lock(&w->mu);
        w->result = result;
        snprintf(w->holder, sizeof(w->holder), "%s", holder ? holder : "");
        w->done = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mu);
}

/* A use of dev's lease for an admin action, waited for (the API thread waits for the store
 * in an admin action anyway). 0: this instance holds it (lease_put once done), and acts as
 * the holder; -EBUSY: another instance holds it (holder, n bytes, names it) and follows
 * the action (vouchd_follow); -ENOLINK: this instance's heartbeat is lost (lease.h), so
 * it cannot hold the device now (holder ""); another <0: the store failed. With a store of
 * its own, 0. */
static int lease_wait_get(vouchd *d, device *dev, char *holder, size_t n) {
        lease_wait w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        int r = lease_get(d, dev, lease_got, &w);
        if (r < 0) {
                snprintf(holder, n, "%s", "");
                return r;
        }
        pthread_mutex_lock(&w.mu);
        while (!w.done)
                pthread_cond_wait(&w.cond, &w.mu);
        pthread_mutex_unlock(&w.mu);
        pthread_cond_destroy(&w.cond);
        pthread_mutex_destroy(&w.mu);
        snprintf(holder, n, "%s", w.holder);
        return w.result;
}

/* ---- revocation ---- */

/* The UNTRUSTED verdict of a revocation (finding "revoked", why its explanation). */
static void revoked_verdict(vouchd *d, device *dev, Vouch__V1__Verdict *v, Vouch__V1__Finding *f,
                            Vouch__V1__Finding **fp, const char *why) {
        time_t now = (time_t) vclock_wall();
        v->device_id = dev->rec.id;
        v->status = VOUCH__V1__TRUST_STATUS__UNTRUSTED;
        v->issued_at = now;
        v->expires_at = now + (int64_t) d->cfg.interval * d->cfg.verdict_ttl_intervals;
        verdict_one_finding(v, f, fp, "revoked", "not revoked", "revoked", why);
}

/* 0 once the revocation is committed: the device row (revoked, not approved) and its
 * UNTRUSTED verdict in one transaction, so that no crash or full disk can leave a revoked
 * device with a TRUSTED latest verdict in the store. */
static int revoke_sync(vouchd *d, device *dev, const char *who) {
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        Vouch__V1__Finding f = VOUCH__V1__FINDING__INIT, *fp = &f;
        char why[200];
        snprintf(why, sizeof(why), "revoked by the admin \"%s\"", who);
        revoked_verdict(d, dev, &v, &f, &fp, why);
        int error = 0;
        int r = verdict_issue_with_access(d, dev, &v, false, true, verdict_error, &error);
        if (r == 0) {
                vs_flush(d->store);
                r = error;
        }
        return r;
}

/* The revocation by the device's holder (this instance; always with a store of its own). */
static int revoke_held(vouchd *d, device *dev, const char *who) {
        pthread_mutex_lock(&d->lock);
        bool was_approved = dev->rec.approved, was_revoked = dev->rec.revoked;
        pthread_mutex_unlock(&d->lock);
        /* the stricter state first: a revocation holds from now on, while it is written (no
         * attestation verdict is numbered after this) */
        verdict_set_access(d, dev, false, true);
        if (revoke_sync(d, dev, who) < 0) {
                /* memory goes back to what the store still says */
                verdict_set_access(d, dev, was_approved, was_revoked);
                return -EIO;
        }
        vlog(LOG_INFO, "API: device %s revoked by \"%s\"", dev->rec.id, who);
        /* revoked in memory and in the store: its agent goes */
        session_kick(d, dev, "the device was revoked");
        return 0;
}

/* The revocation of a device another instance holds (holder; "" when this instance cannot
 * tell, its heartbeat being lost): the store's flags only; the holder issues the UNTRUSTED
 * verdict and closes the session when it follows (device_follow), or, when nobody holds the
 * device, whichever instance claims it next (lease.c). */
static int revoke_elsewhere(vouchd *d, device *dev, const char *who, const char *holder) {
        pthread_mutex_lock(&d->lock);
        bool was_approved = dev->rec.approved, was_revoked = dev->rec.revoked;
        pthread_mutex_unlock(&d->lock);
        verdict_set_access(d, dev, false, true);
        if (put_device_sync(d, dev, (rec_edit) { .approved = 0, .revoked = 1 }, false) < 0) {
                verdict_set_access(d, dev, was_approved, was_revoked);
                return -EIO;
        }
        if (holder[0])
                vlog(LOG_INFO, "API: device %s revoked by \"%s\"; instance %s holds it: it issues the UNTRUSTED "
                               "verdict and closes the session", dev->rec.id, who, holder);
        else
                vlog(LOG_INFO, "API: device %s revoked by \"%s\"; this instance's heartbeat is lost: the device's "
                               "holder (or its next one) issues the UNTRUSTED verdict", dev->rec.id, who);
        return 0;
}

int device_revoke(vouchd *d, device *dev, const char *who) {
        char holder[VS_INSTANCE_MAX + 1];
        if (!d->shared)
                return revoke_held(d, dev, who);
        int r = lease_wait_get(d, dev, holder, sizeof(holder));
        if (r == -EBUSY || r == -ENOLINK)
                return revoke_elsewhere(d, dev, who, holder);
        if (r < 0)
                return -EIO;
        r = revoke_held(d, dev, who);
        lease_put(d, dev);
        return r;
}

/* ---- approval and golden assignment ---- */

int device_approve(vouchd *d, device *dev, const char *who) {
        char holder[VS_INSTANCE_MAX + 1] = "";
        int held = d->shared ? lease_wait_get(d, dev, holder, sizeof(holder)) : 0;
        if (held < 0 && held != -EBUSY && held != -ENOLINK)
                return -EIO;
        /* an approval holds only once written */
        int r = put_device_sync(d, dev, (rec_edit) { .approved = 1, .revoked = 0 }, held == 0);
        if (r == 0) {
                verdict_set_access(d, dev, true, false);
                vlog(LOG_INFO, "API: device %s approved by \"%s\"", dev->rec.id, who);
        }
        if (d->shared && held == 0)
                lease_put(d, dev);
        return r < 0 ? -EIO : 0;
}

int device_assign_golden(vouchd *d, device *dev, const char *name, const char *who) {
        pthread_mutex_lock(&d->lock);
        bool known = !name[0] || golden_table_find(d->golden, name);
        pthread_mutex_unlock(&d->lock);
        if (!known)
                return -ENOENT;
        char holder[VS_INSTANCE_MAX + 1] = "";
        int held = d->shared ? lease_wait_get(d, dev, holder, sizeof(holder)) : 0;
        if (held < 0 && held != -EBUSY && held != -ENOLINK)
                return -EIO;
        /* written first, applied once durable */
        int r = put_device_sync(d, dev, (rec_edit) { .approved = -1, .revoked = -1, .golden = name }, held == 0);
        if (r == 0) {
                pthread_mutex_lock(&d->lock);
                snprintf(dev->rec.golden, sizeof(dev->rec.golden), "%s", name);
                pthread_mutex_unlock(&d->lock);
                vlog(LOG_INFO, "API: device %s assigned golden set \"%s\" by \"%s\"", dev->rec.id,
                     name[0] ? name : "(default)", who);
                /* its TRUSTED verdict under the old set now shows as STALE
                 * (verdict_golden_outdated_locked); the agent reconnects and is judged by the
                 * new set at once (at another instance that holds it: when it follows) */
                if (held == 0)
                        session_kick(d, dev, "the device was assigned another golden set");
        }
        if (d->shared && held == 0)
                lease_put(d, dev);
        return r < 0 ? -EIO : 0;
}

/* ---- following another instance's action (shared stores) ---- */

static void follow_done(int error, const uint8_t *record, size_t record_len, void *userdata) {
        char *id = userdata;
        (void) record;
        (void) record_len;
        if (error < 0)
                vlog(LOG_ERR, "device %s: the UNTRUSTED verdict of its revocation at another instance could not be "
                              "stored: %s", id, strerror(-error));
        free(id);
}

/* The UNTRUSTED verdict of a revocation made at another instance (the device row says so
 * already, and memory too: registry_apply_locked). By the holder (held: this instance held
 * the device when the row was applied); or, when no instance holds the device (its holder
 * let go of it before it followed), by whichever instance claims it first: a claim reloads
 * the device and supersedes a TRUSTED latest verdict of a revoked one (lease.c), so here
 * the lease is only taken and dropped. */
static void follow_revocation(vouchd *d, device *dev, bool held) {
        char holder[VS_INSTANCE_MAX + 1];
        if (!held) {
                vs_lease_result l;
                int r = vs_lease_get(d->store, dev->rec.id, &l);
                if (r == 0 && (l.granted || l.expires_in_ms > 0))
                        return; /* its holder follows */
                if (r < 0 && r != -ENOENT)
                        return; /* the store failed: the revocation stands, shown UNTRUSTED everywhere */
        }
        if (lease_wait_get(d, dev, holder, sizeof(holder)) < 0)
                return; /* -EBUSY: its holder follows */
        char *id = held ? strdup(dev->rec.id) : NULL;
        if (id) {
                Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
                Vouch__V1__Finding f = VOUCH__V1__FINDING__INIT, *fp = &f;
                revoked_verdict(d, dev, &v, &f, &fp, "revoked by an admin at another instance");
                int r = verdict_issue(d, dev, &v, follow_done, id);
                if (r < 0)
                        follow_done(r, NULL, 0, id);
        }
        lease_put(d, dev);
}

void device_follow(vouchd *d, const registry_applied *a) {
        if (!a->dev || (!a->withdrawn && !a->golden))
                return;
        if (a->withdrawn) {
                vlog(LOG_INFO, "device %s: revoked at another instance%s", a->dev->rec.id,
                     a->held ? ": its UNTRUSTED verdict is issued here and its session closed" : "");
                follow_revocation(d, a->dev, a->held);
                session_kick(d, a->dev, "the device was revoked");
                return;
        }
        char name[sizeof(a->dev->rec.golden)];
        pthread_mutex_lock(&d->lock);
        snprintf(name, sizeof(name), "%s", a->dev->rec.golden);
        pthread_mutex_unlock(&d->lock);
        vlog(LOG_INFO, "device %s: assigned golden set \"%s\" at another instance%s", a->dev->rec.id,
             name[0] ? name : "(default)", a->held ? ": its session is closed, to be judged by it at once" : "");
        session_kick(d, a->dev, "the device was assigned another golden set");
}
