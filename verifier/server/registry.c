/* SPDX-License-Identifier: Apache-2.0 */
/* Devices known to the verifier (loaded from the store at start) and golden sets. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "vouchd.h"

static size_t bucket(const vouchd *d, const char *id) {
        uint64_t h = 1469598103934665603ull;
        for (const char *p = id; *p; p++)
                h = (h ^ (uint8_t) *p) * 1099511628211ull;
        return h & (d->n_buckets - 1);
}

device *registry_find_locked(vouchd *d, const char *id) {
        for (device *dev = d->buckets[bucket(d, id)]; dev; dev = dev->next)
                if (strcmp(dev->rec.id, id) == 0)
                        return dev;
        return NULL;
}

static size_t key_bucket(const vouchd *d, const uint8_t key[32]) {
        uint64_t h;
        memcpy(&h, key, sizeof(h)); /* a SHA-256 output: any 8 bytes are uniform */
        return h & (d->n_buckets - 1);
}

device *registry_find_key_locked(vouchd *d, const uint8_t key[32]) {
        for (device *dev = d->key_buckets[key_bucket(d, key)]; dev; dev = dev->next_key)
                if (memcmp(dev->ek_key, key, 32) == 0)
                        return dev;
        return NULL;
}

device *registry_add_locked(vouchd *d, const vs_device *rec) {
        device *dev = calloc(1, sizeof(*dev));
        if (!dev)
                return NULL;
        pthread_mutex_init(&dev->mu, NULL);
        dev->rec = *rec;
        dev->rec.ek_public = malloc(rec->ek_public_len ? rec->ek_public_len : 1);
        dev->rec.ak_public = malloc(rec->ak_public_len ? rec->ak_public_len : 1);
        if (!dev->rec.ek_public || !dev->rec.ak_public) {
                vs_device_done(&dev->rec);
                free(dev);
                return NULL;
        }
        memcpy(dev->rec.ek_public, rec->ek_public, rec->ek_public_len);
        memcpy(dev->rec.ak_public, rec->ak_public, rec->ak_public_len);
        if (vc_ak_load(rec->ak_public, rec->ak_public_len, &dev->ak, NULL) < 0) {
                vs_device_done(&dev->rec);
                free(dev);
                return NULL;
        }
        if (d->shared) {
                /* checked, and loaded again when this instance uses the device: every instance
                 * keeps every device of the fleet, most of them held by others */
                vc_ak_free(dev->ak);
                dev->ak = NULL;
        }
        /* the last quote's clock state survives restarts; the boot's log does not */
        dev->state.has_last = rec->has_last;
        dev->state.reset_count = rec->reset_count;
        dev->state.restart_count = rec->restart_count;
        dev->state.clock = rec->clock;
        TPM2B_PUBLIC ek = { 0 }; /* tss2-mu refuses to unmarshal into a non-zero size */
        size_t off = 0;
        if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(rec->ek_public, rec->ek_public_len, &off, &ek) == TSS2_RC_SUCCESS &&
            vc_ek_key_id(&ek.publicArea, dev->ek_key) == 0) {
                size_t k = key_bucket(d, dev->ek_key);
                device *other = registry_find_key_locked(d, dev->ek_key);
                if (other) /* enrolled before vouchd refused a second identity */
                        vlog(LOG_WARN, "device %s: its EK key is also device %s's (one TPM, two identities): "
                                       "revoke the one that should not be used",
                             rec->id, other->rec.id);
                dev->next_key = d->key_buckets[k];
                d->key_buckets[k] = dev;
        }
        size_t b = bucket(d, rec->id);
        dev->next = d->buckets[b];
        d->buckets[b] = dev;
        d->n_devices++;
        return dev;
}

static int load_one(const vs_device *rec, void *ud) {
        vouchd *d = ud;
        return registry_add_locked(d, rec) ? 0 : -ENOMEM;
}

int registry_load(vouchd *d) {
        int r;
        d->n_buckets = 1 << 17;
        d->buckets = calloc(d->n_buckets, sizeof(*d->buckets));
        d->key_buckets = calloc(d->n_buckets, sizeof(*d->key_buckets));
        d->wheel = calloc(REGISTRY_WHEEL, sizeof(*d->wheel));
        d->wheel_cursor = INT64_MIN;
        if (!d->buckets || !d->key_buckets || !d->wheel)
                return -ENOMEM;
        /* where the change feed stands, read before the devices: a change committed during
         * the load is then polled again (and applied once more: the same row), never missed */
        if (d->shared && (r = vs_device_change_last(d->store, &d->follow_after)) < 0)
                return r;
        return vs_device_foreach(d->store, load_one, d);
}

vc_ak *device_ak_locked(device *dev) {
        if (!dev->ak && vc_ak_load(dev->rec.ak_public, dev->rec.ak_public_len, &dev->ak, NULL) < 0)
                dev->ak = NULL;
        return dev->ak;
}

bool device_unused_locked(const device *dev) {
        return !dev->leased && !dev->lease_uses && !dev->lease_claims && !dev->session;
}

void device_drop_ak_locked(vouchd *d, device *dev) {
        if (!d->shared || !device_unused_locked(dev))
                return;
        pthread_mutex_lock(&dev->mu);
        vc_ak_free(dev->ak);
        dev->ak = NULL;
        pthread_mutex_unlock(&dev->mu);
}

static bool same_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
        return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

int registry_apply_locked(vouchd *d, const vs_device *row, registry_applied *ret) {
        *ret = (registry_applied) { 0 };
        device *dev = registry_find_locked(d, row->id);
        if (!dev) {
                if (!(dev = registry_add_locked(d, row)))
                        return -ENOMEM;
                *ret = (registry_applied) { .dev = dev, .added = true };
                return 0;
        }
        if (row->change <= dev->rec.change)
                return 0;
        bool held = device_held_locked(d, dev), was_allowed = dev->rec.approved && !dev->rec.revoked;
        /* the holder's AK is the newest: a re-enrollment happens under the lease */
        bool new_ak = !held &&
                      !same_bytes(dev->rec.ak_public, dev->rec.ak_public_len, row->ak_public, row->ak_public_len);
        vc_ak *ak = NULL;
        uint8_t *ak_copy = NULL;
        if (new_ak) {
                if (vc_ak_load(row->ak_public, row->ak_public_len, &ak, NULL) < 0)
                        return -EBADMSG;
                if (!(ak_copy = malloc(row->ak_public_len ? row->ak_public_len : 1))) {
                        vc_ak_free(ak);
                        return -ENOMEM;
                }
                memcpy(ak_copy, row->ak_public, row->ak_public_len);
        }
        if (new_ak) {
                /* as a re-enrollment here does (session.c, on_activate) */
                pthread_mutex_lock(&dev->mu);
                free(dev->rec.ak_public);
                dev->rec.ak_public = ak_copy;
                dev->rec.ak_public_len = row->ak_public_len;
                vc_ak_free(dev->ak);
                dev->ak = ak;
                if (d->shared && device_unused_locked(dev)) {
                        /* checked; loaded again when this instance uses the device */
                        vc_ak_free(dev->ak);
                        dev->ak = NULL;
                }
                vc_device_state_done(&dev->state);
                dev->state.has_last = row->has_last;
                dev->state.reset_count = row->reset_count;
                dev->state.restart_count = row->restart_count;
                dev->state.clock = row->clock;
                dev->clock_saved = false;
                pthread_mutex_unlock(&dev->mu);
                dev->rec.has_last = row->has_last;
                dev->rec.reset_count = row->reset_count;
                dev->rec.restart_count = row->restart_count;
                dev->rec.clock = row->clock;
        }
        if (!held) {
                dev->rec.enrolled_at = row->enrolled_at;
                dev->rec.ek_anchor = row->ek_anchor;
        }
        /* numbers are never taken back: one this instance used may not be stored */
        if (row->sequence > dev->rec.sequence)
                dev->rec.sequence = row->sequence;
        ret->golden = strcmp(dev->rec.golden, row->golden) != 0;
        snprintf(dev->rec.golden, sizeof(dev->rec.golden), "%s", row->golden);
        dev->rec.approved = row->approved;
        dev->rec.revoked = row->revoked;
        dev->rec.change = row->change;
        ret->dev = dev;
        ret->held = held;
        ret->withdrawn = was_allowed && !(row->approved && !row->revoked);
        ret->new_ak = new_ak;
        return 0;
}

void registry_free(vouchd *d) {
        for (size_t b = 0; d->buckets && b < d->n_buckets; b++)
                for (device *dev = d->buckets[b], *next; dev; dev = next) {
                        next = dev->next;
                        vs_device_done(&dev->rec);
                        vc_device_state_done(&dev->state);
                        vc_ak_free(dev->ak);
                        free(dev->latest);
                        free(dev);
                }
        free(d->buckets);
        free(d->key_buckets);
        free(d->wheel);
        d->buckets = NULL;
        d->key_buckets = NULL;
        d->wheel = NULL;
}

/* ---- the expiry wheel ---- */

static device **wheel_head(vouchd *d, int64_t key) {
        return &d->wheel[(uint64_t) key & (REGISTRY_WHEEL - 1)];
}

static void wheel_unlink(vouchd *d, device *dev) {
        if (!dev->in_wheel)
                return;
        if (dev->wheel_prev)
                dev->wheel_prev->wheel_next = dev->wheel_next;
        else
                *wheel_head(d, dev->wheel_key) = dev->wheel_next;
        if (dev->wheel_next)
                dev->wheel_next->wheel_prev = dev->wheel_prev;
        dev->wheel_next = dev->wheel_prev = NULL;
        dev->in_wheel = false;
}

void registry_wheel_update_locked(vouchd *d, device *dev) {
        if (!d->wheel)
                return;
        bool due = dev->latest && dev->latest_status == VOUCH__V1__TRUST_STATUS__TRUSTED && !dev->stale_queued;
        /* a deadline in a second already swept: the next one */
        int64_t key = dev->latest_deadline;
        if (d->wheel_cursor != INT64_MIN && key <= d->wheel_cursor)
                key = d->wheel_cursor + 1;
        if (dev->in_wheel && due && dev->wheel_key == key)
                return;
        wheel_unlink(d, dev);
        if (!due)
                return;
        device **head = wheel_head(d, key);
        dev->wheel_key = key;
        dev->wheel_prev = NULL;
        dev->wheel_next = *head;
        if (*head)
                (*head)->wheel_prev = dev;
        *head = dev;
        dev->in_wheel = true;
}

int registry_wheel_take_due_locked(vouchd *d, int64_t mono, int64_t wall, void (*fn)(vouchd *d, device *dev, void *ud),
                                   void *ud) {
        int64_t offset = wall - mono, moved = offset - d->wheel_offset;
        if (!d->wheel)
                return -1;
        if (d->wheel_cursor != INT64_MIN && mono < d->wheel_cursor) {
                /* every key left is above the old cursor, so above mono too */
                d->wheel_cursor = mono;
                d->wheel_offset = offset;
                return -1;
        }
        /* both clocks are read in whole seconds: their offset wobbles by one */
        if (d->wheel_cursor != INT64_MIN && (moved >= 2 || moved <= -2)) {
                d->wheel_offset = offset;
                return -1;
        }
        int64_t from = d->wheel_cursor == INT64_MIN || mono - d->wheel_cursor > REGISTRY_WHEEL
                               ? mono - REGISTRY_WHEEL + 1
                               : d->wheel_cursor + 1;
        /* before fn runs: a device it puts back goes to a second after this sweep's */
        d->wheel_cursor = mono;
        d->wheel_offset = offset;
        for (int64_t s = from; s <= mono; s++)
                for (device *dev = *wheel_head(d, s), *next; dev; dev = next) {
                        next = dev->wheel_next;
                        if (dev->wheel_key > mono) /* a later lap */
                                continue;
                        wheel_unlink(d, dev);
                        fn(d, dev, ud);
                }
        return 0;
}

golden_table *golden_table_ref(golden_table *t) {
        if (t)
                atomic_fetch_add(&t->refs, 1);
        return t;
}

void golden_table_unref(golden_table *t) {
        if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
                return;
        for (size_t i = 0; i < t->n; i++)
                vc_golden_free(t->sets[i]);
        free(t);
}

const vc_golden *golden_table_find(const golden_table *t, const char *name) {
        for (size_t i = 0; t && i < t->n; i++)
                if (strcmp(t->sets[i]->name, name) == 0)
                        return t->sets[i];
        return NULL;
}

static void lint_warn(const char *msg, void *userdata) {
        vlog(LOG_WARN, "golden: %s: %s", (const char *) userdata, msg);
}

int golden_table_load(const char *dir, golden_table **ret) {
        golden_table *t = calloc(1, sizeof(*t));
        DIR *dh;
        struct dirent *e;
        int r = 0;
        if (!t)
                return -ENOMEM;
        atomic_init(&t->refs, 1);
        dh = opendir(dir);
        if (!dh) {
                r = -errno;
                vlog(LOG_ERR, "golden: cannot open %s: %s", dir, strerror(errno));
                free(t);
                return r;
        }
        while ((e = readdir(dh))) {
                size_t l = strlen(e->d_name);
                char path[4096];
                if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                FILE *f = fopen(path, "rb");
                if (!f) {
                        vlog(LOG_ERR, "golden: cannot open %s: %s", path, strerror(errno));
                        r = -EIO;
                        break;
                }
                char *buf = malloc(VC_GOLDEN_MAX_FILE + 1);
                size_t n = buf ? fread(buf, 1, VC_GOLDEN_MAX_FILE + 1, f) : 0;
                fclose(f);
                vc_golden *g = NULL;
                vc_error err;
                char msg[512];
                if (!buf || vc_golden_parse(buf, n, &g, &err) < 0) {
                        vlog(LOG_ERR, "golden: %s: %s", path, buf ? vc_error_format(&err, msg, sizeof(msg)) : "out of memory");
                        free(buf);
                        r = -EBADMSG;
                        break;
                }
                free(buf);
                vc_golden_lint(g, lint_warn, path);
                if (golden_table_find(t, g->name) || t->n >= VOUCHD_MAX_GOLDEN) {
                        vlog(LOG_ERR, "golden: %s: %s", path,
                             t->n >= VOUCHD_MAX_GOLDEN ? "too many golden sets" : "a set of this name is already loaded");
                        vc_golden_free(g);
                        r = -EBADMSG;
                        break;
                }
                t->sets[t->n++] = g;
                vlog(LOG_INFO, "golden: loaded %s version %lld from %s", g->name, (long long) g->version, path);
        }
        closedir(dh);
        if (r < 0) {
                golden_table_unref(t);
                return r;
        }
        *ret = t;
        return 0;
}
