/* SPDX-License-Identifier: Apache-2.0 */
/* What the golden files share among themselves; not part of the core's API. The golden code:
 *   golden.c           a set's lifetime, the top of its JSON ($.name ... $.pcrs), merge, lint
 *   golden-rules.c     the rules ($.rules) as one table: parse, output, merge
 *   golden-json.c      reading and writing the format's JSON values
 *   golden-classify.c  how rules read a log: event classes, the content they look at
 *   golden-create.c    a set from a known-good log
 *   golden-evaluate.c  a log against a set
 *   golden-cache.c     evaluations kept by measured state
 *   digest-set.c       the sorted lists rules hold */
#pragma once

#include "golden.h"

/* A set with no rule for bank (its digest sets sized for it); version 1, Secure Boot not
 * checked, variables required when checked. 0, -ENOTSUP (unknown bank), -ENOMEM. */
int vc_golden_new_empty(uint16_t bank, vc_golden **ret);

/* Sets g->fingerprint from its canonical JSON. 0, -ENOMEM or -EIO. */
int vc_golden_seal(vc_golden *g);

/* Compiles rule->text into rule->re (POSIX ERE): 0, or -EBADMSG when it is no regex. */
int vc_golden_compile_regex(vc_string_rule *rule);

/* Vendor event pins: add (unsorted; 0, -ENOMEM or -E2BIG past VC_GOLDEN_MAX_LIST), then
 * finish (sorted by pcr, position, type, digest; duplicates dropped). */
int vc_vendor_events_add(vc_golden *g, const vc_vendor_event *e);
void vc_vendor_events_finish(vc_golden *g);
/* The pins at (pcr, position): *ret_n of them from the returned one on (NULL, 0: none). */
const vc_vendor_event *vc_vendor_events_at(const vc_golden *g, uint32_t pcr, uint32_t position, size_t *ret_n);

/* UTF-8 text without DEL or C1 controls, and without C0 controls other than tab, newline and
 * carriage return unless controls (golden strings may hold them; log strings may not). */
bool vc_golden_text_valid(const uint8_t *s, size_t n, bool controls);
