/* SPDX-License-Identifier: Apache-2.0 */
/* Cache of evaluated states. The key is SHA-256 over (golden name, version, attested PCR
 * mask, and for every replayed bank the values of the attested PCRs): equal PCR values in
 * a bank mean the same sequence of extended digests, i.e. the same measured boot, so the
 * trust decision for that state can be reused until the golden set changes (its version
 * is part of the key). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "golden-internal.h"
#include "golden.h"
#include "hash.h"

typedef struct entry {
        uint8_t key[32];
        bool used;
        uint32_t next;          /* bucket chain, index + 1; 0 ends */
        size_t bytes;           /* vc_evaluation_heap_size(&eval), counted once at put */
        vc_evaluation eval;
} entry;

struct vc_eval_cache {
        size_t max, n_buckets, head; /* head: next slot to (re)use, FIFO eviction */
        entry *entries;
        uint32_t *buckets;      /* index + 1 */
        vc_hasher *hasher;
        uint64_t hits, misses;
        size_t count;
        size_t bytes;           /* vc_evaluation_heap_size of the entries */
};

int vc_eval_cache_new(size_t max_entries, vc_eval_cache **ret) {
        vc_eval_cache *c = calloc(1, sizeof(*c));
        if (!c || max_entries == 0 || max_entries > (1u << 24)) {
                free(c);
                return c ? -EINVAL : -ENOMEM;
        }
        c->max = max_entries;
        c->n_buckets = 1;
        while (c->n_buckets < 2 * max_entries)
                c->n_buckets <<= 1;
        c->entries = calloc(max_entries, sizeof(*c->entries));
        c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
        if (!c->entries || !c->buckets || vc_hasher_new(&c->hasher) < 0) {
                vc_eval_cache_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

vc_eval_cache *vc_eval_cache_free(vc_eval_cache *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; c->entries && i < c->max; i++)
                vc_evaluation_done(&c->entries[i].eval);
        free(c->entries);
        free(c->buckets);
        vc_hasher_free(c->hasher);
        free(c);
        return NULL;
}

void vc_eval_cache_stats(const vc_eval_cache *c, uint64_t *hits, uint64_t *misses, size_t *entries) {
        if (hits)
                *hits = c->hits;
        if (misses)
                *misses = c->misses;
        if (entries)
                *entries = c->count;
}

size_t vc_eval_cache_bytes(const vc_eval_cache *c) {
        return c->bytes;
}

size_t vc_evaluation_heap_size(const vc_evaluation *e) {
        size_t n = e->n_findings * sizeof(*e->findings);
        for (size_t i = 0; i < e->n_findings; i++)
                n += strlen(e->findings[i].expected) + strlen(e->findings[i].actual) +
                     strlen(e->findings[i].explanation) + 3;
        return n;
}

int vc_eval_key(vc_hasher *h, const vc_golden *g, const vc_pcr_set *replayed, uint32_t attested, uint8_t key[32]) {
        /* fingerprint, name NUL, version, attested, then per bank: alg, mask, values */
        uint8_t stack[8192];
        size_t cap = 32 + strlen(g->name) + 1 + 12 + replayed->n_banks * (6 + VC_PCR_COUNT * VC_MAX_DIGEST);
        uint8_t *buf = cap <= sizeof(stack) ? stack : malloc(cap), *p = buf;
        if (!buf)
                return -ENOMEM;
        memcpy(p, g->fingerprint, 32);
        p += 32;
        memcpy(p, g->name, strlen(g->name) + 1);
        p += strlen(g->name) + 1;
        memcpy(p, &g->version, 8);
        memcpy(p + 8, &attested, 4);
        p += 12;
        for (int b = 0; b < VC_NUM_ALGS; b++) {
                const vc_pcr_bank *bank = vc_pcr_set_find(replayed, vc_alg_at(b)->alg);
                if (!bank)
                        continue;
                uint32_t m = bank->mask & attested;
                memcpy(p, &bank->alg, 2);
                memcpy(p + 2, &m, 4);
                p += 6;
                for (unsigned i = 0; i < VC_PCR_COUNT; i++)
                        if (m & (1u << i)) {
                                memcpy(p, bank->values[i], bank->size);
                                p += bank->size;
                        }
        }
        int r = vc_hasher_digest(h, VC_ALG_SHA256, buf, (size_t) (p - buf), key);
        if (buf != stack)
                free(buf);
        return r;
}

int vc_evaluation_copy(vc_evaluation *dst, const vc_evaluation *src) {
        *dst = (vc_evaluation) { .trust = src->trust };
        if (!src->n_findings)
                return 0;
        dst->findings = calloc(src->n_findings, sizeof(*dst->findings));
        if (!dst->findings)
                return -ENOMEM;
        for (size_t i = 0; i < src->n_findings; i++) {
                vc_finding *d = &dst->findings[i];
                const vc_finding *s = &src->findings[i];
                *d = *s;
                d->expected = strdup(s->expected);
                d->actual = strdup(s->actual);
                d->explanation = strdup(s->explanation);
                dst->n_findings = i + 1;
                if (!d->expected || !d->actual || !d->explanation) {
                        vc_evaluation_done(dst);
                        return -ENOMEM;
                }
        }
        return 0;
}

static uint32_t bucket_of(const vc_eval_cache *c, const uint8_t key[32]) {
        uint32_t h;
        memcpy(&h, key, 4);
        return h & (uint32_t) (c->n_buckets - 1);
}

static void unlink_entry(vc_eval_cache *c, size_t idx) {
        entry *e = &c->entries[idx];
        uint32_t *link = &c->buckets[bucket_of(c, e->key)];
        while (*link && *link != idx + 1)
                link = &c->entries[*link - 1].next;
        if (*link)
                *link = e->next;
        c->bytes -= e->bytes;
        vc_evaluation_done(&e->eval);
        e->used = false;
        e->next = 0;
        c->count--;
}

static entry *find(vc_eval_cache *c, const uint8_t key[32]) {
        for (uint32_t i = c->buckets[bucket_of(c, key)]; i; i = c->entries[i - 1].next)
                if (memcmp(c->entries[i - 1].key, key, 32) == 0)
                        return &c->entries[i - 1];
        return NULL;
}

int vc_eval_cache_lookup(vc_eval_cache *c, const uint8_t key[32], vc_evaluation *ret) {
        entry *e = find(c, key);
        if (!e)
                return -ENOENT;
        int r = vc_evaluation_copy(ret, &e->eval);
        if (r == 0)
                c->hits++;
        return r;
}

int vc_eval_cache_put(vc_eval_cache *c, const uint8_t key[32], const vc_evaluation *eval) {
        c->misses++;
        size_t size = vc_evaluation_heap_size(eval);
        if (size > VC_EVAL_CACHE_MAX_BYTES)
                return -E2BIG;
        size_t idx = c->head;
        c->head = (c->head + 1) % c->max;
        if (c->entries[idx].used)
                unlink_entry(c, idx);
        /* the oldest entries make room for its bytes too */
        while (c->count && c->bytes + size > VC_EVAL_CACHE_MAX_BYTES) {
                if (c->entries[c->head].used)
                        unlink_entry(c, c->head);
                c->head = (c->head + 1) % c->max;
        }
        entry *e = &c->entries[idx];
        if (vc_evaluation_copy(&e->eval, eval) < 0)
                return -ENOMEM;
        e->bytes = size;
        c->bytes += size;
        memcpy(e->key, key, 32);
        e->used = true;
        uint32_t *bucket = &c->buckets[bucket_of(c, key)];
        e->next = *bucket;
        *bucket = (uint32_t) idx + 1;
        c->count++;
        return 0;
}

int vc_golden_evaluate_cached(vc_eval_cache *c, const vc_golden *g, const vc_eventlog *log,
                              const vc_event_check *checks, const vc_pcr_set *replayed, uint32_t attested,
                              vc_evaluation *ret, bool *ret_hit) {
        uint8_t key[32];
        int r = vc_eval_key(c->hasher, g, replayed, attested, key);
        if (r < 0)
                return r;
        r = vc_eval_cache_lookup(c, key, ret);
        if (ret_hit)
                *ret_hit = r == 0;
        if (r != -ENOENT)
                return r;
        r = vc_golden_evaluate(g, log, checks, replayed, attested, ret);
        if (r < 0)
                return r;
        (void) vc_eval_cache_put(c, key, ret); /* not cached for want of memory: still the result */
        return 0;
}
