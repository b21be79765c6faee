/* SPDX-License-Identifier: Apache-2.0 */
/* Sorted digest and string sets used by golden rules (internal to the core). */
#pragma once

#include "golden.h"

/* Appends without sorting; call vc_dset_finish() before lookups. 0 or -ENOMEM/-E2BIG. */
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

/* Vendor event pins: add (unsorted; 0, -ENOMEM or -E2BIG past VC_GOLDEN_MAX_LIST), then
 * finish (sorted by pcr, position, type, digest; duplicates dropped). */
int vc_vendor_events_add(vc_golden *g, const vc_vendor_event *e);
void vc_vendor_events_finish(vc_golden *g);
/* The pins at (pcr, position): *ret_n of them from the returned one on (NULL, 0: none). */
const vc_vendor_event *vc_vendor_events_at(const vc_golden *g, uint32_t pcr, uint32_t position, size_t *ret_n);

/* Sets g->fingerprint from its canonical JSON. */
int vc_golden_seal(vc_golden *g);

/* "3f01…9ca1": first and last 4 hex digits, for one-line explanations. */
void vc_short_hex(const uint8_t *d, size_t n, char out[16]);
/* Comma-separated short hex of up to `max` entries ("…and N more"); malloc'ed. */
char *vc_dset_text(const vc_dset *s, size_t max);
