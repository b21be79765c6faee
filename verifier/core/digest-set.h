/* SPDX-License-Identifier: Apache-2.0 */
/* Sorted sets of digests and of strings, the lists golden rules hold (bsearch), and their
 * short text for findings. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A sorted set of digests of one size (bsearch). */
typedef struct vc_dset {
        size_t n, size;
        uint8_t *d;           /* n * size bytes, sorted, unique */
} vc_dset;

/* A sorted set of strings. */
typedef struct vc_sset {
        size_t n;
        char **s;
} vc_sset;

/* Appends without sorting; call vc_dset_finish() before lookups. 0 or -ENOMEM, or -E2BIG
 * past VC_GOLDEN_MAX_LIST entries. */
int vc_dset_add(vc_dset *s, const uint8_t *d);
void vc_dset_finish(vc_dset *s);
bool vc_dset_has(const vc_dset *s, const uint8_t *d);
int vc_dset_union(vc_dset *dst, const vc_dset *src);
int vc_dset_intersect(vc_dset *dst, const vc_dset *a, const vc_dset *b);
void vc_dset_done(vc_dset *s);

int vc_sset_add(vc_sset *s, const char *str);
void vc_sset_finish(vc_sset *s);
bool vc_sset_has(const vc_sset *s, const char *str);
int vc_sset_union(vc_sset *dst, const vc_sset *src);
void vc_sset_done(vc_sset *s);

/* "3f01…9ca1": first and last 4 hex digits, for one-line explanations. */
void vc_short_hex(const uint8_t *d, size_t n, char out[16]);
/* Comma-separated short hex of up to `max` entries ("…and N more"); malloc'ed. */
char *vc_dset_text(const vc_dset *s, size_t max);
