/* SPDX-License-Identifier: Apache-2.0 */
/* Device leases on a shared store (lease.h, docs/scale-out.md): claims through the store's
 * writer, the device reloaded when this instance claims it anew, the release of an unused
 * lease, the heartbeat with its local deadline and what happens when it is lost, the release
 * at stop, and an unclean run settled at start device by device. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "vouchd.h"

static int64_t now_ms(void) {
        struct timespec t;
        vclock_mono_ts(&t);
        return (int64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The instance's leases may be used: a renewal committed, none lost since, and the local
 * deadline has not passed. */
static bool alive(vouchd *d) {
        lease_state *ls = &d->leases;
        int64_t deadline = atomic_load(&ls->deadline_ms);
        return !atomic_load(&ls->lost) && deadline > 0 && now_ms() < deadline;
}

bool lease_heartbeat_alive(vouchd *d) {
        return alive(d);
}

bool lease_held_locked(vouchd *d, const device *dev) {
        return !d->shared || (dev->leased && alive(d));
}

void lease_init(vouchd *d) {
        pthread_condattr_t a;
        pthread_mutex_init(&d->leases.mu, NULL);
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&d->leases.wake, &a);
        pthread_condattr_destroy(&a);
}

/* ---- release ---- */

typedef struct release {
        vouchd *d;
        device *dev;
} release;

/* The store's answer to a release (writer thread). A failed one leaves the row this
 * instance's: the heartbeat retries it (lease_heartbeat_tick), or another instance would be
 * refused the device for as long as this one runs. */
static void released(int error, void *userdata) {
        release *rl = userdata;
        vouchd *d = rl->d;
        device *dev = rl->dev;
        pthread_mutex_lock(&d->lock);
        if (error < 0)
                atomic_store(&d->leases.retry_release, true);
        else if (!dev->leased && !dev->lease_claims)
                dev->lease_row = false;
        device_drop_ak_locked(d, dev); /* (when nothing here uses it: loaded again at its next use) */
        pthread_mutex_unlock(&d->lock);
        free(rl);
}

/* Releases dev's lease once nothing in this instance uses it and no claim of it is on its
 * way (a claim queued before the release would be granted and then lose its row to it).
 * d->lock held. */
static void release_if_unused_locked(vouchd *d, device *dev) {
        if (!dev->lease_row || dev->lease_uses || dev->lease_claims)
                return;
        /* what it showed is not stored: the row stays until it is (verdict_sweep), also when
         * the heartbeat is lost: the next holder then takes it over and supersedes the
         * store's verdict (a released row would be claimed as free) */
        if (dev->unstored && !atomic_load(&d->leases.closed))
                return;
        if (dev->leased) {
                dev->leased = false;
                atomic_fetch_sub(&d->leases.held, 1);
        }
        if (atomic_load(&d->leases.closed)) {
                dev->lease_row = false; /* lease_release_all released it */
                return;
        }
        release *rl = malloc(sizeof(*rl));
        if (rl)
                *rl = (release) { d, dev };
        if (!rl || vs_lease_release(d->store, dev->rec.id, released, rl) < 0) {
                free(rl);
                atomic_store(&d->leases.retry_release, true);
        }
}

void lease_put(vouchd *d, device *dev) {
        if (!d->shared)
                return;
        pthread_mutex_lock(&d->lock);
        if (dev->lease_uses > 0)
                dev->lease_uses--;
        release_if_unused_locked(d, dev);
        pthread_mutex_unlock(&d->lock);
}

/* Every row that may still be this instance's and that nothing uses, released (the
 * heartbeat's thread): after a release failed, and when recovering from a loss. */
static void release_unused(vouchd *d) {
        for (size_t b = 0; b < d->n_buckets; b++) {
                pthread_mutex_lock(&d->lock);
                for (device *dev = d->buckets[b]; dev; dev = dev->next)
                        release_if_unused_locked(d, dev);
                pthread_mutex_unlock(&d->lock);
        }
}

/* ---- claims ---- */

/* Whether the store's clock state (row) is newer than the attestation state's: then the
 * device was attested elsewhere since this instance last did. */
static bool row_clock_newer(const vc_device_state *st, const vs_device *row) {
        if (!row->has_last)
                return false;
        if (!st->has_last || row->reset_count != st->reset_count)
                return !st->has_last || row->reset_count > st->reset_count;
        if (row->restart_count != st->restart_count)
                return row->restart_count > st->restart_count;
        return row->clock > st->clock;
}

/* A new claim: dev as the store has it now, read in the claim's own transaction after it took
 * the lease (res->row, res->latest: no read of its own on the writer thread, where it would
 * hold up the group commits). Another instance may have re-enrolled it (a new AK), attested
 * it (its clock: freshness holds across instances), issued verdicts (the device's sequence,
 * its latest verdict), or an admin changed its approval, revocation or golden set. The row
 * goes through registry_apply_locked, as the change feed's rows do (vouchd_follow), so that
 * the follower never applies an older row after it (the row's change number is this device's
 * from now on); a row no newer than what was applied keeps memory's AK and admin fields. A
 * device the store does not have yet (an enrollment on its way: no row) stays as it is.
 * Writer thread (the claim's callback). */
static int reload(vouchd *d, device *dev, const vs_lease_result *res) {
        const vs_device *row = &res->row;
        registry_applied a;
        int r = res->read_error; /* (damaged: the claim lets the device go again) */
        if (r == 0 && res->has_row) {
                /* the sequence and the access flags are read under seq_lock by whoever numbers a
                 * verdict (verdict.c) */
                pthread_mutex_lock(&d->seq_lock);
                pthread_mutex_lock(&d->lock);
                r = registry_apply_locked(d, row, &a);
                if (r == 0) {
                        /* numbers are never taken back (also at the same change: verdicts do not
                         * change the row) */
                        if (row->sequence > dev->rec.sequence)
                                dev->rec.sequence = row->sequence;
                        pthread_mutex_lock(&dev->mu);
                        if (!a.new_ak && row_clock_newer(&dev->state, row)) {
                                /* as at a start: the last quote's clock from the store, this boot's
                                 * log again (a new AK's came with it) */
                                vc_device_state_done(&dev->state);
                                dev->state.has_last = row->has_last;
                                dev->state.reset_count = row->reset_count;
                                dev->state.restart_count = row->restart_count;
                                dev->state.clock = row->clock;
                                dev->rec.has_last = row->has_last;
                                dev->rec.reset_count = row->reset_count;
                                dev->rec.restart_count = row->restart_count;
                                dev->rec.clock = row->clock;
                        }
                        /* the next accepted quote's clock is stored at once: where the next
                         * holder starts */
                        dev->clock_saved = false;
                        pthread_mutex_unlock(&dev->mu);
                }
                pthread_mutex_unlock(&d->lock);
                pthread_mutex_unlock(&d->seq_lock);
                if (r == -EBADMSG)
                        vlog(LOG_ERR, "store: device %s: its stored AK does not load: not claimed", row->id);
        }
        if (r < 0 || !res->has_latest)
                return r;
        /* (a copy: the store owns res) */
        vs_verdict v = res->latest;
        if (!(v.record = malloc(res->latest.record_len ? res->latest.record_len : 1)))
                return -ENOMEM;
        memcpy(v.record, res->latest.record, res->latest.record_len);
        r = verdict_take_latest(d, dev, &v);
        vs_verdict_done(&v);
        return r;
}

typedef struct claim {
        vouchd *d;
        device *dev;
        lease_fn cb;
        void *userdata;
        uint64_t epoch;                 /* leases.epoch when it was queued */
} claim;

static void give_up_all(vouchd *d, const char *why);

/* Whether a claim queued in epoch may still be granted: no loss since. d->lock held. */
static bool claim_current(vouchd *d, uint64_t epoch) {
        return !atomic_load(&d->leases.lost) && atomic_load(&d->leases.epoch) == epoch;
}

/* The store's answer to a claim (writer thread). */
static void claimed(int error, const vs_lease_result *res, void *userdata) {
        claim *c = userdata;
        vouchd *d = c->d;
        device *dev = c->dev;
        char holder[VS_INSTANCE_MAX + 1] = "", from[VS_INSTANCE_MAX + 1] = "";
        bool fresh = false;
        int r = error;
        if (r == 0 && res->lapsed && claim_current(d, c->epoch))
                /* this instance's heartbeat had lapsed in the database's eyes: others may have
                 * taken any of its leases */
                give_up_all(d, "the database found this instance's heartbeat lapsed");
        if (r == 0 && !res->granted) {
                r = -EBUSY;
                snprintf(holder, sizeof(holder), "%s", res->holder);
                atomic_fetch_add(&d->leases.refusals, 1);
        }
        if (r == 0) {
                snprintf(from, sizeof(from), "%s", res->taken_from);
                pthread_mutex_lock(&d->lock);
                dev->lease_row = true; /* (given up meanwhile: released below, once unused) */
                if (!claim_current(d, c->epoch))
                        r = -ENOLINK;
                else
                        fresh = !dev->leased;
                pthread_mutex_unlock(&d->lock);
        }
        if (r == 0 && fresh && (r = reload(d, dev, res)) < 0)
                vlog(LOG_ERR, "device %s: claimed, but the store could not be read: %s", dev->rec.id, strerror(-r));
        pthread_mutex_lock(&d->lock);
        dev->lease_claims--;
        if (r == 0 && !claim_current(d, c->epoch))
                r = -ENOLINK;
        if (r == 0) {
                if (!dev->leased) {
                        dev->leased = true;
                        atomic_fetch_add(&d->leases.held, 1);
                }
                dev->lease_uses++;
        }
        bool revoked = dev->rec.revoked || !dev->rec.approved;
        release_if_unused_locked(d, dev); /* reload failed or void: the row goes */
        pthread_mutex_unlock(&d->lock);
        if (r == 0 && fresh && from[0]) {
                /* the lapsed holder may have shown a newer verdict than it stored */
                int s = verdict_supersede(d, dev, from, NULL, NULL);
                vlog(LOG_WARN, "device %s: its lease taken over from instance %s, whose heartbeat had lapsed%s",
                     dev->rec.id, from,
                     s > 0 ? ": its latest verdict (TRUSTED) superseded" : s < 0 ? ": its latest verdict (TRUSTED) "
                                                                                   "could not be superseded" : "");
        } else if (r == 0 && fresh && revoked) {
                /* revoked at another instance while nobody held it, or before its holder
                 * followed: the UNTRUSTED verdict its holder would have issued (admin.h,
                 * device_follow), if the latest one is still TRUSTED */
                int s = verdict_supersede(d, dev, NULL, NULL, NULL);
                if (s != 0)
                        vlog(s > 0 ? LOG_INFO : LOG_ERR, "device %s: claimed while revoked: its latest verdict (TRUSTED) %s",
                             dev->rec.id, s > 0 ? "superseded by an UNTRUSTED one" : "could not be superseded");
        }
        c->cb(d, dev, r, holder, c->userdata);
        free(c);
}

int lease_get(vouchd *d, device *dev, lease_fn cb, void *userdata) {
        if (!d->shared) {
                cb(d, dev, 0, "", userdata);
                return 0;
        }
        pthread_mutex_lock(&d->lock);
        if (atomic_load(&d->leases.closed)) {
                pthread_mutex_unlock(&d->lock);
                return -ESHUTDOWN;
        }
        if (!alive(d)) {
                pthread_mutex_unlock(&d->lock);
                return -ENOLINK;
        }
        if (dev->leased) {
                dev->lease_uses++;
                pthread_mutex_unlock(&d->lock);
                cb(d, dev, 0, "", userdata);
                return 0;
        }
        claim *c = malloc(sizeof(*c));
        if (!c) {
                pthread_mutex_unlock(&d->lock);
                return -ENOMEM;
        }
        *c = (claim) { d, dev, cb, userdata, atomic_load(&d->leases.epoch) };
        /* queued under d->lock: after any release of the device queued before it */
        int r = vs_lease_claim(d->store, dev->rec.id, LEASE_TTL_MS, claimed, c);
        if (r < 0)
                free(c);
        else
                dev->lease_claims++;
        pthread_mutex_unlock(&d->lock);
        return r;
}

/* ---- the heartbeat ---- */

/* Every lease given up: its heartbeat was not stored before the local deadline (the database
 * unreachable, or this process stalled), or the database found it lapsed. Another instance
 * may hold any of these devices soon. Claims are refused until lease_heartbeat_tick's
 * recovery (the release of every unused row that may be this instance's, then a renewal)
 * commits; the devices' sessions are closed. Any thread but the loops' holding d->lock. */
static void give_up_all(vouchd *d, const char *why) {
        lease_state *ls = &d->leases;
        device **kick = NULL;
        size_t n = 0, cap = 0;
        unsigned long long given = 0;
        if (atomic_exchange(&ls->lost, true))
                return;
        atomic_fetch_add(&ls->epoch, 1); /* before the walk: a claim answered after it is void */
        for (size_t b = 0; b < d->n_buckets; b++) {
                pthread_mutex_lock(&d->lock);
                for (device *dev = d->buckets[b]; dev; dev = dev->next) {
                        if (dev->leased) {
                                dev->leased = false;
                                given++;
                                if (dev->session && n == cap) {
                                        size_t nc = cap ? cap * 2 : 64;
                                        device **nk = realloc(kick, nc * sizeof(*nk));
                                        if (nk)
                                                kick = nk, cap = nc;
                                }
                                if (dev->session && n < cap)
                                        kick[n++] = dev;
                        }
                }
                pthread_mutex_unlock(&d->lock);
        }
        atomic_fetch_sub(&ls->held, given);
        atomic_fetch_add(&ls->lost_leases, given);
        vlog(LOG_ERR, "leases: %s: the %llu device leases of this instance are given up, their sessions closed; "
                      "no device is claimed until a heartbeat is stored again",
             why, given);
        /* a session not bound yet (no quote verified) is not kicked: its verdict is refused
         * (verdict_issue_attested: -ENOLCK) */
        for (size_t i = 0; i < n; i++)
                session_kick(d, kick[i], "this vouchd instance lost its hold on the device: connect again");
        free(kick);
}

typedef struct renewal {
        vouchd *d;
        int64_t queued_ms;
        uint64_t epoch;
        bool recovery;                  /* after a loss, queued behind a release of every row */
} renewal;

/* The store's answer to a renewal (writer thread). */
static void renewed(int error, const vs_lease_result *res, void *userdata) {
        renewal *rn = userdata;
        vouchd *d = rn->d;
        lease_state *ls = &d->leases;
        int64_t until = rn->queued_ms + LEASE_TTL_MS - LEASE_MARGIN_MS;
        bool lapsed = false, recovered = false;
        pthread_mutex_lock(&ls->mu);
        if (rn->recovery)
                ls->recovering = false;
        if (error == 0 && rn->epoch == atomic_load(&ls->epoch)) {
                if (rn->recovery) {
                        /* the unused rows released (a failed release is queued again by the
                         * next tick), then the heartbeat renewed: claims may go on */
                        if (atomic_load(&ls->lost)) {
                                ls->renewed_ms = rn->queued_ms;
                                atomic_store(&ls->deadline_ms, until);
                                atomic_store(&ls->lost, false);
                                recovered = true;
                        }
                } else if (!atomic_load(&ls->lost)) {
                        if (res->lapsed && ls->renewed_ms) {
                                lapsed = true;
                        } else {
                                if (rn->queued_ms > ls->renewed_ms)
                                        ls->renewed_ms = rn->queued_ms;
                                if (until > atomic_load(&ls->deadline_ms))
                                        atomic_store(&ls->deadline_ms, until);
                        }
                }
        }
        pthread_mutex_unlock(&ls->mu);
        if (lapsed)
                give_up_all(d, "the database found this instance's heartbeat lapsed");
        if (recovered)
                vlog(LOG_INFO, "leases: the heartbeat is stored again: devices are claimed again");
        free(rn);
}

/* Queues a renewal queued at now (a recovery's: after the releases). leases.mu held. */
static int queue_renewal(vouchd *d, int64_t now, bool recovery) {
        lease_state *ls = &d->leases;
        renewal *rn = malloc(sizeof(*rn));
        int r;
        if (!rn)
                return -ENOMEM;
        *rn = (renewal) { d, now, atomic_load(&ls->epoch), recovery };
        if ((r = vs_lease_renew_all(d->store, LEASE_TTL_MS, renewed, rn)) < 0) {
                free(rn);
                return r;
        }
        if (recovery)
                ls->recovering = true;
        return 0;
}

void lease_heartbeat_tick(vouchd *d) {
        lease_state *ls = &d->leases;
        if (!d->shared)
                return;
        int64_t now = now_ms(), deadline = atomic_load(&ls->deadline_ms);
        if (!atomic_load(&ls->lost) && deadline > 0 && now >= deadline)
                give_up_all(d, "no heartbeat could be stored in time");
        pthread_mutex_lock(&ls->mu);
        bool lost = atomic_load(&ls->lost), due = !atomic_load(&ls->closed) && now >= ls->next_renew_ms,
             recover = due && lost && !ls->recovering;
        pthread_mutex_unlock(&ls->mu);
        /* the rows given up go first, or they would lock their devices out of every other
         * instance while this one's heartbeat runs; a row whose verdict is not stored stays */
        if (atomic_exchange(&ls->retry_release, false) || recover)
                release_unused(d);
        pthread_mutex_lock(&ls->mu);
        if (due && !(lost && ls->recovering)) {
                int r = queue_renewal(d, now, lost);
                if (r < 0)
                        vlog(LOG_ERR, "leases: cannot queue the heartbeat: %s", strerror(-r));
        }
        if (due)
                ls->next_renew_ms = now + LEASE_RENEW_MS;
        pthread_mutex_unlock(&ls->mu);
}

/* Waits on the real monotonic clock until the next renewal or the deadline, whichever comes
 * first, and runs the tick. */
static void *heartbeat_main(void *arg) {
        vouchd *d = arg;
        lease_state *ls = &d->leases;
        pthread_mutex_lock(&ls->mu);
        while (!ls->stop) {
                int64_t now = now_ms(), until = ls->next_renew_ms, deadline = atomic_load(&ls->deadline_ms);
                if (!atomic_load(&ls->lost) && deadline > 0 && deadline < until)
                        until = deadline;
                if (until > now) {
                        struct timespec t;
                        clock_gettime(CLOCK_MONOTONIC, &t);
                        int64_t ns = t.tv_nsec + (until - now) % 1000 * 1000000;
                        t.tv_sec += (time_t) ((until - now) / 1000 + ns / 1000000000);
                        t.tv_nsec = ns % 1000000000;
                        pthread_cond_timedwait(&ls->wake, &ls->mu, &t);
                        continue;
                }
                pthread_mutex_unlock(&ls->mu);
                lease_heartbeat_tick(d);
                pthread_mutex_lock(&ls->mu);
        }
        pthread_mutex_unlock(&ls->mu);
        return NULL;
}

int lease_heartbeat_start(vouchd *d) {
        lease_state *ls = &d->leases;
        if (!d->shared)
                return 0;
        int64_t now = now_ms();
        pthread_mutex_lock(&ls->mu);
        int r = queue_renewal(d, now, false);
        ls->next_renew_ms = now + LEASE_RENEW_MS;
        pthread_mutex_unlock(&ls->mu);
        if (r < 0)
                return r;
        vs_flush(d->store);
        if (atomic_load(&ls->deadline_ms) == 0)
                return -EIO; /* the renewal was not committed */
        if (ls->manual)
                return 0;
        if ((r = -pthread_create(&ls->thread, NULL, heartbeat_main, d)) < 0)
                return r;
        ls->thread_started = true;
        return 0;
}

void lease_release_all(vouchd *d) {
        lease_state *ls = &d->leases;
        if (!d->shared)
                return;
        /* no claim, renewal or release is queued after the release of every row */
        pthread_mutex_lock(&d->lock);
        pthread_mutex_lock(&ls->mu);
        bool was = atomic_exchange(&ls->closed, true), started = ls->thread_started;
        ls->stop = true;
        ls->thread_started = false;
        pthread_cond_signal(&ls->wake);
        pthread_mutex_unlock(&ls->mu);
        pthread_mutex_unlock(&d->lock);
        if (was)
                return;
        if (started)
                pthread_join(ls->thread, NULL);
        /* the verdicts shown and not stored, stored now if they can be (else the run is
         * unclean: this instance's next start supersedes what the store has) */
        for (size_t b = 0; b < d->n_buckets; b++)
                for (device *dev = d->buckets[b]; dev; dev = dev->next) {
                        pthread_mutex_lock(&d->lock);
                        bool unstored = dev->unstored;
                        pthread_mutex_unlock(&d->lock);
                        if (unstored)
                                verdict_store_shown(d, dev, NULL, NULL);
                }
        if (vs_lease_release_all(d->store, NULL, NULL) == 0)
                vs_flush(d->store);
        for (size_t b = 0; b < d->n_buckets; b++) {
                pthread_mutex_lock(&d->lock);
                for (device *dev = d->buckets[b]; dev; dev = dev->next) {
                        dev->leased = false;
                        dev->lease_row = false;
                }
                pthread_mutex_unlock(&d->lock);
        }
        atomic_store(&ls->held, 0);
}

/* ---- an unclean run settled at start ---- */

typedef struct settle {
        atomic_uint pending, failed;
        atomic_size_t stale, revoked;
} settle;

static void settle_stored(int error, const uint8_t *record, size_t record_len, void *userdata) {
        if (error < 0)
                atomic_fetch_add(&((settle *) userdata)->failed, 1);
}

static void settle_leased(vouchd *d, device *dev, int result, const char *holder, void *userdata) {
        settle *st = userdata;
        if (result == 0) {
                pthread_mutex_lock(&d->lock);
                bool revoked = dev->rec.revoked || !dev->rec.approved;
                pthread_mutex_unlock(&d->lock);
                int r = verdict_supersede(d, dev, NULL, settle_stored, st);
                if (r < 0)
                        atomic_fetch_add(&st->failed, 1);
                else if (r > 0)
                        atomic_fetch_add(revoked ? &st->revoked : &st->stale, 1);
                lease_put(d, dev);
        } else if (result != -EBUSY) {
                atomic_fetch_add(&st->failed, 1);
        }
        atomic_fetch_sub(&st->pending, 1);
}

int lease_settle_at_start(vouchd *d, bool previous_clean, size_t *ret_stale, size_t *ret_revoked) {
        settle st = { 0 };
        for (size_t b = 0; b < d->n_buckets; b++)
                for (device *dev = d->buckets[b]; dev; dev = dev->next) {
                        bool revoked = dev->rec.revoked || !dev->rec.approved;
                        if (!dev->latest || dev->latest_status != VOUCH__V1__TRUST_STATUS__TRUSTED ||
                            (previous_clean && !revoked))
                                continue;
                        atomic_fetch_add(&st.pending, 1);
                        if (lease_get(d, dev, settle_leased, &st) < 0) {
                                atomic_fetch_sub(&st.pending, 1);
                                atomic_fetch_add(&st.failed, 1);
                        }
                }
        /* the claims' callbacks queue the verdicts and the releases: until all are answered */
        while (atomic_load(&st.pending) > 0)
                vs_flush(d->store);
        vs_flush(d->store);
        *ret_stale = atomic_load(&st.stale);
        *ret_revoked = atomic_load(&st.revoked);
        if (atomic_load(&st.failed))
                return -EIO;
        vs_run_settled(d->store);
        return 0;
}
