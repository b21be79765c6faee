/* SPDX-License-Identifier: Apache-2.0 */
/* store.h's front: which backend a store URL names, the queue of writes and the one writer
 * thread that commits them in batches (group commit), the callbacks, the record for /metrics.
 * The backends (store-sqlite.c, store-pg.c) run one batch as one transaction and do the
 * reads. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-backend.h"

#define BATCH_MAX VS_BATCH_MAX
#define GROUP_INTERVAL_NS 10000000L /* 10 ms: at most 100 commits a second */

#ifdef VOUCH_FAILPOINTS
bool vs__failpoint(const char *name) {
        const char *e = getenv("VOUCH_FAILPOINTS");
        size_t n = strlen(name);
        for (const char *p = e; p && (p = strstr(p, name)); p += n)
                if ((p == e || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
                        return true;
        return false;
}
#endif

void vs_device_done(vs_device *d) {
        free(d->ek_public);
        free(d->ak_public);
        d->ek_public = d->ak_public = NULL;
}

void vs_verdict_done(vs_verdict *v) {
        free(v->record);
        v->record = NULL;
}

void vs_cert_done(vs_cert *c) {
        free(c->der);
        c->der = NULL;
        c->der_len = 0;
}

void vs_ekcert_done(vs_ekcert *c) {
        free(c->url);
        free(c->der);
        c->url = NULL;
        c->der = NULL;
}

uint8_t *vs__dup_bytes(const uint8_t *p, size_t n) {
        uint8_t *d = malloc(n ? n : 1);
        if (d && n)
                memcpy(d, p, n);
        return d;
}

void vs_verdict_key_done(vs_verdict_key *k) {
        free(k->pem);
        k->pem = NULL;
}

static void lease_result_clear(vs_lease_result *l) {
        vs_device_done(&l->row);
        vs_verdict_done(&l->latest);
        memset(l, 0, sizeof(*l));
}

static void write_free(vs_write *w) {
        lease_result_clear(&w->lease);
        for (size_t i = 0; w->keys && i < w->n_items; i++)
                vs_verdict_key_done(&w->keys[i]);
        free(w->keys);
        free(w->goldens);
        vs_ekcert_done(&w->ekcert);
        vs_cert_done(&w->cert);
        vs_device_done(&w->dev);
        vs_verdict_done(&w->verdict);
        free(w);
}

void vs__set_lost(vs_store *s, const char *why) {
        pthread_mutex_lock(&s->lock);
        if (!s->lost) {
                s->lost = true;
                snprintf(s->lost_why, sizeof(s->lost_why), "%s", why);
        }
        pthread_mutex_unlock(&s->lock);
}

void vs__set_available(vs_store *s, bool available) {
        pthread_mutex_lock(&s->lock);
        if (available && s->stats.unavailable)
                s->stats.reconnects++;
        s->stats.unavailable = !available;
        pthread_mutex_unlock(&s->lock);
}

int vs__read_failed(vs_store *s, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->read_error, sizeof(s->read_error), fmt, ap);
        va_end(ap);
        return r;
}

void vs_run_settled(vs_store *s) {
        pthread_mutex_lock(&s->lock);
        s->unsettled = false;
        pthread_mutex_unlock(&s->lock);
}

bool vs_lost(vs_store *s, char *why, size_t n) {
        pthread_mutex_lock(&s->lock);
        bool lost = s->lost;
        if (why && n)
                snprintf(why, n, "%s", lost ? s->lost_why : "");
        pthread_mutex_unlock(&s->lock);
        return lost;
}

/* ---- a batch as the backend runs it ---- */

/* The clock updates of a batch, gathered per device and written once per device (the last
 * one queued wins), just before the batch's next whole-row write or at its end, in the same
 * transaction. A verdict does not touch its device's row: the device's sequence is read as
 * the largest of its verdicts' (store.h), so a verdict dirties the verdicts table only.
 * Open addressing over a power-of-two table at least twice the batch size. */
#define PENDING_SLOTS (2 * BATCH_MAX)

typedef struct pending_set {
        vs_write *slots[PENDING_SLOTS]; /* the last clock write of a device; NULL = free */
        uint32_t used[PENDING_SLOTS];   /* indexes of the slots in use, in first-use order */
        size_t n;
} pending_set;

static void pending_put(pending_set *ps, vs_write *w) {
        uint32_t h = 2166136261u;
        for (const char *p = w->dev.id; *p; p++)
                h = (h ^ (uint8_t) *p) * 16777619u;
        for (uint32_t i = h & (PENDING_SLOTS - 1);; i = (i + 1) & (PENDING_SLOTS - 1)) {
                if (!ps->slots[i]) {
                        ps->slots[i] = w;
                        ps->used[ps->n++] = i;
                        return;
                }
                if (strcmp(ps->slots[i]->dev.id, w->dev.id) == 0) {
                        ps->slots[i] = w;
                        return;
                }
        }
}

static void pending_flush(pending_set *ps, vs_write **plan, size_t *n) {
        for (size_t k = 0; k < ps->n; k++) {
                plan[(*n)++] = ps->slots[ps->used[k]];
                ps->slots[ps->used[k]] = NULL;
        }
        ps->n = 0;
}

/* The batch as a plan (store-backend.h): at most as many writes as the batch has. */
static size_t plan_batch(pending_set *ps, vs_write *batch, vs_write **plan) {
        size_t n = 0;
        for (vs_write *w = batch; w; w = w->next)
                switch (w->kind) {
                case VS_W_CLOCK:
                        pending_put(ps, w);
                        break;
                case VS_W_DEVICE:
                case VS_W_ENROLL:
                case VS_W_VERDICT_DEVICE:
                case VS_W_ADMIN:
                        /* a row write: the batch's earlier updates go first, in queue order */
                        pending_flush(ps, plan, &n);
                        plan[n++] = w;
                        break;
                case VS_W_VERDICT:
                case VS_W_EKCERT:
                case VS_W_KEYS:
                case VS_W_GOLDEN:
                case VS_W_VERIFIER_ID:
                case VS_W_DEVICE_CA_ID:
                case VS_W_LEASE_CLAIM:
                case VS_W_LEASE_RENEW:
                case VS_W_LEASE_RELEASE:
                case VS_W_LEASE_RELEASE_ALL:
                        plan[n++] = w;
                        break;
                }
        pending_flush(ps, plan, &n);
        return n;
}

static bool plan_has_verdict(vs_write *const *plan, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (plan[i]->kind == VS_W_VERDICT || plan[i]->kind == VS_W_VERDICT_DEVICE)
                        return true;
        return false;
}

static void deadline_after(struct timespec *t, long ms) {
        clock_gettime(CLOCK_MONOTONIC, t);
        t->tv_sec += ms / 1000;
        t->tv_nsec += (ms % 1000) * 1000000L;
        if (t->tv_nsec >= 1000000000L)
                t->tv_sec++, t->tv_nsec -= 1000000000L;
}

static void *writer_main(void *arg) {
        vs_store *s = arg;
        pending_set *ps = calloc(1, sizeof(*ps));
        vs_write **plan = calloc(BATCH_MAX, sizeof(*plan));
        for (;;) {
                pthread_mutex_lock(&s->lock);
                s->writer_idle = true;
                while (!s->head && !s->stop) {
                        long ms = -1;
                        if (s->ops->maintain) {
                                pthread_mutex_unlock(&s->lock);
                                ms = s->ops->maintain(s);
                                pthread_mutex_lock(&s->lock);
                                if (s->head || s->stop)
                                        break;
                        }
                        if (ms < 0) {
                                pthread_cond_wait(&s->wake, &s->lock);
                        } else {
                                struct timespec until;
                                deadline_after(&until, ms);
                                pthread_cond_timedwait(&s->wake, &s->lock, &until);
                        }
                }
                s->writer_idle = false;
                if (!s->head && s->stop) {
                        pthread_mutex_unlock(&s->lock);
                        break;
                }
                /* group commit: a commit costs the same (its fsync above all) for one write as
                 * for hundreds, so batches start at most every GROUP_INTERVAL_NS: a write
                 * queued soon after the last commit started waits for others to join it (at
                 * most that long, or until the batch is full); one after a quiet spell goes
                 * at once. Under load the queue fills during a commit and nothing waits. */
                struct timespec until = s->last_batch;
                until.tv_nsec += GROUP_INTERVAL_NS;
                if (until.tv_nsec >= 1000000000L)
                        until.tv_sec++, until.tv_nsec -= 1000000000L;
                while (!s->stop && s->queued < BATCH_MAX &&
                       pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
                        ;
                clock_gettime(CLOCK_MONOTONIC, &s->last_batch);
                /* take a batch */
                vs_write *batch = s->head, *last = batch;
                size_t n = 1;
                while (last->next && n < BATCH_MAX)
                        last = last->next, n++;
                s->head = last->next;
                if (!s->head)
                        s->tail = NULL;
                last->next = NULL;
                s->queued -= n;
                s->in_flight = n;
                bool lost = s->lost;
                pthread_mutex_unlock(&s->lock);

                char why[sizeof(s->stats.last_error)] = "";
                struct timespec t0, t1;
                int r;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                size_t m = ps && plan ? plan_batch(ps, batch, plan) : 0;
                if (!ps || !plan) {
                        r = -ENOMEM;
                        snprintf(why, sizeof(why), "out of memory");
                } else if (lost) {
                        r = -EIO;
                        vs_lost(s, why, sizeof(why));
                } else if (vs__failpoint("store-verdict") && plan_has_verdict(plan, m)) {
                        r = -ENOSPC;
                        snprintf(why, sizeof(why), "failpoint store-verdict (as if the disk were full)");
                } else {
                        r = s->ops->commit(s, plan, m, why, sizeof(why));
                }
                clock_gettime(CLOCK_MONOTONIC, &t1);

                while (batch) {
                        vs_write *next = batch->next;
                        if (batch->lease_done) {
                                if (r < 0)
                                        lease_result_clear(&batch->lease);
                                batch->lease_done(r, &batch->lease, batch->userdata);
                        } else if (batch->golden_done) {
                                if (r < 0)
                                        for (size_t i = 0; i < batch->n_items; i++)
                                                batch->goldens[i].stored_digest[0] = batch->goldens[i].stored_by[0] = 0;
                                batch->golden_done(r < 0 ? r : batch->result, batch->goldens, batch->n_items,
                                                   batch->userdata);
                        } else if (batch->done) {
                                batch->done(r, batch->userdata);
                        }
                        write_free(batch);
                        batch = next;
                }
                if (s->ops->after_batch)
                        s->ops->after_batch(s);
                pthread_mutex_lock(&s->lock);
                if (r == 0) {
                        s->stats.commits++;
                        s->stats.writes += n;
                        s->stats.commit_us += (uint64_t) ((t1.tv_sec - t0.tv_sec) * 1000000 +
                                                          (t1.tv_nsec - t0.tv_nsec) / 1000);
                } else {
                        s->stats.failures++;
                        memcpy(s->stats.last_error, why, sizeof(why));
                }
                s->in_flight = 0;
                if (!s->head)
                        pthread_cond_broadcast(&s->idle);
                pthread_mutex_unlock(&s->lock);
        }
        free(plan);
        free(ps);
        return NULL;
}

static int enqueue(vs_store *s, vs_write *w) {
        pthread_mutex_lock(&s->lock);
        if (s->stop) {
                pthread_mutex_unlock(&s->lock);
                write_free(w);
                return -ESHUTDOWN;
        }
        if (s->tail)
                s->tail->next = w;
        else
                s->head = w;
        s->tail = w;
        s->queued++;
        /* wakes the writer when it is idle or a batch is full, not for every write that
         * joins a batch it is gathering */
        if (s->writer_idle || s->queued == BATCH_MAX)
                pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

static int device_put(vs_store *s, vs_write_kind kind, const vs_device *d, vs_done_fn done, void *userdata) {
        vs_write *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kind = kind;
        w->dev = *d;
        w->dev.ek_public = vs__dup_bytes(d->ek_public, d->ek_public_len);
        w->dev.ak_public = vs__dup_bytes(d->ak_public, d->ak_public_len);
        w->done = done;
        w->userdata = userdata;
        if (!w->dev.ek_public || !w->dev.ak_public) {
                write_free(w);
                return -ENOMEM;
        }
        return enqueue(s, w);
}

int vs_device_put(vs_store *s, const vs_device *d, vs_done_fn done, void *userdata) {
        return device_put(s, VS_W_DEVICE, d, done, userdata);
}

int vs_device_put_enrollment(vs_store *s, const vs_device *d, vs_done_fn done, void *userdata) {
        return device_put(s, VS_W_ENROLL, d, done, userdata);
}

int vs_device_put_admin(vs_store *s, const vs_device *d, unsigned fields, vs_done_fn done, void *userdata) {
        if (!fields || (fields & ~(VS_ADMIN_GOLDEN | VS_ADMIN_ACCESS)))
                return -EINVAL;
        vs_write *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kind = VS_W_ADMIN;
        w->admin_fields = fields;
        snprintf(w->dev.id, sizeof(w->dev.id), "%s", d->id);
        snprintf(w->dev.golden, sizeof(w->dev.golden), "%s", d->golden);
        w->dev.approved = d->approved;
        w->dev.revoked = d->revoked;
        w->done = done;
        w->userdata = userdata;
        return enqueue(s, w);
}

int vs_device_put_clock(vs_store *s, const char *id, uint32_t reset_count, uint32_t restart_count, uint64_t clock,
                        vs_done_fn done, void *userdata) {
        vs_write *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kind = VS_W_CLOCK;
        snprintf(w->dev.id, sizeof(w->dev.id), "%s", id);
        w->dev.reset_count = reset_count;
        w->dev.restart_count = restart_count;
        w->dev.clock = clock;
        w->done = done;
        w->userdata = userdata;
        return enqueue(s, w);
}

int vs__seal(vs_verdict *v, uint64_t global_sequence) {
        free(v->record);
        v->record = NULL;
        v->record_len = 0;
        v->global_sequence = global_sequence;
        int r = v->seal(v, global_sequence, v->seal_userdata);
        v->global_sequence = global_sequence; /* the store's, whatever the hook did */
        if (r < 0)
                return r;
        return v->record && v->record_len ? 0 : -EINVAL;
}

/* A serial number as the store keeps it: 1 to VS_SERIAL_MAX lowercase hex digits. */
static bool serial_ok(const char *serial) {
        size_t n = strnlen(serial, VS_SERIAL_MAX + 1);
        return n > 0 && n <= VS_SERIAL_MAX && strspn(serial, "0123456789abcdef") == n;
}

static int verdict_put(vs_store *s, const vs_verdict *v, const vs_device *d, vs_done_fn done, void *userdata) {
        if (v->seal && v->global_sequence)
                return -EINVAL;
        if (v->cert && (!serial_ok(v->cert->serial) || !v->cert->der || !v->cert->der_len ||
                        v->cert->der_len > VS_CERT_DER_MAX || v->cert->not_after < v->cert->not_before))
                return -EINVAL;
        vs_write *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kind = d ? VS_W_VERDICT_DEVICE : VS_W_VERDICT;
        w->verdict = *v;
        w->verdict.record = vs__dup_bytes(v->record, v->record_len);
        w->verdict.cert = NULL;
        w->done = done;
        w->userdata = userdata;
        if (d) {
                w->dev = *d;
                w->dev.ek_public = vs__dup_bytes(d->ek_public, d->ek_public_len);
                w->dev.ak_public = vs__dup_bytes(d->ak_public, d->ak_public_len);
        }
        if (v->cert) {
                w->cert = *v->cert;
                snprintf(w->cert.device, sizeof(w->cert.device), "%s", v->device);
                w->cert.revoked_at = 0;
                w->cert.revoked_sequence = 0;
                w->cert.der = vs__dup_bytes(v->cert->der, v->cert->der_len);
                w->verdict.cert = &w->cert;
        }
        if (!w->verdict.record || (d && (!w->dev.ek_public || !w->dev.ak_public)) || (v->cert && !w->cert.der)) {
                write_free(w);
                return -ENOMEM;
        }
        return enqueue(s, w);
}

int vs_verdict_put(vs_store *s, const vs_verdict *v, vs_done_fn done, void *userdata) {
        return verdict_put(s, v, NULL, done, userdata);
}

int vs_verdict_put_with_device(vs_store *s, const vs_verdict *v, const vs_device *d, vs_done_fn done,
                               void *userdata) {
        return verdict_put(s, v, d, done, userdata);
}

int vs_ekcert_put(vs_store *s, const vs_ekcert *c, vs_done_fn done, void *userdata) {
        vs_write *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kind = VS_W_EKCERT;
        w->ekcert = *c;
        w->ekcert.url = strdup(c->url ? c->url : "");
        w->ekcert.der = vs__dup_bytes(c->der, c->der_len);
        w->done = done;
        w->userdata = userdata;
        if (!w->ekcert.url || !w->ekcert.der) {
                write_free(w);
                return -ENOMEM;
        }
        return enqueue(s, w);
}

/* ---- the deployment's identity (store.h) ---- */

int vs_verdict_keys_publish(vs_store *s, const vs_verdict_key *keys, size_t n, vs_done_fn done, void *userdata) {
        if (n > VS_KEYS_PUBLISH_MAX || (n && !keys))
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                size_t idlen = strnlen(keys[i].key_id, sizeof(keys[i].key_id));
                if (idlen == 0 || idlen > VS_KEY_ID_MAX || !keys[i].pem || !*keys[i].pem ||
                    strlen(keys[i].pem) > VS_KEY_PEM_MAX || keys[i].not_after < 0)
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(keys[i].key_id, keys[j].key_id) == 0)
                                return -EINVAL;
        }
        vs_write *w = calloc(1, sizeof(*w));
        if (!w || !(w->keys = calloc(n ? n : 1, sizeof(*w->keys)))) {
                free(w);
                return -ENOMEM;
        }
        w->kind = VS_W_KEYS;
        w->done = done;
        w->userdata = userdata;
        for (size_t i = 0; i < n; i++) {
                vs_verdict_key *k = &w->keys[w->n_items++];
                k->not_after = keys[i].not_after;
                snprintf(k->key_id, sizeof(k->key_id), "%s", keys[i].key_id);
                snprintf(k->instance, sizeof(k->instance), "%s", s->instance);
                if (!(k->pem = strdup(keys[i].pem))) {
                        write_free(w);
                        return -ENOMEM;
                }
        }
        return enqueue(s, w);
}

int vs_verifier_id_register(vs_store *s, const char *id, vs_done_fn done, void *userdata) {
        if (!id || !*id || strlen(id) > VS_VERIFIER_ID_MAX)
                return -EINVAL;
        vs_write *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kind = VS_W_VERIFIER_ID;
        snprintf(w->dev.id, sizeof(w->dev.id), "%s", id);
        w->done = done;
        w->userdata = userdata;
        return enqueue(s, w);
}

int vs_verifier_id_get(vs_store *s, char *buf, size_t n) {
        return s->ops->verifier_id_get(s, buf, n);
}

int vs_device_ca_register(vs_store *s, const char *id, vs_done_fn done, void *userdata) {
        if (!id || !*id || strlen(id) > VS_VERIFIER_ID_MAX)
                return -EINVAL;
        vs_write *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kind = VS_W_DEVICE_CA_ID;
        snprintf(w->dev.id, sizeof(w->dev.id), "%s", id);
        w->done = done;
        w->userdata = userdata;
        return enqueue(s, w);
}

int vs_device_ca_get(vs_store *s, char *buf, size_t n) {
        return s->ops->device_ca_get(s, buf, n);
}

/* ---- device certificates (store.h) ---- */

int vs_cert_list(vs_store *s, const char *device, vs_cert *out, size_t max) {
        if (!device || !*device || strlen(device) > VS_ID_MAX)
                return -EINVAL;
        if (max == 0)
                return 0;
        return s->ops->cert_list(s, device, out, max > INT32_MAX ? INT32_MAX : max);
}

int vs_cert_revoked(vs_store *s, int64_t not_after_min, int (*fn)(const vs_cert *c, void *ud), void *ud,
                    uint64_t *ret_state) {
        if (!fn || !ret_state)
                return -EINVAL;
        return s->ops->cert_revoked(s, not_after_min, fn, ud, ret_state);
}

int vs_verdict_keys_list(vs_store *s, vs_verdict_key *out, size_t max) {
        return s->ops->verdict_keys_list(s, out, max);
}

static int golden_cmp(const void *a, const void *b) {
        const vs_golden_digest *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : x->version < y->version ? -1 : x->version > y->version;
}

int vs_golden_register(vs_store *s, const vs_golden_digest *sets, size_t n, vs_golden_fn done, void *userdata) {
        if (n == 0 || n > VS_GOLDEN_REGISTER_MAX || !sets)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                size_t nl = strnlen(sets[i].name, sizeof(sets[i].name));
                size_t dl = strnlen(sets[i].digest, sizeof(sets[i].digest));
                if (nl == 0 || nl > VS_GOLDEN_NAME_MAX || dl == 0 || dl > VS_GOLDEN_DIGEST_MAX)
                        return -EINVAL;
        }
        vs_write *w = calloc(1, sizeof(*w));
        if (!w || !(w->goldens = calloc(n, sizeof(*w->goldens)))) {
                free(w);
                return -ENOMEM;
        }
        w->kind = VS_W_GOLDEN;
        w->n_items = n;
        w->golden_done = done;
        w->userdata = userdata;
        for (size_t i = 0; i < n; i++) {
                vs_golden_digest *g = &w->goldens[i];
                snprintf(g->name, sizeof(g->name), "%s", sets[i].name);
                snprintf(g->digest, sizeof(g->digest), "%s", sets[i].digest);
                g->version = sets[i].version;
        }
        /* one order for every instance's registrations, and for the backends' answers */
        qsort(w->goldens, n, sizeof(*w->goldens), golden_cmp);
        for (size_t i = 1; i < n; i++)
                if (golden_cmp(&w->goldens[i - 1], &w->goldens[i]) == 0) {
                        write_free(w);
                        return -EINVAL;
                }
        return enqueue(s, w);
}

int vs__golden_outcome(vs_store *s, vs_write *w) {
        w->result = 0;
        for (size_t i = 0; i < w->n_items; i++)
                if (w->goldens[i].stored_digest[0] && strcmp(w->goldens[i].stored_digest, w->goldens[i].digest) != 0)
                        w->result = -EEXIST;
        for (size_t i = 0; w->result == 0 && i < w->n_items; i++) {
                vs_golden_digest *g = &w->goldens[i];
                if (g->stored_digest[0])
                        continue;
                snprintf(g->stored_digest, sizeof(g->stored_digest), "%s", g->digest);
                snprintf(g->stored_by, sizeof(g->stored_by), "%s", s->instance);
        }
        return w->result;
}

int vs_golden_get(vs_store *s, const char *name, int64_t version, vs_golden_digest *ret) {
        if (!name || !*name || strlen(name) > VS_GOLDEN_NAME_MAX)
                return -EINVAL;
        return s->ops->golden_get(s, name, version, ret);
}

/* ---- leases (store.h) ---- */

static int lease_write(vs_store *s, vs_write_kind kind, const char *device, int64_t ttl_ms, vs_lease_fn lease_done,
                       vs_done_fn done, void *userdata) {
        if (device && (!*device || strlen(device) > VS_ID_MAX))
                return -EINVAL;
        if ((kind == VS_W_LEASE_CLAIM || kind == VS_W_LEASE_RENEW) && (ttl_ms < 1 || ttl_ms > VS_LEASE_TTL_MAX_MS))
                return -EINVAL;
        vs_write *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->kind = kind;
        if (device)
                snprintf(w->dev.id, sizeof(w->dev.id), "%s", device);
        w->ttl_ms = ttl_ms;
        w->lease_done = lease_done;
        w->done = done;
        w->userdata = userdata;
        return enqueue(s, w);
}

int vs_lease_claim(vs_store *s, const char *device, int64_t ttl_ms, vs_lease_fn done, void *userdata) {
        if (!device)
                return -EINVAL;
        return lease_write(s, VS_W_LEASE_CLAIM, device, ttl_ms, done, NULL, userdata);
}

int vs_lease_renew_all(vs_store *s, int64_t ttl_ms, vs_lease_fn done, void *userdata) {
        return lease_write(s, VS_W_LEASE_RENEW, NULL, ttl_ms, done, NULL, userdata);
}

int vs_lease_release(vs_store *s, const char *device, vs_done_fn done, void *userdata) {
        if (!device)
                return -EINVAL;
        return lease_write(s, VS_W_LEASE_RELEASE, device, 0, NULL, done, userdata);
}

int vs_lease_release_all(vs_store *s, vs_done_fn done, void *userdata) {
        return lease_write(s, VS_W_LEASE_RELEASE_ALL, NULL, 0, NULL, done, userdata);
}

int vs_lease_get(vs_store *s, const char *device, vs_lease_result *ret) {
        if (!device || !*device || strlen(device) > VS_ID_MAX)
                return -EINVAL;
        return s->ops->lease_get(s, device, ret);
}

size_t vs_queue_depth(vs_store *s) {
        pthread_mutex_lock(&s->lock);
        size_t n = s->queued + s->in_flight;
        pthread_mutex_unlock(&s->lock);
        return n;
}

void vs_get_stats(vs_store *s, vs_stats *ret) {
        pthread_mutex_lock(&s->lock);
        *ret = s->stats;
        pthread_mutex_unlock(&s->lock);
}

void vs_flush(vs_store *s) {
        pthread_mutex_lock(&s->lock);
        while (s->head || s->in_flight)
                pthread_cond_wait(&s->idle, &s->lock);
        pthread_mutex_unlock(&s->lock);
}

/* ---- reads ---- */

int vs_device_get(vs_store *s, const char *id, vs_device *ret) {
        return s->ops->device_get(s, id, ret);
}

int vs_device_foreach(vs_store *s, int (*fn)(const vs_device *d, void *ud), void *ud) {
        return s->ops->device_foreach(s, fn, ud);
}

int vs_verdict_history(vs_store *s, const char *device, vs_verdict *out, size_t max) {
        return s->ops->verdict_history(s, device, out, max);
}

int vs_verdict_latest(vs_store *s, const char *device, vs_verdict *ret) {
        int n = vs_verdict_history(s, device, ret, 1);
        return n < 0 ? n : n == 0 ? -ENOENT : 0;
}

int vs_verdict_since(vs_store *s, uint64_t since, vs_verdict *out, size_t max) {
        if (vs__failpoint("store-read-since")) { /* as a damaged page met mid-scan */
                pthread_mutex_lock(&s->rlock);
                vs__read_failed(s, 0, "failpoint store-read-since (as if a page were damaged)");
                pthread_mutex_unlock(&s->rlock);
                return -EUCLEAN;
        }
        return s->ops->verdict_since(s, since, out, max);
}

int vs_verdict_last_global(vs_store *s, uint64_t *ret) {
        return s->ops->verdict_last_global(s, ret);
}

int vs_device_changes_since(vs_store *s, uint64_t after, vs_device *out, size_t max) {
        return s->ops->device_changes_since(s, after, out, max);
}

int vs_device_change_last(vs_store *s, uint64_t *ret) {
        return s->ops->device_change_last(s, ret);
}

int vs_ekcert_get(vs_store *s, const char *key, vs_ekcert *ret) {
        return s->ops->ekcert_get(s, key, ret);
}

void vs_read_error(vs_store *s, char *buf, size_t n) {
        pthread_mutex_lock(&s->rlock);
        snprintf(buf, n, "%s", s->read_error);
        pthread_mutex_unlock(&s->rlock);
}

/* ---- opening and closing ---- */

/* The backend a store URL names, and what it is given: "postgresql://..." and
 * "postgres://..." (libpq connection URIs, whole), "sqlite:PATH", or a plain path. */
static int store_backend_of(const char *url, const vs_backend **ret_ops, const char **ret_target, char *err,
                            size_t errlen) {
        if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
                *ret_ops = &vs_backend_pg;
                *ret_target = url;
                return 0;
        }
        if (strncmp(url, "sqlite:", 7) == 0) {
                if (!url[7]) {
                        snprintf(err, errlen, "store URL \"sqlite:\" names no file (sqlite:PATH)");
                        return -EINVAL;
                }
                *ret_ops = &vs_backend_sqlite;
                *ret_target = url + 7;
                return 0;
        }
        /* "scheme://..." of another kind is a mistake, not a file name */
        const char *p = url;
        while (isalnum((unsigned char) *p) || *p == '+' || *p == '-' || *p == '.')
                p++;
        if (p != url && strncmp(p, "://", 3) == 0) {
                snprintf(err, errlen, "store URL \"%.200s\": unknown kind \"%.*s\" (sqlite:PATH, a path, or "
                                      "postgresql://...)", url, (int) (p - url), url);
                return -EINVAL;
        }
        if (!*url) {
                snprintf(err, errlen, "empty store path");
                return -EINVAL;
        }
        *ret_ops = &vs_backend_sqlite;
        *ret_target = url;
        return 0;
}

static void store_free(vs_store *s) {
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->rlock);
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->idle);
        free(s->target);
        free(s);
}

/* An instance name: 1 to VS_INSTANCE_MAX of [A-Za-z0-9._-] (it shows in logs and SQL rows). */
static bool instance_name_ok(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > VS_INSTANCE_MAX)
                return false;
        for (const char *p = name; *p; p++)
                if (!isalnum((unsigned char) *p) && *p != '.' && *p != '_' && *p != '-')
                        return false;
        return true;
}

int vs_open_ex(const char *url, const vs_open_options *opt, vs_store **ret, vs_open_info *info, char *err,
               size_t errlen) {
        static const vs_open_options defaults = { 0 };
        const vs_backend *ops = NULL;
        const char *target = NULL;
        int r;
        if (!opt)
                opt = &defaults;
        const char *instance = opt->instance && *opt->instance ? opt->instance : "default";
        if (!instance_name_ok(instance)) {
                snprintf(err, errlen, "instance name \"%.80s\" is not 1 to %d of A-Z a-z 0-9 . _ -", instance,
                         VS_INSTANCE_MAX);
                return -EINVAL;
        }
        if ((r = store_backend_of(url, &ops, &target, err, errlen)) < 0)
                return r;
        vs_store *s = calloc(1, sizeof(*s));
        if (!s || !(s->target = strdup(target))) {
                free(s);
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        s->ops = ops;
        s->history_keep = opt->history_keep ? opt->history_keep : 1;
        snprintf(s->instance, sizeof(s->instance), "%s", instance);
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_init(&s->rlock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->wake, &ca);
        pthread_condattr_destroy(&ca);
        pthread_cond_init(&s->idle, NULL);
        if ((r = ops->open(s, s->target, opt->flags, info, err, errlen)) < 0) {
                store_free(s);
                return r;
        }
        if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
                snprintf(err, errlen, "cannot start the store's writer thread");
                ops->close(s, false);
                store_free(s);
                return -EAGAIN;
        }
        s->writer_started = true;
        *ret = s;
        return 0;
}

int vs_open(const char *url, size_t history_keep, unsigned flags, vs_store **ret, vs_open_info *info, char *err,
            size_t errlen) {
        vs_open_options opt = { .history_keep = history_keep, .flags = flags, .instance = "default" };
        return vs_open_ex(url, &opt, ret, info, err, errlen);
}

const char *vs_instance(vs_store *s) {
        return s->instance;
}

void vs_close(vs_store *s) {
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        if (s->writer_started)
                pthread_join(s->writer, NULL);
        /* every write of this run stored, and an unclean previous run acted on: the next
         * open may trust the latest verdicts */
        s->ops->close(s, s->stats.failures == 0 && !s->unsettled && !s->lost);
        store_free(s);
}
