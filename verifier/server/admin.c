/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "vouchd.h"

/* The store's answer to one write that the API waits for with vs_flush (the writer runs
 * the callback before the queue counts as empty). */
static void record_error(int error, void *userdata) {
        *(int *) userdata = error;
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
 * new AK is either in this write or queued after it, never overwritten by an older copy. */
static int put_device_sync(vouchd *d, device *dev, rec_edit edit) {
        int error = 0;
        pthread_mutex_lock(&d->lock);
        vs_device copy = verdict_row_locked(dev);
        if (edit.approved >= 0)
                copy.approved = edit.approved;
        if (edit.revoked >= 0)
                copy.revoked = edit.revoked;
        if (edit.golden)
                snprintf(copy.golden, sizeof(copy.golden), "%s", edit.golden);
        int r = vs_device_put(d->store, &copy, record_error, &error);
        pthread_mutex_unlock(&d->lock);
        if (r == 0) {
                vs_flush(d->store); /* answered once durable */
                r = error;
        }
        return r;
}

/* 0 once the revocation is committed: the device row (revoked, not approved) and its
 * UNTRUSTED verdict in one transaction, so that no crash or full disk can leave a revoked
 * device with a TRUSTED latest verdict in the store. */
static int revoke_sync(vouchd *d, device *dev, const char *who) {
        Vouch__V1__Verdict v = VOUCH__V1__VERDICT__INIT;
        Vouch__V1__Finding f = VOUCH__V1__FINDING__INIT, *fp = &f;
        char why[200];
        time_t now = (time_t) vclock_wall();
        snprintf(why, sizeof(why), "revoked by the admin \"%s\"", who);
        v.device_id = dev->rec.id;
        v.status = VOUCH__V1__TRUST_STATUS__UNTRUSTED;
        v.issued_at = now;
        v.expires_at = now + (int64_t) d->cfg.interval * d->cfg.verdict_ttl_intervals;
        verdict_one_finding(&v, &f, &fp, "revoked", "not revoked", "revoked", why);
        int error = 0;
        int r = verdict_issue_with_access(d, dev, &v, false, true, verdict_error, &error);
        if (r == 0) {
                vs_flush(d->store);
                r = error;
        }
        return r;
}

int device_approve(vouchd *d, device *dev, const char *who) {
        /* an approval holds only once written */
        if (put_device_sync(d, dev, (rec_edit) { .approved = 1, .revoked = 0 }) < 0)
                return -EIO;
        verdict_set_access(d, dev, true, false);
        vlog(LOG_INFO, "API: device %s approved by \"%s\"", dev->rec.id, who);
        return 0;
}

int device_revoke(vouchd *d, device *dev, const char *who) {
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

int device_assign_golden(vouchd *d, device *dev, const char *name, const char *who) {
        pthread_mutex_lock(&d->lock);
        bool known = !name[0] || golden_table_find(d->golden, name);
        pthread_mutex_unlock(&d->lock);
        if (!known)
                return -ENOENT;
        /* written first, applied once durable */
        if (put_device_sync(d, dev, (rec_edit) { .approved = -1, .revoked = -1, .golden = name }) < 0)
                return -EIO;
        pthread_mutex_lock(&d->lock);
        snprintf(dev->rec.golden, sizeof(dev->rec.golden), "%s", name);
        pthread_mutex_unlock(&d->lock);
        vlog(LOG_INFO, "API: device %s assigned golden set \"%s\" by \"%s\"", dev->rec.id, name[0] ? name : "(default)",
             who);
        /* its TRUSTED verdict under the old set now shows as STALE
         * (verdict_golden_outdated_locked); the agent reconnects and is judged by the new set
         * at once */
        session_kick(d, dev, "the device was assigned another golden set");
        return 0;
}
