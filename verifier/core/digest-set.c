/* SPDX-License-Identifier: Apache-2.0 */
#include "digest-set.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h" /* VC_GOLDEN_MAX_LIST: the cap of every golden list */
#include "hash.h"
#include "vc-util.h"

int vc_dset_add(vc_dset *s, const uint8_t *d) {
        if (s->n >= VC_GOLDEN_MAX_LIST)
                return -E2BIG;
        uint8_t *n = realloc(s->d, (s->n + 1) * s->size);
        if (!n)
                return -ENOMEM;
        s->d = n;
        memcpy(s->d + s->n * s->size, d, s->size);
        s->n++;
        return 0;
}

static int cmp_digest(const void *a, const void *b, void *size) {
        return memcmp(a, b, *(size_t *) size);
}

void vc_dset_finish(vc_dset *s) {
        if (s->n < 2)
                return;
        qsort_r(s->d, s->n, s->size, cmp_digest, &s->size);
        size_t w = 1;
        for (size_t i = 1; i < s->n; i++)
                if (memcmp(s->d + i * s->size, s->d + (w - 1) * s->size, s->size) != 0) {
                        if (w != i)
                                memcpy(s->d + w * s->size, s->d + i * s->size, s->size);
                        w++;
                }
        s->n = w;
}

bool vc_dset_has(const vc_dset *s, const uint8_t *d) {
        size_t lo = 0, hi = s->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = memcmp(s->d + mid * s->size, d, s->size);
                if (c == 0)
                        return true;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

int vc_dset_union(vc_dset *dst, const vc_dset *src) {
        if (dst->size == 0)
                dst->size = src->size;
        for (size_t i = 0; i < src->n; i++) {
                int r = vc_dset_add(dst, src->d + i * src->size);
                if (r < 0)
                        return r;
        }
        vc_dset_finish(dst);
        return 0;
}

int vc_dset_intersect(vc_dset *dst, const vc_dset *a, const vc_dset *b) {
        dst->size = a->size;
        for (size_t i = 0; i < a->n; i++)
                if (vc_dset_has(b, a->d + i * a->size)) {
                        int r = vc_dset_add(dst, a->d + i * a->size);
                        if (r < 0)
                                return r;
                }
        vc_dset_finish(dst);
        return 0;
}

void vc_dset_done(vc_dset *s) {
        free(s->d);
        s->d = NULL;
        s->n = 0;
}

int vc_sset_add(vc_sset *s, const char *str) {
        if (s->n >= VC_GOLDEN_MAX_LIST)
                return -E2BIG;
        char **n = realloc(s->s, (s->n + 1) * sizeof(char *));
        if (!n)
                return -ENOMEM;
        s->s = n;
        s->s[s->n] = strdup(str);
        if (!s->s[s->n])
                return -ENOMEM;
        s->n++;
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

void vc_sset_finish(vc_sset *s) {
        if (s->n < 2)
                return;
        qsort(s->s, s->n, sizeof(char *), cmp_str);
        size_t w = 1;
        for (size_t i = 1; i < s->n; i++) {
                if (strcmp(s->s[i], s->s[w - 1]) == 0) {
                        free(s->s[i]);
                        continue;
                }
                s->s[w++] = s->s[i];
        }
        s->n = w;
}

bool vc_sset_has(const vc_sset *s, const char *str) {
        return s->n && bsearch(&str, s->s, s->n, sizeof(char *), cmp_str) != NULL;
}

int vc_sset_union(vc_sset *dst, const vc_sset *src) {
        for (size_t i = 0; i < src->n; i++) {
                int r = vc_sset_add(dst, src->s[i]);
                if (r < 0)
                        return r;
        }
        vc_sset_finish(dst);
        return 0;
}

void vc_sset_done(vc_sset *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->s[i]);
        free(s->s);
        s->s = NULL;
        s->n = 0;
}

void vc_short_hex(const uint8_t *d, size_t n, char out[16]) {
        char full[2 * VC_MAX_DIGEST + 1];
        if (n > VC_MAX_DIGEST)
                n = VC_MAX_DIGEST;
        vc_hex(d, n, full);
        if (2 * n <= 8) {
                memcpy(out, full, 2 * n + 1);
                return;
        }
        memcpy(out, full, 4);
        memcpy(out + 4, "\xe2\x80\xa6", 3); /* … */
        memcpy(out + 7, full + 2 * n - 4, 5);
}

char *vc_dset_text(const vc_dset *s, size_t max) {
        vc_sbuf b;
        if (vc_sbuf_init(&b, 64 + 16 * (max + 1)) < 0)
                return NULL;
        if (s->n == 0)
                vc_sbuf_printf(&b, "none");
        for (size_t i = 0; i < s->n && i < max; i++) {
                char h[16];
                vc_short_hex(s->d + i * s->size, s->size, h);
                vc_sbuf_printf(&b, "%s%s", i ? ", " : "", h);
        }
        if (s->n > max)
                vc_sbuf_printf(&b, " and %zu more", s->n - max);
        return vc_sbuf_take(&b);
}
