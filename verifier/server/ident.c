/* SPDX-License-Identifier: Apache-2.0 */
/* The deployment's identity on a shared store (ident.h): verdict keys published and
 * gathered, golden sets registered. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ident.h"
#include "keys.h"
#include "verdict-check.h"

/* The most published keys read from the store: 17 per instance (the active key and
 * VERDICT_MAX_RETIRED), for 60 instances. */
#define IDENT_ROWS_MAX 1024

/* A write's answer, waited for on the calling thread (never an event loop's). */
typedef struct waiter {
        pthread_mutex_t mu;
        pthread_cond_t cond;
        bool done;
        int error;
        /* a golden registration's answers */
        vs_golden_digest *sets;
        size_t n;
} waiter;

static void waiter_init(waiter *w) {
        *w = (waiter) { .done = false };
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cond, NULL);
}

static void waiter_signal(waiter *w, int error) {
        pthread_mutex_lock(&w->mu);
        w->error = error;
        w->done = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->mu);
}

/* Waits for the answer (the store answers every write it queued, committed or failed). */
static int waiter_wait(waiter *w) {
        pthread_mutex_lock(&w->mu);
        while (!w->done)
                pthread_cond_wait(&w->cond, &w->mu);
        int r = w->error;
        pthread_mutex_unlock(&w->mu);
        return r;
}

static void waiter_destroy(waiter *w) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cond);
}

static void on_written(int error, void *ud) {
        waiter_signal(ud, error);
}

static void on_registered(int error, const vs_golden_digest *sets, size_t n, void *ud) {
        waiter *w = ud;
        if (w->sets && n == w->n) /* the answers, copied before the waiter wakes */
                memcpy(w->sets, sets, n * sizeof(*sets));
        waiter_signal(w, error);
}

/* The key's public half as PEM (malloc), or NULL. */
static char *pub_pem(EVP_PKEY *k) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL, *pem = NULL;
        if (b && PEM_write_bio_PUBKEY(b, k) == 1) {
                long len = BIO_get_mem_data(b, &data);
                if (len > 0)
                        pem = strndup(data, (size_t) len);
        }
        BIO_free(b);
        return pem;
}

/* The store's last failure, for a write that failed. */
static void store_why(vouchd *d, int r, char *err, size_t n) {
        vs_stats st;
        vs_get_stats(d->store, &st);
        snprintf(err, n, "%s", st.last_error[0] ? st.last_error : strerror(-r));
}

int ident_check_ca(vouchd *d, char *err, size_t n) {
        char stored[VS_VERIFIER_ID_MAX + 1];
        waiter w;
        waiter_init(&w);
        int r = vs_verifier_id_register(d->store, d->verifier_id, on_written, &w);
        if (r == 0)
                r = waiter_wait(&w);
        waiter_destroy(&w);
        if (r < 0) {
                store_why(d, r, err, n);
                return r;
        }
        if ((r = vs_verifier_id_get(d->store, stored, sizeof(stored))) < 0) {
                vs_read_error(d->store, err, n);
                return r;
        }
        if (strcmp(stored, d->verifier_id) == 0)
                return 0;
        snprintf(err, n, "%s/ca.pem is not the deployment's CA (its verifier id is %.16s..., the store's %.16s...): "
                         "agents trust one CA. Make a further instance's state dir with vouchd init --state-dir NEW "
                         "--join EXISTING (EXISTING: an instance's state dir)", d->cfg.state_dir, d->verifier_id, stored);
        return -EXDEV;
}

int ident_publish_keys(vouchd *d, const verdict_keys *k, bool stopping, char *err, size_t n) {
        vs_verdict_key pub[1 + VERDICT_MAX_RETIRED] = { 0 };
        size_t m = 0;
        int r = 0;
        int64_t lifetime = (int64_t) d->cfg.interval * d->cfg.verdict_ttl_intervals;
        for (size_t i = 0; i < 1 + k->n_retired && r == 0; i++) {
                const vkey *v = i == 0 ? &k->active : &k->retired[i - 1];
                vs_verdict_key *p = &pub[m];
                snprintf(p->key_id, sizeof(p->key_id), "%s", v->id);
                p->not_after = i > 0 ? v->not_after : stopping ? vclock_wall() + lifetime + 1 : 0;
                if (!(p->pem = pub_pem(v->pkey)))
                        r = -ENOMEM;
                else
                        m++;
        }
        waiter w;
        waiter_init(&w);
        if (r == 0 && (r = vs_verdict_keys_publish(d->store, pub, m, on_written, &w)) == 0)
                r = waiter_wait(&w);
        waiter_destroy(&w);
        if (r < 0)
                store_why(d, r, err, n);
        for (size_t i = 0; i < m; i++)
                vs_verdict_key_done(&pub[i]);
        ERR_clear_error();
        return r;
}

int ident_register_golden(vouchd *d, const golden_table *t, char *err, size_t n) {
        vs_golden_digest *sets = calloc(t->n ? t->n : 1, sizeof(*sets));
        int r = 0;
        if (!sets) {
                snprintf(err, n, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < t->n && r == 0; i++) {
                const vc_golden *g = t->sets[i];
                if (strlen(g->name) > VS_GOLDEN_NAME_MAX) {
                        snprintf(err, n, "golden set \"%.60s...\": a name of more than %d characters cannot be registered",
                                 g->name, VS_GOLDEN_NAME_MAX);
                        r = -EINVAL;
                        break;
                }
                snprintf(sets[i].name, sizeof(sets[i].name), "%s", g->name);
                sets[i].version = g->version;
                for (size_t k = 0; k < sizeof(g->fingerprint); k++)
                        snprintf(sets[i].digest + 2 * k, 3, "%02x", g->fingerprint[k]);
        }
        if (r < 0 || t->n == 0) {
                free(sets);
                return r;
        }
        waiter w;
        waiter_init(&w);
        w.sets = sets; /* answered in place (sorted by name and version) */
        w.n = t->n;
        if ((r = vs_golden_register(d->store, sets, t->n, on_registered, &w)) == 0)
                r = waiter_wait(&w);
        waiter_destroy(&w);
        if (r == -EEXIST) {
                size_t bad = 0;
                const vs_golden_digest *first = NULL;
                for (size_t i = 0; i < t->n; i++) {
                        const vs_golden_digest *g = &sets[i];
                        if (!g->stored_digest[0] || strcmp(g->stored_digest, g->digest) == 0)
                                continue;
                        if (!first)
                                first = g;
                        bad++;
                        vlog(LOG_ERR, "golden set \"%s\" version %lld in %s has content %s, but the deployment's "
                                      "\"%s\" version %lld is %s (registered by instance %s): a set that changed needs "
                                      "a new version",
                             g->name, (long long) g->version, d->cfg.golden_dir, g->digest, g->name,
                             (long long) g->version, g->stored_digest, g->stored_by);
                }
                if (first)
                        snprintf(err, n, "%zu golden set%s disagree%s with the deployment's: \"%s\" version %lld is %s "
                                         "here and %s in the store (registered by instance %s)",
                                 bad, bad == 1 ? "" : "s", bad == 1 ? "s" : "", first->name, (long long) first->version,
                                 first->digest, first->stored_digest, first->stored_by);
                else
                        snprintf(err, n, "the golden sets disagree with the deployment's");
        } else if (r < 0) {
                store_why(d, r, err, n);
        }
        free(sets);
        return r;
}

/* ---- the keys GET /v1/keys serves ---- */

void ident_keys_free(ident_keys *k) {
        for (size_t i = 0; k->keys && i < k->n; i++)
                EVP_PKEY_free(k->keys[i].pkey);
        free(k->keys);
        *k = (ident_keys) { 0 };
}

static vkey *find_key(ident_keys *k, const char *id) {
        for (size_t i = 0; i < k->n; i++)
                if (strcmp(k->keys[i].id, id) == 0)
                        return &k->keys[i];
        return NULL;
}

/* One key of the deployment's: active (0) wins over a date, a later date over an earlier. */
static void merge_not_after(vkey *v, int64_t not_after) {
        if (v->not_after != 0 && (not_after == 0 || not_after > v->not_after))
                v->not_after = not_after;
}

/* Active keys first, then by key id. */
static int key_order(const void *a, const void *b) {
        const vkey *x = a, *y = b;
        if ((x->not_after == 0) != (y->not_after == 0))
                return x->not_after == 0 ? -1 : 1;
        return strcmp(x->id, y->id);
}

/* A published row as a key: its PEM a public key whose id is the row's. */
static EVP_PKEY *row_key(const vs_verdict_key *row) {
        BIO *b = BIO_new_mem_buf(row->pem, -1);
        EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        char id[65];
        BIO_free(b);
        if (k && (vk_key_id(k, id) < 0 || strcmp(id, row->key_id) != 0)) {
                EVP_PKEY_free(k);
                k = NULL;
        }
        ERR_clear_error();
        return k;
}

int ident_keys_get(vouchd *d, int64_t now, ident_keys *ret, char *err, size_t n) {
        ident_keys k = { 0 };
        vs_verdict_key *rows = NULL;
        int r = 0, got = 0;
        size_t cap = 1 + VERDICT_MAX_RETIRED;
        /* this instance's own, as it signs with them (a SIGHUP may swap them meanwhile) */
        pthread_mutex_lock(&d->seq_lock);
        const verdict_keys *own = &d->keys;
        if (d->shared) {
                pthread_mutex_unlock(&d->seq_lock);
                rows = calloc(IDENT_ROWS_MAX, sizeof(*rows));
                if (!rows) {
                        snprintf(err, n, "out of memory");
                        return -ENOMEM;
                }
                /* read before seq_lock is taken again: never held while the store is read */
                if ((got = vs_verdict_keys_list(d->store, rows, IDENT_ROWS_MAX)) < 0) {
                        vs_read_error(d->store, err, n);
                        free(rows);
                        return -EIO;
                }
                if (got == IDENT_ROWS_MAX)
                        vlog(LOG_WARN, "the store holds %d or more published verdict keys: only the first %d are read",
                             IDENT_ROWS_MAX, IDENT_ROWS_MAX);
                cap += (size_t) got;
                pthread_mutex_lock(&d->seq_lock);
        }
        if (!(k.keys = calloc(cap, sizeof(*k.keys))))
                r = -ENOMEM;
        for (size_t i = 0; r == 0 && i < 1 + own->n_retired; i++) {
                const vkey *v = i == 0 ? &own->active : &own->retired[i - 1];
                if (!v->pkey || (i > 0 && v->not_after <= now))
                        continue; /* past its end date (the sweep drops it within a second) */
                k.keys[k.n] = *v;
                EVP_PKEY_up_ref(v->pkey);
                k.n++;
        }
        pthread_mutex_unlock(&d->seq_lock);
        size_t own_n = k.n;
        for (int i = 0; r == 0 && i < got; i++) {
                vkey *v;
                if (rows[i].not_after != 0 && rows[i].not_after <= now)
                        continue;
                if ((v = find_key(&k, rows[i].key_id))) {
                        merge_not_after(v, rows[i].not_after);
                        continue;
                }
                EVP_PKEY *pk = row_key(&rows[i]);
                if (!pk) {
                        vlog(LOG_WARN, "the verdict key %.16s published by instance %s is not a public key of that id: "
                                       "not served", rows[i].key_id, rows[i].instance);
                        continue;
                }
                v = &k.keys[k.n++];
                *v = (vkey) { .pkey = pk, .not_after = rows[i].not_after };
                snprintf(v->id, sizeof(v->id), "%s", rows[i].key_id);
        }
        /* this instance's own keys in their order (the active one first), then the others */
        if (k.n > own_n)
                qsort(k.keys + own_n, k.n - own_n, sizeof(*k.keys), key_order);
        static atomic_bool warned;
        if (k.n > VV_KEYS_MAX && !atomic_exchange(&warned, true))
                vlog(LOG_WARN, "the deployment publishes %zu verdict keys, more than a keys file may hold (%d): relying "
                               "parties cannot read it. Give the instances the same keys (docs/vouchd.md, key rotation)",
                     k.n, VV_KEYS_MAX);
        for (int i = 0; i < got; i++)
                vs_verdict_key_done(&rows[i]);
        free(rows);
        if (r < 0) {
                ident_keys_free(&k);
                snprintf(err, n, "out of memory");
                return r;
        }
        *ret = k;
        return 0;
}
