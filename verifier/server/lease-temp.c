/* SPDX-License-Identifier: Apache-2.0 */
/* TEMPORARY, branch h-follow only: a minimal lease_get / lease_put (lease.h) so that admin.c
 * and the follower can be built and tested before the h-lease branch's lease.c is merged.
 * DELETE THIS FILE (and its line in meson.build) when lease.c lands: the two define the same
 * functions, so the link fails until one goes. No heartbeat, no local deadline, no
 * lease_release_all: a claim pushes the instance's heartbeat LEASE_TTL_MS ahead, and that
 * is all. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "vouchd.h"

/* uses per device: a short list, under its own lock (the real lease.c keeps a count in the
 * device) */
typedef struct use {
        device *dev;
        unsigned n;
        struct use *next;
} use;

static pthread_mutex_t uses_lock = PTHREAD_MUTEX_INITIALIZER;
static use *uses;

static use *find_use(device *dev) {
        for (use *u = uses; u; u = u->next)
                if (u->dev == dev)
                        return u;
        return NULL;
}

static int add_use(device *dev) {
        pthread_mutex_lock(&uses_lock);
        use *u = find_use(dev);
        if (!u && (u = calloc(1, sizeof(*u)))) {
                u->dev = dev;
                u->next = uses;
                uses = u;
        }
        if (u)
                u->n++;
        pthread_mutex_unlock(&uses_lock);
        return u ? 0 : -ENOMEM;
}

typedef struct claim {
        vouchd *d;
        device *dev;
        lease_fn cb;
        void *userdata;
} claim;

static void claimed(int error, const vs_lease_result *res, void *userdata) {
        claim *c = userdata;
        vouchd *d = c->d;
        int r = error;
        if (r == 0 && !res->granted)
                r = -EBUSY;
        if (r == 0) {
                /* reloaded: another instance may have changed the row since */
                vs_device row;
                registry_applied a;
                r = vs_device_get(d->store, c->dev->rec.id, &row);
                if (r == 0) {
                        pthread_mutex_lock(&d->seq_lock);
                        pthread_mutex_lock(&d->lock);
                        c->dev->rec.change = 0; /* whatever was applied before: this is newer */
                        r = registry_apply_locked(d, &row, true, &a);
                        pthread_mutex_unlock(&d->lock);
                        pthread_mutex_unlock(&d->seq_lock);
                        vs_device_done(&row);
                }
                if (r == 0)
                        r = add_use(c->dev);
                if (r == 0) {
                        pthread_mutex_lock(&d->lock);
                        c->dev->leased = true;
                        pthread_mutex_unlock(&d->lock);
                } else {
                        vs_lease_release(d->store, c->dev->rec.id, NULL, NULL);
                }
        }
        c->cb(d, c->dev, r, res ? res->holder : "", c->userdata);
        free(c);
}

int lease_get(vouchd *d, device *dev, lease_fn cb, void *userdata) {
        pthread_mutex_lock(&d->lock);
        bool held = device_held_locked(d, dev);
        pthread_mutex_unlock(&d->lock);
        if (held) {
                int r = d->shared ? add_use(dev) : 0;
                if (r < 0)
                        return r;
                cb(d, dev, 0, "", userdata);
                return 0;
        }
        claim *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (claim) { .d = d, .dev = dev, .cb = cb, .userdata = userdata };
        int r = vs_lease_claim(d->store, dev->rec.id, LEASE_TTL_MS, claimed, c);
        if (r < 0)
                free(c);
        return r;
}

void lease_put(vouchd *d, device *dev) {
        if (!d->shared)
                return;
        pthread_mutex_lock(&uses_lock);
        use *u = find_use(dev), **p = &uses;
        bool last = u && --u->n == 0;
        if (last) {
                while (*p != u)
                        p = &(*p)->next;
                *p = u->next;
                free(u);
        }
        pthread_mutex_unlock(&uses_lock);
        if (!last)
                return;
        pthread_mutex_lock(&d->lock);
        dev->leased = false;
        pthread_mutex_unlock(&d->lock);
        vs_lease_release(d->store, dev->rec.id, NULL, NULL);
}
